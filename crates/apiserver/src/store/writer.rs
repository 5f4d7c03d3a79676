//! The writer thread: group commit.
//!
//! Write requests queue on a channel. The thread takes the first, drains whatever
//! else is queued (up to `max_batch_ops` writes or `max_batch_bytes` of values)
//! and hands the batch to the backend as one transaction. Each write's
//! precondition is checked inside that transaction, in queue order. After the
//! commit the events go to the watch hub and each request gets its answer on its
//! oneshot: at once if the commit itself is durable (or there is no disk), else
//! through the syncer thread (`syncer.rs`), which answers a batch only after a
//! flush that covers it, while this thread commits the next ones.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};

use super::backend::{Durability, LogWriter, WriteOp};
use super::error::{Error, Result};
use super::syncer::{Committed, Syncer, last_revision};
use super::types::{Event, KeyValue, Revision};
use super::watch::Hub;

pub(crate) enum Request {
    Write {
        op: WriteOp,
        reply: oneshot::Sender<Result<KeyValue>>,
    },
    Compact {
        to: Revision,
        reply: oneshot::Sender<Result<()>>,
    },
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct BatchLimits {
    pub max_ops: usize,
    pub max_bytes: usize,
    pub linger: Duration,
}

/// How long the writer sleeps between looks at the queue while it lingers.
const LINGER_POLL: Duration = Duration::from_micros(20);

/// Starts the writer thread, and the syncer thread when `durability` is given
/// (`LogWriter::durability` of `log`, or a test's).
pub(crate) fn spawn(
    log: Box<dyn LogWriter>,
    durability: Option<Box<dyn Durability>>,
    rx: mpsc::Receiver<Request>,
    hub: Arc<Hub>,
    limits: BatchLimits,
) -> std::io::Result<()> {
    let syncer = durability
        .map(|d| Syncer::spawn(d, hub.clone()))
        .transpose()?;
    std::thread::Builder::new()
        .name("store-writer".into())
        .spawn(move || run(log, syncer, rx, &hub, limits))
        .map(drop)
}

/// Ends every watch when the writer stops, also if it stops by a panic: a
/// watch must end rather than wait for events that will never come.
struct CloseOnDrop<'a>(&'a Hub);

impl Drop for CloseOnDrop<'_> {
    fn drop(&mut self) {
        self.0.close();
    }
}

fn run(
    mut log: Box<dyn LogWriter>,
    syncer: Option<Syncer>,
    mut rx: mpsc::Receiver<Request>,
    hub: &Hub,
    limits: BatchLimits,
) {
    let _close = CloseOnDrop(hub);
    batches(log.as_mut(), syncer.as_ref(), &mut rx, hub, limits);
    // Every committed batch is flushed and answered before the backend closes
    // (and before the watches end).
    if let Some(syncer) = syncer {
        syncer.finish();
    }
    drop(log);
}

