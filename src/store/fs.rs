//! A directory target (`file://PATH`). Every write goes to a temporary file
//! in the destination directory and is renamed into place, so a reader (nginx)
//! never sees a partial object. The file system calls block, so each
//! operation runs on tokio's blocking pool, off the async runtime.
//!
//! Layout: the immutable objects (fingerprinted files, the objects behind
//! stable keys, their `.gz`/`.br`) live at the root, shared by every deploy.
//! Each deploy's stable keys, its manifest and `staticfiles.json` live in a
//! release, `.assetpub/releases/<deploy>/`, the stable keys as hard links to
//! their objects; `.assetpub/current` is a symlink to the live release,
//! replaced with one `rename(2)` (see [`Releases`]). A key is read from the
//! live release first, then from the root; the manifest and
//! `staticfiles.json` are written into the live release when there is one,
//! every other key at the root. A target published before releases keeps
//! everything at the root until its next switch moves it.

use std::collections::BTreeSet;
use std::io::{ErrorKind, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;

use super::{
    Body, Condition, ContentDigest, Fetched, GetOutcome, Head, Listed, ObjectMeta, PutOutcome,
    ReleaseDir, Releases, Store, TransferObserver,
};
use crate::error::{Error, Result};
use crate::keys::{LIVE_RELEASE, RELEASES_PREFIX, RESERVED_PREFIX, STATICFILES_KEY};

pub struct FsStore {
    root: Arc<Path>,
    /// The keys a release holds besides its stable keys: the manifest and
    /// Django's `staticfiles.json`.
    release_files: Arc<[String]>,
}

#[async_trait]
impl Store for FsStore {
    fn describe(&self) -> String {
        format!("file://{}", self.root.display())
    }

    async fn get_object(&self, key: &str, if_none_match: Option<&str>) -> Result<GetOutcome> {
        let paths = self.read_paths(key);
        let if_none_match = if_none_match.map(str::to_owned);
        blocking(move || get(&paths, if_none_match.as_deref())).await
    }

    async fn head_object(&self, key: &str) -> Result<Option<Head>> {
        let paths = self.read_paths(key);
        blocking(move || head(&paths)).await
    }

    async fn put_object(
        &self,
        key: &str,
        body: Body,
        _meta: &ObjectMeta,
        condition: Condition,
        observer: &dyn TransferObserver,
    ) -> Result<PutOutcome> {
        let path = self.write_path(key);
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
        let paths = self.read_paths(from);
        let source_is = match &condition {
            Condition::SourceIs(etag) => Some(etag.clone()),
            _ => None,
        };
        let bytes = blocking(move || match get(&paths, None)? {
            GetOutcome::Found(f)
                if source_is
                    .as_ref()
                    .is_some_and(|e| f.etag.as_ref() != Some(e)) =>
            {
                Ok(None)
            }
            GetOutcome::Found(f) => Ok(Some(f.bytes)),
            _ if source_is.is_some() => Ok(None),
            _ => Err(Error::io(
                "cannot read",
                &paths[paths.len() - 1],
                std::io::Error::from(ErrorKind::NotFound),
            )),
        })
        .await?;
        let Some(bytes) = bytes else {
            return Ok(PutOutcome::PreconditionFailed);
        };
        self.put_object(
            to,
            Body::Bytes(bytes.into()),
            meta,
            condition,
            &super::NoObserver,
        )
        .await
    }

    async fn delete_object_if_match(&self, key: &str, etag: &str) -> Result<bool> {
        let path = self.write_path(key);
        let etag = etag.to_string();
        blocking(move || match std::fs::read(&path) {
            Ok(bytes) if etag_of(&bytes) == etag => delete(&[path]).map(|()| true),
            Ok(_) => Ok(false),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
            Err(e) => Err(Error::io("cannot read", &path, e)),
        })
        .await
    }

    async fn delete_objects(&self, keys: &[String]) -> Result<()> {
        let paths: Vec<PathBuf> = keys.iter().map(|k| self.write_path(k)).collect();
        blocking(move || delete(&paths)).await
    }

    async fn list_objects(&self, prefix: &str) -> Result<Vec<Listed>> {
        let root = self.root.clone();
        let prefix = prefix.to_owned();
        blocking(move || list(&root, &prefix)).await
    }

    async fn list_dirs(&self, prefix: &str) -> Result<Vec<String>> {
        let dir = self.root.join(prefix);
        blocking(move || {
            let entries = match std::fs::read_dir(&dir) {
                Ok(entries) => entries,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
                Err(e) => return Err(Error::io("cannot list", &dir, e)),
            };
            let mut out = Vec::new();
            for entry in entries {
                let entry = entry.map_err(|e| Error::io("cannot list", &dir, e))?;
                if entry.file_type().is_ok_and(|t| t.is_dir())
                    && let Some(name) = entry.file_name().to_str()
                {
                    out.push(name.to_owned());
                }
            }
            out.sort();
            Ok(out)
        })
        .await
    }

    /// A directory keeps no digest: the file's bytes, opened when first read.
    async fn object_digest(&self, key: &str) -> Result<ContentDigest> {
        Ok(ContentDigest::Bytes(Box::new(LazyFile {
            paths: self.read_paths(key),
            file: None,
        })))
    }

    /// A directory always enforces `If-None-Match`/`If-Match`.
    async fn probe_conditional_writes(&self, _key: &str) -> Result<bool> {
        Ok(true)
    }

    fn releases(&self) -> Option<&dyn Releases> {
        Some(self)
    }
}

impl FsStore {
    pub fn new(root: PathBuf) -> FsStore {
        FsStore {
            root: root.into(),
            release_files: ["manifest.json".to_string(), STATICFILES_KEY.to_string()].into(),
        }
    }

    /// The manifest's key, when `[manifest] key` is not `manifest.json`.
    pub fn with_manifest_key(mut self, key: &str) -> FsStore {
        self.release_files = [key.to_string(), STATICFILES_KEY.to_string()].into();
        self
    }

    fn releases_dir(&self) -> PathBuf {
        self.root.join(RELEASES_PREFIX)
    }

    /// Where a read of `key` looks, in order: the live release (through the
    /// symlink, resolved once by the open), then the root.
    fn read_paths(&self, key: &str) -> Vec<PathBuf> {
        if key.starts_with(RESERVED_PREFIX) {
            vec![self.root.join(key)]
        } else {
            vec![self.root.join(LIVE_RELEASE).join(key), self.root.join(key)]
        }
    }

    /// Where a write of `key` goes: the live release's own directory for
    /// the manifest and `staticfiles.json` when a release is live (a file
    /// replaced there with one rename), the root for everything else.
    fn write_path(&self, key: &str) -> PathBuf {
        if self.release_files.iter().any(|k| k == key)
            && let Ok(Some(dir)) = live_dir(&self.root)
        {
            return dir.join(key);
        }
        self.root.join(key)
    }
}

/// The directory of the live release, `None` when there is none.
fn live_dir(root: &Path) -> Result<Option<PathBuf>> {
    let link = root.join(LIVE_RELEASE);
    match std::fs::read_link(&link) {
        Ok(target) => Ok(Some(link.parent().unwrap_or(root).join(target))),
        Err(e) if absent(&e) => Ok(None),
        Err(e) => Err(Error::io("cannot read the symlink", &link, e)),
    }
}

/// The deploy a release directory serves: its name, unless it is an
/// unfinished one (`.staging-...`).
fn release_deploy(name: &str) -> Option<String> {
    (!name.starts_with('.')).then(|| name.to_string())
}

/// A deploy id used as a directory name: one path segment.
fn check_release_name(name: &str) -> Result<()> {
    crate::keys::check_key(name)?;
    if name.contains('/') {
        return Err(Error::Input(format!("refusing release name `{name}`")));
    }
    Ok(())
}

#[async_trait]
impl Releases for FsStore {
    async fn live_release(&self) -> Result<Option<String>> {
        let root = self.root.clone();
        blocking(move || {
            Ok(live_dir(&root)?
                .and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned())))
        })
        .await
    }

    async fn stage_release(
        &self,
        deploy: &str,
        links: Vec<(String, String)>,
        files: Vec<(String, Vec<u8>)>,
    ) -> Result<bool> {
        check_release_name(deploy)?;
        for (key, object) in &links {
            crate::keys::check_key(key)?;
            crate::keys::check_key(object)?;
        }
        for (key, _) in &files {
            crate::keys::check_key(key)?;
        }
        let root = self.root.clone();
        let dir = self.releases_dir();
        let deploy = deploy.to_string();
        blocking(move || stage(&root, &dir, &deploy, &links, &files)).await
    }

    async fn switch_release(
        &self,
        deploy: &str,
        manifest_key: &str,
        expected: Option<&str>,
    ) -> Result<PutOutcome> {
        check_release_name(deploy)?;
        let root = self.root.clone();
        let served = self.read_paths(manifest_key);
        let deploy = deploy.to_string();
        let manifest_key = manifest_key.to_string();
        let expected = expected.map(str::to_owned);
        blocking(move || switch(&root, &deploy, &manifest_key, &served, expected.as_deref())).await
    }

    async fn list_releases(&self) -> Result<Vec<ReleaseDir>> {
        let dir = self.releases_dir();
        blocking(move || {
            let mut out = Vec::new();
            let entries = match std::fs::read_dir(&dir) {
                Ok(e) => e,
                Err(e) if absent(&e) => return Ok(out),
                Err(e) => return Err(Error::io("cannot list", &dir, e)),
            };
            for entry in entries {
                let entry = entry.map_err(|e| Error::io("cannot list", &dir, e))?;
                let name = entry.file_name().to_string_lossy().into_owned();
                let modified = entry
                    .metadata()
                    .ok()
                    .and_then(|m| m.modified().ok())
                    .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                    .map_or(0, |d| d.as_secs() as i64);
                out.push(ReleaseDir {
                    deploy: release_deploy(&name),
                    name,
                    modified,
                });
            }
            out.sort_by(|a, b| a.name.cmp(&b.name));
            Ok(out)
        })
        .await
    }

    async fn delete_releases(&self, names: &[String]) -> Result<()> {
        for n in names {
            check_release_name(n)?;
        }
        let live = self.live_release().await?;
        if let Some(l) = live.as_ref().filter(|l| names.contains(l)) {
            return Err(Error::Runtime(format!(
                "refusing to delete the live release `{l}` of {}",
                self.describe()
            )));
        }
        let dir = self.releases_dir();
        let names = names.to_vec();
        blocking(move || {
            for n in names {
                let path = dir.join(n);
                match std::fs::remove_dir_all(&path) {
                    Ok(()) => {}
                    Err(e) if absent(&e) => {}
                    Err(e) => return Err(Error::io("cannot delete", &path, e)),
                }
            }
            Ok(())
        })
        .await
    }

    async fn changed_live(&self) -> Result<Vec<String>> {
        let root = self.root.clone();
        blocking(move || changed_live(&root)).await
    }

    async fn relink_live(&self, links: Vec<(String, String)>) -> Result<()> {
        for (key, object) in &links {
            crate::keys::check_key(key)?;
            crate::keys::check_key(object)?;
        }
        let root = self.root.clone();
        blocking(move || {
            let Some(live) = live_dir(&root)? else {
                return Err(Error::Runtime(format!(
                    "no release is live at {}",
                    root.display()
                )));
            };
            for (key, object) in &links {
                let to = live.join(key);
                make_parent(&to)?;
                let tmp = to.with_file_name(format!(".assetpub-tmp-relink-{}", std::process::id()));
                let from = root.join(object);
                let _ = std::fs::remove_file(&tmp);
                if std::fs::hard_link(&from, &tmp).is_err() {
                    std::fs::copy(&from, &tmp).map_err(|e| Error::io("cannot copy", &from, e))?;
                }
                std::fs::rename(&tmp, &to).map_err(|e| Error::io("cannot write", &to, e))?;
            }
            // The same release, live anew from now: what was relinked
            // (perhaps to an object uploaded again just now) is not a
            // change made by hand.
            let link = root.join(LIVE_RELEASE);
            let target = std::fs::read_link(&link)
                .map_err(|e| Error::io("cannot read the symlink", &link, e))?;
            replace_symlink(&link, &target)
        })
        .await
    }

    async fn delete_at_root(&self, keys: &[String]) -> Result<()> {
        for k in keys {
            crate::keys::check_key(k)?;
        }
        let paths: Vec<PathBuf> = keys.iter().map(|k| self.root.join(k)).collect();
        blocking(move || delete(&paths)).await
    }
}

