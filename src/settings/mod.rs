//! publish.toml: parsed strictly (unknown keys are errors), validated, and
//! resolved once into `Config`, which is all the rest of the code sees.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use globset::{Glob, GlobBuilder, GlobSet, GlobSetBuilder};
use serde::Deserialize;

use crate::error::{Error, Result};

pub mod check;
mod de;
mod names;
pub mod preview;
pub mod redirects;
mod sources;
mod values;

pub use check::Check;
use check::RawCheck;
use de::{FingerprintSetting, Size};

pub const DEFAULT_TARGET: &str = "file://./published";
pub const IMMUTABLE: &str = "public, max-age=31536000, immutable";
pub const REVALIDATE: &str = "public, max-age=0, must-revalidate";
/// Ample for any S3 request to be answered; what outlasts it is a store that
/// hangs (a frozen node, a peer it has not yet noticed is gone), which would
/// otherwise stall the run for good.
pub const DEFAULT_REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Files that keep their names (pages and well-known files that other sites
/// and browsers ask for by name) unless the user's rules say otherwise.
pub const DEFAULT_STABLE: &[&str] = &[
    "**/*.html",
    "**/*.htm",
    "robots.txt",
    "favicon.ico",
    "**/*.webmanifest",
    "sw.js",
    ".well-known/**",
    "humans.txt",
    "sitemap.xml",
];

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
struct RawConfig {
    #[serde(default, deserialize_with = "de::some_settings")]
    source: Option<RawSource>,
    #[serde(default, deserialize_with = "de::settings")]
    target: RawTarget,
    #[serde(default, deserialize_with = "rules")]
    rules: Vec<RawRule>,
    #[serde(default, deserialize_with = "redirect_tables")]
    redirects: Vec<redirects::RawRedirect>,
    #[serde(default, deserialize_with = "de::settings")]
    manifest: RawManifest,
    #[serde(default, deserialize_with = "de::settings")]
    prune: RawPrune,
    #[serde(default, deserialize_with = "de::settings")]
    rewrite: RawRewrite,
    #[serde(default, deserialize_with = "de::some_settings")]
    cdn: Option<RawCdn>,
    #[serde(default, deserialize_with = "de::settings")]
    preview: preview::RawPreview,
    #[serde(default, deserialize_with = "de::some_settings")]
    check: Option<RawCheck>,
    #[serde(default, deserialize_with = "envs")]
    env: BTreeMap<String, RawEnv>,
    /// The `[env.NAME.target]` that set `url`, once an env is applied.
    #[serde(skip)]
    url_from_env: Option<String>,
}

/// `[env.NAME]`: settings that differ between environments (staging,
/// production) publishing the same build. Each table overrides the
/// top-level one of the same name, setting by setting.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
struct RawEnv {
    #[serde(default, deserialize_with = "de::settings")]
    target: RawTarget,
    #[serde(default, deserialize_with = "de::settings")]
    manifest: RawManifest,
    #[serde(default, deserialize_with = "de::settings")]
    prune: RawPrune,
    #[serde(default, deserialize_with = "de::some_settings")]
    cdn: Option<RawCdn>,
    #[serde(default, deserialize_with = "de::some_settings")]
    check: Option<RawCheck>,
}

fn envs<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<BTreeMap<String, RawEnv>, D::Error> {
    de::table::<D, de::Table<RawEnv>>(d).map(|m| m.into_iter().map(|(k, v)| (k, v.0)).collect())
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
struct RawSource {
    #[serde(default, deserialize_with = "de::some_strings")]
    dirs: Option<Vec<String>>,
    #[serde(default, deserialize_with = "de::some_strings")]
    include: Option<Vec<String>>,
    #[serde(default, deserialize_with = "de::strings")]
    exclude: Vec<String>,
    max_file_size: Option<Size>,
    #[serde(default, deserialize_with = "de::some_strings")]
    allowed_extensions: Option<Vec<String>>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
struct RawTarget {
    url: Option<String>,
    region: Option<String>,
    endpoint: Option<String>,
    path_style: Option<bool>,
    profile: Option<String>,
    #[serde(default, deserialize_with = "de::count")]
    concurrency: Option<usize>,
    encoding: Option<String>,
    sidecars: Option<bool>,
    public_read: Option<bool>,
    #[serde(default, deserialize_with = "de::duration_text")]
    lock_ttl: Option<String>,
    #[serde(default, deserialize_with = "de::duration_text")]
    request_timeout: Option<String>,
}

impl RawTarget {
    /// These settings, with `base`'s where this one says nothing.
    fn over(self, base: RawTarget) -> RawTarget {
        RawTarget {
            url: self.url.or(base.url),
            region: self.region.or(base.region),
            endpoint: self.endpoint.or(base.endpoint),
            path_style: self.path_style.or(base.path_style),
            profile: self.profile.or(base.profile),
            concurrency: self.concurrency.or(base.concurrency),
            encoding: self.encoding.or(base.encoding),
            sidecars: self.sidecars.or(base.sidecars),
            public_read: self.public_read.or(base.public_read),
            lock_ttl: self.lock_ttl.or(base.lock_ttl),
            request_timeout: self.request_timeout.or(base.request_timeout),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
struct RawRule {
    #[serde(rename = "match")]
    pattern: Option<String>,
    fingerprint: Option<FingerprintSetting>,
    cache_control: Option<String>,
    content_type: Option<String>,
    compress: Option<bool>,
    content_disposition: Option<String>,
    content_language: Option<String>,
    #[serde(default, deserialize_with = "de::table")]
    metadata: BTreeMap<String, String>,
    #[serde(default, deserialize_with = "de::table")]
    headers: BTreeMap<String, String>,
}

impl de::Element for redirects::RawRedirect {
    const ARRAY: &'static str = "an array of tables, each one written `[[redirects]]`";
}

fn redirect_tables<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<Vec<redirects::RawRedirect>, D::Error> {
    de::List::<de::Table<redirects::RawRedirect>>::deserialize(d)
        .map(|l| l.0.into_iter().map(|r| r.0).collect())
}

impl de::Element for RawRule {
    const ARRAY: &'static str = "an array of tables, each one written `[[rules]]`";
}

fn rules<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Vec<RawRule>, D::Error> {
    de::List::<de::Table<RawRule>>::deserialize(d).map(|l| l.0.into_iter().map(|r| r.0).collect())
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
struct RawManifest {
    key: Option<String>,
    django: Option<bool>,
    local: Option<String>,
}

impl RawManifest {
    fn over(self, base: RawManifest) -> RawManifest {
        RawManifest {
            key: self.key.or(base.key),
            django: self.django.or(base.django),
            local: self.local.or(base.local),
        }
    }
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
struct RawPrune {
    #[serde(default, deserialize_with = "de::count")]
    keep: Option<usize>,
    #[serde(default, deserialize_with = "de::duration_text")]
    min_age: Option<String>,
}

impl RawPrune {
    fn over(self, base: RawPrune) -> RawPrune {
        RawPrune {
            keep: self.keep.or(base.keep),
            min_age: self.min_age.or(base.min_age),
        }
    }
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
struct RawCdn {
    provider: Option<String>,
    distribution_id: Option<String>,
    region: Option<String>,
    endpoint: Option<String>,
    profile: Option<String>,
    #[serde(default, deserialize_with = "de::some_strings")]
    command: Option<Vec<String>>,
    #[serde(default, deserialize_with = "de::count")]
    max_paths: Option<usize>,
    path_prefix: Option<String>,
}

impl RawCdn {
    /// An environment's `[cdn]` over the top-level one. A different
    /// provider starts afresh: a command has no use for a distribution id.
    fn over(self, base: Option<RawCdn>) -> RawCdn {
        let Some(base) = base else {
            return self;
        };
        if self.provider.is_some() && self.provider != base.provider {
            return self;
        }
        RawCdn {
            provider: self.provider.or(base.provider),
            distribution_id: self.distribution_id.or(base.distribution_id),
            region: self.region.or(base.region),
            endpoint: self.endpoint.or(base.endpoint),
            profile: self.profile.or(base.profile),
            command: self.command.or(base.command),
            max_paths: self.max_paths.or(base.max_paths),
            path_prefix: self.path_prefix.or(base.path_prefix),
        }
    }
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
struct RawRewrite {
    #[serde(default)]
    strict: bool,
    #[serde(default)]
    js_imports: bool,
    #[serde(default)]
    html: bool,
    #[serde(default)]
    integrity: bool,
    enabled: Option<bool>,
}

/// How a file's key is chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Fingerprint {
    /// `dir/stem.<12 hex>.ext`, immutable.
    Yes,
    /// The logical path, updated in place (its fingerprinted object is kept
    /// too, for rollback).
    No,
    /// The logical path, already unique per content (bundler output).
    Keep,
}

/// What the object at the key holds on an S3 target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectEncoding {
    Identity,
    Gzip,
    Br,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetUrl {
    Dir(PathBuf),
    S3 { bucket: String, prefix: String },
}

impl std::fmt::Display for TargetUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TargetUrl::Dir(p) => write!(f, "file://{}", p.display()),
            TargetUrl::S3 { bucket, prefix } if prefix.is_empty() => write!(f, "s3://{bucket}"),
            TargetUrl::S3 { bucket, prefix } => write!(f, "s3://{bucket}/{prefix}"),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Target {
    pub url: TargetUrl,
    pub region: Option<String>,
    pub endpoint: Option<String>,
    pub path_style: bool,
    pub profile: Option<String>,
    pub concurrency: usize,
    pub encoding: ObjectEncoding,
    pub sidecars: bool,
    pub public_read: bool,
    pub lock_ttl: std::time::Duration,
    /// How long a request may go unanswered before it is abandoned and
    /// retried (uploads get more, by size).
    pub request_timeout: std::time::Duration,
}

/// Where CDN caches are told which paths a deploy changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cdn {
    pub provider: CdnProvider,
    /// More changed paths than this are sent as one wildcard for the prefix.
    pub max_paths: usize,
    /// What every path starts with after the leading `/`: the target's
    /// prefix unless `[cdn] path_prefix` says otherwise; `""` for the root.
    pub path_prefix: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CdnProvider {
    CloudFront {
        distribution_id: String,
        region: Option<String>,
        /// Overrides `AWS_ENDPOINT_URL`, which the SDK reads itself otherwise.
        endpoint: Option<String>,
        profile: Option<String>,
    },
    /// A program run with the paths as its arguments, in `dir` (the config
    /// file's directory).
    Command { argv: Vec<String>, dir: PathBuf },
}

impl CdnProvider {
    pub fn name(&self) -> &'static str {
        match self {
            CdnProvider::CloudFront { .. } => "cloudfront",
            CdnProvider::Command { .. } => "command",
        }
    }
}

pub const DEFAULT_MAX_PATHS: usize = 100;

#[derive(Debug, Clone)]
pub struct Rule {
    pub pattern: String,
    matcher: globset::GlobMatcher,
    pub fingerprint: Option<Fingerprint>,
    pub cache_control: Option<String>,
    pub content_type: Option<String>,
    pub compress: Option<bool>,
    pub content_disposition: Option<String>,
    pub content_language: Option<String>,
    pub metadata: BTreeMap<String, String>,
    /// Response headers for the files the rule matches (see `redirects`).
    pub headers: BTreeMap<String, String>,
}

impl Rule {
    /// The regular expression the rule's glob compiles to (see
    /// `builtin_glob_regex`).
    pub fn regex(&self) -> &str {
        self.matcher.glob().regex()
    }
}

/// The headers and naming a file gets, after every rule has had its say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSettings {
    pub fingerprint: Fingerprint,
    pub cache_control: String,
    pub content_type: String,
    pub compress: bool,
    pub content_disposition: Option<String>,
    pub content_language: Option<String>,
    pub metadata: BTreeMap<String, String>,
}

#[derive(Debug, Clone)]
pub struct Config {
    /// The publish.toml this came from (None: defaults only).
    pub path: Option<PathBuf>,
    pub base_dir: PathBuf,
    pub sources: Vec<PathBuf>,
    pub include: GlobSet,
    /// `include` holds `**` (the default): every path matches.
    pub include_all: bool,
    /// Include patterns that name hidden paths, which are otherwise skipped.
    pub include_hidden: GlobSet,
    pub exclude: GlobSet,
    pub max_file_size: Option<u64>,
    pub allowed_extensions: Option<Vec<String>>,
    pub target: Target,
    pub rules: Vec<Rule>,
    /// `[[redirects]]`, checked with the build's `_redirects`.
    pub redirects: Vec<redirects::RawRedirect>,
    pub manifest_key: String,
    pub django: bool,
    pub django_local: Option<PathBuf>,
    pub prune_keep: usize,
    pub prune_min_age: std::time::Duration,
    pub rewrite: bool,
    pub rewrite_strict: bool,
    pub rewrite_js_imports: bool,
    /// Also the URL attributes of HTML pages and the icons of web app
    /// manifests, for sites whose pages name their assets directly.
    pub rewrite_html: bool,
    /// Also `integrity` and `crossorigin` on the scripts, stylesheets and
    /// module preloads pages load from the build (needs `rewrite_html`).
    pub rewrite_integrity: bool,
    pub state_path: PathBuf,
    /// The `[env.NAME]` these settings were resolved for.
    pub env: Option<String>,
    pub cdn: Option<Cdn>,
    /// `[preview]`: where previews are served, how long they live.
    pub preview: preview::Preview,
    /// `[check]`, for `publish --check` and `rollback --check`.
    pub check: Option<Check>,
}

/// What the command line and environment say, above the file.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub target: Option<String>,
    pub state: Option<PathBuf>,
    /// `--env` / `ASSETPUB_ENV`: which `[env.NAME]` table applies.
    pub env: Option<String>,
}

impl Config {
    pub fn load(path: &Path, overrides: &Overrides) -> Result<Config> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                Error::Config(format!("config file `{}` not found", path.display())).with_hint(
                    "run `assetpub init` to write a starter publish.toml, or pass --config",
                )
            } else {
                Error::Config(format!("cannot read config `{}`: {e}", path.display()))
            }
        })?;
        let base_dir = path
            .parent()
            .map(|p| {
                if p.as_os_str().is_empty() {
                    Path::new(".")
                } else {
                    p
                }
            })
            .unwrap_or(Path::new("."))
            .to_path_buf();
        Config::parse(&text, path, &base_dir, overrides)
    }

    pub fn parse(
        text: &str,
        path: &Path,
        base_dir: &Path,
        overrides: &Overrides,
    ) -> Result<Config> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| toml_error(path, text, &e))?;
        // Each table's values on their own first, so that a mistake is
        // named by the table it is in (`[env.staging.target] lock_ttl`).
        values::check_tables(&raw, base_dir)?;
        let config = resolve_env(&raw, overrides.env.as_deref(), path, base_dir, overrides)?;
        // Every environment is checked, not only the chosen one, so that a
        // mistake in production's settings fails the staging run too.
        for name in raw.env.keys() {
            if overrides.env.as_deref() != Some(name) {
                resolve_env(&raw, Some(name), path, base_dir, &Overrides::default())?;
            }
        }
        Ok(config)
    }

    /// The settings for one logical path: for each setting, the first rule
    /// that matches and sets it; built-in defaults last.
    pub fn settings_for(&self, logical: &str) -> FileSettings {
        let mut fingerprint = None;
        let mut cache_control = None;
        let mut content_type = None;
        let mut compress = None;
        let mut content_disposition = None;
        let mut content_language = None;
        let mut metadata = BTreeMap::new();
        for rule in self.rules.iter().filter(|r| r.matcher.is_match(logical)) {
            fingerprint = fingerprint.or(rule.fingerprint);
            cache_control = cache_control.or_else(|| rule.cache_control.clone());
            content_type = content_type.or_else(|| rule.content_type.clone());
            compress = compress.or(rule.compress);
            content_disposition = content_disposition.or_else(|| rule.content_disposition.clone());
            content_language = content_language.or_else(|| rule.content_language.clone());
            for (k, v) in &rule.metadata {
                metadata.entry(k.clone()).or_insert_with(|| v.clone());
            }
        }
        let fingerprint = fingerprint.unwrap_or_else(|| default_fingerprint(logical));
        // A file that keeps its name must be revalidated, or browsers keep a
        // stale page for a year: the default follows the naming.
        let cache_control = cache_control.unwrap_or_else(|| {
            match fingerprint {
                Fingerprint::Yes | Fingerprint::Keep => IMMUTABLE,
                Fingerprint::No => REVALIDATE,
            }
            .to_string()
        });
        FileSettings {
            fingerprint,
            cache_control,
            content_type: content_type.unwrap_or_else(|| crate::mime::content_type(logical)),
            compress: compress.unwrap_or_else(|| crate::mime::is_compressible(logical)),
            content_disposition,
            content_language,
            metadata,
        }
    }

    pub fn is_s3(&self) -> bool {
        matches!(self.target.url, TargetUrl::S3 { .. })
    }
}

