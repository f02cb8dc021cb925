//! `rollback [DEPLOY]`: make an earlier deploy current again, by server-side
//! copies from its immutable objects and one conditional manifest write;
//! never from the local build.

use std::time::Instant;

use serde::Serialize;

use crate::commands::context::{Context, deploy_record};
use crate::error::{Error, Result};
use crate::integrations::cdn::Invalidation;
use crate::remote::lock::Lock;
use crate::remote::manifest::object_meta;
use crate::remote::manifest::{Manifest, objects_for};
use crate::remote::switch::{StableWrite, SwitchJob};
use crate::store::CopyJob;

#[derive(Debug, Clone, Serialize)]
pub struct RollbackReport {
    pub target: String,
    pub from: String,
    pub to: String,
    pub changed: bool,
    pub stable_keys: usize,
    /// Whether Django's `staticfiles.json` was written for the restored deploy.
    pub staticfiles: bool,
    pub duration_ms: u64,
    /// What the CDN was told once the restored deploy was live.
    pub invalidation: Option<Invalidation>,
}

impl RollbackReport {
    pub fn render(&self) -> String {
        if !self.changed {
            return format!(
                "{} is already the current deploy at {}\n",
                self.to, self.target
            );
        }
        let mut out = format!(
            "rolled back {} from {} to {}: {} stable keys restored{}, {:.2}s\n",
            self.target,
            self.from,
            self.to,
            self.stable_keys,
            if self.staticfiles {
                ", Django's staticfiles.json rewritten"
            } else {
                ""
            },
            self.duration_ms as f64 / 1000.0
        );
        if let Some(i) = &self.invalidation {
            out.push_str(&format!("  {}\n", i.render()));
        }
        out
    }

    /// The error a failed CDN invalidation turns into; the rollback is live.
    pub fn invalidation_failure(&self) -> Option<Error> {
        self.invalidation.as_ref()?.failure(&self.to, &self.target)
    }
}

/// Makes `deploy` (default: the current deploy's parent) current again.
/// With `only_from`, only while that deploy is the current one: a check
/// that failed undoes its own deploy, never one that went live since.
pub async fn rollback(
    ctx: &mut Context,
    deploy: Option<&str>,
    break_lock: bool,
    only_from: Option<&str>,
) -> Result<RollbackReport> {
    let started = Instant::now();
    let remote = ctx.remote_manifest().await?;
    let Some(current) = remote.manifest.clone() else {
        return Err(Error::Config(format!(
            "nothing to roll back: there is no `{}` at {}",
            ctx.config.manifest_key,
            ctx.store.describe()
        )));
    };
    if let Some(expected) = only_from
        && current.deploy != expected
    {
        return Err(Error::conflict(
            crate::error::Conflict::ManifestMoved,
            format!(
                "not rolling back: {} now serves deploy `{}`, not `{expected}`",
                ctx.store.describe(),
                current.deploy
            ),
        ));
    }
    let to = match deploy {
        Some(d) => d.to_string(),
        None => current.parent.clone().ok_or_else(|| {
            Error::Config(format!(
                "the current deploy `{}` has no parent to roll back to",
                current.deploy
            ))
            .with_hint("name a deploy from `assetpub history`")
        })?,
    };
    let mut report = RollbackReport {
        target: ctx.store.describe(),
        from: current.deploy.clone(),
        to: to.clone(),
        changed: false,
        stable_keys: 0,
        staticfiles: false,
        duration_ms: 0,
        invalidation: None,
    };
    if to == current.deploy {
        return Ok(report);
    }
    let target = ctx.deploy_manifest(&to).await?.ok_or_else(|| {
        Error::Config(format!("unknown deploy `{to}` at {}", ctx.store.describe()))
            .with_hint("`assetpub history` lists the deploys that can be restored")
    })?;
    check_restorable(ctx, &current, &target).await?;

    report.stable_keys = ctx
        .locked(
            "rollback",
            break_lock,
            false,
            async |ctx, lock, enforced| {
                switch(ctx, &remote, &current, &target, lock, enforced).await
            },
        )
        .await?;
    report.changed = true;
    report.staticfiles = ctx.config.django;
    if let Some(cdn) = &ctx.config.cdn {
        report.invalidation = Some(
            crate::integrations::cdn::invalidate(
                &ctx.config,
                ctx.reporter.as_ref(),
                cdn,
                Some(&current),
                &target,
            )
            .await,
        );
    }
    report.duration_ms = started.elapsed().as_millis() as u64;
    Ok(report)
}

/// Refuses a deploy whose immutable objects are gone (pruned), naming them.
/// Whether `logical` is a page `target` wrote straight that `served` has
/// as it is: its stable key already holds it, and its object may not exist.
fn kept_in_place(served: &Manifest, target: &Manifest, logical: &str) -> bool {
    let same_layout = served.sidecars == target.sidecars && served.encoding == target.encoding;
    target.files.get(logical).is_some_and(|e| {
        e.is_written_straight() && same_layout && served.files.get(logical) == Some(e)
    })
}

