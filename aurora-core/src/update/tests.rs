//! Unit tests: each feature is a scripted exchange checked by `check`, or a run against the
//! small deterministic cluster of `drive`.

use std::collections::{BTreeMap, BTreeSet};

use super::*;
use InstanceEvent::{HealthFailed, HealthPassed, Running, Terminal};
use UpdateStatus::{
    Aborted, Failed, RollBackPaused, RollForwardPaused, RolledBack, RolledForward, RollingBack,
    RollingForward,
};

fn key(name: &str) -> ConfigKey {
    ConfigKey::from_stored(name.to_owned())
}

fn job(configs: &[&str]) -> BTreeMap<u32, ConfigKey> {
    (0u32..).zip(configs.iter().map(|c| key(c))).collect()
}

fn update(current: &[&str], new: &str, count: u32, settings: UpdateSettings) -> UpdateRequest {
    UpdateRequest {
        current: job(current),
        target: UpdateTarget::Config {
            config: key(new),
            instance_count: count,
        },
        settings,
        only: None,
        health_checks: None,
        dedicated: false,
    }
}

fn restart(current: &[&str], settings: UpdateSettings) -> UpdateRequest {
    UpdateRequest {
        target: UpdateTarget::Restart,
        ..update(current, "unused", 0, settings)
    }
}

fn settings(batch_size: u32, watch_secs: u32) -> UpdateSettings {
    UpdateSettings {
        batch_size,
        watch_secs,
        ..UpdateSettings::default()
    }
}

fn kill(instance: u32) -> UpdateAction {
    UpdateAction::Kill { instance }
}

fn add(instance: u32, config: &str) -> UpdateAction {
    UpdateAction::Add {
        instance,
        config: key(config),
    }
}

fn ev(instance: u32, event: InstanceEvent) -> UpdateInput {
    UpdateInput::Event { instance, event }
}

const TICK: UpdateInput = UpdateInput::Tick;

type Line = (i64, UpdateInput, Vec<UpdateAction>, UpdateStatus);

/// Starts `request` at time 0 expecting `start`, then feeds each line's input at its time and
/// expects its actions and status. The plan goes through JSON between lines, as the scheduler
/// stores it, so every step also proves the plan survives a restart.
fn check(request: UpdateRequest, start: Vec<UpdateAction>, script: Vec<Line>) -> UpdatePlan {
    let (mut plan, step) = UpdatePlan::start(request, 0).expect("valid request");
    assert_eq!(step.actions, start, "actions at start");
    for (n, (at, input, actions, status)) in script.into_iter().enumerate() {
        let stored = serde_json::to_string(&plan).expect("plan serializes");
        plan = serde_json::from_str(&stored).expect("plan deserializes");
        let step = plan.handle(input, at).expect("input accepted");
        assert_eq!(
            step.actions, actions,
            "actions of line {n} ({input:?} at {at})"
        );
        assert_eq!(
            step.status, status,
            "status of line {n} ({input:?} at {at})"
        );
    }
    plan
}

/// How a launched task behaves in `drive`'s cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    /// RUNNING 2 s after launch (and passing health checks 1 s later), for good.
    Healthy,
    /// RUNNING 20 s after launch.
    Slow,
    /// RUNNING 2 s after launch, dead 2 s later.
    Dies,
    /// RUNNING 2 s after launch, failing health checks 2 s later.
    Unhealthy,
    /// Never RUNNING.
    Stuck,
}

