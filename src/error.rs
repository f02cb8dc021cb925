//! One error type for the library; `main` maps its kind to the exit codes of
//! the design contract.

use std::path::Path;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Exit 2: bad flags or publish.toml.
    #[error("{0}")]
    Config(String),
    /// Exit 3: the collected files do not pass validation. One line each,
    /// all of them at once.
    #[error("{}", validation_message(.0))]
    Validation(Vec<String>),
    /// Exit 3: other bad input (a key or manifest that cannot be used).
    #[error("{0}")]
    Input(String),
    /// Exit 4: another deploy holds the lock or moved `manifest.json`.
    #[error("{0}")]
    Conflict(String),
    /// Exit 1: I/O on a named path.
    #[error("{context} `{path}`: {source}")]
    Io {
        context: &'static str,
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// Exit 1: the state DB.
    #[error("state DB `{path}`: {message}")]
    State { path: String, message: String },
    /// Exit 1: the store (network, permissions, missing bucket ...).
    #[error("{0}")]
    Store(String),
    /// Exit 1: anything else at run time.
    #[error("{0}")]
    Runtime(String),
}

fn validation_message(problems: &[String]) -> String {
    match problems {
        [one] => one.clone(),
        many => format!(
            "{} problems in the input; nothing was published:\n  {}",
            many.len(),
            many.join("\n  ")
        ),
    }
}

impl Error {
    pub fn io(context: &'static str, path: impl AsRef<Path>, source: std::io::Error) -> Error {
        Error::Io {
            context,
            path: path.as_ref().display().to_string(),
            source,
        }
    }

    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Config(_) => 2,
            Error::Validation(_) | Error::Input(_) => 3,
            Error::Conflict(_) => 4,
            Error::Io { .. } | Error::State { .. } | Error::Store(_) | Error::Runtime(_) => 1,
        }
    }

    /// A `hint:` line worth printing under the error, when there is an
    /// obvious next step.
    pub fn hint(&self) -> Option<&'static str> {
        match self {
            Error::Conflict(m) if m.contains("state DB") => {
                Some("wait for the other run to finish, or pass a different `--state` file")
            }
            Error::Conflict(m) if m.contains("lock") => Some(
                "wait for the other deploy to finish, or run with `--break-lock` if it is known to be dead",
            ),
            Error::Conflict(_) => {
                Some("run `assetpub plan` to see the new current deploy, then publish again")
            }
            _ => None,
        }
    }
}
