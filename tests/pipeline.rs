//! The asset pipeline on real front-end builds: Django's admin static files,
//! font-awesome 4.7 and Bootstrap 5 dist (pinned in tests/fixtures), checked
//! against what Django's own `ManifestStaticFilesStorage` does with the same
//! tree, and served by nginx from the published directory.
//!
//! Django is required (`pip install django`, or scripts/install-test-deps):
//! without it these tests fail, they are never skipped.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use predicates::prelude::*;

use crate::cli::{Project, http_get, snapshot};
use crate::nginx::serve;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn copy_tree(from: &Path, to: &Path) {
    for (rel, ..) in snapshot(from) {
        let dest = to.join(&rel);
        std::fs::create_dir_all(dest.parent().expect("parent")).expect("mkdir");
        std::fs::copy(from.join(&rel), &dest).unwrap_or_else(|e| panic!("copy {rel}: {e}"));
    }
}

const SITE_CONFIG: &str = r#"[source]
dirs = ["site"]

[manifest]
django = true
local = "app/staticfiles.json"

# Brotli at quality 11 on the fonts and source maps costs tens of seconds in
# a debug build, and their compression is not what these tests are about.
[[rules]]
match = "vendor/**/*.{map,svg,eot,ttf}"
compress = false
"#;

/// `site/`: Django's admin files under `admin/` (as `collectstatic` lays them
/// out), font-awesome and Bootstrap under `vendor/`, and a page using them.
fn real_world_site() -> Project {
    let p = Project::empty();
    copy_tree(
        &fixtures().join("django-admin/admin"),
        &p.path("site/admin"),
    );
    copy_tree(
        &fixtures().join("font-awesome-4.7.0"),
        &p.path("site/vendor/font-awesome"),
    );
    copy_tree(
        &fixtures().join("bootstrap-5.3.9"),
        &p.path("site/vendor/bootstrap"),
    );
    p.write(
        "site/index.html",
        "<!doctype html>\n<link rel=stylesheet href=vendor/bootstrap/css/bootstrap.min.css>\n\
         <link rel=stylesheet href=vendor/font-awesome/css/font-awesome.css>\n\
         <link rel=stylesheet href=admin/css/forms.css>\n<i class=\"fa fa-flag\"></i>\n\
         <script src=vendor/bootstrap/js/bootstrap.bundle.min.js></script>\n",
    );
    p.config(SITE_CONFIG);
    p
}

/// Runs tests/support/django_static.py with python3 and returns its JSON.
fn django(args: &[&str]) -> serde_json::Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/django_static.py");
    let out = Command::new("python3")
        .arg(&script)
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run python3 ({e}): these tests need Python 3 with Django\n\
                 install it with `pip install django` (or run scripts/install-test-deps)"
            )
        });
    if out.status.code() == Some(3) {
        panic!(
            "Django is not installed for python3\n\
             install it with `pip install django` (or run scripts/install-test-deps)"
        );
    }
    assert!(
        out.status.success(),
        "django_static.py {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("django_static.py prints JSON")
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("UTF-8 temp path")
}

fn key<'a>(m: &'a serde_json::Value, logical: &str) -> &'a str {
    m["files"][logical]["key"]
        .as_str()
        .unwrap_or_else(|| panic!("no `{logical}` in the manifest"))
}

fn file_name(key: &str) -> &str {
    key.rsplit('/').next().unwrap_or(key)
}

/// `url` with the file name of its path replaced, directories, query and
/// fragment as written.
fn with_file_name(url: &str, name: &str) -> String {
    let path_end = url.find(['?', '#']).unwrap_or(url.len());
    let (path, suffix) = url.split_at(path_end);
    let dir = &path[..path.rfind('/').map_or(0, |i| i + 1)];
    format!("{dir}{name}{suffix}")
}

/// The key a URL written in the object at `referrer` points at.
fn resolve(referrer: &str, url: &str) -> String {
    let path = &url[..url.find(['?', '#']).unwrap_or(url.len())];
    let mut parts: Vec<&str> = referrer.split('/').collect();
    parts.pop();
    for seg in path.split('/') {
        match seg {
            "." => {}
            ".." => {
                parts.pop().expect("stays inside the target");
            }
            s => parts.push(s),
        }
    }
    parts.join("/")
}

