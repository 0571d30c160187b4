//! The commands of `thermos` (`aurora_thermos::cli`) on a root holding tasks of both layouts:
//! `thermos run`'s and the executor's.

use std::path::Path;

use aurora_thermos::cli::{self, CommandError, Output, StatusOptions};
use aurora_thermos::{
    ProcessSpec, RunSpec, RunnerHandle, TaskLayout, TaskRunner, TaskSpec, TaskState,
};

fn start(root: &Path, layout: TaskLayout, id: &str, cmdline: &str) -> RunnerHandle {
    let mut p = ProcessSpec::new("hello", cmdline);
    p.min_duration = 0;
    TaskRunner::start(RunSpec {
        task: TaskSpec::sequential("hello", vec![p]),
        task_id: id.into(),
        sandbox: layout.sandbox(root, id),
        checkpoint: layout.checkpoint(root, id),
        user: "tester".into(),
        ports: Default::default(),
        options: Default::default(),
    })
    .unwrap()
}

/// Runs a command with buffers for its output; returns its result, stdout and stderr.
fn capture<T>(f: impl FnOnce(&mut Output<'_>) -> T) -> (T, String, String) {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let result = f(&mut Output {
        out: &mut out,
        err: &mut err,
    });
    (
        result,
        String::from_utf8(out).unwrap(),
        String::from_utf8(err).unwrap(),
    )
}

#[test]
fn status_tail_and_read_see_both_layouts() {
    let dir = tempfile::tempdir().unwrap();
    let root = std::fs::canonicalize(dir.path()).unwrap();
    let executor = start(
        &root,
        TaskLayout::Executor,
        "by-executor",
        "echo from the executor; echo warned >&2",
    );
    let thermos = start(
        &root,
        TaskLayout::Thermos,
        "by-thermos",
        "echo from thermos",
    );
    assert_eq!(executor.wait().state, TaskState::Success);
    assert_eq!(thermos.wait().state, TaskState::Success);
    assert!(root.join("tasks/by-executor/checkpoint").is_file());
    assert!(root.join("checkpoints/by-thermos/runner").is_file());

    let (result, out, _) = capture(|o| cli::status(&root, &StatusOptions::default(), o));
    result.unwrap();
    let lines: Vec<&str> = out
        .lines()
        .map(|l| l.split(" pid ").next().unwrap())
        .collect();
    assert_eq!(
        lines,
        [
            "by-executor: SUCCESS",
            "  hello: SUCCESS run 0",
            "by-thermos: SUCCESS",
            "  hello: SUCCESS run 0"
        ]
    );
    let options = StatusOptions {
        pattern: Some("^by-".into()),
        json: true,
        ..StatusOptions::default()
    };
    let (result, out, _) = capture(|o| cli::status(&root, &options, o));
    result.unwrap();
    let listed: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(listed[0]["layout"], "executor");
    assert_eq!(listed[1]["layout"], "thermos");
    assert_eq!(
        listed[0]["sandbox"],
        root.join("tasks/by-executor/sandbox").display().to_string()
    );

    let tail = |id: &str, stderr: bool| {
        let (result, out, _) = capture(|o| cli::tail(&root, id, None, stderr, 1024, o));
        result.map(|()| out)
    };
    assert_eq!(tail("by-executor", false).unwrap(), "from the executor\n");
    assert_eq!(tail("by-executor", true).unwrap(), "warned\n");
    assert_eq!(tail("by-thermos", false).unwrap(), "from thermos\n");
    let (result, _, _) = capture(|o| cli::tail(&root, "by-executor", Some("nope"), false, 10, o));
    let e = result.unwrap_err();
    assert!(matches!(e, CommandError::NoSuchProcess { .. }), "{e:?}");
    assert_eq!(
        e.to_string(),
        "task by-executor has no process \"nope\"; its processes: hello"
    );
    match tail("../tasks/by-executor", false) {
        Err(CommandError::NoSuchTask { .. }) => {}
        other => panic!("{other:?}"),
    }

    let (result, out, _) = capture(|o| cli::read(&root, "by-executor", o));
    result.unwrap();
    let first: serde_json::Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    assert_eq!(first["type"], "header");
    assert_eq!(first["task_id"], "by-executor");
}

/// A command without a config file says both ways of giving one.
#[test]
fn a_missing_config_names_both_ways_to_give_one() {
    let err = cli::load_config(&cli::ConfigSource {
        path: None,
        task: None,
    })
    .unwrap_err();
    assert!(matches!(err, CommandError::Usage(_)), "{err:?}");
    let message = err.to_string();
    assert!(
        message.contains("CONFIG") && message.contains("--task-json FILE"),
        "{message}"
    );
}

/// `gc --max_age` keeps a task younger than the limit, however large the limit, and removes
/// one older than it.
#[test]
fn gc_max_age_saturates_instead_of_wrapping() {
    let dir = tempfile::tempdir().unwrap();
    let root = std::fs::canonicalize(dir.path()).unwrap();
    let task = start(&root, TaskLayout::Thermos, "done-1", "true");
    assert_eq!(task.wait().state, TaskState::Success);
    let gc = |max_age_secs| {
        let options = cli::GcOptions {
            max_age_secs: Some(max_age_secs),
            dry_run: true,
            ..Default::default()
        };
        let (result, out, err) = capture(|o| cli::gc(&root, &options, o));
        result.unwrap();
        assert_eq!(err, "");
        out
    };
    assert_eq!(gc(u64::MAX), "");
    assert_eq!(gc(i64::MAX as u64 / 1000 + 1), "");
    // The task ended at least a millisecond ago only once the clock moved: wait for it.
    let checkpoint = TaskLayout::Thermos.checkpoint(&root, "done-1");
    let ended = aurora_thermos::TaskView::load(&checkpoint)
        .unwrap()
        .state_since_ms;
    while std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
        <= ended
    {
        std::thread::yield_now();
    }
    assert!(gc(0).starts_with("would remove done-1 ("), "{}", gc(0));
}
