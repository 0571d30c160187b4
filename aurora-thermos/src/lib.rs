//! aurora-thermos runs Aurora tasks on a machine. The Thermos runner ([`TaskRunner`]) starts a
//! task's processes (`bash -c` in a sandbox, with a scrubbed environment and per-run log files)
//! in the order their constraints give, retries them, runs the final processes, kills every
//! process of the task (descendants that left its process groups included) and appends each
//! state change to a checkpoint. The executor agent ([`Agent`]) registers the machine with the
//! scheduler, heartbeats, runs the tasks it is given with the runner and reports their states.
//! The [`Observer`] serves a read-only JSON API over the tasks' checkpoints and logs, and
//! [`cli`] holds the commands of the `thermos` tool.
//!
//! It does not decide where tasks run or whether they are rescheduled (the scheduler does), and
//! it does not evaluate configuration: it binds what only the machine knows (instance, task id,
//! user, ports) into the task it receives and interpolates it with `aurora-config`'s Pystachio
//! engine, failing the task if any reference is left unbound.

mod agent;
mod checkpoint;
pub mod cli;
mod health;
mod layout;
mod observe;
mod observer;
mod reaper;
mod runner;
mod sampler;
mod signals;
mod spec;
mod state;
mod template;
#[doc(hidden)]
pub mod test_support;
mod tree;

pub use agent::{Agent, AgentConfig, AgentError, local_hostname, machine_resources};
pub use checkpoint::{Checkpoint, CheckpointError, CheckpointRecord, TornTail, read_checkpoint};
pub use health::HealthCheckConfig;
pub use layout::TaskLayout;
pub use observe::{ProcessHistory, RunView, TaskView, ViewError, find_checkpoints, tail_file};
pub use observer::{Observer, ObserverError};
pub use runner::{
    ProcessStatus, RunOptions, RunSpec, RunnerError, RunnerHandle, TaskRunner, TaskStatus,
    UserMode, log_path,
};
pub use sampler::{ResourceSampler, ResourceUsage, SamplerRegistration, directory_size};
pub use signals::default_task_id;
pub use spec::{InvalidTask, OrderConstraint, ProcessSpec, TaskResources, TaskSpec};
pub use state::{ProcessState, TaskState};
pub use template::{BindError, Bindings, BoundTask, bind_task};
pub use tree::is_alive;