/// Builds release `deploy` in a staging directory beside the others and
/// renames it into place; keeps one that already holds exactly this.
fn stage(
    root: &Path,
    releases: &Path,
    deploy: &str,
    links: &[(String, String)],
    files: &[(String, Vec<u8>)],
) -> Result<bool> {
    let dir = releases.join(deploy);
    if holds_exactly(root, &dir, links, files)? {
        return Ok(false);
    }
    std::fs::create_dir_all(releases)
        .map_err(|e| Error::io("cannot create directory", releases, e))?;
    // Removed when this fails; left behind when the process is killed, for
    // `prune` (its name says it is unfinished).
    let staging = Scratch::create(releases, ".staging-")?;
    for (key, object) in links {
        let to = staging.path().join(key);
        make_parent(&to)?;
        let from = root.join(object);
        if let Err(e) = std::fs::hard_link(&from, &to) {
            if absent(&e) {
                return Err(Error::Store(format!(
                    "cannot make `{key}` of release `{deploy}` a link to its object `{}`: {e}",
                    from.display()
                )));
            }
            // A file system without hard links gets a copy.
            std::fs::copy(&from, &to).map_err(|e| Error::io("cannot copy", &from, e))?;
        }
    }
    for (key, bytes) in files {
        let to = staging.path().join(key);
        make_parent(&to)?;
        std::fs::write(&to, bytes).map_err(|e| Error::io("cannot write", &to, e))?;
    }
    if std::fs::symlink_metadata(&dir).is_ok() {
        // An earlier release of this deploy that does not hold what it
        // should (never the live one: that is never restaged).
        if live_dir(root)?.is_some_and(|l| l.file_name() == dir.file_name()) {
            return Err(Error::Runtime(format!(
                "the live release `{deploy}` at {} does not hold what its deploy names; run `assetpub verify`",
                root.display()
            )));
        }
        let old = Scratch::create(releases, ".staging-old-")?;
        let aside = old.path().join(deploy);
        std::fs::rename(&dir, &aside).map_err(|e| Error::io("cannot move aside", &dir, e))?;
        drop(old);
    }
    std::fs::rename(staging.path(), &dir)
        .map_err(|e| Error::io("cannot rename into place", &dir, e))?;
    staging.keep();
    Ok(true)
}

