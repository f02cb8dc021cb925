//! From hashed source files to the manifest entries of the new deploy:
//! settings per file, keys, and compressed variants, with the bytes made on
//! the way (what [`super::payload`] hands to the upload).

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;

use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::pipeline::cache::{Cache, Rewritten};
use crate::pipeline::collect::SourceFile;
use crate::pipeline::compress::{self, Encoding};
use crate::pipeline::hash::HashedFile;
use crate::pipeline::references;
use crate::remote::manifest::{Entry, Layout, Variant, fingerprinted_name};
use crate::report::{Phase, Reporter};
use crate::rewrite::{self, Syntax};
use crate::settings::{Config, Fingerprint};

/// A file of the new deploy, with what is needed to upload it.
#[derive(Debug)]
pub struct Prepared {
    pub logical: String,
    pub path: PathBuf,
    pub entry: Entry,
    /// The bytes to publish when they differ from the file on disk
    /// (rewritten references); None: the file, or `rewrite_targets`.
    pub data: Option<Arc<Vec<u8>>>,
    /// References to rewrite when the bytes are needed (the result was
    /// known from the cache, so the file was not read).
    pub rewrite_targets: Option<Arc<BTreeMap<String, String>>>,
    /// With `rewrite_targets`: the integrity attributes to add then, by the
    /// key the rewritten URL points to (see [`Integrity`]).
    pub integrity_targets: Option<Arc<Integrity>>,
    /// Compressed variants made during this run, kept for the upload.
    pub variants: HashMap<Variant, Arc<Vec<u8>>>,
}

/// The encodings worth making for a target of this layout.
fn wanted(layout: Layout) -> Vec<Encoding> {
    let mut out = Vec::new();
    if layout.sidecars || layout.encoding == Variant::Gzip {
        out.push(Encoding::Gzip);
    }
    if layout.sidecars || layout.encoding == Variant::Br {
        out.push(Encoding::Br);
    }
    out
}

pub fn variant_of(e: Encoding) -> Variant {
    match e {
        Encoding::Gzip => Variant::Gzip,
        Encoding::Br => Variant::Br,
    }
}

/// A digest of everything that decides the entries `prepare` makes: this
/// build of assetpub, the settings that shape entries and keys, and every
/// collected file's logical path and content hash (in order). Equal digests
/// mean equal entries.
pub fn inputs_digest(config: &Config, files: &[HashedFile]) -> String {
    let mut h = blake3::Hasher::new();
    h.update(b"prepared-v1\0");
    h.update(settings_digest_input(config).as_bytes());
    h.update(&(files.len() as u64).to_le_bytes());
    for f in files {
        h.update(f.source.logical.as_bytes());
        h.update(b"\0");
        h.update(f.blake3.as_bytes());
    }
    h.finalize().to_hex().to_string()
}

/// A digest of the settings and of what the walk saw of every file (name,
/// path, size, mtime, inode), or `None` when a file changed too recently for
/// its stat to vouch for its content (see `hash::trusted`). Two runs with
/// the same key read the same bytes, so the second has the first one's
/// `inputs_digest` without reading the stat cache or hashing.
pub fn stat_key(config: &Config, files: &[SourceFile], scan_start_ns: i64) -> Option<String> {
    if !files
        .iter()
        .all(|f| crate::pipeline::hash::trusted(f.mtime_ns, scan_start_ns))
    {
        return None;
    }
    // One buffer hashed once: many small updates cost more than the hashing.
    let mut buf = Vec::with_capacity(files.len() * 160);
    buf.extend_from_slice(b"stat-v1\0");
    buf.extend_from_slice(settings_digest_input(config).as_bytes());
    buf.extend_from_slice(&(files.len() as u64).to_le_bytes());
    for f in files {
        buf.extend_from_slice(f.logical.as_bytes());
        buf.push(0);
        buf.extend_from_slice(f.path.as_os_str().as_encoded_bytes());
        buf.push(0);
        buf.extend_from_slice(&f.size.to_le_bytes());
        buf.extend_from_slice(&f.mtime_ns.to_le_bytes());
        buf.extend_from_slice(&f.inode.to_le_bytes());
    }
    let h = blake3::hash(&buf);
    Some(h.to_hex().to_string())
}

