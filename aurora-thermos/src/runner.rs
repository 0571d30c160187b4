//! The task runner: starts a task's processes in dependency order, retries them, runs the final
//! processes, kills whatever is left, and checkpoints every state change.

use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nix::sys::signal::Signal;

use crate::checkpoint::{CheckpointError, CheckpointRecord, CheckpointWriter};
use crate::health::{self, HealthCheckConfig};
use crate::observe::TaskView;
use crate::reaper::{self, Exit, Exited, Identity};
use crate::sampler::{ResourceSampler, ResourceUsage, SamplerRegistration};
use crate::spec::{InvalidTask, TaskSpec};
use crate::tree::{ProcessTree, proc_info};
use crate::{ProcessState, TaskState};

/// The PATH processes get when the runner's own environment has none.
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// How often the runner walks `/proc` to remember the descendants of its processes.
const TRACK_INTERVAL: Duration = Duration::from_secs(1);
/// How often the runner checks for leftover processes while it stops a task.
const CLEAN_POLL: Duration = Duration::from_millis(20);
/// How long to wait for the exit of a process after SIGKILL before calling it LOST.
const KILL_WAIT: Duration = Duration::from_secs(5);
/// How often the runner looks for the end of processes it reattached to (not its children).
const REATTACHED_POLL: Duration = Duration::from_millis(100);
/// The file in a run's log directory where the process's shell records its exit status.
const EXIT_FILE: &str = "exit_status";

/// The script `bash -c` runs for a process: an EXIT trap that records the shell's exit status
/// in `exit_file`, then the command line, on the same line so that bash's line numbers in
/// error messages are the command line's own. The trap lets a runner restarted while the
/// process ran learn how it ended, without a wrapper process (see ARCHITECTURE.md, "Thermos").
fn process_script(cmdline: &str, exit_file: &Path) -> String {
    let action = format!(
        "builtin printf '%d\\n' \"$?\" >| {}",
        single_quoted(&exit_file.to_string_lossy())
    );
    format!("trap -- {} EXIT; {cmdline}", single_quoted(&action))
}

/// `s` as one single-quoted shell word.
fn single_quoted(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// Everything the runner needs to run one task.
#[derive(Debug, Clone)]
pub struct RunSpec {
    /// The task, with its template references already bound.
    pub task: TaskSpec,
    /// The task's id.
    pub task_id: String,
    /// The working directory of every process, and their `HOME`; created if missing.
    pub sandbox: PathBuf,
    /// The checkpoint file; its directory is created if missing.
    pub checkpoint: PathBuf,
    /// The user the processes run as (their `USER` and `LOGNAME`); see [`UserMode`].
    pub user: String,
    /// The ports bound for the task, by name (recorded in the checkpoint). A port named
    /// `health` turns on HTTP health checks and graceful shutdown.
    pub ports: BTreeMap<String, u16>,
    /// Everything else, with defaults.
    pub options: RunOptions,
}

/// Which Unix user the processes run as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum UserMode {
    /// As the runner's own user, whatever [`RunSpec::user`] says.
    #[default]
    Current,
    /// As [`RunSpec::user`] when the runner runs as root (the task fails when no such user
    /// exists); as the runner's own user otherwise.
    Switch,
}

/// The optional parts of a [`RunSpec`]; build them with `..RunOptions::default()`.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Which Unix user the processes run as.
    pub user_mode: UserMode,
    /// The HTTP health check, used when the task has a port named `health` (the spec's
    /// defaults when `None`).
    pub health: Option<HealthCheckConfig>,
    /// How long a graceful kill waits after `POST /quitquitquit` and again after
    /// `POST /abortabortabort` before it signals the processes (tasks with a `health` port).
    pub escalation_wait: Duration,
    /// Whether RAM and disk are sampled and the task's limits enforced.
    pub enforce_limits: bool,
}

impl Default for RunOptions {
    fn default() -> RunOptions {
        RunOptions {
            user_mode: UserMode::Current,
            health: None,
            escalation_wait: Duration::from_secs(5),
            enforce_limits: true,
        }
    }
}

/// Why a task could not be started.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunnerError {
    /// The task is invalid; nothing ran.
    #[error(transparent)]
    Invalid(#[from] InvalidTask),
    /// The sandbox or checkpoint could not be set up.
    #[error("cannot prepare {}: {error}; check that the directory is writable", path.display())]
    Setup {
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        error: std::io::Error,
    },
    /// The runner thread could not be started.
    #[error("cannot start the runner thread: {0}")]
    Thread(std::io::Error),
    /// The checkpoint cannot be used (e.g. another runner holds it).
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// The checkpoint to recover from does not describe a task.
    #[error("cannot recover from {path}: {why}; remove the task's directory if it should not run")]
    Unrecoverable {
        /// The checkpoint.
        path: PathBuf,
        /// What is missing.
        why: String,
    },
    /// The checkpoint belongs to another task.
    #[error(
        "checkpoint {path} belongs to task {found:?}, not {wanted:?}; use another task id or checkpoint"
    )]
    WrongTask {
        /// The checkpoint.
        path: PathBuf,
        /// The task id asked for.
        wanted: String,
        /// The task id in the checkpoint.
        found: String,
    },
    /// The processes should run as a Unix user that does not exist.
    #[error(
        "user {user:?} does not exist on this machine; create it, or run the executor with --run-as-executor-user"
    )]
    UnknownUser {
        /// The user's name.
        user: String,
    },
}

/// A snapshot of a task and its processes.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskStatus {
    /// The task's state.
    pub state: TaskState,
    /// Each process's latest run, by name.
    pub processes: BTreeMap<String, ProcessStatus>,
    /// Why the task failed, was killed or was lost; e.g. `process "x" failed with exit code 3`.
    pub message: Option<String>,
    /// The latest resource sample (zero until the first).
    pub usage: ResourceUsage,
    /// Whether the runner took over from an earlier one through the checkpoint.
    pub recovered: bool,
}

/// The latest run of one process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessStatus {
    /// The state of its latest run.
    pub state: ProcessState,
    /// How many runs were started.
    pub runs: u32,
    /// How many runs failed.
    pub failures: u32,
    /// The pid of the latest run, once started.
    pub pid: Option<u32>,
    /// The exit code of the latest ended run; negative for the signal that ended it.
    pub return_code: Option<i32>,
}

impl TaskStatus {
    /// Whether any process run was ever started.
    pub fn has_started(&self) -> bool {
        self.processes.values().any(|p| p.runs > 0)
    }
}

/// Starts tasks. See [`TaskRunner::start`].
#[derive(Debug)]
pub struct TaskRunner;

