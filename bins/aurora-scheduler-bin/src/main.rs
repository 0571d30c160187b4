//! `aurora-scheduler`: serves the scheduler's HTTP API with state under `--data-dir`;
//! `aurora-scheduler backup --data-dir D --out FILE` and
//! `aurora-scheduler restore --data-dir D --from FILE` back up and restore a stopped
//! scheduler's state.
//!
//! Exit codes: 0 after a clean shutdown (SIGINT/SIGTERM) or a successful backup/restore, 1 when
//! the server or storage fails while running, 2 for bad arguments, 3 when the storage cannot be
//! opened or read (or a backup cannot be written or read), 4 when the HTTP port cannot be bound.

use std::path::PathBuf;
use std::process::ExitCode;

use aurora_scheduler::{Config, Scheduler, SchedulerError, backup_data_dir, restore_data_dir};
use clap::{Parser, Subcommand};

/// The Aurora scheduler.
#[derive(Debug, Parser)]
#[command(
    name = "aurora-scheduler",
    version,
    args_conflicts_with_subcommands = true
)]
struct Args {
    /// Admin commands; without one, the scheduler serves.
    #[command(subcommand)]
    command: Option<Admin>,
    /// The HTTP port to listen on; 0 picks a free one (printed on stdout). Required to serve.
    #[arg(long)]
    http_port: Option<u16>,
    /// The address to listen on. The API has no authentication, so the default is loopback;
    /// pass e.g. 0.0.0.0 for executors on other machines, on a trusted network only.
    #[arg(long, default_value = "127.0.0.1")]
    http_host: String,
    /// Where the scheduler keeps its state (scheduler.db). Required to serve.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// The cluster this scheduler serves; job keys must name it.
    #[arg(long, default_value = "local")]
    cluster: String,
    /// The host name recorded in task events (default: this machine's).
    #[arg(long)]
    hostname: Option<String>,
    /// How often executors heartbeat, in milliseconds.
    #[arg(long, default_value_t = 500)]
    heartbeat_interval_ms: u64,
    /// After how long without a heartbeat an executor's tasks are LOST, in milliseconds.
    #[arg(long, default_value_t = 30_000)]
    executor_timeout_ms: u64,
    /// Snapshot the state and truncate the log after this many transactions.
    #[arg(long, default_value_t = 10_000)]
    snapshot_interval_transactions: u64,
    /// After how long in ASSIGNED, PREEMPTING, RESTARTING, KILLING or DRAINING a task is LOST,
    /// in milliseconds.
    #[arg(long, default_value_t = 300_000)]
    transient_task_state_timeout_ms: u64,
    /// A run shorter than this flapped and its replacement is THROTTLED, in milliseconds
    /// (0 disables throttling).
    #[arg(long, default_value_t = 300_000)]
    flapping_task_threshold_ms: u64,
    /// The penalty after one flapped run, in milliseconds; it doubles per further one.
    #[arg(long, default_value_t = 30_000)]
    initial_flapping_penalty_ms: u64,
    /// The largest flapping penalty, in milliseconds.
    #[arg(long, default_value_t = 300_000)]
    max_flapping_penalty_ms: u64,
    /// The first interval between deliveries of the same kill, in milliseconds; it doubles.
    #[arg(long, default_value_t = 5_000)]
    initial_kill_retry_ms: u64,
    /// The longest interval between deliveries of the same kill, in milliseconds.
    #[arg(long, default_value_t = 60_000)]
    max_kill_retry_ms: u64,
    /// How long a task must be pending before it may preempt others, in milliseconds.
    #[arg(long, default_value_t = 600_000)]
    preemption_delay_ms: u64,
    /// CPU the executor uses next to every task.
    #[arg(long, default_value_t = 0.25)]
    executor_overhead_cpu: f64,
    /// Memory the executor uses next to every task, in MiB.
    #[arg(long, default_value_t = 128)]
    executor_overhead_ram_mb: u64,
    /// Ended tasks older than this are removed, in milliseconds.
    #[arg(long, default_value_t = 2 * 24 * 3_600_000)]
    history_prune_threshold_ms: u64,
    /// At most this many ended tasks are kept per job.
    #[arg(long, default_value_t = 100)]
    history_max_per_job: usize,
    /// Ended tasks younger than this are always kept, in milliseconds.
    #[arg(long, default_value_t = 3_600_000)]
    history_min_retention_ms: u64,
}

