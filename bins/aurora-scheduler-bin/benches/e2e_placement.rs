//! End-to-end placement throughput of the real `aurora-scheduler` binary, printing
//! `BENCH e2e_placements_per_sec_{1k,10k,100k}_hosts` and `BENCH e2e_placements_per_sec` (the
//! 10k-host figure), then an `ANCHOR` line naming the published figures they compare with.
//!
//! Run with `cargo bench -p aurora-scheduler-bin --bench e2e_placement` (all three sizes) or
//! name some: `cargo bench -p aurora-scheduler-bin --bench e2e_placement -- 1k 10k`. The bench
//! lives in the binary's package so that Cargo builds the binary first and hands the bench its
//! path (`CARGO_BIN_EXE_aurora-scheduler`); nothing else needs to be built or found.
//!
//! For each size N (1,000, 10,000 and 100,000 hosts) the bench:
//! 1. starts `aurora-scheduler` as a child process on 127.0.0.1 with a temporary `--data-dir`
//!    (SQLite storage, `synchronous=FULL`), a 30 s heartbeat interval, an executor timeout of
//!    an hour (so that none times out while 100,000 register) and the default executor
//!    overhead (0.25 cpu, 128 MiB per task);
//! 2. registers N executors over `POST /api/executors` (8 cpu, 32 GiB, ports 31000-31999,
//!    attributes `rack` (20 hosts each), `zone` (4) and `os`), as `aurora-executor` does;
//! 3. fills half the cluster: batch jobs of 3.75 cpu and 16 GiB (with the overhead, half a
//!    host each), N tasks in all, which the scheduler's first fit packs onto the first N/2
//!    hosts; every executor then heartbeats, learns its tasks and reports them RUNNING;
//! 4. times N more tasks in a mix of jobs, each job with a distinct configuration and a
//!    ~1 KB executor payload: production services (default `host` and `rack` limits, or an
//!    explicit `rack: limit:2`, named ports), batch jobs (default `host` limit), jobs with value
//!    constraints (`zone: zK`, `os: !centos`) and services with `host: limit:2`.
//!
//! Before step 4 the bench asks for a snapshot (`POST /api/admin/snapshot`), so that the
//! periodic snapshot (every 10,000 transactions) does not fall into the timed phase at one
//! size and not at another.
//!
//! The whole run (steps 1 to 4, each on a fresh scheduler) is repeated 5 times at 1,000 hosts
//! and 3 times at 10,000, and the median printed; at 100,000 hosts it runs once.
//!
//! What is timed: from just before the first `POST /api/jobs` of step 4 (8 in flight at a
//! time, or `E2E_CREATE_CONCURRENCY`; each is answered once durable) until `/vars.json`
//! (polled about 100 times over the run, every 2 to 50 ms) counts every one of the N tasks
//! ASSIGNED and a read of the API (`GET /api/locks`, answered only once all it may have seen
//! is durable) confirms those assignments are stored. Meanwhile the executors keep heartbeating at the rate the 30 s interval implies
//! (N/30 per second, at most 16 in flight, so a slow scheduler gets fewer), reporting their
//! RUNNING tasks; they do not start the newly assigned tasks, so those stay ASSIGNED.
//! Registration and the fill are not timed. Progress goes to stderr, and per run a line with
//! the scheduler's own counters for the timed phase (rounds and their time, storage batches
//! and write time, snapshots).
//!
//! Published figures for comparison (see shared/research/anchors.md; none can run here): Nomad
//! C1M placed 3,750 containers/s (1,000 jobs × 1,000 tasks on 5,000 clients, 5 servers),
//! Kubernetes' scheduler_perf floor is 680 pods/s (5,000 nodes, 10,000 pods), and Aurora's
//! default flags cap placement at about 200 tasks/s.

use std::future::Future;
use std::io::BufRead;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const GIB: u64 = 1 << 30;
const MIB: u64 = 1 << 20;
/// The heartbeat interval the scheduler asks for, in milliseconds.
const HEARTBEAT_INTERVAL_MS: u64 = 30_000;
/// Hosts per rack.
const RACK_SIZE: usize = 20;

