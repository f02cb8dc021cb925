//! How an S3 target is reached: its settings, the client built from them
//! (retries, timeouts, checksums), the credentials it finds, and the attempt
//! timeout a request gets for the bytes it sends.

use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_credential_types::provider::error::CredentialsError;
use aws_sdk_s3::Client;
use aws_sdk_s3::config::ProvideCredentials;
use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{Region, RequestChecksumCalculation, ResponseChecksumValidation};
use aws_sdk_s3::types::ObjectCannedAcl;

use super::errors::chain;
use super::put::MAX_PART_CONCURRENCY;
use super::{ATTEMPTS, S3Store};
use crate::error::{Error, Result};

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
    pub(super) fn upload_timeouts(&self, body_len: u64) -> aws_sdk_s3::config::Builder {
        self.attempt_timeout(upload_attempt_timeout(self.request_timeout, body_len))
    }

    /// A server-side copy sends no body but the store answers only once it
    /// has copied the object, which can be large.
    pub(super) fn copy_timeouts(&self) -> aws_sdk_s3::config::Builder {
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
}

/// The request timeout, plus the time the body takes at the slowest upload
/// rate still taken for a working link.
fn upload_attempt_timeout(request_timeout: Duration, body_len: u64) -> Duration {
    request_timeout
        + Duration::from_millis(body_len.saturating_mul(1000) / SLOWEST_UPLOAD_BYTES_PER_SEC)
}

/// Whether the profile in use gets its credentials through IAM Identity
/// Center (SSO), read from the shared config files as the SDK reads them.
async fn uses_sso(profile_name: &str) -> bool {
    let profiles = aws_config::profile::load(
        &aws_types::os_shim_internal::Fs::real(),
        &aws_types::os_shim_internal::Env::real(),
        &aws_runtime::env_config::file::EnvConfigFiles::default(),
        Some(std::borrow::Cow::Owned(profile_name.to_string())),
    )
    .await;
    profiles.ok().and_then(|set| {
        set.get_profile(profile_name).map(|p| {
            ["sso_session", "sso_start_url", "sso_account_id"]
                .iter()
                .any(|k| p.get(k).is_some())
        })
    }) == Some(true)
}

/// Fails with one plain line when the SDK's chain finds no credentials, or
/// cannot load them, saying where it looked. The CloudFront client uses it
/// too.
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
        Err(CredentialsError::CredentialsNotLoaded(_)) => Err(Error::Config(format!(
            "no AWS credentials found: {}",
            looked_at()
        ))),
        Err(e) => {
            // The wrapping layers only say that loading failed; the innermost
            // ones say why.
            let why = chain(&e)
                .split(": ")
                .filter(|part| !part.starts_with("an error occurred while"))
                .collect::<Vec<_>>()
                .join(": ");
            let sso = if uses_sso(profile_name).await {
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

#[cfg(test)]
mod tests {
    use super::{Duration, SLOWEST_UPLOAD_BYTES_PER_SEC, upload_attempt_timeout};

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
}
