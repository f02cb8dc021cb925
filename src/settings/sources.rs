//! A source dir must not be what assetpub publishes to. A source dir that is
//! the directory target, or inside it, or that holds an earlier publish's
//! output, would have each run publish the last one's output again, nested
//! one level deeper every time. (The other way round, a target inside a
//! source dir, is fine: the walk skips the target.)

use std::path::{Component, Path, PathBuf};

use super::TargetUrl;
use crate::error::{Error, Result};

/// `written` are the `[source] dirs` entries as written, `sources` the
/// same resolved against the config file's directory; `origin` names the
/// setting the target comes from.
pub(super) fn check(
    written: &[String],
    sources: &[PathBuf],
    target: &TargetUrl,
    origin: &str,
    manifest_key: &str,
) -> Result<()> {
    let hint = "point `[source] dirs` at the build output (e.g. \"dist\"), and publish to a directory outside it";
    for (entry, source) in written.iter().zip(sources) {
        if let TargetUrl::Dir(dir) = target
            && let Some(relation) = within(source, dir)
        {
            return Err(Error::Config(format!(
                "source dir `{entry}` in `[source] dirs` {relation} the target directory `{}`, from {origin}: each publish would publish the last one's output again",
                dir.display()
            ))
            .with_hint(hint));
        }
        if let Some(found) = earlier_output(source, manifest_key) {
            return Err(Error::Config(format!(
                "source dir `{entry}` in `[source] dirs` holds an earlier publish's output ({found}): publishing it would publish published files again"
            ))
            .with_hint(hint));
        }
    }
    Ok(())
}

/// "is" or "is inside" when `source` is `target` or below it: compared as
/// written, with `..` and symlinks resolved, and by device and inode (a
/// bind mount, another path to the same directory).
fn within(source: &Path, target: &Path) -> Option<&'static str> {
    let (s, t) = (resolved(source), resolved(target));
    if s == t {
        return Some("is");
    }
    if s.starts_with(&t) {
        return Some("is inside");
    }
    let target_id = file_id(target)?;
    let mut dir = Some(source);
    let mut relation = "is";
    while let Some(d) = dir {
        if d.as_os_str().is_empty() {
            break;
        }
        if file_id(d) == Some(target_id) {
            return Some(relation);
        }
        relation = "is inside";
        dir = d.parent();
    }
    None
}

/// `path` made absolute, with `.` and `..` resolved, and symlinks resolved
/// in the part of it that exists.
fn resolved(path: &Path) -> PathBuf {
    if let Ok(c) = path.canonicalize() {
        return c;
    }
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut lexical = PathBuf::new();
    for c in absolute.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                lexical.pop();
            }
            other => lexical.push(other),
        }
    }
    // The longest part that exists, canonical, then the rest as written.
    let mut rest = Vec::new();
    let mut existing = lexical.as_path();
    loop {
        if let Ok(c) = existing.canonicalize() {
            return rest.iter().rev().fold(c, |p, name| p.join(name));
        }
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_os_string());
                existing = parent;
            }
            _ => return lexical,
        }
    }
}

#[cfg(unix)]
fn file_id(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).ok()?;
    Some((m.dev(), m.ino()))
}

#[cfg(not(unix))]
fn file_id(_path: &Path) -> Option<(u64, u64)> {
    None
}

/// What marks `dir` as a directory target assetpub has published to: the
/// manifest (in its live release, or at its root for a target published
/// before releases) and the deploy records beside it.
fn earlier_output(dir: &Path, manifest_key: &str) -> Option<String> {
    let deploys = dir.join(crate::keys::DEPLOYS_PREFIX);
    if !deploys.is_dir() {
        return None;
    }
    let live = dir.join(crate::keys::LIVE_RELEASE);
    [manifest_key, "manifest.json"]
        .into_iter()
        .find(|key| dir.join(key).is_file() || live.join(key).is_file())
        .map(|key| format!("`{key}` and `{}`", crate::keys::DEPLOYS_PREFIX))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(p: &Path) -> TargetUrl {
        TargetUrl::Dir(p.to_path_buf())
    }

    fn check_one(source: &Path, target: &TargetUrl) -> Result<()> {
        check(
            &["src".to_string()],
            &[source.to_path_buf()],
            target,
            "`[target] url`",
            "manifest.json",
        )
    }

    #[test]
    fn a_source_that_is_the_target_or_inside_it_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        let published = root.join("published");
        // Neither exists yet: compared as written.
        let e = check_one(&published, &dir(&published)).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().contains("is the target directory"), "{e}");
        let e = check_one(&root.join("x/../published/site"), &dir(&published)).unwrap_err();
        assert!(e.to_string().contains("is inside the target"), "{e}");
        // Through a symlink.
        std::fs::create_dir_all(&published).unwrap();
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(&published, root.join("link")).unwrap();
            let e = check_one(&root.join("link"), &dir(&published)).unwrap_err();
            assert!(e.to_string().contains("is the target directory"), "{e}");
        }
        // The target inside the source, a sibling, or an S3 target: fine.
        check_one(root, &dir(&published)).unwrap();
        check_one(&root.join("published-site"), &dir(&published)).unwrap();
        check_one(
            &published,
            &TargetUrl::S3 {
                bucket: "b".into(),
                prefix: String::new(),
            },
        )
        .unwrap();
    }

    #[test]
    fn a_source_holding_an_earlier_publish_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let old = tmp.path().join("old");
        std::fs::create_dir_all(old.join(".assetpub/deploys")).unwrap();
        let s3 = TargetUrl::S3 {
            bucket: "b".into(),
            prefix: String::new(),
        };
        // The deploy records alone (or a web app's manifest.json alone) are
        // not enough.
        check_one(&old, &s3).unwrap();
        std::fs::write(old.join("manifest.json"), "{}").unwrap();
        let e = check_one(&old, &s3).unwrap_err();
        assert!(
            e.to_string().contains("holds an earlier publish's output"),
            "{e}"
        );
    }
}
