//! Ctrl-C and SIGTERM during a publish, on a real process against a slow
//! store: the run stops starting requests, releases the deploy lock, says in
//! one line that nothing went live, and exits 130 or 143; `manifest.json`
//! is untouched and a rerun publishes. A run already switching the site is
//! let finish, and says so; a second Ctrl-C exits at once.

use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::faults::{assert_rerun_finishes, assert_whole, change, current, project};
use crate::s3::S3Site;
use crate::support::{Fault, S3Server};

const LOCK: &str = ".assetpub/lock";

/// A site with one deploy live and eight images changed since: returns it
/// and its live deploy.
fn site(name: &str) -> (S3Site, String) {
    let site = S3Site::with_project(S3Server::moto(), name, project(12), "concurrency = 2");
    let d1 = site.json(&["publish"])["deploy"]
        .as_str()
        .unwrap()
        .to_string();
    change(&site.p, 8, 2);
    site.proxy.reset_counts();
    (site, d1)
}

fn spawn(site: &S3Site, args: &[&str]) -> Child {
    let mut cmd: Command = site.cmd();
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn assetpub")
}

fn kill(child: &Child, signal: &str) {
    let status = Command::new("kill")
        .args(["-s", signal, &child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -s {signal} failed");
}

/// Waits until `what` holds, for at most 60 s.
fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let started = Instant::now();
    while !cond() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "gave up waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The child's output, once it exits within `within`.
fn exited_within(mut child: Child, within: Duration) -> Output {
    let started = Instant::now();
    loop {
        if child.try_wait().expect("wait").is_some() {
            return child.wait_with_output().expect("output");
        }
        if started.elapsed() > within {
            let _ = child.kill();
            let out = child.wait_with_output().expect("output");
            panic!(
                "still running {within:?} after the signal:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A publish whose image uploads each take 3 s, signalled once uploads
/// have begun (the lock is held by then).
fn interrupted_publish(signal: &str, code: i32, json: bool) {
    let (site, d1) = site(&format!("sig{}", signal.to_lowercase()));
    let manifest = site.s3.get(&site.key("manifest.json")).unwrap();
    site.proxy
        .set_fault_matching("PUT", "/img/", Fault::Delay { ms: 3_000 });
    let args: &[&str] = if json {
        &["publish", "--json"]
    } else {
        &["publish"]
    };
    let child = spawn(&site, args);
    wait_for("the first image upload", || {
        site.proxy.count_matching("PUT", "/img/") >= 1
    });
    assert!(site.s3.head(&site.key(LOCK)).is_some(), "the lock is held");
    let signalled = Instant::now();
    kill(&child, signal);
    let out = exited_within(child, Duration::from_secs(15));
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(code), "{err}");
    assert!(
        signalled.elapsed() < Duration::from_secs(3),
        "stopped only after {:?}: uploads went on",
        signalled.elapsed()
    );
    let lines: Vec<&str> = err.lines().filter(|l| l.contains("interrupted")).collect();
    assert_eq!(
        lines,
        [format!(
            "error: interrupted by SIG{signal}: nothing went live, the site still serves the deploy it served before, and the deploy lock was released; run `assetpub publish` again to resume (what was uploaded is not sent again)"
        )],
        "{err}"
    );
    if json {
        let doc: serde_json::Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("stdout is no JSON document ({e}): {err}"));
        assert_eq!(doc["error"]["kind"], "interrupted", "{doc}");
        assert_eq!(doc["error"]["exit_code"], code, "{doc}");
        assert_eq!(
            format!("error: {}", doc["error"]["message"].as_str().unwrap()),
            lines[0]
        );
    } else {
        assert!(
            out.stdout.is_empty(),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
    assert!(site.s3.head(&site.key(LOCK)).is_none(), "the lock is gone");
    assert!(
        site.s3.get(&site.key("manifest.json")).unwrap() == manifest,
        "manifest.json changed"
    );
    assert_whole(&site, &[Some(&d1)]);
    // Requests stopped: none after the ones in flight when the signal came.
    let after = site.proxy.count_matching("PUT", "/img/");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(site.proxy.count_matching("PUT", "/img/"), after);
    site.proxy.set_fault(Fault::None);
    assert_rerun_finishes(&site);
    assert_ne!(current(&site).as_deref(), Some(d1.as_str()));
}

/// Ctrl-C while a target's first run is still taking its lock: created,
/// and the second create that learns whether the store enforces
/// conditional writes left unanswered. The lock created is released.
#[test]
fn sigint_while_a_first_run_takes_its_lock_releases_it() {
    let site = S3Site::with_project(S3Server::moto(), "siglearn", project(4), "concurrency = 2");
    site.proxy.set_fault_matching(
        "PUT",
        LOCK,
        Fault::Pass {
            requests: 1,
            then: Box::new(Fault::Hang {
                times: 1,
                forward: true,
            }),
        },
    );
    let child = spawn(&site, &["publish"]);
    wait_for("the lock's second create", || {
        site.proxy.count_matching("PUT", LOCK) >= 2
    });
    assert!(
        site.s3.head(&site.key(LOCK)).is_some(),
        "the lock was created"
    );
    kill(&child, "INT");
    let out = exited_within(child, Duration::from_secs(15));
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(130), "{err}");
    assert!(err.contains("and the deploy lock was released"), "{err}");
    assert!(site.s3.head(&site.key(LOCK)).is_none(), "the lock is gone");
    assert_eq!(current(&site), None);
    site.proxy.set_fault(Fault::None);
    let done = site.json(&["publish"]);
    assert_eq!(current(&site).as_deref(), done["deploy"].as_str());
}

#[test]
fn sigint_during_a_publish_releases_the_lock_changes_nothing_and_exits_130() {
    interrupted_publish("INT", 130, false);
}

#[test]
fn sigterm_during_a_publish_releases_the_lock_changes_nothing_and_exits_143() {
    interrupted_publish("TERM", 143, false);
}

#[test]
fn with_json_an_interrupt_also_prints_the_error_document() {
    interrupted_publish("INT", 130, true);
}

#[test]
fn a_second_ctrl_c_exits_at_once() {
    let (site, d1) = site("sigtwice");
    let manifest = site.s3.get(&site.key("manifest.json")).unwrap();
    site.proxy
        .set_fault_matching("PUT", "/img/", Fault::Delay { ms: 3_000 });
    let mut child = spawn(&site, &["publish"]);
    wait_for("the first image upload", || {
        site.proxy.count_matching("PUT", "/img/") >= 1
    });
    // Releasing the lock (one conditional DELETE on moto) now takes 30 s.
    site.proxy
        .set_fault_matching("DELETE", LOCK, Fault::Delay { ms: 30_000 });
    kill(&child, "INT");
    wait_for("the release to begin", || {
        site.proxy.count_matching("DELETE", LOCK) >= 1
    });
    assert!(child.try_wait().unwrap().is_none(), "still releasing");
    let again = Instant::now();
    kill(&child, "INT");
    let out = exited_within(child, Duration::from_secs(5));
    let err = stderr(&out);
    assert!(again.elapsed() < Duration::from_secs(2), "{err}");
    assert_eq!(out.status.code(), Some(130), "{err}");
    assert!(
        err.contains("error: interrupted again by SIGINT: stopped at once"),
        "{err}"
    );
    assert!(
        site.s3.get(&site.key("manifest.json")).unwrap() == manifest,
        "manifest.json changed"
    );
    assert_whole(&site, &[Some(&d1)]);
    // The lock left behind belongs to a process of this host that is gone:
    // the rerun takes it over.
    site.proxy.set_fault(Fault::None);
    assert!(site.s3.head(&site.key(LOCK)).is_some());
    assert_rerun_finishes(&site);
}

#[test]
fn an_interrupt_once_the_switch_has_begun_lets_it_finish_and_says_so() {
    let (site, d1) = site("sigswitch");
    // The switch itself takes 3 s.
    site.proxy
        .set_fault_matching("PUT", "/manifest.json", Fault::Delay { ms: 3_000 });
    let child = spawn(&site, &["publish"]);
    wait_for("the manifest switch", || {
        site.proxy.count_matching("PUT", "/manifest.json") >= 1
    });
    kill(&child, "INT");
    let out = exited_within(child, Duration::from_secs(30));
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(130), "{err}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let live = current(&site).expect("a deploy is live");
    assert_ne!(live, d1);
    assert!(
        stdout.contains(&format!("published {live}")),
        "the report names the live deploy: {stdout}"
    );
    let lines: Vec<&str> = err.lines().filter(|l| l.contains("interrupted")).collect();
    assert_eq!(
        lines,
        [
            "error: interrupted by SIGINT after the switch to the new deploy had begun, so the run went on to the end (see above)"
        ],
        "{err}"
    );
    assert!(site.s3.head(&site.key(LOCK)).is_none(), "the lock is gone");
    assert_whole(&site, &[Some(&live)]);
}

#[test]
fn an_interrupted_rollback_does_not_happen_and_says_so() {
    let (site, d1) = site("sigrollback");
    let d2 = site.json(&["publish"])["deploy"]
        .as_str()
        .unwrap()
        .to_string();
    let manifest = site.s3.get(&site.key("manifest.json")).unwrap();
    // Checking that the earlier deploy's objects are all there takes 3 s
    // a request.
    site.proxy
        .set_fault_matching("HEAD", "/img/", Fault::Delay { ms: 3_000 });
    let child = spawn(&site, &["rollback"]);
    wait_for("the objects' check", || {
        site.proxy.count_matching("HEAD", "/img/") >= 1
    });
    kill(&child, "INT");
    let out = exited_within(child, Duration::from_secs(15));
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(130), "{err}");
    let lines: Vec<&str> = err.lines().filter(|l| l.contains("interrupted")).collect();
    assert_eq!(
        lines,
        [
            "error: interrupted by SIGINT: the rollback did not happen, the site still serves the deploy it served before; run `assetpub rollback` again"
        ],
        "{err}"
    );
    assert!(site.s3.head(&site.key(LOCK)).is_none(), "no lock left");
    assert!(site.s3.get(&site.key("manifest.json")).unwrap() == manifest);
    assert_whole(&site, &[Some(&d2)]);
    site.proxy.set_fault(Fault::None);
    assert_eq!(site.json(&["rollback"])["to"], d1.as_str());
    assert_whole(&site, &[Some(&d1)]);
}

#[test]
fn an_interrupted_prune_releases_the_lock_and_leaves_the_live_deploy() {
    let (site, _) = site("sigprune");
    site.json(&["publish"]);
    change(&site.p, 8, 3);
    let d3 = site.json(&["publish"])["deploy"]
        .as_str()
        .unwrap()
        .to_string();
    let manifest = site.s3.get(&site.key("manifest.json")).unwrap();
    // Listing the target, which prune does holding the lock, takes 3 s.
    site.proxy
        .set_fault_matching("GET", "list-type", Fault::Delay { ms: 3_000 });
    let child = spawn(&site, &["prune", "--keep", "1", "--min-age", "0s"]);
    wait_for("the listing", || {
        site.proxy.count_matching("GET", "list-type") >= 1
    });
    assert!(site.s3.head(&site.key(LOCK)).is_some(), "the lock is held");
    kill(&child, "TERM");
    let out = exited_within(child, Duration::from_secs(15));
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(143), "{err}");
    let lines: Vec<&str> = err.lines().filter(|l| l.contains("interrupted")).collect();
    assert_eq!(
        lines,
        [
            "error: interrupted by SIGTERM: prune stopped part way, the live deploy untouched, and the deploy lock was released; run `assetpub prune` again to finish"
        ],
        "{err}"
    );
    assert!(site.s3.head(&site.key(LOCK)).is_none(), "the lock is gone");
    assert!(site.s3.get(&site.key("manifest.json")).unwrap() == manifest);
    assert_whole(&site, &[Some(&d3)]);
    site.proxy.set_fault(Fault::None);
    let out = site.run(&["prune", "--keep", "1", "--min-age", "0s"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_whole(&site, &[Some(&d3)]);
}
