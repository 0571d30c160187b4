//! The Aurora 0.6 and Thermos schema on top of the Pystachio engine: `Process`, `Task`,
//! `Resources`, `Constraint`, `Job` (`MesosJob`) and `Service`, `UpdateConfig`,
//! `HealthCheckConfig`, `Announcer`, the `mesos`/`thermos` template namespaces, the helpers
//! (`order`, `SimpleTask`, `SequentialTask`, `Tasks.concat`/`combine`, `KB`..`TB`), and the
//! job-level functions the client calls (selection, `-E` bindings, validation, evaluation).
//!
//! Only the 0.6 objects are carried. Later additions (Docker, Container, Mesos images, tiers,
//! `gpu`, partition and SLA policies) are rejected as unknown attributes, exactly as Aurora
//! 0.6 rejects them; the corpus records those files as load errors.

mod job;
mod python;

use std::sync::OnceLock;

pub use job::{
    Binding, ConfigProblem, EvaluatedJob, JobError, JobSelector, bind_all, evaluate_job,
    job_raw_json, load_job_json, parse_binding, select_job,
};

pub use python::{PythonSourceError, pystachio_source};

use crate::pystachio::{BuildError, EvalError, FieldSpec, Raw, Type, Value};

/// One byte.
pub const BYTES: i64 = 1;
/// 1024 bytes.
pub const KB: i64 = 1024;
/// 1024² bytes.
pub const MB: i64 = 1024 * KB;
/// 1024³ bytes.
pub const GB: i64 = 1024 * MB;
/// 1024⁴ bytes.
pub const TB: i64 = 1024 * GB;

/// The schema's struct types, built once.
pub struct Schema {
    /// `ThermosContext`: `ports`, `task_id`, `user` (the `{{thermos.*}}` namespace).
    pub thermos_context: Type,
    /// `MesosContext`: `instance` (the `{{mesos.*}}` namespace).
    pub mesos_context: Type,
    /// `Resources`: `cpu`, `ram` and `disk` (bytes), all required.
    pub resources: Type,
    /// `Constraint`: `order`, a list of process names.
    pub constraint: Type,
    /// `Process`.
    pub process: Type,
    /// `Task`.
    pub task: Type,
    /// `UpdateConfig`.
    pub update_config: Type,
    /// `HealthCheckConfig`.
    pub health_check_config: Type,
    /// `Announcer`.
    pub announcer: Type,
    /// `MesosTaskInstance`, the legacy executor payload.
    pub mesos_task_instance: Type,
    /// `MesosJob`, also exported as `Job`.
    pub job: Type,
    /// `Service`: a `Job` instance with `service=True`, called as a factory.
    pub service: Value,
}

impl Schema {
    /// The struct types, each after the types its fields use.
    pub fn struct_types(&self) -> [&Type; 11] {
        [
            &self.thermos_context,
            &self.mesos_context,
            &self.resources,
            &self.constraint,
            &self.process,
            &self.task,
            &self.update_config,
            &self.health_check_config,
            &self.announcer,
            &self.mesos_task_instance,
            &self.job,
        ]
    }
}

fn f(name: &str, ty: &Type) -> FieldSpec {
    FieldSpec::optional(name, ty)
}
fn req(name: &str, ty: &Type) -> FieldSpec {
    FieldSpec::required(name, ty)
}
fn def(name: &str, ty: &Type, raw: Raw) -> FieldSpec {
    FieldSpec::with_default(name, ty, raw)
}

