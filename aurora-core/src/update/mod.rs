//! The update planner: rolling updates and rolling restarts as a pure state machine.
//!
//! An [`UpdatePlan`] is started from the job's current instances, the target (a new config and
//! instance count, or a restart), the [`UpdateSettings`] and the instances it may touch. From
//! then on the caller feeds it [`UpdateInput`]s (task events, ticks, pause/resume/abort) with
//! the time, and it answers with a [`UpdateStep`]: what to kill, what to add with which config, when
//! to wake it up next and the update's status. It does no I/O and reads no clock; the plan is a
//! plain serde value, so the scheduler can store it after every step and carry on after a crash.
//!
//! Configs are compared by their [`ConfigKey`], so only instances whose config changed are
//! replaced.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::{ConfigKey, InstanceSet};

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;

/// How an update proceeds: Aurora's `UpdateConfig`, with its 0.6 defaults.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct UpdateSettings {
    /// How many instances are replaced at a time.
    pub batch_size: u32,
    /// Seconds an instance has, from its launch, to be RUNNING (and passing health checks).
    pub restart_threshold: u32,
    /// Seconds an instance must stay RUNNING (and passing health checks) to count as updated.
    pub watch_secs: u32,
    /// Restarts of one instance tolerated before it counts as a failed instance.
    pub max_per_shard_failures: u32,
    /// Failed instances tolerated; one more and the update fails.
    pub max_total_failures: u32,
    /// Whether a failed update restores the previous configs.
    pub rollback_on_failure: bool,
    /// Whether the next batch waits for the whole batch, rather than refilling each slot as
    /// soon as its instance is done.
    pub wait_for_batch_completion: bool,
}

impl Default for UpdateSettings {
    /// Aurora 0.6's `UpdateConfig()` (the docs table says 30 for `watch_secs`; 0.6's schema
    /// says 45, which is what configs actually got).
    fn default() -> Self {
        UpdateSettings {
            batch_size: 1,
            restart_threshold: 60,
            watch_secs: 45,
            max_per_shard_failures: 0,
            max_total_failures: 0,
            rollback_on_failure: true,
            wait_for_batch_completion: false,
        }
    }
}

impl UpdateSettings {
    /// The defaults of `aurora restart`'s flags, which alone configure a restart (never the
    /// job's `update_config`): as [`UpdateSettings::default`] but `--watch_secs=30` and no
    /// rollback, since a restart changes no config.
    pub fn restart_defaults() -> Self {
        UpdateSettings {
            watch_secs: 30,
            rollback_on_failure: false,
            ..UpdateSettings::default()
        }
    }
}

/// The health check timing of the new config, when its task has a `health` port.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct HealthCheckTiming {
    /// Seconds before the first health check.
    pub initial_interval_secs: f64,
    /// Seconds between health checks.
    pub interval_secs: f64,
    /// Consecutive failed checks tolerated before the task is unhealthy.
    pub max_consecutive_failures: u32,
}

/// What the update moves the job to.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UpdateTarget {
    /// Instances `0..instance_count` on `config`; instances beyond are killed.
    Config {
        /// The key of the new task config.
        config: ConfigKey,
        /// The new instance count.
        instance_count: u32,
    },
    /// A rolling restart: every selected instance is bounced on its own config.
    Restart,
}

/// Everything an update starts from.
#[derive(Debug, Clone, PartialEq)]
pub struct UpdateRequest {
    /// The job's active instances and the key of each one's config.
    pub current: BTreeMap<u32, ConfigKey>,
    /// The new config and count, or a restart.
    pub target: UpdateTarget,
    /// The update settings.
    pub settings: UpdateSettings,
    /// `--shards`: the only instances the update may touch (`None`: all of them).
    pub only: Option<InstanceSet>,
    /// The new config's health check timing, when its task has a `health` port: an instance
    /// then also needs [`InstanceEvent::HealthPassed`] before its watch starts.
    pub health_checks: Option<HealthCheckTiming>,
    /// Whether the job has a `dedicated` constraint: such jobs must tolerate failures of 2%
    /// of their instances, since their hosts are few.
    pub dedicated: bool,
}

