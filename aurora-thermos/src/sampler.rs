//! Resource sampling for every task of a process with one thread: each pass reads `/proc` once,
//! attributes every process to a task (by session, process group or ancestry from the task's
//! process roots) and sums resident memory per task; every few passes it also measures each
//! sandbox on disk. The runners decide what to do with the numbers.

use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

/// What one pass measured for one task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ResourceUsage {
    /// The summed resident memory of the task's processes, in bytes.
    pub rss_bytes: u64,
    /// How many processes of the task were seen.
    pub processes: u32,
    /// The size of the sandbox (logs included) in bytes, when this pass measured it.
    pub disk_bytes: Option<u64>,
}

type Sink = Box<dyn Fn(ResourceUsage) + Send + Sync>;

struct Entry {
    sandbox: PathBuf,
    /// The pids of the task's process roots (each leads its own process group).
    roots: Arc<Mutex<Vec<i32>>>,
    sink: Sink,
}

/// Samples the resource use of registered tasks. One per process is enough (see
/// [`ResourceSampler::global`]); independent ones are useful for measuring.
#[derive(Clone, Default)]
pub struct ResourceSampler {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    tasks: Mutex<HashMap<u64, Entry>>,
    next: AtomicU64,
    passes: AtomicU64,
}

impl std::fmt::Debug for ResourceSampler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResourceSampler")
            .field("tasks", &lock(&self.inner.tasks).len())
            .finish()
    }
}

/// Keeps a task registered with a [`ResourceSampler`]; dropping it unregisters the task.
pub struct SamplerRegistration {
    sampler: ResourceSampler,
    id: u64,
    roots: Arc<Mutex<Vec<i32>>>,
}

impl std::fmt::Debug for SamplerRegistration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SamplerRegistration")
            .field("id", &self.id)
            .finish()
    }
}

impl SamplerRegistration {
    /// Replaces the task's process roots.
    pub fn set_roots(&self, roots: Vec<i32>) {
        *lock(&self.roots) = roots;
    }
}

