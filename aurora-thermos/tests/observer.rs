//! The observer's JSON API over real tasks, with raw HTTP requests (so that paths reach the
//! server exactly as written, `..` and `%2F` included).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use aurora_thermos::{
    Observer, ProcessSpec, ProcessState, RunSpec, RunnerHandle, TaskRunner, TaskSpec, TaskState,
};
use serde_json::Value;

fn start(tasks: &Path, id: &str, processes: Vec<ProcessSpec>) -> RunnerHandle {
    let dir = tasks.join(id);
    TaskRunner::start(RunSpec {
        task: TaskSpec::sequential("t", processes),
        task_id: id.into(),
        sandbox: dir.join("sandbox"),
        checkpoint: dir.join("checkpoint"),
        user: "tester".into(),
        ports: [("http".to_owned(), 8080)].into(),
        options: Default::default(),
    })
    .unwrap()
}

fn proc(name: &str, cmdline: &str) -> ProcessSpec {
    let mut p = ProcessSpec::new(name, cmdline);
    p.min_duration = 0;
    p
}

/// One raw `GET`; returns the status code and the JSON body.
fn get(addr: SocketAddr, target: &str) -> (u16, Value) {
    request(addr, "GET", target)
}

fn request(addr: SocketAddr, method: &str, target: &str) -> (u16, Value) {
    let mut conn = TcpStream::connect(addr).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    write!(conn, "{method} {target} HTTP/1.1\r\nhost: test\r\n\r\n").unwrap();
    let mut raw = String::new();
    conn.read_to_string(&mut raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/json"),
        "{head}"
    );
    (status, serde_json::from_str(body).unwrap())
}

