//! Fleet commands of the client: list_jobs, restart, get_quota and the admin commands.

use std::time::Duration;

use serde_json::Value;
use tests::{LocalCluster, history, job_json, wait_for};

fn json_of(text: &str) -> Value {
    serde_json::from_str(text).expect("--write-json prints JSON")
}

#[test]
fn quota_list_restart_and_drain_through_the_client() {
    let mut cluster = LocalCluster::start();
    cluster.start_executor("host1", &["rack=a"]);
    cluster.start_executor("host2", &["rack=b"]);

    // An administrator sets quota; get_quota shows it with the consumption.
    let out = cluster.aurora_ok(&["admin", "set_quota", "local", "www-data", "2", "1G", "2G"]);
    assert!(
        out.contains("allocated (production)     cpu: 2.00  ram: 1024 MB  disk: 2048 MB"),
        "{out}"
    );
    let quota = json_of(&cluster.aurora_ok(&["get_quota", "local/www-data", "--write-json"]));
    assert_eq!(quota["quota"]["ram_bytes"], 1u64 << 30);
    let bad = cluster.aurora(&["admin", "set_quota", "local", "www-data", "1", "12X", "1G"]);
    assert_eq!(bad.status.code(), Some(2), "a bad size is a usage error");

    // A service runs; list_jobs shows it with its task counts.
    let path = cluster.write("svc.json", &job_json("svc", true, &[("s", "sleep 1000")]));
    let key = "local/www-data/devel/svc";
    cluster.aurora_ok(&[
        "create",
        key,
        path.to_str().unwrap(),
        "-j",
        "--wait_until",
        "RUNNING",
    ]);
    let listed = cluster.aurora_ok(&["list_jobs", "local/www-data"]);
    assert!(
        listed.contains("local/www-data/devel/svc  instances: 1  tasks: 1 RUNNING"),
        "{listed}"
    );
    let other = cluster.aurora_ok(&["list_jobs", "local/nobody"]);
    assert!(other.contains("No jobs under local/nobody"), "{other}");

    // restart replaces the running task with a new one.
    let first = cluster.tasks(key)[0]["assigned_task"]["task_id"].clone();
    cluster.aurora_ok(&["restart", key]);
    let tasks = wait_for(
        "the restarted instance to run again",
        Duration::from_secs(60),
        || {
            let tasks = cluster.tasks(key);
            let running = tasks
                .iter()
                .any(|t| t["status"] == "RUNNING" && t["assigned_task"]["task_id"] != first);
            running.then_some(tasks)
        },
    );
    let old = tasks
        .iter()
        .find(|t| t["assigned_task"]["task_id"] == first)
        .expect("old task kept");
    assert!(
        history(old).contains(&"RESTARTING".to_owned()),
        "{:?}",
        history(old)
    );

    // Draining the host moves the task to the other one.
    let host =
        tasks.iter().find(|t| t["status"] == "RUNNING").unwrap()["assigned_task"]["slave_host"]
            .as_str()
            .unwrap()
            .to_owned();
    cluster.aurora_ok(&["admin", "host_drain", "local", &host]);
    wait_for(
        "the task to move off the drained host",
        Duration::from_secs(60),
        || {
            cluster
                .tasks(key)
                .iter()
                .any(|t| {
                    t["status"] == "RUNNING" && t["assigned_task"]["slave_host"] != host.as_str()
                })
                .then_some(())
        },
    );
    let status = cluster.aurora_ok(&["admin", "host_status", "local"]);
    assert!(status.contains(&format!("{host}: Dr")), "{status}");
    cluster.aurora_ok(&["admin", "host_activate", "local", &host]);
    let status = cluster.aurora_ok(&["admin", "host_status", "local"]);
    assert!(status.contains("No host is in maintenance"), "{status}");
}
