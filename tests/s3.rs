//! The S3 target end to end, on both real servers: moto (AWS semantics,
//! conditional writes enforced) and Garage (an S3-compatible store that
//! ignores them). Every request goes through a counting proxy, and the
//! bucket is inspected with a separate S3 client, never through assetpub.

use std::collections::BTreeSet;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::cli::{Project, pseudo_random};
use crate::support::proxy::Exchange;
use crate::support::s3client::S3Client;
use crate::support::{Fault, Kind, Proxy, S3Server};

pub const PREFIX: &str = "site";

/// A project publishing `site/` to its own bucket on `server`, through a
/// counting proxy.
pub struct S3Site {
    pub p: Project,
    pub server: &'static S3Server,
    pub bucket: String,
    pub proxy: Proxy,
    pub s3: S3Client,
}

impl S3Site {
    pub fn new(server: &'static S3Server, name: &str) -> S3Site {
        Self::with_project(server, name, Project::new(), "")
    }

    /// `extra` is appended to the `[target]` table.
    pub fn with_project(server: &'static S3Server, name: &str, p: Project, extra: &str) -> S3Site {
        let bucket = server.unique_bucket(name);
        let site = S3Site {
            proxy: Proxy::start(&server.endpoint),
            s3: S3Client::new(server, &bucket),
            p,
            server,
            bucket,
        };
        site.configure("[source]\ndirs = [\"site\"]\n", extra);
        site
    }

    /// Writes publish.toml: `source` tables, then this site's target.
    pub fn configure(&self, source: &str, extra: &str) {
        self.p.config(&format!(
            "{source}\n[target]\nurl = \"s3://{}/{PREFIX}\"\npath_style = true\n{extra}\n",
            self.bucket
        ));
    }

    /// assetpub pointed at the proxy through `AWS_ENDPOINT_URL`, with the
    /// server's credentials and nothing else from the environment.
    pub fn cmd(&self) -> Command {
        let mut c = self.p.std_cmd();
        self.server
            .apply_env_with_endpoint(&mut c, &self.proxy.endpoint);
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().expect("run assetpub")
    }

    /// Runs `assetpub ARGS --json`, expecting success.
    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let out = self.run(&[args, &["--json"]].concat());
        assert!(
            out.status.success(),
            "assetpub {args:?} failed ({}): {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
        serde_json::from_slice(&out.stdout).expect("JSON on stdout")
    }

    pub fn key(&self, key: &str) -> String {
        format!("{PREFIX}/{key}")
    }

    pub fn manifest(&self) -> serde_json::Value {
        let bytes = self
            .s3
            .get(&self.key("manifest.json"))
            .expect("manifest.json exists");
        serde_json::from_slice(&bytes).expect("manifest.json is JSON")
    }

    /// Checks that every object the current manifest names exists with the
    /// size and headers it promises.
    pub fn assert_manifest_consistent(&self) {
        let m = self.manifest();
        for (logical, e) in m["files"].as_object().expect("files") {
            let key = e["key"].as_str().unwrap();
            let object = e["object"].as_str().unwrap_or(key);
            for key in [object, key] {
                let found = self.s3.head(&self.key(key));
                // A page written straight has its object made only when a
                // later deploy replaces it.
                if found.is_none() && key == object && written_straight(e) {
                    continue;
                }
                let stat = found.unwrap_or_else(|| panic!("{logical}: `{key}` is missing"));
                assert_eq!(
                    stat.size,
                    e["size"].as_u64().unwrap(),
                    "{logical}: size of `{key}`"
                );
                assert_eq!(
                    stat.content_type.as_deref(),
                    e["content_type"].as_str(),
                    "{logical}: Content-Type of `{key}`"
                );
                // The fingerprinted object of a stable-key file is as
                // immutable as any other; its stable key carries the rule's
                // Cache-Control.
                let cache_control = if key == object && e["object"].is_string() {
                    "public, max-age=31536000, immutable"
                } else {
                    e["cache_control"].as_str().unwrap()
                };
                assert_eq!(
                    stat.cache_control.as_deref(),
                    Some(cache_control),
                    "{logical}: Cache-Control of `{key}`"
                );
            }
        }
    }

    /// PUTs (uploads and copies) to keys other than assetpub's own records
    /// and the manifest.
    pub fn object_puts(&self) -> Vec<String> {
        self.object_put_exchanges()
            .into_iter()
            .map(|x| x.target)
            .collect()
    }

    /// The object PUTs that carried bytes: not server-side copies.
    pub fn object_puts_with_bytes(&self) -> Vec<String> {
        self.object_put_exchanges()
            .into_iter()
            .filter(|x| x.header("x-amz-copy-source").is_none())
            .map(|x| x.target)
            .collect()
    }

    fn object_put_exchanges(&self) -> Vec<Exchange> {
        self.proxy
            .exchanges()
            .into_iter()
            .filter(|x| {
                let t = &x.target;
                x.method == "PUT"
                    && !t.contains("/.assetpub/")
                    && !t.contains("/manifest.json")
                    && !t.contains("partNumber=")
            })
            .collect()
    }

    /// The key, relative to the prefix, that a request path of this site
    /// names (`/BUCKET/site/KEY`, path-style).
    pub fn key_of(&self, path: &str) -> Option<String> {
        path.strip_prefix(&format!("/{}/{PREFIX}/", self.bucket))
            .map(str::to_string)
    }

    /// The PUTs seen (uploads and server-side copies, not parts) to keys
    /// other than assetpub's own records and the manifest, with their key.
    pub fn object_writes(&self) -> Vec<(String, Exchange)> {
        self.proxy
            .exchanges()
            .into_iter()
            .filter(|x| x.method == "PUT" && !x.target.contains("partNumber="))
            .filter_map(|x| Some((self.key_of(x.path())?, x)))
            .filter(|(k, _)| !k.starts_with(".assetpub/") && k != "manifest.json")
            .collect()
    }
}