/// Everything besides the files that decides the entries: this build of
/// assetpub and the settings it reads.
fn settings_digest_input(config: &Config) -> String {
    let mut settings = format!(
        "{}\0{}\0{:?}\0{}\0{}\0{}\0{}\0{}\0{:?}\0{}\0",
        env!("CARGO_PKG_VERSION"),
        env!("ASSETPUB_SOURCE_DIGEST"),
        Layout::for_config(config),
        config.rewrite,
        config.rewrite_strict,
        config.rewrite_js_imports,
        config.rewrite_html,
        config.rewrite_integrity,
        config.manifest_key,
        config.django,
    );
    for r in &config.rules {
        settings.push_str(&format!(
            "{:?}\0{:?}\0{:?}\0{:?}\0{:?}\0{:?}\0{:?}\0{:?}\0",
            r.pattern,
            r.fingerprint,
            r.cache_control,
            r.content_type,
            r.compress,
            r.content_disposition,
            r.content_language,
            r.metadata
        ));
    }
    settings
}

/// The entries of the new deploy, one per file, named in dependency order.
/// `cache` answers for references, rewriting results and compressed sizes
/// seen before, and records the new ones.
pub fn prepare(
    config: &Config,
    files: Vec<HashedFile>,
    cache: &mut dyn Cache,
    reporter: &dyn Reporter,
) -> Result<Vec<Prepared>> {
    let layout = Layout::for_config(config);
    let refs = references::references(config, &files, cache, reporter)?;
    let all: Vec<String> = files.iter().map(|f| f.source.logical.clone()).collect();
    let order = references::order(&all, &refs)?;
    let mut by_name: HashMap<String, HashedFile> = files
        .into_iter()
        .map(|f| (f.source.logical.clone(), f))
        .collect();
    // logical -> the key references to it are rewritten to.
    let mut keys: HashMap<String, String> = HashMap::new();
    let mut done: BTreeMap<String, Prepared> = BTreeMap::new();
    let mut weak_pending = Vec::new();
    let mut compressible: HashMap<String, bool> = HashMap::new();
    // Rewriting results made in this run, recorded once all are named.
    let mut results = Vec::new();
    for logical in order {
        let Some(mut f) = by_name.remove(&logical) else {
            continue;
        };
        let settings = config.settings_for(&logical);
        compressible.insert(logical.clone(), settings.compress);
        let mut named = Named {
            blake3: f.blake3.clone(),
            key_hash: f.blake3.clone(),
            size: f.source.size,
            integrity: f.integrity.clone(),
            data: None,
            targets: None,
            integrity_targets: None,
        };
        if let Some(rs) = refs.get(&logical) {
            let strong: BTreeMap<String, String> = rs
                .iter()
                .filter(|r| !r.weak)
                .filter_map(|r| {
                    keys.get(&r.target)
                        .map(|k| (r.target.clone(), references::file_name(k)))
                })
                .collect();
            if rs.iter().any(|r| r.weak) {
                let rewritten = match f.text.take() {
                    Some(scanned) => scanned.apply(&strong),
                    None => references::apply_bytes(
                        &logical,
                        read_bytes(&f)?,
                        config.rewrite_js_imports,
                        &strong,
                    ),
                };
                // Named from its own bytes and everything that decides the
                // names of the files it points back at (see fingerprint.rs).
                let mut h = blake3::Hasher::new();
                h.update(&rewritten);
                for r in rs.iter().filter(|r| r.weak) {
                    if let Some(t) = by_name.get(&r.target) {
                        h.update(t.blake3.as_bytes());
                    }
                    for sr in refs
                        .get(&r.target)
                        .into_iter()
                        .flatten()
                        .filter(|sr| !sr.weak && sr.target != logical)
                    {
                        h.update(sr.target.as_bytes());
                        h.update(keys.get(&sr.target).map_or(&b""[..], |k| k.as_bytes()));
                    }
                }
                named.key_hash = h.finalize().to_hex().to_string();
                // Provisional: set from the final bytes below.
                named.integrity.clear();
                named.data = Some(Arc::new(rewritten));
                weak_pending.push(logical.clone());
            } else {
                // The integrity of each script, stylesheet or module preload
                // a page loads, by the key its rewritten URL points to. Only
                // files whose bytes are final: a source map's are not yet.
                let integrity: Integrity =
                    if config.rewrite_integrity && Syntax::for_path(&logical) == Syntax::Html {
                        rs.iter()
                            .filter_map(|r| done.get(&r.target))
                            .filter(|p| !p.entry.integrity.is_empty())
                            .map(|p| (p.entry.key.clone(), p.entry.integrity.clone()))
                            .collect()
                    } else {
                        Integrity::new()
                    };
                named = rewrite_strong(config, cache, &mut results, &mut f, strong, integrity)?;
            }
        }
        let fingerprinted = fingerprinted_name(&logical, &named.key_hash);
        let (key, object) = match settings.fingerprint {
            Fingerprint::Yes => (fingerprinted, None),
            Fingerprint::No => (logical.clone(), Some(fingerprinted)),
            Fingerprint::Keep => (logical.clone(), None),
        };
        keys.insert(logical.clone(), key.clone());
        done.insert(
            logical.clone(),
            Prepared {
                logical: logical.clone(),
                path: f.source.path.clone(),
                data: named.data,
                rewrite_targets: named.targets,
                integrity_targets: named.integrity_targets,
                variants: HashMap::new(),
                entry: Entry {
                    key,
                    object,
                    blake3: named.blake3,
                    size: named.size,
                    integrity: named.integrity,
                    written: Default::default(),
                    content_type: settings.content_type,
                    cache_control: settings.cache_control,
                    encodings: BTreeMap::new(),
                    content_disposition: settings.content_disposition,
                    content_language: settings.content_language,
                    metadata: settings.metadata,
                },
            },
        );
    }
    cache.record_rewritten(&results)?;
    // Back-references are rewritten once every name is known.
    for logical in weak_pending {
        let weak: BTreeMap<String, String> = refs[&logical]
            .iter()
            .filter(|r| r.weak)
            .filter_map(|r| {
                keys.get(&r.target)
                    .map(|k| (r.target.clone(), references::file_name(k)))
            })
            .collect();
        let p = done
            .get_mut(&logical)
            .expect("every ordered file is prepared");
        let data = p.data.as_ref().map(|d| d.to_vec()).unwrap_or_default();
        let bytes = references::apply_bytes(&logical, data, config.rewrite_js_imports, &weak);
        p.entry.blake3 = crate::pipeline::hash::hash_bytes(&bytes);
        p.entry.integrity = crate::pipeline::hash::integrity(&bytes);
        p.entry.size = bytes.len() as u64;
        p.data = Some(Arc::new(bytes));
    }
    let mut out: Vec<Prepared> = done.into_values().collect();
    let compressible: Vec<bool> = out
        .iter()
        .map(|p| compressible.get(&p.logical).copied().unwrap_or(false))
        .collect();
    compress_all(config, &mut out, &compressible, layout, cache, reporter)?;
    Ok(out)
}

