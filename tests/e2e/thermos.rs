//! `thermos --root <executor work dir>`: the `thermos` tool reads the tasks a real
//! `aurora-executor` runs (its layout is `tasks/<id>/checkpoint`, not `thermos run`'s
//! `checkpoints/<id>/runner`), and leaves the killing of a live executor's task to the
//! scheduler.

use std::process::{Command, Output};
use std::time::Duration;

use tests::{LocalCluster, binary, job_json, wait_for};

fn thermos(root: &std::path::Path, args: &[&str]) -> (i32, String, String) {
    let Output {
        status,
        stdout,
        stderr,
    } = Command::new(binary("thermos"))
        .arg("--root")
        .arg(root)
        .args(args)
        .output()
        .expect("run thermos");
    (
        status.code().unwrap_or(-1),
        String::from_utf8_lossy(&stdout).into_owned(),
        String::from_utf8_lossy(&stderr).into_owned(),
    )
}

#[test]
fn thermos_status_tail_and_kill_on_an_executor_work_directory() {
    let mut cluster = LocalCluster::start();
    cluster.start_executor("host1", &[]);
    let work = cluster.dir.path().join("executor-host1");

    let done = cluster.write(
        "done.json",
        &job_json(
            "done",
            false,
            &[("greet", "echo hello from the executor; echo warning >&2")],
        ),
    );
    cluster.aurora_ok(&[
        "create",
        "local/www-data/devel/done",
        done.to_str().unwrap(),
        "-j",
        "--wait_until",
        "FINISHED",
        "--wait-timeout-secs",
        "60",
    ]);
    let done_id = cluster.tasks("local/www-data/devel/done")[0]["assigned_task"]["task_id"]
        .as_str()
        .unwrap()
        .to_owned();

    let (code, out, err) = thermos(&work, &["status", &done_id]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with(&format!("{done_id}: SUCCESS\n  greet: SUCCESS run 0 pid ")),
        "{out}"
    );
    let (code, out, err) = thermos(&work, &["tail", &done_id]);
    assert_eq!(
        (code, out.as_str()),
        (0, "hello from the executor\n"),
        "{err}"
    );
    let (code, out, err) = thermos(&work, &["tail", &done_id, "greet", "--stderr"]);
    assert_eq!((code, out.as_str()), (0, "warning\n"), "{err}");
    let (code, out, err) = thermos(&work, &["status", "--json", &done_id]);
    assert_eq!(code, 0, "{err}");
    let listed: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(listed[0]["layout"], "executor", "{listed}");

    // A task of a live executor is the scheduler's to kill.
    let service = cluster.write(
        "svc.json",
        &job_json("svc", true, &[("serve", "while true; do sleep 0.1; done")]),
    );
    cluster.aurora_ok(&[
        "create",
        "local/www-data/devel/svc",
        service.to_str().unwrap(),
        "-j",
        "--wait_until",
        "RUNNING",
        "--wait-timeout-secs",
        "60",
    ]);
    let svc_id = cluster.tasks("local/www-data/devel/svc")[0]["assigned_task"]["task_id"]
        .as_str()
        .unwrap()
        .to_owned();
    wait_for(
        "the service's process to run",
        Duration::from_secs(60),
        || {
            let (_, out, _) = thermos(&work, &["status", &svc_id]);
            out.contains("serve: RUNNING").then_some(())
        },
    );
    let (code, out, err) = thermos(&work, &["kill", &svc_id]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains(&format!("{svc_id}: still running")), "{out}");
    assert!(err.contains("kill it through the scheduler"), "{err}");
    let (_, out, _) = thermos(&work, &["status", "--only", "active"]);
    assert!(out.contains(&format!("{svc_id}: ACTIVE")), "{out}");
    cluster.aurora_ok(&[
        "kill",
        "local/www-data/devel/svc",
        "--wait-timeout-secs",
        "60",
    ]);
}
