//! Finding and signalling every process that belongs to a task, by walking `/proc`.
//!
//! A task's processes are its process roots (each a process group leader), every
//! descendant of a member, every process in a member's process group or session, and, as a
//! last resort for orphans re-parented to this subreaper before they were seen, a direct child
//! of this process whose `HOME` is the task's sandbox. Members seen once are remembered (by pid
//! and start time), so a daemon that double-forks and changes its session is still found.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// One line of `/proc/<pid>/stat`, the fields we need.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ProcInfo {
    pub(crate) pid: i32,
    ppid: i32,
    pgid: i32,
    sid: i32,
    pub(crate) start: u64,
    pub(crate) zombie: bool,
}

/// Reads `/proc/<pid>/stat` for one process.
pub(crate) fn proc_info(pid: i32) -> Option<ProcInfo> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may contain spaces and parentheses: the fields start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some(ProcInfo {
        pid,
        zombie: matches!(f.first(), Some(&"Z") | Some(&"X")),
        ppid: f.get(1)?.parse().ok()?,
        pgid: f.get(2)?.parse().ok()?,
        sid: f.get(3)?.parse().ok()?,
        start: f.get(19)?.parse().ok()?,
    })
}

/// Whether a process with this pid exists and is not a zombie.
pub fn is_alive(pid: u32) -> bool {
    proc_info(pid as i32).is_some_and(|p| !p.zombie)
}

fn all_processes() -> Vec<ProcInfo> {
    let Ok(dir) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(proc_info)
        .collect()
}

/// A walk of `/proc` no older than `max_age` and taken after `not_before`, shared by every
/// runner of the process: the periodic tracking of hundreds of tasks then costs about one walk
/// per period, not one per task.
fn shared_processes(not_before: Instant, max_age: Duration) -> Arc<Vec<ProcInfo>> {
    /// The latest shared walk and when it was taken.
    type Walk = Option<(Instant, Arc<Vec<ProcInfo>>)>;
    static LAST: OnceLock<Mutex<Walk>> = OnceLock::new();
    let mut last = LAST
        .get_or_init(|| Mutex::new(None))
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some((at, procs)) = &*last
        && *at >= not_before
        && at.elapsed() < max_age
    {
        return procs.clone();
    }
    let procs = Arc::new(all_processes());
    *last = Some((Instant::now(), procs.clone()));
    procs
}

fn home_of(pid: i32) -> Option<PathBuf> {
    let env = fs::read(format!("/proc/{pid}/environ")).ok()?;
    env.split(|&b| b == 0)
        .find_map(|kv| kv.strip_prefix(b"HOME="))
        .map(|v| PathBuf::from(String::from_utf8_lossy(v).into_owned()))
}

/// The processes of one task, as last seen.
#[derive(Debug)]
pub(crate) struct ProcessTree {
    sandbox: PathBuf,
    me: ProcInfo,
    /// Members seen, by pid, with their start time (to tell a reused pid).
    known: HashMap<i32, u64>,
    /// Process groups and sessions of members.
    groups: HashSet<i32>,
    /// When `known` last gained a member outside a walk of `/proc` (a root) or was rebuilt
    /// from a fresh walk: an older shared walk would forget what was learnt since.
    updated: Instant,
}

impl ProcessTree {
    pub(crate) fn new(sandbox: &Path) -> ProcessTree {
        let own = crate::reaper::own_pid().as_raw();
        let me = proc_info(own).unwrap_or(ProcInfo {
            pid: own,
            ppid: 0,
            pgid: nix::unistd::getpgrp().as_raw(),
            sid: nix::unistd::getsid(None).map(|p| p.as_raw()).unwrap_or(0),
            start: 0,
            zombie: false,
        });
        ProcessTree {
            sandbox: sandbox.to_owned(),
            me,
            known: HashMap::new(),
            groups: HashSet::new(),
            updated: Instant::now(),
        }
    }

    /// Adds a process the runner just started, with its start time when known.
    pub(crate) fn add_root(&mut self, pid: u32, start: Option<u64>) {
        let pid = pid as i32;
        if let Some(start) = start.or_else(|| proc_info(pid).map(|info| info.start)) {
            self.known.insert(pid, start);
        }
        // The root leads its own process group, whose id is its pid.
        self.groups.insert(pid);
        self.updated = Instant::now();
    }

    /// Walks `/proc` and returns the live members of the task.
    pub(crate) fn refresh(&mut self) -> Vec<ProcInfo> {
        self.updated = Instant::now();
        self.refresh_from(&all_processes())
    }

    /// Remembers the members of the task from a recent walk of `/proc` shared with the other
    /// runners (at most half a second old, and newer than what this tree learnt otherwise), so
    /// that descendants that leave the task's sessions later are still known. For the periodic
    /// tracking; killing walks afresh.
    pub(crate) fn track(&mut self) {
        let procs = shared_processes(self.updated, Duration::from_millis(500));
        // Members born after the shared walk are found from their ancestors next time.
        self.refresh_from(&procs);
    }

    fn refresh_from(&mut self, procs: &[ProcInfo]) -> Vec<ProcInfo> {
        let mut members: HashMap<i32, ProcInfo> = HashMap::new();
        let mut children_of_me = Vec::new();
        for p in procs {
            if p.pid == self.me.pid {
                continue;
            }
            let known = self.known.get(&p.pid) == Some(&p.start);
            let grouped = (p.pgid != self.me.pgid && self.groups.contains(&p.pgid))
                || (p.sid != self.me.sid && self.groups.contains(&p.sid));
            if known || grouped {
                members.insert(p.pid, *p);
            } else if p.ppid == self.me.pid {
                children_of_me.push(*p);
            }
        }
        for p in children_of_me {
            if home_of(p.pid).as_deref() == Some(self.sandbox.as_path()) {
                members.insert(p.pid, p);
            }
        }
        // Descendants of members, to a fixpoint.
        loop {
            let before = members.len();
            for p in procs {
                if p.pid != self.me.pid
                    && !members.contains_key(&p.pid)
                    && members.contains_key(&p.ppid)
                {
                    members.insert(p.pid, *p);
                }
            }
            if members.len() == before {
                break;
            }
        }
        let live: Vec<ProcInfo> = members.into_values().filter(|p| !p.zombie).collect();
        self.known = live.iter().map(|p| (p.pid, p.start)).collect();
        // Forget groups with no live member, so a reused id cannot pull in a stranger.
        self.groups = live
            .iter()
            .flat_map(|p| [p.pgid, p.sid])
            .filter(|&g| g != self.me.pgid && g != self.me.sid && g > 1)
            .collect();
        live
    }

    /// Sends `signal` to every live member, freezing the tree first so that no member can fork
    /// a child that is not signalled. Returns how many processes were signalled.
    pub(crate) fn signal_all(&mut self, signal: Signal) -> usize {
        let mut stopped: HashSet<i32> = HashSet::new();
        // Freeze until a walk finds nobody new: a stopped process cannot fork.
        for _ in 0..100 {
            let live = self.refresh();
            let fresh: Vec<i32> = live
                .iter()
                .map(|p| p.pid)
                .filter(|pid| !stopped.contains(pid))
                .collect();
            if fresh.is_empty() {
                break;
            }
            for pid in fresh {
                let _ = kill(Pid::from_raw(pid), Signal::SIGSTOP);
                stopped.insert(pid);
            }
        }
        for &pid in &stopped {
            let _ = kill(Pid::from_raw(pid), signal);
        }
        for &pid in &stopped {
            let _ = kill(Pid::from_raw(pid), Signal::SIGCONT);
        }
        stopped.len()
    }
}
