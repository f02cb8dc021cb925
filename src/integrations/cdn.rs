//! CDN invalidation once a deploy is live: which URL paths changed between
//! two deploys, and telling CloudFront or the user's own command about them.
//!
//! Only names that keep their content across deploys can be stale in a
//! cache: stable keys (pages, robots.txt, ...) and the manifest. A
//! fingerprinted key never changes content, so it is never invalidated.

use std::collections::BTreeSet;

use aws_config::BehaviorVersion;
use aws_sdk_cloudfront::config::Region;
use aws_sdk_cloudfront::types::{InvalidationBatch, Paths};
use serde::Serialize;

use crate::error::{Error, Result};
use crate::remote::manifest::Manifest;
use crate::report::Reporter;
use crate::settings::{Cdn, CdnProvider, Config};
use crate::store::s3::{Failure, check_credentials};
use crate::util::percent_encode_path;

/// What was sent to the CDN (`--json` prints it under `invalidation`).
#[derive(Debug, Clone, Serialize)]
pub struct Invalidation {
    /// `cloudfront` or `command`.
    pub provider: &'static str,
    /// The paths sent, each starting with `/`: the changed ones, or one
    /// wildcard for the prefix when more than `[cdn] max_paths` changed.
    pub paths: Vec<String>,
    /// How many paths changed (more than `paths` holds after a wildcard).
    pub changed_paths: usize,
    pub wildcard: bool,
    pub distribution_id: Option<String>,
    /// CloudFront's id for the invalidation.
    pub id: Option<String>,
    /// CloudFront's status for it, e.g. `InProgress`.
    pub status: Option<String>,
    /// Why the invalidation failed; the deploy is live regardless.
    pub error: Option<String>,
}

impl Invalidation {
    /// The error that fails the run when the CDN could not be told, saying
    /// that the deploy itself went live.
    pub fn failure(&self, deploy: &str, target: &str) -> Option<Error> {
        let why = self.error.as_deref()?;
        Some(
            Error::Runtime(format!(
                "CDN invalidation failed: {why}\ndeploy `{deploy}` is live at {target}, but CDN caches may serve the old files until they expire"
            ))
            .with_hint(format!(
                "invalidate these paths by hand: {}",
                self.paths.join(" ")
            )),
        )
    }

    /// One line for the human output of publish and rollback.
    pub fn render(&self) -> String {
        const SHOWN: usize = 5;
        let mut paths = self
            .paths
            .iter()
            .take(SHOWN)
            .cloned()
            .collect::<Vec<_>>()
            .join(", ");
        if self.paths.len() > SHOWN {
            paths.push_str(&format!(", ... ({} more)", self.paths.len() - SHOWN));
        }
        let what = match (self.wildcard, self.paths.len()) {
            (true, _) => format!("{} changed paths, sent as {paths}", self.changed_paths),
            (false, 1) => format!("1 path: {paths}"),
            (false, n) => format!("{n} paths: {paths}"),
        };
        let done = match (&self.error, &self.id) {
            (Some(_), _) => format!(
                "{} invalidation FAILED (see the error below)",
                self.provider
            ),
            (None, Some(id)) => format!(
                "CloudFront invalidation `{id}` on distribution `{}` ({})",
                self.distribution_id.as_deref().unwrap_or("?"),
                self.status.as_deref().unwrap_or("?")
            ),
            (None, None) => "`[cdn] command` ran".to_string(),
        };
        format!("CDN: {done}, {what}")
    }
}

/// The keys whose content a cache may hold stale once `after` replaces
/// `before`: stable keys that are new, changed (bytes or headers) or gone,
/// the directory of each such index page (caches key `/blog/` apart from
/// `/blog/index.html`), and the manifest. Relative to the target's prefix;
/// a directory ends with `/` (`""` is the root).
pub fn changed_keys(
    before: Option<&Manifest>,
    after: &Manifest,
    manifest_key: &str,
) -> Vec<String> {
    // Another object layout rewrote every stable key.
    let relaid =
        before.is_none_or(|b| b.sidecars != after.sidecars || b.encoding != after.encoding);
    let mut keys = BTreeSet::new();
    for (logical, entry) in &after.files {
        if entry.is_stable() && (relaid || before.and_then(|b| b.files.get(logical)) != Some(entry))
        {
            keys.insert(entry.key.clone());
        }
    }
    for (logical, entry) in before.map(|b| &b.files).into_iter().flatten() {
        if entry.is_stable() && !after.files.contains_key(logical) {
            keys.insert(entry.key.clone());
        }
    }
    let directories: Vec<String> = keys
        .iter()
        .filter_map(|k| {
            let (dir, name) = k.rsplit_once('/').map_or(("", k.as_str()), |(d, n)| (d, n));
            matches!(name, "index.html" | "index.htm").then(|| {
                if dir.is_empty() {
                    String::new()
                } else {
                    format!("{dir}/")
                }
            })
        })
        .collect();
    keys.extend(directories);
    keys.insert(manifest_key.to_string());
    keys.into_iter().collect()
}

