//! The JSON wire types of the scheduler's HTTP API, shared by the scheduler, the executor and
//! the client. They are plain data; the endpoints that carry them are listed in
//! ARCHITECTURE.md ("HTTP API").
//!
//! Client endpoints:
//! - `POST /api/jobs` [`CreateJobRequest`] → [`CreateJobResponse`]
//! - `GET /api/jobs?role=R` → [`JobsResponse`]
//! - `GET /api/tasks?role=R&environment=E&name=N&statuses=S1,S2` → [`TasksResponse`]
//! - `POST /api/jobs/{role}/{environment}/{name}/kill` [`KillRequest`] → [`KillResponse`]
//! - `POST /api/jobs/{role}/{environment}/{name}/instances` [`AddInstancesRequest`] →
//!   [`AddInstancesResponse`]
//! - `POST /api/jobs/{role}/{environment}/{name}/restart` [`RestartRequest`] →
//!   [`RestartResponse`]
//! - `GET /api/quota/{role}` → [`QuotaResponse`]
//! - `POST /api/jobs/{role}/{environment}/{name}/lock` [`AcquireLockRequest`] → [`Lock`]
//! - `POST /api/jobs/{role}/{environment}/{name}/unlock` [`ReleaseLockRequest`] → the [`Lock`]
//!   released
//! - `GET /api/locks` → [`LocksResponse`]; `GET /locks` → the original's JSON page
//! - `GET /pendingtasks` → task id → why it is pending
//!
//! Admin endpoints:
//! - `POST /api/admin/quota/{role}` [`SetQuotaRequest`] → [`QuotaResponse`]
//! - `POST /api/admin/maintenance/{start,drain,end}` [`HostsRequest`] → [`MaintenanceResponse`]
//! - `GET /api/admin/maintenance` → [`MaintenanceResponse`]
//! - `POST /api/admin/backup` → [`BackupResponse`]; `GET /api/admin/backups` →
//!   [`BackupsResponse`]; `POST /api/admin/restore` [`RestoreRequest`] → [`Ack`]
//! - `POST /api/admin/snapshot`
//!
//! Executor endpoints:
//! - `POST /api/executors` [`RegisterExecutorRequest`] → [`ExecutorWork`]
//! - `POST /api/executors/{host}/heartbeat` [`HeartbeatRequest`] → [`ExecutorWork`]
//! - `POST /api/executors/{host}/status` [`StatusUpdate`] → [`Ack`]
//!
//! Every error is an HTTP 4xx/5xx status with an [`ApiError`] body.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::{
    AssignedTask, JobConfiguration, JobKey, MaintenanceMode, ResourceAggregate, ScheduleStatus,
    ScheduledTask, TaskConfig, TaskId,
};

/// The body of every failed request.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiError {
    /// A machine-readable class of error.
    pub code: ErrorCode,
    /// What went wrong and what to do, for a person.
    pub message: String,
}

/// Classes of API errors, after the original's response codes.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[non_exhaustive]
pub enum ErrorCode {
    /// The request is malformed or asks for something invalid (HTTP 400).
    InvalidRequest,
    /// The job, task or executor named does not exist (HTTP 404).
    NotFound,
    /// The request conflicts with current state, e.g. the job exists (HTTP 409).
    Conflict,
    /// The scheduler failed, e.g. its storage (HTTP 500); retrying may help.
    Error,
    /// The job is locked (by an update) and the request did not carry the lock's token, or
    /// carried a token that is not the lock's (HTTP 409; the original's `LOCK_ERROR`).
    Locked,
}

/// `POST /api/jobs`: create a job and its instances.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CreateJobRequest {
    /// The job to create.
    pub job: JobConfiguration,
}

/// The answer to [`CreateJobRequest`].
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateJobResponse {
    /// A summary for people, e.g. `1 new tasks pending for job www-data/prod/hello`.
    pub message: String,
    /// The ids of the tasks created.
    pub task_ids: Vec<TaskId>,
}

/// One job in [`JobsResponse`].
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobSummary {
    /// The job's key.
    pub key: JobKey,
    /// Its instance count.
    pub instance_count: u32,
    /// How many of its tasks are in each state.
    pub task_counts: BTreeMap<ScheduleStatus, u32>,
}

