//! `aurora diff`: what an update would change. The running instances are grouped by identical
//! task config; each group's config and the local one are written as pretty, key-sorted JSON
//! and handed to `$DIFF_VIEWER` (default `diff`), whose output is printed.
//!
//! Only the task config's content is compared: task ids, hosts and assigned ports live outside
//! it, and the submitting user is left out because it names who ran the command, not what the
//! job runs. The executor payload is parsed so that its fields diff line by line.

use std::collections::BTreeSet;
use std::process::Command;

use aurora_core::{
    InstanceSet, JobConfiguration, JobKey, ScheduledTask, TaskConfig, add_default_constraints,
};
use serde_json::{Map, Value, json};

use crate::SchedulerClient;
use crate::commands::CommandError;
use crate::render::Output;

/// The viewer used when `$DIFF_VIEWER` is unset or empty.
pub const DEFAULT_VIEWER: &str = "diff";

/// Running instances that share one task config.
#[derive(Debug, Clone, PartialEq)]
pub struct InstanceGroup {
    /// The instances, ascending.
    pub instances: BTreeSet<u32>,
    /// Their config in comparable form ([`comparable`]).
    pub config: Value,
}

/// A task config as compared: its JSON with the submitting user removed, the executor payload
/// parsed (when it is JSON) and every object's keys sorted.
pub fn comparable(config: &TaskConfig) -> Value {
    let mut value = serde_json::to_value(config).unwrap_or(Value::Null);
    if let Some(owner) = value.get_mut("owner").and_then(Value::as_object_mut) {
        owner.remove("user");
    }
    if let Some(data) = value.pointer_mut("/executor_config/data") {
        // A payload that is not JSON stays the text it is.
        if let Some(parsed) = data
            .as_str()
            .and_then(|text| serde_json::from_str::<Value>(text).ok())
        {
            *data = parsed;
        }
    }
    sorted(value)
}

/// The value with every object's keys in ascending order.
fn sorted(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| (k, sorted(v)))
                    .collect::<Map<_, _>>(),
            )
        }
        Value::Array(items) => Value::Array(items.into_iter().map(sorted).collect()),
        other => other,
    }
}

/// Pretty JSON with a final newline, as written for the viewer.
pub fn pretty(value: &Value) -> String {
    // Serialising a `Value` cannot fail: its keys are strings.
    let mut text = serde_json::to_string_pretty(value).unwrap_or_default();
    text.push('\n');
    text
}

/// Groups the active tasks by comparable config, in order of their lowest instance.
pub fn group_instances(tasks: &[ScheduledTask]) -> Vec<InstanceGroup> {
    let mut groups: Vec<InstanceGroup> = Vec::new();
    let mut active: Vec<&ScheduledTask> = tasks.iter().filter(|t| t.status.is_active()).collect();
    active.sort_by_key(|t| t.instance());
    for task in active {
        let config = comparable(&task.assigned_task.task);
        match groups.iter_mut().find(|g| g.config == config) {
            Some(group) => {
                group.instances.insert(task.instance());
            }
            None => groups.push(InstanceGroup {
                instances: BTreeSet::from([task.instance()]),
                config,
            }),
        }
    }
    groups
}

/// Instances as `0-2,5`.
fn instance_list(instances: &BTreeSet<u32>) -> String {
    instances
        .iter()
        .copied()
        .collect::<InstanceSet>()
        .to_string()
}

/// The comparison of one group with the local config.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupDiff {
    /// The group's running instances that the local config still defines.
    pub instances: BTreeSet<u32>,
    /// Whether the group's config equals the local one.
    pub identical: bool,
    /// What the viewer printed.
    pub viewer_output: String,
}

