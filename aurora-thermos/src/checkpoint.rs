//! The runner's checkpoint: every state change, appended before it is acted on, so that a later
//! runner can tell what happened and carry on.
//!
//! The file is a stream of framed records: a 4-byte little-endian payload length, the 4-byte
//! little-endian CRC-32 (IEEE) of the payload, then the payload (one JSON-encoded
//! [`CheckpointRecord`]). A record that is cut short (a write torn by a crash) or whose checksum
//! or JSON does not match ends the readable part: [`read_checkpoint`] returns every record
//! before it and reports the torn tail, and a runner that recovers from the file truncates the
//! tail before it appends.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::health::HealthCheckConfig;
use crate::spec::TaskSpec;
use crate::{ProcessState, TaskState};

/// The largest payload a record may have; anything larger is corruption.
const MAX_RECORD: u32 = 16 << 20;
/// The size of a record's frame header (length and checksum).
const FRAME: usize = 8;

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
        /// The task itself (bound), so that a restarted runner can carry on from the file alone.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        task: Option<Box<TaskSpec>>,
        /// The uid, gid and supplementary groups the processes run with, when the runner
        /// switches users.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        identity: Option<(u32, u32, Vec<u32>)>,
        /// The HTTP health check, when the task has one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        health: Option<HealthCheckConfig>,
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
        /// Its start time in clock ticks since boot (`/proc/<pid>/stat` field 22), once
        /// running; with the pid it tells the process from a later one with a reused pid.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        start_ticks: Option<u64>,
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
        /// Why the task is failing, or was killed or lost.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message: Option<String>,
        /// Whether the task is being killed from outside (and so ends KILLED).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        killed: bool,
        /// When whatever still runs gets SIGKILL, in milliseconds since the Unix epoch (from
        /// CLEANING on).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        deadline_ms: Option<i64>,
    },
}

/// What a checkpoint file holds.
#[derive(Debug, Clone, PartialEq, Default)]
#[non_exhaustive]
pub struct Checkpoint {
    /// Every readable record, in order.
    pub records: Vec<CheckpointRecord>,
    /// The unreadable end of the file, if any.
    pub torn: Option<TornTail>,
    /// The length of the readable part, in bytes.
    pub valid_len: u64,
}

/// The unreadable end of a checkpoint: where it starts and why it could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TornTail {
    /// The offset of the first unreadable byte.
    pub offset: u64,
    /// How many bytes follow the last good record.
    pub len: u64,
    /// Why the record there could not be read, e.g. `checksum mismatch`.
    pub reason: String,
}

impl std::fmt::Display for TornTail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} unreadable byte(s) at offset {} ({})",
            self.len, self.offset, self.reason
        )
    }
}

/// A checkpoint that cannot be read or written.
#[derive(Debug, thiserror::Error)]
#[error("cannot use checkpoint {}: {error}", path.display())]
#[non_exhaustive]
pub struct CheckpointError {
    /// The checkpoint file.
    pub path: PathBuf,
    /// The cause (part of the message, so not also a `source()`).
    pub error: io::Error,
}

/// CRC-32 (IEEE 802.3, reflected, as zlib's `crc32`).
pub(crate) fn crc32(data: &[u8]) -> u32 {
    crc32fast::hash(data)
}

/// Frames one record.
pub(crate) fn encode(record: &CheckpointRecord) -> io::Result<Vec<u8>> {
    let payload = serde_json::to_vec(record).map_err(io::Error::other)?;
    let mut out = Vec::with_capacity(FRAME + payload.len());
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32(&payload).to_le_bytes());
    out.extend_from_slice(&payload);
    Ok(out)
}

/// Decodes a whole checkpoint image; never fails, the unreadable tail is reported instead.
pub(crate) fn decode(bytes: &[u8]) -> Checkpoint {
    let mut records = Vec::new();
    let mut at = 0usize;
    let torn = loop {
        let rest = &bytes[at..];
        if rest.is_empty() {
            break None;
        }
        let reason = if rest.len() < FRAME {
            "a frame header cut short".to_owned()
        } else {
            let len = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]);
            let sum = u32::from_le_bytes([rest[4], rest[5], rest[6], rest[7]]);
            if len > MAX_RECORD {
                format!("a record length of {len} bytes, over the {MAX_RECORD}-byte limit")
            } else if rest.len() < FRAME + len as usize {
                format!(
                    "a {len}-byte record cut short after {} byte(s)",
                    rest.len() - FRAME
                )
            } else {
                let payload = &rest[FRAME..FRAME + len as usize];
                if crc32(payload) != sum {
                    "checksum mismatch".to_owned()
                } else {
                    match serde_json::from_slice::<CheckpointRecord>(payload) {
                        Ok(r) => {
                            records.push(r);
                            at += FRAME + len as usize;
                            continue;
                        }
                        Err(e) => format!("not a checkpoint record: {e}"),
                    }
                }
            }
        };
        break Some(TornTail {
            offset: at as u64,
            len: rest.len() as u64,
            reason,
        });
    };
    Checkpoint {
        records,
        torn,
        valid_len: at as u64,
    }
}

