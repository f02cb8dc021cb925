//! Faults between assetpub and the store, and the process killed mid-run:
//! the site is always either the old deploy or the new one, every object
//! its manifest names is there with the right bytes, and a rerun finishes
//! the job uploading only what is missing.

use std::collections::BTreeSet;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::cli::{Project, pseudo_random};
use crate::s3::S3Site;
use crate::support::{Fault, S3Server};

/// A build of 40 files: pages, stylesheets referencing images, images.
pub fn project(files: usize) -> Project {
    let p = Project::new();
    for i in 0..files {
        p.write_bytes(
            &format!("site/img/i{i:02}.png"),
            &pseudo_random(6_000, 500 + i as u64),
        );
        p.write(
            &format!("site/css/s{i:02}.css"),
            &format!(
                "a{{background:url(../img/i{i:02}.png)}}\n/* {} */\n",
                "x".repeat(i * 40)
            ),
        );
    }
    for i in 0..PAGES {
        p.write(&format!("site/p{i}.html"), &page(&format!("p{i}"), 0));
    }
    p.write("site/r0.html", &page("r0", 0));
    p.age_sources();
    p
}

/// Pages served by name (stable keys) besides index.html and about.html.
const PAGES: usize = 5;

fn page(name: &str, round: u64) -> String {
    format!("<!doctype html><link rel=stylesheet href=css/s00.css><p>{name} of round {round}</p>")
}

/// Changes `n` images (and so the stylesheets that reference them), with
/// content that depends on `round`, and the pages served by name: index.html
/// and one more change, the page `r*.html` is renamed, and every other round
/// a page is removed or comes back.
pub fn change(p: &Project, n: usize, round: u64) {
    for i in 0..n {
        p.write_bytes(
            &format!("site/img/i{i:02}.png"),
            &pseudo_random(6_000, round * 1000 + i as u64),
        );
    }
    p.write(
        "site/index.html",
        &format!(
            "<!doctype html><link rel=stylesheet href=css/app.css><p>round {round}</p><img src=img/logo.png>"
        ),
    );
    let i = round as usize % PAGES;
    p.write(&format!("site/p{i}.html"), &page(&format!("p{i}"), round));
    for e in std::fs::read_dir(p.path("site")).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with('r') && name.ends_with(".html") {
            std::fs::remove_file(e.path()).unwrap();
        }
    }
    p.write(&format!("site/r{round}.html"), &page("r", round));
    let gone = p.path("site/about.html");
    if round % 2 == 1 {
        let _ = std::fs::remove_file(gone);
    } else {
        p.write("site/about.html", &page("about", round));
    }
}

/// The deploy `manifest.json` names now, if any.
pub fn current(site: &S3Site) -> Option<String> {
    site.s3
        .get(&site.key("manifest.json"))
        .map(|b| serde_json::from_slice::<serde_json::Value>(&b).expect("manifest.json is JSON"))
        .map(|m| m["deploy"].as_str().unwrap().to_string())
}

/// The site serves one whole deploy: `manifest.json` parses, names one of
/// `allowed`, and every key and object it names holds exactly the bytes its
/// blake3 says.
pub fn assert_whole(site: &S3Site, allowed: &[Option<&str>]) {
    let deploy = current(site);
    assert!(
        allowed.contains(&deploy.as_deref()),
        "manifest.json names {deploy:?}, expected one of {allowed:?}"
    );
    if deploy.is_none() {
        return;
    }
    let m = site.manifest();
    for (logical, e) in m["files"].as_object().unwrap() {
        let key = e["key"].as_str().unwrap();
        for k in [Some(key), e["object"].as_str()].into_iter().flatten() {
            let found = site.s3.get(&site.key(k));
            // A page written straight has its object made only when a
            // later deploy replaces it.
            if found.is_none() && k != key && crate::s3::written_straight(e) {
                continue;
            }
            let bytes =
                found.unwrap_or_else(|| panic!("{logical}: `{k}` named by {deploy:?} is missing"));
            assert_eq!(
                blake3::hash(&bytes).to_hex().as_str(),
                e["blake3"].as_str().unwrap(),
                "{logical}: `{k}` holds other bytes"
            );
        }
    }
    let deploy = deploy.unwrap();
    assert!(
        site.s3
            .head(&site.key(&format!(".assetpub/deploys/{deploy}.json")))
            .is_some(),
        "the deploy record of {deploy} is missing"
    );
    assert!(
        m.get("switching").is_none(),
        "manifest.json still records a switch: {}",
        m["switching"]
    );
    // No page of another deploy is live beside them: every stable key
    // any deploy ever had is either one of the served deploy's or gone.
    let served = crate::s3::stable_keys(&m);
    for key in all_stable_keys(site) {
        if !served.contains(&key) {
            assert!(
                site.s3.head(&site.key(&key)).is_none(),
                "`{key}`, a page {deploy} does not have, is still live"
            );
        }
    }
}

