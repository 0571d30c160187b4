//! The HTTP API: routes of [`aurora_core::api`] plus `/health`, `/vars`, `/vars.json`,
//! `/pendingtasks`, `/locks`, the admin endpoints and the OpenAPI document at
//! `/api/openapi.json`.
//! Bodies are parsed here so that every malformed request gets an
//! [`aurora_core::api::ApiError`] naming what is wrong.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use aurora_core::api::{
    Ack, AcquireLockRequest, AddInstancesRequest, BackupResponse, BackupsResponse,
    CreateJobRequest, ErrorCode, HeartbeatRequest, HostsRequest, KillRequest, LocksResponse,
    RegisterExecutorRequest, ReleaseLockRequest, RestartRequest, RestoreRequest, SetQuotaRequest,
    StatusUpdate,
};
use aurora_core::{MaintenanceMode, ScheduleStatus};
use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::de::DeserializeOwned;

use crate::RequestError;
use crate::engine::{Engine, TaskQuery};
use crate::service::Shared;

type AppState = State<Arc<Shared>>;
type Params = Result<Query<BTreeMap<String, String>>, QueryRejection>;

/// The largest request body accepted, so that one request cannot hold unbounded memory; a job
/// with its executor payload is a few KB, a heartbeat about 100 bytes per task.
pub(crate) const MAX_BODY_BYTES: usize = 2 << 20;

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/health", get(|| async { "OK" }))
        .route("/vars", get(vars_text))
        .route("/vars.json", get(vars_json))
        .route("/pendingtasks", get(pending_tasks))
        .route("/api/jobs", post(create_job).get(list_jobs))
        .route("/api/tasks", get(list_tasks))
        .route("/api/jobs/{role}/{environment}/{name}/kill", post(kill_job))
        .route(
            "/api/jobs/{role}/{environment}/{name}/instances",
            post(add_instances),
        )
        .route(
            "/api/jobs/{role}/{environment}/{name}/restart",
            post(restart),
        )
        .route(
            "/api/jobs/{role}/{environment}/{name}/lock",
            post(acquire_lock),
        )
        .route(
            "/api/jobs/{role}/{environment}/{name}/unlock",
            post(release_lock),
        )
        .route("/api/locks", get(list_locks))
        .route("/locks", get(locks_page))
        .route("/api/quota/{role}", get(get_quota))
        .route("/api/admin/quota/{role}", post(set_quota))
        .route("/api/admin/maintenance", get(maintenance_status))
        .route("/api/admin/maintenance/start", post(maintenance_start))
        .route("/api/admin/maintenance/drain", post(maintenance_drain))
        .route("/api/admin/maintenance/end", post(maintenance_end))
        .route("/api/admin/backup", post(backup))
        .route("/api/admin/backups", get(list_backups))
        .route("/api/admin/restore", post(restore))
        .route("/api/openapi.json", get(openapi))
        .route("/api/executors", post(register))
        .route("/api/executors/{host}/heartbeat", post(heartbeat))
        .route("/api/executors/{host}/status", post(status))
        .route("/api/admin/snapshot", post(snapshot))
        .fallback(not_found)
        .with_state(shared)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::map_response(explain_too_large))
}

/// Replaces the plain-text answer to an oversized body with an [`aurora_core::api::ApiError`]
/// that names the limit.
async fn explain_too_large(resp: Response) -> Response {
    if resp.status() != StatusCode::PAYLOAD_TOO_LARGE {
        return resp;
    }
    let error = RequestError::invalid(format!(
        "the request body is larger than {} MiB, the most this scheduler accepts; send a smaller one (e.g. a smaller executor payload)",
        MAX_BODY_BYTES >> 20
    ));
    let mut resp = error.into_response();
    *resp.status_mut() = StatusCode::PAYLOAD_TOO_LARGE;
    resp
}

async fn not_found(method: Method, uri: Uri) -> RequestError {
    RequestError::new(
        ErrorCode::NotFound,
        format!(
            "no endpoint {method} {}; the endpoints are described at GET /api/openapi.json",
            uri.path()
        ),
    )
}

