//! Durable state: an ordered stream of operations plus snapshots.
//!
//! Every change to the scheduler's state is an [`Op`]; the ops of one request form a
//! [`Transaction`] with a sequence number. State is the latest [`Snapshot`] with every later
//! transaction replayed in order. [`Storage`] is the seam for backends: [`SqliteStorage`] is the
//! embedded default, [`MemStorage`] serves tests, and a replicated backend can follow.
//!
//! Task configs are stored once per distinct content: [`Op::SaveConfig`] introduces a config
//! under its [`ConfigKey`] before any job or task refers to it, and jobs and tasks are written
//! with the key in place of the config (snapshots carry their configs in `configs`). Records
//! written before that (schema version 1) hold the config itself and are still read.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use aurora_core::api::Lock;
use aurora_core::{
    ConfigKey, CronCollisionPolicy, Identity, JobConfiguration, JobKey, MaintenanceMode,
    ResourceAggregate, ScheduleStatus, ScheduledTask, SharedTaskConfig, TaskConfig, TaskEvent,
    TaskId, UpdateSettings,
};
use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub use aurora_core::HostAttributes;

/// A machine an executor registered, as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostRecord {
    /// The host name; it identifies the executor.
    pub host: Arc<str>,
    /// Attributes for constraints; always includes `host`.
    pub attributes: HostAttributes,
    /// CPU cores offered.
    pub cpu: f64,
    /// Memory offered, in bytes.
    pub ram_bytes: u64,
    /// Disk offered, in bytes.
    pub disk_bytes: u64,
    /// The first port tasks may be given.
    pub port_begin: u16,
    /// The last port tasks may be given.
    pub port_end: u16,
}

/// One change to the scheduler's state. Applying the ops of the log in order to a snapshot
/// rebuilds the state exactly.
///
/// Jobs and tasks are written with their config's key; the [`Op::SaveConfig`] that
/// introduces a config comes first.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "op", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Op {
    /// Introduce a task config under its content key, before the jobs and tasks using it.
    SaveConfig {
        /// The config (its key is [`SharedTaskConfig::key`]).
        #[serde(serialize_with = "keyed_config")]
        config: SharedTaskConfig,
    },
    /// Store (or replace) a job's configuration.
    SaveJob {
        /// The job (shared: records are immutable).
        #[serde(serialize_with = "job_by_key")]
        job: Arc<JobConfiguration>,
    },
    /// Forget a job's configuration.
    RemoveJob {
        /// The job's key.
        key: JobKey,
    },
    /// Store (or replace) tasks, keyed by id.
    SaveTasks {
        /// The tasks (shared: records are immutable).
        #[serde(serialize_with = "tasks_by_key")]
        tasks: Vec<Arc<ScheduledTask>>,
    },
    /// Forget tasks.
    RemoveTasks {
        /// Their ids.
        ids: Vec<TaskId>,
    },
    /// Store (or replace) a registered machine.
    SaveHost {
        /// The machine.
        host: HostRecord,
    },
    /// Forget a machine.
    RemoveHost {
        /// Its host name.
        host: String,
    },
    /// Set a role's production quota.
    SaveQuota {
        /// The role.
        role: String,
        /// Its quota.
        quota: ResourceAggregate,
    },
    /// Set a host's maintenance mode (NONE forgets it).
    SaveMaintenance {
        /// The host name.
        host: String,
        /// Its mode.
        mode: MaintenanceMode,
    },
    /// Store (or replace) a job's lock, keyed by its job.
    SaveLock {
        /// The lock.
        lock: Lock,
    },
    /// Forget a job's lock.
    RemoveLock {
        /// The job whose lock is released.
        key: JobKey,
    },
    /// Replace the whole state with a backup.
    Restore {
        /// The state restored.
        state: Box<StateSnapshot>,
    },
}

/// The ops of one change, applied atomically, with their place in the stream.
#[derive(Debug, Clone, PartialEq)]
pub struct Transaction {
    /// The position in the stream, starting at 1, strictly increasing.
    pub seq: u64,
    /// The ops, in order.
    pub ops: Vec<Op>,
}

/// The whole state at a point of the stream.
///
/// Written with each config once in `configs` and jobs and tasks naming theirs by key.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StateSnapshot {
    /// Every distinct task config that a job or task uses.
    pub configs: Vec<SharedTaskConfig>,
    /// Every job configuration.
    pub jobs: Vec<Arc<JobConfiguration>>,
    /// Every task, terminal ones included.
    pub tasks: Vec<Arc<ScheduledTask>>,
    /// Every registered machine.
    pub hosts: Vec<Arc<HostRecord>>,
    /// Production quota by role.
    pub quotas: BTreeMap<String, ResourceAggregate>,
    /// Hosts not in service, with their mode.
    pub maintenance: BTreeMap<String, MaintenanceMode>,
    /// Job locks held (absent in snapshots and backups older than locks).
    pub locks: Vec<Lock>,
}

