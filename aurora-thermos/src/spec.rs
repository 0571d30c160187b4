//! The Thermos task as the runner receives it (the `task` object of an Aurora job's JSON), and
//! its validation into a process dependency graph before anything runs.

use std::collections::BTreeSet;

use aurora_config::process_order::{ProcessFacts, process_dependencies};
use serde::{Deserialize, Serialize};

/// A Thermos task: a set of processes, the order constraints between them and the task-wide
/// failure and concurrency limits. Field names and defaults follow the spec's Task schema.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskSpec {
    /// The task's name.
    pub name: String,
    /// Its processes.
    pub processes: Vec<ProcessSpec>,
    /// Ordering constraints: each lists processes that run one after another.
    #[serde(default)]
    pub constraints: Vec<OrderConstraint>,
    /// What the task asked for (enforced from issue 5 on; recorded only for now).
    #[serde(default)]
    pub resources: Option<TaskResources>,
    /// How many regular processes may fail before the task fails; 0 means never.
    #[serde(default = "one")]
    pub max_failures: u32,
    /// How many processes may run at once; 0 means no limit.
    #[serde(default)]
    pub max_concurrency: u32,
    /// Seconds from the end of the regular processes until everything still running is killed.
    #[serde(default = "thirty")]
    pub finalization_wait: u64,
}

/// One process of a [`TaskSpec`], after the spec's Process schema.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProcessSpec {
    /// Its name, unique within the task; also the name of its log directory.
    pub name: String,
    /// The command line, run with `bash -c`.
    pub cmdline: String,
    /// How many failed runs are allowed before the process counts as failed; 0 means retry
    /// forever.
    #[serde(default = "one")]
    pub max_failures: u32,
    /// Whether the process is run again after it succeeds.
    #[serde(default)]
    pub daemon: bool,
    /// Whether the task may finish (or fail) without this process finishing.
    #[serde(default)]
    pub ephemeral: bool,
    /// The minimum number of seconds between the end of one run and the start of the next.
    #[serde(default = "five")]
    pub min_duration: u64,
    /// Whether the process runs after the regular processes, in the finalization phase.
    #[serde(default, rename = "final")]
    pub is_final: bool,
}

/// An ordering constraint: every process in `order` starts only after the one before it
/// succeeded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderConstraint {
    /// Process names, in the order they must run.
    #[serde(default)]
    pub order: Vec<String>,
}

/// The resources a task asked for, in the spec's units (cores and bytes).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct TaskResources {
    /// CPU cores.
    #[serde(default)]
    pub cpu: f64,
    /// Memory in bytes.
    #[serde(default)]
    pub ram: u64,
    /// Disk in bytes.
    #[serde(default)]
    pub disk: u64,
}

fn one() -> u32 {
    1
}
fn five() -> u64 {
    5
}
fn thirty() -> u64 {
    30
}

/// Every problem found in a task before it ran.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("task {task:?} is invalid: {}", problems.join("; "))]
#[non_exhaustive]
pub struct InvalidTask {
    /// The task's name.
    pub task: String,
    /// One sentence per problem, each naming the processes involved.
    pub problems: Vec<String>,
}

impl TaskSpec {
    /// Builds the task `SequentialTask` makes: the processes run one after another, in the
    /// order given.
    pub fn sequential(name: impl Into<String>, processes: Vec<ProcessSpec>) -> TaskSpec {
        let order = processes.iter().map(|p| p.name.clone()).collect();
        TaskSpec {
            name: name.into(),
            processes,
            constraints: vec![OrderConstraint { order }],
            resources: None,
            max_failures: 1,
            max_concurrency: 0,
            finalization_wait: 30,
        }
    }

    /// Checks the task and returns, for each process (by index), the indices of the processes
    /// it depends on. Rejects invalid or duplicate names, constraints naming unknown processes,
    /// constraints mixing final and regular processes, dependencies on daemons, regular
    /// processes depending on ephemeral ones, and cycles; every problem is reported.
    ///
    /// ```
    /// use aurora_thermos::{ProcessSpec, TaskSpec};
    /// let p = |n: &str| ProcessSpec::new(n, "true");
    /// let task = TaskSpec::sequential("t", vec![p("a"), p("b")]);
    /// assert_eq!(task.dependencies().unwrap(), vec![vec![], vec![0]]);
    /// ```
    pub fn dependencies(&self) -> Result<Vec<Vec<usize>>, InvalidTask> {
        let mut problems = Vec::new();
        if self.processes.is_empty() {
            problems.push("it has no processes".to_owned());
        }
        let mut seen = BTreeSet::new();
        for p in &self.processes {
            if let Some(why) = invalid_name(&p.name) {
                problems.push(format!("process name {:?} is invalid: {why}", p.name));
            }
            if !seen.insert(p.name.as_str()) {
                problems.push(format!("process name {:?} is used twice", p.name));
            }
        }
        let facts: Vec<ProcessFacts<'_>> = self
            .processes
            .iter()
            .map(|p| ProcessFacts {
                name: &p.name,
                daemon: p.daemon,
                ephemeral: p.ephemeral,
                is_final: p.is_final,
            })
            .collect();
        let constraints: Vec<Vec<String>> =
            self.constraints.iter().map(|c| c.order.clone()).collect();
        // The same rule as the client's config validation, from aurora-config.
        let deps = process_dependencies(&facts, &constraints).unwrap_or_else(|order| {
            problems.extend(order.iter().map(ToString::to_string));
            Vec::new()
        });
        if problems.is_empty() {
            Ok(deps)
        } else {
            Err(InvalidTask {
                task: self.name.clone(),
                problems,
            })
        }
    }
}

