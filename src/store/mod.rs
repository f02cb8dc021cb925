//! Where published objects live: the [`Store`] trait, which every backend
//! implements (a directory in `fs.rs`, an S3 bucket in `s3/`), and the plain
//! operations and capabilities the layers above use through `dyn Store`;
//! everything above this module speaks only in keys relative to the
//! target's root.

pub mod fs;
pub mod prefixed;
pub mod s3;
mod verified_body;

use crate::keys::check_key;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;

use crate::error::{Error, Result};

/// Headers stored with an object. On a directory target only the bytes are
/// kept: nginx derives the headers from the key (see `nginx-config`).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ObjectMeta {
    pub content_type: Option<String>,
    pub cache_control: Option<String>,
    pub content_encoding: Option<String>,
    pub content_disposition: Option<String>,
    pub content_language: Option<String>,
    /// `x-amz-meta-*` without the prefix, lowercase names.
    pub metadata: BTreeMap<String, String>,
    /// `x-amz-website-redirect-location`: S3 website endpoints answer a
    /// request for the key with a 301 to it.
    pub website_redirect_location: Option<String>,
}

// By hand: the state DB keeps a digest of this text for every object
// (`meta_digest`), which must not change for objects without a redirect.
impl std::fmt::Debug for ObjectMeta {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut d = f.debug_struct("ObjectMeta");
        d.field("content_type", &self.content_type)
            .field("cache_control", &self.cache_control)
            .field("content_encoding", &self.content_encoding)
            .field("content_disposition", &self.content_disposition)
            .field("content_language", &self.content_language)
            .field("metadata", &self.metadata);
        if let Some(l) = &self.website_redirect_location {
            d.field("website_redirect_location", l);
        }
        d.finish()
    }
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
    /// A copy only while its source holds the version with this ETag
    /// (`x-amz-copy-source-if-match`); a missing source fails it too. The
    /// destination is not constrained. Means nothing to a put.
    SourceIs(String),
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

/// What a store can say about an object's content, to check it against the
/// blake3 a manifest gives it.
pub enum ContentDigest {
    /// There is no object under the key.
    Missing,
    /// The store keeps the blake3 of the decoded content with the object,
    /// written with it (on S3 the `x-amz-meta-blake3` metadata); `None` when
    /// the object carries none.
    Recorded(Option<String>),
    /// The store keeps only the bytes: here they are, for the caller to hash
    /// (decoding a `.gz`/`.br` sidecar first). A blocking reader, so read it
    /// off the runtime; it opens the object on the first read, and a read
    /// error says why the object cannot be read.
    Bytes(Box<dyn std::io::Read + Send>),
}

/// What a backend implements. Callers use the methods of `dyn Store` below,
/// which check every key (`keys::check_key`) before it reaches the backend;
/// a backend may take its keys as checked.
///
/// A backend is one file in this folder, registered where a target URL
/// becomes a store (`commands::context::connect`).
#[async_trait]
pub trait Store: Send + Sync {
    /// The target as messages name it: `file://...`, `s3://...`.
    fn describe(&self) -> String;

    /// The object, unless it still has the ETag `if_none_match`.
    async fn get_object(&self, key: &str, if_none_match: Option<&str>) -> Result<GetOutcome>;

    async fn head_object(&self, key: &str) -> Result<Option<Head>>;

    /// Writes the object when `condition` holds; `PreconditionFailed` when
    /// it does not. Calls `observer` with the bytes sent.
    async fn put_object(
        &self,
        key: &str,
        body: Body,
        meta: &ObjectMeta,
        condition: Condition,
        observer: &dyn TransferObserver,
    ) -> Result<PutOutcome>;

    /// `from` to `to` with new headers: server-side where the store can, by
    /// reading and writing the bytes where it cannot.
    async fn copy_object(
        &self,
        from: &str,
        to: &str,
        meta: &ObjectMeta,
        condition: Condition,
    ) -> Result<PutOutcome>;

    /// Deletes the keys; a key that is already gone is not an error.
    async fn delete_objects(&self, keys: &[String]) -> Result<()>;

