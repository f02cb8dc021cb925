//! What the upload sends for each object it writes: bytes that preparation
//! made and kept, bytes made here for the objects that need them, or the
//! file itself, streamed from disk. The last part of preparing, run by
//! `publish` once it knows which objects go out, so `plan` and unchanged
//! files never pay for it.
//!
//! Bytes are made here when preparation did not keep them because the cache
//! already knew their hash and size (a file's rewritten text, a compressed
//! variant): the file is read once for all of its objects, rewritten, and
//! checked against the hash its entry names before anything is compressed.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::pipeline::compress::{self, Encoding};
use crate::pipeline::hash::hash_bytes;
use crate::pipeline::prepare::{Prepared, changed_error, content};
use crate::remote::manifest::Variant;

/// The body of one object.
#[derive(Debug, Clone)]
pub enum Payload {
    /// Bytes in memory, hashed when they were made.
    Bytes(Arc<Vec<u8>>),
    /// The file on disk as collected: to stream, checking as it goes that it
    /// still holds the bytes of `blake3`.
    File {
        path: PathBuf,
        size: u64,
        blake3: String,
    },
}

/// The payload of each object, in order: variant `.1` of file `.0`. Reads,
/// rewrites and compresses (in parallel) only what preparation did not
/// keep; a file that no longer holds the bytes its entry was made from is
/// an error naming it.
pub fn payloads(objects: &[(&Prepared, Variant)], js_imports: bool) -> Result<Vec<Payload>> {
    let mut out: Vec<Option<Payload>> = Vec::with_capacity(objects.len());
    // The files to read, in the order of their first object, each with the
    // objects it gives.
    let mut todo: Vec<(&Prepared, Vec<(usize, Variant)>)> = Vec::new();
    let mut slot: HashMap<&str, usize> = HashMap::new();
    for (i, &(file, variant)) in objects.iter().enumerate() {
        let held = kept(file, variant);
        if held.is_none() {
            let at = *slot.entry(file.logical.as_str()).or_insert_with(|| {
                todo.push((file, Vec::new()));
                todo.len() - 1
            });
            todo[at].1.push((i, variant));
        }
        out.push(held);
    }
    let made: Vec<Result<Vec<(usize, Payload)>>> = todo
        .par_iter()
        .map(|(file, wanted)| make(file, wanted, js_imports))
        .collect();
    for r in made {
        for (i, payload) in r? {
            out[i] = Some(payload);
        }
    }
    Ok(out
        .into_iter()
        .map(|p| p.expect("every object has a payload"))
        .collect())
}

/// The payload preparation left for the object, if any: the file itself,
/// or bytes it made and kept.
fn kept(file: &Prepared, variant: Variant) -> Option<Payload> {
    match variant {
        Variant::Identity if streams_from_disk(file) => Some(Payload::File {
            path: file.path.clone(),
            size: file.entry.size,
            blake3: file.entry.blake3.clone(),
        }),
        Variant::Identity => file.data.clone().map(Payload::Bytes),
        v => file.variants.get(&v).cloned().map(Payload::Bytes),
    }
}

/// The published bytes of one file, read once, and the variants of them
/// that `wanted` names.
fn make(
    file: &Prepared,
    wanted: &[(usize, Variant)],
    js_imports: bool,
) -> Result<Vec<(usize, Payload)>> {
    let data = match &file.data {
        Some(d) => d.clone(),
        None => {
            let d =
                content(file, js_imports).map_err(|e| Error::io("cannot read", &file.path, e))?;
            if hash_bytes(&d) != file.entry.blake3 {
                return Err(changed_error(&file.path));
            }
            d
        }
    };
    Ok(wanted
        .iter()
        .map(|&(i, variant)| {
            let bytes = match variant {
                Variant::Identity => data.clone(),
                Variant::Gzip => Arc::new(compress::compress(&data, Encoding::Gzip)),
                Variant::Br => Arc::new(compress::compress(&data, Encoding::Br)),
            };
            (i, Payload::Bytes(bytes))
        })
        .collect())
}