/// Parses a JSON body; an empty body means the type's default when `empty` is given.
fn parse<T: DeserializeOwned>(
    body: &Bytes,
    what: &str,
    empty: Option<T>,
) -> Result<T, RequestError> {
    if body.iter().all(u8::is_ascii_whitespace)
        && let Some(default) = empty
    {
        return Ok(default);
    }
    serde_json::from_slice(body).map_err(|e| {
        RequestError::invalid(format!(
            "the body is not a valid {what}: {e}; send JSON as described in aurora_core::api::{what}"
        ))
    })
}

fn params(q: Params, allowed: &[&str]) -> Result<BTreeMap<String, String>, RequestError> {
    let Query(map) = q.map_err(|e| RequestError::invalid(format!("bad query string: {e}")))?;
    if let Some(bad) = map.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(RequestError::invalid(format!(
            "unknown query parameter {bad:?}; use {}",
            allowed.join(", ")
        )));
    }
    Ok(map)
}

async fn create_job(State(s): AppState, body: Bytes) -> Result<Response, RequestError> {
    let req: CreateJobRequest = parse(&body, "CreateJobRequest", None)?;
    let resp = s.mutate(|e, now| e.create_job(req, now)).await?;
    Ok(Json(resp).into_response())
}

async fn list_jobs(State(s): AppState, q: Params) -> Result<Response, RequestError> {
    let p = params(q, &["role"])?;
    let role = p.get("role").filter(|r| !r.is_empty()).cloned();
    let resp = s.read(|e| e.jobs(role.as_deref())).await?;
    Ok(Json(resp).into_response())
}

async fn list_tasks(State(s): AppState, q: Params) -> Result<Response, RequestError> {
    let p = params(q, &["role", "environment", "name", "statuses"])?;
    let get = |k: &str| p.get(k).filter(|v| !v.is_empty()).cloned();
    let statuses = match get("statuses") {
        Some(list) => Some(
            list.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| {
                    s.parse::<ScheduleStatus>()
                        .map_err(|e| RequestError::invalid(e.to_string()))
                })
                .collect::<Result<BTreeSet<_>, _>>()?,
        ),
        None => None,
    };
    let query = TaskQuery {
        role: get("role"),
        environment: get("environment"),
        name: get("name"),
        statuses,
    };
    let resp = s.read(|e| e.tasks(&query)).await?;
    Ok(Json(resp).into_response())
}

async fn kill_job(
    State(s): AppState,
    Path((role, environment, name)): Path<(String, String, String)>,
    body: Bytes,
) -> Result<Response, RequestError> {
    let req: KillRequest = parse(&body, "KillRequest", Some(KillRequest::default()))?;
    let resp = s
        .mutate(|e, now| e.kill_job(&role, &environment, &name, req, now))
        .await?;
    Ok(Json(resp).into_response())
}

async fn add_instances(
    State(s): AppState,
    Path((role, environment, name)): Path<(String, String, String)>,
    body: Bytes,
) -> Result<Response, RequestError> {
    let req: AddInstancesRequest = parse(&body, "AddInstancesRequest", None)?;
    let resp = s
        .mutate(|e, now| e.add_instances(&role, &environment, &name, req, now))
        .await?;
    Ok(Json(resp).into_response())
}

async fn restart(
    State(s): AppState,
    Path((role, environment, name)): Path<(String, String, String)>,
    body: Bytes,
) -> Result<Response, RequestError> {
    let req: RestartRequest = parse(&body, "RestartRequest", Some(RestartRequest::default()))?;
    let resp = s
        .mutate(|e, now| e.restart(&role, &environment, &name, req, now))
        .await?;
    Ok(Json(resp).into_response())
}

async fn acquire_lock(
    State(s): AppState,
    Path((role, environment, name)): Path<(String, String, String)>,
    body: Bytes,
) -> Result<Response, RequestError> {
    let req: AcquireLockRequest = parse(&body, "AcquireLockRequest", None)?;
    let resp = s
        .mutate(|e, now| e.acquire_lock(&role, &environment, &name, req, now))
        .await?;
    Ok(Json(resp).into_response())
}

