//! The native module `aurora._native`: thin Python handles over the Rust Pystachio engine
//! (`Type`, `Value`, `Env`) and the Aurora schema helpers. The Python package builds the
//! pystachio API on top of these; values never leave Rust.

use std::any::Any;
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use aurora_config::pystachio::{
    BuildError, Component, Env, EnvInput, EnvValue, EvalError, FieldSpec, FindError, Foreign,
    InvalidRef, Raw, Ref, Scope, Type, TypeCheck, Value,
};
use aurora_config::schema::{self, HelperError, OrderItem};
use num_bigint::BigInt;
use pyo3::exceptions::{PyAttributeError, PyOverflowError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBool, PyBytes, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple, PyType};

/// Python classes the engine raises or builds, registered by the Python package once its
/// classes exist (`_native.configure(...)`). Before that, built-in exceptions stand in.
pub(crate) struct Registered {
    coercion_error: Py<PyType>,
    uninterpolatable: Py<PyType>,
    invalid_ref: Py<PyType>,
    is_not_mapping: Py<PyType>,
    frozendict: Py<PyType>,
    empty: Py<PyAny>,
    object_base: Py<PyType>,
    wrap: Py<PyAny>,
    /// `Ref.from_address`, to hand references back to Python.
    ref_from_address: Py<PyAny>,
    /// `Ref`, to recognise references among template pieces.
    ref_class: Py<PyType>,
    /// `Namable.Error`: a scope's `find` raising it means "not here".
    namable_error: Py<PyType>,
}

static REGISTERED: PyOnceLock<Registered> = PyOnceLock::new();

fn registered(py: Python<'_>) -> Option<&Registered> {
    REGISTERED.get(py)
}

/// The registered classes, or an error saying the package did not configure the module.
pub(crate) fn require_registered(py: Python<'_>) -> PyResult<&Registered> {
    registered(py).ok_or_else(|| {
        PyTypeError::new_err("aurora._native is not configured: import aurora.pystachio first")
    })
}

impl Registered {
    /// A Python `Ref` for an engine reference.
    pub(crate) fn py_ref<'py>(&self, py: Python<'py>, r: &Ref) -> PyResult<Bound<'py, PyAny>> {
        self.ref_from_address.bind(py).call1((r.address(),))
    }
    /// Whether `obj` is a Python `Ref`.
    pub(crate) fn is_ref(&self, obj: &Bound<'_, PyAny>) -> PyResult<bool> {
        obj.is_instance(self.ref_class.bind(obj.py()))
    }
    /// Whether `err` is a `Namable.Error` (a failed lookup, not a failure).
    pub(crate) fn is_lookup_miss(&self, py: Python<'_>, err: &PyErr) -> bool {
        err.is_instance(py, self.namable_error.bind(py))
    }
}

fn raise(py: Python<'_>, class: Option<&Py<PyType>>, message: String) -> PyErr {
    match class {
        Some(c) => PyErr::from_type(c.bind(py).clone(), (message,)),
        None => PyValueError::new_err(message),
    }
}

/// Converts an evaluation error into the pystachio exception Python code expects.
pub(crate) fn eval_err(py: Python<'_>, e: EvalError) -> PyErr {
    let reg = registered(py);
    let message = e.to_string();
    match e {
        EvalError::Coercion(_) => raise(py, reg.map(|r| &r.coercion_error), message),
        EvalError::Uninterpolatable(_) => raise(py, reg.map(|r| &r.uninterpolatable), message),
        EvalError::InvalidRef(_) => raise(py, reg.map(|r| &r.invalid_ref), message),
        EvalError::Overflow(_) => PyOverflowError::new_err(message),
        _ => PyValueError::new_err(message),
    }
}

