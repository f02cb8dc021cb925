//! The manifest: which object each logical file is served from. The public
//! `manifest.json` is the one switch between deploys; every deploy's copy
//! lives at `.assetpub/deploys/<id>.json`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::settings::redirects::{HeaderRule, Redirect};
use crate::settings::{Config, IMMUTABLE, ObjectEncoding, TargetUrl};
use crate::store::ObjectMeta;

pub const FORMAT_VERSION: u32 = 1;
pub use crate::keys::{DEPLOYS_PREFIX, LOCK_KEY};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub version: u32,
    pub deploy: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    pub created: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ci_run: Option<String>,
    /// What the deploy is: `publish --message`, or the git commit's subject.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Whether `.gz`/`.br` objects sit beside each object.
    #[serde(default)]
    pub sidecars: bool,
    /// What the object at each key holds: "identity", "gzip" or "br".
    #[serde(default = "identity")]
    pub encoding: String,
    pub files: BTreeMap<String, Entry>,
    /// Set on the served manifest (whose deploy it still names) from the
    /// moment a run starts changing stable keys until its switch: the
    /// record by which the next run finds an interrupted switch and undoes
    /// it. Never in a deploy record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub switching: Option<Box<Switching>>,
    /// Whether the store enforces `If-None-Match`/`If-Match`, as probed by
    /// the run that wrote this manifest: a runner with no state DB reads it
    /// here instead of probing again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conditional_writes: Option<bool>,
    /// A preview's: when `prune --previews` may delete it (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<Box<str>>,
    /// The deploy's redirects (`_redirects`, `[[redirects]]`); on S3 each
    /// exact one is also an object at its source key.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub redirects: Vec<Redirect>,
    /// The deploy's header rules (`_headers`, `headers` of `[[rules]]`),
    /// for the server or CDN in front of the target to send.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<HeaderRule>,
}

/// A switch under way: the deploy the stable keys are being changed to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Switching {
    pub to: String,
    pub started: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
}

fn identity() -> String {
    "identity".to_string()
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// The key the site uses for this file.
    pub key: String,
    /// The immutable object a stable key is copied from, when it differs
    /// from `key`; rollback copies it back without the old build.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object: Option<String>,
    pub blake3: String,
    pub size: u64,
    /// The Subresource Integrity value of the bytes at `key` as published
    /// (identity encoding): `sha384-<base64>`. '' in manifests written
    /// before it was recorded.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub integrity: String,
    /// A page written straight to its stable key: the MD5 (hex) of what
    /// each variant's stable key was written with, by variant name. Its
    /// immutable object (`object`) is then made from the stable key, by a
    /// copy guarded by that MD5 as the ETag, only when a later switch is
    /// about to replace the stable key: until then it may not exist.
    /// Empty: the object was uploaded first and the stable key copied
    /// from it.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub written: BTreeMap<String, String>,
    pub content_type: String,
    pub cache_control: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub encodings: BTreeMap<String, u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_disposition: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_language: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
}

impl Entry {
    /// The immutable object holding this file's bytes.
    pub fn object_key(&self) -> &str {
        self.object.as_deref().unwrap_or(&self.key)
    }

    pub fn is_stable(&self) -> bool {
        self.object.is_some()
    }

    /// The size of `variant`'s bytes. Every variant [`objects_for`] names
    /// is one the entry has; another (only a hand-made manifest could ask
    /// for it) counts as the identity bytes.
    pub fn variant_size(&self, variant: Variant) -> u64 {
        match variant {
            Variant::Identity => self.size,
            v => self.encodings.get(v.name()).copied().unwrap_or(self.size),
        }
    }

    /// The MD5 (hex) the stable key of `variant` was written with, when
    /// the page was written straight to it (see `written`).
    pub fn written_md5(&self, variant: Variant) -> Option<&str> {
        self.written.get(variant.name()).map(String::as_str)
    }

    /// Whether the bytes at the stable key may be the only copy: its
    /// immutable object is made when the stable key is replaced.
    pub fn is_written_straight(&self) -> bool {
        !self.written.is_empty()
    }
}

/// Which bytes an object holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Variant {
    Identity,
    Gzip,
    Br,
}

