//! The syncer thread: pipelined durability.
//!
//! When the backend's commit does not flush to disk (SQLite with
//! `synchronous=NORMAL`), the writer hands each committed batch here instead
//! of answering it. This thread takes every batch handed over so far, flushes
//! them with one `Durability::sync`, then publishes their events and answers
//! their writes in commit order. Meanwhile the writer already commits the
//! next batches, so the disk flush of batch N overlaps the work of batch N+1
//! (as etcd overlaps its WAL fsync with applying and answering).
//!
//! A batch reaches this thread only after its commit returned, and the flush
//! that covers it begins after it was received: so no write is acknowledged,
//! and no watcher sees its event, before a flush that began after its commit
//! succeeded. If a flush fails, nothing is acknowledged any more: the pending
//! writes and all later ones fail with `Error::Sync` and the watches end
//! (Linux may clear a page's error after reporting it once, so a later
//! successful flush would prove nothing about the failed one).

use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;

use tokio::sync::oneshot;

use super::backend::Durability;
use super::error::{Error, Result};
use super::types::{Event, KeyValue, Revision};
use super::watch::Hub;

/// How many committed batches may wait for a flush before the writer waits:
/// bounds the memory held by answers not yet given.
const MAX_UNSYNCED_BATCHES: usize = 64;

/// One committed batch: its events for the watchers and the answer to each write.
pub(crate) struct Committed {
    pub events: Vec<Event>,
    pub answers: Vec<(oneshot::Sender<Result<KeyValue>>, Result<KeyValue>)>,
}

impl Committed {
    /// Publishes the events, then answers the writes: a caller that reads its
    /// own write's revision from a watch finds it there.
    pub fn deliver(self, hub: &Hub) {
        if let Some(last) = self.events.last() {
            let revision = last.revision();
            hub.publish(self.events, revision);
        }
        for (reply, answer) in self.answers {
            // A caller that gave up waiting still had its write applied.
            let _ = reply.send(answer);
        }
    }

    /// Answers every write of the batch with `error` and publishes nothing.
    pub fn fail(self, error: &Error) {
        for (reply, _) in self.answers {
            let _ = reply.send(Err(error.clone()));
        }
    }
}

pub(crate) struct Syncer {
    tx: SyncSender<Committed>,
    thread: JoinHandle<()>,
    failed: Arc<OnceLock<Error>>,
}

impl Syncer {
    pub fn spawn(durability: Box<dyn Durability>, hub: Arc<Hub>) -> std::io::Result<Syncer> {
        let (tx, rx) = sync_channel(MAX_UNSYNCED_BATCHES);
        let failed = Arc::new(OnceLock::new());
        let thread = {
            let failed = failed.clone();
            std::thread::Builder::new()
                .name("store-syncer".into())
                .spawn(move || run(durability, &rx, &hub, &failed))?
        };
        Ok(Syncer { tx, thread, failed })
    }

    /// Why no more writes can be acknowledged: a flush failed, or this
    /// thread ended.
    pub fn failed(&self) -> Option<&Error> {
        self.failed.get()
    }

    /// Queues a committed batch for the next flush.
    pub fn hand_over(&self, batch: Committed) {
        if let Err(unsent) = self.tx.send(batch) {
            // The thread is gone (it panicked): nothing could flush this batch.
            unsent.0.fail(&Error::Closed);
        }
    }

    /// Flushes and answers every batch handed over, then stops the thread.
    pub fn finish(self) {
        drop(self.tx);
        if self.thread.join().is_err() {
            tracing::error!("store syncer thread panicked");
        }
    }
}

/// Stops the writer from committing more when this thread ends, also by a
/// panic: nothing would flush and answer those writes.
struct RefuseOnExit<'a>(&'a OnceLock<Error>);

impl Drop for RefuseOnExit<'_> {
    fn drop(&mut self) {
        let _ = self.0.set(Error::Closed);
    }
}

fn run(
    mut durability: Box<dyn Durability>,
    rx: &Receiver<Committed>,
    hub: &Hub,
    failed: &OnceLock<Error>,
) {
    let _refuse = RefuseOnExit(failed);
    let mut pending: Vec<Committed> = Vec::new();
    while let Ok(first) = rx.recv() {
        pending.push(first);
        pending.extend(rx.try_iter());
        if failed.get().is_none()
            && let Err(e) = durability.sync()
        {
            tracing::error!(error = %e, "flushing the store's committed writes failed; no more writes are acknowledged");
            let _ = failed.set(Error::Sync {
                source: Arc::new(e),
            });
            // A watch must not wait for events that will never be published.
            hub.close();
        }
        match failed.get() {
            None => pending.drain(..).for_each(|batch| batch.deliver(hub)),
            Some(error) => pending.drain(..).for_each(|batch| batch.fail(error)),
        }
    }
}

/// The revision of the last event of `events`, if any.
pub(crate) fn last_revision(events: &[Event]) -> Option<Revision> {
    events.last().map(Event::revision)
}
