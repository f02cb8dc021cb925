//! `verify`: every object the current manifest names is there with the right
//! size and headers (and, on a directory target, the right bytes).

use std::io::Read;

use serde::Serialize;

use std::collections::HashSet;

use crate::commands::context::Context;
use crate::concurrency::limited;
use crate::error::{Conflict, Error, Result};
use crate::remote::manifest::{Entry, Manifest, ObjectRef, Variant, objects_for};
use crate::remote::manifest::{manifest_meta, object_meta};
use crate::remote::switch::{ensure_unmoved, resolve};
use crate::settings::redirects::s3_objects;
use crate::store::{Body, Condition, ContentDigest, CopyJob, Head, NoObserver, Store, copy_all};

#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    pub key: String,
    pub logical: String,
    pub problem: String,
    /// The object the key should be, for the repair.
    #[serde(skip)]
    object: Option<(Entry, ObjectRef)>,
    /// The location of the redirect object the key should be (S3).
    #[serde(skip)]
    redirect: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct VerifyOptions {
    /// Put right what the checks find: stable keys from their objects,
    /// lost objects from the local build, the deploy record from the
    /// manifest, `staticfiles.json` from the entries.
    pub repair: bool,
    pub break_lock: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    pub target: String,
    pub deploy: Option<String>,
    pub objects: usize,
    pub problems: Vec<Problem>,
    /// Keys `--repair` wrote.
    pub repaired: Vec<String>,
    /// The deploy of an interrupted switch that was undone first.
    pub undone_switch: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

const REPAIR_HINT: &str = "run `assetpub verify --repair`: it writes stable keys again from their objects, uploads lost objects again from the local build when it holds their bytes, and rewrites the deploy record and staticfiles.json; `assetpub rollback` restores a deploy whose objects the build no longer holds";

impl VerifyReport {
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }

    pub fn render(&self) -> String {
        let Some(deploy) = &self.deploy else {
            return format!("no deploy at {}: nothing to verify\n", self.target);
        };
        let mut out = String::new();
        if let Some(to) = &self.undone_switch {
            out.push_str(&format!(
                "undid an interrupted switch to {to}: {deploy} is served whole again\n"
            ));
        }
        if !self.repaired.is_empty() {
            out.push_str(&format!(
                "repaired {} key{}: {}\n",
                self.repaired.len(),
                if self.repaired.len() == 1 { "" } else { "s" },
                self.repaired.join(", ")
            ));
        }
        for p in &self.problems {
            out.push_str(&format!("`{}` ({}): {}\n", p.key, p.logical, p.problem));
        }
        if self.ok() {
            out.push_str(&format!(
                "ok: {} objects of deploy {deploy} at {} verified\n",
                self.objects, self.target
            ));
        } else {
            out.push_str(&format!(
                "{} problem{} in {} objects of deploy {deploy} at {}\n",
                self.problems.len(),
                if self.problems.len() == 1 { "" } else { "s" },
                self.objects,
                self.target
            ));
            if let Some(hint) = &self.hint {
                out.push_str(&format!("hint: {hint}\n"));
            }
        }
        out
    }
}

pub async fn verify(ctx: &mut Context, opts: &VerifyOptions) -> Result<VerifyReport> {
    let mut remote = ctx.remote_manifest().await?;
    let mut report = VerifyReport {
        target: ctx.store.describe(),
        deploy: None,
        objects: 0,
        problems: Vec::new(),
        repaired: Vec::new(),
        undone_switch: None,
        hint: None,
    };
    let Some(marked) = remote.manifest.clone() else {
        return Ok(report);
    };
    if let Some(sw) = &marked.switching {
        let resolved = ctx
            .locked(
                "verify",
                opts.break_lock,
                false,
                async |ctx, _, enforced| resolve(&ctx.switch_target(enforced), &remote).await,
            )
            .await;
        match resolved {
            Ok((settled, undone)) => {
                remote = settled;
                report.undone_switch = undone;
            }
            Err(e) if e.conflict_kind() == Some(Conflict::LockHeld) => {
                report.problems.push(Problem {
                    key: ctx.config.manifest_key.clone(),
                    logical: "-".into(),
                    problem: format!(
                        "a switch to `{}` is under way ({e}); its stable keys change until it ends",
                        sw.to
                    ),
                    object: None,
                    redirect: None,
                });
            }
            Err(e) => return Err(e),
        }
    }
    let m = remote
        .manifest
        .clone()
        .expect("a settled manifest is still a manifest");
    report.deploy = Some(m.deploy.clone());
    let (objects, problems) = check_all(ctx, &m).await?;
    report.objects = objects;
    report.problems.extend(problems);
    if opts.repair && !report.problems.is_empty() {
        let problems = std::mem::take(&mut report.problems);
        report.repaired = ctx
            .locked(
                "verify --repair",
                opts.break_lock,
                false,
                async |ctx, lock, _| {
                    lock.check()?;
                    ensure_unmoved(&ctx.store, &ctx.config.manifest_key, &remote).await?;
                    repair(ctx, &m, &problems).await
                },
            )
            .await?;
        report.problems = check_all(ctx, &m).await?.1;
    }
    if !report.problems.is_empty() {
        report.hint = Some(REPAIR_HINT.into());
    }
    Ok(report)
}

