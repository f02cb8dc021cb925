//! The integration tests: one binary, one module per area.

mod cdn;
mod ci;
mod cli;
mod env;
mod faults;
mod file_target;
mod nginx;
mod pipeline;
mod prune;
mod races;
mod s3;
mod support;
