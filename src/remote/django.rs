//! `[manifest] django = true`: Django's `staticfiles.json`, so that an app
//! using `ManifestStaticFilesStorage` (or a storage built on it) resolves
//! `{% static "css/app.css" %}` to the key assetpub published.
//!
//! The bytes are the ones Django's own `save_manifest` writes for the same
//! paths (manifest format "1.1"): Python's `json.dumps` spelling, and the
//! `hash` computed the way Django computes it, so Django's
//! `manifest_hash` matches what it would have written itself.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;

use md5::{Digest as _, Md5};

use crate::error::{Error, Result};
use crate::remote::manifest::Entry;
use crate::store::{Body, Condition, GetOutcome, NoObserver, Store};

/// Where Django looks: `ManifestFilesMixin.manifest_name`, at the root of
/// the static storage (the target prefix).
pub use crate::keys::STATICFILES_KEY as KEY;

/// `ManifestFilesMixin.manifest_version`.
pub const MANIFEST_VERSION: &str = "1.1";

/// The `staticfiles.json` for these files: `{logical: key}`, sorted.
pub fn staticfiles_json(files: &BTreeMap<String, Entry>) -> Vec<u8> {
    let paths: Vec<(&str, &str)> = files
        .iter()
        .map(|(logical, e)| (logical.as_str(), e.key.as_str()))
        .collect();
    render(&paths).into_bytes()
}

/// `json.dumps({"paths": ..., "version": "1.1", "hash": ...})` with the
/// paths in order, as Django's `save_manifest` writes it.
fn render(paths: &[(&str, &str)]) -> String {
    let mut out = String::from("{\"paths\": {");
    for (i, (name, key)) in paths.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        push_str(&mut out, name);
        out.push_str(": ");
        push_str(&mut out, key);
    }
    out.push_str("}, \"version\": ");
    push_str(&mut out, MANIFEST_VERSION);
    out.push_str(", \"hash\": ");
    push_str(&mut out, &manifest_hash(paths));
    out.push('}');
    out
}

/// Django's `manifest_hash`: the first 12 hex digits of the MD5 of
/// `json.dumps(sorted(paths.items()))`. `paths` must be sorted.
fn manifest_hash(paths: &[(&str, &str)]) -> String {
    let mut list = String::from("[");
    for (i, (name, key)) in paths.iter().enumerate() {
        if i > 0 {
            list.push_str(", ");
        }
        list.push('[');
        push_str(&mut list, name);
        list.push_str(", ");
        push_str(&mut list, key);
        list.push(']');
    }
    list.push(']');
    let digest = Md5::digest(list.as_bytes());
    digest
        .iter()
        .take(6)
        .fold(String::with_capacity(12), |mut hex, b| {
            let _ = write!(hex, "{b:02x}");
            hex
        })
}

/// A JSON string as Python's `json.dumps` spells it by default
/// (`ensure_ascii=True`): printable ASCII as is, everything else escaped,
/// characters outside the BMP as UTF-16 surrogate pairs, lowercase hex.
fn push_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            ' '..='~' => out.push(c),
            _ => {
                for unit in c.encode_utf16(&mut [0; 2]) {
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
        }
    }
    out.push('"');
}

/// Whether the target's `staticfiles.json` already holds `json`.
pub async fn remote_is_current(store: &dyn Store, json: &[u8]) -> Result<bool> {
    Ok(match store.get(KEY, None).await? {
        GetOutcome::Found(f) => f.bytes == json,
        GetOutcome::Missing | GetOutcome::NotModified => false,
    })
}

/// Writes `staticfiles.json` at the target, revalidated like the manifest.
pub async fn write_remote(store: &dyn Store, json: &[u8]) -> Result<()> {
    store
        .put(
            KEY,
            Body::Bytes(Arc::new(json.to_vec())),
            &crate::remote::manifest::manifest_meta(),
            Condition::None,
            &NoObserver,
        )
        .await?;
    Ok(())
}

/// Whether the local copy at `path` already holds `json`.
pub fn local_is_current(path: &Path, json: &[u8]) -> bool {
    std::fs::read(path).is_ok_and(|b| b == json)
}

