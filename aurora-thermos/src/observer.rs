//! The observer's JSON API: a small blocking HTTP server over the checkpoints and logs of the
//! tasks in one directory, after the original observer's `/j/*` endpoints.
//!
//! Everything it serves is read from disk on each request (checkpoints replayed with
//! [`TaskView`], log files read by range), so it needs no link to the runners: it shows the
//! tasks of an executor, of a `thermos` root, or of a dead executor's work directory alike.
//! Names taken from the request are never joined to a path before they are checked against
//! what the checkpoints hold, so a request cannot reach a file outside the task sandboxes' logs.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

use crate::layout::TaskLayout;
use crate::observe::{ProcessHistory, RunView, TaskView, find_checkpoints};
use crate::runner::log_path;

/// The checkpoint file's name in a task directory: the observer serves the executor's layout.
const CHECKPOINT: &str = TaskLayout::Executor.checkpoint_name();
/// How long a client may take to send a request's head.
const HEAD_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one connection may last, answer included.
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(30);
/// The most bytes the server buffers of a request (its head: the API takes no bodies).
const MAX_HEAD: usize = 16 * 1024;
/// The most connections served at once; more wait in the listen queue, so that many clients
/// cannot make it hold unbounded memory and file descriptors.
const MAX_CONNECTIONS: usize = 64;
/// How many log bytes `/logs` returns when no length is asked for.
const DEFAULT_LOG_LENGTH: u64 = 64 * 1024;
/// The most log bytes one `/logs` request returns.
const MAX_LOG_LENGTH: u64 = 1024 * 1024;

/// The observer could not listen.
#[derive(Debug, thiserror::Error)]
#[error("cannot serve the observer API on {addr}: {error}")]
#[non_exhaustive]
pub struct ObserverError {
    /// The address asked for.
    pub addr: SocketAddr,
    /// The cause.
    pub error: std::io::Error,
}

/// Serves the JSON API for the tasks under `tasks_dir` (`<tasks_dir>/<task_id>/checkpoint`,
/// the executor's layout):
///
/// | endpoint | answer |
/// |---|---|
/// | `GET /j/task_ids` | `{"active": [id], "finished": [id]}` |
/// | `GET /j/tasks` | `{"tasks": [task summary]}` |
/// | `GET /j/task/{id}` | the task: state, ports, message, and each process's latest run |
/// | `GET /j/process/{id}` | every process with all its runs |
/// | `GET /j/process/{id}/{process}[/{run}]` | one process's runs, or one run |
/// | `GET /logs/{id}/{process}/{run}/{stdout\|stderr}?offset=&length=` | a log chunk: `{"data", "offset", "length", "size"}`; without `offset`, the last `length` bytes (64 KiB by default, 1 MiB at most) |
///
/// Unknown paths, tasks, processes, runs and logs get a 404 and bad query values a 400, each
/// with `{"error": ..., "message": ...}` naming what was wrong. HTTP is axum over hyper: a
/// request head must arrive within 10 s and fit in 16 KiB, a connection lasts at most 30 s
/// and serves one request, and at most 64 connections are served at once.
///
/// It has no authentication and serves every task's logs: keep it on a loopback address
/// unless the network in front of it is trusted.
///
/// ```no_run
/// use aurora_thermos::Observer;
/// let observer = Observer::bind("127.0.0.1:0".parse().unwrap(), "/var/lib/aurora/tasks").unwrap();
/// println!("observer on http://{}", observer.local_addr());
/// observer.spawn().unwrap();
/// ```
#[derive(Debug)]
pub struct Observer {
    listener: TcpListener,
    tasks_dir: PathBuf,
}

impl Observer {
    /// Listens on `addr` (port 0 picks a free port) for the tasks under `tasks_dir`.
    pub fn bind(
        addr: SocketAddr,
        tasks_dir: impl Into<PathBuf>,
    ) -> Result<Observer, ObserverError> {
        let err = |error| ObserverError { addr, error };
        let listener = TcpListener::bind(addr).map_err(err)?;
        listener.set_nonblocking(true).map_err(err)?;
        Ok(Observer {
            listener,
            tasks_dir: tasks_dir.into(),
        })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)))
    }

    /// Serves requests on a thread of its own (a single-threaded async runtime; files are
    /// read on its blocking pool) until the process ends.
    pub fn spawn(self) -> Result<(), ObserverError> {
        let addr = self.local_addr();
        let err = |error| ObserverError { addr, error };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(err)?;
        let listener = {
            let _entered = runtime.enter();
            tokio::net::TcpListener::from_std(self.listener).map_err(err)?
        };
        let app = router(Arc::new(self.tasks_dir));
        std::thread::Builder::new()
            .name("thermos-observer".into())
            .spawn(move || runtime.block_on(serve(listener, app)))
            .map(|_| ())
            .map_err(err)
    }
}

