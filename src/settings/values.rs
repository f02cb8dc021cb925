//! One check a setting, each naming the setting as written in the file
//! (`[target] lock_ttl`, `[env.staging.cdn] endpoint`), and
//! [`check_tables`], which runs them on every table before the tables are
//! merged, so that a mistake is named where it was made.

use std::path::Path;
use std::time::Duration;

use super::{
    ObjectEncoding, RawCdn, RawConfig, RawManifest, RawPrune, RawTarget, Size, TargetUrl,
    join_clean, parse_duration, parse_size,
};
use crate::error::{Error, Result};

/// The deploy lock is renewed every third of its TTL, at most once a
/// second: a shorter TTL would expire between two renewals.
pub(super) const MIN_LOCK_TTL: Duration = Duration::from_secs(3);
/// A request needs at least this long to be answered.
pub(super) const MIN_REQUEST_TIMEOUT: Duration = Duration::from_secs(1);
/// `concurrency`: objects in flight.
pub(super) const MAX_CONCURRENCY: usize = 1024;
/// CloudFront accepts at most 3000 paths in progress per distribution.
pub(super) const MAX_MAX_PATHS: usize = 3000;

fn duration(setting: &str, text: &str) -> Result<Duration> {
    parse_duration(text).ok_or_else(|| {
        Error::Config(format!(
            "invalid duration `{text}` for `{setting}`: use a whole number with s, m, h, d or w, e.g. \"7d\""
        ))
    })
}

/// A duration that must be at least `min`.
fn duration_at_least(setting: &str, text: &str, min: Duration, why: &str) -> Result<Duration> {
    let d = duration(setting, text)?;
    if d < min {
        return Err(Error::Config(format!(
            "invalid `{setting} = \"{text}\"`: use at least {}s ({why})",
            min.as_secs()
        )));
    }
    Ok(d)
}

pub(super) fn lock_ttl(setting: &str, text: &str) -> Result<Duration> {
    duration_at_least(
        setting,
        text,
        MIN_LOCK_TTL,
        "the lock is renewed every third of it, at most once a second; shorter, it would expire while held",
    )
}

pub(super) fn request_timeout(setting: &str, text: &str) -> Result<Duration> {
    duration_at_least(
        setting,
        text,
        MIN_REQUEST_TIMEOUT,
        "a request abandoned sooner never gets its answer",
    )
}

/// `[prune] min_age`: 0 is allowed (no age protection).
pub(super) fn min_age(setting: &str, text: &str) -> Result<Duration> {
    duration(setting, text)
}

pub(super) fn max_file_size(setting: &str, size: &Size) -> Result<u64> {
    let (n, written) = match size {
        Size::Bytes(n) => (*n, n.to_string()),
        Size::Text(t) => {
            let n = parse_size(t).ok_or_else(|| {
                Error::Config(format!(
                    "invalid size `{t}` for `{setting}`: use a byte count or a unit such as \"25 MiB\" or \"500KB\""
                ))
            })?;
            (n, format!("\"{t}\""))
        }
    };
    if n == 0 {
        return Err(Error::Config(format!(
            "invalid `{setting} = {written}`: every file with content would be refused; use at least 1 byte, or remove the setting for no limit"
        )));
    }
    Ok(n)
}

pub(super) fn concurrency(setting: &str, n: usize) -> Result<usize> {
    if n == 0 || n > MAX_CONCURRENCY {
        return Err(Error::Config(format!(
            "invalid `{setting} = {n}`: use 1 to {MAX_CONCURRENCY}"
        )));
    }
    Ok(n)
}

pub(super) fn max_paths(setting: &str, n: usize) -> Result<usize> {
    if n == 0 || n > MAX_MAX_PATHS {
        return Err(Error::Config(format!(
            "invalid `{setting} = {n}`: use 1 to {MAX_MAX_PATHS}"
        )));
    }
    Ok(n)
}

pub(super) fn encoding(setting: &str, text: &str) -> Result<ObjectEncoding> {
    match text {
        "identity" => Ok(ObjectEncoding::Identity),
        "gzip" => Ok(ObjectEncoding::Gzip),
        "br" => Ok(ObjectEncoding::Br),
        other => Err(Error::Config(format!(
            "invalid `{setting} = \"{other}\"`: use \"identity\", \"gzip\" or \"br\""
        ))),
    }
}

