//! The switch: `manifest.json` written once, conditional on the version the
//! run started from, and the check that nobody moved it in between.

use std::sync::Arc;

use crate::error::{Conflict, Error, Result};
use crate::remote::manifest::{Manifest, manifest_meta};
use crate::store::{Body, Condition, GetOutcome, NoObserver, PutOutcome, Store};

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
