//! Walks the source directories into the set of logical files to publish,
//! validating every file and reporting all problems at once.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::remote::manifest::{Layout, fingerprinted_name};
use crate::report::Reporter;
use crate::settings::{Config, Fingerprint, TargetUrl};

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
    let names = Names::for_target(config);
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
        let w = Walk::new(config, dir, &root, &own, names);
        walk(w, &mut files, &mut problems, reporter);
    }
    // One directory cannot hold a file and a directory of the same name, so
    // only paths from two source dirs can clash.
    if config.sources.len() > 1 {
        file_and_directory(&files, &mut problems);
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

/// Every logical path that is a file and also the directory of another
/// collected path (`index.html` in one source dir, `index.html/x.css` in
/// another): no target holds both, and the upload would fail halfway.
fn file_and_directory(files: &BTreeMap<String, SourceFile>, problems: &mut Vec<String>) {
    let mut dir = String::new();
    for (logical, file) in files {
        dir.clear();
        dir.push_str(logical);
        dir.push('/');
        let mut under = files
            .range::<str, _>((Bound::Included(dir.as_str()), Bound::Unbounded))
            .take_while(|(other, _)| other.starts_with(dir.as_str()));
        let Some((_, first)) = under.next() else {
            continue;
        };
        let more = match under.count() {
            0 => String::new(),
            1 => " (and 1 more file under it)".to_string(),
            n => format!(" (and {n} more files under it)"),
        };
        problems.push(format!(
            "`{}` is a file, but `{}` needs `{logical}` to be a directory{more}: a target cannot hold both; rename or exclude one",
            file.path.display(),
            first.path.display(),
        ));
    }
}

/// The longest name this target can hold: a file whose published names
/// would not fit is refused here, before anything is written, instead of
/// failing halfway through the upload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Names {
    limit: Limit,
    /// `.gz`/`.br` objects sit beside a compressible file's objects.
    sidecars: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Limit {
    /// A directory: each path segment at most [`NAME_MAX`] bytes.
    Segment,
    /// S3: the whole key at most [`S3_KEY_MAX`] bytes, with `prefix`
    /// bytes of prefix (and its `/`) before it.
    Key { prefix: usize },
}

/// The longest file name (one path segment) Linux file systems hold.
const NAME_MAX: usize = 255;
/// The longest key S3 holds.
const S3_KEY_MAX: usize = 1024;
/// What a fingerprint adds to a name: a dot and 12 hex.
const FINGERPRINT_LEN: usize = 13;
/// What a sidecar adds to a name: `.gz` or `.br`.
const SIDECAR_LEN: usize = 3;

impl Names {
    fn for_target(config: &Config) -> Names {
        let limit = match &config.target.url {
            TargetUrl::Dir(_) => Limit::Segment,
            TargetUrl::S3 { prefix, .. } if prefix.is_empty() => Limit::Key { prefix: 0 },
            TargetUrl::S3 { prefix, .. } => Limit::Key {
                prefix: prefix.len() + 1,
            },
        };
        Names {
            limit,
            sidecars: Layout::for_config(config).sidecars,
        }
    }

    /// Why the target cannot hold every name `logical` (of `size` bytes)
    /// is published under, if it cannot: its key, its fingerprinted
    /// object's and their sidecars'.
    fn problem(&self, config: &Config, logical: &str, size: u64) -> Option<String> {
        let (max, length) = match self.limit {
            Limit::Segment => (NAME_MAX, longest_segment(logical)),
            Limit::Key { prefix } => (S3_KEY_MAX, prefix + logical.len()),
        };
        // Most names are nowhere near the limit: no need to know their rules.
        let most = FINGERPRINT_LEN + if self.sidecars { SIDECAR_LEN } else { 0 };
        if length + most <= max {
            return None;
        }
        let settings = config.settings_for(logical);
        let fingerprinted = || fingerprinted_name(logical, &"0".repeat(64));
        let (mut name, mut how) = match settings.fingerprint {
            Fingerprint::Yes | Fingerprint::No => (fingerprinted(), "with its fingerprint"),
            Fingerprint::Keep => (logical.to_string(), "as it is"),
        };
        if self.sidecars && settings.compress && size > 0 {
            name.push_str(".gz");
            how = match settings.fingerprint {
                Fingerprint::Keep => "with a `.gz`/`.br` suffix",
                _ => "with its fingerprint and `.gz`/`.br` suffix",
            };
        }
        let length = match self.limit {
            Limit::Segment => longest_segment(&name),
            Limit::Key { prefix } => prefix + name.len(),
        };
        if length <= max {
            return None;
        }
        Some(match self.limit {
            Limit::Segment => format!(
                "{how}, its name would be {length} bytes, over the {max}-byte limit on a file name (NAME_MAX) in a directory target; shorten it"
            ),
            Limit::Key { .. } => format!(
                "{how}, its key would be {length} bytes (prefix included), over the {max}-byte limit on an S3 key; shorten its path"
            ),
        })
    }
}

/// The length in bytes of the longest `/`-separated segment of `path`, as
/// far as [`NAME_MAX`] goes: when the whole path is no longer than that,
/// its file name's (the segment a fingerprint or suffix lengthens).
fn longest_segment(path: &str) -> usize {
    let name = path.rsplit('/').next().map_or(0, str::len);
    if path.len() <= NAME_MAX {
        return name;
    }
    path.split('/').map(str::len).max().unwrap_or(0)
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
    names: Names,
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
    /// The innermost symlinked directory followed on the way, if any.
    link: Option<Arc<Link>>,
}

/// A symlinked directory the walk follows.
struct Link {
    /// The link, as walked (its path through the source dir).
    via: PathBuf,
    /// The canonical directory it leads to, inside the source dir.
    real: PathBuf,
    /// The canonical directory that holds the link.
    from: PathBuf,
    /// The symlinked directory the link itself was found in.
    outer: Option<Arc<Link>>,
}

impl<'a> Walk<'a> {
    fn new(
        config: &'a Config,
        dir: &'a Path,
        root: &'a Path,
        own: &'a [PathBuf],
        names: Names,
    ) -> Walk<'a> {
        Walk {
            config,
            dir,
            root,
            own,
            names,
            own_names: own.iter().filter_map(|o| o.file_name()).collect(),
            found: std::sync::Mutex::new(Vec::new()),
        }
    }

    /// The canonical path of `path`, walked under `link`. The walk follows
    /// no symlink but the links it records, so a path below the source
    /// dir's canonical root, or below the innermost link's canonical
    /// target, is canonical too.
    fn real(&self, link: Option<&Link>, path: &Path) -> Option<PathBuf> {
        match link {
            Some(l) => path.strip_prefix(&l.via).ok().map(|rel| l.real.join(rel)),
            None => path
                .strip_prefix(self.dir)
                .ok()
                .map(|rel| self.root.join(rel)),
        }
    }
}

