//! A blocking client for the scheduler's JSON HTTP API.

use std::collections::BTreeSet;
use std::time::Duration;

use aurora_core::api::{
    AcquireLockRequest, ApiError, BackupResponse, CreateJobRequest, CreateJobResponse,
    HostsRequest, JobsResponse, KillRequest, KillResponse, Lock, LockValidation, LocksResponse,
    MaintenanceResponse, QuotaResponse, ReleaseLockRequest, RestartRequest, RestartResponse,
    SetQuotaRequest, TasksResponse,
};
use aurora_core::{JobConfiguration, JobKey, ScheduleStatus};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Why a call to the scheduler failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The scheduler could not be reached.
    #[error("cannot reach the scheduler at {url}: {source}; is it running?")]
    Transport {
        /// The URL called.
        url: String,
        /// The transport error.
        source: reqwest::Error,
    },
    /// The scheduler answered with an error.
    #[error("scheduler refused {what}: {message} (HTTP {status})")]
    Api {
        /// What was asked.
        what: String,
        /// The HTTP status.
        status: u16,
        /// The scheduler's error class.
        code: Option<aurora_core::api::ErrorCode>,
        /// The scheduler's message.
        message: String,
    },
    /// The scheduler's answer could not be understood.
    #[error("cannot understand the scheduler's answer to {what}: {message}")]
    Decode {
        /// What was asked.
        what: String,
        /// What went wrong.
        message: String,
    },
}

/// A client of one scheduler.
///
/// ```no_run
/// use aurora_client::SchedulerClient;
/// let client = SchedulerClient::new("http://localhost:8081").unwrap();
/// let jobs = client.list_jobs(Some("www-data")).unwrap();
/// println!("{} jobs", jobs.jobs.len());
/// ```
#[derive(Debug, Clone)]
pub struct SchedulerClient {
    base: String,
    http: reqwest::blocking::Client,
}

