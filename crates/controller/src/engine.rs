//! The one task that owns the federation index: watch events go in, write
//! intents and warnings come out.

use std::collections::BTreeMap;

use fedmesh_core::{
    Changes, FederatedKey, MeshIndex, Origin, ServiceKey, ServiceView, SliceKey, SourceSlice,
};
use k8s_openapi::api::core::v1::{Endpoints, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use tokio::sync::mpsc;

/// What a watcher saw, in the cluster it watches.
#[derive(Debug)]
pub enum IndexEvent {
    /// A Service was created or changed.
    Service(Origin, Box<Service>),
    /// A Service was deleted.
    ServiceDeleted(ServiceKey),
    /// An EndpointSlice was created or changed.
    Slice(Origin, Box<EndpointSlice>),
    /// An EndpointSlice was deleted.
    SliceDeleted(SliceKey),
    /// A complete listing of a cluster's Services.
    ResetServices(Origin, Vec<Service>),
    /// A complete listing of a cluster's EndpointSlices.
    ResetSlices(Origin, Vec<EndpointSlice>),
    /// Forget a cluster (its RemoteClusterConfiguration went, or its endpoints
    /// are withdrawn).
    RemoveCluster(Origin),
}

/// What the writer should make true for one federated Service.
#[derive(Debug, Clone, PartialEq)]
pub enum Intent {
    /// The Service is not (or no longer) federated: remove what fedmesh wrote.
    Remove(FederatedKey),
    /// Some of its objects changed.
    Update {
        /// The federated Service.
        key: FederatedKey,
        /// Its Endpoints, when they changed.
        endpoints: Option<Box<Endpoints>>,
        /// EndpointSlices by name: `None` means the slice should not exist.
        slices: BTreeMap<String, Option<EndpointSlice>>,
        /// The slices listed are all it should have: delete any other.
        complete: bool,
    },
}

/// A problem to report on a Service as a Warning Event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceWarning {
    /// The Service.
    pub service: FederatedKey,
    /// CamelCase reason.
    pub reason: &'static str,
    /// What is wrong.
    pub message: String,
}

/// Applies events until every sender is gone, forwarding intents and warnings.
pub async fn run(
    mut events: mpsc::Receiver<IndexEvent>,
    intents: mpsc::Sender<Vec<Intent>>,
    warnings: mpsc::Sender<ServiceWarning>,
) {
    let mut index = MeshIndex::new();
    while let Some(event) = events.recv().await {
        let changes = apply(&mut index, event);
        for warning in &changes.warnings {
            tracing::warn!(service = %warning.service, reason = warning.reason, "{}", warning.message);
            let _ = warnings.try_send(ServiceWarning {
                service: warning.service.clone(),
                reason: warning.reason,
                message: warning.message.clone(),
            });
        }
        let rendered = render(&index, &changes);
        if !rendered.is_empty() && intents.send(rendered).await.is_err() {
            return;
        }
    }
}

/// Applies one event to the index, converting objects at the edge: an
/// object fedmesh cannot read is logged and skipped.
pub fn apply(index: &mut MeshIndex, event: IndexEvent) -> Changes {
    match event {
        IndexEvent::Service(origin, service) => match ServiceView::new(origin, *service) {
            Ok(view) => index.apply_service(view),
            Err(error) => skip("service", &error),
        },
        IndexEvent::ServiceDeleted(key) => index.delete_service(&key),
        IndexEvent::Slice(origin, slice) => match SourceSlice::new(origin, *slice) {
            Ok(slice) => index.apply_slice(slice),
            Err(error) => skip("endpoint slice", &error),
        },
        IndexEvent::SliceDeleted(key) => index.delete_slice(&key),
        IndexEvent::ResetServices(origin, services) => {
            let views = services
                .into_iter()
                .filter_map(|s| {
                    ServiceView::new(origin.clone(), s)
                        .inspect_err(|e| {
                            skip("service", e);
                        })
                        .ok()
                })
                .collect();
            index.reset_services(&origin, views)
        }
        IndexEvent::ResetSlices(origin, slices) => {
            let sources = slices
                .into_iter()
                .filter_map(|s| {
                    SourceSlice::new(origin.clone(), s)
                        .inspect_err(|e| {
                            skip("endpoint slice", e);
                        })
                        .ok()
                })
                .collect();
            index.reset_slices(&origin, sources)
        }
        IndexEvent::RemoveCluster(origin) => index.remove_cluster(&origin),
    }
}

fn skip(what: &str, error: &dyn std::error::Error) -> Changes {
    tracing::warn!(%error, "skipping unreadable {what}");
    Changes::default()
}

/// Renders what `changes` says changed, as intents for the writer.
pub fn render(index: &MeshIndex, changes: &Changes) -> Vec<Intent> {
    changes
        .dirty
        .iter()
        .map(|(key, dirty)| {
            let Some(view) = index.federation(key) else {
                return Intent::Remove(key.clone());
            };
            let slices = if dirty.all {
                view.slices()
                    .into_iter()
                    .filter_map(|s| Some((s.metadata.name.clone()?, Some(s))))
                    .collect()
            } else {
                dirty
                    .slices
                    .iter()
                    .map(|name| (name.to_string(), view.slice(name)))
                    .collect()
            };
            Intent::Update {
                key: key.clone(),
                endpoints: (dirty.endpoints || dirty.all).then(|| Box::new(view.endpoints())),
                slices,
                complete: dirty.all,
            }
        })
        .collect()
}
