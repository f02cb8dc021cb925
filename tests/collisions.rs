//! Immutable objects are write-once: a file named like another file's
//! fingerprinted object, a sidecar, a `fingerprint = "keep"` name, or a key
//! assetpub keeps for itself is refused (exit 3, both owners named) before
//! the first write, on the directory target and on S3, and the served
//! deploy stays whole.

use std::collections::BTreeMap;
use std::path::Path;

use crate::cli::Project;
use crate::s3::S3Site;
use crate::support::S3Server;

/// Every file under `dir` with its bytes.
fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    walk(dir, dir)
}

fn walk(root: &Path, dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    for e in std::fs::read_dir(dir).expect("read dir").flatten() {
        let path = e.path();
        if path.is_dir() {
            out.extend(walk(root, &path));
        } else {
            let rel = path.strip_prefix(root).unwrap().to_string_lossy();
            out.insert(rel.into_owned(), std::fs::read(&path).expect("read"));
        }
    }
    out
}

/// `publish` exits 3, leaves the target byte for byte as it was, and
/// `verify` still passes: returns stderr.
fn refused(p: &Project) -> String {
    let before = files(&p.path("published"));
    let out = p.cmd().arg("publish").output().expect("run");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(3), "publish should exit 3: {err}");
    assert!(
        files(&p.path("published")) == before,
        "a refused publish changed the target: {err}"
    );
    assert_eq!(p.json(&["verify"])["problems"], serde_json::json!([]));
    err
}

fn object_of(p: &Project, logical: &str) -> String {
    p.manifest()["files"][logical]["object"]
        .as_str()
        .expect("a stable file has an object")
        .to_string()
}

#[test]
fn a_page_named_like_another_pages_object_is_refused_naming_both() {
    let p = Project::new();
    p.json(&["publish"]);
    let object = object_of(&p, "about.html");
    p.write(&format!("site/{object}"), "<!doctype html><p>not about</p>");
    let err = refused(&p);
    assert!(
        err.contains(&format!("`{object}` is claimed twice"))
            && err.contains("the fingerprinted object of `about.html`")
            && err.contains(&format!("the stable key of `{object}`")),
        "{err}"
    );
    // The object is what the served deploy says it is.
    assert_eq!(
        p.read(&format!("published/{object}")),
        b"<!doctype html><p>about</p>"
    );
}

#[test]
fn a_page_named_like_an_object_of_the_served_deploy_is_refused() {
    let p = Project::new();
    p.json(&["publish"]);
    let old = object_of(&p, "about.html");
    // about.html changes, so its old object is in no key of the new deploy;
    // a rollback to the served deploy still needs it.
    p.write("site/about.html", "<!doctype html><p>about, new</p>");
    p.write(&format!("site/{old}"), "<!doctype html><p>impostor</p>");
    let err = refused(&p);
    assert!(
        err.contains(&format!(
            "`{old}` would overwrite `{old}`, the immutable object of `about.html` in the served deploy"
        )),
        "{err}"
    );
}

#[test]
fn a_file_at_a_sidecar_key_is_refused() {
    let p = Project::new();
    // Large enough to be compressed: index.html gets `index.html.gz`.
    p.write(
        "site/index.html",
        &format!("<!doctype html>{}", "<p>hello sidecars</p>\n".repeat(200)),
    );
    p.json(&["publish"]);
    assert!(p.live_path("index.html.gz").is_file());
    p.write("site/index.html.gz", "not gzip at all");
    p.config("[source]\ndirs = [\"site\"]\n\n[[rules]]\nmatch = \"*.gz\"\nfingerprint = false\n");
    let err = refused(&p);
    assert!(
        err.contains("`index.html.gz` is claimed twice")
            && err.contains("the stable key's compressed sidecar of `index.html`")
            && err.contains("the stable key of `index.html.gz`"),
        "{err}"
    );
}

#[test]
fn a_kept_name_equal_to_another_files_object_is_refused() {
    let p = Project::new();
    p.json(&["publish"]);
    let object = object_of(&p, "about.html");
    let dir = Path::new(&object)
        .parent()
        .map(|d| d.to_string_lossy().into_owned());
    assert_eq!(
        dir.as_deref(),
        Some(""),
        "about.html's object is at the root"
    );
    p.write(&format!("site/{object}"), "<!doctype html><p>kept</p>");
    p.config(&format!(
        "[source]\ndirs = [\"site\"]\n\n[[rules]]\nmatch = \"{object}\"\nfingerprint = \"keep\"\n"
    ));
    let err = refused(&p);
    assert!(
        err.contains(&format!("`{object}` is claimed twice"))
            && err.contains("the fingerprinted object of `about.html`")
            && err.contains(&format!("the fingerprinted object of `{object}`")),
        "{err}"
    );
}

#[test]
fn files_at_keys_assetpub_keeps_are_refused() {
    let p = Project::new();
    p.json(&["publish"]);
    p.write("site/.assetpub/lock", "{}");
    p.write("site/.assetpub/deploys/x.json", "{}");
    p.config(
        "[source]\ndirs = [\"site\"]\ninclude = [\"**\", \".assetpub/**\"]\n\n[[rules]]\nmatch = \".assetpub/**\"\nfingerprint = false\n",
    );
    let err = refused(&p);
    for key in [".assetpub/lock", ".assetpub/deploys/x.json"] {
        assert!(
            err.contains(&format!(
                "would be published at `{key}`, where assetpub keeps its own records"
            )),
            "{key}: {err}"
        );
    }
}

/// On a store that ignores `If-None-Match` (Garage) nothing would stop the
/// overwrite at the store: the refusal comes before the first request.
#[test]
fn a_collision_is_refused_before_any_request_on_garage() {
    let site = S3Site::new(S3Server::garage(), "collide");
    site.json(&["publish"]);
    let m = site.manifest();
    let object = m["files"]["about.html"]["object"]
        .as_str()
        .unwrap()
        .to_string();
    // The page was written straight to `about.html`: its object's name is
    // still the site's, made when a later deploy replaces the page.
    let before = site.s3.get(&site.key(&object));
    let manifest_before = site.s3.get(&site.key("manifest.json")).expect("manifest");
    site.p
        .write(&format!("site/{object}"), "<!doctype html><p>not about</p>");
    site.proxy.reset_counts();
    let out = site.run(&["publish"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(
        err.contains(&format!("`{object}` is claimed twice")),
        "{err}"
    );
    assert_eq!(site.proxy.total(), 0, "{:?}", site.proxy.requests());
    assert_eq!(site.s3.get(&site.key(&object)), before);
    assert_eq!(
        site.s3.get(&site.key("manifest.json")).as_deref(),
        Some(&manifest_before[..])
    );
    assert_eq!(site.json(&["verify"])["problems"], serde_json::json!([]));
}
