//! Binding a hooked call's arguments to the parameters a Python hook method declares.
//!
//! The spec's hooks table names the instance set `shards` while Aurora 0.6 passed it as
//! `instances=`, and the original also passed keywords (`lock=`, `config=`) the table never
//! mentions, so a hook written as the spec shows raised `TypeError`. Hooks written either way
//! must work, so the call is shaped to the hook's signature instead.

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};

/// Keyword names that mean the same argument: the spec's name and Aurora 0.6's.
const ALIASES: &[(&str, &str)] = &[("instances", "shards"), ("shards", "instances")];

fn alias_of(name: &str) -> Option<&'static str> {
    ALIASES.iter().find(|(a, _)| *a == name).map(|(_, b)| *b)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    PositionalOnly,
    PositionalOrKeyword,
    VarPositional,
    KeywordOnly,
    VarKeyword,
}

#[derive(Debug)]
struct Param {
    name: String,
    kind: Kind,
}

/// The parameters of `func` as `inspect.signature` reports them (without `self` for a bound
/// method), or `None` when the callable cannot be inspected (builtins, C callables).
fn parameters(py: Python<'_>, func: &Bound<'_, PyAny>) -> Option<Vec<Param>> {
    let signature = py
        .import("inspect")
        .and_then(|inspect| inspect.getattr("signature"))
        .and_then(|signature| signature.call1((func,)))
        .ok()?;
    let values = signature
        .getattr("parameters")
        .and_then(|p| p.call_method0("values"))
        .ok()?;
    let mut params = Vec::new();
    for param in values.try_iter().ok()? {
        let param = param.ok()?;
        let name: String = param.getattr("name").and_then(|n| n.extract()).ok()?;
        let kind: String = param
            .getattr("kind")
            .and_then(|k| k.getattr("name"))
            .and_then(|n| n.extract())
            .ok()?;
        let kind = match kind.as_str() {
            "POSITIONAL_ONLY" => Kind::PositionalOnly,
            "POSITIONAL_OR_KEYWORD" => Kind::PositionalOrKeyword,
            "VAR_POSITIONAL" => Kind::VarPositional,
            "KEYWORD_ONLY" => Kind::KeywordOnly,
            "VAR_KEYWORD" => Kind::VarKeyword,
            _ => return None,
        };
        params.push(Param { name, kind });
    }
    Some(params)
}

