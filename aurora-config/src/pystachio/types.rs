//! Runtime type descriptors. Struct types are defined at run time (a Python binding creates
//! them from `class X(Struct)` bodies), so a [`Type`] is a shared descriptor, not a Rust type.

use std::sync::{Arc, OnceLock};

use serde_json::Value as Json;

use super::error::BuildError;
use super::value::{Raw, Value};

/// A pystachio type: `String`, `Integer`, `Float`, `Boolean`, an `Enum`, a `Choice`, a `List`, a
/// `Map` or a `Struct`. Cheap to clone. Two types are equal when their serialized signatures are
/// (pystachio compares classes by identity but checks instances structurally; we use the
/// structural rule for both).
///
/// ```
/// use aurora_config::pystachio::{FieldSpec, Raw, Type};
/// let profile = Type::structure("Profile", vec![
///     FieldSpec::required("name", &Type::string()),
///     FieldSpec::with_default("port", &Type::integer(), Raw::Int(80)),
/// ]).unwrap();
/// let v = profile.instantiate(Raw::map([("name", Raw::str("web"))])).unwrap();
/// assert_eq!(v.json_dumps().unwrap(), r#"{"name": "web", "port": 80}"#);
/// ```
#[derive(Clone)]
pub struct Type(pub(crate) Arc<TypeDef>);

pub(crate) struct TypeDef {
    pub(crate) name: Arc<str>,
    pub(crate) kind: TypeKind,
    /// Whether this type came from a serialized signature (nested types always do).
    recreated: bool,
    ser: OnceLock<Json>,
    /// An id shared by every type with the same name and signature (interned), so structural
    /// equality is one integer comparison.
    structural_id: OnceLock<u64>,
    recreated_cache: OnceLock<Type>,
}

pub(crate) enum TypeKind {
    String,
    Integer,
    Float,
    Boolean,
    Enum(Arc<[Arc<str>]>),
    Choice(Vec<Type>),
    List(Type),
    Map(Type, Type),
    Struct(StructDef),
}

pub(crate) struct StructDef {
    pub(crate) fields: Vec<Field>,
    /// A 128-bit filter over field names, so most misses (the common case when a reference
    /// walks up a scope chain) cost no string comparison.
    filter: u128,
}

fn name_bit(name: &str) -> u128 {
    let b = name.as_bytes();
    let h = b
        .len()
        .wrapping_mul(31)
        .wrapping_add(usize::from(*b.first().unwrap_or(&0)))
        .wrapping_mul(31)
        .wrapping_add(usize::from(*b.last().unwrap_or(&0)));
    1u128 << (h % 128)
}

impl StructDef {
    fn new(fields: Vec<Field>) -> StructDef {
        let filter = fields.iter().fold(0, |acc, f| acc | name_bit(&f.name));
        StructDef { fields, filter }
    }

    pub(crate) fn index_of(&self, name: &str) -> Option<usize> {
        if self.filter & name_bit(name) == 0 {
            return None;
        }
        self.fields.iter().position(|f| &*f.name == name)
    }
}

pub(crate) struct Field {
    pub(crate) name: Arc<str>,
    pub(crate) ty: Type,
    pub(crate) required: bool,
    /// The raw default (`default.get()`), kept for serialization.
    pub(crate) default_raw: Option<Raw>,
    /// The default as a value of `ty`.
    pub(crate) default: Option<Value>,
}

/// A field declaration for [`Type::structure`]: `f = T`, `Required(T)` or `Default(T, v)`.
#[derive(Clone)]
pub struct FieldSpec {
    /// The field name.
    pub name: String,
    /// The field type.
    pub ty: Type,
    /// Whether `check()` fails when the field is unset.
    pub required: bool,
    /// The default value, if any.
    pub default: Option<Raw>,
}