async fn release_lock(
    State(s): AppState,
    Path((role, environment, name)): Path<(String, String, String)>,
    body: Bytes,
) -> Result<Response, RequestError> {
    let req: ReleaseLockRequest = parse(
        &body,
        "ReleaseLockRequest",
        Some(ReleaseLockRequest::default()),
    )?;
    let resp = s
        .mutate(|e, _| e.release_lock(&role, &environment, &name, req))
        .await?;
    Ok(Json(resp).into_response())
}

async fn list_locks(State(s): AppState) -> Result<Response, RequestError> {
    let resp = s.read(Engine::locks).await?;
    Ok(Json(resp).into_response())
}

/// The original's `/locks` page: `role/env/name` → `{token, user, timestampMs, message}`.
async fn locks_page(State(s): AppState) -> Result<Response, RequestError> {
    let LocksResponse { locks } = s.read(Engine::locks).await?;
    let page: serde_json::Map<String, serde_json::Value> = locks
        .into_iter()
        .map(|l| {
            (
                l.key.path_in_cluster(),
                serde_json::json!({
                    "token": l.token,
                    "user": l.user,
                    "timestampMs": l.timestamp_ms,
                    "message": l.message,
                }),
            )
        })
        .collect();
    Ok(Json(page).into_response())
}

async fn get_quota(State(s): AppState, Path(role): Path<String>) -> Result<Response, RequestError> {
    let resp = s.read(|e| e.quota(&role)).await?;
    Ok(Json(resp).into_response())
}

async fn set_quota(
    State(s): AppState,
    Path(role): Path<String>,
    body: Bytes,
) -> Result<Response, RequestError> {
    let req: SetQuotaRequest = parse(&body, "SetQuotaRequest", None)?;
    let resp = s.mutate(|e, _| e.set_quota(&role, req)).await?;
    Ok(Json(resp).into_response())
}

async fn maintenance_status(State(s): AppState) -> Result<Response, RequestError> {
    let resp = s.read(|e| e.maintenance(None)).await?;
    Ok(Json(resp).into_response())
}

async fn set_maintenance(
    s: Arc<Shared>,
    body: Bytes,
    mode: MaintenanceMode,
) -> Result<Response, RequestError> {
    let req: HostsRequest = parse(&body, "HostsRequest", None)?;
    let resp = s
        .mutate(|e, now| e.set_maintenance(&req.hosts, mode, now))
        .await?;
    Ok(Json(resp).into_response())
}

async fn maintenance_start(State(s): AppState, body: Bytes) -> Result<Response, RequestError> {
    set_maintenance(s, body, MaintenanceMode::Scheduled).await
}

async fn maintenance_drain(State(s): AppState, body: Bytes) -> Result<Response, RequestError> {
    set_maintenance(s, body, MaintenanceMode::Draining).await
}

async fn maintenance_end(State(s): AppState, body: Bytes) -> Result<Response, RequestError> {
    set_maintenance(s, body, MaintenanceMode::None).await
}

async fn backup(State(s): AppState) -> Result<Response, RequestError> {
    let (name, path) = s.backup().await?;
    Ok(Json(BackupResponse {
        name,
        path: path.display().to_string(),
    })
    .into_response())
}

async fn list_backups(State(s): AppState) -> Response {
    Json(BackupsResponse {
        backups: s.backups(),
    })
    .into_response()
}

async fn restore(State(s): AppState, body: Bytes) -> Result<Response, RequestError> {
    let req: RestoreRequest = parse(&body, "RestoreRequest", None)?;
    s.restore(&req.backup).await?;
    Ok(Json(Ack {}).into_response())
}

async fn openapi() -> Response {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        crate::openapi::DOCUMENT.as_str(),
    )
        .into_response()
}

async fn register(State(s): AppState, body: Bytes) -> Result<Response, RequestError> {
    let req: RegisterExecutorRequest = parse(&body, "RegisterExecutorRequest", None)?;
    let work = s.mutate(|e, now| e.register(req, now)).await?;
    Ok(Json(work).into_response())
}

