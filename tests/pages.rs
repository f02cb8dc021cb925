//! `[rewrite] html = true`: pages that name their assets directly get the
//! fingerprinted names, so the published page loads what was published.

use crate::cli::{Project, pseudo_random};

fn published(p: &Project, rel: &str) -> String {
    String::from_utf8(p.live(rel)).unwrap()
}

#[test]
fn pages_name_the_fingerprinted_assets_and_follow_their_changes() {
    let p = Project::new();
    p.write(
        "site/index.html",
        "<!doctype html><link rel=stylesheet href=css/app.css><img src=\"img/logo.png\" srcset=\"img/logo.png 1x, img/bg.png 2x\"><a href=about.html>about</a>",
    );
    p.write(
        "site/about.html",
        "<!doctype html><a href=\"index.html#top\">home</a><a href=missing.html>gone</a>",
    );
    p.write(
        "site/site.webmanifest",
        r#"{"name": "x", "icons": [{"src": "/img/logo.png", "sizes": "192x192"}]}"#,
    );
    p.config("[source]\ndirs = [\"site\"]\n\n[rewrite]\nhtml = true\n");
    let out = p.cmd().arg("publish").output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("`about.html` references `missing.html`, which is not collected"),
        "{stderr}"
    );

    let m = p.manifest();
    let key = |logical: &str| m["files"][logical]["key"].as_str().unwrap().to_string();
    let (css, logo, bg) = (key("css/app.css"), key("img/logo.png"), key("img/bg.png"));
    assert_eq!(
        published(&p, "index.html"),
        format!(
            "<!doctype html><link rel=stylesheet href={css}><img src=\"{logo}\" srcset=\"{logo} 1x, {bg} 2x\"><a href=about.html>about</a>"
        )
    );
    // Pages link to each other by their stable names: no cycle, no change.
    assert_eq!(
        published(&p, "about.html"),
        "<!doctype html><a href=\"index.html#top\">home</a><a href=missing.html>gone</a>"
    );
    assert_eq!(
        published(&p, "site.webmanifest"),
        format!(r#"{{"name": "x", "icons": [{{"src": "/{logo}", "sizes": "192x192"}}]}}"#)
    );
    let index_object = m["files"]["index.html"]["object"]
        .as_str()
        .unwrap()
        .to_string();
    let about_object = m["files"]["about.html"]["object"]
        .as_str()
        .unwrap()
        .to_string();

    // A new logo: a new key for it, so new bytes and a new object for the
    // pages that name it, and nothing new for the page that does not.
    p.write_bytes("site/img/logo.png", &pseudo_random(2100, 9));
    p.json(&["publish"]);
    let m2 = p.manifest();
    let logo2 = m2["files"]["img/logo.png"]["key"].as_str().unwrap();
    assert_ne!(logo2, logo);
    assert!(published(&p, "index.html").contains(&format!("src=\"{logo2}\"")));
    assert!(published(&p, "site.webmanifest").contains(logo2));
    assert_ne!(m2["files"]["index.html"]["object"], index_object.as_str());
    assert_eq!(m2["files"]["about.html"]["object"], about_object.as_str());
}

#[test]
fn pages_are_published_as_written_unless_asked() {
    let p = Project::new();
    p.json(&["publish"]);
    assert_eq!(
        published(&p, "index.html"),
        "<!doctype html><link rel=stylesheet href=css/app.css><img src=img/logo.png>"
    );
}