/// How many job creations are in flight at once in the timed phase, as from many users
/// submitting: 8, or `E2E_CREATE_CONCURRENCY`.
fn create_concurrency() -> usize {
    std::env::var("E2E_CREATE_CONCURRENCY")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(8)
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let sizes = [("1k", 1_000), ("10k", 10_000), ("100k", 100_000)];
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    for (label, hosts) in sizes {
        if !args.is_empty() && !args.iter().any(|a| a == label) {
            continue;
        }
        // Small clusters finish in milliseconds: run them several times, each on a fresh
        // scheduler, and take the median.
        let reps = if hosts <= 1_000 {
            5
        } else if hosts <= 10_000 {
            3
        } else {
            1
        };
        let mut figures: Vec<f64> = (0..reps).map(|_| runtime.block_on(run(hosts))).collect();
        figures.sort_by(f64::total_cmp);
        eprintln!(
            "{hosts} hosts: {} placements/s, median of {reps}",
            figures
                .iter()
                .map(|f| format!("{f:.0}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let per_sec = figures[figures.len() / 2];
        println!("BENCH e2e_placements_per_sec_{label}_hosts {per_sec:.0} /s");
        if label == "10k" {
            println!("BENCH e2e_placements_per_sec {per_sec:.0} /s");
        }
    }
    println!(
        "ANCHOR e2e_placements_per_sec: published Nomad C1M 3750 /s (5,000 clients), Kubernetes scheduler_perf 680 /s (5,000 nodes), Aurora default cap ~200 /s"
    );
}

/// The scheduler child process; killed when dropped.
struct SchedulerProcess {
    child: Child,
    base: String,
    _dir: tempfile::TempDir,
}

impl Drop for SchedulerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_scheduler() -> SchedulerProcess {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let mut child = Command::new(env!("CARGO_BIN_EXE_aurora-scheduler"))
        .args(["--http-host", "127.0.0.1", "--http-port", "0", "--data-dir"])
        .arg(dir.path())
        .args([
            "--heartbeat-interval-ms",
            &HEARTBEAT_INTERVAL_MS.to_string(),
            // Registering 100,000 executors takes a while; none may time out meanwhile.
            "--executor-timeout-ms",
            "3600000",
            "--hostname",
            "bench",
        ])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start aurora-scheduler");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut line = String::new();
    std::io::BufReader::new(stdout)
        .read_line(&mut line)
        .expect("read the listening line");
    let port = line
        .trim()
        .rsplit(':')
        .next()
        .and_then(|p| p.parse::<u16>().ok())
        .unwrap_or_else(|| panic!("no port in {line:?}"));
    SchedulerProcess {
        child,
        base: format!("http://127.0.0.1:{port}"),
        _dir: dir,
    }
}

/// Runs `f(0..n)` with at most `limit` calls in flight.
async fn for_each_concurrent<F, Fut>(n: usize, limit: usize, f: F)
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send,
{
    let next = Arc::new(AtomicUsize::new(0));
    let f = Arc::new(f);
    let mut workers = Vec::new();
    for _ in 0..limit.min(n.max(1)) {
        let next = Arc::clone(&next);
        let f = Arc::clone(&f);
        workers.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    break;
                }
                f(i).await;
            }
        }));
    }
    for w in workers {
        w.await.expect("a worker finished");
    }
}