/// Whether a manifest entry's page was written straight to its stable key
/// (its object is made only when a later deploy replaces that key).
pub fn written_straight(e: &serde_json::Value) -> bool {
    e["written"].as_object().is_some_and(|w| !w.is_empty())
}

/// The stable key of every file a manifest names that has one.
pub fn stable_keys(m: &serde_json::Value) -> BTreeSet<String> {
    m["files"]
        .as_object()
        .expect("files")
        .values()
        .filter(|e| e["object"].is_string())
        .map(|e| e["key"].as_str().unwrap().to_string())
        .collect()
}

/// Whether a PUT is a server-side copy, and of which key of `site`.
fn copy_source(site: &S3Site, x: &Exchange) -> Option<String> {
    let source = x.header("x-amz-copy-source")?;
    let source = source.split('?').next().unwrap();
    site.key_of(&format!("/{}", source.trim_start_matches('/')))
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn server(kind: Kind) -> &'static S3Server {
    match kind {
        Kind::Moto => S3Server::moto(),
        Kind::Garage => S3Server::garage(),
    }
}

/// Publish, no-op, change, delete, rollback, verify, tamper: the core
/// scenarios, with the stored headers read back by HEAD.
fn lifecycle(kind: Kind) {
    let site = S3Site::new(server(kind), "lifecycle");
    let p = &site.p;
    // Big enough that a re-upload during rollback would show in the bytes.
    let about = format!("<!doctype html>{}", "<p>about us</p>\n".repeat(4000));
    p.write("site/about.html", &about);
    p.age_sources();

    let first = site.json(&["publish"]);
    let d1 = first["deploy"].as_str().unwrap().to_string();
    site.assert_manifest_consistent();
    let m = site.manifest();
    assert_eq!(m["deploy"], d1.as_str());
    let css = m["files"]["css/app.css"]["key"].as_str().unwrap();
    let stat = site.s3.head(&site.key(css)).unwrap();
    assert_eq!(
        stat.cache_control.as_deref(),
        Some("public, max-age=31536000, immutable")
    );
    assert_eq!(
        stat.content_type.as_deref(),
        Some("text/css; charset=utf-8")
    );
    assert_eq!(stat.content_encoding, None);
    let index = site.s3.head(&site.key("index.html")).unwrap();
    assert_eq!(
        index.cache_control.as_deref(),
        Some("public, max-age=0, must-revalidate")
    );
    assert_eq!(
        index.content_type.as_deref(),
        Some("text/html; charset=utf-8")
    );
    let manifest = site.s3.head(&site.key("manifest.json")).unwrap();
    assert_eq!(manifest.cache_control.as_deref(), Some("no-cache"));
    let font = m["files"]["fonts/f.woff2"]["key"].as_str().unwrap();
    assert_eq!(
        site.s3
            .head(&site.key(font))
            .unwrap()
            .content_type
            .as_deref(),
        Some("font/woff2")
    );
    assert!(
        site.s3
            .head(&site.key(&format!(".assetpub/deploys/{d1}.json")))
            .is_some()
    );
    assert!(
        site.s3.keys().iter().all(|k| k.starts_with("site/")),
        "nothing outside the prefix: {:?}",
        site.s3.keys()
    );
    assert_eq!(
        site.s3.head(&site.key(".assetpub/lock")).map(|s| s.size),
        None,
        "lock released"
    );

    // No-op: one conditional GET of the manifest, no PUT at all.
    site.proxy.reset_counts();
    let noop = site.json(&["publish"]);
    assert_eq!(noop["changed"], false);
    // One request: the GET of the manifest, conditional on the ETag last
    // seen, so an unchanged manifest costs a 304 and no body.
    let seen = site.proxy.exchanges();
    assert_eq!(seen.len(), 1, "no-op made {:?}", site.proxy.requests());
    let get = &seen[0];
    assert_eq!(get.method, "GET", "{get:?}");
    assert_eq!(
        site.key_of(get.path()).as_deref(),
        Some("manifest.json"),
        "{get:?}"
    );
    assert!(get.header("if-none-match").is_some(), "{get:?}");
    assert_eq!(get.status, Some(304), "{get:?}");
    assert_eq!(site.manifest()["deploy"], d1.as_str());

    // One image changes: that object and nothing else is uploaded.
    p.write_bytes("site/img/logo.png", &pseudo_random(2500, 77));
    site.proxy.reset_counts();
    let second = site.json(&["publish"]);
    let d2 = second["deploy"].as_str().unwrap().to_string();
    let puts = site.object_puts();
    assert_eq!(puts.len(), 1, "{puts:?}");
    assert!(puts[0].contains("/img/logo."), "{puts:?}");
    let m2 = site.manifest();
    assert_eq!(m2["parent"], d1.as_str());
    let logo = m2["files"]["img/logo.png"]["key"].as_str().unwrap();
    assert_eq!(
        site.s3.get(&site.key(logo)).unwrap(),
        pseudo_random(2500, 77)
    );
    site.assert_manifest_consistent();

    // A file removed: its stable key goes once the new manifest is live;
    // its fingerprinted object stays for rollback.
    let about_object = m2["files"]["about.html"]["object"]
        .as_str()
        .unwrap()
        .to_string();
    std::fs::remove_file(p.path("site/about.html")).unwrap();
    let third = site.json(&["publish"]);
    assert_eq!(third["removed"], serde_json::json!(["about.html"]));
    assert!(site.s3.head(&site.key("about.html")).is_none());
    assert!(site.s3.head(&site.key(&about_object)).is_some());
    site.assert_manifest_consistent();

    // Rollback to the first deploy: server-side copies, so none of the
    // page's bytes travel again.
    site.proxy.reset_counts();
    let rb = site.json(&["rollback", &d2]);
    assert_eq!(rb["to"], d2.as_str());
    assert!(
        site.proxy.body_bytes() < about.len() as u64 / 2,
        "rollback sent {} bytes",
        site.proxy.body_bytes()
    );
    let writes = site.object_writes();
    assert!(
        writes.iter().any(|(k, _)| k == "about.html"),
        "the page is put back: {writes:?}"
    );
    for (key, x) in &writes {
        assert!(
            copy_source(&site, x).is_some(),
            "`{key}` was uploaded: {x:?}"
        );
    }
    assert_eq!(
        site.s3.get(&site.key("about.html")).unwrap(),
        about.as_bytes()
    );
    assert_eq!(site.manifest()["deploy"], d2.as_str());
    site.assert_manifest_consistent();
    let rb = site.json(&["rollback", &d1]);
    assert_eq!(rb["to"], d1.as_str());
    let logo1 = m["files"]["img/logo.png"]["key"].as_str().unwrap();
    assert_eq!(site.manifest()["files"]["img/logo.png"]["key"], logo1);

    let h = site.json(&["history"]);
    let ids: Vec<&str> = h["deploys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap())
        .collect();
    assert!(
        ids.contains(&d1.as_str()) && ids.contains(&d2.as_str()),
        "{h}"
    );

    let v = site.json(&["verify"]);
    assert_eq!(v["problems"], serde_json::json!([]), "{v}");

    // Tampering with an object is caught, and named.
    site.s3
        .put(&site.key(css), b"body{}", "text/css; charset=utf-8");
    let out = site.run(&["verify"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(css), "verify names the object: {text}");
}

#[test]
fn s3_lifecycle_on_moto() {
    lifecycle(Kind::Moto);
}

#[test]
fn s3_lifecycle_on_garage() {
    lifecycle(Kind::Garage);
}

#[test]
fn garage_is_reported_as_not_enforcing_conditional_writes() {
    let site = S3Site::new(S3Server::garage(), "probe");
    let out = site.run(&["publish", "-vv"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    // Verbose output names the endpoint and keys, never the secret.
    let all = format!("{err}{}", String::from_utf8_lossy(&out.stdout));
    assert!(
        !all.contains(&site.server.secret_key),
        "the secret was printed"
    );
    assert!(err.contains("does not enforce conditional writes"), "{err}");
    assert!(err.contains("not protected"), "{err}");
    // Learnt from the lock, created twice with `If-None-Match: *` (Garage
    // lets the second overwrite the first): no probe key of its own.
    assert_eq!(site.proxy.count_matching("PUT", "/.assetpub/probe-"), 0);
    assert_eq!(site.proxy.count_matching("PUT", "/.assetpub/lock"), 2);
    assert!(!site.s3.keys().iter().any(|k| k.contains(".assetpub/lock")));
    assert_eq!(site.manifest()["conditional_writes"], false);

    // Remembered: the next run writes the lock once, but still says it.
    site.p
        .write("site/robots.txt", "User-agent: *\nDisallow: /tmp\n");
    site.proxy.reset_counts();
    let out = site.run(&["publish"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(site.proxy.count_matching("PUT", "/.assetpub/lock"), 1);
    assert!(stderr(&out).contains("does not enforce conditional writes"));
}

#[test]
fn moto_enforces_conditional_writes_and_says_nothing() {
    let site = S3Site::new(S3Server::moto(), "probe");
    let out = site.run(&["publish"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        !stderr(&out).contains("conditional writes"),
        "{}",
        stderr(&out)
    );
    // The second create of the lock was refused: that is the answer.
    assert_eq!(site.proxy.count_matching("PUT", "/.assetpub/probe-"), 0);
    assert_eq!(site.proxy.count_matching("PUT", "/.assetpub/lock"), 2);
    assert_eq!(site.manifest()["conditional_writes"], true);
}

/// A target's first run that finds a lock left behind (expired) cannot
/// learn the store's answer from creating the lock: it probes a key of
/// its own, takes the lock over, and gets the answer right either way.
fn a_first_run_that_finds_an_expired_lock_probes(server: &'static S3Server, enforced: bool) {
    let site = S3Site::new(server, "stalelock");
    site.s3.put(
        &site.key(".assetpub/lock"),
        br#"{"owner":"ci","host":"runner-7","pid":42,"command":"publish","created":"2020-01-01T00:00:00Z","expires":"2020-01-01T00:15:00Z"}"#,
        "application/json",
    );
    let out = site.run(&["publish"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(site.proxy.count_matching("PUT", "/.assetpub/probe-"), 2);
    assert!(
        !site
            .s3
            .keys()
            .iter()
            .any(|k| k.contains(".assetpub/") && (k.contains("probe-") || k.ends_with("/lock")))
    );
    assert_eq!(site.manifest()["conditional_writes"], enforced);
    assert_eq!(
        stderr(&out).contains("does not enforce conditional writes"),
        !enforced,
        "{}",
        stderr(&out)
    );
}

/// Puts another run's lock (held until 2999) at `site` and publishes:
/// checks that the run stops with exit 4 naming that holder and leaves
/// the lock as it was. Returns the run's output.
fn publish_into_a_held_lock(site: &S3Site) -> Output {
    let lock = br#"{"owner":"ci","host":"runner-7","pid":42,"command":"publish","created":"2026-01-01T00:00:00Z","expires":"2999-01-01T00:00:00Z"}"#;
    site.s3
        .put(&site.key(".assetpub/lock"), lock, "application/json");
    let out = site.run(&["publish"]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("the deploy lock is held by ci@runner-7 (pid 42"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        site.s3.get(&site.key(".assetpub/lock")).as_deref(),
        Some(&lock[..])
    );
    out
}

/// A target's first run that finds a live lock stops at it (exit 4, naming
/// the holder) whatever the store does with conditions: the lock is left
/// as it was, and nothing of the site is written.
fn a_first_run_that_finds_a_held_lock_stops(server: &'static S3Server) {
    let site = S3Site::new(server, "heldlock");
    let out = publish_into_a_held_lock(&site);
    let keys = site.s3.keys();
    assert_eq!(keys, vec![site.key(".assetpub/lock")], "{keys:?}");
    // What the probe learnt is said and kept: the next run, which finds
    // the lock still held, says it before it even looks, and probes no more.
    let warning = "does not enforce conditional writes";
    // moto enforces `If-None-Match`, as AWS S3 does; Garage ignores it.
    let enforces = matches!(server.kind, crate::support::Kind::Moto);
    assert_eq!(
        stderr(&out).contains(warning),
        !enforces,
        "{}",
        stderr(&out)
    );
    site.proxy.reset_counts();
    let again = site.run(&["publish"]);
    assert_eq!(again.status.code(), Some(4), "{}", stderr(&again));
    assert_eq!(
        stderr(&again).contains(warning),
        !enforces,
        "{}",
        stderr(&again)
    );
    assert_eq!(
        site.proxy.count_matching("PUT", "/.assetpub/probe-"),
        0,
        "{:?}",
        site.proxy.requests()
    );
}

#[test]
fn a_first_run_that_finds_a_held_lock_stops_on_moto() {
    a_first_run_that_finds_a_held_lock_stops(S3Server::moto());
}

#[test]
fn a_first_run_that_finds_a_held_lock_stops_on_garage() {
    a_first_run_that_finds_a_held_lock_stops(S3Server::garage());
}

/// The state DB learnt moto's answer (it enforces conditional writes) for
/// `s3://BUCKET/site`; the same config is then pointed at a bucket of the
/// same name on Garage, which ignores them, where another run holds the
/// lock. The answer learnt elsewhere is not trusted: the run reads the
/// lock first and stops with exit 4, where it would have overwritten it.
#[test]
fn an_answer_learnt_behind_another_endpoint_is_not_trusted() {
    let on_moto = S3Site::new(S3Server::moto(), "moved");
    on_moto.json(&["publish"]);
    let S3Site { p, bucket, .. } = on_moto;
    let garage = S3Server::garage();
    garage.create_bucket(&bucket);
    let site = S3Site {
        proxy: Proxy::start(&garage.endpoint),
        s3: S3Client::new(garage, &bucket),
        p,
        server: garage,
        bucket,
    };
    publish_into_a_held_lock(&site);
    assert!(site.s3.head(&site.key("manifest.json")).is_none());
}

#[test]
fn a_first_run_that_finds_an_expired_lock_probes_moto() {
    a_first_run_that_finds_an_expired_lock_probes(S3Server::moto(), true);
}

#[test]
fn a_first_run_that_finds_an_expired_lock_probes_garage() {
    a_first_run_that_finds_an_expired_lock_probes(S3Server::garage(), false);
}

#[test]
fn immutable_objects_are_written_with_if_none_match_and_412_is_success() {
    let site = S3Site::new(S3Server::moto(), "ifnonematch");
    site.p.age_sources();
    site.json(&["publish"]);
    let m = site.manifest();
    // Not the objects of files kept at stable names (pages), which are
    // written straight to those names.
    let objects: BTreeSet<String> = m["files"]
        .as_object()
        .expect("files")
        .values()
        .filter(|e| !written_straight(e))
        .map(|e| e["key"].as_str().unwrap().to_string())
        .collect();
    assert!(objects.len() > 3, "{objects:?}");
    // Every fingerprinted object was uploaded, and only ever created: each
    // PUT of one carries `If-None-Match: *` and is not a copy.
    let writes: Vec<(String, Exchange)> = site
        .object_writes()
        .into_iter()
        .filter(|(k, _)| objects.contains(k))
        .collect();
    let written: BTreeSet<String> = writes.iter().map(|(k, _)| k.clone()).collect();
    assert_eq!(written, objects, "every object is uploaded");
    for (key, x) in &writes {
        assert_eq!(
            x.header("if-none-match"),
            Some("*"),
            "{key}: {:?}",
            x.headers
        );
        assert_eq!(x.header("x-amz-copy-source"), None, "{key}");
        assert_eq!(x.status, Some(200), "{key}");
    }

    // The deploy is forgotten (no manifest.json, no state DB), so the rerun
    // knows of no object and sends each again. moto enforces the condition:
    // it answers 412 to every one, which means "already there".
    site.s3.delete(&site.key("manifest.json"));
    std::fs::remove_dir_all(site.p.path(".assetpub")).unwrap();
    site.proxy.reset_counts();
    let again = site.json(&["publish"]);
    let deploy = again["deploy"].as_str().expect("a new deploy").to_string();
    let writes: Vec<(String, Exchange)> = site
        .object_writes()
        .into_iter()
        .filter(|(k, _)| objects.contains(k))
        .collect();
    let refused: BTreeSet<String> = writes
        .iter()
        .filter(|(_, x)| x.status == Some(412) && !x.injected)
        .map(|(k, _)| k.clone())
        .collect();
    assert_eq!(
        refused, objects,
        "the store answered 412 to each: {writes:?}"
    );
    for (key, x) in &writes {
        assert_eq!(x.header("if-none-match"), Some("*"), "{key}");
        assert_eq!(x.status, Some(412), "{key} was written over");
    }
    assert_eq!(again["already_there"], objects.len(), "{again}");
    // The 412s counted as uploaded: the site is whole, on the same objects.
    assert_eq!(site.manifest()["deploy"], deploy.as_str());
    assert_eq!(site.manifest()["files"], m["files"]);
    site.assert_manifest_consistent();
    crate::faults::assert_whole(&site, &[Some(&deploy)]);
    assert_eq!(site.json(&["verify"])["problems"], serde_json::json!([]));
}

/// The state DB says the target holds objects it no longer has (the
/// bucket was emptied behind its back): each is found missing by a HEAD
/// and sent again, and the report says so rather than "0 objects to
/// upload".
#[test]
fn objects_the_state_db_records_but_the_target_lost_are_sent_again_and_reported() {
    let site = S3Site::new(S3Server::moto(), "resent");
    let first = site.json(&["publish"]);
    let objects = first["uploads"].as_array().unwrap().len();
    assert!(objects > 0, "{first}");
    for key in site.s3.keys() {
        site.s3.delete(&key);
    }
    site.p
        .write("site/index.html", "<!doctype html><p>again</p>");
    let out = site.run(&["publish"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains(&format!(
            "  {objects} objects the state DB recorded were missing at the target: uploaded again\n"
        )),
        "{text}"
    );
    crate::faults::assert_whole(&site, &[crate::faults::current(&site).as_deref()]);
    site.p
        .write("site/index.html", "<!doctype html><p>third</p>");
    for key in site.s3.keys() {
        site.s3.delete(&key);
    }
    let again = site.json(&["publish"]);
    assert_eq!(again["resent"], objects, "{again}");
    assert_eq!(site.json(&["verify"])["problems"], serde_json::json!([]));
}

#[test]
fn concurrent_publishes_on_moto_one_wins_the_other_exits_4() {
    let server = S3Server::moto();
    let a = S3Site::new(server, "race");
    let b_project = Project::new();
    b_project.write("site/index.html", "<!doctype html><p>build B</p>");
    let b = S3Site {
        proxy: Proxy::start(&server.endpoint),
        s3: S3Client::new(server, &a.bucket),
        p: b_project,
        server,
        bucket: a.bucket.clone(),
    };
    b.configure("[source]\ndirs = [\"site\"]\n", "");
    // Slow requests, so that the two runs overlap for certain.
    a.proxy.set_fault(Fault::Delay { ms: 150 });
    b.proxy.set_fault(Fault::Delay { ms: 150 });
    let spawn = |s: &S3Site| {
        s.cmd()
            .args(["publish", "--json"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn")
    };
    let (ca, cb) = (spawn(&a), spawn(&b));
    let (oa, ob) = (
        ca.wait_with_output().unwrap(),
        cb.wait_with_output().unwrap(),
    );
    let codes = [oa.status.code(), ob.status.code()];
    assert!(
        codes.contains(&Some(0)) && codes.contains(&Some(4)),
        "codes {codes:?}\nA: {}\nB: {}",
        stderr(&oa),
        stderr(&ob)
    );
    let (winner, loser, lost) = if oa.status.success() {
        (&a, &b, &ob)
    } else {
        (&b, &a, &oa)
    };
    let msg = stderr(lost);
    assert!(
        msg.contains("lock") || msg.contains("another deploy"),
        "{msg}"
    );
    assert_eq!(
        msg.lines().filter(|l| l.starts_with("error:")).count(),
        1,
        "{msg}"
    );
    winner.assert_manifest_consistent();
    let winning: serde_json::Value = serde_json::from_slice(if oa.status.success() {
        &oa.stdout
    } else {
        &ob.stdout
    })
    .unwrap();
    assert_eq!(winner.manifest()["deploy"], winning["deploy"]);

    // The loser, run again, deploys on top of the winner.
    loser.proxy.set_fault(Fault::None);
    let again = loser.json(&["publish"]);
    assert_eq!(again["parent"], winning["deploy"]);
    loser.assert_manifest_consistent();
}

fn lock_json(expires: &str) -> String {
    format!(
        r#"{{"owner":"ci","host":"runner-7","pid":4242,"command":"publish","created":"2026-01-01T00:00:00Z","expires":"{expires}"}}"#
    )
}

#[test]
fn a_held_lock_exits_4_naming_the_holder_and_a_stale_one_is_taken_over() {
    let site = S3Site::new(S3Server::moto(), "lock");
    site.json(&["publish"]);
    site.p
        .write("site/robots.txt", "User-agent: *\nDisallow: /a\n");

    let future = (chrono::Utc::now() + chrono::Duration::hours(1))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    site.s3.put(
        &site.key(".assetpub/lock"),
        lock_json(&future).as_bytes(),
        "application/json",
    );
    let out = site.run(&["publish"]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("runner-7") && err.contains("ci"),
        "names the holder: {err}"
    );
    assert!(err.contains("--break-lock"), "{err}");
    let before = site.manifest()["deploy"].clone();

    // A human breaks it.
    let forced = site.json(&["publish", "--break-lock"]);
    assert_eq!(forced["parent"], before);
    assert!(site.s3.head(&site.key(".assetpub/lock")).is_none());

    // A lock past its expiry is taken over without asking.
    site.s3.put(
        &site.key(".assetpub/lock"),
        lock_json("2026-01-01T00:15:00Z").as_bytes(),
        "application/json",
    );
    site.p
        .write("site/robots.txt", "User-agent: *\nDisallow: /b\n");
    let out = site.run(&["publish"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(site.s3.head(&site.key(".assetpub/lock")).is_none());
}

#[test]
fn an_interrupted_publish_resumes_uploading_only_what_is_missing() {
    let p = Project::new();
    for i in 0..60 {
        p.write_bytes(
            &format!("site/img/p{i:02}.png"),
            &pseudo_random(20_000, 1000 + i),
        );
    }
    let site = S3Site::with_project(S3Server::moto(), "resume", p, "concurrency = 2");
    site.p.age_sources();
    site.proxy
        .set_fault_matching("PUT", "/img/p", Fault::Delay { ms: 100 });
    let mut child = site
        .cmd()
        .args(["publish", "-q"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while site.proxy.count_matching("PUT", "/img/p") < 20 {
        assert!(Instant::now() < deadline, "the upload never got going");
        assert!(
            child.try_wait().unwrap().is_none(),
            "publish ended before it was killed"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let first = site.proxy.count_matching("PUT", "/img/p");
    assert!(
        site.s3.head(&site.key("manifest.json")).is_none(),
        "nothing went live"
    );

    site.proxy.set_fault(Fault::None);
    site.proxy.reset_counts();
    let out = site.json(&["publish"]);
    assert!(out["deploy"].is_string());
    let again = site.proxy.count_matching("PUT", "/img/p");
    // At most the two uploads in flight when it was killed are sent twice.
    assert!(
        again <= 60 - first + 2,
        "first run sent {first}, the rerun {again} of 60"
    );
    assert!(first + again >= 60);
    site.assert_manifest_consistent();
    assert_eq!(site.json(&["verify"])["problems"], serde_json::json!([]));
}

#[test]
fn large_files_go_up_in_parts_on_garage() {
    let p = Project::new();
    let big = pseudo_random(70 * 1024 * 1024 + 123, 9);
    p.write_bytes("site/media/video.mp4", &big);
    let site = S3Site::with_project(S3Server::garage(), "multipart", p, "");
    site.configure(
        "[source]\ndirs = [\"site\"]\nmax_file_size = \"100 MiB\"\n",
        "",
    );
    site.json(&["publish"]);
    assert!(
        site.proxy.count_matching("POST", "uploads") >= 1,
        "{:?}",
        site.proxy.counts()
    );
    assert!(site.proxy.count_matching("PUT", "partNumber=") >= 4);
    let m = site.manifest();
    let key = m["files"]["media/video.mp4"]["key"].as_str().unwrap();
    let stat = site.s3.head(&site.key(key)).unwrap();
    assert_eq!(stat.size, big.len() as u64);
    assert_eq!(stat.content_type.as_deref(), Some("video/mp4"));
    assert!(site.s3.get(&site.key(key)).unwrap() == big, "bytes differ");
    assert_eq!(site.s3.open_multipart_uploads(), 0);
}

#[test]
fn a_failed_multipart_upload_is_aborted() {
    let p = Project::new();
    p.write_bytes("site/media/video.mp4", &pseudo_random(66 * 1024 * 1024, 10));
    let site = S3Site::with_project(S3Server::moto(), "abort", p, "");
    site.configure(
        "[source]\ndirs = [\"site\"]\nmax_file_size = \"100 MiB\"\n",
        "",
    );
    // Every part upload fails, past the retries.
    site.proxy.set_fault_matching(
        "PUT",
        "partNumber=",
        Fault::Status {
            code: 500,
            s3_code: "InternalError",
            times: 1000,
        },
    );
    let out = site.run(&["publish"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("video"), "{}", stderr(&out));
    assert!(
        site.proxy.count_matching("DELETE", "uploadId=") >= 1,
        "aborted"
    );
    assert_eq!(site.s3.open_multipart_uploads(), 0);
    assert!(site.s3.head(&site.key("manifest.json")).is_none());
}

#[test]
fn a_store_answer_the_sdk_cannot_read_keeps_its_explanation() {
    // moto answers CompleteMultipartUpload with a document whose root
    // element the SDK rejects: HTTP 200, and an error all the same.
    let p = Project::new();
    p.write_bytes("site/media/video.mp4", &pseudo_random(65 * 1024 * 1024, 11));
    let site = S3Site::with_project(S3Server::moto(), "unparsed", p, "");
    site.configure(
        "[source]\ndirs = [\"site\"]\nmax_file_size = \"100 MiB\"\n",
        "",
    );
    let out = site.run(&["publish"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("cannot complete the multipart upload of `")
            && err.contains("/site/media/video."),
        "{err}"
    );
    assert!(err.contains("HTTP 200"), "the status is kept: {err}");
    // What the SDK said about the answer, not only its status.
    let explanation = err
        .lines()
        .find(|l| l.contains("HTTP 200"))
        .and_then(|l| l.split_once("HTTP 200"))
        .map(|(_, rest)| rest.trim_start_matches(':').trim().to_string())
        .unwrap_or_default();
    assert!(
        !explanation.is_empty() && explanation.to_lowercase().contains("pars"),
        "the SDK's explanation is kept: {err}"
    );
    assert!(site.s3.head(&site.key("manifest.json")).is_none());
}

#[test]
fn missing_credentials_are_one_clear_line() {
    let site = S3Site::new(S3Server::moto(), "nocreds");
    let out = site
        .cmd()
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .arg("publish")
        .output()
        .unwrap();
    let err = stderr(&out);
    // Configuration the user fixes in the environment: exit 2.
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("AWS_ACCESS_KEY_ID"),
        "names the variables: {err}"
    );
    assert!(
        !err.contains("panicked") && err.lines().count() <= 3,
        "{err}"
    );
    assert_eq!(site.proxy.count("PUT"), 0);
}

/// A profile set up for IAM Identity Center with no login yet: the error
/// says to log in, decided from the profile, not from the error's text.
#[test]
fn a_profile_using_sso_without_a_login_says_to_log_in() {
    let site = S3Site::new(S3Server::moto(), "sso");
    let home = site.p.path("home");
    std::fs::create_dir_all(home.join(".aws")).unwrap();
    let config = home.join(".aws/config");
    std::fs::write(
        &config,
        "[profile team]\nsso_session = corp\nsso_account_id = 111122223333\nsso_role_name = Deploy\nregion = us-east-1\n\n[sso-session corp]\nsso_start_url = https://corp.awsapps.com/start\nsso_region = us-east-1\n",
    )
    .unwrap();
    let out = site
        .cmd()
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env_remove("AWS_SESSION_TOKEN")
        .env("HOME", &home)
        .env("AWS_CONFIG_FILE", &config)
        .env("AWS_SHARED_CREDENTIALS_FILE", home.join(".aws/credentials"))
        .env("AWS_PROFILE", "team")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .arg("publish")
        .output()
        .unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("run `aws sso login --profile team`"), "{err}");
    assert_eq!(site.proxy.count("PUT"), 0);
}

#[test]
fn a_missing_bucket_is_named() {
    let site = S3Site::new(S3Server::moto(), "nobucket");
    site.p.config(&format!(
        "[source]\ndirs = [\"site\"]\n[target]\nurl = \"s3://no-such-bucket-{}/x\"\npath_style = true\n",
        site.bucket
    ));
    let out = site.run(&["publish"]);
    let err = stderr(&out);
    // Configuration the user fixes in publish.toml: exit 2.
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("no-such-bucket-"), "{err}");
    assert!(!err.contains(&site.server.secret_key));
    assert_eq!(site.proxy.count("PUT"), 0);
}

#[test]
fn wrong_credentials_are_named_and_never_printed() {
    let site = S3Site::new(S3Server::garage(), "badcreds");
    let secret = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    let out = site
        .cmd()
        .env("AWS_SECRET_ACCESS_KEY", secret)
        .args(["publish", "-vv"])
        .output()
        .unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("AWS_SECRET_ACCESS_KEY"), "{err}");
    assert!(!err.contains(secret) && !String::from_utf8_lossy(&out.stdout).contains(secret));
    assert!(site.s3.head(&site.key("manifest.json")).is_none());
}

fn header_rules(kind: Kind) {
    let site = S3Site::new(server(kind), "rules");
    site.p.age_sources();
    site.json(&["publish"]);
    let rules = "[[rules]]\nmatch = \"**/*.png\"\ncache_control = \"public, max-age=600\"\ncontent_disposition = \"inline\"\ncontent_language = \"en\"\n[rules.metadata]\nteam = \"web\"\n";
    site.configure(&format!("[source]\ndirs = [\"site\"]\n{rules}"), "");
    site.proxy.reset_counts();
    let out = site.json(&["publish"]);
    assert_eq!(
        out["uploads"].as_array().unwrap().len(),
        0,
        "same bytes: nothing uploaded"
    );
    let updates: BTreeSet<String> = out["header_updates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["key"].as_str().unwrap().to_string())
        .collect();
    assert!(!updates.is_empty(), "{out}");
    // Copies, not uploads: each object with new headers got a server-side
    // copy onto itself, and no PUT of an object sent bytes.
    let writes = site.object_writes();
    for key in &updates {
        let copies = writes
            .iter()
            .filter(|(k, x)| k == key && copy_source(&site, x).as_ref() == Some(key))
            .count();
        assert_eq!(copies, 1, "`{key}` copied onto itself once: {writes:?}");
    }
    let uploads: Vec<&String> = writes
        .iter()
        .filter(|(_, x)| x.header("x-amz-copy-source").is_none())
        .map(|(k, _)| k)
        .collect();
    assert!(uploads.is_empty(), "uploaded, not copied: {uploads:?}");
    let m = site.manifest();
    let logo = m["files"]["img/logo.png"]["key"].as_str().unwrap();
    let stat = site.s3.head(&site.key(logo)).unwrap();
    assert_eq!(stat.cache_control.as_deref(), Some("public, max-age=600"));
    assert_eq!(stat.content_disposition.as_deref(), Some("inline"));
    assert_eq!(stat.content_language.as_deref(), Some("en"));
    assert_eq!(stat.metadata.get("team").map(String::as_str), Some("web"));
    site.assert_manifest_consistent();
}

#[test]
fn header_rules_are_stored_and_a_rule_change_alone_is_reapplied_by_copy_on_garage() {
    header_rules(Kind::Garage);
}

#[test]
fn header_rules_are_stored_and_a_rule_change_alone_is_reapplied_by_copy_on_moto() {
    header_rules(Kind::Moto);
}

/// `encoding` decides what the object at each key holds, with the matching
/// `Content-Encoding`; `sidecars` adds `.gz` and `.br` objects beside it.
/// Changing `encoding` for a target that has deploys is refused: it would
/// put other bytes under keys cached for a year, and break rollback.
fn encodings(kind: Kind) {
    let css = "body { color: red; margin: 0 auto; }\n".repeat(100);
    let page = format!("<!doctype html>{}", "<p>text</p>\n".repeat(60));
    let make = |name: &str, target: &str| {
        let p = Project::new();
        p.write("site/css/app.css", &css);
        p.write("site/index.html", &page);
        let site = S3Site::with_project(server(kind), name, p, target);
        site.json(&["publish"]);
        let key = site.manifest()["files"]["css/app.css"]["key"]
            .as_str()
            .unwrap()
            .to_string();
        (site, key)
    };

    // gzip in the object.
    let (site, app) = make("enc-gzip", "encoding = \"gzip\"");
    let m = site.manifest();
    let stat = site.s3.head(&site.key(&app)).unwrap();
    assert_eq!(stat.content_encoding.as_deref(), Some("gzip"));
    assert_eq!(
        stat.content_type.as_deref(),
        Some("text/css; charset=utf-8")
    );
    let body = site.s3.get(&site.key(&app)).unwrap();
    assert_eq!(crate::pipeline::gunzip(&body), css.as_bytes());
    let index = site.s3.head(&site.key("index.html")).unwrap();
    assert_eq!(index.content_encoding.as_deref(), Some("gzip"));
    assert_eq!(
        crate::pipeline::gunzip(&site.s3.get(&site.key("index.html")).unwrap()),
        page.as_bytes()
    );
    // Random bytes do not compress: stored as they are, no Content-Encoding.
    let logo = m["files"]["img/logo.png"]["key"].as_str().unwrap();
    let logo = site.s3.head(&site.key(logo)).unwrap();
    assert_eq!(logo.content_encoding, None);
    assert_eq!(logo.size, 2000);
    assert!(
        site.s3.head(&site.key(&format!("{app}.gz"))).is_none(),
        "no sidecars unless asked"
    );
    // Switching the same target to brotli: refused before anything is sent.
    site.configure("[source]\ndirs = [\"site\"]\n", "encoding = \"br\"");
    site.proxy.reset_counts();
    for cmd in ["plan", "publish"] {
        let out = site.run(&[cmd]);
        assert_eq!(out.status.code(), Some(2), "{cmd}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("`[target] encoding` is `br`")
                && stderr(&out).contains("hold `gzip`"),
            "{}",
            stderr(&out)
        );
    }
    assert_eq!(site.proxy.count("PUT"), 0, "{:?}", site.proxy.requests());
    assert_eq!(site.s3.get(&site.key(&app)).unwrap(), body);
    assert_eq!(site.manifest(), m);

    // Brotli in the object, and the other encoding beside it; the object's
    // own is not repeated.
    let (site, app) = make("enc-br", "encoding = \"br\"\nsidecars = true");
    let stat = site.s3.head(&site.key(&app)).unwrap();
    assert_eq!(stat.content_encoding.as_deref(), Some("br"));
    assert_eq!(
        crate::pipeline::unbrotli(&site.s3.get(&site.key(&app)).unwrap()),
        css.as_bytes()
    );
    for key in [app.as_str(), "index.html"] {
        let k = site.key(&format!("{key}.gz"));
        let stat = site.s3.head(&k).unwrap_or_else(|| panic!("{k} missing"));
        assert_eq!(stat.content_encoding.as_deref(), Some("gzip"), "{k}");
        let want = if key == "index.html" {
            page.as_bytes()
        } else {
            css.as_bytes()
        };
        assert_eq!(
            crate::pipeline::gunzip(&site.s3.get(&k).unwrap()),
            want,
            "{k}"
        );
        assert!(site.s3.head(&site.key(&format!("{key}.br"))).is_none());
    }
    assert_eq!(
        crate::pipeline::unbrotli(&site.s3.get(&site.key("index.html")).unwrap()),
        page.as_bytes()
    );
    let v = site.run(&["verify"]);
    assert!(v.status.success(), "{}", stderr(&v));

    // Plain objects with both sidecars.
    let (site, app) = make("enc-id", "encoding = \"identity\"\nsidecars = true");
    assert_eq!(site.s3.get(&site.key(&app)).unwrap(), css.as_bytes());
    assert_eq!(
        site.s3.head(&site.key(&app)).unwrap().content_encoding,
        None
    );
    assert_eq!(
        site.s3.get(&site.key("index.html")).unwrap(),
        page.as_bytes()
    );
    let br = site.s3.get(&site.key(&format!("{app}.br"))).unwrap();
    assert_eq!(crate::pipeline::unbrotli(&br), css.as_bytes());
    let gz = site.s3.get(&site.key(&format!("{app}.gz"))).unwrap();
    assert_eq!(crate::pipeline::gunzip(&gz), css.as_bytes());
    site.assert_manifest_consistent();
    let v = site.run(&["verify"]);
    assert!(v.status.success(), "{}", stderr(&v));
}

#[test]
fn encodings_and_sidecars_on_moto() {
    encodings(Kind::Moto);
}

#[test]
fn encodings_and_sidecars_on_garage() {
    encodings(Kind::Garage);
}

#[test]
fn objects_get_no_public_acl_unless_configured() {
    const ALL_USERS: &str = "http://acs.amazonaws.com/groups/global/AllUsers";
    let site = S3Site::new(S3Server::moto(), "acl");
    site.json(&["publish"]);
    let m = site.manifest();
    let css = m["files"]["css/app.css"]["key"].as_str().unwrap();
    for key in [css, "index.html", "manifest.json"] {
        let grantees = site.s3.grantees(&site.key(key));
        assert!(
            !grantees.iter().any(|g| g == ALL_USERS),
            "{key}: {grantees:?}"
        );
    }
    site.p.write("site/img/new.png", "not really a png");
    site.configure("[source]\ndirs = [\"site\"]\n", "public_read = true");
    site.json(&["publish"]);
    let key = site.manifest()["files"]["img/new.png"]["key"]
        .as_str()
        .unwrap()
        .to_string();
    let grantees = site.s3.grantees(&site.key(&key));
    assert!(grantees.iter().any(|g| g == ALL_USERS), "{grantees:?}");
}

#[test]
fn django_staticfiles_json_follows_publish_and_rollback_on_s3() {
    let site = S3Site::new(S3Server::moto(), "django");
    let source = "[source]\ndirs = [\"site\"]\n[manifest]\ndjango = true\n";
    site.configure(source, "");
    site.json(&["publish"]);
    let paths = |site: &S3Site| -> serde_json::Value {
        let bytes = site
            .s3
            .get(&site.key("staticfiles.json"))
            .expect("staticfiles.json at the target");
        let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(v["version"], "1.1");
        v["paths"].clone()
    };
    let m1 = site.manifest();
    let first = paths(&site);
    for (logical, e) in m1["files"].as_object().unwrap() {
        assert_eq!(first[logical], e["key"], "{logical}");
    }
    let stat = site.s3.head(&site.key("staticfiles.json")).unwrap();
    assert_eq!(stat.content_type.as_deref(), Some("application/json"));
    let manifest_stat = site.s3.head(&site.key("manifest.json")).unwrap();
    assert_eq!(stat.cache_control, manifest_stat.cache_control);

    site.p.write("site/css/app.css", "body { color: teal; }\n");
    site.json(&["publish"]);
    let second = paths(&site);
    assert_ne!(second["css/app.css"], first["css/app.css"]);
    assert_eq!(
        second["css/app.css"],
        site.manifest()["files"]["css/app.css"]["key"]
    );
    let out = site.json(&["rollback"]);
    assert_eq!(out["staticfiles"], true, "{out}");
    assert_eq!(paths(&site), first);
}
