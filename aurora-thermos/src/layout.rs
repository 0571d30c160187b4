//! Where tasks keep their checkpoints and sandboxes under a root directory.
//!
//! Two layouts exist, and readers (`thermos status`, `tail`, `read`) understand both, so that
//! `thermos --root <executor work dir>` shows the executor's tasks:
//! - `thermos run` keeps the original Thermos layout, `<root>/checkpoints/<id>/runner` with the
//!   sandbox in `<root>/sandbox/<id>`;
//! - `aurora-executor` keeps a task's files together, `<work_dir>/tasks/<id>/checkpoint` with
//!   the sandbox in `<work_dir>/tasks/<id>/sandbox`, so that removing a task is one directory.

use std::path::{Path, PathBuf};

use crate::observe::find_checkpoints;

/// One of the two directory layouts of tasks under a root.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum TaskLayout {
    /// `thermos`: `<root>/checkpoints/<id>/runner` and `<root>/sandbox/<id>`.
    Thermos,
    /// `aurora-executor`: `<root>/tasks/<id>/checkpoint` and `<root>/tasks/<id>/sandbox`.
    Executor,
}

impl TaskLayout {
    /// Both layouts, in the order lookups try them.
    pub const ALL: [TaskLayout; 2] = [TaskLayout::Thermos, TaskLayout::Executor];

    /// The directory holding one subdirectory per task.
    pub fn tasks_dir(self, root: &Path) -> PathBuf {
        match self {
            TaskLayout::Thermos => root.join("checkpoints"),
            TaskLayout::Executor => root.join("tasks"),
        }
    }

    /// The name of the checkpoint file in a task's subdirectory.
    pub const fn checkpoint_name(self) -> &'static str {
        match self {
            TaskLayout::Thermos => "runner",
            TaskLayout::Executor => "checkpoint",
        }
    }

    /// The checkpoint file of task `task_id`.
    ///
    /// ```
    /// use std::path::Path;
    /// use aurora_thermos::TaskLayout;
    /// let root = Path::new("/var/run/thermos");
    /// assert_eq!(TaskLayout::Thermos.checkpoint(root, "t-1"), root.join("checkpoints/t-1/runner"));
    /// assert_eq!(TaskLayout::Executor.checkpoint(root, "t-1"), root.join("tasks/t-1/checkpoint"));
    /// ```
    pub fn checkpoint(self, root: &Path, task_id: &str) -> PathBuf {
        self.tasks_dir(root)
            .join(task_id)
            .join(self.checkpoint_name())
    }

    /// The default sandbox of task `task_id`.
    pub fn sandbox(self, root: &Path, task_id: &str) -> PathBuf {
        match self {
            TaskLayout::Thermos => root.join("sandbox").join(task_id),
            TaskLayout::Executor => root.join("tasks").join(task_id).join("sandbox"),
        }
    }

    /// The tasks of this layout under `root` that have a checkpoint file, by task id.
    pub fn find(self, root: &Path) -> Vec<(String, PathBuf)> {
        find_checkpoints(&self.tasks_dir(root), self.checkpoint_name())
    }

    /// Its name as `thermos status --json` prints it.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskLayout::Thermos => "thermos",
            TaskLayout::Executor => "executor",
        }
    }
}
