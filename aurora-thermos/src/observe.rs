//! What a checkpoint says about a task, replayed into a view: the data behind `thermos status`,
//! `thermos read`, recovery and (later) the observer.

use std::collections::BTreeMap;
use std::fs;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use crate::checkpoint::{Checkpoint, CheckpointError, CheckpointRecord, TornTail, read_checkpoint};
use crate::health::HealthCheckConfig;
use crate::spec::TaskSpec;
use crate::{ProcessState, TaskState};

/// A task as its checkpoint tells it.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct TaskView {
    /// The task id.
    pub task_id: String,
    /// The sandbox.
    pub sandbox: PathBuf,
    /// The user the processes run as.
    pub user: String,
    /// The ports bound.
    pub ports: BTreeMap<String, u16>,
    /// When the runner first started, ms since the epoch.
    pub launch_time_ms: i64,
    /// The bound task, when recorded.
    pub task: Option<TaskSpec>,
    /// The uid, gid and groups processes run with, when the runner switched users.
    pub identity: Option<(u32, u32, Vec<u32>)>,
    /// The health check, when the task has one.
    pub health: Option<HealthCheckConfig>,
    /// The latest task state, if any was recorded.
    pub state: Option<TaskState>,
    /// When it was entered, ms since the epoch.
    pub state_since_ms: i64,
    /// Why the task failed or was killed.
    pub message: Option<String>,
    /// Whether it is being (or was) killed from outside.
    pub killed: bool,
    /// When leftovers get SIGKILL, from CLEANING on.
    pub deadline_ms: Option<i64>,
    /// The pid of the runner that wrote the latest task state.
    pub runner_pid: Option<u32>,
    /// Each process's runs, by name.
    pub processes: BTreeMap<String, ProcessHistory>,
    /// The unreadable tail of the checkpoint, if any.
    pub torn: Option<TornTail>,
}

/// Every run of one process.
#[derive(Debug, Clone, PartialEq, Default)]
#[non_exhaustive]
pub struct ProcessHistory {
    /// Its runs, in order.
    pub runs: Vec<RunView>,
    /// The `seq` its next record gets.
    pub next_seq: u64,
}

/// One run of a process.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct RunView {
    /// The run number, from 0.
    pub run: u32,
    /// Its latest state.
    pub state: ProcessState,
    /// Its pid, once running.
    pub pid: Option<u32>,
    /// Its start time in clock ticks since boot, once running.
    pub start_ticks: Option<u64>,
    /// Its exit code (negative: the signal), once ended.
    pub return_code: Option<i32>,
    /// When it started running, ms since the epoch.
    pub start_ms: Option<i64>,
    /// When it ended, ms since the epoch.
    pub end_ms: Option<i64>,
}

/// A checkpoint that cannot be viewed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ViewError {
    /// The file cannot be read.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// The file has no header record, so it is not (or no longer) a Thermos checkpoint.
    #[error(
        "{path} has no readable header record; it is not a Thermos checkpoint (or its start was torn)"
    )]
    NoHeader {
        /// The file.
        path: PathBuf,
    },
}

impl TaskView {
    /// Reads and replays a checkpoint file.
    pub fn load(path: &Path) -> Result<TaskView, ViewError> {
        let ckpt = read_checkpoint(path)?;
        TaskView::replay(&ckpt).ok_or_else(|| ViewError::NoHeader {
            path: path.to_owned(),
        })
    }

    /// Replays records into a view; `None` without a header record.
    pub fn replay(ckpt: &Checkpoint) -> Option<TaskView> {
        let mut view = None::<TaskView>;
        for r in &ckpt.records {
            match r {
                CheckpointRecord::Header {
                    task_id,
                    launch_time_ms,
                    sandbox,
                    user,
                    ports,
                    task,
                    identity,
                    health,
                    ..
                } => {
                    if view.is_none() {
                        view = Some(TaskView {
                            task_id: task_id.clone(),
                            sandbox: sandbox.clone(),
                            user: user.clone(),
                            ports: ports.clone(),
                            launch_time_ms: *launch_time_ms,
                            task: task.as_deref().cloned(),
                            identity: identity.clone(),
                            health: health.clone(),
                            state: None,
                            state_since_ms: *launch_time_ms,
                            message: None,
                            killed: false,
                            deadline_ms: None,
                            runner_pid: None,
                            processes: BTreeMap::new(),
                            torn: ckpt.torn.clone(),
                        });
                    }
                }
                CheckpointRecord::Process {
                    seq,
                    process,
                    run,
                    state,
                    timestamp_ms,
                    pid,
                    start_ticks,
                    return_code,
                } => {
                    let Some(v) = view.as_mut() else { continue };
                    let h = v.processes.entry(process.clone()).or_default();
                    h.next_seq = h.next_seq.max(seq + 1);
                    let idx = match h.runs.iter().position(|r| r.run == *run) {
                        Some(i) => i,
                        None => {
                            h.runs.push(RunView {
                                run: *run,
                                state: *state,
                                pid: None,
                                start_ticks: None,
                                return_code: None,
                                start_ms: None,
                                end_ms: None,
                            });
                            h.runs.len() - 1
                        }
                    };
                    let rv = &mut h.runs[idx];
                    rv.state = *state;
                    if pid.is_some() {
                        rv.pid = *pid;
                    }
                    if start_ticks.is_some() {
                        rv.start_ticks = *start_ticks;
                    }
                    if *state == ProcessState::Running {
                        rv.start_ms = Some(*timestamp_ms);
                    }
                    if state.is_terminal() {
                        rv.end_ms = Some(*timestamp_ms);
                        rv.return_code = *return_code;
                    }
                }
                CheckpointRecord::Task {
                    state,
                    timestamp_ms,
                    runner_pid,
                    message,
                    killed,
                    deadline_ms,
                } => {
                    let Some(v) = view.as_mut() else { continue };
                    v.state = Some(*state);
                    v.state_since_ms = *timestamp_ms;
                    v.runner_pid = Some(*runner_pid);
                    if message.is_some() {
                        v.message = message.clone();
                    }
                    v.killed |= *killed;
                    if deadline_ms.is_some() {
                        v.deadline_ms = *deadline_ms;
                    }
                }
            }
        }
        view
    }

    /// Whether the task has ended.
    pub fn is_terminal(&self) -> bool {
        self.state.is_some_and(TaskState::is_terminal)
    }
}

/// The task ids under a directory of task directories, with their checkpoint files: each
/// `<dir>/<task_id>/<file_name>` that exists, sorted by task id.
pub fn find_checkpoints(dir: &Path, file_name: &str) -> Vec<(String, PathBuf)> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<(String, PathBuf)> = entries
        .flatten()
        .filter_map(|e| {
            let id = e.file_name().to_str()?.to_owned();
            let path = e.path().join(file_name);
            path.is_file().then_some((id, path))
        })
        .collect();
    out.sort();
    out
}

/// The last `max_bytes` of a log file (the whole file when shorter), lossily decoded.
pub fn tail_file(path: &Path, max_bytes: u64) -> std::io::Result<String> {
    let mut f = fs::File::open(path)?;
    let len = f.metadata()?.len();
    f.seek(SeekFrom::Start(len.saturating_sub(max_bytes)))?;
    let mut buf = Vec::new();
    // The process may still be writing: read no more than asked for.
    f.take(max_bytes).read_to_end(&mut buf)?;
    Ok(String::from_utf8_lossy(&buf).into_owned())
}
