//! The client side of aurora-rs: finding clusters (`clusters.json`) and talking to a
//! scheduler over its JSON HTTP API. The `aurora` binary is a thin layer over this crate; other
//! tools can use it the same way. It holds no job logic of its own: configs come from
//! `aurora-config`, domain types from `aurora-core`.

mod api;
mod clusters;
pub mod commands;
pub mod hooks;

pub use api::{ClientError, SchedulerClient};
pub use clusters::{Cluster, ClusterError, Clusters};
