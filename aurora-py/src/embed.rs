//! The embedded interpreter: the `aurora` package is built into the binary (as bytecode
//! compiled at build time, with its sources as the fallback when the running interpreter
//! cannot read that bytecode) and served by an import hook, the native module is registered
//! in-process, and `.aurora` files are loaded through `aurora.config.loader` (the same code
//! Python users call). Nothing is cached on disk between runs.

use std::path::Path;
use std::sync::Once;

use aurora_config::pystachio::Value;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList};

use crate::native::PyVal;

include!(concat!(env!("OUT_DIR"), "/embedded.rs"));

const BOOTSTRAP: &str = r#"
import sys
import marshal
# The spec class without importing importlib.util (and contextlib with it) at every start.
from _frozen_importlib import ModuleSpec

class _EmbeddedAurora:
    """Serves the aurora package from the binary: build-time bytecode, or sources."""

    def __init__(self, modules):
        self.modules = {name: (is_pkg, payload, is_code) for name, is_pkg, payload, is_code in modules}
        # The modules run from build-time bytecode (tests check the fast path is taken).
        self.from_bytecode = set()

    def find_spec(self, name, path=None, target=None):
        entry = self.modules.get(name)
        if entry is None:
            return None
        return ModuleSpec(name, self, origin='<embedded %s>' % name, is_package=entry[0])

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        name = module.__name__
        is_pkg, payload, is_code = self.modules[name]
        if is_pkg:
            module.__path__ = []
        if is_code:
            code = marshal.loads(payload)
            self.from_bytecode.add(name)
        else:
            code = compile(payload, '<embedded %s>' % name, 'exec')
        exec(code, module.__dict__)

sys.meta_path.insert(0, _EmbeddedAurora(MODULES))

# `site` may not have run (see initialize_without_site): make installed packages importable
# without processing their .pth files.
import site
for _dir in site.getsitepackages() + [site.getusersitepackages()]:
    if _dir not in sys.path:
        sys.path.append(_dir)
sys.modules['aurora._native'] = NATIVE
"#;

/// What the import hook runs for one module.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Payload {
    /// Marshalled code compiled at build time.
    Bytecode(&'static [u8]),
    /// The source, compiled at run time.
    Source(&'static str),
}

/// What the running interpreter needs to know to choose between bytecode and source.
#[derive(Debug, Clone, Copy)]
struct Runtime<'a> {
    /// Its bytecode's magic number (`importlib.util.MAGIC_NUMBER`).
    magic: &'a [u8],
    /// `sys.flags.optimize`: the build compiled at level 0, so under `-O` (which strips
    /// asserts) the sources are compiled as that level asks.
    optimize: i64,
}

/// The embedded modules as `runtime` can run them: the build-time bytecode when the same
/// bytecode format and optimisation level compiled it, the sources otherwise (another Python
/// version, `-O`, or no interpreter at build time).
fn payloads(
    runtime: Runtime<'_>,
    magic: &[u8],
    sources: &'static [(&'static str, bool, &'static str, &'static [u8])],
) -> Vec<(&'static str, bool, Payload)> {
    let bytecode_fits = !magic.is_empty() && magic == runtime.magic && runtime.optimize == 0;
    sources
        .iter()
        .map(|&(name, is_pkg, source, code)| {
            let payload = if bytecode_fits && !code.is_empty() {
                Payload::Bytecode(code)
            } else {
                Payload::Source(source)
            };
            (name, is_pkg, payload)
        })
        .collect()
}

/// The `(name, is_package, payload, is_bytecode)` tuples the bootstrap's import hook takes.
fn modules_list<'py>(
    py: Python<'py>,
    modules: &[(&'static str, bool, Payload)],
) -> PyResult<Bound<'py, PyList>> {
    let list = PyList::empty(py);
    for &(name, is_pkg, payload) in modules {
        let item: Bound<'py, PyAny> = match payload {
            Payload::Bytecode(code) => (name, is_pkg, PyBytes::new(py, code), true)
                .into_pyobject(py)?
                .into_any(),
            Payload::Source(src) => (name, is_pkg, src, false).into_pyobject(py)?.into_any(),
        };
        list.append(item)?;
    }
    Ok(list)
}

/// A loaded `.aurora` file: its jobs (as engine values) and its hook objects.
pub struct ConfigFile {
    /// The jobs of `jobs = [...]`, in order.
    pub jobs: Vec<Value>,
    /// The objects of `hooks = [...]`.
    pub hooks: Vec<Py<PyAny>>,
}

impl std::fmt::Debug for ConfigFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConfigFile")
            .field("jobs", &self.jobs.len())
            .field("hooks", &self.hooks.len())
            .finish()
    }
}

/// Why a config file could not be loaded, with where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}{}: {kind}", line.map(|l| format!(":{l}")).unwrap_or_default())]
pub struct LoadError {
    /// The file the problem is in (an included file when the problem is there).
    pub file: String,
    /// The line, when known.
    pub line: Option<u32>,
    /// What went wrong.
    pub kind: LoadErrorKind,
}

