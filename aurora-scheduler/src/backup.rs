//! Backups: a [`Snapshot`] written as one JSON file, taken from a running scheduler
//! (`POST /api/admin/backup`) or from a stopped scheduler's data directory
//! ([`backup_data_dir`]), and restored into a running scheduler (`POST /api/admin/restore`) or
//! a stopped one's data directory ([`restore_data_dir`]).

use std::path::{Path, PathBuf};

use crate::state::State;
use crate::storage::{Snapshot, SqliteStorage, Storage, StorageError};

/// Why a backup or restore failed.
#[derive(Debug, thiserror::Error)]
#[error("backup {path}: {kind}")]
pub struct BackupError {
    /// The backup file (or data directory) involved.
    pub path: PathBuf,
    /// What went wrong.
    pub kind: BackupErrorKind,
}

/// The causes of a [`BackupError`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BackupErrorKind {
    /// The file could not be read or written.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The file is not a backup.
    #[error("not a scheduler backup ({0}); pass a file written by `aurora-scheduler backup`")]
    Format(#[from] serde_json::Error),
    /// The data directory's storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

fn err(path: &Path, kind: impl Into<BackupErrorKind>) -> BackupError {
    BackupError {
        path: path.to_owned(),
        kind: kind.into(),
    }
}

/// Writes a snapshot to `path` atomically (a temporary file renamed into place).
pub(crate) fn write_backup(path: &Path, snapshot: &Snapshot) -> Result<(), BackupError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| err(path, e))?;
    }
    let text = crate::storage::json_exact(snapshot).map_err(|e| err(path, e))?;
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).map_err(|e| err(path, e))?;
    let file = std::fs::File::open(&tmp).map_err(|e| err(path, e))?;
    file.sync_all().map_err(|e| err(path, e))?;
    std::fs::rename(&tmp, path).map_err(|e| err(path, e))
}

/// Reads a backup file.
pub(crate) fn read_backup(path: &Path) -> Result<Snapshot, BackupError> {
    let text = std::fs::read(path).map_err(|e| err(path, e))?;
    serde_json::from_slice(&text).map_err(|e| err(path, e))
}

/// Writes the state of a stopped scheduler's data directory to `out`; returns the last
/// transaction it includes.
///
/// ```
/// let dir = tempfile::tempdir().unwrap();
/// let out = dir.path().join("backup.json");
/// let seq = aurora_scheduler::backup_data_dir(&dir.path().join("data"), &out).unwrap();
/// assert_eq!(seq, 0);
/// assert_eq!(aurora_scheduler::restore_data_dir(&dir.path().join("other"), &out).unwrap(), 1);
/// ```
pub fn backup_data_dir(data_dir: &Path, out: &Path) -> Result<u64, BackupError> {
    let storage = SqliteStorage::open(data_dir).map_err(|e| err(data_dir, e))?;
    let recovered = storage.recover().map_err(|e| err(data_dir, e))?;
    let timestamp_ms = recovered.snapshot.as_ref().map_or(0, |s| s.timestamp_ms);
    let (state, seq) = State::recover(recovered);
    write_backup(
        out,
        &Snapshot {
            seq,
            timestamp_ms,
            state: state.to_snapshot(),
        },
    )?;
    Ok(seq)
}

/// Replaces the state of a stopped scheduler's data directory with the backup at `from`;
/// returns the sequence number the restored state starts at. Stop the scheduler first.
pub fn restore_data_dir(data_dir: &Path, from: &Path) -> Result<u64, BackupError> {
    let backup = read_backup(from)?;
    let storage = SqliteStorage::open(data_dir).map_err(|e| err(data_dir, e))?;
    let (_, last) = State::recover(storage.recover().map_err(|e| err(data_dir, e))?);
    // A snapshot after everything in the log replaces the log altogether.
    let seq = last.max(backup.seq) + 1;
    storage
        .snapshot(&Snapshot {
            seq,
            timestamp_ms: backup.timestamp_ms,
            state: backup.state,
        })
        .map_err(|e| err(data_dir, e))?;
    Ok(seq)
}