/// Every object `m` names, checked; how many there are, and the problems.
async fn check_all(ctx: &Context, m: &Manifest) -> Result<(usize, Vec<Problem>)> {
    let mut problems = Vec::new();
    let deploy_key = Manifest::deploy_key(&m.deploy);
    if ctx.store.head(&deploy_key).await?.is_none() {
        problems.push(Problem {
            key: deploy_key,
            logical: "-".into(),
            problem: "the deploy's versioned manifest is missing: it cannot be rolled back to"
                .into(),
            object: None,
            redirect: None,
        });
    }
    if ctx.config.django {
        let json = crate::remote::django::staticfiles_json(&m.files);
        if !crate::remote::django::remote_is_current(&ctx.store, &json).await? {
            problems.push(Problem {
                key: crate::remote::django::KEY.into(),
                logical: "-".into(),
                problem: "missing, or does not map the current deploy's files (`[manifest] django = true`)".into(),
                object: None,
                redirect: None,
            });
        }
    }
    let headers_matter = ctx.config.is_s3();
    let mut work: Vec<(String, Entry, ObjectRef)> = Vec::new();
    for (logical, entry) in &m.files {
        for o in objects_for(entry, m.sidecars, m.object_encoding()) {
            // A page written straight lives at its stable key; its object
            // is made when a later deploy replaces it.
            if !o.stable && entry.is_written_straight() {
                continue;
            }
            work.push((logical.clone(), entry.clone(), o));
        }
    }
    let count = work.len();
    let store = ctx.store.clone();
    let checked = limited(
        ctx.config.target.concurrency,
        work,
        |(logical, entry, o)| {
            let store = store.clone();
            async move {
                let problem = check(&store, &entry, &o, headers_matter).await?;
                Ok::<_, Error>(problem.map(|problem| Problem {
                    key: o.key.clone(),
                    logical,
                    problem,
                    object: Some((entry, o)),
                    redirect: None,
                }))
            }
        },
    )
    .try_collect(|e| Error::Runtime(format!("verify task failed: {e}")))
    .await?;
    problems.extend(checked.into_iter().flatten());
    let redirects = if ctx.store.releases().is_none() {
        s3_objects(&m.redirects)
    } else {
        Default::default()
    };
    let count = count + redirects.len();
    for (key, location) in redirects {
        let found = ctx.store.head(&key).await?;
        let problem = match found.map(|h| h.meta.website_redirect_location) {
            None => format!("missing: it redirects to `{location}`"),
            Some(Some(l)) if l == location => continue,
            Some(Some(l)) => format!("redirects to `{l}`, not `{location}`"),
            Some(None) => format!("has no redirect location, not `{location}`"),
        };
        problems.push(Problem {
            key,
            logical: "redirect".to_string(),
            problem,
            object: None,
            redirect: Some(location),
        });
    }
    problems.sort_by(|a, b| a.key.cmp(&b.key));
    Ok((count, problems))
}

