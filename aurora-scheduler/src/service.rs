//! The running service: the engine behind a lock, a writer thread that commits transactions
//! in order (batching whatever queued up during the previous commit), a background loop that
//! places tasks and times out executors, and snapshots.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, mpsc};
use std::time::{Duration, Instant};

use aurora_core::{LifecycleConfig, PlacementConfig, ScheduleStatus};
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};

use crate::engine::{Engine, EngineConfig, HistoryConfig};
use crate::error::SchedulerError;
use crate::state::State;
use crate::storage::{Snapshot, SqliteStorage, Storage, Transaction};
use crate::{RequestError, http};
use aurora_core::api::ErrorCode;

/// How the scheduler runs.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The cluster this scheduler serves; job keys must name it.
    pub cluster: String,
    /// This scheduler's host name, recorded in task events.
    pub hostname: String,
    /// Where `scheduler.db` lives.
    pub data_dir: PathBuf,
    /// The address to listen on; loopback by default, since the API has no authentication.
    pub http_host: String,
    /// The port to listen on; 0 picks a free one.
    pub http_port: u16,
    /// How often executors should heartbeat, in milliseconds.
    pub heartbeat_interval_ms: u64,
    /// After how long without a heartbeat an executor's tasks are LOST, in milliseconds.
    pub executor_timeout_ms: u64,
    /// Take a snapshot (and truncate the log) after this many transactions.
    pub snapshot_interval_transactions: u64,
    /// After how long in ASSIGNED, PREEMPTING, RESTARTING, KILLING or DRAINING a task is LOST,
    /// in milliseconds.
    pub transient_task_state_timeout_ms: u64,
    /// A run shorter than this flapped, in milliseconds; its replacement is THROTTLED.
    pub flapping_task_threshold_ms: u64,
    /// The penalty after one flapped run, in milliseconds; it doubles per further one.
    pub initial_flapping_penalty_ms: u64,
    /// The largest flapping penalty, in milliseconds.
    pub max_flapping_penalty_ms: u64,
    /// The first interval between deliveries of the same kill, in milliseconds; it doubles.
    pub initial_kill_retry_ms: u64,
    /// The longest interval between deliveries of the same kill, in milliseconds.
    pub max_kill_retry_ms: u64,
    /// How long a task must be pending before it may preempt others, in milliseconds.
    pub preemption_delay_ms: u64,
    /// CPU the executor uses next to every task.
    pub executor_overhead_cpu: f64,
    /// Memory the executor uses next to every task, in bytes.
    pub executor_overhead_ram_bytes: u64,
    /// Ended tasks older than this are removed, in milliseconds.
    pub history_prune_threshold_ms: u64,
    /// At most this many ended tasks are kept per job.
    pub history_max_per_job: usize,
    /// Ended tasks younger than this are always kept, in milliseconds.
    pub history_min_retention_ms: u64,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            cluster: "local".to_owned(),
            hostname: "localhost".to_owned(),
            data_dir: PathBuf::from("."),
            http_host: "127.0.0.1".to_owned(),
            http_port: 8081,
            heartbeat_interval_ms: 500,
            executor_timeout_ms: 30_000,
            snapshot_interval_transactions: 10_000,
            transient_task_state_timeout_ms: 5 * 60_000,
            flapping_task_threshold_ms: 5 * 60_000,
            initial_flapping_penalty_ms: 30_000,
            max_flapping_penalty_ms: 5 * 60_000,
            initial_kill_retry_ms: 5_000,
            max_kill_retry_ms: 60_000,
            preemption_delay_ms: 10 * 60_000,
            executor_overhead_cpu: 0.25,
            executor_overhead_ram_bytes: 128 * 1024 * 1024,
            history_prune_threshold_ms: 2 * 24 * 3_600_000,
            history_max_per_job: 100,
            history_min_retention_ms: 3_600_000,
        }
    }
}

