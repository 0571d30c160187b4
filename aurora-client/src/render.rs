//! What the client prints: every command's answer as text for people and as JSON for
//! `--write-json`. These functions are pure (no scheduler, no clock), so their output is
//! pinned by snapshot tests on fixed inputs.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aurora_core::api::{
    BackupResponse, JobSummary, LocksResponse, MaintenanceResponse, QuotaResponse,
};
use aurora_core::{JobConfiguration, JobKey, JobPath, ResourceAggregate, ScheduledTask};
use serde_json::{Value, json};

/// What a command produced: text for people and the same as JSON for machines.
#[derive(Debug, Clone, PartialEq)]
pub struct Output {
    /// Human-readable lines.
    pub text: String,
    /// The machine-readable form.
    pub json: Value,
}

impl Output {
    /// What to print: the pretty JSON form (with a final newline) when `json`, else the text.
    pub fn printable(&self, json: bool) -> String {
        if json {
            // Serialising a `Value` cannot fail: its keys are strings.
            let mut text = serde_json::to_string_pretty(&self.json).unwrap_or_default();
            text.push('\n');
            text
        } else {
            self.text.clone()
        }
    }
}

/// A time in milliseconds since the Unix epoch as RFC 3339 (UTC, milliseconds).
pub fn format_ms(ms: i64) -> String {
    format_time(UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0)))
}

fn format_time(when: SystemTime) -> String {
    humantime::format_rfc3339_millis(when).to_string()
}

/// The first event's time of a task, the order in which a job's tasks are shown.
pub(crate) fn first_event_ms(task: &ScheduledTask) -> i64 {
    task.task_events
        .first()
        .map(|e| e.timestamp_ms)
        .unwrap_or_default()
}

