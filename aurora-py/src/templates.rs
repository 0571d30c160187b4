//! Templates and reference patterns for the Python facade: `MustacheParser.split/join/resolve`
//! and `Matcher` run the engine's parser, substitution and pattern matching
//! (`aurora_config::pystachio`), with the scopes Python code passes in. Scopes backed by the
//! engine are searched natively; any other `Namable` is asked through its own `find`.

use std::sync::Arc;

use aurora_config::pystachio::{
    Ref, RefPattern, ResolveError, Segment, join_segments, resolve_text, segments,
};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyByteArray, PyBytes, PyDict, PyList, PyString, PyTuple};

use crate::native::{EvalErrorExt, native_scope, require_registered};

/// The template text, or the `TypeError` a regular-expression scan of a non-string raises.
fn template_text<'a>(text: &'a Bound<'_, PyAny>) -> PyResult<&'a Bound<'a, PyString>> {
    if let Ok(s) = text.cast::<PyString>() {
        return Ok(s);
    }
    if text.is_instance_of::<PyBytes>() || text.is_instance_of::<PyByteArray>() {
        return Err(PyTypeError::new_err(
            "cannot use a string pattern on a bytes-like object",
        ));
    }
    Err(PyTypeError::new_err(format!(
        "expected string or bytes-like object, got '{}'",
        text.get_type().name()?
    )))
}

/// `MustacheParser.split(text, keep_aliases)`: literal strings and `Ref`s.
#[pyfunction]
#[pyo3(signature = (text, keep_aliases = false))]
pub fn split<'py>(
    py: Python<'py>,
    text: &Bound<'py, PyAny>,
    keep_aliases: bool,
) -> PyResult<Bound<'py, PyList>> {
    let reg = require_registered(py)?;
    let text = template_text(text)?;
    let parsed = segments(text.to_str()?, keep_aliases).map_err(|e| e.into_py_err(py))?;
    let out = PyList::empty(py);
    for s in parsed {
        match s {
            Segment::Text(t) => out.append(t)?,
            Segment::Ref(r) => out.append(reg.py_ref(py, &r)?)?,
        }
    }
    Ok(out)
}

/// The lookups `join` shares between calls that pass no `found_refs` of their own (pystachio
/// 0.8.10 behaves this way: a second direct `join` of the same reference reuses the first
/// answer).
static SHARED_LOOKUPS: PyOnceLock<Py<PyDict>> = PyOnceLock::new();

/// What a Python scope finds under `r`: `Ok(None)` when its `find` raises `Namable.Error`.
fn python_find<'py>(
    namable: &Bound<'py, PyAny>,
    r: &Bound<'py, PyAny>,
) -> PyResult<Option<Bound<'py, PyAny>>> {
    let py = namable.py();
    match namable.call_method1("find", (r,)) {
        Ok(found) => Ok(Some(found)),
        Err(e) if require_registered(py)?.is_lookup_miss(py, &e) => Ok(None),
        Err(e) => Err(e),
    }
}

/// `MustacheParser.join(pieces, *namables, found_refs=...)`: one substitution pass over split
/// pieces. Each `Ref` is looked up in `found_refs`, then in the namables in order (through
/// their `find`); what is found is remembered in `found_refs` and rendered with `str()`.
/// Returns `(text, unresolved Refs in order)`.
#[pyfunction]
#[pyo3(signature = (pieces, namables, found_refs = None))]
pub fn join<'py>(
    py: Python<'py>,
    pieces: &Bound<'py, PyAny>,
    namables: &Bound<'py, PyTuple>,
    found_refs: Option<Bound<'py, PyDict>>,
) -> PyResult<(String, Bound<'py, PyList>)> {
    let reg = require_registered(py)?;
    let found_refs = match found_refs {
        Some(d) => d,
        None => SHARED_LOOKUPS
            .get_or_init(py, || PyDict::new(py).unbind())
            .bind(py)
            .clone(),
    };
    let originals: Vec<Bound<'py, PyAny>> = pieces.try_iter()?.collect::<PyResult<_>>()?;
    let mut parsed = Vec::with_capacity(originals.len());
    for piece in &originals {
        if reg.is_ref(piece)? {
            let address: String = piece.call_method0("address")?.extract()?;
            parsed.push(Segment::Ref(
                Ref::parse(&address).map_err(|e| e.into_py_err(py))?,
            ));
        } else {
            parsed.push(Segment::Text(piece.str()?.to_string()));
        }
    }
    let (text, unresolved) = join_segments(&parsed, |i, _| -> PyResult<Option<String>> {
        let r = &originals[i];
        let found = match found_refs.get_item(r)? {
            Some(found) => Some(found),
            None => {
                let mut hit = None;
                for namable in namables.iter() {
                    if let Some(found) = python_find(&namable, r)? {
                        found_refs.set_item(r, &found)?;
                        hit = Some(found);
                        break;
                    }
                }
                hit
            }
        };
        found.map(|f| Ok(f.str()?.to_string())).transpose()
    })?;
    let unresolved = PyList::new(py, unresolved.into_iter().map(|i| &originals[i]))?;
    Ok((text, unresolved))
}