/// A snapshot and the last transaction it includes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// The state includes every transaction up to and including this one.
    pub seq: u64,
    /// When it was taken, in milliseconds since the Unix epoch.
    pub timestamp_ms: i64,
    /// The state.
    pub state: StateSnapshot,
}

/// What a backend holds: the latest snapshot and the transactions after it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Recovered {
    /// The latest snapshot, if one was taken.
    pub snapshot: Option<Snapshot>,
    /// Transactions after the snapshot, in order.
    pub log: Vec<Transaction>,
}

/// A durable, ordered stream of transactions plus snapshots.
///
/// Implementations must make [`Storage::append`] durable and atomic before returning: the
/// scheduler acknowledges a change to its caller only after that. Snapshots may be written
/// concurrently with appends; recovery ignores log entries the snapshot already includes.
pub trait Storage: Send + Sync {
    /// Reads the latest snapshot and every later transaction.
    fn recover(&self) -> Result<Recovered, StorageError>;
    /// Appends transactions durably, in order, all or nothing.
    fn append(&self, txs: &[Transaction]) -> Result<(), StorageError>;
    /// Stores a snapshot and drops the log entries it includes.
    fn snapshot(&self, snapshot: &Snapshot) -> Result<(), StorageError>;
    /// Where the data lives, for messages.
    fn location(&self) -> String;
}

/// Why storage failed; `location` names the file or backend.
#[derive(Debug, thiserror::Error)]
#[error("storage {location}: {kind}")]
pub struct StorageError {
    /// The file or backend.
    pub location: String,
    /// What went wrong.
    pub kind: StorageErrorKind,
}

/// The causes of a [`StorageError`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StorageErrorKind {
    /// The directory could not be created.
    #[error("cannot create the data directory: {0}")]
    Io(#[from] std::io::Error),
    /// SQLite refused (e.g. the file is not a database, or the disk is full).
    #[error("{0} (is this a scheduler database? move it aside to start empty)")]
    Sqlite(#[from] rusqlite::Error),
    /// A record could not be decoded.
    #[error(
        "{what} is unreadable: {reason} (nothing was dropped or changed; if the data directory is damaged, restore it from a backup with `aurora-scheduler restore --data-dir DIR --from FILE`)"
    )]
    Corrupt {
        /// Which record.
        what: String,
        /// The decoding error.
        reason: String,
    },
    /// The database was written by a newer scheduler.
    #[error(
        "schema version {found} is not supported (this scheduler reads versions 1 and 2; a newer scheduler wrote it, so run that version)"
    )]
    Schema {
        /// The version found.
        found: String,
    },
}

/// Version 2 stores each task config once (jobs and tasks name it by key); version 1 records
/// (configs inline) are still read, and a version 1 database is marked 2 when opened.
const SCHEMA_VERSION: &str = "2";
/// Versions this scheduler reads.
const READABLE_SCHEMA_VERSIONS: [&str; 2] = ["1", "2"];

/// The embedded default backend: one SQLite file in WAL mode with `synchronous=FULL`.
///
/// ```
/// use aurora_scheduler::{Op, SqliteStorage, Storage, Transaction};
/// let dir = tempfile::tempdir().unwrap();
/// let storage = SqliteStorage::open(dir.path()).unwrap();
/// storage.append(&[Transaction { seq: 1, ops: vec![Op::RemoveHost { host: "h".into() }] }]).unwrap();
/// assert_eq!(storage.recover().unwrap().log.len(), 1);
/// ```
pub struct SqliteStorage {
    path: PathBuf,
    log: Mutex<Connection>,
    snapshots: Mutex<Connection>,
}

impl std::fmt::Debug for SqliteStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStorage")
            .field("path", &self.path)
            .finish()
    }
}

impl SqliteStorage {
    /// The database file's name inside the data directory.
    pub const FILE_NAME: &'static str = "scheduler.db";

    /// Opens (creating if needed) `<dir>/scheduler.db`.
    pub fn open(dir: &Path) -> Result<SqliteStorage, StorageError> {
        let path = dir.join(Self::FILE_NAME);
        let err = |kind: StorageErrorKind| StorageError {
            location: path.display().to_string(),
            kind,
        };
        std::fs::create_dir_all(dir).map_err(|e| err(e.into()))?;
        let log = Self::connect(&path).map_err(|e| err(e.into()))?;
        log.execute_batch(
            "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
             CREATE TABLE IF NOT EXISTS log (seq INTEGER PRIMARY KEY, ops TEXT NOT NULL);
             CREATE TABLE IF NOT EXISTS snapshot (
                 id INTEGER PRIMARY KEY CHECK (id = 1),
                 seq INTEGER NOT NULL,
                 timestamp_ms INTEGER NOT NULL,
                 state TEXT NOT NULL);",
        )
        .map_err(|e| err(e.into()))?;
        log.execute(
            "INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?1)",
            params![SCHEMA_VERSION],
        )
        .map_err(|e| err(e.into()))?;
        let version: String = log
            .query_row(
                "SELECT value FROM meta WHERE key = 'schema_version'",
                [],
                |r| r.get(0),
            )
            .map_err(|e| err(e.into()))?;
        if !READABLE_SCHEMA_VERSIONS.contains(&version.as_str()) {
            return Err(err(StorageErrorKind::Schema { found: version }));
        }
        if version != SCHEMA_VERSION {
            // Older records stay readable; what is written from now on needs this version.
            log.execute(
                "UPDATE meta SET value = ?1 WHERE key = 'schema_version'",
                params![SCHEMA_VERSION],
            )
            .map_err(|e| err(e.into()))?;
        }
        let snapshots = Self::connect(&path).map_err(|e| err(e.into()))?;
        Ok(SqliteStorage {
            path,
            log: Mutex::new(log),
            snapshots: Mutex::new(snapshots),
        })
    }

