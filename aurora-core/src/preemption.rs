//! Preemption: which running tasks to kill so that a pending task fits, after the original's
//! `Preemptor`. A pure planner over the same view as placement; it returns the victims as a
//! value and the scheduler moves them to PREEMPTING.
//!
//! A victim V may make room for a pending task P when P is production and V is not, or when
//! both belong to the same role and P has the higher priority. Per host, the victims are taken
//! largest first until the host's free resources plus theirs fit P (with every constraint).

use crate::placement::{ClusterView, FastMap, Round};
use crate::{PlacementConfig, PlacementHost, ScheduleStatus, ScheduledTask, TaskConfig, TaskId};

/// The view a preemption search decides from.
#[derive(Debug, Clone, Copy)]
pub struct PreemptionInput<'a> {
    /// Hosts that may run tasks.
    pub hosts: &'a [PlacementHost],
    /// Tasks holding resources (SLAVE_ASSIGNED states).
    pub assigned: &'a [&'a ScheduledTask],
    /// The pending task that needs room.
    pub pending: &'a ScheduledTask,
    /// The executor overhead.
    pub config: PlacementConfig,
}

/// Victims on one host whose removal lets the pending task fit there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreemptionPlan {
    /// The host.
    pub host: String,
    /// The tasks to preempt, largest first.
    pub victims: Vec<TaskId>,
}

/// Whether `victim` may be preempted in favour of `pending`.
///
/// ```
/// # use aurora_core::can_preempt;
/// # fn demo(prod: &aurora_core::TaskConfig, batch: &aurora_core::TaskConfig) {
/// if prod.production && !batch.production {
///     assert!(can_preempt(prod, batch));
/// }
/// # }
/// ```
pub fn can_preempt(pending: &TaskConfig, victim: &TaskConfig) -> bool {
    (pending.production && !victim.production)
        || (pending.owner.role == victim.owner.role && pending.priority > victim.priority)
}

