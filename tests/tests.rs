//! The integration tests: one binary, one module per area.

mod cdn;
mod cli;
mod env;
mod file_target;
mod nginx;
mod prune;
mod s3;
mod support;
