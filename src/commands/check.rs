//! `publish --check` and `rollback --check`: once the new deploy is live
//! and the CDN has been told, the site is fetched as visitors get it (see
//! `integrations::check`). With `--rollback-on-failure`, a failed check
//! switches back to the deploy that was live before, by rollback's own
//! switch; without it, the run names the command that would.

use std::collections::BTreeSet;

use serde::Serialize;

use crate::cli::Cli;
use crate::commands::context::Context;
use crate::commands::rollback::RollbackReport;
use crate::error::{Error, Result};
use crate::integrations::check::Failure;
use crate::remote::manifest::Manifest;
use crate::rewrite::Syntax;
use crate::settings::Config;
use crate::settings::check::MAX_PATHS;

/// `--check` and `--rollback-on-failure`.
#[derive(Debug, Clone, Copy, Default)]
pub struct CheckOptions {
    pub check: bool,
    pub rollback_on_failure: bool,
    pub break_lock: bool,
}

/// What the check found and did (`check` in `--json`).
#[derive(Debug, Clone, Serialize)]
pub struct CheckReport {
    /// The base URL checked.
    pub url: String,
    /// The deploy that was live when checked.
    pub deploy: String,
    /// Pages fetched.
    pub pages: usize,
    /// URLs fetched: the pages and every asset they name.
    pub urls: usize,
    /// Each URL that failed, and why.
    pub failures: Vec<Failure>,
    /// Whether the failed deploy was switched back.
    pub rolled_back: bool,
    /// The switch back, when there was one.
    pub rollback: Option<RollbackReport>,
    /// What to run to switch back by hand, when the check failed and the
    /// run did not.
    pub rollback_command: Option<String>,
    /// Why switching back failed, when it did.
    pub rollback_error: Option<String>,
}

/// Refuses `--check` without a `[check] url`, before anything is read or
/// written.
pub fn require(config: &Config, opts: &CheckOptions) -> Result<()> {
    if !opts.check || config.check.as_ref().is_some_and(|c| c.url.is_some()) {
        return Ok(());
    }
    Err(Error::Config(format!(
        "`--check` needs the URL the site is served at: set `url` in `[check]`{} of `{}`",
        config
            .env
            .as_ref()
            .map(|e| format!(" (or `[env.{e}.check]`)"))
            .unwrap_or_default(),
        config
            .path
            .as_deref()
            .unwrap_or(std::path::Path::new("publish.toml"))
            .display()
    ))
    .with_hint("e.g. `[check]` with `url = \"https://www.example.org/\"`"))
}

