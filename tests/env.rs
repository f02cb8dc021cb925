//! `[env.NAME]` tables chosen with `--env` or `ASSETPUB_ENV`: staging and
//! production from one publish.toml.

use crate::cli::Project;

const CONFIG: &str = r#"
[source]
dirs = ["site"]

[target]
url = "file://./published"

[cdn]
provider = "command"
command = ["sh", "-c", "echo \"$ASSETPUB_ENV $*\" >> cdn.log", "purge"]

[env.staging.target]
url = "file://./out/staging"
[env.staging.cdn]
provider = "none"

[env.production.target]
url = "file://./out/production"
[env.production.manifest]
key = "site.json"
"#;

fn project() -> Project {
    let p = Project::new();
    p.config(CONFIG);
    p.age_sources();
    p
}

fn manifest(p: &Project, rel: &str) -> serde_json::Value {
    serde_json::from_slice(&p.read(rel)).expect("manifest JSON")
}

fn deploys(history: &serde_json::Value) -> Vec<String> {
    let list = history
        .get("deploys")
        .and_then(|d| d.as_array())
        .unwrap_or_else(|| panic!("history lists deploys: {history}"));
    list.iter()
        .map(|d| d["id"].as_str().expect("deploy id").to_string())
        .collect()
}

#[test]
fn two_envs_publish_to_two_directories_and_the_state_db_keeps_them_apart() {
    let p = project();
    let staging = p.json(&["--env", "staging", "publish"]);
    let s1 = staging["deploy"].as_str().unwrap().to_string();
    assert_eq!(
        manifest(&p, "out/staging/.assetpub/current/manifest.json")["deploy"],
        s1
    );
    assert!(!p.path("out/production").exists());
    assert!(!p.path("published").exists());
    assert!(
        staging["invalidation"].is_null(),
        "staging turns the CDN off"
    );

    let prod_out = p
        .cmd()
        .env("ASSETPUB_ENV", "production")
        .args(["publish", "--json"])
        .output()
        .unwrap();
    assert!(
        prod_out.status.success(),
        "{}",
        String::from_utf8_lossy(&prod_out.stderr)
    );
    let production: serde_json::Value = serde_json::from_slice(&prod_out.stdout).unwrap();
    let p1 = production["deploy"].as_str().unwrap().to_string();
    assert_eq!(
        manifest(&p, "out/production/.assetpub/current/site.json")["deploy"],
        p1,
        "production's own manifest key"
    );
    assert!(!p.path("out/production/manifest.json").exists());
    // The top-level CDN command, told which environment it serves.
    let log = std::fs::read_to_string(p.path("cdn.log")).unwrap();
    assert_eq!(
        log,
        "production / /about.html /favicon.ico /index.html /robots.txt /site.json\n"
    );

    // A change published to staging only.
    p.write("site/about.html", "<!doctype html><p>staged</p>");
    let s2 = p.json(&["--env", "staging", "publish"])["deploy"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        deploys(&p.json(&["--env", "staging", "history"])),
        [s2.clone(), s1.clone()]
    );
    assert_eq!(
        deploys(&p.json(&["--env", "production", "history"])),
        [p1.as_str()]
    );
    assert_eq!(p.json(&["--env", "staging", "plan"])["changed"], false);
    let prod_plan = p.json(&["--env", "production", "plan"]);
    assert_eq!(prod_plan["changed"], true, "production has not got it yet");
    assert_eq!(prod_plan["parent"], p1.as_str());

    // One state DB beside the config holds both.
    let state = p.path(".assetpub/state.db");
    assert!(state.exists());
    assert!(!p.path("out/staging/.assetpub/state.db").exists());

    // Rolling staging back leaves production alone.
    let back = p.json(&["--env", "staging", "rollback"]);
    assert_eq!(back["to"], s1.as_str());
    assert_eq!(
        manifest(&p, "out/staging/.assetpub/current/manifest.json")["deploy"],
        s1
    );
    assert_eq!(
        manifest(&p, "out/production/.assetpub/current/site.json")["deploy"],
        p1
    );

    // Without --env, the top-level target: a third place.
    p.json(&["publish"]);
    assert!(p.live_path("manifest.json").exists());
}

#[test]
fn an_unknown_env_exits_2_naming_the_known_ones() {
    let p = project();
    for cmd in [
        p.cmd().args(["--env", "prod", "plan"]).output().unwrap(),
        p.cmd()
            .env("ASSETPUB_ENV", "prod")
            .arg("publish")
            .output()
            .unwrap(),
    ] {
        let err = String::from_utf8_lossy(&cmd.stderr);
        assert_eq!(cmd.status.code(), Some(2), "{err}");
        assert!(
            err.contains("unknown environment `prod`") && err.contains("`production`, `staging`"),
            "{err}"
        );
    }
    assert!(!p.path("published").exists() && !p.path("out").exists());
}

#[test]
fn unknown_keys_in_an_env_table_exit_2_with_line_and_column() {
    let p = project();
    p.config(&format!(
        "{CONFIG}[env.staging.prune]\nkeep = 3\nmin_agee = \"1d\"\n"
    ));
    let out = p
        .cmd()
        .args(["--env", "production", "plan"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    let line = CONFIG.lines().count() + 3;
    assert!(
        err.contains(&format!("publish.toml:{line}:1")) && err.contains("min_agee"),
        "{err}"
    );
}

#[test]
fn nginx_config_honours_env() {
    let p = project();
    let out = p
        .cmd()
        .args(["--env", "staging", "nginx-config"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let root = std::path::absolute(p.path("out/staging")).unwrap();
    assert!(
        text.contains(&format!("root {};", root.display())),
        "{text}"
    );
}
