//! The switch: the served `manifest.json` marked with the deploy being
//! switched to, the stable keys changed, then `manifest.json` written,
//! each write conditional on the version before it. A switch interrupted
//! in between is found by its mark and undone ([`resolve`]).

use std::collections::HashMap;
use std::sync::Arc;

use crate::error::{Conflict, Error, Result};
use crate::remote::django;
use crate::remote::lock::Lock;
use crate::remote::manifest::{Entry, Manifest, ObjectRef, Switching, manifest_meta};
use crate::remote::manifest::{object_meta, objects_for, redirect_meta};
use crate::report::Reporter;
use crate::settings::redirects::s3_objects;
use crate::store::{
    Body, Condition, CopyJob, GetOutcome, NoObserver, ObjectMeta, PutOutcome, Releases, Store,
    copy_all,
};

/// The remote `manifest.json` as this run found it.
#[derive(Debug, Clone)]
pub struct Remote {
    pub manifest: Option<Manifest>,
    pub etag: Option<String>,
}

/// Fails with a conflict naming the winner when `manifest.json` is no longer
/// the one this run started from.
pub async fn ensure_unmoved(store: &dyn Store, key: &str, remote: &Remote) -> Result<()> {
    let moved = match (&remote.etag, store.get(key, remote.etag.as_deref()).await?) {
        (_, GetOutcome::NotModified) => false,
        (None, GetOutcome::Missing) => false,
        (Some(_), GetOutcome::Missing) => true,
        (_, GetOutcome::Found(f)) => f.etag != remote.etag,
    };
    if moved {
        return Err(moved_error(store, key).await);
    }
    Ok(())
}

async fn moved_error(store: &dyn Store, key: &str) -> Error {
    let winner = match store.get(key, None).await {
        Ok(GetOutcome::Found(f)) => Manifest::parse(&f.bytes, key).ok().map(|m| m.deploy),
        _ => None,
    };
    Error::conflict(
        Conflict::ManifestMoved,
        format!(
            "`{key}` at {} was changed by another deploy ({}) since this run read it; this deploy was not switched live",
            store.describe(),
            winner.map_or_else(|| "deploy unknown".to_string(), |w| format!("now `{w}`"))
        ),
    )
}

/// The one switch: `manifest.json`, conditional on the version this run
/// started from. Returns the new ETag.
pub async fn switch_manifest(
    store: &dyn Store,
    key: &str,
    remote: &Remote,
    json: &[u8],
) -> Result<Option<String>> {
    let condition = match &remote.etag {
        Some(etag) => Condition::IfMatch(etag.clone()),
        None => Condition::IfAbsent,
    };
    match store
        .put(
            key,
            Body::Bytes(Arc::new(json.to_vec())),
            &manifest_meta(),
            condition,
            &NoObserver,
        )
        .await?
    {
        PutOutcome::Written { etag } => Ok(etag),
        PutOutcome::PreconditionFailed => {
            // A retried write whose earlier attempt landed but whose answer
            // was lost (a timeout, a dropped connection) fails its own
            // condition: then the manifest there is this one.
            if let GetOutcome::Found(f) = store.get(key, None).await?
                && f.bytes == json
            {
                return Ok(f.etag);
            }
            Err(moved_error(store, key).await)
        }
    }
}

/// What a switch makes live: the deploy's manifest, the stable keys it
/// (re)writes, the stable keys of the files it drops, and Django's
/// `staticfiles.json` when that is on.
pub struct SwitchJob {
    pub to: Manifest,
    pub to_json: Vec<u8>,
    pub stable: Vec<StableWrite>,
    /// The served deploy's pages written straight that the switch replaces
    /// or removes: made into their objects first (see [`twins_needed`]).
    pub twins: Vec<Twin>,
    pub remove: Vec<String>,
    pub staticfiles: Option<Vec<u8>>,
    /// Redirect objects to write (key, location), after `remove` is
    /// deleted; ignored by a store with releases (see [`redirect_changes`]).
    pub redirects: Vec<(String, String)>,
    /// Write `to`'s deploy record (a publish; a rollback's exists). It is
    /// written inside the switch and deleted again when the switch does not
    /// happen, so `history` and `prune --keep` only see deploys that went
    /// live.
    pub record: bool,
}