/// Shapes the call `func(*args, **kwargs)` to `func`'s signature:
/// - a keyword the hook declares by name is passed by that name, and `instances`/`shards`
///   reach a hook that declares the other name under that name;
/// - a positional-only parameter past the given positionals is filled from the keyword of
///   its name (or alias), positionally;
/// - positionals beyond what the hook can take (it has no `*args`) are dropped, as are
///   keywords it declares under neither name and cannot take as `**kw`;
/// - a hook with `**kw` gets every keyword, and both `instances` and `shards` when it
///   declares neither;
/// - a hook whose signature cannot be inspected gets the call unchanged.
pub(crate) fn bind_hook_arguments<'py>(
    py: Python<'py>,
    func: &Bound<'py, PyAny>,
    args: Vec<Bound<'py, PyAny>>,
    kwargs: &Bound<'py, PyDict>,
) -> PyResult<(Bound<'py, PyTuple>, Bound<'py, PyDict>)> {
    let Some(params) = parameters(py, func) else {
        return Ok((PyTuple::new(py, args)?, kwargs.copy()?));
    };
    let has = |kind: Kind| params.iter().any(|p| p.kind == kind);
    let positional: Vec<&Param> = params
        .iter()
        .filter(|p| matches!(p.kind, Kind::PositionalOnly | Kind::PositionalOrKeyword))
        .collect();
    let mut args = args;
    if !has(Kind::VarPositional) {
        args.truncate(positional.len());
    }
    // Keywords still to place, in the caller's order.
    let mut pending: Vec<(String, Bound<'py, PyAny>)> = Vec::new();
    for (k, v) in kwargs.iter() {
        pending.push((k.extract()?, v));
    }
    let given: Vec<String> = pending.iter().map(|(k, _)| k.clone()).collect();
    let given = |name: &str| given.iter().any(|g| g == name);
    let take = |pending: &mut Vec<(String, Bound<'py, PyAny>)>, name: &str| {
        let at = pending
            .iter()
            .position(|(k, _)| k == name || alias_of(k) == Some(name))?;
        Some(pending.remove(at).1)
    };
    for param in positional.iter().skip(args.len()) {
        if param.kind != Kind::PositionalOnly {
            break;
        }
        match take(&mut pending, &param.name) {
            Some(v) => args.push(v),
            None => break,
        }
    }
    // Names already filled positionally must not be given again as keywords.
    let filled: Vec<&str> = positional
        .iter()
        .take(args.len())
        .map(|p| p.name.as_str())
        .collect();
    let by_keyword = |name: &str| {
        params.iter().any(|p| {
            p.name == name && matches!(p.kind, Kind::PositionalOrKeyword | Kind::KeywordOnly)
        }) && !filled.contains(&name)
    };
    let declared = |name: &str| params.iter().any(|p| p.name == name);
    let var_keyword = has(Kind::VarKeyword);
    let out = PyDict::new(py);
    for (name, value) in &pending {
        let alias = alias_of(name);
        if by_keyword(name) {
            out.set_item(name, value)?;
        } else if let Some(alias) = alias.filter(|a| by_keyword(a) && !given(a)) {
            out.set_item(alias, value)?;
        } else if var_keyword && !declared(name) {
            out.set_item(name, value)?;
            if let Some(alias) = alias.filter(|a| !declared(a) && !given(a)) {
                out.set_item(alias, value)?;
            }
        }
    }
    Ok((PyTuple::new(py, args)?, out))
}

/// The keywords `generic_hook` receives as its `kw` value: the call's, with `shards` beside
/// `instances` (and the reverse) so that hooks reading either name find it.
pub(crate) fn generic_hook_keywords<'py>(
    kwargs: &Bound<'py, PyDict>,
) -> PyResult<Bound<'py, PyDict>> {
    let out = kwargs.copy()?;
    for (k, v) in kwargs.iter() {
        let name: String = k.extract()?;
        if let Some(alias) = alias_of(&name) {
            if !kwargs.contains(alias)? {
                out.set_item(alias, v)?;
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use aurora_client::hooks::{ClientHook, HookCall, HookedCall, HookedError, HookedMethod};
    use pyo3::types::PyModule;
    use serde_json::{Map, Value as Json, json};

    use crate::PyHook;
    use crate::embed::with_python;

    use super::*;

    /// Hooks written every way the spec and Aurora 0.6 allow; each records what it received.
    const HOOKS: &std::ffi::CStr = cr#"
calls = []

class ShardsKeyword:
    def pre_kill_job(self, job_key, shards=None):
        calls.append(('shards', job_key, shards))
        return True

class InstancesKeyword:
    def pre_kill_job(self, job_key, instances=None):
        calls.append(('instances', job_key, instances))
        return True

class PositionalOnly:
    def pre_kill_job(self, job_key, shards, /):
        calls.append(('positional', job_key, shards))
        return True

class VarKeyword:
    def pre_kill_job(self, job_key, **kw):
        calls.append(('var_kw', job_key, sorted(kw.items())))
        return True

class Neither:
    def pre_kill_job(self, job_key):
        calls.append(('neither', job_key))
        return True

class Refuser:
    def pre_kill_job(self, job_key, shards=None):
        calls.append(('refuser', shards))
        return False

class Outcomes:
    def post_kill_job(self, result, job_key, shards=None):
        calls.append(('post', result, job_key, shards))
    def err_kill_job(self, exc, job_key, shards=None):
        calls.append(('err', str(exc), job_key, shards))

class CreateWithoutLock:
    def pre_create_job(self, config):
        calls.append(('create', config))
        return True

class Generic:
    def generic_hook(self, hook_config, event, method_name, result_or_err, args, kw):
        calls.append(('generic', event, method_name, kw.get('shards'), kw.get('instances')))
        return True

class Opaque:
    # Stands in for a callable whose signature cannot be inspected (a C callable).
    @property
    def __signature__(self):
        raise ValueError('no signature')
    def __call__(self, *args, **kw):
        calls.append(('opaque', args, sorted(kw)))
        return True

class OpaqueHook:
    pre_kill_job = Opaque()
"#;

    /// Instances of the classes `names` from a fresh module `module` (tests run in parallel,
    /// and a module name is reused by the interpreter, so each test names its own).
    fn hooks(module: &str, names: &[&str]) -> (Vec<Box<dyn ClientHook>>, Py<PyModule>) {
        with_python(|py| {
            let name = std::ffi::CString::new(module).expect("no NUL in module name");
            let module = PyModule::from_code(py, HOOKS, c"hooks_test.py", &name)?;
            let mut hooks: Vec<Box<dyn ClientHook>> = Vec::new();
            for name in names {
                let hook = module.getattr(*name)?.call0()?.unbind();
                hooks.push(Box::new(PyHook::new(hook, None, Json::Null)));
            }
            Ok((hooks, module.unbind()))
        })
        .expect("test hooks load")
    }

    /// What the hooks recorded, as Python reprs.
    fn calls(module: &Py<PyModule>) -> Vec<String> {
        with_python(|py| {
            let calls = module.bind(py).getattr("calls")?;
            let mut out = Vec::new();
            for call in calls.try_iter()? {
                out.push(call?.repr()?.to_string());
            }
            Ok(out)
        })
        .expect("calls readable")
    }

    /// `kill_job` as the client makes it: the key, then `instances=`, `lock=`, `config=`.
    fn kill_call() -> HookCall {
        let mut kwargs = Map::new();
        kwargs.insert("instances".into(), json!([0, 2]));
        kwargs.insert("lock".into(), Json::Null);
        kwargs.insert("config".into(), Json::Null);
        HookCall {
            method: HookedMethod::KillJob,
            job_key: "west/www/prod/hello".parse().expect("valid key"),
            config: None,
            args: vec![json!("west/www/prod/hello")],
            kwargs,
        }
    }

    #[test]
    fn hooks_get_the_instances_under_the_name_they_declare() {
        let (hooks, module) = hooks(
            "hooks_get_the_instances_under_the_name_they_declare",
            &[
                "ShardsKeyword",
                "InstancesKeyword",
                "PositionalOnly",
                "VarKeyword",
                "Neither",
            ],
        );
        let result = HookedCall::new(&hooks, kill_call()).run(|| Ok::<_, String>(json!("ok")));
        assert_eq!(result.expect("no hook refuses"), json!("ok"));
        assert_eq!(
            calls(&module),
            [
                "('shards', 'west/www/prod/hello', [0, 2])",
                "('instances', 'west/www/prod/hello', [0, 2])",
                "('positional', 'west/www/prod/hello', [0, 2])",
                "('var_kw', 'west/www/prod/hello', [('config', None), ('instances', [0, 2]), \
                 ('lock', None), ('shards', [0, 2])])",
                "('neither', 'west/www/prod/hello')",
            ]
        );
    }

    #[test]
    fn a_pre_hook_returning_false_still_stops_the_call() {
        let (hooks, module) = hooks(
            "a_pre_hook_returning_false_still_stops_the_call",
            &["Refuser", "ShardsKeyword"],
        );
        let mut ran = false;
        let result = HookedCall::new(&hooks, kill_call()).run(|| {
            ran = true;
            Ok::<_, String>(json!("ok"))
        });
        assert!(matches!(result, Err(HookedError::Stopped { .. })));
        assert!(!ran, "the kill must not run");
        // Every pre hook still runs, as in the original.
        assert_eq!(
            calls(&module),
            [
                "('refuser', [0, 2])",
                "('shards', 'west/www/prod/hello', [0, 2])"
            ]
        );
    }

    #[test]
    fn post_and_err_hooks_get_the_result_or_error_then_bound_arguments() {
        let (hooks, module) = hooks(
            "post_and_err_hooks_get_the_result_or_error_then_bound_arguments",
            &["Outcomes"],
        );
        HookedCall::new(&hooks, kill_call())
            .run(|| Ok::<_, String>(json!("killed")))
            .expect("call succeeds");
        let failed = HookedCall::new(&hooks, kill_call())
            .run(|| Err::<Json, _>("scheduler down".to_owned()));
        assert!(matches!(failed, Err(HookedError::Call(m)) if m == "scheduler down"));
        assert_eq!(
            calls(&module),
            [
                "('post', 'killed', 'west/www/prod/hello', [0, 2])",
                "('err', 'scheduler down', 'west/www/prod/hello', [0, 2])",
            ]
        );
    }

    #[test]
    fn positionals_a_hook_cannot_take_are_dropped() {
        let (hooks, module) = hooks(
            "positionals_a_hook_cannot_take_are_dropped",
            &["CreateWithoutLock"],
        );
        let call = HookCall {
            method: HookedMethod::CreateJob,
            job_key: "west/www/prod/hello".parse().expect("valid key"),
            config: None,
            args: vec![json!({"name": "hello"}), Json::Null],
            kwargs: Map::new(),
        };
        HookedCall::new(&hooks, call)
            .run(|| Ok::<_, String>(json!("ok")))
            .expect("no hook refuses");
        assert_eq!(calls(&module), ["('create', {'name': 'hello'})"]);
    }

    #[test]
    fn generic_hooks_find_the_instances_under_both_names() {
        let (hooks, module) = hooks(
            "generic_hooks_find_the_instances_under_both_names",
            &["Generic"],
        );
        HookedCall::new(&hooks, kill_call())
            .run(|| Ok::<_, String>(json!("ok")))
            .expect("no hook refuses");
        assert_eq!(
            calls(&module),
            [
                "('generic', 'pre', 'kill_job', [0, 2], [0, 2])",
                "('generic', 'post', 'kill_job', [0, 2], [0, 2])",
            ]
        );
    }

    #[test]
    fn hooks_without_an_inspectable_signature_get_the_call_unchanged() {
        let (hooks, module) = hooks(
            "hooks_without_an_inspectable_signature_get_the_call_unchanged",
            &["OpaqueHook"],
        );
        HookedCall::new(&hooks, kill_call())
            .run(|| Ok::<_, String>(json!("ok")))
            .expect("no hook refuses");
        assert_eq!(
            calls(&module),
            ["('opaque', ('west/www/prod/hello',), ['config', 'instances', 'lock'])"]
        );
    }
}