/// Engine errors as the Python exceptions pystachio raises for them.
pub(crate) trait EvalErrorExt {
    /// The Python exception.
    fn into_py_err(self, py: Python<'_>) -> PyErr;
}

impl EvalErrorExt for EvalError {
    fn into_py_err(self, py: Python<'_>) -> PyErr {
        eval_err(py, self)
    }
}

impl EvalErrorExt for InvalidRef {
    fn into_py_err(self, py: Python<'_>) -> PyErr {
        eval_err(py, EvalError::InvalidRef(self))
    }
}

/// Converts a build error into the exception pystachio raises for it.
pub(crate) fn build_err(py: Python<'_>, e: BuildError) -> PyErr {
    let reg = registered(py);
    let message = e.to_string();
    match e {
        BuildError::UnknownAttribute(_) => PyAttributeError::new_err(message),
        BuildError::NotMapping(_) => raise(py, reg.map(|r| &r.is_not_mapping), message),
        BuildError::InvalidRef(_) => raise(py, reg.map(|r| &r.invalid_ref), message),
        BuildError::Eval(e) => eval_err(py, e),
        _ => PyValueError::new_err(message),
    }
}

fn helper_err(py: Python<'_>, e: HelperError) -> PyErr {
    match e {
        HelperError::Build(e) => build_err(py, e),
        HelperError::Eval(e) => eval_err(py, e),
        other => PyValueError::new_err(other.to_string()),
    }
}

/// Converts a Python value (str, numbers, None, containers, pystachio objects, `Empty`) into
/// the engine's raw data.
pub(crate) fn to_raw(obj: &Bound<'_, PyAny>) -> PyResult<Raw> {
    let py = obj.py();
    if obj.is_none() {
        return Ok(Raw::None);
    }
    if let Ok(s) = obj.cast::<PyString>() {
        return Ok(Raw::str(s.to_str()?));
    }
    if obj.is_instance_of::<PyBool>() {
        return Ok(Raw::Bool(obj.extract::<bool>()?));
    }
    if obj.is_instance_of::<PyInt>() {
        return Ok(match obj.extract::<i64>() {
            Ok(i) => Raw::Int(i),
            Err(_) => Raw::int(obj.extract::<BigInt>()?),
        });
    }
    if obj.is_instance_of::<PyFloat>() {
        return Ok(Raw::Float(obj.extract::<f64>()?));
    }
    if let Ok(v) = obj.cast::<PyVal>() {
        return Ok(Raw::Value(v.get().0.clone()));
    }
    if let Some(reg) = registered(py) {
        if obj.is(reg.empty.bind(py)) {
            return Ok(Raw::Empty);
        }
        if obj.is_instance(reg.object_base.bind(py))? {
            let v = obj.getattr("_v")?;
            let v = v
                .cast::<PyVal>()
                .map_err(|e| PyTypeError::new_err(e.to_string()))?;
            return Ok(Raw::Value(v.get().0.clone()));
        }
    }
    if let Ok(d) = obj.cast::<PyDict>() {
        let mut pairs = Vec::with_capacity(d.len());
        for (k, v) in d.iter() {
            pairs.push((to_raw(&k)?, to_raw(&v)?));
        }
        return Ok(Raw::Map(pairs));
    }
    if let Ok(l) = obj.cast::<PyList>() {
        return l
            .iter()
            .map(|x| to_raw(&x))
            .collect::<PyResult<Vec<_>>>()
            .map(Raw::List);
    }
    if let Ok(t) = obj.cast::<PyTuple>() {
        return t
            .iter()
            .map(|x| to_raw(&x))
            .collect::<PyResult<Vec<_>>>()
            .map(Raw::List);
    }
    if obj.hasattr("items")? && obj.hasattr("__getitem__")? {
        let mut pairs = Vec::new();
        for item in obj.call_method0("items")?.try_iter()? {
            let item = item?;
            pairs.push((to_raw(&item.get_item(0)?)?, to_raw(&item.get_item(1)?)?));
        }
        return Ok(Raw::Map(pairs));
    }
    if obj.is_instance_of::<PyBytes>() || obj.is_instance_of::<PyType>() {
        return foreign(obj);
    }
    if obj.hasattr("__len__")? && obj.hasattr("__getitem__")? {
        let mut items = Vec::new();
        for item in obj.try_iter()? {
            items.push(to_raw(&item?)?);
        }
        return Ok(Raw::List(items));
    }
    foreign(obj)
}

/// An input no type accepts, kept as is: coercing it fails with the type's CoercionError
/// (naming its `str()`), and `get()` returns the object itself.
fn foreign(obj: &Bound<'_, PyAny>) -> PyResult<Raw> {
    let handle: Arc<dyn Any + Send + Sync> = Arc::new(obj.clone().unbind());
    Ok(Raw::Foreign(Foreign::new(obj.str()?.to_str()?, handle)))
}

/// Converts raw data back to Python (`get()`): lists become tuples, maps frozendicts.
pub(crate) fn raw_to_py(py: Python<'_>, raw: &Raw) -> PyResult<Py<PyAny>> {
    Ok(match raw {
        Raw::None => py.None(),
        Raw::Empty => match registered(py) {
            Some(r) => r.empty.clone_ref(py),
            None => py.None(),
        },
        Raw::Bool(b) => PyBool::new(py, *b).to_owned().into_any().unbind(),
        Raw::Int(i) => i.into_pyobject(py)?.into_any().unbind(),
        Raw::BigInt(i) => (&**i).into_pyobject(py)?.into_any().unbind(),
        Raw::Float(f) => f.into_pyobject(py)?.into_any().unbind(),
        Raw::Str(s) => PyString::new(py, s).into_any().unbind(),
        Raw::List(items) => {
            let items = items
                .iter()
                .map(|i| raw_to_py(py, i))
                .collect::<PyResult<Vec<_>>>()?;
            PyTuple::new(py, items)?.into_any().unbind()
        }
        Raw::Map(pairs) => {
            let d = PyDict::new(py);
            for (k, v) in pairs {
                d.set_item(raw_to_py(py, k)?, raw_to_py(py, v)?)?;
            }
            match registered(py) {
                Some(r) => r.frozendict.bind(py).call1((d,))?.unbind(),
                None => d.into_any().unbind(),
            }
        }
        Raw::Value(v) => wrap_value(py, v.clone())?,
        Raw::Foreign(f) => match f.handle().downcast_ref::<Py<PyAny>>() {
            Some(obj) => obj.clone_ref(py),
            None => PyString::new(py, f.text()).into_any().unbind(),
        },
    })
}

/// Wraps a native value in its Python class (through the package's `_wrap`).
fn wrap_value(py: Python<'_>, v: Value) -> PyResult<Py<PyAny>> {
    let handle = Py::new(py, PyVal(v))?;
    match registered(py) {
        Some(r) => Ok(r.wrap.bind(py).call1((handle,))?.unbind()),
        None => Ok(handle.into_any()),
    }
}

/// A serialized signature in Python form: arrays become tuples, objects frozendicts.
fn json_to_signature<'py>(py: Python<'py>, j: &serde_json::Value) -> PyResult<Bound<'py, PyAny>> {
    use serde_json::Value as Json;
    Ok(match j {
        Json::Array(items) => {
            let items = items
                .iter()
                .map(|i| json_to_signature(py, i))
                .collect::<PyResult<Vec<_>>>()?;
            PyTuple::new(py, items)?.into_any()
        }
        Json::Object(o) => {
            let d = PyDict::new(py);
            for (k, v) in o {
                d.set_item(k, json_to_signature(py, v)?)?;
            }
            match registered(py) {
                Some(r) => r.frozendict.bind(py).call1((d,))?,
                None => d.into_any(),
            }
        }
        other => raw_to_py(py, &aurora_config::pystachio::json::json_to_raw(other))?.into_bound(py),
    })
}