/// Where the switch runs, and how.
pub struct Target<'a> {
    pub store: &'a Arc<dyn Store>,
    pub manifest_key: &'a str,
    pub concurrency: usize,
    /// Whether the store enforces `If-Match`: then marking the manifest is
    /// itself the check that nobody moved it.
    pub enforced: bool,
    pub django: bool,
    pub reporter: &'a dyn Reporter,
}

/// What a switch did.
pub struct Switched {
    /// The manifest's new ETag.
    pub etag: Option<String>,
    /// Objects made from the served deploy's pages (`SwitchJob::twins`).
    pub kept: usize,
}

/// Makes `job.to` live: marks the served manifest with the switch (the
/// record an interrupted run leaves behind), keeps the objects of the
/// pages written straight that it replaces, changes the stable keys,
/// removes the dropped ones, then writes the manifest, the one switch.
/// A run that fails in between undoes its own changes before it returns
/// the error.
pub async fn switch(
    t: &Target<'_>,
    lock: &Lock,
    remote: &Remote,
    job: SwitchJob,
) -> Result<Switched> {
    lock.check()?;
    if let Some(releases) = t.store.releases() {
        let etag = switch_release(t, releases, lock, remote, job).await?;
        return Ok(Switched { etag, kept: 0 });
    }
    if !t.enforced || remote.manifest.is_none() {
        ensure_unmoved(t.store.as_ref(), t.manifest_key, remote).await?;
    }
    let marked = mark(t, remote, &job.to.deploy).await?;
    let mut wrote = false;
    let mut kept = 0;
    let result = async {
        if job.record {
            wrote = write_record(t, &job.to, &job.to_json).await?;
        }
        // Before any stable key changes; once the mark names this switch,
        // so a run that finds the manifest moved copies nothing. Killed
        // before they are all made, the run has changed no stable key yet,
        // and the undo leaves alone those whose object is missing.
        kept = make_twins(t, job.twins).await?;
        write_stable(t, job.stable).await?;
        if !job.remove.is_empty() {
            t.store.delete(&job.remove).await?;
        }
        put_redirects(t, job.redirects).await?;
        if let Some(sf) = &job.staticfiles {
            django::write_remote(t.store.as_ref(), sf).await?;
        }
        lock.check()?;
        switch_manifest(t.store.as_ref(), t.manifest_key, &marked, &job.to_json).await
    }
    .await;
    let e = match result {
        Ok(etag) => return Ok(Switched { etag, kept }),
        Err(e) => e,
    };
    if wrote {
        forget_record(t, &job.to.deploy).await;
    }
    let Some(from) = &marked.manifest else {
        // A first deploy: nothing was live before, and the next publish
        // writes every stable key again.
        return Err(e);
    };
    match undo(t, from, marked.etag.as_deref(), Some(&job.to)).await {
        Ok(_) => Err(e),
        Err(u) => {
            t.reporter.warn(&format!(
                "could not undo the stable keys this run changed ({u}); the next publish, rollback, prune or verify undoes them"
            ));
            Err(e)
        }
    }
}

/// One stable key a switch writes.
pub enum StableWrite {
    /// A server-side copy of an object.
    Copy(CopyJob),
    /// A page's bytes, written straight to its stable key.
    Put {
        key: String,
        body: Body,
        meta: ObjectMeta,
    },
}

/// Writes the stable keys, `concurrency` at a time; the writes started
/// when one fails land before its error is returned.
async fn write_stable(t: &Target<'_>, writes: Vec<StableWrite>) -> Result<()> {
    let running = crate::concurrency::limited(t.concurrency, writes, |w| {
        let store = t.store.clone();
        async move {
            match w {
                StableWrite::Copy(c) => store.copy(&c.from, &c.to, &c.meta, Condition::None).await,
                StableWrite::Put { key, body, meta } => {
                    store
                        .put(&key, body, &meta, Condition::None, &NoObserver)
                        .await
                }
            }
        }
    });
    running
        .settle(|e| Error::Runtime(format!("stable key write task failed: {e}")))
        .await
}

/// The immutable object of a page that was written straight to its stable
/// key, made from that key before the key is replaced, so that a rollback
/// or an undo can put the page back from any machine.
#[derive(Debug, Clone)]
pub struct Twin {
    pub stable: String,
    pub object: String,
    /// The MD5 (hex) the stable key was written with: its ETag.
    pub md5: String,
    pub blake3: String,
    pub size: u64,
    pub meta: ObjectMeta,
    /// The deploy that wrote the stable key.
    pub deploy: String,
}

