//! `[check]`: the post-switch check of `publish --check` and `rollback
//! --check`. Where the site is served, which pages to fetch, how long to
//! wait for each answer and which status to expect.

use std::time::Duration;

use serde::Deserialize;

use super::de;
use crate::error::{Error, Result};

/// How many pages a check fetches at most (the assets they name come on
/// top): the default paths are cut there, and so is a longer list.
pub const MAX_PATHS: usize = 50;
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
pub const DEFAULT_STATUS: u16 = 200;

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(super) struct RawCheck {
    url: Option<String>,
    #[serde(default, deserialize_with = "de::some_strings")]
    paths: Option<Vec<String>>,
    #[serde(default, deserialize_with = "de::duration_text")]
    timeout: Option<String>,
    #[serde(default, deserialize_with = "de::count")]
    expect_status: Option<usize>,
}

impl RawCheck {
    /// An environment's `[check]` over the top-level one, setting by
    /// setting.
    pub(super) fn over(self, base: Option<RawCheck>) -> RawCheck {
        let Some(base) = base else { return self };
        RawCheck {
            url: self.url.or(base.url),
            paths: self.paths.or(base.paths),
            timeout: self.timeout.or(base.timeout),
            expect_status: self.expect_status.or(base.expect_status),
        }
    }
}

/// The resolved `[check]` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// The base URL the target's root is served at, ending in `/`; None
    /// when no table set it (`--check` then refuses to run).
    pub url: Option<String>,
    /// Paths under `url` to fetch; None: the pages the deploy changed.
    pub paths: Option<Vec<String>>,
    /// How long one URL may take, connection and body included.
    pub timeout: Duration,
    pub expect_status: u16,
}

/// Every value of one `[check]` table, named as written (`table` is
/// `[check]` or `[env.NAME.check]`).
pub(super) fn check_table(c: &RawCheck, table: &str) -> Result<()> {
    if let Some(url) = &c.url {
        base_url(&format!("{table} url"), url)?;
    }
    if let Some(paths) = &c.paths {
        check_paths(&format!("{table} paths"), paths)?;
    }
    if let Some(t) = &c.timeout {
        super::values::request_timeout(&format!("{table} timeout"), t)?;
    }
    if let Some(s) = c.expect_status {
        status(&format!("{table} expect_status"), s)?;
    }
    Ok(())
}

/// The table once checked (see [`check_table`]).
pub(super) fn resolve(c: RawCheck) -> Result<Check> {
    check_table(&c, "[check]")?;
    Ok(Check {
        url: c
            .url
            .as_deref()
            .map(|u| base_url("[check] url", u))
            .transpose()?,
        paths: c.paths,
        timeout: c
            .timeout
            .as_deref()
            .map(|t| super::values::request_timeout("[check] timeout", t))
            .transpose()?
            .unwrap_or(DEFAULT_TIMEOUT),
        expect_status: c
            .expect_status
            .map(|s| status("[check] expect_status", s))
            .transpose()?
            .unwrap_or(DEFAULT_STATUS),
    })
}

/// An http(s) URL with a host, no query or fragment; `/` added at the end,
/// since the paths are under it.
fn base_url(setting: &str, url: &str) -> Result<String> {
    super::values::http_url(
        setting,
        url,
        "the URL the site is served at, e.g. \"https://www.example.org/\"",
    )?;
    if url.contains(['?', '#']) {
        return Err(Error::Config(format!(
            "invalid `{setting} = \"{url}\"`: the base URL the site is served at has no query or fragment, e.g. \"https://www.example.org/\""
        )));
    }
    Ok(if url.ends_with('/') {
        url.to_string()
    } else {
        format!("{url}/")
    })
}

fn check_paths(setting: &str, paths: &[String]) -> Result<()> {
    if paths.is_empty() {
        return Err(Error::Config(format!(
            "`{setting}` is empty, so nothing would be checked: list pages such as \"/\" or \"/about.html\", or remove the setting to check the pages each deploy changes"
        )));
    }
    if paths.len() > MAX_PATHS {
        return Err(Error::Config(format!(
            "`{setting}` lists {} paths: use at most {MAX_PATHS} (the assets each page names are checked too)",
            paths.len()
        )));
    }
    for p in paths {
        let bad = |why: &str| {
            Err(Error::Config(format!(
                "invalid path `{p}` in `{setting}`: {why}"
            )))
        };
        if p.contains("://") || p.starts_with("//") {
            return bad("use a path under `url`, e.g. \"/\" or \"/blog/\", not a URL");
        }
        if p.chars().any(|c| c.is_whitespace() || c.is_control()) || p.contains('\\') {
            return bad(
                "a URL path has no spaces, control characters or backslashes (percent-encode them)",
            );
        }
        if p.contains('#') {
            return bad("a fragment is never sent to the server");
        }
        let path = p.split('?').next().unwrap_or(p);
        if path.split('/').any(|s| s == "..") {
            return bad("`..` would leave the site's root");
        }
    }
    Ok(())
}

fn status(setting: &str, n: usize) -> Result<u16> {
    match u16::try_from(n) {
        Ok(s) if (100..=599).contains(&s) => Ok(s),
        _ => Err(Error::Config(format!(
            "invalid `{setting} = {n}`: use an HTTP status from 100 to 599, e.g. 200"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls_get_a_trailing_slash_and_refuse_what_is_no_site() {
        assert_eq!(
            base_url("[check] url", "https://www.example.org").unwrap(),
            "https://www.example.org/"
        );
        assert_eq!(
            base_url("[check] url", "http://127.0.0.1:8080/site/").unwrap(),
            "http://127.0.0.1:8080/site/"
        );
        for bad in [
            "www.example.org",
            "ftp://example.org/",
            "http://",
            "https://user:pw@example.org/",
            "https://example.org/?x=1",
            "https://example.org/#top",
        ] {
            let e = base_url("[check] url", bad).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{bad}");
            assert!(e.to_string().contains("[check] url"), "{bad}: {e}");
            assert!(!e.to_string().contains("pw@"), "{e}");
        }
    }

    #[test]
    fn paths_and_statuses() {
        check_paths(
            "[check] paths",
            &["/".into(), "blog/".into(), "/a.html?x".into()],
        )
        .unwrap();
        for bad in [
            vec![],
            vec!["https://example.org/".to_string()],
            vec!["/a b.html".to_string()],
            vec!["/../etc/passwd".to_string()],
            vec!["/#top".to_string()],
            vec!["/".to_string(); MAX_PATHS + 1],
        ] {
            let e = check_paths("[check] paths", &bad).unwrap_err();
            assert!(e.to_string().contains("[check] paths"), "{bad:?}: {e}");
        }
        assert_eq!(status("[check] expect_status", 204).unwrap(), 204);
        assert!(status("[check] expect_status", 99).is_err());
        assert!(status("[check] expect_status", 600).is_err());
    }
}
