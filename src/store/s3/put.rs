//! Writing an object: one request for a buffer or a file up to the
//! multipart threshold, a multipart upload above it. A file is read once
//! before it is sent, to check it still has the blake3 it was published
//! under and to compute the Content-MD5 of each request; what is sent is
//! checked against that MD5 as it goes (`verified_body`).

use std::error::Error as StdError;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use aws_sdk_s3::Client;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use base64::Engine as _;

use crate::concurrency::limited;
use md5::{Digest as _, Md5};

use super::errors::{Failure, NoSuchKey, refused};
use super::{S3Store, condition_headers, user_metadata};
use crate::error::{Error, Result};
use crate::store::verified_body;
use crate::store::{Body, Condition, ObjectMeta, PutOutcome, TransferObserver};

/// Files up to this size are sent from the buffer they were verified in.
const BUFFERED_MAX: u64 = 8 * 1024 * 1024;
/// Larger files go up in parts, so a failure costs one part, not the object.
const MULTIPART_MIN: u64 = 64 * 1024 * 1024;
const PART_SIZE: u64 = 16 * 1024 * 1024;
const MAX_PARTS: u64 = 10_000;
/// Object-level concurrency is bounded by the caller; this bounds the parts
/// of one object on top of it.
pub(super) const MAX_PART_CONCURRENCY: usize = 8;
/// How much of a file is read at a time to hash it before sending.
const READ_STEP: u64 = 4 * 1024 * 1024;

// UNSIGNED: object bodies are sent with `x-amz-content-sha256:
// UNSIGNED-PAYLOAD`. Every one carries a Content-MD5, which the signature
// covers and the store checks against the bytes it receives, so a body
// changed on the way is still refused; signing the payload as well would
// hash every byte a third time (after blake3 and MD5) on the CPU the store
// shares on a small runner.

impl S3Store {
    pub(super) async fn put(
        &self,
        key: &str,
        body: Body,
        meta: &ObjectMeta,
        condition: Condition,
        observer: &dyn TransferObserver,
    ) -> Result<PutOutcome> {
        match body {
            Body::Bytes(bytes) => {
                let len = bytes.len() as u64;
                let outcome = self
                    .put_bytes(key, bytes, meta, &condition)
                    .await
                    .map_err(|f| self.error(self.write_action(key), f))?;
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
                    .map_err(|f| self.upload_error(self.write_action(key), f, &path))?;
                observer.bytes_sent(size);
                Ok(outcome)
            }
        }
    }

    /// One request with the bytes of a buffer. A failure is handed back as
    /// the store gave it, for the caller to judge or turn into an error.
    pub(super) async fn put_bytes(
        &self,
        key: &str,
        bytes: Arc<Vec<u8>>,
        meta: &ObjectMeta,
        condition: &Condition,
    ) -> std::result::Result<PutOutcome, Failure> {
        let md5 = md5_base64(&bytes);
        let len = bytes.len() as u64;
        let stream = ByteStream::from(Arc::unwrap_or_clone(bytes));
        self.put_single(key, (stream, len), md5, meta, condition)
            .await
    }

    /// How a failed single-request write is named in its error.
    pub(super) fn write_action(&self, key: &str) -> String {
        format!("cannot write `{}`", self.url(key))
    }

    /// One PutObject request; a refused condition is an answer, any other
    /// failure is handed back as the store gave it.
    async fn put_single(
        &self,
        key: &str,
        (body, len): (ByteStream, u64),
        md5: String,
        meta: &ObjectMeta,
        condition: &Condition,
    ) -> std::result::Result<PutOutcome, Failure> {
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
            .set_website_redirect_location(meta.website_redirect_location.clone())
            .set_metadata(user_metadata(meta))
            .set_acl(self.acl.clone())
            .set_if_none_match(if_none_match)
            .set_if_match(if_match)
            .customize()
            // See `UNSIGNED`: the signed Content-MD5 vouches for the body.
            .disable_payload_signing()
            .config_override(self.upload_timeouts(len))
            .send()
            .await;
        match sent {
            Ok(out) => Ok(PutOutcome::Written {
                etag: out.e_tag().map(str::to_owned),
            }),
            Err(e) => {
                let f = Failure::from(e);
                if refused(condition, NoSuchKey::MeansDestination, &f) {
                    return Ok(PutOutcome::PreconditionFailed);
                }
                Err(f)
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
            Condition::None | Condition::SourceIs(_) => true,
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
            .set_website_redirect_location(meta.website_redirect_location.clone())
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
        let mut parts = limited(
            self.part_concurrency,
            md5s.into_iter().enumerate(),
            |(index, md5)| {
                let offset = index as u64 * part_size;
                let length = part_size.min(size - offset);
                let request = self
                    .client
                    .upload_part()
                    .bucket(&self.bucket)
                    .key(full_key.as_str())
                    .upload_id(upload_id.as_str())
                    .part_number(index as i32 + 1)
                    .content_md5(md5.clone());
                let timeouts = self.upload_timeouts(length);
                let body = verified_body::stream(path, offset, length, md5);
                async move {
                    let sent = request
                        .body(body)
                        .customize()
                        .disable_payload_signing()
                        .config_override(timeouts)
                        .send()
                        .await;
                    Ok::<_, PartError>((index as i32 + 1, length, sent?))
                }
            },
        );
        let mut done = Vec::new();
        // The first failure returns at once; dropping `parts` cancels the
        // parts still in flight (the upload is aborted by the caller).
        while let Some(joined) = parts.next().await {
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
                    let action = format!("cannot upload a part of `{}`", self.url(key));
                    return Err(self.upload_error(action, f, path));
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

/// The MD5 (hex) of the file at `path`, read the way an upload reads it
/// (once, and refused when it no longer hashes to `blake3`): the ETag S3
/// gives the file written in one request.
pub fn file_md5_hex(path: &Path, size: u64, blake3: &str) -> Result<String> {
    let (md5s, _) = hash_file(path, size, blake3, size.max(1), false)?;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(&md5s[0])
        .expect("an MD5 this function encoded");
    Ok(raw.iter().map(|b| format!("{b:02x}")).collect())
}

fn md5_base64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(Md5::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::{file_md5_hex, part_size};

    #[test]
    fn a_files_md5_is_the_etag_s3_gives_it_and_a_changed_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("index.html");
        std::fs::write(&path, b"hello").unwrap();
        let b3 = blake3::hash(b"hello").to_hex().to_string();
        assert_eq!(
            file_md5_hex(&path, 5, &b3).unwrap(),
            "5d41402abc4b2a76b9719d911017c592"
        );
        std::fs::write(&path, b"HELLO").unwrap();
        let e = file_md5_hex(&path, 5, &b3).unwrap_err().to_string();
        assert!(e.contains("changed while it was being published"), "{e}");
    }

    #[test]
    fn parts_stay_under_the_part_limit() {
        assert_eq!(part_size(70 * 1024 * 1024), 16 * 1024 * 1024);
        let huge = 5 * 1024 * 1024 * 1024 * 1024u64;
        assert!(huge.div_ceil(part_size(huge)) <= 10_000);
    }
}