/// A serialized signature in Python form as JSON: tuples and lists become arrays, dicts
/// objects; strings, booleans, numbers and None stay what they are.
fn signature_to_json(obj: &Bound<'_, PyAny>) -> PyResult<serde_json::Value> {
    use serde_json::Value as Json;
    if obj.is_none() {
        return Ok(Json::Null);
    }
    if let Ok(s) = obj.cast::<PyString>() {
        return Ok(Json::String(s.to_str()?.to_owned()));
    }
    if let Ok(d) = obj.cast::<PyDict>() {
        let mut out = serde_json::Map::with_capacity(d.len());
        for (k, v) in d.iter() {
            out.insert(k.str()?.to_string(), signature_to_json(&v)?);
        }
        return Ok(Json::Object(out));
    }
    if obj.is_instance_of::<PyTuple>() || obj.is_instance_of::<PyList>() {
        return obj
            .try_iter()?
            .map(|item| signature_to_json(&item?))
            .collect::<PyResult<Vec<_>>>()
            .map(Json::Array);
    }
    Ok(aurora_config::pystachio::json::raw_to_json(&to_raw(obj)?))
}

/// A pystachio type descriptor.
#[pyclass(name = "Type", frozen, from_py_object, module = "aurora._native")]
#[derive(Clone)]
pub struct PyTy(pub Type);

/// A pystachio value: immutable, with its scopes.
#[pyclass(name = "Value", frozen, from_py_object, module = "aurora._native")]
#[derive(Clone)]
pub struct PyVal(pub Value);

/// An environment (a table of bindings) usable as a scope.
#[pyclass(name = "Env", frozen, from_py_object, module = "aurora._native")]
#[derive(Clone)]
pub struct PyEnv(pub Env);

fn type_key(t: &Type) -> String {
    t.serialize().to_string()
}

