//! `aurora`: the Aurora client. Parses arguments and prints; the commands live in
//! `aurora_client::commands`.
//!
//! Config files are `.aurora` files (Python, run in the interpreter embedded in this binary;
//! only the system's libpython is needed) or, with `-j`/`--json` or a `.json` extension, JSON
//! jobs (no Python involved).
//!
//! Exit codes: 0 success; 1 the scheduler refused the request; 2 bad arguments, an invalid or
//! unloadable config (the message names the file and line, or each invalid field), or an
//! unknown cluster; 3 the scheduler could not be reached; 4 a wait (`--wait_until`, `kill`)
//! ended without the job reaching the state; 5 a config hook (`pre_create_job`,
//! `pre_kill_job`, ...) stopped the call.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use aurora_client::Clusters;
use aurora_client::commands::{self, ConfigLoader, ConfigSource, LoadedJob, Output, WaitUntil};
use aurora_core::{InstanceSet, JobKey, JobPath};
use aurora_py::PythonLoader;
use clap::{Parser, Subcommand, ValueEnum};

mod inspect;

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

fn run_admin(clusters: &Clusters, command: AdminCommand) -> Result<Output, commands::CommandError> {
    match command {
        AdminCommand::SetQuota {
            cluster,
            role,
            cpu,
            ram,
            disk,
        } => {
            let client = commands::client_for(clusters, &cluster)?;
            commands::set_quota(&client, &role, cpu, ram, disk)
        }
        AdminCommand::HostDeactivate { cluster, hosts } => commands::maintenance(
            &commands::client_for(clusters, &cluster)?,
            Some("start"),
            hosts,
        ),
        AdminCommand::HostDrain { cluster, hosts } => commands::maintenance(
            &commands::client_for(clusters, &cluster)?,
            Some("drain"),
            hosts,
        ),
        AdminCommand::HostActivate { cluster, hosts } => commands::maintenance(
            &commands::client_for(clusters, &cluster)?,
            Some("end"),
            hosts,
        ),
        AdminCommand::HostStatus { cluster } => {
            commands::maintenance(&commands::client_for(clusters, &cluster)?, None, Vec::new())
        }
        AdminCommand::GetLocks { cluster } => {
            commands::get_locks(&commands::client_for(clusters, &cluster)?)
        }
        AdminCommand::Backup { cluster } => {
            let client = commands::client_for(clusters, &cluster)?;
            let backup = client.backup()?;
            Ok(Output {
                text: format!(
                    "Backup {} written to {} on the scheduler\n",
                    backup.name, backup.path
                ),
                json: serde_json::json!(backup),
            })
        }
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

fn submitting_user() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "unknown".to_owned())
}

/// Loads the job `key` from a config file: JSON with `-j` or a `.json` name, else `.aurora`.
fn load(
    path: &PathBuf,
    args: &SourceArgs,
    key: &JobKey,
) -> Result<LoadedJob<'static>, commands::CommandError> {
    static LOADER: PythonLoader = PythonLoader;
    let json = args.json_config || path.extension().is_some_and(|e| e == "json");
    let source = ConfigSource {
        path,
        json,
        bindings: &args.bindings,
    };
    LOADER.load(&source, key, &submitting_user())
}

/// Loads the config a command was given only for its hooks, if it was given one.
fn load_optional(
    path: Option<&PathBuf>,
    args: &SourceArgs,
    key: &JobKey,
) -> Result<Option<LoadedJob<'static>>, commands::CommandError> {
    path.map(|p| load(p, args, key)).transpose()
}

fn run(cli: Cli) -> Result<Output, commands::CommandError> {
    let mut progress = |line: &str| eprintln!("INFO] {line}");
    if let Command::Inspect {
        job_key,
        config,
        source,
        raw,
    } = &cli.command
    {
        let loaded = load(config, source, job_key)?;
        return Ok(inspect::render(&loaded, *raw));
    }
    if let Command::Validate { config, bindings } = &cli.command {
        return inspect::validate(config, bindings, &submitting_user());
    }
    let clusters = Clusters::discover()?;
    match cli.command {
        Command::Create {
            job_key,
            config,
            source,
            wait_until,
            wait_timeout_secs,
        } => {
            let loaded = load(&config, &source, &job_key)?;
            let client = commands::client_for(&clusters, job_key.cluster())?;
            let wait = match wait_until {
                WaitState::Pending => WaitUntil::Pending,
                WaitState::Running => WaitUntil::Running,
                WaitState::Finished => WaitUntil::Finished,
            };
            commands::create(
                &client,
                &loaded,
                wait,
                Duration::from_secs(wait_timeout_secs),
                &mut progress,
            )
        }
        Command::Status {
            job_key,
            config,
            source,
        } => {
            if let Some(config) = &config {
                load(config, &source, &job_key)?;
            }
            let client = commands::client_for(&clusters, job_key.cluster())?;
            commands::status(&client, &job_key)
        }
        Command::Kill {
            job_key,
            config,
            source,
            shards,
            no_wait,
            wait_timeout_secs,
        } => {
            let wait = (!no_wait).then(|| Duration::from_secs(wait_timeout_secs));
            let instances = shards.map(|s| s.iter().collect());
            let loaded = load_optional(config.as_ref(), &source, &job_key)?;
            let client = commands::client_for(&clusters, job_key.cluster())?;
            commands::kill(
                &client,
                &job_key,
                instances,
                loaded.as_ref(),
                wait,
                &mut progress,
            )
        }
        Command::Killall {
            job_key,
            config,
            source,
            no_wait,
            wait_timeout_secs,
        } => {
            let wait = (!no_wait).then(|| Duration::from_secs(wait_timeout_secs));
            let loaded = load_optional(config.as_ref(), &source, &job_key)?;
            let client = commands::client_for(&clusters, job_key.cluster())?;
            commands::kill(
                &client,
                &job_key,
                None,
                loaded.as_ref(),
                wait,
                &mut progress,
            )
        }
        Command::CancelUpdate {
            job_key,
            config,
            source,
        } => {
            let loaded = load_optional(config.as_ref(), &source, &job_key)?;
            let client = commands::client_for(&clusters, job_key.cluster())?;
            commands::cancel_update(&client, &job_key, loaded.as_ref(), &mut progress)
        }
        Command::Restart { job_key, shards } => {
            let client = commands::client_for(&clusters, job_key.cluster())?;
            commands::restart(&client, &job_key, shards.map(|s| s.iter().collect()))
        }
        Command::ListJobs { path } => {
            let client = commands::client_for(&clusters, path.cluster())?;
            commands::list_jobs(&client, &path)
        }
        Command::GetQuota { path } => {
            let Some(role) = path.role() else {
                return Err(commands::CommandError::Unsupported(format!(
                    "get_quota needs cluster/role, not {path}"
                )));
            };
            let client = commands::client_for(&clusters, path.cluster())?;
            commands::get_quota(&client, role)
        }
        Command::Admin(admin) => run_admin(&clusters, admin),
        Command::Inspect { .. } | Command::Validate { .. } => {
            Err(commands::CommandError::Unsupported(
                "inspect and validate are handled before cluster discovery".to_owned(),
            ))
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let json = cli.write_json;
    match run(cli) {
        Ok(output) => {
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&output.json).unwrap_or_default()
                );
            } else {
                print!("{}", output.text);
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(1))
        }
    }
}
