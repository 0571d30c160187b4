//! Property tests: a simulated cluster drives the planner with random task outcomes and
//! timings, and checks what must hold whatever happens.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;

use super::*;

/// A task in the simulated cluster.
#[derive(Debug, Clone)]
struct Task {
    config: ConfigKey,
    running: bool,
    /// Killed, but not yet terminal: down, yet still there.
    killing: bool,
}

/// What the random source decides for one launch: its kind, and two delays in ms.
type Draw = (u8, u32, u32);

#[derive(Debug, Clone)]
struct Scenario {
    old: Vec<u8>,
    target: Option<(u8, u32)>,
    settings: UpdateSettings,
    only_mask: u16,
    health: bool,
    draws: Vec<Draw>,
    /// Pause before this input (and resume once nothing else can happen), if any.
    pause_at: Option<usize>,
    abort_at: Option<usize>,
}

fn scenario() -> impl Strategy<Value = Scenario> {
    (
        prop::collection::vec(0u8..2, 1..8),
        prop::option::of((1u8..3, 1u32..8)),
        (
            1u32..4,
            1u32..20,
            1u32..20,
            0u32..3,
            0u32..8,
            any::<bool>(),
            any::<bool>(),
        ),
        any::<u16>(),
        any::<bool>(),
        prop::collection::vec((0u8..5, 0u32..30_000, 0u32..30_000), 1..64),
        prop::option::of(0usize..60),
        prop::option::weighted(0.1, 0usize..60),
    )
        .prop_map(
            |(old, target, s, only_mask, health, draws, pause_at, abort_at)| Scenario {
                settings: UpdateSettings {
                    batch_size: s.0,
                    restart_threshold: s.1,
                    watch_secs: s.2,
                    max_per_shard_failures: s.3,
                    max_total_failures: s.4,
                    rollback_on_failure: s.5,
                    wait_for_batch_completion: s.6,
                },
                old,
                target,
                only_mask,
                health,
                draws,
                pause_at,
                abort_at,
            },
        )
}

fn config_name(n: u8) -> ConfigKey {
    ConfigKey::from_stored(["a", "b", "c"][usize::from(n % 3)].to_owned())
}

fn request(s: &Scenario) -> UpdateRequest {
    let current: BTreeMap<u32, ConfigKey> = (0u32..)
        .zip(s.old.iter().map(|c| config_name(*c)))
        .collect();
    let target = match s.target {
        Some((config, instance_count)) => UpdateTarget::Config {
            config: config_name(config),
            instance_count,
        },
        None => UpdateTarget::Restart,
    };
    let count = match &target {
        UpdateTarget::Config { instance_count, .. } => *instance_count,
        UpdateTarget::Restart => u32::try_from(current.len()).unwrap_or(u32::MAX),
    };
    let mut known: BTreeSet<u32> = current.keys().copied().collect();
    known.extend(0..count);
    let only: InstanceSet = known
        .into_iter()
        .filter(|id| s.only_mask & (1 << id) != 0)
        .collect();
    UpdateRequest {
        current,
        target,
        // Keep max_total_failures valid: below the final instance count.
        settings: UpdateSettings {
            max_total_failures: s.settings.max_total_failures % count.max(1),
            ..s.settings
        },
        only: (!only.is_empty()).then_some(only),
        health_checks: s.health.then_some(HealthCheckTiming {
            initial_interval_secs: 0.5,
            interval_secs: 0.5,
            max_consecutive_failures: 0,
        }),
        dedicated: false,
    }
}

/// The config an instance should have now, if the update is not working on it; `None` for an
/// instance given up on, whose state is anyone's guess.
fn expected(plan: &UpdatePlan, id: u32) -> Option<Option<ConfigKey>> {
    match plan.outcomes().get(&id) {
        Some(InstanceOutcome::Failed | InstanceOutcome::RollbackFailed) => None,
        Some(InstanceOutcome::Updated) => Some(plan.new_configs().get(&id).cloned().flatten()),
        Some(InstanceOutcome::RolledBack) | None => Some(plan.old_configs().get(&id).cloned()),
    }
}

