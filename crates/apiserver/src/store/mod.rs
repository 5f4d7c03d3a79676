//! The API server's storage: a revisioned, log-structured key-value store cut
//! like kine (etcd's data model over SQL).
//!
//! Every write appends to one global log and takes the next revision; the
//! revision is what Kubernetes calls `resourceVersion`. Reads see the current
//! state or the state at any revision not yet compacted; watches replay the log
//! from a revision and then follow live writes.
//!
//! ```text
//!   Store  (async API: get / list / create / update / delete / watch / compact)
//!     |  writes: queued on a channel          reads: straight to a LogReader
//!     v                                          (snapshot, never blocks writes)
//!   writer thread: group commit            syncer thread (SQLite only)
//!     |  one transaction per batch,  ------>  one fdatasync of the -wal file per
//!     |  preconditions checked in     batch   run of committed batches, then, in
//!     |  queue order; commits N+1     N       order, their events --> Hub --> Watch, ..
//!     |  while N is being flushed             and their answers      (bounded channel
//!     v                                                               per watch)
//!   LogWriter / LogReader   (backend.rs: the small interface to a storage engine)
//!     |-- memory.rs: BTreeMap (current) + VecDeque (log), values shared; the
//!     |              writer publishes and answers right after each batch
//!     '-- sqlite.rs: WAL, synchronous=NORMAL + WalSync; log table with
//!                    UNIQUE(name, prev_revision) plus a current-state table;
//!                    a pool of read connections
//! ```
//!
//! Guarantees:
//! - A write is acknowledged, and its event published to watches, only after
//!   its transaction is durable: SQLite commits with `synchronous=NORMAL` (no
//!   fsync in the commit) and the syncer thread answers a batch only after an
//!   fdatasync of the `-wal` file that began after the batch committed; one
//!   such flush covers every batch committed before it, and the writer commits
//!   the next batch meanwhile (pipelining, as etcd does). Neither a SIGKILL
//!   nor a power loss loses an acknowledged write, and after reopening
//!   revisions continue above the last one. If a flush fails, the writes it
//!   covered and every later one fail with `Error::Sync` (outcome unknown),
//!   the watches end, and the store takes no more writes.
//! - Reads (get, list) use their own connections and may see a
//!   write that is committed but not yet flushed, a few milliseconds before it
//!   is acknowledged; etcd never shows such a write. It matters only if the
//!   machine loses power (or the flush fails) in that window: the write can
//!   then vanish although a reader saw it, as an unanswered write to etcd may
//!   or may not have been applied. `current_revision` and watches only cover
//!   flushed writes, so a list's revision may briefly be above
//!   `current_revision`; a watch from it still starts there.
//! - Watches see every change under their prefix after their start revision,
//!   once, in revision order. A watch that falls `StoreOptions::watch_buffer`
//!   events behind ends with `Error::WatchOverflow` instead of slowing writers
//!   down; the caller relists.
//! - Compaction keeps the state at every revision `>=` the compacted revision;
//!   older revisions answer `Error::Compacted` (HTTP 410 Gone).
//!
//! Reads of a SQLite store run on tokio's blocking pool, so the async methods
//! must run inside a tokio runtime.
//!
//! Using it from the API server:
//! - `resourceVersion` is `KeyValue::mod_revision` for an object and
//!   `ListResponse::revision` for a list; a `continue` token needs the last key
//!   and that revision (`ListRequest::start_after` + `ListRequest::at`), and
//!   `remainingItemCount` is `ListResponse::remaining`.
//! - Errors map to statuses: `NotFound` 404, `AlreadyExists` 409,
//!   `Conflict` 409 (reason Conflict), `Compacted` 410 Gone (the client
//!   relists), `FutureRevision` 504 "Too large resource version",
//!   `WatchOverflow` ends the watch (the client relists).
//! - A bookmark may carry `Watch::progress()`: every event up to that revision
//!   has been delivered by that watch.
//! - `Store::spawn_compactor` runs compaction by `StoreOptions::compaction`;
//!   tests call `Store::compact` directly instead.
//! - One SQLite file has one store: a second `open_sqlite` of the same file
//!   (another server on the same data directory) fails with `Error::Locked`.

mod backend;
mod compactor;
mod error;
mod memory;
mod sqlite;
mod syncer;
mod types;
mod watch;
mod writer;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::mpsc;

