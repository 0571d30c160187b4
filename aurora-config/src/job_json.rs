//! Aurora jobs in their JSON form — the `raw_json` shape a fully interpolated `Job` dumps to,
//! and what `aurora create -j` reads — and their conversion into the scheduler's
//! [`JobConfiguration`].
//!
//! The Pystachio engine fills defaults and interpolates templates; this module reads the
//! result into typed structs (filling the same defaults, so that hand-written JSON needs no
//! Python and no engine) and converts it the way the original client did: ram and disk in
//! bytes, constraints parsed, requested ports collected, the executor payload rendered.

use std::collections::{BTreeMap, BTreeSet};

use aurora_core::{
    Constraint, CronCollisionPolicy, ExecutorConfig, Identity, JobConfiguration, JobKey, Resources,
    TaskConfig, TaskConstraint, UpdateSettings,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One problem found in a job config, with where it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct JobProblem {
    /// Where in the config, e.g. `job.task.resources.ram`.
    pub path: String,
    /// What is wrong and what to do.
    pub message: String,
}

/// Every problem found in a job config.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JobJsonError {
    /// The text is not JSON of a job.
    #[error("{source_name}: not a valid job: {message}")]
    Parse {
        /// Where the text came from (a file name).
        source_name: String,
        /// What the parser said, with line and column.
        message: String,
    },
    /// The job parsed but cannot be converted.
    #[error("{source_name}: invalid job config:\n  {}", display_problems(.problems))]
    Invalid {
        /// Where the job came from.
        source_name: String,
        /// Each problem, with its path.
        problems: Vec<JobProblem>,
    },
}

fn display_problems(problems: &[JobProblem]) -> String {
    problems
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n  ")
}

fn default_one_i64() -> i64 {
    1
}
fn default_one_u32() -> u32 {
    1
}

/// `Resources`: cpu, and ram and disk in bytes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourcesJson {
    /// CPU cores.
    pub cpu: f64,
    /// Memory in bytes.
    pub ram: i64,
    /// Disk in bytes.
    pub disk: i64,
}

/// `Process`: one command line run by Thermos.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProcessJson {
    /// The shell command line.
    pub cmdline: String,
    /// The process name.
    pub name: String,
    /// Reserved for future use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourcesJson>,
    /// Runs allowed to fail before the process is failed; 0 = unlimited.
    #[serde(default = "default_one_i64")]
    pub max_failures: i64,
    /// Run again after success.
    #[serde(default)]
    pub daemon: bool,
    /// Does not hold the task open or fail it.
    #[serde(default)]
    pub ephemeral: bool,
    /// Minimum seconds between the end of one run and the start of the next.
    #[serde(default = "default_min_duration")]
    pub min_duration: i64,
    /// Runs after the ordinary processes end.
    #[serde(rename = "final", default)]
    pub is_final: bool,
}

fn default_min_duration() -> i64 {
    5
}

/// `Constraint`: an ordering of processes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrderJson {
    /// Process names, in order.
    #[serde(default)]
    pub order: Vec<String>,
}

/// `Task`: processes sharing a sandbox.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskJson {
    /// The task name; defaults to the first process's name.
    #[serde(default)]
    pub name: Option<String>,
    /// The processes.
    #[serde(default)]
    pub processes: Vec<ProcessJson>,
    /// Ordering constraints.
    #[serde(default)]
    pub constraints: Vec<OrderJson>,
    /// What the task needs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourcesJson>,
    /// Failed processes tolerated; 0 = unlimited.
    #[serde(default = "default_one_i64")]
    pub max_failures: i64,
    /// Processes run at once; 0 = unlimited.
    #[serde(default)]
    pub max_concurrency: i64,
    /// Seconds given to cleanup and final processes.
    #[serde(default = "default_finalization_wait")]
    pub finalization_wait: i64,
    /// Undocumented in the original; kept when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
}

fn default_finalization_wait() -> i64 {
    30
}

/// `UpdateConfig` as configs write it: how rolling updates proceed. Read only to be checked
/// and turned into [`UpdateSettings`], whose defaults it takes; the integers are wide so that
/// a negative or oversized value is reported rather than refused by the parser.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UpdateConfigJson {
    /// Instances updated at once.
    pub batch_size: i64,
    /// Seconds an instance may take to reach RUNNING.
    pub restart_threshold: i64,
    /// Seconds an instance must stay RUNNING to count as healthy.
    pub watch_secs: i64,
    /// Failures tolerated per instance.
    pub max_per_shard_failures: i64,
    /// Failed instances tolerated.
    pub max_total_failures: i64,
    /// Roll back when the update fails.
    pub rollback_on_failure: bool,
    /// Wait for a whole batch before starting the next.
    pub wait_for_batch_completion: bool,
}