/// Django's hashed URL without its `.<12 hex>`: the URL as written when
/// Django changes nothing but the file name.
fn without_django_hash(url: &str) -> String {
    let path_end = url.find(['?', '#']).unwrap_or(url.len());
    let (path, suffix) = url.split_at(path_end);
    let start = path.rfind('/').map_or(0, |i| i + 1);
    let (dir, name) = path.split_at(start);
    // `stem.<hash>.ext`, or `name.<hash>` without an extension.
    let mut parts: Vec<&str> = name.split('.').collect();
    let at = parts
        .len()
        .saturating_sub(if parts.len() > 2 { 2 } else { 1 });
    let hash = parts[at];
    assert!(
        at > 0 && hash.len() == 12 && hash.bytes().all(|b| b.is_ascii_hexdigit()),
        "no Django hash in `{url}`"
    );
    parts.remove(at);
    format!("{dir}{}{suffix}", parts.join("."))
}

/// One reference Django rewrote, with how often it occurs in its file.
struct DjangoReference {
    file: String,
    url: String,
    target: String,
    count: usize,
}

/// What Django's `collectstatic` rewrites in `site/`, one entry per file and
/// URL as written.
fn django_references(p: &Project) -> Vec<DjangoReference> {
    let records = django(&[
        "collect",
        path_str(&p.path("site")),
        path_str(&p.path("django-static")),
    ]);
    let mut by_url: BTreeMap<(String, String), DjangoReference> = BTreeMap::new();
    for r in records.as_array().expect("a list") {
        let s = |k: &str| r[k].as_str().unwrap_or_else(|| panic!("{k} in {r}"));
        if r["in_comment"] == true {
            // Django rewrites url() inside CSS comments too; a comment is
            // not a reference, and assetpub leaves it as written.
            continue;
        }
        let url = s("url").trim().to_string();
        assert_eq!(
            without_django_hash(s("django_url")),
            url,
            "Django changed more than the file name of `{url}` in `{}`",
            s("file")
        );
        by_url
            .entry((s("file").to_string(), url.clone()))
            .or_insert_with(|| DjangoReference {
                file: s("file").to_string(),
                url,
                target: s("target").to_string(),
                count: 0,
            })
            .count += 1;
    }
    by_url.into_values().collect()
}

fn published_text(p: &Project, key: &str) -> String {
    String::from_utf8(p.live(key)).expect("UTF-8")
}

