use std::collections::BTreeMap;

use aurora_core::api::{MachineResources, PortRange};
use aurora_core::{ExecutorConfig, Identity, JobConfiguration, Resources, TaskConfig};

use super::*;
use crate::storage::{MemStorage, Storage, Transaction};

const MIB: u64 = 1024 * 1024;

/// An engine whose every batch is also appended to a log, so that tests can check replay.
struct Harness {
    engine: Engine,
    log: Vec<Transaction>,
    now: i64,
}

impl Harness {
    fn new() -> Harness {
        let mut n = 0;
        let engine = Engine::new(
            State::default(),
            EngineConfig {
                cluster: "local".into(),
                hostname: "sched".into(),
                heartbeat_interval_ms: 500,
                executor_timeout_ms: 10_000,
            },
            1_000,
        )
        .with_nonce(move || {
            n += 1;
            format!("n{n}")
        });
        Harness {
            engine,
            log: Vec::new(),
            now: 1_000,
        }
    }

    fn run<T>(&mut self, f: impl FnOnce(&mut Engine, i64) -> T) -> T {
        self.now += 10;
        let out = f(&mut self.engine, self.now);
        let ops = self.engine.take_batch();
        if !ops.is_empty() {
            self.log.push(Transaction {
                seq: self.log.len() as u64 + 1,
                ops,
            });
        }
        out
    }

    fn create(
        &mut self,
        name: &str,
        instances: u32,
        edit: impl FnOnce(&mut TaskConfig),
    ) -> Vec<TaskId> {
        let job = job(name, instances, edit);
        self.run(|e, now| e.create_job(CreateJobRequest { job }, now))
            .unwrap()
            .task_ids
    }

    fn register(&mut self, host: &str) -> ExecutorWork {
        let req = RegisterExecutorRequest {
            host: host.into(),
            attributes: BTreeMap::from([("rack".into(), BTreeSet::from(["r1".into()]))]),
            resources: MachineResources {
                cpu: 4.0,
                ram_bytes: 4096 * MIB,
                disk_bytes: 4096 * MIB,
                ports: PortRange {
                    begin: 31000,
                    end: 31100,
                },
            },
            tasks: Vec::new(),
        };
        self.run(|e, now| e.register(req, now)).unwrap()
    }

    fn heartbeat(&mut self, host: &str, held: &[(&TaskId, ScheduleStatus)]) -> ExecutorWork {
        let req = HeartbeatRequest {
            tasks: held
                .iter()
                .map(|(id, status)| ExecutorTaskState {
                    task_id: (*id).clone(),
                    status: *status,
                })
                .collect(),
        };
        let host = host.to_owned();
        self.run(|e, now| e.heartbeat(&host, &req, now)).unwrap()
    }

    fn status(&mut self, host: &str, id: &TaskId, status: ScheduleStatus) {
        let update = StatusUpdate {
            task_id: id.clone(),
            status,
            message: None,
        };
        let host = host.to_owned();
        self.run(|e, now| e.status(&host, update, now)).unwrap();
    }

    fn task(&self, id: &TaskId) -> &ScheduledTask {
        &self.engine.state.tasks[id]
    }

    /// The history of a task as `STATE` names.
    fn history(&self, id: &TaskId) -> Vec<ScheduleStatus> {
        self.task(id).task_events.iter().map(|e| e.status).collect()
    }

    /// The replacement of a task (the one whose ancestor it is).
    fn child(&self, id: &TaskId) -> Option<&ScheduledTask> {
        self.engine
            .state
            .tasks
            .values()
            .find(|t| t.ancestor_id.as_ref() == Some(id))
    }

    fn assert_replay_matches(&self) {
        let storage = MemStorage::default();
        storage.append(&self.log).unwrap();
        let (state, seq) = State::recover(storage.recover().unwrap());
        assert_eq!(seq, self.log.len() as u64);
        assert_eq!(
            state, self.engine.state,
            "replaying the log must rebuild the state"
        );
    }
}

fn job(name: &str, instances: u32, edit: impl FnOnce(&mut TaskConfig)) -> JobConfiguration {
    let key: JobKey = format!("local/www/prod/{name}").parse().unwrap();
    let owner = Identity {
        role: "www".into(),
        user: "me".into(),
    };
    let mut task = TaskConfig {
        job: key.clone(),
        owner: owner.clone(),
        is_service: false,
        max_task_failures: 1,
        priority: 0,
        production: false,
        contact_email: None,
        resources: Resources {
            cpu: 1.0,
            ram_bytes: 64 * MIB,
            disk_bytes: 64 * MIB,
            ports: BTreeSet::from(["http".into()]),
        },
        constraints: Vec::new(),
        task_links: BTreeMap::new(),
        executor_config: ExecutorConfig {
            name: "AuroraExecutor".into(),
            data: "{}".into(),
        },
    };
    edit(&mut task);
    JobConfiguration {
        key,
        owner,
        cron_schedule: None,
        cron_collision_policy: Default::default(),
        task_config: task,
        instance_count: instances,
    }
}

