//! Walks the source directories into the set of logical files to publish,
//! validating every file and reporting all problems at once.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::report::Reporter;
use crate::settings::{Config, TargetUrl};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceFile {
    /// Relative path with `/` separators: the key in the manifest.
    pub logical: String,
    /// Where to read it (inside its source dir, possibly through a symlink).
    pub path: PathBuf,
    pub size: u64,
    pub mtime_ns: i64,
    pub inode: u64,
}

/// The collected files sorted by logical path. `state_side_files`: the
/// suffixes of the files the state DB keeps beside its own (its journals),
/// never collected any more than the state DB itself.
pub fn collect(
    config: &Config,
    state_side_files: &[&str],
    reporter: &dyn Reporter,
) -> Result<Vec<SourceFile>> {
    let mut problems = Vec::new();
    let mut files: BTreeMap<String, SourceFile> = BTreeMap::new();
    let own = own_paths(config, state_side_files);
    for dir in &config.sources {
        match std::fs::metadata(dir) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                problems.push(format!("source `{}` is not a directory", dir.display()));
                continue;
            }
            Err(e) => {
                problems.push(format!(
                    "source dir `{}` cannot be read: {e}",
                    dir.display()
                ));
                continue;
            }
        }
        let root = match dir.canonicalize() {
            Ok(r) => r,
            Err(e) => {
                problems.push(format!(
                    "source dir `{}` cannot be resolved: {e}",
                    dir.display()
                ));
                continue;
            }
        };
        walk(
            config,
            dir,
            &root,
            &own,
            &mut files,
            &mut problems,
            reporter,
        );
    }
    if problems.is_empty() && files.is_empty() {
        let dirs: Vec<_> = config
            .sources
            .iter()
            .map(|d| format!("`{}`", d.display()))
            .collect();
        problems.push(format!(
            "no files collected from {}: is the build output there, and do `include`/`exclude` match it?",
            dirs.join(", ")
        ));
    }
    if !problems.is_empty() {
        return Err(Error::Validation(problems));
    }
    Ok(files.into_values().collect())
}

/// What assetpub itself writes, wherever it sits: the directory target,
/// Django's local `staticfiles.json`, and the state DB with its journal
/// files. Never collected, even from inside a source dir (`dirs = ["."]`),
/// or each run would publish the last one's output. Canonical paths; the target only once it exists.
fn own_paths(config: &Config, state_side_files: &[&str]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let TargetUrl::Dir(d) = &config.target.url
        && let Ok(c) = d.canonicalize()
    {
        out.push(c);
    }
    // Django's local staticfiles.json, when it is written into the build.
    if let Some(local) = &config.django_local {
        out.extend(canonical_siblings(local, &[""]));
    }
    let mut state_files = vec![""];
    state_files.extend(state_side_files);
    out.extend(canonical_siblings(&config.state_path, &state_files));
    out
}

/// `path` with each suffix appended to its file name, in its canonical
/// parent directory (the files themselves need not exist yet).
fn canonical_siblings(path: &Path, suffixes: &[&str]) -> Vec<PathBuf> {
    let Some(name) = path.file_name() else {
        return Vec::new();
    };
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let Ok(parent) = parent.canonicalize() else {
        return Vec::new();
    };
    suffixes
        .iter()
        .map(|suffix| {
            let mut n = name.to_os_string();
            n.push(suffix);
            parent.join(n)
        })
        .collect()
}

/// What the walk found at one path, applied in path order afterwards so
/// that problems and warnings come out the same on every run.
enum Found {
    File(SourceFile),
    Problem(PathBuf, String),
    Warning(PathBuf, String),
}

impl Found {
    fn path(&self) -> &Path {
        match self {
            Found::File(f) => &f.path,
            Found::Problem(p, _) | Found::Warning(p, _) => p,
        }
    }
}

/// What every directory visit needs, shared by the walker's threads.
struct Walk<'a> {
    config: &'a Config,
    dir: &'a Path,
    root: &'a Path,
    own: &'a [PathBuf],
    /// The file names of `own`: only an entry with one of them can be one.
    own_names: Vec<&'a std::ffi::OsStr>,
    found: std::sync::Mutex<Vec<Found>>,
}

