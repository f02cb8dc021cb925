//! The integration tests: one binary, one module per area.

mod cli;
mod file_target;
mod nginx;
mod pipeline;
mod prune;
