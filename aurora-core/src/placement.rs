//! Placement: which pending task goes on which host, as a pure function of an immutable view.
//!
//! [`place`] reads the hosts (their attributes, capacity and maintenance mode), the tasks
//! already holding resources on them and the pending tasks, and returns a [`PlacementPlan`]:
//! assignments as values (task, host, chosen ports) and, for every task it could not place, a
//! reason a person can act on. The scheduler applies the plan through the state machine;
//! nothing here does I/O.
//!
//! Hosts are vetoed in the original's order: maintenance (DRAINING and DRAINED hosts take no
//! tasks), `dedicated` hosts for jobs that do not ask for them, value constraints (the first
//! failing one stops evaluation), then `limit:N` constraints, then resources (cpu, ram, disk,
//! ports), where every task also pays the executor's overhead ([`PlacementConfig`]).
//!
//! Speed: the hosts (attribute names and values interned), their free capacity and the `limit`
//! counts live in a [`ClusterView`] that a scheduler keeps up to date task by task, so a round
//! costs what its pending tasks need, not a rebuild of the cluster; the round keeps what it
//! takes apart from the view, which it only reads. Pending tasks with identical
//! configurations are placed as one group, and a group never looks at a host twice: within a
//! round free resources only shrink and `limit` counts only grow, so a host that cannot take a
//! task of a group cannot take any later task of that group either. A summary of the most free
//! cpu and ram per block of 64 hosts lets the scan skip full blocks.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::RangeInclusive;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::{Constraint, JobKey, ScheduledTask, TaskConfig, TaskConstraint, TaskId};

/// The attribute that marks a host as reserved for the jobs that ask for it.
pub const DEDICATED_ATTRIBUTE: &str = "dedicated";

/// The maintenance state of a host, as in the original's `MaintenanceMode`.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum MaintenanceMode {
    /// In service.
    #[default]
    None,
    /// Maintenance is announced; the host still takes tasks.
    Scheduled,
    /// Its tasks are being moved off; it takes no new tasks.
    Draining,
    /// Every task has left; it takes no new tasks.
    Drained,
}

impl MaintenanceMode {
    /// Whether new tasks may be placed on a host in this mode.
    pub fn accepts_tasks(self) -> bool {
        matches!(self, MaintenanceMode::None | MaintenanceMode::Scheduled)
    }
}

/// A host tasks may be placed on, with everything placement needs to know about it.
#[derive(Debug, Clone, PartialEq)]
pub struct PlacementHost {
    /// The host name; assignments name it.
    pub host: String,
    /// Attributes for constraints, e.g. `host` and `rack`; an attribute may have several values.
    pub attributes: crate::HostAttributes,
    /// CPU cores offered to tasks.
    pub cpu: f64,
    /// Memory offered, in bytes.
    pub ram_bytes: u64,
    /// Disk offered, in bytes.
    pub disk_bytes: u64,
    /// The ports tasks may be given.
    pub ports: RangeInclusive<u16>,
    /// Its maintenance mode; DRAINING and DRAINED hosts take no new tasks.
    pub maintenance: MaintenanceMode,
}

/// Settings of placement.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PlacementConfig {
    /// CPU the executor itself uses next to every task (the original's 0.25).
    pub executor_overhead_cpu: f64,
    /// Memory the executor itself uses next to every task, in bytes (the original's 128 MiB).
    pub executor_overhead_ram_bytes: u64,
}

impl PlacementConfig {
    /// No executor overhead at all.
    pub const NO_OVERHEAD: PlacementConfig = PlacementConfig {
        executor_overhead_cpu: 0.0,
        executor_overhead_ram_bytes: 0,
    };
}

impl Default for PlacementConfig {
    fn default() -> PlacementConfig {
        PlacementConfig {
            executor_overhead_cpu: 0.25,
            executor_overhead_ram_bytes: 128 * MIB,
        }
    }
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
    /// The executor overhead.
    pub config: PlacementConfig,
    /// Hosts held for pending tasks whose preemption victims are leaving them: such a host
    /// takes only its task, which is tried there first.
    pub reservations: &'a BTreeMap<TaskId, String>,
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
/// already constrains `host`, so that no two instances of a job share a machine, and
/// `rack: limit:1` for production services that are not dedicated unless the task already
/// constrains `rack`.
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
    let has = |task: &TaskConfig, name: &str| task.constraints.iter().any(|c| c.name == name);
    if !has(task, "host") {
        task.constraints.push(Constraint {
            name: "host".to_owned(),
            constraint: TaskConstraint::Limit { limit: 1 },
        });
    }
    if task.production && task.is_service && !has(task, DEDICATED_ATTRIBUTE) && !has(task, "rack") {
        task.constraints.push(Constraint {
            name: "rack".to_owned(),
            constraint: TaskConstraint::Limit { limit: 1 },
        });
    }
}

/// Why a `dedicated` constraint is not acceptable for a job.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "constraint dedicated:{value} is not valid for role {role}: a dedicated constraint must be one value (not negated) whose prefix before '/' is the job's role, e.g. {role}/gpu"
)]
pub struct DedicatedError {
    /// The role of the job.
    pub role: String,
    /// The constraint as written.
    pub value: String,
}

/// Checks the `dedicated` constraint of a task, if any: one value, not negated, `role/...` or
/// `role` itself.
///
/// ```
/// # use aurora_core::validate_dedicated;
/// # fn demo(task: &aurora_core::TaskConfig) {
/// if let Err(e) = validate_dedicated(task) {
///     println!("rejected: {e}");
/// }
/// # }
/// ```
pub fn validate_dedicated(task: &TaskConfig) -> Result<(), DedicatedError> {
    for c in task
        .constraints
        .iter()
        .filter(|c| c.name == DEDICATED_ATTRIBUTE)
    {
        let ok = match &c.constraint {
            TaskConstraint::Value { negated, values } if !negated && values.len() == 1 => values
                .iter()
                .all(|v| v.split('/').next() == Some(task.owner.role.as_str())),
            _ => false,
        };
        if !ok {
            return Err(DedicatedError {
                role: task.owner.role.clone(),
                value: c.constraint.to_string(),
            });
        }
    }
    Ok(())
}

