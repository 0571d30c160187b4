//! `kill -9` of the real `aurora-executor` and a restart on the same work directory: the task's
//! process keeps running, the new executor takes it over without running it again, and its
//! final status reaches the scheduler (a tiny fake one on loopback).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::channel;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aurora_core::api::{ExecutorWork, RegisterExecutorRequest, StatusUpdate};
use aurora_core::{
    AssignedTask, ExecutorConfig, Identity, Resources, ScheduleStatus, TaskConfig, TaskId,
};

const DEADLINE: Duration = Duration::from_secs(60);
const TASK: &str = "restart-task-1";

#[derive(Default)]
struct Scheduler {
    /// Work for the next register or heartbeat.
    pending: Mutex<ExecutorWork>,
    statuses: Mutex<Vec<StatusUpdate>>,
    registrations: Mutex<Vec<RegisterExecutorRequest>>,
}

impl Scheduler {
    fn serve(self: &Arc<Self>) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let me = self.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let me = me.clone();
                std::thread::spawn(move || me.connection(conn));
            }
        });
        format!("http://{addr}")
    }

    fn connection(&self, conn: TcpStream) {
        let mut reader = BufReader::new(conn.try_clone().unwrap());
        let mut conn = conn;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let path = line.split_whitespace().nth(1).unwrap_or("").to_owned();
            let mut len = 0;
            loop {
                let mut h = String::new();
                if reader.read_line(&mut h).unwrap_or(0) == 0 {
                    return;
                }
                let h = h.trim_end();
                if h.is_empty() {
                    break;
                }
                if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap();
                }
            }
            let mut body = vec![0; len];
            if reader.read_exact(&mut body).is_err() {
                return;
            }
            let answer = if path.ends_with("/status") {
                let update: StatusUpdate = serde_json::from_slice(&body).unwrap();
                self.statuses.lock().unwrap().push(update);
                "{}".to_owned()
            } else {
                if path == "/api/executors" {
                    let req: RegisterExecutorRequest = serde_json::from_slice(&body).unwrap();
                    self.registrations.lock().unwrap().push(req);
                }
                let mut work = std::mem::take(&mut *self.pending.lock().unwrap());
                work.heartbeat_interval_ms = 50;
                serde_json::to_string(&work).unwrap()
            };
            let resp = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{answer}",
                answer.len()
            );
            if conn.write_all(resp.as_bytes()).is_err() {
                return;
            }
        }
    }

    fn statuses(&self) -> Vec<ScheduleStatus> {
        self.updates().into_iter().map(|u| u.0).collect()
    }

    fn updates(&self) -> Vec<(ScheduleStatus, Option<String>)> {
        self.statuses
            .lock()
            .unwrap()
            .iter()
            .filter(|u| u.task_id.as_str() == TASK)
            .map(|u| (u.status, u.message.clone()))
            .collect()
    }
}

fn assigned(cmdline: &str) -> AssignedTask {
    let job = serde_json::json!({
        "role": "www-data", "environment": "prod", "name": "svc",
        "task": {
            "name": "svc",
            "processes": [{"name": "main", "cmdline": cmdline, "min_duration": 0}],
        }
    });
    AssignedTask {
        task_id: TaskId(TASK.to_owned()),
        slave_host: Some("restart-host".into()),
        instance_id: 0,
        task: TaskConfig {
            job: "c/www-data/prod/svc".parse().unwrap(),
            owner: Identity {
                role: "www-data".into(),
                user: "alice".into(),
            },
            is_service: false,
            max_task_failures: 1,
            priority: 0,
            production: false,
            contact_email: None,
            resources: Resources::default(),
            constraints: vec![],
            task_links: BTreeMap::new(),
            executor_config: ExecutorConfig {
                name: "AuroraExecutor".into(),
                data: job.to_string(),
            },
        },
        assigned_ports: BTreeMap::new(),
    }
}

/// A running `aurora-executor` with its observer address.
struct Executor {
    child: Child,
    observer: String,
    log: PathBuf,
}