    fn connect(path: &Path) -> rusqlite::Result<Connection> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(std::time::Duration::from_secs(30))?;
        conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get::<_, String>(0))?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        Ok(conn)
    }

    fn err(&self, kind: impl Into<StorageErrorKind>) -> StorageError {
        StorageError {
            location: self.path.display().to_string(),
            kind: kind.into(),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding the connection cannot leave SQLite inconsistent: the open
    // transaction is rolled back when it is dropped.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Storage for SqliteStorage {
    fn recover(&self) -> Result<Recovered, StorageError> {
        let conn = lock(&self.log);
        let snapshot: Option<(i64, i64, String)> = conn
            .query_row(
                "SELECT seq, timestamp_ms, state FROM snapshot WHERE id = 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()
            .map_err(|e| self.err(e))?;
        let snapshot = match snapshot {
            Some((seq, timestamp_ms, text)) => {
                let state = serde_json::from_str(&text).map_err(|e| {
                    self.err(StorageErrorKind::Corrupt {
                        what: format!("snapshot at transaction {seq}"),
                        reason: e.to_string(),
                    })
                })?;
                Some(Snapshot {
                    seq: u64::try_from(seq).unwrap_or(0),
                    timestamp_ms,
                    state,
                })
            }
            None => None,
        };
        let after = snapshot.as_ref().map_or(0, |s| s.seq);
        let mut table = ConfigTable::default();
        if let Some(s) = &snapshot {
            table.seed(&s.state);
        }
        let mut stmt = conn
            .prepare("SELECT seq, ops FROM log WHERE seq > ?1 ORDER BY seq")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(params![i64::try_from(after).unwrap_or(i64::MAX)], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
            })
            .map_err(|e| self.err(e))?;
        let mut log = Vec::new();
        for row in rows {
            let (seq, text) = row.map_err(|e| self.err(e))?;
            let ops = decode_ops(&text, &mut table).map_err(|reason| {
                self.err(StorageErrorKind::Corrupt {
                    what: format!("log entry {seq}"),
                    reason,
                })
            })?;
            log.push(Transaction {
                seq: u64::try_from(seq).unwrap_or(0),
                ops,
            });
        }
        Ok(Recovered { snapshot, log })
    }

    fn append(&self, txs: &[Transaction]) -> Result<(), StorageError> {
        let mut conn = lock(&self.log);
        let tx = conn.transaction().map_err(|e| self.err(e))?;
        {
            let mut stmt = tx
                .prepare_cached("INSERT INTO log (seq, ops) VALUES (?1, ?2)")
                .map_err(|e| self.err(e))?;
            for t in txs {
                let text = encode_ops(&t.ops).map_err(|e| {
                    self.err(StorageErrorKind::Corrupt {
                        what: format!("log entry {}", t.seq),
                        reason: e.to_string(),
                    })
                })?;
                stmt.execute(params![i64::try_from(t.seq).unwrap_or(i64::MAX), text])
                    .map_err(|e| self.err(e))?;
            }
        }
        tx.commit().map_err(|e| self.err(e))
    }

    fn snapshot(&self, snapshot: &Snapshot) -> Result<(), StorageError> {
        // Serialise before taking the connection: appends continue meanwhile.
        let text = json_exact(&snapshot.state).map_err(|e| {
            self.err(StorageErrorKind::Corrupt {
                what: format!("snapshot at transaction {}", snapshot.seq),
                reason: e.to_string(),
            })
        })?;
        let seq = i64::try_from(snapshot.seq).unwrap_or(i64::MAX);
        let mut conn = lock(&self.snapshots);
        let tx = conn.transaction().map_err(|e| self.err(e))?;
        tx.execute(
            "INSERT OR REPLACE INTO snapshot (id, seq, timestamp_ms, state) VALUES (1, ?1, ?2, ?3)",
            params![seq, snapshot.timestamp_ms, text],
        )
        .map_err(|e| self.err(e))?;
        tx.execute("DELETE FROM log WHERE seq <= ?1", params![seq])
            .map_err(|e| self.err(e))?;
        tx.commit().map_err(|e| self.err(e))
    }

    fn location(&self) -> String {
        self.path.display().to_string()
    }
}

// ---- the stored form: configs once, jobs and tasks by key ----

fn is_none<T>(o: &&Option<T>) -> bool {
    o.is_none()
}

#[derive(Serialize)]
struct KeyedOut<'a> {
    key: &'a ConfigKey,
    config: &'a TaskConfig,
}

