//! Server-side copy: an object to another key with new headers, so that a
//! rollback or a header change never needs the build. No bytes are sent.

use aws_sdk_s3::types::MetadataDirective;

use super::errors::NoSuchKey;
use super::{S3Store, condition_headers, user_metadata};
use crate::error::Result;
use crate::store::{Condition, ObjectMeta, PutOutcome};
use crate::util::percent_encode_path;

impl S3Store {
    pub(super) async fn copy(
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
            .set_copy_source_if_match(match &condition {
                Condition::SourceIs(etag) => Some(etag.clone()),
                _ => None,
            })
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
}

#[cfg(test)]
mod tests {
    use super::percent_encode_path;

    #[test]
    fn copy_source_keeps_slashes_and_encodes_the_rest() {
        assert_eq!(
            percent_encode_path("bucket/site/a b/ü+x.css"),
            "bucket/site/a%20b/%C3%BC%2Bx.css"
        );
    }
}
