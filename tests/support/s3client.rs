//! A plain, blocking S3 client for checking what a test server holds: the
//! tests look at the bucket through it, never through assetpub itself.

use std::collections::BTreeMap;

use aws_sdk_s3::Client;
use aws_sdk_s3::config::{
    BehaviorVersion, Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation,
};
use aws_sdk_s3::primitives::ByteStream;

use super::S3Server;

/// What HEAD returned for an object.
#[derive(Debug, Clone)]
pub struct Stat {
    pub size: u64,
    pub etag: String,
    pub content_type: Option<String>,
    pub cache_control: Option<String>,
    pub content_encoding: Option<String>,
    pub content_disposition: Option<String>,
    pub content_language: Option<String>,
    pub metadata: BTreeMap<String, String>,
    pub website_redirect_location: Option<String>,
}

pub struct S3Client {
    client: Client,
    runtime: tokio::runtime::Runtime,
    pub bucket: String,
}

impl S3Client {
    pub fn new(server: &S3Server, bucket: &str) -> S3Client {
        let config = aws_sdk_s3::config::Builder::new()
            .behavior_version(BehaviorVersion::latest())
            .credentials_provider(Credentials::new(
                &server.access_key,
                &server.secret_key,
                None,
                None,
                "test",
            ))
            .region(Region::new(server.region.clone()))
            .endpoint_url(&server.endpoint)
            .force_path_style(true)
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
            .build();
        S3Client {
            client: Client::from_conf(config),
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime"),
            bucket: bucket.to_string(),
        }
    }

    pub fn head(&self, key: &str) -> Option<Stat> {
        let r = self.runtime.block_on(
            self.client
                .head_object()
                .bucket(&self.bucket)
                .key(key)
                .send(),
        );
        match r {
            Ok(o) => Some(Stat {
                size: o.content_length().unwrap_or(0) as u64,
                etag: o.e_tag().unwrap_or_default().to_string(),
                content_type: o.content_type().map(String::from),
                cache_control: o.cache_control().map(String::from),
                content_encoding: o.content_encoding().map(String::from),
                content_disposition: o.content_disposition().map(String::from),
                content_language: o.content_language().map(String::from),
                metadata: o
                    .metadata()
                    .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                    .unwrap_or_default(),
                website_redirect_location: o.website_redirect_location().map(String::from),
            }),
            Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 404) => None,
            Err(e) => panic!("HEAD s3://{}/{key}: {e:?}", self.bucket),
        }
    }

    pub fn get(&self, key: &str) -> Option<Vec<u8>> {
        let r = self.runtime.block_on(
            self.client
                .get_object()
                .bucket(&self.bucket)
                .key(key)
                .send(),
        );
        match r {
            Ok(o) => Some(
                self.runtime
                    .block_on(o.body.collect())
                    .expect("read body")
                    .into_bytes()
                    .to_vec(),
            ),
            Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 404) => None,
            Err(e) => panic!("GET s3://{}/{key}: {e:?}", self.bucket),
        }
    }

    pub fn put(&self, key: &str, body: &[u8], content_type: &str) {
        self.runtime
            .block_on(
                self.client
                    .put_object()
                    .bucket(&self.bucket)
                    .key(key)
                    .content_type(content_type)
                    .body(ByteStream::from(body.to_vec()))
                    .send(),
            )
            .unwrap_or_else(|e| panic!("PUT s3://{}/{key}: {e:?}", self.bucket));
    }

    pub fn delete(&self, key: &str) {
        self.runtime
            .block_on(
                self.client
                    .delete_object()
                    .bucket(&self.bucket)
                    .key(key)
                    .send(),
            )
            .unwrap_or_else(|e| panic!("DELETE s3://{}/{key}: {e:?}", self.bucket));
    }

    /// Every key in the bucket, sorted.
    pub fn keys(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut token = None;
        loop {
            let page = self
                .runtime
                .block_on(
                    self.client
                        .list_objects_v2()
                        .bucket(&self.bucket)
                        .set_continuation_token(token.clone())
                        .send(),
                )
                .unwrap_or_else(|e| panic!("LIST s3://{}: {e:?}", self.bucket));
            out.extend(
                page.contents()
                    .iter()
                    .filter_map(|o| o.key().map(String::from)),
            );
            match page.next_continuation_token() {
                Some(t) => token = Some(t.to_string()),
                None => break,
            }
        }
        out.sort();
        out
    }

    /// Multipart uploads started and neither completed nor aborted.
    pub fn open_multipart_uploads(&self) -> usize {
        self.runtime
            .block_on(
                self.client
                    .list_multipart_uploads()
                    .bucket(&self.bucket)
                    .send(),
            )
            .map(|o| o.uploads().len())
            .unwrap_or_else(|e| panic!("list uploads of s3://{}: {e:?}", self.bucket))
    }
}

impl S3Client {
    /// The grantee URIs (groups) and ids with a grant on the object.
    pub fn grantees(&self, key: &str) -> Vec<String> {
        let acl = self
            .runtime
            .block_on(
                self.client
                    .get_object_acl()
                    .bucket(&self.bucket)
                    .key(key)
                    .send(),
            )
            .unwrap_or_else(|e| panic!("GET ACL of s3://{}/{key}: {e:?}", self.bucket));
        acl.grants()
            .iter()
            .filter_map(|g| g.grantee())
            .map(|g| g.uri().or(g.id()).unwrap_or_default().to_string())
            .collect()
    }
}
