//! From a loaded config to what the scheduler and the executor get: job selection, `-E`
//! bindings, validation (every problem, each with its path) and evaluation to JSON.

use std::collections::{BTreeSet, HashMap};

use serde_json::Value as Json;

use super::{MB, schema};
use crate::process_order::{ProcessFacts, process_dependencies};
use crate::pystachio::{
    BuildError, Component, Env, EnvInput, EvalError, Raw, Ref, Scope, Value, pyfmt::py_parse_int,
};

/// Errors of job loading, binding and selection.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum JobError {
    /// A `-E` binding that is not `NAME=VALUE` with a valid reference name.
    #[error("invalid binding {binding:?}: {reason}")]
    BadBinding {
        /// The binding as given.
        binding: String,
        /// Why it is invalid.
        reason: String,
    },
    /// The config defines no job.
    #[error("No job defined in this config!")]
    NoJobs,
    /// Several jobs and no name to choose.
    #[error("Configuration has multiple jobs but no job name specified!")]
    NoName,
    /// No job matches the key.
    #[error("Could not find job {key}\nCandidates are:\n{candidates}")]
    NotFound {
        /// The requested `cluster/role/env/name`.
        key: String,
        /// The jobs the config has, one `cluster/role/env/name` a line.
        candidates: String,
    },
    /// Several jobs match the key.
    #[error("Multiple jobs match, please disambiguate by specifying a job key.")]
    Ambiguous,
    /// The JSON job does not fit the schema.
    #[error("invalid job JSON: {0}")]
    Load(#[from] BuildError),
    /// A job field could not be evaluated.
    #[error("{0}")]
    Eval(#[from] EvalError),
}

/// One `-E NAME=VALUE` binding; the value is always a string.
#[derive(Debug, Clone, PartialEq)]
pub struct Binding {
    /// The reference bound (`profile.instances`, `x[y]`).
    pub name: Ref,
    /// The string bound to it.
    pub value: String,
}

/// Parses `NAME=VALUE` (exactly one `=`; the name is a reference address).
///
/// ```
/// let b = aurora_config::schema::parse_binding("profile.instances=3").unwrap();
/// assert_eq!(b.name.address(), "profile.instances");
/// assert_eq!(b.value, "3");
/// assert!(aurora_config::schema::parse_binding("a=b=c").is_err());
/// ```
pub fn parse_binding(text: &str) -> Result<Binding, JobError> {
    let bad = |reason: String| JobError::BadBinding {
        binding: text.into(),
        reason,
    };
    let mut parts = text.split('=');
    let (Some(name), Some(value), None) = (parts.next(), parts.next(), parts.next()) else {
        return Err(bad("expected exactly one '=' (NAME=VALUE)".into()));
    };
    let name = Ref::parse(name).map_err(|e| bad(format!("bad name: {e}")))?;
    Ok(Binding {
        name,
        value: value.into(),
    })
}

/// Applies `-E` bindings to every job (`job.bind(*bindings)`: each binding is its own scope,
/// and a later binding wins over an earlier one).
pub fn bind_all(jobs: &[Value], bindings: &[Binding]) -> Result<Vec<Value>, JobError> {
    if bindings.is_empty() {
        return Ok(jobs.to_vec());
    }
    let mut scopes = Vec::with_capacity(bindings.len());
    for b in bindings {
        let env = Env::from_refs([(b.name.clone(), EnvInput::Str(b.value.clone()))])?;
        scopes.push(Scope::Env(env));
    }
    Ok(jobs.iter().map(|j| j.bind(scopes.clone())).collect())
}

/// Which job to pick: a name and, optionally, cluster, role and environment to match.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JobSelector {
    /// The job name; `None` picks the only job.
    pub name: Option<String>,
    /// The cluster to match.
    pub cluster: Option<String>,
    /// The role to match.
    pub role: Option<String>,
    /// The environment to match.
    pub environment: Option<String>,
}

fn field_text(job: &Value, name: &str) -> Result<Option<String>, EvalError> {
    match job.field(name)? {
        Some(v) => Ok(Some(v.py_str()?)),
        None => Ok(None),
    }
}

