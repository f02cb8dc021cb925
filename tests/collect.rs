//! Input the target could not hold, and symlinked directories: refused or
//! followed while collecting, before anything is written. Each refusal is
//! checked on a first publish (the target directory never appears) and
//! after a good one (the target stays byte for byte as it was).

use std::collections::BTreeMap;
use std::path::Path;

use crate::cli::{Project, pseudo_random};

/// Everything under `dir`, without following symlinks: each directory
/// (`None`), file (its bytes) and symlink (its target, marked).
fn tree(dir: &Path) -> BTreeMap<String, Option<Vec<u8>>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read dir").flatten() {
            let path = e.path();
            let rel = path
                .strip_prefix(dir)
                .expect("prefix")
                .to_string_lossy()
                .into_owned();
            let t = e.file_type().expect("file type");
            if t.is_dir() {
                stack.push(path);
                out.insert(rel, None);
            } else if t.is_symlink() {
                let target = std::fs::read_link(&path).expect("read link");
                let mut v = b"symlink -> ".to_vec();
                v.extend_from_slice(target.as_os_str().as_encoded_bytes());
                out.insert(rel, Some(v));
            } else {
                out.insert(rel, Some(std::fs::read(&path).expect("read")));
            }
        }
    }
    out
}

/// `publish` exits 3 and writes nothing: returns its stderr.
fn refused(p: &Project) -> String {
    let before = p
        .path("published")
        .exists()
        .then(|| tree(&p.path("published")));
    let out = p.cmd().arg("publish").output().expect("run");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(3), "publish should exit 3: {err}");
    match before {
        None => assert!(
            !p.path("published").exists(),
            "a refused first publish created the target: {err}"
        ),
        Some(before) => assert!(
            tree(&p.path("published")) == before,
            "a refused publish changed the target: {err}"
        ),
    }
    err
}

/// `n` bytes of CSS that compress well, so both sidecars are written.
fn compressible_css(n: usize) -> String {
    "body { color: red; }\n".repeat(n / 21 + 1)
}

#[test]
fn names_longer_than_the_directory_target_holds_are_refused_up_front() {
    // 250 bytes: the fingerprint alone takes the name over 255.
    let long = format!("site/img/{}.png", "l".repeat(246));
    // 240 bytes: the fingerprinted name is 253, its `.br` sidecar 256.
    let sidecar = format!("site/css/{}.css", "s".repeat(236));
    let p = Project::new();
    p.write_bytes(&long, &pseudo_random(500, 7));
    p.write(&sidecar, &compressible_css(2000));
    let err = refused(&p);
    for f in [&long, &sidecar] {
        assert!(
            err.contains(&format!("`{f}`: ")) && err.contains("255-byte limit"),
            "{f} not named with the limit: {err}"
        );
    }
    assert!(err.contains("`.gz`/`.br` suffix"), "{err}");

    // After a good publish, the same names change nothing either.
    std::fs::remove_file(p.path(&long)).unwrap();
    std::fs::remove_file(p.path(&sidecar)).unwrap();
    p.json(&["publish"]);
    p.write(&sidecar, &compressible_css(2000));
    let err = refused(&p);
    assert!(err.contains(&format!("`{sidecar}`: ")), "{err}");

    // One byte shorter, every name fits: published, sidecars and all.
    std::fs::remove_file(p.path(&sidecar)).unwrap();
    let fits = format!("css/{}.css", "s".repeat(235));
    let fits_too = format!("img/{}.png", "l".repeat(238));
    p.write(&format!("site/{fits}"), &compressible_css(2000));
    p.write_bytes(&format!("site/{fits_too}"), &pseudo_random(500, 7));
    p.json(&["publish"]);
    let m = p.manifest();
    let key = m["files"][&fits]["key"].as_str().expect("key").to_string();
    assert_eq!(key.rsplit('/').next().unwrap().len() + ".br".len(), 255);
    assert!(p.live_path(&format!("{key}.br")).is_file());
    let key = m["files"][&fits_too]["key"].as_str().expect("key");
    assert_eq!(key.rsplit('/').next().unwrap().len(), 255);
}

