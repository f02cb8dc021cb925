//! `[preview]`: where previews are served and how long they live (see
//! `publish --preview`).

use std::time::Duration;

use serde::Deserialize;

use super::{de, parse_duration};
use crate::error::{Error, Result};

/// How long a preview lives without `[preview] ttl` or `--ttl`.
pub const DEFAULT_TTL: Duration = Duration::from_secs(7 * 86400);

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(super) struct RawPreview {
    base_url: Option<String>,
    #[serde(default, deserialize_with = "de::duration_text")]
    ttl: Option<String>,
}

/// The resolved `[preview]` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preview {
    /// The URL a preview is served at, `{name}` standing for its name.
    pub base_url: Option<String>,
    pub ttl: Duration,
}

impl Default for Preview {
    fn default() -> Preview {
        Preview {
            base_url: None,
            ttl: DEFAULT_TTL,
        }
    }
}

impl Preview {
    /// The URL of preview `name`, when `[preview] base_url` is set.
    pub fn url(&self, name: &str) -> Option<String> {
        self.base_url.as_ref().map(|u| u.replace("{name}", name))
    }
}

pub(super) fn resolve(raw: RawPreview) -> Result<Preview> {
    let ttl = match raw.ttl.as_deref() {
        Some(text) => ttl("[preview] ttl", text)?,
        None => DEFAULT_TTL,
    };
    if let Some(url) = &raw.base_url {
        let ok =
            (url.starts_with("https://") || url.starts_with("http://")) && url.contains("{name}");
        if !ok {
            return Err(Error::Config(format!(
                "invalid `[preview] base_url = \"{url}\"`: use an http(s) URL with `{{name}}` where the preview's name goes, e.g. \"https://preview.example.org/{{name}}/\""
            )));
        }
    }
    Ok(Preview {
        base_url: raw.base_url,
        ttl,
    })
}

/// A preview's time to live, as `[preview] ttl` or `--ttl` (named by
/// `setting`): not zero.
pub fn ttl(setting: &str, text: &str) -> Result<Duration> {
    match parse_duration(text) {
        Some(d) if !d.is_zero() => Ok(d),
        Some(_) => Err(Error::Config(format!(
            "invalid `{setting} = \"{text}\"`: a preview must live at least 1s"
        ))),
        None => Err(Error::Config(format!(
            "invalid duration `{text}` for `{setting}`: use a whole number with s, m, h, d or w, at most 100 years, e.g. \"7d\""
        ))),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_ttl_too_long_is_refused_saying_how_long_one_may_be() {
        assert_eq!(
            super::ttl("--ttl", "5200w").unwrap().as_secs(),
            5200 * 7 * 86400
        );
        let e = super::ttl("--ttl", "99999w").unwrap_err().to_string();
        assert!(
            e.contains("`--ttl`") && e.contains("at most 100 years"),
            "{e}"
        );
    }
}