impl TaskRunner {
    /// Validates the task, prepares its sandbox and checkpoint, and starts running it on a
    /// thread of its own. Processes run as `bash -c CMDLINE` in the sandbox with only `HOME`,
    /// `USER`, `LOGNAME` and `PATH` set, each leading its own process group, logging to
    /// `<sandbox>/.logs/<process>/<run>/{stdout,stderr}`; an EXIT trap set before the command
    /// line records the shell's exit status next to them, for a runner that recovers the task.
    ///
    /// When the checkpoint already records this task, the runner carries on from it instead
    /// (see [`TaskRunner::recover`]): processes still running are reattached, nothing that ran
    /// is run again, and a task that already ended is not started at all.
    ///
    /// ```
    /// use aurora_thermos::{ProcessSpec, RunSpec, TaskRunner, TaskSpec, TaskState};
    /// let dir = tempfile::tempdir().unwrap();
    /// let task = TaskSpec::sequential("hello", vec![ProcessSpec::new("greet", "echo hi")]);
    /// let handle = TaskRunner::start(RunSpec {
    ///     task,
    ///     task_id: "hello-1".into(),
    ///     sandbox: dir.path().join("sandbox"),
    ///     checkpoint: dir.path().join("checkpoint"),
    ///     user: "nobody".into(),
    ///     ports: Default::default(),
    ///     options: Default::default(),
    /// })
    /// .unwrap();
    /// assert_eq!(handle.wait().state, TaskState::Success);
    /// let out = std::fs::read_to_string(dir.path().join("sandbox/.logs/greet/0/stdout")).unwrap();
    /// assert_eq!(out, "hi\n");
    /// ```
    pub fn start(spec: RunSpec) -> Result<RunnerHandle, RunnerError> {
        spec.task.dependencies()?;
        let identity = resolve_identity(&spec.user, spec.options.user_mode)?;
        let (ckpt, existing) = CheckpointWriter::open(&spec.checkpoint)?;
        if let Some(view) = TaskView::replay(&existing) {
            if view.task_id != spec.task_id {
                return Err(RunnerError::WrongTask {
                    path: spec.checkpoint.clone(),
                    wanted: spec.task_id,
                    found: view.task_id,
                });
            }
            let task = view.task.clone().unwrap_or(spec.task);
            return resume(view, task, ckpt, spec.options);
        }
        let sandbox = prepare_sandbox(&spec.sandbox, identity.as_ref())?;
        let health = health_for(&spec.ports, &spec.options);
        let mut run = Run::new(
            spec.task_id,
            spec.task,
            sandbox,
            spec.user,
            spec.ports,
            identity,
            spec.options,
            ckpt,
        )?;
        run.checkpoint(CheckpointRecord::Header {
            task_id: run.task_id.clone(),
            launch_time_ms: now_ms(),
            sandbox: run.sandbox.clone(),
            user: run.user.clone(),
            ports: run.ports.clone(),
            log_dir: run.sandbox.join(".logs"),
            task: Some(Box::new(run.task.clone())),
            identity: run
                .identity
                .as_ref()
                .map(|i| (i.uid, i.gid, i.groups.clone())),
            health,
        });
        for i in 0..run.procs.len() {
            run.set_process_state(i, ProcessState::Waiting);
        }
        run.set_task_state(TaskState::Active);
        run.spawn_thread()
    }

    /// Carries on with the task a checkpoint describes, as a runner restarted after a crash
    /// does: processes still running (same pid and start time) are reattached and watched,
    /// those that ended meanwhile are settled from the exit status their shell recorded (or
    /// marked LOST), and the task continues from its recorded state. A task that already ended
    /// is not run again: the handle reports its final status at once.
    pub fn recover(checkpoint: &Path, options: RunOptions) -> Result<RunnerHandle, RunnerError> {
        let (ckpt, existing) = CheckpointWriter::open(checkpoint)?;
        let unrecoverable = |why: &str| RunnerError::Unrecoverable {
            path: checkpoint.to_owned(),
            why: why.to_owned(),
        };
        let view = TaskView::replay(&existing)
            .ok_or_else(|| unrecoverable("it has no readable header record"))?;
        let task = view
            .task
            .clone()
            .ok_or_else(|| unrecoverable("its header does not record the task"))?;
        task.dependencies()?;
        resume(view, task, ckpt, options)
    }
}

/// Where processes run: the sandbox, created (and given to the task's user) if needed.
fn prepare_sandbox(sandbox: &Path, identity: Option<&Identity>) -> Result<PathBuf, RunnerError> {
    let setup = |error| RunnerError::Setup {
        path: sandbox.to_owned(),
        error,
    };
    fs::create_dir_all(sandbox).map_err(setup)?;
    if let Some(id) = identity {
        std::os::unix::fs::chown(sandbox, Some(id.uid), Some(id.gid)).map_err(setup)?;
    }
    fs::canonicalize(sandbox).map_err(setup)
}

fn health_for(ports: &BTreeMap<String, u16>, options: &RunOptions) -> Option<HealthCheckConfig> {
    ports
        .contains_key("health")
        .then(|| options.health.clone().unwrap_or_default())
}

/// The uid and groups to run processes with, or `None` for the runner's own.
fn resolve_identity(user: &str, mode: UserMode) -> Result<Option<Identity>, RunnerError> {
    if mode == UserMode::Current || !nix::unistd::geteuid().is_root() {
        return Ok(None);
    }
    let unknown = || RunnerError::UnknownUser {
        user: user.to_owned(),
    };
    let u = nix::unistd::User::from_name(user)
        .ok()
        .flatten()
        .ok_or_else(unknown)?;
    let name = std::ffi::CString::new(user).map_err(|_| unknown())?;
    let groups = nix::unistd::getgrouplist(&name, u.gid)
        .unwrap_or_else(|_| vec![u.gid])
        .into_iter()
        .map(|g| g.as_raw())
        .collect();
    Ok(Some(Identity {
        uid: u.uid.as_raw(),
        gid: u.gid.as_raw(),
        groups,
    }))
}

fn resume(
    view: TaskView,
    task: TaskSpec,
    ckpt: CheckpointWriter,
    mut options: RunOptions,
) -> Result<RunnerHandle, RunnerError> {
    if options.health.is_none() {
        options.health = view.health.clone();
    }
    let identity = view
        .identity
        .clone()
        .map(|(uid, gid, groups)| Identity { uid, gid, groups });
    let sandbox = view.sandbox.clone();
    let mut run = Run::new(
        view.task_id.clone(),
        task,
        sandbox,
        view.user.clone(),
        view.ports.clone(),
        identity,
        options,
        ckpt,
    )?;
    if view.is_terminal() {
        // Never run a task twice: report how it ended.
        run.restore_terminal(&view);
        run.publish();
        let (events, _) = channel();
        return Ok(RunnerHandle {
            shared: run.shared.clone(),
            events: Mutex::new(events),
            thread: Mutex::new(None),
        });
    }
    if let Some(torn) = &view.torn {
        tracing::warn!(task = %view.task_id, "checkpoint had a torn tail ({torn}); carrying on from the last good record");
    }
    run.restore(&view);
    run.spawn_thread()
}

