//! Embeds the `aurora` package (`python/aurora/**.py`) so that the `aurora` binary can import
//! it without an installed package. With the `embed` feature each module is also compiled to
//! bytecode here, by the interpreter PyO3 builds against (as pip writes `.pyc` files at
//! install time), so that a run does not compile the package again; the runtime uses that
//! bytecode only when its interpreter's magic number is the one recorded here.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

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

/// Compiles every module with the same filename the runtime fallback gives `compile`, and
/// writes its marshalled code to `<out>/<module>.code`; prints the interpreter's magic number
/// in hex. Reads `module<TAB>path` lines on stdin.
const COMPILE: &str = r#"
import importlib.util, marshal, os, sys
out = sys.argv[1]
for line in sys.stdin.read().splitlines():
    name, path = line.split('\t', 1)
    with open(path, encoding='utf-8') as f:
        code = compile(f.read(), '<embedded %s>' % name, 'exec', dont_inherit=True)
    with open(os.path.join(out, name + '.code'), 'wb') as f:
        f.write(marshal.dumps(code))
print(importlib.util.MAGIC_NUMBER.hex())
"#;

/// Compiles the modules to bytecode in `out`; the interpreter's magic number, or why not.
fn compile_bytecode(modules: &[(String, bool, PathBuf)], out: &Path) -> Result<Vec<u8>, String> {
    let config = pyo3_build_config::get();
    let python = config
        .executable()
        .ok_or("PyO3 reports no Python executable")?
        .to_owned();
    let mut child = Command::new(&python)
        .args(["-I", "-S", "-c", COMPILE])
        .arg(out)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {python}: {e}"))?;
    let mut list = String::new();
    for (name, _, path) in modules {
        let _ = writeln!(list, "{name}\t{}", path.display());
    }
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(list.as_bytes())
            .map_err(|e| format!("cannot write to {python}: {e}"))?;
    }
    let output = child
        .wait_with_output()
        .map_err(|e| format!("{python} did not finish: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "{python} failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    let hex = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    (0..hex.len())
        .step_by(2)
        .map(|i| {
            hex.get(i..i + 2)
                .and_then(|b| u8::from_str_radix(b, 16).ok())
        })
        .collect::<Option<Vec<u8>>>()
        .filter(|m| !m.is_empty())
        .ok_or_else(|| format!("{python} printed no magic number: {hex:?}"))
}

fn main() {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default());
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").unwrap_or_default());
    let package = root.join("python").join("aurora");
    println!("cargo::rerun-if-changed={}", package.display());
    // Another interpreter may write other bytecode.
    println!("cargo::rerun-if-env-changed=PYO3_PYTHON");
    let mut modules = Vec::new();
    collect(&package, "aurora", &mut modules);

    // The extension module (built by maturin) is imported by a normal interpreter, which
    // compiles and caches the package itself.
    let magic = if std::env::var_os("CARGO_FEATURE_EMBED").is_some() {
        let code_dir = out_dir.join("bytecode");
        match std::fs::create_dir_all(&code_dir)
            .map_err(|e| format!("cannot create {}: {e}", code_dir.display()))
            .and_then(|()| compile_bytecode(&modules, &code_dir))
        {
            Ok(magic) => Some((magic, code_dir)),
            Err(e) => {
                println!(
                    "cargo::warning=the embedded aurora package will be compiled at every run: {e}"
                );
                None
            }
        }
    } else {
        None
    };

    let mut code = String::from(
        "/// The magic number of the interpreter that compiled [`SOURCES`]' bytecode (empty when \
         none did).\n",
    );
    let magic_bytes = magic
        .as_ref()
        .map(|(m, _)| m.as_slice())
        .unwrap_or_default();
    let _ = writeln!(code, "pub(crate) const MAGIC: &[u8] = &{magic_bytes:?};");
    code.push_str(
        "/// The embedded Python modules: `(name, is_package, source, marshalled code or empty)`.\n",
    );
    code.push_str("pub(crate) const SOURCES: &[(&str, bool, &str, &[u8])] = &[\n");
    for (name, is_pkg, path) in &modules {
        println!("cargo::rerun-if-changed={}", path.display());
        let bytecode = match &magic {
            Some((_, dir)) => format!(
                "include_bytes!({:?})",
                dir.join(format!("{name}.code")).display().to_string()
            ),
            None => "&[]".to_owned(),
        };
        let _ = writeln!(
            code,
            "    ({name:?}, {is_pkg}, include_str!({:?}), {bytecode}),",
            path.display().to_string()
        );
    }
    code.push_str("];\n");
    let out = out_dir.join("embedded.rs");
    if let Err(e) = std::fs::write(&out, code) {
        println!("cargo::error=cannot write {}: {e}", out.display());
    }
}
