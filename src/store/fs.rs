//! A directory target (`file://PATH`). Every write goes to a temporary file
//! in the destination directory and is renamed into place, so a reader (nginx)
//! never sees a partial object. The file system calls block, so each
//! operation runs on tokio's blocking pool, off the async runtime.

use std::io::{ErrorKind, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;

use super::{
    Body, Condition, ContentDigest, Fetched, GetOutcome, Head, Listed, ObjectMeta, PutOutcome,
    Store, TransferObserver,
};
use crate::error::{Error, Result};

pub struct FsStore {
    root: Arc<Path>,
}

#[async_trait]
impl Store for FsStore {
    fn describe(&self) -> String {
        format!("file://{}", self.root.display())
    }

    async fn get_object(&self, key: &str, if_none_match: Option<&str>) -> Result<GetOutcome> {
        let path = self.path(key);
        let if_none_match = if_none_match.map(str::to_owned);
        blocking(move || get(&path, if_none_match.as_deref())).await
    }

    async fn head_object(&self, key: &str) -> Result<Option<Head>> {
        let path = self.path(key);
        blocking(move || head(&path)).await
    }

    async fn put_object(
        &self,
        key: &str,
        body: Body,
        _meta: &ObjectMeta,
        condition: Condition,
        observer: &dyn TransferObserver,
    ) -> Result<PutOutcome> {
        let path = self.path(key);
        let root = self.root.clone();
        let len = body.len();
        let (written, outcome) = blocking(move || {
            let mut written = false;
            let outcome = put(&root, &path, &body, &condition, &mut written);
            Ok((written, outcome))
        })
        .await?;
        if written {
            observer.bytes_sent(len);
        }
        outcome
    }

    /// A directory has no server-side copy: the bytes are read and written.
    async fn copy_object(
        &self,
        from: &str,
        to: &str,
        meta: &ObjectMeta,
        condition: Condition,
    ) -> Result<PutOutcome> {
        let src = self.path(from);
        let bytes =
            blocking(move || std::fs::read(&src).map_err(|e| Error::io("cannot read", &src, e)))
                .await?;
        self.put_object(
            to,
            Body::Bytes(bytes.into()),
            meta,
            condition,
            &super::NoObserver,
        )
        .await
    }

    async fn delete_objects(&self, keys: &[String]) -> Result<()> {
        let paths: Vec<PathBuf> = keys.iter().map(|k| self.path(k)).collect();
        blocking(move || delete(&paths)).await
    }

    async fn list_objects(&self, prefix: &str) -> Result<Vec<Listed>> {
        let root = self.root.clone();
        let prefix = prefix.to_owned();
        blocking(move || list(&root, &prefix)).await
    }

    /// A directory keeps no digest: the file's bytes, opened when first read.
    async fn object_digest(&self, key: &str) -> Result<ContentDigest> {
        Ok(ContentDigest::Bytes(Box::new(LazyFile {
            path: self.path(key),
            file: None,
        })))
    }

    /// A directory always enforces `If-None-Match`/`If-Match`.
    async fn probe_conditional_writes(&self) -> Result<bool> {
        Ok(true)
    }
}

impl FsStore {
    pub fn new(root: PathBuf) -> FsStore {
        FsStore { root: root.into() }
    }

    fn path(&self, key: &str) -> PathBuf {
        self.root.join(key)
    }
}

/// Runs file system work on the blocking pool.
async fn blocking<T, F>(work: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T> + Send + 'static,
{
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| Error::Runtime(format!("a file system task failed: {e}")))?
}

fn get(path: &Path, if_none_match: Option<&str>) -> Result<GetOutcome> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(GetOutcome::Missing),
        Err(e) => return Err(Error::io("cannot read", path, e)),
    };
    let etag = etag_of(&bytes);
    if if_none_match == Some(etag.as_str()) {
        return Ok(GetOutcome::NotModified);
    }
    Ok(GetOutcome::Found(Fetched {
        bytes,
        etag: Some(etag),
    }))
}

fn head(path: &Path) -> Result<Option<Head>> {
    match std::fs::metadata(path) {
        Ok(m) if m.is_file() => Ok(Some(Head {
            size: m.len(),
            etag: None,
            meta: ObjectMeta::default(),
        })),
        Ok(_) => Ok(None),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io("cannot stat", path, e)),
    }
}

