//! Pystachio engine against pystachio 0.8.10 on one job: a `MesosJob` whose `Task` has 10
//! `Process`es, with templates over 5 bound variables, its own fields and `{{thermos.ports[..]}}`.
//!
//! Timed, per job, on each side (best mean over ~50 ms batches during 2 s, as alike as the two
//! languages allow; each side is timed twice, the two sides alternating, and its better window
//! kept):
//! - dump: build the job, bind it, interpolate and dump it as JSON (`build().json_dumps()`);
//! - check: type-check the job (`check()`, which interpolates every field).
//!
//! Each in two states:
//! - warm: what a long-lived process sees. Every iteration builds fresh values for dump, but
//!   check reuses one already checked value, and the engine's template cache (and pystachio's
//!   own `lru_cache`s on references) stay filled across iterations.
//! - cold: what a process loading one config sees. Every iteration clears those caches and
//!   builds a fresh job; cold check is build + check. Only the schema's types (pystachio's
//!   classes) and their default values are built once, on both sides.
//!
//! The anchor runs in the same process run: pystachio 0.8.10 on the same job
//! (`pystachio_bench.py` beside this file, the Python from `PYSTACHIO_PYTHON`, default
//! `python3`), with the schema classes generated from this crate's schema
//! ([`aurora_config::schema::pystachio_source`]). Prints the times per job and
//! `BENCH pystachio_{dump,check}_ratio_{warm,cold} <their time / ours> ratio`.
//!
//! Differential: before timing, both sides dump the bound job, its interpolation, its unbound
//! references and its check result; any difference fails the bench (exit status 1).
//!
//! Diagnostics: `BENCH_BREAKDOWN=1` also prints build / interpolate / dump-of-interpolated
//! times and that of `evaluate_job` (what `aurora` does to each job it loads);
//! `BENCH_PROFILE_COLD` (`=dump`, `=check` or both), `BENCH_PROFILE_EVALUATE`, `BENCH_PROFILE_DUMP`, `BENCH_PROFILE_WRITE` or
//! `BENCH_PROFILE_INTERPOLATE` just loop that one operation (for `perf record`).

use std::hint::black_box;
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use aurora_config::pystachio::{Raw, Value, clear_template_cache};
use aurora_config::schema::{GB, pystachio_source, schema};
use serde_json::{Value as Json, json};

fn build() -> Value {
    let sc = schema();
    let processes: Vec<Raw> = (0..10)
        .map(|i| {
            sc.process
                .new_struct([
                    ("name", Raw::str(format!("proc{i}"))),
                    (
                        "cmdline",
                        Raw::str(format!(
                            "run --x={{{{var{}}}}} --role={{{{role}}}} --me={{{{name}}}} \
                             --port={{{{thermos.ports[http]}}}}",
                            i % 4
                        )),
                    ),
                ])
                .map(Raw::Value)
        })
        .collect::<Result<_, _>>()
        .expect("processes build");
    let resources = sc
        .resources
        .new_struct([
            ("cpu", Raw::Float(1.0)),
            ("ram", Raw::Int(GB)),
            ("disk", Raw::Int(GB)),
        ])
        .expect("resources build");
    let task = sc
        .task
        .new_struct([
            ("name", Raw::str("bench")),
            ("processes", Raw::List(processes)),
            ("resources", Raw::Value(resources)),
        ])
        .expect("task builds");
    let job = sc
        .job
        .new_struct([
            ("role", Raw::str("{{user}}")),
            ("cluster", Raw::str("devcluster")),
            ("environment", Raw::str("prod")),
            ("task", Raw::Value(task)),
        ])
        .expect("job builds");
    job.bind_pairs([
        ("var0", "a"),
        ("var1", "b"),
        ("var2", "c"),
        ("var3", "d"),
        ("user", "www-data"),
    ])
    .expect("bindings parse")
}