#[pymethods]
impl PyTy {
    /// `String`.
    #[staticmethod]
    fn string() -> PyTy {
        PyTy(Type::string())
    }
    /// `Integer`.
    #[staticmethod]
    fn integer() -> PyTy {
        PyTy(Type::integer())
    }
    /// `Float`.
    #[staticmethod]
    fn float() -> PyTy {
        PyTy(Type::float())
    }
    /// `Boolean`.
    #[staticmethod]
    fn boolean() -> PyTy {
        PyTy(Type::boolean())
    }
    /// An enumeration.
    #[staticmethod]
    #[pyo3(signature = (name, values))]
    fn enumeration(name: Option<&str>, values: Vec<String>) -> PyTy {
        let v: Vec<&str> = values.iter().map(String::as_str).collect();
        PyTy(Type::enumeration(name, &v))
    }
    /// A choice of alternatives.
    #[staticmethod]
    #[pyo3(signature = (name, alternatives))]
    fn choice(name: Option<&str>, alternatives: Vec<PyTy>) -> PyTy {
        let alts: Vec<Type> = alternatives.into_iter().map(|t| t.0).collect();
        PyTy(Type::choice(name, &alts))
    }
    /// `List(T)`.
    #[staticmethod]
    fn list(element: &PyTy) -> PyTy {
        PyTy(Type::list(&element.0))
    }
    /// `Map(K, V)`.
    #[staticmethod]
    fn map(key: &PyTy, value: &PyTy) -> PyTy {
        PyTy(Type::map(&key.0, &value.0))
    }
    /// A struct type from `(name, type, required, default)` fields, in declaration order; a
    /// default of `Empty` means none.
    #[staticmethod]
    fn structure(
        py: Python<'_>,
        name: &str,
        fields: Vec<(String, PyTy, bool, Bound<'_, PyAny>)>,
    ) -> PyResult<PyTy> {
        let mut specs = Vec::with_capacity(fields.len());
        for (fname, ty, required, default) in fields {
            let default = to_raw(&default)?;
            specs.push(FieldSpec {
                name: fname,
                ty: ty.0,
                required,
                default: match default {
                    Raw::Empty => None,
                    d => Some(d),
                },
            });
        }
        Type::structure(name, specs)
            .map(PyTy)
            .map_err(|e| build_err(py, e))
    }
    /// Loads a type from its serialized signature (JSON text).
    #[staticmethod]
    fn load(py: Python<'_>, signature: &str) -> PyResult<PyTy> {
        let json: serde_json::Value =
            serde_json::from_str(signature).map_err(|e| PyValueError::new_err(e.to_string()))?;
        Type::load(&json).map(PyTy).map_err(|e| build_err(py, e))
    }
    /// Loads a type from its serialized signature in Python form (`serialize_type()`).
    #[staticmethod]
    fn from_signature(py: Python<'_>, signature: &Bound<'_, PyAny>) -> PyResult<PyTy> {
        Type::load(&signature_to_json(signature)?)
            .map(PyTy)
            .map_err(|e| build_err(py, e))
    }
    /// The type's name.
    #[getter]
    fn name(&self) -> String {
        self.0.name().to_owned()
    }
    /// The factory name (`String`, `List`, `Struct`, ...).
    #[getter]
    fn factory(&self) -> &'static str {
        self.0.factory()
    }
    /// The serialized signature as JSON text; equal for structurally equal types.
    #[getter]
    fn key(&self) -> String {
        type_key(&self.0)
    }
    /// Struct fields: `(name, type, required, default value or None)`.
    fn fields(&self) -> Vec<(String, PyTy, bool, Option<PyVal>)> {
        self.0
            .fields()
            .map(|f| {
                (
                    f.name().to_owned(),
                    PyTy(f.ty().clone()),
                    f.required(),
                    f.default().cloned().map(PyVal),
                )
            })
            .collect()
    }
    /// The element type of a list.
    fn element(&self) -> Option<PyTy> {
        self.0.element().cloned().map(PyTy)
    }
    /// The key and value types of a map.
    fn key_value(&self) -> Option<(PyTy, PyTy)> {
        self.0
            .key_value()
            .map(|(k, v)| (PyTy(k.clone()), PyTy(v.clone())))
    }
    /// The values of an enumeration.
    fn enum_values(&self) -> Option<Vec<String>> {
        self.0
            .enum_values()
            .map(|v| v.iter().map(|s| s.to_string()).collect())
    }
    /// The alternatives of a choice.
    fn alternatives(&self) -> Option<Vec<PyTy>> {
        self.0
            .alternatives()
            .map(|a| a.iter().cloned().map(PyTy).collect())
    }
    /// Builds a value of this type (`T(value)`).
    fn instantiate(&self, py: Python<'_>, value: &Bound<'_, PyAny>) -> PyResult<PyVal> {
        let raw = to_raw(value)?;
        self.0
            .instantiate(raw)
            .map(PyVal)
            .map_err(|e| build_err(py, e))
    }
    /// `coerce(value)`: the value in this scalar type's Python form.
    fn coerce(&self, py: Python<'_>, value: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        let raw = self.0.coerce(to_raw(value)?).map_err(|e| eval_err(py, e))?;
        raw_to_py(py, &raw)
    }
    /// Builds a struct value from keyword arguments and positional mappings.
    fn instantiate_struct(
        &self,
        py: Python<'_>,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<PyVal> {
        let mut pairs = Vec::new();
        for arg in args.iter() {
            match to_raw(&arg)? {
                Raw::Map(p) => pairs.extend(p),
                _ => {
                    return Err(build_err(
                        py,
                        BuildError::NotMapping(arg.str()?.to_string()),
                    ));
                }
            }
        }
        if let Some(kw) = kwargs {
            for (k, v) in kw.iter() {
                pairs.push((to_raw(&k)?, to_raw(&v)?));
            }
        }
        self.0
            .instantiate(Raw::Map(pairs))
            .map(PyVal)
            .map_err(|e| build_err(py, e))
    }
    /// `json_loads`: a value from JSON text, unknown keys dropped unless `strict`.
    #[pyo3(signature = (text, strict = false))]
    fn json_loads(&self, py: Python<'_>, text: &str, strict: bool) -> PyResult<PyVal> {
        self.0
            .json_loads(text, strict)
            .map(PyVal)
            .map_err(|e| build_err(py, e))
    }
    /// `serialize_type()`: the signature as Python tuples (`('List', ('Integer',))`).
    fn signature<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        json_to_signature(py, self.0.serialize())
    }
    /// The signature as `Type.dump` writes it (Python's `json.dumps` format).
    fn signature_text(&self) -> String {
        self.0.signature_text()
    }
    /// This type and the types it is built from, each once, inner ones first.
    fn nested(&self) -> Vec<PyTy> {
        self.0.nested().into_iter().map(PyTy).collect()
    }
    /// Whether two types are structurally the same.
    fn same_as(&self, other: &PyTy) -> bool {
        self.0.same_as(&other.0)
    }
    fn __repr__(&self) -> String {
        format!("<native type {}>", self.0.name())
    }
}

fn scopes_from(py: Python<'_>, scopes: &Bound<'_, PyList>) -> PyResult<Vec<Scope>> {
    let mut out = Vec::with_capacity(scopes.len());
    for s in scopes.iter() {
        if let Ok(v) = s.cast::<PyVal>() {
            out.push(Scope::Obj(v.get().0.clone()));
        } else if let Ok(e) = s.cast::<PyEnv>() {
            out.push(Scope::Env(e.get().0.clone()));
        } else {
            let _ = py;
            return Err(PyTypeError::new_err(format!(
                "a scope must be a native Value or Env, got {}",
                s.repr()?
            )));
        }
    }
    Ok(out)
}