fn default_fingerprint(logical: &str) -> Fingerprint {
    static STABLE: std::sync::OnceLock<GlobSet> = std::sync::OnceLock::new();
    let stable = STABLE.get_or_init(|| {
        let mut b = GlobSetBuilder::new();
        for p in DEFAULT_STABLE {
            b.add(glob(p).expect("built-in glob"));
        }
        b.build().expect("built-in globs")
    });
    if stable.is_match(logical) {
        Fingerprint::No
    } else {
        Fingerprint::Yes
    }
}

fn glob(pattern: &str) -> std::result::Result<Glob, globset::Error> {
    GlobBuilder::new(pattern).literal_separator(true).build()
}

/// The regular expression (over logical paths, bytes, Rust and PCRE
/// syntax alike once the leading `(?-u)` is dropped) a built-in glob
/// pattern matches with.
pub fn builtin_glob_regex(pattern: &str) -> String {
    glob(pattern).expect("built-in glob").regex().to_string()
}

/// The regular expression a glob of a rule matches with, if it is one.
pub fn glob_regex(pattern: &str) -> Option<String> {
    glob(pattern).ok().map(|g| g.regex().to_string())
}

fn glob_set(setting: &str, patterns: &[String]) -> Result<GlobSet> {
    let mut b = GlobSetBuilder::new();
    for p in patterns {
        b.add(
            glob(p)
                .map_err(|e| Error::Config(format!("invalid glob `{p}` in `{setting}`: {e}")))?,
        );
    }
    b.build()
        .map_err(|e| Error::Config(format!("invalid globs in `{setting}`: {e}")))
}

