//! `thermos gc`: removes what finished tasks left behind.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use super::{CommandError, Output};
use crate::layout::TaskLayout;
use crate::observe::TaskView;
use crate::sampler::directory_size;

/// Which finished tasks `gc` removes; a task goes when any limit says so.
#[derive(Debug, Clone, Default)]
pub struct GcOptions {
    /// Remove tasks that ended more than this many seconds ago.
    pub max_age_secs: Option<u64>,
    /// Keep at most this many finished tasks (the newest).
    pub max_tasks: Option<usize>,
    /// Remove the oldest finished tasks until their sandboxes take at most this many bytes.
    pub max_space: Option<u64>,
    /// Keep the sandboxes; remove only checkpoints.
    pub keep_data: bool,
    /// Say what would be removed without removing it.
    pub dry_run: bool,
}

/// `thermos gc`: removes the sandboxes and checkpoints of the finished tasks of `thermos`'s
/// layout under `root` that `options` select. An executor's tasks are the executor's to
/// remove, so its layout is left alone.
pub fn gc(root: &Path, options: &GcOptions, output: &mut Output<'_>) -> Result<(), CommandError> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    // Finished tasks, newest first.
    let mut done: Vec<(String, PathBuf, TaskView, u64)> = TaskLayout::Thermos
        .find(root)
        .into_iter()
        .filter_map(|(id, path)| {
            let view = TaskView::load(&path).ok().filter(TaskView::is_terminal)?;
            let size = directory_size(&view.sandbox);
            Some((id, path, view, size))
        })
        .collect();
    done.sort_by_key(|(_, _, v, _)| std::cmp::Reverse(v.state_since_ms));
    let mut kept_space = 0u64;
    let mut kept = 0usize;
    for (id, path, view, size) in done {
        let age_ms = now - view.state_since_ms;
        let too_old = options
            .max_age_secs
            // Saturating: a huge limit keeps every task rather than wrapping to a negative age.
            .is_some_and(|a| age_ms > i64::try_from(a).unwrap_or(i64::MAX).saturating_mul(1000));
        let too_many = options.max_tasks.is_some_and(|m| kept >= m);
        let too_big = options
            .max_space
            .is_some_and(|m| kept_space.saturating_add(size) > m);
        if !(too_old || too_many || too_big) {
            kept += 1;
            kept_space = kept_space.saturating_add(size);
            continue;
        }
        let verb = if options.dry_run {
            "would remove"
        } else {
            "removing"
        };
        writeln!(output.out, "{verb} {id} ({size} bytes)")?;
        if options.dry_run {
            continue;
        }
        if !options.keep_data
            && view.sandbox.is_dir()
            && let Err(e) = std::fs::remove_dir_all(&view.sandbox)
        {
            output.note(format_args!(
                "cannot remove {}: {e}",
                view.sandbox.display()
            ));
        }
        if let Some(dir) = path.parent()
            && let Err(e) = std::fs::remove_dir_all(dir)
        {
            output.note(format_args!("cannot remove {}: {e}", dir.display()));
        }
    }
    Ok(())
}