/// An S3 or CloudFront endpoint: an http(s) URL with a host, checked here
/// so that a typo is a configuration error and not a store that "cannot be
/// reached".
pub(super) fn endpoint(setting: &str, url: &str) -> Result<()> {
    http_url(
        setting,
        url,
        "e.g. \"http://127.0.0.1:3900\" or \"https://s3.example.com\"",
    )
}

/// An http(s) URL with a host and no credentials; `example` ends the
/// message about one that is not.
pub(super) fn http_url(setting: &str, url: &str, example: &str) -> Result<()> {
    let bad = |why: &str| {
        Err(Error::Config(format!(
            "invalid `{setting} = \"{url}\"`: {why}"
        )))
    };
    let lower = url.to_ascii_lowercase();
    let rest = if lower.starts_with("https://") {
        &url["https://".len()..]
    } else if lower.starts_with("http://") {
        &url["http://".len()..]
    } else {
        return bad(&format!("use an http:// or https:// URL, {example}"));
    };
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return bad(&format!("a URL has no spaces, {example}"));
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    if authority.contains('@') {
        // Never echo what may be a password.
        return Err(Error::Config(format!(
            "invalid `{setting}`: credentials do not belong in the {}",
            if setting.ends_with("endpoint") {
                "endpoint URL; the AWS credential chain provides them"
            } else {
                "URL: it is printed in reports and logs"
            }
        )));
    }
    let (host, port) = match authority.strip_prefix('[') {
        Some(v6) => match v6.split_once(']') {
            Some((host, after)) if after.is_empty() || after.starts_with(':') => {
                let ok = !host.is_empty()
                    && host
                        .chars()
                        .all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.');
                (ok.then_some(host), after.strip_prefix(':'))
            }
            _ => (None, None),
        },
        None => {
            let (host, port) = match authority.split_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            };
            let ok = !host.is_empty()
                && !host.starts_with(['.', '-'])
                && host
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'));
            (ok.then_some(host), port)
        }
    };
    if host.is_none() {
        return bad(&format!("it names no host, {example}"));
    }
    if let Some(port) = port
        && !port.parse::<u16>().is_ok_and(|p| p > 0)
    {
        return bad(&format!("`{port}` is not a port (1 to 65535), {example}"));
    }
    Ok(())
}

/// A target URL, from `origin` (`` `[target] url` ``, `` `--target` ``...).
pub(super) fn target_url(origin: &str, url: &str, base_dir: &Path) -> Result<TargetUrl> {
    let bad = |why: String| {
        Err(Error::Config(format!(
            "invalid target `{url}` in {origin}: {why}"
        )))
    };
    if let Some(rest) = url.strip_prefix("file://") {
        if rest.is_empty() {
            return bad("name a directory, e.g. file://./published".into());
        }
        return Ok(TargetUrl::Dir(join_clean(base_dir, rest)));
    }
    if let Some(rest) = url.strip_prefix("s3://") {
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let valid_bucket = (3..=63).contains(&bucket.len())
            && bucket
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.');
        if !valid_bucket {
            return bad(format!(
                "bucket name `{bucket}` is not 3-63 lowercase letters, digits, `-` or `.`"
            ));
        }
        let prefix = prefix.trim_matches('/').to_string();
        if !prefix.is_empty() && crate::keys::check_key(&prefix).is_err() {
            return bad(format!(
                "prefix `{prefix}` is not a relative key (no `.`, `..`, empty segments or backslashes)"
            ));
        }
        return Ok(TargetUrl::S3 {
            bucket: bucket.to_string(),
            prefix,
        });
    }
    bad("use file://PATH or s3://BUCKET/PREFIX".into())
}