/// A TOML error with its line and column, and the setting it is about.
fn toml_error(path: &Path, text: &str, e: &toml::de::Error) -> Error {
    let location = e
        .span()
        .map(|span| {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            format!(":{line}:{column}")
        })
        .unwrap_or_default();
    let message = e.message().trim_end().replace('\n', " ");
    let message = match e.span().and_then(|span| names::culprit(text, &span)) {
        Some(names::Culprit::Value(setting)) => format!("`{setting}`: {message}"),
        Some(names::Culprit::Key {
            table: Some(table), ..
        }) => format!("in `{table}`: {message}"),
        Some(names::Culprit::Key { table: None, .. }) => message,
        // Not TOML: the text where it goes wrong, when that is short (the
        // key that is there twice).
        None => match e.span().and_then(|span| text.get(span)) {
            Some(snippet)
                if !snippet.trim().is_empty() && snippet.len() <= 60 && !snippet.contains('\n') =>
            {
                format!("{message} (`{}`)", snippet.trim())
            }
            _ => message,
        },
    };
    Error::Config(format!(
        "invalid config `{}{location}`: {message}",
        path.display()
    ))
}

/// Applies the chosen `[env.NAME]` table to the top-level settings.
fn apply_env(raw: &mut RawConfig, name: &str, path: &Path) -> Result<()> {
    let Some(env) = raw.env.remove(name) else {
        let known: Vec<String> = raw.env.keys().map(|k| format!("`{k}`")).collect();
        let defined = if known.is_empty() {
            "it has no `[env.NAME]` tables".to_string()
        } else {
            format!("it defines {}", known.join(", "))
        };
        return Err(Error::Config(format!(
            "unknown environment `{name}` (from --env or ASSETPUB_ENV) in `{}`: {defined}",
            path.display()
        )));
    };
    if env.target.url.is_some() {
        raw.url_from_env = Some(name.to_string());
    }
    raw.target = env.target.over(std::mem::take(&mut raw.target));
    raw.manifest = env.manifest.over(std::mem::take(&mut raw.manifest));
    raw.prune = env.prune.over(std::mem::take(&mut raw.prune));
    if let Some(cdn) = env.cdn {
        raw.cdn = Some(cdn.over(raw.cdn.take()));
    }
    if let Some(c) = env.check {
        raw.check = Some(c.over(raw.check.take()));
    }
    Ok(())
}