/// `/`-rooted, percent-encoded paths for `keys` under the CDN's prefix, or
/// the prefix's wildcard alone when there are more than `max_paths`.
pub fn paths(cdn: &Cdn, keys: &[String]) -> (Vec<String>, bool) {
    let root = if cdn.path_prefix.is_empty() {
        "/".to_string()
    } else {
        format!("/{}/", percent_encode_path(&cdn.path_prefix))
    };
    if keys.len() > cdn.max_paths {
        return (vec![format!("{root}*")], true);
    }
    // `*` is CloudFront's wildcard, so a key holding one is encoded.
    let paths = keys
        .iter()
        .map(|k| format!("{root}{}", percent_encode_path(k)))
        .collect();
    (paths, false)
}

/// Tells the configured CDN what changed between `before` and `after`,
/// which is live. Never fails: a failure is recorded in the result, as the
/// deploy stands either way.
pub async fn invalidate(
    config: &Config,
    reporter: &dyn Reporter,
    cdn: &Cdn,
    before: Option<&Manifest>,
    after: &Manifest,
) -> Invalidation {
    let mut keys = changed_keys(before, after, &config.manifest_key);
    // Django's staticfiles.json changes with the manifest.
    if config.django {
        keys.push(crate::remote::django::KEY.to_string());
        keys.sort();
    }
    let (paths, wildcard) = paths(cdn, &keys);
    let mut out = Invalidation {
        provider: cdn.provider.name(),
        paths,
        changed_paths: keys.len(),
        wildcard,
        distribution_id: None,
        id: None,
        status: None,
        error: None,
    };
    let result = match &cdn.provider {
        CdnProvider::CloudFront {
            distribution_id,
            region,
            endpoint,
            profile,
        } => {
            out.distribution_id = Some(distribution_id.clone());
            let settings = CloudFront {
                distribution_id,
                region: region.as_deref(),
                endpoint: endpoint.as_deref(),
                profile: profile.as_deref(),
            };
            settings
                .invalidate(&out.paths, &after.deploy)
                .await
                .map(|(id, status)| {
                    out.id = Some(id);
                    out.status = Some(status);
                })
        }
        CdnProvider::Command { argv, dir } => {
            run_command(config, reporter, argv, dir, &out.paths, &after.deploy).await
        }
    };
    if let Err(e) = result {
        out.error = Some(e.to_string());
    }
    out
}

struct CloudFront<'a> {
    distribution_id: &'a str,
    region: Option<&'a str>,
    endpoint: Option<&'a str>,
    profile: Option<&'a str>,
}

