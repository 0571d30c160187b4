//! Scheduling with several executors: limit constraints, pending reasons, preemption, quota,
//! draining, executor loss and a scheduler crash in the middle of a burst of creates.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tests::{LocalCluster, binary, wait_for};

const WAIT: Duration = Duration::from_secs(90);

/// A small blocking client for the scheduler's JSON API.
struct Api {
    base: String,
    client: reqwest::blocking::Client,
}

impl Api {
    fn new(cluster: &LocalCluster) -> Api {
        Api {
            base: cluster.url(),
            client: reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("an HTTP client"),
        }
    }

    fn get(&self, path: &str) -> Value {
        let resp = self
            .client
            .get(format!("{}{path}", self.base))
            .send()
            .expect("GET");
        assert!(resp.status().is_success(), "GET {path}: {}", resp.status());
        resp.json().expect("JSON")
    }

    fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        let resp = self
            .client
            .post(format!("{}{path}", self.base))
            .json(body)
            .send()
            .expect("POST");
        let code = resp.status().as_u16();
        (code, resp.json().unwrap_or(Value::Null))
    }

    /// The tasks of job `name` (role www-data, environment devel) with their pending reasons.
    fn tasks(&self, name: &str) -> (Vec<Value>, Value) {
        let v = self.get(&format!(
            "/api/tasks?role=www-data&environment=devel&name={name}"
        ));
        (
            v["tasks"].as_array().cloned().unwrap_or_default(),
            v["pending_reasons"].clone(),
        )
    }
}

/// A job config in the client's JSON form.
fn job(name: &str, instances: u32, cpu: f64, extra: Value) -> String {
    let mut job = json!({
        "name": name,
        "role": "www-data",
        "cluster": "local",
        "environment": "devel",
        "instances": instances,
        "service": true,
        "task": {
            "processes": [{"name": "main", "cmdline": "sleep 120"}],
            "resources": {"cpu": cpu, "ram": 16 * 1024 * 1024, "disk": 16 * 1024 * 1024}
        }
    });
    if let (Some(obj), Some(more)) = (job.as_object_mut(), extra.as_object()) {
        for (k, v) in more {
            obj.insert(k.clone(), v.clone());
        }
    }
    job.to_string()
}

fn create(cluster: &LocalCluster, name: &str, config: &str) -> std::process::Output {
    let path = cluster.write(&format!("{name}.json"), config);
    cluster.aurora(&[
        "create",
        &format!("local/www-data/devel/{name}"),
        path.to_str().unwrap(),
        "-j",
    ])
}

fn create_ok(cluster: &LocalCluster, name: &str, config: &str) {
    let out = create(cluster, name, config);
    assert!(
        out.status.success(),
        "create {name} failed: {}{}\nscheduler log: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        cluster.read("scheduler.log")
    );
}

fn status(t: &Value) -> &str {
    t["status"].as_str().unwrap_or_default()
}

fn host(t: &Value) -> &str {
    t["assigned_task"]["slave_host"]
        .as_str()
        .unwrap_or_default()
}

fn id(t: &Value) -> &str {
    t["assigned_task"]["task_id"].as_str().unwrap_or_default()
}

fn messages(t: &Value) -> Vec<String> {
    t["task_events"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            format!(
                "{} {}",
                e["status"].as_str().unwrap_or(""),
                e["message"].as_str().unwrap_or("")
            )
        })
        .collect()
}

#[test]
fn limits_spread_instances_and_work_that_cannot_fit_says_why() {
    let mut cluster = LocalCluster::start();
    cluster.start_executor("h1", &["rack=a"]);
    cluster.start_executor("h2", &["rack=a"]);
    cluster.start_executor("h3", &["rack=b"]);
    let api = Api::new(&cluster);
    wait_for("three executors", WAIT, || {
        (api.get("/vars.json")["executors_live"] == 3).then_some(())
    });

    create_ok(
        &cluster,
        "spread",
        &job(
            "spread",
            3,
            0.1,
            json!({"constraints": {"rack": "limit:1"}}),
        ),
    );
    let (running, reason) = wait_for(
        "two instances running and one pending with a reason",
        WAIT,
        || {
            let (tasks, reasons) = api.tasks("spread");
            let running: Vec<Value> = tasks
                .iter()
                .filter(|t| status(t) == "RUNNING")
                .cloned()
                .collect();
            let pending = tasks.iter().find(|t| status(t) == "PENDING")?;
            let reason = reasons[id(pending)].as_str()?.to_owned();
            (running.len() == 2).then_some((running, reason))
        },
    );
    let racks: Vec<&str> = running
        .iter()
        .map(|t| if host(t) == "h3" { "b" } else { "a" })
        .collect();
    assert!(
        racks.contains(&"a") && racks.contains(&"b"),
        "one per rack: {running:?}"
    );
    assert_eq!(
        reason,
        "no host fits: constraint rack:limit:1 excludes 3 of 3 hosts"
    );

    create_ok(&cluster, "huge", &job("huge", 1, 8.0, json!({})));
    let reason = wait_for("the huge task's reason", WAIT, || {
        let (tasks, reasons) = api.tasks("huge");
        let t = tasks.first()?;
        (status(t) == "PENDING")
            .then(|| reasons[id(t)].as_str().map(str::to_owned))
            .flatten()
    });
    assert!(
        reason.starts_with("no host fits: insufficient cpu on 3 of 3 hosts (needs 8.25 = 8 + 0.25 executor overhead, largest free is"),
        "{reason}"
    );
    let pending = api.get("/pendingtasks");
    assert_eq!(pending.as_object().map(|m| m.len()), Some(2), "{pending}");
}

