//! Differential test against the real pystachio 0.8.10.
//!
//! Generates struct types, values, bindings and templates, runs them through our engine and
//! through `difftest/oracle.py` on the interpreter named by `PYSTACHIO_PYTHON`, and compares
//! `json_dumps()`, the unbound refs, `check()`, `repr()` and every field accessor, errors
//! included. See `difftest/README.md`.

use std::io::Write;
use std::process::{Command, Stdio};

use aurora_config::pystachio::{Env, EnvInput, EvalError, Scope, Type, Value};
use serde_json::{Value as Json, json};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }
}

const FIELD_NAMES: [&str; 8] = ["a", "b", "name", "value", "x", "inner", "items", "m"];
const REFS: [&str; 17] = [
    "a",
    "b",
    "x",
    "y",
    "n",
    "name",
    "value",
    "self.a",
    "self.name",
    "super.x",
    "inner.a",
    "inner.name",
    "items[0]",
    "items[-1]",
    "m[k]",
    "z",
    "self.inner.b",
];
const BIND_KEYS: [&str; 9] = ["x", "y", "z", "a", "name", "n", "metavar1", "value", "b"];

fn template(r: &mut Rng) -> String {
    let mut s = String::new();
    for _ in 0..1 + r.below(4) {
        match r.below(20) {
            0..=5 => s.push_str(r.pick(&["x", " ", "-", "/", ".", "ab", "1"])),
            6..=15 => s.push_str(&format!("{{{{{}}}}}", r.pick(&REFS))),
            16 => s.push_str(&format!("{{{{&{}}}}}", r.pick(&REFS))),
            17 => s.push_str("{{metavar{{n}}}}"),
            18 => s.push_str(r.pick(&["{{ x }}", "{{}}", "{{{x}}}", "{x}", "{{a.1}}"])),
            _ => s.push_str("{{items[{{n}}]}}"),
        }
    }
    s
}

fn scalar_sig(r: &mut Rng) -> Json {
    match r.below(6) {
        0 | 1 => json!(["String"]),
        2 => json!(["Integer"]),
        3 => json!(["Float"]),
        4 => json!(["Boolean"]),
        _ => json!(["Enum", "Color", ["R", "G"]]),
    }
}

fn type_sig(r: &mut Rng, depth: usize, field: &str) -> Json {
    match field {
        "items" => json!(["List", scalar_sig(r)]),
        "m" => json!(["Map", ["String"], scalar_sig(r)]),
        "inner" if depth < 2 => struct_sig(r, depth + 1, "Inner"),
        _ => scalar_sig(r),
    }
}

fn raw_for(r: &mut Rng, sig: &Json, depth: usize) -> Json {
    let kind = sig[0].as_str().unwrap_or("String");
    if r.chance(25) && kind != "List" && kind != "Map" && kind != "Struct" {
        return json!(template(r));
    }
    match kind {
        "String" => json!(template(r)),
        "Integer" => match r.below(5) {
            0 => json!(r.below(100)),
            1 => json!(r.pick(&["12", " 7 ", "-3", "abc", "1.0", "1_000"])),
            2 => json!(1.5),
            _ => json!(r.below(10) as i64 - 5),
        },
        "Float" => match r.below(4) {
            0 => json!(r.pick(&[0.5, 1e20, 2.0, 1e-5, 1e16, 123.25])),
            1 => json!(r.below(50)),
            2 => json!(r.pick(&["1e5", "nan", "x"])),
            _ => json!(0.1),
        },
        "Boolean" => match r.below(3) {
            0 => json!(r.chance(50)),
            1 => json!(r.pick(&["true", "0", "False", "yes"])),
            _ => json!(r.below(3)),
        },
        "Enum" => json!(r.pick(&["R", "G", "{{x}}"])),
        "List" => {
            let n = r.below(4);
            Json::Array((0..n).map(|_| raw_for(r, &sig[1], depth)).collect())
        }
        "Map" => {
            let mut m = serde_json::Map::new();
            for _ in 0..r.below(3) {
                m.insert(r.pick(&["k", "j"]).to_string(), raw_for(r, &sig[2], depth));
            }
            Json::Object(m)
        }
        _ => struct_value(r, sig, depth),
    }
}