/// The objects to make before switching from `from` to `to`: of every
/// page `from` wrote straight whose entry `to` changes or drops (so the
/// switch writes or deletes its stable keys), one for each stable key.
pub fn twins_needed(from: &Manifest, to: &Manifest) -> Vec<Twin> {
    let same_layout = from.sidecars == to.sidecars && from.encoding == to.encoding;
    let mut out = Vec::new();
    for (logical, entry) in &from.files {
        if !entry.is_written_straight() || (same_layout && to.files.get(logical) == Some(entry)) {
            continue;
        }
        for o in objects_for(entry, from.sidecars, from.object_encoding()) {
            let (Some(object), Some(md5)) = (&o.copy_of, entry.written_md5(o.variant)) else {
                continue;
            };
            out.push(Twin {
                stable: o.key.clone(),
                object: object.clone(),
                md5: md5.to_string(),
                blake3: entry.blake3.clone(),
                size: entry.variant_size(o.variant),
                meta: object_meta(entry, o.variant, false),
                deploy: from.deploy.clone(),
            });
        }
    }
    out
}

/// Makes the twins, `concurrency` at a time. Each is a server-side copy of
/// the stable key guarded by `x-amz-copy-source-if-match` on the ETag it
/// was written with. A stable key that no longer holds those bytes (changed
/// by hand) cannot give its deploy's page back: that is a warning, and
/// nothing is copied from it. Returns how many were made.
async fn make_twins(t: &Target<'_>, twins: Vec<Twin>) -> Result<usize> {
    let made = crate::concurrency::limited(t.concurrency, twins, |twin| {
        let store = t.store.clone();
        async move { make_twin(store.as_ref(), &twin).await.map(|ok| (twin, ok)) }
    })
    .try_collect(|e| Error::Runtime(format!("twin copy task failed: {e}")))
    .await?;
    let mut count = 0;
    for (twin, ok) in made {
        if ok {
            count += 1;
        } else {
            t.reporter.warn(&format!(
                "`{}` at {} no longer holds the bytes deploy `{}` wrote there (changed by hand?): they could not be kept as `{}`, so a rollback to `{}` cannot restore that key",
                twin.stable,
                t.store.describe(),
                twin.deploy,
                twin.object,
                twin.deploy
            ));
        }
    }
    Ok(count)
}

/// False when the stable key does not hold the twin's bytes.
async fn make_twin(store: &dyn Store, twin: &Twin) -> Result<bool> {
    let etag = format!("\"{}\"", twin.md5);
    let copy = |etag: String| {
        store.copy(
            &twin.stable,
            &twin.object,
            &twin.meta,
            Condition::SourceIs(etag),
        )
    };
    match copy(etag.clone()).await? {
        PutOutcome::Written { etag: Some(made) } if unquoted(&made) != twin.md5 => {
            // A store that ignores the condition copied other bytes: they
            // must not stay under the fingerprinted name.
            store.delete(std::slice::from_ref(&twin.object)).await?;
            Ok(false)
        }
        PutOutcome::Written { .. } => Ok(true),
        PutOutcome::PreconditionFailed => {
            // An ETag that is not the MD5 (a multipart upload, encryption
            // with KMS): the key's recorded blake3 and size vouch instead,
            // and its own ETag guards the copy.
            let Some(head) = store.head(&twin.stable).await? else {
                return Ok(false);
            };
            let same =
                head.size == twin.size && head.meta.metadata.get("blake3") == Some(&twin.blake3);
            match head.etag {
                Some(etag) if same => Ok(matches!(copy(etag).await?, PutOutcome::Written { .. })),
                _ => Ok(false),
            }
        }
    }
}

fn unquoted(etag: &str) -> &str {
    etag.trim_matches('"')
}

