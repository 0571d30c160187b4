//! Builds, binds, interpolates and dumps a Job with a Task of 10 Processes and 5 bound
//! variables, and checks it; then runs the same work on pystachio 0.8.10
//! (`pystachio_bench.py`, interpreter from `PYSTACHIO_PYTHON`, default `python3`) and prints
//! `BENCH pystachio_dump_ratio <x> ratio` and `BENCH pystachio_check_ratio <x> ratio`
//! (their time over ours) with the times per job.
//!
//! Diagnostics: `BENCH_BREAKDOWN=1` also prints build / interpolate / dump-of-interpolated
//! times; `BENCH_PROFILE_DUMP`, `BENCH_PROFILE_WRITE` or `BENCH_PROFILE_INTERPOLATE` just loop
//! that one operation (for `perf record`).

use std::hint::black_box;
use std::process::Command;
use std::time::{Duration, Instant};

use aurora_config::pystachio::{Raw, Value};
use aurora_config::schema::{GB, schema};

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

fn main() {
    // `cargo bench` passes `--bench`; a filter argument other than ours skips the run.
    if std::env::args()
        .skip(1)
        .any(|a| !a.starts_with('-') && !"pystachio".contains(a.as_str()))
    {
        return;
    }
    let job = build();
    if std::env::var_os("BENCH_PROFILE_DUMP").is_some() {
        for _ in 0..100_000 {
            black_box(build().json_dumps().expect("dumps"));
        }
        return;
    }
    if std::env::var_os("BENCH_PROFILE_WRITE").is_some() {
        for _ in 0..300_000 {
            black_box(job.json_dumps().expect("dumps"));
        }
        return;
    }
    if std::env::var_os("BENCH_PROFILE_INTERPOLATE").is_some() {
        for _ in 0..200_000 {
            black_box(job.interpolate().expect("interpolates"));
        }
        return;
    }
    assert!(
        job.check().expect("check runs").ok(),
        "the bench job type-checks"
    );
    let ours_json: serde_json::Value =
        serde_json::from_str(&job.json_dumps().expect("dumps")).expect("json");

    let dump_ms = per_job_ms(|| {
        black_box(build().json_dumps().expect("dumps"));
    });
    let check_ms = per_job_ms(|| {
        black_box(job.check().expect("check runs"));
    });
    if std::env::var_os("BENCH_BREAKDOWN").is_some() {
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
        println!("breakdown: build {b:.6} ms, interpolate {i:.6} ms, write {w:.6} ms");
    }
    println!("BENCH pystachio_rust_dump_ms {dump_ms:.6} ms");
    println!("BENCH pystachio_rust_check_ms {check_ms:.6} ms");

    let python = std::env::var("PYSTACHIO_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/pystachio_bench.py");
    let out = match Command::new(&python).arg(script).output() {
        Ok(o) if o.status.success() => o,
        Ok(o) => {
            eprintln!(
                "pystachio side failed ({python} {script}); set PYSTACHIO_PYTHON to a Python with \
                 pystachio 0.8.10:\n{}",
                String::from_utf8_lossy(&o.stderr)
            );
            std::process::exit(1);
        }
        Err(e) => {
            eprintln!(
                "cannot run {python}: {e}; set PYSTACHIO_PYTHON to a Python with pystachio 0.8.10"
            );
            std::process::exit(1);
        }
    };
    let theirs: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("the Python side prints one JSON line");
    let py_dump = theirs["dump_ms"].as_f64().unwrap_or(f64::NAN);
    let py_check = theirs["check_ms"].as_f64().unwrap_or(f64::NAN);
    if theirs["json"] != ours_json {
        eprintln!(
            "warning: the two sides dumped different JSON:\n ours   {ours_json}\n theirs {}",
            theirs["json"]
        );
    }
    println!("BENCH pystachio_python_dump_ms {py_dump:.4} ms");
    println!("BENCH pystachio_python_check_ms {py_check:.4} ms");
    println!("BENCH pystachio_dump_ratio {:.1} ratio", py_dump / dump_ms);
    println!(
        "BENCH pystachio_check_ratio {:.1} ratio",
        py_check / check_ms
    );
}