/// Writes `body` to `path` when `condition` holds. `written` is set once the
/// bytes are in the temporary file, which is when they count as sent.
fn put(
    root: &Path,
    path: &Path,
    body: &Body,
    condition: &Condition,
    written: &mut bool,
) -> Result<PutOutcome> {
    if let Some(outcome) = refuse(path, condition)? {
        return Ok(outcome);
    }
    let dir = path.parent().unwrap_or(root);
    std::fs::create_dir_all(dir).map_err(|e| Error::io("cannot create directory", dir, e))?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".assetpub-tmp-")
        .tempfile_in(dir)
        .map_err(|e| Error::io("cannot create a temporary file in", dir, e))?;
    match body {
        Body::Bytes(bytes) => {
            tmp.write_all(bytes)
                .map_err(|e| Error::io("cannot write", tmp.path(), e))?;
        }
        Body::File {
            path: src,
            size,
            blake3,
        } => copy_verified(src, *size, blake3, tmp.as_file_mut())?,
    }
    *written = true;
    let etag = match body {
        Body::Bytes(b) => Some(etag_of(b)),
        Body::File { .. } => None,
    };
    if *condition == Condition::IfAbsent {
        // persist_noclobber is an atomic link-then-unlink: of two writers
        // of the lock, exactly one wins.
        return match tmp.persist_noclobber(path) {
            Ok(_) => Ok(PutOutcome::Written { etag }),
            Err(e) if e.error.kind() == ErrorKind::AlreadyExists => {
                Ok(PutOutcome::PreconditionFailed)
            }
            Err(e) => Err(Error::io("cannot write", path, e.error)),
        };
    }
    tmp.persist(path)
        .map_err(|e| Error::io("cannot write", path, e.error))?;
    Ok(PutOutcome::Written { etag })
}

/// Some(outcome) when the condition does not hold for the current file.
fn refuse(path: &Path, condition: &Condition) -> Result<Option<PutOutcome>> {
    match condition {
        Condition::None => Ok(None),
        Condition::IfAbsent => Ok(path.exists().then_some(PutOutcome::PreconditionFailed)),
        Condition::IfMatch(expected) => match std::fs::read(path) {
            Ok(bytes) if &etag_of(&bytes) == expected => Ok(None),
            Ok(_) => Ok(Some(PutOutcome::PreconditionFailed)),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(Some(PutOutcome::PreconditionFailed)),
            Err(e) => Err(Error::io("cannot read", path, e)),
        },
    }
}

fn delete(paths: &[PathBuf]) -> Result<()> {
    for path in paths {
        match std::fs::remove_file(path) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io("cannot delete", path, e)),
        }
    }
    Ok(())
}

fn list(root: &Path, prefix: &str) -> Result<Vec<Listed>> {
    let mut out = Vec::new();
    if !root.exists() {
        return Ok(out);
    }
    for entry in walkdir::WalkDir::new(root).follow_links(false) {
        let entry =
            entry.map_err(|e| Error::Runtime(format!("cannot list `{}`: {e}", root.display())))?;
        if !entry.file_type().is_file() {
            continue;
        }
        let Ok(rel) = entry.path().strip_prefix(root) else {
            continue;
        };
        let Some(key) = rel
            .to_str()
            .map(|s| s.replace(std::path::MAIN_SEPARATOR, "/"))
        else {
            continue;
        };
        if !key.starts_with(prefix)
            || key
                .rsplit('/')
                .next()
                .is_some_and(|n| n.starts_with(".assetpub-tmp-"))
        {
            continue;
        }
        let meta = entry.metadata().map_err(|e| {
            Error::Runtime(format!("cannot stat `{}`: {e}", entry.path().display()))
        })?;
        let modified = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_secs() as i64);
        out.push(Listed {
            key,
            size: meta.len(),
            modified,
        });
    }
    out.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(out)
}

/// A file opened on its first read, so that handing out the reader does no
/// I/O and a failure to open reaches the reader as it happened.
struct LazyFile {
    path: PathBuf,
    file: Option<std::fs::File>,
}

impl Read for LazyFile {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let file = match &mut self.file {
            Some(f) => f,
            None => self.file.insert(std::fs::File::open(&self.path)?),
        };
        file.read(buf)
    }
}

/// The ETag a directory target reports: a hash of the content, so `If-Match`
/// means "the same bytes this run started from".
pub fn etag_of(bytes: &[u8]) -> String {
    format!("\"{}\"", &blake3::hash(bytes).to_hex()[..32])
}

/// Copies `src` into `dst`, refusing it when its bytes no longer hash to
/// `blake3` (the file changed after it was collected).
fn copy_verified(src: &Path, size: u64, blake3: &str, dst: &mut std::fs::File) -> Result<()> {
    let mut file = std::fs::File::open(src).map_err(|e| Error::io("cannot read", src, e))?;
    let mut hasher = blake3::Hasher::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut copied = 0u64;
    loop {
        let n = file
            .read(&mut buf)
            .map_err(|e| Error::io("cannot read", src, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        dst.write_all(&buf[..n])
            .map_err(|e| Error::io("cannot write a copy of", src, e))?;
        copied += n as u64;
    }
    if copied != size || hasher.finalize().to_hex().as_str() != blake3 {
        return Err(Error::Input(format!(
            "`{}` changed while it was being published; nothing was uploaded for it\nhint: run the build to completion, then publish again",
            src.display()
        )));
    }
    Ok(())
}