#[derive(Deserialize)]
struct KeyedIn {
    key: ConfigKey,
    config: TaskConfig,
}

fn keyed_config<S: Serializer>(config: &SharedTaskConfig, s: S) -> Result<S::Ok, S::Error> {
    KeyedOut {
        key: config.key(),
        config,
    }
    .serialize(s)
}

/// A job as stored: the config by key.
#[derive(Serialize)]
struct JobOut<'a> {
    key: &'a JobKey,
    owner: &'a Identity,
    #[serde(skip_serializing_if = "is_none")]
    cron_schedule: &'a Option<String>,
    cron_collision_policy: CronCollisionPolicy,
    task_config: &'a ConfigKey,
    instance_count: u32,
    update_config: &'a UpdateSettings,
}

impl<'a> JobOut<'a> {
    fn of(job: &'a JobConfiguration) -> JobOut<'a> {
        JobOut {
            key: &job.key,
            owner: &job.owner,
            cron_schedule: &job.cron_schedule,
            cron_collision_policy: job.cron_collision_policy,
            task_config: job.task_config.key(),
            instance_count: job.instance_count,
            update_config: &job.update_config,
        }
    }
}

fn job_by_key<S: Serializer>(job: &Arc<JobConfiguration>, s: S) -> Result<S::Ok, S::Error> {
    JobOut::of(job).serialize(s)
}

/// A config as a record names it: by key, or (before schema version 2) in full.
#[derive(Deserialize)]
#[serde(untagged)]
enum ConfigRef {
    Key(ConfigKey),
    Inline(Box<TaskConfig>),
}

#[derive(Deserialize)]
struct JobIn {
    key: JobKey,
    owner: Identity,
    #[serde(default)]
    cron_schedule: Option<String>,
    #[serde(default)]
    cron_collision_policy: CronCollisionPolicy,
    task_config: ConfigRef,
    instance_count: u32,
    /// Absent from records written before jobs carried it: those get the defaults.
    #[serde(default)]
    update_config: UpdateSettings,
}

/// A task as stored: the config by key.
#[derive(Serialize)]
struct TaskOut<'a> {
    assigned_task: AssignedOut<'a>,
    status: ScheduleStatus,
    failure_count: u32,
    #[serde(skip_serializing_if = "is_none")]
    ancestor_id: &'a Option<TaskId>,
    task_events: &'a [TaskEvent],
}

#[derive(Serialize)]
struct AssignedOut<'a> {
    task_id: &'a TaskId,
    #[serde(skip_serializing_if = "is_none")]
    slave_host: &'a Option<String>,
    instance_id: u32,
    task: &'a ConfigKey,
    assigned_ports: &'a BTreeMap<String, u16>,
}

impl<'a> TaskOut<'a> {
    fn of(t: &'a ScheduledTask) -> TaskOut<'a> {
        let a = &t.assigned_task;
        TaskOut {
            assigned_task: AssignedOut {
                task_id: &a.task_id,
                slave_host: &a.slave_host,
                instance_id: a.instance_id,
                task: a.task.key(),
                assigned_ports: &a.assigned_ports,
            },
            status: t.status,
            failure_count: t.failure_count,
            ancestor_id: &t.ancestor_id,
            task_events: &t.task_events,
        }
    }
}

fn tasks_by_key<S: Serializer>(tasks: &[Arc<ScheduledTask>], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(tasks.iter().map(|t| TaskOut::of(t)))
}

#[derive(Deserialize)]
struct TaskIn {
    assigned_task: AssignedIn,
    status: ScheduleStatus,
    failure_count: u32,
    #[serde(default)]
    ancestor_id: Option<TaskId>,
    #[serde(default)]
    task_events: Vec<TaskEvent>,
}

#[derive(Deserialize)]
struct AssignedIn {
    task_id: TaskId,
    #[serde(default)]
    slave_host: Option<String>,
    instance_id: u32,
    task: ConfigRef,
    #[serde(default)]
    assigned_ports: BTreeMap<String, u16>,
}

#[derive(Serialize)]
struct SnapshotOut<'a> {
    configs: Vec<KeyedOut<'a>>,
    jobs: Vec<JobOut<'a>>,
    tasks: Vec<TaskOut<'a>>,
    hosts: &'a [Arc<HostRecord>],
    quotas: &'a BTreeMap<String, ResourceAggregate>,
    maintenance: &'a BTreeMap<String, MaintenanceMode>,
    locks: &'a [Lock],
}

