//! The loop every controller runs: wake on a change of what it watches (or a
//! periodic resync), reconcile, repeat until shutdown.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::sync::{Notify, watch};

use crate::objects::{ApiError, Objects};

/// A reconcile pass over everything a controller owns.
pub type Reconcile = for<'a> fn(&'a Objects) -> BoxFuture<'a, Result<(), ApiError>>;

/// Resync period: a failed pass is retried at the latest after this long.
const RESYNC: Duration = Duration::from_secs(5);

async fn watch_prefix(objects: Objects, prefix: String, wake: Arc<Notify>) {
    let store = objects.store().clone();
    loop {
        let from = match store.current_revision().await {
            Ok(r) => r,
            Err(_) => {
                tokio::time::sleep(RESYNC).await;
                continue;
            }
        };
        let Ok(mut rx) = store.watch(&prefix, from).await else {
            tokio::time::sleep(RESYNC).await;
            continue;
        };
        // A change may have happened between the last pass and this watch.
        wake.notify_one();
        while let Some(Ok(_)) = rx.next().await {
            wake.notify_one();
        }
    }
}

/// Runs `reconcile` whenever a key under one of the `watched` prefixes changes,
/// waiting `debounce` so that changes arriving together make one pass.
pub(super) async fn run(
    objects: Objects,
    mut shutdown: watch::Receiver<bool>,
    watched: &'static [&'static str],
    debounce: Duration,
    reconcile: Reconcile,
) {
    let wake = Arc::new(Notify::new());
    let mut watchers = tokio::task::JoinSet::new();
    for prefix in watched {
        watchers.spawn(watch_prefix(
            objects.clone(),
            (*prefix).to_owned(),
            wake.clone(),
        ));
    }
    loop {
        if let Err(e) = reconcile(&objects).await {
            tracing::warn!(error = %e, "reconcile failed; retrying");
        }
        tokio::select! {
            () = crate::server::stopped(&mut shutdown) => break,
            () = wake.notified() => tokio::time::sleep(debounce).await,
            () = tokio::time::sleep(RESYNC) => {}
        }
    }
    watchers.abort_all();
}
