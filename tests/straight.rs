//! Pages written straight to their stable keys (S3): a first publish sends
//! each file once; a page's fingerprinted object is made from its stable
//! key, guarded by the ETag it was written with, only when a later deploy
//! replaces it, so a rollback from any machine still restores every page.

use crate::cli::Project;
use crate::s3::{S3Site, written_straight};
use crate::support::s3client::S3Client;
use crate::support::{Proxy, S3Server};

/// Another machine: an empty checkout and state DB, the same bucket.
fn other_machine(site: &S3Site) -> S3Site {
    let other = S3Site {
        proxy: Proxy::start(&site.server.endpoint),
        s3: S3Client::new(site.server, &site.bucket),
        p: Project::empty(),
        server: site.server,
        bucket: site.bucket.clone(),
    };
    other.configure("[source]\ndirs = [\"site\"]\n", "");
    other
}

fn md5_hex(bytes: &[u8]) -> String {
    use md5::Digest as _;
    md5::Md5::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The entry of `logical` in the served manifest.
fn entry(site: &S3Site, logical: &str) -> serde_json::Value {
    site.manifest()["files"][logical].clone()
}

#[test]
fn a_first_publish_sends_each_file_once_and_copies_nothing() {
    let site = S3Site::new(S3Server::moto(), "once");
    site.p.age_sources();
    site.proxy.reset_counts();
    let out = site.json(&["publish"]);
    let m = site.manifest();
    let files = m["files"].as_object().unwrap();
    let copies: Vec<_> = site
        .proxy
        .exchanges()
        .into_iter()
        .filter(|x| x.header("x-amz-copy-source").is_some())
        .map(|x| x.target)
        .collect();
    assert_eq!(copies, Vec::<String>::new(), "nothing is stored twice");
    let puts = site.object_puts();
    let distinct: std::collections::BTreeSet<&String> = puts.iter().collect();
    assert_eq!(distinct.len(), puts.len(), "a key written twice: {puts:?}");
    // One object per file (the example site has no sidecars).
    assert_eq!(puts.len(), files.len(), "{puts:?}");
    let pages: Vec<&String> = files
        .iter()
        .filter(|(_, e)| e["object"].is_string())
        .map(|(l, _)| l)
        .collect();
    assert!(pages.len() >= 3, "{pages:?}");
    for logical in pages {
        let e = &files[logical];
        assert!(written_straight(e), "{logical}: {e}");
        let key = e["key"].as_str().unwrap();
        let bytes = site.s3.get(&site.key(key)).expect("the page");
        assert_eq!(
            md5_hex(&bytes),
            e["written"]["identity"].as_str().unwrap(),
            "{logical}: the MD5 recorded is that of the bytes written"
        );
        let object = e["object"].as_str().unwrap();
        assert!(
            site.s3.head(&site.key(object)).is_none(),
            "{logical}: `{object}` was written too"
        );
    }
    assert_eq!(out["kept_pages"], 0);
    assert_eq!(
        out["upload_bytes"],
        out["uploads"]
            .as_array()
            .unwrap()
            .iter()
            .chain(out["stable_keys"].as_array().unwrap())
            .map(|u| u["bytes"].as_u64().unwrap())
            .sum::<u64>()
    );
    assert_eq!(site.json(&["verify"])["problems"], serde_json::json!([]));
}

#[test]
fn a_replaced_page_is_kept_first_and_a_rollback_from_another_machine_restores_it() {
    let site = S3Site::new(S3Server::moto(), "kept");
    let d1 = site.json(&["publish"])["deploy"]
        .as_str()
        .unwrap()
        .to_string();
    let index1 = site.s3.get(&site.key("index.html")).unwrap();
    let e1 = entry(&site, "index.html");
    site.p
        .write("site/index.html", "<!doctype html><p>second</p>");
    site.p.write("site/new.html", "<!doctype html><p>new</p>");
    std::fs::remove_file(site.p.path("site/about.html")).unwrap();
    site.proxy.reset_counts();
    let out = site.json(&["publish"]);
    let d2 = out["deploy"].as_str().unwrap().to_string();
    // index.html replaced and about.html removed: both kept, by a copy
    // guarded by the MD5 each was written with.
    assert_eq!(out["kept_pages"], 2, "{out}");
    let guarded: Vec<(String, String)> = site
        .proxy
        .exchanges()
        .into_iter()
        .filter_map(|x| {
            Some((
                x.header("x-amz-copy-source")?
                    .rsplit('/')
                    .next()?
                    .to_string(),
                x.header("x-amz-copy-source-if-match")?.to_string(),
            ))
        })
        .collect();
    assert!(
        guarded.contains(&(
            "index.html".to_string(),
            format!("\"{}\"", e1["written"]["identity"].as_str().unwrap())
        )),
        "{guarded:?}"
    );
    let object = e1["object"].as_str().unwrap();
    assert_eq!(site.s3.get(&site.key(object)).as_deref(), Some(&index1[..]));
    let published = site.s3.get(&site.key("index.html")).unwrap();
    assert_eq!(published, b"<!doctype html><p>second</p>");

    // Another machine, without the build or the state DB.
    let b = other_machine(&site);
    let back = b.json(&["rollback", &d1]);
    assert_eq!(back["to"], d1.as_str());
    assert_eq!(b.s3.get(&b.key("index.html")).unwrap(), index1);
    assert!(
        b.s3.get(&b.key("about.html")).is_some(),
        "about.html is back"
    );
    assert!(b.s3.get(&b.key("new.html")).is_none(), "new.html is gone");
    assert_eq!(b.json(&["verify"])["problems"], serde_json::json!([]));
    // And forward again: d2's pages, written straight, were kept by the
    // rollback before it replaced them.
    b.json(&["rollback", &d2]);
    assert_eq!(b.s3.get(&b.key("index.html")).unwrap(), published);
    assert_eq!(
        b.s3.get(&b.key("new.html")).unwrap(),
        b"<!doctype html><p>new</p>"
    );
    assert!(b.s3.get(&b.key("about.html")).is_none());
    b.assert_manifest_consistent();
    assert_eq!(b.json(&["verify"])["problems"], serde_json::json!([]));
}

/// A page changed by hand since its deploy wrote it: the next deploy goes
/// on and says the old page cannot be kept; the hand-made bytes never end
/// up under the old page's fingerprinted name, and a rollback to the old
/// deploy is refused before anything changes.
fn a_page_changed_by_hand(server: &'static S3Server, name: &str) {
    let site = S3Site::new(server, name);
    let d1 = site.json(&["publish"])["deploy"]
        .as_str()
        .unwrap()
        .to_string();
    let object = entry(&site, "index.html")["object"]
        .as_str()
        .unwrap()
        .to_string();
    site.s3.put(
        &site.key("index.html"),
        b"<!doctype html><p>edited by hand</p>",
        "text/html",
    );
    site.p
        .write("site/index.html", "<!doctype html><p>second</p>");
    let out = site.run(&["publish", "--json"]);
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["kept_pages"], 0, "{report}");
    assert!(
        err.contains("`index.html`") && err.contains(&d1) && err.contains("cannot restore"),
        "{err}"
    );
    assert_eq!(
        site.s3.get(&site.key(&object)),
        None,
        "`{object}` must never hold other bytes than its name says"
    );
    let d2 = site.manifest()["deploy"].as_str().unwrap().to_string();
    let back = site.run(&["rollback", &d1]);
    assert_eq!(back.status.code(), Some(3), "{}", stderr(&back));
    assert!(stderr(&back).contains(&object), "{}", stderr(&back));
    assert_eq!(site.manifest()["deploy"], d2.as_str());
    assert_eq!(
        site.s3.get(&site.key("index.html")).unwrap(),
        b"<!doctype html><p>second</p>"
    );
}

/// moto ignores `x-amz-copy-source-if-match`: the copy's own ETag tells.
#[test]
fn a_page_changed_by_hand_is_never_kept_under_its_name_on_moto() {
    a_page_changed_by_hand(S3Server::moto(), "byhand");
}

/// Garage honours `x-amz-copy-source-if-match`: the copy is refused.
#[test]
fn a_page_changed_by_hand_is_never_kept_under_its_name_on_garage() {
    a_page_changed_by_hand(S3Server::garage(), "byhand");
}
