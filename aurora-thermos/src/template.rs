//! Binding what the executor and the runner know only when a task starts — the instance
//! (`{{mesos.instance}}`), the task id, the user and the assigned ports (`{{thermos.*}}`) and
//! `thermos run -E` bindings — through the Pystachio engine of `aurora-config`, then
//! interpolating the task once before anything runs.

use std::collections::BTreeMap;
use std::fmt;

use aurora_config::pystachio::json::raw_to_json;
use aurora_config::pystachio::{Component, Env, EnvInput, Raw, Ref, Scope};
use aurora_config::schema::schema;

use crate::health::HealthCheckConfig;
use crate::spec::TaskSpec;

/// What is bound into a task when it starts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Bindings {
    /// The instance number, for `{{mesos.instance}}`; left unbound when absent.
    pub instance: Option<u32>,
    /// The task id, for `{{thermos.task_id}}`.
    pub task_id: String,
    /// The user (the job's role), for `{{thermos.user}}`.
    pub user: String,
    /// The ports assigned, by name, for `{{thermos.ports[NAME]}}`.
    pub ports: BTreeMap<String, u16>,
    /// Further bindings, `{{NAME}}` to a value (`thermos run -E NAME=VALUE`); the `mesos` and
    /// `thermos` namespaces win over them.
    pub extra: BTreeMap<String, String>,
}

/// A task bound and interpolated, ready for the runner.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct BoundTask {
    /// The interpolated Thermos task.
    pub task: TaskSpec,
    /// The job's interpolated `health_check_config`, when the payload was a job or a
    /// `MesosTaskInstance` (the schema fills its defaults); `None` for a bare task.
    pub health_check: Option<HealthCheckConfig>,
}

/// Why a task could not be bound.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BindError {
    /// The payload does not fit the Thermos or Aurora schema, or a template in it cannot be
    /// evaluated (an invalid tag, a cycle, a value of the wrong type).
    #[error("the config has no valid Thermos task: {0}")]
    Invalid(String),
    /// References are still unbound once everything was bound.
    #[error("{}", unbound_message(.missing_ports, .assigned, .refs))]
    Unbound {
        /// Ports the task refers to (`{{thermos.ports[NAME]}}`) that were not assigned.
        missing_ports: Vec<String>,
        /// The names of the ports that were assigned, comma-separated, or `none`.
        assigned: String,
        /// Every other unbound reference, as written in a template (`{{profile.name}}`).
        refs: Vec<String>,
    },
}

fn unbound_message(missing_ports: &[String], assigned: &str, refs: &[String]) -> String {
    let mut parts = Vec::new();
    match missing_ports {
        [] => {}
        [port] => parts.push(format!(
            "task requires port {port:?}, which was not assigned (assigned: {assigned}); add it \
             to the job's resources or remove the reference"
        )),
        ports => parts.push(format!(
            "task requires ports {}, which were not assigned (assigned: {assigned}); add them \
             to the job's resources or remove the references",
            quoted(ports)
        )),
    }
    if !refs.is_empty() {
        parts.push(format!(
            "task has unbound references {}; bind them in the config",
            refs.join(", ")
        ));
    }
    parts.join("; ")
}

fn quoted(items: &[String]) -> String {
    items
        .iter()
        .map(|i| format!("{i:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The shape of an executor payload.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Payload {
    /// An Aurora job (`MesosJob`), the task under `task`.
    Job,
    /// A legacy `MesosTaskInstance` (a `task` and an `instance`).
    TaskInstance,
    /// A bare Thermos task.
    Task,
}

impl fmt::Display for Payload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Payload::Job => "job",
            Payload::TaskInstance => "task instance",
            Payload::Task => "task",
        })
    }
}