impl Default for UpdateConfigJson {
    fn default() -> Self {
        UpdateConfigJson::from(UpdateSettings::default())
    }
}

impl From<UpdateSettings> for UpdateConfigJson {
    fn from(s: UpdateSettings) -> Self {
        UpdateConfigJson {
            batch_size: s.batch_size.into(),
            restart_threshold: s.restart_threshold.into(),
            watch_secs: s.watch_secs.into(),
            max_per_shard_failures: s.max_per_shard_failures.into(),
            max_total_failures: s.max_total_failures.into(),
            rollback_on_failure: s.rollback_on_failure,
            wait_for_batch_completion: s.wait_for_batch_completion,
        }
    }
}

impl UpdateConfigJson {
    /// The settings the scheduler keeps, or one problem per field that is negative or too
    /// large (paths `job.update_config.<field>`). Rules relating fields to the rest of the
    /// job (e.g. `max_total_failures` below the instance count) are the schema's.
    pub fn to_settings(&self) -> Result<UpdateSettings, Vec<JobProblem>> {
        let defaults = UpdateSettings::default();
        let mut problems = Vec::new();
        let mut field = |name: &str, value: i64, what: &str, default: u32| {
            u32::try_from(value).unwrap_or_else(|_| {
                problems.push(JobProblem {
                    path: format!("job.update_config.{name}"),
                    message: format!(
                        "{value} is out of range: {name} ({what}) must be a whole number from 0 \
                         to {}; set it in range or leave it out for the default {default}",
                        u32::MAX
                    ),
                });
                default
            })
        };
        let settings = UpdateSettings {
            batch_size: field(
                "batch_size",
                self.batch_size,
                "instances replaced at a time",
                defaults.batch_size,
            ),
            restart_threshold: field(
                "restart_threshold",
                self.restart_threshold,
                "seconds an instance may take to reach RUNNING",
                defaults.restart_threshold,
            ),
            watch_secs: field(
                "watch_secs",
                self.watch_secs,
                "seconds an instance must stay RUNNING",
                defaults.watch_secs,
            ),
            max_per_shard_failures: field(
                "max_per_shard_failures",
                self.max_per_shard_failures,
                "restarts tolerated per instance",
                defaults.max_per_shard_failures,
            ),
            max_total_failures: field(
                "max_total_failures",
                self.max_total_failures,
                "failed instances tolerated",
                defaults.max_total_failures,
            ),
            rollback_on_failure: self.rollback_on_failure,
            wait_for_batch_completion: self.wait_for_batch_completion,
        };
        if problems.is_empty() {
            Ok(settings)
        } else {
            Err(problems)
        }
    }
}

/// `HealthCheckConfig`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthCheckJson {
    /// Seconds before the first check.
    #[serde(default = "default_initial_interval")]
    pub initial_interval_secs: f64,
    /// Seconds between checks.
    #[serde(default = "default_interval")]
    pub interval_secs: f64,
    /// Failures in a row tolerated.
    #[serde(default)]
    pub max_consecutive_failures: i64,
    /// Seconds each check may take.
    #[serde(default = "default_timeout")]
    pub timeout_secs: f64,
}

fn default_initial_interval() -> f64 {
    15.0
}
fn default_interval() -> f64 {
    10.0
}
fn default_timeout() -> f64 {
    1.0
}

impl Default for HealthCheckJson {
    fn default() -> Self {
        HealthCheckJson {
            initial_interval_secs: 15.0,
            interval_secs: 10.0,
            max_consecutive_failures: 0,
            timeout_secs: 1.0,
        }
    }
}

/// `Announcer`: ServerSet announcement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnnouncerJson {
    /// The port announced as primary.
    #[serde(default = "default_primary_port")]
    pub primary_port: String,
    /// Port aliases.
    #[serde(default = "default_portmap")]
    pub portmap: BTreeMap<String, String>,
}