/// The cause of a [`LoadError`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LoadErrorKind {
    /// The config defines no `jobs`.
    #[error("No job defined in this config!")]
    NoJobs,
    /// Running the config raised an exception (a syntax error, a `NameError`, an unknown
    /// schema attribute, a missing include...).
    #[error("{exception}: {message}")]
    Exception {
        /// The Python exception class (`InvalidConfigError` for syntax errors, as the
        /// original reports them).
        exception: String,
        /// Its message.
        message: String,
    },
    /// The embedded interpreter itself failed.
    #[error("the embedded Python interpreter failed: {0}")]
    Interpreter(String),
}

static INIT: Once = Once::new();

/// Starts the interpreter without running `site` (whose `.pth` processing can cost more than
/// loading a large config); the bootstrap then adds the site-packages directories to
/// `sys.path` so that configs can still import installed modules. Returns false when the
/// interpreter could not be started this way (the caller falls back to the default).
#[expect(
    unsafe_code,
    reason = "interpreter configuration is only reachable through the C API"
)]
fn initialize_without_site() -> bool {
    use pyo3::ffi;
    // SAFETY: runs once, before any other use of Python in this process (guarded by INIT);
    // the config is initialised by PyConfig_InitPythonConfig before it is read, cleared after
    // use, and the GIL taken by initialisation is released for `Python::attach`.
    unsafe {
        if ffi::Py_IsInitialized() != 0 {
            return true;
        }
        let mut config = std::mem::MaybeUninit::<ffi::PyConfig>::uninit();
        ffi::PyConfig_InitPythonConfig(config.as_mut_ptr());
        let mut config = config.assume_init();
        config.site_import = 0;
        config.install_signal_handlers = 0;
        config.parse_argv = 0;
        let status = ffi::Py_InitializeFromConfig(&config);
        ffi::PyConfig_Clear(&mut config);
        if ffi::PyStatus_Exception(status) != 0 {
            return false;
        }
        ffi::PyEval_SaveThread();
        true
    }
}

/// Starts the interpreter and installs the embedded package (once per process).
pub(crate) fn ensure_interpreter() -> Result<(), String> {
    let mut result = Ok(());
    INIT.call_once(|| {
        if !initialize_without_site() {
            Python::initialize();
        }
        result = Python::attach(|py| -> PyResult<()> {
            let native = pyo3::wrap_pymodule!(crate::native::_native)(py);
            let runtime_magic = py
                .import("_frozen_importlib_external")?
                .getattr("MAGIC_NUMBER")?
                .cast_into::<PyBytes>()?;
            let optimize: i64 = py
                .import("sys")?
                .getattr("flags")?
                .getattr("optimize")?
                .extract()?;
            let runtime = Runtime {
                magic: runtime_magic.as_bytes(),
                optimize,
            };
            let modules = payloads(runtime, MAGIC, SOURCES);
            let globals = PyDict::new(py);
            globals.set_item("MODULES", modules_list(py, &modules)?)?;
            globals.set_item("NATIVE", native)?;
            let code = std::ffi::CString::new(BOOTSTRAP)
                .map_err(|e| pyo3::exceptions::PyValueError::new_err(e.to_string()))?;
            py.run(&code, Some(&globals), None)?;
            Ok(())
        })
        .map_err(|e| e.to_string());
    });
    result
}

/// Runs `f` with the interpreter ready.
pub(crate) fn with_python<R>(
    f: impl for<'py> FnOnce(Python<'py>) -> PyResult<R>,
) -> Result<R, String> {
    ensure_interpreter()?;
    Python::attach(|py| f(py).map_err(|e| format_err(py, &e)))
}

fn format_err(py: Python<'_>, e: &PyErr) -> String {
    let value = e.value(py);
    let kind = value
        .get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_default();
    format!("{kind}: {value}")
}

