//! Reference rewriting across the collected set: which files reference
//! which, the order that lets every file be named after the files it
//! references, and the rewritten bytes and keys.
//!
//! A source map's `file` field points back at the script that references the
//! map, a cycle no content hash can close. That back-reference is "weak": the
//! map is named from its own content plus everything that decides the
//! script's name except the map itself, so a map key still always holds the
//! same bytes.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::pipeline::cache::Cache;
use crate::pipeline::hash::HashedFile;
use crate::pipeline::scan::{Ref, Scanner, mode};
use crate::report::Reporter;
use crate::rewrite::{self, Syntax};
use crate::settings::{Config, Fingerprint};

/// Finds every file's references to other collected files. Files scanned
/// as they were hashed, or whose content was scanned before (`cache`), are
/// not read again.
pub fn references(
    config: &Config,
    files: &[HashedFile],
    cache: &mut dyn Cache,
    reporter: &dyn Reporter,
) -> Result<BTreeMap<String, Vec<Ref>>> {
    let mut out = BTreeMap::new();
    if !config.rewrite {
        return Ok(out);
    }
    let scanner = Scanner::new(config);
    let collected: BTreeSet<&str> = files.iter().map(|f| f.source.logical.as_str()).collect();
    let mut cached = Vec::new();
    let mut todo = Vec::new();
    let mut fresh = Vec::new();
    for f in files {
        let Some(mode) = mode(
            Syntax::for_path(&f.source.logical),
            config.rewrite_js_imports,
            config.rewrite_html,
        ) else {
            continue;
        };
        if let Some(refs) = &f.refs {
            fresh.push((f, mode, refs.clone()));
            continue;
        }
        match cache.refs(&f.blake3, mode)? {
            Some(refs) => cached.push((f, refs)),
            None => todo.push((f, mode)),
        }
    }
    let scanned: Vec<(&HashedFile, &str, std::io::Result<Vec<Ref>>)> = todo
        .par_iter()
        .map(|&(f, mode)| {
            let refs =
                std::fs::read(&f.source.path).map(|bytes| scanner.scan(&f.source.logical, bytes).0);
            (f, mode, refs)
        })
        .collect();
    for (f, mode, r) in scanned {
        let refs = r.map_err(|e| Error::io("cannot read", &f.source.path, e))?;
        fresh.push((f, mode, refs));
    }
    let found: Vec<(&str, &str, &[Ref])> = fresh
        .iter()
        .map(|(f, mode, refs)| (f.blake3.as_str(), *mode, refs.as_slice()))
        .collect();
    cache.record_refs(&found)?;
    cached.extend(fresh.into_iter().map(|(f, _, refs)| (f, refs)));
    let mut problems = Vec::new();
    for (f, refs) in cached {
        let referrer = &f.source.logical;
        let mut kept = Vec::new();
        let mut warned = BTreeSet::new();
        // The cache is keyed by content, and the same bytes can sit in
        // another directory (a copy, a moved file): the URLs as written are
        // the content's, what they point to is resolved here, every time.
        let mut resolved = Vec::with_capacity(refs.len());
        for r in refs {
            if r.is_not_text() {
                reporter.warn(&format!(
                    "`{referrer}` is neither UTF-8 text nor UTF-16 with a byte order mark or `@charset \"utf-16\"`; its references are left as written"
                ));
                continue;
            }
            match rewrite::target_of(referrer, &r.url) {
                Some(target) => resolved.push(Ref { target, ..r }),
                // Outside the source dir: never collected, so never
                // rewritten, and said so like any other such reference.
                None if rewrite::leaves_root(referrer, &r.url)
                    && warned.insert(format!("\0{}", r.url)) =>
                {
                    let msg = format!(
                        "`{referrer}` references `{}`, which is outside the source dir and not collected; left as written",
                        r.url
                    );
                    if config.rewrite_strict {
                        problems.push(msg);
                    } else {
                        reporter.warn(&msg);
                    }
                }
                None => {}
            }
        }
        for r in resolved {
            if r.target == *referrer {
                continue;
            }
            if collected.contains(r.target.as_str()) {
                // A file that keeps its name needs no rewriting and decides
                // nothing about the referrer's key; as a dependency it would
                // only make cycles of pages that link to each other.
                if config.settings_for(&r.target).fingerprint == Fingerprint::Yes {
                    kept.push(r);
                }
            } else if !r.url.starts_with('/') && warned.insert(r.target.clone()) {
                let msg = format!(
                    "`{referrer}` references `{}`, which is not collected; left as written",
                    r.url
                );
                if config.rewrite_strict {
                    problems.push(msg);
                } else {
                    reporter.warn(&msg);
                }
            }
        }
        if !kept.is_empty() {
            out.insert(referrer.clone(), kept);
        }
    }
    if !problems.is_empty() {
        problems.push("hint: these are errors under `[rewrite] strict = true`; collect the files or fix the references (without strict they are warnings)".into());
        return Err(Error::Validation(problems));
    }
    Ok(out)
}