/// Which pages changed, to check by default.
pub enum Changed<'a> {
    /// A publish's changed files, by logical path.
    Files(Vec<&'a str>),
    /// A rollback: the entries that differ from this deploy's.
    From(&'a str),
}

/// Checks the live deploy `live`; `back_to` is the deploy that was live
/// before it, where `--rollback-on-failure` goes back to.
pub async fn check(
    cli: &Cli,
    ctx: &mut Context,
    opts: &CheckOptions,
    live: &str,
    back_to: Option<&str>,
    changed: Changed<'_>,
) -> Result<CheckReport> {
    let settings = ctx.config.check.clone().expect("checked by `require`");
    let base = settings.url.clone().expect("checked by `require`");
    let manifest = ctx.deploy_manifest(live).await?.ok_or_else(|| {
        Error::Store(format!(
            "the record of deploy `{live}` is missing from {}: nothing to check against",
            ctx.store.describe()
        ))
    })?;
    let paths = match &settings.paths {
        Some(p) => p.clone(),
        None => {
            let logical: Vec<String> = match changed {
                Changed::Files(f) => f.into_iter().map(String::from).collect(),
                Changed::From(from) => {
                    let earlier = ctx.deploy_manifest(from).await?;
                    differing(&manifest, earlier.as_ref())
                }
            };
            default_paths(&manifest, &logical)
        }
    };
    if paths.is_empty() {
        ctx.reporter.warn(&format!(
            "nothing to check: deploy `{live}` has no pages; list what to fetch in `[check] paths`"
        ));
    }
    ctx.reporter.note(&format!(
        "checking {} page{} of deploy {live} at {base}",
        paths.len(),
        if paths.len() == 1 { "" } else { "s" }
    ));
    let outcome = crate::integrations::check::run(
        &base,
        &paths,
        &manifest,
        settings.timeout,
        settings.expect_status,
    )
    .await?;
    let mut report = CheckReport {
        url: base,
        deploy: live.to_string(),
        pages: outcome.pages,
        urls: outcome.urls,
        failures: outcome.failures,
        rolled_back: false,
        rollback: None,
        rollback_command: None,
        rollback_error: None,
    };
    if report.failures.is_empty() {
        return Ok(report);
    }
    let Some(back_to) = back_to else {
        // A first deploy has nothing to go back to.
        return Ok(report);
    };
    if !opts.rollback_on_failure {
        report.rollback_command = Some(rollback_command(cli, back_to));
        return Ok(report);
    }
    match crate::commands::rollback::rollback(ctx, Some(back_to), opts.break_lock, Some(live)).await
    {
        Ok(r) => {
            report.rolled_back = r.changed;
            report.rollback = Some(r);
            Ok(report)
        }
        Err(e) => {
            // Another deploy went live since: going back would undo it.
            let moved = matches!(
                e.unhinted(),
                Error::Conflict {
                    conflict: crate::error::Conflict::ManifestMoved,
                    ..
                }
            );
            if !moved {
                report.rollback_command = Some(rollback_command(cli, back_to));
            }
            report.rollback_error = Some(e.to_string());
            Ok(report)
        }
    }
}

/// The logical paths whose entries `m` has and `earlier` has not, or
/// differently.
fn differing(m: &Manifest, earlier: Option<&Manifest>) -> Vec<String> {
    m.files
        .iter()
        .filter(|(logical, e)| earlier.and_then(|x| x.files.get(*logical)) != Some(*e))
        .map(|(logical, _)| logical.clone())
        .collect()
}

/// The changed pages, at most [`MAX_PATHS`]; when no page changed, the
/// deploy's pages, the home page first. As URL paths: percent-encoded.
fn default_paths(m: &Manifest, changed: &[String]) -> Vec<String> {
    let page = |key: &str| Syntax::for_path(key) == Syntax::Html;
    let mut keys: Vec<String> = changed
        .iter()
        .filter_map(|l| m.files.get(l))
        .map(|e| e.key.clone())
        .filter(|k| page(k))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    if keys.is_empty() {
        keys = m
            .files
            .values()
            .map(|e| e.key.clone())
            .filter(|k| page(k))
            .collect();
        keys.sort_by_key(|k| (k != "index.html", k.clone()));
    }
    keys.truncate(MAX_PATHS);
    keys.iter()
        .map(|k| crate::util::percent_encode_path(k))
        .collect()
}

/// `assetpub [the same --config, --env, --target, --state] rollback DEPLOY`.
fn rollback_command(cli: &Cli, deploy: &str) -> String {
    let mut words = vec!["assetpub".to_string()];
    if let Some(c) = &cli.config {
        words.push("--config".into());
        words.push(quote(&c.display().to_string()));
    }
    if let Some(s) = &cli.state {
        words.push("--state".into());
        words.push(quote(&s.display().to_string()));
    }
    if let Some(t) = &cli.target {
        words.push("--target".into());
        words.push(quote(t));
    }
    if let Some(e) = &cli.env {
        words.push("--env".into());
        words.push(quote(e));
    }
    words.push("rollback".into());
    words.push(quote(deploy));
    words.join(" ")
}

/// A word as a POSIX shell reads it back.
fn quote(word: &str) -> String {
    if !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-=:+@%,".contains(c))
    {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
}

impl CheckReport {
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }

    fn failures_text(&self) -> String {
        self.failures
            .iter()
            .map(|f| format!("  {}: {}", f.url, f.reason))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// The lines for the human output of publish and rollback.
    pub fn render(&self) -> String {
        let of = format!(
            "{} URL{} ({} page{} and the assets {} name{}) at {}",
            self.urls,
            if self.urls == 1 { "" } else { "s" },
            self.pages,
            if self.pages == 1 { "" } else { "s" },
            if self.pages == 1 { "it" } else { "they" },
            if self.pages == 1 { "s" } else { "" },
            self.url
        );
        if self.passed() {
            return format!("check passed: {of}\n");
        }
        let mut out = format!(
            "check failed: {} of {of}:\n{}\n",
            self.failures.len(),
            self.failures_text()
        );
        if let Some(r) = &self.rollback {
            out.push_str(&r.render());
        }
        if let Some(why) = &self.rollback_error {
            out.push_str(&format!("switching back failed: {why}\n"));
        }
        out
    }

    /// One line for the GitHub step summary.
    pub fn markdown(&self) -> String {
        if self.passed() {
            return format!(
                "Check passed: {} URL{} ({} page{}) at {}\n",
                self.urls,
                if self.urls == 1 { "" } else { "s" },
                self.pages,
                if self.pages == 1 {
                    " and its assets"
                } else {
                    "s and their assets"
                },
                self.url
            );
        }
        let then = match (&self.rollback, &self.rollback_command) {
            (Some(r), _) if self.rolled_back => format!("; rolled back to `{}`", r.to),
            (_, Some(cmd)) if self.rollback_error.is_some() => {
                format!("; switching back failed, undo with `{cmd}`")
            }
            (_, Some(cmd)) => format!("; still live, undo with `{cmd}`"),
            _ if self.rollback_error.is_some() => "; not switched back".to_string(),
            _ => "; still live".to_string(),
        };
        format!(
            "Check **failed**: {} of {} URLs at {} (first: {}: {}){then}\n",
            self.failures.len(),
            self.urls,
            self.url,
            self.failures[0].url,
            self.failures[0].reason
        )
    }

    /// The error that fails the run after a failed check (exit 1), saying
    /// what is live now.
    pub fn failure(&self) -> Option<Error> {
        if self.passed() {
            return None;
        }
        let what = format!(
            "the check of deploy `{}` failed: {} of {} URLs at {}:\n{}",
            self.deploy,
            self.failures.len(),
            self.urls,
            self.url,
            self.failures_text()
        );
        Some(match (&self.rollback, &self.rollback_command) {
            (Some(r), _) if self.rolled_back => Error::Runtime(format!(
                "{what}\nrolled back to `{}`, the deploy that was live before{}",
                r.to,
                // Its CDN invalidation's failure, which would otherwise go
                // unsaid.
                r.invalidation_failure()
                    .map(|e| format!("\n{e}"))
                    .unwrap_or_default()
            )),
            (_, Some(cmd)) => match &self.rollback_error {
                Some(why) => Error::Runtime(format!(
                    "{what}\nswitching back failed: {why}\ndeploy `{}` may still be live",
                    self.deploy
                ))
                .with_hint(format!(
                    "once the cause is put right, run `{cmd}` to go back to the deploy that was live before"
                )),
                None => Error::Runtime(format!("{what}\ndeploy `{}` is live", self.deploy))
                    .with_hint(format!(
                        "to go back to the deploy that was live before, run `{cmd}`"
                    )),
            },
            (_, None) => match &self.rollback_error {
                Some(why) => Error::Runtime(format!("{what}\nnot switched back: {why}")),
                None => Error::Runtime(format!(
                    "{what}\ndeploy `{}` is live: it is the first, so there is nothing to go back to",
                    self.deploy
                )),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(keys: &[&str]) -> Manifest {
        let files: serde_json::Map<String, serde_json::Value> = keys
            .iter()
            .map(|k| {
                (
                    k.to_string(),
                    serde_json::json!({"key": k, "blake3": "h", "size": 1, "content_type": "t", "cache_control": "c"}),
                )
            })
            .collect();
        let json = serde_json::json!({"version": 1, "deploy": "d", "created": "c", "files": files});
        Manifest::parse(json.to_string().as_bytes(), "m").unwrap()
    }

    #[test]
    fn the_default_paths_are_the_changed_pages_else_every_page_home_first() {
        let m = manifest(&["about.html", "index.html", "blog/a b.html", "css/x.css"]);
        assert_eq!(
            default_paths(&m, &["css/x.css".into(), "blog/a b.html".into()]),
            ["blog/a%20b.html"]
        );
        assert_eq!(
            default_paths(&m, &["css/x.css".into()]),
            ["index.html", "about.html", "blog/a%20b.html"]
        );
        let many: Vec<String> = (0..60).map(|i| format!("p{i}.html")).collect();
        let keys: Vec<&str> = many.iter().map(String::as_str).collect();
        assert_eq!(default_paths(&manifest(&keys), &many).len(), MAX_PATHS);
    }

    #[test]
    fn words_are_quoted_for_the_shell_only_when_needed() {
        assert_eq!(quote("20261130T191835Z-3a5752"), "20261130T191835Z-3a5752");
        assert_eq!(quote("site config/p.toml"), "'site config/p.toml'");
        assert_eq!(quote("it's"), "'it'\\''s'");
        assert_eq!(quote(""), "''");
    }
}
