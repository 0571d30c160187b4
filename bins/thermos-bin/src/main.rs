//! `thermos`: run and inspect Thermos tasks on this machine.
//!
//! Layout under `--root` (default `/var/run/thermos`), as the original's:
//! `checkpoints/<task_id>/runner` and, unless `--sandbox` says otherwise, `sandbox/<task_id>`.
//!
//! Exit codes: 0 success (for `run`/`simplerun`: the task succeeded), 1 the task failed (or,
//! for the other commands, what was asked for was not found or could not be done), 2 bad
//! arguments, 3 the task was killed or lost, 4 the task or its config is invalid (nothing ran),
//! 5 the runner could not be set up (e.g. the task is already running elsewhere), 6 the user
//! to run as does not exist.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, anyhow};
use aurora_thermos::{
    Bindings, RunOptions, RunSpec, RunnerError, TaskRunner, TaskSpec, TaskState, TaskView,
    TerminationSignals, UserMode, bind_task, default_task_id, find_checkpoints, is_alive, log_path,
    read_checkpoint, tail_file,
};
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
        #[arg(long)]
        only: Option<String>,
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
    /// Removes the sandboxes and checkpoints of finished tasks by age, count or space.
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

/// An error with the exit code it maps to.
struct Failure(u8, anyhow::Error);

impl<E: Into<anyhow::Error>> From<E> for Failure {
    fn from(e: E) -> Failure {
        Failure(1, e.into())
    }
}

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
    let root = args.root;
    let result = match args.command {
        Cmd::Simplerun {
            name,
            launch,
            cmdline,
        } => {
            let mut p = aurora_thermos::ProcessSpec::new(&name, cmdline.join(" "));
            p.min_duration = 0;
            let task = TaskSpec::sequential(name.clone(), vec![p]);
            serde_json::to_value(task)
                .map_err(|e| Failure(4, e.into()))
                .and_then(|json| run(&root, json, launch, signals.ok()))
        }
        Cmd::Run { config, launch } => {
            load_config(&config).and_then(|json| run(&root, json, launch, signals.ok()))
        }
        Cmd::Inspect {
            config,
            ports,
            bindings,
        } => inspect(&config, &ports, &bindings),
        Cmd::Status {
            pattern,
            only,
            json,
        } => status(&root, pattern.as_deref(), only.as_deref(), json),
        Cmd::Kill {
            patterns,
            grace_secs,
        } => kill(&root, &patterns, Duration::from_secs(grace_secs)),
        Cmd::Tail {
            task_id,
            process,
            stderr,
            bytes,
        } => tail(&root, &task_id, process.as_deref(), stderr, bytes),
        Cmd::Read { checkpoint } => read(&root, &checkpoint),
        Cmd::Gc {
            max_age,
            max_tasks,
            max_space,
            keep_data,
            dryrun,
        } => gc(&root, max_age, max_tasks, max_space, keep_data, dryrun),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(Failure(code, e)) => {
            eprintln!("thermos: {e:#}");
            ExitCode::from(code)
        }
    }
}

fn invalid(e: impl Into<anyhow::Error>) -> Failure {
    Failure(4, e.into())
}

fn usage(e: anyhow::Error) -> Failure {
    Failure(2, e)
}

fn parse_pairs(items: &[String], sep: char, flag: &str) -> Result<Vec<(String, String)>, Failure> {
    items
        .iter()
        .map(|p| {
            p.split_once(sep)
                .filter(|(n, _)| !n.is_empty())
                .map(|(n, v)| (n.to_owned(), v.to_owned()))
                .ok_or_else(|| usage(anyhow!("{flag} {p:?} is not valid: use NAME{sep}VALUE")))
        })
        .collect()
}

fn parse_ports(ports: &[String]) -> Result<BTreeMap<String, u16>, Failure> {
    parse_pairs(ports, ':', "-P")?
        .into_iter()
        .map(|(n, v)| {
            let port = v.parse::<u16>().map_err(|_| {
                usage(anyhow!(
                    "-P {n}:{v} is not valid: the port must be a number from 0 to 65535"
                ))
            })?;
            Ok((n, port))
        })
        .collect()
}