impl SchedulerClient {
    /// A client for the scheduler at `base_url` (e.g. `http://localhost:8081`).
    pub fn new(base_url: &str) -> Result<SchedulerClient, ClientError> {
        let http = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|source| ClientError::Transport {
                url: base_url.to_owned(),
                source,
            })?;
        Ok(SchedulerClient {
            base: base_url.trim_end_matches('/').to_owned(),
            http,
        })
    }

    /// The scheduler's base URL.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// The scheduler UI page of a job.
    pub fn job_url(&self, key: &JobKey) -> String {
        format!("{}/scheduler/{}", self.base, key.path_in_cluster())
    }

    /// Creates a job; its tasks start PENDING.
    pub fn create_job(&self, job: &JobConfiguration) -> Result<CreateJobResponse, ClientError> {
        self.post(
            "/api/jobs",
            &CreateJobRequest { job: job.clone() },
            "create job",
        )
    }

    /// Kills a job's tasks, or only the given instances.
    pub fn kill_job(
        &self,
        key: &JobKey,
        instances: Option<BTreeSet<u32>>,
    ) -> Result<KillResponse, ClientError> {
        let path = format!("/api/jobs/{}/kill", key.path_in_cluster());
        let request = KillRequest {
            instances,
            ..KillRequest::default()
        };
        self.post(&path, &request, &format!("kill of {key}"))
    }

    /// The tasks of a job (every state, history included), or only those in `statuses`.
    pub fn job_tasks(
        &self,
        key: &JobKey,
        statuses: &[ScheduleStatus],
    ) -> Result<TasksResponse, ClientError> {
        let mut query = vec![
            ("role", key.role().to_owned()),
            ("environment", key.environment().to_owned()),
            ("name", key.name().to_owned()),
        ];
        if !statuses.is_empty() {
            let list: Vec<&str> = statuses.iter().map(|s| s.as_str()).collect();
            query.push(("statuses", list.join(",")));
        }
        self.get("/api/tasks", &query, &format!("status of {key}"))
    }

    /// Summaries of the jobs of a role, or of every job.
    pub fn list_jobs(&self, role: Option<&str>) -> Result<JobsResponse, ClientError> {
        let query: Vec<(&str, String)> = role
            .map(|r| vec![("role", r.to_owned())])
            .unwrap_or_default();
        self.get("/api/jobs", &query, "job list")
    }

    /// Restarts a job's running tasks (all, or the given instances): they are killed and
    /// rescheduled through RESTARTING.
    pub fn restart(
        &self,
        key: &JobKey,
        instances: Option<BTreeSet<u32>>,
    ) -> Result<RestartResponse, ClientError> {
        let path = format!("/api/jobs/{}/restart", key.path_in_cluster());
        self.post(
            &path,
            &RestartRequest {
                instances,
                ..RestartRequest::default()
            },
            &format!("restart of {key}"),
        )
    }

    /// Locks a job for `user`, as an update does before it changes the job; fails with
    /// [`aurora_core::api::ErrorCode::Locked`] (naming the holder) while another lock is held.
    /// Pass the returned token to calls that change the job.
    ///
    /// ```no_run
    /// use aurora_client::SchedulerClient;
    /// use aurora_core::api::LockValidation;
    /// let client = SchedulerClient::new("http://localhost:8081").unwrap();
    /// let key = "devcluster/www-data/prod/hello".parse().unwrap();
    /// let lock = client.acquire_lock(&key, "alice", Some("update to v2")).unwrap();
    /// // ... change the job, passing `lock.token` ...
    /// client.release_lock(&key, Some(&lock.token), LockValidation::Checked).unwrap();
    /// ```
    pub fn acquire_lock(
        &self,
        key: &JobKey,
        user: &str,
        message: Option<&str>,
    ) -> Result<Lock, ClientError> {
        let path = format!("/api/jobs/{}/lock", key.path_in_cluster());
        let request = AcquireLockRequest {
            user: user.to_owned(),
            message: message.map(str::to_owned),
        };
        self.post(&path, &request, &format!("lock of {key}"))
    }

    /// Releases a job's lock and returns it: with [`LockValidation::Checked`] only when
    /// `token` is the lock's, with [`LockValidation::Unchecked`] whatever is held (what
    /// `aurora cancel_update` does). Fails with HTTP 404 when the job is not locked.
    pub fn release_lock(
        &self,
        key: &JobKey,
        token: Option<&str>,
        validation: LockValidation,
    ) -> Result<Lock, ClientError> {
        let path = format!("/api/jobs/{}/unlock", key.path_in_cluster());
        let request = ReleaseLockRequest {
            token: token.map(str::to_owned),
            validation,
        };
        self.post(&path, &request, &format!("release of the lock of {key}"))
    }

    /// Every lock the scheduler holds, sorted by job.
    pub fn get_locks(&self) -> Result<LocksResponse, ClientError> {
        self.get("/api/locks", &[], "lock list")
    }

    /// A role's production quota and what its tasks consume.
    pub fn get_quota(&self, role: &str) -> Result<QuotaResponse, ClientError> {
        self.get(
            &format!("/api/quota/{role}"),
            &[],
            &format!("quota of {role}"),
        )
    }

    /// Sets a role's production quota (an administrator's call).
    pub fn set_quota(
        &self,
        role: &str,
        quota: &SetQuotaRequest,
    ) -> Result<QuotaResponse, ClientError> {
        self.post(
            &format!("/api/admin/quota/{role}"),
            quota,
            &format!("quota of {role}"),
        )
    }

    /// Moves hosts into a maintenance step: `start` (announce), `drain` (move tasks off) or
    /// `end` (back in service).
    pub fn maintenance(
        &self,
        step: &str,
        hosts: Vec<String>,
    ) -> Result<MaintenanceResponse, ClientError> {
        let path = format!("/api/admin/maintenance/{step}");
        self.post(
            &path,
            &HostsRequest { hosts },
            &format!("maintenance {step}"),
        )
    }

    /// The hosts in maintenance and their mode.
    pub fn maintenance_status(&self) -> Result<MaintenanceResponse, ClientError> {
        self.get("/api/admin/maintenance", &[], "maintenance status")
    }

    /// Writes a backup of the scheduler's state on its machine.
    pub fn backup(&self) -> Result<BackupResponse, ClientError> {
        self.post("/api/admin/backup", &serde_json::json!({}), "backup")
    }

    fn post<B: Serialize, R: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
        what: &str,
    ) -> Result<R, ClientError> {
        let url = format!("{}{path}", self.base);
        send(self.http.post(&url).json(body), &url, what)
    }

    fn get<R: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, String)],
        what: &str,
    ) -> Result<R, ClientError> {
        let url = format!("{}{path}", self.base);
        send(self.http.get(&url).query(query), &url, what)
    }
}

fn send<R: DeserializeOwned>(
    request: reqwest::blocking::RequestBuilder,
    url: &str,
    what: &str,
) -> Result<R, ClientError> {
    let response = request.send().map_err(|source| ClientError::Transport {
        url: url.to_owned(),
        source,
    })?;
    decode(response, what)
}

fn decode<R: DeserializeOwned>(
    response: reqwest::blocking::Response,
    what: &str,
) -> Result<R, ClientError> {
    let status = response.status();
    let body = response.text().map_err(|e| ClientError::Decode {
        what: what.to_owned(),
        message: e.to_string(),
    })?;
    if !status.is_success() {
        let (code, message) = match serde_json::from_str::<ApiError>(&body) {
            Ok(err) => (Some(err.code), err.message),
            Err(_) => (None, body.trim().to_owned()),
        };
        return Err(ClientError::Api {
            what: what.to_owned(),
            status: status.as_u16(),
            code,
            message,
        });
    }
    serde_json::from_str(&body).map_err(|e| ClientError::Decode {
        what: what.to_owned(),
        message: e.to_string(),
    })
}
