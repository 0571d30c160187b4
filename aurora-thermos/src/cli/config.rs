//! Finding the task in a config file, and binding it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::{CommandError, Output};
use crate::spec::TaskSpec;
use crate::template::{Bindings, bind_task};

/// Where the task comes from: a JSON file, and which of its tasks.
#[derive(Debug, Clone, Default)]
pub struct ConfigSource {
    /// The config: a JSON Thermos task, an Aurora job JSON with a `task`, or a list of either
    /// (or `{"jobs": [...]}` / `{"tasks": [...]}`).
    pub path: Option<PathBuf>,
    /// Which task, by name, when the config holds several.
    pub task: Option<String>,
}

/// Reads the config and selects one task from it, as JSON (not yet bound).
///
/// ```
/// use aurora_thermos::cli::{ConfigSource, load_config};
/// let dir = tempfile::tempdir().unwrap();
/// let path = dir.path().join("hello.json");
/// let job = r#"{"name": "hello", "task": {"processes": [{"name": "hi", "cmdline": "echo hi"}]}}"#;
/// std::fs::write(&path, job).unwrap();
/// let task = load_config(&ConfigSource { path: Some(path), task: None }).unwrap();
/// // The task of an Aurora job takes the job's name when it has none.
/// assert_eq!(task["name"], "hello");
/// assert_eq!(task["processes"][0]["cmdline"], "echo hi");
/// ```
pub fn load_config(source: &ConfigSource) -> Result<Value, CommandError> {
    let path = source.path.as_deref().ok_or_else(|| {
        CommandError::Usage(
            "no config file given: pass it as CONFIG or with --task-json FILE".into(),
        )
    })?;
    let text = std::fs::read_to_string(path).map_err(|error| CommandError::ReadConfig {
        path: path.to_owned(),
        error,
    })?;
    let json: Value = serde_json::from_str(&text).map_err(|error| CommandError::NotJson {
        path: path.to_owned(),
        error,
    })?;
    let mut tasks = Vec::new();
    collect_tasks(&json, &mut tasks);
    let chosen: Vec<Value> = match &source.task {
        Some(want) => tasks.into_iter().filter(|t| name_of(t) == want).collect(),
        None => tasks,
    };
    let mut chosen = chosen.into_iter();
    match (chosen.next(), chosen.len()) {
        (Some(task), 0) => Ok(task),
        (None, _) => Err(CommandError::NoTask {
            path: path.to_owned(),
            name: source.task.clone(),
        }),
        (Some(first), _) => Err(CommandError::SeveralTasks {
            path: path.to_owned(),
            names: std::iter::once(&first)
                .chain(chosen.as_slice())
                .map(|t| name_of(t).to_owned())
                .collect(),
        }),
    }
}

fn name_of(task: &Value) -> &str {
    task.get("name").and_then(Value::as_str).unwrap_or("")
}

fn collect_tasks(json: &Value, out: &mut Vec<Value>) {
    match json {
        Value::Array(items) => items.iter().for_each(|i| collect_tasks(i, out)),
        Value::Object(m) => {
            if m.contains_key("processes") {
                out.push(json.clone());
            } else if let Some(t) = m.get("task") {
                let mut t = t.clone();
                // An Aurora job's task may leave its name to the job.
                if t.get("name").is_none()
                    && let (Some(obj), Some(n)) = (t.as_object_mut(), m.get("name"))
                {
                    obj.insert("name".into(), n.clone());
                }
                out.push(t);
            } else {
                for key in ["jobs", "tasks"] {
                    if let Some(v) = m.get(key) {
                        collect_tasks(v, out);
                    }
                }
            }
        }
        _ => {}
    }
}

/// Splits `NAME<sep>VALUE` arguments of option `flag`.
pub(super) fn parse_pairs(
    items: &[String],
    sep: char,
    flag: &str,
) -> Result<Vec<(String, String)>, CommandError> {
    items
        .iter()
        .map(|p| {
            p.split_once(sep)
                .filter(|(n, _)| !n.is_empty())
                .map(|(n, v)| (n.to_owned(), v.to_owned()))
                .ok_or_else(|| {
                    CommandError::Usage(format!("{flag} {p:?} is not valid: use NAME{sep}VALUE"))
                })
        })
        .collect()
}

/// Parses `-P NAME:PORT` arguments.
pub(super) fn parse_ports(ports: &[String]) -> Result<BTreeMap<String, u16>, CommandError> {
    parse_pairs(ports, ':', "-P")?
        .into_iter()
        .map(|(n, v)| {
            let port = v.parse::<u16>().map_err(|_| {
                CommandError::Usage(format!(
                    "-P {n}:{v} is not valid: the port must be a number from 0 to 65535"
                ))
            })?;
            Ok((n, port))
        })
        .collect()
}

/// Binds and interpolates the task once, so that it never runs with a reference unbound.
pub(super) fn bind(
    task_json: &Value,
    task_id: &str,
    user: &str,
    ports: &BTreeMap<String, u16>,
    extra: &[(String, String)],
) -> Result<TaskSpec, CommandError> {
    let bindings = Bindings {
        instance: None,
        task_id: task_id.to_owned(),
        user: user.to_owned(),
        ports: ports.clone(),
        extra: extra.iter().cloned().collect(),
    };
    Ok(bind_task(task_json, &bindings)?.task)
}

/// The name of the user this process runs as.
pub(super) fn own_user() -> String {
    nix::unistd::User::from_uid(nix::unistd::geteuid())
        .ok()
        .flatten()
        .map(|u| u.name)
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| "nobody".to_owned())
}

/// `thermos inspect`: prints the task of a config, bound with `ports` (`NAME:PORT`) and
/// `bindings` (`NAME=VALUE`) and checked, as JSON.
pub fn inspect(
    source: &ConfigSource,
    ports: &[String],
    bindings: &[String],
    output: &mut Output<'_>,
) -> Result<(), CommandError> {
    let json = load_config(source)?;
    let ports = parse_ports(ports)?;
    let extra = parse_pairs(bindings, '=', "-E")?;
    let task = bind(&json, "TASK_ID", &own_user(), &ports, &extra)?;
    task.dependencies()?;
    let text = serde_json::to_string_pretty(&task).map_err(std::io::Error::other)?;
    writeln!(output.out, "{text}")?;
    Ok(())
}

/// Whether `path` holds a non-empty file.
pub(super) fn has_content(path: &Path) -> bool {
    path.metadata().is_ok_and(|m| m.len() > 0)
}