impl Executor {
    fn start(scheduler: &str, work_dir: &Path, log: PathBuf) -> Executor {
        let mut child = Command::new(env!("CARGO_BIN_EXE_aurora-executor"))
            .args(["--scheduler", scheduler, "--hostname", "restart-host"])
            .arg("--work-dir")
            .arg(work_dir)
            .args(["--cpu", "1", "--ram-mb", "512", "--disk-mb", "512"])
            .args(["--port-range", "41000-41099", "--kill-grace-secs", "1"])
            .args(["--run-as-executor-user", "--http-port", "0"])
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx.recv_timeout(DEADLINE).unwrap();
        let observer = line
            .trim()
            .strip_prefix("observer listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_owned();
        Executor {
            child,
            observer,
            log,
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `GET` on the executor's observer API.
    fn get(&self, path: &str) -> serde_json::Value {
        let addr = self.observer.strip_prefix("http://").unwrap();
        let mut conn = TcpStream::connect(addr).unwrap();
        write!(conn, "GET {path} HTTP/1.1\r\nhost: test\r\n\r\n").unwrap();
        let mut raw = String::new();
        conn.read_to_string(&mut raw).unwrap();
        let body = raw.split_once("\r\n\r\n").unwrap().1;
        serde_json::from_str(body).unwrap()
    }

    fn kill_9(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

fn wait_for(what: &str, cond: impl Fn() -> bool, context: impl Fn() -> String) {
    let until = Instant::now() + DEADLINE;
    while !cond() {
        assert!(
            Instant::now() < until,
            "{what} never happened\n{}",
            context()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        !matches!(
            s.rsplit(')')
                .next()
                .and_then(|r| r.split_whitespace().next()),
            Some("Z") | Some("X")
        )
    })
}

#[test]
fn a_task_survives_kill_9_of_the_executor_and_runs_once() {
    let sched = Arc::new(Scheduler::default());
    let url = sched.serve();
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("work");
    let sandbox = work.join("tasks").join(TASK).join("sandbox");
    // Counts its runs, records its pid, and ends (successfully) once told to.
    sched.pending.lock().unwrap().launch = vec![assigned(
        "echo run >> count; echo $$ > pid.tmp; mv pid.tmp pid; \
         while [ ! -e stop ]; do sleep 0.02; done; echo done",
    )];

    let first = Executor::start(&url, &work, dir.path().join("first.log"));
    wait_for(
        "RUNNING reported",
        || sched.statuses().contains(&ScheduleStatus::Running),
        || first.log(),
    );
    wait_for(
        "the pid file",
        || sandbox.join("pid").exists(),
        || first.log(),
    );
    let pid: i32 = std::fs::read_to_string(sandbox.join("pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let task = first.get(&format!("/j/task/{TASK}"));
    assert_eq!(task["state"], "ACTIVE", "{task}");
    assert_eq!(task["processes"]["main"]["state"], "RUNNING", "{task}");
    let first_pid = first.child.id();
    assert_eq!(task["runner_pid"], first_pid, "{task}");

    first.kill_9();
    assert!(alive(pid), "the task's process died with the executor");

    let second = Executor::start(&url, &work, dir.path().join("second.log"));
    let second_pid = second.child.id();
    // The new executor registers with the task it found, and takes it over (its runner
    // writes its own pid to the checkpoint).
    wait_for(
        "re-registration listing the task",
        || {
            sched.registrations.lock().unwrap().iter().skip(1).any(|r| {
                r.tasks
                    .iter()
                    .any(|t| t.task_id.as_str() == TASK && t.status == ScheduleStatus::Running)
            })
        },
        || second.log(),
    );
    wait_for(
        "the takeover",
        || second.get(&format!("/j/task/{TASK}"))["runner_pid"] == second_pid,
        || second.log(),
    );
    assert!(alive(pid), "the takeover disturbed the task's process");

    std::fs::write(sandbox.join("stop"), "").unwrap();
    wait_for(
        "FINISHED reported",
        || sched.statuses().contains(&ScheduleStatus::Finished),
        || format!("{:?}\n{}", sched.statuses(), second.log()),
    );
    // It ran once: one line in the counter, the same pid, its output complete.
    assert_eq!(
        std::fs::read_to_string(sandbox.join("count")).unwrap(),
        "run\n"
    );
    assert_eq!(
        std::fs::read_to_string(sandbox.join("pid")).unwrap().trim(),
        pid.to_string()
    );
    assert_eq!(
        std::fs::read_to_string(sandbox.join(".logs/main/0/stdout")).unwrap(),
        "done\n"
    );
    assert!(!sandbox.join(".logs/main/1").exists());
    let statuses = sched.statuses();
    assert_eq!(
        statuses.last(),
        Some(&ScheduleStatus::Finished),
        "{statuses:?}"
    );
    assert!(
        !statuses.contains(&ScheduleStatus::Lost) && !statuses.contains(&ScheduleStatus::Failed),
        "{statuses:?}"
    );
    let task = second.get(&format!("/j/task/{TASK}"));
    assert_eq!(task["state"], "SUCCESS", "{task}");
    assert_eq!(task["processes"]["main"]["return_code"], 0, "{task}");
    second.kill_9();
}

#[test]
fn a_process_that_ends_while_no_executor_runs_keeps_its_outcome() {
    let sched = Arc::new(Scheduler::default());
    let url = sched.serve();
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("work");
    let sandbox = work.join("tasks").join(TASK).join("sandbox");
    sched.pending.lock().unwrap().launch = vec![assigned(
        "echo $$ > pid.tmp; mv pid.tmp pid; while [ ! -e stop ]; do sleep 0.02; done; exit 3",
    )];
    let first = Executor::start(&url, &work, dir.path().join("first.log"));
    wait_for(
        "RUNNING reported",
        || sched.statuses().contains(&ScheduleStatus::Running),
        || first.log(),
    );
    wait_for(
        "the pid file",
        || sandbox.join("pid").exists(),
        || first.log(),
    );
    let pid: i32 = std::fs::read_to_string(sandbox.join("pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    first.kill_9();

    // The process ends while no executor watches it; its shell records how.
    std::fs::write(sandbox.join("stop"), "").unwrap();
    wait_for("the process to end", || !alive(pid), String::new);
    assert_eq!(
        std::fs::read_to_string(sandbox.join(".logs/main/0/exit_status")).unwrap(),
        "3\n"
    );

    let second = Executor::start(&url, &work, dir.path().join("second.log"));
    wait_for(
        "FAILED reported",
        || sched.statuses().contains(&ScheduleStatus::Failed),
        || format!("{:?}\n{}", sched.updates(), second.log()),
    );
    let (status, message) = sched.updates().pop().unwrap();
    assert_eq!(status, ScheduleStatus::Failed);
    let message = message.unwrap_or_default();
    assert!(
        message.contains("\"main\"") && message.contains("exit code 3"),
        "{message}"
    );
    assert!(!sandbox.join(".logs/main/1").exists(), "it ran again");
    second.kill_9();
}
