//! What a preview's publish adds: its report, and reuse. A preview reuses
//! what the target already stores: an object whose bytes
//! the live site or another preview holds (same blake3, same encoding, same
//! size) is copied server-side into the preview instead of being sent again.
//! What is stored is read from the manifests themselves (the live one and
//! each preview's), so a fresh runner with no state DB reuses as much.

use std::collections::HashMap;
use std::sync::Arc;

use serde::Serialize;

use crate::commands::context::{Context, PreviewTarget};
use crate::concurrency::limited;
use crate::error::{Error, Result};
use crate::keys::{PREVIEWS_PREFIX, is_preview_name};
use crate::pipeline::plan::{Plan, PlannedObject};
use crate::remote::manifest::{Layout, Manifest, Variant, meta_digest, object_meta, objects_for};
use crate::state::KnownObject;
use crate::store::{Condition, GetOutcome, PutOutcome, Store};

/// An object planned for upload that is copied from `from`, a key of the
/// whole target (the live site's root).
#[derive(Debug, Clone)]
pub struct Copy {
    pub object: PlannedObject,
    pub from: String,
    /// For a copy from a page the live site wrote straight to its stable
    /// key: the ETag that key must still have (see `Entry::written`).
    pub source_etag: Option<String>,
}

/// Where bytes are, and the ETag the key must have when it may change.
type Source = (String, Option<String>);

/// What the preview's deploy copied instead of sending.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Reused {
    /// Objects copied server-side from the live site or another preview.
    pub objects: u64,
    /// Their bytes, not sent.
    pub bytes: u64,
}

/// `preview` in the report of `publish --preview`.
#[derive(Debug, Clone, Serialize)]
pub struct PreviewReport {
    pub name: String,
    /// From `[preview] base_url` (`null` without).
    pub url: Option<String>,
    /// The deploy the preview serves (`null` before its first).
    pub deploy: Option<String>,
    /// When `prune --previews` may delete it.
    pub expires: Option<String>,
    /// What was (in a dry run: would be) copied instead of sent.
    pub reused: Reused,
}

impl PreviewReport {
    pub fn new(preview: &PreviewTarget, copies: &[Copy]) -> PreviewReport {
        PreviewReport {
            name: preview.name.clone(),
            url: preview.url.clone(),
            deploy: None,
            expires: None,
            reused: Reused {
                objects: copies.len() as u64,
                bytes: copies.iter().map(|c| c.object.bytes).sum(),
            },
        }
    }

    /// What `publish --preview` adds to the GitHub Actions step summary.
    pub fn markdown(&self) -> String {
        let mut out = format!("\nPreview `{}`", self.name);
        if let Some(url) = &self.url {
            out.push_str(&format!(": <{url}>"));
        }
        if let Some(e) = &self.expires {
            out.push_str(&format!(", expires {e}"));
        }
        out.push_str(&format!(
            "; {} objects ({}) copied instead of sent\n",
            self.reused.objects,
            crate::util::human_bytes(self.reused.bytes)
        ));
        out
    }

    /// The lines `publish --preview` adds to its output.
    pub fn render(&self, dry_run: bool, target: &str) -> String {
        let mut out = String::new();
        if self.reused.objects > 0 {
            out.push_str(&format!(
                "  {} {} objects ({}) from the live site or other previews instead of uploading them
",
                if dry_run { "would copy" } else { "copied" },
                self.reused.objects,
                crate::util::human_bytes(self.reused.bytes)
            ));
        }
        let url = self
            .url
            .clone()
            .unwrap_or_else(|| format!("{target} (set `[preview] base_url` to print its URL)"));
        out.push_str(&format!(
            "preview {}: {url}
",
            self.name
        ));
        if let Some(e) = &self.expires {
            out.push_str(&format!(
                "  expires {e}
"
            ));
        }
        out
    }
}

/// (blake3, variant, size) of an object's bytes.
type Content = (String, Variant, u64);

/// Takes out of `plan.uploads` each object the target already stores
/// elsewhere, with where it is.
pub async fn plan(ctx: &Context, preview: &PreviewTarget, plan: &mut Plan) -> Result<Vec<Copy>> {
    if plan.uploads.is_empty() {
        return Ok(Vec::new());
    }
    let root = &preview.root;
    let manifest_key = &ctx.config.manifest_key;
    let mut sources: HashMap<Content, Source> = HashMap::new();
    // A live manifest this version cannot read (a newer assetpub's) is no
    // source; the preview does not depend on it.
    if let GetOutcome::Found(f) = root.get(manifest_key, None).await? {
        match Manifest::parse(&f.bytes, &format!("the live `{manifest_key}`")) {
            Ok(live) => add_source(&mut sources, &live, "", plan.layout),
            Err(e) => {
                let why = e.unhinted().to_string();
                let why = why.split("; refusing").next().unwrap_or(&why);
                ctx.reporter
                    .warn(&format!("not copying from the live site: {why}"));
            }
        }
    }
    let mut copies = take(plan, &sources);
    // Other previews are read only for what the live site does not have.
    if !plan.uploads.is_empty() {
        for name in preview_names(root.as_ref()).await? {
            if name == preview.name {
                continue;
            }
            let prefix = format!("{PREVIEWS_PREFIX}{name}/");
            let key = format!("{prefix}{manifest_key}");
            // A preview deleted meanwhile, or not assetpub's, is no source.
            if let Ok(Some(m)) = read_manifest(root, &key).await {
                add_source(&mut sources, &m, &prefix, plan.layout);
            }
        }
        copies.extend(take(plan, &sources));
    }
    Ok(copies)
}