#[test]
fn real_builds_are_rewritten_exactly_where_django_rewrites_them() {
    let p = real_world_site();
    p.json(&["publish"]);
    let m = p.manifest();
    let refs = django_references(&p);

    // The cases that make these inputs worth pinning are all there.
    let has = |file: &str, url: &str| refs.iter().any(|r| r.file == file && r.url == url);
    assert!(has("admin/css/forms.css", "widgets.css"), "@import url()");
    assert!(has("admin/css/widgets.css", "../img/selector-icons.svg"));
    assert!(has(
        "vendor/font-awesome/css/font-awesome.css",
        "../fonts/fontawesome-webfont.eot?#iefix&v=4.7.0"
    ));
    assert!(has(
        "vendor/font-awesome/css/font-awesome.css",
        "../fonts/fontawesome-webfont.svg?v=4.7.0#fontawesomeregular"
    ));
    assert!(has(
        "vendor/bootstrap/css/bootstrap.min.css",
        "bootstrap.min.css.map"
    ));
    assert!(has(
        "vendor/bootstrap/js/bootstrap.bundle.min.js",
        "bootstrap.bundle.min.js.map"
    ));

    let mut rewritten_by_file: BTreeMap<&str, Vec<(String, &str)>> = BTreeMap::new();
    for r in &refs {
        let target_key = key(&m, &r.target);
        let new_url = with_file_name(&r.url, file_name(target_key));
        let referrer_key = key(&m, &r.file);
        let text = published_text(&p, referrer_key);
        assert_eq!(
            text.matches(new_url.as_str()).count(),
            r.count,
            "`{}`: `{}` should read `{new_url}` wherever Django rewrote it",
            r.file,
            r.url
        );
        assert_eq!(resolve(referrer_key, &new_url), target_key);
        assert!(
            p.live_path(target_key).is_file(),
            "`{new_url}` in `{referrer_key}` names a key that was not published"
        );
        rewritten_by_file
            .entry(&r.file)
            .or_default()
            .push((new_url, &r.url));
    }
    // Undoing those rewrites gives the source back: nothing else changed,
    // and nothing Django leaves alone was rewritten.
    for (file, mut rewrites) in rewritten_by_file {
        rewrites.sort_by_key(|(new_url, _)| std::cmp::Reverse(new_url.len()));
        let mut text = published_text(&p, key(&m, file));
        for (new_url, url) in &rewrites {
            text = text.replace(new_url.as_str(), url);
        }
        assert!(
            text.as_bytes() == p.read(&format!("site/{file}")),
            "`{file}` differs from its source beyond the references Django rewrites"
        );
    }
    let fa = published_text(&p, key(&m, "vendor/font-awesome/css/font-awesome.css"));
    let eot = file_name(key(&m, "vendor/font-awesome/fonts/fontawesome-webfont.eot"));
    assert!(
        fa.contains(&format!(
            "url('../fonts/{eot}?#iefix&v=4.7.0') format('embedded-opentype')"
        )),
        "the ?#iefix suffix is kept"
    );

    // Files without references are published as they are.
    let files = m["files"].as_object().unwrap();
    let referrers: BTreeSet<&str> = refs.iter().map(|r| r.file.as_str()).collect();
    for (logical, entry) in files {
        if !referrers.contains(logical.as_str()) {
            let k = entry["key"].as_str().unwrap();
            assert!(
                p.live(k) == p.read(&format!("site/{logical}")),
                "`{logical}` has no references and must be published byte for byte"
            );
        }
    }

    // Every compressed variant decodes to the object it sits beside.
    let mut sidecars = 0;
    for entry in files.values() {
        let k = entry["key"].as_str().unwrap();
        let object = p.live(k);
        for (encoding, size) in entry["encodings"].as_object().into_iter().flatten() {
            let (suffix, decoded) = match encoding.as_str() {
                "gzip" => ("gz", gunzip(&p.live(&format!("{k}.gz")))),
                "br" => ("br", unbrotli(&p.live(&format!("{k}.br")))),
                other => panic!("unknown encoding {other}"),
            };
            assert!(decoded == object, "`{k}.{suffix}` does not decode to `{k}`");
            assert_eq!(
                p.live(&format!("{k}.{suffix}")).len() as u64,
                size.as_u64().unwrap()
            );
            sidecars += 1;
        }
    }
    assert!(sidecars > 20, "{sidecars} sidecars");
    p.cmd()
        .arg("verify")
        .assert()
        .success()
        .stdout(predicate::str::contains("ok:"));
}

pub fn gunzip(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(data)
        .read_to_end(&mut out)
        .expect("gzip");
    out
}

pub fn unbrotli(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    brotli::Decompressor::new(data, 4096)
        .read_to_end(&mut out)
        .expect("brotli");
    out
}

#[test]
fn staticfiles_json_is_what_django_writes_and_resolves_every_file() {
    let p = real_world_site();
    p.json(&["publish"]);
    let m = p.manifest();
    let expected: serde_json::Map<String, serde_json::Value> = m["files"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(logical, e)| (logical.clone(), e["key"].clone()))
        .collect();
    let text = String::from_utf8(p.live("staticfiles.json")).unwrap();
    let sf: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(sf["version"], "1.1");
    assert_eq!(sf["paths"], serde_json::Value::Object(expected.clone()));
    assert_eq!(
        p.read("app/staticfiles.json"),
        text.as_bytes(),
        "the local copy is the same file"
    );

    // On a directory target it lives in the live release.
    let loaded = django(&["load", path_str(&p.path("published/.assetpub/current"))]);
    assert_eq!(
        loaded["resolved"],
        serde_json::Value::Object(expected),
        "Django {} resolves every logical path to the published key",
        loaded["django"]
    );
    assert_eq!(loaded["loaded_hash"], sf["hash"]);
    assert_eq!(
        loaded["resaved"].as_str().unwrap(),
        text,
        "byte for byte what Django writes for these paths"
    );
}

