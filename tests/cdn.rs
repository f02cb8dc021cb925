//! CDN invalidation after publish and rollback: CloudFront on moto (the
//! invalidations read back from the server), and the `command` provider on
//! the directory target.

use std::process::Output;

use crate::cli::Project;
use crate::s3::{PREFIX, S3Site};
use crate::support::S3Server;
use crate::support::cloudfront::CloudFront;

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The `[cdn]` table for a distribution, after `[source]`.
fn cloudfront_site(name: &str, cdn_extra: &str) -> (S3Site, CloudFront, String) {
    let site = S3Site::new(S3Server::moto(), name);
    let cf = CloudFront::new(site.server);
    let distribution = cf.create_distribution(&site.bucket);
    site.configure(
        &format!(
            "[source]\ndirs = [\"site\"]\n[cdn]\nprovider = \"cloudfront\"\ndistribution_id = \"{distribution}\"\n{cdn_extra}\n"
        ),
        "",
    );
    (site, cf, distribution)
}

fn rooted(keys: &[&str]) -> Vec<String> {
    keys.iter().map(|k| format!("/{PREFIX}/{k}")).collect()
}

/// The invalidation a report names, checked against what the server holds.
fn sent_paths(cf: &CloudFront, distribution: &str, report: &serde_json::Value) -> Vec<String> {
    let inv = &report["invalidation"];
    assert_eq!(inv["provider"], "cloudfront", "{report}");
    assert_eq!(inv["distribution_id"], distribution);
    assert!(inv["error"].is_null(), "{inv}");
    let id = inv["id"].as_str().expect("an invalidation id");
    let paths = cf.invalidation_paths(distribution, id);
    let mut reported: Vec<String> = inv["paths"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap().to_string())
        .collect();
    reported.sort();
    assert_eq!(paths, reported, "the report shows what was sent");
    paths
}

#[test]
fn cloudfront_invalidates_exactly_the_changed_stable_keys_on_moto() {
    let (site, cf, distribution) = cloudfront_site("cdn-exact", "");
    let p = &site.p;
    p.age_sources();

    // First deploy: every stable key is new (a cache may hold its 404).
    let first = site.json(&["publish"]);
    assert_eq!(
        sent_paths(&cf, &distribution, &first),
        rooted(&[
            "",
            "about.html",
            "favicon.ico",
            "index.html",
            "manifest.json",
            "robots.txt"
        ])
    );
    // Through AWS_ENDPOINT_URL, which points at the counting proxy.
    let calls: Vec<String> = site
        .proxy
        .requests()
        .into_iter()
        .filter(|(m, t)| m == "POST" && t.contains("/invalidation"))
        .map(|(_, t)| t)
        .collect();
    assert_eq!(
        calls,
        [format!(
            "/2020-05-31/distribution/{distribution}/invalidation"
        )]
    );
    assert_eq!(cf.invalidation_ids(&distribution).len(), 1);

    // Nothing changed, or only a dry run: nothing is sent.
    let same = site.json(&["publish"]);
    assert_eq!(same["changed"], false);
    assert!(same["invalidation"].is_null());
    p.write("site/about.html", "<!doctype html><p>about, again</p>");
    let dry = site.json(&["publish", "--dry-run"]);
    assert!(dry["invalidation"].is_null());
    let plan = site.json(&["plan"]);
    assert!(plan["invalidation"].is_null());
    assert_eq!(cf.invalidation_ids(&distribution).len(), 1);

    // A fingerprinted file alone changes nothing a cache holds by name but
    // the manifest.
    p.write("site/about.html", "<!doctype html><p>about</p>");
    p.write("site/js/app.js", "console.log('v2');\n");
    let js = site.json(&["publish"]);
    assert_eq!(
        sent_paths(&cf, &distribution, &js),
        rooted(&["manifest.json"])
    );

    // A changed page and a removed one.
    p.write("site/about.html", "<!doctype html><p>about us, v2</p>");
    std::fs::remove_file(p.path("site/robots.txt")).unwrap();
    let pages = site.json(&["publish"]);
    let d3 = pages["deploy"].as_str().unwrap().to_string();
    assert_eq!(
        sent_paths(&cf, &distribution, &pages),
        rooted(&["about.html", "manifest.json", "robots.txt"])
    );

    // Rolling back changes the same names back.
    let back = site.json(&["rollback"]);
    assert_eq!(back["changed"], true);
    assert_eq!(
        sent_paths(&cf, &distribution, &back),
        rooted(&["about.html", "manifest.json", "robots.txt"])
    );
    // To the current deploy: nothing to do, nothing sent.
    let current = site.json(&["rollback", back["to"].as_str().unwrap()]);
    assert_eq!(current["changed"], false);
    assert!(current["invalidation"].is_null());
    assert_eq!(cf.invalidation_ids(&distribution).len(), 4);

    // The human output says what was sent.
    let out = site.run(&["rollback", &d3]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!("on distribution `{distribution}`"))
            && text.contains("3 paths: /site/about.html, /site/manifest.json, /site/robots.txt"),
        "{text}"
    );
}

