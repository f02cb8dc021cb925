//! The state DB: the only module that speaks SQL. A cache of facts, never the
//! only copy of one; a corrupt file is moved aside and rebuilt.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension, params};

use crate::error::{Conflict, Error, Result};
use crate::report::Reporter;

include!(concat!(env!("OUT_DIR"), "/migrations.rs"));

pub struct State {
    conn: Connection,
    path: PathBuf,
    /// The DB file's stamp (see [`file_stamp`]) as this run found it intact;
    /// `None` for an in-memory DB.
    verified: Option<String>,
    /// An SQLite error was seen: the file is not vouched for at close.
    failed: std::cell::Cell<bool>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatEntry {
    pub size: u64,
    pub mtime_ns: i64,
    pub inode: u64,
    pub blake3: String,
    /// `sha384-<base64>` of the same bytes; '' when not known.
    pub integrity: String,
    pub trusted: bool,
}

#[derive(Debug, Clone, Default)]
pub struct TargetInfo {
    pub id: i64,
    pub conditional_writes: Option<bool>,
    /// The store `conditional_writes` was learnt at, as it describes
    /// itself (see [`State::set_conditional_writes`]).
    pub conditional_writes_at: Option<String>,
    pub manifest_etag: Option<String>,
    /// Whether the state DB holds the manifest as last seen (read with
    /// [`State::manifest_json`] when needed: megabytes for a large site).
    pub has_manifest_json: bool,
    pub current_deploy: Option<String>,
}

impl TargetInfo {
    /// Forgets the store's answer on conditional writes unless it was
    /// learnt at `at` (the store as it describes itself): the same bucket
    /// name behind another endpoint is another store, maybe of the other
    /// kind, and a wrong "enforces" would let a lock create overwrite a
    /// lock another run holds.
    pub fn known_at(&mut self, at: &str) {
        if self.conditional_writes_at.as_deref() != Some(at) {
            self.conditional_writes = None;
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownObject {
    pub blake3: String,
    pub size: u64,
    pub meta: String,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DeployRecord {
    pub id: String,
    pub parent: Option<String>,
    pub created: String,
    pub files: u64,
    pub uploaded: u64,
    pub bytes: u64,
    pub git_commit: Option<String>,
    pub ci_run: Option<String>,
    pub message: Option<String>,
}

impl State {
    /// Opens (or creates) the state DB and brings its schema up to date. A
    /// file SQLite cannot read is moved aside with a warning and a new one is
    /// started: everything in it can be rebuilt from the target.
    pub fn open(path: &Path, reporter: &dyn Reporter) -> Result<State> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| Error::io("cannot create state directory", dir, e))?;
        }
        match State::try_open(path) {
            Ok(state) => Ok(state),
            Err(OpenError::Locked) => Err(Error::conflict(
                Conflict::StateInUse,
                format!(
                    "state DB `{}` is locked by another process (another assetpub run?)",
                    path.display()
                ),
            )),
            Err(OpenError::Other(e)) => Err(e),
            Err(OpenError::Corrupt(why)) => {
                let aside = aside_name(path);
                std::fs::rename(path, &aside)
                    .map_err(|e| Error::io("cannot move aside corrupt state DB", path, e))?;
                for suffix in ["-wal", "-shm"] {
                    let _ = std::fs::rename(beside(path, suffix), beside(&aside, suffix));
                }
                reporter.warn(&format!(
                    "state DB `{}` is corrupt ({why}); moved it to `{}` and started a new one, rebuilt from the target",
                    path.display(),
                    aside.display()
                ));
                State::try_open(path).map_err(|e| match e {
                    OpenError::Other(e) => e,
                    OpenError::Locked | OpenError::Corrupt(_) => {
                        Error::state(path, "cannot create a new state DB")
                    }
                })
            }
        }
    }

    fn try_open(path: &Path) -> std::result::Result<State, OpenError> {
        let classify = |e: rusqlite::Error| -> OpenError {
            match e.sqlite_error_code() {
                _ if is_locked(&e) => OpenError::Locked,
                Some(rusqlite::ErrorCode::NotADatabase)
                | Some(rusqlite::ErrorCode::DatabaseCorrupt) => OpenError::Corrupt(e.to_string()),
                _ => OpenError::Other(Error::sql(path, e)),
            }
        };
        // The integrity check reads the whole file. It is skipped while the
        // file is exactly as a run that found it intact left it: a restored
        // or copied file, or one a crash left with a pending WAL, is checked.
        let stamp = file_stamp(path);
        let vouched = stamp.is_some()
            && !wal_pending(path)
            && std::fs::read_to_string(verified_path(path)).ok() == stamp;
        let conn = Connection::open(path).map_err(classify)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(classify)?;
        if !vouched {
            let check: String = conn
                .query_row("PRAGMA quick_check", [], |r| r.get(0))
                .map_err(classify)?;
            if check != "ok" {
                return Err(OpenError::Corrupt(check));
            }
        }
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(classify)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(classify)?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(classify)?;
        let mut state = State {
            conn,
            path: path.to_path_buf(),
            verified: stamp.filter(|_| vouched),
            failed: std::cell::Cell::new(false),
        };
        state.migrate().map_err(|e| match e {
            Error::State {
                source: Some(ref e),
                ..
            } if is_locked(e) => OpenError::Locked,
            other => OpenError::Other(other),
        })?;
        Ok(state)
    }

    /// In-memory, for tests and dry runs that must not touch the disk.
    pub fn in_memory() -> Result<State> {
        let conn = Connection::open_in_memory().map_err(|e| Error::sql(":memory:", e))?;
        let mut state = State {
            conn,
            path: PathBuf::from(":memory:"),
            verified: None,
            failed: std::cell::Cell::new(false),
        };
        state.migrate()?;
        Ok(state)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn err(&self, e: rusqlite::Error) -> Error {
        sql_error(&self.path, &self.failed, e)
    }

    /// A statement run once per file or object: parsed once per run.
    fn cached(&self, sql: &str) -> Result<rusqlite::CachedStatement<'_>> {
        self.conn.prepare_cached(sql).map_err(|e| self.err(e))
    }

    /// Groups the writes made until `commit` into one transaction, for the
    /// caches written once per file (a commit each cost more than the
    /// write). Dropped without `commit`, the writes are rolled back.
    pub fn batch(&self) -> Result<Batch<'_>> {
        self.conn
            .unchecked_transaction()
            .map(|tx| Batch { tx, state: self })
            .map_err(|e| self.err(e))
    }

