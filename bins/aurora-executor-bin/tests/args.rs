//! Bad arguments are refused before the executor contacts a scheduler.

use std::process::Command;

/// A size in MiB that does not fit in bytes is named in the error, not wrapped or panicked on.
#[test]
fn oversized_ram_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_aurora-executor"))
        .args(["--scheduler", "http://127.0.0.1:9", "--hostname", "h1"])
        .arg("--work-dir")
        .arg(dir.path())
        .args(["--ram-mb", &u64::MAX.to_string()])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("--ram-mb {} is too large", u64::MAX)),
        "{stderr}"
    );
}
