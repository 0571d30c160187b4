//! The `thermos` binary: recovery after `kill -9` of the runner, and the subcommands.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const DEADLINE: Duration = Duration::from_secs(30);

fn thermos(root: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_thermos"));
    c.arg("--root").arg(root);
    c
}

fn output(cmd: &mut Command) -> (i32, String, String) {
    let Output {
        status,
        stdout,
        stderr,
    } = cmd.output().unwrap();
    (
        status.code().unwrap_or(-1),
        String::from_utf8_lossy(&stdout).into_owned(),
        String::from_utf8_lossy(&stderr).into_owned(),
    )
}

fn eventually(what: &str, cond: impl Fn() -> bool) {
    let until = Instant::now() + DEADLINE;
    while !cond() {
        assert!(Instant::now() < until, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn status_json(root: &Path) -> serde_json::Value {
    let (code, out, err) = output(thermos(root).args(["status", "--json"]));
    assert_eq!(code, 0, "{err}");
    serde_json::from_str(&out).unwrap()
}

fn alive(pid: i64) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        !s.rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z')
    })
}

fn spawn_run(root: &Path, config: &Path, task_id: &str, bindings: &[&str]) -> Child {
    thermos(root)
        .arg("run")
        .arg(config)
        .args(["--task_id", task_id])
        .args(bindings.iter().flat_map(|b| ["-E", b]))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

struct Setup {
    _dir: tempfile::TempDir,
    root: PathBuf,
    config: PathBuf,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let root = fs::canonicalize(dir.path()).unwrap().join("root");
    let config = dir.path().join("task.json");
    fs::write(
        &config,
        serde_json::json!({
            "name": "rec",
            "processes": [
                {"name": "a", "min_duration": 0,
                 "cmdline": "echo started >> count; while [ ! -e go ]; do sleep 0.02; done; echo a-done"},
                {"name": "b", "min_duration": 0, "cmdline": "echo {{greeting}} > b.txt"}
            ],
            "constraints": [{"order": ["a", "b"]}]
        })
        .to_string(),
    )
    .unwrap();
    Setup {
        _dir: dir,
        root,
        config,
    }
}

#[test]
fn a_runner_killed_with_sigkill_is_taken_over_without_rerunning() {
    let s = setup();
    let sandbox = s.root.join("sandbox/rec-1");
    let mut first = thermos(&s.root)
        .arg("run")
        .arg(&s.config)
        .args(["--task_id", "rec-1", "-E", "greeting=hello"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    eventually("process a to run", || {
        status_json(&s.root)[0]["processes"]["a"]["state"] == "RUNNING"
    });
    let pid = status_json(&s.root)[0]["processes"]["a"]["pid"]
        .as_i64()
        .unwrap();
    first.kill().unwrap(); // SIGKILL
    first.wait().unwrap();
    assert!(alive(pid), "the process outlives its runner");

    let second = spawn_run(&s.root, &s.config, "rec-1", &[]);
    fs::write(sandbox.join("go"), "").unwrap();
    let out = second.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(stderr.contains("carrying on"), "{stderr}");
    assert!(stdout.contains("task finished: SUCCESS"), "{stdout}");
    assert!(
        stdout.contains("process a: SUCCESS (runs 1, exit code 0)"),
        "{stdout}"
    );
    assert_eq!(
        fs::read_to_string(sandbox.join("count")).unwrap(),
        "started\n"
    );
    // The -E binding was recorded with the task, so the new runner did not need it.
    assert_eq!(
        fs::read_to_string(sandbox.join("b.txt")).unwrap(),
        "hello\n"
    );

    // A finished task is never run again.
    let (code, out, err) = output(thermos(&s.root).arg("run").arg(&s.config).args([
        "--task_id",
        "rec-1",
        "-E",
        "greeting=x",
    ]));
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("already ended"), "{err}");
    assert!(out.contains("task finished: SUCCESS"), "{out}");
    assert_eq!(
        fs::read_to_string(sandbox.join("count")).unwrap(),
        "started\n"
    );

    // tail, read, status.
    let (code, out, _) = output(thermos(&s.root).args(["tail", "rec-1", "a"]));
    assert_eq!((code, out.as_str()), (0, "a-done\n"));
    let (code, out, _) = output(thermos(&s.root).args(["read", "rec-1"]));
    assert_eq!(code, 0);
    let records: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(records[0]["type"], "header");
    let runner_pids: std::collections::BTreeSet<i64> = records
        .iter()
        .filter(|r| r["type"] == "task")
        .map(|r| r["runner_pid"].as_i64().unwrap())
        .collect();
    assert_eq!(runner_pids.len(), 2, "two runners wrote the checkpoint");
    let (code, out, _) = output(thermos(&s.root).args(["status", "rec"]));
    assert_eq!(code, 0);
    assert!(out.contains("rec-1: SUCCESS"), "{out}");
    assert!(out.contains("  a: SUCCESS run 0"), "{out}");
}

#[test]
fn kill_inspect_gc_and_errors() {
    let s = setup();
    // inspect binds and prints the task.
    let (code, out, err) = output(
        thermos(&s.root)
            .arg("inspect")
            .arg(&s.config)
            .args(["-E", "greeting=hi"]),
    );
    assert_eq!(code, 0, "{err}");
    let task: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(task["processes"][1]["cmdline"], "echo hi > b.txt");

    // kill asks the runner to kill its task.
    let run = spawn_run(&s.root, &s.config, "victim", &["greeting=hi"]);
    eventually("process a to run", || {
        status_json(&s.root)
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["processes"]["a"]["state"] == "RUNNING")
    });
    let (code, out, err) = output(thermos(&s.root).args(["kill", "^victim$", "--grace-secs", "1"]));
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("victim: KILLED"), "{out}");
    let out = run.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(3));
    let (code, _, err) = output(thermos(&s.root).args(["kill", "victim"]));
    assert_eq!(code, 1);
    assert!(err.contains("no running task matches"), "{err}");

    // A failing simplerun exits 1; bad arguments exit 2; an invalid task exits 4.
    let (code, out, _) =
        output(thermos(&s.root).args(["simplerun", "--task_id", "bad", "--", "exit", "3"]));
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("exit code 3"), "{out}");
    let (code, _, err) = output(thermos(&s.root).args(["simplerun", "-P", "x", "--", "true"]));
    assert_eq!(code, 2, "{err}");
    let (code, _, err) = output(thermos(&s.root).args([
        "simplerun",
        "-P",
        "http:80",
        "--",
        "echo {{thermos.ports[admin]}}",
    ]));
    assert_eq!(code, 4, "{err}");
    assert!(err.contains("\"admin\""), "{err}");
    // A reference left unbound fails the task before anything runs.
    let (code, _, err) = output(
        thermos(&s.root)
            .arg("run")
            .arg(&s.config)
            .args(["--task_id", "unbound"]),
    );
    assert_eq!(code, 4, "{err}");
    assert!(err.contains("unbound references {{greeting}}"), "{err}");
    assert!(!s.root.join("sandbox/unbound").exists());
    if nix::unistd::geteuid().is_root() {
        let (code, _, err) = output(thermos(&s.root).args([
            "simplerun",
            "--user",
            "no-such-user-aurora",
            "--",
            "true",
        ]));
        assert_eq!(code, 6, "{err}");
        assert!(err.contains("does not exist"), "{err}");
    }

    // gc keeps none of the finished tasks.
    let (code, out, _) = output(thermos(&s.root).args(["gc", "--max_tasks", "0", "--dryrun"]));
    assert_eq!(code, 0);
    assert!(out.contains("would remove victim"), "{out}");
    assert!(s.root.join("sandbox/victim").exists());
    let (code, out, _) = output(thermos(&s.root).args(["gc", "--max_tasks", "0"]));
    assert_eq!(code, 0, "{out}");
    assert!(!s.root.join("sandbox/victim").exists());
    assert!(!s.root.join("checkpoints/victim").exists());
    assert_eq!(status_json(&s.root), serde_json::json!([]));
}
