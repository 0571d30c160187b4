//! `thermos`: run a Thermos task in the foreground.
//!
//! Exit codes: 0 the task succeeded, 1 it failed, 2 bad arguments, 3 it was killed or lost,
//! 4 the task or its config is invalid (nothing ran), 5 the runner could not be set up.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::Context;
use aurora_thermos::{
    Bindings, ProcessSpec, RunSpec, RunnerError, TaskRunner, TaskSpec, TaskState,
    TerminationSignals, bind_refs, default_task_id,
};
use clap::{Parser, Subcommand};

/// Runs Thermos tasks.
#[derive(Debug, Parser)]
#[command(name = "thermos", version)]
struct Args {
    /// Where checkpoints (and default sandboxes) go.
    #[arg(long, global = true, default_value = "/var/run/thermos")]
    root: PathBuf,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Runs a command line as a one-process task.
    Simplerun {
        /// The task's (and process's) name.
        #[arg(long, default_value = "simple")]
        name: String,
        /// The task id (default: NAME-YYYYmmdd-HHMMSS.micros).
        #[arg(long = "task_id", alias = "task-id")]
        task_id: Option<String>,
        /// The sandbox (default: ROOT/sandbox/TASK_ID).
        #[arg(long)]
        sandbox: Option<PathBuf>,
        /// A port binding NAME:PORT for {{thermos.ports[NAME]}}; repeatable.
        #[arg(short = 'P', long = "port", value_name = "NAME:PORT")]
        ports: Vec<String>,
        /// The command line (after --).
        #[arg(last = true, required = true)]
        cmdline: Vec<String>,
    },
    /// Runs a task from a JSON file: a Thermos task, or an Aurora job JSON with a `task`.
    Run {
        /// The JSON file.
        #[arg(long = "task-json", alias = "task_json")]
        task_json: PathBuf,
        /// The sandbox (default: ROOT/sandbox/TASK_ID).
        #[arg(long)]
        sandbox: Option<PathBuf>,
        /// A port binding NAME:PORT for {{thermos.ports[NAME]}}; repeatable.
        #[arg(short = 'P', long = "port", value_name = "NAME:PORT")]
        ports: Vec<String>,
        /// The task id (default: TASK_NAME-YYYYmmdd-HHMMSS.micros).
        #[arg(long = "task_id", alias = "task-id")]
        task_id: Option<String>,
    },
}

/// An error with the exit code it maps to.
struct Failure(u8, anyhow::Error);

fn main() -> ExitCode {
    // Before any thread starts, so that SIGINT/SIGTERM reach the watcher thread only.
    let signals = TerminationSignals::block();
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(args, signals.ok()) {
        Ok(state) => {
            println!("task finished: {state}");
            ExitCode::from(match state {
                TaskState::Success => 0,
                TaskState::Failed => 1,
                _ => 3,
            })
        }
        Err(Failure(code, e)) => {
            eprintln!("thermos: {e:#}");
            ExitCode::from(code)
        }
    }
}

fn invalid(e: impl Into<anyhow::Error>) -> Failure {
    Failure(4, e.into())
}

fn parse_ports(ports: &[String]) -> Result<BTreeMap<String, u16>, Failure> {
    let mut out = BTreeMap::new();
    for p in ports {
        let Some((name, port)) = p
            .split_once(':')
            .and_then(|(n, v)| Some((n, v.parse::<u16>().ok()?)))
            .filter(|(n, _)| !n.is_empty())
        else {
            return Err(Failure(
                2,
                anyhow::anyhow!("-P {p:?} is not valid: use NAME:PORT, e.g. http:8080"),
            ));
        };
        out.insert(name.to_owned(), port);
    }
    Ok(out)
}

fn run(args: Args, signals: Option<TerminationSignals>) -> Result<TaskState, Failure> {
    let user = std::env::var("USER").unwrap_or_else(|_| "nobody".to_owned());
    let (task_json, task_id, sandbox, ports) = match args.command {
        Cmd::Simplerun {
            name,
            task_id,
            sandbox,
            ports,
            cmdline,
        } => {
            let task = TaskSpec::sequential(
                name.clone(),
                vec![ProcessSpec::new(&name, cmdline.join(" "))],
            );
            let json = serde_json::to_value(task).map_err(invalid)?;
            (json, task_id, sandbox, ports)
        }
        Cmd::Run {
            task_json,
            sandbox,
            ports,
            task_id,
        } => {
            let text = std::fs::read_to_string(&task_json)
                .with_context(|| format!("cannot read --task-json {}", task_json.display()))
                .map_err(invalid)?;
            let json: serde_json::Value = serde_json::from_str(&text)
                .with_context(|| format!("{} is not JSON", task_json.display()))
                .map_err(invalid)?;
            // An Aurora job JSON carries the task under `task`.
            let json = match json.get("task") {
                Some(t) => t.clone(),
                None => json,
            };
            (json, task_id, sandbox, ports)
        }
    };
    let ports = parse_ports(&ports)?;
    let name = task_json
        .get("name")
        .and_then(|n| n.as_str())
        .unwrap_or("task")
        .to_owned();
    let task_id = task_id.unwrap_or_else(|| default_task_id(&name, SystemTime::now()));
    if task_id.is_empty() || task_id.contains('/') || task_id.starts_with('.') {
        return Err(invalid(anyhow::anyhow!(
            "--task_id {task_id:?} is not valid: it names a directory, so no '/' or leading '.'"
        )));
    }
    let bindings = Bindings {
        instance: None,
        task_id: task_id.clone(),
        user: user.clone(),
        ports: ports.clone(),
    };
    let bound = bind_refs(&task_json, &bindings).map_err(invalid)?;
    let task: TaskSpec = serde_json::from_value(bound)
        .context("the JSON is not a Thermos task")
        .map_err(invalid)?;
    let sandbox = sandbox.unwrap_or_else(|| args.root.join("sandbox").join(&task_id));
    let checkpoint = args.root.join("checkpoints").join(&task_id).join("runner");
    let handle = TaskRunner::start(RunSpec {
        task,
        task_id: task_id.clone(),
        sandbox: sandbox.clone(),
        checkpoint,
        user,
        ports,
    })
    .map_err(|e| match e {
        RunnerError::Invalid(_) => Failure(4, e.into()),
        _ => Failure(5, e.into()),
    })?;
    eprintln!("thermos: running task {task_id} in {}", sandbox.display());
    let handle = Arc::new(handle);
    if let Some(s) = signals {
        s.kill_on_signal(handle.clone(), Duration::from_secs(5));
    }
    let status = handle.wait();
    for (name, p) in &status.processes {
        println!(
            "process {name}: {} (runs {}, exit code {})",
            p.state,
            p.runs,
            p.return_code.map_or("-".to_owned(), |c| c.to_string())
        );
    }
    if let Some(m) = &status.message {
        println!("reason: {m}");
    }
    Ok(status.state)
}
