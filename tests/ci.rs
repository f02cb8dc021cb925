//! Running from CI: a fresh runner with no state DB, a stale state DB, and
//! the GitHub Actions recipe of the README, against moto.

use crate::cli::{Project, pseudo_random};
use crate::s3::S3Site;
use crate::support::s3client::S3Client;
use crate::support::{Proxy, S3Server};

/// A second machine: its own checkout of the same site and its own (empty)
/// state DB, publishing to the same bucket.
fn other_machine(site: &S3Site) -> S3Site {
    let p = Project::new();
    let other = S3Site {
        proxy: Proxy::start(&site.server.endpoint),
        s3: S3Client::new(site.server, &site.bucket),
        p,
        server: site.server,
        bucket: site.bucket.clone(),
    };
    other.configure("[source]\ndirs = [\"site\"]\n", "");
    other
}

/// A second machine publishes a one-image change: it uploads only that
/// image, never lists, and makes at most `beyond` other requests.
fn a_fresh_runner_uploads_only_the_difference(server: &'static S3Server, beyond: usize) -> S3Site {
    let a = S3Site::new(server, "fresh");
    let d1 = a.json(&["publish"])["deploy"].as_str().unwrap().to_string();
    // Same build on another machine (new mtimes, no state DB), one image changed.
    let b = other_machine(&a);
    b.p.write_bytes("site/img/logo.png", &pseudo_random(2100, 42));
    let out = b.json(&["publish"]);
    assert_eq!(out["parent"], d1.as_str());
    let puts = b.object_puts();
    assert_eq!(puts.len(), 1, "{puts:?}");
    assert!(puts[0].contains("/img/logo."));
    assert_eq!(
        b.proxy.count_matching("GET", "list-type"),
        0,
        "{:?}",
        b.proxy.requests()
    );
    assert!(
        !b.proxy
            .requests()
            .iter()
            .any(|(m, t)| m == "GET" && !t.contains("manifest.json") && !t.contains(".assetpub/")),
        "no GET but the manifest and assetpub's records: {:?}",
        b.proxy.requests()
    );
    let all = b.proxy.requests();
    assert!(all.len() <= 1 + beyond, "{} requests: {all:?}", all.len());
    b.assert_manifest_consistent();
    b
}

#[test]
fn a_fresh_runner_uploads_only_the_difference_and_never_lists() {
    // Beyond the one upload, at most 6 requests: the manifest read, the
    // lock, the mark that starts the switch, the deploy record, the switch,
    // the lock's release. The store's answer on conditional writes comes
    // with the manifest, and the lock goes with one conditional DELETE.
    let b = a_fresh_runner_uploads_only_the_difference(S3Server::moto(), 6);
    assert_eq!(b.proxy.count("DELETE"), 1, "{:?}", b.proxy.requests());
    assert_eq!(b.proxy.count("GET"), 1, "{:?}", b.proxy.requests());
}

#[test]
fn a_fresh_runner_on_a_store_that_ignores_conditions_reads_three_times_more() {
    // Garage ignores If-None-Match and If-Match: the lock is read before it
    // is taken and before it is deleted, and the manifest before the mark.
    let b = a_fresh_runner_uploads_only_the_difference(S3Server::garage(), 9);
    let gets: Vec<String> = b
        .proxy
        .requests()
        .into_iter()
        .filter(|(m, _)| m == "GET")
        .map(|(_, t)| t)
        .collect();
    assert_eq!(gets.len(), 4, "{gets:?}");
    assert_eq!(
        gets.iter().filter(|t| t.contains(".assetpub/lock")).count(),
        2,
        "{gets:?}"
    );
}

#[test]
fn a_stale_state_db_is_reconciled_from_the_remote_manifest() {
    let a = S3Site::new(S3Server::moto(), "stale");
    a.json(&["publish"]);
    let b = other_machine(&a);
    b.p.write("site/about.html", "<!doctype html><p>about, from b</p>");
    let d2 = b.json(&["publish"])["deploy"].as_str().unwrap().to_string();
    // a's state DB still believes its own deploy is current.
    a.p.write("site/robots.txt", "User-agent: *\nDisallow: /private\n");
    a.proxy.reset_counts();
    let out = a.run(&["publish", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("state DB was behind"), "{err}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        v["parent"],
        d2.as_str(),
        "builds on the deploy that is live"
    );
    // a's build differs from d2 in about.html (a's own) and robots.txt.
    let changed: Vec<&str> = v["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["logical"].as_str().unwrap())
        .collect();
    assert_eq!(changed, ["about.html", "robots.txt"]);
    a.assert_manifest_consistent();
}

/// The `run:` commands of the GitHub Actions recipe in examples/ci, which
/// the README shows verbatim.
fn recipe_commands() -> Vec<String> {
    let yaml = include_str!("../examples/ci/github-actions.yml");
    let readme = include_str!("../README.md");
    let body: String = yaml
        .lines()
        .skip_while(|l| l.starts_with('#'))
        .map(|l| format!("{l}\n"))
        .collect();
    assert!(
        readme.contains(&body),
        "README.md must show examples/ci/github-actions.yml as it is"
    );
    yaml.lines()
        .filter_map(|l| l.trim().strip_prefix("- run: "))
        .map(String::from)
        .collect()
}

#[test]
fn the_readme_github_actions_recipe_works_as_written() {
    let commands = recipe_commands();
    let assetpub: Vec<&String> = commands
        .iter()
        .filter(|c| c.starts_with("assetpub "))
        .collect();
    assert!(assetpub.len() >= 2, "{commands:?}");
    let site = S3Site::new(S3Server::moto(), "recipe");
    let summary = site.p.path("step-summary.md");
    // What a GitHub-hosted runner provides, as the steps see it.
    let github_env = [
        ("GITHUB_ACTIONS", "true"),
        ("GITHUB_SHA", "0123456789abcdef0123456789abcdef01234567"),
        ("GITHUB_SERVER_URL", "https://github.com"),
        ("GITHUB_REPOSITORY", "example/site"),
        ("GITHUB_RUN_ID", "4242"),
    ];
    let bin = assert_cmd::cargo::cargo_bin!("assetpub");
    let path = format!(
        "{}:{}",
        bin.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    for command in &assetpub {
        let mut c = site.p.std_cmd();
        let mut sh = std::process::Command::new("bash");
        sh.args(["-eo", "pipefail", "-c", command])
            .current_dir(site.p.path(""))
            .envs(
                c.get_envs()
                    .filter_map(|(k, v)| v.map(|v| (k.to_owned(), v.to_owned()))),
            )
            .env("PATH", &path)
            .env("GITHUB_STEP_SUMMARY", &summary)
            .envs(github_env);
        for (k, v) in c.get_envs() {
            if v.is_none() {
                sh.env_remove(k);
            }
        }
        site.server
            .apply_env_with_endpoint(&mut sh, &site.proxy.endpoint);
        c.arg("--version");
        let out = sh.output().unwrap();
        assert!(
            out.status.success(),
            "`{command}` failed: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
    }
    let m = site.manifest();
    assert_eq!(m["commit"], "0123456789abcdef0123456789abcdef01234567");
    assert_eq!(
        m["ci_run"],
        "https://github.com/example/site/actions/runs/4242"
    );
    let text = std::fs::read_to_string(&summary).unwrap();
    assert!(text.contains("### assetpub publish"), "{text}");
    assert!(text.contains(m["deploy"].as_str().unwrap()), "{text}");
}