#[derive(Deserialize)]
struct SnapshotIn {
    /// Absent before schema version 2, whose jobs and tasks hold their configs.
    #[serde(default)]
    configs: Vec<KeyedIn>,
    jobs: Vec<JobIn>,
    tasks: Vec<TaskIn>,
    hosts: Vec<Arc<HostRecord>>,
    #[serde(default)]
    quotas: BTreeMap<String, ResourceAggregate>,
    #[serde(default)]
    maintenance: BTreeMap<String, MaintenanceMode>,
    /// Absent in snapshots and backups older than locks.
    #[serde(default)]
    locks: Vec<Lock>,
}

impl Serialize for StateSnapshot {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        SnapshotOut {
            configs: self
                .configs
                .iter()
                .map(|c| KeyedOut {
                    key: c.key(),
                    config: c,
                })
                .collect(),
            jobs: self.jobs.iter().map(|j| JobOut::of(j)).collect(),
            tasks: self.tasks.iter().map(|t| TaskOut::of(t)).collect(),
            hosts: &self.hosts,
            quotas: &self.quotas,
            maintenance: &self.maintenance,
            locks: &self.locks,
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for StateSnapshot {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<StateSnapshot, D::Error> {
        let stored = SnapshotIn::deserialize(d)?;
        stored
            .resolve(&mut ConfigTable::default())
            .map_err(serde::de::Error::custom)
    }
}

/// The configs met so far while records are read back in order, by the key they were stored
/// under; inline configs of old records are added under their content key, so that equal
/// ones are shared.
#[derive(Default)]
struct ConfigTable(HashMap<ConfigKey, SharedTaskConfig>);

impl ConfigTable {
    fn introduce(&mut self, stored: KeyedIn) -> SharedTaskConfig {
        let config = SharedTaskConfig::with_key(stored.config, stored.key.clone());
        self.0.insert(stored.key, config.clone());
        config
    }

    fn seed(&mut self, snapshot: &StateSnapshot) {
        let used = snapshot.jobs.iter().map(|j| &j.task_config);
        let used = used.chain(snapshot.tasks.iter().map(|t| &t.assigned_task.task));
        for c in snapshot.configs.iter().chain(used) {
            self.0.entry(c.key().clone()).or_insert_with(|| c.clone());
        }
    }

    fn resolve(
        &mut self,
        r: ConfigRef,
        whose: &dyn Fn() -> String,
    ) -> Result<SharedTaskConfig, String> {
        match r {
            ConfigRef::Key(key) => self.0.get(&key).cloned().ok_or_else(|| {
                format!(
                    "{} refers to task config {key}, which no earlier record introduces",
                    whose()
                )
            }),
            ConfigRef::Inline(config) => {
                let config = SharedTaskConfig::from(*config);
                Ok(self.0.entry(config.key().clone()).or_insert(config).clone())
            }
        }
    }

    fn job(&mut self, j: JobIn) -> Result<Arc<JobConfiguration>, String> {
        let task_config = self.resolve(j.task_config, &|| format!("job {}", j.key))?;
        Ok(Arc::new(JobConfiguration {
            key: j.key,
            owner: j.owner,
            cron_schedule: j.cron_schedule,
            cron_collision_policy: j.cron_collision_policy,
            task_config,
            instance_count: j.instance_count,
            update_config: j.update_config,
        }))
    }

    fn task(&mut self, t: TaskIn) -> Result<Arc<ScheduledTask>, String> {
        let a = t.assigned_task;
        let task = self.resolve(a.task, &|| format!("task {}", a.task_id))?;
        Ok(Arc::new(ScheduledTask {
            assigned_task: aurora_core::AssignedTask {
                task_id: a.task_id,
                slave_host: a.slave_host,
                instance_id: a.instance_id,
                task,
                assigned_ports: a.assigned_ports,
            },
            status: t.status,
            failure_count: t.failure_count,
            ancestor_id: t.ancestor_id,
            task_events: t.task_events,
        }))
    }

