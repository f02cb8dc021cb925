//! `plan` estimates the brotli size of a large file rather than compress it
//! at quality 11, and says so; `publish --dry-run` and `publish` measure.

use crate::cli::Project;

/// Minified CSS over 1 MiB, without references.
fn large_stylesheet() -> String {
    let mut out = String::new();
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let mut i = 0;
    while out.len() < 1_300_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        i += 1;
        out.push_str(&format!(
            ".c{i}{{margin:{}px;color:#{:06x}}}",
            x % 40,
            (x >> 8) & 0xff_ffff
        ));
    }
    out
}

fn project() -> Project {
    let p = Project::empty();
    p.write("site/css/big.css", &large_stylesheet());
    p.write(
        "site/index.html",
        &format!(
            "<!doctype html><link rel=stylesheet href=css/big.css>{}",
            "<p>text</p>\n".repeat(30)
        ),
    );
    p.config("[source]\ndirs = [\"site\"]\n");
    p
}

fn uploads<'a>(report: &'a serde_json::Value, suffix: &str) -> Vec<&'a serde_json::Value> {
    report["uploads"]
        .as_array()
        .expect("uploads")
        .iter()
        .filter(|u| u["key"].as_str().unwrap().ends_with(suffix))
        .collect()
}

/// The brotli sizes the state DB has cached, by content hash.
fn cached_br(p: &Project, blake3: &str) -> i64 {
    let db = rusqlite::Connection::open(p.path(".assetpub/state.db")).expect("state DB");
    db.query_row(
        "SELECT count(*) FROM compressed WHERE blake3 = ?1 AND encoding LIKE 'br%'",
        [blake3],
        |r| r.get(0),
    )
    .expect("query")
}

#[test]
fn plan_estimates_a_large_files_brotli_size_and_says_so() {
    let p = project();
    let blake3 = blake3::hash(p.read("site/css/big.css").as_slice())
        .to_hex()
        .to_string();
    let plan = p.json(&["plan"]);
    let br = uploads(&plan, ".css.br");
    assert_eq!(br.len(), 1, "{plan}");
    assert_eq!(br[0]["estimated"], true, "{plan}");
    // The rest is exact, and says nothing.
    for u in uploads(&plan, ".gz").iter().chain(&uploads(&plan, ".css")) {
        assert!(u.get("estimated").is_none(), "{u}");
    }
    assert!(
        uploads(&plan, ".html.br")
            .iter()
            .all(|u| u.get("estimated").is_none())
    );
    // Nothing was compressed at quality 11 for it, so nothing is cached.
    assert_eq!(cached_br(&p, &blake3), 0);

    let summary = p.path("summary.md");
    let human = p
        .cmd()
        .env("GITHUB_STEP_SUMMARY", &summary)
        .arg("plan")
        .output()
        .unwrap();
    let human = String::from_utf8_lossy(&human.stdout);
    let summary = std::fs::read_to_string(&summary).expect("step summary");
    assert!(summary.contains("| ~"), "{summary}");
    let row = human
        .lines()
        .find(|l| l.contains("css/big.css"))
        .expect("a row for the stylesheet");
    assert!(row.contains(".br ~"), "{human}");
    assert!(!row.contains(".gz ~"), "{human}");
    assert!(human.contains("~ estimated"), "{human}");
    assert!(human.contains("objects to upload (~"), "{human}");

    // A dry run of publish measures.
    let dry = p.json(&["publish", "--dry-run"]);
    assert!(!dry.to_string().contains("estimated"), "{dry}");
    let exact = uploads(&dry, ".css.br")[0]["bytes"].as_u64().unwrap();
    let estimate = br[0]["bytes"].as_u64().unwrap();
    assert!(
        estimate.abs_diff(exact) * 10 < exact,
        "{estimate} for {exact}"
    );
    let published = p.json(&["publish"]);
    let key = uploads(&published, ".css.br")[0]["key"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(p.live(&key).len() as u64, exact);
    assert_eq!(
        p.manifest()["files"]["css/big.css"]["encodings"]["br"],
        exact
    );
    assert_eq!(cached_br(&p, &blake3), 1);
    assert_eq!(p.json(&["plan"])["changed"], false);
}

#[test]
fn a_plan_from_a_new_state_db_takes_the_served_sizes_of_unchanged_files() {
    let p = project();
    p.json(&["publish"]);
    // Another machine: no cached sizes, so the stylesheet's is estimated,
    // then found in the served manifest for the same bytes.
    let fresh = p.path("fresh.db");
    let fresh = fresh.to_str().unwrap();
    let plan = p.json(&["--state", fresh, "plan"]);
    assert_eq!(plan["changed"], false, "{plan}");
    assert_eq!(plan["unchanged"], 2, "{plan}");
    // A change is estimated again, and the unchanged page is not.
    let mut css = large_stylesheet();
    css.push_str(".new{color:red}");
    p.write("site/css/big.css", &css);
    let plan = p.json(&["--state", fresh, "plan"]);
    let changes = plan["changes"].as_array().unwrap();
    assert_eq!(changes.len(), 1, "{plan}");
    assert_eq!(changes[0]["logical"], "css/big.css");
    assert_eq!(uploads(&plan, ".css.br")[0]["estimated"], true, "{plan}");
}
