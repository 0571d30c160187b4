//! `thermos`: run and inspect Thermos tasks on this machine.
//!
//! Layout under `--root` (default `/var/run/thermos`), as the original's:
//! `checkpoints/<task_id>/runner` and, unless `--sandbox` says otherwise, `sandbox/<task_id>`.
//! `status`, `tail`, `read` and `kill` also find the tasks of an `aurora-executor` whose
//! `--work-dir` is the root (`tasks/<task_id>/checkpoint`). The commands are
//! `aurora_thermos::cli`; this file parses arguments and maps outcomes to exit codes.
//!
//! Exit codes: 0 success (for `run`/`simplerun`: the task succeeded), 1 the task failed (or,
//! for the other commands, what was asked for was not found or could not be done), 2 bad
//! arguments, 3 the task was killed or lost, 4 the task or its config is invalid (nothing ran),
//! 5 the runner could not be set up (e.g. the task is already running elsewhere), 6 the user
//! to run as does not exist.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use aurora_thermos::cli::{self, CommandError, ConfigSource, GcOptions, Output, StatusOptions};
use aurora_thermos::{RunnerError, TaskState};
use clap::{Args as ClapArgs, Parser, Subcommand};

/// Runs and inspects Thermos tasks.
#[derive(Debug, Parser)]
#[command(name = "thermos", version)]
struct Args {
    /// Where checkpoints (and default sandboxes) go.
    #[arg(long, global = true, default_value = "/var/run/thermos")]
    root: PathBuf,
    #[command(subcommand)]
    command: Cmd,
}

/// What `run` and `simplerun` share.
#[derive(Debug, ClapArgs)]
struct Launch {
    /// The task id (default: NAME-YYYYmmdd-HHMMSS.micros). Running an id whose checkpoint
    /// exists carries on from it; a task that ended is never run again.
    #[arg(long = "task_id", alias = "task-id")]
    task_id: Option<String>,
    /// The sandbox (default: ROOT/sandbox/TASK_ID).
    #[arg(long)]
    sandbox: Option<PathBuf>,
    /// A port binding NAME:PORT for {{thermos.ports[NAME]}}; repeatable.
    #[arg(short = 'P', long = "port", value_name = "NAME:PORT")]
    ports: Vec<String>,
    /// A binding NAME=VALUE for {{NAME}}; repeatable.
    #[arg(short = 'E', long = "environment", value_name = "NAME=VALUE")]
    bindings: Vec<String>,
    /// Run the processes as this Unix user (needs root); default: your own user.
    #[arg(long)]
    user: Option<String>,
}

/// How a config file is found and read.
#[derive(Debug, ClapArgs)]
struct Config {
    /// The config: a JSON Thermos task, an Aurora job JSON with a `task`, or a list of either
    /// (or `{"jobs": [...]}` / `{"tasks": [...]}`).
    config: Option<PathBuf>,
    /// The same, as a flag.
    #[arg(long = "task-json", alias = "task_json", conflicts_with = "config")]
    task_json: Option<PathBuf>,
    /// Which task of the config, by name, when it holds several.
    #[arg(long)]
    task: Option<String>,
    /// The config is JSON (the only form supported; accepted for compatibility).
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Runs a command line as a one-process task.
    Simplerun {
        /// The task's (and process's) name.
        #[arg(long, default_value = "simple")]
        name: String,
        #[command(flatten)]
        launch: Launch,
        /// The command line (after --).
        #[arg(last = true, required = true)]
        cmdline: Vec<String>,
    },
    /// Runs a task from a config file in the foreground.
    Run {
        #[command(flatten)]
        config: Config,
        #[command(flatten)]
        launch: Launch,
    },
    /// Prints the task of a config, with its references bound, as JSON.
    Inspect {
        #[command(flatten)]
        config: Config,
        /// A port binding NAME:PORT; repeatable.
        #[arg(short = 'P', long = "port", value_name = "NAME:PORT")]
        ports: Vec<String>,
        /// A binding NAME=VALUE; repeatable.
        #[arg(short = 'E', long = "environment", value_name = "NAME=VALUE")]
        bindings: Vec<String>,
    },
    /// Lists the tasks under the root with their states and processes.
    Status {
        /// Only task ids matching this (a substring, or `^prefix`, `suffix$`).
        pattern: Option<String>,
        /// Only `active` or `finished` tasks.
        #[arg(long, value_parser = parse_only)]
        only: Option<cli::Only>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Kills running tasks whose ids match (see `status` for the pattern syntax).
    Kill {
        /// Task id patterns.
        #[arg(required = true)]
        patterns: Vec<String>,
        /// Seconds between SIGTERM and SIGKILL.
        #[arg(long, default_value_t = 5)]
        grace_secs: u64,
    },
    /// Prints the end of a process's log (its latest run).
    Tail {
        /// The task id.
        task_id: String,
        /// The process (default: the one that started last).
        process: Option<String>,
        /// The stderr log instead of stdout.
        #[arg(long)]
        stderr: bool,
        /// How many bytes from the end.
        #[arg(long, default_value_t = 16384)]
        bytes: u64,
    },
    /// Dumps a checkpoint file, one JSON record per line; a torn tail is reported on stderr.
    Read {
        /// The checkpoint file (or a task id under the root).
        checkpoint: String,
    },
    /// Removes the sandboxes and checkpoints of finished tasks by age, count or space (tasks of
    /// `thermos run` only; an executor removes its own).
    Gc {
        /// Remove finished tasks that ended more than this many seconds ago.
        #[arg(long = "max_age", alias = "max-age")]
        max_age: Option<u64>,
        /// Keep at most this many finished tasks (the newest).
        #[arg(long = "max_tasks", alias = "max-tasks")]
        max_tasks: Option<usize>,
        /// Remove the oldest finished tasks until their sandboxes take at most this many bytes.
        #[arg(long = "max_space", alias = "max-space")]
        max_space: Option<u64>,
        /// Keep the sandboxes; remove only checkpoints.
        #[arg(long = "keep-data")]
        keep_data: bool,
        /// Say what would be removed without removing it.
        #[arg(long)]
        dryrun: bool,
    },
}

fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let (mut stdout, mut stderr) = (std::io::stdout().lock(), std::io::stderr());
    let mut output = Output {
        out: &mut stdout,
        err: &mut stderr,
    };
    match command(args.root, args.command, &mut output) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("thermos: {e}");
            ExitCode::from(exit_code(&e))
        }
    }
}