    fn op(&mut self, op: OpIn) -> Result<Op, String> {
        Ok(match op {
            OpIn::SaveConfig { config } => Op::SaveConfig {
                config: self.introduce(config),
            },
            OpIn::SaveJob { job } => Op::SaveJob {
                job: self.job(job)?,
            },
            OpIn::RemoveJob { key } => Op::RemoveJob { key },
            OpIn::SaveTasks { tasks } => Op::SaveTasks {
                tasks: tasks
                    .into_iter()
                    .map(|t| self.task(t))
                    .collect::<Result<_, _>>()?,
            },
            OpIn::RemoveTasks { ids } => Op::RemoveTasks { ids },
            OpIn::SaveHost { host } => Op::SaveHost { host },
            OpIn::RemoveHost { host } => Op::RemoveHost { host },
            OpIn::SaveQuota { role, quota } => Op::SaveQuota { role, quota },
            OpIn::SaveMaintenance { host, mode } => Op::SaveMaintenance { host, mode },
            OpIn::SaveLock { lock } => Op::SaveLock { lock },
            OpIn::RemoveLock { key } => Op::RemoveLock { key },
            OpIn::Restore { state } => Op::Restore {
                state: Box::new(state.resolve(self)?),
            },
        })
    }
}

impl SnapshotIn {
    fn resolve(self, table: &mut ConfigTable) -> Result<StateSnapshot, String> {
        let configs = self
            .configs
            .into_iter()
            .map(|c| table.introduce(c))
            .collect();
        Ok(StateSnapshot {
            configs,
            jobs: self
                .jobs
                .into_iter()
                .map(|j| table.job(j))
                .collect::<Result<_, _>>()?,
            tasks: self
                .tasks
                .into_iter()
                .map(|t| table.task(t))
                .collect::<Result<_, _>>()?,
            hosts: self.hosts,
            quotas: self.quotas,
            maintenance: self.maintenance,
            locks: self.locks,
        })
    }
}

/// [`Op`] as read back: jobs and tasks name their config by key (or, in old records, hold it).
#[derive(Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
enum OpIn {
    SaveConfig {
        config: KeyedIn,
    },
    SaveJob {
        job: JobIn,
    },
    RemoveJob {
        key: JobKey,
    },
    SaveTasks {
        tasks: Vec<TaskIn>,
    },
    RemoveTasks {
        ids: Vec<TaskId>,
    },
    SaveHost {
        host: HostRecord,
    },
    RemoveHost {
        host: String,
    },
    SaveQuota {
        role: String,
        quota: ResourceAggregate,
    },
    SaveMaintenance {
        host: String,
        mode: MaintenanceMode,
    },
    SaveLock {
        lock: Lock,
    },
    RemoveLock {
        key: JobKey,
    },
    Restore {
        state: Box<SnapshotIn>,
    },
}

/// Serialises `value` into a string allocated once at its final size.
///
/// A snapshot of a large state is tens of MiB; grown by doubling, its intermediate buffers
/// stay in the allocator's free lists and the process's resident memory long after the
/// snapshot is written. Measuring first costs a second pass over the state, off the engine
/// lock, and leaves one allocation that is returned to the system when dropped.
pub(crate) fn json_exact<T: Serialize>(value: &T) -> Result<String, serde_json::Error> {
    /// Counts the bytes written to it.
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    serde_json::to_writer(&mut count, value)?;
    let mut bytes = Vec::with_capacity(count.0);
    serde_json::to_writer(&mut bytes, value)?;
    // serde_json writes UTF-8 only.
    String::from_utf8(bytes).map_err(|e| serde::ser::Error::custom(e.to_string()))
}

/// Reads the ops of one log entry, resolving config keys with (and adding to) `table`.
fn decode_ops(text: &str, table: &mut ConfigTable) -> Result<Vec<Op>, String> {
    let ops: Vec<OpIn> = serde_json::from_str(text).map_err(|e| e.to_string())?;
    ops.into_iter().map(|op| table.op(op)).collect()
}

/// Writes the ops of one log entry.
fn encode_ops(ops: &[Op]) -> Result<String, serde_json::Error> {
    serde_json::to_string(ops)
}

/// A backend in memory, for tests: durable as long as the value lives.
#[derive(Debug, Default)]
pub struct MemStorage {
    inner: Mutex<(Option<Snapshot>, Vec<Transaction>)>,
}

impl Storage for MemStorage {
    fn recover(&self) -> Result<Recovered, StorageError> {
        let inner = lock(&self.inner);
        let after = inner.0.as_ref().map_or(0, |s| s.seq);
        Ok(Recovered {
            snapshot: inner.0.clone(),
            log: inner.1.iter().filter(|t| t.seq > after).cloned().collect(),
        })
    }

    fn append(&self, txs: &[Transaction]) -> Result<(), StorageError> {
        lock(&self.inner).1.extend_from_slice(txs);
        Ok(())
    }

    fn snapshot(&self, snapshot: &Snapshot) -> Result<(), StorageError> {
        let mut inner = lock(&self.inner);
        inner.1.retain(|t| t.seq > snapshot.seq);
        inner.0 = Some(snapshot.clone());
        Ok(())
    }

