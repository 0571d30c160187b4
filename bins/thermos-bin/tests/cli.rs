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

/// The blocked and the ignored signals in a `/proc/<pid>/status`.
fn signal_bits(status: &str) -> (u64, u64) {
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| u64::from_str_radix(v.trim(), 16).unwrap())
            .unwrap_or_else(|| panic!("no {name} in {status}"))
    };
    (field("SigBlk:"), field("SigIgn:"))
}

/// The bit of a signal in `/proc/<pid>/status` masks.
fn bit(signal: nix::sys::signal::Signal) -> u64 {
    1 << (signal as i32 - 1)
}

/// A task whose process records the signal state its programs start with (that of `cat`),
/// traps SIGTERM (recording that the trap ran) and waits, and a final process that records that it ran.
fn trapping_task(dir: &Path) -> PathBuf {
    let config = dir.join("trap.json");
    fs::write(
        &config,
        serde_json::json!({
            "name": "trap",
            "finalization_wait": 60,
            "processes": [
                {"name": "main", "min_duration": 0,
                 "cmdline": "cat /proc/self/status > signals.tmp; trap 'echo trapped > trapped; exit 0' TERM; mv signals.tmp signals; while true; do sleep 0.05; done"},
                {"name": "last", "min_duration": 0, "final": true, "cmdline": "echo ran > final"}
            ]
        })
        .to_string(),
    )
    .unwrap();
    config
}

/// `thermos kill` reaches the processes of a task that `thermos run` runs: they start with an
/// empty signal mask and default dispositions (even when `thermos` itself was started with
/// SIGINT and SIGTERM ignored), so a process that traps SIGTERM ends gracefully, and the final
/// processes run, long before `finalization_wait` (60 s) would force the end.
#[test]
fn kill_reaches_task_processes_gracefully_and_final_processes_run() {
    use nix::sys::signal::Signal;
    let s = setup();
    let config = trapping_task(s.config.parent().unwrap());
    let sandbox = s.root.join("sandbox/sig-1");
    // Started the way a shell starts a background job without job control: both ignored.
    let run = Command::new("/bin/sh")
        .args(["-c", "trap '' INT TERM; exec \"$0\" \"$@\""])
        .arg(env!("CARGO_BIN_EXE_thermos"))
        .arg("--root")
        .arg(&s.root)
        .arg("run")
        .arg(&config)
        .args(["--task_id", "sig-1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    eventually("the process to record its signals", || {
        sandbox.join("signals").exists()
    });
    let (blocked, ignored) = signal_bits(&fs::read_to_string(sandbox.join("signals")).unwrap());
    for sig in [Signal::SIGINT, Signal::SIGTERM] {
        assert_eq!(blocked & bit(sig), 0, "{sig} blocked: {blocked:x}");
        assert_eq!(ignored & bit(sig), 0, "{sig} ignored: {ignored:x}");
    }

    let started = Instant::now();
    let (code, out, err) = output(thermos(&s.root).args(["kill", "^sig-1$", "--grace-secs", "60"]));
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("sig-1: KILLED"), "{out}");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "the kill waited for SIGKILL: {:?}",
        started.elapsed()
    );
    assert_eq!(
        fs::read_to_string(sandbox.join("trapped")).unwrap(),
        "trapped\n"
    );
    assert_eq!(fs::read_to_string(sandbox.join("final")).unwrap(), "ran\n");
    let out = run.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(3), "{stdout}");
    // The trap's `exit 0`, not a SIGKILL (-9).
    assert!(
        stdout.contains("process main: SUCCESS (runs 1, exit code 0)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("process last: SUCCESS (runs 1, exit code 0)"),
        "{stdout}"
    );
}

/// Ctrl-C (SIGINT to `thermos run`) kills the task gracefully too.
#[test]
fn sigint_to_thermos_run_kills_the_task_gracefully() {
    let s = setup();
    let config = trapping_task(s.config.parent().unwrap());
    let sandbox = s.root.join("sandbox/int-1");
    let run = spawn_run(&s.root, &config, "int-1", &[]);
    eventually("the process to trap SIGTERM", || {
        sandbox.join("signals").exists()
    });
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(run.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let out = run.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(3), "{stdout}");
    assert!(stdout.contains("task finished: KILLED"), "{stdout}");
    assert_eq!(
        fs::read_to_string(sandbox.join("trapped")).unwrap(),
        "trapped\n"
    );
    assert_eq!(fs::read_to_string(sandbox.join("final")).unwrap(), "ran\n");
}
