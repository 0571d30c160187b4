//! Loading a large `.aurora` file, our engine against pystachio 0.8.10.
//!
//! The file defines 400 jobs (100 per environment, 4 environments) built from templates, a
//! struct profile and an include. Timed: the whole process, interpreter start included, each
//! side's best of the same number of runs, the two sides' runs alternating so that a burst of
//! other work on the machine falls on both alike. Neither side keeps state between runs: ours
//! runs the `aurora` package from bytecode compiled when the binary was built, as the anchor
//! runs pystachio from the `.pyc` files written when it was installed.
//! - ours: `aurora validate FILE` (the embedded Python loader on the Rust engine: load,
//!   bind, validate and convert every job);
//! - the anchor, run beside it: the real pystachio 0.8.10 (`pystachio_load.py`, the Python
//!   from `PYSTACHIO_PYTHON`, default `python3`) doing the same work, on schema classes
//!   generated from this project's schema ([`aurora_config::schema::pystachio_source`]).
//!
//! Prints both times and `BENCH aurora_load_ratio <their time / ours> ratio`.
//!
//! Differential: both sides must print the same line per job (key and instance count), and for
//! a sample of jobs `aurora inspect --write-json` must print the same interpolated job as
//! pystachio; any difference fails the bench (exit status 1).

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const COMMON: &str = r#"
class Profile(Struct):
  name = Required(String)
  package = Default(String, '{{name}}-{{version}}')
  version = Default(String, 'live')
  instances = Default(Integer, 2)

install = Process(name = 'install', cmdline = 'fetch {{profile.package}} --role {{role}}')
monitor = Process(name = 'monitor', cmdline = 'watch {{profile.name}} every {{interval}}s')
RESOURCES = Resources(cpu = 0.5, ram = 256 * MB, disk = 512 * MB)

def server(i):
  return Process(
    name = 'server',
    cmdline = './{{profile.name}} --port {{thermos.ports[http]}} --shard {{mesos.instance}} '
              '--env {{environment}} --n %d' % i)
"#;

const MAIN: &str = r#"
include('common.aurora')

jobs = []
for env in ['prod', 'devel', 'test', 'staging1']:
  for i in range(COUNT):
    profile = Profile(name = 'svc%d' % i, version = 'v{{build}}')
    task = SequentialTask(
      name = '{{profile.name}}-task',
      processes = [install, server(i), monitor],
      resources = RESOURCES)
    jobs.append(Service(
      cluster = 'local', role = 'team%d' % (i % 7), environment = env,
      name = '{{profile.name}}', instances = '{{profile.instances}}', task = task,
      update_config = UpdateConfig(batch_size = 2, watch_secs = 60),
      health_check_config = HealthCheckConfig(initial_interval_secs = 20),
      announce = Announcer(primary_port = 'http'),
    ).bind(profile = profile, build = i, interval = 5))
"#;

/// Jobs per environment (four environments).
const COUNT: usize = 100;
/// Runs per side: the best run is the one least disturbed by other work on the machine.
const RUNS: usize = 5;

