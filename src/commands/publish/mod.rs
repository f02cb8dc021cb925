//! `plan` and `publish`: the pipeline of the design contract, from collecting
//! the build to switching `manifest.json`.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::commands::context::{Context, deploy_record};
use crate::commands::served::Served;
use crate::error::{Error, Result};
use crate::integrations::cdn::Invalidation;
use crate::keys::{PREVIEWS_PREFIX, RESERVED_PREFIX};
use crate::pipeline::hash;
use crate::pipeline::payload;
use crate::pipeline::plan::{self, FileChange, Plan, PlannedObject};
use crate::pipeline::prepare::{self, Prepared};
use crate::pipeline::{claims, collect, estimate};
use crate::remote::django;
use crate::remote::lock::Lock;
use crate::remote::manifest::{Entry, Variant};
use crate::remote::manifest::{FORMAT_VERSION, Manifest, deploy_id};
use crate::remote::manifest::{Layout, object_meta};
use crate::remote::switch::{self, Remote, SwitchJob, ensure_unmoved};
use crate::report::{Phase, Recording};
use crate::settings::redirects::{self, HeaderRule, Redirect, Rules};
use crate::settings::{Config, Fingerprint};
use crate::state::PreparedFrom;
use crate::store::{Body, CopyJob, copy_all};
use crate::util::human_bytes;

pub mod preview;
pub mod stable;
pub mod state_cache;
pub mod upload;

use state_cache::StateCache;

#[derive(Debug, Default, Clone)]
pub struct PublishOptions {
    pub dry_run: bool,
    pub break_lock: bool,
    /// `--message`; without it, the subject of the build's git commit.
    pub message: Option<String>,
    /// With `dry_run`: estimate the compressed sizes of large files rather
    /// than compress them (`plan`; see `pipeline::estimate`).
    pub estimate_sizes: bool,
}

/// What `plan` and `publish` report (`--json` prints it as is).
#[derive(Debug, Clone, Serialize)]
pub struct PublishReport {
    pub target: String,
    pub dry_run: bool,
    pub changed: bool,
    pub deploy: Option<String>,
    pub parent: Option<String>,
    /// What the deploy is (`--message`, or the git commit's subject).
    pub message: Option<String>,
    pub files: usize,
    pub unchanged: usize,
    pub uploads: Vec<PlannedObject>,
    pub upload_bytes: u64,
    /// Objects the store already had (known from an interrupted run).
    pub already_there: u64,
    /// Objects the state DB recorded at the target that were not there (a
    /// HEAD found them missing): sent again, beyond `uploads`.
    pub resent: u64,
    /// Pages of the served deploy that had been written straight to their
    /// stable keys and that this deploy replaces: each copied to its
    /// fingerprinted key first (one request each), for a rollback.
    pub kept_pages: u64,
    pub header_updates: Vec<PlannedObject>,
    pub stable_keys: Vec<PlannedObject>,
    pub changes: Vec<FileChange>,
    pub removed: Vec<String>,
    /// Django's `staticfiles.json`, with `[manifest] django = true`
    /// (`null` without).
    pub staticfiles: Option<StaticfilesReport>,
    pub hashed: usize,
    pub duration_ms: u64,
    pub timings: Timings,
    /// What the CDN was told once the deploy was live (`null` without
    /// `[cdn]`, on a dry run, or when nothing changed).
    pub invalidation: Option<Invalidation>,
    /// With `--preview` (`null` without).
    pub preview: Option<preview::PreviewReport>,
    /// The build's redirects and header rules, and whether they differ
    /// from the served deploy's.
    pub redirects: Vec<Redirect>,
    pub headers: Vec<HeaderRule>,
    pub rules_changed: bool,
    /// On S3: the redirect objects written (`key`, `location`), and the
    /// keys of those deleted.
    pub redirect_objects: Vec<RedirectObject>,
    pub removed_redirects: Vec<String>,
    /// What the target cannot honour of the rules, one line a rule.
    pub rule_warnings: Vec<String>,
}

/// A redirect object on S3.
#[derive(Debug, Clone, Serialize)]
pub struct RedirectObject {
    pub key: String,
    pub location: String,
}

/// Where the time before any upload went, in milliseconds.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Timings {
    /// Walking and `stat`ing the source dirs (on a thread of its own, while
    /// the state DB and the store are opened).
    pub walk_ms: u64,
    /// Reading and hashing the files the stat cache cannot vouch for, with
    /// the stat cache itself when it was not read alongside the walk.
    pub hash_ms: u64,
    /// Rewriting references, fingerprinting and compressing; 0 when the
    /// served deploy's entries were reused.
    pub prepare_ms: u64,
    /// The switch window: from marking the served manifest (just before
    /// the first page is written) to the new manifest's write. On S3, pages
    /// change key by key within it.
    pub switch_ms: u64,
}

/// What happens to Django's `staticfiles.json` (see django.rs).
#[derive(Debug, Clone, Serialize)]
pub struct StaticfilesReport {
    /// Its key at the target.
    pub key: String,
    /// How many logical paths it maps.
    pub paths: usize,
    /// Whether the target's copy is written (would be, in a dry run); false
    /// when it already holds these paths.
    pub write: bool,
    /// The local copy of `[manifest] local` (`null` without).
    pub local: Option<String>,
    pub write_local: bool,
}

struct Computed {
    plan: Plan,
    remote: Remote,
    /// The prepared files by logical path; empty when the entries were the
    /// current deploy's (nothing to upload).
    files: HashMap<String, Arc<Prepared>>,
    hashed: usize,
    timings: Timings,
    /// What the entries were prepared from, to remember for the deploy
    /// that serves them.
    inputs: PreparedFrom,
    /// The deploy the target serves.
    parent: Option<String>,
    rules: Rules,
    rules_changed: bool,
}

/// The source dirs walked on a thread of their own, started before the
/// state DB and the store are opened: on a run with nothing to do the walk
/// is most of the work, and neither needs the other.
pub struct Walk {
    scan_start: i64,
    handle: std::thread::JoinHandle<(Result<Vec<collect::SourceFile>>, Duration)>,
}