fn batches(
    log: &mut dyn LogWriter,
    syncer: Option<&Syncer>,
    rx: &mut mpsc::Receiver<Request>,
    hub: &Hub,
    limits: BatchLimits,
) {
    let mut next = hub.published() + 1;
    let mut carried: Option<Request> = None;
    let mut previous_batch = 0;
    let mut ops = Vec::new();
    let mut replies = Vec::new();
    loop {
        let Some(first) = carried.take().or_else(|| rx.blocking_recv()) else {
            break;
        };
        let (op, reply) = match first {
            Request::Compact { to, reply } => {
                let from = hub.compacted();
                let result = if let Some(error) = syncer.and_then(Syncer::failed) {
                    Err(error.clone())
                } else if to <= from {
                    Ok(())
                } else {
                    log.compact(from, to)
                };
                if result.is_ok() {
                    hub.set_compacted(to);
                }
                // The caller may have stopped waiting; nothing to undo then.
                let _ = reply.send(result);
                continue;
            }
            Request::Write { op, reply } => (op, reply),
        };
        let mut bytes = op.value.len();
        ops.push(op);
        replies.push(reply);
        // Writers whose previous batch just committed are re-submitting: while
        // fewer are queued than that batch held, wait a little for the rest,
        // so that one fsync covers them all instead of two. A lone writer (a
        // batch of one) never waits.
        let linger_until = Instant::now() + limits.linger;
        while ops.len() < limits.max_ops && bytes < limits.max_bytes {
            match rx.try_recv() {
                Ok(Request::Write { op, reply }) => {
                    bytes += op.value.len();
                    ops.push(op);
                    replies.push(reply);
                }
                Ok(compact) => {
                    carried = Some(compact);
                    break;
                }
                Err(mpsc::error::TryRecvError::Empty)
                    if ops.len() < previous_batch && Instant::now() < linger_until =>
                {
                    std::thread::sleep(LINGER_POLL);
                }
                Err(_) => break,
            }
        }
        previous_batch = ops.len();
        if let Some(error) = syncer.and_then(Syncer::failed) {
            for reply in replies.drain(..) {
                let _ = reply.send(Err(error.clone()));
            }
            ops.clear();
            continue;
        }
        match log.append(&ops, next) {
            Ok(results) => {
                let mut events: Vec<Event> = Vec::with_capacity(results.len());
                let answers: Vec<Result<KeyValue>> = results
                    .into_iter()
                    .map(|r| {
                        r.map(|event| {
                            let kv = event.kv().clone();
                            events.push(event);
                            kv
                        })
                    })
                    .collect();
                if let Some(last) = last_revision(&events) {
                    next = last + 1;
                }
                let batch = Committed {
                    events,
                    answers: replies.drain(..).zip(answers).collect(),
                };
                match syncer {
                    Some(syncer) => syncer.hand_over(batch),
                    None => batch.deliver(hub),
                }
            }
            Err(e) => {
                tracing::error!(error = %e, writes = ops.len(), "store batch commit failed");
                for reply in replies.drain(..) {
                    let _ = reply.send(Err(e.clone()));
                }
            }
        }
        ops.clear();
    }
}