/// Runs `request` to its end against a cluster that answers kills after 1 s and runs each
/// launched task as `fate(instance, config)` says. Returns every action with its time, and the
/// plan.
fn drive(
    request: UpdateRequest,
    fate: impl Fn(u32, &str) -> Fate,
) -> (Vec<(i64, UpdateAction)>, UpdatePlan) {
    // Pending events by (time, sequence); each carries the task generation it belongs to, so
    // events of a task killed since are dropped, as the scheduler reports only current tasks.
    let mut pending: BTreeMap<(i64, u64), (u32, u64, InstanceEvent)> = BTreeMap::new();
    let mut generation: BTreeMap<u32, u64> = BTreeMap::new();
    let mut seq = 0u64;
    let mut trace = Vec::new();
    let (mut plan, mut step) = UpdatePlan::start(request, 0).expect("valid request");
    let mut now = 0;
    for _ in 0..10_000 {
        for action in &step.actions {
            trace.push((now, action.clone()));
            let (instance, events) = match action {
                UpdateAction::Kill { instance } => (*instance, vec![(1_000, Terminal)]),
                UpdateAction::Add { instance, config } => {
                    let events = match fate(*instance, config.as_str()) {
                        Fate::Healthy => vec![(2_000, Running), (3_000, HealthPassed)],
                        Fate::Slow => vec![(20_000, Running), (20_000, HealthPassed)],
                        Fate::Dies => vec![(2_000, Running), (4_000, Terminal)],
                        Fate::Unhealthy => vec![(2_000, Running), (4_000, HealthFailed)],
                        Fate::Stuck => vec![],
                    };
                    (*instance, events)
                }
            };
            let g = generation.entry(instance).or_default();
            *g += 1;
            for (delay, event) in events {
                seq += 1;
                pending.insert((now + delay, seq), (instance, *g, event));
            }
        }
        if !step.status.is_active() {
            return (trace, plan);
        }
        let next_event = pending.keys().next().map(|(t, _)| *t);
        let take_event = match (next_event, step.wake_at_ms) {
            (Some(t), Some(w)) => t <= w,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => panic!("the update is stuck at {now}: {plan:?}"),
        };
        let input = if take_event {
            let ((t, _), (instance, g, event)) = pending.pop_first().expect("an event");
            now = t;
            if generation.get(&instance) != Some(&g) {
                step.actions.clear();
                continue;
            }
            ev(instance, event)
        } else {
            now = step.wake_at_ms.unwrap_or(now);
            TICK
        };
        step = plan.handle(input, now).expect("input accepted");
    }
    panic!("the update did not end: {plan:?}");
}

/// The instances of each group of kills (and adds of new instances) started at the same time.
fn batches(trace: &[(i64, UpdateAction)], rolling_back_from: i64) -> Vec<Vec<u32>> {
    let mut groups: Vec<(i64, Vec<u32>)> = Vec::new();
    for (at, action) in trace {
        let id = match action {
            UpdateAction::Kill { instance } => *instance,
            UpdateAction::Add { .. } => continue,
        };
        if *at < rolling_back_from {
            continue;
        }
        match groups.last_mut() {
            Some((t, ids)) if t == at => ids.push(id),
            _ => groups.push((*at, vec![id])),
        }
    }
    groups.into_iter().map(|(_, ids)| ids).collect()
}

fn actions(trace: &[(i64, UpdateAction)]) -> Vec<UpdateAction> {
    trace.iter().map(|(_, a)| a.clone()).collect()
}

#[test]
fn only_changed_instances_are_replaced() {
    let plan = check(
        update(&["a", "b", "a", "b"], "b", 4, settings(1, 45)),
        vec![kill(0)],
        vec![
            (1_000, ev(0, Terminal), vec![add(0, "b")], RollingForward),
            (2_000, ev(0, Running), vec![], RollingForward),
            (47_000, TICK, vec![kill(2)], RollingForward),
            (48_000, ev(2, Terminal), vec![add(2, "b")], RollingForward),
            (49_000, ev(2, Running), vec![], RollingForward),
            (94_000, TICK, vec![], RolledForward),
        ],
    );
    assert_eq!(plan.queued().count(), 0);
    let touched: Vec<u32> = plan.new_configs().keys().copied().collect();
    assert_eq!(touched, vec![0, 2]);
}

#[test]
fn growing_adds_only_the_new_instances() {
    let (trace, plan) = drive(update(&["a"; 4], "a", 6, settings(1, 10)), |_, _| {
        Fate::Healthy
    });
    assert_eq!(actions(&trace), vec![add(4, "a"), add(5, "a")]);
    assert_eq!(plan.status(), RolledForward);
}

#[test]
fn shrinking_kills_only_the_instances_beyond_the_count() {
    let (trace, plan) = drive(update(&["a"; 4], "a", 2, settings(1, 10)), |_, _| {
        Fate::Healthy
    });
    assert_eq!(actions(&trace), vec![kill(2), kill(3)]);
    assert_eq!(plan.status(), RolledForward);
    assert_eq!(plan.new_configs().get(&3), Some(&None));
}

#[test]
fn shards_zero_is_a_canary() {
    let request = UpdateRequest {
        only: Some("0".parse().expect("an instance set")),
        ..update(&["a"; 4], "b", 4, settings(1, 10))
    };
    let (trace, plan) = drive(request, |_, _| Fate::Healthy);
    assert_eq!(actions(&trace), vec![kill(0), add(0, "b")]);
    assert_eq!(plan.status(), RolledForward);
    assert_eq!(plan.new_configs().len(), 1);
}

