//! Which processes start when: the task's state machine and the plan of regular and final
//! processes.

use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use super::{PlanOutcome, Run};
use crate::TaskState;

impl Run {
    /// Does what the current state calls for; returns when to look again at the latest.
    pub(super) fn step(&mut self) -> Option<Instant> {
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

    /// Starts what may start in the regular (or final) plan and tells whether the plan is done.
    pub(super) fn advance(&mut self, finals: bool) -> (Option<Instant>, PlanOutcome) {
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

    pub(super) fn runnable_count(&self, in_plan: &[usize]) -> usize {
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
    pub(super) fn regular_running(&self) -> bool {
        self.procs
            .iter()
            .zip(&self.task.processes)
            .any(|(p, s)| p.running() && !s.is_final)
    }
}