/// Reads the config and selects one task from it.
fn load_config(c: &Config) -> Result<serde_json::Value, Failure> {
    let path = c
        .config
        .as_ref()
        .or(c.task_json.as_ref())
        .ok_or_else(|| usage(anyhow!("give a config file: thermos run CONFIG")))?;
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read config {}", path.display()))
        .map_err(invalid)?;
    let json: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| {
            format!(
                "{} is not JSON (only JSON configs are supported; Pystachio configs need the config engine)",
                path.display()
            )
        })
        .map_err(invalid)?;
    let mut tasks = Vec::new();
    collect_tasks(&json, &mut tasks);
    let name_of = |t: &serde_json::Value| {
        t.get("name")
            .and_then(|n| n.as_str())
            .unwrap_or("")
            .to_owned()
    };
    let chosen: Vec<serde_json::Value> = match &c.task {
        Some(want) => tasks.into_iter().filter(|t| &name_of(t) == want).collect(),
        None => tasks,
    };
    match chosen.len() {
        1 => Ok(chosen.into_iter().next().unwrap_or_default()),
        0 => Err(invalid(anyhow!(
            "{} has no task{}",
            path.display(),
            c.task
                .as_ref()
                .map(|t| format!(" named {t:?}"))
                .unwrap_or_default()
        ))),
        _ => Err(invalid(anyhow!(
            "{} has several tasks ({}); choose one with --task NAME",
            path.display(),
            chosen.iter().map(name_of).collect::<Vec<_>>().join(", ")
        ))),
    }
}

fn collect_tasks(json: &serde_json::Value, out: &mut Vec<serde_json::Value>) {
    match json {
        serde_json::Value::Array(items) => items.iter().for_each(|i| collect_tasks(i, out)),
        serde_json::Value::Object(m) => {
            if m.contains_key("processes") {
                out.push(json.clone());
            } else if let Some(t) = m.get("task") {
                let mut t = t.clone();
                // An Aurora job's task may leave its name to the job.
                if t.get("name").is_none()
                    && let (Some(obj), Some(n)) = (t.as_object_mut(), m.get("name"))
                {
                    obj.insert("name".into(), n.clone());
                }
                out.push(t);
            } else {
                for key in ["jobs", "tasks"] {
                    if let Some(v) = m.get(key) {
                        collect_tasks(v, out);
                    }
                }
            }
        }
        _ => {}
    }
}

fn bind(
    task_json: &serde_json::Value,
    task_id: &str,
    user: &str,
    ports: &BTreeMap<String, u16>,
    extra: &[(String, String)],
) -> Result<TaskSpec, Failure> {
    let bindings = Bindings {
        instance: None,
        task_id: task_id.to_owned(),
        user: user.to_owned(),
        ports: ports.clone(),
        extra: extra.iter().cloned().collect(),
    };
    // The task is bound and interpolated once, so it never runs with a ref left unbound.
    Ok(bind_task(task_json, &bindings).map_err(invalid)?.task)
}

fn own_user() -> String {
    nix::unistd::User::from_uid(nix::unistd::geteuid())
        .ok()
        .flatten()
        .map(|u| u.name)
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| "nobody".to_owned())
}

fn inspect(c: &Config, ports: &[String], bindings: &[String]) -> Result<u8, Failure> {
    let json = load_config(c)?;
    let ports = parse_ports(ports)?;
    let extra = parse_pairs(bindings, '=', "-E")?;
    let task = bind(&json, "TASK_ID", &own_user(), &ports, &extra)?;
    task.dependencies().map_err(invalid)?;
    println!(
        "{}",
        serde_json::to_string_pretty(&task).map_err(|e| Failure(1, e.into()))?
    );
    Ok(0)
}

fn checkpoint_path(root: &Path, task_id: &str) -> PathBuf {
    root.join("checkpoints").join(task_id).join("runner")
}

fn run(
    root: &Path,
    task_json: serde_json::Value,
    l: Launch,
    signals: Option<TerminationSignals>,
) -> Result<u8, Failure> {
    let ports = parse_ports(&l.ports)?;
    let extra = parse_pairs(&l.bindings, '=', "-E")?;
    let (user, user_mode) = match l.user {
        Some(u) => (u, UserMode::Switch),
        None => (own_user(), UserMode::Current),
    };
    let name = task_json
        .get("name")
        .and_then(|n| n.as_str())
        .unwrap_or("task")
        .to_owned();
    let task_id = l
        .task_id
        .unwrap_or_else(|| default_task_id(&name, SystemTime::now()));
    if task_id.is_empty() || task_id.contains('/') || task_id.starts_with('.') {
        return Err(usage(anyhow!(
            "--task_id {task_id:?} is not valid: it names a directory, so no '/' or leading '.'"
        )));
    }
    let sandbox = l
        .sandbox
        .unwrap_or_else(|| root.join("sandbox").join(&task_id));
    let options = RunOptions {
        user_mode,
        ..RunOptions::default()
    };
    let checkpoint = checkpoint_path(root, &task_id);
    // A task that has a checkpoint carries on with the task it recorded, bound when it first
    // ran, so the config is not bound again (its `-E` bindings need not be given twice).
    let started = if checkpoint.metadata().is_ok_and(|m| m.len() > 0) {
        TaskRunner::recover(&checkpoint, options)
    } else {
        let task = bind(&task_json, &task_id, &user, &ports, &extra)?;
        TaskRunner::start(RunSpec {
            task,
            task_id: task_id.clone(),
            sandbox: sandbox.clone(),
            checkpoint,
            user,
            ports,
            options,
        })
    };
    let handle = started.map_err(|e| match e {
        RunnerError::Invalid(_) => Failure(4, e.into()),
        RunnerError::UnknownUser { .. } => Failure(6, e.into()),
        _ => Failure(5, e.into()),
    })?;
    let handle = Arc::new(handle);
    if handle.status().state.is_terminal() {
        eprintln!("thermos: task {task_id} already ended; it is not run again");
    } else if handle.status().recovered {
        eprintln!("thermos: carrying on with task {task_id} from its checkpoint");
    } else {
        eprintln!("thermos: running task {task_id} in {}", sandbox.display());
    }
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
    println!("task finished: {}", status.state);
    Ok(match status.state {
        TaskState::Success => 0,
        TaskState::Failed => 1,
        _ => 3,
    })
}

