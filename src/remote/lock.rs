//! The deploy lock, `.assetpub/lock`: one publish, rollback or prune at a
//! time per target. Taken with `If-None-Match: *`, renewed while a long run
//! uploads, released at the end; a lock past its expiry is taken over with
//! `If-Match` on the ETag it was read with. [`with_lock`] is the bracket the
//! commands run their work in.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

use crate::error::{Conflict, Error, Result};
use crate::remote::manifest::LOCK_KEY;
use crate::report::Reporter;
use crate::store::{Body, Condition, GetOutcome, NoObserver, ObjectMeta, PutOutcome, Store};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LockInfo {
    pub owner: String,
    pub host: String,
    pub pid: u32,
    pub command: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ci_run: Option<String>,
    pub created: String,
    pub expires: String,
}

impl LockInfo {
    fn new(command: &str, ttl: Duration) -> LockInfo {
        let now = chrono::Utc::now();
        LockInfo {
            owner: std::env::var("USER")
                .or_else(|_| std::env::var("USERNAME"))
                .unwrap_or_else(|_| "unknown".into()),
            host: gethostname::gethostname().to_string_lossy().into_owned(),
            pid: std::process::id(),
            command: command.to_string(),
            ci_run: crate::util::ci_run(),
            created: now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            expires: expiry(ttl),
        }
    }

    fn describe(&self) -> String {
        let ci = self
            .ci_run
            .as_deref()
            .map(|c| format!(", {c}"))
            .unwrap_or_default();
        format!(
            "{}@{} (pid {}, `{}`{ci}) since {}, expires {}",
            self.owner, self.host, self.pid, self.command, self.created, self.expires
        )
    }

    fn same_holder(&self, other: &LockInfo) -> bool {
        self.host == other.host && self.pid == other.pid && self.created == other.created
    }

    /// Past its expiry, or left by a process of this host that is gone (a
    /// killed run): either way nobody holds it any more.
    fn expired(&self) -> bool {
        let past = chrono::DateTime::parse_from_rfc3339(&self.expires)
            .map_or(true, |t| t < chrono::Utc::now());
        past || self.holder_is_dead()
    }

    fn holder_is_dead(&self) -> bool {
        let here = gethostname::gethostname().to_string_lossy().into_owned();
        // Only Linux answers "is this pid alive" without a new dependency;
        // elsewhere a dead holder's lock waits for its expiry.
        cfg!(target_os = "linux")
            && self.host == here
            && self.pid != 0
            && self.pid != std::process::id()
            && !std::path::Path::new(&format!("/proc/{}", self.pid)).exists()
    }
}

fn expiry(ttl: Duration) -> String {
    (chrono::Utc::now() + chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::minutes(15)))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn lock_meta() -> ObjectMeta {
    ObjectMeta {
        content_type: Some("application/json".into()),
        cache_control: Some("no-store".into()),
        ..ObjectMeta::default()
    }
}

/// A held lock. Renewed in the background until released.
pub struct Lock {
    store: Arc<dyn Store>,
    enforced: bool,
    held: Arc<Mutex<Held>>,
    lost: Arc<AtomicBool>,
    renewer: Option<tokio::task::JoinHandle<()>>,
    /// Its entry in [`INTERRUPTS`].
    id: u64,
}

/// What an interrupt (Ctrl-C, SIGTERM) needs to know of this process's
/// runs: the locks they hold, to release once their work is dropped, and
/// whether one has begun to switch the site, which must not be cut short.
struct Interrupts {
    interrupted: bool,
    switch_begun: bool,
    next_id: u64,
    held: Vec<Registered>,
}

struct Registered {
    id: u64,
    store: Arc<dyn Store>,
    held: Arc<Mutex<Held>>,
    lost: Arc<AtomicBool>,
    enforced: bool,
}

static INTERRUPTS: std::sync::Mutex<Interrupts> = std::sync::Mutex::new(Interrupts {
    interrupted: false,
    switch_begun: false,
    next_id: 0,
    held: Vec::new(),
});

fn interrupts() -> std::sync::MutexGuard<'static, Interrupts> {
    INTERRUPTS.lock().unwrap_or_else(|e| e.into_inner())
}

