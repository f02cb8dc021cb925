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

pub mod cli;
pub mod commands;
pub mod concurrency;
pub mod error;
pub mod integrations;
pub mod keys;
pub mod mime;
pub mod pipeline;
pub mod remote;
pub mod report;
pub mod rewrite;
pub mod settings;
pub mod state;
pub mod store;
pub mod util;

pub use error::{Error, Result};
