//! The writer thread: group commit.
//!
//! Write requests queue on a channel. The thread takes the first, drains whatever
//! else is queued (up to `max_batch_ops` writes or `max_batch_bytes` of values)
//! and hands the batch to the backend as one transaction, so one fsync covers
//! them all. Each write's precondition is checked inside that transaction, in
//! queue order. After the commit the events go to the watch hub and each request
//! gets its answer on its oneshot: a write is acknowledged only once durable.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};

use super::backend::{LogWriter, WriteOp};
use super::error::{Error, Result};
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

pub(crate) fn spawn(
    log: Box<dyn LogWriter>,
    rx: mpsc::Receiver<Request>,
    hub: Arc<Hub>,
    limits: BatchLimits,
) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("store-writer".into())
        .spawn(move || run(log, rx, &hub, limits))
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
    mut rx: mpsc::Receiver<Request>,
    hub: &Hub,
    limits: BatchLimits,
) {
    let _close = CloseOnDrop(hub);
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
                let result = if to <= from {
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
                if let Some(last) = events.last() {
                    let revision = last.revision();
                    next = revision + 1;
                    hub.publish(events, revision);
                }
                for (reply, answer) in replies.drain(..).zip(answers) {
                    // A caller that gave up waiting still had its write applied.
                    let _ = reply.send(answer);
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