#[test]
fn production_preempts_other_work_within_its_quota() {
    let mut cluster = LocalCluster::start_with(&["--preemption-delay-ms", "0"]);
    cluster.start_executor("h1", &["rack=a"]);
    let api = Api::new(&cluster);

    // Non-production work needs no quota; three tasks fill the host (with executor overhead).
    create_ok(
        &cluster,
        "filler",
        &job(
            "filler",
            3,
            1.0,
            json!({"constraints": {"host": "limit:10"}}),
        ),
    );
    wait_for("the filler to run", WAIT, || {
        let (tasks, _) = api.tasks("filler");
        (tasks.iter().filter(|t| status(t) == "RUNNING").count() == 3).then_some(())
    });

    let urgent = job("urgent", 1, 1.5, json!({"production": true}));
    let out = create(&cluster, "urgent", &urgent);
    let stderr =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    assert!(
        !out.status.success(),
        "production work without quota is refused"
    );
    assert!(
        stderr.contains("insufficient quota for role www-data"),
        "{stderr}"
    );

    let quota = |cpu: f64| json!({"cpu": cpu, "ram_bytes": 1u64 << 30, "disk_bytes": 1u64 << 30});
    let (code, body) = api.post(
        "/api/admin/quota/www-data",
        &json!({"cpu": 1, "ram_bytes": -1, "disk_bytes": 0}),
    );
    assert_eq!(code, 400, "{body}");
    assert_eq!(api.post("/api/admin/quota/www-data", &quota(1.0)).0, 200);
    assert!(
        !create(&cluster, "urgent", &urgent).status.success(),
        "1.5 cpu does not fit a quota of 1"
    );
    assert_eq!(api.post("/api/admin/quota/www-data", &quota(4.0)).0, 200);
    create_ok(&cluster, "urgent", &urgent);
    let q = api.get("/api/quota/www-data");
    assert_eq!(q["prod_consumption"]["cpu"], json!(1.5), "{q}");
    assert_eq!(q["non_prod_consumption"]["cpu"], json!(3.0), "{q}");

    let urgent_id = wait_for("the production task to run", WAIT, || {
        let (tasks, _) = api.tasks("urgent");
        let t = tasks.iter().find(|t| status(t) == "RUNNING")?;
        Some(id(t).to_owned())
    });
    let (filler, _) = api.tasks("filler");
    let preempted: Vec<&Value> = filler
        .iter()
        .filter(|t| {
            messages(t)
                .iter()
                .any(|m| m == &format!("PREEMPTING Preempting in favor of {urgent_id}"))
        })
        .collect();
    assert_eq!(preempted.len(), 2, "two victims make room: {filler:#?}");
    for t in preempted {
        assert_eq!(status(t), "KILLED");
    }
    // The victims are replaced, and wait for room.
    let (filler, reasons) = api.tasks("filler");
    assert_eq!(
        filler.iter().filter(|t| status(t) == "PENDING").count(),
        2,
        "{filler:#?}"
    );
    assert_eq!(reasons.as_object().map(|m| m.len()), Some(2), "{reasons}");
    let vars = api.get("/vars.json");
    assert_eq!(vars["preemptor_tasks_preempted"], 2, "{vars}");
}