#[pymethods]
impl PyVal {
    /// The value's type.
    #[getter]
    fn ty(&self) -> PyTy {
        PyTy(self.0.ty().clone())
    }
    /// The serialized signature of the value's type (JSON text).
    #[getter]
    fn type_key(&self) -> String {
        type_key(self.0.ty())
    }
    /// `bind(*scopes)`: the scopes take priority; the last one wins.
    fn bind(&self, py: Python<'_>, scopes: &Bound<'_, PyList>) -> PyResult<PyVal> {
        Ok(PyVal(self.0.bind(scopes_from(py, scopes)?)))
    }
    /// `in_scope(*scopes)`: the scopes come after existing ones; the first one wins.
    fn in_scope(&self, py: Python<'_>, scopes: &Bound<'_, PyList>) -> PyResult<PyVal> {
        Ok(PyVal(self.0.in_scope(scopes_from(py, scopes)?)))
    }
    /// `(interpolated value, unbound reference addresses)`.
    fn interpolate(&self, py: Python<'_>) -> PyResult<(PyVal, Vec<String>)> {
        let (v, refs) = self.0.interpolate().map_err(|e| eval_err(py, e))?;
        Ok((PyVal(v), refs.iter().map(Ref::address).collect()))
    }
    /// `(ok, message)` of `check()`.
    fn check(&self, py: Python<'_>) -> PyResult<(bool, String)> {
        match self.0.check().map_err(|e| eval_err(py, e))? {
            TypeCheck::Ok => Ok((true, String::new())),
            TypeCheck::Failed(m) => Ok((false, m)),
        }
    }
    /// Every failing leaf of the check, with its path.
    fn check_all(&self, py: Python<'_>) -> PyResult<Vec<(String, String)>> {
        self.0.check_all().map_err(|e| eval_err(py, e))
    }
    /// `get()`: raw data.
    fn get(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        raw_to_py(py, &self.0.get())
    }
    /// The stored raw data of a scalar (or choice), uninterpolated.
    fn raw(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        match self.0.scalar_raw() {
            Some(r) => raw_to_py(py, r),
            None => raw_to_py(py, &self.0.get()),
        }
    }
    /// `json_dumps()`.
    fn json_dumps(&self, py: Python<'_>) -> PyResult<String> {
        self.0.json_dumps().map_err(|e| eval_err(py, e))
    }
    /// `repr()`.
    fn repr(&self, py: Python<'_>) -> PyResult<String> {
        self.0.repr().map_err(|e| eval_err(py, e))
    }
    /// `str()`.
    fn str(&self, py: Python<'_>) -> PyResult<String> {
        self.0.py_str().map_err(|e| eval_err(py, e))
    }
    /// Pystachio equality.
    fn eq(&self, py: Python<'_>, other: &PyVal) -> PyResult<bool> {
        self.0.try_eq(&other.0).map_err(|e| eval_err(py, e))
    }
    /// A hash consistent with equality.
    fn hash(&self) -> u64 {
        let mut h = DefaultHasher::new();
        self.0.hash(&mut h);
        h.finish()
    }
    /// `find(address)`: the value the reference names, in its scopes and not interpolated.
    /// A failed lookup returns `(kind, message)` instead, kind being `naming`, `not_found`,
    /// `unnamable` or `index`, so that Python raises its own `Namable` errors.
    fn find(&self, py: Python<'_>, address: &str) -> PyResult<Py<PyAny>> {
        let r = Ref::parse(address).map_err(|e| eval_err(py, EvalError::InvalidRef(e)))?;
        let e = match self.0.find(&r) {
            Ok(v) => return Ok(Py::new(py, PyVal(v))?.into_any()),
            Err(FindError::Eval(e)) => return Err(eval_err(py, e)),
            Err(e) => e,
        };
        let kind = match &e {
            FindError::Naming { .. } => "naming",
            FindError::NotFound { .. } => "not_found",
            FindError::Unnamable(_) => "unnamable",
            _ => "index",
        };
        Ok((kind, e.to_string()).into_pyobject(py)?.into_any().unbind())
    }
    /// `scopes()`: a native value for each object scope, a native environment for each
    /// environment.
    fn scopes(&self, py: Python<'_>) -> PyResult<Vec<Py<PyAny>>> {
        let mut out = Vec::new();
        for s in self.0.scopes() {
            out.push(match s {
                Scope::Obj(v) => Py::new(py, PyVal(v))?.into_any(),
                Scope::Env(e) => Py::new(py, PyEnv(e))?.into_any(),
            });
        }
        Ok(out)
    }
    /// A struct field interpolated in the struct's scopes, `None` when unset.
    fn field(&self, py: Python<'_>, name: &str) -> PyResult<Option<PyVal>> {
        Ok(self.0.field(name).map_err(|e| eval_err(py, e))?.map(PyVal))
    }
    /// A struct field as stored, `None` when unset.
    fn raw_field(&self, name: &str) -> Option<PyVal> {
        self.0.raw_field(name).cloned().map(PyVal)
    }
    /// Whether a struct field is set.
    fn has(&self, name: &str) -> bool {
        self.0.has(name)
    }
    /// A copy with fields replaced (`Empty` unsets).
    fn with_fields(&self, py: Python<'_>, updates: &Bound<'_, PyDict>) -> PyResult<PyVal> {
        let mut pairs = Vec::with_capacity(updates.len());
        for (k, v) in updates.iter() {
            pairs.push((k.extract::<String>()?, to_raw(&v)?));
        }
        self.0
            .with_fields(pairs)
            .map(PyVal)
            .map_err(|e| build_err(py, e))
    }
    /// List elements as stored.
    fn elements(&self) -> Vec<PyVal> {
        self.0.elements().iter().cloned().map(PyVal).collect()
    }
    /// Map pairs as stored.
    fn pairs(&self) -> Vec<(PyVal, PyVal)> {
        self.0
            .pairs()
            .iter()
            .map(|(k, v)| (PyVal(k.clone()), PyVal(v.clone())))
            .collect()
    }
    /// The value as JSON text after interpolation (`json.dumps(get())` of the interpolated
    /// value, compact).
    fn to_json(&self, py: Python<'_>) -> PyResult<String> {
        Ok(self.0.to_json().map_err(|e| eval_err(py, e))?.to_string())
    }
    fn __repr__(&self) -> String {
        format!("{:?}", self.0)
    }
}

