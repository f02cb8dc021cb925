//! What assetpub tells or writes for the systems around the target: the CDN
//! in front of it, and nginx serving a directory target; and the check of
//! the live site over HTTP once a deploy is live.

pub mod cdn;
pub mod check;
pub mod nginx;