#[test]
fn lost_executors_and_drained_hosts_have_their_tasks_moved() {
    let mut cluster = LocalCluster::start_with(&[
        "--executor-timeout-ms",
        "3000",
        "--flapping-task-threshold-ms",
        "0",
    ]);
    cluster.start_executor("h1", &["rack=a"]);
    cluster.start_executor("h2", &["rack=b"]);
    cluster.start_executor("h3", &["rack=c"]);
    let api = Api::new(&cluster);
    create_ok(&cluster, "svc", &job("svc", 1, 0.1, json!({})));
    let first = wait_for("svc to run", WAIT, || {
        let (tasks, _) = api.tasks("svc");
        tasks.into_iter().find(|t| status(t) == "RUNNING")
    });

    // kill -9 the executor running it: the task is LOST and runs elsewhere.
    let victim = host(&first).to_owned();
    let index = ["h1", "h2", "h3"]
        .iter()
        .position(|h| *h == victim)
        .unwrap();
    cluster.executors[index].kill9();
    let second = wait_for("svc to run on another host", WAIT, || {
        let (tasks, _) = api.tasks("svc");
        tasks
            .into_iter()
            .find(|t| status(t) == "RUNNING" && host(t) != victim)
    });
    let (tasks, _) = api.tasks("svc");
    let lost = tasks.iter().find(|t| id(t) == id(&first)).unwrap();
    assert_eq!(status(lost), "LOST");
    assert!(
        messages(lost).last().unwrap().contains("sent no heartbeat"),
        "{lost}"
    );
    assert_eq!(second["ancestor_id"].as_str(), Some(id(&first)));

    // Draining its new host moves it again, through DRAINING.
    let drained = host(&second).to_owned();
    let (code, body) = api.post("/api/admin/maintenance/drain", &json!({"hosts": [drained]}));
    assert_eq!(code, 200, "{body}");
    let third = wait_for("svc to run on a third host", WAIT, || {
        let (tasks, _) = api.tasks("svc");
        tasks
            .into_iter()
            .find(|t| status(t) == "RUNNING" && host(t) != victim && host(t) != drained)
    });
    let (tasks, _) = api.tasks("svc");
    let moved = tasks.iter().find(|t| id(t) == id(&second)).unwrap();
    assert!(
        messages(moved).iter().any(|m| m.starts_with("DRAINING")),
        "{moved}"
    );
    assert_eq!(status(moved), "KILLED");
    wait_for("the host to be DRAINED", WAIT, || {
        (api.get("/api/admin/maintenance")["hosts"][&drained] == "DRAINED").then_some(())
    });
    assert_eq!(
        api.post("/api/admin/maintenance/end", &json!({"hosts": [drained]}))
            .0,
        200
    );
    assert!(!host(&third).is_empty());
}

#[test]
fn a_scheduler_killed_mid_burst_loses_nothing_it_acknowledged() {
    let mut cluster = LocalCluster::start();
    let base = cluster.url();
    let acked: Arc<Mutex<Vec<String>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..3)
        .map(|w| {
            let (base, acked, stop) = (base.clone(), Arc::clone(&acked), Arc::clone(&stop));
            std::thread::spawn(move || {
                let client = reqwest::blocking::Client::builder()
                    .timeout(Duration::from_secs(5))
                    .build()
                    .expect("client");
                for i in 0.. {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let name = format!("burst{w}x{i}");
                    let key = json!({"cluster": "local", "role": "burst", "environment": "prod", "name": name});
                    let body = json!({"job": {
                        "key": key, "owner": {"role": "burst", "user": "e2e"}, "instance_count": 2,
                        "task_config": {
                            "job": key, "owner": {"role": "burst", "user": "e2e"}, "is_service": false,
                            "max_task_failures": 1, "priority": 0, "production": false,
                            "resources": {"cpu": 0.1, "ram_bytes": 1048576, "disk_bytes": 1048576},
                            "executor_config": {"name": "AuroraExecutor", "data": "{}"}
                        }
                    }});
                    match client.post(format!("{base}/api/jobs")).json(&body).send() {
                        Ok(r) if r.status().is_success() => acked.lock().unwrap().push(name),
                        // Refused or cut off by the crash: not acknowledged.
                        _ => {}
                    }
                }
            })
        })
        .collect();
    wait_for("some creates to be acknowledged", WAIT, || {
        (acked.lock().unwrap().len() >= 30).then_some(())
    });
    cluster.scheduler.as_mut().unwrap().kill9();
    stop.store(true, Ordering::SeqCst);
    for w in workers {
        w.join().unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    cluster.start_scheduler();
    let api = Api::new(&cluster);
    let jobs = api.get("/api/jobs?role=burst");
    let known: Vec<(String, u64)> = jobs["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| {
            let pending = j["task_counts"]["PENDING"].as_u64().unwrap_or(0);
            (
                j["key"]["name"].as_str().unwrap_or_default().to_owned(),
                pending,
            )
        })
        .collect();
    for name in &acked {
        let found = known.iter().find(|(n, _)| n == name);
        assert_eq!(
            found.map(|(_, p)| *p),
            Some(2),
            "acknowledged job {name} lost or incomplete"
        );
    }

    // The admin command backs up the stopped scheduler's state and restores it elsewhere.
    cluster.scheduler.as_mut().unwrap().kill9();
    let data = cluster.dir.path().join("scheduler-data");
    let backup = cluster.dir.path().join("backup.json");
    let out = std::process::Command::new(binary("aurora-scheduler"))
        .args(["backup", "--data-dir"])
        .arg(&data)
        .arg("--out")
        .arg(&backup)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let restored = cluster.dir.path().join("restored");
    let out = std::process::Command::new(binary("aurora-scheduler"))
        .args(["restore", "--data-dir"])
        .arg(&restored)
        .arg("--from")
        .arg(&backup)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&backup).unwrap();
    for name in &acked {
        assert!(
            text.contains(&format!("\"{name}\"")),
            "{name} missing from the backup"
        );
    }
}