impl Variant {
    pub fn from_name(name: &str) -> Option<Variant> {
        match name {
            "identity" => Some(Variant::Identity),
            "gzip" => Some(Variant::Gzip),
            "br" => Some(Variant::Br),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Variant::Identity => "identity",
            Variant::Gzip => "gzip",
            Variant::Br => "br",
        }
    }

    pub fn sidecar_suffix(self) -> &'static str {
        match self {
            Variant::Identity => "",
            Variant::Gzip => ".gz",
            Variant::Br => ".br",
        }
    }
}

/// Whether `id` can name a deploy record: one key segment of plain
/// characters.
pub fn is_deploy_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// One object a manifest entry needs on the target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectRef {
    pub key: String,
    /// Bytes: the file's content in this encoding.
    pub variant: Variant,
    /// A stable-key copy (rewritten on every deploy that changes it), as
    /// opposed to an immutable object.
    pub stable: bool,
    /// For a stable copy, the immutable object it is copied from.
    pub copy_of: Option<String>,
}

impl Manifest {
    pub fn parse(bytes: &[u8], what: &str) -> Result<Manifest> {
        // One pass for a manifest this version reads; the probe, which says
        // why one is not, only runs for the rest.
        let m = match serde_json::from_slice::<Manifest>(bytes) {
            Ok(m) if m.version <= FORMAT_VERSION => m,
            parsed => return Err(Manifest::refusal(bytes, what, parsed.err())),
        };
        if let Some(sw) = &m.switching
            && !is_deploy_id(&sw.to)
        {
            return Err(Error::Store(format!(
                "{what} names an invalid deploy `{}` as being switched to; refusing to use it",
                sw.to
            )));
        }
        for (logical, entry) in &m.files {
            for key in std::iter::once(&entry.key).chain(entry.object.as_ref()) {
                crate::keys::check_key(key).map_err(|_| {
                    Error::Store(format!(
                        "{what} names an invalid key `{key}` for `{logical}`; refusing to use it"
                    ))
                })?;
            }
        }
        for r in &m.redirects {
            let safe = r.from.starts_with('/')
                && crate::keys::check_key(&r.key()).is_ok()
                && !r.to.chars().any(|c| c.is_control() || c.is_whitespace())
                && !r.from.chars().any(char::is_control);
            if !safe {
                return Err(Error::Store(format!(
                    "{what} names an invalid redirect from `{}`; refusing to use it",
                    r.from.escape_debug()
                )));
            }
        }
        Ok(m)
    }

    /// Why `bytes` is not a manifest this version can use.
    fn refusal(bytes: &[u8], what: &str, parse_error: Option<serde_json::Error>) -> Error {
        #[derive(Deserialize)]
        struct Probe {
            version: Option<u64>,
        }
        let probe: Probe = match serde_json::from_slice(bytes) {
            Ok(p) => p,
            Err(e) => {
                return Error::Store(format!(
                    "{what} is not a valid assetpub manifest ({e}); refusing to overwrite it"
                ))
                .with_hint("inspect it, and move it away if it is not assetpub's");
            }
        };
        match probe.version {
            Some(v) if v > FORMAT_VERSION as u64 => Error::Store(format!(
                "{what} has format version {v}, newer than this assetpub understands ({FORMAT_VERSION}); refusing to overwrite it"
            ))
            .with_hint("upgrade assetpub"),
            None => Error::Store(format!(
                "{what} has no `version` field: not an assetpub manifest; refusing to overwrite it"
            )),
            Some(_) => Error::Store(format!(
                "{what} is not a valid assetpub manifest ({}); refusing to overwrite it",
                parse_error.map_or_else(|| "unreadable".to_string(), |e| e.to_string())
            )),
        }
    }

    pub fn to_json(&self) -> Vec<u8> {
        let mut v = serde_json::to_vec_pretty(self).expect("a manifest always serializes");
        v.push(b'\n');
        v
    }

    /// The manifest as served once no switch is under way.
    pub fn settled(&self) -> Manifest {
        Manifest {
            switching: None,
            conditional_writes: None,
            ..self.clone()
        }
    }

    pub fn deploy_key(deploy: &str) -> String {
        format!("{DEPLOYS_PREFIX}{deploy}.json")
    }

