//! The scheduler's logic, without I/O: requests and ticks come in with the current time, state
//! changes go out as [`Op`]s that the service makes durable before it answers.
//!
//! Every task state change goes through [`aurora_core::transition`]; this module only applies
//! the side effects it returns. Placement, preemption, quota and the timing rules of the
//! lifecycle are pure functions of `aurora-core`; this module feeds them a view and applies
//! their plans.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use aurora_core::api::{
    AcquireLockRequest, AddInstancesRequest, AddInstancesResponse, CreateJobRequest,
    CreateJobResponse, ErrorCode, ExecutorTaskState, ExecutorWork, HeartbeatRequest, JobSummary,
    JobsResponse, KillRequest, KillResponse, Lock, LockValidation, LocksResponse,
    MaintenanceResponse, QuotaResponse, RegisterExecutorRequest, ReleaseLockRequest,
    RestartRequest, RestartResponse, SetQuotaRequest, StatusUpdate, TasksResponse,
};
use aurora_core::{
    AssignedTask, ClusterView, JobConfiguration, JobKey, LifecycleConfig, MaintenanceMode,
    PlacementConfig, PlacementHost, PreemptionInput, ResourceAggregate, ScheduleStatus,
    ScheduledTask, SharedTaskConfig, SideEffects, TaskConfig, TaskEvent, TaskFacts, TaskId,
    TaskTarget, Transition, add_default_constraints, check_quota, consumes_quota, find_preemption,
    flapping_penalty_ms, is_transient, transient_state_expired, transition, validate_dedicated,
};

use crate::RequestError;
use crate::state::State;
use crate::storage::{HostRecord, Op, StateSnapshot};

/// The most instances one job may have, as in the original.
pub(crate) const MAX_TASKS_PER_JOB: u32 = 4000;
/// The longest task id the original accepts.
const MAX_TASK_ID_LEN: usize = 165;
/// How many preemption searches one scheduling round may run.
const MAX_PREEMPTION_SEARCHES_PER_ROUND: usize = 16;
/// How far back a flapping penalty looks (the penalty is capped long before).
const MAX_ANCESTORS_CONSIDERED: usize = 32;

/// Settings the logic depends on.
#[derive(Debug, Clone)]
pub(crate) struct EngineConfig {
    pub(crate) cluster: String,
    pub(crate) hostname: String,
    pub(crate) heartbeat_interval_ms: u64,
    pub(crate) executor_timeout_ms: u64,
    pub(crate) lifecycle: LifecycleConfig,
    pub(crate) placement: PlacementConfig,
    pub(crate) kill_retry_initial_ms: u64,
    pub(crate) kill_retry_max_ms: u64,
    pub(crate) preemption_delay_ms: u64,
    pub(crate) history: HistoryConfig,
}

/// How long ended tasks are kept, after the original's `history_*` settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct HistoryConfig {
    /// Ended tasks older than this are removed (original: 2 days).
    pub(crate) prune_threshold_ms: i64,
    /// At most this many ended tasks are kept per job (original: 100).
    pub(crate) max_per_job: usize,
    /// Ended tasks younger than this are always kept (original: 1 hour).
    pub(crate) min_retention_ms: i64,
    /// How often to look, in milliseconds.
    pub(crate) interval_ms: i64,
}

impl Default for HistoryConfig {
    fn default() -> HistoryConfig {
        HistoryConfig {
            prune_threshold_ms: 2 * 24 * 3_600_000,
            max_per_job: 100,
            min_retention_ms: 3_600_000,
            interval_ms: 60_000,
        }
    }
}

impl EngineConfig {
    #[cfg(test)]
    pub(crate) fn for_tests() -> EngineConfig {
        EngineConfig {
            cluster: "local".into(),
            hostname: "sched".into(),
            heartbeat_interval_ms: 500,
            executor_timeout_ms: 10_000,
            // No flapping unless a test asks for it.
            lifecycle: LifecycleConfig {
                flapping_threshold_ms: 0,
                ..LifecycleConfig::default()
            },
            placement: PlacementConfig::NO_OVERHEAD,
            kill_retry_initial_ms: 1_000,
            kill_retry_max_ms: 8_000,
            preemption_delay_ms: 0,
            history: HistoryConfig::default(),
        }
    }
}

/// Counters exported on `/vars`.
#[derive(Debug, Clone, Default)]
pub(crate) struct Counters {
    pub(crate) placements: u64,
    pub(crate) illegal_transitions: u64,
    pub(crate) tasks_rescheduled: u64,
    pub(crate) tasks_throttled: u64,
    pub(crate) executors_timed_out: u64,
    pub(crate) jobs_created: u64,
    pub(crate) transient_timeouts: u64,
    pub(crate) kills_sent: u64,
    pub(crate) kill_retries: u64,
    pub(crate) reconciled_lost: u64,
    pub(crate) preemptions: u64,
    pub(crate) preemption_searches: u64,
    pub(crate) tasks_pruned: u64,
}

/// Resources summed exactly: cpu in nano-cores, so that adding and removing tasks in any order
/// leaves no rounding behind.
#[derive(Debug, Default, Clone, Copy)]
struct Totals {
    nano_cpu: i128,
    ram_bytes: i128,
    disk_bytes: i128,
}

impl Totals {
    fn aggregate(self) -> ResourceAggregate {
        let bytes = |b: i128| u64::try_from(b.max(0)).unwrap_or(u64::MAX);
        ResourceAggregate {
            cpu: self.nano_cpu as f64 / 1e9,
            ram_bytes: bytes(self.ram_bytes),
            disk_bytes: bytes(self.disk_bytes),
        }
    }
}

/// What the active tasks of each role hold, production (`[0]`) and not (`[1]`), kept up to
/// date as tasks are saved and removed so that a quota check does not sum every task.
#[derive(Debug, Default)]
struct Usage(HashMap<String, [Totals; 2]>);

impl Usage {
    fn of(state: &State) -> Usage {
        let mut usage = Usage::default();
        for t in state.tasks.values() {
            usage.add(t, 1);
        }
        usage
    }

    /// Adds (`sign` 1) or takes away (-1) what `task` holds, if it is active.
    fn add(&mut self, task: &ScheduledTask, sign: i128) {
        if !task.status.is_active() {
            return;
        }
        let config = &task.assigned_task.task;
        let role = task.job().role();
        if !self.0.contains_key(role) {
            self.0.insert(role.to_owned(), Default::default());
        }
        let Some(totals) = self.0.get_mut(role) else {
            return;
        };
        let t = &mut totals[usize::from(!consumes_quota(config))];
        let r = &config.resources;
        t.nano_cpu += sign * (r.cpu * 1e9).round() as i128;
        t.ram_bytes += sign * i128::from(r.ram_bytes);
        t.disk_bytes += sign * i128::from(r.disk_bytes);
    }

    fn of_role(&self, role: &str) -> (ResourceAggregate, ResourceAggregate) {
        let [prod, other] = self.0.get(role).copied().unwrap_or_default();
        (prod.aggregate(), other.aggregate())
    }
}

/// When to deliver a kill again.
#[derive(Debug, Clone, Copy)]
struct KillRetry {
    next_ms: i64,
    interval_ms: i64,
}

