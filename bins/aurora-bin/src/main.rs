//! `aurora`: the Aurora client. Parses arguments, wires in the embedded Python config loader
//! and prints; the commands and their output live in `aurora_client` (`cli::run`).
//!
//! Config files are `.aurora` files (Python, run in the interpreter embedded in this binary;
//! only the system's libpython is needed) or, with `-j`/`--json` or a `.json` extension, JSON
//! jobs (no Python involved).
//!
//! Exit codes: 0 success; 1 the scheduler refused the request; 2 bad arguments, an invalid or
//! unloadable config (the message names the file and line, or each invalid field), or an
//! unknown cluster; 3 the scheduler could not be reached; 4 a wait (`--wait_until`, `kill`)
//! ended without the job reaching the state; 5 a config hook (`pre_create_job`,
//! `pre_kill_job`, ...) stopped the call. `aurora diff` exits 1 when the configs differ, as
//! `diff` does, so a refused request exits 2 there.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use aurora_client::cli::{self, ConfigArg, MaintenanceStep, Request};
use aurora_client::commands::{self, WaitUntil};
use aurora_core::{InstanceSet, JobKey, JobPath};
use aurora_py::PythonLoader;
use clap::{Parser, Subcommand, ValueEnum};

#[derive(Parser)]
#[command(
    name = "aurora",
    version,
    about = "Create, inspect and kill Aurora jobs"
)]
struct Cli {
    /// Print machine-readable JSON instead of text.
    #[arg(long = "write-json", global = true)]
    write_json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
#[value(rename_all = "UPPER")]
enum WaitState {
    Pending,
    Running,
    Finished,
}

/// How to read a config file: the `-E` bindings and whether it is JSON.
#[derive(clap::Args)]
struct SourceArgs {
    /// Bind a template variable: NAME=VALUE (repeatable).
    #[arg(short = 'E', value_parser = parse_binding)]
    bindings: Vec<(String, String)>,
    /// The config file is JSON (the Job schema), not an .aurora file.
    #[arg(short = 'j', long = "json", visible_alias = "read-json")]
    json_config: bool,
}

#[derive(Subcommand)]
enum Command {
    /// Create a job from a config file and start its tasks.
    Create {
        /// The job key, cluster/role/environment/name.
        job_key: JobKey,
        /// The config file.
        config: PathBuf,
        #[command(flatten)]
        source: SourceArgs,
        /// Block until every task reaches this state.
        #[arg(
            long = "wait_until",
            visible_alias = "wait-until",
            value_enum,
            default_value = "PENDING"
        )]
        wait_until: WaitState,
        /// How long to wait, in seconds.
        #[arg(long, default_value_t = 300)]
        wait_timeout_secs: u64,
    },
    /// Show the tasks of a job, active then inactive, with their history.
    Status {
        /// The job key.
        job_key: JobKey,
        /// A config file (optional; checked to define the job).
        config: Option<PathBuf>,
        #[command(flatten)]
        source: SourceArgs,
    },
    /// Load, validate and convert every job of a config; print one line per job.
    Validate {
        /// The config file.
        config: PathBuf,
        /// Bind a template variable: NAME=VALUE (repeatable).
        #[arg(short = 'E', value_parser = parse_binding)]
        bindings: Vec<(String, String)>,
    },
    /// Print the job a config defines, as the scheduler would get it: readable by default,
    /// the fully interpolated job as JSON with --write-json, the scheduler-side job
    /// configuration with --raw.
    Inspect {
        /// The job key.
        job_key: JobKey,
        /// The config file.
        config: PathBuf,
        #[command(flatten)]
        source: SourceArgs,
        /// Print the scheduler-side job configuration (JSON).
        #[arg(long)]
        raw: bool,
    },
    /// Kill some instances of a job (all when --shards is absent).
    Kill {
        /// The job key.
        job_key: JobKey,
        /// A config file, only needed for its hooks.
        config: Option<PathBuf>,
        #[command(flatten)]
        source: SourceArgs,
        /// Instances to kill, e.g. 0-2,5,7-9.
        #[arg(long, visible_alias = "instances")]
        shards: Option<InstanceSet>,
        /// Return without waiting for the tasks to end.
        #[arg(long)]
        no_wait: bool,
        /// How long to wait for the tasks to end, in seconds.
        #[arg(long, default_value_t = 120)]
        wait_timeout_secs: u64,
    },
    /// Kill every instance of a job.
    Killall {
        /// The job key.
        job_key: JobKey,
        /// A config file, only needed for its hooks.
        config: Option<PathBuf>,
        #[command(flatten)]
        source: SourceArgs,
        /// Return without waiting for the tasks to end.
        #[arg(long)]
        no_wait: bool,
        /// How long to wait for the tasks to end, in seconds.
        #[arg(long, default_value_t = 120)]
        wait_timeout_secs: u64,
    },
    /// Restart running instances of a job (all when --shards is absent): they are killed and
    /// scheduled again.
    Restart {
        /// The job key.
        job_key: JobKey,
        /// Instances to restart, e.g. 0-2,5.
        #[arg(long, visible_alias = "instances")]
        shards: Option<InstanceSet>,
    },
    /// Release a job's lock whoever holds it, stopping the update that holds it.
    #[command(name = "cancel_update", visible_alias = "cancel-update")]
    CancelUpdate {
        /// The job key.
        job_key: JobKey,
        /// A config file, only needed for its hooks.
        config: Option<PathBuf>,
        #[command(flatten)]
        source: SourceArgs,
    },
    /// Show what an update would change: the running instances, grouped by config, against
    /// the local config, through $DIFF_VIEWER (default `diff`). Exits 1 when they differ.
    Diff {
        /// The job key the config defines.
        job_key: JobKey,
        /// The config file.
        config: PathBuf,
        #[command(flatten)]
        source: SourceArgs,
        /// Compare with the running job at this key instead (the old key of a renamed job).
        #[arg(long)]
        from: Option<JobKey>,
    },
    /// List the jobs under cluster/role (or cluster/role/env), with their task counts.
    #[command(name = "list_jobs", visible_alias = "list-jobs")]
    ListJobs {
        /// cluster/role, cluster/role/env or a full job key.
        path: JobPath,
    },
    /// Show a role's production quota and what its tasks consume.
    #[command(name = "get_quota", visible_alias = "get-quota")]
    GetQuota {
        /// cluster/role.
        path: JobPath,
    },
    /// Administration: quota, host maintenance, locks, backups.
    #[command(subcommand)]
    Admin(AdminCommand),
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Set a role's production quota, e.g. `set_quota local www-data 4 8G 20G`.
    #[command(name = "set_quota", visible_alias = "set-quota")]
    SetQuota {
        /// The cluster.
        cluster: String,
        /// The role.
        role: String,
        /// CPU cores.
        cpu: f64,
        /// RAM, with an optional K/M/G/T unit.
        #[arg(value_parser = commands::parse_size)]
        ram: i64,
        /// Disk, with an optional K/M/G/T unit.
        #[arg(value_parser = commands::parse_size)]
        disk: i64,
    },
    /// Announce maintenance on hosts (they keep their tasks).
    #[command(name = "host_deactivate", visible_alias = "host-deactivate")]
    HostDeactivate {
        /// The cluster.
        cluster: String,
        /// Host names.
        #[arg(required = true)]
        hosts: Vec<String>,
    },
    /// Drain hosts: move their tasks elsewhere and take no new ones.
    #[command(name = "host_drain", visible_alias = "host-drain")]
    HostDrain {
        /// The cluster.
        cluster: String,
        /// Host names.
        #[arg(required = true)]
        hosts: Vec<String>,
    },
    /// Put hosts back in service.
    #[command(name = "host_activate", visible_alias = "host-activate")]
    HostActivate {
        /// The cluster.
        cluster: String,
        /// Host names.
        #[arg(required = true)]
        hosts: Vec<String>,
    },
    /// Show the hosts in maintenance.
    #[command(name = "host_status", visible_alias = "host-status")]
    HostStatus {
        /// The cluster.
        cluster: String,
    },
    /// List the job locks the scheduler holds (one per update in progress).
    #[command(name = "get_locks", visible_alias = "get-locks")]
    GetLocks {
        /// The cluster.
        cluster: String,
    },
    /// Write a backup of the scheduler's state (on the scheduler's machine).
    #[command(name = "scheduler_backup_now", visible_alias = "backup")]
    Backup {
        /// The cluster.
        cluster: String,
    },
}

