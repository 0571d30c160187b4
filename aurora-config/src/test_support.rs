//! Helpers shared by the compatibility tests of several crates.

use std::path::PathBuf;

/// The Aurora corpus directory (`configs/` and `expected/`): `$AURORA_CORPUS` when set, else
/// `shared/examples/aurora-corpus` beside the repository. `None` when neither exists; callers
/// fail with a message saying where they looked.
pub fn corpus_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("AURORA_CORPUS") {
        return Some(PathBuf::from(dir));
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .map(|a| a.join("shared/examples/aurora-corpus"))
        .find(|p| p.join("expected").is_dir())
}