/// A hash map with rustc's fast, non-cryptographic hasher, for the small keys of placement.
pub(crate) type FastMap<K, V> = rustc_hash::FxHashMap<K, V>;

/// Strings to small integers.
#[derive(Debug, Default, Clone)]
struct Interner {
    ids: FastMap<Box<str>, u32>,
}

impl Interner {
    fn intern(&mut self, s: &str) -> u32 {
        if let Some(&id) = self.ids.get(s) {
            return id;
        }
        let next = u32::try_from(self.ids.len()).unwrap_or(u32::MAX);
        self.ids.insert(s.into(), next);
        next
    }
    fn get(&self, s: &str) -> Option<u32> {
        self.ids.get(s).copied()
    }
}

/// Free capacity of one host.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Free {
    pub(crate) cpu: f64,
    pub(crate) ram: i128,
    pub(crate) disk: i128,
    /// Ports in use, with how many tasks hold each (recovered state may hold one twice).
    used_ports: BTreeMap<u16, u32>,
    pub(crate) free_ports: usize,
}

/// Counts of tasks per (job, attribute name, attribute value), for `limit` constraints.
pub(crate) type LimitCounts = FastMap<(u32, u32, u32), u32>;

/// Why a host cannot take a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Veto {
    Maintenance,
    Reserved,
    Dedicated,
    /// The constraint at this index of the task's constraints.
    Constraint(usize),
    Cpu,
    Ram,
    Disk,
    Ports,
}

/// A value constraint, compiled against the interned attributes.
#[derive(Debug)]
struct ValueReq {
    index: usize,
    name: Option<u32>,
    negated: bool,
    values: Vec<u32>,
}

/// A limit constraint, compiled.
#[derive(Debug)]
struct LimitReq {
    index: usize,
    name: Option<u32>,
    limit: u32,
}

/// What a task needs, compiled once per group of identical tasks.
#[derive(Debug)]
pub(crate) struct Need<'a> {
    pub(crate) job: u32,
    pub(crate) config: &'a TaskConfig,
    pub(crate) cpu: f64,
    pub(crate) ram: i128,
    pub(crate) disk: i128,
    pub(crate) ports: usize,
    dedicated: bool,
    values: Vec<ValueReq>,
    limits: Vec<LimitReq>,
}

/// A host of a [`ClusterView`], without its free capacity.
#[derive(Debug, Clone)]
struct Slot {
    /// Its name, shared with the index.
    name: Arc<str>,
    ports: RangeInclusive<u16>,
    accepts: bool,
    /// Its `(name, value)` attribute pairs, interned.
    attrs: Box<[(u32, u32)]>,
}

/// Hosts per block of the capacity summary that lets a search skip full hosts quickly.
const BLOCK: usize = 64;

/// The most free cpu and ram of any host of a block that accepts tasks.
#[derive(Debug, Clone, Copy, PartialEq)]
struct BlockMax {
    cpu: f64,
    ram: i128,
}

const EMPTY_BLOCK: BlockMax = BlockMax {
    cpu: f64::NEG_INFINITY,
    ram: i128::MIN,
};

/// The cluster as placement sees it: hosts (interned attributes, maintenance), their free
/// capacity and the `limit` counts of the tasks holding resources on them.
///
/// A scheduler keeps one up to date between rounds ([`ClusterView::charge`] and
/// [`ClusterView::release`] as tasks take and give back resources), so that a round costs
/// what its pending tasks need rather than a rebuild of the whole cluster; [`place`] builds one
/// from a [`PlacementInput`]. [`ClusterView::place`] reads it and returns a plan; it never
/// changes it.
///
/// ```
/// use std::collections::{BTreeMap, BTreeSet};
/// use aurora_core::{ClusterView, MaintenanceMode, PlacementConfig, PlacementHost};
/// let mut view = ClusterView::new(PlacementConfig::default());
/// view.add_host(&PlacementHost {
///     host: "h1".into(),
///     attributes: BTreeMap::from([("host".into(), BTreeSet::from(["h1".into()]))]).into(),
///     cpu: 8.0, ram_bytes: 16 << 30, disk_bytes: 64 << 30, ports: 31000..=31999,
///     maintenance: MaintenanceMode::None,
/// });
/// let plan = view.place(&[], &BTreeMap::new());
/// assert!(plan.assignments.is_empty());
/// assert_eq!(view.hosts(), 1);
/// ```
#[derive(Debug, Clone)]
pub struct ClusterView {
    config: PlacementConfig,
    slots: Vec<Slot>,
    index: FastMap<Arc<str>, usize>,
    names: Interner,
    values: Interner,
    free: Vec<Free>,
    blocks: Vec<BlockMax>,
    jobs: FastMap<JobKey, u32>,
    counts: LimitCounts,
    /// Whether `limit` counts are kept for every job, or only for those in `jobs` already
    /// (a view built for one plan needs only the jobs of its pending tasks).
    count_all_jobs: bool,
    /// The interned name of the `dedicated` attribute, once a host has it.
    dedicated: Option<u32>,
    /// While charging a batch of tasks, the block summary is recomputed once at the end.
    defer_blocks: bool,
}

const CPU_EPSILON: f64 = 1e-9;

impl ClusterView {
    /// An empty cluster with the given executor overhead.
    pub fn new(config: PlacementConfig) -> ClusterView {
        ClusterView {
            config,
            slots: Vec::new(),
            index: FastMap::default(),
            names: Interner::default(),
            values: Interner::default(),
            free: Vec::new(),
            blocks: Vec::new(),
            jobs: FastMap::default(),
            counts: LimitCounts::default(),
            count_all_jobs: true,
            dedicated: None,
            defer_blocks: false,
        }
    }