/// Why an update cannot start.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum UpdateError {
    /// `batch_size` is 0.
    #[error(
        "update_config batch_size is 0: it must be at least 1 (the number of instances replaced at a time)"
    )]
    ZeroBatchSize,
    /// `restart_threshold` is 0.
    #[error(
        "update_config restart_threshold is 0: it must be at least 1 (seconds an instance has to reach RUNNING)"
    )]
    ZeroRestartThreshold,
    /// `watch_secs` is 0.
    #[error(
        "update_config watch_secs is 0: it must be at least 1 (seconds an instance must stay RUNNING)"
    )]
    ZeroWatchSecs,
    /// The job would have no instances, so there is nothing to update or restart.
    #[error(
        "the job would have no instances after the update, or has none to restart: an update needs at least one; to remove every instance, kill the job instead"
    )]
    NoInstances,
    /// `max_total_failures` is not below the instance count.
    #[error(
        "update_config max_total_failures is {max_total_failures}, but the job will have {instance_count} instance(s): it must be below the instance count, or the update could never fail; lower it"
    )]
    TooManyTolerated {
        /// The configured value.
        max_total_failures: u32,
        /// The job's instance count after the update.
        instance_count: u32,
    },
    /// A dedicated job tolerates fewer failures than 2% of its instances.
    #[error(
        "update_config max_total_failures is {max_total_failures}, but a job with a dedicated constraint and {instance_count} instances must tolerate at least {needed} (2% of its instances, rounded down): raise it"
    )]
    DedicatedTooStrict {
        /// The configured value.
        max_total_failures: u32,
        /// `floor(0.02 × instance_count)`.
        needed: u32,
        /// The job's instance count after the update.
        instance_count: u32,
    },
    /// `watch_secs` ends before a failing health check could make the task unhealthy.
    #[error(
        "update_config watch_secs is {watch_secs}, but health checks need {needed} s to declare an instance unhealthy (initial_interval_secs {initial_interval_secs} + max_consecutive_failures {max_consecutive_failures} × interval_secs {interval_secs}): raise watch_secs above {needed}"
    )]
    WatchShorterThanHealthChecks {
        /// The configured `watch_secs`.
        watch_secs: u32,
        /// `initial_interval_secs + max_consecutive_failures * interval_secs`.
        needed: f64,
        /// The health check's `initial_interval_secs`.
        initial_interval_secs: f64,
        /// The health check's `interval_secs`.
        interval_secs: f64,
        /// The health check's `max_consecutive_failures`.
        max_consecutive_failures: u32,
    },
    /// `--shards` names an instance the job neither has nor will have.
    #[error(
        "--shards names instance {instance}, which the job neither has nor will have (its instances are {known}): choose from those"
    )]
    UnknownInstance {
        /// The offending id.
        instance: u32,
        /// The instances the job has or will have, as an instance set ("0-3").
        known: String,
    },
}

/// Why a pause, resume or abort was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ControlError {
    /// The update has ended.
    #[error("cannot {control} the update: it has already ended ({status}); start a new one")]
    Ended {
        /// What was asked.
        control: &'static str,
        /// How the update ended.
        status: UpdateStatus,
    },
    /// Resume of an update that is not paused.
    #[error("cannot resume the update: it is {status}, not paused")]
    NotPaused {
        /// The update's status.
        status: UpdateStatus,
    },
}

