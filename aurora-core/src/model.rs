//! The job and task model, shaped after the original's thrift structs.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::{JobKey, ScheduleStatus};

/// The unique id of one run of one instance of a job.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TaskId(pub String);

impl TaskId {
    /// Builds an id as the original does, `<millis>-<role>-<env>-<job>-<instance>-<nonce>`,
    /// with every character outside `[A-Za-z0-9_-]` replaced by `-`. The caller supplies the
    /// time and a unique nonce (a UUID in the scheduler) because this crate reads no clock.
    pub fn generate(now_ms: i64, job: &JobKey, instance: u32, nonce: &str) -> TaskId {
        let raw = format!(
            "{now_ms}-{}-{}-{}-{instance}-{nonce}",
            job.role(),
            job.environment(),
            job.name()
        );
        TaskId(
            raw.chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                        c
                    } else {
                        '-'
                    }
                })
                .collect(),
        )
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Who owns a job: the role it runs as and the user who submitted it.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Identity {
    /// The role (Unix account on the machines).
    pub role: String,
    /// The submitting user.
    pub user: String,
}

/// What a task needs from a machine.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Resources {
    /// CPU cores (fractional).
    pub cpu: f64,
    /// Memory in bytes.
    pub ram_bytes: u64,
    /// Disk in bytes.
    pub disk_bytes: u64,
    /// Names of the ports the task needs allocated.
    #[serde(default)]
    pub ports: BTreeSet<String>,
}

/// One placement constraint on a machine attribute.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Constraint {
    /// The attribute name, e.g. `host` or `rack`.
    pub name: String,
    /// What the attribute must satisfy.
    pub constraint: TaskConstraint,
}

/// The body of a [`Constraint`].
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskConstraint {
    /// The attribute must (or, negated, must not) have one of these values.
    Value {
        /// Whether the match is inverted (`!a,b`).
        negated: bool,
        /// The accepted values.
        values: BTreeSet<String>,
    },
    /// At most `limit` tasks of the job may share one value of the attribute.
    Limit {
        /// The maximum per attribute value.
        limit: u32,
    },
}

/// Why a constraint's text could not be understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("constraint {name}: {value:?} is not valid: {reason}")]
pub struct ConstraintError {
    /// The attribute name.
    pub name: String,
    /// The constraint text.
    pub value: String,
    /// What is wrong.
    pub reason: &'static str,
}

impl TaskConstraint {
    /// Parses the config form: `limit:N`, or a comma list of values with an optional leading
    /// `!` for negation.
    ///
    /// ```
    /// use aurora_core::TaskConstraint;
    /// assert_eq!(TaskConstraint::parse("host", "limit:1").unwrap(), TaskConstraint::Limit { limit: 1 });
    /// assert!(matches!(TaskConstraint::parse("rack", "!a,b").unwrap(),
    ///     TaskConstraint::Value { negated: true, .. }));
    /// ```
    pub fn parse(name: &str, value: &str) -> Result<TaskConstraint, ConstraintError> {
        let err = |reason| ConstraintError {
            name: name.to_owned(),
            value: value.to_owned(),
            reason,
        };
        if let Some(n) = value.strip_prefix("limit:") {
            let limit: u32 = n
                .trim()
                .parse()
                .map_err(|_| err("the limit must be a whole number"))?;
            if limit == 0 {
                return Err(err("the limit must be at least 1"));
            }
            return Ok(TaskConstraint::Limit { limit });
        }
        let (negated, rest) = match value.strip_prefix('!') {
            Some(rest) => (true, rest),
            None => (false, value),
        };
        let values: BTreeSet<String> = rest
            .split(',')
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
            .collect();
        if values.is_empty() {
            return Err(err("it names no value"));
        }
        Ok(TaskConstraint::Value { negated, values })
    }
}

impl fmt::Display for TaskConstraint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TaskConstraint::Limit { limit } => write!(f, "limit:{limit}"),
            TaskConstraint::Value { negated, values } => {
                if *negated {
                    f.write_str("!")?;
                }
                let list: Vec<&str> = values.iter().map(String::as_str).collect();
                f.write_str(&list.join(","))
            }
        }
    }
}

/// The opaque payload handed to the executor: the job as JSON, with the refs the executor
/// binds (`{{mesos.instance}}`, `{{thermos.*}}`) left in place.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecutorConfig {
    /// The executor's name, `AuroraExecutor`.
    pub name: String,
    /// The JSON text.
    pub data: String,
}

/// What to do when a cron run starts while the previous one still runs.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CronCollisionPolicy {
    /// Kill the running tasks and start new ones.
    #[default]
    KillExisting,
    /// Skip the new run.
    CancelNew,
    /// Deprecated: treated as `CancelNew`.
    RunOverlap,
}

