//! Carrying on from a checkpoint: restoring a task, reattaching to processes that still run and
//! settling those that ended while no runner watched them.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::mpsc::channel;
use std::time::{Duration, Instant};

use super::launch::process_script;
use super::{
    EXIT_FILE, Identity, Run, RunOptions, RunnerError, RunnerHandle, instant_of_ms, log_path,
    now_ms,
};
use crate::checkpoint::CheckpointWriter;
use crate::observe::TaskView;
use crate::reaper::Exit;
use crate::spec::TaskSpec;
use crate::tree::proc_info;
use crate::{ProcessState, TaskState};

pub(super) fn resume(
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

impl Run {
    /// Fills in a task that already ended, for its final status.
    pub(super) fn restore_terminal(&mut self, view: &TaskView) {
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
    pub(super) fn restore(&mut self, view: &TaskView) {
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

    pub(super) fn reattach(&mut self, i: usize) {
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
    pub(super) fn vanished(&mut self, i: usize) {
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

    pub(super) fn exit_file(&self, i: usize) -> PathBuf {
        log_path(
            &self.sandbox,
            &self.task.processes[i].name,
            self.procs[i].runs.saturating_sub(1),
            EXIT_FILE,
        )
    }

    /// Looks at reattached processes; settles those that ended.
    pub(super) fn poll_reattached(&mut self) {
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

    pub(super) fn any_reattached(&self) -> bool {
        self.procs.iter().any(|p| p.reattached && p.running())
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