/// Admin commands on a stopped scheduler's data directory.
#[derive(Debug, Subcommand)]
enum Admin {
    /// Write the state of a data directory to a backup file.
    Backup {
        /// The scheduler's data directory.
        #[arg(long)]
        data_dir: PathBuf,
        /// The backup file to write.
        #[arg(long)]
        out: PathBuf,
    },
    /// Replace the state of a data directory with a backup file (stop the scheduler first).
    Restore {
        /// The scheduler's data directory.
        #[arg(long)]
        data_dir: PathBuf,
        /// The backup file to read.
        #[arg(long)]
        from: PathBuf,
    },
}

fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    match args.command {
        Some(Admin::Backup { data_dir, out }) => {
            return admin(
                backup_data_dir(&data_dir, &out)
                    .map(|seq| format!("wrote {} (state up to transaction {seq})", out.display())),
            );
        }
        Some(Admin::Restore { data_dir, from }) => {
            return admin(restore_data_dir(&data_dir, &from).map(|seq| {
                format!(
                    "restored {} into {} (now at transaction {seq})",
                    from.display(),
                    data_dir.display()
                )
            }));
        }
        None => {}
    }
    let (Some(http_port), Some(data_dir)) = (args.http_port, args.data_dir) else {
        eprintln!(
            "aurora-scheduler: error: --http-port and --data-dir are required to serve; see --help"
        );
        return ExitCode::from(2);
    };
    if !(args.executor_overhead_cpu.is_finite() && args.executor_overhead_cpu >= 0.0) {
        eprintln!(
            "aurora-scheduler: error: --executor-overhead-cpu {} must be zero or more",
            args.executor_overhead_cpu
        );
        return ExitCode::from(2);
    }
    let config = Config {
        cluster: args.cluster,
        hostname: args.hostname.unwrap_or_else(local_hostname),
        data_dir,
        http_host: args.http_host,
        http_port,
        heartbeat_interval_ms: args.heartbeat_interval_ms,
        executor_timeout_ms: args.executor_timeout_ms,
        snapshot_interval_transactions: args.snapshot_interval_transactions,
        transient_task_state_timeout_ms: args.transient_task_state_timeout_ms,
        flapping_task_threshold_ms: args.flapping_task_threshold_ms,
        initial_flapping_penalty_ms: args.initial_flapping_penalty_ms,
        max_flapping_penalty_ms: args.max_flapping_penalty_ms,
        initial_kill_retry_ms: args.initial_kill_retry_ms,
        max_kill_retry_ms: args.max_kill_retry_ms,
        preemption_delay_ms: args.preemption_delay_ms,
        executor_overhead_cpu: args.executor_overhead_cpu,
        executor_overhead_ram_bytes: args.executor_overhead_ram_mb.saturating_mul(1024 * 1024),
        history_prune_threshold_ms: args.history_prune_threshold_ms,
        history_max_per_job: args.history_max_per_job,
        history_min_retention_ms: args.history_min_retention_ms,
    };
    match run(config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("aurora-scheduler: error: {e:#}");
            let code = match e.downcast_ref::<SchedulerError>() {
                Some(SchedulerError::Storage(_)) => 3,
                Some(SchedulerError::Bind { .. }) => 4,
                _ => 1,
            };
            ExitCode::from(code)
        }
    }
}

/// Prints the outcome of an admin command and maps it to an exit code.
fn admin(result: Result<String, aurora_scheduler::BackupError>) -> ExitCode {
    match result {
        Ok(message) => {
            println!("{message}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("aurora-scheduler: error: {e}");
            ExitCode::from(3)
        }
    }
}

fn run(config: Config) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let host = config.http_host.clone();
        let scheduler = Scheduler::start(config).await?;
        println!(
            "aurora-scheduler listening on http://{host}:{}",
            scheduler.local_addr().port()
        );
        scheduler.serve(shutdown_signal()).await?;
        Ok(())
    })
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

fn local_hostname() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .ok()
                .map(|h| h.trim().to_owned())
        })
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}
