//! Federated endpoint identity (seeds 001 and 004, docs/identity.md): the
//! feature on the runtime. Remote clusters' pods, namespaces, service
//! accounts and Calico HostEndpoints are watched over the ClusterSet's
//! connections (read-only) into `fedmesh_core::identity::IdentityIndex`, and
//! each remote endpoint is mirrored into the local cluster as what its
//! dataplane's policy can select (Calico NetworkSets and GlobalNetworkSets,
//! Cilium CiliumCIDRGroups), through keyed writers.
//!
//! ```text
//!  ClusterSet (per RCC) ─ pods, namespaces, SAs, HostEndpoints ─▶ engine ─▶ keyed writer per kind
//!                                                  (batched)   (index)    (only with a current claim)
//!  local namespaces ───────────────────────────────────────────────┘
//! ```
//!
//! [`snapshot`] reads the same objects once, for `fedmesh policy explain`
//! and `fedmesh endpoints`.

pub mod engine;
pub mod resources;
pub mod snapshot;
mod sources;

use std::sync::Arc;

use fedmesh_core::{ClusterName, Origin};
use futures::future::BoxFuture;
use tokio::sync::{mpsc, watch};

use crate::runtime::Tasks;
use crate::runtime::claim::Claim;
use crate::runtime::clusters::{Feature, Reports};
use crate::runtime::events::Warning;
use crate::runtime::writer::WriterHealth;
use crate::{ControllerConfig, Metrics};

/// Identity's side of a cluster connection: its watches feed the engine.
struct IdentityFeature {
    events: mpsc::Sender<engine::IdentityEvent>,
}

impl Feature for IdentityFeature {
    fn watch(
        &self,
        cluster: ClusterName,
        client: kube::Client,
        reports: Reports,
    ) -> BoxFuture<'static, ()> {
        Box::pin(sources::watch_cluster(
            client,
            Origin::Remote(cluster),
            self.events.clone(),
            move |report| reports.send(report),
        ))
    }

    fn forget(&self, cluster: ClusterName) -> BoxFuture<'static, ()> {
        let events = self.events.clone();
        Box::pin(async move {
            let _ = events
                .send(engine::IdentityEvent::RemoveCluster(Origin::Remote(
                    cluster,
                )))
                .await;
        })
    }
}

/// Starts the identity engine into `tasks` and gives the feature that reads
/// remote clusters (for the process's ClusterSet) and its writers' health
/// (for readiness). Nothing is written before `settled`.
pub fn start(
    tasks: &mut Tasks,
    local: kube::Client,
    config: &ControllerConfig,
    claim: Claim,
    metrics: Metrics,
    warnings: mpsc::Sender<Warning>,
    settled: watch::Receiver<bool>,
) -> (Arc<dyn Feature>, watch::Receiver<WriterHealth>) {
    let (events_tx, events_rx) = mpsc::channel(4096);
    let (health, health_rx) = watch::channel(WriterHealth::default());
    let setup = engine::Setup {
        local,
        outputs: config.identity_outputs,
        namespace: config.namespace.clone(),
        field_manager: format!("fedmesh-controller/{}", config.identity),
        claim,
        metrics,
        write_concurrency: config.write_concurrency,
        backoff_base: config.write_backoff_base,
        backoff_max: config.max_backoff,
        warnings,
        health: Arc::new(health),
    };
    tasks.spawn("identity engine", engine::run(setup, events_rx, settled));
    (Arc::new(IdentityFeature { events: events_tx }), health_rx)
}
