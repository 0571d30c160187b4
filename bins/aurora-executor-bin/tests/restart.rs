//! `kill -9` of the real `aurora-executor` and a restart on the same work directory: the task's
//! process keeps running, the new executor takes it over without running it again, and its
//! final status reaches the scheduler (a tiny fake one on loopback).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::mpsc::channel;
use std::time::{Duration, Instant};

use aurora_core::{AssignedTask, ScheduleStatus};
use aurora_thermos::test_support::{FakeScheduler, assigned_task};

const DEADLINE: Duration = Duration::from_secs(60);
const TASK: &str = "restart-task-1";

/// The states (and messages) the scheduler got for the task.
fn updates(sched: &FakeScheduler) -> Vec<(ScheduleStatus, Option<String>)> {
    sched.statuses_of(TASK)
}

fn statuses(sched: &FakeScheduler) -> Vec<ScheduleStatus> {
    updates(sched).into_iter().map(|u| u.0).collect()
}

/// Waits until the scheduler got `status` for the task; `context` explains a timeout.
fn wait_for_status(sched: &FakeScheduler, status: ScheduleStatus, context: impl Fn() -> String) {
    let reached = sched.wait_until(DEADLINE, |updates, _| {
        updates
            .iter()
            .any(|u| u.task_id.as_str() == TASK && u.status == status)
    });
    assert!(reached, "{status} never reported\n{}", context());
}

fn assigned(cmdline: &str) -> AssignedTask {
    let job = serde_json::json!({
        "role": "www-data", "environment": "prod", "name": "svc",
        "task": {
            "name": "svc",
            "processes": [{"name": "main", "cmdline": cmdline, "min_duration": 0}],
        }
    });
    assigned_task(TASK, "restart-host", 0, "alice", &job)
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

/// A fake scheduler with the task (running `cmdline`) to launch, and a work directory for
/// the executors: the scheduler, its URL, the temporary directory, the work directory in it
/// and the task's sandbox.
fn setup(
    cmdline: &str,
) -> (
    Arc<FakeScheduler>,
    String,
    tempfile::TempDir,
    PathBuf,
    PathBuf,
) {
    let sched = FakeScheduler::new(Duration::from_millis(50));
    let url = sched.serve();
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("work");
    let sandbox = work.join("tasks").join(TASK).join("sandbox");
    sched.launch(vec![assigned(cmdline)]);
    (sched, url, dir, work, sandbox)
}

/// Starts the first executor on `work` (logging to `dir`) and waits for the task to run and
/// write its pid file; returns the executor and the task process's pid.
fn start_first(sched: &FakeScheduler, url: &str, work: &Path, dir: &Path) -> (Executor, i32) {
    let sandbox = work.join("tasks").join(TASK).join("sandbox");
    let first = Executor::start(url, work, dir.join("first.log"));
    wait_for_status(sched, ScheduleStatus::Running, || first.log());
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
    (first, pid)
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
    // Counts its runs, records its pid, and ends (successfully) once told to.
    let (sched, url, dir, work, sandbox) = setup(
        "echo run >> count; echo $$ > pid.tmp; mv pid.tmp pid; \
         while [ ! -e stop ]; do sleep 0.02; done; echo done",
    );

    let (first, pid) = start_first(&sched, &url, &work, dir.path());
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
    let reregistered = sched.wait_until(DEADLINE, |_, registrations| {
        registrations.iter().skip(1).any(|r| {
            r.tasks
                .iter()
                .any(|t| t.task_id.as_str() == TASK && t.status == ScheduleStatus::Running)
        })
    });
    assert!(
        reregistered,
        "re-registration listing the task never happened\n{}",
        second.log()
    );
    wait_for(
        "the takeover",
        || second.get(&format!("/j/task/{TASK}"))["runner_pid"] == second_pid,
        || second.log(),
    );
    assert!(alive(pid), "the takeover disturbed the task's process");

    std::fs::write(sandbox.join("stop"), "").unwrap();
    wait_for_status(&sched, ScheduleStatus::Finished, || {
        format!("{:?}\n{}", statuses(&sched), second.log())
    });
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
    let statuses = statuses(&sched);
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
    let (sched, url, dir, work, sandbox) = setup(
        "echo $$ > pid.tmp; mv pid.tmp pid; while [ ! -e stop ]; do sleep 0.02; done; exit 3",
    );
    let (first, pid) = start_first(&sched, &url, &work, dir.path());
    first.kill_9();

    // The process ends while no executor watches it; its shell records how.
    std::fs::write(sandbox.join("stop"), "").unwrap();
    wait_for("the process to end", || !alive(pid), String::new);
    assert_eq!(
        std::fs::read_to_string(sandbox.join(".logs/main/0/exit_status")).unwrap(),
        "3\n"
    );

    let second = Executor::start(&url, &work, dir.path().join("second.log"));
    wait_for_status(&sched, ScheduleStatus::Failed, || {
        format!("{:?}\n{}", updates(&sched), second.log())
    });
    let (status, message) = updates(&sched).pop().unwrap();
    assert_eq!(status, ScheduleStatus::Failed);
    let message = message.unwrap_or_default();
    assert!(
        message.contains("\"main\"") && message.contains("exit code 3"),
        "{message}"
    );
    assert!(!sandbox.join(".logs/main/1").exists(), "it ran again");
    second.kill_9();
}