/// Loads a payload (an Aurora job's JSON, a `MesosTaskInstance` or a bare Thermos task) into
/// the schema, binds `mesos = MesosContext(instance)`, `thermos = ThermosContext(ports,
/// task_id, user)` and the extra bindings, and interpolates it once. Every reference still
/// unbound afterwards is an error naming it; a missing port names the ports that were
/// assigned. Unknown keys are dropped, as `json_load` does.
///
/// ```
/// use aurora_thermos::{Bindings, bind_task};
/// let b = Bindings { instance: Some(3), task_id: "t-1".into(), user: "www".into(),
///     ports: [("http".to_owned(), 31000)].into(), extra: Default::default() };
/// let job = serde_json::json!({"role": "www", "environment": "prod", "task": {"processes": [
///     {"name": "web", "cmdline": "serve --port={{thermos.ports[http]}} --shard={{mesos.instance}}"}]}});
/// let bound = bind_task(&job, &b).unwrap();
/// assert_eq!(bound.task.processes[0].cmdline, "serve --port=31000 --shard=3");
/// let bad = serde_json::json!({"processes": [{"name": "a", "cmdline": "{{thermos.ports[admin]}}"}]});
/// assert!(bind_task(&bad, &b).unwrap_err().to_string().contains("\"admin\""));
/// ```
pub fn bind_task(payload: &serde_json::Value, bindings: &Bindings) -> Result<BoundTask, BindError> {
    let s = schema();
    let kind = match payload.as_object() {
        Some(m) if m.contains_key("task") && m.contains_key("instance") => Payload::TaskInstance,
        Some(m) if m.contains_key("task") => Payload::Job,
        _ => Payload::Task,
    };
    let ty = match kind {
        Payload::Job => &s.job,
        Payload::TaskInstance => &s.mesos_task_instance,
        Payload::Task => &s.task,
    };
    let invalid = |e: &dyn fmt::Display| BindError::Invalid(format!("{e}"));
    let loaded = ty
        .from_json(&without_nulls(payload), false)
        .map_err(|e| BindError::Invalid(format!("the {kind} does not fit the schema: {e}")))?;
    let bound = loaded.bind(scopes(bindings).map_err(|e| invalid(&e))?);
    let (value, unbound) = bound.interpolate().map_err(|e| invalid(&e))?;
    check_unbound(&unbound, bindings)?;
    let (task, health) = match kind {
        Payload::Task => (value, None),
        Payload::Job | Payload::TaskInstance => {
            let task = value
                .raw_field("task")
                .cloned()
                .ok_or_else(|| BindError::Invalid(format!("the {kind} has no task")))?;
            (task, value.raw_field("health_check_config").cloned())
        }
    };
    let task = serde_json::from_value(raw_to_json(&task.get())).map_err(|e| invalid(&e))?;
    let health_check = health
        .map(|h| serde_json::from_value(raw_to_json(&h.get())))
        .transpose()
        .map_err(|e| BindError::Invalid(format!("the job's health_check_config: {e}")))?;
    Ok(BoundTask { task, health_check })
}

/// The payload without `null` object entries: serde writes an unset optional field as `null`
/// (a [`TaskSpec`] without resources), and the schema, like pystachio, rejects `None` where it
/// expects a value, so `null` is taken to mean unset.
fn without_nulls(json: &serde_json::Value) -> serde_json::Value {
    use serde_json::Value as Json;
    match json {
        Json::Object(m) => Json::Object(
            m.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), without_nulls(v)))
                .collect(),
        ),
        Json::Array(items) => Json::Array(items.iter().map(without_nulls).collect()),
        other => other.clone(),
    }
}

/// The scopes bound over the payload: the extra bindings first, so that the `mesos` and
/// `thermos` namespaces, bound last, win.
fn scopes(b: &Bindings) -> Result<Vec<Scope>, Box<dyn std::error::Error>> {
    let s = schema();
    let mut out = Vec::with_capacity(2);
    if !b.extra.is_empty() {
        let env = Env::from_pairs(
            b.extra
                .iter()
                .map(|(k, v)| (k.as_str(), EnvInput::Str(v.clone()))),
        )?;
        out.push(Scope::Env(env));
    }
    let ports = b
        .ports
        .iter()
        .map(|(name, port)| (Raw::str(name), Raw::Int(i64::from(*port))))
        .collect();
    let thermos = s.thermos_context.new_struct([
        ("ports", Raw::Map(ports)),
        ("task_id", Raw::str(&b.task_id)),
        ("user", Raw::str(&b.user)),
    ])?;
    let mut contexts = vec![("thermos", EnvInput::Obj(thermos))];
    if let Some(instance) = b.instance {
        let mesos = s
            .mesos_context
            .new_struct([("instance", Raw::Int(i64::from(instance)))])?;
        contexts.push(("mesos", EnvInput::Obj(mesos)));
    }
    out.push(Scope::Env(Env::from_pairs(contexts)?));
    Ok(out)
}