    /// Deletes `key` only while it holds the version `etag` names: true
    /// when it did. A store that ignores the condition deletes it anyway
    /// (the caller knows from the probe).
    async fn delete_object_if_match(&self, key: &str, etag: &str) -> Result<bool>;

    /// Keys under `prefix` (relative to the target root), sorted, with size
    /// and age.
    async fn list_objects(&self, prefix: &str) -> Result<Vec<Listed>>;

    /// The names one level below `prefix` (a folder, ending in `/`) that
    /// hold keys, sorted: what is there without listing every key under it.
    async fn list_dirs(&self, prefix: &str) -> Result<Vec<String>>;

    /// What the store can say about the object's content: see
    /// [`ContentDigest`].
    async fn object_digest(&self, key: &str) -> Result<ContentDigest>;

    /// Whether `If-None-Match`/`If-Match` are enforced: a store that knows
    /// says so, one that may ignore them tries on `key`, a throwaway key
    /// under [`crate::keys::PROBE_PREFIX`] that it deletes again (the
    /// caller remembers the answer).
    async fn probe_conditional_writes(&self, key: &str) -> Result<bool>;

    /// A store that switches whole releases at once (see [`Releases`]);
    /// `None` (S3) switches stable keys one by one, then the manifest.
    fn releases(&self) -> Option<&dyn Releases> {
        None
    }
}

/// A release on the target: a directory of one deploy's stable keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseDir {
    /// Its name, for [`Releases::delete_releases`].
    pub name: String,
    /// The deploy it serves; `None` for one an interrupted run left
    /// unfinished (never live).
    pub deploy: Option<String>,
    /// Seconds since the Unix epoch.
    pub modified: i64,
}

/// What a store that keeps each deploy's stable keys (pages, their
/// sidecars, the manifest, `staticfiles.json`) in a release of their own
/// implements: a release is built aside, whole, and made live with one
/// atomic switch, so a reader sees every stable key of one deploy or of the
/// other, never a mix. The generic [`Store`] methods then read a key from
/// the live release first, then from the target's root, where the
/// immutable objects stay for every release.
#[async_trait]
pub trait Releases: Send + Sync {
    /// The deploy whose release is live; `None` when none is (an empty
    /// target, or one published before releases, its stable keys at the
    /// root).
    async fn live_release(&self) -> Result<Option<String>>;

    /// Makes release `deploy` hold exactly `links` (a stable key, and the
    /// immutable object at the root it is a hard link to) and `files` (a
    /// key and its bytes). Built aside and moved into place, so a release is
    /// whole or absent; one that already holds exactly this is kept as it
    /// is (returns false). Never touches the live release.
    async fn stage_release(
        &self,
        deploy: &str,
        links: Vec<(String, String)>,
        files: Vec<(String, Vec<u8>)>,
    ) -> Result<bool>;

    /// Makes release `deploy` live in one atomic step, when the
    /// `manifest_key` the target serves still has the ETag `expected`
    /// (`None`: there is none); `PreconditionFailed` when it does not.
    async fn switch_release(
        &self,
        deploy: &str,
        manifest_key: &str,
        expected: Option<&str>,
    ) -> Result<PutOutcome>;

    /// Every release, finished or not.
    async fn list_releases(&self) -> Result<Vec<ReleaseDir>>;

    /// Deletes releases by name; refuses the live one.
    async fn delete_releases(&self, names: &[String]) -> Result<()>;

    /// Deletes keys at the target's root, outside any release: the stable
    /// keys and manifest a target published before releases kept there.
    async fn delete_at_root(&self, keys: &[String]) -> Result<()>;

    /// Points stable keys of the live release at their objects again (a
    /// repair of pages that drifted), each replaced in one rename.
    async fn relink_live(&self, links: Vec<(String, String)>) -> Result<()>;

    /// Files of the live release changed since it went live (by hand: a
    /// write through a page's link, or a page replaced by another file),
    /// as keys; found without reading any file.
    async fn changed_live(&self) -> Result<Vec<String>>;
}

/// A shared store is a store, so that `&Arc<dyn Store>` passes where
/// `&dyn Store` is asked for.
#[async_trait]
impl<S: Store + ?Sized> Store for Arc<S> {
    fn describe(&self) -> String {
        (**self).describe()
    }

