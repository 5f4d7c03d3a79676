//! Federated services (Calico's semantics, seed 000): the mesh feature on the
//! runtime.
//!
//! ```text
//!  local watches ─┐                        ┌─▶ keyed writers ─▶ local EndpointSlices, Endpoints
//!  ClusterSet ────┼─ IndexEvent ─▶ engine ─┤   (only with a current claim)
//!  (remote watch- │   (mpsc)     (index)   └─▶ Warning Events on Services
//!   es, per RCC) ─┘
//!  RemoteClusterConfigurations ─▶ ClusterSet ─▶ their status, metrics
//! ```
//!
//! The ClusterSet is the process's (see `crate::run`): every feature reads
//! the remotes over the same connections.

pub mod engine;
pub mod remotes;
mod sources;

use std::sync::Arc;

use fedmesh_core::mesh::{ENDPOINTS_MANAGED_BY_LABEL, MANAGED_BY, MANAGED_BY_LABEL};
use fedmesh_core::{ClusterName, Origin};
use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::Endpoints;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::Api;
use kube::runtime::watcher;
use tokio::sync::{mpsc, watch};

use crate::runtime::claim::Claim;
use crate::runtime::clusters::{Feature, Report, Reports};
use crate::runtime::events::Warning;
use crate::runtime::writer::{ApiTarget, Writer, WriterConfig, WriterHandle, covers_owned};
use crate::runtime::{FeatureHealth, Tasks, watch as watches};
use crate::{ControllerConfig, Metrics};

/// The mesh's side of a cluster connection: its watches feed the index.
struct MeshFeature {
    events: mpsc::Sender<engine::IndexEvent>,
}

impl Feature for MeshFeature {
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
                .send(engine::IndexEvent::RemoveCluster(Origin::Remote(cluster)))
                .await;
        })
    }
}

/// Whether a federated EndpointSlice already holds what fedmesh wants.
fn slice_covers(desired: &EndpointSlice, live: &EndpointSlice) -> bool {
    covers_owned(desired, live, &["addressType", "endpoints", "ports"])
}

/// Whether a federated Endpoints object already holds what fedmesh wants.
fn endpoints_covers(desired: &Endpoints, live: &Endpoints) -> bool {
    covers_owned(desired, live, &["subsets"])
}

/// Starts the mesh: local watches, the engine and its writers, into
/// `tasks`; gives its health and the feature that reads remote clusters (for
/// the ClusterSet the process builds). The engine writes nothing before
/// `settled` (every remote cluster has had its first outcome).
pub fn start(
    tasks: &mut Tasks,
    local: kube::Client,
    config: &ControllerConfig,
    claim: Claim,
    metrics: Metrics,
    warnings: mpsc::Sender<Warning>,
    settled: watch::Receiver<bool>,
) -> (FeatureHealth, Arc<dyn Feature>) {
    let (events_tx, events_rx) = mpsc::channel(4096);
    let field_manager = format!("fedmesh-controller/{}", config.identity);

    let writer_config = |kind| WriterConfig {
        kind,
        concurrency: config.write_concurrency,
        backoff_base: config.write_backoff_base,
        backoff_max: config.max_backoff,
        leave_foreign: None,
    };
    let (endpoints, endpoints_inputs) = WriterHandle::channel();
    let (endpoints_writer, endpoints_health) = Writer::new(
        writer_config("Endpoints"),
        Arc::new(ApiTarget::namespaced(local.clone(), field_manager.clone())),
        claim.clone(),
        metrics.clone(),
        endpoints_covers,
    );
    let endpoints_live = watches::watch(
        Api::<Endpoints>::all(local.clone()),
        watcher::Config::default().labels(&format!("{ENDPOINTS_MANAGED_BY_LABEL}={MANAGED_BY}")),
    );
    tasks.spawn(
        "endpoints writer",
        endpoints_writer.run(endpoints_live, endpoints_inputs),
    );

    let (slices, slices_inputs) = WriterHandle::channel();
    let (slices_writer, slices_health) = Writer::new(
        writer_config("EndpointSlice"),
        Arc::new(ApiTarget::namespaced(local.clone(), field_manager)),
        claim,
        metrics,
        slice_covers,
    );
    let slices_live = watches::watch(
        Api::<EndpointSlice>::all(local.clone()),
        watcher::Config::default().labels(&format!("{MANAGED_BY_LABEL}={MANAGED_BY}")),
    );
    tasks.spawn(
        "endpoint slices writer",
        slices_writer.run(slices_live, slices_inputs),
    );

    let feature = Arc::new(MeshFeature {
        events: events_tx.clone(),
    });

    let (local_listed_tx, local_listed) = watch::channel(false);
    tasks.spawn(
        "local cluster watches",
        sources::watch_cluster(local, Origin::Local, events_tx, move |report| {
            match &report {
                Report::Failed(failure) => tracing::warn!(
                    "watching the local cluster failed; retrying: {}",
                    failure.detail
                ),
                // Listed once is listed for good: a failed watch resumes from
                // its resourceVersion (or relists) by itself, and a resumed
                // watch says nothing until the next change, so clearing this
                // on a failure left a replica unready in a quiet cluster long
                // after its API server came back. A down API server shows in
                // readiness through the probe instead.
                Report::Synced { .. } => {
                    local_listed_tx.send_replace(true);
                }
            }
        }),
    );
    tasks.spawn(
        "mesh engine",
        engine::run(
            events_rx,
            engine::Outputs {
                endpoints,
                slices,
                warnings,
            },
            local_listed.clone(),
            settled,
        ),
    );
    (
        FeatureHealth {
            local_listed,
            writers: vec![endpoints_health, slices_health],
        },
        feature,
    )
}
