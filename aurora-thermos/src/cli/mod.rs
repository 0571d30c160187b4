//! The commands of the `thermos` tool: run a task in the foreground, and inspect, kill and
//! garbage-collect the tasks under a root directory.
//!
//! Each command takes its arguments as values, writes what it prints to the writers it is
//! given, and returns a typed outcome or a [`CommandError`]; the binary only parses arguments
//! and maps outcomes and errors to exit codes. Tasks are found in both layouts of
//! [`TaskLayout`], so the tool reads an executor's work directory as well as its own root.

mod config;
mod gc;
mod kill;
mod run;
mod status;

use std::io::Write;
use std::path::{Path, PathBuf};

pub use config::{ConfigSource, inspect, load_config};
pub use gc::{GcOptions, gc};
pub use kill::kill;
pub use run::{Launch, run, simple_task};
pub use status::{Only, StatusOptions, read, status, tail};

use crate::layout::TaskLayout;
use crate::observe::{TaskView, ViewError};
use crate::runner::RunnerError;
use crate::spec::InvalidTask;
use crate::template::BindError;

/// Why a command could not do what was asked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CommandError {
    /// An argument is not valid; the message names it and says what is expected.
    #[error("{0}")]
    Usage(String),
    /// The config file cannot be read.
    #[error("cannot read config {}: {error}", path.display())]
    ReadConfig {
        /// The file.
        path: PathBuf,
        /// The cause.
        error: std::io::Error,
    },
    /// The config file is not JSON.
    #[error(
        "config {} is not JSON ({error}); only JSON configs are supported; `aurora inspect KEY FILE --write-json` writes one from a .aurora file",
        path.display()
    )]
    NotJson {
        /// The file.
        path: PathBuf,
        /// The cause.
        error: serde_json::Error,
    },
    /// The config holds no task (with the name asked for).
    #[error("config {} has no task{}", path.display(), name.as_ref().map(|n| format!(" named {n:?}")).unwrap_or_default())]
    NoTask {
        /// The file.
        path: PathBuf,
        /// The name asked for with `--task`.
        name: Option<String>,
    },
    /// The config holds several tasks and none was chosen.
    #[error("config {} has several tasks ({}); choose one with --task NAME", path.display(), names.join(", "))]
    SeveralTasks {
        /// The file.
        path: PathBuf,
        /// Their names.
        names: Vec<String>,
    },
    /// The task's references cannot be bound.
    #[error(transparent)]
    Bind(#[from] BindError),
    /// The task is invalid.
    #[error(transparent)]
    Invalid(#[from] InvalidTask),
    /// The runner could not start (see [`RunnerError`] for the cases).
    #[error(transparent)]
    Runner(#[from] RunnerError),
    /// SIGINT and SIGTERM cannot be handled, so a kill could not be graceful.
    #[error("cannot handle SIGINT and SIGTERM: {0}")]
    Signals(std::io::Error),
    /// No task has this id under the root, in either layout.
    #[error("no task {task_id:?} under {}: looked for {} and {}", root.display(), TaskLayout::Thermos.checkpoint(root, task_id).display(), TaskLayout::Executor.checkpoint(root, task_id).display())]
    NoSuchTask {
        /// The root.
        root: PathBuf,
        /// The task id.
        task_id: String,
    },
    /// A checkpoint cannot be read.
    #[error(transparent)]
    View(#[from] ViewError),
    /// The task has no process of this name.
    #[error("task {task_id} has no process {process:?}; its processes: {}", known.join(", "))]
    NoSuchProcess {
        /// The task id.
        task_id: String,
        /// The name asked for.
        process: String,
        /// The names it has.
        known: Vec<String>,
    },
    /// No process of the task has started, so there is no log to show.
    #[error("task {0} has not started a process yet")]
    NotStarted(String),
    /// A log file cannot be read.
    #[error("cannot read log {}: {error}", path.display())]
    Log {
        /// The file.
        path: PathBuf,
        /// The cause.
        error: std::io::Error,
    },
    /// `kill` found no running task to kill.
    #[error("no running task matches {0:?}; `thermos status --only active` lists them")]
    NothingToKill(Vec<String>),
    /// What the command prints cannot be written.
    #[error("cannot write the output: {0}")]
    Output(std::io::Error),
}

// By hand rather than `#[from]`, which would also make the cause the `source()` and have it
// printed twice after the message that already holds it.
impl From<std::io::Error> for CommandError {
    fn from(e: std::io::Error) -> CommandError {
        CommandError::Output(e)
    }
}

/// A task found under a root.
#[derive(Debug)]
pub struct FoundTask {
    /// The task id.
    pub task_id: String,
    /// Its checkpoint file.
    pub checkpoint: PathBuf,
    /// The layout it was found in.
    pub layout: TaskLayout,
    /// What its checkpoint says.
    pub view: Result<TaskView, ViewError>,
}

/// The tasks under `root` in both layouts whose ids match `pattern` (see [`matches`]), sorted
/// by task id.
pub fn find_tasks(root: &Path, pattern: Option<&str>) -> Vec<FoundTask> {
    let mut found: Vec<FoundTask> = TaskLayout::ALL
        .into_iter()
        .flat_map(|layout| {
            layout
                .find(root)
                .into_iter()
                .map(move |(id, path)| (layout, id, path))
        })
        .filter(|(_, id, _)| pattern.is_none_or(|p| matches(p, id)))
        .map(|(layout, task_id, checkpoint)| FoundTask {
            view: TaskView::load(&checkpoint),
            task_id,
            checkpoint,
            layout,
        })
        .collect();
    found.sort_by(|a, b| (&a.task_id, a.layout).cmp(&(&b.task_id, b.layout)));
    found
}

/// The checkpoint of task `task_id` under `root`: `thermos`'s layout first, then the
/// executor's.
pub fn locate(root: &Path, task_id: &str) -> Result<(TaskLayout, PathBuf), CommandError> {
    TaskLayout::ALL
        .into_iter()
        .map(|l| (l, l.checkpoint(root, task_id)))
        .find(|(_, p)| valid_task_id(task_id) && p.is_file())
        .ok_or_else(|| CommandError::NoSuchTask {
            root: root.to_owned(),
            task_id: task_id.to_owned(),
        })
}

/// Whether a task id can name a directory: not empty, no `/`, no leading `.`.
pub(crate) fn valid_task_id(id: &str) -> bool {
    !id.is_empty() && !id.contains(['/', '\0']) && !id.starts_with('.')
}

/// Whether task id `id` matches `pattern`: `^prefix`, `suffix$`, `^exact$` or a substring.
///
/// ```
/// use aurora_thermos::cli::matches;
/// assert!(matches("^web", "web-1") && matches("-1$", "web-1") && matches("b-", "web-1"));
/// assert!(matches("^web-1$", "web-1") && !matches("^web$", "web-1"));
/// ```
pub fn matches(pattern: &str, id: &str) -> bool {
    match (pattern.strip_prefix('^'), pattern.strip_suffix('$')) {
        (Some(p), _) if p.ends_with('$') => id == &p[..p.len() - 1],
        (Some(p), _) => id.starts_with(p),
        (None, Some(s)) => id.ends_with(s),
        (None, None) => id.contains(pattern),
    }
}

/// Where a command writes what it prints: `out` for results, `err` for progress and warnings.
pub struct Output<'a> {
    /// Results (stdout).
    pub out: &'a mut dyn Write,
    /// Progress and warnings (stderr).
    pub err: &'a mut dyn Write,
}

impl std::fmt::Debug for Output<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Output")
    }
}

impl Output<'_> {
    /// A warning or progress line on `err`, prefixed with `thermos: `; a failure to write it
    /// is not worth failing the command for.
    fn note(&mut self, line: std::fmt::Arguments<'_>) {
        let _ = writeln!(self.err, "thermos: {line}");
    }
}
