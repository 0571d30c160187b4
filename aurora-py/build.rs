//! Embeds the Python sources of the `aurora` package (`python/aurora/**.py`) so that the
//! `aurora` binary can import them without an installed package.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn collect(dir: &Path, module: &str, out: &mut Vec<(String, bool, PathBuf)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
    entries.sort();
    for path in entries {
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if path.is_dir() {
            if path.join("__init__.py").is_file() {
                collect(&path, &format!("{module}.{name}"), out);
            }
        } else if let Some(stem) = name.strip_suffix(".py") {
            if stem == "__init__" {
                out.push((module.to_owned(), true, path.clone()));
            } else {
                out.push((format!("{module}.{stem}"), false, path.clone()));
            }
        }
    }
}

fn main() {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default());
    let package = root.join("python").join("aurora");
    println!("cargo::rerun-if-changed={}", package.display());
    let mut modules = Vec::new();
    collect(&package, "aurora", &mut modules);
    let mut code = String::from("/// The embedded Python modules: `(name, is_package, source)`.\n");
    code.push_str("pub(crate) const SOURCES: &[(&str, bool, &str)] = &[\n");
    for (name, is_pkg, path) in &modules {
        println!("cargo::rerun-if-changed={}", path.display());
        let _ = writeln!(
            code,
            "    ({name:?}, {is_pkg}, include_str!({:?})),",
            path.display().to_string()
        );
    }
    code.push_str("];\n");
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap_or_default()).join("embedded.rs");
    if let Err(e) = std::fs::write(&out, code) {
        println!("cargo::error=cannot write {}: {e}", out.display());
    }
}