/// A new directory, deleted with what it holds when dropped unless kept.
/// Made with `create_dir`, so it gets the mode the umask gives every other
/// directory of the target (nginx's workers must read it), not a private
/// temporary directory's 0700.
struct Scratch(Option<PathBuf>);

impl Scratch {
    fn create(parent: &Path, prefix: &str) -> Result<Scratch> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        for attempt in 0..100u32 {
            let path = parent.join(format!("{prefix}{}-{nanos}-{attempt}", std::process::id()));
            match std::fs::create_dir(&path) {
                Ok(()) => return Ok(Scratch(Some(path))),
                Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
                Err(e) => return Err(Error::io("cannot create a directory in", parent, e)),
            }
        }
        Err(Error::Runtime(format!(
            "cannot create a directory in `{}`: every name tried is taken",
            parent.display()
        )))
    }

    fn path(&self) -> &Path {
        self.0.as_deref().expect("not kept yet")
    }

    /// It stays (it was renamed into place).
    fn keep(mut self) {
        self.0 = None;
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = std::fs::remove_dir_all(p);
        }
    }
}

fn make_parent(path: &Path) -> Result<()> {
    match path.parent() {
        Some(dir) => {
            std::fs::create_dir_all(dir).map_err(|e| Error::io("cannot create directory", dir, e))
        }
        None => Ok(()),
    }
}

