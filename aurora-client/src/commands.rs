//! The client commands (`create`, `status`, `kill`, ...) as library calls, so that the `aurora`
//! binary only parses arguments and prints. Each command returns text for people and a JSON
//! value for `--json`.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use aurora_config::job_json::{ConvertedJob, JobJson, JobJsonError};
use aurora_config::pystachio::Value as ConfigValue;
use aurora_config::schema::{self, ConfigProblem, EvaluatedJob, JobError, JobSelector};
use aurora_core::{JobKey, JobPath, ScheduleStatus, ScheduledTask};
use serde_json::{Map, Value, json};

use crate::hooks::{ClientHook, HookCall, HookedCall, HookedError, HookedMethod};
use crate::render::{self, first_event_ms, format_ms, summarize};
use crate::{ClientError, ClusterError, Clusters, SchedulerClient};

/// Why a command failed; [`CommandError::exit_code`] maps it to the documented exit codes.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CommandError {
    /// The job config could not be read or is invalid.
    #[error(transparent)]
    Config(#[from] JobJsonError),
    /// The config file could not be read.
    #[error("cannot read config file {path}: {source}")]
    ReadConfig {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The config is not of a kind this client can load yet.
    #[error("{0}")]
    Unsupported(String),
    /// The command line asks for something the command cannot do, e.g. `get_quota` of a
    /// path without a role.
    #[error("{0}")]
    Usage(String),
    /// A job in a config does not name a valid job key (for `validate`).
    #[error("{path}: a job has no valid key ({key}): {source}")]
    InvalidJobKey {
        /// The config file.
        path: String,
        /// The key the job's fields make, `cluster/role/environment/name`.
        key: String,
        /// What is wrong with it.
        source: aurora_core::JobKeyError,
    },
    /// The config's job does not match the job key given.
    #[error("the job in {path} is {found}, not {wanted}; pass the job key the config defines")]
    KeyMismatch {
        /// The config file.
        path: String,
        /// The key in the config.
        found: Box<JobKey>,
        /// The key on the command line.
        wanted: Box<JobKey>,
    },
    /// The cluster could not be found.
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    /// The scheduler refused or could not be reached.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// Waiting for a state ended without reaching it.
    #[error("{0}")]
    WaitFailed(String),
    /// A config loader (e.g. the Python one) failed; the message names the file and line.
    #[error("{0}")]
    Load(String),
    /// A pre hook stopped the call.
    #[error("{0}")]
    HookStopped(String),
    /// Selecting the job or applying `-E` bindings failed.
    #[error("{path}: {source}")]
    Job {
        /// The config file.
        path: String,
        /// What failed.
        source: JobError,
    },
    /// The selected job does not validate; every problem is listed with its path.
    #[error("{path}: invalid job config:\n  {}", display_problems(.problems))]
    Invalid {
        /// The config file.
        path: String,
        /// Each problem, with its path in the job (`task.resources.ram`).
        problems: Vec<ConfigProblem>,
    },
}

fn display_problems(problems: &[ConfigProblem]) -> String {
    problems
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n  ")
}

impl CommandError {
    /// The process exit code for this error: 2 for bad input (arguments, config, cluster
    /// name), 3 when the scheduler cannot be reached, 1 when the scheduler refused, 4 when a
    /// wait ended without the job reaching the state, 5 when a pre hook stopped the call.
    pub fn exit_code(&self) -> i32 {
        match self {
            CommandError::Config(_)
            | CommandError::ReadConfig { .. }
            | CommandError::Unsupported(_)
            | CommandError::Usage(_)
            | CommandError::InvalidJobKey { .. }
            | CommandError::KeyMismatch { .. }
            | CommandError::Load(_)
            | CommandError::Job { .. }
            | CommandError::Invalid { .. }
            | CommandError::Cluster(_) => 2,
            CommandError::Client(ClientError::Transport { .. }) => 3,
            CommandError::Client(_) => 1,
            CommandError::WaitFailed(_) => 4,
            CommandError::HookStopped(_) => 5,
        }
    }
}

pub use crate::render::Output;

/// A job config file and how to read it.
#[derive(Debug, Clone)]
pub struct ConfigSource<'a> {
    /// The file.
    pub path: &'a Path,
    /// Whether it is JSON (`-j`) rather than an `.aurora` file.
    pub json: bool,
    /// `-E NAME=VALUE` bindings.
    pub bindings: &'a [(String, String)],
}

