//! The integration tests: one binary, one module per area.

mod browser;
mod cdn;
mod ci;
mod cli;
mod cluster;
mod collect;
mod collisions;
mod config_errors;
mod env;
mod faults;
mod file_target;
mod hung_store;
mod install;
mod interrupts;
mod layout;
mod messages;
mod nginx;
mod pages;
mod pipeline;
mod prune;
mod races;
mod references;
mod repair;
mod s3;
mod sri;
mod support;