pub use compactor::{CompactionPolicy, CompactionWindow};
pub use error::{Error, Result};
pub use types::{Event, KeyValue, ListRequest, ListResponse, Revision};
pub use watch::Watch;

use backend::{LogReader, LogWriter, Recovered, WriteKind, WriteOp};
use watch::Hub;
use writer::{BatchLimits, Request};

/// Tuning of a store. Build it with `StoreOptions { field: .., ..Default::default() }`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreOptions {
    /// How many events a watch may have buffered before it is ended with
    /// `Error::WatchOverflow`.
    pub watch_buffer: usize,
    /// The most writes one group commit takes.
    pub max_batch_ops: usize,
    /// A group commit stops taking writes once their values reach this size.
    pub max_batch_bytes: usize,
    /// Group commit: how long the writer may wait for more writes when fewer
    /// are queued than its previous batch held (0 disables the wait). Memory
    /// stores, which have no fsync to share, never wait.
    pub group_commit_linger: Duration,
    /// How many write requests may wait for the writer before callers wait to
    /// queue (backpressure).
    pub queue_depth: usize,
    /// How many idle read connections a SQLite store keeps.
    pub read_connections: usize,
    /// What `Store::spawn_compactor` keeps, and how often it runs.
    pub compaction: CompactionPolicy,
    /// How long `open_sqlite` waits for another store to release the database
    /// (a previous store of this process still closing, or another process)
    /// before failing with `Error::Locked`.
    pub lock_wait: Duration,
    /// Revisions per compaction step: a long compaction is cut into steps so that
    /// writes queued meanwhile are not held up for long.
    pub compaction_step: i64,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            watch_buffer: 4096,
            max_batch_ops: 512,
            max_batch_bytes: 16 << 20,
            group_commit_linger: Duration::from_micros(500),
            queue_depth: 4096,
            read_connections: 4,
            compaction: CompactionPolicy::default(),
            compaction_step: 10_000,
            lock_wait: Duration::from_secs(5),
        }
    }
}

/// A handle to a store; clones share it. The store shuts down (its writer thread
/// stops and its watches end) when the last handle is dropped.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    requests: mpsc::Sender<Request>,
    reader: Arc<dyn LogReader>,
    hub: Arc<Hub>,
    options: StoreOptions,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("revision", &self.current_revision())
            .field("compacted", &self.compacted_revision())
            .finish_non_exhaustive()
    }
}

impl Store {
    /// An empty store that lives in this process only.
    pub fn in_memory(options: StoreOptions) -> Result<Store> {
        let (writer, reader) = memory::open();
        let options = StoreOptions {
            group_commit_linger: Duration::ZERO,
            ..options
        };
        Store::start(
            Box::new(writer),
            Arc::new(reader),
            Recovered::default(),
            options,
        )
    }

    /// Opens the SQLite store at `path`, creating it if needed (WAL mode; a
    /// write is answered once flushed to disk, see the module documentation).
    /// Revisions continue above the last one stored.
    pub fn open_sqlite(path: &Path, options: StoreOptions) -> Result<Store> {
        let (writer, reader, recovered) =
            sqlite::open(path, options.read_connections, options.lock_wait)?;
        Store::start(Box::new(writer), Arc::new(reader), recovered, options)
    }

    fn start(
        writer: Box<dyn LogWriter>,
        reader: Arc<dyn LogReader>,
        recovered: Recovered,
        options: StoreOptions,
    ) -> Result<Store> {
        let hub = Arc::new(Hub::new(recovered.revision, recovered.compacted));
        let (requests, rx) = mpsc::channel(options.queue_depth.max(1));
        let limits = BatchLimits {
            max_ops: options.max_batch_ops.max(1),
            max_bytes: options.max_batch_bytes.max(1),
            linger: options.group_commit_linger,
        };
        let mut writer = writer;
        let durability = writer.durability();
        writer::spawn(writer, durability, rx, hub.clone(), limits).map_err(|e| Error::Spawn {
            source: Arc::new(e),
        })?;
        Ok(Store {
            inner: Arc::new(Inner {
                requests,
                reader,
                hub,
                options,
            }),
        })
    }

    /// The revision of the last acknowledged write (0 for an empty store).
    pub fn current_revision(&self) -> Revision {
        self.inner.hub.published()
    }

    /// The revision history is kept from: lists and watches at older revisions
    /// fail with `Error::Compacted`.
    pub fn compacted_revision(&self) -> Revision {
        self.inner.hub.compacted()
    }