impl CloudFront<'_> {
    /// Returns the invalidation's id and status.
    async fn invalidate(&self, paths: &[String], deploy: &str) -> Result<(String, String)> {
        let mut loader = aws_config::defaults(BehaviorVersion::latest());
        if let Some(profile) = self.profile {
            loader = loader.profile_name(profile);
        }
        if let Some(region) = self.region {
            loader = loader.region(Region::new(region.to_string()));
        }
        if let Some(endpoint) = self.endpoint {
            loader = loader.endpoint_url(endpoint);
        }
        let shared = loader.load().await;
        let (profile_name, origin) = match (self.profile, std::env::var("AWS_PROFILE")) {
            (Some(p), _) => (p.to_string(), "`[cdn] profile`"),
            (None, Ok(p)) => (p, "AWS_PROFILE"),
            (None, Err(_)) => ("default".to_string(), "AWS_PROFILE"),
        };
        check_credentials(
            &shared,
            &profile_name,
            &format!("profile `{profile_name}` ({origin})"),
        )
        .await?;
        // CloudFront is global and signs in us-east-1 whatever the region;
        // the SDK still wants one.
        let region = shared
            .region()
            .cloned()
            .unwrap_or(Region::from_static("us-east-1"));
        let client = aws_sdk_cloudfront::Client::from_conf(
            aws_sdk_cloudfront::config::Builder::from(&shared)
                .region(region)
                .build(),
        );
        let what = format!("CloudFront distribution `{}`", self.distribution_id);
        let items = Paths::builder()
            .quantity(paths.len() as i32)
            .set_items(Some(paths.to_vec()))
            .build()
            .map_err(|e| Error::Runtime(format!("invalidation for {what}: {e}")))?;
        // Unique per call: CloudFront treats a reused reference with other
        // paths as an error, and the same deploy can go live twice (rollback
        // and back).
        let reference = format!("assetpub-{deploy}-{}", crate::util::now_ns());
        let batch = InvalidationBatch::builder()
            .paths(items)
            .caller_reference(reference)
            .build()
            .map_err(|e| Error::Runtime(format!("invalidation for {what}: {e}")))?;
        let sent = client
            .create_invalidation()
            .distribution_id(self.distribution_id)
            .invalidation_batch(batch)
            .send()
            .await
            .map_err(|e| {
                let failure = Failure::from(e);
                let hint = match failure.code.as_deref() {
                    Some("NoSuchDistribution") => {
                        " (check `[cdn] distribution_id` and the AWS account the credentials belong to)"
                    }
                    Some("AccessDenied") => {
                        " (the credentials need cloudfront:CreateInvalidation on it)"
                    }
                    Some("TooManyInvalidationsInProgress") => {
                        " (wait for running invalidations to finish, or lower `[cdn] max_paths` so a wildcard is sent)"
                    }
                    _ => "",
                };
                Error::Store(format!(
                    "cannot invalidate {what}: {}{hint}",
                    failure.describe()
                ))
            })?;
        let invalidation = sent.invalidation.ok_or_else(|| {
            Error::Store(format!(
                "{what} accepted the invalidation but returned no id"
            ))
        })?;
        Ok((invalidation.id, invalidation.status))
    }
}

