//! Benchmarks printed as `BENCH <name> <value> <unit>` lines:
//! - the runner's cost per process above a bare fork/exec of `/bin/true`, measured in the same
//!   run (rounds of each alternate, and the median round counts, so that other load on the
//!   machine hits both alike),
//! - the memory of the executor (agent and runners, in this process) with 200 tasks of 5
//!   processes each, per task,
//! - the resource sampler's cost per pass with 200 tasks (memory only, and with disk).
//!
//! Run with `cargo bench -p aurora-thermos --bench thermos`; `THERMOS_BENCH_ONLY=overhead,memory`
//! picks some of `overhead`, `memory` and `sampler`.

use std::collections::BTreeMap;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use aurora_core::api::{MachineResources, PortRange};
use aurora_core::{AssignedTask, ScheduleStatus, TaskId};
use aurora_thermos::test_support::{FakeScheduler, assigned_task};
use aurora_thermos::{
    Agent, AgentConfig, ProcessSpec, ResourceSampler, RunSpec, TaskRunner, TaskSpec, TaskState,
    UserMode,
};

const TASKS: usize = 200;
const PROCESSES_PER_TASK: usize = 5;
/// Set in the helper process that times bare spawns: `<program>:<count>`.
const BARE_ENV: &str = "THERMOS_BENCH_BARE";

fn main() {
    if let Ok(spec) = std::env::var(BARE_ENV) {
        bare_helper(&spec);
        return;
    }
    let only = std::env::var("THERMOS_BENCH_ONLY").unwrap_or_default();
    let wanted = |name: &str| only.is_empty() || only.split(',').any(|o| o == name);
    if wanted("overhead") {
        overhead();
    }
    if wanted("memory") {
        memory();
    }
    if wanted("sampler") {
        sampler();
    }
}

/// In a helper process (no reaper thread there to take the exits): spawns the program `count`
/// times as the runner spawns processes (own session, scrubbed environment, null stdin) and
/// prints the milliseconds per spawn-and-wait.
fn bare_helper(spec: &str) {
    let (program, count) = spec.rsplit_once(':').expect("<program>:<count>");
    let count: u32 = count.parse().expect("a count");
    let mut argv = program.split(' ');
    let exe = argv.next().expect("a program");
    let args: Vec<&str> = argv.collect();
    let started = Instant::now();
    for _ in 0..count {
        let status = Command::new(exe)
            .args(&args)
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .stdin(Stdio::null())
            .process_group(0)
            .status()
            .expect("run the program");
        assert!(status.success());
    }
    println!(
        "{}",
        started.elapsed().as_secs_f64() * 1000.0 / f64::from(count)
    );
}

/// Runs the bare helper; its exit is reaped by the runner's reaper, so only its output counts.
#[expect(
    clippy::zombie_processes,
    reason = "the runner's reaper thread reaps every child of this process, this one included"
)]
fn bare_round(program: &str, count: usize) -> f64 {
    let exe = std::env::current_exe().expect("the bench's own path");
    let mut child = Command::new(exe)
        .env(BARE_ENV, format!("{program}:{count}"))
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the bare helper");
    let mut out = String::new();
    child
        .stdout
        .take()
        .expect("piped stdout")
        .read_to_string(&mut out)
        .expect("read the helper's answer");
    out.trim()
        .parse()
        .unwrap_or_else(|_| panic!("the bare helper said {out:?}"))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Runs a task of `count` sequential `true` processes with its sandbox and checkpoint under
/// `dir`; returns the milliseconds per process.
fn runner_round(dir: &Path, id: &str, count: usize) -> f64 {
    let procs: Vec<ProcessSpec> = (0..count)
        .map(|i| {
            let mut p = ProcessSpec::new(format!("p{i}"), "true");
            p.min_duration = 0;
            p
        })
        .collect();
    let started = Instant::now();
    let status = TaskRunner::start(RunSpec {
        task: TaskSpec::sequential("bench", procs),
        task_id: id.to_owned(),
        sandbox: dir.join(id).join("sandbox"),
        checkpoint: dir.join(id).join("checkpoint"),
        user: "bench".into(),
        ports: Default::default(),
        options: Default::default(),
    })
    .expect("start the runner")
    .wait();
    assert_eq!(status.state, TaskState::Success);
    started.elapsed().as_secs_f64() * 1000.0 / count as f64
}

/// The runner against bare spawns, its sandboxes in the temporary directory (a disk, as an
/// executor's work directory is) and, when `/dev/shm` exists, also in memory: the difference
/// is what the per-run log files cost on this machine's filesystem.
fn overhead() {
    let rounds = 9;
    let per_round = 40;
    let dir = tempfile::tempdir().expect("temporary directory");
    let shm = Path::new("/dev/shm")
        .is_dir()
        .then(|| tempfile::tempdir_in("/dev/shm").ok())
        .flatten();
    let (mut bare, mut bash, mut runner, mut diff) = (vec![], vec![], vec![], vec![]);
    let mut diff_shm = vec![];
    for round in 0..rounds {
        let b = bare_round("/bin/true", per_round);
        bash.push(bare_round("/bin/bash -c true", per_round));
        let r = runner_round(dir.path(), &format!("bench{round}"), per_round);
        bare.push(b);
        runner.push(r);
        diff.push(r - b);
        if let Some(shm) = &shm {
            diff_shm.push(runner_round(shm.path(), &format!("bench{round}"), per_round) - b);
        }
    }
    println!("BENCH bare_fork_exec_true {:.3} ms", median(bare));
    println!("BENCH bare_bash_c_true {:.3} ms", median(bash));
    println!(
        "BENCH thermos_ms_per_sequential_process {:.3} ms",
        median(runner)
    );
    println!(
        "BENCH thermos_overhead_per_process {:.3} ms",
        median(diff).max(0.0)
    );
    if shm.is_some() {
        println!(
            "BENCH thermos_overhead_per_process_sandbox_in_memory {:.3} ms",
            median(diff_shm).max(0.0)
        );
    }
}

fn assigned(id: &str) -> AssignedTask {
    let processes: Vec<serde_json::Value> = (0..PROCESSES_PER_TASK)
        .map(|i| serde_json::json!({"name": format!("p{i}"), "cmdline": "sleep 600", "min_duration": 0}))
        .collect();
    let job = serde_json::json!({
        "role": "bench", "environment": "prod", "name": "mem",
        "task": {"name": "mem", "processes": processes},
    });
    assigned_task(id, "bench-host", 0, "bench", &job)
}

/// The resident memory of this process, in bytes.
fn own_rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .expect("a VmRSS line")
        * 1024
}

