//! References the rewriter cannot follow are said, not skipped in silence:
//! URLs that leave the source dir. And stylesheets in UTF-16 are read and
//! rewritten like UTF-8 ones.

use crate::cli::Project;

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn published(p: &Project, key: &str) -> Vec<u8> {
    p.live(key)
}

fn key(m: &serde_json::Value, logical: &str) -> String {
    m["files"][logical]["key"]
        .as_str()
        .unwrap_or_else(|| panic!("{logical} not in the manifest: {m}"))
        .to_string()
}

/// A CSS, an HTML and a JS reference that climb out of `site/`.
fn outside_references(p: &Project, strict: bool) {
    p.write(
        "site/css/app.css",
        "body { background: url(../../outside.png); }\na { background: url(../img/bg.png); }\n",
    );
    p.write(
        "site/index.html",
        "<!doctype html><img src=\"../secret/logo.png\"><img src=img/logo.png>",
    );
    p.write(
        "site/js/app.js",
        "console.log('hi');\n//# sourceMappingURL=../../maps/app.js.map\n",
    );
    // The files exist, beside the source dir: never collected all the same.
    p.write("outside.png", "not collected");
    p.config(&format!(
        "[source]\ndirs = [\"site\"]\n\n[rewrite]\nhtml = true\nstrict = {strict}\n"
    ));
}

const OUTSIDE_WARNINGS: [&str; 3] = [
    "`css/app.css` references `../../outside.png`, which is outside the source dir and not collected; left as written",
    "`index.html` references `../secret/logo.png`, which is outside the source dir and not collected; left as written",
    "`js/app.js` references `../../maps/app.js.map`, which is outside the source dir and not collected; left as written",
];

#[test]
fn a_reference_that_leaves_the_source_dir_is_a_warning_naming_file_and_reference() {
    let p = Project::new();
    outside_references(&p, false);
    let out = p.cmd().arg("publish").output().expect("run");
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    for w in OUTSIDE_WARNINGS {
        assert!(
            err.contains(&format!("warning: {w}")),
            "missing `{w}`:\n{err}"
        );
        assert_eq!(err.matches(w).count(), 1, "once each:\n{err}");
    }
    // Left as written; the references inside the tree are rewritten.
    let m = p.manifest();
    let css = String::from_utf8(published(&p, &key(&m, "css/app.css"))).unwrap();
    let bg = key(&m, "img/bg.png");
    assert!(css.contains("url(../../outside.png)"), "{css}");
    assert!(
        css.contains(&format!("url(../{bg})")),
        "the other reference is rewritten: {css}"
    );
    let page = String::from_utf8(published(&p, "index.html")).unwrap();
    assert!(page.contains("src=\"../secret/logo.png\""), "{page}");
    // A run that takes the references from the state DB says it again.
    let out = p.cmd().arg("publish").output().expect("run");
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    for w in OUTSIDE_WARNINGS {
        assert!(err.contains(w), "missing on the second run `{w}`:\n{err}");
    }
}

#[test]
fn under_strict_a_reference_that_leaves_the_source_dir_is_refused_before_any_write() {
    let p = Project::new();
    outside_references(&p, true);
    let out = p.cmd().arg("publish").output().expect("run");
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(3), "{err}");
    for w in OUTSIDE_WARNINGS {
        assert!(err.contains(w), "missing `{w}`:\n{err}");
    }
    assert!(
        !p.path("published").exists(),
        "a refused publish wrote the target: {err}"
    );
}

fn utf16(text: &str, big_endian: bool, bom: bool) -> Vec<u8> {
    let mut units: Vec<u16> = Vec::new();
    if bom {
        units.push(0xFEFF);
    }
    units.extend(text.encode_utf16());
    units
        .into_iter()
        .flat_map(|u| {
            if big_endian {
                u.to_be_bytes()
            } else {
                u.to_le_bytes()
            }
        })
        .collect()
}

fn from_utf16(bytes: &[u8], big_endian: bool) -> String {
    let units: Vec<u16> = bytes
        .chunks_exact(2)
        .map(|c| {
            if big_endian {
                u16::from_be_bytes([c[0], c[1]])
            } else {
                u16::from_le_bytes([c[0], c[1]])
            }
        })
        .collect();
    String::from_utf16(&units).expect("UTF-16")
}

