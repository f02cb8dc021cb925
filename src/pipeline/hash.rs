//! blake3 of every collected file, in parallel, skipping files the stat cache
//! says are unchanged. Text files that may hold references are scanned from
//! the same bytes while they are in memory, so each file is read once.

use std::cell::Cell;
use std::collections::HashMap;
use std::io::Read;

use aws_lc_rs::digest;
use base64::Engine as _;
use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::pipeline::cache::{Cache, Stat};
use crate::pipeline::collect::SourceFile;
use crate::pipeline::scan::{Ref, ScannedText, Scanner};
use crate::report::{Phase, Reporter};

/// A file whose mtime is this close to the scan could still change without
/// its mtime moving (coarse filesystem timestamps), so its cache entry is not
/// trusted on the next run.
const MTIME_GRANULARITY_NS: i64 = 2_000_000_000;

/// Files up to this size are read in one go; larger ones in chunks of it.
const READ_CHUNK: u64 = 4 * 1024 * 1024;

/// From this size blake3 splits one buffer across the thread pool: the last
/// large files of a run would otherwise be hashed on one core.
const PARALLEL_MIN: usize = 512 * 1024;

/// Whether a file's stat vouches for its content: its mtime is far enough
/// before the walk that a later write would have moved it.
pub fn trusted(mtime_ns: i64, scan_start_ns: i64) -> bool {
    scan_start_ns - mtime_ns > MTIME_GRANULARITY_NS
}

#[derive(Debug, Clone)]
pub struct HashedFile {
    pub source: SourceFile,
    pub blake3: String,
    /// `sha384-<base64>` of the same bytes.
    pub integrity: String,
    /// References found in the bytes as hashed (None: not scanned in this
    /// pass, because the stat cache knew the file or it is not a text the
    /// scanner reads).
    pub refs: Option<Vec<Ref>>,
    /// The text as hashed, kept when it holds references to rewrite, so
    /// rewriting neither reads nor scans the file again.
    pub text: Option<ScannedText>,
}

pub struct HashStats {
    pub hashed: usize,
}

/// `stats` is the stat cache by source path; `cache` records the stats of
/// the files hashed; `scan_start_ns` is the wall-clock time taken before
/// the tree was walked.
pub fn hash_all(
    files: Vec<SourceFile>,
    mut stats: HashMap<String, Stat>,
    cache: &mut dyn Cache,
    scan_start_ns: i64,
    scanner: &Scanner,
    reporter: &dyn Reporter,
) -> Result<(Vec<HashedFile>, HashStats)> {
    let mut todo = Vec::new();
    let mut done: Vec<Option<HashedFile>> = Vec::with_capacity(files.len());
    for (i, f) in files.into_iter().enumerate() {
        let hit = stats.remove(f.path.to_string_lossy().as_ref()).filter(|c| {
            c.trusted
                && c.size == f.size
                && c.mtime_ns == f.mtime_ns
                && c.inode == f.inode
                && !c.integrity.is_empty()
        });
        match hit {
            Some(c) => done.push(Some(HashedFile {
                blake3: c.blake3,
                integrity: c.integrity,
                source: f,
                refs: None,
                text: None,
            })),
            None => {
                done.push(None);
                todo.push((i, f));
            }
        }
    }
    drop(stats);
    let total_bytes: u64 = todo.iter().map(|(_, f)| f.size).sum();
    reporter.phase_start(Phase::Hash, todo.len() as u64, total_bytes);
    let results: Vec<(usize, Result<HashedFile>)> = todo
        .into_par_iter()
        .map(|(i, f)| {
            let r = hash_source(f, scanner);
            if let Ok(h) = &r {
                reporter.item_done(Phase::Hash, h.source.size);
            }
            (i, r)
        })
        .collect();
    reporter.phase_end(Phase::Hash);
    let mut failed = None;
    let mut fresh = Vec::new();
    for (i, r) in results {
        match r {
            Ok(h) => {
                fresh.push((
                    key(&h.source),
                    Stat {
                        size: h.source.size,
                        mtime_ns: h.source.mtime_ns,
                        inode: h.source.inode,
                        blake3: h.blake3.clone(),
                        integrity: h.integrity.clone(),
                        trusted: trusted(h.source.mtime_ns, scan_start_ns),
                    },
                ));
                done[i] = Some(h);
            }
            // A file that cannot be read is an I/O failure (exit 1), not
            // bad input: the first one in path order is reported.
            Err(e) => {
                failed.get_or_insert(e);
            }
        }
    }
    if let Some(e) = failed {
        return Err(e);
    }
    let stats = HashStats {
        hashed: fresh.len(),
    };
    cache.record_stats(fresh)?;
    Ok((done.into_iter().flatten().collect(), stats))
}

fn key(f: &SourceFile) -> String {
    f.path.to_string_lossy().into_owned()
}

