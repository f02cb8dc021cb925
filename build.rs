//! Embeds every `migrations/NNNN_name.sql` in the binary, in order, so a new
//! migration can never be left out of a build; and a digest of the sources,
//! so what one build cached about its own output is not reused by another.

use std::fmt::Write;

fn main() {
    println!("cargo:rerun-if-changed=migrations");
    println!("cargo:rerun-if-changed=src");
    println!(
        "cargo:rustc-env=ASSETPUB_SOURCE_DIGEST={:016x}",
        source_digest()
    );
    let mut files: Vec<_> = std::fs::read_dir("migrations")
        .expect("migrations/ directory")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().into_string().expect("UTF-8 migration name"))
        .filter(|n| n.ends_with(".sql"))
        .collect();
    files.sort();
    let mut out = String::from("pub const MIGRATIONS: &[(i64, &str, &str)] = &[\n");
    for (i, name) in files.iter().enumerate() {
        let (num, rest) = name
            .split_once('_')
            .expect("migrations are named NNNN_name.sql");
        let version: i64 = num.parse().expect("migration number");
        assert_eq!(
            version,
            i as i64 + 1,
            "migrations must be numbered 1, 2, 3 ... without gaps: {name}"
        );
        let dir = std::env::var("CARGO_MANIFEST_DIR").expect("manifest dir");
        writeln!(
            out,
            "    ({version}, {:?}, include_str!({:?})),",
            rest.trim_end_matches(".sql"),
            format!("{dir}/migrations/{name}")
        )
        .expect("write to string");
    }
    out.push_str("];\n");
    let dest =
        std::path::Path::new(&std::env::var("OUT_DIR").expect("OUT_DIR")).join("migrations.rs");
    std::fs::write(dest, out).expect("write migrations.rs");
}

/// A digest of every file under `src/`, by path and content.
fn source_digest() -> u64 {
    use std::hash::{Hash, Hasher};
    fn walk(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        for e in std::fs::read_dir(dir).expect("src/ directory").flatten() {
            let path = e.path();
            if path.is_dir() {
                walk(&path, out);
            } else {
                out.push(path);
            }
        }
    }
    let mut files = Vec::new();
    walk(std::path::Path::new("src"), &mut files);
    files.sort();
    // SipHash with fixed keys: the same sources give the same digest.
    #[allow(deprecated)]
    let mut h = std::hash::SipHasher::new();
    for f in files {
        f.hash(&mut h);
        std::fs::read(&f).expect("read source").hash(&mut h);
    }
    h.finish()
}
