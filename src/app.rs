//! Runs one command: resolves settings (flags > environment > publish.toml),
//! calls the library, and returns what to print and the exit code.

use std::path::PathBuf;
use std::sync::Arc;

use crate::cli::{Cli, Command};
use crate::config::{Config, Overrides, STARTER};
use crate::context::Context;
use crate::error::{Error, Result};
use crate::publish::{PublishOptions, Walk};
use crate::report::Reporter;

/// What a command produced.
pub struct Output {
    pub human: String,
    pub json: serde_json::Value,
    pub exit_code: i32,
    /// A failure after the command's work was done (the CDN could not be
    /// told about a live deploy): printed after the output, and the exit
    /// code is its.
    pub error: Option<Error>,
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
        Command::Init { force } => init(cli, *force),
        Command::Plan { exit_code } => {
            let config = load_config(cli)?;
            let walk = Walk::start(&config, reporter.clone());
            let mut ctx = Context::open(config, reporter).await?;
            let report = crate::publish::publish(
                &mut ctx,
                &PublishOptions {
                    dry_run: true,
                    break_lock: false,
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
        } => {
            let config = load_config(cli)?;
            let walk = Walk::start(&config, reporter.clone());
            let mut ctx = Context::open(config, reporter).await?;
            let report = crate::publish::publish(
                &mut ctx,
                &PublishOptions {
                    dry_run: *dry_run,
                    break_lock: *break_lock,
                },
                walk,
            )
            .await?;
            step_summary(&report.markdown(if *dry_run {
                "publish --dry-run"
            } else {
                "publish"
            }));
            let mut out = Output::new(cli, &report, || report.render_publish());
            out.error = report.invalidation_failure();
            Ok(out)
        }
        Command::History => {
            let mut ctx = Context::open(load_config(cli)?, reporter).await?;
            let h = crate::history::history(&mut ctx).await?;
            Ok(Output::new(cli, &h, || h.render()))
        }
        Command::Rollback { deploy, break_lock } => {
            let mut ctx = Context::open(load_config(cli)?, reporter).await?;
            let r = crate::rollback::rollback(&mut ctx, deploy.as_deref(), *break_lock).await?;
            let mut out = Output::new(cli, &r, || r.render());
            out.error = r.invalidation_failure();
            Ok(out)
        }
        Command::Prune {
            keep,
            min_age,
            max_deletes,
            dry_run,
            break_lock,
        } => {
            let config = load_config(cli)?;
            let min_age = match min_age {
                Some(text) => crate::config::parse_duration(text).ok_or_else(|| {
                    Error::Config(format!(
                        "invalid --min-age `{text}`: use a number with s, m, h, d or w, e.g. 7d"
                    ))
                })?,
                None => config.prune_min_age,
            };
            let opts = crate::prune::PruneOptions {
                keep: keep.unwrap_or(config.prune_keep),
                min_age,
                max_deletes: *max_deletes,
                dry_run: *dry_run,
                break_lock: *break_lock,
            };
            let mut ctx = Context::open(config, reporter).await?;
            let r = crate::prune::prune(&mut ctx, &opts).await?;
            Ok(Output::new(cli, &r, || r.render()))
        }
        Command::NginxConfig {
            listen,
            server_name,
        } => {
            let text = crate::nginx::render(
                &load_config(cli)?,
                &crate::nginx::Options {
                    listen: listen.clone(),
                    server_name: server_name.clone(),
                },
            )?;
            Ok(Output {
                json: serde_json::json!({ "nginx_config": text }),
                human: text,
                exit_code: 0,
                error: None,
            })
        }
        Command::Verify => {
            let mut ctx = Context::open(load_config(cli)?, reporter).await?;
            let r = crate::verify::verify(&mut ctx).await?;
            let mut out = Output::new(cli, &r, || r.render());
            if !r.ok() {
                out.exit_code = 1;
            }
            Ok(out)
        }
    }
}

fn init(cli: &Cli, force: bool) -> Result<Output> {
    let path = config_path(cli);
    if path.exists() && !force {
        return Err(Error::Config(format!(
            "`{}` already exists; not overwriting it\nhint: pass --force to replace it",
            path.display()
        )));
    }
    std::fs::write(&path, STARTER).map_err(|e| Error::io("cannot write", &path, e))?;
    let value = serde_json::json!({ "config": path.display().to_string() });
    Ok(Output {
        human: format!(
            "wrote `{}`: set `[source] dirs` to your build output, then run `assetpub plan`\n",
            path.display()
        ),
        json: value,
        exit_code: 0,
        error: None,
    })
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
