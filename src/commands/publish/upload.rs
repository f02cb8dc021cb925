//! Writes objects to the store with bounded concurrency, recording each one
//! in the state DB as soon as the store confirms it, so an interrupted run
//! resumes where it stopped.

use std::sync::Arc;

use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::commands::context::Context;
use crate::error::{Error, Result};
use crate::pipeline::compress;
use crate::pipeline::plan::PlannedObject;
use crate::pipeline::prepare::Prepared;
use crate::remote::manifest::Variant;
use crate::remote::manifest::{meta_digest, object_meta};
use crate::report::{Phase, Reporter};
use crate::state::KnownObject;
use crate::store::{Body, Condition, Store, TransferObserver};

pub struct Job {
    pub object: PlannedObject,
    pub file: Arc<Prepared>,
    /// The state DB says the object is there: check with a HEAD first.
    pub confirm_first: bool,
}

#[derive(Debug, Default, Clone, Copy)]
pub struct UploadStats {
    pub uploaded: u64,
    pub bytes: u64,
    /// Objects found already in place (HEAD, or a 412 on `If-None-Match`).
    pub already_there: u64,
}

struct ProgressObserver(Arc<dyn Reporter>);

impl TransferObserver for ProgressObserver {
    fn bytes_sent(&self, n: u64) {
        self.0.bytes_progress(Phase::Upload, n);
    }
}

enum Done {
    Uploaded(u64),
    AlreadyThere,
}

pub async fn upload_all(ctx: &Context, jobs: Vec<Job>) -> Result<UploadStats> {
    let mut stats = UploadStats::default();
    if jobs.is_empty() {
        return Ok(stats);
    }
    let total: u64 = jobs.iter().map(|j| j.object.bytes).sum();
    ctx.reporter
        .phase_start(Phase::Upload, jobs.len() as u64, total);
    let limit = Arc::new(Semaphore::new(ctx.config.target.concurrency));
    let mut set: JoinSet<(Job, Result<Done>)> = JoinSet::new();
    let mut first_error: Option<Error> = None;
    let mut failures = 0usize;
    let mut pending = jobs.into_iter();
    let js_imports = ctx.config.rewrite_js_imports;
    loop {
        // Keep at most `concurrency` requests in flight; stop starting new
        // ones after the first failure, but let the started ones land.
        while first_error.is_none() && set.len() < ctx.config.target.concurrency {
            let Some(job) = pending.next() else { break };
            // Recorded before the request too: if the process dies while
            // it is in flight, the object may have landed, and the rerun
            // checks for it with a HEAD instead of sending it again.
            // Not for a rewrite of headers: recorded early, an interrupted
            // one would look done (same size) to the next run.
            if !job.confirm_first && !job.object.replace {
                record(ctx, &job)?;
            }
            let store = ctx.store.clone();
            let reporter = ctx.reporter.clone();
            let permit = limit.clone();
            set.spawn(async move {
                let _permit = permit.acquire_owned().await;
                let r = upload_one(&store, &job, reporter, js_imports).await;
                (job, r)
            });
        }
        let Some(joined) = set.join_next().await else {
            break;
        };
        let (job, result) =
            joined.map_err(|e| Error::Runtime(format!("upload task failed: {e}")))?;
        match result {
            Ok(done) => {
                record(ctx, &job)?;
                match done {
                    Done::Uploaded(n) => {
                        stats.uploaded += 1;
                        stats.bytes += n;
                    }
                    Done::AlreadyThere => stats.already_there += 1,
                }
                ctx.reporter.item_done(Phase::Upload, job.object.bytes);
            }
            Err(e) => {
                failures += 1;
                if first_error.is_none() {
                    first_error = Some(e);
                }
            }
        }
    }
    ctx.reporter.phase_end(Phase::Upload);
    match first_error {
        None => Ok(stats),
        Some(e) if failures == 1 => Err(e),
        Some(e) => Err(prefix_error(
            e,
            &format!("{failures} uploads failed; the first: "),
        )),
    }
}

/// Records that the target has (or, while the upload runs, may have) the
/// job's object.
fn record(ctx: &Context, job: &Job) -> Result<()> {
    let entry = &job.file.entry;
    ctx.state.record_object(
        ctx.target.id,
        &job.object.key,
        &KnownObject {
            blake3: entry.blake3.clone(),
            size: job.object.bytes,
            meta: meta_digest(&object_meta(entry, job.object.variant, false)),
        },
    )
}

fn prefix_error(e: Error, prefix: &str) -> Error {
    match e {
        Error::Store(m) => Error::Store(format!("{prefix}{m}")),
        Error::Runtime(m) => Error::Runtime(format!("{prefix}{m}")),
        other => other,
    }
}

async fn upload_one(
    store: &dyn Store,
    job: &Job,
    reporter: Arc<dyn Reporter>,
    js_imports: bool,
) -> Result<Done> {
    let o = &job.object;
    if job.confirm_first
        && let Some(head) = store.head(&o.key).await?
        && head.size == o.bytes
    {
        return Ok(Done::AlreadyThere);
    }
    // Same bytes, new headers: written over. Anything else only created.
    let condition = if o.replace {
        Condition::None
    } else {
        Condition::IfAbsent
    };
    let body = body_for(&job.file, o.variant, js_imports).await?;
    let meta = object_meta(&job.file.entry, o.variant, false);
    let observer = ProgressObserver(reporter);
    // Fingerprinted objects never change: a 412 means it is already there.
    // (Unless replacing, which sends no condition.)
    match store.put(&o.key, body, &meta, condition, &observer).await? {
        crate::store::PutOutcome::Written { .. } => Ok(Done::Uploaded(o.bytes)),
        crate::store::PutOutcome::PreconditionFailed => Ok(Done::AlreadyThere),
    }
}

/// The bytes of one variant of a file: streamed from disk for the file as
/// collected, from memory for rewritten or compressed bytes.
pub async fn body_for(file: &Arc<Prepared>, variant: Variant, js_imports: bool) -> Result<Body> {
    if variant == Variant::Identity && crate::pipeline::prepare::streams_from_disk(file) {
        return Ok(Body::File {
            path: file.path.clone(),
            size: file.entry.size,
            blake3: file.entry.blake3.clone(),
        });
    }
    if let Some(bytes) = file
        .variants
        .lock()
        .ok()
        .and_then(|v| v.get(&variant).cloned())
    {
        return Ok(Body::Bytes(bytes));
    }
    let f = file.clone();
    let bytes = tokio::task::spawn_blocking(move || -> Result<Arc<Vec<u8>>> {
        let data = crate::pipeline::prepare::content(&f, js_imports)
            .map_err(|e| Error::io("cannot read", &f.path, e))?;
        if crate::pipeline::hash::hash_bytes(&data) != f.entry.blake3 {
            return Err(crate::pipeline::prepare::changed_error(&f.path));
        }
        Ok(match variant {
            Variant::Identity => data,
            Variant::Gzip => Arc::new(compress::compress(&data, compress::Encoding::Gzip)),
            Variant::Br => Arc::new(compress::compress(&data, compress::Encoding::Br)),
        })
    })
    .await
    .map_err(|e| Error::Runtime(format!("compression task failed: {e}")))??;
    Ok(Body::Bytes(bytes))
}
