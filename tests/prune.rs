//! prune on the directory target: what it keeps, what it deletes, and its
//! safety limits.

use predicates::prelude::*;

use crate::cli::{Project, pseudo_random, snapshot};

fn keys_of(m: &serde_json::Value) -> Vec<String> {
    m["files"]
        .as_object()
        .unwrap()
        .values()
        .map(|e| {
            e["object"]
                .as_str()
                .or(e["key"].as_str())
                .unwrap()
                .to_string()
        })
        .collect()
}

/// Five deploys, each changing the logo.
fn five_deploys(p: &Project) -> Vec<serde_json::Value> {
    let mut manifests = Vec::new();
    for i in 0..5u64 {
        p.write_bytes(
            "site/img/logo.png",
            &pseudo_random(2000 + i as usize, 100 + i),
        );
        p.json(&["publish"]);
        manifests.push(p.manifest());
    }
    manifests
}

#[test]
fn prune_keeps_the_newest_deploys_and_what_they_reference() {
    let p = Project::new();
    let ms = five_deploys(&p);
    // Nothing is old enough under the default min-age of 7 days.
    let out = p.json(&["prune", "--keep", "2"]);
    assert_eq!(out["deleted_objects"], serde_json::json!([]));
    assert_eq!(out["deleted_deploys"], serde_json::json!([]));

    let dry = p.json(&["prune", "--keep", "2", "--min-age", "0s", "--dry-run"]);
    let would: Vec<String> = serde_json::from_value(dry["deleted_objects"].clone()).unwrap();
    let before = snapshot(&p.path("published"));
    assert!(!would.is_empty());
    assert_eq!(
        snapshot(&p.path("published")),
        before,
        "a dry run deletes nothing"
    );

    let out = p.json(&["prune", "--keep", "2", "--min-age", "0s"]);
    assert_eq!(out["deleted_deploys"].as_array().unwrap().len(), 3);
    for key in keys_of(&ms[3]).iter().chain(keys_of(&ms[4]).iter()) {
        assert!(p.live_path(key).exists(), "kept deploy needs {key}");
    }
    let old_logo = ms[0]["files"]["img/logo.png"]["key"].as_str().unwrap();
    assert!(!p.live_path(old_logo).exists());
    assert!(!p.live_path(&format!("{old_logo}.gz")).exists());
    p.cmd().arg("verify").assert().success();
    // The kept parent can still be rolled back to.
    p.json(&["rollback"]);
    p.cmd().arg("verify").assert().success();
    // A pruned deploy cannot, and says so.
    let gone = ms[0]["deploy"].as_str().unwrap();
    p.cmd()
        .args(["rollback", gone])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("unknown deploy"));
}

#[test]
fn prune_respects_max_deletes_and_never_touches_foreign_keys() {
    let p = Project::new();
    five_deploys(&p);
    p.write("published/uploads/user-photo.jpg", "not ours");
    p.write(
        "published/js/vendor.abcdefabcdef.js",
        "named like ours, but the hash is not its content",
    );
    let before = snapshot(&p.path("published"));
    p.cmd()
        .args([
            "prune",
            "--keep",
            "1",
            "--min-age",
            "0s",
            "--max-deletes",
            "2",
        ])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("--max-deletes"));
    assert_eq!(
        snapshot(&p.path("published")),
        before,
        "nothing deleted past the limit"
    );
    p.json(&["prune", "--keep", "1", "--min-age", "0s"]);
    assert!(p.live_path("uploads/user-photo.jpg").exists());
    assert!(p.live_path("js/vendor.abcdefabcdef.js").exists());
    p.cmd().arg("verify").assert().success();
}

/// Puts `bytes` into the directory target under a fingerprinted key no
/// manifest names, as a run that never switched the manifest leaves it.
fn write_orphan(p: &Project, bytes: &[u8]) -> String {
    let hash = blake3::hash(bytes).to_hex().to_string();
    let key = format!("img/orphan.{}.png", &hash[..12]);
    p.write_bytes(&format!("published/{key}"), bytes);
    key
}

