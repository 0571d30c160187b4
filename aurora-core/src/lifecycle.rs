//! Timing rules of the task lifecycle, after the original's `RescheduleCalculator` and
//! `TaskTimeout`: when a rescheduled task is THROTTLED because its ancestors flapped, and when
//! a task stuck in a transient state is given up as LOST. Pure functions; time is an argument.

use crate::{ScheduleStatus, ScheduledTask};

/// Settings of throttling and timeouts, all in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LifecycleConfig {
    /// A run shorter than this (from its last active event to its end) flapped (original: 5 min).
    pub flapping_threshold_ms: i64,
    /// The penalty after one flapped ancestor (original: 30 s); it doubles per further one.
    pub initial_flapping_penalty_ms: i64,
    /// The largest penalty (original: 5 min).
    pub max_flapping_penalty_ms: i64,
    /// How long a task may stay in ASSIGNED, PREEMPTING, RESTARTING, KILLING or DRAINING
    /// before it is LOST (original: 5 min).
    pub transient_state_timeout_ms: i64,
}

impl Default for LifecycleConfig {
    fn default() -> LifecycleConfig {
        LifecycleConfig {
            flapping_threshold_ms: 5 * 60_000,
            initial_flapping_penalty_ms: 30_000,
            max_flapping_penalty_ms: 5 * 60_000,
            transient_state_timeout_ms: 5 * 60_000,
        }
    }
}

/// States that mean an outside actor interrupted the run; such runs never count as flapping.
/// The original lists RESTARTING, KILLING and DRAINING; PREEMPTING is added because a preempted
/// task did not fail on its own either.
fn interrupted(status: ScheduleStatus) -> bool {
    matches!(
        status,
        ScheduleStatus::Restarting
            | ScheduleStatus::Killing
            | ScheduleStatus::Draining
            | ScheduleStatus::Preempting
    )
}

/// Whether a terminated task flapped: its end came less than the threshold after its last
/// active event, and nobody interrupted it.
///
/// ```
/// use aurora_core::{flapped, LifecycleConfig};
/// # fn demo(task: &aurora_core::ScheduledTask) {
/// let _ = flapped(task, &LifecycleConfig::default());
/// # }
/// ```
pub fn flapped(task: &ScheduledTask, config: &LifecycleConfig) -> bool {
    let events = &task.task_events;
    if events.iter().any(|e| interrupted(e.status)) {
        return false;
    }
    let Some(end) = events.last().filter(|e| e.status.is_terminal()) else {
        return false;
    };
    let Some(active) = events.iter().rev().find(|e| e.status.is_active()) else {
        return false;
    };
    end.timestamp_ms.saturating_sub(active.timestamp_ms) < config.flapping_threshold_ms
}

/// The penalty for a task rescheduled after `ancestors` (the task it replaces first, then that
/// task's ancestor, and so on): zero unless the nearest ancestor flapped, else the initial
/// penalty doubled per further consecutive flapped ancestor, capped at the maximum.
///
/// ```
/// use aurora_core::{flapping_penalty_ms, LifecycleConfig};
/// assert_eq!(flapping_penalty_ms(std::iter::empty(), &LifecycleConfig::default()), 0);
/// ```
pub fn flapping_penalty_ms<'a>(
    ancestors: impl IntoIterator<Item = &'a ScheduledTask>,
    config: &LifecycleConfig,
) -> i64 {
    let mut penalty = 0i64;
    for task in ancestors {
        if !flapped(task, config) {
            break;
        }
        penalty = if penalty == 0 {
            config.initial_flapping_penalty_ms
        } else {
            penalty.saturating_mul(2)
        };
        if penalty >= config.max_flapping_penalty_ms {
            return config.max_flapping_penalty_ms;
        }
    }
    penalty
}

/// Whether a task has been in a transient state (ASSIGNED, PREEMPTING, RESTARTING, KILLING,
/// DRAINING) for longer than the timeout at `now_ms` and should become LOST. STARTING is never
/// timed out, as in the original.
pub fn transient_state_expired(
    task: &ScheduledTask,
    now_ms: i64,
    config: &LifecycleConfig,
) -> bool {
    is_transient(task.status)
        && task.task_events.last().is_some_and(|e| {
            now_ms.saturating_sub(e.timestamp_ms) > config.transient_state_timeout_ms
        })
}