impl SourceArgs {
    fn config(self, path: PathBuf) -> ConfigArg {
        ConfigArg {
            path,
            bindings: self.bindings,
            json: self.json_config,
        }
    }
}

impl WaitState {
    fn wait_until(self) -> WaitUntil {
        match self {
            WaitState::Pending => WaitUntil::Pending,
            WaitState::Running => WaitUntil::Running,
            WaitState::Finished => WaitUntil::Finished,
        }
    }
}

/// The library request a command line asks for.
fn request(command: Command) -> Request {
    let wait = |no_wait: bool, secs: u64| (!no_wait).then(|| Duration::from_secs(secs));
    let instances = |shards: Option<InstanceSet>| shards.map(|s| s.iter().collect());
    match command {
        Command::Create {
            job_key,
            config,
            source,
            wait_until,
            wait_timeout_secs,
        } => Request::Create {
            job_key,
            config: source.config(config),
            wait_until: wait_until.wait_until(),
            wait_timeout: Duration::from_secs(wait_timeout_secs),
        },
        Command::Status {
            job_key,
            config,
            source,
        } => Request::Status {
            job_key,
            config: config.map(|c| source.config(c)),
        },
        Command::Validate { config, bindings } => Request::Validate {
            config: ConfigArg {
                path: config,
                bindings,
                json: false,
            },
        },
        Command::Inspect {
            job_key,
            config,
            source,
            raw,
        } => Request::Inspect {
            job_key,
            config: source.config(config),
            raw,
        },
        Command::Kill {
            job_key,
            config,
            source,
            shards,
            no_wait,
            wait_timeout_secs,
        } => Request::Kill {
            job_key,
            config: config.map(|c| source.config(c)),
            instances: instances(shards),
            wait_timeout: wait(no_wait, wait_timeout_secs),
        },
        Command::Killall {
            job_key,
            config,
            source,
            no_wait,
            wait_timeout_secs,
        } => Request::Kill {
            job_key,
            config: config.map(|c| source.config(c)),
            instances: None,
            wait_timeout: wait(no_wait, wait_timeout_secs),
        },
        Command::Restart { job_key, shards } => Request::Restart {
            job_key,
            instances: instances(shards),
        },
        Command::CancelUpdate {
            job_key,
            config,
            source,
        } => Request::CancelUpdate {
            job_key,
            config: config.map(|c| source.config(c)),
        },
        Command::Diff {
            job_key,
            config,
            source,
            from,
        } => Request::Diff {
            job_key,
            config: source.config(config),
            from,
            viewer: std::env::var("DIFF_VIEWER")
                .ok()
                .filter(|v| !v.trim().is_empty())
                .unwrap_or_else(|| aurora_client::diff::DEFAULT_VIEWER.to_owned()),
        },
        Command::ListJobs { path } => Request::ListJobs { path },
        Command::GetQuota { path } => Request::GetQuota { path },
        Command::Admin(admin) => admin_request(admin),
    }
}