    /// A view of `hosts` (first fit follows their order) with `assigned` charged.
    pub fn build(
        hosts: &[PlacementHost],
        assigned: &[&ScheduledTask],
        config: PlacementConfig,
    ) -> ClusterView {
        ClusterView::build_with(ClusterView::new(config), hosts, assigned)
    }

    /// A view for one plan, keeping `limit` counts only for the jobs of `pending`.
    pub(crate) fn build_for<'p>(
        hosts: &[PlacementHost],
        assigned: &[&ScheduledTask],
        config: PlacementConfig,
        pending: impl IntoIterator<Item = &'p ScheduledTask>,
    ) -> ClusterView {
        let mut view = ClusterView::new(config);
        view.count_all_jobs = false;
        for t in pending {
            view.job_id(t.job());
        }
        ClusterView::build_with(view, hosts, assigned)
    }

    fn build_with(
        mut view: ClusterView,
        hosts: &[PlacementHost],
        assigned: &[&ScheduledTask],
    ) -> ClusterView {
        view.slots.reserve(hosts.len());
        view.free.reserve(hosts.len());
        for h in hosts {
            view.add_host(h);
        }
        view.defer_blocks = true;
        for t in assigned {
            view.charge(t);
        }
        view.defer_blocks = false;
        for b in 0..view.blocks.len() {
            view.update_block(b * BLOCK);
        }
        view
    }

    /// How many hosts the view has.
    pub fn hosts(&self) -> usize {
        self.slots.len()
    }

    /// Adds a host after the others; first fit tries hosts in the order they were added. A host
    /// whose name is already present is ignored. Add hosts before charging tasks on them.
    pub fn add_host(&mut self, host: &PlacementHost) {
        if self.index.contains_key(host.host.as_str()) {
            return;
        }
        let mut attrs = Vec::new();
        for (name, vals) in &host.attributes {
            let n = self.names.intern(name);
            for v in vals {
                attrs.push((n, self.values.intern(v)));
            }
        }
        self.dedicated = self.names.get(DEDICATED_ATTRIBUTE);
        let h = self.slots.len();
        let name: Arc<str> = host.host.as_str().into();
        self.index.insert(Arc::clone(&name), h);
        self.slots.push(Slot {
            name,
            ports: host.ports.clone(),
            accepts: host.maintenance.accepts_tasks(),
            attrs: attrs.into(),
        });
        self.free.push(Free {
            cpu: host.cpu,
            ram: i128::from(host.ram_bytes),
            disk: i128::from(host.disk_bytes),
            used_ports: BTreeMap::new(),
            free_ports: port_count(&host.ports),
        });
        if h % BLOCK == 0 {
            self.blocks.push(EMPTY_BLOCK);
        }
        self.raise_block(h);
    }

    /// The host `task` holds resources on, if it holds any on a host of the view.
    fn slot_of(&self, task: &ScheduledTask) -> Option<usize> {
        if !task.status.is_slave_assigned() {
            return None;
        }
        task.assigned_task
            .slave_host
            .as_deref()
            .and_then(|h| self.index.get(h))
            .copied()
    }

    fn job_id(&mut self, key: &JobKey) -> u32 {
        if let Some(&id) = self.jobs.get(key) {
            return id;
        }
        let next = u32::try_from(self.jobs.len()).unwrap_or(u32::MAX);
        self.jobs.insert(key.clone(), next);
        next
    }

    /// Charges a task that holds resources (a SLAVE_ASSIGNED state on a host of the view):
    /// its resources, the executor overhead, its ports and the `limit` counts of its job.
    /// Other tasks are ignored.
    pub fn charge(&mut self, task: &ScheduledTask) {
        self.apply(task, 1);
    }

    /// Gives back what [`ClusterView::charge`] took for the same task record.
    pub fn release(&mut self, task: &ScheduledTask) {
        self.apply(task, -1);
    }

    fn apply(&mut self, task: &ScheduledTask, sign: i32) {
        let Some(h) = self.slot_of(task) else {
            return;
        };
        let res = &task.assigned_task.task.resources;
        let config = self.config;
        let s = f64::from(sign);
        let f = &mut self.free[h];
        let (cpu_before, ram_before) = (f.cpu, f.ram);
        f.cpu -= s * (res.cpu + config.executor_overhead_cpu);
        let ram = i128::from(res.ram_bytes) + i128::from(config.executor_overhead_ram_bytes);
        f.ram -= i128::from(sign) * ram;
        f.disk -= i128::from(sign) * i128::from(res.disk_bytes);
        let range = &self.slots[h].ports;
        for p in task.assigned_task.assigned_ports.values() {
            if !range.contains(p) {
                continue;
            }
            if sign > 0 {
                let holders = f.used_ports.entry(*p).or_default();
                *holders += 1;
                if *holders == 1 {
                    f.free_ports = f.free_ports.saturating_sub(1);
                }
            } else if let Some(holders) = f.used_ports.get_mut(p) {
                *holders -= 1;
                if *holders == 0 {
                    f.used_ports.remove(p);
                    f.free_ports += 1;
                }
            }
        }
        let job = if self.count_all_jobs {
            Some(self.job_id(task.job()))
        } else {
            self.jobs.get(task.job()).copied()
        };
        if let Some(job) = job {
            for &(n, v) in &self.slots[h].attrs {
                let key = (job, n, v);
                let c = self.counts.entry(key).or_default();
                *c = c.saturating_add_signed(sign);
                if *c == 0 {
                    self.counts.remove(&key);
                }
            }
        }
        if self.defer_blocks {
            return;
        }
        if sign < 0 {
            self.raise_block(h);
        } else {
            // Taking from a host lowers its block's maximum only if it held the maximum.
            let b = self.blocks[h / BLOCK];
            if cpu_before >= b.cpu || ram_before >= b.ram {
                self.update_block(h);
            }
        }
    }

    /// Raises the summary of host `h`'s block to its free capacity, which only grew.
    fn raise_block(&mut self, h: usize) {
        if self.slots[h].accepts {
            let b = &mut self.blocks[h / BLOCK];
            b.cpu = b.cpu.max(self.free[h].cpu);
            b.ram = b.ram.max(self.free[h].ram);
        }
    }

    /// Recomputes the summary of host `h`'s block.
    fn update_block(&mut self, h: usize) {
        let b = h / BLOCK;
        let end = ((b + 1) * BLOCK).min(self.slots.len());
        let mut max = EMPTY_BLOCK;
        for i in b * BLOCK..end {
            if self.slots[i].accepts {
                max.cpu = max.cpu.max(self.free[i].cpu);
                max.ram = max.ram.max(self.free[i].ram);
            }
        }
        self.blocks[b] = max;
    }

    fn compile<'t>(&self, job: u32, config: &'t TaskConfig) -> Need<'t> {
        let mut values = Vec::new();
        let mut limits = Vec::new();
        for (index, c) in config.constraints.iter().enumerate() {
            let name = self.names.get(&c.name);
            match &c.constraint {
                TaskConstraint::Value { negated, values: v } => values.push(ValueReq {
                    index,
                    name,
                    negated: *negated,
                    values: v.iter().filter_map(|v| self.values.get(v)).collect(),
                }),
                TaskConstraint::Limit { limit } => limits.push(LimitReq {
                    index,
                    name,
                    limit: *limit,
                }),
            }
        }
        let res = &config.resources;
        Need {
            job,
            config,
            cpu: res.cpu + self.config.executor_overhead_cpu,
            ram: i128::from(res.ram_bytes) + i128::from(self.config.executor_overhead_ram_bytes),
            disk: i128::from(res.disk_bytes),
            ports: res.ports.len(),
            dedicated: config
                .constraints
                .iter()
                .any(|c| c.name == DEDICATED_ATTRIBUTE),
            values,
            limits,
        }
    }

    /// Places as many of `pending` as fit, in their order, first fit over the hosts in the
    /// order they were added. A task with a reservation is tried on its host first, and a
    /// reserved host takes no other task. The view is not changed: charge the tasks once the
    /// plan is applied.
    pub fn place(
        &self,
        pending: &[&ScheduledTask],
        reservations: &BTreeMap<TaskId, String>,
    ) -> PlacementPlan {
        let mut round = Round::new(self);
        round.place(pending, reservations)
    }
}