/// The states [`transient_state_expired`] times out.
pub fn is_transient(status: ScheduleStatus) -> bool {
    matches!(
        status,
        ScheduleStatus::Assigned
            | ScheduleStatus::Preempting
            | ScheduleStatus::Restarting
            | ScheduleStatus::Killing
            | ScheduleStatus::Draining
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        AssignedTask, ExecutorConfig, Identity, JobKey, Resources, TaskConfig, TaskEvent, TaskId,
    };
    use ScheduleStatus::*;

    fn task(events: &[(i64, ScheduleStatus)]) -> ScheduledTask {
        let key: JobKey = "c/r/prod/j".parse().unwrap();
        ScheduledTask {
            assigned_task: AssignedTask {
                task_id: TaskId("t".into()),
                slave_host: None,
                instance_id: 0,
                task: TaskConfig {
                    job: key,
                    owner: Identity {
                        role: "r".into(),
                        user: "u".into(),
                    },
                    is_service: true,
                    max_task_failures: 1,
                    priority: 0,
                    production: false,
                    contact_email: None,
                    resources: Resources::default(),
                    constraints: Vec::new(),
                    task_links: Default::default(),
                    executor_config: ExecutorConfig {
                        name: "x".into(),
                        data: "{}".into(),
                    },
                }
                .into(),
                assigned_ports: Default::default(),
            },
            status: events.last().map_or(Pending, |e| e.1),
            failure_count: 0,
            ancestor_id: None,
            task_events: events
                .iter()
                .map(|(t, s)| TaskEvent {
                    timestamp_ms: *t,
                    status: *s,
                    message: None,
                    scheduler: None,
                })
                .collect(),
        }
    }

    const CFG: LifecycleConfig = LifecycleConfig {
        flapping_threshold_ms: 1_000,
        initial_flapping_penalty_ms: 100,
        max_flapping_penalty_ms: 500,
        transient_state_timeout_ms: 50,
    };

    #[test]
    fn flapping_needs_a_short_uninterrupted_run() {
        assert!(flapped(
            &task(&[(0, Pending), (10, Running), (500, Failed)]),
            &CFG
        ));
        assert!(!flapped(
            &task(&[(0, Pending), (10, Running), (2_000, Failed)]),
            &CFG
        ));
        assert!(!flapped(
            &task(&[(0, Running), (10, Restarting), (20, Killed)]),
            &CFG
        ));
        assert!(
            !flapped(&task(&[(0, Pending), (10, Running)]), &CFG),
            "not terminal"
        );
    }

    #[test]
    fn the_penalty_doubles_per_flapped_ancestor_up_to_the_maximum() {
        let quick = task(&[(0, Running), (10, Failed)]);
        let slow = task(&[(0, Running), (5_000, Failed)]);
        let penalty = |chain: &[&ScheduledTask]| flapping_penalty_ms(chain.iter().copied(), &CFG);
        assert_eq!(penalty(&[]), 0);
        assert_eq!(penalty(&[&slow, &quick]), 0);
        assert_eq!(penalty(&[&quick]), 100);
        assert_eq!(penalty(&[&quick, &quick]), 200);
        assert_eq!(penalty(&[&quick, &quick, &quick, &slow, &quick]), 400);
        assert_eq!(penalty(&[&quick; 6]), 500);
    }

    #[test]
    fn transient_states_time_out_but_starting_does_not() {
        assert!(transient_state_expired(&task(&[(0, Assigned)]), 100, &CFG));
        assert!(!transient_state_expired(&task(&[(0, Assigned)]), 40, &CFG));
        assert!(transient_state_expired(
            &task(&[(0, Running), (10, Killing)]),
            100,
            &CFG
        ));
        assert!(!transient_state_expired(
            &task(&[(0, Starting)]),
            1_000,
            &CFG
        ));
        assert!(!transient_state_expired(
            &task(&[(0, Running)]),
            1_000,
            &CFG
        ));
    }
}
