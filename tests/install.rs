//! What a package or a dotfile installs beside the binary: shell completions
//! and man pages, each generated and naming every command.

use clap::CommandFactory;
use std::process::Command;

use assetpub::cli::Cli;

/// Every command, as clap knows them, so a new command is checked without
/// editing this file.
fn subcommands() -> Vec<String> {
    let names: Vec<String> = Cli::command()
        .get_subcommands()
        .filter(|s| !s.is_hide_set())
        .map(|s| s.get_name().to_string())
        .collect();
    for expected in ["publish", "nginx-config", "completions", "man"] {
        assert!(names.iter().any(|n| n == expected), "{names:?}");
    }
    names
}

fn assetpub() -> Command {
    Command::new(assert_cmd::cargo::cargo_bin!("assetpub"))
}

fn stdout_of(args: &[&str]) -> String {
    let out = assetpub().args(args).output().unwrap();
    assert!(
        out.status.success(),
        "assetpub {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// roff writes a hyphen as `\-`.
fn in_roff(page: &str, name: &str) -> bool {
    page.contains(name) || page.contains(&name.replace('-', "\\-"))
}

#[test]
fn completions_for_each_shell_name_every_command() {
    let names = subcommands();
    for shell in ["bash", "zsh", "fish"] {
        let script = stdout_of(&["completions", shell]);
        assert!(script.len() > 1000, "{shell}: {} bytes", script.len());
        for name in &names {
            assert!(
                script.contains(name.as_str()),
                "{shell} completions lack `{name}`"
            );
        }
    }
    // The global flags are completed too.
    assert!(stdout_of(&["completions", "bash"]).contains("--config"));
}

#[test]
fn completions_need_no_config() {
    let dir = tempfile::tempdir().unwrap();
    let out = assetpub()
        .current_dir(dir.path())
        .args(["completions", "fish"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = assetpub().args(["completions", "tcsh"]).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "an unknown shell is a usage error"
    );
}

#[test]
fn man_page_names_every_command() {
    let page = stdout_of(&["man"]);
    assert!(
        page.starts_with(".ie") || page.starts_with(".TH"),
        "{}",
        &page[..80]
    );
    assert!(page.contains(".TH assetpub 1"), "{}", &page[..200]);
    for name in subcommands() {
        assert!(in_roff(&page, &name), "the man page lacks `{name}`");
    }
}

#[test]
fn man_dir_writes_a_page_a_command() {
    let dir = tempfile::tempdir().unwrap();
    let listed = stdout_of(&["man", "--dir", dir.path().to_str().unwrap()]);
    let main = std::fs::read_to_string(dir.path().join("assetpub.1")).unwrap();
    assert!(main.contains(".SH SUBCOMMANDS"), "{main}");
    for name in subcommands() {
        let path = dir.path().join(format!("assetpub-{name}.1"));
        let page =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(page.contains(".SH NAME"), "{}", path.display());
        assert!(
            in_roff(&page, &format!("assetpub-{name}")),
            "{}",
            path.display()
        );
        assert!(listed.contains(&path.display().to_string()), "{listed}");
    }
}