#[test]
fn nginx_serves_every_image_and_font_through_the_rewritten_stylesheets() {
    let p = real_world_site();
    p.json(&["publish"]);
    let m = p.manifest();
    let refs = django_references(&p);
    let (_nginx, addr) = serve(&p);

    let (status, h, body) = http_get(&addr, "/staticfiles.json", &[]);
    assert_eq!(status, 200);
    assert_eq!(h["cache-control"], "no-cache");
    assert!(h["content-type"].starts_with("application/json"), "{h:?}");
    assert_eq!(body, p.live("staticfiles.json"));

    let (status, h, body) = http_get(&addr, "/", &[]);
    assert_eq!(status, 200);
    assert_eq!(h["cache-control"], "public, max-age=0, must-revalidate");
    assert_eq!(body, p.read("site/index.html"));

    let mut loaded = BTreeSet::new();
    for r in &refs {
        let referrer = key(&m, &r.file);
        let (status, h, body) = http_get(&addr, &format!("/{referrer}"), &[]);
        assert_eq!(status, 200, "{referrer}");
        assert_eq!(h["cache-control"], "public, max-age=31536000, immutable");
        let text = String::from_utf8(body).unwrap();
        let url = with_file_name(&r.url, file_name(key(&m, &r.target)));
        assert!(text.contains(&url), "{referrer} serves `{url}`");
        let path = resolve(referrer, &url);
        let (status, h, body) = http_get(&addr, &format!("/{path}"), &[]);
        assert_eq!(status, 200, "`{url}` from {referrer}");
        assert_eq!(h["cache-control"], "public, max-age=31536000, immutable");
        let want_type = m["files"][&r.target]["content_type"].as_str().unwrap();
        assert_eq!(h["content-type"], want_type, "{path}");
        assert_eq!(body, p.live(&path));
        loaded.insert(r.target.clone());
    }
    for font in ["eot", "woff2", "woff", "ttf", "svg"] {
        assert!(
            loaded.contains(&format!(
                "vendor/font-awesome/fonts/fontawesome-webfont.{font}"
            )),
            "{font}"
        );
    }
    assert!(loaded.contains("admin/img/selector-icons.svg"));

    // A client that accepts gzip gets the sidecar, which decodes to the object.
    let css = key(&m, "admin/css/base.css");
    let (_, h, body) = http_get(&addr, &format!("/{css}"), &[("Accept-Encoding", "gzip")]);
    assert_eq!(h.get("content-encoding").map(String::as_str), Some("gzip"));
    assert_eq!(gunzip(&body), p.live(css));
}

#[test]
fn a_changed_image_changes_the_key_of_every_stylesheet_that_reaches_it() {
    let p = Project::empty();
    copy_tree(
        &fixtures().join("django-admin/admin"),
        &p.path("site/admin"),
    );
    p.config(SITE_CONFIG);
    p.json(&["publish"]);
    let m1 = p.manifest();
    let sf1 = p.live("staticfiles.json");

    // widgets.css and rtl.css use the icons; forms.css imports widgets.css.
    let icons = "site/admin/img/selector-icons.svg";
    let mut svg = String::from_utf8(p.read(icons)).unwrap();
    svg.push_str("<!-- changed -->\n");
    p.write(icons, &svg);
    p.json(&["publish"]);
    let m2 = p.manifest();
    let changed: Vec<&str> = m1["files"]
        .as_object()
        .unwrap()
        .keys()
        .filter(|l| key(&m1, l) != key(&m2, l))
        .map(String::as_str)
        .collect();
    assert_eq!(
        changed,
        [
            "admin/css/forms.css",
            "admin/css/rtl.css",
            "admin/css/widgets.css",
            "admin/img/selector-icons.svg"
        ]
    );
    let widgets = published_text(&p, key(&m2, "admin/css/widgets.css"));
    assert!(widgets.contains(file_name(key(&m2, "admin/img/selector-icons.svg"))));
    let forms = published_text(&p, key(&m2, "admin/css/forms.css"));
    assert!(forms.starts_with(&format!(
        "@import url('{}');",
        file_name(key(&m2, "admin/css/widgets.css"))
    )));

    // staticfiles.json follows, at the target and locally.
    let sf2 = p.live("staticfiles.json");
    let paths: serde_json::Value = serde_json::from_slice(&sf2).unwrap();
    assert_eq!(
        paths["paths"]["admin/css/forms.css"],
        key(&m2, "admin/css/forms.css")
    );
    assert_eq!(p.read("app/staticfiles.json"), sf2);

    // And back with the deploy on rollback.
    let out = p.json(&["rollback"]);
    assert_eq!(out["staticfiles"], true);
    assert_eq!(p.live("staticfiles.json"), sf1);
    assert_eq!(p.read("app/staticfiles.json"), sf1);
    p.cmd().arg("verify").assert().success();
}