impl Config {
    fn engine(&self) -> EngineConfig {
        let ms = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        EngineConfig {
            cluster: self.cluster.clone(),
            hostname: self.hostname.clone(),
            heartbeat_interval_ms: self.heartbeat_interval_ms,
            executor_timeout_ms: self.executor_timeout_ms,
            lifecycle: LifecycleConfig {
                flapping_threshold_ms: ms(self.flapping_task_threshold_ms),
                initial_flapping_penalty_ms: ms(self.initial_flapping_penalty_ms),
                max_flapping_penalty_ms: ms(self.max_flapping_penalty_ms),
                transient_state_timeout_ms: ms(self.transient_task_state_timeout_ms),
            },
            placement: PlacementConfig {
                executor_overhead_cpu: self.executor_overhead_cpu,
                executor_overhead_ram_bytes: self.executor_overhead_ram_bytes,
            },
            kill_retry_initial_ms: self.initial_kill_retry_ms,
            kill_retry_max_ms: self.max_kill_retry_ms,
            preemption_delay_ms: self.preemption_delay_ms,
            history: HistoryConfig {
                prune_threshold_ms: ms(self.history_prune_threshold_ms),
                max_per_job: self.history_max_per_job,
                min_retention_ms: ms(self.history_min_retention_ms),
                ..HistoryConfig::default()
            },
        }
    }
}

/// A source of the current time, so that logic can be tested without waiting.
pub trait Clock: Send + Sync + 'static {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> i64;
}

/// The system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
    }
}

/// How far the log is durable, or why it stopped.
#[derive(Debug, Clone, Default)]
struct Durable {
    upto: u64,
    failed: Option<String>,
}

/// Counters kept outside the engine lock.
#[derive(Debug, Default)]
pub(crate) struct Metrics {
    pub(crate) storage_batches: AtomicU64,
    pub(crate) storage_transactions: AtomicU64,
    pub(crate) storage_ops: AtomicU64,
    pub(crate) storage_write_us_total: AtomicU64,
    pub(crate) storage_write_us_last: AtomicU64,
    pub(crate) snapshots: AtomicU64,
    pub(crate) snapshot_ms_last: AtomicU64,
    pub(crate) scheduling_rounds: AtomicU64,
    pub(crate) scheduling_us_last: AtomicU64,
    pub(crate) scheduling_us_total: AtomicU64,
    pub(crate) scheduling_us_max: AtomicU64,
    pub(crate) storage_write_us_max: AtomicU64,
    pub(crate) snapshot_pause_us_last: AtomicU64,
}

struct Core {
    engine: Engine,
    last_seq: u64,
    tx: mpsc::Sender<Transaction>,
}

impl Core {
    /// Queues the engine's pending ops as the next transaction; returns the sequence number a
    /// caller must wait for before acknowledging anything it saw.
    fn flush(&mut self) -> u64 {
        let ops = self.engine.take_batch();
        if !ops.is_empty() {
            self.last_seq += 1;
            // If the writer is gone, it has recorded why in `Durable::failed`.
            let _ = self.tx.send(Transaction {
                seq: self.last_seq,
                ops,
            });
        }
        self.last_seq
    }
}