#[test]
fn more_paths_than_max_paths_are_one_wildcard_and_the_cdn_endpoint_setting_wins() {
    let (site, cf, distribution) = cloudfront_site(
        "cdn-wildcard",
        &format!(
            "max_paths = 3\nendpoint = \"{}\"",
            S3Server::moto().endpoint
        ),
    );
    let report = site.json(&["publish"]);
    assert_eq!(
        sent_paths(&cf, &distribution, &report),
        [format!("/{PREFIX}/*")]
    );
    assert_eq!(report["invalidation"]["wildcard"], true);
    assert_eq!(report["invalidation"]["changed_paths"], 6);
    // `[cdn] endpoint` sent it straight to the server, not through
    // AWS_ENDPOINT_URL (the proxy).
    assert!(
        !site
            .proxy
            .requests()
            .iter()
            .any(|(_, t)| t.contains("/distribution/")),
        "{:?}",
        site.proxy.requests()
    );

    // Three paths are not more than three.
    site.p.write("site/about.html", "<!doctype html><p>new</p>");
    site.p
        .write("site/robots.txt", "User-agent: *\nDisallow: /x\n");
    let report = site.json(&["publish"]);
    assert_eq!(
        sent_paths(&cf, &distribution, &report),
        rooted(&["about.html", "manifest.json", "robots.txt"])
    );
}