use ScheduleStatus::*;

#[test]
fn a_task_runs_to_finished_with_its_history() {
    let mut h = Harness::new();
    let ids = h.create("hello", 1, |_| {});
    assert_eq!(h.history(&ids[0]), [Pending]);
    let work = h.register("h1");
    assert_eq!(work.launch.len(), 1, "registration places and launches");
    let launched = &work.launch[0];
    assert_eq!(launched.slave_host.as_deref(), Some("h1"));
    assert_eq!(launched.assigned_ports["http"], 31000);
    // Launches are resent until the executor holds the task.
    assert_eq!(h.heartbeat("h1", &[]).launch.len(), 1);
    assert!(h.heartbeat("h1", &[(&ids[0], Starting)]).launch.is_empty());
    for s in [Starting, Running, Finished] {
        h.status("h1", &ids[0], s);
    }
    assert_eq!(
        h.history(&ids[0]),
        [Pending, Assigned, Starting, Running, Finished]
    );
    let event = &h.task(&ids[0]).task_events[1];
    assert_eq!(event.scheduler.as_deref(), Some("sched"));
    assert_eq!(event.message.as_deref(), Some("assigned to h1"));
    assert!(
        h.child(&ids[0]).is_none(),
        "a finished batch task is not rerun"
    );
    assert!(!h.engine.state.job_is_active(&ids_job(&h, &ids[0])));
    h.assert_replay_matches();
}

fn ids_job(h: &Harness, id: &TaskId) -> JobKey {
    h.task(id).job().clone()
}

#[test]
fn failures_reschedule_until_max_task_failures() {
    let mut h = Harness::new();
    let ids = h.create("flaky", 1, |t| t.max_task_failures = 2);
    h.register("h1");
    h.status("h1", &ids[0], Running);
    h.status("h1", &ids[0], Failed);
    assert_eq!(h.task(&ids[0]).failure_count, 1);
    let second = h.child(&ids[0]).expect("first failure reschedules").clone();
    assert_eq!(second.status, Pending);
    assert_eq!(second.failure_count, 1);
    assert_eq!(second.instance(), 0);
    assert_ne!(second.id(), &ids[0]);
    h.run(|e, now| e.schedule(now));
    h.status("h1", second.id(), Failed);
    assert_eq!(h.task(second.id()).failure_count, 2);
    assert!(h.child(second.id()).is_none(), "two failed runs of max 2");
    h.assert_replay_matches();
}

#[test]
fn services_restart_when_they_finish() {
    let mut h = Harness::new();
    let ids = h.create("svc", 1, |t| t.is_service = true);
    h.register("h1");
    h.status("h1", &ids[0], Finished);
    assert_eq!(h.child(&ids[0]).map(|t| t.status), Some(Pending));
}

#[test]
fn kill_deletes_pending_tasks_and_kills_running_ones() {
    let mut h = Harness::new();
    let ids = h.create("web", 2, |_| {});
    h.register("h1");
    // The default host limit keeps the second instance pending on a single host.
    assert_eq!(h.task(&ids[1]).status, Pending);
    assert!(h.engine.pending_reasons[&ids[1]].contains("host:limit:1"));
    h.status("h1", &ids[0], Running);
    let resp = h
        .run(|e, now| e.kill_job("www", "prod", "web", KillRequest::default(), now))
        .unwrap();
    assert_eq!(resp.killed.len(), 2);
    assert!(!h.engine.state.tasks.contains_key(&ids[1]));
    assert_eq!(h.task(&ids[0]).status, Killing);
    // The kill is resent until the executor reports the task terminal.
    for _ in 0..2 {
        assert_eq!(
            h.heartbeat("h1", &[(&ids[0], Running)]).kill,
            [ids[0].clone()]
        );
    }
    h.status("h1", &ids[0], Killed);
    assert!(h.heartbeat("h1", &[]).kill.is_empty());
    assert!(
        h.child(&ids[0]).is_none(),
        "a user kill does not reschedule"
    );
    // The job is inactive now, so it can be created again.
    h.create("web", 1, |_| {});
    h.assert_replay_matches();
}

#[test]
fn kill_of_selected_instances_and_of_unknown_jobs() {
    let mut h = Harness::new();
    let ids = h.create("web", 3, |_| {});
    let req = KillRequest {
        instances: Some(BTreeSet::from([1])),
        message: Some("scale down".into()),
    };
    let resp = h
        .run(|e, now| e.kill_job("www", "prod", "web", req, now))
        .unwrap();
    assert_eq!(resp.killed, [ids[1].clone()]);
    let err = h
        .run(|e, now| e.kill_job("www", "prod", "nope", KillRequest::default(), now))
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::NotFound);
    let err = h
        .run(|e, now| e.kill_job("www", "bad env", "web", KillRequest::default(), now))
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidRequest);
}