/// Whether release `dir` holds exactly these files: each link the same
/// file as its object, each written file the same bytes, nothing else.
fn holds_exactly(
    root: &Path,
    dir: &Path,
    links: &[(String, String)],
    files: &[(String, Vec<u8>)],
) -> Result<bool> {
    use std::os::unix::fs::MetadataExt;
    if !dir.is_dir() {
        return Ok(false);
    }
    let mut expected: BTreeSet<&str> = BTreeSet::new();
    for (key, object) in links {
        expected.insert(key);
        let (Ok(a), Ok(b)) = (
            std::fs::metadata(dir.join(key)),
            std::fs::metadata(root.join(object)),
        ) else {
            return Ok(false);
        };
        if (a.dev(), a.ino()) != (b.dev(), b.ino()) {
            return Ok(false);
        }
    }
    for (key, bytes) in files {
        expected.insert(key);
        match std::fs::read(dir.join(key)) {
            Ok(b) if &b == bytes => {}
            _ => return Ok(false),
        }
    }
    let mut found = 0;
    for entry in walkdir::WalkDir::new(dir).follow_links(false) {
        let entry =
            entry.map_err(|e| Error::Runtime(format!("cannot list `{}`: {e}", dir.display())))?;
        if entry.file_type().is_dir() {
            continue;
        }
        let rel = entry.path().strip_prefix(dir).unwrap_or(entry.path());
        let key = rel
            .to_string_lossy()
            .replace(std::path::MAIN_SEPARATOR, "/");
        if !expected.contains(key.as_str()) {
            return Ok(false);
        }
        found += 1;
    }
    Ok(found == expected.len())
}

