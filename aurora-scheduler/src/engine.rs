//! The scheduler's logic, without I/O: requests and ticks come in with the current time, state
//! changes go out as [`Op`]s that the service makes durable before it answers.
//!
//! Every task state change goes through [`aurora_core::transition`]; this module only applies
//! the side effects it returns.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use aurora_core::api::{
    CreateJobRequest, CreateJobResponse, ErrorCode, ExecutorTaskState, ExecutorWork,
    HeartbeatRequest, JobSummary, JobsResponse, KillRequest, KillResponse, RegisterExecutorRequest,
    StatusUpdate, TasksResponse,
};
use aurora_core::{
    AssignedTask, JobKey, PlacementHost, PlacementInput, ScheduleStatus, ScheduledTask,
    SideEffects, TaskEvent, TaskFacts, TaskId, TaskTarget, Transition, add_default_constraints,
    place, transition,
};

use crate::RequestError;
use crate::state::State;
use crate::storage::{HostRecord, Op};

/// The most instances one job may have, as in the original.
pub(crate) const MAX_TASKS_PER_JOB: u32 = 4000;
/// The longest task id the original accepts.
const MAX_TASK_ID_LEN: usize = 165;

/// Settings the logic depends on.
#[derive(Debug, Clone)]
pub(crate) struct EngineConfig {
    pub(crate) cluster: String,
    pub(crate) hostname: String,
    pub(crate) heartbeat_interval_ms: u64,
    pub(crate) executor_timeout_ms: u64,
}

/// Counters exported on `/vars`.
#[derive(Debug, Clone, Default)]
pub(crate) struct Counters {
    pub(crate) placements: u64,
    pub(crate) illegal_transitions: u64,
    pub(crate) tasks_rescheduled: u64,
    pub(crate) executors_timed_out: u64,
    pub(crate) jobs_created: u64,
}