    fn migrate(&mut self) -> Result<()> {
        let err = |e: rusqlite::Error| sql_error(&self.path, &self.failed, e);
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(err)?;
        tx.execute_batch(
            "CREATE TABLE IF NOT EXISTS schema_migrations (
                version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)",
        )
        .map_err(err)?;
        let applied: i64 = tx
            .query_row(
                "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
                [],
                |r| r.get(0),
            )
            .map_err(err)?;
        let newest = MIGRATIONS.last().map_or(0, |m| m.0);
        if applied > newest {
            return Err(Error::state(
                &self.path,
                format!(
                    "written by a newer assetpub (schema {applied}, this one knows {newest}); upgrade assetpub or use another --state"
                ),
            ));
        }
        for (version, name, sql) in MIGRATIONS.iter().filter(|m| m.0 > applied) {
            tx.execute_batch(sql).map_err(err)?;
            tx.execute(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?1, ?2, ?3)",
                params![version, name, chrono::Utc::now().to_rfc3339()],
            )
            .map_err(err)?;
        }
        tx.commit().map_err(err)
    }

    pub fn schema_version(&self) -> Result<i64> {
        self.conn
            .query_row("SELECT MAX(version) FROM schema_migrations", [], |r| {
                r.get(0)
            })
            .map_err(|e| self.err(e))
    }

    // --- stat cache -------------------------------------------------------

    pub fn stat_cache(&self) -> Result<HashMap<String, StatEntry>> {
        self.stat_cache_as(|e| e)
    }

    /// The stat cache with each entry made into a `T` as it is read: a
    /// caller with a type of its own gets the map without a second pass.
    pub fn stat_cache_as<T>(&self, into: impl Fn(StatEntry) -> T) -> Result<HashMap<String, T>> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT path, size, mtime_ns, inode, blake3, trusted, integrity FROM stat_cache",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    into(StatEntry {
                        size: r.get::<_, i64>(1)? as u64,
                        mtime_ns: r.get(2)?,
                        inode: r.get::<_, i64>(3)? as u64,
                        blake3: r.get(4)?,
                        trusted: r.get(5)?,
                        integrity: r.get(6)?,
                    }),
                ))
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<std::result::Result<_, _>>()
            .map_err(|e| self.err(e))
    }

    pub fn store_stats(&mut self, entries: &[(String, StatEntry)]) -> Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        let err = |e: rusqlite::Error| sql_error(&self.path, &self.failed, e);
        let tx = self.conn.transaction().map_err(err)?;
        {
            let mut stmt = tx
                .prepare(
                    "INSERT OR REPLACE INTO stat_cache (path, size, mtime_ns, inode, blake3, trusted, integrity)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )
                .map_err(err)?;
            for (p, s) in entries {
                stmt.execute(params![
                    p,
                    s.size as i64,
                    s.mtime_ns,
                    s.inode as i64,
                    s.blake3,
                    s.trusted,
                    s.integrity
                ])
                .map_err(err)?;
            }
        }
        tx.commit().map_err(err)
    }

    // --- targets ----------------------------------------------------------

    pub fn target(&self, url: &str) -> Result<TargetInfo> {
        self.conn
            .execute(
                "INSERT OR IGNORE INTO targets (url) VALUES (?1)",
                params![url],
            )
            .map_err(|e| self.err(e))?;
        self.conn
            .query_row(
                "SELECT id, conditional_writes, manifest_etag, manifest_json IS NOT NULL, current_deploy, conditional_writes_at FROM targets WHERE url = ?1",
                params![url],
                |r| {
                    Ok(TargetInfo {
                        id: r.get(0)?,
                        conditional_writes: r.get(1)?,
                        conditional_writes_at: r.get(5)?,
                        manifest_etag: r.get(2)?,
                        has_manifest_json: r.get(3)?,
                        current_deploy: r.get(4)?,
                    })
                },
            )
            .map_err(|e| self.err(e))
    }

    /// Records whether the store enforces conditional writes, learnt at
    /// `at` (the store's description: its URL and endpoint).
    pub fn set_conditional_writes(&self, target: i64, enforced: bool, at: &str) -> Result<()> {
        self.conn
            .execute(
                "UPDATE targets SET conditional_writes = ?2, conditional_writes_at = ?3 WHERE id = ?1",
                params![target, enforced, at],
            )
            .map(drop)
            .map_err(|e| self.err(e))
    }

    /// The manifest as last seen, if the state DB holds it.
    pub fn manifest_json(&self, target: i64) -> Result<Option<String>> {
        self.conn
            .query_row(
                "SELECT manifest_json FROM targets WHERE id = ?1",
                params![target],
                |r| r.get(0),
            )
            .map_err(|e| self.err(e))
    }

    /// Remembers the remote manifest as last seen (None: there is none).
    pub fn set_remote_manifest(
        &self,
        target: i64,
        etag: Option<&str>,
        json: Option<&str>,
        deploy: Option<&str>,
    ) -> Result<()> {
        self.conn
            .execute(
                "UPDATE targets SET manifest_etag = ?2, manifest_json = ?3, current_deploy = ?4 WHERE id = ?1",
                params![target, etag, json, deploy],
            )
            .map(drop)
            .map_err(|e| self.err(e))
    }

    // --- objects ----------------------------------------------------------

    pub fn known_objects(&self, target: i64) -> Result<HashMap<String, KnownObject>> {
        let mut stmt = self
            .conn
            .prepare("SELECT key, blake3, size, meta FROM objects WHERE target_id = ?1")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(params![target], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    KnownObject {
                        blake3: r.get(1)?,
                        size: r.get::<_, i64>(2)? as u64,
                        meta: r.get(3)?,
                    },
                ))
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<std::result::Result<_, _>>()
            .map_err(|e| self.err(e))
    }

    /// Whether this target has any object recorded: a target without any
    /// needs no lookups.
    pub fn has_objects(&self, target: i64) -> Result<bool> {
        self.cached("SELECT EXISTS (SELECT 1 FROM objects WHERE target_id = ?1)")?
            .query_row(params![target], |r| r.get(0))
            .map_err(|e| self.err(e))
    }

    pub fn known_object(&self, target: i64, key: &str) -> Result<Option<KnownObject>> {
        self.cached("SELECT blake3, size, meta FROM objects WHERE target_id = ?1 AND key = ?2")?
            .query_row(params![target, key], |r| {
                Ok(KnownObject {
                    blake3: r.get(0)?,
                    size: r.get::<_, i64>(1)? as u64,
                    meta: r.get(2)?,
                })
            })
            .optional()
            .map_err(|e| self.err(e))
    }

    pub fn record_object(&self, target: i64, key: &str, object: &KnownObject) -> Result<()> {
        self.cached(
            "INSERT OR REPLACE INTO objects (target_id, key, blake3, size, meta, uploaded_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?
        .execute(params![
            target,
            key,
            object.blake3,
            object.size as i64,
            object.meta,
            chrono::Utc::now().timestamp()
        ])
        .map(drop)
        .map_err(|e| self.err(e))
    }

    pub fn forget_objects(&mut self, target: i64, keys: &[String]) -> Result<()> {
        let err = |e: rusqlite::Error| sql_error(&self.path, &self.failed, e);
        let tx = self.conn.transaction().map_err(err)?;
        for k in keys {
            tx.execute(
                "DELETE FROM objects WHERE target_id = ?1 AND key = ?2",
                params![target, k],
            )
            .map_err(err)?;
        }
        tx.commit().map_err(err)
    }

    // --- deploys ----------------------------------------------------------

    pub fn record_deploy(&self, target: i64, d: &DeployRecord) -> Result<()> {
        self.conn
            .execute(
                // A deploy seen again in the target's manifest keeps what
                // this machine recorded when it made it (upload counts).
                "INSERT INTO deploys (target_id, id, parent, created, files, uploaded, bytes, git_commit, ci_run, message)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
                 ON CONFLICT (target_id, id) DO UPDATE SET
                     parent = excluded.parent,
                     created = excluded.created,
                     files = excluded.files,
                     uploaded = max(uploaded, excluded.uploaded),
                     bytes = max(bytes, excluded.bytes),
                     git_commit = coalesce(excluded.git_commit, git_commit),
                     ci_run = coalesce(excluded.ci_run, ci_run),
                     message = coalesce(excluded.message, message)",
                params![
                    target,
                    d.id,
                    d.parent,
                    d.created,
                    d.files as i64,
                    d.uploaded as i64,
                    d.bytes as i64,
                    d.git_commit,
                    d.ci_run,
                    d.message
                ],
            )
            .map(drop)
            .map_err(|e| self.err(e))
    }

    pub fn deploys(&self, target: i64) -> Result<HashMap<String, DeployRecord>> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT id, parent, created, files, uploaded, bytes, git_commit, ci_run, message FROM deploys WHERE target_id = ?1",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(params![target], |r| {
                let d = DeployRecord {
                    id: r.get(0)?,
                    parent: r.get(1)?,
                    created: r.get(2)?,
                    files: r.get::<_, i64>(3)? as u64,
                    uploaded: r.get::<_, i64>(4)? as u64,
                    bytes: r.get::<_, i64>(5)? as u64,
                    git_commit: r.get(6)?,
                    ci_run: r.get(7)?,
                    message: r.get(8)?,
                };
                Ok((d.id.clone(), d))
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<std::result::Result<_, _>>()
            .map_err(|e| self.err(e))
    }

    // --- compression cache ------------------------------------------------

    /// Some(None): known not to be worth compressing; None: not known.
    pub fn compressed_size(&self, blake3: &str, encoding: &str) -> Result<Option<Option<u64>>> {
        self.cached("SELECT size FROM compressed WHERE blake3 = ?1 AND encoding = ?2")?
            .query_row(params![blake3, encoding], |r| r.get::<_, Option<i64>>(0))
            .optional()
            .map(|o| o.map(|s| s.map(|n| n as u64)))
            .map_err(|e| self.err(e))
    }

    pub fn record_compressed(&self, blake3: &str, encoding: &str, size: Option<u64>) -> Result<()> {
        self.cached(
            "INSERT OR REPLACE INTO compressed (blake3, encoding, size) VALUES (?1, ?2, ?3)",
        )?
        .execute(params![blake3, encoding, size.map(|s| s as i64)])
        .map(drop)
        .map_err(|e| self.err(e))
    }
}

