//! `aurora-executor`: runs Aurora tasks on this machine for a scheduler.
//!
//! Exit codes: 0 never (it runs until killed), 2 for bad arguments, 1 when it cannot start
//! (bad scheduler URL, unusable work directory, unreadable machine facts, an observer port that
//! cannot be bound).
//!
//! On start it takes over the tasks an earlier executor left in `--work-dir` (see the
//! "Thermos" section of ARCHITECTURE.md), so it can be restarted, even after `kill -9`, without
//! running a task twice.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use anyhow::{Context, bail};
use aurora_thermos::{Agent, AgentConfig, Observer, UserMode, local_hostname, machine_resources};
use clap::Parser;

/// Runs Aurora tasks on this machine: registers it with the scheduler, heartbeats, runs the
/// tasks it is given and reports their states.
#[derive(Debug, Parser)]
#[command(name = "aurora-executor", version)]
struct Args {
    /// The scheduler's URL, e.g. http://127.0.0.1:8081.
    #[arg(long)]
    scheduler: String,
    /// Where task sandboxes and checkpoints go.
    #[arg(long)]
    work_dir: PathBuf,
    /// The host name to register as (default: the machine's host name).
    #[arg(long)]
    hostname: Option<String>,
    /// An attribute for constraints, NAME=VALUE; repeat for more (or more values).
    #[arg(long = "attribute", value_name = "NAME=VALUE")]
    attributes: Vec<String>,
    /// CPU cores offered (default: the machine's).
    #[arg(long)]
    cpu: Option<f64>,
    /// RAM offered in MiB (default: the machine's).
    #[arg(long)]
    ram_mb: Option<u64>,
    /// Disk offered in MiB (default: the free space under the work directory).
    #[arg(long)]
    disk_mb: Option<u64>,
    /// The ports tasks may be given, BEGIN-END.
    #[arg(long, default_value = "31000-32000")]
    port_range: String,
    /// Seconds between SIGTERM and SIGKILL when a task is killed.
    #[arg(long, default_value_t = 5)]
    kill_grace_secs: u64,
    /// Run task processes as the executor's own user. By default, an executor running as root
    /// runs them as the Unix user named by the job's role (and fails tasks whose role is not a
    /// user of this machine).
    #[arg(long)]
    run_as_executor_user: bool,
    /// Serve the observer's JSON API (/j/tasks, /j/task/ID, /j/process/ID/PROCESS[/RUN],
    /// /logs/ID/PROCESS/RUN/stdout) on this port; 0 picks a free one. The address is printed on
    /// stdout as `observer listening on http://HOST:PORT`. Off by default.
    #[arg(long)]
    http_port: Option<u16>,
    /// The address the observer's API binds to. The API has no authentication and serves
    /// every task's logs: keep it on loopback unless the network in front of it is trusted.
    #[arg(long, default_value = "127.0.0.1")]
    http_host: std::net::IpAddr,
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(args) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("aurora-executor: {e:#}");
            std::process::ExitCode::from(1)
        }
    }
}

fn run(args: Args) -> anyhow::Result<()> {
    let host = match args.hostname {
        Some(h) => h,
        None => local_hostname()?,
    };
    let (begin, end) = args
        .port_range
        .split_once('-')
        .and_then(|(b, e)| Some((b.trim().parse::<u16>().ok()?, e.trim().parse::<u16>().ok()?)))
        .filter(|(b, e)| b <= e)
        .with_context(|| {
            format!(
                "--port-range {:?} is not valid: use BEGIN-END, e.g. 31000-32000",
                args.port_range
            )
        })?;
    let mut attributes: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for a in &args.attributes {
        let Some((name, value)) = a.split_once('=').filter(|(n, _)| !n.is_empty()) else {
            bail!("--attribute {a:?} is not valid: use NAME=VALUE, e.g. rack=r1");
        };
        attributes
            .entry(name.to_owned())
            .or_default()
            .insert(value.to_owned());
    }
    let mut resources =
        machine_resources(&args.work_dir, aurora_core::api::PortRange { begin, end })?;
    if let Some(cpu) = args.cpu {
        resources.cpu = cpu;
    }
    let mib = |flag: &str, n: u64| {
        n.checked_mul(1024 * 1024)
            .with_context(|| format!("{flag} {n} is too large: give a size in MiB"))
    };
    if let Some(ram) = args.ram_mb {
        resources.ram_bytes = mib("--ram-mb", ram)?;
    }
    if let Some(disk) = args.disk_mb {
        resources.disk_bytes = mib("--disk-mb", disk)?;
    }
    let tasks_dir = args.work_dir.join("tasks");
    let agent = Agent::new(AgentConfig {
        scheduler: args.scheduler,
        work_dir: args.work_dir,
        host,
        attributes,
        resources,
        kill_grace: Duration::from_secs(args.kill_grace_secs),
        user_mode: if args.run_as_executor_user {
            UserMode::Current
        } else {
            UserMode::Switch
        },
    })?;
    if let Some(port) = args.http_port {
        let observer = Observer::bind(std::net::SocketAddr::new(args.http_host, port), tasks_dir)?;
        println!("observer listening on http://{}", observer.local_addr());
        std::io::Write::flush(&mut std::io::stdout())?;
        observer.spawn()?;
    }
    agent.run(&AtomicBool::new(false));
    Ok(())
}