/// Points `.assetpub/current` at release `deploy` with one `rename(2)` of
/// a new symlink over it (or creates it, for a target's first release),
/// when the manifest served now has the ETag `expected`.
fn switch(
    root: &Path,
    deploy: &str,
    manifest_key: &str,
    served: &[PathBuf],
    expected: Option<&str>,
) -> Result<PutOutcome> {
    let release = root.join(RELEASES_PREFIX).join(deploy);
    let manifest = release.join(manifest_key);
    let bytes = std::fs::read(&manifest).map_err(|e| Error::io("cannot read", &manifest, e))?;
    let now = match get(served, None)? {
        GetOutcome::Found(f) => f.etag,
        _ => None,
    };
    if now.as_deref() != expected {
        return Ok(PutOutcome::PreconditionFailed);
    }
    let link = root.join(LIVE_RELEASE);
    let target = Path::new("releases").join(deploy);
    if std::fs::symlink_metadata(&link).is_err() {
        return match std::os::unix::fs::symlink(&target, &link) {
            Ok(()) => Ok(PutOutcome::Written {
                etag: Some(etag_of(&bytes)),
            }),
            Err(e) if e.kind() == ErrorKind::AlreadyExists => Ok(PutOutcome::PreconditionFailed),
            Err(e) => Err(Error::io("cannot create the symlink", &link, e)),
        };
    }
    replace_symlink(&link, &target)?;
    Ok(PutOutcome::Written {
        etag: Some(etag_of(&bytes)),
    })
}