/// Whether the published bytes are the file on disk as it is.
pub fn streams_from_disk(p: &Prepared) -> bool {
    p.data.is_none() && p.rewrite_targets.is_none()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::cache::MemoryCache;
    use crate::pipeline::{collect, hash, prepare, scan};
    use crate::report::CollectingReporter;
    use crate::settings::{Config, Overrides};

    fn site() -> (tempfile::TempDir, Config) {
        let dir = tempfile::tempdir().unwrap();
        let write = |rel: &str, bytes: &[u8]| {
            let p = dir.path().join("site").join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, bytes).unwrap();
        };
        write(
            "css/site.css",
            ".logo { background: url(../img/logo.png) no-repeat; margin: 0 auto; }\n"
                .repeat(50)
                .as_bytes(),
        );
        write(
            "img/logo.png",
            &(0..5000u32)
                .map(|i| (i * 7919 % 251) as u8)
                .collect::<Vec<_>>(),
        );
        write(
            "robots.txt",
            "User-agent: *\nDisallow:\n".repeat(40).as_bytes(),
        );
        let config = Config::parse(
            "[source]\ndirs = [\"site\"]\n[target]\nurl = \"file://out\"\n",
            &dir.path().join("publish.toml"),
            dir.path(),
            &Overrides::default(),
        )
        .unwrap();
        (dir, config)
    }

    fn prepared(config: &Config, cache: &mut MemoryCache) -> HashMap<String, Prepared> {
        let reporter = CollectingReporter::default();
        let files = collect::collect(config, &[], &reporter).unwrap();
        let scanner = scan::Scanner::new(config);
        let (hashed, _) = hash::hash_all(
            files,
            HashMap::new(),
            cache,
            crate::util::now_ns(),
            &scanner,
            &reporter,
        )
        .unwrap();
        prepare::prepare(config, hashed, prepare::Sizes::Exact, cache, &reporter)
            .unwrap()
            .into_iter()
            .map(|p| (p.logical.clone(), p))
            .collect()
    }

    /// Every object of every file, identity first.
    fn objects(files: &HashMap<String, Prepared>) -> Vec<(&Prepared, Variant)> {
        let mut out = Vec::new();
        let mut names: Vec<&String> = files.keys().collect();
        names.sort();
        for n in names {
            let p = &files[n];
            out.push((p, Variant::Identity));
            for (e, v) in [("gzip", Variant::Gzip), ("br", Variant::Br)] {
                if p.entry.encodings.contains_key(e) {
                    out.push((p, v));
                }
            }
        }
        out
    }

    fn bytes(p: &Payload) -> Vec<u8> {
        match p {
            Payload::Bytes(b) => b.to_vec(),
            Payload::File { path, .. } => std::fs::read(path).unwrap(),
        }
    }

    #[test]
    fn a_size_cached_for_one_brotli_stream_is_not_taken_for_pieces() {
        // A stylesheet over 1 MiB: brotli compresses it in pieces, which an
        // earlier version of the state DB's cache knew as one stream, of
        // another size.
        let (dir, config) = site();
        let big: Vec<u8> = (0..40_000u32)
            .flat_map(|i| {
                format!(".r{i}{{margin:{}px;color:#{:06x}}}", i % 37, i * 7919).into_bytes()
            })
            .collect();
        assert!(big.len() > 1 << 20);
        std::fs::write(dir.path().join("site/css/big.css"), &big).unwrap();
        let mut cache = MemoryCache::default();
        let blake3 = hash_bytes(&big);
        cache
            .compressed
            .insert((blake3.clone(), "br".into()), Some(12_345));
        let files = prepared(&config, &mut cache);
        let p = &files["css/big.css"];
        let made = payloads(&[(p, Variant::Br)], false).unwrap();
        let br = p.entry.encodings["br"];
        assert_ne!(br, 12_345, "the one-stream size was taken");
        assert_eq!(bytes(&made[0]).len() as u64, br);
        // And the next run takes the size it recorded.
        let again = prepared(&config, &mut cache);
        assert_eq!(again["css/big.css"].entry.encodings["br"], br);
        assert!(again["css/big.css"].variants.is_empty(), "from the cache");
    }

    #[test]
    fn bytes_the_cache_spared_are_made_as_preparation_would_have() {
        let (_dir, config) = site();
        let mut cache = MemoryCache::default();
        let fresh = prepared(&config, &mut cache);
        let css = &fresh["css/site.css"];
        assert!(
            css.data.is_some() && !css.variants.is_empty(),
            "made and kept"
        );
        // The same tree again: the rewrite result and the compressed sizes
        // come from the cache, so nothing is kept.
        let cached = prepared(&config, &mut cache);
        let css = &cached["css/site.css"];
        assert!(css.data.is_none() && css.rewrite_targets.is_some());
        assert!(cached.values().all(|p| p.variants.is_empty()));

        let a = payloads(&objects(&fresh), false).unwrap();
        let b = payloads(&objects(&cached), false).unwrap();
        assert_eq!(a.len(), b.len());
        assert!(a.len() > cached.len(), "compressed variants too: {a:?}");
        for (((p, v), x), y) in objects(&cached).iter().zip(&a).zip(&b) {
            assert_eq!(bytes(x), bytes(y), "{} {v:?}", p.logical);
            if *v == Variant::Identity {
                assert_eq!(hash_bytes(&bytes(y)), p.entry.blake3, "{}", p.logical);
            } else {
                assert_eq!(
                    bytes(y).len() as u64,
                    p.entry.encodings[v.name()],
                    "{} {v:?}",
                    p.logical
                );
            }
        }
        // Files published as they are stream from disk, whoever made them.
        for (objects, payloads) in [(objects(&fresh), &a), (objects(&cached), &b)] {
            for ((p, v), payload) in objects.iter().zip(payloads) {
                let streams = *v == Variant::Identity && p.logical != "css/site.css";
                assert_eq!(
                    matches!(payload, Payload::File { .. }),
                    streams,
                    "{} {v:?}",
                    p.logical
                );
            }
        }
    }

    #[test]
    fn a_file_changed_since_it_was_prepared_is_refused() {
        let (dir, config) = site();
        let mut cache = MemoryCache::default();
        prepared(&config, &mut cache);
        let cached = prepared(&config, &mut cache);
        std::fs::write(
            dir.path().join("site/css/site.css"),
            ".logo { background: url(../img/logo.png) }\n".repeat(50),
        )
        .unwrap();
        let css = &cached["css/site.css"];
        for v in [Variant::Identity, Variant::Gzip] {
            let e = payloads(&[(css, v)], false).unwrap_err().to_string();
            assert!(e.contains("site.css") && e.contains("changed"), "{e}");
        }
        // The bytes kept by preparation are what was hashed: still sent.
        let fresh = {
            let mut cache = MemoryCache::default();
            prepared(&config, &mut cache)
        };
        std::fs::write(dir.path().join("site/css/site.css"), "other").unwrap();
        let css = &fresh["css/site.css"];
        let p = payloads(&[(css, Variant::Identity)], false).unwrap();
        assert_eq!(hash_bytes(&bytes(&p[0])), css.entry.blake3);
    }
}