/// A job read from a config file, ready for the scheduler.
pub struct LoadedJob<'h> {
    /// The job converted for the scheduler.
    pub converted: ConvertedJob,
    /// The job in its `raw_json` form, which hooks receive as the config.
    pub raw: Value,
    /// The config's hooks, when it enables them (`enable_hooks = True`); empty otherwise.
    pub hooks: Vec<Box<dyn ClientHook + 'h>>,
}

impl std::fmt::Debug for LoadedJob<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedJob")
            .field("converted", &self.converted)
            .field("hooks", &self.hooks.len())
            .finish()
    }
}

/// Something that turns a config file into a job: JSON configs here ([`JsonLoader`]),
/// `.aurora` files in `aurora-py`.
pub trait ConfigLoader {
    /// Loads the job `key` from `source`, applying its bindings; `user` is the submitter.
    fn load<'s>(
        &'s self,
        source: &ConfigSource<'_>,
        key: &JobKey,
        user: &str,
    ) -> Result<LoadedJob<'s>, CommandError>;

    /// Every job a config file defines, unbound and unevaluated (for `aurora validate`).
    fn load_jobs(&self, source: &ConfigSource<'_>) -> Result<Vec<ConfigValue>, CommandError> {
        read_json_job(source).map(|job| vec![job])
    }
}

/// Reads a JSON config: one job in the Job schema, with defaults filled in.
fn read_json_job(source: &ConfigSource<'_>) -> Result<ConfigValue, CommandError> {
    let name = source.path.display().to_string();
    let text = std::fs::read_to_string(source.path).map_err(|e| CommandError::ReadConfig {
        path: name.clone(),
        source: e,
    })?;
    schema::load_job_json(&text).map_err(|e| {
        CommandError::Config(JobJsonError::Parse {
            source_name: name,
            message: e.to_string(),
        })
    })
}

/// Loads JSON job configs (`-j`): the Job schema as JSON, with defaults filled in.
#[derive(Debug, Clone, Copy, Default)]
pub struct JsonLoader;

impl ConfigLoader for JsonLoader {
    fn load<'s>(
        &'s self,
        source: &ConfigSource<'_>,
        key: &JobKey,
        user: &str,
    ) -> Result<LoadedJob<'s>, CommandError> {
        let job = read_json_job(source)?;
        // A JSON config holds one job: it is taken whatever its name, then checked against
        // the key (as the original's `Job.json_load` did).
        let evaluated = evaluate_selected(&[job], source, key, user, false)?;
        Ok(LoadedJob {
            converted: evaluated.converted,
            raw: evaluated.evaluated.raw_json,
            hooks: Vec::new(),
        })
    }
}

/// A job picked from a config and evaluated: the engine value (bound), its evaluation and
/// its conversion for the scheduler.
#[derive(Debug, Clone)]
pub struct EvaluatedConfig {
    /// The selected job with the `-E` bindings applied.
    pub job: ConfigValue,
    /// The validated, interpolated job (`raw_json`, executor payload, ports).
    pub evaluated: EvaluatedJob,
    /// The scheduler-side job configuration.
    pub converted: ConvertedJob,
}

/// Picks the job `key` among a config's jobs and evaluates it as `aurora create` does: `-E`
/// bindings on every job, selection by cluster/role/environment/name, validation (every
/// problem reported), interpolation and conversion. Both loaders (JSON and `.aurora`) end
/// here.
///
/// ```
/// use aurora_client::commands::{ConfigSource, evaluate_config};
/// let job = aurora_config::schema::load_job_json(r#"{"name": "hello", "role": "www-data",
///   "cluster": "devcluster", "environment": "prod", "task": {"processes": [{"name": "hello",
///   "cmdline": "echo {{greeting}}"}], "resources": {"cpu": 1.0, "ram": 134217728,
///   "disk": 134217728}}}"#).unwrap();
/// let bindings = [("greeting".to_owned(), "hi".to_owned())];
/// let source = ConfigSource { path: "hello.json".as_ref(), json: true, bindings: &bindings };
/// let key = "devcluster/www-data/prod/hello".parse().unwrap();
/// let ev = evaluate_config(&[job], &source, &key, "vagrant").unwrap();
/// assert_eq!(ev.evaluated.raw_json["task"]["processes"][0]["cmdline"], "echo hi");
/// ```
pub fn evaluate_config(
    jobs: &[ConfigValue],
    source: &ConfigSource<'_>,
    key: &JobKey,
    user: &str,
) -> Result<EvaluatedConfig, CommandError> {
    evaluate_selected(jobs, source, key, user, true)
}

