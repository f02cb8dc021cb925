//! What a publish would change: the new deploy's entries compared with the
//! current remote manifest and with what is known of the target's other
//! objects. Pure: no I/O; what is known comes in as a value (the keys it
//! needs are [`unaccounted`]).

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use crate::remote::manifest::{Entry, Manifest, ObjectRef, Variant, objects_for};
use crate::remote::manifest::{Layout, meta_digest, object_meta};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Reason {
    /// A logical file the current deploy does not have.
    New,
    /// A logical file whose content changed.
    Changed,
    /// Same bytes, new headers (a change of rules alone).
    Headers,
    /// Content seen before (an older deploy or an interrupted run) whose
    /// object is missing from what the current deploy names.
    Restored,
}

#[derive(Debug, Clone, Serialize)]
pub struct PlannedObject {
    pub logical: String,
    pub key: String,
    #[serde(skip)]
    pub variant: Variant,
    pub bytes: u64,
    pub reason: Reason,
    /// For stable copies: the immutable object they are copied from. None
    /// for a stable key written straight with the page's bytes (see
    /// `Entry::written`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub copy_of: Option<String>,
    /// The key already holds these very bytes, with other headers: they are
    /// written over, where a new immutable object is only created.
    #[serde(skip)]
    pub replace: bool,
    /// `bytes` is an estimate (`plan` of a large file; see
    /// `pipeline::estimate`). Left out of the JSON when false.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub estimated: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct FileChange {
    pub logical: String,
    pub reason: Reason,
}

#[derive(Debug, Clone)]
pub struct Plan {
    pub files: BTreeMap<String, Entry>,
    pub layout: Layout,
    /// Objects to write.
    pub uploads: Vec<PlannedObject>,
    /// Objects the state DB says this target received (an interrupted run, an
    /// older deploy): checked with one HEAD each and uploaded only if gone.
    pub confirm: Vec<PlannedObject>,
    /// Objects that exist with other headers: rewritten in place by a
    /// server-side copy.
    pub header_updates: Vec<PlannedObject>,
    /// Stable keys to (re)write: from their fingerprinted objects, or
    /// straight with their bytes (`copy_of` None).
    pub stable: Vec<PlannedObject>,
    pub changes: Vec<FileChange>,
    pub removed: Vec<String>,
    /// Stable keys of removed files, deleted inside the switch, before the
    /// new manifest (an undo of the switch puts them back).
    pub removed_stable_keys: Vec<String>,
    /// Immutable keys the target already holds with other bytes, each with
    /// its file: only a name kept by `fingerprint = "keep"` can get here,
    /// and writing it would change an object browsers cache for a year.
    pub occupied: Vec<(String, String)>,
    pub unchanged: usize,
}

impl Plan {
    pub fn has_changes(&self) -> bool {
        !self.changes.is_empty() || !self.removed.is_empty() || !self.uploads.is_empty()
    }

    /// The plan of a deploy whose `count` entries are the current
    /// manifest's own: what `plan` finds for them, without comparing them one
    /// by one. `files` may be left empty when nothing needs the entries.
    pub fn unchanged(files: BTreeMap<String, Entry>, count: usize, layout: Layout) -> Plan {
        Plan {
            unchanged: count,
            files,
            layout,
            uploads: Vec::new(),
            confirm: Vec::new(),
            header_updates: Vec::new(),
            stable: Vec::new(),
            changes: Vec::new(),
            removed: Vec::new(),
            removed_stable_keys: Vec::new(),
            occupied: Vec::new(),
        }
    }

    /// How many files the deploy has: each is unchanged or a change.
    pub fn file_count(&self) -> usize {
        self.unchanged + self.changes.len()
    }

    /// The bytes sent: the uploads, and the stable keys written straight.
    pub fn upload_bytes(&self) -> u64 {
        self.uploads.iter().map(|u| u.bytes).sum::<u64>() + self.straight_bytes()
    }

    /// The bytes of the stable keys written straight with their pages.
    pub fn straight_bytes(&self) -> u64 {
        self.stable
            .iter()
            .filter(|s| s.copy_of.is_none())
            .map(|s| s.bytes)
            .sum()
    }
}

/// An object the target is known to have received (an interrupted run, an
/// older deploy) though the current deploy does not name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownObject {
    pub blake3: String,
    pub size: u64,
    /// `meta_digest` of the headers it was written with.
    pub meta: String,
}