/// Finds a host where preempting some tasks lets `pending` fit; `None` when it already fits
/// somewhere without preemption or when no set of allowed victims makes room.
///
/// ```
/// # use aurora_core::{find_preemption, PreemptionInput, PlacementConfig};
/// # fn demo(task: &aurora_core::ScheduledTask) {
/// let plan = find_preemption(&PreemptionInput {
///     hosts: &[], assigned: &[], pending: task, config: PlacementConfig::default(),
/// });
/// assert!(plan.is_none(), "no hosts, nothing to preempt");
/// # }
/// ```
pub fn find_preemption(input: &PreemptionInput<'_>) -> Option<PreemptionPlan> {
    let view = ClusterView::build_for(input.hosts, input.assigned, input.config, [input.pending]);
    let mut round = Round::new(&view);
    let config: &TaskConfig = &input.pending.assigned_task.task;
    let job = round.job(&config.job);
    let need = round.compile(job, config);
    let mut victims: FastMap<usize, Vec<&ScheduledTask>> = FastMap::default();
    for t in input.assigned {
        if t.status == ScheduleStatus::Preempting || !can_preempt(config, &t.assigned_task.task) {
            continue;
        }
        if let Some(h) = round.slot_of(t) {
            victims.entry(h).or_default().push(t);
        }
    }
    let overhead = input.config;
    let mut best: Option<PreemptionPlan> = None;
    for h in 0..round.hosts() {
        if round.static_veto(&need, h).is_some() {
            continue;
        }
        let count = |n, v| round.count(job, n, v);
        if Round::resource_veto(&need, round.free(h)).is_none()
            && round.limit_veto(&need, h, count).is_none()
        {
            // It fits without preemption; placement will take it.
            return None;
        }
        if best.is_some() {
            continue;
        }
        let Some(candidates) = victims.get_mut(&h) else {
            continue;
        };
        candidates.sort_by(|a, b| {
            let (a, b) = (
                &a.assigned_task.task.resources,
                &b.assigned_task.task.resources,
            );
            b.cpu
                .total_cmp(&a.cpu)
                .then(b.ram_bytes.cmp(&a.ram_bytes))
                .then(b.disk_bytes.cmp(&a.disk_bytes))
        });
        let mut free = round.free(h).clone();
        let mut same_job_removed = 0u32;
        let mut chosen = Vec::new();
        for v in candidates.iter() {
            let res = &v.assigned_task.task.resources;
            free.cpu += res.cpu + overhead.executor_overhead_cpu;
            free.ram +=
                i128::from(res.ram_bytes) + i128::from(overhead.executor_overhead_ram_bytes);
            free.disk += i128::from(res.disk_bytes);
            free.free_ports += v.assigned_task.assigned_ports.len();
            if v.job() == &config.job {
                same_job_removed += 1;
            }
            chosen.push(v.id().clone());
            let removed = same_job_removed;
            let count = |n, v| round.count(job, n, v).saturating_sub(removed);
            if Round::resource_veto(&need, &free).is_none()
                && round.limit_veto(&need, h, count).is_none()
            {
                best = Some(PreemptionPlan {
                    host: round.host_name(h).to_owned(),
                    victims: chosen,
                });
                break;
            }
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use super::*;
    use crate::{
        AssignedTask, Constraint, ExecutorConfig, Identity, JobKey, MaintenanceMode, Resources,
        TaskConstraint,
    };

    fn host(name: &str) -> PlacementHost {
        PlacementHost {
            host: name.into(),
            attributes: BTreeMap::from([("host".into(), BTreeSet::from([name.into()]))]).into(),
            cpu: 4.0,
            ram_bytes: 1 << 30,
            disk_bytes: 1 << 30,
            ports: 1..=10,
            maintenance: MaintenanceMode::None,
        }
    }

    fn task(
        id: &str,
        role: &str,
        prod: bool,
        priority: i32,
        cpu: f64,
        on: Option<&str>,
    ) -> ScheduledTask {
        let key: JobKey = format!("c/{role}/prod/{id}").parse().unwrap();
        ScheduledTask {
            assigned_task: AssignedTask {
                task_id: TaskId(id.into()),
                slave_host: on.map(str::to_owned),
                instance_id: 0,
                task: TaskConfig {
                    job: key,
                    owner: Identity {
                        role: role.into(),
                        user: "u".into(),
                    },
                    is_service: true,
                    max_task_failures: 1,
                    priority,
                    production: prod,
                    contact_email: None,
                    resources: Resources {
                        cpu,
                        ram_bytes: 1 << 20,
                        disk_bytes: 1 << 20,
                        ports: BTreeSet::new(),
                    },
                    constraints: vec![Constraint {
                        name: "host".into(),
                        constraint: TaskConstraint::Limit { limit: 1 },
                    }],
                    task_links: BTreeMap::new(),
                    executor_config: ExecutorConfig {
                        name: "x".into(),
                        data: "{}".into(),
                    },
                }
                .into(),
                assigned_ports: BTreeMap::new(),
            },
            status: if on.is_some() {
                ScheduleStatus::Running
            } else {
                ScheduleStatus::Pending
            },
            failure_count: 0,
            ancestor_id: None,
            task_events: Vec::new(),
        }
    }

    fn check(pending: &ScheduledTask, assigned: &[ScheduledTask], expect: Option<(&str, &[&str])>) {
        let hosts = [host("h1"), host("h2")];
        let assigned: Vec<&ScheduledTask> = assigned.iter().collect();
        let plan = find_preemption(&PreemptionInput {
            hosts: &hosts,
            assigned: &assigned,
            pending,
            config: PlacementConfig::NO_OVERHEAD,
        });
        let got = plan.as_ref().map(|p| {
            (
                p.host.as_str(),
                p.victims.iter().map(TaskId::as_str).collect::<Vec<_>>(),
            )
        });
        assert_eq!(got, expect.map(|(h, v)| (h, v.to_vec())));
    }

    #[test]
    fn production_preempts_non_production_largest_first() {
        let full = [
            task("b1", "other", false, 0, 1.0, Some("h1")),
            task("b2", "other", false, 0, 3.0, Some("h1")),
            task("p1", "other", true, 0, 4.0, Some("h2")),
        ];
        check(
            &task("want", "www", true, 0, 2.0, None),
            &full,
            Some(("h1", &["b2"])),
        );
        // Non-production may not preempt other roles' work.
        check(&task("want", "www", false, 9, 2.0, None), &full, None);
    }

    #[test]
    fn higher_priority_preempts_lower_within_a_role() {
        let full = [
            task("low", "www", false, 1, 4.0, Some("h1")),
            task("high", "www", false, 5, 4.0, Some("h2")),
        ];
        check(
            &task("want", "www", false, 3, 2.0, None),
            &full,
            Some(("h1", &["low"])),
        );
        check(&task("want", "www", false, 1, 2.0, None), &full, None);
    }

    #[test]
    fn no_preemption_when_it_already_fits() {
        let assigned = [task("low", "www", false, 0, 1.0, Some("h1"))];
        check(&task("want", "www", true, 0, 2.0, None), &assigned, None);
    }
}