/// Runs a scenario to its end, checking the invariants after every step; returns the plan
/// and the cluster.
fn run(s: &Scenario) -> Result<(UpdatePlan, BTreeMap<u32, Task>), TestCaseError> {
    let request = request(s);
    let batch = usize::try_from(request.settings.batch_size).unwrap_or(usize::MAX);
    let watch_ms = i64::from(request.settings.watch_secs) * 1000;
    let restart = request.target == UpdateTarget::Restart;
    let mut cluster: BTreeMap<u32, Task> = request
        .current
        .iter()
        .map(|(id, config)| {
            let task = Task {
                config: config.clone(),
                running: true,
                killing: false,
            };
            (*id, task)
        })
        .collect();
    let mut everyone: BTreeSet<u32> = cluster.keys().copied().collect();
    let mut pending: BTreeMap<(i64, u64), (u32, u64, InstanceEvent)> = BTreeMap::new();
    let mut generation: BTreeMap<u32, u64> = BTreeMap::new();
    let mut seq = 0u64;
    let mut draws = s.draws.iter().cycle();
    let mut now = 0i64;
    let Ok((mut plan, mut step)) = UpdatePlan::start(request, now) else {
        return Err(TestCaseError::fail("a valid request was refused"));
    };
    everyone.extend(plan.new_configs().keys().copied());
    let mut paused = false;

    for n in 0..20_000usize {
        for action in &step.actions {
            let (id, events) = match action {
                UpdateAction::Kill { instance } => {
                    if let Some(task) = cluster.get_mut(instance) {
                        task.running = false;
                        task.killing = true;
                    }
                    let (kind, delay, _) = *draws.next().unwrap_or(&(0, 0, 0));
                    let delay = i64::from(delay % 5_000);
                    let mut events = vec![(delay, InstanceEvent::Terminal)];
                    // The task being killed may still report RUNNING or a health check first.
                    if kind == 0 {
                        events.insert(0, (delay / 2, InstanceEvent::Running));
                    } else if kind == 1 {
                        events.insert(0, (delay / 2, InstanceEvent::HealthPassed));
                    }
                    (*instance, events)
                }
                UpdateAction::Add { instance, config } => {
                    prop_assert!(
                        !cluster.contains_key(instance),
                        "instance {instance} added on top of a live task"
                    );
                    let old = plan.old_configs().get(instance);
                    let new = plan.new_configs().get(instance).cloned().flatten();
                    if restart {
                        prop_assert_eq!(Some(config), old, "a restart changed a config");
                    } else {
                        prop_assert!(
                            Some(config) == old || Some(config) == new.as_ref(),
                            "instance {} added with {} (old {:?}, new {:?})",
                            instance,
                            config,
                            old,
                            new
                        );
                    }
                    cluster.insert(
                        *instance,
                        Task {
                            config: config.clone(),
                            running: false,
                            killing: false,
                        },
                    );
                    let (kind, d1, d2) = *draws.next().unwrap_or(&(0, 0, 0));
                    let up = i64::from(d1);
                    // Deaths and health failures come before the watch ends, so a watched
                    // instance stays up.
                    let late = up + i64::from(d2) % watch_ms;
                    use InstanceEvent::{HealthFailed, HealthPassed, Running, Terminal};
                    let events = match kind {
                        0 | 1 => vec![(up, Running), (up + i64::from(d2 % 2_000), HealthPassed)],
                        2 => vec![(up, Running), (late, Terminal)],
                        3 => vec![(up, Running), (late, HealthFailed)],
                        _ => vec![],
                    };
                    (*instance, events)
                }
            };
            let g = generation.entry(id).or_default();
            *g += 1;
            for (delay, event) in events {
                seq += 1;
                pending.insert((now + delay, seq), (id, *g, event));
            }
        }

        // Never more than batch_size instances down because of the update.
        if plan.status().is_active() {
            let in_flight: BTreeSet<u32> = plan.in_flight().collect();
            let down: Vec<u32> = everyone
                .iter()
                .copied()
                .filter(|id| {
                    let wanted =
                        in_flight.contains(id) || matches!(expected(&plan, *id), Some(Some(_)));
                    wanted && !cluster.get(id).is_some_and(|t| t.running)
                })
                .collect();
            prop_assert!(
                down.len() <= batch,
                "{:?} down at once with batch_size {} at {}",
                down,
                batch,
                now
            );
        }
        if !step.status.is_active() {
            return Ok((plan, cluster));
        }

        // The plan is stored and reloaded between steps, as the scheduler does.
        let stored =
            serde_json::to_string(&plan).map_err(|e| TestCaseError::fail(e.to_string()))?;
        plan = serde_json::from_str(&stored).map_err(|e| TestCaseError::fail(e.to_string()))?;

        let next_event = pending.keys().next().map(|(t, _)| *t);
        let input = if s.abort_at == Some(n) {
            UpdateInput::Abort
        } else if s.pause_at == Some(n) && !paused {
            paused = true;
            UpdateInput::Pause
        } else if paused && next_event.is_none() {
            paused = false;
            UpdateInput::Resume
        } else {
            let take_event = match (next_event, step.wake_at_ms) {
                (Some(t), Some(w)) => t <= w,
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (None, None) => {
                    return Err(TestCaseError::fail(format!("stuck at {now}: {plan:?}")));
                }
            };
            if take_event {
                let Some(((t, _), (id, g, event))) = pending.pop_first() else {
                    return Err(TestCaseError::fail("no event"));
                };
                now = t;
                if generation.get(&id) != Some(&g) {
                    step.actions.clear();
                    continue;
                }
                match event {
                    InstanceEvent::Running => {
                        if let Some(task) = cluster.get_mut(&id).filter(|t| !t.killing) {
                            task.running = true;
                        }
                    }
                    InstanceEvent::Terminal => {
                        cluster.remove(&id);
                    }
                    InstanceEvent::HealthPassed | InstanceEvent::HealthFailed => {}
                }
                UpdateInput::Event {
                    instance: id,
                    event,
                }
            } else {
                now = step.wake_at_ms.unwrap_or(now);
                UpdateInput::Tick
            }
        };
        step = plan
            .handle(input, now)
            .map_err(|e| TestCaseError::fail(format!("{input:?} refused: {e}")))?;
    }
    Err(TestCaseError::fail(format!("did not end: {plan:?}")))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn updates_end_with_the_configs_they_promise(s in scenario()) {
        let (plan, cluster) = run(&s)?;
        let everyone: BTreeSet<u32> = plan
            .old_configs()
            .keys()
            .chain(plan.new_configs().keys())
            .copied()
            .collect();
        match plan.status() {
            UpdateStatus::RolledForward => {
                for id in &everyone {
                    if let Some(wanted) = expected(&plan, *id) {
                        let has = cluster.get(id).map(|t| t.config.clone());
                        prop_assert_eq!(&has, &wanted, "instance {} after rolling forward", id);
                        prop_assert!(cluster.get(id).is_none_or(|t| t.running));
                    }
                }
            }
            UpdateStatus::RolledBack => {
                for id in &everyone {
                    let has = cluster.get(id).map(|t| t.config.clone());
                    let old = plan.old_configs().get(id).cloned();
                    prop_assert_eq!(&has, &old, "instance {} after rolling back", id);
                }
            }
            UpdateStatus::Failed | UpdateStatus::Aborted => {}
            active => prop_assert!(false, "ended while {}", active),
        }
        if plan.is_restart() {
            for (id, task) in &cluster {
                prop_assert_eq!(Some(&task.config), plan.old_configs().get(id));
            }
        }
    }

    #[test]
    fn handle_never_panics_on_arbitrary_inputs(
        s in scenario(),
        inputs in prop::collection::vec((0u8..9, 0u32..10, 0i64..200_000), 0..80),
    ) {
        let Ok((mut plan, _)) = UpdatePlan::start(request(&s), 0) else {
            return Err(TestCaseError::fail("a valid request was refused"));
        };
        let mut now = 0;
        for (kind, instance, dt) in inputs {
            now += dt;
            let event = |event| UpdateInput::Event { instance, event };
            let input = match kind {
                0 => event(InstanceEvent::Running),
                1 => event(InstanceEvent::HealthPassed),
                2 => event(InstanceEvent::HealthFailed),
                3 => event(InstanceEvent::Terminal),
                4 => UpdateInput::Pause,
                5 => UpdateInput::Resume,
                6 => UpdateInput::Abort,
                _ => UpdateInput::Tick,
            };
            if let Ok(step) = plan.handle(input, now) {
                prop_assert!(plan.in_flight().count() <= usize::try_from(plan.settings().batch_size).unwrap_or(usize::MAX));
                prop_assert!(step.wake_at_ms.is_none_or(|w| w >= now));
            }
        }
    }
}
