//! The OpenAPI 3 document of the HTTP API, served at `/api/openapi.json`. Written by hand next
//! to the routes in `http.rs`; the test in `http.rs` checks that every route is described.

use std::sync::LazyLock;

use serde_json::{Value, json};

/// The document as JSON text.
pub(crate) static DOCUMENT: LazyLock<String> = LazyLock::new(|| {
    let mut doc = document();
    add_model_schemas(&mut doc);
    doc.to_string()
});

fn body(schema: &str) -> Value {
    json!({"required": true, "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{schema}")}}}})
}

fn ok(schema: &str) -> Value {
    json!({
        "200": {"description": "OK", "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{schema}")}}}},
        "4XX": {"$ref": "#/components/responses/Error"},
        "5XX": {"$ref": "#/components/responses/Error"}
    })
}

fn op(summary: &str, request: Option<&str>, response: &str, params: &[&str]) -> Value {
    let mut o = json!({"summary": summary, "responses": ok(response)});
    if let Some(r) = request {
        o["requestBody"] = body(r);
    }
    if !params.is_empty() {
        o["parameters"] = Value::Array(
            params
                .iter()
                .map(|p| json!({"name": p, "in": "path", "required": true, "schema": {"type": "string"}}))
                .collect(),
        );
    }
    o
}

fn obj(props: Value, required: &[&str]) -> Value {
    json!({"type": "object", "properties": props, "required": required})
}