/// Accepts connections and serves each with hyper, under the limits of [`Observer`].
async fn serve(listener: tokio::net::TcpListener, app: Router) {
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        let Ok(slot) = Arc::clone(&slots).acquire_owned().await else {
            // Only a closed semaphore fails, and nothing closes it.
            return;
        };
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // E.g. out of file descriptors: give connections in flight time to end.
                tracing::warn!("observer: cannot accept a connection: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let service = hyper_util::service::TowerToHyperService::new(app.clone());
        tokio::spawn(async move {
            let mut http = hyper::server::conn::http1::Builder::new();
            http.timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(HEAD_TIMEOUT)
                .max_buf_size(MAX_HEAD)
                .keep_alive(false);
            let conn = http.serve_connection(hyper_util::rt::TokioIo::new(stream), service);
            match tokio::time::timeout(CONNECTION_TIMEOUT, conn).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::debug!("observer: connection ended: {e}"),
                Err(_) => tracing::debug!("observer: connection took too long; closed"),
            }
            drop(slot);
        });
    }
}

type Dir = State<Arc<PathBuf>>;

fn router(tasks_dir: Arc<PathBuf>) -> Router {
    Router::new()
        .route("/j/task_ids", get(|State(d): Dir| answer(d, task_ids)))
        .route("/j/tasks", get(|State(d): Dir| answer(d, tasks)))
        .route("/j/task/{id}", get(task_route))
        .route("/j/process/{id}", get(processes_route))
        .route("/j/process/{id}/{process}", get(process_route))
        .route("/j/process/{id}/{process}/{run}", get(run_route))
        .route("/logs/{id}/{process}/{run}/{stream}", get(logs_route))
        .fallback(|uri: axum::http::Uri| async move {
            reply(Err(not_found(format!(
                "no endpoint at {:?}; try /j/tasks, /j/task/ID, /j/process/ID[/PROCESS[/RUN]] or /logs/ID/PROCESS/RUN/stdout",
                uri.path()
            ))))
        })
        .method_not_allowed_fallback(|method: axum::http::Method| async move {
            reply(Err(error(
                405,
                "method_not_allowed",
                format!("method {method} is not allowed: the API is read-only, use GET"),
            )))
        })
        .with_state(tasks_dir)
}

/// Runs `work` (which reads files) on the blocking pool and turns its outcome into a response.
async fn answer<F>(dir: Arc<PathBuf>, work: F) -> Response
where
    F: FnOnce(&Path) -> Answer + Send + 'static,
{
    answer_or(dir, move |d| Ok(work(d))).await
}

async fn answer_or<F>(dir: Arc<PathBuf>, work: F) -> Response
where
    F: FnOnce(&Path) -> Result<Answer, Answer> + Send + 'static,
{
    let outcome = tokio::task::spawn_blocking(move || work(&dir))
        .await
        .unwrap_or_else(|e| {
            Err(error(
                500,
                "internal",
                format!("the request could not be answered: {e}"),
            ))
        });
    reply(outcome)
}

fn reply(outcome: Result<Answer, Answer>) -> Response {
    let (status, body) = outcome.unwrap_or_else(|e| e);
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, axum::Json(body)).into_response()
}

/// Path segments that cannot be decoded name nothing the API has.
fn segments<T>(path: Result<UrlPath<T>, PathRejection>) -> Result<T, Answer> {
    path.map(|UrlPath(t)| t)
        .map_err(|e| not_found(format!("the path cannot be read: {e}")))
}

async fn task_route(State(dir): Dir, path: Result<UrlPath<String>, PathRejection>) -> Response {
    let id = match segments(path) {
        Ok(id) => id,
        Err(e) => return reply(Err(e)),
    };
    answer_or(dir, move |d| {
        let view = load(d, &id)?;
        Ok((200, task_json(&view, true)))
    })
    .await
}

async fn processes_route(
    State(dir): Dir,
    path: Result<UrlPath<String>, PathRejection>,
) -> Response {
    let id = match segments(path) {
        Ok(id) => id,
        Err(e) => return reply(Err(e)),
    };
    answer_or(dir, move |d| {
        let view = load(d, &id)?;
        let procs: BTreeMap<&String, Value> = view
            .processes
            .iter()
            .map(|(name, h)| (name, process_json(&view, name, h)))
            .collect();
        Ok((200, json!({"task_id": view.task_id, "processes": procs})))
    })
    .await
}