/// The state plus what is known only in memory (executor liveness, kills to deliver).
pub(crate) struct Engine {
    pub(crate) state: State,
    config: EngineConfig,
    /// Hosts whose executor is alive, with the time they were last heard from.
    live: HashMap<Arc<str>, i64>,
    /// Kills to deliver that the task's state does not imply (zombies, unknown tasks), by
    /// host; dropped once the executor stops reporting the task.
    kill_requests: BTreeMap<String, BTreeSet<TaskId>>,
    /// When each kill is due again, by host.
    kill_retries: HashMap<String, HashMap<TaskId, KillRetry>>,
    /// Why each pending task is not placed, from the last scheduling round.
    pub(crate) pending_reasons: BTreeMap<TaskId, String>,
    /// When each THROTTLED task becomes PENDING, and why it waits.
    throttled: HashMap<TaskId, (i64, String)>,
    /// Pending tasks with victims on their way out, and the victims.
    preempting_for: HashMap<TaskId, Vec<TaskId>>,
    /// The host each of those pending tasks waits for; nobody else is placed there.
    reservations: BTreeMap<TaskId, String>,
    /// When ended tasks were last pruned.
    last_prune_ms: i64,
    /// The hosts placement sees; rebuilt when executors or maintenance change.
    hosts_cache: Option<Arc<Vec<PlacementHost>>>,
    /// The live hosts with the resources their tasks hold, kept up to date task by task as
    /// ops are committed; `None` when hosts changed and it must be rebuilt.
    view: Option<ClusterView>,
    /// What the active tasks of each role hold, for quota checks.
    usage: Usage,
    /// No task in a transient state expires before this time (ms); checks until then are
    /// skipped, so a tick does not scan every ASSIGNED task.
    transient_due_ms: i64,
    /// No live executor times out before this time (ms).
    executors_due_ms: i64,
    batch: Vec<Op>,
    nonce: Box<dyn FnMut() -> String + Send>,
    pub(crate) counters: Counters,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("tasks", &self.state.tasks.len())
            .field("live", &self.live)
            .finish_non_exhaustive()
    }
}

fn invalid(message: impl Into<String>) -> RequestError {
    RequestError::new(ErrorCode::InvalidRequest, message)
}

