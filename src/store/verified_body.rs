//! A request body streamed from a slice of a file that proves, as it goes,
//! that the bytes sent are the bytes that were hashed.
//!
//! The MD5 of the slice is known before the request starts (it was computed
//! in the same read that checked the file's blake3). The body hashes what it
//! reads and, when the last chunk is in hand, compares: on a mismatch it
//! fails instead of yielding that chunk, so the store never receives a
//! complete body and stores nothing. Stores that check `Content-MD5` would
//! refuse such a body too, but not every store does, and a file rewritten
//! between hashing and upload must never be published under the old hash.

use std::io::{Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{Context, Poll};

use aws_sdk_s3::primitives::{ByteStream, SdkBody};
use base64::Engine as _;
use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use md5::{Digest as _, Md5};
use tokio::io::{AsyncRead, ReadBuf};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

const CHUNK: usize = 256 * 1024;

/// What [`Changed`] says after the file's name.
pub const CHANGED: &str = "changed on disk since it was hashed";

/// The error a body gives when the file no longer holds the hashed bytes.
/// The store finds it among the sources of the request's failure to say so
/// plainly.
#[derive(Debug)]
pub struct Changed {
    pub path: PathBuf,
    /// It ended before the slice did.
    shorter: bool,
}

impl std::fmt::Display for Changed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "`{}` {CHANGED}", self.path.display())?;
        if self.shorter {
            f.write_str(" (it is shorter)")?;
        }
        Ok(())
    }
}

impl std::error::Error for Changed {}

/// `length` bytes of `path` from `offset`, checked against `md5` (base64).
/// Retryable: each attempt reopens the file and checks again.
pub fn stream(path: &Path, offset: u64, length: u64, md5: String) -> ByteStream {
    let path = path.to_path_buf();
    ByteStream::new(SdkBody::retryable(move || {
        SdkBody::from_body_1_x(VerifiedFile::open(
            path.clone(),
            offset,
            length,
            md5.clone(),
        ))
    }))
}

struct VerifiedFile {
    path: PathBuf,
    file: Option<tokio::fs::File>,
    error: Option<String>,
    remaining: u64,
    md5: Md5,
    expected: String,
}

impl VerifiedFile {
    fn open(path: PathBuf, offset: u64, length: u64, expected: String) -> VerifiedFile {
        // Opening and seeking are single quick syscalls; the reads, which
        // can block, go through tokio's file.
        let opened = std::fs::File::open(&path).and_then(|mut f| {
            f.seek(SeekFrom::Start(offset))?;
            Ok(f)
        });
        let (file, error) = match opened {
            Ok(f) => (Some(tokio::fs::File::from_std(f)), None),
            Err(e) => (None, Some(format!("cannot read `{}`: {e}", path.display()))),
        };
        VerifiedFile {
            path,
            file,
            error,
            remaining: length,
            md5: Md5::new(),
            expected,
        }
    }

    fn fail(&mut self, error: BoxError) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        self.remaining = 0;
        self.file = None;
        Poll::Ready(Some(Err(error)))
    }

    fn changed(&mut self, shorter: bool) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let path = self.path.clone();
        self.fail(Box::new(Changed { path, shorter }))
    }
}

impl Body for VerifiedFile {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        if let Some(e) = this.error.take() {
            return this.fail(e.into());
        }
        if this.remaining == 0 {
            return Poll::Ready(None);
        }
        let Some(file) = this.file.as_mut() else {
            return Poll::Ready(None);
        };
        let want = (this.remaining).min(CHUNK as u64) as usize;
        let mut buf = vec![0u8; want];
        let mut read = ReadBuf::new(&mut buf);
        match Pin::new(file).poll_read(cx, &mut read) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Err(e)) => {
                let message = format!("cannot read `{}`: {e}", this.path.display());
                this.fail(message.into())
            }
            Poll::Ready(Ok(())) => {
                let n = read.filled().len();
                if n == 0 {
                    return this.changed(true);
                }
                buf.truncate(n);
                this.md5.update(&buf);
                this.remaining -= n as u64;
                if this.remaining == 0 {
                    let got = base64::engine::general_purpose::STANDARD
                        .encode(std::mem::take(&mut this.md5).finalize());
                    if got != this.expected {
                        return this.changed(false);
                    }
                    this.file = None;
                }
                Poll::Ready(Some(Ok(Frame::data(Bytes::from(buf)))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.remaining == 0 && self.error.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn md5_of(bytes: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(Md5::digest(bytes))
    }

    async fn collect(s: ByteStream) -> Result<Vec<u8>, String> {
        s.collect()
            .await
            .map(|b| b.into_bytes().to_vec())
            .map_err(|e| {
                let mut text = e.to_string();
                let mut source = std::error::Error::source(&e);
                while let Some(s) = source {
                    text.push_str(&format!(": {s}"));
                    source = s.source();
                }
                text
            })
    }

    #[tokio::test]
    async fn a_slice_with_the_hashed_bytes_streams_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let data: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &data).unwrap();
        let slice = &data[300_000..900_000];
        let got = collect(stream(&path, 300_000, 600_000, md5_of(slice))).await;
        assert_eq!(got.unwrap(), slice);
    }

    #[tokio::test]
    async fn other_bytes_fail_before_the_body_completes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, vec![1u8; 700_000]).unwrap();
        let err = collect(stream(&path, 0, 700_000, md5_of(&[2u8; 700_000]))).await;
        assert!(err.unwrap_err().contains(CHANGED));
        // A file that shrank is caught too.
        let err = collect(stream(&path, 0, 800_000, md5_of(&[1u8; 800_000]))).await;
        assert!(err.unwrap_err().contains(CHANGED));
    }

    #[tokio::test]
    async fn a_changed_file_is_found_among_the_error_sources() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, vec![1u8; 1000]).unwrap();
        let err = stream(&path, 0, 1000, md5_of(&[2u8; 1000]))
            .collect()
            .await
            .unwrap_err();
        let mut next: Option<&(dyn std::error::Error + 'static)> = Some(&err);
        let mut found = None;
        while let Some(e) = next {
            if let Some(c) = e.downcast_ref::<Changed>() {
                found = Some(c.path.clone());
            }
            next = e.source();
        }
        assert_eq!(found, Some(path));
    }
}