/// The settings with `[env.NAME]` applied; errors say which environment
/// they come from.
fn resolve_env(
    raw: &RawConfig,
    env: Option<&str>,
    path: &Path,
    base_dir: &Path,
    overrides: &Overrides,
) -> Result<Config> {
    let mut raw = raw.clone();
    let Some(name) = env else {
        return resolve(raw, path, base_dir, overrides, None);
    };
    apply_env(&mut raw, name, path)?;
    resolve(raw, path, base_dir, overrides, Some(name)).map_err(|e| match e {
        Error::Config(m) => Error::Config(format!("with `[env.{name}]`: {m}")),
        other => other,
    })
}

fn resolve(
    raw: RawConfig,
    path: &Path,
    base_dir: &Path,
    overrides: &Overrides,
    env: Option<&str>,
) -> Result<Config> {
    let rel = |p: &str| join_clean(base_dir, p);
    let Some(source) = raw.source else {
        return Err(Error::Config(format!(
            "`[source]` is missing from `{}`: name the directories to publish in `[source] dirs`",
            path.display()
        ))
        .with_hint(
            "add `[source]` with `dirs = [\"dist\"]`, or run `assetpub init` for a starter file",
        ));
    };
    let dirs = match source.dirs {
        None => {
            return Err(Error::Config(format!(
                "`[source] dirs` is missing from `{}`: name at least one directory to publish, e.g. `dirs = [\"dist\"]`",
                path.display()
            )));
        }
        Some(dirs) if dirs.is_empty() => {
            return Err(Error::Config(format!(
                "`[source] dirs` in `{}` is empty: name at least one directory to publish",
                path.display()
            )));
        }
        Some(dirs) => dirs,
    };
    if let Some(i) = dirs.iter().position(|d| d.trim().is_empty()) {
        return Err(Error::Config(format!(
            "`[source] dirs` entry #{} is empty: name a directory, e.g. \"dist\" (\".\" for the config file's own)",
            i + 1
        )));
    }
    let include_patterns = source.include.unwrap_or_else(|| vec!["**".to_string()]);
    let hidden: Vec<String> = include_patterns
        .iter()
        .filter(|p| p.starts_with('.') || p.contains("/."))
        .cloned()
        .chain(std::iter::once(".well-known/**".to_string()))
        .collect();
    let max_file_size = source
        .max_file_size
        .as_ref()
        .map(|s| values::max_file_size("[source] max_file_size", s))
        .transpose()?;
    let allowed_extensions: Option<Vec<String>> = source.allowed_extensions.map(|v| {
        v.into_iter()
            .map(|e| e.trim_start_matches('.').to_ascii_lowercase())
            .collect()
    });
    if let Some(exts) = &allowed_extensions {
        if exts.is_empty() {
            return Err(Error::Config(
                "`[source] allowed_extensions` is empty, so every file would be refused: list the extensions to publish, or remove the setting to allow any".to_string(),
            ));
        }
        if let Some(bad) = exts
            .iter()
            .find(|e| e.is_empty() || e.contains(['/', '\\']))
        {
            return Err(Error::Config(format!(
                "invalid extension `{bad}` in `[source] allowed_extensions`: use names such as \"css\" or \"woff2\""
            )));
        }
    }

    // Where the target comes from, to name it in errors.
    let (url, url_origin) = match (&overrides.target, &raw.target.url, &raw.url_from_env) {
        (Some(url), ..) => (url.clone(), "`--target` (or ASSETPUB_TARGET)".to_string()),
        (None, Some(url), Some(env)) => (url.clone(), format!("`[env.{env}.target] url`")),
        (None, Some(url), None) => (url.clone(), "`[target] url`".to_string()),
        (None, None, _) => (
            DEFAULT_TARGET.to_string(),
            "the default target (`[target] url` is not set)".to_string(),
        ),
    };
    let url = values::target_url(&url_origin, &url, base_dir)?;
    let encoding = raw
        .target
        .encoding
        .as_deref()
        .map(|e| values::encoding("[target] encoding", e))
        .transpose()?
        .unwrap_or(ObjectEncoding::Identity);
    let concurrency =
        values::concurrency("[target] concurrency", raw.target.concurrency.unwrap_or(32))?;
    if let Some(e) = &raw.target.endpoint {
        values::endpoint("[target] endpoint", e)?;
    }
    let lock_ttl = raw
        .target
        .lock_ttl
        .as_deref()
        .map(|s| values::lock_ttl("[target] lock_ttl", s))
        .transpose()?
        .unwrap_or(std::time::Duration::from_secs(15 * 60));
    let request_timeout = raw
        .target
        .request_timeout
        .as_deref()
        .map(|s| values::request_timeout("[target] request_timeout", s))
        .transpose()?
        .unwrap_or(DEFAULT_REQUEST_TIMEOUT);
    let target = Target {
        url,
        region: raw.target.region,
        endpoint: raw.target.endpoint,
        path_style: raw.target.path_style.unwrap_or(false),
        profile: raw.target.profile,
        concurrency,
        encoding,
        sidecars: raw.target.sidecars.unwrap_or(false),
        public_read: raw.target.public_read.unwrap_or(false),
        lock_ttl,
        request_timeout,
    };

    let mut rules = Vec::new();
    for (i, r) in raw.rules.into_iter().enumerate() {
        let Some(pattern) = r.pattern else {
            return Err(Error::Config(format!(
                "`[[rules]]` #{} has no `match`: every rule needs a glob, e.g. `match = \"**/*.html\"`",
                i + 1
            )));
        };
        let matcher = glob(&pattern)
            .map_err(|e| {
                Error::Config(format!(
                    "invalid glob `{pattern}` in `[[rules]]` #{} match: {e}",
                    i + 1
                ))
            })?
            .compile_matcher();
        let fingerprint = match r.fingerprint {
            None => None,
            Some(FingerprintSetting::Bool(true)) => Some(Fingerprint::Yes),
            Some(FingerprintSetting::Bool(false)) => Some(Fingerprint::No),
            Some(FingerprintSetting::Word(w)) if w == "keep" => Some(Fingerprint::Keep),
            Some(FingerprintSetting::Word(w)) => {
                return Err(Error::Config(format!(
                    "invalid `fingerprint = \"{w}\"` in `[[rules]]` #{} (`{pattern}`): use true, false or \"keep\"",
                    i + 1,
                )));
            }
        };
        let mut metadata = BTreeMap::new();
        for (k, v) in r.metadata {
            let name = k.trim_start_matches("x-amz-meta-").to_ascii_lowercase();
            if name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                return Err(Error::Config(format!(
                    "invalid metadata name `{k}` in `[[rules]]` #{}: use letters, digits, `-` and `_`",
                    i + 1
                )));
            }
            metadata.insert(name, v);
        }
        rules.push(Rule {
            pattern,
            matcher,
            fingerprint,
            cache_control: r.cache_control,
            content_type: r.content_type,
            compress: r.compress,
            content_disposition: r.content_disposition,
            content_language: r.content_language,
            metadata,
            headers: r.headers,
        });
    }

    if raw.rewrite.integrity && !(raw.rewrite.html && raw.rewrite.enabled.unwrap_or(true)) {
        return Err(Error::Config(
            "`[rewrite] integrity = true` adds attributes while pages are rewritten: it needs `html = true` (and rewriting enabled)"
                .to_string(),
        ));
    }
    let manifest_key = raw
        .manifest
        .key
        .unwrap_or_else(|| "manifest.json".to_string());
    values::manifest_key("[manifest] key", &manifest_key)?;
    let django = raw.manifest.django.unwrap_or(false);
    if django && manifest_key == crate::keys::STATICFILES_KEY {
        return Err(Error::Config(format!(
            "`[manifest] key = \"{manifest_key}\"` is where `django = true` writes Django's staticfiles.json: choose another key"
        )));
    }
    if raw.manifest.local.is_some() && !django {
        return Err(Error::Config(
            "`[manifest] local` is the local copy of Django's staticfiles.json: set `django = true` too, or remove it".to_string(),
        ));
    }
    let prune_min_age = raw
        .prune
        .min_age
        .as_deref()
        .map(|s| values::min_age("[prune] min_age", s))
        .transpose()?
        .unwrap_or(std::time::Duration::from_secs(7 * 86400));

    let preview = preview::resolve(raw.preview.clone())?;
    let state_path = overrides
        .state
        .clone()
        .unwrap_or_else(|| base_dir.join(".assetpub").join("state.db"));
    let cdn = raw
        .cdn
        .map(|c| resolve_cdn(c, &target, base_dir))
        .transpose()?
        .flatten();
    let check = raw.check.map(check::resolve).transpose()?;

    // Last, as it looks at the file system: the sources against the target.
    let sources: Vec<PathBuf> = dirs.iter().map(|d| rel(d)).collect();
    sources::check(&dirs, &sources, &target.url, &url_origin, &manifest_key)?;

    Ok(Config {
        path: Some(path.to_path_buf()),
        base_dir: base_dir.to_path_buf(),
        sources,
        include: glob_set("[source] include", &include_patterns)?,
        include_all: include_patterns.iter().any(|p| p == "**"),
        include_hidden: glob_set("[source] include", &hidden)?,
        exclude: glob_set("[source] exclude", &source.exclude)?,
        max_file_size,
        allowed_extensions,
        target,
        rules,
        redirects: raw.redirects,
        manifest_key,
        django,
        django_local: raw.manifest.local.as_deref().map(rel),
        prune_keep: raw.prune.keep.unwrap_or(10),
        prune_min_age,
        rewrite: raw.rewrite.enabled.unwrap_or(true),
        rewrite_strict: raw.rewrite.strict,
        rewrite_js_imports: raw.rewrite.js_imports,
        rewrite_html: raw.rewrite.html,
        rewrite_integrity: raw.rewrite.integrity,
        state_path,
        env: env.map(String::from),
        cdn,
        preview,
        check,
    })
}

