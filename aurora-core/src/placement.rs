//! Placement: which pending task goes on which host, as a pure function of an immutable view.
//!
//! [`place`] reads the hosts (their attributes and capacity), the tasks already holding
//! resources on them and the pending tasks, and returns a [`PlacementPlan`]: assignments as
//! values (task, host, chosen ports) and, for every task it could not place, a reason a person
//! can act on. The scheduler applies the plan through the state machine; nothing here does I/O.
//!
//! Hosts are vetoed in the original's order: value constraints first (the first failing one
//! stops evaluation), then `limit:N` constraints, then resources (cpu, ram, disk, ports).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::RangeInclusive;

use crate::{Constraint, JobKey, Resources, ScheduledTask, TaskConfig, TaskConstraint, TaskId};

/// A host tasks may be placed on, with everything placement needs to know about it.
#[derive(Debug, Clone, PartialEq)]
pub struct PlacementHost {
    /// The host name; assignments name it.
    pub host: String,
    /// Attributes for constraints, e.g. `host` and `rack`; an attribute may have several values.
    pub attributes: BTreeMap<String, BTreeSet<String>>,
    /// CPU cores offered to tasks.
    pub cpu: f64,
    /// Memory offered, in bytes.
    pub ram_bytes: u64,
    /// Disk offered, in bytes.
    pub disk_bytes: u64,
    /// The ports tasks may be given.
    pub ports: RangeInclusive<u16>,
}

/// The immutable view [`place`] decides from.
#[derive(Debug, Clone, Copy)]
pub struct PlacementInput<'a> {
    /// The hosts available for new tasks.
    pub hosts: &'a [PlacementHost],
    /// Tasks holding resources (SLAVE_ASSIGNED states); they use capacity and count towards
    /// `limit` constraints of their job. Tasks on hosts not in `hosts` are ignored.
    pub assigned: &'a [&'a ScheduledTask],
    /// Tasks to place, in the order they should be considered.
    pub pending: &'a [&'a ScheduledTask],
}

/// One placed task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    /// The task.
    pub task_id: TaskId,
    /// The host chosen.
    pub host: String,
    /// The ports chosen, by the names the task asked for.
    pub ports: BTreeMap<String, u16>,
}

/// A task that could not be placed, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unplaced {
    /// The task.
    pub task_id: TaskId,
    /// Why, for a person, e.g. `insufficient cpu on 3 of 3 hosts (needs 8, largest free is 4)`.
    pub reason: String,
}

/// What [`place`] decided.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlacementPlan {
    /// Tasks to assign, in decision order.
    pub assignments: Vec<Assignment>,
    /// Tasks left pending, with their reasons.
    pub unplaced: Vec<Unplaced>,
}

/// Adds the constraints the original adds at job creation: `host: limit:1` unless the task
/// already constrains `host`, so that no two instances of a job share a machine.
///
/// ```
/// # use aurora_core::{add_default_constraints, TaskConstraint};
/// # fn demo(mut task: aurora_core::TaskConfig) {
/// add_default_constraints(&mut task);
/// assert!(task.constraints.iter().any(|c| c.name == "host"
///     && c.constraint == TaskConstraint::Limit { limit: 1 }));
/// # }
/// ```
pub fn add_default_constraints(task: &mut TaskConfig) {
    if !task.constraints.iter().any(|c| c.name == "host") {
        task.constraints.push(Constraint {
            name: "host".to_owned(),
            constraint: TaskConstraint::Limit { limit: 1 },
        });
    }
}

/// Free capacity of one host while a plan is being built.
#[derive(Debug, Clone)]
struct Free {
    cpu: f64,
    ram: i128,
    disk: i128,
    used_ports: BTreeSet<u16>,
}

impl Free {
    fn free_ports(&self, range: &RangeInclusive<u16>) -> usize {
        let total = usize::from(*range.end()).saturating_sub(usize::from(*range.start())) + 1;
        let used = self.used_ports.iter().filter(|p| range.contains(p)).count();
        if range.is_empty() { 0 } else { total - used }
    }
}