/// `GET /api/jobs`: the jobs the scheduler knows.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobsResponse {
    /// The jobs, sorted by key.
    pub jobs: Vec<JobSummary>,
}

/// `GET /api/tasks`: tasks matching a query.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TasksResponse {
    /// The tasks, sorted by instance then by the time of their first event.
    pub tasks: Vec<ScheduledTask>,
    /// Why each PENDING or THROTTLED task among them is not running yet, for people.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub pending_reasons: BTreeMap<TaskId, String>,
}

/// `POST /api/jobs/{role}/{environment}/{name}/kill`.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KillRequest {
    /// The instances to kill; all when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instances: Option<BTreeSet<u32>>,
    /// Why, recorded in the tasks' history.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The token of the job's [`Lock`], when the caller holds it; a locked job refuses
    /// callers without it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lock_token: Option<String>,
}

/// The answer to [`KillRequest`].
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KillResponse {
    /// A summary for people.
    pub message: String,
    /// The tasks that were asked to die.
    pub killed: Vec<TaskId>,
}

/// An inclusive range of port numbers a machine offers.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortRange {
    /// The first port.
    pub begin: u16,
    /// The last port.
    pub end: u16,
}

/// The capacity a machine offers to tasks.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MachineResources {
    /// CPU cores.
    pub cpu: f64,
    /// Memory in bytes.
    pub ram_bytes: u64,
    /// Disk in bytes.
    pub disk_bytes: u64,
    /// Ports tasks may be given.
    pub ports: PortRange,
}

/// `POST /api/executors`: an executor announces its machine.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegisterExecutorRequest {
    /// The machine's host name; it identifies the executor.
    pub host: String,
    /// Attributes for constraints, e.g. `host` and `rack`; an attribute may have several values.
    pub attributes: BTreeMap<String, BTreeSet<String>>,
    /// What it offers.
    pub resources: MachineResources,
    /// The tasks it is already running (after an executor restart).
    #[serde(default)]
    pub tasks: Vec<ExecutorTaskState>,
}

/// A task as the executor sees it.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecutorTaskState {
    /// The task.
    pub task_id: TaskId,
    /// Its state on the machine.
    pub status: ScheduleStatus,
}

/// `POST /api/executors/{host}/heartbeat`: the executor is alive and runs these tasks.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeartbeatRequest {
    /// Every task the executor holds that is not yet reported terminal.
    pub tasks: Vec<ExecutorTaskState>,
}

/// What the scheduler wants an executor to do, returned by registration and heartbeats.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ExecutorWork {
    /// Tasks to start.
    pub launch: Vec<AssignedTask>,
    /// Tasks to kill.
    pub kill: Vec<TaskId>,
    /// How long to wait before the next heartbeat, in milliseconds.
    pub heartbeat_interval_ms: u64,
}

/// `POST /api/executors/{host}/status`: a task changed state on the machine.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusUpdate {
    /// The task.
    pub task_id: TaskId,
    /// Its new state: STARTING, RUNNING, FINISHED, FAILED, KILLED or LOST.
    pub status: ScheduleStatus,
    /// Why, for people (e.g. the failing process and its exit code).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// An empty acknowledgement: the change is durable.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ack {}

/// `POST /api/jobs/{role}/{environment}/{name}/instances`: add instances, or replace inactive
/// ones, with a given task configuration (e.g. a canary running a new config next to the old).
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AddInstancesRequest {
    /// What the new instances run; its `job` must be the job of the path.
    pub task_config: TaskConfig,
    /// The instance ids to create; none of them may be active.
    pub instances: BTreeSet<u32>,
    /// The token of the job's [`Lock`], when the caller holds it; a locked job refuses
    /// callers without it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lock_token: Option<String>,
}

/// The answer to [`AddInstancesRequest`].
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddInstancesResponse {
    /// A summary for people.
    pub message: String,
    /// The tasks created.
    pub task_ids: Vec<TaskId>,
}