/// Picks one job (Aurora's `AuroraConfig.pick`), after bindings were applied.
pub fn select_job(jobs: &[Value], sel: &JobSelector) -> Result<Value, JobError> {
    if jobs.is_empty() {
        return Err(JobError::NoJobs);
    }
    let Some(name) = &sel.name else {
        return match jobs {
            [only] => Ok(only.clone()),
            _ => Err(JobError::NoName),
        };
    };
    let mut matches = Vec::new();
    for j in jobs {
        let fits = |field: &str, want: &Option<String>| -> Result<bool, EvalError> {
            Ok(match want {
                None => true,
                Some(w) => field_text(j, field)?.as_deref() == Some(w.as_str()),
            })
        };
        if field_text(j, "name")?.as_deref() == Some(name.as_str())
            && fits("cluster", &sel.cluster)?
            && fits("role", &sel.role)?
            && fits("environment", &sel.environment)?
        {
            matches.push(j.clone());
        }
    }
    match matches.len() {
        1 => Ok(matches.remove(0)),
        0 => {
            let opt = |o: &Option<String>| o.clone().unwrap_or_else(|| "None".into());
            let mut candidates = Vec::new();
            for j in jobs {
                let parts: Result<Vec<String>, EvalError> =
                    ["cluster", "role", "environment", "name"]
                        .iter()
                        .map(|f| Ok(field_text(j, f)?.unwrap_or_else(|| "{MISSING}".into())))
                        .collect();
                candidates.push(format!("  {}", parts?.join("/")));
            }
            Err(JobError::NotFound {
                key: format!(
                    "{}/{}/{}/{}",
                    opt(&sel.cluster),
                    opt(&sel.role),
                    opt(&sel.environment),
                    name
                ),
                candidates: candidates.join("\n"),
            })
        }
        _ => Err(JobError::Ambiguous),
    }
}

/// Loads one job from JSON (`aurora create -j`): unknown keys are dropped through nested
/// structs, as `Job.json_load` does.
///
/// ```
/// let job = aurora_config::schema::load_job_json(r#"{"name": "x", "role": "r", "bogus": 1}"#).unwrap();
/// assert_eq!(job.field("role").unwrap().unwrap().as_str(), Some("r"));
/// ```
pub fn load_job_json(text: &str) -> Result<Value, JobError> {
    Ok(schema().job.json_loads(text, false)?)
}

/// One problem found in a job config, with its path in the config (`update_config.watch_secs`,
/// `task.processes[1].name`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    /// Where: a dotted path from the job.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// A validated job, evaluated for the scheduler and the executor.
#[derive(Debug, Clone, PartialEq)]
pub struct EvaluatedJob {
    /// `cluster/role/environment/name`.
    pub job_key: String,
    /// The job's `json_dumps()`: defaults filled, interpolated as far as possible.
    pub raw_json: Json,
    /// Port names the scheduler must allocate, sorted.
    pub ports: Vec<String>,
    /// References still unbound in the job (`{{thermos.ports[http]}}`, ...), sorted.
    pub unbound: Vec<String>,
    /// The executor payload, rendered on demand (most callers only need `raw_json`).
    payload: Value,
}

impl EvaluatedJob {
    /// The executor payload: the job without `update_config` and `instances`, with
    /// `{{mesos.*}}`/`{{thermos.*}}` refs left as text, as Python's `json.dumps` writes it.
    pub fn executor_data(&self) -> Result<String, EvalError> {
        self.payload.json_dumps()
    }

    /// The executor payload as JSON.
    pub fn executor_json(&self) -> Result<Json, EvalError> {
        self.payload.to_json()
    }
}

fn allowed_unbound(r: &Ref) -> bool {
    let c = r.components();
    let d = |i: usize, s: &str| c.get(i).is_some_and(|x| x.is_deref_named(s));
    (c.len() == 2 && d(0, "mesos") && d(1, "instance"))
        || (c.len() == 2 && d(0, "thermos") && d(1, "task_id"))
        || (c.len() == 3 && d(0, "thermos") && d(1, "ports") && matches!(c[2], Component::Index(_)))
}

