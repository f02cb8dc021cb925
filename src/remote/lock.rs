//! The deploy lock, `.assetpub/lock`: one publish, rollback or prune at a
//! time per target. Taken with `If-None-Match: *`, renewed while a long run
//! uploads, released at the end; a lock past its expiry is taken over with
//! `If-Match` on the ETag it was read with. [`with_lock`] is the bracket the
//! commands run their work in.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

use crate::error::{Conflict, Error, Result};
use crate::keys::PROBE_PREFIX;
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
    /// The PID namespace `pid` is a number in (Linux: `pid:[inode]`): a
    /// container has its own, and a pid from another one says nothing of
    /// the processes here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid_ns: Option<String>,
    /// Random, one per taking of the lock: what tells this run's lock from
    /// another's of the same process and second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// The boot of the kernel `pid` and `pid_ns` were taken in (Linux):
    /// two machines of the same host name can show the same namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boot_id: Option<String>,
}

/// A fresh [`LockInfo::token`]: the clock, the pid and a count, and the
/// random keys the standard library draws from the system for each
/// process's hash maps (a clock that stands still, or pid 1 in every
/// container, does not make two tokens equal).
fn new_token() -> String {
    use std::hash::BuildHasher;
    static TAKEN: AtomicU64 = AtomicU64::new(0);
    let count = TAKEN.fetch_add(1, Ordering::SeqCst);
    let mut hasher = blake3::Hasher::new();
    hasher.update(&crate::util::now_ns().to_le_bytes());
    hasher.update(&std::process::id().to_le_bytes());
    hasher.update(&count.to_le_bytes());
    hasher.update(
        &std::collections::hash_map::RandomState::new()
            .hash_one(count)
            .to_le_bytes(),
    );
    hasher.finalize().to_hex()[..16].to_owned()
}

/// This boot of this machine (Linux): a pid says something only of the
/// processes of the same boot of the same kernel.
fn boot_id() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .ok()
        .map(|s| s.trim().to_owned())
}

/// This process's PID namespace, where the system says (Linux).
fn pid_namespace() -> Option<String> {
    std::fs::read_link("/proc/self/ns/pid")
        .ok()
        .map(|p| p.to_string_lossy().into_owned())
}

