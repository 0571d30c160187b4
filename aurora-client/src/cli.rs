//! The one entry point of the `aurora` binary: a parsed command line ([`Request`]) in, an
//! [`Output`] or a [`CommandError`] (with its exit code) out. The binary only parses
//! arguments into a `Request`, supplies the config loader and prints.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use aurora_core::{JobKey, JobPath};

use crate::Clusters;
use crate::commands::{self, CommandError, ConfigLoader, ConfigSource, LoadedJob, WaitUntil};
use crate::diff;
use crate::render::Output;

/// A config file named on the command line and how to read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigArg {
    /// The file.
    pub path: PathBuf,
    /// `-E NAME=VALUE` bindings.
    pub bindings: Vec<(String, String)>,
    /// `-j`: the file is JSON whatever its name; a `.json` name means JSON too.
    pub json: bool,
}

impl ConfigArg {
    fn source(&self) -> ConfigSource<'_> {
        ConfigSource {
            path: &self.path,
            json: self.json || self.path.extension().is_some_and(|e| e == "json"),
            bindings: &self.bindings,
        }
    }
}

/// A maintenance step of `aurora admin host_*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MaintenanceStep {
    /// `host_deactivate`: announce maintenance; the hosts keep their tasks.
    Start,
    /// `host_drain`: move the hosts' tasks elsewhere.
    Drain,
    /// `host_activate`: put the hosts back in service.
    End,
}

impl MaintenanceStep {
    fn endpoint(self) -> &'static str {
        match self {
            MaintenanceStep::Start => "start",
            MaintenanceStep::Drain => "drain",
            MaintenanceStep::End => "end",
        }
    }
}

/// One `aurora` command, as parsed from the command line.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Request {
    /// `aurora create`.
    Create {
        /// The job key.
        job_key: JobKey,
        /// The config defining the job.
        config: ConfigArg,
        /// The state to wait for.
        wait_until: WaitUntil,
        /// How long to wait for it.
        wait_timeout: Duration,
    },
    /// `aurora status`.
    Status {
        /// The job key.
        job_key: JobKey,
        /// A config, checked to define the job.
        config: Option<ConfigArg>,
    },
    /// `aurora validate`.
    Validate {
        /// The config.
        config: ConfigArg,
    },
    /// `aurora inspect`.
    Inspect {
        /// The job key.
        job_key: JobKey,
        /// The config defining the job.
        config: ConfigArg,
        /// Print the scheduler-side configuration.
        raw: bool,
    },
    /// `aurora kill` (some instances) and `aurora killall` (`instances: None`).
    Kill {
        /// The job key.
        job_key: JobKey,
        /// A config, only for its hooks.
        config: Option<ConfigArg>,
        /// The instances to kill; all when absent.
        instances: Option<BTreeSet<u32>>,
        /// How long to wait for the tasks to end; `None` returns at once.
        wait_timeout: Option<Duration>,
    },
    /// `aurora restart`.
    Restart {
        /// The job key.
        job_key: JobKey,
        /// The instances to restart; all when absent.
        instances: Option<BTreeSet<u32>>,
    },
    /// `aurora cancel_update`.
    CancelUpdate {
        /// The job key.
        job_key: JobKey,
        /// A config, only for its hooks.
        config: Option<ConfigArg>,
    },
    /// `aurora diff`: what an update to `config` would change.
    Diff {
        /// The job key the config defines.
        job_key: JobKey,
        /// The config.
        config: ConfigArg,
        /// `--from`: the running job to compare with, when it differs from `job_key` (a
        /// renamed job); `job_key` otherwise.
        from: Option<JobKey>,
        /// The viewer command (`$DIFF_VIEWER`, default `diff`), run through `sh -c`.
        viewer: String,
    },
    /// `aurora list_jobs`.
    ListJobs {
        /// cluster/role, cluster/role/env or a job key.
        path: JobPath,
    },
    /// `aurora get_quota`.
    GetQuota {
        /// cluster/role.
        path: JobPath,
    },
    /// `aurora admin set_quota`.
    SetQuota {
        /// The cluster.
        cluster: String,
        /// The role.
        role: String,
        /// CPU cores.
        cpu: f64,
        /// RAM in bytes.
        ram_bytes: i64,
        /// Disk in bytes.
        disk_bytes: i64,
    },
    /// `aurora admin host_{deactivate,drain,activate}` (a step) and `host_status` (none).
    Maintenance {
        /// The cluster.
        cluster: String,
        /// The step; `None` only shows the hosts in maintenance.
        step: Option<MaintenanceStep>,
        /// The hosts to act on.
        hosts: Vec<String>,
    },
    /// `aurora admin get_locks`.
    GetLocks {
        /// The cluster.
        cluster: String,
    },
    /// `aurora admin scheduler_backup_now`.
    Backup {
        /// The cluster.
        cluster: String,
    },
}