/// Marks the process interrupted: from now on no run begins to switch the
/// site ([`Lock::check`] fails). Returns whether one already has (passed
/// its check before the switch): that run is to be let finish, since what
/// it began is what the site now serves.
pub fn interrupt() -> bool {
    let mut i = interrupts();
    i.interrupted = true;
    i.switch_begun
}

/// After an interrupt, once the work has been dropped: releases the locks
/// it held. Returns how many were released.
pub async fn release_held() -> Result<usize> {
    let held = std::mem::take(&mut interrupts().held);
    let mut released = 0;
    for r in held {
        if r.lost.load(Ordering::SeqCst) {
            continue;
        }
        if delete_ours(r.store.as_ref(), &r.held, r.enforced).await? {
            released += 1;
        }
    }
    Ok(released)
}

struct Held {
    info: LockInfo,
    etag: Option<String>,
}

impl Lock {
    /// Takes the lock. `enforced` says whether the store enforces
    /// conditional writes; `None` when that is not known yet (a target's
    /// first run): it is then learnt on the way (see [`create_and_learn`])
    /// and [`Lock::enforced`] says it.
    pub async fn acquire(
        store: Arc<dyn Store>,
        command: &str,
        ttl: Duration,
        enforced: Option<bool>,
        break_lock: bool,
    ) -> Result<Lock> {
        let info = LockInfo::new(command, ttl);
        let body = serde_json::to_vec_pretty(&info).expect("lock info serializes");
        let (enforced, etag) = match enforced {
            Some(enforced) => (
                enforced,
                acquire_known(store.as_ref(), &body, enforced, break_lock).await?,
            ),
            None if break_lock => {
                let enforced = store.probe_conditional_writes().await?;
                (
                    enforced,
                    acquire_known(store.as_ref(), &body, enforced, true).await?,
                )
            }
            None => match create_and_learn(store.as_ref(), &body).await? {
                Some(learnt) => learnt,
                // A lock is there (or came at the same moment): the
                // store's own probe answers, then the usual way on.
                None => {
                    let enforced = store.probe_conditional_writes().await?;
                    (
                        enforced,
                        acquire_known(store.as_ref(), &body, enforced, false).await?,
                    )
                }
            },
        };
        Ok(Lock::hold(store, info, etag, ttl, enforced))
    }

    /// Whether the store enforces conditional writes, as known or learnt
    /// when the lock was taken.
    pub fn enforced(&self) -> bool {
        self.enforced
    }

    fn hold(
        store: Arc<dyn Store>,
        info: LockInfo,
        etag: Option<String>,
        ttl: Duration,
        enforced: bool,
    ) -> Lock {
        let state = Arc::new(Mutex::new(Held { info, etag }));
        let lost = Arc::new(AtomicBool::new(false));
        let renewer = tokio::spawn(renew_loop(
            store.clone(),
            state.clone(),
            lost.clone(),
            ttl,
            enforced,
        ));
        let id = {
            let mut i = interrupts();
            i.next_id += 1;
            let id = i.next_id;
            i.held.push(Registered {
                id,
                store: store.clone(),
                held: state.clone(),
                lost: lost.clone(),
                enforced,
            });
            id
        };
        Lock {
            store,
            enforced,
            held: state,
            lost,
            renewer: Some(renewer),
            id,
        }
    }
    /// Fails when another run took the lock over while this one held it
    /// (it expired, or someone broke it): the caller must not switch the
    /// manifest then.
    ///
    /// It is called just before the switch begins, so it also fails once
    /// the process is interrupted, and otherwise records that the switch
    /// has begun (see [`interrupt`]).
    pub fn check(&self) -> Result<()> {
        if self.lost.load(Ordering::SeqCst) {
            return Err(Error::conflict(
                Conflict::LockHeld,
                "the deploy lock was taken over by another run while this one was uploading; not switching the manifest",
            ));
        }
        let mut i = interrupts();
        // Once begun, a switch is let finish (it is checked again on its
        // way, for the lock alone).
        if i.interrupted && !i.switch_begun {
            return Err(Error::Runtime(
                "interrupted; not switching the manifest".into(),
            ));
        }
        i.switch_begun = true;
        Ok(())
    }