    async fn get_object(&self, key: &str, if_none_match: Option<&str>) -> Result<GetOutcome> {
        (**self).get_object(key, if_none_match).await
    }

    async fn head_object(&self, key: &str) -> Result<Option<Head>> {
        (**self).head_object(key).await
    }

    async fn put_object(
        &self,
        key: &str,
        body: Body,
        meta: &ObjectMeta,
        condition: Condition,
        observer: &dyn TransferObserver,
    ) -> Result<PutOutcome> {
        (**self)
            .put_object(key, body, meta, condition, observer)
            .await
    }

    async fn copy_object(
        &self,
        from: &str,
        to: &str,
        meta: &ObjectMeta,
        condition: Condition,
    ) -> Result<PutOutcome> {
        (**self).copy_object(from, to, meta, condition).await
    }

    async fn delete_objects(&self, keys: &[String]) -> Result<()> {
        (**self).delete_objects(keys).await
    }

    async fn delete_object_if_match(&self, key: &str, etag: &str) -> Result<bool> {
        (**self).delete_object_if_match(key, etag).await
    }

    async fn list_objects(&self, prefix: &str) -> Result<Vec<Listed>> {
        (**self).list_objects(prefix).await
    }

    async fn list_dirs(&self, prefix: &str) -> Result<Vec<String>> {
        (**self).list_dirs(prefix).await
    }

    async fn object_digest(&self, key: &str) -> Result<ContentDigest> {
        (**self).object_digest(key).await
    }

    async fn probe_conditional_writes(&self, key: &str) -> Result<bool> {
        (**self).probe_conditional_writes(key).await
    }

    fn releases(&self) -> Option<&dyn Releases> {
        (**self).releases()
    }
}

/// The operations as the layers above use them: every key is checked here,
/// once for every backend.
impl dyn Store + '_ {
    pub async fn get(&self, key: &str, if_none_match: Option<&str>) -> Result<GetOutcome> {
        check_key(key)?;
        self.get_object(key, if_none_match).await
    }

    pub async fn head(&self, key: &str) -> Result<Option<Head>> {
        check_key(key)?;
        self.head_object(key).await
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
        self.put_object(key, body, meta, condition, observer).await
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
        self.copy_object(from, to, meta, condition).await
    }

    pub async fn delete_if_match(&self, key: &str, etag: &str) -> Result<bool> {
        check_key(key)?;
        self.delete_object_if_match(key, etag).await
    }

    pub async fn delete(&self, keys: &[String]) -> Result<()> {
        for k in keys {
            check_key(k)?;
        }
        self.delete_objects(keys).await
    }

    /// Keys under `prefix` (relative to the target root), with size and age.
    pub async fn list(&self, prefix: &str) -> Result<Vec<Listed>> {
        self.list_objects(prefix).await
    }

    pub async fn content_digest(&self, key: &str) -> Result<ContentDigest> {
        check_key(key)?;
        self.object_digest(key).await
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
pub async fn copy_all(
    store: &Arc<dyn Store>,
    jobs: Vec<CopyJob>,
    concurrency: usize,
) -> Result<()> {
    let copies = crate::concurrency::limited(concurrency, jobs, |job| {
        let store = store.clone();
        async move {
            store
                .copy(&job.from, &job.to, &job.meta, Condition::None)
                .await
        }
    });
    // The copies running when one fails still land before it is returned.
    copies
        .settle(|e| Error::Runtime(format!("copy task failed: {e}")))
        .await
}

/// The keys among `keys` that the store does not have.
pub async fn missing_keys(
    store: &Arc<dyn Store>,
    concurrency: usize,
    keys: &[String],
) -> Result<Vec<String>> {
    let checked = crate::concurrency::limited(concurrency, keys.to_vec(), |key| {
        let store = store.clone();
        async move { Ok::<_, Error>(store.head(&key).await?.is_none().then_some(key)) }
    })
    .try_collect(|e| Error::Runtime(format!("check task failed: {e}")))
    .await?;
    let mut out: Vec<String> = checked.into_iter().flatten().collect();
    out.sort();
    Ok(out)
}
