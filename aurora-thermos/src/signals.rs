//! Turning SIGINT and SIGTERM into a graceful kill of a task, for programs that run one task in
//! the foreground (`thermos run`).

use std::sync::Arc;
use std::time::Duration;

use nix::sys::signal::{SigSet, Signal};

use crate::RunnerHandle;

/// SIGINT and SIGTERM, blocked in this thread so that a helper thread can wait for them.
#[derive(Debug)]
pub struct TerminationSignals {
    set: SigSet,
}

impl TerminationSignals {
    /// Blocks SIGINT and SIGTERM in the calling thread and in every thread it starts from now
    /// on. Call it first thing in `main`, before any thread is started. Task processes get an
    /// empty signal mask, so they are not affected.
    pub fn block() -> Result<TerminationSignals, std::io::Error> {
        let mut set = SigSet::empty();
        set.add(Signal::SIGINT);
        set.add(Signal::SIGTERM);
        set.thread_block().map_err(std::io::Error::from)?;
        Ok(TerminationSignals { set })
    }

    /// Starts a thread that kills the task with `grace` when SIGINT or SIGTERM arrives.
    pub fn kill_on_signal(self, handle: Arc<RunnerHandle>, grace: Duration) {
        let spawned = std::thread::Builder::new()
            .name("thermos-signals".into())
            .spawn(move || {
                while let Ok(sig) = self.set.wait() {
                    tracing::warn!("received {sig}; killing the task");
                    handle.kill(grace);
                }
            });
        if let Err(e) = spawned {
            tracing::error!("cannot watch for SIGINT and SIGTERM: {e}");
        }
    }
}

/// The task id `thermos` makes up when none is given: `<name>-<YYYYmmdd-HHMMSS>.<micros>` in
/// UTC, as the original does.
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// let t = UNIX_EPOCH + Duration::from_micros(1_700_000_000_123_456);
/// assert_eq!(aurora_thermos::default_task_id("hello", t), "hello-20231114-221320.123456");
/// ```
pub fn default_task_id(name: &str, now: std::time::SystemTime) -> String {
    let d = now
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, day) = civil_from_days(days);
    format!(
        "{name}-{y:04}{m:02}{day:02}-{:02}{:02}{:02}.{:06}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_micros()
    )
}

/// Days since 1970-01-01 to a (year, month, day) date (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}
