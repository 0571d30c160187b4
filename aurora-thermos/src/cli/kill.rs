//! `thermos kill`: ends running tasks gracefully.

use std::path::Path;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill as send_signal};
use nix::unistd::Pid;

use super::{CommandError, FoundTask, Output, find_tasks, matches};
use crate::layout::TaskLayout;
use crate::observe::TaskView;
use crate::runner::{RunOptions, TaskRunner};
use crate::state::TaskState;
use crate::tree::is_alive;

/// How long `kill` waits, beyond the grace period, for a runner to record the end of its task.
const RUNNER_SLACK: Duration = Duration::from_secs(30);
/// How often `kill` reads the checkpoint of a task its runner is killing.
const POLL: Duration = Duration::from_millis(50);

/// `thermos kill`: kills the running tasks under `root` whose ids match any of `patterns`,
/// with `grace` between SIGTERM and SIGKILL. A task whose runner (`thermos run`) is alive is
/// killed by it, through SIGTERM to the runner; a task without a runner is taken over and
/// killed here. A task whose runner is a live `aurora-executor` is left alone: the scheduler
/// kills it. Returns whether every matching task ended.
pub fn kill(
    root: &Path,
    patterns: &[String],
    grace: Duration,
    output: &mut Output<'_>,
) -> Result<bool, CommandError> {
    let mut any = false;
    let mut all_ended = true;
    for found in find_tasks(root, None) {
        if !patterns.iter().any(|p| matches(p, &found.task_id)) {
            continue;
        }
        let Ok(view) = &found.view else { continue };
        if view.is_terminal() {
            continue;
        }
        any = true;
        let ended = kill_one(&found, view, grace, output);
        match ended {
            Some(state) => writeln!(output.out, "{}: {state}", found.task_id)?,
            None => {
                writeln!(output.out, "{}: still running", found.task_id)?;
                all_ended = false;
            }
        }
    }
    if !any {
        return Err(CommandError::NothingToKill(patterns.to_vec()));
    }
    Ok(all_ended)
}

/// Kills one task; returns its final state, or `None` if it is still running.
fn kill_one(
    found: &FoundTask,
    view: &TaskView,
    grace: Duration,
    output: &mut Output<'_>,
) -> Option<TaskState> {
    let id = &found.task_id;
    let runner = view
        .runner_pid
        .filter(|&p| p != std::process::id() && is_alive(p));
    match (runner, found.layout) {
        (Some(pid), TaskLayout::Executor) => {
            output.note(format_args!(
                "task {id} is run by aurora-executor (pid {pid}); kill it through the scheduler (aurora kill JOB_KEY)"
            ));
            None
        }
        (Some(pid), _) => {
            // The runner turns SIGTERM into a graceful kill of its task.
            output.note(format_args!("asking runner {pid} of {id} to kill it"));
            if let Err(e) = send_signal(Pid::from_raw(pid as i32), Signal::SIGTERM) {
                output.note(format_args!("cannot signal runner {pid} of {id}: {e}"));
                return None;
            }
            let until = Instant::now() + grace + RUNNER_SLACK;
            loop {
                let state = TaskView::load(&found.checkpoint)
                    .ok()
                    .and_then(|v| v.state)
                    .filter(|s| s.is_terminal());
                if state.is_some() || Instant::now() >= until {
                    return state;
                }
                // Another process writes the checkpoint; reading it again is all there is.
                std::thread::sleep(POLL);
            }
        }
        (None, _) => match TaskRunner::recover(&found.checkpoint, RunOptions::default()) {
            // No runner: take the task over and kill it here.
            Ok(h) => {
                h.kill(grace);
                Some(h.wait().state)
            }
            Err(e) => {
                output.note(format_args!("cannot kill {id}: {e}"));
                None
            }
        },
    }
}