    /// The options the store was opened with.
    pub fn options(&self) -> &StoreOptions {
        &self.inner.options
    }

    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&dyn LogReader) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let reader = self.inner.reader.clone();
        if reader.blocking() {
            tokio::task::spawn_blocking(move || f(reader.as_ref()))
                .await
                .map_err(|e| Error::ReadTask {
                    source: Arc::new(e),
                })?
        } else {
            f(reader.as_ref())
        }
    }

    /// The current value of `key`.
    pub async fn get(&self, key: &str) -> Result<Option<KeyValue>> {
        let key = key.to_owned();
        self.read(move |r| r.get(&key)).await
    }

    /// One page of the keys under `req.prefix`, in key order, after
    /// `req.start_after`, as of `req.at` (see `ListRequest`).
    pub async fn list(&self, req: ListRequest) -> Result<ListResponse> {
        self.read(move |r| r.list(&req)).await
    }

    async fn write(&self, key: &str, value: Bytes, kind: WriteKind) -> Result<KeyValue> {
        if key.is_empty() {
            return Err(Error::InvalidKey {
                key: key.to_owned(),
                reason: "keys must not be empty",
            });
        }
        let op = WriteOp {
            key: key.to_owned(),
            value,
            kind,
        };
        writer::call(&self.inner.requests, |reply| Request::Write { op, reply }).await
    }

    /// Creates `key`; `Err(AlreadyExists)` if it exists.
    pub async fn create(&self, key: &str, value: Bytes) -> Result<KeyValue> {
        self.write(key, value, WriteKind::Create).await
    }

    /// Replaces the value of `key` if its `mod_revision` is still
    /// `expected_mod_revision`: `Err(Conflict)` if not, `Err(NotFound)` if the
    /// key does not exist.
    pub async fn update(
        &self,
        key: &str,
        value: Bytes,
        expected_mod_revision: Revision,
    ) -> Result<KeyValue> {
        self.write(
            key,
            value,
            WriteKind::Update {
                expected: expected_mod_revision,
            },
        )
        .await
    }

    /// Deletes `key`, if its `mod_revision` is `expected_mod_revision` when one
    /// is given. Returns the deleted value with `mod_revision` set to the
    /// revision of the deletion. `Err(Conflict)` / `Err(NotFound)` as `update`.
    pub async fn delete(
        &self,
        key: &str,
        expected_mod_revision: Option<Revision>,
    ) -> Result<KeyValue> {
        self.write(
            key,
            Bytes::new(),
            WriteKind::Delete {
                expected: expected_mod_revision,
            },
        )
        .await
    }

    /// Watches the keys under `prefix` for changes with revisions `> after`:
    /// the history from the log first, then live events (see `Watch`).
    /// `Err(Compacted)` if `after` is older than the compacted revision. `after`
    /// may be newer than the current revision; the watch then starts there.
    pub fn watch(&self, prefix: &str, after: Revision) -> Result<Watch> {
        self.inner.hub.watch(
            self.inner.reader.clone(),
            prefix,
            after,
            self.inner.options.watch_buffer,
        )
    }

    /// Drops the history that no read at a revision `>= up_to` needs; lists and
    /// watches at older revisions then fail with `Err(Compacted)`. A no-op if
    /// `up_to` is not above the compacted revision; `Err(FutureRevision)` if it
    /// is above the current revision.
    pub async fn compact(&self, up_to: Revision) -> Result<()> {
        let current = self.current_revision();
        if up_to > current {
            return Err(Error::FutureRevision {
                requested: up_to,
                current,
            });
        }
        let step = self.inner.options.compaction_step.max(1);
        let mut from = self.compacted_revision();
        while from < up_to {
            let to = from.saturating_add(step).min(up_to);
            writer::call(&self.inner.requests, |reply| Request::Compact { to, reply }).await?;
            from = to;
        }
        Ok(())
    }

    /// Starts the background compactor on the current tokio runtime: every
    /// `options.compaction.interval` it compacts to what the window allows. It
    /// stops when the store is dropped (or when the handle is aborted).
    pub fn spawn_compactor(&self) -> tokio::task::JoinHandle<()> {
        tokio::spawn(compactor::run(
            Arc::downgrade(&self.inner),
            self.inner.options.compaction,
        ))
    }
}
