//! Starting a process run: its logs, its `bash -c` script and its spawn.

use std::fs::{self, File};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use super::{DEFAULT_PATH, EXIT_FILE, Event, PREPARE_AHEAD, PreparedLogs, Run};
use crate::ProcessState;
use crate::reaper;
use crate::tree::proc_info;

/// The script `bash -c` runs for a process: an EXIT trap that records the shell's exit status
/// in `exit_file`, then the command line, on the same line so that bash's line numbers in
/// error messages are the command line's own. The trap lets a runner restarted while the
/// process ran learn how it ended, without a wrapper process (see ARCHITECTURE.md, "Thermos").
pub(super) fn process_script(cmdline: &str, exit_file: &Path) -> String {
    let action = format!(
        "builtin printf '%d\\n' \"$?\" >| {}",
        single_quoted(&exit_file.to_string_lossy())
    );
    format!("trap -- {} EXIT; {cmdline}", single_quoted(&action))
}

/// `s` as one single-quoted shell word.
fn single_quoted(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

impl Run {
    pub(super) fn launch(&mut self, i: usize) {
        self.tree_seen_empty = false;
        let spec = self.task.processes[i].clone();
        let run = self.procs[i].runs;
        self.procs[i].runs += 1;
        self.procs[i].pid = None;
        self.procs[i].start_ticks = None;
        self.procs[i].return_code = None;
        if run > 0 {
            // A new run starts from WAITING, as in the original's checkpoints.
            self.set_process_state(i, ProcessState::Waiting);
        }
        // Recorded before the fork: a runner that dies in between finds the shell by its
        // command line, or calls the run LOST.
        self.set_process_state(i, ProcessState::Forked);
        match self.spawn(i, run) {
            Ok(pid) => {
                self.procs[i].pid = Some(pid);
                let start = proc_info(pid as i32).map(|p| p.start);
                self.procs[i].start_ticks = start;
                self.tree.add_root(pid, start);
                tracing::info!(task = %self.task_id, process = %spec.name, run, pid, "process started");
                self.set_process_state(i, ProcessState::Running);
            }
            Err(e) => {
                tracing::error!(task = %self.task_id, process = %spec.name, "cannot start: {e}");
                let p = &mut self.procs[i];
                p.failures += 1;
                p.last_end = Some(Instant::now());
                // A process that cannot even start will not start on a retry either.
                if spec.ephemeral {
                    p.done = true;
                } else {
                    p.failed = true;
                }
                p.why = Some(format!("process {:?} could not be started: {e}", spec.name));
                self.set_process_state(i, ProcessState::Failed);
            }
        }
    }

    /// Creates the log directory and files of run `run` of process `i`: its directory, empty
    /// `stdout` and `stderr`, and an empty `exit_status` for the shell's trap to fill in.
    /// Existing files (a run number reused after a recovery) are emptied.
    pub(super) fn make_logs(&self, i: usize, run: u32) -> std::io::Result<PreparedLogs> {
        let name = &self.task.processes[i].name;
        let process_dir = self.sandbox.join(".logs").join(name);
        let logs = process_dir.join(run.to_string());
        // One mkdir for later runs (the process's directory exists by then); an existing run
        // directory (a run number reused after a recovery) gets fresh files below.
        match fs::create_dir(&logs) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                fs::create_dir_all(&process_dir)?;
                fs::create_dir(&logs)?;
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
        // Made now, opened again (without creating) at the start: holding them open would
        // cost two descriptors per task in an executor with hundreds of tasks. The exit file
        // stays empty until the shell exits: a recovering runner reads no status from it.
        for f in ["stdout", "stderr", EXIT_FILE] {
            File::create(logs.join(f))?;
        }
        if let Some(id) = &self.identity {
            for dir in [self.sandbox.join(".logs"), process_dir, logs.clone()] {
                std::os::unix::fs::chown(&dir, Some(id.uid), Some(id.gid))?;
            }
            for f in ["stdout", "stderr", EXIT_FILE] {
                std::os::unix::fs::chown(logs.join(f), Some(id.uid), Some(id.gid))?;
            }
        }
        Ok(PreparedLogs { run, dir: logs })
    }

    /// Prepares the logs of the runs that may start when a running process ends (their
    /// dependencies are done or running), while the running ones run: on a slow filesystem
    /// the directories and files of a run cost about as much as starting bash, and sequential
    /// processes then do not wait for them.
    pub(super) fn prepare_ahead(&mut self, finals: bool) {
        let mut ready = Vec::new();
        for (i, p) in self.procs.iter().enumerate() {
            if self.prepared.len() + ready.len() >= PREPARE_AHEAD {
                break;
            }
            let spec = &self.task.processes[i];
            if spec.is_final != finals
                || p.done
                || p.failed
                || p.running()
                || self.prepared.contains_key(&i)
                || !p
                    .deps
                    .iter()
                    .all(|&d| self.procs[d].done || self.procs[d].running())
            {
                continue;
            }
            ready.push((i, p.runs));
        }
        for (i, run) in ready {
            match self.make_logs(i, run) {
                Ok(logs) => {
                    self.prepared.insert(i, logs);
                }
                // The launch will try again, and report the error if it persists.
                Err(e) => tracing::debug!(task = %self.task_id, "cannot prepare logs: {e}"),
            }
        }
    }

    /// Removes the logs prepared for runs that never started (the task ended first).
    pub(super) fn discard_prepared(&mut self) {
        for (_, logs) in self.prepared.drain() {
            for f in ["stdout", "stderr", EXIT_FILE] {
                let _ = fs::remove_file(logs.dir.join(f));
            }
            let _ = fs::remove_dir(&logs.dir);
            if logs.run == 0
                && let Some(process_dir) = logs.dir.parent()
            {
                let _ = fs::remove_dir(process_dir);
            }
        }
    }

    pub(super) fn spawn(&mut self, i: usize, run: u32) -> std::io::Result<u32> {
        let logs = match self.prepared.remove(&i) {
            Some(logs) if logs.run == run => logs,
            _ => self.make_logs(i, run)?,
        };
        let cmdline = &self.task.processes[i].cmdline;
        let exit_file = logs.dir.join(EXIT_FILE);
        let stdout = File::create(logs.dir.join("stdout"))?;
        let stderr = File::create(logs.dir.join("stderr"))?;
        let path = std::env::var("PATH").unwrap_or_else(|_| DEFAULT_PATH.to_owned());
        let mut cmd = Command::new("/bin/bash");
        cmd.arg("-c")
            .arg(process_script(cmdline, &exit_file))
            .current_dir(&self.sandbox)
            .env_clear()
            .env("HOME", &self.sandbox)
            .env("USER", &self.user)
            .env("LOGNAME", &self.user)
            .env("PATH", path)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr);
        reaper::prepare_child(&mut cmd, self.identity.clone());
        let events = self.events.clone();
        reaper::spawn(
            &mut cmd,
            Box::new(move |e| {
                // The runner may have ended already; then nobody needs the exit.
                let _ = events.send(Event::Exited(e));
            }),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The script records the exit status in a file whose path needs quoting, keeps the command
    /// line's own line numbers, and leaves `$0` and the positional parameters alone.
    #[test]
    fn the_process_script_records_the_exit_status() {
        let dir = tempfile::tempdir().unwrap();
        let exit_file = dir.path().join("it's a \"run\" $x");
        let check = |cmdline: &str, status: &str, stdout: &str, stderr: &str| {
            let out = Command::new("/bin/bash")
                .arg("-c")
                .arg(process_script(cmdline, &exit_file))
                .output()
                .unwrap();
            assert_eq!(fs::read_to_string(&exit_file).unwrap(), status, "{cmdline}");
            assert_eq!(String::from_utf8_lossy(&out.stdout), stdout, "{cmdline}");
            assert!(
                String::from_utf8_lossy(&out.stderr).contains(stderr),
                "{cmdline}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        check("echo \"$0|$#|$1\"", "0\n", "/bin/bash|0|\n", "");
        check("exit 7", "7\n", "", "");
        check("true\nsh -c 'exit 4'", "4\n", "", "");
        check("false; echo hi", "0\n", "hi\n", "");
        check(
            "echo $LINENO; no-such-command",
            "127\n",
            "1\n",
            "line 1: no-such-command",
        );
    }
}
