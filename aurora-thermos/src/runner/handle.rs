//! The handle on a running task: its status, a kill, a wait.

use std::sync::mpsc::Sender;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::{Event, TaskStatus};

/// The status a runner publishes and its handles read.
pub(super) struct Shared {
    pub(super) status: Mutex<TaskStatus>,
    pub(super) changed: Condvar,
}

impl Shared {
    pub(super) fn lock(&self) -> MutexGuard<'_, TaskStatus> {
        self.status.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A running task: watch it, kill it, wait for it.
pub struct RunnerHandle {
    pub(super) shared: Arc<Shared>,
    pub(super) events: Mutex<Sender<Event>>,
    pub(super) thread: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for RunnerHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunnerHandle")
            .field("status", &*self.shared.lock())
            .finish()
    }
}

impl RunnerHandle {
    /// The task's current status.
    pub fn status(&self) -> TaskStatus {
        self.shared.lock().clone()
    }

    /// Kills the task: SIGTERM to every process of the task (including descendants that left
    /// its process groups), SIGKILL to whatever still runs after `grace`. The task ends KILLED
    /// unless it had already ended. Returns at once; use [`RunnerHandle::wait`].
    pub fn kill(&self, grace: Duration) {
        let tx = self.events.lock().unwrap_or_else(|e| e.into_inner());
        // The runner may have ended already; then there is nothing to kill.
        let _ = tx.send(Event::Kill(grace));
    }

    /// Waits until the task has ended and returns its final status.
    pub fn wait(&self) -> TaskStatus {
        let status = self.wait_until(|s| s.state.is_terminal(), None);
        if let Some(t) = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = t.join();
        }
        status
    }

    /// Waits until `condition` holds for the status, or `timeout` (if any) passes, and
    /// returns the status at that point. Returns early when the task ends.
    pub fn wait_until(
        &self,
        condition: impl Fn(&TaskStatus) -> bool,
        timeout: Option<Duration>,
    ) -> TaskStatus {
        let deadline = timeout.map(|t| Instant::now() + t);
        let mut status = self.shared.lock();
        loop {
            if condition(&status) || status.state.is_terminal() {
                return status.clone();
            }
            match deadline {
                None => {
                    status = self
                        .shared
                        .changed
                        .wait(status)
                        .unwrap_or_else(|e| e.into_inner());
                }
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        return status.clone();
                    }
                    status = self
                        .shared
                        .changed
                        .wait_timeout(status, d - now)
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
                }
            }
        }
    }
}