fn struct_value(r: &mut Rng, sig: &Json, depth: usize) -> Json {
    let mut m = serde_json::Map::new();
    for f in sig[2].as_array().into_iter().flatten() {
        if r.chance(70) {
            let name = f[0].as_str().unwrap_or("a");
            m.insert(name.to_string(), raw_for(r, &f[1][3], depth + 1));
        }
    }
    Json::Object(m)
}

fn struct_sig(r: &mut Rng, depth: usize, name: &str) -> Json {
    let mut names: Vec<&str> = FIELD_NAMES.to_vec();
    let n = 2 + r.below(4);
    let mut fields = Vec::new();
    for _ in 0..n {
        let f = names.remove(r.below(names.len()));
        let ty = type_sig(r, depth, f);
        let required = r.chance(20);
        let default = if !required && r.chance(30) && ty[0] != "Struct" {
            Some(raw_for(r, &ty, depth))
        } else {
            None
        };
        let empty = default.is_none();
        fields.push(json!([
            f,
            [required, default.unwrap_or(json!([])), empty, ty]
        ]));
    }
    fields.sort_by(|a, b| a[0].as_str().cmp(&b[0].as_str()));
    json!(["Struct", name, fields])
}

fn binds(r: &mut Rng) -> Json {
    let mut out = Vec::new();
    for _ in 0..r.below(3) {
        let mut m = serde_json::Map::new();
        for _ in 0..1 + r.below(3) {
            let v = match r.below(6) {
                0 => json!(r.below(20)),
                1 => json!(r.pick(&[1.0, 1e20, 0.5, 2.5e-7])),
                2 => json!(r.chance(50)),
                3 => json!(format!("{{{{{}}}}}", r.pick(&BIND_KEYS))),
                _ => json!(r.pick(&["v", "R", "G", "1", "0", "true", "w w"])),
            };
            m.insert(r.pick(&BIND_KEYS).to_string(), v);
        }
        out.push(Json::Object(m));
    }
    Json::Array(out)
}

fn err_name(e: &EvalError) -> &'static str {
    match e {
        EvalError::Coercion(_) => "CoercionError",
        EvalError::Uninterpolatable(_) => "Uninterpolatable",
        EvalError::InvalidRef(_) => "InvalidRefError",
        EvalError::Overflow(_) => "OverflowError",
        _ => "Error",
    }
}

fn cap(r: Result<Json, EvalError>) -> Json {
    match r {
        Ok(v) => json!(["ok", v]),
        Err(e) => json!(["err", err_name(&e), e.to_string()]),
    }
}

fn ours(case: &Json) -> Json {
    let ty = match Type::load(&case["sig"]) {
        Ok(t) => t,
        Err(e) => return json!({"build": ["err", "TypeError", e.to_string()]}),
    };
    let raw = aurora_config::pystachio::json::json_to_raw(&case["value"]);
    let mut v: Value = match ty.instantiate(raw) {
        Ok(v) => v,
        Err(e) => return json!({"build": ["err", "Error", e.to_string()]}),
    };
    for b in case["binds"].as_array().into_iter().flatten() {
        let pairs = b.as_object().into_iter().flatten().map(|(k, x)| {
            let input = match x {
                Json::Bool(b) => EnvInput::Bool(*b),
                Json::Number(n) if n.is_i64() => EnvInput::Int(n.as_i64().unwrap_or(0)),
                Json::Number(n) => EnvInput::Float(n.as_f64().unwrap_or(0.0)),
                other => EnvInput::Str(other.as_str().unwrap_or("").to_string()),
            };
            (k.clone(), input)
        });
        v = v.bind(vec![Scope::Env(
            Env::from_pairs(pairs).expect("bind keys are valid"),
        )]);
    }
    let fields: serde_json::Map<String, Json> = ty
        .fields()
        .map(|f| {
            let r = v.field(f.name()).and_then(|x| match x {
                None => Ok(json!("<class 'pystachio.composite.Empty'>")),
                Some(x) => x.py_str().map(Json::from),
            });
            (f.name().to_string(), cap(r))
        })
        .collect();
    json!({
        "build": ["ok", null],
        "json": cap(v.json_dumps().map(Json::from)),
        "unbound": cap(v.interpolate().map(|(_, u)| {
            let mut s: Vec<String> = u.iter().map(|r| r.to_string()).collect();
            s.sort();
            json!(s)
        })),
        "check": cap(v.check().map(|c| Json::from(c.to_string()))),
        "repr": cap(v.repr().map(Json::from)),
        "fields": fields,
    })
}

