//! The scheduler's state in memory, changed only by applying [`Op`]s so that replaying the log
//! rebuilds it exactly.

use std::collections::BTreeMap;

use aurora_core::{JobConfiguration, JobKey, ScheduledTask, TaskId};

use crate::storage::{HostRecord, Op, Recovered, StateSnapshot};

/// Jobs, tasks and machines.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct State {
    pub(crate) jobs: BTreeMap<JobKey, JobConfiguration>,
    pub(crate) tasks: BTreeMap<TaskId, ScheduledTask>,
    pub(crate) hosts: BTreeMap<String, HostRecord>,
}

impl State {
    /// Rebuilds state from a snapshot and the log after it; returns the last sequence number.
    pub(crate) fn recover(recovered: Recovered) -> (State, u64) {
        let mut seq = 0;
        let mut state = State::default();
        if let Some(snapshot) = recovered.snapshot {
            seq = snapshot.seq;
            state = State::from_snapshot(snapshot.state);
        }
        for tx in recovered.log {
            if tx.seq <= seq {
                continue;
            }
            seq = tx.seq;
            for op in &tx.ops {
                state.apply(op);
            }
        }
        (state, seq)
    }

    pub(crate) fn from_snapshot(s: StateSnapshot) -> State {
        State {
            jobs: s.jobs.into_iter().map(|j| (j.key.clone(), j)).collect(),
            tasks: s.tasks.into_iter().map(|t| (t.id().clone(), t)).collect(),
            hosts: s.hosts.into_iter().map(|h| (h.host.clone(), h)).collect(),
        }
    }

    pub(crate) fn to_snapshot(&self) -> StateSnapshot {
        StateSnapshot {
            jobs: self.jobs.values().cloned().collect(),
            tasks: self.tasks.values().cloned().collect(),
            hosts: self.hosts.values().cloned().collect(),
        }
    }

    pub(crate) fn apply(&mut self, op: &Op) {
        match op {
            Op::SaveJob { job } => {
                self.jobs.insert(job.key.clone(), (**job).clone());
            }
            Op::RemoveJob { key } => {
                self.jobs.remove(key);
            }
            Op::SaveTasks { tasks } => {
                for t in tasks {
                    self.tasks.insert(t.id().clone(), t.clone());
                }
            }
            Op::RemoveTasks { ids } => {
                for id in ids {
                    self.tasks.remove(id);
                }
            }
            Op::SaveHost { host } => {
                self.hosts.insert(host.host.clone(), host.clone());
            }
            Op::RemoveHost { host } => {
                self.hosts.remove(host);
            }
        }
    }

    /// Whether any task of the job is active.
    pub(crate) fn job_is_active(&self, key: &JobKey) -> bool {
        self.tasks
            .values()
            .any(|t| t.job() == key && t.status.is_active())
    }
}