async fn heartbeat(
    State(s): AppState,
    Path(host): Path<String>,
    body: Bytes,
) -> Result<Response, RequestError> {
    let req: HeartbeatRequest =
        parse(&body, "HeartbeatRequest", Some(HeartbeatRequest::default()))?;
    let work = s.mutate(|e, now| e.heartbeat(&host, &req, now)).await?;
    Ok(Json(work).into_response())
}

async fn status(
    State(s): AppState,
    Path(host): Path<String>,
    body: Bytes,
) -> Result<Response, RequestError> {
    let update: StatusUpdate = parse(&body, "StatusUpdate", None)?;
    s.mutate(|e, now| e.status(&host, update, now)).await?;
    Ok(Json(Ack {}).into_response())
}

async fn snapshot(State(s): AppState) -> Result<Response, RequestError> {
    let seq = s
        .snapshot()
        .await
        .map_err(|e| RequestError::new(ErrorCode::Error, format!("the snapshot failed: {e}")))?;
    Ok(Json(serde_json::json!({ "seq": seq })).into_response())
}

async fn pending_tasks(State(s): AppState) -> Result<Response, RequestError> {
    let reasons = s.read(Engine::all_reasons).await?;
    Ok(Json(reasons).into_response())
}

async fn vars_text(State(s): AppState) -> String {
    let mut out = String::new();
    for (name, value) in s.vars() {
        out.push_str(&format!("{name} {value}\n"));
    }
    out
}

