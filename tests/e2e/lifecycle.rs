//! A job runs to FINISHED, another is killed, and a scheduler restart loses neither.

use std::time::Duration;

use tests::{LocalCluster, alive, history, job_json, wait_for};

const FINISHED_HISTORY: [&str; 5] = ["PENDING", "ASSIGNED", "STARTING", "RUNNING", "FINISHED"];

#[test]
fn jobs_finish_die_and_survive_a_scheduler_crash() {
    let mut cluster = LocalCluster::start();
    cluster.start_executor("host1", &["rack=a"]);

    // A batch job runs its processes in order and finishes.
    let hello = cluster.write(
        "hello.json",
        &job_json(
            "hello",
            false,
            &[
                ("greet", "echo hello world; echo oops >&2"),
                ("second", "echo second ran after greet"),
            ],
        ),
    );
    let out = cluster.aurora_ok(&[
        "create",
        "local/www-data/devel/hello",
        hello.to_str().unwrap(),
        "-j",
        "--wait_until",
        "FINISHED",
        "--wait-timeout-secs",
        "60",
    ]);
    assert!(out.contains("Response from scheduler: OK"), "{out}");
    let tasks = cluster.tasks("local/www-data/devel/hello");
    assert_eq!(tasks.len(), 1, "{tasks:?}");
    let task = &tasks[0];
    assert_eq!(history(task), FINISHED_HISTORY);
    assert_eq!(task["assigned_task"]["slave_host"], "host1");
    assert_eq!(task["assigned_task"]["instance_id"], 0);
    let task_id = task["assigned_task"]["task_id"]
        .as_str()
        .unwrap()
        .to_owned();

    // Its processes really ran, in the sandbox, with their output captured per process.
    let sandbox = cluster
        .dir
        .path()
        .join(format!("executor-host1/tasks/{task_id}/sandbox"));
    let log = |process: &str, stream: &str| {
        std::fs::read_to_string(sandbox.join(format!(".logs/{process}/0/{stream}")))
            .unwrap_or_default()
    };
    assert_eq!(log("greet", "stdout"), "hello world\n");
    assert_eq!(log("greet", "stderr"), "oops\n");
    assert_eq!(log("second", "stdout"), "second ran after greet\n");

    // The human status shows instance, host and history.
    let status = cluster.aurora_ok(&["status", "local/www-data/devel/hello"]);
    assert!(status.contains("Inactive tasks (1):"), "{status}");
    assert!(
        status.contains("instance 0  FINISHED  host host1"),
        "{status}"
    );
    for state in FINISHED_HISTORY {
        assert!(
            status.contains(&format!(" {state}")),
            "{status} lacks {state}"
        );
    }

    // A service whose process (and a detached grandchild) run until killed.
    let pids = cluster.dir.path().join("pids");
    let sleeper = cluster.write(
        "sleeper.json",
        &job_json(
            "sleeper",
            true,
            &[(
                "sleep",
                &format!(
                    "setsid sleep 1000 & echo $! >> {p}; sleep 1000 & echo $! >> {p}; echo $$ >> {p}; wait",
                    p = pids.display()
                ),
            )],
        ),
    );
    cluster.aurora_ok(&[
        "create",
        "local/www-data/devel/sleeper",
        sleeper.to_str().unwrap(),
        "-j",
        "--wait_until",
        "RUNNING",
        "--wait-timeout-secs",
        "60",
    ]);
    let pid_list: Vec<i32> = wait_for(
        "the sleeper to write its pids",
        Duration::from_secs(30),
        || {
            let text = std::fs::read_to_string(&pids).unwrap_or_default();
            let list: Vec<i32> = text.lines().filter_map(|l| l.trim().parse().ok()).collect();
            (list.len() == 3).then_some(list)
        },
    );
    assert!(
        pid_list.iter().all(|&p| alive(p)),
        "processes should run before the kill"
    );

    let out = cluster.aurora_ok(&[
        "kill",
        "local/www-data/devel/sleeper",
        "--wait-timeout-secs",
        "60",
    ]);
    assert!(out.contains("Response from scheduler: OK"), "{out}");
    let tasks = cluster.tasks("local/www-data/devel/sleeper");
    assert_eq!(
        tasks.len(),
        1,
        "a killed service is not restarted: {tasks:?}"
    );
    let killed = &tasks[0];
    assert_eq!(killed["status"], "KILLED");
    let states = history(killed);
    assert_eq!(
        &states[states.len() - 2..],
        ["KILLING", "KILLED"],
        "{states:?}"
    );
    wait_for(
        "every process of the killed task to be gone",
        Duration::from_secs(15),
        || pid_list.iter().all(|&p| !alive(p)).then_some(()),
    );

    // kill -9 the scheduler and start it again on the same data: nothing acknowledged is lost.
    let before_hello = cluster.tasks("local/www-data/devel/hello");
    let before_sleeper = cluster.tasks("local/www-data/devel/sleeper");
    cluster.scheduler.as_mut().unwrap().kill9();
    cluster.start_scheduler();
    assert_eq!(cluster.tasks("local/www-data/devel/hello"), before_hello);
    assert_eq!(
        cluster.tasks("local/www-data/devel/sleeper"),
        before_sleeper
    );

    // The restarted scheduler still schedules: the executor re-registers and runs new work.
    let again = cluster.write("again.json", &job_json("again", false, &[("once", "true")]));
    cluster.aurora_ok(&[
        "create",
        "local/www-data/devel/again",
        again.to_str().unwrap(),
        "-j",
        "--wait_until",
        "FINISHED",
        "--wait-timeout-secs",
        "60",
    ]);
    assert_eq!(
        history(&cluster.tasks("local/www-data/devel/again")[0]),
        FINISHED_HISTORY
    );
}

#[test]
fn a_crash_right_after_create_keeps_the_job() {
    let mut cluster = LocalCluster::start();
    // No executor: the tasks stay PENDING, and must still be there after a crash.
    let job = cluster.write("wait.json", &job_json("wait", true, &[("w", "sleep 1")]));
    for i in 0..5 {
        let key = format!("local/www-data/devel/wait{i}");
        let text = job_json(&format!("wait{i}"), true, &[("w", "sleep 1")]);
        let path = cluster.write(&format!("wait{i}.json"), &text);
        cluster.aurora_ok(&["create", &key, path.to_str().unwrap(), "-j"]);
    }
    drop(job);
    cluster.scheduler.as_mut().unwrap().kill9();
    cluster.start_scheduler();
    for i in 0..5 {
        let tasks = cluster.tasks(&format!("local/www-data/devel/wait{i}"));
        assert_eq!(tasks.len(), 1, "job wait{i} lost its task: {tasks:?}");
        assert_eq!(tasks[0]["status"], "PENDING");
    }
}