/// The deploy's release (every stable key, the manifest and
/// `staticfiles.json`), then one atomic switch to it: nothing to mark or
/// undo, a reader sees one release or the other. A target published before
/// releases, with its stable keys at the root, is moved to releases by
/// this switch; its old stable keys are deleted from the root after it.
async fn switch_release(
    t: &Target<'_>,
    releases: &dyn Releases,
    lock: &Lock,
    remote: &Remote,
    job: SwitchJob,
) -> Result<Option<String>> {
    let store = t.store;
    let wrote = job.record && write_record(t, &job.to, &job.to_json).await?;
    let result = stage_and_rename(t, releases, lock, remote, &job).await;
    if result.is_err() && wrote {
        forget_record(t, &job.to.deploy).await;
    }
    let etag = result?;
    let flat = remote.manifest.is_some() && etag.1;
    let etag = etag.0;
    if flat && let Some(old) = &remote.manifest {
        let mut leftovers: Vec<String> = old
            .objects()
            .into_iter()
            .filter(|o| o.stable)
            .map(|o| o.key)
            .collect();
        leftovers.push(t.manifest_key.to_string());
        leftovers.push(django::KEY.to_string());
        if let Err(e) = releases.delete_at_root(&leftovers).await {
            t.reporter.warn(&format!(
                "could not delete from the root of {} the stable keys it kept there before releases: {e}",
                store.describe()
            ));
        }
        t.reporter.warn(&format!(
            "{} now serves its pages from releases (`.assetpub/current`): if nginx serves it with a config printed by an earlier `assetpub nginx-config`, print it again and reload nginx",
            store.describe()
        ));
    }
    Ok(etag)
}