fn port_ref(r: &Ref) -> Option<String> {
    let c = r.components();
    match c {
        [a, b, Component::Index(p)] if a.is_deref_named("thermos") && b.is_deref_named("ports") => {
            Some(p.to_string())
        }
        _ => None,
    }
}

fn is_valid_key_part(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

fn is_valid_environment(s: &str) -> bool {
    matches!(s, "prod" | "devel" | "test")
        || s.strip_prefix("staging")
            .is_some_and(|d| d.bytes().all(|b| b.is_ascii_digit()))
}

struct Problems(Vec<ConfigProblem>);

impl Problems {
    fn add(&mut self, path: &str, message: impl Into<String>) {
        self.0.push(ConfigProblem {
            path: path.into(),
            message: message.into(),
        });
    }
}

/// Reads a field of an interpolated struct as text/int/float/bool, or `None` when unset or
/// not concrete. The struct must be interpolated already: its fields are read as stored, which
/// is what each of them interpolates to (the job as Aurora reads it).
struct Fields<'a>(&'a Value);

impl Fields<'_> {
    fn get(&self, name: &str) -> Option<Value> {
        self.0.raw_field(name).cloned()
    }
    fn text(&self, name: &str) -> Option<String> {
        self.get(name).and_then(|v| v.as_str().map(str::to_string))
    }
    fn int(&self, name: &str) -> Option<i64> {
        self.get(name).and_then(|v| v.as_int())
    }
    fn float(&self, name: &str) -> Option<f64> {
        self.get(name).and_then(|v| v.as_float())
    }
    fn boolean(&self, name: &str) -> Option<bool> {
        self.get(name).and_then(|v| v.as_bool())
    }
}

/// Validates a job (after bindings and selection) and evaluates it. Every problem is
/// reported, each with its path; the job evaluates only when there is none.
///
/// ```
/// use aurora_config::schema::{evaluate_job, load_job_json};
/// let job = load_job_json(r#"{"name": "hello", "role": "www-data", "cluster": "devcluster",
///   "environment": "prod", "task": {"processes": [{"name": "hello", "cmdline": "echo hi"}],
///   "resources": {"cpu": 1.0, "ram": 134217728, "disk": 134217728}}}"#).unwrap();
/// let ev = evaluate_job(&job).unwrap();
/// assert_eq!(ev.job_key, "devcluster/www-data/prod/hello");
/// assert_eq!(ev.raw_json["task"]["name"], "hello");
/// assert!(ev.executor_json().unwrap().get("update_config").is_none());
///
/// let bad = load_job_json(r#"{"role": "r", "environment": "qa"}"#).unwrap();
/// let problems = evaluate_job(&bad).unwrap_err();
/// assert!(problems.iter().any(|p| p.path == "cluster"));
/// assert!(problems.iter().any(|p| p.path == "environment"));
/// ```
pub fn evaluate_job(job: &Value) -> Result<EvaluatedJob, Vec<ConfigProblem>> {
    let mut pr = Problems(Vec::new());
    let job = match standard_bindings(job) {
        Ok(j) => j,
        Err(e) => {
            return Err(vec![ConfigProblem {
                path: String::new(),
                message: e.to_string(),
            }]);
        }
    };
    let eval = |e: EvalError| {
        vec![ConfigProblem {
            path: String::new(),
            message: e.to_string(),
        }]
    };
    // Aurora 0.6 interpolates the job in its context (`job % context`) and then reads, checks
    // and converts that interpolated job, which interpolates it once more: an escape `{{&x}}`
    // is the literal `{{x}}` after the first pass and a reference in the second, bound or not.
    let (job, _) = job.interpolate().map_err(eval)?;
    let (read, unbound) = job.interpolate().map_err(eval)?;
    let fields = Fields(&read);

    // Type check with the instance bound, as the client does, reporting every failure.
    let checked = job.bind_pairs([("mesos.instance", "0")]).map_err(|e| {
        vec![ConfigProblem {
            path: String::new(),
            message: e.to_string(),
        }]
    })?;
    match checked.check_all() {
        Ok(fails) => {
            for (path, message) in fails {
                pr.add(&path, message);
            }
        }
        Err(e) => pr.add("", e.to_string()),
    }

    validate_key(&fields, &mut pr);
    let task = fields.get("task");
    if let Some(t) = &task {
        validate_task(t, &mut pr);
    }
    validate_update_config(&fields, &mut pr);
    let ports = compute_ports(&fields, task.as_ref(), &mut pr);

    let bad: Vec<String> = unbound
        .iter()
        .filter(|r| !allowed_unbound(r))
        .map(|r| r.to_string())
        .collect();
    if !bad.is_empty() {
        pr.add(
            "",
            format!("Config contains unbound variables: {}", bad.join(" ")),
        );
    }

    if !pr.0.is_empty() {
        return Err(pr.0);
    }
    let to_problem = |e: EvalError| {
        vec![ConfigProblem {
            path: String::new(),
            message: e.to_string(),
        }]
    };
    // `read` is `job` interpolated: its JSON is `job.to_json()`.
    let raw_json = crate::pystachio::json::value_to_json(&read).map_err(to_problem)?;
    let payload = job
        .with_fields([("update_config", Raw::Empty), ("instances", Raw::Empty)])
        .map_err(|e| {
            vec![ConfigProblem {
                path: String::new(),
                message: e.to_string(),
            }]
        })?;
    let key = ["cluster", "role", "environment", "name"]
        .iter()
        .map(|f| fields.text(f).unwrap_or_default())
        .collect::<Vec<_>>()
        .join("/");
    let mut unbound: Vec<String> = unbound.iter().map(|r| r.to_string()).collect();
    unbound.sort();
    unbound.dedup();
    Ok(EvaluatedJob {
        job_key: key,
        raw_json,
        ports,
        unbound,
        payload,
    })
}

