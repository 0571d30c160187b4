//! The task runner: starts a task's processes in dependency order, retries them, runs the final
//! processes, kills whatever is left, and checkpoints every state change.
//!
//! This module holds the public types, the entry points ([`TaskRunner`]) and the runner's
//! state; its submodules hold what the runner does, by concern:
//! - `run`: the runner's thread, its event loop, checkpointing and published status;
//! - `plan`: the task's state machine and which processes may start;
//! - `launch`: a process run's logs, script and spawn;
//! - `stop`: graceful kill, SIGTERM and SIGKILL, the final state;
//! - `recovery`: carrying on from a checkpoint, reattaching to running processes;
//! - `watch`: the health checker and the resource limits;
//! - `handle`: [`RunnerHandle`], the caller's side.

mod handle;
mod launch;
mod plan;
mod recovery;
mod run;
mod stop;
mod watch;

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, Sender};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nix::sys::signal::Signal;

use crate::checkpoint::{CheckpointError, CheckpointRecord, CheckpointWriter};
use crate::health::HealthCheckConfig;
use crate::observe::TaskView;
use crate::reaper::{Exit, Exited, Identity};
use crate::sampler::{ResourceUsage, SamplerRegistration};
use crate::spec::{InvalidTask, TaskSpec};
use crate::tree::ProcessTree;
use crate::{ProcessState, TaskState};

pub use handle::RunnerHandle;
use handle::Shared;
use recovery::resume;

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
