//! From hashed source files to the manifest entries of the new deploy:
//! settings per file, keys, and compressed variants, with the bytes made on
//! the way (what [`super::payload`] hands to the upload).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::Arc;

use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::pipeline::cache::{Cache, Rewritten};
use crate::pipeline::collect::SourceFile;
use crate::pipeline::compress::{self, Encoding};
use crate::pipeline::hash::HashedFile;
use crate::pipeline::references;
use crate::pipeline::scan::Ref;
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
    /// The encodings whose sizes in `entry.encodings` are estimates (see
    /// [`Sizes::Estimated`]); their variants were not made.
    pub estimated: BTreeSet<String>,
}

/// How exact the compressed sizes of large files must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sizes {
    /// Compressed, every one (what an upload needs).
    Exact,
    /// A file over [`compress::ESTIMATE_ABOVE`] whose brotli size is not
    /// cached gets an estimate ([`compress::estimated_size`]), neither
    /// cached nor uploadable: for a plan, which only shows the sizes.
    Estimated,
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
///
/// The files of one dependency level (see [`references::levels`]) are
/// rewritten and hashed in parallel. Everything a file's entry depends on
/// is fixed by [`references::order`], never by which thread gets there
/// first, so the entries, bytes and errors are the same on any number of
/// threads as on one.
pub fn prepare(
    config: &Config,
    files: Vec<HashedFile>,
    sizes: Sizes,
    cache: &mut dyn Cache,
    reporter: &dyn Reporter,
) -> Result<Vec<Prepared>> {
    let layout = Layout::for_config(config);
    let refs = references::references(config, &files, cache, reporter)?;
    let all: Vec<String> = files.iter().map(|f| f.source.logical.clone()).collect();
    let order = references::order(&all, &refs)?;
    let levels = references::levels(&order, &refs);
    let at: HashMap<&str, usize> = order
        .iter()
        .enumerate()
        .map(|(i, l)| (l.as_str(), i))
        .collect();
    // By position in `order`.
    let mut slots: Vec<Option<HashedFile>> = (0..order.len()).map(|_| None).collect();
    for f in files {
        if let Some(&i) = at.get(f.source.logical.as_str()) {
            slots[i] = Some(f);
        }
    }
    let hashes: Vec<String> = slots
        .iter()
        .map(|f| f.as_ref().map(|f| f.blake3.clone()).unwrap_or_default())
        .collect();
    let graph = Graph {
        refs: &refs,
        at: &at,
        hashes: &hashes,
    };
    // The files named so far, and whether to compress them, by position
    // in `order`.
    let mut done: Vec<Option<Prepared>> = (0..order.len()).map(|_| None).collect();
    let mut compressible = vec![false; order.len()];
    let mut weak_pending = Vec::new();
    // Rewriting results made in this run, recorded once all are named.
    let mut results = Vec::new();
    // The failure of the first file in `order` that fails, as naming the
    // files one by one in that order would report it. A file after it is
    // not named, one before it still is (all it waits for comes before it).
    let mut failed: Option<(usize, Error)> = None;
    for level in levels {
        let mut jobs: Vec<(usize, HashedFile)> = level
            .into_iter()
            .filter(|&i| failed.as_ref().is_none_or(|(f, _)| i < *f))
            .filter_map(|i| slots[i].take().map(|f| (i, f)))
            .collect();
        let mut namings: Vec<Naming> = jobs
            .par_iter()
            .map(|(i, f)| naming(config, &graph, &done, *i, f))
            .collect();
        // The cache answers on this thread, one lookup at a time.
        let mut looked_up = Vec::with_capacity(namings.len());
        for n in &mut namings {
            looked_up.push(match n {
                Naming::Strong { input, cached, .. } => cache.rewritten(input).map(|c| {
                    *cached = c.filter(|c| !c.integrity.is_empty());
                }),
                _ => Ok(()),
            });
        }
        let named: Vec<(usize, Result<Made>)> = jobs
            .par_drain(..)
            .zip(namings)
            .zip(looked_up)
            .map(|(((i, mut f), naming), looked_up)| {
                let made = looked_up
                    .and_then(|()| name(config, &mut f, naming))
                    .map(|named| Made::new(config, &order[i], f, named));
                (i, made)
            })
            .collect();
        for (i, made) in named {
            let made = match made {
                Ok(m) => m,
                Err(e) => {
                    if failed.as_ref().is_none_or(|(at, _)| i < *at) {
                        failed = Some((i, e));
                    }
                    continue;
                }
            };
            if failed.as_ref().is_some_and(|(at, _)| i > *at) {
                continue;
            }
            compressible[i] = made.compress;
            if let Some(r) = made.result {
                results.push((i, r));
            }
            if made.weak {
                weak_pending.push(i);
            }
            done[i] = Some(made.prepared);
        }
    }
    if let Some((_, e)) = failed {
        return Err(e);
    }
    // In the order the files were named, as they were made.
    results.sort_unstable_by_key(|(i, _)| *i);
    let results: Vec<(String, Rewritten)> = results.into_iter().map(|(_, r)| r).collect();
    cache.record_rewritten(&results)?;
    // Back-references are rewritten once every name is known.
    weak_pending.sort_unstable();
    let finished: Vec<(usize, Vec<u8>, String, String)> = weak_pending
        .into_par_iter()
        .map(|i| {
            let logical = order[i].as_str();
            let weak: BTreeMap<String, String> = refs[logical]
                .iter()
                .filter(|r| r.weak)
                .filter_map(|r| {
                    graph
                        .key(&done, &r.target)
                        .map(|k| (r.target.clone(), references::file_name(k)))
                })
                .collect();
            let p = done[i].as_ref().expect("every ordered file is named");
            let data = p.data.as_ref().map(|d| d.to_vec()).unwrap_or_default();
            let bytes = references::apply_bytes(logical, data, config.rewrite_js_imports, &weak);
            let blake3 = crate::pipeline::hash::hash_bytes(&bytes);
            let integrity = crate::pipeline::hash::integrity(&bytes);
            (i, bytes, blake3, integrity)
        })
        .collect();
    for (i, bytes, blake3, integrity) in finished {
        let p = done[i].as_mut().expect("every ordered file is named");
        p.entry.blake3 = blake3;
        p.entry.integrity = integrity;
        p.entry.size = bytes.len() as u64;
        p.data = Some(Arc::new(bytes));
    }
    // By logical path.
    let mut out: Vec<(Prepared, bool)> = done
        .into_iter()
        .zip(compressible)
        .filter_map(|(p, c)| p.map(|p| (p, c)))
        .collect();
    out.par_sort_unstable_by(|a, b| a.0.logical.cmp(&b.0.logical));
    let (mut out, compressible): (Vec<Prepared>, Vec<bool>) = out.into_iter().unzip();
    compress_all(
        config,
        &mut out,
        &compressible,
        layout,
        sizes,
        cache,
        reporter,
    )?;
    Ok(out)
}