    fn location(&self) -> String {
        "memory".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host_op(name: &str) -> Op {
        Op::SaveHost {
            host: HostRecord {
                host: name.into(),
                attributes: HostAttributes::default(),
                cpu: 1.0,
                ram_bytes: 1,
                disk_bytes: 1,
                port_begin: 1,
                port_end: 2,
            },
        }
    }

    fn tx(seq: u64, host: &str) -> Transaction {
        Transaction {
            seq,
            ops: vec![host_op(host)],
        }
    }

    #[test]
    fn sqlite_keeps_appends_across_reopen_and_snapshots_truncate() {
        let dir = tempfile::tempdir().unwrap();
        {
            let s = SqliteStorage::open(dir.path()).unwrap();
            s.append(&[tx(1, "a"), tx(2, "b")]).unwrap();
            s.append(&[tx(3, "c")]).unwrap();
        }
        let s = SqliteStorage::open(dir.path()).unwrap();
        let r = s.recover().unwrap();
        assert_eq!(r.snapshot, None);
        assert_eq!(r.log.iter().map(|t| t.seq).collect::<Vec<_>>(), [1, 2, 3]);
        s.snapshot(&Snapshot {
            seq: 2,
            timestamp_ms: 5,
            state: StateSnapshot::default(),
        })
        .unwrap();
        let r = s.recover().unwrap();
        assert_eq!(r.snapshot.unwrap().seq, 2);
        assert_eq!(r.log, [tx(3, "c")]);
    }

    #[test]
    fn snapshots_are_written_in_one_allocation_of_their_final_size() {
        let state = StateSnapshot {
            hosts: vec![match host_op("h") {
                Op::SaveHost { host } => Arc::new(host),
                other => panic!("{other:?}"),
            }],
            ..StateSnapshot::default()
        };
        let text = json_exact(&state).unwrap();
        assert_eq!(text, serde_json::to_string(&state).unwrap());
        assert_eq!(text.capacity(), text.len());
    }

    #[test]
    fn a_duplicate_sequence_rolls_back_the_whole_batch() {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteStorage::open(dir.path()).unwrap();
        s.append(&[tx(1, "a")]).unwrap();
        assert!(s.append(&[tx(2, "b"), tx(1, "again")]).is_err());
        assert_eq!(s.recover().unwrap().log, [tx(1, "a")]);
    }

    #[test]
    fn a_file_that_is_not_a_database_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("scheduler.db"), vec![7u8; 4096]).unwrap();
        let e = SqliteStorage::open(dir.path()).unwrap_err().to_string();
        assert!(e.contains("scheduler.db"), "{e}");
        assert!(e.contains("not a database"), "{e}");
    }

    #[test]
    fn an_undecodable_log_entry_names_its_sequence() {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteStorage::open(dir.path()).unwrap();
        s.append(&[tx(1, "a")]).unwrap();
        lock(&s.log)
            .execute("INSERT INTO log (seq, ops) VALUES (2, 'garbage')", [])
            .unwrap();
        let e = s.recover().unwrap_err().to_string();
        assert!(e.contains("log entry 2 is unreadable"), "{e}");
        assert!(e.contains("aurora-scheduler restore"), "{e}");
        // A failed recovery keeps every record, the good and the bad.
        let kept: i64 = lock(&s.log)
            .query_row("SELECT COUNT(*) FROM log", [], |r| r.get(0))
            .unwrap();
        assert_eq!(kept, 2);
    }

    fn config() -> TaskConfig {
        serde_json::from_value(serde_json::json!({
            "job": {"cluster": "c", "role": "www", "environment": "prod", "name": "web"}, "owner": {"role": "www", "user": "u"}, "is_service": true,
            "max_task_failures": 1, "priority": 0, "production": false,
            "resources": {"cpu": 1.0, "ram_bytes": 1, "disk_bytes": 1},
            "executor_config": {"name": "AuroraExecutor", "data": "{\"old\": true}"}
        }))
        .unwrap()
    }

    /// The job and its two tasks as schema version 1 wrote them: each with the whole config.
    fn version_1_records() -> (serde_json::Value, Vec<serde_json::Value>) {
        let job = serde_json::json!({
            "key": {"cluster": "c", "role": "www", "environment": "prod", "name": "web"}, "owner": {"role": "www", "user": "u"},
            "task_config": config(), "instance_count": 2
        });
        let tasks = (0..2)
            .map(|i| {
                serde_json::json!({
                    "assigned_task": {"task_id": format!("t{i}"), "instance_id": i,
                                      "task": config()},
                    "status": "PENDING", "failure_count": 0
                })
            })
            .collect();
        (job, tasks)
    }

