//! Previews (`publish --preview NAME`) on S3: their own manifest, deploy
//! records and lock under `_previews/NAME/`, the live site untouched, what
//! the target stores copied instead of sent, and deletion whole, at expiry
//! or on demand.

use std::collections::BTreeMap;
use std::process::{Command, Stdio};

use crate::cli::{Project, pseudo_random};
use crate::s3::{PREFIX, S3Site};
use crate::support::S3Server;
use crate::support::proxy::Exchange;
use crate::support::s3client::S3Client;

const BASE_URL: &str = "[preview]\nbase_url = \"https://preview.example.org/{name}/\"\n";

/// A site on `server` whose publish.toml has a `[preview]` table.
fn site(server: &'static S3Server, name: &str) -> S3Site {
    let s = S3Site::new(server, name);
    s.configure(&format!("[source]\ndirs = [\"site\"]\n{BASE_URL}"), "");
    s
}

/// Another machine publishing the same bucket: its own checkout and an
/// empty state DB.
fn other_machine(site: &S3Site) -> S3Site {
    let other = S3Site {
        proxy: crate::support::Proxy::start(&site.server.endpoint),
        s3: S3Client::new(site.server, &site.bucket),
        p: Project::new(),
        server: site.server,
        bucket: site.bucket.clone(),
    };
    other.configure(&format!("[source]\ndirs = [\"site\"]\n{BASE_URL}"), "");
    other
}

/// The bytes of an object, short enough to read in a failed comparison.
fn digest(bytes: &[u8]) -> String {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    bytes.hash(&mut h);
    format!("{} bytes, {:016x}", bytes.len(), h.finish())
}

/// Every key of the bucket outside `_previews/`, with its bytes: the live
/// site, its records and its lock.
fn live_snapshot(site: &S3Site) -> BTreeMap<String, String> {
    let previews = format!("{PREFIX}/_previews/");
    site.s3
        .keys()
        .into_iter()
        .filter(|k| !k.starts_with(&previews))
        .map(|k| {
            let bytes = site.s3.get(&k).expect("listed key");
            (k, digest(&bytes))
        })
        .collect()
}

/// Every key of preview `name`, with its bytes.
fn preview_snapshot(site: &S3Site, name: &str) -> BTreeMap<String, String> {
    let prefix = format!("{PREFIX}/_previews/{name}/");
    site.s3
        .keys()
        .into_iter()
        .filter(|k| k.starts_with(&prefix))
        .map(|k| {
            let bytes = site.s3.get(&k).expect("listed key");
            (k, digest(&bytes))
        })
        .collect()
}

fn preview_manifest(site: &S3Site, name: &str) -> serde_json::Value {
    let bytes = site
        .s3
        .get(&site.key(&format!("_previews/{name}/manifest.json")))
        .expect("the preview's manifest.json");
    serde_json::from_slice(&bytes).unwrap()
}

/// Every object preview `name`'s manifest names is there, with its size
/// and Content-Type.
fn assert_preview_consistent(site: &S3Site, name: &str) {
    let m = preview_manifest(site, name);
    for (logical, e) in m["files"].as_object().unwrap() {
        let key = e["key"].as_str().unwrap();
        for key in [e["object"].as_str().unwrap_or(key), key] {
            let stat = site
                .s3
                .head(&site.key(&format!("_previews/{name}/{key}")))
                .unwrap_or_else(|| panic!("{logical}: `{key}` is missing from preview {name}"));
            assert_eq!(stat.size, e["size"].as_u64().unwrap(), "{logical}: {key}");
            assert_eq!(
                stat.content_type.as_deref(),
                e["content_type"].as_str(),
                "{logical}: {key}"
            );
        }
    }
}

/// The requests that change something (not GET, HEAD or a listing).
fn writes(site: &S3Site) -> Vec<Exchange> {
    site.proxy
        .exchanges()
        .into_iter()
        .filter(|x| !matches!(x.method.as_str(), "GET" | "HEAD"))
        .collect()
}

/// Uploads of bytes: PUTs that are not server-side copies, to keys outside
/// assetpub's records and manifests.
fn uploads(site: &S3Site) -> Vec<String> {
    site.proxy
        .exchanges()
        .into_iter()
        .filter(|x| x.method == "PUT" && x.header("x-amz-copy-source").is_none())
        .map(|x| x.path().to_string())
        .filter(|p| !p.contains("/.assetpub/") && !p.ends_with("/manifest.json"))
        .collect()
}

