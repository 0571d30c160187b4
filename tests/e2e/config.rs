//! `.aurora` configs: a job created from a Python config file, with hooks that record
//! `post_create_job` and stop a kill with `pre_kill_job` returning False.

use std::time::Duration;

use tests::{LocalCluster, wait_for};

const CONFIG: &str = r#"
import os

class Recorder(object):
  def post_create_job(self, result, config, lock):
    with open(os.path.join(HERE, 'post_create_job.log'), 'a') as f:
      f.write('%s %s %s\n' % (config.job_key(), config.raw().name(), lock))

class KillGuard(object):
  def pre_kill_job(self, job_key, instances=None, lock=None, config=None):
    with open(os.path.join(HERE, 'pre_kill_job.log'), 'a') as f:
      f.write('refused %s\n' % job_key)
    return os.path.exists(os.path.join(HERE, 'allow-kill'))

class Generic(object):
  def generic_hook(self, hook_config, event, method_name, result_or_err, args, kw):
    config, job_key = hook_config
    with open(os.path.join(HERE, 'generic.log'), 'a') as f:
      f.write('%s %s %s %d %s\n' % (event, method_name, job_key, len(args), sorted(kw)))
    return True

include('profile.aurora')

hello = Process(name = 'hello', cmdline = 'echo {{greeting}} from {{profile.name}}; sleep 600')
task = SequentialTask(
  processes = [hello],
  resources = Resources(cpu = 0.1, ram = 16 * MB, disk = 16 * MB))

jobs = [Service(
  cluster = 'local', role = 'www-data', environment = 'devel', name = 'hooked',
  task = task, enable_hooks = True).bind(profile = PROFILE)]
hooks = [Recorder(), KillGuard(), Generic()]
"#;

#[test]
fn aurora_configs_create_jobs_and_run_their_hooks() {
    let mut cluster = LocalCluster::start();
    cluster.start_executor("host1", &[]);
    let dir = cluster.dir.path().to_owned();
    cluster.write(
        "profile.aurora",
        &format!(
            "HERE = {dir:?}\nclass Profile(Struct):\n  name = Default(String, 'the profile')\nPROFILE = Profile()\n",
            dir = dir.display().to_string()
        ),
    );
    let config = cluster.write("hooked.aurora", CONFIG);
    let config = config.to_str().unwrap();
    let key = "local/www-data/devel/hooked";

    // inspect shows the interpolated job without a cluster round trip.
    let inspected =
        cluster.aurora_ok(&["--write-json", "inspect", key, config, "-E", "greeting=hi"]);
    assert!(
        inspected.contains("echo hi from the profile; sleep 600"),
        "{inspected}"
    );

    cluster.aurora_ok(&[
        "create",
        key,
        config,
        "-E",
        "greeting=hi",
        "--wait_until",
        "RUNNING",
        "--wait-timeout-secs",
        "60",
    ]);
    assert_eq!(
        cluster.read("post_create_job.log"),
        format!("{key} hooked None\n")
    );
    let generic = cluster.read("generic.log");
    assert!(
        generic.contains(&format!("pre create_job {key} 2 []")),
        "{generic}"
    );
    assert!(
        generic.contains(&format!("post create_job {key} 2 []")),
        "{generic}"
    );
    let status = cluster.aurora_ok(&["status", key]);
    assert!(status.contains("RUNNING"), "{status}");

    // pre_kill_job returns False: the kill is refused (exit 5) and the task keeps running.
    let out = cluster.aurora(&["kill", key, config, "-E", "greeting=hi"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(5), "{stderr}");
    assert!(stderr.contains("KillGuard"), "{stderr}");
    assert_eq!(cluster.read("pre_kill_job.log"), format!("refused {key}\n"));
    let tasks = cluster.tasks(key);
    assert!(tasks.iter().all(|t| t["status"] == "RUNNING"), "{tasks:?}");

    // Without the config (so without its hooks) the kill goes through.
    cluster.aurora_ok(&["kill", key, "--wait-timeout-secs", "60"]);
    wait_for("the task to be killed", Duration::from_secs(30), || {
        cluster
            .tasks(key)
            .iter()
            .all(|t| t["status"] == "KILLED")
            .then_some(())
    });
}

#[test]
fn broken_aurora_configs_name_file_and_line() {
    let cluster = LocalCluster::start();
    let included = cluster.write("bad_include.aurora", "x = 1\ny = undefined_name\n");
    let config = cluster.write("main.aurora", "include('bad_include.aurora')\njobs = []\n");
    let out = cluster.aurora(&["create", "local/www-data/devel/x", config.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    let at = format!(
        "{}:2: NameError: name 'undefined_name' is not defined",
        included.display()
    );
    assert!(stderr.contains(&at), "{stderr}");

    let empty = cluster.write("empty.aurora", "x = Process(name = 'a', cmdline = 'b')\n");
    let out = cluster.aurora(&["create", "local/www-data/devel/x", empty.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("No job defined in this config!"),
        "{stderr}"
    );
}
