//! Whether the bucket enforces conditional writes: some S3-compatible stores
//! accept `If-None-Match` and ignore it, so a second create of one key is
//! tried on a throwaway key the caller names.

use std::sync::Arc;

use super::S3Store;
use crate::error::Result;
use crate::store::{Condition, ObjectMeta, PutOutcome};

impl S3Store {
    pub(super) async fn probe(&self, key: &str) -> Result<bool> {
        let body = || Arc::new(b"conditional write probe\n".to_vec());
        let meta = ObjectMeta {
            cache_control: Some("no-store".to_owned()),
            ..ObjectMeta::default()
        };
        let failed = |f| self.error(self.write_action(key), f);
        let first = self.put_bytes(key, body(), &meta, &Condition::IfAbsent);
        let enforced = match first.await {
            Ok(_) => {
                let second = self.put_bytes(key, body(), &meta, &Condition::IfAbsent);
                second
                    .await
                    .map(|o| o == PutOutcome::PreconditionFailed)
                    .map_err(failed)
            }
            // A store that refuses the header outright does not enforce it.
            Err(f) if f.code.as_deref() == Some("NotImplemented") => Ok(false),
            Err(f) => Err(failed(f)),
        };
        let cleaned = self.delete(&[key.to_owned()]).await;
        let enforced = enforced?;
        cleaned?;
        Ok(enforced)
    }
}
