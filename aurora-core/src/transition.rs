//! The task state machine: one pure function that says where a task goes and what must
//! happen as a result. The scheduler applies the side effects; nothing here panics or does
//! I/O. The table follows the original scheduler (see ARCHITECTURE.md for the diagram).

use crate::ScheduleStatus;
use crate::ScheduleStatus::*;

/// Where a task is asked to go: a state, or out of the store altogether.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TaskTarget {
    /// A state.
    Status(ScheduleStatus),
    /// Removed from the store (the original's DELETED pseudo-state).
    Deleted,
}

impl std::fmt::Display for TaskTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TaskTarget::Status(s) => s.fmt(f),
            TaskTarget::Deleted => f.write_str("DELETED"),
        }
    }
}

/// The facts about a task the transition rules depend on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaskFacts {
    /// Whether the job is a service (always restarted).
    pub is_service: bool,
    /// The job's `max_task_failures`; -1 means unlimited.
    pub max_task_failures: i32,
    /// Failed runs so far, before this transition.
    pub failure_count: u32,
}

/// What the scheduler must do because of a transition, applied in field order.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct SideEffects {
    /// Add one to the task's failure count.
    pub increment_failures: bool,
    /// Record the new state and an event in the task's history.
    pub save_state: bool,
    /// Tell the task's executor to kill it.
    pub kill: bool,
    /// Create a replacement task (new id, same instance, same failure count, this as ancestor).
    pub reschedule: bool,
    /// Remove the task from the store.
    pub delete: bool,
}

impl SideEffects {
    const NONE: SideEffects = SideEffects {
        increment_failures: false,
        save_state: false,
        kill: false,
        reschedule: false,
        delete: false,
    };
    const SAVE: SideEffects = SideEffects {
        save_state: true,
        ..SideEffects::NONE
    };
}

/// The outcome of asking a task to move.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// The task moves; `to` is `None` when it is deleted.
    Changed {
        /// The new state, or `None` when removed.
        to: Option<ScheduleStatus>,
        /// What to do about it.
        effects: SideEffects,
    },
    /// The task stays where it is, but something may still need doing (killing a task that
    /// reports running although it should be dead).
    Unchanged {
        /// What to do about it.
        effects: SideEffects,
    },
    /// The move is not allowed; the scheduler logs and counts it and changes nothing.
    Illegal {
        /// The current state.
        from: ScheduleStatus,
        /// The requested target.
        to: TaskTarget,
    },
}

impl Transition {
    /// Whether the transition was allowed (changed or a no-op).
    pub fn is_legal(&self) -> bool {
        !matches!(self, Transition::Illegal { .. })
    }
}

fn changed(to: ScheduleStatus, effects: SideEffects) -> Transition {
    Transition::Changed {
        to: Some(to),
        effects: SideEffects {
            save_state: true,
            ..effects
        },
    }
}

fn deleted() -> Transition {
    Transition::Changed {
        to: None,
        effects: SideEffects {
            delete: true,
            ..SideEffects::NONE
        },
    }
}

fn zombie_kill() -> Transition {
    Transition::Unchanged {
        effects: SideEffects {
            kill: true,
            ..SideEffects::NONE
        },
    }
}

/// Whether a failed task is run again: services always, others while failed runs stay under
/// `max_task_failures` (so `N` allows `N` failed runs in total, `-1` unlimited, `0` acts as 1).
pub fn reschedules_after_failure(facts: &TaskFacts) -> bool {
    facts.is_service
        || facts.max_task_failures == -1
        || i64::from(facts.failure_count) < i64::from(facts.max_task_failures) - 1
}

