//! The store's error type.

use std::path::PathBuf;
use std::sync::Arc;

use super::types::Revision;

/// Result alias for store operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why a store operation failed. Sources are behind `Arc` so that one failed group
/// commit can answer every request of its batch with the same error.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// `create` of a key that exists.
    #[error("key {key:?} already exists")]
    AlreadyExists {
        /// The key.
        key: String,
    },
    /// `update` or `delete` of a key that does not exist.
    #[error("key {key:?} not found")]
    NotFound {
        /// The key.
        key: String,
    },
    /// The key's current revision is not the one the write expected.
    #[error("key {key:?} was modified: expected revision {expected}, current revision {current}")]
    Conflict {
        /// The key.
        key: String,
        /// The `mod_revision` the caller expected.
        expected: Revision,
        /// The key's actual `mod_revision`.
        current: Revision,
    },
    /// The requested revision is older than the compacted revision: its history is
    /// gone, so the caller must relist (HTTP 410 Gone).
    #[error("revision {requested} has been compacted (history kept from revision {compacted})")]
    Compacted {
        /// The revision asked for.
        requested: Revision,
        /// The store's compacted revision.
        compacted: Revision,
    },
    /// The requested revision is newer than the store's current revision.
    #[error("revision {requested} is newer than the current revision {current}")]
    FutureRevision {
        /// The revision asked for.
        requested: Revision,
        /// The store's current revision.
        current: Revision,
    },
    /// The key cannot be stored (empty).
    #[error("invalid key {key:?}: {reason}")]
    InvalidKey {
        /// The key.
        key: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The watcher did not consume its events fast enough: its buffer of
    /// `capacity` events filled up and the watch was ended so that writers never
    /// wait for it. Everything before this error was delivered; the caller must
    /// relist and watch again from the list's revision.
    #[error("watch fell {capacity} events behind and was ended; relist and watch again")]
    WatchOverflow {
        /// The watch buffer size (`StoreOptions::watch_buffer`).
        capacity: usize,
    },
    /// The SQLite database could not be opened or prepared.
    #[error("opening the store at {path} failed while {step}")]
    Open {
        /// The database file.
        path: PathBuf,
        /// What was being done.
        step: &'static str,
        /// The SQLite error.
        #[source]
        source: Arc<rusqlite::Error>,
    },
    /// A file beside the database (its `-wal` file, its directory) could not
    /// be opened or flushed while opening the store.
    #[error("opening the store failed while {step} ({path})")]
    OpenFile {
        /// The file or directory.
        path: PathBuf,
        /// What was being done.
        step: &'static str,
        /// The I/O error.
        #[source]
        source: Arc<std::io::Error>,
    },
    /// Another store holds the database (another API server on the same data
    /// directory, or a store of this process that has not finished closing).
    #[error("the store at {path} is locked by another process or store")]
    Locked {
        /// The lock file.
        path: PathBuf,
    },
    /// The lock file could not be opened or locked.
    #[error("locking the store with {path} failed")]
    Lock {
        /// The lock file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: Arc<std::io::Error>,
    },
    /// A SQLite statement failed; a failed write batch was rolled back and none
    /// of its writes is acknowledged.
    #[error("storage failed while {step}")]
    Storage {
        /// What was being done.
        step: &'static str,
        /// The SQLite error.
        #[source]
        source: Arc<rusqlite::Error>,
    },
    /// Flushing committed writes to disk failed. The writes it covered are
    /// not acknowledged and may or may not have been applied (they may be
    /// readable now and gone after a power loss); the store accepts no more
    /// writes, since a retried flush cannot prove the earlier data reached the
    /// disk. Restart the server on the same data directory.
    #[error("flushing committed writes to disk failed; the store accepts no more writes")]
    Sync {
        /// The I/O error of the flush.
        #[source]
        source: Arc<std::io::Error>,
    },
    /// The store's writer thread could not be started (the system is out of
    /// threads or memory).
    #[error("cannot start the store's writer thread")]
    Spawn {
        /// The I/O error of the spawn.
        #[source]
        source: Arc<std::io::Error>,
    },
    /// A stored row does not have the shape the store writes.
    #[error("corrupt store: {detail}")]
    Corrupt {
        /// What is wrong.
        detail: String,
    },
    /// A blocking read task panicked or was cancelled.
    #[error("read task failed")]
    ReadTask {
        /// The join error.
        #[source]
        source: Arc<tokio::task::JoinError>,
    },
    /// The store's writer has stopped (every handle was dropped while the
    /// operation was queued).
    #[error("the store has shut down")]
    Closed,
}

/// Maps a rusqlite error to `Error::Storage` for `step`.
pub(crate) fn storage(step: &'static str) -> impl FnOnce(rusqlite::Error) -> Error {
    move |source| Error::Storage {
        step,
        source: Arc::new(source),
    }
}