    /// Whether both manifests serve the same files with the same headers.
    pub fn same_content(&self, other: &Manifest) -> bool {
        self.files == other.files
            && self.redirects == other.redirects
            && self.headers == other.headers
            && self.sidecars == other.sidecars
            && self.encoding == other.encoding
    }

    /// What the object at each key holds (sidecars aside).
    pub fn object_encoding(&self) -> Variant {
        Variant::from_name(&self.encoding).unwrap_or(Variant::Identity)
    }

    /// Every object this manifest needs, immutable ones first.
    pub fn objects(&self) -> Vec<ObjectRef> {
        let mut out = Vec::new();
        for entry in self.files.values() {
            out.extend(objects_for(entry, self.sidecars, self.object_encoding()));
        }
        out
    }
}

/// The objects one entry needs: its immutable object (and sidecars), then its
/// stable-key copy (and sidecars) when it keeps a stable name. The object at
/// the key holds `encoding` when that variant was worth making.
pub fn objects_for(entry: &Entry, sidecars: bool, encoding: Variant) -> Vec<ObjectRef> {
    let main = if entry.encodings.contains_key(encoding.name()) {
        encoding
    } else {
        Variant::Identity
    };
    let mut variants = vec![main];
    if sidecars {
        variants.extend(
            [Variant::Gzip, Variant::Br]
                .into_iter()
                .filter(|v| *v != main && entry.encodings.contains_key(v.name())),
        );
    }
    let mut out = Vec::new();
    for &v in &variants {
        out.push(ObjectRef {
            key: format!("{}{}", entry.object_key(), suffix(v, main)),
            variant: v,
            stable: false,
            copy_of: None,
        });
    }
    if let Some(object) = &entry.object {
        for &v in &variants {
            out.push(ObjectRef {
                key: format!("{}{}", entry.key, suffix(v, main)),
                variant: v,
                stable: true,
                copy_of: Some(format!("{object}{}", suffix(v, main))),
            });
        }
    }
    out
}

fn suffix(v: Variant, main: Variant) -> &'static str {
    if v == main { "" } else { v.sidecar_suffix() }
}

/// `dir/stem.<first 12 hex>.ext`, the key of a fingerprinted file.
pub fn fingerprinted_name(logical: &str, blake3: &str) -> String {
    let hash = &blake3[..12.min(blake3.len())];
    let name_start = logical.rfind('/').map_or(0, |p| p + 1);
    let name = &logical[name_start..];
    // Built by hand: `format!` cost more than the rest of naming a file.
    let mut out = String::with_capacity(logical.len() + hash.len() + 1);
    match name.rfind('.') {
        Some(dot) if dot > 0 => {
            out.push_str(&logical[..name_start + dot]);
            out.push('.');
            out.push_str(hash);
            out.push_str(&logical[name_start + dot..]);
        }
        _ => {
            out.push_str(logical);
            out.push('.');
            out.push_str(hash);
        }
    }
    out
}

/// `20261123T200135Z-3f2a9c`: sorts by time, then names the content.
/// A deploy's id: its time, then a digest of everything else the manifest
/// says (its `deploy` field aside): the entries, the layout, the parent and
/// the millisecond it was made. Two deploys made within one second, even of
/// the same files (after a rollback, or with another encoding), differ.
pub fn deploy_id(now: chrono::DateTime<chrono::Utc>, manifest: &Manifest) -> String {
    let digest = blake3::hash(&serde_json::to_vec(manifest).expect("manifest serializes"));
    format!("{}-{}", now.format("%Y%m%dT%H%M%SZ"), &digest.to_hex()[..6])
}

/// How the target stores variants: decides which encodings are worth making.
#[derive(Debug, Clone, Copy)]
pub struct Layout {
    pub sidecars: bool,
    pub encoding: Variant,
}

impl Layout {
    pub fn for_config(config: &Config) -> Layout {
        match config.target.url {
            // nginx's gzip_static/brotli_static read sidecars from disk.
            TargetUrl::Dir(_) => Layout {
                sidecars: true,
                encoding: Variant::Identity,
            },
            TargetUrl::S3 { .. } => Layout {
                sidecars: config.target.sidecars,
                encoding: match config.target.encoding {
                    ObjectEncoding::Identity => Variant::Identity,
                    ObjectEncoding::Gzip => Variant::Gzip,
                    ObjectEncoding::Br => Variant::Br,
                },
            },
        }
    }
}