/// Walks one source dir into `files`. Directories are read in parallel and
/// each file is `stat`ed relative to its open directory (no path lookup from
/// the root per file): on a no-op run, walking the tree is most of the work.
fn walk(
    w: Walk,
    files: &mut BTreeMap<String, SourceFile>,
    problems: &mut Vec<String>,
    reporter: &dyn Reporter,
) {
    let top = Below {
        logical: Some(String::new()),
        hidden: false,
        link: None,
    };
    rayon::scope(|s| visit(s, &w, w.dir.to_path_buf(), top));
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
        if w.own_names.contains(&name.as_os_str())
            && w.real(below.link.as_deref(), &child)
                .is_some_and(|real| w.own.contains(&real))
        {
            if file_type.is_dir() {
                out.push(target_inside(w, child));
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
            if wanted(w, hidden, logical.as_deref()) {
                let link = below.link.clone();
                s.spawn(move |s| {
                    let below = Below {
                        logical,
                        hidden,
                        link,
                    };
                    visit(s, w, child, below)
                });
            }
            continue;
        }
        let stat = if file_type.is_symlink() {
            let target = std::fs::metadata(&child);
            if target.as_ref().is_ok_and(|m| m.is_dir()) {
                if !wanted(w, hidden, logical.as_deref()) {
                    continue;
                }
                // A link out of the source dir is refused below, as a link
                // to a file out of it is.
                if let Ok(real) = child.canonicalize()
                    && real.starts_with(w.root)
                {
                    let next = Below {
                        logical,
                        hidden,
                        link: None,
                    };
                    let found = follow(s, w, &path, &below, child, real, next);
                    out.extend(found);
                    continue;
                }
            }
            Stat::Link(target)
        } else {
            Stat::Entry(entry.metadata())
        };
        if let Some(found) = examine(w, child, logical, hidden, stat) {
            out.push(found);
        }
    }
    push(w, out);
}

/// Whether a directory is walked: hidden ones (.git, .cache ...) are not,
/// unless an include pattern names something inside them.
fn wanted(w: &Walk, hidden: bool, logical: Option<&str>) -> bool {
    !hidden
        || logical.is_some_and(|rel| {
            w.config.include_hidden.is_match(rel)
                || w.config.include_hidden.is_match(format!("{rel}/x"))
        })
}

fn target_inside(w: &Walk, path: PathBuf) -> Found {
    let msg = format!(
        "`{}` is the target directory, inside source dir `{}`: not collected",
        path.display(),
        w.dir.display()
    );
    Found::Warning(path, msg)
}

