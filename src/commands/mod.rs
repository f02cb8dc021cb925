//! One file a command: its options, the work, its report and the report's
//! rendering. [`run`] resolves settings (flags > environment >
//! publish.toml), calls the command, and returns what to print and the exit
//! code.

/// For the binary's signal handling: see [`crate::remote::lock`].
pub use crate::remote::lock::{interrupt, release_held};

pub mod check;
pub mod context;
pub mod docs;
pub mod history;
pub mod init;
pub mod nginx_config;
pub mod preview;
pub mod prune;
pub mod publish;
pub mod rollback;
pub mod served;
pub mod verify;

use std::path::PathBuf;
use std::sync::Arc;

use crate::cli::{Cli, Command};
use crate::commands::context::Context;
use crate::commands::publish::{PublishOptions, Walk};
use crate::error::{Error, Result};
use crate::report::Reporter;
use crate::settings::{Config, Overrides};

/// What a command produced.
pub struct Output {
    pub human: String,
    pub json: serde_json::Value,
    pub exit_code: i32,
    /// A failure after the command's work was done (the CDN could not be
    /// told about a live deploy): printed after the output, and the exit
    /// code is its.
    pub error: Option<Error>,
    /// Failures that came before `error` in the same run (the CDN could not
    /// be told, then the check failed): printed before it.
    pub earlier_errors: Vec<Error>,
}

impl Output {
    /// Only the form that gets printed is made: for a large deploy either
    /// one is a table or document of thousands of rows.
    fn new<T: serde::Serialize>(cli: &Cli, value: &T, human: impl FnOnce() -> String) -> Output {
        let (human, json) = if cli.json {
            let json = serde_json::to_value(value).expect("reports serialize");
            (String::new(), json)
        } else {
            (human(), serde_json::Value::Null)
        };
        Output {
            human,
            json,
            exit_code: 0,
            error: None,
            earlier_errors: Vec::new(),
        }
    }
}

pub fn config_path(cli: &Cli) -> PathBuf {
    cli.config
        .clone()
        .unwrap_or_else(|| PathBuf::from("publish.toml"))
}

pub fn load_config(cli: &Cli) -> Result<Config> {
    let overrides = Overrides {
        target: cli.target.clone(),
        state: cli.state.clone(),
        env: cli.env.clone(),
    };
    Config::load(&config_path(cli), &overrides)
}

