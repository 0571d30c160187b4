//! The client side of `.aurora` files: a [`ConfigLoader`] that runs the file in the embedded
//! interpreter, and [`PyHook`], a [`ClientHook`] over a config's Python hook object.

use aurora_client::commands::{
    CommandError, ConfigLoader, ConfigSource, EvaluatedConfig, JsonLoader, LoadedJob,
    evaluate_config,
};
use aurora_client::hooks::{ClientHook, HookCall, HookEvent, HookOutcome};
use aurora_core::JobKey;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};
use serde_json::Value as Json;

use crate::embed::{load_config, with_python};
use crate::hook_args::{bind_hook_arguments, generic_hook_keywords};
use crate::native::PyVal;

/// Loads `.aurora` files through the embedded interpreter (and JSON files, when the source
/// says so, without Python).
#[derive(Debug, Clone, Copy, Default)]
pub struct PythonLoader;

impl PythonLoader {
    /// Loads the config and evaluates the job `key`, keeping the Python hook objects.
    pub fn evaluate(
        &self,
        source: &ConfigSource<'_>,
        key: &JobKey,
        user: &str,
    ) -> Result<(EvaluatedConfig, Vec<Py<PyAny>>), CommandError> {
        // Say plainly that the file is missing or unreadable, before Python words it.
        std::fs::File::open(source.path).map_err(|e| CommandError::ReadConfig {
            path: source.path.display().to_string(),
            source: e,
        })?;
        let config = load_config(source.path).map_err(|e| CommandError::Load(e.to_string()))?;
        let evaluated = evaluate_config(&config.jobs, source, key, user)?;
        Ok((evaluated, config.hooks))
    }
}

impl ConfigLoader for PythonLoader {
    fn load<'s>(
        &'s self,
        source: &ConfigSource<'_>,
        key: &JobKey,
        user: &str,
    ) -> Result<LoadedJob<'s>, CommandError> {
        if source.json {
            return JsonLoader.load(source, key, user).map(|l| LoadedJob {
                converted: l.converted,
                raw: l.raw,
                hooks: Vec::new(),
            });
        }
        let (evaluated, hooks) = self.evaluate(source, key, user)?;
        let enabled = evaluated.evaluated.raw_json.get("enable_hooks") == Some(&Json::Bool(true));
        let mut adapters: Vec<Box<dyn ClientHook + 's>> = Vec::new();
        if enabled && !hooks.is_empty() {
            let config = with_python(|py| aurora_config_object(py, &evaluated, &hooks))
                .map_err(CommandError::Load)?;
            for hook in hooks {
                let config = Python::attach(|py| config.clone_ref(py));
                let json = evaluated.evaluated.raw_json.clone();
                adapters.push(Box::new(PyHook::new(hook, Some(config), json)));
            }
        }
        Ok(LoadedJob {
            converted: evaluated.converted,
            raw: evaluated.evaluated.raw_json,
            hooks: adapters,
        })
    }

    /// Every job of the file: one for JSON, all of `jobs = [...]` for `.aurora`.
    fn load_jobs(
        &self,
        source: &ConfigSource<'_>,
    ) -> Result<Vec<aurora_config::pystachio::Value>, CommandError> {
        if source.json {
            return JsonLoader.load_jobs(source);
        }
        load_config(source.path)
            .map(|config| config.jobs)
            .map_err(|e| CommandError::Load(e.to_string()))
    }
}

/// The `AuroraConfig` object hooks receive as `config`.
fn aurora_config_object(
    py: Python<'_>,
    evaluated: &EvaluatedConfig,
    hooks: &[Py<PyAny>],
) -> PyResult<Py<PyAny>> {
    let base = py.import("aurora.pystachio.base")?;
    let job = base
        .getattr("_wrap")?
        .call1((PyVal(evaluated.job.clone()),))?;
    let loader = py.import("aurora.config.loader")?;
    let hooks: Vec<Py<PyAny>> = hooks.iter().map(|h| h.clone_ref(py)).collect();
    Ok(loader
        .getattr("AuroraConfig")?
        .call1((job, hooks))?
        .unbind())
}