fn hash_source(f: SourceFile, scanner: &Scanner) -> Result<HashedFile> {
    let failed = |e: std::io::Error| Error::io("cannot read", &f.path, e);
    if !scanner.wants(&f.logical) {
        let (blake3, integrity) = hash_file(&f.path).map_err(failed)?;
        return Ok(HashedFile {
            source: f,
            blake3,
            integrity,
            refs: None,
            text: None,
        });
    }
    let bytes = std::fs::read(&f.path).map_err(failed)?;
    let blake3 = hash_bytes(&bytes);
    let integrity = integrity(&bytes);
    let (refs, text) = scanner.scan(&f.logical, bytes);
    Ok(HashedFile {
        source: f,
        blake3,
        integrity,
        refs: Some(refs),
        text,
    })
}

thread_local! {
    /// One read buffer per hashing thread, reused from file to file: a
    /// fresh zeroed buffer per file cost as much as hashing small files.
    static BUFFER: Cell<Vec<u8>> = const { Cell::new(Vec::new()) };
}

/// The file's blake3 (hex) and its integrity (see [`integrity`]).
pub fn hash_file(path: &std::path::Path) -> std::io::Result<(String, String)> {
    let mut file = std::fs::File::open(path)?;
    // Taken out, not borrowed: while `update_rayon` waits, this thread may
    // pick up another file's hashing.
    let mut buf = BUFFER.take();
    buf.clear();
    buf.reserve_exact(READ_CHUNK as usize + 1);
    let mut hasher = blake3::Hasher::new();
    let mut sha = Sha384::new();
    let result = loop {
        buf.clear();
        // read_to_end fills spare capacity without zeroing it first.
        match (&mut file).take(READ_CHUNK).read_to_end(&mut buf) {
            Ok(n) => {
                update(&mut hasher, &buf);
                sha.update(&buf);
                if (n as u64) < READ_CHUNK {
                    break Ok((hasher.finalize().to_hex().to_string(), sri(sha.finish())));
                }
            }
            Err(e) => break Err(e),
        }
    };
    BUFFER.set(buf);
    result
}

fn update(hasher: &mut blake3::Hasher, bytes: &[u8]) {
    if bytes.len() >= PARALLEL_MIN {
        hasher.update_rayon(bytes);
    } else {
        hasher.update(bytes);
    }
}

pub fn hash_bytes(bytes: &[u8]) -> String {
    let mut hasher = blake3::Hasher::new();
    update(&mut hasher, bytes);
    hasher.finalize().to_hex().to_string()
}

/// The Subresource Integrity value of `bytes`: `sha384-` and the base64
/// of their SHA-384, as an `integrity` attribute takes it.
pub fn integrity(bytes: &[u8]) -> String {
    sri(digest::digest(&digest::SHA384, bytes))
}

fn sri(digest: digest::Digest) -> String {
    format!(
        "sha384-{}",
        base64::engine::general_purpose::STANDARD.encode(digest.as_ref())
    )
}

/// SHA-384 as aws-lc computes it (the TLS stack builds it already): its
/// assembly is about 15% faster than the `sha2` crate's on x86-64, and
/// SHA-384 is most of the CPU time of hashing a tree.
struct Sha384(digest::Context);

impl Sha384 {
    fn new() -> Self {
        Sha384(digest::Context::new(&digest::SHA384))
    }

    fn update(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    fn finish(self) -> digest::Digest {
        self.0.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunked_reads_hash_like_one_buffer() {
        let dir = tempfile::tempdir().unwrap();
        for size in [0, 1, 1000, PARALLEL_MIN + 7, READ_CHUNK as usize * 2 + 3] {
            let bytes: Vec<u8> = (0..size).map(|i| (i * 31 % 251) as u8).collect();
            let path = dir.path().join(format!("f{size}"));
            std::fs::write(&path, &bytes).unwrap();
            let want = blake3::hash(&bytes).to_hex().to_string();
            let (blake3, sri) = hash_file(&path).unwrap();
            assert_eq!(blake3, want, "size {size}");
            assert_eq!(hash_bytes(&bytes), want, "size {size}");
            assert_eq!(sri, integrity(&bytes), "size {size}");
        }
    }

    #[test]
    fn integrity_is_the_sha2_crates_sha384() {
        use sha2::Digest as _;
        let dir = tempfile::tempdir().unwrap();
        let sizes = (0..300).chain([1023, 4096, PARALLEL_MIN + 1, READ_CHUNK as usize + 129]);
        for size in sizes {
            let bytes: Vec<u8> = (0..size).map(|i| (i * 7 % 253) as u8).collect();
            let want = sri_of(&sha2::Sha384::digest(&bytes));
            assert_eq!(integrity(&bytes), want, "size {size}");
            let path = dir.path().join("f");
            std::fs::write(&path, &bytes).unwrap();
            assert_eq!(hash_file(&path).unwrap().1, want, "size {size}");
        }
    }

    fn sri_of(digest: &[u8]) -> String {
        format!(
            "sha384-{}",
            base64::engine::general_purpose::STANDARD.encode(digest)
        )
    }

    #[test]
    fn integrity_is_sha384_in_base64() {
        // The value the SRI specification gives for `alert('Hello, world.');`.
        assert_eq!(
            integrity(b"alert('Hello, world.');"),
            "sha384-H8BRh8j48O9oYatfu5AZzq6A9RINhZO5H16dQZngK7T62em8MUt1FLm52t+eX6xO"
        );
    }
}
