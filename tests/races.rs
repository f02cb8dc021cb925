//! Concurrent deploys against moto, which enforces conditional writes: one
//! deploy per lock hold, the others exit 4, and `manifest.json` always names
//! one whole deploy.

use std::process::{Child, Output, Stdio};

use crate::cli::Project;
use crate::s3::S3Site;
use crate::support::proxy::Exchange;
use crate::support::s3client::S3Client;
use crate::support::{Fault, Proxy, S3Server};

/// `n` projects with different builds publishing to one bucket, each with
/// its own state DB and its own (slow) proxy, so that their runs overlap.
fn contenders(n: usize, name: &str, delay_ms: u64, target_extra: &str) -> Vec<S3Site> {
    let server = S3Server::moto();
    let first = S3Site::new(server, name);
    let bucket = first.bucket.clone();
    let mut sites = vec![first];
    for _ in 1..n {
        sites.push(S3Site {
            proxy: Proxy::start(&server.endpoint),
            s3: S3Client::new(server, &bucket),
            p: Project::new(),
            server,
            bucket: bucket.clone(),
        });
    }
    for (i, s) in sites.iter().enumerate() {
        s.p.write(
            "site/index.html",
            &format!("<!doctype html><p>build {i}</p>"),
        );
        s.configure("[source]\ndirs = [\"site\"]\n", target_extra);
        s.proxy.set_fault(Fault::Delay { ms: delay_ms });
    }
    sites
}

fn spawn(site: &S3Site, args: &[&str]) -> Child {
    site.cmd()
        .args(args)
        .arg("--json")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn assetpub")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn deploy_of(out: &Output) -> String {
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    v["deploy"]
        .as_str()
        .or(v["to"].as_str())
        .expect("deploy id")
        .to_string()
}

/// Exactly one run succeeded, the rest exited 4 with one error line naming
/// the conflict; returns the winner's index.
fn one_winner(outs: &[Output]) -> usize {
    let report: Vec<String> = outs
        .iter()
        .map(|o| format!("{:?}: {}", o.status.code(), stderr(o)))
        .collect();
    let winners: Vec<usize> = (0..outs.len())
        .filter(|&i| outs[i].status.success())
        .collect();
    assert_eq!(winners.len(), 1, "{report:#?}");
    for (i, o) in outs.iter().enumerate() {
        if i == winners[0] {
            continue;
        }
        assert_eq!(o.status.code(), Some(4), "{report:#?}");
        let err = stderr(o);
        assert_eq!(
            err.lines().filter(|l| l.starts_with("error:")).count(),
            1,
            "{err}"
        );
        assert!(
            err.contains("lock is held by") || err.contains("changed by another deploy"),
            "{err}"
        );
    }
    winners[0]
}

fn deploy_count(site: &S3Site) -> usize {
    site.s3
        .keys()
        .iter()
        .filter(|k| k.starts_with("site/.assetpub/deploys/"))
        .count()
}

#[test]
fn two_then_four_concurrent_publishes_make_one_deploy_each_round() {
    for n in [2, 4] {
        let sites = contenders(n, &format!("race{n}"), 120, "");
        let children: Vec<Child> = sites.iter().map(|s| spawn(s, &["publish"])).collect();
        let outs: Vec<Output> = children
            .into_iter()
            .map(|c| c.wait_with_output().unwrap())
            .collect();
        let w = one_winner(&outs);
        assert_eq!(deploy_count(&sites[w]), 1, "one deploy for one lock hold");
        assert_eq!(sites[w].manifest()["deploy"], deploy_of(&outs[w]).as_str());
        sites[w].assert_manifest_consistent();
        assert!(sites[w].s3.head(&sites[w].key(".assetpub/lock")).is_none());
        // The winner's page is what the site serves.
        assert_eq!(
            sites[w].s3.get(&sites[w].key("index.html")).unwrap(),
            format!("<!doctype html><p>build {w}</p>").as_bytes()
        );
    }
}