/// One placement round over a [`ClusterView`]: what the round took so far, kept apart from
/// the view so that the view stays unchanged.
#[derive(Debug)]
pub(crate) struct Round<'v, 't> {
    pub(crate) view: &'v ClusterView,
    /// The hosts this round took from, with where their free capacity now is in `free`: a
    /// map while the round touches few hosts, so that a round does not pay for a vector as
    /// long as the cluster, and such a vector (`u32::MAX` for untouched) once it touches many.
    touched: FastMap<usize, usize>,
    dense: Vec<u32>,
    free: Vec<Free>,
    /// Tasks placed this round, per (job, attribute name, attribute value).
    counts: LimitCounts,
    /// Jobs of pending tasks the view has not seen.
    new_jobs: FastMap<&'t JobKey, u32>,
    /// Hosts held for a preempting task.
    reserved: Vec<usize>,
}

impl<'v, 't> Round<'v, 't> {
    pub(crate) fn new(view: &'v ClusterView) -> Round<'v, 't> {
        Round {
            view,
            touched: FastMap::default(),
            dense: Vec::new(),
            free: Vec::new(),
            counts: LimitCounts::default(),
            new_jobs: FastMap::default(),
            reserved: Vec::new(),
        }
    }

    pub(crate) fn hosts(&self) -> usize {
        self.view.slots.len()
    }