struct Shared {
    status: Mutex<TaskStatus>,
    changed: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, TaskStatus> {
        self.status.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A running task: watch it, kill it, wait for it.
pub struct RunnerHandle {
    shared: Arc<Shared>,
    events: Mutex<Sender<Event>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for RunnerHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunnerHandle")
            .field("status", &*self.shared.lock())
            .finish()
    }
}

impl RunnerHandle {
    /// The task's current status.
    pub fn status(&self) -> TaskStatus {
        self.shared.lock().clone()
    }

    /// Kills the task: SIGTERM to every process of the task (including descendants that left
    /// its process groups), SIGKILL to whatever still runs after `grace`. The task ends KILLED
    /// unless it had already ended. Returns at once; use [`RunnerHandle::wait`].
    pub fn kill(&self, grace: Duration) {
        let tx = self.events.lock().unwrap_or_else(|e| e.into_inner());
        // The runner may have ended already; then there is nothing to kill.
        let _ = tx.send(Event::Kill(grace));
    }

    /// Waits until the task has ended and returns its final status.
    pub fn wait(&self) -> TaskStatus {
        let status = self.wait_until(|s| s.state.is_terminal(), None);
        if let Some(t) = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = t.join();
        }
        status
    }

    /// Waits until `condition` holds for the status, or `timeout` (if any) passes, and
    /// returns the status at that point. Returns early when the task ends.
    pub fn wait_until(
        &self,
        condition: impl Fn(&TaskStatus) -> bool,
        timeout: Option<Duration>,
    ) -> TaskStatus {
        let deadline = timeout.map(|t| Instant::now() + t);
        let mut status = self.shared.lock();
        loop {
            if condition(&status) || status.state.is_terminal() {
                return status.clone();
            }
            match deadline {
                None => {
                    status = self
                        .shared
                        .changed
                        .wait(status)
                        .unwrap_or_else(|e| e.into_inner());
                }
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        return status.clone();
                    }
                    status = self
                        .shared
                        .changed
                        .wait_timeout(status, d - now)
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
                }
            }
        }
    }
}

enum Event {
    Exited(Exited),
    Kill(Duration),
    Usage(ResourceUsage),
    Unhealthy(String),
}

/// The runner's view of one process.
struct Proc {
    deps: Vec<usize>,
    state: ProcessState,
    runs: u32,
    failures: u32,
    seq: u64,
    pid: Option<u32>,
    start_ticks: Option<u64>,
    /// Not a child of this runner (taken over from an earlier runner): its end is polled.
    reattached: bool,
    return_code: Option<i32>,
    last_end: Option<Instant>,
    /// Finished for good: succeeded (not a daemon), or an ephemeral that ran out of retries.
    done: bool,
    /// Ran out of retries (and is not ephemeral).
    failed: bool,
    /// Why its last run failed, for the task's message.
    why: Option<String>,
}

impl Proc {
    fn running(&self) -> bool {
        matches!(self.state, ProcessState::Forked | ProcessState::Running)
    }
}

/// The log directory of a run, with its files, made before it starts.
struct PreparedLogs {
    run: u32,
    dir: PathBuf,
}

/// How many runs may have their logs prepared ahead at once.
const PREPARE_AHEAD: usize = 4;

/// Where a graceful kill of a task with a `health` port stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Escalation {
    NotStarted,
    Quit(Instant),
    Abort(Instant),
    Done,
}

struct Run {
    task_id: String,
    task: TaskSpec,
    sandbox: PathBuf,
    user: String,
    ports: BTreeMap<String, u16>,
    identity: Option<Identity>,
    options: RunOptions,
    procs: Vec<Proc>,
    ckpt: CheckpointWriter,
    ckpt_broken: bool,
    shared: Arc<Shared>,
    events: Sender<Event>,
    rx: Receiver<Event>,
    tree: ProcessTree,
    state: TaskState,
    killed: bool,
    /// Set once a reason to fail is known.
    failure: Option<String>,
    deadline: Option<Instant>,
    term_sent: bool,
    /// Set when a walk of `/proc` found no process of the task and none was started since.
    tree_seen_empty: bool,
    /// Logs made ahead for the next run of these processes.
    prepared: HashMap<usize, PreparedLogs>,
    escalation: Escalation,
    runner_pid: u32,
    usage: ResourceUsage,
    recovered: bool,
    sampler: Option<SamplerRegistration>,
    /// Dropped to stop the health checker.
    health_stop: Option<Sender<()>>,
}

