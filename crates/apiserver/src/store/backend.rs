//! The small interface between the log-structured logic and a storage engine.
//!
//! A backend is split in two: one `LogWriter`, owned by the writer thread and the
//! only thing that ever writes, and a shareable `LogReader` that answers reads
//! from a consistent snapshot without taking the writer's lock.

use bytes::Bytes;

use super::error::Result;
use super::types::{Event, KeyRange, KeyValue, ListRequest, ListResponse, Revision};

/// The precondition of one write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum WriteKind {
    Create,
    Update { expected: Revision },
    Delete { expected: Option<Revision> },
}

/// One write of a group commit.
#[derive(Clone, Debug)]
pub(crate) struct WriteOp {
    pub key: String,
    /// Ignored by deletes.
    pub value: Bytes,
    pub kind: WriteKind,
}

/// What a backend holds when it is opened.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Recovered {
    pub revision: Revision,
    pub compacted: Revision,
}

pub(crate) trait LogWriter: Send + 'static {
    /// Applies `ops` in order in one durable transaction. Each op's precondition
    /// is checked against the state left by the ops before it; the ops that pass
    /// take consecutive revisions from `first`. The i-th result answers `ops[i]`.
    /// An `Err` means the whole batch was rolled back.
    fn append(&mut self, ops: &[WriteOp], first: Revision) -> Result<Vec<Result<Event>>>;

    /// Drops the history that no read at or after `to` can need, and records `to`
    /// as the compacted revision. `from` is the previous compacted revision.
    fn compact(&mut self, from: Revision, to: Revision) -> Result<()>;

    /// What makes committed batches durable when `append` alone does not: the
    /// writer then acknowledges a batch only after a `Durability::sync` that
    /// began after the batch was committed. `None` (the default) when `append`
    /// is enough. Taken once, when the writer starts.
    fn durability(&mut self) -> Option<Box<dyn Durability>> {
        None
    }
}

/// Makes every batch that `LogWriter::append` has returned so far durable. It
/// runs on its own thread, concurrently with later `append`s.
pub(crate) trait Durability: Send + 'static {
    fn sync(&mut self) -> std::io::Result<()>;
}

pub(crate) trait LogReader: Send + Sync + 'static {
    /// Whether reads do I/O and so belong on tokio's blocking pool.
    fn blocking(&self) -> bool;

    fn get(&self, key: &str) -> Result<Option<KeyValue>>;

    fn list(&self, req: &ListRequest) -> Result<ListResponse>;

    /// Up to `limit` events with revisions in `(after, upto]` for keys in
    /// `range`, in revision order; `Err(Compacted)` if `after` is older than the
    /// compacted revision.
    fn events(
        &self,
        range: &KeyRange,
        after: Revision,
        upto: Revision,
        limit: usize,
    ) -> Result<Vec<Event>>;
}