#[test]
fn a_rollback_racing_a_publish_one_wins_and_the_site_stays_whole() {
    let sites = contenders(2, "rbrace", 0, "");
    let (a, b) = (&sites[0], &sites[1]);
    let d1 = a.json(&["publish"])["deploy"].as_str().unwrap().to_string();
    a.p.write("site/index.html", "<!doctype html><p>second</p>");
    a.json(&["publish"]);
    // b: a new build; a: back to the first deploy. Both slow.
    a.proxy.set_fault(Fault::Delay { ms: 150 });
    b.proxy.set_fault(Fault::Delay { ms: 150 });
    let cb = spawn(b, &["publish"]);
    let ca = spawn(a, &["rollback", &d1]);
    let outs = [
        ca.wait_with_output().unwrap(),
        cb.wait_with_output().unwrap(),
    ];
    let w = one_winner(&outs);
    let live = a.manifest()["deploy"].as_str().unwrap().to_string();
    assert_eq!(live, deploy_of(&outs[w]));
    a.assert_manifest_consistent();
    // The rollback restores the first deploy's page; the publish serves b's.
    let page = a.s3.get(&a.key("index.html")).unwrap();
    let expected = if w == 0 { "build 0" } else { "build 1" };
    assert_eq!(page, format!("<!doctype html><p>{expected}</p>").as_bytes());
}

#[test]
fn a_run_whose_lock_was_broken_never_switches_the_manifest() {
    // A short lock TTL, so the slow run renews often and notices.
    let sites = contenders(2, "broken", 0, "lock_ttl = \"3s\"");
    let (slow, fast) = (&sites[0], &sites[1]);
    for i in 0..30 {
        slow.p.write_bytes(
            &format!("site/img/x{i}.png"),
            &crate::cli::pseudo_random(3000, 900 + i),
        );
    }
    // One upload at a time, each held back: about ten seconds of uploading.
    slow.configure(
        "[source]\ndirs = [\"site\"]\n",
        "lock_ttl = \"3s\"\nconcurrency = 1",
    );
    slow.proxy
        .set_fault_matching("PUT", "/img/x", Fault::Delay { ms: 300 });
    let child = spawn(slow, &["publish"]);
    // Wait until the slow run holds the lock and uploads.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while slow.proxy.count_matching("PUT", "/img/x") == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the slow run never started uploading"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let out = fast.run(&["publish", "--break-lock", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let winner = deploy_of(&out);
    let lost = child.wait_with_output().unwrap();
    assert_eq!(lost.status.code(), Some(4), "{}", stderr(&lost));
    assert_eq!(fast.manifest()["deploy"], winner.as_str());
    fast.assert_manifest_consistent();
    // Whoever released last did not delete the other's lock by mistake, and
    // nothing is left held.
    assert!(fast.s3.head(&fast.key(".assetpub/lock")).is_none());
}