fn evaluate_selected(
    jobs: &[ConfigValue],
    source: &ConfigSource<'_>,
    key: &JobKey,
    user: &str,
    by_key: bool,
) -> Result<EvaluatedConfig, CommandError> {
    let name = source.path.display().to_string();
    let job_err = |e: JobError| CommandError::Job {
        path: name.clone(),
        source: e,
    };
    let mut bindings = Vec::with_capacity(source.bindings.len());
    for (n, v) in source.bindings {
        bindings.push(schema::parse_binding(&format!("{n}={v}")).map_err(job_err)?);
    }
    let bound = schema::bind_all(jobs, &bindings).map_err(job_err)?;
    let selector = if by_key {
        JobSelector {
            name: Some(key.name().to_owned()),
            cluster: Some(key.cluster().to_owned()),
            role: Some(key.role().to_owned()),
            environment: Some(key.environment().to_owned()),
        }
    } else {
        JobSelector::default()
    };
    let job = schema::select_job(&bound, &selector).map_err(job_err)?;
    let evaluated = schema::evaluate_job(&job).map_err(|problems| CommandError::Invalid {
        path: name.clone(),
        problems,
    })?;
    let converted = JobJson::from_value(evaluated.raw_json.clone(), &name)?
        .to_job_configuration(user, &name)?;
    check_key(&name, &converted, key)?;
    Ok(EvaluatedConfig {
        job,
        evaluated,
        converted,
    })
}

/// Checks that the loaded job is the one the command line named.
pub fn check_key(path: &str, converted: &ConvertedJob, key: &JobKey) -> Result<(), CommandError> {
    if converted.job.key != *key {
        return Err(CommandError::KeyMismatch {
            path: path.to_owned(),
            found: Box::new(converted.job.key.clone()),
            wanted: Box::new(key.clone()),
        });
    }
    Ok(())
}

/// `aurora inspect`: the job `key` of a config, for people or (`raw`) as the scheduler
/// would get it.
pub fn inspect(
    loader: &dyn ConfigLoader,
    source: &ConfigSource<'_>,
    key: &JobKey,
    user: &str,
    raw: bool,
) -> Result<Output, CommandError> {
    let loaded = loader.load(source, key, user)?;
    Ok(render::inspect(&loaded.raw, &loaded.converted.job, raw))
}

/// `aurora validate`: evaluates every job a config defines (bindings, validation,
/// conversion), each selected by its own key; fails with the first invalid job.
pub fn validate(
    loader: &dyn ConfigLoader,
    source: &ConfigSource<'_>,
    user: &str,
) -> Result<Output, CommandError> {
    let jobs = loader.load_jobs(source)?;
    let mut valid = Vec::with_capacity(jobs.len());
    for job in &jobs {
        let key = config_job_key(job).map_err(|(key, e)| CommandError::InvalidJobKey {
            path: source.path.display().to_string(),
            key,
            source: e,
        })?;
        let ev = evaluate_config(std::slice::from_ref(job), source, &key, user)?;
        valid.push((key, ev.converted.job.instance_count));
    }
    Ok(render::validated(&valid))
}

/// The cluster/role/environment/name a config job names, before any binding.
fn config_job_key(job: &ConfigValue) -> Result<JobKey, (String, aurora_core::JobKeyError)> {
    let field = |name: &str| -> String {
        job.field(name)
            .ok()
            .flatten()
            .and_then(|v| v.py_str().ok())
            .unwrap_or_default()
    };
    let key = [
        field("cluster"),
        field("role"),
        field("environment"),
        field("name"),
    ]
    .join("/");
    key.parse().map_err(|e| (key, e))
}

