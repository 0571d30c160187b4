//! The task runner: starts a task's processes in dependency order, retries them, runs the final
//! processes, kills whatever is left, and checkpoints every state change.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nix::sys::signal::Signal;

use crate::checkpoint::{CheckpointRecord, CheckpointWriter};
use crate::reaper::{self, Exit, Exited};
use crate::spec::{InvalidTask, TaskSpec};
use crate::tree::ProcessTree;
use crate::{ProcessState, TaskState};

/// The PATH processes get when the runner's own environment has none.
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// How often the runner walks `/proc` to remember the descendants of its processes.
const TRACK_INTERVAL: Duration = Duration::from_secs(1);
/// How often the runner checks for leftover processes while it stops a task.
const CLEAN_POLL: Duration = Duration::from_millis(20);
/// How long to wait for the exit of a process after SIGKILL before calling it LOST.
const KILL_WAIT: Duration = Duration::from_secs(5);

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
    /// The user the processes run as (their `USER` and `LOGNAME`). For now processes run as
    /// the runner's own Unix user; issue 5 switches to this user when running as root.
    pub user: String,
    /// The ports bound for the task, by name (recorded in the checkpoint).
    pub ports: BTreeMap<String, u16>,
}

/// Why a task could not be started.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunnerError {
    /// The task is invalid; nothing ran.
    #[error(transparent)]
    Invalid(#[from] InvalidTask),
    /// The sandbox or checkpoint could not be set up.
    #[error("cannot prepare {path}: {source}; check that the directory is writable")]
    Setup {
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The runner thread could not be started.
    #[error("cannot start the runner thread: {0}")]
    Thread(std::io::Error),
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
    /// `USER`, `LOGNAME` and `PATH` set, each in its own session, logging to
    /// `<sandbox>/.logs/<process>/<run>/{stdout,stderr}`.
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
    /// })
    /// .unwrap();
    /// assert_eq!(handle.wait().state, TaskState::Success);
    /// let out = std::fs::read_to_string(dir.path().join("sandbox/.logs/greet/0/stdout")).unwrap();
    /// assert_eq!(out, "hi\n");
    /// ```
    pub fn start(spec: RunSpec) -> Result<RunnerHandle, RunnerError> {
        let deps = spec.task.dependencies()?;
        fs::create_dir_all(&spec.sandbox).map_err(|source| RunnerError::Setup {
            path: spec.sandbox.clone(),
            source,
        })?;
        let sandbox = fs::canonicalize(&spec.sandbox).map_err(|source| RunnerError::Setup {
            path: spec.sandbox.clone(),
            source,
        })?;
        let ckpt =
            CheckpointWriter::create(&spec.checkpoint).map_err(|source| RunnerError::Setup {
                path: spec.checkpoint.clone(),
                source,
            })?;
        let (tx, rx) = channel();
        let processes = spec
            .task
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
            }),
            changed: Condvar::new(),
        });
        let run = Run::new(spec, sandbox, deps, ckpt, shared.clone(), tx.clone(), rx);
        let thread = std::thread::Builder::new()
            .name(format!("thermos-{}", run.task_id))
            .spawn(move || run.main())
            .map_err(RunnerError::Thread)?;
        Ok(RunnerHandle {
            shared,
            events: Mutex::new(tx),
            thread: Mutex::new(Some(thread)),
        })
    }
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
}

