//! The module graph of `src/`: no import cycle between files, and no layer
//! importing one above it. Reads every `crate::...` path in the sources, so a
//! cycle or an upward import fails here before review.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The top-level modules, lowest first. A module may import only from
/// modules of a lower layer, or from its own.
const LAYERS: &[&[&str]] = &[
    &[
        "error",
        "util",
        "concurrency",
        "mime",
        "report",
        "keys",
        "cli",
    ],
    &["store"],
    &["state"],
    &["rewrite"],
    &["settings"],
    &["remote"],
    &["pipeline"],
    &["integrations"],
    &["commands"],
];

fn src_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            src_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// `src/pipeline/hash.rs` -> `pipeline::hash`; `src/store/s3/mod.rs` ->
/// `store::s3`; `src/lib.rs` -> ``.
fn module_of(rel: &Path) -> String {
    let mut parts: Vec<String> = rel
        .iter()
        .map(|s| s.to_string_lossy().into_owned())
        .collect();
    let last = parts.pop().unwrap();
    let stem = last.trim_end_matches(".rs");
    if stem != "mod" && stem != "lib" {
        parts.push(stem.to_string());
    }
    parts.join("::")
}

/// Every module a file names through `crate::a::b::...`, resolved to the
/// longest known module path. Comments and the file's own tests count too:
/// a test module is part of the file.
fn imports(text: &str, modules: &BTreeSet<String>) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = text;
    while let Some(i) = rest.find("crate::") {
        let after = &rest[i + "crate::".len()..];
        let path: String = after
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == ':')
            .collect();
        let segs: Vec<&str> = path.split("::").filter(|s| !s.is_empty()).collect();
        for n in (1..=segs.len()).rev() {
            let m = segs[..n].join("::");
            if modules.contains(&m) {
                out.insert(m);
                break;
            }
        }
        rest = after;
    }
    out
}

fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    src_files(&root, &mut files);
    let files: Vec<(String, String)> = files
        .iter()
        .filter(|p| !p.starts_with(root.join("bin")))
        .map(|p| {
            (
                module_of(p.strip_prefix(&root).unwrap()),
                std::fs::read_to_string(p).unwrap(),
            )
        })
        .collect();
    let modules: BTreeSet<String> = files.iter().map(|(m, _)| m.clone()).collect();
    files
        .iter()
        .map(|(m, text)| {
            let mut deps = imports(text, &modules);
            deps.remove(m);
            // A parent names its children to declare them; that is not an
            // import.
            deps.retain(|d| !d.starts_with(&format!("{m}::")) || m.is_empty());
            (m.clone(), deps)
        })
        .collect()
}

fn layer_of(module: &str) -> usize {
    let top = module.split("::").next().unwrap();
    LAYERS
        .iter()
        .position(|l| l.contains(&top))
        .unwrap_or_else(|| panic!("`{top}` is in no layer of tests/layout.rs: add it"))
}

/// A cycle in the graph, as the list of its modules, if there is one.
fn find_cycle(g: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        n: &str,
        g: &BTreeMap<String, BTreeSet<String>>,
        state: &mut BTreeMap<String, u8>,
        stack: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        state.insert(n.to_string(), 1);
        stack.push(n.to_string());
        for d in g.get(n).into_iter().flatten() {
            match state.get(d.as_str()).copied().unwrap_or(0) {
                1 => {
                    let start = stack.iter().position(|s| s == d).unwrap();
                    let mut cycle = stack[start..].to_vec();
                    cycle.push(d.clone());
                    return Some(cycle);
                }
                0 => {
                    if let Some(c) = visit(d, g, state, stack) {
                        return Some(c);
                    }
                }
                _ => {}
            }
        }
        stack.pop();
        state.insert(n.to_string(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for n in g.keys() {
        if state.get(n.as_str()).copied().unwrap_or(0) == 0 {
            let mut stack = Vec::new();
            if let Some(c) = visit(n, g, &mut state, &mut stack) {
                return Some(c);
            }
        }
    }
    None
}

#[test]
fn no_module_imports_a_higher_layer() {
    let mut wrong = Vec::new();
    for (m, deps) in graph() {
        if m.is_empty() {
            continue;
        }
        for d in deps {
            if layer_of(&d) > layer_of(&m) {
                wrong.push(format!("{m} -> {d}"));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "imports of a higher layer (see LAYERS in tests/layout.rs):\n  {}",
        wrong.join("\n  ")
    );
}

#[test]
fn the_module_graph_has_no_cycle() {
    let g = graph();
    assert!(g.contains_key("pipeline::hash"), "read no sources: {g:?}");
    if let Some(c) = find_cycle(&g) {
        panic!("import cycle: {}", c.join(" -> "));
    }
}

#[test]
fn the_checks_see_a_cycle_and_an_upward_import() {
    // The checks themselves, on a made-up graph: a check that cannot fail
    // proves nothing.
    let modules: BTreeSet<String> = ["store", "commands::publish", "pipeline::hash"]
        .map(String::from)
        .into();
    let found = imports(
        "use crate::commands::publish::Report;\nlet x = crate::store::Store::Fs;",
        &modules,
    );
    assert_eq!(
        found,
        ["commands::publish", "store"].map(String::from).into()
    );
    assert!(layer_of("store") < layer_of("commands::publish"));
    let g: BTreeMap<String, BTreeSet<String>> = [
        ("a".to_string(), ["b".to_string()].into()),
        ("b".to_string(), ["a".to_string()].into()),
    ]
    .into();
    assert!(find_cycle(&g).is_some());
}
