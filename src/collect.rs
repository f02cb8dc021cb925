//! Walks the source directories into the set of logical files to publish,
//! validating every file and reporting all problems at once.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use crate::config::{Config, TargetUrl};
use crate::error::{Error, Result};
use crate::report::Reporter;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceFile {
    /// Relative path with `/` separators: the key in the manifest.
    pub logical: String,
    /// Where to read it (inside its source dir, possibly through a symlink).
    pub path: PathBuf,
    pub size: u64,
    pub mtime_ns: i64,
    pub inode: u64,
}

/// The collected files sorted by logical path.
pub fn collect(config: &Config, reporter: &dyn Reporter) -> Result<Vec<SourceFile>> {
    let mut problems = Vec::new();
    let mut files: BTreeMap<String, SourceFile> = BTreeMap::new();
    let own = own_paths(config);
    for dir in &config.sources {
        match std::fs::metadata(dir) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                problems.push(format!("source `{}` is not a directory", dir.display()));
                continue;
            }
            Err(e) => {
                problems.push(format!(
                    "source dir `{}` cannot be read: {e}",
                    dir.display()
                ));
                continue;
            }
        }
        let root = match dir.canonicalize() {
            Ok(r) => r,
            Err(e) => {
                problems.push(format!(
                    "source dir `{}` cannot be resolved: {e}",
                    dir.display()
                ));
                continue;
            }
        };
        walk(
            config,
            dir,
            &root,
            &own,
            &mut files,
            &mut problems,
            reporter,
        );
    }
    if problems.is_empty() && files.is_empty() {
        let dirs: Vec<_> = config
            .sources
            .iter()
            .map(|d| format!("`{}`", d.display()))
            .collect();
        problems.push(format!(
            "no files collected from {}: is the build output there, and do `include`/`exclude` match it?",
            dirs.join(", ")
        ));
    }
    if !problems.is_empty() {
        return Err(Error::Validation(problems));
    }
    Ok(files.into_values().collect())
}

/// What assetpub itself writes, wherever it sits: the directory target,
/// Django's local `staticfiles.json`, and the state DB with its journal
/// files. Never collected, even from inside a source dir (`dirs = ["."]`),
/// or each run would publish the last one's output. Canonical paths; the target only once it exists.
fn own_paths(config: &Config) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let TargetUrl::Dir(d) = &config.target.url
        && let Ok(c) = d.canonicalize()
    {
        out.push(c);
    }
    // Django's local staticfiles.json, when it is written into the build.
    if let Some(local) = &config.django_local {
        out.extend(canonical_siblings(local, &[""]));
    }
    out.extend(canonical_siblings(
        &config.state_path,
        &["", "-wal", "-shm", "-journal"],
    ));
    out
}

/// `path` with each suffix appended to its file name, in its canonical
/// parent directory (the files themselves need not exist yet).
fn canonical_siblings(path: &Path, suffixes: &[&str]) -> Vec<PathBuf> {
    let Some(name) = path.file_name() else {
        return Vec::new();
    };
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let Ok(parent) = parent.canonicalize() else {
        return Vec::new();
    };
    suffixes
        .iter()
        .map(|suffix| {
            let mut n = name.to_os_string();
            n.push(suffix);
            parent.join(n)
        })
        .collect()
}