impl FieldSpec {
    /// An optional field without default (`f = T`).
    pub fn optional(name: &str, ty: &Type) -> FieldSpec {
        FieldSpec {
            name: name.into(),
            ty: ty.clone(),
            required: false,
            default: None,
        }
    }
    /// A required field (`f = Required(T)`).
    pub fn required(name: &str, ty: &Type) -> FieldSpec {
        FieldSpec {
            name: name.into(),
            ty: ty.clone(),
            required: true,
            default: None,
        }
    }
    /// A field with a default (`f = Default(T, v)`).
    pub fn with_default(name: &str, ty: &Type, default: Raw) -> FieldSpec {
        FieldSpec {
            name: name.into(),
            ty: ty.clone(),
            required: false,
            default: Some(default),
        }
    }
}

/// A read-only view of one struct field's signature.
pub struct FieldInfo<'a>(&'a Field);

impl<'a> FieldInfo<'a> {
    /// The field name.
    pub fn name(&self) -> &'a str {
        &self.0.name
    }
    /// The field type.
    pub fn ty(&self) -> &Type {
        &self.0.ty
    }
    /// Whether the field is `Required`.
    pub fn required(&self) -> bool {
        self.0.required
    }
    /// The default value, if any.
    pub fn default(&self) -> Option<&Value> {
        self.0.default.as_ref()
    }
}

fn new_type(name: &str, kind: TypeKind, recreated: bool) -> Type {
    Type(Arc::new(TypeDef {
        name: Arc::from(name),
        kind,
        recreated,
        ser: OnceLock::new(),
        structural_id: OnceLock::new(),
        recreated_cache: OnceLock::new(),
    }))
}

macro_rules! basic {
    ($fn:ident, $kind:ident, $name:literal, $doc:literal) => {
        #[doc = $doc]
        pub fn $fn() -> Type {
            static T: OnceLock<Type> = OnceLock::new();
            T.get_or_init(|| new_type($name, TypeKind::$kind, true))
                .clone()
        }
    };
}

impl Type {
    basic!(string, String, "String", "The `String` type.");
    basic!(integer, Integer, "Integer", "The `Integer` type.");
    basic!(float, Float, "Float", "The `Float` type.");
    basic!(boolean, Boolean, "Boolean", "The `Boolean` type.");

    /// `Enum('A', 'B')` (named `Enum_A_B`) or, with a name, `Enum('Name', ('A', 'B'))`.
    pub fn enumeration(name: Option<&str>, values: &[&str]) -> Type {
        let name = name.map_or_else(|| format!("Enum_{}", values.join("_")), str::to_string);
        let vals: Arc<[Arc<str>]> = values.iter().map(|v| Arc::from(*v)).collect();
        new_type(&name, TypeKind::Enum(vals), true)
    }

    /// `Choice([A, B])` (named `Choice_A_B`) or a named choice.
    pub fn choice(name: Option<&str>, alternatives: &[Type]) -> Type {
        let name = name.map_or_else(
            || {
                let names: Vec<&str> = alternatives.iter().map(|t| t.name()).collect();
                format!("Choice_{}", names.join("_"))
            },
            str::to_string,
        );
        let alts = alternatives.iter().map(Type::recreated).collect();
        new_type(&name, TypeKind::Choice(alts), true)
    }

    /// `List(T)`, named `TList`.
    pub fn list(element: &Type) -> Type {
        new_type(
            &format!("{}List", element.name()),
            TypeKind::List(element.recreated()),
            true,
        )
    }

    /// `Map(K, V)`, named `KVMap`.
    pub fn map(key: &Type, value: &Type) -> Type {
        let name = format!("{}{}Map", key.name(), value.name());
        new_type(
            &name,
            TypeKind::Map(key.recreated(), value.recreated()),
            true,
        )
    }

