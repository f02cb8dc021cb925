//! assetpub: publish a site's static build output to a CDN origin (S3, an
//! S3-compatible store, or a directory nginx serves) under content-
//! fingerprinted keys, uploading only what changed and switching the site in
//! one conditional manifest write.
//!
//! The layers, lowest first; a module imports only from layers below it
//! (`tests/layout.rs` holds the code to this):
//! `error`, `util`, `concurrency`, `mime`, `report`, `keys` → `store` →
//! `state` → `rewrite` → `settings` → `remote` → `pipeline` →
//! `integrations` → `commands`.
//!
//! The public surface is what the binary and the tests use: the command
//! line (`cli`), the commands (`commands::run`), errors, the reporter the
//! binary draws progress with, and the reference scanner the tests fuzz.
//! Everything else is the crate's own.

pub mod cli;
pub mod commands;
pub(crate) mod concurrency;
pub mod error;
pub(crate) mod integrations;
pub(crate) mod keys;
pub(crate) mod mime;
pub(crate) mod pipeline;
pub(crate) mod remote;
pub mod report;
pub mod rewrite;
pub(crate) mod settings;
pub(crate) mod state;
pub(crate) mod store;
pub mod util;

pub use error::{Error, Result};