#[test]
fn the_queue_and_the_slots_show_progress() {
    let (plan, _) =
        UpdatePlan::start(update(&["a"; 5], "b", 5, settings(2, 10)), 0).expect("valid");
    assert_eq!(plan.in_flight().collect::<Vec<_>>(), vec![0, 1]);
    assert_eq!(plan.queued().collect::<Vec<_>>(), vec![2, 3, 4]);
}

#[test]
fn batches_of_batch_size() {
    let request = UpdateRequest {
        settings: UpdateSettings {
            wait_for_batch_completion: true,
            ..settings(2, 10)
        },
        ..update(&["a"; 5], "b", 5, UpdateSettings::default())
    };
    let (trace, _) = drive(request, |_, _| Fate::Healthy);
    assert_eq!(batches(&trace, 0), vec![vec![0, 1], vec![2, 3], vec![4]]);
}

#[test]
fn wait_for_batch_completion_holds_the_next_batch_for_the_slowest() {
    // Instance 1 is slow: with waiting, 2 starts after it; without, as soon as 0 is done.
    let run = |wait| {
        let request = UpdateRequest {
            settings: UpdateSettings {
                wait_for_batch_completion: wait,
                ..settings(2, 10)
            },
            ..update(&["a"; 4], "b", 4, UpdateSettings::default())
        };
        let (trace, plan) = drive(
            request,
            |id, _| {
                if id == 1 { Fate::Slow } else { Fate::Healthy }
            },
        );
        assert_eq!(plan.status(), RolledForward);
        batches(&trace, 0)
    };
    assert_eq!(run(true), vec![vec![0, 1], vec![2, 3]]);
    assert_eq!(run(false), vec![vec![0, 1], vec![2], vec![3]]);
}

#[test]
fn not_running_within_restart_threshold_fails_the_instance() {
    let request = UpdateRequest {
        settings: UpdateSettings {
            restart_threshold: 30,
            rollback_on_failure: false,
            ..settings(1, 10)
        },
        ..update(&["a", "a"], "b", 2, UpdateSettings::default())
    };
    let plan = check(
        request,
        vec![kill(0)],
        vec![
            (1_000, ev(0, Terminal), vec![add(0, "b")], RollingForward),
            (30_999, TICK, vec![], RollingForward),
            (31_000, TICK, vec![], Failed),
        ],
    );
    assert_eq!(plan.outcomes().get(&0), Some(&InstanceOutcome::Failed));
}

#[test]
fn an_instance_succeeds_after_watch_secs_running() {
    check(
        update(&["a"], "b", 1, settings(1, 45)),
        vec![kill(0)],
        vec![
            (1_000, ev(0, Terminal), vec![add(0, "b")], RollingForward),
            (2_000, ev(0, Running), vec![], RollingForward),
            (46_999, TICK, vec![], RollingForward),
            (47_000, TICK, vec![], RolledForward),
        ],
    );
}

#[test]
fn with_health_checks_the_watch_starts_at_the_first_passing_check() {
    let health = HealthCheckTiming {
        initial_interval_secs: 15.0,
        interval_secs: 10.0,
        max_consecutive_failures: 0,
    };
    let request = UpdateRequest {
        health_checks: Some(health),
        ..update(&["a"], "b", 1, settings(1, 45))
    };
    check(
        request,
        vec![kill(0)],
        vec![
            (1_000, ev(0, Terminal), vec![add(0, "b")], RollingForward),
            (2_000, ev(0, Running), vec![], RollingForward),
            (47_000, TICK, vec![], RollingForward),
            (50_000, ev(0, HealthPassed), vec![], RollingForward),
            (95_000, TICK, vec![], RolledForward),
        ],
    );
}

#[test]
fn a_failing_health_check_fails_the_attempt() {
    let request = UpdateRequest {
        settings: UpdateSettings {
            max_per_shard_failures: 1,
            ..settings(1, 45)
        },
        ..update(&["a", "a"], "b", 2, UpdateSettings::default())
    };
    check(
        request,
        vec![kill(0)],
        vec![
            (1_000, ev(0, Terminal), vec![add(0, "b")], RollingForward),
            (2_000, ev(0, Running), vec![], RollingForward),
            // The first failure is retried: kill and add again.
            (3_000, ev(0, HealthFailed), vec![kill(0)], RollingForward),
            (4_000, ev(0, Terminal), vec![add(0, "b")], RollingForward),
            // The second is one too many: the update fails and rolls instance 0 back.
            (5_000, ev(0, Terminal), vec![kill(0)], RollingBack),
            (6_000, ev(0, Terminal), vec![add(0, "a")], RollingBack),
            (7_000, ev(0, Running), vec![], RollingBack),
            (52_000, TICK, vec![], RolledBack),
        ],
    );
}

