//! The state DB as the pipeline sees it: [`StateCache`] adapts it to the
//! stages' one cache interface ([`Cache`]); [`stat_cache`] and
//! [`known_objects`] read the values `hash_all` and `plan` take.

use std::collections::HashMap;

use crate::error::Result;
use crate::pipeline::Cache;
use crate::pipeline::cache::{Rewritten, Stat};
use crate::pipeline::plan::KnownObject;
use crate::pipeline::scan::Ref;
use crate::state::{StatEntry, State};

/// The state DB's caches. Each store of a stage is one transaction.
pub struct StateCache<'a>(pub &'a mut State);

/// The stat cache, by source path, as `hash::hash_all` takes it.
pub fn stat_cache(state: &State) -> Result<HashMap<String, Stat>> {
    state.stat_cache_as(|s| Stat {
        size: s.size,
        mtime_ns: s.mtime_ns,
        inode: s.inode,
        blake3: s.blake3,
        integrity: s.integrity,
        trusted: s.trusted,
    })
}

impl Cache for StateCache<'_> {
    fn record_stats(&mut self, stats: Vec<(String, Stat)>) -> Result<()> {
        let entries: Vec<(String, StatEntry)> = stats
            .into_iter()
            .map(|(path, s)| {
                (
                    path,
                    StatEntry {
                        size: s.size,
                        mtime_ns: s.mtime_ns,
                        inode: s.inode,
                        blake3: s.blake3,
                        integrity: s.integrity,
                        trusted: s.trusted,
                    },
                )
            })
            .collect();
        self.0.store_stats(&entries)
    }

    fn refs(&self, blake3: &str, mode: &str) -> Result<Option<Vec<Ref>>> {
        // Stored as JSON; an entry that does not parse is as good as none.
        Ok(self
            .0
            .refs(blake3, mode)?
            .and_then(|json| serde_json::from_str(&json).ok()))
    }

    fn record_refs(&mut self, found: &[(&str, &str, &[Ref])]) -> Result<()> {
        if found.is_empty() {
            return Ok(());
        }
        let batch = self.0.batch()?;
        for (blake3, mode, refs) in found {
            let json = serde_json::to_string(refs).expect("refs serialize");
            self.0.record_refs(blake3, mode, &json)?;
        }
        batch.commit()
    }

    fn rewritten(&self, input: &str) -> Result<Option<Rewritten>> {
        Ok(self.0.rewritten(input)?.map(|r| Rewritten {
            blake3: r.blake3,
            key_hash: r.key_hash,
            size: r.size,
            integrity: r.integrity,
        }))
    }

    fn record_rewritten(&mut self, results: &[(String, Rewritten)]) -> Result<()> {
        if results.is_empty() {
            return Ok(());
        }
        let batch = self.0.batch()?;
        for (input, r) in results {
            self.0.record_rewritten(
                input,
                &crate::state::Rewritten {
                    blake3: r.blake3.clone(),
                    key_hash: r.key_hash.clone(),
                    size: r.size,
                    integrity: r.integrity.clone(),
                },
            )?;
        }
        batch.commit()
    }

    fn compressed_size(&self, blake3: &str, encoding: &str) -> Result<Option<Option<u64>>> {
        self.0.compressed_size(blake3, encoding)
    }

    fn record_compressed(&mut self, sizes: &[(&str, &str, Option<u64>)]) -> Result<()> {
        if sizes.is_empty() {
            return Ok(());
        }
        let batch = self.0.batch()?;
        for (blake3, encoding, size) in sizes {
            self.0.record_compressed(blake3, encoding, *size)?;
        }
        batch.commit()
    }
}

/// What the state DB knows of `keys` at `target`, read one at a time: a
/// plan asks about few of a target's objects, and a large target has many.
/// Nothing is read for a target without any object recorded.
pub fn known_objects(
    state: &State,
    target: i64,
    keys: impl FnOnce() -> Vec<String>,
) -> Result<HashMap<String, KnownObject>> {
    let mut known = HashMap::new();
    if !state.has_objects(target)? {
        return Ok(known);
    }
    for key in keys() {
        if let Some(k) = state.known_object(target, &key)? {
            known.insert(
                key,
                KnownObject {
                    blake3: k.blake3,
                    size: k.size,
                    meta: k.meta,
                },
            );
        }
    }
    Ok(known)
}
