//! Deploy messages: `publish --message` (or `ASSETPUB_MESSAGE`), else the
//! subject of the build's git commit, recorded in the deploy and shown by
//! `history`, from any machine.

use std::process::Command;

use crate::cli::Project;

fn newest(p: &Project) -> serde_json::Value {
    p.json(&["history"])["deploys"][0].clone()
}

#[test]
fn a_message_is_recorded_and_history_shows_it() {
    let p = Project::new();
    let out = p.json(&["publish", "--message", "First cut of the site"]);
    assert_eq!(out["message"], "First cut of the site");
    assert_eq!(p.manifest()["message"], "First cut of the site");
    assert_eq!(newest(&p)["message"], "First cut of the site");

    p.write("site/about.html", "<p>about, again</p>");
    p.cmd()
        .args(["publish", "-q"])
        .env("ASSETPUB_MESSAGE", "From the environment")
        .assert()
        .success();
    assert_eq!(newest(&p)["message"], "From the environment");

    // Another machine (no state DB) reads it from the deploy records.
    let out = p
        .cmd()
        .args(["--state", "elsewhere.db", "history"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("MESSAGE"), "{text}");
    assert!(
        text.contains("From the environment") && text.contains("First cut of the site"),
        "{text}"
    );
}

#[test]
fn without_a_message_the_git_commit_subject_is_used() {
    let p = Project::new();
    let git = |args: &[&str]| {
        let out = Command::new("git")
            .args(args)
            .current_dir(p.dir.path())
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@example.org")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@example.org")
            .output()
            .expect("git is installed (apt-get install -y git)");
        assert!(out.status.success(), "{out:?}");
    };
    git(&["init", "-q"]);
    git(&["add", "-A"]);
    git(&["commit", "-q", "-m", "Add the about page\n\nWith a body."]);
    let out = p.json(&["publish"]);
    assert_eq!(out["message"], "Add the about page");
    assert_eq!(newest(&p)["message"], "Add the about page");
    // A message given wins over the commit.
    p.write("site/about.html", "<p>about, again</p>");
    let out = p.json(&["publish", "-m", "Hotfix"]);
    assert_eq!(out["message"], "Hotfix");
}

#[test]
fn outside_a_git_work_tree_there_is_no_message() {
    let p = Project::new();
    let out = p.json(&["publish"]);
    assert!(out["message"].is_null(), "{out}");
    assert!(p.manifest().get("message").is_none());
}