fn resolve_cdn(raw: RawCdn, target: &Target, base_dir: &Path) -> Result<Option<Cdn>> {
    let provider = raw.provider.as_deref().ok_or_else(|| {
        Error::Config(
            "`[cdn] provider` is missing: use \"cloudfront\", \"command\" or \"none\"".to_string(),
        )
    })?;
    // A setting of another provider is a mistake worth naming, not
    // something to ignore silently.
    let not_for = |setting: &str, set: bool| -> Result<()> {
        if set {
            return Err(Error::Config(format!(
                "`[cdn] {setting}` does not apply to `provider = \"{provider}\"`: remove it"
            )));
        }
        Ok(())
    };
    let provider = match provider {
        "none" => {
            not_for("distribution_id", raw.distribution_id.is_some())?;
            not_for("command", raw.command.is_some())?;
            return Ok(None);
        }
        "cloudfront" => {
            not_for("command", raw.command.is_some())?;
            let distribution_id = raw.distribution_id.ok_or_else(|| {
                Error::Config(
                    "`[cdn] provider = \"cloudfront\"` needs `distribution_id`, e.g. \"E2QWRUHAPOMQZL\""
                        .to_string(),
                )
            })?;
            if distribution_id.is_empty()
                || !distribution_id.chars().all(|c| c.is_ascii_alphanumeric())
            {
                return Err(Error::Config(format!(
                    "invalid `[cdn] distribution_id = \"{distribution_id}\"`: a CloudFront distribution id is letters and digits, e.g. \"E2QWRUHAPOMQZL\""
                )));
            }
            CdnProvider::CloudFront {
                distribution_id,
                region: raw.region,
                endpoint: raw.endpoint,
                profile: raw.profile.or_else(|| target.profile.clone()),
            }
        }
        "command" => {
            for (setting, set) in [
                ("distribution_id", raw.distribution_id.is_some()),
                ("region", raw.region.is_some()),
                ("endpoint", raw.endpoint.is_some()),
                ("profile", raw.profile.is_some()),
            ] {
                not_for(setting, set)?;
            }
            let mut argv = raw.command.unwrap_or_default();
            if argv.first().is_none_or(|p| p.is_empty()) {
                return Err(Error::Config(
                    "`[cdn] provider = \"command\"` needs `command`, a program and its arguments, e.g. [\"./purge-cdn\", \"--zone\", \"site\"]"
                        .to_string(),
                ));
            }
            // A program named by a relative path is relative to this file,
            // like every other path in it; a bare name is looked up in PATH.
            if argv[0].contains('/') {
                argv[0] = join_clean(base_dir, &argv[0]).display().to_string();
            }
            CdnProvider::Command {
                argv,
                dir: base_dir.to_path_buf(),
            }
        }
        other => {
            return Err(Error::Config(format!(
                "invalid `[cdn] provider = \"{other}\"`: use \"cloudfront\", \"command\" or \"none\""
            )));
        }
    };
    let max_paths = values::max_paths(
        "[cdn] max_paths",
        raw.max_paths.unwrap_or(DEFAULT_MAX_PATHS),
    )?;
    let path_prefix = match raw.path_prefix {
        Some(p) => {
            let p = p.trim_matches('/').to_string();
            if !p.is_empty() {
                crate::keys::check_key(&p)
                    .map_err(|_| Error::Config(format!("invalid `[cdn] path_prefix = \"{p}\"`")))?;
            }
            p
        }
        None => match &target.url {
            TargetUrl::S3 { prefix, .. } => prefix.clone(),
            TargetUrl::Dir(_) => String::new(),
        },
    };
    Ok(Some(Cdn {
        provider,
        max_paths,
        path_prefix,
    }))
}

