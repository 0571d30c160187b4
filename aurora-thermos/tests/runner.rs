//! The Thermos runner with real processes.

mod common;

use std::fs;
use std::path::Path;
use std::time::Duration;

use aurora_thermos::{
    CheckpointRecord, ProcessSpec, ProcessState, RunSpec, TaskRunner, TaskSpec, TaskState,
    is_alive, read_checkpoint,
};

use common::{Fixture, eventually, proc};

const DEADLINE: Duration = Duration::from_secs(20);
const TASK_ID: &str = "test-task";

impl Fixture {
    fn log(&self, process: &str, run: u32) -> String {
        fs::read_to_string(aurora_thermos::log_path(
            &self.sandbox(),
            process,
            run,
            "stdout",
        ))
        .unwrap_or_default()
    }
}

fn task(processes: Vec<ProcessSpec>, orders: &[&[&str]]) -> TaskSpec {
    let mut t = TaskSpec::sequential("t", processes);
    t.constraints = orders
        .iter()
        .map(|o| aurora_thermos::OrderConstraint {
            order: o.iter().map(|s| s.to_string()).collect(),
        })
        .collect();
    t
}

fn wait_file(path: &Path) -> String {
    eventually(&format!("{}", path.display()), DEADLINE, || {
        fs::read_to_string(path).is_ok_and(|s| s.ends_with('\n'))
    });
    fs::read_to_string(path).unwrap()
}

#[test]
fn constraints_order_the_processes() {
    let f = Fixture::new(TASK_ID);
    // Each appends its name with a timestamp-free marker; the order of lines is the order run.
    let step = |n: &str| proc(n, &format!("echo {n} >> order.txt"));
    let h = f.start(task(
        vec![step("c"), step("a"), step("b"), step("d")],
        &[&["a", "b", "c"], &["b", "d"]],
    ));
    let status = h.wait();
    assert_eq!(status.state, TaskState::Success, "{status:?}");
    let order = fs::read_to_string(f.sandbox().join("order.txt")).unwrap();
    let lines: Vec<&str> = order.lines().collect();
    assert_eq!(lines.len(), 4);
    assert_eq!(&lines[..2], ["a", "b"]);
    assert!(
        lines[2..].contains(&"c") && lines[2..].contains(&"d"),
        "{lines:?}"
    );
}

#[test]
fn unconstrained_processes_run_concurrently() {
    let f = Fixture::new(TASK_ID);
    // Each waits for the other's file: only possible if both run at once.
    let h = f.start(task(
        vec![
            proc("x", "touch x; while [ ! -e y ]; do sleep 0.01; done"),
            proc("y", "touch y; while [ ! -e x ]; do sleep 0.01; done"),
        ],
        &[],
    ));
    assert_eq!(h.wait().state, TaskState::Success);
}

#[test]
fn environment_cwd_and_logs() {
    let f = Fixture::new(TASK_ID);
    let h = f.start(task(
        vec![proc(
            "env",
            "pwd; env | sort | cut -d= -f1 | tr '\\n' ' '; echo; echo err >&2",
        )],
        &[],
    ));
    assert_eq!(h.wait().state, TaskState::Success);
    let out = f.log("env", 0);
    let mut lines = out.lines();
    assert_eq!(lines.next().unwrap(), f.sandbox().to_str().unwrap());
    let vars: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    // bash adds PWD, SHLVL and _ itself.
    for v in ["HOME", "LOGNAME", "PATH", "USER"] {
        assert!(vars.contains(&v), "{vars:?}");
    }
    for v in &vars {
        assert!(
            [
                "HOME", "LOGNAME", "PATH", "USER", "PWD", "SHLVL", "_", "OLDPWD"
            ]
            .contains(v),
            "unexpected variable {v}"
        );
    }
    let err =
        fs::read_to_string(aurora_thermos::log_path(&f.sandbox(), "env", 0, "stderr")).unwrap();
    assert_eq!(err, "err\n");
}

#[test]
fn retries_until_max_failures_with_a_log_per_run() {
    let f = Fixture::new(TASK_ID);
    let mut p = proc(
        "flaky",
        "n=$(cat n 2>/dev/null || echo 0); echo run$n; echo $((n+1)) > n; [ $n -ge 2 ]",
    );
    p.max_failures = 3;
    let h = f.start(task(vec![p], &[]));
    let status = h.wait();
    assert_eq!(status.state, TaskState::Success, "{status:?}");
    let p = &status.processes["flaky"];
    assert_eq!((p.runs, p.failures), (3, 2));
    for run in 0..3 {
        assert_eq!(f.log("flaky", run), format!("run{run}\n"));
    }
}