impl ProcessSpec {
    /// A process with the spec's defaults: one allowed failure, `min_duration` 5, not daemon,
    /// ephemeral or final.
    pub fn new(name: impl Into<String>, cmdline: impl Into<String>) -> ProcessSpec {
        ProcessSpec {
            name: name.into(),
            cmdline: cmdline.into(),
            max_failures: 1,
            daemon: false,
            ephemeral: false,
            min_duration: 5,
            is_final: false,
        }
    }
}

/// Why a process name cannot be used (it names a log directory): `^[^./][^/]*$`, no NUL.
fn invalid_name(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        Some("it is empty")
    } else if name.starts_with('.') {
        Some("it starts with '.'")
    } else if name.contains('/') {
        Some("it contains '/'")
    } else if name.contains('\0') {
        Some("it contains a NUL character")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(task: &str, expect: Result<Vec<Vec<usize>>, &[&str]>) {
        let task: TaskSpec = serde_json::from_str(task).unwrap();
        match (task.dependencies(), expect) {
            (Ok(got), Ok(want)) => assert_eq!(got, want),
            (Err(e), Err(frags)) => {
                let text = e.to_string();
                for f in frags {
                    assert!(text.contains(f), "{text:?} lacks {f:?}");
                }
            }
            (got, want) => panic!("{got:?} vs {want:?}"),
        }
    }

    #[test]
    fn defaults_follow_the_spec() {
        let t: TaskSpec =
            serde_json::from_str(r#"{"name":"t","processes":[{"name":"a","cmdline":"x"}]}"#)
                .unwrap();
        assert_eq!(t.processes[0], ProcessSpec::new("a", "x"));
        assert_eq!(
            (t.max_failures, t.max_concurrency, t.finalization_wait),
            (1, 0, 30)
        );
    }

    #[test]
    fn validation() {
        let procs =
            r#"[{"name":"a","cmdline":"x"},{"name":"b","cmdline":"x"},{"name":"c","cmdline":"x"}]"#;
        let t = |cons: &str| format!(r#"{{"name":"t","processes":{procs},"constraints":{cons}}}"#);
        check(&t("[]"), Ok(vec![vec![], vec![], vec![]]));
        check(
            &t(r#"[{"order":["a","b"]},{"order":["a","c"]}]"#),
            Ok(vec![vec![], vec![0], vec![0]]),
        );
        check(
            &t(r#"[{"order":["a","b","c"]},{"order":["c","a"]}]"#),
            Err(&["cycle"]),
        );
        check(
            &t(r#"[{"order":["a","z"]}]"#),
            Err(&["Unknown process \"z\"", "not a process of the task"]),
        );
        check(
            r#"{"name":"t","processes":[{"name":".a","cmdline":"x"},{"name":"b/c","cmdline":"x"},{"name":"d","cmdline":"x"},{"name":"d","cmdline":"x"}]}"#,
            Err(&["\".a\"", "\"b/c\"", "\"d\" is used twice"]),
        );
        check(
            r#"{"name":"t","processes":[{"name":"a","cmdline":"x","daemon":true},{"name":"b","cmdline":"x"},{"name":"f","cmdline":"x","final":true},{"name":"e","cmdline":"x","ephemeral":true}],
                "constraints":[{"order":["a","b"]},{"order":["b","f"]},{"order":["e","b"]}]}"#,
            Err(&[
                "daemon process \"a\"",
                "Final and non-final processes cannot be ordered together",
                "ephemeral process \"e\"",
            ]),
        );
        check(r#"{"name":"t","processes":[]}"#, Err(&["no processes"]));
    }

    #[test]
    fn cycles_name_their_processes() {
        let t: TaskSpec = serde_json::from_str(
            r#"{"name":"t","processes":[{"name":"a","cmdline":"x"},{"name":"b","cmdline":"x"}],
                "constraints":[{"order":["a","b","a"]}]}"#,
        )
        .unwrap();
        let e = t.dependencies().unwrap_err().to_string();
        assert!(e.contains("contain a cycle: a -> b -> a"), "{e}");
    }
}