struct Named {
    blake3: String,
    key_hash: String,
    size: u64,
    integrity: String,
    data: Option<Arc<Vec<u8>>>,
    targets: Option<Arc<BTreeMap<String, String>>>,
    integrity_targets: Option<Arc<Integrity>>,
}

/// The `integrity` values a page's references get, by the key each
/// rewritten URL points to.
pub type Integrity = BTreeMap<String, String>;

/// `bytes`, a page's as rewritten, with the integrity attributes of
/// `integrity` added (see [`rewrite::add_integrity`]).
fn with_integrity(logical: &str, bytes: Vec<u8>, integrity: &Integrity) -> Vec<u8> {
    if integrity.is_empty() {
        return bytes;
    }
    rewrite::add_integrity(&bytes, logical, |key| integrity.get(key).cloned())
}

/// Rewrites a file's references, or recalls the result from the cache when
/// the same bytes were rewritten to the same names before (then the file is
/// read again only if it has to be uploaded). A new result is added to
/// `results`, to record.
fn rewrite_strong(
    config: &Config,
    cache: &dyn Cache,
    results: &mut Vec<(String, Rewritten)>,
    f: &mut HashedFile,
    targets: BTreeMap<String, String>,
    integrity: Integrity,
) -> Result<Named> {
    let mut h = blake3::Hasher::new();
    h.update(b"rewrite-v1\0");
    h.update(f.source.logical.as_bytes());
    h.update(b"\0");
    h.update(f.blake3.as_bytes());
    h.update(if config.rewrite_js_imports {
        b"\0imports"
    } else {
        b"\0"
    });
    for (t, n) in &targets {
        h.update(format!("\0{t}\0{n}").as_bytes());
    }
    for (k, i) in &integrity {
        h.update(format!("\0integrity\0{k}\0{i}").as_bytes());
    }
    let input = h.finalize().to_hex().to_string();
    if let Some(c) = cache.rewritten(&input)?.filter(|c| !c.integrity.is_empty()) {
        return Ok(Named {
            blake3: c.blake3,
            key_hash: c.key_hash,
            size: c.size,
            integrity: c.integrity,
            data: None,
            targets: Some(Arc::new(targets)),
            integrity_targets: (!integrity.is_empty()).then(|| Arc::new(integrity)),
        });
    }
    let bytes = match f.text.take() {
        Some(scanned) => scanned.apply(&targets),
        None => references::apply_bytes(
            &f.source.logical,
            read_bytes(f)?,
            config.rewrite_js_imports,
            &targets,
        ),
    };
    let bytes = with_integrity(&f.source.logical, bytes, &integrity);
    let blake3 = crate::pipeline::hash::hash_bytes(&bytes);
    let sri = crate::pipeline::hash::integrity(&bytes);
    results.push((
        input,
        Rewritten {
            blake3: blake3.clone(),
            key_hash: blake3.clone(),
            size: bytes.len() as u64,
            integrity: sri.clone(),
        },
    ));
    Ok(Named {
        key_hash: blake3.clone(),
        blake3,
        size: bytes.len() as u64,
        integrity: sri,
        data: Some(Arc::new(bytes)),
        targets: None,
        integrity_targets: None,
    })
}

