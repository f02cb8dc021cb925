//! An S3 or S3-compatible bucket target (`s3://BUCKET/PREFIX`). Every object
//! is sent with its own Content-MD5, so the store itself checks that it holds
//! the bytes that were hashed; conditional writes map to `If-None-Match` and
//! `If-Match`, which some S3-compatible stores silently ignore.

use std::collections::HashMap;
use std::error::Error as StdError;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use aws_config::BehaviorVersion;
use aws_sdk_s3::Client;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{Region, RequestChecksumCalculation, ResponseChecksumValidation};
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    CompletedMultipartUpload, CompletedPart, Delete, MetadataDirective, ObjectCannedAcl,
    ObjectIdentifier,
};
use base64::Engine as _;
use md5::{Digest as _, Md5};
use tokio::task::JoinSet;

mod errors;

use super::verified_body;
use super::{
    Body, Condition, ContentDigest, Fetched, GetOutcome, Head, Listed, ObjectMeta, PutOutcome,
    Store, TransferObserver,
};
use crate::error::{Error, Result};
use crate::util::percent_encode_path;
use errors::chain;
pub use errors::{Failure, check_credentials};

/// Files up to this size are sent from the buffer they were verified in.
const BUFFERED_MAX: u64 = 8 * 1024 * 1024;
/// Larger files go up in parts, so a failure costs one part, not the object.
const MULTIPART_MIN: u64 = 64 * 1024 * 1024;
const PART_SIZE: u64 = 16 * 1024 * 1024;
const MAX_PARTS: u64 = 10_000;
/// Object-level concurrency is bounded by the caller; this bounds the parts
/// of one object on top of it.
const MAX_PART_CONCURRENCY: usize = 8;
const DELETE_BATCH: usize = 1000;
/// How much of a file is read at a time to hash it before sending.
const READ_STEP: u64 = 4 * 1024 * 1024;
const ATTEMPTS: u32 = 6;
/// A request body gets this much time per byte on top of the request
/// timeout, so that a slow uplink is not taken for a hung store.
const SLOWEST_UPLOAD_BYTES_PER_SEC: u64 = 256 * 1024;

#[derive(Debug, Clone)]
pub struct S3Settings {
    pub bucket: String,
    /// `""` or `site/...`, without leading or trailing `/`.
    pub prefix: String,
    pub region: Option<String>,
    /// Overrides `AWS_ENDPOINT_URL`, which the SDK reads itself otherwise.
    pub endpoint: Option<String>,
    pub path_style: bool,
    pub profile: Option<String>,
    /// Used for the parts of one multipart upload.
    pub concurrency: usize,
    /// `false`: never set an ACL.
    pub public_read: bool,
    /// An attempt unanswered for this long is abandoned and retried.
    pub request_timeout: Duration,
}

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
        S3Store::describe(self)
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

    async fn list_objects(&self, prefix: &str) -> Result<Vec<Listed>> {
        self.list(prefix).await
    }

    /// The blake3 publish records with every object (`x-amz-meta-blake3`).
    async fn object_digest(&self, key: &str) -> Result<ContentDigest> {
        Ok(match self.head(key).await? {
            None => ContentDigest::Missing,
            Some(h) => ContentDigest::Recorded(h.meta.metadata.get("blake3").cloned()),
        })
    }

    async fn probe_conditional_writes(&self) -> Result<bool> {
        S3Store::probe_conditional_writes(self).await
    }
}