/// Why a host cannot take a task.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Veto {
    /// A constraint, rendered as `name:constraint`.
    Constraint(String),
    Cpu,
    Ram,
    Disk,
    Ports,
}

/// Counts of tasks per job per attribute value, for `limit` constraints.
type LimitCounts = HashMap<(JobKey, String, String), u32>;

const CPU_EPSILON: f64 = 1e-9;

/// Places as many pending tasks as fit, first fit over the hosts in their given order.
///
/// ```
/// use aurora_core::{place, PlacementInput};
/// let plan = place(&PlacementInput { hosts: &[], assigned: &[], pending: &[] });
/// assert!(plan.assignments.is_empty() && plan.unplaced.is_empty());
/// ```
pub fn place(input: &PlacementInput<'_>) -> PlacementPlan {
    let index: HashMap<&str, usize> = input
        .hosts
        .iter()
        .enumerate()
        .map(|(i, h)| (h.host.as_str(), i))
        .collect();
    let mut free: Vec<Free> = input
        .hosts
        .iter()
        .map(|h| Free {
            cpu: h.cpu,
            ram: i128::from(h.ram_bytes),
            disk: i128::from(h.disk_bytes),
            used_ports: BTreeSet::new(),
        })
        .collect();
    let mut counts = LimitCounts::new();
    for task in input.assigned {
        let Some(i) = task
            .assigned_task
            .slave_host
            .as_deref()
            .and_then(|h| index.get(h))
        else {
            continue;
        };
        let res = &task.assigned_task.task.resources;
        let f = &mut free[*i];
        f.cpu -= res.cpu;
        f.ram -= i128::from(res.ram_bytes);
        f.disk -= i128::from(res.disk_bytes);
        f.used_ports
            .extend(task.assigned_task.assigned_ports.values().copied());
        count_task(&mut counts, task.job(), &input.hosts[*i]);
    }

    let mut plan = PlacementPlan::default();
    for task in input.pending {
        let config = &task.assigned_task.task;
        let mut vetoes: BTreeMap<Veto, usize> = BTreeMap::new();
        let mut chosen = None;
        for (i, host) in input.hosts.iter().enumerate() {
            match check_host(config, host, &free[i], &counts) {
                Ok(()) => {
                    chosen = Some(i);
                    break;
                }
                Err(veto) => *vetoes.entry(veto).or_default() += 1,
            }
        }
        match chosen {
            Some(i) => {
                let host = &input.hosts[i];
                let f = &mut free[i];
                let res = &config.resources;
                f.cpu -= res.cpu;
                f.ram -= i128::from(res.ram_bytes);
                f.disk -= i128::from(res.disk_bytes);
                let mut ports = BTreeMap::new();
                let mut candidates = host.ports.clone();
                for name in &res.ports {
                    // check_host made sure enough ports are free.
                    if let Some(p) = candidates.find(|p| !f.used_ports.contains(p)) {
                        f.used_ports.insert(p);
                        ports.insert(name.clone(), p);
                    }
                }
                count_task(&mut counts, &config.job, host);
                plan.assignments.push(Assignment {
                    task_id: task.id().clone(),
                    host: host.host.clone(),
                    ports,
                });
            }
            None => plan.unplaced.push(Unplaced {
                task_id: task.id().clone(),
                reason: explain(input.hosts, &free, &config.resources, vetoes),
            }),
        }
    }
    plan
}

fn count_task(counts: &mut LimitCounts, job: &JobKey, host: &PlacementHost) {
    for (name, values) in &host.attributes {
        for value in values {
            *counts
                .entry((job.clone(), name.clone(), value.clone()))
                .or_default() += 1;
        }
    }
}