fn build() -> Result<Schema, BuildError> {
    let (s, i, fl, b) = (
        Type::string(),
        Type::integer(),
        Type::float(),
        Type::boolean(),
    );
    let empty_map = || Raw::Map(vec![]);
    let thermos_context = Type::structure(
        "ThermosContext",
        vec![
            f("ports", &Type::map(&s, &i)),
            f("task_id", &s),
            f("user", &s),
        ],
    )?;
    let mesos_context = Type::structure("MesosContext", vec![req("instance", &i)])?;
    let resources = Type::structure(
        "Resources",
        vec![req("cpu", &fl), req("ram", &i), req("disk", &i)],
    )?;
    let constraint = Type::structure("Constraint", vec![f("order", &Type::list(&s))])?;
    let process = Type::structure(
        "Process",
        vec![
            req("cmdline", &s),
            req("name", &s),
            f("resources", &resources),
            def("max_failures", &i, Raw::Int(1)),
            def("daemon", &b, Raw::Bool(false)),
            def("ephemeral", &b, Raw::Bool(false)),
            def("min_duration", &i, Raw::Int(5)),
            def("final", &b, Raw::Bool(false)),
        ],
    )?;
    let task = Type::structure(
        "Task",
        vec![
            def("name", &s, Raw::str("{{processes[0].name}}")),
            f("processes", &Type::list(&process)),
            def("constraints", &Type::list(&constraint), Raw::List(vec![])),
            f("resources", &resources),
            def("max_failures", &i, Raw::Int(1)),
            def("max_concurrency", &i, Raw::Int(0)),
            def("finalization_wait", &i, Raw::Int(30)),
            f("user", &s),
        ],
    )?;
    let update_config = Type::structure(
        "UpdateConfig",
        vec![
            def("batch_size", &i, Raw::Int(1)),
            def("restart_threshold", &i, Raw::Int(60)),
            def("watch_secs", &i, Raw::Int(45)),
            def("max_per_shard_failures", &i, Raw::Int(0)),
            def("max_total_failures", &i, Raw::Int(0)),
            def("rollback_on_failure", &b, Raw::Bool(true)),
            def("wait_for_batch_completion", &b, Raw::Bool(false)),
        ],
    )?;
    let health_check_config = Type::structure(
        "HealthCheckConfig",
        vec![
            def("initial_interval_secs", &fl, Raw::Float(15.0)),
            def("interval_secs", &fl, Raw::Float(10.0)),
            def("timeout_secs", &fl, Raw::Float(1.0)),
            def("max_consecutive_failures", &i, Raw::Int(0)),
        ],
    )?;
    let announcer = Type::structure(
        "Announcer",
        vec![
            def("primary_port", &s, Raw::str("http")),
            def(
                "portmap",
                &Type::map(&s, &s),
                Raw::map([("aurora", Raw::str("{{primary_port}}"))]),
            ),
        ],
    )?;
    let mesos_task_instance = Type::structure(
        "MesosTaskInstance",
        vec![
            req("task", &task),
            req("instance", &i),
            req("role", &s),
            f("announce", &announcer),
            req("environment", &s),
            def("health_check_config", &health_check_config, empty_map()),
        ],
    )?;
    let job = Type::structure(
        "MesosJob",
        vec![
            def("name", &s, Raw::str("{{task.name}}")),
            req("role", &s),
            f("contact", &s),
            req("cluster", &s),
            req("environment", &s),
            def("instances", &i, Raw::Int(1)),
            req("task", &task),
            f("announce", &announcer),
            f("cron_schedule", &s),
            def("cron_collision_policy", &s, Raw::str("KILL_EXISTING")),
            def("update_config", &update_config, empty_map()),
            f("constraints", &Type::map(&s, &s)),
            def("service", &b, Raw::Bool(false)),
            def("max_task_failures", &i, Raw::Int(1)),
            def("production", &b, Raw::Bool(false)),
            def("priority", &i, Raw::Int(0)),
            def("health_check_config", &health_check_config, empty_map()),
            f("task_links", &Type::map(&s, &s)),
            def("enable_hooks", &b, Raw::Bool(false)),
        ],
    )?;
    let service = job.instantiate(Raw::map([("service", Raw::Bool(true))]))?;
    Ok(Schema {
        thermos_context,
        mesos_context,
        resources,
        constraint,
        process,
        task,
        update_config,
        health_check_config,
        announcer,
        mesos_task_instance,
        job,
        service,
    })
}