/// The headers an object of this entry is written with.
pub fn object_meta(entry: &Entry, variant: Variant, stable_copy: bool) -> ObjectMeta {
    let mut metadata = entry.metadata.clone();
    metadata.insert("blake3".to_string(), entry.blake3.clone());
    ObjectMeta {
        content_type: Some(entry.content_type.clone()),
        // The fingerprinted object behind a stable key never changes, so it
        // is immutable even though the stable key is revalidated.
        cache_control: Some(if entry.is_stable() && !stable_copy {
            IMMUTABLE.to_string()
        } else {
            entry.cache_control.clone()
        }),
        content_encoding: match variant {
            Variant::Identity => None,
            v => Some(v.name().to_string()),
        },
        content_disposition: entry.content_disposition.clone(),
        content_language: entry.content_language.clone(),
        metadata,
        website_redirect_location: None,
    }
}

/// The headers of a redirect object (S3): empty, answered by the website
/// endpoint with a 301 to `location`.
pub fn redirect_meta(location: &str) -> ObjectMeta {
    ObjectMeta {
        content_type: Some("text/html; charset=utf-8".into()),
        cache_control: Some(crate::settings::REVALIDATE.into()),
        website_redirect_location: Some(location.to_string()),
        ..ObjectMeta::default()
    }
}

/// A short digest of the headers, to notice a change of rules alone.
pub fn meta_digest(meta: &ObjectMeta) -> String {
    let text = format!("{meta:?}");
    blake3::hash(text.as_bytes()).to_hex()[..16].to_string()
}