#[test]
fn serves_tasks_processes_runs_and_logs() {
    let dir = tempfile::tempdir().unwrap();
    let tasks = dir.path().join("tasks");
    let done = start(
        &tasks,
        "done-1",
        vec![
            proc("hello", "echo hello world; echo oops >&2"),
            proc("my proc", "printf 'abcdefghij'"),
        ],
    );
    assert_eq!(done.wait().state, TaskState::Success);
    let stop = dir.path().join("stop");
    let running = start(
        &tasks,
        "running-1",
        vec![proc(
            "wait",
            &format!("while [ ! -e {} ]; do sleep 0.02; done", stop.display()),
        )],
    );
    running.wait_until(|s| s.processes["wait"].state == ProcessState::Running, None);

    let observer = Observer::bind("127.0.0.1:0".parse().unwrap(), &tasks).unwrap();
    let addr = observer.local_addr();
    observer.spawn().unwrap();

    let (status, ids) = get(addr, "/j/task_ids");
    assert_eq!(status, 200);
    assert_eq!(ids["active"], serde_json::json!(["running-1"]));
    assert_eq!(ids["finished"], serde_json::json!(["done-1"]));

    let (status, all) = get(addr, "/j/tasks");
    assert_eq!(status, 200);
    let all = all["tasks"].as_array().unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(all[0]["task_id"], "done-1");
    assert_eq!(all[0]["state"], "SUCCESS");
    assert_eq!(all[1]["state"], "ACTIVE");
    assert_eq!(all[1]["processes"]["wait"]["state"], "RUNNING");

    let (status, task) = get(addr, "/j/task/done-1");
    assert_eq!(status, 200);
    assert_eq!(task["name"], "t");
    assert_eq!(task["user"], "tester");
    assert_eq!(task["ports"]["http"], 8080);
    assert_eq!(task["processes"]["hello"]["state"], "SUCCESS");
    assert_eq!(task["processes"]["hello"]["return_code"], 0);

    let (status, procs) = get(addr, "/j/process/done-1");
    assert_eq!(status, 200);
    assert_eq!(procs["processes"]["my proc"]["runs"][0]["state"], "SUCCESS");

    let (status, hello) = get(addr, "/j/process/done-1/hello");
    assert_eq!(status, 200);
    let run = &hello["runs"][0];
    assert_eq!(run["run"], 0);
    assert_eq!(run["logs"]["stdout"]["size"], 12);
    assert_eq!(run["logs"]["stdout"]["url"], "/logs/done-1/hello/0/stdout");

    let (status, run) = get(addr, "/j/process/done-1/my%20proc/0");
    assert_eq!(status, 200);
    assert_eq!(run["process"], "my proc");
    assert_eq!(
        run["logs"]["stdout"]["url"],
        "/logs/done-1/my%20proc/0/stdout"
    );

    // Log chunks: the tail by default, a range when asked.
    let (status, log) = get(addr, "/logs/done-1/hello/0/stdout");
    assert_eq!(status, 200);
    assert_eq!(log["data"], "hello world\n");
    assert_eq!(
        (log["offset"].as_u64(), log["size"].as_u64()),
        (Some(0), Some(12))
    );
    let (_, log) = get(addr, "/logs/done-1/hello/0/stderr");
    assert_eq!(log["data"], "oops\n");
    let (_, log) = get(addr, "/logs/done-1/my%20proc/0/stdout?offset=2&length=3");
    assert_eq!(log["data"], "cde");
    assert_eq!(log["offset"], 2);
    assert_eq!(log["length"], 3);
    let (_, log) = get(addr, "/logs/done-1/my%20proc/0/stdout?length=4");
    assert_eq!(log["data"], "ghij");
    assert_eq!(log["offset"], 6);
    let (_, log) = get(addr, "/logs/done-1/my%20proc/0/stdout?offset=100");
    assert_eq!(log["data"], "");
    assert_eq!(log["offset"], 10);

    // Bad paths: 404 (or 400 for bad values) with a JSON message naming what was wrong.
    let not_found = [
        "/",
        "/j/nothing",
        "/j/task/nope",
        "/j/task/..",
        "/j/task/%2E%2E",
        "/j/task/..%2Ftasks%2Fdone-1",
        "/j/process/done-1/nope",
        "/j/process/done-1/hello/1",
        "/j/process/done-1/hello/x",
        "/logs/done-1/hello/0/checkpoint",
        "/logs/done-1/hello/0/..%2F..%2F..%2F..%2Fcheckpoint",
        "/logs/done-1/..%2F..%2F..%2Fcheckpoint/0/stdout",
        "/logs/..%2Fdone-1/hello/0/stdout",
        "/logs/done-1/../done-1/hello/0/stdout",
        "/logs/done-1/hello/0/stdout/extra",
        "/logs/done-1/hello/0/%ZZ",
    ];
    for target in not_found {
        let (status, body) = get(addr, target);
        assert_eq!(status, 404, "{target}: {body}");
        assert_eq!(body["error"], "not_found", "{target}");
        assert!(!body["message"].as_str().unwrap().is_empty(), "{target}");
    }
    let (status, body) = get(addr, "/j/task/nope");
    assert!(
        body["message"].as_str().unwrap().contains("\"nope\""),
        "{status} {body}"
    );
    let (status, body) = get(addr, "/logs/done-1/hello/0/stdout?offset=-1");
    assert_eq!(status, 400);
    assert!(
        body["message"].as_str().unwrap().contains("offset=\"-1\""),
        "{body}"
    );
    let (status, body) = request(addr, "POST", "/j/tasks");
    assert_eq!(status, 405, "{body}");

    // The running task's view follows its checkpoint.
    std::fs::write(&stop, "").unwrap();
    assert_eq!(running.wait().state, TaskState::Success);
    let until = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, task) = get(addr, "/j/task/running-1");
        if task["state"] == "SUCCESS" {
            assert_eq!(task["processes"]["wait"]["state"], "SUCCESS");
            break;
        }
        assert!(Instant::now() < until, "{task}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Requests are bounded: a head over 16 KiB is refused and the connection closed; one request
/// per connection.
#[test]
fn oversized_requests_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let observer = Observer::bind("127.0.0.1:0".parse().unwrap(), dir.path()).unwrap();
    let addr = observer.local_addr();
    observer.spawn().unwrap();

    let mut conn = TcpStream::connect(addr).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let huge = "a".repeat(64 * 1024);
    // The server may close before it has read all of it.
    let _ = write!(
        conn,
        "GET /j/tasks HTTP/1.1\r\nhost: test\r\nx-padding: {huge}\r\n\r\n"
    );
    let mut raw = Vec::new();
    let _ = conn.read_to_end(&mut raw);
    let raw = String::from_utf8_lossy(&raw);
    assert!(raw.starts_with("HTTP/1.1 431 "), "{raw}");

    // A normal request still works, and the connection ends after its answer.
    let (status, body) = get(addr, "/j/task_ids");
    assert_eq!(
        (status, body),
        (200, serde_json::json!({"active": [], "finished": []}))
    );
}
