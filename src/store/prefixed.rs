//! A store seen through a prefix: every key is `prefix + key` in the store
//! beneath. A preview is the target's store under `_previews/<name>/`, so
//! its manifest, deploy records, lock and objects land there and nowhere
//! else.

use std::sync::Arc;

use async_trait::async_trait;

use super::{
    Body, Condition, ContentDigest, GetOutcome, Head, Listed, ObjectMeta, PutOutcome, Store,
    TransferObserver,
};
use crate::error::Result;

pub struct Prefixed {
    inner: Arc<dyn Store>,
    /// Ends with `/`.
    prefix: String,
}

impl Prefixed {
    /// `prefix` is a checked key prefix ending with `/`.
    pub fn new(inner: Arc<dyn Store>, prefix: &str) -> Prefixed {
        debug_assert!(prefix.ends_with('/'));
        Prefixed {
            inner,
            prefix: prefix.to_string(),
        }
    }

    fn full(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }
}

#[async_trait]
impl Store for Prefixed {
    fn describe(&self) -> String {
        // `s3://bucket/site at http://...`: the prefix goes after the URL.
        let inner = self.inner.describe();
        let prefix = self.prefix.trim_end_matches('/');
        match inner.split_once(" at ") {
            Some((url, rest)) => format!("{}/{prefix} at {rest}", url.trim_end_matches('/')),
            None => format!("{}/{prefix}", inner.trim_end_matches('/')),
        }
    }

    async fn get_object(&self, key: &str, if_none_match: Option<&str>) -> Result<GetOutcome> {
        self.inner.get_object(&self.full(key), if_none_match).await
    }

    async fn head_object(&self, key: &str) -> Result<Option<Head>> {
        self.inner.head_object(&self.full(key)).await
    }

    async fn put_object(
        &self,
        key: &str,
        body: Body,
        meta: &ObjectMeta,
        condition: Condition,
        observer: &dyn TransferObserver,
    ) -> Result<PutOutcome> {
        self.inner
            .put_object(&self.full(key), body, meta, condition, observer)
            .await
    }

    async fn copy_object(
        &self,
        from: &str,
        to: &str,
        meta: &ObjectMeta,
        condition: Condition,
    ) -> Result<PutOutcome> {
        self.inner
            .copy_object(&self.full(from), &self.full(to), meta, condition)
            .await
    }

    async fn delete_objects(&self, keys: &[String]) -> Result<()> {
        let keys: Vec<String> = keys.iter().map(|k| self.full(k)).collect();
        self.inner.delete_objects(&keys).await
    }

    async fn delete_object_if_match(&self, key: &str, etag: &str) -> Result<bool> {
        self.inner
            .delete_object_if_match(&self.full(key), etag)
            .await
    }

    async fn list_objects(&self, prefix: &str) -> Result<Vec<Listed>> {
        let listed = self.inner.list_objects(&self.full(prefix)).await?;
        Ok(listed
            .into_iter()
            .filter_map(|l| {
                let key = l.key.strip_prefix(&self.prefix)?.to_string();
                Some(Listed { key, ..l })
            })
            .collect())
    }

    async fn list_dirs(&self, prefix: &str) -> Result<Vec<String>> {
        self.inner.list_dirs(&self.full(prefix)).await
    }

    async fn object_digest(&self, key: &str) -> Result<ContentDigest> {
        self.inner.object_digest(&self.full(key)).await
    }

    async fn probe_conditional_writes(&self, key: &str) -> Result<bool> {
        self.inner.probe_conditional_writes(&self.full(key)).await
    }
}