/// The order to name files in: every file after the files it references.
/// Weak references add the script's other dependencies before the map.
/// A cycle of strong references is an error naming it.
pub fn order(all: &[String], refs: &BTreeMap<String, Vec<Ref>>) -> Result<Vec<String>> {
    let deps = dependencies(refs);
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Active,
        Done,
    }
    let mut marks: HashMap<&str, Mark> = HashMap::new();
    let mut out = Vec::with_capacity(all.len());
    for start in all {
        if marks.contains_key(start.as_str()) {
            continue;
        }
        // Iterative depth-first search: deep reference chains must not
        // overflow the stack.
        let mut stack: Vec<(&str, Vec<&str>)> = vec![(
            start,
            deps.get(start.as_str())
                .map(|d| d.iter().copied().collect())
                .unwrap_or_default(),
        )];
        marks.insert(start, Mark::Active);
        while let Some((node, pending)) = stack.last_mut() {
            match pending.pop() {
                Some(next) => match marks.get(next) {
                    Some(Mark::Done) => {}
                    Some(Mark::Active) => {
                        let at = stack.iter().position(|(n, _)| *n == next).unwrap_or(0);
                        let mut cycle: Vec<&str> = stack[at..].iter().map(|(n, _)| *n).collect();
                        cycle.push(next);
                        return Err(Error::Validation(vec![format!(
                            "reference cycle: {}; files that reference each other cannot both be fingerprinted",
                            cycle
                                .iter()
                                .map(|c| format!("`{c}`"))
                                .collect::<Vec<_>>()
                                .join(" -> ")
                        )]));
                    }
                    None => {
                        marks.insert(next, Mark::Active);
                        let d = deps
                            .get(next)
                            .map(|d| d.iter().copied().collect())
                            .unwrap_or_default();
                        stack.push((next, d));
                    }
                },
                None => {
                    let done = *node;
                    marks.insert(done, Mark::Done);
                    out.push(done.to_string());
                    stack.pop();
                }
            }
        }
    }
    Ok(out)
}

/// The files each file waits for before it can be named (see [`order`]).
fn dependencies(refs: &BTreeMap<String, Vec<Ref>>) -> HashMap<&str, BTreeSet<&str>> {
    let mut deps: HashMap<&str, BTreeSet<&str>> = HashMap::new();
    for (from, rs) in refs {
        for r in rs {
            if r.weak {
                // The map waits for what the script waits for, except itself.
                for sr in refs.get(&r.target).into_iter().flatten() {
                    if !sr.weak && sr.target != *from {
                        deps.entry(from).or_default().insert(&sr.target);
                    }
                }
            } else {
                deps.entry(from).or_default().insert(&r.target);
            }
        }
    }
    deps
}

/// `order` (as [`order`] made it) in levels of files that can be named at
/// the same time: a file's level is one above the highest of the files it
/// waits for, so each level needs only the names of the levels before it.
/// Each level holds positions in `order`, in ascending order.
pub fn levels(order: &[String], refs: &BTreeMap<String, Vec<Ref>>) -> Vec<Vec<usize>> {
    let deps = dependencies(refs);
    let mut level_of: HashMap<&str, usize> = HashMap::with_capacity(order.len());
    let mut levels: Vec<Vec<usize>> = Vec::new();
    for (at, name) in order.iter().enumerate() {
        // Every file a file waits for comes before it in `order`.
        let level = deps
            .get(name.as_str())
            .into_iter()
            .flatten()
            .filter_map(|d| level_of.get(d))
            .map(|l| l + 1)
            .max()
            .unwrap_or(0);
        level_of.insert(name, level);
        if levels.len() <= level {
            levels.resize_with(level + 1, Vec::new);
        }
        levels[level].push(at);
    }
    levels
}

/// Rewrites `text`'s references to `targets` (logical path -> new file
/// name). References to other files stay as written.
pub fn apply(
    logical: &str,
    text: &str,
    js_imports: bool,
    targets: &BTreeMap<String, String>,
) -> String {
    let syntax = Syntax::for_path(logical);
    let refs = rewrite::find_references(syntax, logical, text, js_imports);
    rewrite::rewrite(text, &refs, |t| targets.get(t).cloned())
}