impl Walk {
    pub fn start(config: &Config, reporter: Arc<dyn crate::report::Reporter>) -> Walk {
        // Taken before any file is seen, so that a file written during the
        // walk is not trusted by its stat (see `hash::trusted`).
        let scan_start = crate::util::now_ns();
        let config = config.clone();
        let handle = std::thread::spawn(move || {
            let started = Instant::now();
            let files = collect::collect(&config, &crate::state::SIDE_FILES, reporter.as_ref());
            (files, started.elapsed())
        });
        Walk { scan_start, handle }
    }

    fn finish(self) -> (Result<Vec<collect::SourceFile>>, Duration) {
        self.handle
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    }
}

async fn compute(ctx: &mut Context, walk: Walk, sizes: prepare::Sizes) -> Result<Computed> {
    let scan_start = walk.scan_start;
    let config = ctx.config.clone();
    let reporter = ctx.reporter.clone();
    let recorded = ctx.state.prepared_from(ctx.target.id)?;
    // The build is validated and hashed before anything remote is read, so
    // bad input fails fast and offline.
    // When the last run left a stat key, this one most likely walks the same
    // tree and needs neither the stat cache nor hashing. Otherwise the stat
    // cache is read while the walk goes on: for a large site each takes a
    // good part of a run.
    let expect_same = recorded.as_ref().is_some_and(|p| p.stat_key.is_some());
    let cache = if expect_same {
        None
    } else {
        Some(state_cache::stat_cache(&ctx.state))
    };
    let (collected, walked) = walk.finish();
    let collected = collected?;
    let rules = redirects::load(&config)?;
    // The rules are part of what a deploy is made from: a change of them
    // alone is a new deploy.
    let with_rules = |digest: String| {
        if rules.is_empty() {
            digest
        } else {
            format!("{digest}+rules:{}", rules.digest())
        }
    };
    let cache = cache.transpose()?;
    let mut timings = Timings {
        walk_ms: walked.as_millis() as u64,
        ..Timings::default()
    };
    let file_count = collected.len();
    let stat_key = prepare::stat_key(&config, &collected, scan_start).map(with_rules);
    let same_tree = stat_key.is_some()
        && recorded.as_ref().and_then(|p| p.stat_key.as_ref()) == stat_key.as_ref();
    let mut tree = Some((collected, cache));
    let mut hashed = None;
    let mut hashed_count = 0;
    let inputs = match &recorded {
        Some(p) if same_tree => p.inputs.clone(),
        _ => {
            let tree = tree.take().expect("not hashed yet");
            let (h, inputs) = hash_tree(ctx, tree, scan_start, &mut timings, &mut hashed_count)?;
            hashed = Some(h);
            with_rules(inputs)
        }
    };
    // The same inputs as the deploy the target serves: its entries are what
    // preparing would make again, so the files are not read, rewritten or
    // compressed, and there is nothing to compare.
    let earlier = recorded.filter(|p| p.inputs == inputs);
    let mut remote = None;
    if let Some(earlier) = earlier {
        // Django's staticfiles.json is made from the entries; nothing else
        // on this path needs them.
        let served = if config.django {
            Served::Fetched(Box::new(ctx.remote_manifest().await?))
        } else {
            ctx.served_manifest().await?
        };
        let from = PreparedFrom {
            stat_key: stat_key.clone(),
            ..earlier.clone()
        };
        if stat_key.is_some() && stat_key != earlier.stat_key {
            // The tree is now old enough to vouch for: the next run can
            // skip the stat cache and hashing.
            ctx.state.record_prepared_from(ctx.target.id, &from)?;
        }
        let reuse = |plan: Plan, remote: Remote, deploy: String| {
            for w in &earlier.warnings {
                reporter.warn(w);
            }
            Computed {
                plan,
                remote,
                parent: Some(deploy),
                files: HashMap::new(),
                hashed: hashed_count,
                timings,
                inputs: from.clone(),
                rules: rules.clone(),
                rules_changed: false,
            }
        };
        let layout = Layout::for_config(&config);
        match served {
            Served::Unchanged { deploy, etag } if deploy == earlier.deploy => {
                let remote = Remote {
                    manifest: None,
                    etag,
                };
                let plan = Plan::unchanged(BTreeMap::new(), file_count, layout);
                return Ok(reuse(plan, remote, deploy));
            }
            // A manifest that records an interrupted switch keeps its
            // entries: undoing the switch needs them.
            Served::Fetched(mut r)
                if r.manifest
                    .as_ref()
                    .is_some_and(|m| m.deploy == earlier.deploy && m.switching.is_none()) =>
            {
                // Moved, not copied: for a large site the entries are most
                // of the memory a run uses, and nothing after this reads
                // them from the remote manifest.
                let m = r.manifest.as_mut().expect("checked above");
                let files = std::mem::take(&mut m.files);
                let deploy = m.deploy.clone();
                let plan = Plan::unchanged(files, file_count, layout);
                return Ok(reuse(plan, *r, deploy));
            }
            Served::Fetched(r) => remote = Some(*r),
            // Another deploy than the one these entries were made for:
            // compared in full below.
            Served::Unchanged { .. } => {}
        }
    }
    // Not hashed yet when the walk matched the stat key but the target has
    // moved on: the entries are made afresh.
    let (hashed, inputs) = match hashed {
        Some(h) => (h, inputs),
        None => {
            let tree = tree.take().expect("kept for hashing");
            let (h, inputs) = hash_tree(ctx, tree, scan_start, &mut timings, &mut hashed_count)?;
            (h, with_rules(inputs))
        }
    };
    let recording = Recording::new(reporter.as_ref());
    let started = Instant::now();
    let prepared = prepare::prepare(
        &config,
        hashed,
        sizes,
        &mut StateCache(&mut ctx.state),
        &recording,
    )?;
    timings.prepare_ms = started.elapsed().as_millis() as u64;
    let warnings = recording.into_warnings();
    let layout = Layout::for_config(&config);
    let mut entries: BTreeMap<_, _> = prepared
        .iter()
        .map(|p| (p.logical.clone(), p.entry.clone()))
        .collect();
    check_claims(&config, &entries, layout)?;
    let remote = match remote {
        Some(r) => r,
        None => ctx.remote_manifest().await?,
    };
    check_same_encoding(ctx, &config, remote.manifest.as_ref())?;
    let estimated = estimate::settle(&mut entries, &prepared, remote.manifest.as_ref(), layout);
    if let Some(current) = &remote.manifest {
        let problems = claims::over_served(&entries, layout, current);
        if !problems.is_empty() {
            return Err(Error::Validation(problems));
        }
    }
    let problems = crate::pipeline::redirect_claims::collisions(
        &entries,
        layout,
        &reserved(&config),
        remote.manifest.as_ref(),
        &rules,
    );
    if !problems.is_empty() {
        return Err(Error::Validation(problems));
    }
    let rules_changed = match &remote.manifest {
        Some(m) => m.redirects != rules.redirects() || m.headers != rules.headers(),
        None => !rules.is_empty(),
    };
    let known = state_cache::known_objects(&ctx.state, ctx.target.id, || {
        plan::unaccounted(&entries, layout, remote.manifest.as_ref())
    })?;
    let mut plan = plan::plan(
        entries,
        layout,
        remote.manifest.as_ref(),
        &known,
        config.is_s3(),
        // A store with releases links each page to its object; a preview
        // uploads its pages' objects, or copies them from the live site.
        ctx.store.releases().is_none() && ctx.preview.is_none(),
    );
    estimate::mark(&mut plan, &estimated);
    check_occupied(&plan)?;
    let inputs = PreparedFrom {
        inputs,
        deploy: String::new(),
        warnings,
        stat_key,
    };
    if !plan.has_changes()
        && !rules_changed
        && let Some(m) = &remote.manifest
    {
        // The entries are the current deploy's.
        ctx.state.record_prepared_from(
            ctx.target.id,
            &PreparedFrom {
                deploy: m.deploy.clone(),
                ..inputs.clone()
            },
        )?;
    }
    let files = prepared
        .into_iter()
        .map(|p| (p.logical.clone(), Arc::new(p)))
        .collect();
    Ok(Computed {
        plan,
        parent: remote.manifest.as_ref().map(|m| m.deploy.clone()),
        remote,
        files,
        hashed: hashed_count,
        timings,
        inputs,
        rules,
        rules_changed,
    })
}

