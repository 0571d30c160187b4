//! Health checks, graceful kill, resource limits, users and checkpoint recovery, with real
//! processes.

mod common;

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aurora_thermos::{
    HealthCheckConfig, ProcessSpec, RunOptions, RunnerError, TaskResources, TaskRunner, TaskSpec,
    TaskState, UserMode, read_checkpoint,
};

use common::{Fixture, eventually, proc};

const DEADLINE: Duration = Duration::from_secs(30);
const TASK_ID: &str = "semantics";

fn one(cmdline: &str) -> TaskSpec {
    TaskSpec::sequential("t", vec![proc("main", cmdline)])
}

/// A loopback HTTP server standing in for the task's health endpoint: answers `GET /health`
/// from `answers` (the last one repeats) and records every request line.
struct HealthServer {
    port: u16,
    requests: Arc<Mutex<Vec<String>>>,
}

impl HealthServer {
    fn start(
        answers: Vec<&'static str>,
        on_quit: impl Fn() + Send + Sync + 'static,
    ) -> HealthServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = requests.clone();
        std::thread::spawn(move || {
            let mut served = 0usize;
            for conn in listener.incoming().flatten() {
                let mut reader = BufReader::new(conn.try_clone().unwrap());
                let mut line = String::new();
                if reader.read_line(&mut line).is_err() {
                    continue;
                }
                loop {
                    let mut h = String::new();
                    if reader.read_line(&mut h).unwrap_or(0) == 0 || h.trim().is_empty() {
                        break;
                    }
                }
                let line = line.trim().to_owned();
                seen.lock().unwrap().push(line.clone());
                let body = if line.starts_with("GET /health") {
                    let a = answers[served.min(answers.len() - 1)];
                    served += 1;
                    a
                } else {
                    if line.starts_with("POST /quitquitquit") {
                        on_quit();
                    }
                    "ok"
                };
                let mut conn = conn;
                let _ = write!(
                    conn,
                    "HTTP/1.0 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        HealthServer { port, requests }
    }

    fn saw(&self, prefix: &str) -> bool {
        self.requests
            .lock()
            .unwrap()
            .iter()
            .any(|r| r.starts_with(prefix))
    }
}

fn fast_health(max_consecutive_failures: u32) -> Option<HealthCheckConfig> {
    Some(HealthCheckConfig {
        initial_interval_secs: 0.05,
        interval_secs: 0.05,
        timeout_secs: 2.0,
        max_consecutive_failures,
    })
}

#[test]
fn failing_health_checks_fail_the_task() {
    let f = Fixture::new(TASK_ID);
    let server = HealthServer::start(vec!["ok", "ok", "not ok"], || {});
    let options = RunOptions {
        health: fast_health(2),
        escalation_wait: Duration::from_millis(100),
        ..RunOptions::default()
    };
    let h = f.start_with(one("exec sleep 1000"), &[("health", server.port)], options);
    let status = h.wait();
    assert_eq!(status.state, TaskState::Failed, "{status:?}");
    let msg = status.message.unwrap();
    assert!(msg.contains("failed health check"), "{msg}");
    assert!(msg.contains("3 consecutive failure(s)"), "{msg}");
    assert!(msg.contains("\"not ok\""), "{msg}");
}

#[test]
fn a_healthy_task_is_left_alone() {
    let f = Fixture::new(TASK_ID);
    let server = HealthServer::start(vec!["OK\n"], || {});
    let options = RunOptions {
        health: fast_health(0),
        ..RunOptions::default()
    };
    let h = f.start_with(
        one("while [ ! -e stop ]; do sleep 0.02; done"),
        &[("health", server.port)],
        options,
    );
    eventually("a few health checks", DEADLINE, || {
        server
            .requests
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.starts_with("GET /health"))
            .count()
            >= 5
    });
    fs::write(f.sandbox().join("stop"), "").unwrap();
    assert_eq!(h.wait().state, TaskState::Success);
}

#[test]
fn graceful_kill_asks_the_task_to_quit_first() {
    let f = Fixture::new(TASK_ID);
    let pid_file = f.sandbox().join("app.pid");
    let quit_pid = pid_file.clone();
    // The "application" quits when asked: the server stands in for its HTTP handler.
    let server = HealthServer::start(vec!["ok"], move || {
        let pid: i32 = fs::read_to_string(&quit_pid)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGTERM,
        );
    });
    let options = RunOptions {
        health: fast_health(0),
        // Long enough that only /quitquitquit can end the task in time.
        escalation_wait: Duration::from_secs(60),
        ..RunOptions::default()
    };
    let h = f.start_with(
        one("echo $$ > app.pid.tmp; mv app.pid.tmp app.pid; exec sleep 1000"),
        &[("health", server.port)],
        options,
    );
    eventually("the app to start", DEADLINE, || pid_file.exists());
    let started = Instant::now();
    h.kill(Duration::from_secs(1));
    let status = h.wait();
    assert_eq!(status.state, TaskState::Killed, "{status:?}");
    assert!(server.saw("POST /quitquitquit"));
    assert!(!server.saw("POST /abortabortabort"));
    assert!(started.elapsed() < Duration::from_secs(60));
}

#[test]
fn a_task_over_its_ram_limit_is_killed_with_the_reason() {
    let f = Fixture::new(TASK_ID);
    // The shell keeps the 100 MB string while it sleeps, so the once-a-second sampler sees it
    // however long building it took.
    let mut task = one("x=$(head -c 100000000 /dev/zero | tr '\\0' a); sleep 1000");
    task.resources = Some(TaskResources {
        cpu: 1.0,
        ram: 32 << 20,
        disk: 0,
    });
    let h = f.start(task);
    let status = h.wait();
    assert_eq!(status.state, TaskState::Failed, "{status:?}");
    let msg = status.message.unwrap();
    assert!(
        msg.contains("of RAM, over its RAM limit of 32.0 MiB by"),
        "{msg}"
    );
}

#[test]
fn a_task_over_its_disk_limit_is_killed_with_the_reason() {
    let f = Fixture::new(TASK_ID);
    let mut task = one("head -c 8000000 /dev/urandom > big; exec sleep 1000");
    task.resources = Some(TaskResources {
        cpu: 1.0,
        ram: 0,
        disk: 1 << 20,
    });
    let h = f.start(task);
    let status = h.wait();
    assert_eq!(status.state, TaskState::Failed, "{status:?}");
    let msg = status.message.unwrap();
    assert!(
        msg.contains("of disk, over its disk limit of 1.0 MiB by"),
        "{msg}"
    );
}

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

#[test]
fn an_unknown_user_fails_the_task_with_a_reason() {
    let f = Fixture::new(TASK_ID);
    let mut spec = f.spec(
        one("touch ran"),
        &[],
        RunOptions {
            user_mode: UserMode::Switch,
            ..RunOptions::default()
        },
    );
    spec.user = "no-such-user-aurora".into();
    let result = TaskRunner::start(spec);
    if is_root() {
        let err = result.unwrap_err();
        assert!(matches!(err, RunnerError::UnknownUser { .. }), "{err}");
        let text = err.to_string();
        assert!(
            text.contains("\"no-such-user-aurora\" does not exist"),
            "{text}"
        );
        assert!(!f.sandbox().join("ran").exists());
    } else {
        // Without root the runner cannot switch users and runs as its own.
        assert_eq!(result.unwrap().wait().state, TaskState::Success);
    }
}

#[test]
fn processes_run_as_the_role_user_when_root() {
    if !is_root() {
        return;
    }
    let f = Fixture::new(TASK_ID);
    // The test's temporary directory is private to root; let the user reach the sandbox.
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(f.dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let mut spec = f.spec(
        one("id -un; id -u; touch mine"),
        &[],
        RunOptions {
            user_mode: UserMode::Switch,
            ..RunOptions::default()
        },
    );
    spec.user = "nobody".into();
    let status = TaskRunner::start(spec).unwrap().wait();
    assert_eq!(status.state, TaskState::Success, "{status:?}");
    let out = fs::read_to_string(f.sandbox().join(".logs/main/0/stdout")).unwrap();
    let uid = nix::unistd::User::from_name("nobody")
        .unwrap()
        .unwrap()
        .uid
        .as_raw();
    assert_eq!(out, format!("nobody\n{uid}\n"));
    use std::os::unix::fs::MetadataExt;
    assert_eq!(fs::metadata(f.sandbox().join("mine")).unwrap().uid(), uid);
}

#[test]
fn a_torn_checkpoint_tail_is_cut_and_a_finished_task_never_runs_again() {
    let f = Fixture::new(TASK_ID);
    let task = one("echo ran >> count");
    let status = f.start(task.clone()).wait();
    assert_eq!(status.state, TaskState::Success);
    let ckpt = f.checkpoint();
    let good = fs::metadata(&ckpt).unwrap().len();
    // A crash in the middle of a write leaves half a frame.
    let mut file = fs::OpenOptions::new().append(true).open(&ckpt).unwrap();
    file.write_all(&[200, 0, 0, 0, 1, 2, 3, 4, b'{']).unwrap();
    drop(file);
    let read = read_checkpoint(&ckpt).unwrap();
    let torn = read.torn.unwrap();
    assert_eq!(torn.offset, good);
    assert!(torn.reason.contains("cut short"), "{}", torn.reason);

    let again = f.start(task);
    let status = again.wait();
    assert_eq!(status.state, TaskState::Success);
    assert!(status.recovered);
    assert_eq!(
        fs::read_to_string(f.sandbox().join("count")).unwrap(),
        "ran\n"
    );
    assert_eq!(fs::metadata(&ckpt).unwrap().len(), good);
    assert!(read_checkpoint(&ckpt).unwrap().torn.is_none());
}

#[test]
fn a_second_runner_cannot_take_a_running_task() {
    let f = Fixture::new(TASK_ID);
    let h = f.start(one("exec sleep 1000"));
    h.wait_until(|s| s.has_started(), Some(DEADLINE));
    let err =
        TaskRunner::start(f.spec(one("exec sleep 1000"), &[], RunOptions::default())).unwrap_err();
    assert!(err.to_string().contains("another runner"), "{err}");
    h.kill(Duration::from_millis(100));
    assert_eq!(h.wait().state, TaskState::Killed);
}

#[test]
fn the_sine_table_example() {
    // The docs' example: 180 mappers ordered before one reducer, at most 8 at a time.
    let f = Fixture::new(TASK_ID);
    let mut processes = Vec::new();
    let mut order = Vec::new();
    for deg in 0..180 {
        let mut p = ProcessSpec::new(
            format!("mapper{deg:03}"),
            format!(
                "echo \"{deg} $(echo \"s({deg}*3.14159265/180)\" | bc -l 2>/dev/null || echo {deg})\" > table.{deg:03}"
            ),
        );
        p.min_duration = 0;
        order.push(p.name.clone());
        processes.push(p);
    }
    let mut reducer = ProcessSpec::new("reducer", "cat table.* > table.txt");
    reducer.min_duration = 0;
    processes.push(reducer);
    let constraints = order
        .iter()
        .map(|m| aurora_thermos::OrderConstraint {
            order: vec![m.clone(), "reducer".into()],
        })
        .collect();
    let task = TaskSpec {
        name: "sine".into(),
        processes,
        constraints,
        resources: None,
        max_failures: 1,
        max_concurrency: 8,
        finalization_wait: 30,
    };
    let status = f.start(task).wait();
    assert_eq!(status.state, TaskState::Success, "{:?}", status.message);
    let table = fs::read_to_string(f.sandbox().join("table.txt")).unwrap();
    assert_eq!(table.lines().count(), 180);
}