#[test]
fn plan_and_dry_run_say_staticfiles_json_would_be_written() {
    let p = Project::new();
    p.config(
        "[source]\ndirs = [\"site\"]\n[manifest]\ndjango = true\nlocal = \"app/staticfiles.json\"\n",
    );
    let plan = p.json(&["plan"]);
    assert_eq!(plan["staticfiles"]["key"], "staticfiles.json");
    assert_eq!(plan["staticfiles"]["write"], true);
    assert_eq!(plan["staticfiles"]["write_local"], true);
    assert_eq!(plan["staticfiles"]["paths"], plan["files"]);
    let heading = format!("Django staticfiles.json ({} paths):", plan["files"]);
    for args in [&["plan"][..], &["publish", "--dry-run"]] {
        p.cmd().args(args).assert().success().stdout(
            predicate::str::contains(heading.as_str())
                .and(predicate::str::contains("  staticfiles.json\n"))
                .and(predicate::str::contains(
                    "app/staticfiles.json (local copy)",
                )),
        );
    }
    assert!(!p.path("published").exists() && !p.path("app").exists());

    let first = p.json(&["publish"]);
    assert!(p.live_path("staticfiles.json").is_file());
    assert!(p.path("app/staticfiles.json").is_file());
    let plan = p.json(&["plan"]);
    assert_eq!(plan["changed"], false);
    assert_eq!(plan["staticfiles"]["write"], false);
    assert_eq!(plan["staticfiles"]["write_local"], false);

    // A lost copy is a change, and publishing restores it without a deploy.
    let written = p.live("staticfiles.json");
    std::fs::remove_file(p.live_path("staticfiles.json")).unwrap();
    p.cmd()
        .arg("verify")
        .assert()
        .code(1)
        .stdout(predicate::str::contains("`staticfiles.json`"));
    p.cmd()
        .args(["plan", "--exit-code"])
        .assert()
        .code(1)
        .stdout(predicate::str::contains("Django staticfiles.json"));
    let out = p.json(&["publish"]);
    assert!(out["deploy"].is_null(), "{out}");
    assert_eq!(out["parent"], first["deploy"]);
    assert_eq!(p.live("staticfiles.json"), written);
    std::fs::remove_file(p.path("app/staticfiles.json")).unwrap();
    p.cmd()
        .arg("publish")
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "updated Django's staticfiles.json",
        ));
    assert_eq!(p.read("app/staticfiles.json"), written);
    assert_eq!(p.json(&["history"])["deploys"].as_array().unwrap().len(), 1);
    p.cmd().arg("verify").assert().success();
}

#[test]
fn turning_django_on_writes_staticfiles_json_for_the_current_deploy() {
    let p = Project::new();
    let first = p.json(&["publish"]);
    assert!(!p.live_path("staticfiles.json").exists());
    p.config("[source]\ndirs = [\"site\"]\n[manifest]\ndjango = true\n");
    let out = p.json(&["publish"]);
    assert!(out["deploy"].is_null());
    assert_eq!(out["staticfiles"]["write"], true);
    let sf: serde_json::Value = serde_json::from_slice(&p.live("staticfiles.json")).unwrap();
    assert_eq!(
        sf["paths"]["css/app.css"],
        key(&p.manifest(), "css/app.css")
    );
    assert_eq!(p.manifest()["deploy"], first["deploy"]);
}

