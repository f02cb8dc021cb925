//! Previews: a build published under `<prefix>/_previews/<name>/`, with its
//! own manifest, deploy records and lock, never touching the live site's.
//! Here: a preview's context (the commands then run on it as on a target),
//! the list of previews (`history --previews`), and their deletion
//! (`prune --preview NAME`, `prune --previews`).

use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;

use crate::commands::context::{Context, PreviewTarget};
use crate::commands::publish::preview::preview_names;
use crate::concurrency::limited;
use crate::error::{Error, Result};
use crate::keys::{DEPLOYS_PREFIX, LOCK_KEY, PREVIEWS_PREFIX, is_preview_name};
use crate::remote::manifest::Manifest;
use crate::settings::{Config, TargetUrl};
use crate::store::prefixed::Prefixed;
use crate::store::{GetOutcome, Listed, Store};

/// Refuses a preview name that is not one plain key segment, and a target
/// that cannot hold previews, before anything is read.
pub fn check(config: &Config, name: Option<&str>) -> Result<()> {
    if let Some(name) = name
        && !is_preview_name(name)
    {
        return Err(Error::Input(format!(
            "invalid preview name `{name}`: use 1 to 63 of a-z, 0-9 and `-`, e.g. `pr-123`"
        )));
    }
    if let TargetUrl::Dir(_) = config.target.url {
        return Err(Error::Config(format!(
            "previews need an S3 target; `{}` is a directory",
            config.target.url
        ))
        .with_hint("publish previews to an S3 bucket (or an S3-compatible store)"));
    }
    Ok(())
}

/// `ctx` (the whole target) turned into preview `name`'s context: its
/// store is the target's under `_previews/<name>/`, its state the preview's
/// own, and nothing reaches the live site's CDN or Django's local copy.
pub fn enter(ctx: Context, name: &str) -> Result<Context> {
    let Context {
        mut config,
        state,
        store,
        reporter,
        target: live,
        ..
    } = ctx;
    let prefix = format!("{PREVIEWS_PREFIX}{name}/");
    let preview_store: Arc<dyn Store> = Arc::new(Prefixed::new(store.clone(), &prefix));
    let url = format!("{}/{}", config.target.url, prefix.trim_end_matches('/'));
    let mut target = state.target(&url)?;
    target.known_at(&preview_store.describe());
    // The same store: what the live site's runs probed holds here too.
    if target.conditional_writes.is_none()
        && let Some(enforced) = live.conditional_writes
    {
        state.set_conditional_writes(target.id, enforced, &preview_store.describe())?;
        target.conditional_writes = Some(enforced);
    }
    config.cdn = None;
    config.django_local = None;
    let preview = PreviewTarget {
        name: name.to_string(),
        prefix,
        root: store,
        url: config.preview.url(name),
        ttl: config.preview.ttl,
    };
    Ok(Context {
        config,
        state,
        store: preview_store,
        target,
        reporter,
        preview: Some(preview),
    })
}

