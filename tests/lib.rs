//! A harness for end-to-end tests: it starts the real `aurora-scheduler` and `aurora-executor`
//! binaries on loopback ports in a temporary directory, and runs the real `aurora` client
//! against them. The binaries are found next to the test executable's target directory, so
//! build them first (`cargo build --workspace --bins`; `scripts/test` does).

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The path of one of the workspace's binaries.
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test knows its own path");
    // target/<profile>/deps/e2e-xxxx → target/<profile>/<name>
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test binary lives in target/*/deps");
    let path = dir.join(name);
    assert!(
        path.is_file(),
        "{} is missing: build the binaries first with `cargo build --workspace --bins` \
         (scripts/test does this)",
        path.display()
    );
    path
}

/// A free TCP port on loopback (bound then released).
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    listener.local_addr().expect("local address").port()
}

/// Polls `check` until it returns `Some`, failing after `timeout` with `what`.
pub fn wait_for<T>(what: &str, timeout: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A child process killed when dropped.
pub struct Daemon {
    child: Child,
    /// What it is, for messages.
    pub name: String,
}

impl Daemon {
    /// The child's pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kills the process with SIGKILL and reaps it.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// A local cluster: one scheduler, executors, a clusters.json naming it `local`.
pub struct LocalCluster {
    /// The temporary directory holding everything.
    pub dir: tempfile::TempDir,
    /// The scheduler's port.
    pub port: u16,
    /// The scheduler process.
    pub scheduler: Option<Daemon>,
    /// The executor processes.
    pub executors: Vec<Daemon>,
}

impl LocalCluster {
    /// Starts a scheduler with a fresh data directory and writes the cluster file.
    pub fn start() -> LocalCluster {
        LocalCluster::start_with(&[])
    }

    /// Like [`LocalCluster::start`], with extra flags for the scheduler (e.g. short timeouts).
    pub fn start_with(scheduler_args: &[&str]) -> LocalCluster {
        let dir = tempfile::tempdir().expect("temporary directory");
        let port = free_port();
        std::fs::create_dir_all(dir.path().join("home")).expect("home dir");
        std::fs::write(
            dir.path().join("clusters.json"),
            format!(r#"[{{"name": "local", "scheduler_uri": "localhost:{port}"}}]"#),
        )
        .expect("write clusters.json");
        let mut cluster = LocalCluster {
            dir,
            port,
            scheduler: None,
            executors: Vec::new(),
        };
        cluster.start_scheduler_with(scheduler_args);
        cluster
    }

    /// The scheduler's URL.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// (Re)starts the scheduler on the same port and data directory.
    pub fn start_scheduler(&mut self) {
        self.start_scheduler_with(&[]);
    }

    /// (Re)starts the scheduler on the same port and data directory with extra flags. Its log
    /// is appended to, so a restart keeps the earlier run's lines for failure messages.
    pub fn start_scheduler_with(&mut self, extra: &[&str]) {
        let data = self.dir.path().join("scheduler-data");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("scheduler.log"))
            .expect("log file");
        let mut child = Command::new(binary("aurora-scheduler"))
            .args([
                "--http-port",
                &self.port.to_string(),
                "--http-host",
                "127.0.0.1",
            ])
            .arg("--data-dir")
            .arg(&data)
            .args(["--cluster", "local", "--heartbeat-interval-ms", "200"])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("start aurora-scheduler");
        let stdout = child.stdout.take().expect("scheduler stdout");
        let mut lines = BufReader::new(stdout).lines();
        let first = lines.next().and_then(Result::ok).unwrap_or_default();
        assert!(
            first.contains("listening on"),
            "scheduler did not start: {first:?}; log: {}",
            self.read("scheduler.log")
        );
        // Keep draining stdout so the scheduler never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        self.scheduler = Some(Daemon {
            child,
            name: "scheduler".into(),
        });
    }

    /// Starts an executor for host `host` with extra `name=value` attributes.
    pub fn start_executor(&mut self, host: &str, attributes: &[&str]) {
        let work = self.dir.path().join(format!("executor-{host}"));
        let log = std::fs::File::create(self.dir.path().join(format!("executor-{host}.log")))
            .expect("log file");
        let mut command = Command::new(binary("aurora-executor"));
        command
            .args(["--scheduler", &self.url(), "--hostname", host])
            .arg("--work-dir")
            .arg(&work)
            .args(["--cpu", "4", "--ram-mb", "4096", "--disk-mb", "4096"])
            .args(["--port-range", "41000-41999", "--kill-grace-secs", "2"])
            // The harness keeps everything in a root-only temporary directory.
            .arg("--run-as-executor-user")
            .stdout(Stdio::null())
            .stderr(log);
        for attribute in attributes {
            command.args(["--attribute", attribute]);
        }
        let child = command.spawn().expect("start aurora-executor");
        self.executors.push(Daemon {
            child,
            name: format!("executor {host}"),
        });
    }

    /// Reads a file of the cluster directory, or an empty string.
    pub fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default()
    }

    /// Writes a file into the cluster directory and returns its path.
    pub fn write(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, contents).expect("write file");
        path
    }

    /// Runs the `aurora` client with this cluster's configuration.
    pub fn aurora(&self, args: &[&str]) -> Output {
        Command::new(binary("aurora"))
            .args(args)
            .env("AURORA_CONFIG_ROOT", self.dir.path().join("clusters.json"))
            .env("HOME", self.dir.path().join("home"))
            .env("USER", "e2e")
            .output()
            .expect("run aurora")
    }

    /// Runs `aurora` and fails the test unless it exits 0; returns stdout.
    pub fn aurora_ok(&self, args: &[&str]) -> String {
        let out = self.aurora(args);
        assert!(
            out.status.success(),
            "aurora {args:?} failed with {:?}\nstdout: {}\nstderr: {}\nscheduler log: {}\nexecutor logs: {}",
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.read("scheduler.log"),
            self.executor_logs(),
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Every executor log, for failure messages.
    pub fn executor_logs(&self) -> String {
        let mut out = String::new();
        for entry in std::fs::read_dir(self.dir.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with("executor-") && name.ends_with(".log") {
                out.push_str(&format!("--- {name}\n{}", self.read(&name)));
            }
        }
        out
    }

    /// The tasks of a job as `aurora status --write-json` reports them.
    pub fn tasks(&self, job_key: &str) -> Vec<Value> {
        let text = self.aurora_ok(&["status", job_key, "--write-json"]);
        let value: Value = serde_json::from_str(&text).expect("status prints JSON");
        value["tasks"].as_array().cloned().unwrap_or_default()
    }
}

/// The state names of a task's history.
pub fn history(task: &Value) -> Vec<String> {
    task["task_events"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| e["status"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// Whether a process with this pid still exists (and is not a zombie).
pub fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            // The state follows the parenthesised command name.
            let state = stat
                .rsplit(')')
                .next()
                .and_then(|s| s.split_whitespace().next());
            state != Some("Z") && state != Some("X")
        }
        Err(_) => false,
    }
}

/// A JSON job config with one process per `(name, cmdline)`, run in order.
pub fn job_json(name: &str, service: bool, processes: &[(&str, &str)]) -> String {
    let procs: Vec<Value> = processes
        .iter()
        .map(|(n, c)| serde_json::json!({"name": n, "cmdline": c}))
        .collect();
    let order: Vec<&str> = processes.iter().map(|(n, _)| *n).collect();
    serde_json::json!({
        "name": name,
        "role": "www-data",
        "cluster": "local",
        "environment": "devel",
        "service": service,
        "task": {
            "processes": procs,
            "constraints": [{"order": order}],
            "resources": {"cpu": 0.1, "ram": 16 * 1024 * 1024, "disk": 16 * 1024 * 1024}
        }
    })
    .to_string()
}
