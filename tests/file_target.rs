//! The directory target end to end: publish, no-op, change, delete, rollback,
//! verify, and bad input with its exit code.

use predicates::prelude::*;

use crate::cli::{Project, pseudo_random, snapshot};

fn key_of(manifest: &serde_json::Value, logical: &str) -> String {
    manifest["files"][logical]["key"]
        .as_str()
        .unwrap_or_else(|| panic!("no {logical} in manifest"))
        .to_string()
}

fn object_of(manifest: &serde_json::Value, logical: &str) -> String {
    let e = &manifest["files"][logical];
    e["object"]
        .as_str()
        .or(e["key"].as_str())
        .expect("object")
        .to_string()
}

#[test]
fn first_publish_writes_objects_stable_keys_and_manifest_last() {
    let p = Project::new();
    // A page long enough that compressing it saves more than 5%.
    let page = format!(
        "<!doctype html><link rel=stylesheet href=css/app.css>{}",
        "<p>text</p>\n".repeat(30)
    );
    p.write("site/index.html", &page);
    let out = p.json(&["publish"]);
    let deploy = out["deploy"].as_str().expect("deploy id").to_string();
    assert!(out["changed"].as_bool().unwrap());
    let m = p.manifest();
    assert_eq!(m["version"], 1);
    assert_eq!(m["deploy"], deploy.as_str());
    assert!(m["parent"].is_null());
    // Fingerprinted names for assets, stable names for pages and well-known files.
    let css = key_of(&m, "css/app.css");
    assert!(regex_like(&css, "css/app.", ".css"), "{css}");
    assert_eq!(key_of(&m, "index.html"), "index.html");
    assert_eq!(key_of(&m, "robots.txt"), "robots.txt");
    assert_eq!(key_of(&m, "favicon.ico"), "favicon.ico");
    assert_eq!(
        m["files"]["index.html"]["cache_control"],
        "public, max-age=0, must-revalidate"
    );
    assert_eq!(
        m["files"]["css/app.css"]["cache_control"],
        "public, max-age=31536000, immutable"
    );
    // Every file version has its fingerprinted object, stable or not.
    let index_object = object_of(&m, "index.html");
    assert!(
        regex_like(&index_object, "index.", ".html"),
        "{index_object}"
    );
    assert_eq!(p.live(&index_object), p.read("site/index.html"));
    assert_eq!(p.live("index.html"), p.read("site/index.html"));
    assert!(
        p.path(&format!("published/.assetpub/deploys/{deploy}.json"))
            .exists()
    );
    // Compressible files get sidecars for nginx's gzip_static.
    assert!(p.live_path("index.html.gz").exists());
    assert!(
        p.live_path(&format!("{css}.br")).exists() || p.live_path(&format!("{css}.gz")).exists()
    );
    // No temporary files are left behind.
    assert!(
        snapshot(&p.path("published"))
            .iter()
            .all(|(f, ..)| !f.contains(".assetpub-tmp-"))
    );
    p.cmd()
        .arg("verify")
        .assert()
        .success()
        .stdout(predicate::str::contains("ok:"));
}

fn regex_like(key: &str, prefix: &str, suffix: &str) -> bool {
    key.starts_with(prefix)
        && key.ends_with(suffix)
        && key[prefix.len()..key.len() - suffix.len()].len() == 12
        && key[prefix.len()..key.len() - suffix.len()]
            .chars()
            .all(|c| c.is_ascii_hexdigit())
}

#[test]
fn republishing_an_unchanged_tree_writes_nothing() {
    let p = Project::new();
    p.age_sources();
    p.json(&["publish"]);
    let before = snapshot(&p.path("published"));
    p.cmd()
        .arg("publish")
        .assert()
        .success()
        .stdout(predicate::str::contains("no changes"));
    assert_eq!(
        snapshot(&p.path("published")),
        before,
        "a no-op publish must not touch the target"
    );
    let out = p.json(&["publish"]);
    assert_eq!(out["changed"], false);
    assert!(out["deploy"].is_null());
    assert_eq!(out["hashed"], 0, "an unchanged tree is not re-read");
    // A file written within the timestamp granularity of the scan is hashed
    // again next time, even with the same size and mtime (racy mtime).
    p.write("site/robots.txt", "User-agent: x\n");
    assert_eq!(p.json(&["publish"])["hashed"], 1);
    assert_eq!(
        p.json(&["publish"])["hashed"],
        1,
        "still too fresh to trust"
    );
    p.cmd().args(["plan", "--exit-code"]).assert().code(0);
}

#[test]
fn a_changed_image_is_uploaded_under_a_new_key() {
    let p = Project::new();
    p.json(&["publish"]);
    let m1 = p.manifest();
    p.write_bytes("site/img/logo.png", &pseudo_random(2100, 99));
    let plan = p.json(&["plan"]);
    let uploads: Vec<&str> = plan["uploads"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["logical"].as_str().unwrap())
        .collect();
    assert_eq!(
        uploads,
        ["img/logo.png"],
        "only the changed image is uploaded"
    );
    assert_eq!(plan["uploads"][0]["reason"], "changed");
    p.cmd().args(["plan", "--exit-code"]).assert().code(1);
    let out = p.json(&["publish"]);
    let m2 = p.manifest();
    assert_eq!(m2["parent"], m1["deploy"]);
    assert_eq!(out["deploy"], m2["deploy"]);
    assert_ne!(key_of(&m1, "img/logo.png"), key_of(&m2, "img/logo.png"));
    // The old object stays for rollback and for pages still cached.
    assert!(
        p.live_path(&key_of(&m1, "img/logo.png").to_string())
            .exists()
    );
    assert_eq!(
        p.live(&key_of(&m2, "img/logo.png").to_string()),
        pseudo_random(2100, 99)
    );
}

