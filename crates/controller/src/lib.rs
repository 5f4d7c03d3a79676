//! fedmesh's controller: the kube-rs shell around `fedmesh-core`.
//!
//! ```text
//!  local watches ─┐                        ┌─▶ writer ──▶ local EndpointSlices, Endpoints
//!  remote watches ┼─ IndexEvent ─▶ engine ─┤              (only while holding the Lease)
//!  (one task per  │   (mpsc)     (index)   └─▶ events ──▶ Warning Events on Services
//!   RemoteCluster-┘
//!   Configuration) ── status ─▶ RemoteClusterConfiguration/status, metrics
//! ```
//!
//! Every semantic decision is made in `fedmesh-core`; this crate only moves
//! objects between the API servers and the index.

pub mod config;
pub mod engine;
mod events;
pub mod leader;
pub mod metrics;
pub mod remote;
mod sources;
mod task;
mod watch;
mod writer;

use std::future::Future;

use fedmesh_core::Origin;
use k8s_openapi::api::coordination::v1::Lease;
use kube::api::Api;
use tokio::sync::mpsc;

pub use config::ControllerConfig;
pub use metrics::Metrics;

/// Runs the controller against the local cluster behind `client` until
/// `shutdown` completes.
pub async fn run(
    client: kube::Client,
    config: ControllerConfig,
    metrics: Metrics,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let (events_tx, events_rx) = mpsc::channel(4096);
    let (intents_tx, intents_rx) = mpsc::channel(1024);
    let (warnings_tx, warnings_rx) = mpsc::channel(256);
    let (leading_tx, leading_rx) = tokio::sync::watch::channel(false);

    let mut tasks = tokio::task::JoinSet::new();
    if let Some(addr) = config.metrics_addr {
        let metrics = metrics.clone();
        tasks.spawn(async move {
            if let Err(error) = metrics.serve(addr).await {
                tracing::error!(%error, %addr, "metrics server failed");
            }
        });
    }
    tasks.spawn(leader::run(
        Api::<Lease>::namespaced(client.clone(), &config.namespace),
        config.clone(),
        leading_tx,
    ));
    {
        let metrics = metrics.clone();
        let mut leading = leading_rx.clone();
        tasks.spawn(async move {
            while leading.changed().await.is_ok() {
                let now = *leading.borrow();
                metrics.set_leading(now);
            }
        });
    }
    tasks.spawn(engine::run(events_rx, intents_tx, warnings_tx));
    tasks.spawn(writer::run(
        client.clone(),
        intents_rx,
        leading_rx.clone(),
        metrics.clone(),
    ));
    tasks.spawn(events::run(
        client.clone(),
        config.identity.clone(),
        warnings_rx,
        leading_rx.clone(),
    ));
    {
        let (progress_tx, mut progress) = mpsc::unbounded_channel();
        tasks.spawn(sources::watch_cluster(
            client.clone(),
            Origin::Local,
            events_tx.clone(),
            progress_tx,
        ));
        let metrics = metrics.clone();
        tasks.spawn(async move {
            let mut tracker = sources::SyncTracker::default();
            while let Some(report) = progress.recv().await {
                tracker.observe(&report);
                if let watch::Progress::Failed(message) = &report.progress {
                    tracing::warn!(%message, "watching the local cluster failed; retrying");
                }
                if tracker.in_sync().is_some() {
                    metrics.set_ready();
                }
            }
        });
    }
    tasks.spawn(remote::run(remote::Shared {
        local: client,
        config,
        events: events_tx,
        leading: leading_rx,
        metrics,
    }));

    tokio::select! {
        () = shutdown => tracing::info!("controller stopping"),
        Some(result) = tasks.join_next() => {
            if let Err(error) = result {
                anyhow::bail!("a controller task failed: {error}");
            }
            anyhow::bail!("a controller task stopped unexpectedly");
        }
    }
    tasks.shutdown().await;
    Ok(())
}
