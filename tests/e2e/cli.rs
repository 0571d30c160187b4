//! The client's errors and exit codes.

use tests::{LocalCluster, job_json};

fn check(cluster: &LocalCluster, args: &[&str], code: i32, fragment: &str) {
    let out = cluster.aurora(args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "aurora {args:?}: {stderr}");
    assert!(
        stderr.contains(fragment),
        "aurora {args:?}: {stderr:?} lacks {fragment:?}"
    );
}

#[test]
fn bad_input_gets_clear_errors_and_exit_codes() {
    let mut cluster = LocalCluster::start();
    let job = cluster.write("j.json", &job_json("j", false, &[("p", "true")]));
    let job = job.to_str().unwrap();

    check(
        &cluster,
        &["status", "local/tyg//x"],
        2,
        "has an empty environment",
    );
    check(&cluster, &["status", "a/b/c"], 2, "has 3 part(s)");
    check(
        &cluster,
        &["status", "nowhere/www-data/devel/j"],
        2,
        "unknown cluster \"nowhere\"",
    );
    check(
        &cluster,
        &["kill", "local/www-data/devel/j", "--shards", "5-3"],
        2,
        "runs backwards",
    );
    check(
        &cluster,
        &["create", "local/www-data/devel/other", job, "-j"],
        2,
        "not local/www-data/devel/other",
    );
    let broken = cluster.write("broken.json", "{\"role\": ");
    check(
        &cluster,
        &[
            "create",
            "local/www-data/devel/j",
            broken.to_str().unwrap(),
            "-j",
        ],
        2,
        "not a valid job",
    );
    for missing in ["/nonexistent/job.aurora", "/nonexistent/job.json"] {
        check(
            &cluster,
            &["create", "local/www-data/devel/j", missing],
            2,
            &format!("cannot read config file {missing}: No such file"),
        );
    }

    // The same job twice is refused by the scheduler.
    cluster.aurora_ok(&["create", "local/www-data/devel/j", job, "-j"]);
    check(
        &cluster,
        &["create", "local/www-data/devel/j", job, "-j"],
        1,
        "scheduler refused",
    );

    // A scheduler that is down is reported as such.
    cluster.scheduler.as_mut().unwrap().kill9();
    check(
        &cluster,
        &["status", "local/www-data/devel/j"],
        3,
        "cannot reach the scheduler",
    );
}