/// The runner's view of one process.
struct Proc {
    deps: Vec<usize>,
    state: ProcessState,
    runs: u32,
    failures: u32,
    seq: u64,
    pid: Option<u32>,
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

struct Run {
    task_id: String,
    task: TaskSpec,
    sandbox: PathBuf,
    user: String,
    ports: BTreeMap<String, u16>,
    procs: Vec<Proc>,
    ckpt: CheckpointWriter,
    ckpt_broken: bool,
    shared: Arc<Shared>,
    tx: Sender<Exited>,
    rx: Receiver<Event>,
    tree: ProcessTree,
    state: TaskState,
    killed: bool,
    /// Set once a reason to fail is known.
    failure: Option<String>,
    deadline: Option<Instant>,
    term_sent: bool,
    runner_pid: u32,
}

impl Run {
    fn new(
        spec: RunSpec,
        sandbox: PathBuf,
        deps: Vec<Vec<usize>>,
        ckpt: CheckpointWriter,
        shared: Arc<Shared>,
        events: Sender<Event>,
        rx: Receiver<Event>,
    ) -> Run {
        // Exits come from the reaper thread through a channel of their own, forwarded into
        // the event channel so that the run loop waits on one channel.
        let (tx, exits) = channel::<Exited>();
        let forward = events;
        std::thread::Builder::new()
            .name("thermos-exits".into())
            .spawn(move || {
                for e in exits {
                    if forward.send(Event::Exited(e)).is_err() {
                        break;
                    }
                }
            })
            .ok();
        let procs = deps
            .into_iter()
            .map(|deps| Proc {
                deps,
                state: ProcessState::Waiting,
                runs: 0,
                failures: 0,
                seq: 0,
                pid: None,
                return_code: None,
                last_end: None,
                done: false,
                failed: false,
                why: None,
            })
            .collect();
        Run {
            task_id: spec.task_id,
            task: spec.task,
            tree: ProcessTree::new(&sandbox),
            sandbox,
            user: spec.user,
            ports: spec.ports,
            procs,
            ckpt,
            ckpt_broken: false,
            shared,
            tx,
            rx,
            state: TaskState::Active,
            killed: false,
            failure: None,
            deadline: None,
            term_sent: false,
            runner_pid: std::process::id(),
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

    fn publish(&self) {
        let mut s = self.shared.lock();
        s.state = self.state;
        s.message = if self.killed {
            Some("task killed".to_owned())
        } else {
            self.failure.clone()
        };
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
        self.checkpoint(CheckpointRecord::Task {
            state,
            timestamp_ms: now_ms(),
            runner_pid: self.runner_pid,
        });
        tracing::info!(task = %self.task_id, "task {state}");
        self.publish();
    }

    fn set_process_state(&mut self, i: usize, state: ProcessState) {
        let p = &mut self.procs[i];
        p.state = state;
        let rec = CheckpointRecord::Process {
            seq: p.seq,
            process: self.task.processes[i].name.clone(),
            run: p.runs.saturating_sub(1),
            state,
            timestamp_ms: now_ms(),
            pid: p.pid.filter(|_| state != ProcessState::Forked),
            return_code: p.return_code.filter(|_| state.is_terminal()),
        };
        p.seq += 1;
        self.checkpoint(rec);
        self.publish();
    }

    fn main(mut self) {
        self.checkpoint(CheckpointRecord::Header {
            task_id: self.task_id.clone(),
            launch_time_ms: now_ms(),
            sandbox: self.sandbox.clone(),
            user: self.user.clone(),
            ports: self.ports.clone(),
            log_dir: self.sandbox.join(".logs"),
        });
        for i in 0..self.procs.len() {
            self.set_process_state(i, ProcessState::Waiting);
        }
        self.set_task_state(TaskState::Active);
        let mut next_track = Instant::now() + TRACK_INTERVAL;
        loop {
            let wake = self.step();
            if self.state.is_terminal() {
                return;
            }
            let now = Instant::now();
            if now >= next_track {
                self.tree.refresh();
                next_track = now + TRACK_INTERVAL;
            }
            let mut until = wake.unwrap_or(next_track).min(next_track);
            if matches!(self.state, TaskState::Cleaning | TaskState::Finalizing) {
                until = until.min(now + CLEAN_POLL);
            }
            if let Some(d) = self.deadline {
                until = until.min(d);
            }
            match self.rx.recv_timeout(until.saturating_duration_since(now)) {
                Ok(ev) => self.handle(ev),
                Err(RecvTimeoutError::Timeout) => {}
                // Cannot happen while `self.tx`'s forwarder holds a sender; stop cleanly.
                Err(RecvTimeoutError::Disconnected) => return,
            }
            // Take whatever else is queued before deciding.
            while let Ok(ev) = self.rx.try_recv() {
                self.handle(ev);
            }
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
                let deadline = Instant::now() + grace;
                self.deadline = Some(self.deadline.map_or(deadline, |d| d.min(deadline)));
                if self.state == TaskState::Active {
                    self.set_task_state(TaskState::Cleaning);
                } else {
                    self.publish();
                }
            }
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
        let spec = self.task.processes[i].clone();
        let stopping = self.state != TaskState::Active && !spec.is_final
            || self.killed
            || self.deadline.is_some_and(|d| Instant::now() >= d);
        let p = &mut self.procs[i];
        p.last_end = Some(Instant::now());
        p.return_code = Some(exit_code(e.exit));
        let state = match e.exit {
            Exit::Code(0) => {
                if !spec.daemon {
                    p.done = true;
                }
                ProcessState::Success
            }
            // Whatever ends after the runner started stopping the task was stopped by it.
            _ if stopping => ProcessState::Killed,
            Exit::Code(_) | Exit::Signal(_) => {
                p.failures += 1;
                p.why = Some(format!(
                    "process {:?} failed with {} after {} run(s)",
                    spec.name,
                    describe_exit(e.exit),
                    p.runs
                ));
                if spec.max_failures == 0 || p.failures < spec.max_failures {
                    // Retried after min_duration.
                } else if spec.ephemeral {
                    p.done = true;
                } else {
                    p.failed = true;
                }
                ProcessState::Failed
            }
        };
        tracing::info!(task = %self.task_id, process = %spec.name, "process {state} ({:?})", e.exit);
        self.set_process_state(i, state);
    }

    /// Does what the current state calls for; returns when to look again at the latest.
    fn step(&mut self) -> Option<Instant> {
        match self.state {
            TaskState::Active => {
                let (wake, outcome) = self.advance(false);
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
                if !self.term_sent {
                    self.term_sent = true;
                    self.tree.signal_all(Signal::SIGTERM);
                }
                let regular_running = self
                    .procs
                    .iter()
                    .zip(&self.task.processes)
                    .any(|(p, s)| p.running() && !s.is_final);
                if self.past_deadline() {
                    self.kill_everything();
                    return None;
                }
                if !regular_running && self.tree.refresh().is_empty() {
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
                match outcome {
                    PlanOutcome::Running => wake,
                    PlanOutcome::Complete | PlanOutcome::Stuck(_) => {
                        if let PlanOutcome::Stuck(why) = outcome {
                            self.failure.get_or_insert(why);
                        }
                        // Leftovers of the final processes go the same way.
                        if self.tree.refresh().is_empty() {
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

    fn past_deadline(&self) -> bool {
        self.deadline.is_some_and(|d| Instant::now() >= d)
    }

    fn enter_cleaning(&mut self) {
        let wait = Duration::from_secs(self.task.finalization_wait);
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
            match self.rx.recv_timeout(until - now) {
                Ok(Event::Exited(e)) => self.on_exit(e),
                Ok(Event::Kill(_)) => {}
                Err(_) => break,
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

    fn launch(&mut self, i: usize) {
        let spec = self.task.processes[i].clone();
        let run = self.procs[i].runs;
        self.procs[i].runs += 1;
        self.procs[i].pid = None;
        self.procs[i].return_code = None;
        if run > 0 {
            // A new run starts from WAITING, as in the original's checkpoints.
            self.set_process_state(i, ProcessState::Waiting);
        }
        self.set_process_state(i, ProcessState::Forked);
        match self.spawn(&spec.name, &spec.cmdline, run) {
            Ok(pid) => {
                self.procs[i].pid = Some(pid);
                self.tree.add_root(pid);
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

    fn spawn(&self, name: &str, cmdline: &str, run: u32) -> std::io::Result<u32> {
        let logs = self.sandbox.join(".logs").join(name).join(run.to_string());
        fs::create_dir_all(&logs)?;
        let stdout = File::create(logs.join("stdout"))?;
        let stderr = File::create(logs.join("stderr"))?;
        let path = std::env::var("PATH").unwrap_or_else(|_| DEFAULT_PATH.to_owned());
        let mut cmd = Command::new("/bin/bash");
        cmd.arg("-c")
            .arg(cmdline)
            .current_dir(&self.sandbox)
            .env_clear()
            .env("HOME", &self.sandbox)
            .env("USER", &self.user)
            .env("LOGNAME", &self.user)
            .env("PATH", path)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr);
        reaper::new_session(&mut cmd);
        reaper::spawn(&mut cmd, self.tx.clone())
    }
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