fn default_primary_port() -> String {
    "http".to_owned()
}
fn default_portmap() -> BTreeMap<String, String> {
    BTreeMap::from([("aurora".to_owned(), "{{primary_port}}".to_owned())])
}

/// `Job`: the unit users create, with the 0.6 schema's fields and defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobJson {
    /// The job name; defaults to the task's name.
    #[serde(default)]
    pub name: Option<String>,
    /// The role.
    pub role: String,
    /// A contact address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact: Option<String>,
    /// The cluster.
    pub cluster: String,
    /// The environment.
    pub environment: String,
    /// How many instances.
    #[serde(default = "default_one_u32")]
    pub instances: u32,
    /// What each instance runs.
    pub task: TaskJson,
    /// ServerSet announcement.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub announce: Option<AnnouncerJson>,
    /// A crontab schedule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cron_schedule: Option<String>,
    /// What to do when cron runs overlap.
    #[serde(default = "default_cron_policy")]
    pub cron_collision_policy: String,
    /// Rolling update settings.
    #[serde(default)]
    pub update_config: UpdateConfigJson,
    /// Placement constraints by attribute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub constraints: Option<BTreeMap<String, String>>,
    /// Whether the job is a service.
    #[serde(default)]
    pub service: bool,
    /// Failed runs allowed in total; -1 = unlimited.
    #[serde(default = "default_one_i64")]
    pub max_task_failures: i64,
    /// Production work.
    #[serde(default)]
    pub production: bool,
    /// Priority within the role.
    #[serde(default)]
    pub priority: i64,
    /// Health checking.
    #[serde(default)]
    pub health_check_config: HealthCheckJson,
    /// Links shown in the UI.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_links: Option<BTreeMap<String, String>>,
    /// Whether the config's hooks run.
    #[serde(default)]
    pub enable_hooks: bool,
    /// Keys the schema does not know; the original dropped them silently, we report them.
    #[serde(flatten, skip_serializing)]
    pub unknown: BTreeMap<String, Value>,
}

fn default_cron_policy() -> String {
    "KILL_EXISTING".to_owned()
}

/// A job config converted for the scheduler, with what the client should tell the user.
#[derive(Debug, Clone, PartialEq)]
pub struct ConvertedJob {
    /// The scheduler-side job.
    pub job: JobConfiguration,
    /// Things worth a warning that do not stop the job (e.g. unknown keys).
    pub warnings: Vec<String>,
}

impl JobJson {
    /// Reads a job from JSON text, filling the schema's defaults.
    ///
    /// ```
    /// use aurora_config::job_json::JobJson;
    /// let job = JobJson::from_json_str(r#"{"role": "www-data", "cluster": "local",
    ///     "environment": "devel", "task": {"processes": [{"name": "hello",
    ///     "cmdline": "echo hello"}], "resources": {"cpu": 0.1, "ram": 16777216,
    ///     "disk": 16777216}}}"#, "hello.json").unwrap();
    /// assert_eq!(job.job_name(), "hello");
    /// assert_eq!(job.task.processes[0].min_duration, 5);
    /// ```
    pub fn from_json_str(text: &str, source_name: &str) -> Result<JobJson, JobJsonError> {
        let mut job: JobJson = serde_json::from_str(text).map_err(|e| JobJsonError::Parse {
            source_name: source_name.to_owned(),
            message: e.to_string(),
        })?;
        job.fill_defaults();
        Ok(job)
    }

    /// Reads a job from a JSON value (e.g. the engine's interpolated output).
    pub fn from_value(value: Value, source_name: &str) -> Result<JobJson, JobJsonError> {
        let mut job: JobJson = serde_json::from_value(value).map_err(|e| JobJsonError::Parse {
            source_name: source_name.to_owned(),
            message: e.to_string(),
        })?;
        job.fill_defaults();
        Ok(job)
    }

    /// Resolves the two self-referential defaults of the schema: a task is named after its
    /// first process (`{{processes[0].name}}`) and a job after its task (`{{task.name}}`).
    fn fill_defaults(&mut self) {
        if self.task.name.is_none() {
            self.task.name = self.task.processes.first().map(|p| p.name.clone());
        }
        if self.name.is_none() {
            self.name = self.task.name.clone();
        }
    }

    /// The job's name.
    pub fn job_name(&self) -> &str {
        self.name.as_deref().unwrap_or_default()
    }

