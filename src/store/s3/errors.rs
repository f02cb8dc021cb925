//! How the SDK's failures become assetpub's errors: what a failed request
//! was (its code, status and explanation), which failures of a conditional
//! write are an answer rather than an error, and the error and hint each
//! other one becomes. The CloudFront client shares [`Failure`].

use std::error::Error as StdError;
use std::path::Path;

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};

use super::{ATTEMPTS, S3Store};
use crate::error::{Error, Result};
use crate::store::verified_body;
use crate::store::{Condition, PutOutcome};

/// What a failed request says, reduced to what the messages and the
/// outcome mapping need.
pub struct Failure {
    pub(super) status: Option<u16>,
    pub(crate) code: Option<String>,
    pub(super) message: Option<String>,
    pub(super) unreachable: bool,
    /// No answer within the attempt timeout, on every attempt.
    pub(super) timed_out: bool,
    /// "`path` changed on disk since it was hashed", when that is what
    /// stopped a streamed body.
    pub(super) changed: Option<String>,
}

impl<E> From<SdkError<E, HttpResponse>> for Failure
where
    E: ProvideErrorMetadata + StdError + Send + Sync + 'static,
{
    fn from(err: SdkError<E, HttpResponse>) -> Failure {
        let status = err.raw_response().map(|r| r.status().as_u16());
        let code = err.code().map(str::to_owned);
        let unreachable = matches!(
            err,
            SdkError::DispatchFailure(_) | SdkError::TimeoutError(_)
        );
        let timed_out = matches!(err, SdkError::TimeoutError(_));
        let message = match err.message() {
            Some(m) if !m.is_empty() => Some(one_line(m)),
            _ if status.is_some() => explanation(&err),
            _ => Some(match err.source() {
                Some(source) => chain(source),
                None => err.to_string(),
            }),
        };
        Failure {
            status,
            code,
            message,
            unreachable,
            timed_out,
            changed: changed_file(&err),
        }
    }
}

impl Failure {
    pub(super) fn is_missing_key(&self) -> bool {
        match self.code.as_deref() {
            Some("NoSuchKey" | "NotFound") => true,
            Some(_) => false,
            None => self.status == Some(404),
        }
    }

    pub(super) fn is_precondition_failure(&self) -> bool {
        self.status == Some(412)
            || self.code.as_deref() == Some("PreconditionFailed")
            || self.code.as_deref() == Some("ConditionalRequestConflict")
    }

    pub(crate) fn describe(&self) -> String {
        let message = self.message.as_deref();
        match (&self.code, self.status, message) {
            (Some(code), _, Some(message)) => format!("{code}: {message}"),
            (Some(code), _, None) => code.clone(),
            (None, Some(status), Some(message)) => format!("HTTP {status}: {message}"),
            (None, Some(status), None) => format!("HTTP {status}"),
            (None, None, message) => message.unwrap_or("unknown error").to_owned(),
        }
    }
}

/// What the SDK says about an answer that has a status but no message
/// from the store: why it could not read it (an answer it could not parse,
/// a body cut short). None when it says nothing beyond the status: an
/// answer without a body (a HEAD) is a bare status, and the SDK's
/// "unhandled error" wrapper around it adds nothing.
fn explanation<E>(err: &SdkError<E, HttpResponse>) -> Option<String>
where
    E: StdError + 'static,
{
    let start = match err {
        // The service error itself is the wrapper: its sources explain.
        SdkError::ServiceError(service) => service.err().source(),
        other => other.source(),
    };
    let mut parts: Vec<String> = Vec::new();
    let mut next = start;
    while let Some(e) = next {
        if e.downcast_ref::<aws_sdk_s3::error::ErrorMetadata>()
            .is_none()
        {
            let text = one_line(&e.to_string());
            if !text.is_empty() && !parts.iter().any(|p| p.contains(&text)) {
                parts.push(text);
            }
        }
        next = e.source();
    }
    (!parts.is_empty()).then(|| parts.join(": "))
}

/// An error and its sources on one line, without the repeats that wrapped
/// SDK errors tend to carry.
pub(super) fn chain(err: &(dyn StdError + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(err);
    while let Some(e) = next {
        let text = one_line(&e.to_string());
        if !text.is_empty() && !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        next = e.source();
    }
    parts.join(": ")
}

pub(super) fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// What a write's NoSuchKey refers to.
#[derive(PartialEq, Eq)]
pub(super) enum NoSuchKey {
    MeansDestination,
    MeansCopySource,
}

/// Whether a failed write is the store's answer that `condition` does not
/// hold: a failed conditional write is an answer, not an error.
pub(super) fn refused(condition: &Condition, no_such_key: NoSuchKey, f: &Failure) -> bool {
    match condition {
        Condition::None => false,
        Condition::IfAbsent => f.is_precondition_failure(),
        // S3 answers NoSuchKey when there is no object to match; for a
        // copy it means the source is missing, which is an error.
        // The source gone is the source not holding the version named.
        Condition::SourceIs(_) => f.is_precondition_failure() || f.is_missing_key(),
        Condition::IfMatch(_) => {
            f.is_precondition_failure()
                || (no_such_key == NoSuchKey::MeansDestination && f.is_missing_key())
        }
    }
}

impl S3Store {
    /// A failed conditional write is an answer, not an error.
    pub(super) fn write_failed<E>(
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
        if refused(condition, no_such_key, &f) {
            return Ok(PutOutcome::PreconditionFailed);
        }
        Err(self.error(action, f))
    }

    /// The error for a failed upload of the bytes of `path`: BadDigest on a
    /// file that was verified just before means it changed between hashing
    /// and sending, which the hint says.
    pub(super) fn upload_error(&self, action: String, f: Failure, path: &Path) -> Error {
        let bad_digest = f.code.as_deref() == Some("BadDigest");
        match self.error(action, f) {
            Error::Store(m) if bad_digest => Error::Store(format!(
                "{m}\nhint: `{}` probably changed while it was being published; run the build to completion, then publish again",
                path.display()
            )),
            e => e,
        }
    }

    pub(super) fn error(&self, action: String, f: Failure) -> Error {
        let code = f.code.as_deref().unwrap_or("");
        let detail = f.describe();
        if let Some(changed) = &f.changed {
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

/// "`path` changed on disk since it was hashed", when a streamed body
/// stopped because of that: its error is one of the failure's sources.
fn changed_file(err: &(dyn StdError + 'static)) -> Option<String> {
    let mut next = Some(err);
    while let Some(e) = next {
        if let Some(c) = e.downcast_ref::<verified_body::Changed>() {
            return Some(format!("`{}` {}", c.path.display(), verified_body::CHANGED));
        }
        next = e.source();
    }
    None
}
