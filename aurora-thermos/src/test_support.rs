//! Test support, not part of the API: a fake scheduler for the executor agent's tests and
//! benchmarks (this crate's and the `aurora-executor` binary's). It may change at any time.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use aurora_core::api::{ExecutorWork, RegisterExecutorRequest, StatusUpdate};
use aurora_core::{
    AssignedTask, ExecutorConfig, Identity, Resources, ScheduleStatus, TaskConfig, TaskId,
};

/// A tiny scheduler on loopback that speaks the executor side of [`aurora_core::api`]:
/// `POST /api/executors` (register) and heartbeats answer with the pending work (handed out
/// once), and `POST .../status` records the update. Waiting on what it saw blocks on a
/// condition variable, so no test has to sleep to find out.
#[derive(Debug)]
pub struct FakeScheduler {
    heartbeat_interval_ms: u64,
    seen: Mutex<Seen>,
    changed: Condvar,
}

#[derive(Debug, Default)]
struct Seen {
    /// Work for the next register or heartbeat.
    pending: ExecutorWork,
    statuses: Vec<StatusUpdate>,
    registrations: Vec<RegisterExecutorRequest>,
}

impl FakeScheduler {
    /// A scheduler that asks for a heartbeat every `heartbeat_interval`.
    pub fn new(heartbeat_interval: Duration) -> Arc<FakeScheduler> {
        Arc::new(FakeScheduler {
            heartbeat_interval_ms: heartbeat_interval.as_millis() as u64,
            seen: Mutex::default(),
            changed: Condvar::new(),
        })
    }

    /// Listens on a loopback port (a thread per connection, for the life of the process) and
    /// returns its base URL.
    pub fn serve(self: &Arc<Self>) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the fake scheduler");
        let addr = listener.local_addr().expect("the fake scheduler's address");
        let me = self.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let me = me.clone();
                std::thread::spawn(move || me.connection(conn));
            }
        });
        format!("http://{addr}")
    }

    /// Tasks to launch on the next register or heartbeat (replacing any not handed out yet).
    pub fn launch(&self, tasks: Vec<AssignedTask>) {
        self.seen().pending.launch = tasks;
    }

    /// Tasks to kill on the next register or heartbeat (replacing any not handed out yet).
    pub fn kill(&self, tasks: Vec<TaskId>) {
        self.seen().pending.kill = tasks;
    }

    /// Every status update received, in order.
    pub fn statuses(&self) -> Vec<StatusUpdate> {
        self.seen().statuses.clone()
    }

    /// The states (and messages) reported for `task`, in order.
    pub fn statuses_of(&self, task: &str) -> Vec<(ScheduleStatus, Option<String>)> {
        self.seen()
            .statuses
            .iter()
            .filter(|u| u.task_id.as_str() == task)
            .map(|u| (u.status, u.message.clone()))
            .collect()
    }

    /// Every registration received, in order.
    pub fn registrations(&self) -> Vec<RegisterExecutorRequest> {
        self.seen().registrations.clone()
    }

    /// Blocks until `cond` holds of the status updates and registrations received so far
    /// (checked again on each new one) or `timeout` passes; returns whether it held.
    pub fn wait_until(
        &self,
        timeout: Duration,
        mut cond: impl FnMut(&[StatusUpdate], &[RegisterExecutorRequest]) -> bool,
    ) -> bool {
        let until = Instant::now() + timeout;
        let mut seen = self.seen();
        loop {
            if cond(&seen.statuses, &seen.registrations) {
                return true;
            }
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            seen = self
                .changed
                .wait_timeout(seen, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Waits up to `timeout` for `task` to be reported in `status` and returns its states so
    /// far; panics if it is not.
    pub fn wait_for_status(
        &self,
        task: &str,
        status: ScheduleStatus,
        timeout: Duration,
    ) -> Vec<(ScheduleStatus, Option<String>)> {
        self.wait_until(timeout, |statuses, _| {
            statuses
                .iter()
                .any(|u| u.task_id.as_str() == task && u.status == status)
        });
        let states = self.statuses_of(task);
        assert!(
            states.iter().any(|(s, _)| *s == status),
            "{task} never reached {status}: {states:?}"
        );
        states
    }

    /// Waits up to `timeout` for `n` status updates with `status` (of any tasks); panics if
    /// they do not come.
    pub fn wait_for_count(&self, status: ScheduleStatus, n: usize, timeout: Duration) {
        let count =
            |statuses: &[StatusUpdate]| statuses.iter().filter(|u| u.status == status).count();
        if !self.wait_until(timeout, |statuses, _| count(statuses) >= n) {
            panic!(
                "only {} of {n} tasks reached {status}",
                count(&self.seen().statuses)
            );
        }
    }

    fn seen(&self) -> MutexGuard<'_, Seen> {
        self.seen.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Serves one keep-alive connection until the client closes it.
    fn connection(&self, conn: TcpStream) {
        let Ok(read) = conn.try_clone() else { return };
        let mut reader = BufReader::new(read);
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
                    len = v.trim().parse().expect("a content length");
                }
            }
            let mut body = vec![0; len];
            if reader.read_exact(&mut body).is_err() {
                return;
            }
            let answer = self.answer(&path, &body);
            let resp = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{answer}",
                answer.len()
            );
            if conn.write_all(resp.as_bytes()).is_err() {
                return;
            }
        }
    }

    /// The JSON answer to a request for `path` with `body`.
    fn answer(&self, path: &str, body: &[u8]) -> String {
        let mut seen = self.seen();
        if path.ends_with("/status") {
            let update: StatusUpdate = serde_json::from_slice(body).expect("a status update");
            seen.statuses.push(update);
            self.changed.notify_all();
            return "{}".to_owned();
        }
        if path == "/api/executors" {
            let req: RegisterExecutorRequest =
                serde_json::from_slice(body).expect("a registration");
            seen.registrations.push(req);
            self.changed.notify_all();
        }
        let mut work = std::mem::take(&mut seen.pending);
        work.heartbeat_interval_ms = self.heartbeat_interval_ms;
        serde_json::to_string(&work).expect("serialize the work")
    }
}

/// A task for the executor: instance `instance_id` of the Thermos job `job` (its `role`,
/// `environment` and `name` make the job key, in cluster `c`), as `user` of the job's role,
/// assigned to `host` without ports.
pub fn assigned_task(
    task_id: &str,
    host: &str,
    instance_id: u32,
    user: &str,
    job: &serde_json::Value,
) -> AssignedTask {
    let field = |name: &str| {
        job[name]
            .as_str()
            .expect("a job with role, environment and name")
    };
    AssignedTask {
        task_id: TaskId(task_id.to_owned()),
        slave_host: Some(host.into()),
        instance_id,
        task: TaskConfig {
            job: format!(
                "c/{}/{}/{}",
                field("role"),
                field("environment"),
                field("name")
            )
            .parse()
            .expect("a job key"),
            owner: Identity {
                role: field("role").into(),
                user: user.into(),
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
        }
        .into(),
        assigned_ports: BTreeMap::new(),
    }
}
