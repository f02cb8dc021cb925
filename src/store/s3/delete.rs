//! Deleting objects, up to a thousand a request.

use aws_sdk_s3::types::{Delete, ObjectIdentifier};

use super::S3Store;
use super::errors::Failure;
use crate::error::{Error, Result};

const DELETE_BATCH: usize = 1000;

impl S3Store {
    /// One DeleteObject with `If-Match`: false when the object is gone or
    /// holds another version.
    pub(super) async fn delete_if_match(&self, key: &str, etag: &str) -> Result<bool> {
        let sent = self
            .client
            .delete_object()
            .bucket(&self.bucket)
            .key(self.full_key(key))
            .if_match(etag)
            .send()
            .await;
        match sent {
            Ok(_) => Ok(true),
            Err(e) => {
                let f = Failure::from(e);
                if f.is_precondition_failure() || f.is_missing_key() {
                    Ok(false)
                } else {
                    Err(self.error(format!("cannot delete `{}`", self.url(key)), f))
                }
            }
        }
    }

    pub(super) async fn delete(&self, keys: &[String]) -> Result<()> {
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
}