impl Run {
    #[expect(
        clippy::too_many_arguments,
        reason = "private constructor fed from RunSpec or a checkpoint"
    )]
    fn new(
        task_id: String,
        task: TaskSpec,
        sandbox: PathBuf,
        user: String,
        ports: BTreeMap<String, u16>,
        identity: Option<Identity>,
        options: RunOptions,
        ckpt: CheckpointWriter,
    ) -> Result<Run, RunnerError> {
        let deps = task.dependencies()?;
        let (events, rx) = channel();
        let processes = task
            .processes
            .iter()
            .map(|p| {
                (
                    p.name.clone(),
                    ProcessStatus {
                        state: ProcessState::Waiting,
                        runs: 0,
                        failures: 0,
                        pid: None,
                        return_code: None,
                    },
                )
            })
            .collect();
        let shared = Arc::new(Shared {
            status: Mutex::new(TaskStatus {
                state: TaskState::Active,
                processes,
                message: None,
                usage: ResourceUsage::default(),
                recovered: false,
            }),
            changed: Condvar::new(),
        });
        let procs = deps
            .into_iter()
            .map(|deps| Proc {
                deps,
                state: ProcessState::Waiting,
                runs: 0,
                failures: 0,
                seq: 0,
                pid: None,
                start_ticks: None,
                reattached: false,
                return_code: None,
                last_end: None,
                done: false,
                failed: false,
                why: None,
            })
            .collect();
        Ok(Run {
            task_id,
            task,
            tree: ProcessTree::new(&sandbox),
            sandbox,
            user,
            ports,
            identity,
            options,
            procs,
            ckpt,
            ckpt_broken: false,
            shared,
            events,
            rx,
            state: TaskState::Active,
            killed: false,
            failure: None,
            deadline: None,
            term_sent: false,
            tree_seen_empty: false,
            prepared: HashMap::new(),
            escalation: Escalation::NotStarted,
            runner_pid: std::process::id(),
            usage: ResourceUsage::default(),
            recovered: false,
            sampler: None,
            health_stop: None,
        })
    }

    fn spawn_thread(mut self) -> Result<RunnerHandle, RunnerError> {
        if self.options.enforce_limits {
            let tx = Mutex::new(self.events.clone());
            self.sampler = Some(ResourceSampler::global().register(&self.sandbox, move |u| {
                // The runner may have ended; then nobody needs the sample.
                let _ = lock_ignoring_poison(&tx).send(Event::Usage(u));
            }));
            self.update_roots();
        }
        if self.state == TaskState::Active {
            self.start_health_checker();
        }
        let shared = self.shared.clone();
        let events = self.events.clone();
        let thread = std::thread::Builder::new()
            .name(format!("thermos-{}", self.task_id))
            .spawn(move || self.main())
            .map_err(RunnerError::Thread)?;
        Ok(RunnerHandle {
            shared,
            events: Mutex::new(events),
            thread: Mutex::new(Some(thread)),
        })
    }

    fn start_health_checker(&mut self) {
        let Some(&port) = self.ports.get("health") else {
            return;
        };
        let config = self.options.health.clone().unwrap_or_default();
        let (stop, stopped) = channel::<()>();
        let events = self.events.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("thermos-health-{}", self.task_id))
            .spawn(move || health_loop(port, &config, &stopped, &events));
        match spawned {
            Ok(_) => self.health_stop = Some(stop),
            Err(e) => tracing::error!(task = %self.task_id, "cannot start the health checker: {e}"),
        }
    }

    fn update_roots(&self) {
        if let Some(s) = &self.sampler {
            s.set_roots(
                self.procs
                    .iter()
                    .filter(|p| p.running())
                    .filter_map(|p| p.pid.map(|p| p as i32))
                    .collect(),
            );
        }
    }

    fn checkpoint(&mut self, rec: CheckpointRecord) {
        if let Err(e) = self.ckpt.append(&rec)
            && !self.ckpt_broken
        {
            self.ckpt_broken = true;
            tracing::error!(
                task = %self.task_id,
                "cannot write the checkpoint {}: {e}; the task goes on without it",
                self.ckpt.path().display()
            );
        }
    }

    fn message(&self) -> Option<String> {
        if self.killed {
            Some("task killed".to_owned())
        } else {
            self.failure.clone()
        }
    }

    fn publish(&self) {
        let mut s = self.shared.lock();
        s.state = self.state;
        s.message = self.message();
        s.usage = self.usage;
        s.recovered = self.recovered;
        for (p, spec) in self.procs.iter().zip(&self.task.processes) {
            s.processes.insert(
                spec.name.clone(),
                ProcessStatus {
                    state: p.state,
                    runs: p.runs,
                    failures: p.failures,
                    pid: p.pid,
                    return_code: p.return_code,
                },
            );
        }
        drop(s);
        self.shared.changed.notify_all();
    }

    fn set_task_state(&mut self, state: TaskState) {
        self.state = state;
        if state != TaskState::Active {
            // Health checks are for ACTIVE tasks only.
            self.health_stop = None;
        }
        let deadline_ms = self
            .deadline
            .map(|d| now_ms() + d.saturating_duration_since(Instant::now()).as_millis() as i64);
        self.checkpoint(CheckpointRecord::Task {
            state,
            timestamp_ms: now_ms(),
            runner_pid: self.runner_pid,
            message: self.message(),
            killed: self.killed,
            deadline_ms,
        });
        tracing::info!(task = %self.task_id, "task {state}");
        self.publish();
    }

    fn set_process_state(&mut self, i: usize, state: ProcessState) {
        let p = &mut self.procs[i];
        p.state = state;
        let running = state == ProcessState::Running;
        let rec = CheckpointRecord::Process {
            seq: p.seq,
            process: self.task.processes[i].name.clone(),
            run: p.runs.saturating_sub(1),
            state,
            timestamp_ms: now_ms(),
            pid: p.pid.filter(|_| state != ProcessState::Forked),
            start_ticks: p.start_ticks.filter(|_| running),
            return_code: p.return_code.filter(|_| state.is_terminal()),
        };
        p.seq += 1;
        self.checkpoint(rec);
        self.update_roots();
        self.publish();
    }

    /// Fills in a task that already ended, for its final status.
    fn restore_terminal(&mut self, view: &TaskView) {
        self.state = view.state.unwrap_or(TaskState::Lost);
        self.failure = view.message.clone();
        self.killed = view.killed;
        self.recovered = true;
        for (i, spec) in self.task.processes.iter().enumerate() {
            if let Some(last) = view.processes.get(&spec.name).and_then(|h| h.runs.last()) {
                let h = &view.processes[&spec.name];
                let p = &mut self.procs[i];
                p.state = last.state;
                p.runs = last.run + 1;
                p.failures = h
                    .runs
                    .iter()
                    .filter(|r| r.state == ProcessState::Failed)
                    .count() as u32;
                p.pid = last.pid;
                p.return_code = last.return_code;
            }
        }
    }

    /// Takes over from an earlier runner of the same task.
    fn restore(&mut self, view: &TaskView) {
        self.recovered = true;
        self.failure = view.message.clone().filter(|_| !view.killed);
        self.killed = view.killed;
        self.state = view.state.unwrap_or(TaskState::Active);
        if let Some(ms) = view.deadline_ms {
            self.deadline =
                Some(Instant::now() + Duration::from_millis((ms - now_ms()).max(0) as u64));
        }
        for i in 0..self.procs.len() {
            let name = self.task.processes[i].name.clone();
            let Some(h) = view.processes.get(&name) else {
                self.set_process_state(i, ProcessState::Waiting);
                continue;
            };
            let p = &mut self.procs[i];
            p.seq = h.next_seq;
            p.failures = h
                .runs
                .iter()
                .filter(|r| r.state == ProcessState::Failed)
                .count() as u32;
            p.last_end = h
                .runs
                .iter()
                .filter_map(|r| r.end_ms)
                .max()
                .map(instant_of_ms);
            let Some(last) = h.runs.last() else { continue };
            p.runs = if last.state == ProcessState::Waiting {
                last.run
            } else {
                last.run + 1
            };
            p.state = last.state;
            p.pid = last.pid;
            p.start_ticks = last.start_ticks;
            p.return_code = last.return_code;
            match last.state {
                ProcessState::Waiting => {}
                ProcessState::Success | ProcessState::Failed => self.settle(i),
                ProcessState::Killed | ProcessState::Lost => {}
                ProcessState::Running => {
                    let same = last
                        .pid
                        .and_then(|pid| proc_info(pid as i32))
                        .is_some_and(|info| {
                            !info.zombie && last.start_ticks.is_none_or(|s| s == info.start)
                        });
                    if same {
                        self.reattach(i);
                    } else {
                        self.vanished(i);
                    }
                }
                ProcessState::Forked => {
                    // It may have started without its RUNNING record: look for its shell.
                    let marker = self.exit_file(i);
                    match find_by_marker(&marker) {
                        Some((pid, start)) => {
                            let p = &mut self.procs[i];
                            p.pid = Some(pid);
                            p.start_ticks = Some(start);
                            self.set_process_state(i, ProcessState::Running);
                            self.reattach(i);
                        }
                        None => self.vanished(i),
                    }
                }
            }
        }
        // Record the new runner (its pid) before acting.
        self.set_task_state(self.state);
        tracing::info!(task = %self.task_id, "recovered from the checkpoint in state {}", self.state);
    }

    fn reattach(&mut self, i: usize) {
        let p = &mut self.procs[i];
        p.reattached = true;
        if let Some(pid) = p.pid {
            self.tree.add_root(pid, p.start_ticks);
            tracing::info!(task = %self.task_id, process = %self.task.processes[i].name, pid, "reattached to a running process");
        }
        self.update_roots();
        self.publish();
    }

    /// A process that ended while no runner watched it: its shell's exit status settles it;
    /// without one it is LOST.
    fn vanished(&mut self, i: usize) {
        let code = fs::read_to_string(self.exit_file(i))
            .ok()
            .and_then(|s| s.trim().parse::<i32>().ok());
        match code {
            Some(c) => self.ended(i, Exit::Code(c)),
            None => {
                let p = &mut self.procs[i];
                p.last_end = Some(Instant::now());
                p.reattached = false;
                p.return_code = None;
                tracing::warn!(task = %self.task_id, process = %self.task.processes[i].name, "process vanished without an exit status; LOST");
                self.set_process_state(i, ProcessState::Lost);
            }
        }
    }

    fn exit_file(&self, i: usize) -> PathBuf {
        log_path(
            &self.sandbox,
            &self.task.processes[i].name,
            self.procs[i].runs.saturating_sub(1),
            EXIT_FILE,
        )
    }

    /// Looks at reattached processes; settles those that ended.
    fn poll_reattached(&mut self) {
        for i in 0..self.procs.len() {
            let p = &self.procs[i];
            if !(p.reattached && p.running()) {
                continue;
            }
            let alive = p
                .pid
                .and_then(|pid| proc_info(pid as i32))
                .is_some_and(|info| !info.zombie && p.start_ticks.is_none_or(|s| s == info.start));
            if !alive {
                self.vanished(i);
            }
        }
    }

    fn any_reattached(&self) -> bool {
        self.procs.iter().any(|p| p.reattached && p.running())
    }

    fn main(mut self) {
        let mut next_track = Instant::now() + TRACK_INTERVAL;
        loop {
            if self.any_reattached() {
                self.poll_reattached();
            }
            let before = self.state;
            let wake = self.step();
            if self.state.is_terminal() {
                return;
            }
            if self.state != before {
                // The next state's work is due now, not after a poll interval.
                continue;
            }
            let now = Instant::now();
            if now >= next_track {
                self.tree.track();
                next_track = now + TRACK_INTERVAL;
            }
            let mut until = wake.unwrap_or(next_track).min(next_track);
            if matches!(self.state, TaskState::Cleaning | TaskState::Finalizing) {
                until = until.min(now + CLEAN_POLL);
            }
            if self.any_reattached() {
                until = until.min(now + REATTACHED_POLL);
            }
            if let Some(d) = self.deadline {
                until = until.min(d);
            }
            match self.rx.recv_timeout(until.saturating_duration_since(now)) {
                Ok(ev) => self.handle(ev),
                Err(RecvTimeoutError::Timeout) => {}
                // Cannot happen while the run holds a sender; stop cleanly.
                Err(RecvTimeoutError::Disconnected) => return,
            }
            // Take whatever else is queued before deciding.
            while let Ok(ev) = self.rx.try_recv() {
                self.handle(ev);
            }
        }
    }

    /// The extra time a graceful kill over HTTP takes, for tasks with a health port.
    fn escalation_time(&self) -> Duration {
        if self.ports.contains_key("health") {
            self.options.escalation_wait * 2
        } else {
            Duration::ZERO
        }
    }

    fn handle(&mut self, ev: Event) {
        match ev {
            Event::Exited(e) => self.on_exit(e),
            Event::Kill(grace) => {
                if self.state.is_terminal() {
                    return;
                }
                self.killed = true;
                let deadline = Instant::now() + grace + self.escalation_time();
                self.deadline = Some(self.deadline.map_or(deadline, |d| d.min(deadline)));
                if self.state == TaskState::Active {
                    self.set_task_state(TaskState::Cleaning);
                } else {
                    // Record the kill and its deadline.
                    self.set_task_state(self.state);
                }
            }
            Event::Usage(u) => {
                self.usage = u;
                self.check_limits();
                self.publish();
            }
            Event::Unhealthy(why) => {
                if self.state == TaskState::Active {
                    tracing::warn!(task = %self.task_id, "failed health check: {why}");
                    self.fail(format!("failed health check: {why}"));
                }
            }
        }
    }

    fn fail(&mut self, why: String) {
        self.failure.get_or_insert(why);
        if self.state == TaskState::Active {
            self.enter_cleaning();
        }
    }

    fn check_limits(&mut self) {
        if self.state != TaskState::Active || self.failure.is_some() || self.killed {
            return;
        }
        let Some(res) = self.task.resources.clone() else {
            return;
        };
        let over = |what: &str, used: u64, limit: u64| {
            (limit > 0 && used > limit).then(|| {
                format!(
                    "task used {} of {what}, over its {what} limit of {} by {}",
                    mib(used),
                    mib(limit),
                    mib(used - limit)
                )
            })
        };
        let why = over("RAM", self.usage.rss_bytes, res.ram)
            .or_else(|| over("disk", self.usage.disk_bytes.unwrap_or(0), res.disk));
        if let Some(why) = why {
            tracing::warn!(task = %self.task_id, "{why}; killing it");
            self.fail(why);
        }
    }

    fn on_exit(&mut self, e: Exited) {
        let Some(i) = self
            .procs
            .iter()
            .position(|p| p.pid == Some(e.pid) && p.running())
        else {
            return;
        };
        self.ended(i, e.exit);
    }

    /// A run of process `i` ended with `exit`.
    fn ended(&mut self, i: usize, exit: Exit) {
        let spec = self.task.processes[i].clone();
        let stopping = self.state != TaskState::Active && !spec.is_final
            || self.killed
            || self.deadline.is_some_and(|d| Instant::now() >= d);
        let p = &mut self.procs[i];
        p.reattached = false;
        p.last_end = Some(Instant::now());
        p.return_code = Some(exit_code(exit));
        let state = match exit {
            Exit::Code(0) => ProcessState::Success,
            // Whatever ends after the runner started stopping the task was stopped by it.
            _ if stopping => ProcessState::Killed,
            Exit::Code(_) | Exit::Signal(_) => {
                p.failures += 1;
                p.why = Some(format!(
                    "process {:?} failed with {} after {} run(s)",
                    spec.name,
                    describe_exit(exit),
                    p.runs
                ));
                ProcessState::Failed
            }
        };
        p.state = state;
        self.settle(i);
        tracing::info!(task = %self.task_id, process = %spec.name, "process {state} ({exit:?})");
        self.set_process_state(i, state);
    }

    /// Decides, from the state of its latest run, whether a process is done, failed for good,
    /// or to be run again.
    fn settle(&mut self, i: usize) {
        let spec = &self.task.processes[i];
        let p = &mut self.procs[i];
        match p.state {
            ProcessState::Success if !spec.daemon => p.done = true,
            ProcessState::Failed => {
                if p.why.is_none() {
                    p.why = Some(format!(
                        "process {:?} failed with exit code {} after {} run(s)",
                        spec.name,
                        p.return_code
                            .map_or("unknown".to_owned(), |c| c.to_string()),
                        p.runs
                    ));
                }
                if spec.max_failures == 0 || p.failures < spec.max_failures {
                    // Retried after min_duration.
                } else if spec.ephemeral {
                    p.done = true;
                } else {
                    p.failed = true;
                }
            }
            _ => {}
        }
    }

    /// Does what the current state calls for; returns when to look again at the latest.
    fn step(&mut self) -> Option<Instant> {
        match self.state {
            TaskState::Active => {
                let (wake, outcome) = self.advance(false);
                if matches!(outcome, PlanOutcome::Running) {
                    self.prepare_ahead(false);
                }
                match outcome {
                    PlanOutcome::Running => {}
                    PlanOutcome::Complete => {
                        self.enter_cleaning();
                    }
                    PlanOutcome::Stuck(why) => {
                        self.failure.get_or_insert(why);
                        self.enter_cleaning();
                    }
                }
                if self.state == TaskState::Active {
                    return wake;
                }
                None
            }
            TaskState::Cleaning => {
                if self.past_deadline() {
                    self.kill_everything();
                    return None;
                }
                if !self.term_sent {
                    if let Some(wake) = self.escalate() {
                        return Some(wake);
                    }
                    self.term_sent = true;
                    let signalled = self.tree.signal_all(Signal::SIGTERM);
                    if signalled == 0 && !self.regular_running() {
                        // The walk found nobody: no need for another one.
                        self.tree_seen_empty = true;
                        self.term_sent = false;
                        self.set_task_state(TaskState::Finalizing);
                        return None;
                    }
                }
                if !self.regular_running() && self.tree.refresh().is_empty() {
                    self.tree_seen_empty = true;
                    self.term_sent = false;
                    self.set_task_state(TaskState::Finalizing);
                }
                None
            }
            TaskState::Finalizing => {
                if self.past_deadline() {
                    self.kill_everything();
                    return None;
                }
                let (wake, outcome) = self.advance(true);
                if matches!(outcome, PlanOutcome::Running) {
                    self.prepare_ahead(true);
                }
                match outcome {
                    PlanOutcome::Running => wake,
                    PlanOutcome::Complete | PlanOutcome::Stuck(_) => {
                        if let PlanOutcome::Stuck(why) = outcome {
                            self.failure.get_or_insert(why);
                        }
                        // Leftovers of the final processes go the same way.
                        if self.tree_seen_empty || self.tree.refresh().is_empty() {
                            self.finish();
                        } else if !self.term_sent {
                            self.term_sent = true;
                            self.tree.signal_all(Signal::SIGTERM);
                        }
                        None
                    }
                }
            }
            TaskState::Success | TaskState::Failed | TaskState::Killed | TaskState::Lost => None,
        }
    }

    /// The HTTP steps of a graceful kill: `POST /quitquitquit`, wait, `POST /abortabortabort`,
    /// wait. Returns when to look again while they last; `None` once signals are due.
    fn escalate(&mut self) -> Option<Instant> {
        let port = *self.ports.get("health")?;
        if !self.regular_running() {
            self.escalation = Escalation::Done;
        }
        let now = Instant::now();
        let wait = self.options.escalation_wait;
        let post = |path: &str| {
            if let Err(e) =
                health::http_request(reqwest::Method::POST, port, path, Duration::from_secs(1))
            {
                tracing::info!("POST {path} on port {port}: {e}");
            }
        };
        match self.escalation {
            Escalation::NotStarted => {
                tracing::info!(task = %self.task_id, "asking the task to quit: POST /quitquitquit");
                post("/quitquitquit");
                self.escalation = Escalation::Quit(now + wait);
                Some(now + wait)
            }
            Escalation::Quit(until) if now < until => Some(until),
            Escalation::Quit(_) => {
                tracing::info!(task = %self.task_id, "POST /abortabortabort");
                post("/abortabortabort");
                self.escalation = Escalation::Abort(now + wait);
                Some(now + wait)
            }
            Escalation::Abort(until) if now < until => Some(until),
            Escalation::Abort(_) | Escalation::Done => {
                self.escalation = Escalation::Done;
                None
            }
        }
    }

    fn past_deadline(&self) -> bool {
        self.deadline.is_some_and(|d| Instant::now() >= d)
    }

    fn enter_cleaning(&mut self) {
        let wait = Duration::from_secs(self.task.finalization_wait) + self.escalation_time();
        let deadline = Instant::now() + wait;
        self.deadline = Some(self.deadline.map_or(deadline, |d| d.min(deadline)));
        self.set_task_state(TaskState::Cleaning);
    }

    /// SIGKILL to every process of the task, then the terminal state.
    fn kill_everything(&mut self) {
        // Repeat until a walk finds nobody: each pass freezes the tree before killing it.
        for _ in 0..50 {
            if self.tree.signal_all(Signal::SIGKILL) == 0 {
                break;
            }
        }
        let until = Instant::now() + KILL_WAIT;
        while self.procs.iter().any(Proc::running) {
            let now = Instant::now();
            if now >= until {
                break;
            }
            if self.any_reattached() {
                self.poll_reattached();
            }
            match self.rx.recv_timeout((until - now).min(REATTACHED_POLL)) {
                Ok(Event::Exited(e)) => self.on_exit(e),
                Ok(_) | Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        for i in 0..self.procs.len() {
            if self.procs[i].running() {
                self.set_process_state(i, ProcessState::Lost);
            }
        }
        self.finish();
    }

    fn finish(&mut self) {
        self.discard_prepared();
        let state = if self.killed {
            TaskState::Killed
        } else if self.failure.is_some() {
            TaskState::Failed
        } else {
            TaskState::Success
        };
        self.set_task_state(state);
    }

    /// Starts what may start in the regular (or final) plan and tells whether the plan is done.
    fn advance(&mut self, finals: bool) -> (Option<Instant>, PlanOutcome) {
        let now = Instant::now();
        let in_plan: Vec<usize> = (0..self.procs.len())
            .filter(|&i| self.task.processes[i].is_final == finals)
            .collect();
        let failed: Vec<usize> = in_plan
            .iter()
            .copied()
            .filter(|&i| self.procs[i].failed)
            .collect();
        let limit = if finals {
            1
        } else {
            self.task.max_failures as usize
        };
        if limit > 0 && failed.len() >= limit {
            let why = failed
                .iter()
                .find_map(|&i| self.procs[i].why.clone())
                .unwrap_or_else(|| "too many processes failed".to_owned());
            return (None, PlanOutcome::Stuck(why));
        }
        let mut running = self.procs.iter().filter(|p| p.running()).count();
        let mut wake: Option<Instant> = None;
        let mut blocked = Vec::new();
        for &i in &in_plan {
            let p = &self.procs[i];
            if p.done || p.failed || p.running() {
                continue;
            }
            if p.deps.iter().any(|&d| self.procs[d].failed) {
                blocked.push(i);
                continue;
            }
            if !p.deps.iter().all(|&d| self.procs[d].done) {
                continue;
            }
            if let Some(end) = p.last_end {
                let ready = end + Duration::from_secs(self.task.processes[i].min_duration);
                if now < ready {
                    wake = Some(wake.map_or(ready, |w| w.min(ready)));
                    continue;
                }
            }
            if self.task.max_concurrency > 0 && running >= self.task.max_concurrency as usize {
                continue;
            }
            self.launch(i);
            running += 1;
        }
        let open = in_plan.iter().any(|&i| {
            let (p, s) = (&self.procs[i], &self.task.processes[i]);
            !s.ephemeral && !p.done && !p.failed
        });
        let any_running = in_plan.iter().any(|&i| self.procs[i].running());
        let outcome = if !open {
            PlanOutcome::Complete
        } else if !any_running && wake.is_none() && self.runnable_count(&in_plan) == 0 {
            let names: Vec<String> = blocked
                .iter()
                .map(|&i| format!("{:?}", self.task.processes[i].name))
                .collect();
            PlanOutcome::Stuck(format!(
                "processes {} can never run because a process they depend on failed",
                names.join(", ")
            ))
        } else {
            PlanOutcome::Running
        };
        (wake, outcome)
    }

    fn runnable_count(&self, in_plan: &[usize]) -> usize {
        in_plan
            .iter()
            .filter(|&&i| {
                let p = &self.procs[i];
                !p.done
                    && !p.failed
                    && !p.running()
                    && !p.deps.iter().any(|&d| self.procs[d].failed)
            })
            .count()
    }

    /// Whether an ordinary (not final) process runs.
    fn regular_running(&self) -> bool {
        self.procs
            .iter()
            .zip(&self.task.processes)
            .any(|(p, s)| p.running() && !s.is_final)
    }

    fn launch(&mut self, i: usize) {
        self.tree_seen_empty = false;
        let spec = self.task.processes[i].clone();
        let run = self.procs[i].runs;
        self.procs[i].runs += 1;
        self.procs[i].pid = None;
        self.procs[i].start_ticks = None;
        self.procs[i].return_code = None;
        if run > 0 {
            // A new run starts from WAITING, as in the original's checkpoints.
            self.set_process_state(i, ProcessState::Waiting);
        }
        // Recorded before the fork: a runner that dies in between finds the shell by its
        // command line, or calls the run LOST.
        self.set_process_state(i, ProcessState::Forked);
        match self.spawn(i, run) {
            Ok(pid) => {
                self.procs[i].pid = Some(pid);
                let start = proc_info(pid as i32).map(|p| p.start);
                self.procs[i].start_ticks = start;
                self.tree.add_root(pid, start);
                tracing::info!(task = %self.task_id, process = %spec.name, run, pid, "process started");
                self.set_process_state(i, ProcessState::Running);
            }
            Err(e) => {
                tracing::error!(task = %self.task_id, process = %spec.name, "cannot start: {e}");
                let p = &mut self.procs[i];
                p.failures += 1;
                p.last_end = Some(Instant::now());
                // A process that cannot even start will not start on a retry either.
                if spec.ephemeral {
                    p.done = true;
                } else {
                    p.failed = true;
                }
                p.why = Some(format!("process {:?} could not be started: {e}", spec.name));
                self.set_process_state(i, ProcessState::Failed);
            }
        }
    }

    /// Creates the log directory and files of run `run` of process `i`: its directory, empty
    /// `stdout` and `stderr`, and an empty `exit_status` for the shell's trap to fill in.
    /// Existing files (a run number reused after a recovery) are emptied.
    fn make_logs(&self, i: usize, run: u32) -> std::io::Result<PreparedLogs> {
        let name = &self.task.processes[i].name;
        let process_dir = self.sandbox.join(".logs").join(name);
        let logs = process_dir.join(run.to_string());
        // One mkdir for later runs (the process's directory exists by then); an existing run
        // directory (a run number reused after a recovery) gets fresh files below.
        match fs::create_dir(&logs) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                fs::create_dir_all(&process_dir)?;
                fs::create_dir(&logs)?;
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
        // Made now, opened again (without creating) at the start: holding them open would
        // cost two descriptors per task in an executor with hundreds of tasks. The exit file
        // stays empty until the shell exits: a recovering runner reads no status from it.
        for f in ["stdout", "stderr", EXIT_FILE] {
            File::create(logs.join(f))?;
        }
        if let Some(id) = &self.identity {
            for dir in [self.sandbox.join(".logs"), process_dir, logs.clone()] {
                std::os::unix::fs::chown(&dir, Some(id.uid), Some(id.gid))?;
            }
            for f in ["stdout", "stderr", EXIT_FILE] {
                std::os::unix::fs::chown(logs.join(f), Some(id.uid), Some(id.gid))?;
            }
        }
        Ok(PreparedLogs { run, dir: logs })
    }

    /// Prepares the logs of the runs that may start when a running process ends (their
    /// dependencies are done or running), while the running ones run: on a slow filesystem
    /// the directories and files of a run cost about as much as starting bash, and sequential
    /// processes then do not wait for them.
    fn prepare_ahead(&mut self, finals: bool) {
        let mut ready = Vec::new();
        for (i, p) in self.procs.iter().enumerate() {
            if self.prepared.len() + ready.len() >= PREPARE_AHEAD {
                break;
            }
            let spec = &self.task.processes[i];
            if spec.is_final != finals
                || p.done
                || p.failed
                || p.running()
                || self.prepared.contains_key(&i)
                || !p
                    .deps
                    .iter()
                    .all(|&d| self.procs[d].done || self.procs[d].running())
            {
                continue;
            }
            ready.push((i, p.runs));
        }
        for (i, run) in ready {
            match self.make_logs(i, run) {
                Ok(logs) => {
                    self.prepared.insert(i, logs);
                }
                // The launch will try again, and report the error if it persists.
                Err(e) => tracing::debug!(task = %self.task_id, "cannot prepare logs: {e}"),
            }
        }
    }

    /// Removes the logs prepared for runs that never started (the task ended first).
    fn discard_prepared(&mut self) {
        for (_, logs) in self.prepared.drain() {
            for f in ["stdout", "stderr", EXIT_FILE] {
                let _ = fs::remove_file(logs.dir.join(f));
            }
            let _ = fs::remove_dir(&logs.dir);
            if logs.run == 0
                && let Some(process_dir) = logs.dir.parent()
            {
                let _ = fs::remove_dir(process_dir);
            }
        }
    }

    fn spawn(&mut self, i: usize, run: u32) -> std::io::Result<u32> {
        let logs = match self.prepared.remove(&i) {
            Some(logs) if logs.run == run => logs,
            _ => self.make_logs(i, run)?,
        };
        let cmdline = &self.task.processes[i].cmdline;
        let exit_file = logs.dir.join(EXIT_FILE);
        let stdout = File::create(logs.dir.join("stdout"))?;
        let stderr = File::create(logs.dir.join("stderr"))?;
        let path = std::env::var("PATH").unwrap_or_else(|_| DEFAULT_PATH.to_owned());
        let mut cmd = Command::new("/bin/bash");
        cmd.arg("-c")
            .arg(process_script(cmdline, &exit_file))
            .current_dir(&self.sandbox)
            .env_clear()
            .env("HOME", &self.sandbox)
            .env("USER", &self.user)
            .env("LOGNAME", &self.user)
            .env("PATH", path)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr);
        reaper::prepare_child(&mut cmd, self.identity.clone());
        let events = self.events.clone();
        reaper::spawn(
            &mut cmd,
            Box::new(move |e| {
                // The runner may have ended already; then nobody needs the exit.
                let _ = events.send(Event::Exited(e));
            }),
        )
    }
}