/// The engine handle behind a facade object: `_v` of an `Object`, `_env` of an
/// `Environment` (or the handle itself).
pub(crate) fn native_scope(obj: &Bound<'_, PyAny>) -> PyResult<Option<Scope>> {
    if let Ok(v) = obj.cast::<PyVal>() {
        return Ok(Some(Scope::Obj(v.get().0.clone())));
    }
    if let Ok(e) = obj.cast::<PyEnv>() {
        return Ok(Some(Scope::Env(e.get().0.clone())));
    }
    for handle in ["_v", "_env"] {
        if let Ok(h) = obj.getattr(handle) {
            if let Ok(v) = h.cast::<PyVal>() {
                return Ok(Some(Scope::Obj(v.get().0.clone())));
            }
            if let Ok(e) = h.cast::<PyEnv>() {
                return Ok(Some(Scope::Env(e.get().0.clone())));
            }
        }
    }
    Ok(None)
}

/// Converts a Python value into an environment entry: strings and numbers (bound as text),
/// pystachio objects (mounted), environments and dicts (flattened under the key).
fn env_input(obj: &Bound<'_, PyAny>) -> PyResult<EnvInput> {
    if let Ok(s) = obj.cast::<PyString>() {
        return Ok(EnvInput::Str(s.to_str()?.to_owned()));
    }
    if obj.is_instance_of::<PyBool>() {
        return Ok(EnvInput::Bool(obj.extract()?));
    }
    if obj.is_instance_of::<PyInt>() {
        return Ok(match obj.extract::<i64>() {
            Ok(i) => EnvInput::Int(i),
            Err(_) => EnvInput::Str(obj.str()?.to_string()),
        });
    }
    if obj.is_instance_of::<PyFloat>() {
        return Ok(EnvInput::Float(obj.extract()?));
    }
    if let Ok(d) = obj.cast::<PyDict>() {
        return Ok(EnvInput::Dict(dict_entries(d)?));
    }
    match native_scope(obj)? {
        Some(Scope::Obj(v)) => Ok(EnvInput::Obj(v)),
        Some(Scope::Env(e)) => Ok(EnvInput::Env(e)),
        None => Err(PyValueError::new_err(format!(
            "Environment values must be strings, numbers, Objects or other Environments. Got {} instead.",
            obj.get_type().repr()?
        ))),
    }
}

/// A dict's entries as environment inputs.
fn dict_entries(d: &Bound<'_, PyDict>) -> PyResult<Vec<(String, EnvInput)>> {
    let mut entries = Vec::with_capacity(d.len());
    for (k, v) in d.iter() {
        entries.push((env_key(&k)?, env_input(&v)?));
    }
    Ok(entries)
}

/// The address of an environment key: a string, or a `Ref` (by its address).
fn env_key(key: &Bound<'_, PyAny>) -> PyResult<String> {
    if let Ok(s) = key.cast::<PyString>() {
        return Ok(s.to_str()?.to_owned());
    }
    if let Some(reg) = registered(key.py())
        && reg.is_ref(key)?
    {
        return key.call_method0("address")?.extract();
    }
    Err(eval_err(
        key.py(),
        EvalError::InvalidRef(InvalidRef(format!("Invalid address: {}", key.repr()?))),
    ))
}

