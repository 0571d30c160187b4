//! `aurora diff` against a running job: no differences, a changed cmdline, and a renamed job
//! compared with its old key.

use std::process::{Command, Output};

use serde_json::Value;
use tests::{LocalCluster, binary, job_json};

/// Runs `aurora diff` with an explicit `DIFF_VIEWER`.
fn diff(cluster: &LocalCluster, args: &[&str]) -> Output {
    Command::new(binary("aurora"))
        .arg("diff")
        .args(args)
        .env(
            "AURORA_CONFIG_ROOT",
            cluster.dir.path().join("clusters.json"),
        )
        .env("HOME", cluster.dir.path().join("home"))
        .env("USER", "e2e")
        .env("DIFF_VIEWER", "diff -u")
        .output()
        .expect("run aurora diff")
}

/// A two-instance service job named `name` running `cmdline`.
fn config(cluster: &LocalCluster, file: &str, name: &str, cmdline: &str) -> String {
    let mut job: Value =
        serde_json::from_str(&job_json(name, true, &[("serve", cmdline)])).expect("job json");
    job["instances"] = Value::from(2);
    let path = cluster.write(file, &job.to_string());
    path.to_str().expect("utf-8 path").to_owned()
}

/// The lines a unified diff changed, without its file headers.
fn changed_lines(stdout: &str) -> Vec<&str> {
    stdout
        .lines()
        .filter(|l| (l.starts_with('-') || l.starts_with('+')) && !l.starts_with("---"))
        .filter(|l| !l.starts_with("+++"))
        .collect()
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn diff_shows_changed_fields_and_renames() {
    let mut cluster = LocalCluster::start();
    // Services get one instance per host by default.
    cluster.start_executor("host1", &[]);
    cluster.start_executor("host2", &[]);
    let key = "local/www-data/devel/web";
    let original = config(&cluster, "web.json", "web", "sleep 600");
    cluster.aurora_ok(&[
        "create",
        key,
        &original,
        "-j",
        "--wait_until",
        "RUNNING",
        "--wait-timeout-secs",
        "60",
    ]);

    // The config the job was created from: nothing would change.
    let out = diff(&cluster, &[key, &original, "-j"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("Instances 0-1: no differences"), "{stdout}");
    assert!(stdout.contains("No differences"), "{stdout}");

    // A changed cmdline: both instances in one group, and the diff shows only that field.
    let changed = config(&cluster, "web2.json", "web", "sleep 700");
    let out = diff(&cluster, &[key, &changed, "-j"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(stdout.contains("Task diff for instances 0-1"), "{stdout}");
    let lines = changed_lines(&stdout);
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with('-') && l.contains("\"cmdline\": \"sleep 600\"")),
        "{stdout}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with('+') && l.contains("\"cmdline\": \"sleep 700\"")),
        "{stdout}"
    );
    assert!(
        lines.iter().all(|l| l.contains("cmdline")),
        "only the cmdline changed: {stdout}"
    );

    // The same job renamed, compared with the running job at the old key: only name fields.
    let renamed = config(&cluster, "renamed.json", "webserver", "sleep 600");
    let out = diff(
        &cluster,
        &[
            "local/www-data/devel/webserver",
            &renamed,
            "-j",
            "--from",
            key,
        ],
    );
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("with the running job local/www-data/devel/web"),
        "{stdout}"
    );
    let lines = changed_lines(&stdout);
    assert!(!lines.is_empty(), "{stdout}");
    for line in &lines {
        let name = if line.starts_with('-') {
            "web"
        } else {
            "webserver"
        };
        assert!(
            line.contains(&format!(": \"{name}\"")),
            "{line:?} is not a name field: {stdout}"
        );
    }

    // The machine-readable form says the same.
    let out = diff(&cluster, &[key, &original, "-j", "--write-json"]);
    let json: Value = serde_json::from_slice(&out.stdout).expect("diff JSON");
    assert_eq!(json["identical"], true, "{json}");
    assert_eq!(json["groups"][0]["instances"], serde_json::json!([0, 1]));
}