/// The local build, collected, hashed and prepared as a publish would, for
/// a repair that needs the bytes of objects the target lost. With the
/// bodies of the objects `wanted` asks for ((logical, blake3, variant)):
/// None for one the build does not hold.
pub async fn local_objects(
    ctx: &mut Context,
    wanted: &[(String, String, Variant)],
) -> Result<Vec<Option<Body>>> {
    let walk = Walk::start(&ctx.config, ctx.reporter.clone());
    let scan_start = walk.scan_start;
    let (collected, _) = walk.finish();
    let mut timings = Timings::default();
    let mut hashed = 0;
    let (files, _) = hash_tree(
        ctx,
        (collected?, None),
        scan_start,
        &mut timings,
        &mut hashed,
    )?;
    let config = ctx.config.clone();
    let recording = Recording::new(ctx.reporter.as_ref());
    let prepared = prepare::prepare(
        &config,
        files,
        prepare::Sizes::Exact,
        &mut StateCache(&mut ctx.state),
        &recording,
    )?;
    let by_logical: HashMap<&str, &Prepared> =
        prepared.iter().map(|p| (p.logical.as_str(), p)).collect();
    let found: Vec<Option<(&Prepared, Variant)>> = wanted
        .iter()
        .map(|(logical, blake3, variant)| {
            by_logical
                .get(logical.as_str())
                .filter(|p| p.entry.blake3 == *blake3)
                .map(|p| (*p, *variant))
        })
        .collect();
    let objects: Vec<(&Prepared, Variant)> = found.iter().flatten().copied().collect();
    let mut payloads = payload::payloads(&objects, config.rewrite_js_imports)?.into_iter();
    Ok(found
        .iter()
        .map(|f| f.map(|_| upload::body(payloads.next().expect("one payload an object"))))
        .collect())
}

/// blake3 of every collected file the stat cache cannot vouch for (the
/// cache is read here when the walk did not read it alongside), and the
/// inputs digest of the result. Counts the files hashed into `hashed` and
/// the time taken into `timings`.
fn hash_tree(
    ctx: &mut Context,
    (collected, cache): (
        Vec<collect::SourceFile>,
        Option<HashMap<String, crate::pipeline::cache::Stat>>,
    ),
    scan_start: i64,
    timings: &mut Timings,
    hashed: &mut usize,
) -> Result<(Vec<hash::HashedFile>, String)> {
    let started = Instant::now();
    let cache = match cache {
        Some(c) => c,
        None => state_cache::stat_cache(&ctx.state)?,
    };
    let scanner = crate::pipeline::scan::Scanner::new(&ctx.config);
    let reporter = ctx.reporter.clone();
    let (files, stats) = hash::hash_all(
        collected,
        cache,
        &mut StateCache(&mut ctx.state),
        scan_start,
        &scanner,
        reporter.as_ref(),
    )?;
    let inputs = prepare::inputs_digest(&ctx.config, &files);
    timings.hash_ms = started.elapsed().as_millis() as u64;
    *hashed = stats.hashed;
    Ok((files, inputs))
}

/// Refuses to change what the objects of a target hold (`[target]
/// encoding`): a fingerprinted key names one file's bytes, and its object is
/// cached for a year. Holding them in another encoding under the same key
/// would swap the bytes under cached URLs and break rollback, which copies
/// earlier deploys' objects with their own headers. A new prefix starts
/// afresh.
fn check_same_encoding(ctx: &Context, config: &Config, current: Option<&Manifest>) -> Result<()> {
    let Some(m) = current else { return Ok(()) };
    let wanted = Layout::for_config(config).encoding;
    if m.object_encoding() == wanted {
        return Ok(());
    }
    Err(Error::Config(format!(
        "`[target] encoding` is `{}`, but the objects of {} hold `{}` (deploy {}); changing it would put other bytes under keys that browsers and CDNs cache for a year, and break rollback",
        wanted.name(),
        ctx.store.describe(),
        m.object_encoding().name(),
        m.deploy,
    ))
    .with_hint(format!(
        "publish to a new prefix or bucket for the new encoding, or set `encoding = \"{}\"` again",
        m.object_encoding().name()
    )))
}