/// The job's `json_dumps()` as JSON (the corpus `raw_json` shape), with Aurora's standard
/// bindings applied, without validating anything. Unbound references stay as text.
///
/// ```
/// let job = aurora_config::schema::load_job_json(r#"{"role": "r", "contact": "{{role}}@{{host}}"}"#).unwrap();
/// let raw = aurora_config::schema::job_raw_json(&job).unwrap();
/// assert_eq!(raw["contact"], "r@{{host}}");
/// assert_eq!(raw["instances"], 1);
/// ```
pub fn job_raw_json(job: &Value) -> Result<Json, JobError> {
    Ok(standard_bindings(job)?.to_json()?)
}

/// Aurora's deprecated aliases: `mesos.role`, `mesos.cluster` and `thermos.user`.
fn standard_bindings(job: &Value) -> Result<Value, BuildError> {
    let env = Env::from_pairs([
        ("mesos.role", EnvInput::Str("{{role}}".into())),
        ("mesos.cluster", EnvInput::Str("{{cluster}}".into())),
        ("thermos.user", EnvInput::Str("{{role}}".into())),
    ])?;
    Ok(job.bind(vec![Scope::Env(env)]))
}

fn validate_key(f: &Fields<'_>, pr: &mut Problems) {
    for part in ["role", "environment", "name"] {
        if let Some(v) = f.text(part)
            && !is_valid_key_part(&v)
        {
            pr.add(part, format!("Job {part} {v:?} must match [\\w\\-\\.]+"));
        }
    }
    match f.text("environment") {
        Some(env) if !is_valid_environment(&env) => pr.add(
            "environment",
            format!(
                "Environment name should be one of \"prod\", \"devel\", \"test\" or \
                 staging<number>!  Got {env}"
            ),
        ),
        _ => {}
    }
}