pub(crate) struct Shared {
    core: Mutex<Core>,
    durable: watch::Receiver<Durable>,
    pub(crate) wake: Notify,
    clock: Arc<dyn Clock>,
    storage: Arc<dyn Storage>,
    pub(crate) metrics: Arc<Metrics>,
    config: Config,
    snapshot_lock: tokio::sync::Mutex<u64>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Core> {
        // The engine never panics on input; if it did, its state is still consistent with
        // the ops already queued, so keep serving.
        self.core
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Runs a change and waits until it is durable.
    pub(crate) async fn mutate<T>(
        &self,
        f: impl FnOnce(&mut Engine, i64) -> Result<T, RequestError>,
    ) -> Result<T, RequestError> {
        let (result, seq) = {
            let mut core = self.lock();
            let now = self.clock.now_ms();
            let result = f(&mut core.engine, now);
            (result, core.flush())
        };
        self.wait_durable(seq).await?;
        self.wake.notify_one();
        result
    }

    /// Reads state; answers only once everything it may have seen is durable.
    pub(crate) async fn read<T>(&self, f: impl FnOnce(&Engine) -> T) -> Result<T, RequestError> {
        let (result, seq) = {
            let core = self.lock();
            (f(&core.engine), core.last_seq)
        };
        self.wait_durable(seq).await?;
        Ok(result)
    }

    async fn wait_durable(&self, seq: u64) -> Result<(), RequestError> {
        let mut rx = self.durable.clone();
        let failed = match rx.wait_for(|d| d.failed.is_some() || d.upto >= seq).await {
            Ok(d) => d.failed.clone(),
            Err(_) => Some("the storage writer stopped".to_owned()),
        };
        match failed {
            Some(why) => Err(RequestError::new(
                ErrorCode::Error,
                format!("the change could not be stored ({why}); retry once the scheduler is back"),
            )),
            None => Ok(()),
        }
    }

    /// One round of the background loop: time out executors, place pending tasks.
    fn tick(&self) -> u64 {
        let started = Instant::now();
        let seq = {
            let mut core = self.lock();
            let now = self.clock.now_ms();
            core.engine.check_executors(now);
            core.engine.check_timers(now);
            core.engine.schedule(now);
            core.flush()
        };
        let us = micros(started.elapsed());
        let m = &self.metrics;
        m.scheduling_rounds.fetch_add(1, Ordering::Relaxed);
        m.scheduling_us_last.store(us, Ordering::Relaxed);
        m.scheduling_us_total.fetch_add(us, Ordering::Relaxed);
        m.scheduling_us_max.fetch_max(us, Ordering::Relaxed);
        seq
    }

    /// Takes a snapshot and truncates the log. The world stops only to copy the state; the
    /// encoding and writing happen on a blocking thread while requests continue.
    pub(crate) async fn snapshot(&self) -> Result<u64, SchedulerError> {
        let mut last = self.snapshot_lock.lock().await;
        let started = Instant::now();
        let snapshot = {
            let paused = Instant::now();
            let core = self.lock();
            let snapshot = Snapshot {
                seq: core.last_seq,
                timestamp_ms: self.clock.now_ms(),
                state: core.engine.state.to_snapshot(),
            };
            drop(core);
            self.metrics
                .snapshot_pause_us_last
                .store(micros(paused.elapsed()), Ordering::Relaxed);
            snapshot
        };
        // The snapshot may include changes not yet durable; it is written only after them,
        // so that a crash never leaves a snapshot ahead of the log.
        self.wait_durable(snapshot.seq)
            .await
            .map_err(|e| SchedulerError::StorageFailed(e.message))?;
        let seq = snapshot.seq;
        let storage = Arc::clone(&self.storage);
        tokio::task::spawn_blocking(move || storage.snapshot(&snapshot))
            .await
            .map_err(|e| {
                SchedulerError::StorageFailed(format!("the snapshot task failed: {e}"))
            })??;
        *last = seq;
        self.metrics.snapshots.fetch_add(1, Ordering::Relaxed);
        self.metrics.snapshot_ms_last.store(
            u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
        tracing::info!(seq, "snapshot taken; log truncated");
        Ok(seq)
    }

    fn backup_dir(&self) -> PathBuf {
        self.config.data_dir.join("backups")
    }

    /// Writes a backup of the current state into `<data_dir>/backups`; returns its name and
    /// path. Like a snapshot, it holds the engine lock only to copy pointers.
    pub(crate) async fn backup(&self) -> Result<(String, PathBuf), RequestError> {
        let snapshot = {
            let core = self.lock();
            Snapshot {
                seq: core.last_seq,
                timestamp_ms: self.clock.now_ms(),
                state: core.engine.state.to_snapshot(),
            }
        };
        self.wait_durable(snapshot.seq).await?;
        let name = format!(
            "scheduler-backup-{}-{}.json",
            snapshot.timestamp_ms, snapshot.seq
        );
        let path = self.backup_dir().join(&name);
        let target = path.clone();
        tokio::task::spawn_blocking(move || crate::backup::write_backup(&target, &snapshot))
            .await
            .map_err(|e| {
                RequestError::new(ErrorCode::Error, format!("the backup task failed: {e}"))
            })?
            .map_err(|e| RequestError::new(ErrorCode::Error, e.to_string()))?;
        tracing::info!(path = %path.display(), "backup written");
        Ok((name, path))
    }

    /// The names of the backups in `<data_dir>/backups`, oldest first.
    pub(crate) fn backups(&self) -> Vec<String> {
        let mut names: Vec<(i64, String)> = std::fs::read_dir(self.backup_dir())
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| n.starts_with("scheduler-backup-") && n.ends_with(".json"))
            .map(|n| {
                let ts = n
                    .trim_start_matches("scheduler-backup-")
                    .split('-')
                    .next()
                    .and_then(|t| t.parse().ok())
                    .unwrap_or(0);
                (ts, n)
            })
            .collect();
        names.sort();
        names.into_iter().map(|(_, n)| n).collect()
    }

    /// Replaces the whole state with a named backup, durably.
    pub(crate) async fn restore(&self, name: &str) -> Result<(), RequestError> {
        if !self.backups().iter().any(|b| b == name) {
            return Err(RequestError::new(
                ErrorCode::NotFound,
                format!("no backup named {name:?}; list them with GET /api/admin/backups"),
            ));
        }
        let path = self.backup_dir().join(name);
        let snapshot = tokio::task::spawn_blocking(move || crate::backup::read_backup(&path))
            .await
            .map_err(|e| {
                RequestError::new(ErrorCode::Error, format!("the restore task failed: {e}"))
            })?
            .map_err(|e| RequestError::invalid(e.to_string()))?;
        self.mutate(|e, now| {
            e.restore(snapshot.state, now);
            Ok(())
        })
        .await
    }

    /// `name value` pairs for `/vars`.
    pub(crate) fn vars(&self) -> Vec<(String, serde_json::Value)> {
        let mut vars: Vec<(String, serde_json::Value)> = Vec::new();
        let mut put = |name: &str, value: serde_json::Value| vars.push((name.to_owned(), value));
        {
            let core = self.lock();
            let engine = &core.engine;
            let by_state = engine.state.status_counts();
            for s in ScheduleStatus::ALL {
                put(
                    &format!("task_store_{s}"),
                    by_state.get(&s).copied().unwrap_or(0).into(),
                );
            }
            put("tasks_total", engine.state.tasks.len().into());
            put("task_configs_stored", engine.state.configs.len().into());
            put("jobs", engine.state.jobs.len().into());
            let active = engine
                .state
                .jobs
                .keys()
                .filter(|k| engine.state.job_is_active(k))
                .count();
            put("jobs_active", active.into());
            put("executors_registered", engine.state.hosts.len().into());
            put("locks_held", engine.state.locks.len().into());
            put("executors_live", engine.live_executors().into());
            let c = &engine.counters;
            put("scheduler_placements", c.placements.into());
            put(
                "pending_tasks_unplaced",
                engine.pending_reasons.len().into(),
            );
            put(
                "scheduler_illegal_task_state_transitions",
                c.illegal_transitions.into(),
            );
            put("tasks_rescheduled", c.tasks_rescheduled.into());
            put("executors_timed_out", c.executors_timed_out.into());
            put("jobs_created", c.jobs_created.into());
            put("tasks_throttled", c.tasks_throttled.into());
            put(
                "tasks_timed_out_in_transient_states",
                c.transient_timeouts.into(),
            );
            put("task_kills_sent", c.kills_sent.into());
            put("task_kill_retries", c.kill_retries.into());
            put("tasks_lost_by_reconciliation", c.reconciled_lost.into());
            put("preemptor_tasks_preempted", c.preemptions.into());
            put("preemptor_searches", c.preemption_searches.into());
            put("tasks_pruned", c.tasks_pruned.into());
            put("storage_last_seq", core.last_seq.into());
        }
        let m = &self.metrics;
        let load = |a: &AtomicU64| serde_json::Value::from(a.load(Ordering::Relaxed));
        put("storage_batches_written", load(&m.storage_batches));
        put("storage_writes", load(&m.storage_transactions));
        put("storage_ops_written", load(&m.storage_ops));
        put(
            "storage_write_latency_us_total",
            load(&m.storage_write_us_total),
        );
        put(
            "storage_write_latency_us_last",
            load(&m.storage_write_us_last),
        );
        put("storage_snapshots", load(&m.snapshots));
        put("storage_snapshot_ms_last", load(&m.snapshot_ms_last));
        put("scheduling_rounds", load(&m.scheduling_rounds));
        put("scheduling_latency_us_last", load(&m.scheduling_us_last));
        put("scheduling_latency_us_total", load(&m.scheduling_us_total));
        put("scheduling_latency_us_max", load(&m.scheduling_us_max));
        put(
            "storage_write_latency_us_max",
            load(&m.storage_write_us_max),
        );
        put(
            "storage_snapshot_pause_us_last",
            load(&m.snapshot_pause_us_last),
        );
        vars
    }
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// Commits queued transactions in order, as many per SQLite transaction as have queued up.
fn writer_loop(
    storage: Arc<dyn Storage>,
    rx: mpsc::Receiver<Transaction>,
    durable: watch::Sender<Durable>,
    metrics: Arc<Metrics>,
) {
    const MAX_BATCH: usize = 1024;
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(t) => batch.push(t),
                Err(_) => break,
            }
        }
        let started = Instant::now();
        match storage.append(&batch) {
            Ok(()) => {
                let us = micros(started.elapsed());
                metrics.storage_batches.fetch_add(1, Ordering::Relaxed);
                metrics
                    .storage_transactions
                    .fetch_add(batch.len() as u64, Ordering::Relaxed);
                let ops: usize = batch.iter().map(|t| t.ops.len()).sum();
                metrics.storage_ops.fetch_add(ops as u64, Ordering::Relaxed);
                metrics
                    .storage_write_us_total
                    .fetch_add(us, Ordering::Relaxed);
                metrics.storage_write_us_last.store(us, Ordering::Relaxed);
                metrics
                    .storage_write_us_max
                    .fetch_max(us, Ordering::Relaxed);
                let upto = batch.last().map_or(0, |t| t.seq);
                durable.send_modify(|d| d.upto = d.upto.max(upto));
            }
            Err(e) => {
                tracing::error!(error = %e, "storage write failed; stopping");
                durable.send_modify(|d| d.failed = Some(e.to_string()));
                return;
            }
        }
    }
}

