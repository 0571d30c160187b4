//! Environments and scope chains: where a reference is looked up.
//!
//! A value carries a chain of scopes. `bind` prepends, `in_scope` appends. A struct's own
//! scopes are `[self.*, own fields, its chain..., super.* of its chain...]`; its fields are
//! evaluated with those appended. The chain is a persistent rope (`Concat` nodes and a lazy
//! `StructScopes` node) so building it never copies, and lookups visit each real scope once:
//! the `super.` casts of a chain are searched only for refs that start with `super`.

use std::sync::Arc;

use rustc_hash::FxHashMap;

use super::error::{BuildError, EvalError};
use super::pyfmt::py_float;
use super::refs::{Component, Ref};
use super::value::Value;

/// A value stored in an [`Env`]: a string (numbers are stringified when bound) or an object
/// mounted at that name.
#[derive(Clone)]
pub enum EnvValue {
    /// A string binding.
    Str(Arc<str>),
    /// A mounted object (struct, list, map or scalar).
    Obj(Value),
}

/// Input to an environment entry, mirroring what pystachio's `Environment` accepts.
#[derive(Clone)]
pub enum EnvInput {
    /// A string.
    Str(String),
    /// An integer (stored as its decimal text).
    Int(i64),
    /// A float (stored as Python renders it, e.g. `1e+20`).
    Float(f64),
    /// A boolean (stored as `True`/`False`).
    Bool(bool),
    /// An object mounted at the key.
    Obj(Value),
    /// A nested environment, flattened under the key.
    Env(Env),
    /// A nested dictionary, flattened into dotted keys.
    Dict(Vec<(String, EnvInput)>),
}

/// An environment: a table from references to strings or objects (`Environment` in
/// pystachio). Immutable and cheap to clone.
///
/// ```
/// use aurora_config::pystachio::{Env, EnvInput, Raw, Scope, Type};
/// let env = Env::from_pairs([("x", EnvInput::Int(1)), ("y.z", EnvInput::Str("w".into()))]).unwrap();
/// let s = Type::string().instantiate(Raw::str("{{x}} {{y.z}}")).unwrap();
/// assert_eq!(s.bind(vec![Scope::Env(env)]).py_str().unwrap(), "1 w");
/// ```
#[derive(Clone, Default)]
pub struct Env(Arc<Table>);

impl Env {
    /// Builds an environment from `(address, value)` pairs; later pairs overwrite earlier ones.
    pub fn from_pairs<K: AsRef<str>>(
        pairs: impl IntoIterator<Item = (K, EnvInput)>,
    ) -> Result<Env, BuildError> {
        let mut table = Table::default();
        for (k, v) in pairs {
            let key = Ref::parse(k.as_ref())?;
            insert(&mut table, key, v)?;
        }
        Ok(Env(Arc::new(table)))
    }

    /// Builds an environment from already parsed references.
    pub fn from_refs(pairs: impl IntoIterator<Item = (Ref, EnvInput)>) -> Result<Env, BuildError> {
        let mut table = Table::default();
        for (k, v) in pairs {
            insert(&mut table, k, v)?;
        }
        Ok(Env(Arc::new(table)))
    }

    /// Merges environments in order; later ones overwrite earlier keys.
    pub fn merge<'a>(envs: impl IntoIterator<Item = &'a Env>) -> Env {
        let mut table = Table::default();
        for e in envs {
            for (k, v) in e.0.iter() {
                table.insert(k.clone(), v.clone());
            }
        }
        Env(Arc::new(table))
    }

    /// The entries, in no particular order.
    pub fn entries(&self) -> impl Iterator<Item = (&Ref, &EnvValue)> {
        self.0.iter()
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the environment is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// An environment of already converted entries.
    pub(crate) fn from_values(pairs: impl IntoIterator<Item = (Ref, EnvValue)>) -> Env {
        Env(Arc::new(pairs.into_iter().collect()))
    }

    /// Looks a reference up: an exact key first, then the longest key that is a strict prefix
    /// and names an object that can resolve the remainder.
    pub(crate) fn find(&self, r: &[Component]) -> Result<Option<Found>, EvalError> {
        if self.0.is_empty() {
            return Ok(None);
        }
        if let Some(v) = self.0.get(r) {
            return Ok(Some(match v {
                EnvValue::Str(s) => Found::Str(s.clone()),
                EnvValue::Obj(o) => Found::Obj(o.clone()),
            }));
        }
        for k in (1..r.len()).rev() {
            if let Some(EnvValue::Obj(o)) = self.0.get(&r[..k])
                && o.is_namable()
                && let Some(f) = o.lookup(&r[k..])?
            {
                return Ok(Some(f));
            }
        }
        Ok(None)
    }
}

