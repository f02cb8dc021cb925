//! `init`: writes the starter `publish.toml`.

use crate::cli::Cli;
use crate::commands::{Output, config_path};
use crate::error::{Error, Result};
use crate::settings::STARTER;

pub fn init(cli: &Cli, force: bool) -> Result<Output> {
    let path = config_path(cli);
    if path.exists() && !force {
        return Err(Error::Config(format!(
            "`{}` already exists; not overwriting it",
            path.display()
        ))
        .with_hint("pass --force to replace it"));
    }
    std::fs::write(&path, STARTER).map_err(|e| Error::io("cannot write", &path, e))?;
    let value = serde_json::json!({ "config": path.display().to_string() });
    Ok(Output {
        human: format!(
            "wrote `{}`: set `[source] dirs` to your build output, then run `assetpub plan`\n",
            path.display()
        ),
        json: value,
        exit_code: 0,
        error: None,
        earlier_errors: Vec::new(),
    })
}
