//! The process-wide child reaper.
//!
//! The runner makes its process a child subreaper, so orphaned descendants of task processes
//! (daemons, double forks) are re-parented to it and must be reaped here, or they would stay
//! zombies. Reaping any child is process-wide, so one thread does it for every runner in the
//! process and hands each exit to whoever spawned that pid. A consequence: a program that uses
//! the runner must not wait for children of its own with `std::process::Child::wait`.

use std::collections::HashMap;
use std::io;
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::sync::{Condvar, Mutex, OnceLock};
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::wait::{Id, WaitPidFlag, WaitStatus, waitid, waitpid};
use nix::unistd::Pid;

/// How a child ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Exit {
    /// It exited with this code.
    Code(i32),
    /// A signal ended it.
    Signal(i32),
}

/// An exit, tagged with the pid, handed to the spawner's [`Notify`].
#[derive(Debug)]
pub(crate) struct Exited {
    pub(crate) pid: u32,
    pub(crate) exit: Exit,
}

struct Reaper {
    /// Who waits for which pid. Held while spawning, so an exit is never dispatched before
    /// its pid is registered.
    waiters: Mutex<Registry>,
    spawned: Condvar,
}

/// What the reaper calls with a child's exit, on its own thread. It must not block: it is
/// meant to queue the exit for the spawner (e.g. send it on a channel).
pub(crate) type Notify = Box<dyn FnOnce(Exited) + Send>;

#[derive(Default)]
struct Registry {
    by_pid: HashMap<i32, Notify>,
    generation: u64,
}

fn reaper() -> &'static Reaper {
    static REAPER: OnceLock<&'static Reaper> = OnceLock::new();
    REAPER.get_or_init(|| {
        if let Err(e) = nix::sys::prctl::set_child_subreaper(true) {
            tracing::warn!(
                "cannot become a child subreaper ({e}); orphaned task processes escape to init"
            );
        }
        let r: &'static Reaper = Box::leak(Box::new(Reaper {
            waiters: Mutex::new(Registry::default()),
            spawned: Condvar::new(),
        }));
        let spawn = std::thread::Builder::new()
            .name("thermos-reaper".into())
            .spawn(move || reap_forever(r));
        if let Err(e) = spawn {
            tracing::error!("cannot start the reaper thread: {e}");
        }
        r
    })
}

/// Spawns `cmd` and arranges for `notify` to be called with its exit. Returns the pid.
///
/// The exit goes straight from the reaper thread to `notify`, so a runner waiting on its event
/// channel wakes as soon as the child is reaped: there is no polling between one process of a
/// task ending and the next one starting.
pub(crate) fn spawn(cmd: &mut Command, notify: Notify) -> io::Result<u32> {
    let r = reaper();
    let mut reg = r.waiters.lock().unwrap_or_else(|e| e.into_inner());
    let child = cmd.spawn()?;
    let pid = child.id();
    // Dropping the `Child` neither waits for nor kills it; the reaper owns its exit now.
    drop(child);
    reg.by_pid.insert(pid as i32, notify);
    reg.generation += 1;
    drop(reg);
    r.spawned.notify_all();
    Ok(pid)
}

fn reap_forever(r: &Reaper) {
    loop {
        let generation = r
            .waiters
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .generation;
        // Peek first without reaping: a child whose spawn is still in progress is then reaped
        // only after its pid is registered (or by std itself, when its exec failed).
        match waitid(Id::All, WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT) {
            Ok(status) => {
                let Some(pid) = status.pid() else { continue };
                let mut reg = r.waiters.lock().unwrap_or_else(|e| e.into_inner());
                let exit = match waitpid(pid, Some(WaitPidFlag::WNOHANG)) {
                    Ok(WaitStatus::Exited(_, code)) => Exit::Code(code),
                    Ok(WaitStatus::Signaled(_, sig, _)) => Exit::Signal(sig as i32),
                    Ok(_) | Err(_) => continue,
                };
                let notify = reg.by_pid.remove(&pid.as_raw());
                drop(reg);
                if let Some(notify) = notify {
                    notify(Exited {
                        pid: pid.as_raw() as u32,
                        exit,
                    });
                }
            }
            Err(Errno::EINTR) => {}
            Err(Errno::ECHILD) => {
                let reg = r.waiters.lock().unwrap_or_else(|e| e.into_inner());
                if reg.generation == generation {
                    // Re-parented orphans do not bump the generation, hence the timeout.
                    let _ = r.spawned.wait_timeout(reg, Duration::from_secs(1));
                }
            }
            Err(e) => {
                tracing::error!("waiting for child processes failed: {e}");
                std::thread::sleep(Duration::from_secs(1));
            }
        }
    }
}

/// The Unix identity a child switches to before it runs the command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Identity {
    pub(crate) uid: u32,
    pub(crate) gid: u32,
    /// Supplementary groups.
    pub(crate) groups: Vec<u32>,
}

/// Makes the child the leader of a new process group, so that the runner can tell its
/// processes (and their descendants) from everything else, and switches it to `identity`
/// (supplementary groups, then group, then user) when given. The standard library resets the
/// child's signal mask and dispositions in either case.
///
/// Without an identity no code runs between fork and exec, so the standard library spawns with
/// `posix_spawn` (a `vfork`-style clone that does not copy the runner's page tables), which is
/// what keeps a process start cheap in an executor with hundreds of tasks.
pub(crate) fn prepare_child(cmd: &mut Command, identity: Option<Identity>) {
    cmd.process_group(0);
    let Some(id) = identity else { return };
    #[expect(
        unsafe_code,
        reason = "the setuid family must run in the child between fork and exec"
    )]
    // SAFETY: the closure only calls setgroups(2), setgid(2) and setuid(2), which are
    // async-signal-safe; it allocates nothing (the group list was built before the fork) and
    // touches no lock, as required after fork in a threaded process.
    unsafe {
        cmd.pre_exec(move || {
            if libc::setgroups(id.groups.len(), id.groups.as_ptr()) != 0
                || libc::setgid(id.gid) != 0
                || libc::setuid(id.uid) != 0
            {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// The pid of this process, as a `Pid`.
pub(crate) fn own_pid() -> Pid {
    nix::unistd::getpid()
}
