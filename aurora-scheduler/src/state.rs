//! The scheduler's state in memory, changed only by applying [`Op`]s so that replaying the log
//! rebuilds it exactly.
//!
//! Task and job records are immutable and shared (`Arc`): a change replaces the record, so a
//! snapshot copies pointers, not tasks, while the engine lock is held. Indexes by job, host
//! and state are kept next to the records and maintained only by [`State::apply`].
//!
//! Task configs are interned in a [`ConfigStore`]: one shared value per distinct content,
//! counted by the jobs and tasks using it and dropped when none does.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use aurora_core::api::Lock;
use aurora_core::{
    ConfigKey, HostAttributes, JobConfiguration, JobKey, MaintenanceMode, ResourceAggregate,
    ScheduleStatus, ScheduledTask, SharedTaskConfig, TaskId,
};

use crate::storage::{HostRecord, Op, Recovered, StateSnapshot};

/// Every distinct task config in use, by content key, with how many jobs and tasks use it.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct ConfigStore(HashMap<ConfigKey, (SharedTaskConfig, usize)>);

impl ConfigStore {
    /// The stored config equal to `config`, or `config` itself when there is none yet.
    pub(crate) fn intern(&self, config: SharedTaskConfig) -> SharedTaskConfig {
        match self.0.get(config.key()) {
            Some((stored, _)) => stored.clone(),
            None => config,
        }
    }

    /// Whether a config with this key is stored.
    pub(crate) fn contains(&self, key: &ConfigKey) -> bool {
        self.0.contains_key(key)
    }

    /// How many jobs and tasks use the config with this key.
    #[cfg(test)]
    pub(crate) fn refs(&self, key: &ConfigKey) -> usize {
        self.0.get(key).map_or(0, |(_, n)| *n)
    }

    /// How many distinct configs are stored.
    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }

    /// The stored configs, by key.
    pub(crate) fn all(&self) -> Vec<SharedTaskConfig> {
        let mut all: Vec<SharedTaskConfig> = self.0.values().map(|(c, _)| c.clone()).collect();
        all.sort_by(|a, b| a.key().cmp(b.key()));
        all
    }

    /// Stores a config that nothing uses yet (its users follow).
    fn introduce(&mut self, config: &SharedTaskConfig) {
        if !self.0.contains_key(config.key()) {
            self.0.insert(config.key().clone(), (config.clone(), 0));
        }
    }

    fn retain(&mut self, config: &SharedTaskConfig) {
        // Looked up first: the key is cloned only for a config not stored yet.
        match self.0.get_mut(config.key()) {
            Some((_, n)) => *n += 1,
            None => {
                self.0.insert(config.key().clone(), (config.clone(), 1));
            }
        }
    }

    fn release(&mut self, config: &SharedTaskConfig) {
        if let Some((_, n)) = self.0.get_mut(config.key()) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.0.remove(config.key());
            }
        }
    }
}

/// Host names and attribute strings, one allocation per distinct string, so that the rack and
/// zone values many machines share are stored once.
///
/// It is a cache, not state: two states are equal whatever strings they have cached.
#[derive(Debug, Clone, Default)]
struct Strings {
    set: HashSet<Arc<str>>,
    /// The size after the last sweep of unused strings.
    swept_at: usize,
}

impl PartialEq for Strings {
    fn eq(&self, _: &Strings) -> bool {
        true
    }
}

impl Strings {
    fn intern(&mut self, s: &str) -> Arc<str> {
        if let Some(found) = self.set.get(s) {
            return Arc::clone(found);
        }
        let new: Arc<str> = Arc::from(s);
        self.set.insert(Arc::clone(&new));
        new
    }

    /// Drops strings no record uses any more, once the set has doubled since the last sweep
    /// (so that the cost is spread over the inserts).
    fn sweep(&mut self) {
        if self.set.len() > 2 * self.swept_at + 1024 {
            self.set.retain(|s| Arc::strong_count(s) > 1);
            self.swept_at = self.set.len();
        }
    }

    /// The record with its strings shared: the host name (unique to the machine) with its
    /// `host` attribute, the other names and values with every machine that has them.
    fn host(&mut self, h: &HostRecord) -> HostRecord {
        let name = Arc::clone(&h.host);
        let attributes = HostAttributes::from_map_with(&h.attributes.to_map(), &mut |s| {
            if s == &*name {
                Arc::clone(&name)
            } else {
                self.intern(s)
            }
        });
        HostRecord {
            host: name,
            attributes,
            ..h.clone()
        }
    }
}