/// `aurora diff`: compares `local` (the job as the config defines it) with the tasks running
/// at `remote` (the same key, or the old key of a renamed job) through `viewer`, a shell
/// command given the running and the local file.
pub fn diff(
    client: &SchedulerClient,
    local: &JobConfiguration,
    remote: &JobKey,
    viewer: &str,
) -> Result<Output, CommandError> {
    let tasks = client.job_tasks(remote, &[])?.tasks;
    let groups = group_instances(&tasks);
    // The scheduler stores a job with its default constraints added; so must the local side.
    let mut local_task = local.task_config.clone();
    add_default_constraints(&mut local_task);
    let local_config = comparable(&local_task);
    let local_text = pretty(&local_config);
    let wanted: BTreeSet<u32> = (0..local.instance_count).collect();
    let running: BTreeSet<u32> = groups.iter().flat_map(|g| g.instances.clone()).collect();
    let dir = tempfile::Builder::new()
        .prefix("aurora-diff")
        .tempdir()
        .map_err(|e| CommandError::Usage(format!("cannot create a temporary directory: {e}")))?;
    let local_path = dir.path().join("local.json");
    write(&local_path, &local_text)?;
    let mut compared = Vec::new();
    for group in &groups {
        let instances: BTreeSet<u32> = group.instances.intersection(&wanted).copied().collect();
        if instances.is_empty() {
            continue;
        }
        let remote_path = dir.path().join(format!(
            "running-instances-{}.json",
            instance_list(&instances)
        ));
        write(&remote_path, &pretty(&group.config))?;
        let viewer_output = run_viewer(viewer, &remote_path, &local_path)?;
        compared.push(GroupDiff {
            instances,
            identical: group.config == local_config,
            viewer_output,
        });
    }
    let added: BTreeSet<u32> = wanted.difference(&running).copied().collect();
    let killed: BTreeSet<u32> = running.difference(&wanted).copied().collect();
    Ok(render(remote, local, &compared, &added, &killed))
}

fn write(path: &std::path::Path, text: &str) -> Result<(), CommandError> {
    std::fs::write(path, text).map_err(|e| {
        CommandError::Usage(format!("cannot write {} for the diff: {e}", path.display()))
    })
}

