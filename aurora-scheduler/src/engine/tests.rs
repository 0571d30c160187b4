use std::collections::BTreeMap;

use aurora_core::api::{
    AcquireLockRequest, AddInstancesRequest, LockValidation, ReleaseLockRequest, RestartRequest,
    SetQuotaRequest,
};
use aurora_core::api::{MachineResources, PortRange};
use aurora_core::{
    ExecutorConfig, Identity, JobConfiguration, MaintenanceMode, Resources, TaskConfig,
    TaskConstraint,
};

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
        Harness::with(|_| {})
    }

    fn with(edit: impl FnOnce(&mut EngineConfig)) -> Harness {
        let mut n = 0;
        let mut config = EngineConfig::for_tests();
        edit(&mut config);
        let engine = Engine::new(State::default(), config, 1_000).with_nonce(move || {
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
            .map(|t| &**t)
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
        task_config: task.into(),
        instance_count: instances,
        update_config: Default::default(),
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
    // The kill is resent, with a doubling interval, until the executor reports the task
    // terminal.
    assert_eq!(
        h.heartbeat("h1", &[(&ids[0], Running)]).kill,
        [ids[0].clone()]
    );
    assert!(h.heartbeat("h1", &[(&ids[0], Running)]).kill.is_empty());
    h.now += 1_000;
    assert_eq!(
        h.heartbeat("h1", &[(&ids[0], Running)]).kill,
        [ids[0].clone()]
    );
    h.now += 1_000;
    assert!(
        h.heartbeat("h1", &[(&ids[0], Running)]).kill.is_empty(),
        "now every 2 s"
    );
    h.now += 1_000;
    assert_eq!(h.heartbeat("h1", &[(&ids[0], Running)]).kill.len(), 1);
    assert_eq!(h.engine.counters.kill_retries, 2);
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
        lock_token: None,
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

impl Harness {
    fn reason(&self, id: &TaskId) -> String {
        self.engine.reason(id).unwrap_or_default().to_owned()
    }

    fn status_of(&self, id: &TaskId) -> ScheduleStatus {
        self.task(id).status
    }

    fn set_quota(&mut self, cpu: f64) {
        self.run(|e, _| {
            e.set_quota(
                "www",
                SetQuotaRequest {
                    cpu,
                    ram_bytes: 1 << 40,
                    disk_bytes: 1 << 40,
                },
            )
        })
        .unwrap();
    }
}

fn many_per_host(t: &mut TaskConfig) {
    t.constraints.push(aurora_core::Constraint {
        name: "host".into(),
        constraint: TaskConstraint::Limit { limit: 100 },
    });
}

#[test]
fn flapping_tasks_come_back_throttled_with_a_growing_penalty() {
    let mut h = Harness::with(|c| {
        c.lifecycle.flapping_threshold_ms = 60_000;
        c.lifecycle.initial_flapping_penalty_ms = 1_000;
        c.lifecycle.max_flapping_penalty_ms = 4_000;
    });
    let ids = h.create("flappy", 1, |t| t.is_service = true);
    h.register("h1");
    h.status("h1", &ids[0], Running);
    h.status("h1", &ids[0], Failed);
    let second = h.child(&ids[0]).unwrap().id().clone();
    assert_eq!(h.status_of(&second), Throttled);
    assert!(
        h.reason(&second).contains("throttled for 1000 ms"),
        "{}",
        h.reason(&second)
    );
    h.run(|e, now| e.check_timers(now + 500));
    assert_eq!(
        h.status_of(&second),
        Throttled,
        "the penalty is not served yet"
    );
    h.run(|e, now| e.check_timers(now + 1_000));
    assert_eq!(h.status_of(&second), Pending);
    h.run(|e, now| e.schedule(now));
    h.status("h1", &second, Running);
    h.status("h1", &second, Failed);
    let third = h.child(&second).unwrap().id().clone();
    assert!(
        h.reason(&third).contains("throttled for 2000 ms"),
        "{}",
        h.reason(&third)
    );
    // A task that ran long enough is not throttled.
    h.run(|e, now| e.check_timers(now + 2_000));
    h.run(|e, now| e.schedule(now));
    h.status("h1", &third, Running);
    h.now += 120_000;
    h.status("h1", &third, Failed);
    assert_eq!(h.child(&third).map(|t| t.status), Some(Pending));
    assert_eq!(h.engine.counters.tasks_throttled, 2);
    h.assert_replay_matches();
}

#[test]
fn tasks_stuck_in_transient_states_become_lost() {
    let mut h = Harness::with(|c| c.lifecycle.transient_state_timeout_ms = 1_000);
    let ids = h.create("web", 2, many_per_host);
    h.register("h1");
    h.status("h1", &ids[1], Running);
    h.run(|e, now| {
        e.kill_job(
            "www",
            "prod",
            "web",
            KillRequest {
                instances: Some(BTreeSet::from([1])),
                ..KillRequest::default()
            },
            now,
        )
    })
    .unwrap();
    h.run(|e, now| e.check_timers(now + 500));
    assert_eq!(h.status_of(&ids[0]), Assigned);
    h.run(|e, now| e.check_timers(now + 2_000));
    assert_eq!(h.status_of(&ids[0]), Lost, "ASSIGNED for too long");
    assert_eq!(h.status_of(&ids[1]), Lost, "KILLING for too long");
    assert!(
        h.task(&ids[0])
            .task_events
            .last()
            .unwrap()
            .message
            .as_deref()
            .unwrap()
            .contains("stuck in ASSIGNED")
    );
    assert_eq!(
        h.child(&ids[0]).map(|t| t.status),
        Some(Pending),
        "a lost task is replaced"
    );
    assert!(h.child(&ids[1]).is_none(), "a killed one is not");
    h.assert_replay_matches();
}

#[test]
fn heartbeats_reconcile_in_both_directions() {
    let mut h = Harness::new();
    let ids = h.create("web", 1, |_| {});
    h.register("h1");
    // The executor's status update was lost, but its heartbeat says RUNNING.
    h.heartbeat("h1", &[(&ids[0], Running)]);
    assert_eq!(h.history(&ids[0]), [Pending, Assigned, Running]);
    // Then it no longer has the task at all.
    h.heartbeat("h1", &[]);
    assert_eq!(h.status_of(&ids[0]), Lost);
    assert_eq!(
        h.child(&ids[0]).map(|t| t.status),
        Some(Pending),
        "replaced"
    );
    assert_eq!(h.engine.counters.reconciled_lost, 1);
    h.assert_replay_matches();
}

#[test]
fn an_executor_that_comes_back_keeps_its_valid_tasks() {
    let mut h = Harness::new();
    let ids = h.create("web", 2, many_per_host);
    h.register("h1");
    h.status("h1", &ids[0], Running);
    h.status("h1", &ids[1], Running);
    let req = RegisterExecutorRequest {
        tasks: vec![ExecutorTaskState {
            task_id: ids[0].clone(),
            status: Running,
        }],
        ..register_request("h1", "r1")
    };
    h.run(|e, now| e.register(req, now)).unwrap();
    assert_eq!(h.status_of(&ids[0]), Running, "still valid: kept");
    assert_eq!(h.status_of(&ids[1]), Lost, "not reported: lost");
}

fn register_request(host: &str, rack: &str) -> RegisterExecutorRequest {
    RegisterExecutorRequest {
        host: host.into(),
        attributes: BTreeMap::from([("rack".into(), BTreeSet::from([rack.into()]))]),
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
    }
}

#[test]
fn production_preempts_non_production_and_takes_its_place() {
    let mut h = Harness::new();
    h.register("h1");
    let batch = h.create("batch", 4, many_per_host);
    h.run(|e, now| e.schedule(now));
    for id in &batch {
        h.status("h1", id, Running);
    }
    h.set_quota(10.0);
    let web = h.create("web", 1, |t| {
        t.production = true;
        t.resources.cpu = 2.0;
    });
    h.run(|e, now| e.schedule(now));
    let preempting: Vec<&TaskId> = batch
        .iter()
        .filter(|id| h.status_of(id) == Preempting)
        .collect();
    assert_eq!(preempting.len(), 2, "just enough victims");
    let event = h.task(preempting[0]).task_events.last().unwrap();
    assert_eq!(
        event.message.as_deref(),
        Some(format!("Preempting in favor of {}", web[0]).as_str())
    );
    assert!(
        h.reason(&web[0]).contains("preempting 2 task(s) on h1"),
        "{}",
        h.reason(&web[0])
    );
    // No further victims while these are on their way out.
    h.run(|e, now| e.schedule(now));
    assert_eq!(
        batch
            .iter()
            .filter(|id| h.status_of(id) == Preempting)
            .count(),
        2
    );
    let victims: Vec<TaskId> = preempting.into_iter().cloned().collect();
    for id in &victims {
        h.status("h1", id, Killed);
    }
    h.run(|e, now| e.schedule(now));
    assert_eq!(h.status_of(&web[0]), Assigned);
    for id in &victims {
        assert_eq!(
            h.child(id).map(|t| t.status),
            Some(Pending),
            "victims are rescheduled"
        );
    }
    assert_eq!(h.engine.counters.preemptions, 2);
    h.assert_replay_matches();
}

#[test]
fn higher_priority_preempts_only_within_its_role() {
    let mut h = Harness::new();
    h.register("h1");
    let low = h.create("low", 1, |t| t.resources.cpu = 4.0);
    h.run(|e, now| e.schedule(now));
    h.status("h1", &low[0], Running);
    let mut other = job("other", 1, |t| {
        t.priority = 10;
        t.resources.cpu = 4.0;
    });
    other.key = "local/ads/prod/other".parse().unwrap();
    other.owner.role = "ads".into();
    other.task_config.job = other.key.clone();
    other.task_config.owner.role = "ads".into();
    h.run(|e, now| e.create_job(CreateJobRequest { job: other }, now))
        .unwrap();
    h.run(|e, now| e.schedule(now));
    assert_eq!(
        h.status_of(&low[0]),
        Running,
        "another role's priority does not count"
    );
    let high = h.create("high", 1, |t| {
        t.priority = 10;
        t.resources.cpu = 4.0;
    });
    h.run(|e, now| e.schedule(now));
    assert_eq!(h.status_of(&low[0]), Preempting);
    assert_eq!(h.status_of(&high[0]), Pending);
}

#[test]
fn production_jobs_must_fit_the_quota() {
    let mut h = Harness::new();
    let prod = |t: &mut TaskConfig| {
        t.production = true;
        t.resources.cpu = 2.0;
    };
    let err = h
        .run(|e, now| {
            e.create_job(
                CreateJobRequest {
                    job: job("web", 2, prod),
                },
                now,
            )
        })
        .unwrap_err();
    assert!(
        err.message
            .contains("insufficient quota for role www: cpu short by 4"),
        "{}",
        err.message
    );
    let err = h
        .run(|e, _| {
            e.set_quota(
                "www",
                SetQuotaRequest {
                    cpu: 1.0,
                    ram_bytes: -5,
                    disk_bytes: 0,
                },
            )
        })
        .unwrap_err();
    assert!(
        err.message.contains("ram_bytes -5 must be zero or more"),
        "{}",
        err.message
    );
    h.set_quota(5.0);
    h.create("web", 2, prod);
    let q = h.engine.quota("www");
    assert_eq!(q.prod_consumption.cpu, 4.0);
    let err = h
        .run(|e, now| {
            e.create_job(
                CreateJobRequest {
                    job: job("more", 1, prod),
                },
                now,
            )
        })
        .unwrap_err();
    assert!(err.message.contains("cpu short by 1"), "{}", err.message);
    // Non-production work needs no quota.
    h.create("batch", 3, |t| t.resources.cpu = 2.0);
    assert_eq!(h.engine.quota("www").non_prod_consumption.cpu, 6.0);
    h.assert_replay_matches();
}

#[test]
fn instances_can_run_different_configs_and_restart() {
    let mut h = Harness::new();
    let ids = h.create("web", 2, |_| {});
    h.register("h1");
    h.register("h2");
    let mut canary = job("web", 1, |t| {
        t.executor_config.data = "{\"canary\": true}".into()
    })
    .task_config
    .to_config();
    canary.job = ids_job(&h, &ids[0]);
    let req = AddInstancesRequest {
        task_config: canary.clone(),
        instances: BTreeSet::from([0]),
        lock_token: None,
    };
    let err = h
        .run(|e, now| e.add_instances("www", "prod", "web", req, now))
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::Conflict);
    let req = AddInstancesRequest {
        task_config: canary,
        instances: BTreeSet::from([2]),
        lock_token: None,
    };
    let added = h
        .run(|e, now| e.add_instances("www", "prod", "web", req, now))
        .unwrap()
        .task_ids;
    assert_eq!(h.engine.state.jobs[&ids_job(&h, &ids[0])].instance_count, 3);
    let configs: BTreeSet<String> = h
        .engine
        .tasks(&TaskQuery::default())
        .tasks
        .iter()
        .map(|t| t.assigned_task.task.executor_config.data.clone())
        .collect();
    assert_eq!(configs.len(), 2, "both configs are kept");
    h.status("h1", &ids[0], Running);
    let resp = h
        .run(|e, now| {
            e.restart(
                "www",
                "prod",
                "web",
                RestartRequest {
                    instances: Some(BTreeSet::from([0, 2])),
                    lock_token: None,
                },
                now,
            )
        })
        .unwrap();
    assert_eq!(
        resp.restarted.len(),
        1,
        "only instance 0 runs; instance 2 is pending: {resp:?}"
    );
    assert_eq!(h.status_of(&ids[0]), Restarting);
    h.status("h1", &ids[0], Killed);
    assert_eq!(h.child(&ids[0]).map(|t| t.status), Some(Pending));
    assert_eq!(
        h.status_of(&added[0]),
        Pending,
        "no third host: {}",
        h.reason(&added[0])
    );
    h.assert_replay_matches();
}

#[test]
fn draining_a_host_moves_its_tasks_elsewhere() {
    let mut h = Harness::new();
    let ids = h.create("web", 1, |_| {});
    h.register("h1");
    h.status("h1", &ids[0], Running);
    h.register("h2");
    let hosts = vec!["h1".to_owned()];
    h.run(|e, now| e.set_maintenance(&hosts, MaintenanceMode::Draining, now))
        .unwrap();
    assert_eq!(h.status_of(&ids[0]), Draining);
    assert_eq!(
        h.heartbeat("h1", &[(&ids[0], Running)]).kill,
        [ids[0].clone()]
    );
    h.status("h1", &ids[0], Killed);
    h.run(|e, now| {
        e.check_timers(now);
        e.schedule(now)
    });
    let child = h.child(&ids[0]).unwrap();
    assert_eq!(child.assigned_task.slave_host.as_deref(), Some("h2"));
    assert_eq!(
        h.engine.state.maintenance_of("h1"),
        MaintenanceMode::Drained
    );
    h.run(|e, now| e.set_maintenance(&hosts, MaintenanceMode::None, now))
        .unwrap();
    assert_eq!(h.engine.state.maintenance_of("h1"), MaintenanceMode::None);
    h.assert_replay_matches();
}

#[test]
fn pending_tasks_say_why() {
    let mut h = Harness::new();
    h.register("h1");
    let ids = h.create("big", 1, |t| t.resources.cpu = 8.0);
    h.run(|e, now| e.schedule(now));
    assert_eq!(
        h.reason(&ids[0]),
        "no host fits: insufficient cpu on 1 of 1 hosts (needs 8, largest free is 4)"
    );
    let resp = h.engine.tasks(&TaskQuery::default());
    assert_eq!(resp.pending_reasons.len(), 1);
}

#[test]
fn a_restore_replaces_the_state() {
    let mut h = Harness::new();
    h.create("web", 1, |_| {});
    let saved = h.engine.state.to_snapshot();
    let before = h.engine.state.clone();
    h.create("other", 2, |_| {});
    h.run(|e, now| e.restore(saved, now));
    assert_eq!(h.engine.state, before);
    h.assert_replay_matches();
}

#[test]
fn ended_tasks_are_pruned_past_the_history_limits() {
    let mut h = Harness::with(|c| {
        c.history.max_per_job = 2;
        c.history.min_retention_ms = 1_000;
        c.history.prune_threshold_ms = 100_000;
        c.history.interval_ms = 0;
    });
    let ids = h.create("web", 4, many_per_host);
    h.register("h1");
    for id in &ids {
        h.status("h1", id, Finished);
    }
    let other = h.create("old", 1, |_| {});
    h.run(|e, now| e.kill_job("www", "prod", "old", KillRequest::default(), now))
        .unwrap();
    assert!(
        !h.engine.state.tasks.contains_key(&other[0]),
        "a pending task is deleted by a kill"
    );
    h.lock("old", "alice").unwrap();
    h.run(|e, now| e.prune_history(now));
    assert_eq!(
        h.engine.state.tasks.len(),
        4,
        "everything is younger than the minimum retention"
    );
    h.now += 2_000;
    h.run(|e, now| e.prune_history(now));
    assert_eq!(h.engine.state.tasks.len(), 2, "two per job are kept");
    assert!(
        !h.engine
            .state
            .jobs
            .contains_key(&"local/www/prod/old".parse().unwrap()),
        "a job without tasks is forgotten"
    );
    assert!(
        h.engine.locks().locks.is_empty(),
        "a forgotten job's lock goes with it"
    );
    h.now += 200_000;
    h.run(|e, now| e.prune_history(now));
    assert!(h.engine.state.tasks.is_empty());
    assert!(h.engine.state.jobs.is_empty());
    assert_eq!(h.engine.counters.tasks_pruned, 4);
    h.assert_replay_matches();
}

impl Harness {
    fn lock(&mut self, name: &str, user: &str) -> Result<Lock, RequestError> {
        let req = AcquireLockRequest {
            user: user.into(),
            message: Some(format!("update by {user}")),
        };
        self.run(|e, now| e.acquire_lock("www", "prod", name, req, now))
    }

    fn unlock(
        &mut self,
        name: &str,
        token: Option<&str>,
        validation: LockValidation,
    ) -> Result<Lock, RequestError> {
        let req = ReleaseLockRequest {
            token: token.map(str::to_owned),
            validation,
        };
        self.run(|e, _| e.release_lock("www", "prod", name, req))
    }

    fn kill_with(&mut self, name: &str, token: Option<&str>) -> Result<KillResponse, RequestError> {
        let req = KillRequest {
            lock_token: token.map(str::to_owned),
            ..KillRequest::default()
        };
        self.run(|e, now| e.kill_job("www", "prod", name, req, now))
    }
}

/// Checks a refusal: its code and a fragment of its message.
fn check_refused<T: std::fmt::Debug>(
    result: Result<T, RequestError>,
    code: ErrorCode,
    fragment: &str,
) {
    let err = result.expect_err("the request must be refused");
    assert_eq!(err.code, code, "{}", err.message);
    assert!(
        err.message.contains(fragment),
        "{fragment:?} not in {:?}",
        err.message
    );
}

#[test]
fn a_lock_is_exclusive_and_guards_kill_restart_and_add_instances() {
    let mut h = Harness::new();
    let ids = h.create("web", 1, |_| {});
    h.create("other", 1, |_| {});
    let lock = h.lock("web", "alice").unwrap();
    assert_eq!(lock.user, "alice");
    assert_eq!(lock.timestamp_ms, h.now);
    assert_eq!(lock.message.as_deref(), Some("update by alice"));
    assert_eq!(h.engine.locks().locks, std::slice::from_ref(&lock));

    // Another update cannot take it, and is told who holds it, since when and why.
    check_refused(
        h.lock("web", "bob"),
        ErrorCode::Locked,
        "job local/www/prod/web is already locked by alice since 1970-01-01T00:00:01Z (update by alice)",
    );
    // Mutations without the token (or with a wrong one) are refused; other jobs are free.
    check_refused(
        h.kill_with("web", None),
        ErrorCode::Locked,
        "cannot kill job local/www/prod/web: it is locked by alice",
    );
    check_refused(
        h.kill_with("web", Some("guess")),
        ErrorCode::Locked,
        "the lock token given is not its token",
    );
    let restart = RestartRequest::default();
    check_refused(
        h.run(|e, now| e.restart("www", "prod", "web", restart, now)),
        ErrorCode::Locked,
        "cannot restart job",
    );
    let add = AddInstancesRequest {
        task_config: job("web", 1, |_| {}).task_config.to_config(),
        instances: BTreeSet::from([1]),
        lock_token: None,
    };
    check_refused(
        h.run(|e, now| e.add_instances("www", "prod", "web", add.clone(), now)),
        ErrorCode::Locked,
        "cannot add instances to job",
    );
    assert_eq!(h.status_of(&ids[0]), Pending, "nothing was killed");
    h.kill_with("other", None).unwrap();
    check_refused(
        h.kill_with("other", Some(&lock.token)),
        ErrorCode::Locked,
        "the job is not locked",
    );

    // The holder passes its token.
    let add = AddInstancesRequest {
        lock_token: Some(lock.token.clone()),
        ..add
    };
    let added = h
        .run(|e, now| e.add_instances("www", "prod", "web", add, now))
        .unwrap();
    assert_eq!(added.task_ids.len(), 1);
    assert_eq!(
        h.kill_with("web", Some(&lock.token)).unwrap().killed.len(),
        2
    );
    h.assert_replay_matches();
}

#[test]
fn checked_release_needs_the_token_and_unchecked_releases_anything() {
    let mut h = Harness::new();
    h.create("web", 1, |_| {});
    check_refused(
        h.unlock("web", None, LockValidation::Unchecked),
        ErrorCode::NotFound,
        "job local/www/prod/web is not locked",
    );
    check_refused(
        h.lock("nope", "alice"),
        ErrorCode::NotFound,
        "no job local/www/prod/nope",
    );
    check_refused(
        h.lock("web", " "),
        ErrorCode::InvalidRequest,
        "user is empty",
    );

    let lock = h.lock("web", "alice").unwrap();
    check_refused(
        h.unlock("web", None, LockValidation::Checked),
        ErrorCode::Locked,
        "no token was given",
    );
    check_refused(
        h.unlock("web", Some("guess"), LockValidation::Checked),
        ErrorCode::Locked,
        "the token given is not the lock's",
    );
    assert_eq!(
        h.unlock("web", Some(&lock.token), LockValidation::Checked)
            .unwrap(),
        lock
    );
    assert!(h.engine.locks().locks.is_empty());

    // cancel_update: UNCHECKED releases whatever is held, token or not.
    let second = h.lock("web", "bob").unwrap();
    assert_ne!(second.token, lock.token, "every lock has its own token");
    assert_eq!(
        h.unlock("web", None, LockValidation::Unchecked).unwrap(),
        second
    );
    h.kill_with("web", None).unwrap();
    h.assert_replay_matches();
}

#[test]
fn locks_are_rebuilt_from_the_log_and_from_snapshots() {
    let mut h = Harness::new();
    h.create("web", 1, |_| {});
    h.create("api", 1, |_| {});
    let web = h.lock("web", "alice").unwrap();
    let api = h.lock("api", "bob").unwrap();
    h.unlock("api", Some(&api.token), LockValidation::Checked)
        .unwrap();
    h.assert_replay_matches();

    // A snapshot carries the locks, and a snapshot without them (older) still reads.
    let snapshot = h.engine.state.to_snapshot();
    assert_eq!(snapshot.locks, std::slice::from_ref(&web));
    let text = serde_json::to_string(&snapshot).unwrap();
    let restored: StateSnapshot = serde_json::from_str(&text).unwrap();
    assert_eq!(State::from_snapshot(restored).locks[&web.key], web);
    let mut old: serde_json::Value = serde_json::from_str(&text).unwrap();
    old.as_object_mut().unwrap().remove("locks");
    let old: StateSnapshot = serde_json::from_value(old).unwrap();
    assert!(State::from_snapshot(old).locks.is_empty());

    // A restored backup brings its locks back.
    h.unlock("web", None, LockValidation::Unchecked).unwrap();
    h.run(|e, now| e.restore(snapshot, now));
    assert_eq!(h.engine.locks().locks, [web]);
    h.assert_replay_matches();
}

#[test]
fn a_job_and_its_instances_share_one_config_and_a_canary_adds_a_second() {
    let mut h = Harness::new();
    let ids = h.create("web", 1000, |_| {});
    let shared = h
        .engine
        .state
        .jobs
        .values()
        .next()
        .unwrap()
        .task_config
        .clone();
    assert_eq!(h.engine.state.configs.len(), 1);
    assert!(
        ids.iter().all(|id| aurora_core::SharedTaskConfig::ptr_eq(
            &h.task(id).assigned_task.task,
            &shared
        ))
    );
    // An instance added with the job's own config shares it.
    let same = job("web", 1, |_| {}).task_config.to_config();
    let added = h
        .run(|e, now| {
            e.add_instances(
                "www",
                "prod",
                "web",
                AddInstancesRequest {
                    task_config: same,
                    instances: BTreeSet::from([1000]),
                    lock_token: None,
                },
                now,
            )
        })
        .unwrap();
    assert!(aurora_core::SharedTaskConfig::ptr_eq(
        &h.task(&added.task_ids[0]).assigned_task.task,
        &shared
    ));
    assert_eq!(h.engine.state.configs.len(), 1);
    // A canary with another payload is a second config, gone with its task.
    let canary = job("web", 1, |t| {
        t.executor_config.data = "{\"canary\": 1}".into()
    })
    .task_config
    .to_config();
    h.run(|e, now| {
        e.add_instances(
            "www",
            "prod",
            "web",
            AddInstancesRequest {
                task_config: canary,
                instances: BTreeSet::from([1001]),
                lock_token: None,
            },
            now,
        )
    })
    .unwrap();
    assert_eq!(h.engine.state.configs.len(), 2);
    let kill = KillRequest {
        instances: Some(BTreeSet::from([1001])),
        ..KillRequest::default()
    };
    h.run(|e, now| e.kill_job("www", "prod", "web", kill, now))
        .unwrap();
    assert_eq!(h.engine.state.configs.len(), 1);
    h.assert_replay_matches();
}

/// Checks what the engine keeps up to date task by task against the same computed afresh:
/// quota usage per role, and placement (a probe task of every job placed by the kept view
/// and by a view built from the state now).
fn assert_kept_up_to_date(e: &mut Engine) {
    let mut usage: BTreeMap<(&str, bool), (f64, u64, u64)> = BTreeMap::new();
    for t in e.state.tasks.values().filter(|t| t.status.is_active()) {
        let c = &t.assigned_task.task;
        let u = usage
            .entry((t.job().role(), consumes_quota(c)))
            .or_default();
        u.0 += c.resources.cpu;
        u.1 += c.resources.ram_bytes;
        u.2 += c.resources.disk_bytes;
    }
    for ((role, prod), (cpu, ram, disk)) in &usage {
        let (p, o) = e.usage.of_role(role);
        let kept = if *prod { p } else { o };
        assert!(
            (kept.cpu - cpu).abs() < 1e-9,
            "{role} cpu {kept:?} vs {cpu}"
        );
        assert_eq!((kept.ram_bytes, kept.disk_bytes), (*ram, *disk), "{role}");
    }
    let configs: Vec<SharedTaskConfig> = e
        .state
        .jobs
        .values()
        .map(|j| j.task_config.clone())
        .collect();
    let probes: Vec<ScheduledTask> = configs
        .iter()
        .map(|c| {
            let mut t = e.new_task(c, 99, 0);
            t.status = ScheduleStatus::Pending;
            t
        })
        .collect();
    let probes: Vec<&ScheduledTask> = probes.iter().collect();
    let none = BTreeMap::new();
    let assigned: Vec<&ScheduledTask> = e.state.slave_assigned().map(|t| &**t).collect();
    let fresh = ClusterView::build(&e.live_hosts(), &assigned, e.config.placement);
    if let Some(view) = &e.view {
        assert_eq!(view.place(&probes, &none), fresh.place(&probes, &none));
    }
}

#[test]
fn the_placement_view_and_quota_usage_follow_every_change() {
    let mut h = Harness::new();
    h.set_quota(100.0);
    h.register("h1");
    h.register("h2");
    let web = h.create("web", 2, many_per_host);
    let prod = h.create("api", 2, |t| {
        t.production = true;
        t.resources.cpu = 0.5;
    });
    h.run(|e, now| e.schedule(now));
    assert!(h.engine.view.is_some(), "a round builds the view");
    assert_kept_up_to_date(&mut h.engine);
    for id in web.iter().chain(&prod) {
        let host = h.task(id).assigned_task.slave_host.clone().unwrap();
        h.status(&host, id, Running);
    }
    assert_kept_up_to_date(&mut h.engine);
    // A finished service is replaced; a killed job gives its hosts back.
    let host = h.task(&web[0]).assigned_task.slave_host.clone().unwrap();
    h.status(&host, &web[0], Finished);
    h.run(|e, now| e.schedule(now));
    assert_kept_up_to_date(&mut h.engine);
    let key = ids_job(&h, &prod[0]);
    h.run(|e, now| {
        e.kill_job(
            key.role(),
            key.environment(),
            key.name(),
            KillRequest::default(),
            now,
        )
    })
    .unwrap();
    for id in &prod {
        let host = h.task(id).assigned_task.slave_host.clone().unwrap();
        h.status(&host, id, Killed);
    }
    h.run(|e, now| e.schedule(now));
    assert_kept_up_to_date(&mut h.engine);
    h.assert_replay_matches();
}
