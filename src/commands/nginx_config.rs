//! `nginx-config`: prints an nginx server block that serves a directory
//! target with the headers the manifest promises.

use crate::commands::Output;
use crate::error::Result;
use crate::integrations::nginx::{Options, render};
use crate::settings::Config;

pub fn nginx_config(config: &Config, listen: &str, server_name: &str) -> Result<Output> {
    let text = render(
        config,
        &Options {
            listen: listen.to_string(),
            server_name: server_name.to_string(),
        },
    )?;
    Ok(Output {
        json: serde_json::json!({ "nginx_config": text }),
        human: text,
        exit_code: 0,
        error: None,
        earlier_errors: Vec::new(),
    })
}
