//! Benchmarks printed as `BENCH <name> <value> <unit>` lines:
//! - the resource sampler's cost per pass with 200 tasks (memory only, and with disk),
//! - the runner's cost per process above a bare fork/exec of `/bin/true`.
//!
//! Run with `cargo bench -p aurora-thermos --bench thermos`.

use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::Instant;

use aurora_thermos::{ProcessSpec, ResourceSampler, RunSpec, TaskRunner, TaskSpec, TaskState};

const TASKS: usize = 200;

fn main() {
    // The baseline first: once a runner exists its reaper owns every child exit.
    let n = 200;
    let started = Instant::now();
    for _ in 0..n {
        let status = Command::new("/bin/true").status().expect("run /bin/true");
        assert!(status.success());
    }
    let bare = started.elapsed().as_secs_f64() * 1000.0 / n as f64;

    let dir = tempfile::tempdir().expect("temporary directory");
    let procs: Vec<ProcessSpec> = (0..n)
        .map(|i| {
            let mut p = ProcessSpec::new(format!("p{i}"), "true");
            p.min_duration = 0;
            p
        })
        .collect();
    let started = Instant::now();
    let status = TaskRunner::start(RunSpec {
        task: TaskSpec::sequential("bench", procs),
        task_id: "bench".into(),
        sandbox: dir.path().join("sandbox"),
        checkpoint: dir.path().join("checkpoint"),
        user: "bench".into(),
        ports: Default::default(),
        options: Default::default(),
    })
    .expect("start the runner")
    .wait();
    assert_eq!(status.state, TaskState::Success);
    let runner = started.elapsed().as_secs_f64() * 1000.0 / n as f64;
    println!("BENCH bare_fork_exec_true {bare:.3} ms");
    println!("BENCH thermos_ms_per_sequential_process {runner:.3} ms");
    println!(
        "BENCH thermos_overhead_per_process {:.3} ms",
        (runner - bare).max(0.0)
    );

    // 200 tasks of one sleeping process each (each its own session), plus a small sandbox.
    let sampler = ResourceSampler::default();
    let mut children = Vec::new();
    let mut registrations = Vec::new();
    for t in 0..TASKS {
        let sandbox = dir.path().join(format!("task{t}"));
        std::fs::create_dir_all(sandbox.join(".logs/p/0")).expect("sandbox");
        std::fs::write(sandbox.join(".logs/p/0/stdout"), vec![b'x'; 4096]).expect("log");
        let mut cmd = Command::new("sleep");
        cmd.arg("600").stdout(Stdio::null()).process_group(0);
        let child = cmd.spawn().expect("spawn sleep");
        let reg = sampler.register(&sandbox, |_| {});
        reg.set_roots(vec![child.id() as i32]);
        children.push(child);
        registrations.push(reg);
    }
    let passes = 20;
    let started = Instant::now();
    let mut attributed = 0;
    for _ in 0..passes {
        attributed = sampler.sample(false);
    }
    let mem = started.elapsed().as_secs_f64() * 1000.0 / passes as f64;
    let started = Instant::now();
    for _ in 0..passes {
        sampler.sample(true);
    }
    let disk = started.elapsed().as_secs_f64() * 1000.0 / passes as f64;
    assert_eq!(attributed, TASKS, "every sleep is attributed to its task");
    println!("BENCH sampler_ms_per_pass_{TASKS}_tasks {mem:.3} ms");
    println!("BENCH sampler_ms_per_pass_with_disk_{TASKS}_tasks {disk:.3} ms");
    for mut c in children {
        let _ = c.kill();
    }
}