/// Where an update is; Aurora's `JobUpdateStatus` names.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum UpdateStatus {
    /// Replacing instances with the new config (or restarting them).
    RollingForward,
    /// Paused while rolling forward.
    RollForwardPaused,
    /// Restoring the previous configs after a failure.
    RollingBack,
    /// Paused while rolling back.
    RollBackPaused,
    /// Ended: every selected instance is on the new config (the update succeeded).
    RolledForward,
    /// Ended: the update failed and every touched instance is back on its old config.
    RolledBack,
    /// Ended: aborted; instances were left as they were.
    Aborted,
    /// Ended: the update failed (without rollback, or the rollback itself failed).
    Failed,
}

impl UpdateStatus {
    /// Whether the update still holds the job (running or paused).
    pub fn is_active(self) -> bool {
        matches!(
            self,
            UpdateStatus::RollingForward
                | UpdateStatus::RollForwardPaused
                | UpdateStatus::RollingBack
                | UpdateStatus::RollBackPaused
        )
    }

    /// Whether the update is paused.
    pub fn is_paused(self) -> bool {
        matches!(
            self,
            UpdateStatus::RollForwardPaused | UpdateStatus::RollBackPaused
        )
    }

    fn name(self) -> &'static str {
        match self {
            UpdateStatus::RollingForward => "ROLLING_FORWARD",
            UpdateStatus::RollForwardPaused => "ROLL_FORWARD_PAUSED",
            UpdateStatus::RollingBack => "ROLLING_BACK",
            UpdateStatus::RollBackPaused => "ROLL_BACK_PAUSED",
            UpdateStatus::RolledForward => "ROLLED_FORWARD",
            UpdateStatus::RolledBack => "ROLLED_BACK",
            UpdateStatus::Aborted => "ABORTED",
            UpdateStatus::Failed => "FAILED",
        }
    }
}

impl fmt::Display for UpdateStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What happened to an instance's current task, as the scheduler reports it.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InstanceEvent {
    /// The task reached RUNNING.
    Running,
    /// A health check passed.
    HealthPassed,
    /// The task failed its health checks.
    HealthFailed,
    /// The task reached a terminal state (killed, finished, failed, lost), or the instance has
    /// no active task. The scheduler answers every [`UpdateAction::Kill`] with it, at once if
    /// the instance had no active task.
    Terminal,
}

/// An input to [`UpdatePlan::handle`].
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UpdateInput {
    /// An event of an instance's task.
    Event {
        /// The instance.
        instance: u32,
        /// What happened.
        event: InstanceEvent,
    },
    /// Time passed (the wake-up time of the last [`UpdateStep`] was reached).
    Tick,
    /// Stop changing instances; events are still recorded.
    Pause,
    /// Carry on after a pause.
    Resume,
    /// Stop for good, leaving instances as they are.
    Abort,
}

/// An action for the scheduler to apply.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UpdateAction {
    /// Kill the instance's active task, if any, and report [`InstanceEvent::Terminal`].
    Kill {
        /// The instance.
        instance: u32,
    },
    /// Launch the instance with this config.
    Add {
        /// The instance.
        instance: u32,
        /// The config to launch it with.
        config: ConfigKey,
    },
}

/// What a call to the planner returns.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpdateStep {
    /// Actions to apply, in order.
    pub actions: Vec<UpdateAction>,
    /// Call [`UpdatePlan::handle`] with [`UpdateInput::Tick`] at this time (ms since the
    /// epoch) unless an event comes first; `None` when only an event or a control can move it.
    pub wake_at_ms: Option<i64>,
    /// The update's status after this step.
    pub status: UpdateStatus,
}

/// How an instance's part in the update ended.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum InstanceOutcome {
    /// Replaced (or restarted, or removed) and watched successfully.
    Updated,
    /// Failed more than `max_per_shard_failures` times; it counts toward `max_total_failures`.
    Failed,
    /// Restored to its old config.
    RolledBack,
    /// Could not be restored to its old config.
    RollbackFailed,
}

