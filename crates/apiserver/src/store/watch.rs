//! Watch fan-out: the hub the writer publishes committed events to, and the
//! `Watch` stream a caller reads.
//!
//! A watch is registered under the hub's lock, which the writer also holds while
//! it publishes a batch and advances the published revision. So at registration
//! the watch learns a revision `upto` such that every event `<= upto` is already
//! committed (it reads those from the log, page by page) and every event
//! `> upto` will arrive on its channel: history then live, no gap, and events
//! at or below the last delivered revision are skipped, so no duplicate.
//!
//! Each watch has its own bounded channel. The writer only ever `try_send`s: a
//! full channel ends that watch with `Error::WatchOverflow` (after the events
//! already buffered), and neither the writer nor other watchers ever wait.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, ready};

use futures::Stream;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::backend::LogReader;
use super::error::{Error, Result};
use super::types::{Event, KeyRange, Revision};

/// How many history events a watch reads from the log at a time.
const HISTORY_PAGE: usize = 512;

struct Subscriber {
    range: KeyRange,
    tx: mpsc::Sender<Arc<Event>>,
    overflowed: Arc<AtomicBool>,
}

#[derive(Default)]
struct Subscribers {
    list: Vec<Subscriber>,
    closed: bool,
}

/// The revisions everyone may read, and the live watchers.
pub(crate) struct Hub {
    subscribers: Mutex<Subscribers>,
    published: AtomicI64,
    compacted: AtomicI64,
}

impl Hub {
    pub fn new(revision: Revision, compacted: Revision) -> Self {
        Hub {
            subscribers: Mutex::default(),
            published: AtomicI64::new(revision),
            compacted: AtomicI64::new(compacted),
        }
    }

    // Nothing under this lock can panic halfway through a change that matters:
    // a poisoned lock is used as it is.
    fn lock(&self) -> MutexGuard<'_, Subscribers> {
        self.subscribers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The revision of the last write that was committed and published.
    pub fn published(&self) -> Revision {
        self.published.load(Ordering::Acquire)
    }

    pub fn compacted(&self) -> Revision {
        self.compacted.load(Ordering::Acquire)
    }

    pub fn set_compacted(&self, revision: Revision) {
        self.compacted.fetch_max(revision, Ordering::AcqRel);
    }

    /// Hands committed events to the watchers whose range holds their key, then
    /// makes `revision` the published revision.
    pub fn publish(&self, events: Vec<Event>, revision: Revision) {
        let mut subs = self.lock();
        if !subs.list.is_empty() {
            let mut dropped = vec![false; subs.list.len()];
            for event in events {
                let event = Arc::new(event);
                for (sub, dropped) in subs.list.iter().zip(dropped.iter_mut()) {
                    if *dropped || !sub.range.contains(event.key()) {
                        continue;
                    }
                    match sub.tx.try_send(event.clone()) {
                        Ok(()) => {}
                        Err(mpsc::error::TrySendError::Full(_)) => {
                            sub.overflowed.store(true, Ordering::Release);
                            *dropped = true;
                        }
                        Err(mpsc::error::TrySendError::Closed(_)) => *dropped = true,
                    }
                }
            }
            let mut dropped = dropped.into_iter();
            subs.list
                .retain(|sub| !dropped.next().unwrap_or(false) && !sub.tx.is_closed());
        }
        // Stored after the sends: a watch that sees this revision and an empty
        // channel has received every event up to it.
        self.published.fetch_max(revision, Ordering::AcqRel);
    }

    /// Ends every watch (the writer stopped).
    pub fn close(&self) {
        let mut subs = self.lock();
        subs.closed = true;
        subs.list.clear();
    }

    pub fn watch(
        self: &Arc<Self>,
        reader: Arc<dyn LogReader>,
        prefix: &str,
        after: Revision,
        buffer: usize,
    ) -> Result<Watch> {
        let capacity = buffer.max(1);
        let range = KeyRange::prefix(prefix);
        let (tx, rx) = mpsc::channel(capacity);
        let overflowed = Arc::new(AtomicBool::new(false));
        let mut subs = self.lock();
        if subs.closed {
            return Err(Error::Closed);
        }
        let compacted = self.compacted();
        if after < compacted {
            return Err(Error::Compacted {
                requested: after,
                compacted,
            });
        }
        let upto = self.published();
        subs.list.push(Subscriber {
            range: range.clone(),
            tx,
            overflowed: overflowed.clone(),
        });
        drop(subs);
        let history = (after < upto).then(|| History {
            upto,
            pending: VecDeque::new(),
            fetch: None,
            exhausted: false,
        });
        Ok(Watch {
            range,
            last: after,
            history,
            rx,
            overflowed,
            capacity,
            hub: self.clone(),
            reader,
            done: false,
        })
    }
}