/// A target URL (`file://PATH` or `s3://BUCKET/PREFIX`).
#[cfg(test)]
fn parse_target_url(url: &str, base_dir: &Path) -> Result<TargetUrl> {
    values::target_url("the target", url, base_dir)
}

/// `base/p` without the `.` components, so paths print the way users wrote
/// them (`published`, not `././published`).
fn join_clean(base: &Path, p: &str) -> PathBuf {
    let p = Path::new(p);
    let joined = if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    };
    let clean: PathBuf = joined
        .components()
        .filter(|c| !matches!(c, std::path::Component::CurDir))
        .collect();
    if clean.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        clean
    }
}

/// "25 MiB", "500KB", "1.5GB", "1024".
pub fn parse_size(text: &str) -> Option<u64> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let num: f64 = num.parse().ok()?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1000,
        "kib" => 1 << 10,
        "m" | "mb" => 1000 * 1000,
        "mib" => 1 << 20,
        "g" | "gb" => 1000 * 1000 * 1000,
        "gib" => 1 << 30,
        _ => return None,
    };
    (num >= 0.0).then_some((num * mult as f64) as u64)
}

/// The longest duration a setting takes: 100 years.
const MAX_DURATION_SECS: u64 = 100 * 365 * 86400;

/// "90s", "12h", "7d", "30m", "2w", at most 100 years.
pub fn parse_duration(text: &str) -> Option<std::time::Duration> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit())?;
    let (num, unit) = t.split_at(split);
    let n: u64 = num.parse().ok()?;
    let unit = match unit.trim() {
        "s" => 1,
        "m" | "min" => 60,
        "h" => 3600,
        "d" => 86400,
        "w" => 7 * 86400,
        _ => return None,
    };
    // Beyond a century is a typo, and would overflow the clock arithmetic
    // that deadlines and ages are made of.
    let secs = n.checked_mul(unit).filter(|s| *s <= MAX_DURATION_SECS)?;
    Some(std::time::Duration::from_secs(secs))
}

