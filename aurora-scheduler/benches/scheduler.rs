//! Scheduler benchmarks, printing `BENCH name value` lines.
//!
//! Run with `cargo bench -p aurora-scheduler --bench scheduler` (all), or name some:
//! `cargo bench -p aurora-scheduler --bench scheduler -- placements preemption create rss`
//! (`rss_tasks` or `rss_hosts` for one of the two memory figures).
//!
//! - `placement_fn_per_sec`: the pure function `aurora_core::place` alone (no HTTP, storage or
//!   state machine), on an empty cluster of 10,000 hosts in 5,000 racks with `host` and `rack`
//!   limit constraints, placing 100,000 pending tasks of 1,000 jobs; timed is one call, the best
//!   of three. The end-to-end figure, the real scheduler binary over HTTP with its storage on a
//!   half-full cluster, is `e2e_placements_per_sec` (`cargo bench -p aurora-scheduler-bin --bench
//!   e2e_placement`), which names the published figures it compares with.
//! - `preemption_search_ms`: `aurora_core::find_preemption` on 10,000 full hosts where only the
//!   last host has tasks the pending one may preempt (the whole cluster is searched).
//! - `create_4000_instances_ms`: one job of 4,000 instances created through the real HTTP API
//!   with SQLite storage, until every task is ASSIGNED and stored (1,000 registered
//!   executors).
//! - `scheduler_rss_mib_100k_tasks`: resident memory of a process running a scheduler that
//!   holds 100,000 ASSIGNED tasks of 3,320 jobs with ~1 KB executor payloads on 5,000 hosts
//!   (measured in a child process that runs only the scheduler, in-process, and the HTTP
//!   clients that feed it; their runtime and connections count against the figure); the same
//!   child reports `snapshot_pause_us_100k_tasks`, how long a snapshot holds the engine lock,
//!   and `snapshot_total_ms_100k_tasks`, how long it takes to write.
//! - `scheduler_rss_bytes_per_host`: growth of a scheduler process's resident memory per
//!   registered executor, over 100,000 registrations after a baseline of 1,000.
//!
//! The memory figures have no anchor that runs here (the original scheduler is a JVM service
//! sized by its heap settings); they are held to the project's targets instead: at most
//! 300 MiB for the 100,000 tasks and 1,024 bytes per registered host.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use aurora_core::{
    AssignedTask, Constraint, ExecutorConfig, Identity, JobKey, MaintenanceMode, PlacementConfig,
    PlacementHost, PlacementInput, PreemptionInput, Resources, ScheduleStatus, ScheduledTask,
    TaskConfig, TaskConstraint, TaskId, find_preemption, place,
};
use serde_json::{Value, json};

const GIB: u64 = 1 << 30;

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    if std::env::args().any(|a| a == "--rss-child-tasks") {
        rss_child_tasks();
        return;
    }
    if std::env::args().any(|a| a == "--rss-child-hosts") {
        rss_child_hosts();
        return;
    }
    let wanted = |name: &str| args.is_empty() || args.iter().any(|a| name.contains(a.as_str()));
    if wanted("placements") {
        placements();
    }
    if wanted("preemption") {
        preemption();
    }
    if wanted("create") {
        create_4000();
    }
    if wanted("rss_tasks") {
        rss("--rss-child-tasks");
    }
    if wanted("rss_hosts") {
        rss("--rss-child-hosts");
    }
}

fn hosts(n: usize, cpu: f64) -> Vec<PlacementHost> {
    (0..n)
        .map(|i| PlacementHost {
            host: format!("host-{i:05}"),
            attributes: BTreeMap::from([
                ("host".to_owned(), BTreeSet::from([format!("host-{i:05}")])),
                (
                    "rack".to_owned(),
                    BTreeSet::from([format!("rack-{:05}", i / 2)]),
                ),
            ])
            .into(),
            cpu,
            ram_bytes: 64 * GIB,
            disk_bytes: 64 * GIB,
            ports: 31000..=32000,
            maintenance: MaintenanceMode::None,
        })
        .collect()
}