fn copies(site: &S3Site) -> Vec<String> {
    site.proxy
        .exchanges()
        .into_iter()
        .filter(|x| x.method == "PUT" && x.header("x-amz-copy-source").is_some())
        .map(|x| x.path().to_string())
        .collect()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn a_preview_copies_what_the_live_site_stores_and_leaves_it_untouched() {
    let s = site(S3Server::moto(), "preview");
    let live = s.json(&["publish"]);
    let before = live_snapshot(&s);
    s.p.write_bytes("site/img/logo.png", &pseudo_random(2100, 42));
    s.proxy.reset_counts();
    let out = s.json(&["publish", "--preview", "pr-7"]);
    let p = &out["preview"];
    assert_eq!(p["name"], "pr-7");
    assert_eq!(p["url"], "https://preview.example.org/pr-7/");
    let m = preview_manifest(&s, "pr-7");
    assert_eq!(p["deploy"], m["deploy"]);
    assert_eq!(out["deploy"], m["deploy"]);
    assert_ne!(m["deploy"], live["deploy"]);
    // Expires a week after its deploy, and says so in its manifest.
    let created = chrono::DateTime::parse_from_rfc3339(m["created"].as_str().unwrap()).unwrap();
    let expires = chrono::DateTime::parse_from_rfc3339(m["expires"].as_str().unwrap()).unwrap();
    let ttl = (expires - created).num_seconds();
    assert!((7 * 86400 - 2..=7 * 86400).contains(&ttl), "{ttl}");
    assert_eq!(p["expires"], m["expires"]);
    // Only the changed image's bytes were sent; every other object was
    // copied from the live site's.
    let sent = uploads(&s);
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert!(sent[0].contains("/_previews/pr-7/img/logo."), "{sent:?}");
    assert!(!copies(&s).is_empty());
    assert!(p["reused"]["objects"].as_u64().unwrap() >= 5, "{p}");
    assert_eq!(out["upload_bytes"], 2100);
    // Nothing was written outside the preview.
    let own = format!("/{}/{PREFIX}/_previews/pr-7/", s.bucket);
    for x in writes(&s) {
        assert!(x.path().starts_with(&own), "{} {}", x.method, x.target);
    }
    assert_eq!(live_snapshot(&s), before, "the live site changed");
    assert_preview_consistent(&s, "pr-7");
    assert!(s.s3.head(&s.key("_previews/pr-7/.assetpub/lock")).is_none());
    assert_eq!(s.manifest()["deploy"], live["deploy"]);

    // The fields README.md documents, exactly.
    let fields = |v: &serde_json::Value| {
        let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    };
    assert_eq!(fields(p), ["deploy", "expires", "name", "reused", "url"]);
    assert_eq!(fields(&p["reused"]), ["bytes", "objects"]);
    let listed = s.json(&["history", "--previews"]);
    assert_eq!(fields(&listed), ["previews", "target"]);
    assert_eq!(
        fields(&listed["previews"][0]),
        ["created", "deploy", "expired", "expires", "name", "url"]
    );
    let pruned = s.json(&["prune", "--preview", "pr-7", "--dry-run"]);
    assert_eq!(
        fields(&pruned),
        [
            "deleted_bytes",
            "deleted_objects",
            "dry_run",
            "duration_ms",
            "previews",
            "target"
        ]
    );
    assert_eq!(
        fields(&pruned["previews"][0]),
        ["bytes", "deploy", "expires", "name", "objects"]
    );
    let readme = include_str!("../README.md");
    let section = &readme[readme.find("## JSON output").unwrap()..];
    for name in [
        "preview", "reused", "expires", "expired", "previews", "objects",
    ] {
        assert!(section.contains(&format!("`{name}`")), "README: `{name}`");
    }

    // Published again with nothing changed: nothing to do.
    let again = s.json(&["publish", "--preview", "pr-7"]);
    assert_eq!(again["changed"], false, "{again}");
    assert_eq!(again["preview"]["deploy"], m["deploy"]);
    assert_eq!(
        again["preview"]["expires"], m["expires"],
        "a no-op keeps the expiry"
    );
    let text = s.run(&["publish", "--preview", "pr-7"]);
    let text = String::from_utf8_lossy(&text.stdout).into_owned();
    assert!(
        text.contains("preview pr-7: https://preview.example.org/pr-7/"),
        "{text}"
    );
}

/// A preview's first run that asks the store whether it enforces
/// conditional writes with a key of its own (`--break-lock` does) writes
/// that key under the preview too.
#[test]
fn a_previews_probe_of_conditional_writes_stays_in_the_preview() {
    let live = site(S3Server::moto(), "previewprobe");
    live.json(&["publish"]);
    let before = live_snapshot(&live);
    // A runner whose state DB knows nothing of the store yet.
    let s = other_machine(&live);
    s.json(&["publish", "--preview", "pr-9", "--break-lock"]);
    let own = format!("/{}/{PREFIX}/_previews/pr-9/", s.bucket);
    let w = writes(&s);
    let probes = format!("{own}.assetpub/probe-");
    assert_eq!(
        w.iter().filter(|x| x.path().starts_with(&probes)).count(),
        2,
        "the probe's two creates: {w:?}"
    );
    // (A batch delete names its keys in its body, not its path.)
    for x in w.iter().filter(|x| x.method != "POST") {
        assert!(x.path().starts_with(&own), "{} {}", x.method, x.target);
    }
    assert_eq!(live_snapshot(&s), before, "the live site changed");
    assert!(s.s3.keys().iter().all(|k| !k.contains("/.assetpub/probe-")));
}

#[test]
fn a_fresh_runner_copies_from_the_live_site_and_from_other_previews() {
    let a = site(S3Server::moto(), "fresh-preview");
    a.json(&["publish"]);
    a.p.write_bytes("site/img/new.png", &pseudo_random(5000, 77));
    a.json(&["publish", "--preview", "pr-1"]);
    // Another machine, no state DB: its build has the live site's files
    // and pr-1's new image.
    let b = other_machine(&a);
    b.p.write_bytes("site/img/new.png", &pseudo_random(5000, 77));
    let out = b.json(&["publish", "--preview", "pr-2"]);
    assert_eq!(uploads(&b), Vec::<String>::new(), "nothing is sent again");
    let from_pr1 = b
        .proxy
        .exchanges()
        .into_iter()
        .filter(|x| {
            x.header("x-amz-copy-source")
                .is_some_and(|s| s.contains("_previews/pr-1/img/new."))
        })
        .count();
    assert_eq!(from_pr1, 1, "the new image is copied from pr-1");
    assert_eq!(out["upload_bytes"], 0);
    assert_preview_consistent(&b, "pr-2");
}

#[test]
fn a_live_file_under_previews_is_refused_before_anything_is_written() {
    let s = site(S3Server::moto(), "claims-preview");
    s.p.write("site/_previews/pr-1/index.html", "<!doctype html><p>x</p>");
    let out = s.run(&["publish"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("`_previews/pr-1/index.html`"), "{err}");
    assert!(err.contains("where previews live"), "{err}");
    assert!(s.s3.keys().is_empty(), "{:?}", s.s3.keys());
}

#[test]
fn a_bad_preview_name_or_a_directory_target_is_refused() {
    let s = site(S3Server::moto(), "names-preview");
    for bad in ["PR-1", "pr_1", "../x", ""] {
        let out = s.run(&["publish", "--preview", bad]);
        assert_eq!(out.status.code(), Some(3), "{bad}: {}", stderr(&out));
        assert!(
            stderr(&out).contains(&format!("invalid preview name `{bad}`")),
            "{}",
            stderr(&out)
        );
    }
    let out = s.run(&["prune", "--preview", "Pr1"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert_eq!(s.proxy.total(), 0, "nothing was read or written");
    let p = Project::new();
    p.config("[source]\ndirs = [\"site\"]\n[target]\nurl = \"file://./published\"\n");
    let out = p
        .cmd()
        .args(["publish", "--preview", "pr-1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("previews need an S3 target"),
        "{}",
        stderr(&out)
    );
    assert!(!p.path("published").exists());
}

#[test]
fn prune_previews_deletes_exactly_the_expired_previews() {
    let s = site(S3Server::moto(), "expire-preview");
    s.json(&["publish"]);
    s.p.write(
        "site/about.html",
        "<!doctype html><p>about, short-lived</p>",
    );
    s.json(&["publish", "--preview", "pr-old", "--ttl", "1s"]);
    s.p.write("site/about.html", "<!doctype html><p>about, kept</p>");
    s.json(&["publish", "--preview", "pr-new"]);
    let live = live_snapshot(&s);
    let kept = preview_snapshot(&s, "pr-new");
    let old = preview_snapshot(&s, "pr-old");
    assert!(old.len() >= 10, "{:?}", old.keys());
    std::thread::sleep(std::time::Duration::from_millis(2100));

    // A preview whose manifest is not assetpub's is skipped, with a
    // warning, and never deleted.
    let hostile = s.key("_previews/pr-bad/manifest.json");
    s.s3.put(&hostile, b"<html>not a manifest</html>", "text/html");
    let out = s.run(&["history", "--previews"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("skipping preview `pr-bad`"),
        "{}",
        stderr(&out)
    );
    let listed = s.json(&["history", "--previews"]);
    let rows = listed["previews"].as_array().unwrap();
    assert_eq!(rows.len(), 2, "{listed}");
    assert_eq!(rows[0]["name"], "pr-new");
    assert_eq!(rows[0]["expired"], false);
    assert_eq!(rows[0]["url"], "https://preview.example.org/pr-new/");
    assert_eq!(rows[1]["name"], "pr-old");
    assert_eq!(rows[1]["expired"], true);

    let dry = s.json(&["prune", "--previews", "--dry-run"]);
    assert_eq!(dry["previews"].as_array().unwrap().len(), 1, "{dry}");
    assert_eq!(dry["previews"][0]["name"], "pr-old");
    assert_eq!(dry["deleted_objects"], old.len() as u64);
    assert_eq!(
        preview_snapshot(&s, "pr-old"),
        old,
        "a dry run deletes nothing"
    );

    let out = s.run(&["prune", "--previews", "--max-deletes", "3"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("nothing was deleted"),
        "{}",
        stderr(&out)
    );
    assert_eq!(preview_snapshot(&s, "pr-old"), old);

    let done = s.json(&["prune", "--previews"]);
    assert_eq!(done["deleted_objects"], old.len() as u64, "{done}");
    assert!(s.s3.head(&hostile).is_some(), "not assetpub's: left alone");
    s.s3.delete(&hostile);
    assert!(preview_snapshot(&s, "pr-old").is_empty());
    assert_eq!(preview_snapshot(&s, "pr-new"), kept);
    assert_eq!(live_snapshot(&s), live);
    let listed = s.json(&["history", "--previews"]);
    assert_eq!(listed["previews"].as_array().unwrap().len(), 1, "{listed}");
}

#[test]
fn prune_preview_deletes_one_now_but_not_under_a_publish() {
    let s = site(S3Server::moto(), "close-preview");
    s.json(&["publish"]);
    s.json(&["publish", "--preview", "pr-3"]);
    s.json(&["publish", "--preview", "pr-4"]);
    let live = live_snapshot(&s);
    let other = preview_snapshot(&s, "pr-4");
    // A run of another machine holds pr-3's lock.
    let lock = serde_json::json!({
        "owner": "ci", "host": "elsewhere", "pid": 1, "command": "publish",
        "created": chrono::Utc::now().to_rfc3339(),
        "expires": (chrono::Utc::now() + chrono::Duration::minutes(5)).to_rfc3339(),
    });
    let lock_key = s.key("_previews/pr-3/.assetpub/lock");
    s.s3.put(&lock_key, lock.to_string().as_bytes(), "application/json");
    let held = preview_snapshot(&s, "pr-3");
    let out = s.run(&["prune", "--preview", "pr-3"]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(stderr(&out).contains("lock is held by"), "{}", stderr(&out));
    assert_eq!(
        preview_snapshot(&s, "pr-3"),
        held,
        "nothing deleted under a held lock"
    );

    s.s3.delete(&lock_key);
    let out = s.json(&["prune", "--preview", "pr-3"]);
    assert_eq!(out["previews"][0]["name"], "pr-3");
    assert!(preview_snapshot(&s, "pr-3").is_empty());
    assert_eq!(preview_snapshot(&s, "pr-4"), other);
    assert_eq!(live_snapshot(&s), live);
    // Again, for a PR closed twice, or one that never had a preview.
    let again = s.json(&["prune", "--preview", "pr-3"]);
    assert_eq!(again["deleted_objects"], 0);
}

#[test]
fn the_live_sites_prune_never_deletes_a_previews_objects() {
    let s = site(S3Server::moto(), "prune-live-preview");
    s.json(&["publish"]);
    s.json(&["publish", "--preview", "pr-5"]);
    let preview = preview_snapshot(&s, "pr-5");
    // The live site moves on from every object the preview holds copies of.
    for f in ["img/bg.png", "img/logo.png", "fonts/f.woff2", "favicon.ico"] {
        s.p.write_bytes(&format!("site/{f}"), &pseudo_random(1000, 500));
    }
    s.p.write("site/js/app.js", "console.log('moved on');\n");
    s.json(&["publish"]);
    let pruned = s.json(&["prune", "--keep", "0", "--min-age", "0s"]);
    assert!(
        !pruned["deleted_objects"].as_array().unwrap().is_empty(),
        "the live prune deleted nothing: {pruned}"
    );
    assert_eq!(preview_snapshot(&s, "pr-5"), preview);
    assert_preview_consistent(&s, "pr-5");
}

#[test]
fn two_previews_published_at_once_do_not_interfere() {
    let s = site(S3Server::moto(), "two-previews");
    s.json(&["publish"]);
    let live = live_snapshot(&s);
    let b = other_machine(&s);
    s.p.write("site/about.html", "<!doctype html><p>about, from a</p>");
    b.p.write("site/about.html", "<!doctype html><p>about, from b</p>");
    for i in 0..20 {
        s.p.write_bytes(&format!("site/img/a{i}.png"), &pseudo_random(3000, 300 + i));
        b.p.write_bytes(&format!("site/img/b{i}.png"), &pseudo_random(3000, 600 + i));
    }
    let spawn = |site: &S3Site, name: &str| {
        let mut c: Command = site.cmd();
        c.args(["publish", "--preview", name, "--json"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (ca, cb) = (spawn(&s, "pr-a"), spawn(&b, "pr-b"));
    for (child, name) in [(ca, "pr-a"), (cb, "pr-b")] {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{name}: {}", stderr(&out));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["preview"]["deploy"], preview_manifest(&s, name)["deploy"]);
    }
    assert_preview_consistent(&s, "pr-a");
    assert_preview_consistent(&s, "pr-b");
    let a = preview_manifest(&s, "pr-a");
    let bm = preview_manifest(&s, "pr-b");
    assert!(a["files"]["img/a0.png"].is_object() && a["files"]["img/b0.png"].is_null());
    assert!(bm["files"]["img/b0.png"].is_object() && bm["files"]["img/a0.png"].is_null());
    let about = |name: &str| {
        s.s3.get(&s.key(&format!("_previews/{name}/about.html")))
            .unwrap()
    };
    assert_eq!(about("pr-a"), b"<!doctype html><p>about, from a</p>");
    assert_eq!(about("pr-b"), b"<!doctype html><p>about, from b</p>");
    assert_eq!(live_snapshot(&s), live);
}

/// The `assetpub` steps of examples/ci/github-actions-preview.yml, by job,
/// with `${{ github.event.number }}` as GitHub substitutes it.
fn workflow_steps(number: &str) -> Vec<(String, String)> {
    let yaml = include_str!("../examples/ci/github-actions-preview.yml");
    let readme = include_str!("../README.md");
    let body: String = yaml
        .lines()
        .skip_while(|l| l.starts_with('#'))
        .map(|l| format!("{l}\n"))
        .collect();
    assert!(
        readme.contains(&body),
        "README.md must show examples/ci/github-actions-preview.yml as it is"
    );
    let mut job = String::new();
    let mut out = Vec::new();
    for line in yaml.lines() {
        if let Some(name) = line.strip_prefix("  ").and_then(|l| l.strip_suffix(':'))
            && !name.starts_with(' ')
        {
            job = name.to_string();
        }
        if let Some(cmd) = line.trim().strip_prefix("- run: ")
            && cmd.starts_with("assetpub ")
        {
            let cmd = cmd.replace("${{ github.event.number }}", number);
            out.push((job.clone(), cmd));
        }
    }
    out
}

#[test]
fn the_preview_workflow_works_as_written() {
    let steps = workflow_steps("42");
    let jobs: Vec<&str> = steps.iter().map(|(j, _)| j.as_str()).collect();
    assert_eq!(jobs, ["publish", "remove", "expire"], "{steps:?}");
    let s = site(S3Server::moto(), "workflow-preview");
    s.json(&["publish"]);
    let live = live_snapshot(&s);
    let bin = assert_cmd::cargo::cargo_bin!("assetpub");
    let path = format!(
        "{}:{}",
        bin.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let summary = s.p.path("step-summary.md");
    let run = |command: &str| {
        let c = s.p.std_cmd();
        let mut sh = Command::new("bash");
        sh.args(["-eo", "pipefail", "-c", command])
            .current_dir(s.p.path(""))
            .envs(
                c.get_envs()
                    .filter_map(|(k, v)| v.map(|v| (k.to_owned(), v.to_owned()))),
            )
            .env("PATH", &path)
            .env("GITHUB_ACTIONS", "true")
            .env("GITHUB_STEP_SUMMARY", &summary);
        for (k, v) in c.get_envs() {
            if v.is_none() {
                sh.env_remove(k);
            }
        }
        s.server.apply_env_with_endpoint(&mut sh, &s.proxy.endpoint);
        let out = sh.output().unwrap();
        assert!(
            out.status.success(),
            "`{command}` failed: {}\n{}",
            stderr(&out),
            String::from_utf8_lossy(&out.stdout)
        );
    };
    // A pull request is opened: its preview appears, for 14 days.
    s.p.write("site/about.html", "<!doctype html><p>about, in review</p>");
    run(&steps[0].1);
    let m = preview_manifest(&s, "pr-42");
    let created = chrono::DateTime::parse_from_rfc3339(m["created"].as_str().unwrap()).unwrap();
    let expires = chrono::DateTime::parse_from_rfc3339(m["expires"].as_str().unwrap()).unwrap();
    assert!((expires - created).num_days() == 13 || (expires - created).num_days() == 14);
    assert_preview_consistent(&s, "pr-42");
    let text = std::fs::read_to_string(&summary).unwrap();
    assert!(
        text.contains("Preview `pr-42`: <https://preview.example.org/pr-42/>, expires "),
        "{text}"
    );
    // The nightly expiry leaves it: it has not expired.
    run(&steps[2].1);
    assert!(!preview_snapshot(&s, "pr-42").is_empty());
    // The pull request closes: the preview goes, the live site stays.
    run(&steps[1].1);
    assert!(preview_snapshot(&s, "pr-42").is_empty());
    assert_eq!(live_snapshot(&s), live);
}

#[test]
fn bad_preview_settings_are_refused_naming_them() {
    let s = site(S3Server::moto(), "settings-preview");
    for (table, named) in [
        (
            "[preview]\nbase_url = \"preview.example.org\"\n",
            "`[preview] base_url",
        ),
        (
            "[preview]\nbase_url = \"https://preview.example.org/\"\n",
            "`{name}`",
        ),
        ("[preview]\nttl = \"0s\"\n", "`[preview] ttl = \"0s\"`"),
        ("[preview]\nttl = \"soon\"\n", "`[preview] ttl`"),
        ("[preview]\nname = \"x\"\n", "name"),
    ] {
        s.configure(&format!("[source]\ndirs = [\"site\"]\n{table}"), "");
        let out = s.run(&["publish", "--preview", "pr-1"]);
        assert_eq!(out.status.code(), Some(2), "{table}: {}", stderr(&out));
        assert!(stderr(&out).contains(named), "{table}: {}", stderr(&out));
    }
    s.configure(&format!("[source]\ndirs = [\"site\"]\n{BASE_URL}"), "");
    let out = s.run(&["publish", "--preview", "pr-1", "--ttl", "0s"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("`--ttl = \"0s\"`"),
        "{}",
        stderr(&out)
    );
    let out = s.run(&["publish", "--ttl", "1d"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "--ttl needs --preview: {}",
        stderr(&out)
    );
    assert_eq!(s.proxy.total(), 0, "nothing was read or written");
}

#[test]
fn an_interrupted_deletion_leaves_a_listed_preview_that_the_next_prune_finishes() {
    let s = site(S3Server::moto(), "interrupted-preview");
    s.json(&["publish", "--preview", "pr-8"]);
    let before = preview_snapshot(&s, "pr-8");
    // The third batch delete (the manifest's, after the objects' and the
    // deploy records') is refused.
    s.proxy.set_fault_matching(
        "POST",
        "delete",
        crate::support::Fault::Pass {
            requests: 2,
            then: Box::new(crate::support::Fault::Status {
                code: 403,
                s3_code: "AccessDenied",
                times: 10,
            }),
        },
    );
    let out = s.run(&["prune", "--preview", "pr-8"]);
    assert!(!out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("cannot delete"), "{}", stderr(&out));
    s.proxy.set_fault(crate::support::Fault::None);
    let left: Vec<String> = preview_snapshot(&s, "pr-8").into_keys().collect();
    assert_eq!(
        left,
        [s.key("_previews/pr-8/manifest.json")],
        "the objects and records went first ({} keys before)",
        before.len()
    );
    let listed = s.json(&["history", "--previews"]);
    assert_eq!(listed["previews"][0]["name"], "pr-8", "{listed}");
    s.json(&["prune", "--preview", "pr-8"]);
    assert!(preview_snapshot(&s, "pr-8").is_empty());
}

#[test]
fn a_preview_never_tells_the_cdn() {
    let s = site(S3Server::moto(), "cdn-preview");
    s.configure(
        &format!(
            "[source]\ndirs = [\"site\"]\n{BASE_URL}[cdn]\nprovider = \"command\"\ncommand = [\"./bin/no-such-purge\"]\n"
        ),
        "",
    );
    let out = s.json(&["publish", "--preview", "pr-2"]);
    assert!(out["invalidation"].is_null(), "{out}");
    // The live site's publish does tell it (and fails without the command).
    let out = s.run(&["publish"]);
    assert_ne!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stderr(&out).contains("no-such-purge"), "{}", stderr(&out));
}

#[test]
fn prune_previews_never_deletes_a_preview_republished_since_it_was_found_expired() {
    let s = site(S3Server::moto(), "republished-preview");
    s.json(&["publish", "--preview", "pr-7", "--ttl", "1s"]);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    // The prune finds pr-7 expired, then waits for its lock; meanwhile
    // another machine publishes a new deploy of it, with a new expiry.
    let lock = "_previews/pr-7/.assetpub/lock";
    s.proxy
        .set_fault_matching("PUT", lock, crate::support::Fault::Delay { ms: 4000 });
    let prune = s
        .cmd()
        .args(["prune", "--previews", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run assetpub");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while s.proxy.count_matching("PUT", lock) == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the prune never locked"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let other = other_machine(&s);
    other.p.write(
        "site/about.html",
        "<!doctype html><p>about, pushed again</p>",
    );
    let republished = other.json(&["publish", "--preview", "pr-7", "--ttl", "7d"]);
    let out = prune.wait_with_output().expect("wait for assetpub");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("preview `pr-7` was published again since it was found expired"),
        "{}",
        stderr(&out)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["deleted_objects"], 0, "{report}");
    assert_eq!(
        preview_manifest(&s, "pr-7")["deploy"],
        republished["preview"]["deploy"]
    );
    assert_preview_consistent(&s, "pr-7");
}

#[test]
fn a_preview_deleted_elsewhere_and_published_again_is_whole() {
    let s = site(S3Server::moto(), "reopened-preview");
    s.json(&["publish", "--preview", "pr-9"]);
    let other = other_machine(&s);
    other.json(&["prune", "--preview", "pr-9"]);
    assert!(preview_snapshot(&s, "pr-9").is_empty());
    // The pull request is reopened: the same build, from the machine whose
    // state DB remembers the preview's objects.
    let out = s.json(&["publish", "--preview", "pr-9"]);
    assert!(out["deploy"].is_string(), "{out}");
    assert_preview_consistent(&s, "pr-9");
}

#[test]
fn a_preview_deleted_while_its_publish_waits_for_the_lock_is_never_left_half() {
    let s = site(S3Server::moto(), "deleted-under-publish");
    s.json(&["publish", "--preview", "pr-6"]);
    // The publish has planned from pr-6's manifest (only about.html to
    // send) and waits for the lock; meanwhile the pull request is closed.
    let lock = "_previews/pr-6/.assetpub/lock";
    s.proxy
        .set_fault_matching("PUT", lock, crate::support::Fault::Delay { ms: 4000 });
    s.p.write("site/about.html", "<!doctype html><p>about, again</p>");
    let publish = s
        .cmd()
        .args(["publish", "--preview", "pr-6", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run assetpub");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while s.proxy.count_matching("PUT", lock) == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the publish never locked"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let other = other_machine(&s);
    other.json(&["prune", "--preview", "pr-6"]);
    let out = publish.wait_with_output().expect("wait for assetpub");
    let manifest = s.key("_previews/pr-6/manifest.json");
    if s.s3.head(&manifest).is_some() {
        assert_preview_consistent(&s, "pr-6");
    } else {
        assert!(!out.status.success(), "no manifest, yet: {}", stderr(&out));
    }
}

#[test]
fn prune_previews_deletes_the_other_expired_previews_when_one_is_being_published() {
    let s = site(S3Server::moto(), "locked-expired-preview");
    for name in ["pr-a", "pr-b", "pr-c"] {
        s.json(&["publish", "--preview", name, "--ttl", "1s"]);
    }
    std::thread::sleep(std::time::Duration::from_millis(1100));
    // A run of another machine holds pr-b's lock.
    let lock = serde_json::json!({
        "owner": "ci", "host": "elsewhere", "pid": 1, "command": "publish",
        "created": chrono::Utc::now().to_rfc3339(),
        "expires": (chrono::Utc::now() + chrono::Duration::minutes(5)).to_rfc3339(),
    });
    let lock_key = s.key("_previews/pr-b/.assetpub/lock");
    s.s3.put(&lock_key, lock.to_string().as_bytes(), "application/json");
    let held = preview_snapshot(&s, "pr-b");
    let out = s.run(&["prune", "--previews", "--json"]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(stderr(&out).contains("pr-b"), "{}", stderr(&out));
    assert!(stderr(&out).contains("lock is held by"), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("no report ({e}): {}", stderr(&out)));
    let deleted: Vec<&str> = report["previews"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(deleted, ["pr-a", "pr-c"], "{report}");
    assert!(preview_snapshot(&s, "pr-a").is_empty());
    assert!(preview_snapshot(&s, "pr-c").is_empty());
    assert_eq!(
        preview_snapshot(&s, "pr-b"),
        held,
        "nothing deleted under a held lock"
    );
}

#[test]
fn a_live_manifest_this_version_cannot_read_does_not_stop_a_preview() {
    let s = site(S3Server::moto(), "newer-live-preview");
    s.json(&["publish"]);
    // The live site was published since by a newer assetpub.
    let live = s.key("manifest.json");
    s.s3.put(
        &live,
        br#"{"version": 99, "deploy": "x", "files": {}}"#,
        "application/json",
    );
    let out = s.run(&["publish", "--preview", "pr-11", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("not copying from the live site"),
        "{}",
        stderr(&out)
    );
    assert_preview_consistent(&s, "pr-11");
    assert_eq!(
        s.s3.get(&live).unwrap(),
        br#"{"version": 99, "deploy": "x", "files": {}}"#.to_vec(),
        "the live manifest untouched"
    );
}

/// Finding the previews lists the folders under `_previews/` with the `/`
/// delimiter, not every object of every preview: one request however many
/// objects they hold. A folder with no manifest (a first publish cut short)
/// is no preview.
#[test]
fn finding_the_previews_lists_their_folders_not_their_objects() {
    let s = site(S3Server::moto(), "preview-folders");
    s.json(&["publish"]);
    s.json(&["publish", "--preview", "pr-1"]);
    s.json(&["publish", "--preview", "pr-2"]);
    s.s3.put(&s.key("_previews/pr-3/css/site.css"), b"p{}", "text/css");
    s.proxy.reset_counts();
    let listed = s.json(&["history", "--previews"]);
    let names: Vec<&str> = listed["previews"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["pr-1", "pr-2"], "{listed}");
    let lists: Vec<String> = s
        .proxy
        .requests()
        .into_iter()
        .filter(|(m, t)| m == "GET" && t.contains("list-type"))
        .map(|(_, t)| t)
        .collect();
    assert_eq!(lists.len(), 1, "{lists:?}");
    assert!(lists[0].contains("delimiter=%2F"), "{lists:?}");
}
