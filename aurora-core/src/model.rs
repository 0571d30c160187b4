//! The job and task model, shaped after the original's thrift structs.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::{Arc, OnceLock};

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};

use crate::{JobKey, ScheduleStatus, UpdateSettings};

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

/// The content key of a task config: the SHA-256 of its canonical form (its JSON, whose
/// field order is fixed by the struct and whose maps and sets are sorted), in lowercase hex.
///
/// Tasks and jobs in storage refer to their config by this key, so that each distinct config
/// is stored once.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ConfigKey(String);

impl ConfigKey {
    /// The key of a config's content.
    ///
    /// ```
    /// # use aurora_core::{ConfigKey, TaskConfig};
    /// # fn demo(config: &TaskConfig) {
    /// assert_eq!(ConfigKey::of(config), ConfigKey::of(&config.clone()));
    /// assert_eq!(ConfigKey::of(config).as_str().len(), 64);
    /// # }
    /// ```
    pub fn of(config: &TaskConfig) -> ConfigKey {
        let mut hasher = Sha256::new();
        // Writing JSON into a hasher cannot fail: the hasher's writes do not fail and every
        // map of a TaskConfig has string keys. Should it ever, the debug form is hashed, which
        // is just as deterministic.
        if serde_json::to_writer(&mut hasher, config).is_err() {
            hasher = Sha256::new();
            hasher.update(format!("{config:?}"));
        }
        ConfigKey(format!("{:x}", hasher.finalize()))
    }

    /// Wraps a key read back from storage, as it was written.
    pub fn from_stored(key: String) -> ConfigKey {
        ConfigKey(key)
    }

    /// The key as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ConfigKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A [`TaskConfig`] shared by every task (and the job) with that content: cloning copies a
/// pointer, so a 1,000-instance job holds its config once. Reads go through `Deref`; a write
/// (`DerefMut`) copies the config first if it is shared and forgets the cached key.
///
/// On the wire it is the plain config.
///
/// ```
/// # use aurora_core::SharedTaskConfig;
/// # fn demo(config: aurora_core::TaskConfig) {
/// let a = SharedTaskConfig::from(config);
/// let b = a.clone();
/// assert!(SharedTaskConfig::ptr_eq(&a, &b));
/// let mut c = b.clone();
/// c.priority += 1;
/// assert!(!SharedTaskConfig::ptr_eq(&a, &c) && a.key() != c.key());
/// # }
/// ```
#[derive(Clone)]
pub struct SharedTaskConfig(Arc<Keyed>);

#[derive(Clone)]
struct Keyed {
    config: TaskConfig,
    key: OnceLock<ConfigKey>,
}

impl SharedTaskConfig {
    /// A config with the key it was stored under (keys are fixed once written, even if a later
    /// version would hash the content differently).
    pub fn with_key(config: TaskConfig, key: ConfigKey) -> SharedTaskConfig {
        SharedTaskConfig(Arc::new(Keyed {
            config,
            key: OnceLock::from(key),
        }))
    }

    /// The content key, computed on first use and kept.
    pub fn key(&self) -> &ConfigKey {
        self.0.key.get_or_init(|| ConfigKey::of(&self.0.config))
    }

    /// Whether both are the same shared value (not merely equal).
    pub fn ptr_eq(a: &SharedTaskConfig, b: &SharedTaskConfig) -> bool {
        Arc::ptr_eq(&a.0, &b.0)
    }

