//! Values: immutable, shared trees of typed data with their scope chains.

use std::hash::{Hash, Hasher};
use std::sync::{Arc, OnceLock};

use num_bigint::BigInt;
use num_traits::{FromPrimitive, ToPrimitive, Zero};

use super::error::{BuildError, EvalError, FindError, InvalidRef};
use super::mustache::{self, Template};
use super::pyfmt::{py_float, py_parse_bigint, py_parse_float, py_parse_int, py_repr_str};
use super::refs::{Component, Ref};
use super::scope::{Chain, Found, Link, Scope};
use super::types::{Type, TypeKind};

/// Plain data: what values are built from (`klazz(value)`) and what `get()` returns. It mirrors
/// the Python values pystachio handles. `Empty` and `Value` appear only in inputs.
#[derive(Clone, Debug)]
pub enum Raw {
    /// Python `None` (JSON `null`).
    None,
    /// The `Empty` sentinel: unsets a struct field.
    Empty,
    /// A boolean.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// An integer beyond 64 bits (Python integers are unbounded); [`Raw::int`] builds an
    /// `Int` instead when the value fits.
    BigInt(Arc<BigInt>),
    /// A float.
    Float(f64),
    /// A string (possibly a template).
    Str(Arc<str>),
    /// A sequence.
    List(Vec<Raw>),
    /// A mapping, in insertion order.
    Map(Vec<(Raw, Raw)>),
    /// An existing value (kept as is where its type fits).
    Value(Value),
    /// Data of a kind no type accepts (a class, an arbitrary object), kept so that coercing
    /// it fails with the type's coercion error, as pystachio's lazy scalars do, rather than
    /// failing at construction.
    Foreign(Foreign),
}

/// An input the engine cannot interpret: its text (Python `str()`), for error messages, and
/// the caller's own handle on it, which `get()` gives back unchanged.
#[derive(Clone)]
pub struct Foreign {
    text: Arc<str>,
    handle: Arc<dyn std::any::Any + Send + Sync>,
}

impl Foreign {
    /// Wraps `handle`, which reads as `text`.
    pub fn new(text: impl AsRef<str>, handle: Arc<dyn std::any::Any + Send + Sync>) -> Foreign {
        Foreign {
            text: Arc::from(text.as_ref()),
            handle,
        }
    }
    /// The text the input reads as.
    pub fn text(&self) -> &str {
        &self.text
    }
    /// The caller's handle.
    pub fn handle(&self) -> &Arc<dyn std::any::Any + Send + Sync> {
        &self.handle
    }
}

impl std::fmt::Debug for Foreign {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Foreign({})", self.text)
    }
}

impl Raw {
    /// A string.
    pub fn str(s: impl AsRef<str>) -> Raw {
        Raw::Str(Arc::from(s.as_ref()))
    }

    /// A mapping with string keys.
    pub fn map<K: AsRef<str>>(pairs: impl IntoIterator<Item = (K, Raw)>) -> Raw {
        Raw::Map(pairs.into_iter().map(|(k, v)| (Raw::str(k), v)).collect())
    }

    /// An integer of any size: `Int` when it fits in 64 bits, `BigInt` otherwise.
    pub fn int(i: BigInt) -> Raw {
        match i64::try_from(&i) {
            Ok(small) => Raw::Int(small),
            Err(_) => Raw::BigInt(Arc::new(i)),
        }
    }

    /// The string, if this is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Raw::Str(s) => Some(s),
            _ => None,
        }
    }

    /// Python `str()` of the raw value.
    pub fn py_str(&self) -> String {
        match self {
            Raw::Str(s) => s.to_string(),
            other => other.py_repr(),
        }
    }

    /// Python `repr()` of the raw value.
    pub fn py_repr(&self) -> String {
        match self {
            Raw::None => "None".into(),
            Raw::Empty => "<class 'pystachio.composite.Empty'>".into(),
            Raw::Bool(b) => if *b { "True" } else { "False" }.into(),
            Raw::Int(i) => i.to_string(),
            Raw::BigInt(i) => i.to_string(),
            Raw::Float(f) => py_float(*f),
            Raw::Str(s) => py_repr_str(s),
            Raw::List(l) => {
                let parts: Vec<String> = l.iter().map(Raw::py_repr).collect();
                format!("[{}]", parts.join(", "))
            }
            Raw::Map(m) => {
                let parts: Vec<String> = m
                    .iter()
                    .map(|(k, v)| format!("{}: {}", k.py_repr(), v.py_repr()))
                    .collect();
                format!("{{{}}}", parts.join(", "))
            }
            Raw::Value(v) => v.repr().unwrap_or_else(|e| format!("<{e}>")),
            Raw::Foreign(f) => f.text.to_string(),
        }
    }
}

impl PartialEq for Raw {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Raw::None, Raw::None) | (Raw::Empty, Raw::Empty) => true,
            (Raw::Str(a), Raw::Str(b)) => a == b,
            (Raw::List(a), Raw::List(b)) => a == b,
            (Raw::Map(a), Raw::Map(b)) => a == b,
            (Raw::Value(a), Raw::Value(b)) => a == b,
            (Raw::Foreign(a), Raw::Foreign(b)) => Arc::ptr_eq(&a.handle, &b.handle),
            (Raw::BigInt(x), other) | (other, Raw::BigInt(x)) => match other {
                Raw::BigInt(y) => x == y,
                Raw::Int(i) => **x == BigInt::from(*i),
                Raw::Bool(b) => **x == BigInt::from(u8::from(*b)),
                // Python compares an int and a float exactly.
                Raw::Float(f) => f.fract() == 0.0 && BigInt::from_f64(*f).is_some_and(|g| g == **x),
                _ => false,
            },
            (a, b) => match (a.as_number(), b.as_number()) {
                (Some(x), Some(y)) => x == y,
                _ => false,
            },
        }
    }
}

impl Raw {
    fn as_number(&self) -> Option<f64> {
        match self {
            Raw::Bool(b) => Some(f64::from(u8::from(*b))),
            Raw::Int(i) => Some(*i as f64),
            Raw::BigInt(i) => i.to_f64(),
            Raw::Float(f) => Some(*f),
            _ => None,
        }
    }

    fn hash_into<H: Hasher>(&self, h: &mut H) {
        match self {
            Raw::None | Raw::Empty => 0u8.hash(h),
            Raw::Str(s) => s.hash(h),
            Raw::List(l) => l.iter().for_each(|x| x.hash_into(h)),
            Raw::Map(m) => m.iter().for_each(|(k, v)| {
                k.hash_into(h);
                v.hash_into(h);
            }),
            Raw::Value(v) => v.get().hash_into(h),
            Raw::Foreign(f) => f.text.hash(h),
            // Equal to a float only when the float holds it exactly: hash like that float then.
            Raw::BigInt(i) => match i
                .to_f64()
                .filter(|f| BigInt::from_f64(*f).as_ref() == Some(&**i))
            {
                Some(f) => Raw::Float(f).hash_into(h),
                None => i.to_signed_bytes_le().hash(h),
            },
            n => {
                let f = n.as_number().unwrap_or(0.0);
                if f.fract() == 0.0 && f.abs() < 9.2e18 {
                    (f as i64).hash(h);
                } else {
                    f.to_bits().hash(h);
                }
            }
        }
    }
}

