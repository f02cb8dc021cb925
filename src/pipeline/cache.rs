//! The one interface through which the stages read and fill their caches:
//! the references found in a content, the results of rewriting a file, the
//! sizes of compressed variants, and the stat cache's new entries (the stat
//! cache itself comes in as a value, read while the tree is walked). The
//! caller passes it in (the publish command adapts the state DB to it); no
//! stage opens a cache of its own. Every entry is a fact about bytes or a
//! file's stat, so a cache that answers nothing only makes a run slower.

#[cfg(test)]
use std::collections::HashMap;

use crate::error::Result;
use crate::pipeline::scan::Ref;

/// What the stat cache remembers of a file, by its source path: its stat
/// when it was last hashed, and the hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stat {
    pub size: u64,
    pub mtime_ns: i64,
    pub inode: u64,
    pub blake3: String,
    /// `sha384-<base64>` of the same bytes ('' when not known: then the
    /// entry is a miss).
    pub integrity: String,
    /// The stat was old enough to vouch for the content (see
    /// `hash::trusted`).
    pub trusted: bool,
}

/// What rewriting a file's references produced, remembered so an unchanged
/// file with unchanged references is not read again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rewritten {
    pub blake3: String,
    pub key_hash: String,
    pub size: u64,
    /// `sha384-<base64>` of the rewritten bytes ('' when not known: then
    /// the result is a miss).
    pub integrity: String,
}

/// The lookups and stores the stages make. Lookups come one at a time, as
/// the stages go; stores come in one batch per stage, so an implementation
/// can write each batch at once.
pub trait Cache {
    /// The stats and hashes of the files hashed in this run, by path.
    fn record_stats(&mut self, stats: Vec<(String, Stat)>) -> Result<()>;

    /// The references found before in the content `blake3`, read as `mode`
    /// (see `scan::mode`); `None` when not known.
    fn refs(&self, blake3: &str, mode: &str) -> Result<Option<Vec<Ref>>>;

    /// References found in this run: content hash, mode, references.
    fn record_refs(&mut self, found: &[(&str, &str, &[Ref])]) -> Result<()>;

    /// What rewriting gave for `input` (a digest of the file's content and
    /// of the names its references are rewritten to).
    fn rewritten(&self, input: &str) -> Result<Option<Rewritten>>;

    /// Rewriting results of this run, by input.
    fn record_rewritten(&mut self, results: &[(String, Rewritten)]) -> Result<()>;

    /// The size of the content `blake3` compressed with `encoding`:
    /// `Some(None)` when it is known not to be worth it, `None` when not
    /// known.
    fn compressed_size(&self, blake3: &str, encoding: &str) -> Result<Option<Option<u64>>>;

    /// Compressed sizes of this run: content hash, encoding, size (`None`:
    /// not worth it).
    fn record_compressed(&mut self, sizes: &[(&str, &str, Option<u64>)]) -> Result<()>;
}

/// A cache held in memory, starting empty or with what a test puts in it.
#[cfg(test)]
#[derive(Debug, Default)]
pub struct MemoryCache {
    pub stats: HashMap<String, Stat>,
    pub refs: HashMap<(String, String), Vec<Ref>>,
    pub rewritten: HashMap<String, Rewritten>,
    pub compressed: HashMap<(String, String), Option<u64>>,
}

#[cfg(test)]
impl Cache for MemoryCache {
    fn record_stats(&mut self, stats: Vec<(String, Stat)>) -> Result<()> {
        self.stats.extend(stats);
        Ok(())
    }

    fn refs(&self, blake3: &str, mode: &str) -> Result<Option<Vec<Ref>>> {
        Ok(self
            .refs
            .get(&(blake3.to_string(), mode.to_string()))
            .cloned())
    }

    fn record_refs(&mut self, found: &[(&str, &str, &[Ref])]) -> Result<()> {
        for (blake3, mode, refs) in found {
            self.refs
                .insert((blake3.to_string(), mode.to_string()), refs.to_vec());
        }
        Ok(())
    }

    fn rewritten(&self, input: &str) -> Result<Option<Rewritten>> {
        Ok(self.rewritten.get(input).cloned())
    }

    fn record_rewritten(&mut self, results: &[(String, Rewritten)]) -> Result<()> {
        self.rewritten.extend(results.iter().cloned());
        Ok(())
    }

    fn compressed_size(&self, blake3: &str, encoding: &str) -> Result<Option<Option<u64>>> {
        Ok(self
            .compressed
            .get(&(blake3.to_string(), encoding.to_string()))
            .copied())
    }

    fn record_compressed(&mut self, sizes: &[(&str, &str, Option<u64>)]) -> Result<()> {
        for (blake3, encoding, size) in sizes {
            self.compressed
                .insert((blake3.to_string(), encoding.to_string()), *size);
        }
        Ok(())
    }
}