/// Milliseconds per call: the best mean over batches of ~50 ms during about 2 s (the best
/// batch is the least disturbed by other work on the machine; the Python side measures alike).
fn per_job_ms(mut f: impl FnMut()) -> f64 {
    let probe = Instant::now();
    for _ in 0..50 {
        f();
    }
    let per_call = probe.elapsed().as_secs_f64() / 50.0;
    let batch = ((0.05 / per_call.max(1e-9)) as u64).max(1);
    let start = Instant::now();
    let mut best = f64::INFINITY;
    while start.elapsed() < Duration::from_secs(2) {
        let t = Instant::now();
        for _ in 0..batch {
            f();
        }
        best = best.min(t.elapsed().as_secs_f64() * 1000.0 / batch as f64);
    }
    best
}

/// Our milliseconds per job: dump warm, check warm, dump cold, check cold.
fn measure(job: &Value) -> [f64; 4] {
    let dump_warm = per_job_ms(|| {
        black_box(build().json_dumps().expect("dumps"));
    });
    let check_warm = per_job_ms(|| {
        black_box(job.check().expect("check runs"));
    });
    let dump_cold = per_job_ms(|| {
        clear_template_cache();
        black_box(build().json_dumps().expect("dumps"));
    });
    let check_cold = per_job_ms(|| {
        clear_template_cache();
        black_box(build().check().expect("check runs"));
    });
    [dump_warm, check_warm, dump_cold, check_cold]
}

/// What both sides must agree on, in the shape `pystachio_bench.py` prints it.
fn facts(job: &Value) -> Json {
    let (interpolated, unbound) = job.interpolate().expect("interpolates");
    let mut unbound: Vec<String> = unbound.iter().map(|r| r.address()).collect();
    unbound.sort();
    let check = job.check().expect("check runs");
    json!({
        "json": serde_json::from_str::<Json>(&job.json_dumps().expect("dumps")).expect("json"),
        "interpolated": serde_json::from_str::<Json>(
            &interpolated.json_dumps().expect("dumps")
        ).expect("json"),
        "unbound": unbound,
        "check_ok": check.ok(),
        "check_message": check.message(),
    })
}

