//! The executor agent: registers the machine with the scheduler, heartbeats, runs the tasks it
//! is given with the Thermos runner and reports their states.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use aurora_core::api::{
    ApiError, ErrorCode, ExecutorTaskState, ExecutorWork, HeartbeatRequest, MachineResources,
    PortRange, RegisterExecutorRequest, StatusUpdate,
};
use aurora_core::{AssignedTask, ScheduleStatus, TaskId};

use crate::layout::TaskLayout;
use crate::observe::TaskView;
use crate::runner::{RunOptions, RunSpec, RunnerHandle, TaskRunner, UserMode};
use crate::template::{Bindings, bind_task};
use crate::{TaskState, TaskStatus};

const MIN_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(5);
/// A status the scheduler answers "not found" to this often is dropped (after re-registering).
const MAX_NOT_FOUND: u32 = 5;

/// How an executor agent runs.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// The scheduler's base URL, e.g. `http://127.0.0.1:8081`.
    pub scheduler: String,
    /// Where sandboxes and checkpoints go: `<work_dir>/tasks/<task_id>/{sandbox,checkpoint}`.
    pub work_dir: PathBuf,
    /// The machine's host name; it identifies the executor.
    pub host: String,
    /// Attributes for constraints; `host` is added when missing.
    pub attributes: BTreeMap<String, BTreeSet<String>>,
    /// What the machine offers.
    pub resources: MachineResources,
    /// How long a killed task's processes get between SIGTERM and SIGKILL.
    pub kill_grace: Duration,
    /// Which Unix user task processes run as: [`UserMode::Switch`] runs them as the job's
    /// role when the executor runs as root; [`UserMode::Current`] as the executor's own user.
    pub user_mode: UserMode,
}

/// Why the agent could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AgentError {
    /// The scheduler URL is not an `http://` URL.
    #[error("scheduler URL {0:?} is not valid: use http://HOST:PORT")]
    SchedulerUrl(String),
    /// The work directory cannot be used.
    #[error("cannot use work directory {}: {error}", path.display())]
    WorkDir {
        /// The directory.
        path: PathBuf,
        /// The cause.
        error: std::io::Error,
    },
    /// The HTTP client could not be built.
    #[error("cannot set up the HTTP client: {0}")]
    Http(String),
    /// A machine fact could not be read.
    #[error("cannot read {what}: {why}; pass it explicitly")]
    Machine {
        /// What was read.
        what: &'static str,
        /// Why it failed.
        why: String,
    },
}

/// The machine's host name, from the kernel.
pub fn local_hostname() -> Result<String, AgentError> {
    let name =
        std::fs::read_to_string("/proc/sys/kernel/hostname").map_err(|e| AgentError::Machine {
            what: "the host name",
            why: e.to_string(),
        })?;
    let name = name.trim().to_owned();
    if name.is_empty() {
        return Err(AgentError::Machine {
            what: "the host name",
            why: "it is empty".to_owned(),
        });
    }
    Ok(name)
}

/// What this machine offers by default: its CPUs, its RAM and the free disk under `work_dir`.
pub fn machine_resources(
    work_dir: &Path,
    ports: PortRange,
) -> Result<MachineResources, AgentError> {
    let cpu = std::thread::available_parallelism()
        .map(|n| n.get() as f64)
        .map_err(|e| AgentError::Machine {
            what: "the CPU count",
            why: e.to_string(),
        })?;
    let ram_bytes = nix::sys::sysinfo::sysinfo()
        .map(|s| s.ram_total())
        .map_err(|e| AgentError::Machine {
            what: "the RAM size",
            why: e.to_string(),
        })?;
    std::fs::create_dir_all(work_dir).map_err(|error| AgentError::WorkDir {
        path: work_dir.to_owned(),
        error,
    })?;
    let disk_bytes = nix::sys::statvfs::statvfs(work_dir)
        .map(|s| s.blocks_available().saturating_mul(s.fragment_size()))
        .map_err(|e| AgentError::Machine {
            what: "the free disk space",
            why: e.to_string(),
        })?;
    Ok(MachineResources {
        cpu,
        ram_bytes,
        disk_bytes,
        ports,
    })
}