/// A file named: its entry, and what `prepare` keeps of it for later.
struct Made {
    prepared: Prepared,
    /// Its settings say to compress it.
    compress: bool,
    /// A rewriting result to record.
    result: Option<(String, Rewritten)>,
    /// Its back-references are still to rewrite.
    weak: bool,
}

impl Made {
    /// The entry of `logical` (the file `f`), named `named`.
    fn new(config: &Config, logical: &str, f: HashedFile, named: Named) -> Made {
        let settings = config.settings_for(logical);
        let fingerprinted = fingerprinted_name(logical, &named.key_hash);
        let (key, object) = match settings.fingerprint {
            Fingerprint::Yes => (fingerprinted, None),
            Fingerprint::No => (logical.to_string(), Some(fingerprinted)),
            Fingerprint::Keep => (logical.to_string(), None),
        };
        Made {
            compress: settings.compress,
            result: named.result,
            weak: named.weak,
            prepared: Prepared {
                logical: logical.to_string(),
                path: f.source.path,
                data: named.data,
                rewrite_targets: named.targets,
                integrity_targets: named.integrity_targets,
                variants: HashMap::new(),
                estimated: BTreeSet::new(),
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
        }
    }
}

/// What naming reads of the whole set: the references, and every file's
/// position in `order` and content hash.
struct Graph<'a> {
    refs: &'a BTreeMap<String, Vec<Ref>>,
    at: &'a HashMap<&'a str, usize>,
    /// By position in `order`.
    hashes: &'a [String],
}