/// The stable keys of every deploy recorded at the target.
fn all_stable_keys(site: &S3Site) -> BTreeSet<String> {
    site.s3
        .keys()
        .into_iter()
        .filter(|k| k.contains("/.assetpub/deploys/"))
        .flat_map(|k| {
            let m: serde_json::Value =
                serde_json::from_slice(&site.s3.get(&k).expect("deploy record")).unwrap();
            crate::s3::stable_keys(&m)
        })
        .collect()
}

/// The deploy a manifest records an unfinished switch to, if any.
fn switching(site: &S3Site) -> Option<String> {
    site.s3.get(&site.key("manifest.json")).and_then(|b| {
        let m: serde_json::Value = serde_json::from_slice(&b).unwrap();
        m["switching"]["to"].as_str().map(String::from)
    })
}

/// While a switch is recorded: every stable key holds the bytes of the
/// served deploy or of the one being switched to (the served one's alone
/// when the run died before recording its deploy), never a third's, and
/// every immutable object of both is intact.
fn assert_between(site: &S3Site, to: &str) {
    let from = site.manifest();
    // Killed between the mark and the deploy record, the run changed no
    // page yet (the record comes first): the served deploy's pages only.
    let to: Option<serde_json::Value> = site
        .s3
        .get(&site.key(&format!(".assetpub/deploys/{to}.json")))
        .map(|b| serde_json::from_slice(&b).unwrap());
    let mut allowed: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for m in std::iter::once(&from).chain(to.as_ref()) {
        for e in m["files"].as_object().unwrap().values() {
            let key = e["key"].as_str().unwrap();
            let object = e["object"].as_str().unwrap_or(key);
            let b = e["blake3"].as_str().unwrap().to_string();
            let found = site
                .s3
                .get(&site.key(object))
                .map(|x| blake3::hash(&x).to_hex().to_string());
            // A page written straight has no object until a switch that
            // replaces it made one; one made is intact like any other.
            if !(found.is_none() && crate::s3::written_straight(e)) {
                assert_eq!(
                    found,
                    Some(b.clone()),
                    "`{object}` is not intact mid-switch"
                );
            }
            if e["object"].is_string() {
                allowed.entry(key.to_string()).or_default().push(b);
            }
        }
    }
    for key in all_stable_keys(site) {
        let now = site
            .s3
            .get(&site.key(&key))
            .map(|x| blake3::hash(&x).to_hex().to_string());
        match (now, allowed.get(&key)) {
            (None, _) => {}
            (Some(h), Some(ok)) if ok.contains(&h) => {}
            (Some(h), _) => panic!("`{key}` holds {h}, a page of neither deploy of the switch"),
        }
    }
}

/// Runs a publish under `fault` after a first clean deploy and a change of
/// `changed` files; returns the site, the old deploy id and the run's output.
fn publish_under(fault: Fault, method: &str) -> (S3Site, String, std::process::Output) {
    publish_under_on(S3Server::moto(), fault, method, "")
}

/// As [`publish_under`], on `server`, with the fault on the requests of
/// `method` whose path contains `path`.
fn publish_under_on(
    server: &'static S3Server,
    fault: Fault,
    method: &str,
    path: &str,
) -> (S3Site, String, std::process::Output) {
    let site = S3Site::with_project(server, "fault", project(20), "concurrency = 4");
    let d1 = site.json(&["publish"])["deploy"]
        .as_str()
        .unwrap()
        .to_string();
    change(&site.p, 8, 2);
    // The log and the fault counter cover the faulty run alone.
    site.proxy.reset_counts();
    site.proxy.set_fault_matching(method, path, fault);
    let out = site.run(&["publish", "--json"]);
    site.proxy.set_fault(Fault::None);
    (site, d1, out)
}