/// `s` as it may go into a message: control characters (a lock is anyone's
/// bytes; escape sequences or line breaks could fake a line of output)
/// written as escapes, and at most 200 characters.
fn printable(s: &str) -> String {
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i == 200 {
            out.push_str("...");
            break;
        }
        // Also the marks that reorder or break how text is shown.
        let reorders = matches!(c, '\u{200e}' | '\u{200f}' | '\u{2028}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
        if c.is_control() || reorders {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
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
            pid_ns: pid_namespace(),
            token: Some(new_token()),
            boot_id: boot_id(),
        }
    }

    fn describe(&self) -> String {
        let ci = self
            .ci_run
            .as_deref()
            .map(|c| format!(", {}", printable(c)))
            .unwrap_or_default();
        format!(
            "{}@{} (pid {}, `{}`{ci}) since {}, expires {}",
            printable(&self.owner),
            printable(&self.host),
            self.pid,
            printable(&self.command),
            printable(&self.created),
            printable(&self.expires)
        )
    }

    fn same_holder(&self, other: &LockInfo) -> bool {
        if let (Some(a), Some(b)) = (&self.token, &other.token) {
            return a == b && self.host == other.host && self.pid == other.pid;
        }
        self.host == other.host
            && self.pid == other.pid
            && self.created == other.created
            && self.pid_ns == other.pid_ns
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
        // elsewhere a dead holder's lock waits for its expiry. A pid means
        // something only in the PID namespace it was taken in: a lock from
        // another container of the same host name (or one written before
        // locks said which namespace) waits for its expiry too.
        cfg!(target_os = "linux")
            && self.host == here
            && self.pid_ns.is_some()
            && self.pid_ns == pid_namespace()
            && self.boot_id.is_some()
            && self.boot_id == boot_id()
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

/// Registers a lock being taken or held, for an interrupt to release;
/// returns its id.
fn register(
    store: &Arc<dyn Store>,
    held: &Arc<Mutex<Held>>,
    lost: &Arc<AtomicBool>,
    enforced: bool,
) -> u64 {
    let mut i = interrupts();
    i.next_id += 1;
    let id = i.next_id;
    i.held.push(Registered {
        id,
        store: store.clone(),
        held: held.clone(),
        lost: lost.clone(),
        enforced,
    });
    id
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
    /// first run): it is then learnt on the way (see [`Ours::create_and_learn`])
    /// and [`Lock::enforced`] says it. `learnt` gets that answer whenever
    /// this learnt it, also when the lock could not be taken: a first run
    /// that finds the lock held still knows, and says, what kind of store
    /// it is.
    pub async fn acquire(
        store: Arc<dyn Store>,
        command: &str,
        ttl: Duration,
        enforced: Option<bool>,
        break_lock: bool,
        learnt: &mut Option<bool>,
    ) -> Result<Lock> {
        let ours = Ours {
            store: store.as_ref(),
            info: LockInfo::new(command, ttl),
            wrote: AtomicBool::new(false),
            learnt: std::sync::Mutex::new(None),
        };
        let state = Arc::new(Mutex::new(Held {
            info: ours.info.clone(),
            etag: None,
        }));
        let lost = Arc::new(AtomicBool::new(false));
        // Registered before the first write, as on a store whose conditions
        // are not known: an interrupt while the lock is being taken then
        // releases it if a write of ours landed (read, compare, delete).
        let id = register(&store, &state, &lost, false);
        let taken = ours.take(enforced, break_lock).await;
        *learnt = *ours.learnt.lock().unwrap_or_else(|e| e.into_inner());
        match taken {
            Ok((enforced, etag)) => {
                state.lock().await.etag = etag;
                if let Some(r) = interrupts().held.iter_mut().find(|r| r.id == id) {
                    r.enforced = enforced;
                }
                Ok(Lock::hold(store, state, lost, ttl, enforced, id))
            }
            Err(e) => {
                // A write of ours may have landed before the failure (its
                // answer lost, or a later step failed): the lock must not
                // stay behind, blocking the next run until it expires.
                if ours.wrote.load(Ordering::SeqCst) {
                    let _ = delete_ours(store.as_ref(), &state, false).await;
                }
                interrupts().held.retain(|r| r.id != id);
                Err(e)
            }
        }
    }

    /// Whether the store enforces conditional writes, as known or learnt
    /// when the lock was taken.
    pub fn enforced(&self) -> bool {
        self.enforced
    }

    /// The lock taken (registered as `id`), renewed from now on.
    fn hold(
        store: Arc<dyn Store>,
        state: Arc<Mutex<Held>>,
        lost: Arc<AtomicBool>,
        ttl: Duration,
        enforced: bool,
        id: u64,
    ) -> Lock {
        let renewer = tokio::spawn(renew_loop(
            store.clone(),
            state.clone(),
            lost.clone(),
            ttl,
            enforced,
        ));
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
        // A renewal holds `held` while its write is under way: taking it
        // first lets that write land before the renewer stops, and the
        // delete is then made on the version it wrote.
        let renewing = self.held.clone();
        let done = renewing.lock().await;
        if let Some(r) = self.renewer.take() {
            r.abort();
        }
        drop(done);
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

/// This run's lock while it is being taken.
struct Ours<'a> {
    store: &'a dyn Store,
    info: LockInfo,
    /// Set once a write of it may have landed (written, or no answer).
    wrote: AtomicBool,
    /// The store's answer on conditional writes, once this learnt it.
    learnt: std::sync::Mutex<Option<bool>>,
}

impl Ours<'_> {
    /// Takes the lock: returns whether the store enforces conditional
    /// writes (`enforced`, or learnt on the way when `None`) and the ETag
    /// of the lock written.
    async fn take(
        &self,
        enforced: Option<bool>,
        break_lock: bool,
    ) -> Result<(bool, Option<String>)> {
        Ok(match enforced {
            Some(enforced) => (enforced, self.acquire_known(enforced, break_lock).await?),
            None if break_lock => {
                let enforced = self.probe().await?;
                (enforced, self.acquire_known(enforced, true).await?)
            }
            None => match self.create_and_learn().await? {
                Some(learnt) => learnt,
                // A lock is there (or came at the same moment): the
                // store's own probe answers, then the usual way on.
                None => {
                    let enforced = self.probe().await?;
                    (enforced, self.acquire_known(enforced, false).await?)
                }
            },
        })
    }

    /// The store's own answer on conditional writes, from a key of this
    /// run's (under the target, so a preview's probe stays in the preview).
    async fn probe(&self) -> Result<bool> {
        let key = format!("{PROBE_PREFIX}{}", new_token());
        let enforced = self.store.probe_conditional_writes(&key).await?;
        self.learnt(enforced);
        Ok(enforced)
    }

    fn learnt(&self, enforced: bool) {
        *self.learnt.lock().unwrap_or_else(|e| e.into_inner()) = Some(enforced);
    }

    async fn put(&self, condition: Condition) -> Result<PutOutcome> {
        let body = serde_json::to_vec_pretty(&self.info).expect("lock info serializes");
        // Set whatever the answer: even a refusal may follow a write of
        // ours that landed with its answer lost (the client's retry is
        // what was refused).
        self.wrote.store(true, Ordering::SeqCst);
        put(self.store, &body, condition).await
    }

    /// After a conditional write of the lock was refused: the ETag of the
    /// lock when it is this run's all the same. A write whose answer was
    /// lost lands, and the client's retry of it is refused; the lock is
    /// then ours, not another run's.
    async fn landed(&self) -> Result<Option<String>> {
        Ok(read(self.store)
            .await?
            .filter(|(holder, _)| holder.same_holder(&self.info))
            .map(|(_, etag)| etag))
    }

    /// Takes the lock on a store whose conditional writes are known.
    /// Returns the ETag of the lock written.
    async fn acquire_known(&self, enforced: bool, break_lock: bool) -> Result<Option<String>> {
        // Without conditional writes the check below is only best effort:
        // two runs can both see no lock. The caller warns about that.
        let mut condition = Condition::IfAbsent;
        if (!enforced || break_lock)
            && let Some((holder, etag)) = read(self.store).await?
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
        let mut outcome = self.put(condition.clone()).await?;
        if outcome == PutOutcome::PreconditionFailed && condition == Condition::IfAbsent {
            match read(self.store).await? {
                Some((holder, etag)) if holder.same_holder(&self.info) => return Ok(Some(etag)),
                Some((holder, etag)) if holder.expired() => {
                    outcome = self.put(Condition::IfMatch(etag)).await?;
                }
                Some((holder, _)) => return Err(held(&holder)),
                // Released between our write and our read: try once more.
                None => outcome = self.put(Condition::IfAbsent).await?,
            }
        }
        match outcome {
            PutOutcome::Written { etag } => Ok(etag),
            PutOutcome::PreconditionFailed => match read(self.store).await? {
                Some((holder, etag)) if holder.same_holder(&self.info) => Ok(Some(etag)),
                Some((holder, _)) => Err(held(&holder)),
                None => Err(Error::conflict(
                    Conflict::LockHeld,
                    "another deploy took the deploy lock at the same moment; try again",
                )),
            },
        }
    }

    /// Takes a free lock on a store whose conditional writes are not known
    /// and learns them with the same key: the lock is created with
    /// `If-None-Match: *`, then created again the same way, which a store
    /// that enforces the condition refuses (and one that ignores it
    /// overwrites with the same bytes). One PUT more than the lock alone,
    /// where a probe of its own costs two PUTs and a DELETE. Returns
    /// whether the store enforces the condition and the lock's ETag; `None`
    /// when a lock is there, or the first create is refused (someone took
    /// it at the same moment).
    async fn create_and_learn(&self) -> Result<Option<(bool, Option<String>)>> {
        // Read first: a store that ignores the condition would let the
        // create overwrite a lock another run holds.
        if read(self.store).await?.is_some() {
            return Ok(None);
        }
        let etag = match self.put(Condition::IfAbsent).await? {
            PutOutcome::Written { etag } => etag,
            // The create landed with its answer lost and the retry was
            // refused: the lock is ours, and the store enforces the
            // condition (one that ignores it takes the retry).
            PutOutcome::PreconditionFailed => {
                let landed = self.landed().await?;
                if landed.is_some() {
                    self.learnt(true);
                }
                return Ok(landed.map(|etag| (true, Some(etag))));
            }
        };
        let learnt = match self.put(Condition::IfAbsent).await? {
            PutOutcome::PreconditionFailed => (true, etag),
            PutOutcome::Written { etag } => (false, etag),
        };
        self.learnt(learnt.0);
        Ok(Some(learnt))
    }
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

/// How [`with_lock`] takes the lock (see [`Lock::acquire`]).
pub struct Taking<'a> {
    pub command: &'a str,
    pub ttl: Duration,
    /// Whether the store enforces conditional writes, if known.
    pub enforced: Option<bool>,
    pub break_lock: bool,
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
    taking: Taking<'_>,
    on_release_error: OnReleaseError,
    learnt: &mut Option<bool>,
    work: impl AsyncFnOnce(&Lock) -> Result<T>,
) -> Result<T> {
    let Taking {
        command,
        ttl,
        enforced,
        break_lock,
    } = taking;
    let lock = Lock::acquire(store, command, ttl, enforced, break_lock, learnt).await?;
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
                // The renewal may have landed with its answer lost and the
                // retry been refused: then the lock is still ours.
                // Unreadable, it counts as lost: the run must not switch
                // on a lock it cannot show is still its own.
                if let Ok(Some((holder, etag))) = read(store.as_ref()).await
                    && holder.same_holder(&held.info)
                {
                    held.etag = Some(etag);
                    continue;
                }
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
                pid_ns: None,
                token: None,
                boot_id: None,
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
            Taking {
                command: "publish",
                ttl: Duration::from_secs(60),
                enforced: Some(true),
                break_lock: false,
            },
            on_release_error,
            &mut None,
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
            &mut None,
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

    /// A create whose answer was lost lands, and the retry is refused: the
    /// lock found then is this run's own, not another run's.
    #[tokio::test]
    async fn a_refused_create_of_a_lock_that_is_ours_takes_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir);
        let ours = Ours {
            store: store.as_ref(),
            info: LockInfo::new("publish", Duration::from_secs(60)),
            wrote: AtomicBool::new(false),
            learnt: std::sync::Mutex::new(None),
        };
        // What the lost create left.
        let body = serde_json::to_vec_pretty(&ours.info).unwrap();
        put(store.as_ref(), &body, Condition::IfAbsent)
            .await
            .unwrap();
        let (_, etag) = read(store.as_ref()).await.unwrap().unwrap();
        let (enforced, taken) = ours.take(Some(true), false).await.unwrap();
        assert!(enforced);
        assert_eq!(taken, Some(etag));
        // Another taking of it, even by this process in the same second,
        // finds it held.
        let other = Ours {
            store: store.as_ref(),
            info: LockInfo::new("publish", Duration::from_secs(60)),
            wrote: AtomicBool::new(false),
            learnt: std::sync::Mutex::new(None),
        };
        let r = other.take(Some(true), false).await;
        assert_eq!(
            r.as_ref().err().and_then(Error::conflict_kind),
            Some(Conflict::LockHeld),
            "{r:?}"
        );
    }

    /// A pid is only judged in the PID namespace it was taken in: a lock of
    /// a dead process here is free, the same pid from another namespace
    /// (another container with this host name) or from a lock that does
    /// not say its namespace is not.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_dead_holder_is_only_recognised_in_this_pid_namespace() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        let mut info = LockInfo::new("publish", Duration::from_secs(3600));
        info.pid = pid;
        assert!(info.pid_ns.is_some());
        assert!(info.holder_is_dead() && info.expired());
        info.boot_id = Some("another boot".into());
        assert!(!info.holder_is_dead() && !info.expired());
        info.boot_id = boot_id();
        info.pid_ns = Some("pid:[1]".into());
        assert!(!info.holder_is_dead() && !info.expired());
        info.pid_ns = None;
        assert!(!info.holder_is_dead() && !info.expired());
    }

    /// A lock is anyone's bytes: what the message shows of it cannot fake
    /// a line of output or colour the terminal.
    #[test]
    fn a_holder_is_described_without_control_characters() {
        let mut info = LockInfo::new("publish", Duration::from_secs(60));
        info.owner = "ci\u{1b}[31m\nerror: all good".into();
        info.command = "pub\u{202e}lish".into();
        info.host = "h".repeat(500);
        let text = info.describe();
        assert!(!text.chars().any(char::is_control), "{text}");
        assert!(text.contains("`pub\\u{202e}lish`"), "{text}");
        assert!(
            text.starts_with("ci\\u{1b}[31m\\nerror: all good@hhh"),
            "{text}"
        );
        assert!(text.len() < 400, "{text}");
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
