//! What an object key may be, and the keys assetpub keeps for itself. The
//! lowest layer: the stores, the settings and the manifest all check keys
//! against these rules.

use crate::error::{Error, Result};

/// Where assetpub keeps what it needs on the target besides the site.
pub const RESERVED_PREFIX: &str = ".assetpub/";
/// Every deploy's manifest, as `<deploy>.json`.
pub const DEPLOYS_PREFIX: &str = ".assetpub/deploys/";
/// The deploy lock.
pub const LOCK_KEY: &str = ".assetpub/lock";
/// The throwaway keys that learn whether a store enforces conditional
/// writes, as `<random>`: each deleted by its probe, or by `prune` once
/// an interrupted probe left it.
pub const PROBE_PREFIX: &str = ".assetpub/probe-";
/// On a directory target, each deploy's release: its stable keys (hard
/// links to their fingerprinted objects), its manifest and Django's
/// `staticfiles.json`, as `<deploy>/<key>`.
pub const RELEASES_PREFIX: &str = ".assetpub/releases/";
/// On a directory target, the symlink to the live release (relative:
/// `releases/<deploy>`), replaced with one `rename(2)` to switch.
pub const LIVE_RELEASE: &str = ".assetpub/current";
/// Django's `ManifestStaticFilesStorage` manifest, with `[manifest] django`.
pub const STATICFILES_KEY: &str = "staticfiles.json";
/// Where previews live, each as `<name>/` with its own manifest, deploy
/// records and lock: the live site's files never go here.
pub const PREVIEWS_PREFIX: &str = "_previews/";

/// Whether `name` can name a preview: 1 to 63 of `a-z`, `0-9` and `-`, so
/// that it is one key segment and one DNS label.
pub fn is_preview_name(name: &str) -> bool {
    (1..=63).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// Every key the tool writes passes here: nothing may escape the target root.
pub fn check_key(key: &str) -> Result<()> {
    let bad = key.is_empty()
        || key.starts_with('/')
        || key.contains('\\')
        || key.contains('\0')
        || key
            .split('/')
            .any(|seg| seg.is_empty() || seg == "." || seg == "..");
    if bad {
        return Err(Error::Input(format!(
            "refusing key `{key}`: keys must be relative paths without `.`, `..`, empty segments or backslashes"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{check_key, is_preview_name};

    #[test]
    fn preview_names_are_one_plain_segment() {
        for good in ["pr-123", "a", "0", &"a".repeat(63)] {
            assert!(is_preview_name(good), "{good:?} refused");
        }
        for bad in [
            "",
            "PR-1",
            "pr_1",
            "pr/1",
            "..",
            "pr.1",
            "ü",
            &"a".repeat(64),
        ] {
            assert!(!is_preview_name(bad), "{bad:?} accepted");
        }
    }

    #[test]
    fn keys_cannot_escape_the_root() {
        for bad in [
            "",
            "/etc/passwd",
            "a/../b",
            "..",
            "a//b",
            "a\\b",
            "./a",
            "a/",
        ] {
            assert!(check_key(bad).is_err(), "{bad:?} accepted");
        }
        for good in [
            "a",
            "css/app.3f2a9c1b7d4e.css",
            ".assetpub/lock",
            "a b/ü.png",
        ] {
            assert!(check_key(good).is_ok(), "{good:?} refused");
        }
    }
}
