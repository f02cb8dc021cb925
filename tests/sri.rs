//! Subresource Integrity: every manifest entry's `integrity` is the SHA-384
//! of the bytes served at its key, and with `[rewrite] integrity = true` the
//! pages carry those values on the scripts and stylesheets they load.

use base64::Engine as _;
use sha2::{Digest as _, Sha384};

use crate::cli::Project;

fn sri(bytes: &[u8]) -> String {
    format!(
        "sha384-{}",
        base64::engine::general_purpose::STANDARD.encode(Sha384::digest(bytes))
    )
}

fn published(p: &Project, key: &str) -> String {
    String::from_utf8(p.live(key)).unwrap()
}

/// Every entry's `integrity` against the bytes at its key and at its
/// immutable object; the number of entries checked.
fn check_every_entry(p: &Project) -> usize {
    let m = p.manifest();
    let files = m["files"].as_object().unwrap();
    for (logical, e) in files {
        let key = e["key"].as_str().unwrap();
        let integrity = e["integrity"].as_str().unwrap_or_default();
        assert_eq!(integrity, sri(&p.live(key)), "`{logical}` at `{key}`");
        if let Some(object) = e["object"].as_str() {
            assert_eq!(integrity, sri(&p.live(object)), "`{logical}` at `{object}`");
        }
    }
    files.len()
}

#[test]
fn every_entry_s_integrity_is_the_sha384_of_the_bytes_at_its_key() {
    let p = Project::new();
    p.write(
        "site/index.html",
        "<!doctype html><link rel=stylesheet href=css/app.css><script src=js/app.js></script>",
    );
    // The directory target keeps gzip and brotli sidecars beside the
    // identity bytes: `integrity` is of the identity bytes. Django's
    // staticfiles.json stays as it was.
    p.config("[source]\ndirs = [\"site\"]\n\n[manifest]\ndjango = true\n");
    p.json(&["publish"]);
    assert_eq!(check_every_entry(&p), 10);
    let staticfiles = published(&p, "staticfiles.json");
    assert!(!staticfiles.contains("sha384"), "{staticfiles}");

    // Rewritten bytes (a stylesheet naming a new image, a script naming its
    // map, the map naming the script) and pages with integrity attributes.
    p.write_bytes("site/img/bg.png", &crate::cli::pseudo_random(4100, 7));
    p.config("[source]\ndirs = [\"site\"]\n\n[rewrite]\nhtml = true\nintegrity = true\n");
    p.json(&["publish"]);
    assert_eq!(check_every_entry(&p), 10);
}

#[test]
fn pages_carry_the_integrity_of_what_they_load_and_follow_its_changes() {
    let p = Project::new();
    p.write(
        "site/index.html",
        "<!doctype html>\n<link rel=\"stylesheet\" href=\"css/app.css\">\n<link rel=modulepreload href=js/app.js>\n<script src=\"js/app.js\" defer></script>\n<img src=img/logo.png>\n",
    );
    p.config("[source]\ndirs = [\"site\"]\n\n[rewrite]\nhtml = true\nintegrity = true\n");
    p.age_sources();
    p.json(&["publish"]);
    let m = p.manifest();
    let entry = |m: &serde_json::Value, logical: &str, field: &str| {
        m["files"][logical][field].as_str().unwrap().to_string()
    };
    let page = |m: &serde_json::Value| {
        let (css, js, logo) = (
            entry(m, "css/app.css", "key"),
            entry(m, "js/app.js", "key"),
            entry(m, "img/logo.png", "key"),
        );
        let (css_sri, js_sri) = (
            entry(m, "css/app.css", "integrity"),
            entry(m, "js/app.js", "integrity"),
        );
        format!(
            "<!doctype html>\n<link rel=\"stylesheet\" href=\"{css}\" integrity=\"{css_sri}\" crossorigin=\"anonymous\">\n<link rel=modulepreload href={js} integrity=\"{js_sri}\" crossorigin=\"anonymous\">\n<script src=\"{js}\" defer integrity=\"{js_sri}\" crossorigin=\"anonymous\"></script>\n<img src={logo}>\n"
        )
    };
    assert_eq!(published(&p, "index.html"), page(&m));
    assert_eq!(
        entry(&m, "css/app.css", "integrity"),
        sri(&p.live(&entry(&m, "css/app.css", "key")))
    );

    // The same build to a second target, sharing the state DB: the page's
    // rewriting is known from the cache, so its bytes are made again at
    // upload, and they are the same.
    p.cmd()
        .args(["publish", "--target", "file://second"])
        .assert()
        .success();
    let second = std::fs::read_to_string(p.path("second/.assetpub/current/index.html")).unwrap();
    assert_eq!(second, page(&m));

    // New stylesheet bytes: a new integrity on the page, so a new page object.
    p.write(
        "site/css/app.css",
        "body { background: url(../img/bg.png); color: red; }\n",
    );
    p.json(&["publish"]);
    let m2 = p.manifest();
    assert_ne!(
        entry(&m2, "css/app.css", "integrity"),
        entry(&m, "css/app.css", "integrity")
    );
    assert_eq!(published(&p, "index.html"), page(&m2));
    assert_ne!(
        entry(&m2, "index.html", "object"),
        entry(&m, "index.html", "object")
    );
}

#[test]
fn integrity_needs_html_rewriting() {
    let p = Project::new();
    p.config("[source]\ndirs = [\"site\"]\n\n[rewrite]\nintegrity = true\n");
    let out = p.cmd().arg("publish").output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("needs `html = true`"), "{stderr}");
}