/// The published file each `url(...)` of the stylesheet at `css_key` names,
/// resolved as a browser resolves it against the stylesheet's URL.
fn resolve_urls(p: &Project, css_key: &str, css: &str) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for part in css.split("url(").skip(1) {
        let url = part[..part.find(')').expect("closing )")].trim_matches(['"', '\'']);
        let mut path: Vec<&str> = css_key.split('/').collect();
        path.pop();
        for seg in url.split('/') {
            match seg {
                ".." => {
                    path.pop();
                }
                "." => {}
                s => path.push(s),
            }
        }
        let rel = path.join("/");
        let file = p.path("published").join(&rel);
        assert!(
            file.is_file(),
            "url({url}) in `{css_key}` resolves to `{rel}`, which is not published"
        );
        out.push((url.to_string(), std::fs::read(file).expect("read")));
    }
    out
}

#[test]
fn utf16_stylesheets_are_rewritten_and_written_back_in_their_encoding() {
    let p = Project::new();
    // With a BOM (little-endian), and without one but with `@charset`
    // (big-endian); and one with nothing to rewrite.
    let bom_css =
        "body { background: url(../img/bg.png); }\n.x::after { content: \"é \u{1F600}\"; }\n";
    p.write_bytes("site/css/app.css", &utf16(bom_css, false, true));
    let charset_css = "@charset \"utf-16\";\na { background: url(\"../img/logo.png\") }\n";
    p.write_bytes("site/css/be.css", &utf16(charset_css, true, false));
    let plain = utf16("p { color: red }\n", false, true);
    p.write_bytes("site/css/plain.css", &plain);
    let out = p.cmd().arg("publish").output().expect("run");
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");

    let m = p.manifest();
    let (bg, logo) = (key(&m, "img/bg.png"), key(&m, "img/logo.png"));
    let app_key = key(&m, "css/app.css");
    let app = published(&p, &app_key);
    assert_eq!(&app[..2], [0xFF, 0xFE], "the BOM is kept");
    let app_text = from_utf16(&app[2..], false);
    let bg_name = bg.rsplit('/').next().unwrap();
    assert_eq!(
        app_text,
        bom_css.replace("bg.png", bg_name),
        "only the reference changed"
    );
    let urls = resolve_urls(&p, &app_key, &app_text);
    assert_eq!(urls.len(), 1);
    assert!(
        urls[0].1 == p.read("site/img/bg.png"),
        "url() serves bg.png"
    );

    let be_key = key(&m, "css/be.css");
    let be_text = from_utf16(&published(&p, &be_key), true);
    let logo_name = logo.rsplit('/').next().unwrap();
    assert_eq!(be_text, charset_css.replace("logo.png", logo_name));
    let urls = resolve_urls(&p, &be_key, &be_text);
    assert!(
        urls[0].1 == p.read("site/img/logo.png"),
        "url() serves logo.png"
    );

    // Nothing to rewrite: published byte for byte.
    assert!(published(&p, &key(&m, "css/plain.css")) == plain);
    p.cmd().arg("verify").assert().success();

    // The stylesheet is named after the image it uses.
    p.write_bytes("site/img/bg.png", b"another background");
    p.json(&["publish"]);
    let m2 = p.manifest();
    assert_ne!(key(&m2, "css/app.css"), app_key);
    let app_key = key(&m2, "css/app.css");
    let app_text = from_utf16(&published(&p, &app_key)[2..], false);
    let urls = resolve_urls(&p, &app_key, &app_text);
    assert!(urls[0].1 == b"another background");
}

#[test]
fn a_stylesheet_in_another_encoding_is_published_as_written_with_a_warning_naming_it() {
    let p = Project::new();
    // Latin-1, and UTF-16 with neither BOM nor `@charset`.
    let latin1 = b"a { background: url(../img/bg.png) } /* caf\xe9 */\n".to_vec();
    p.write_bytes("site/css/latin1.css", &latin1);
    let bare = utf16("a { background: url(../img/logo.png) }\n", false, false);
    p.write_bytes("site/css/bare16.css", &bare);
    for run in ["first", "second"] {
        let out = p.cmd().arg("publish").output().expect("run");
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(0), "{run}: {err}");
        for f in ["css/latin1.css", "css/bare16.css"] {
            let w = format!(
                "warning: `{f}` is neither UTF-8 text nor UTF-16 with a byte order mark or `@charset \"utf-16\"`; its references are left as written"
            );
            assert_eq!(err.matches(&w).count(), 1, "{run} run: `{w}`:\n{err}");
        }
    }
    let m = p.manifest();
    assert!(published(&p, &key(&m, "css/latin1.css")) == latin1);
    assert!(published(&p, &key(&m, "css/bare16.css")) == bare);
}