fn walk(
    config: &Config,
    dir: &Path,
    root: &Path,
    own: &[PathBuf],
    files: &mut BTreeMap<String, SourceFile>,
    problems: &mut Vec<String>,
    reporter: &dyn Reporter,
) {
    let hidden_wanted = |rel: &str| {
        config.include_hidden.is_match(rel) || config.include_hidden.is_match(format!("{rel}/x"))
    };
    let walker = walkdir::WalkDir::new(dir)
        .follow_links(false)
        // Siblings share their parent's path, so comparing whole paths
        // orders them by name, without parsing each name out of its path
        // on every comparison (which cost more than the rest of the walk).
        .sort_by(|a, b| a.path().as_os_str().cmp(b.path().as_os_str()))
        .into_iter()
        .filter_entry(|e| {
            if e.depth() == 0 {
                return true;
            }
            // Nothing is followed through symlinks, so the path below the
            // canonical root is canonical too.
            if !own.is_empty()
                && let Ok(rel) = e.path().strip_prefix(dir)
                && own.contains(&root.join(rel))
            {
                if e.file_type().is_dir() {
                    reporter.warn(&format!(
                        "`{}` is the target directory, inside source dir `{}`: not collected",
                        e.path().display(),
                        dir.display()
                    ));
                }
                return false;
            }
            // Hidden directories (.git, .cache ...) are not walked unless an
            // include pattern names something inside them.
            if !e.file_type().is_dir() {
                return true;
            }
            let hidden = e.file_name().to_str().is_some_and(|n| n.starts_with('.'));
            !hidden
                || e.path()
                    .strip_prefix(dir)
                    .ok()
                    .and_then(|r| r.to_str())
                    .is_some_and(hidden_wanted)
        });
    for entry in walker {
        let entry = match entry {
            Ok(e) => e,
            Err(e) => {
                let path = e
                    .path()
                    .map_or_else(|| dir.display().to_string(), |p| p.display().to_string());
                problems.push(format!(
                    "`{path}` cannot be read: {}",
                    e.io_error()
                        .map_or_else(|| e.to_string(), |io| io.to_string())
                ));
                continue;
            }
        };
        if entry.depth() == 0 || entry.file_type().is_dir() {
            continue;
        }
        let path = entry.path();
        let Ok(rel) = path.strip_prefix(dir) else {
            continue;
        };
        let Some(logical) = logical_name(rel) else {
            problems.push(format!(
                "`{}`: file name is not valid UTF-8; rename it (URLs need UTF-8 names)",
                path.display()
            ));
            continue;
        };
        if logical.contains('\\') {
            problems.push(format!(
                "`{}`: file name contains a backslash, which is not portable in URLs",
                path.display()
            ));
            continue;
        }
        let hidden = logical.split('/').any(|seg| seg.starts_with('.'));
        if hidden && !config.include_hidden.is_match(&logical) {
            continue;
        }
        if !config.include.is_match(&logical) || config.exclude.is_match(&logical) {
            continue;
        }
        let meta = if entry.path_is_symlink() {
            match std::fs::metadata(path) {
                Err(e) if e.raw_os_error() == Some(40) => {
                    problems.push(format!("`{}`: symlink loop", path.display()));
                    continue;
                }
                Err(e) => {
                    problems.push(format!("`{}`: broken symlink: {e}", path.display()));
                    continue;
                }
                Ok(m) => {
                    let inside = path.canonicalize().is_ok_and(|t| t.starts_with(root));
                    if !inside {
                        problems.push(format!(
                            "`{}`: symlink points outside its source dir `{}`; copy the file in instead",
                            path.display(),
                            dir.display()
                        ));
                        continue;
                    }
                    if m.is_dir() {
                        reporter.warn(&format!(
                            "`{}`: symlinked directory not followed",
                            path.display()
                        ));
                        continue;
                    }
                    m
                }
            }
        } else {
            match entry.metadata() {
                Ok(m) => m,
                Err(e) => {
                    problems.push(format!("`{}` cannot be read: {e}", path.display()));
                    continue;
                }
            }
        };
        if !meta.is_file() {
            reporter.warn(&format!(
                "`{}`: not a regular file (a FIFO, socket or device); skipped",
                path.display()
            ));
            continue;
        }
        if let Some(max) = config.max_file_size
            && meta.len() > max
        {
            problems.push(format!(
                "`{}`: {} is over `max_file_size` ({})",
                path.display(),
                crate::util::human_bytes(meta.len()),
                crate::util::human_bytes(max)
            ));
            continue;
        }
        if let Some(allowed) = &config.allowed_extensions {
            let ext = logical
                .rsplit_once('.')
                .map(|(_, e)| e.to_ascii_lowercase());
            let ok = ext.as_ref().is_some_and(|e| {
                allowed.iter().any(|a| a == e) && !logical.ends_with(&format!("/.{e}"))
            });
            if !ok {
                problems.push(format!(
                    "`{}`: extension {} is not in `allowed_extensions`",
                    path.display(),
                    ext.map_or_else(|| "(none)".to_string(), |e| format!("`.{e}`"))
                ));
                continue;
            }
        }
        if let Some(earlier) = files.get(&logical) {
            reporter.warn(&format!(
                "`{}` is shadowed by `{}` (an earlier source dir wins)",
                path.display(),
                earlier.path.display()
            ));
            continue;
        }
        files.insert(
            logical.clone(),
            SourceFile {
                logical,
                path: path.to_path_buf(),
                size: meta.len(),
                mtime_ns: mtime_ns(&meta),
                inode: inode(&meta),
            },
        );
    }
}

fn logical_name(rel: &Path) -> Option<String> {
    let mut parts = Vec::new();
    for c in rel.components() {
        match c {
            Component::Normal(s) => parts.push(s.to_str()?),
            _ => return None,
        }
    }
    Some(parts.join("/"))
}

pub fn mtime_ns(meta: &std::fs::Metadata) -> i64 {
    meta.modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos() as i64)
}

#[cfg(unix)]
fn inode(meta: &std::fs::Metadata) -> u64 {
    std::os::unix::fs::MetadataExt::ino(meta)
}

#[cfg(not(unix))]
fn inode(_meta: &std::fs::Metadata) -> u64 {
    0
}
