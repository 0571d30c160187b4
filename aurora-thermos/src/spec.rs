//! The Thermos task as the runner receives it (the `task` object of an Aurora job's JSON), and
//! its validation into a process dependency graph before anything runs.

use std::collections::{BTreeMap, BTreeSet};

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
        let mut index: BTreeMap<&str, usize> = BTreeMap::new();
        for (i, p) in self.processes.iter().enumerate() {
            if let Some(why) = invalid_name(&p.name) {
                problems.push(format!("process name {:?} is invalid: {why}", p.name));
            }
            if index.insert(p.name.as_str(), i).is_some() {
                problems.push(format!("process name {:?} is used twice", p.name));
            }
        }
        let mut deps: Vec<BTreeSet<usize>> = vec![BTreeSet::new(); self.processes.len()];
        for c in &self.constraints {
            let mut prev: Option<usize> = None;
            for name in &c.order {
                let Some(&i) = index.get(name.as_str()) else {
                    problems.push(format!(
                        "order constraint {:?} names {name:?}, which is not a process of the task",
                        c.order
                    ));
                    prev = None;
                    continue;
                };
                if let Some(j) = prev {
                    let (before, after) = (&self.processes[j], &self.processes[i]);
                    if before.is_final != after.is_final {
                        problems.push(format!(
                            "order constraint {:?} mixes final and regular processes ({:?} and {:?})",
                            c.order, before.name, after.name
                        ));
                    } else if before.daemon {
                        problems.push(format!(
                            "process {:?} may not depend on daemon process {:?}",
                            after.name, before.name
                        ));
                    } else if before.ephemeral && !after.ephemeral {
                        problems.push(format!(
                            "process {:?} may not depend on ephemeral process {:?}",
                            after.name, before.name
                        ));
                    } else if i == j {
                        problems.push(format!("process {:?} depends on itself", after.name));
                    } else {
                        deps[i].insert(j);
                    }
                }
                prev = Some(i);
            }
        }
        if let Some(cycle) = find_cycle(&deps) {
            let names: Vec<&str> = cycle
                .iter()
                .map(|&i| self.processes[i].name.as_str())
                .collect();
            problems.push(format!(
                "the order constraints form a cycle: {}",
                names.join(" -> ")
            ));
        }
        if problems.is_empty() {
            Ok(deps.into_iter().map(|d| d.into_iter().collect()).collect())
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

/// Returns the processes of one dependency cycle, first one repeated at the end.
fn find_cycle(deps: &[BTreeSet<usize>]) -> Option<Vec<usize>> {
    // 0 = unvisited, 1 = on the current path, 2 = done.
    let mut mark = vec![0u8; deps.len()];
    let mut path = Vec::new();
    fn visit(
        n: usize,
        deps: &[BTreeSet<usize>],
        mark: &mut [u8],
        path: &mut Vec<usize>,
    ) -> Option<Vec<usize>> {
        mark[n] = 1;
        path.push(n);
        for &d in &deps[n] {
            if mark[d] == 1 {
                let start = path.iter().position(|&p| p == d).unwrap_or(0);
                let mut cycle: Vec<usize> = path[start..].iter().rev().copied().collect();
                cycle.push(cycle[0]);
                return Some(cycle);
            }
            if mark[d] == 0
                && let Some(c) = visit(d, deps, mark, path)
            {
                return Some(c);
            }
        }
        path.pop();
        mark[n] = 2;
        None
    }
    for n in 0..deps.len() {
        if mark[n] == 0
            && let Some(c) = visit(n, deps, &mut mark, &mut path)
        {
            return Some(c);
        }
    }
    None
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
            Err(&["\"z\"", "not a process"]),
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
                "mixes final",
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
        assert!(
            e.contains("cycle: a -> b -> a") || e.contains("cycle: b -> a -> b"),
            "{e}"
        );
    }
}
