//! Benchmark: load, validate and convert a large `.aurora` file (hundreds of jobs built from
//! templates, a struct profile and an include) with `aurora validate` (the embedded loader
//! on the Rust engine) and with the real pystachio 0.8.10 plus an equivalent Python schema
//! (`pystachio_load.py`, beside this file). Both are timed as whole processes, interpreter
//! start included. Prints `BENCH aurora_load_ratio <their time / ours> ratio`.
//!
//! The Python with pystachio 0.8.10 comes from `$PYSTACHIO_PYTHON` (set by `scripts/test`).

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
const RUNS: usize = 3;

fn best_of(runs: usize, mut command: impl FnMut() -> Command) -> (Duration, String) {
    let mut best = Duration::MAX;
    let mut stdout = String::new();
    for _ in 0..runs {
        let start = Instant::now();
        let out = command().output().expect("run the benchmarked command");
        let elapsed = start.elapsed();
        assert!(
            out.status.success(),
            "benchmarked command failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        best = best.min(elapsed);
        stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    }
    (best, stdout)
}

fn main() {
    let dir = tempfile::tempdir().expect("temporary directory");
    std::fs::write(dir.path().join("common.aurora"), COMMON).expect("write common.aurora");
    let main = MAIN.replace("COUNT", &COUNT.to_string());
    let config = dir.path().join("big.aurora");
    std::fs::write(&config, main).expect("write big.aurora");

    let exe = std::env::current_exe().expect("bench path");
    let aurora = exe
        .parent()
        .and_then(Path::parent)
        .map(|d| d.join("aurora"))
        .filter(|p| p.is_file())
        .expect("build the aurora binary first (cargo build -p aurora-bin --release)");
    let python = std::env::var("PYSTACHIO_PYTHON").unwrap_or_else(|_| "python3".to_owned());
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/pystachio_load.py");

    let (ours, our_out) = best_of(RUNS, || {
        let mut c = Command::new(&aurora);
        c.arg("validate").arg(&config).env("USER", "bench");
        c
    });
    let (theirs, their_out) = best_of(RUNS, || {
        let mut c = Command::new(&python);
        c.arg(&script).arg(&config);
        c
    });
    let jobs = 4 * COUNT;
    assert_eq!(our_out.lines().count(), jobs, "aurora validate: {our_out}");
    assert_eq!(their_out.lines().count(), jobs, "pystachio: {their_out}");
    assert_eq!(our_out, their_out, "both sides must accept the same jobs");
    println!(
        "aurora validate: {:.1} ms, pystachio 0.8.10: {:.1} ms for {jobs} jobs (best of {RUNS})",
        ours.as_secs_f64() * 1e3,
        theirs.as_secs_f64() * 1e3
    );
    println!(
        "BENCH aurora_load_ratio {:.1} ratio",
        theirs.as_secs_f64() / ours.as_secs_f64()
    );
}