    /// The job as JSON with every default filled: the `raw_json` shape.
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    /// The payload the executor receives: the job without `instances` and `update_config`.
    pub fn executor_data(&self) -> String {
        serde_json::to_string(&ExecutorPayload(self)).unwrap_or_default()
    }

    /// The ports the scheduler must allocate: every `{{thermos.ports[NAME]}}` the task refers
    /// to, plus the announcer's primary port.
    pub fn requested_ports(&self) -> BTreeSet<String> {
        let mut ports = BTreeSet::new();
        for text in self.task.texts() {
            collect_port_refs_in(text, &mut ports);
        }
        if let Some(links) = &self.task_links {
            for link in links.values() {
                collect_port_refs_in(link, &mut ports);
            }
        }
        if let Some(announce) = &self.announce {
            ports.insert(announce.primary_port.clone());
            for target in announce.portmap.values() {
                if !target.contains("{{") && target.parse::<u16>().is_err() {
                    ports.insert(target.clone());
                }
            }
        }
        ports
    }

    /// Converts the job for the scheduler, reporting every problem found. `user` is the
    /// submitting user (the original used the local login name).
    pub fn to_job_configuration(
        &self,
        user: &str,
        source_name: &str,
    ) -> Result<ConvertedJob, JobJsonError> {
        let mut problems = Vec::new();
        let mut problem = |path: &str, message: String| {
            problems.push(JobProblem {
                path: path.to_owned(),
                message,
            })
        };
        let mut warnings: Vec<String> = self
            .unknown
            .keys()
            .map(|k| format!("{source_name}: unknown job field {k:?} ignored"))
            .collect();

        let key = match JobKey::new(
            &self.cluster,
            &self.role,
            &self.environment,
            self.job_name(),
        ) {
            Ok(key) => Some(key),
            Err(e) => {
                problem("job", e.to_string());
                None
            }
        };
        if self.task.processes.is_empty() {
            problem(
                "job.task.processes",
                "a task needs at least one process".to_owned(),
            );
        }
        if self.instances == 0 {
            problem("job.instances", "must be at least 1".to_owned());
        }
        let resources = match &self.task.resources {
            None => {
                problem(
                    "job.task.resources",
                    "task must specify resources (cpu, ram and disk)".to_owned(),
                );
                None
            }
            Some(r) => {
                if r.cpu.is_nan() || r.cpu <= 0.0 {
                    problem(
                        "job.task.resources.cpu",
                        format!("{} must be above 0", r.cpu),
                    );
                }
                for (field, value) in [("ram", r.ram), ("disk", r.disk)] {
                    if value <= 0 {
                        problem(
                            &format!("job.task.resources.{field}"),
                            format!("{value} bytes must be above 0 (e.g. 128*MB)"),
                        );
                    }
                }
                Some(r.clone())
            }
        };
        let mut constraints = Vec::new();
        for (name, value) in self.constraints.iter().flatten() {
            match TaskConstraint::parse(name, value) {
                Ok(c) => constraints.push(Constraint {
                    name: name.clone(),
                    constraint: c,
                }),
                Err(e) => problem(&format!("job.constraints[{name}]"), e.to_string()),
            }
        }
        let cron_collision_policy =
            match CronCollisionPolicy::from_name(&self.cron_collision_policy) {
                Some(p) => p,
                None => {
                    problem(
                        "job.cron_collision_policy",
                        format!(
                            "invalid cron policy {:?}; use KILL_EXISTING or CANCEL_NEW",
                            self.cron_collision_policy
                        ),
                    );
                    CronCollisionPolicy::KillExisting
                }
            };
        if self.service && self.cron_schedule.is_some() {
            problem(
                "job.cron_schedule",
                "a service job cannot have a cron schedule".to_owned(),
            );
        }
        let max_task_failures = i32::try_from(self.max_task_failures).unwrap_or_else(|_| {
            problem(
                "job.max_task_failures",
                format!("{} is out of range", self.max_task_failures),
            );
            1
        });
        let priority = i32::try_from(self.priority).unwrap_or_else(|_| {
            problem("job.priority", format!("{} is out of range", self.priority));
            0
        });
        let update_config = self.update_config.to_settings().unwrap_or_else(|found| {
            problems.extend(found);
            UpdateSettings::default()
        });
        if self.max_task_failures < -1 {
            warnings.push(format!(
                "{source_name}: max_task_failures {} below -1 acts as 1",
                self.max_task_failures
            ));
        }

        let (Some(key), Some(resources), true) = (key, resources, problems.is_empty()) else {
            return Err(JobJsonError::Invalid {
                source_name: source_name.to_owned(),
                problems,
            });
        };
        let owner = Identity {
            role: self.role.clone(),
            user: user.to_owned(),
        };
        let task_links = self
            .task_links
            .iter()
            .flatten()
            .map(|(k, v)| (k.clone(), rewrite_task_link(v)))
            .collect();
        let task_config = TaskConfig {
            job: key.clone(),
            owner: owner.clone(),
            is_service: self.service,
            max_task_failures,
            priority,
            production: self.production,
            contact_email: self.contact.clone(),
            resources: Resources {
                cpu: resources.cpu,
                // Checked above to be positive.
                ram_bytes: resources.ram.unsigned_abs(),
                disk_bytes: resources.disk.unsigned_abs(),
                ports: self.requested_ports(),
            },
            constraints,
            task_links,
            executor_config: ExecutorConfig {
                name: "AuroraExecutor".to_owned(),
                data: self.executor_data(),
            },
        };
        Ok(ConvertedJob {
            job: JobConfiguration {
                key,
                owner,
                cron_schedule: self.cron_schedule.clone(),
                cron_collision_policy,
                task_config: task_config.into(),
                instance_count: self.instances,
                update_config,
            },
            warnings,
        })
    }
}

