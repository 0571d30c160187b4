//! `thermos run` and `thermos simplerun`: one task in the foreground.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde_json::Value;

use super::config::{bind, has_content, own_user, parse_pairs, parse_ports};
use super::{CommandError, Output, valid_task_id};
use crate::layout::TaskLayout;
use crate::runner::{RunOptions, RunSpec, TaskRunner, UserMode};
use crate::signals::{TerminationSignals, default_task_id};
use crate::spec::{ProcessSpec, TaskSpec};
use crate::state::TaskState;

/// How long a task killed by SIGINT or SIGTERM has between SIGTERM and SIGKILL.
const SIGNAL_GRACE: Duration = Duration::from_secs(5);

/// How `run` and `simplerun` start a task.
#[derive(Debug, Clone, Default)]
pub struct Launch {
    /// The task id (default: `NAME-YYYYmmdd-HHMMSS.micros`). Running an id whose checkpoint
    /// exists carries on from it; a task that ended is never run again.
    pub task_id: Option<String>,
    /// The sandbox (default: `ROOT/sandbox/TASK_ID`).
    pub sandbox: Option<PathBuf>,
    /// Port bindings, `NAME:PORT`, for `{{thermos.ports[NAME]}}`.
    pub ports: Vec<String>,
    /// Bindings, `NAME=VALUE`, for `{{NAME}}`.
    pub bindings: Vec<String>,
    /// Run the processes as this Unix user (needs root); default: the caller's own user.
    pub user: Option<String>,
}

/// The one-process task `thermos simplerun` runs: `cmdline` as process `name`.
pub fn simple_task(name: &str, cmdline: &[String]) -> Value {
    let mut p = ProcessSpec::new(name, cmdline.join(" "));
    p.min_duration = 0;
    let task = TaskSpec::sequential(name, vec![p]);
    serde_json::to_value(task).unwrap_or_default()
}

/// `thermos run`: runs `task_json` (not yet bound) under `root` in the foreground, killing it
/// gracefully on SIGINT or SIGTERM, and returns how it ended. The checkpoint goes to
/// `<root>/checkpoints/<task_id>/runner`; a task whose checkpoint exists carries on from it.
pub fn run(
    root: &Path,
    task_json: &Value,
    launch: Launch,
    output: &mut Output<'_>,
) -> Result<TaskState, CommandError> {
    let ports = parse_ports(&launch.ports)?;
    let extra = parse_pairs(&launch.bindings, '=', "-E")?;
    let (user, user_mode) = match launch.user {
        Some(u) => (u, UserMode::Switch),
        None => (own_user(), UserMode::Current),
    };
    let name = task_json
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or("task");
    let task_id = launch
        .task_id
        .unwrap_or_else(|| default_task_id(name, SystemTime::now()));
    if !valid_task_id(&task_id) {
        return Err(CommandError::Usage(format!(
            "--task_id {task_id:?} is not valid: it names a directory, so no '/' or leading '.'"
        )));
    }
    let sandbox = launch
        .sandbox
        .unwrap_or_else(|| TaskLayout::Thermos.sandbox(root, &task_id));
    let options = RunOptions {
        user_mode,
        ..RunOptions::default()
    };
    let checkpoint = TaskLayout::Thermos.checkpoint(root, &task_id);
    // Installed before the first process starts, so that no signal is lost in between.
    let signals = TerminationSignals::install().map_err(CommandError::Signals)?;
    // A task that has a checkpoint carries on with the task it recorded, bound when it first
    // ran, so the config is not bound again (its `-E` bindings need not be given twice).
    let handle = if has_content(&checkpoint) {
        TaskRunner::recover(&checkpoint, options)?
    } else {
        let task = bind(task_json, &task_id, &user, &ports, &extra)?;
        TaskRunner::start(RunSpec {
            task,
            task_id: task_id.clone(),
            sandbox: sandbox.clone(),
            checkpoint,
            user,
            ports,
            options,
        })?
    };
    let handle = Arc::new(handle);
    let status = handle.status();
    if status.state.is_terminal() {
        output.note(format_args!(
            "task {task_id} already ended; it is not run again"
        ));
    } else if status.recovered {
        output.note(format_args!(
            "carrying on with task {task_id} from its checkpoint"
        ));
    } else {
        output.note(format_args!(
            "running task {task_id} in {}",
            sandbox.display()
        ));
    }
    if let Err(e) = signals.kill_on_signal(handle.clone(), SIGNAL_GRACE) {
        // The task runs on; only a kill by signal is lost.
        output.note(format_args!("cannot watch for SIGINT and SIGTERM: {e}"));
    }
    let status = handle.wait();
    for (name, p) in &status.processes {
        writeln!(
            output.out,
            "process {name}: {} (runs {}, exit code {})",
            p.state,
            p.runs,
            p.return_code.map_or("-".to_owned(), |c| c.to_string())
        )?;
    }
    if let Some(m) = &status.message {
        writeln!(output.out, "reason: {m}")?;
    }
    writeln!(output.out, "task finished: {}", status.state)?;
    Ok(status.state)
}