/// Fails on any unbound reference, telling missing ports apart.
fn check_unbound(unbound: &[Ref], b: &Bindings) -> Result<(), BindError> {
    if unbound.is_empty() {
        return Ok(());
    }
    let mut missing_ports = Vec::new();
    let mut refs = Vec::new();
    for r in unbound {
        match r.components() {
            [
                Component::Deref(t),
                Component::Deref(p),
                Component::Index(name),
            ] if &**t == "thermos" && &**p == "ports" => {
                if !missing_ports.iter().any(|m: &String| m == &**name) {
                    missing_ports.push(name.to_string());
                }
            }
            _ => {
                let text = r.to_string();
                if !refs.contains(&text) {
                    refs.push(text);
                }
            }
        }
    }
    Err(BindError::Unbound {
        missing_ports,
        assigned: if b.ports.is_empty() {
            "none".to_owned()
        } else {
            b.ports.keys().cloned().collect::<Vec<_>>().join(", ")
        },
        refs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bindings() -> Bindings {
        Bindings {
            instance: Some(2),
            task_id: "tid".into(),
            user: "alice".into(),
            ports: [("http".to_owned(), 8080), ("health".to_owned(), 8081)].into(),
            extra: [("greeting".to_owned(), "hi".to_owned())].into(),
        }
    }

    /// Binds a job whose only process runs `cmdline` (with the job's other fields merged from
    /// `job`) and compares the bound command line, or a fragment of the error.
    fn check(cmdline: &str, job: serde_json::Value, expect: Result<&str, &str>) {
        let mut payload = serde_json::json!({
            "role": "www", "environment": "prod", "cluster": "c", "name": "hello",
            "task": {"name": "hello", "processes": [{"name": "main", "cmdline": cmdline}]},
        });
        if let (Some(p), Some(extra)) = (payload.as_object_mut(), job.as_object()) {
            p.extend(extra.clone());
        }
        match (bind_task(&payload, &bindings()), expect) {
            (Ok(got), Ok(want)) => assert_eq!(got.task.processes[0].cmdline, want),
            (Err(e), Err(frag)) => assert!(e.to_string().contains(frag), "{e}"),
            (got, want) => panic!("{cmdline}: {got:?} vs {want:?}"),
        }
    }

    fn ok(cmdline: &str, want: &str) {
        check(cmdline, serde_json::json!({}), Ok(want));
    }

    #[test]
    fn binds_the_runner_namespaces() {
        ok("plain", "plain");
        ok("{{mesos.instance}}", "2");
        ok("a {{thermos.task_id}} b", "a tid b");
        ok("{{thermos.user}}@{{thermos.ports[http]}}", "alice@8080");
        ok("{{thermos.ports[health]}}", "8081");
        ok("{{greeting}} there", "hi there");
    }

    #[test]
    fn has_full_pystachio_semantics() {
        // Escapes stay literal, struct-scoped refs see the job and the task.
        ok(
            "{{&thermos.user}} {{thermos.user}}",
            "{{thermos.user}} alice",
        );
        // The innermost struct wins: `{{name}}` in a process is the process's name.
        ok("{{role}}/{{environment}}/{{name}}", "www/prod/main");
        ok("{{task.name}}-{{mesos.instance}}", "hello-2");
        // A ref built from another ref: the inner one is bound by `-E`, then the outer one.
        let payload = serde_json::json!({
            "role": "www", "environment": "prod", "cluster": "c",
            "task": {"name": "hello", "processes": [
                {"name": "main", "cmdline": "--port={{thermos.ports[{{port_name}}]}}"}]},
        });
        let mut b = bindings();
        b.extra = [("port_name".to_owned(), "health".to_owned())].into();
        let bound = bind_task(&payload, &b).unwrap();
        assert_eq!(bound.task.processes[0].cmdline, "--port=8081");
    }

    #[test]
    fn a_nested_ref_is_bound_by_the_config() {
        // The inner refs are fields of the process and of the job, in scope for the command.
        let payload = serde_json::json!({
            "role": "www", "environment": "prod", "cluster": "c", "contact": "health",
            "task": {"name": "hello", "processes": [
                {"name": "http", "cmdline": "{{thermos.ports[{{name}}]}} {{thermos.ports[{{contact}}]}}"}]},
        });
        let bound = bind_task(&payload, &bindings()).unwrap();
        assert_eq!(bound.task.processes[0].cmdline, "8080 8081");
    }

    #[test]
    fn fails_on_every_unbound_ref() {
        check(
            "{{thermos.ports[admin]}} {{thermos.ports[admin]}}",
            serde_json::json!({}),
            Err("task requires port \"admin\", which was not assigned (assigned: health, http)"),
        );
        check(
            "{{thermos.ports[a]}} {{thermos.ports[b]}} {{profile.name}} {{x}}",
            serde_json::json!({}),
            Err(
                "task requires ports \"a\", \"b\", which were not assigned (assigned: health, \
                 http); add them to the job's resources or remove the references; task has \
                 unbound references {{profile.name}}, {{x}}",
            ),
        );
        let mut b = bindings();
        b.instance = None;
        b.ports.clear();
        let bare = serde_json::json!({"name": "t", "processes": [
            {"name": "a", "cmdline": "{{mesos.instance}} {{thermos.ports[http]}}"}]});
        let e = bind_task(&bare, &b).unwrap_err().to_string();
        assert!(e.contains("(assigned: none)"), "{e}");
        assert!(e.contains("unbound references {{mesos.instance}}"), "{e}");
    }

    #[test]
    fn accepts_jobs_task_instances_and_bare_tasks() {
        let b = bindings();
        // `null` is unset, as serde writes a task without resources.
        let bare = serde_json::json!({"resources": null,
            "processes": [{"name": "a", "cmdline": "{{mesos.instance}}"}]});
        let bound = bind_task(&bare, &b).unwrap();
        assert_eq!(bound.task.name, "a");
        assert_eq!(bound.task.processes[0].cmdline, "2");
        assert_eq!(bound.health_check, None);

        let instance = serde_json::json!({"instance": 5, "role": "r", "environment": "prod",
            "task": {"processes": [{"name": "a", "cmdline": "{{instance}}/{{mesos.instance}}"}]}});
        let bound = bind_task(&instance, &b).unwrap();
        assert_eq!(bound.task.processes[0].cmdline, "5/2");
        assert_eq!(bound.health_check, Some(HealthCheckConfig::default()));

        let job = serde_json::json!({"role": "r", "environment": "prod",
            "health_check_config": {"interval_secs": "{{mesos.instance}}"},
            "task": {"processes": [{"name": "a", "cmdline": "true"}]}});
        let bound = bind_task(&job, &b).unwrap();
        assert_eq!(bound.health_check.unwrap().interval_secs, 2.0);
    }

    #[test]
    fn rejects_payloads_outside_the_schema() {
        let b = bindings();
        for (payload, frag) in [
            (serde_json::json!([1]), "the task does not fit the schema"),
            (
                serde_json::json!({"processes": [{"name": "a", "cmdline": "x", "max_failures": "{{greeting}}"}]}),
                "hi",
            ),
            (
                serde_json::json!({"role": "r", "task": {"name": "t"}}),
                "no valid Thermos task",
            ),
        ] {
            let e = bind_task(&payload, &b).unwrap_err().to_string();
            assert!(e.contains(frag), "{payload}: {e}");
        }
    }
}
