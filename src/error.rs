//! One error type for the library. Its variants are the kinds of failure;
//! [`Error::exit_code`] maps them to the exit codes of the design contract,
//! the one place that does. A `hint:` line is a field, attached with
//! [`Error::with_hint`], never part of the message, and nothing decides
//! anything by reading a message's text.

use std::fmt;
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
    /// Exit 4: another run got in the way; `conflict` says how. Built with
    /// [`Error::conflict`], which adds the hint that goes with it.
    #[error("{message}")]
    Conflict { conflict: Conflict, message: String },
    /// Exit 1: I/O on a named path.
    #[error("{context} `{path}`: {source}")]
    Io {
        context: &'static str,
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// Exit 1: the state DB; `source` is SQLite's error when there is one
    /// (see [`Error::sql`]).
    #[error("state DB `{path}`: {message}")]
    State {
        path: String,
        message: String,
        #[source]
        source: Option<Box<rusqlite::Error>>,
    },
    /// Exit 1: the store (network, permissions, missing bucket ...).
    #[error("{0}")]
    Store(String),
    /// Exit 1: anything else at run time.
    #[error("{0}")]
    Runtime(String),
    /// Exit 128 + the signal's number (130 for SIGINT, 143 for SIGTERM):
    /// the run was stopped by a signal; `message` says what that left.
    #[error("{message}")]
    Interrupted { signal: i32, message: String },
    /// Any of the above with a `hint:` line to print under it: its message,
    /// source, kind and exit code are the wrapped error's.
    #[error(transparent)]
    Hinted(Box<Hinted>),
}

/// What kind of conflict (exit 4) an error is: each has its own next step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conflict {
    /// Another deploy holds the target's deploy lock, or took it over.
    LockHeld,
    /// Another process has the state DB open.
    StateInUse,
    /// `manifest.json` changed since this run read it: another deploy won.
    ManifestMoved,
    /// Another deploy wrote a record under this run's deploy id.
    DeployExists,
}

impl Conflict {
    /// Its name in machine-readable output.
    pub fn name(self) -> &'static str {
        match self {
            Conflict::LockHeld => "lock_held",
            Conflict::StateInUse => "state_in_use",
            Conflict::ManifestMoved => "manifest_moved",
            Conflict::DeployExists => "deploy_exists",
        }
    }

    /// The next step for this kind of conflict.
    pub fn hint(self) -> &'static str {
        match self {
            Conflict::StateInUse => {
                "wait for the other run to finish, or pass a different `--state` file"
            }
            Conflict::LockHeld => {
                "wait for the other deploy to finish, or run with `--break-lock` if it is known to be dead"
            }
            Conflict::ManifestMoved | Conflict::DeployExists => {
                "run `assetpub plan` to see the new current deploy, then publish again"
            }
        }
    }
}

/// An error with the `hint:` line printed under it.
#[derive(Debug)]
pub struct Hinted {
    pub error: Error,
    pub hint: String,
}

impl fmt::Display for Hinted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.error.fmt(f)
    }
}

impl std::error::Error for Hinted {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.error.source()
    }
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

/// An error as data, for machine-readable output: see [`Error::details`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ErrorDetails {
    /// The variant: `config`, `validation`, `input`, `conflict`, `io`,
    /// `state`, `store`, `runtime` or `interrupted`.
    pub kind: &'static str,
    /// For a conflict, which one (see [`Conflict::name`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conflict: Option<&'static str>,
    /// The message as printed after `error: `.
    pub message: String,
    /// The line printed after `hint: `, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    pub exit_code: i32,
    /// For a validation error, each problem on its own.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
}

impl Error {
    pub fn io(context: &'static str, path: impl AsRef<Path>, source: std::io::Error) -> Error {
        Error::Io {
            context,
            path: path.as_ref().display().to_string(),
            source,
        }
    }

    /// A conflict of the given kind, with the hint that goes with it.
    pub fn conflict(conflict: Conflict, message: impl Into<String>) -> Error {
        Error::Conflict {
            conflict,
            message: message.into(),
        }
        .with_hint(conflict.hint())
    }

    /// The state DB at `path` failed without an SQLite error to blame.
    pub fn state(path: impl AsRef<Path>, message: impl Into<String>) -> Error {
        Error::State {
            path: path.as_ref().display().to_string(),
            message: message.into(),
            source: None,
        }
    }

    /// SQLite failed on the state DB at `path`.
    pub fn sql(path: impl AsRef<Path>, source: rusqlite::Error) -> Error {
        Error::State {
            path: path.as_ref().display().to_string(),
            message: source.to_string(),
            source: Some(Box::new(source)),
        }
    }

    /// The same error with `hint` as its `hint:` line (replacing any).
    pub fn with_hint(self, hint: impl Into<String>) -> Error {
        let hint = hint.into();
        match self {
            Error::Hinted(mut h) => {
                h.hint = hint;
                Error::Hinted(h)
            }
            error => Error::Hinted(Box::new(Hinted { error, hint })),
        }
    }

    /// The error without its hint.
    pub fn unhinted(&self) -> &Error {
        match self {
            Error::Hinted(h) => h.error.unhinted(),
            e => e,
        }
    }

    /// The `hint:` line worth printing under the error, when there is an
    /// obvious next step.
    pub fn hint(&self) -> Option<&str> {
        match self {
            Error::Hinted(h) => Some(&h.hint),
            _ => None,
        }
    }

    /// For a conflict, which one.
    pub fn conflict_kind(&self) -> Option<Conflict> {
        match self.unhinted() {
            Error::Conflict { conflict, .. } => Some(*conflict),
            _ => None,
        }
    }