/// Runs the pystachio side; `Err` says why it could not.
fn run_python(schema_dir: &std::path::Path) -> Result<Json, String> {
    let python = std::env::var("PYSTACHIO_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/pystachio_bench.py");
    let hint = "set PYSTACHIO_PYTHON to a Python with pystachio 0.8.10 \
                (python3 -m venv ENV && ENV/bin/pip install pystachio==0.8.10)";
    let out = Command::new(&python)
        .arg(script)
        .arg(schema_dir)
        .output()
        .map_err(|e| format!("cannot run {python}: {e}; {hint}"))?;
    if !out.status.success() {
        return Err(format!(
            "the pystachio side failed ({python} {script}); {hint}:\n{}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    serde_json::from_slice(&out.stdout).map_err(|e| {
        format!(
            "the pystachio side printed no JSON line ({e}):\n{}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

fn main() -> ExitCode {
    // `cargo bench` passes `--bench`; a filter argument other than ours skips the run.
    if std::env::args()
        .skip(1)
        .any(|a| !a.starts_with('-') && !"pystachio".contains(a.as_str()))
    {
        return ExitCode::SUCCESS;
    }
    let job = build();
    let profile = |name: &str| std::env::var_os(name).is_some();
    if let Some(what) = std::env::var_os("BENCH_PROFILE_COLD") {
        // `dump` or `check` loops that one; anything else loops both.
        for _ in 0..100_000 {
            if what != "dump" {
                clear_template_cache();
                black_box(build().check().expect("check runs"));
            }
            if what != "check" {
                clear_template_cache();
                black_box(build().json_dumps().expect("dumps"));
            }
        }
        return ExitCode::SUCCESS;
    }
    if profile("BENCH_PROFILE_EVALUATE") {
        for _ in 0..30_000 {
            black_box(aurora_config::schema::evaluate_job(&job).expect("the job is valid"));
        }
        return ExitCode::SUCCESS;
    }
    if profile("BENCH_PROFILE_DUMP") {
        for _ in 0..100_000 {
            black_box(build().json_dumps().expect("dumps"));
        }
        return ExitCode::SUCCESS;
    }
    if profile("BENCH_PROFILE_WRITE") {
        for _ in 0..300_000 {
            black_box(job.json_dumps().expect("dumps"));
        }
        return ExitCode::SUCCESS;
    }
    if profile("BENCH_PROFILE_INTERPOLATE") {
        for _ in 0..200_000 {
            black_box(job.interpolate().expect("interpolates"));
        }
        return ExitCode::SUCCESS;
    }

    let first = measure(&job);
    // The pystachio side: its schema is generated from ours, and its answers must be ours
    // before any figure means anything.
    let dir = tempfile::tempdir().expect("a temporary directory");
    let source = pystachio_source(schema()).expect("the schema renders as Python");
    std::fs::write(dir.path().join("aurora_schema.py"), source).expect("write aurora_schema.py");
    let theirs = match run_python(dir.path()) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let ours = facts(&job);
    let mut differ = false;
    for key in [
        "json",
        "interpolated",
        "unbound",
        "check_ok",
        "check_message",
    ] {
        if ours[key] != theirs[key] {
            differ = true;
            eprintln!(
                "the two sides differ on {key}:\n ours (Rust)        {}\n theirs (pystachio) {}",
                ours[key], theirs[key]
            );
        }
    }
    if differ {
        eprintln!(
            "FAILED: the Rust engine and pystachio 0.8.10 disagree on the bench job; the \
             figures would compare different work"
        );
        return ExitCode::FAILURE;
    }
    if ours["check_ok"] != json!(true) {
        eprintln!(
            "FAILED: the bench job does not type-check: {}",
            ours["check_message"]
        );
        return ExitCode::FAILURE;
    }

    // Both sides again, alternating: each figure is the better of two windows some seconds
    // apart on each side, so one burst of other work on the machine decides neither, and
    // neither side gets more tries than the other.
    let second = measure(&job);
    let [dump_warm, check_warm, dump_cold, check_cold] =
        std::array::from_fn(|i| first[i].min(second[i]));
    let again = match run_python(dir.path()) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    if profile("BENCH_BREAKDOWN") {
        let b = per_job_ms(|| {
            black_box(build());
        });
        let i = per_job_ms(|| {
            black_box(job.interpolate().expect("interpolates"));
        });
        let (iv, _) = job.interpolate().expect("interpolates");
        let w = per_job_ms(|| {
            black_box(iv.json_dumps().expect("dumps"));
        });
        let e = per_job_ms(|| {
            black_box(aurora_config::schema::evaluate_job(&job).expect("the job is valid"));
        });
        println!(
            "breakdown: build {b:.6} ms, interpolate {i:.6} ms, write {w:.6} ms, \
             evaluate_job {e:.6} ms"
        );
    }
    let py = |key: &str| {
        let ms = |run: &Json| run[key].as_f64().unwrap_or(f64::NAN);
        ms(&theirs).min(ms(&again))
    };
    let rows = [
        ("dump", "warm", dump_warm, py("dump_warm_ms")),
        ("check", "warm", check_warm, py("check_warm_ms")),
        ("dump", "cold", dump_cold, py("dump_cold_ms")),
        ("check", "cold", check_cold, py("check_cold_ms")),
    ];
    for (what, state, ours, theirs) in rows {
        println!("BENCH pystachio_rust_{what}_ms_{state} {ours:.6} ms");
        println!("BENCH pystachio_python_{what}_ms_{state} {theirs:.4} ms");
    }
    for (what, state, ours, theirs) in rows {
        println!(
            "BENCH pystachio_{what}_ratio_{state} {:.1} ratio",
            theirs / ours
        );
    }
    ExitCode::SUCCESS
}
