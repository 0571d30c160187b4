//! JSON in and out: conversions between raw data and `serde_json`, and a writer that formats
//! exactly like Python's `json.dumps` with default arguments.

use std::fmt::Write;

use serde_json::Value as Json;

use super::error::EvalError;
use super::pyfmt::py_float;
use super::value::{Node, Raw, Value};

/// Converts parsed JSON to raw data (integers beyond the unsigned 64-bit range, which serde_json
/// reads as floats, stay floats).
pub fn json_to_raw(j: &Json) -> Raw {
    match j {
        Json::Null => Raw::None,
        Json::Bool(b) => Raw::Bool(*b),
        Json::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => Raw::Int(i),
            (None, Some(u)) => Raw::int(u.into()),
            (None, None) => Raw::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        Json::String(s) => Raw::str(s),
        Json::Array(a) => Raw::List(a.iter().map(json_to_raw).collect()),
        Json::Object(o) => Raw::Map(
            o.iter()
                .map(|(k, v)| (Raw::str(k), json_to_raw(v)))
                .collect(),
        ),
    }
}

fn key_text(k: &Raw) -> Result<String, EvalError> {
    Ok(match k {
        Raw::Str(s) => s.to_string(),
        Raw::Int(i) => i.to_string(),
        Raw::BigInt(i) => i.to_string(),
        Raw::Float(f) => py_float(*f),
        Raw::Bool(b) => if *b { "true" } else { "false" }.to_string(),
        Raw::None => "null".to_string(),
        other => {
            return Err(EvalError::Coercion(format!(
                "keys must be str, int, float, bool or None, not {}",
                other.py_repr()
            )));
        }
    })
}

/// Converts raw data to JSON (NaN and infinities become `null`; `Empty` is dropped from maps).
pub fn raw_to_json(r: &Raw) -> Json {
    match r {
        Raw::None | Raw::Empty => Json::Null,
        Raw::Bool(b) => Json::Bool(*b),
        Raw::Int(i) => Json::from(*i),
        // serde_json holds integers up to 64 bits; beyond that the nearest float stands in.
        Raw::BigInt(i) => num_traits::ToPrimitive::to_f64(&**i)
            .and_then(serde_json::Number::from_f64)
            .map_or(Json::Null, Json::Number),
        Raw::Float(f) => serde_json::Number::from_f64(*f).map_or(Json::Null, Json::Number),
        Raw::Str(s) => Json::String(s.to_string()),
        Raw::List(l) => Json::Array(l.iter().map(raw_to_json).collect()),
        Raw::Map(m) => Json::Object(
            m.iter()
                .filter(|(_, v)| !matches!(v, Raw::Empty))
                .map(|(k, v)| (key_text(k).unwrap_or_else(|_| k.py_str()), raw_to_json(v)))
                .collect(),
        ),
        Raw::Value(v) => raw_to_json(&v.get()),
        Raw::Foreign(f) => Json::String(f.text().to_string()),
    }
}

/// Converts an (interpolated) value's `get()` to JSON.
pub(crate) fn value_to_json(v: &Value) -> Result<Json, EvalError> {
    Ok(match &*v.node {
        Node::Struct(fields) => {
            let mut map = serde_json::Map::with_capacity(fields.len());
            for (f, fv) in v.ty.fields().zip(fields.iter()) {
                if let Some(fv) = fv {
                    map.insert(f.name().to_string(), value_to_json(fv)?);
                }
            }
            Json::Object(map)
        }
        Node::List(items) => {
            Json::Array(items.iter().map(value_to_json).collect::<Result<_, _>>()?)
        }
        Node::Scalar(s) => raw_to_json(&s.raw),
        Node::Map(_) | Node::Choice(_) => {
            let raw = v.get();
            if let Raw::Map(m) = &raw {
                for (k, _) in m {
                    key_text(k)?;
                }
            }
            raw_to_json(&raw)
        }
    })
}

pub(crate) fn write_str(out: &mut String, s: &str) {
    out.push('"');
    let bytes = s.as_bytes();
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if (b' '..=b'~').contains(&b) && b != b'"' && b != b'\\' {
            i += 1;
            continue;
        }
        out.push_str(&s[start..i]);
        let c = s[i..].chars().next().unwrap_or('\u{fffd}');
        i += c.len_utf8();
        start = i;
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c => {
                let mut buf = [0u16; 2];
                for u in c.encode_utf16(&mut buf) {
                    let _ = write!(out, "\\u{:04x}", u);
                }
            }
        }
    }
    out.push_str(&s[start..]);
    out.push('"');
}

pub(crate) fn write_raw(out: &mut String, r: &Raw) -> Result<(), EvalError> {
    match r {
        Raw::None | Raw::Empty => out.push_str("null"),
        Raw::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Raw::Int(i) => super::pyfmt::push_int(out, *i),
        Raw::BigInt(i) => out.push_str(&i.to_string()),
        Raw::Float(f) => {
            if f.is_nan() {
                out.push_str("NaN");
            } else if f.is_infinite() {
                out.push_str(if *f > 0.0 { "Infinity" } else { "-Infinity" });
            } else {
                super::pyfmt::push_float(out, *f);
            }
        }
        Raw::Str(s) => write_str(out, s),
        Raw::List(l) => {
            out.push('[');
            for (i, x) in l.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_raw(out, x)?;
            }
            out.push(']');
        }
        Raw::Map(m) => {
            out.push('{');
            for (i, (k, v)) in m.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_str(out, &key_text(k)?);
                out.push_str(": ");
                write_raw(out, v)?;
            }
            out.push('}');
        }
        Raw::Value(v) => write_raw(out, &v.get())?,
        Raw::Foreign(f) => {
            return Err(EvalError::Coercion(format!(
                "Object of type {} is not JSON serializable",
                f.text()
            )));
        }
    }
    Ok(())
}

/// Writes `entries` as a JSON object with Python's `", "` and `": "` separators, each value by
/// `write`.
pub(crate) fn write_object<'a>(
    out: &mut String,
    entries: impl Iterator<Item = (&'a str, &'a Value)>,
    mut write: impl FnMut(&mut String, &Value) -> Result<(), EvalError>,
) -> Result<(), EvalError> {
    out.push('{');
    for (i, (name, value)) in entries.enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        write_str(out, name);
        out.push_str(": ");
        write(out, value)?;
    }
    out.push('}');
    Ok(())
}

/// Writes `items` as a JSON array with Python's `", "` separator, each item by `write`.
pub(crate) fn write_array(
    out: &mut String,
    items: &[Value],
    mut write: impl FnMut(&mut String, &Value) -> Result<(), EvalError>,
) -> Result<(), EvalError> {
    out.push('[');
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        write(out, item)?;
    }
    out.push(']');
    Ok(())
}

/// Writes an (interpolated) value's `get()` as Python's `json.dumps` would.
pub(crate) fn write_py_json(out: &mut String, v: &Value) -> Result<(), EvalError> {
    match &*v.node {
        Node::Struct(fields) => {
            let set =
                v.ty.fields()
                    .zip(fields.iter())
                    .filter_map(|(f, fv)| Some((f.name(), fv.as_ref()?)));
            write_object(out, set, write_py_json)?;
        }
        Node::List(items) => write_array(out, items, write_py_json)?,
        Node::Scalar(s) => write_raw(out, &s.raw)?,
        Node::Map(_) | Node::Choice(_) => write_raw(out, &v.get())?,
    }
    Ok(())
}