/// What rewriting a file produced, remembered so an unchanged file with
/// unchanged references is not read again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rewritten {
    pub blake3: String,
    pub key_hash: String,
    pub size: u64,
    /// `sha384-<base64>` of the rewritten bytes; '' when not known.
    pub integrity: String,
}

impl State {
    pub fn refs(&self, blake3: &str, mode: &str) -> Result<Option<String>> {
        self.cached("SELECT refs FROM refs_cache WHERE blake3 = ?1 AND mode = ?2")?
            .query_row(params![blake3, mode], |r| r.get(0))
            .optional()
            .map_err(|e| self.err(e))
    }

    pub fn record_refs(&self, blake3: &str, mode: &str, refs: &str) -> Result<()> {
        self.cached("INSERT OR REPLACE INTO refs_cache (blake3, mode, refs) VALUES (?1, ?2, ?3)")?
            .execute(params![blake3, mode, refs])
            .map(drop)
            .map_err(|e| self.err(e))
    }

    pub fn rewritten(&self, input: &str) -> Result<Option<Rewritten>> {
        self.cached("SELECT blake3, key_hash, size, integrity FROM rewrite_cache WHERE input = ?1")?
            .query_row(params![input], |r| {
                Ok(Rewritten {
                    blake3: r.get(0)?,
                    key_hash: r.get(1)?,
                    size: r.get::<_, i64>(2)? as u64,
                    integrity: r.get(3)?,
                })
            })
            .optional()
            .map_err(|e| self.err(e))
    }

