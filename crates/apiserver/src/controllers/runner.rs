//! What every controller runs: feeds from its watched prefixes into its
//! index and queue, and workers that take keys from the queue and sync
//! them, until shutdown.

use std::fmt::Debug;
use std::hash::Hash;
use std::sync::Arc;

use futures::future::BoxFuture;
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::feed::{self, Sink};
use super::queue::{Backoff, WorkQueue};
use crate::objects::ApiError;
use crate::store::Store;

/// What a sync of one key leaves to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Outcome {
    /// Nothing until an event adds the key again.
    Done,
    /// Look again after a delay growing by this backoff: the key waits on
    /// something no event announces.
    Requeue(Backoff),
}

/// A controller: a queue of keys and how to sync one.
pub(super) trait Reconciler: Send + Sync + 'static {
    /// What the queue holds.
    type Key: Clone + Eq + Hash + Debug + Send + Sync + 'static;
    /// The controller's queue, filled by its sinks.
    fn queue(&self) -> &WorkQueue<Self::Key>;
    /// Brings what the controller owns for `key` in line with the store.
    fn sync<'a>(&'a self, key: &'a Self::Key) -> BoxFuture<'a, Result<Outcome, ApiError>>;
}

async fn work<R: Reconciler>(
    controller: Arc<R>,
    name: &'static str,
    mut shutdown: watch::Receiver<bool>,
) {
    let queue = controller.queue();
    while let Some(key) = queue.next(&mut shutdown).await {
        match controller.sync(&key).await {
            Ok(Outcome::Done) => queue.forget(&key),
            Ok(Outcome::Requeue(backoff)) => queue.requeue(key.clone(), backoff),
            Err(error) => {
                if queue.retry(key.clone()) {
                    tracing::debug!(controller = name, ?key, %error, "sync failed; retrying");
                } else {
                    tracing::warn!(controller = name, ?key, %error, "sync keeps failing; dropped until the next change");
                }
            }
        }
        queue.done(&key);
    }
}

/// Starts a controller on `set`: one feed per watched prefix (each with its
/// source tag) and `workers` workers.
pub(super) fn start<R, S>(
    set: &mut JoinSet<()>,
    store: &Store,
    controller: Arc<R>,
    name: &'static str,
    sources: &[(&'static str, S)],
    workers: usize,
    shutdown: &watch::Receiver<bool>,
) where
    R: Reconciler + Sink<S>,
    S: Copy + Send + Sync + 'static,
{
    for &(prefix, source) in sources {
        let (store, controller, shutdown) = (store.clone(), controller.clone(), shutdown.clone());
        set.spawn(async move {
            feed::follow(store, prefix, source, &*controller, shutdown).await;
        });
    }
    for _ in 0..workers.max(1) {
        set.spawn(work(controller.clone(), name, shutdown.clone()));
    }
}