/// A scheduler bound to its HTTP port, with its state recovered, ready to [`serve`].
///
/// [`serve`]: Scheduler::serve
///
/// ```no_run
/// # async fn demo() -> Result<(), aurora_scheduler::SchedulerError> {
/// use aurora_scheduler::{Config, Scheduler};
/// let config = Config { data_dir: "/var/lib/aurora".into(), http_port: 0, ..Config::default() };
/// let scheduler = Scheduler::start(config).await?;
/// println!("listening on {}", scheduler.local_addr());
/// scheduler.serve(std::future::pending()).await
/// # }
/// ```
pub struct Scheduler {
    shared: Arc<Shared>,
    listener: TcpListener,
    addr: SocketAddr,
}

impl std::fmt::Debug for Scheduler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scheduler")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl Scheduler {
    /// Opens `<data_dir>/scheduler.db`, recovers the state and binds the HTTP port.
    pub async fn start(config: Config) -> Result<Scheduler, SchedulerError> {
        let dir = config.data_dir.clone();
        let storage = tokio::task::spawn_blocking(move || SqliteStorage::open(&dir))
            .await
            .map_err(|e| SchedulerError::StorageFailed(format!("opening storage failed: {e}")))??;
        Scheduler::start_with(config, Arc::new(storage), Arc::new(SystemClock)).await
    }

    /// Like [`Scheduler::start`] with a given storage backend and clock.
    pub async fn start_with(
        config: Config,
        storage: Arc<dyn Storage>,
        clock: Arc<dyn Clock>,
    ) -> Result<Scheduler, SchedulerError> {
        let recovering = Arc::clone(&storage);
        let recovered = tokio::task::spawn_blocking(move || recovering.recover())
            .await
            .map_err(|e| SchedulerError::StorageFailed(format!("recovery failed: {e}")))??;
        let (state, last_seq) = State::recover(recovered);
        tracing::info!(
            jobs = state.jobs.len(),
            tasks = state.tasks.len(),
            hosts = state.hosts.len(),
            last_seq,
            location = storage.location(),
            "state recovered"
        );
        let addr = format!("{}:{}", config.http_host, config.http_port);
        let listener = TcpListener::bind(&addr)
            .await
            .map_err(|source| SchedulerError::Bind {
                addr: addr.clone(),
                source,
            })?;
        let local = listener
            .local_addr()
            .map_err(|source| SchedulerError::Bind { addr, source })?;

        let engine = Engine::new(state, config.engine(), clock.now_ms());
        let (tx, rx) = mpsc::channel();
        let (durable_tx, durable_rx) = watch::channel(Durable {
            upto: last_seq,
            failed: None,
        });
        let metrics = Arc::new(Metrics::default());
        let writer_storage = Arc::clone(&storage);
        let writer_metrics = Arc::clone(&metrics);
        std::thread::Builder::new()
            .name("storage-writer".to_owned())
            .spawn(move || writer_loop(writer_storage, rx, durable_tx, writer_metrics))
            .map_err(|e| SchedulerError::StorageFailed(format!("cannot start the writer: {e}")))?;
        let shared = Arc::new(Shared {
            core: Mutex::new(Core {
                engine,
                last_seq,
                tx,
            }),
            durable: durable_rx,
            wake: Notify::new(),
            clock,
            storage,
            metrics,
            config,
            snapshot_lock: tokio::sync::Mutex::new(last_seq),
        });
        Ok(Scheduler {
            shared,
            listener,
            addr: local,
        })
    }

    /// The address the HTTP server listens on (with the real port when 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves the HTTP API and runs the scheduling loop until `shutdown` completes or storage
    /// fails.
    pub async fn serve(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), SchedulerError> {
        let background = AbortOnDrop(tokio::spawn(background(Arc::clone(&self.shared))));
        let mut durable = self.shared.durable.clone();
        let storage_failed = async move {
            let _ = durable.wait_for(|d| d.failed.is_some()).await;
        };
        let app = http::router(Arc::clone(&self.shared));
        let result = axum::serve(self.listener, app)
            .with_graceful_shutdown(async move {
                tokio::select! {
                    () = shutdown => {}
                    () = storage_failed => {}
                }
            })
            .await;
        drop(background);
        result.map_err(SchedulerError::Serve)?;
        if let Some(why) = self.shared.durable.borrow().failed.clone() {
            return Err(SchedulerError::StorageFailed(why));
        }
        Ok(())
    }
}

/// Stops the background loop when serving ends, even when the serving future is dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Places tasks and checks executors whenever woken, and at least once per heartbeat interval;
/// snapshots when the log has grown.
async fn background(shared: Arc<Shared>) {
    let interval = Duration::from_millis(shared.config.heartbeat_interval_ms.clamp(10, 5_000));
    loop {
        tokio::select! {
            () = shared.wake.notified() => {}
            () = tokio::time::sleep(interval) => {}
        }
        let seq = shared.tick();
        let last_snapshot = *shared.snapshot_lock.lock().await;
        if seq.saturating_sub(last_snapshot) >= shared.config.snapshot_interval_transactions.max(1)
            && let Err(e) = shared.snapshot().await
        {
            tracing::error!(error = %e, "snapshot failed; the log keeps growing");
        }
    }
}