/// One preview as `history --previews` lists it.
#[derive(Debug, Clone, Serialize)]
pub struct PreviewEntry {
    pub name: String,
    pub deploy: String,
    pub created: String,
    pub expires: Option<String>,
    /// Past `expires`: the next `prune --previews` deletes it.
    pub expired: bool,
    pub url: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PreviewList {
    pub target: String,
    pub previews: Vec<PreviewEntry>,
}

/// Every preview at the target with its served manifest, by name.
async fn previews(ctx: &Context) -> Result<Vec<(String, Manifest)>> {
    let names = preview_names(ctx.store.as_ref()).await?;
    let store = ctx.store.clone();
    let manifest_key = ctx.config.manifest_key.clone();
    let fetched = limited(16, names, |name| {
        let store = store.clone();
        let key = format!("{PREVIEWS_PREFIX}{name}/{manifest_key}");
        async move {
            let m = match store.get(&key, None).await? {
                GetOutcome::Found(f) => Some(Manifest::parse(
                    &f.bytes,
                    &format!("`{key}` at {}", store.describe()),
                )),
                _ => None,
            };
            Ok::<_, Error>(m.map(|m| (name, m)))
        }
    })
    .try_collect(|e| Error::Runtime(format!("preview task failed: {e}")))
    .await?;
    // One preview's manifest that cannot be read does not hide the others.
    let mut out: Vec<(String, Manifest)> = Vec::new();
    for (name, m) in fetched.into_iter().flatten() {
        match m {
            Ok(m) => out.push((name, m)),
            Err(e) => ctx
                .reporter
                .warn(&format!("skipping preview `{name}`: {e}")),
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

fn is_expired(m: &Manifest, now: chrono::DateTime<chrono::Utc>) -> bool {
    m.expires
        .as_deref()
        .and_then(|e| chrono::DateTime::parse_from_rfc3339(e).ok())
        .is_some_and(|e| e.to_utc() <= now)
}

/// `history --previews`.
pub async fn list(ctx: &Context) -> Result<PreviewList> {
    let now = chrono::Utc::now();
    let previews = previews(ctx)
        .await?
        .into_iter()
        .map(|(name, m)| PreviewEntry {
            url: ctx.config.preview.url(&name),
            expired: is_expired(&m, now),
            name,
            deploy: m.deploy,
            created: m.created,
            expires: m.expires.map(String::from),
        })
        .collect();
    Ok(PreviewList {
        target: ctx.store.describe(),
        previews,
    })
}

impl PreviewList {
    pub fn render(&self) -> String {
        if self.previews.is_empty() {
            return format!("no previews at {}\n", self.target);
        }
        let rows: Vec<Vec<String>> = self
            .previews
            .iter()
            .map(|p| {
                vec![
                    p.name.clone(),
                    p.deploy.clone(),
                    p.created.clone(),
                    match (&p.expires, p.expired) {
                        (Some(e), true) => format!("{e} (expired)"),
                        (Some(e), false) => e.clone(),
                        (None, _) => "never".to_string(),
                    },
                    p.url.clone().unwrap_or_else(|| "-".to_string()),
                ]
            })
            .collect();
        format!(
            "previews at {}:\n{}",
            self.target,
            crate::util::table(&["NAME", "DEPLOY", "CREATED", "EXPIRES", "URL"], &rows)
        )
    }
}

pub struct DeleteOptions {
    pub max_deletes: usize,
    pub dry_run: bool,
    pub break_lock: bool,
}

/// One preview `prune` deleted (or, in a dry run, would delete) whole.
#[derive(Debug, Clone, Serialize)]
pub struct DeletedPreview {
    pub name: String,
    /// The deploy it served (`null` when it had no manifest left).
    pub deploy: Option<String>,
    pub expires: Option<String>,
    /// Its keys, manifest, deploy records and lock included.
    pub objects: u64,
    pub bytes: u64,
}

/// `prune --preview NAME` and `prune --previews`.
#[derive(Debug, Clone, Serialize)]
pub struct PreviewPruneReport {
    pub target: String,
    pub dry_run: bool,
    pub previews: Vec<DeletedPreview>,
    pub deleted_objects: u64,
    pub deleted_bytes: u64,
    pub duration_ms: u64,
}

impl PreviewPruneReport {
    pub fn render(&self) -> String {
        let verb = if self.dry_run {
            "would delete"
        } else {
            "deleted"
        };
        let mut out = String::new();
        for p in &self.previews {
            out.push_str(&format!(
                "preview {}  deploy {}  expires {}  {} objects ({})\n",
                p.name,
                p.deploy.as_deref().unwrap_or("-"),
                p.expires.as_deref().unwrap_or("never"),
                p.objects,
                crate::util::human_bytes(p.bytes)
            ));
        }
        out.push_str(&format!(
            "{}: {verb} {} preview{}, {} objects ({})\n",
            self.target,
            self.previews.len(),
            if self.previews.len() == 1 { "" } else { "s" },
            self.deleted_objects,
            crate::util::human_bytes(self.deleted_bytes)
        ));
        out
    }
}

/// Deletes preview `name` whole, now (`prune --preview NAME`). `ctx` is the
/// whole target's.
pub async fn prune_one(
    ctx: Context,
    name: &str,
    opts: &DeleteOptions,
) -> Result<PreviewPruneReport> {
    let started = Instant::now();
    let target = ctx.store.describe();
    let prefix = format!("{PREVIEWS_PREFIX}{name}/");
    let listed = ctx.store.list(&prefix).await?;
    let found = !listed.is_empty();
    let mut report = PreviewPruneReport {
        target,
        dry_run: opts.dry_run,
        previews: Vec::new(),
        deleted_objects: 0,
        deleted_bytes: 0,
        duration_ms: 0,
    };
    if found {
        let manifest_key = format!("{prefix}{}", ctx.config.manifest_key);
        let manifest = match ctx.store.get(&manifest_key, None).await? {
            GetOutcome::Found(f) => Manifest::parse(&f.bytes, &format!("`{manifest_key}`")).ok(),
            _ => None,
        };
        let planned = planned(name, manifest.as_ref(), &listed, &prefix);
        budget(&report.target, planned.objects, opts)?;
        let (_, done) = delete(ctx, name, planned, opts, false).await?;
        report.previews.extend(done?);
    } else {
        ctx.reporter.warn(&format!(
            "there is no preview `{name}` at {}: nothing to delete",
            report.target
        ));
    }
    report.deleted_objects = report.previews.iter().map(|p| p.objects).sum();
    report.deleted_bytes = report.previews.iter().map(|p| p.bytes).sum();
    report.duration_ms = started.elapsed().as_millis() as u64;
    Ok(report)
}

/// Deletes every expired preview whole (`prune --previews`). `ctx` is the
/// whole target's. A preview that cannot be deleted (its lock is held: it
/// is being published) does not keep the others from going: the report
/// says what was deleted, and the first such error comes with it.
pub async fn prune_expired(
    mut ctx: Context,
    opts: &DeleteOptions,
) -> Result<(PreviewPruneReport, Option<Error>)> {
    let started = Instant::now();
    let now = chrono::Utc::now();
    let target = ctx.store.describe();
    let expired: Vec<(String, Manifest)> = previews(&ctx)
        .await?
        .into_iter()
        .filter(|(_, m)| is_expired(m, now))
        .collect();
    let listed = if expired.is_empty() {
        Vec::new()
    } else {
        ctx.store.list(PREVIEWS_PREFIX).await?
    };
    let mut plans = Vec::new();
    for (name, m) in &expired {
        let prefix = format!("{PREVIEWS_PREFIX}{name}/");
        let mine: Vec<Listed> = listed
            .iter()
            .filter(|l| l.key.starts_with(&prefix))
            .cloned()
            .collect();
        plans.push((name.clone(), planned(name, Some(m), &mine, &prefix)));
    }
    // All or nothing: --max-deletes counts every preview's keys.
    budget(&target, plans.iter().map(|(_, p)| p.objects).sum(), opts)?;
    let mut report = PreviewPruneReport {
        target,
        dry_run: opts.dry_run,
        previews: Vec::new(),
        deleted_objects: 0,
        deleted_bytes: 0,
        duration_ms: 0,
    };
    let mut failed: Option<Error> = None;
    for (name, planned) in plans {
        let (back, done) = delete(ctx, &name, planned, opts, true).await?;
        ctx = back;
        match done {
            Ok(done) => report.previews.extend(done),
            Err(e) => {
                ctx.reporter
                    .warn(&format!("preview `{name}` was not deleted: {e}"));
                failed.get_or_insert(e);
            }
        }
    }
    report.deleted_objects = report.previews.iter().map(|p| p.objects).sum();
    report.deleted_bytes = report.previews.iter().map(|p| p.bytes).sum();
    report.duration_ms = started.elapsed().as_millis() as u64;
    Ok((report, failed))
}

fn planned(name: &str, m: Option<&Manifest>, listed: &[Listed], prefix: &str) -> DeletedPreview {
    // The lock is not counted: an idle preview has none.
    let keys = listed
        .iter()
        .filter(|l| l.key.strip_prefix(prefix) != Some(LOCK_KEY));
    DeletedPreview {
        name: name.to_string(),
        deploy: m.map(|m| m.deploy.clone()),
        expires: m.and_then(|m| m.expires.as_deref().map(String::from)),
        objects: keys.clone().count() as u64,
        bytes: keys.map(|l| l.size).sum(),
    }
}

fn budget(target: &str, total: u64, opts: &DeleteOptions) -> Result<()> {
    if total > opts.max_deletes as u64 {
        return Err(Error::Runtime(format!(
            "prune would delete {total} keys at {target}, more than --max-deletes {}; nothing was deleted",
            opts.max_deletes
        ))
        .with_hint("check `assetpub prune --dry-run`, then raise --max-deletes"));
    }
    Ok(())
}

/// Deletes preview `name` holding its lock, so a publish of it under way is
/// not deleted under it (nor a deletion published over). Its objects go
/// first, then its deploy records, then its manifest: an interrupted
/// deletion leaves a preview that is still listed, and deleted by the next
/// prune. With `expired_only`, a preview whose manifest, read again under
/// the lock, no longer serves the expired deploy `planned` names (published
/// again since it was listed) is left alone (None). Returns the whole
/// target's context, and what was deleted or why not.
async fn delete(
    ctx: Context,
    name: &str,
    planned: DeletedPreview,
    opts: &DeleteOptions,
    expired_only: bool,
) -> Result<(Context, Result<Option<DeletedPreview>>)> {
    let mut pctx = enter(ctx, name)?;
    // Read for what it says of the store (conditional writes), so that a
    // fresh runner does not probe; one that cannot be read does not keep
    // the preview from being deleted.
    let _ = pctx.remote_manifest().await;
    let result = if opts.dry_run {
        Ok(Some(planned))
    } else {
        pctx.locked("prune", opts.break_lock, true, async |ctx, _, _| {
            let manifest_key = ctx.config.manifest_key.clone();
            if expired_only {
                let now = chrono::Utc::now();
                let why = match ctx.store.get(&manifest_key, None).await? {
                    GetOutcome::Found(f) => Manifest::parse(&f.bytes, "")
                        .ok()
                        .filter(|m| Some(&m.deploy) == planned.deploy.as_ref())
                        .filter(|m| is_expired(m, now))
                        .is_none()
                        .then_some("was published again since it was found expired"),
                    _ => Some("was deleted by another run meanwhile"),
                };
                if let Some(why) = why {
                    ctx.reporter
                        .warn(&format!("preview `{name}` {why}: not deleted"));
                    return Ok(None);
                }
            }
            // Listed again under the lock: what a publish added since.
            let listed = ctx.store.list("").await?;
            let mut objects = Vec::new();
            let mut records = Vec::new();
            let mut manifest = Vec::new();
            for l in &listed {
                if l.key == LOCK_KEY {
                    continue;
                } else if l.key == manifest_key {
                    manifest.push(l.key.clone());
                } else if l.key.starts_with(DEPLOYS_PREFIX) {
                    records.push(l.key.clone());
                } else {
                    objects.push(l.key.clone());
                }
            }
            ctx.store.delete(&objects).await?;
            ctx.store.delete(&records).await?;
            ctx.store.delete(&manifest).await?;
            ctx.state.forget_objects(ctx.target.id, &objects)?;
            ctx.state
                .set_remote_manifest(ctx.target.id, None, None, None)?;
            let gone: Vec<&Listed> = listed.iter().filter(|l| l.key != LOCK_KEY).collect();
            Ok(Some(DeletedPreview {
                objects: gone.len() as u64,
                bytes: gone.iter().map(|l| l.size).sum(),
                ..planned
            }))
        })
        .await
    };
    Ok((leave(pctx)?, result))
}

/// The whole target's context again, from a preview's.
fn leave(ctx: Context) -> Result<Context> {
    let Context {
        config,
        state,
        reporter,
        preview,
        store,
        ..
    } = ctx;
    let store = preview.map_or(store, |p| p.root);
    let mut target = state.target(&config.target.url.to_string())?;
    target.known_at(&store.describe());
    Ok(Context {
        config,
        state,
        store,
        target,
        reporter,
        preview: None,
    })
}

/// Fills in the deploy the preview serves after `publish --preview`, and
/// its expiry, from its manifest (read again only if it changed).
pub async fn settle_report(
    ctx: &mut Context,
    report: &mut crate::commands::publish::PublishReport,
) -> Result<()> {
    let remote = ctx.remote_manifest().await?;
    if let (Some(p), Some(m)) = (&mut report.preview, remote.manifest) {
        p.deploy = Some(m.deploy);
        p.expires = m.expires.map(String::from);
    }
    Ok(())
}