/// The outcome of `check()`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TypeCheck {
    /// The value type-checks.
    Ok,
    /// The first failure found, with pystachio's message.
    Failed(String),
}

impl TypeCheck {
    /// Whether the check passed.
    pub fn ok(&self) -> bool {
        matches!(self, TypeCheck::Ok)
    }
    /// The failure message (empty on success).
    pub fn message(&self) -> &str {
        match self {
            TypeCheck::Ok => "",
            TypeCheck::Failed(m) => m,
        }
    }
}

impl std::fmt::Display for TypeCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TypeCheck::Ok => write!(f, "TypeCheck(OK)"),
            TypeCheck::Failed(m) => write!(f, "TypeCheck(FAILED): {m}"),
        }
    }
}

pub(crate) struct Scalar {
    pub(crate) raw: Raw,
    tpl: OnceLock<Result<Template, InvalidRef>>,
    /// `str()` of this scalar without any scopes: it depends on the node alone, and a raw field
    /// found by a reference is rendered this way once per lookup otherwise.
    rendered: OnceLock<Result<Arc<str>, EvalError>>,
}

impl Scalar {
    fn new(raw: Raw) -> Scalar {
        Scalar {
            raw,
            tpl: OnceLock::new(),
            rendered: OnceLock::new(),
        }
    }
}

pub(crate) enum Node {
    Scalar(Scalar),
    List(Vec<Value>),
    Map(Vec<(Value, Value)>),
    Struct(Vec<Option<Value>>),
    Choice(Raw),
}

/// A pystachio value: a typed, immutable tree with the scopes its templates resolve in.
/// Cloning, `bind` and `in_scope` share the tree.
///
/// ```
/// use aurora_config::pystachio::{Raw, Type};
/// let s = Type::string().instantiate(Raw::str("hello {{who}}")).unwrap();
/// let (v, unbound) = s.interpolate().unwrap();
/// assert_eq!(v.py_str().unwrap(), "hello {{who}}");
/// assert_eq!(unbound[0].address(), "who");
/// let bound = s.bind_pairs([("who", "world")]).unwrap();
/// assert_eq!(bound.py_str().unwrap(), "hello world");
/// ```
#[derive(Clone)]
pub struct Value {
    pub(crate) ty: Type,
    pub(crate) node: Arc<Node>,
    pub(crate) chain: Chain,
}

type Interp = (Value, Vec<Ref>);

fn merge_unique(into: &mut Vec<Ref>, more: Vec<Ref>) {
    for r in more {
        if !into.contains(&r) {
            into.push(r);
        }
    }
}

impl Type {
    /// Builds a value of this type from data (`T(value)` in pystachio). Scalars are lazy:
    /// they are stored raw and coerced only when interpolated. Structs, lists and maps build
    /// their children eagerly; an existing value of the right type is kept as is.
    pub fn instantiate(&self, raw: Raw) -> Result<Value, BuildError> {
        if let Raw::Value(v) = &raw
            && v.ty.same_as(self)
        {
            return Ok(v.clone());
        }
        let node = match &self.0.kind {
            TypeKind::String | TypeKind::Integer | TypeKind::Float | TypeKind::Boolean => {
                Node::Scalar(Scalar::new(raw))
            }
            TypeKind::Enum(vals) => {
                let probe = Value::plain(Type::string(), Node::Scalar(Scalar::new(raw.clone())));
                let (_, refs) = probe.interpolate()?;
                let ok = matches!(&raw, Raw::Str(s) if vals.iter().any(|v| v == s));
                if refs.is_empty() && !ok {
                    let values: Vec<&str> = vals.iter().map(|v| &**v).collect();
                    return Err(BuildError::EnumValue {
                        ty: self.name().to_string(),
                        values: values.join(", "),
                    });
                }
                Node::Scalar(Scalar::new(raw))
            }
            TypeKind::Choice(_) => Node::Choice(raw),
            TypeKind::List(elem) => match raw {
                Raw::List(items) => Node::List(
                    items
                        .into_iter()
                        .map(|i| elem.instantiate(i))
                        .collect::<Result<_, _>>()?,
                ),
                other => return Err(BuildError::NotSequence(other.py_repr())),
            },
            TypeKind::Map(k, v) => {
                let pairs = match raw {
                    Raw::Map(pairs) => pairs,
                    Raw::List(items) => {
                        let mut pairs = Vec::with_capacity(items.len());
                        for it in items {
                            match it {
                                Raw::List(mut kv) if kv.len() == 2 => {
                                    let val = kv.pop().unwrap_or(Raw::None);
                                    let key = kv.pop().unwrap_or(Raw::None);
                                    pairs.push((key, val));
                                }
                                other => return Err(BuildError::NotMap(other.py_repr())),
                            }
                        }
                        pairs
                    }
                    other => return Err(BuildError::NotMap(other.py_repr())),
                };
                Node::Map(
                    pairs
                        .into_iter()
                        .map(|(a, b)| Ok((k.instantiate(a)?, v.instantiate(b)?)))
                        .collect::<Result<_, BuildError>>()?,
                )
            }
            TypeKind::Struct(def) => {
                let mut fields: Vec<Option<Value>> =
                    def.fields.iter().map(|f| f.default.clone()).collect();
                match raw {
                    Raw::Map(pairs) => {
                        for (k, v) in pairs {
                            set_field(self, &mut fields, &k, v)?;
                        }
                    }
                    other => return Err(BuildError::NotMapping(other.py_str())),
                }
                Node::Struct(fields)
            }
        };
        Ok(Value::plain(self.clone(), node))
    }

    /// `raw` converted to this scalar type's form (pystachio's `coerce`): `'5'` to `5` for an
    /// `Integer`, `1` to `'1'` for a `String`. Other types take data as it is.
    pub fn coerce(&self, raw: Raw) -> Result<Raw, EvalError> {
        Ok(coerce(self, &raw)?.unwrap_or(raw))
    }

    /// Builds a struct from `(field, value)` pairs (`T(f=v, ...)`), like [`Type::instantiate`]
    /// with a mapping but without building the mapping first.
    pub fn new_struct<K: AsRef<str>>(
        &self,
        fields: impl IntoIterator<Item = (K, Raw)>,
    ) -> Result<Value, BuildError> {
        let Some(def) = self.struct_def() else {
            return Err(BuildError::NotMapping(self.name().to_string()));
        };
        let mut values: Vec<Option<Value>> = def.fields.iter().map(|f| f.default.clone()).collect();
        for (k, v) in fields {
            let k = k.as_ref();
            let idx = def
                .index_of(k)
                .ok_or_else(|| BuildError::UnknownAttribute(k.to_string()))?;
            values[idx] = match v {
                Raw::Empty => None,
                v => Some(def.fields[idx].ty.instantiate(v)?),
            };
        }
        Ok(Value::plain(self.clone(), Node::Struct(values)))
    }

