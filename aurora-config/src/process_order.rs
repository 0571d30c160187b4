//! The ordering rule of a Thermos task's processes, shared by config validation (`aurora`) and
//! the runner (`aurora-thermos`), so that a task the client accepts is one the runner can order.
//!
//! An order constraint lists processes that run one after another. A constraint may not name a
//! process the task lacks, mix final and regular processes, put anything after a daemon (it
//! never finishes) or a regular process after an ephemeral one (it may never finish), and the
//! constraints together may not form a cycle.

use std::collections::HashMap;

/// What the rule needs to know of one process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcessFacts<'a> {
    /// Its name.
    pub name: &'a str,
    /// Whether it runs again after it succeeds.
    pub daemon: bool,
    /// Whether the task may end without it ending.
    pub ephemeral: bool,
    /// Whether it runs in the finalization phase.
    pub is_final: bool,
}

/// One broken rule, with the constraint (by index) it was found in.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind}")]
#[non_exhaustive]
pub struct OrderProblem {
    /// The index of the constraint at fault; `None` for a cycle, which takes several.
    pub constraint: Option<usize>,
    /// What is wrong.
    pub kind: OrderProblemKind,
}

/// What is wrong with the order constraints.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OrderProblemKind {
    /// A constraint names a process the task does not have.
    #[error(
        "Unknown process {name:?} in order constraint {order:?}: it is not a process of the task"
    )]
    UnknownProcess {
        /// The name.
        name: String,
        /// The constraint.
        order: Vec<String>,
    },
    /// A constraint orders final and regular processes together.
    #[error(
        "Invalid process dependencies! Final and non-final processes cannot be ordered together: {order:?} puts {first:?} and {second:?} in one order; order final processes only among themselves"
    )]
    MixesFinal {
        /// The constraint.
        order: Vec<String>,
        /// The first process of the first mixed pair.
        first: String,
        /// The second one.
        second: String,
    },
    /// A process follows a daemon, which never finishes.
    #[error(
        "Process {process:?} depends on daemon process {daemon:?}, which never finishes, so it would never run"
    )]
    AfterDaemon {
        /// The process that would wait.
        process: String,
        /// The daemon.
        daemon: String,
    },
    /// A regular process follows an ephemeral one, which need not finish.
    #[error(
        "Non-ephemeral process {process:?} depends on ephemeral process {ephemeral:?}, which need not finish; make {process:?} ephemeral too or drop the order"
    )]
    AfterEphemeral {
        /// The process that would wait.
        process: String,
        /// The ephemeral process.
        ephemeral: String,
    },
    /// The constraints form a cycle; the names go round it, the first repeated at the end.
    #[error("Process dependencies contain a cycle: {}", .0.join(" -> "))]
    Cycle(Vec<String>),
}