fn document() -> Value {
    let job = ["role", "environment", "name"];
    let query = |name: &str, doc: &str| json!({"name": name, "in": "query", "required": false, "description": doc, "schema": {"type": "string"}});
    let mut list_tasks = op("Tasks matching a query", None, "TasksResponse", &[]);
    list_tasks["parameters"] = json!([
        query("role", "the job's role"),
        query("environment", "the job's environment"),
        query("name", "the job's name"),
        query(
            "statuses",
            "comma-separated task states, e.g. RUNNING,PENDING"
        )
    ]);
    let mut list_jobs = op("Jobs, with task counts by state", None, "JobsResponse", &[]);
    list_jobs["parameters"] = json!([query("role", "only jobs of this role")]);
    let string_map = json!({"type": "object", "additionalProperties": {"type": "string"}});
    let resources = obj(
        json!({"cpu": {"type": "number"}, "ram_bytes": {"type": "integer", "minimum": 0}, "disk_bytes": {"type": "integer", "minimum": 0}}),
        &["cpu", "ram_bytes", "disk_bytes"],
    );
    let any = json!({"type": "object", "description": "see aurora_core (model.rs) for the fields"});
    let ids = json!({"type": "array", "items": {"type": "string"}});
    let instances = json!({"type": "array", "items": {"type": "integer", "minimum": 0}});
    let machine = obj(
        json!({"cpu": {"type": "number"}, "ram_bytes": {"type": "integer"}, "disk_bytes": {"type": "integer"},
               "ports": obj(json!({"begin": {"type": "integer"}, "end": {"type": "integer"}}), &["begin", "end"])}),
        &["cpu", "ram_bytes", "disk_bytes", "ports"],
    );
    let register = obj(
        json!({"host": {"type": "string"},
               "attributes": {"type": "object", "additionalProperties": {"type": "array", "items": {"type": "string"}}},
               "resources": machine,
               "tasks": {"type": "array", "items": {"$ref": "#/components/schemas/ExecutorTaskState"}}}),
        &["host", "attributes", "resources"],
    );
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "aurora-rs scheduler",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "The JSON API of the Aurora scheduler. Every error is a 4xx/5xx status with an ApiError body."
        },
        "paths": {
            "/health": {"get": {"summary": "Liveness; answers OK", "responses": {"200": {"description": "OK", "content": {"text/plain": {}}}}}},
            "/vars": {"get": {"summary": "Counters and gauges as `name value` lines", "responses": {"200": {"description": "OK", "content": {"text/plain": {}}}}}},
            "/vars.json": {"get": {"summary": "Counters and gauges as a JSON object", "responses": {"200": {"description": "OK", "content": {"application/json": {}}}}}},
            "/pendingtasks": {"get": op("Why each pending or throttled task waits", None, "PendingReasons", &[])},
            "/api/openapi.json": {"get": {"summary": "This document", "responses": {"200": {"description": "OK", "content": {"application/json": {}}}}}},
            "/api/jobs": {
                "post": op("Create a job", Some("CreateJobRequest"), "CreateJobResponse", &[]),
                "get": list_jobs
            },
            "/api/tasks": {"get": list_tasks},
            "/api/jobs/{role}/{environment}/{name}/kill": {"post": op("Kill a job's tasks", Some("KillRequest"), "KillResponse", &job)},
            "/api/jobs/{role}/{environment}/{name}/instances": {"post": op("Add instances with a task config (canary)", Some("AddInstancesRequest"), "AddInstancesResponse", &job)},
            "/api/jobs/{role}/{environment}/{name}/restart": {"post": op("Restart instances (RESTARTING, then rescheduled)", Some("RestartRequest"), "RestartResponse", &job)},
            "/api/jobs/{role}/{environment}/{name}/lock": {"post": op("Lock a job (as an update does); 409 with code LOCKED naming the holder, since when and why if it is already locked", Some("AcquireLockRequest"), "Lock", &job)},
            "/api/jobs/{role}/{environment}/{name}/unlock": {"post": op("Release a job's lock and return it; CHECKED needs the lock's token (409 LOCKED otherwise), UNCHECKED releases whatever is held (cancel_update); 404 when the job is not locked", Some("ReleaseLockRequest"), "Lock", &job)},
            "/api/locks": {"get": op("Every lock held, by job", None, "LocksResponse", &[])},
            "/locks": {"get": op("The original's locks page: role/env/name to the lock", None, "LocksPage", &[])},
            "/api/quota/{role}": {"get": op("A role's quota and consumption", None, "QuotaResponse", &["role"])},
            "/api/executors": {"post": op("Register an executor", Some("RegisterExecutorRequest"), "ExecutorWork", &[])},
            "/api/executors/{host}/heartbeat": {"post": op("Executor heartbeat", Some("HeartbeatRequest"), "ExecutorWork", &["host"])},
            "/api/executors/{host}/status": {"post": op("A task changed state on an executor", Some("StatusUpdate"), "Ack", &["host"])},
            "/api/admin/quota/{role}": {"post": op("Set a role's quota (negative values are refused)", Some("SetQuotaRequest"), "QuotaResponse", &["role"])},
            "/api/admin/maintenance": {"get": op("Hosts not in service", None, "MaintenanceResponse", &[])},
            "/api/admin/maintenance/start": {"post": op("Announce maintenance (SCHEDULED)", Some("HostsRequest"), "MaintenanceResponse", &[])},
            "/api/admin/maintenance/drain": {"post": op("Drain hosts: their tasks go through DRAINING and are rescheduled elsewhere", Some("HostsRequest"), "MaintenanceResponse", &[])},
            "/api/admin/maintenance/end": {"post": op("Return hosts to service", Some("HostsRequest"), "MaintenanceResponse", &[])},
            "/api/admin/snapshot": {"post": op("Snapshot the state and truncate the log", None, "SnapshotResponse", &[])},
            "/api/admin/backup": {"post": op("Write a backup into <data_dir>/backups", None, "BackupResponse", &[])},
            "/api/admin/backups": {"get": op("List backups", None, "BackupsResponse", &[])},
            "/api/admin/restore": {"post": op("Replace the whole state with a backup", Some("RestoreRequest"), "Ack", &[])}
        },
        "components": {
            "responses": {"Error": {"description": "The request failed", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ApiError"}}}}},
            "schemas": {
                "ApiError": obj(json!({"code": {"type": "string", "enum": ["INVALID_REQUEST", "NOT_FOUND", "CONFLICT", "ERROR", "LOCKED"]}, "message": {"type": "string"}}), &["code", "message"]),
                "Ack": {"type": "object"},
                "PendingReasons": string_map,
                "ResourceAggregate": resources,
                "JobConfiguration": any,
                "TaskConfig": any,
                "ScheduledTask": any,
                "AssignedTask": any,
                "CreateJobRequest": obj(json!({"job": {"$ref": "#/components/schemas/JobConfiguration"}}), &["job"]),
                "CreateJobResponse": obj(json!({"message": {"type": "string"}, "task_ids": ids}), &["message", "task_ids"]),
                "JobsResponse": obj(json!({"jobs": {"type": "array", "items": obj(json!({"key": any, "instance_count": {"type": "integer"}, "task_counts": {"type": "object", "additionalProperties": {"type": "integer"}}}), &["key", "instance_count", "task_counts"])}}), &["jobs"]),
                "TasksResponse": obj(json!({"tasks": {"type": "array", "items": {"$ref": "#/components/schemas/ScheduledTask"}}, "pending_reasons": string_map}), &["tasks"]),
                "KillRequest": obj(json!({"instances": instances, "message": {"type": "string"}, "lock_token": {"type": "string", "description": "the token of the job's lock, required while the job is locked"}}), &[]),
                "KillResponse": obj(json!({"message": {"type": "string"}, "killed": ids}), &["message", "killed"]),
                "AddInstancesRequest": obj(json!({"task_config": {"$ref": "#/components/schemas/TaskConfig"}, "instances": instances, "lock_token": {"type": "string", "description": "the token of the job's lock, required while the job is locked"}}), &["task_config", "instances"]),
                "AddInstancesResponse": obj(json!({"message": {"type": "string"}, "task_ids": ids}), &["message", "task_ids"]),
                "RestartRequest": obj(json!({"instances": instances, "lock_token": {"type": "string", "description": "the token of the job's lock, required while the job is locked"}}), &[]),
                "Lock": obj(json!({"key": {"$ref": "#/components/schemas/JobKey"}, "token": {"type": "string"}, "user": {"type": "string"}, "timestamp_ms": {"type": "integer"}, "message": {"type": "string"}}), &["key", "token", "user", "timestamp_ms"]),
                "AcquireLockRequest": obj(json!({"user": {"type": "string"}, "message": {"type": "string"}}), &["user"]),
                "ReleaseLockRequest": obj(json!({"token": {"type": "string"}, "validation": {"type": "string", "enum": ["CHECKED", "UNCHECKED"], "default": "CHECKED"}}), &[]),
                "LocksResponse": obj(json!({"locks": {"type": "array", "items": {"$ref": "#/components/schemas/Lock"}}}), &["locks"]),
                "LocksPage": {"type": "object", "additionalProperties": obj(json!({"token": {"type": "string"}, "user": {"type": "string"}, "timestampMs": {"type": "integer"}, "message": {"type": "string", "nullable": true}}), &["token", "user", "timestampMs"])},
                "RestartResponse": obj(json!({"message": {"type": "string"}, "restarted": ids}), &["message", "restarted"]),
                "QuotaResponse": obj(json!({"role": {"type": "string"}, "quota": {"$ref": "#/components/schemas/ResourceAggregate"}, "prod_consumption": {"$ref": "#/components/schemas/ResourceAggregate"}, "non_prod_consumption": {"$ref": "#/components/schemas/ResourceAggregate"}}), &["role", "quota", "prod_consumption", "non_prod_consumption"]),
                "SetQuotaRequest": obj(json!({"cpu": {"type": "number", "minimum": 0}, "ram_bytes": {"type": "integer", "minimum": 0}, "disk_bytes": {"type": "integer", "minimum": 0}}), &["cpu", "ram_bytes", "disk_bytes"]),
                "HostsRequest": obj(json!({"hosts": {"type": "array", "items": {"type": "string"}}}), &["hosts"]),
                "MaintenanceResponse": obj(json!({"hosts": {"type": "object", "additionalProperties": {"type": "string", "enum": ["NONE", "SCHEDULED", "DRAINING", "DRAINED"]}}}), &["hosts"]),
                "SnapshotResponse": obj(json!({"seq": {"type": "integer"}}), &["seq"]),
                "BackupResponse": obj(json!({"name": {"type": "string"}, "path": {"type": "string"}}), &["name", "path"]),
                "BackupsResponse": obj(json!({"backups": {"type": "array", "items": {"type": "string"}}}), &["backups"]),
                "RestoreRequest": obj(json!({"backup": {"type": "string"}}), &["backup"]),
                "RegisterExecutorRequest": register,
                "ExecutorTaskState": obj(json!({"task_id": {"type": "string"}, "status": {"type": "string"}}), &["task_id", "status"]),
                "HeartbeatRequest": obj(json!({"tasks": {"type": "array", "items": {"$ref": "#/components/schemas/ExecutorTaskState"}}}), &["tasks"]),
                "ExecutorWork": obj(json!({"launch": {"type": "array", "items": {"$ref": "#/components/schemas/AssignedTask"}}, "kill": ids, "heartbeat_interval_ms": {"type": "integer"}}), &["launch", "kill", "heartbeat_interval_ms"]),
                "StatusUpdate": obj(json!({"task_id": {"type": "string"}, "status": {"type": "string", "enum": ["STARTING", "RUNNING", "FINISHED", "FAILED", "KILLED", "LOST"]}, "message": {"type": "string"}}), &["task_id", "status"])
            }
        }
    })
}