#[pymethods]
impl PyEnv {
    /// An environment from `(address, value)` pairs; values are strings, numbers, native
    /// values or environments (flattened under the address).
    #[new]
    fn new(py: Python<'_>, pairs: Vec<(String, Bound<'_, PyAny>)>) -> PyResult<PyEnv> {
        let mut inputs = Vec::with_capacity(pairs.len());
        for (k, v) in pairs {
            inputs.push((k, env_input(&v)?));
        }
        Env::from_pairs(inputs)
            .map(PyEnv)
            .map_err(|e| build_err(py, e))
    }
    /// `Environment(*sources)`: dicts (nested dicts flattened into longer addresses) and other
    /// environments, merged in order, later entries replacing earlier ones.
    #[staticmethod]
    fn merged(py: Python<'_>, sources: &Bound<'_, PyList>) -> PyResult<PyEnv> {
        let mut envs = Vec::with_capacity(sources.len());
        for source in sources.iter() {
            if let Ok(d) = source.cast::<PyDict>() {
                envs.push(Env::from_pairs(dict_entries(d)?).map_err(|e| build_err(py, e))?);
            } else if let Some(Scope::Env(e)) = native_scope(&source)? {
                envs.push(e);
            } else {
                return Err(PyValueError::new_err(format!(
                    "Environment expects dict or Environment, got {}",
                    source.repr()?
                )));
            }
        }
        Ok(PyEnv(match envs.len() {
            1 => envs.remove(0),
            _ => Env::merge(envs.iter()),
        }))
    }
    /// What `address` names: a bound string, a native value, or `None`.
    fn find(&self, py: Python<'_>, address: &str) -> PyResult<Option<Py<PyAny>>> {
        let r = Ref::parse(address).map_err(|e| eval_err(py, EvalError::InvalidRef(e)))?;
        Ok(match self.0.get(&r).map_err(|e| eval_err(py, e))? {
            None => None,
            Some(EnvValue::Str(s)) => Some(PyString::new(py, &s).into_any().unbind()),
            Some(EnvValue::Obj(o)) => Some(Py::new(py, PyVal(o))?.into_any()),
        })
    }
    /// The entries as `(address, str or native value)`.
    fn entries(&self, py: Python<'_>) -> PyResult<Vec<(String, Py<PyAny>)>> {
        let mut out = Vec::with_capacity(self.0.len());
        for (k, v) in self.0.entries() {
            let v: Py<PyAny> = match v {
                EnvValue::Str(s) => PyString::new(py, s).into_any().unbind(),
                EnvValue::Obj(o) => Py::new(py, PyVal(o.clone()))?.into_any(),
            };
            out.push((k.address(), v));
        }
        Ok(out)
    }
    /// Number of entries.
    fn __len__(&self) -> usize {
        self.0.len()
    }
}

/// `str()` of what an environment binding becomes: strings as they are, numbers as Python
/// prints them (`Environment.wrap` of a scalar).
#[pyfunction]
fn binding_text(value: &Bound<'_, PyAny>) -> PyResult<String> {
    match env_input(value)? {
        EnvInput::Str(s) => Ok(s),
        EnvInput::Int(i) => Ok(i.to_string()),
        EnvInput::Float(f) => Ok(aurora_config::pystachio::pyfmt::py_float(f)),
        EnvInput::Bool(b) => Ok(if b { "True" } else { "False" }.to_owned()),
        _ => Err(PyValueError::new_err(format!(
            "Environment values must be strings, numbers, Objects or other Environments. Got {} instead.",
            value.get_type().repr()?
        ))),
    }
}

/// Registers the Python classes the engine raises and builds.
#[pyfunction]
#[expect(
    clippy::too_many_arguments,
    reason = "one keyword per registered class"
)]
fn configure(
    py: Python<'_>,
    coercion_error: Py<PyType>,
    uninterpolatable: Py<PyType>,
    invalid_ref: Py<PyType>,
    is_not_mapping: Py<PyType>,
    frozendict: Py<PyType>,
    empty: Py<PyAny>,
    object_base: Py<PyType>,
    wrap: Py<PyAny>,
    ref_from_address: Py<PyAny>,
    ref_class: Py<PyType>,
    namable_error: Py<PyType>,
) {
    // A second configuration (a reloaded package) keeps the first; the classes are the same.
    let _ = REGISTERED.set(
        py,
        Registered {
            coercion_error,
            uninterpolatable,
            invalid_ref,
            is_not_mapping,
            frozendict,
            empty,
            object_base,
            wrap,
            ref_from_address,
            ref_class,
            namable_error,
        },
    );
}

/// Parses a reference address (`a.b[c]`) with the engine's grammar, for `Ref.from_address`.
/// Returns the components as `(is_dereference, value)`; a bad address raises the registered
/// `Ref.InvalidRefError` with pystachio's message.
#[pyfunction]
fn parse_ref(py: Python<'_>, address: &str) -> PyResult<Vec<(bool, String)>> {
    let parsed = Ref::parse(address).map_err(|e| eval_err(py, EvalError::InvalidRef(e)))?;
    Ok(parsed
        .components()
        .iter()
        .map(|c| (matches!(c, Component::Deref(_)), c.value().to_owned()))
        .collect())
}

/// A serialized type read from JSON text, in Python form (arrays as tuples, objects as
/// frozendicts): `TypeFactory.load_json`/`load_file`.
#[pyfunction]
fn signature_from_json<'py>(py: Python<'py>, text: &str) -> PyResult<Bound<'py, PyAny>> {
    let json: serde_json::Value =
        serde_json::from_str(text).map_err(|e| PyValueError::new_err(e.to_string()))?;
    json_to_signature(py, &json)
}

/// A serialized type read from JSON data (lists for tuples), in signature form:
/// `TypeFactory.load_json`.
#[pyfunction]
fn signature_from_data<'py>(
    py: Python<'py>,
    data: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    json_to_signature(py, &signature_to_json(data)?)
}

