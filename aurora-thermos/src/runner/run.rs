//! The runner's thread: its state, the checkpoint and status it keeps, its event loop, and
//! what it makes of each process exit.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::mpsc::{RecvTimeoutError, channel};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Instant;

use super::{
    CLEAN_POLL, Escalation, Event, Proc, ProcessStatus, REATTACHED_POLL, Run, RunOptions,
    RunnerError, RunnerHandle, Shared, TRACK_INTERVAL, TaskStatus, describe_exit, exit_code,
    lock_ignoring_poison, now_ms,
};
use crate::checkpoint::{CheckpointRecord, CheckpointWriter};
use crate::reaper::{Exit, Exited, Identity};
use crate::sampler::{ResourceSampler, ResourceUsage};
use crate::spec::TaskSpec;
use crate::tree::ProcessTree;
use crate::{ProcessState, TaskState};

impl Run {
    #[expect(
        clippy::too_many_arguments,
        reason = "private constructor fed from RunSpec or a checkpoint"
    )]
    pub(super) fn new(
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

    pub(super) fn spawn_thread(mut self) -> Result<RunnerHandle, RunnerError> {
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

    pub(super) fn update_roots(&self) {
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

    pub(super) fn checkpoint(&mut self, rec: CheckpointRecord) {
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

    pub(super) fn message(&self) -> Option<String> {
        if self.killed {
            Some("task killed".to_owned())
        } else {
            self.failure.clone()
        }
    }

    pub(super) fn publish(&self) {
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

    pub(super) fn set_task_state(&mut self, state: TaskState) {
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

    pub(super) fn set_process_state(&mut self, i: usize, state: ProcessState) {
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

    pub(super) fn main(mut self) {
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

    pub(super) fn handle(&mut self, ev: Event) {
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

    pub(super) fn fail(&mut self, why: String) {
        self.failure.get_or_insert(why);
        if self.state == TaskState::Active {
            self.enter_cleaning();
        }
    }

    pub(super) fn on_exit(&mut self, e: Exited) {
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
    pub(super) fn ended(&mut self, i: usize, exit: Exit) {
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
    pub(super) fn settle(&mut self, i: usize) {
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
}