/// Waits until `key` exists in the bucket, or panics after `secs`.
fn wait_for_key(site: &S3Site, key: &str, secs: u64) {
    let until = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while site.s3.head(&site.key(key)).is_none() {
        assert!(std::time::Instant::now() < until, "`{key}` never appeared");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[test]
fn a_long_run_renews_its_lock_and_the_lock_says_who_holds_it() {
    let sites = contenders(2, "renew", 0, "lock_ttl = \"3s\"\nconcurrency = 1");
    let (a, b) = (&sites[0], &sites[1]);
    for i in 0..12 {
        a.p.write(&format!("site/page{i}.html"), &format!("<p>page {i}</p>"));
    }
    // Every object upload of A is slow: its run outlives the lock's TTL
    // several times over.
    a.proxy
        .set_fault_matching("PUT", "/site/page", Fault::Delay { ms: 700 });
    let mut child = a.cmd();
    child.env("ASSETPUB_CI_RUN", "https://ci.example/run/7");
    let child = child
        .args(["publish", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_key(a, ".assetpub/lock", 30);
    let read_lock = || -> serde_json::Value {
        serde_json::from_slice(&a.s3.get(&a.key(".assetpub/lock")).expect("lock")).unwrap()
    };
    let first = read_lock();
    assert_eq!(first["command"], "publish", "{first}");
    assert_eq!(first["ci_run"], "https://ci.example/run/7", "{first}");
    assert_eq!(first["pid"], child.id(), "{first}");
    for field in ["owner", "host", "created", "expires"] {
        assert!(
            first[field].as_str().is_some_and(|s| !s.is_empty()),
            "{field}: {first}"
        );
    }
    // Past the TTL: renewed, not stale, so another run is refused.
    std::thread::sleep(std::time::Duration::from_secs(4));
    let later = read_lock();
    assert!(
        later["expires"].as_str() > first["expires"].as_str(),
        "renewed: {first} then {later}"
    );
    let out = b.run(&["publish"]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(stderr(&out).contains("lock is held by"), "{}", stderr(&out));
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(a.s3.head(&a.key(".assetpub/lock")).is_none(), "released");
    assert_eq!(a.manifest()["deploy"], deploy_of(&out).as_str());
    a.assert_manifest_consistent();
}

#[test]
fn a_manifest_changed_behind_a_runs_back_exits_4_naming_the_winner() {
    let sites = contenders(1, "moved", 0, "concurrency = 1");
    let a = &sites[0];
    a.json(&["publish"]);
    let first = a.manifest();
    assert!(
        crate::s3::stable_keys(&first).contains("index.html"),
        "{first}"
    );
    let page = a.s3.get(&a.key("index.html")).expect("index.html");
    // The next build changes a page the site serves by name and adds six,
    // and six stylesheets, whose slow uploads keep the run before its
    // switch while the other deploy lands.
    a.p.write("site/index.html", "<!doctype html><p>next build</p>");
    for i in 0..6 {
        a.p.write(&format!("site/page{i}.html"), &format!("<p>page {i}</p>"));
        a.p.write(
            &format!("site/css/extra{i}.css"),
            &format!("p {{ order: {i} }}"),
        );
    }
    a.proxy.reset_counts();
    a.proxy
        .set_fault_matching("PUT", "/site/css/extra", Fault::Delay { ms: 500 });
    let child = spawn(a, &["publish"]);
    // The run read the manifest before it took the lock.
    wait_for_key(a, ".assetpub/lock", 30);
    // Another deploy switches the site meanwhile, without the lock (an
    // older tool, a hand upload): a whole manifest of its own.
    let mut other = a.manifest();
    other["deploy"] = "20991231T235959Z-0ther0".into();
    let other = serde_json::to_vec(&other).unwrap();
    a.s3.put(&a.key("manifest.json"), &other, "application/json");
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("changed by another deploy") && err.contains("20991231T235959Z-0ther0"),
        "{err}"
    );
    assert_eq!(
        a.s3.get(&a.key("manifest.json")).unwrap(),
        other,
        "the winner's manifest is left as it is"
    );
    // The run found out before it wrote anything the site serves by name:
    // no stable key was written (the changed page still serves the winner's
    // bytes, the new pages are not there). The manifest switch's own
    // condition would refuse it too, but only after every stable key had
    // been overwritten with this run's pages.
    let mut stable = crate::s3::stable_keys(&first);
    stable.extend((0..6).map(|i| format!("page{i}.html")));
    let stable_writes: Vec<(String, Exchange)> = a
        .object_writes()
        .into_iter()
        .filter(|(k, x)| stable.contains(k) || x.header("x-amz-copy-source").is_some())
        .collect();
    assert!(
        stable_writes.is_empty(),
        "stable keys written: {stable_writes:?}"
    );
    assert_eq!(a.s3.get(&a.key("index.html")).unwrap(), page);
    for i in 0..6 {
        assert!(a.s3.head(&a.key(&format!("page{i}.html"))).is_none());
    }
    // The one write to manifest.json was the mark that starts a switch,
    // conditional on the version the run read, and it was refused.
    let puts: Vec<Exchange> = a
        .proxy
        .exchanges()
        .into_iter()
        .filter(|x| x.method == "PUT" && x.path().ends_with("/manifest.json"))
        .collect();
    assert_eq!(puts.len(), 1, "{puts:?}");
    assert!(puts[0].header("if-match").is_some(), "{puts:?}");
    assert_eq!(puts[0].status, Some(412), "{puts:?}");
    // The loser left no deploy record: `history` and `prune --keep` count
    // only the first deploy.
    let records: Vec<String> =
        a.s3.keys()
            .into_iter()
            .filter(|k| k.contains("/.assetpub/deploys/"))
            .collect();
    assert_eq!(records.len(), 1, "{records:?}");
}
