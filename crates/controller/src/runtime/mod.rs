//! The runtime every feature shares (kube-runtime's shape, Linkerd's status
//! controller's discipline):
//!
//! - [`watch`]: one watch adapter: a listing becomes one reset; how the
//!   watch is doing comes out beside the updates;
//! - [`clusters`]: the `ClusterSet`, owning every connection to another
//!   cluster with its health (probe, timeouts), typed status and unreachable
//!   policy, handing each feature a client per connected cluster;
//! - [`claim`]: leadership as a claim with an expiry, checked before every write,
//!   released on shutdown;
//! - [`writer`] (with [`queue`]): the keyed writer: per-key queue,
//!   deduplication, retries with backoff, no 409 storms;
//! - [`events`]: Warning Events, published by the leader only;
//! - [`errors`]: API errors sorted into status reasons and sentences.

pub mod claim;
pub mod clusters;
pub mod errors;
pub mod events;
pub mod queue;
pub mod watch;
pub mod writer;

use std::future::Future;

use tokio::sync::watch as signal;

/// What a feature tells the process about itself, for readiness.
pub struct FeatureHealth {
    /// The local cluster's watches have listed (and are not failing).
    pub local_listed: signal::Receiver<bool>,
    /// The writers' health.
    pub writers: Vec<signal::Receiver<writer::WriterHealth>>,
}

/// The long-running tasks of a controller, each named for the error that
/// says which one stopped.
#[derive(Default)]
pub struct Tasks {
    set: tokio::task::JoinSet<&'static str>,
}

impl Tasks {
    /// Runs `task` until it ends or the set is shut down.
    pub fn spawn(&mut self, name: &'static str, task: impl Future<Output = ()> + Send + 'static) {
        self.set.spawn(async move {
            task.await;
            name
        });
    }

    /// Waits until a task ends (none should), and says which.
    pub async fn ended(&mut self) -> String {
        match self.set.join_next().await {
            Some(Ok(name)) => format!("the {name} task stopped unexpectedly"),
            Some(Err(error)) => format!("a controller task failed: {error}"),
            None => "the controller has no tasks".into(),
        }
    }

    /// Stops every task and waits for them to end.
    pub async fn shutdown(&mut self) {
        self.set.shutdown().await;
    }
}