impl Drop for SamplerRegistration {
    fn drop(&mut self) {
        lock(&self.sampler.inner.tasks).remove(&self.id);
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// How often the global sampler samples memory.
pub(crate) const SAMPLE_INTERVAL: Duration = Duration::from_secs(1);
/// Every how many passes the global sampler also measures sandboxes on disk.
const DISK_EVERY: u64 = 5;

impl ResourceSampler {
    /// The process-wide sampler, with its thread sampling memory every second and disk every
    /// five seconds.
    pub fn global() -> &'static ResourceSampler {
        static GLOBAL: OnceLock<ResourceSampler> = OnceLock::new();
        GLOBAL.get_or_init(|| {
            let s = ResourceSampler::default();
            let worker = s.clone();
            let spawned = std::thread::Builder::new()
                .name("thermos-sampler".into())
                .spawn(move || {
                    loop {
                        let started = Instant::now();
                        let disk = worker.inner.passes.load(Ordering::Relaxed) % DISK_EVERY == 0;
                        worker.sample(disk);
                        std::thread::sleep(SAMPLE_INTERVAL.saturating_sub(started.elapsed()));
                    }
                });
            if let Err(e) = spawned {
                tracing::error!("cannot start the resource sampler: {e}; limits are not enforced");
            }
            s
        })
    }

    /// Registers a task: `sink` gets its usage after every pass.
    pub fn register(
        &self,
        sandbox: &Path,
        sink: impl Fn(ResourceUsage) + Send + Sync + 'static,
    ) -> SamplerRegistration {
        let id = self.inner.next.fetch_add(1, Ordering::Relaxed);
        let roots = Arc::new(Mutex::new(Vec::new()));
        lock(&self.inner.tasks).insert(
            id,
            Entry {
                sandbox: sandbox.to_owned(),
                roots: roots.clone(),
                sink: Box::new(sink),
            },
        );
        SamplerRegistration {
            sampler: self.clone(),
            id,
            roots,
        }
    }

    /// Runs one pass: one scan of `/proc` for every registered task, and a walk of each sandbox
    /// when `disk` is set. Calls every task's sink and returns how many processes it attributed.
    pub fn sample(&self, disk: bool) -> usize {
        self.inner.passes.fetch_add(1, Ordering::Relaxed);
        // Which task owns which root, without holding the task lock during the scan.
        let mut root_owner: HashMap<i32, u64> = HashMap::new();
        let mut sandboxes: Vec<(u64, PathBuf)> = Vec::new();
        {
            let tasks = lock(&self.inner.tasks);
            for (&id, e) in tasks.iter() {
                for &r in lock(&e.roots).iter() {
                    root_owner.insert(r, id);
                }
                if disk {
                    sandboxes.push((id, e.sandbox.clone()));
                }
            }
        }
        let mut usage: HashMap<u64, ResourceUsage> = HashMap::new();
        let mut attributed = 0;
        if !root_owner.is_empty() {
            let procs = scan();
            let by_pid: HashMap<i32, &Stat> = procs.iter().map(|p| (p.pid, p)).collect();
            let mut owner: HashMap<i32, Option<u64>> = HashMap::new();
            for p in &procs {
                if let Some(task) = owner_of(p.pid, &by_pid, &root_owner, &mut owner, 0) {
                    let u = usage.entry(task).or_default();
                    u.rss_bytes += p.rss_bytes;
                    u.processes += 1;
                    attributed += 1;
                }
            }
        }
        for (id, sandbox) in sandboxes {
            usage.entry(id).or_default().disk_bytes = Some(directory_size(&sandbox));
        }
        let tasks = lock(&self.inner.tasks);
        for (id, e) in tasks.iter() {
            (e.sink)(usage.get(id).copied().unwrap_or_default());
        }
        attributed
    }
}

struct Stat {
    pid: i32,
    ppid: i32,
    pgid: i32,
    sid: i32,
    rss_bytes: u64,
}

fn page_size() -> u64 {
    static PAGE: OnceLock<u64> = OnceLock::new();
    *PAGE.get_or_init(|| {
        nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
            .ok()
            .flatten()
            .map_or(4096, |p| p as u64)
    })
}

fn scan() -> Vec<Stat> {
    let Ok(dir) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    let page = page_size();
    let mut buf = String::with_capacity(512);
    let mut out = Vec::new();
    for e in dir.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        buf.clear();
        let Ok(mut f) = fs::File::open(format!("/proc/{pid}/stat")) else {
            continue;
        };
        if std::io::Read::read_to_string(&mut f, &mut buf).is_err() {
            continue;
        }
        let Some(close) = buf.rfind(')') else {
            continue;
        };
        let mut f = buf[close + 1..].split_ascii_whitespace();
        // Fields from 3 (state) on: ppid is 4, pgrp 5, session 6, rss 24.
        let state = f.next();
        let num = |s: Option<&str>| s.and_then(|s| s.parse::<i64>().ok());
        let (Some(ppid), Some(pgid), Some(sid)) = (num(f.next()), num(f.next()), num(f.next()))
        else {
            continue;
        };
        let rss = num(f.nth(17)).unwrap_or(0).max(0) as u64;
        if matches!(state, Some("Z") | Some("X")) {
            continue;
        }
        out.push(Stat {
            pid,
            ppid: ppid as i32,
            pgid: pgid as i32,
            sid: sid as i32,
            rss_bytes: rss * page,
        });
    }
    out
}

fn owner_of(
    pid: i32,
    by_pid: &HashMap<i32, &Stat>,
    roots: &HashMap<i32, u64>,
    memo: &mut HashMap<i32, Option<u64>>,
    depth: u32,
) -> Option<u64> {
    if let Some(&o) = memo.get(&pid) {
        return o;
    }
    let found = match by_pid.get(&pid) {
        None => None,
        Some(p) => roots
            .get(&p.pid)
            .or_else(|| roots.get(&p.sid))
            .or_else(|| roots.get(&p.pgid))
            .copied()
            .or_else(|| {
                if p.ppid > 1 && depth < 64 {
                    owner_of(p.ppid, by_pid, roots, memo, depth + 1)
                } else {
                    None
                }
            }),
    };
    memo.insert(pid, found);
    found
}

/// The bytes a directory tree takes on disk (allocated blocks), not following symlinks.
pub fn directory_size(root: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![root.to_owned()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let Ok(m) = e.metadata() else { continue };
            total += m.blocks() * 512;
            if m.is_dir() {
                stack.push(e.path());
            }
        }
    }
    total
}