fn validate_update_config(f: &Fields<'_>, pr: &mut Problems) {
    let Some(uc) = f.get("update_config") else {
        return;
    };
    let uc = Fields(&uc);
    let instances = f.int("instances").unwrap_or(1);
    if let Some(max_failures) = uc.int("max_total_failures") {
        if max_failures >= instances {
            pr.add(
                "update_config.max_total_failures",
                format!(
                    "max_total_failures in update_config must be lesser than the job size. \
                     Based on your job size ({instances}) you should use max_total_failures <= {}.",
                    instances - 1
                ),
            );
        }
        let dedicated = f.get("constraints").is_some_and(|c| {
            c.pairs()
                .iter()
                .any(|(k, _)| k.as_str() == Some("dedicated"))
        });
        if dedicated {
            let min = (instances as f64 * 0.02).floor() as i64;
            if max_failures < min {
                pr.add(
                    "update_config.max_total_failures",
                    format!(
                        "Since this is a dedicated job, you must set your max_total_failures in \
                         your update configuration to no less than 2% of your job size. Based on \
                         your job size ({instances}) you should use max_total_failures >= {min}."
                    ),
                );
            }
        }
    }
    let Some(hc) = f.get("health_check_config") else {
        return;
    };
    let hc = Fields(&hc);
    if let (Some(watch), Some(initial), Some(failures), Some(interval)) = (
        uc.int("watch_secs"),
        hc.float("initial_interval_secs"),
        hc.int("max_consecutive_failures"),
        hc.float("interval_secs"),
    ) {
        let target = initial + failures as f64 * interval;
        if (watch as f64) <= target {
            pr.add(
                "update_config.watch_secs",
                format!(
                    "Watch seconds ({watch}) must be greater than initial_interval_secs \
                     ({initial}) + max_consecutive_failures ({failures}) * interval_secs \
                     ({interval}) = {target}"
                ),
            );
        }
    }
}

struct Proc {
    name: String,
    daemon: bool,
    ephemeral: bool,
    final_: bool,
}

fn validate_task(task: &Value, pr: &mut Problems) {
    let tf = Fields(task);
    let processes = task
        .raw_field("processes")
        .map(|l| l.elements().len())
        .unwrap_or(0);
    if processes == 0 {
        pr.add("task.processes", "Task must specify processes");
    }
    match tf.get("resources") {
        None => pr.add("task.resources", "Task must specify resources!"),
        Some(r) => {
            let r = Fields(&r);
            if r.float("cpu").is_some_and(|c| c <= 0.0) {
                pr.add("task.resources.cpu", "cpu must be positive");
            }
            for dim in ["ram", "disk"] {
                if r.int(dim).is_some_and(|v| v.div_euclid(MB) <= 0) {
                    pr.add(
                        &format!("task.resources.{dim}"),
                        format!("{dim} must be at least 1 MB"),
                    );
                }
            }
        }
    }
    let Some(list) = tf.get("processes") else {
        return;
    };
    let mut procs: Vec<Proc> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for (i, p) in list.elements().iter().enumerate() {
        let pf = Fields(p);
        let Some(name) = pf.text("name") else {
            continue;
        };
        let path = format!("task.processes[{i}].name");
        let valid = !name.is_empty()
            && !name.starts_with('.')
            && !name.starts_with('/')
            && !name.contains('/');
        if !valid {
            pr.add(
                &path,
                format!("Process name {name:?} is invalid: it must match ^[^./][^/]*$"),
            );
        }
        if index.insert(name.clone(), procs.len()).is_some() {
            pr.add(&path, format!("Duplicate process name {name:?}"));
        }
        procs.push(Proc {
            name,
            daemon: pf.boolean("daemon").unwrap_or(false),
            ephemeral: pf.boolean("ephemeral").unwrap_or(false),
            final_: pf.boolean("final").unwrap_or(false),
        });
    }
    let constraints: Vec<Vec<String>> = tf
        .get("constraints")
        .map(|cons| {
            cons.elements()
                .iter()
                .map(|c| {
                    c.raw_field("order")
                        .map(|order| {
                            order
                                .elements()
                                .iter()
                                .map(|n| n.py_str().unwrap_or_default())
                                .collect()
                        })
                        .unwrap_or_default()
                })
                .collect()
        })
        .unwrap_or_default();
    let facts: Vec<ProcessFacts<'_>> = procs
        .iter()
        .map(|p| ProcessFacts {
            name: &p.name,
            daemon: p.daemon,
            ephemeral: p.ephemeral,
            is_final: p.final_,
        })
        .collect();
    // The runner checks the same rule (aurora-thermos calls this function too).
    if let Err(problems) = process_dependencies(&facts, &constraints) {
        for problem in problems {
            let path = match problem.constraint {
                Some(ci) => format!("task.constraints[{ci}].order"),
                None => "task.constraints".to_owned(),
            };
            pr.add(&path, problem.to_string());
        }
    }
}