/// Where a visited directory sits below its source dir: its logical path
/// (`None` if some name on the way is not UTF-8), and whether a name on the
/// way is hidden.
#[derive(Clone)]
struct Below {
    logical: Option<String>,
    hidden: bool,
}

/// Walks one source dir into `files`. Directories are read in parallel and
/// each file is `stat`ed relative to its open directory (no path lookup from
/// the root per file): on a no-op run, walking the tree is most of the work.
fn walk(
    config: &Config,
    dir: &Path,
    root: &Path,
    own: &[PathBuf],
    files: &mut BTreeMap<String, SourceFile>,
    problems: &mut Vec<String>,
    reporter: &dyn Reporter,
) {
    let w = Walk {
        config,
        dir,
        root,
        own,
        own_names: own.iter().filter_map(|o| o.file_name()).collect(),
        found: std::sync::Mutex::new(Vec::new()),
    };
    let top = Below {
        logical: Some(String::new()),
        hidden: false,
    };
    rayon::scope(|s| visit(s, &w, dir.to_path_buf(), top));
    let mut found = w.found.into_inner().unwrap_or_else(|p| p.into_inner());
    found.sort_unstable_by(|a, b| a.path().as_os_str().cmp(b.path().as_os_str()));
    for f in found {
        match f {
            Found::Problem(_, p) => problems.push(p),
            Found::Warning(_, m) => reporter.warn(&m),
            Found::File(file) => match files.entry(file.logical.clone()) {
                std::collections::btree_map::Entry::Occupied(earlier) => {
                    reporter.warn(&format!(
                        "`{}` is shadowed by `{}` (an earlier source dir wins)",
                        file.path.display(),
                        earlier.get().path.display()
                    ));
                }
                std::collections::btree_map::Entry::Vacant(slot) => {
                    slot.insert(file);
                }
            },
        }
    }
}

fn visit<'s>(s: &rayon::Scope<'s>, w: &'s Walk<'s>, path: PathBuf, below: Below) {
    let mut out = Vec::new();
    let entries = match std::fs::read_dir(&path) {
        Ok(rd) => rd,
        Err(e) => {
            let msg = format!("`{}` cannot be read: {e}", path.display());
            push(w, vec![Found::Problem(path, msg)]);
            return;
        }
    };
    for entry in entries {
        let entry = match entry {
            Ok(e) => e,
            Err(e) => {
                let msg = format!("`{}` cannot be read: {e}", path.display());
                out.push(Found::Problem(path.clone(), msg));
                continue;
            }
        };
        let name = entry.file_name();
        let child = path.join(&name);
        let file_type = match entry.file_type() {
            Ok(t) => t,
            Err(e) => {
                let msg = format!("`{}` cannot be read: {e}", child.display());
                out.push(Found::Problem(child, msg));
                continue;
            }
        };
        // Nothing is followed through symlinks, so the path below the
        // canonical root is canonical too.
        if w.own_names.contains(&name.as_os_str())
            && let Ok(rel) = child.strip_prefix(w.dir)
            && w.own.contains(&w.root.join(rel))
        {
            if file_type.is_dir() {
                let msg = format!(
                    "`{}` is the target directory, inside source dir `{}`: not collected",
                    child.display(),
                    w.dir.display()
                );
                out.push(Found::Warning(child, msg));
            }
            continue;
        }
        let name = name.to_str();
        let logical = match (&below.logical, name) {
            (Some(dir), Some(name)) if dir.is_empty() => Some(name.to_string()),
            (Some(dir), Some(name)) => Some(format!("{dir}/{name}")),
            _ => None,
        };
        let hidden = below.hidden || name.is_some_and(|n| n.starts_with('.'));
        if file_type.is_dir() {
            // Hidden directories (.git, .cache ...) are not walked unless an
            // include pattern names something inside them.
            let wanted = !hidden
                || logical.as_deref().is_some_and(|rel| {
                    w.config.include_hidden.is_match(rel)
                        || w.config.include_hidden.is_match(format!("{rel}/x"))
                });
            if wanted {
                s.spawn(move |s| visit(s, w, child, Below { logical, hidden }));
            }
            continue;
        }
        let meta = if file_type.is_symlink() {
            None
        } else {
            Some(entry.metadata())
        };
        if let Some(found) = examine(w, child, logical, hidden, meta) {
            out.push(found);
        }
    }
    push(w, out);
}

