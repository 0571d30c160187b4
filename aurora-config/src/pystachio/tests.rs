//! Engine behaviour tests; expectations were probed on pystachio 0.8.10. The §-numbers refer
//! to the semantics notes (`shared/research/pystachio-semantics.md`), §14 being its traps list.

use super::pyfmt::py_parse_bigint;
use super::*;

fn s(v: &str) -> Raw {
    Raw::str(v)
}

fn string(v: &str) -> Value {
    Type::string().instantiate(s(v)).unwrap()
}

fn st(name: &str, fields: &[(&str, Type)]) -> Type {
    Type::structure(
        name,
        fields
            .iter()
            .map(|(n, t)| FieldSpec::optional(n, t))
            .collect(),
    )
    .unwrap()
}

fn obj(ty: &Type, fields: Vec<(&str, Raw)>) -> Value {
    ty.instantiate(Raw::map(fields)).unwrap()
}

fn bind(v: &Value, pairs: &[(&str, &str)]) -> Value {
    v.bind_pairs(pairs.iter().copied()).unwrap()
}

fn env(pairs: Vec<(&str, EnvInput)>) -> Scope {
    Scope::Env(Env::from_pairs(pairs).unwrap())
}

/// `(str(interpolated), [unbound addresses])`, or the error text.
fn interp(v: &Value) -> Result<(String, Vec<String>), String> {
    let (iv, ub) = v.interpolate().map_err(|e| e.to_string())?;
    Ok((
        iv.py_str().map_err(|e| e.to_string())?,
        ub.iter().map(Ref::address).collect(),
    ))
}

fn check_interp(v: &Value, text: &str, unbound: &[&str]) {
    let got = interp(v).unwrap();
    assert_eq!(got.0, text);
    assert_eq!(
        got.1,
        unbound.iter().map(|s| s.to_string()).collect::<Vec<_>>()
    );
}

fn child_parent() -> (Type, Type) {
    let child = st(
        "Child",
        &[("other", Type::string()), ("value", Type::integer())],
    );
    let parent = st(
        "Parent",
        &[("child", child.clone()), ("name", Type::string())],
    );
    (child, parent)
}

#[test]
fn scalars_are_lazy_and_get_is_raw() {
    // §14.1
    let i = Type::integer().instantiate(s("abc")).unwrap();
    assert_eq!(i.get(), s("abc"));
    assert_eq!(
        i.interpolate().unwrap_err().to_string(),
        "Cannot coerce 'abc' to Integer"
    );
    assert_eq!(
        i.check().unwrap().to_string(),
        "TypeCheck(FAILED): Unable to interpolate: Cannot coerce 'abc' to Integer"
    );
    let five = Type::integer().instantiate(s("5")).unwrap();
    assert_eq!(five.get(), s("5"));
    assert_eq!(five.interpolate().unwrap().0.get(), Raw::Int(5));
    let b = bind(
        &Type::boolean().instantiate(s("{{f}}")).unwrap(),
        &[("f", "false")],
    );
    assert_eq!(b.get(), s("{{f}}"));
    assert_eq!(b.interpolate().unwrap().0.get(), Raw::Bool(false));
    assert_eq!(
        Type::string()
            .instantiate(Raw::None)
            .unwrap()
            .interpolate()
            .unwrap_err()
            .to_string(),
        "Cannot coerce 'None' to String"
    );
}

#[test]
fn coercions_follow_python() {
    let f = |t: Type, r: Raw| t.instantiate(r).unwrap().interpolate().map(|v| v.0.get());
    assert_eq!(f(Type::string(), Raw::Float(1e16)).unwrap(), s("1e+16"));
    assert_eq!(f(Type::string(), Raw::Float(1.0)).unwrap(), s("1.0"));
    assert_eq!(f(Type::string(), Raw::Bool(true)).unwrap(), s("True"));
    assert_eq!(f(Type::integer(), Raw::Float(1.9)).unwrap(), Raw::Int(1));
    assert_eq!(f(Type::integer(), s(" +1 ")).unwrap(), Raw::Int(1));
    assert_eq!(f(Type::integer(), s("1_000")).unwrap(), Raw::Int(1000));
    assert!(f(Type::integer(), s("1.0")).is_err());
    assert!(matches!(
        f(Type::integer(), Raw::Float(f64::INFINITY)),
        Err(EvalError::Overflow(_))
    ));
    assert_eq!(f(Type::float(), s(" 1e5 ")).unwrap(), Raw::Float(1e5));
    assert_eq!(f(Type::boolean(), s("TRUE")).unwrap(), Raw::Bool(true));
    assert_eq!(f(Type::boolean(), s("0")).unwrap(), Raw::Bool(false));
    assert_eq!(f(Type::boolean(), Raw::Int(2)).unwrap(), Raw::Bool(true));
    assert!(f(Type::boolean(), s("yes")).is_err());
    // Overflow is not caught by check().
    let inf = Type::integer()
        .instantiate(Raw::Float(f64::INFINITY))
        .unwrap();
    assert!(inf.check().is_err());
}

#[test]
fn bound_values_are_strings() {
    // §14.9
    let i = Type::integer().instantiate(s("{{x}}")).unwrap();
    let b = i.bind(vec![env(vec![("x", EnvInput::Float(1.0))])]);
    assert_eq!(
        b.check().unwrap().to_string(),
        "TypeCheck(FAILED): Unable to interpolate: Cannot coerce '1.0' to Integer"
    );
    let f = Type::float().instantiate(s("{{x}}")).unwrap();
    let f = f.bind(vec![env(vec![("x", EnvInput::Float(1e20))])]);
    assert_eq!(f.interpolate().unwrap().0.get(), Raw::Float(1e20));
    let t = string("{{x}}").bind(vec![env(vec![("x", EnvInput::Float(1e20))])]);
    check_interp(&t, "1e+20", &[]);
    let t = string("{{x}}").bind(vec![env(vec![("x", EnvInput::Bool(true))])]);
    check_interp(&t, "True", &[]);
}

