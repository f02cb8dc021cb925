//! `publish --check` and `rollback --check`: the live site fetched from a
//! real nginx serving the directory target and from Garage's website
//! endpoint; a failed check rolled back, or the rollback command printed.

use std::process::Output;

use serde_json::Value;

use crate::cli::{Project, free_port, http_get, pseudo_random};
use crate::support::S3Server;
use crate::support::s3client::S3Client;

const FIRST_H1: &str = "First headline";

/// A site whose pages name their assets (rewritten to their keys): the
/// home page a stylesheet, an image and a script; the stylesheet an image
/// and a font; the script its source map.
fn site(p: &Project) {
    p.write(
        "site/index.html",
        &format!(
            "<!doctype html><html><head><link rel=\"stylesheet\" href=\"css/app.css\"></head>\n<body><h1>{FIRST_H1}</h1><img src=\"img/logo.png\" alt=\"\"><a href=\"about.html\">about</a>\n<script src=\"js/app.js\"></script></body></html>\n"
        ),
    );
    p.write(
        "site/about.html",
        "<!doctype html><html><head><link rel=\"stylesheet\" href=\"css/app.css\"></head><body><p>about</p></body></html>\n",
    );
    p.write(
        "site/css/app.css",
        "body { background: url(../img/bg.png); color: #123456; }\n@font-face { font-family: f; src: url('../fonts/f.woff2') format('woff2'); }\n",
    );
    p.write_bytes("site/img/bg.png", &pseudo_random(4000, 1));
    p.write_bytes("site/img/logo.png", &pseudo_random(2000, 2));
    p.write_bytes("site/fonts/f.woff2", &pseudo_random(3000, 3));
    p.write(
        "site/js/app.js",
        "console.log('hi');\n//# sourceMappingURL=app.js.map\n",
    );
    p.write(
        "site/js/app.js.map",
        r#"{"version":3,"file":"app.js","sources":["app.ts"],"mappings":""}"#,
    );
}

/// The settings every test starts from; `extra` is appended.
fn config(p: &Project, target: &str, extra: &str) {
    p.config(&format!(
        "[source]\ndirs = [\"site\"]\n\n[target]\n{target}\n\n[rewrite]\nhtml = true\n\n{extra}"
    ));
}

fn project() -> Project {
    let p = Project::empty();
    site(&p);
    config(&p, "url = \"file://./published\"", "");
    p
}

/// A new headline on the home page (only that page changes).
fn change_headline(p: &Project, h1: &str) {
    let index = String::from_utf8(p.read("site/index.html")).unwrap();
    let start = index.find("<h1>").unwrap() + 4;
    let end = index.find("</h1>").unwrap();
    p.write(
        "site/index.html",
        &format!("{}{h1}{}", &index[..start], &index[end..]),
    );
}

/// Another stylesheet: its key changes, and so does every page's.
fn change_stylesheet(p: &Project, color: &str) {
    let css = String::from_utf8(p.read("site/css/app.css")).unwrap();
    let start = css.find("color: ").unwrap() + 7;
    p.write(
        "site/css/app.css",
        &format!("{}{color}{}", &css[..start], &css[start + 7..]),
    );
}

/// The key the next publish gives `logical`, from `plan --json`.
fn planned_key(p: &Project, logical: &str) -> String {
    key_in_plan(&p.json(&["plan"]), logical)
}

fn key_in_plan(plan: &Value, logical: &str) -> String {
    plan["uploads"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| {
            let key = u["key"].as_str().unwrap();
            u["logical"] == logical && !key.ends_with(".gz") && !key.ends_with(".br")
        })
        .unwrap_or_else(|| panic!("`{logical}` is not uploaded by the next publish: {plan}"))["key"]
        .as_str()
        .unwrap()
        .to_string()
}

/// A `[cdn]` command that deletes `key` from the directory target once the
/// deploy is live and before the check runs: an asset lost after upload.
fn delete_after_switch(key: &str) -> String {
    format!(
        "[cdn]\nprovider = \"command\"\ncommand = [\"sh\", \"-c\", \"rm -f published/{key}\", \"sh\"]\n"
    )
}