#[test]
fn per_shard_retries_then_total_failure() {
    let request = UpdateRequest {
        settings: UpdateSettings {
            max_per_shard_failures: 2,
            max_total_failures: 1,
            rollback_on_failure: false,
            ..settings(1, 10)
        },
        ..update(&["a"; 4], "b", 4, UpdateSettings::default())
    };
    let (trace, plan) = drive(request, |id, _| {
        if id == 1 || id == 2 {
            Fate::Dies
        } else {
            Fate::Healthy
        }
    });
    let adds_of = |id| {
        trace
            .iter()
            .filter(|(_, a)| matches!(a, UpdateAction::Add { instance, .. } if *instance == id))
            .count()
    };
    // One launch and two restarts each; the second failed instance is one too many.
    assert_eq!((adds_of(1), adds_of(2), adds_of(3)), (3, 3, 0));
    assert_eq!(plan.status(), Failed);
    assert_eq!(plan.failed_instances(), 2);
    let outcomes: Vec<_> = plan.outcomes().iter().map(|(i, o)| (*i, *o)).collect();
    use InstanceOutcome::{Failed as F, Updated as U};
    assert_eq!(outcomes, vec![(0, U), (1, F), (2, F)]);
}

#[test]
fn one_failure_within_max_total_failures_still_rolls_forward() {
    let request = UpdateRequest {
        settings: UpdateSettings {
            max_total_failures: 1,
            ..settings(1, 10)
        },
        ..update(&["a"; 3], "b", 3, UpdateSettings::default())
    };
    let (_, plan) = drive(
        request,
        |id, _| {
            if id == 1 { Fate::Stuck } else { Fate::Healthy }
        },
    );
    assert_eq!(plan.status(), RolledForward);
    assert_eq!(plan.outcomes().get(&1), Some(&InstanceOutcome::Failed));
}

#[test]
fn rollback_goes_in_reverse_order_restoring_old_configs() {
    for wait in [true, false] {
        let request = UpdateRequest {
            settings: UpdateSettings {
                wait_for_batch_completion: wait,
                ..settings(3, 10)
            },
            ..update(&["a"; 9], "b", 9, UpdateSettings::default())
        };
        let (trace, plan) = drive(request, |id, config| {
            if id == 8 && config == "b" {
                Fate::Dies
            } else {
                Fate::Healthy
            }
        });
        assert_eq!(plan.status(), RolledBack);
        let rollback_start = trace
            .iter()
            .filter(|(_, a)| *a == kill(8))
            .map(|(t, _)| *t)
            .nth(1)
            .expect("instance 8 is killed again by the rollback");
        assert_eq!(
            batches(&trace, rollback_start),
            vec![vec![8, 7, 6], vec![5, 4, 3], vec![2, 1, 0]],
            "wait_for_batch_completion {wait}"
        );
        let restored: BTreeSet<_> = trace
            .iter()
            .filter(|(t, _)| *t >= rollback_start)
            .filter_map(|(_, a)| match a {
                UpdateAction::Add { instance, config } => Some((*instance, config.clone())),
                UpdateAction::Kill { .. } => None,
            })
            .collect();
        assert_eq!(restored, (0..9).map(|i| (i, key("a"))).collect());
    }
}

#[test]
fn rollback_kills_added_instances_and_re_adds_removed_ones() {
    // 3 → 2 instances on a new config that dies: instance 2 was removed and comes back.
    let (trace, plan) = drive(update(&["a"; 3], "b", 2, settings(3, 10)), |_, c| {
        if c == "b" { Fate::Dies } else { Fate::Healthy }
    });
    assert_eq!(plan.status(), RolledBack);
    assert!(trace.iter().any(|(_, a)| *a == add(2, "a")));
    // 1 → 2 instances: the added instance 1 is killed by the rollback, never re-added.
    let (trace, plan) = drive(update(&["a"], "b", 2, settings(2, 10)), |_, c| {
        if c == "b" { Fate::Dies } else { Fate::Healthy }
    });
    assert_eq!(plan.status(), RolledBack);
    let last_of_1 = trace.iter().rev().find(|(_, a)| match a {
        UpdateAction::Kill { instance } | UpdateAction::Add { instance, .. } => *instance == 1,
    });
    assert_eq!(last_of_1.map(|(_, a)| a.clone()), Some(kill(1)));
}