#[test]
fn a_failing_process_fails_the_task_with_its_exit_code() {
    let f = Fixture::new(TASK_ID);
    let mut bad = proc("bad", "echo attempt >> attempts; exit 3");
    bad.max_failures = 2;
    let h = f.start(task(
        vec![bad, proc("after", "touch ran")],
        &[&["bad", "after"]],
    ));
    let status = h.wait();
    assert_eq!(status.state, TaskState::Failed);
    let msg = status.message.unwrap();
    assert!(
        msg.contains("\"bad\"") && msg.contains("exit code 3"),
        "{msg}"
    );
    assert_eq!(status.processes["bad"].return_code, Some(3));
    assert_eq!(status.processes["after"].runs, 0);
    assert!(!f.sandbox().join("ran").exists());
    let attempts = fs::read_to_string(f.sandbox().join("attempts")).unwrap();
    assert_eq!(attempts.lines().count(), 2);
}

#[test]
fn final_processes_run_after_the_regular_ones_even_on_failure() {
    let f = Fixture::new(TASK_ID);
    let mut fin = proc("cleanup", "echo cleanup >> order.txt");
    fin.is_final = true;
    let h = f.start(task(
        vec![proc("main", "echo main >> order.txt; exit 1"), fin],
        &[],
    ));
    let status = h.wait();
    assert_eq!(status.state, TaskState::Failed);
    let order = fs::read_to_string(f.sandbox().join("order.txt")).unwrap();
    assert_eq!(order, "main\ncleanup\n");
}

#[test]
fn invalid_tasks_run_nothing() {
    let f = Fixture::new(TASK_ID);
    let err = TaskRunner::start(RunSpec {
        task: task(
            vec![proc("a", "touch a"), proc("b", "touch b")],
            &[&["a", "b"], &["b", "a"]],
        ),
        task_id: "t".into(),
        sandbox: f.sandbox(),
        checkpoint: f.checkpoint(),
        user: "u".into(),
        ports: Default::default(),
        options: Default::default(),
    })
    .unwrap_err();
    assert!(err.to_string().contains("cycle"), "{err}");
    assert!(!f.sandbox().join("a").exists());
}

#[test]
fn kill_stops_the_whole_tree_including_new_sessions() {
    let f = Fixture::new(TASK_ID);
    // The process starts a child in a new session (which ignores SIGTERM), a grandchild in the
    // background, and a double-forked daemon whose parent exits; each writes its pid.
    let cmd = "setsid bash -c 'trap \"\" TERM; echo $$ > setsid.pid; while true; do sleep 0.05; done' & \
               (sleep 1000 & echo $! > bg.pid; wait) & \
               (setsid bash -c 'sleep 1000 & echo $! > daemon.pid' &) ; \
               echo $$ > root.pid; wait";
    let h = f.start(task(vec![proc("tree", cmd)], &[]));
    let pids: Vec<u32> = ["setsid.pid", "bg.pid", "daemon.pid", "root.pid"]
        .iter()
        .map(|p| wait_file(&f.sandbox().join(p)).trim().parse().unwrap())
        .collect();
    for &pid in &pids {
        assert!(is_alive(pid), "{pid} should run before the kill");
    }
    h.kill(Duration::from_millis(300));
    let status = h.wait();
    assert_eq!(status.state, TaskState::Killed);
    assert_eq!(status.processes["tree"].state, ProcessState::Killed);
    for &pid in &pids {
        eventually(&format!("pid {pid} to die"), DEADLINE, || !is_alive(pid));
    }
}

#[test]
fn leftover_background_processes_are_stopped_when_the_task_ends() {
    let f = Fixture::new(TASK_ID);
    let h = f.start(task(vec![proc("bg", "sleep 1000 & echo $! > bg.pid")], &[]));
    assert_eq!(h.wait().state, TaskState::Success);
    let pid: u32 = wait_file(&f.sandbox().join("bg.pid"))
        .trim()
        .parse()
        .unwrap();
    eventually("the background sleep to die", DEADLINE, || !is_alive(pid));
}

#[test]
fn checkpoint_records_every_state_change() {
    let f = Fixture::new(TASK_ID);
    let h = f.start(task(
        vec![proc("a", "true"), proc("b", "exit 0")],
        &[&["a", "b"]],
    ));
    assert_eq!(h.wait().state, TaskState::Success);
    let ckpt = read_checkpoint(&f.checkpoint()).unwrap();
    assert!(ckpt.torn.is_none());
    let records = ckpt.records;
    assert!(matches!(records[0], CheckpointRecord::Header { .. }));
    let states = |name: &str| -> Vec<(u64, ProcessState)> {
        records
            .iter()
            .filter_map(|r| match r {
                CheckpointRecord::Process {
                    process,
                    seq,
                    state,
                    ..
                } if process == name => Some((*seq, *state)),
                _ => None,
            })
            .collect()
    };
    use ProcessState::*;
    assert_eq!(
        states("a"),
        vec![(0, Waiting), (1, Forked), (2, Running), (3, Success)]
    );
    let tasks: Vec<TaskState> = records
        .iter()
        .filter_map(|r| match r {
            CheckpointRecord::Task { state, .. } => Some(*state),
            _ => None,
        })
        .collect();
    assert_eq!(
        tasks,
        vec![
            TaskState::Active,
            TaskState::Cleaning,
            TaskState::Finalizing,
            TaskState::Success
        ]
    );
}