    pub fn record_rewritten(&self, input: &str, r: &Rewritten) -> Result<()> {
        self.cached(
            "INSERT OR REPLACE INTO rewrite_cache (input, blake3, key_hash, size, integrity)
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )?
        .execute(params![
            input,
            r.blake3,
            r.key_hash,
            r.size as i64,
            r.integrity
        ])
        .map(drop)
        .map_err(|e| self.err(e))
    }
}

/// The inputs a target's deploy was prepared from (see `prepare::inputs_digest`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreparedFrom {
    pub inputs: String,
    pub deploy: String,
    pub warnings: Vec<String>,
    /// `prepare::stat_key` of the tree the inputs were read from, when every
    /// file in it was old enough to trust its stat.
    pub stat_key: Option<String>,
}

impl State {
    pub fn prepared_from(&self, target: i64) -> Result<Option<PreparedFrom>> {
        self.cached("SELECT inputs, deploy, warnings, stat_key FROM prepared WHERE target_id = ?1")?
            .query_row(params![target], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get::<_, String>(2)?, r.get(3)?))
            })
            .optional()
            .map(|row| {
                row.map(|(inputs, deploy, warnings, stat_key)| PreparedFrom {
                    inputs,
                    deploy,
                    // Unreadable warnings only lose the repetition.
                    warnings: serde_json::from_str(&warnings).unwrap_or_default(),
                    stat_key,
                })
            })
            .map_err(|e| self.err(e))
    }

    pub fn record_prepared_from(&self, target: i64, p: &PreparedFrom) -> Result<()> {
        let warnings = serde_json::to_string(&p.warnings).expect("strings serialize");
        self.cached(
            "INSERT OR REPLACE INTO prepared (target_id, inputs, deploy, warnings, stat_key) VALUES (?1, ?2, ?3, ?4, ?5)",
        )?
        .execute(params![target, p.inputs, p.deploy, warnings, p.stat_key])
        .map(drop)
        .map_err(|e| self.err(e))
    }
}