/// The phase of an instance being worked on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Phase {
    /// Kill sent; waiting for `Terminal` until the deadline.
    Killing { deadline_ms: i64 },
    /// Killed; the add is due (deferred while paused).
    Down,
    /// Added; waiting for RUNNING (and health) until the deadline, then watching.
    Launched {
        deadline_ms: i64,
        running_since: Option<i64>,
        healthy_since: Option<i64>,
    },
    /// The attempt failed; the next advance counts it.
    AttemptFailed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Slot {
    phase: Phase,
    /// The config to add once the old task is gone; `None` removes the instance.
    target: Option<ConfigKey>,
    failures: u32,
}

/// A rolling update or restart in progress: a plain value the scheduler stores and reloads.
///
/// ```
/// use std::collections::BTreeMap;
/// use aurora_core::{
///     ConfigKey, InstanceEvent, UpdateAction, UpdateInput, UpdatePlan, UpdateRequest,
///     UpdateSettings, UpdateStatus, UpdateTarget,
/// };
///
/// let old = ConfigKey::from_stored("old".into());
/// let new = ConfigKey::from_stored("new".into());
/// // Two instances on the old config, updated one at a time, each watched for 10 s.
/// let request = UpdateRequest {
///     current: BTreeMap::from([(0, old.clone()), (1, old.clone())]),
///     target: UpdateTarget::Config { config: new.clone(), instance_count: 2 },
///     settings: UpdateSettings { watch_secs: 10, ..UpdateSettings::default() },
///     only: None,
///     health_checks: None,
///     dedicated: false,
/// };
/// let (mut plan, step) = UpdatePlan::start(request, 0).unwrap();
/// assert_eq!(step.actions, vec![UpdateAction::Kill { instance: 0 }]);
///
/// // The scheduler applies each action and reports what happens.
/// let event = |instance, event| UpdateInput::Event { instance, event };
/// let step = plan.handle(event(0, InstanceEvent::Terminal), 1_000).unwrap();
/// assert_eq!(step.actions, vec![UpdateAction::Add { instance: 0, config: new.clone() }]);
/// let step = plan.handle(event(0, InstanceEvent::Running), 5_000).unwrap();
/// assert_eq!(step.wake_at_ms, Some(15_000));
///
/// // Watched long enough: instance 0 is done and instance 1 goes next.
/// let step = plan.handle(UpdateInput::Tick, 15_000).unwrap();
/// assert_eq!(step.actions, vec![UpdateAction::Kill { instance: 1 }]);
/// assert_eq!(step.status, UpdateStatus::RollingForward);
///
/// // The plan is a value: store it, reload it after a crash, carry on.
/// let stored = serde_json::to_string(&plan).unwrap();
/// let mut plan: UpdatePlan = serde_json::from_str(&stored).unwrap();
/// plan.handle(event(1, InstanceEvent::Terminal), 16_000).unwrap();
/// plan.handle(event(1, InstanceEvent::Running), 17_000).unwrap();
/// let step = plan.handle(UpdateInput::Tick, 27_000).unwrap();
/// assert_eq!(step.status, UpdateStatus::RolledForward);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UpdatePlan {
    settings: UpdateSettings,
    health_checked: bool,
    restart: bool,
    /// Each instance's config before the update (instances that did not exist are absent).
    old: BTreeMap<u32, ConfigKey>,
    /// Each touched instance's config after the update (`None`: removed).
    new: BTreeMap<u32, Option<ConfigKey>>,
    status: UpdateStatus,
    /// Instances still to start, in order.
    queue: VecDeque<u32>,
    in_flight: BTreeMap<u32, Slot>,
    /// Instances started while rolling forward, which a rollback restores.
    processed: BTreeSet<u32>,
    outcomes: BTreeMap<u32, InstanceOutcome>,
    failed_instances: u32,
    rollback_failed: bool,
}