fn insert(table: &mut Table, key: Ref, v: EnvInput) -> Result<(), BuildError> {
    match v {
        EnvInput::Str(s) => {
            table.insert(key, EnvValue::Str(Arc::from(s)));
        }
        EnvInput::Int(i) => {
            table.insert(key, EnvValue::Str(Arc::from(i.to_string())));
        }
        EnvInput::Float(f) => {
            table.insert(key, EnvValue::Str(Arc::from(py_float(f))));
        }
        EnvInput::Bool(b) => {
            table.insert(
                key,
                EnvValue::Str(Arc::from(if b { "True" } else { "False" })),
            );
        }
        EnvInput::Obj(o) => {
            table.insert(key, EnvValue::Obj(o));
        }
        EnvInput::Env(e) => {
            for (k, v) in e.0.iter() {
                table.insert(key.join(k), v.clone());
            }
        }
        EnvInput::Dict(d) => {
            let mut sub = Table::default();
            for (k, v) in d {
                insert(&mut sub, Ref::parse(&k)?, v)?;
            }
            for (k, v) in sub {
                table.insert(key.join(&k), v);
            }
        }
    }
    Ok(())
}

/// Environments are small and keyed by short names: a fast non-cryptographic hash beats
/// SipHash here, and no key comes from an adversary who could force collisions.
type Table = FxHashMap<Ref, EnvValue>;

/// A scope passed to [`Value::bind`] or [`Value::in_scope`]: an environment or an object
/// (struct, list or map) searched by path.
#[derive(Clone)]
pub enum Scope {
    /// An environment.
    Env(Env),
    /// An object: `bind(profile)` makes `{{name}}` find `profile.name`.
    Obj(Value),
}

impl Scope {
    /// The text `{{r}}` stands for in this scope alone (a bound string, or `str()` of the
    /// object found), or `None` when the scope has nothing under `r`.
    pub fn render(&self, r: &Ref) -> Result<Option<Arc<str>>, EvalError> {
        let chain = match self {
            Scope::Env(e) => Chain::of(Link::Env(e.clone())),
            Scope::Obj(v) => Chain::of(Link::Obj(v.clone())),
        };
        super::value::lookup_render(&chain, r)
    }
}

impl Env {
    /// What `r` names in this environment: an exact entry, or what an object mounted at a
    /// prefix of `r` has under the rest of it (placed in that object's scopes).
    pub fn get(&self, r: &Ref) -> Result<Option<EnvValue>, EvalError> {
        Ok(self.find(r.components())?.map(|f| match f {
            Found::Str(s) => EnvValue::Str(s),
            Found::Obj(o) => EnvValue::Obj(o),
        }))
    }
}

/// What a lookup found: a bound string, or an object to render with `str()`.
#[derive(Clone)]
pub(crate) enum Found {
    Str(Arc<str>),
    Obj(Value),
}

/// A scope chain (pystachio's `_scopes` tuple, or `scopes()` of a struct).
#[derive(Clone, Default)]
pub(crate) struct Chain(Option<Arc<Link>>);

pub(crate) enum Link {
    Env(Env),
    Obj(Value),
    Concat(Chain, Chain),
    /// `scopes()` of this struct value: `self.*`, fields, its chain, `super.*` of its chain.
    StructScopes(Value),
}

