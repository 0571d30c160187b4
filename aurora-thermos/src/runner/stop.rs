//! Ending a task: the graceful kill over HTTP, SIGTERM, SIGKILL and the final state.

use std::sync::mpsc::RecvTimeoutError;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use super::{Escalation, Event, KILL_WAIT, Proc, REATTACHED_POLL, Run};
use crate::health;
use crate::{ProcessState, TaskState};

impl Run {
    /// The extra time a graceful kill over HTTP takes, for tasks with a health port.
    pub(super) fn escalation_time(&self) -> Duration {
        if self.ports.contains_key("health") {
            self.options.escalation_wait * 2
        } else {
            Duration::ZERO
        }
    }

    /// The HTTP steps of a graceful kill: `POST /quitquitquit`, wait, `POST /abortabortabort`,
    /// wait. Returns when to look again while they last; `None` once signals are due.
    pub(super) fn escalate(&mut self) -> Option<Instant> {
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

    pub(super) fn past_deadline(&self) -> bool {
        self.deadline.is_some_and(|d| Instant::now() >= d)
    }

    pub(super) fn enter_cleaning(&mut self) {
        let wait = Duration::from_secs(self.task.finalization_wait) + self.escalation_time();
        let deadline = Instant::now() + wait;
        self.deadline = Some(self.deadline.map_or(deadline, |d| d.min(deadline)));
        self.set_task_state(TaskState::Cleaning);
    }

    /// SIGKILL to every process of the task, then the terminal state.
    pub(super) fn kill_everything(&mut self) {
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

    pub(super) fn finish(&mut self) {
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
}
