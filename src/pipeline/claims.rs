//! Every key a deploy writes belongs to exactly one file, and never to a
//! key assetpub keeps for itself or to an immutable object the served
//! deploy names. Pure: the deploy's entries, the served manifest and the
//! reserved keys come in as values; the result is one line per collision,
//! naming both sides.
//!
//! Without this check a file can be published at a key another file's
//! fingerprinted object already holds (`about.8420526803a0.html` beside
//! `about.html`, a sidecar name such as `x.css.gz` beside `x.css`, a
//! `fingerprint = "keep"` name): its stable copy would overwrite an object
//! browsers cache for a year, and a later rollback would delete it.

use std::collections::HashMap;

use crate::remote::manifest::{Entry, Layout, Manifest, objects_for};

/// A key, or every key under a prefix (ending in `/`), that assetpub
/// writes itself, with what it is for.
#[derive(Debug, Clone)]
pub struct Reserved {
    pub key: String,
    pub what: String,
}

impl Reserved {
    pub fn new(key: impl Into<String>, what: impl Into<String>) -> Reserved {
        Reserved {
            key: key.into(),
            what: what.into(),
        }
    }

    pub fn covers(&self, key: &str) -> bool {
        if self.key.ends_with('/') {
            key.starts_with(&self.key)
        } else {
            key == self.key
        }
    }
}

#[derive(Clone, Copy)]
struct Claim<'a> {
    logical: &'a str,
    stable: bool,
    sidecar: bool,
}

impl Claim<'_> {
    fn describe(&self) -> String {
        let what = match (self.stable, self.sidecar) {
            (false, false) => "fingerprinted object",
            (false, true) => "compressed sidecar",
            (true, false) => "stable key",
            (true, true) => "stable key's compressed sidecar",
        };
        format!("the {what} of `{}`", self.logical)
    }
}

/// The collisions of `files` (published with `layout`) with each other and
/// with `reserved`. Empty when every key has one owner. `fix` says, for a file at a reserved key, how
/// to move it.
pub fn collisions(
    files: &std::collections::BTreeMap<String, Entry>,
    layout: Layout,
    reserved: &[Reserved],
    fix: &dyn Fn(&str) -> String,
) -> Vec<String> {
    let mut problems = Vec::new();
    let mut owners: HashMap<String, Claim> = HashMap::new();
    for (logical, entry) in files {
        let main_object = entry.object_key();
        for o in objects_for(entry, layout.sidecars, layout.encoding) {
            let claim = Claim {
                logical,
                stable: o.stable,
                sidecar: o.key != entry.key && o.key != main_object,
            };
            if let Some(r) = reserved.iter().find(|r| r.covers(&o.key)) {
                problems.push(format!(
                    "`{logical}` would be published at `{}`, {}: {}",
                    o.key,
                    r.what,
                    fix(logical)
                ));
                continue;
            }
            match owners.get(&o.key) {
                Some(first) if first.logical != logical => problems.push(format!(
                    "`{}` is claimed twice: {} and {}; rename one of them or exclude it",
                    o.key,
                    first.describe(),
                    claim.describe()
                )),
                Some(_) => {}
                None => {
                    owners.insert(o.key, claim);
                }
            }
        }
    }
    problems
}