/// The headers of `manifest.json` and of every deploy record.
pub fn manifest_meta() -> ObjectMeta {
    ObjectMeta {
        content_type: Some("application/json".into()),
        cache_control: Some("no-cache".into()),
        ..ObjectMeta::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: &str = "3f2a9c1b7d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8";

    #[test]
    fn fingerprinted_names() {
        assert_eq!(
            fingerprinted_name("css/app.css", H),
            "css/app.3f2a9c1b7d4e.css"
        );
        assert_eq!(
            fingerprinted_name("app.js.map", H),
            "app.js.3f2a9c1b7d4e.map"
        );
        assert_eq!(
            fingerprinted_name("a/b/LICENSE", H),
            "a/b/LICENSE.3f2a9c1b7d4e"
        );
        assert_eq!(
            fingerprinted_name("index.html", H),
            "index.3f2a9c1b7d4e.html"
        );
        assert_eq!(
            fingerprinted_name("img/ü ber.png", H),
            "img/ü ber.3f2a9c1b7d4e.png"
        );
        assert_eq!(
            fingerprinted_name("a/.htaccess", H),
            "a/.htaccess.3f2a9c1b7d4e"
        );
        assert_eq!(
            fingerprinted_name("a.b/trailing.", H),
            "a.b/trailing.3f2a9c1b7d4e."
        );
    }

    #[test]
    fn deploy_ids_sort_by_time() {
        let t = chrono::DateTime::parse_from_rfc3339("2026-11-23T20:01:35Z")
            .unwrap()
            .to_utc();
        let mut m = Manifest {
            version: FORMAT_VERSION,
            deploy: String::new(),
            parent: None,
            created: "2026-11-23T20:01:35.120Z".into(),
            commit: None,
            ci_run: None,
            message: None,
            sidecars: false,
            encoding: "identity".into(),
            files: BTreeMap::new(),
            switching: None,
            conditional_writes: None,
            expires: None,
            redirects: Vec::new(),
            headers: Vec::new(),
        };
        let id = deploy_id(t, &m);
        assert!(id.starts_with("20261123T200135Z-"), "{id}");
        assert_eq!(id.len(), "20261123T200135Z-3f2a9c".len());
        // The same files in the same second, in another layout or after
        // another parent: another deploy.
        m.encoding = "gzip".into();
        assert_ne!(deploy_id(t, &m), id);
        m.encoding = "identity".into();
        m.parent = Some("20261123T200134Z-aaaaaa".into());
        assert_ne!(deploy_id(t, &m), id);
    }

    fn entry(key: &str, object: Option<&str>) -> Entry {
        Entry {
            key: key.into(),
            object: object.map(Into::into),
            blake3: H.into(),
            size: 10,
            integrity: String::new(),
            written: Default::default(),
            content_type: "text/html; charset=utf-8".into(),
            cache_control: "no-cache".into(),
            encodings: [("gzip".to_string(), 5)].into(),
            content_disposition: None,
            content_language: None,
            metadata: BTreeMap::new(),
        }
    }

    #[test]
    fn objects_of_a_stable_entry_with_sidecars() {
        let keys: Vec<_> = objects_for(
            &entry("index.html", Some("index.3f2a9c1b7d4e.html")),
            true,
            Variant::Identity,
        )
        .into_iter()
        .map(|o| (o.key, o.stable, o.copy_of))
        .collect();
        assert_eq!(
            keys,
            vec![
                ("index.3f2a9c1b7d4e.html".to_string(), false, None),
                ("index.3f2a9c1b7d4e.html.gz".to_string(), false, None),
                (
                    "index.html".to_string(),
                    true,
                    Some("index.3f2a9c1b7d4e.html".to_string())
                ),
                (
                    "index.html.gz".to_string(),
                    true,
                    Some("index.3f2a9c1b7d4e.html.gz".to_string())
                ),
            ]
        );
        assert_eq!(
            objects_for(&entry("a.3f2a9c1b7d4e.css", None), false, Variant::Identity).len(),
            1
        );
        let gz: Vec<_> = objects_for(&entry("a.3f2a9c1b7d4e.css", None), false, Variant::Gzip)
            .into_iter()
            .map(|o| (o.key, o.variant))
            .collect();
        assert_eq!(gz, vec![("a.3f2a9c1b7d4e.css".to_string(), Variant::Gzip)]);
    }

    #[test]
    fn parse_refuses_garbage_and_newer_versions() {
        let garbage = Manifest::parse(b"{not json", "`manifest.json`").unwrap_err();
        assert!(garbage.to_string().contains("not a valid"), "{garbage}");
        assert_eq!(
            garbage.hint(),
            Some("inspect it, and move it away if it is not assetpub's")
        );
        let newer = br#"{"version": 2, "deploy": "x", "created": "y", "files": {}}"#;
        let newer = Manifest::parse(newer, "`manifest.json`").unwrap_err();
        assert!(newer.to_string().contains("newer"), "{newer}");
        assert!(!newer.to_string().contains("hint:"), "{newer}");
        assert_eq!(newer.hint(), Some("upgrade assetpub"));
        let escaping = br#"{"version": 1, "deploy": "x", "created": "y", "files": {"a": {"key": "../a", "blake3": "h", "size": 1, "content_type": "t", "cache_control": "c"}}}"#;
        assert!(Manifest::parse(escaping, "`manifest.json`").is_err());
    }

    /// The state DB keeps `meta_digest` of every object: the text it is
    /// taken of stays what it was before redirects, or every object of
    /// every target would be copied again for "new headers".
    #[test]
    fn the_headers_digest_of_an_object_without_a_redirect_is_unchanged() {
        let meta = ObjectMeta {
            content_type: Some("text/css".into()),
            metadata: [("blake3".to_string(), "ab".to_string())].into(),
            ..ObjectMeta::default()
        };
        assert_eq!(
            format!("{meta:?}"),
            r#"ObjectMeta { content_type: Some("text/css"), cache_control: None, content_encoding: None, content_disposition: None, content_language: None, metadata: {"blake3": "ab"} }"#
        );
        assert_eq!(meta_digest(&meta), "d5adb05beda2c999");
        let redirect = redirect_meta("/new");
        assert!(format!("{redirect:?}").contains("website_redirect_location: \"/new\""));
    }

    #[test]
    fn redirects_that_would_name_unsafe_keys_are_refused() {
        let with = |from: &str, to: &str| {
            format!(
                r#"{{"version": 1, "deploy": "x", "created": "y", "files": {{}}, "redirects": [{{"from": {}, "to": {}, "status": 301}}]}}"#,
                serde_json::Value::from(from),
                serde_json::Value::from(to)
            )
        };
        let ok = Manifest::parse(with("/old", "/new").as_bytes(), "m").unwrap();
        assert_eq!(ok.redirects[0].key(), "old");
        for (from, to) in [
            ("/../x", "/new"),
            ("/a\\b", "/new"),
            ("old", "/new"),
            ("/a", "/b\r\nX-Evil: 1"),
            ("/.assetpub/../../x", "/new"),
        ] {
            let e = Manifest::parse(with(from, to).as_bytes(), "m");
            assert!(e.is_err(), "{from} -> {to}");
        }
        // Written before redirects existed: none.
        let old = br#"{"version": 1, "deploy": "x", "created": "y", "files": {}}"#;
        assert!(Manifest::parse(old, "m").unwrap().redirects.is_empty());
    }

    #[test]
    fn entries_written_before_integrity_parse_without_it() {
        let old = br#"{"version": 1, "deploy": "x", "created": "y", "files": {"a.css": {"key": "a.css", "blake3": "h", "size": 1, "content_type": "t", "cache_control": "c"}}}"#;
        let m = Manifest::parse(old, "`manifest.json`").unwrap();
        assert_eq!(m.files["a.css"].integrity, "");
        let mut e = entry("a.css", None);
        e.integrity = "sha384-x".into();
        let json = serde_json::to_value(&e).unwrap();
        assert_eq!(json["integrity"], "sha384-x");
    }

    #[test]
    fn round_trip() {
        let m = Manifest {
            version: 1,
            deploy: "d".into(),
            parent: None,
            created: "c".into(),
            commit: None,
            ci_run: None,
            message: None,
            sidecars: true,
            encoding: "identity".into(),
            files: [(
                "index.html".to_string(),
                entry("index.html", Some("index.3f2a9c1b7d4e.html")),
            )]
            .into(),
            switching: None,
            conditional_writes: None,
            expires: None,
            redirects: Vec::new(),
            headers: Vec::new(),
        };
        assert_eq!(Manifest::parse(&m.to_json(), "m").unwrap(), m);
    }

    /// Mutated manifests (bytes flipped, cut, spliced): parsing never panics,
    /// and whatever it accepts names only safe keys and survives a round
    /// trip.
    #[test]
    fn mutated_manifests_never_panic_and_accepted_ones_are_safe() {
        let m = Manifest {
            version: 1,
            deploy: "20261124T175941Z-2136b3".into(),
            parent: Some("20261124T175000Z-aaaaaa".into()),
            created: "2026-11-24T17:59:41.501Z".into(),
            commit: Some("abc".into()),
            ci_run: None,
            message: None,
            sidecars: true,
            encoding: "gzip".into(),
            files: [
                (
                    "index.html".to_string(),
                    entry("index.html", Some("index.3f2a9c1b7d4e.html")),
                ),
                (
                    "css/app.css".to_string(),
                    entry("css/app.3f2a9c1b7d4e.css", None),
                ),
            ]
            .into(),
            switching: None,
            conditional_writes: None,
            expires: None,
            redirects: Vec::new(),
            headers: Vec::new(),
        };
        let base = m.to_json();
        let splices: [&[u8]; 8] = [
            b"..",
            b"/",
            b"\\",
            b"\\u0000",
            b"null",
            b"999999999999999999999",
            b"{",
            b"\"",
        ];
        let mut x: u64 = 0x2545_F491_4F6C_DD1D;
        let mut next = |n: usize| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % n as u64) as usize
        };
        let mut accepted = 0;
        for _ in 0..20_000 {
            let mut b = base.clone();
            for _ in 0..1 + next(3) {
                let at = next(b.len());
                match next(4) {
                    0 => b[at] = next(256) as u8,
                    1 => {
                        b.truncate(at);
                    }
                    2 => {
                        b.remove(at);
                    }
                    _ => {
                        let s = splices[next(splices.len())];
                        b.splice(at..at, s.iter().copied());
                    }
                }
                if b.is_empty() {
                    break;
                }
            }
            if let Ok(parsed) = Manifest::parse(&b, "m") {
                accepted += 1;
                for o in parsed.objects() {
                    assert!(crate::keys::check_key(&o.key).is_ok(), "{:?}", o.key);
                }
                let _ = parsed.object_encoding();
                assert_eq!(Manifest::parse(&parsed.to_json(), "m").unwrap(), parsed);
            }
        }
        assert!(accepted > 0, "some mutations keep the manifest valid");
    }
}
