//! Drift: pages changed by hand, objects lost or damaged, records deleted.
//! `verify` finds each and names the fix; `verify --repair` puts back what
//! the target or the local build still holds, on a directory and on S3.

use crate::cli::Project;
use crate::s3::S3Site;
use crate::support::S3Server;

fn key_of(m: &serde_json::Value, logical: &str) -> String {
    m["files"][logical]["key"].as_str().unwrap().to_string()
}

/// `verify` with its exit code and JSON report.
fn verify(p: &Project, args: &[&str]) -> (i32, serde_json::Value) {
    let out = p
        .cmd()
        .args(["verify", "--json"])
        .args(args)
        .output()
        .unwrap();
    let report = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap(), report)
}

fn problem_keys(report: &serde_json::Value) -> Vec<String> {
    report["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["key"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn verify_repair_puts_back_pages_objects_and_the_deploy_record() {
    let p = Project::new();
    let deploy = p.json(&["publish"])["deploy"].as_str().unwrap().to_string();
    let m = p.manifest();
    let css = key_of(&m, "css/app.css");
    let good_css = p.read(&format!("published/{css}"));
    let good_index = p.live("index.html");
    // A page edited in place by hand (on a directory target that also
    // changes its object, which the page is a hard link to), an object
    // lost, a record deleted.
    std::fs::write(p.live_path("index.html"), "<p>changed by hand</p>").unwrap();
    std::fs::remove_file(p.path(&format!("published/{css}"))).unwrap();
    let record = format!(".assetpub/deploys/{deploy}.json");
    std::fs::remove_file(p.path(&format!("published/{record}"))).unwrap();

    // verify finds each, and names the fix.
    let (code, report) = verify(&p, &[]);
    assert_eq!(code, 1, "{report}");
    let keys = problem_keys(&report);
    let want = ["index.html".to_string(), css.clone(), record.clone()];
    for k in &want {
        assert!(keys.contains(k), "{k} not found: {report}");
    }
    assert!(
        report["hint"]
            .as_str()
            .is_some_and(|h| h.contains("assetpub verify --repair")),
        "{report}"
    );
    let human = p.cmd().arg("verify").output().unwrap();
    assert!(
        String::from_utf8_lossy(&human.stdout).contains("hint: run `assetpub verify --repair`"),
        "{}",
        String::from_utf8_lossy(&human.stdout)
    );

    let (code, report) = verify(&p, &["--repair"]);
    assert_eq!(code, 0, "{report}");
    let repaired: Vec<String> = report["repaired"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap().to_string())
        .collect();
    let mut keys = keys;
    keys.sort();
    assert_eq!(repaired, keys, "every problem repaired: {report}");
    assert_eq!(report["problems"], serde_json::json!([]));
    assert_eq!(p.live("index.html"), good_index);
    assert_eq!(p.read(&format!("published/{css}")), good_css);
    assert!(p.path(&format!("published/{record}")).is_file());
    assert!(
        !p.path("published/.assetpub/lock").exists(),
        "lock released"
    );
    assert_eq!(verify(&p, &[]).0, 0);
}

#[test]
fn an_object_the_build_no_longer_holds_stays_a_problem_naming_the_fix() {
    let p = Project::new();
    p.json(&["publish"]);
    let m = p.manifest();
    let logo = key_of(&m, "img/logo.png");
    std::fs::remove_file(p.path(&format!("published/{logo}"))).unwrap();
    // The build moved on: its logo has other bytes.
    p.write_bytes("site/img/logo.png", b"another logo");
    let (code, report) = verify(&p, &["--repair"]);
    assert_eq!(code, 1, "{report}");
    assert_eq!(problem_keys(&report), vec![logo.clone()], "{report}");
    assert_eq!(report["repaired"], serde_json::json!([]), "{report}");
    assert!(
        report["hint"]
            .as_str()
            .is_some_and(|h| h.contains("rollback")),
        "{report}"
    );
    assert!(!p.path(&format!("published/{logo}")).exists());
}

#[test]
fn verify_repair_on_s3_rewrites_a_page_replaced_by_hand() {
    let site = S3Site::new(S3Server::moto(), "repair");
    site.json(&["publish"]);
    let good = site.s3.get(&site.key("about.html")).unwrap();
    site.s3
        .put(&site.key("about.html"), b"<p>by hand</p>", "text/html");
    let out = site.run(&["verify", "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(problem_keys(&report), vec!["about.html"], "{report}");
    let report = site.json(&["verify", "--repair"]);
    assert_eq!(report["repaired"], serde_json::json!(["about.html"]));
    assert_eq!(report["problems"], serde_json::json!([]));
    assert_eq!(site.s3.get(&site.key("about.html")).unwrap(), good);
    site.assert_manifest_consistent();
}

/// The newcomer's repro: publish, change a page by hand, publish again.
/// On a directory target the second publish refuses, naming the page and
/// the fix, instead of reporting no changes; after the fix it is a no-op.
#[test]
fn a_page_changed_by_hand_stops_the_next_publish_on_a_directory() {
    let p = Project::new();
    p.json(&["publish"]);
    assert_eq!(p.json(&["publish"])["changed"], false);
    std::fs::write(p.live_path("about.html"), "<p>changed by hand</p>").unwrap();
    let out = p.cmd().arg("publish").output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("changed since it went live") && err.contains("`about.html`"),
        "{err}"
    );
    assert!(
        err.contains("hint: run `assetpub verify --repair`"),
        "{err}"
    );
    // plan says so too, without failing.
    let out = p.cmd().arg("plan").output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("`about.html`"));
    let (code, report) = verify(&p, &["--repair"]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(p.live("about.html"), b"<!doctype html><p>about</p>");
    assert_eq!(p.json(&["publish"])["changed"], false);
}