/// The starter publish.toml `assetpub init` writes.
pub const STARTER: &str = include_str!("starter.toml");

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config> {
        Config::parse(
            text,
            Path::new("publish.toml"),
            Path::new("/site"),
            &Overrides::default(),
        )
    }

    #[test]
    fn minimal_config_gets_the_defaults() {
        let c = parse("[source]\ndirs = [\"dist\"]\n").unwrap();
        assert_eq!(c.sources, vec![PathBuf::from("/site/dist")]);
        assert_eq!(
            c.target.url,
            TargetUrl::Dir(PathBuf::from("/site/published"))
        );
        assert_eq!(c.target.concurrency, 32);
        assert_eq!(c.manifest_key, "manifest.json");
        assert_eq!(c.state_path, PathBuf::from("/site/.assetpub/state.db"));
        let html = c.settings_for("blog/index.html");
        assert_eq!(html.fingerprint, Fingerprint::No);
        assert_eq!(html.cache_control, REVALIDATE);
        for stable in [
            "robots.txt",
            "favicon.ico",
            "site.webmanifest",
            "sw.js",
            ".well-known/security.txt",
        ] {
            assert_eq!(
                c.settings_for(stable).fingerprint,
                Fingerprint::No,
                "{stable}"
            );
        }
        let css = c.settings_for("css/app.css");
        assert_eq!(css.fingerprint, Fingerprint::Yes);
        assert_eq!(css.cache_control, IMMUTABLE);
        // Only the top-level favicon and robots keep their names.
        assert_eq!(
            c.settings_for("img/favicon.ico").fingerprint,
            Fingerprint::Yes
        );
    }

    #[test]
    fn unknown_keys_are_errors_with_a_location() {
        let e = parse("[source]\ndirs = [\"dist\"]\nmax_size = 3\n").unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("publish.toml:3:1"), "{msg}");
        assert!(msg.contains("max_size"), "{msg}");
        assert_eq!(e.exit_code(), 2);
    }

    #[test]
    fn invalid_toml_reports_line_and_column() {
        let e = parse("[source]\ndirs = [\"dist\"\n").unwrap_err();
        assert!(e.to_string().contains("publish.toml:2:"), "{e}");
    }

    #[test]
    fn wrong_type_is_an_error() {
        let e = parse("[source]\ndirs = \"dist\"\n").unwrap_err();
        assert!(e.to_string().contains("publish.toml:2:8"), "{e}");
    }

    #[test]
    fn html_rewriting_is_opt_in() {
        let c = parse("[source]\ndirs = [\"dist\"]\n").unwrap();
        assert!(!c.rewrite_html);
        let c = parse("[source]\ndirs = [\"dist\"]\n[rewrite]\nhtml = true\n").unwrap();
        assert!(c.rewrite_html);
    }

    #[test]
    fn integrity_is_opt_in_and_needs_html_rewriting() {
        let c = parse("[source]\ndirs = [\"dist\"]\n[rewrite]\nhtml = true\n").unwrap();
        assert!(!c.rewrite_integrity);
        let c = parse("[source]\ndirs = [\"dist\"]\n[rewrite]\nhtml = true\nintegrity = true\n")
            .unwrap();
        assert!(c.rewrite_integrity);
        let e = parse("[source]\ndirs = [\"dist\"]\n[rewrite]\nintegrity = true\n").unwrap_err();
        assert!(e.to_string().contains("needs `html = true`"), "{e}");
        let e = parse("[source]\ndirs = [\"dist\"]\n[rewrite]\nhtml = true\nintegrity = \"yes\"\n")
            .unwrap_err();
        assert!(e.to_string().contains("publish.toml:5:"), "{e}");
    }

    #[test]
    fn request_timeout_defaults_to_30s_and_must_be_at_least_a_second() {
        let c = parse("[source]\ndirs = [\"dist\"]\n").unwrap();
        assert_eq!(c.target.request_timeout, DEFAULT_REQUEST_TIMEOUT);
        let c = parse("[source]\ndirs = [\"dist\"]\n[target]\nrequest_timeout = \"2m\"\n").unwrap();
        assert_eq!(c.target.request_timeout.as_secs(), 120);
        let e =
            parse("[source]\ndirs = [\"dist\"]\n[target]\nrequest_timeout = \"0s\"\n").unwrap_err();
        assert!(e.to_string().contains("request_timeout"), "{e}");
    }

    #[test]
    fn rules_apply_per_setting_first_match_first() {
        let c = parse(
            r#"
[source]
dirs = ["dist"]
[[rules]]
match = "assets/**"
fingerprint = "keep"
[[rules]]
match = "**/*.json"
fingerprint = false
[[rules]]
match = "**/*.css"
cache_control = "public, max-age=60"
content_type = "text/plain"
"#,
        )
        .unwrap();
        let kept = c.settings_for("assets/index-BxK3f9a1.js");
        assert_eq!(kept.fingerprint, Fingerprint::Keep);
        assert_eq!(kept.cache_control, IMMUTABLE);
        let data = c.settings_for("data/x.json");
        assert_eq!(data.fingerprint, Fingerprint::No);
        assert_eq!(
            data.cache_control, REVALIDATE,
            "a stable key must never be immutable by default"
        );
        let css = c.settings_for("css/a.css");
        assert_eq!(css.fingerprint, Fingerprint::Yes);
        assert_eq!(css.cache_control, "public, max-age=60");
        assert_eq!(css.content_type, "text/plain");
    }

    #[test]
    fn sizes_and_durations() {
        assert_eq!(parse_size("25 MiB"), Some(25 << 20));
        assert_eq!(parse_size("500KB"), Some(500_000));
        assert_eq!(parse_size("1024"), Some(1024));
        assert_eq!(parse_size("12 parsecs"), None);
        assert_eq!(parse_duration("7d").unwrap().as_secs(), 7 * 86400);
        assert_eq!(parse_duration("90s").unwrap().as_secs(), 90);
        assert_eq!(parse_duration("12h").unwrap().as_secs(), 12 * 3600);
        assert!(parse_duration("soon").is_none());
        let e = parse("[source]\ndirs = [\"d\"]\nmax_file_size = \"lots\"\n").unwrap_err();
        assert!(e.to_string().contains("max_file_size"));
    }

    #[test]
    fn target_urls() {
        let base = Path::new("/b");
        assert_eq!(
            parse_target_url("s3://my-bucket/site/", base).unwrap(),
            TargetUrl::S3 {
                bucket: "my-bucket".into(),
                prefix: "site".into()
            }
        );
        assert_eq!(
            parse_target_url("s3://my-bucket", base).unwrap(),
            TargetUrl::S3 {
                bucket: "my-bucket".into(),
                prefix: String::new()
            }
        );
        assert!(parse_target_url("s3://My_Bucket/x", base).is_err());
        assert!(parse_target_url("s3://bucket/a/../b", base).is_err());
        assert!(parse_target_url("ftp://x", base).is_err());
        assert_eq!(
            parse_target_url("file:///srv/www", base).unwrap(),
            TargetUrl::Dir("/srv/www".into())
        );
    }

    #[test]
    fn the_starter_config_parses() {
        parse(STARTER).unwrap();
        // And so do its commented examples.
        let uncommented: String = STARTER
            .lines()
            .map(|l| match l.strip_prefix("# ") {
                Some(rest) if rest.starts_with('[') || is_setting(rest) => rest,
                _ => l,
            })
            .map(|l| format!("{l}\n"))
            .collect();
        // Only one provider's settings at a time.
        let uncommented = uncommented.replace("command = [", "# command = [");
        let c = parse(&uncommented).unwrap();
        assert!(c.cdn.is_some());
        assert!(c.check.as_ref().is_some_and(|c| c.url.is_some()));
        for env in ["staging", "production"] {
            with_env(&uncommented, env).unwrap();
        }
    }

    /// `key = value`, as opposed to prose.
    fn is_setting(line: &str) -> bool {
        line.split_once(" = ").is_some_and(|(key, _)| {
            !key.is_empty()
                && key
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        })
    }

    fn with_env(text: &str, env: &str) -> Result<Config> {
        Config::parse(
            text,
            Path::new("publish.toml"),
            Path::new("/site"),
            &Overrides {
                env: Some(env.to_string()),
                ..Overrides::default()
            },
        )
    }

    const ENVS: &str = r#"