/// Fails, naming them, when objects `target` needs are gone. Not counted:
/// the objects of pages the served deploy still has as they are, and those
/// the rollback is about to make from the served deploy's stable keys.
async fn check_restorable(ctx: &Context, current: &Manifest, target: &Manifest) -> Result<()> {
    let made: std::collections::HashSet<String> =
        crate::remote::switch::twins_needed(current, target)
            .into_iter()
            .map(|t| t.object)
            .collect();
    let needed: Vec<String> = target
        .files
        .iter()
        .filter(|(logical, _)| !kept_in_place(current, target, logical))
        .flat_map(|(_, e)| objects_for(e, target.sidecars, target.object_encoding()))
        .filter(|o| !o.stable && !made.contains(&o.key))
        .map(|o| o.key)
        .collect();
    let missing =
        crate::store::missing_keys(&ctx.store, ctx.config.target.concurrency, &needed).await?;
    if missing.is_empty() {
        return Ok(());
    }
    let shown: Vec<_> = missing.iter().take(10).map(|k| format!("  {k}")).collect();
    let more = if missing.len() > shown.len() {
        format!("\n  ... and {} more", missing.len() - shown.len())
    } else {
        String::new()
    };
    Err(Error::Input(format!(
        "cannot roll back to `{}`: {} of the objects it needs are gone from {} (pruned?):\n{}{more}",
        target.deploy,
        missing.len(),
        ctx.store.describe(),
        shown.join("\n")
    )))
}

async fn switch(
    ctx: &mut Context,
    remote: &crate::remote::switch::Remote,
    current: &Manifest,
    target: &Manifest,
    lock: &Lock,
    enforced: bool,
) -> Result<usize> {
    let (remote, _) = crate::remote::switch::resolve(&ctx.switch_target(enforced), remote).await?;
    let served = remote.manifest.as_ref().unwrap_or(current);
    // Every stable key of the restored deploy is written, not only those
    // whose entry differs: a page that drifted is put right too. Except a
    // page written straight that the served deploy has as it is: its stable
    // key is the copy there is.
    let mut copies = Vec::new();
    for (logical, entry) in &target.files {
        if kept_in_place(served, target, logical) {
            continue;
        }
        for o in objects_for(entry, target.sidecars, target.object_encoding()) {
            if let Some(from) = o.copy_of {
                copies.push(StableWrite::Copy(CopyJob {
                    from,
                    meta: object_meta(entry, o.variant, true),
                    to: o.key,
                }));
            }
        }
    }
    let copied = copies.len();
    let twins = match ctx.store.releases() {
        None => crate::remote::switch::twins_needed(served, target),
        Some(_) => Vec::new(),
    };
    // Stable keys of files the restored deploy does not have.
    let stale: Vec<String> = current
        .files
        .iter()
        .filter(|(logical, _)| !target.files.contains_key(*logical))
        .flat_map(|(_, e)| objects_for(e, current.sidecars, current.object_encoding()))
        .filter(|o| o.stable)
        .map(|o| o.key)
        .collect();
    let staticfiles = ctx
        .config
        .django
        .then(|| crate::remote::django::staticfiles_json(&target.files));
    // The restored deploy, with what this run knows of the store.
    let target = &Manifest {
        conditional_writes: Some(enforced),
        ..target.settled()
    };
    let json = target.to_json();
    // Every redirect object of the restored deploy is written too (S3).
    let (redirects, mut dropped) = match ctx.store.releases() {
        None => crate::remote::switch::redirect_changes(Some(current), target, true),
        Some(_) => (Vec::new(), Vec::new()),
    };
    dropped.retain(|k| !stale.contains(k));
    let stale: Vec<String> = stale.into_iter().chain(dropped).collect();
    let switched = crate::remote::switch::switch(
        &ctx.switch_target(enforced),
        lock,
        &remote,
        SwitchJob {
            to: target.clone(),
            to_json: json.clone(),
            stable: copies,
            twins,
            remove: stale,
            staticfiles: staticfiles.clone(),
            redirects,
            record: false,
        },
    )
    .await?;
    ctx.state
        .record_deploy(ctx.target.id, &deploy_record(target, None))?;
    let text = String::from_utf8(json).expect("manifest JSON is UTF-8");
    ctx.remember(switched.etag.as_deref(), Some(&text), Some(&target.deploy))?;
    if let Some(sf) = &staticfiles {
        crate::remote::django::write_local_if_changed(ctx.config.django_local.as_deref(), sf)?;
    }
    Ok(copied)
}
