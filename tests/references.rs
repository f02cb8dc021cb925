//! References the rewriter cannot follow are said, not skipped in silence:
//! URLs that leave the source dir. And stylesheets in UTF-16 are read and
//! rewritten like UTF-8 ones.

use crate::cli::Project;

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn published(p: &Project, key: &str) -> Vec<u8> {
    p.read(&format!("published/{key}"))
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