    pub async fn release(mut self) -> Result<()> {
        if let Some(r) = self.renewer.take() {
            r.abort();
        }
        if self.lost.load(Ordering::SeqCst) {
            return Ok(());
        }
        delete_ours(self.store.as_ref(), &self.held, self.enforced).await?;
        // Released: nothing for an interrupt to do (until then, an
        // interrupted release is finished by `release_held`).
        let id = self.id;
        interrupts().held.retain(|r| r.id != id);
        Ok(())
    }
}

/// Takes the lock on a store whose conditional writes are known. Returns
/// the ETag of the lock written.
async fn acquire_known(
    store: &dyn Store,
    body: &[u8],
    enforced: bool,
    break_lock: bool,
) -> Result<Option<String>> {
    // Without conditional writes the check below is only best effort:
    // two runs can both see no lock. The caller warns about that.
    let mut condition = Condition::IfAbsent;
    if (!enforced || break_lock)
        && let Some((holder, etag)) = read(store).await?
    {
        if !break_lock && !holder.expired() {
            return Err(held(&holder));
        }
        condition = if enforced {
            Condition::IfMatch(etag)
        } else {
            Condition::None
        };
    }
    let mut outcome = put(store, body, condition.clone()).await?;
    if outcome == PutOutcome::PreconditionFailed && condition == Condition::IfAbsent {
        match read(store).await? {
            Some((holder, etag)) if holder.expired() => {
                outcome = put(store, body, Condition::IfMatch(etag)).await?;
            }
            Some((holder, _)) => return Err(held(&holder)),
            // Released between our write and our read: try once more.
            None => outcome = put(store, body, Condition::IfAbsent).await?,
        }
    }
    let etag = match outcome {
        PutOutcome::Written { etag } => etag,
        PutOutcome::PreconditionFailed => {
            let holder = read(store).await?.map(|(h, _)| h);
            return Err(holder.map_or_else(
                || {
                    Error::conflict(
                        Conflict::LockHeld,
                        "another deploy took the deploy lock at the same moment; try again",
                    )
                },
                |h| held(&h),
            ));
        }
    };
    Ok(etag)
}

/// Takes a free lock on a store whose conditional writes are not known and
/// learns them with the same key: the lock is created with
/// `If-None-Match: *`, then created again the same way, which a store that
/// enforces the condition refuses (and one that ignores it overwrites with
/// the same bytes). One PUT more than the lock alone, where a probe of its
/// own costs two PUTs and a DELETE. Returns whether the store enforces the
/// condition and the lock's ETag; `None` when a lock is there, or the
/// first create is refused (someone took it at the same moment).
async fn create_and_learn(
    store: &dyn Store,
    body: &[u8],
) -> Result<Option<(bool, Option<String>)>> {
    // Read first: a store that ignores the condition would let the create
    // overwrite a lock another run holds.
    if read(store).await?.is_some() {
        return Ok(None);
    }
    let PutOutcome::Written { etag } = put(store, body, Condition::IfAbsent).await? else {
        return Ok(None);
    };
    Ok(Some(match put(store, body, Condition::IfAbsent).await? {
        PutOutcome::PreconditionFailed => (true, etag),
        PutOutcome::Written { etag } => (false, etag),
    }))
}

/// Deletes the lock if it is still this run's: someone may have broken it
/// and hold it now. Where the store enforces conditions, one DELETE with
/// `If-Match` on the version this run last wrote; elsewhere read, compare
/// the holder, delete (a lock broken between the last two is lost, and its
/// holder's manifest write is still conditional). True when it was deleted.
async fn delete_ours(store: &dyn Store, held: &Mutex<Held>, enforced: bool) -> Result<bool> {
    let held = held.lock().await;
    if enforced && let Some(etag) = &held.etag {
        return store.delete_if_match(LOCK_KEY, etag).await;
    }
    match read(store).await? {
        Some((info, _)) if info.same_holder(&held.info) => {
            store.delete(&[LOCK_KEY.to_string()]).await?;
            Ok(true)
        }
        _ => Ok(false),
    }
}

/// What a release that fails does to a run whose work succeeded.
pub enum OnReleaseError {
    /// A warning through the reporter; the run still succeeds (a lock left
    /// behind expires, or its holder is seen to be gone).
    Warn(Arc<dyn Reporter>),
    /// The run fails with the release's error.
    Fail,
}