/// A path that is not there: missing, or under a file.
fn absent(e: &std::io::Error) -> bool {
    matches!(e.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory)
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

/// The first of `paths` that is there.
fn get(paths: &[PathBuf], if_none_match: Option<&str>) -> Result<GetOutcome> {
    let mut found = None;
    for path in paths {
        match std::fs::read(path) {
            Ok(b) => {
                found = Some(b);
                break;
            }
            Err(e) if absent(&e) => {}
            Err(e) => return Err(Error::io("cannot read", path, e)),
        }
    }
    let Some(bytes) = found else {
        return Ok(GetOutcome::Missing);
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

fn head(paths: &[PathBuf]) -> Result<Option<Head>> {
    for path in paths {
        match std::fs::metadata(path) {
            Ok(m) if m.is_file() => {
                return Ok(Some(Head {
                    size: m.len(),
                    etag: None,
                    meta: ObjectMeta::default(),
                }));
            }
            Ok(_) => {}
            Err(e) if absent(&e) => {}
            Err(e) => return Err(Error::io("cannot stat", path, e)),
        }
    }
    Ok(None)
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
    // The mode the umask gives any new file (0644 with the usual 022), not
    // a temporary file's 0600: nginx's workers, another user, read it.
    let mut tmp = tempfile::Builder::new()
        .prefix(".assetpub-tmp-")
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666))
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
        Condition::None | Condition::SourceIs(_) => Ok(None),
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
    // Releases are links to the objects listed here, not objects of their
    // own: listed only when asked for by their prefix.
    let releases = root.join(RELEASES_PREFIX.trim_end_matches('/'));
    let skip_releases = !prefix.starts_with(RELEASES_PREFIX);
    for entry in walkdir::WalkDir::new(root)
        .follow_links(false)
        .into_iter()
        .filter_entry(|e| !(skip_releases && e.path() == releases))
    {
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
/// The first of `paths` that is there is opened.
struct LazyFile {
    paths: Vec<PathBuf>,
    file: Option<std::fs::File>,
}

impl Read for LazyFile {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let file = match &mut self.file {
            Some(f) => f,
            None => {
                let mut opened = Err(std::io::Error::from(ErrorKind::NotFound));
                for path in &self.paths {
                    opened = std::fs::File::open(path);
                    match &opened {
                        Err(e) if absent(e) => continue,
                        _ => break,
                    }
                }
                self.file.insert(opened?)
            }
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

/// The files of the live release written after it went live (the time of
/// the `current` symlink), and, where pages are hard links, pages that are
/// no longer one. The manifest and `staticfiles.json` are files of their
/// own, written before the switch.
fn changed_live(root: &Path) -> Result<Vec<String>> {
    use std::os::unix::fs::MetadataExt;
    let link = root.join(LIVE_RELEASE);
    let live_since = match std::fs::symlink_metadata(&link).and_then(|m| m.modified()) {
        Ok(t) => t,
        Err(e) if absent(&e) => return Ok(Vec::new()),
        Err(e) => return Err(Error::io("cannot stat", &link, e)),
    };
    let Some(dir) = live_dir(root)? else {
        return Ok(Vec::new());
    };
    let mut files = Vec::new();
    let mut linked = false;
    for entry in walkdir::WalkDir::new(&dir).follow_links(false) {
        let entry =
            entry.map_err(|e| Error::Store(format!("cannot list {}: {e}", dir.display())))?;
        if !entry.file_type().is_file() {
            continue;
        }
        let meta = entry
            .metadata()
            .map_err(|e| Error::Store(format!("cannot stat {}: {e}", entry.path().display())))?;
        let key = entry
            .path()
            .strip_prefix(&dir)
            .unwrap_or(entry.path())
            .to_string_lossy()
            .into_owned();
        linked |= meta.nlink() > 1;
        let modified = meta
            .modified()
            .map_err(|e| Error::io("cannot stat", entry.path(), e))?;
        files.push((key, modified, meta.nlink()));
    }
    let own = |k: &str| k == STATICFILES_KEY || k.ends_with(".json") && !k.contains('/');
    let mut changed: Vec<String> = files
        .into_iter()
        .filter(|(key, mtime, nlink)| *mtime > live_since || (linked && *nlink == 1 && !own(key)))
        .map(|(key, ..)| key)
        .collect();
    changed.sort();
    Ok(changed)
}

/// Points the symlink `link` at `target` in one `rename(2)` of a new
/// symlink made beside it.
fn replace_symlink(link: &Path, target: &Path) -> Result<()> {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let tmp = link.with_file_name(format!(
        ".assetpub-tmp-current-{}-{nanos}",
        std::process::id()
    ));
    std::os::unix::fs::symlink(target, &tmp)
        .map_err(|e| Error::io("cannot create the symlink", &tmp, e))?;
    if let Err(e) = std::fs::rename(&tmp, link) {
        let _ = std::fs::remove_file(&tmp);
        return Err(Error::io("cannot switch the symlink", link, e));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(dir: &tempfile::TempDir) -> FsStore {
        FsStore::new(dir.path().to_path_buf())
    }

    async fn put(s: &FsStore, key: &str, bytes: &str) {
        s.put_object(
            key,
            Body::Bytes(Arc::new(bytes.as_bytes().to_vec())),
            &ObjectMeta::default(),
            Condition::None,
            &super::super::NoObserver,
        )
        .await
        .unwrap();
    }

    async fn read(s: &FsStore, key: &str) -> Option<String> {
        match s.get_object(key, None).await.unwrap() {
            GetOutcome::Found(f) => Some(String::from_utf8(f.bytes).unwrap()),
            _ => None,
        }
    }

    /// Release `deploy`: `index.html` linked to `index.<deploy>.html`.
    async fn release(s: &FsStore, deploy: &str, page: &str) {
        let object = format!("index.{deploy}.html");
        put(s, &object, page).await;
        s.stage_release(
            deploy,
            vec![("index.html".into(), object)],
            vec![(
                "manifest.json".into(),
                format!("{{\"deploy\":\"{deploy}\"}}").into_bytes(),
            )],
        )
        .await
        .unwrap();
    }

    #[tokio::test]
    async fn list_dirs_names_the_folders_one_level_down() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(&dir);
        for f in ["p/b/x.css", "p/a/y/z.css", "p/file.txt", "q/c/w.css"] {
            let path = dir.path().join(f);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, b"x").unwrap();
        }
        assert_eq!(s.list_dirs("p/").await.unwrap(), ["a", "b"]);
        assert!(s.list_dirs("none/").await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_switch_is_one_rename_and_reads_see_the_live_release_first() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(&dir);
        release(&s, "d1", "one").await;
        assert_eq!(s.live_release().await.unwrap(), None);
        assert_eq!(read(&s, "index.html").await, None, "not live yet");
        let written = s.switch_release("d1", "manifest.json", None).await.unwrap();
        let PutOutcome::Written { etag } = written else {
            panic!("{written:?}")
        };
        assert_eq!(s.live_release().await.unwrap().as_deref(), Some("d1"));
        assert_eq!(read(&s, "index.html").await.as_deref(), Some("one"));
        // A hard link to the object, not a copy.
        use std::os::unix::fs::MetadataExt;
        let a = std::fs::metadata(dir.path().join(".assetpub/releases/d1/index.html")).unwrap();
        let b = std::fs::metadata(dir.path().join("index.d1.html")).unwrap();
        assert_eq!(a.ino(), b.ino());
        // As readable as the target's other directories (by nginx's
        // workers), not private like a temporary one.
        let mode = |p: &str| std::fs::metadata(dir.path().join(p)).unwrap().mode() & 0o777;
        assert_eq!(mode(".assetpub/releases/d1"), mode(".assetpub/releases"));
        // And so are its files: the objects they link to.
        std::fs::write(dir.path().join("plain"), "x").unwrap();
        assert_eq!(mode(".assetpub/releases/d1/index.html"), mode("plain"));
        assert_eq!(mode("index.d1.html"), mode("plain"));
        // Objects are read from the root.
        assert_eq!(read(&s, "index.d1.html").await.as_deref(), Some("one"));

        release(&s, "d2", "two").await;
        // Conditional on the manifest served now.
        assert_eq!(
            s.switch_release("d2", "manifest.json", Some("\"stale\""))
                .await
                .unwrap(),
            PutOutcome::PreconditionFailed
        );
        assert_eq!(read(&s, "index.html").await.as_deref(), Some("one"));
        s.switch_release("d2", "manifest.json", etag.as_deref())
            .await
            .unwrap();
        assert_eq!(read(&s, "index.html").await.as_deref(), Some("two"));
        assert_eq!(
            std::fs::read_link(dir.path().join(LIVE_RELEASE)).unwrap(),
            Path::new("releases/d2")
        );
        // The live release is never deleted; another one is.
        assert!(s.delete_releases(&["d2".into()]).await.is_err());
        s.delete_releases(&["d1".into()]).await.unwrap();
        assert!(!dir.path().join(".assetpub/releases/d1").exists());
        // Nothing but the symlink and the releases in `.assetpub/`.
        let names: Vec<String> = std::fs::read_dir(dir.path().join(".assetpub"))
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
    }

    #[tokio::test]
    async fn a_release_that_cannot_be_built_changes_nothing_live() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(&dir);
        release(&s, "d1", "one").await;
        s.switch_release("d1", "manifest.json", None).await.unwrap();
        let e = s
            .stage_release(
                "d2",
                vec![("index.html".into(), "index.gone.html".into())],
                vec![("manifest.json".into(), b"{}".to_vec())],
            )
            .await
            .unwrap_err();
        assert!(e.to_string().contains("index.gone.html"), "{e}");
        assert_eq!(s.live_release().await.unwrap().as_deref(), Some("d1"));
        assert_eq!(read(&s, "index.html").await.as_deref(), Some("one"));
        // No release, whole or partial, is left behind.
        let releases: Vec<ReleaseDir> = s.list_releases().await.unwrap();
        assert_eq!(releases.len(), 1, "{releases:?}");
        assert_eq!(releases[0].deploy.as_deref(), Some("d1"));
        // Switching to a release that is not there fails too.
        assert!(s.switch_release("d2", "manifest.json", None).await.is_err());
        assert_eq!(s.live_release().await.unwrap().as_deref(), Some("d1"));
    }

    #[tokio::test]
    async fn a_release_that_holds_exactly_what_is_asked_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(&dir);
        release(&s, "d1", "one").await;
        let again = s
            .stage_release(
                "d1",
                vec![("index.html".into(), "index.d1.html".into())],
                vec![("manifest.json".into(), b"{\"deploy\":\"d1\"}".to_vec())],
            )
            .await
            .unwrap();
        assert!(!again, "kept as it is");
        // Another file asked for: built anew.
        let rebuilt = s
            .stage_release(
                "d1",
                vec![("index.html".into(), "index.d1.html".into())],
                vec![
                    ("manifest.json".into(), b"{\"deploy\":\"d1\"}".to_vec()),
                    (STATICFILES_KEY.into(), b"{}".to_vec()),
                ],
            )
            .await
            .unwrap();
        assert!(rebuilt);
        assert!(
            dir.path()
                .join(".assetpub/releases/d1/staticfiles.json")
                .is_file()
        );
        assert_eq!(s.list_releases().await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn the_manifest_and_staticfiles_json_are_written_into_the_live_release() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(&dir).with_manifest_key("site.json");
        put(&s, "index.d1.html", "one").await;
        s.stage_release(
            "d1",
            vec![("index.html".into(), "index.d1.html".into())],
            vec![("site.json".into(), b"{}".to_vec())],
        )
        .await
        .unwrap();
        s.switch_release("d1", "site.json", None).await.unwrap();
        put(&s, STATICFILES_KEY, "{\"paths\": {}}").await;
        put(&s, "css/a.0123456789ab.css", "a").await;
        let live = dir.path().join(".assetpub/releases/d1");
        assert!(live.join(STATICFILES_KEY).is_file());
        assert!(dir.path().join("css/a.0123456789ab.css").is_file());
        assert!(!live.join("css").exists());
        // The listing of objects leaves the releases out.
        let keys: Vec<String> = s
            .list_objects("")
            .await
            .unwrap()
            .into_iter()
            .map(|l| l.key)
            .collect();
        assert_eq!(keys, ["css/a.0123456789ab.css", "index.d1.html"]);
    }
}