/// Refuses new bytes for an immutable key the target already holds: the
/// upload would be skipped as "already there" (or, without conditional
/// writes, replace an object cached for a year), and the deploy would name
/// bytes its key does not serve.
fn check_occupied(plan: &Plan) -> Result<()> {
    if plan.occupied.is_empty() {
        return Ok(());
    }
    let mut problems: Vec<String> = plan
        .occupied
        .iter()
        .map(|(logical, key)| {
            format!(
                "`{logical}` has new content, but its key `{key}` is immutable and already holds other bytes at the target"
            )
        })
        .collect();
    problems.push(
        "hint: a name kept by `fingerprint = \"keep\"` must change when the content does: rebuild so the bundler names it anew, or drop the `keep` rule for it; if only its references changed (assetpub rewrites them to fingerprinted names), publish what it references at stable names (`fingerprint = false`)".to_string(),
    );
    Err(Error::Validation(problems))
}

/// Refuses, before anything remote is read, a deploy in which one key has
/// two owners: two files, a file and a sidecar, or a file and a key
/// assetpub writes itself (the manifest, `staticfiles.json`, its records
/// under `.assetpub/`). Either write would overwrite the other's bytes.
fn check_claims(config: &Config, entries: &BTreeMap<String, Entry>, layout: Layout) -> Result<()> {
    let reserved = reserved(config);
    let fix = |logical: &str| {
        match config.settings_for(logical).fingerprint {
            Fingerprint::Yes => "rename or exclude it",
            Fingerprint::No | Fingerprint::Keep => {
                "let it be fingerprinted (drop the `fingerprint` rule for it), rename it, or exclude it"
            }
        }
        .to_string()
    };
    let problems = claims::collisions(entries, layout, &reserved, &fix);
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Error::Validation(problems))
    }
}

/// The keys assetpub writes itself, which no file or redirect may take.
fn reserved(config: &Config) -> Vec<claims::Reserved> {
    let mut reserved = vec![
        claims::Reserved::new(
            config.manifest_key.clone(),
            "the key of assetpub's manifest (`[manifest] key`)",
        ),
        claims::Reserved::new(RESERVED_PREFIX, "where assetpub keeps its own records"),
        claims::Reserved::new(PREVIEWS_PREFIX, "where previews live (`publish --preview`)"),
    ];
    if config.django {
        reserved.push(claims::Reserved::new(
            django::KEY,
            "the key of Django's staticfiles.json (`[manifest] django`)",
        ));
    }
    reserved
}

/// Sends what the plan says the target lacks, in one upload phase: the
/// objects the state DB says are there are checked first, then the payloads
/// of the missing ones and of the uploads are made (only what preparation
/// did not keep) and sent. How many objects were found in place, and how
/// many the state DB recorded were found missing and sent.
/// `first_deploy`: the target has no deploy yet (see [`upload::upload_all`]).
async fn send_objects(
    ctx: &Context,
    plan: &Plan,
    files: &HashMap<String, Arc<Prepared>>,
    first_deploy: bool,
) -> Result<(u64, u64)> {
    let all = plan.confirm.iter().chain(&plan.uploads);
    let count = all.clone().count() as u64;
    if count == 0 {
        return Ok((0, 0));
    }
    let total: u64 = all.map(|o| o.bytes).sum();
    ctx.reporter.phase_start(Phase::Upload, count, total);
    let result = async {
        let confirm = plan
            .confirm
            .iter()
            .map(|o| upload::Job {
                object: o.clone(),
                file: files[&o.logical].clone(),
                task: upload::Task::Confirm,
            })
            .collect();
        let checked = upload::upload_all(ctx, confirm, first_deploy).await?;
        let resent = checked.missing.len() as u64;
        let send: Vec<(PlannedObject, bool)> = checked
            .missing
            .into_iter()
            .map(|o| (o, true))
            .chain(plan.uploads.iter().map(|o| (o.clone(), false)))
            .collect();
        let objects: Vec<(Arc<Prepared>, Variant)> = send
            .iter()
            .map(|(o, _)| (files[&o.logical].clone(), o.variant))
            .collect();
        let js_imports = ctx.config.rewrite_js_imports;
        let payloads = tokio::task::spawn_blocking(move || {
            let objects: Vec<(&Prepared, Variant)> =
                objects.iter().map(|(p, v)| (p.as_ref(), *v)).collect();
            payload::payloads(&objects, js_imports)
        })
        .await
        .map_err(|e| Error::Runtime(format!("preparing the uploads failed: {e}")))??;
        let jobs = send
            .into_iter()
            .zip(payloads)
            .map(|((object, known), payload)| upload::Job {
                file: files[&object.logical].clone(),
                object,
                task: upload::Task::Send {
                    body: upload::body(payload),
                    known,
                },
            })
            .collect();
        let sent = upload::upload_all(ctx, jobs, first_deploy).await?;
        Ok((checked.already_there + sent.already_there, resent))
    }
    .await;
    ctx.reporter.phase_end(Phase::Upload);
    result
}