/// Takes the lock (arguments as [`Lock::acquire`]), runs `work` holding it,
/// and releases it whatever the work returned: a failed run leaves the
/// previous deploy serving and must not block the next one. The work's
/// error wins over the release's.
pub async fn with_lock<T>(
    store: Arc<dyn Store>,
    command: &str,
    ttl: Duration,
    enforced: Option<bool>,
    break_lock: bool,
    on_release_error: OnReleaseError,
    work: impl AsyncFnOnce(&Lock) -> Result<T>,
) -> Result<T> {
    let lock = Lock::acquire(store, command, ttl, enforced, break_lock).await?;
    let result = work(&lock).await;
    let released = lock.release().await;
    let value = result?;
    if let Err(e) = released {
        match on_release_error {
            OnReleaseError::Warn(reporter) => {
                reporter.warn(&format!("could not release the deploy lock: {e}"));
            }
            OnReleaseError::Fail => return Err(e),
        }
    }
    Ok(value)
}

impl Drop for Lock {
    fn drop(&mut self) {
        if let Some(r) = self.renewer.take() {
            r.abort();
        }
        // A lock dropped with its interrupted work stays registered, for
        // `release_held`.
        let mut i = interrupts();
        if !i.interrupted {
            let id = self.id;
            i.held.retain(|r| r.id != id);
        }
    }
}

async fn renew_loop(
    store: Arc<dyn Store>,
    state: Arc<Mutex<Held>>,
    lost: Arc<AtomicBool>,
    ttl: Duration,
    enforced: bool,
) {
    let every = (ttl / 3).max(Duration::from_secs(1));
    loop {
        tokio::time::sleep(every).await;
        let mut held = state.lock().await;
        held.info.expires = expiry(ttl);
        let body = serde_json::to_vec_pretty(&held.info).expect("lock info serializes");
        let condition = match (&held.etag, enforced) {
            (Some(etag), true) => Condition::IfMatch(etag.clone()),
            _ => Condition::None,
        };
        match put(&store, &body, condition).await {
            Ok(PutOutcome::Written { etag }) => held.etag = etag,
            Ok(PutOutcome::PreconditionFailed) => {
                lost.store(true, Ordering::SeqCst);
                return;
            }
            // A failed renewal is retried at the next tick; the lock is
            // still valid until it expires.
            Err(_) => {}
        }
    }
}

async fn put(store: &dyn Store, body: &[u8], condition: Condition) -> Result<PutOutcome> {
    store
        .put(
            LOCK_KEY,
            Body::Bytes(Arc::new(body.to_vec())),
            &lock_meta(),
            condition,
            &NoObserver,
        )
        .await
}

/// The lock's holder and the ETag it was read with.
pub async fn read(store: &dyn Store) -> Result<Option<(LockInfo, String)>> {
    match store.get(LOCK_KEY, None).await? {
        GetOutcome::Found(f) => {
            let etag = f
                .etag
                .unwrap_or_else(|| crate::store::fs::etag_of(&f.bytes));
            let info = serde_json::from_slice(&f.bytes).unwrap_or_else(|_| LockInfo {
                owner: "unknown".into(),
                host: "unknown".into(),
                pid: 0,
                command: "unknown".into(),
                ci_run: None,
                created: "unknown".into(),
                expires: "1970-01-01T00:00:00Z".into(),
            });
            Ok(Some((info, etag)))
        }
        GetOutcome::Missing | GetOutcome::NotModified => Ok(None),
    }
}