/// `^prefix`, `suffix$`, `^exact$` or a substring.
fn matches(pattern: &str, id: &str) -> bool {
    match (pattern.strip_prefix('^'), pattern.strip_suffix('$')) {
        (Some(p), _) if p.ends_with('$') => id == &p[..p.len() - 1],
        (Some(p), _) => id.starts_with(p),
        (None, Some(s)) => id.ends_with(s),
        (None, None) => id.contains(pattern),
    }
}

fn tasks(root: &Path, pattern: Option<&str>) -> Vec<(String, PathBuf, Option<TaskView>)> {
    find_checkpoints(&root.join("checkpoints"), "runner")
        .into_iter()
        .filter(|(id, _)| pattern.is_none_or(|p| matches(p, id)))
        .map(|(id, path)| {
            let view = TaskView::load(&path).ok();
            (id, path, view)
        })
        .collect()
}

fn status(
    root: &Path,
    pattern: Option<&str>,
    only: Option<&str>,
    json: bool,
) -> Result<u8, Failure> {
    if let Some(o) = only
        && o != "active"
        && o != "finished"
    {
        return Err(usage(anyhow!(
            "--only {o:?} is not valid: use active or finished"
        )));
    }
    let mut out = Vec::new();
    for (id, _, view) in tasks(root, pattern) {
        let Some(v) = view else {
            if !json {
                println!("{id}: unreadable checkpoint");
            }
            continue;
        };
        let finished = v.is_terminal();
        if only == Some("active") && finished || only == Some("finished") && !finished {
            continue;
        }
        let state = v.state.map_or("UNKNOWN", |s| s.as_str());
        if json {
            let procs: serde_json::Map<String, serde_json::Value> = v
                .processes
                .iter()
                .map(|(name, h)| {
                    let last = h.runs.last();
                    (
                        name.clone(),
                        serde_json::json!({
                            "runs": h.runs.len(),
                            "state": last.map(|r| r.state.as_str()),
                            "pid": last.and_then(|r| r.pid),
                            "return_code": last.and_then(|r| r.return_code),
                        }),
                    )
                })
                .collect();
            out.push(serde_json::json!({
                "task_id": id, "state": state, "message": v.message,
                "sandbox": v.sandbox, "user": v.user, "processes": procs,
                "torn_tail": v.torn.as_ref().map(|t| t.to_string()),
            }));
            continue;
        }
        println!(
            "{id}: {state}{}",
            v.message
                .as_ref()
                .map(|m| format!(" ({m})"))
                .unwrap_or_default()
        );
        for (name, h) in &v.processes {
            if let Some(r) = h.runs.last() {
                println!(
                    "  {name}: {} run {}{}{}",
                    r.state,
                    r.run,
                    r.pid.map(|p| format!(" pid {p}")).unwrap_or_default(),
                    r.return_code
                        .map(|c| format!(" exit code {c}"))
                        .unwrap_or_default()
                );
            }
        }
        if let Some(t) = &v.torn {
            println!("  checkpoint: {t}");
        }
    }
    if json {
        println!("{}", serde_json::Value::Array(out));
    }
    Ok(0)
}

