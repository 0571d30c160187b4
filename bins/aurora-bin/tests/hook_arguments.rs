//! `aurora kill` with config hooks written every way the spec and Aurora 0.6 allow (`shards`,
//! `instances`, positionally, `**kw`, neither): each gets the instances under its own name,
//! a `pre_` hook returning False stops the kill, and `err_` hooks get the failure. The
//! scheduler is a loopback port nobody listens on, so the kill itself fails after the hooks.

use std::path::Path;
use std::process::{Command, Output};

const CONFIG: &str = r#"
import os

def log(line):
  with open(os.path.join(HERE, 'hooks.log'), 'a') as f:
    f.write(line + '\n')

# Verbatim signature from the spec's hooks protocol example.
class SpecStyle(object):
  def pre_kill_job(self, job_key, shards=None):
    log('spec %s %s' % (job_key, shards))
    return os.path.exists(os.path.join(HERE, 'allow'))

class Aurora06Style(object):
  def pre_kill_job(self, job_key, instances=None):
    log('0.6 %s %s' % (job_key, instances))
    return True

class Positional(object):
  def pre_kill_job(self, job_key, shards, /):
    log('positional %s' % (shards,))
    return True

class Everything(object):
  def pre_kill_job(self, job_key, **kw):
    log('kw %s' % sorted(kw))
    return True

class Neither(object):
  def pre_kill_job(self, job_key):
    log('neither %s' % job_key)
    return True
  def err_kill_job(self, exc, job_key, shards=None):
    log('err %s %s %s' % (job_key, shards, 'cannot reach the scheduler' in str(exc)))

task = SequentialTask(
  processes = [Process(name = 'hello', cmdline = 'echo hello')],
  resources = Resources(cpu = 0.1, ram = 16 * MB, disk = 16 * MB))

jobs = [Job(cluster = 'local', role = 'www-data', environment = 'devel', name = 'hooked',
            task = task, enable_hooks = True)]
hooks = [SpecStyle(), Aurora06Style(), Positional(), Everything(), Neither()]
"#;

fn kill(dir: &Path) -> Output {
    let config = dir.join("hooked.aurora");
    Command::new(env!("CARGO_BIN_EXE_aurora"))
        .args(["kill", "local/www-data/devel/hooked"])
        .arg(&config)
        .args(["--shards", "0,2", "--no-wait"])
        .env("AURORA_CONFIG_ROOT", dir.join("clusters.json"))
        .env("HOME", dir)
        .env("USER", "vagrant")
        .output()
        .expect("run aurora")
}

fn take_log(dir: &Path) -> String {
    let path = dir.join("hooks.log");
    let log = std::fs::read_to_string(&path).unwrap_or_default();
    let _ = std::fs::remove_file(&path);
    log
}

#[test]
fn kill_hooks_get_the_instances_under_the_name_they_declare() {
    let dir = tempfile::tempdir().expect("temp dir");
    let dir = dir.path();
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        listener.local_addr().expect("local addr").port()
    };
    std::fs::write(
        dir.join("clusters.json"),
        format!(r#"[{{"name": "local", "scheduler_uri": "http://127.0.0.1:{port}"}}]"#),
    )
    .expect("write clusters");
    let config = CONFIG.replacen(
        "import os\n",
        &format!("import os\nHERE = {:?}\n", dir.display().to_string()),
        1,
    );
    std::fs::write(dir.join("hooked.aurora"), config).expect("write config");
    let key = "local/www-data/devel/hooked";

    // The spec-style hook says no: the kill stops (exit 5) after every pre hook has run.
    let out = kill(dir);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(5), "{stderr}");
    assert!(stderr.contains("SpecStyle"), "{stderr}");
    assert!(!stderr.contains("TypeError"), "{stderr}");
    assert_eq!(
        take_log(dir),
        format!(
            "spec {key} [0, 2]\n0.6 {key} [0, 2]\npositional [0, 2]\n\
             kw ['config', 'instances', 'lock', 'shards']\nneither {key}\n"
        )
    );

    // Allowed: the kill goes to the (absent) scheduler and the err hook gets the failure.
    std::fs::write(dir.join("allow"), "").expect("write allow");
    let out = kill(dir);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(!stderr.contains("TypeError"), "{stderr}");
    let log = take_log(dir);
    assert!(log.ends_with(&format!("err {key} [0, 2] True\n")), "{log}");
}
