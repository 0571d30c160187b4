//! Turning SIGINT and SIGTERM into a graceful kill of a task, for programs that run one task in
//! the foreground (`thermos run`).

use std::sync::Arc;
use std::time::Duration;

use tokio::signal::unix::{Signal, SignalKind, signal};

use crate::RunnerHandle;

/// Handlers for SIGINT and SIGTERM that turn them into a graceful kill of a task.
///
/// They are signal handlers, not a blocked signal mask: a mask is inherited by every process
/// the runner starts (through `posix_spawn` as through `fork`), so task processes would start
/// with SIGINT and SIGTERM blocked and a graceful kill would never reach them. A handled
/// signal, by contrast, is reset to its default action by `exec`, so task processes start with
/// an empty mask and default dispositions for both, even when `thermos` itself was started
/// with them ignored (e.g. in the background of a non-interactive shell).
#[derive(Debug)]
pub struct TerminationSignals {
    runtime: tokio::runtime::Runtime,
    interrupt: Signal,
    terminate: Signal,
}

impl TerminationSignals {
    /// Installs the handlers. From now on SIGINT and SIGTERM no longer end the process; they
    /// are queued until [`TerminationSignals::kill_on_signal`] acts on them.
    pub fn install() -> Result<TerminationSignals, std::io::Error> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()?;
        let (interrupt, terminate) = {
            let _entered = runtime.enter();
            (
                signal(SignalKind::interrupt())?,
                signal(SignalKind::terminate())?,
            )
        };
        Ok(TerminationSignals {
            runtime,
            interrupt,
            terminate,
        })
    }

    /// Starts a thread that kills the task with `grace` each time SIGINT or SIGTERM arrives.
    pub fn kill_on_signal(
        self,
        handle: Arc<RunnerHandle>,
        grace: Duration,
    ) -> Result<(), std::io::Error> {
        let TerminationSignals {
            runtime,
            mut interrupt,
            mut terminate,
        } = self;
        std::thread::Builder::new()
            .name("thermos-signals".into())
            .spawn(move || {
                runtime.block_on(async {
                    loop {
                        let name = tokio::select! {
                            got = interrupt.recv() => got.map(|()| "SIGINT"),
                            got = terminate.recv() => got.map(|()| "SIGTERM"),
                        };
                        let Some(name) = name else { return };
                        tracing::warn!("received {name}; killing the task");
                        handle.kill(grace);
                    }
                });
            })
            .map(|_| ())
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