/// An executor agent. Build it with [`Agent::new`], then [`Agent::run`] it.
pub struct Agent {
    config: AgentConfig,
    http: reqwest::blocking::Client,
    shared: Arc<AgentShared>,
}

struct AgentShared {
    /// Status updates not yet acknowledged, oldest first.
    outbox: Mutex<VecDeque<Pending>>,
    wake: Condvar,
    tasks: Mutex<HashMap<TaskId, Arc<TaskEntry>>>,
}

struct Pending {
    update: StatusUpdate,
    not_found: u32,
}

struct TaskEntry {
    control: Mutex<Control>,
}

#[derive(Default)]
struct Control {
    kill: bool,
    handle: Option<Arc<RunnerHandle>>,
    /// The latest status queued for the scheduler.
    status: Option<ScheduleStatus>,
    /// Whether a terminal status was acknowledged.
    done: bool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

enum PostError {
    /// The scheduler does not know the executor (or the task).
    NotFound(String),
    /// The scheduler rejected the request for good.
    Rejected(String),
    /// The scheduler could not be reached or failed; try again.
    Retry(String),
}

impl std::fmt::Display for PostError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PostError::NotFound(m) | PostError::Rejected(m) | PostError::Retry(m) => f.write_str(m),
        }
    }
}

impl Agent {
    /// Checks the configuration and prepares the work directory.
    pub fn new(mut config: AgentConfig) -> Result<Agent, AgentError> {
        let url = config.scheduler.trim_end_matches('/').to_owned();
        if !url.starts_with("http://") || url.len() <= "http://".len() {
            return Err(AgentError::SchedulerUrl(config.scheduler));
        }
        config.scheduler = url;
        std::fs::create_dir_all(config.work_dir.join("tasks")).map_err(|error| {
            AgentError::WorkDir {
                path: config.work_dir.clone(),
                error,
            }
        })?;
        config
            .attributes
            .entry("host".to_owned())
            .or_insert_with(|| [config.host.clone()].into());
        let http = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| AgentError::Http(e.to_string()))?;
        Ok(Agent {
            config,
            http,
            shared: Arc::new(AgentShared {
                outbox: Mutex::new(VecDeque::new()),
                wake: Condvar::new(),
                tasks: Mutex::new(HashMap::new()),
            }),
        })
    }

    /// Runs until `stop` is set: registers (retrying with backoff while the scheduler is
    /// unreachable), heartbeats, launches and kills tasks, and delivers every status update
    /// until the scheduler acknowledges it. Never returns on scheduler errors.
    pub fn run(&self, stop: &AtomicBool) {
        self.rediscover();
        let mut registered = false;
        let mut backoff = MIN_BACKOFF;
        let mut next_heartbeat = Instant::now();
        while !stop.load(Ordering::SeqCst) {
            if !registered {
                match self.register() {
                    Ok(work) => {
                        tracing::info!(host = %self.config.host, "registered with the scheduler");
                        registered = true;
                        backoff = MIN_BACKOFF;
                        next_heartbeat = Instant::now() + self.apply(work);
                    }
                    Err(e) => {
                        tracing::warn!(
                            "cannot register with {} ({e}); retrying in {backoff:?}",
                            self.config.scheduler
                        );
                        self.sleep(backoff, stop);
                        backoff = (backoff * 2).min(MAX_BACKOFF);
                        continue;
                    }
                }
            }
            let mut retry_soon = false;
            match self.flush_outbox() {
                Ok(()) => {}
                Err(PostError::NotFound(_)) => {
                    registered = false;
                    continue;
                }
                Err(e) => {
                    tracing::warn!("cannot deliver a status update ({e}); retrying");
                    retry_soon = true;
                }
            }
            if Instant::now() >= next_heartbeat {
                match self.heartbeat() {
                    Ok(work) => {
                        backoff = MIN_BACKOFF;
                        next_heartbeat = Instant::now() + self.apply(work);
                    }
                    Err(PostError::NotFound(e)) => {
                        tracing::warn!(
                            "the scheduler does not know this executor ({e}); registering again"
                        );
                        registered = false;
                        continue;
                    }
                    Err(e) => {
                        tracing::warn!("heartbeat failed ({e}); retrying in {backoff:?}");
                        next_heartbeat = Instant::now() + backoff;
                        backoff = (backoff * 2).min(MAX_BACKOFF);
                    }
                }
            }
            let mut until = next_heartbeat;
            if retry_soon {
                until = until.min(Instant::now() + backoff);
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
            // Sleep until the next heartbeat, or until a task has something to report.
            let outbox = lock(&self.shared.outbox);
            let now = Instant::now();
            if (outbox.is_empty() || retry_soon) && now < until {
                let wait = (until - now).min(Duration::from_millis(500));
                let _ = self.shared.wake.wait_timeout(outbox, wait);
            }
        }
    }

    fn sleep(&self, d: Duration, stop: &AtomicBool) {
        let until = Instant::now() + d;
        while !stop.load(Ordering::SeqCst) {
            let now = Instant::now();
            if now >= until {
                return;
            }
            let outbox = lock(&self.shared.outbox);
            let _ = self
                .shared
                .wake
                .wait_timeout(outbox, (until - now).min(Duration::from_millis(200)));
        }
    }

    fn post<B: serde::Serialize, R: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<R, PostError> {
        let url = format!("{}{path}", self.config.scheduler);
        let resp = self
            .http
            .post(&url)
            .json(body)
            .send()
            .map_err(|e| PostError::Retry(format!("POST {url}: {e}")))?;
        let status = resp.status();
        if status.is_success() {
            return resp
                .json()
                .map_err(|e| PostError::Retry(format!("POST {url}: unreadable answer: {e}")));
        }
        let text = resp.text().unwrap_or_default();
        let api: Option<ApiError> = serde_json::from_str(&text).ok();
        let message = format!(
            "POST {url}: HTTP {status}: {}",
            api.as_ref().map_or(text.as_str(), |a| a.message.as_str())
        );
        Err(match api.map(|a| a.code) {
            _ if status.as_u16() == 404 => PostError::NotFound(message),
            Some(ErrorCode::NotFound) => PostError::NotFound(message),
            Some(ErrorCode::InvalidRequest) | Some(ErrorCode::Conflict) => {
                PostError::Rejected(message)
            }
            _ if status.is_client_error() && status.as_u16() != 408 && status.as_u16() != 429 => {
                PostError::Rejected(message)
            }
            _ => PostError::Retry(message),
        })
    }

    fn task_states(&self) -> Vec<ExecutorTaskState> {
        let tasks = lock(&self.shared.tasks);
        let mut out: Vec<ExecutorTaskState> = tasks
            .iter()
            .filter_map(|(id, t)| {
                let c = lock(&t.control);
                match (c.done, c.status) {
                    (false, Some(status)) => Some(ExecutorTaskState {
                        task_id: id.clone(),
                        status,
                    }),
                    _ => None,
                }
            })
            .collect();
        out.sort_by(|a, b| a.task_id.cmp(&b.task_id));
        out
    }

    fn register(&self) -> Result<ExecutorWork, PostError> {
        let req = RegisterExecutorRequest {
            host: self.config.host.clone(),
            attributes: self.config.attributes.clone(),
            resources: self.config.resources.clone(),
            tasks: self.task_states(),
        };
        self.post("/api/executors", &req)
    }

    fn heartbeat(&self) -> Result<ExecutorWork, PostError> {
        let req = HeartbeatRequest {
            tasks: self.task_states(),
        };
        self.post(
            &format!("/api/executors/{}/heartbeat", self.config.host),
            &req,
        )
    }

    /// Delivers queued status updates in order; stops at the first that must be retried.
    fn flush_outbox(&self) -> Result<(), PostError> {
        loop {
            let Some(update) = lock(&self.shared.outbox).front().map(|p| p.update.clone()) else {
                return Ok(());
            };
            let path = format!("/api/executors/{}/status", self.config.host);
            let result: Result<aurora_core::api::Ack, PostError> = self.post(&path, &update);
            let mut outbox = lock(&self.shared.outbox);
            match result {
                Ok(_) => {
                    outbox.pop_front();
                    drop(outbox);
                    tracing::info!(task = %update.task_id, "reported {}", update.status);
                    if update.status.is_terminal() {
                        self.mark_acked(&update.task_id);
                        if let Some(t) = lock(&self.shared.tasks).get(&update.task_id) {
                            lock(&t.control).done = true;
                        }
                    }
                }
                Err(PostError::Rejected(e)) => {
                    tracing::error!(task = %update.task_id, "the scheduler rejected {}: {e}; dropping it", update.status);
                    outbox.pop_front();
                }
                Err(PostError::NotFound(e)) => {
                    let front = outbox.front_mut();
                    if let Some(p) = front {
                        p.not_found += 1;
                        if p.not_found >= MAX_NOT_FOUND {
                            tracing::error!(task = %update.task_id, "the scheduler does not know the task ({e}); dropping {}", update.status);
                            outbox.pop_front();
                            continue;
                        }
                    }
                    return Err(PostError::NotFound(e));
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Remembers that the scheduler acknowledged a task's terminal status, so that a restarted
    /// executor does not report it again.
    fn mark_acked(&self, id: &TaskId) {
        let dir = self.config.work_dir.join("tasks").join(id.as_str());
        if dir.is_dir()
            && let Err(e) = std::fs::write(dir.join(ACKED), b"")
        {
            tracing::warn!(task = %id, "cannot record the acknowledgement: {e}");
        }
    }

    /// Finds the tasks an earlier executor left in the work directory: running ones are taken
    /// over (their processes reattached), ended ones whose last status was never acknowledged
    /// are reported again. All of them are listed in the registration.
    fn rediscover(&self) {
        for (id, path) in TaskLayout::Executor.find(&self.config.work_dir) {
            let task_id = TaskId(id.clone());
            if lock(&self.shared.tasks).contains_key(&task_id) {
                continue;
            }
            if path.with_file_name(ACKED).exists() {
                continue;
            }
            let view = match TaskView::load(&path) {
                Ok(v) => v,
                Err(e) => {
                    tracing::error!(task = %id, "cannot take over the task: {e}");
                    continue;
                }
            };
            let entry = Arc::new(TaskEntry {
                control: Mutex::new(Control::default()),
            });
            lock(&self.shared.tasks).insert(task_id.clone(), entry.clone());
            if view.is_terminal() {
                let (status, message) =
                    schedule_status(view.state.unwrap_or(TaskState::Lost), view.message);
                tracing::info!(task = %id, "found ended task ({status}); reporting it again");
                report(&self.shared, &task_id, status, message);
                continue;
            }
            let options = RunOptions {
                user_mode: self.config.user_mode,
                ..RunOptions::default()
            };
            match TaskRunner::recover(&path, options) {
                Ok(h) => {
                    let h = Arc::new(h);
                    let started = h.status().has_started();
                    {
                        let mut c = lock(&entry.control);
                        c.handle = Some(h.clone());
                        c.status = Some(if started {
                            ScheduleStatus::Running
                        } else {
                            ScheduleStatus::Starting
                        });
                    }
                    tracing::info!(task = %id, "took over the running task");
                    let ctx = TaskContext {
                        shared: self.shared.clone(),
                        entry,
                        work_dir: self.config.work_dir.clone(),
                        user_mode: self.config.user_mode,
                    };
                    let spawned = std::thread::Builder::new()
                        .name(format!("task-{id}"))
                        .spawn(move || ctx.follow(&task_id, &h, started));
                    if let Err(e) = spawned {
                        tracing::error!(task = %id, "cannot follow the task: {e}");
                    }
                }
                Err(e) => {
                    tracing::error!(task = %id, "cannot take over the task: {e}");
                    report(
                        &self.shared,
                        &task_id,
                        ScheduleStatus::Lost,
                        Some(format!(
                            "the executor restarted and could not take the task over: {e}"
                        )),
                    );
                }
            }
        }
    }

    /// Acts on the scheduler's answer; returns the heartbeat interval it asked for.
    fn apply(&self, work: ExecutorWork) -> Duration {
        for task in work.launch {
            self.launch(task);
        }
        for id in work.kill {
            self.kill(&id);
        }
        if work.heartbeat_interval_ms == 0 {
            DEFAULT_HEARTBEAT
        } else {
            Duration::from_millis(work.heartbeat_interval_ms.max(50))
        }
    }

    fn launch(&self, task: AssignedTask) {
        let entry = {
            let mut tasks = lock(&self.shared.tasks);
            if tasks.contains_key(&task.task_id) {
                return;
            }
            let entry = Arc::new(TaskEntry {
                control: Mutex::new(Control::default()),
            });
            tasks.insert(task.task_id.clone(), entry.clone());
            entry
        };
        tracing::info!(task = %task.task_id, "launching");
        let ctx = TaskContext {
            shared: self.shared.clone(),
            entry,
            work_dir: self.config.work_dir.clone(),
            user_mode: self.config.user_mode,
        };
        let id = task.task_id.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("task-{id}"))
            .spawn(move || ctx.run(task));
        if let Err(e) = spawned {
            report(
                &self.shared,
                &id,
                ScheduleStatus::Failed,
                Some(format!(
                    "the executor cannot start a thread for the task: {e}"
                )),
            );
        }
    }

    fn kill(&self, id: &TaskId) {
        let entry = lock(&self.shared.tasks).get(id).cloned();
        match entry {
            Some(entry) => {
                let mut c = lock(&entry.control);
                if c.kill || c.status.is_some_and(ScheduleStatus::is_terminal) {
                    return;
                }
                tracing::info!(task = %id, "killing");
                c.kill = true;
                if let Some(h) = &c.handle {
                    h.kill(self.config.kill_grace);
                }
            }
            None => {
                // The task never reached this executor (or it forgot it): nothing runs, so the
                // kill is done.
                let entry = Arc::new(TaskEntry {
                    control: Mutex::new(Control::default()),
                });
                lock(&self.shared.tasks).insert(id.clone(), entry);
                report(
                    &self.shared,
                    id,
                    ScheduleStatus::Killed,
                    Some("the task was not running on this executor".to_owned()),
                );
            }
        }
    }
}

/// Queues a status update for the scheduler.
fn report(shared: &AgentShared, id: &TaskId, status: ScheduleStatus, message: Option<String>) {
    if let Some(t) = lock(&shared.tasks).get(id) {
        lock(&t.control).status = Some(status);
    }
    lock(&shared.outbox).push_back(Pending {
        update: StatusUpdate {
            task_id: id.clone(),
            status,
            message,
        },
        not_found: 0,
    });
    shared.wake.notify_all();
}

/// The marker file, next to a task's checkpoint, saying its terminal status was acknowledged.
const ACKED: &str = "acked";

/// The scheduler's status for how a Thermos task ended, with the message to send.
fn schedule_status(state: TaskState, message: Option<String>) -> (ScheduleStatus, Option<String>) {
    match state {
        TaskState::Success => (ScheduleStatus::Finished, None),
        TaskState::Failed => (ScheduleStatus::Failed, message),
        TaskState::Killed => (ScheduleStatus::Killed, message),
        TaskState::Lost | TaskState::Active | TaskState::Cleaning | TaskState::Finalizing => {
            (ScheduleStatus::Lost, message)
        }
    }
}

struct TaskContext {
    shared: Arc<AgentShared>,
    entry: Arc<TaskEntry>,
    work_dir: PathBuf,
    user_mode: UserMode,
}

impl TaskContext {
    fn run(self, task: AssignedTask) {
        let id = task.task_id.clone();
        report(&self.shared, &id, ScheduleStatus::Starting, None);
        let spec = match self.prepare(&task) {
            Ok(spec) => spec,
            Err(why) => {
                tracing::error!(task = %id, "cannot run: {why}");
                report(&self.shared, &id, ScheduleStatus::Failed, Some(why));
                return;
            }
        };
        let handle = {
            let mut c = lock(&self.entry.control);
            if c.kill {
                drop(c);
                report(
                    &self.shared,
                    &id,
                    ScheduleStatus::Killed,
                    Some("killed before it started".to_owned()),
                );
                return;
            }
            match TaskRunner::start(spec) {
                Ok(h) => {
                    let h = Arc::new(h);
                    c.handle = Some(h.clone());
                    h
                }
                Err(e) => {
                    drop(c);
                    report(
                        &self.shared,
                        &id,
                        ScheduleStatus::Failed,
                        Some(e.to_string()),
                    );
                    return;
                }
            }
        };
        self.follow(&id, &handle, false);
    }

    /// Reports RUNNING once a process started (unless `reported_running`), then the end.
    fn follow(&self, id: &TaskId, handle: &RunnerHandle, reported_running: bool) {
        if !reported_running {
            let status = handle.wait_until(TaskStatus::has_started, None);
            if status.has_started() {
                report(&self.shared, id, ScheduleStatus::Running, None);
            }
        }
        let status = handle.wait();
        let (state, message) = schedule_status(status.state, status.message);
        report(&self.shared, id, state, message);
    }

    /// Turns the assigned task into what the runner needs; errors are the FAILED message.
    fn prepare(&self, task: &AssignedTask) -> Result<RunSpec, String> {
        let id = task.task_id.as_str();
        if id.is_empty()
            || id.starts_with('.')
            || !id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        {
            return Err(format!(
                "task id {id:?} cannot name a sandbox directory: use only letters, digits, '-', '_' and '.'"
            ));
        }
        let data: serde_json::Value = serde_json::from_str(&task.task.executor_config.data)
            .map_err(|e| format!("the executor config is not JSON: {e}"))?;
        // The payload is the job's JSON (`raw_json` shape, without `instances` and
        // `update_config`) with the task under `task`; a bare Thermos task is accepted too.
        // It is bound and interpolated once here, so nothing runs with a ref left unbound.
        let user = data
            .get("role")
            .and_then(|r| r.as_str())
            .unwrap_or(&task.task.owner.role)
            .to_owned();
        let bindings = Bindings {
            instance: Some(task.instance_id),
            task_id: id.to_owned(),
            user: user.clone(),
            ports: task.assigned_ports.clone(),
            extra: BTreeMap::new(),
        };
        let bound = bind_task(&data, &bindings).map_err(|e| e.to_string())?;
        let layout = TaskLayout::Executor;
        let options = RunOptions {
            user_mode: self.user_mode,
            health: bound.health_check,
            ..RunOptions::default()
        };
        Ok(RunSpec {
            task: bound.task,
            task_id: id.to_owned(),
            sandbox: layout.sandbox(&self.work_dir, id),
            checkpoint: layout.checkpoint(&self.work_dir, id),
            user,
            ports: task.assigned_ports.clone(),
            options,
        })
    }
}