#[test]
fn pause_holds_everything_resume_carries_on_abort_leaves_instances() {
    check(
        update(&["a", "a"], "b", 2, settings(1, 10)),
        vec![kill(0)],
        vec![
            (500, UpdateInput::Pause, vec![], RollForwardPaused),
            // Events are recorded while paused, but nothing is launched.
            (1_000, ev(0, Terminal), vec![], RollForwardPaused),
            (50_000, TICK, vec![], RollForwardPaused),
            (
                50_000,
                UpdateInput::Resume,
                vec![add(0, "b")],
                RollingForward,
            ),
            (51_000, ev(0, Running), vec![], RollingForward),
            (61_000, TICK, vec![kill(1)], RollingForward),
            (61_500, UpdateInput::Abort, vec![], Aborted),
            (62_000, ev(1, Terminal), vec![], Aborted),
        ],
    );
}

#[test]
fn a_rollback_can_be_paused_too() {
    let request = update(&["a"], "b", 1, settings(1, 10));
    check(
        request,
        vec![kill(0)],
        vec![
            (1_000, ev(0, Terminal), vec![add(0, "b")], RollingForward),
            (2_000, ev(0, Terminal), vec![kill(0)], RollingBack),
            (2_500, UpdateInput::Pause, vec![], RollBackPaused),
            (3_000, ev(0, Terminal), vec![], RollBackPaused),
            (4_000, UpdateInput::Resume, vec![add(0, "a")], RollingBack),
        ],
    );
}

#[test]
fn controls_after_the_end_are_refused() {
    let (mut plan, step) =
        UpdatePlan::start(update(&["a"], "a", 1, settings(1, 10)), 0).expect("valid");
    // Nothing changed: the update is over at once.
    assert_eq!((step.actions, step.status), (vec![], RolledForward));
    for (input, control) in [
        (UpdateInput::Pause, "pause"),
        (UpdateInput::Resume, "resume"),
        (UpdateInput::Abort, "abort"),
    ] {
        assert_eq!(
            plan.handle(input, 1),
            Err(ControlError::Ended {
                control,
                status: RolledForward
            })
        );
    }
    let (mut plan, _) =
        UpdatePlan::start(update(&["a"], "b", 1, settings(1, 10)), 0).expect("valid");
    assert_eq!(
        plan.handle(UpdateInput::Resume, 1),
        Err(ControlError::NotPaused {
            status: RollingForward
        })
    );
}

#[test]
fn restart_bounces_each_instance_once_on_its_own_config() {
    let (trace, plan) = drive(restart(&["a", "b", "a"], settings(1, 10)), |_, _| {
        Fate::Healthy
    });
    assert_eq!(
        actions(&trace),
        vec![
            kill(0),
            add(0, "a"),
            kill(1),
            add(1, "b"),
            kill(2),
            add(2, "a")
        ]
    );
    assert_eq!(plan.status(), RolledForward);
    assert!(plan.is_restart());
}

#[test]
fn a_failed_restart_does_not_roll_back() {
    let request = UpdateRequest {
        settings: UpdateSettings {
            rollback_on_failure: true,
            ..settings(1, 10)
        },
        ..restart(&["a", "a"], UpdateSettings::default())
    };
    let (trace, plan) = drive(request, |_, _| Fate::Dies);
    assert_eq!(actions(&trace), vec![kill(0), add(0, "a")]);
    assert_eq!(plan.status(), Failed);
}