/// `walk` was started on the same config as `ctx` (see [`Walk::start`]).
pub async fn publish(
    ctx: &mut Context,
    opts: &PublishOptions,
    walk: Walk,
) -> Result<PublishReport> {
    let started = Instant::now();
    let Computed {
        mut plan,
        remote,
        files,
        hashed,
        timings,
        inputs,
        parent,
        rules,
        rules_changed,
    } = compute(
        ctx,
        walk,
        estimate::sizes(opts.dry_run, opts.estimate_sizes),
    )
    .await?;
    let draft = (rules_changed || plan.has_changes())
        .then(|| draft_manifest(&plan, &rules, remote.manifest.as_ref()))
        .flatten();
    // A store without releases (S3) keeps each exact redirect as an object.
    let (redirect_puts, redirect_deletes) = match (&draft, ctx.store.releases()) {
        (Some(draft), None) => switch::redirect_changes(remote.manifest.as_ref(), draft, false),
        _ => (Vec::new(), Vec::new()),
    };
    let rule_warnings = if ctx.config.is_s3() {
        redirects::s3_limits(&rules)
    } else {
        Vec::new()
    };
    if rules_changed || plan.has_changes() {
        for w in &rule_warnings {
            ctx.reporter.warn(w);
        }
    }
    let has_changes = plan.has_changes();
    // A preview's uploads that the target already stores are copied.
    let copies = match &ctx.preview {
        Some(p) => preview::plan(ctx, p, &mut plan).await?,
        None => Vec::new(),
    };
    let mut report = PublishReport {
        target: ctx.store.describe(),
        dry_run: opts.dry_run,
        changed: has_changes,
        deploy: None,
        parent,
        message: opts.message.clone().filter(|m| !m.trim().is_empty()),
        files: plan.file_count(),
        unchanged: plan.unchanged,
        upload_bytes: plan.upload_bytes(),
        uploads: plan.uploads.clone(),
        already_there: 0,
        resent: 0,
        kept_pages: 0,
        header_updates: plan.header_updates.clone(),
        stable_keys: plan.stable.clone(),
        changes: plan.changes.clone(),
        removed: plan.removed.clone(),
        staticfiles: None,
        hashed,
        duration_ms: 0,
        timings,
        invalidation: None,
        preview: ctx
            .preview
            .as_ref()
            .map(|p| preview::PreviewReport::new(p, &copies)),
        redirects: rules.redirects(),
        headers: rules.headers(),
        rules_changed,
        redirect_objects: redirect_puts
            .iter()
            .map(|(key, location)| RedirectObject {
                key: key.clone(),
                location: location.clone(),
            })
            .collect(),
        removed_redirects: redirect_deletes.clone(),
        rule_warnings,
    };
    report.changed |= rules_changed;
    let staticfiles = if ctx.config.django {
        let json = django::staticfiles_json(&plan.files);
        // A deploy writes it anyway; otherwise it is written only when it
        // does not hold the current deploy's paths (django was just turned
        // on, or the copy was lost).
        let write = has_changes || !django::remote_is_current(&ctx.store, &json).await?;
        let local = ctx.config.django_local.clone();
        let write_local = local
            .as_deref()
            .is_some_and(|p| has_changes || !django::local_is_current(p, &json));
        report.staticfiles = Some(StaticfilesReport {
            key: django::KEY.to_string(),
            paths: plan.files.len(),
            write,
            local: local.map(|p| p.display().to_string()),
            write_local,
        });
        report.changed |= write || write_local;
        Some(json)
    } else {
        None
    };
    let interrupted = remote
        .manifest
        .as_ref()
        .and_then(|m| m.switching.as_ref())
        .map(|s| s.to.clone());
    if let Some(to) = &interrupted
        && (opts.dry_run || report.changed)
    {
        ctx.reporter.warn(&format!(
            "the served manifest records a switch to `{to}` that did not finish: {}",
            if opts.dry_run {
                "the next publish, rollback, prune or verify undoes it"
            } else {
                "this run undoes it first"
            }
        ));
    }
    if !report.changed
        && let Some(releases) = ctx.store.releases()
    {
        // A directory's pages are checked for changes made by hand, from
        // their metadata alone: its no-op would otherwise keep them live.
        let changed = releases.changed_live().await?;
        if !changed.is_empty() {
            let shown: Vec<&str> = changed.iter().take(5).map(String::as_str).collect();
            let more = changed.len().saturating_sub(shown.len());
            let what = format!(
                "{} file{} of the live deploy at {} changed since it went live (by hand?): `{}`{}",
                changed.len(),
                if changed.len() == 1 { "" } else { "s" },
                ctx.store.describe(),
                shown.join("`, `"),
                if more > 0 {
                    format!(" and {more} more")
                } else {
                    String::new()
                }
            );
            let fix = "run `assetpub verify --repair`: it puts the pages back from their objects, and objects back from the build";
            if opts.dry_run {
                ctx.reporter.warn(&format!("{what}; {fix}"));
            } else {
                return Err(Error::Store(what).with_hint(fix));
            }
        }
    }
    if opts.dry_run || !report.changed {
        if interrupted.is_some() && !opts.dry_run {
            settle(ctx, opts, &remote).await?;
        }
        report.duration_ms = started.elapsed().as_millis() as u64;
        return Ok(report);
    }
    if !has_changes && !rules_changed {
        let json = staticfiles.expect("only staticfiles.json can change without a plan change");
        if interrupted.is_some() {
            // Undoing writes staticfiles.json of the served deploy.
            settle(ctx, opts, &remote).await?;
            django::write_local_if_changed(ctx.config.django_local.as_deref(), &json)?;
        } else {
            refresh_staticfiles(ctx, opts, &remote, &json, &report).await?;
        }
        report.duration_ms = started.elapsed().as_millis() as u64;
        return Ok(report);
    }

    let live = ctx
        .locked(
            "publish",
            opts.break_lock,
            false,
            async |ctx, lock, enforced| {
                let (remote, _) = switch::resolve(&ctx.switch_target(enforced), &remote).await?;
                if let Some(p) = &ctx.preview
                    && !copies.is_empty()
                {
                    let (reused, failed) = preview::copy(ctx, p, &plan, copies).await?;
                    report.uploads.extend(failed.iter().cloned());
                    report.upload_bytes += failed.iter().map(|o| o.bytes).sum::<u64>();
                    plan.uploads.extend(failed);
                    if let Some(r) = &mut report.preview {
                        r.reused = reused;
                    }
                }
                let live = deploy(
                    ctx,
                    &plan,
                    &remote,
                    &files,
                    staticfiles.as_deref(),
                    lock,
                    &mut report,
                )
                .await?;
                ctx.state.record_prepared_from(
                    ctx.target.id,
                    &PreparedFrom {
                        deploy: live.deploy.clone(),
                        ..inputs
                    },
                )?;
                Ok(live)
            },
        )
        .await?;
    if let Some(cdn) = &ctx.config.cdn {
        report.invalidation = Some(
            crate::integrations::cdn::invalidate(
                &ctx.config,
                ctx.reporter.as_ref(),
                cdn,
                remote.manifest.as_ref(),
                &live,
            )
            .await,
        );
    }
    report.duration_ms = started.elapsed().as_millis() as u64;
    Ok(report)
}

/// Undoes the interrupted switch recorded in the served manifest, when
/// there is nothing else to do.
async fn settle(ctx: &mut Context, opts: &PublishOptions, remote: &Remote) -> Result<()> {
    let settled = ctx
        .locked(
            "publish",
            opts.break_lock,
            false,
            async |ctx, _, enforced| switch::resolve(&ctx.switch_target(enforced), remote).await,
        )
        .await?
        .0;
    if let Some(m) = &settled.manifest {
        let text = String::from_utf8(m.to_json()).expect("manifest JSON is UTF-8");
        ctx.remember(settled.etag.as_deref(), Some(&text), Some(&m.deploy))?;
    }
    Ok(())
}