fn held(holder: &LockInfo) -> Error {
    Error::conflict(
        Conflict::LockHeld,
        format!("the deploy lock is held by {}", holder.describe()),
    )
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::report::CollectingReporter;
    use crate::store::fs::FsStore;

    fn store(dir: &tempfile::TempDir) -> Arc<dyn Store> {
        Arc::new(FsStore::new(dir.path().to_path_buf()))
    }

    /// Work that makes the release fail: the lock's key becomes a
    /// directory, which cannot be read.
    fn spoil_release(dir: &tempfile::TempDir) {
        let path = dir.path().join(LOCK_KEY);
        std::fs::remove_file(&path).unwrap();
        std::fs::create_dir(&path).unwrap();
    }

    async fn run<T>(
        dir: &tempfile::TempDir,
        on_release_error: OnReleaseError,
        work: impl AsyncFnOnce(&Lock) -> Result<T>,
    ) -> Result<T> {
        with_lock(
            store(dir),
            "publish",
            Duration::from_secs(60),
            Some(true),
            false,
            on_release_error,
            work,
        )
        .await
    }

    #[tokio::test]
    async fn the_work_runs_holding_the_lock_and_it_is_released_after() {
        let dir = tempfile::tempdir().unwrap();
        let reporter = Arc::new(CollectingReporter::default());
        let r = run(&dir, OnReleaseError::Warn(reporter.clone()), async |lock| {
            lock.check()?;
            Ok(read(&store(&dir)).await?.map(|(info, _)| info.command))
        })
        .await;
        assert_eq!(r.unwrap().as_deref(), Some("publish"));
        assert!(!dir.path().join(LOCK_KEY).exists());
        assert!(reporter.warnings.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_failed_work_still_releases_the_lock() {
        let dir = tempfile::tempdir().unwrap();
        let r: Result<()> = run(&dir, OnReleaseError::Fail, async |_| {
            Err(Error::Runtime("the work failed".into()))
        })
        .await;
        assert_eq!(r.unwrap_err().to_string(), "the work failed");
        assert!(!dir.path().join(LOCK_KEY).exists());
    }

    #[tokio::test]
    async fn a_held_lock_is_a_conflict_and_the_work_never_runs() {
        let dir = tempfile::tempdir().unwrap();
        let held = Lock::acquire(
            store(&dir),
            "prune",
            Duration::from_secs(60),
            Some(true),
            false,
        )
        .await
        .unwrap();
        let mut ran = false;
        let r = run(&dir, OnReleaseError::Fail, async |_| {
            ran = true;
            Ok(())
        })
        .await;
        assert_eq!(
            r.as_ref().err().and_then(Error::conflict_kind),
            Some(Conflict::LockHeld),
            "{r:?}"
        );
        assert!(!ran);
        held.release().await.unwrap();
    }

    #[tokio::test]
    async fn a_failed_release_is_a_warning_and_the_run_succeeds() {
        let dir = tempfile::tempdir().unwrap();
        let reporter = Arc::new(CollectingReporter::default());
        let r = run(&dir, OnReleaseError::Warn(reporter.clone()), async |_| {
            spoil_release(&dir);
            Ok(7)
        })
        .await;
        assert_eq!(r.unwrap(), 7);
        let warnings = reporter.warnings.lock().unwrap();
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(
            warnings[0].starts_with("could not release the deploy lock: cannot read"),
            "{warnings:?}"
        );
    }

    #[tokio::test]
    async fn a_failed_release_fails_the_run_when_asked_to() {
        let dir = tempfile::tempdir().unwrap();
        let r = run(&dir, OnReleaseError::Fail, async |_| {
            spoil_release(&dir);
            Ok(7)
        })
        .await;
        assert!(
            r.as_ref()
                .is_err_and(|e| e.to_string().starts_with("cannot read")),
            "{r:?}"
        );
    }

    #[tokio::test]
    async fn the_works_error_wins_over_the_releases() {
        let dir = tempfile::tempdir().unwrap();
        let reporter = Arc::new(CollectingReporter::default());
        let r: Result<()> = run(&dir, OnReleaseError::Warn(reporter.clone()), async |_| {
            spoil_release(&dir);
            Err(Error::conflict(
                Conflict::ManifestMoved,
                "the manifest moved",
            ))
        })
        .await;
        assert_eq!(r.unwrap_err().to_string(), "the manifest moved");
        assert!(reporter.warnings.lock().unwrap().is_empty());
        let dir = tempfile::tempdir().unwrap();
        let r: Result<()> = run(&dir, OnReleaseError::Fail, async |_| {
            spoil_release(&dir);
            Err(Error::conflict(
                Conflict::ManifestMoved,
                "the manifest moved",
            ))
        })
        .await;
        assert_eq!(r.unwrap_err().to_string(), "the manifest moved");
    }
}
