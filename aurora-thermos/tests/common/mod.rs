//! Helpers shared by the runner's tests with real processes (`runner.rs` and `semantics.rs`).

use std::fs;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use aurora_thermos::{ProcessSpec, RunOptions, RunSpec, RunnerHandle, TaskRunner, TaskSpec};

/// A temporary directory holding a task's sandbox and checkpoint.
pub struct Fixture {
    pub dir: tempfile::TempDir,
    task_id: &'static str,
}

impl Fixture {
    /// A fresh directory for the task `task_id`.
    pub fn new(task_id: &'static str) -> Fixture {
        Fixture {
            dir: tempfile::tempdir().unwrap(),
            task_id,
        }
    }

    pub fn sandbox(&self) -> PathBuf {
        fs::canonicalize(self.dir.path()).unwrap().join("sandbox")
    }

    pub fn checkpoint(&self) -> PathBuf {
        self.dir.path().join("checkpoint")
    }

    /// What to run: `task` as user `tester` with `ports` and `options`.
    pub fn spec(&self, task: TaskSpec, ports: &[(&str, u16)], options: RunOptions) -> RunSpec {
        RunSpec {
            task,
            task_id: self.task_id.into(),
            sandbox: self.sandbox(),
            checkpoint: self.checkpoint(),
            user: "tester".into(),
            ports: ports.iter().map(|(n, p)| (n.to_string(), *p)).collect(),
            options,
        }
    }

    /// Starts `task` without ports and with the default options.
    pub fn start(&self, task: TaskSpec) -> RunnerHandle {
        self.start_with(task, &[], RunOptions::default())
    }

    pub fn start_with(
        &self,
        task: TaskSpec,
        ports: &[(&str, u16)],
        options: RunOptions,
    ) -> RunnerHandle {
        TaskRunner::start(self.spec(task, ports, options)).unwrap()
    }
}

/// A process that may end at once (no minimum duration).
pub fn proc(name: &str, cmdline: &str) -> ProcessSpec {
    let mut p = ProcessSpec::new(name, cmdline);
    p.min_duration = 0;
    p
}

/// Polls `cond` until it holds; fails the test if `deadline` passes first.
pub fn eventually(what: &str, deadline: Duration, cond: impl Fn() -> bool) {
    let until = Instant::now() + deadline;
    while !cond() {
        assert!(Instant::now() < until, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}