pub async fn run(cli: &Cli, reporter: Arc<dyn Reporter>) -> Result<Output> {
    match &cli.command {
        Command::Init { force } => init::init(cli, *force),
        Command::Plan { exit_code } => {
            let config = load_config(cli)?;
            let walk = Walk::start(&config, reporter.clone());
            let mut ctx = Context::open(config, reporter).await?;
            let report = crate::commands::publish::publish(
                &mut ctx,
                &PublishOptions {
                    dry_run: true,
                    break_lock: false,
                    message: None,
                    estimate_sizes: true,
                },
                walk,
            )
            .await?;
            step_summary(&report.markdown("plan"));
            let mut out = Output::new(cli, &report, || report.render_plan());
            if *exit_code && report.changed {
                out.exit_code = 1;
            }
            Ok(out)
        }
        Command::Publish {
            dry_run,
            break_lock,
            message,
            preview,
            ttl,
            check,
            rollback_on_failure,
        } => {
            let mut config = load_config(cli)?;
            if let Some(name) = preview {
                preview::check(&config, Some(name))?;
                if let Some(ttl) = ttl {
                    config.preview.ttl = crate::settings::preview::ttl("--ttl", ttl)?;
                }
            }
            let checking = check::CheckOptions {
                check: *check,
                rollback_on_failure: *rollback_on_failure,
                break_lock: *break_lock,
            };
            check::require(&config, &checking)?;
            let walk = Walk::start(&config, reporter.clone());
            let mut ctx = Context::open(config, reporter).await?;
            if let Some(name) = preview {
                ctx = preview::enter(ctx, name)?;
            }
            let mut report = crate::commands::publish::publish(
                &mut ctx,
                &PublishOptions {
                    dry_run: *dry_run,
                    break_lock: *break_lock,
                    message: message.clone(),
                    // `publish --dry-run` shows exact sizes: it compresses
                    // as the publish would.
                    estimate_sizes: false,
                },
                walk,
            )
            .await?;
            if report.preview.is_some() {
                preview::settle_report(&mut ctx, &mut report).await?;
            }
            let mut summary = report.markdown(if *dry_run {
                "publish --dry-run"
            } else {
                "publish"
            });
            if let Some(p) = &report.preview {
                summary.push_str(&p.markdown());
            }
            step_summary(&summary);
            let mut out = Output::new(cli, &report, || {
                let mut text = report.render_publish();
                if let Some(p) = &report.preview {
                    text.push_str(&p.render(report.dry_run, &report.target));
                }
                text
            });
            out.error = report.invalidation_failure();
            // A publish with nothing to deploy checks the deploy that is
            // live: a rerun of a CI job whose check failed must not pass
            // while that deploy still serves.
            let target = match (&report.deploy, &report.parent) {
                (Some(new), parent) => Some((new.clone(), parent.clone(), false)),
                (None, Some(live)) if checking.check && !*dry_run => {
                    Some((live.clone(), None, true))
                }
                _ => None,
            };
            if let Some((live, back_to, unchanged)) = target.filter(|_| checking.check) {
                let back_to = match (unchanged, back_to) {
                    (true, _) => ctx.deploy_manifest(&live).await?.and_then(|m| m.parent),
                    (false, b) => b,
                };
                let changed = report.changes.iter().map(|c| c.logical.as_str()).collect();
                if unchanged {
                    ctx.reporter.note(&format!(
                        "nothing to deploy: checking the live deploy {live}"
                    ));
                }
                let checked = check::check(
                    cli,
                    &mut ctx,
                    &checking,
                    &live,
                    back_to.as_deref(),
                    check::Changed::Files(changed),
                )
                .await
                .map(Some);
                add_check(cli, &mut out, true, checked);
            } else {
                add_check(cli, &mut out, checking.check, Ok(None));
            }
            Ok(out)
        }
        Command::History { previews: true } => {
            let config = load_config(cli)?;
            preview::check(&config, None)?;
            let ctx = Context::open(config, reporter).await?;
            let list = preview::list(&ctx).await?;
            Ok(Output::new(cli, &list, || list.render()))
        }
        Command::History { previews: false } => {
            let mut ctx = Context::open(load_config(cli)?, reporter).await?;
            let h = crate::commands::history::history(&mut ctx).await?;
            let width = ctx.reporter.terminal_width();
            Ok(Output::new(cli, &h, || h.render(width)))
        }
        Command::Rollback {
            deploy,
            break_lock,
            check,
            rollback_on_failure,
        } => {
            let config = load_config(cli)?;
            let checking = check::CheckOptions {
                check: *check,
                rollback_on_failure: *rollback_on_failure,
                break_lock: *break_lock,
            };
            check::require(&config, &checking)?;
            let mut ctx = Context::open(config, reporter).await?;
            let r =
                crate::commands::rollback::rollback(&mut ctx, deploy.as_deref(), *break_lock, None)
                    .await?;
            let mut out = Output::new(cli, &r, || r.render());
            out.error = r.invalidation_failure();
            if checking.check && r.changed {
                let checked = check::check(
                    cli,
                    &mut ctx,
                    &checking,
                    &r.to,
                    Some(&r.from),
                    check::Changed::From(&r.from),
                )
                .await
                .map(Some);
                add_check(cli, &mut out, true, checked);
            } else {
                add_check(cli, &mut out, checking.check, Ok(None));
            }
            Ok(out)
        }
        Command::Prune {
            keep,
            min_age,
            max_deletes,
            dry_run,
            break_lock,
            previews,
            preview,
        } => {
            let config = load_config(cli)?;
            if *previews || preview.is_some() {
                preview::check(&config, preview.as_deref())?;
                let opts = preview::DeleteOptions {
                    max_deletes: *max_deletes,
                    dry_run: *dry_run,
                    break_lock: *break_lock,
                };
                let ctx = Context::open(config, reporter).await?;
                let (r, failed) = match preview {
                    Some(name) => (preview::prune_one(ctx, name, &opts).await?, None),
                    None => preview::prune_expired(ctx, &opts).await?,
                };
                let mut out = Output::new(cli, &r, || r.render());
                out.error = failed;
                return Ok(out);
            }
            let min_age = match min_age {
                Some(text) => crate::settings::parse_duration(text).ok_or_else(|| {
                    Error::Config(format!(
                        "invalid --min-age `{text}`: use a number with s, m, h, d or w, e.g. 7d"
                    ))
                })?,
                None => config.prune_min_age,
            };
            let opts = crate::commands::prune::PruneOptions {
                keep: keep.unwrap_or(config.prune_keep),
                min_age,
                max_deletes: *max_deletes,
                dry_run: *dry_run,
                break_lock: *break_lock,
            };
            let mut ctx = Context::open(config, reporter).await?;
            let r = crate::commands::prune::prune(&mut ctx, &opts).await?;
            Ok(Output::new(cli, &r, || r.render()))
        }
        Command::NginxConfig {
            listen,
            server_name,
        } => nginx_config::nginx_config(&load_config(cli)?, listen, server_name),
        Command::Completions { shell } => {
            let script = docs::completions(*shell);
            let json = serde_json::json!({ "shell": shell.to_string(), "script": &script });
            Ok(Output {
                human: script,
                json,
                exit_code: 0,
                error: None,
                earlier_errors: Vec::new(),
            })
        }
        Command::Man { dir: None } => {
            let page = docs::man_page()?;
            let json = serde_json::json!({ "page": &page });
            Ok(Output {
                human: page,
                json,
                exit_code: 0,
                error: None,
                earlier_errors: Vec::new(),
            })
        }
        Command::Man { dir: Some(dir) } => {
            let pages = docs::write_man_pages(dir)?;
            let human = pages.iter().map(|p| format!("{}\n", p.display())).collect();
            let json = serde_json::json!({ "pages": pages });
            Ok(Output {
                human,
                json,
                exit_code: 0,
                error: None,
                earlier_errors: Vec::new(),
            })
        }
        Command::Verify { repair, break_lock } => {
            let mut ctx = Context::open(load_config(cli)?, reporter).await?;
            let opts = crate::commands::verify::VerifyOptions {
                repair: *repair,
                break_lock: *break_lock,
            };
            let r = crate::commands::verify::verify(&mut ctx, &opts).await?;
            let mut out = Output::new(cli, &r, || r.render());
            if !r.ok() {
                out.exit_code = 1;
            }
            Ok(out)
        }
    }
}