#[test]
fn a_deleted_file_disappears_from_the_manifest_and_its_stable_key() {
    let p = Project::new();
    p.json(&["publish"]);
    std::fs::remove_file(p.path("site/about.html")).unwrap();
    let plan = p.json(&["plan"]);
    assert_eq!(plan["removed"], serde_json::json!(["about.html"]));
    p.cmd()
        .arg("plan")
        .assert()
        .success()
        .stdout(predicate::str::contains("removed:").and(predicate::str::contains("- about.html")));
    p.json(&["publish"]);
    assert!(p.manifest()["files"].get("about.html").is_none());
    assert!(!p.live_path("about.html").exists());
}

#[test]
fn rollback_restores_the_exact_earlier_bytes_at_stable_keys() {
    let p = Project::new();
    let first = p.json(&["publish"])["deploy"].as_str().unwrap().to_string();
    let v1 = p.read("site/index.html");
    p.write("site/index.html", "<!doctype html><p>version two</p>");
    p.write("site/new.html", "<p>new page</p>");
    let second = p.json(&["publish"])["deploy"].as_str().unwrap().to_string();
    assert_eq!(p.live("index.html"), b"<!doctype html><p>version two</p>");
    // The build is gone: rollback must not need it.
    std::fs::remove_dir_all(p.path("site")).unwrap();
    let out = p.json(&["rollback"]);
    assert_eq!(out["from"], second.as_str());
    assert_eq!(out["to"], first.as_str());
    assert_eq!(p.live("index.html"), v1);
    assert_eq!(p.manifest()["deploy"], first.as_str());
    assert!(
        !p.live_path("new.html").exists(),
        "a page the restored deploy lacks is gone"
    );
    let h = p.json(&["history"]);
    let deploys = h["deploys"].as_array().unwrap();
    assert_eq!(deploys.len(), 2);
    assert_eq!(deploys[0]["id"], second.as_str(), "newest first");
    assert_eq!(deploys[1]["current"], true);
    // And forward again, by name.
    p.json(&["rollback", &second]);
    assert_eq!(p.live("index.html"), b"<!doctype html><p>version two</p>");
    p.cmd().arg("verify").assert().success();
}

#[test]
fn rollback_errors() {
    let p = Project::new();
    p.cmd()
        .arg("rollback")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("nothing to roll back"));
    p.json(&["publish"]);
    p.cmd()
        .arg("rollback")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("has no parent"));
    p.cmd()
        .args(["rollback", "20200101T000000Z-abcdef"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "unknown deploy `20200101T000000Z-abcdef`",
        ));
}

#[test]
fn rollback_to_a_deploy_whose_objects_are_gone_is_refused() {
    let p = Project::new();
    let first = p.json(&["publish"])["deploy"].as_str().unwrap().to_string();
    let m1 = p.manifest();
    p.write_bytes("site/img/logo.png", &pseudo_random(2100, 7));
    p.json(&["publish"]);
    let gone = key_of(&m1, "img/logo.png");
    std::fs::remove_file(p.live_path(&gone)).unwrap();
    let before = snapshot(&p.path("published"));
    p.cmd()
        .args(["rollback", &first])
        .assert()
        .code(3)
        .stderr(predicate::str::contains(gone.as_str()));
    assert_eq!(snapshot(&p.path("published")), before, "nothing changed");
}

#[test]
fn verify_catches_a_tampered_object() {
    let p = Project::new();
    p.json(&["publish"]);
    let m = p.manifest();
    let css = key_of(&m, "css/app.css");
    let mut bytes = p.live(&css);
    bytes[0] ^= 0x20;
    p.write_bytes(&format!("published/{css}"), &bytes);
    p.cmd()
        .arg("verify")
        .assert()
        .code(1)
        .stdout(predicate::str::contains(css.as_str()).and(predicate::str::contains("tampered")));
    std::fs::remove_file(p.live_path("robots.txt")).unwrap();
    let out = p.cmd().args(["verify", "--json"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let keys: Vec<&str> = report["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["key"].as_str().unwrap())
        .collect();
    assert!(
        keys.contains(&"robots.txt") && keys.contains(&css.as_str()),
        "{keys:?}"
    );
}

#[test]
fn dry_run_and_plan_change_nothing() {
    let p = Project::new();
    p.cmd()
        .args(["publish", "--dry-run"])
        .assert()
        .success()
        .stdout(predicate::str::contains("dry run").and(predicate::str::contains("css/app.css")));
    p.cmd()
        .arg("plan")
        .assert()
        .success()
        .stdout(predicate::str::contains("upload:"));
    assert!(!p.path("published").exists());
}

#[test]
fn the_state_db_is_optional_and_rebuilt_from_the_target() {
    let p = Project::new();
    p.json(&["publish"]);
    // A corrupt state DB is moved aside and the run goes on.
    std::fs::write(
        p.path(".assetpub/state.db"),
        b"garbage garbage garbage garbage garbage garbage garbage",
    )
    .unwrap();
    std::fs::remove_file(p.path(".assetpub/state.db-wal")).ok();
    let out = p.cmd().args(["publish", "--json"]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("corrupt"));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        report["changed"], false,
        "the target's manifest says nothing changed"
    );
    let aside = std::fs::read_dir(p.path(".assetpub"))
        .unwrap()
        .flatten()
        .any(|e| {
            e.file_name()
                .to_string_lossy()
                .contains("state.db.corrupt-")
        });
    assert!(aside, "the corrupt file is kept");
    // A missing one too.
    std::fs::remove_dir_all(p.path(".assetpub")).unwrap();
    assert_eq!(p.json(&["publish"])["changed"], false);
}

#[test]
fn a_remote_manifest_that_is_not_ours_is_never_overwritten() {
    let p = Project::new();
    p.write("published/manifest.json", "{ this is not json");
    p.cmd().arg("publish").assert().code(1).stderr(
        predicate::str::contains("manifest.json").and(predicate::str::contains("refusing")),
    );
    assert_eq!(p.live("manifest.json"), b"{ this is not json");
    p.write(
        "published/manifest.json",
        r#"{"version": 9, "deploy": "x", "created": "y", "files": {}}"#,
    );
    p.cmd()
        .arg("publish")
        .assert()
        .code(1)
        .stderr(predicate::str::contains("newer"));
}

#[test]
fn config_errors_exit_2_with_location() {
    let p = Project::new();
    p.config("[source]\ndirs = [\"site\"\n");
    p.cmd()
        .arg("plan")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("publish.toml:2:"));
    p.config("[source]\ndirs = [\"site\"]\nmax_size = 1\n");
    p.cmd().arg("plan").assert().code(2).stderr(
        predicate::str::contains("publish.toml:3:1").and(predicate::str::contains("max_size")),
    );
    p.config("[source]\ndirs = 7\n");
    p.cmd()
        .arg("plan")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("publish.toml:2:"));
    std::fs::remove_file(p.path("publish.toml")).unwrap();
    p.cmd()
        .arg("plan")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("assetpub init"));
}