impl Graph<'_> {
    /// The key of `logical`, once named: what references to it are
    /// rewritten to.
    fn key<'d>(&self, done: &'d [Option<Prepared>], logical: &str) -> Option<&'d str> {
        self.named(done, logical).map(|p| p.entry.key.as_str())
    }

    fn named<'d>(&self, done: &'d [Option<Prepared>], logical: &str) -> Option<&'d Prepared> {
        self.at.get(logical).and_then(|&i| done[i].as_ref())
    }
}

/// How a file is named, worked out from the names of the files before it.
enum Naming {
    /// No references to rewrite: named from the bytes collected.
    AsIs,
    /// References to rewrite, none of them back: see [`rewrite_strong`].
    Strong {
        targets: BTreeMap<String, String>,
        integrity: Integrity,
        /// The digest the cache knows the result by.
        input: String,
        cached: Option<Rewritten>,
    },
    /// A back-reference among them (a source map's `file`): rewritten now
    /// to `strong`, named from the bytes and then `named_after`, and
    /// rewritten again once every name is known.
    Weak {
        strong: BTreeMap<String, String>,
        named_after: Vec<u8>,
    },
}

/// The file at position `at` of `order`, given the entries (`done`) of
/// every file before its level.
fn naming(
    config: &Config,
    graph: &Graph,
    done: &[Option<Prepared>],
    at: usize,
    f: &HashedFile,
) -> Naming {
    let logical = &f.source.logical;
    let Some(rs) = graph.refs.get(logical) else {
        return Naming::AsIs;
    };
    let strong: BTreeMap<String, String> = rs
        .iter()
        .filter(|r| !r.weak)
        .filter_map(|r| {
            graph
                .key(done, &r.target)
                .map(|k| (r.target.clone(), references::file_name(k)))
        })
        .collect();
    if rs.iter().any(|r| r.weak) {
        // Named from its own bytes and everything that decides the names
        // of the files it points back at (see fingerprint.rs). The content
        // of one counts when it is named after this file, as it is when it
        // references it.
        let mut named_after = Vec::new();
        for r in rs.iter().filter(|r| r.weak) {
            if let Some(&t) = graph.at.get(r.target.as_str()).filter(|&&t| t > at) {
                named_after.extend_from_slice(graph.hashes[t].as_bytes());
            }
            for sr in graph
                .refs
                .get(&r.target)
                .into_iter()
                .flatten()
                .filter(|sr| !sr.weak && sr.target != *logical)
            {
                named_after.extend_from_slice(sr.target.as_bytes());
                named_after.extend_from_slice(
                    graph
                        .key(done, &sr.target)
                        .map_or(&b""[..], |k| k.as_bytes()),
                );
            }
        }
        return Naming::Weak {
            strong,
            named_after,
        };
    }
    // The integrity of each script, stylesheet or module preload a page
    // loads, by the key its rewritten URL points to. Only files whose
    // bytes are final: a source map's are not yet.
    let integrity: Integrity =
        if config.rewrite_integrity && Syntax::for_path(logical) == Syntax::Html {
            rs.iter()
                .filter_map(|r| graph.named(done, &r.target))
                .filter(|p| !p.entry.integrity.is_empty())
                .map(|p| (p.entry.key.clone(), p.entry.integrity.clone()))
                .collect()
        } else {
            Integrity::new()
        };
    Naming::Strong {
        input: rewrite_input(config, f, &strong, &integrity),
        targets: strong,
        integrity,
        cached: None,
    }
}