/// `POST /api/jobs/{role}/{environment}/{name}/restart`: kill running instances so that they
/// are rescheduled (through RESTARTING).
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestartRequest {
    /// The instances to restart; all when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instances: Option<BTreeSet<u32>>,
    /// The token of the job's [`Lock`], when the caller holds it; a locked job refuses
    /// callers without it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lock_token: Option<String>,
}

/// The answer to [`RestartRequest`].
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestartResponse {
    /// A summary for people.
    pub message: String,
    /// The tasks that were asked to restart.
    pub restarted: Vec<TaskId>,
}

/// `GET /api/quota/{role}`: a role's quota and what its tasks use.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QuotaResponse {
    /// The role.
    pub role: String,
    /// The quota for production work (zero when none was set).
    pub quota: ResourceAggregate,
    /// What the role's active production tasks use.
    pub prod_consumption: ResourceAggregate,
    /// What the role's active non-production tasks use (not limited).
    pub non_prod_consumption: ResourceAggregate,
}

/// `POST /api/admin/quota/{role}`: set a role's quota. Signed so that a negative value is
/// answered with a clear error.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SetQuotaRequest {
    /// CPU cores.
    pub cpu: f64,
    /// Memory in bytes.
    pub ram_bytes: i64,
    /// Disk in bytes.
    pub disk_bytes: i64,
}

/// `POST /api/admin/maintenance/{start,drain,end}`: the hosts to act on.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostsRequest {
    /// Host names.
    pub hosts: Vec<String>,
}

/// The maintenance mode of hosts.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MaintenanceResponse {
    /// Mode by host; hosts in service are omitted from `GET /api/admin/maintenance`.
    pub hosts: BTreeMap<String, MaintenanceMode>,
}

/// `POST /api/admin/backup`: the backup written.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupResponse {
    /// Its name, for [`RestoreRequest`].
    pub name: String,
    /// The file on the scheduler's machine.
    pub path: String,
}

/// `GET /api/admin/backups`: the backups available, oldest first.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupsResponse {
    /// Backup names.
    pub backups: Vec<String>,
}

/// `POST /api/admin/restore`: replace the whole state with a backup.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestoreRequest {
    /// The name of a backup listed by `GET /api/admin/backups`.
    pub backup: String,
}

/// A job's lock: whoever holds it (an update) is the only one who may kill, restart or add
/// instances of the job, by passing its `token`. After the original's `Lock` with a job
/// `LockKey`.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lock {
    /// The job locked.
    pub key: JobKey,
    /// The secret that proves holding the lock; generated by the scheduler.
    pub token: String,
    /// Who acquired it.
    pub user: String,
    /// When it was acquired, in milliseconds since the Unix epoch.
    pub timestamp_ms: i64,
    /// Why, for people (e.g. `update to version 42`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// `POST /api/jobs/{role}/{environment}/{name}/lock`: lock a job; refused with
/// [`ErrorCode::Locked`] while another lock is held.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AcquireLockRequest {
    /// Who takes the lock.
    pub user: String,
    /// Why, shown to whoever is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// How [`ReleaseLockRequest`] checks the caller, after the original's `LockValidation`.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum LockValidation {
    /// Release only when the token is the lock's (the holder finishing its work).
    #[default]
    Checked,
    /// Release whatever lock is held (`aurora cancel_update`).
    Unchecked,
}

/// `POST /api/jobs/{role}/{environment}/{name}/unlock`: release a job's lock.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseLockRequest {
    /// The lock's token; required by [`LockValidation::Checked`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// Whether the token is checked (the default).
    #[serde(default)]
    pub validation: LockValidation,
}

/// `GET /api/locks`: every lock held.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocksResponse {
    /// The locks, sorted by job key.
    pub locks: Vec<Lock>,
}

/// A shared task config is the plain [`TaskConfig`] on the wire: the same schema, under the
/// same name, so the API documents one `TaskConfig`.
#[cfg(feature = "schema")]
impl schemars::JsonSchema for crate::SharedTaskConfig {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        TaskConfig::schema_name()
    }
    fn schema_id() -> std::borrow::Cow<'static, str> {
        TaskConfig::schema_id()
    }
    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        TaskConfig::json_schema(generator)
    }
}