/// Rewrites the instance and port refs of a task link into the scheduler's placeholders, as
/// the original client did: `{{mesos.instance}}` → `%shard_id%`, `{{thermos.ports[x]}}` →
/// `%port:x%`.
fn rewrite_task_link(link: &str) -> String {
    let mut out = link.replace("{{mesos.instance}}", "%shard_id%");
    while let Some(start) = out.find("{{thermos.ports[") {
        let rest = &out[start + "{{thermos.ports[".len()..];
        let Some(end) = rest.find("]}}") else { break };
        let name = rest[..end].to_owned();
        out.replace_range(
            start..start + "{{thermos.ports[".len() + end + 3,
            &format!("%port:{name}%"),
        );
    }
    out
}

impl TaskJson {
    /// Every text in the task (what a `{{...}}` reference can sit in): its name and user,
    /// its processes' names and command lines, and its ordering constraints.
    fn texts(&self) -> impl Iterator<Item = &str> {
        let processes = self
            .processes
            .iter()
            .flat_map(|p| [p.cmdline.as_str(), p.name.as_str()]);
        let orders = self
            .constraints
            .iter()
            .flat_map(|c| c.order.iter().map(String::as_str));
        self.name
            .as_deref()
            .into_iter()
            .chain(processes)
            .chain(orders)
            .chain(self.user.as_deref())
    }
}

/// A job as its executor payload, written straight from the typed job. The key order is the
/// one payloads have always had (stored task configs and recorded outputs hold it): the job's
/// own order, with `enable_hooks` in the place of `instances` and the job's last remaining
/// field (`task_links` when set, else `health_check_config`) in the place of `update_config`.
struct ExecutorPayload<'a>(&'a JobJson);

impl Serialize for ExecutorPayload<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap as _;
        let job = self.0;
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("name", &job.name)?;
        map.serialize_entry("role", &job.role)?;
        if let Some(contact) = &job.contact {
            map.serialize_entry("contact", contact)?;
        }
        map.serialize_entry("cluster", &job.cluster)?;
        map.serialize_entry("environment", &job.environment)?;
        map.serialize_entry("enable_hooks", &job.enable_hooks)?;
        map.serialize_entry("task", &job.task)?;
        if let Some(announce) = &job.announce {
            map.serialize_entry("announce", announce)?;
        }
        if let Some(schedule) = &job.cron_schedule {
            map.serialize_entry("cron_schedule", schedule)?;
        }
        map.serialize_entry("cron_collision_policy", &job.cron_collision_policy)?;
        match &job.task_links {
            Some(links) => map.serialize_entry("task_links", links)?,
            None => map.serialize_entry("health_check_config", &job.health_check_config)?,
        }
        if let Some(constraints) = &job.constraints {
            map.serialize_entry("constraints", constraints)?;
        }
        map.serialize_entry("service", &job.service)?;
        map.serialize_entry("max_task_failures", &job.max_task_failures)?;
        map.serialize_entry("production", &job.production)?;
        map.serialize_entry("priority", &job.priority)?;
        if job.task_links.is_some() {
            map.serialize_entry("health_check_config", &job.health_check_config)?;
        }
        map.end()
    }
}