#[test]
fn validation_reports_every_problem_at_once_and_writes_nothing() {
    let p = Project::new();
    p.write_bytes("site/img/huge.png", &vec![0u8; 5000]);
    p.write_bytes("site/img/other.png", &vec![1u8; 6000]);
    p.write("site/notes.psd", "x");
    p.config("[source]\ndirs = [\"site\"]\nmax_file_size = \"4KB\"\nallowed_extensions = [\"html\", \"css\", \"js\", \"map\", \"png\", \"woff2\", \"txt\", \"ico\"]\n");
    let assert = p.cmd().arg("publish").assert().code(3);
    let err = String::from_utf8_lossy(&assert.get_output().stderr).into_owned();
    assert!(
        err.contains("huge.png") && err.contains("other.png"),
        "{err}"
    );
    assert!(
        err.contains("notes.psd") && err.contains("allowed_extensions"),
        "{err}"
    );
    assert!(!p.path("published").exists());
}

#[test]
fn missing_and_empty_sources_exit_3() {
    let p = Project::new();
    p.config("[source]\ndirs = [\"nope\"]\n");
    p.cmd()
        .arg("plan")
        .assert()
        .code(3)
        .stderr(predicate::str::contains("nope"));
    std::fs::create_dir_all(p.path("empty")).unwrap();
    p.config("[source]\ndirs = [\"empty\"]\n");
    p.cmd()
        .arg("plan")
        .assert()
        .code(3)
        .stderr(predicate::str::contains("no files collected"));
}

#[test]
fn earlier_source_dirs_win_and_hidden_files_are_skipped() {
    let p = Project::new();
    p.write("static/robots.txt", "User-agent: static\n");
    p.write("site/.env", "SECRET=1");
    p.write("site/.git/config", "x");
    p.write("site/.well-known/security.txt", "Contact: x");
    p.config("[source]\ndirs = [\"static\", \"site\"]\n");
    let out = p.cmd().args(["publish", "--json"]).output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("shadowed"));
    let m = p.manifest();
    assert_eq!(p.live("robots.txt"), b"User-agent: static\n");
    assert!(m["files"].get(".env").is_none() && m["files"].get(".git/config").is_none());
    assert_eq!(
        key_of(&m, ".well-known/security.txt"),
        ".well-known/security.txt"
    );
}

#[cfg(unix)]
#[test]
fn bad_names_and_symlinks_are_validation_errors() {
    use std::os::unix::ffi::OsStrExt;
    let p = Project::new();
    let outside = p.path("secret.txt");
    std::fs::write(&outside, "secret").unwrap();
    std::os::unix::fs::symlink(&outside, p.path("site/leak.txt")).unwrap();
    std::os::unix::fs::symlink(p.path("site/loop-a"), p.path("site/loop-b")).unwrap();
    std::os::unix::fs::symlink(p.path("site/loop-b"), p.path("site/loop-a")).unwrap();
    let bad = p
        .path("site")
        .join(std::ffi::OsStr::from_bytes(b"caf\xe9.css"));
    std::fs::write(bad, "x").unwrap();
    p.write("site/back\\slash.css", "x");
    let assert = p.cmd().arg("publish").assert().code(3);
    let err = String::from_utf8_lossy(&assert.get_output().stderr).into_owned();
    assert!(err.contains("leak.txt") && err.contains("outside"), "{err}");
    assert!(err.contains("loop-a") && err.contains("loop"), "{err}");
    assert!(err.contains("not valid UTF-8"), "{err}");
    assert!(err.contains("backslash"), "{err}");
    assert!(!p.path("published").exists());
    // A symlink that stays inside its source dir is fine.
    for f in [
        "site/leak.txt",
        "site/loop-a",
        "site/loop-b",
        "site/back\\slash.css",
    ] {
        std::fs::remove_file(p.path(f)).unwrap();
    }
    let bad = p
        .path("site")
        .join(std::ffi::OsStr::from_bytes(b"caf\xe9.css"));
    std::fs::remove_file(bad).unwrap();
    std::os::unix::fs::symlink(p.path("site/robots.txt"), p.path("site/robots2.txt")).unwrap();
    p.json(&["publish"]);
    let key = key_of(&p.manifest(), "robots2.txt");
    assert_eq!(p.live(&key), b"User-agent: *\n");
}

#[test]
fn init_writes_a_starter_config_once() {
    let p = Project::empty();
    p.cmd()
        .arg("init")
        .assert()
        .success()
        .stdout(predicate::str::contains("publish.toml"));
    let text = String::from_utf8(p.read("publish.toml")).unwrap();
    assert!(text.contains("[source]"));
    p.cmd()
        .arg("init")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("already exists"));
    p.cmd().args(["init", "--force"]).assert().success();
}

