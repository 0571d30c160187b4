//! Round-trips the Aurora corpus: every expected `raw_json` (what Aurora 0.6 dumped for a job),
//! loaded into our Job schema and dumped again, must equal itself as a JSON value. Jobs that
//! Aurora accepted must also evaluate to the same executor payload, ports and job key.

use std::path::{Path, PathBuf};

use aurora_config::schema::{evaluate_job, schema};
use aurora_config::test_support::Input;
use serde_json::Value as Json;

/// The corpus, or `None` when this machine lacks it (the skip is recorded).
fn corpus_dir(test: &str) -> Option<PathBuf> {
    aurora_config::test_support::require(Input::Corpus, test)
}

fn expected_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            expected_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "json") {
            out.push(p);
        }
    }
}

struct Job {
    file: String,
    expected: Json,
}

fn jobs(corpus: &Path) -> Vec<Job> {
    let mut files = Vec::new();
    expected_files(&corpus.join("expected"), &mut files);
    let mut out = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        let doc: Json =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        for j in doc
            .get("jobs")
            .and_then(Json::as_array)
            .into_iter()
            .flatten()
        {
            if j.get("raw_json").is_some() {
                out.push(Job {
                    file: f.display().to_string(),
                    expected: j.clone(),
                });
            }
        }
    }
    out
}

#[test]
fn raw_json_round_trips() {
    let Some(corpus) = corpus_dir("aurora-config corpus::raw_json_round_trips") else {
        return;
    };
    let jobs = jobs(&corpus);
    assert!(
        jobs.len() >= 40,
        "only {} jobs with raw_json found",
        jobs.len()
    );
    let mut failures = Vec::new();
    for job in &jobs {
        let raw = &job.expected["raw_json"];
        let result = schema()
            .job
            .from_json(raw, true)
            .map_err(|e| e.to_string())
            .and_then(|v| v.to_json().map_err(|e| e.to_string()));
        match result {
            Ok(dumped) if &dumped == raw => {}
            Ok(dumped) => failures.push(format!("{}: dumped {dumped}\n  expected {raw}", job.file)),
            Err(e) => failures.push(format!("{}: {e}", job.file)),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} jobs differ:\n{}",
        failures.len(),
        jobs.len(),
        failures.join("\n")
    );
}

#[test]
fn accepted_jobs_evaluate_like_aurora() {
    let Some(corpus) = corpus_dir("aurora-config corpus::accepted_jobs_evaluate_like_aurora")
    else {
        return;
    };
    let mut failures = Vec::new();
    let mut evaluated = 0;
    for job in jobs(&corpus) {
        let exp = &job.expected;
        let loaded = match schema().job.from_json(&exp["raw_json"], true) {
            Ok(v) => v,
            Err(e) => {
                failures.push(format!("{}: {e}", job.file));
                continue;
            }
        };
        match (evaluate_job(&loaded), exp.get("job_configuration")) {
            (Ok(ev), Some(jc)) => {
                evaluated += 1;
                let data = &jc["taskConfig"]["executorConfig"]["data_json"];
                let executor_json = ev.executor_json().unwrap_or(Json::Null);
                if &executor_json != data {
                    failures.push(format!(
                        "{}: executor payload {}\n  expected {data}",
                        job.file, executor_json
                    ));
                }
                let data_text = jc["taskConfig"]["executorConfig"]["data"]
                    .as_str()
                    .unwrap_or("");
                let data_parsed: Json = serde_json::from_str(data_text).unwrap_or(Json::Null);
                let ours: Json = ev
                    .executor_data()
                    .ok()
                    .and_then(|d| serde_json::from_str(&d).ok())
                    .unwrap_or(Json::Null);
                if ours != data_parsed {
                    failures.push(format!("{}: executor data text differs", job.file));
                }
                if Json::from(ev.ports.clone()) != exp["ports"] {
                    failures.push(format!(
                        "{}: ports {:?} expected {}",
                        job.file, ev.ports, exp["ports"]
                    ));
                }
                if ev.job_key.clone() != exp["job_key"] {
                    failures.push(format!(
                        "{}: key {} expected {}",
                        job.file, ev.job_key, exp["job_key"]
                    ));
                }
            }
            (Err(problems), Some(_)) => {
                failures.push(format!("{}: rejected: {problems:?}", job.file));
            }
            (Ok(_), None) => {
                failures.push(format!("{}: accepted, but Aurora rejected it", job.file));
            }
            (Err(problems), None) => {
                // Aurora rejected these for unbound variables; we must name the same ones.
                for r in exp["unbound_refs"].as_array().into_iter().flatten() {
                    let r = r.as_str().unwrap_or("");
                    if r.starts_with("{{thermos.") || r.starts_with("{{mesos.") {
                        continue;
                    }
                    if !problems
                        .iter()
                        .any(|p| p.message.contains("unbound variables") && p.message.contains(r))
                    {
                        failures.push(format!("{}: {r} not reported in {problems:?}", job.file));
                    }
                }
            }
        }
    }
    assert!(evaluated >= 30, "only {evaluated} jobs evaluated");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
