//! The scheduler's state in memory, changed only by applying [`Op`]s so that replaying the log
//! rebuilds it exactly.
//!
//! Task and job records are immutable and shared (`Arc`): a change replaces the record, so a
//! snapshot copies pointers, not tasks, while the engine lock is held. Indexes by job, host
//! and state are kept next to the records and maintained only by [`State::apply`].

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use aurora_core::api::Lock;
use aurora_core::{
    JobConfiguration, JobKey, MaintenanceMode, ResourceAggregate, ScheduleStatus, ScheduledTask,
    TaskId,
};

use crate::storage::{HostRecord, Op, Recovered, StateSnapshot};

/// Jobs, tasks, machines, quotas, maintenance and locks, with indexes.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct State {
    pub(crate) jobs: BTreeMap<JobKey, Arc<JobConfiguration>>,
    pub(crate) tasks: BTreeMap<TaskId, Arc<ScheduledTask>>,
    pub(crate) hosts: BTreeMap<String, HostRecord>,
    pub(crate) quotas: BTreeMap<String, ResourceAggregate>,
    pub(crate) maintenance: BTreeMap<String, MaintenanceMode>,
    /// Job locks, by job.
    pub(crate) locks: BTreeMap<JobKey, Lock>,
    /// Every task of a job, terminal ones included.
    by_job: HashMap<JobKey, BTreeSet<TaskId>>,
    /// Tasks holding resources on a host (SLAVE_ASSIGNED states).
    by_host: HashMap<String, BTreeSet<TaskId>>,
    /// Active tasks by state.
    by_status: BTreeMap<ScheduleStatus, BTreeSet<TaskId>>,
    /// How many tasks are in each state, terminal ones included.
    status_counts: BTreeMap<ScheduleStatus, u64>,
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
        let mut state = State {
            jobs: s.jobs.into_iter().map(|j| (j.key.clone(), j)).collect(),
            hosts: s.hosts.into_iter().map(|h| (h.host.clone(), h)).collect(),
            quotas: s.quotas,
            maintenance: s.maintenance,
            locks: s.locks.into_iter().map(|l| (l.key.clone(), l)).collect(),
            ..State::default()
        };
        for t in s.tasks {
            state.index(&t);
            state.tasks.insert(t.id().clone(), t);
        }
        state
    }

    /// The whole state; copies pointers only, so it is cheap to take under the engine lock.
    pub(crate) fn to_snapshot(&self) -> StateSnapshot {
        StateSnapshot {
            jobs: self.jobs.values().cloned().collect(),
            tasks: self.tasks.values().cloned().collect(),
            hosts: self.hosts.values().cloned().collect(),
            quotas: self.quotas.clone(),
            maintenance: self.maintenance.clone(),
            locks: self.locks.values().cloned().collect(),
        }
    }

    fn index(&mut self, t: &ScheduledTask) {
        let id = t.id();
        self.by_job
            .entry(t.job().clone())
            .or_default()
            .insert(id.clone());
        if t.status.is_slave_assigned()
            && let Some(host) = &t.assigned_task.slave_host
        {
            self.by_host
                .entry(host.clone())
                .or_default()
                .insert(id.clone());
        }
        if t.status.is_active() {
            self.by_status
                .entry(t.status)
                .or_default()
                .insert(id.clone());
        }
        *self.status_counts.entry(t.status).or_default() += 1;
    }

    fn unindex(&mut self, t: &ScheduledTask) {
        let id = t.id();
        fn remove<K: std::hash::Hash + Eq + Clone>(
            map: &mut HashMap<K, BTreeSet<TaskId>>,
            key: &K,
            id: &TaskId,
        ) {
            if let Some(set) = map.get_mut(key) {
                set.remove(id);
                if set.is_empty() {
                    map.remove(key);
                }
            }
        }
        remove(&mut self.by_job, t.job(), id);
        if let Some(host) = &t.assigned_task.slave_host {
            remove(&mut self.by_host, host, id);
        }
        if let Some(set) = self.by_status.get_mut(&t.status) {
            set.remove(id);
            if set.is_empty() {
                self.by_status.remove(&t.status);
            }
        }
        if let Some(c) = self.status_counts.get_mut(&t.status) {
            *c = c.saturating_sub(1);
            if *c == 0 {
                self.status_counts.remove(&t.status);
            }
        }
    }

    pub(crate) fn apply(&mut self, op: &Op) {
        match op {
            Op::SaveJob { job } => {
                self.jobs.insert(job.key.clone(), Arc::clone(job));
            }
            Op::RemoveJob { key } => {
                self.jobs.remove(key);
            }
            Op::SaveTasks { tasks } => {
                for t in tasks {
                    if let Some(old) = self.tasks.insert(t.id().clone(), Arc::clone(t)) {
                        self.unindex(&old);
                    }
                    self.index(t);
                }
            }
            Op::RemoveTasks { ids } => {
                for id in ids {
                    if let Some(old) = self.tasks.remove(id) {
                        self.unindex(&old);
                    }
                }
            }
            Op::SaveHost { host } => {
                self.hosts.insert(host.host.clone(), host.clone());
            }
            Op::RemoveHost { host } => {
                self.hosts.remove(host);
            }
            Op::SaveQuota { role, quota } => {
                self.quotas.insert(role.clone(), *quota);
            }
            Op::SaveMaintenance { host, mode } => {
                if *mode == MaintenanceMode::None {
                    self.maintenance.remove(host);
                } else {
                    self.maintenance.insert(host.clone(), *mode);
                }
            }
            Op::SaveLock { lock } => {
                self.locks.insert(lock.key.clone(), lock.clone());
            }
            Op::RemoveLock { key } => {
                self.locks.remove(key);
            }
            Op::Restore { state } => {
                *self = State::from_snapshot((**state).clone());
            }
        }
    }

    /// Every task of a job, terminal ones included.
    pub(crate) fn tasks_of<'a>(
        &'a self,
        key: &JobKey,
    ) -> impl Iterator<Item = &'a Arc<ScheduledTask>> + 'a {
        self.by_job
            .get(key)
            .into_iter()
            .flatten()
            .filter_map(|id| self.tasks.get(id))
    }

    /// Tasks holding resources on a host.
    pub(crate) fn tasks_on<'a>(
        &'a self,
        host: &str,
    ) -> impl Iterator<Item = &'a Arc<ScheduledTask>> + 'a {
        self.by_host
            .get(host)
            .into_iter()
            .flatten()
            .filter_map(|id| self.tasks.get(id))
    }

    /// Active tasks in a state.
    pub(crate) fn in_status(
        &self,
        status: ScheduleStatus,
    ) -> impl Iterator<Item = &Arc<ScheduledTask>> + '_ {
        self.by_status
            .get(&status)
            .into_iter()
            .flatten()
            .filter_map(|id| self.tasks.get(id))
    }

    /// Every task holding resources, in no particular order.
    pub(crate) fn slave_assigned(&self) -> impl Iterator<Item = &Arc<ScheduledTask>> + '_ {
        self.by_host
            .values()
            .flatten()
            .filter_map(|id| self.tasks.get(id))
    }

    /// Whether anything is pending.
    pub(crate) fn has_status(&self, status: ScheduleStatus) -> bool {
        self.by_status.contains_key(&status)
    }

    /// How many tasks are in each state.
    pub(crate) fn status_counts(&self) -> &BTreeMap<ScheduleStatus, u64> {
        &self.status_counts
    }

    /// Whether any task of the job is active.
    pub(crate) fn job_is_active(&self, key: &JobKey) -> bool {
        self.tasks_of(key).any(|t| t.status.is_active())
    }

    /// A host's maintenance mode (NONE when it is in service).
    pub(crate) fn maintenance_of(&self, host: &str) -> MaintenanceMode {
        self.maintenance.get(host).copied().unwrap_or_default()
    }
}
