//! What the real `aurora` binary prints against a real scheduler and executor, pinned by
//! snapshots (`tests/e2e/snapshots`). Values that change from run to run (times, task ids,
//! the scheduler's port and host name) are replaced by placeholders first.

use serde_json::Value;
use tests::{LocalCluster, job_json};

/// Whether `token` is an RFC 3339 time as the client prints it, e.g.
/// `2023-11-14T22:13:20.000Z`.
fn is_time(token: &str) -> bool {
    let shape = "dddd-dd-ddTdd:dd:dd.dddZ";
    token.len() == shape.len()
        && token.chars().zip(shape.chars()).all(|(c, s)| match s {
            'd' => c.is_ascii_digit(),
            other => c == other,
        })
}

/// Replaces the task ids (numbered in the order given), the scheduler's port and every time.
fn redact_text(text: &str, task_ids: &[String], port: u16) -> String {
    let mut text = text.replace(&format!(":{port}/"), ":[port]/");
    for (i, id) in task_ids.iter().enumerate() {
        text = text.replace(id.as_str(), &format!("[task-{i}]"));
    }
    text.split_inclusive(|c: char| c.is_whitespace())
        .map(|piece| {
            let token = piece.trim_end();
            if is_time(token) {
                piece.replacen(token, "[time]", 1)
            } else {
                piece.to_owned()
            }
        })
        .collect()
}

/// The same for JSON: task ids, epoch-millisecond times and the recording scheduler's host.
fn redact_json(value: &mut Value, task_ids: &[String]) {
    match value {
        Value::Object(map) => {
            for (key, v) in map.iter_mut() {
                match (key.as_str(), &*v) {
                    ("timestamp_ms", Value::Number(_)) => *v = Value::from("[time]"),
                    ("scheduler", Value::String(_)) => *v = Value::from("[scheduler host]"),
                    _ => redact_json(v, task_ids),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| redact_json(v, task_ids)),
        Value::String(s) => {
            if let Some(i) = task_ids.iter().position(|id| id == s) {
                *s = format!("[task-{i}]");
            }
        }
        _ => {}
    }
}

#[test]
fn status_list_jobs_and_quota_output() {
    let mut cluster = LocalCluster::start();
    cluster.start_executor("host1", &["rack=a"]);
    let port: u16 = cluster
        .url()
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("the scheduler URL ends with its port");

    let set = cluster.aurora_ok(&["admin", "set_quota", "local", "www-data", "2", "1G", "2G"]);
    insta::assert_snapshot!("set_quota_text", set);

    let config = cluster.write(
        "svc.json",
        &job_json("svc", true, &[("serve", "sleep 1000")]),
    );
    let key = "local/www-data/devel/svc";
    let created = cluster.aurora_ok(&[
        "create",
        key,
        config.to_str().unwrap(),
        "-j",
        "--wait_until",
        "RUNNING",
    ]);
    insta::assert_snapshot!("create_text", redact_text(&created, &[], port));

    let ids: Vec<String> = cluster
        .tasks(key)
        .iter()
        .filter_map(|t| t["assigned_task"]["task_id"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(ids.len(), 1, "one instance, one task: {ids:?}");
    let status = cluster.aurora_ok(&["status", key]);
    insta::assert_snapshot!("status_text", redact_text(&status, &ids, port));
    let mut status: Value =
        serde_json::from_str(&cluster.aurora_ok(&["status", key, "--write-json"])).unwrap();
    redact_json(&mut status, &ids);
    insta::assert_json_snapshot!("status_json", status);

    insta::assert_snapshot!(
        "list_jobs_text",
        cluster.aurora_ok(&["list_jobs", "local/www-data"])
    );
    insta::assert_snapshot!(
        "list_jobs_json",
        cluster.aurora_ok(&["list_jobs", "local/www-data", "--write-json"])
    );
    insta::assert_snapshot!(
        "get_quota_text",
        cluster.aurora_ok(&["get_quota", "local/www-data"])
    );
    insta::assert_snapshot!(
        "get_quota_json",
        cluster.aurora_ok(&["get_quota", "local/www-data", "--write-json"])
    );
}

#[test]
fn redaction_replaces_only_variable_values() {
    let ids = ["1700-www-data-devel-svc-0-ab12".to_owned()];
    assert_eq!(
        redact_text(
            "  task id: 1700-www-data-devel-svc-0-ab12\n      2023-11-14T22:13:20.000Z RUNNING\nJob url: http://localhost:4321/scheduler/x\nram: 4321 MB\n",
            &ids,
            4321
        ),
        "  task id: [task-0]\n      [time] RUNNING\nJob url: http://localhost:[port]/scheduler/x\nram: 4321 MB\n"
    );
    let mut v =
        serde_json::json!({"task_id": ids[0], "timestamp_ms": 5, "scheduler": "box", "cpu": 5});
    redact_json(&mut v, &ids);
    assert_eq!(
        v,
        serde_json::json!({"task_id": "[task-0]", "timestamp_ms": "[time]", "scheduler": "[scheduler host]", "cpu": 5})
    );
}