fn kill(root: &Path, patterns: &[String], grace: Duration) -> Result<u8, Failure> {
    let mut any = false;
    let mut code = 0;
    for (id, path, view) in tasks(root, None) {
        if !patterns.iter().any(|p| matches(p, &id)) {
            continue;
        }
        let Some(view) = view else { continue };
        if view.is_terminal() {
            continue;
        }
        any = true;
        let runner = view
            .runner_pid
            .filter(|&p| p != std::process::id() && is_alive(p));
        let ended = match runner {
            Some(pid) => {
                // The runner turns SIGTERM into a graceful kill of its task.
                eprintln!("thermos: asking runner {pid} of {id} to kill it");
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid as i32),
                    nix::sys::signal::Signal::SIGTERM,
                );
                let until = Instant::now() + grace + Duration::from_secs(30);
                loop {
                    let v = TaskView::load(&path).ok();
                    if let Some(s) = v.as_ref().and_then(|v| v.state).filter(|s| s.is_terminal()) {
                        break Some(s);
                    }
                    if Instant::now() >= until {
                        break None;
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
            None => match TaskRunner::recover(&path, RunOptions::default()) {
                // No runner: take the task over and kill it here.
                Ok(h) => {
                    h.kill(grace);
                    Some(h.wait().state)
                }
                Err(e) => {
                    eprintln!("thermos: cannot kill {id}: {e}");
                    None
                }
            },
        };
        match ended {
            Some(s) => println!("{id}: {s}"),
            None => {
                println!("{id}: still running");
                code = 1;
            }
        }
    }
    if !any {
        return Err(anyhow!("no running task matches {patterns:?}").into());
    }
    Ok(code)
}

fn tail(
    root: &Path,
    id: &str,
    process: Option<&str>,
    stderr: bool,
    bytes: u64,
) -> Result<u8, Failure> {
    let view = TaskView::load(&checkpoint_path(root, id))?;
    let (name, history) = match process {
        Some(p) => view
            .processes
            .get_key_value(p)
            .ok_or_else(|| anyhow!("task {id} has no process {p:?}"))?,
        None => view
            .processes
            .iter()
            .max_by_key(|(_, h)| h.runs.iter().filter_map(|r| r.start_ms).max().unwrap_or(0))
            .ok_or_else(|| anyhow!("task {id} has not started a process"))?,
    };
    let run = history
        .runs
        .iter()
        .rev()
        .find(|r| r.start_ms.is_some())
        .map_or(0, |r| r.run);
    let stream = if stderr { "stderr" } else { "stdout" };
    let path = log_path(&view.sandbox, name, run, stream);
    let text =
        tail_file(&path, bytes).with_context(|| format!("cannot read {}", path.display()))?;
    print!("{text}");
    Ok(0)
}

fn read(root: &Path, which: &str) -> Result<u8, Failure> {
    let path = if Path::new(which).is_file() {
        PathBuf::from(which)
    } else {
        checkpoint_path(root, which)
    };
    let ckpt = read_checkpoint(&path)?;
    for r in &ckpt.records {
        println!(
            "{}",
            serde_json::to_string(r).map_err(|e| Failure(1, e.into()))?
        );
    }
    if let Some(t) = &ckpt.torn {
        eprintln!("thermos: {}: torn tail: {t}", path.display());
    }
    Ok(0)
}

fn gc(
    root: &Path,
    max_age: Option<u64>,
    max_tasks: Option<usize>,
    max_space: Option<u64>,
    keep_data: bool,
    dryrun: bool,
) -> Result<u8, Failure> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    // Finished tasks, newest first.
    let mut done: Vec<(String, PathBuf, TaskView, u64)> = tasks(root, None)
        .into_iter()
        .filter_map(|(id, path, v)| {
            let v = v.filter(TaskView::is_terminal)?;
            let size = aurora_thermos::directory_size(&v.sandbox);
            Some((id, path, v, size))
        })
        .collect();
    done.sort_by_key(|(_, _, v, _)| std::cmp::Reverse(v.state_since_ms));
    let mut kept_space = 0u64;
    let mut kept = 0usize;
    for (id, path, v, size) in done {
        let too_old = max_age.is_some_and(|a| now - v.state_since_ms > (a as i64) * 1000);
        let too_many = max_tasks.is_some_and(|m| kept >= m);
        let too_big = max_space.is_some_and(|m| kept_space + size > m);
        if !(too_old || too_many || too_big) {
            kept += 1;
            kept_space += size;
            continue;
        }
        println!(
            "{}{id} ({size} bytes)",
            if dryrun { "would remove " } else { "removing " }
        );
        if dryrun {
            continue;
        }
        if !keep_data && v.sandbox.is_dir() {
            if let Err(e) = std::fs::remove_dir_all(&v.sandbox) {
                eprintln!("thermos: cannot remove {}: {e}", v.sandbox.display());
            }
        }
        if let Some(dir) = path.parent()
            && let Err(e) = std::fs::remove_dir_all(dir)
        {
            eprintln!("thermos: cannot remove {}: {e}", dir.display());
        }
    }
    Ok(0)
}