/// The Aurora schema's struct types by name.
#[pyfunction]
fn schema_types() -> Vec<(&'static str, PyTy)> {
    let s = schema::schema();
    vec![
        ("ThermosContext", PyTy(s.thermos_context.clone())),
        ("MesosContext", PyTy(s.mesos_context.clone())),
        ("Resources", PyTy(s.resources.clone())),
        ("Constraint", PyTy(s.constraint.clone())),
        ("Process", PyTy(s.process.clone())),
        ("Task", PyTy(s.task.clone())),
        ("UpdateConfig", PyTy(s.update_config.clone())),
        ("HealthCheckConfig", PyTy(s.health_check_config.clone())),
        ("Announcer", PyTy(s.announcer.clone())),
        ("MesosTaskInstance", PyTy(s.mesos_task_instance.clone())),
        ("MesosJob", PyTy(s.job.clone())),
    ]
}

/// `Service`: a job with `service=True`.
#[pyfunction]
fn service() -> PyVal {
    PyVal(schema::schema().service.clone())
}

/// `order(*processes_or_names)`.
#[pyfunction]
fn order(py: Python<'_>, items: &Bound<'_, PyList>) -> PyResult<Vec<PyVal>> {
    let mut out = Vec::with_capacity(items.len());
    for it in items.iter() {
        if let Ok(s) = it.cast::<PyString>() {
            out.push(OrderItem::Name(s.to_str()?.to_owned()));
        } else {
            match to_raw(&it)? {
                Raw::Value(v) if v.ty().is_struct() => out.push(OrderItem::Process(v)),
                Raw::Value(v) => {
                    out.push(OrderItem::Name(v.py_str().map_err(|e| eval_err(py, e))?))
                }
                other => out.push(OrderItem::Name(other.py_str())),
            }
        }
    }
    let cs = schema::order(&out).map_err(|e| helper_err(py, e))?;
    Ok(cs.into_iter().map(PyVal).collect())
}

/// `SimpleTask(name, command)`.
#[pyfunction]
fn simple_task(py: Python<'_>, name: &str, command: &str) -> PyResult<PyVal> {
    schema::simple_task(name, command)
        .map(PyVal)
        .map_err(|e| helper_err(py, e))
}

/// `SequentialTask(task)`: the task with its processes ordered.
#[pyfunction]
fn sequential_task(py: Python<'_>, task: &PyVal) -> PyResult<PyVal> {
    schema::sequential_task(Raw::Value(task.0.clone()))
        .map(PyVal)
        .map_err(|e| helper_err(py, e))
}

fn tasks_of(tasks: &Bound<'_, PyList>) -> PyResult<Vec<Value>> {
    tasks
        .iter()
        .map(|t| match to_raw(&t)? {
            Raw::Value(v) => Ok(v),
            _ => Err(PyTypeError::new_err("expected Task objects")),
        })
        .collect()
}

/// `Tasks.combine(*tasks, **kw)`.
#[pyfunction]
fn combine_tasks(
    py: Python<'_>,
    tasks: &Bound<'_, PyList>,
    extra: &Bound<'_, PyDict>,
) -> PyResult<PyVal> {
    let extra = to_raw(extra.as_any())?;
    schema::combine_tasks(&tasks_of(tasks)?, extra)
        .map(PyVal)
        .map_err(|e| helper_err(py, e))
}

/// `Tasks.concat(*tasks, **kw)`.
#[pyfunction]
fn concat_tasks(
    py: Python<'_>,
    tasks: &Bound<'_, PyList>,
    extra: &Bound<'_, PyDict>,
) -> PyResult<PyVal> {
    let extra = to_raw(extra.as_any())?;
    schema::concat_tasks(&tasks_of(tasks)?, extra)
        .map(PyVal)
        .map_err(|e| helper_err(py, e))
}

/// `(job_key, raw_json text, [(path, message)])`.
type Evaluation = (String, String, Vec<(String, String)>);

/// Evaluates a job as `aurora create` does: `-E` bindings (`NAME=VALUE`), validation and
/// interpolation. Returns `(job_key, raw_json text, problems)`; problems are `(path, message)`
/// and the JSON is empty when there are any.
#[pyfunction]
#[pyo3(signature = (job, bindings = Vec::new()))]
fn evaluate_job(job: &PyVal, bindings: Vec<String>) -> PyResult<Evaluation> {
    let mut parsed = Vec::with_capacity(bindings.len());
    for b in &bindings {
        parsed.push(schema::parse_binding(b).map_err(|e| PyValueError::new_err(e.to_string()))?);
    }
    let bound = schema::bind_all(std::slice::from_ref(&job.0), &parsed)
        .map_err(|e| PyValueError::new_err(e.to_string()))?;
    let Some(job) = bound.into_iter().next() else {
        return Err(PyValueError::new_err("no job"));
    };
    match schema::evaluate_job(&job) {
        Ok(ev) => Ok((ev.job_key, ev.raw_json.to_string(), Vec::new())),
        Err(problems) => Ok((
            String::new(),
            String::new(),
            problems.into_iter().map(|p| (p.path, p.message)).collect(),
        )),
    }
}

/// The native half of the `aurora` Python package.
#[pymodule]
pub mod _native {
    #[pymodule_export]
    use super::{PyEnv, PyTy, PyVal};
    #[pymodule_export]
    use super::{
        binding_text, combine_tasks, concat_tasks, configure, evaluate_job, order, parse_ref,
        schema_types, sequential_task, service, signature_from_data, signature_from_json,
        simple_task,
    };
    #[pymodule_export]
    use crate::templates::{PyRefPattern, join, resolve, split};
}
