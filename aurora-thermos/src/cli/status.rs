//! `thermos status`, `tail` and `read`: what the checkpoints under a root say.

use std::path::Path;

use serde_json::{Value, json};

use super::{CommandError, Output, find_tasks, locate};
use crate::checkpoint::read_checkpoint;
use crate::observe::{TaskView, tail_file};
use crate::runner::log_path;

/// Which tasks `status` lists by state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Only {
    /// All of them.
    #[default]
    All,
    /// Those still running.
    Active,
    /// Those that ended.
    Finished,
}

impl std::str::FromStr for Only {
    type Err = CommandError;

    fn from_str(s: &str) -> Result<Only, CommandError> {
        match s {
            "active" => Ok(Only::Active),
            "finished" => Ok(Only::Finished),
            _ => Err(CommandError::Usage(format!(
                "--only {s:?} is not valid: use active or finished"
            ))),
        }
    }
}

/// What `status` lists, and how.
#[derive(Debug, Clone, Default)]
pub struct StatusOptions {
    /// Only task ids matching this (see [`super::matches`]).
    pub pattern: Option<String>,
    /// Only active or finished tasks.
    pub only: Only,
    /// JSON instead of text.
    pub json: bool,
}

/// `thermos status`: lists the tasks under `root` (both layouts) with their states and the
/// latest run of each process.
///
/// ```
/// use aurora_thermos::cli::{Output, StatusOptions, status};
/// let root = tempfile::tempdir().unwrap();
/// let (mut out, mut err) = (Vec::new(), Vec::new());
/// let options = StatusOptions { json: true, ..StatusOptions::default() };
/// status(root.path(), &options, &mut Output { out: &mut out, err: &mut err }).unwrap();
/// assert_eq!(String::from_utf8(out).unwrap(), "[]\n");
/// ```
pub fn status(
    root: &Path,
    options: &StatusOptions,
    output: &mut Output<'_>,
) -> Result<(), CommandError> {
    let mut listed = Vec::new();
    for found in find_tasks(root, options.pattern.as_deref()) {
        let view = match found.view {
            Ok(v) => v,
            Err(e) => {
                if !options.json {
                    writeln!(output.out, "{}: unreadable checkpoint ({e})", found.task_id)?;
                }
                continue;
            }
        };
        let finished = view.is_terminal();
        match options.only {
            Only::Active if finished => continue,
            Only::Finished if !finished => continue,
            _ => {}
        }
        if options.json {
            let mut task = task_json(&view);
            task["layout"] = json!(found.layout.as_str());
            task["checkpoint"] = json!(found.checkpoint);
            listed.push(task);
        } else {
            write!(output.out, "{}", task_text(&view))?;
        }
    }
    if options.json {
        writeln!(output.out, "{}", Value::Array(listed))?;
    }
    Ok(())
}

fn task_json(v: &TaskView) -> Value {
    let processes: serde_json::Map<String, Value> = v
        .processes
        .iter()
        .map(|(name, h)| {
            let last = h.runs.last();
            let process = json!({
                "runs": h.runs.len(),
                "state": last.map(|r| r.state.as_str()),
                "pid": last.and_then(|r| r.pid),
                "return_code": last.and_then(|r| r.return_code),
            });
            (name.clone(), process)
        })
        .collect();
    json!({
        "task_id": v.task_id,
        "state": v.state.map_or("UNKNOWN", |s| s.as_str()),
        "message": v.message,
        "sandbox": v.sandbox,
        "user": v.user,
        "processes": processes,
        "torn_tail": v.torn.as_ref().map(|t| t.to_string()),
    })
}

fn task_text(v: &TaskView) -> String {
    let mut text = format!(
        "{}: {}{}\n",
        v.task_id,
        v.state.map_or("UNKNOWN", |s| s.as_str()),
        v.message
            .as_ref()
            .map(|m| format!(" ({m})"))
            .unwrap_or_default()
    );
    for (name, h) in &v.processes {
        if let Some(r) = h.runs.last() {
            text.push_str(&format!(
                "  {name}: {} run {}{}{}\n",
                r.state,
                r.run,
                r.pid.map(|p| format!(" pid {p}")).unwrap_or_default(),
                r.return_code
                    .map(|c| format!(" exit code {c}"))
                    .unwrap_or_default()
            ));
        }
    }
    if let Some(t) = &v.torn {
        text.push_str(&format!("  checkpoint: {t}\n"));
    }
    text
}

/// `thermos tail`: prints the last `bytes` bytes of the stdout (or stderr) log of the latest
/// run of `process` (default: the process that started last) of task `task_id`.
pub fn tail(
    root: &Path,
    task_id: &str,
    process: Option<&str>,
    stderr: bool,
    bytes: u64,
    output: &mut Output<'_>,
) -> Result<(), CommandError> {
    let (_, checkpoint) = locate(root, task_id)?;
    let view = TaskView::load(&checkpoint)?;
    let (name, history) = match process {
        Some(p) => view
            .processes
            .get_key_value(p)
            .ok_or_else(|| CommandError::NoSuchProcess {
                task_id: task_id.to_owned(),
                process: p.to_owned(),
                known: view.processes.keys().cloned().collect(),
            })?,
        None => view
            .processes
            .iter()
            .filter(|(_, h)| h.runs.iter().any(|r| r.start_ms.is_some()))
            .max_by_key(|(_, h)| h.runs.iter().filter_map(|r| r.start_ms).max())
            .ok_or_else(|| CommandError::NotStarted(task_id.to_owned()))?,
    };
    let run = history
        .runs
        .iter()
        .rev()
        .find(|r| r.start_ms.is_some())
        .map_or(0, |r| r.run);
    let stream = if stderr { "stderr" } else { "stdout" };
    let path = log_path(&view.sandbox, name, run, stream);
    let text = tail_file(&path, bytes).map_err(|error| CommandError::Log { path, error })?;
    write!(output.out, "{text}")?;
    Ok(())
}

/// `thermos read`: dumps a checkpoint (a file, or the checkpoint of a task id under `root`),
/// one JSON record per line; a torn tail is reported on `err`.
pub fn read(root: &Path, which: &str, output: &mut Output<'_>) -> Result<(), CommandError> {
    let path = if Path::new(which).is_file() {
        Path::new(which).to_owned()
    } else {
        locate(root, which)?.1
    };
    let ckpt = read_checkpoint(&path).map_err(crate::observe::ViewError::from)?;
    for r in &ckpt.records {
        let line = serde_json::to_string(r).map_err(std::io::Error::other)?;
        writeln!(output.out, "{line}")?;
    }
    if let Some(t) = &ckpt.torn {
        output.note(format_args!("{}: torn tail: {t}", path.display()));
    }
    Ok(())
}
