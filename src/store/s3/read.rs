//! Reading from the bucket: an object (conditional on its ETag), its
//! headers, the digest recorded with it, and the keys under a prefix.

use super::S3Store;
use super::errors::{Failure, chain};
use crate::error::{Error, Result};
use crate::store::{ContentDigest, Fetched, GetOutcome, Head, Listed, ObjectMeta};

impl S3Store {
    pub(super) async fn get(&self, key: &str, if_none_match: Option<&str>) -> Result<GetOutcome> {
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

    pub(super) async fn head(&self, key: &str) -> Result<Option<Head>> {
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
                website_redirect_location: out.website_redirect_location().map(str::to_owned),
            },
        }))
    }

    /// The blake3 publish records with every object (`x-amz-meta-blake3`).
    pub(super) async fn content_digest(&self, key: &str) -> Result<ContentDigest> {
        Ok(match self.head(key).await? {
            None => ContentDigest::Missing,
            Some(h) => ContentDigest::Recorded(h.meta.metadata.get("blake3").cloned()),
        })
    }

    pub(super) async fn list(&self, prefix: &str) -> Result<Vec<Listed>> {
        let root = self.full_key("");
        let mut out = Vec::new();
        self.each_page(prefix, None, |page| {
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
        })
        .await?;
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    /// The folders one level below `prefix`: a listing with the `/`
    /// delimiter, a page for every 1,000 folders rather than keys.
    pub(super) async fn list_common_prefixes(&self, prefix: &str) -> Result<Vec<String>> {
        let full_prefix = self.full_key(prefix);
        let mut out = Vec::new();
        self.each_page(prefix, Some("/"), |page| {
            for common in page.common_prefixes() {
                let name = common
                    .prefix()
                    .and_then(|p| p.strip_prefix(&full_prefix))
                    .and_then(|p| p.strip_suffix('/'));
                if let Some(name) = name.filter(|n| !n.is_empty()) {
                    out.push(name.to_owned());
                }
            }
        })
        .await?;
        out.sort();
        out.dedup();
        Ok(out)
    }

    /// Every page of the listing of `prefix` (relative to the target root),
    /// handed to `each` in turn.
    async fn each_page(
        &self,
        prefix: &str,
        delimiter: Option<&str>,
        mut each: impl FnMut(&aws_sdk_s3::operation::list_objects_v2::ListObjectsV2Output),
    ) -> Result<()> {
        let full_prefix = format!("{}{prefix}", self.full_key(""));
        let mut token = None;
        loop {
            let page = self
                .client
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(&full_prefix)
                .set_delimiter(delimiter.map(str::to_owned))
                .set_continuation_token(token)
                .send()
                .await
                .map_err(|e| {
                    self.error(
                        format!("cannot list `s3://{}/{full_prefix}`", self.bucket),
                        Failure::from(e),
                    )
                })?;
            each(&page);
            token = page.next_continuation_token().map(str::to_owned);
            if token.is_none() || page.is_truncated() != Some(true) {
                return Ok(());
            }
        }
    }
}
