//! Job locks: a lock taken through the HTTP API (as an update takes one) blocks `aurora kill`,
//! survives a `kill -9` of the scheduler, is listed by `aurora admin get_locks`, and
//! `aurora cancel_update` releases it.

use std::time::Duration;

use serde_json::{Value, json};
use tests::{LocalCluster, job_json};

const KEY: &str = "local/www-data/devel/locked";

fn post(cluster: &LocalCluster, path: &str, body: &Value) -> (u16, Value) {
    let response = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("http client")
        .post(format!("{}{path}", cluster.url()))
        .json(body)
        .send()
        .expect("the scheduler answers");
    let code = response.status().as_u16();
    (code, response.json().expect("a JSON answer"))
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn a_lock_blocks_kill_survives_kill9_and_cancel_update_releases_it() {
    let mut cluster = LocalCluster::start();
    cluster.start_executor("host1", &[]);
    let config = cluster.write(
        "locked.json",
        &job_json("locked", true, &[("s", "sleep 1000")]),
    );
    let config = config.to_str().expect("utf-8 path");
    cluster.aurora_ok(&["create", KEY, config, "-j", "--wait_until", "RUNNING"]);

    // An update locks the job through the API.
    let (code, lock) = post(
        &cluster,
        "/api/jobs/www-data/devel/locked/lock",
        &json!({"user": "updater", "message": "update to v2"}),
    );
    assert_eq!(code, 200, "{lock}");
    let token = lock["token"].as_str().expect("a token").to_owned();
    let (code, refused) = post(
        &cluster,
        "/api/jobs/www-data/devel/locked/lock",
        &json!({"user": "someone-else"}),
    );
    assert_eq!(code, 409, "{refused}");

    // The client's kill is refused, naming the holder.
    let out = cluster.aurora(&["kill", KEY, "--no-wait"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("locked by updater since") && err.contains("(update to v2)"),
        "{err}"
    );
    assert!(err.contains("aurora cancel_update"), "{err}");

    // The lock is durable: it is there after a kill -9 and a restart.
    cluster.scheduler.as_mut().expect("scheduler").kill9();
    cluster.start_scheduler();
    let listed = cluster.aurora_ok(&["admin", "get_locks", "local"]);
    assert!(
        listed.contains(&format!("{KEY}  user: updater")) && listed.contains(&token),
        "{listed}"
    );
    let out = cluster.aurora(&["kill", KEY, "--no-wait"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "still locked after the restart: {}",
        stderr(&out)
    );

    // cancel_update releases it whoever holds it; then kill works.
    let out = cluster.aurora_ok(&["cancel_update", KEY, config, "-j"]);
    assert!(
        out.contains("released the lock of local/www-data/devel/locked held by updater"),
        "{out}"
    );
    let listed = cluster.aurora_ok(&["admin", "get_locks", "local", "--write-json"]);
    let listed: Value = serde_json::from_str(&listed).expect("JSON");
    assert_eq!(listed["locks"], json!([]));
    let out = cluster.aurora_ok(&["kill", KEY]);
    assert!(out.contains("All killed tasks have ended."), "{out}");

    // Nothing left to cancel: as in the original, that is fine, and says so.
    let out = cluster.aurora_ok(&["cancel_update", KEY]);
    assert!(out.contains("no update in progress"), "{out}");
    assert!(out.contains("is not locked"), "{out}");
}