/// The file's bytes as hashed: read again and checked against the hash it
/// was collected with.
fn read_bytes(f: &HashedFile) -> Result<Vec<u8>> {
    let bytes =
        std::fs::read(&f.source.path).map_err(|e| Error::io("cannot read", &f.source.path, e))?;
    if crate::pipeline::hash::hash_bytes(&bytes) != f.blake3 {
        return Err(changed_error(&f.source.path));
    }
    Ok(bytes)
}

pub fn changed_error(path: &std::path::Path) -> Error {
    Error::Input(format!(
        "`{}` changed while it was being published; nothing was uploaded for it",
        path.display()
    ))
    .with_hint("run the build to completion, then publish again")
}

/// Fills in `encodings` for every compressible file: from the cache where the
/// content was compressed before, otherwise by compressing it (in parallel).
fn compress_all(
    config: &Config,
    files: &mut [Prepared],
    compressible: &[bool],
    layout: Layout,
    cache: &mut dyn Cache,
    reporter: &dyn Reporter,
) -> Result<()> {
    let wanted = wanted(layout);
    let js_imports = config.rewrite_js_imports;
    if wanted.is_empty() {
        return Ok(());
    }
    let mut todo = Vec::new();
    for (i, p) in files.iter_mut().enumerate() {
        if !compressible[i] || p.entry.size == 0 {
            continue;
        }
        for &enc in &wanted {
            match cache.compressed_size(&p.entry.blake3, enc.cache_name(p.entry.size))? {
                Some(Some(size)) => {
                    p.entry.encodings.insert(enc.name().to_string(), size);
                }
                Some(None) => {}
                None => todo.push((i, enc)),
            }
        }
    }
    if todo.is_empty() {
        return Ok(());
    }
    let bytes: u64 = todo.iter().map(|(i, _)| files[*i].entry.size).sum();
    reporter.phase_start(Phase::Compress, todo.len() as u64, bytes);
    /// The file's index, the encoding, and the variant (None: not worth it).
    type Compressed = (usize, Encoding, std::io::Result<Option<Vec<u8>>>);
    let results: Vec<Compressed> = todo
        .par_iter()
        .map(|&(i, enc)| {
            let p = &files[i];
            let r = content(p, js_imports).map(|data| compress::compress_if_worthwhile(&data, enc));
            reporter.item_done(Phase::Compress, p.entry.size);
            (i, enc, r)
        })
        .collect();
    reporter.phase_end(Phase::Compress);
    let mut made = Vec::with_capacity(results.len());
    for (i, enc, r) in results {
        let compressed = r.map_err(|e| Error::io("cannot read", &files[i].path, e))?;
        made.push((i, enc, compressed));
    }
    let sizes: Vec<(&str, &str, Option<u64>)> = made
        .iter()
        .map(|(i, enc, c)| {
            (
                files[*i].entry.blake3.as_str(),
                enc.cache_name(files[*i].entry.size),
                c.as_ref().map(|c| c.len() as u64),
            )
        })
        .collect();
    cache.record_compressed(&sizes)?;
    for (i, enc, compressed) in made {
        if let Some(c) = compressed {
            let p = &mut files[i];
            p.entry
                .encodings
                .insert(enc.name().to_string(), c.len() as u64);
            p.variants.insert(variant_of(enc), Arc::new(c));
        }
    }
    Ok(())
}

/// The bytes of the file as published, read from disk unless they are
/// held; not checked against the entry's hash.
pub fn content(p: &Prepared, js_imports: bool) -> std::io::Result<Arc<Vec<u8>>> {
    if let Some(d) = &p.data {
        return Ok(d.clone());
    }
    let bytes = std::fs::read(&p.path)?;
    match &p.rewrite_targets {
        None => Ok(Arc::new(bytes)),
        Some(targets) => {
            let bytes = references::apply_bytes(&p.logical, bytes, js_imports, targets);
            Ok(Arc::new(match &p.integrity_targets {
                Some(integrity) => with_integrity(&p.logical, bytes, integrity),
                None => bytes,
            }))
        }
    }
}