/// Rewrites and hashes what `naming` says to: the work of naming a file.
fn name(config: &Config, f: &mut HashedFile, naming: Naming) -> Result<Named> {
    let as_is = Named {
        blake3: f.blake3.clone(),
        key_hash: f.blake3.clone(),
        size: f.source.size,
        integrity: f.integrity.clone(),
        data: None,
        targets: None,
        integrity_targets: None,
        result: None,
        weak: false,
    };
    match naming {
        Naming::AsIs => Ok(as_is),
        Naming::Strong {
            targets,
            integrity,
            input,
            cached,
        } => rewrite_strong(config, f, targets, integrity, input, cached),
        Naming::Weak {
            strong,
            named_after,
        } => {
            let rewritten = match f.text.take() {
                Some(scanned) => scanned.apply(&strong),
                None => references::apply_bytes(
                    &f.source.logical,
                    read_bytes(f)?,
                    config.rewrite_js_imports,
                    &strong,
                ),
            };
            let mut h = blake3::Hasher::new();
            h.update(&rewritten);
            h.update(&named_after);
            Ok(Named {
                key_hash: h.finalize().to_hex().to_string(),
                // Provisional: set from the final bytes once all are named.
                integrity: String::new(),
                data: Some(Arc::new(rewritten)),
                weak: true,
                ..as_is
            })
        }
    }
}

