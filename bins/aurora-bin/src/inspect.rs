//! `aurora inspect`: the job a config defines, printed for people (as the original client's
//! `inspect` did), or as JSON.

use std::path::Path;

use aurora_client::commands::{CommandError, ConfigSource, LoadedJob, Output, evaluate_config};
use aurora_core::JobKey;
use serde_json::{Value, json};

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => format!("'{s}'"),
        Value::Null => "None".to_owned(),
        other => other.to_string(),
    }
}

/// Renders a loaded job. `raw` selects the scheduler-side configuration as the JSON form;
/// otherwise the JSON form is the fully interpolated job (`raw_json`).
pub fn render(loaded: &LoadedJob<'_>, raw: bool) -> Output {
    let job = &loaded.raw;
    let json = if raw {
        serde_json::to_value(&loaded.converted.job).unwrap_or(Value::Null)
    } else {
        job.clone()
    };
    let mut out = String::from("Job level information\n");
    for field in [
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
    ] {
        if let Some(v) = job.get(field) {
            out.push_str(&format!("  {:<22} {}\n", format!("{field}:"), text(v)));
        }
    }
    if let Some(c) = job.get("constraints").and_then(Value::as_object) {
        for (k, v) in c {
            out.push_str(&format!("  constraint {k}: {}\n", text(v)));
        }
    }
    let task = &job["task"];
    out.push_str("\nTask level information\n");
    for field in [
        "name",
        "max_failures",
        "max_concurrency",
        "finalization_wait",
        "user",
    ] {
        if let Some(v) = task.get(field) {
            out.push_str(&format!("  {:<22} {}\n", format!("{field}:"), text(v)));
        }
    }
    if let Some(r) = task.get("resources") {
        out.push_str(&format!(
            "  resources:             cpu {}, ram {} MB, disk {} MB\n",
            r["cpu"],
            r["ram"].as_i64().unwrap_or_default() >> 20,
            r["disk"].as_i64().unwrap_or_default() >> 20
        ));
    }
    if let Some(cs) = task.get("constraints").and_then(Value::as_array) {
        for c in cs {
            let order: Vec<String> = c["order"]
                .as_array()
                .map(|o| o.iter().map(text).collect())
                .unwrap_or_default();
            out.push_str(&format!(
                "  order:                 {}\n",
                order.join(" -> ")
            ));
        }
    }
    for p in task["processes"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        out.push_str(&format!("\nProcess {}:\n", text(&p["name"])));
        out.push_str("  cmdline:\n");
        for line in p["cmdline"].as_str().unwrap_or_default().lines() {
            out.push_str(&format!("    {line}\n"));
        }
        for field in [
            "max_failures",
            "daemon",
            "ephemeral",
            "min_duration",
            "final",
        ] {
            if let Some(v) = p.get(field) {
                out.push_str(&format!("  {:<22} {}\n", format!("{field}:"), text(v)));
            }
        }
    }
    if raw {
        out = serde_json::to_string_pretty(&json).unwrap_or_default();
        out.push('\n');
    }
    Output { text: out, json }
}

/// `aurora validate`: loads the config once and evaluates every job it defines (bindings,
/// validation, conversion). Fails with the first invalid job.
pub fn validate(
    path: &Path,
    bindings: &[(String, String)],
    user: &str,
) -> Result<Output, CommandError> {
    let config = aurora_py::load_config(path).map_err(|e| CommandError::Load(e.to_string()))?;
    let source = ConfigSource {
        path,
        json: false,
        bindings,
    };
    let mut text = String::new();
    let mut keys = Vec::with_capacity(config.jobs.len());
    for job in &config.jobs {
        let field = |name: &str| -> String {
            job.field(name)
                .ok()
                .flatten()
                .and_then(|v| v.py_str().ok())
                .unwrap_or_default()
        };
        let key = [
            field("cluster"),
            field("role"),
            field("environment"),
            field("name"),
        ]
        .join("/");
        let key: JobKey = key.parse().map_err(|e| {
            CommandError::Load(format!(
                "{}: a job has no valid key ({key}): {e}",
                path.display()
            ))
        })?;
        let ev = evaluate_config(std::slice::from_ref(job), &source, &key, user)?;
        text.push_str(&format!(
            "{key}: OK ({} instance(s))\n",
            ev.converted.job.instance_count
        ));
        keys.push(key.to_string());
    }
    Ok(Output {
        text,
        json: json!({ "jobs": keys }),
    })
}