async fn process_route(
    State(dir): Dir,
    path: Result<UrlPath<(String, String)>, PathRejection>,
) -> Response {
    let (id, process) = match segments(path) {
        Ok(p) => p,
        Err(e) => return reply(Err(e)),
    };
    answer_or(dir, move |d| {
        let view = load(d, &id)?;
        let (name, h) = find_process(&view, &process)?;
        Ok((200, process_json(&view, name, h)))
    })
    .await
}

async fn run_route(
    State(dir): Dir,
    path: Result<UrlPath<(String, String, String)>, PathRejection>,
) -> Response {
    let (id, process, run) = match segments(path) {
        Ok(p) => p,
        Err(e) => return reply(Err(e)),
    };
    answer_or(dir, move |d| {
        let view = load(d, &id)?;
        let (name, h) = find_process(&view, &process)?;
        let r = find_run(&view, name, h, &run)?;
        Ok((200, run_json(&view, name, r)))
    })
    .await
}

/// The query of `/logs`, as text: its numbers are checked with messages of our own.
#[derive(Debug, serde::Deserialize)]
struct LogQuery {
    offset: Option<String>,
    length: Option<String>,
}

async fn logs_route(
    State(dir): Dir,
    path: Result<UrlPath<(String, String, String, String)>, PathRejection>,
    query: Result<Query<LogQuery>, QueryRejection>,
) -> Response {
    let (id, process, run, stream) = match segments(path) {
        Ok(p) => p,
        Err(e) => return reply(Err(e)),
    };
    let query = match query {
        Ok(Query(q)) => q,
        Err(e) => {
            return reply(Err(error(
                400,
                "invalid_request",
                format!("the query cannot be read: {e}; use offset=BYTES&length=BYTES"),
            )));
        }
    };
    answer_or(dir, move |d| {
        let view = load(d, &id)?;
        let (name, h) = find_process(&view, &process)?;
        let r = find_run(&view, name, h, &run)?;
        if !matches!(stream.as_str(), "stdout" | "stderr") {
            return Err(not_found(format!(
                "log {stream:?} does not exist: use stdout or stderr"
            )));
        }
        let offset = bytes_param("offset", query.offset.as_deref())?;
        let length = bytes_param("length", query.length.as_deref())?;
        log_chunk(&view, name, r.run, &stream, offset, length)
    })
    .await
}

type Answer = (u16, Value);

fn error(status: u16, code: &str, message: String) -> Answer {
    (status, json!({"error": code, "message": message}))
}

fn not_found(message: String) -> Answer {
    error(404, "not_found", message)
}

/// Whether a task id can name a directory under the tasks directory without leaving it.
fn plain_name(id: &str) -> bool {
    !id.is_empty()
        && !id.starts_with('.')
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

fn load(tasks_dir: &Path, id: &str) -> Result<TaskView, Answer> {
    let unknown = || not_found(format!("no task {id:?} on this executor"));
    if !plain_name(id) {
        return Err(unknown());
    }
    let path = tasks_dir.join(id).join(CHECKPOINT);
    if !path.is_file() {
        return Err(unknown());
    }
    TaskView::load(&path).map_err(|e| not_found(format!("task {id:?} cannot be read: {e}")))
}

fn find_process<'a>(
    view: &'a TaskView,
    process: &str,
) -> Result<(&'a String, &'a ProcessHistory), Answer> {
    view.processes
        .get_key_value(process)
        // The names come from the checkpoint; refuse any that could leave the log directory.
        .filter(|(name, _)| !name.starts_with('.') && !name.contains(['/', '\0']))
        .ok_or_else(|| {
            not_found(format!(
                "task {:?} has no process {process:?} that has run",
                view.task_id
            ))
        })
}

fn find_run<'a>(
    view: &TaskView,
    name: &str,
    h: &'a ProcessHistory,
    run: &str,
) -> Result<&'a RunView, Answer> {
    let missing = || {
        not_found(format!(
            "process {name:?} of task {:?} has no run {run:?}",
            view.task_id
        ))
    };
    let n: u32 = run.parse().map_err(|_| missing())?;
    h.runs.iter().find(|r| r.run == n).ok_or_else(missing)
}

fn task_ids(tasks_dir: &Path) -> Answer {
    let (mut active, mut finished) = (Vec::new(), Vec::new());
    for (id, path) in find_checkpoints(tasks_dir, CHECKPOINT) {
        match TaskView::load(&path) {
            Ok(v) if v.is_terminal() => finished.push(id),
            Ok(_) => active.push(id),
            Err(_) => {}
        }
    }
    (200, json!({"active": active, "finished": finished}))
}

