//! The switch: `manifest.json` written once, conditional on the version the
//! run started from, and the check that nobody moved it in between. On a
//! store with releases (a directory) the deploy's stable keys and manifest
//! are built aside as one release, and the switch to it is one atomic step;
//! elsewhere (S3) the stable keys are copied one by one just before the
//! manifest.

use std::sync::Arc;

use crate::error::{Conflict, Error, Result};
use crate::remote::lock::Lock;
use crate::remote::manifest::{Manifest, manifest_meta};
use crate::store::{
    Body, Condition, CopyJob, GetOutcome, NoObserver, PutOutcome, Releases, Store, copy_all,
};

/// What a switch makes live, and how it differs from what is live.
pub struct Switch<'a> {
    pub manifest_key: &'a str,
    /// The manifest this run started from.
    pub remote: &'a Remote,
    /// The deploy to make live, and its manifest's bytes.
    pub target: &'a Manifest,
    pub json: &'a [u8],
    /// Stable keys whose bytes or headers change (copies from their
    /// objects).
    pub changed: Vec<CopyJob>,
    /// Stable keys of files the target deploy does not have.
    pub removed: Vec<String>,
    /// Django's `staticfiles.json` for the target deploy.
    pub staticfiles: Option<&'a [u8]>,
    pub concurrency: usize,
    pub lock: &'a Lock,
}

/// A switch that happened.
pub struct Switched {
    /// The new manifest's ETag.
    pub etag: Option<String>,
    /// What went wrong after the switch, which the deploy survives.
    pub warnings: Vec<String>,
}

/// Makes `s.target` the live deploy.
pub async fn switch_to(store: &Arc<dyn Store>, s: Switch<'_>) -> Result<Switched> {
    match store.releases() {
        Some(releases) => switch_release(store, releases, s).await,
        None => switch_keys(store, s).await,
    }
}

/// Stable keys one by one, `staticfiles.json`, then the manifest: a reader
/// may see some pages of each deploy until the manifest switches.
async fn switch_keys(store: &Arc<dyn Store>, s: Switch<'_>) -> Result<Switched> {
    copy_all(store, s.changed, s.concurrency).await?;
    // Django resolves names through it, so it changes with the manifest:
    // the last write before the switch.
    if let Some(sf) = s.staticfiles {
        crate::remote::django::write_remote(store, sf).await?;
    }
    s.lock.check()?;
    let etag = switch_manifest(store, s.manifest_key, s.remote, s.json).await?;
    let mut warnings = Vec::new();
    if !s.removed.is_empty()
        && let Err(e) = store.delete(&s.removed).await
    {
        warnings.push(format!(
            "could not delete stable keys of files the deploy does not have: {e}"
        ));
    }
    Ok(Switched { etag, warnings })
}

/// The target deploy's release (every stable key, the manifest and
/// `staticfiles.json`), then one atomic switch to it. A target published
/// before releases, with its stable keys at the root, is moved to releases
/// by this switch; its old stable keys are deleted from the root after it.
async fn switch_release(
    store: &Arc<dyn Store>,
    releases: &dyn Releases,
    s: Switch<'_>,
) -> Result<Switched> {
    let flat = s.remote.manifest.is_some() && releases.live_release().await?.is_none();
    let links = s
        .target
        .objects()
        .into_iter()
        .filter(|o| o.stable)
        .filter_map(|o| Some((o.key, o.copy_of?)))
        .collect();
    let mut files = vec![(s.manifest_key.to_string(), s.json.to_vec())];
    if let Some(sf) = s.staticfiles {
        files.push((crate::remote::django::KEY.to_string(), sf.to_vec()));
    }
    releases
        .stage_release(&s.target.deploy, links, files)
        .await?;
    s.lock.check()?;
    let etag = match releases
        .switch_release(&s.target.deploy, s.manifest_key, s.remote.etag.as_deref())
        .await?
    {
        PutOutcome::Written { etag } => etag,
        PutOutcome::PreconditionFailed => return Err(moved_error(store, s.manifest_key).await),
    };
    let mut warnings = Vec::new();
    if flat && let Some(old) = &s.remote.manifest {
        let mut leftovers: Vec<String> = old
            .objects()
            .into_iter()
            .filter(|o| o.stable)
            .map(|o| o.key)
            .collect();
        leftovers.push(s.manifest_key.to_string());
        leftovers.push(crate::remote::django::KEY.to_string());
        if let Err(e) = releases.delete_at_root(&leftovers).await {
            warnings.push(format!(
                "could not delete from the root of {} the stable keys it kept there before releases: {e}",
                store.describe()
            ));
        }
        warnings.push(format!(
            "{} now serves its pages from releases (`.assetpub/current`): if nginx serves it with a config printed by an earlier `assetpub nginx-config`, print it again and reload nginx",
            store.describe()
        ));
    }
    Ok(Switched { etag, warnings })
}

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