/// Writes the local copy through a temporary file in the same directory,
/// renamed into place, so a running app never reads half a manifest.
pub fn write_local(path: &Path, json: &[u8]) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir).map_err(|e| Error::io("cannot create directory", dir, e))?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".staticfiles.json.tmp-")
        .tempfile_in(dir)
        .map_err(|e| Error::io("cannot create a temporary file in", dir, e))?;
    std::io::Write::write_all(&mut tmp, json)
        .map_err(|e| Error::io("cannot write", tmp.path(), e))?;
    tmp.persist(path)
        .map_err(|e| Error::io("cannot write", path, e.error))?;
    Ok(())
}

/// The local copy of `staticfiles.json`, when `[manifest] local` asks for
/// one and it does not already hold these paths.
pub fn write_local_if_changed(path: Option<&Path>, json: &[u8]) -> Result<()> {
    match path {
        Some(path) if !local_is_current(path, json) => write_local(path, json),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Written by Django 5.2's `ManifestStaticFilesStorage.save_manifest`
    /// for these paths (a sorted dict), and its `manifest_hash`.
    const DJANGO_WROTE: &str = concat!(
        r#"{"paths": {"a\"b\\c\u007f\u0001.txt": "a\"b\\c\u007f\u0001.aaaaaaaaaaaa.txt", "#,
        r#""css/app.css": "css/app.3f2a9c1b7d4e.css", "#,
        r#""img/caf\u00e9 \ud83d\ude00.png": "img/caf\u00e9 \ud83d\ude00.0123456789ab.png", "#,
        r#""index.html": "index.html"}, "version": "1.1", "hash": "2882e8802708"}"#
    );

    fn entry(key: &str) -> Entry {
        Entry {
            key: key.to_string(),
            object: None,
            blake3: "0".repeat(64),
            size: 1,
            integrity: String::new(),
            written: Default::default(),
            content_type: "text/plain".into(),
            cache_control: "no-cache".into(),
            encodings: BTreeMap::new(),
            content_disposition: None,
            content_language: None,
            metadata: BTreeMap::new(),
        }
    }

    #[test]
    fn the_bytes_are_the_ones_django_writes() {
        let files: BTreeMap<String, Entry> = [
            ("css/app.css", "css/app.3f2a9c1b7d4e.css"),
            ("index.html", "index.html"),
            (
                "img/caf\u{e9} \u{1F600}.png",
                "img/caf\u{e9} \u{1F600}.0123456789ab.png",
            ),
            (
                "a\"b\\c\u{7f}\u{1}.txt",
                "a\"b\\c\u{7f}\u{1}.aaaaaaaaaaaa.txt",
            ),
        ]
        .into_iter()
        .map(|(l, k)| (l.to_string(), entry(k)))
        .collect();
        let json = staticfiles_json(&files);
        assert_eq!(String::from_utf8(json.clone()).unwrap(), DJANGO_WROTE);
        let parsed: serde_json::Value = serde_json::from_slice(&json).unwrap();
        assert_eq!(
            parsed["paths"]["img/caf\u{e9} \u{1F600}.png"],
            "img/caf\u{e9} \u{1F600}.0123456789ab.png"
        );
        assert_eq!(parsed["version"], "1.1");
    }

    #[test]
    fn no_files_is_an_empty_manifest_with_the_hash_of_an_empty_list() {
        // md5("[]")
        assert_eq!(
            String::from_utf8(staticfiles_json(&BTreeMap::new())).unwrap(),
            r#"{"paths": {}, "version": "1.1", "hash": "d75171398898"}"#
        );
    }

    #[test]
    fn python_string_escapes() {
        let mut s = String::new();
        push_str(&mut s, "\u{8}\u{c}\n\r\t\u{1f} ~\u{80}\u{ffff}\u{10000}/");
        assert_eq!(s, r#""\b\f\n\r\t\u001f ~\u0080\uffff\ud800\udc00/""#);
    }

    #[test]
    fn the_local_copy_is_replaced_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app/static/staticfiles.json");
        assert!(!local_is_current(&path, b"{}"));
        write_local(&path, b"{\"a\": 1}").unwrap();
        write_local(&path, b"{}").unwrap();
        assert!(local_is_current(&path, b"{}"));
        let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["staticfiles.json"], "no temporary file is left");
    }
}