/// Runs health checks until the runner drops `stop`; reports a task that fails too many in a
/// row.
fn health_loop(port: u16, config: &HealthCheckConfig, stop: &Receiver<()>, events: &Sender<Event>) {
    let timeout = health::secs(config.timeout_secs);
    let interval = health::secs(config.interval_secs).max(Duration::from_millis(10));
    let mut wait = health::secs(config.initial_interval_secs);
    let mut failures = 0u32;
    loop {
        match stop.recv_timeout(wait) {
            Err(RecvTimeoutError::Timeout) => {}
            Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
        }
        wait = interval;
        match health::check_once(port, timeout) {
            Ok(()) => failures = 0,
            Err(why) => {
                failures += 1;
                tracing::info!(port, failures, "health check failed: {why}");
                if failures > config.max_consecutive_failures {
                    let _ = events.send(Event::Unhealthy(format!(
                        "{failures} consecutive failure(s) on port {port}, the last: {why}"
                    )));
                    return;
                }
            }
        }
    }
}

/// Finds the live process whose command line holds the script that records its exit status in
/// `exit_file` (only that run's shell carries it), with its start time.
fn find_by_marker(exit_file: &Path) -> Option<(u32, u64)> {
    let marker = process_script("", exit_file);
    let needle = marker.as_bytes();
    let dir = fs::read_dir("/proc").ok()?;
    for e in dir.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        let Ok(cmdline) = fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        if cmdline
            .split(|&b| b == 0)
            .any(|arg| arg.starts_with(needle))
            && let Some(info) = proc_info(pid)
            && !info.zombie
        {
            return Some((pid as u32, info.start));
        }
    }
    None
}

