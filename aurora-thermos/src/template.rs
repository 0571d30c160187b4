//! Binding the references the runner is responsible for: `{{mesos.instance}}`,
//! `{{thermos.task_id}}`, `{{thermos.user}}` and `{{thermos.ports[NAME]}}`.

use std::collections::BTreeMap;

use serde_json::Value;

/// What the runner binds into a task.
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
    /// Further bindings, `{{NAME}}` to a value (`thermos run -E NAME=VALUE`).
    pub extra: BTreeMap<String, String>,
}

/// A reference that could not be bound.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BindError {
    /// A process refers to a port the task was not given.
    #[error(
        "task requires port {port:?}, which was not assigned (assigned: {assigned}); add it to the job's resources or remove the reference"
    )]
    UnboundPort {
        /// The port's name.
        port: String,
        /// The names of the ports that were assigned, comma-separated.
        assigned: String,
    },
}

/// Replaces the runner's references in every string of `value` (a task or job JSON).
/// Other `{{...}}` references are left as they are.
///
/// This is a deliberately small stand-in: the Pystachio engine in `aurora-config` replaces it
/// once it can bind a partially evaluated config (issue 5 and the config work).
///
/// ```
/// use aurora_thermos::{Bindings, bind_refs};
/// let b = Bindings { instance: Some(3), task_id: "t-1".into(), user: "www".into(),
///     ports: [("http".to_owned(), 31000)].into(), extra: Default::default() };
/// let v = serde_json::json!({"cmdline": "serve --port={{thermos.ports[http]}} --shard={{mesos.instance}}"});
/// assert_eq!(bind_refs(&v, &b).unwrap()["cmdline"], "serve --port=31000 --shard=3");
/// let bad = serde_json::json!("{{thermos.ports[admin]}}");
/// assert!(bind_refs(&bad, &b).unwrap_err().to_string().contains("\"admin\""));
/// ```
pub fn bind_refs(value: &Value, bindings: &Bindings) -> Result<Value, BindError> {
    Ok(match value {
        Value::String(s) => Value::String(bind_str(s, bindings)?),
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|v| bind_refs(v, bindings))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| Ok((k.clone(), bind_refs(v, bindings)?)))
                .collect::<Result<_, BindError>>()?,
        ),
        other => other.clone(),
    })
}

fn bind_str(text: &str, b: &Bindings) -> Result<String, BindError> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            out.push_str(&rest[start..]);
            return Ok(out);
        };
        let reference = after[..end].trim();
        match resolve(reference, b)? {
            Some(v) => out.push_str(&v),
            None => out.push_str(&rest[start..start + 2 + end + 2]),
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

fn resolve(reference: &str, b: &Bindings) -> Result<Option<String>, BindError> {
    if let Some(v) = b.extra.get(reference) {
        return Ok(Some(v.clone()));
    }
    Ok(match reference {
        "mesos.instance" => b.instance.map(|i| i.to_string()),
        "thermos.task_id" => Some(b.task_id.clone()),
        "thermos.user" => Some(b.user.clone()),
        _ => {
            let Some(name) = reference
                .strip_prefix("thermos.ports[")
                .and_then(|r| r.strip_suffix(']'))
            else {
                return Ok(None);
            };
            let name = name.trim().trim_matches(|c| c == '\'' || c == '"');
            match b.ports.get(name) {
                Some(p) => Some(p.to_string()),
                None => {
                    return Err(BindError::UnboundPort {
                        port: name.to_owned(),
                        assigned: if b.ports.is_empty() {
                            "none".to_owned()
                        } else {
                            b.ports.keys().cloned().collect::<Vec<_>>().join(", ")
                        },
                    });
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str, expect: Result<&str, &str>) {
        let b = Bindings {
            instance: Some(2),
            task_id: "tid".into(),
            user: "alice".into(),
            ports: [("http".to_owned(), 8080), ("health".to_owned(), 8081)].into(),
            extra: [("greeting".to_owned(), "hi".to_owned())].into(),
        };
        match (bind_str(text, &b), expect) {
            (Ok(got), Ok(want)) => assert_eq!(got, want),
            (Err(e), Err(frag)) => assert!(e.to_string().contains(frag), "{e}"),
            (got, want) => panic!("{text}: {got:?} vs {want:?}"),
        }
    }

    #[test]
    fn binds_the_runner_refs() {
        check("plain", Ok("plain"));
        check("{{mesos.instance}}", Ok("2"));
        check("{{greeting}} there", Ok("hi there"));
        check("a {{ thermos.task_id }} b", Ok("a tid b"));
        check("{{thermos.user}}@{{thermos.ports[http]}}", Ok("alice@8080"));
        check("{{thermos.ports['health']}}", Ok("8081"));
        check(
            "{{other.thing}} {{thermos.user}}",
            Ok("{{other.thing}} alice"),
        );
        check("open {{ never closed", Ok("open {{ never closed"));
        check(
            "{{thermos.ports[admin]}}",
            Err("port \"admin\", which was not assigned (assigned: health, http)"),
        );
    }
}
