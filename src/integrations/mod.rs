//! What assetpub tells or writes for the systems around the target: the CDN
//! in front of it, and nginx serving a directory target.

pub mod cdn;
pub mod nginx;