    /// Loads a value from JSON text (`json_loads`). Unless `strict`, unknown keys are dropped
    /// first, but only through directly nested struct fields, as in pystachio.
    pub fn json_loads(&self, text: &str, strict: bool) -> Result<Value, BuildError> {
        let json: serde_json::Value =
            serde_json::from_str(text).map_err(|e| BuildError::Json(e.to_string()))?;
        self.from_json(&json, strict)
    }

    /// Loads a value from parsed JSON (see [`Type::json_loads`]).
    pub fn from_json(&self, json: &serde_json::Value, strict: bool) -> Result<Value, BuildError> {
        let raw = super::json::json_to_raw(json);
        let raw = if strict {
            raw
        } else {
            self.filter_against_schema(raw)
        };
        self.instantiate(raw)
    }

    /// Drops mapping keys that are not fields of this struct type, recursing into fields whose
    /// type is a struct (pystachio's `_filter_against_schema`).
    pub fn filter_against_schema(&self, raw: Raw) -> Raw {
        let Some(def) = self.struct_def() else {
            return raw;
        };
        match raw {
            Raw::Map(pairs) => Raw::Map(
                pairs
                    .into_iter()
                    .filter_map(|(k, v)| {
                        let f = def.fields.iter().find(|f| k.as_str() == Some(&f.name))?;
                        let v = if f.ty.is_struct() {
                            f.ty.filter_against_schema(v)
                        } else {
                            v
                        };
                        Some((k, v))
                    })
                    .collect(),
            ),
            other => other,
        }
    }
}

fn set_field(ty: &Type, fields: &mut [Option<Value>], key: &Raw, v: Raw) -> Result<(), BuildError> {
    let name = match key {
        Raw::Str(s) => s.clone(),
        other => return Err(BuildError::UnknownAttribute(other.py_str())),
    };
    let idx = ty
        .field_index(&name)
        .ok_or_else(|| BuildError::UnknownAttribute(name.to_string()))?;
    let def = ty
        .struct_def()
        .ok_or_else(|| BuildError::UnknownAttribute(name.to_string()))?;
    fields[idx] = match v {
        Raw::Empty => None,
        v => Some(def.fields[idx].ty.instantiate(v)?),
    };
    Ok(())
}

/// Python `str()` of a coerced scalar.
fn scalar_text(raw: &Raw) -> String {
    raw.py_str()
}

fn coerce(ty: &Type, raw: &Raw) -> Result<Option<Raw>, EvalError> {
    // Returns None when the value is already of the target form (identity coercion).
    let fail = |detail: Option<String>| {
        let src = match raw {
            Raw::Value(v) => v.py_str().unwrap_or_default(),
            other => other.py_str(),
        };
        Err(EvalError::coercion(&src, ty.name(), detail))
    };
    match &ty.0.kind {
        TypeKind::String => match raw {
            Raw::Str(_) => Ok(None),
            Raw::Int(_) | Raw::BigInt(_) | Raw::Float(_) | Raw::Bool(_) => {
                Ok(Some(Raw::str(raw.py_str())))
            }
            _ => fail(None),
        },
        TypeKind::Integer => match raw {
            Raw::Int(_) | Raw::BigInt(_) => Ok(None),
            Raw::Bool(b) => Ok(Some(Raw::Int(i64::from(*b)))),
            Raw::Float(f) => {
                if f.is_nan() {
                    fail(None)
                } else if f.is_infinite() {
                    Err(EvalError::Overflow(
                        "cannot convert float infinity to integer".into(),
                    ))
                } else if f.abs() >= 9.223_372_036_854_776e18 {
                    match BigInt::from_f64(f.trunc()) {
                        Some(i) => Ok(Some(Raw::int(i))),
                        None => fail(None),
                    }
                } else {
                    Ok(Some(Raw::Int(f.trunc() as i64)))
                }
            }
            Raw::Str(s) => match py_parse_int(s) {
                Some(i) => Ok(Some(Raw::Int(i))),
                None => match py_parse_bigint(s) {
                    Some(i) => Ok(Some(Raw::int(i))),
                    None => fail(None),
                },
            },
            _ => fail(None),
        },
        TypeKind::Float => match raw {
            Raw::Float(_) => Ok(None),
            Raw::Int(i) => Ok(Some(Raw::Float(*i as f64))),
            Raw::BigInt(i) => match i.to_f64().filter(|f| f.is_finite()) {
                Some(f) => Ok(Some(Raw::Float(f))),
                None => Err(EvalError::Overflow(
                    "int too large to convert to float".into(),
                )),
            },
            Raw::Bool(b) => Ok(Some(Raw::Float(f64::from(u8::from(*b))))),
            Raw::Str(s) => match py_parse_float(s) {
                Some(f) => Ok(Some(Raw::Float(f))),
                None => fail(None),
            },
            _ => fail(None),
        },
        TypeKind::Boolean => match raw {
            Raw::Bool(_) => Ok(None),
            Raw::Str(s) => match s.to_lowercase().as_str() {
                "true" | "1" => Ok(Some(Raw::Bool(true))),
                "false" | "0" => Ok(Some(Raw::Bool(false))),
                _ => fail(None),
            },
            Raw::Int(i) => Ok(Some(Raw::Bool(*i != 0))),
            Raw::BigInt(i) => Ok(Some(Raw::Bool(!i.is_zero()))),
            Raw::Float(f) => Ok(Some(Raw::Bool(*f != 0.0))),
            _ => fail(None),
        },
        TypeKind::Enum(vals) => match raw {
            Raw::Str(s) if vals.iter().any(|v| v == s) => Ok(None),
            _ => {
                let values: Vec<&str> = vals.iter().map(|v| &**v).collect();
                fail(Some(format!(
                    "{} is not one of {}",
                    raw.py_str(),
                    values.join(", ")
                )))
            }
        },
        _ => Ok(None),
    }
}

fn checker(ty: &Type, raw: &Raw) -> TypeCheck {
    let ok = match &ty.0.kind {
        TypeKind::String => matches!(raw, Raw::Str(_)),
        TypeKind::Integer => matches!(raw, Raw::Int(_) | Raw::BigInt(_) | Raw::Bool(_)),
        TypeKind::Float => matches!(
            raw,
            Raw::Int(_) | Raw::BigInt(_) | Raw::Float(_) | Raw::Bool(_)
        ),
        TypeKind::Boolean => matches!(raw, Raw::Bool(_)),
        TypeKind::Enum(vals) => matches!(raw, Raw::Str(s) if vals.iter().any(|v| v == s)),
        _ => true,
    };
    if ok {
        return TypeCheck::Ok;
    }
    let what = match &ty.0.kind {
        TypeKind::String => "not a string".to_string(),
        TypeKind::Integer => "not an integer".to_string(),
        TypeKind::Float => "not a float".to_string(),
        TypeKind::Boolean => "not a boolean".to_string(),
        TypeKind::Enum(vals) => {
            let values: Vec<&str> = vals.iter().map(|v| &**v).collect();
            format!("not in the enumeration ({})", values.join(", "))
        }
        _ => String::new(),
    };
    TypeCheck::Failed(format!("{} {what}", raw.py_repr()))
}