#[test]
fn own_fields_shadow_bindings() {
    // §14.2: the canonical Aurora trap.
    let process = st(
        "Process",
        &[("name", Type::string()), ("cmdline", Type::string())],
    );
    let p = bind(
        &obj(&process, vec![("name", s("{{name}}"))]),
        &[("name", "installer")],
    );
    let msg = "Unable to interpolate {{name}}!  Maximum replacements reached.";
    assert_eq!(p.interpolate().unwrap_err().to_string(), msg);
    assert_eq!(p.json_dumps().unwrap_err().to_string(), msg);
    assert_eq!(
        p.check().unwrap().to_string(),
        format!("TypeCheck(FAILED): Process[name] failed: Unable to interpolate: {msg}")
    );
    let p = bind(
        &obj(
            &process,
            vec![("cmdline", s("echo {{name}}")), ("name", s("foo"))],
        ),
        &[("name", "bar")],
    );
    assert_eq!(
        p.field("cmdline").unwrap().unwrap().as_str(),
        Some("echo foo")
    );
    let (child, _) = child_parent();
    let c = bind(
        &obj(
            &child,
            vec![("other", s("{{value}}")), ("value", Raw::Int(1))],
        ),
        &[("value", "9")],
    );
    assert_eq!(c.field("other").unwrap().unwrap().as_str(), Some("1"));
}

#[test]
fn bind_and_in_scope_precedence() {
    // §14.3
    let t = string("{{x}}");
    let one = || env(vec![("x", EnvInput::Int(1))]);
    let two = || env(vec![("x", EnvInput::Int(2))]);
    check_interp(&t.bind(vec![one(), two()]), "2", &[]);
    check_interp(&t.bind(vec![one()]).in_scope(vec![two()]), "1", &[]);
    check_interp(&t.in_scope(vec![one(), two()]), "1", &[]);
    check_interp(&t.bind(vec![one()]).bind(vec![two()]), "2", &[]);
}

#[test]
fn fields_visible_downward_only() {
    // §14.4
    let (child, parent) = child_parent();
    let c = obj(&child, vec![("value", Raw::Int(3))]);
    let p = obj(
        &parent,
        vec![("child", Raw::Value(c)), ("name", s("{{value}}"))],
    );
    let (iv, ub) = p.interpolate().unwrap();
    assert_eq!(ub.iter().map(Ref::address).collect::<Vec<_>>(), ["value"]);
    assert_eq!(
        iv.repr().unwrap(),
        "Parent(child=Child(value=3),\n       name={{value}})"
    );
    // Siblings and paths are visible.
    let c = obj(
        &child,
        vec![
            ("other", s("{{name}}/{{self.value}}")),
            ("value", Raw::Int(4)),
        ],
    );
    let p = obj(&parent, vec![("child", Raw::Value(c)), ("name", s("n"))]);
    let pc = p.field("child").unwrap().unwrap();
    assert_eq!(pc.field("other").unwrap().unwrap().as_str(), Some("n/4"));
    let p2 = obj(
        &parent,
        vec![
            ("child", Raw::map([("value", Raw::Int(7))])),
            ("name", s("{{child.value}}")),
        ],
    );
    assert_eq!(p2.field("name").unwrap().unwrap().as_str(), Some("7"));
}

#[test]
fn dynamic_scoping_of_field_values() {
    // §14.5
    let (child, parent) = child_parent();
    let c = bind(&obj(&child, vec![("other", s("{{name}}"))]), &[("x", "cx")]);
    let p = bind(
        &obj(
            &parent,
            vec![("child", Raw::Value(c)), ("name", s("{{x}}"))],
        ),
        &[("x", "px")],
    );
    assert_eq!(p.field("name").unwrap().unwrap().as_str(), Some("px"));
    let pc = p.field("child").unwrap().unwrap();
    assert_eq!(pc.field("other").unwrap().unwrap().as_str(), Some("cx"));
}

#[test]
fn super_quirk_at_depth_three() {
    let c = st("C", &[("w", Type::string())]);
    let b = st("B", &[("c", c.clone()), ("v", Type::string())]);
    let a = st("A", &[("b", b.clone()), ("v", Type::string())]);
    let cv = obj(&c, vec![("w", s("{{super.v}}"))]);
    let bv = obj(&b, vec![("c", Raw::Value(cv.clone())), ("v", s("bv"))]);
    let av = obj(&a, vec![("b", Raw::Value(bv)), ("v", s("av"))]);
    let w = av
        .field("b")
        .unwrap()
        .unwrap()
        .field("c")
        .unwrap()
        .unwrap()
        .field("w")
        .unwrap();
    assert_eq!(w.unwrap().as_str(), Some("av"));
    // Without A's v, super.v is B's.
    let bv = obj(&b, vec![("c", Raw::Value(cv)), ("v", s("bv"))]);
    let av = obj(&a, vec![("b", Raw::Value(bv))]);
    let w = av
        .field("b")
        .unwrap()
        .unwrap()
        .field("c")
        .unwrap()
        .unwrap()
        .field("w")
        .unwrap();
    assert_eq!(w.unwrap().as_str(), Some("bv"));
}

#[test]
fn iterative_and_nested_resolution() {
    // §14.6
    let t = string("{{metavar{{number}}}}");
    check_interp(&bind(&t, &[("number", "1")]), "{{metavar1}}", &["metavar1"]);
    check_interp(&t, "{{metavar{{number}}}}", &["number"]);
    check_interp(&bind(&t, &[("number", "1"), ("metavar1", "z")]), "z", &[]);
    check_interp(
        &bind(
            &string("{{a}}"),
            &[("a", "{{b}}"), ("b", "{{c}}"), ("c", "deep")],
        ),
        "deep",
        &[],
    );
    let list = Type::list(&Type::string())
        .instantiate(Raw::List(vec![s("x"), s("y")]))
        .unwrap();
    let t = string("{{foo[{{bar}}]}}").bind(vec![env(vec![
        ("foo", EnvInput::Obj(list)),
        ("bar", EnvInput::Int(1)),
    ])]);
    check_interp(&t, "y", &[]);
    check_interp(
        &string("{{a}} {{b}} {{a}}"),
        "{{a}} {{b}} {{a}}",
        &["a", "b", "a"],
    );
}

