//! Helpers shared by the compatibility tests of several crates.
//!
//! Some tests need inputs that a fresh machine may lack (the Aurora corpus beside the
//! repository, the reference pystachio interpreter). Such a test asks [`require`] for its
//! input: when the input is missing the test is skipped and says so, unless
//! `AURORA_REQUIRE_ALL=1` (set by `.ci/run`) turns the absence into a failure. Every skip is
//! appended to the file named by `AURORA_SKIP_LOG`, which `scripts/test` prints at the end.

use std::io::Write as _;
use std::path::PathBuf;

/// An input that some tests need and a fresh clone may lack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input {
    /// The Aurora 0.6 corpus (`configs/` and `expected/`).
    Corpus,
    /// A Python interpreter with pystachio 0.8.10, named by `PYSTACHIO_PYTHON`.
    Pystachio,
}

impl Input {
    /// What is missing, and the command that provides it.
    pub fn remedy(self) -> &'static str {
        match self {
            Input::Corpus => {
                "the Aurora corpus is missing: put shared/examples/aurora-corpus beside the \
                 repository or set AURORA_CORPUS=/path/to/aurora-corpus"
            }
            Input::Pystachio => {
                "PYSTACHIO_PYTHON is not set: run ./scripts/test (it installs pystachio 0.8.10 \
                 into a virtualenv), or python3 -m venv /tmp/pyst && /tmp/pyst/bin/pip install \
                 pystachio==0.8.10 and set PYSTACHIO_PYTHON=/tmp/pyst/bin/python"
            }
        }
    }

    /// Where the input is, when this machine has it.
    pub fn locate(self) -> Option<PathBuf> {
        match self {
            Input::Corpus => corpus_dir(),
            Input::Pystachio => std::env::var_os("PYSTACHIO_PYTHON").map(PathBuf::from),
        }
    }
}

/// The input `test` needs, or `None` after recording that `test` was skipped.
///
/// # Panics
/// When the input is missing and `AURORA_REQUIRE_ALL=1`: CI must run every test.
pub fn require(input: Input, test: &str) -> Option<PathBuf> {
    if let Some(found) = input.locate() {
        return Some(found);
    }
    let line = format!("{test}: {}", input.remedy());
    assert!(
        std::env::var("AURORA_REQUIRE_ALL").as_deref() != Ok("1"),
        "AURORA_REQUIRE_ALL=1 and {line}"
    );
    eprintln!("SKIPPED {line}");
    if let Some(log) = std::env::var_os("AURORA_SKIP_LOG") {
        // Best effort: the skip was already printed; the log only feeds the final summary.
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
        {
            // One write per line: tests run in parallel threads and append to the same file.
            let _ = f.write_all(format!("{line}\n").as_bytes());
        }
    }
    None
}

/// The Aurora corpus directory (`configs/` and `expected/`): `$AURORA_CORPUS` when set, else
/// `shared/examples/aurora-corpus` beside the repository. `None` when neither exists.
pub fn corpus_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("AURORA_CORPUS") {
        let dir = PathBuf::from(dir);
        return dir.join("expected").is_dir().then_some(dir);
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .map(|a| a.join("shared/examples/aurora-corpus"))
        .find(|p| p.join("expected").is_dir())
}