#[test]
fn a_failed_cloudfront_invalidation_exits_1_and_says_the_deploy_is_live() {
    let (site, cf, distribution) = cloudfront_site("cdn-fail", "");
    site.configure(
        "[source]\ndirs = [\"site\"]\n[cdn]\nprovider = \"cloudfront\"\ndistribution_id = \"ENOSUCHDIST\"\n",
        "",
    );
    let out = site.run(&["publish", "--json"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    let report: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("the report is printed all the same");
    let deploy = report["deploy"].as_str().unwrap();
    assert!(
        err.contains("CDN invalidation failed")
            && err.contains("ENOSUCHDIST")
            && err.contains("NoSuchDistribution")
            && err.contains(&format!("deploy `{deploy}` is live")),
        "{err}"
    );
    assert!(!err.contains(&site.server.secret_key));
    assert!(
        report["invalidation"]["error"]
            .as_str()
            .unwrap()
            .contains("NoSuchDistribution")
    );
    assert_eq!(site.manifest()["deploy"], deploy, "the deploy went live");
    assert!(cf.invalidation_ids(&distribution).is_empty());
}

/// A `[cdn] command` that logs each call (deploy, then the paths) to
/// `calls.log`, prints to stdout (which must not reach assetpub's), and
/// fails when `fail` exists.
fn command_project(cdn_extra: &str) -> Project {
    let p = Project::new();
    p.write(
        "bin/purge",
        "#!/bin/sh\necho \"purging $#\"\nif [ -e fail ]; then echo 'zone not found' >&2; exit 3; fi\necho \"$ASSETPUB_DEPLOY $*\" >> calls.log\n",
    );
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p.path("bin/purge"), std::fs::Permissions::from_mode(0o755)).unwrap();
    p.config(&format!(
        "[source]\ndirs = [\"site\"]\n[cdn]\nprovider = \"command\"\ncommand = [\"./bin/purge\", \"--zone\", \"z\"]\n{cdn_extra}\n"
    ));
    p.age_sources();
    p
}

fn calls(p: &Project) -> Vec<String> {
    std::fs::read_to_string(p.path("calls.log"))
        .unwrap_or_default()
        .lines()
        .map(String::from)
        .collect()
}

#[test]
fn a_cdn_command_gets_the_changed_paths_as_arguments() {
    let p = command_project("");
    // Run from elsewhere: the command is relative to publish.toml.
    let elsewhere = tempfile::tempdir().unwrap();
    let config = p.path("publish.toml").display().to_string();
    let publish = |args: &[&str]| -> serde_json::Value {
        let out = p
            .cmd()
            .current_dir(elsewhere.path())
            .args(["--config", &config, "--json"])
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        serde_json::from_slice(&out.stdout).expect("only JSON on stdout")
    };

    let first = publish(&["publish"]);
    let d1 = first["deploy"].as_str().unwrap();
    assert_eq!(
        calls(&p),
        [format!(
            "{d1} --zone z / /about.html /favicon.ico /index.html /manifest.json /robots.txt"
        )]
    );
    assert_eq!(first["invalidation"]["provider"], "command");
    assert!(first["invalidation"]["id"].is_null());
    assert_eq!(first["invalidation"]["paths"].as_array().unwrap().len(), 6);

    publish(&["publish"]);
    p.write("site/about.html", "<!doctype html><p>v2</p>");
    publish(&["publish", "--dry-run"]);
    publish(&["plan"]);
    assert_eq!(calls(&p).len(), 1, "no change and dry runs call nothing");

    let second = publish(&["publish"]);
    let d2 = second["deploy"].as_str().unwrap();
    let back = publish(&["rollback"]);
    assert_eq!(back["to"], d1);
    assert_eq!(
        calls(&p)[1..],
        [
            format!("{d2} --zone z /about.html /manifest.json"),
            format!("{d1} --zone z /about.html /manifest.json"),
        ]
    );
}

#[test]
fn a_cdn_command_gets_the_wildcard_past_max_paths() {
    let p = command_project("max_paths = 5");
    let first = p.json(&["publish"]);
    let d1 = first["deploy"].as_str().unwrap();
    assert_eq!(calls(&p), [format!("{d1} --zone z /*")]);
    assert_eq!(first["invalidation"]["changed_paths"], 6);
    assert_eq!(first["invalidation"]["wildcard"], true);
}

#[test]
fn a_failing_cdn_command_exits_1_and_says_the_deploy_is_live() {
    let p = command_project("");
    p.write("fail", "");
    let out = p.cmd().arg("publish").output().unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    let deploy = p.manifest()["deploy"].as_str().unwrap().to_string();
    assert!(
        err.contains("CDN invalidation failed")
            && err.contains("exited with status 3")
            && err.contains("zone not found")
            && err.contains(&format!("deploy `{deploy}` is live at")),
        "{err}"
    );
    assert!(err.contains("/about.html"), "names the paths: {err}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!("published {deploy}")) && text.contains("FAILED"),
        "{text}"
    );

    // The next run has nothing to publish, so nothing to invalidate either.
    std::fs::remove_file(p.path("fail")).unwrap();
    let again = p.json(&["publish"]);
    assert_eq!(again["changed"], false);
    assert!(calls(&p).is_empty());

    // A program that is not there is named.
    p.config(
        "[source]\ndirs = [\"site\"]\n[cdn]\nprovider = \"command\"\ncommand = [\"./bin/no-such-purge\"]\n",
    );
    p.write("site/about.html", "<!doctype html><p>v3</p>");
    let out = p.cmd().arg("publish").output().unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("no-such-purge") && err.contains("is live"),
        "{err}"
    );
}
