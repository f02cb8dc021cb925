//! Sends objects to the store with bounded concurrency, recording each one
//! in the state DB as soon as the store confirms it, so an interrupted run
//! resumes where it stopped. It only sends: what goes out is the payload
//! `pipeline::payload` made for the object (bytes held, or the file
//! streamed through the store's verified body), or a HEAD for an object the
//! state DB says is there.

use std::sync::Arc;

use crate::commands::context::Context;
use crate::concurrency::try_limited;
use crate::error::{Error, Result};
use crate::pipeline::payload::Payload;
use crate::pipeline::plan::PlannedObject;
use crate::pipeline::prepare::Prepared;
use crate::remote::manifest::{meta_digest, object_meta};
use crate::report::{Phase, Reporter};
use crate::state::KnownObject;
use crate::store::{Body, Condition, Head, ObjectMeta, PutOutcome, Store, TransferObserver};

pub struct Job {
    pub object: PlannedObject,
    /// The file the object is of: its entry gives the headers and the hash
    /// recorded.
    pub file: Arc<Prepared>,
    pub task: Task,
}

pub enum Task {
    /// The state DB says the object is there: a HEAD checks it, and one
    /// found missing comes back in [`UploadStats::missing`], to be sent.
    Confirm,
    /// Write `body`. `known`: the state DB records the key already (a
    /// confirmed object found missing), so it is not recorded before the
    /// request.
    Send { body: Body, known: bool },
}

#[derive(Debug, Default, Clone)]
pub struct UploadStats {
    pub uploaded: u64,
    pub bytes: u64,
    /// Objects found already in place (HEAD, or a 412 on `If-None-Match`).
    pub already_there: u64,
    /// Objects to confirm that were not there.
    pub missing: Vec<PlannedObject>,
}

/// The body the store sends for a payload.
pub fn body(payload: Payload) -> Body {
    match payload {
        Payload::Bytes(bytes) => Body::Bytes(bytes),
        Payload::File { path, size, blake3 } => Body::File { path, size, blake3 },
    }
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
    /// A HEAD found nothing (or other bytes) at the key.
    Missing,
}

/// Runs the jobs within the upload phase, which the caller starts and ends
/// (see `deploy`). `first_deploy`: the target has no deploy yet, so an
/// object found at a key was left by an interrupted run, maybe with other
/// settings (`encoding`): it is checked before it counts as in place.
pub async fn upload_all(ctx: &Context, jobs: Vec<Job>, first_deploy: bool) -> Result<UploadStats> {
    let mut stats = UploadStats::default();
    if jobs.is_empty() {
        return Ok(stats);
    }
    let mut first_error: Option<Error> = None;
    let mut failures = 0usize;
    // At most `concurrency` requests in flight; none started after the
    // first failure, but the started ones land.
    let mut uploads = try_limited(ctx.config.target.concurrency, jobs, |job: Job| {
        // Recorded before the request too: if the process dies while it is
        // in flight, the object may have landed, and the rerun checks for it
        // with a HEAD instead of sending it again. Not for a rewrite of
        // headers: recorded early, an interrupted one would look done (same
        // size) to the next run.
        if matches!(job.task, Task::Send { known: false, .. }) && !job.object.replace {
            record(ctx, &job)?;
        }
        let store = ctx.store.clone();
        let reporter = ctx.reporter.clone();
        Ok(async move {
            let done = upload_one(&store, &job, reporter, first_deploy).await?;
            Ok((job, done))
        })
    });
    while let Some(joined) = uploads.next().await {
        let result = joined
            .map_err(|e| Error::Runtime(format!("upload task failed: {e}")))
            .and_then(|r| r);
        match result {
            // Sent with the other objects, once every check is done.
            Ok((job, Done::Missing)) => stats.missing.push(job.object),
            Ok((job, done)) => {
                record(ctx, &job)?;
                if let Done::Uploaded(n) = done {
                    stats.uploaded += 1;
                    stats.bytes += n;
                } else {
                    stats.already_there += 1;
                }
                ctx.reporter.item_done(Phase::Upload, job.object.bytes);
            }
            Err(e) => {
                failures += 1;
                first_error.get_or_insert(e);
            }
        }
    }
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
    first_deploy: bool,
) -> Result<Done> {
    let o = &job.object;
    let body = match &job.task {
        Task::Confirm => {
            return Ok(match store.head(&o.key).await? {
                Some(head) if head.size == o.bytes => Done::AlreadyThere,
                _ => Done::Missing,
            });
        }
        Task::Send { body, .. } => body.clone(),
    };
    // Same bytes, new headers: written over. Anything else only created.
    let condition = if o.replace {
        Condition::None
    } else {
        Condition::IfAbsent
    };
    let meta = object_meta(&job.file.entry, o.variant, false);
    let observer = ProgressObserver(reporter);
    // Fingerprinted objects never change: a 412 means it is already there.
    // (Unless replacing, which sends no condition.)
    // Kept for a second write only where one can follow (see below).
    // (A directory target's `encoding` cannot differ from its objects'.)
    let again = (first_deploy && store.releases().is_none()).then(|| body.clone());
    match store.put(&o.key, body, &meta, condition, &observer).await? {
        PutOutcome::Written { .. } => Ok(Done::Uploaded(o.bytes)),
        PutOutcome::PreconditionFailed => match again {
            Some(body) => replace_leftover(store, o, body, &meta, &observer).await,
            None => Ok(Done::AlreadyThere),
        },
    }
}

/// On a target's first deploy, the object a 412 found at `o.key`: no deploy
/// names it, so an interrupted run left it, and what it holds must be what
/// this deploy names (another `encoding` stores other bytes under the same
/// key). Other bytes, never served, are written over, on the version read.
async fn replace_leftover(
    store: &dyn Store,
    o: &PlannedObject,
    body: Body,
    meta: &ObjectMeta,
    observer: &ProgressObserver,
) -> Result<Done> {
    let holds_it = |found: &Option<Head>| {
        found
            .as_ref()
            .is_some_and(|f| f.size == o.bytes && f.meta.content_encoding == meta.content_encoding)
    };
    let found = store.head(&o.key).await?;
    if holds_it(&found) {
        return Ok(Done::AlreadyThere);
    }
    let condition = found
        .and_then(|f| f.etag)
        .map_or(Condition::None, Condition::IfMatch);
    match store.put(&o.key, body, meta, condition, observer).await? {
        PutOutcome::Written { .. } => Ok(Done::Uploaded(o.bytes)),
        // Refused: the write may have landed with its answer lost (the
        // retry then fails the condition), or another run wrote the key
        // meanwhile.
        PutOutcome::PreconditionFailed if holds_it(&store.head(&o.key).await?) => {
            Ok(Done::Uploaded(o.bytes))
        }
        PutOutcome::PreconditionFailed => Err(Error::conflict(
            crate::error::Conflict::LockHeld,
            format!(
                "`{}` changed while this run replaced what an interrupted run left there: another run is writing to this target",
                o.key
            ),
        )),
    }
}