/// Runs the viewer through `sh -c` with the two files as `$1` and `$2`, so that a
/// `DIFF_VIEWER` holding options (`diff -u`) works and file names need no quoting.
fn run_viewer(
    viewer: &str,
    remote: &std::path::Path,
    local: &std::path::Path,
) -> Result<String, CommandError> {
    let output = Command::new("sh")
        .arg("-c")
        .arg(format!("{viewer} \"$1\" \"$2\""))
        .arg("aurora-diff")
        .arg(remote)
        .arg(local)
        .output()
        .map_err(|e| CommandError::Usage(format!("cannot run DIFF_VIEWER {viewer:?}: {e}")))?;
    let code = output.status.code();
    // `diff` exits 1 when files differ; 2 and above (or a signal) means the viewer failed.
    if !matches!(code, Some(0 | 1)) {
        return Err(CommandError::Usage(format!(
            "DIFF_VIEWER {viewer:?} failed ({}): {}; set DIFF_VIEWER to a command taking two \
             files, e.g. \"diff -u\"",
            code.map_or_else(|| "killed by a signal".to_owned(), |c| format!("exit {c}")),
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// The text and JSON of a diff; `identical` in the JSON drives the exit code.
pub fn render(
    remote: &JobKey,
    local: &JobConfiguration,
    groups: &[GroupDiff],
    added: &BTreeSet<u32>,
    killed: &BTreeSet<u32>,
) -> Output {
    let mut text = String::new();
    if remote != &local.key {
        text.push_str(&format!(
            "Comparing the local config of {} with the running job {remote}\n",
            local.key
        ));
    }
    for group in groups {
        let list = instance_list(&group.instances);
        if group.identical {
            text.push_str(&format!("Instances {list}: no differences\n"));
        } else {
            text.push_str(&format!(
                "Task diff for instances {list} (running config first, local second):\n"
            ));
            text.push_str(&group.viewer_output);
            if !group.viewer_output.ends_with('\n') && !group.viewer_output.is_empty() {
                text.push('\n');
            }
        }
    }
    if !added.is_empty() {
        text.push_str(&format!(
            "Instances {} would be added (not running)\n",
            instance_list(added)
        ));
    }
    if !killed.is_empty() {
        text.push_str(&format!(
            "Instances {} would be killed (beyond the local instance count {})\n",
            instance_list(killed),
            local.instance_count
        ));
    }
    let identical = groups.iter().all(|g| g.identical) && added.is_empty() && killed.is_empty();
    if identical {
        text.push_str("No differences\n");
    }
    let json = json!({
        "job": local.key.to_string(),
        "running_job": remote.to_string(),
        "identical": identical,
        "groups": groups.iter().map(|g| json!({
            "instances": g.instances,
            "identical": g.identical,
            "viewer_output": g.viewer_output,
        })).collect::<Vec<_>>(),
        "added": added,
        "killed": killed,
    });
    Output { text, json }
}

/// The exit code of a diff's output: 0 when nothing would change, 1 otherwise (as `diff`).
pub fn exit_code(output: &Output) -> u8 {
    u8::from(output.json.get("identical") != Some(&Value::Bool(true)))
}

/// The exit code of a diff that failed: [`CommandError::exit_code`], except that an error
/// which would exit 1 (the scheduler refused) exits 2, as `diff`'s trouble does, so that a
/// script never reads a failure as "the configs differ".
pub fn error_exit_code(error: &CommandError) -> i32 {
    match error.exit_code() {
        1 => 2,
        code => code,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_diff_never_exits_as_a_difference() {
        let refused = CommandError::Client(crate::ClientError::Api {
            what: "tasks of local/www-data/devel/hello".into(),
            status: 500,
            code: None,
            message: "boom".into(),
        });
        assert_eq!(refused.exit_code(), 1);
        assert_eq!(error_exit_code(&refused), 2);
        let usage = CommandError::Usage("bad".into());
        assert_eq!(error_exit_code(&usage), 2);
        let wait = CommandError::WaitFailed("late".into());
        assert_eq!(error_exit_code(&wait), 4);
    }

    fn task_config(cmdline: &str) -> TaskConfig {
        let mut config =
            crate::fixtures::task_config("local/www-data/devel/hello".parse().unwrap());
        config.owner.user = "alice".into();
        config.executor_config.data = format!(r#"{{"z": 1, "cmdline": "{cmdline}"}}"#);
        config
    }

    fn task(instance: u32, config: &TaskConfig, status: &str) -> ScheduledTask {
        serde_json::from_value(json!({
            "assigned_task": {
                "task_id": format!("task-{instance}"),
                "slave_host": format!("host{instance}"),
                "instance_id": instance,
                "task": config,
                "assigned_ports": {"http": 31000 + instance},
            },
            "status": status,
            "failure_count": 0,
            "task_events": [],
        }))
        .expect("scheduled task")
    }

    #[test]
    fn groups_active_instances_by_config_ignoring_hosts_ports_and_user() {
        let old = task_config("echo old");
        let new = task_config("echo new");
        let mut other_user = old.clone();
        other_user.owner.user = "bob".to_owned();
        let tasks = [
            task(2, &new, "RUNNING"),
            task(0, &old, "RUNNING"),
            task(1, &other_user, "PENDING"),
            task(3, &old, "RUNNING"),
            // A finished run of instance 4 is history, not a running instance.
            task(4, &new, "FINISHED"),
        ];
        let groups = group_instances(&tasks);
        assert_eq!(groups.len(), 2, "{groups:?}");
        assert_eq!(groups[0].instances, BTreeSet::from([0, 1, 3]));
        assert_eq!(groups[1].instances, BTreeSet::from([2]));
        assert_eq!(instance_list(&groups[0].instances), "0-1,3");
    }

    #[test]
    fn renders_sorted_pretty_json_with_the_payload_parsed() {
        let value = comparable(&task_config("echo hi"));
        let text = pretty(&value);
        assert!(text.ends_with("}\n"), "{text}");
        assert!(!text.contains("alice"), "{text}");
        // The payload is an object, its keys sorted and one per line.
        let cmdline = text.find("\"cmdline\": \"echo hi\"").expect("cmdline line");
        let z = text.find("\"z\": 1").expect("z line");
        assert!(cmdline < z, "{text}");
        // Top-level keys are sorted too.
        let executor = text.find("\"executor_config\"").expect("executor_config");
        let job = text.find("\"job\"").expect("job");
        let resources = text.find("\"resources\"").expect("resources");
        assert!(executor < job && job < resources, "{text}");
    }

    #[test]
    fn a_non_json_payload_stays_text() {
        let mut config = task_config("x");
        config.executor_config.data = "not json".to_owned();
        assert_eq!(
            comparable(&config)["executor_config"]["data"],
            Value::String("not json".to_owned())
        );
    }

    #[test]
    fn the_viewer_gets_the_running_then_the_local_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (a, b) = (dir.path().join("a b.json"), dir.path().join("b.json"));
        std::fs::write(&a, "one\n").expect("write");
        std::fs::write(&b, "two\n").expect("write");
        let out = run_viewer("diff", &a, &b).expect("diff runs");
        assert_eq!(out, "1c1\n< one\n---\n> two\n");
        assert_eq!(run_viewer("diff", &a, &a).expect("diff runs"), "");
        let err = run_viewer("no-such-viewer-xyz", &a, &b).expect_err("missing viewer");
        assert!(err.to_string().contains("no-such-viewer-xyz"), "{err}");
    }
}