#[test]
fn regression_a_stable_file_at_the_staticfiles_json_key_is_refused() {
    let p = Project::new();
    p.write("site/staticfiles.json", "{\"mine\": true}");
    p.config(
        "[source]\ndirs = [\"site\"]\n[manifest]\ndjango = true\n[[rules]]\nmatch = \"staticfiles.json\"\nfingerprint = false\n",
    );
    p.cmd().arg("publish").assert().code(3).stderr(
        predicate::str::contains("`staticfiles.json` would be published at `staticfiles.json`")
            .and(predicate::str::contains("[manifest] django")),
    );
    assert!(!p.path("published").exists());
    // Fingerprinted, it is just another file.
    p.config("[source]\ndirs = [\"site\"]\n[manifest]\ndjango = true\n");
    p.json(&["publish"]);
    let sf: serde_json::Value = serde_json::from_slice(&p.live("staticfiles.json")).unwrap();
    assert!(
        sf["paths"]["staticfiles.json"]
            .as_str()
            .unwrap()
            .starts_with("staticfiles.")
    );
}

/// References were cached by content with their targets already resolved,
/// so a stylesheet identical to one published before, in another directory
/// (a copy, or the same file moved), was rewritten with the other
/// directory's targets: its own references were left as written and broken.
#[test]
fn regression_identical_stylesheets_in_two_directories_shared_their_targets() {
    let p = Project::empty();
    let css = "x { background: url(img.png) }\n";
    p.write("site/a/x.css", css);
    p.write_bytes("site/a/img.png", b"the image of a");
    p.config("[source]\ndirs = [\"site\"]\n");
    p.json(&["publish"]);
    p.write("site/b/x.css", css);
    p.write_bytes("site/b/img.png", b"the image of b");
    p.json(&["publish"]);
    let m = p.manifest();
    for dir in ["a", "b"] {
        let text = published_text(&p, key(&m, &format!("{dir}/x.css")));
        let img = file_name(key(&m, &format!("{dir}/img.png")));
        assert_eq!(text, format!("x {{ background: url({img}) }}\n"), "{dir}");
    }
    // Moved: the cached references of the old path do not follow it.
    std::fs::remove_dir_all(p.path("site/a")).unwrap();
    p.write("site/c/x.css", css);
    p.write_bytes("site/c/img.png", b"the image of c");
    p.json(&["publish"]);
    let m = p.manifest();
    let text = published_text(&p, key(&m, "c/x.css"));
    let img = file_name(key(&m, "c/img.png"));
    assert_eq!(text, format!("x {{ background: url({img}) }}\n"));
    p.cmd().arg("verify").assert().success();
}

