//! The executor agent against a tiny fake scheduler on loopback.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use aurora_core::api::{MachineResources, PortRange};
use aurora_core::{AssignedTask, ScheduleStatus, TaskId};
use aurora_thermos::test_support::{FakeScheduler, assigned_task};
use aurora_thermos::{Agent, AgentConfig};

/// Waits for `id` to be reported in `status` and returns its states so far.
fn wait_for(
    sched: &FakeScheduler,
    id: &str,
    status: ScheduleStatus,
) -> Vec<(ScheduleStatus, Option<String>)> {
    sched.wait_for_status(id, status, Duration::from_secs(20))
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
    let mut task = assigned_task(id, "fake-host", 7, "alice", &job);
    task.assigned_ports = ports.iter().map(|(n, p)| (n.to_string(), *p)).collect();
    task
}

#[test]
fn runs_reports_and_kills_tasks() {
    let sched = FakeScheduler::new(Duration::from_millis(50));
    let url = sched.serve();
    let dir = tempfile::tempdir().unwrap();
    sched.launch(vec![
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
    ]);
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
    let ok = wait_for(&sched, "ok", Finished);
    assert_eq!(
        ok.iter().map(|s| s.0).collect::<Vec<_>>(),
        [Starting, Running, Finished]
    );
    let out =
        std::fs::read_to_string(dir.path().join("tasks/ok/sandbox/.logs/main/0/stdout")).unwrap();
    assert_eq!(out, "7 www-data ok 31001\n");

    let noport = wait_for(&sched, "noport", Failed);
    let msg = noport.last().unwrap().1.clone().unwrap();
    assert!(msg.contains("\"admin\""), "{msg}");

    let fails = wait_for(&sched, "fails", Failed);
    let msg = fails.last().unwrap().1.clone().unwrap();
    assert!(
        msg.contains("\"main\"") && msg.contains("exit code 7"),
        "{msg}"
    );

    wait_for(&sched, "long", Running);
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
    sched.kill(vec![TaskId("long".into())]);
    let long = wait_for(&sched, "long", Killed);
    assert_eq!(long.last().unwrap().0, Killed);
    assert!(!aurora_thermos::is_alive(pid));

    assert_eq!(sched.registrations().len(), 1);
    stop.store(true, Ordering::SeqCst);
    runner.join().unwrap();
}