fn push(w: &Walk, mut found: Vec<Found>) {
    if !found.is_empty() {
        w.found
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .append(&mut found);
    }
}

/// One non-directory entry: `meta` is its own metadata, or `None` for a
/// symlink (followed here, and only to a file inside the source dir).
fn examine(
    w: &Walk,
    path: PathBuf,
    logical: Option<String>,
    hidden: bool,
    meta: Option<std::io::Result<std::fs::Metadata>>,
) -> Option<Found> {
    let config = w.config;
    let Some(logical) = logical else {
        let msg = format!(
            "`{}`: file name is not valid UTF-8; rename it (URLs need UTF-8 names)",
            path.display()
        );
        return Some(Found::Problem(path, msg));
    };
    if logical.contains('\\') {
        let msg = format!(
            "`{}`: file name contains a backslash, which is not portable in URLs",
            path.display()
        );
        return Some(Found::Problem(path, msg));
    }
    if hidden && !config.include_hidden.is_match(&logical) {
        return None;
    }
    if !config.include_all && !config.include.is_match(&logical) {
        return None;
    }
    if !config.exclude.is_empty() && config.exclude.is_match(&logical) {
        return None;
    }
    let problem = |msg: String| Some(Found::Problem(path.clone(), msg));
    let meta = match meta {
        Some(Ok(m)) => m,
        Some(Err(e)) => return problem(format!("`{}` cannot be read: {e}", path.display())),
        None => match std::fs::metadata(&path) {
            Err(e) if e.raw_os_error() == Some(40) => {
                return problem(format!("`{}`: symlink loop", path.display()));
            }
            Err(e) => {
                return problem(format!("`{}`: broken symlink: {e}", path.display()));
            }
            Ok(m) => {
                let inside = path.canonicalize().is_ok_and(|t| t.starts_with(w.root));
                if !inside {
                    return problem(format!(
                        "`{}`: symlink points outside its source dir `{}`; copy the file in instead",
                        path.display(),
                        w.dir.display()
                    ));
                }
                if m.is_dir() {
                    let msg = format!("`{}`: symlinked directory not followed", path.display());
                    return Some(Found::Warning(path, msg));
                }
                m
            }
        },
    };
    if !meta.is_file() {
        let msg = format!(
            "`{}`: not a regular file (a FIFO, socket or device); skipped",
            path.display()
        );
        return Some(Found::Warning(path, msg));
    }
    if let Some(max) = config.max_file_size
        && meta.len() > max
    {
        return problem(format!(
            "`{}`: {} is over `max_file_size` ({})",
            path.display(),
            crate::util::human_bytes(meta.len()),
            crate::util::human_bytes(max)
        ));
    }
    if let Some(allowed) = &config.allowed_extensions {
        let ext = logical
            .rsplit_once('.')
            .map(|(_, e)| e.to_ascii_lowercase());
        let ok = ext.as_ref().is_some_and(|e| {
            allowed.iter().any(|a| a == e) && !logical.ends_with(&format!("/.{e}"))
        });
        if !ok {
            return problem(format!(
                "`{}`: extension {} is not in `allowed_extensions`",
                path.display(),
                ext.map_or_else(|| "(none)".to_string(), |e| format!("`.{e}`"))
            ));
        }
    }
    Some(Found::File(SourceFile {
        logical,
        size: meta.len(),
        mtime_ns: crate::util::mtime_ns(&meta),
        inode: crate::util::inode(&meta),
        path,
    }))
}