/// Decides the move of a task from `from` towards `to`.
///
/// ```
/// use aurora_core::{ScheduleStatus, TaskFacts, TaskTarget, Transition, transition};
/// let facts = TaskFacts { is_service: true, max_task_failures: 1, failure_count: 0 };
/// let t = transition(ScheduleStatus::Running, TaskTarget::Status(ScheduleStatus::Finished), &facts);
/// let Transition::Changed { to, effects } = t else { panic!() };
/// assert_eq!(to, Some(ScheduleStatus::Finished));
/// assert!(effects.reschedule, "services run again when they finish");
/// ```
pub fn transition(from: ScheduleStatus, to: TaskTarget, facts: &TaskFacts) -> Transition {
    let illegal = Transition::Illegal { from, to };
    let target = match to {
        TaskTarget::Status(s) => s,
        TaskTarget::Deleted => {
            return if from.is_terminal() || from == Killing {
                deleted()
            } else {
                illegal
            };
        }
    };
    if target == from {
        return Transition::Unchanged {
            effects: SideEffects::NONE,
        };
    }
    let kill = SideEffects {
        kill: true,
        ..SideEffects::NONE
    };
    let reschedule = SideEffects {
        reschedule: true,
        ..SideEffects::NONE
    };
    match from {
        Init => match target {
            Pending | Throttled => changed(target, SideEffects::SAVE),
            _ => illegal,
        },
        Pending => match target {
            Assigned => changed(target, SideEffects::SAVE),
            // A task that never ran is simply removed when killed.
            Killing => deleted(),
            _ => illegal,
        },
        Throttled => match target {
            Pending => changed(target, SideEffects::SAVE),
            Killing => deleted(),
            _ => illegal,
        },
        Assigned | Starting | Running => {
            let allowed = match from {
                Assigned => true,
                Starting => target != Assigned,
                _ => !matches!(target, Assigned | Starting),
            };
            if !allowed || matches!(target, Init | Pending | Throttled) {
                return illegal;
            }
            match target {
                Finished => changed(
                    target,
                    SideEffects {
                        reschedule: facts.is_service,
                        ..SideEffects::NONE
                    },
                ),
                Failed => changed(
                    target,
                    SideEffects {
                        increment_failures: true,
                        reschedule: reschedules_after_failure(facts),
                        ..SideEffects::NONE
                    },
                ),
                Killed => changed(target, reschedule),
                Lost => changed(
                    target,
                    SideEffects {
                        reschedule: true,
                        kill: from == Assigned,
                        ..SideEffects::NONE
                    },
                ),
                Preempting | Restarting | Draining | Killing => changed(target, kill),
                Starting | Running => changed(target, SideEffects::SAVE),
                _ => illegal,
            }
        }
        Preempting | Restarting | Draining => match target {
            Assigned | Starting | Running => zombie_kill(),
            Finished | Failed | Killed => changed(target, reschedule),
            Lost => changed(
                target,
                SideEffects {
                    reschedule: true,
                    kill: true,
                    ..SideEffects::NONE
                },
            ),
            Killing => changed(target, SideEffects::SAVE),
            _ => illegal,
        },
        Killing => match target {
            Assigned | Starting | Running => zombie_kill(),
            Finished | Failed | Killed | Lost => changed(target, SideEffects::SAVE),
            _ => illegal,
        },
        Finished | Failed | Killed | Lost => match target {
            Assigned | Starting | Running => zombie_kill(),
            _ => illegal,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SERVICE: TaskFacts = TaskFacts {
        is_service: true,
        max_task_failures: 1,
        failure_count: 0,
    };
    const BATCH: TaskFacts = TaskFacts {
        is_service: false,
        max_task_failures: 1,
        failure_count: 0,
    };

    fn effects_of(t: Transition) -> String {
        let (prefix, e) = match t {
            Transition::Changed {
                to: Some(s),
                effects,
            } => (s.to_string(), effects),
            Transition::Changed { to: None, effects } => ("DELETED".to_owned(), effects),
            Transition::Unchanged { effects } => ("same".to_owned(), effects),
            Transition::Illegal { .. } => return "illegal".to_owned(),
        };
        let mut parts = vec![prefix];
        for (on, name) in [
            (e.increment_failures, "inc"),
            (e.save_state, "save"),
            (e.kill, "kill"),
            (e.reschedule, "resched"),
            (e.delete, "delete"),
        ] {
            if on {
                parts.push(name.to_owned());
            }
        }
        parts.join(" ")
    }

    fn check(from: ScheduleStatus, to: ScheduleStatus, facts: TaskFacts, expect: &str) {
        let got = effects_of(transition(from, TaskTarget::Status(to), &facts));
        assert_eq!(got, expect, "{from} -> {to} with {facts:?}");
    }

    #[test]
    fn the_table_of_legal_moves() {
        // Every (from, to) pair: which are legal state changes, as in the original.
        let legal: &[(ScheduleStatus, &[ScheduleStatus])] = &[
            (Init, &[Pending, Throttled]),
            (Pending, &[Assigned, Killing]),
            (Throttled, &[Pending, Killing]),
            (
                Assigned,
                &[
                    Starting, Running, Finished, Failed, Restarting, Draining, Killed, Killing,
                    Lost, Preempting,
                ],
            ),
            (
                Starting,
                &[
                    Running, Finished, Failed, Restarting, Draining, Killing, Killed, Lost,
                    Preempting,
                ],
            ),
            (
                Running,
                &[
                    Finished, Restarting, Draining, Failed, Killing, Killed, Lost, Preempting,
                ],
            ),
            (Preempting, &[Finished, Failed, Killing, Killed, Lost]),
            (Restarting, &[Finished, Failed, Killing, Killed, Lost]),
            (Draining, &[Finished, Failed, Killing, Killed, Lost]),
            (Killing, &[Finished, Failed, Killed, Lost]),
            (Finished, &[]),
            (Failed, &[]),
            (Killed, &[]),
            (Lost, &[]),
        ];
        for (from, tos) in legal {
            for to in ScheduleStatus::ALL {
                let t = transition(*from, TaskTarget::Status(to), &BATCH);
                let moves = matches!(t, Transition::Changed { .. });
                assert_eq!(moves, tos.contains(&to), "{from} -> {to}: {t:?}");
            }
        }
    }

    #[test]
    fn side_effects_follow_the_original() {
        check(Init, Pending, BATCH, "PENDING save");
        check(Pending, Assigned, BATCH, "ASSIGNED save");
        check(Pending, Killing, BATCH, "DELETED delete");
        check(Throttled, Killing, BATCH, "DELETED delete");
        check(Running, Finished, BATCH, "FINISHED save");
        check(Running, Finished, SERVICE, "FINISHED save resched");
        check(Running, Failed, BATCH, "FAILED inc save");
        check(Running, Failed, SERVICE, "FAILED inc save resched");
        check(Running, Killed, BATCH, "KILLED save resched");
        check(Running, Lost, BATCH, "LOST save resched");
        check(Assigned, Lost, BATCH, "LOST save kill resched");
        check(Running, Killing, BATCH, "KILLING save kill");
        check(Running, Preempting, BATCH, "PREEMPTING save kill");
        check(Starting, Restarting, BATCH, "RESTARTING save kill");
        check(Assigned, Draining, BATCH, "DRAINING save kill");
        check(Restarting, Killed, BATCH, "KILLED save resched");
        check(Draining, Failed, BATCH, "FAILED save resched");
        check(Preempting, Lost, BATCH, "LOST save kill resched");
        check(Preempting, Running, BATCH, "same kill");
        check(Killing, Killed, SERVICE, "KILLED save");
        check(Killing, Running, BATCH, "same kill");
        check(Killed, Running, BATCH, "same kill");
        check(Finished, Starting, BATCH, "same kill");
        check(Running, Running, BATCH, "same");
        check(Pending, Running, BATCH, "illegal");
        check(Finished, Pending, BATCH, "illegal");
    }

    #[test]
    fn failure_budget() {
        let failing = |max, count| TaskFacts {
            is_service: false,
            max_task_failures: max,
            failure_count: count,
        };
        check(Running, Failed, failing(3, 0), "FAILED inc save resched");
        check(Running, Failed, failing(3, 1), "FAILED inc save resched");
        check(Running, Failed, failing(3, 2), "FAILED inc save");
        check(Running, Failed, failing(0, 0), "FAILED inc save");
        check(
            Running,
            Failed,
            failing(-1, 1000),
            "FAILED inc save resched",
        );
    }

    #[test]
    fn deletion() {
        for from in ScheduleStatus::ALL {
            let t = transition(from, TaskTarget::Deleted, &BATCH);
            let ok = from.is_terminal() || from == Killing;
            assert_eq!(
                matches!(t, Transition::Changed { to: None, .. }),
                ok,
                "{from}: {t:?}"
            );
        }
    }

    fn any_status() -> impl Strategy<Value = ScheduleStatus> {
        proptest::sample::select(ScheduleStatus::ALL.to_vec())
    }

    /// A tiny model of the scheduler applying transitions to one instance, used to check
    /// invariants over random event sequences.
    #[derive(Debug)]
    struct Instance {
        tasks: Vec<(ScheduleStatus, u32)>,
    }

    proptest! {
        #[test]
        fn invariants_hold_over_random_events(
            events in proptest::collection::vec((0usize..4, any_status()), 1..60),
            is_service in any::<bool>(),
            max_task_failures in -1i32..4,
        ) {
            let mut inst = Instance { tasks: vec![(Pending, 0)] };
            for (pick, to) in events {
                let idx = pick % inst.tasks.len();
                let (from, failures) = inst.tasks[idx];
                let facts = TaskFacts { is_service, max_task_failures, failure_count: failures };
                match transition(from, TaskTarget::Status(to), &facts) {
                    Transition::Changed { to: new, effects } => {
                        prop_assert!(!from.is_terminal(), "terminal {from} moved to {new:?}");
                        let failures = failures + u32::from(effects.increment_failures);
                        match new {
                            Some(s) => {
                                prop_assert!(effects.save_state);
                                inst.tasks[idx] = (s, failures);
                                // A task that leaves the active set because of a transition
                                // either ends for good or is replaced.
                                if s.is_terminal() && effects.reschedule {
                                    inst.tasks.push((Pending, failures));
                                }
                                if effects.kill {
                                    prop_assert!(from.is_slave_assigned(), "kill of unassigned {from}");
                                }
                            }
                            None => {
                                prop_assert!(effects.delete && !effects.save_state);
                                prop_assert!(matches!(from, Pending | Throttled | Killing) || from.is_terminal());
                                inst.tasks.remove(idx);
                                if inst.tasks.is_empty() {
                                    inst.tasks.push((Pending, 0));
                                }
                            }
                        }
                    }
                    Transition::Unchanged { effects } => {
                        prop_assert!(!effects.save_state && !effects.reschedule);
                    }
                    Transition::Illegal { from: f, .. } => prop_assert_eq!(f, from),
                }
                // Every task is in exactly one known state and at most one per instance is active.
                let active = inst.tasks.iter().filter(|(s, _)| s.is_active()).count();
                prop_assert!(active <= 1, "{active} active tasks for one instance: {inst:?}");
            }
        }

        #[test]
        fn no_lost_service(events in proptest::collection::vec(any_status(), 1..40)) {
            // A service task that ends (other than through KILLING) is always replaced.
            let mut state = Running;
            for to in events {
                let facts = TaskFacts { is_service: true, max_task_failures: 1, failure_count: 0 };
                if let Transition::Changed { to: Some(s), effects } =
                    transition(state, TaskTarget::Status(to), &facts)
                {
                    if s.is_terminal() && state != Killing {
                        prop_assert!(effects.reschedule, "{state} -> {s} dropped a service");
                    }
                    state = s;
                }
            }
        }
    }
}
