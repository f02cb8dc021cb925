//! blake3 of every collected file, in parallel, skipping files the stat cache
//! says are unchanged.

use std::io::Read;

use rayon::prelude::*;

use crate::collect::SourceFile;
use crate::error::{Error, Result};
use crate::report::{Phase, Reporter};
use crate::state::{StatEntry, State};

/// A file whose mtime is this close to the scan could still change without
/// its mtime moving (coarse filesystem timestamps), so its cache entry is not
/// trusted on the next run.
const MTIME_GRANULARITY_NS: i64 = 2_000_000_000;

#[derive(Debug, Clone)]
pub struct HashedFile {
    pub source: SourceFile,
    pub blake3: String,
}

pub struct HashStats {
    pub hashed: usize,
    pub cached: usize,
}

/// `scan_start_ns` is the wall-clock time taken before the tree was walked.
pub fn hash_all(
    files: Vec<SourceFile>,
    state: &mut State,
    scan_start_ns: i64,
    reporter: &dyn Reporter,
) -> Result<(Vec<HashedFile>, HashStats)> {
    let cache = state.stat_cache()?;
    let key = |f: &SourceFile| f.path.to_string_lossy().into_owned();
    let mut todo = Vec::new();
    let mut done: Vec<Option<HashedFile>> = Vec::with_capacity(files.len());
    for (i, f) in files.into_iter().enumerate() {
        match cache.get(&key(&f)) {
            Some(c)
                if c.trusted
                    && c.size == f.size
                    && c.mtime_ns == f.mtime_ns
                    && c.inode == f.inode =>
            {
                done.push(Some(HashedFile {
                    blake3: c.blake3.clone(),
                    source: f,
                }));
            }
            _ => {
                done.push(None);
                todo.push((i, f));
            }
        }
    }
    let total_bytes: u64 = todo.iter().map(|(_, f)| f.size).sum();
    reporter.phase_start(Phase::Hash, todo.len() as u64, total_bytes);
    let results: Vec<(usize, std::result::Result<HashedFile, String>)> = todo
        .into_par_iter()
        .map(|(i, f)| {
            let r = hash_file(&f.path).map(|h| {
                reporter.item_done(Phase::Hash, f.size);
                HashedFile {
                    blake3: h,
                    source: f.clone(),
                }
            });
            (
                i,
                r.map_err(|e| format!("`{}` cannot be read: {e}", f.path.display())),
            )
        })
        .collect();
    reporter.phase_end(Phase::Hash);
    let mut problems = Vec::new();
    let mut fresh = Vec::new();
    for (i, r) in results {
        match r {
            Ok(h) => {
                fresh.push((
                    key(&h.source),
                    StatEntry {
                        size: h.source.size,
                        mtime_ns: h.source.mtime_ns,
                        inode: h.source.inode,
                        blake3: h.blake3.clone(),
                        trusted: scan_start_ns - h.source.mtime_ns > MTIME_GRANULARITY_NS,
                    },
                ));
                done[i] = Some(h);
            }
            Err(p) => problems.push(p),
        }
    }
    if !problems.is_empty() {
        problems.sort();
        return Err(Error::Validation(problems));
    }
    let stats = HashStats {
        hashed: fresh.len(),
        cached: done.len() - fresh.len(),
    };
    state.store_stats(&fresh)?;
    Ok((done.into_iter().flatten().collect(), stats))
}

pub fn hash_file(path: &std::path::Path) -> std::io::Result<String> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = blake3::Hasher::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher.finalize().to_hex().to_string())
}

pub fn hash_bytes(bytes: &[u8]) -> String {
    blake3::hash(bytes).to_hex().to_string()
}