impl UpdatePlan {
    /// Validates the request and starts the update at `now_ms`, returning the plan and its
    /// first step.
    pub fn start(
        request: UpdateRequest,
        now_ms: i64,
    ) -> Result<(UpdatePlan, UpdateStep), UpdateError> {
        let UpdateRequest {
            current,
            target,
            settings,
            only,
            health_checks,
            dedicated,
        } = request;
        let final_count = match &target {
            UpdateTarget::Config { instance_count, .. } => *instance_count,
            UpdateTarget::Restart => u32::try_from(current.len()).unwrap_or(u32::MAX),
        };
        validate(&settings, final_count, health_checks.as_ref(), dedicated)?;

        let mut known: BTreeSet<u32> = current.keys().copied().collect();
        if let UpdateTarget::Config { instance_count, .. } = &target {
            known.extend(0..*instance_count);
        }
        if let Some(only) = &only
            && let Some(instance) = only.iter().find(|id| !known.contains(id))
        {
            return Err(UpdateError::UnknownInstance {
                instance,
                known: known.iter().copied().collect::<InstanceSet>().to_string(),
            });
        }
        let selected = known
            .into_iter()
            .filter(|id| only.as_ref().is_none_or(|only| only.contains(*id)));

        let restart = matches!(target, UpdateTarget::Restart);
        let mut new = BTreeMap::new();
        let mut queue = VecDeque::new();
        for id in selected {
            let wanted = match &target {
                UpdateTarget::Config {
                    config,
                    instance_count,
                } => (id < *instance_count).then(|| config.clone()),
                UpdateTarget::Restart => current.get(&id).cloned(),
            };
            // Unchanged instances are neither replaced nor watched, except by a restart.
            if restart || current.get(&id) != wanted.as_ref() {
                queue.push_back(id);
                new.insert(id, wanted);
            }
        }

        let mut plan = UpdatePlan {
            settings,
            health_checked: health_checks.is_some(),
            restart,
            old: current,
            new,
            status: UpdateStatus::RollingForward,
            queue,
            in_flight: BTreeMap::new(),
            processed: BTreeSet::new(),
            outcomes: BTreeMap::new(),
            failed_instances: 0,
            rollback_failed: false,
        };
        let step = plan.advance(now_ms);
        Ok((plan, step))
    }

    /// Feeds one input at `now_ms` and returns what to do next. Events for instances the
    /// update is not working on, and events after the update ended, are ignored.
    pub fn handle(&mut self, input: UpdateInput, now_ms: i64) -> Result<UpdateStep, ControlError> {
        match input {
            UpdateInput::Event { instance, event } => self.record(instance, event, now_ms),
            UpdateInput::Tick => {}
            UpdateInput::Pause => {
                self.status = match self.status {
                    UpdateStatus::RollingForward => UpdateStatus::RollForwardPaused,
                    UpdateStatus::RollingBack => UpdateStatus::RollBackPaused,
                    paused if paused.is_paused() => paused,
                    status => {
                        return Err(ControlError::Ended {
                            control: "pause",
                            status,
                        });
                    }
                };
            }
            UpdateInput::Resume => {
                self.status = match self.status {
                    UpdateStatus::RollForwardPaused => UpdateStatus::RollingForward,
                    UpdateStatus::RollBackPaused => UpdateStatus::RollingBack,
                    status if status.is_active() => {
                        return Err(ControlError::NotPaused { status });
                    }
                    status => {
                        return Err(ControlError::Ended {
                            control: "resume",
                            status,
                        });
                    }
                };
            }
            UpdateInput::Abort => {
                if !self.status.is_active() {
                    return Err(ControlError::Ended {
                        control: "abort",
                        status: self.status,
                    });
                }
                self.status = UpdateStatus::Aborted;
            }
        }
        Ok(self.advance(now_ms))
    }

    /// The update's status.
    pub fn status(&self) -> UpdateStatus {
        self.status
    }

    /// The settings the update runs with.
    pub fn settings(&self) -> &UpdateSettings {
        &self.settings
    }

    /// Whether this is a rolling restart.
    pub fn is_restart(&self) -> bool {
        self.restart
    }

