//! Compatibility with Aurora 0.6: every config of the corpus (`../shared/examples/aurora-corpus`,
//! or `$AURORA_CORPUS`) is loaded by the embedded Python loader and evaluated as its expected
//! file says (job key, `-E` bindings, `USER=LOGNAME=vagrant`). OK jobs must give the same
//! `raw_json` (compared as JSON values); failures must fail at the same stage, with the same
//! kind of error naming the same field.
//!
//! Deliberate differences are listed in [`DEVIATIONS`], and only there (mirrored in
//! ARCHITECTURE.md, "Config compatibility").
//!
//! This test has its own `main` (no libtest harness) so that it can set `USER` before any
//! thread exists.

use std::path::{Path, PathBuf};

use aurora_config::schema::{self, JobSelector};
use serde_json::Value;

/// Files (by path relative to `configs/`) whose result deliberately differs from Aurora 0.6,
/// with the reason.
const DEVIATIONS: &[(&str, &str)] = &[];

fn corpus_root() -> Option<PathBuf> {
    aurora_config::test_support::require(
        aurora_config::test_support::Input::Corpus,
        "aurora-bin corpus (every .aurora of the corpus through the embedded loader)",
    )
}

fn expected_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<PathBuf> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            expected_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "json") {
            out.push(p);
        }
    }
}

/// The token an error message names: a quoted name (`name 'Container' is not defined`),
/// the last word of "Unknown schema attribute X", or the unbound `{{ref}}`.
fn named_field(message: &str) -> Option<String> {
    if let Some(rest) = message.split("Unknown schema attribute ").nth(1) {
        return rest.split_whitespace().next().map(str::to_owned);
    }
    if let Some(start) = message.find("{{") {
        let end = message[start..].find("}}")?;
        return Some(message[start..start + end + 2].to_owned());
    }
    if message.starts_with("Environment name") {
        return Some("environment".to_owned());
    }
    let start = message.find('\'')?;
    let end = message[start + 1..].find('\'')?;
    Some(message[start + 1..start + 1 + end].to_owned())
}

/// Checks one expected file; `Err` explains the mismatch.
fn check(configs: &Path, expected: &Value) -> Result<(), String> {
    let file = expected["file"].as_str().ok_or("no file")?;
    let path = configs.join(file);
    let loaded = aurora_py::load_config(&path);
    if let Some(err) = expected.get("load_error") {
        let want_type = err["type"].as_str().unwrap_or_default();
        let want_msg = err["message"].as_str().unwrap_or_default();
        let e = match loaded {
            Ok(_) => return Err(format!("loaded, expected {want_type}: {want_msg}")),
            Err(e) => e,
        };
        let (kind, message) = match &e.kind {
            aurora_py::LoadErrorKind::Exception { exception, message } => {
                (exception.clone(), message.clone())
            }
            other => ("NoJobs".to_owned(), other.to_string()),
        };
        if kind != want_type {
            return Err(format!("failed with {e}, expected {want_type}: {want_msg}"));
        }
        if message != want_msg && named_field(&message) != named_field(want_msg) {
            return Err(format!("failed with {e}, expected {want_type}: {want_msg}"));
        }
        return Ok(());
    }
    let loaded = loaded.map_err(|e| format!("failed to load: {e}"))?;
    let bindings: Vec<schema::Binding> = expected["bindings"]
        .as_array()
        .map(|b| {
            b.iter()
                .filter_map(|x| x.as_str())
                .filter_map(|x| schema::parse_binding(x).ok())
                .collect()
        })
        .unwrap_or_default();
    let jobs = expected["jobs"]
        .as_array()
        .ok_or("no jobs in the expected file")?;
    for job in jobs {
        let inv = &job["client_invocation"];
        let opt = |k: &str| inv[k].as_str().map(str::to_owned);
        let selector = JobSelector {
            name: opt("jobname"),
            cluster: opt("select_cluster"),
            role: opt("select_role"),
            environment: opt("select_env"),
        };
        let outcome = schema::bind_all(&loaded.jobs, &bindings)
            .map_err(|e| e.to_string())
            .and_then(|b| schema::select_job(&b, &selector).map_err(|e| e.to_string()))
            .and_then(|j| {
                schema::evaluate_job(&j).map_err(|ps| {
                    ps.iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join("; ")
                })
            });
        let failure = job.get("client_error").or_else(|| job.get("job_error"));
        match (failure, outcome) {
            (None, Ok(ev)) => {
                if ev.raw_json != job["raw_json"] {
                    return Err(format!(
                        "raw_json differs:\n  ours:     {}\n  expected: {}",
                        ev.raw_json, job["raw_json"]
                    ));
                }
                if job.get("job_key").and_then(Value::as_str) != Some(ev.job_key.as_str()) {
                    return Err(format!(
                        "job key {} differs from {}",
                        ev.job_key, job["job_key"]
                    ));
                }
            }
            (None, Err(e)) => return Err(format!("failed: {e}")),
            (Some(f), Ok(_)) => return Err(format!("evaluated, expected failure {f}")),
            (Some(f), Err(e)) => {
                let want = f["message"].as_str().unwrap_or_default();
                match named_field(want) {
                    Some(field) if !e.contains(&field) => {
                        return Err(format!(
                            "failed with {e:?}, expected a failure naming {field}"
                        ));
                    }
                    _ => {}
                }
            }
        }
    }
    Ok(())
}

#[expect(
    unsafe_code,
    reason = "set_var runs first, before any other thread exists"
)]
fn set_user() {
    // SAFETY: nothing else runs yet; the corpus was evaluated as this user.
    unsafe {
        std::env::set_var("USER", "vagrant");
        std::env::set_var("LOGNAME", "vagrant");
    }
}

fn main() {
    set_user();
    let Some(root) = corpus_root() else {
        // Skipped and recorded: a fresh clone has no corpus beside it.
        return;
    };
    let configs = root.join("configs");
    let mut files = Vec::new();
    expected_files(&root.join("expected"), &mut files);
    let (mut matched, mut deviating, mut failed) = (0, 0, Vec::new());
    for f in &files {
        let Ok(text) = std::fs::read_to_string(f) else {
            continue;
        };
        let Ok(expected) = serde_json::from_str::<Value>(&text) else {
            continue;
        };
        let Some(name) = expected["file"].as_str() else {
            continue;
        };
        let label = match expected["bindings"].as_array() {
            Some(b) if !b.is_empty() => format!(
                "{name} -E {}",
                b.iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(" -E ")
            ),
            _ => name.to_owned(),
        };
        let deviation = DEVIATIONS.iter().find(|(p, _)| *p == name);
        match (check(&configs, &expected), deviation) {
            (Ok(()), None) => matched += 1,
            (Ok(()), Some(_)) => failed.push(format!(
                "{label}: listed as a deviation but matches; remove it"
            )),
            (Err(_), Some(_)) => deviating += 1,
            (Err(e), None) => failed.push(format!("{label}: {e}")),
        }
    }
    println!(
        "corpus: {matched}/{} evaluations match Aurora 0.6, {deviating} documented deviations, {} failures",
        files.len(),
        failed.len()
    );
    for f in &failed {
        println!("MISMATCH {f}");
    }
    if !failed.is_empty() || files.is_empty() {
        std::process::exit(1);
    }
}
