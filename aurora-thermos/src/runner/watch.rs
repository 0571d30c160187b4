//! What watches a running task besides its processes' exits: the HTTP health checker and the
//! resource limits.

use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::time::Duration;

use super::{Event, Run, mib};
use crate::TaskState;
use crate::health::{self, HealthCheckConfig};

impl Run {
    pub(super) fn start_health_checker(&mut self) {
        let Some(&port) = self.ports.get("health") else {
            return;
        };
        let config = self.options.health.clone().unwrap_or_default();
        let (stop, stopped) = channel::<()>();
        let events = self.events.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("thermos-health-{}", self.task_id))
            .spawn(move || health_loop(port, &config, &stopped, &events));
        match spawned {
            Ok(_) => self.health_stop = Some(stop),
            Err(e) => tracing::error!(task = %self.task_id, "cannot start the health checker: {e}"),
        }
    }

    pub(super) fn check_limits(&mut self) {
        if self.state != TaskState::Active || self.failure.is_some() || self.killed {
            return;
        }
        let Some(res) = self.task.resources.clone() else {
            return;
        };
        let over = |what: &str, used: u64, limit: u64| {
            (limit > 0 && used > limit).then(|| {
                format!(
                    "task used {} of {what}, over its {what} limit of {} by {}",
                    mib(used),
                    mib(limit),
                    mib(used - limit)
                )
            })
        };
        let why = over("RAM", self.usage.rss_bytes, res.ram)
            .or_else(|| over("disk", self.usage.disk_bytes.unwrap_or(0), res.disk));
        if let Some(why) = why {
            tracing::warn!(task = %self.task_id, "{why}; killing it");
            self.fail(why);
        }
    }
}

/// Runs health checks until the runner drops `stop`; reports a task that fails too many in a
/// row.
fn health_loop(port: u16, config: &HealthCheckConfig, stop: &Receiver<()>, events: &Sender<Event>) {
    let timeout = health::secs(config.timeout_secs);
    let interval = health::secs(config.interval_secs).max(Duration::from_millis(10));
    let mut wait = health::secs(config.initial_interval_secs);
    let mut failures = 0u32;
    loop {
        match stop.recv_timeout(wait) {
            Err(RecvTimeoutError::Timeout) => {}
            Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
        }
        wait = interval;
        match health::check_once(port, timeout) {
            Ok(()) => failures = 0,
            Err(why) => {
                failures += 1;
                tracing::info!(port, failures, "health check failed: {why}");
                if failures > config.max_consecutive_failures {
                    let _ = events.send(Event::Unhealthy(format!(
                        "{failures} consecutive failure(s) on port {port}, the last: {why}"
                    )));
                    return;
                }
            }
        }
    }
}