/// Writes `staticfiles.json` for the deploy that is already current, when
/// that is all there is to do.
async fn refresh_staticfiles(
    ctx: &mut Context,
    opts: &PublishOptions,
    remote: &Remote,
    json: &[u8],
    report: &PublishReport,
) -> Result<()> {
    let Some(sf) = &report.staticfiles else {
        return Ok(());
    };
    if sf.write {
        ctx.locked("publish", opts.break_lock, false, async |ctx, lock, _| {
            lock.check()?;
            // Written for the deploy this run read, so only while it is
            // still the current one.
            ensure_unmoved(&ctx.store, &ctx.config.manifest_key, remote).await?;
            django::write_remote(&ctx.store, json).await
        })
        .await?;
    }
    django::write_local_if_changed(ctx.config.django_local.as_deref(), json)
}

async fn deploy(
    ctx: &mut Context,
    plan: &Plan,
    remote: &Remote,
    files: &HashMap<String, Arc<Prepared>>,
    staticfiles: Option<&[u8]>,
    lock: &Lock,
    report: &mut PublishReport,
) -> Result<Manifest> {
    // Known once the lock is taken (see `Context::locked`).
    let enforced = ctx.target.conditional_writes.unwrap_or(false);
    (report.already_there, report.resent) =
        send_objects(ctx, plan, files, remote.manifest.is_none()).await?;

    let header_updates = plan
        .header_updates
        .iter()
        .map(|o| CopyJob {
            from: o.key.clone(),
            to: o.key.clone(),
            meta: object_meta(&files[&o.logical].entry, o.variant, false),
        })
        .collect();
    copy_all(&ctx.store, header_updates, ctx.config.target.concurrency).await?;

    // Only a deploy asks git: a run with nothing to do spawns nothing.
    if report.message.is_none() {
        report.message = crate::util::git_subject(&ctx.config.base_dir);
    }
    let now = chrono::Utc::now();
    let mut manifest = Manifest {
        version: FORMAT_VERSION,
        deploy: String::new(),
        parent: remote.manifest.as_ref().map(|m| m.deploy.clone()),
        // Milliseconds, so deploys made within one second still sort.
        created: now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        commit: crate::util::git_commit(),
        ci_run: crate::util::ci_run(),
        message: report.message.clone(),
        sidecars: plan.layout.sidecars,
        encoding: plan.layout.encoding.name().to_string(),
        files: plan.files.clone(),
        switching: None,
        conditional_writes: Some(enforced),
        expires: ctx.preview.as_ref().map(|p| {
            let ttl = chrono::Duration::from_std(p.ttl).unwrap_or(chrono::Duration::MAX);
            (now + ttl)
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                .into()
        }),
        redirects: report.redirects.clone(),
        headers: report.headers.clone(),
    };
    // The pages written straight: their bytes are made now, and the MD5
    // of each goes into the manifest, for the next switch to keep them.
    let (stable, written) = stable::writes(ctx, plan, files).await?;
    for w in written {
        if let Some(e) = manifest.files.get_mut(&w.logical) {
            e.written.insert(w.variant.name().to_string(), w.md5);
        }
    }
    manifest.deploy = deploy_id(now, &manifest);
    let json = manifest.to_json();

    // The served deploy's pages that were written straight and are about
    // to be replaced: the switch copies each to its object first.
    let twins = match &remote.manifest {
        Some(served) if ctx.store.releases().is_none() => switch::twins_needed(served, &manifest),
        _ => Vec::new(),
    };
    let target = ctx.switch_target(enforced);

    // The deploy record is written once the served manifest is marked with
    // this switch (so a record never outlives a switch that did not
    // happen), and nothing the site serves by name changes before that.
    let switch_started = Instant::now();
    let switched = switch::switch(
        &target,
        lock,
        remote,
        SwitchJob {
            to: manifest.clone(),
            to_json: json.clone(),
            stable,
            twins,
            remove: plan
                .removed_stable_keys
                .iter()
                .chain(&report.removed_redirects)
                .cloned()
                .collect(),
            staticfiles: staticfiles.map(<[u8]>::to_vec),
            redirects: report
                .redirect_objects
                .iter()
                .map(|o| (o.key.clone(), o.location.clone()))
                .collect(),
            record: true,
        },
    )
    .await?;
    report.timings.switch_ms = switch_started.elapsed().as_millis() as u64;
    report.kept_pages = switched.kept as u64;
    if report.rules_changed && ctx.store.releases().is_some() {
        ctx.reporter.warn(&format!(
            "the redirects or header rules changed: print `assetpub nginx-config` again and reload nginx, which serves {} with the rules it was given",
            ctx.store.describe()
        ));
    }
    ctx.state.record_deploy(
        ctx.target.id,
        &deploy_record(
            &manifest,
            Some((report.uploads.len() as u64, report.upload_bytes)),
        ),
    )?;
    let text = String::from_utf8(json).expect("manifest JSON is UTF-8");
    ctx.remember(
        switched.etag.as_deref(),
        Some(&text),
        Some(&manifest.deploy),
    )?;
    report.deploy = Some(manifest.deploy.clone());
    // Local, after the switch: it names what is live, and a failure here
    // leaves the deploy live and is repaired by the next publish.
    if let Some(sf) = staticfiles {
        django::write_local_if_changed(ctx.config.django_local.as_deref(), sf)?;
    }
    Ok(manifest)
}

/// The deploy's manifest as far as redirects need it (its files and
/// rules), when there are rules now or were before.
fn draft_manifest(plan: &Plan, rules: &Rules, current: Option<&Manifest>) -> Option<Manifest> {
    if rules.is_empty() && current.is_none_or(|m| m.redirects.is_empty()) {
        return None;
    }
    Some(Manifest {
        version: FORMAT_VERSION,
        deploy: String::new(),
        parent: None,
        created: String::new(),
        commit: None,
        ci_run: None,
        message: None,
        sidecars: plan.layout.sidecars,
        encoding: plan.layout.encoding.name().to_string(),
        files: plan.files.clone(),
        switching: None,
        expires: None,
        conditional_writes: None,
        redirects: rules.redirects(),
        headers: rules.headers(),
    })
}

