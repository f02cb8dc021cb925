//! The integration tests: one binary, one module per area.

mod browser;
mod cli;
mod cluster;
mod file_target;
mod hung_store;
mod nginx;
mod pages;
mod prune;
mod s3;
mod support;