    #[test]
    fn version_1_logs_and_snapshots_are_read_and_their_configs_shared() {
        let dir = tempfile::tempdir().unwrap();
        let (job, tasks) = version_1_records();
        {
            let s = SqliteStorage::open(dir.path()).unwrap();
            let conn = lock(&s.log);
            conn.execute(
                "UPDATE meta SET value = '1' WHERE key = 'schema_version'",
                [],
            )
            .unwrap();
            let ops = serde_json::json!([
                {"op": "save_job", "job": job},
                {"op": "save_tasks", "tasks": tasks},
            ]);
            conn.execute(
                "INSERT INTO log (seq, ops) VALUES (1, ?1)",
                params![ops.to_string()],
            )
            .unwrap();
        }
        let s = SqliteStorage::open(dir.path()).unwrap();
        let version: String = lock(&s.log)
            .query_row(
                "SELECT value FROM meta WHERE key = 'schema_version'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION);
        let r = s.recover().unwrap();
        let Op::SaveJob { job: saved } = &r.log[0].ops[0] else {
            panic!("{:?}", r.log[0].ops[0]);
        };
        let Op::SaveTasks { tasks: saved_tasks } = &r.log[0].ops[1] else {
            panic!("{:?}", r.log[0].ops[1]);
        };
        for t in saved_tasks {
            assert!(SharedTaskConfig::ptr_eq(
                &t.assigned_task.task,
                &saved.task_config
            ));
        }
        assert_eq!(*saved.task_config, config());

        let snapshot = serde_json::json!({"jobs": [job], "tasks": tasks, "hosts": []});
        let state: StateSnapshot = serde_json::from_value(snapshot).unwrap();
        assert!(state.configs.is_empty());
        assert_eq!(state.tasks.len(), 2);
        assert!(SharedTaskConfig::ptr_eq(
            &state.tasks[0].assigned_task.task,
            &state.jobs[0].task_config
        ));
    }

    /// A version 2 log entry and snapshot holding `job`, with its config introduced first.
    fn version_2_records(job: &JobConfiguration) -> (serde_json::Value, serde_json::Value) {
        let ops = serde_json::to_value([
            Op::SaveConfig {
                config: job.task_config.clone(),
            },
            Op::SaveJob {
                job: Arc::new(job.clone()),
            },
        ])
        .unwrap();
        let snapshot = serde_json::to_value(StateSnapshot {
            configs: vec![job.task_config.clone()],
            jobs: vec![Arc::new(job.clone())],
            ..StateSnapshot::default()
        })
        .unwrap();
        (ops, snapshot)
    }

    #[test]
    fn jobs_keep_their_update_settings_and_older_records_get_the_defaults() {
        let settings = UpdateSettings {
            batch_size: 3,
            watch_secs: 10,
            rollback_on_failure: false,
            ..UpdateSettings::default()
        };
        let job = JobConfiguration {
            key: config().job.clone(),
            owner: config().owner.clone(),
            cron_schedule: None,
            cron_collision_policy: CronCollisionPolicy::default(),
            task_config: config().into(),
            instance_count: 2,
            update_config: settings,
        };
        let (mut ops, mut snapshot) = version_2_records(&job);
        assert_eq!(ops[1]["job"]["update_config"]["batch_size"], 3);
        let recovered_job = |ops: &serde_json::Value| {
            let dir = tempfile::tempdir().unwrap();
            let s = SqliteStorage::open(dir.path()).unwrap();
            lock(&s.log)
                .execute(
                    "INSERT INTO log (seq, ops) VALUES (1, ?1)",
                    params![ops.to_string()],
                )
                .unwrap();
            let r = s.recover().unwrap();
            match &r.log[0].ops[1] {
                Op::SaveJob { job } => JobConfiguration::clone(job),
                other => panic!("{other:?}"),
            }
        };
        let snapshot_job = |snapshot: &serde_json::Value| {
            let state: StateSnapshot = serde_json::from_value(snapshot.clone()).unwrap();
            JobConfiguration::clone(&state.jobs[0])
        };
        assert_eq!(recovered_job(&ops), job);
        assert_eq!(snapshot_job(&snapshot), job);

        // Written before jobs carried update settings: read with the 0.6 defaults.
        ops[1]["job"]
            .as_object_mut()
            .unwrap()
            .remove("update_config");
        snapshot["jobs"][0]
            .as_object_mut()
            .unwrap()
            .remove("update_config");
        let older = JobConfiguration {
            update_config: UpdateSettings::default(),
            ..job
        };
        assert_eq!(recovered_job(&ops), older);
        assert_eq!(snapshot_job(&snapshot), older);
        // Version 1 records lack it too.
        let (v1_job, _) = version_1_records();
        let v1: StateSnapshot =
            serde_json::from_value(serde_json::json!({"jobs": [v1_job], "tasks": [], "hosts": []}))
                .unwrap();
        assert_eq!(v1.jobs[0].update_config, UpdateSettings::default());
    }

    #[test]
    fn a_task_naming_a_config_never_introduced_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteStorage::open(dir.path()).unwrap();
        let ops = serde_json::json!([{"op": "save_tasks", "tasks": [{
            "assigned_task": {"task_id": "t0", "instance_id": 0, "task": "abc123"},
            "status": "PENDING", "failure_count": 0
        }]}]);
        lock(&s.log)
            .execute(
                "INSERT INTO log (seq, ops) VALUES (1, ?1)",
                params![ops.to_string()],
            )
            .unwrap();
        let e = s.recover().unwrap_err().to_string();
        assert!(e.contains("log entry 1 is unreadable"), "{e}");
        assert!(
            e.contains("task t0 refers to task config abc123, which no earlier record introduces"),
            "{e}"
        );
    }

    #[test]
    fn a_database_of_a_newer_scheduler_is_refused_plainly() {
        let dir = tempfile::tempdir().unwrap();
        {
            let s = SqliteStorage::open(dir.path()).unwrap();
            lock(&s.log)
                .execute(
                    "UPDATE meta SET value = '3' WHERE key = 'schema_version'",
                    [],
                )
                .unwrap();
        }
        let e = SqliteStorage::open(dir.path()).unwrap_err().to_string();
        assert!(e.contains("schema version 3 is not supported"), "{e}");
        assert!(e.contains("reads versions 1 and 2"), "{e}");
    }
}