[source]
dirs = ["dist"]
[target]
url = "file://./out"
concurrency = 8
[cdn]
provider = "cloudfront"
distribution_id = "EBASE"
max_paths = 20
[env.staging.target]
url = "file://./staging"
[env.staging.cdn]
provider = "none"
[env.production.target]
url = "s3://bucket/site"
region = "eu-west-1"
[env.production.cdn]
distribution_id = "EPROD"
[env.production.manifest]
key = "site-manifest.json"
[env.production.prune]
keep = 30
[env.edge.cdn]
provider = "command"
command = ["./bin/purge", "--all"]
"#;

    #[test]
    fn an_env_overrides_setting_by_setting() {
        let base = parse(ENVS).unwrap();
        assert_eq!(base.env, None);
        assert_eq!(base.target.url, TargetUrl::Dir("/site/out".into()));
        let staging = with_env(ENVS, "staging").unwrap();
        assert_eq!(staging.env.as_deref(), Some("staging"));
        assert_eq!(staging.target.url, TargetUrl::Dir("/site/staging".into()));
        assert_eq!(staging.target.concurrency, 8, "inherited");
        assert_eq!(staging.cdn, None, "provider = \"none\" turns it off");

        let prod = with_env(ENVS, "production").unwrap();
        assert_eq!(
            prod.target.url,
            TargetUrl::S3 {
                bucket: "bucket".into(),
                prefix: "site".into()
            }
        );
        assert_eq!(prod.target.region.as_deref(), Some("eu-west-1"));
        assert_eq!(prod.manifest_key, "site-manifest.json");
        assert_eq!(prod.prune_keep, 30);
        let cdn = prod.cdn.unwrap();
        assert_eq!(cdn.max_paths, 20, "inherited from the same provider");
        assert_eq!(cdn.path_prefix, "site", "the target's prefix");
        assert!(matches!(
            cdn.provider,
            CdnProvider::CloudFront { ref distribution_id, .. } if distribution_id == "EPROD"
        ));

        // Another provider starts afresh: no distribution id, default max.
        let edge = with_env(ENVS, "edge").unwrap().cdn.unwrap();
        assert_eq!(
            edge.provider,
            CdnProvider::Command {
                argv: vec!["/site/bin/purge".into(), "--all".into()],
                dir: "/site".into()
            }
        );
        assert_eq!(edge.max_paths, DEFAULT_MAX_PATHS);
        assert_eq!(edge.path_prefix, "");
    }

    #[test]
    fn the_command_line_target_beats_the_env() {
        let c = Config::parse(
            ENVS,
            Path::new("publish.toml"),
            Path::new("/site"),
            &Overrides {
                env: Some("staging".into()),
                target: Some("file:///tmp/x".into()),
                ..Overrides::default()
            },
        )
        .unwrap();
        assert_eq!(c.target.url, TargetUrl::Dir("/tmp/x".into()));
    }

    #[test]
    fn an_unknown_env_names_the_known_ones() {
        let e = with_env(ENVS, "prod").unwrap_err();
        assert_eq!(e.exit_code(), 2);
        let msg = e.to_string();
        assert!(
            msg.contains("unknown environment `prod`")
                && msg.contains("`edge`, `production`, `staging`"),
            "{msg}"
        );
        let e = with_env("[source]\ndirs = [\"d\"]\n", "prod").unwrap_err();
        assert!(e.to_string().contains("no `[env.NAME]` tables"), "{e}");
    }

    #[test]
    fn unknown_keys_in_an_env_have_a_location() {
        let text =
            "[source]\ndirs = [\"d\"]\n[env.staging.target]\nurl = \"file://x\"\nbukket = 1\n";
        let e = parse(text).unwrap_err();
        assert!(e.to_string().contains("publish.toml:5:1"), "{e}");
        assert!(e.to_string().contains("bukket"), "{e}");
        let e = parse("[source]\ndirs = [\"d\"]\n[env.staging]\nsource = 1\n").unwrap_err();
        assert!(e.to_string().contains("publish.toml:4:1"), "{e}");
        assert_eq!(e.exit_code(), 2);
    }

    #[test]
    fn every_env_is_checked_not_only_the_chosen_one() {
        let text = format!("{ENVS}[env.broken.target]\nconcurrency = 0\n");
        let e = with_env(&text, "staging").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("invalid `[env.broken.target] concurrency = 0`"),
            "{e}"
        );
    }

    #[test]
    fn cdn_settings_are_checked() {
        let cdn = |body: &str| parse(&format!("[source]\ndirs = [\"d\"]\n[cdn]\n{body}\n"));
        for (body, says) in [
            ("distribution_id = \"E1\"", "`[cdn] provider` is missing"),
            (
                "provider = \"fastly\"",
                "invalid `[cdn] provider = \"fastly\"`",
            ),
            ("provider = \"cloudfront\"", "needs `distribution_id`"),
            (
                "provider = \"cloudfront\"\ndistribution_id = \"E/1\"",
                "invalid `[cdn] distribution_id",
            ),
            (
                "provider = \"cloudfront\"\ndistribution_id = \"E1\"\ncommand = [\"x\"]",
                "`[cdn] command` does not apply",
            ),
            ("provider = \"command\"", "needs `command`"),
            ("provider = \"command\"\ncommand = []", "needs `command`"),
            (
                "provider = \"command\"\ncommand = [\"x\"]\ndistribution_id = \"E1\"",
                "`[cdn] distribution_id` does not apply",
            ),
            (
                "provider = \"command\"\ncommand = [\"x\"]\nmax_paths = 0",
                "`[cdn] max_paths = 0`",
            ),
            (
                "provider = \"command\"\ncommand = [\"x\"]\npath_prefix = \"a/../b\"",
                "`[cdn] path_prefix",
            ),
        ] {
            let e = cdn(body).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{body}");
            assert!(e.to_string().contains(says), "{body}: {e}");
        }
        let c =
            cdn("provider = \"command\"\ncommand = [\"purge\"]\npath_prefix = \"/www/\"").unwrap();
        let c = c.cdn.unwrap();
        assert_eq!(c.path_prefix, "www");
        assert_eq!(
            c.provider,
            CdnProvider::Command {
                argv: vec!["purge".into()],
                dir: "/site".into()
            },
            "a bare name is left to PATH"
        );
    }

    #[test]
    fn django_settings() {
        let c = parse("[source]\ndirs = [\"d\"]\n").unwrap();
        assert!(!c.django && c.django_local.is_none());
        let c = parse("[source]\ndirs = [\"d\"]\n[manifest]\ndjango = true\n").unwrap();
        assert!(c.django && c.django_local.is_none());
        let c = parse(
            "[source]\ndirs = [\"d\"]\n[manifest]\ndjango = true\nlocal = \"/srv/app/staticfiles.json\"\n",
        )
        .unwrap();
        assert_eq!(
            c.django_local,
            Some(PathBuf::from("/srv/app/staticfiles.json"))
        );
        let e = parse("[source]\ndirs = [\"d\"]\n[manifest]\nlocal = \"s.json\"\n").unwrap_err();
        assert!(e.to_string().contains("django = true"), "{e}");
        let e = parse(
            "[source]\ndirs = [\"d\"]\n[manifest]\nkey = \"staticfiles.json\"\ndjango = true\n",
        )
        .unwrap_err();
        assert!(e.to_string().contains("another key"), "{e}");
        assert_eq!(e.exit_code(), 2);
    }
}