/// Runs a command once: its wall time and output. `Err` says which command failed and how.
fn timed(mut c: Command) -> Result<(Duration, String), String> {
    let start = Instant::now();
    let out = c.output().map_err(|e| format!("cannot run {c:?}: {e}"))?;
    let elapsed = start.elapsed();
    if !out.status.success() {
        return Err(format!(
            "{c:?} failed ({}):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok((elapsed, String::from_utf8_lossy(&out.stdout).into_owned()))
}

/// Job keys whose interpolated JSON both sides must agree on: the first, a middle and the
/// last job of each environment.
fn sample_keys() -> Vec<String> {
    let mut keys = Vec::new();
    for env in ["prod", "devel", "test", "staging1"] {
        for i in [0, COUNT / 2 + 1, COUNT - 1] {
            keys.push(format!("local/team{}/{env}/svc{i}", i % 7));
        }
    }
    keys
}

fn run() -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(|e| format!("temporary directory: {e}"))?;
    let write = |name: &str, text: &str| {
        std::fs::write(dir.path().join(name), text).map_err(|e| format!("write {name}: {e}"))
    };
    write("common.aurora", COMMON)?;
    write("big.aurora", &MAIN.replace("COUNT", &COUNT.to_string()))?;
    let schema = aurora_config::schema::pystachio_source(aurora_config::schema::schema())
        .map_err(|e| format!("render the schema as Python: {e}"))?;
    write("aurora_schema.py", &schema)?;
    let config = dir.path().join("big.aurora");
    let schema = dir.path().join("aurora_schema.py");

    // Cargo builds the package's binary, up to date, for its benches.
    let aurora = Path::new(env!("CARGO_BIN_EXE_aurora"));
    let python = std::env::var("PYSTACHIO_PYTHON").unwrap_or_else(|_| "python3".to_owned());
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/pystachio_load.py");
    let pystachio = |extra: &[String]| {
        let mut c = Command::new(&python);
        c.arg(&script).arg(&schema).arg(&config).args(extra);
        c
    };

    // Both sides must answer alike before their times mean anything.
    let keys = sample_keys();
    let mut json_args = vec!["--json".to_owned()];
    json_args.extend(keys.iter().cloned());
    let (_, theirs) = timed(pystachio(&json_args))
        .map_err(|e| format!("{e}\nset PYSTACHIO_PYTHON to a Python with pystachio 0.8.10"))?;
    let theirs: serde_json::Value = serde_json::from_str(&theirs)
        .map_err(|e| format!("the pystachio side printed no JSON ({e}): {theirs}"))?;
    for key in &keys {
        let mut inspect = Command::new(aurora);
        inspect
            .args(["inspect", key.as_str()])
            .arg(&config)
            .arg("--write-json")
            .env("USER", "bench");
        let (_, ours) = timed(inspect)?;
        let ours: serde_json::Value = serde_json::from_str(&ours)
            .map_err(|e| format!("aurora inspect --write-json printed no JSON ({e}): {ours}"))?;
        if ours != theirs[key.as_str()] {
            return Err(format!(
                "the two sides differ on job {key}:\n ours (aurora inspect) {ours}\n theirs \
                 (pystachio)     {}",
                theirs[key.as_str()]
            ));
        }
    }

    let validate = || {
        let mut c = Command::new(aurora);
        c.arg("validate").arg(&config).env("USER", "bench");
        c
    };
    let (mut ours, mut theirs) = (Duration::MAX, Duration::MAX);
    let (mut our_out, mut their_out) = (String::new(), String::new());
    for _ in 0..RUNS {
        let (time, out) = timed(validate())?;
        (ours, our_out) = (ours.min(time), out);
        let (time, out) = timed(pystachio(&[]))?;
        (theirs, their_out) = (theirs.min(time), out);
    }
    let jobs = 4 * COUNT;
    if our_out.lines().count() != jobs || our_out != their_out {
        return Err(format!(
            "both sides must accept the same {jobs} jobs:\n--- aurora validate\n{our_out}\n\
             --- pystachio\n{their_out}"
        ));
    }
    println!(
        "aurora validate: {:.1} ms, pystachio 0.8.10: {:.1} ms (each the best of {RUNS} \
         alternating runs) for {jobs} jobs",
        ours.as_secs_f64() * 1e3,
        theirs.as_secs_f64() * 1e3
    );
    println!("BENCH aurora_load_ms {:.1} ms", ours.as_secs_f64() * 1e3);
    println!(
        "BENCH pystachio_load_ms {:.1} ms",
        theirs.as_secs_f64() * 1e3
    );
    println!(
        "BENCH aurora_load_ratio {:.1} ratio",
        theirs.as_secs_f64() / ours.as_secs_f64()
    );
    Ok(())
}

fn main() -> std::process::ExitCode {
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("FAILED: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