/// After a failed run: the rerun uploads only keys that are not there yet
/// (and rewrites the stable keys and records), then the site is whole.
pub fn assert_rerun_finishes(site: &S3Site) {
    let before: BTreeSet<String> = site.s3.keys().into_iter().collect();
    site.proxy.reset_counts();
    let out = site.json(&["publish"]);
    // Nothing may be left to do when the last run got as far as the switch.
    let deploy = out["deploy"]
        .as_str()
        .map(String::from)
        .or_else(|| current(site))
        .expect("a deploy is live after the rerun");
    let m = site.manifest();
    let stable: BTreeSet<String> = m["files"]
        .as_object()
        .unwrap()
        .values()
        .filter(|e| e["object"].is_string())
        .map(|e| e["key"].as_str().unwrap().to_string())
        .collect();
    // Copies (a page's object made from its stable key) send no bytes.
    for target in site.object_puts_with_bytes() {
        let key = target.split('?').next().unwrap();
        let key = key.trim_start_matches('/').split_once('/').unwrap().1;
        let logical_key = key.strip_prefix("site/").unwrap();
        assert!(
            !before.contains(key) || stable.contains(logical_key),
            "the rerun uploaded `{key}` again, which was already there"
        );
    }
    assert_whole(site, &[Some(&deploy)]);
    assert_eq!(site.json(&["verify"])["problems"], serde_json::json!([]));
}

/// The fault took effect, and every request it failed was sent again, the
/// same method on the same key, and then got through. Returns how many
/// requests it failed.
fn assert_retried(site: &S3Site) -> usize {
    let seen = site.proxy.exchanges();
    assert!(site.proxy.injected() > 0, "the fault never fired: {seen:?}");
    let failed: Vec<usize> = (0..seen.len()).filter(|&i| seen[i].injected).collect();
    assert!(!failed.is_empty(), "no request was failed: {seen:?}");
    for &i in &failed {
        let x = &seen[i];
        let again: Vec<_> = seen[i + 1..].iter().filter(|y| y.same_request(x)).collect();
        assert!(
            !again.is_empty(),
            "{} {} failed by the fault and never sent again",
            x.method,
            x.target
        );
        let last = again.last().unwrap();
        assert!(
            !last.injected && last.status.is_some_and(|s| (200..300).contains(&s)),
            "{} {}: the last attempt did not get through: {last:?}",
            x.method,
            x.target
        );
    }
    failed.len()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A failed run: exit 1, one clear error line naming a key, nothing half
/// switched.
fn assert_failed_cleanly(site: &S3Site, d1: &str, out: &std::process::Output) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    let errors: Vec<&str> = err.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "{err}");
    assert!(errors[0].contains("s3://"), "names the object: {err}");
    assert!(!err.contains("panicked"), "{err}");
    assert_whole(site, &[Some(d1)]);
    assert!(
        site.s3.head(&site.key(".assetpub/lock")).is_none(),
        "lock released"
    );
}