impl Chain {
    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_none()
    }

    pub(crate) fn of(link: Link) -> Chain {
        Chain(Some(Arc::new(link)))
    }

    pub(crate) fn from_scopes(scopes: impl IntoIterator<Item = Scope>) -> Chain {
        let mut out = Chain::default();
        for s in scopes {
            let c = match s {
                Scope::Env(e) => Chain::of(Link::Env(e)),
                Scope::Obj(v) => Chain::of(Link::Obj(v)),
            };
            out = out.concat(&c);
        }
        out
    }

    /// `self` followed by `other`.
    pub(crate) fn concat(&self, other: &Chain) -> Chain {
        match (&self.0, &other.0) {
            (None, _) => other.clone(),
            (_, None) => self.clone(),
            _ => Chain::of(Link::Concat(self.clone(), other.clone())),
        }
    }

    pub(crate) fn find(&self, r: &[Component]) -> Result<Option<Found>, EvalError> {
        let Some(link) = &self.0 else { return Ok(None) };
        match &**link {
            Link::Env(e) => e.find(r),
            Link::Obj(v) => v.lookup(r),
            Link::Concat(a, b) => match a.find(r)? {
                Some(f) => Ok(Some(f)),
                None => b.find(r),
            },
            Link::StructScopes(v) => struct_scopes_find(v, r),
        }
    }

    /// Lookup in the `super.`-cast copies of this chain.
    fn find_super(&self, r: &[Component]) -> Result<Option<Found>, EvalError> {
        if self.is_empty() || r.is_empty() || !r[0].is_deref_named("super") {
            return Ok(None);
        }
        if r.len() > 1 {
            self.find(&r[1..])
        } else {
            Ok(self.first_obj().map(Found::Obj))
        }
    }

    /// Appends the scopes of this chain, in lookup order, as `scopes()` lists them.
    pub(crate) fn flatten_into(&self, out: &mut Vec<Scope>) {
        let Some(link) = &self.0 else { return };
        match &**link {
            Link::Env(e) => out.push(Scope::Env(e.clone())),
            Link::Obj(v) => out.push(Scope::Obj(v.clone())),
            Link::Concat(a, b) => {
                a.flatten_into(out);
                b.flatten_into(out);
            }
            Link::StructScopes(v) => struct_scopes_into(v, out),
        }
    }

    /// The first object scope, which `{{super}}` alone names.
    fn first_obj(&self) -> Option<Value> {
        match &**self.0.as_ref()? {
            Link::Env(_) | Link::StructScopes(_) => None,
            Link::Obj(v) => Some(v.clone()),
            Link::Concat(a, b) => a.first_obj().or_else(|| b.first_obj()),
        }
    }
}

fn field_find(field: &Value, rest: &[Component]) -> Result<Option<Found>, EvalError> {
    if rest.is_empty() {
        Ok(Some(Found::Obj(field.clone())))
    } else if field.is_namable() {
        field.lookup(rest)
    } else {
        Ok(None)
    }
}

fn struct_scopes_find(v: &Value, r: &[Component]) -> Result<Option<Found>, EvalError> {
    if r.is_empty() {
        return Ok(None);
    }
    // Environment({'self': SELF}): keys `self.<field>`.
    if r.len() >= 2
        && r[0].is_deref_named("self")
        && let Component::Deref(name) = &r[1]
        && let Some(f) = v.raw_field(name)
        && let Some(found) = field_find(f, &r[2..])?
    {
        return Ok(Some(found));
    }
    // SELF: the raw fields by name.
    if let Component::Deref(name) = &r[0]
        && let Some(f) = v.raw_field(name)
        && let Some(found) = field_find(f, &r[1..])?
    {
        return Ok(Some(found));
    }
    if let Some(found) = v.chain.find(r)? {
        return Ok(Some(found));
    }
    v.chain.find_super(r)
}

/// Appends a struct's `scopes()`: `self.<field>` and `<field>` environments of its set fields,
/// its chain, then the chain again with every scope cast under `super`.
pub(crate) fn struct_scopes_into(v: &Value, out: &mut Vec<Scope>) {
    let deref = |name: &str| Component::Deref(Arc::from(name));
    let fields: Vec<(String, &Value)> =
        v.ty.fields()
            .filter_map(|f| Some((f.name().to_string(), v.raw_field(f.name())?)))
            .collect();
    let me = Env::from_values(fields.iter().map(|(name, f)| {
        (
            Ref::from_components(vec![deref("self"), deref(name)]),
            EnvValue::Obj((*f).clone()),
        )
    }));
    let own = Env::from_values(fields.iter().map(|(name, f)| {
        (
            Ref::from_components(vec![deref(name)]),
            EnvValue::Obj((*f).clone()),
        )
    }));
    out.push(Scope::Env(me));
    out.push(Scope::Env(own));
    let mut chain = Vec::new();
    v.chain.flatten_into(&mut chain);
    let sup = Ref::from_components(vec![deref("super")]);
    let casts: Vec<Scope> = chain
        .iter()
        .map(|s| {
            Scope::Env(match s {
                Scope::Env(e) => {
                    Env::from_values(e.entries().map(|(k, x)| (sup.join(k), x.clone())))
                }
                Scope::Obj(o) => Env::from_values([(sup.clone(), EnvValue::Obj(o.clone()))]),
            })
        })
        .collect();
    out.extend(chain);
    out.extend(casts);
}