enum PortTarget {
    Static,
    Named(String),
}

/// The references of the tags left in an interpolated value's text, each once, in order: what
/// interpolating it again reports unbound, since they did not resolve in wider scopes.
fn tag_refs(v: &Value, out: &mut Vec<Ref>) {
    // A choice holds the alternative it resolved to.
    if let Some(Raw::Value(inner)) = v.scalar_raw() {
        return tag_refs(inner, out);
    }
    if let Some(Raw::Str(text)) = v.scalar_raw() {
        if text.contains("{{")
            && let Ok(segments) = crate::pystachio::segments(text, false)
        {
            for s in segments {
                if let crate::pystachio::Segment::Ref(r) = s
                    && !out.contains(&r)
                {
                    out.push(r);
                }
            }
        }
        return;
    }
    for e in v.elements() {
        tag_refs(e, out);
    }
    for (k, e) in v.pairs() {
        tag_refs(k, out);
        tag_refs(e, out);
    }
    for f in v.ty().fields() {
        if let Some(e) = v.raw_field(f.name()) {
            tag_refs(e, out);
        }
    }
}

fn compute_ports(f: &Fields<'_>, task: Option<&Value>, pr: &mut Problems) -> Vec<String> {
    let mut refs = Vec::new();
    if let Some(t) = task {
        tag_refs(t, &mut refs);
    }
    let referenced: Vec<String> = refs.iter().filter_map(port_ref).collect();
    for r in referenced.iter() {
        if !r
            .chars()
            .all(|c| c.is_alphanumeric() || c == '_' || c == '-')
        {
            pr.add(
                "task",
                format!("Invalid port name {r:?}: port names must match [\\w\\-]+"),
            );
        }
    }
    let mut portmap: Vec<(String, String)> = Vec::new();
    if let Some(a) = f.get("announce")
        && let Some(pm) = Fields(&a).get("portmap")
    {
        for (k, v) in pm.pairs() {
            portmap.push((
                k.py_str().unwrap_or_default(),
                v.py_str().unwrap_or_default(),
            ));
        }
    }
    let lookup = |name: &str| {
        portmap
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let mut resolved: Vec<(String, PortTarget)> = Vec::new();
    for (k, _) in &portmap {
        let mut seen = vec![k.clone()];
        let mut v = lookup(k).unwrap_or_default();
        let target = loop {
            if py_parse_int(&v).is_some() {
                break PortTarget::Static;
            }
            match lookup(&v) {
                Some(next) if !seen.contains(&v) => {
                    seen.push(v.clone());
                    v = next;
                }
                Some(_) => {
                    pr.add("announce.portmap", format!("Port alias cycle at {k:?}"));
                    break PortTarget::Named(v);
                }
                None => break PortTarget::Named(v),
            }
        };
        resolved.push((k.clone(), target));
    }
    let dedicated = f.get("constraints").is_some_and(|c| {
        c.pairs()
            .iter()
            .any(|(k, _)| k.as_str() == Some("dedicated"))
    });
    if resolved
        .iter()
        .any(|(_, t)| matches!(t, PortTarget::Static))
        && !dedicated
    {
        pr.add(
            "announce.portmap",
            "Specifying static ports in a job requires a dedicated constraint",
        );
    }
    let mut out = BTreeSet::new();
    for (_, t) in &resolved {
        if let PortTarget::Named(n) = t {
            out.insert(n.clone());
        }
    }
    for r in referenced {
        match resolved.iter().find(|(k, _)| *k == r) {
            Some((_, PortTarget::Static)) => {}
            Some((_, PortTarget::Named(n))) => {
                out.insert(n.clone());
            }
            None => {
                out.insert(r);
            }
        }
    }
    out.into_iter().collect()
}