async fn vars_json(State(s): AppState) -> Response {
    let map: serde_json::Map<String, serde_json::Value> = s.vars().into_iter().collect();
    Json(map).into_response()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::{Duration, Instant};

    use aurora_core::ScheduleStatus;
    use aurora_core::api::{
        ApiError, CreateJobResponse, ExecutorWork, KillResponse, TasksResponse,
    };
    use serde_json::{Value, json};

    use crate::{Config, Scheduler, SqliteStorage, Storage};

    struct Running {
        base: String,
        client: reqwest::Client,
        stop: Option<tokio::sync::oneshot::Sender<()>>,
        done: tokio::task::JoinHandle<Result<(), crate::SchedulerError>>,
    }

    impl Running {
        async fn start(dir: &std::path::Path) -> Running {
            let config = Config {
                data_dir: dir.to_owned(),
                http_host: "127.0.0.1".into(),
                http_port: 0,
                hostname: "test-scheduler".into(),
                ..Config::default()
            };
            let scheduler = Scheduler::start(config).await.unwrap();
            let base = format!("http://{}", scheduler.local_addr());
            let (stop, stopped) = tokio::sync::oneshot::channel();
            let done = tokio::spawn(scheduler.serve(async move {
                let _ = stopped.await;
            }));
            Running {
                base,
                client: reqwest::Client::new(),
                stop: Some(stop),
                done,
            }
        }

        async fn stop(mut self) {
            if let Some(stop) = self.stop.take() {
                let _ = stop.send(());
            }
            (&mut self.done).await.unwrap().unwrap();
        }

        async fn post(&self, path: &str, body: Value) -> (u16, Value) {
            let resp = self
                .client
                .post(format!("{}{path}", self.base))
                .json(&body)
                .send()
                .await
                .unwrap();
            (resp.status().as_u16(), resp.json().await.unwrap())
        }

        async fn get(&self, path: &str) -> (u16, String) {
            let resp = self
                .client
                .get(format!("{}{path}", self.base))
                .send()
                .await
                .unwrap();
            (resp.status().as_u16(), resp.text().await.unwrap())
        }

        async fn tasks(&self, query: &str) -> TasksResponse {
            let (code, body) = self.get(&format!("/api/tasks?{query}")).await;
            assert_eq!(code, 200, "{body}");
            serde_json::from_str(&body).unwrap()
        }
    }

    fn job(name: &str, instances: u32) -> Value {
        let key = json!({"cluster": "local", "role": "www", "environment": "prod", "name": name});
        json!({"job": {
            "key": key, "owner": {"role": "www", "user": "me"}, "instance_count": instances,
            "task_config": {
                "job": key, "owner": {"role": "www", "user": "me"}, "is_service": false,
                "max_task_failures": 1, "priority": 0, "production": false,
                "resources": {"cpu": 0.5, "ram_bytes": 1048576, "disk_bytes": 1048576, "ports": ["http"]},
                "executor_config": {"name": "AuroraExecutor", "data": "{}"}
            }
        }})
    }

    fn executor(host: &str) -> Value {
        json!({"host": host, "attributes": {"rack": ["r1"]},
               "resources": {"cpu": 4, "ram_bytes": 1u64 << 30, "disk_bytes": 1u64 << 30,
                             "ports": {"begin": 31000, "end": 31010}}})
    }

    fn history(tasks: &TasksResponse, i: usize) -> Vec<ScheduleStatus> {
        tasks.tasks[i]
            .task_events
            .iter()
            .map(|e| e.status)
            .collect()
    }

    /// Waits for a condition with a deadline instead of sleeping a fixed time.
    async fn eventually<F: std::future::Future<Output = bool>>(mut cond: impl FnMut() -> F) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !cond().await {
            assert!(Instant::now() < deadline, "condition not met within 10 s");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_job_runs_is_killed_and_survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let s = Running::start(dir.path()).await;
        assert_eq!(s.get("/health").await, (200, "OK".to_owned()));

        let (code, body) = s.post("/api/jobs", job("hello", 1)).await;
        assert_eq!(code, 200, "{body}");
        let created: CreateJobResponse = serde_json::from_value(body).unwrap();
        let (code, body) = s.post("/api/jobs", job("sleeper", 1)).await;
        assert_eq!(code, 200, "{body}");
        let sleeper: CreateJobResponse = serde_json::from_value(body).unwrap();

        // Two executors, so that both single-instance jobs find a host either way.
        let (code, body) = s.post("/api/executors", executor("h1")).await;
        assert_eq!(code, 200, "{body}");
        let mut launched: Vec<_> = serde_json::from_value::<ExecutorWork>(body).unwrap().launch;
        let (_, body) = s.post("/api/executors", executor("h2")).await;
        launched.extend(serde_json::from_value::<ExecutorWork>(body).unwrap().launch);
        assert_eq!(launched.len(), 2, "both tasks launched at registration");
        let host_of = |id| {
            launched
                .iter()
                .find(|t| &t.task_id == id)
                .and_then(|t| t.slave_host.clone())
                .unwrap()
        };
        let hello = &created.task_ids[0];
        let hello_host = host_of(hello);
        for status in ["STARTING", "RUNNING", "FINISHED"] {
            let (code, body) = s
                .post(
                    &format!("/api/executors/{hello_host}/status"),
                    json!({"task_id": hello, "status": status}),
                )
                .await;
            assert_eq!(code, 200, "{body}");
        }
        let sleeper_id = &sleeper.task_ids[0];
        let sleeper_host = host_of(sleeper_id);
        s.post(
            &format!("/api/executors/{sleeper_host}/status"),
            json!({"task_id": sleeper_id, "status": "RUNNING"}),
        )
        .await;
        let (code, body) = s.post("/api/jobs/www/prod/sleeper/kill", json!({})).await;
        assert_eq!(code, 200, "{body}");
        let killed: KillResponse = serde_json::from_value(body).unwrap();
        assert_eq!(&killed.killed, &sleeper.task_ids);
        let (_, body) = s
            .post(
                &format!("/api/executors/{sleeper_host}/heartbeat"),
                json!({"tasks": [{"task_id": sleeper_id, "status": "RUNNING"}]}),
            )
            .await;
        let work: ExecutorWork = serde_json::from_value(body).unwrap();
        assert_eq!(&work.kill, &sleeper.task_ids);
        s.post(
            &format!("/api/executors/{sleeper_host}/status"),
            json!({"task_id": sleeper_id, "status": "KILLED"}),
        )
        .await;

        // Everything acknowledged is in the database right now, as a kill -9 would leave it.
        let on_disk = SqliteStorage::open(dir.path()).unwrap().recover().unwrap();
        let (state, _) = crate::state::State::recover(on_disk);
        assert_eq!(state.tasks[hello].status, ScheduleStatus::Finished);
        assert_eq!(state.tasks[sleeper_id].status, ScheduleStatus::Killed);

        let (_, vars) = s.get("/vars").await;
        for name in [
            "task_store_FINISHED 1",
            "jobs 2",
            "executors_live 2",
            "storage_writes ",
        ] {
            assert!(vars.contains(name), "{name:?} missing from /vars:\n{vars}");
        }
        s.stop().await;

        let s = Running::start(dir.path()).await;
        let tasks = s.tasks("role=www&name=hello").await;
        assert_eq!(
            history(&tasks, 0),
            [
                ScheduleStatus::Pending,
                ScheduleStatus::Assigned,
                ScheduleStatus::Starting,
                ScheduleStatus::Running,
                ScheduleStatus::Finished
            ]
        );
        let tasks = s.tasks("role=www&name=sleeper&statuses=KILLED").await;
        assert_eq!(tasks.tasks.len(), 1);
        assert_eq!(
            tasks.tasks[0]
                .task_events
                .last()
                .unwrap()
                .scheduler
                .as_deref(),
            Some("test-scheduler")
        );
        // The executors are remembered and keep heartbeating after the restart.
        let (code, _) = s
            .post("/api/executors/h1/heartbeat", json!({"tasks": []}))
            .await;
        assert_eq!(code, 200);
        // A job with all tasks terminal is no longer active: it can be created again.
        let (code, body) = s.post("/api/jobs", job("sleeper", 1)).await;
        assert_eq!(code, 200, "{body}");
        let (_, body) = s.get("/api/jobs?role=www").await;
        let jobs: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(jobs["jobs"].as_array().unwrap().len(), 2);
        // The background loop places the new task on its own.
        eventually(|| async { s.tasks("name=sleeper&statuses=ASSIGNED").await.tasks.len() == 1 })
            .await;
        s.stop().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn bad_requests_get_4xx_with_a_message() {
        let dir = tempfile::tempdir().unwrap();
        let s = Running::start(dir.path()).await;
        let check = |(code, body): (u16, Value), want_code: u16, fragment: &str| {
            assert_eq!(code, want_code, "{body}");
            let err: ApiError = serde_json::from_value(body).unwrap();
            assert!(
                err.message.contains(fragment),
                "{fragment:?} not in {:?}",
                err.message
            );
        };
        check(
            s.post("/api/jobs", json!({"nope": 1})).await,
            400,
            "not a valid CreateJobRequest",
        );
        let mut bad = job("x", 1);
        bad["job"]["key"]["environment"] = json!("nonsense");
        check(s.post("/api/jobs", bad).await, 400, "nonsense");
        check(
            s.post("/api/jobs/www/prod/none/kill", json!({})).await,
            404,
            "no job local/www/prod/none",
        );
        check(
            s.post("/api/executors/ghost/heartbeat", json!({"tasks": []}))
                .await,
            404,
            "register again",
        );
        check(
            s.post(
                "/api/executors/h/status",
                json!({"task_id": "t", "status": "BOGUS"}),
            )
            .await,
            400,
            "not a valid StatusUpdate",
        );
        let parse =
            |(code, body): (u16, String)| (code, serde_json::from_str::<Value>(&body).unwrap());
        check(
            parse(s.get("/api/tasks?statuses=RUNNING,WHAT").await),
            400,
            "unknown task status \"WHAT\"",
        );
        check(
            parse(s.get("/api/tasks?rol=www").await),
            400,
            "unknown query parameter \"rol\"",
        );
        check(
            parse(s.get("/no/such/thing").await),
            404,
            "no endpoint GET /no/such/thing",
        );
        // A body over the limit is refused with a message naming the limit, and creates nothing.
        let mut huge = job("huge", 1);
        huge["job"]["task_config"]["executor_config"]["data"] =
            json!("x".repeat(super::MAX_BODY_BYTES));
        check(
            s.post("/api/jobs", huge).await,
            413,
            "larger than 2 MiB, the most this scheduler accepts",
        );
        let (code, body) = s.get("/vars.json").await;
        assert_eq!(code, 200);
        let vars: BTreeMap<String, Value> = serde_json::from_str(&body).unwrap();
        assert_eq!(vars["jobs"], json!(0));
        s.stop().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_documented_route_exists_and_admin_endpoints_work() {
        let dir = tempfile::tempdir().unwrap();
        let s = Running::start(dir.path()).await;
        let (code, doc) = s.get("/api/openapi.json").await;
        assert_eq!(code, 200);
        let doc: Value = serde_json::from_str(&doc).unwrap();
        assert_eq!(doc["openapi"], "3.0.3");
        let text = doc.to_string();
        for piece in text.split("#/components/schemas/").skip(1) {
            let name: String = piece.chars().take_while(|c| c.is_alphanumeric()).collect();
            assert!(
                doc["components"]["schemas"].get(&name).is_some(),
                "$ref to undefined schema {name}"
            );
        }
        for (method, path) in crate::openapi::operations() {
            let path = path
                .replace("{role}", "www")
                .replace("{environment}", "prod")
                .replace("{name}", "none")
                .replace("{host}", "nohost");
            let resp = match method.as_str() {
                "GET" => s
                    .client
                    .get(format!("{}{path}", s.base))
                    .send()
                    .await
                    .unwrap(),
                _ => s
                    .client
                    .post(format!("{}{path}", s.base))
                    .body("{}")
                    .send()
                    .await
                    .unwrap(),
            };
            let text = resp.text().await.unwrap();
            assert!(
                !text.contains("no endpoint"),
                "{method} {path} is documented but not routed"
            );
        }

        // Quota: negative values are refused, then set and shown.
        let (code, body) = s
            .post(
                "/api/admin/quota/www",
                json!({"cpu": -1, "ram_bytes": 0, "disk_bytes": 0}),
            )
            .await;
        assert_eq!(code, 400, "{body}");
        assert!(
            body["message"]
                .as_str()
                .unwrap()
                .contains("cpu -1 must be zero or more")
        );
        let (code, body) = s
            .post(
                "/api/admin/quota/www",
                json!({"cpu": 8, "ram_bytes": 1u64 << 30, "disk_bytes": 1u64 << 30}),
            )
            .await;
        assert_eq!(code, 200, "{body}");
        let (_, body) = s.get("/api/quota/www").await;
        let q: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(q["quota"]["cpu"], json!(8.0));

        // Maintenance.
        let (code, body) = s
            .post("/api/admin/maintenance/drain", json!({"hosts": ["h9"]}))
            .await;
        assert_eq!(code, 200, "{body}");
        assert_eq!(body["hosts"]["h9"], "DRAINED", "nothing runs there");
        let (code, _) = s
            .post("/api/admin/maintenance/end", json!({"hosts": []}))
            .await;
        assert_eq!(code, 400);

        // Backup, change, restore.
        let (code, body) = s.post("/api/jobs", job("keep", 1)).await;
        assert_eq!(code, 200, "{body}");
        let (code, body) = s.post("/api/admin/backup", json!({})).await;
        assert_eq!(code, 200, "{body}");
        let name = body["name"].as_str().unwrap().to_owned();
        let (code, body) = s.post("/api/jobs", job("drop", 1)).await;
        assert_eq!(code, 200, "{body}");
        let (_, body) = s.get("/api/admin/backups").await;
        assert!(body.contains(&name), "{body}");
        let (code, body) = s
            .post("/api/admin/restore", json!({"backup": "nope.json"}))
            .await;
        assert_eq!(code, 404, "{body}");
        let (code, body) = s.post("/api/admin/restore", json!({"backup": name})).await;
        assert_eq!(code, 200, "{body}");
        assert_eq!(s.tasks("name=keep").await.tasks.len(), 1);
        assert_eq!(s.tasks("name=drop").await.tasks.len(), 0);
        s.stop().await;
        // The restore is durable.
        let s = Running::start(dir.path()).await;
        assert_eq!(s.tasks("name=drop").await.tasks.len(), 0);
        assert_eq!(s.tasks("name=keep").await.tasks.len(), 1);
        let (_, vars) = s.get("/vars").await;
        for name in [
            "scheduling_latency_us_max",
            "storage_write_latency_us_max",
            "scheduler_placements",
            "task_store_PENDING 1",
        ] {
            assert!(vars.contains(name), "{name} missing from /vars:\n{vars}");
        }
        s.stop().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn locks_over_http_guard_kills_and_survive_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let s = Running::start(dir.path()).await;
        let (code, body) = s.post("/api/jobs", job("web", 1)).await;
        assert_eq!(code, 200, "{body}");
        let (code, body) = s
            .post(
                "/api/jobs/www/prod/web/lock",
                json!({"user": "alice", "message": "update to v2"}),
            )
            .await;
        assert_eq!(code, 200, "{body}");
        let lock: aurora_core::api::Lock = serde_json::from_value(body).unwrap();
        assert_eq!(lock.user, "alice");

        let (code, body) = s
            .post("/api/jobs/www/prod/web/lock", json!({"user": "bob"}))
            .await;
        assert_eq!(code, 409, "{body}");
        assert_eq!(body["code"], "LOCKED");
        let message = body["message"].as_str().unwrap();
        assert!(
            message.contains("already locked by alice since") && message.contains("(update to v2)"),
            "{message}"
        );
        let (code, body) = s.post("/api/jobs/www/prod/web/kill", json!({})).await;
        assert_eq!(code, 409, "{body}");
        assert_eq!(body["code"], "LOCKED");
        let (code, body) = s
            .post(
                "/api/jobs/www/prod/web/unlock",
                json!({"token": "guess", "validation": "CHECKED"}),
            )
            .await;
        assert_eq!(code, 409, "{body}");
        let (code, body) = s
            .post(
                "/api/jobs/www/prod/web/unlock",
                json!({"validation": "BOGUS"}),
            )
            .await;
        assert_eq!(code, 400, "{body}");

        let (_, body) = s.get("/api/locks").await;
        let locks: aurora_core::api::LocksResponse = serde_json::from_str(&body).unwrap();
        assert_eq!(locks.locks, std::slice::from_ref(&lock));
        let (_, page) = s.get("/locks").await;
        let page: Value = serde_json::from_str(&page).unwrap();
        assert_eq!(page["www/prod/web"]["user"], "alice");
        assert_eq!(page["www/prod/web"]["token"], lock.token.as_str());
        assert_eq!(page["www/prod/web"]["timestampMs"], lock.timestamp_ms);
        let (_, vars) = s.get("/vars").await;
        assert!(vars.contains("locks_held 1"), "{vars}");
        s.stop().await;

        // The lock is durable.
        let s = Running::start(dir.path()).await;
        let (_, body) = s.get("/api/locks").await;
        let locks: aurora_core::api::LocksResponse = serde_json::from_str(&body).unwrap();
        assert_eq!(locks.locks, std::slice::from_ref(&lock));
        let (code, body) = s
            .post(
                "/api/jobs/www/prod/web/kill",
                json!({"lock_token": lock.token}),
            )
            .await;
        assert_eq!(code, 200, "the holder may kill: {body}");
        let (code, body) = s
            .post(
                "/api/jobs/www/prod/web/unlock",
                json!({"validation": "UNCHECKED"}),
            )
            .await;
        assert_eq!(code, 200, "{body}");
        assert_eq!(body["token"], lock.token.as_str());
        let (code, body) = s.post("/api/jobs/www/prod/web/unlock", json!({})).await;
        assert_eq!(code, 404, "{body}");
        assert!(
            body["message"].as_str().unwrap().contains("is not locked"),
            "{body}"
        );
        s.stop().await;
    }
}
