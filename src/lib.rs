//! assetpub: publish a site's static build output to a CDN origin (S3, an
//! S3-compatible store, or a directory nginx serves) under content-
//! fingerprinted keys, uploading only what changed and switching the site in
//! one conditional manifest write.

pub mod app;
pub mod cdn;
pub mod cli;
pub mod collect;
pub mod compress;
pub mod config;
pub mod context;
pub mod django;
pub mod error;
pub mod fingerprint;
pub mod hash;
pub mod history;
pub mod lock;
pub mod manifest;
pub mod mime;
pub mod nginx;
pub mod plan;
pub mod prepare;
pub mod prune;
pub mod publish;
pub mod report;
pub mod rewrite;
pub mod rollback;
pub mod state;
pub mod store;
pub mod upload;
pub mod util;
pub mod verify;

pub use error::{Error, Result};