#[test]
fn cycles_hit_the_iteration_cap() {
    let cyc = bind(&string("{{a}}"), &[("a", "{{a}}")]);
    assert_eq!(
        cyc.interpolate().unwrap_err().to_string(),
        "Unable to interpolate {{a}}!  Maximum replacements reached."
    );
    let mutual = bind(&string("{{a}}"), &[("a", "{{b}}"), ("b", "{{a}}")]);
    assert!(matches!(
        mutual.interpolate(),
        Err(EvalError::Uninterpolatable(_))
    ));
    let grow = bind(&string("{{a}}"), &[("a", "x{{a}}")]);
    let msg = grow.interpolate().unwrap_err().to_string();
    assert_eq!(msg.len(), 159, "{msg}");
    assert!(msg.starts_with(&format!(
        "Unable to interpolate {}{{{{a}}}}",
        "x".repeat(100)
    )));
    assert_eq!(
        cyc.check().unwrap().to_string(),
        "TypeCheck(FAILED): Unable to interpolate: Unable to interpolate {{a}}!  Maximum \
         replacements reached."
    );
}

#[test]
fn tag_syntax() {
    check_interp(&bind(&string("{{{x}}}"), &[("x", "1")]), "{1}", &[]);
    check_interp(
        &bind(&string("{{}} {{a} {a}}"), &[("a", "1")]),
        "{{}} {{a} {a}}",
        &[],
    );
    check_interp(&bind(&string("{{.a}}"), &[]), "{{a}}", &["a"]);
    for (tpl, err) in [
        ("{{#x}}", "#x"),
        ("{{ x }}", " x "),
        ("{{^x}}", "^x"),
        ("{{a b}}", "Badly formed address .a b"),
        ("{{&}}", "&"),
        ("{{a\nb}}", "Badly formed address .a\nb"),
    ] {
        let v = string(tpl);
        assert_eq!(
            v.interpolate().unwrap_err(),
            EvalError::InvalidRef(InvalidRef(err.into()))
        );
        // check() does not catch it.
        assert!(v.check().is_err());
    }
}