async fn post(client: &reqwest::Client, url: String, body: Vec<u8>) -> Value {
    let resp = client
        .post(&url)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap_or_else(|e| panic!("POST {url}: {e}"));
    let status = resp.status();
    let text = resp.text().await.expect("a response body");
    assert!(status.is_success(), "POST {url}: {status}: {text}");
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

async fn vars(client: &reqwest::Client, base: &str) -> Value {
    client
        .get(format!("{base}/vars.json"))
        .send()
        .await
        .expect("GET /vars.json")
        .json()
        .await
        .expect("vars are JSON")
}

fn host_name(i: usize) -> String {
    format!("host-{i:06}")
}

/// Waits until `/vars.json` counts `want` tasks in `status`, printing progress.
async fn wait_for(client: &reqwest::Client, base: &str, status: &str, want: u64, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(1_800);
    let mut last_print = Instant::now();
    loop {
        let v = vars(client, base).await;
        let have = v[format!("task_store_{status}")].as_u64().unwrap_or(0);
        if have >= want {
            return;
        }
        if last_print.elapsed() > Duration::from_secs(5) {
            eprintln!("  {what}: {have}/{want} {status}");
            last_print = Instant::now();
        }
        assert!(
            Instant::now() < deadline,
            "{what}: only {have} of {want} tasks {status}: {v}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn key(role: &str, name: &str) -> Value {
    json!({"cluster": "local", "role": role, "environment": "prod", "name": name})
}

/// A thermos-like executor payload of about 1 KB, distinct per job.
fn payload(name: &str) -> String {
    let processes: Vec<Value> = ["fetch", "setup", "main"]
        .iter()
        .map(|p| {
            json!({"name": p, "cmdline": format!("cd /srv/{name} && ./bin/{p} --config /srv/{name}/etc/{p}.conf --log-dir .logs/{p} --port {{{{thermos.ports[http]}}}}"),
                   "max_failures": 1, "daemon": false, "ephemeral": false, "min_duration": 5,
                   "final": false})
        })
        .collect();
    json!({"name": name, "processes": processes, "finalization_wait": 30,
           "constraints": [{"order": ["fetch", "setup", "main"]}],
           "resources": {"cpu": 1.0, "ram": 1 << 30, "disk": 1 << 30}})
    .to_string()
}

/// One job to create: its JSON body and its instance count.
struct JobSpec {
    body: Vec<u8>,
    instances: u32,
}

#[expect(
    clippy::too_many_arguments,
    reason = "a flat description of one job reads best at the call sites"
)]
fn job(
    role: &str,
    name: &str,
    instances: u32,
    service: bool,
    production: bool,
    cpu: f64,
    ram_bytes: u64,
    ports: &[&str],
    constraints: Value,
) -> JobSpec {
    let k = key(role, name);
    let owner = json!({"role": role, "user": "bench"});
    let body = json!({"job": {
        "key": k, "owner": owner, "instance_count": instances,
        "task_config": {
            "job": k, "owner": owner, "is_service": service, "max_task_failures": 1,
            "priority": if production { 10 } else { 0 }, "production": production,
            "resources": {"cpu": cpu, "ram_bytes": ram_bytes, "disk_bytes": 2 * ram_bytes,
                          "ports": ports},
            "constraints": constraints,
            "executor_config": {"name": "AuroraExecutor", "data": payload(name)}
        }
    }});
    JobSpec {
        body: serde_json::to_vec(&body).expect("JSON"),
        instances,
    }
}

fn limit(name: &str, n: u32) -> Value {
    json!({"name": name, "constraint": {"limit": {"limit": n}}})
}

fn value(name: &str, negated: bool, values: &[&str]) -> Value {
    json!({"name": name, "constraint": {"value": {"negated": negated, "values": values}}})
}

/// The jobs that half-fill the cluster: N tasks of half a host each, in pairs of jobs so that
/// first fit fills the first N/2 hosts.
fn fill_jobs(hosts: usize) -> Vec<JobSpec> {
    let half = hosts / 2;
    let mut jobs = Vec::new();
    for start in (0..half).step_by(4_000) {
        let n = u32::try_from((half - start).min(4_000)).expect("small");
        for part in ["a", "b"] {
            jobs.push(job(
                "fill",
                &format!("fill{start}{part}"),
                n,
                false,
                false,
                3.75,
                16 * GIB - 128 * MIB,
                &[],
                json!([]),
            ));
        }
    }
    jobs
}

/// The timed mix: jobs of several kinds until they hold `total` tasks.
fn mix_jobs(total: usize) -> Vec<JobSpec> {
    let mut jobs = Vec::new();
    let mut count = 0usize;
    let mut j = 0usize;
    while count < total {
        let round = j / 10;
        let (mut spec, role) = match j % 10 {
            0 | 1 => {
                let n = [3, 5, 10, 20][round % 4];
                let constraints = if j % 2 == 0 {
                    json!([])
                } else {
                    json!([limit("rack", 2), limit("host", 1)])
                };
                let s = format!("svc{j}");
                (
                    (
                        s,
                        n,
                        true,
                        true,
                        1.0,
                        2 * GIB,
                        vec!["http", "admin"],
                        constraints,
                    ),
                    "prod",
                )
            }
            2..=5 => {
                let n = [50, 100, 200, 400][(round + j) % 4];
                (
                    (
                        format!("batch{j}"),
                        n,
                        false,
                        false,
                        0.5,
                        GIB,
                        vec![],
                        json!([]),
                    ),
                    "batch",
                )
            }
            6 => {
                let n = [10, 20, 50][round % 3];
                let zone = format!("z{}", round % 4);
                (
                    (
                        format!("zoned{j}"),
                        n,
                        true,
                        false,
                        0.5,
                        GIB,
                        vec!["http"],
                        json!([value("zone", false, &[&zone])]),
                    ),
                    "web",
                )
            }
            7 => {
                let n = [20, 50, 100][round % 3];
                (
                    (
                        format!("noncentos{j}"),
                        n,
                        false,
                        false,
                        0.5,
                        GIB,
                        vec![],
                        json!([value("os", true, &["centos"])]),
                    ),
                    "batch",
                )
            }
            _ => {
                let n = [10, 25, 50, 100][round % 4];
                (
                    (
                        format!("web{j}"),
                        n,
                        true,
                        false,
                        0.25,
                        512 * MIB,
                        vec!["http"],
                        json!([limit("host", 2)]),
                    ),
                    "web",
                )
            }
        };
        spec.1 = spec.1.min(u32::try_from(total - count).expect("small"));
        let (name, n, service, production, cpu, ram, ports, constraints) = spec;
        // Distinct configurations: the cpu differs a little from job to job as well.
        let cpu = cpu + (j % 7) as f64 * 0.01;
        jobs.push(job(
            role,
            &name,
            n,
            service,
            production,
            cpu,
            ram,
            &ports,
            constraints,
        ));
        count += n as usize;
        j += 1;
    }
    jobs
}

/// One size: returns placements per second.
async fn run(hosts: usize) -> f64 {
    let started = Instant::now();
    eprintln!("e2e placement, {hosts} hosts: starting the scheduler");
    let scheduler = start_scheduler();
    let base = scheduler.base.clone();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()
        .expect("an HTTP client");
    // Production jobs need quota.
    post(
        &client,
        format!("{base}/api/admin/quota/prod"),
        serde_json::to_vec(&json!({"cpu": 1e9, "ram_bytes": 1i64 << 60, "disk_bytes": 1i64 << 60}))
            .expect("JSON"),
    )
    .await;

    eprintln!("  registering {hosts} executors");
    {
        let client = client.clone();
        let base = base.clone();
        for_each_concurrent(hosts, 16, move |i| {
            let client = client.clone();
            let base = base.clone();
            async move {
                let host = host_name(i);
                let os = if i % 5 == 0 { "centos" } else { "ubuntu" };
                let body = json!({"host": host,
                    "attributes": {"rack": [format!("rack-{:05}", i / RACK_SIZE)],
                                   "zone": [format!("z{}", i % 4)], "os": [os]},
                    "resources": {"cpu": 8, "ram_bytes": 32 * GIB, "disk_bytes": 256 * GIB,
                                  "ports": {"begin": 31000, "end": 31999}},
                    "tasks": []});
                post(
                    &client,
                    format!("{base}/api/executors"),
                    serde_json::to_vec(&body).expect("JSON"),
                )
                .await;
            }
        })
        .await;
    }
    eprintln!(
        "  registered in {:.1} s; filling half the cluster",
        started.elapsed().as_secs_f64()
    );
    let fill = fill_jobs(hosts);
    let fill_tasks: u64 = fill.iter().map(|j| u64::from(j.instances)).sum();
    for spec in fill {
        post(&client, format!("{base}/api/jobs"), spec.body).await;
    }
    wait_for(&client, &base, "ASSIGNED", fill_tasks, "fill").await;

    // Every executor heartbeats, learns its tasks and reports them RUNNING.
    eprintln!("  executors start the fill tasks");
    let held: Arc<Vec<std::sync::Mutex<Vec<String>>>> = Arc::new(
        (0..hosts)
            .map(|_| std::sync::Mutex::new(Vec::new()))
            .collect(),
    );
    for round in 0..2 {
        let client = client.clone();
        let base = base.clone();
        let held = Arc::clone(&held);
        for_each_concurrent(hosts, 16, move |i| {
            let client = client.clone();
            let base = base.clone();
            let held = Arc::clone(&held);
            async move {
                let body = heartbeat_body(&held[i]);
                if round == 1 && body.is_none() {
                    return;
                }
                let work = post(
                    &client,
                    format!("{base}/api/executors/{}/heartbeat", host_name(i)),
                    body.unwrap_or_else(|| b"{\"tasks\": []}".to_vec()),
                )
                .await;
                if round == 0 {
                    let ids = work["launch"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|t| t["task_id"].as_str().map(str::to_owned))
                        .collect();
                    *held[i].lock().expect("no panics") = ids;
                }
            }
        })
        .await;
    }
    wait_for(&client, &base, "RUNNING", fill_tasks, "fill running").await;
    let v = vars(&client, &base).await;
    assert_eq!(v["task_store_ASSIGNED"].as_u64(), Some(0), "{v}");

    eprintln!("  setup took {:.1} s", started.elapsed().as_secs_f64());

    let figure = timed(&client, &base, hosts, &held).await;
    eprintln!("  whole run {:.1} s", started.elapsed().as_secs_f64());
    drop(scheduler);
    figure
}

/// What each executor holds: the fill tasks it reports RUNNING.
type Held = Arc<Vec<std::sync::Mutex<Vec<String>>>>;

/// The timed phase: creates the mix and waits until every task is ASSIGNED; returns
/// placements per second.
async fn timed(client: &reqwest::Client, base: &str, hosts: usize, held: &Held) -> f64 {
    // A fresh snapshot, so that the periodic one (every 10,000 transactions) does not fall
    // into the timed phase at one size and not at another.
    post(client, format!("{base}/api/admin/snapshot"), Vec::new()).await;

    let mix = mix_jobs(hosts);
    let total: u64 = mix.iter().map(|j| u64::from(j.instances)).sum();
    eprintln!("  timing {} jobs of {total} tasks", mix.len());

    // Executors keep heartbeating at the configured rate while the timed phase runs.
    let stop = Arc::new(AtomicBool::new(false));
    let heartbeater = {
        let client = client.clone();
        let base = base.to_owned();
        let held = Arc::clone(held);
        let stop = Arc::clone(&stop);
        tokio::spawn(async move {
            let per_sec = hosts as f64 * 1000.0 / HEARTBEAT_INTERVAL_MS as f64;
            // At most this many heartbeats in flight: a slow scheduler gets fewer, as it
            // would from executors that wait for an answer before the next heartbeat.
            let in_flight = Arc::new(tokio::sync::Semaphore::new(16));
            let begun = Instant::now();
            let mut sent = 0usize;
            while !stop.load(Ordering::Relaxed) {
                let due = (begun.elapsed().as_secs_f64() * per_sec) as usize;
                while sent < due && !stop.load(Ordering::Relaxed) {
                    let permit = Arc::clone(&in_flight)
                        .acquire_owned()
                        .await
                        .expect("the semaphore stays open");
                    let i = sent % hosts;
                    let body =
                        heartbeat_body(&held[i]).unwrap_or_else(|| b"{\"tasks\": []}".to_vec());
                    let client = client.clone();
                    let url = format!("{base}/api/executors/{}/heartbeat", host_name(i));
                    tokio::spawn(async move {
                        post(&client, url, body).await;
                        drop(permit);
                    });
                    sent += 1;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            sent
        })
    };

    let before = vars(client, base).await;
    let timer = Instant::now();
    let creating = {
        let client = client.clone();
        let base = base.to_owned();
        let bodies: Arc<Vec<std::sync::Mutex<Option<Vec<u8>>>>> = Arc::new(
            mix.into_iter()
                .map(|j| std::sync::Mutex::new(Some(j.body)))
                .collect(),
        );
        let n = bodies.len();
        tokio::spawn(for_each_concurrent(n, create_concurrency(), move |i| {
            let client = client.clone();
            let url = format!("{base}/api/jobs");
            let body = bodies[i].lock().expect("no panics").take().expect("once");
            async move {
                post(&client, url, body).await;
            }
        }))
    };
    let deadline = Instant::now() + Duration::from_secs(1_800);
    let mut last_print = Instant::now();
    let elapsed = loop {
        let v = vars(client, base).await;
        let assigned = v["task_store_ASSIGNED"].as_u64().unwrap_or(0);
        if assigned >= total {
            // `/vars.json` reads memory; a read of the API answers only once everything it may
            // have seen is durable, so the figure counts the last assignments' write too.
            let resp = client
                .get(format!("{base}/api/locks"))
                .send()
                .await
                .expect("GET /api/locks");
            assert!(
                resp.status().is_success(),
                "GET /api/locks: {}",
                resp.status()
            );
            break timer.elapsed();
        }
        if last_print.elapsed() > Duration::from_secs(5) {
            eprintln!(
                "  {assigned}/{total} ASSIGNED, {} PENDING",
                v["task_store_PENDING"]
            );
            last_print = Instant::now();
        }
        assert!(
            Instant::now() < deadline,
            "not all tasks placed in time: {v}"
        );
        // Polling takes the engine lock too: poll about 100 times over the run, which keeps
        // the error of the measurement near 1%.
        let pause =
            (timer.elapsed() / 100).clamp(Duration::from_millis(2), Duration::from_millis(50));
        tokio::time::sleep(pause).await;
    };
    creating.await.expect("every job was created");
    stop.store(true, Ordering::Relaxed);
    let heartbeats = heartbeater.await.expect("the heartbeater ends");
    let after = vars(client, base).await;
    let secs = elapsed.as_secs_f64();
    let delta = |name: &str| {
        after[name]
            .as_u64()
            .unwrap_or(0)
            .saturating_sub(before[name].as_u64().unwrap_or(0))
    };
    assert_eq!(delta("task_store_LOST"), 0, "no task may be lost: {after}");
    eprintln!(
        "  {total} tasks ASSIGNED in {secs:.3} s; meanwhile {heartbeats} heartbeats, {} scheduling rounds ({} ms), {} storage batches ({} ms writing), {} snapshots",
        delta("scheduling_rounds"),
        delta("scheduling_latency_us_total") / 1000,
        delta("storage_batches_written"),
        delta("storage_write_latency_us_total") / 1000,
        delta("storage_snapshots"),
    );
    total as f64 / secs
}

/// A heartbeat reporting every task the executor holds as RUNNING; `None` when it holds none.
fn heartbeat_body(held: &std::sync::Mutex<Vec<String>>) -> Option<Vec<u8>> {
    let held = held.lock().expect("no panics");
    if held.is_empty() {
        return None;
    }
    let tasks: Vec<Value> = held
        .iter()
        .map(|id| json!({"task_id": id, "status": "RUNNING"}))
        .collect();
    Some(serde_json::to_vec(&json!({ "tasks": tasks })).expect("JSON"))
}