fn check_table(url: &str, extra: &str) -> String {
    format!("[check]\nurl = \"{url}\"\n{extra}\n")
}

fn run(p: &Project, args: &[&str]) -> Output {
    p.cmd().args(args).output().expect("run assetpub")
}

fn json_of(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "no JSON on stdout ({e}): {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn a_good_deploy_passes_the_check_on_nginx() {
    let p = project();
    p.json(&["publish"]);
    let (_nginx, addr) = crate::nginx::serve(&p);
    let base = format!("http://{addr}/");
    config(&p, "url = \"file://./published\"", &check_table(&base, ""));
    change_headline(&p, "Second headline");
    let summary = p.path("summary.md");
    let out = p
        .cmd()
        .env("GITHUB_STEP_SUMMARY", &summary)
        .args(["publish", "--check", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let r = json_of(&out);
    let c = &r["check"];
    assert_eq!(c["deploy"], r["deploy"]);
    assert_eq!(c["url"], base.as_str());
    assert_eq!(c["failures"], serde_json::json!([]));
    assert_eq!(c["rolled_back"], false);
    assert_eq!(c["rollback_command"], Value::Null);
    // The changed page; its stylesheet, image and script; the
    // stylesheet's image and font; the script's source map. The link to
    // about.html is not an asset.
    assert_eq!(c["pages"], 1, "{c}");
    assert_eq!(c["urls"], 7, "{c}");
    let summary = std::fs::read_to_string(&summary).unwrap();
    assert!(
        summary.contains(&format!(
            "Check passed: 7 URLs (1 page and its assets) at {base}"
        )),
        "{summary}"
    );

    // The same in text, with `paths` set.
    config(
        &p,
        "url = \"file://./published\"",
        &check_table(&base, "paths = [\"/\", \"/about.html\"]"),
    );
    change_headline(&p, "Third headline");
    let out = run(&p, &["publish", "--check"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!(
            "check passed: 8 URLs (2 pages and the assets they name) at {base}"
        )),
        "{text}"
    );
    // Nothing new to deploy: the live deploy is checked again.
    let out = run(&p, &["publish", "--check"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&format!(
            "check passed: 8 URLs (2 pages and the assets they name) at {base}"
        )),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(stderr(&out).contains("nothing to deploy: checking the live deploy"));
}

/// Deploy A on nginx, then B, whose new stylesheet is deleted once B is
/// live. Returns the project, nginx, the base URL, A's deploy id and the
/// stylesheet key.
fn a_deploy_that_loses_its_stylesheet() -> (Project, crate::nginx::Nginx, String, String, String) {
    let p = project();
    let first = p.json(&["publish"]);
    let (nginx, addr) = crate::nginx::serve(&p);
    let base = format!("http://{addr}/");
    change_headline(&p, "Second headline");
    change_stylesheet(&p, "#654321");
    let css = planned_key(&p, "css/app.css");
    config(
        &p,
        "url = \"file://./published\"",
        &format!("{}{}", check_table(&base, ""), delete_after_switch(&css)),
    );
    (
        p,
        nginx,
        base,
        first["deploy"].as_str().unwrap().to_string(),
        css,
    )
}

#[test]
fn a_deploy_whose_page_names_a_missing_asset_is_rolled_back_on_nginx() {
    let (p, _nginx, base, first, css) = a_deploy_that_loses_its_stylesheet();
    let first_index = p.live("index.html");
    let out = run(
        &p,
        &["publish", "--check", "--rollback-on-failure", "--json"],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let r = json_of(&out);
    let second = r["deploy"].as_str().unwrap();
    assert_ne!(second, first);
    let c = &r["check"];
    let css_url = format!("{base}{css}");
    assert_eq!(
        c["failures"],
        serde_json::json!([{"url": css_url, "reason": "answered 404 Not Found, expected 200"}]),
        "{c}"
    );
    assert_eq!(c["rolled_back"], true, "{c}");
    assert_eq!(c["rollback"]["from"], second);
    assert_eq!(c["rollback"]["to"], first.as_str());
    assert_eq!(c["rollback_command"], Value::Null);
    let err = stderr(&out);
    assert!(
        err.contains(&format!("{css_url}: answered 404 Not Found, expected 200"))
            && err.contains(&format!(
                "rolled back to `{first}`, the deploy that was live before"
            )),
        "{err}"
    );
    // The earlier deploy is live again: its manifest, and its page
    // through nginx.
    assert_eq!(p.manifest()["deploy"], first.as_str());
    let (status, _, body) = http_get(&base["http://".len()..base.len() - 1], "/", &[]);
    assert_eq!(status, 200);
    assert_eq!(body, first_index);
    assert!(String::from_utf8_lossy(&body).contains(FIRST_H1));
}

#[test]
fn without_rollback_on_failure_the_deploy_stays_live_and_the_command_is_printed() {
    let (p, _nginx, base, first, css) = a_deploy_that_loses_its_stylesheet();
    let out = run(&p, &["publish", "--check"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    let css_url = format!("{base}{css}");
    assert!(
        text.contains(&format!(
            "check failed: 1 of 6 URLs (2 pages and the assets they name) at {base}:\n  {css_url}: answered 404 Not Found, expected 200\n"
        )),
        "{text}"
    );
    let err = stderr(&out);
    let hint = format!(
        "hint: to go back to the deploy that was live before, run `assetpub rollback {first}`"
    );
    assert!(err.contains(&hint), "{err}");
    let second = p.manifest()["deploy"].as_str().unwrap().to_string();
    assert_ne!(second, first, "the new deploy stays live");
    assert!(err.contains(&format!("deploy `{second}` is live")), "{err}");

    // A rerun of the job has nothing to deploy: it checks the deploy that
    // is live, which still fails, and names the same way back.
    let out = run(&p, &["publish", "--check"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let rerun = String::from_utf8_lossy(&out.stdout);
    assert!(
        rerun.contains(&format!("{css_url}: answered 404 Not Found, expected 200")),
        "{rerun}"
    );
    assert!(stderr(&out).contains(&hint), "{}", stderr(&out));
    assert_eq!(p.manifest()["deploy"], second.as_str());

    // The command printed does what it says.
    let words: Vec<&str> = hint
        .rsplit_once("run `assetpub ")
        .unwrap()
        .1
        .trim_end_matches('`')
        .split(' ')
        .collect();
    let out = run(&p, &words);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(p.manifest()["deploy"], first.as_str());
}

#[test]
fn a_content_type_or_cache_control_other_than_the_manifest_s_fails_the_check() {
    let p = project();
    p.json(&["publish"]);
    let port = free_port();
    let block = String::from_utf8(
        p.cmd()
            .args(["nginx-config", "--listen", &format!("127.0.0.1:{port}")])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    // Stylesheets served as text, immutable objects cached for ten minutes.
    let wrong = block.replace("text/css css;", "text/plain css;").replace(
        "\"public, max-age=31536000, immutable\"",
        "\"public, max-age=600\"",
    );
    assert_ne!(wrong, block);
    let _nginx = crate::nginx::start(&p, &wrong, port);
    let base = format!("http://127.0.0.1:{port}/");
    config(&p, "url = \"file://./published\"", &check_table(&base, ""));
    change_headline(&p, "Second headline");
    let out = run(&p, &["publish", "--check", "--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let m = p.manifest();
    let key = |logical: &str| m["files"][logical]["key"].as_str().unwrap().to_string();
    let c = &json_of(&out)["check"];
    let failures: std::collections::BTreeMap<String, String> = c["failures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["url"].as_str().unwrap().to_string(),
                f["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        failures.get(&format!("{base}{}", key("css/app.css"))),
        Some(&"Content-Type is `text/plain; charset=utf-8`, the manifest says `text/css; charset=utf-8`; Cache-Control is `public, max-age=600`, the manifest says `public, max-age=31536000, immutable`".to_string()),
        "{failures:#?}"
    );
    assert_eq!(
        failures.get(&format!("{base}{}", key("img/logo.png"))),
        Some(&"Cache-Control is `public, max-age=600`, the manifest says `public, max-age=31536000, immutable`".to_string()),
        "{failures:#?}"
    );
    // The page itself is served as promised.
    assert!(!failures.contains_key(&format!("{base}index.html")));
    assert_eq!(c["rolled_back"], false);
    assert_eq!(
        c["rollback_command"],
        format!("assetpub rollback {}", m["parent"].as_str().unwrap())
    );
}

#[test]
fn a_rollback_that_fails_its_check_switches_back_to_what_was_live_before() {
    let p = project();
    let first = p.json(&["publish"])["deploy"].as_str().unwrap().to_string();
    let first_css = p.manifest()["files"]["css/app.css"]["key"]
        .as_str()
        .unwrap()
        .to_string();
    let (_nginx, addr) = crate::nginx::serve(&p);
    let base = format!("http://{addr}/");
    config(&p, "url = \"file://./published\"", &check_table(&base, ""));
    change_stylesheet(&p, "#654321");
    let second = p.json(&["publish", "--check"]);
    assert_eq!(second["check"]["failures"], serde_json::json!([]));
    let second = second["deploy"].as_str().unwrap().to_string();
    // The first deploy's stylesheet goes once the rollback to it is live.
    config(
        &p,
        "url = \"file://./published\"",
        &format!(
            "{}{}",
            check_table(&base, ""),
            delete_after_switch(&first_css)
        ),
    );
    let out = run(
        &p,
        &["rollback", "--check", "--rollback-on-failure", "--json"],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let r = json_of(&out);
    assert_eq!(r["from"], second.as_str());
    assert_eq!(r["to"], first.as_str());
    let c = &r["check"];
    assert_eq!(c["deploy"], first.as_str());
    // Every page differs between the two deploys (they name another
    // stylesheet).
    assert_eq!(c["pages"], 2, "{c}");
    assert_eq!(
        c["failures"],
        serde_json::json!([{"url": format!("{base}{first_css}"), "reason": "answered 404 Not Found, expected 200"}])
    );
    assert_eq!(c["rolled_back"], true);
    assert_eq!(c["rollback"]["from"], first.as_str());
    assert_eq!(c["rollback"]["to"], second.as_str());
    // What was live before the rollback is live again.
    assert_eq!(p.manifest()["deploy"], second.as_str());
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "rolled back to `{second}`, the deploy that was live before"
        )),
        "{err}"
    );
}

/// A `[cdn]` command that holds the run between the switch and the check
/// until the test has done its damage: it creates `ready`, then waits for
/// `go`.
const GATE: &str = "[cdn]\nprovider = \"command\"\ncommand = [\"sh\", \"-c\", \"touch ready; while [ ! -e go ]; do sleep 0.05; done\", \"sh\"]\n";

/// Runs `cmd`; once its deploy is live (the gate is reached), runs
/// `damage`, then lets it check.
fn gated(p: &Project, mut cmd: std::process::Command, damage: impl FnOnce(u32)) -> Output {
    let _ = std::fs::remove_file(p.path("ready"));
    let _ = std::fs::remove_file(p.path("go"));
    let child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run assetpub");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while !p.path("ready").exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "the deploy never went live"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    damage(child.id());
    std::fs::write(p.path("go"), "").unwrap();
    child.wait_with_output().expect("wait for assetpub")
}

#[test]
fn on_garage_s_website_endpoint_a_good_deploy_passes_and_bad_ones_are_rolled_back() {
    let server = S3Server::garage();
    let bucket = server.unique_bucket("checks");
    let web_port = server
        .web_endpoint
        .as_deref()
        .and_then(|w| w.rsplit(':').next())
        .expect("Garage has a web endpoint");
    // Garage serves a bucket's website by virtual host; names under
    // `.localhost` are the loopback address to the check, as to browsers.
    let base = format!("http://{bucket}.web.garage.localhost:{web_port}/");
    let p = Project::empty();
    site(&p);
    let target = format!("url = \"s3://{bucket}\"\npath_style = true");
    config(&p, &target, &check_table(&base, ""));
    let s3 = S3Client::new(server, &bucket);
    let assetpub = |args: &[&str]| {
        let mut cmd = p.std_cmd();
        server.apply_env(&mut cmd);
        cmd.args(args);
        cmd
    };
    let manifest = || -> Value {
        serde_json::from_slice(&s3.get("manifest.json").expect("manifest")).unwrap()
    };
    let served_index = || server.web_get(&bucket, "/").text();
    let publish_checked = ["publish", "--check", "--rollback-on-failure", "--json"];

    let out = assetpub(&["publish", "--json"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    // A good deploy passes.
    change_headline(&p, "Second headline");
    let out = assetpub(&publish_checked).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let good = json_of(&out);
    let second = good["deploy"].as_str().unwrap().to_string();
    assert_eq!(good["check"]["failures"], serde_json::json!([]));
    assert_eq!(good["check"]["urls"], 7, "{}", good["check"]);
    assert_eq!(good["check"]["rolled_back"], false);
    let second_index = served_index();
    assert!(second_index.contains("Second headline"));

    // A new image, deleted from the bucket once the deploy is live: the
    // deploy is rolled back.
    config(&p, &target, &format!("{}{GATE}", check_table(&base, "")));
    change_headline(&p, "Third headline");
    p.write_bytes("site/img/logo.png", &pseudo_random(2000, 20));
    let plan = |logical: &str| {
        let out = assetpub(&["plan", "--json"]).output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        key_in_plan(&json_of(&out), logical)
    };
    let logo = plan("img/logo.png");
    let out = gated(&p, assetpub(&publish_checked), |_| s3.delete(&logo));
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let c = json_of(&out)["check"].clone();
    assert_eq!(
        c["failures"],
        serde_json::json!([{"url": format!("{base}{logo}"), "reason": "answered 404 Not Found, expected 200"}]),
        "{c}"
    );
    assert_eq!(c["rolled_back"], true);
    assert_eq!(c["rollback"]["to"], second.as_str());
    assert_eq!(manifest()["deploy"], second.as_str());
    assert_eq!(served_index(), second_index);

    // A new script whose object loses its headers on the store once the
    // deploy is live: rolled back too.
    p.write(
        "site/js/app.js",
        "console.log('bye');\n//# sourceMappingURL=app.js.map\n",
    );
    let script = plan("js/app.js");
    let promised = "text/javascript; charset=utf-8";
    let out = gated(&p, assetpub(&publish_checked), |_| {
        let bytes = s3.get(&script).unwrap();
        s3.put(&script, &bytes, "text/plain");
    });
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let c = json_of(&out)["check"].clone();
    assert_eq!(
        c["failures"],
        serde_json::json!([{"url": format!("{base}{script}"), "reason": format!("Content-Type is `text/plain`, the manifest says `{promised}`; no Cache-Control, the manifest says `public, max-age=31536000, immutable`")}]),
        "{c}"
    );
    assert_eq!(c["rolled_back"], true);
    assert_eq!(manifest()["deploy"], second.as_str());
    assert_eq!(served_index(), second_index);

    // An image both deploys name, deleted: the check fails, and so does
    // the switch back, which would go to a deploy that lacks it too. The
    // run says so, and what to run once it is put right.
    let bg = manifest()["files"]["img/bg.png"]["key"]
        .as_str()
        .unwrap()
        .to_string();
    s3.delete(&bg);
    let out = gated(&p, assetpub(&publish_checked), |_| {});
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let r = json_of(&out);
    let c = &r["check"];
    assert_eq!(
        c["failures"][0]["url"],
        format!("{base}{bg}").as_str(),
        "{c}"
    );
    assert_eq!(c["rolled_back"], false);
    assert!(
        c["rollback_error"]
            .as_str()
            .unwrap()
            .starts_with(&format!("cannot roll back to `{second}`")),
        "{c}"
    );
    assert_eq!(manifest()["deploy"], r["deploy"]);
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "hint: once the cause is put right, run `assetpub rollback {second}` to go back to the deploy that was live before"
        )),
        "{err}"
    );
}

#[test]
fn check_settings_are_checked_before_anything_is_written() {
    let p = project();
    let exit2 = |args: &[&str], says: &str| {
        let out = run(&p, args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(says), "{args:?}: {}", stderr(&out));
        assert!(!p.path("published").exists(), "{args:?} wrote the target");
    };
    exit2(
        &["publish", "--check"],
        "`--check` needs the URL the site is served at: set `url` in `[check]`",
    );
    exit2(&["publish", "--rollback-on-failure"], "--check");
    exit2(&["publish", "--check", "--dry-run"], "--dry-run");
    for (table, says) in [
        (
            "[check]\nurl = \"ftp://example.org/\"\n",
            "invalid `[check] url = \"ftp://example.org/\"`: use an http:// or https:// URL",
        ),
        (
            "[check]\nurl = \"https://example.org/\"\nexpect_status = 999\n",
            "invalid `[check] expect_status = 999`",
        ),
        (
            "[check]\nurl = \"https://example.org/\"\npaths = []\n",
            "`[check] paths` is empty",
        ),
        (
            "[check]\nurl = \"https://example.org/\"\ntimeout = \"0s\"\n",
            "invalid `[check] timeout = \"0s\"`",
        ),
        (
            "[check]\nurl = \"https://example.org/\"\ntimeout = 5\n",
            "`[check] timeout`",
        ),
        (
            "[check]\nurl = \"https://example.org/\"\nretries = 3\n",
            "unknown field `retries`",
        ),
        (
            "[env.staging.check]\nurl = \"example.org\"\n",
            "invalid `[env.staging.check] url = \"example.org\"`",
        ),
    ] {
        config(&p, "url = \"file://./published\"", table);
        exit2(&["publish", "--check"], says);
    }
    // An environment's `[check]` overrides the top-level one setting by
    // setting: its url is enough for `--check`.
    config(
        &p,
        "url = \"file://./published\"",
        "[check]\ntimeout = \"3s\"\n[env.staging.check]\nurl = \"https://staging.example.org\"\n",
    );
    exit2(&["publish", "--check"], "set `url` in `[check]`");
    let out = run(&p, &["--env", "staging", "publish", "--dry-run"]);
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn an_unreachable_site_and_one_that_never_answers_fail_naming_the_url() {
    let p = project();
    // Nothing listens there: the first deploy has nothing to go back to.
    let closed = format!("http://127.0.0.1:{}/", free_port());
    config(
        &p,
        "url = \"file://./published\"",
        &check_table(&closed, ""),
    );
    let out = run(
        &p,
        &["publish", "--check", "--rollback-on-failure", "--json"],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let c = json_of(&out)["check"].clone();
    // Both pages are new.
    let urls: Vec<&str> = c["failures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["url"].as_str().unwrap())
        .collect();
    assert_eq!(
        urls,
        [format!("{closed}about.html"), format!("{closed}index.html")],
        "{c}"
    );
    let reason = c["failures"][1]["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("no answer: ") && reason.contains("onnection refused"),
        "{reason}"
    );
    assert_eq!(c["rolled_back"], false);
    let err = stderr(&out);
    assert!(
        err.contains("it is the first, so there is nothing to go back to"),
        "{err}"
    );
    let first = p.manifest()["deploy"].as_str().unwrap().to_string();

    // A server that takes the connection and never answers.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent = format!("http://{}/", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in listener.incoming() {
            held.push(s);
        }
    });
    config(
        &p,
        "url = \"file://./published\"",
        &check_table(&silent, "timeout = \"1s\"\npaths = [\"/\"]"),
    );
    change_headline(&p, "Second headline");
    let started = std::time::Instant::now();
    let out = run(
        &p,
        &["publish", "--check", "--rollback-on-failure", "--json"],
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let c = json_of(&out)["check"].clone();
    assert_eq!(
        c["failures"],
        serde_json::json!([{"url": silent, "reason": "no answer within 1s"}])
    );
    assert_eq!(c["rolled_back"], true);
    assert_eq!(p.manifest()["deploy"], first.as_str());

    // A redirect is not followed: it is an answer other than the one
    // expected, named with where it points.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let moved = format!("http://{}/", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        use std::io::{Read, Write};
        for mut s in listener.incoming().flatten() {
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let _ = s.write_all(
                b"HTTP/1.1 301 Moved Permanently\r\nLocation: https://elsewhere.example/\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            );
        }
    });
    config(
        &p,
        "url = \"file://./published\"",
        &check_table(&moved, "paths = [\"/\"]"),
    );
    change_headline(&p, "Third headline");
    let out = run(&p, &["publish", "--check", "--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(
        json_of(&out)["check"]["failures"],
        serde_json::json!([{"url": moved, "reason": "answered 301 Moved Permanently (Location: https://elsewhere.example/), expected 200"}])
    );
}

#[test]
fn a_failed_check_never_rolls_back_a_deploy_that_went_live_since() {
    let p = project();
    let first = p.json(&["publish"])["deploy"].as_str().unwrap().to_string();
    let (_nginx, addr) = crate::nginx::serve(&p);
    let base = format!("http://{addr}/");
    config(
        &p,
        "url = \"file://./published\"",
        &format!("{}{GATE}", check_table(&base, "")),
    );
    change_stylesheet(&p, "#654321");
    let css = planned_key(&p, "css/app.css");
    // While the deploy waits for its check, its stylesheet is deleted and
    // another run publishes a deploy that names it too.
    let mut publish = p.std_cmd();
    publish.args(["publish", "--check", "--rollback-on-failure", "--json"]);
    let mut other = None;
    let out = gated(&p, publish, |_| {
        std::fs::remove_file(p.path(&format!("published/{css}"))).unwrap();
        p.write(
            "other.toml",
            "[source]\ndirs = [\"site\"]\n[target]\nurl = \"file://./published\"\n[rewrite]\nhtml = true\n",
        );
        change_headline(&p, "Second headline");
        let out = run(
            &p,
            &[
                "--config",
                "other.toml",
                "--state",
                "other.db",
                "publish",
                "--json",
            ],
        );
        assert!(out.status.success(), "{}", stderr(&out));
        other = Some(json_of(&out)["deploy"].as_str().unwrap().to_string());
    });
    let other = other.unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let r = json_of(&out);
    let c = &r["check"];
    assert_eq!(
        c["failures"][0]["url"],
        format!("{base}{css}").as_str(),
        "{c}"
    );
    assert_eq!(c["rolled_back"], false);
    assert_eq!(c["rollback_command"], Value::Null, "{c}");
    assert!(
        c["rollback_error"].as_str().unwrap().contains(&format!(
            "now serves deploy `{other}`, not `{}`",
            r["deploy"].as_str().unwrap()
        )),
        "{c}"
    );
    // The deploy that went live since stays live; nothing went back to
    // the first.
    assert_eq!(p.manifest()["deploy"], other.as_str());
    assert_ne!(other, first);
}

#[test]
fn an_interrupt_during_the_check_lets_the_run_finish_it() {
    let p = project();
    p.json(&["publish"]);
    let (_nginx, addr) = crate::nginx::serve(&p);
    let base = format!("http://{addr}/");
    config(
        &p,
        "url = \"file://./published\"",
        &format!("{}{GATE}", check_table(&base, "")),
    );
    change_headline(&p, "Second headline");
    let mut publish = p.std_cmd();
    publish.args(["publish", "--check"]);
    let out = gated(&p, publish, |pid| {
        let sent = std::process::Command::new("kill")
            .args(["-INT", &pid.to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
        std::thread::sleep(std::time::Duration::from_millis(300));
    });
    assert_eq!(out.status.code(), Some(130), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!(
            "check passed: 7 URLs (1 page and the assets it names) at {base}"
        )),
        "{text}\n{}",
        stderr(&out)
    );
    assert!(
        stderr(&out).contains("interrupted by SIGINT after the switch to the new deploy had begun"),
        "{}",
        stderr(&out)
    );
}

/// A CDN that could not be told, then a failed check: both are said, the
/// check's error last, with its exit code.
#[test]
fn a_failed_check_after_a_failed_invalidation_reports_both() {
    let p = project();
    let closed = format!("http://127.0.0.1:{}/", free_port());
    config(
        &p,
        "url = \"file://./published\"",
        &format!(
            "{}[cdn]\nprovider = \"command\"\ncommand = [\"sh\", \"-c\", \"exit 7\", \"sh\"]\n",
            check_table(&closed, "")
        ),
    );
    let out = run(&p, &["publish", "--check"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    let errors: Vec<&str> = err.lines().filter(|l| l.starts_with("error: ")).collect();
    assert_eq!(errors.len(), 2, "{err}");
    assert!(errors[0].contains("exit"), "the CDN's failure first: {err}");
    assert!(
        errors[1].contains(&closed),
        "the check's failure last: {err}"
    );
}