fn check_host(
    config: &TaskConfig,
    host: &PlacementHost,
    free: &Free,
    counts: &LimitCounts,
) -> Result<(), Veto> {
    let empty = BTreeSet::new();
    let veto = |c: &Constraint| Veto::Constraint(format!("{}:{}", c.name, c.constraint));
    for c in &config.constraints {
        if let TaskConstraint::Value { negated, values } = &c.constraint {
            let have = host.attributes.get(&c.name).unwrap_or(&empty);
            if *negated == values.iter().any(|v| have.contains(v)) {
                return Err(veto(c));
            }
        }
    }
    for c in &config.constraints {
        if let TaskConstraint::Limit { limit } = &c.constraint {
            let Some(have) = host.attributes.get(&c.name).filter(|v| !v.is_empty()) else {
                return Err(veto(c));
            };
            for value in have {
                let key = (config.job.clone(), c.name.clone(), value.clone());
                if counts.get(&key).copied().unwrap_or(0) >= *limit {
                    return Err(veto(c));
                }
            }
        }
    }
    let res = &config.resources;
    if free.cpu + CPU_EPSILON < res.cpu {
        return Err(Veto::Cpu);
    }
    if free.ram < i128::from(res.ram_bytes) {
        return Err(Veto::Ram);
    }
    if free.disk < i128::from(res.disk_bytes) {
        return Err(Veto::Disk);
    }
    if free.free_ports(&host.ports) < res.ports.len() {
        return Err(Veto::Ports);
    }
    Ok(())
}

fn explain(
    hosts: &[PlacementHost],
    free: &[Free],
    need: &Resources,
    vetoes: BTreeMap<Veto, usize>,
) -> String {
    if hosts.is_empty() {
        return "no executor is registered; start one with `aurora-executor --scheduler URL`"
            .to_owned();
    }
    let total = hosts.len();
    let mut parts: Vec<(usize, String)> = vetoes
        .into_iter()
        .map(|(veto, n)| {
            let text = match veto {
                Veto::Constraint(c) => format!("constraint {c} excludes {n} of {total} hosts"),
                Veto::Cpu => format!(
                    "insufficient cpu on {n} of {total} hosts (needs {}, largest free is {})",
                    need.cpu,
                    free.iter().map(|f| f.cpu).fold(0.0, f64::max).max(0.0)
                ),
                Veto::Ram => format!(
                    "insufficient ram on {n} of {total} hosts (needs {} MiB, largest free is {} MiB)",
                    need.ram_bytes / MIB,
                    free.iter().map(|f| f.ram).max().unwrap_or(0).max(0) / i128::from(MIB)
                ),
                Veto::Disk => format!(
                    "insufficient disk on {n} of {total} hosts (needs {} MiB, largest free is {} MiB)",
                    need.disk_bytes / MIB,
                    free.iter().map(|f| f.disk).max().unwrap_or(0).max(0) / i128::from(MIB)
                ),
                Veto::Ports => format!(
                    "too few free ports on {n} of {total} hosts (needs {}, most free is {})",
                    need.ports.len(),
                    free.iter()
                        .zip(hosts)
                        .map(|(f, h)| f.free_ports(&h.ports))
                        .max()
                        .unwrap_or(0)
                ),
            };
            (n, text)
        })
        .collect();
    // The commonest obstacle first: it is what a person most likely has to change.
    parts.sort_by_key(|p| std::cmp::Reverse(p.0));
    let list: Vec<String> = parts.into_iter().map(|(_, t)| t).collect();
    format!("no host fits: {}", list.join("; "))
}