/// Writes again what `problems` found wrong; returns the keys written.
/// Lost or damaged objects come from the local build, and only when it
/// holds the very bytes the manifest names; stable keys are copied from
/// their objects once those are right.
async fn repair(ctx: &mut Context, m: &Manifest, problems: &[Problem]) -> Result<Vec<String>> {
    let mut repaired = Vec::new();
    let broken: HashSet<&str> = problems.iter().map(|p| p.key.as_str()).collect();
    // Each with the logical path its problem already names.
    // A page written straight has no object to copy its stable key from:
    // the build gives its bytes, as it gives a lost object's.
    let lost: Vec<(&str, &(Entry, ObjectRef))> = problems
        .iter()
        .filter_map(|p| Some((p.logical.as_str(), p.object.as_ref()?)))
        .filter(|(_, (e, o))| !o.stable || e.is_written_straight())
        .collect();
    let mut restored: HashSet<String> = HashSet::new();
    if !lost.is_empty() {
        let wanted: Vec<(String, String, Variant)> = lost
            .iter()
            .map(|(logical, (e, o))| (logical.to_string(), e.blake3.clone(), o.variant))
            .collect();
        let bodies = crate::commands::publish::local_objects(ctx, &wanted).await?;
        for ((_, (entry, o)), body) in lost.into_iter().zip(bodies) {
            let Some(body) = body else { continue };
            if body.len() != entry.variant_size(o.variant) {
                continue;
            }
            ctx.store
                .put(
                    &o.key,
                    body,
                    &object_meta(entry, o.variant, o.stable),
                    Condition::None,
                    &NoObserver,
                )
                .await?;
            restored.insert(o.key.clone());
            repaired.push(o.key.clone());
        }
    }
    let copies: Vec<CopyJob> = problems
        .iter()
        .filter_map(|p| p.object.as_ref())
        .filter(|(_, o)| o.stable && !restored.contains(&o.key))
        .filter_map(|(entry, o)| {
            let from = o.copy_of.clone()?;
            (!broken.contains(from.as_str()) || restored.contains(&from)).then(|| CopyJob {
                from,
                to: o.key.clone(),
                meta: object_meta(entry, o.variant, true),
            })
        })
        .collect();
    repaired.extend(copies.iter().map(|c| c.to.clone()));
    match ctx.store.releases() {
        // A directory target's pages are links in the live release.
        Some(releases) if !copies.is_empty() => {
            releases
                .relink_live(copies.into_iter().map(|c| (c.to, c.from)).collect())
                .await?;
        }
        _ => copy_all(&ctx.store, copies, ctx.config.target.concurrency).await?,
    }
    for p in problems {
        if let Some(location) = &p.redirect {
            ctx.store
                .put(
                    &p.key,
                    Body::Bytes(std::sync::Arc::new(Vec::new())),
                    &crate::remote::manifest::redirect_meta(location),
                    Condition::None,
                    &NoObserver,
                )
                .await?;
            repaired.push(p.key.clone());
        }
    }
    let deploy_key = Manifest::deploy_key(&m.deploy);
    if broken.contains(deploy_key.as_str()) {
        ctx.store
            .put(
                &deploy_key,
                Body::Bytes(std::sync::Arc::new(m.settled().to_json())),
                &manifest_meta(),
                Condition::IfAbsent,
                &NoObserver,
            )
            .await?;
        repaired.push(deploy_key);
    }
    if ctx.config.django && broken.contains(crate::remote::django::KEY) {
        let json = crate::remote::django::staticfiles_json(&m.files);
        crate::remote::django::write_remote(&ctx.store, &json).await?;
        repaired.push(crate::remote::django::KEY.into());
    }
    repaired.sort();
    Ok(repaired)
}

async fn check(
    store: &dyn Store,
    entry: &Entry,
    o: &ObjectRef,
    headers_matter: bool,
) -> Result<Option<String>> {
    let Some(head) = store.head(&o.key).await? else {
        return Ok(Some("missing".into()));
    };
    let expected_size = entry.variant_size(o.variant);
    if head.size != expected_size {
        return Ok(Some(format!(
            "size {} but the manifest says {expected_size}",
            head.size
        )));
    }
    if headers_matter {
        return Ok(header_problem(&head, entry, o));
    }
    let expected = entry.blake3.clone();
    let reader = match store.content_digest(&o.key).await? {
        ContentDigest::Missing => return Ok(Some("missing".into())),
        ContentDigest::Recorded(digest) => {
            return Ok((digest != Some(expected)).then(|| MISMATCH.into()));
        }
        ContentDigest::Bytes(reader) => reader,
    };
    let variant = o.variant;
    let actual = tokio::task::spawn_blocking(move || decoded_hash(reader, variant))
        .await
        .map_err(|e| Error::Runtime(format!("verify task failed: {e}")))?;
    Ok(match actual {
        Ok(h) if h == expected => None,
        Ok(_) => Some(MISMATCH.into()),
        Err(e) => Some(format!("cannot be read: {e}")),
    })
}

const MISMATCH: &str = "content does not match the manifest's blake3 (tampered or corrupt)";

fn header_problem(head: &Head, entry: &Entry, o: &ObjectRef) -> Option<String> {
    let want = object_meta(entry, o.variant, o.stable);
    let mut wrong = Vec::new();
    if head.meta.content_type != want.content_type {
        wrong.push(format!(
            "Content-Type {:?} (want {:?})",
            head.meta.content_type, want.content_type
        ));
    }
    if head.meta.cache_control != want.cache_control {
        wrong.push(format!(
            "Cache-Control {:?} (want {:?})",
            head.meta.cache_control, want.cache_control
        ));
    }
    if head.meta.content_encoding != want.content_encoding {
        wrong.push(format!(
            "Content-Encoding {:?} (want {:?})",
            head.meta.content_encoding, want.content_encoding
        ));
    }
    if head.meta.metadata.get("blake3") != Some(&entry.blake3) {
        wrong.push("x-amz-meta-blake3 does not match the manifest (object replaced?)".into());
    }
    (!wrong.is_empty()).then(|| wrong.join("; "))
}

/// blake3 of the file's decoded content, so a sidecar is checked against the
/// same hash as the file it encodes.
fn decoded_hash(file: Box<dyn Read + Send>, variant: Variant) -> std::io::Result<String> {
    let mut reader: Box<dyn Read> = match variant {
        Variant::Identity => Box::new(file),
        Variant::Gzip => Box::new(flate2::read::GzDecoder::new(file)),
        Variant::Br => Box::new(brotli::Decompressor::new(file, 64 * 1024)),
    };
    let mut hasher = blake3::Hasher::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher.finalize().to_hex().to_string())
}