/// A bundler-named stylesheet kept by `fingerprint = "keep"` references an
/// image assetpub fingerprints; a new image changed the stylesheet's bytes
/// but not its name, the upload of the immutable key was skipped as
/// "already there", and the deploy named bytes the target did not hold.
#[test]
fn regression_a_kept_name_with_new_content_was_skipped_as_already_there() {
    let p = Project::empty();
    p.write(
        "site/assets/index-BxK3f9a1.css",
        "h1 { background: url(/logo.png) }\n",
    );
    p.write_bytes("site/logo.png", b"logo, first version");
    let keep =
        "[source]\ndirs = [\"site\"]\n[[rules]]\nmatch = \"assets/**\"\nfingerprint = \"keep\"\n";
    p.config(keep);
    p.json(&["publish"]);
    let first = p.live("assets/index-BxK3f9a1.css");
    let logo = file_name(key(&p.manifest(), "logo.png")).to_string();
    assert_eq!(
        first,
        format!("h1 {{ background: url(/{logo}) }}\n").as_bytes()
    );

    p.write_bytes("site/logo.png", b"logo, second version");
    let before = snapshot(&p.path("published"));
    for command in ["plan", "publish"] {
        p.cmd().arg(command).assert().code(3).stderr(
            predicate::str::contains(
                "`assets/index-BxK3f9a1.css` has new content, but its key `assets/index-BxK3f9a1.css` is immutable",
            )
            .and(predicate::str::contains("hint:")),
        );
    }
    assert_eq!(
        snapshot(&p.path("published")),
        before,
        "nothing was written"
    );
    p.cmd().arg("verify").assert().success();

    // Published at a stable name, what it references no longer changes it.
    p.config(&format!(
        "{keep}[[rules]]\nmatch = \"logo.png\"\nfingerprint = false\n"
    ));
    p.write(
        "site/assets/index-C9aa01ff.css",
        "h1 { background: url(/logo.png) }\n",
    );
    std::fs::remove_file(p.path("site/assets/index-BxK3f9a1.css")).unwrap();
    p.json(&["publish"]);
    p.write_bytes("site/logo.png", b"logo, third version");
    p.json(&["publish"]);
    assert_eq!(
        p.live("assets/index-C9aa01ff.css"),
        b"h1 { background: url(/logo.png) }\n"
    );
    assert_eq!(p.live("logo.png"), b"logo, third version");
    p.cmd().arg("verify").assert().success();
}

/// `src` and `href` values of an HTML page that name a file of the site.
fn html_links(page: &str) -> Vec<String> {
    let mut out = Vec::new();
    for attr in ["src=\"", "href=\""] {
        for (at, _) in page.match_indices(attr) {
            let rest = &page[at + attr.len()..];
            let value = &rest[..rest.find('"').unwrap_or(rest.len())];
            let external = value.starts_with('#') || value.starts_with("//") || value.contains(':');
            if !external {
                out.push(value.to_string());
            }
        }
    }
    out
}

/// `link`, as written in the page or stylesheet at `from` (a request
/// path), as a request path: resolved, without query or fragment.
fn request_path(from: &str, link: &str) -> String {
    let link = &link[..link.find(['?', '#']).unwrap_or(link.len())];
    if link.starts_with('/') {
        return link.to_string();
    }
    format!("/{}", resolve(from.trim_start_matches('/'), link))
}

/// The repository's publish.toml and examples/site, published and served by
/// nginx: from the home page, every page, stylesheet, image and font of the
/// site loads, those only the stylesheets name through their rewritten,
/// fingerprinted URLs.
#[test]
fn the_example_site_loads_every_image_and_font_through_nginx() {
    let p = Project::empty();
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    copy_tree(&repo.join("examples/site"), &p.path("examples/site"));
    std::fs::copy(repo.join("publish.toml"), p.path("publish.toml")).unwrap();
    p.json(&["publish"]);
    let m = p.manifest();
    let (_nginx, addr) = serve(&p);

    let mut queue = vec![("/index.html".to_string(), "the start".to_string())];
    let mut loaded = BTreeSet::new();
    while let Some((path, from)) = queue.pop() {
        if loaded.contains(&path) {
            continue;
        }
        let (status, h, body) = http_get(&addr, &path, &[]);
        assert_eq!(status, 200, "`{path}`, linked from {from}");
        let text = String::from_utf8_lossy(&body);
        let links = if h["content-type"].starts_with("text/html") {
            html_links(&text)
        } else if h["content-type"].starts_with("text/css") {
            let key = path.trim_start_matches('/');
            assetpub::rewrite::find_references(assetpub::rewrite::Syntax::Css, key, &text, false)
                .into_iter()
                .map(|r| r.url)
                .collect()
        } else {
            Vec::new()
        };
        for link in links {
            queue.push((request_path(&path, &link), format!("`{path}`")));
        }
        loaded.insert(path);
    }
    for (logical, entry) in m["files"].as_object().unwrap() {
        let t = entry["content_type"].as_str().unwrap();
        if t.starts_with("image/") || t.starts_with("font/") || t.starts_with("text/css") {
            let key = entry["key"].as_str().unwrap();
            assert!(
                loaded.contains(&format!("/{key}")),
                "`{logical}` was not reached at its key `{key}`: {loaded:?}"
            );
        }
    }
    // Reached only through the rewritten stylesheets.
    for only_css in ["img/hero.jpg", "fonts/inter.woff", "css/base.css"] {
        let k = key(&m, only_css);
        assert_ne!(k, only_css, "`{only_css}` is fingerprinted");
        assert!(loaded.contains(&format!("/{k}")), "{k}");
    }
}