/// Runs one command; returns the exit code of a command that did its work.
fn command(root: PathBuf, cmd: Cmd, output: &mut Output<'_>) -> Result<u8, CommandError> {
    match cmd {
        Cmd::Simplerun {
            name,
            launch,
            cmdline,
        } => {
            let task = cli::simple_task(&name, &cmdline);
            cli::run(&root, &task, launch.into(), output).map(task_exit_code)
        }
        Cmd::Run { config, launch } => {
            let task = cli::load_config(&config.into())?;
            cli::run(&root, &task, launch.into(), output).map(task_exit_code)
        }
        Cmd::Inspect {
            config,
            ports,
            bindings,
        } => cli::inspect(&config.into(), &ports, &bindings, output).map(|()| 0),
        Cmd::Status {
            pattern,
            only,
            json,
        } => {
            let options = StatusOptions {
                pattern,
                only: only.unwrap_or_default(),
                json,
            };
            cli::status(&root, &options, output).map(|()| 0)
        }
        Cmd::Kill {
            patterns,
            grace_secs,
        } => cli::kill(&root, &patterns, Duration::from_secs(grace_secs), output)
            .map(|all_ended| if all_ended { 0 } else { 1 }),
        Cmd::Tail {
            task_id,
            process,
            stderr,
            bytes,
        } => cli::tail(&root, &task_id, process.as_deref(), stderr, bytes, output).map(|()| 0),
        Cmd::Read { checkpoint } => cli::read(&root, &checkpoint, output).map(|()| 0),
        Cmd::Gc {
            max_age,
            max_tasks,
            max_space,
            keep_data,
            dryrun,
        } => {
            let options = GcOptions {
                max_age_secs: max_age,
                max_tasks,
                max_space,
                keep_data,
                dry_run: dryrun,
            };
            cli::gc(&root, &options, output).map(|()| 0)
        }
    }
}

fn parse_only(s: &str) -> Result<cli::Only, String> {
    s.parse().map_err(|e: CommandError| e.to_string())
}

/// 0 for a task that succeeded, 1 for one that failed, 3 for one killed or lost.
fn task_exit_code(state: TaskState) -> u8 {
    match state {
        TaskState::Success => 0,
        TaskState::Failed => 1,
        _ => 3,
    }
}

/// The documented exit code of an error (see the top of this file).
fn exit_code(e: &CommandError) -> u8 {
    match e {
        CommandError::Usage(_) => 2,
        CommandError::ReadConfig { .. }
        | CommandError::NotJson { .. }
        | CommandError::NoTask { .. }
        | CommandError::SeveralTasks { .. }
        | CommandError::Bind(_)
        | CommandError::Invalid(_)
        | CommandError::Runner(RunnerError::Invalid(_)) => 4,
        CommandError::Runner(RunnerError::UnknownUser { .. }) => 6,
        CommandError::Runner(_) | CommandError::Signals(_) => 5,
        _ => 1,
    }
}

impl From<Config> for ConfigSource {
    fn from(c: Config) -> ConfigSource {
        ConfigSource {
            path: c.config.or(c.task_json),
            task: c.task,
        }
    }
}

impl From<Launch> for cli::Launch {
    fn from(l: Launch) -> cli::Launch {
        cli::Launch {
            task_id: l.task_id,
            sandbox: l.sandbox,
            ports: l.ports,
            bindings: l.bindings,
            user: l.user,
        }
    }
}
