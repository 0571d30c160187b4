//! Durable state: an ordered stream of operations plus snapshots.
//!
//! Every change to the scheduler's state is an [`Op`]; the ops of one request form a
//! [`Transaction`] with a sequence number. State is the latest [`Snapshot`] with every later
//! transaction replayed in order. [`Storage`] is the seam for backends: [`SqliteStorage`] is the
//! embedded default, [`MemStorage`] serves tests, and a replicated backend can follow.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use aurora_core::api::Lock;
use aurora_core::{
    JobConfiguration, JobKey, MaintenanceMode, ResourceAggregate, ScheduledTask, TaskId,
};
use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};

/// A machine an executor registered, as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostRecord {
    /// The host name; it identifies the executor.
    pub host: String,
    /// Attributes for constraints; always includes `host`.
    pub attributes: BTreeMap<String, std::collections::BTreeSet<String>>,
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Op {
    /// Store (or replace) a job's configuration.
    SaveJob {
        /// The job (shared: records are immutable).
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transaction {
    /// The position in the stream, starting at 1, strictly increasing.
    pub seq: u64,
    /// The ops, in order.
    pub ops: Vec<Op>,
}

/// The whole state at a point of the stream.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StateSnapshot {
    /// Every job configuration.
    pub jobs: Vec<Arc<JobConfiguration>>,
    /// Every task, terminal ones included.
    pub tasks: Vec<Arc<ScheduledTask>>,
    /// Every registered machine.
    pub hosts: Vec<HostRecord>,
    /// Production quota by role.
    #[serde(default)]
    pub quotas: BTreeMap<String, ResourceAggregate>,
    /// Hosts not in service, with their mode.
    #[serde(default)]
    pub maintenance: BTreeMap<String, MaintenanceMode>,
    /// Job locks held (absent in snapshots and backups older than locks).
    #[serde(default)]
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
    #[error("{what} is unreadable: {reason}")]
    Corrupt {
        /// Which record.
        what: String,
        /// The decoding error.
        reason: String,
    },
    /// The database was written by a newer scheduler.
    #[error(
        "schema version {found} is not supported (this scheduler reads version {SCHEMA_VERSION})"
    )]
    Schema {
        /// The version found.
        found: String,
    },
}

const SCHEMA_VERSION: &str = "1";

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
        if version != SCHEMA_VERSION {
            return Err(err(StorageErrorKind::Schema { found: version }));
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
            let ops = serde_json::from_str(&text).map_err(|e| {
                self.err(StorageErrorKind::Corrupt {
                    what: format!("log entry {seq}"),
                    reason: e.to_string(),
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
                let text = serde_json::to_string(&t.ops).map_err(|e| {
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
        let text = serde_json::to_string(&snapshot.state).map_err(|e| {
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
                host: name.to_owned(),
                attributes: BTreeMap::new(),
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
    }
}
