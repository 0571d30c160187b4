//! The client side of aurora-rs: finding clusters (`clusters.json`), talking to a scheduler
//! over its JSON HTTP API, the client commands and how their answers are printed. The `aurora`
//! binary parses arguments into a [`cli::Request`] and calls [`cli::run`]; other tools can use
//! the commands the same way. It holds no job logic of its own: configs come from
//! `aurora-config`, domain types from `aurora-core`.

mod api;
pub mod cli;
mod clusters;
pub mod commands;
pub mod diff;
#[cfg(test)]
mod fixtures;
pub mod hooks;
pub mod render;

pub use api::{ClientError, SchedulerClient};
pub use clusters::{Cluster, ClusterError, Clusters};