/// What the current deploy guarantees is on the target: its objects, with
/// the headers it wrote them with (the entry and variant they follow from).
/// Not the object of a page written straight to its stable key: that is
/// made only when the stable key is replaced.
fn present(current: Option<&Manifest>) -> HashMap<String, (&Entry, Variant)> {
    let mut present = HashMap::new();
    if let Some(m) = current {
        for entry in m.files.values().filter(|e| !e.is_written_straight()) {
            for o in objects_for(entry, m.sidecars, m.object_encoding()) {
                if !o.stable {
                    present.insert(o.key, (entry, o.variant));
                }
            }
        }
    }
    present
}

/// The keys `plan` asks `known` about: the immutable objects of `files`
/// that `current` does not account for, in order.
pub fn unaccounted(
    files: &BTreeMap<String, Entry>,
    layout: Layout,
    current: Option<&Manifest>,
) -> Vec<String> {
    let present = present(current);
    files
        .values()
        .flat_map(|entry| objects_for(entry, layout.sidecars, layout.encoding))
        .filter(|o| !o.stable && !present.contains_key(&o.key))
        .map(|o| o.key)
        .collect()
}

/// `known`: what is known of the keys [`unaccounted`] names (a key left out
/// is not known). `headers_matter`: false for a directory target, where
/// nginx derives the headers and only bytes are stored. `straight`: a new
/// or changed page is written straight to its stable key, and its
/// immutable object is left to be made from there when a later deploy
/// replaces it (a store without releases); an unchanged page keeps what
/// its current entry recorded of that.
pub fn plan(
    mut files: BTreeMap<String, Entry>,
    layout: Layout,
    current: Option<&Manifest>,
    known: &HashMap<String, KnownObject>,
    headers_matter: bool,
    straight: bool,
) -> Plan {
    let present = present(current);
    let current_files = current.map(|m| &m.files);
    let mut plan = Plan::unchanged(BTreeMap::new(), 0, layout);
    let same_layout = current
        .is_some_and(|m| m.sidecars == layout.sidecars && m.object_encoding() == layout.encoding);
    for (logical, entry) in files.iter_mut() {
        let before = current_files.and_then(|f| f.get(logical));
        let straight = straight && entry.is_stable();
        if let Some(b) = before
            && straight
            && same_layout
            && b.blake3 == entry.blake3
        {
            // The stable key holds these bytes as it was written.
            entry.written = b.written.clone();
        }
        let entry = &*entry;
        let reason = match before {
            None => Some(Reason::New),
            Some(b) if b.blake3 != entry.blake3 => Some(Reason::Changed),
            Some(b) if b != entry || !same_layout => Some(Reason::Headers),
            Some(_) => None,
        };
        match reason {
            Some(r) => plan.changes.push(FileChange {
                logical: logical.clone(),
                reason: r,
            }),
            None => plan.unchanged += 1,
        }
        for o in objects_for(entry, layout.sidecars, layout.encoding) {
            let bytes = entry.variant_size(o.variant);
            let planned = |o: &ObjectRef, reason: Reason| PlannedObject {
                logical: logical.clone(),
                key: o.key.clone(),
                variant: o.variant,
                bytes,
                reason,
                copy_of: o.copy_of.clone(),
                replace: false,
                estimated: false,
            };
            let replacing = |o: &ObjectRef| PlannedObject {
                replace: true,
                ..planned(o, Reason::Headers)
            };
            if o.stable {
                if let Some(reason) = reason {
                    let mut p = planned(&o, reason);
                    if straight {
                        p.copy_of = None;
                    }
                    plan.stable.push(p);
                }
                continue;
            }
            if straight {
                // Made from the stable key when a later deploy replaces it.
                continue;
            }
            let digest = || meta_digest(&object_meta(entry, o.variant, false));
            // An immutable key that holds other bytes than this file's.
            let occupied = |plan: &mut Plan| {
                // One line per file: its sidecars are occupied alike.
                if plan.occupied.last().is_none_or(|(l, _)| l != logical) {
                    plan.occupied.push((logical.clone(), o.key.clone()));
                }
            };
            match present.get(&o.key) {
                Some((before, variant)) if before.blake3 == entry.blake3 => {
                    // The same entry makes the same headers: no digests to
                    // compare for the files of a deploy that did not change.
                    let same = *before == entry && *variant == o.variant;
                    if headers_matter
                        && !same
                        && meta_digest(&object_meta(before, *variant, false)) != digest()
                    {
                        plan.header_updates.push(planned(&o, Reason::Headers));
                    }
                }
                Some(_) => occupied(&mut plan),
                None => match known.get(&o.key) {
                    Some(k) if k.blake3 != entry.blake3 => occupied(&mut plan),
                    Some(k) if k.size == bytes && (!headers_matter || k.meta == digest()) => {
                        plan.confirm.push(planned(&o, Reason::Restored));
                    }
                    // The same bytes with other headers (a rule changed since
                    // it was written): `If-None-Match` would keep the old
                    // ones, so the same bytes are written over.
                    Some(k) if k.size == bytes => plan.uploads.push(replacing(&o)),
                    _ => plan
                        .uploads
                        .push(planned(&o, reason.unwrap_or(Reason::Restored))),
                },
            }
        }
    }
    if let Some(cur) = current_files {
        for (logical, entry) in cur {
            if !files.contains_key(logical) {
                plan.removed.push(logical.clone());
                if entry.is_stable() {
                    let m = current.expect("current_files comes from current");
                    plan.removed_stable_keys.extend(
                        objects_for(entry, m.sidecars, m.object_encoding())
                            .into_iter()
                            .filter(|o| o.stable)
                            .map(|o| o.key),
                    );
                }
            }
        }
    }
    plan.files = files;
    plan
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(key: &str, object: Option<&str>, hash: &str) -> Entry {
        Entry {
            key: key.into(),
            object: object.map(Into::into),
            blake3: hash.into(),
            size: 100,
            integrity: String::new(),
            written: Default::default(),
            content_type: "text/css; charset=utf-8".into(),
            cache_control: "public, max-age=31536000, immutable".into(),
            encodings: BTreeMap::new(),
            content_disposition: None,
            content_language: None,
            metadata: BTreeMap::new(),
        }
    }

    fn manifest(files: &BTreeMap<String, Entry>) -> Manifest {
        Manifest {
            version: 1,
            deploy: "d1".into(),
            parent: None,
            created: "c".into(),
            commit: None,
            ci_run: None,
            message: None,
            sidecars: false,
            encoding: "identity".into(),
            files: files.clone(),
            switching: None,
            conditional_writes: None,
            expires: None,
            redirects: Vec::new(),
            headers: Vec::new(),
        }
    }

    const LAYOUT: Layout = Layout {
        sidecars: false,
        encoding: Variant::Identity,
    };

    fn files() -> BTreeMap<String, Entry> {
        [
            (
                "a.css".to_string(),
                entry("a.aaaaaaaaaaaa.css", None, "aaaaaaaaaaaa11"),
            ),
            (
                "index.html".to_string(),
                entry(
                    "index.html",
                    Some("index.bbbbbbbbbbbb.html"),
                    "bbbbbbbbbbbb22",
                ),
            ),
        ]
        .into()
    }

    fn no_known() -> HashMap<String, KnownObject> {
        HashMap::new()
    }

    #[test]
    fn first_deploy_uploads_everything() {
        let p = plan(files(), LAYOUT, None, &no_known(), true, false);
        assert!(p.has_changes());
        let keys: Vec<_> = p.uploads.iter().map(|u| u.key.as_str()).collect();
        assert_eq!(keys, ["a.aaaaaaaaaaaa.css", "index.bbbbbbbbbbbb.html"]);
        assert_eq!(p.stable.len(), 1);
        assert_eq!(
            p.stable[0].copy_of.as_deref(),
            Some("index.bbbbbbbbbbbb.html")
        );
        assert_eq!(p.upload_bytes(), 200);
        assert!(p.changes.iter().all(|c| c.reason == Reason::New));
    }

    #[test]
    fn unchanged_tree_plans_nothing() {
        let cur = manifest(&files());
        let p = plan(files(), LAYOUT, Some(&cur), &no_known(), true, false);
        assert!(!p.has_changes());
        assert!(p.uploads.is_empty() && p.stable.is_empty() && p.confirm.is_empty());
        assert_eq!(p.unchanged, 2);
    }

    #[test]
    fn changed_removed_and_restored_files() {
        let cur = manifest(&files());
        let mut next = files();
        next.remove("index.html");
        next.insert(
            "a.css".into(),
            entry("a.cccccccccccc.css", None, "cccccccccccc33"),
        );
        next.insert(
            "b.css".into(),
            entry("b.dddddddddddd.css", None, "dddddddddddd44"),
        );
        let known: HashMap<String, KnownObject> = [(
            "b.dddddddddddd.css".to_string(),
            KnownObject {
                blake3: "dddddddddddd44".into(),
                size: 100,
                meta: meta_digest(&object_meta(&next["b.css"], Variant::Identity, false)),
            },
        )]
        .into();
        let p = plan(next, LAYOUT, Some(&cur), &known, true, false);
        assert_eq!(p.removed, ["index.html"]);
        assert_eq!(p.removed_stable_keys, ["index.html"]);
        assert_eq!(p.uploads.len(), 1);
        assert_eq!(p.uploads[0].reason, Reason::Changed);
        assert_eq!(
            p.confirm.len(),
            1,
            "an object the state DB knows is confirmed, not uploaded"
        );
        assert_eq!(p.confirm[0].key, "b.dddddddddddd.css");
    }

    #[test]
    fn new_bytes_at_a_key_that_holds_others_are_not_planned() {
        // A name kept by `fingerprint = "keep"`, with new content.
        let kept = |hash: &str| -> BTreeMap<String, Entry> {
            [(
                "assets/index-BxK3f9a1.js".to_string(),
                entry("assets/index-BxK3f9a1.js", None, hash),
            )]
            .into()
        };
        let cur = manifest(&kept("aaaaaaaaaaaa11"));
        let p = plan(
            kept("bbbbbbbbbbbb22"),
            LAYOUT,
            Some(&cur),
            &HashMap::new(),
            true,
            false,
        );
        assert_eq!(
            p.occupied,
            [(
                "assets/index-BxK3f9a1.js".to_string(),
                "assets/index-BxK3f9a1.js".to_string()
            )]
        );
        assert!(p.uploads.is_empty());
        // The same from what the state DB knows of an earlier deploy.
        let known: HashMap<String, KnownObject> = [(
            "assets/index-BxK3f9a1.js".to_string(),
            KnownObject {
                blake3: "aaaaaaaaaaaa11".into(),
                size: 100,
                meta: String::new(),
            },
        )]
        .into();
        let p = plan(kept("bbbbbbbbbbbb22"), LAYOUT, None, &known, true, false);
        assert_eq!(p.occupied.len(), 1);
        let p = plan(kept("aaaaaaaaaaaa11"), LAYOUT, None, &known, true, false);
        assert!(p.occupied.is_empty());
    }

    #[test]
    fn the_same_bytes_with_other_headers_are_written_over() {
        // The state DB knows the key with these bytes but other headers:
        // If-None-Match would keep them.
        let next = files();
        let known: HashMap<String, KnownObject> = [(
            "a.aaaaaaaaaaaa.css".to_string(),
            KnownObject {
                blake3: "aaaaaaaaaaaa11".into(),
                size: 100,
                meta: "other headers".into(),
            },
        )]
        .into();
        let p = plan(next, LAYOUT, None, &known, true, false);
        let a = p
            .uploads
            .iter()
            .find(|u| u.key == "a.aaaaaaaaaaaa.css")
            .unwrap();
        assert!(a.replace, "{a:?}");
        let index = p
            .uploads
            .iter()
            .find(|u| u.key != "a.aaaaaaaaaaaa.css")
            .unwrap();
        assert!(!index.replace, "a new object is only created");
        // Without headers that matter (a directory), the same bytes are there.
        let p = plan(files(), LAYOUT, None, &known, false, false);
        assert_eq!(p.confirm.len(), 1);
        // Another size is not these bytes: never written over.
        let mut other = known.clone();
        other.get_mut("a.aaaaaaaaaaaa.css").unwrap().size = 99;
        let p = plan(files(), LAYOUT, None, &other, true, false);
        assert!(p.uploads.iter().all(|u| !u.replace), "{:?}", p.uploads);
    }

    #[test]
    fn unaccounted_names_the_objects_the_current_deploy_does_not() {
        // Immutable objects only: a stable key is copied, never looked up.
        assert_eq!(
            unaccounted(&files(), LAYOUT, None),
            ["a.aaaaaaaaaaaa.css", "index.bbbbbbbbbbbb.html"]
        );
        let cur = manifest(&files());
        assert!(unaccounted(&files(), LAYOUT, Some(&cur)).is_empty());
        let mut next = files();
        next.insert(
            "b.css".into(),
            entry("b.dddddddddddd.css", None, "dddddddddddd44"),
        );
        assert_eq!(
            unaccounted(&next, LAYOUT, Some(&cur)),
            ["b.dddddddddddd.css"]
        );
        // With sidecars, the variants the current deploy lacks.
        let mut gz = files();
        gz.get_mut("a.css")
            .unwrap()
            .encodings
            .insert("gzip".into(), 40);
        let sidecars = Layout {
            sidecars: true,
            ..LAYOUT
        };
        assert_eq!(
            unaccounted(&gz, sidecars, Some(&cur)),
            ["a.aaaaaaaaaaaa.css.gz"]
        );
    }

    #[test]
    fn a_change_of_headers_alone_is_a_change() {
        let cur = manifest(&files());
        let mut next = files();
        next.get_mut("a.css").unwrap().cache_control = "public, max-age=60".into();
        let p = plan(next.clone(), LAYOUT, Some(&cur), &no_known(), true, false);
        assert!(p.has_changes());
        assert!(p.uploads.is_empty());
        assert_eq!(p.header_updates.len(), 1);
        assert_eq!(p.changes[0].reason, Reason::Headers);
        // A directory stores no headers: nothing to rewrite, but the manifest changes.
        let p = plan(next, LAYOUT, Some(&cur), &no_known(), false, false);
        assert!(p.header_updates.is_empty());
        assert!(p.has_changes());
    }

    fn written(mut e: Entry, md5: &str) -> Entry {
        e.written = [("identity".to_string(), md5.to_string())].into();
        e
    }

    #[test]
    fn straight_a_first_deploy_writes_pages_to_their_stable_keys_only() {
        let p = plan(files(), LAYOUT, None, &no_known(), true, true);
        let keys: Vec<_> = p.uploads.iter().map(|u| u.key.as_str()).collect();
        assert_eq!(
            keys,
            ["a.aaaaaaaaaaaa.css"],
            "the page's object is not uploaded"
        );
        assert_eq!(p.stable.len(), 1);
        assert_eq!(p.stable[0].key, "index.html");
        assert_eq!(p.stable[0].copy_of, None, "written with its bytes");
        assert_eq!(p.upload_bytes(), 200);
        assert_eq!(p.straight_bytes(), 100);
    }

    #[test]
    fn straight_an_unchanged_page_keeps_what_was_written_and_plans_nothing() {
        let mut cur_files = files();
        let page = cur_files.remove("index.html").unwrap();
        cur_files.insert("index.html".into(), written(page, "00ff"));
        let cur = manifest(&cur_files);
        let p = plan(files(), LAYOUT, Some(&cur), &no_known(), true, true);
        assert!(!p.has_changes(), "{:?}", p.changes);
        assert!(p.uploads.is_empty() && p.stable.is_empty() && p.confirm.is_empty());
        assert_eq!(
            p.files["index.html"].written_md5(Variant::Identity),
            Some("00ff")
        );
    }

    #[test]
    fn straight_a_changed_page_is_written_again_and_its_object_is_never_taken_as_there() {
        let mut cur_files = files();
        let page = cur_files.remove("index.html").unwrap();
        cur_files.insert("index.html".into(), written(page, "00ff"));
        let cur = manifest(&cur_files);
        // New headers only: the page's object is not guaranteed, so not
        // rewritten in place; the stable key is written again.
        let mut next = files();
        next.get_mut("index.html").unwrap().cache_control = "no-cache".into();
        let p = plan(next, LAYOUT, Some(&cur), &no_known(), true, true);
        assert!(p.header_updates.is_empty() && p.uploads.is_empty());
        assert_eq!(p.stable.len(), 1);
        assert_eq!(p.stable[0].reason, Reason::Headers);
        assert_eq!(p.stable[0].copy_of, None);
        // Without straight writes, the same plan would trust the object.
        let page = entry(
            "index.html",
            Some("index.bbbbbbbbbbbb.html"),
            "bbbbbbbbbbbb22",
        );
        let cur = manifest(&[("index.html".to_string(), written(page, "00ff"))].into());
        let p = plan(files(), LAYOUT, Some(&cur), &no_known(), true, false);
        assert_eq!(
            p.uploads
                .iter()
                .filter(|u| u.logical == "index.html")
                .count(),
            1,
            "an object a straight write left unmade is uploaded"
        );
    }
}