fn tasks(tasks_dir: &Path) -> Answer {
    let tasks: Vec<Value> = find_checkpoints(tasks_dir, CHECKPOINT)
        .into_iter()
        .filter_map(|(_, path)| TaskView::load(&path).ok())
        .map(|v| task_json(&v, false))
        .collect();
    (200, json!({"tasks": tasks}))
}

fn task_json(v: &TaskView, detail: bool) -> Value {
    let processes: BTreeMap<&String, Value> = v
        .processes
        .iter()
        .map(|(name, h)| {
            let last = h.runs.last();
            (
                name,
                json!({
                    "state": last.map(|r| r.state.as_str()),
                    "runs": h.runs.len(),
                    "pid": last.and_then(|r| r.pid),
                    "return_code": last.and_then(|r| r.return_code),
                    "start_ms": last.and_then(|r| r.start_ms),
                    "end_ms": last.and_then(|r| r.end_ms),
                }),
            )
        })
        .collect();
    let mut out = json!({
        "task_id": v.task_id,
        "name": v.task.as_ref().map(|t| t.name.clone()),
        "state": v.state.map(|s| s.as_str()),
        "state_since_ms": v.state_since_ms,
        "launch_time_ms": v.launch_time_ms,
        "user": v.user,
        "message": v.message,
        "processes": processes,
    });
    if detail && let Value::Object(m) = &mut out {
        m.insert("sandbox".into(), json!(v.sandbox));
        m.insert("ports".into(), json!(v.ports));
        m.insert("killed".into(), json!(v.killed));
        m.insert("runner_pid".into(), json!(v.runner_pid));
        m.insert(
            "torn_tail".into(),
            json!(v.torn.as_ref().map(|t| t.to_string())),
        );
        m.insert("task".into(), json!(v.task));
    }
    out
}

fn process_json(v: &TaskView, name: &str, h: &ProcessHistory) -> Value {
    let runs: Vec<Value> = h.runs.iter().map(|r| run_json(v, name, r)).collect();
    json!({"task_id": v.task_id, "process": name, "runs": runs})
}

fn run_json(v: &TaskView, name: &str, r: &RunView) -> Value {
    let log = |stream: &str| {
        let size = std::fs::metadata(log_path(&v.sandbox, name, r.run, stream))
            .ok()
            .map(|m| m.len());
        json!({
            "size": size,
            "url": format!("/logs/{}/{}/{}/{stream}", v.task_id, encode_segment(name), r.run),
        })
    };
    json!({
        "process": name,
        "run": r.run,
        "state": r.state.as_str(),
        "pid": r.pid,
        "return_code": r.return_code,
        "start_ms": r.start_ms,
        "end_ms": r.end_ms,
        "logs": {"stdout": log("stdout"), "stderr": log("stderr")},
    })
}

/// Percent-encodes what a path segment cannot hold as is.
fn encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn bytes_param(key: &str, value: Option<&str>) -> Result<Option<u64>, Answer> {
    value
        .map(|v| {
            v.parse().map_err(|_| {
                error(
                    400,
                    "invalid_request",
                    format!("{key}={v:?} is not valid: use a whole number of bytes"),
                )
            })
        })
        .transpose()
}

fn log_chunk(
    v: &TaskView,
    name: &str,
    run: u32,
    stream: &str,
    offset: Option<u64>,
    length: Option<u64>,
) -> Result<Answer, Answer> {
    let length = length.unwrap_or(DEFAULT_LOG_LENGTH).min(MAX_LOG_LENGTH);
    let path = log_path(&v.sandbox, name, run, stream);
    let missing = |e: std::io::Error| {
        not_found(format!(
            "run {run} of process {name:?} of task {:?} has no {stream}: {e}",
            v.task_id
        ))
    };
    let mut f = File::open(&path).map_err(missing)?;
    let size = f.metadata().map_err(missing)?.len();
    let start = offset.unwrap_or(size.saturating_sub(length)).min(size);
    f.seek(SeekFrom::Start(start)).map_err(missing)?;
    let mut buf = Vec::new();
    f.take(length).read_to_end(&mut buf).map_err(missing)?;
    Ok((
        200,
        json!({
            "task_id": v.task_id,
            "process": name,
            "run": run,
            "stream": stream,
            "offset": start,
            "length": buf.len(),
            "size": size,
            "data": String::from_utf8_lossy(&buf),
        }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(plain_name("hello-1.2_x"));
        for bad in ["", ".", "..", ".hidden", "a/b", "a b", "a\0b"] {
            assert!(!plain_name(bad), "{bad:?}");
        }
        assert_eq!(encode_segment("a b/c"), "a%20b%2Fc");
    }
}