#[test]
fn prune_deletes_objects_of_interrupted_runs() {
    let p = Project::new();
    p.json(&["publish"]);
    // An object uploaded by a run that never switched the manifest, from a
    // machine whose state DB is gone.
    let key = write_orphan(&p, b"orphan bytes");
    let out = p.json(&["prune", "--min-age", "0s"]);
    assert_eq!(out["deleted_objects"], serde_json::json!([key]));
    assert!(!p.live_path(&key).exists());
}

/// Many deploys and rollbacks on S3, pruned as a daily job would: every
/// deploy prune keeps stays restorable and whole, and keys assetpub did not
/// write are never touched.
#[test]
fn pruning_a_long_history_on_s3_never_breaks_a_kept_deploy() {
    use crate::s3::S3Site;
    use crate::support::S3Server;
    let site = S3Site::new(S3Server::moto(), "prune-many");
    // Someone else's files in the same prefix, one with a fingerprint-like name.
    site.s3.put(
        &site.key("foreign.0123456789ab.css"),
        b"not ours",
        "text/css",
    );
    site.s3
        .put(&site.key("uploads/user.png"), b"not ours", "image/png");
    let mut deploys: Vec<String> = Vec::new();
    for i in 0..36u64 {
        if i % 6 == 5 {
            // Every sixth step rolls back three deploys.
            let to = deploys[deploys.len() - 3].clone();
            site.json(&["rollback", &to]);
        } else {
            site.p
                .write_bytes("site/img/logo.png", &pseudo_random(2000, 5000 + i));
            site.p.write(
                "site/index.html",
                &format!("<!doctype html><p>deploy {i}</p>"),
            );
            let out = site.json(&["publish"]);
            deploys.push(out["deploy"].as_str().unwrap().to_string());
        }
        if i % 9 == 8 {
            let report = site.json(&["prune", "--keep", "4", "--min-age", "0s"]);
            let kept: Vec<String> = report["kept_deploys"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d.as_str().unwrap().to_string())
                .collect();
            assert!(kept.len() <= 5, "{report}");
            for d in &kept {
                let bytes = site
                    .s3
                    .get(&site.key(&format!(".assetpub/deploys/{d}.json")))
                    .unwrap_or_else(|| panic!("kept deploy {d} lost its record"));
                let m: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
                let live = site.manifest();
                for (logical, e) in m["files"].as_object().unwrap() {
                    let object = e["object"].as_str().or(e["key"].as_str()).unwrap();
                    // A page written straight that the live deploy has as
                    // it is: its stable key is its copy, and its object is
                    // made when a deploy replaces it.
                    if crate::s3::written_straight(e) && live["files"][logical] == *e {
                        continue;
                    }
                    assert!(
                        site.s3.head(&site.key(object)).is_some(),
                        "kept deploy {d}: `{object}` ({logical}) was deleted"
                    );
                }
            }
            site.assert_manifest_consistent();
        }
    }
    // Every kept deploy can be rolled back to, and verifies.
    let history = site.json(&["history"]);
    let ids: Vec<String> = history["deploys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap().to_string())
        .collect();
    assert!(ids.len() <= 5, "{history}");
    for id in &ids {
        site.json(&["rollback", id]);
        assert_eq!(site.json(&["verify"])["problems"], serde_json::json!([]));
    }
    assert!(site.s3.get(&site.key("foreign.0123456789ab.css")).is_some());
    assert!(site.s3.get(&site.key("uploads/user.png")).is_some());
}

#[test]
fn prune_takes_keep_and_min_age_from_publish_toml() {
    let p = Project::new();
    let ms = five_deploys(&p);
    // The defaults (keep 10, 7 days) delete nothing here.
    let out = p.json(&["prune", "--dry-run"]);
    assert_eq!(out["deleted_deploys"], serde_json::json!([]));
    p.config("[source]\ndirs = [\"site\"]\n[prune]\nkeep = 2\nmin_age = \"0s\"\n");
    let out = p.json(&["prune"]);
    let deleted: Vec<String> = serde_json::from_value(out["deleted_deploys"].clone()).unwrap();
    let mut oldest: Vec<String> = ms[..3]
        .iter()
        .map(|m| m["deploy"].as_str().unwrap().to_string())
        .collect();
    let mut deleted_sorted = deleted.clone();
    deleted_sorted.sort();
    oldest.sort();
    assert_eq!(deleted_sorted, oldest, "{out}");
    // Flags win over the file.
    p.config("[source]\ndirs = [\"site\"]\n[prune]\nkeep = 1\nmin_age = \"30d\"\n");
    let out = p.json(&["prune", "--min-age", "0s", "--dry-run"]);
    assert_eq!(
        out["deleted_deploys"],
        serde_json::json!([ms[3]["deploy"].as_str().unwrap()])
    );
}

#[test]
fn prune_holds_the_deploy_lock() {
    let p = Project::new();
    five_deploys(&p);
    p.write(
        "published/.assetpub/lock",
        r#"{"owner":"ci","host":"runner-9","pid":42,"command":"publish","created":"2026-01-01T00:00:00Z","expires":"2999-01-01T00:00:00Z"}"#,
    );
    let before = snapshot(&p.path("published"));
    p.cmd()
        .args(["prune", "--keep", "1", "--min-age", "0s"])
        .assert()
        .code(4)
        .stderr(predicate::str::contains("runner-9"));
    assert_eq!(snapshot(&p.path("published")), before, "nothing deleted");
    // Its own lock is gone when it is done.
    std::fs::remove_file(p.path("published/.assetpub/lock")).unwrap();
    p.json(&["prune", "--keep", "1", "--min-age", "0s"]);
    assert!(!p.path("published/.assetpub/lock").exists());
}

/// The key of a probe of conditional writes that its run did not get to
/// delete (interrupted between its writes and its delete) is deleted by
/// the next prune, unless it is young enough to be another run's probe
/// under way.
#[test]
fn prune_deletes_a_probe_key_an_interrupted_run_left() {
    use crate::s3::S3Site;
    let site = S3Site::new(crate::support::S3Server::moto(), "probeleft");
    site.json(&["publish"]);
    let key = site.key(".assetpub/probe-0123456789abcdef");
    site.s3.put(
        &key,
        b"conditional write probe\n",
        "application/octet-stream",
    );
    // Just written: kept under the default min-age.
    let out = site.json(&["prune"]);
    assert_eq!(out["deleted_objects"], serde_json::json!([]));
    assert!(site.s3.head(&key).is_some());
    let out = site.json(&["prune", "--min-age", "0s"]);
    assert_eq!(
        out["deleted_objects"],
        serde_json::json!([".assetpub/probe-0123456789abcdef"])
    );
    assert!(site.s3.head(&key).is_none());
    assert!(site.s3.head(&site.key("manifest.json")).is_some());
}

#[test]
fn an_interrupted_runs_object_younger_than_min_age_is_kept() {
    let p = Project::new();
    p.json(&["publish"]);
    let key = write_orphan(&p, b"fresh orphan bytes");
    // A run may be uploading it right now: kept under the 7-day default.
    let out = p.json(&["prune"]);
    assert_eq!(out["deleted_objects"], serde_json::json!([]));
    assert!(p.live_path(&key).exists());
    let out = p.json(&["prune", "--min-age", "1h"]);
    assert_eq!(out["deleted_objects"], serde_json::json!([]));
    // Once old enough, it goes.
    let old = std::time::SystemTime::now() - std::time::Duration::from_secs(2 * 3600);
    std::fs::File::options()
        .write(true)
        .open(p.live_path(&key))
        .unwrap()
        .set_modified(old)
        .unwrap();
    let out = p.json(&["prune", "--min-age", "1h"]);
    assert_eq!(out["deleted_objects"], serde_json::json!([key]));
}