/// Runs `[cdn] command` with the paths appended as arguments, in the config
/// file's directory, with `ASSETPUB_DEPLOY` naming the live deploy. Its
/// output is kept off stdout, which belongs to assetpub's own (`--json`).
async fn run_command(
    config: &Config,
    reporter: &dyn Reporter,
    argv: &[String],
    dir: &std::path::Path,
    paths: &[String],
    deploy: &str,
) -> Result<()> {
    let program = &argv[0];
    let mut command = tokio::process::Command::new(program);
    command
        .args(&argv[1..])
        .args(paths)
        .current_dir(dir)
        .env("ASSETPUB_DEPLOY", deploy)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    if let Some(env) = &config.env {
        command.env("ASSETPUB_ENV", env);
    }
    let output = command.output().await.map_err(|e| {
        Error::Runtime(format!(
            "cannot run `[cdn] command` `{program}`: {e}{}",
            if e.kind() == std::io::ErrorKind::NotFound {
                " (is it installed, and in PATH or relative to publish.toml?)"
            } else {
                ""
            }
        ))
    })?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    for line in stdout.lines().chain(stderr.lines()) {
        reporter.info(&format!("{program}: {line}"));
    }
    if output.status.success() {
        return Ok(());
    }
    let status = match output.status.code() {
        Some(code) => format!("exited with status {code}"),
        None => "was killed by a signal".to_string(),
    };
    let said: Vec<&str> = if stderr.trim().is_empty() {
        stdout.lines().collect()
    } else {
        stderr.lines().collect()
    };
    let tail = said[said.len().saturating_sub(5)..].join("\n  ");
    Err(Error::Runtime(if tail.trim().is_empty() {
        format!("`{program}` {status}")
    } else {
        format!("`{program}` {status}:\n  {tail}")
    }))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::remote::manifest::{Entry, FORMAT_VERSION};

    fn entry(key: &str, object: Option<&str>, blake3: &str) -> Entry {
        Entry {
            key: key.to_string(),
            object: object.map(String::from),
            blake3: blake3.to_string(),
            size: 1,
            integrity: String::new(),
            written: Default::default(),
            content_type: "text/html".to_string(),
            cache_control: "public, max-age=0, must-revalidate".to_string(),
            encodings: BTreeMap::new(),
            content_disposition: None,
            content_language: None,
            metadata: BTreeMap::new(),
        }
    }

    fn manifest(deploy: &str, files: &[(&str, Entry)]) -> Manifest {
        Manifest {
            version: FORMAT_VERSION,
            deploy: deploy.to_string(),
            parent: None,
            created: "2026-01-01T00:00:00.000Z".to_string(),
            commit: None,
            ci_run: None,
            message: None,
            sidecars: false,
            encoding: "identity".to_string(),
            files: files
                .iter()
                .map(|(l, e)| (l.to_string(), e.clone()))
                .collect(),
            switching: None,
            conditional_writes: None,
            expires: None,
            redirects: Vec::new(),
            headers: Vec::new(),
        }
    }

    fn stable<'a>(logical: &'a str, hash: &str) -> (&'a str, Entry) {
        let object = crate::remote::manifest::fingerprinted_name(logical, hash);
        (logical, entry(logical, Some(&object), hash))
    }

    fn fingerprinted<'a>(logical: &'a str, hash: &str) -> (&'a str, Entry) {
        let key = crate::remote::manifest::fingerprinted_name(logical, hash);
        (logical, entry(&key, None, hash))
    }

    const A: &str = "aaaaaaaaaaaaaaaa";
    const B: &str = "bbbbbbbbbbbbbbbb";

    #[test]
    fn only_changed_stable_keys_and_the_manifest() {
        let before = manifest(
            "1",
            &[
                stable("index.html", A),
                stable("about.html", A),
                stable("old.html", A),
                stable("robots.txt", A),
                fingerprinted("css/app.css", A),
            ],
        );
        let mut headers = stable("robots.txt", A).1;
        headers.cache_control = "public, max-age=60".to_string();
        let after = manifest(
            "2",
            &[
                stable("index.html", A),
                stable("about.html", B),
                stable("blog/index.html", B),
                ("robots.txt", headers),
                fingerprinted("css/app.css", B),
                fingerprinted("js/new.js", B),
            ],
        );
        assert_eq!(
            changed_keys(Some(&before), &after, "manifest.json"),
            [
                "about.html",
                "blog/",
                "blog/index.html",
                "manifest.json",
                "old.html",
                "robots.txt"
            ]
        );
    }

    #[test]
    fn a_changed_root_page_names_the_root_too() {
        let before = manifest("1", &[stable("index.html", A)]);
        let after = manifest("2", &[stable("index.html", B)]);
        assert_eq!(
            changed_keys(Some(&before), &after, "manifest.json"),
            ["", "index.html", "manifest.json"]
        );
    }

    #[test]
    fn a_new_layout_or_a_first_deploy_changes_every_stable_key() {
        let files = [stable("a.html", A), fingerprinted("b.css", A)];
        let before = manifest("1", &files);
        let mut after = manifest("2", &files);
        assert_eq!(
            changed_keys(Some(&before), &after, "m.json"),
            ["m.json"],
            "nothing changed but the manifest"
        );
        after.sidecars = true;
        assert_eq!(
            changed_keys(Some(&before), &after, "m.json"),
            ["a.html", "m.json"]
        );
        assert_eq!(changed_keys(None, &before, "m.json"), ["a.html", "m.json"]);
    }

    fn cdn(prefix: &str, max_paths: usize) -> Cdn {
        Cdn {
            provider: CdnProvider::Command {
                argv: vec!["true".into()],
                dir: ".".into(),
            },
            max_paths,
            path_prefix: prefix.to_string(),
        }
    }

    #[test]
    fn paths_are_rooted_under_the_prefix_and_encoded() {
        let keys: Vec<String> = ["", "a b/index.html", "x*.html", "manifest.json"]
            .map(String::from)
            .to_vec();
        assert_eq!(
            paths(&cdn("site", 10), &keys),
            (
                vec![
                    "/site/".to_string(),
                    "/site/a%20b/index.html".to_string(),
                    "/site/x%2A.html".to_string(),
                    "/site/manifest.json".to_string()
                ],
                false
            )
        );
        assert_eq!(paths(&cdn("", 10), &keys).0[3], "/manifest.json");
    }

    #[test]
    fn more_than_max_paths_is_one_wildcard() {
        let keys: Vec<String> = (0..4).map(|i| format!("{i}.html")).collect();
        assert_eq!(paths(&cdn("site", 4), &keys).0.len(), 4);
        assert_eq!(
            paths(&cdn("site", 3), &keys),
            (vec!["/site/*".to_string()], true)
        );
        assert_eq!(paths(&cdn("", 3), &keys).0, ["/*"]);
    }
}