/// The stable keys of `files` that would overwrite an immutable object of
/// `current`, the served deploy: a rollback to it, and every browser that
/// cached the object, needs its bytes.
pub fn over_served(
    files: &std::collections::BTreeMap<String, Entry>,
    layout: Layout,
    current: &Manifest,
) -> Vec<String> {
    let stable: HashMap<String, &str> = files
        .iter()
        .flat_map(|(logical, entry)| {
            objects_for(entry, layout.sidecars, layout.encoding)
                .into_iter()
                .filter(|o| o.stable)
                .map(move |o| (o.key, logical.as_str()))
        })
        .collect();
    let mut problems = Vec::new();
    for (logical, entry) in &current.files {
        for o in objects_for(entry, current.sidecars, current.object_encoding()) {
            if let (false, Some(new)) = (o.stable, stable.get(&o.key)) {
                problems.push(format!(
                    "`{new}` would overwrite `{}`, the immutable object of `{logical}` in the served deploy `{}`; rename or exclude it",
                    o.key, current.deploy
                ));
            }
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::remote::manifest::{FORMAT_VERSION, Variant};

    fn entry(key: &str, object: Option<&str>, hash: &str) -> Entry {
        Entry {
            key: key.into(),
            object: object.map(Into::into),
            blake3: hash.repeat(64 / hash.len()),
            size: 10,
            integrity: String::new(),
            written: Default::default(),
            content_type: "text/html".into(),
            cache_control: "no-cache".into(),
            encodings: [("gzip".to_string(), 5)].into_iter().collect(),
            content_disposition: None,
            content_language: None,
            metadata: BTreeMap::new(),
        }
    }

    fn layout() -> Layout {
        Layout {
            sidecars: true,
            encoding: Variant::Identity,
        }
    }

    fn reserved() -> Vec<Reserved> {
        vec![
            Reserved::new("manifest.json", "the key of assetpub's manifest"),
            Reserved::new(".assetpub/", "where assetpub keeps its own records"),
        ]
    }

    fn fix(_: &str) -> String {
        "rename or exclude it".into()
    }

    fn about() -> (String, Entry) {
        (
            "about.html".into(),
            entry("about.html", Some("about.842052680300.html"), "84"),
        )
    }

    #[test]
    fn distinct_keys_collide_with_nothing() {
        let files: BTreeMap<_, _> = [
            about(),
            ("a.css".into(), entry("a.aaaaaaaaaaaa.css", None, "aa")),
        ]
        .into_iter()
        .collect();
        assert!(collisions(&files, layout(), &reserved(), &fix).is_empty());
    }

    #[test]
    fn a_file_named_like_another_files_object_is_refused_naming_both() {
        let files: BTreeMap<_, _> = [
            about(),
            (
                "about.842052680300.html".into(),
                entry(
                    "about.842052680300.html",
                    Some("about.842052680300.ffffffffffff.html"),
                    "ff",
                ),
            ),
        ]
        .into_iter()
        .collect();
        let p = collisions(&files, layout(), &reserved(), &fix);
        assert_eq!(p.len(), 2, "{p:?}");
        assert!(
            p[0].contains("`about.842052680300.html` is claimed twice")
                && p[0].contains("fingerprinted object of `about.html`")
                && p[0].contains("stable key of `about.842052680300.html`"),
            "{p:?}"
        );
        // Its gzip sidecar collides with the object's sidecar too.
        assert!(p[1].contains("about.842052680300.html.gz"), "{p:?}");
    }

    #[test]
    fn a_sidecar_name_is_refused() {
        let files: BTreeMap<_, _> = [
            (
                "x.css".into(),
                entry("x.css", Some("x.cccccccccccc.css"), "cc"),
            ),
            ("x.css.gz".into(), entry("x.css.gz", None, "dd")),
        ]
        .into_iter()
        .collect();
        let p = collisions(&files, layout(), &reserved(), &fix);
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(p[0].contains("`x.css.gz` is claimed twice"), "{p:?}");
        assert!(
            p[0].contains("stable key's compressed sidecar of `x.css`"),
            "{p:?}"
        );
    }

    #[test]
    fn reserved_keys_and_prefixes_are_refused() {
        let files: BTreeMap<_, _> = [
            ("manifest.json".into(), entry("manifest.json", None, "11")),
            (".assetpub/lock".into(), entry(".assetpub/lock", None, "22")),
        ]
        .into_iter()
        .collect();
        let p = collisions(&files, layout(), &reserved(), &fix);
        assert!(
            p.iter().any(|l| l.contains("`.assetpub/lock`")
                && l.contains("where assetpub keeps its own records")),
            "{p:?}"
        );
        assert!(
            p.iter()
                .any(|l| l.contains("`manifest.json`") && l.contains("assetpub's manifest")),
            "{p:?}"
        );
    }

    #[test]
    fn a_stable_key_over_an_object_of_the_served_deploy_is_refused() {
        let current = Manifest {
            version: FORMAT_VERSION,
            deploy: "d1".into(),
            parent: None,
            created: "c".into(),
            commit: None,
            ci_run: None,
            message: None,
            files: [about()].into_iter().collect(),
            sidecars: true,
            encoding: "identity".into(),
            switching: None,
            conditional_writes: None,
            expires: None,
            redirects: Vec::new(),
            headers: Vec::new(),
        };
        // about.html changed, and a new page is named like its old object.
        let files: BTreeMap<_, _> = [
            (
                "about.html".into(),
                entry("about.html", Some("about.eeeeeeeeeeee.html"), "ee"),
            ),
            (
                "about.842052680300.html".into(),
                entry(
                    "about.842052680300.html",
                    Some("about.842052680300.ffffffffffff.html"),
                    "ff",
                ),
            ),
        ]
        .into_iter()
        .collect();
        assert!(
            collisions(&files, layout(), &reserved(), &fix).is_empty(),
            "no collision within the deploy"
        );
        let p = over_served(&files, layout(), &current);
        assert!(
            p.iter().any(|l| l.contains(
                "would overwrite `about.842052680300.html`, the immutable object of `about.html` in the served deploy `d1`"
            )),
            "{p:?}"
        );
    }
}