/// The scheduler client for the cluster of `key`.
pub fn client_for(clusters: &Clusters, cluster: &str) -> Result<SchedulerClient, CommandError> {
    let url = clusters.get(cluster)?.scheduler_url()?;
    Ok(SchedulerClient::new(&url)?)
}

/// The state `aurora create --wait_until` waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitUntil {
    /// Return once the tasks exist (they start PENDING).
    Pending,
    /// Wait until every instance is RUNNING.
    Running,
    /// Wait until every task has ended.
    Finished,
}

/// `aurora create`: runs the config's hooks around submitting the job, then optionally waits.
pub fn create(
    client: &SchedulerClient,
    loaded: &LoadedJob<'_>,
    wait: WaitUntil,
    timeout: Duration,
    progress: &mut dyn FnMut(&str),
) -> Result<Output, CommandError> {
    let converted = &loaded.converted;
    for warning in &converted.warnings {
        progress(&format!("warning: {warning}"));
    }
    let key = &converted.job.key;
    progress(&format!("Creating job {}", key.name()));
    let call = HookCall {
        method: HookedMethod::CreateJob,
        job_key: key.clone(),
        config: Some(loaded.raw.clone()),
        args: vec![loaded.raw.clone(), Value::Null],
        kwargs: Map::new(),
    };
    let response = HookedCall::new(&loaded.hooks, call)
        .run(|| client.create_job(&converted.job).map(|r| json!(r)))
        .map_err(hooked_error)?;
    let message = response["message"].as_str().unwrap_or_default().to_owned();
    let mut text = format!(
        "Response from scheduler: OK (message: {message})\nJob url: {}\n",
        client.job_url(key)
    );
    if wait != WaitUntil::Pending {
        let tasks = wait_for(client, key, wait, timeout, progress)?;
        text.push_str(&format!(
            "All {} instance(s) reached {}\n",
            tasks.len(),
            match wait {
                WaitUntil::Running => "RUNNING",
                _ => "a terminal state",
            }
        ));
    }
    let json = json!({
        "job": key.to_string(),
        "message": message,
        "task_ids": response["task_ids"],
        "url": client.job_url(key),
    });
    Ok(Output { text, json })
}

fn hooked_error(e: HookedError<ClientError>) -> CommandError {
    match e {
        HookedError::Call(e) => CommandError::Client(e),
        stopped @ HookedError::Stopped { .. } => CommandError::HookStopped(stopped.to_string()),
    }
}