/// Reads every readable record of a checkpoint file, in order, and reports a torn or corrupt
/// tail instead of failing on it.
///
/// ```
/// let dir = tempfile::tempdir().unwrap();
/// let path = dir.path().join("runner");
/// std::fs::write(&path, b"\x05\x00").unwrap();
/// let ckpt = aurora_thermos::read_checkpoint(&path).unwrap();
/// assert!(ckpt.records.is_empty());
/// assert_eq!(ckpt.torn.unwrap().offset, 0);
/// ```
pub fn read_checkpoint(path: &Path) -> Result<Checkpoint, CheckpointError> {
    let mut bytes = Vec::new();
    File::open(path)
        .and_then(|mut f| f.read_to_end(&mut bytes))
        .map_err(|error| CheckpointError {
            path: path.to_owned(),
            error,
        })?;
    Ok(decode(&bytes))
}

/// Appends records to a checkpoint file.
#[derive(Debug)]
pub(crate) struct CheckpointWriter {
    file: File,
    path: PathBuf,
    /// An exclusive `flock` on the file, held while the runner lives: two runners never
    /// write one checkpoint.
    _lock: nix::fcntl::Flock<File>,
}

impl CheckpointWriter {
    /// Opens (creating it if needed) a checkpoint for appending, after cutting off a torn tail.
    /// Returns what the file held.
    pub(crate) fn open(path: &Path) -> Result<(CheckpointWriter, Checkpoint), CheckpointError> {
        let err = |error| CheckpointError {
            path: path.to_owned(),
            error,
        };
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir).map_err(err)?;
        }
        let mut file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(path)
            .map_err(err)?;
        let clone = file.try_clone().map_err(err)?;
        let lock = nix::fcntl::Flock::lock(clone, nix::fcntl::FlockArg::LockExclusiveNonblock)
            .map_err(|(_, errno)| {
                err(if errno == nix::errno::Errno::EWOULDBLOCK {
                    io::Error::new(
                        io::ErrorKind::WouldBlock,
                        "another runner holds its lock, so the task is running elsewhere",
                    )
                } else {
                    io::Error::from(errno)
                })
            })?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).map_err(err)?;
        let existing = decode(&bytes);
        if let Some(torn) = &existing.torn {
            tracing::warn!(
                "checkpoint {}: {torn}; recovering from the last good record",
                path.display()
            );
            file.set_len(existing.valid_len).map_err(err)?;
            file.sync_data().map_err(err)?;
        }
        Ok((
            CheckpointWriter {
                file,
                path: path.to_owned(),
                _lock: lock,
            },
            existing,
        ))
    }

    /// Appends one record with a single write. A task's terminal state is also synced to
    /// disk, so that a machine crash cannot make a finished task look unfinished and run it
    /// again; every other record only needs to survive the runner's own death, which the page
    /// cache guarantees, and syncing each would cost a disk flush per state change.
    pub(crate) fn append(&mut self, record: &CheckpointRecord) -> io::Result<()> {
        let frame = encode(record)?;
        self.file.write_all(&frame)?;
        if matches!(record, CheckpointRecord::Task { state, .. } if state.is_terminal()) {
            self.file.sync_data()?;
        }
        Ok(())
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The cause is part of the message and not also a `source()`, so printing the error with
    /// its chain (`{:#}`) names it once.
    #[test]
    fn a_missing_checkpoint_names_its_cause_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("checkpoints/t-1/runner");
        let e = read_checkpoint(&path).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "cannot use checkpoint {}: No such file or directory (os error 2)",
                path.display()
            )
        );
        assert!(std::error::Error::source(&e).is_none());
    }

    fn rec(i: u64) -> CheckpointRecord {
        CheckpointRecord::Process {
            seq: i,
            process: "p".into(),
            run: 0,
            state: ProcessState::Waiting,
            timestamp_ms: 1,
            pid: None,
            start_ticks: None,
            return_code: None,
        }
    }

    #[test]
    fn crc32_matches_zlib() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
    }

    /// Every cut of a three-record stream reads the whole records before the cut and reports
    /// the rest; every flipped byte is caught.
    #[test]
    fn torn_and_corrupt_tails() {
        let mut bytes = Vec::new();
        let mut ends = Vec::new();
        for i in 0..3 {
            bytes.extend(encode(&rec(i)).unwrap());
            ends.push(bytes.len());
        }
        for cut in 0..=bytes.len() {
            let c = decode(&bytes[..cut]);
            let whole = ends.iter().filter(|&&e| e <= cut).count();
            assert_eq!(c.records.len(), whole, "cut at {cut}");
            assert_eq!(c.torn.is_some(), !ends.contains(&cut) && cut != 0);
        }
        for at in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[at] ^= 0x40;
            let c = decode(&bad);
            assert!(c.records.len() < 3, "flip at {at} went unnoticed");
            assert!(c.torn.is_some());
        }
    }
}
