//! The one task that owns the mesh index: watch events go in; the objects
//! to write (by key, to the keyed writers) and warnings come out.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use fedmesh_core::{
    Changes, FederatedKey, MeshIndex, Origin, ServiceKey, ServiceView, SliceKey, SourceSlice,
};
use k8s_openapi::api::core::v1::{Endpoints, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use tokio::sync::{mpsc, watch};

use crate::runtime::events::Warning;
use crate::runtime::writer::{ObjectKey, WriterHandle};

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
    /// Forget a cluster (its configuration went, or its endpoints are withdrawn).
    RemoveCluster(Origin),
}

/// Where the engine's output goes.
pub struct Outputs {
    /// The federated Services' Endpoints.
    pub endpoints: WriterHandle<Endpoints>,
    /// Their EndpointSlices.
    pub slices: WriterHandle<EndpointSlice>,
    /// Warnings about Services.
    pub warnings: mpsc::Sender<Warning>,
}

/// Applies events until every sender is gone. The writers are told the view
/// is complete once the local cluster is listed (`local_listed`) and every
/// remote cluster has had its first outcome (`settled`).
pub async fn run(
    mut events: mpsc::Receiver<IndexEvent>,
    outputs: Outputs,
    mut local_listed: watch::Receiver<bool>,
    mut settled: watch::Receiver<bool>,
) {
    let mut engine = Engine::default();
    let mut synced = false;
    loop {
        tokio::select! {
            event = events.recv() => {
                let Some(event) = event else { return };
                let changes = apply(&mut engine.index, event);
                for warning in &changes.warnings {
                    tracing::warn!(service = %warning.service, reason = warning.reason, "{}", warning.message);
                    let _ = outputs.warnings.try_send(Warning::on_service(&warning.service, warning.reason, &warning.message));
                }
                let (endpoints, slices) = engine.render(&changes);
                outputs.endpoints.want(endpoints);
                outputs.slices.want(slices);
            }
            Ok(()) = local_listed.changed() => {}
            Ok(()) = settled.changed() => {}
        }
        if !synced && *local_listed.borrow() && *settled.borrow() {
            synced = true;
            tracing::info!(
                "every cluster has been listed or has failed; writing federated endpoints"
            );
            outputs.endpoints.synced();
            outputs.slices.synced();
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
    tracing::warn!("skipping an unreadable {what}: {error}");
    Changes::default()
}

/// The index and the names of the slices it last wanted per federated
/// Service (to unwant those a rewrite of everything leaves out).
#[derive(Default)]
pub struct Engine {
    /// The mesh index.
    pub index: MeshIndex,
    slice_names: HashMap<FederatedKey, BTreeSet<Arc<str>>>,
}

/// Objects to want or unwant, by key.
type Wants<K> = Vec<(ObjectKey, Option<K>)>;

impl Engine {
    /// Renders what `changes` says changed: exactly the objects to rewrite.
    pub fn render(&mut self, changes: &Changes) -> (Wants<Endpoints>, Wants<EndpointSlice>) {
        let mut endpoints = Vec::new();
        let mut slices = Vec::new();
        for (key, dirty) in &changes.dirty {
            let slice_key = |name: &str| ObjectKey::namespaced(&key.namespace, name);
            let Some(view) = self.index.federation(key) else {
                endpoints.push((slice_key(&key.name), None));
                for name in self.slice_names.remove(key).unwrap_or_default() {
                    slices.push((slice_key(&name), None));
                }
                continue;
            };
            if dirty.endpoints || dirty.all {
                endpoints.push((slice_key(&key.name), Some(view.endpoints())));
            }
            let known = self.slice_names.entry(key.clone()).or_default();
            if dirty.all {
                let fresh: Vec<EndpointSlice> = view.slices();
                let names: BTreeSet<Arc<str>> = fresh
                    .iter()
                    .filter_map(|s| s.metadata.name.as_deref().map(Into::into))
                    .collect();
                for gone in known.difference(&names) {
                    slices.push((slice_key(gone), None));
                }
                for slice in fresh {
                    if let Some(name) = slice.metadata.name.clone() {
                        slices.push((slice_key(&name), Some(slice)));
                    }
                }
                *known = names;
            } else {
                for name in &dirty.slices {
                    let slice = view.slice(name);
                    if slice.is_some() {
                        known.insert(name.clone());
                    } else {
                        known.remove(name);
                    }
                    slices.push((slice_key(name), slice));
                }
            }
        }
        (endpoints, slices)
    }
}
