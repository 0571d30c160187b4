//! The executor agent against a tiny fake scheduler on loopback.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aurora_core::api::{ExecutorWork, MachineResources, PortRange, StatusUpdate};
use aurora_core::{
    AssignedTask, ExecutorConfig, Identity, Resources, ScheduleStatus, TaskConfig, TaskId,
};
use aurora_thermos::{Agent, AgentConfig};

#[derive(Default)]
struct Scheduler {
    /// Work to hand out on the next register or heartbeat.
    pending: Mutex<ExecutorWork>,
    statuses: Mutex<Vec<StatusUpdate>>,
    registrations: Mutex<u32>,
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
                reader.read_line(&mut h).unwrap();
                let h = h.trim_end();
                if h.is_empty() {
                    break;
                }
                if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap();
                }
            }
            let mut body = vec![0; len];
            reader.read_exact(&mut body).unwrap();
            let answer = if path.ends_with("/status") {
                let update: StatusUpdate = serde_json::from_slice(&body).unwrap();
                self.statuses.lock().unwrap().push(update);
                "{}".to_owned()
            } else {
                if path == "/api/executors" {
                    *self.registrations.lock().unwrap() += 1;
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

    fn statuses_of(&self, id: &str) -> Vec<(ScheduleStatus, Option<String>)> {
        self.statuses
            .lock()
            .unwrap()
            .iter()
            .filter(|u| u.task_id.as_str() == id)
            .map(|u| (u.status, u.message.clone()))
            .collect()
    }

    fn wait_for(&self, id: &str, status: ScheduleStatus) -> Vec<(ScheduleStatus, Option<String>)> {
        let until = Instant::now() + Duration::from_secs(20);
        loop {
            let s = self.statuses_of(id);
            if s.iter().any(|(st, _)| *st == status) {
                return s;
            }
            assert!(Instant::now() < until, "{id} never reached {status}: {s:?}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

fn assigned(id: &str, cmdline: &str, ports: &[(&str, u16)]) -> AssignedTask {
    let job = serde_json::json!({
        "role": "www-data", "environment": "prod", "name": "hello",
        "task": {
            "name": "hello",
            "processes": [{"name": "main", "cmdline": cmdline, "min_duration": 0}],
            "constraints": [{"order": ["main"]}],
            "resources": {"cpu": 1.0, "ram": 536870912, "disk": 536870912},
        }
    });
    AssignedTask {
        task_id: TaskId(id.to_owned()),
        slave_host: Some("fake-host".into()),
        instance_id: 7,
        task: TaskConfig {
            job: "c/www-data/prod/hello".parse().unwrap(),
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
        assigned_ports: ports.iter().map(|(n, p)| (n.to_string(), *p)).collect(),
    }
}

#[test]
fn runs_reports_and_kills_tasks() {
    let sched = Arc::new(Scheduler::default());
    let url = sched.serve();
    let dir = tempfile::tempdir().unwrap();
    sched.pending.lock().unwrap().launch = vec![
        assigned(
            "ok",
            "echo {{mesos.instance}} {{thermos.user}} {{thermos.task_id}} {{thermos.ports[http]}}",
            &[("http", 31001)],
        ),
        assigned(
            "noport",
            "echo {{thermos.ports[admin]}}",
            &[("http", 31002)],
        ),
        assigned("fails", "exit 7", &[]),
        assigned("long", "sleep 1000 & echo $! > bg.pid; wait", &[]),
    ];
    let agent = Agent::new(AgentConfig {
        scheduler: url,
        work_dir: dir.path().to_owned(),
        host: "fake-host".into(),
        attributes: BTreeMap::new(),
        resources: MachineResources {
            cpu: 1.0,
            ram_bytes: 1 << 30,
            disk_bytes: 1 << 30,
            ports: PortRange {
                begin: 31000,
                end: 32000,
            },
        },
        kill_grace: Duration::from_millis(200),
        user_mode: aurora_thermos::UserMode::Current,
    })
    .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let runner = {
        let stop = stop.clone();
        std::thread::spawn(move || agent.run(&stop))
    };

    use ScheduleStatus::*;
    let ok = sched.wait_for("ok", Finished);
    assert_eq!(
        ok.iter().map(|s| s.0).collect::<Vec<_>>(),
        [Starting, Running, Finished]
    );
    let out =
        std::fs::read_to_string(dir.path().join("tasks/ok/sandbox/.logs/main/0/stdout")).unwrap();
    assert_eq!(out, "7 www-data ok 31001\n");

    let noport = sched.wait_for("noport", Failed);
    let msg = noport.last().unwrap().1.clone().unwrap();
    assert!(msg.contains("\"admin\""), "{msg}");

    let fails = sched.wait_for("fails", Failed);
    let msg = fails.last().unwrap().1.clone().unwrap();
    assert!(
        msg.contains("\"main\"") && msg.contains("exit code 7"),
        "{msg}"
    );

    sched.wait_for("long", Running);
    let pid_file = dir.path().join("tasks/long/sandbox/bg.pid");
    let until = Instant::now() + Duration::from_secs(20);
    let pid: u32 = loop {
        if let Some(p) = std::fs::read_to_string(&pid_file)
            .ok()
            .and_then(|s| s.trim().parse().ok())
        {
            break p;
        }
        assert!(Instant::now() < until, "no pid file");
        std::thread::sleep(Duration::from_millis(10));
    };
    assert!(aurora_thermos::is_alive(pid));
    sched.pending.lock().unwrap().kill = vec![TaskId("long".into())];
    let long = sched.wait_for("long", Killed);
    assert_eq!(long.last().unwrap().0, Killed);
    assert!(!aurora_thermos::is_alive(pid));

    assert_eq!(*sched.registrations.lock().unwrap(), 1);
    stop.store(true, Ordering::SeqCst);
    runner.join().unwrap();
}