/// `MustacheParser.resolve(text, *namables)`: the engine's iterative resolution (the same
/// that interpolates values), with references looked up in the namables in order.
#[pyfunction]
pub fn resolve<'py>(
    py: Python<'py>,
    text: &Bound<'py, PyAny>,
    namables: &Bound<'py, PyTuple>,
) -> PyResult<(String, Bound<'py, PyList>)> {
    let reg = require_registered(py)?;
    let text = template_text(text)?;
    let mut scopes = Vec::with_capacity(namables.len());
    for namable in namables.iter() {
        scopes.push((native_scope(&namable)?, namable));
    }
    let lookup = |r: &Ref| -> PyResult<Option<String>> {
        for (native, namable) in &scopes {
            let found = match native {
                Some(scope) => scope
                    .render(r)
                    .map_err(|e| e.into_py_err(py))?
                    .map(|t| t.to_string()),
                None => python_find(namable, &reg.py_ref(py, r)?)?
                    .map(|f| PyResult::Ok(f.str()?.to_string()))
                    .transpose()?,
            };
            if found.is_some() {
                return Ok(found);
            }
        }
        Ok(None)
    };
    let (text, unbound) = resolve_text(text.to_str()?, lookup).map_err(|e| match e {
        ResolveError::Eval(e) => e.into_py_err(py),
        ResolveError::Lookup(e) => e,
    })?;
    let refs = PyList::empty(py);
    for r in &unbound {
        refs.append(reg.py_ref(py, r)?)?;
    }
    Ok((text, refs))
}

/// A reference pattern (`Matcher`): steps of `.name` or `[index]`, each with a compiled
/// Python regular expression that the component's text must match (`pattern.match(text)`).
#[pyclass(name = "RefPattern", frozen, module = "aurora._native")]
pub struct PyRefPattern(RefPattern<Arc<Py<PyAny>>>);

#[pymethods]
impl PyRefPattern {
    /// The empty pattern: every reference follows it.
    #[new]
    fn new() -> PyRefPattern {
        PyRefPattern(RefPattern::default())
    }
    /// This pattern and one more step (`index`: `[..]`, else `.name`).
    fn then(&self, index: bool, regex: Py<PyAny>) -> PyRefPattern {
        PyRefPattern(self.0.then(index, Arc::new(regex)))
    }
    /// The steps as `(index, regex)`.
    fn steps(&self, py: Python<'_>) -> Vec<(bool, Py<PyAny>)> {
        self.0
            .steps()
            .iter()
            .map(|s| (s.index, s.test.clone_ref(py)))
            .collect()
    }
    /// For each reference (by address) that follows the pattern, in order, the texts of the
    /// components the pattern covers.
    fn prefixes(&self, py: Python<'_>, addresses: Vec<String>) -> PyResult<Vec<Vec<String>>> {
        let mut out = Vec::new();
        for address in addresses {
            let r = Ref::parse(&address).map_err(|e| e.into_py_err(py))?;
            let matches = |regex: &Arc<Py<PyAny>>, text: &str| {
                regex.bind(py).call_method1("match", (text,))?.is_truthy()
            };
            if let Some(values) = self.0.prefix_of(&r, matches)? {
                out.push(values.iter().map(|v| v.to_string()).collect());
            }
        }
        Ok(out)
    }
    /// The address of the reference a match stands for.
    fn reference(&self, values: Vec<String>) -> PyResult<String> {
        if values.len() != self.0.steps().len() {
            return Err(PyValueError::new_err(format!(
                "a match of this pattern has {} values, got {}",
                self.0.steps().len(),
                values.len()
            )));
        }
        let values: Vec<Arc<str>> = values.into_iter().map(Arc::from).collect();
        Ok(self.0.reference(&values).address())
    }
}
