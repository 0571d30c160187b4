//! The Aurora scheduler as a library: durable state, the task lifecycle, placement on
//! registered executors and the JSON HTTP API of [`aurora_core::api`].
//!
//! Every state change is an [`Op`] in an ordered, durable stream ([`Storage`]; SQLite by
//! default) and is acknowledged to a caller only once committed. The rules themselves live in
//! `aurora-core` (the task state machine and the placement function); this crate applies their
//! results and must not re-encode them. It does not parse job configuration files (that is
//! `aurora-config`) and runs no tasks (that is the executor).

// The OpenAPI document is one large `serde_json::json!` literal.
#![recursion_limit = "512"]

mod backup;
mod engine;
mod error;
mod http;
mod openapi;
mod service;
mod state;
mod storage;

pub use backup::{BackupError, BackupErrorKind, backup_data_dir, restore_data_dir};
pub use error::SchedulerError;
pub use service::{Clock, Config, Scheduler, SystemClock};
pub use storage::{
    HostRecord, MemStorage, Op, Recovered, Snapshot, SqliteStorage, StateSnapshot, Storage,
    StorageError, StorageErrorKind, Transaction,
};

pub(crate) use error::RequestError;
