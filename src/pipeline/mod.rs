//! The stages a build goes through, in the order data moves:
//! [`collect`] walks the source dirs, [`hash`] reads and hashes what the
//! stat cache cannot vouch for (with [`scan`] reading each text file's
//! references out of the bytes it holds), [`references`] finds what each text file
//! names and orders them, [`prepare`] rewrites and names them, [`compress`]
//! makes the encoded variants, [`plan`] compares the result with the served
//! deploy, and [`payload`] gives each object the plan uploads its body (the
//! bytes preparation made, made now if the cache spared making them, or the
//! file streamed from disk).
//!
//! The stages take values and return values. The caches they read and fill
//! (stat cache, references, rewriting results, compressed sizes) are behind
//! one interface, [`Cache`], that the caller passes in; `plan` takes what is
//! known of the target's objects as a value. Sending the payloads is the
//! publish command's (`commands/publish/upload.rs`).

pub mod cache;
pub mod claims;
pub mod collect;
pub mod compress;
pub mod estimate;
pub mod hash;
pub mod payload;
pub mod plan;
pub mod prepare;
pub mod redirect_claims;
pub mod references;
pub mod scan;

pub use cache::Cache;
