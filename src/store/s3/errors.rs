//! How the SDK's failures become assetpub's errors: what a failed request
//! was (its code, status and explanation), and why no credentials were
//! found. The CloudFront client shares both.

use std::error::Error as StdError;

use aws_sdk_s3::config::ProvideCredentials;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};

use crate::error::{Error, Result};

pub async fn check_credentials(
    shared: &aws_config::SdkConfig,
    profile_name: &str,
    profile: &str,
) -> Result<()> {
    let looked_at = || {
        let config = std::env::var("AWS_CONFIG_FILE").unwrap_or_else(|_| "~/.aws/config".into());
        let credentials = std::env::var("AWS_SHARED_CREDENTIALS_FILE")
            .unwrap_or_else(|_| "~/.aws/credentials".into());
        let imds = match std::env::var("AWS_EC2_METADATA_DISABLED") {
            Ok(v) if v.eq_ignore_ascii_case("true") => " (disabled by AWS_EC2_METADATA_DISABLED)",
            _ => "",
        };
        format!(
            "looked at AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, {profile} in `{config}` and `{credentials}` (AWS_CONFIG_FILE, AWS_SHARED_CREDENTIALS_FILE), web identity (AWS_WEB_IDENTITY_TOKEN_FILE), container credentials and EC2 instance metadata (IMDS){imds}"
        )
    };
    let Some(provider) = shared.credentials_provider() else {
        return Err(Error::Config(format!(
            "no AWS credentials found: {}",
            looked_at()
        )));
    };
    match provider.provide_credentials().await {
        Ok(_) => Ok(()),
        // Matching on the Debug name avoids depending on aws-credential-types
        // just for the variant; nothing of the error is printed.
        Err(e) if format!("{e:?}").starts_with("CredentialsNotLoaded") => Err(Error::Config(
            format!("no AWS credentials found: {}", looked_at()),
        )),
        Err(e) => {
            // The wrapping layers only say that loading failed; the innermost
            // ones say why.
            let why = chain(&e)
                .split(": ")
                .filter(|part| !part.starts_with("an error occurred while"))
                .collect::<Vec<_>>()
                .join(": ");
            let sso = if why.contains("SSO") {
                format!(" (run `aws sso login --profile {profile_name}`)")
            } else {
                String::new()
            };
            Err(Error::Config(format!(
                "cannot load AWS credentials: {why}{sso}; {}",
                looked_at()
            )))
        }
    }
}

/// What a failed request says, reduced to what the messages and the
/// outcome mapping need.
pub struct Failure {
    pub(super) status: Option<u16>,
    pub(crate) code: Option<String>,
    pub(super) message: Option<String>,
    pub(super) unreachable: bool,
    /// No answer within the attempt timeout, on every attempt.
    pub(super) timed_out: bool,
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
        // A HEAD answer has no body, so a bare status is all there is; the
        // SDK's "unhandled error" wrapper adds nothing to it.
        let message = match err.message() {
            Some(m) if !m.is_empty() => Some(one_line(m)),
            _ if status.is_some() => None,
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