fn fields(v: &serde_json::Value) -> Vec<&str> {
    let mut keys: Vec<&str> = v
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {v}"))
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort();
    keys
}

/// The field names README.md documents for `--json`, exactly: a field added,
/// renamed or dropped fails here, so the README and the scripts that read
/// these documents are never surprised.
#[test]
fn json_documents_have_stable_fields() {
    const REPORT: &[&str] = &[
        "already_there",
        "changed",
        "changes",
        "deploy",
        "dry_run",
        "duration_ms",
        "files",
        "hashed",
        "header_updates",
        "headers",
        "invalidation",
        "kept_pages",
        "message",
        "parent",
        "preview",
        "redirect_objects",
        "redirects",
        "removed",
        "removed_redirects",
        "resent",
        "rule_warnings",
        "rules_changed",
        "stable_keys",
        "staticfiles",
        "target",
        "timings",
        "unchanged",
        "upload_bytes",
        "uploads",
    ];
    let p = Project::new();
    let plan = p.json(&["plan"]);
    assert_eq!(fields(&plan), REPORT);
    assert_eq!(
        fields(&plan["timings"]),
        ["hash_ms", "prepare_ms", "switch_ms", "walk_ms"]
    );
    assert_eq!(
        fields(&plan["uploads"][0]),
        ["bytes", "key", "logical", "reason"]
    );
    assert_eq!(fields(&plan["changes"][0]), ["logical", "reason"]);
    assert_eq!(
        fields(&plan["stable_keys"][0]),
        ["bytes", "copy_of", "key", "logical", "reason"]
    );
    let publish = p.json(&["publish"]);
    // `check`: null without `--check` (see tests/checks.rs).
    let mut with_check = REPORT.to_vec();
    with_check.insert(3, "check");
    assert_eq!(fields(&publish), with_check);
    assert_eq!(publish["check"], serde_json::Value::Null);
    assert!(publish["deploy"].is_string());
    let h = p.json(&["history"]);
    assert_eq!(fields(&h), ["current", "deploys", "target"]);
    assert_eq!(h["deploys"][0]["id"], publish["deploy"]);
    assert_eq!(
        fields(&h["deploys"][0]),
        [
            "bytes",
            "ci_run",
            "created",
            "current",
            "files",
            "git_commit",
            "id",
            "message",
            "parent",
            "uploaded"
        ]
    );
    p.write("site/robots.txt", "User-agent: *\nDisallow: /x\n");
    p.json(&["publish"]);
    let r = p.json(&["rollback"]);
    assert_eq!(
        fields(&r),
        [
            "changed",
            "check",
            "duration_ms",
            "from",
            "invalidation",
            "stable_keys",
            "staticfiles",
            "target",
            "to"
        ]
    );
    let pr = p.json(&["prune", "--dry-run"]);
    assert_eq!(
        fields(&pr),
        [
            "deleted_bytes",
            "deleted_deploys",
            "deleted_objects",
            "deleted_releases",
            "dry_run",
            "duration_ms",
            "kept_deploys",
            "target"
        ]
    );
    let v = p.json(&["verify"]);
    assert_eq!(
        fields(&v),
        [
            "deploy",
            "objects",
            "problems",
            "repaired",
            "target",
            "undone_switch"
        ]
    );
    assert_eq!(v["problems"], serde_json::json!([]));
    let n = p.json(&["nginx-config"]);
    assert_eq!(fields(&n), ["nginx_config"]);
    assert_eq!(fields(&Project::empty().json(&["init"])), ["config"]);
    // The README lists the same names.
    let readme = include_str!("../README.md");
    let section = &readme[readme
        .find("## JSON output")
        .expect("README has a JSON section")..];
    for name in REPORT
        .iter()
        .chain(&["kept_deploys", "deleted_objects", "problems", "git_commit"])
    {
        assert!(
            section.contains(&format!("`{name}`")),
            "README does not document `{name}`"
        );
    }
}

#[test]
fn the_step_summary_is_appended_when_asked_for() {
    let p = Project::new();
    let summary = p.path("summary.md");
    p.cmd()
        .arg("publish")
        .env("GITHUB_STEP_SUMMARY", &summary)
        .env("GITHUB_SHA", "0123456789abcdef")
        .assert()
        .success();
    let text = String::from_utf8(p.read("summary.md")).unwrap();
    assert!(
        text.contains("assetpub publish") && text.contains("index.html"),
        "{text}"
    );
    assert_eq!(p.manifest()["commit"], "0123456789abcdef");
}

#[test]
fn the_lock_is_released_and_a_held_lock_is_a_conflict() {
    let p = Project::new();
    p.json(&["publish"]);
    assert!(!p.path("published/.assetpub/lock").exists());
    let expires = (chrono_like_future()).to_string();
    p.write(
        "published/.assetpub/lock",
        &format!(r#"{{"owner":"ci","host":"runner-7","pid":42,"command":"publish","created":"2026-01-01T00:00:00Z","expires":"{expires}"}}"#),
    );
    p.write("site/about.html", "changed");
    p.cmd()
        .arg("publish")
        .assert()
        .code(4)
        .stderr(predicate::str::contains("runner-7"));
    p.cmd().args(["publish", "--break-lock"]).assert().success();
    // An expired lock is taken over without asking.
    p.write(
        "published/.assetpub/lock",
        r#"{"owner":"ci","host":"runner-7","pid":42,"command":"publish","created":"2020-01-01T00:00:00Z","expires":"2020-01-01T00:15:00Z"}"#,
    );
    p.write("site/about.html", "changed again");
    p.cmd().arg("publish").assert().success();
}

fn chrono_like_future() -> &'static str {
    "2999-01-01T00:00:00Z"
}