fn reference(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

/// The domain types of `aurora_core` (model.rs) as they appear on the wire.
fn add_model_schemas(doc: &mut Value) {
    let string = json!({"type": "string"});
    let integer = json!({"type": "integer"});
    let boolean = json!({"type": "boolean"});
    let status = json!({"type": "string", "enum": [
        "INIT", "THROTTLED", "PENDING", "ASSIGNED", "STARTING", "RUNNING", "FINISHED",
        "PREEMPTING", "RESTARTING", "DRAINING", "FAILED", "KILLED", "KILLING", "LOST"]});
    let schemas = [
        (
            "JobKey",
            obj(
                json!({"cluster": string, "role": string, "environment": string, "name": string}),
                &["cluster", "role", "environment", "name"],
            ),
        ),
        (
            "Identity",
            obj(json!({"role": string, "user": string}), &["role", "user"]),
        ),
        (
            "Resources",
            obj(
                json!({"cpu": {"type": "number"}, "ram_bytes": integer, "disk_bytes": integer,
            "ports": {"type": "array", "items": string}}),
                &["cpu", "ram_bytes", "disk_bytes"],
            ),
        ),
        (
            "Constraint",
            obj(
                json!({"name": string, "constraint": {"oneOf": [
                    obj(json!({"value": obj(json!({"negated": boolean, "values": {"type": "array", "items": string}}), &["negated", "values"])}), &["value"]),
                    obj(json!({"limit": obj(json!({"limit": {"type": "integer", "minimum": 1}}), &["limit"])}), &["limit"])
                ]}}),
                &["name", "constraint"],
            ),
        ),
        (
            "ExecutorConfig",
            obj(json!({"name": string, "data": string}), &["name", "data"]),
        ),
        (
            "TaskConfig",
            obj(
                json!({
                    "job": reference("JobKey"), "owner": reference("Identity"), "is_service": boolean,
                    "max_task_failures": integer, "priority": integer, "production": boolean,
                    "contact_email": string, "resources": reference("Resources"),
                    "constraints": {"type": "array", "items": reference("Constraint")},
                    "task_links": {"type": "object", "additionalProperties": string},
                    "executor_config": reference("ExecutorConfig")
                }),
                &[
                    "job",
                    "owner",
                    "is_service",
                    "max_task_failures",
                    "priority",
                    "production",
                    "resources",
                    "executor_config",
                ],
            ),
        ),
        (
            "JobConfiguration",
            obj(
                json!({
                    "key": reference("JobKey"), "owner": reference("Identity"), "cron_schedule": string,
                    "cron_collision_policy": {"type": "string", "enum": ["KILL_EXISTING", "CANCEL_NEW", "RUN_OVERLAP"]},
                    "task_config": reference("TaskConfig"), "instance_count": {"type": "integer", "minimum": 1, "maximum": 4000}
                }),
                &["key", "owner", "task_config", "instance_count"],
            ),
        ),
        (
            "AssignedTask",
            obj(
                json!({
                    "task_id": string, "slave_host": string, "instance_id": integer,
                    "task": reference("TaskConfig"),
                    "assigned_ports": {"type": "object", "additionalProperties": integer}
                }),
                &["task_id", "instance_id", "task"],
            ),
        ),
        (
            "TaskEvent",
            obj(
                json!({"timestamp_ms": integer, "status": status, "message": string, "scheduler": string}),
                &["timestamp_ms", "status"],
            ),
        ),
        (
            "ScheduledTask",
            obj(
                json!({
                    "assigned_task": reference("AssignedTask"), "status": status, "failure_count": integer,
                    "ancestor_id": string, "task_events": {"type": "array", "items": reference("TaskEvent")}
                }),
                &["assigned_task", "status", "failure_count"],
            ),
        ),
    ];
    if let Some(map) = doc["components"]["schemas"].as_object_mut() {
        for (name, schema) in schemas {
            map.insert(name.to_owned(), schema);
        }
    }
}

/// Every documented `(method, path)`, for the route test.
#[cfg(test)]
pub(crate) fn operations() -> Vec<(String, String)> {
    let doc: Value = serde_json::from_str(&DOCUMENT).unwrap_or_default();
    let mut out = Vec::new();
    if let Some(paths) = doc["paths"].as_object() {
        for (path, ops) in paths {
            for method in ops.as_object().into_iter().flat_map(|o| o.keys()) {
                out.push((method.to_uppercase(), path.clone()));
            }
        }
    }
    out
}