impl S3Store {
    pub async fn connect(settings: S3Settings) -> Result<S3Store> {
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .retry_config(RetryConfig::standard().with_max_attempts(ATTEMPTS));
        if let Some(profile) = &settings.profile {
            loader = loader.profile_name(profile);
        }
        if let Some(region) = &settings.region {
            loader = loader.region(Region::new(region.clone()));
        }
        if let Some(endpoint) = &settings.endpoint {
            loader = loader.endpoint_url(endpoint);
        }
        let shared = loader.load().await;
        let endpoint = shared.endpoint_url().map(str::to_owned);
        let region = match (shared.region(), &endpoint) {
            (Some(region), _) => region.clone(),
            // S3-compatible stores mostly ignore the region, but SigV4 needs one.
            (None, Some(_)) => Region::from_static("us-east-1"),
            (None, None) => {
                return Err(Error::Config(format!(
                    "no AWS region for bucket `{}`: set `[target] region` in publish.toml, or AWS_REGION",
                    settings.bucket
                )));
            }
        };
        let (profile_name, origin) = match (&settings.profile, std::env::var("AWS_PROFILE")) {
            (Some(p), _) => (p.clone(), "`[target] profile`"),
            (None, Ok(p)) => (p, "AWS_PROFILE"),
            (None, Err(_)) => ("default".to_owned(), "AWS_PROFILE"),
        };
        let profile = format!("profile `{profile_name}` ({origin})");
        check_credentials(&shared, &profile_name, &profile).await?;

        // The SDK waits for an answer as long as the connection stays open:
        // a store node that hangs would stall the run for good. An attempt
        // that outlasts the timeout is retried like a 5xx.
        let timeouts = shared
            .timeout_config()
            .map(TimeoutConfig::to_builder)
            .unwrap_or_default()
            .operation_attempt_timeout(settings.request_timeout)
            .build();
        // Content-MD5 is the end-to-end check. The SDK's default extra
        // checksums use aws-chunked uploads, which S3-compatible stores
        // (Garage) reject as "Invalid payload signature".
        let config = aws_sdk_s3::config::Builder::from(&shared)
            .timeout_config(timeouts)
            .region(region.clone())
            .force_path_style(settings.path_style)
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
            .build();
        Ok(S3Store {
            client: Client::from_conf(config),
            bucket: settings.bucket,
            prefix: settings.prefix.trim_matches('/').to_owned(),
            endpoint,
            region: region.to_string(),
            profile,
            part_concurrency: settings.concurrency.clamp(1, MAX_PART_CONCURRENCY),
            acl: settings.public_read.then_some(ObjectCannedAcl::PublicRead),
            request_timeout: settings.request_timeout,
        })
    }

    /// The client's settings with an attempt timeout for a request that
    /// sends `body_len` bytes.
    fn upload_timeouts(&self, body_len: u64) -> aws_sdk_s3::config::Builder {
        self.attempt_timeout(upload_attempt_timeout(self.request_timeout, body_len))
    }

    /// A server-side copy sends no body but the store answers only once it
    /// has copied the object, which can be large.
    fn copy_timeouts(&self) -> aws_sdk_s3::config::Builder {
        self.attempt_timeout(self.request_timeout * 4)
    }

    fn attempt_timeout(&self, timeout: Duration) -> aws_sdk_s3::config::Builder {
        let base = self.client.config().timeout_config();
        aws_sdk_s3::config::Builder::default().timeout_config(
            base.map(TimeoutConfig::to_builder)
                .unwrap_or_default()
                .operation_attempt_timeout(timeout)
                .build(),
        )
    }

    pub fn describe(&self) -> String {
        let mut out = self.root_url();
        if let Some(endpoint) = &self.endpoint {
            out.push_str(" at ");
            out.push_str(endpoint);
        }
        out
    }

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

    pub async fn get(&self, key: &str, if_none_match: Option<&str>) -> Result<GetOutcome> {
        let sent = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(self.full_key(key))
            .set_if_none_match(if_none_match.map(str::to_owned))
            .send()
            .await;
        let out = match sent {
            Ok(out) => out,
            Err(e) => {
                let f = Failure::from(e);
                if f.status == Some(304) && if_none_match.is_some() {
                    return Ok(GetOutcome::NotModified);
                }
                if f.is_missing_key() {
                    return Ok(GetOutcome::Missing);
                }
                return Err(self.error(format!("cannot read `{}`", self.url(key)), f));
            }
        };
        let etag = out.e_tag().map(str::to_owned);
        let bytes =
            out.body.collect().await.map_err(|e| {
                Error::Store(format!("cannot read `{}`: {}", self.url(key), chain(&e)))
            })?;
        Ok(GetOutcome::Found(Fetched {
            bytes: bytes.into_bytes().to_vec(),
            etag,
        }))
    }

