//! The runner's checkpoint: every state change, appended before it is acted on, so that a later
//! runner can tell what happened. For now one JSON object per line; issue 5 replaces the framing
//! with a checksummed record stream and adds recovery, keeping these record types.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::{ProcessState, TaskState};

/// One checkpoint record, after the original's `RunnerCkpt` union.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum CheckpointRecord {
    /// Written once, first: what the runner was asked to run.
    Header {
        /// The task id.
        task_id: String,
        /// When the runner started, in milliseconds since the Unix epoch.
        launch_time_ms: i64,
        /// The sandbox directory.
        sandbox: PathBuf,
        /// The user the processes run as.
        user: String,
        /// The ports bound, by name.
        ports: BTreeMap<String, u16>,
        /// Where the process logs go.
        log_dir: PathBuf,
    },
    /// A process run changed state.
    Process {
        /// Counts this process's records, from 0 across all its runs.
        seq: u64,
        /// The process's name.
        process: String,
        /// The run, from 0.
        run: u32,
        /// Its new state.
        state: ProcessState,
        /// When, in milliseconds since the Unix epoch.
        timestamp_ms: i64,
        /// Its pid, once running.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pid: Option<u32>,
        /// Its exit code; negative for the signal that ended it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        return_code: Option<i32>,
    },
    /// The task changed state.
    Task {
        /// Its new state.
        state: TaskState,
        /// When, in milliseconds since the Unix epoch.
        timestamp_ms: i64,
        /// The pid of the runner's process.
        runner_pid: u32,
    },
}

/// Appends records to a checkpoint file, flushing each.
#[derive(Debug)]
pub(crate) struct CheckpointWriter {
    file: File,
    path: PathBuf,
}

impl CheckpointWriter {
    pub(crate) fn create(path: &Path) -> io::Result<CheckpointWriter> {
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir)?;
        }
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(CheckpointWriter {
            file,
            path: path.to_owned(),
        })
    }

    /// Appends one record; terminal task states are also synced to disk.
    pub(crate) fn append(&mut self, record: &CheckpointRecord) -> io::Result<()> {
        let mut line = serde_json::to_vec(record).map_err(io::Error::other)?;
        line.push(b'\n');
        self.file.write_all(&line)?;
        if let CheckpointRecord::Task { state, .. } = record
            && state.is_terminal()
        {
            self.file.sync_data()?;
        }
        Ok(())
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

/// Reads every record of a checkpoint file, in order.
///
/// A line that cannot be parsed (e.g. a torn last write) ends the reading with an error naming
/// the file and line.
pub fn read_checkpoint(path: &Path) -> io::Result<Vec<CheckpointRecord>> {
    let file = File::open(path)?;
    let mut out = Vec::new();
    for (n, line) in BufReader::new(file).lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let rec = serde_json::from_str(&line).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{}:{}: not a checkpoint record: {e}", path.display(), n + 1),
            )
        })?;
        out.push(rec);
    }
    Ok(out)
}