    /// A copy of the config itself.
    pub fn to_config(&self) -> TaskConfig {
        self.0.config.clone()
    }
}

impl From<TaskConfig> for SharedTaskConfig {
    fn from(config: TaskConfig) -> SharedTaskConfig {
        SharedTaskConfig(Arc::new(Keyed {
            config,
            key: OnceLock::new(),
        }))
    }
}

impl Deref for SharedTaskConfig {
    type Target = TaskConfig;
    fn deref(&self) -> &TaskConfig {
        &self.0.config
    }
}

impl DerefMut for SharedTaskConfig {
    fn deref_mut(&mut self) -> &mut TaskConfig {
        let keyed = Arc::make_mut(&mut self.0);
        keyed.key = OnceLock::new();
        &mut keyed.config
    }
}

impl AsRef<TaskConfig> for SharedTaskConfig {
    fn as_ref(&self) -> &TaskConfig {
        &self.0.config
    }
}

impl PartialEq for SharedTaskConfig {
    fn eq(&self, other: &SharedTaskConfig) -> bool {
        SharedTaskConfig::ptr_eq(self, other) || self.0.config == other.0.config
    }
}

impl fmt::Debug for SharedTaskConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.config.fmt(f)
    }
}

impl Serialize for SharedTaskConfig {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.config.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for SharedTaskConfig {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<SharedTaskConfig, D::Error> {
        TaskConfig::deserialize(deserializer).map(SharedTaskConfig::from)
    }
}

/// The attributes of a machine (`host`, `rack`, …), each with one or more values, kept
/// compact: one shared slice of `(name, value)` pairs sorted by name then value. Cloning
/// copies a pointer, and the strings may be shared between machines (see
/// [`HostAttributes::from_map_with`]).
///
/// On the wire it is an object of arrays, `{"rack": ["r1"]}`.
///
/// ```
/// use std::collections::{BTreeMap, BTreeSet};
/// use aurora_core::HostAttributes;
/// let attrs = HostAttributes::from(BTreeMap::from([
///     ("rack".to_owned(), BTreeSet::from(["r1".to_owned()])),
///     ("os".to_owned(), BTreeSet::from(["linux".to_owned(), "x86".to_owned()])),
/// ]));
/// assert!(attrs.get("rack").is_some_and(|v| v.iter().any(|v| &**v == "r1")));
/// for (name, values) in &attrs {
///     assert_eq!(values.len(), if &**name == "os" { 2 } else { 1 });
/// }
/// assert_eq!(
///     serde_json::to_string(&attrs).unwrap(),
///     r#"{"os":["linux","x86"],"rack":["r1"]}"#
/// );
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub struct HostAttributes(Arc<[AttributePair]>);

/// One value of one attribute: `(name, value)`.
pub type AttributePair = (Arc<str>, Arc<str>);

/// The values of one attribute, sorted.
#[derive(Debug, Clone, Copy)]
pub struct AttributeValues<'a>(&'a [AttributePair]);

impl<'a> AttributeValues<'a> {
    /// The values.
    pub fn iter(&self) -> impl Iterator<Item = &'a Arc<str>> + 'a {
        self.0.iter().map(|(_, v)| v)
    }

    /// How many values there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none (never, for an attribute that is present).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `value` is one of them.
    pub fn contains(&self, value: &str) -> bool {
        self.0.iter().any(|(_, v)| &**v == value)
    }
}

impl<'a> IntoIterator for AttributeValues<'a> {
    type Item = &'a Arc<str>;
    type IntoIter = std::iter::Map<std::slice::Iter<'a, AttributePair>, PairValue>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter().map(pair_value as PairValue)
    }
}

/// Picks the value of a pair.
type PairValue = for<'p> fn(&'p AttributePair) -> &'p Arc<str>;

fn pair_value(pair: &AttributePair) -> &Arc<str> {
    &pair.1
}

/// The attributes of a [`HostAttributes`], one `(name, values)` at a time, by name.
#[derive(Debug, Clone)]
pub struct Attributes<'a>(&'a [AttributePair]);

impl<'a> Iterator for Attributes<'a> {
    type Item = (&'a Arc<str>, AttributeValues<'a>);
    fn next(&mut self) -> Option<Self::Item> {
        let (name, _) = self.0.first()?;
        let n = self.0.iter().take_while(|(other, _)| other == name).count();
        let (values, rest) = self.0.split_at(n);
        self.0 = rest;
        Some((name, AttributeValues(values)))
    }
}

