//! The domain of aurora-rs: job keys, instance sets, the job and task model, the task state
//! machine, placement and the JSON wire types of the scheduler's HTTP API.
//!
//! This crate must not do I/O: no files, sockets, processes, clock reads, async runtime or
//! Python. Time always comes in as an argument (milliseconds since the Unix epoch), and the
//! scheduler, executor and client crates apply the plans and transitions computed here.

pub mod api;
mod instances;
mod jobkey;
mod lifecycle;
mod model;
mod placement;
mod preemption;
mod quota;
mod status;
mod transition;
mod update;

pub use instances::{InstanceSet, InstanceSetError};
pub use jobkey::{JobKey, JobKeyError, JobKeyPart, JobPath, is_valid_environment};
pub use lifecycle::{
    LifecycleConfig, flapped, flapping_penalty_ms, is_transient, transient_state_expired,
};
pub use model::{
    AssignedTask, AttributePair, AttributeValues, Attributes, ConfigKey, Constraint,
    CronCollisionPolicy, ExecutorConfig, HostAttributes, Identity, JobConfiguration, Resources,
    ScheduledTask, SharedTaskConfig, TaskConfig, TaskConstraint, TaskEvent, TaskId,
};
pub use placement::{
    Assignment, ClusterView, DEDICATED_ATTRIBUTE, DedicatedError, MaintenanceMode, PlacementConfig,
    PlacementHost, PlacementInput, PlacementPlan, Unplaced, add_default_constraints, place,
    validate_dedicated,
};
pub use preemption::{PreemptionInput, PreemptionPlan, can_preempt, find_preemption};
pub use quota::{QuotaError, ResourceAggregate, check_quota, consumes_quota};
pub use status::{ScheduleStatus, UnknownStatus};
pub use transition::{
    SideEffects, TaskFacts, TaskTarget, Transition, reschedules_after_failure, transition,
};
pub use update::{
    ControlError, HealthCheckTiming, InstanceEvent, InstanceOutcome, UpdateAction, UpdateError,
    UpdateInput, UpdatePlan, UpdateRequest, UpdateSettings, UpdateStatus, UpdateStep, UpdateTarget,
};