fn ms(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl Engine {
    /// Wraps recovered state; every known host counts as alive from `now` so that executors
    /// get a full timeout to come back after a scheduler restart.
    pub(crate) fn new(state: State, config: EngineConfig, now: i64) -> Engine {
        let live = state.hosts.keys().map(|h| (Arc::clone(h), now)).collect();
        let usage = Usage::of(&state);
        let mut engine = Engine {
            state,
            config,
            live,
            kill_requests: BTreeMap::new(),
            kill_retries: HashMap::new(),
            pending_reasons: BTreeMap::new(),
            throttled: HashMap::new(),
            preempting_for: HashMap::new(),
            reservations: BTreeMap::new(),
            last_prune_ms: now,
            hosts_cache: None,
            view: None,
            usage,
            transient_due_ms: i64::MIN,
            executors_due_ms: i64::MIN,
            batch: Vec::new(),
            nonce: Box::new(|| uuid::Uuid::new_v4().to_string()),
            counters: Counters::default(),
        };
        engine.recompute_throttles();
        engine
    }

    /// Rebuilds the release times of THROTTLED tasks from their ancestry (after recovery).
    fn recompute_throttles(&mut self) {
        self.throttled.clear();
        let throttled: Vec<Arc<ScheduledTask>> = self
            .state
            .in_status(ScheduleStatus::Throttled)
            .cloned()
            .collect();
        for t in throttled {
            let since = t.task_events.last().map_or(0, |e| e.timestamp_ms);
            let penalty = self.penalty_after(t.ancestor_id.as_ref());
            self.throttled
                .insert(t.id().clone(), (since + penalty, throttle_reason(penalty)));
        }
    }

    #[cfg(test)]
    pub(crate) fn with_nonce(mut self, nonce: impl FnMut() -> String + Send + 'static) -> Engine {
        self.nonce = Box::new(nonce);
        self
    }

    /// The ops recorded since the last call, to be made durable.
    pub(crate) fn take_batch(&mut self) -> Vec<Op> {
        std::mem::take(&mut self.batch)
    }

    pub(crate) fn live_executors(&self) -> usize {
        self.live.len()
    }

    fn commit(&mut self, op: Op) {
        self.track(&op);
        let restore = matches!(op, Op::Restore { .. });
        self.state.commit(op, &mut self.batch);
        if restore {
            self.usage = Usage::of(&self.state);
        }
    }

    /// Keeps the placement view in step with an op about to be applied: a task record that
    /// replaces another gives back what the old one held and charges its own.
    fn track(&mut self, op: &Op) {
        match op {
            Op::SaveTasks { tasks } => {
                let timeout = self.config.lifecycle.transient_state_timeout_ms;
                // An op may save one task twice: the second replaces the first.
                let mut earlier: HashMap<&TaskId, &ScheduledTask> = HashMap::new();
                for t in tasks {
                    let old = earlier
                        .get(t.id())
                        .copied()
                        .or_else(|| self.state.tasks.get(t.id()).map(|o| &**o));
                    if let Some(old) = old {
                        self.usage.add(old, -1);
                        if let Some(view) = &mut self.view {
                            view.release(old);
                        }
                    }
                    self.usage.add(t, 1);
                    if let Some(view) = &mut self.view {
                        view.charge(t);
                    }
                    if is_transient(t.status)
                        && let Some(e) = t.task_events.last()
                    {
                        let due = e.timestamp_ms.saturating_add(timeout);
                        self.transient_due_ms = self.transient_due_ms.min(due);
                    }
                    if tasks.len() > 1 {
                        earlier.insert(t.id(), t);
                    }
                }
            }
            Op::RemoveTasks { ids } => {
                let mut removed: BTreeSet<&TaskId> = BTreeSet::new();
                for id in ids {
                    if !removed.insert(id) {
                        continue;
                    }
                    if let Some(old) = self.state.tasks.get(id) {
                        self.usage.add(old, -1);
                        if let Some(view) = &mut self.view {
                            view.release(old);
                        }
                    }
                }
            }
            Op::Restore { .. } => {
                self.transient_due_ms = i64::MIN;
                self.hosts_changed();
            }
            Op::SaveHost { .. } | Op::RemoveHost { .. } | Op::SaveMaintenance { .. } => {
                self.hosts_changed();
            }
            _ => {}
        }
    }

    /// Forgets what placement knows of the hosts; it is rebuilt at the next round.
    fn hosts_changed(&mut self) {
        self.hosts_cache = None;
        self.view = None;
    }

    /// Why a task is not running yet, if it is waiting.
    pub(crate) fn reason(&self, id: &TaskId) -> Option<&str> {
        self.pending_reasons
            .get(id)
            .or_else(|| self.throttled.get(id).map(|(_, r)| r))
            .map(String::as_str)
    }

    /// Every waiting task with its reason.
    pub(crate) fn all_reasons(&self) -> BTreeMap<TaskId, String> {
        let mut all = self.pending_reasons.clone();
        for (id, (_, r)) in &self.throttled {
            all.insert(id.clone(), r.clone());
        }
        all
    }

    // ---- client requests ----

    fn job_key(&self, role: &str, environment: &str, name: &str) -> Result<JobKey, RequestError> {
        JobKey::new(&self.config.cluster, role, environment, name)
            .map_err(|e| invalid(e.to_string()))
    }

    fn existing_job(&self, key: &JobKey) -> Result<Arc<JobConfiguration>, RequestError> {
        self.state.jobs.get(key).cloned().ok_or_else(|| {
            RequestError::new(
                ErrorCode::NotFound,
                format!(
                    "no job {key} on this scheduler; list jobs with GET /api/jobs?role={}",
                    key.role()
                ),
            )
        })
    }

    /// Problems with a task configuration, each naming the bad value.
    fn task_problems(&self, task: &TaskConfig, key: &JobKey) -> Vec<String> {
        let mut problems = Vec::new();
        if task.job != *key {
            problems.push(format!(
                "task_config.job is {} but the job key is {key}; they must be the same",
                task.job
            ));
        }
        let res = &task.resources;
        if !(res.cpu.is_finite() && res.cpu > 0.0) {
            problems.push(format!("cpu {} must be a positive number", res.cpu));
        }
        if res.ram_bytes == 0 {
            problems.push("ram must be positive".to_owned());
        }
        if res.disk_bytes == 0 {
            problems.push("disk must be positive".to_owned());
        }
        if let Err(e) = validate_dedicated(task) {
            problems.push(e.to_string());
        }
        problems
    }

    /// Production resources the active tasks of a role use, and non-production ones.
    fn consumption(&self, role: &str) -> (ResourceAggregate, ResourceAggregate) {
        self.usage.of_role(role)
    }

    /// Checks that `n` more tasks of `task` fit the role's quota (production only).
    fn check_quota(&self, task: &TaskConfig, n: u32) -> Result<(), RequestError> {
        if !consumes_quota(task) {
            return Ok(());
        }
        let role = task.job.role();
        let quota = self.state.quotas.get(role).copied().unwrap_or_default();
        let (used, _) = self.consumption(role);
        let request = ResourceAggregate::of(&task.resources).times(n);
        check_quota(role, &quota, &used, &request).map_err(|e| invalid(e.to_string()))
    }

    fn new_task(&mut self, config: &SharedTaskConfig, instance: u32, now: i64) -> ScheduledTask {
        ScheduledTask {
            assigned_task: AssignedTask {
                task_id: TaskId::generate(now, &config.job, instance, &(self.nonce)()),
                slave_host: None,
                instance_id: instance,
                task: config.clone(),
                assigned_ports: BTreeMap::new(),
            },
            status: ScheduleStatus::Init,
            failure_count: 0,
            ancestor_id: None,
            task_events: Vec::new(),
        }
    }

    pub(crate) fn create_job(
        &mut self,
        req: CreateJobRequest,
        now: i64,
    ) -> Result<CreateJobResponse, RequestError> {
        let mut job = req.job;
        let key = job.key.clone();
        let mut problems = Vec::new();
        if key.cluster() != self.config.cluster {
            problems.push(format!(
                "job key {key} names cluster {:?} but this scheduler serves cluster {:?}; use a job key in {}",
                key.cluster(),
                self.config.cluster,
                self.config.cluster
            ));
        }
        problems.extend(self.task_problems(&job.task_config, &key));
        if !(1..=MAX_TASKS_PER_JOB).contains(&job.instance_count) {
            problems.push(format!(
                "instance_count {} is out of range; use 1 to {MAX_TASKS_PER_JOB}",
                job.instance_count
            ));
        }
        if job.cron_schedule.is_some() {
            problems.push(
                "cron jobs are not supported by this scheduler yet; remove cron_schedule"
                    .to_owned(),
            );
        }
        let longest = TaskId::generate(
            now,
            &key,
            job.instance_count.saturating_sub(1),
            "00000000-0000-0000-0000-000000000000",
        );
        if longest.as_str().len() > MAX_TASK_ID_LEN {
            problems.push(format!(
                "task ids of this job would be {} characters long, over the limit of {MAX_TASK_ID_LEN}; use shorter role, environment or job names",
                longest.as_str().len()
            ));
        }
        if !problems.is_empty() {
            return Err(invalid(format!(
                "invalid job {key}: {}",
                problems.join("; ")
            )));
        }
        if self.state.job_is_active(&key) {
            return Err(RequestError::new(
                ErrorCode::Conflict,
                format!(
                    "job {key} already exists and has active tasks; kill it first or pick another name"
                ),
            ));
        }
        self.check_quota(&job.task_config, job.instance_count)?;
        add_default_constraints(&mut job.task_config);
        // Every instance shares one copy of the config, the job's.
        job.task_config = self.state.configs.intern(job.task_config);
        let job = Arc::new(job);
        self.commit(Op::SaveJob {
            job: Arc::clone(&job),
        });
        let mut tasks = Vec::with_capacity(job.instance_count as usize);
        for instance in 0..job.instance_count {
            let task = self.new_task(&job.task_config, instance, now);
            if let Some(t) = self.initial(task, 0, now) {
                tasks.push(Arc::new(t));
            }
        }
        let task_ids: Vec<TaskId> = tasks.iter().map(|t| t.id().clone()).collect();
        self.commit(Op::SaveTasks { tasks });
        self.counters.jobs_created += 1;
        Ok(CreateJobResponse {
            message: format!(
                "{} new tasks pending for job {}",
                task_ids.len(),
                key.path_in_cluster()
            ),
            task_ids,
        })
    }

    pub(crate) fn add_instances(
        &mut self,
        role: &str,
        environment: &str,
        name: &str,
        req: AddInstancesRequest,
        now: i64,
    ) -> Result<AddInstancesResponse, RequestError> {
        let key = self.job_key(role, environment, name)?;
        let job = self.existing_job(&key)?;
        self.check_lock(&key, req.lock_token.as_deref(), "add instances to")?;
        let mut config = req.task_config;
        let mut problems = self.task_problems(&config, &key);
        if req.instances.is_empty() {
            problems.push("instances is empty; name the instance ids to add".to_owned());
        }
        if let Some(bad) = req.instances.iter().find(|i| **i >= MAX_TASKS_PER_JOB) {
            problems.push(format!(
                "instance {bad} is out of range; use 0 to {}",
                MAX_TASKS_PER_JOB - 1
            ));
        }
        if !problems.is_empty() {
            return Err(invalid(format!(
                "invalid instances for job {key}: {}",
                problems.join("; ")
            )));
        }
        let active: BTreeSet<u32> = self
            .state
            .tasks_of(&key)
            .filter(|t| t.status.is_active() && req.instances.contains(&t.instance()))
            .map(|t| t.instance())
            .collect();
        if !active.is_empty() {
            let list: Vec<String> = active.iter().map(u32::to_string).collect();
            return Err(RequestError::new(
                ErrorCode::Conflict,
                format!(
                    "instances {} of job {key} are active; kill them first or use other instance ids",
                    list.join(", ")
                ),
            ));
        }
        let n = u32::try_from(req.instances.len()).unwrap_or(u32::MAX);
        self.check_quota(&config, n)?;
        add_default_constraints(&mut config);
        let config = self.state.configs.intern(config.into());
        let highest = req.instances.iter().max().copied().unwrap_or(0);
        if highest >= job.instance_count {
            let mut updated = (*job).clone();
            updated.instance_count = highest + 1;
            self.commit(Op::SaveJob {
                job: Arc::new(updated),
            });
        }
        let mut tasks = Vec::new();
        for &instance in &req.instances {
            let task = self.new_task(&config, instance, now);
            if let Some(t) = self.initial(task, 0, now) {
                tasks.push(Arc::new(t));
            }
        }
        let task_ids: Vec<TaskId> = tasks.iter().map(|t| t.id().clone()).collect();
        self.commit(Op::SaveTasks { tasks });
        Ok(AddInstancesResponse {
            message: format!(
                "{} new tasks pending for job {}",
                task_ids.len(),
                key.path_in_cluster()
            ),
            task_ids,
        })
    }

    /// Moves the matching active tasks of a job towards `target`; returns the ids moved.
    fn move_job_tasks(
        &mut self,
        key: &JobKey,
        instances: Option<&BTreeSet<u32>>,
        filter: impl Fn(ScheduleStatus) -> bool,
        target: ScheduleStatus,
        message: &str,
        now: i64,
    ) -> Vec<TaskId> {
        let ids: Vec<TaskId> = self
            .state
            .tasks_of(key)
            .filter(|t| t.status.is_active() && filter(t.status))
            .filter(|t| instances.is_none_or(|i| i.contains(&t.instance())))
            .map(|t| t.id().clone())
            .collect();
        let mut moved = Vec::new();
        for id in ids {
            if self
                .change(
                    &id,
                    TaskTarget::Status(target),
                    Some(message.to_owned()),
                    now,
                    |_| {},
                )
                .is_legal()
            {
                moved.push(id);
            }
        }
        moved
    }

    pub(crate) fn kill_job(
        &mut self,
        role: &str,
        environment: &str,
        name: &str,
        req: KillRequest,
        now: i64,
    ) -> Result<KillResponse, RequestError> {
        let key = self.job_key(role, environment, name)?;
        self.existing_job(&key)?;
        self.check_lock(&key, req.lock_token.as_deref(), "kill")?;
        let message = req
            .message
            .clone()
            .unwrap_or_else(|| "Killed by user request".to_owned());
        let killed = self.move_job_tasks(
            &key,
            req.instances.as_ref(),
            |_| true,
            ScheduleStatus::Killing,
            &message,
            now,
        );
        let message = if killed.is_empty() {
            format!("no active tasks of job {} to kill", key.path_in_cluster())
        } else {
            format!(
                "killing {} tasks of job {}",
                killed.len(),
                key.path_in_cluster()
            )
        };
        Ok(KillResponse { message, killed })
    }

    pub(crate) fn restart(
        &mut self,
        role: &str,
        environment: &str,
        name: &str,
        req: RestartRequest,
        now: i64,
    ) -> Result<RestartResponse, RequestError> {
        let key = self.job_key(role, environment, name)?;
        self.existing_job(&key)?;
        self.check_lock(&key, req.lock_token.as_deref(), "restart")?;
        let restarted = self.move_job_tasks(
            &key,
            req.instances.as_ref(),
            |s| {
                matches!(
                    s,
                    ScheduleStatus::Assigned | ScheduleStatus::Starting | ScheduleStatus::Running
                )
            },
            ScheduleStatus::Restarting,
            "Restarting by user request",
            now,
        );
        Ok(RestartResponse {
            message: format!(
                "restarting {} tasks of job {}",
                restarted.len(),
                key.path_in_cluster()
            ),
            restarted,
        })
    }

    pub(crate) fn tasks(&self, query: &TaskQuery) -> TasksResponse {
        let matching: Vec<&Arc<ScheduledTask>> = match query.job_key(&self.config.cluster) {
            Some(key) => self
                .state
                .tasks_of(&key)
                .filter(|t| query.matches(t))
                .collect(),
            None => self
                .state
                .tasks
                .values()
                .filter(|t| query.matches(t))
                .collect(),
        };
        let mut tasks: Vec<ScheduledTask> = matching.into_iter().map(|t| (**t).clone()).collect();
        tasks.sort_by(|a, b| {
            (a.job(), a.instance(), first_event(a), a.id()).cmp(&(
                b.job(),
                b.instance(),
                first_event(b),
                b.id(),
            ))
        });
        let pending_reasons = tasks
            .iter()
            .filter_map(|t| self.reason(t.id()).map(|r| (t.id().clone(), r.to_owned())))
            .collect();
        TasksResponse {
            tasks,
            pending_reasons,
        }
    }

    pub(crate) fn jobs(&self, role: Option<&str>) -> JobsResponse {
        let jobs = self
            .state
            .jobs
            .values()
            .filter(|j| role.is_none_or(|r| j.key.role() == r))
            .map(|j| {
                let mut task_counts: BTreeMap<ScheduleStatus, u32> = BTreeMap::new();
                for t in self.state.tasks_of(&j.key) {
                    *task_counts.entry(t.status).or_default() += 1;
                }
                JobSummary {
                    key: j.key.clone(),
                    instance_count: j.instance_count,
                    task_counts,
                }
            })
            .collect();
        JobsResponse { jobs }
    }

    // ---- quota ----

    pub(crate) fn quota(&self, role: &str) -> QuotaResponse {
        let (prod, other) = self.consumption(role);
        QuotaResponse {
            role: role.to_owned(),
            quota: self.state.quotas.get(role).copied().unwrap_or_default(),
            prod_consumption: prod,
            non_prod_consumption: other,
        }
    }

    pub(crate) fn set_quota(
        &mut self,
        role: &str,
        req: SetQuotaRequest,
    ) -> Result<QuotaResponse, RequestError> {
        let mut problems = Vec::new();
        if role.is_empty()
            || !role
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            problems.push(format!("role {role:?} is not a valid role name"));
        }
        if !(req.cpu.is_finite() && req.cpu >= 0.0) {
            problems.push(format!("cpu {} must be zero or more", req.cpu));
        }
        if req.ram_bytes < 0 {
            problems.push(format!("ram_bytes {} must be zero or more", req.ram_bytes));
        }
        if req.disk_bytes < 0 {
            problems.push(format!(
                "disk_bytes {} must be zero or more",
                req.disk_bytes
            ));
        }
        if !problems.is_empty() {
            return Err(invalid(format!("invalid quota: {}", problems.join("; "))));
        }
        let quota = ResourceAggregate {
            cpu: req.cpu,
            ram_bytes: req.ram_bytes.unsigned_abs(),
            disk_bytes: req.disk_bytes.unsigned_abs(),
        };
        self.commit(Op::SaveQuota {
            role: role.to_owned(),
            quota,
        });
        Ok(self.quota(role))
    }

    // ---- locks ----

    /// Refuses a change to a locked job unless `token` is the lock's, and a token for a job
    /// that is not locked (its holder lost the lock, e.g. to `cancel_update`, and must stop).
    ///
    /// Every mutation an update could conflict with goes through here with the caller's
    /// token; the scheduler-driven updater will pass the token of the lock it holds, so a
    /// cancelled update is refused like any other stale holder.
    pub(crate) fn check_lock(
        &self,
        key: &JobKey,
        token: Option<&str>,
        action: &str,
    ) -> Result<(), RequestError> {
        match (self.state.locks.get(key), token) {
            (None, None) => Ok(()),
            (Some(lock), Some(t)) if lock.token == t => Ok(()),
            (Some(lock), given) => Err(RequestError::new(
                ErrorCode::Locked,
                format!(
                    "cannot {action} job {key}: it is {}{}; pass its lock token, or release it with `aurora cancel_update {key}` if the update is abandoned",
                    describe_lock(lock),
                    if given.is_some() {
                        " and the lock token given is not its token"
                    } else {
                        ""
                    }
                ),
            )),
            (None, Some(_)) => Err(RequestError::new(
                ErrorCode::Locked,
                format!(
                    "cannot {action} job {key}: a lock token was given but the job is not locked (the lock was released, e.g. by `aurora cancel_update`); retry without a lock token or acquire the lock again"
                ),
            )),
        }
    }

    /// `POST .../lock`: locks a job for `req.user`; refused while any lock is held.
    pub(crate) fn acquire_lock(
        &mut self,
        role: &str,
        environment: &str,
        name: &str,
        req: AcquireLockRequest,
        now: i64,
    ) -> Result<Lock, RequestError> {
        let key = self.job_key(role, environment, name)?;
        self.existing_job(&key)?;
        if req.user.trim().is_empty() {
            return Err(invalid(format!(
                "user is empty; name who locks job {key}, e.g. {{\"user\": \"alice\"}}"
            )));
        }
        self.lock_job(key, req.user, req.message, now)
    }

    /// Takes the lock of an existing job; the entry point for the scheduler-driven updater.
    pub(crate) fn lock_job(
        &mut self,
        key: JobKey,
        user: String,
        message: Option<String>,
        now: i64,
    ) -> Result<Lock, RequestError> {
        if let Some(held) = self.state.locks.get(&key) {
            return Err(RequestError::new(
                ErrorCode::Locked,
                format!(
                    "job {key} is already {}; wait for that update to finish, or release the lock with `aurora cancel_update {key}`",
                    describe_lock(held)
                ),
            ));
        }
        let lock = Lock {
            key,
            token: (self.nonce)(),
            user,
            timestamp_ms: now,
            message: message.filter(|m| !m.trim().is_empty()),
        };
        self.commit(Op::SaveLock { lock: lock.clone() });
        Ok(lock)
    }

    /// `POST .../unlock`: releases a job's lock; returns the lock released.
    pub(crate) fn release_lock(
        &mut self,
        role: &str,
        environment: &str,
        name: &str,
        req: ReleaseLockRequest,
    ) -> Result<Lock, RequestError> {
        let key = self.job_key(role, environment, name)?;
        let Some(lock) = self.state.locks.get(&key).cloned() else {
            return Err(RequestError::new(
                ErrorCode::NotFound,
                format!(
                    "job {key} is not locked, so there is nothing to release; list locks with GET /api/locks"
                ),
            ));
        };
        if req.validation == LockValidation::Checked
            && req.token.as_deref() != Some(lock.token.as_str())
        {
            let why = match &req.token {
                None => "no token was given",
                Some(_) => "the token given is not the lock's",
            };
            return Err(RequestError::new(
                ErrorCode::Locked,
                format!(
                    "cannot release the lock of job {key}: it is {}, and {why}; pass its token, or release it with validation UNCHECKED (`aurora cancel_update {key}`)",
                    describe_lock(&lock)
                ),
            ));
        }
        self.commit(Op::RemoveLock { key });
        Ok(lock)
    }

    /// `GET /api/locks`: every lock, sorted by job.
    pub(crate) fn locks(&self) -> LocksResponse {
        LocksResponse {
            locks: self.state.locks.values().cloned().collect(),
        }
    }

    // ---- maintenance ----

    pub(crate) fn maintenance(&self, hosts: Option<&[String]>) -> MaintenanceResponse {
        let hosts = match hosts {
            Some(list) => list
                .iter()
                .map(|h| (h.clone(), self.state.maintenance_of(h)))
                .collect(),
            None => self.state.maintenance.clone(),
        };
        MaintenanceResponse { hosts }
    }

    /// Sets hosts to a maintenance mode; draining moves their tasks off.
    pub(crate) fn set_maintenance(
        &mut self,
        hosts: &[String],
        mode: MaintenanceMode,
        now: i64,
    ) -> Result<MaintenanceResponse, RequestError> {
        if hosts.is_empty() || hosts.iter().any(|h| h.trim().is_empty()) {
            return Err(invalid(
                "hosts is empty or names an empty host; send {\"hosts\": [\"host1\", ...]}",
            ));
        }
        for host in hosts {
            if self.state.maintenance_of(host) != mode {
                self.commit(Op::SaveMaintenance {
                    host: host.clone(),
                    mode,
                });
            }
            if mode == MaintenanceMode::Draining {
                let ids: Vec<TaskId> = self
                    .state
                    .tasks_on(host)
                    .filter(|t| {
                        matches!(
                            t.status,
                            ScheduleStatus::Assigned
                                | ScheduleStatus::Starting
                                | ScheduleStatus::Running
                        )
                    })
                    .map(|t| t.id().clone())
                    .collect();
                for id in ids {
                    self.change(
                        &id,
                        TaskTarget::Status(ScheduleStatus::Draining),
                        Some(format!("Draining host {host} for maintenance")),
                        now,
                        |_| {},
                    );
                }
            }
        }
        self.hosts_changed();
        self.update_drained();
        Ok(self.maintenance(Some(hosts)))
    }

    /// DRAINING hosts without tasks become DRAINED.
    fn update_drained(&mut self) {
        let done: Vec<String> = self
            .state
            .maintenance
            .iter()
            .filter(|(h, m)| {
                **m == MaintenanceMode::Draining && self.state.tasks_on(h).next().is_none()
            })
            .map(|(h, _)| h.clone())
            .collect();
        for host in done {
            self.commit(Op::SaveMaintenance {
                host,
                mode: MaintenanceMode::Drained,
            });
        }
    }

    // ---- backups ----

    /// Replaces the whole state with a backup; executors keep their liveness and re-sync on
    /// their next heartbeat.
    pub(crate) fn restore(&mut self, snapshot: StateSnapshot, now: i64) {
        self.commit(Op::Restore {
            state: Box::new(snapshot),
        });
        self.kill_requests.clear();
        self.kill_retries.clear();
        self.pending_reasons.clear();
        self.preempting_for.clear();
        self.reservations.clear();
        self.hosts_changed();
        for h in self.state.hosts.keys() {
            self.live.entry(Arc::clone(h)).or_insert(now);
        }
        self.executors_due_ms = i64::MIN;
        self.recompute_throttles();
    }

    // ---- executor requests ----

    pub(crate) fn register(
        &mut self,
        req: RegisterExecutorRequest,
        now: i64,
    ) -> Result<ExecutorWork, RequestError> {
        let mut problems = Vec::new();
        if req.host.trim().is_empty() {
            problems.push("host is empty; send the machine's host name".to_owned());
        }
        let r = &req.resources;
        if !(r.cpu.is_finite() && r.cpu >= 0.0) {
            problems.push(format!("cpu {} must be zero or more", r.cpu));
        }
        if r.ports.begin > r.ports.end {
            problems.push(format!(
                "port range {}-{} is reversed; send begin <= end",
                r.ports.begin, r.ports.end
            ));
        }
        if !problems.is_empty() {
            return Err(invalid(format!(
                "invalid executor registration: {}",
                problems.join("; ")
            )));
        }
        let mut attributes = req.attributes.clone();
        // `host: limit:1` is added to every job, and limit constraints need the attribute.
        attributes
            .entry("host".to_owned())
            .or_insert_with(|| BTreeSet::from([req.host.clone()]));
        let record = HostRecord {
            host: req.host.as_str().into(),
            attributes: attributes.into(),
            cpu: r.cpu,
            ram_bytes: r.ram_bytes,
            disk_bytes: r.disk_bytes,
            port_begin: r.ports.begin,
            port_end: r.ports.end,
        };
        if self.state.hosts.get(req.host.as_str()).map(|h| &**h) != Some(&record) {
            self.commit(Op::SaveHost { host: record });
            self.hosts_changed();
        }
        let due = now.saturating_add(ms(self.config.executor_timeout_ms));
        self.executors_due_ms = self.executors_due_ms.min(due);
        // Keyed by the record's own name, so that liveness costs no copy of it.
        let name = self
            .state
            .hosts
            .get_key_value(req.host.as_str())
            .map_or_else(|| Arc::from(req.host.as_str()), |(k, _)| Arc::clone(k));
        if self.live.insert(name, now).is_none() {
            self.hosts_changed();
        }
        // Reconcile what the executor holds (tasks it lacks are LOST), then place right away
        // so that the registration answer already carries work.
        self.reconcile(&req.host, &req.tasks, now);
        self.schedule(now);
        Ok(self.work(&req.host, &req.tasks, now))
    }

    pub(crate) fn heartbeat(
        &mut self,
        host: &str,
        req: &HeartbeatRequest,
        now: i64,
    ) -> Result<ExecutorWork, RequestError> {
        if !self.live.contains_key(host) || !self.state.hosts.contains_key(host) {
            return Err(RequestError::new(
                ErrorCode::NotFound,
                format!(
                    "executor {host:?} is not registered (or missed heartbeats and timed out); register again with POST /api/executors"
                ),
            ));
        }
        if let Some(seen) = self.live.get_mut(host) {
            *seen = now;
        }
        self.reconcile(host, &req.tasks, now);
        Ok(self.work(host, &req.tasks, now))
    }

    pub(crate) fn status(
        &mut self,
        host: &str,
        update: StatusUpdate,
        now: i64,
    ) -> Result<(), RequestError> {
        use ScheduleStatus::*;
        if !matches!(
            update.status,
            Starting | Running | Finished | Failed | Killed | Lost
        ) {
            return Err(invalid(format!(
                "status {} cannot be reported by an executor; report one of STARTING, RUNNING, FINISHED, FAILED, KILLED, LOST",
                update.status
            )));
        }
        let Some(task) = self.state.tasks.get(&update.task_id) else {
            // Unknown to the scheduler: whatever runs must stop.
            if !update.status.is_terminal() {
                self.request_kill(host, &update.task_id);
            }
            tracing::warn!(task = %update.task_id, host, "status update for an unknown task");
            return Ok(());
        };
        if let Some(assigned) = task.assigned_task.slave_host.as_deref()
            && assigned != host
        {
            return Err(RequestError::new(
                ErrorCode::Conflict,
                format!(
                    "task {} is assigned to {assigned}, not {host}; the executor on {host} should kill it",
                    update.task_id
                ),
            ));
        }
        self.change(
            &update.task_id,
            TaskTarget::Status(update.status),
            update.message,
            now,
            |_| {},
        );
        Ok(())
    }

    /// Reconciles what an executor reports with what the scheduler expects: reported states
    /// the scheduler missed are applied through the state machine, tasks the executor should
    /// hold but does not are LOST, and what it holds but should not run is killed.
    fn reconcile(&mut self, host: &str, reported: &[ExecutorTaskState], now: i64) {
        use ScheduleStatus::*;
        let mut extra = Vec::new();
        for r in reported {
            let Some(task) = self.state.tasks.get(&r.task_id) else {
                if !r.status.is_terminal() {
                    extra.push(r.task_id.clone());
                }
                continue;
            };
            if task.assigned_task.slave_host.as_deref() != Some(host) {
                if !r.status.is_terminal() {
                    extra.push(r.task_id.clone());
                }
                continue;
            }
            let reportable = matches!(
                r.status,
                Starting | Running | Finished | Failed | Killed | Lost
            );
            if reportable && r.status != task.status {
                let t = transition(task.status, TaskTarget::Status(r.status), &facts(task));
                if t.is_legal() {
                    self.change(
                        &r.task_id,
                        TaskTarget::Status(r.status),
                        Some(format!(
                            "{} as reported by the executor on {host}",
                            r.status
                        )),
                        now,
                        |_| {},
                    );
                }
            }
        }
        let held: BTreeSet<&TaskId> = reported.iter().map(|t| &t.task_id).collect();
        let missing: Vec<TaskId> = self
            .state
            .tasks_on(host)
            .filter(|t| t.status != Assigned && !held.contains(t.id()))
            .map(|t| t.id().clone())
            .collect();
        for id in missing {
            self.counters.reconciled_lost += 1;
            self.change(
                &id,
                TaskTarget::Status(Lost),
                Some(format!("the executor on {host} does not have this task")),
                now,
                |_| {},
            );
        }
        let requests = self.kill_requests.entry(host.to_owned()).or_default();
        requests.retain(|id| held.contains(id));
        requests.extend(extra);
        if requests.is_empty() {
            self.kill_requests.remove(host);
        }
    }

    /// What an executor should do, given what it reports to hold: launches of ASSIGNED tasks
    /// it lacks, and kills that are due (retried with a doubling interval until it confirms).
    fn work(&mut self, host: &str, reported: &[ExecutorTaskState], now: i64) -> ExecutorWork {
        let held: BTreeSet<&TaskId> = reported.iter().map(|t| &t.task_id).collect();
        let mut wanted: BTreeSet<TaskId> =
            self.kill_requests.get(host).cloned().unwrap_or_default();
        let mut launch = Vec::new();
        for t in self.state.tasks_on(host) {
            match t.status {
                ScheduleStatus::Assigned if !held.contains(t.id()) => {
                    launch.push(t.assigned_task.clone());
                }
                ScheduleStatus::Killing
                | ScheduleStatus::Preempting
                | ScheduleStatus::Restarting
                | ScheduleStatus::Draining => {
                    wanted.insert(t.id().clone());
                }
                _ => {}
            }
        }
        let initial = ms(self.config.kill_retry_initial_ms).max(1);
        let max = ms(self.config.kill_retry_max_ms).max(initial);
        let retries = self.kill_retries.entry(host.to_owned()).or_default();
        retries.retain(|id, _| wanted.contains(id));
        let mut kill = Vec::new();
        for id in wanted {
            match retries.get_mut(&id) {
                None => {
                    retries.insert(
                        id.clone(),
                        KillRetry {
                            next_ms: now.saturating_add(initial),
                            interval_ms: initial,
                        },
                    );
                    self.counters.kills_sent += 1;
                    kill.push(id);
                }
                Some(r) if now >= r.next_ms => {
                    r.interval_ms = r.interval_ms.saturating_mul(2).min(max);
                    r.next_ms = now.saturating_add(r.interval_ms);
                    self.counters.kills_sent += 1;
                    self.counters.kill_retries += 1;
                    kill.push(id);
                }
                Some(_) => {}
            }
        }
        if retries.is_empty() {
            self.kill_retries.remove(host);
        }
        ExecutorWork {
            launch,
            kill,
            heartbeat_interval_ms: self.config.heartbeat_interval_ms,
        }
    }

    fn request_kill(&mut self, host: &str, id: &TaskId) {
        self.kill_requests
            .entry(host.to_owned())
            .or_default()
            .insert(id.clone());
    }

    // ---- ticks ----

    /// Marks the tasks of executors that stopped heartbeating LOST.
    pub(crate) fn check_executors(&mut self, now: i64) {
        if now <= self.executors_due_ms {
            return;
        }
        let timeout = ms(self.config.executor_timeout_ms);
        let mut dead = Vec::new();
        let mut due = i64::MAX;
        for (h, seen) in &self.live {
            if now.saturating_sub(*seen) > timeout {
                dead.push(h.clone());
            } else {
                due = due.min(seen.saturating_add(timeout));
            }
        }
        // Heartbeats only move `seen` later, so this stays a lower bound until the next scan.
        self.executors_due_ms = due;
        for host in dead {
            self.live.remove(&host);
            self.kill_requests.remove(&*host);
            self.kill_retries.remove(&*host);
            self.hosts_changed();
            self.counters.executors_timed_out += 1;
            tracing::warn!(
                host = &*host,
                "executor missed heartbeats; its tasks are lost"
            );
            let ids: Vec<TaskId> = self.state.tasks_on(&host).map(|t| t.id().clone()).collect();
            for id in ids {
                self.change(
                    &id,
                    TaskTarget::Status(ScheduleStatus::Lost),
                    Some(format!(
                        "executor on {host} sent no heartbeat for {} ms",
                        self.config.executor_timeout_ms
                    )),
                    now,
                    |_| {},
                );
            }
        }
    }

    /// Gives up on tasks stuck in a transient state, releases THROTTLED tasks whose penalty
    /// is served and marks drained hosts.
    pub(crate) fn check_timers(&mut self, now: i64) {
        let lifecycle = self.config.lifecycle;
        let mut expired = Vec::new();
        if now > self.transient_due_ms {
            let mut due = i64::MAX;
            for status in [
                ScheduleStatus::Assigned,
                ScheduleStatus::Preempting,
                ScheduleStatus::Restarting,
                ScheduleStatus::Killing,
                ScheduleStatus::Draining,
            ] {
                for t in self.state.in_status(status) {
                    if transient_state_expired(t, now, &lifecycle) {
                        expired.push((t.id().clone(), t.status));
                    } else if let Some(e) = t.task_events.last() {
                        due = due.min(
                            e.timestamp_ms
                                .saturating_add(lifecycle.transient_state_timeout_ms),
                        );
                    }
                }
            }
            // Set before the changes below, which lower it for tasks they make transient.
            self.transient_due_ms = due;
        }
        for (id, status) in expired {
            self.counters.transient_timeouts += 1;
            self.change(
                &id,
                TaskTarget::Status(ScheduleStatus::Lost),
                Some(format!(
                    "stuck in {status} for more than {} ms",
                    lifecycle.transient_state_timeout_ms
                )),
                now,
                |_| {},
            );
        }
        let due: Vec<TaskId> = self
            .throttled
            .iter()
            .filter(|(_, (until, _))| *until <= now)
            .map(|(id, _)| id.clone())
            .collect();
        for id in due {
            self.throttled.remove(&id);
            self.change(
                &id,
                TaskTarget::Status(ScheduleStatus::Pending),
                Some("the flapping penalty is served".to_owned()),
                now,
                |_| {},
            );
        }
        if self
            .state
            .maintenance
            .values()
            .any(|m| *m == MaintenanceMode::Draining)
        {
            self.update_drained();
        }
        self.prune_history(now);
    }

    /// Removes ended tasks past the history limits (at most once per interval), and the
    /// configurations of jobs left without tasks.
    pub(crate) fn prune_history(&mut self, now: i64) {
        let h = self.config.history;
        if now.saturating_sub(self.last_prune_ms) < h.interval_ms {
            return;
        }
        self.last_prune_ms = now;
        let ended_at = |t: &ScheduledTask| t.task_events.last().map_or(0, |e| e.timestamp_ms);
        let mut doomed = Vec::new();
        let mut empty_jobs = Vec::new();
        for key in self.state.jobs.keys() {
            let mut ended: Vec<&Arc<ScheduledTask>> = self
                .state
                .tasks_of(key)
                .filter(|t| t.status.is_terminal())
                .collect();
            let total = self.state.tasks_of(key).count();
            ended.sort_by_key(|t| std::cmp::Reverse(ended_at(t)));
            let mut removed = 0;
            for (rank, t) in ended.iter().enumerate() {
                let age = now.saturating_sub(ended_at(t));
                if age >= h.min_retention_ms
                    && (age > h.prune_threshold_ms || rank >= h.max_per_job)
                {
                    doomed.push(t.id().clone());
                    removed += 1;
                }
            }
            if removed == total {
                empty_jobs.push(key.clone());
            }
        }
        for id in doomed {
            if matches!(
                self.change(&id, TaskTarget::Deleted, None, now, |_| {}),
                Transition::Changed { .. }
            ) {
                self.counters.tasks_pruned += 1;
            }
        }
        for key in empty_jobs {
            if self.state.tasks_of(&key).next().is_none() {
                // A lock on a forgotten job guards nothing; it goes with the job.
                if self.state.locks.contains_key(&key) {
                    self.commit(Op::RemoveLock { key: key.clone() });
                }
                self.commit(Op::RemoveJob { key });
            }
        }
    }

    /// The live hosts for a preemption search; kept until hosts change, as searches may run
    /// round after round for a task that waits.
    fn placement_hosts(&mut self) -> Arc<Vec<PlacementHost>> {
        if let Some(hosts) = &self.hosts_cache {
            return Arc::clone(hosts);
        }
        let hosts = Arc::new(self.live_hosts());
        self.hosts_cache = Some(Arc::clone(&hosts));
        hosts
    }

    /// The live hosts, in name order (the order first fit tries them).
    fn live_hosts(&self) -> Vec<PlacementHost> {
        // Sized up front: grown by doubling, a cache of 100,000 hosts would leave its
        // intermediate buffers in the allocator and up to twice its size in slack.
        let mut hosts: Vec<PlacementHost> = Vec::with_capacity(self.state.hosts.len());
        hosts.extend(
            self.state
                .hosts
                .values()
                .filter(|h| self.live.contains_key(&*h.host))
                .map(|h| PlacementHost {
                    host: h.host.to_string(),
                    attributes: h.attributes.clone(),
                    cpu: h.cpu,
                    ram_bytes: h.ram_bytes,
                    disk_bytes: h.disk_bytes,
                    ports: h.port_begin..=h.port_end,
                    maintenance: self.state.maintenance_of(&h.host),
                }),
        );
        hosts
    }

    /// Places pending tasks on live executors and preempts for those that do not fit;
    /// returns how many were placed.
    pub(crate) fn schedule(&mut self, now: i64) -> usize {
        if !self.state.has_status(ScheduleStatus::Pending) {
            self.pending_reasons.clear();
            self.preempting_for.clear();
            self.reservations.clear();
            return 0;
        }
        if self.view.is_none() {
            // Built for the view and dropped: the view holds what placement needs.
            let hosts = self.live_hosts();
            let assigned: Vec<&ScheduledTask> = self.state.slave_assigned().map(|t| &**t).collect();
            self.view = Some(ClusterView::build(&hosts, &assigned, self.config.placement));
        }
        let Some(view) = &self.view else {
            return 0;
        };
        let plan = {
            let mut pending: Vec<&ScheduledTask> = self
                .state
                .in_status(ScheduleStatus::Pending)
                .map(|t| &**t)
                .collect();
            pending.sort_by_key(|t| (first_event(t), t.job(), t.instance()));
            view.place(&pending, &self.reservations)
        };
        self.pending_reasons = plan
            .unplaced
            .iter()
            .map(|u| (u.task_id.clone(), u.reason.clone()))
            .collect();
        let mut placed = 0;
        for a in plan.assignments {
            let host = a.host.clone();
            let t = self.change(
                &a.task_id,
                TaskTarget::Status(ScheduleStatus::Assigned),
                Some(format!("assigned to {host}")),
                now,
                move |task| {
                    task.assigned_task.slave_host = Some(a.host);
                    task.assigned_task.assigned_ports = a.ports;
                },
            );
            if matches!(t, Transition::Changed { .. }) {
                placed += 1;
            }
        }
        self.counters.placements += placed as u64;
        self.preempt(&plan.unplaced, now);
        placed
    }

    /// Preempts for pending tasks that waited at least the preemption delay, at most one
    /// search per identical configuration and a few searches per round.
    fn preempt(&mut self, unplaced: &[aurora_core::Unplaced], now: i64) {
        // Forget pending tasks that are placed or gone, and those whose victims are all gone.
        let state = &self.state;
        self.preempting_for.retain(|id, victims| {
            state
                .tasks
                .get(id)
                .is_some_and(|t| t.status == ScheduleStatus::Pending)
                && victims
                    .iter()
                    .any(|v| state.tasks.get(v).is_some_and(|t| t.status.is_active()))
        });
        let preempting = &self.preempting_for;
        self.reservations
            .retain(|id, _| preempting.contains_key(id));
        let delay = ms(self.config.preemption_delay_ms);
        // Which tasks to search for first: the hosts and tasks a search reads are gathered
        // only when there is one to run.
        let mut searched: Vec<&TaskConfig> = Vec::new();
        let mut candidates: Vec<TaskId> = Vec::new();
        for u in unplaced {
            if searched.len() >= MAX_PREEMPTION_SEARCHES_PER_ROUND {
                break;
            }
            let Some(task) = self.state.tasks.get(&u.task_id) else {
                continue;
            };
            let config: &TaskConfig = &task.assigned_task.task;
            let pending_since = task.task_events.last().map_or(now, |e| e.timestamp_ms);
            if now.saturating_sub(pending_since) < delay
                || self.preempting_for.contains_key(task.id())
                || searched.contains(&config)
            {
                continue;
            }
            searched.push(config);
            candidates.push(task.id().clone());
        }
        if candidates.is_empty() {
            return;
        }
        let hosts = self.placement_hosts();
        let mut plans = Vec::new();
        {
            let assigned: Vec<&ScheduledTask> = self.state.slave_assigned().map(|t| &**t).collect();
            for id in &candidates {
                let Some(task) = self.state.tasks.get(id) else {
                    continue;
                };
                self.counters.preemption_searches += 1;
                if let Some(plan) = find_preemption(&PreemptionInput {
                    hosts: &hosts,
                    assigned: &assigned,
                    pending: task,
                    config: self.config.placement,
                }) {
                    plans.push((task.id().clone(), plan));
                }
            }
        }
        for (id, plan) in plans {
            let mut victims = Vec::new();
            for v in &plan.victims {
                let t = self.change(
                    v,
                    TaskTarget::Status(ScheduleStatus::Preempting),
                    Some(format!("Preempting in favor of {id}")),
                    now,
                    |_| {},
                );
                if matches!(t, Transition::Changed { .. }) {
                    victims.push(v.clone());
                    self.counters.preemptions += 1;
                }
            }
            if !victims.is_empty() {
                if let Some(reason) = self.pending_reasons.get_mut(&id) {
                    reason.push_str(&format!(
                        "; preempting {} task(s) on {} to make room",
                        victims.len(),
                        plan.host
                    ));
                }
                self.reservations.insert(id.clone(), plan.host.clone());
                self.preempting_for.insert(id, victims);
            }
        }
    }

    // ---- applying the state machine ----

    /// Moves a task towards `target` through the state machine and applies the side effects.
    /// `edit` changes the saved record (e.g. the host of an assignment) when the state is saved.
    fn change(
        &mut self,
        id: &TaskId,
        target: TaskTarget,
        message: Option<String>,
        now: i64,
        edit: impl FnOnce(&mut ScheduledTask),
    ) -> Transition {
        let Some(task) = self.state.tasks.get(id) else {
            return Transition::Illegal {
                from: ScheduleStatus::Init,
                to: target,
            };
        };
        let t = transition(task.status, target, &facts(task));
        match t {
            Transition::Changed { to, effects } => {
                let task = (**task).clone();
                if let Some(saved) = self.apply_effects(task, to, effects, message, now, edit) {
                    self.commit(Op::SaveTasks {
                        tasks: vec![Arc::new(saved)],
                    });
                }
            }
            Transition::Unchanged { effects } => {
                if effects.kill
                    && let Some(host) = task.assigned_task.slave_host.clone()
                {
                    self.request_kill(&host, id);
                }
            }
            Transition::Illegal { from, to } => {
                self.counters.illegal_transitions += 1;
                tracing::info!(task = %id, %from, %to, "ignoring an illegal task state transition");
            }
        }
        t
    }

    /// Applies the effects of a change; returns the task record to save, if any.
    fn apply_effects(
        &mut self,
        mut task: ScheduledTask,
        to: Option<ScheduleStatus>,
        effects: SideEffects,
        message: Option<String>,
        now: i64,
        edit: impl FnOnce(&mut ScheduledTask),
    ) -> Option<ScheduledTask> {
        if effects.increment_failures {
            task.failure_count += 1;
        }
        let mut save = effects.increment_failures;
        if effects.save_state
            && let Some(status) = to
        {
            task.status = status;
            task.task_events.push(TaskEvent {
                timestamp_ms: now,
                status,
                message,
                scheduler: Some(self.config.hostname.clone()),
            });
            edit(&mut task);
            save = true;
        }
        if effects.kill
            && let Some(host) = task.assigned_task.slave_host.clone()
        {
            self.request_kill(&host, task.id());
        }
        if effects.reschedule {
            // Save the ended task first so that the penalty sees its last event.
            self.commit(Op::SaveTasks {
                tasks: vec![Arc::new(task.clone())],
            });
            save = false;
            self.reschedule(&task, now);
        }
        if effects.delete {
            self.throttled.remove(task.id());
            self.commit(Op::RemoveTasks {
                ids: vec![task.id().clone()],
            });
            return None;
        }
        save.then_some(task)
    }

    /// The flapping penalty of a task whose nearest ancestor is `ancestor`.
    fn penalty_after(&self, ancestor: Option<&TaskId>) -> i64 {
        let mut chain = Vec::new();
        let mut next = ancestor;
        while let Some(id) = next {
            let Some(t) = self.state.tasks.get(id) else {
                break;
            };
            chain.push(&**t);
            if chain.len() >= MAX_ANCESTORS_CONSIDERED {
                break;
            }
            next = t.ancestor_id.as_ref();
        }
        flapping_penalty_ms(chain, &self.config.lifecycle)
    }

    /// Creates the replacement of `old`: new id, same instance and config, failure count
    /// carried, `old` as ancestor; THROTTLED when its ancestors flapped.
    fn reschedule(&mut self, old: &ScheduledTask, now: i64) {
        let mut task = self.new_task(&old.assigned_task.task, old.instance(), now);
        task.failure_count = old.failure_count;
        task.ancestor_id = Some(old.id().clone());
        let penalty = self.penalty_after(Some(old.id()));
        if let Some(t) = self.initial(task, penalty, now) {
            self.counters.tasks_rescheduled += 1;
            self.commit(Op::SaveTasks {
                tasks: vec![Arc::new(t)],
            });
        }
    }

    /// Moves a new task from INIT to PENDING (or THROTTLED when `penalty_ms` > 0) through the
    /// state machine; returns the record to save.
    fn initial(&mut self, task: ScheduledTask, penalty_ms: i64, now: i64) -> Option<ScheduledTask> {
        let (status, message) = if penalty_ms > 0 {
            (ScheduleStatus::Throttled, Some(throttle_reason(penalty_ms)))
        } else {
            (ScheduleStatus::Pending, None)
        };
        match transition(task.status, TaskTarget::Status(status), &facts(&task)) {
            Transition::Changed { to, effects } => {
                let saved = self.apply_effects(task, to, effects, message.clone(), now, |_| {});
                if let (Some(t), Some(reason)) = (&saved, message) {
                    self.counters.tasks_throttled += 1;
                    self.throttled
                        .insert(t.id().clone(), (now.saturating_add(penalty_ms), reason));
                }
                saved
            }
            other => {
                tracing::error!(?other, "a new task cannot become pending");
                None
            }
        }
    }
}