fn config(job: usize, production: bool, priority: i32, cpu: f64) -> TaskConfig {
    let key: JobKey = format!("bench/role{}/prod/job{job}", job % 50)
        .parse()
        .expect("valid key");
    TaskConfig {
        owner: Identity {
            role: key.role().to_owned(),
            user: "bench".into(),
        },
        job: key,
        is_service: true,
        max_task_failures: 1,
        priority,
        production,
        contact_email: None,
        resources: Resources {
            cpu,
            ram_bytes: GIB,
            disk_bytes: GIB,
            ports: BTreeSet::from(["http".to_owned()]),
        },
        constraints: ["host", "rack"]
            .into_iter()
            .map(|name| Constraint {
                name: name.to_owned(),
                constraint: TaskConstraint::Limit { limit: 1 },
            })
            .collect(),
        task_links: BTreeMap::new(),
        executor_config: ExecutorConfig {
            name: "AuroraExecutor".into(),
            data: "{}".into(),
        },
    }
}

fn task(config: &TaskConfig, instance: u32, host: Option<&str>) -> ScheduledTask {
    ScheduledTask {
        assigned_task: AssignedTask {
            task_id: TaskId(format!("{}-{instance}", config.job)),
            slave_host: host.map(str::to_owned),
            instance_id: instance,
            task: config.clone().into(),
            assigned_ports: BTreeMap::new(),
        },
        status: if host.is_some() {
            ScheduleStatus::Running
        } else {
            ScheduleStatus::Pending
        },
        failure_count: 0,
        ancestor_id: None,
        task_events: Vec::new(),
    }
}

fn placements() {
    let hosts = hosts(10_000, 16.0);
    let mut pending = Vec::with_capacity(100_000);
    for job in 0..1_000 {
        let c = config(job, false, 0, 1.0);
        for i in 0..100 {
            pending.push(task(&c, i, None));
        }
    }
    let refs: Vec<&ScheduledTask> = pending.iter().collect();
    let mut best = f64::MAX;
    for _ in 0..3 {
        let started = Instant::now();
        let plan = place(&PlacementInput {
            hosts: &hosts,
            assigned: &[],
            pending: &refs,
            config: PlacementConfig::default(),
            reservations: &BTreeMap::new(),
        });
        let secs = started.elapsed().as_secs_f64();
        assert_eq!(
            plan.assignments.len(),
            100_000,
            "every task fits: {:?}",
            plan.unplaced.first()
        );
        best = best.min(secs);
    }
    println!("BENCH placement_fn_per_sec {:.0} /s", 100_000.0 / best);
}

fn preemption() {
    let hosts = hosts(10_000, 16.0);
    let mut running = Vec::new();
    for (h, host) in hosts.iter().enumerate() {
        // Full hosts; only the last one runs work the pending task may preempt.
        let production = h + 1 != hosts.len();
        for slot in 0..4 {
            let c = config(h * 4 + slot, production, 0, 3.75);
            running.push(task(&c, 0, Some(&host.host)));
        }
    }
    let assigned: Vec<&ScheduledTask> = running.iter().collect();
    let pending = task(&config(99_999, true, 0, 6.0), 0, None);
    let mut times = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        let plan = find_preemption(&PreemptionInput {
            hosts: &hosts,
            assigned: &assigned,
            pending: &pending,
            config: PlacementConfig::default(),
        });
        times.push(started.elapsed().as_secs_f64() * 1000.0);
        let plan = plan.expect("the last host has victims");
        assert_eq!(plan.victims.len(), 2);
    }
    times.sort_by(f64::total_cmp);
    println!("BENCH preemption_search_ms {:.1}", times[times.len() / 2]);
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