/// The schema, built on first use.
///
/// ```
/// use aurora_config::pystachio::Raw;
/// use aurora_config::schema::schema;
/// let p = schema().process.instantiate(Raw::map([("name", Raw::str("hello")), ("cmdline", Raw::str("echo {{name}}"))])).unwrap();
/// assert_eq!(
///     p.json_dumps().unwrap(),
///     r#"{"cmdline": "echo hello", "name": "hello", "max_failures": 1, "daemon": false, "ephemeral": false, "min_duration": 5, "final": false}"#
/// );
/// ```
pub fn schema() -> &'static Schema {
    static SCHEMA: OnceLock<Schema> = OnceLock::new();
    // The schema is a constant of the program: failing to build it is a bug, caught by tests.
    SCHEMA.get_or_init(|| match build() {
        Ok(s) => s,
        Err(e) => panic!("the built-in Aurora schema is invalid: {e}"),
    })
}

/// Errors of the schema helpers.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum HelperError {
    /// A value could not be built.
    #[error(transparent)]
    Build(#[from] BuildError),
    /// A value could not be evaluated.
    #[error(transparent)]
    Eval(#[from] EvalError),
    /// `SequentialTask` was given constraints of its own.
    #[error("Cannot specify both constraints and processes in SequentialTask")]
    SequentialWithConstraints,
    /// A helper needs a concrete number that is still templated or missing.
    #[error("{0}")]
    NotConcrete(String),
}

/// A process or a process name, as `order()` accepts.
pub enum OrderItem {
    /// A `Process` value; its interpolated name is used.
    Process(Value),
    /// A process name.
    Name(String),
}

/// `order(*processes_or_names)`: one `Constraint(order=[names])`, in a list so that results
/// concatenate.
pub fn order(items: &[OrderItem]) -> Result<Vec<Value>, HelperError> {
    let mut names = Vec::with_capacity(items.len());
    for it in items {
        names.push(match it {
            OrderItem::Name(n) => Raw::str(n),
            OrderItem::Process(p) => match p.field("name")? {
                Some(n) => Raw::Value(n),
                None => Raw::Empty,
            },
        });
    }
    let c = schema()
        .constraint
        .instantiate(Raw::map([("order", Raw::List(names))]))?;
    Ok(vec![c])
}

/// `SimpleTask(name, command)`: one process of that name, 1 cpu, 1 GB ram and disk.
pub fn simple_task(name: &str, command: &str) -> Result<Value, HelperError> {
    let sc = schema();
    let process = sc.process.instantiate(Raw::map([
        ("name", Raw::str(name)),
        ("cmdline", Raw::str(command)),
    ]))?;
    let res = sc.resources.instantiate(Raw::map([
        ("cpu", Raw::Float(1.0)),
        ("ram", Raw::Int(GB)),
        ("disk", Raw::Int(GB)),
    ]))?;
    Ok(sc.task.instantiate(Raw::map([
        ("name", Raw::str(name)),
        ("processes", Raw::List(vec![Raw::Value(process)])),
        ("resources", Raw::Value(res)),
    ]))?)
}

/// `SequentialTask(**kw)`: a task whose processes run in the given order.
pub fn sequential_task(fields: Raw) -> Result<Value, HelperError> {
    let task = schema().task.instantiate(fields)?;
    if let Some(c) = task.raw_field("constraints")
        && !c.elements().is_empty()
    {
        return Err(HelperError::SequentialWithConstraints);
    }
    let procs: Vec<OrderItem> = match task.field("processes")? {
        Some(l) => l
            .elements()
            .iter()
            .cloned()
            .map(OrderItem::Process)
            .collect(),
        None => vec![],
    };
    let constraints = order(&procs)?;
    Ok(task.with_fields([(
        "constraints",
        Raw::List(constraints.into_iter().map(Raw::Value).collect()),
    )])?)
}

/// What merging needs of one task: processes, constraints, resources, finalization wait.
type TaskParts = (Vec<Value>, Vec<Value>, Option<Value>, i64);

fn task_parts(task: &Value) -> Result<TaskParts, HelperError> {
    let procs = task
        .raw_field("processes")
        .map(|l| l.elements().to_vec())
        .unwrap_or_default();
    let cons = task
        .raw_field("constraints")
        .map(|l| l.elements().to_vec())
        .unwrap_or_default();
    let res = task.field("resources")?;
    let wait = match task.field("finalization_wait")? {
        Some(w) => w.as_int().ok_or_else(|| {
            HelperError::NotConcrete(format!("finalization_wait is not an integer: {w:?}"))
        })?,
        None => 0,
    };
    Ok((procs, cons, res, wait))
}

fn resource_numbers(r: &Value) -> Result<(f64, i64, i64), HelperError> {
    let num = |name: &str| -> Result<Value, HelperError> {
        r.field(name)?
            .ok_or_else(|| HelperError::NotConcrete(format!("resources lack {name}")))
    };
    let cpu = num("cpu")?.as_float();
    let ram = num("ram")?.as_int();
    let disk = num("disk")?.as_int();
    match (cpu, ram, disk) {
        (Some(c), Some(r), Some(d)) => Ok((c, r, d)),
        _ => Err(HelperError::NotConcrete(format!(
            "resources are not concrete: {r:?}"
        ))),
    }
}

fn push_unique(out: &mut Vec<Value>, v: &Value) {
    if !out.iter().any(|x| x == v) {
        out.push(v.clone());
    }
}

fn merge_tasks(tasks: &[Value], concat: bool, extra: Raw) -> Result<Value, HelperError> {
    let sc = schema();
    let Some(base) = tasks.last() else {
        return Ok(sc.task.instantiate(Raw::Map(vec![]))?);
    };
    let mut procs = Vec::new();
    let mut cons = Vec::new();
    let mut totals: Option<(f64, i64, i64)> = None;
    let mut wait = 0i64;
    let mut prev_procs: Option<Vec<Value>> = None;
    for t in tasks {
        let (p, c, r, w) = task_parts(t)?;
        p.iter().for_each(|x| push_unique(&mut procs, x));
        c.iter().for_each(|x| push_unique(&mut cons, x));
        if let Some(r) = r {
            let (c1, r1, d1) = resource_numbers(&r)?;
            totals = Some(match totals {
                None => (c1, r1, d1),
                Some((c0, r0, d0)) if concat => (c0.max(c1), r0.max(r1), d0.max(d1)),
                Some((c0, r0, d0)) => (c0 + c1, r0 + r1, d0 + d1),
            });
        }
        wait = if concat { wait + w } else { wait.max(w) };
        if concat {
            if let Some(prev) = &prev_procs {
                for a in prev {
                    for b in &p {
                        for c in
                            order(&[OrderItem::Process(a.clone()), OrderItem::Process(b.clone())])?
                        {
                            push_unique(&mut cons, &c);
                        }
                    }
                }
            }
            prev_procs = Some(p);
        }
    }
    let mut updates = vec![
        (
            "processes".to_string(),
            Raw::List(procs.into_iter().map(Raw::Value).collect()),
        ),
        (
            "constraints".to_string(),
            Raw::List(cons.into_iter().map(Raw::Value).collect()),
        ),
        ("finalization_wait".to_string(), Raw::Int(wait)),
    ];
    if let Some((c, r, d)) = totals {
        let res = sc.resources.instantiate(Raw::map([
            ("cpu", Raw::Float(c)),
            ("ram", Raw::Int(r)),
            ("disk", Raw::Int(d)),
        ]))?;
        updates.push(("resources".to_string(), Raw::Value(res)));
    }
    if let Raw::Map(kw) = extra {
        for (k, v) in kw {
            updates.push((k.py_str(), v));
        }
    }
    Ok(base.with_fields(updates)?)
}

/// `Tasks.combine` / `combine_tasks`: processes run in parallel; resources are summed,
/// `finalization_wait` is the maximum; the last task is the base. `extra` holds more fields.
pub fn combine_tasks(tasks: &[Value], extra: Raw) -> Result<Value, HelperError> {
    merge_tasks(tasks, false, extra)
}

/// `Tasks.concat` / `concat_tasks`: tasks run one after another (every process of a task
/// ordered before every process of the next); resources are the maximum and
/// `finalization_wait` the sum.
pub fn concat_tasks(tasks: &[Value], extra: Raw) -> Result<Value, HelperError> {
    merge_tasks(tasks, true, extra)
}

#[cfg(test)]
mod tests;