    /// Each instance's config before the update.
    pub fn old_configs(&self) -> &BTreeMap<u32, ConfigKey> {
        &self.old
    }

    /// The instances the update changes and the config each gets (`None`: removed). Unchanged
    /// and unselected instances are absent.
    pub fn new_configs(&self) -> &BTreeMap<u32, Option<ConfigKey>> {
        &self.new
    }

    /// The instances being worked on now, ascending.
    pub fn in_flight(&self) -> impl Iterator<Item = u32> + '_ {
        self.in_flight.keys().copied()
    }

    /// How each finished instance's part ended.
    pub fn outcomes(&self) -> &BTreeMap<u32, InstanceOutcome> {
        &self.outcomes
    }

    /// The instances waiting for a slot, in the order they will start.
    pub fn queued(&self) -> impl Iterator<Item = u32> + '_ {
        self.queue.iter().copied()
    }

    /// How many instances failed while rolling forward (toward `max_total_failures`).
    pub fn failed_instances(&self) -> u32 {
        self.failed_instances
    }

    fn rolling_back(&self) -> bool {
        matches!(
            self.status,
            UpdateStatus::RollingBack | UpdateStatus::RollBackPaused
        )
    }

    fn record(&mut self, instance: u32, event: InstanceEvent, now_ms: i64) {
        if !self.status.is_active() {
            return;
        }
        let health_checked = self.health_checked;
        let Some(slot) = self.in_flight.get_mut(&instance) else {
            return;
        };
        slot.phase = match (slot.phase, event) {
            (Phase::Killing { .. }, InstanceEvent::Terminal) => Phase::Down,
            (
                Phase::Launched {
                    deadline_ms,
                    running_since,
                    healthy_since,
                },
                InstanceEvent::Running,
            ) => Phase::Launched {
                deadline_ms,
                running_since: running_since.or(Some(now_ms)),
                healthy_since,
            },
            (
                Phase::Launched {
                    deadline_ms,
                    running_since,
                    healthy_since,
                },
                InstanceEvent::HealthPassed,
            ) if health_checked => Phase::Launched {
                deadline_ms,
                running_since,
                healthy_since: healthy_since.or(Some(now_ms)),
            },
            (Phase::Launched { .. }, InstanceEvent::Terminal | InstanceEvent::HealthFailed) => {
                Phase::AttemptFailed
            }
            // Events of the task being killed, or already counted, change nothing.
            (phase, _) => phase,
        };
    }

    /// When a launched instance became ready to watch: RUNNING, and passing health checks
    /// when it has them.
    fn ready_since(&self, running: Option<i64>, healthy: Option<i64>) -> Option<i64> {
        match (running, healthy, self.health_checked) {
            (Some(r), _, false) => Some(r),
            (Some(r), Some(h), true) => Some(r.max(h)),
            _ => None,
        }
    }

    fn watch_ms(&self) -> i64 {
        i64::from(self.settings.watch_secs) * 1000
    }

    fn threshold_ms(&self) -> i64 {
        i64::from(self.settings.restart_threshold) * 1000
    }

    fn advance(&mut self, now_ms: i64) -> UpdateStep {
        let mut actions = Vec::new();
        if self.status == UpdateStatus::RollingForward || self.status == UpdateStatus::RollingBack {
            self.progress(now_ms, &mut actions);
            if self.status == UpdateStatus::RollingForward
                && self.failed_instances > self.settings.max_total_failures
            {
                if self.settings.rollback_on_failure && !self.restart {
                    self.begin_rollback();
                } else {
                    self.status = UpdateStatus::Failed;
                }
            }
            if self.status.is_active() {
                self.fill(now_ms, &mut actions);
            }
        }
        UpdateStep {
            wake_at_ms: self.wake_at(),
            actions,
            status: self.status,
        }
    }

    /// Moves every instance in flight as far as the time and its events allow.
    fn progress(&mut self, now_ms: i64, actions: &mut Vec<UpdateAction>) {
        let ids: Vec<u32> = self.in_flight.keys().copied().collect();
        for id in ids {
            let Some(slot) = self.in_flight.get(&id) else {
                continue;
            };
            let mut failed = false;
            match slot.phase {
                Phase::Killing { deadline_ms } => failed = now_ms >= deadline_ms,
                Phase::Down => match slot.target.clone() {
                    Some(config) => {
                        let phase = self.launch(id, config, now_ms, actions);
                        self.set_phase(id, phase);
                    }
                    None => self.finish(id, true),
                },
                Phase::Launched {
                    deadline_ms,
                    running_since,
                    healthy_since,
                } => match self.ready_since(running_since, healthy_since) {
                    Some(ready) if now_ms >= ready.saturating_add(self.watch_ms()) => {
                        self.finish(id, true)
                    }
                    Some(_) => {}
                    None => failed = now_ms >= deadline_ms,
                },
                Phase::AttemptFailed => failed = true,
            }
            if failed {
                self.fail_attempt(id, now_ms, actions);
            }
        }
    }

    fn set_phase(&mut self, id: u32, phase: Phase) {
        if let Some(slot) = self.in_flight.get_mut(&id) {
            slot.phase = phase;
        }
    }

    /// Counts a failed attempt: retries the instance (kill, then add again) until it has
    /// failed more than `max_per_shard_failures` times, then gives up on it.
    fn fail_attempt(&mut self, id: u32, now_ms: i64, actions: &mut Vec<UpdateAction>) {
        let max = self.settings.max_per_shard_failures;
        let deadline_ms = now_ms.saturating_add(self.threshold_ms());
        let Some(slot) = self.in_flight.get_mut(&id) else {
            return;
        };
        slot.failures += 1;
        if slot.failures <= max {
            slot.phase = Phase::Killing { deadline_ms };
            actions.push(UpdateAction::Kill { instance: id });
        } else {
            self.finish(id, false);
        }
    }

    fn finish(&mut self, id: u32, succeeded: bool) {
        self.in_flight.remove(&id);
        let outcome = match (self.rolling_back(), succeeded) {
            (false, true) => InstanceOutcome::Updated,
            (false, false) => {
                self.failed_instances += 1;
                InstanceOutcome::Failed
            }
            (true, true) => InstanceOutcome::RolledBack,
            (true, false) => {
                self.rollback_failed = true;
                InstanceOutcome::RollbackFailed
            }
        };
        self.outcomes.insert(id, outcome);
    }

    /// Queues every instance touched so far to get its old config back, highest first, except
    /// that the instances in flight (down, or about to be) go in the first batch: otherwise
    /// they would stay down while other instances are rolled back.
    fn begin_rollback(&mut self) {
        self.status = UpdateStatus::RollingBack;
        let batch = usize::try_from(self.settings.batch_size).unwrap_or(usize::MAX);
        let mut first: BTreeSet<u32> = self.in_flight.keys().copied().collect();
        self.in_flight.clear();
        let mut rest: VecDeque<u32> = self
            .processed
            .iter()
            .rev()
            .filter(|id| !first.contains(id))
            .copied()
            .collect();
        while first.len() < batch {
            let Some(id) = rest.pop_front() else {
                break;
            };
            first.insert(id);
        }
        self.queue = first.into_iter().rev().chain(rest).collect();
    }

    /// Starts queued instances into free slots, or ends the update when nothing is left.
    fn fill(&mut self, now_ms: i64, actions: &mut Vec<UpdateAction>) {
        if self.queue.is_empty() && self.in_flight.is_empty() {
            self.status = match self.status {
                UpdateStatus::RollingForward => UpdateStatus::RolledForward,
                _ if self.rollback_failed => UpdateStatus::Failed,
                _ => UpdateStatus::RolledBack,
            };
            return;
        }
        if self.settings.wait_for_batch_completion && !self.in_flight.is_empty() {
            return;
        }
        let batch = usize::try_from(self.settings.batch_size).unwrap_or(usize::MAX);
        let rolling_back = self.rolling_back();
        while self.in_flight.len() < batch {
            let Some(id) = self.queue.pop_front() else {
                break;
            };
            let target = if rolling_back {
                self.old.get(&id).cloned()
            } else {
                self.processed.insert(id);
                self.new.get(&id).cloned().flatten()
            };
            // A new instance has nothing to kill; anything else is killed first (the
            // scheduler answers at once if the instance has no active task).
            let phase = match &target {
                Some(config) if !rolling_back && !self.old.contains_key(&id) => {
                    self.launch(id, config.clone(), now_ms, actions)
                }
                _ => {
                    actions.push(UpdateAction::Kill { instance: id });
                    Phase::Killing {
                        deadline_ms: now_ms.saturating_add(self.threshold_ms()),
                    }
                }
            };
            self.in_flight.insert(
                id,
                Slot {
                    phase,
                    target,
                    failures: 0,
                },
            );
        }
    }

    /// Adds the instance with `config`; it then has `restart_threshold` to be RUNNING.
    fn launch(
        &self,
        instance: u32,
        config: ConfigKey,
        now_ms: i64,
        actions: &mut Vec<UpdateAction>,
    ) -> Phase {
        actions.push(UpdateAction::Add { instance, config });
        Phase::Launched {
            deadline_ms: now_ms.saturating_add(self.threshold_ms()),
            running_since: None,
            healthy_since: None,
        }
    }

    fn wake_at(&self) -> Option<i64> {
        if !matches!(
            self.status,
            UpdateStatus::RollingForward | UpdateStatus::RollingBack
        ) {
            return None;
        }
        self.in_flight
            .values()
            .filter_map(|slot| match slot.phase {
                Phase::Killing { deadline_ms } => Some(deadline_ms),
                Phase::Launched {
                    deadline_ms,
                    running_since,
                    healthy_since,
                } => Some(
                    self.ready_since(running_since, healthy_since)
                        .map_or(deadline_ms, |ready| ready.saturating_add(self.watch_ms())),
                ),
                Phase::Down | Phase::AttemptFailed => None,
            })
            .min()
    }
}