#[test]
fn connections_dropped_mid_body_are_retried() {
    let (site, d1, out) = publish_under(
        Fault::DropMidBody {
            after_bytes: 2_000,
            times: 6,
        },
        "PUT",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    // Six uploads lost their connection mid-body, and each was sent again.
    assert_eq!(site.proxy.injected(), 6, "{:?}", site.proxy.requests());
    assert_eq!(assert_retried(&site), 6);
    let d2: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_ne!(d2["deploy"].as_str(), Some(d1.as_str()));
    assert_whole(&site, &[d2["deploy"].as_str()]);
}

/// An object's body damaged on the way to the store (same length, one bit
/// flipped). The bodies go unsigned: the signed Content-MD5 is what the
/// store checks them against, so it refuses this one, the run stops with
/// the store's word for it before the switch, and a rerun finishes.
/// Garage checks Content-MD5; moto stores whatever it is sent.
#[test]
fn a_body_damaged_on_the_way_is_refused_by_the_store_and_nothing_switches() {
    // One of the new images: a fingerprinted object, cached for a year.
    let (site, d1, out) = publish_under_on(
        S3Server::garage(),
        Fault::Corrupt { times: 1 },
        "PUT",
        "/img/i00.",
    );
    assert_eq!(site.proxy.injected(), 1, "{:?}", site.proxy.requests());
    let damaged = site
        .proxy
        .exchanges()
        .into_iter()
        .find(|x| x.injected)
        .unwrap();
    assert_eq!(damaged.status, Some(400), "{damaged:?}");
    let err = stderr(&out);
    assert!(err.contains("img/i00."), "names the object: {err}");
    assert!(err.contains("BadDigest"), "gives the store's reason: {err}");
    assert_failed_cleanly(&site, &d1, &out);
    assert_rerun_finishes(&site);
}

/// A target's first run with `encoding = "gzip"` stops after its uploads
/// (here its deploy record is refused); the next first run, with the
/// identity encoding and no state DB, finds gzip bytes under its keys. They
/// were never served, so they are checked and written over, not taken for
/// the objects this deploy names.
#[test]
fn objects_an_interrupted_first_run_left_in_another_encoding_are_not_taken_as_they_are() {
    let p = project(4);
    p.write(
        "site/css/big.css",
        &"a{background:url(../img/i00.png)}\n".repeat(400),
    );
    let site = S3Site::with_project(S3Server::moto(), "encleft", p, "encoding = \"gzip\"");
    site.proxy.set_fault_matching(
        "PUT",
        "/.assetpub/deploys/",
        Fault::Status {
            code: 500,
            s3_code: "InternalError",
            times: 10_000,
        },
    );
    let out = site.run(&["publish"]);
    site.proxy.set_fault(Fault::None);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(current(&site), None);
    let gzipped: Vec<String> = site
        .s3
        .keys()
        .into_iter()
        .filter(|k| k.contains("/css/big."))
        .collect();
    assert_eq!(
        gzipped.len(),
        1,
        "the stylesheet's object was uploaded: {gzipped:?}"
    );
    site.configure("[source]\ndirs = [\"site\"]\n", "");
    std::fs::remove_dir_all(site.p.path(".assetpub")).unwrap();
    let out = site.json(&["publish"]);
    assert!(out["deploy"].is_string(), "{out}");
    assert_eq!(site.json(&["verify"])["problems"], serde_json::json!([]));
    assert_whole(&site, &[out["deploy"].as_str()]);
}

#[test]
fn slow_down_and_503_are_retried_with_backoff() {
    let (site, _, out) = publish_under(
        Fault::Status {
            code: 503,
            s3_code: "SlowDown",
            // Fewer than the attempts one request gets.
            times: 5,
        },
        "PUT",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    // Five answers were the proxy's 503 SlowDown, and each request was sent
    // again until the store took it.
    assert_eq!(site.proxy.injected(), 5, "{:?}", site.proxy.requests());
    assert_eq!(assert_retried(&site), 5);
    let slowed = site
        .proxy
        .exchanges()
        .into_iter()
        .filter(|x| x.injected && x.status == Some(503))
        .count();
    assert_eq!(slowed, 5);
    let d2: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_whole(&site, &[d2["deploy"].as_str()]);
}

#[test]
fn slow_responses_only_slow_the_run() {
    let (site, _, out) = publish_under(Fault::Delay { ms: 250 }, "");
    assert!(out.status.success(), "{}", stderr(&out));
    let d2: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_whole(&site, &[d2["deploy"].as_str()]);
}

#[test]
fn a_store_that_keeps_failing_leaves_the_old_deploy_and_a_rerun_finishes() {
    let (site, d1, out) = publish_under(
        Fault::Status {
            code: 500,
            s3_code: "InternalError",
            times: 10_000,
        },
        "PUT",
    );
    assert_failed_cleanly(&site, &d1, &out);
    assert_rerun_finishes(&site);
}

#[test]
fn a_server_that_dies_mid_upload_leaves_the_old_deploy_and_a_rerun_finishes() {
    let site = S3Site::with_project(S3Server::moto(), "reset", project(20), "concurrency = 4");
    let d1 = site.json(&["publish"])["deploy"]
        .as_str()
        .unwrap()
        .to_string();
    change(&site.p, 10, 3);
    // The lock, then a few uploads, then every connection is reset.
    site.proxy
        .set_fault_matching("PUT", "", Fault::ResetAfter { requests: 6 });
    let out = site.run(&["publish"]);
    site.proxy.set_fault(Fault::None);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(
        err.lines().filter(|l| l.starts_with("error:")).count(),
        1,
        "{err}"
    );
    assert_whole(&site, &[Some(&d1)]);
    // The lock may be left behind by a run that could not reach the store to
    // release it; this host's dead process does not hold it any more.
    assert_rerun_finishes(&site);
}

#[test]
fn a_failing_manifest_switch_puts_the_old_pages_back() {
    let site = S3Site::with_project(S3Server::moto(), "switch", project(5), "");
    let d1 = site.json(&["publish"])["deploy"]
        .as_str()
        .unwrap()
        .to_string();
    change(&site.p, 2, 4);
    site.proxy.reset_counts();
    // The first write of manifest.json, the mark that starts the switch,
    // goes through; the switch fails every one of its 6 attempts (the S3
    // client's `ATTEMPTS`); the store is back for the run's undo.
    site.proxy.set_fault_matching(
        "PUT",
        "/manifest.json",
        Fault::Pass {
            requests: 1,
            then: Box::new(Fault::Status {
                code: 500,
                s3_code: "InternalError",
                times: 6,
            }),
        },
    );
    let out = site.run(&["publish"]);
    site.proxy.set_fault(Fault::None);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("manifest.json"), "{}", stderr(&out));
    assert!(
        site.proxy
            .exchanges()
            .iter()
            .any(|x| x.injected && x.method == "PUT" && x.path().ends_with("/manifest.json")),
        "the switch never failed"
    );
    assert!(
        site.proxy
            .exchanges()
            .iter()
            .any(|x| x.header("x-amz-copy-source").is_some()
                && x.path().ends_with("/site/index.html")
                && x.status == Some(200)),
        "the run never got as far as changing a page"
    );
    // The failed run put back the stable keys it had changed (index.html
    // and the pages changed, renamed or removed) before it gave up: the old
    // deploy is served whole, pages included, and no switch is recorded.
    assert_whole(&site, &[Some(d1.as_str())]);
    assert_eq!(
        records(&site),
        vec![d1.clone()],
        "the failed deploy's record is gone"
    );
    assert_rerun_finishes(&site);
}

/// The deploys recorded at the target, oldest first.
fn records(site: &S3Site) -> Vec<String> {
    let mut ids: Vec<String> = site
        .s3
        .keys()
        .into_iter()
        .filter_map(|k| {
            k.split("/.assetpub/deploys/")
                .nth(1)?
                .strip_suffix(".json")
                .map(String::from)
        })
        .collect();
    ids.sort();
    ids
}

/// xorshift, seeded from the clock and printed, so a failure can be rerun.
struct Rng(u64);

impl Rng {
    fn new() -> Rng {
        let seed = std::env::var("ASSETPUB_TEST_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
            });
        eprintln!("kill loop seed: ASSETPUB_TEST_SEED={seed}");
        Rng(seed | 1)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

#[test]
fn killed_at_random_points_twenty_times_the_site_is_always_whole() {
    let site = S3Site::with_project(S3Server::moto(), "kill", project(20), "concurrency = 4");
    let mut deploys: Vec<Option<String>> = vec![None];
    // Requests take a little while, so that a kill lands anywhere in the run.
    site.proxy.set_fault(Fault::Delay { ms: 15 });
    let first = site.json(&["publish"]);
    deploys.push(first["deploy"].as_str().map(String::from));
    // How many requests an uninterrupted publish of a change makes here.
    change(&site.p, 6, 100);
    site.proxy.reset_counts();
    let second = site.json(&["publish"]);
    let requests = site.proxy.total();
    deploys.push(second["deploy"].as_str().map(String::from));
    let mut rng = Rng::new();
    let mut killed = 0;
    let mut inside = 0;
    for round in 0..20u64 {
        change(&site.p, 1 + rng.below(8) as usize, 200 + round);
        site.proxy.reset_counts();
        let mut child = site
            .cmd()
            .args(["publish", "-q"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // A random point: before the first request (while it hashes), or
        // once the store has seen some of its requests, whatever the load
        // of the machine.
        let point = rng.below(requests);
        if point == 0 {
            std::thread::sleep(Duration::from_millis(rng.below(40)));
        } else {
            while site.proxy.total() < point && child.try_wait().unwrap().is_none() {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        match child.try_wait().unwrap() {
            Some(status) => assert!(status.success(), "round {round}: {status}"),
            None => {
                child.kill().unwrap();
                killed += 1;
            }
        }
        child.wait().unwrap();
        // Requests the run had sent before it died still land (the proxy
        // holds each one 15 ms, as a network would): let them.
        std::thread::sleep(Duration::from_millis(300));
        if let Some(to) = switching(&site) {
            // Killed inside the switch: pages of both deploys may be live
            // until the next run undoes it, which `verify` does.
            assert_between(&site, &to);
            inside += 1;
            let v = site.json(&["verify"]);
            assert_eq!(v["undone_switch"].as_str(), Some(to.as_str()), "{v}");
            assert_eq!(v["problems"], serde_json::json!([]), "{v}");
        }
        let now = current(&site);
        if !deploys.contains(&now) {
            deploys.push(now);
        }
        let allowed: Vec<Option<&str>> = deploys.iter().map(|d| d.as_deref()).collect();
        assert_whole(&site, &allowed);
    }
    assert!(killed >= 15, "only {killed} of 20 runs were killed mid-way");
    eprintln!("{killed} runs killed, {inside} of them inside the switch");
    site.proxy.set_fault(Fault::None);
    assert_rerun_finishes(&site);
}

#[test]
fn a_file_that_changes_after_it_was_hashed_is_not_uploaded() {
    let p = project(2);
    // Large enough to be streamed from disk rather than held in memory.
    p.write_bytes("site/media/big.bin", &pseudo_random(12 * 1024 * 1024, 1));
    p.age_sources();
    let site = S3Site::with_project(S3Server::moto(), "changing", p, "");
    site.configure(
        "[source]\ndirs = [\"site\"]\nmax_file_size = \"50 MiB\"\n",
        "",
    );
    // Hold the upload of the big file back, change it on disk meanwhile.
    site.proxy
        .set_fault_matching("PUT", "/media/big.", Fault::Delay { ms: 3_000 });
    let child = site
        .cmd()
        .args(["publish"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while site
        .proxy
        .requests()
        .iter()
        .all(|(m, t)| !(m == "PUT" && t.contains("/media/big.")))
    {
        assert!(
            Instant::now() < deadline,
            "the upload of big.bin never started"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // Same size, other bytes: only the content tells.
    site.p
        .write_bytes("site/media/big.bin", &pseudo_random(12 * 1024 * 1024, 2));
    let out = child.wait_with_output().unwrap();
    site.proxy.set_fault(Fault::None);
    let err = stderr(&out);
    if out.status.success() {
        // The bytes were read and checked before the change: what was stored
        // is what was hashed.
        let m = site.manifest();
        let e = &m["files"]["media/big.bin"];
        let bytes = site.s3.get(&site.key(e["key"].as_str().unwrap())).unwrap();
        assert_eq!(
            blake3::hash(&bytes).to_hex().as_str(),
            e["blake3"].as_str().unwrap()
        );
    } else {
        assert_eq!(out.status.code(), Some(3), "{err}");
        assert!(err.contains("big.bin") && err.contains("changed"), "{err}");
        eprintln!("refused as expected: {err}");
        assert!(current(&site).is_none());
    }
}

#[test]
fn an_unreachable_endpoint_is_one_clear_error() {
    let site = S3Site::new(S3Server::moto(), "unreachable");
    // A port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let started = Instant::now();
    let out = site
        .cmd()
        .env("AWS_ENDPOINT_URL", format!("http://127.0.0.1:{port}"))
        .arg("publish")
        .output()
        .unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!("127.0.0.1:{port}")),
        "names the endpoint: {err}"
    );
    assert!(
        !err.contains("panicked") && err.lines().count() <= 3,
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(60));
}

#[test]
fn a_remote_manifest_that_is_not_ours_is_refused_and_kept() {
    for (what, body) in [
        ("not JSON", b"<html>oops</html>".to_vec()),
        (
            "a newer version",
            br#"{"version": 99, "deploy": "x", "created": "x", "files": {}}"#.to_vec(),
        ),
    ] {
        let site = S3Site::new(S3Server::moto(), "foreign");
        site.s3
            .put(&site.key("manifest.json"), &body, "application/json");
        let out = site.run(&["publish"]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{what}: {err}");
        assert!(err.contains("refusing"), "{what}: {err}");
        assert!(err.contains("manifest.json"), "{what}: {err}");
        assert_eq!(
            site.s3.get(&site.key("manifest.json")).unwrap(),
            body,
            "{what}"
        );
        assert_eq!(site.proxy.count("PUT"), 0, "{what}: nothing written");
    }
}

#[test]
fn a_state_db_locked_by_another_process_is_named() {
    let site = S3Site::new(S3Server::moto(), "dblock");
    site.json(&["publish"]);
    // Another process holds a write transaction on the state DB.
    let db = site.p.path(".assetpub/state.db");
    let mut holder = std::process::Command::new("python3")
        .arg("-c")
        .arg(
            "import sqlite3, sys, time\n\
             c = sqlite3.connect(sys.argv[1], isolation_level=None)\n\
             c.execute('BEGIN EXCLUSIVE')\n\
             print('locked', flush=True)\n\
             time.sleep(60)\n",
        )
        .arg(&db)
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3");
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(holder.stdout.as_mut().unwrap()),
        &mut line,
    )
    .unwrap();
    assert_eq!(line.trim(), "locked");
    site.p
        .write("site/robots.txt", "User-agent: *\nDisallow: /x\n");
    let out = site.run(&["publish"]);
    let _ = holder.kill();
    let _ = holder.wait();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(4), "{err}");
    assert!(err.contains("state.db"), "names the state DB: {err}");
    assert!(
        !err.contains("--break-lock"),
        "the deploy lock is not the problem: {err}"
    );
    assert!(err.contains("locked") || err.contains("busy"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn a_file_that_vanishes_after_it_was_hashed_fails_the_run_naming_it() {
    let site = S3Site::with_project(S3Server::moto(), "vanish", project(2), "");
    site.p
        .write_bytes("site/img/going.png", &pseudo_random(50_000, 7));
    // Hold the lock request (the last step before the uploads) back, and
    // delete the file meanwhile.
    site.proxy
        .set_fault_matching("PUT", "/.assetpub/lock", Fault::Delay { ms: 1_500 });
    let child = site
        .cmd()
        .args(["publish"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while site.proxy.count_matching("PUT", "/.assetpub/lock") == 0 {
        assert!(Instant::now() < deadline, "the run never took the lock");
        std::thread::sleep(Duration::from_millis(10));
    }
    std::fs::remove_file(site.p.path("site/img/going.png")).unwrap();
    let out = child.wait_with_output().unwrap();
    site.proxy.set_fault(Fault::None);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("going.png"), "names the file: {err}");
    assert_eq!(
        err.lines().filter(|l| l.starts_with("error:")).count(),
        1,
        "{err}"
    );
    assert!(current(&site).is_none(), "nothing went live");
    assert!(
        site.s3.head(&site.key(".assetpub/lock")).is_none(),
        "lock released"
    );
}

/// A publish of a change (pages changed, renamed, removed) killed after it
/// marked the manifest and changed some stable keys, while the copy of the
/// others hangs: returns the site, the served deploy and the one being
/// switched to. At that moment pages of both are live.
fn killed_inside_the_switch() -> (S3Site, String, String) {
    let site = S3Site::with_project(S3Server::moto(), "inside", project(3), "concurrency = 2");
    site.json(&["publish"]);
    change(&site.p, 1, 1);
    let d1 = site.json(&["publish"])["deploy"]
        .as_str()
        .unwrap()
        .to_string();
    change(&site.p, 2, 2);
    site.proxy.reset_counts();
    // The copies to the pages p*.html hang; index.html's goes through.
    site.proxy
        .set_fault_matching("PUT", "/site/p", Fault::Delay { ms: 5_000 });
    let mut child = site
        .cmd()
        .args(["publish", "-q"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    // index.html is written (straight, with its bytes) inside the switch.
    let index_copied = |site: &S3Site| {
        site.proxy.exchanges().iter().any(|x| {
            x.method == "PUT" && x.path().ends_with("/site/index.html") && x.status == Some(200)
        })
    };
    while !index_copied(&site) {
        assert!(Instant::now() < deadline, "the switch never started");
        assert!(child.try_wait().unwrap().is_none(), "publish ended");
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    site.proxy.set_fault(Fault::None);
    std::thread::sleep(Duration::from_millis(200));
    let to = switching(&site).expect("the manifest records the switch");
    assert_eq!(current(&site).as_deref(), Some(d1.as_str()));
    // Half switched, which is what the next run must undo: index.html is
    // the new deploy's, the rest of the pages the old one's.
    let served = site.manifest();
    let index = site.s3.get(&site.key("index.html")).unwrap();
    assert_ne!(
        blake3::hash(&index).to_hex().as_str(),
        served["files"]["index.html"]["blake3"].as_str().unwrap(),
        "index.html should hold the interrupted deploy's page"
    );
    assert_between(&site, &to);
    (site, d1, to)
}

#[test]
fn a_switch_killed_half_way_is_undone_by_verify() {
    let (site, d1, to) = killed_inside_the_switch();
    assert!(
        records(&site).contains(&to),
        "the interrupted deploy was recorded"
    );
    let v = site.json(&["verify"]);
    assert_eq!(v["undone_switch"].as_str(), Some(to.as_str()), "{v}");
    assert_eq!(v["problems"], serde_json::json!([]), "{v}");
    assert_whole(&site, &[Some(d1.as_str())]);
    // It never went live: its record is gone, history does not list it.
    assert!(!records(&site).contains(&to), "{:?}", records(&site));
    let h = site.json(&["history"]);
    assert!(
        !h["deploys"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["id"].as_str() == Some(to.as_str())),
        "{h}"
    );
}

#[test]
fn a_switch_killed_half_way_is_undone_by_a_rerun_of_the_served_build() {
    let (site, d1, to) = killed_inside_the_switch();
    // Back to the build the site serves (the older commit, run again): there
    // is nothing to upload, and yet the half switch must go.
    change(&site.p, 1, 1);
    for i in 0..PAGES {
        let round = if i == 1 { 1 } else { 0 };
        site.p
            .write(&format!("site/p{i}.html"), &page(&format!("p{i}"), round));
    }
    site.p
        .write_bytes("site/img/i01.png", &pseudo_random(6_000, 501));
    let out = site.run(&["publish", "--json"]);
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["changed"], false, "{report}");
    assert!(
        err.contains(&format!("interrupted switch to `{to}`")),
        "{err}"
    );
    assert_whole(&site, &[Some(d1.as_str())]);
}

#[test]
fn a_switch_killed_half_way_is_undone_by_the_next_publish_rollback_or_prune() {
    for command in [
        &["publish"][..],
        &["rollback"][..],
        &["prune", "--keep", "1", "--min-age", "0s"][..],
    ] {
        let (site, d1, to) = killed_inside_the_switch();
        let out = site.run(command);
        let err = stderr(&out);
        assert!(out.status.success(), "{command:?}: {err}");
        assert!(
            err.contains(&format!("interrupted switch to `{to}`")),
            "{command:?}: {err}"
        );
        let now = current(&site).unwrap();
        match command[0] {
            "prune" => assert_eq!(now, d1),
            _ => assert_ne!(now, d1, "{command:?}"),
        }
        assert_whole(&site, &[Some(now.as_str())]);
        assert_eq!(site.json(&["verify"])["problems"], serde_json::json!([]));
    }
}

/// A tampered record of the deploy being switched to cannot make the undo
/// delete an object the served deploy needs.
#[test]
fn a_tampered_switch_record_never_deletes_a_served_object() {
    let site = S3Site::new(S3Server::moto(), "forged");
    let served = site.json(&["publish"]);
    let d1 = served["deploy"].as_str().unwrap().to_string();
    let mut m = site.manifest();
    let css = m["files"]["css/app.css"]["key"]
        .as_str()
        .unwrap()
        .to_string();
    // A record whose only page sits at the stylesheet's object key.
    let forged = serde_json::json!({
        "version": 1,
        "deploy": "20991231T000000Z-f0f0f0",
        "created": "2099-12-31T00:00:00.000Z",
        "files": {
            "evil.html": {
                "key": css,
                "object": "evil.000000000000.html",
                "blake3": "00",
                "size": 1,
                "content_type": "text/html",
                "cache_control": "no-cache"
            }
        }
    });
    site.s3.put(
        &site.key(".assetpub/deploys/20991231T000000Z-f0f0f0.json"),
        forged.to_string().as_bytes(),
        "application/json",
    );
    m["switching"] = serde_json::json!({"to": "20991231T000000Z-f0f0f0", "started": "x"});
    site.s3.put(
        &site.key("manifest.json"),
        m.to_string().as_bytes(),
        "application/json",
    );
    let v = site.json(&["verify"]);
    assert_eq!(v["undone_switch"], "20991231T000000Z-f0f0f0", "{v}");
    assert_eq!(v["problems"], serde_json::json!([]), "{v}");
    assert!(
        site.s3.head(&site.key(&css)).is_some(),
        "`{css}` was deleted"
    );
    assert_whole(&site, &[Some(d1.as_str())]);
}