/// Writes grouped into one transaction; see `State::batch`.
pub struct Batch<'a> {
    tx: rusqlite::Transaction<'a>,
    state: &'a State,
}

impl Batch<'_> {
    pub fn commit(self) -> Result<()> {
        let state = self.state;
        self.tx.commit().map_err(|e| state.err(e))
    }
}

impl Drop for State {
    /// Closes the DB and, when this run saw no SQLite error, records the
    /// file's stamp so that the next open can skip the integrity check.
    fn drop(&mut self) {
        if self.path.as_os_str() == ":memory:" || self.failed.get() {
            return;
        }
        let Ok(placeholder) = Connection::open_in_memory() else {
            return;
        };
        // Closed by its last connection, SQLite checkpoints and removes the
        // WAL, so the file's stamp is final.
        if std::mem::replace(&mut self.conn, placeholder)
            .close()
            .is_err()
            || wal_pending(&self.path)
        {
            return;
        }
        if let Some(stamp) = file_stamp(&self.path)
            && self.verified.as_ref() != Some(&stamp)
        {
            let _ = std::fs::write(verified_path(&self.path), stamp);
        }
    }
}

/// An SQLite error as the run reports it. It also marks the run as failed,
/// so that the file is not vouched for at close.
fn sql_error(path: &Path, failed: &std::cell::Cell<bool>, e: rusqlite::Error) -> Error {
    failed.set(true);
    Error::sql(path, e)
}