impl PublishReport {
    /// The human-readable table of `plan` and `publish --dry-run`.
    pub fn render_plan(&self) -> String {
        let mut out = String::new();
        out.push_str(&format!("target: {}\n", self.target));
        if !self.changed {
            out.push_str(&format!(
                "no changes: {} files, current deploy {}\n",
                self.files,
                self.parent.as_deref().unwrap_or("(none)")
            ));
            return out;
        }
        if !self.uploads.is_empty() {
            out.push_str("\nupload:\n");
            out.push_str(&indent(&crate::util::table(
                &["", "FILE", "KEY", "SIZE", "ALSO"],
                &upload_rows(&self.uploads),
            )));
            if self.uploads.iter().any(|u| u.estimated) {
                out.push_str(
                    "  ~ estimated from the file's first 256 KiB (brotli of a large file); \
                     `publish --dry-run` compresses it in full\n",
                );
            }
        }
        if !self.header_updates.is_empty() {
            out.push_str("\nnew headers (same bytes):\n");
            for u in &self.header_updates {
                out.push_str(&format!("  {}  {}\n", u.logical, u.key));
            }
        }
        if !self.stable_keys.is_empty() {
            out.push_str("\nstable keys:\n");
            // Sidecars (`.gz`, `.br`) fold into their key's row.
            let mut rows: Vec<Vec<String>> = Vec::new();
            for s in &self.stable_keys {
                let suffix = s.variant.sidecar_suffix();
                let base = s.key.strip_suffix(suffix).filter(|_| !suffix.is_empty());
                match base.and_then(|b| rows.iter_mut().find(|r| r[0] == b)) {
                    Some(row) => {
                        let also = &mut row[3];
                        if !also.is_empty() {
                            also.push_str(", ");
                        }
                        also.push_str(suffix);
                    }
                    None => rows.push(vec![
                        s.key.clone(),
                        "<-".to_string(),
                        s.copy_of.clone().unwrap_or_else(|| {
                            format!("(written straight, {})", human_bytes(s.bytes))
                        }),
                        String::new(),
                    ]),
                }
            }
            out.push_str(&indent(&crate::util::table(
                &["KEY", "", "COPY OF", "ALSO"],
                &rows,
            )));
        }
        if !self.removed.is_empty() {
            out.push_str("\nremoved:\n");
            for r in &self.removed {
                out.push_str(&format!("  - {r}\n"));
            }
        }
        if self.rules_changed {
            out.push_str(&self.render_rules());
        }
        if let Some(sf) = self
            .staticfiles
            .as_ref()
            .filter(|s| s.write || s.write_local)
        {
            out.push_str(&format!(
                "\nDjango staticfiles.json ({} paths):\n",
                sf.paths
            ));
            if sf.write {
                out.push_str(&format!("  {}\n", sf.key));
            }
            if let Some(local) = sf.local.as_ref().filter(|_| sf.write_local) {
                out.push_str(&format!("  {local} (local copy)\n"));
            }
        }
        out.push_str(&format!("\n{}\n", self.summary_line()));
        out
    }

    /// The deploy's redirects and header rules, and its redirect objects.
    fn render_rules(&self) -> String {
        let mut out = String::new();
        if !self.redirects.is_empty() {
            out.push_str("\nredirects:\n");
            let rows: Vec<Vec<String>> = self
                .redirects
                .iter()
                .map(|r| {
                    vec![
                        r.from.clone(),
                        "->".into(),
                        r.to.clone(),
                        r.status.to_string(),
                    ]
                })
                .collect();
            out.push_str(&indent(&crate::util::table(
                &["FROM", "", "TO", "STATUS"],
                &rows,
            )));
        }
        if !self.redirect_objects.is_empty() || !self.removed_redirects.is_empty() {
            out.push_str("\nredirect objects (x-amz-website-redirect-location):\n");
            for o in &self.redirect_objects {
                out.push_str(&format!("  {} -> {}\n", o.key, o.location));
            }
            for k in &self.removed_redirects {
                out.push_str(&format!("  - {k}\n"));
            }
        }
        if !self.headers.is_empty() {
            out.push_str("\nheaders:\n");
            for h in &self.headers {
                out.push_str(&format!("  {}\n", h.pattern()));
                for (name, value) in &h.headers {
                    out.push_str(&format!("    {name}: {value}\n"));
                }
            }
        }
        if self.redirects.is_empty() && self.headers.is_empty() {
            out.push_str("\nredirects and headers: none (the served deploy had some)\n");
        }
        out
    }

    pub fn summary_line(&self) -> String {
        let new = self
            .changes
            .iter()
            .filter(|c| c.reason == crate::pipeline::plan::Reason::New)
            .count();
        let changed = self
            .changes
            .iter()
            .filter(|c| c.reason == crate::pipeline::plan::Reason::Changed)
            .count();
        let headers = self
            .changes
            .iter()
            .filter(|c| c.reason == crate::pipeline::plan::Reason::Headers)
            .count();
        let rules = if self.rules_changed {
            format!(
                "; rules changed: {} redirect{}, {} header rule{}",
                self.redirects.len(),
                if self.redirects.len() == 1 { "" } else { "s" },
                self.headers.len(),
                if self.headers.len() == 1 { "" } else { "s" },
            )
        } else {
            String::new()
        };
        let straight: Vec<&PlannedObject> = self
            .stable_keys
            .iter()
            .filter(|s| s.copy_of.is_none())
            .collect();
        let straight_bytes: u64 = straight.iter().map(|s| s.bytes).sum();
        let straight = if straight.is_empty() {
            String::new()
        } else {
            format!(
                " ({} written straight, {})",
                straight.len(),
                human_bytes(straight_bytes)
            )
        };
        format!(
            "{} files: {new} new, {changed} changed, {headers} new headers, {} removed, {} unchanged; {} objects to upload ({}), {} stable keys{straight}{rules}",
            self.files,
            self.removed.len(),
            self.unchanged,
            self.uploads.len(),
            self.upload_size(straight_bytes),
            self.stable_keys.len()
        )
    }