/// [`apply`] on a file's bytes, read and written back in its encoding
/// (UTF-8, or UTF-16 for a stylesheet; see [`rewrite::decode`]). Bytes that
/// are no such text are returned as they are.
pub fn apply_bytes(
    logical: &str,
    bytes: Vec<u8>,
    js_imports: bool,
    targets: &BTreeMap<String, String>,
) -> Vec<u8> {
    match rewrite::decode(Syntax::for_path(logical), bytes) {
        Ok((text, encoding)) => {
            rewrite::encode(apply(logical, &text, js_imports, targets), encoding)
        }
        Err(bytes) => bytes,
    }
}

/// The file name of a key (what a reference's last segment becomes).
pub fn file_name(key: &str) -> String {
    key.rsplit('/').next().unwrap_or(key).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(target: &str, weak: bool) -> Ref {
        Ref {
            target: target.into(),
            url: target.into(),
            weak,
        }
    }

    #[test]
    fn files_come_after_what_they_reference() {
        let all: Vec<String> = [
            "a.css",
            "b.css",
            "img.png",
            "app.js",
            "app.js.map",
            "lib.js",
        ]
        .map(String::from)
        .to_vec();
        let refs: BTreeMap<String, Vec<Ref>> = [
            ("a.css".to_string(), vec![r("b.css", false)]),
            ("b.css".to_string(), vec![r("img.png", false)]),
            (
                "app.js".to_string(),
                vec![r("app.js.map", false), r("lib.js", false)],
            ),
            ("app.js.map".to_string(), vec![r("app.js", true)]),
        ]
        .into();
        let order = order(&all, &refs).unwrap();
        let pos = |n: &str| order.iter().position(|o| o == n).unwrap();
        assert!(pos("img.png") < pos("b.css") && pos("b.css") < pos("a.css"));
        assert!(pos("app.js.map") < pos("app.js"));
        assert!(
            pos("lib.js") < pos("app.js.map"),
            "the map waits for the script's other dependencies"
        );
        assert_eq!(order.len(), all.len());
    }

    #[test]
    fn a_level_waits_only_for_the_levels_before_it() {
        let all: Vec<String> = [
            "a.css",
            "b.css",
            "img.png",
            "app.js",
            "app.js.map",
            "lib.js",
        ]
        .map(String::from)
        .to_vec();
        let refs: BTreeMap<String, Vec<Ref>> = [
            (
                "a.css".to_string(),
                vec![r("b.css", false), r("img.png", false)],
            ),
            ("b.css".to_string(), vec![r("img.png", false)]),
            (
                "app.js".to_string(),
                vec![r("app.js.map", false), r("lib.js", false)],
            ),
            ("app.js.map".to_string(), vec![r("app.js", true)]),
        ]
        .into();
        let order = order(&all, &refs).unwrap();
        let levels = levels(&order, &refs);
        let named: Vec<Vec<&str>> = levels
            .iter()
            .map(|l| l.iter().map(|&i| order[i].as_str()).collect())
            .collect();
        let level = |n: &str| named.iter().position(|l| l.contains(&n)).unwrap();
        assert_eq!(level("img.png"), 0);
        assert_eq!(level("lib.js"), 0);
        assert_eq!(level("b.css"), 1);
        assert_eq!(level("a.css"), 2, "one above the highest it waits for");
        assert_eq!(level("app.js.map"), 1, "the map waits for lib.js");
        assert_eq!(level("app.js"), 2);
        assert_eq!(levels.iter().map(Vec::len).sum::<usize>(), order.len());
        for l in &levels {
            assert!(l.windows(2).all(|w| w[0] < w[1]), "in naming order: {l:?}");
        }
    }

    #[test]
    fn a_cycle_is_an_error_naming_it() {
        let all: Vec<String> = ["a.css", "b.css", "c.css"].map(String::from).to_vec();
        let refs: BTreeMap<String, Vec<Ref>> = [
            ("a.css".to_string(), vec![r("b.css", false)]),
            ("b.css".to_string(), vec![r("c.css", false)]),
            ("c.css".to_string(), vec![r("a.css", false)]),
        ]
        .into();
        let e = order(&all, &refs).unwrap_err().to_string();
        assert!(
            e.contains("`a.css` -> `b.css` -> `c.css` -> `a.css`"),
            "{e}"
        );
    }
}
