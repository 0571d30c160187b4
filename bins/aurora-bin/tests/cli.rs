//! The `aurora` binary itself: what it prints for configs (no scheduler needed) and the exit
//! codes it maps errors to. Runs against a scheduler are in the workspace's e2e tests.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples")
}

/// Runs `aurora` with a fixed user and the clusters file `clusters` (which may not exist).
fn aurora(clusters: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_aurora"))
        .args(args)
        .env("AURORA_CONFIG_ROOT", clusters)
        .env("HOME", clusters.parent().unwrap_or(clusters))
        .env("USER", "vagrant")
        .output()
        .expect("run aurora")
}

fn stdout_ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn fails(out: &Output, code: i32, fragment: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "{stderr}");
    assert!(stderr.contains(fragment), "{stderr:?} lacks {fragment:?}");
}

#[test]
fn inspect_and_validate_an_aurora_file() {
    let dir = tempfile::tempdir().unwrap();
    let none = dir.path().join("clusters.json");
    let config = examples().join("hello_world.aurora");
    let config = config.to_str().unwrap();
    let key = "local/www-data/devel/hello_world";
    insta::assert_snapshot!(
        "inspect_hello_world",
        stdout_ok(&aurora(&none, &["inspect", key, config]))
    );
    insta::assert_snapshot!(
        "inspect_hello_world_json",
        stdout_ok(&aurora(&none, &["--write-json", "inspect", key, config]))
    );
    assert_eq!(
        stdout_ok(&aurora(&none, &["validate", config])),
        "local/www-data/devel/hello_world: OK (1 instance(s))\n"
    );
    let json = examples().join("hello_world.json");
    assert_eq!(
        stdout_ok(&aurora(
            &none,
            &["validate", json.to_str().unwrap(), "--write-json"]
        )),
        "{\n  \"jobs\": [\n    \"local/www-data/devel/hello_world\"\n  ]\n}\n"
    );
}

#[test]
fn errors_map_to_the_documented_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let clusters = dir.path().join("clusters.json");
    let config = examples().join("hello_world.aurora");
    let config = config.to_str().unwrap();
    // 2: bad arguments (clap's own code), a config that does not define the job, an unknown
    // cluster.
    fails(&aurora(&clusters, &["status"]), 2, "Usage");
    fails(
        &aurora(&clusters, &["inspect", "local/www-data/prod/other", config]),
        2,
        "Could not find job local/www-data/prod/other",
    );
    fails(
        &aurora(&clusters, &["status", "nowhere/www-data/devel/hello_world"]),
        2,
        "unknown cluster \"nowhere\"",
    );
    fails(
        &aurora(&clusters, &["get_quota", "local"]),
        2,
        "get_quota needs cluster/role",
    );
    // 3: the scheduler cannot be reached (a loopback port nobody listens on).
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    std::fs::write(
        &clusters,
        format!(r#"[{{"name": "local", "scheduler_uri": "http://127.0.0.1:{port}"}}]"#),
    )
    .unwrap();
    fails(
        &aurora(&clusters, &["list_jobs", "local/www-data"]),
        3,
        "cannot reach the scheduler",
    );
}
