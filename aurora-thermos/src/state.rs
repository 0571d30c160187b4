//! Process and task states, named as in the original's `thermos_internal.thrift`.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The state of one run of a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ProcessState {
    /// Waiting for its dependencies, its `min_duration` or a concurrency slot.
    Waiting,
    /// About to be started.
    Forked,
    /// Running, with a pid.
    Running,
    /// Exited with status 0.
    Success,
    /// Exited non-zero, died of a signal the runner did not send, or could not be started.
    Failed,
    /// Killed by the runner.
    Killed,
    /// Its fate is unknown (it vanished without the runner seeing its exit).
    Lost,
}

impl ProcessState {
    /// Whether the run has ended.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            ProcessState::Success
                | ProcessState::Failed
                | ProcessState::Killed
                | ProcessState::Lost
        )
    }

    /// The state's name, e.g. `RUNNING`.
    pub fn as_str(self) -> &'static str {
        match self {
            ProcessState::Waiting => "WAITING",
            ProcessState::Forked => "FORKED",
            ProcessState::Running => "RUNNING",
            ProcessState::Success => "SUCCESS",
            ProcessState::Failed => "FAILED",
            ProcessState::Killed => "KILLED",
            ProcessState::Lost => "LOST",
        }
    }
}

impl fmt::Display for ProcessState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The state of a task: ACTIVE → CLEANING → FINALIZING → SUCCESS / FAILED, or KILLED / LOST
/// when it was stopped from outside.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TaskState {
    /// The regular processes are running.
    Active,
    /// The regular processes are being stopped.
    Cleaning,
    /// The final processes are running.
    Finalizing,
    /// Every process finished well.
    Success,
    /// Too many processes failed, or the task could not make progress.
    Failed,
    /// The task was killed from outside.
    Killed,
    /// The runner lost track of the task.
    Lost,
}

impl TaskState {
    /// Whether the task has ended.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            TaskState::Success | TaskState::Failed | TaskState::Killed | TaskState::Lost
        )
    }

    /// The state's name, e.g. `ACTIVE`.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskState::Active => "ACTIVE",
            TaskState::Cleaning => "CLEANING",
            TaskState::Finalizing => "FINALIZING",
            TaskState::Success => "SUCCESS",
            TaskState::Failed => "FAILED",
            TaskState::Killed => "KILLED",
            TaskState::Lost => "LOST",
        }
    }
}

impl fmt::Display for TaskState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