/// Sends `request` built around a fresh oneshot and waits for its answer.
pub(crate) async fn call<T>(
    tx: &mpsc::Sender<Request>,
    request: impl FnOnce(oneshot::Sender<Result<T>>) -> Request,
) -> Result<T> {
    let (reply, answer) = oneshot::channel();
    tx.send(request(reply)).await.map_err(|_| Error::Closed)?;
    answer.await.map_err(|_| Error::Closed)?
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::sync::mpsc as std_mpsc;

    use bytes::Bytes;

    use super::super::backend::{LogReader, WriteKind};
    use super::super::memory;
    use super::*;

    const WAIT: Duration = Duration::from_secs(10);
    const QUIET: Duration = Duration::from_millis(100);

    /// A flush that reports when it starts and returns only what the test
    /// releases it with.
    struct GatedSync {
        started: std_mpsc::Sender<()>,
        release: std_mpsc::Receiver<io::Result<()>>,
    }

    impl Durability for GatedSync {
        fn sync(&mut self) -> io::Result<()> {
            let _ = self.started.send(());
            self.release
                .recv_timeout(WAIT)
                .unwrap_or_else(|_| Err(io::Error::other("the test never released the flush")))
        }
    }

    struct Gated {
        requests: mpsc::Sender<Request>,
        hub: Arc<Hub>,
        reader: Arc<dyn LogReader>,
        started: std_mpsc::Receiver<()>,
        release: std_mpsc::Sender<io::Result<()>>,
    }

    impl Gated {
        fn start() -> Gated {
            let (log, reader) = memory::open();
            let (started_tx, started) = std_mpsc::channel();
            let (release, release_rx) = std_mpsc::channel();
            let hub = Arc::new(Hub::new(0, 0));
            let (requests, rx) = mpsc::channel(16);
            let limits = BatchLimits {
                max_ops: 16,
                max_bytes: 1 << 20,
                linger: Duration::ZERO,
            };
            let durability = GatedSync {
                started: started_tx,
                release: release_rx,
            };
            spawn(
                Box::new(log),
                Some(Box::new(durability)),
                rx,
                hub.clone(),
                limits,
            )
            .unwrap();
            Gated {
                requests,
                hub,
                reader: Arc::new(reader),
                started,
                release,
            }
        }

        fn create(&self, key: &str) -> tokio::task::JoinHandle<Result<KeyValue>> {
            let requests = self.requests.clone();
            let op = WriteOp {
                key: key.to_owned(),
                value: Bytes::from_static(b"{}"),
                kind: WriteKind::Create,
            };
            tokio::spawn(async move { call(&requests, |reply| Request::Write { op, reply }).await })
        }

        async fn flush_started(&self) {
            let started = tokio::task::block_in_place(|| self.started.recv_timeout(WAIT));
            started.expect("a flush should start");
        }

        /// Waits (bounded) until the backend holds `key`: committed, whether
        /// or not flushed.
        async fn committed(&self, key: &str) {
            let deadline = Instant::now() + WAIT;
            while self.reader.get(key).unwrap().is_none() {
                assert!(Instant::now() < deadline, "{key} was never committed");
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn no_write_is_answered_or_watched_before_a_flush_after_its_commit() {
        let gated = Gated::start();
        let mut watch = gated.hub.watch(gated.reader.clone(), "/", 0, 16).unwrap();

        let mut a = gated.create("/a");
        gated.flush_started().await;
        gated.committed("/a").await;
        // While the flush covering /a runs, the writer commits the next batch.
        let mut b = gated.create("/b");
        gated.committed("/b").await;
        assert!(tokio::time::timeout(QUIET, &mut a).await.is_err());
        assert!(tokio::time::timeout(QUIET, watch.next()).await.is_err());
        assert_eq!(gated.hub.published(), 0);

        gated.release.send(Ok(())).unwrap();
        assert_eq!(a.await.unwrap().unwrap().mod_revision, 1);
        let first = watch.next().await.unwrap().unwrap();
        assert_eq!((first.key(), first.revision()), ("/a", 1));
        // /b was committed after the first flush began: it waits for another.
        gated.flush_started().await;
        assert!(tokio::time::timeout(QUIET, &mut b).await.is_err());
        assert!(tokio::time::timeout(QUIET, watch.next()).await.is_err());
        assert_eq!(gated.hub.published(), 1);

        gated.release.send(Ok(())).unwrap();
        assert_eq!(b.await.unwrap().unwrap().mod_revision, 2);
        let second = watch.next().await.unwrap().unwrap();
        assert_eq!((second.key(), second.revision()), ("/b", 2));
        assert_eq!(gated.hub.published(), 2);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_flush_fails_its_writes_and_every_later_one() {
        let gated = Gated::start();
        let mut watch = gated.hub.watch(gated.reader.clone(), "/", 0, 16).unwrap();

        let a = gated.create("/a");
        gated.flush_started().await;
        gated
            .release
            .send(Err(io::Error::other("disk unplugged")))
            .unwrap();
        let error = a.await.unwrap().unwrap_err();
        assert!(matches!(error, Error::Sync { .. }), "{error:?}");
        assert_eq!(
            error.to_string(),
            "flushing committed writes to disk failed; the store accepts no more writes"
        );
        let source = std::error::Error::source(&error).unwrap();
        assert_eq!(source.to_string(), "disk unplugged");

        // The watch ends instead of waiting for events that will never come.
        assert!(
            tokio::time::timeout(WAIT, watch.next())
                .await
                .unwrap()
                .is_none()
        );
        assert_eq!(gated.hub.published(), 0);

        // Later writes fail the same way, without being committed or flushed.
        let b = gated.create("/b").await.unwrap().unwrap_err();
        assert!(matches!(b, Error::Sync { .. }), "{b:?}");
        assert!(gated.reader.get("/b").unwrap().is_none());
        assert!(gated.started.try_recv().is_err());
    }
}