const MIB: u64 = 1024 * 1024;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        AssignedTask, ExecutorConfig, Identity, ScheduleStatus, TaskConfig, TaskConstraint,
    };

    fn host(name: &str, rack: &str, cpu: f64) -> PlacementHost {
        PlacementHost {
            host: name.to_owned(),
            attributes: BTreeMap::from([
                ("host".to_owned(), BTreeSet::from([name.to_owned()])),
                ("rack".to_owned(), BTreeSet::from([rack.to_owned()])),
            ]),
            cpu,
            ram_bytes: 1024 * MIB,
            disk_bytes: 1024 * MIB,
            ports: 31000..=31002,
        }
    }

    fn task(job: &str, instance: u32, cpu: f64, constraints: &[(&str, &str)]) -> ScheduledTask {
        let key: JobKey = format!("local/www/prod/{job}").parse().unwrap();
        let mut config = TaskConfig {
            job: key.clone(),
            owner: Identity {
                role: "www".into(),
                user: "u".into(),
            },
            is_service: false,
            max_task_failures: 1,
            priority: 0,
            production: false,
            contact_email: None,
            resources: Resources {
                cpu,
                ram_bytes: 64 * MIB,
                disk_bytes: 64 * MIB,
                ports: BTreeSet::new(),
            },
            constraints: constraints
                .iter()
                .map(|(n, v)| Constraint {
                    name: (*n).to_owned(),
                    constraint: TaskConstraint::parse(n, v).unwrap(),
                })
                .collect(),
            task_links: BTreeMap::new(),
            executor_config: ExecutorConfig {
                name: "AuroraExecutor".into(),
                data: "{}".into(),
            },
        };
        add_default_constraints(&mut config);
        ScheduledTask {
            assigned_task: AssignedTask {
                task_id: TaskId(format!("{job}-{instance}")),
                slave_host: None,
                instance_id: instance,
                task: config,
                assigned_ports: BTreeMap::new(),
            },
            status: ScheduleStatus::Pending,
            failure_count: 0,
            ancestor_id: None,
            task_events: Vec::new(),
        }
    }

    fn on(mut t: ScheduledTask, host: &str) -> ScheduledTask {
        t.assigned_task.slave_host = Some(host.to_owned());
        t.status = ScheduleStatus::Running;
        t
    }

    /// Runs placement and renders the plan as `task -> host` or `task: reason` lines.
    fn check(
        hosts: &[PlacementHost],
        assigned: &[ScheduledTask],
        pending: &[ScheduledTask],
        expect: &[&str],
    ) {
        let assigned: Vec<&ScheduledTask> = assigned.iter().collect();
        let pending: Vec<&ScheduledTask> = pending.iter().collect();
        let plan = place(&PlacementInput {
            hosts,
            assigned: &assigned,
            pending: &pending,
        });
        let mut got: Vec<String> = plan
            .assignments
            .iter()
            .map(|a| {
                let ports: Vec<String> = a.ports.iter().map(|(n, p)| format!("{n}={p}")).collect();
                if ports.is_empty() {
                    format!("{} -> {}", a.task_id, a.host)
                } else {
                    format!("{} -> {} [{}]", a.task_id, a.host, ports.join(","))
                }
            })
            .collect();
        got.extend(
            plan.unplaced
                .iter()
                .map(|u| format!("{}: {}", u.task_id, u.reason)),
        );
        assert_eq!(got, expect);
    }

    #[test]
    fn no_hosts_says_so() {
        check(
            &[],
            &[],
            &[task("a", 0, 1.0, &[])],
            &["a-0: no executor is registered; start one with `aurora-executor --scheduler URL`"],
        );
    }

    #[test]
    fn default_host_limit_spreads_instances() {
        let hosts = [host("h1", "r1", 4.0), host("h2", "r1", 4.0)];
        check(
            &hosts,
            &[],
            &[
                task("a", 0, 1.0, &[]),
                task("a", 1, 1.0, &[]),
                task("a", 2, 1.0, &[]),
                task("b", 0, 1.0, &[]),
            ],
            &[
                "a-0 -> h1",
                "a-1 -> h2",
                "b-0 -> h1",
                "a-2: no host fits: constraint host:limit:1 excludes 2 of 2 hosts",
            ],
        );
    }

    #[test]
    fn assigned_tasks_use_capacity_and_count_for_limits() {
        let hosts = [host("h1", "r1", 2.0), host("h2", "r2", 2.0)];
        check(
            &hosts,
            &[
                on(task("a", 0, 1.5, &[]), "h1"),
                on(task("b", 0, 1.0, &[]), "h2"),
            ],
            &[task("a", 1, 1.5, &[])],
            &[
                "a-1: no host fits: constraint host:limit:1 excludes 1 of 2 hosts; insufficient cpu on 1 of 2 hosts (needs 1.5, largest free is 1)",
            ],
        );
    }

    #[test]
    fn value_constraints_with_negation_and_lists() {
        let hosts = [
            host("h1", "r1", 4.0),
            host("h2", "r2", 4.0),
            host("h3", "r3", 4.0),
        ];
        check(
            &hosts,
            &[],
            &[
                task("a", 0, 1.0, &[("rack", "r2,r3")]),
                task("b", 0, 1.0, &[("rack", "!r1,r2")]),
                task("c", 0, 1.0, &[("zone", "z1")]),
                task("d", 0, 1.0, &[("zone", "!z1")]),
            ],
            &[
                "a-0 -> h2",
                "b-0 -> h3",
                "d-0 -> h1",
                "c-0: no host fits: constraint zone:z1 excludes 3 of 3 hosts",
            ],
        );
    }

    #[test]
    fn limit_needs_the_attribute() {
        let mut bare = host("h1", "r1", 4.0);
        bare.attributes.remove("rack");
        check(
            &[bare, host("h2", "r2", 4.0)],
            &[],
            &[
                task("a", 0, 1.0, &[("rack", "limit:1")]),
                task("a", 1, 1.0, &[("rack", "limit:1")]),
            ],
            &[
                "a-0 -> h2",
                "a-1: no host fits: constraint rack:limit:1 excludes 2 of 2 hosts",
            ],
        );
    }

    #[test]
    fn rack_limit_two() {
        let hosts = [
            host("h1", "r1", 4.0),
            host("h2", "r1", 4.0),
            host("h3", "r1", 4.0),
        ];
        let c = &[("rack", "limit:2")];
        check(
            &hosts,
            &[],
            &[
                task("a", 0, 1.0, c),
                task("a", 1, 1.0, c),
                task("a", 2, 1.0, c),
            ],
            &[
                "a-0 -> h1",
                "a-1 -> h2",
                "a-2: no host fits: constraint rack:limit:2 excludes 3 of 3 hosts",
            ],
        );
    }

    #[test]
    fn ports_are_picked_from_the_range_and_not_reused() {
        let mut a = task("a", 0, 1.0, &[("host", "limit:5")]);
        a.assigned_task.task.resources.ports = BTreeSet::from(["http".into(), "admin".into()]);
        let mut b = a.clone();
        b.assigned_task.task_id = TaskId("a-1".into());
        b.assigned_task.instance_id = 1;
        let mut running = task("z", 0, 0.5, &[]);
        running.assigned_task.assigned_ports = BTreeMap::from([("http".into(), 31001)]);
        check(
            &[host("h1", "r1", 4.0)],
            &[on(running, "h1")],
            &[a, b],
            &[
                "a-0 -> h1 [admin=31000,http=31002]",
                "a-1: no host fits: too few free ports on 1 of 1 hosts (needs 2, most free is 0)",
            ],
        );
    }

    #[test]
    fn ram_and_disk_are_checked() {
        let mut big = task("a", 0, 1.0, &[]);
        big.assigned_task.task.resources.ram_bytes = 2048 * MIB;
        let mut disk = task("b", 0, 1.0, &[]);
        disk.assigned_task.task.resources.disk_bytes = 4096 * MIB;
        check(
            &[host("h1", "r1", 4.0)],
            &[],
            &[big, disk],
            &[
                "a-0: no host fits: insufficient ram on 1 of 1 hosts (needs 2048 MiB, largest free is 1024 MiB)",
                "b-0: no host fits: insufficient disk on 1 of 1 hosts (needs 4096 MiB, largest free is 1024 MiB)",
            ],
        );
    }

    #[test]
    fn default_constraint_respects_an_explicit_host_constraint() {
        let t = task("a", 0, 1.0, &[("host", "limit:3")]);
        let hosts: Vec<_> = t
            .assigned_task
            .task
            .constraints
            .iter()
            .map(|c| c.to_owned())
            .collect();
        assert_eq!(hosts.len(), 1);
        assert_eq!(hosts[0].constraint, TaskConstraint::Limit { limit: 3 });
    }
}