fn collect_port_refs_in(text: &str, ports: &mut BTreeSet<String>) {
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else { return };
        let inner = after[..end].trim().trim_start_matches('&');
        if let Some(name) = inner
            .strip_prefix("thermos.ports[")
            .and_then(|s| s.strip_suffix(']'))
        {
            ports.insert(name.to_owned());
        }
        rest = &after[end + 2..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HELLO: &str = r#"{"role": "www-data", "cluster": "devcluster", "environment": "prod",
        "service": true,
        "task": {"processes": [{"name": "hello", "cmdline": "echo {{thermos.ports[http]}}"}],
                 "constraints": [{"order": ["hello"]}],
                 "resources": {"cpu": 1.0, "ram": 134217728, "disk": 134217728}},
        "constraints": {"host": "limit:2", "rack": "!r1,r2"},
        "task_links": {"web": "http://%host%:{{thermos.ports[admin]}}/{{mesos.instance}}"}}"#;

    #[test]
    fn converts_hello_world() {
        let job = JobJson::from_json_str(HELLO, "hello.json").unwrap();
        let converted = job.to_job_configuration("vagrant", "hello.json").unwrap();
        let c = &converted.job;
        assert_eq!(c.key.to_string(), "devcluster/www-data/prod/hello");
        assert_eq!(c.owner.user, "vagrant");
        assert_eq!(c.instance_count, 1);
        let t = &c.task_config;
        assert!(t.is_service);
        assert_eq!(t.resources.ram_bytes, 128 << 20);
        let ports: Vec<_> = t.resources.ports.iter().map(String::as_str).collect();
        assert_eq!(ports, ["admin", "http"]);
        assert_eq!(t.task_links["web"], "http://%host%:%port:admin%/%shard_id%");
        assert_eq!(t.constraints.len(), 2);
        assert_eq!(t.constraints[1].constraint.to_string(), "!r1,r2");
        let data: Value = serde_json::from_str(&t.executor_config.data).unwrap();
        assert!(data.get("instances").is_none() && data.get("update_config").is_none());
        assert_eq!(data["task"]["processes"][0]["min_duration"], 5);
        assert_eq!(data["name"], "hello");
    }

    /// The payload as the job's JSON less two keys, each removed as `serde_json::Map` does
    /// (the last key takes its place): how payloads were first made.
    fn payload_via_json(job: &JobJson) -> String {
        let mut value = job.to_value();
        if let Value::Object(map) = &mut value {
            map.remove("instances");
            map.remove("update_config");
        }
        value.to_string()
    }

    fn collect_port_refs(value: &Value, ports: &mut BTreeSet<String>) {
        match value {
            Value::String(s) => collect_port_refs_in(s, ports),
            Value::Array(items) => items.iter().for_each(|v| collect_port_refs(v, ports)),
            Value::Object(map) => map.values().for_each(|v| collect_port_refs(v, ports)),
            _ => {}
        }
    }

    /// The ports as every string in the task's JSON, links and announcer: how they were first
    /// found.
    fn ports_via_json(job: &JobJson) -> BTreeSet<String> {
        let mut ports = BTreeSet::new();
        collect_port_refs(&serde_json::to_value(&job.task).unwrap(), &mut ports);
        for link in job.task_links.iter().flat_map(|l| l.values()) {
            collect_port_refs_in(link, &mut ports);
        }
        if let Some(announce) = &job.announce {
            ports.insert(announce.primary_port.clone());
            for target in announce.portmap.values() {
                if !target.contains("{{") && target.parse::<u16>().is_err() {
                    ports.insert(target.clone());
                }
            }
        }
        ports
    }

    #[test]
    fn the_payload_and_ports_are_those_of_the_job_json() {
        let minimal = r#"{"role": "r", "cluster": "c", "environment": "prod", "name": "j",
            "task": {"processes": [{"name": "p", "cmdline": "run"}],
                     "resources": {"cpu": 0.5, "ram": 1048576, "disk": 1048576}}}"#;
        // Every optional field set, and a port reference in every kind of text.
        let full = r#"{"role": "r", "cluster": "c", "environment": "prod", "name": "j",
            "contact": "me@example.com", "instances": 3, "cron_schedule": "* * * * *",
            "announce": {"primary_port": "http", "portmap": {"aurora": "admin"}},
            "update_config": {"batch_size": 2},
            "task": {"name": "t-{{thermos.ports[tname]}}", "user": "{{thermos.ports[u]}}",
                     "processes": [{"name": "{{thermos.ports[pname]}}",
                                    "cmdline": "run {{ thermos.ports[a] }} {{&thermos.ports[b]}}"}],
                     "constraints": [{"order": ["{{thermos.ports[order]}}"]}],
                     "resources": {"cpu": 0.5, "ram": 1048576, "disk": 1048576}},
            "constraints": {"host": "limit:1"}, "task_links": {"w": "{{thermos.ports[web]}}"},
            "enable_hooks": true}"#;
        for (text, name) in [(HELLO, "hello"), (minimal, "minimal"), (full, "full")] {
            let job = JobJson::from_json_str(text, name).unwrap();
            // Byte for byte: stored task configs and recorded outputs hold this text.
            assert_eq!(job.executor_data(), payload_via_json(&job), "{name}");
            let converted = job.to_job_configuration("u", name).unwrap().job;
            let task = &converted.task_config;
            assert_eq!(task.executor_config.data, job.executor_data(), "{name}");
            assert_eq!(task.resources.ports, ports_via_json(&job), "{name}");
        }
        let job = JobJson::from_json_str(full, "full").unwrap();
        let ports: Vec<_> = job.requested_ports().into_iter().collect();
        assert_eq!(
            ports,
            [
                "a", "admin", "b", "http", "order", "pname", "tname", "u", "web"
            ]
        );
    }

    #[test]
    fn reports_every_problem_with_its_path() {
        let text = r#"{"role": "r", "cluster": "c", "environment": "production", "instances": 0,
            "cron_collision_policy": "SOMETIMES",
            "task": {"name": "t", "processes": [],
                     "resources": {"cpu": 0, "ram": 0, "disk": 1}},
            "constraints": {"host": "limit:zero"}}"#;
        let job = JobJson::from_json_str(text, "bad.json").unwrap();
        let err = job
            .to_job_configuration("u", "bad.json")
            .unwrap_err()
            .to_string();
        for fragment in [
            "bad.json: invalid job config",
            "job: job key \"c/r/production/t\": environment \"production\" is not valid",
            "job.task.processes: a task needs at least one process",
            "job.instances: must be at least 1",
            "job.task.resources.cpu: 0 must be above 0",
            "job.task.resources.ram: 0 bytes must be above 0",
            "job.constraints[host]: constraint host: \"limit:zero\"",
            "job.cron_collision_policy: invalid cron policy \"SOMETIMES\"",
        ] {
            assert!(err.contains(fragment), "{err}\n lacks {fragment:?}");
        }
    }

    #[test]
    fn update_config_becomes_the_jobs_settings_with_one_table_of_defaults() {
        let text = |update: &str| {
            format!(
                r#"{{"role": "r", "cluster": "c", "environment": "prod", "name": "j",
                    "instances": 4, {update}
                    "task": {{"processes": [{{"name": "p", "cmdline": "run"}}],
                             "resources": {{"cpu": 0.5, "ram": 1048576, "disk": 1048576}}}}}}"#
            )
        };
        let convert = |update: &str| {
            JobJson::from_json_str(&text(update), "u.json")
                .unwrap()
                .to_job_configuration("u", "u.json")
        };
        let defaults = UpdateSettings::default();
        assert_eq!(convert("").unwrap().job.update_config, defaults);
        // The raw_json shape shows the same defaults the scheduler gets.
        let raw = JobJson::from_json_str(&text(""), "u.json")
            .unwrap()
            .to_value();
        assert_eq!(
            raw["update_config"],
            serde_json::to_value(defaults).unwrap()
        );
        let set = convert(
            r#""update_config": {"batch_size": 2, "watch_secs": 10, "max_total_failures": 1,
                                 "rollback_on_failure": false, "wait_for_batch_completion": true},"#,
        )
        .unwrap()
        .job
        .update_config;
        assert_eq!(
            set,
            UpdateSettings {
                batch_size: 2,
                watch_secs: 10,
                max_total_failures: 1,
                rollback_on_failure: false,
                wait_for_batch_completion: true,
                ..defaults
            }
        );
    }

    #[test]
    fn negative_or_oversized_update_settings_are_reported_by_field() {
        let text = r#"{"role": "r", "cluster": "c", "environment": "prod", "name": "j",
            "update_config": {"batch_size": -1, "watch_secs": 4294967296,
                              "max_per_shard_failures": -3},
            "task": {"processes": [{"name": "p", "cmdline": "run"}],
                     "resources": {"cpu": 0.5, "ram": 1048576, "disk": 1048576}}}"#;
        let job = JobJson::from_json_str(text, "u.json").unwrap();
        let JobJsonError::Invalid { problems, .. } =
            job.to_job_configuration("u", "u.json").unwrap_err()
        else {
            panic!("not an Invalid error");
        };
        let paths: Vec<_> = problems.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "job.update_config.batch_size",
                "job.update_config.watch_secs",
                "job.update_config.max_per_shard_failures"
            ]
        );
        assert_eq!(
            problems[0].to_string(),
            "job.update_config.batch_size: -1 is out of range: batch_size (instances replaced \
             at a time) must be a whole number from 0 to 4294967295; set it in range or leave it \
             out for the default 1"
        );
        assert!(
            problems[1]
                .message
                .starts_with("4294967296 is out of range"),
            "{}",
            problems[1]
        );
    }

    #[test]
    fn parse_errors_name_the_source_and_place() {
        let err = JobJson::from_json_str("{\"role\": 1}", "x.json")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("x.json: not a valid job:"), "{err}");
        assert!(err.contains("line 1"), "{err}");
        let err = JobJson::from_json_str(
            r#"{"role":"r","cluster":"c","environment":"prod","task":{"processes":[{"name":"a","cmdline":"b","bogus":1}]}}"#,
            "y.json",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("unknown field `bogus`"), "{err}");
    }

    /// Every `raw_json` of the corpus converts to the `job_configuration` Aurora 0.6 made of it.
    #[test]
    fn corpus_raw_json_converts_like_aurora() {
        let Some(root) = crate::test_support::require(
            crate::test_support::Input::Corpus,
            "aurora-config job_json::corpus_raw_json_converts_like_aurora",
        ) else {
            return;
        };
        let root = root.join("expected");
        assert!(root.is_dir(), "the corpus is missing at {}", root.display());
        let mut checked = 0;
        let mut stack = vec![root];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                    continue;
                }
                if path.extension().is_none_or(|e| e != "json") {
                    continue;
                }
                let doc: Value =
                    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
                for job in doc["jobs"].as_array().into_iter().flatten() {
                    let (Some(raw), Some(expected)) =
                        (job.get("raw_json"), job.get("job_configuration"))
                    else {
                        continue;
                    };
                    let name = path.display().to_string();
                    let parsed = JobJson::from_value(raw.clone(), &name).unwrap();
                    assert_eq!(parsed.executor_data(), payload_via_json(&parsed), "{name}");
                    assert_eq!(parsed.requested_ports(), ports_via_json(&parsed), "{name}");
                    assert_eq!(
                        parsed.to_value(),
                        *raw,
                        "{name}: raw_json does not round-trip"
                    );
                    let converted = parsed.to_job_configuration("vagrant", &name).unwrap().job;
                    let t = &converted.task_config;
                    let e = &expected["taskConfig"];
                    assert_eq!(
                        t.resources.ram_bytes / (1 << 20),
                        e["ramMb"].as_u64().unwrap(),
                        "{name}"
                    );
                    assert_eq!(
                        t.resources.disk_bytes / (1 << 20),
                        e["diskMb"].as_u64().unwrap(),
                        "{name}"
                    );
                    assert_eq!(t.is_service, e["isService"].as_bool().unwrap(), "{name}");
                    let ports: Vec<&str> = t.resources.ports.iter().map(String::as_str).collect();
                    let mut want: Vec<&str> = job["ports"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|p| p.as_str().unwrap())
                        .collect();
                    want.sort();
                    assert_eq!(ports, want, "{name}: requested ports");
                    let data: Value = serde_json::from_str(&t.executor_config.data).unwrap();
                    assert_eq!(
                        data, e["executorConfig"]["data_json"],
                        "{name}: executor data"
                    );
                    assert_eq!(
                        converted.instance_count as u64,
                        expected["instanceCount"].as_u64().unwrap()
                    );
                    checked += 1;
                }
            }
        }
        assert!(checked >= 30, "only {checked} corpus jobs checked");
    }
}