#[cfg(unix)]
#[test]
fn an_unreadable_file_is_named_and_special_files_are_skipped_with_a_warning() {
    use std::os::unix::fs::PermissionsExt;
    let p = Project::new();
    p.write("site/css/secret.css", "a{}");
    std::fs::set_permissions(
        p.path("site/css/secret.css"),
        std::fs::Permissions::from_mode(0o000),
    )
    .unwrap();
    let fifo = p.path("site/pipe.css");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    // root reads anything: run as nobody then, in a tree nobody may use.
    let root = std::process::Command::new("id").arg("-u").output().unwrap();
    let mut cmd = p.std_cmd();
    if String::from_utf8_lossy(&root.stdout).trim() == "0" {
        for (rel, ..) in snapshot(p.path("").as_path()) {
            let path = p.path(&rel);
            if !rel.ends_with("secret.css") && !rel.ends_with("pipe.css") {
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
            }
        }
        let mut dirs = vec![p.path("")];
        while let Some(d) = dirs.pop() {
            std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o777)).unwrap();
            for e in std::fs::read_dir(&d).unwrap().flatten() {
                if e.file_type().unwrap().is_dir() {
                    dirs.push(e.path());
                }
            }
        }
        let program = cmd.get_program().to_owned();
        let mut wrapped = std::process::Command::new("setpriv");
        wrapped
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .arg(program)
            .current_dir(p.path(""))
            .env("NO_COLOR", "1");
        cmd = wrapped;
    }
    let out = cmd
        .args(["publish"])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    // A file that cannot be read is an I/O failure, not bad input.
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("secret.css") && err.contains("ermission denied"),
        "{err}"
    );
    assert!(
        err.contains("pipe.css") && err.contains("not a regular file"),
        "{err}"
    );
    assert!(!p.path("published").exists());
}

/// An unreadable source file is an I/O failure: exit 1, as for any read or
/// write that fails, not 3 (bad input), with the file named.
///
/// The tests run as root, and root reads a mode-000 file anyway: what lets
/// it are the capabilities `CAP_DAC_OVERRIDE` and `CAP_DAC_READ_SEARCH`.
/// So the run drops those two (`setpriv` removes them from the bounding and
/// inheritable sets, and root's capabilities after `exec` come from those):
/// still uid 0, owner of the whole tree, but now the kernel applies the
/// file's mode bits to it too. The walk only needs the directories, so it
/// sees the file; hashing it is the first read, and it fails. Not as root,
/// mode 000 is enough and nothing is dropped.
#[cfg(unix)]
#[test]
fn an_unreadable_source_file_fails_the_run_as_io_naming_it() {
    use std::os::unix::fs::PermissionsExt;
    let p = Project::new();
    p.write("site/css/locked.css", "a{}");
    let locked = p.path("site/css/locked.css");
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o000)).unwrap();
    let mut cmd = p.std_cmd();
    if std::fs::read(&locked).is_ok() {
        let mut wrapped = std::process::Command::new("setpriv");
        wrapped
            .args([
                "--bounding-set=-dac_override,-dac_read_search",
                "--inh-caps=-dac_override,-dac_read_search",
                "--",
            ])
            .arg(cmd.get_program());
        if let Some(dir) = cmd.get_current_dir() {
            wrapped.current_dir(dir);
        }
        for (k, v) in cmd.get_envs() {
            match v {
                Some(v) => wrapped.env(k, v),
                None => wrapped.env_remove(k),
            };
        }
        cmd = wrapped;
    }
    let out = cmd
        .arg("publish")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run assetpub (as root: through setpriv, from util-linux)");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("error: cannot read `") && err.contains("locked.css`: Permission denied"),
        "{err}"
    );
    assert!(!p.path("published").exists(), "nothing written");
}

/// A page named like the manifest, kept at its name by a rule, was copied to
/// `manifest.json` before the switch: the switch then failed as a conflict,
/// and every later run refused the target because its manifest was the page.
#[test]
fn regression_a_stable_file_named_like_the_manifest_overwrote_it() {
    let p = Project::new();
    p.write("site/manifest.json", "{\"name\": \"a web app manifest\"}");
    p.write("site/.assetpub/lock", "{}");
    p.config(
        "[source]\ndirs = [\"site\"]\ninclude = [\"**\", \".assetpub/**\"]\n\
         [[rules]]\nmatch = \"manifest.json\"\nfingerprint = false\n\
         [[rules]]\nmatch = \".assetpub/**\"\nfingerprint = \"keep\"\n",
    );
    let assert = p.cmd().arg("publish").assert().code(3);
    let err = String::from_utf8_lossy(&assert.get_output().stderr).into_owned();
    assert!(
        err.contains(
            "`manifest.json` would be published at `manifest.json`, the key of assetpub's manifest"
        ),
        "{err}"
    );
    assert!(err.contains("`.assetpub/lock`"), "{err}");
    assert!(!p.path("published").exists(), "nothing was written");
    // Fingerprinted, as by default, it is just another file.
    p.config("[source]\ndirs = [\"site\"]\n");
    p.json(&["publish"]);
    assert_eq!(p.manifest()["version"], 1);
    let key = key_of(&p.manifest(), "manifest.json");
    assert!(regex_like(&key, "manifest.", ".json"), "{key}");
    p.write("site/about.html", "changed");
    p.json(&["publish"]);
}