fn validate(
    settings: &UpdateSettings,
    instance_count: u32,
    health: Option<&HealthCheckTiming>,
    dedicated: bool,
) -> Result<(), UpdateError> {
    if settings.batch_size == 0 {
        return Err(UpdateError::ZeroBatchSize);
    }
    if settings.restart_threshold == 0 {
        return Err(UpdateError::ZeroRestartThreshold);
    }
    if settings.watch_secs == 0 {
        return Err(UpdateError::ZeroWatchSecs);
    }
    if instance_count == 0 {
        return Err(UpdateError::NoInstances);
    }
    if settings.max_total_failures >= instance_count {
        return Err(UpdateError::TooManyTolerated {
            max_total_failures: settings.max_total_failures,
            instance_count,
        });
    }
    let needed = instance_count / 50;
    if dedicated && settings.max_total_failures < needed {
        return Err(UpdateError::DedicatedTooStrict {
            max_total_failures: settings.max_total_failures,
            needed,
            instance_count,
        });
    }
    if let Some(health) = health {
        let needed = health.initial_interval_secs
            + f64::from(health.max_consecutive_failures) * health.interval_secs;
        if f64::from(settings.watch_secs) <= needed {
            return Err(UpdateError::WatchShorterThanHealthChecks {
                watch_secs: settings.watch_secs,
                needed,
                initial_interval_secs: health.initial_interval_secs,
                interval_secs: health.interval_secs,
                max_consecutive_failures: health.max_consecutive_failures,
            });
        }
    }
    Ok(())
}
