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
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};

use crate::observe::{ProcessHistory, RunView, TaskView, find_checkpoints};
use crate::runner::log_path;

/// The checkpoint file's name in a task directory of the executor's layout.
const CHECKPOINT: &str = "checkpoint";
/// How long a connection may take to send its request or read the answer.
const IO_TIMEOUT: Duration = Duration::from_secs(10);
/// The most header bytes a request may have.
const MAX_HEAD: u64 = 16 * 1024;
/// How many log bytes `/logs` returns when no length is asked for.
const DEFAULT_LOG_LENGTH: u64 = 64 * 1024;
/// The most log bytes one `/logs` request returns.
const MAX_LOG_LENGTH: u64 = 1024 * 1024;

/// The observer could not listen.
#[derive(Debug, thiserror::Error)]
#[error("cannot serve the observer API on {addr}: {source}")]
#[non_exhaustive]
pub struct ObserverError {
    /// The address asked for.
    pub addr: SocketAddr,
    /// The cause.
    #[source]
    pub source: std::io::Error,
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
/// with `{"error": ..., "message": ...}` naming what was wrong.
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
        let listener = TcpListener::bind(addr).map_err(|source| ObserverError { addr, source })?;
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

    /// Serves requests on a thread of its own (and one short-lived thread per connection)
    /// until the process ends.
    pub fn spawn(self) -> Result<(), ObserverError> {
        let addr = self.local_addr();
        std::thread::Builder::new()
            .name("thermos-observer".into())
            .spawn(move || self.serve())
            .map(|_| ())
            .map_err(|source| ObserverError { addr, source })
    }

    fn serve(self) {
        let tasks_dir = std::sync::Arc::new(self.tasks_dir);
        for conn in self.listener.incoming() {
            let conn = match conn {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!("observer: cannot accept a connection: {e}");
                    continue;
                }
            };
            let dir = tasks_dir.clone();
            let spawned = std::thread::Builder::new()
                .name("thermos-observer-conn".into())
                .spawn(move || {
                    if let Err(e) = connection(conn, &dir) {
                        tracing::debug!("observer: connection ended: {e}");
                    }
                });
            if let Err(e) = spawned {
                tracing::warn!("observer: cannot start a connection thread: {e}");
            }
        }
    }
}

/// Answers one request, then closes the connection.
fn connection(conn: TcpStream, tasks_dir: &Path) -> std::io::Result<()> {
    conn.set_read_timeout(Some(IO_TIMEOUT))?;
    conn.set_write_timeout(Some(IO_TIMEOUT))?;
    let mut reader = BufReader::new(conn.try_clone()?.take(MAX_HEAD));
    let mut line = String::new();
    reader.read_line(&mut line)?;
    // The headers carry nothing the API needs; read them so the client sees an orderly close.
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 || h.trim_end().is_empty() {
            break;
        }
    }
    let mut parts = line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let (status, body) = if method != "GET" && method != "HEAD" {
        error(
            405,
            "method_not_allowed",
            format!("method {method:?} is not allowed: the API is read-only, use GET"),
        )
    } else {
        route(target, tasks_dir).unwrap_or_else(|e| e)
    };
    let body = body.to_string();
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        _ => "Error",
    };
    let mut conn = conn;
    write!(
        conn,
        "HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    )?;
    if method != "HEAD" {
        conn.write_all(body.as_bytes())?;
    }
    conn.flush()
}

type Answer = (u16, Value);

fn error(status: u16, code: &str, message: String) -> Answer {
    (status, json!({"error": code, "message": message}))
}

fn not_found(message: String) -> Answer {
    error(404, "not_found", message)
}

/// Decodes `%XX` escapes; `None` for a bad escape or bytes that are not UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn route(target: &str, tasks_dir: &Path) -> Result<Answer, Answer> {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let segments: Vec<String> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| {
            percent_decode(s)
                .ok_or_else(|| not_found(format!("path {path:?} is not validly percent-encoded")))
        })
        .collect::<Result<_, _>>()?;
    let segs: Vec<&str> = segments.iter().map(String::as_str).collect();
    match segs.as_slice() {
        ["j", "task_ids"] => Ok(task_ids(tasks_dir)),
        ["j", "tasks"] => Ok(tasks(tasks_dir)),
        ["j", "task", id] => {
            let view = load(tasks_dir, id)?;
            Ok((200, task_json(&view, true)))
        }
        ["j", "process", id] => {
            let view = load(tasks_dir, id)?;
            let procs: BTreeMap<&String, Value> = view
                .processes
                .iter()
                .map(|(name, h)| (name, process_json(&view, name, h)))
                .collect();
            Ok((200, json!({"task_id": view.task_id, "processes": procs})))
        }
        ["j", "process", id, process] => {
            let view = load(tasks_dir, id)?;
            let (name, h) = find_process(&view, process)?;
            Ok((200, process_json(&view, name, h)))
        }
        ["j", "process", id, process, run] => {
            let view = load(tasks_dir, id)?;
            let (name, h) = find_process(&view, process)?;
            let r = find_run(&view, name, h, run)?;
            Ok((200, run_json(&view, name, r)))
        }
        ["logs", id, process, run, stream] => {
            let view = load(tasks_dir, id)?;
            let (name, h) = find_process(&view, process)?;
            let r = find_run(&view, name, h, run)?;
            if !matches!(*stream, "stdout" | "stderr") {
                return Err(not_found(format!(
                    "log {stream:?} does not exist: use stdout or stderr"
                )));
            }
            log_chunk(&view, name, r.run, stream, query)
        }
        _ => Err(not_found(format!(
            "no endpoint at {path:?}; try /j/tasks, /j/task/ID, /j/process/ID[/PROCESS[/RUN]] or /logs/ID/PROCESS/RUN/stdout"
        ))),
    }
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

fn query_u64(query: &str, key: &str) -> Result<Option<u64>, Answer> {
    for pair in query.split('&') {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        if k == key {
            return v.parse().map(Some).map_err(|_| {
                error(
                    400,
                    "invalid_request",
                    format!("{key}={v:?} is not valid: use a whole number of bytes"),
                )
            });
        }
    }
    Ok(None)
}

fn log_chunk(
    v: &TaskView,
    name: &str,
    run: u32,
    stream: &str,
    query: &str,
) -> Result<Answer, Answer> {
    let offset = query_u64(query, "offset")?;
    let length = query_u64(query, "length")?
        .unwrap_or(DEFAULT_LOG_LENGTH)
        .min(MAX_LOG_LENGTH);
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
    fn percent_decoding_and_names() {
        assert_eq!(percent_decode("a%2Fb").as_deref(), Some("a/b"));
        assert_eq!(percent_decode("%2e%2E").as_deref(), Some(".."));
        assert_eq!(percent_decode("bad%2"), None);
        assert_eq!(percent_decode("bad%zz"), None);
        assert!(plain_name("hello-1.2_x"));
        for bad in ["", ".", "..", ".hidden", "a/b", "a b", "a\0b"] {
            assert!(!plain_name(bad), "{bad:?}");
        }
        assert_eq!(encode_segment("a b/c"), "a%20b%2Fc");
    }
}