/// Polls a job until every instance is in the wanted state; fails early when a batch job's
/// task fails, or at `timeout`.
pub fn wait_for(
    client: &SchedulerClient,
    key: &JobKey,
    wait: WaitUntil,
    timeout: Duration,
    progress: &mut dyn FnMut(&str),
) -> Result<Vec<ScheduledTask>, CommandError> {
    let deadline = Instant::now() + timeout;
    let mut last = String::new();
    loop {
        let tasks = latest_per_instance(client.job_tasks(key, &[])?.tasks);
        let summary = summarize(&tasks);
        if summary != last {
            progress(&format!("{key}: {summary}"));
            last = summary;
        }
        let done = !tasks.is_empty()
            && tasks.iter().all(|t| match wait {
                WaitUntil::Pending => true,
                WaitUntil::Running => t.status == ScheduleStatus::Running,
                WaitUntil::Finished => t.status.is_terminal(),
            });
        if done {
            return Ok(tasks);
        }
        if wait == WaitUntil::Running {
            if let Some(t) = tasks.iter().find(|t| t.status.is_terminal()) {
                return Err(CommandError::WaitFailed(format!(
                    "instance {} ended {} before all instances were RUNNING{}",
                    t.instance(),
                    t.status,
                    last_message(t)
                        .map(|m| format!(": {m}"))
                        .unwrap_or_default()
                )));
            }
        }
        if Instant::now() >= deadline {
            return Err(CommandError::WaitFailed(format!(
                "timed out after {}s waiting for {key}; now {last}",
                timeout.as_secs()
            )));
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// The newest task of each instance, by instance.
fn latest_per_instance(mut tasks: Vec<ScheduledTask>) -> Vec<ScheduledTask> {
    tasks.sort_by_key(|t| (t.instance(), first_event_ms(t)));
    let mut out: Vec<ScheduledTask> = Vec::new();
    for task in tasks {
        match out.last_mut() {
            Some(last) if last.instance() == task.instance() => {
                // Prefer the active task; among equals, the newest.
                if task.status.is_active() || !last.status.is_active() {
                    *last = task;
                }
            }
            _ => out.push(task),
        }
    }
    out
}

fn last_message(task: &ScheduledTask) -> Option<&str> {
    task.task_events.last().and_then(|e| e.message.as_deref())
}

/// `aurora kill` / `killall`: kills the job's tasks (or some instances), with the hooks of
/// the config given on the command line, if any.
pub fn kill(
    client: &SchedulerClient,
    key: &JobKey,
    instances: Option<BTreeSet<u32>>,
    config: Option<&LoadedJob<'_>>,
    wait_timeout: Option<Duration>,
    progress: &mut dyn FnMut(&str),
) -> Result<Output, CommandError> {
    progress(&format!("Killing tasks for job: {key}"));
    let mut kwargs = Map::new();
    kwargs.insert("instances".into(), json!(instances));
    kwargs.insert("lock".into(), Value::Null);
    kwargs.insert(
        "config".into(),
        config.map(|c| c.raw.clone()).unwrap_or(Value::Null),
    );
    let call = HookCall {
        method: HookedMethod::KillJob,
        job_key: key.clone(),
        config: config.map(|c| c.raw.clone()),
        args: vec![json!(key.to_string())],
        kwargs,
    };
    let no_hooks = Vec::new();
    let hooks = config.map(|c| &c.hooks).unwrap_or(&no_hooks);
    let response = HookedCall::new(hooks, call)
        .run(|| client.kill_job(key, instances.clone()).map(|r| json!(r)))
        .map_err(hooked_error)?;
    let response: aurora_core::api::KillResponse =
        serde_json::from_value(response).map_err(|e| {
            CommandError::Client(ClientError::Decode {
                what: "kill".into(),
                message: e.to_string(),
            })
        })?;
    let mut text = format!(
        "Response from scheduler: OK (message: {})\nJob url: {}\n",
        response.message,
        client.job_url(key)
    );
    if let Some(timeout) = wait_timeout {
        let deadline = Instant::now() + timeout;
        let killed: BTreeSet<_> = response.killed.iter().cloned().collect();
        loop {
            let tasks = client.job_tasks(key, &[])?.tasks;
            let pending: Vec<_> = tasks
                .iter()
                .filter(|t| killed.contains(t.id()) && !t.status.is_terminal())
                .collect();
            if pending.is_empty() {
                break;
            }
            if Instant::now() >= deadline {
                return Err(CommandError::WaitFailed(format!(
                    "{} task(s) of {key} still not dead after {}s",
                    pending.len(),
                    timeout.as_secs()
                )));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        text.push_str("All killed tasks have ended.\n");
    }
    let json =
        json!({"job": key.to_string(), "message": response.message, "killed": response.killed});
    Ok(Output { text, json })
}

/// `aurora cancel_update`: releases the job's lock whoever holds it (the original's
/// `releaseLock(Lock(key=job), UNCHECKED)`), so that the update holding it stops and others
/// may change the job; runs the config's `cancel_update` hooks when a config is given.
pub fn cancel_update(
    client: &SchedulerClient,
    key: &JobKey,
    config: Option<&LoadedJob<'_>>,
    progress: &mut dyn FnMut(&str),
) -> Result<Output, CommandError> {
    progress(&format!("Cancelling update for job: {key}"));
    let raw = config.map(|c| c.raw.clone());
    let mut kwargs = Map::new();
    kwargs.insert("config".into(), raw.clone().unwrap_or(Value::Null));
    let call = HookCall {
        method: HookedMethod::CancelUpdate,
        job_key: key.clone(),
        config: raw,
        args: vec![json!(key.to_string())],
        kwargs,
    };
    let no_hooks = Vec::new();
    let hooks = config.map(|c| &c.hooks).unwrap_or(&no_hooks);
    let response = HookedCall::new(hooks, call)
        .run(|| {
            match client.release_lock(key, None, aurora_core::api::LockValidation::Unchecked) {
                Ok(lock) => Ok(json!(lock)),
                // As in the original, cancelling when no update holds the job is not an error:
                // scripts run it to make sure nothing is in progress.
                Err(ClientError::Api {
                    status: 404,
                    message,
                    ..
                }) => Ok(json!({ "none": message })),
                Err(e) => Err(e),
            }
        })
        .map_err(hooked_error)?;
    if let Some(message) = response.get("none").and_then(Value::as_str) {
        return Ok(Output {
            text: format!(
                "Response from scheduler: OK (message: no update in progress: {message})\nJob url: {}\n",
                client.job_url(key)
            ),
            json: json!({"job": key.to_string(), "released": Value::Null, "message": message}),
        });
    }
    let lock: aurora_core::api::Lock = serde_json::from_value(response).map_err(|e| {
        CommandError::Client(ClientError::Decode {
            what: "cancel_update".into(),
            message: e.to_string(),
        })
    })?;
    let text = format!(
        "Response from scheduler: OK (message: released the lock of {key} held by {} since {}{})\nJob url: {}\n",
        lock.user,
        format_ms(lock.timestamp_ms),
        lock.message
            .as_deref()
            .map(|m| format!(": {m}"))
            .unwrap_or_default(),
        client.job_url(key)
    );
    Ok(Output {
        text,
        json: json!({"job": key.to_string(), "released": lock}),
    })
}

/// `aurora admin get_locks CLUSTER`: every lock the scheduler holds.
pub fn get_locks(client: &SchedulerClient) -> Result<Output, CommandError> {
    Ok(render::locks(&client.get_locks()?))
}

/// `aurora status`: every task of the job, active then inactive, with events.
pub fn status(client: &SchedulerClient, key: &JobKey) -> Result<Output, CommandError> {
    Ok(render::status(key, &client.job_tasks(key, &[])?.tasks))
}

/// `aurora list_jobs CLUSTER/ROLE[/ENV[/NAME]]`: the jobs under a path, with task counts.
pub fn list_jobs(client: &SchedulerClient, path: &JobPath) -> Result<Output, CommandError> {
    let mut jobs = client.list_jobs(path.role())?.jobs;
    jobs.retain(|j| path.contains(&j.key));
    Ok(render::list_jobs(path, &jobs))
}

/// `aurora get_quota CLUSTER/ROLE`: the role's production quota and consumption.
pub fn get_quota(client: &SchedulerClient, role: &str) -> Result<Output, CommandError> {
    Ok(render::quota(&client.get_quota(role)?))
}

/// `aurora restart`: kills running instances so that they are rescheduled.
pub fn restart(
    client: &SchedulerClient,
    key: &JobKey,
    instances: Option<BTreeSet<u32>>,
) -> Result<Output, CommandError> {
    let response = client.restart(key, instances)?;
    let text = format!(
        "Response from scheduler: OK (message: {})\nJob url: {}\n",
        response.message,
        client.job_url(key)
    );
    Ok(Output {
        text,
        json: json!(response),
    })
}

/// Parses a size such as `512M`, `2G`, `1T` or a plain number of bytes, as `aurora_admin
/// set_quota` takes them.
pub fn parse_size(text: &str) -> Result<i64, String> {
    let t = text.trim();
    let (number, unit) = match t.char_indices().find(|(_, c)| c.is_ascii_alphabetic()) {
        Some((i, _)) => (&t[..i], t[i..].to_ascii_uppercase()),
        None => (t, String::new()),
    };
    let scale: i64 = match unit.trim_end_matches('B') {
        "" if unit.is_empty() => 1,
        "K" => 1 << 10,
        "M" => 1 << 20,
        "G" => 1 << 30,
        "T" => 1 << 40,
        _ => {
            return Err(format!(
                "size {text:?}: unknown unit {unit:?}; use K, M, G or T"
            ));
        }
    };
    let value: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("size {text:?} is not a number with an optional K/M/G/T unit"))?;
    if value < 0.0 || !value.is_finite() {
        return Err(format!("size {text:?} must not be negative"));
    }
    Ok((value * scale as f64) as i64)
}

/// `aurora admin set_quota`: sets a role's production quota.
pub fn set_quota(
    client: &SchedulerClient,
    role: &str,
    cpu: f64,
    ram_bytes: i64,
    disk_bytes: i64,
) -> Result<Output, CommandError> {
    let request = aurora_core::api::SetQuotaRequest {
        cpu,
        ram_bytes,
        disk_bytes,
    };
    client.set_quota(role, &request)?;
    get_quota(client, role)
}

/// `aurora admin host_*`: maintenance steps for hosts, and their status.
pub fn maintenance(
    client: &SchedulerClient,
    step: Option<&str>,
    hosts: Vec<String>,
) -> Result<Output, CommandError> {
    let response = match step {
        Some(step) => client.maintenance(step, hosts)?,
        None => client.maintenance_status()?,
    };
    Ok(render::maintenance(&response))
}

/// `aurora admin scheduler_backup_now`: writes a backup on the scheduler's machine.
pub fn backup(client: &SchedulerClient) -> Result<Output, CommandError> {
    Ok(render::backup(&client.backup()?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use aurora_core::{AssignedTask, TaskEvent, TaskId};

    fn task(instance: u32, status: ScheduleStatus, first_ms: i64) -> ScheduledTask {
        let key: JobKey = "c/r/prod/j".parse().unwrap();
        ScheduledTask {
            assigned_task: AssignedTask {
                task_id: TaskId(format!("t{instance}-{first_ms}")),
                slave_host: Some("h1".into()),
                instance_id: instance,
                task: crate::fixtures::task_config(key).into(),
                assigned_ports: [("http".to_owned(), 31000)].into(),
            },
            status,
            failure_count: 0,
            ancestor_id: None,
            task_events: vec![
                TaskEvent {
                    timestamp_ms: first_ms,
                    status: ScheduleStatus::Pending,
                    message: None,
                    scheduler: None,
                },
                TaskEvent {
                    timestamp_ms: first_ms + 1500,
                    status,
                    message: Some("why".into()),
                    scheduler: None,
                },
            ],
        }
    }

    #[test]
    fn newest_active_task_per_instance() {
        let tasks = vec![
            task(0, ScheduleStatus::Failed, 1),
            task(0, ScheduleStatus::Running, 2),
            task(1, ScheduleStatus::Finished, 1),
        ];
        let latest = latest_per_instance(tasks);
        assert_eq!(latest.len(), 2);
        assert_eq!(latest[0].status, ScheduleStatus::Running);
        assert_eq!(summarize(&latest), "1 FINISHED, 1 RUNNING");
    }

    #[test]
    fn validate_names_a_job_without_a_valid_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.json");
        std::fs::write(
            &path,
            r#"{"name": "hello", "role": "www-data", "cluster": "devcluster",
                "environment": "has space", "task": {"processes": [{"name": "p",
                "cmdline": "true"}], "resources": {"cpu": 1, "ram": 1048576, "disk": 1048576}}}"#,
        )
        .unwrap();
        let source = ConfigSource {
            path: &path,
            json: true,
            bindings: &[],
        };
        let err = validate(&JsonLoader, &source, "vagrant").unwrap_err();
        assert_eq!(err.exit_code(), 2);
        let CommandError::InvalidJobKey { key, .. } = &err else {
            panic!("{err:?}");
        };
        assert_eq!(key, "devcluster/www-data/has space/hello");
        assert!(
            err.to_string()
                .starts_with(&format!("{}: a job has no valid key", path.display()))
        );
    }

    #[test]
    fn sizes_parse_like_aurora_admin() {
        assert_eq!(parse_size("512M"), Ok(512 << 20));
        assert_eq!(parse_size("2g"), Ok(2 << 30));
        assert_eq!(parse_size("1.5G"), Ok(3 << 29));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("1TB"), Ok(1 << 40));
        assert!(parse_size("12X").unwrap_err().contains("unknown unit"));
        assert!(
            parse_size("-1G")
                .unwrap_err()
                .contains("must not be negative")
        );
        assert!(parse_size("G").unwrap_err().contains("not a number"));
    }
}