    pub async fn head(&self, key: &str) -> Result<Option<Head>> {
        let sent = self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(self.full_key(key))
            .send()
            .await;
        let out = match sent {
            Ok(out) => out,
            Err(e) => {
                let f = Failure::from(e);
                if f.is_missing_key() {
                    return Ok(None);
                }
                return Err(self.error(format!("cannot stat `{}`", self.url(key)), f));
            }
        };
        let metadata = out
            .metadata()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.to_lowercase(), v.clone()))
                    .collect()
            })
            .unwrap_or_default();
        Ok(Some(Head {
            size: out.content_length().unwrap_or(0).max(0) as u64,
            etag: out.e_tag().map(str::to_owned),
            meta: ObjectMeta {
                content_type: out.content_type().map(str::to_owned),
                cache_control: out.cache_control().map(str::to_owned),
                content_encoding: out.content_encoding().map(str::to_owned),
                content_disposition: out.content_disposition().map(str::to_owned),
                content_language: out.content_language().map(str::to_owned),
                metadata,
            },
        }))
    }

    pub async fn put(
        &self,
        key: &str,
        body: Body,
        meta: &ObjectMeta,
        condition: Condition,
        observer: &dyn TransferObserver,
    ) -> Result<PutOutcome> {
        match body {
            Body::Bytes(bytes) => {
                let md5 = md5_base64(&bytes);
                let len = bytes.len() as u64;
                let stream = ByteStream::from(Arc::unwrap_or_clone(bytes));
                let outcome = self
                    .put_single(key, (stream, len), md5, meta, &condition)
                    .await?;
                observer.bytes_sent(len);
                Ok(outcome)
            }
            Body::File { path, size, blake3 } if size > MULTIPART_MIN => {
                let file = LocalFile { path, size, blake3 };
                self.put_multipart(key, file, meta, &condition, observer)
                    .await
            }
            Body::File { path, size, blake3 } => {
                let buffered = size <= BUFFERED_MAX;
                let (md5s, buffer) =
                    read_verified(path.clone(), size, blake3, size, buffered).await?;
                let md5 = md5s.into_iter().next().unwrap_or_default();
                let stream = match buffer {
                    Some(buffer) => ByteStream::from(buffer),
                    // Streamed, and checked against the MD5 of the bytes
                    // that were hashed as it goes.
                    None => verified_body::stream(&path, 0, size, md5.clone()),
                };
                let outcome = self
                    .put_single(key, (stream, size), md5, meta, &condition)
                    .await
                    .map_err(|e| file_changed_hint(e, &path))?;
                observer.bytes_sent(size);
                Ok(outcome)
            }
        }
    }

    async fn put_single(
        &self,
        key: &str,
        (body, len): (ByteStream, u64),
        md5: String,
        meta: &ObjectMeta,
        condition: &Condition,
    ) -> Result<PutOutcome> {
        let (if_none_match, if_match) = condition_headers(condition);
        let sent = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(self.full_key(key))
            .body(body)
            .content_md5(md5)
            .set_content_type(meta.content_type.clone())
            .set_cache_control(meta.cache_control.clone())
            .set_content_encoding(meta.content_encoding.clone())
            .set_content_disposition(meta.content_disposition.clone())
            .set_content_language(meta.content_language.clone())
            .set_metadata(user_metadata(meta))
            .set_acl(self.acl.clone())
            .set_if_none_match(if_none_match)
            .set_if_match(if_match)
            .customize()
            .config_override(self.upload_timeouts(len))
            .send()
            .await;
        match sent {
            Ok(out) => Ok(PutOutcome::Written {
                etag: out.e_tag().map(str::to_owned),
            }),
            Err(e) => {
                let action = format!("cannot write `{}`", self.url(key));
                self.write_failed(action, condition, NoSuchKey::MeansDestination, e)
            }
        }
    }

    async fn put_multipart(
        &self,
        key: &str,
        file: LocalFile,
        meta: &ObjectMeta,
        condition: &Condition,
        observer: &dyn TransferObserver,
    ) -> Result<PutOutcome> {
        // A condition that already fails is not worth sending the parts
        // for; the condition on completion still guards the race (where the
        // store enforces it: moto ignores If-Match there).
        let holds = match condition {
            Condition::None => true,
            Condition::IfAbsent => self.head(key).await?.is_none(),
            Condition::IfMatch(etag) => self
                .head(key)
                .await?
                .is_some_and(|h| h.etag.as_ref() == Some(etag)),
        };
        if !holds {
            return Ok(PutOutcome::PreconditionFailed);
        }
        let part_size = part_size(file.size);
        let md5s = read_verified(file.path.clone(), file.size, file.blake3, part_size, false)
            .await?
            .0;
        let full_key = self.full_key(key);
        let created = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(&full_key)
            .set_content_type(meta.content_type.clone())
            .set_cache_control(meta.cache_control.clone())
            .set_content_encoding(meta.content_encoding.clone())
            .set_content_disposition(meta.content_disposition.clone())
            .set_content_language(meta.content_language.clone())
            .set_metadata(user_metadata(meta))
            .set_acl(self.acl.clone())
            .send()
            .await
            .map_err(|e| {
                self.error(
                    format!("cannot start a multipart upload of `{}`", self.url(key)),
                    Failure::from(e),
                )
            })?;
        let Some(upload_id) = created.upload_id().map(str::to_owned) else {
            return Err(Error::Store(format!(
                "cannot start a multipart upload of `{}`: the store returned no upload id",
                self.url(key)
            )));
        };
        let mut guard = AbortOnDrop {
            client: self.client.clone(),
            bucket: self.bucket.clone(),
            key: full_key.clone(),
            upload_id: upload_id.clone(),
            armed: true,
        };
        let upload = Upload {
            key,
            full_key,
            path: &file.path,
            size: file.size,
            part_size,
            upload_id,
        };
        let result = self.upload_parts(&upload, md5s, condition, observer).await;
        if !matches!(result, Ok(PutOutcome::Written { .. })) {
            guard.abort().await;
        }
        guard.armed = false;
        result
    }

    async fn upload_parts(
        &self,
        upload: &Upload<'_>,
        md5s: Vec<String>,
        condition: &Condition,
        observer: &dyn TransferObserver,
    ) -> Result<PutOutcome> {
        let Upload {
            key,
            full_key,
            path,
            size,
            part_size,
            upload_id,
        } = upload;
        let (size, part_size) = (*size, *part_size);
        let mut pending = md5s.into_iter().enumerate();
        let mut running = JoinSet::new();
        let mut done = Vec::new();
        loop {
            while running.len() < self.part_concurrency {
                let Some((index, md5)) = pending.next() else {
                    break;
                };
                let offset = index as u64 * part_size;
                let length = part_size.min(size - offset);
                let request = self
                    .client
                    .upload_part()
                    .bucket(&self.bucket)
                    .key(full_key)
                    .upload_id(upload_id)
                    .part_number(index as i32 + 1)
                    .content_md5(md5.clone());
                let timeouts = self.upload_timeouts(length);
                let body = verified_body::stream(path, offset, length, md5.clone());
                running.spawn(async move {
                    let sent = request
                        .body(body)
                        .customize()
                        .config_override(timeouts)
                        .send()
                        .await;
                    Ok::<_, PartError>((index as i32 + 1, length, sent?))
                });
            }
            let Some(joined) = running.join_next().await else {
                break;
            };
            let part = joined.map_err(|e| {
                Error::Runtime(format!(
                    "uploading a part of `{}` failed: {e}",
                    self.url(key)
                ))
            })?;
            match part {
                Ok((number, length, out)) => {
                    observer.bytes_sent(length);
                    done.push(
                        CompletedPart::builder()
                            .part_number(number)
                            .set_e_tag(out.e_tag().map(str::to_owned))
                            .build(),
                    );
                }
                Err(PartError::Local(e)) => return Err(e),
                Err(PartError::Sdk(f)) => {
                    let e = self.error(format!("cannot upload a part of `{}`", self.url(key)), f);
                    return Err(file_changed_hint(e, path));
                }
            }
        }
        done.sort_by_key(|p| p.part_number());
        let (if_none_match, if_match) = condition_headers(condition);
        let sent = self
            .client
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(full_key)
            .upload_id(upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(done))
                    .build(),
            )
            .set_if_none_match(if_none_match)
            .set_if_match(if_match)
            .customize()
            // The store assembles the parts before it answers.
            .config_override(self.upload_timeouts(size))
            .send()
            .await;
        match sent {
            Ok(out) => Ok(PutOutcome::Written {
                etag: out.e_tag().map(str::to_owned),
            }),
            Err(e) => self.write_failed(
                format!(
                    "cannot complete the multipart upload of `{}`",
                    self.url(key)
                ),
                condition,
                NoSuchKey::MeansDestination,
                e,
            ),
        }
    }

    pub async fn copy(
        &self,
        from: &str,
        to: &str,
        meta: &ObjectMeta,
        condition: Condition,
    ) -> Result<PutOutcome> {
        let source = percent_encode_path(&format!("{}/{}", self.bucket, self.full_key(from)));
        let (if_none_match, if_match) = condition_headers(&condition);
        let sent = self
            .client
            .copy_object()
            .bucket(&self.bucket)
            .key(self.full_key(to))
            .copy_source(source)
            .metadata_directive(MetadataDirective::Replace)
            .set_content_type(meta.content_type.clone())
            .set_cache_control(meta.cache_control.clone())
            .set_content_encoding(meta.content_encoding.clone())
            .set_content_disposition(meta.content_disposition.clone())
            .set_content_language(meta.content_language.clone())
            .set_metadata(user_metadata(meta))
            .set_acl(self.acl.clone())
            .set_if_none_match(if_none_match)
            .set_if_match(if_match)
            .customize()
            .config_override(self.copy_timeouts())
            .send()
            .await;
        match sent {
            Ok(out) => Ok(PutOutcome::Written {
                etag: out
                    .copy_object_result()
                    .and_then(|r| r.e_tag())
                    .map(str::to_owned),
            }),
            Err(e) => self.write_failed(
                format!("cannot copy `{}` to `{}`", self.url(from), self.url(to)),
                &condition,
                NoSuchKey::MeansCopySource,
                e,
            ),
        }
    }

    pub async fn delete(&self, keys: &[String]) -> Result<()> {
        for batch in keys.chunks(DELETE_BATCH) {
            let objects = batch
                .iter()
                .map(|k| ObjectIdentifier::builder().key(self.full_key(k)).build())
                .collect::<std::result::Result<Vec<_>, _>>()
                .map_err(|e| Error::Runtime(format!("cannot build a delete request: {e}")))?;
            let delete = Delete::builder()
                .set_objects(Some(objects))
                .quiet(true)
                .build()
                .map_err(|e| Error::Runtime(format!("cannot build a delete request: {e}")))?;
            let out = self
                .client
                .delete_objects()
                .bucket(&self.bucket)
                .delete(delete)
                .send()
                .await
                .map_err(|e| {
                    self.error(
                        format!(
                            "cannot delete {} objects from `{}`",
                            batch.len(),
                            self.root_url()
                        ),
                        Failure::from(e),
                    )
                })?;
            if let Some(first) = out.errors().first() {
                return Err(Error::Store(format!(
                    "cannot delete `s3://{}/{}`: {}: {}{}",
                    self.bucket,
                    first.key().unwrap_or("?"),
                    first.code().unwrap_or("error"),
                    first.message().unwrap_or("no message"),
                    match out.errors().len() {
                        1 => String::new(),
                        n => format!(" (and {} more)", n - 1),
                    }
                )));
            }
        }
        Ok(())
    }

    pub async fn list(&self, prefix: &str) -> Result<Vec<Listed>> {
        let root = self.full_key("");
        let full_prefix = format!("{root}{prefix}");
        let mut out = Vec::new();
        let mut token = None;
        loop {
            let page = self
                .client
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(&full_prefix)
                .set_continuation_token(token)
                .send()
                .await
                .map_err(|e| {
                    self.error(
                        format!("cannot list `s3://{}/{full_prefix}`", self.bucket),
                        Failure::from(e),
                    )
                })?;
            for object in page.contents() {
                let Some(key) = object.key().and_then(|k| k.strip_prefix(&root)) else {
                    continue;
                };
                out.push(Listed {
                    key: key.to_owned(),
                    size: object.size().unwrap_or(0).max(0) as u64,
                    modified: object.last_modified().map_or(0, |t| t.secs()),
                });
            }
            token = page.next_continuation_token().map(str::to_owned);
            if token.is_none() || page.is_truncated() != Some(true) {
                break;
            }
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    pub async fn probe_conditional_writes(&self) -> Result<bool> {
        let key = format!(".assetpub/probe-{}", random_hex());
        let body = || Body::Bytes(Arc::new(b"conditional write probe\n".to_vec()));
        let meta = ObjectMeta {
            cache_control: Some("no-store".to_owned()),
            ..ObjectMeta::default()
        };
        let observer = super::NoObserver;
        let first = self.put(&key, body(), &meta, Condition::IfAbsent, &observer);
        let enforced = match first.await {
            Ok(_) => {
                let second = self.put(&key, body(), &meta, Condition::IfAbsent, &observer);
                second.await.map(|o| o == PutOutcome::PreconditionFailed)
            }
            // A store that refuses the header outright does not enforce it.
            Err(Error::Store(m)) if m.contains("NotImplemented") => Ok(false),
            Err(e) => Err(e),
        };
        let cleaned = self.delete(std::slice::from_ref(&key)).await;
        let enforced = enforced?;
        cleaned?;
        Ok(enforced)
    }

    /// A failed conditional write is an answer, not an error.
    fn write_failed<E>(
        &self,
        action: String,
        condition: &Condition,
        no_such_key: NoSuchKey,
        err: SdkError<E, HttpResponse>,
    ) -> Result<PutOutcome>
    where
        E: ProvideErrorMetadata + StdError + Send + Sync + 'static,
    {
        let f = Failure::from(err);
        let refused = match condition {
            Condition::None => false,
            Condition::IfAbsent => f.is_precondition_failure(),
            // S3 answers NoSuchKey when there is no object to match; for a
            // copy it means the source is missing, which is an error.
            Condition::IfMatch(_) => {
                f.is_precondition_failure()
                    || (no_such_key == NoSuchKey::MeansDestination && f.is_missing_key())
            }
        };
        if refused {
            return Ok(PutOutcome::PreconditionFailed);
        }
        Err(self.error(action, f))
    }

    fn error(&self, action: String, f: Failure) -> Error {
        let code = f.code.as_deref().unwrap_or("");
        let detail = f.describe();
        if let Some(changed) = changed_file(&detail) {
            return Error::Input(format!(
                "{changed}; nothing was stored ({action})\nhint: run the build to completion, then publish again"
            ));
        }
        if f.timed_out {
            return Error::Store(format!(
                "no answer from {} within {}s, {ATTEMPTS} attempts ({action})\nhint: the store, or a node behind it, hangs; raise `[target] request_timeout` if it is only slow",
                self.location(),
                self.request_timeout.as_secs()
            ));
        }
        if f.unreachable {
            return Error::Store(format!(
                "cannot reach {}: {detail} ({action})",
                self.location()
            ));
        }
        let credentials = format!(
            "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or {}",
            self.profile
        );
        let access = format!(
            "check the access key and secret from {credentials}; they need read, write, list and delete access to bucket `{}`",
            self.bucket
        );
        let region = "set `[target] region` in publish.toml, or AWS_REGION";
        match (code, f.status) {
            ("NoSuchBucket", _) => Error::Config(format!(
                "bucket `{}` does not exist at {}",
                self.bucket,
                self.location()
            )),
            ("InvalidAccessKeyId", _) => Error::Config(format!(
                "{action}: {detail}\nhint: {} does not know this access key; check {credentials}",
                self.location()
            )),
            ("SignatureDoesNotMatch", _) => Error::Config(format!(
                "{action}: {detail}\nhint: the secret does not match the access key; check {credentials}"
            )),
            ("AccessDenied" | "AllAccessDisabled" | "InvalidToken" | "ExpiredToken", _)
            | ("", Some(403)) => Error::Config(format!("{action}: {detail}\nhint: {access}")),
            (
                "PermanentRedirect"
                | "AuthorizationHeaderMalformed"
                | "IllegalLocationConstraintException",
                _,
            )
            | ("", Some(301)) => Error::Config(format!(
                "{action}: {detail}\nhint: bucket `{}` is in another region; {region}",
                self.bucket
            )),
            ("", Some(400)) => Error::Store(format!(
                "{action}: {detail}\nhint: the store gave no reason; a wrong region is the usual one: {region}"
            )),
            _ => Error::Store(format!("{action}: {detail}")),
        }
    }
}

/// What a write's NoSuchKey refers to.
#[derive(PartialEq, Eq)]
enum NoSuchKey {
    MeansDestination,
    MeansCopySource,
}

/// A file to publish, already hashed by the caller.
struct LocalFile {
    path: PathBuf,
    size: u64,
    blake3: String,
}

/// A multipart upload in progress.
struct Upload<'a> {
    key: &'a str,
    full_key: String,
    path: &'a Path,
    size: u64,
    part_size: u64,
    upload_id: String,
}