/// Whether SQLite failed because another connection holds the DB.
fn is_locked(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

/// The files kept beside the DB file, by the suffix added to its name:
/// SQLite's journals, and the stamp of [`verified_path`].
pub const SIDE_FILES: [&str; 4] = ["-wal", "-shm", "-journal", "-verified"];

/// `path` with `suffix` added to its file name.
fn beside(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_os_string();
    name.push(suffix);
    PathBuf::from(name)
}

/// Beside the DB: its stamp when last closed by a run that found it intact.
fn verified_path(path: &Path) -> PathBuf {
    beside(path, "-verified")
}

/// Size, mtime and inode of the DB file.
fn file_stamp(path: &Path) -> Option<String> {
    let m = std::fs::metadata(path).ok()?;
    Some(format!(
        "{} {} {}",
        m.len(),
        crate::util::mtime_ns(&m),
        crate::util::inode(&m)
    ))
}

/// A WAL with frames in it: a run still has the DB open, or one ended
/// without closing it.
fn wal_pending(path: &Path) -> bool {
    std::fs::metadata(beside(path, "-wal")).is_ok_and(|m| m.len() > 0)
}

enum OpenError {
    Locked,
    Corrupt(String),
    Other(Error),
}

fn aside_name(path: &Path) -> PathBuf {
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
    beside(path, &format!(".corrupt-{stamp}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::CollectingReporter;

    #[test]
    fn migrations_are_recorded_and_idempotent() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let r = CollectingReporter::default();
        let s = State::open(&path, &r).unwrap();
        assert_eq!(s.schema_version().unwrap(), MIGRATIONS.len() as i64);
        drop(s);
        let s = State::open(&path, &r).unwrap();
        assert_eq!(s.schema_version().unwrap(), MIGRATIONS.len() as i64);
        assert!(r.warnings.lock().unwrap().is_empty());
    }

    #[test]
    fn seeing_a_deploy_again_keeps_its_upload_counts() {
        let dir = tempfile::tempdir().unwrap();
        let s = State::open(&dir.path().join("state.db"), &CollectingReporter::default()).unwrap();
        let t = s.target("file:///x").unwrap().id;
        let mut d = DeployRecord {
            id: "20261124T000000Z-aaaaaa".into(),
            parent: None,
            created: "2026-11-24T00:00:00.000Z".into(),
            files: 3,
            uploaded: 2,
            bytes: 900,
            git_commit: Some("abc".into()),
            message: None,
            ci_run: None,
        };
        s.record_deploy(t, &d).unwrap();
        // As read back from the target's manifest: no counts known.
        d.uploaded = 0;
        d.bytes = 0;
        d.git_commit = None;
        s.record_deploy(t, &d).unwrap();
        let got = &s.deploys(t).unwrap()[&d.id];
        assert_eq!((got.uploaded, got.bytes), (2, 900));
        assert_eq!(got.git_commit.as_deref(), Some("abc"));
    }

    #[test]
    fn a_corrupt_db_is_moved_aside_with_a_warning() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        std::fs::write(
            &path,
            b"this is not a database, not even close, it is just text",
        )
        .unwrap();
        let r = CollectingReporter::default();
        let s = State::open(&path, &r).unwrap();
        assert_eq!(s.schema_version().unwrap(), MIGRATIONS.len() as i64);
        let warnings = r.warnings.lock().unwrap();
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].contains("corrupt"), "{warnings:?}");
        let aside: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().contains(".corrupt-"))
            .collect();
        assert_eq!(aside.len(), 1, "the corrupt file is kept");
    }

    #[test]
    fn a_clean_close_vouches_for_the_file_until_it_changes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let r = CollectingReporter::default();
        let entries: Vec<_> = (0..2000)
            .map(|i| {
                (
                    format!("/site/file-{i}.css"),
                    StatEntry {
                        size: i,
                        mtime_ns: 1,
                        inode: i,
                        blake3: "ab".repeat(32),
                        integrity: String::new(),
                        trusted: true,
                    },
                )
            })
            .collect();
        {
            let mut s = State::open(&path, &r).unwrap();
            s.store_stats(&entries).unwrap();
        }
        let stamp = std::fs::read_to_string(verified_path(&path)).unwrap();
        assert_eq!(Some(stamp.clone()), file_stamp(&path));
        assert!(!wal_pending(&path), "closing checkpoints the WAL");
        // Opened as vouched for, read only: the stamp stays.
        {
            let s = State::open(&path, &r).unwrap();
            assert!(s.verified.is_some());
            assert_eq!(s.stat_cache().unwrap().len(), 2000);
        }
        assert_eq!(
            std::fs::read_to_string(verified_path(&path)).unwrap(),
            stamp
        );
        // Changed behind its back (the same size): checked, found corrupt,
        // moved aside.
        let mut bytes = std::fs::read(&path).unwrap();
        let half = bytes.len() / 2;
        bytes[half..].fill(0x55);
        std::fs::write(&path, &bytes).unwrap();
        let s = State::open(&path, &r).unwrap();
        assert!(s.verified.is_none());
        assert!(s.stat_cache().unwrap().is_empty(), "a new DB");
        let warnings = r.warnings.lock().unwrap();
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].contains("corrupt"), "{warnings:?}");
    }

    #[test]
    fn objects_and_deploys_round_trip() {
        let s = State::in_memory().unwrap();
        let t = s.target("file:///x").unwrap();
        assert_eq!(s.target("file:///x").unwrap().id, t.id);
        let o = KnownObject {
            blake3: "ab".into(),
            size: 3,
            meta: "m".into(),
        };
        s.record_object(t.id, "a.css", &o).unwrap();
        assert_eq!(s.known_objects(t.id).unwrap()["a.css"], o);
        assert_eq!(s.known_object(t.id, "a.css").unwrap(), Some(o.clone()));
        assert_eq!(s.known_object(t.id, "b.css").unwrap(), None);
        assert!(s.has_objects(t.id).unwrap());
        assert!(!s.has_objects(t.id + 1).unwrap());
        assert_eq!(s.compressed_size("ab", "br").unwrap(), None);
        s.record_compressed("ab", "br", None).unwrap();
        assert_eq!(s.compressed_size("ab", "br").unwrap(), Some(None));
    }
}