struct Named {
    blake3: String,
    key_hash: String,
    size: u64,
    integrity: String,
    data: Option<Arc<Vec<u8>>>,
    targets: Option<Arc<BTreeMap<String, String>>>,
    integrity_targets: Option<Arc<Integrity>>,
    /// A rewriting result to record.
    result: Option<(String, Rewritten)>,
    /// Its back-references are still to rewrite.
    weak: bool,
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

/// The digest rewriting results are cached by: the file's content and the
/// names (and integrity values) its references are rewritten to.
fn rewrite_input(
    config: &Config,
    f: &HashedFile,
    targets: &BTreeMap<String, String>,
    integrity: &Integrity,
) -> String {
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
    for (t, n) in targets {
        h.update(format!("\0{t}\0{n}").as_bytes());
    }
    for (k, i) in integrity {
        h.update(format!("\0integrity\0{k}\0{i}").as_bytes());
    }
    h.finalize().to_hex().to_string()
}

/// Rewrites a file's references, or takes the result the cache recalled
/// (`cached`: the same bytes were rewritten to the same names before; then
/// the file is read again only if it has to be uploaded). A new result is
/// returned in `result`, to record.
fn rewrite_strong(
    config: &Config,
    f: &mut HashedFile,
    targets: BTreeMap<String, String>,
    integrity: Integrity,
    input: String,
    cached: Option<Rewritten>,
) -> Result<Named> {
    if let Some(c) = cached {
        return Ok(Named {
            blake3: c.blake3,
            key_hash: c.key_hash,
            size: c.size,
            integrity: c.integrity,
            data: None,
            targets: Some(Arc::new(targets)),
            integrity_targets: (!integrity.is_empty()).then(|| Arc::new(integrity)),
            result: None,
            weak: false,
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
    let result = Rewritten {
        blake3: blake3.clone(),
        key_hash: blake3.clone(),
        size: bytes.len() as u64,
        integrity: sri.clone(),
    };
    Ok(Named {
        key_hash: blake3.clone(),
        blake3,
        size: bytes.len() as u64,
        integrity: sri,
        data: Some(Arc::new(bytes)),
        targets: None,
        integrity_targets: None,
        result: Some((input, result)),
        weak: false,
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
/// content was compressed before, otherwise by compressing it (in parallel),
/// or by estimating it (`sizes`).
fn compress_all(
    config: &Config,
    files: &mut [Prepared],
    compressible: &[bool],
    layout: Layout,
    sizes: Sizes,
    cache: &mut dyn Cache,
    reporter: &dyn Reporter,
) -> Result<()> {
    let wanted = wanted(layout);
    let js_imports = config.rewrite_js_imports;
    if wanted.is_empty() {
        return Ok(());
    }
    let mut todo = Vec::new();
    let mut estimates = Vec::new();
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
                // gzip runs at tens of MB/s: only brotli is worth estimating.
                None if sizes == Sizes::Estimated
                    && enc == Encoding::Br
                    && p.entry.size > compress::ESTIMATE_ABOVE =>
                {
                    estimates.push(i)
                }
                None => todo.push((i, enc)),
            }
        }
    }
    estimate_all(files, &estimates, js_imports)?;
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

/// Estimates the brotli size of the files at `at` (see [`Sizes::Estimated`]).
fn estimate_all(files: &mut [Prepared], at: &[usize], js_imports: bool) -> Result<()> {
    let estimated: Vec<(usize, std::io::Result<Option<u64>>)> = at
        .par_iter()
        .map(|&i| {
            let size = content(&files[i], js_imports)
                .map(|data| compress::estimated_size(&data, Encoding::Br));
            (i, size)
        })
        .collect();
    for (i, size) in estimated {
        let p = &mut files[i];
        let size = size.map_err(|e| Error::io("cannot read", &p.path, e))?;
        let name = Encoding::Br.name().to_string();
        if let Some(size) = size {
            p.entry.encodings.insert(name.clone(), size);
        }
        p.estimated.insert(name);
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

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::path::Path;

    use super::*;
    use crate::pipeline::cache::{MemoryCache, Stat};
    use crate::pipeline::{collect, hash, scan};
    use crate::report::CollectingReporter;
    use crate::settings::Overrides;

    /// A cache that logs every lookup and store, in the order they come.
    #[derive(Default)]
    struct Logged {
        inner: MemoryCache,
        calls: RefCell<Vec<String>>,
    }

    impl Logged {
        fn log(&self, call: String) {
            self.calls.borrow_mut().push(call);
        }
    }

    impl Cache for Logged {
        fn record_stats(&mut self, stats: Vec<(String, Stat)>) -> Result<()> {
            self.log(format!("record_stats {stats:?}"));
            self.inner.record_stats(stats)
        }
        fn refs(&self, blake3: &str, mode: &str) -> Result<Option<Vec<Ref>>> {
            self.log(format!("refs {blake3} {mode}"));
            self.inner.refs(blake3, mode)
        }
        fn record_refs(&mut self, found: &[(&str, &str, &[Ref])]) -> Result<()> {
            self.log(format!("record_refs {found:?}"));
            self.inner.record_refs(found)
        }
        fn rewritten(&self, input: &str) -> Result<Option<Rewritten>> {
            self.log(format!("rewritten {input}"));
            self.inner.rewritten(input)
        }
        fn record_rewritten(&mut self, results: &[(String, Rewritten)]) -> Result<()> {
            self.log(format!("record_rewritten {results:?}"));
            self.inner.record_rewritten(results)
        }
        fn compressed_size(&self, blake3: &str, encoding: &str) -> Result<Option<Option<u64>>> {
            self.log(format!("compressed_size {blake3} {encoding}"));
            self.inner.compressed_size(blake3, encoding)
        }
        fn record_compressed(&mut self, sizes: &[(&str, &str, Option<u64>)]) -> Result<()> {
            self.log(format!("record_compressed {sizes:?}"));
            self.inner.record_compressed(sizes)
        }
    }

    fn write(root: &Path, rel: &str, bytes: &[u8]) {
        let p = root.join("site").join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, bytes).unwrap();
    }

    fn config(root: &Path) -> Config {
        Config::parse(
            "[source]\ndirs = [\"site\"]\n[target]\nurl = \"file://out\"\n\
             [rewrite]\njs_imports = true\nhtml = true\nintegrity = true\n",
            &root.join("publish.toml"),
            root,
            &Overrides::default(),
        )
        .unwrap()
    }

    /// Images; a chain of stylesheets, each importing the one before;
    /// scripts importing each other, with a source map that points back;
    /// pages loading all of it (with integrity); a stylesheet that is not
    /// text (a warning).
    fn levelled_site(root: &Path) {
        for i in 0..12u32 {
            let bytes: Vec<u8> = (0..3000u32).map(|j| (j * 31 + i * 7) as u8).collect();
            write(root, &format!("img/p{i}.png"), &bytes);
        }
        for k in 0..8 {
            let import = if k > 0 {
                format!("@import \"c{}.css\";\n", k - 1)
            } else {
                String::new()
            };
            let css = format!(
                "{import}.c{k} {{ background: url(../img/p{k}.png) }}\n{}",
                ".pad { margin: 0 auto; }\n".repeat(40)
            );
            write(root, &format!("css/c{k}.css"), css.as_bytes());
        }
        write(
            root,
            "css/site.css",
            b"@import \"c7.css\";\nbody { margin: 0 }\n",
        );
        write(root, "css/latin1.css", b".x { content: \"\xe9\" }\n");
        for k in 0..6 {
            let import = if k > 0 {
                format!("import {{ v{} }} from \"./lib{}.js\";\n", k - 1, k - 1)
            } else {
                String::new()
            };
            let js = format!("{import}export const v{k} = {k};\n");
            write(root, &format!("js/lib{k}.js"), js.as_bytes());
        }
        write(
            root,
            "js/app.js",
            b"import { v5 } from \"./lib5.js\";\nconsole.log(v5);\n//# sourceMappingURL=app.js.map\n",
        );
        write(
            root,
            "js/app.js.map",
            br#"{"version":3,"file":"app.js","sources":["../src/app.ts"],"names":[],"mappings":""}"#,
        );
        for k in 0..16 {
            let page = format!(
                "<!doctype html><html><head><link rel=\"stylesheet\" href=\"css/site.css\">\
                 <script type=\"module\" src=\"js/app.js\"></script></head>\
                 <body><img src=\"img/p{}.png\"><p>page {k}</p></body></html>\n",
                k % 12
            );
            write(root, &format!("page{k}.html"), page.as_bytes());
        }
    }

    fn hashed(config: &Config) -> Vec<HashedFile> {
        let reporter = CollectingReporter::default();
        let files = collect::collect(config, &[], &reporter).unwrap();
        let scanner = scan::Scanner::new(config);
        let (hashed, _) = hash::hash_all(
            files,
            HashMap::new(),
            &mut MemoryCache::default(),
            crate::util::now_ns(),
            &scanner,
            &reporter,
        )
        .unwrap();
        hashed
    }

    /// `prepare` on `threads` threads: its result, its warnings and the
    /// calls it made to `cache`.
    fn prepare_on(
        threads: usize,
        config: &Config,
        files: Vec<HashedFile>,
        cache: &mut Logged,
    ) -> (Result<Vec<Prepared>>, Vec<String>, Vec<String>) {
        prepare_sized(threads, Sizes::Exact, config, files, cache)
    }

    fn prepare_sized(
        threads: usize,
        sizes: Sizes,
        config: &Config,
        files: Vec<HashedFile>,
        cache: &mut Logged,
    ) -> (Result<Vec<Prepared>>, Vec<String>, Vec<String>) {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        let reporter = CollectingReporter::default();
        cache.calls.borrow_mut().clear();
        let out = pool.install(|| prepare(config, files, sizes, cache, &reporter));
        let warnings = reporter.warnings.lock().unwrap().clone();
        (out, warnings, cache.calls.take())
    }

    fn assert_same(a: &[Prepared], b: &[Prepared]) {
        assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(b) {
            assert_eq!(x.logical, y.logical);
            assert_eq!(x.path, y.path, "{}", x.logical);
            assert_eq!(x.entry, y.entry, "{}", x.logical);
            assert_eq!(x.data, y.data, "{}", x.logical);
            assert_eq!(x.rewrite_targets, y.rewrite_targets, "{}", x.logical);
            assert_eq!(x.integrity_targets, y.integrity_targets, "{}", x.logical);
            assert_eq!(x.variants, y.variants, "{}", x.logical);
        }
    }

    #[test]
    fn many_threads_prepare_what_one_does() {
        let dir = tempfile::tempdir().unwrap();
        levelled_site(dir.path());
        let config = config(dir.path());
        let files = hashed(&config);
        let refs = references::references(
            &config,
            &files,
            &mut MemoryCache::default(),
            &CollectingReporter::default(),
        )
        .unwrap();
        let all: Vec<String> = files.iter().map(|f| f.source.logical.clone()).collect();
        let order = references::order(&all, &refs).unwrap();
        assert!(
            references::levels(&order, &refs).len() >= 8,
            "a site of several dependency levels"
        );

        let mut one_cache = Logged::default();
        let mut three_cache = Logged::default();
        // A fresh cache, then the same cache again (results recalled).
        for round in ["fresh", "cached"] {
            let (one, one_warnings, one_calls) =
                prepare_on(1, &config, files.clone(), &mut one_cache);
            let (three, three_warnings, three_calls) =
                prepare_on(3, &config, files.clone(), &mut three_cache);
            let (one, three) = (one.unwrap(), three.unwrap());
            assert_same(&one, &three);
            assert_eq!(one_warnings, three_warnings, "{round}");
            assert!(
                one_warnings.iter().any(|w| w.contains("latin1.css")),
                "{one_warnings:?}"
            );
            assert_eq!(
                one_calls, three_calls,
                "{round}: the cache is asked and told the same, in the same order"
            );

            // Every reference points at the name its target got.
            let by_name: HashMap<&str, &Prepared> =
                one.iter().map(|p| (p.logical.as_str(), p)).collect();
            let mut checked = 0;
            for (from, rs) in &refs {
                let bytes = content(by_name[from.as_str()], true).unwrap();
                let text = String::from_utf8_lossy(&bytes);
                for r in rs {
                    let name = references::file_name(&by_name[r.target.as_str()].entry.key);
                    assert!(
                        text.contains(&name),
                        "{round}: `{from}` does not name `{name}`: {text}"
                    );
                    checked += 1;
                }
            }
            assert!(checked > 40, "{checked}");
            // The pages carry the integrity of what they load, as published.
            let css = by_name["css/site.css"];
            let page = String::from_utf8_lossy(&content(by_name["page3.html"], true).unwrap())
                .into_owned();
            assert!(page.contains(&css.entry.integrity), "{round}: {page}");
            let map = by_name["js/app.js.map"];
            assert_eq!(
                map.entry.integrity,
                hash::integrity(&content(map, true).unwrap()),
                "{round}"
            );
        }
    }

    #[test]
    fn the_failure_reported_is_the_first_in_naming_order() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write(root, "img.png", &[7u8; 500]);
        write(root, "a.css", b"@import \"b.css\";\n.a { color: red }\n");
        write(root, "b.css", b".b { background: url(img.png) }\n");
        write(root, "z.css", b".z { background: url(img.png) }\n");
        let config = config(root);
        let mut files = hashed(&config);
        let refs = references::references(
            &config,
            &files,
            &mut MemoryCache::default(),
            &CollectingReporter::default(),
        )
        .unwrap();
        let all: Vec<String> = files.iter().map(|f| f.source.logical.clone()).collect();
        let order = references::order(&all, &refs).unwrap();
        let levels = references::levels(&order, &refs);
        let at = |n: &str| order.iter().position(|o| o == n).unwrap();
        let level = |n: &str| levels.iter().position(|l| l.contains(&at(n))).unwrap();
        // a.css is named before z.css, in a later level.
        assert!(at("a.css") < at("z.css") && level("a.css") > level("z.css"));
        // Both change after hashing, and neither was kept in memory.
        for f in &mut files {
            f.text = None;
        }
        write(root, "a.css", b"changed");
        write(root, "z.css", b"changed");
        for threads in [1, 3] {
            let (out, _, calls) =
                prepare_on(threads, &config, files.clone(), &mut Logged::default());
            let e = out.expect_err("a changed file fails").to_string();
            assert!(
                e.contains("a.css") && e.contains("changed"),
                "{threads}: {e}"
            );
            assert!(
                !calls.iter().any(|c| c.starts_with("record_rewritten")),
                "{calls:?}"
            );
        }
    }

    #[test]
    fn a_map_is_renamed_when_the_script_it_points_back_at_changes() {
        let dir = tempfile::tempdir().unwrap();
        levelled_site(dir.path());
        let config = config(dir.path());
        let map_of = |threads| {
            let (out, _, _) = prepare_on(threads, &config, hashed(&config), &mut Logged::default());
            let out = out.unwrap();
            let map = out.iter().find(|p| p.logical == "js/app.js.map").unwrap();
            (map.entry.key.clone(), content(map, true).unwrap())
        };
        let (key, bytes) = map_of(3);
        // The script changes, the map does not: its `file` names the
        // script's new key, so it must be under a new key too.
        let app = dir.path().join("site/js/app.js");
        let mut script = std::fs::read(&app).unwrap();
        script.extend_from_slice(b"// changed\n");
        std::fs::write(&app, script).unwrap();
        for threads in [1, 3] {
            let (new_key, new_bytes) = map_of(threads);
            assert_ne!(new_bytes, bytes);
            assert_ne!(new_key, key, "one key, two contents");
        }
    }

    /// Minified CSS of `len` bytes, varied enough to take brotli a while.
    fn stylesheet(len: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(len + 100);
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        let mut i = 0;
        while out.len() < len {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            i += 1;
            let rule = format!(
                ".c{i}{{margin:{}px;color:#{:06x}}}",
                x % 40,
                (x >> 8) & 0xff_ffff
            );
            out.extend_from_slice(rule.as_bytes());
        }
        out.truncate(len);
        out
    }

    #[test]
    fn a_plan_estimates_the_brotli_size_of_a_large_file_and_caches_no_estimate() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let big = stylesheet(compress::ESTIMATE_ABOVE as usize + 300_000);
        write(root, "css/big.css", &big);
        write(root, "css/small.css", &stylesheet(40_000));
        let config = config(root);
        let files = hashed(&config);
        let big_hash = hash::hash_bytes(&big);
        let mut cache = Logged::default();
        let (out, _, calls) =
            prepare_sized(2, Sizes::Estimated, &config, files.clone(), &mut cache);
        let out = out.unwrap();
        let p = out.iter().find(|p| p.logical == "css/big.css").unwrap();
        assert_eq!(p.estimated, BTreeSet::from(["br".to_string()]));
        let estimate = p.entry.encodings["br"];
        assert!(!p.variants.contains_key(&Variant::Br), "not compressed");
        assert!(p.variants.contains_key(&Variant::Gzip), "gzip is exact");
        let exact = compress::compress(&big, Encoding::Br).len() as u64;
        assert!(
            estimate.abs_diff(exact) * 10 < exact,
            "{estimate} for {exact}"
        );
        // Only exact sizes are cached: the large file's gzip, and both of
        // the small file's.
        let recorded: Vec<&String> = calls
            .iter()
            .filter(|c| c.starts_with("record_compressed"))
            .collect();
        assert_eq!(recorded.len(), 1, "{calls:?}");
        assert!(
            !recorded[0].contains(&format!("(\"{big_hash}\", \"br")),
            "{recorded:?}"
        );
        assert!(
            recorded[0].contains(&format!("(\"{big_hash}\", \"gzip")),
            "{recorded:?}"
        );
        let small = out.iter().find(|p| p.logical == "css/small.css").unwrap();
        assert!(small.estimated.is_empty() && small.variants.contains_key(&Variant::Br));

        // What an upload needs: every size exact, and now cached.
        let (out, _, calls) = prepare_sized(2, Sizes::Exact, &config, files.clone(), &mut cache);
        let out = out.unwrap();
        let p = out.iter().find(|p| p.logical == "css/big.css").unwrap();
        assert!(p.estimated.is_empty());
        assert_eq!(p.entry.encodings["br"], exact);
        assert!(
            calls.iter().any(|c| c.starts_with("record_compressed")
                && c.contains(&format!("(\"{big_hash}\", \"br")))
        );
        // And a plan after it takes the exact size from the cache.
        let (out, _, _) = prepare_sized(2, Sizes::Estimated, &config, files, &mut cache);
        let p = out
            .unwrap()
            .into_iter()
            .find(|p| p.logical == "css/big.css")
            .unwrap();
        assert!(p.estimated.is_empty());
        assert_eq!(p.entry.encodings["br"], exact);
    }

    #[test]
    fn a_cycle_is_still_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write(root, "a.css", b"@import \"b.css\";\n");
        write(root, "b.css", b"@import \"a.css\";\n");
        let config = config(root);
        let files = hashed(&config);
        let (out, _, _) = prepare_on(3, &config, files, &mut Logged::default());
        let e = out.expect_err("a cycle fails").to_string();
        assert!(
            e.contains("reference cycle: `a.css` -> `b.css` -> `a.css`"),
            "{e}"
        );
    }
}