/// The state plus what is known only in memory (executor liveness, kills to deliver).
pub(crate) struct Engine {
    pub(crate) state: State,
    config: EngineConfig,
    /// Hosts whose executor is alive, with the time they were last heard from.
    live: HashMap<String, i64>,
    /// Kills to deliver that the task's state does not imply (zombies, unknown tasks), by
    /// host; dropped once the executor stops reporting the task.
    kill_requests: BTreeMap<String, BTreeSet<TaskId>>,
    /// Why each pending task is not placed, from the last scheduling round.
    pub(crate) pending_reasons: BTreeMap<TaskId, String>,
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

impl Engine {
    /// Wraps recovered state; every known host counts as alive from `now` so that executors
    /// get a full timeout to come back after a scheduler restart.
    pub(crate) fn new(state: State, config: EngineConfig, now: i64) -> Engine {
        let live = state.hosts.keys().map(|h| (h.clone(), now)).collect();
        Engine {
            state,
            config,
            live,
            kill_requests: BTreeMap::new(),
            pending_reasons: BTreeMap::new(),
            batch: Vec::new(),
            nonce: Box::new(|| uuid::Uuid::new_v4().to_string()),
            counters: Counters::default(),
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
        self.state.apply(&op);
        self.batch.push(op);
    }

    // ---- client requests ----

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
        if job.task_config.job != key {
            problems.push(format!(
                "task_config.job is {} but the job key is {key}; they must be the same",
                job.task_config.job
            ));
        }
        if !(1..=MAX_TASKS_PER_JOB).contains(&job.instance_count) {
            problems.push(format!(
                "instance_count {} is out of range; use 1 to {MAX_TASKS_PER_JOB}",
                job.instance_count
            ));
        }
        let res = &job.task_config.resources;
        if !(res.cpu.is_finite() && res.cpu > 0.0) {
            problems.push(format!("cpu {} must be a positive number", res.cpu));
        }
        if res.ram_bytes == 0 {
            problems.push("ram must be positive".to_owned());
        }
        if res.disk_bytes == 0 {
            problems.push("disk must be positive".to_owned());
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
            return Err(RequestError::new(
                ErrorCode::InvalidRequest,
                format!("invalid job {key}: {}", problems.join("; ")),
            ));
        }
        if self.state.job_is_active(&key) {
            return Err(RequestError::new(
                ErrorCode::Conflict,
                format!(
                    "job {key} already exists and has active tasks; kill it first or pick another name"
                ),
            ));
        }
        add_default_constraints(&mut job.task_config);
        self.commit(Op::SaveJob {
            job: Box::new(job.clone()),
        });
        let mut tasks = Vec::with_capacity(job.instance_count as usize);
        for instance in 0..job.instance_count {
            let task = ScheduledTask {
                assigned_task: AssignedTask {
                    task_id: TaskId::generate(now, &key, instance, &(self.nonce)()),
                    slave_host: None,
                    instance_id: instance,
                    task: job.task_config.clone(),
                    assigned_ports: BTreeMap::new(),
                },
                status: ScheduleStatus::Init,
                failure_count: 0,
                ancestor_id: None,
                task_events: Vec::new(),
            };
            if let Some(t) = self.initial(task, now) {
                tasks.push(t);
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

    pub(crate) fn kill_job(
        &mut self,
        role: &str,
        environment: &str,
        name: &str,
        req: KillRequest,
        now: i64,
    ) -> Result<KillResponse, RequestError> {
        let key = JobKey::new(&self.config.cluster, role, environment, name)
            .map_err(|e| RequestError::new(ErrorCode::InvalidRequest, e.to_string()))?;
        if !self.state.jobs.contains_key(&key) {
            return Err(RequestError::new(
                ErrorCode::NotFound,
                format!("no job {key} on this scheduler; list jobs with GET /api/jobs?role={role}"),
            ));
        }
        let ids: Vec<TaskId> = self
            .state
            .tasks
            .values()
            .filter(|t| t.job() == &key && t.status.is_active())
            .filter(|t| {
                req.instances
                    .as_ref()
                    .is_none_or(|i| i.contains(&t.instance()))
            })
            .map(|t| t.id().clone())
            .collect();
        let message = req
            .message
            .clone()
            .unwrap_or_else(|| "Killed by user request".to_owned());
        let mut killed = Vec::new();
        for id in ids {
            if self
                .change(
                    &id,
                    TaskTarget::Status(ScheduleStatus::Killing),
                    Some(message.clone()),
                    now,
                    |_| {},
                )
                .is_legal()
            {
                killed.push(id);
            }
        }
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

    pub(crate) fn tasks(&self, query: &TaskQuery) -> TasksResponse {
        let mut tasks: Vec<ScheduledTask> = self
            .state
            .tasks
            .values()
            .filter(|t| query.matches(t))
            .cloned()
            .collect();
        tasks.sort_by(|a, b| {
            (a.job(), a.instance(), first_event(a), a.id()).cmp(&(
                b.job(),
                b.instance(),
                first_event(b),
                b.id(),
            ))
        });
        TasksResponse { tasks }
    }

    pub(crate) fn jobs(&self, role: Option<&str>) -> JobsResponse {
        let mut counts: BTreeMap<&JobKey, BTreeMap<ScheduleStatus, u32>> = BTreeMap::new();
        for t in self.state.tasks.values() {
            *counts
                .entry(t.job())
                .or_default()
                .entry(t.status)
                .or_default() += 1;
        }
        let jobs = self
            .state
            .jobs
            .values()
            .filter(|j| role.is_none_or(|r| j.key.role() == r))
            .map(|j| JobSummary {
                key: j.key.clone(),
                instance_count: j.instance_count,
                task_counts: counts.get(&j.key).cloned().unwrap_or_default(),
            })
            .collect();
        JobsResponse { jobs }
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
            return Err(RequestError::new(
                ErrorCode::InvalidRequest,
                format!("invalid executor registration: {}", problems.join("; ")),
            ));
        }
        let mut attributes = req.attributes.clone();
        // `host: limit:1` is added to every job, and limit constraints need the attribute.
        attributes
            .entry("host".to_owned())
            .or_insert_with(|| BTreeSet::from([req.host.clone()]));
        let record = HostRecord {
            host: req.host.clone(),
            attributes,
            cpu: r.cpu,
            ram_bytes: r.ram_bytes,
            disk_bytes: r.disk_bytes,
            port_begin: r.ports.begin,
            port_end: r.ports.end,
        };
        if self.state.hosts.get(&req.host) != Some(&record) {
            self.commit(Op::SaveHost { host: record });
        }
        self.live.insert(req.host.clone(), now);
        // A freshly started executor holds exactly what it reports: tasks the scheduler
        // placed there that have started but are not reported are gone.
        let reported: BTreeSet<&TaskId> = req.tasks.iter().map(|t| &t.task_id).collect();
        let gone: Vec<TaskId> = self
            .tasks_on(&req.host)
            .filter(|t| t.status.is_slave_assigned() && t.status != ScheduleStatus::Assigned)
            .filter(|t| !reported.contains(t.id()))
            .map(|t| t.id().clone())
            .collect();
        for id in gone {
            self.change(
                &id,
                TaskTarget::Status(ScheduleStatus::Lost),
                Some(format!(
                    "executor on {} re-registered without this task",
                    req.host
                )),
                now,
                |_| {},
            );
        }
        // Place right away so that the registration answer already carries work.
        self.schedule(now);
        Ok(self.work(&req.host, &req.tasks))
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
        self.live.insert(host.to_owned(), now);
        Ok(self.work(host, &req.tasks))
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
            return Err(RequestError::new(
                ErrorCode::InvalidRequest,
                format!(
                    "status {} cannot be reported by an executor; report one of STARTING, RUNNING, FINISHED, FAILED, KILLED, LOST",
                    update.status
                ),
            ));
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

    /// What an executor should do, given what it reports to hold.
    fn work(&mut self, host: &str, reported: &[ExecutorTaskState]) -> ExecutorWork {
        let held: BTreeSet<&TaskId> = reported.iter().map(|t| &t.task_id).collect();
        // Reconcile: what the executor holds that should not run any more is killed.
        let mut extra = Vec::new();
        for t in reported {
            match self.state.tasks.get(&t.task_id) {
                Some(task)
                    if task.status.is_active()
                        && task.assigned_task.slave_host.as_deref() == Some(host) => {}
                _ if t.status.is_terminal() => {}
                _ => extra.push(t.task_id.clone()),
            }
        }
        let requests = self.kill_requests.entry(host.to_owned()).or_default();
        requests.retain(|id| held.contains(id));
        requests.extend(extra);
        let mut kill: BTreeSet<TaskId> = requests.clone();
        let mut launch = Vec::new();
        for t in self.tasks_on(host) {
            match t.status {
                ScheduleStatus::Assigned if !held.contains(t.id()) => {
                    launch.push(t.assigned_task.clone());
                }
                ScheduleStatus::Killing
                | ScheduleStatus::Preempting
                | ScheduleStatus::Restarting
                | ScheduleStatus::Draining => {
                    kill.insert(t.id().clone());
                }
                _ => {}
            }
        }
        if self.kill_requests.get(host).is_some_and(BTreeSet::is_empty) {
            self.kill_requests.remove(host);
        }
        ExecutorWork {
            launch,
            kill: kill.into_iter().collect(),
            heartbeat_interval_ms: self.config.heartbeat_interval_ms,
        }
    }

    fn tasks_on<'a>(&'a self, host: &'a str) -> impl Iterator<Item = &'a ScheduledTask> + 'a {
        self.state
            .tasks
            .values()
            .filter(move |t| t.assigned_task.slave_host.as_deref() == Some(host))
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
        let timeout = i64::try_from(self.config.executor_timeout_ms).unwrap_or(i64::MAX);
        let dead: Vec<String> = self
            .live
            .iter()
            .filter(|(_, seen)| now.saturating_sub(**seen) > timeout)
            .map(|(h, _)| h.clone())
            .collect();
        for host in dead {
            self.live.remove(&host);
            self.kill_requests.remove(&host);
            self.counters.executors_timed_out += 1;
            tracing::warn!(host, "executor missed heartbeats; its tasks are lost");
            let ids: Vec<TaskId> = self
                .tasks_on(&host)
                .filter(|t| t.status.is_slave_assigned())
                .map(|t| t.id().clone())
                .collect();
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

    /// Places pending tasks on live executors; returns how many were placed.
    pub(crate) fn schedule(&mut self, now: i64) -> usize {
        let hosts: Vec<PlacementHost> = self
            .state
            .hosts
            .values()
            .filter(|h| self.live.contains_key(&h.host))
            .map(|h| PlacementHost {
                host: h.host.clone(),
                attributes: h.attributes.clone(),
                cpu: h.cpu,
                ram_bytes: h.ram_bytes,
                disk_bytes: h.disk_bytes,
                ports: h.port_begin..=h.port_end,
            })
            .collect();
        let assigned: Vec<&ScheduledTask> = self
            .state
            .tasks
            .values()
            .filter(|t| t.status.is_slave_assigned())
            .collect();
        let mut pending: Vec<&ScheduledTask> = self
            .state
            .tasks
            .values()
            .filter(|t| t.status == ScheduleStatus::Pending)
            .collect();
        if pending.is_empty() {
            self.pending_reasons.clear();
            return 0;
        }
        pending.sort_by_key(|t| (first_event(t), t.job(), t.instance()));
        let plan = place(&PlacementInput {
            hosts: &hosts,
            assigned: &assigned,
            pending: &pending,
        });
        self.pending_reasons = plan
            .unplaced
            .into_iter()
            .map(|u| (u.task_id, u.reason))
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
        placed
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
                let task = task.clone();
                if let Some(saved) = self.apply_effects(task, to, effects, message, now, edit) {
                    self.commit(Op::SaveTasks { tasks: vec![saved] });
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
            self.reschedule(&task, now);
        }
        if effects.delete {
            self.commit(Op::RemoveTasks {
                ids: vec![task.id().clone()],
            });
            return None;
        }
        save.then_some(task)
    }

    /// Creates the replacement of `old`: new id, same instance and config, failure count
    /// carried, `old` as ancestor.
    fn reschedule(&mut self, old: &ScheduledTask, now: i64) {
        let task = ScheduledTask {
            assigned_task: AssignedTask {
                task_id: TaskId::generate(now, old.job(), old.instance(), &(self.nonce)()),
                slave_host: None,
                instance_id: old.instance(),
                task: old.assigned_task.task.clone(),
                assigned_ports: BTreeMap::new(),
            },
            status: ScheduleStatus::Init,
            failure_count: old.failure_count,
            ancestor_id: Some(old.id().clone()),
            task_events: Vec::new(),
        };
        if let Some(t) = self.initial(task, now) {
            self.counters.tasks_rescheduled += 1;
            self.commit(Op::SaveTasks { tasks: vec![t] });
        }
    }

    /// Moves a new task from INIT to PENDING through the state machine; returns the record to
    /// save.
    fn initial(&mut self, task: ScheduledTask, now: i64) -> Option<ScheduledTask> {
        let target = TaskTarget::Status(ScheduleStatus::Pending);
        match transition(task.status, target, &facts(&task)) {
            Transition::Changed { to, effects } => {
                self.apply_effects(task, to, effects, None, now, |_| {})
            }
            other => {
                tracing::error!(?other, "a new task cannot become pending");
                None
            }
        }
    }
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
