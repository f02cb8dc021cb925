//! Where published objects live. Two implementations, a directory and an S3
//! bucket, behind one small set of plain operations; everything above this
//! module speaks only in keys relative to the target's root.

pub mod fs;
pub mod s3;
mod verified_body;

use crate::keys::check_key;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use crate::error::{Error, Result};

/// Headers stored with an object. On a directory target only the bytes are
/// kept: nginx derives the headers from the key (see `nginx-config`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObjectMeta {
    pub content_type: Option<String>,
    pub cache_control: Option<String>,
    pub content_encoding: Option<String>,
    pub content_disposition: Option<String>,
    pub content_language: Option<String>,
    /// `x-amz-meta-*` without the prefix, lowercase names.
    pub metadata: BTreeMap<String, String>,
}

/// The bytes of an object to write.
#[derive(Debug, Clone)]
pub enum Body {
    Bytes(Arc<Vec<u8>>),
    /// Streamed from disk. `blake3` is the hash the file must still have:
    /// a file that changed since it was hashed is refused, not uploaded.
    File {
        path: PathBuf,
        size: u64,
        blake3: String,
    },
}

impl Body {
    pub fn len(&self) -> u64 {
        match self {
            Body::Bytes(b) => b.len() as u64,
            Body::File { size, .. } => *size,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A write that only happens when the key is in the expected state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    None,
    /// Only create: `If-None-Match: *`.
    IfAbsent,
    /// Only replace the version with this ETag: `If-Match`.
    IfMatch(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PutOutcome {
    Written {
        etag: Option<String>,
    },
    /// The condition did not hold: the key exists (IfAbsent) or has another
    /// ETag (IfMatch).
    PreconditionFailed,
}

#[derive(Debug, Clone)]
pub struct Fetched {
    pub bytes: Vec<u8>,
    pub etag: Option<String>,
}

#[derive(Debug, Clone)]
pub enum GetOutcome {
    Missing,
    /// The object still has the ETag given as `if_none_match`.
    NotModified,
    Found(Fetched),
}

#[derive(Debug, Clone)]
pub struct Head {
    pub size: u64,
    pub etag: Option<String>,
    pub meta: ObjectMeta,
}

#[derive(Debug, Clone)]
pub struct Listed {
    pub key: String,
    pub size: u64,
    /// Seconds since the Unix epoch.
    pub modified: i64,
}

/// Observes object transfers, so the binary can draw progress.
pub trait TransferObserver: Send + Sync {
    fn bytes_sent(&self, _n: u64) {}
}

pub struct NoObserver;
impl TransferObserver for NoObserver {}

pub enum Store {
    Fs(fs::FsStore),
    S3(s3::S3Store),
}

impl Store {
    pub fn describe(&self) -> String {
        match self {
            Store::Fs(s) => s.describe(),
            Store::S3(s) => s.describe(),
        }
    }

    pub async fn get(&self, key: &str, if_none_match: Option<&str>) -> Result<GetOutcome> {
        check_key(key)?;
        match self {
            Store::Fs(s) => s.get(key, if_none_match).await,
            Store::S3(s) => s.get(key, if_none_match).await,
        }
    }

    pub async fn head(&self, key: &str) -> Result<Option<Head>> {
        check_key(key)?;
        match self {
            Store::Fs(s) => s.head(key).await,
            Store::S3(s) => s.head(key).await,
        }
    }

    pub async fn put(
        &self,
        key: &str,
        body: Body,
        meta: &ObjectMeta,
        condition: Condition,
        observer: &dyn TransferObserver,
    ) -> Result<PutOutcome> {
        check_key(key)?;
        match self {
            Store::Fs(s) => s.put(key, body, meta, condition, observer).await,
            Store::S3(s) => s.put(key, body, meta, condition, observer).await,
        }
    }

    /// Server-side copy with new headers, so rollback never needs the build.
    pub async fn copy(
        &self,
        from: &str,
        to: &str,
        meta: &ObjectMeta,
        condition: Condition,
    ) -> Result<PutOutcome> {
        check_key(from)?;
        check_key(to)?;
        match self {
            Store::Fs(s) => s.copy(from, to, meta, condition).await,
            Store::S3(s) => s.copy(from, to, meta, condition).await,
        }
    }

    pub async fn delete(&self, keys: &[String]) -> Result<()> {
        for k in keys {
            check_key(k)?;
        }
        match self {
            Store::Fs(s) => s.delete(keys).await,
            Store::S3(s) => s.delete(keys).await,
        }
    }

    /// Keys under `prefix` (relative to the target root), with size and age.
    pub async fn list(&self, prefix: &str) -> Result<Vec<Listed>> {
        match self {
            Store::Fs(s) => s.list(prefix).await,
            Store::S3(s) => s.list(prefix).await,
        }
    }

    /// Whether `If-None-Match`/`If-Match` are enforced. A directory always
    /// enforces them; an S3-compatible store is probed once.
    pub async fn probe_conditional_writes(&self) -> Result<bool> {
        match self {
            Store::Fs(_) => Ok(true),
            Store::S3(s) => s.probe_conditional_writes().await,
        }
    }
}

/// One server-side copy: `from` to `to` with new headers.
#[derive(Debug, Clone)]
pub struct CopyJob {
    pub from: String,
    pub to: String,
    pub meta: ObjectMeta,
}

/// Runs the copies, `concurrency` at a time (a site with thousands of pages
/// must not roll back one request after another); stops starting new ones
/// after the first failure and returns it.
pub async fn copy_all(store: &Arc<Store>, jobs: Vec<CopyJob>, concurrency: usize) -> Result<()> {
    let mut pending = jobs.into_iter();
    let mut running = tokio::task::JoinSet::new();
    let mut first_error = None;
    loop {
        while first_error.is_none() && running.len() < concurrency.max(1) {
            let Some(job) = pending.next() else { break };
            let store = store.clone();
            running.spawn(async move {
                store
                    .copy(&job.from, &job.to, &job.meta, Condition::None)
                    .await
            });
        }
        let Some(joined) = running.join_next().await else {
            break;
        };
        let result = joined
            .map_err(|e| Error::Runtime(format!("copy task failed: {e}")))
            .and_then(|r| r);
        if let Err(e) = result
            && first_error.is_none()
        {
            first_error = Some(e);
        }
    }
    first_error.map_or(Ok(()), Err)
}

/// The keys among `keys` that the store does not have.
pub async fn missing_keys(
    store: &Arc<Store>,
    concurrency: usize,
    keys: &[String],
) -> Result<Vec<String>> {
    let mut set = tokio::task::JoinSet::new();
    let per_task = keys.len().div_ceil(concurrency).max(1);
    for chunk in keys.chunks(per_task) {
        let chunk = chunk.to_vec();
        let store = store.clone();
        set.spawn(async move {
            let mut missing = Vec::new();
            for k in chunk {
                if store.head(&k).await?.is_none() {
                    missing.push(k);
                }
            }
            Ok::<_, Error>(missing)
        });
    }
    let mut out = Vec::new();
    while let Some(r) = set.join_next().await {
        out.extend(r.map_err(|e| Error::Runtime(format!("check task failed: {e}")))??);
    }
    out.sort();
    Ok(out)
}
