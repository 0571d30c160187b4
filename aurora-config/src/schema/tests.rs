//! Schema, helper and job-evaluation tests.

use super::*;
use crate::pystachio::Raw;

fn s(v: &str) -> Raw {
    Raw::str(v)
}

fn process(name: &str, cmd: &str) -> Value {
    schema()
        .process
        .instantiate(Raw::map([("name", s(name)), ("cmdline", s(cmd))]))
        .unwrap()
}

fn job_json(extra: &str) -> String {
    format!(
        r#"{{"name": "hello", "role": "www-data", "cluster": "devcluster", "environment": "prod",
        "task": {{"processes": [{{"name": "hello", "cmdline": "echo {{{{role}}}}"}}],
        "resources": {{"cpu": 1.0, "ram": 134217728, "disk": 134217728}}}}{extra}}}"#
    )
}

fn problems(extra: &str) -> Vec<ConfigProblem> {
    evaluate_job(&load_job_json(&job_json(extra)).unwrap()).unwrap_err()
}

#[test]
fn defaults_of_the_0_6_schema() {
    let sc = schema();
    let p = process("p", "c");
    assert_eq!(
        p.json_dumps().unwrap(),
        r#"{"cmdline": "c", "name": "p", "max_failures": 1, "daemon": false, "ephemeral": false, "min_duration": 5, "final": false}"#
    );
    let u = sc.update_config.instantiate(Raw::Map(vec![])).unwrap();
    assert_eq!(
        u.json_dumps().unwrap(),
        r#"{"batch_size": 1, "restart_threshold": 60, "watch_secs": 45, "max_per_shard_failures": 0, "max_total_failures": 0, "rollback_on_failure": true, "wait_for_batch_completion": false}"#
    );
    let a = sc.announcer.instantiate(Raw::Map(vec![])).unwrap();
    assert_eq!(
        a.json_dumps().unwrap(),
        r#"{"primary_port": "http", "portmap": {"aurora": "http"}}"#
    );
    let t = sc
        .task
        .instantiate(Raw::map([("processes", Raw::List(vec![Raw::Value(p)]))]))
        .unwrap();
    assert_eq!(t.field("name").unwrap().unwrap().as_str(), Some("p"));
    // Job defaults: health check and update config come from re-created (sorted) classes.
    let j = load_job_json(&job_json("")).unwrap();
    let dumped = j.json_dumps().unwrap();
    assert!(dumped.contains(
        r#""health_check_config": {"initial_interval_secs": 15.0, "interval_secs": 10.0, "max_consecutive_failures": 0, "timeout_secs": 1.0}"#
    ), "{dumped}");
    assert!(dumped.starts_with(r#"{"name": "hello", "role": "www-data""#));
}

#[test]
fn service_is_a_factory() {
    let svc = schema().service.with_fields([("name", s("x"))]).unwrap();
    assert_eq!(svc.field("service").unwrap().unwrap().as_bool(), Some(true));
    assert_eq!(svc.field("name").unwrap().unwrap().as_str(), Some("x"));
}

#[test]
fn unknown_attributes_of_later_schemas_are_rejected() {
    for bad in [r#"{"tier": "preferred"}"#, r#"{"container": {}}"#] {
        assert!(schema().job.json_loads(bad, true).is_err());
    }
    let res = schema()
        .resources
        .instantiate(Raw::map([("gpu", Raw::Int(1))]));
    assert!(matches!(res, Err(crate::pystachio::BuildError::UnknownAttribute(a)) if a == "gpu"));
}

#[test]
fn helpers() {
    let a = process("a", "x");
    let b = process("b", "y");
    let o = order(&[OrderItem::Process(a.clone()), OrderItem::Name("b".into())]).unwrap();
    assert_eq!(o[0].json_dumps().unwrap(), r#"{"order": ["a", "b"]}"#);
    let st = simple_task("hello", "echo hi").unwrap();
    let dumped = st.json_dumps().unwrap();
    assert!(
        dumped.contains(r#""resources": {"cpu": 1.0, "ram": 1073741824, "disk": 1073741824}"#),
        "{dumped}"
    );
    let seq = sequential_task(Raw::map([(
        "processes",
        Raw::List(vec![Raw::Value(a.clone()), Raw::Value(b.clone())]),
    )]))
    .unwrap();
    assert_eq!(
        seq.field("constraints")
            .unwrap()
            .unwrap()
            .json_dumps()
            .unwrap(),
        r#"[{"order": ["a", "b"]}]"#
    );
    let with_cons = Raw::map([
        ("processes", Raw::List(vec![Raw::Value(a.clone())])),
        (
            "constraints",
            Raw::List(o.iter().cloned().map(Raw::Value).collect()),
        ),
    ]);
    assert_eq!(
        sequential_task(with_cons),
        Err(HelperError::SequentialWithConstraints)
    );

    let res = |cpu: f64, ram: i64| {
        Raw::map([
            ("cpu", Raw::Float(cpu)),
            ("ram", Raw::Int(ram)),
            ("disk", Raw::Int(ram)),
        ])
    };
    let t1 = schema()
        .task
        .instantiate(Raw::map([
            ("processes", Raw::List(vec![Raw::Value(a.clone())])),
            ("resources", res(1.0, 2 * GB)),
            ("finalization_wait", Raw::Int(10)),
        ]))
        .unwrap();
    let t2 = schema()
        .task
        .instantiate(Raw::map([
            ("processes", Raw::List(vec![Raw::Value(b.clone())])),
            ("resources", res(2.0, GB)),
            ("finalization_wait", Raw::Int(20)),
        ]))
        .unwrap();
    let comb = combine_tasks(&[t1.clone(), t2.clone()], Raw::Map(vec![])).unwrap();
    let r = comb.field("resources").unwrap().unwrap();
    assert_eq!(r.field("cpu").unwrap().unwrap().as_float(), Some(3.0));
    assert_eq!(r.field("ram").unwrap().unwrap().as_int(), Some(3 * GB));
    assert_eq!(
        comb.field("finalization_wait").unwrap().unwrap().as_int(),
        Some(20)
    );
    assert_eq!(comb.field("name").unwrap().unwrap().as_str(), Some("a"));
    let cat = concat_tasks(&[t1, t2], Raw::map([("name", s("both"))])).unwrap();
    let r = cat.field("resources").unwrap().unwrap();
    assert_eq!(r.field("cpu").unwrap().unwrap().as_float(), Some(2.0));
    assert_eq!(r.field("ram").unwrap().unwrap().as_int(), Some(2 * GB));
    assert_eq!(
        cat.field("finalization_wait").unwrap().unwrap().as_int(),
        Some(30)
    );
    assert_eq!(
        cat.field("constraints")
            .unwrap()
            .unwrap()
            .json_dumps()
            .unwrap(),
        r#"[{"order": ["a", "b"]}]"#
    );
    assert_eq!(cat.field("name").unwrap().unwrap().as_str(), Some("both"));
    assert_eq!((KB, MB, TB), (1024, 1 << 20, 1 << 40));
}

#[test]
fn bindings_and_selection() {
    let b = parse_binding("x=1").unwrap();
    assert_eq!(b.value, "1");
    assert!(parse_binding("novalue").is_err());
    assert!(parse_binding("1x=2").is_err());
    let j = load_job_json(&job_json("")).unwrap();
    let renamed = j.with_fields([("name", s("{{n}}"))]).unwrap();
    let jobs = bind_all(
        &[j.clone(), renamed],
        &[
            parse_binding("n=other").unwrap(),
            parse_binding("n=third").unwrap(),
        ],
    )
    .unwrap();
    let sel = |name: &str, env: Option<&str>| JobSelector {
        name: Some(name.into()),
        environment: env.map(Into::into),
        ..JobSelector::default()
    };
    // The later binding wins.
    assert!(select_job(&jobs, &sel("third", None)).is_ok());
    assert!(matches!(
        select_job(&jobs, &sel("other", None)),
        Err(JobError::NotFound { .. })
    ));
    assert!(select_job(&jobs, &sel("hello", Some("prod"))).is_ok());
    assert!(matches!(
        select_job(&jobs, &sel("hello", Some("devel"))),
        Err(JobError::NotFound { .. })
    ));
    assert_eq!(
        select_job(&jobs, &JobSelector::default()).unwrap_err(),
        JobError::NoName
    );
    assert_eq!(
        select_job(&[], &JobSelector::default()).unwrap_err(),
        JobError::NoJobs
    );
    let twins = vec![j.clone(), j];
    assert_eq!(
        select_job(&twins, &sel("hello", None)).unwrap_err(),
        JobError::Ambiguous
    );
}

#[test]
fn evaluation_of_a_good_job() {
    let j = load_job_json(&job_json(
        r#", "announce": {}, "task_links": {"h": "{{thermos.ports[http]}}"}"#,
    ))
    .unwrap();
    let ev = evaluate_job(&j).unwrap();
    assert_eq!(ev.job_key, "devcluster/www-data/prod/hello");
    assert_eq!(ev.ports, vec!["http".to_string()]);
    assert_eq!(
        ev.raw_json["task"]["processes"][0]["cmdline"],
        "echo www-data"
    );
    assert!(ev.executor_json().unwrap().get("instances").is_none());
    assert!(
        ev.executor_data()
            .unwrap()
            .starts_with(r#"{"name": "hello", "role": "www-data""#)
    );
    // Standard bindings: mesos.role, mesos.cluster and thermos.user.
    let j = load_job_json(&job_json("").replace("echo {{role}}", "{{mesos.role}}@{{mesos.cluster}} {{thermos.user}} {{mesos.instance}} {{thermos.task_id}} {{thermos.ports[x]}}")).unwrap();
    let ev = evaluate_job(&j).unwrap();
    assert_eq!(
        ev.raw_json["task"]["processes"][0]["cmdline"],
        "www-data@devcluster www-data {{mesos.instance}} {{thermos.task_id}} {{thermos.ports[x]}}"
    );
    assert_eq!(ev.ports, vec!["x".to_string()]);
}

#[test]
fn every_problem_is_reported_with_its_path() {
    let text = r#"{"name": "hello", "role": "www-data", "environment": "qa", "instances": 2,
      "update_config": {"max_total_failures": 2, "watch_secs": 10},
      "task": {"processes": [
          {"name": "a", "cmdline": "{{unbound_a}}", "daemon": true},
          {"name": "b/c", "cmdline": "x", "max_failures": "{{m}}"},
          {"name": "e", "cmdline": "x", "ephemeral": true},
          {"name": "f", "cmdline": "x", "final": true},
          {"name": "g", "cmdline": "x"}],
        "constraints": [{"order": ["a", "b/c"]}, {"order": ["e", "g"]}, {"order": ["g", "f"]},
                        {"order": ["zz"]}, {"order": ["g", "e"]}]}}"#;
    let probs = evaluate_job(&load_job_json(text).unwrap()).unwrap_err();
    let has = |path: &str, needle: &str| {
        probs
            .iter()
            .any(|p| p.path == path && p.message.contains(needle))
    };
    let dump = format!("{probs:#?}");
    assert!(has("cluster", "MesosJob[cluster] is required."), "{dump}");
    assert!(
        has("environment", "Environment name should be one of"),
        "{dump}"
    );
    assert!(
        has("task.processes[1].max_failures", "'{{m}}' not an integer"),
        "{dump}"
    );
    assert!(has("task.processes[1].name", "^[^./][^/]*$"), "{dump}");
    assert!(
        has("task.resources", "Task must specify resources!"),
        "{dump}"
    );
    assert!(
        has(
            "update_config.max_total_failures",
            "lesser than the job size"
        ),
        "{dump}"
    );
    assert!(
        has("update_config.watch_secs", "must be greater than"),
        "{dump}"
    );
    assert!(
        has("task.constraints[0].order", "depends on daemon"),
        "{dump}"
    );
    assert!(
        has("task.constraints[1].order", "depends on ephemeral"),
        "{dump}"
    );
    assert!(
        has("task.constraints[2].order", "Final and non-final"),
        "{dump}"
    );
    assert!(
        has("task.constraints[3].order", "Unknown process"),
        "{dump}"
    );
    assert!(has("task.constraints", "cycle"), "{dump}");
    assert!(
        has("", "Config contains unbound variables: {{unbound_a}} {{m}}"),
        "{dump}"
    );
}

#[test]
fn more_rules() {
    let p = problems(r#", "announce": {"portmap": {"http": "8080"}}"#);
    assert!(
        p.iter()
            .any(|p| p.path == "announce.portmap" && p.message.contains("dedicated")),
        "{p:?}"
    );
    let ok = load_job_json(&job_json(
        r#", "announce": {"portmap": {"http": "8080"}}, "constraints": {"dedicated": "x"}"#,
    ))
    .unwrap();
    assert!(evaluate_job(&ok).is_ok());
    for env in ["prod", "devel", "test", "staging", "staging12"] {
        let j = load_job_json(&job_json("").replace("\"prod\"", &format!("{env:?}"))).unwrap();
        assert!(evaluate_job(&j).is_ok(), "{env}");
    }
    let j = load_job_json(&job_json("").replace("\"prod\"", "\"staging1a\"")).unwrap();
    assert!(evaluate_job(&j).is_err());
    let p = problems(r#", "instances": 100, "constraints": {"dedicated": "x"}"#);
    assert!(
        p.iter().any(|p| p.message.contains("2% of your job size")),
        "{p:?}"
    );
    let cyc = load_job_json(&job_json("").replace("echo {{role}}", "{{name}}").replace(
        r#""name": "hello", "cmdline""#,
        r#""name": "{{name}}", "cmdline""#,
    ))
    .unwrap();
    let p = evaluate_job(&cyc).unwrap_err();
    assert!(
        p[0].message.contains("Maximum replacements reached"),
        "{p:?}"
    );
}

#[test]
fn escapes_are_read_again_as_aurora_0_6_reads_them() {
    // `{{&nowhere}}` is the literal `{{nowhere}}` once the job is interpolated in its context;
    // Aurora 0.6 then reads that interpolated job again, where it is a reference nothing binds.
    let text = job_json("").replace("echo {{role}}", "echo {{&nowhere}} {{&role}}");
    let p = evaluate_job(&load_job_json(&text).unwrap()).unwrap_err();
    assert!(
        p.iter()
            .any(|p| p.message == "Config contains unbound variables: {{nowhere}}"),
        "{p:?}"
    );
    // What the job defines or binds resolves in the second reading, as on pystachio 0.8.10
    // (interpolated text keeps its scopes): the process's own `name`, a `-E` binding. An
    // escaped port is a port the job asks for.
    let text = job_json("").replace(
        "echo {{role}}",
        "echo {{&name}} {{&build}} {{&thermos.ports[http]}}",
    );
    let j = bind_all(
        &[load_job_json(&text).unwrap()],
        &[parse_binding("build=7").unwrap()],
    )
    .unwrap()
    .remove(0);
    let ev = evaluate_job(&j).unwrap();
    let cmdline = "echo hello 7 {{thermos.ports[http]}}";
    assert_eq!(ev.raw_json["task"]["processes"][0]["cmdline"], cmdline);
    assert_eq!(
        ev.executor_json().unwrap()["task"]["processes"][0]["cmdline"],
        cmdline
    );
    assert_eq!(ev.ports, vec!["http".to_string()]);
}