/// The redirect objects a switch from `from` to `to` writes (every one of
/// `to`'s when `all`, else those that are new or go elsewhere), and the
/// keys of `from`'s that it deletes: those `to` neither redirects nor
/// publishes. Never a key that holds one of `to`'s files.
pub fn redirect_changes(
    from: Option<&Manifest>,
    to: &Manifest,
    all: bool,
) -> (Vec<(String, String)>, Vec<String>) {
    let files: std::collections::HashSet<String> =
        to.objects().into_iter().map(|o| o.key).collect();
    let before = from.map(|m| s3_objects(&m.redirects)).unwrap_or_default();
    let after = s3_objects(&to.redirects);
    let puts = after
        .iter()
        .filter(|(k, v)| all || before.get(*k) != Some(*v))
        .filter(|(k, _)| !files.contains(*k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let deletes = before
        .keys()
        .filter(|k| !after.contains_key(*k) && !files.contains(*k))
        .cloned()
        .collect();
    (puts, deletes)
}

/// Writes redirect objects: empty, with `x-amz-website-redirect-location`.
async fn put_redirects(t: &Target<'_>, puts: Vec<(String, String)>) -> Result<()> {
    let writes = crate::concurrency::limited(t.concurrency, puts, |(key, location)| {
        let store = t.store.clone();
        async move {
            store
                .put(
                    &key,
                    Body::Bytes(Arc::new(Vec::new())),
                    &redirect_meta(&location),
                    Condition::None,
                    &NoObserver,
                )
                .await
        }
    });
    writes
        .settle(|e| Error::Runtime(format!("redirect write task failed: {e}")))
        .await
}

/// Builds the release and renames it live. Returns the new ETag, and
/// whether the target kept its stable keys at the root before (no release
/// was live).
async fn stage_and_rename(
    t: &Target<'_>,
    releases: &dyn Releases,
    lock: &Lock,
    remote: &Remote,
    job: &SwitchJob,
) -> Result<(Option<String>, bool)> {
    let flat = releases.live_release().await?.is_none();
    let links = job
        .to
        .objects()
        .into_iter()
        .filter(|o| o.stable)
        .filter_map(|o| Some((o.key, o.copy_of?)))
        .collect();
    let mut files = vec![(t.manifest_key.to_string(), job.to_json.clone())];
    if let Some(sf) = &job.staticfiles {
        files.push((django::KEY.to_string(), sf.clone()));
    }
    releases.stage_release(&job.to.deploy, links, files).await?;
    lock.check()?;
    match releases
        .switch_release(&job.to.deploy, t.manifest_key, remote.etag.as_deref())
        .await?
    {
        PutOutcome::Written { etag } => Ok((etag, flat)),
        PutOutcome::PreconditionFailed => Err(moved_error(t.store.as_ref(), t.manifest_key).await),
    }
}

/// Writes `to`'s deploy record. True when this run wrote it; false when
/// the very same deploy was already recorded (the same files and parent in
/// the same millisecond).
async fn write_record(t: &Target<'_>, to: &Manifest, json: &[u8]) -> Result<bool> {
    let key = Manifest::deploy_key(&to.deploy);
    let written = t
        .store
        .put(
            &key,
            Body::Bytes(Arc::new(json.to_vec())),
            &manifest_meta(),
            Condition::IfAbsent,
            &NoObserver,
        )
        .await?;
    if written != PutOutcome::PreconditionFailed {
        return Ok(true);
    }
    match read_deploy(t.store.as_ref(), &to.deploy).await? {
        Some(e) if e.same_content(to) && e.parent == to.parent => Ok(false),
        _ => Err(Error::conflict(
            Conflict::DeployExists,
            format!(
                "deploy `{}` already exists at {} with other content; publish again",
                to.deploy,
                t.store.describe()
            ),
        )),
    }
}

/// Deletes the record of a deploy whose switch did not happen; a failure
/// is a warning (`history` then lists a deploy that never went live).
async fn forget_record(t: &Target<'_>, deploy: &str) {
    if let Err(e) = t.store.delete(&[Manifest::deploy_key(deploy)]).await {
        t.reporter.warn(&format!(
            "could not delete the record of deploy `{deploy}`, which did not go live: {e}"
        ));
    }
}

/// Writes the served manifest again with the switch to `to` recorded in
/// it, conditional on the version this run read. A first deploy has no
/// manifest to mark.
async fn mark(t: &Target<'_>, remote: &Remote, to: &str) -> Result<Remote> {
    let Some(current) = &remote.manifest else {
        return Ok(remote.clone());
    };
    let marked = Manifest {
        switching: Some(Box::new(Switching {
            to: to.to_string(),
            started: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            by: Some(format!(
                "{}:{}",
                gethostname::gethostname().to_string_lossy(),
                std::process::id()
            )),
        })),
        ..current.settled()
    };
    let json = marked.to_json();
    let etag = switch_manifest(t.store.as_ref(), t.manifest_key, remote, &json).await?;
    Ok(Remote {
        manifest: Some(marked),
        etag,
    })
}

/// Puts back the stable keys of `marked`'s deploy that a switch to `to`
/// may have changed (all of them when `to`'s record is gone), deletes those
/// only `to` has, rewrites `staticfiles.json`, then writes the manifest
/// without the mark. Returns the settled manifest and its ETag.
async fn undo(
    t: &Target<'_>,
    marked: &Manifest,
    etag: Option<&str>,
    to: Option<&Manifest>,
) -> Result<Remote> {
    let from = marked.settled();
    let stable = |m: &Manifest| -> HashMap<String, (Entry, ObjectRef)> {
        m.files
            .values()
            .flat_map(|e| {
                objects_for(e, m.sidecars, m.object_encoding())
                    .into_iter()
                    .filter(|o| o.stable)
                    .map(move |o| (o.key.clone(), (e.clone(), o)))
            })
            .collect()
    };
    let before = stable(&from);
    let after = to.map(stable).unwrap_or_default();
    let restore: Vec<(CopyJob, bool)> = before
        .iter()
        .filter(|(key, (entry, o))| {
            after
                .get(*key)
                .is_none_or(|(e, a)| e != entry || a.copy_of != o.copy_of)
                || to.is_none()
        })
        .map(|(key, (entry, o))| {
            let job = CopyJob {
                from: o.copy_of.clone().expect("a stable key has an object"),
                to: key.clone(),
                meta: object_meta(entry, o.variant, true),
            };
            (job, entry.is_written_straight())
        })
        .collect();
    let restore = with_sources(t, restore, &from.deploy).await?;
    // Never an object the served deploy names, whatever a (tampered) record
    // of the other deploy says.
    let objects: std::collections::HashSet<String> =
        from.objects().into_iter().map(|o| o.key).collect();
    let redirects_before = s3_objects(&from.redirects);
    let redirects_after = to.map(|m| s3_objects(&m.redirects)).unwrap_or_default();
    let mut extra: Vec<String> = after
        .keys()
        .chain(redirects_after.keys())
        .filter(|k| {
            !before.contains_key(*k) && !objects.contains(*k) && !redirects_before.contains_key(*k)
        })
        .cloned()
        .collect();
    extra.sort();
    extra.dedup();
    let redirects: Vec<(String, String)> = redirects_before
        .iter()
        .filter(|(k, v)| {
            to.is_none() || redirects_after.get(*k) != Some(*v) || after.contains_key(*k)
        })
        .filter(|(k, _)| !objects.contains(*k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    copy_all(t.store, restore, t.concurrency).await?;
    if !extra.is_empty() {
        t.store.delete(&extra).await?;
    }
    put_redirects(t, redirects).await?;
    if t.django {
        django::write_remote(t.store.as_ref(), &django::staticfiles_json(&from.files)).await?;
    }
    let condition = Remote {
        manifest: Some(marked.clone()),
        etag: etag.map(String::from),
    };
    let etag = switch_manifest(
        t.store.as_ref(),
        t.manifest_key,
        &condition,
        &from.to_json(),
    )
    .await?;
    Ok(Remote {
        manifest: Some(from),
        etag,
    })
}

/// The copies whose source is there. The object of a page written straight
/// (`.1`) exists once a switch replaced its stable key; one that does not
/// was left as it was (no switch touched it), or its bytes were lost to a
/// change by hand before that switch (which warned then): either way there
/// is nothing to copy, and the undo goes on without it.
async fn with_sources(
    t: &Target<'_>,
    jobs: Vec<(CopyJob, bool)>,
    deploy: &str,
) -> Result<Vec<CopyJob>> {
    let straight: Vec<String> = jobs
        .iter()
        .filter(|(_, s)| *s)
        .map(|(j, _)| j.from.clone())
        .collect();
    let missing: std::collections::HashSet<String> = if straight.is_empty() {
        Default::default()
    } else {
        crate::store::missing_keys(t.store, t.concurrency, &straight)
            .await?
            .into_iter()
            .collect()
    };
    let mut out = Vec::new();
    for (job, _) in jobs {
        if missing.contains(&job.from) {
            t.reporter.warn(&format!(
                "`{}` of deploy `{deploy}` has no `{}` at {} to be put back from; left as it is",
                job.to,
                job.from,
                t.store.describe()
            ));
        } else {
            out.push(job);
        }
    }
    Ok(out)
}

/// Undoes a switch that a run (killed, or failed and unable to undo it
/// itself) left recorded in the served manifest. Call it holding the lock:
/// nobody else is switching then. `remote` is the manifest as read before
/// the lock was taken; it is read again. Returns the manifest to go on
/// from, and the deploy whose switch was undone.
pub async fn resolve(t: &Target<'_>, remote: &Remote) -> Result<(Remote, Option<String>)> {
    if remote
        .manifest
        .as_ref()
        .is_none_or(|m| m.switching.is_none())
    {
        return Ok((remote.clone(), None));
    }
    let (manifest, etag) = match t.store.get(t.manifest_key, None).await? {
        GetOutcome::Found(f) => (
            Manifest::parse(&f.bytes, &format!("`{}`", t.manifest_key))?,
            f.etag,
        ),
        GetOutcome::Missing | GetOutcome::NotModified => {
            return Err(moved_error(t.store.as_ref(), t.manifest_key).await);
        }
    };
    let Some(sw) = manifest.switching.clone() else {
        // Someone settled it since it was read: this run's view is stale.
        return Err(moved_error(t.store.as_ref(), t.manifest_key).await);
    };
    let to = read_deploy(t.store.as_ref(), &sw.to).await?;
    if to.is_none() {
        t.reporter.warn(&format!(
            "the interrupted switch names deploy `{}`, whose record is gone: every stable key of `{}` is written again",
            sw.to, manifest.deploy
        ));
    }
    let settled = undo(t, &manifest, etag.as_deref(), to.as_ref()).await?;
    // It never went live: its record must not count as a deploy.
    if to.is_some() {
        forget_record(t, &sw.to).await;
    }
    t.reporter.warn(&format!(
        "found an interrupted switch to `{}` (started {}{}): undone, `{}` is served whole again",
        sw.to,
        sw.started,
        sw.by
            .as_deref()
            .map(|b| format!(" by {b}"))
            .unwrap_or_default(),
        manifest.deploy
    ));
    Ok((settled, Some(sw.to)))
}

/// One deploy's record from `.assetpub/deploys/`, if it is there.
pub async fn read_deploy(store: &dyn Store, deploy: &str) -> Result<Option<Manifest>> {
    if !crate::remote::manifest::is_deploy_id(deploy) {
        return Ok(None);
    }
    let key = Manifest::deploy_key(deploy);
    match store.get(&key, None).await? {
        GetOutcome::Found(f) => Ok(Some(Manifest::parse(&f.bytes, &format!("`{key}`"))?)),
        GetOutcome::Missing | GetOutcome::NotModified => Ok(None),
    }
}