#[test]
fn invalid_settings_are_refused_with_the_value_named() {
    let health = HealthCheckTiming {
        initial_interval_secs: 15.0,
        interval_secs: 10.0,
        max_consecutive_failures: 3,
    };
    let cases: Vec<(UpdateRequest, UpdateError)> = vec![
        (
            update(&["a"], "b", 1, settings(0, 10)),
            UpdateError::ZeroBatchSize,
        ),
        (
            update(
                &["a"],
                "b",
                1,
                UpdateSettings {
                    restart_threshold: 0,
                    ..UpdateSettings::default()
                },
            ),
            UpdateError::ZeroRestartThreshold,
        ),
        (
            update(&["a"], "b", 1, settings(1, 0)),
            UpdateError::ZeroWatchSecs,
        ),
        (
            update(
                &["a"; 3],
                "b",
                3,
                UpdateSettings {
                    max_total_failures: 3,
                    ..UpdateSettings::default()
                },
            ),
            UpdateError::TooManyTolerated {
                max_total_failures: 3,
                instance_count: 3,
            },
        ),
        (
            update(&["a"], "b", 0, UpdateSettings::default()),
            UpdateError::NoInstances,
        ),
        (
            restart(&[], UpdateSettings::restart_defaults()),
            UpdateError::NoInstances,
        ),
        (
            UpdateRequest {
                health_checks: Some(health),
                ..update(&["a"], "b", 1, settings(1, 45))
            },
            UpdateError::WatchShorterThanHealthChecks {
                watch_secs: 45,
                needed: 45.0,
                initial_interval_secs: 15.0,
                interval_secs: 10.0,
                max_consecutive_failures: 3,
            },
        ),
        (
            UpdateRequest {
                only: Some("2,7".parse().expect("an instance set")),
                ..update(&["a"; 3], "b", 4, settings(1, 10))
            },
            UpdateError::UnknownInstance {
                instance: 7,
                known: "0-3".to_owned(),
            },
        ),
        (
            UpdateRequest {
                dedicated: true,
                ..update(&["a"; 100], "b", 100, settings(1, 10))
            },
            UpdateError::DedicatedTooStrict {
                max_total_failures: 0,
                needed: 2,
                instance_count: 100,
            },
        ),
    ];
    for (request, expected) in cases {
        assert_eq!(UpdatePlan::start(request, 0).err(), Some(expected));
    }
    // At 2% of 49 instances, none need be tolerated.
    let small = UpdateRequest {
        dedicated: true,
        ..update(&["a"; 49], "b", 49, settings(1, 10))
    };
    assert!(UpdatePlan::start(small, 0).is_ok());
    let message = UpdateError::TooManyTolerated {
        max_total_failures: 3,
        instance_count: 3,
    }
    .to_string();
    assert!(message.contains("max_total_failures is 3"), "{message}");
}

#[test]
fn defaults_are_aurora_0_6s() {
    let d = UpdateSettings::default();
    assert_eq!(
        (d.batch_size, d.restart_threshold, d.watch_secs),
        (1, 60, 45)
    );
    assert!(d.rollback_on_failure && !d.wait_for_batch_completion);
    let r = UpdateSettings::restart_defaults();
    assert_eq!((r.watch_secs, r.rollback_on_failure), (30, false));
    // Missing fields in a stored config take the defaults.
    let parsed: UpdateSettings = serde_json::from_str(r#"{"batch_size": 3}"#).expect("json");
    assert_eq!(parsed, UpdateSettings { batch_size: 3, ..d });
}

#[test]
fn an_unhealthy_new_config_rolls_back() {
    let request = UpdateRequest {
        health_checks: Some(HealthCheckTiming {
            initial_interval_secs: 1.0,
            interval_secs: 1.0,
            max_consecutive_failures: 2,
        }),
        ..update(&["a"; 2], "b", 2, settings(1, 10))
    };
    let (trace, plan) = drive(request, |_, c| {
        if c == "b" {
            Fate::Unhealthy
        } else {
            Fate::Healthy
        }
    });
    assert_eq!(plan.status(), RolledBack);
    assert_eq!(
        actions(&trace),
        vec![kill(0), add(0, "b"), kill(0), add(0, "a")]
    );
}

#[test]
fn a_rollback_takes_the_instances_in_flight_first() {
    // Instance 0 is slow, so 2 starts beside it and dies while 0 is still starting: 0 is down
    // and must be in the first rollback batch, or three instances would be down at once.
    let request = UpdateRequest {
        settings: settings(2, 10),
        ..update(&["a"; 4], "b", 4, UpdateSettings::default())
    };
    let (trace, plan) = drive(request, |id, c| match (id, c) {
        (0, "b") => Fate::Slow,
        (2, "b") => Fate::Dies,
        _ => Fate::Healthy,
    });
    assert_eq!(plan.status(), RolledBack);
    let rollback_start = trace
        .iter()
        .filter(|(_, a)| *a == kill(2))
        .map(|(t, _)| *t)
        .nth(1)
        .expect("instance 2 is killed again by the rollback");
    assert_eq!(batches(&trace, rollback_start), vec![vec![2, 0], vec![1]]);
}
