//! The command line, as clap types only. Settings are resolved from these in
//! `app.rs`.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "assetpub",
    version,
    about = "Publish a site's static build to a CDN origin: fingerprinted, incremental, atomic",
    max_term_width = 100
)]
pub struct Cli {
    /// The config file [default: ./publish.toml]
    #[arg(long, global = true, env = "ASSETPUB_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The state DB [default: .assetpub/state.db beside the config]
    #[arg(long, global = true, env = "ASSETPUB_STATE", value_name = "FILE")]
    pub state: Option<PathBuf>,
    /// Publish here instead of `[target] url` (file://PATH or s3://BUCKET/PREFIX)
    #[arg(long, global = true, env = "ASSETPUB_TARGET", value_name = "URL")]
    pub target: Option<String>,
    /// Apply the `[env.NAME]` table of publish.toml (staging, production, ...)
    #[arg(long, global = true, env = "ASSETPUB_ENV", value_name = "NAME")]
    pub env: Option<String>,
    /// Print one JSON document on stdout instead of text
    #[arg(long, global = true)]
    pub json: bool,
    /// No progress and no notes, only errors and the result
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// Say more about each step
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write a commented starter publish.toml
    Init {
        /// Overwrite an existing file
        #[arg(long)]
        force: bool,
    },
    /// Show what publish would do; changes nothing remote
    #[command(alias = "diff")]
    Plan {
        /// Exit 1 when there are changes (as `git diff --exit-code`)
        #[arg(long)]
        exit_code: bool,
    },
    /// Upload what changed, then switch manifest.json
    Publish {
        /// Show the plan and stop
        #[arg(long)]
        dry_run: bool,
        /// Take the deploy lock even if another run holds it
        #[arg(long)]
        break_lock: bool,
        /// What this deploy is, recorded with it and shown by `history`
        /// (default: the subject of the build's git commit)
        #[arg(long, short = 'm', env = "ASSETPUB_MESSAGE")]
        message: Option<String>,
        /// Publish as preview NAME (a-z, 0-9, -), under `_previews/NAME/`,
        /// leaving the live site alone
        #[arg(long, value_name = "NAME")]
        preview: Option<String>,
        /// How long the preview lives, e.g. 7d [default: `[preview] ttl`, 7d]
        #[arg(long, value_name = "DURATION", requires = "preview")]
        ttl: Option<String>,
        /// Once live, fetch the changed pages and the assets they name from
        /// `[check] url` and compare them with the manifest (with nothing to
        /// deploy: the live deploy's)
        #[arg(long, conflicts_with_all = ["dry_run", "preview"])]
        check: bool,
        /// When the check fails, switch back to the deploy that was live
        /// before
        #[arg(long, requires = "check")]
        rollback_on_failure: bool,
    },
    /// List the deploys at the target, newest first
    History {
        /// List the previews instead: name, deploy, created, expires, URL
        #[arg(long)]
        previews: bool,
    },
    /// Make DEPLOY (default: the current deploy's parent) current again
    Rollback {
        /// A deploy id from `history`
        deploy: Option<String>,
        /// Take the deploy lock even if another run holds it
        #[arg(long)]
        break_lock: bool,
        /// Once live, fetch the pages that differ and the assets they name
        /// from `[check] url` and compare them with the manifest
        #[arg(long)]
        check: bool,
        /// When the check fails, switch back to the deploy that was live
        /// before the rollback
        #[arg(long, requires = "check")]
        rollback_on_failure: bool,
    },
    /// Delete deploys and objects that no kept deploy needs
    Prune {
        /// Keep the newest N deploys [default: `[prune] keep`, 10]
        #[arg(long, value_name = "N")]
        keep: Option<usize>,
        /// Keep everything younger than this, e.g. 7d [default: `[prune] min_age`, 7d]
        #[arg(long, value_name = "DURATION")]
        min_age: Option<String>,
        /// Delete nothing when more than N keys would go
        #[arg(long, value_name = "N", default_value_t = 1000)]
        max_deletes: usize,
        /// List what would be deleted
        #[arg(long)]
        dry_run: bool,
        /// Take the deploy lock even if another run holds it
        #[arg(long)]
        break_lock: bool,
        /// Delete every expired preview whole, instead of old deploys
        #[arg(long, conflicts_with_all = ["keep", "min_age", "preview"])]
        previews: bool,
        /// Delete preview NAME whole, now, instead of old deploys
        #[arg(long, value_name = "NAME", conflicts_with_all = ["keep", "min_age"])]
        preview: Option<String>,
    },
    /// Check every object the current manifest names
    Verify {
        /// Write again what the checks find wrong: stable keys from their
        /// objects, lost objects from the local build
        #[arg(long)]
        repair: bool,
        /// Take over the deploy lock even if another run holds it
        #[arg(long)]
        break_lock: bool,
    },
    /// Print an nginx server block that serves a file:// target
    NginxConfig {
        /// The `listen` directive: a port or address:port
        #[arg(long, default_value = "8080")]
        listen: String,
        /// The `server_name` directive
        #[arg(long, default_value = "_")]
        server_name: String,
    },
    /// Print the completion script for a shell
    Completions {
        /// The shell to complete in
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page, assetpub(1), in roff
    Man {
        /// Write assetpub.1 and one page a command (assetpub-publish.1, ...)
        /// into DIR instead
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
}
