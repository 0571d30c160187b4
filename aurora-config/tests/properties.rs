//! Engine laws, checked on generated templates and configs.

use aurora_config::pystachio::{Env, EnvInput, Raw, Scope, Type, Value};
use aurora_config::schema::schema;
use proptest::prelude::*;

const NAMES: [&str; 5] = ["a", "b", "c", "d", "e"];

#[derive(Clone, Debug)]
enum Piece {
    Lit(String),
    Ref(usize),
}

fn pieces() -> impl Strategy<Value = Vec<Piece>> {
    prop::collection::vec(
        prop_oneof![
            "[a-z0-9 ./:-]{0,6}".prop_map(Piece::Lit),
            (0..NAMES.len()).prop_map(Piece::Ref),
        ],
        0..8,
    )
}

fn text(p: &[Piece]) -> String {
    p.iter()
        .map(|x| match x {
            Piece::Lit(s) => s.clone(),
            Piece::Ref(i) => format!("{{{{{}}}}}", NAMES[*i]),
        })
        .collect()
}

fn bindings() -> impl Strategy<Value = Vec<Option<String>>> {
    prop::collection::vec(prop::option::of("[a-z0-9 _-]{0,5}"), NAMES.len())
}

fn env(b: &[Option<String>]) -> Scope {
    let pairs = NAMES
        .iter()
        .zip(b)
        .filter_map(|(n, v)| Some((*n, EnvInput::Str(v.clone()?))));
    Scope::Env(Env::from_pairs(pairs).unwrap())
}

fn string(s: &str) -> Value {
    Type::string().instantiate(Raw::str(s)).unwrap()
}

fn outcome(v: &Value) -> (String, Vec<String>) {
    let (iv, ub) = v.interpolate().unwrap();
    (
        iv.as_str().unwrap_or_default().to_string(),
        ub.iter().map(|r| r.address()).collect(),
    )
}

proptest! {
    /// Binding then interpolating equals interpolating the partially interpolated value after
    /// binding, and equals plain substitution.
    #[test]
    fn bind_then_interpolate(p in pieces(), b in bindings()) {
        let v = string(&text(&p));
        let bound = outcome(&v.bind(vec![env(&b)]));
        let later = outcome(&v.interpolate().unwrap().0.bind(vec![env(&b)]));
        prop_assert_eq!(&bound, &later);
        let mut expect = String::new();
        let mut unbound = Vec::new();
        for x in &p {
            match x {
                Piece::Lit(s) => expect.push_str(s),
                Piece::Ref(i) => match &b[*i] {
                    Some(val) => expect.push_str(val),
                    None => {
                        expect.push_str(&format!("{{{{{}}}}}", NAMES[*i]));
                        unbound.push(NAMES[*i].to_string());
                    }
                },
            }
        }
        if unbound.is_empty() {
            prop_assert_eq!(bound, (expect, unbound));
        } else {
            prop_assert_eq!(bound.1, unbound);
        }
    }

    /// A later bind wins over an earlier one, like one merged environment.
    #[test]
    fn later_binds_win(p in pieces(), b1 in bindings(), b2 in bindings()) {
        let v = string(&text(&p));
        let twice = outcome(&v.bind(vec![env(&b1)]).bind(vec![env(&b2)]));
        let merged: Vec<Option<String>> = b1.iter().zip(&b2).map(|(x, y)| y.clone().or(x.clone())).collect();
        prop_assert_eq!(twice, outcome(&v.bind(vec![env(&merged)])));
    }

    /// A config whose every reference is bound has no unbound references left.
    #[test]
    fn fully_bound_config_has_no_unbound_refs(cmds in prop::collection::vec(pieces(), 1..6), vals in prop::collection::vec("[a-z0-9]{1,4}", NAMES.len())) {
        let procs: Vec<Raw> = cmds.iter().enumerate().map(|(i, p)| Raw::map([
            ("name", Raw::str(format!("p{i}"))),
            ("cmdline", Raw::str(text(p))),
            ("max_failures", Raw::str("{{a}}".replace('a', "d")).clone()),
        ])).collect();
        let task = schema().task.instantiate(Raw::map([("processes", Raw::List(procs))])).unwrap();
        let numeric: Vec<Option<String>> = vals.iter().enumerate().map(|(i, v)| Some(if NAMES[i] == "d" { "3".to_string() } else { v.clone() })).collect();
        let bound = task.bind(vec![env(&numeric)]);
        let (iv, unbound) = bound.interpolate().unwrap();
        prop_assert!(unbound.is_empty());
        prop_assert!(!iv.json_dumps().unwrap().contains("{{"));
        prop_assert!(bound.check().unwrap().ok());
    }

    /// Dumping a job to JSON and loading it back gives the same JSON.
    #[test]
    fn json_dump_then_load_is_identity(
        names in prop::collection::vec("[a-zA-Z0-9_é\"\\\\ ]{1,8}", 1..5),
        cpu in 0.0f64..64.0,
        ram in 0i64..(1i64 << 40),
        flags in prop::collection::vec(any::<bool>(), 3),
        cmd in pieces(),
        wait in any::<i32>(),
    ) {
        let procs: Vec<Raw> = names.iter().map(|n| Raw::map([
            ("name", Raw::str(n)),
            ("cmdline", Raw::str(text(&cmd))),
            ("daemon", Raw::Bool(flags[0])),
            ("final", Raw::Bool(flags[1])),
        ])).collect();
        let job = schema().job.instantiate(Raw::map([
            ("name", Raw::str("j")),
            ("role", Raw::str("r")),
            ("production", Raw::Bool(flags[2])),
            ("task", Raw::map([
                ("processes", Raw::List(procs)),
                ("finalization_wait", Raw::Int(i64::from(wait))),
                ("resources", Raw::map([("cpu", Raw::Float(cpu)), ("ram", Raw::Int(ram)), ("disk", Raw::Int(ram))])),
            ])),
            ("constraints", Raw::map([("host", Raw::str("limit:1"))])),
        ])).unwrap();
        let text1 = job.json_dumps().unwrap();
        let back = schema().job.json_loads(&text1, true).unwrap();
        prop_assert_eq!(back.to_json().unwrap(), job.to_json().unwrap());
        let again = schema().job.json_loads(&back.json_dumps().unwrap(), true).unwrap();
        prop_assert_eq!(again.json_dumps().unwrap(), back.json_dumps().unwrap());
        prop_assert!(back == job);
    }
}