impl Value {
    pub(crate) fn plain(ty: Type, node: Node) -> Value {
        Value {
            ty,
            node: Arc::new(node),
            chain: Chain::default(),
        }
    }

    /// The value's type.
    pub fn ty(&self) -> &Type {
        &self.ty
    }

    /// Whether the value can be searched by path (struct, list or map).
    pub fn is_namable(&self) -> bool {
        matches!(&*self.node, Node::Struct(_) | Node::List(_) | Node::Map(_))
    }

    fn with_chain(&self, chain: Chain) -> Value {
        Value {
            ty: self.ty.clone(),
            node: self.node.clone(),
            chain,
        }
    }

    /// This value evaluated inside `parent` (appended after its own scopes).
    pub(crate) fn scoped(&self, parent: &Chain) -> Value {
        self.with_chain(self.chain.concat(parent))
    }

    /// Binds scopes (pystachio `bind`): they take priority over existing bindings, and within
    /// one call the last scope wins.
    pub fn bind(&self, scopes: Vec<Scope>) -> Value {
        let new = Chain::from_scopes(scopes.into_iter().rev());
        self.with_chain(new.concat(&self.chain))
    }

    /// Places the value in scopes (pystachio `in_scope`): they come after everything already
    /// bound, the first scope winning.
    pub fn in_scope(&self, scopes: Vec<Scope>) -> Value {
        let new = Chain::from_scopes(scopes);
        self.with_chain(self.chain.concat(&new))
    }