/// Jobs, tasks, machines, quotas, maintenance and locks, with indexes.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct State {
    pub(crate) jobs: BTreeMap<JobKey, Arc<JobConfiguration>>,
    pub(crate) tasks: BTreeMap<TaskId, Arc<ScheduledTask>>,
    /// Registered machines; shared, so that a snapshot copies pointers.
    pub(crate) hosts: BTreeMap<Arc<str>, Arc<HostRecord>>,
    /// The task configs jobs and tasks use.
    pub(crate) configs: ConfigStore,
    strings: Strings,
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
            quotas: s.quotas,
            maintenance: s.maintenance,
            locks: s.locks.into_iter().map(|l| (l.key.clone(), l)).collect(),
            ..State::default()
        };
        for c in &s.configs {
            state.configs.introduce(c);
        }
        for j in s.jobs {
            state.configs.retain(&j.task_config);
            state.jobs.insert(j.key.clone(), j);
        }
        for h in &s.hosts {
            let h = state.strings.host(h);
            state.hosts.insert(Arc::clone(&h.host), Arc::new(h));
        }
        for t in s.tasks {
            state.configs.retain(&t.assigned_task.task);
            state.index(&t);
            state.tasks.insert(t.id().clone(), t);
        }
        state
    }

    /// The whole state; copies pointers only, so it is cheap to take under the engine lock.
    pub(crate) fn to_snapshot(&self) -> StateSnapshot {
        StateSnapshot {
            configs: self.configs.all(),
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

    /// Applies `op` and records it in `batch`, preceded by an [`Op::SaveConfig`] for each
    /// config it uses that is not stored yet, so that the log introduces every config before
    /// the jobs and tasks that name it.
    pub(crate) fn commit(&mut self, op: Op, batch: &mut Vec<Op>) {
        match &op {
            Op::SaveJob { job } => self.introduce(&job.task_config, batch),
            Op::SaveTasks { tasks } => {
                for t in tasks {
                    self.introduce(&t.assigned_task.task, batch);
                }
            }
            _ => {}
        }
        self.apply(&op);
        batch.push(op);
    }

    /// Records an [`Op::SaveConfig`] for `config` unless it is stored.
    fn introduce(&mut self, config: &SharedTaskConfig, batch: &mut Vec<Op>) {
        if !self.configs.contains(config.key()) {
            let introduce = Op::SaveConfig {
                config: config.clone(),
            };
            self.apply(&introduce);
            batch.push(introduce);
        }
    }

    pub(crate) fn apply(&mut self, op: &Op) {
        match op {
            Op::SaveConfig { config } => self.configs.introduce(config),
            Op::SaveJob { job } => {
                self.configs.retain(&job.task_config);
                if let Some(old) = self.jobs.insert(job.key.clone(), Arc::clone(job)) {
                    self.configs.release(&old.task_config);
                }
            }
            Op::RemoveJob { key } => {
                if let Some(old) = self.jobs.remove(key) {
                    self.configs.release(&old.task_config);
                }
            }
            Op::SaveTasks { tasks } => {
                for t in tasks {
                    self.configs.retain(&t.assigned_task.task);
                    if let Some(old) = self.tasks.insert(t.id().clone(), Arc::clone(t)) {
                        self.configs.release(&old.assigned_task.task);
                        self.unindex(&old);
                    }
                    self.index(t);
                }
            }
            Op::RemoveTasks { ids } => {
                for id in ids {
                    if let Some(old) = self.tasks.remove(id) {
                        self.configs.release(&old.assigned_task.task);
                        self.unindex(&old);
                    }
                }
            }
            Op::SaveHost { host } => {
                let host = self.strings.host(host);
                self.hosts.insert(Arc::clone(&host.host), Arc::new(host));
                self.strings.sweep();
            }
            Op::RemoveHost { host } => {
                self.hosts.remove(host.as_str());
                self.strings.sweep();
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use aurora_core::{AssignedTask, ExecutorConfig, Identity, Resources, TaskConfig, TaskEvent};

    use super::*;
    use crate::storage::{Snapshot, SqliteStorage, Storage, Transaction};

    fn config(job: &str, payload: &str) -> TaskConfig {
        let key: JobKey = format!("c/www/prod/{job}").parse().unwrap();
        TaskConfig {
            owner: Identity {
                role: "www".into(),
                user: "u".into(),
            },
            job: key,
            is_service: true,
            max_task_failures: 1,
            priority: 0,
            production: false,
            contact_email: None,
            resources: Resources {
                cpu: 1.0,
                ram_bytes: 1 << 20,
                disk_bytes: 1 << 20,
                ports: Default::default(),
            },
            constraints: Vec::new(),
            task_links: BTreeMap::new(),
            executor_config: ExecutorConfig {
                name: "AuroraExecutor".into(),
                data: payload.into(),
            },
        }
    }

    fn job(config: &SharedTaskConfig, instances: u32) -> Op {
        Op::SaveJob {
            job: Arc::new(JobConfiguration {
                key: config.job.clone(),
                owner: config.owner.clone(),
                cron_schedule: None,
                cron_collision_policy: Default::default(),
                task_config: config.clone(),
                instance_count: instances,
                update_config: Default::default(),
            }),
        }
    }

    fn task(
        config: &SharedTaskConfig,
        instance: u32,
        status: ScheduleStatus,
    ) -> Arc<ScheduledTask> {
        Arc::new(ScheduledTask {
            assigned_task: AssignedTask {
                task_id: TaskId(format!("{}-{instance}", config.job.name())),
                slave_host: None,
                instance_id: instance,
                task: config.clone(),
                assigned_ports: BTreeMap::new(),
            },
            status,
            failure_count: 0,
            ancestor_id: None,
            task_events: vec![TaskEvent {
                timestamp_ms: 1,
                status,
                message: None,
                scheduler: None,
            }],
        })
    }

    /// Commits ops as one transaction of `log`, as the engine and the service do.
    fn commit(state: &mut State, log: &mut Vec<Transaction>, ops: Vec<Op>) {
        let mut batch = Vec::new();
        for op in ops {
            state.commit(op, &mut batch);
        }
        let seq = log.len() as u64 + 1;
        log.push(Transaction { seq, ops: batch });
    }

    fn introduced(log: &[Transaction]) -> usize {
        log.iter()
            .flat_map(|t| &t.ops)
            .filter(|op| matches!(op, Op::SaveConfig { .. }))
            .count()
    }

    #[test]
    fn a_thousand_instances_share_one_config_in_memory_and_in_the_log() {
        let mut state = State::default();
        let mut log = Vec::new();
        let c = SharedTaskConfig::from(config("web", "{\"payload\": \"PAYLOAD-MARK\"}"));
        let tasks = (0..1000)
            .map(|i| task(&c, i, ScheduleStatus::Pending))
            .collect();
        commit(
            &mut state,
            &mut log,
            vec![job(&c, 1000), Op::SaveTasks { tasks }],
        );
        assert_eq!(state.configs.len(), 1);
        assert_eq!(state.configs.refs(c.key()), 1001);
        assert_eq!(introduced(&log), 1, "{:?}", log[0].ops.first());
        assert!(
            matches!(log[0].ops[0], Op::SaveConfig { .. }),
            "introduced first"
        );
        // A second change of the same tasks introduces nothing.
        let placed = (0..1000)
            .map(|i| task(&c, i, ScheduleStatus::Assigned))
            .collect();
        commit(&mut state, &mut log, vec![Op::SaveTasks { tasks: placed }]);
        assert_eq!(introduced(&log), 1);
        assert_eq!(state.configs.refs(c.key()), 1001);

        let dir = tempfile::tempdir().unwrap();
        let storage = SqliteStorage::open(dir.path()).unwrap();
        storage.append(&log).unwrap();
        let db = rusqlite::Connection::open(dir.path().join(SqliteStorage::FILE_NAME)).unwrap();
        let rows: Vec<String> = db
            .prepare("SELECT ops FROM log")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let stored: usize = rows.iter().map(|r| r.matches("PAYLOAD-MARK").count()).sum();
        assert_eq!(stored, 1, "the payload is stored once");
        let (recovered, seq) = State::recover(storage.recover().unwrap());
        assert_eq!(seq, 2);
        assert_eq!(recovered, state);
        let shared = recovered.jobs.values().next().unwrap().task_config.clone();
        assert!(
            recovered
                .tasks
                .values()
                .all(|t| SharedTaskConfig::ptr_eq(&t.assigned_task.task, &shared)),
            "recovered tasks share one config"
        );
    }

    #[test]
    fn configs_are_counted_and_dropped_when_unused_then_introduced_again() {
        let mut state = State::default();
        let mut log = Vec::new();
        let old = SharedTaskConfig::from(config("web", "v1"));
        let new = SharedTaskConfig::from(config("web", "v2"));
        commit(
            &mut state,
            &mut log,
            vec![
                job(&old, 2),
                Op::SaveTasks {
                    tasks: vec![task(&old, 0, ScheduleStatus::Running)],
                },
            ],
        );
        // An update half way: instance 1 runs the new config, the job still names the old.
        commit(
            &mut state,
            &mut log,
            vec![Op::SaveTasks {
                tasks: vec![task(&new, 1, ScheduleStatus::Running)],
            }],
        );
        assert_eq!(
            state.configs.len(),
            2,
            "an update's old and new configs are two"
        );
        assert_eq!(state.configs.refs(old.key()), 2);
        assert_eq!(state.configs.refs(new.key()), 1);
        // An equal config built elsewhere is interned to the stored one.
        let again = state
            .configs
            .intern(SharedTaskConfig::from(config("web", "v2")));
        assert!(SharedTaskConfig::ptr_eq(&again, &new));
        // The job moves to the new config and instance 0 goes: the old one is unused.
        commit(
            &mut state,
            &mut log,
            vec![
                job(&new, 2),
                Op::RemoveTasks {
                    ids: vec![TaskId("web-0".into())],
                },
            ],
        );
        assert!(!state.configs.contains(old.key()));
        assert_eq!(state.configs.refs(new.key()), 2);
        assert_eq!(introduced(&log), 2);
        // Once gone, the old config is introduced again when a task uses it.
        commit(
            &mut state,
            &mut log,
            vec![Op::SaveTasks {
                tasks: vec![task(&old, 0, ScheduleStatus::Pending)],
            }],
        );
        assert_eq!(introduced(&log), 3);
        assert!(matches!(log[3].ops[0], Op::SaveConfig { .. }));
        // Everything removed: nothing is kept.
        commit(
            &mut state,
            &mut log,
            vec![
                Op::RemoveTasks {
                    ids: vec![TaskId("web-0".into()), TaskId("web-1".into())],
                },
                Op::RemoveJob {
                    key: new.job.clone(),
                },
            ],
        );
        assert_eq!(state.configs.len(), 0);

        let replayed = State::recover(crate::storage::Recovered {
            snapshot: None,
            log: log.clone(),
        });
        assert_eq!(replayed.0, state);
    }

    #[test]
    fn recovery_from_a_snapshot_and_the_log_after_it_rebuilds_the_same_state() {
        let dir = tempfile::tempdir().unwrap();
        let storage = SqliteStorage::open(dir.path()).unwrap();
        let mut state = State::default();
        let mut log = Vec::new();
        let a = SharedTaskConfig::from(config("a", "alpha"));
        let b = SharedTaskConfig::from(config("b", "beta"));
        commit(
            &mut state,
            &mut log,
            vec![
                job(&a, 3),
                Op::SaveTasks {
                    tasks: (0..3)
                        .map(|i| task(&a, i, ScheduleStatus::Pending))
                        .collect(),
                },
            ],
        );
        storage.append(&log).unwrap();
        storage
            .snapshot(&Snapshot {
                seq: 1,
                timestamp_ms: 1,
                state: state.to_snapshot(),
            })
            .unwrap();
        let mut after = Vec::new();
        // After the snapshot: a new job, and the snapshot's config used by a new task.
        commit(
            &mut state,
            &mut after,
            vec![
                job(&b, 1),
                Op::SaveTasks {
                    tasks: vec![
                        task(&b, 0, ScheduleStatus::Pending),
                        task(&a, 3, ScheduleStatus::Pending),
                    ],
                },
            ],
        );
        after[0].seq = 2;
        storage.append(&after).unwrap();
        let recovered = storage.recover().unwrap();
        assert_eq!(recovered.log.len(), 1);
        let (rebuilt, seq) = State::recover(recovered);
        assert_eq!(seq, 2);
        assert_eq!(rebuilt, state);
        assert_eq!(rebuilt.configs.refs(a.key()), 5);
        let of = |id: &str| rebuilt.tasks[&TaskId(id.into())].assigned_task.task.clone();
        assert!(
            SharedTaskConfig::ptr_eq(&of("a-0"), &of("a-3")),
            "log and snapshot share"
        );
        // A snapshot of the rebuilt state reads back the same again.
        let text = serde_json::to_string(&rebuilt.to_snapshot()).unwrap();
        let back: StateSnapshot = serde_json::from_str(&text).unwrap();
        assert_eq!(State::from_snapshot(back), state);
        assert_eq!(text.matches("alpha").count(), 1, "{text}");
    }
}