#[test]
fn a_no_op_reuses_the_served_entries_only_while_nothing_that_shapes_them_changed() {
    let p = Project::new();
    // A reference to a file that is not collected: preparing warns about it.
    p.write(
        "site/css/extra.css",
        "a { background: url(missing.png); }\n",
    );
    p.age_sources();
    let first = p.json(&["publish"])["deploy"].as_str().unwrap().to_string();
    // The second run takes its entries from the served deploy, and still
    // says what preparing them said.
    p.cmd()
        .arg("publish")
        .assert()
        .success()
        .stdout(predicate::str::contains("no changes"))
        .stderr(predicate::str::contains("missing.png"));
    // A rule alone (same bytes): new headers, so a new deploy.
    p.config(
        "[source]\ndirs = [\"site\"]\n[[rules]]\nmatch = \"**/*.css\"\ncache_control = \"public, max-age=60\"\n",
    );
    let second = p.json(&["publish"])["deploy"]
        .as_str()
        .expect("a rule change deploys")
        .to_string();
    assert_eq!(
        p.manifest()["files"]["css/app.css"]["cache_control"],
        "public, max-age=60"
    );
    // Served deploy moved by a rollback: the same tree is a change again.
    p.json(&["rollback", &first]);
    let out = p.json(&["publish"]);
    assert_eq!(out["changed"], true, "{out}");
    // The same entries as `second`, most likely within the same second:
    // still a deploy of its own.
    assert_ne!(out["deploy"], second.as_str());
    assert_eq!(
        p.manifest()["files"]["css/app.css"]["cache_control"],
        "public, max-age=60"
    );
    p.cmd()
        .arg("publish")
        .assert()
        .success()
        .stdout(predicate::str::contains("no changes"));
    p.cmd().arg("verify").assert().success();
}

#[test]
fn include_and_exclude_globs_choose_what_is_collected() {
    let p = Project::new();
    p.write_bytes("site/design/logo.psd", &pseudo_random(500, 9));
    p.write("site/drafts/next.html", "<p>draft</p>");
    p.write("site/.well-known/security.txt", "Contact: x\n");
    p.write("site/.git/config", "[core]\n");
    p.config(
        r#"[source]
dirs = ["site"]
include = ["**/*", ".well-known/**"]
exclude = ["**/*.psd", "drafts/**", "**/*.map"]
"#,
    );
    p.json(&["publish"]);
    let m = p.manifest();
    let files = fields(&m["files"]);
    for gone in ["design/logo.psd", "drafts/next.html", "js/app.js.map"] {
        assert!(!files.contains(&gone), "{gone} is excluded: {files:?}");
    }
    assert!(files.contains(&".well-known/security.txt"), "{files:?}");
    assert!(!files.iter().any(|f| f.starts_with(".git")), "{files:?}");
    assert!(files.contains(&"css/app.css") && files.contains(&"index.html"));
    // Only what `include` names.
    p.config("[source]\ndirs = [\"site\"]\ninclude = [\"**/*.html\"]\n");
    p.json(&["publish"]);
    let m = p.manifest();
    let files = fields(&m["files"]);
    assert_eq!(files, ["about.html", "drafts/next.html", "index.html"]);
}

#[test]
fn diff_is_plan_and_init_speaks_json() {
    let p = Project::new();
    p.json(&["publish"]);
    p.write("site/about.html", "<p>about, again</p>");
    let plan = p.cmd().arg("plan").output().unwrap();
    let diff = p.cmd().arg("diff").output().unwrap();
    assert!(plan.status.success() && diff.status.success());
    assert_eq!(
        String::from_utf8_lossy(&plan.stdout),
        String::from_utf8_lossy(&diff.stdout)
    );
    assert!(String::from_utf8_lossy(&diff.stdout).contains("about.html"));
    p.cmd().args(["diff", "--exit-code"]).assert().code(1);

    let q = Project::empty();
    let out = q.json(&["init"]);
    let written = out["config"].as_str().expect("init --json names the file");
    assert!(written.ends_with("publish.toml"), "{out}");
    assert!(q.path("publish.toml").is_file());
}

#[test]
fn progress_is_a_plain_line_without_a_terminal_and_quiet_silences_it() {
    let p = Project::new();
    // Without a terminal the line comes every few seconds, and at the end
    // of each phase with -v.
    let out = p.cmd().args(["publish", "-v"]).output().unwrap();
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.lines()
            .any(|l| l.contains(" files, ") && l.contains("/s)")),
        "{err}"
    );
    assert!(!err.contains('\r') && !err.contains("\x1b["), "{err}");
    p.write("site/about.html", "<p>about, again</p>");
    let out = p.cmd().args(["publish", "-v", "-q"]).output().unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");
}

#[test]
fn deploys_carry_the_commit_and_run_of_gitlab_and_of_any_ci() {
    let p = Project::new();
    p.cmd()
        .arg("publish")
        .env("CI_COMMIT_SHA", "feedface")
        .env("CI_JOB_URL", "https://gitlab.example/site/-/jobs/77")
        .assert()
        .success();
    let m = p.manifest();
    assert_eq!(m["commit"], "feedface");
    assert_eq!(m["ci_run"], "https://gitlab.example/site/-/jobs/77");
    p.write("site/about.html", "<p>about, again</p>");
    p.cmd()
        .arg("publish")
        .env("ASSETPUB_COMMIT", "c0ffee")
        .env("ASSETPUB_CI_RUN", "jenkins #12")
        .assert()
        .success();
    let m = p.manifest();
    assert_eq!(m["commit"], "c0ffee");
    assert_eq!(m["ci_run"], "jenkins #12");
    let h = p.json(&["history"]);
    let newest = &h["deploys"][0];
    assert!(
        newest.to_string().contains("c0ffee"),
        "history shows the commit: {newest}"
    );
}