    /// Binds string values by address (`bind(x='1')`).
    pub fn bind_pairs<K: AsRef<str>, V: AsRef<str>>(
        &self,
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Result<Value, BuildError> {
        let env = super::scope::Env::from_pairs(
            pairs
                .into_iter()
                .map(|(k, v)| (k, super::scope::EnvInput::Str(v.as_ref().into()))),
        )?;
        Ok(self.bind(vec![Scope::Env(env)]))
    }

    /// `value % env`: bind, then interpolate, keeping the interpolated value.
    pub fn bind_interpolate(&self, scopes: Vec<Scope>) -> Result<Value, EvalError> {
        Ok(self.bind(scopes).interpolate()?.0)
    }

    /// A copy without any bindings.
    pub fn unbound_copy(&self) -> Value {
        self.with_chain(Chain::default())
    }

    fn struct_chain(&self) -> Chain {
        Chain::of(Link::StructScopes(self.clone()))
    }

    /// A struct field as stored (raw, with its own bindings only); `None` if unset or unknown.
    pub fn raw_field(&self, name: &str) -> Option<&Value> {
        match &*self.node {
            Node::Struct(fields) => fields[self.ty.field_index(name)?].as_ref(),
            _ => None,
        }
    }

    /// Whether a struct field is set (`has_f()`): a default or a template counts as set.
    pub fn has(&self, name: &str) -> bool {
        self.raw_field(name).is_some()
    }

    /// A struct field interpolated in the struct's scopes (`x.f()`); `None` when unset.
    pub fn field(&self, name: &str) -> Result<Option<Value>, EvalError> {
        match self.raw_field(name) {
            None => Ok(None),
            Some(f) => Ok(Some(
                f.keep_choice(f.scoped(&self.struct_chain()).interpolate()?)
                    .0,
            )),
        }
    }

    /// A copy with some fields replaced (`x(f=v)`); `Raw::Empty` unsets a field. Bindings and
    /// field order are kept.
    pub fn with_fields<K: AsRef<str>>(
        &self,
        updates: impl IntoIterator<Item = (K, Raw)>,
    ) -> Result<Value, BuildError> {
        let Node::Struct(fields) = &*self.node else {
            return Err(BuildError::NotMapping(self.ty.name().to_string()));
        };
        let mut fields = fields.clone();
        for (k, v) in updates {
            set_field(&self.ty, &mut fields, &Raw::str(k.as_ref()), v)?;
        }
        Ok(Value {
            ty: self.ty.clone(),
            node: Arc::new(Node::Struct(fields)),
            chain: self.chain.clone(),
        })
    }

    /// The elements of a list (as stored).
    pub fn elements(&self) -> &[Value] {
        match &*self.node {
            Node::List(v) => v,
            _ => &[],
        }
    }

    /// The pairs of a map (as stored).
    pub fn pairs(&self) -> &[(Value, Value)] {
        match &*self.node {
            Node::Map(v) => v,
            _ => &[],
        }
    }

    /// The raw stored data of a scalar (or choice).
    pub fn scalar_raw(&self) -> Option<&Raw> {
        match &*self.node {
            Node::Scalar(s) => Some(&s.raw),
            Node::Choice(r) => Some(r),
            _ => None,
        }
    }

    /// `get()`: the raw data, neither interpolated nor coerced (a choice is unwrapped).
    pub fn get(&self) -> Raw {
        match &*self.node {
            Node::Scalar(s) => s.raw.clone(),
            Node::List(v) => Raw::List(v.iter().map(Value::get).collect()),
            Node::Map(pairs) => {
                let mut out: Vec<(Raw, Raw)> = Vec::with_capacity(pairs.len());
                for (k, v) in pairs {
                    let (k, v) = (k.get(), v.get());
                    match out.iter_mut().find(|(ek, _)| *ek == k) {
                        Some(slot) => slot.1 = v,
                        None => out.push((k, v)),
                    }
                }
                Raw::Map(out)
            }
            Node::Struct(fields) => Raw::Map(
                self.ty
                    .fields()
                    .zip(fields.iter())
                    .filter_map(|(f, v)| Some((Raw::str(f.name()), v.as_ref()?.get())))
                    .collect(),
            ),
            Node::Choice(raw) => match self.unwrap_choice() {
                Ok((v, _)) => v.get(),
                Err(_) => raw.clone(),
            },
        }
    }

    /// Resolves every template in the value. Returns the interpolated value and the references
    /// left unbound (in textual order with duplicates for a scalar, de-duplicated for
    /// containers). Cycles fail with `Unable to interpolate ...!  Maximum replacements reached.`
    pub fn interpolate(&self) -> Result<Interp, EvalError> {
        match &*self.node {
            Node::Scalar(s) => self.interpolate_scalar(s),
            Node::Struct(fields) => {
                let scopes = self.struct_chain();
                let mut unbound = Vec::new();
                let mut out = Vec::with_capacity(fields.len());
                for f in fields {
                    out.push(match f {
                        None => None,
                        Some(v) => {
                            let (iv, ub) = v.keep_choice(v.interpolate_in(&scopes)?);
                            merge_unique(&mut unbound, ub);
                            Some(iv)
                        }
                    });
                }
                Ok((Value::plain(self.ty.clone(), Node::Struct(out)), unbound))
            }
            Node::List(items) => {
                let mut unbound = Vec::new();
                let mut out = Vec::with_capacity(items.len());
                for v in items {
                    let (iv, ub) = v.keep_choice(v.interpolate_in(&self.chain)?);
                    merge_unique(&mut unbound, ub);
                    out.push(iv);
                }
                Ok((Value::plain(self.ty.clone(), Node::List(out)), unbound))
            }
            Node::Map(pairs) => {
                let mut unbound = Vec::new();
                let mut out = Vec::with_capacity(pairs.len());
                for (k, v) in pairs {
                    let (ik, ub) = k.keep_choice(k.interpolate_in(&self.chain)?);
                    merge_unique(&mut unbound, ub);
                    let (iv, ub) = v.keep_choice(v.interpolate_in(&self.chain)?);
                    merge_unique(&mut unbound, ub);
                    out.push((ik, iv));
                }
                Ok((Value::plain(self.ty.clone(), Node::Map(out)), unbound))
            }
            Node::Choice(_) => self.unwrap_choice(),
        }
    }

    /// The interpolation of this value as a part of a struct, list or map: a choice stays a
    /// choice there, holding the alternative it resolved to (so `unwrap()` works on what comes
    /// back), whereas a choice interpolated on its own gives the alternative itself.
    fn keep_choice(&self, (v, unbound): Interp) -> Interp {
        match &*self.node {
            Node::Choice(_) => (
                Value::plain(self.ty.clone(), Node::Choice(Raw::Value(v))),
                unbound,
            ),
            _ => (v, unbound),
        }
    }

    /// Interpolates this value as a child evaluated in `parent`, without building the scoped
    /// copy when the result cannot depend on scopes (a non-string scalar, or a string with no
    /// tags: scopes only ever matter to text that still has tags).
    fn interpolate_in(&self, parent: &Chain) -> Result<Interp, EvalError> {
        if let Node::Scalar(s) = &*self.node {
            match &s.raw {
                Raw::Str(text) => {
                    if !self.template(s, text)?.has_tags {
                        return self.interpolate_scalar(s);
                    }
                }
                _ => return self.interpolate_scalar(s),
            }
        }
        self.scoped(parent).interpolate()
    }

    /// `check()` of this value as a child evaluated in `parent` (see `interpolate_in`).
    fn check_in(&self, parent: &Chain) -> Result<TypeCheck, EvalError> {
        if let Node::Scalar(s) = &*self.node {
            return self.check_scalar(s, Some(parent));
        }
        self.scoped(parent).check()
    }

    /// `check()` of a scalar evaluated in `parent`: what `self.scoped(parent).check()` answers,
    /// without building the scoped copy or the interpolated value (a check keeps neither).
    fn check_scalar(&self, s: &Scalar, parent: Option<&Chain>) -> Result<TypeCheck, EvalError> {
        let checked = |raw: &Raw| -> Result<TypeCheck, EvalError> {
            Ok(match coerce(&self.ty, raw)? {
                None => checker(&self.ty, raw),
                Some(c) => checker(&self.ty, &c),
            })
        };
        let outcome = match &s.raw {
            Raw::Str(text) => {
                let tpl = self.template(s, text)?;
                if tpl.has_tags {
                    // The scoped copy's chain is this value's, then the parent's.
                    let mut lookup = |r: &Ref| match lookup_render(&self.chain, r)? {
                        Some(t) => Ok(Some(t)),
                        None => parent.map_or(Ok(None), |p| lookup_render(p, r)),
                    };
                    mustache::resolve(text, tpl, &mut lookup).and_then(|res| {
                        // Any text is a String: only other types need the text coerced.
                        if matches!(self.ty.0.kind, TypeKind::String) {
                            return Ok(TypeCheck::Ok);
                        }
                        let raw = Raw::Str(Arc::from(res.text));
                        if res.unbound.is_empty() {
                            checked(&raw)
                        } else {
                            Ok(checker(&self.ty, &raw))
                        }
                    })
                } else {
                    checked(&s.raw)
                }
            }
            other => checked(other),
        };
        match outcome {
            Err(e) if e.is_caught_by_check() => {
                Ok(TypeCheck::Failed(format!("Unable to interpolate: {e}")))
            }
            other => other,
        }
    }

    fn template<'a>(&self, s: &'a Scalar, text: &Arc<str>) -> Result<&'a Template, InvalidRef> {
        s.tpl
            .get_or_init(|| mustache::template_of(text))
            .as_ref()
            .map_err(Clone::clone)
    }

    fn interpolate_scalar(&self, s: &Scalar) -> Result<Interp, EvalError> {
        let Raw::Str(text) = &s.raw else {
            return Ok(match coerce(&self.ty, &s.raw)? {
                None => (self.with_chain(Chain::default()), vec![]),
                Some(c) => (
                    Value::plain(self.ty.clone(), Node::Scalar(Scalar::new(c))),
                    vec![],
                ),
            });
        };
        let tpl = self.template(s, text)?;
        if !tpl.has_tags {
            return Ok(match coerce(&self.ty, &s.raw)? {
                None => (self.clone(), vec![]),
                Some(c) => (self.make_scalar(c, self.chain.clone()), vec![]),
            });
        }
        let chain = &self.chain;
        let res = mustache::resolve(text, tpl, &mut |r: &Ref| lookup_render(chain, r))?;
        if !res.unbound.is_empty() {
            let v = self.make_scalar(Raw::str(res.text), Chain::default());
            return Ok((v, res.unbound));
        }
        let raw = Raw::str(res.text);
        let coerced = coerce(&self.ty, &raw)?.unwrap_or(raw);
        Ok((self.make_scalar(coerced, chain.clone()), vec![]))
    }

    fn make_scalar(&self, raw: Raw, chain: Chain) -> Value {
        Value {
            ty: self.ty.clone(),
            node: Arc::new(Node::Scalar(Scalar::new(raw))),
            chain,
        }
    }

    fn unwrap_choice(&self) -> Result<Interp, EvalError> {
        let (Node::Choice(raw), TypeKind::Choice(alts)) = (&*self.node, &self.ty.0.kind) else {
            return Err(EvalError::Coercion(format!(
                "{} is not a choice",
                self.ty.name()
            )));
        };
        for alt in alts {
            if let Raw::Value(v) = raw
                && v.ty.same_as(alt)
            {
                return v.scoped(&self.chain).interpolate();
            }
            let Ok(v) = alt.instantiate(raw.clone()) else {
                continue;
            };
            match v.scoped(&self.chain).interpolate() {
                Ok(r) => return Ok(r),
                Err(EvalError::Coercion(_)) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(EvalError::coercion(&raw.py_str(), self.ty.name(), None))
    }

    /// Type-checks the value. Errors other than coercion failures and cycles (an invalid
    /// `{{...}}` tag, an overflowing number) are raised, as in pystachio.
    pub fn check(&self) -> Result<TypeCheck, EvalError> {
        match &*self.node {
            Node::Scalar(s) => self.check_scalar(s, None),
            Node::Struct(fields) => {
                let scopes = self.struct_chain();
                for (f, v) in self.ty.fields().zip(fields.iter()) {
                    match v {
                        None if f.required() => {
                            return Ok(TypeCheck::Failed(format!(
                                "{}[{}] is required.",
                                self.ty.name(),
                                f.name()
                            )));
                        }
                        None => {}
                        Some(v) => {
                            if let TypeCheck::Failed(m) = v.check_in(&scopes)? {
                                return Ok(TypeCheck::Failed(format!(
                                    "{}[{}] failed: {m}",
                                    self.ty.name(),
                                    f.name()
                                )));
                            }
                        }
                    }
                }
                Ok(TypeCheck::Ok)
            }
            Node::List(items) => {
                for v in items {
                    if let TypeCheck::Failed(m) = v.check_in(&self.chain)? {
                        return Ok(TypeCheck::Failed(format!(
                            "Element in {} failed check: {m}",
                            self.ty.name()
                        )));
                    }
                }
                Ok(TypeCheck::Ok)
            }
            Node::Map(pairs) => {
                for (k, v) in pairs {
                    // The checks run in the map's scopes, but the messages render the raw
                    // key and value (their own scopes only), as pystachio does.
                    let kc = k.scoped(&self.chain).check()?;
                    let vc = v.scoped(&self.chain).check()?;
                    if let TypeCheck::Failed(m) = kc {
                        return Ok(TypeCheck::Failed(format!(
                            "{} key {} failed check: {m}",
                            self.ty.name(),
                            k.py_str()?
                        )));
                    }
                    if let TypeCheck::Failed(m) = vc {
                        return Ok(TypeCheck::Failed(format!(
                            "{}[{}] value {} failed check: {m}",
                            self.ty.name(),
                            k.py_str()?,
                            v.py_str()?
                        )));
                    }
                }
                Ok(TypeCheck::Ok)
            }
            Node::Choice(raw) => {
                let TypeKind::Choice(alts) = &self.ty.0.kind else {
                    return Ok(TypeCheck::Ok);
                };
                for alt in alts {
                    if let Raw::Value(v) = raw
                        && v.ty.same_as(alt)
                    {
                        return v.scoped(&self.chain).check();
                    }
                    let Ok(v) = alt.instantiate(raw.clone()) else {
                        continue;
                    };
                    match v.scoped(&self.chain).check() {
                        Ok(TypeCheck::Ok) => return Ok(TypeCheck::Ok),
                        Ok(_) | Err(EvalError::Coercion(_)) => continue,
                        Err(e) => return Err(e),
                    }
                }
                Ok(TypeCheck::Failed(format!(
                    "{} typecheck failed: value {} did not match any of its alternatives",
                    self.ty.name(),
                    raw.py_str()
                )))
            }
        }
    }

    /// Like [`Value::check`], but walks the whole value and returns every failing leaf with
    /// its path (`task.processes[0].max_failures`) instead of stopping at the first.
    pub fn check_all(&self) -> Result<Vec<(String, String)>, EvalError> {
        let mut out = Vec::new();
        self.check_all_into(String::new(), &mut out)?;
        Ok(out)
    }

    fn check_all_into(
        &self,
        path: String,
        out: &mut Vec<(String, String)>,
    ) -> Result<(), EvalError> {
        let join = |p: &str, f: &str| {
            if p.is_empty() {
                f.to_string()
            } else {
                format!("{p}.{f}")
            }
        };
        match &*self.node {
            Node::Struct(fields) => {
                let scopes = self.struct_chain();
                for (f, v) in self.ty.fields().zip(fields.iter()) {
                    match v {
                        None if f.required() => out.push((
                            join(&path, f.name()),
                            format!("{}[{}] is required.", self.ty.name(), f.name()),
                        )),
                        None => {}
                        // A scalar is checked in place; its path is built only if it fails.
                        Some(v) => match &*v.node {
                            Node::Scalar(s) => {
                                if let TypeCheck::Failed(m) = v.check_scalar(s, Some(&scopes))? {
                                    out.push((join(&path, f.name()), m));
                                }
                            }
                            _ => v
                                .scoped(&scopes)
                                .check_all_into(join(&path, f.name()), out)?,
                        },
                    }
                }
            }
            Node::List(items) => {
                for (i, v) in items.iter().enumerate() {
                    match &*v.node {
                        Node::Scalar(s) => {
                            if let TypeCheck::Failed(m) = v.check_scalar(s, Some(&self.chain))? {
                                out.push((format!("{path}[{i}]"), m));
                            }
                        }
                        _ => v
                            .scoped(&self.chain)
                            .check_all_into(format!("{path}[{i}]"), out)?,
                    }
                }
            }
            Node::Map(pairs) => {
                for (k, v) in pairs {
                    let k = k.scoped(&self.chain);
                    let key = k.py_str().unwrap_or_default();
                    k.check_all_into(format!("{path}[{key}]"), out)?;
                    v.scoped(&self.chain)
                        .check_all_into(format!("{path}[{key}]"), out)?;
                }
            }
            Node::Scalar(_) | Node::Choice(_) => {
                if let TypeCheck::Failed(m) = self.check()? {
                    out.push((path, m));
                }
            }
        }
        Ok(())
    }

    /// `find(ref)`: what a reference names inside this struct, list or map, placed in the
    /// scopes it is evaluated in but not interpolated (pystachio's `Namable.find`). Each step
    /// fails as pystachio's does; an empty reference names the value itself.
    ///
    /// ```
    /// use aurora_config::pystachio::{FieldSpec, Raw, Ref, Type};
    /// let t = Type::structure("P", vec![
    ///     FieldSpec::required("name", &Type::string()),
    ///     FieldSpec::optional("cmd", &Type::string()),
    ///     FieldSpec::optional("port", &Type::integer()),
    /// ]).unwrap();
    /// let p = t
    ///     .instantiate(Raw::map([("name", Raw::str("web")), ("cmd", Raw::str("run {{name}}"))]))
    ///     .unwrap();
    /// let cmd = p.find(&Ref::parse("cmd").unwrap()).unwrap();
    /// assert_eq!(cmd.get().as_str(), Some("run {{name}}"));
    /// assert_eq!(cmd.py_str().unwrap(), "run web");
    /// let missing = p.find(&Ref::parse("port").unwrap()).unwrap_err();
    /// assert_eq!(missing.to_string(), "Could not find port in object P");
    /// ```
    pub fn find(&self, r: &Ref) -> Result<Value, FindError> {
        let mut cur = self.clone();
        for c in r.components() {
            if !cur.is_namable() {
                return Err(FindError::Unnamable(cur.ty.name().to_string()));
            }
            cur = cur.find_step(c)?;
        }
        Ok(cur)
    }

    fn find_step(&self, c: &Component) -> Result<Value, FindError> {
        let ty = || self.ty.name().to_string();
        let naming = || FindError::Naming {
            ty: ty(),
            component: c.to_string(),
        };
        let not_found = || FindError::NotFound {
            name: c.value().to_string(),
            ty: ty(),
        };
        match (&*self.node, c) {
            (Node::Struct(fields), Component::Deref(name)) => {
                let field = self
                    .ty
                    .field_index(name)
                    .and_then(|i| fields.get(i)?.as_ref())
                    .ok_or_else(not_found)?;
                Ok(field.scoped(&self.struct_chain()))
            }
            (Node::List(items), Component::Index(ix)) => {
                let len = items.len() as i64;
                let i = match py_parse_int(ix) {
                    Some(i) => i,
                    // An integer beyond 64 bits is past either end.
                    None if py_parse_bigint(ix).is_some() => {
                        return Err(if ix.trim_start().starts_with('-') {
                            FindError::IndexOutOfRange
                        } else {
                            not_found()
                        });
                    }
                    None => return Err(naming()),
                };
                if i >= len {
                    return Err(not_found());
                }
                let j = if i < 0 { i + len } else { i };
                let item = usize::try_from(j)
                    .ok()
                    .and_then(|j| items.get(j))
                    .ok_or(FindError::IndexOutOfRange)?;
                Ok(item.scoped(&self.chain))
            }
            (Node::Map(pairs), Component::Index(ix)) => {
                let Some((kt, _)) = self.ty.key_value() else {
                    return Err(not_found());
                };
                let Ok(wanted) = kt.instantiate(Raw::Str(ix.clone())) else {
                    return Err(not_found());
                };
                for (k, v) in pairs {
                    if wanted.try_eq(k)? {
                        return Ok(v.scoped(&self.chain));
                    }
                }
                Err(not_found())
            }
            _ => Err(naming()),
        }
    }

    /// `scopes()`: the scopes this value's templates resolve in, first searched first, as
    /// pystachio lists them. For a list, map or scalar these are what `bind` and `in_scope`
    /// added (environments, and objects as they were bound). A struct lists first an
    /// environment of its set fields under `self.` and one of them by name, then its bound
    /// scopes, then a `super.`-prefixed copy of each of those (an object `o` becomes the
    /// environment `{super: o}`).
    ///
    /// ```
    /// use aurora_config::pystachio::{Raw, Scope, Type};
    /// let s = Type::string().instantiate(Raw::str("{{a}} {{b}}")).unwrap();
    /// let s = s.bind_pairs([("a", "1")]).unwrap().bind_pairs([("b", "2")]).unwrap();
    /// let scopes = s.scopes();
    /// assert_eq!(scopes.len(), 2);
    /// assert!(matches!(&scopes[0], Scope::Env(e) if e.len() == 1));
    /// ```
    pub fn scopes(&self) -> Vec<Scope> {
        let mut out = Vec::new();
        match &*self.node {
            Node::Struct(_) => super::scope::struct_scopes_into(self, &mut out),
            _ => self.chain.flatten_into(&mut out),
        }
        out
    }

    /// Namable lookup (`find`): a struct by field name, a list by integer index, a map by key.
    /// `Ok(None)` means "not found" (pystachio's `Namable.Error`).
    pub(crate) fn lookup(&self, r: &[Component]) -> Result<Option<Found>, EvalError> {
        let Some(first) = r.first() else {
            return Ok(None);
        };
        let rest = &r[1..];
        let (child, parent) = match (&*self.node, first) {
            (Node::Struct(fields), Component::Deref(name)) => {
                let Some(idx) = self.ty.field_index(name) else {
                    return Ok(None);
                };
                let Some(f) = &fields[idx] else {
                    return Ok(None);
                };
                (f, self.struct_chain())
            }
            (Node::List(items), Component::Index(ix)) => {
                let Some(i) = py_parse_int(ix) else {
                    return Ok(None);
                };
                let len = items.len() as i64;
                let i = if i < 0 { i + len } else { i };
                if i < 0 || i >= len {
                    return Ok(None);
                }
                (&items[i as usize], self.chain.clone())
            }
            (Node::Map(pairs), Component::Index(ix)) => {
                let Some((kt, _)) = self.ty.key_value() else {
                    return Ok(None);
                };
                if !kt.is_scalar() {
                    return Ok(None);
                }
                let Ok(key) = kt.instantiate(Raw::Str(ix.clone())) else {
                    return Ok(None);
                };
                let mut hit = None;
                for (k, v) in pairs {
                    if key.try_eq(k)? {
                        hit = Some(v);
                        break;
                    }
                }
                let Some(v) = hit else { return Ok(None) };
                (v, self.chain.clone())
            }
            _ => return Ok(None),
        };
        let scoped = child.scoped(&parent);
        if rest.is_empty() {
            Ok(Some(Found::Obj(scoped)))
        } else if scoped.is_namable() {
            scoped.lookup(rest)
        } else {
            Ok(None)
        }
    }

    /// Python `str()`: a scalar's interpolated text, a struct/list/map's `repr()`.
    pub fn py_str(&self) -> Result<String, EvalError> {
        match &*self.node {
            Node::Scalar(_) => {
                let (si, _) = self.interpolate()?;
                Ok(match &*si.node {
                    Node::Scalar(s) => match &s.raw {
                        Raw::Value(v) => v.py_str()?,
                        other => scalar_text(other),
                    },
                    _ => String::new(),
                })
            }
            Node::Choice(_) => self.unwrap_choice()?.0.py_str(),
            _ => self.repr(),
        }
    }

    /// Python `repr()`: `String(a b)`, `Process(name=x,\n        cmdline=y)`,
    /// `IntegerList(1, 2)`, `StringIntegerMap(a => 1)`, `Choice_X('raw')`.
    pub fn repr(&self) -> Result<String, EvalError> {
        let name = self.ty.name();
        match &*self.node {
            Node::Scalar(_) => Ok(format!("{name}({})", self.py_str()?)),
            Node::Choice(raw) => Ok(format!("{name}({})", raw.py_repr())),
            Node::Struct(_) => {
                let (si, _) = self.interpolate()?;
                let Node::Struct(fields) = &*si.node else {
                    return Ok(String::new());
                };
                let sep = format!(",\n{}", " ".repeat(name.len() + 1));
                let mut parts = Vec::new();
                for (f, v) in self.ty.fields().zip(fields.iter()) {
                    if let Some(v) = v {
                        parts.push(format!("{}={}", f.name(), v.py_str()?));
                    }
                }
                Ok(format!("{name}({})", parts.join(&sep)))
            }
            Node::List(_) => {
                let (si, _) = self.interpolate()?;
                let parts: Result<Vec<String>, EvalError> =
                    si.elements().iter().map(Value::py_str).collect();
                Ok(format!("{name}({})", parts?.join(", ")))
            }
            Node::Map(_) => {
                let (si, _) = self.interpolate()?;
                let mut parts = Vec::new();
                for (k, v) in si.pairs() {
                    parts.push(format!("{} => {}", k.py_str()?, v.py_str()?));
                }
                Ok(format!("{name}({})", parts.join(", ")))
            }
        }
    }

    /// Equality as pystachio defines it: same type (structurally) and equal interpolated data.
    pub fn try_eq(&self, other: &Value) -> Result<bool, EvalError> {
        match (&*self.node, &*other.node) {
            (Node::Scalar(_), Node::Scalar(_)) => {
                if !self.ty.same_as(&other.ty) {
                    return Ok(false);
                }
                let (a, _) = self.interpolate()?;
                let (b, _) = other.interpolate()?;
                Ok(a.scalar_raw() == b.scalar_raw())
            }
            (Node::Struct(_), Node::Struct(_)) => {
                let params = |t: &Type| t.serialize().get(2).cloned();
                if params(&self.ty) != params(&other.ty) {
                    return Ok(false);
                }
                let (a, _) = self.interpolate()?;
                let (b, _) = other.interpolate()?;
                for f in self.ty.fields() {
                    match (a.raw_field(f.name()), b.raw_field(f.name())) {
                        (None, None) => {}
                        (Some(x), Some(y)) if x.try_eq(y)? => {}
                        _ => return Ok(false),
                    }
                }
                Ok(true)
            }
            (Node::List(_), Node::List(_)) | (Node::Map(_), Node::Map(_)) => {
                if self.ty.serialize() != other.ty.serialize() {
                    return Ok(false);
                }
                let (a, _) = self.interpolate()?;
                let (b, _) = other.interpolate()?;
                if a.elements().len() != b.elements().len() || a.pairs().len() != b.pairs().len() {
                    return Ok(false);
                }
                for (x, y) in a.elements().iter().zip(b.elements()) {
                    if !x.try_eq(y)? {
                        return Ok(false);
                    }
                }
                for ((k1, v1), (k2, v2)) in a.pairs().iter().zip(b.pairs()) {
                    if !k1.try_eq(k2)? || !v1.try_eq(v2)? {
                        return Ok(false);
                    }
                }
                Ok(true)
            }
            (Node::Choice(_), Node::Choice(_)) => {
                if self.ty.serialize() != other.ty.serialize() {
                    return Ok(false);
                }
                let (a, _) = self.unwrap_choice()?;
                let (b, _) = other.unwrap_choice()?;
                a.try_eq(&b)
            }
            _ => Ok(false),
        }
    }

    /// `json_dumps()`: the interpolated `get()` as JSON text, formatted like Python's
    /// `json.dumps` (`", "` and `": "` separators, ASCII only, Python float rendering).
    pub fn json_dumps(&self) -> Result<String, EvalError> {
        let mut out = String::with_capacity(4096);
        self.write_json_in(None, &mut out)?;
        Ok(out)
    }

    /// Writes the interpolated value as JSON while interpolating it (the same traversal as
    /// `interpolate()`, without building the interpolated tree).
    fn write_json_in(&self, parent: Option<&Chain>, out: &mut String) -> Result<(), EvalError> {
        use super::json::{write_array, write_object, write_py_json, write_raw, write_str};
        match &*self.node {
            Node::Struct(fields) => {
                let me = match parent {
                    Some(p) => self.scoped(p),
                    None => self.clone(),
                };
                let scopes = Chain::of(Link::StructScopes(me));
                let set = self
                    .ty
                    .fields()
                    .zip(fields.iter())
                    .filter_map(|(f, fv)| Some((f.name(), fv.as_ref()?)));
                write_object(out, set, |out, fv| fv.write_json_in(Some(&scopes), out))?;
            }
            Node::List(items) => {
                let chain = match parent {
                    Some(p) => self.chain.concat(p),
                    None => self.chain.clone(),
                };
                write_array(out, items, |out, x| x.write_json_in(Some(&chain), out))?;
            }
            Node::Scalar(s) => match &s.raw {
                Raw::Str(text) => {
                    let tpl = self.template(s, text)?;
                    if !tpl.has_tags {
                        match coerce(&self.ty, &s.raw)? {
                            None => write_str(out, text),
                            Some(c) => write_raw(out, &c)?,
                        }
                    } else {
                        // Resolve in the scopes the value would be interpolated in and write
                        // the outcome without building the interpolated value.
                        let chain = match parent {
                            Some(p) => self.chain.concat(p),
                            None => self.chain.clone(),
                        };
                        let res =
                            mustache::resolve(text, tpl, &mut |r: &Ref| lookup_render(&chain, r))?;
                        // A String needs no coercion: its text is what is written.
                        if !res.unbound.is_empty() || matches!(self.ty.0.kind, TypeKind::String) {
                            write_str(out, &res.text);
                        } else {
                            let raw = Raw::Str(Arc::from(res.text));
                            match coerce(&self.ty, &raw)? {
                                None => write_raw(out, &raw)?,
                                Some(c) => write_raw(out, &c)?,
                            }
                        }
                    }
                }
                other => match coerce(&self.ty, other)? {
                    None => write_raw(out, other)?,
                    Some(c) => write_raw(out, &c)?,
                },
            },
            Node::Map(_) | Node::Choice(_) => {
                let (iv, _) = match parent {
                    Some(p) => self.interpolate_in(p)?,
                    None => self.interpolate()?,
                };
                write_py_json(out, &iv)?;
            }
        }
        Ok(())
    }

    /// The interpolated `get()` as a `serde_json::Value` (NaN and infinities become `null`).
    pub fn to_json(&self) -> Result<serde_json::Value, EvalError> {
        let (v, _) = self.interpolate()?;
        super::json::value_to_json(&v)
    }

    /// The text of an interpolated scalar string, if this is one.
    pub fn as_str(&self) -> Option<&str> {
        self.scalar_raw()?.as_str()
    }

    /// The integer of an interpolated Integer.
    pub fn as_int(&self) -> Option<i64> {
        match self.scalar_raw()? {
            Raw::Int(i) => Some(*i),
            _ => None,
        }
    }

    /// The number of an interpolated Float or Integer.
    pub fn as_float(&self) -> Option<f64> {
        match self.scalar_raw()? {
            Raw::Int(i) => Some(*i as f64),
            Raw::BigInt(i) => i.to_f64(),
            Raw::Float(f) => Some(*f),
            _ => None,
        }
    }

    /// The boolean of an interpolated Boolean.
    pub fn as_bool(&self) -> Option<bool> {
        match self.scalar_raw()? {
            Raw::Bool(b) => Some(*b),
            _ => None,
        }
    }
}

pub(crate) fn lookup_render(chain: &Chain, r: &Ref) -> Result<Option<Arc<str>>, EvalError> {
    Ok(match chain.find(r.components())? {
        None => None,
        Some(Found::Str(s)) => Some(s),
        Some(Found::Obj(v)) => Some(v.render()?),
    })
}

impl Value {
    /// `str()` as shared text, without copying a plain string field.
    fn render(&self) -> Result<Arc<str>, EvalError> {
        if let Node::Scalar(s) = &*self.node {
            if let (Raw::Str(text), TypeKind::String) = (&s.raw, &self.ty.0.kind)
                && !self.template(s, text)?.has_tags
            {
                return Ok(text.clone());
            }
            if self.chain.is_empty() {
                return s
                    .rendered
                    .get_or_init(|| self.py_str().map(Arc::from))
                    .clone();
            }
        }
        Ok(Arc::from(self.py_str()?))
    }
}

impl PartialEq for Value {
    /// Pystachio equality; values that fail to interpolate compare unequal.
    fn eq(&self, other: &Self) -> bool {
        self.try_eq(other).unwrap_or(false)
    }
}

impl Hash for Value {
    /// Hashes the interpolated data (the raw data if interpolation fails), so equal values hash
    /// alike. (Pystachio hashes raw data, which disagrees with its own equality.)
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.ty.name().hash(state);
        match self.interpolate() {
            Ok((v, _)) => v.get().hash_into(state),
            Err(_) => self.get().hash_into(state),
        }
    }
}

impl std::fmt::Debug for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.repr() {
            Ok(s) => f.write_str(&s),
            Err(e) => write!(f, "{}(<{e}>)", self.ty.name()),
        }
    }
}