impl CronCollisionPolicy {
    /// Parses the config name, e.g. `KILL_EXISTING`.
    pub fn from_name(name: &str) -> Option<CronCollisionPolicy> {
        match name {
            "KILL_EXISTING" => Some(CronCollisionPolicy::KillExisting),
            "CANCEL_NEW" => Some(CronCollisionPolicy::CancelNew),
            "RUN_OVERLAP" => Some(CronCollisionPolicy::RunOverlap),
            _ => None,
        }
    }
}

/// The scheduler-side description of one task: what every instance of a job runs.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskConfig {
    /// The job the task belongs to.
    pub job: JobKey,
    /// Who owns it.
    pub owner: Identity,
    /// Whether it is a long-running service, restarted whenever it ends.
    pub is_service: bool,
    /// How many failed runs are allowed in total; -1 means unlimited.
    pub max_task_failures: i32,
    /// Priority within the role, for preemption.
    pub priority: i32,
    /// Whether it is production work (counts against quota, may preempt).
    pub production: bool,
    /// A contact address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact_email: Option<String>,
    /// What it needs from a machine.
    pub resources: Resources,
    /// Where it may run.
    #[serde(default)]
    pub constraints: Vec<Constraint>,
    /// Named links shown in the UI, with `%host%`, `%port:NAME%`, `%shard_id%` placeholders.
    #[serde(default)]
    pub task_links: BTreeMap<String, String>,
    /// The executor's payload.
    pub executor_config: ExecutorConfig,
}

/// A job as submitted: a task config and how many instances to run.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobConfiguration {
    /// The job's key.
    pub key: JobKey,
    /// Who owns it.
    pub owner: Identity,
    /// A crontab schedule, for cron jobs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cron_schedule: Option<String>,
    /// The cron collision policy.
    #[serde(default)]
    pub cron_collision_policy: CronCollisionPolicy,
    /// What each instance runs.
    pub task_config: TaskConfig,
    /// How many instances.
    pub instance_count: u32,
}

/// A task as placed on a machine: its config plus where and with which ports.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AssignedTask {
    /// The task's id.
    pub task_id: TaskId,
    /// The machine it was assigned to, once assigned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slave_host: Option<String>,
    /// Its instance number within the job.
    pub instance_id: u32,
    /// What it runs.
    pub task: TaskConfig,
    /// The ports allocated, by name.
    #[serde(default)]
    pub assigned_ports: BTreeMap<String, u16>,
}

/// One entry in a task's history.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskEvent {
    /// When, in milliseconds since the Unix epoch.
    pub timestamp_ms: i64,
    /// The state entered.
    pub status: ScheduleStatus,
    /// Why, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The scheduler host that recorded it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduler: Option<String>,
}

/// A task the scheduler tracks: where it is, what state it is in, and how it got there.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScheduledTask {
    /// The task and its placement.
    pub assigned_task: AssignedTask,
    /// Its current state.
    pub status: ScheduleStatus,
    /// How many of its ancestors (and itself) failed.
    pub failure_count: u32,
    /// The task it replaced, when it was rescheduled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ancestor_id: Option<TaskId>,
    /// Its history, oldest first.
    #[serde(default)]
    pub task_events: Vec<TaskEvent>,
}

impl ScheduledTask {
    /// The task's id.
    pub fn id(&self) -> &TaskId {
        &self.assigned_task.task_id
    }
    /// The job it belongs to.
    pub fn job(&self) -> &JobKey {
        &self.assigned_task.task.job
    }
    /// Its instance number.
    pub fn instance(&self) -> u32 {
        self.assigned_task.instance_id
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_ids_are_sanitised() {
        let key: JobKey = "c/www.data/prod/he.llo".parse().unwrap();
        let id = TaskId::generate(1700000000000, &key, 3, "ab:cd");
        assert_eq!(id.as_str(), "1700000000000-www-data-prod-he-llo-3-ab-cd");
    }

    #[test]
    fn constraints_parse() {
        let check = |v: &str, expect: Result<&str, &str>| match (
            TaskConstraint::parse("rack", v),
            expect,
        ) {
            (Ok(c), Ok(text)) => assert_eq!(c.to_string(), text),
            (Err(e), Err(frag)) => assert!(e.to_string().contains(frag), "{e}"),
            (got, exp) => panic!("{v}: {got:?} vs {exp:?}"),
        };
        check("limit:2", Ok("limit:2"));
        check("b,a", Ok("a,b"));
        check("!a", Ok("!a"));
        check("limit:x", Err("whole number"));
        check("limit:0", Err("at least 1"));
        check("!", Err("names no value"));
    }
}