#[test]
fn a_silent_executor_loses_its_tasks_and_they_are_rescheduled() {
    let mut h = Harness::new();
    let ids = h.create("web", 1, |_| {});
    h.register("h1");
    h.status("h1", &ids[0], Running);
    h.run(|e, now| e.check_executors(now + 5_000));
    assert_eq!(h.task(&ids[0]).status, Running, "not yet timed out");
    h.run(|e, now| e.check_executors(now + 20_000));
    assert_eq!(h.task(&ids[0]).status, Lost);
    let msg = h.task(&ids[0]).task_events.last().unwrap().message.clone();
    assert_eq!(
        msg.as_deref(),
        Some("executor on h1 sent no heartbeat for 10000 ms")
    );
    assert_eq!(h.child(&ids[0]).map(|t| t.status), Some(Pending));
    // The executor must register again; its heartbeats are refused meanwhile.
    let err = h.run(|e, now| e.heartbeat("h1", &HeartbeatRequest::default(), now));
    assert_eq!(err.unwrap_err().code, ErrorCode::NotFound);
    let work = h.register("h1");
    assert_eq!(
        work.launch.len(),
        1,
        "the replacement is placed on the returning host"
    );
    h.assert_replay_matches();
}

#[test]
fn reconciliation_kills_tasks_the_scheduler_does_not_want() {
    let mut h = Harness::new();
    let ids = h.create("web", 1, |_| {});
    h.register("h1");
    h.status("h1", &ids[0], Running);
    h.status("h1", &ids[0], Killed);
    let stranger = TaskId("stranger".into());
    let work = h.heartbeat("h1", &[(&ids[0], Running), (&stranger, Running)]);
    assert_eq!(work.kill, [ids[0].clone(), stranger.clone()]);
    // Once the executor stops reporting them, the kills stop.
    assert!(h.heartbeat("h1", &[]).kill.is_empty());
}

#[test]
fn illegal_and_bad_status_updates() {
    let mut h = Harness::new();
    let ids = h.create("web", 1, |_| {});
    h.register("h1");
    h.status("h1", &ids[0], Running);
    h.status("h1", &ids[0], Starting);
    assert_eq!(h.task(&ids[0]).status, Running);
    assert_eq!(h.engine.counters.illegal_transitions, 1);
    let update = StatusUpdate {
        task_id: ids[0].clone(),
        status: Pending,
        message: None,
    };
    let err = h.run(|e, now| e.status("h1", update, now)).unwrap_err();
    assert!(
        err.message.contains("status PENDING cannot be reported"),
        "{err}"
    );
    let update = StatusUpdate {
        task_id: ids[0].clone(),
        status: Finished,
        message: None,
    };
    let err = h.run(|e, now| e.status("h2", update, now)).unwrap_err();
    assert_eq!(err.code, ErrorCode::Conflict);
}

#[test]
fn job_validation_reports_every_problem() {
    let mut h = Harness::new();
    let mut bad = job("web", 0, |t| t.resources.cpu = 0.0);
    bad.key = "other/www/prod/web".parse().unwrap();
    let err = h
        .run(|e, now| e.create_job(CreateJobRequest { job: bad }, now))
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidRequest);
    for frag in [
        "names cluster \"other\" but this scheduler serves cluster \"local\"",
        "task_config.job is local/www/prod/web but the job key is other/www/prod/web",
        "instance_count 0 is out of range; use 1 to 4000",
        "cpu 0 must be a positive number",
    ] {
        assert!(
            err.message.contains(frag),
            "{frag:?} not in {}",
            err.message
        );
    }
    h.create("web", 1, |_| {});
    let err = h
        .run(|e, now| {
            e.create_job(
                CreateJobRequest {
                    job: job("web", 1, |_| {}),
                },
                now,
            )
        })
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::Conflict);
    assert!(h.log.len() == 1, "failed requests write nothing");
}

#[test]
fn default_host_constraint_is_added_at_creation() {
    let mut h = Harness::new();
    let ids = h.create("web", 1, |_| {});
    let c = &h.task(&ids[0]).assigned_task.task.constraints;
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].to_owned().name, "host");
}

#[test]
fn snapshot_plus_log_rebuilds_the_state() {
    let mut h = Harness::new();
    let ids = h.create("web", 2, |_| {});
    h.register("h1");
    let storage = MemStorage::default();
    storage.append(&h.log).unwrap();
    storage
        .snapshot(&crate::storage::Snapshot {
            seq: h.log.len() as u64,
            timestamp_ms: h.now,
            state: h.engine.state.to_snapshot(),
        })
        .unwrap();
    let mark = h.log.len();
    h.status("h1", &ids[0], Running);
    h.run(|e, now| e.kill_job("www", "prod", "web", KillRequest::default(), now))
        .unwrap();
    storage.append(&h.log[mark..]).unwrap();
    let recovered = storage.recover().unwrap();
    assert_eq!(recovered.log.len(), h.log.len() - mark);
    let (state, _) = State::recover(recovered);
    assert_eq!(state, h.engine.state);
}
