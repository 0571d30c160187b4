//! End-to-end tests: the real binaries on loopback ports. One module per feature.

mod admin;
mod cli;
mod config;
mod diff;
mod lifecycle;
mod locks;
mod output;
mod scheduling;
mod thermos;
