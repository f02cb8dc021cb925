//! Redirects and response headers (`_redirects`, `_headers`,
//! `[[redirects]]`, `headers` of `[[rules]]`): refused bad input, the
//! redirect objects on S3 (moto and Garage) through publish, removal and
//! rollback, and what a real nginx answers with `assetpub nginx-config`.

use crate::cli::{Project, http_get};
use crate::s3::{PREFIX, S3Site};
use crate::support::{Fault, S3Server};

const REDIRECTS: &str = "# moved pages\n/old /about.html\n/gone/ /index.html 302\n/blog/* /news/:splat 307\n/ext https://example.org/x\n";
const HEADERS: &str = "/*\n  X-Frame-Options: DENY\n/news/*\n  X-Robots-Tag: noindex\n";

fn with_rules(p: &Project) {
    p.write("site/_redirects", REDIRECTS);
    p.write("site/_headers", HEADERS);
    p.write("site/news/first.html", "<!doctype html><p>news</p>");
}

/// The served manifest, read with the test's own client.
fn manifest(site: &S3Site) -> serde_json::Value {
    serde_json::from_slice(&site.s3.get(&format!("{PREFIX}/manifest.json")).unwrap()).unwrap()
}

/// What Garage's website endpoint answers for a redirect object.
const GARAGE_WEBSITE_ANSWER: (u16, Option<&str>) = (301, Some("/about.html"));

/// The `x-amz-website-redirect-location` of the object at `key`, which
/// must exist.
fn location(site: &S3Site, key: &str) -> Option<String> {
    site.s3
        .head(key)
        .unwrap_or_else(|| panic!("no object at `{key}`"))
        .website_redirect_location
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn bad_rules_exit_3_naming_file_and_line_before_anything_is_written() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "_redirects",
            "/a /b\n/b /c 200\n",
            "_redirects` line 2: status 200",
        ),
        (
            "_redirects",
            "/a\n",
            "_redirects` line 1: `/a` has a source but no target",
        ),
        (
            "_redirects",
            "/a /b\n/x /y\n/b /a\n",
            "a redirect loop: `/a` -> `/b` -> `/a`",
        ),
        (
            "_redirects",
            "/a /b\n/a /c 302\n",
            "_redirects` line 2: a second redirect from `/a`",
        ),
        (
            "_redirects",
            "/users/:id /u/:id\n",
            "_redirects` line 1: placeholders (`:id`",
        ),
        (
            "_redirects",
            "/about.html /index.html\n",
            "the redirect from `/about.html` is also a published file, `about.html`",
        ),
        (
            "_redirects",
            "/manifest.json /index.html\n",
            "the redirect from `/manifest.json` is `manifest.json`",
        ),
        (
            "_redirects",
            "/.assetpub/lock /index.html\n",
            "is `.assetpub/`, where assetpub keeps its own records",
        ),
        (
            "_redirects",
            "/css/* /styles/:splat\n",
            "takes every path under it, and the build publishes `css/app.css`",
        ),
        (
            "_headers",
            "/*\n  X Frame: DENY\n",
            "_headers` line 2: `X Frame` is not a valid header name",
        ),
        (
            "_headers",
            "/*\n  X-A: b\rc\n",
            "_headers` line 2: the value of `X-A` holds a line break",
        ),
    ];
    for (file, text, want) in cases {
        let p = Project::new();
        p.write(&format!("site/{file}"), text);
        let out = p.cmd().arg("publish").output().unwrap();
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(3), "{file} {text:?}: {err}");
        assert!(err.contains(want), "{file} {text:?}: {err}");
        assert!(
            err.contains(&format!("site/{file}")) || !want.contains("line"),
            "{err}"
        );
        assert!(
            !p.path("published").exists(),
            "{file} {text:?}: wrote the target"
        );
    }
    // publish.toml's rules, named by table.
    let p = Project::new();
    p.config(
        "[source]\ndirs = [\"site\"]\n\n[[redirects]]\nfrom = \"/a\"\nto = \"/b\"\nstatus = 404\n\n[[rules]]\nmatch = \"**/*.css\"\nheaders = { \"Bad Name\" = \"x\" }\n",
    );
    let out = p.cmd().arg("publish").output().unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(
        err.contains("[[redirects]] #1: status 404 is not supported"),
        "{err}"
    );
    assert!(
        err.contains("[[rules]] #1 headers: `Bad Name` is not a valid header name"),
        "{err}"
    );
    assert!(!p.path("published").exists());
}