/// Checks the order `constraints` (lists of process names) of a task's `processes` and returns,
/// for each process (by index), the indices of the processes it waits for. Every broken rule is
/// reported, each with its constraint.
///
/// ```
/// use aurora_config::process_order::{ProcessFacts, process_dependencies};
/// let p = |name| ProcessFacts { name, daemon: false, ephemeral: false, is_final: false };
/// let order = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<Vec<_>>();
/// let procs = [p("fetch"), p("build"), p("test")];
/// let deps = process_dependencies(&procs, &[order(&["fetch", "build", "test"])]).unwrap();
/// assert_eq!(deps, vec![vec![], vec![0], vec![1]]);
/// let err = process_dependencies(&procs, &[order(&["build", "fetch", "build"])]).unwrap_err();
/// assert_eq!(err[0].to_string(), "Process dependencies contain a cycle: fetch -> build -> fetch");
/// ```
pub fn process_dependencies(
    processes: &[ProcessFacts<'_>],
    constraints: &[Vec<String>],
) -> Result<Vec<Vec<usize>>, Vec<OrderProblem>> {
    let index: HashMap<&str, usize> = processes
        .iter()
        .enumerate()
        .map(|(i, p)| (p.name, i))
        .collect();
    let mut problems = Vec::new();
    let mut deps: Vec<Vec<usize>> = vec![Vec::new(); processes.len()];
    for (ci, order) in constraints.iter().enumerate() {
        let mut problem = |kind| {
            problems.push(OrderProblem {
                constraint: Some(ci),
                kind,
            })
        };
        let mut ids = Vec::with_capacity(order.len());
        for name in order {
            match index.get(name.as_str()) {
                Some(&i) => ids.push(i),
                None => problem(OrderProblemKind::UnknownProcess {
                    name: name.clone(),
                    order: order.clone(),
                }),
            }
        }
        if let Some(w) = ids
            .windows(2)
            .find(|w| processes[w[0]].is_final != processes[w[1]].is_final)
        {
            problem(OrderProblemKind::MixesFinal {
                order: order.clone(),
                first: processes[w[0]].name.to_owned(),
                second: processes[w[1]].name.to_owned(),
            });
        }
        for w in ids.windows(2) {
            let (before, after) = (&processes[w[0]], &processes[w[1]]);
            if before.daemon {
                problem(OrderProblemKind::AfterDaemon {
                    process: after.name.to_owned(),
                    daemon: before.name.to_owned(),
                });
            }
            if before.ephemeral && !after.ephemeral {
                problem(OrderProblemKind::AfterEphemeral {
                    process: after.name.to_owned(),
                    ephemeral: before.name.to_owned(),
                });
            }
            if !deps[w[1]].contains(&w[0]) {
                deps[w[1]].push(w[0]);
            }
        }
    }
    if let Some(cycle) = find_cycle(&deps) {
        problems.push(OrderProblem {
            constraint: None,
            kind: OrderProblemKind::Cycle(
                cycle
                    .iter()
                    .map(|&i| processes[i].name.to_owned())
                    .collect(),
            ),
        });
    }
    if problems.is_empty() {
        for d in &mut deps {
            d.sort_unstable();
        }
        Ok(deps)
    } else {
        Err(problems)
    }
}

/// One cycle of the graph (each node waits for its `deps`), in the order the processes would
/// run, the first repeated at the end.
fn find_cycle(deps: &[Vec<usize>]) -> Option<Vec<usize>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        OnPath,
        Done,
    }
    fn visit(
        n: usize,
        deps: &[Vec<usize>],
        mark: &mut [Mark],
        path: &mut Vec<usize>,
    ) -> Option<Vec<usize>> {
        mark[n] = Mark::OnPath;
        path.push(n);
        for &d in &deps[n] {
            match mark[d] {
                Mark::OnPath => {
                    // The path runs from waiters to what they wait for: reversed, it is the
                    // order in which the processes would run.
                    let start = path.iter().position(|&p| p == d).unwrap_or(0);
                    let mut cycle: Vec<usize> = path[start..].iter().rev().copied().collect();
                    // Started at its first process, so that the message does not depend on
                    // where the search entered the cycle.
                    let first = (0..cycle.len()).min_by_key(|&i| cycle[i]).unwrap_or(0);
                    cycle.rotate_left(first);
                    cycle.push(cycle[0]);
                    return Some(cycle);
                }
                Mark::New => {
                    if let Some(c) = visit(d, deps, mark, path) {
                        return Some(c);
                    }
                }
                Mark::Done => {}
            }
        }
        path.pop();
        mark[n] = Mark::Done;
        None
    }
    let mut mark = vec![Mark::New; deps.len()];
    (0..deps.len()).find_map(|n| {
        (mark[n] == Mark::New)
            .then(|| visit(n, deps, &mut mark, &mut Vec::new()))
            .flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Processes are `name` with suffixes: `*` daemon, `~` ephemeral, `!` final.
    fn check(processes: &[&str], constraints: &[&[&str]], expect: Result<&[&[usize]], &[&str]>) {
        let facts: Vec<ProcessFacts<'_>> = processes
            .iter()
            .map(|p| ProcessFacts {
                name: p.trim_end_matches(['*', '~', '!']),
                daemon: p.contains('*'),
                ephemeral: p.contains('~'),
                is_final: p.contains('!'),
            })
            .collect();
        let constraints: Vec<Vec<String>> = constraints
            .iter()
            .map(|c| c.iter().map(|s| s.to_string()).collect())
            .collect();
        let got = process_dependencies(&facts, &constraints);
        match (got, expect) {
            (Ok(deps), Ok(want)) => assert_eq!(deps, want),
            (Err(problems), Err(want)) => {
                let text: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
                assert_eq!(text, want);
            }
            (got, want) => panic!("{got:?} instead of {want:?}"),
        }
    }

    #[test]
    fn orders_become_dependencies() {
        check(&["a", "b", "c"], &[], Ok(&[&[], &[], &[]]));
        check(
            &["a", "b", "c"],
            &[&["a", "b"], &["a", "c"], &["b", "c"], &["a", "b"]],
            Ok(&[&[], &[0], &[0, 1]]),
        );
        check(
            &["a~", "b~", "f!", "g!"],
            &[&["a", "b"], &["f", "g"]],
            Ok(&[&[], &[0], &[], &[2]]),
        );
    }

    #[test]
    fn every_broken_rule_is_reported() {
        check(
            &["a*", "b", "e~", "f!"],
            &[&["a", "b"], &["e", "b"], &["b", "f"], &["b", "z"]],
            Err(&[
                "Process \"b\" depends on daemon process \"a\", which never finishes, so it would never run",
                "Non-ephemeral process \"b\" depends on ephemeral process \"e\", which need not finish; make \"b\" ephemeral too or drop the order",
                "Invalid process dependencies! Final and non-final processes cannot be ordered together: [\"b\", \"f\"] puts \"b\" and \"f\" in one order; order final processes only among themselves",
                "Unknown process \"z\" in order constraint [\"b\", \"z\"]: it is not a process of the task",
            ]),
        );
    }

    #[test]
    fn cycles_are_named_in_running_order() {
        check(
            &["a", "b", "c"],
            &[&["a", "b", "c"], &["c", "a"]],
            Err(&["Process dependencies contain a cycle: a -> b -> c -> a"]),
        );
        check(
            &["a", "b"],
            &[&["a", "a"]],
            Err(&["Process dependencies contain a cycle: a -> a"]),
        );
    }
}