/// `locked by alice since 2024-01-01T00:00:00Z (update to v2)`, for refusals.
fn describe_lock(lock: &Lock) -> String {
    let since = std::time::UNIX_EPOCH
        + std::time::Duration::from_millis(u64::try_from(lock.timestamp_ms).unwrap_or(0));
    format!(
        "locked by {} since {}{}",
        lock.user,
        humantime::format_rfc3339_seconds(since),
        lock.message
            .as_deref()
            .map(|m| format!(" ({m})"))
            .unwrap_or_default()
    )
}

fn throttle_reason(penalty_ms: i64) -> String {
    format!(
        "throttled for {penalty_ms} ms because its previous runs ended soon after starting (flapping); it becomes PENDING afterwards"
    )
}

fn facts(task: &ScheduledTask) -> TaskFacts {
    TaskFacts {
        is_service: task.assigned_task.task.is_service,
        max_task_failures: task.assigned_task.task.max_task_failures,
        failure_count: task.failure_count,
    }
}

fn first_event(t: &ScheduledTask) -> i64 {
    t.task_events.first().map_or(0, |e| e.timestamp_ms)
}

/// A filter for `GET /api/tasks`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct TaskQuery {
    pub(crate) role: Option<String>,
    pub(crate) environment: Option<String>,
    pub(crate) name: Option<String>,
    pub(crate) statuses: Option<BTreeSet<ScheduleStatus>>,
}

impl TaskQuery {
    /// The one job the query names, when it names role, environment and name.
    fn job_key(&self, cluster: &str) -> Option<JobKey> {
        JobKey::new(
            cluster,
            self.role.as_deref()?,
            self.environment.as_deref()?,
            self.name.as_deref()?,
        )
        .ok()
    }

    fn matches(&self, t: &ScheduledTask) -> bool {
        let job = t.job();
        self.role.as_deref().is_none_or(|r| job.role() == r)
            && self
                .environment
                .as_deref()
                .is_none_or(|e| job.environment() == e)
            && self.name.as_deref().is_none_or(|n| job.name() == n)
            && self.statuses.as_ref().is_none_or(|s| s.contains(&t.status))
    }
}

#[cfg(test)]
mod tests;