#[test]
fn a_published_site_s_rules_leave_it_whole_when_a_bad_rule_comes() {
    // A later publish with a bad rule changes nothing that is served.
    let p = Project::new();
    with_rules(&p);
    p.json(&["publish"]);
    let before = crate::cli::snapshot(&p.path("published"));
    p.write("site/_redirects", "/x /y\n/y /x\n");
    let out = p.cmd().arg("publish").output().unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert_eq!(crate::cli::snapshot(&p.path("published")), before);
}

fn redirects_on(server: &'static S3Server, name: &str) {
    let site = S3Site::new(server, name);
    with_rules(&site.p);
    let plan = site.json(&["plan"]);
    assert_eq!(plan["rules_changed"], true);
    assert_eq!(plan["redirects"].as_array().unwrap().len(), 4, "{plan}");
    let objects: Vec<(String, String)> = plan["redirect_objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            (
                o["key"].as_str().unwrap().to_string(),
                o["location"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        objects,
        vec![
            ("ext".to_string(), "https://example.org/x".to_string()),
            ("gone/index.html".to_string(), "/index.html".to_string()),
            ("old".to_string(), "/about.html".to_string()),
        ]
    );
    let warnings: Vec<&str> = plan["rule_warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_str().unwrap())
        .collect();
    assert_eq!(warnings.len(), 4, "{warnings:#?}");
    assert!(warnings[0].contains("line 3: `/gone/ /index.html 302`: S3 website endpoints answer every redirect object with 301: served as 301"), "{warnings:#?}");
    assert!(
        warnings[1]
            .contains("line 4: `/blog/* /news/:splat 307`: S3 cannot express a splat: not written"),
        "{warnings:#?}"
    );
    assert!(
        warnings[2]
            .contains("_headers` line 1: X-Frame-Options for /*: S3 cannot store these headers"),
        "{warnings:#?}"
    );
    // The human plan lists the rules and says the same on stderr.
    let out = site.run(&["plan"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("redirects:\n  FROM"), "{text}");
    assert!(text.contains("  old -> /about.html\n"), "{text}");
    assert!(stderr(&out).contains("warning: `"), "{}", stderr(&out));
    assert!(site.s3.keys().is_empty(), "plan wrote to the bucket");

    site.json(&["publish"]);
    let key = |k: &str| format!("{PREFIX}/{k}");
    let old = site.s3.head(&key("old")).expect("the redirect object");
    assert_eq!(old.size, 0);
    assert_eq!(
        old.website_redirect_location.as_deref(),
        Some("/about.html")
    );
    assert_eq!(
        location(&site, &key("gone/index.html")).as_deref(),
        Some("/index.html")
    );
    assert_eq!(
        location(&site, &key("ext")).as_deref(),
        Some("https://example.org/x")
    );
    assert!(site.s3.head(&key("_redirects")).is_none());
    assert!(site.s3.head(&key("_headers")).is_none());
    assert!(
        site.s3.head(&key("blog")).is_none(),
        "a splat has no object"
    );
    let first = site.json(&["history"])["current"]
        .as_str()
        .unwrap()
        .to_string();
    let m = manifest(&site);
    assert_eq!(m["redirects"][0]["from"], "/old");
    assert_eq!(m["headers"][0]["for"], "/*");
    assert_eq!(m["headers"][0]["headers"]["X-Frame-Options"], "DENY");

    // A rerun writes nothing; a rule removed removes its object, a rule
    // changed rewrites it, with no file changed.
    assert_eq!(site.json(&["publish"])["changed"], false);
    site.p.write(
        "site/_redirects",
        "/gone/ /index.html 302\n/ext https://example.org/y\n",
    );
    let second = site.json(&["publish"]);
    assert_eq!(second["changed"], true);
    assert_eq!(second["uploads"].as_array().unwrap().len(), 0);
    assert_eq!(second["removed_redirects"], serde_json::json!(["old"]));
    assert!(site.s3.head(&key("old")).is_none());
    assert_eq!(
        location(&site, &key("ext")).as_deref(),
        Some("https://example.org/y")
    );

    // Rollback puts the earlier deploy's redirects back.
    site.json(&["rollback", &first]);
    assert_eq!(location(&site, &key("old")).as_deref(), Some("/about.html"));
    assert_eq!(
        location(&site, &key("ext")).as_deref(),
        Some("https://example.org/x")
    );
    assert_eq!(manifest(&site)["redirects"].as_array().unwrap().len(), 4);

    // A page takes the place of a redirect: the object becomes the page.
    site.p
        .write("site/_redirects", "/ext https://example.org/x\n");
    site.p.write("site/gone/index.html", "<p>back");
    site.json(&["publish"]);
    let now = site.s3.head(&key("gone/index.html")).unwrap();
    assert_eq!(now.website_redirect_location, None);
    assert_eq!(site.s3.get(&key("gone/index.html")).unwrap(), b"<p>back");
    assert!(site.s3.head(&key("old")).is_none());
}

#[test]
fn redirect_objects_on_moto() {
    redirects_on(S3Server::moto(), "redirects");
}

#[test]
fn redirect_objects_on_garage() {
    redirects_on(S3Server::garage(), "redirects");
}

#[test]
fn garage_s_website_endpoint_and_redirect_objects() {
    let server = S3Server::garage();
    let site = S3Site::new(server, "redirect-web");
    site.configure("[source]\ndirs = [\"site\"]\n", "");
    with_rules(&site.p);
    site.json(&["publish"]);
    let r = server.web_get(&site.bucket, &format!("/{PREFIX}/old"));
    println!(
        "garage website GET /{PREFIX}/old: {} {:?}",
        r.status, r.headers
    );
    assert_eq!((r.status, r.header("location")), GARAGE_WEBSITE_ANSWER);
}

#[test]
fn nginx_answers_redirects_and_sends_every_header_rule_in_every_location() {
    let p = Project::new();
    with_rules(&p);
    p.write("site/blog-index.html", "<!doctype html>");
    p.config(
        "[source]\ndirs = [\"site\"]\n\n[[redirects]]\nfrom = \"/t\"\nto = \"/about.html\"\nstatus = 308\n\n[[redirects]]\nfrom = \"/a.b+(c)/*\"\nto = \"/x/:splat\"\n\n[[rules]]\nmatch = \"**/*.css\"\nheaders = { \"X-Css\" = \"yes\" }\n",
    );
    p.json(&["publish"]);
    let (_nginx, addr) = crate::nginx::serve(&p);

    let (status, h, _) = http_get(&addr, "/old", &[]);
    assert_eq!(status, 301);
    assert!(h["location"].ends_with("/about.html"), "{h:?}");
    assert_eq!(h["x-frame-options"], "DENY", "{h:?}");
    let (status, h, _) = http_get(&addr, "/gone/", &[]);
    assert_eq!(status, 302);
    assert!(h["location"].ends_with("/index.html"), "{h:?}");
    let (status, h, _) = http_get(&addr, "/blog/2024/post?x=1", &[]);
    assert_eq!(status, 307);
    // The query string is not carried over, as on S3.
    assert!(h["location"].ends_with("/news/2024/post"), "{h:?}");
    let (status, h, _) = http_get(&addr, "/ext", &[]);
    assert_eq!(status, 301);
    assert_eq!(h["location"], "https://example.org/x");
    let (status, h, _) = http_get(&addr, "/t", &[]);
    assert_eq!(status, 308);
    assert!(h["location"].ends_with("/about.html"), "{h:?}");
    // Regex metacharacters in a source are literal.
    let (status, h, _) = http_get(&addr, "/a.b+(c)/z", &[]);
    assert_eq!(status, 301);
    assert!(h["location"].ends_with("/x/z"), "{h:?}");
    let (status, _, _) = http_get(&addr, "/aXb+(c)/z", &[]);
    assert_eq!(status, 404);
    // Not a redirect: `/blog-index.html` only starts like `/blog`.
    let (status, _, _) = http_get(&addr, "/blog-index.html", &[]);
    assert_eq!(status, 200);

    // Every location that sends its own Cache-Control sends the rules'
    // headers too: pages, fingerprinted objects, the index.
    let m = p.manifest();
    let css = format!("/{}", m["files"]["css/app.css"]["key"].as_str().unwrap());
    for path in [
        "/",
        "/about.html",
        "/robots.txt",
        css.as_str(),
        "/news/first.html",
    ] {
        let (status, h, _) = http_get(&addr, path, &[]);
        assert_eq!(status, 200, "{path}");
        assert_eq!(h["x-frame-options"], "DENY", "{path}: {h:?}");
        assert!(h.contains_key("cache-control"), "{path}: {h:?}");
    }
    let (_, h, _) = http_get(&addr, &css, &[]);
    assert_eq!(h["x-css"], "yes", "{h:?}");
    assert_eq!(h["cache-control"], "public, max-age=31536000, immutable");
    let (_, h, _) = http_get(&addr, "/about.html", &[]);
    assert!(
        !h.contains_key("x-css") && !h.contains_key("x-robots-tag"),
        "{h:?}"
    );
    let (_, h, _) = http_get(&addr, "/news/first.html", &[]);
    assert_eq!(h["x-robots-tag"], "noindex", "{h:?}");
}

#[test]
fn nginx_config_follows_the_live_deploy_s_rules_after_a_rollback() {
    let p = Project::new();
    p.write("site/_redirects", "/old /about.html\n");
    p.json(&["publish"]);
    let first = p.manifest()["deploy"].as_str().unwrap().to_string();
    p.write("site/_redirects", "/new /about.html 302\n");
    let out = p.cmd().arg("publish").output().unwrap();
    assert!(out.status.success());
    assert!(
        stderr(&out).contains("the redirects or header rules changed: print `assetpub nginx-config` again and reload nginx"),
        "{}",
        stderr(&out)
    );
    {
        let (_nginx, addr) = crate::nginx::serve(&p);
        assert_eq!(http_get(&addr, "/new", &[]).0, 302);
        assert_eq!(http_get(&addr, "/old", &[]).0, 404);
    }
    p.json(&["rollback", &first]);
    let (_nginx, addr) = crate::nginx::serve(&p);
    assert_eq!(http_get(&addr, "/old", &[]).0, 301);
    assert_eq!(http_get(&addr, "/new", &[]).0, 404);
}

/// Two deploys with other redirects: `/old` and `/ext` to x, then `/ext`
/// to y and `/new`.
fn two_rule_sets(site: &S3Site) -> (String, String) {
    site.p.write(
        "site/_redirects",
        "/old /about.html\n/ext https://example.org/x\n",
    );
    let d1 = site.json(&["publish"])["deploy"]
        .as_str()
        .unwrap()
        .to_string();
    site.p.write(
        "site/_redirects",
        "/ext https://example.org/y\n/new /index.html\n",
    );
    site.p
        .write("site/about.html", "<!doctype html><p>about, changed");
    (d1, String::new())
}

fn assert_first_rules(site: &S3Site) {
    let key = |k: &str| format!("{PREFIX}/{k}");
    let location = |k: &str| {
        site.s3
            .head(&key(k))
            .and_then(|s| s.website_redirect_location)
    };
    assert_eq!(location("old").as_deref(), Some("/about.html"));
    assert_eq!(location("ext").as_deref(), Some("https://example.org/x"));
    assert!(site.s3.head(&key("new")).is_none(), "`new` is left");
}

#[test]
fn a_failing_switch_puts_the_old_redirect_objects_back() {
    let site = S3Site::new(S3Server::moto(), "redirect-undo");
    let (d1, _) = two_rule_sets(&site);
    site.proxy.reset_counts();
    // The mark goes through; the switch itself fails every attempt.
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
    let wrote = |path: &str| {
        site.proxy.exchanges().iter().any(|x| {
            x.method == "PUT"
                && x.path().ends_with(path)
                && x.header("x-amz-website-redirect-location").is_some()
                && x.status == Some(200)
        })
    };
    assert!(wrote("/site/new"), "the run never wrote a redirect object");
    let deleted = site
        .proxy
        .exchanges()
        .iter()
        .any(|x| x.method == "POST" && x.target.contains("delete") && x.status == Some(200));
    assert!(deleted, "the run never deleted a redirect object");
    assert_first_rules(&site);
    assert_eq!(manifest(&site)["deploy"], d1.as_str());
    assert!(manifest(&site).get("switching").is_none());
}

#[test]
fn a_switch_killed_half_way_is_undone_with_its_redirect_objects() {
    let site = S3Site::new(S3Server::moto(), "redirect-killed");
    let (d1, _) = two_rule_sets(&site);
    let first = manifest(&site);
    site.json(&["publish"]);
    let second = manifest(&site);
    // What a run killed inside the switch from the first deploy to the
    // second leaves: the new redirect objects written, the old one deleted,
    // and the served manifest still the first deploy's, marked.
    let mut marked = first.clone();
    marked["switching"] = serde_json::json!({
        "to": second["deploy"],
        "started": "2026-11-30T21:00:00Z",
        "by": "host:1"
    });
    site.s3.put(
        &format!("{PREFIX}/manifest.json"),
        serde_json::to_string_pretty(&marked).unwrap().as_bytes(),
        "application/json",
    );
    let out = site.run(&["verify"]);
    assert!(
        stderr(&out).contains("found an interrupted switch"),
        "{}",
        stderr(&out)
    );
    assert_first_rules(&site);
    let now = manifest(&site);
    assert_eq!(now["deploy"], d1.as_str());
    assert!(now.get("switching").is_none());
}

#[test]
fn a_change_of_rules_alone_is_a_deploy_even_when_the_stat_cache_vouches_for_every_file() {
    let p = Project::new();
    p.write("site/_redirects", "/old /about.html\n");
    p.age_sources();
    p.json(&["publish"]);
    // The files are old enough for the stat cache: the next run reads none.
    assert_eq!(p.json(&["publish"])["changed"], false);
    p.write("site/_redirects", "/old /index.html 302\n");
    let second = p.json(&["publish"]);
    assert_eq!(second["changed"], true, "{second}");
    assert_eq!(second["rules_changed"], true);
    assert_eq!(second["hashed"], 0, "{second}");
    assert_eq!(p.manifest()["redirects"][0]["to"], "/index.html");
    assert_eq!(p.json(&["publish"])["changed"], false);
    // A rule in publish.toml alone, too.
    p.config("[source]\ndirs = [\"site\"]\n\n[[redirects]]\nfrom = \"/t\"\nto = \"/about.html\"\n");
    assert_eq!(p.json(&["publish"])["rules_changed"], true);
    assert_eq!(p.manifest()["redirects"][1]["from"], "/t");
}

#[test]
fn verify_finds_a_lost_or_changed_redirect_object_and_repair_puts_it_back_and_prune_keeps_it() {
    let site = S3Site::new(S3Server::moto(), "redirect-verify");
    site.p.write(
        "site/_redirects",
        "/old /about.html\n/ext https://example.org/x\n",
    );
    site.json(&["publish"]);
    let key = |k: &str| format!("{PREFIX}/{k}");
    let ok = site.json(&["verify"]);
    assert_eq!(ok["problems"], serde_json::json!([]), "{ok}");
    site.s3.delete(&key("old"));
    site.s3.put(&key("ext"), b"", "text/html");
    let out = site.run(&["verify"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("`old` (redirect): missing: it redirects to `/about.html`"),
        "{text}"
    );
    assert!(
        text.contains("`ext` (redirect): has no redirect location, not `https://example.org/x`"),
        "{text}"
    );
    let repaired = site.json(&["verify", "--repair"]);
    assert_eq!(repaired["problems"], serde_json::json!([]), "{repaired}");
    assert_eq!(location(&site, &key("old")).as_deref(), Some("/about.html"));
    assert_eq!(
        location(&site, &key("ext")).as_deref(),
        Some("https://example.org/x")
    );
    // prune, keeping only the live deploy and no age: the redirects stay.
    site.p
        .write("site/about.html", "<!doctype html><p>about, again");
    site.json(&["publish"]);
    site.json(&["prune", "--keep", "1", "--min-age", "0s"]);
    assert!(site.s3.head(&key("old")).is_some());
    assert!(site.s3.head(&key("ext")).is_some());
}

#[test]
fn prune_never_deletes_a_live_redirect_object_at_a_key_an_old_deploy_published() {
    let site = S3Site::new(S3Server::moto(), "redirect-prune");
    site.configure(
        "[source]\ndirs = [\"site\"]\n\n[[rules]]\nmatch = \"old\"\nfingerprint = \"keep\"\n",
        "",
    );
    let key = |k: &str| format!("{PREFIX}/{k}");
    // `old` is a file's object in the first deploy, gone in the second, a
    // redirect in the third; the first deploy's record still names it.
    site.p.write("site/old", "a file named old");
    site.json(&["publish"]);
    std::fs::remove_file(site.p.path("site/old")).unwrap();
    site.json(&["publish"]);
    site.p.write("site/_redirects", "/old /about.html\n");
    site.json(&["publish"]);
    let pruned = site.json(&["prune", "--keep", "1", "--min-age", "0s"]);
    assert_eq!(
        pruned["deleted_deploys"].as_array().unwrap().len(),
        2,
        "{pruned}"
    );
    assert_eq!(
        site.s3
            .head(&key("old"))
            .map(|h| h.website_redirect_location),
        Some(Some("/about.html".to_string())),
        "{pruned}"
    );
}
