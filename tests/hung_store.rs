//! A store that takes a request and never answers it (a frozen node, a peer
//! the store has not yet noticed is gone): each attempt is abandoned after
//! `[target] request_timeout` and retried, so the run goes on or fails with
//! the cause named, and never waits forever.

use std::process::Output;
use std::time::{Duration, Instant};

use crate::cli::Project;
use crate::s3::S3Site;
use crate::support::{Fault, S3Server, output_within};

/// Far beyond what any run here needs with the retries (six attempts of
/// two seconds and their backoff), far below "forever".
const DEADLINE: Duration = Duration::from_secs(150);

fn site(name: &str) -> S3Site {
    S3Site::with_project(
        S3Server::moto(),
        name,
        Project::new(),
        "request_timeout = \"2s\"",
    )
}

fn run(site: &S3Site, args: &[&str]) -> Output {
    let mut cmd = site.cmd();
    cmd.args(args);
    output_within(cmd, DEADLINE, &format!("assetpub {args:?}"))
}

fn text(out: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn an_upload_left_unanswered_is_retried_after_the_request_timeout() {
    let site = site("hung-upload");
    site.proxy.set_fault_matching(
        "PUT",
        "/css/app.",
        Fault::Hang {
            times: 1,
            forward: false,
        },
    );
    let started = Instant::now();
    let out = run(&site, &["publish"]);
    let elapsed = started.elapsed();
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(site.proxy.injected(), 1, "the upload was left unanswered");
    let puts: Vec<_> = site
        .proxy
        .exchanges()
        .into_iter()
        .filter(|x| x.method == "PUT" && x.target.contains("/css/app."))
        .collect();
    assert_eq!(
        puts.len(),
        2,
        "the hung upload is sent again: {:?}",
        site.proxy.requests()
    );
    assert!(puts[1].same_request(&puts[0]), "{puts:?}");
    assert!(puts[0].injected && puts[0].status.is_none(), "{puts:?}");
    assert_eq!(puts[1].status, Some(200), "{puts:?}");
    assert!(
        elapsed >= Duration::from_secs(2),
        "the retry came before the timeout: {elapsed:?}"
    );
    site.assert_manifest_consistent();
}

/// Publishes with the answer to the write of `manifest.json` that switches
/// the site lost after the write landed; expects success and the new
/// deploy live. `marks`: how many writes of `manifest.json` come first
/// (the mark that starts a switch from a served deploy, see README's
/// Guarantees), each answered; the one after them hangs.
fn publish_losing_the_switch_answer(site: &S3Site, marks: u32) -> serde_json::Value {
    site.proxy.reset_counts();
    site.proxy.set_fault_matching(
        "PUT",
        "/manifest.json",
        Fault::Pass {
            requests: marks,
            then: Box::new(Fault::Hang {
                times: 1,
                forward: true,
            }),
        },
    );
    let out = run(site, &["publish", "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(site.manifest()["deploy"], report["deploy"]);
    assert_eq!(site.proxy.injected(), 1, "the switch's answer was lost");
    assert_eq!(
        site.proxy.count_matching("PUT", "/manifest.json"),
        2 + marks as u64,
        "the switch was sent again after the timeout"
    );
    report
}

#[test]
fn a_lost_answer_to_the_manifest_switch_is_not_taken_for_a_conflict() {
    // The switch lands on the store, its answer never comes back; the retry
    // then fails its own condition (moto enforces them), which is not
    // another deploy winning.
    let site = site("lost-switch");
    let first = publish_losing_the_switch_answer(&site, 0);
    site.p
        .write("site/index.html", "<!doctype html><p>second</p>");
    let second = publish_losing_the_switch_answer(&site, 1);
    assert_ne!(second["deploy"], first["deploy"]);
    assert_eq!(site.manifest()["parent"], first["deploy"]);
    site.assert_manifest_consistent();

    // The state DB took the switch as done: nothing left to do.
    let out = run(&site, &["publish", "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    let noop: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(noop["changed"], false, "{noop}");
}

/// Publishes with the answer to the lock's first write lost after the
/// write landed; expects success, the lock released, and the client's
/// retry of the write refused (moto enforces `If-None-Match`).
fn publish_losing_the_lock_answer(site: &S3Site) {
    site.proxy.reset_counts();
    site.proxy.set_fault_matching(
        "PUT",
        "/.assetpub/lock",
        Fault::Hang {
            times: 1,
            forward: true,
        },
    );
    let out = run(site, &["publish"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(site.proxy.injected(), 1, "the lock's answer was lost");
    let writes: Vec<_> = site
        .proxy
        .exchanges()
        .into_iter()
        .filter(|x| x.method == "PUT" && x.target.contains("/.assetpub/lock"))
        .collect();
    assert!(
        writes[0].injected && writes[0].status.is_none(),
        "{writes:?}"
    );
    assert!(writes[1].same_request(&writes[0]), "{writes:?}");
    assert_eq!(writes[1].status, Some(412), "{writes:?}");
    assert!(
        site.s3.head(&site.key(".assetpub/lock")).is_none(),
        "the lock is released"
    );
    site.assert_manifest_consistent();
}

#[test]
fn a_lost_answer_to_the_lock_is_not_taken_for_another_runs_lock() {
    // The create lands on the store, its answer never comes back; the
    // retry is refused because the lock is there: this run's own. On a
    // target's first run, that refusal also answers whether the store
    // enforces conditional writes.
    let site = site("lost-lock");
    publish_losing_the_lock_answer(&site);
    assert_eq!(site.manifest()["conditional_writes"], true);
    assert_eq!(
        site.proxy.count_matching("PUT", "/.assetpub/probe-"),
        0,
        "the refused retry answered: no probe"
    );
    // And on a later run, whose store's answer is known.
    site.p
        .write("site/index.html", "<!doctype html><p>second</p>");
    publish_losing_the_lock_answer(&site);
    assert!(
        String::from_utf8_lossy(&site.s3.get(&site.key("index.html")).unwrap()).contains("second")
    );
}

#[test]
fn a_store_that_never_answers_fails_the_run_naming_the_timeout() {
    let site = site("never-answers");
    site.proxy.set_fault(Fault::Hang {
        times: u32::MAX,
        forward: false,
    });
    let out = run(&site, &["publish"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("no answer from {} within 2s", site.proxy.endpoint))
            && stderr.contains("request_timeout"),
        "{stderr}"
    );
    assert!(
        site.s3.keys().is_empty(),
        "nothing reached the bucket: {:?}",
        site.s3.keys()
    );
}
