//! `prune`: delete what no kept deploy needs. Keeps the newest `keep`
//! deploys, every deploy younger than `min_age` and the current one, and
//! everything they reference; deletes only keys assetpub wrote (named by a
//! deploy manifest, or a fingerprinted name whose hash matches the content),
//! and only when older than `min_age`, so pages still cached in browsers and
//! CDN edges never point at a deleted asset. Also the keys interrupted
//! probes of conditional writes left, which nothing points at.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::commands::context::Context;
use crate::concurrency::limited;
use crate::error::{Error, Result};
use crate::keys::{PREVIEWS_PREFIX, PROBE_PREFIX};
use crate::remote::manifest::{DEPLOYS_PREFIX, LOCK_KEY, Manifest};
use crate::settings::redirects::s3_objects;
use crate::store::{ContentDigest, GetOutcome, Listed, Store};

/// A probe of conditional writes takes two writes and a delete: a probe key
/// this old (or older than `--min-age`, if that is less) was left by a run
/// that stopped in the middle. No other run probes while prune holds the
/// lock, but for one that finds it held and probes before it gives up.
const PROBE_LEFT_AFTER: Duration = Duration::from_secs(600);

#[derive(Debug, Clone)]
pub struct PruneOptions {
    pub keep: usize,
    pub min_age: Duration,
    pub max_deletes: usize,
    pub dry_run: bool,
    pub break_lock: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct PruneReport {
    pub target: String,
    pub dry_run: bool,
    pub kept_deploys: Vec<String>,
    pub deleted_deploys: Vec<String>,
    pub deleted_objects: Vec<String>,
    /// Releases of a directory target (by name): those of deploys no
    /// longer kept, and unfinished ones of interrupted runs.
    pub deleted_releases: Vec<String>,
    pub deleted_bytes: u64,
    pub duration_ms: u64,
}

impl PruneReport {
    pub fn render(&self) -> String {
        let verb = if self.dry_run {
            "would delete"
        } else {
            "deleted"
        };
        let mut out = String::new();
        if self.dry_run {
            for d in &self.deleted_deploys {
                out.push_str(&format!("deploy  {d}\n"));
            }
            for k in &self.deleted_objects {
                out.push_str(&format!("object  {k}\n"));
            }
            for r in &self.deleted_releases {
                out.push_str(&format!("release {r}\n"));
            }
        }
        let releases = if self.deleted_releases.is_empty() {
            String::new()
        } else {
            format!(", {} releases", self.deleted_releases.len())
        };
        out.push_str(&format!(
            "{}: {verb} {} deploys{releases} and {} objects ({}); kept {} deploys\n",
            self.target,
            self.deleted_deploys.len(),
            self.deleted_objects.len(),
            crate::util::human_bytes(self.deleted_bytes),
            self.kept_deploys.len()
        ));
        out
    }
}

pub async fn prune(ctx: &mut Context, opts: &PruneOptions) -> Result<PruneReport> {
    let started = Instant::now();
    let remote = ctx.remote_manifest().await?;
    let mut report = PruneReport {
        target: ctx.store.describe(),
        dry_run: opts.dry_run,
        kept_deploys: Vec::new(),
        deleted_deploys: Vec::new(),
        deleted_objects: Vec::new(),
        deleted_releases: Vec::new(),
        deleted_bytes: 0,
        duration_ms: 0,
    };
    let Some(current) = remote.manifest.clone() else {
        return Ok(report);
    };
    if opts.dry_run {
        select_and_delete(ctx, &current, opts, &mut report).await?;
    } else {
        // A lock that cannot be released fails the prune.
        ctx.locked("prune", opts.break_lock, true, async |ctx, _, enforced| {
            let remote = crate::remote::switch::Remote {
                manifest: Some(current.clone()),
                etag: remote.etag.clone(),
            };
            crate::remote::switch::resolve(&ctx.switch_target(enforced), &remote).await?;
            select_and_delete(ctx, &current, opts, &mut report).await
        })
        .await?;
    }
    report.duration_ms = started.elapsed().as_millis() as u64;
    Ok(report)
}

async fn select_and_delete(
    ctx: &mut Context,
    current: &Manifest,
    opts: &PruneOptions,
    report: &mut PruneReport,
) -> Result<()> {
    let listing = ctx.store.list("").await?;
    let deploy_ids: Vec<String> = listing
        .iter()
        .filter_map(|l| {
            l.key
                .strip_prefix(DEPLOYS_PREFIX)?
                .strip_suffix(".json")
                .map(String::from)
        })
        .collect();
    let manifests = fetch_all(ctx.store.clone(), &deploy_ids).await?;
    let now = chrono::Utc::now();
    let age_of = |m: &Manifest| {
        chrono::DateTime::parse_from_rfc3339(&m.created)
            .map(|t| (now - t.to_utc()).to_std().unwrap_or(Duration::ZERO))
            .unwrap_or(Duration::ZERO)
    };
    let mut by_age: Vec<&Manifest> = manifests.values().collect();
    by_age.sort_by(|a, b| (&b.created, &b.deploy).cmp(&(&a.created, &a.deploy)));
    let mut kept: BTreeSet<&str> = BTreeSet::new();
    kept.insert(&current.deploy);
    for (i, m) in by_age.iter().enumerate() {
        if i < opts.keep || age_of(m) < opts.min_age {
            kept.insert(&m.deploy);
        }
    }
    // Everything a kept deploy (or the live manifest) needs stays.
    let mut needed: BTreeSet<String> = current.objects().into_iter().map(|o| o.key).collect();
    // The live redirect objects (S3) too; never listed as assetpub's, so
    // this only keeps a future change from deleting them.
    needed.extend(s3_objects(&current.redirects).into_keys());
    for m in manifests
        .values()
        .filter(|m| kept.contains(m.deploy.as_str()))
    {
        needed.extend(m.objects().into_iter().map(|o| o.key));
    }
    // Keys assetpub wrote: named by some deploy, or recorded by this machine.
    let mut ours: HashMap<String, ()> = HashMap::new();
    for m in manifests.values() {
        for o in m.objects().into_iter().filter(|o| !o.stable) {
            ours.insert(o.key, ());
        }
    }
    for key in ctx.state.known_objects(ctx.target.id)?.into_keys() {
        ours.insert(key, ());
    }
    let min_age_secs = opts.min_age.as_secs() as i64;
    let probe_left_secs = PROBE_LEFT_AFTER.min(opts.min_age).as_secs() as i64;
    let old_enough = |l: &Listed| now.timestamp() - l.modified >= min_age_secs;
    // Previews are deleted whole, by `prune --preview(s)`, never from here.
    let reserved = |k: &str| {
        k == ctx.config.manifest_key
            || k == LOCK_KEY
            || k.starts_with(".assetpub/")
            || k.starts_with(PREVIEWS_PREFIX)
    };
    let mut candidates: Vec<&Listed> = Vec::new();
    let mut unverified: Vec<&Listed> = Vec::new();
    for l in &listing {
        // A probe's key its run did not get to delete (interrupted); one
        // this young may be another run's probe under way.
        if l.key.starts_with(PROBE_PREFIX) && now.timestamp() - l.modified >= probe_left_secs {
            candidates.push(l);
            continue;
        }
        if reserved(&l.key) || needed.contains(&l.key) || !old_enough(l) {
            continue;
        }
        if ours.contains_key(&l.key) {
            candidates.push(l);
        } else if fingerprint_of(&l.key).is_some() {
            unverified.push(l);
        }
    }
    // Objects of interrupted runs (uploaded, never in a manifest): deleted
    // only when their content hash confirms the name is assetpub's.
    for l in written_by_us(&ctx.store, &unverified).await? {
        candidates.push(l);
    }
    let deleted_deploys: Vec<&Manifest> = by_age
        .iter()
        .copied()
        .filter(|m| !kept.contains(m.deploy.as_str()) && age_of(m) >= opts.min_age)
        .collect();
    report.kept_deploys = kept.iter().map(|s| s.to_string()).collect();
    report.deleted_deploys = deleted_deploys.iter().map(|m| m.deploy.clone()).collect();
    report.deleted_objects = candidates.iter().map(|l| l.key.clone()).collect();
    report.deleted_objects.sort();
    report.deleted_bytes = candidates.iter().map(|l| l.size).sum();
    // A directory target's releases: those no kept deploy needs, and the
    // unfinished ones of interrupted runs (the lock is held: no run is
    // building one now). Never the live one.
    if let Some(releases) = ctx.store.releases() {
        let live = releases.live_release().await?;
        report.deleted_releases = releases
            .list_releases()
            .await?
            .into_iter()
            .filter(|r| match &r.deploy {
                Some(d) => !kept.contains(d.as_str()) && live.as_ref() != Some(d),
                None => true,
            })
            .map(|r| r.name)
            .collect();
    }
    let total =
        report.deleted_objects.len() + report.deleted_deploys.len() + report.deleted_releases.len();
    if total > opts.max_deletes {
        return Err(Error::Runtime(format!(
            "prune would delete {total} keys at {}, more than --max-deletes {}; nothing was deleted",
            ctx.store.describe(),
            opts.max_deletes
        ))
        .with_hint("check `assetpub prune --dry-run`, then raise --max-deletes"));
    }
    if opts.dry_run || total == 0 {
        return Ok(());
    }
    // Releases and objects first: a deploy manifest is the record of what
    // to delete, so it goes last and an interrupted prune can be rerun.
    if let Some(releases) = ctx.store.releases() {
        releases.delete_releases(&report.deleted_releases).await?;
    }
    ctx.store.delete(&report.deleted_objects).await?;
    ctx.state
        .forget_objects(ctx.target.id, &report.deleted_objects)?;
    let deploy_keys: Vec<String> = report
        .deleted_deploys
        .iter()
        .map(|d| Manifest::deploy_key(d))
        .collect();
    ctx.store.delete(&deploy_keys).await
}

async fn fetch_all(
    store: std::sync::Arc<dyn Store>,
    ids: &[String],
) -> Result<HashMap<String, Manifest>> {
    let fetched = limited(16, ids.iter().cloned(), |id| {
        let store = store.clone();
        async move {
            let key = Manifest::deploy_key(&id);
            match store.get(&key, None).await? {
                GetOutcome::Found(f) => Ok(Some(Manifest::parse(&f.bytes, &format!("`{key}`"))?)),
                _ => Ok::<_, Error>(None),
            }
        }
    })
    .try_collect(|e| Error::Runtime(format!("prune task failed: {e}")))
    .await?;
    Ok(fetched
        .into_iter()
        .flatten()
        .map(|m| (m.deploy.clone(), m))
        .collect())
}

/// The 12 hex digits of a fingerprinted key (`name.<12 hex>.ext`, possibly
/// with a `.gz`/`.br` sidecar suffix).
pub fn fingerprint_of(key: &str) -> Option<&str> {
    let base = key
        .strip_suffix(".gz")
        .or_else(|| key.strip_suffix(".br"))
        .unwrap_or(key);
    let name = base.rsplit('/').next()?;
    let parts: Vec<&str> = name.split('.').collect();
    let candidates = match parts.len() {
        0 | 1 => return None,
        2 => vec![parts[1]],
        n => vec![parts[n - 2], parts[n - 1]],
    };
    candidates.into_iter().find(|p| {
        p.len() == 12
            && p.chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
    })
}

async fn written_by_us<'a>(
    store: &std::sync::Arc<dyn Store>,
    listed: &[&'a Listed],
) -> Result<Vec<&'a Listed>> {
    let mut out = Vec::new();
    for l in listed {
        let Some(hash) = fingerprint_of(&l.key) else {
            continue;
        };
        let ours = match store.content_digest(&l.key).await? {
            ContentDigest::Missing => false,
            ContentDigest::Recorded(digest) => digest.is_some_and(|b| b.starts_with(hash)),
            ContentDigest::Bytes(_) => {
                // Sidecars are judged with the object they encode.
                let base = l
                    .key
                    .strip_suffix(".gz")
                    .or_else(|| l.key.strip_suffix(".br"))
                    .unwrap_or(&l.key);
                match store.get(base, None).await? {
                    GetOutcome::Found(f) => {
                        crate::pipeline::hash::hash_bytes(&f.bytes).starts_with(hash)
                    }
                    _ => false,
                }
            }
        };
        if ours {
            out.push(*l);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::fingerprint_of;

    #[test]
    fn fingerprints_in_keys() {
        assert_eq!(
            fingerprint_of("css/app.3f2a9c1b7d4e.css"),
            Some("3f2a9c1b7d4e")
        );
        assert_eq!(
            fingerprint_of("css/app.3f2a9c1b7d4e.css.gz"),
            Some("3f2a9c1b7d4e")
        );
        assert_eq!(fingerprint_of("LICENSE.3f2a9c1b7d4e"), Some("3f2a9c1b7d4e"));
        assert_eq!(
            fingerprint_of("app.js.3f2a9c1b7d4e.map"),
            Some("3f2a9c1b7d4e")
        );
        assert_eq!(fingerprint_of("index.html"), None);
        assert_eq!(fingerprint_of("assets/index-BxK3f9a1.js"), None);
        assert_eq!(fingerprint_of("a.3F2A9C1B7D4E.css"), None);
    }
}