/// Counts by state, e.g. `1 FINISHED, 2 RUNNING`, for progress lines.
pub fn summarize(tasks: &[ScheduledTask]) -> String {
    let mut counts = BTreeMap::new();
    for t in tasks {
        *counts.entry(t.status.as_str()).or_insert(0) += 1;
    }
    counts
        .iter()
        .map(|(s, n)| format!("{n} {s}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `aurora status`: every task of the job, active then inactive, each group by instance and
/// age, with its history.
pub fn status(key: &JobKey, tasks: &[ScheduledTask]) -> Output {
    let mut tasks: Vec<&ScheduledTask> = tasks.iter().collect();
    tasks.sort_by_key(|t| (t.instance(), first_event_ms(t)));
    let (active, inactive): (Vec<&ScheduledTask>, Vec<&ScheduledTask>) =
        tasks.iter().copied().partition(|t| t.status.is_active());
    let mut text = String::new();
    if tasks.is_empty() {
        text.push_str(&format!("No tasks found for job {key}\n"));
    }
    for (title, group) in [("Active", &active), ("Inactive", &inactive)] {
        if group.is_empty() {
            continue;
        }
        text.push_str(&format!("{title} tasks ({}):\n", group.len()));
        for task in group {
            render_task(&mut text, task);
        }
    }
    let json = json!({"job": key.to_string(), "tasks": tasks});
    Output { text, json }
}

fn render_task(out: &mut String, task: &ScheduledTask) {
    let a = &task.assigned_task;
    let r = &a.task.resources;
    out.push_str(&format!(
        "  instance {}  {}  host {}\n",
        a.instance_id,
        task.status,
        a.slave_host.as_deref().unwrap_or("-")
    ));
    out.push_str(&format!("    task id: {}\n", a.task_id));
    out.push_str(&format!(
        "    cpus: {:.2}, ram: {} MB, disk: {} MB\n",
        r.cpu,
        r.ram_bytes >> 20,
        r.disk_bytes >> 20
    ));
    if !a.assigned_ports.is_empty() {
        let ports: Vec<String> = a
            .assigned_ports
            .iter()
            .map(|(n, p)| format!("{n}={p}"))
            .collect();
        out.push_str(&format!("    ports: {}\n", ports.join(", ")));
    }
    if task.failure_count > 0 {
        out.push_str(&format!("    failure count: {}\n", task.failure_count));
    }
    out.push_str("    events:\n");
    for event in &task.task_events {
        out.push_str(&format!(
            "      {} {}{}\n",
            format_ms(event.timestamp_ms),
            event.status,
            event
                .message
                .as_deref()
                .map(|m| format!(": {m}"))
                .unwrap_or_default()
        ));
    }
}

/// `aurora list_jobs`: one line per job under `path`, with its task counts by state.
pub fn list_jobs(path: &JobPath, jobs: &[JobSummary]) -> Output {
    let mut text = String::new();
    for job in jobs {
        let counts: Vec<String> = job
            .task_counts
            .iter()
            .map(|(status, n)| format!("{n} {status}"))
            .collect();
        text.push_str(&format!(
            "{}  instances: {}  tasks: {}\n",
            job.key,
            job.instance_count,
            if counts.is_empty() {
                "none".to_owned()
            } else {
                counts.join(", ")
            }
        ));
    }
    if jobs.is_empty() {
        text.push_str(&format!("No jobs under {path}\n"));
    }
    Output {
        text,
        json: json!({ "jobs": jobs }),
    }
}

/// `aurora get_quota`: a role's production quota and what its tasks use.
pub fn quota(quota: &QuotaResponse) -> Output {
    let line = |name: &str, r: &ResourceAggregate| {
        format!(
            "  {name:<26} cpu: {:.2}  ram: {} MB  disk: {} MB\n",
            r.cpu,
            r.ram_bytes >> 20,
            r.disk_bytes >> 20
        )
    };
    let text = format!(
        "Quota of role {}:\n{}{}{}",
        quota.role,
        line("allocated (production)", &quota.quota),
        line("used by production tasks", &quota.prod_consumption),
        line("used by other tasks", &quota.non_prod_consumption)
    );
    Output {
        text,
        json: json!(quota),
    }
}

/// `aurora admin get_locks`: every lock, who holds it and since when.
pub fn locks(response: &LocksResponse) -> Output {
    let mut text = String::new();
    for lock in &response.locks {
        text.push_str(&format!(
            "{}  user: {}  since: {}  token: {}{}\n",
            lock.key,
            lock.user,
            format_ms(lock.timestamp_ms),
            lock.token,
            lock.message
                .as_deref()
                .map(|m| format!("  message: {m}"))
                .unwrap_or_default()
        ));
    }
    if response.locks.is_empty() {
        text.push_str("No locks held\n");
    }
    Output {
        text,
        json: json!(response),
    }
}

/// `aurora admin host_*`: the maintenance mode of each host.
pub fn maintenance(response: &MaintenanceResponse) -> Output {
    let mut text = String::new();
    for (host, mode) in &response.hosts {
        text.push_str(&format!("{host}: {mode:?}\n"));
    }
    if response.hosts.is_empty() {
        text.push_str("No host is in maintenance\n");
    }
    Output {
        text,
        json: json!(response),
    }
}

/// `aurora admin scheduler_backup_now`: where the backup went.
pub fn backup(backup: &BackupResponse) -> Output {
    Output {
        text: format!(
            "Backup {} written to {} on the scheduler\n",
            backup.name, backup.path
        ),
        json: json!(backup),
    }
}

/// `aurora validate`: one line per job of the config, with its instance count.
pub fn validated(jobs: &[(JobKey, u32)]) -> Output {
    let text = jobs
        .iter()
        .map(|(key, n)| format!("{key}: OK ({n} instance(s))\n"))
        .collect();
    let keys: Vec<String> = jobs.iter().map(|(key, _)| key.to_string()).collect();
    Output {
        text,
        json: json!({ "jobs": keys }),
    }
}

/// A config value as the original's `inspect` printed it (Python's repr for strings and None).
fn py_repr(v: &Value) -> String {
    match v {
        Value::String(s) => aurora_config::pystachio::pyfmt::py_repr_str(s),
        Value::Null => "None".to_owned(),
        other => other.to_string(),
    }
}

fn fields(out: &mut String, object: &Value, names: &[&str]) {
    for name in names {
        if let Some(v) = object.get(name) {
            out.push_str(&format!("  {:<22} {}\n", format!("{name}:"), py_repr(v)));
        }
    }
}

/// `aurora inspect`: the job a config defines. `job` is its interpolated form (`raw_json`),
/// `scheduled` what the scheduler would get. By default the text is for people (as the
/// original's `inspect` printed it) and the JSON is `job`; with `raw`, both are `scheduled`.
pub fn inspect(job: &Value, scheduled: &JobConfiguration, raw: bool) -> Output {
    if raw {
        let json = json!(scheduled);
        let mut text = serde_json::to_string_pretty(&json).unwrap_or_default();
        text.push('\n');
        return Output { text, json };
    }
    let mut out = String::from("Job level information\n");
    fields(
        &mut out,
        job,
        &[
            "name",
            "role",
            "contact",
            "cluster",
            "environment",
            "instances",
            "cron_schedule",
            "cron_collision_policy",
            "service",
            "production",
            "priority",
            "max_task_failures",
            "enable_hooks",
        ],
    );
    if let Some(c) = job.get("constraints").and_then(Value::as_object) {
        for (k, v) in c {
            out.push_str(&format!("  constraint {k}: {}\n", py_repr(v)));
        }
    }
    let task = &job["task"];
    out.push_str("\nTask level information\n");
    fields(
        &mut out,
        task,
        &[
            "name",
            "max_failures",
            "max_concurrency",
            "finalization_wait",
            "user",
        ],
    );
    if let Some(r) = task.get("resources") {
        out.push_str(&format!(
            "  resources:             cpu {}, ram {} MB, disk {} MB\n",
            r["cpu"],
            r["ram"].as_i64().unwrap_or_default() >> 20,
            r["disk"].as_i64().unwrap_or_default() >> 20
        ));
    }
    for c in task
        .get("constraints")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        let order: Vec<String> = c["order"]
            .as_array()
            .map(|o| o.iter().map(py_repr).collect())
            .unwrap_or_default();
        out.push_str(&format!(
            "  order:                 {}\n",
            order.join(" -> ")
        ));
    }
    for p in task["processes"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        out.push_str(&format!("\nProcess {}:\n", py_repr(&p["name"])));
        out.push_str("  cmdline:\n");
        for line in p["cmdline"].as_str().unwrap_or_default().lines() {
            out.push_str(&format!("    {line}\n"));
        }
        fields(
            &mut out,
            p,
            &[
                "max_failures",
                "daemon",
                "ephemeral",
                "min_duration",
                "final",
            ],
        );
    }
    Output {
        text: out,
        json: job.clone(),
    }
}

#[cfg(test)]
mod tests {
    //! Snapshots of what people and scripts see, on fixed inputs. Review a change with
    //! `cargo insta review` (or `INSTA_UPDATE=always cargo test` and `git diff`).

    use super::*;
    use aurora_core::api::Lock;
    use aurora_core::{AssignedTask, MaintenanceMode, ScheduleStatus, TaskEvent, TaskId};

    use crate::commands::{self, ConfigSource, JsonLoader};

    fn key() -> JobKey {
        "devcluster/www-data/prod/hello".parse().unwrap()
    }

    fn task(instance: u32, status: ScheduleStatus, first_ms: i64, failures: u32) -> ScheduledTask {
        let mut events = vec![TaskEvent {
            timestamp_ms: first_ms,
            status: ScheduleStatus::Pending,
            message: None,
            scheduler: None,
        }];
        if status != ScheduleStatus::Pending {
            events.push(TaskEvent {
                timestamp_ms: first_ms + 1500,
                status,
                message: status
                    .is_terminal()
                    .then(|| "Process hello exited 1".to_owned()),
                scheduler: Some("scheduler-1".into()),
            });
        }
        ScheduledTask {
            assigned_task: AssignedTask {
                task_id: TaskId(format!("{first_ms}-www-data-prod-hello-{instance}-abc")),
                slave_host: (status != ScheduleStatus::Pending).then(|| "host-1".into()),
                instance_id: instance,
                task: crate::fixtures::task_config(key()).into(),
                assigned_ports: if status == ScheduleStatus::Pending {
                    Default::default()
                } else {
                    [("http".to_owned(), 31000 + instance as u16)].into()
                },
            },
            status,
            failure_count: failures,
            ancestor_id: None,
            task_events: events,
        }
    }

    #[test]
    fn inspect_quotes_values_as_python_repr_does() {
        assert_eq!(py_repr(&json!("echo 'hi'")), r#""echo 'hi'""#);
        assert_eq!(py_repr(&json!("a\nb\\")), r"'a\nb\\'");
        assert_eq!(py_repr(&Value::Null), "None");
        assert_eq!(py_repr(&json!(2)), "2");
    }

    #[test]
    fn status_groups_active_then_inactive_by_instance_and_age() {
        // Given out of order: the output sorts by instance, then by first event.
        let tasks = vec![
            task(1, ScheduleStatus::Pending, 1_700_000_300_000, 1),
            task(0, ScheduleStatus::Running, 1_700_000_200_000, 0),
            task(1, ScheduleStatus::Failed, 1_700_000_100_000, 1),
        ];
        let out = status(&key(), &tasks);
        insta::assert_snapshot!("status_text", out.text);
        insta::assert_snapshot!("status_json", out.printable(true));
    }

    #[test]
    fn status_of_a_job_without_tasks() {
        let out = status(&key(), &[]);
        assert_eq!(
            out.text,
            "No tasks found for job devcluster/www-data/prod/hello\n"
        );
        assert_eq!(out.json["tasks"], json!([]));
    }

    #[test]
    fn list_jobs_counts_tasks_by_state() {
        let jobs = vec![
            JobSummary {
                key: key(),
                instance_count: 2,
                task_counts: [(ScheduleStatus::Running, 1), (ScheduleStatus::Failed, 1)].into(),
            },
            JobSummary {
                key: "devcluster/www-data/test/idle".parse().unwrap(),
                instance_count: 1,
                task_counts: BTreeMap::new(),
            },
        ];
        let path: JobPath = "devcluster/www-data".parse().unwrap();
        let out = list_jobs(&path, &jobs);
        insta::assert_snapshot!("list_jobs_text", out.text);
        insta::assert_snapshot!("list_jobs_json", out.printable(true));
        assert_eq!(
            list_jobs(&path, &[]).text,
            "No jobs under devcluster/www-data\n"
        );
    }

    #[test]
    fn quota_shows_allocation_and_consumption() {
        let aggregate = |cpu, ram_mb: u64, disk_mb: u64| ResourceAggregate {
            cpu,
            ram_bytes: ram_mb << 20,
            disk_bytes: disk_mb << 20,
        };
        let out = quota(&QuotaResponse {
            role: "www-data".into(),
            quota: aggregate(8.0, 16384, 65536),
            prod_consumption: aggregate(2.5, 4096, 1024),
            non_prod_consumption: aggregate(0.25, 128, 64),
        });
        insta::assert_snapshot!("get_quota_text", out.text);
        insta::assert_snapshot!("get_quota_json", out.printable(true));
    }

    #[test]
    fn locks_and_maintenance() {
        let held = LocksResponse {
            locks: vec![Lock {
                key: key(),
                token: "f00d".into(),
                user: "vagrant".into(),
                timestamp_ms: 1_700_000_000_000,
                message: Some("update to version 42".into()),
            }],
        };
        insta::assert_snapshot!("get_locks_text", locks(&held).text);
        assert_eq!(locks(&LocksResponse::default()).text, "No locks held\n");
        let hosts = MaintenanceResponse {
            hosts: [
                ("host-1".to_owned(), MaintenanceMode::Draining),
                ("host-2".to_owned(), MaintenanceMode::Scheduled),
            ]
            .into(),
        };
        insta::assert_snapshot!("maintenance_text", maintenance(&hosts).text);
        insta::assert_snapshot!("maintenance_json", maintenance(&hosts).printable(true));
    }

    /// Inspect through the real JSON loader, on a job with every kind of line.
    #[test]
    fn inspect_readable_and_raw() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hello.json");
        std::fs::write(
            &path,
            r#"{"name": "hello", "role": "www-data", "cluster": "devcluster",
                "environment": "prod", "instances": 2, "service": true,
                "constraints": {"rack": "limit:1"},
                "task": {"name": "hello", "finalization_wait": 10,
                  "processes": [
                    {"name": "setup", "cmdline": "mkdir -p data\necho {{greeting}}"},
                    {"name": "serve", "cmdline": "python3 -m http.server {{thermos.ports[http]}}", "daemon": true}],
                  "constraints": [{"order": ["setup", "serve"]}],
                  "resources": {"cpu": 0.5, "ram": 134217728, "disk": 268435456}}}"#,
        )
        .unwrap();
        let bindings = [("greeting".to_owned(), "hi".to_owned())];
        let source = ConfigSource {
            path: &path,
            json: true,
            bindings: &bindings,
        };
        let readable = commands::inspect(&JsonLoader, &source, &key(), "vagrant", false).unwrap();
        insta::assert_snapshot!("inspect_text", readable.text);
        insta::assert_snapshot!("inspect_json", readable.printable(true));
        let raw = commands::inspect(&JsonLoader, &source, &key(), "vagrant", true).unwrap();
        assert_eq!(
            raw.text,
            raw.printable(true),
            "--raw prints the same JSON either way"
        );
        insta::assert_snapshot!("inspect_raw", raw.text);
    }

    #[test]
    fn validate_lists_each_job() {
        let jobs = [
            (key(), 3),
            ("devcluster/www-data/test/idle".parse().unwrap(), 1),
        ];
        let out = validated(&jobs);
        assert_eq!(
            out.text,
            "devcluster/www-data/prod/hello: OK (3 instance(s))\ndevcluster/www-data/test/idle: OK (1 instance(s))\n"
        );
        assert_eq!(
            out.json,
            json!({"jobs": ["devcluster/www-data/prod/hello", "devcluster/www-data/test/idle"]})
        );
    }

    #[test]
    fn summaries_and_times() {
        let tasks = [
            task(0, ScheduleStatus::Running, 1, 0),
            task(1, ScheduleStatus::Running, 1, 0),
            task(2, ScheduleStatus::Finished, 1, 0),
        ];
        assert_eq!(summarize(&tasks), "1 FINISHED, 2 RUNNING");
        assert_eq!(format_ms(1_700_000_001_500), "2023-11-14T22:13:21.500Z");
        assert_eq!(format_ms(-5), "1970-01-01T00:00:00.000Z");
    }
}