#[test]
fn escapes_are_not_idempotent() {
    // §14.7
    let (iv, ub) = string("{{&foo}}").interpolate().unwrap();
    assert_eq!(iv.get(), s("{{foo}}"));
    assert!(ub.is_empty());
    let process = st("Process", &[("cmdline", Type::string())]);
    let p = bind(
        &obj(&process, vec![("cmdline", s("echo {{&foo}}"))]),
        &[("foo", "x")],
    );
    assert_eq!(p.repr().unwrap(), "Process(cmdline=echo x)");
    assert_eq!(p.json_dumps().unwrap(), r#"{"cmdline": "echo {{foo}}"}"#);
    check_interp(&string("{{&a&}}"), "{{a}}", &[]);
    // Escapes next to resolved and unresolved references.
    check_interp(
        &bind(&string("{{&x}} {{y}}"), &[("y", "v")]),
        "{{x}} v",
        &[],
    );
    check_interp(
        &bind(&string("{{&x}} {{y}} {{z}}"), &[("y", "{{w}}"), ("w", "1")]),
        "{{x}} 1 {{z}}",
        &["z"],
    );
}

#[test]
fn check_of_unbound_values() {
    // §14.8
    assert!(string("{{x}}").check().unwrap().ok());
    let i = Type::integer().instantiate(s("{{x}}")).unwrap();
    assert_eq!(
        i.check().unwrap().to_string(),
        "TypeCheck(FAILED): '{{x}}' not an integer"
    );
    let i = Type::integer().instantiate(s("{{a}}'s")).unwrap();
    assert_eq!(i.check().unwrap().message(), "\"{{a}}'s\" not an integer");
    let b = Type::boolean().instantiate(s("{{x}}")).unwrap();
    assert_eq!(b.check().unwrap().message(), "'{{x}}' not a boolean");
    let f = Type::float().instantiate(s("{{x}}")).unwrap();
    assert_eq!(f.check().unwrap().message(), "'{{x}}' not a float");
    let e = Type::enumeration(None, &["Red", "Green"]);
    let ev = e.instantiate(s("{{x}}")).unwrap();
    assert_eq!(
        ev.check().unwrap().message(),
        "'{{x}}' not in the enumeration (Red, Green)"
    );
    assert_eq!(
        e.instantiate(s("Blue")).unwrap_err().to_string(),
        "Enum_Red_Green only accepts the following values: Red, Green"
    );
    assert_eq!(
        bind(&ev, &[("x", "Blue")])
            .interpolate()
            .unwrap_err()
            .to_string(),
        "Cannot coerce 'Blue' to Enum_Red_Green: Blue is not one of Red, Green"
    );
    let l = Type::list(&Type::integer())
        .instantiate(Raw::List(vec![s("{{x}}")]))
        .unwrap();
    assert_eq!(
        l.check().unwrap().message(),
        "Element in IntegerList failed check: '{{x}}' not an integer"
    );
    let m = Type::map(&Type::string(), &Type::integer())
        .instantiate(Raw::map([("a", s("{{x}}"))]))
        .unwrap();
    assert_eq!(
        m.check().unwrap().message(),
        "StringIntegerMap[a] value {{x}} failed check: '{{x}}' not an integer"
    );
    // Unbound refs survive into json as strings, even in Integer fields.
    let t = Type::structure("T", vec![FieldSpec::optional("n", &Type::integer())]).unwrap();
    assert_eq!(
        obj(&t, vec![("n", s("{{m}}"))]).json_dumps().unwrap(),
        r#"{"n": "{{m}}"}"#
    );
}

#[test]
fn nested_check_messages() {
    let resources = Type::structure(
        "Resources",
        vec![
            FieldSpec::required("cpu", &Type::float()),
            FieldSpec::required("ram", &Type::integer()),
        ],
    )
    .unwrap();
    let process = Type::structure(
        "Process",
        vec![
            FieldSpec::required("name", &Type::string()),
            FieldSpec::optional("resources", &resources),
        ],
    )
    .unwrap();
    let task = Type::structure(
        "Task",
        vec![FieldSpec::optional("processes", &Type::list(&process))],
    )
    .unwrap();
    let job = Type::structure("Job", vec![FieldSpec::required("task", &task)]).unwrap();
    let j = job
        .instantiate(Raw::map([(
            "task",
            Raw::map([(
                "processes",
                Raw::List(vec![Raw::map([
                    ("name", s("p")),
                    ("resources", Raw::map([("cpu", Raw::Float(1.0))])),
                ])]),
            )]),
        )]))
        .unwrap();
    assert_eq!(
        j.check().unwrap().message(),
        "Job[task] failed: Task[processes] failed: Element in ProcessList failed check: \
         Process[resources] failed: Resources[ram] is required."
    );
    assert_eq!(
        job.instantiate(Raw::map::<&str>([]))
            .unwrap()
            .check()
            .unwrap()
            .message(),
        "Job[task] is required."
    );
}

#[test]
fn list_and_map_lookup() {
    let list = Type::list(&Type::string())
        .instantiate(Raw::List(vec![s("a"), s("b"), s("c")]))
        .unwrap();
    let t = string("{{x[1]}} {{x[-1]}} {{x[a]}} {{x[5]}}")
        .bind(vec![env(vec![("x", EnvInput::Obj(list))])]);
    check_interp(&t, "b c {{x[a]}} {{x[5]}}", &["x[a]", "x[5]"]);
    let map = Type::map(&Type::string(), &Type::string())
        .instantiate(Raw::map([("k", s("v"))]))
        .unwrap();
    let t = string("{{m[k]}} {{m[q]}}").bind(vec![env(vec![("m", EnvInput::Obj(map))])]);
    check_interp(&t, "v {{m[q]}}", &["m[q]"]);
    let m = Type::map(&Type::string(), &Type::integer())
        .instantiate(Raw::map([("a", Raw::Int(1)), ("b", Raw::Int(2))]))
        .unwrap();
    assert_eq!(m.repr().unwrap(), "StringIntegerMap(a => 1, b => 2)");
    let l = Type::list(&Type::integer())
        .instantiate(Raw::List(vec![Raw::Int(1), Raw::Int(2)]))
        .unwrap();
    assert_eq!(l.repr().unwrap(), "IntegerList(1, 2)");
}

#[test]
fn object_scopes_and_mounts() {
    let (child, _) = child_parent();
    let c = obj(&child, vec![("other", s("o")), ("value", Raw::Int(2))]);
    let t = string("{{other}}-{{value}}").bind(vec![Scope::Obj(c.clone())]);
    check_interp(&t, "o-2", &[]);
    let t = string("{{c.other}} {{c}}").bind(vec![env(vec![("c", EnvInput::Obj(c))])]);
    check_interp(&t, "o Child(other=o,\n      value=2)", &[]);
    let t = string("{{a.b.c}}").bind(vec![env(vec![(
        "a",
        EnvInput::Dict(vec![(
            "b".into(),
            EnvInput::Dict(vec![("c".into(), EnvInput::Int(5))]),
        )]),
    )])]);
    check_interp(&t, "5", &[]);
    // No lookup of a key's parent.
    let t = string("{{x}}").bind(vec![env(vec![("x.y", EnvInput::Str("v".into()))])]);
    check_interp(&t, "{{x}}", &["x"]);
}

#[test]
fn json_key_order_follows_the_class() {
    // §14.10: a dict-built nested struct uses the re-created (sorted) class.
    let res = st(
        "Resources",
        &[("ram", Type::integer()), ("cpu", Type::float())],
    );
    let proc_ = st("Process", &[("resources", res.clone())]);
    let by_dict = obj(
        &proc_,
        vec![(
            "resources",
            Raw::map([("ram", Raw::Int(1)), ("cpu", Raw::Int(2))]),
        )],
    );
    assert_eq!(
        by_dict.json_dumps().unwrap(),
        r#"{"resources": {"cpu": 2.0, "ram": 1}}"#
    );
    let by_inst = obj(
        &proc_,
        vec![(
            "resources",
            Raw::Value(obj(&res, vec![("ram", Raw::Int(1)), ("cpu", Raw::Int(2))])),
        )],
    );
    assert_eq!(
        by_inst.json_dumps().unwrap(),
        r#"{"resources": {"ram": 1, "cpu": 2.0}}"#
    );
    assert_eq!(by_dict, by_inst);
}

#[test]
fn defaults_lose_bindings_and_factories_keep_them() {
    let res = st("R", &[("ram", Type::string())]);
    let d = bind(&obj(&res, vec![("ram", s("{{r}}"))]), &[("r", "5")]);
    let t = Type::structure(
        "T",
        vec![
            FieldSpec::with_default("res", &res, Raw::Value(d)),
            FieldSpec::with_default("n", &Type::integer(), Raw::Int(3)),
            FieldSpec::optional("name", &Type::string()),
        ],
    )
    .unwrap();
    let v = t.instantiate(Raw::map::<&str>([])).unwrap();
    assert_eq!(
        v.json_dumps().unwrap(),
        r#"{"res": {"ram": "{{r}}"}, "n": 3}"#
    );
    let b = bind(&v, &[("r", "9"), ("x", "y")]);
    let c = b
        .with_fields([("name", s("{{x}}")), ("n", Raw::Empty)])
        .unwrap();
    assert_eq!(
        c.json_dumps().unwrap(),
        r#"{"res": {"ram": "9"}, "name": "y"}"#
    );
    assert!(!c.has("n"));
    assert!(c.has("res"));
    assert!(matches!(
        t.instantiate(Raw::map([("bogus", Raw::Int(1))])),
        Err(BuildError::UnknownAttribute(a)) if a == "bogus"
    ));
}

#[test]
fn json_load_strict_and_filtering() {
    let inner = st("Inner", &[("a", Type::integer())]);
    let outer = st("Outer", &[("i", inner.clone()), ("l", Type::list(&inner))]);
    let text = r#"{"i": {"a": 1, "zz": 2}, "top": 3}"#;
    assert!(outer.json_loads(text, true).is_err());
    let v = outer.json_loads(text, false).unwrap();
    assert_eq!(v.json_dumps().unwrap(), r#"{"i": {"a": 1}}"#);
    // Filtering does not reach into lists.
    assert!(
        outer
            .json_loads(r#"{"l": [{"a": 1, "zz": 2}]}"#, false)
            .is_err()
    );
}

#[test]
fn python_json_format() {
    let t = st(
        "T",
        &[
            ("s", Type::string()),
            ("f", Type::float()),
            ("m", Type::map(&Type::integer(), &Type::boolean())),
        ],
    );
    let v = obj(
        &t,
        vec![
            ("s", s("é\"\n")),
            ("f", Raw::Float(1e22)),
            ("m", Raw::Map(vec![(Raw::Int(1), Raw::Bool(true))])),
        ],
    );
    assert_eq!(
        v.json_dumps().unwrap(),
        r#"{"s": "\u00e9\"\n", "f": 1e+22, "m": {"1": true}}"#
    );
}

#[test]
fn choice_resolution() {
    let c = Type::choice(None, &[Type::integer(), Type::string()]);
    let v = c.instantiate(s("{{x}}")).unwrap();
    assert_eq!(v.repr().unwrap(), "Choice_Integer_String('{{x}}')");
    assert_eq!(v.py_str().unwrap(), "{{x}}");
    let (u, _) = bind(&v, &[("x", "abc")]).interpolate().unwrap();
    assert_eq!(u.ty().name(), "String");
    let (u, _) = c
        .instantiate(Raw::Float(1.5))
        .unwrap()
        .interpolate()
        .unwrap();
    assert_eq!(u.get(), Raw::Int(1));
    let c2 = Type::choice(None, &[Type::float(), Type::integer()]);
    assert_eq!(
        c2.instantiate(Raw::Int(1))
            .unwrap()
            .interpolate()
            .unwrap()
            .0
            .get(),
        Raw::Float(1.0)
    );
    let c3 = Type::choice(None, &[Type::integer(), Type::boolean()]);
    assert_eq!(
        c3.instantiate(s("x")).unwrap().check().unwrap().message(),
        "Choice_Integer_Boolean typecheck failed: value x did not match any of its alternatives"
    );
}

#[test]
fn equality_and_hashing() {
    use std::collections::hash_map::DefaultHasher;
    use std::hash::{Hash, Hasher};
    let i1 = Type::integer().instantiate(Raw::Int(1)).unwrap();
    let i2 = Type::integer().instantiate(s("1")).unwrap();
    let f1 = Type::float().instantiate(Raw::Int(1)).unwrap();
    assert_eq!(i1, i2);
    assert_ne!(i1, f1);
    assert_eq!(string("a").bind_pairs([("x", "1")]).unwrap(), string("a"));
    let h = |v: &Value| {
        let mut h = DefaultHasher::new();
        v.hash(&mut h);
        h.finish()
    };
    assert_eq!(h(&i1), h(&i2));
    let t = Type::structure(
        "T",
        vec![FieldSpec::with_default("n", &Type::integer(), Raw::Int(3))],
    )
    .unwrap();
    assert_eq!(obj(&t, vec![]), obj(&t, vec![("n", Raw::Int(3))]));
    let m1 = Type::map(&Type::string(), &Type::integer());
    let a = m1
        .instantiate(Raw::map([("a", Raw::Int(1)), ("b", Raw::Int(2))]))
        .unwrap();
    let b = m1
        .instantiate(Raw::map([("b", Raw::Int(2)), ("a", Raw::Int(1))]))
        .unwrap();
    assert_ne!(a, b);
}

#[test]
fn type_signatures_round_trip() {
    let e = Type::enumeration(Some("Color"), &["R", "G"]);
    let inner = Type::structure(
        "Inner",
        vec![
            FieldSpec::required("z", &Type::string()),
            FieldSpec::with_default(
                "a",
                &Type::list(&Type::integer()),
                Raw::List(vec![Raw::Int(1)]),
            ),
        ],
    )
    .unwrap();
    let t = Type::structure(
        "Outer",
        vec![
            FieldSpec::optional("inner", &inner),
            FieldSpec::with_default("color", &e, s("R")),
            FieldSpec::optional(
                "m",
                &Type::map(
                    &Type::string(),
                    &Type::choice(None, &[Type::integer(), Type::string()]),
                ),
            ),
        ],
    )
    .unwrap();
    let ser = t.serialize().clone();
    assert_eq!(
        ser.to_string(),
        r#"["Struct","Outer",[["color",[false,"R",false,["Enum","Color",["R","G"]]]],["inner",[false,[],true,["Struct","Inner",[["a",[false,[1],false,["List",["Integer"]]]],["z",[true,[],true,["String"]]]]]]],["m",[false,[],true,["Map",["String"],["Choice","Choice_Integer_String",[["Integer"],["String"]]]]]]]]"#
    );
    let back = Type::load(&ser).unwrap();
    assert_eq!(back, t);
    assert_eq!(
        back.fields()
            .map(|f| f.name().to_string())
            .collect::<Vec<_>>(),
        ["color", "inner", "m"]
    );
}

#[test]
fn values_and_types_are_shareable_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Value>();
    assert_send_sync::<Type>();
    assert_send_sync::<Env>();
    assert_send_sync::<Ref>();
}

#[test]
fn maps_keep_duplicate_keys_in_order() {
    let m = Type::map(&Type::string(), &Type::integer())
        .instantiate(Raw::List(vec![
            Raw::List(vec![s("a"), Raw::Int(1)]),
            Raw::List(vec![s("a"), Raw::Int(2)]),
        ]))
        .unwrap();
    assert_eq!(m.repr().unwrap(), "StringIntegerMap(a => 1, a => 2)");
    assert_eq!(m.get(), Raw::Map(vec![(s("a"), Raw::Int(2))]));
    let t = string("{{m[a]}}").bind(vec![env(vec![("m", EnvInput::Obj(m.clone()))])]);
    check_interp(&t, "1", &[]);
    let holder = st("S", &[("m", Type::map(&Type::string(), &Type::integer()))]);
    assert_eq!(
        obj(&holder, vec![("m", Raw::Value(m))])
            .json_dumps()
            .unwrap(),
        r#"{"m": {"a": 2}}"#
    );
    // Keys are compared after coercion to the key type.
    let f = Type::map(&Type::float(), &Type::string())
        .instantiate(Raw::Map(vec![(Raw::Int(1), s("one"))]))
        .unwrap();
    let t = string("{{f[1.0]}} {{f[1]}}").bind(vec![env(vec![("f", EnvInput::Obj(f))])]);
    check_interp(&t, "one one", &[]);
}

/// A compact rendering of `scopes()`: `{sorted keys}` for an environment, `repr` for an object.
fn scopes_of(v: &Value) -> Vec<String> {
    v.scopes()
        .iter()
        .map(|s| match s {
            Scope::Env(e) => {
                let mut keys: Vec<String> = e.entries().map(|(k, _)| k.address()).collect();
                keys.sort();
                format!("{{{}}}", keys.join(" "))
            }
            Scope::Obj(o) => o.repr().unwrap(),
        })
        .collect()
}

#[test]
fn scopes_list_what_was_bound_in_order() {
    // Probed: String('{{n}}').bind(q, Environment(a=1), {'b': 2}, c=3).scopes() lists c, b, a,
    // q; in_scope keeps the order given.
    let q = st("Q", &[("n", Type::string())]);
    let qv = obj(&q, vec![("n", s("q"))]);
    let one = |k: &str| env(vec![(k, EnvInput::Int(1))]);
    let v = string("{{n}}");
    let bound = v.bind(vec![Scope::Obj(qv.clone()), one("a"), one("b")]);
    assert_eq!(scopes_of(&bound), ["{b}", "{a}", "Q(n=q)"]);
    let placed = v.in_scope(vec![Scope::Obj(qv), one("a"), one("b")]);
    assert_eq!(scopes_of(&placed), ["Q(n=q)", "{a}", "{b}"]);
    assert!(v.scopes().is_empty());
}

#[test]
fn struct_scopes_add_fields_and_super_copies() {
    // Probed: P(name='web').bind(x=1).bind(y=2).in_scope(z=3).scopes() is self.*, fields, y,
    // x, z, then super.y, super.x, super.z; an object o becomes {super: o}.
    let p = st("P", &[("name", Type::string()), ("port", Type::integer())]);
    let pv = obj(&p, vec![("name", s("web"))]);
    let one = |k: &str| env(vec![(k, EnvInput::Int(1))]);
    let b = bind(&bind(&pv, &[("x", "1")]), &[("y", "2")]).in_scope(vec![one("z")]);
    assert_eq!(
        scopes_of(&b),
        [
            "{self.name}",
            "{name}",
            "{y}",
            "{x}",
            "{z}",
            "{super.y}",
            "{super.x}",
            "{super.z}"
        ]
    );
    let q = obj(&p, vec![("name", s("q"))]);
    assert_eq!(
        scopes_of(&pv.bind(vec![Scope::Obj(q)])),
        ["{self.name}", "{name}", "P(name=q)", "{super}"]
    );
}

#[test]
fn find_returns_the_scoped_value_uninterpolated() {
    let l = Type::list(&Type::string());
    let p = st(
        "P",
        &[
            ("name", Type::string()),
            ("sub", l),
            ("port", Type::integer()),
        ],
    );
    let pv = bind(
        &obj(
            &p,
            vec![
                ("name", s("web")),
                ("sub", Raw::List(vec![s("{{x}}"), s("b")])),
            ],
        ),
        &[("x", "1")],
    );
    let find = |a: &str| pv.find(&Ref::parse(a).unwrap());
    let sub0 = find("sub[0]").unwrap();
    assert_eq!(sub0.get().as_str(), Some("{{x}}"));
    assert_eq!(sub0.py_str().unwrap(), "1");
    assert_eq!(find("sub[-1]").unwrap().get().as_str(), Some("b"));
    // The found value carries the struct's scopes: probed on pystachio.
    assert_eq!(scopes_of(&find("name").unwrap()).len(), 4);
    let err = |a: &str| find(a).unwrap_err().to_string();
    assert_eq!(err("port"), "Could not find port in object P");
    assert_eq!(err("[0]"), "Cannot dereference object P by [0]");
    assert_eq!(err("name.x"), "Object is not indexable: String");
    assert_eq!(err("sub[5]"), "Could not find 5 in object StringList");
    assert_eq!(err("sub[-5]"), "tuple index out of range");
    assert_eq!(err("sub[x]"), "Cannot dereference object StringList by [x]");
    assert_eq!(err("sub.x"), "Cannot dereference object StringList by .x");
    let m = Type::map(&Type::string(), &Type::integer());
    let mv = m.instantiate(Raw::map([("a", s("{{y}}"))])).unwrap();
    assert_eq!(
        mv.find(&Ref::parse("[a]").unwrap()).unwrap().get().as_str(),
        Some("{{y}}")
    );
    assert_eq!(
        mv.find(&Ref::parse("[b]").unwrap())
            .unwrap_err()
            .to_string(),
        "Could not find b in object StringIntegerMap"
    );
}

#[test]
fn integers_are_unbounded() {
    // Probed: Integer('9'*40), Integer(10**30), Integer(1e30), Float(10**400), Boolean(10**30).
    let nines = "9".repeat(40);
    let big = Raw::int(py_parse_bigint(&format!("1{}", "0".repeat(30))).unwrap());
    assert!(matches!(big, Raw::BigInt(_)));
    assert!(matches!(Raw::int(5.into()), Raw::Int(5)));
    let int = |r: Raw| Type::integer().instantiate(r).unwrap();
    assert_eq!(int(s(&nines)).repr().unwrap(), format!("Integer({nines})"));
    assert!(matches!(
        int(s(&nines)).interpolate().unwrap().0.scalar_raw(),
        Some(Raw::BigInt(_))
    ));
    assert!(int(s(&format!("-{nines}"))).check().unwrap().ok());
    assert_eq!(
        int(big.clone()).repr().unwrap(),
        "Integer(1000000000000000000000000000000)"
    );
    assert!(int(big.clone()).check().unwrap().ok());
    assert_eq!(
        int(Raw::Float(1e30)).repr().unwrap(),
        "Integer(1000000000000000019884624838656)"
    );
    assert!(int(Raw::Float(1e30)) != int(big.clone()));
    assert!(int(s("9223372036854775808")) == int(Raw::Float(2f64.powi(63))));
    assert_eq!(
        Type::float()
            .instantiate(big.clone())
            .unwrap()
            .repr()
            .unwrap(),
        "Float(1e+30)"
    );
    let huge = Raw::int(py_parse_bigint(&format!("1{}", "0".repeat(400))).unwrap());
    assert_eq!(
        Type::float()
            .instantiate(huge)
            .unwrap()
            .repr()
            .unwrap_err()
            .to_string(),
        "int too large to convert to float"
    );
    assert_eq!(
        Type::boolean()
            .instantiate(big.clone())
            .unwrap()
            .repr()
            .unwrap(),
        "Boolean(True)"
    );
    let p = st("P", &[("n", Type::integer()), ("f", Type::float())]);
    let pv = obj(&p, vec![("n", big.clone()), ("f", big)]);
    assert_eq!(
        pv.json_dumps().unwrap(),
        r#"{"n": 1000000000000000000000000000000, "f": 1e+30}"#
    );
    assert_eq!(
        p.json_loads(r#"{"n": 18446744073709551615}"#, false)
            .unwrap()
            .json_dumps()
            .unwrap(),
        r#"{"n": 18446744073709551615}"#
    );
}

/// The parser API the Python facade uses is the engine's: splitting, one join pass and full
/// resolution agree with values interpolating the same text (§4).
#[test]
fn template_api_agrees_with_interpolation() {
    let r = |a: &str| Ref::parse(a).unwrap();
    assert_eq!(
        segments("{{&x}} {{y}}", true).unwrap(),
        vec![
            Segment::Text("{{&x}}".into()),
            Segment::Text(" ".into()),
            Segment::Ref(r("y")),
        ]
    );
    assert_eq!(
        segments("{{{{a}}}}", false).unwrap(),
        vec![
            Segment::Text("{{".into()),
            Segment::Ref(r("a")),
            Segment::Text("}}".into()),
        ]
    );
    assert_eq!(segments("{{ x }}", false).unwrap_err().0, " x ");

    let pieces = segments("x{{a}}y{{b}}", false).unwrap();
    let joined = join_segments::<()>(&pieces, |_, r| {
        Ok((r.address() == "a").then(|| "A".to_string()))
    })
    .unwrap();
    assert_eq!(joined, ("xAy{{b}}".to_string(), vec![3]));

    let lookup = |r: &Ref| -> Result<Option<String>, ()> {
        Ok(match r.address().as_str() {
            "a" => Some("{{b}}".into()),
            "b" => Some("B".into()),
            "number" => Some("1".into()),
            _ => None,
        })
    };
    for (template, text, unbound) in [
        ("{{a}} {{c}} {{a}}", "B {{c}} B", vec!["c"]),
        ("{{&a}} {{a}}", "{{a}} B", vec![]),
        ("{{metavar{{number}}}}", "{{metavar1}}", vec!["metavar1"]),
    ] {
        let (got, refs) = resolve_text(template, lookup).unwrap();
        assert_eq!(got, text, "{template}");
        let refs: Vec<String> = refs.iter().map(Ref::address).collect();
        assert_eq!(refs, unbound, "{template}");
        let env = env(vec![
            ("a", EnvInput::Str("{{b}}".into())),
            ("b", EnvInput::Str("B".into())),
            ("number", EnvInput::Int(1)),
        ]);
        let v = string(template).bind(vec![env]);
        let (iv, ub) = v.interpolate().unwrap();
        assert_eq!(iv.get().py_str(), text, "{template}");
        assert_eq!(ub.iter().map(Ref::address).collect::<Vec<_>>(), unbound);
    }
    let cycle = resolve_text::<()>("{{a}}", |_| Ok(Some("{{a}}".into())));
    assert!(matches!(
        cycle,
        Err(ResolveError::Eval(EvalError::Uninterpolatable(_)))
    ));
    let failed = resolve_text("{{a}}", |_| Err("lookup failed"));
    assert!(matches!(failed, Err(ResolveError::Lookup("lookup failed"))));
}

/// A scope renders what a reference names in it alone; an environment finds through objects
/// mounted at a prefix.
#[test]
fn scopes_render_and_environments_find_through_objects() {
    let p = st("P", &[("name", Type::string()), ("cmd", Type::string())]);
    let pv = obj(&p, vec![("name", s("web")), ("cmd", s("run {{name}}"))]);
    let e = Env::from_pairs([("x", EnvInput::Obj(pv.clone())), ("y", EnvInput::Int(2))]).unwrap();
    let r = |a: &str| Ref::parse(a).unwrap();
    match e.get(&r("x.cmd")).unwrap() {
        Some(EnvValue::Obj(v)) => assert_eq!(v.py_str().unwrap(), "run web"),
        _ => panic!("x.cmd is the mounted struct's field"),
    }
    assert!(matches!(e.get(&r("y")).unwrap(), Some(EnvValue::Str(t)) if &*t == "2"));
    assert!(e.get(&r("x.nope")).unwrap().is_none());
    let scope = Scope::Obj(pv);
    assert_eq!(scope.render(&r("cmd")).unwrap().as_deref(), Some("run web"));
    assert_eq!(scope.render(&r("other")).unwrap(), None);
}

/// Matcher semantics: kinds and tests per step, at least as many components as steps.
#[test]
fn ref_patterns_match_prefixes() {
    let any = |_: &&str, _: &str| Ok::<_, ()>(true);
    let exact = |want: &&str, have: &str| Ok::<_, ()>(*want == "*" || *want == have);
    let p = RefPattern::default()
        .then(false, "packer")
        .then(true, "*")
        .then(true, "*");
    let r = |a: &str| Ref::parse(a).unwrap();
    let values = |a: &str| {
        p.prefix_of(&r(a), exact)
            .unwrap()
            .map(|v| v.iter().map(|x| x.to_string()).collect::<Vec<_>>())
    };
    assert_eq!(
        values("packer[a][b].g"),
        Some(vec!["packer".into(), "a".into(), "b".into()])
    );
    assert_eq!(values("packer[x]"), None);
    assert_eq!(values("packer.a[b]"), None);
    assert_eq!(values("other[a][b]"), None);
    assert_eq!(
        RefPattern::<&str>::default()
            .prefix_of(&r("z"), any)
            .unwrap(),
        Some(vec![])
    );
    let matched = p.prefix_of(&r("packer[a][b].g"), exact).unwrap().unwrap();
    assert_eq!(p.reference(&matched).address(), "packer[a][b]");
}

/// Type factory support: every nested type once, inner first; the signature as
/// `json.dumps` writes it; coercion as pystachio's `coerce`.
#[test]
fn types_list_their_parts_and_write_signatures() {
    let list = Type::list(&Type::integer());
    let t = Type::structure(
        "Prof",
        vec![
            FieldSpec::required("name", &Type::string()),
            FieldSpec::optional("tags", &list),
            FieldSpec::optional("ids", &list),
            FieldSpec::with_default("port", &Type::integer(), Raw::Int(80)),
        ],
    )
    .unwrap();
    let names: Vec<String> = t.nested().iter().map(|x| x.name().to_string()).collect();
    assert_eq!(names, ["Integer", "IntegerList", "String", "Prof"]);
    assert_eq!(
        t.signature_text(),
        r#"["Struct", "Prof", [["ids", [false, [], true, ["List", ["Integer"]]]], ["name", [true, [], true, ["String"]]], ["port", [false, 80, false, ["Integer"]]], ["tags", [false, [], true, ["List", ["Integer"]]]]]]"#
    );
    let loaded = Type::load(t.serialize()).unwrap();
    assert!(loaded.same_as(&t.recreated()));
    assert!(matches!(
        Type::integer().coerce(s(" 7 ")).unwrap(),
        Raw::Int(7)
    ));
    assert_eq!(
        Type::boolean().coerce(s("yes")).unwrap_err().to_string(),
        "Cannot coerce 'yes' to Boolean"
    );
}

/// Data no type accepts builds lazily and fails as a coercion error when used (§4).
#[test]
fn foreign_inputs_fail_as_coercion_errors() {
    let handle: std::sync::Arc<dyn std::any::Any + Send + Sync> = std::sync::Arc::new(42u8);
    let foreign = Raw::Foreign(Foreign::new("<object>", handle.clone()));
    for t in [
        Type::string(),
        Type::integer(),
        Type::float(),
        Type::boolean(),
    ] {
        let v = t.instantiate(foreign.clone()).unwrap();
        let err = v.interpolate().unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("Cannot coerce '<object>' to {}", t.name())
        );
        assert!(!v.check().unwrap().ok());
        match v.get() {
            Raw::Foreign(f) => assert!(std::sync::Arc::ptr_eq(f.handle(), &handle)),
            other => panic!("get() gave {other:?}"),
        }
    }
}

/// A choice inside a struct, list or map stays a choice through interpolation, holding the
/// alternative it resolved to; on its own it interpolates to the alternative (§4).
#[test]
fn choices_keep_their_wrapper_inside_containers() {
    let c = Type::choice(None, &[Type::integer(), Type::string()]);
    let t = st("S", &[("c", c.clone()), ("l", Type::list(&c))]);
    let v = bind(
        &obj(
            &t,
            vec![
                ("c", s("{{x}}")),
                ("l", Raw::List(vec![Raw::Int(1), s("a")])),
            ],
        ),
        &[("x", "abc")],
    );
    let (iv, _) = v.interpolate().unwrap();
    let field = iv.raw_field("c").unwrap();
    assert_eq!(field.ty().name(), "Choice_Integer_String");
    assert_eq!(field.repr().unwrap(), "Choice_Integer_String(String(abc))");
    assert_eq!(
        field.interpolate().unwrap().0.repr().unwrap(),
        "String(abc)"
    );
    let accessor = v.field("c").unwrap().unwrap();
    assert_eq!(accessor.ty().name(), "Choice_Integer_String");
    let items = iv.raw_field("l").unwrap().elements().to_vec();
    let kinds: Vec<String> = items
        .iter()
        .map(|e| e.interpolate().unwrap().0.ty().name().to_string())
        .collect();
    assert_eq!(kinds, ["Integer", "String"]);
    assert!(
        items
            .iter()
            .all(|e| e.ty().name() == "Choice_Integer_String")
    );
    assert_eq!(iv.json_dumps().unwrap(), r#"{"c": "abc", "l": [1, "a"]}"#);
    let top = c.instantiate(s("{{y}}")).unwrap();
    let (alt, _) = bind(&top, &[("y", "3")]).interpolate().unwrap();
    assert_eq!(alt.repr().unwrap(), "Integer(3)");
}