fn job_body(name: &str, instances: u32, host_limit: u32) -> Value {
    let key = json!({"cluster": "local", "role": "bench", "environment": "prod", "name": name});
    json!({"job": {
        "key": key, "owner": {"role": "bench", "user": "bench"}, "instance_count": instances,
        "task_config": {
            "job": key, "owner": {"role": "bench", "user": "bench"}, "is_service": true,
            "max_task_failures": 1, "priority": 0, "production": false,
            "resources": {"cpu": 0.5, "ram_bytes": 64u64 << 20, "disk_bytes": 64u64 << 20, "ports": ["http"]},
            "constraints": [{"name": "host", "constraint": {"limit": {"limit": host_limit}}}],
            "executor_config": {"name": "AuroraExecutor", "data": "{}"}
        }
    }})
}

async fn start(dir: &std::path::Path) -> (String, tokio::sync::oneshot::Sender<()>) {
    let config = aurora_scheduler::Config {
        data_dir: dir.to_owned(),
        http_host: "127.0.0.1".into(),
        http_port: 0,
        heartbeat_interval_ms: 100,
        executor_timeout_ms: 600_000,
        ..aurora_scheduler::Config::default()
    };
    let scheduler = aurora_scheduler::Scheduler::start(config)
        .await
        .expect("the scheduler starts");
    let base = format!("http://{}", scheduler.local_addr());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(scheduler.serve(async move {
        let _ = stopped.await;
    }));
    (base, stop)
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

fn create_4000() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    runtime().block_on(async {
        let (base, stop) = start(dir.path()).await;
        let client = reqwest::Client::new();
        for h in 0..1_000 {
            let body = json!({"host": format!("sim-{h:04}"),
                "attributes": {"rack": [format!("rack-{}", h / 2)]},
                "resources": {"cpu": 16, "ram_bytes": 64u64 << 30, "disk_bytes": 64u64 << 30,
                              "ports": {"begin": 31000, "end": 32000}}});
            let resp = client
                .post(format!("{base}/api/executors"))
                .json(&body)
                .send()
                .await
                .expect("register");
            assert!(resp.status().is_success());
        }
        let started = Instant::now();
        let resp = client
            .post(format!("{base}/api/jobs"))
            .json(&job_body("big", 4_000, 4))
            .send()
            .await
            .expect("create");
        assert!(resp.status().is_success(), "{:?}", resp.text().await);
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let v = vars(&client, &base).await;
            if v["task_store_ASSIGNED"].as_u64() == Some(4_000) {
                // `/vars.json` reads memory; an API read answers once all it saw is durable.
                let resp = client
                    .get(format!("{base}/api/locks"))
                    .send()
                    .await
                    .expect("GET /api/locks");
                assert!(resp.status().is_success());
                break;
            }
            assert!(Instant::now() < deadline, "tasks not placed in time: {v}");
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        println!(
            "BENCH create_4000_instances_ms {:.0}",
            started.elapsed().as_secs_f64() * 1000.0
        );
        let _ = stop.send(());
    });
}