/// The user who submits jobs: `$USER`, else `$LOGNAME`, as the original client took it.
pub fn submitting_user() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "unknown".to_owned())
}

/// Runs one command: configs are read with `loader`, clusters discovered from the usual
/// `clusters.json` files (only by commands that talk to a scheduler) and progress lines handed
/// to `progress`.
pub fn run(
    request: Request,
    loader: &dyn ConfigLoader,
    progress: &mut dyn FnMut(&str),
) -> Result<Output, CommandError> {
    let user = submitting_user();
    let load = |config: &ConfigArg, key: &JobKey| loader.load(&config.source(), key, &user);
    let load_optional =
        |config: Option<&ConfigArg>, key: &JobKey| -> Result<Option<LoadedJob<'_>>, CommandError> {
            config.map(|c| load(c, key)).transpose()
        };
    // Inspect and validate read only the config; the others find their cluster first, so a
    // bad clusters.json is reported before any config is run.
    let offline = matches!(request, Request::Inspect { .. } | Request::Validate { .. });
    let clusters = if offline {
        Clusters::default()
    } else {
        Clusters::discover()?
    };
    let client = |cluster: &str| commands::client_for(&clusters, cluster);
    match request {
        Request::Inspect {
            job_key,
            config,
            raw,
        } => commands::inspect(loader, &config.source(), &job_key, &user, raw),
        Request::Validate { config } => commands::validate(loader, &config.source(), &user),
        Request::Create {
            job_key,
            config,
            wait_until,
            wait_timeout,
        } => {
            let loaded = load(&config, &job_key)?;
            let client = client(job_key.cluster())?;
            commands::create(&client, &loaded, wait_until, wait_timeout, progress)
        }
        Request::Status { job_key, config } => {
            load_optional(config.as_ref(), &job_key)?;
            commands::status(&client(job_key.cluster())?, &job_key)
        }
        Request::Kill {
            job_key,
            config,
            instances,
            wait_timeout,
        } => {
            let loaded = load_optional(config.as_ref(), &job_key)?;
            let client = client(job_key.cluster())?;
            commands::kill(
                &client,
                &job_key,
                instances,
                loaded.as_ref(),
                wait_timeout,
                progress,
            )
        }
        Request::CancelUpdate { job_key, config } => {
            let loaded = load_optional(config.as_ref(), &job_key)?;
            let client = client(job_key.cluster())?;
            commands::cancel_update(&client, &job_key, loaded.as_ref(), progress)
        }
        Request::Restart { job_key, instances } => {
            commands::restart(&client(job_key.cluster())?, &job_key, instances)
        }
        Request::Diff {
            job_key,
            config,
            from,
            viewer,
        } => {
            let loaded = load(&config, &job_key)?;
            let remote = from.unwrap_or_else(|| job_key.clone());
            let client = client(remote.cluster())?;
            diff::diff(&client, &loaded.converted.job, &remote, &viewer)
        }
        Request::ListJobs { path } => commands::list_jobs(&client(path.cluster())?, &path),
        Request::GetQuota { path } => {
            let Some(role) = path.role() else {
                return Err(CommandError::Usage(format!(
                    "get_quota needs cluster/role, not {path}"
                )));
            };
            commands::get_quota(&client(path.cluster())?, role)
        }
        Request::SetQuota {
            cluster,
            role,
            cpu,
            ram_bytes,
            disk_bytes,
        } => commands::set_quota(&client(&cluster)?, &role, cpu, ram_bytes, disk_bytes),
        Request::Maintenance {
            cluster,
            step,
            hosts,
        } => commands::maintenance(
            &client(&cluster)?,
            step.map(MaintenanceStep::endpoint),
            hosts,
        ),
        Request::GetLocks { cluster } => commands::get_locks(&client(&cluster)?),
        Request::Backup { cluster } => commands::backup(&client(&cluster)?),
    }
}