#[test]
fn plan_appends_a_step_summary_too() {
    let p = Project::new();
    p.json(&["publish"]);
    p.write("site/about.html", "<p>about, again</p>");
    let summary = p.path("summary.md");
    std::fs::write(&summary, "# earlier step\n").unwrap();
    p.cmd()
        .arg("plan")
        .env("GITHUB_STEP_SUMMARY", &summary)
        .assert()
        .success();
    let text = String::from_utf8(p.read("summary.md")).unwrap();
    assert!(text.starts_with("# earlier step\n"), "appended: {text}");
    assert!(
        text.contains("assetpub plan") && text.contains("about.html"),
        "{text}"
    );
}

#[test]
fn the_target_directory_and_state_db_inside_a_source_dir_are_never_collected() {
    let p = Project::new();
    p.config("[source]\ndirs = [\".\"]\n[target]\nurl = \"file://./out\"\n");
    let state = p.path("state.db");
    let state = state.to_str().unwrap();
    p.cmd()
        .args(["publish", "--state", state])
        .assert()
        .success();
    // The second run sees its first run's output and its own state DB in
    // the source dir: neither is published, so nothing changed.
    p.cmd()
        .args(["publish", "--state", state])
        .assert()
        .success()
        .stdout(predicate::str::contains("no changes"))
        .stderr(predicate::str::contains("is the target directory"));
    let m: serde_json::Value =
        serde_json::from_slice(&p.read("out/.assetpub/current/manifest.json")).unwrap();
    let files = fields(&m["files"]);
    assert!(
        files
            .iter()
            .all(|f| !f.starts_with("out/") && !f.starts_with("state.db")),
        "{files:?}"
    );
    assert!(files.contains(&"site/index.html"), "{files:?}");
}

#[test]
fn a_local_staticfiles_json_written_into_the_build_is_not_collected() {
    let p = Project::new();
    p.config(
        "[source]\ndirs = [\"site\"]\n[manifest]\ndjango = true\nlocal = \"site/staticfiles.json\"\n",
    );
    p.json(&["publish"]);
    assert!(p.path("site/staticfiles.json").is_file());
    p.cmd()
        .arg("publish")
        .assert()
        .success()
        .stdout(predicate::str::contains("no changes"));
    assert!(p.manifest()["files"]["staticfiles.json"].is_null());
}

/// Every file under `dir` with its bytes: equal means byte-identical.
fn tree(dir: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    snapshot(dir)
        .into_iter()
        .map(|(rel, ..)| {
            let path = dir.join(&rel);
            // The live release's symlink: where it points.
            let bytes = match std::fs::read_link(&path) {
                Ok(target) => target.to_string_lossy().into_owned().into_bytes(),
                Err(_) => std::fs::read(&path).expect("read"),
            };
            (rel, bytes)
        })
        .collect()
}

/// `dirs = ["published"]` with the default target, `file://./published`,
/// used to be accepted: each run published the last one's output again,
/// nested one level deeper. A source dir that is the target directory or
/// inside it, however it is spelled (`./published/`, `site/../published`,
/// a symlink, `--target`, an env's `url`), is refused naming both, before
/// the target or the state DB is touched.
#[test]
fn a_source_dir_that_is_the_target_or_inside_it_is_refused_naming_both() {
    let p = Project::new();
    p.json(&["publish"]);
    std::fs::create_dir_all(p.path("fresh")).unwrap();
    p.write("fresh/a.css", "a{}");
    #[cfg(unix)]
    std::os::unix::fs::symlink(p.path("published"), p.path("link")).unwrap();
    let published = tree(&p.path("published"));
    let state = tree(&p.path(".assetpub"));
    let mut cases = vec![
        (
            "[source]\ndirs = [\"published\"]\n",
            &[][..],
            "source dir `published` in `[source] dirs` is the target directory `published`, from the default target",
        ),
        (
            "[source]\ndirs = [\"site\", \"./published/\"]\n",
            &[][..],
            "source dir `./published/` in `[source] dirs` is the target directory `published`",
        ),
        (
            "[source]\ndirs = [\"site/../published/css\"]\n[target]\nurl = \"file://./published\"\n",
            &[][..],
            "is inside the target directory `published`, from `[target] url`",
        ),
        (
            "[source]\ndirs = [\"site\"]\n",
            &["--target", "file://site"][..],
            "source dir `site` in `[source] dirs` is the target directory `site`, from `--target`",
        ),
        (
            "[source]\ndirs = [\"fresh\"]\n[env.local.target]\nurl = \"file://fresh\"\n",
            &[][..],
            "is the target directory `fresh`, from `[env.local.target] url`",
        ),
    ];
    if cfg!(unix) {
        cases.push((
            "[source]\ndirs = [\"link\"]\n",
            &[][..],
            "source dir `link` in `[source] dirs` is the target directory `published`",
        ));
    }
    for (config, args, says) in cases {
        p.config(config);
        for command in ["publish", "plan"] {
            p.cmd()
                .args(args)
                .arg(command)
                .assert()
                .code(2)
                .stdout("")
                .stderr(predicate::str::contains(says))
                .stderr(predicate::str::contains("hint: point `[source] dirs`"));
        }
        assert_eq!(tree(&p.path("published")), published, "{config}");
        assert_eq!(tree(&p.path(".assetpub")), state, "{config}: state DB");
        assert_eq!(tree(&p.path("fresh")).len(), 1, "{config}");
    }
}

/// A source dir holding an earlier publish's output (its manifest and
/// `.assetpub/deploys/`) is a published copy, not a build: refused too,
/// whichever target this run has, so that the output of one config cannot
/// become the input of the next.
#[test]
fn a_source_dir_holding_an_earlier_publish_is_refused() {
    let p = Project::new();
    p.json(&["publish"]);
    let published = tree(&p.path("published"));
    let state = tree(&p.path(".assetpub"));
    for config in [
        "[source]\ndirs = [\"published\"]\n[target]\nurl = \"file://./mirror\"\n",
        "[source]\ndirs = [\"site\", \"published\"]\n[target]\nurl = \"s3://my-bucket/site\"\n",
    ] {
        p.config(config);
        p.cmd()
            .arg("publish")
            .assert()
            .code(2)
            .stderr(predicate::str::contains(
                "source dir `published` in `[source] dirs` holds an earlier publish's output (`manifest.json` and `.assetpub/deploys/`)",
            ));
        assert!(!p.path("mirror").exists(), "{config}");
        assert_eq!(tree(&p.path("published")), published, "{config}");
        assert_eq!(tree(&p.path(".assetpub")), state, "{config}: state DB");
    }
}