/// Every value of every table that can be checked on its own, named by its
/// table: the top-level ones and each `[env.NAME]`'s.
pub(super) fn check_tables(raw: &RawConfig, base_dir: &Path) -> Result<()> {
    if let Some(source) = &raw.source
        && let Some(size) = &source.max_file_size
    {
        max_file_size("[source] max_file_size", size)?;
    }
    check_target(&raw.target, "[target]", base_dir)?;
    check_manifest(&raw.manifest, "[manifest]")?;
    check_prune(&raw.prune, "[prune]")?;
    if let Some(cdn) = &raw.cdn {
        check_cdn(cdn, "[cdn]")?;
    }
    if let Some(c) = &raw.check {
        super::check::check_table(c, "[check]")?;
    }
    for (name, env) in &raw.env {
        check_target(&env.target, &format!("[env.{name}.target]"), base_dir)?;
        check_manifest(&env.manifest, &format!("[env.{name}.manifest]"))?;
        check_prune(&env.prune, &format!("[env.{name}.prune]"))?;
        if let Some(cdn) = &env.cdn {
            check_cdn(cdn, &format!("[env.{name}.cdn]"))?;
        }
        if let Some(c) = &env.check {
            super::check::check_table(c, &format!("[env.{name}.check]"))?;
        }
    }
    Ok(())
}

fn check_target(t: &RawTarget, table: &str, base_dir: &Path) -> Result<()> {
    if let Some(url) = &t.url {
        target_url(&format!("`{table} url`"), url, base_dir)?;
    }
    if let Some(e) = &t.endpoint {
        endpoint(&format!("{table} endpoint"), e)?;
    }
    if let Some(n) = t.concurrency {
        concurrency(&format!("{table} concurrency"), n)?;
    }
    if let Some(e) = &t.encoding {
        encoding(&format!("{table} encoding"), e)?;
    }
    if let Some(d) = &t.lock_ttl {
        lock_ttl(&format!("{table} lock_ttl"), d)?;
    }
    if let Some(d) = &t.request_timeout {
        request_timeout(&format!("{table} request_timeout"), d)?;
    }
    Ok(())
}

fn check_manifest(m: &RawManifest, table: &str) -> Result<()> {
    if let Some(key) = &m.key {
        manifest_key(&format!("{table} key"), key)?;
    }
    Ok(())
}

pub(super) fn manifest_key(setting: &str, key: &str) -> Result<()> {
    crate::keys::check_key(key).map_err(|_| {
        Error::Config(format!(
            "invalid `{setting} = \"{key}\"`: use a relative key, e.g. \"manifest.json\""
        ))
    })
}

fn check_prune(p: &RawPrune, table: &str) -> Result<()> {
    if let Some(d) = &p.min_age {
        min_age(&format!("{table} min_age"), d)?;
    }
    Ok(())
}

fn check_cdn(c: &RawCdn, table: &str) -> Result<()> {
    if let Some(e) = &c.endpoint {
        endpoint(&format!("{table} endpoint"), e)?;
    }
    if let Some(n) = c.max_paths {
        max_paths(&format!("{table} max_paths"), n)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_http_urls_with_a_host() {
        for good in [
            "http://127.0.0.1:3900",
            "https://s3.eu-west-1.amazonaws.com",
            "HTTP://minio:9000/",
            "http://[::1]:9000",
            "https://garage.internal_net.example/s3",
        ] {
            endpoint("[target] endpoint", good).unwrap_or_else(|e| panic!("{good}: {e}"));
        }
        for bad in [
            "not a url",
            "127.0.0.1:3900",
            "ftp://host",
            "http://",
            "http:///path",
            "http://host:port",
            "http://host:0",
            "http://host:70000",
            "http://ho st",
            "http://[::1",
            "http://-host",
        ] {
            let e = endpoint("[target] endpoint", bad).unwrap_err();
            assert_eq!(e.exit_code(), 2);
            assert!(e.to_string().contains("[target] endpoint"), "{e}");
        }
        let e = endpoint("[cdn] endpoint", "https://key:secret@host").unwrap_err();
        assert!(!e.to_string().contains("secret"), "{e}");
    }

    #[test]
    fn durations_below_their_minimum_are_refused() {
        assert!(lock_ttl("[target] lock_ttl", "0s").is_err());
        assert!(lock_ttl("[target] lock_ttl", "2s").is_err());
        assert_eq!(lock_ttl("[target] lock_ttl", "3s").unwrap().as_secs(), 3);
        assert!(request_timeout("[target] request_timeout", "0m").is_err());
        assert_eq!(min_age("[prune] min_age", "0s").unwrap(), Duration::ZERO);
        let e = lock_ttl("[env.x.target] lock_ttl", "0s").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("invalid `[env.x.target] lock_ttl = \"0s\"`: use at least 3s"),
            "{e}"
        );
    }
}