fn admin_request(command: AdminCommand) -> Request {
    let step = |cluster, step, hosts| Request::Maintenance {
        cluster,
        step,
        hosts,
    };
    match command {
        AdminCommand::SetQuota {
            cluster,
            role,
            cpu,
            ram,
            disk,
        } => Request::SetQuota {
            cluster,
            role,
            cpu,
            ram_bytes: ram,
            disk_bytes: disk,
        },
        AdminCommand::HostDeactivate { cluster, hosts } => {
            step(cluster, Some(MaintenanceStep::Start), hosts)
        }
        AdminCommand::HostDrain { cluster, hosts } => {
            step(cluster, Some(MaintenanceStep::Drain), hosts)
        }
        AdminCommand::HostActivate { cluster, hosts } => {
            step(cluster, Some(MaintenanceStep::End), hosts)
        }
        AdminCommand::HostStatus { cluster } => step(cluster, None, Vec::new()),
        AdminCommand::GetLocks { cluster } => Request::GetLocks { cluster },
        AdminCommand::Backup { cluster } => Request::Backup { cluster },
    }
}

fn parse_binding(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((name, value)) if !name.is_empty() && !value.contains('=') => {
            Ok((name.to_owned(), value.to_owned()))
        }
        _ => Err(format!("binding {s:?} must look like NAME=VALUE")),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Progress goes to stderr so that stdout stays the command's answer (e.g. JSON).
    let mut log = |line: &str| eprintln!("INFO] {line}");
    let request = request(cli.command);
    let is_diff = matches!(request, Request::Diff { .. });
    match cli::run(request, &PythonLoader, &mut log) {
        Ok(output) => {
            print!("{}", output.printable(cli.write_json));
            if is_diff {
                // Like `diff`: 1 when the configs differ.
                ExitCode::from(aurora_client::diff::exit_code(&output))
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(e) => {
            eprintln!("error: {e}");
            let code = if is_diff {
                aurora_client::diff::error_exit_code(&e)
            } else {
                e.exit_code()
            };
            ExitCode::from(u8::try_from(code).unwrap_or(1))
        }
    }
}
