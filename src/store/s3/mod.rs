//! An S3 or S3-compatible bucket target (`s3://BUCKET/PREFIX`). Every object
//! is sent with its own Content-MD5, so the store itself checks that it holds
//! the bytes that were hashed; conditional writes map to `If-None-Match` and
//! `If-Match`, which some S3-compatible stores silently ignore.
//!
//! This file holds the store, how it names keys, and its [`Store`] impl;
//! each operation lives in the file of its concern: `connect` (settings,
//! client, credentials), `read` (get, head, list), `put` (including
//! multipart), `copy`, `delete`, `probe` (conditional writes), and `errors`
//! (what the SDK's failures become).

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_s3::Client;
use aws_sdk_s3::types::ObjectCannedAcl;

use super::{
    Body, Condition, ContentDigest, GetOutcome, Head, Listed, ObjectMeta, PutOutcome, Store,
    TransferObserver,
};
use crate::error::Result;

mod connect;
mod copy;
mod delete;
mod errors;
mod probe;
mod put;
mod read;

pub use connect::{S3Settings, check_credentials};
pub use errors::Failure;
pub use put::file_md5_hex;

/// How many times a request is tried, the first time included.
const ATTEMPTS: u32 = 6;

pub struct S3Store {
    client: Client,
    bucket: String,
    prefix: String,
    endpoint: Option<String>,
    region: String,
    /// Which profile the chain used and where that came from, for hints.
    profile: String,
    part_concurrency: usize,
    acl: Option<ObjectCannedAcl>,
    request_timeout: Duration,
}

#[async_trait]
impl Store for S3Store {
    fn describe(&self) -> String {
        let mut out = self.root_url();
        if let Some(endpoint) = &self.endpoint {
            out.push_str(" at ");
            out.push_str(endpoint);
        }
        out
    }

    async fn get_object(&self, key: &str, if_none_match: Option<&str>) -> Result<GetOutcome> {
        self.get(key, if_none_match).await
    }

    async fn head_object(&self, key: &str) -> Result<Option<Head>> {
        self.head(key).await
    }

    async fn put_object(
        &self,
        key: &str,
        body: Body,
        meta: &ObjectMeta,
        condition: Condition,
        observer: &dyn TransferObserver,
    ) -> Result<PutOutcome> {
        self.put(key, body, meta, condition, observer).await
    }

    async fn copy_object(
        &self,
        from: &str,
        to: &str,
        meta: &ObjectMeta,
        condition: Condition,
    ) -> Result<PutOutcome> {
        self.copy(from, to, meta, condition).await
    }

    async fn delete_objects(&self, keys: &[String]) -> Result<()> {
        self.delete(keys).await
    }

    async fn delete_object_if_match(&self, key: &str, etag: &str) -> Result<bool> {
        self.delete_if_match(key, etag).await
    }

    async fn list_objects(&self, prefix: &str) -> Result<Vec<Listed>> {
        self.list(prefix).await
    }

    async fn list_dirs(&self, prefix: &str) -> Result<Vec<String>> {
        self.list_common_prefixes(prefix).await
    }

    async fn object_digest(&self, key: &str) -> Result<ContentDigest> {
        self.content_digest(key).await
    }

    async fn probe_conditional_writes(&self, key: &str) -> Result<bool> {
        self.probe(key).await
    }
}

impl S3Store {
    fn root_url(&self) -> String {
        match self.prefix.as_str() {
            "" => format!("s3://{}", self.bucket),
            prefix => format!("s3://{}/{prefix}", self.bucket),
        }
    }

    fn full_key(&self, key: &str) -> String {
        if self.prefix.is_empty() {
            key.to_owned()
        } else {
            format!("{}/{key}", self.prefix)
        }
    }

    /// How a key is named in messages: the bucket and the full key.
    fn url(&self, key: &str) -> String {
        format!("s3://{}/{}", self.bucket, self.full_key(key))
    }

    fn location(&self) -> String {
        match &self.endpoint {
            Some(endpoint) => endpoint.clone(),
            None => format!("AWS S3 (region `{}`)", self.region),
        }
    }
}

fn condition_headers(condition: &Condition) -> (Option<String>, Option<String>) {
    match condition {
        Condition::None | Condition::SourceIs(_) => (None, None),
        Condition::IfAbsent => (Some("*".to_owned()), None),
        Condition::IfMatch(etag) => (None, Some(etag.clone())),
    }
}

fn user_metadata(meta: &ObjectMeta) -> Option<HashMap<String, String>> {
    (!meta.metadata.is_empty()).then(|| {
        meta.metadata
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    })
}