fn theirs(python: &std::path::Path, cases: &[Json]) -> Vec<Json> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/difftest/oracle.py");
    let mut child = Command::new(python)
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {} {script}: {e}", python.display()));
    let mut input = String::new();
    for c in cases {
        input.push_str(&c.to_string());
        input.push('\n');
    }
    let mut stdin = child.stdin.take().expect("stdin is piped");
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let out = child.wait_with_output().expect("the oracle runs");
    assert!(
        out.status.success(),
        "the oracle {} {script} failed ({}): {}",
        python.display(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    writer
        .join()
        .expect("writer thread")
        .expect("cases written");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("oracle output is JSON"))
        .collect()
}

/// Outcomes where we deliberately differ: pystachio lets Python's `IndexError` escape when a
/// negative list index in a reference is out of range (`{{items[-1]}}` on an empty list); we
/// report the reference as unbound, like any other index that is out of range.
fn known_deviation(theirs: &Json) -> bool {
    theirs[0] == "err" && theirs[1] == "IndexError"
}

#[test]
fn engine_matches_real_pystachio() {
    let Some(python) = aurora_config::test_support::require(
        aurora_config::test_support::Input::Pystachio,
        "aurora-config difftest::engine_matches_real_pystachio",
    ) else {
        return;
    };
    let n: usize = std::env::var("DIFFTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1500);
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let cases: Vec<Json> = (0..n)
        .map(|_| {
            let sig = struct_sig(&mut rng, 0, "Outer");
            let value = struct_value(&mut rng, &sig, 0);
            json!({"sig": sig, "value": value, "binds": binds(&mut rng)})
        })
        .collect();
    let expected = theirs(&python, &cases);
    assert_eq!(
        expected.len(),
        cases.len(),
        "the oracle answered every case"
    );
    let mut diffs = Vec::new();
    let mut built = 0;
    let mut timeouts = 0;
    for (case, exp) in cases.iter().zip(&expected) {
        if exp.get("timeout").is_some() {
            timeouts += 1;
            continue;
        }
        let got = ours(case);
        // Build errors are compared by kind only: exception classes differ between languages.
        if exp["build"][0] == "err" || got["build"][0] == "err" {
            if exp["build"][0] != got["build"][0] {
                diffs.push(format!(
                    "case {case}\n  build ours {} theirs {}",
                    got["build"], exp["build"]
                ));
            }
            continue;
        }
        built += 1;
        for key in ["json", "unbound", "check", "repr"] {
            if got[key] != exp[key] && !known_deviation(&exp[key]) {
                diffs.push(format!(
                    "case {case}\n  {key}: ours {}\n  theirs {}",
                    got[key], exp[key]
                ));
            }
        }
        let fields_differ = exp["fields"]
            .as_object()
            .into_iter()
            .flatten()
            .any(|(k, e)| got["fields"].get(k) != Some(e) && !known_deviation(e));
        if fields_differ
            || got["fields"].as_object().map(|m| m.len())
                != exp["fields"].as_object().map(|m| m.len())
        {
            diffs.push(format!(
                "case {case}\n  fields: ours {}\n  theirs {}",
                got["fields"], exp["fields"]
            ));
        }
    }
    println!(
        "difftest: {n} cases, {built} built on both sides, {timeouts} skipped (pystachio ran out of time or memory), {} differences",
        diffs.len()
    );
    assert!(
        built * 2 > n,
        "too few cases built: {built} of {n} ({timeouts} timed out in Python)"
    );
    assert!(
        diffs.is_empty(),
        "{} differences in {n} cases; first ones:\n{}",
        diffs.len(),
        diffs.iter().take(8).cloned().collect::<Vec<_>>().join("\n")
    );
}