impl HostAttributes {
    /// Builds attributes from a map, taking every string through `intern` so that equal
    /// names and values can share one allocation.
    pub fn from_map_with(
        map: &BTreeMap<String, BTreeSet<String>>,
        intern: &mut dyn FnMut(&str) -> Arc<str>,
    ) -> HostAttributes {
        let mut pairs = Vec::with_capacity(map.values().map(BTreeSet::len).sum());
        for (name, values) in map {
            let name = intern(name);
            for v in values {
                pairs.push((Arc::clone(&name), intern(v)));
            }
        }
        HostAttributes(pairs.into())
    }

    /// The values of an attribute.
    pub fn get(&self, name: &str) -> Option<AttributeValues<'_>> {
        let start = self.0.partition_point(|(n, _)| &**n < name);
        let n = self.0[start..]
            .iter()
            .take_while(|(n, _)| &**n == name)
            .count();
        (n > 0).then(|| AttributeValues(&self.0[start..start + n]))
    }

    /// Whether the attribute is present.
    pub fn contains_key(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// The attributes with their values, by name.
    pub fn iter(&self) -> Attributes<'_> {
        Attributes(&self.0)
    }

    /// How many attributes there are.
    pub fn len(&self) -> usize {
        self.iter().count()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The attributes as a map.
    pub fn to_map(&self) -> BTreeMap<String, BTreeSet<String>> {
        self.iter()
            .map(|(n, vs)| (n.to_string(), vs.iter().map(|v| v.to_string()).collect()))
            .collect()
    }

    /// Sets an attribute's values (copies the attributes).
    pub fn insert(&mut self, name: String, values: BTreeSet<String>) {
        let mut map = self.to_map();
        map.insert(name, values);
        *self = HostAttributes::from(map);
    }

    /// Removes an attribute (copies the attributes); returns whether it was there.
    pub fn remove(&mut self, name: &str) -> bool {
        let mut map = self.to_map();
        let removed = map.remove(name).is_some();
        *self = HostAttributes::from(map);
        removed
    }
}

impl From<BTreeMap<String, BTreeSet<String>>> for HostAttributes {
    fn from(map: BTreeMap<String, BTreeSet<String>>) -> HostAttributes {
        HostAttributes::from_map_with(&map, &mut |s| Arc::from(s))
    }
}

impl<'a> IntoIterator for &'a HostAttributes {
    type Item = (&'a Arc<str>, AttributeValues<'a>);
    type IntoIter = Attributes<'a>;
    fn into_iter(self) -> Attributes<'a> {
        self.iter()
    }
}

impl fmt::Debug for HostAttributes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(
                self.iter()
                    .map(|(n, vs)| (n, vs.0.iter().map(|(_, v)| v).collect::<Vec<_>>())),
            )
            .finish()
    }
}

impl Serialize for HostAttributes {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(
            self.iter()
                .map(|(n, vs)| (n, vs.0.iter().map(|(_, v)| v).collect::<Vec<_>>())),
        )
    }
}

impl<'de> Deserialize<'de> for HostAttributes {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<HostAttributes, D::Error> {
        BTreeMap::<String, BTreeSet<String>>::deserialize(deserializer).map(HostAttributes::from)
    }
}

#[cfg(feature = "schema")]
impl schemars::JsonSchema for HostAttributes {
    fn inline_schema() -> bool {
        true
    }
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "HostAttributes".into()
    }
    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        BTreeMap::<String, BTreeSet<String>>::json_schema(generator)
    }
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
    /// What each instance runs (shared with the job's tasks).
    pub task_config: SharedTaskConfig,
    /// How many instances.
    pub instance_count: u32,
    /// How rolling updates of the job proceed; Aurora 0.6's defaults when absent.
    // Defaulted so that records stored and requests written before the field existed still read.
    #[serde(default)]
    pub update_config: UpdateSettings,
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
    /// What it runs (shared with every task of the same config).
    pub task: SharedTaskConfig,
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