    /// A struct type with fields in declaration order. As in pystachio, field types are
    /// re-created from their signatures and defaults are rebuilt from their raw values (so
    /// bindings attached to a default are dropped).
    pub fn structure(name: &str, fields: Vec<FieldSpec>) -> Result<Type, BuildError> {
        let mut out = Vec::with_capacity(fields.len());
        for spec in fields {
            let ty = spec.ty.recreated();
            let default_raw = match spec.default {
                None | Some(Raw::Empty) => None,
                Some(raw) => Some(spec.ty.instantiate(raw)?.get()),
            };
            let default = match &default_raw {
                Some(raw) => Some(ty.instantiate(raw.clone())?),
                None => None,
            };
            out.push(Field {
                name: Arc::from(spec.name.as_str()),
                ty,
                required: spec.required,
                default_raw,
                default,
            });
        }
        Ok(new_type(name, TypeKind::Struct(StructDef::new(out)), false))
    }

    /// The type's name (`String`, `IntegerList`, `Process`, ...).
    pub fn name(&self) -> &str {
        &self.0.name
    }

    /// The factory name: `String`, `Integer`, `Float`, `Boolean`, `Enum`, `Choice`, `List`,
    /// `Map` or `Struct`.
    pub fn factory(&self) -> &'static str {
        match &self.0.kind {
            TypeKind::String => "String",
            TypeKind::Integer => "Integer",
            TypeKind::Float => "Float",
            TypeKind::Boolean => "Boolean",
            TypeKind::Enum(_) => "Enum",
            TypeKind::Choice(_) => "Choice",
            TypeKind::List(_) => "List",
            TypeKind::Map(..) => "Map",
            TypeKind::Struct(_) => "Struct",
        }
    }

    /// Whether values of this type are scalars (String, Integer, Float, Boolean, Enum).
    pub fn is_scalar(&self) -> bool {
        matches!(
            self.0.kind,
            TypeKind::String
                | TypeKind::Integer
                | TypeKind::Float
                | TypeKind::Boolean
                | TypeKind::Enum(_)
        )
    }

    /// Whether this is a struct type.
    pub fn is_struct(&self) -> bool {
        matches!(self.0.kind, TypeKind::Struct(_))
    }

    /// The element type of a list type.
    pub fn element(&self) -> Option<&Type> {
        match &self.0.kind {
            TypeKind::List(t) => Some(t),
            _ => None,
        }
    }

    /// The key and value types of a map type.
    pub fn key_value(&self) -> Option<(&Type, &Type)> {
        match &self.0.kind {
            TypeKind::Map(k, v) => Some((k, v)),
            _ => None,
        }
    }

    /// The values of an enum type.
    pub fn enum_values(&self) -> Option<&[Arc<str>]> {
        match &self.0.kind {
            TypeKind::Enum(v) => Some(v),
            _ => None,
        }
    }

    /// The alternatives of a choice type.
    pub fn alternatives(&self) -> Option<&[Type]> {
        match &self.0.kind {
            TypeKind::Choice(v) => Some(v),
            _ => None,
        }
    }

    pub(crate) fn struct_def(&self) -> Option<&StructDef> {
        match &self.0.kind {
            TypeKind::Struct(s) => Some(s),
            _ => None,
        }
    }

    /// The fields of a struct type, in schema order (empty for other types).
    pub fn fields(&self) -> impl Iterator<Item = FieldInfo<'_>> {
        self.struct_def()
            .into_iter()
            .flat_map(|s| s.fields.iter().map(FieldInfo))
    }

    /// One field of a struct type.
    pub fn field(&self, name: &str) -> Option<FieldInfo<'_>> {
        let s = self.struct_def()?;
        s.fields.iter().find(|f| &*f.name == name).map(FieldInfo)
    }

    pub(crate) fn field_index(&self, name: &str) -> Option<usize> {
        self.struct_def()?.index_of(name)
    }

    /// The serialized signature, as pystachio's `serialize_type()` rendered in JSON:
    /// `["String"]`, `["List", T]`, `["Map", K, V]`, `["Enum", name, [values]]`,
    /// `["Choice", name, [alts]]`, `["Struct", name, [[attr, [required, default, empty, T]], ...]]`
    /// with attributes sorted and `[]` as the default of a field without one.
    pub fn serialize(&self) -> &Json {
        self.0.ser.get_or_init(|| match &self.0.kind {
            TypeKind::String | TypeKind::Integer | TypeKind::Float | TypeKind::Boolean => {
                Json::Array(vec![Json::from(self.factory())])
            }
            TypeKind::Enum(vals) => Json::Array(vec![
                Json::from("Enum"),
                Json::from(self.name()),
                Json::Array(vals.iter().map(|v| Json::from(&**v)).collect()),
            ]),
            TypeKind::Choice(alts) => Json::Array(vec![
                Json::from("Choice"),
                Json::from(self.name()),
                Json::Array(alts.iter().map(|t| t.serialize().clone()).collect()),
            ]),
            TypeKind::List(t) => Json::Array(vec![Json::from("List"), t.serialize().clone()]),
            TypeKind::Map(k, v) => Json::Array(vec![
                Json::from("Map"),
                k.serialize().clone(),
                v.serialize().clone(),
            ]),
            TypeKind::Struct(s) => {
                let mut fields: Vec<&Field> = s.fields.iter().collect();
                fields.sort_by(|a, b| a.name.cmp(&b.name));
                let params = fields
                    .into_iter()
                    .map(|f| {
                        let default = f
                            .default_raw
                            .as_ref()
                            .map_or(Json::Array(vec![]), super::json::raw_to_json);
                        Json::Array(vec![
                            Json::from(&*f.name),
                            Json::Array(vec![
                                Json::Bool(f.required),
                                default,
                                Json::Bool(f.default_raw.is_none()),
                                f.ty.serialize().clone(),
                            ]),
                        ])
                    })
                    .collect();
                Json::Array(vec![
                    Json::from("Struct"),
                    Json::from(self.name()),
                    Json::Array(params),
                ])
            }
        })
    }

    /// The signature as Python's `json.dumps` writes it (`", "` and `": "` separators,
    /// non-ASCII escaped): what pystachio's `Type.dump` writes.
    pub fn signature_text(&self) -> String {
        let mut out = String::new();
        // Signatures hold only strings, booleans, numbers and lists, which always write.
        let _ = super::json::write_raw(&mut out, &super::json::json_to_raw(self.serialize()));
        out
    }

    /// This type and every type it is built from, each signature once, inner types before the
    /// types that contain them (the order a factory has to make them in).
    pub fn nested(&self) -> Vec<Type> {
        fn visit(t: &Type, out: &mut Vec<Type>) {
            if out.iter().any(|seen| seen.serialize() == t.serialize()) {
                return;
            }
            match &t.0.kind {
                TypeKind::Choice(alts) => alts.iter().for_each(|a| visit(a, out)),
                TypeKind::List(e) => visit(e, out),
                TypeKind::Map(k, v) => {
                    visit(k, out);
                    visit(v, out);
                }
                TypeKind::Struct(s) => {
                    let mut fields: Vec<&Field> = s.fields.iter().collect();
                    fields.sort_by(|a, b| a.name.cmp(&b.name));
                    fields.into_iter().for_each(|f| visit(&f.ty, out));
                }
                _ => {}
            }
            out.push(t.clone());
        }
        let mut out = Vec::new();
        visit(self, &mut out);
        out
    }

    /// The factory names [`Type::load`] knows.
    pub const FACTORIES: [&'static str; 9] = [
        "String", "Integer", "Float", "Boolean", "Enum", "Choice", "Struct", "List", "Map",
    ];

    /// Loads a type from a serialized signature (see [`Type::serialize`]). Nested struct types
    /// come back with their fields in sorted order, as in pystachio.
    pub fn load(sig: &Json) -> Result<Type, BuildError> {
        let bad = || BuildError::BadSignature(sig.to_string());
        let arr = sig.as_array().ok_or_else(bad)?;
        let factory = arr.first().and_then(Json::as_str).ok_or_else(bad)?;
        let name_at = |i: usize| arr.get(i).and_then(Json::as_str).ok_or_else(bad);
        Ok(match factory {
            "String" => Type::string(),
            "Integer" => Type::integer(),
            "Float" => Type::float(),
            "Boolean" => Type::boolean(),
            "Enum" => {
                let vals = arr.get(2).and_then(Json::as_array).ok_or_else(bad)?;
                let vals: Option<Vec<&str>> = vals.iter().map(Json::as_str).collect();
                Type::enumeration(Some(name_at(1)?), &vals.ok_or_else(bad)?)
            }
            "Choice" => {
                let alts = arr.get(2).and_then(Json::as_array).ok_or_else(bad)?;
                let alts = alts.iter().map(Type::load).collect::<Result<Vec<_>, _>>()?;
                new_type(name_at(1)?, TypeKind::Choice(alts), true)
            }
            "List" => {
                let t = Type::load(arr.get(1).ok_or_else(bad)?)?;
                new_type(&format!("{}List", t.name()), TypeKind::List(t), true)
            }
            "Map" => {
                let k = Type::load(arr.get(1).ok_or_else(bad)?)?;
                let v = Type::load(arr.get(2).ok_or_else(bad)?)?;
                new_type(
                    &format!("{}{}Map", k.name(), v.name()),
                    TypeKind::Map(k, v),
                    true,
                )
            }
            "Struct" => {
                let params = arr.get(2).and_then(Json::as_array).ok_or_else(bad)?;
                let mut fields = Vec::with_capacity(params.len());
                for p in params {
                    let pa = p.as_array().filter(|a| a.len() == 2).ok_or_else(bad)?;
                    let fname = pa[0].as_str().ok_or_else(bad)?;
                    let s = pa[1].as_array().filter(|a| a.len() == 4).ok_or_else(bad)?;
                    let required = s[0].as_bool().ok_or_else(bad)?;
                    let empty = s[2].as_bool().ok_or_else(bad)?;
                    let ty = Type::load(&s[3])?;
                    let default_raw = (!empty).then(|| super::json::json_to_raw(&s[1]));
                    let default = match &default_raw {
                        Some(raw) => Some(ty.instantiate(raw.clone())?),
                        None => None,
                    };
                    fields.push(Field {
                        name: Arc::from(fname),
                        ty,
                        required,
                        default_raw,
                        default,
                    });
                }
                fields.sort_by(|a, b| a.name.cmp(&b.name));
                new_type(name_at(1)?, TypeKind::Struct(StructDef::new(fields)), true)
            }
            _ => return Err(bad()),
        })
    }

    /// The type as pystachio re-creates it for nested use (`load(serialize())`): struct fields
    /// sorted by name, defaults rebuilt from raw values.
    pub fn recreated(&self) -> Type {
        if self.0.recreated {
            return self.clone();
        }
        self.0
            .recreated_cache
            .get_or_init(|| Type::load(self.serialize()).unwrap_or_else(|_| self.clone()))
            .clone()
    }

    /// Structural equality of types (pystachio's `isinstance` rule).
    pub fn same_as(&self, other: &Type) -> bool {
        Arc::ptr_eq(&self.0, &other.0) || self.structural_id() == other.structural_id()
    }

    fn structural_id(&self) -> u64 {
        *self.0.structural_id.get_or_init(|| {
            static IDS: OnceLock<std::sync::Mutex<std::collections::HashMap<String, u64>>> =
                OnceLock::new();
            let key = format!("{}\0{}", self.name(), self.serialize());
            let mut ids = match IDS.get_or_init(Default::default).lock() {
                Ok(g) => g,
                Err(poisoned) => poisoned.into_inner(),
            };
            let next = ids.len() as u64;
            *ids.entry(key).or_insert(next)
        })
    }
}

impl PartialEq for Type {
    fn eq(&self, other: &Self) -> bool {
        self.same_as(other)
    }
}

impl std::fmt::Debug for Type {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Type({})", self.serialize())
    }
}