enum PartError {
    Local(Error),
    Sdk(Failure),
}

impl From<Error> for PartError {
    fn from(e: Error) -> PartError {
        PartError::Local(e)
    }
}

impl<E> From<SdkError<E, HttpResponse>> for PartError
where
    E: ProvideErrorMetadata + StdError + Send + Sync + 'static,
{
    fn from(e: SdkError<E, HttpResponse>) -> PartError {
        PartError::Sdk(Failure::from(e))
    }
}

/// Aborts a multipart upload that is left behind, also when the future
/// driving it is dropped, so no orphaned parts stay billed in the bucket.
struct AbortOnDrop {
    client: Client,
    bucket: String,
    key: String,
    upload_id: String,
    armed: bool,
}

impl AbortOnDrop {
    fn request(&self) -> impl Future<Output = ()> + Send + 'static {
        let request = self
            .client
            .abort_multipart_upload()
            .bucket(&self.bucket)
            .key(&self.key)
            .upload_id(&self.upload_id);
        async move {
            // Best effort: the original error is the one worth reporting.
            let _ = request.send().await;
        }
    }

    async fn abort(&mut self) {
        self.armed = false;
        self.request().await;
    }
}

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        if self.armed
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            runtime.spawn(self.request());
        }
    }
}

fn condition_headers(condition: &Condition) -> (Option<String>, Option<String>) {
    match condition {
        Condition::None => (None, None),
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

/// The request timeout, plus the time the body takes at the slowest upload
/// rate still taken for a working link.
fn upload_attempt_timeout(request_timeout: Duration, body_len: u64) -> Duration {
    request_timeout
        + Duration::from_millis(body_len.saturating_mul(1000) / SLOWEST_UPLOAD_BYTES_PER_SEC)
}

fn part_size(size: u64) -> u64 {
    let mut part = PART_SIZE;
    while size.div_ceil(part) > MAX_PARTS {
        part *= 2;
    }
    part
}

/// Reads `path` once, checking it still hashes to `expected`, and returns the
/// base64 MD5 of each `part_size` slice (one for the whole file when
/// `part_size >= size`), plus the bytes when `keep`.
async fn read_verified(
    path: PathBuf,
    size: u64,
    expected: String,
    part_size: u64,
    keep: bool,
) -> Result<(Vec<String>, Option<Vec<u8>>)> {
    tokio::task::spawn_blocking(move || hash_file(&path, size, &expected, part_size.max(1), keep))
        .await
        .map_err(|e| Error::Runtime(format!("hashing a file failed: {e}")))?
}

fn hash_file(
    path: &Path,
    size: u64,
    expected: &str,
    part_size: u64,
    keep: bool,
) -> Result<(Vec<String>, Option<Vec<u8>>)> {
    let mut file = std::fs::File::open(path).map_err(|e| Error::io("cannot read", path, e))?;
    let mut blake = blake3::Hasher::new();
    // One buffer, never zeroed: the whole file when it is kept, else one
    // step at a time (a zeroed buffer per file cost more than its MD5).
    let mut buf: Vec<u8> = Vec::with_capacity(if keep {
        size as usize
    } else {
        READ_STEP.min(size) as usize
    });
    let mut md5s = Vec::new();
    let mut offset = 0;
    let mut changed = false;
    while offset < size || md5s.is_empty() {
        let length = part_size.min(size - offset);
        let mut md5 = Md5::new();
        let mut part = (&mut file).take(length);
        let mut read = 0;
        loop {
            if !keep {
                buf.clear();
            }
            let start = buf.len();
            let n = (&mut part)
                .take(READ_STEP)
                .read_to_end(&mut buf)
                .map_err(|e| Error::io("cannot read", path, e))?;
            if n == 0 {
                break;
            }
            blake.update(&buf[start..]);
            md5.update(&buf[start..]);
            read += n as u64;
        }
        md5s.push(base64::engine::general_purpose::STANDARD.encode(md5.finalize()));
        if read < length {
            changed = true;
            break;
        }
        offset += length;
    }
    let grown = file
        .read(&mut [0u8; 1])
        .map_err(|e| Error::io("cannot read", path, e))?
        > 0;
    if changed || grown || blake.finalize().to_hex().as_str() != expected {
        return Err(Error::Input(format!(
            "`{}` changed while it was being published; nothing was uploaded for it\nhint: run the build to completion, then publish again",
            path.display()
        )));
    }
    Ok((md5s, keep.then_some(buf)))
}

/// BadDigest on a file that was verified just before means it changed
/// between hashing and sending.
/// "`path` changed on disk since it was hashed", when that is what stopped
/// a streamed body, out of the transport's wrapping of it.
fn changed_file(detail: &str) -> Option<String> {
    let at = detail.find(verified_body::CHANGED)?;
    let close = detail[..at].rfind('`')?;
    let open = detail[..close].rfind('`')?;
    let end = detail[at..]
        .find(['(', ')', ';'])
        .map_or(detail.len(), |i| at + i);
    Some(detail[open..end].trim_end().to_string())
}

fn file_changed_hint(e: Error, path: &Path) -> Error {
    match e {
        Error::Store(m) if m.contains("BadDigest") => Error::Store(format!(
            "{m}\nhint: `{}` probably changed while it was being published; run the build to completion, then publish again",
            path.display()
        )),
        e => e,
    }
}

fn md5_base64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(Md5::digest(bytes))
}

static PROBES: AtomicU64 = AtomicU64::new(0);

fn random_hex() -> String {
    let mut hasher = blake3::Hasher::new();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    hasher.update(&now.as_nanos().to_le_bytes());
    hasher.update(&std::process::id().to_le_bytes());
    hasher.update(&PROBES.fetch_add(1, Ordering::Relaxed).to_le_bytes());
    hasher.finalize().to_hex()[..16].to_owned()
}

#[cfg(test)]
mod tests {
    use super::{
        Duration, SLOWEST_UPLOAD_BYTES_PER_SEC, part_size, percent_encode_path,
        upload_attempt_timeout,
    };

    #[test]
    fn copy_source_keeps_slashes_and_encodes_the_rest() {
        assert_eq!(
            percent_encode_path("bucket/site/a b/ü+x.css"),
            "bucket/site/a%20b/%C3%BC%2Bx.css"
        );
    }

    #[test]
    fn uploads_get_time_for_their_bytes_on_top_of_the_request_timeout() {
        let base = Duration::from_secs(30);
        assert_eq!(upload_attempt_timeout(base, 0), base);
        assert_eq!(
            upload_attempt_timeout(base, 16 * 1024 * 1024),
            base + Duration::from_secs(64)
        );
        assert_eq!(
            upload_attempt_timeout(base, u64::MAX),
            base + Duration::from_millis(u64::MAX / SLOWEST_UPLOAD_BYTES_PER_SEC)
        );
    }

    #[test]
    fn parts_stay_under_the_part_limit() {
        assert_eq!(part_size(70 * 1024 * 1024), 16 * 1024 * 1024);
        let huge = 5 * 1024 * 1024 * 1024 * 1024u64;
        assert!(huge.div_ceil(part_size(huge)) <= 10_000);
    }
}
