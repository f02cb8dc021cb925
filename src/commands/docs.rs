//! `completions` and `man`: what a package or a dotfile installs beside the
//! binary, generated from the same clap types that parse the command line,
//! so they cannot drift from it.

use std::path::{Path, PathBuf};

use clap::CommandFactory;
use clap_complete::Shell;

use crate::cli::Cli;
use crate::error::{Error, Result};

/// The binary's name as the completion scripts and man pages know it.
const BIN: &str = "assetpub";

/// The completion script for `shell`.
pub fn completions(shell: Shell) -> String {
    let mut cmd = Cli::command();
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut cmd, BIN, &mut out);
    String::from_utf8(out).expect("completion scripts are UTF-8")
}

/// assetpub(1): the global options and a list of the commands.
pub fn man_page() -> Result<String> {
    render(&clap_mangen::Man::new(
        Cli::command().disable_help_subcommand(true),
    ))
}

/// assetpub.1 and one page a command (assetpub-publish.1, ...) in `dir`,
/// which is created if need be. Returns the paths written, the main page
/// first.
pub fn write_man_pages(dir: &Path) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io("cannot create", dir, e))?;
    let mut cmd = Cli::command().disable_help_subcommand(true);
    cmd.build();
    let mut pages = vec![clap_mangen::Man::new(cmd.clone())];
    pages.extend(
        cmd.get_subcommands()
            .filter(|s| !s.is_hide_set())
            .map(|s| clap_mangen::Man::new(s.clone())),
    );
    let mut written = Vec::with_capacity(pages.len());
    for page in &pages {
        let path = dir.join(page.get_filename());
        std::fs::write(&path, render(page)?).map_err(|e| Error::io("cannot write", &path, e))?;
        written.push(path);
    }
    Ok(written)
}

fn render(page: &clap_mangen::Man) -> Result<String> {
    let mut out = Vec::new();
    page.render(&mut out)
        .map_err(|e| Error::Runtime(format!("cannot render the man page: {e}")))?;
    Ok(String::from_utf8(out).expect("man pages are UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subcommand_pages_are_named_after_the_command() {
        let dir = tempfile::tempdir().unwrap();
        let pages = write_man_pages(dir.path()).unwrap();
        let names: Vec<_> = pages
            .iter()
            .map(|p| p.file_name().unwrap().to_str().unwrap().to_string())
            .collect();
        assert_eq!(names[0], "assetpub.1");
        assert!(
            names.contains(&"assetpub-publish.1".to_string()),
            "{names:?}"
        );
        assert!(!names.iter().any(|n| n == "assetpub-help.1"), "{names:?}");
    }
}