/// A symlink in directory `here` (walked as `below`) to the directory
/// `real` inside the source dir: walked as if the directory were at the
/// link's place, as `next`, unless it leads back into a directory the walk
/// is in, which would never end.
fn follow<'s>(
    s: &rayon::Scope<'s>,
    w: &'s Walk<'s>,
    here: &Path,
    below: &Below,
    link: PathBuf,
    real: PathBuf,
    mut next: Below,
) -> Option<Found> {
    if w.own.contains(&real) {
        return Some(target_inside(w, link));
    }
    let Some(from) = w
        .real(below.link.as_deref(), here)
        .or_else(|| here.canonicalize().ok())
    else {
        let msg = format!("`{}` cannot be resolved", here.display());
        return Some(Found::Problem(link, msg));
    };
    let outer = below.link.clone();
    let walked = std::iter::once(from.as_path())
        .chain(std::iter::successors(outer.as_deref(), |l| l.outer.as_deref()).map(|l| &*l.from));
    for dir in walked {
        if dir.starts_with(&real) {
            let msg = format!(
                "`{}`: symlink loop: it leads back to `{}`, a directory it is inside of; remove the link or point it elsewhere",
                link.display(),
                display_below(w, &real)
            );
            return Some(Found::Problem(link, msg));
        }
    }
    next.link = Some(Arc::new(Link {
        via: link.clone(),
        real,
        from,
        outer,
    }));
    s.spawn(move |s| visit(s, w, link, next));
    None
}

/// `real`, a canonical path inside the source dir, as the user named it:
/// through the source dir as configured.
fn display_below(w: &Walk, real: &Path) -> String {
    match real.strip_prefix(w.root) {
        Ok(rel) if rel.as_os_str().is_empty() => w.dir.display().to_string(),
        Ok(rel) => w.dir.join(rel).display().to_string(),
        Err(_) => real.display().to_string(),
    }
}

fn push(w: &Walk, mut found: Vec<Found>) {
    if !found.is_empty() {
        w.found
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .append(&mut found);
    }
}

/// What is known of an entry that is not a walked directory.
enum Stat {
    /// Its own metadata.
    Entry(std::io::Result<std::fs::Metadata>),
    /// A symlink, and the metadata of what it leads to.
    Link(std::io::Result<std::fs::Metadata>),
}