    pub(crate) fn host_name(&self, h: usize) -> &'v str {
        &self.view.slots[h].name
    }

    pub(crate) fn slot_of(&self, task: &ScheduledTask) -> Option<usize> {
        self.view.slot_of(task)
    }

    /// The id of a job, for `limit` counts.
    pub(crate) fn job(&mut self, key: &'t JobKey) -> u32 {
        if let Some(&id) = self.view.jobs.get(key) {
            return id;
        }
        let next = u32::try_from(self.view.jobs.len() + self.new_jobs.len()).unwrap_or(u32::MAX);
        *self.new_jobs.entry(key).or_insert(next)
    }

    pub(crate) fn compile(&self, job: u32, config: &'t TaskConfig) -> Need<'t> {
        self.view.compile(job, config)
    }

    pub(crate) fn free(&self, h: usize) -> &Free {
        if !self.dense.is_empty() {
            return match self.dense[h] {
                u32::MAX => &self.view.free[h],
                i => &self.free[i as usize],
            };
        }
        if self.touched.is_empty() {
            return &self.view.free[h];
        }
        match self.touched.get(&h) {
            None => &self.view.free[h],
            Some(&i) => &self.free[i],
        }
    }

    fn free_mut(&mut self, h: usize) -> &mut Free {
        let next = self.free.len();
        if self.dense.is_empty() && next >= 64 && next * 16 >= self.hosts() {
            self.dense = vec![u32::MAX; self.hosts()];
            for (&h, &i) in &self.touched {
                self.dense[h] = u32::try_from(i).unwrap_or(u32::MAX);
            }
        }
        let i = if self.dense.is_empty() {
            *self.touched.entry(h).or_insert(next)
        } else {
            if self.dense[h] == u32::MAX {
                self.dense[h] = u32::try_from(next).unwrap_or(u32::MAX);
            }
            self.dense[h] as usize
        };
        if i == next {
            self.free.push(self.view.free[h].clone());
        }
        &mut self.free[i]
    }

    /// How many tasks of `job` hold resources on hosts whose attribute `n` is `v`.
    pub(crate) fn count(&self, job: u32, n: u32, v: u32) -> u32 {
        let key = (job, n, v);
        let of = |counts: &LimitCounts| {
            if counts.is_empty() {
                0
            } else {
                counts.get(&key).copied().unwrap_or(0)
            }
        };
        of(&self.view.counts) + of(&self.counts)
    }

    /// The vetoes that do not change during a round: maintenance, dedicated, value constraints.
    pub(crate) fn static_veto(&self, need: &Need<'_>, h: usize) -> Option<Veto> {
        let slot = &self.view.slots[h];
        if !slot.accepts {
            return Some(Veto::Maintenance);
        }
        if self.reserved.contains(&h) {
            return Some(Veto::Reserved);
        }
        let attrs = &slot.attrs;
        if !need.dedicated
            && let Some(d) = self.view.dedicated
            && attrs.iter().any(|(n, _)| *n == d)
        {
            return Some(Veto::Dedicated);
        }
        for v in &need.values {
            let matched = v.name.is_some_and(|name| {
                attrs
                    .iter()
                    .any(|(n, val)| *n == name && v.values.contains(val))
            });
            if v.negated == matched {
                return Some(Veto::Constraint(v.index));
            }
        }
        None
    }

    /// The `limit` veto, with counts from `count(name, value)`.
    pub(crate) fn limit_veto(
        &self,
        need: &Need<'_>,
        h: usize,
        count: impl Fn(u32, u32) -> u32,
    ) -> Option<Veto> {
        let attrs = &self.view.slots[h].attrs;
        for l in &need.limits {
            let Some(name) = l.name else {
                return Some(Veto::Constraint(l.index));
            };
            let mut has = false;
            for &(n, v) in attrs.iter() {
                if n == name {
                    has = true;
                    if count(n, v) >= l.limit {
                        return Some(Veto::Constraint(l.index));
                    }
                }
            }
            if !has {
                return Some(Veto::Constraint(l.index));
            }
        }
        None
    }

    pub(crate) fn resource_veto(need: &Need<'_>, free: &Free) -> Option<Veto> {
        if free.cpu + CPU_EPSILON < need.cpu {
            Some(Veto::Cpu)
        } else if free.ram < need.ram {
            Some(Veto::Ram)
        } else if free.disk < need.disk {
            Some(Veto::Disk)
        } else if free.free_ports < need.ports {
            Some(Veto::Ports)
        } else {
            None
        }
    }

    /// Whether host `h` can take a task of `need` now; the cheap checks come first.
    fn fits(&self, need: &Need<'_>, h: usize) -> bool {
        Round::resource_veto(need, self.free(h)).is_none()
            && self.static_veto(need, h).is_none()
            && self
                .limit_veto(need, h, |n, v| self.count(need.job, n, v))
                .is_none()
    }

    /// The first host at or after `from` that can take a task of `need`. Blocks whose best
    /// host lacks the cpu or ram are skipped whole: a round only takes capacity away, so the
    /// view's maxima bound the round's.
    fn first_fit(&self, need: &Need<'_>, from: usize) -> Option<usize> {
        let n = self.hosts();
        let mut h = from;
        while h < n {
            if h % BLOCK == 0 {
                let b = self.view.blocks[h / BLOCK];
                if b.cpu + CPU_EPSILON < need.cpu || b.ram < need.ram {
                    h += BLOCK;
                    continue;
                }
            }
            if self.fits(need, h) {
                return Some(h);
            }
            h += 1;
        }
        None
    }

    /// The first veto of host `h` in the original's order, for reasons.
    fn veto(&self, need: &Need<'_>, h: usize) -> Option<Veto> {
        self.static_veto(need, h)
            .or_else(|| self.limit_veto(need, h, |n, v| self.count(need.job, n, v)))
            .or_else(|| Round::resource_veto(need, self.free(h)))
    }

    /// Takes the resources of one task of `need` on host `h`; returns the chosen ports.
    fn take(&mut self, need: &Need<'_>, h: usize) -> BTreeMap<String, u16> {
        let range = self.view.slots[h].ports.clone();
        let f = self.free_mut(h);
        f.cpu -= need.cpu;
        f.ram -= need.ram;
        f.disk -= need.disk;
        let mut ports = BTreeMap::new();
        let mut candidates = range;
        for name in &need.config.resources.ports {
            // `fits` made sure enough ports are free.
            if let Some(p) = candidates.find(|p| !f.used_ports.contains_key(p)) {
                f.used_ports.insert(p, 1);
                f.free_ports = f.free_ports.saturating_sub(1);
                ports.insert(name.clone(), p);
            }
        }
        for &(n, v) in self.view.slots[h].attrs.iter() {
            *self.counts.entry((need.job, n, v)).or_default() += 1;
        }
        ports
    }

    /// A reason a person can act on, for a task of `need` that fits on no host.
    pub(crate) fn explain(&self, need: &Need<'_>) -> String {
        if self.hosts() == 0 {
            return "no executor is registered; start one with `aurora-executor --scheduler URL`"
                .to_owned();
        }
        let mut vetoes: BTreeMap<Veto, usize> = BTreeMap::new();
        for h in 0..self.hosts() {
            if let Some(v) = self.veto(need, h) {
                *vetoes.entry(v).or_default() += 1;
            }
        }
        self.render(need, vetoes)
    }

    pub(crate) fn render(&self, need: &Need<'_>, vetoes: BTreeMap<Veto, usize>) -> String {
        let total = self.hosts();
        let open: Vec<&Free> = (0..total)
            .filter(|&h| self.view.slots[h].accepts)
            .map(|h| self.free(h))
            .collect();
        let res = &need.config.resources;
        let overhead = self.view.config;
        let mut parts: Vec<(usize, String)> = vetoes
            .into_iter()
            .map(|(veto, n)| {
                let text = match veto {
                    Veto::Maintenance => {
                        format!("{n} of {total} hosts are draining or drained for maintenance")
                    }
                    Veto::Reserved => format!(
                        "{n} of {total} hosts are held for tasks that preempted others there"
                    ),
                    Veto::Dedicated => format!(
                        "{n} of {total} hosts are dedicated to other jobs (add a dedicated constraint to use them)"
                    ),
                    Veto::Constraint(i) => {
                        let c = &need.config.constraints[i];
                        format!(
                            "constraint {}:{} excludes {n} of {total} hosts",
                            c.name, c.constraint
                        )
                    }
                    Veto::Cpu => format!(
                        "insufficient cpu on {n} of {total} hosts (needs {}{}, largest free is {})",
                        fmt_f64(need.cpu),
                        if overhead.executor_overhead_cpu > 0.0 {
                            format!(
                                " = {} + {} executor overhead",
                                fmt_f64(res.cpu),
                                fmt_f64(overhead.executor_overhead_cpu)
                            )
                        } else {
                            String::new()
                        },
                        fmt_f64(open.iter().map(|f| f.cpu).fold(0.0, f64::max).max(0.0))
                    ),
                    Veto::Ram => format!(
                        "insufficient ram on {n} of {total} hosts (needs {} MiB{}, largest free is {} MiB)",
                        need.ram / i128::from(MIB),
                        if overhead.executor_overhead_ram_bytes > 0 {
                            format!(
                                " = {} + {} executor overhead",
                                res.ram_bytes / MIB,
                                overhead.executor_overhead_ram_bytes / MIB
                            )
                        } else {
                            String::new()
                        },
                        open.iter().map(|f| f.ram).max().unwrap_or(0).max(0) / i128::from(MIB)
                    ),
                    Veto::Disk => format!(
                        "insufficient disk on {n} of {total} hosts (needs {} MiB, largest free is {} MiB)",
                        need.disk / i128::from(MIB),
                        open.iter().map(|f| f.disk).max().unwrap_or(0).max(0) / i128::from(MIB)
                    ),
                    Veto::Ports => format!(
                        "too few free ports on {n} of {total} hosts (needs {}, most free is {})",
                        need.ports,
                        open.iter().map(|f| f.free_ports).max().unwrap_or(0)
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

    fn place(
        &mut self,
        pending: &[&'t ScheduledTask],
        reservations: &BTreeMap<TaskId, String>,
    ) -> PlacementPlan {
        let mut plan = PlacementPlan::default();
        // Tasks with a reservation go first, on their host; the host is then closed to others.
        let mut done: BTreeSet<&TaskId> = BTreeSet::new();
        if !reservations.is_empty() {
            for task in pending {
                let Some(h) = reservations
                    .get(task.id())
                    .and_then(|h| self.view.index.get(h.as_str()).copied())
                else {
                    continue;
                };
                let config: &TaskConfig = &task.assigned_task.task;
                let job = self.job(&config.job);
                let need = self.compile(job, config);
                if self.fits(&need, h) {
                    let ports = self.take(&need, h);
                    plan.assignments.push(Assignment {
                        task_id: task.id().clone(),
                        host: self.host_name(h).to_owned(),
                        ports,
                    });
                    done.insert(task.id());
                } else {
                    self.reserved.push(h);
                }
            }
        }
        // Group identical task configurations of a job, keeping the order of first appearance.
        let mut groups: Vec<(u32, &'t TaskConfig, Vec<&'t ScheduledTask>)> = Vec::new();
        let mut by_job: FastMap<u32, Vec<usize>> = FastMap::default();
        for task in pending {
            let config: &'t TaskConfig = &task.assigned_task.task;
            let job = self.job(&config.job);
            let candidates = by_job.entry(job).or_default();
            match candidates
                .iter()
                .find(|&&g| std::ptr::eq(groups[g].1, config) || groups[g].1 == config)
            {
                Some(&g) => groups[g].2.push(task),
                None => {
                    candidates.push(groups.len());
                    groups.push((job, config, vec![task]));
                }
            }
        }
        for (job, config, tasks) in groups {
            let need = self.compile(job, config);
            let mut cursor = 0;
            let mut rest = tasks.into_iter().filter(|t| !done.contains(t.id()));
            for task in rest.by_ref() {
                let Some(h) = self.first_fit(&need, cursor) else {
                    let reason = self.explain(&need);
                    plan.unplaced.push(Unplaced {
                        task_id: task.id().clone(),
                        reason,
                    });
                    break;
                };
                cursor = h;
                let ports = self.take(&need, h);
                plan.assignments.push(Assignment {
                    task_id: task.id().clone(),
                    host: self.host_name(h).to_owned(),
                    ports,
                });
            }
            if let Some(last) = plan.unplaced.last().map(|u| u.reason.clone()) {
                for task in rest {
                    plan.unplaced.push(Unplaced {
                        task_id: task.id().clone(),
                        reason: last.clone(),
                    });
                }
            }
        }
        plan
    }
}

fn port_count(range: &RangeInclusive<u16>) -> usize {
    if range.is_empty() {
        0
    } else {
        usize::from(*range.end()) - usize::from(*range.start()) + 1
    }
}

/// Renders a number of cores without noise, e.g. `1.25` or `4`.
fn fmt_f64(x: f64) -> String {
    let rounded = (x * 1000.0).round() / 1000.0;
    format!("{rounded}")
}

/// Places as many pending tasks as fit, first fit over the hosts in their given order.
///
/// ```
/// use aurora_core::{place, PlacementConfig, PlacementInput};
/// let plan = place(&PlacementInput {
///     hosts: &[], assigned: &[], pending: &[], config: PlacementConfig::default(),
///     reservations: &Default::default(),
/// });
/// assert!(plan.assignments.is_empty() && plan.unplaced.is_empty());
/// ```
pub fn place(input: &PlacementInput<'_>) -> PlacementPlan {
    let pending = input.pending.iter().copied();
    ClusterView::build_for(input.hosts, input.assigned, input.config, pending)
        .place(input.pending, input.reservations)
}

const MIB: u64 = 1024 * 1024;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        AssignedTask, ExecutorConfig, Identity, Resources, ScheduleStatus, TaskConfig,
        TaskConstraint,
    };

    fn host(name: &str, rack: &str, cpu: f64) -> PlacementHost {
        PlacementHost {
            host: name.to_owned(),
            attributes: BTreeMap::from([
                ("host".to_owned(), BTreeSet::from([name.to_owned()])),
                ("rack".to_owned(), BTreeSet::from([rack.to_owned()])),
            ])
            .into(),
            cpu,
            ram_bytes: 1024 * MIB,
            disk_bytes: 1024 * MIB,
            ports: 31000..=31002,
            maintenance: MaintenanceMode::None,
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
                task: config.into(),
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

    /// Runs placement without executor overhead and renders the plan as `task -> host` or
    /// `task: reason` lines.
    fn check(
        hosts: &[PlacementHost],
        assigned: &[ScheduledTask],
        pending: &[ScheduledTask],
        expect: &[&str],
    ) {
        check_with(
            PlacementConfig::NO_OVERHEAD,
            hosts,
            assigned,
            pending,
            expect,
        );
    }

    fn check_with(
        config: PlacementConfig,
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
            config,
            reservations: &BTreeMap::new(),
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

    #[test]
    fn executor_overhead_is_added_to_every_task() {
        let hosts = [host("h1", "r1", 2.0)];
        let c = &[("host", "limit:5")];
        check_with(
            PlacementConfig::default(),
            &hosts,
            &[on(task("z", 0, 0.5, &[]), "h1")],
            &[task("a", 0, 0.5, c), task("a", 1, 0.5, c)],
            &[
                "a-0 -> h1",
                "a-1: no host fits: insufficient cpu on 1 of 1 hosts (needs 0.75 = 0.5 + 0.25 executor overhead, largest free is 0.5)",
            ],
        );
    }

    #[test]
    fn production_services_get_a_rack_limit_unless_they_set_one() {
        let prod = |constraints: &[(&str, &str)]| {
            let mut t = task("a", 0, 1.0, constraints).assigned_task.task;
            t.constraints.clear();
            for (n, v) in constraints {
                t.constraints.push(Constraint {
                    name: (*n).to_owned(),
                    constraint: TaskConstraint::parse(n, v).unwrap(),
                });
            }
            t.production = true;
            t.is_service = true;
            add_default_constraints(&mut t);
            t.constraints
                .iter()
                .map(|c| format!("{}:{}", c.name, c.constraint))
                .collect::<Vec<_>>()
        };
        assert_eq!(prod(&[]), ["host:limit:1", "rack:limit:1"]);
        assert_eq!(
            prod(&[("rack", "limit:3")]),
            ["rack:limit:3", "host:limit:1"]
        );
        assert_eq!(
            prod(&[("dedicated", "www/db")]),
            ["dedicated:www/db", "host:limit:1"]
        );
    }

    #[test]
    fn dedicated_hosts_take_only_jobs_that_ask_for_them() {
        let mut special = host("h1", "r1", 4.0);
        special
            .attributes
            .insert("dedicated".into(), BTreeSet::from(["www/db".into()]));
        let hosts = [special, host("h2", "r2", 4.0)];
        check(
            &hosts,
            &[],
            &[
                task("plain", 0, 1.0, &[]),
                task("db", 0, 1.0, &[("dedicated", "www/db")]),
                task("plain2", 0, 1.0, &[("rack", "r1")]),
            ],
            &[
                "plain-0 -> h2",
                "db-0 -> h1",
                "plain2-0: no host fits: 1 of 2 hosts are dedicated to other jobs (add a dedicated constraint to use them); constraint rack:r1 excludes 1 of 2 hosts",
            ],
        );
        let ok = task("db", 0, 1.0, &[("dedicated", "www/db")])
            .assigned_task
            .task;
        assert_eq!(validate_dedicated(&ok), Ok(()));
        let bad = task("db", 0, 1.0, &[("dedicated", "other/db")])
            .assigned_task
            .task;
        let e = validate_dedicated(&bad).unwrap_err().to_string();
        assert!(
            e.contains("dedicated:other/db is not valid for role www"),
            "{e}"
        );
    }

    #[test]
    fn hosts_in_maintenance_take_no_tasks() {
        let mut draining = host("h1", "r1", 4.0);
        draining.maintenance = MaintenanceMode::Draining;
        let mut scheduled = host("h2", "r2", 4.0);
        scheduled.maintenance = MaintenanceMode::Scheduled;
        check(
            &[draining, scheduled],
            &[],
            &[task("a", 0, 1.0, &[]), task("a", 1, 1.0, &[])],
            &[
                "a-0 -> h2",
                "a-1: no host fits: 1 of 2 hosts are draining or drained for maintenance; constraint host:limit:1 excludes 1 of 2 hosts",
            ],
        );
    }

    #[test]
    fn groups_keep_first_fit_and_differing_configs_of_one_job_share_limits() {
        let hosts: Vec<_> = (0..4).map(|i| host(&format!("h{i}"), "r", 4.0)).collect();
        let mut canary = task("a", 2, 1.0, &[]);
        canary.assigned_task.task.priority = 5;
        check(
            &hosts,
            &[],
            &[task("a", 0, 1.0, &[]), canary, task("a", 1, 1.0, &[])],
            &["a-0 -> h0", "a-1 -> h1", "a-2 -> h2"],
        );
    }

    #[test]
    fn a_reserved_host_takes_only_its_task() {
        let hosts = [host("h1", "r1", 2.0), host("h2", "r2", 1.0)];
        let big = task("big", 0, 2.0, &[]);
        let small = task("small", 0, 1.0, &[]);
        let reservations = BTreeMap::from([(big.id().clone(), "h1".to_owned())]);
        let plan = |assigned: &[&ScheduledTask]| {
            place(&PlacementInput {
                hosts: &hosts,
                assigned,
                pending: &[&small, &big],
                config: PlacementConfig::NO_OVERHEAD,
                reservations: &reservations,
            })
        };
        // While the victim still runs on h1, nobody else may take h1.
        let victim = on(task("victim", 0, 1.0, &[]), "h1");
        let p = plan(&[&victim]);
        assert_eq!(p.assignments.len(), 1);
        assert_eq!(p.assignments[0].host, "h2");
        assert!(
            p.unplaced[0]
                .reason
                .contains("1 of 2 hosts are held for tasks that preempted others there"),
            "{:?}",
            p.unplaced
        );
        // Once it left, the reserved task is placed there first.
        let p = plan(&[]);
        let got: Vec<(String, String)> = p
            .assignments
            .iter()
            .map(|a| (a.task_id.0.clone(), a.host.clone()))
            .collect();
        assert_eq!(
            got,
            [
                ("big-0".to_owned(), "h1".to_owned()),
                ("small-0".to_owned(), "h2".to_owned())
            ]
        );
    }

    /// Renders a plan as in `check`.
    fn lines(plan: &PlacementPlan) -> Vec<String> {
        let mut got: Vec<String> = plan
            .assignments
            .iter()
            .map(|a| format!("{} -> {}", a.task_id, a.host))
            .collect();
        got.extend(
            plan.unplaced
                .iter()
                .map(|u| format!("{}: {}", u.task_id, u.reason)),
        );
        got
    }

    #[test]
    fn a_view_kept_up_to_date_plans_like_a_fresh_one() {
        let hosts: Vec<_> = (0..3)
            .map(|i| host(&format!("h{i}"), &format!("r{i}"), 2.0))
            .collect();
        let running: Vec<ScheduledTask> = (0..3)
            .map(|i| on(task("a", i, 1.5, &[]), &format!("h{i}")))
            .collect();
        let mut view = ClusterView::new(PlacementConfig::NO_OVERHEAD);
        for h in &hosts {
            view.add_host(h);
        }
        for t in &running {
            view.charge(t);
        }
        let pending = [task("b", 0, 1.0, &[]), task("a", 3, 1.0, &[])];
        let refs: Vec<&ScheduledTask> = pending.iter().collect();
        let none = BTreeMap::new();
        assert_eq!(
            lines(&view.place(&refs, &none)),
            [
                "b-0: no host fits: insufficient cpu on 3 of 3 hosts (needs 1, largest free is 0.5)",
                "a-3: no host fits: constraint host:limit:1 excludes 3 of 3 hosts",
            ]
        );
        // a-1 ends: its host's capacity and its job's host count are given back.
        view.release(&running[1]);
        let fresh = ClusterView::build(
            &hosts,
            &[&running[0], &running[2]],
            PlacementConfig::NO_OVERHEAD,
        );
        let plan = view.place(&refs, &none);
        assert_eq!(plan, fresh.place(&refs, &none));
        assert_eq!(lines(&plan), ["b-0 -> h1", "a-3 -> h1"]);
        // Placing does not change the view: the same round plans the same again.
        assert_eq!(view.place(&refs, &none), plan);
    }

    #[test]
    fn full_blocks_of_hosts_are_skipped_without_missing_a_fit() {
        // Three blocks' worth of hosts; all are full but one near the end of the second
        // block and the last one.
        let n = 3 * BLOCK;
        let hosts: Vec<_> = (0..n)
            .map(|i| host(&format!("h{i:03}"), &format!("r{i}"), 1.0))
            .collect();
        let free = [BLOCK + 60, n - 1];
        let running: Vec<ScheduledTask> = (0..n)
            .filter(|i| !free.contains(i))
            .map(|i| on(task(&format!("f{i}"), 0, 1.0, &[]), &format!("h{i:03}")))
            .collect();
        let pending = [
            task("a", 0, 1.0, &[]),
            task("a", 1, 1.0, &[]),
            task("a", 2, 1.0, &[]),
        ];
        let expect_free = format!("h{:03}", BLOCK + 60);
        let expect_last = format!("h{:03}", n - 1);
        check(
            &hosts,
            &running,
            &pending,
            &[
                &format!("a-0 -> {expect_free}"),
                &format!("a-1 -> {expect_last}"),
                &format!(
                    "a-2: no host fits: insufficient cpu on {} of {n} hosts (needs 1, largest free is 0); constraint host:limit:1 excludes 2 of {n} hosts",
                    n - 2
                ),
            ],
        );
    }

    #[test]
    fn a_round_that_touches_many_hosts_still_sees_what_it_took() {
        // Past 64 hosts taken from, a round keeps its capacity in a vector instead of a map.
        let hosts: Vec<_> = (0..128)
            .map(|i| host(&format!("h{i:03}"), &format!("r{i}"), 1.0))
            .collect();
        let c = &[("host", "limit:2")];
        let pending: Vec<_> = (0..129).map(|i| task("a", i, 1.0, c)).collect();
        let mut expect: Vec<String> = (0..128).map(|i| format!("a-{i} -> h{i:03}")).collect();
        expect.push(
            "a-128: no host fits: insufficient cpu on 128 of 128 hosts (needs 1, largest free is 0)"
                .to_owned(),
        );
        let expect: Vec<&str> = expect.iter().map(String::as_str).collect();
        check(&hosts, &[], &pending, &expect);
    }
}