/// Copies the objects; each copy that fails (its source deleted meanwhile)
/// comes back, to be uploaded instead.
pub async fn copy(
    ctx: &Context,
    preview: &PreviewTarget,
    plan: &Plan,
    copies: Vec<Copy>,
) -> Result<(Reused, Vec<PlannedObject>)> {
    let root = preview.root.clone();
    let jobs: Vec<(Copy, crate::store::ObjectMeta)> = copies
        .into_iter()
        .map(|c| {
            let meta = object_meta(&plan.files[&c.object.logical], c.object.variant, false);
            (c, meta)
        })
        .collect();
    let prefix = preview.prefix.clone();
    let done = limited(ctx.config.target.concurrency, jobs, |(c, meta)| {
        let root = root.clone();
        let to = format!("{prefix}{}", c.object.key);
        async move {
            let condition = match &c.source_etag {
                Some(etag) => Condition::SourceIs(etag.clone()),
                None => Condition::None,
            };
            let copied = root.copy(&c.from, &to, &meta, condition).await;
            Ok::<_, Error>((c, meta, copied))
        }
    })
    .try_collect(|e| Error::Runtime(format!("copy task failed: {e}")))
    .await?;
    let mut reused = Reused::default();
    let mut failed = Vec::new();
    for (c, meta, copied) in done {
        match copied {
            Ok(PutOutcome::Written { .. }) => {
                let entry = &plan.files[&c.object.logical];
                ctx.state.record_object(
                    ctx.target.id,
                    &c.object.key,
                    &KnownObject {
                        blake3: entry.blake3.clone(),
                        size: c.object.bytes,
                        meta: meta_digest(&meta),
                    },
                )?;
                reused.objects += 1;
                reused.bytes += c.object.bytes;
            }
            Ok(PutOutcome::PreconditionFailed) | Err(_) => failed.push(c.object),
        }
    }
    Ok((reused, failed))
}

fn add_source(sources: &mut HashMap<Content, Source>, m: &Manifest, prefix: &str, layout: Layout) {
    // Objects held in another encoding are other bytes under the same hash.
    if m.encoding != layout.encoding.name() {
        return;
    }
    for entry in m.files.values() {
        // A page written straight is at its stable key, while that key
        // still holds what was written (its ETag, the MD5); its object may
        // not exist.
        let straight = entry.is_written_straight();
        for o in objects_for(entry, m.sidecars, layout.encoding) {
            let etag = match entry.written_md5(o.variant) {
                Some(md5) if straight && o.stable => Some(format!("\"{md5}\"")),
                _ if straight || o.stable => continue,
                _ => None,
            };
            let size = match o.variant {
                Variant::Identity => entry.size,
                v => match entry.encodings.get(v.name()) {
                    Some(s) => *s,
                    None => continue,
                },
            };
            sources
                .entry((entry.blake3.clone(), o.variant, size))
                .or_insert_with(|| (format!("{prefix}{}", o.key), etag));
        }
    }
}

fn take(plan: &mut Plan, sources: &HashMap<Content, Source>) -> Vec<Copy> {
    let mut copies = Vec::new();
    let files = &plan.files;
    plan.uploads.retain(|o| {
        // Same bytes with new headers are rewritten in place, not copied.
        if o.replace {
            return true;
        }
        let Some(entry) = files.get(&o.logical) else {
            return true;
        };
        match sources.get(&(entry.blake3.clone(), o.variant, o.bytes)) {
            Some((from, etag)) => {
                copies.push(Copy {
                    object: o.clone(),
                    from: from.clone(),
                    source_etag: etag.clone(),
                });
                false
            }
            None => true,
        }
    });
    copies
}

async fn read_manifest(store: &Arc<dyn Store>, key: &str) -> Result<Option<Manifest>> {
    match store.get(key, None).await? {
        GetOutcome::Found(f) => Ok(Some(Manifest::parse(
            &f.bytes,
            &format!("`{key}` at {}", store.describe()),
        )?)),
        _ => Ok(None),
    }
}

/// The names of the folders under `_previews/` that can be previews,
/// sorted: one listing request for every 1,000 previews, however many
/// objects they hold. A name whose manifest is missing (deleted meanwhile,
/// or a first publish cut short) is skipped by the callers, which read it.
pub async fn preview_names(root: &dyn Store) -> Result<Vec<String>> {
    let mut names = root.list_dirs(PREVIEWS_PREFIX).await?;
    names.retain(|n| is_preview_name(n));
    Ok(names)
}