/// A client hook implemented by a Python object from a config's `hooks` list. For each event
/// it calls `<event>_<method>(*args, **kw)` (`post_`/`err_` get the result or error first)
/// when the object has it, with the arguments bound to the names it declares (`shards` or
/// `instances`, whichever it declares), else `generic_hook(hook_config, event,
/// method_name, result_or_err, args, kw)`, else lets the call proceed. A hook that raises counts as
/// returning False (and is reported on stderr).
pub struct PyHook {
    hook: Py<PyAny>,
    config: Option<Py<PyAny>>,
    config_json: Json,
}

impl std::fmt::Debug for PyHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PyHook")
            .field("hook", &self.name())
            .finish()
    }
}

impl PyHook {
    /// A hook over `hook`; `config` is the Python object passed where the call's arguments
    /// hold the job config (`config_json`).
    pub fn new(hook: Py<PyAny>, config: Option<Py<PyAny>>, config_json: Json) -> PyHook {
        PyHook {
            hook,
            config,
            config_json,
        }
    }

    fn to_py<'py>(&self, py: Python<'py>, value: &Json) -> PyResult<Bound<'py, PyAny>> {
        if let Some(config) = &self.config {
            if *value == self.config_json && !value.is_null() {
                return Ok(config.bind(py).clone());
            }
        }
        py.import("json")?
            .call_method1("loads", (value.to_string(),))
    }

    fn invoke(
        &self,
        py: Python<'_>,
        call: &HookCall,
        event: HookEvent,
        outcome: HookOutcome<'_>,
    ) -> PyResult<bool> {
        let hook = self.hook.bind(py);
        let mut args = Vec::with_capacity(call.args.len());
        for a in &call.args {
            args.push(self.to_py(py, a)?);
        }
        let kwargs = PyDict::new(py);
        for (k, v) in &call.kwargs {
            kwargs.set_item(k, self.to_py(py, v)?)?;
        }
        let result_or_err: Option<Bound<'_, PyAny>> = match outcome {
            HookOutcome::Pending => None,
            HookOutcome::Result(v) => Some(self.to_py(py, v)?),
            HookOutcome::Error(m) => {
                Some(py.import("builtins")?.getattr("Exception")?.call1((m,))?)
            }
        };
        let method = format!("{}_{}", event.name(), call.method.name());
        if let Ok(m) = hook.getattr(method.as_str()) {
            if m.is_callable() {
                let mut all = Vec::with_capacity(args.len() + 1);
                if let Some(r) = &result_or_err {
                    all.push(r.clone());
                }
                all.extend(args);
                let (all, kwargs) = bind_hook_arguments(py, &m, all, &kwargs)?;
                let out = m.call(all, Some(&kwargs))?;
                return out.is_truthy();
            }
        }
        if let Ok(g) = hook.getattr("generic_hook") {
            if g.is_callable() {
                let config = match &self.config {
                    Some(c) => c.bind(py).clone(),
                    None => py.None().into_bound(py),
                };
                let hook_config = py
                    .import("aurora.config.loader")?
                    .getattr("HookConfig")?
                    .call1((config, call.job_key.to_string()))?;
                let out = g.call1((
                    hook_config,
                    event.name(),
                    call.method.name(),
                    result_or_err,
                    PyTuple::new(py, args)?,
                    generic_hook_keywords(&kwargs)?,
                ))?;
                return out.is_truthy();
            }
        }
        Ok(true)
    }
}

impl ClientHook for PyHook {
    fn name(&self) -> String {
        Python::attach(|py| {
            self.hook
                .bind(py)
                .get_type()
                .name()
                .map(|n| n.to_string())
                .unwrap_or_else(|_| "hook".to_owned())
        })
    }

    fn generic_hook(&self, call: &HookCall, event: HookEvent, outcome: HookOutcome<'_>) -> bool {
        Python::attach(|py| match self.invoke(py, call, event, outcome) {
            Ok(b) => b,
            Err(e) => {
                eprintln!(
                    "warning: hook {} raised in {}_{}: {e}",
                    self.name(),
                    event.name(),
                    call.method.name()
                );
                false
            }
        })
    }
}