fn instant_of_ms(ms: i64) -> Instant {
    let ago = Duration::from_millis((now_ms() - ms).max(0) as u64);
    Instant::now().checked_sub(ago).unwrap_or_else(Instant::now)
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

fn lock_ignoring_poison<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

enum PlanOutcome {
    Running,
    Complete,
    Stuck(String),
}

fn exit_code(exit: Exit) -> i32 {
    match exit {
        Exit::Code(c) => c,
        Exit::Signal(s) => -s,
    }
}

fn describe_exit(exit: Exit) -> String {
    match exit {
        Exit::Code(c) => format!("exit code {c}"),
        Exit::Signal(s) => match Signal::try_from(s) {
            Ok(sig) => format!("signal {sig}"),
            Err(_) => format!("signal {s}"),
        },
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// The log file of one run of a process: `<sandbox>/.logs/<process>/<run>/<stdout|stderr>`.
pub fn log_path(sandbox: &Path, process: &str, run: u32, stream: &str) -> PathBuf {
    sandbox
        .join(".logs")
        .join(process)
        .join(run.to_string())
        .join(stream)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The script records the exit status in a file whose path needs quoting, keeps the command
    /// line's own line numbers, and leaves `$0` and the positional parameters alone.
    #[test]
    fn the_process_script_records_the_exit_status() {
        let dir = tempfile::tempdir().unwrap();
        let exit_file = dir.path().join("it's a \"run\" $x");
        let check = |cmdline: &str, status: &str, stdout: &str, stderr: &str| {
            let out = Command::new("/bin/bash")
                .arg("-c")
                .arg(process_script(cmdline, &exit_file))
                .output()
                .unwrap();
            assert_eq!(fs::read_to_string(&exit_file).unwrap(), status, "{cmdline}");
            assert_eq!(String::from_utf8_lossy(&out.stdout), stdout, "{cmdline}");
            assert!(
                String::from_utf8_lossy(&out.stderr).contains(stderr),
                "{cmdline}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        check("echo \"$0|$#|$1\"", "0\n", "/bin/bash|0|\n", "");
        check("exit 7", "7\n", "", "");
        check("true\nsh -c 'exit 4'", "4\n", "", "");
        check("false; echo hi", "0\n", "hi\n", "");
        check(
            "echo $LINENO; no-such-command",
            "127\n",
            "1\n",
            "line 1: no-such-command",
        );
    }
}