#[test]
fn a_path_that_is_a_file_in_one_source_dir_and_a_directory_in_another_is_refused() {
    let p = Project::new();
    p.write("extra/index.html/x.css", "a { }");
    p.write("extra/css", "a file where site/ has a directory");
    p.config("[source]\ndirs = [\"site\", \"extra\"]\n");
    let err = refused(&p);
    assert!(
        err.contains("`site/index.html`") && err.contains("`extra/index.html/x.css`"),
        "{err}"
    );
    assert!(
        err.contains("`extra/css`") && err.contains("`site/css/app.css`"),
        "{err}"
    );

    // After a good publish from `site` alone, adding `extra` writes nothing.
    p.config("[source]\ndirs = [\"site\"]\n");
    p.json(&["publish"]);
    p.config("[source]\ndirs = [\"site\", \"extra\"]\n");
    let err = refused(&p);
    assert!(err.contains("`extra/index.html/x.css`"), "{err}");
}

#[cfg(unix)]
#[test]
fn symlinked_directories_inside_the_source_dir_are_followed() {
    use std::os::unix::fs::symlink;
    let p = Project::new();
    // A relative link, and a link found again through it.
    symlink("img", p.path("site/pictures")).unwrap();
    symlink(p.path("site/fonts"), p.path("site/img/type")).unwrap();
    p.json(&["publish"]);
    let m = p.manifest();
    for (linked, real) in [
        ("pictures/bg.png", "img/bg.png"),
        ("img/type/f.woff2", "fonts/f.woff2"),
        ("pictures/type/f.woff2", "fonts/f.woff2"),
    ] {
        let key = m["files"][linked]["key"]
            .as_str()
            .unwrap_or_else(|| panic!("{linked} not collected: {m}"));
        assert!(
            key.starts_with(&linked[..linked.rfind('/').unwrap()]),
            "{key}"
        );
        assert_eq!(p.live(key), p.read(&format!("site/{real}")));
    }

    // A link to a directory out of the source dir is still refused.
    std::fs::create_dir_all(p.path("elsewhere")).unwrap();
    p.write("elsewhere/x.css", "a { }");
    symlink("../../elsewhere", p.path("site/css/vendor")).unwrap();
    let err = refused(&p);
    assert!(
        err.contains("`site/css/vendor`: symlink points outside its source dir"),
        "{err}"
    );
}

#[cfg(unix)]
#[test]
fn symlink_loops_are_refused_naming_the_link() {
    use std::os::unix::fs::symlink;
    let p = Project::new();
    // A link to the directory that holds it.
    symlink("..", p.path("site/css/up")).unwrap();
    let err = refused(&p);
    assert!(err.contains("`site/css/up`: symlink loop"), "{err}");
    assert_eq!(err.matches("symlink loop").count(), 1, "{err}");

    std::fs::remove_file(p.path("site/css/up")).unwrap();
    p.json(&["publish"]);
    // A link into a directory that links back to it: found both ways.
    std::fs::create_dir(p.path("site/b")).unwrap();
    symlink("b", p.path("site/a")).unwrap();
    symlink("../a", p.path("site/b/back")).unwrap();
    let err = refused(&p);
    assert!(
        err.contains("`site/a/back`: symlink loop") && err.contains("`site/b/back`: symlink loop"),
        "{err}"
    );

    // Links that lead only to each other.
    std::fs::remove_file(p.path("site/b/back")).unwrap();
    std::fs::remove_file(p.path("site/a")).unwrap();
    symlink("y", p.path("site/x")).unwrap();
    symlink("x", p.path("site/y")).unwrap();
    let err = refused(&p);
    assert!(
        err.contains("`site/x`: symlink loop") && err.contains("`site/y`: symlink loop"),
        "{err}"
    );
}
