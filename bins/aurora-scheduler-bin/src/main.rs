//! `aurora-scheduler`: serves the scheduler's HTTP API with state under `--data-dir`.
//!
//! Exit codes: 0 after a clean shutdown (SIGINT/SIGTERM), 1 when the server or storage fails
//! while running, 2 for bad arguments, 3 when the storage cannot be opened or read, 4 when the
//! HTTP port cannot be bound.

use std::path::PathBuf;
use std::process::ExitCode;

use aurora_scheduler::{Config, Scheduler, SchedulerError};
use clap::Parser;

/// The Aurora scheduler.
#[derive(Debug, Parser)]
#[command(name = "aurora-scheduler", version)]
struct Args {
    /// The HTTP port to listen on; 0 picks a free one (printed on stdout).
    #[arg(long)]
    http_port: u16,
    /// The address to listen on.
    #[arg(long, default_value = "0.0.0.0")]
    http_host: String,
    /// Where the scheduler keeps its state (scheduler.db).
    #[arg(long)]
    data_dir: PathBuf,
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
    let config = Config {
        cluster: args.cluster,
        hostname: args.hostname.unwrap_or_else(local_hostname),
        data_dir: args.data_dir,
        http_host: args.http_host,
        http_port: args.http_port,
        heartbeat_interval_ms: args.heartbeat_interval_ms,
        executor_timeout_ms: args.executor_timeout_ms,
        snapshot_interval_transactions: args.snapshot_interval_transactions,
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