/// The check's part of a publish's or rollback's output: `check` in the
/// JSON document (null without one), its lines in the text, its line in
/// the step summary, and its failure as the run's.
fn add_check(
    cli: &Cli,
    out: &mut Output,
    requested: bool,
    checked: Result<Option<check::CheckReport>>,
) {
    let report = match checked {
        Ok(r) => r,
        Err(e) => {
            set_error(out, e);
            None
        }
    };
    if cli.json {
        if let serde_json::Value::Object(doc) = &mut out.json {
            doc.insert(
                "check".to_string(),
                serde_json::to_value(&report).expect("reports serialize"),
            );
        }
    } else if let Some(r) = &report {
        out.human.push_str(&r.render());
    } else if requested && out.error.is_none() {
        out.human
            .push_str("check: nothing is live, so nothing was checked\n");
    }
    if let Some(r) = &report {
        step_summary(&r.markdown());
        if let Some(e) = r.failure() {
            set_error(out, e);
        }
    }
}

/// `e` becomes the run's error; one found before it (a CDN that could not
/// be told) is still printed, before it.
fn set_error(out: &mut Output, e: Error) {
    if let Some(earlier) = out.error.replace(e) {
        out.earlier_errors.push(earlier);
    }
}

/// Appends to the GitHub Actions step summary when the runner provides one.
fn step_summary(markdown: &str) {
    let Some(path) = std::env::var_os("GITHUB_STEP_SUMMARY").filter(|p| !p.is_empty()) else {
        return;
    };
    use std::io::Write;
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
    {
        let _ = writeln!(f, "{markdown}");
    }
}