fn write_pages(p: &Project, pages: &[String], version: u32) {
    for page in pages {
        p.write(
            &format!("site/{page}"),
            &format!("<!doctype html><p>{page}, version {version}</p>\n").repeat(8),
        );
    }
}

/// Where `.assetpub/current` points.
fn live_release(p: &Project) -> String {
    std::fs::read_link(p.path("published/.assetpub/current"))
        .expect("a live release")
        .to_string_lossy()
        .into_owned()
}

/// A publish killed while it builds its release (after every object is
/// uploaded, before the rename that switches) leaves the old release live
/// and whole: `current` points at it, each of its pages holds its bytes.
/// The unfinished release is never served, a rerun publishes, and `prune`
/// deletes it.
#[cfg(unix)]
#[test]
fn a_publish_killed_while_building_its_release_leaves_the_old_release_live_and_whole() {
    let p = Project::empty();
    p.config("[source]\ndirs = [\"site\"]\n");
    // Enough pages that building the release takes a moment to catch.
    let pages: Vec<String> = (0..1500).map(|i| format!("p/{i}.html")).collect();
    write_pages(&p, &pages, 1);
    let first = p.json(&["publish"])["deploy"].as_str().unwrap().to_string();
    let release = format!("published/.assetpub/releases/{first}");
    assert_eq!(live_release(&p), format!("releases/{first}"));
    let before = tree(&p.path(&release));
    assert!(before.len() > pages.len(), "pages and the manifest");

    write_pages(&p, &pages, 2);
    let releases = p.path("published/.assetpub/releases");
    let staging = || {
        std::fs::read_dir(&releases)
            .unwrap()
            .flatten()
            .any(|e| e.file_name().to_string_lossy().starts_with(".staging-"))
    };
    let mut child = p
        .std_cmd()
        .args(["publish", "-q"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while !staging() {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the publish ended before it was seen building its release"
        );
        assert!(std::time::Instant::now() < deadline, "no release was built");
        std::thread::sleep(std::time::Duration::from_micros(200));
    }
    child.kill().unwrap();
    child.wait().unwrap();

    assert_eq!(live_release(&p), format!("releases/{first}"));
    assert_eq!(
        tree(&p.path(&release)),
        before,
        "the old release is untouched"
    );
    assert_eq!(p.manifest()["deploy"], first.as_str());
    for page in &pages {
        assert_eq!(
            p.live(page),
            format!("<!doctype html><p>{page}, version 1</p>\n")
                .repeat(8)
                .into_bytes(),
            "{page}"
        );
    }
    p.cmd().arg("verify").assert().success();
    assert!(staging(), "the unfinished release is left aside");

    // A rerun publishes; prune deletes the unfinished release, and the
    // release of the deploy it drops, never the live one.
    let second = p.json(&["publish"])["deploy"].as_str().unwrap().to_string();
    assert_eq!(live_release(&p), format!("releases/{second}"));
    assert_eq!(
        p.live("p/7.html"),
        "<!doctype html><p>p/7.html, version 2</p>\n"
            .repeat(8)
            .into_bytes()
    );
    let pruned = p.json(&[
        "prune",
        "--keep",
        "1",
        "--min-age",
        "0s",
        "--max-deletes",
        "100000",
    ]);
    let deleted: Vec<&str> = pruned["deleted_releases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap())
        .collect();
    assert_eq!(deleted.len(), 2, "{deleted:?}");
    assert!(deleted.contains(&first.as_str()), "{deleted:?}");
    assert!(
        deleted.iter().any(|r| r.starts_with(".staging-")),
        "{deleted:?}"
    );
    let left: Vec<String> = std::fs::read_dir(&releases)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(left, [second]);
    p.cmd().arg("verify").assert().success();
}

/// A rollback to a deploy whose release is still there is one rename of
/// `.assetpub/current`: nothing else under the target changes.
#[cfg(unix)]
#[test]
fn a_rollback_to_a_release_still_there_is_one_rename() {
    let p = Project::new();
    let first = p.json(&["publish"])["deploy"].as_str().unwrap().to_string();
    let v1 = p.read("site/index.html");
    p.write("site/index.html", "<!doctype html><p>version two</p>");
    std::fs::remove_file(p.path("site/about.html")).unwrap();
    p.json(&["publish"]);
    let inodes = |p: &Project| -> Vec<(String, u64, std::time::SystemTime)> {
        use std::os::unix::fs::MetadataExt;
        snapshot(&p.path("published"))
            .into_iter()
            .filter(|(rel, ..)| rel != ".assetpub/current")
            .map(|(rel, mtime, _)| {
                let ino = std::fs::symlink_metadata(p.path("published").join(&rel))
                    .unwrap()
                    .ino();
                (rel, ino, mtime)
            })
            .collect()
    };
    let before = inodes(&p);
    let out = p.json(&["rollback"]);
    assert_eq!(out["to"], first.as_str());
    assert_eq!(live_release(&p), format!("releases/{first}"));
    assert_eq!(inodes(&p), before, "only `.assetpub/current` changed");
    assert_eq!(p.live("index.html"), v1);
    assert!(p.live("about.html").starts_with(b"<!doctype html><p>about"));
    p.cmd().arg("verify").assert().success();
}