    /// `upload_bytes` as shown: `~` before it when it counts an estimate.
    /// The bytes of the uploads (`upload_bytes` less the pages written
    /// straight), marked `~` when some are estimated.
    fn upload_size(&self, straight_bytes: u64) -> String {
        let size = human_bytes(self.upload_bytes - straight_bytes);
        if self.uploads.iter().any(|u| u.estimated) {
            format!("~{size}")
        } else {
            size
        }
    }

    /// What `publish` prints when done.
    pub fn render_publish(&self) -> String {
        if self.dry_run {
            return format!("dry run: nothing was changed\n{}", self.render_plan());
        }
        if !self.changed {
            return format!(
                "no changes: {} files, current deploy {} at {}\n",
                self.files,
                self.parent.as_deref().unwrap_or("(none)"),
                self.target
            );
        }
        let Some(deploy) = &self.deploy else {
            // Nothing but staticfiles.json was out of date.
            return format!(
                "no file changes: updated Django's staticfiles.json for the current deploy {} at {}\n",
                self.parent.as_deref().unwrap_or("(none)"),
                self.target
            );
        };
        let mut out = format!("published {deploy} to {}\n", self.target);
        out.push_str(&format!("  {}\n", self.summary_line()));
        if let Some(sf) = &self.staticfiles {
            out.push_str(&format!(
                "  wrote Django's {} ({} paths){}\n",
                sf.key,
                sf.paths,
                sf.local
                    .as_ref()
                    .map(|l| format!(" and its local copy {l}"))
                    .unwrap_or_default()
            ));
        }
        if self.already_there > 0 {
            out.push_str(&format!(
                "  {} objects were already in place from an earlier run\n",
                self.already_there
            ));
        }
        if self.resent > 0 {
            out.push_str(&format!(
                "  {} objects the state DB recorded were missing at the target: uploaded again\n",
                self.resent
            ));
        }
        if self.kept_pages > 0 {
            out.push_str(&format!(
                "  kept {} replaced page object{} of {} under {} fingerprinted key{}, for a rollback\n",
                self.kept_pages,
                if self.kept_pages == 1 { "" } else { "s" },
                self.parent.as_deref().unwrap_or("(none)"),
                if self.kept_pages == 1 { "its" } else { "their" },
                if self.kept_pages == 1 { "" } else { "s" },
            ));
        }
        out.push_str(&format!(
            "  parent {}, {:.2}s\n",
            self.parent.as_deref().unwrap_or("(none)"),
            self.duration_ms as f64 / 1000.0
        ));
        if let Some(i) = &self.invalidation {
            out.push_str(&format!("  {}\n", i.render()));
        }
        out
    }

    /// The error a failed CDN invalidation turns into; the deploy is live.
    pub fn invalidation_failure(&self) -> Option<Error> {
        self.invalidation
            .as_ref()?
            .failure(self.deploy.as_deref()?, &self.target)
    }

    /// The GitHub Actions step summary.
    pub fn markdown(&self, command: &str) -> String {
        let mut out = format!("### assetpub {command}: {}\n\n", self.target);
        if !self.changed {
            out.push_str(&format!(
                "No changes ({} files, deploy `{}`).\n",
                self.files,
                self.parent.as_deref().unwrap_or("none")
            ));
            return out;
        }
        if let Some(d) = &self.deploy {
            out.push_str(&format!(
                "Deploy `{d}` (parent `{}`)\n\n",
                self.parent.as_deref().unwrap_or("none")
            ));
        }
        if let Some(i) = &self.invalidation {
            out.push_str(&format!("{}\n\n", i.render()));
        }
        if let Some(sf) = self.staticfiles.as_ref().filter(|s| s.write) {
            out.push_str(&format!("Django `{}`: {} paths\n\n", sf.key, sf.paths));
        }
        out.push_str("| files | new | changed | removed | unchanged | uploads | bytes |\n|---|---|---|---|---|---|---|\n");
        let count = |r| self.changes.iter().filter(|c| c.reason == r).count();
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} |\n\n",
            self.files,
            count(crate::pipeline::plan::Reason::New),
            count(crate::pipeline::plan::Reason::Changed),
            self.removed.len(),
            self.unchanged,
            self.uploads.len(),
            self.upload_size(0)
        ));
        let shown: Vec<_> = self.changes.iter().take(20).collect();
        if !shown.is_empty() {
            out.push_str("Changed files:\n\n");
            for c in &shown {
                out.push_str(&format!("- `{}` ({})\n", c.logical, reason(c.reason)));
            }
            if self.changes.len() > shown.len() {
                out.push_str(&format!(
                    "- ... and {} more\n",
                    self.changes.len() - shown.len()
                ));
            }
        }
        out
    }
}

/// One row per object, its compressed variants folded into the last column.
fn upload_rows(uploads: &[PlannedObject]) -> Vec<Vec<String>> {
    let mut rows: Vec<Vec<String>> = Vec::new();
    let mut index: HashMap<(&str, String), usize> = HashMap::new();
    for u in uploads {
        let base = u
            .key
            .strip_suffix(u.variant.sidecar_suffix())
            .unwrap_or(&u.key)
            .to_string();
        let slot = (u.logical.as_str(), base.clone());
        match index.get(&slot) {
            Some(&i) if u.variant != crate::remote::manifest::Variant::Identity => {
                let also = &mut rows[i][4];
                if !also.is_empty() {
                    also.push_str(", ");
                }
                also.push_str(&format!(
                    "{} {}",
                    u.variant.sidecar_suffix(),
                    planned_size(u)
                ));
            }
            _ => {
                index.insert(slot, rows.len());
                rows.push(vec![
                    reason(u.reason),
                    u.logical.clone(),
                    base,
                    planned_size(u),
                    String::new(),
                ]);
            }
        }
    }
    rows
}

/// An object's size as the plan shows it: `~` before an estimate.
fn planned_size(o: &PlannedObject) -> String {
    let size = human_bytes(o.bytes);
    if o.estimated {
        format!("~{size}")
    } else {
        size
    }
}

fn reason(r: crate::pipeline::plan::Reason) -> String {
    match r {
        crate::pipeline::plan::Reason::New => "new",
        crate::pipeline::plan::Reason::Changed => "changed",
        crate::pipeline::plan::Reason::Headers => "headers",
        crate::pipeline::plan::Reason::Restored => "restored",
    }
    .to_string()
}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("  {l}\n")).collect()
}