/// The executor agent (in this process, against a fake scheduler that is in this process too)
/// runs 200 tasks of 5 `sleep` processes each; this process's RSS, which holds the agent, every
/// runner and the shared reaper and sampler threads but none of the task processes, is divided
/// by the number of tasks.
fn memory() {
    // It hands out every task on the first heartbeat, kills on demand and records status updates.
    let sched = FakeScheduler::new(Duration::from_millis(200));
    let url = sched.serve();
    let dir = tempfile::tempdir().expect("temporary directory");
    let ids: Vec<String> = (0..TASKS).map(|t| format!("mem-{t}")).collect();
    sched.launch(ids.iter().map(|id| assigned(id)).collect());
    let agent = Agent::new(AgentConfig {
        scheduler: url,
        work_dir: dir.path().to_owned(),
        host: "bench-host".into(),
        attributes: BTreeMap::new(),
        resources: MachineResources {
            cpu: 64.0,
            ram_bytes: 1 << 40,
            disk_bytes: 1 << 40,
            ports: PortRange {
                begin: 31000,
                end: 32000,
            },
        },
        kill_grace: Duration::from_secs(1),
        user_mode: UserMode::Current,
    })
    .expect("an agent");
    let before = own_rss();
    let stop = Arc::new(AtomicBool::new(false));
    let agent_thread = {
        let stop = stop.clone();
        std::thread::spawn(move || agent.run(&stop))
    };
    sched.wait_for_count(ScheduleStatus::Running, TASKS, Duration::from_secs(600));
    // Every process of every task is up, and the sampler has seen them.
    let until = Instant::now() + Duration::from_secs(600);
    let sleeps = || {
        std::fs::read_dir("/proc")
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| {
                std::fs::read(e.path().join("cmdline"))
                    .is_ok_and(|c| c.starts_with(b"sleep\x00600\x00"))
            })
            .count()
    };
    while sleeps() < TASKS * PROCESSES_PER_TASK {
        assert!(
            Instant::now() < until,
            "the task processes never all started"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_secs(2));
    let with_tasks = own_rss();
    let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
    println!(
        "BENCH thermos_rss_per_task {:.3} MiB",
        mib(with_tasks) / TASKS as f64
    );
    println!(
        "BENCH thermos_rss_growth_per_task {:.3} MiB",
        mib(with_tasks.saturating_sub(before)) / TASKS as f64
    );
    sched.kill(ids.iter().map(|id| TaskId(id.clone())).collect());
    sched.wait_for_count(ScheduleStatus::Killed, TASKS, Duration::from_secs(600));
    stop.store(true, Ordering::SeqCst);
    agent_thread.join().expect("the agent thread");
}

fn sampler() {
    // 200 tasks of one sleeping process each (each its own process group), plus a small
    // sandbox.
    let dir = tempfile::tempdir().expect("temporary directory");
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