    /// The exit code of the design contract.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Config(_) => 2,
            Error::Validation(_) | Error::Input(_) => 3,
            Error::Conflict { .. } => 4,
            Error::Io { .. } | Error::State { .. } | Error::Store(_) | Error::Runtime(_) => 1,
            Error::Interrupted { signal, .. } => 128 + signal,
            Error::Hinted(h) => h.error.exit_code(),
        }
    }

    /// The name of its kind in machine-readable output.
    pub fn kind_name(&self) -> &'static str {
        match self {
            Error::Config(_) => "config",
            Error::Validation(_) => "validation",
            Error::Input(_) => "input",
            Error::Conflict { .. } => "conflict",
            Error::Io { .. } => "io",
            Error::State { .. } => "state",
            Error::Store(_) => "store",
            Error::Runtime(_) => "runtime",
            Error::Interrupted { .. } => "interrupted",
            Error::Hinted(h) => h.error.kind_name(),
        }
    }

    /// Everything a machine-readable error report needs.
    pub fn details(&self) -> ErrorDetails {
        ErrorDetails {
            kind: self.kind_name(),
            conflict: self.conflict_kind().map(Conflict::name),
            message: self.to_string(),
            hint: self.hint().map(str::to_string),
            exit_code: self.exit_code(),
            problems: match self.unhinted() {
                Error::Validation(p) => p.clone(),
                _ => Vec::new(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hint_is_a_field_not_part_of_the_message() {
        let e = Error::Config("config file `x` not found".into()).with_hint("run `assetpub init`");
        assert_eq!(e.to_string(), "config file `x` not found");
        assert_eq!(e.hint(), Some("run `assetpub init`"));
        assert_eq!(e.exit_code(), 2);
        let e = e.with_hint("another");
        assert_eq!(e.hint(), Some("another"));
        assert!(matches!(e.unhinted(), Error::Config(_)));
        assert_eq!(Error::Runtime("x".into()).hint(), None);
    }

    #[test]
    fn exit_codes_follow_the_kind() {
        let io = || std::io::Error::other("boom");
        let cases = [
            (Error::Config("x".into()), 2),
            (Error::Validation(vec!["x".into()]), 3),
            (Error::Input("x".into()), 3),
            (Error::conflict(Conflict::LockHeld, "x"), 4),
            (Error::io("cannot read", "a", io()), 1),
            (Error::state("a", "x"), 1),
            (Error::Store("x".into()), 1),
            (Error::Runtime("x".into()).with_hint("h"), 1),
            (
                Error::Interrupted {
                    signal: 2,
                    message: "x".into(),
                },
                130,
            ),
            (
                Error::Interrupted {
                    signal: 15,
                    message: "x".into(),
                },
                143,
            ),
        ];
        for (e, code) in cases {
            assert_eq!(e.exit_code(), code, "{e:?}");
            assert_eq!(e.details().exit_code, code);
        }
    }

    #[test]
    fn a_conflict_says_what_it_is_by_type_not_by_its_words() {
        // Words that once picked the hint, in places that say nothing
        // about the kind of conflict: a bucket and a state file's name.
        let moved = Error::conflict(
            Conflict::ManifestMoved,
            "`manifest.json` at s3://blocklist/site was changed by another deploy",
        );
        assert_eq!(moved.conflict_kind(), Some(Conflict::ManifestMoved));
        assert_eq!(moved.hint(), Some(Conflict::ManifestMoved.hint()));
        let lock = Error::conflict(Conflict::LockHeld, "the deploy lock is held by x");
        assert_eq!(lock.hint(), Some(Conflict::LockHeld.hint()));
        let state = Error::conflict(
            Conflict::StateInUse,
            "state DB `deploy.lock.db` is locked by another process",
        );
        assert_eq!(state.hint(), Some(Conflict::StateInUse.hint()));
        assert_eq!(state.exit_code(), 4);
        assert_eq!(Error::Runtime("lock".into()).conflict_kind(), None);
    }

    #[test]
    fn sources_are_kept() {
        use std::error::Error as _;
        let e = Error::io("cannot read", "a.css", std::io::Error::other("boom"));
        assert_eq!(e.to_string(), "cannot read `a.css`: boom");
        assert_eq!(e.source().map(|s| s.to_string()).as_deref(), Some("boom"));
        let hinted = e.with_hint("h");
        assert_eq!(hinted.to_string(), "cannot read `a.css`: boom");
        assert_eq!(
            hinted.source().map(|s| s.to_string()).as_deref(),
            Some("boom")
        );
        let sql = Error::sql(
            "state.db",
            rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
                Some("database is locked".into()),
            ),
        );
        assert_eq!(sql.to_string(), "state DB `state.db`: database is locked");
        assert!(sql.source().is_some());
    }

    #[test]
    fn details_describe_the_error_as_data() {
        let e = Error::Validation(vec!["`a`: too big".into(), "`b`: bad name".into()]);
        let d = e.details();
        assert_eq!(d.kind, "validation");
        assert_eq!(d.exit_code, 3);
        assert_eq!(d.problems, ["`a`: too big", "`b`: bad name"]);
        assert_eq!(d.message, e.to_string());
        assert_eq!(d.hint, None);
        let d = Error::conflict(Conflict::StateInUse, "state DB `s` is locked").details();
        assert_eq!(
            serde_json::to_value(&d).unwrap(),
            serde_json::json!({
                "kind": "conflict",
                "conflict": "state_in_use",
                "message": "state DB `s` is locked",
                "hint": Conflict::StateInUse.hint(),
                "exit_code": 4,
            })
        );
    }
}