/// Loads a `.aurora` file: runs it with pystachio and the Aurora schema injected and returns
/// its jobs and hooks.
///
/// ```no_run
/// let config = aurora_py::load_config(std::path::Path::new("hello_world.aurora")).unwrap();
/// assert_eq!(config.jobs.len(), 1);
/// ```
pub fn load_config(path: &Path) -> Result<ConfigFile, LoadError> {
    let file = path.display().to_string();
    let interp = |m: String| LoadError {
        file: file.clone(),
        line: None,
        kind: LoadErrorKind::Interpreter(m),
    };
    ensure_interpreter().map_err(interp)?;
    Python::attach(|py| {
        let loader = py
            .import("aurora.config.loader")
            .map_err(|e| interp(format_err(py, &e)))?;
        match loader.call_method1("load", (file.as_str(),)) {
            Ok(loaded) => {
                let read = || -> PyResult<ConfigFile> {
                    let mut jobs = Vec::new();
                    for job in loaded.getattr("jobs")?.cast::<PyList>()?.iter() {
                        let v = job.getattr("_v")?;
                        jobs.push(v.cast::<PyVal>()?.get().0.clone());
                    }
                    let hooks = loaded
                        .getattr("hooks")?
                        .cast::<PyList>()?
                        .iter()
                        .map(|h| h.unbind())
                        .collect();
                    Ok(ConfigFile { jobs, hooks })
                };
                read().map_err(|e| interp(format_err(py, &e)))
            }
            Err(e) => {
                let value = e.value(py);
                let attr = |name: &str| value.getattr(name).ok();
                let kind: Option<String> = attr("kind").and_then(|k| k.extract().ok());
                let Some(kind) = kind else {
                    return Err(interp(format_err(py, &e)));
                };
                let message: String = attr("message")
                    .and_then(|m| m.extract().ok())
                    .unwrap_or_default();
                let err_file: String = attr("filename")
                    .and_then(|f| f.extract::<Option<String>>().ok().flatten())
                    .unwrap_or_else(|| file.clone());
                let line: Option<u32> = attr("lineno").and_then(|l| l.extract().ok());
                let kind = if kind == "NoJobs" {
                    LoadErrorKind::NoJobs
                } else {
                    LoadErrorKind::Exception {
                        exception: kind,
                        message,
                    }
                };
                Err(LoadError {
                    file: err_file,
                    line,
                    kind,
                })
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runtime(magic: &[u8], optimize: i64) -> Runtime<'_> {
        Runtime { magic, optimize }
    }

    const MODULES: &[(&str, bool, &str, &[u8])] = &[
        ("pkg", true, "", b"pkg code"),
        ("pkg.mod", false, "x = 1", b"mod code"),
        ("pkg.late", false, "y = 2", b""),
    ];

    #[test]
    fn bytecode_is_used_when_the_magic_numbers_match() {
        let got = payloads(runtime(b"\xa7\r\r\n", 0), b"\xa7\r\r\n", MODULES);
        assert_eq!(
            got,
            [
                ("pkg", true, Payload::Bytecode(b"pkg code")),
                ("pkg.mod", false, Payload::Bytecode(b"mod code")),
                // A module the build could not compile still runs from its source.
                ("pkg.late", false, Payload::Source("y = 2")),
            ]
        );
    }

    #[test]
    fn sources_are_used_when_the_interpreter_differs_or_none_compiled() {
        let from_source = [
            ("pkg", true, Payload::Source("")),
            ("pkg.mod", false, Payload::Source("x = 1")),
            ("pkg.late", false, Payload::Source("y = 2")),
        ];
        // Python 3.12's magic number against 3.11's bytecode.
        let py312 = runtime(b"\xcb\r\r\n", 0);
        assert_eq!(payloads(py312, b"\xa7\r\r\n", MODULES), from_source);
        // Python run with -O.
        let optimizing = runtime(b"\xa7\r\r\n", 1);
        assert_eq!(payloads(optimizing, b"\xa7\r\r\n", MODULES), from_source);
        // No interpreter at build time.
        assert_eq!(
            payloads(runtime(b"\xa7\r\r\n", 0), b"", MODULES),
            from_source
        );
    }

    /// The finder the bootstrap installed, from Python.
    const FINDER: &str = "next(f for f in sys.meta_path if type(f).__name__ == '_EmbeddedAurora')";

    #[test]
    fn the_embedded_package_runs_from_build_time_bytecode() {
        assert!(!MAGIC.is_empty(), "the build compiled no bytecode");
        let compiled: Vec<String> = with_python(|py| {
            py.import("aurora.config.loader")?;
            let sys = py.import("sys")?;
            let globals = PyDict::new(py);
            globals.set_item("sys", sys)?;
            let code = std::ffi::CString::new(format!("sorted({FINDER}.from_bytecode)"))?;
            py.eval(&code, Some(&globals), None)?.extract()
        })
        .unwrap();
        for module in ["aurora", "aurora.config.loader", "aurora.pystachio"] {
            assert!(
                compiled.iter().any(|m| m == module),
                "{module} not in {compiled:?}"
            );
        }
    }

    #[test]
    fn the_source_fallback_builds_the_same_module() {
        let from_source = payloads(runtime(b"", 0), MAGIC, SOURCES);
        let same = with_python(|py| {
            py.import("aurora.pystachio.parsing")?;
            let globals = PyDict::new(py);
            globals.set_item("sys", py.import("sys")?)?;
            globals.set_item("util", py.import("importlib.util")?)?;
            globals.set_item("MODULES", modules_list(py, &from_source)?)?;
            let code = std::ffi::CString::new(format!(
                "finder = type({FINDER})(MODULES)\n\
                 spec = finder.find_spec('aurora.pystachio.parsing')\n\
                 module = util.module_from_spec(spec)\n\
                 spec.loader.exec_module(module)\n\
                 same = (not finder.from_bytecode and \
                 sorted(dir(module)) == sorted(dir(sys.modules['aurora.pystachio.parsing'])))\n"
            ))?;
            py.run(&code, Some(&globals), None)?;
            globals.get_item("same")?.map_or(Ok(false), |v| v.extract())
        })
        .unwrap();
        assert!(same, "the module compiled from source differs");
    }
}