struct History {
    upto: Revision,
    pending: VecDeque<Event>,
    fetch: Option<JoinHandle<Result<Vec<Event>>>>,
    exhausted: bool,
}

/// A stream of the events under a prefix after a revision, in revision order:
/// first the history kept in the log, then live events, with no gap and no
/// duplicate.
///
/// It ends (`None`) when the store shuts down. It yields
/// `Err(Error::WatchOverflow)` and ends when the consumer falls more than
/// `StoreOptions::watch_buffer` events behind: the caller must then relist and
/// watch again from the new list's revision (kube-apiserver's clients see this
/// as the watch closing and relist). A history read that finds the revision
/// compacted meanwhile yields `Err(Error::Compacted)` and ends.
///
/// Reading history from a SQLite store runs on tokio's blocking pool, so a watch
/// must be polled inside a tokio runtime.
pub struct Watch {
    range: KeyRange,
    last: Revision,
    history: Option<History>,
    rx: mpsc::Receiver<Arc<Event>>,
    overflowed: Arc<AtomicBool>,
    capacity: usize,
    hub: Arc<Hub>,
    reader: Arc<dyn LogReader>,
    done: bool,
}

impl std::fmt::Debug for Watch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watch")
            .field("range", &self.range)
            .field("last", &self.last)
            .field("in_history", &self.history.is_some())
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

impl Watch {
    /// The next event; `None` once the watch has ended.
    pub async fn next(&mut self) -> Option<Result<Event>> {
        futures::StreamExt::next(self).await
    }

    /// The revision of the last event this watch delivered (or the revision it
    /// started after).
    pub fn last_revision(&self) -> Revision {
        self.last
    }

    /// A revision up to which this watch has delivered every event, if it has
    /// nothing pending right now: the revision for a bookmark. `None` while it
    /// still replays history or has buffered events.
    pub fn progress(&self) -> Option<Revision> {
        if self.done || self.history.is_some() {
            return None;
        }
        let published = self.hub.published();
        if !self.rx.is_empty() {
            return None;
        }
        Some(published.max(self.last))
    }

    fn poll_history(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Event>>> {
        loop {
            let Some(history) = &mut self.history else {
                return Poll::Ready(None);
            };
            if let Some(event) = history.pending.pop_front() {
                self.last = event.revision();
                return Poll::Ready(Some(Ok(event)));
            }
            if history.exhausted || self.last >= history.upto {
                self.history = None;
                return Poll::Ready(None);
            }
            let fetched = match &mut history.fetch {
                Some(handle) => {
                    let joined = ready!(Pin::new(handle).poll(cx));
                    history.fetch = None;
                    joined.unwrap_or_else(|e| {
                        Err(Error::ReadTask {
                            source: Arc::new(e),
                        })
                    })
                }
                None if self.reader.blocking() => {
                    let reader = self.reader.clone();
                    let range = self.range.clone();
                    let (after, upto) = (self.last, history.upto);
                    history.fetch = Some(tokio::task::spawn_blocking(move || {
                        reader.events(&range, after, upto, HISTORY_PAGE)
                    }));
                    continue;
                }
                None => self
                    .reader
                    .events(&self.range, self.last, history.upto, HISTORY_PAGE),
            };
            match fetched {
                Ok(events) => {
                    history.exhausted = events.len() < HISTORY_PAGE;
                    history.pending = events.into();
                }
                Err(e) => {
                    self.done = true;
                    return Poll::Ready(Some(Err(e)));
                }
            }
        }
    }
}

impl Stream for Watch {
    type Item = Result<Event>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        if this.history.is_some()
            && let Some(item) = ready!(this.poll_history(cx))
        {
            return Poll::Ready(Some(item));
        }
        loop {
            match ready!(this.rx.poll_recv(cx)) {
                Some(event) if event.revision() <= this.last => continue,
                Some(event) => {
                    this.last = event.revision();
                    return Poll::Ready(Some(Ok(Arc::unwrap_or_clone(event))));
                }
                None => {
                    this.done = true;
                    if this.overflowed.load(Ordering::Acquire) {
                        return Poll::Ready(Some(Err(Error::WatchOverflow {
                            capacity: this.capacity,
                        })));
                    }
                    return Poll::Ready(None);
                }
            }
        }
    }
}