/// Runs one memory measurement in a child process of its own, so that no other bench's memory
/// counts; the child's HTTP clients do.
fn rss(part: &str) {
    let exe = std::env::current_exe().expect("the bench knows its path");
    let out = std::process::Command::new(exe)
        .arg(part)
        .output()
        .expect("run the rss child");
    let text = String::from_utf8_lossy(&out.stdout);
    print!("{text}");
    assert!(
        out.status.success(),
        "{part}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The resident set of this process, in KiB.
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .unwrap_or(0)
}

/// An executor payload shaped like the corpus's jobs (`services.md`'s hello world with a
/// second process): about 1 KB of JSON, different for every job.
fn payload(role: &str, name: &str) -> String {
    json!({
        "cluster": "local", "cron_collision_policy": "KILL_EXISTING", "enable_hooks": false,
        "environment": "prod",
        "health_check_config": {"initial_interval_secs": 15.0, "interval_secs": 10.0,
                                "max_consecutive_failures": 0, "timeout_secs": 1.0},
        "instances": 1, "max_task_failures": 1, "name": name, "priority": 0,
        "production": false, "role": role, "service": true,
        "task": {
            "constraints": [{"order": ["fetch", name]}], "finalization_wait": 30,
            "max_concurrency": 0, "max_failures": 1, "name": name,
            "processes": [
                {"cmdline": format!("curl -sf http://artifacts/{role}/{name}.tgz | tar xz"),
                 "daemon": false, "ephemeral": false, "final": false, "max_failures": 1,
                 "min_duration": 5, "name": "fetch"},
                {"cmdline": format!("\n    while true; do\n      echo hello from {name} on {{{{mesos.instance}}}}\n      sleep 10\n    done\n  "),
                 "daemon": false, "ephemeral": false, "final": false, "max_failures": 1,
                 "min_duration": 5, "name": name}
            ],
            "resources": {"cpu": 0.25, "disk": 67108864, "ram": 67108864}
        },
        "update_config": {"batch_size": 1, "max_per_shard_failures": 0, "max_total_failures": 0,
                          "restart_threshold": 60, "rollback_on_failure": true,
                          "wait_for_batch_completion": false, "watch_secs": 45}
    })
    .to_string()
}

/// A service job with a realistic payload; instances spread one per host.
fn realistic_job(role: &str, name: &str, instances: u32) -> Value {
    let key = json!({"cluster": "local", "role": role, "environment": "prod", "name": name});
    let owner = json!({"role": role, "user": "bench"});
    json!({"job": {
        "key": key, "owner": owner, "instance_count": instances,
        "task_config": {
            "job": key, "owner": owner, "is_service": true, "max_task_failures": 1,
            "priority": 0, "production": false,
            "contact_email": format!("{role}-oncall@example.com"),
            "resources": {"cpu": 0.25, "ram_bytes": 64u64 << 20, "disk_bytes": 64u64 << 20,
                          "ports": ["http"]},
            "constraints": [{"name": "host", "constraint": {"limit": {"limit": 1}}}],
            "task_links": {"http": "http://%host%:%port:http%"},
            "executor_config": {"name": "AuroraExecutor", "data": payload(role, name)}
        }
    }})
}

/// Registers `hosts` executors named `host-<i>.<domain>` with rack and zone attributes,
/// `concurrency` requests at a time so that their commits share fsyncs.
async fn register_hosts(base: &str, hosts: std::ops::Range<usize>, concurrency: usize) {
    post_all(base, "/api/executors", hosts, concurrency, |h| {
        json!({"host": format!("host-{h:06}.cluster.example.com"),
            "attributes": {"rack": [format!("rack-{:04}", h / 40)],
                           "zone": [format!("zone-{}", h % 3)]},
            "resources": {"cpu": 16, "ram_bytes": 64u64 << 30,
                          "disk_bytes": 512u64 << 30,
                          "ports": {"begin": 31000, "end": 32000}}})
    })
    .await;
}

/// Creates `realistic_job`s from (role, name, instances), `concurrency` at a time; each body is
/// built as it is sent, so that no list of bodies counts as the scheduler's memory.
async fn create_jobs(base: &str, jobs: Vec<(String, String, u32)>, concurrency: usize) {
    let jobs = std::sync::Arc::new(jobs);
    let n = jobs.len();
    post_all(base, "/api/jobs", 0..n, concurrency, move |i| {
        let (role, name, instances) = &jobs[i];
        realistic_job(role, name, *instances)
    })
    .await;
}

/// POSTs `body(i)` to `path` for every `i` of `items`, `concurrency` requests at a time; each
/// must succeed. Bodies are built as they are sent: the memory benches run the scheduler in
/// this process, so a list of every body would count as the scheduler's memory.
async fn post_all<F>(
    base: &str,
    path: &str,
    items: std::ops::Range<usize>,
    concurrency: usize,
    body: F,
) where
    F: Fn(usize) -> Value + Send + Sync + 'static,
{
    let body = std::sync::Arc::new(body);
    let url = format!("{base}{path}");
    let mut workers = tokio::task::JoinSet::new();
    for w in 0..concurrency {
        let (url, items, body) = (url.clone(), items.clone(), std::sync::Arc::clone(&body));
        workers.spawn(async move {
            let client = reqwest::Client::new();
            for i in items.skip(w).step_by(concurrency) {
                let resp = client
                    .post(&url)
                    .json(&body(i))
                    .send()
                    .await
                    .unwrap_or_else(|e| panic!("POST {url}: {e}"));
                assert!(
                    resp.status().is_success(),
                    "POST {url}: {:?}",
                    resp.text().await
                );
            }
        });
    }
    while let Some(done) = workers.join_next().await {
        done.expect("a posting worker");
    }
}

async fn wait_assigned(client: &reqwest::Client, base: &str, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(900);
    loop {
        let v = vars(client, base).await;
        if v["task_store_ASSIGNED"].as_u64() == Some(n) {
            return;
        }
        assert!(Instant::now() < deadline, "tasks not placed in time: {v}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `scheduler_rss_mib_100k_tasks`: the resident memory of a process (this child, which runs
/// nothing but the scheduler and the HTTP clients that feed it) running a scheduler with SQLite storage that holds 100,000
/// ASSIGNED tasks on 5,000 registered hosts: 3,320 service jobs with ~1 KB corpus-like
/// executor payloads (20 of 2,000 instances, 300 of 100, 3,000 of 10), so most tasks share
/// their job's config. The same child then reports `snapshot_pause_us_100k_tasks` (how long a
/// snapshot holds the engine lock) and `snapshot_total_ms_100k_tasks` (until it is written).
fn rss_child_tasks() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    runtime().block_on(async {
        let (base, stop) = start(dir.path()).await;
        let client = reqwest::Client::new();
        register_hosts(&base, 0..5_000, 32).await;
        let mut jobs = Vec::new();
        for (count, instances) in [(20, 2_000), (300, 100), (3_000, 10)] {
            for j in 0..count {
                let role = format!("team{:02}", j % 40);
                jobs.push((role, format!("svc{instances}-{j}"), instances));
            }
        }
        create_jobs(&base, jobs, 16).await;
        wait_assigned(&client, &base, 100_000).await;
        let v = vars(&client, &base).await;
        assert_eq!(v["tasks_total"].as_u64(), Some(100_000), "{v}");
        println!(
            "BENCH scheduler_rss_mib_100k_tasks {:.0}",
            rss_kib() as f64 / 1024.0
        );
        // How long a snapshot of 100,000 tasks holds the engine lock (the rest runs aside).
        let started = Instant::now();
        let resp = client
            .post(format!("{base}/api/admin/snapshot"))
            .send()
            .await
            .expect("snapshot");
        assert!(resp.status().is_success());
        let v = vars(&client, &base).await;
        println!(
            "BENCH snapshot_pause_us_100k_tasks {}",
            v["storage_snapshot_pause_us_last"]
        );
        println!(
            "BENCH snapshot_total_ms_100k_tasks {:.0}",
            started.elapsed().as_secs_f64() * 1000.0
        );
        let _ = stop.send(());
    });
}

/// `scheduler_rss_bytes_per_host`: how much the resident memory of a process running a
/// scheduler (SQLite storage) grows per registered executor: 1,000 hosts are registered and
/// one task placed (so that placement's view of the hosts exists), the RSS is read; 100,000
/// more hosts (host name, rack and zone attributes) are registered and another task placed,
/// and the growth is divided by 100,000.
fn rss_child_hosts() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    runtime().block_on(async {
        let (base, stop) = start(dir.path()).await;
        let client = reqwest::Client::new();
        register_hosts(&base, 0..1_000, 32).await;
        create_jobs(&base, vec![("base".into(), "first".into(), 1)], 1).await;
        wait_assigned(&client, &base, 1).await;
        let before = rss_kib();
        register_hosts(&base, 1_000..101_000, 32).await;
        create_jobs(&base, vec![("base".into(), "second".into(), 1)], 1).await;
        wait_assigned(&client, &base, 2).await;
        let v = vars(&client, &base).await;
        assert_eq!(v["executors_registered"].as_u64(), Some(101_000), "{v}");
        let grown = rss_kib().saturating_sub(before);
        println!(
            "BENCH scheduler_rss_bytes_per_host {:.0}",
            grown as f64 * 1024.0 / 100_000.0
        );
        let _ = stop.send(());
    });
}