#[test]
fn strict_rewriting_refuses_a_reference_to_an_uncollected_file_before_writing() {
    let p = Project::new();
    p.write(
        "site/css/extra.css",
        "a { background: url(../img/missing.png); }\n",
    );
    p.config("[source]\ndirs = [\"site\"]\n[rewrite]\nstrict = true\n");
    p.cmd().arg("publish").assert().code(3).stderr(
        predicate::str::contains("css/extra.css")
            .and(predicate::str::contains("missing.png"))
            .and(predicate::str::contains("strict")),
    );
    assert!(!p.path("published").exists(), "nothing written");
    // Without strict: a warning naming both files, and the reference left
    // as written.
    p.config("[source]\ndirs = [\"site\"]\n");
    p.cmd().arg("publish").assert().success().stderr(
        predicate::str::contains("warning:")
            .and(predicate::str::contains("css/extra.css"))
            .and(predicate::str::contains("missing.png")),
    );
    let m = p.manifest();
    assert!(published_text(&p, key(&m, "css/extra.css")).contains("url(../img/missing.png)"));
}

#[test]
fn js_imports_are_rewritten_and_ordered_only_when_asked_for() {
    let p = Project::new();
    p.write("site/js/util.js", "export const x = 1;\n");
    p.write("site/js/lazy.js", "export default 2;\n");
    p.write(
        "site/js/main.js",
        "import { x } from \"./util.js\";\nexport { x } from './util.js';\nconst l = import(\"./lazy.js\");\n",
    );
    // Off by default: left as written.
    p.json(&["publish"]);
    let m = p.manifest();
    let main = published_text(&p, key(&m, "js/main.js"));
    assert!(
        main.contains("\"./util.js\"") && main.contains("\"./lazy.js\""),
        "{main}"
    );

    p.config("[source]\ndirs = [\"site\"]\n[rewrite]\njs_imports = true\n");
    p.json(&["publish"]);
    let m = p.manifest();
    let util = file_name(key(&m, "js/util.js")).to_string();
    let lazy = file_name(key(&m, "js/lazy.js")).to_string();
    let main = published_text(&p, key(&m, "js/main.js"));
    assert_eq!(
        main,
        format!(
            "import {{ x }} from \"./{util}\";\nexport {{ x }} from './{util}';\nconst l = import(\"./{lazy}\");\n"
        )
    );
    // A changed import changes the key of the module that imports it.
    let main_key = key(&m, "js/main.js").to_string();
    p.write("site/js/util.js", "export const x = 3;\n");
    p.json(&["publish"]);
    let m = p.manifest();
    assert_ne!(key(&m, "js/main.js"), main_key);
    assert!(published_text(&p, key(&m, "js/main.js")).contains(file_name(key(&m, "js/util.js"))));
}

#[test]
fn a_rule_can_turn_compression_off() {
    let p = Project::new();
    let css = "body { color: red; }\n".repeat(200);
    p.write("site/css/app.css", &css);
    p.write("site/css/other.css", &css.replace("red", "blue"));
    p.config("[source]\ndirs = [\"site\"]\n[[rules]]\nmatch = \"css/app.css\"\ncompress = false\n");
    p.json(&["publish"]);
    let m = p.manifest();
    let app = key(&m, "css/app.css").to_string();
    let other = key(&m, "css/other.css").to_string();
    assert!(p.live_path(&format!("{other}.gz")).is_file());
    assert!(p.live_path(&format!("{other}.br")).is_file());
    assert!(!p.live_path(&format!("{app}.gz")).exists());
    assert!(!p.live_path(&format!("{app}.br")).exists());
}