/// One entry that is not a walked directory: a file, or a symlink (taken
/// only to a file inside the source dir; a symlinked directory inside it
/// is walked instead).
fn examine(
    w: &Walk,
    path: PathBuf,
    logical: Option<String>,
    hidden: bool,
    stat: Stat,
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
    // Rules for the server, read by `settings::redirects`: not files of the site.
    if logical == crate::settings::redirects::REDIRECTS_FILE
        || logical == crate::settings::redirects::HEADERS_FILE
    {
        return None;
    }
    let problem = |msg: String| Some(Found::Problem(path.clone(), msg));
    let meta = match stat {
        Stat::Entry(Ok(m)) => m,
        Stat::Entry(Err(e)) => {
            return problem(format!("`{}` cannot be read: {e}", path.display()));
        }
        Stat::Link(Err(e)) if e.raw_os_error() == Some(40) => {
            return problem(format!("`{}`: symlink loop", path.display()));
        }
        Stat::Link(Err(e)) => {
            return problem(format!("`{}`: broken symlink: {e}", path.display()));
        }
        Stat::Link(Ok(m)) => {
            let inside = path.canonicalize().is_ok_and(|t| t.starts_with(w.root));
            if !inside {
                return problem(format!(
                    "`{}`: symlink points outside its source dir `{}`; copy {} in instead",
                    path.display(),
                    w.dir.display(),
                    if m.is_dir() {
                        "the directory"
                    } else {
                        "the file"
                    }
                ));
            }
            m
        }
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
        let ext = crate::mime::extension(&logical);
        let ok = ext.as_ref().is_some_and(|e| allowed.iter().any(|a| a == e));
        if !ok {
            return problem(format!(
                "`{}`: extension {} is not in `allowed_extensions`",
                path.display(),
                ext.map_or_else(|| "(none)".to_string(), |e| format!("`.{e}`"))
            ));
        }
    }
    if let Some(why) = w.names.problem(config, &logical, meta.len()) {
        return problem(format!("`{}`: {why}", path.display()));
    }
    Some(Found::File(SourceFile {
        logical,
        size: meta.len(),
        mtime_ns: crate::util::mtime_ns(&meta),
        inode: crate::util::inode(&meta),
        path,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::CollectingReporter;
    use crate::settings::Overrides;

    /// The settings `toml` gives a project in `dir`.
    fn config(dir: &Path, toml: &str) -> Config {
        Config::parse(toml, &dir.join("publish.toml"), dir, &Overrides::default()).expect("config")
    }

    fn write(dir: &Path, rel: &str, bytes: &[u8]) {
        let p = dir.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, bytes).unwrap();
    }

    fn problems(config: &Config) -> Vec<String> {
        match collect(config, &[], &CollectingReporter::default()) {
            Err(Error::Validation(p)) => p,
            Ok(files) => panic!("collected {} files", files.len()),
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn an_s3_key_may_be_1024_bytes_prefix_and_sidecars_included() {
        let tmp = tempfile::tempdir().unwrap();
        // Four directories of 200 bytes and a 48-byte file name: 852 bytes,
        // and no segment that NAME_MAX would refuse once fingerprinted.
        let dirs: Vec<String> = (0..4).map(|i| format!("{i}").repeat(200)).collect();
        let logical = format!("{}/{}.css", dirs.join("/"), "n".repeat(44));
        assert_eq!(logical.len(), 852);
        write(
            tmp.path(),
            &format!("site/{logical}"),
            b"a { color: red }\n",
        );
        // 852 + 13 (fingerprint) = 865; 160 bytes of prefix and `/` make
        // 1025 without sidecars: one over.
        let prefix = "p".repeat(159);
        let toml =
            format!("[source]\ndirs = [\"site\"]\n[target]\nurl = \"s3://bucket/{prefix}\"\n");
        let p = problems(&config(tmp.path(), &toml));
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(
            p[0].contains(&logical) && p[0].contains("1025 bytes") && p[0].contains("1024-byte"),
            "{p:?}"
        );
        // One byte less of prefix: it fits, with identity objects.
        let toml = toml.replace(&prefix, &"p".repeat(158));
        let files = collect(
            &config(tmp.path(), &toml),
            &[],
            &CollectingReporter::default(),
        )
        .unwrap();
        assert_eq!(files.len(), 1);
        // With sidecars, the `.br` of the fingerprinted object is 3 more.
        let p = problems(&config(tmp.path(), &format!("{toml}sidecars = true\n")));
        assert!(p[0].contains("1027 bytes") && p[0].contains(".br"), "{p:?}");
        // The same path on a directory target is fine: no segment is long.
        let toml = "[source]\ndirs = [\"site\"]\n";
        assert_eq!(
            collect(
                &config(tmp.path(), toml),
                &[],
                &CollectingReporter::default()
            )
            .unwrap()
            .len(),
            1
        );
    }

    #[test]
    fn names_are_measured_as_the_rules_publish_them() {
        let tmp = tempfile::tempdir().unwrap();
        // 250 bytes: fingerprinted it would be 263, its `.br` 266.
        let kept = format!("assets/{}.js", "k".repeat(247));
        write(tmp.path(), &format!("site/{kept}"), b"x");
        let empty = format!("{}.css", "e".repeat(238));
        write(tmp.path(), &format!("site/{empty}"), b"");
        let toml = "[source]\ndirs = [\"site\"]\n";
        let p = problems(&config(tmp.path(), toml));
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(
            p[0].contains(&kept) && p[0].contains("266 bytes") && p[0].contains("NAME_MAX"),
            "{p:?}"
        );
        // Kept as it is (bundler output), its name fits; an empty file gets
        // no sidecars.
        let toml = format!("{toml}[[rules]]\nmatch = \"assets/**\"\nfingerprint = \"keep\"\n");
        let files = collect(
            &config(tmp.path(), &toml),
            &[],
            &CollectingReporter::default(),
        )
        .unwrap();
        assert_eq!(files.len(), 2);
        // Its `.br` would be 253 + 3: still fits. One byte more does not.
        write(
            tmp.path(),
            &format!("site/assets/{}.js", "k".repeat(250)),
            b"x",
        );
        let p = problems(&config(tmp.path(), &toml));
        assert!(
            p[0].contains("256 bytes") && p[0].contains("suffix"),
            "{p:?}"
        );
    }

    #[test]
    fn a_file_and_a_directory_of_the_same_name_are_both_named() {
        let tmp = tempfile::tempdir().unwrap();
        write(tmp.path(), "a/index.html", b"x");
        write(tmp.path(), "a/index.html-2", b"x");
        write(tmp.path(), "b/index.html/x.css", b"x");
        write(tmp.path(), "b/index.html/y/z.css", b"x");
        write(tmp.path(), "b/index.htm", b"x");
        let toml = "[source]\ndirs = [\"a\", \"b\"]\n";
        let p = problems(&config(tmp.path(), toml));
        assert_eq!(p.len(), 1, "{p:?}");
        let a = tmp.path().join("a/index.html");
        let b = tmp.path().join("b/index.html/x.css");
        assert!(
            p[0].contains(&format!("`{}` is a file", a.display()))
                && p[0].contains(&format!("`{}` needs", b.display()))
                && p[0].contains("1 more"),
            "{p:?}"
        );
    }
}
