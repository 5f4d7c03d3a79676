//! The Services and EndpointSlices of one cluster, as index events.

use fedmesh_core::mesh::{MANAGED_BY, MANAGED_BY_LABEL};
use fedmesh_core::{Origin, ServiceKey, SliceKey};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::Api;
use kube::runtime::watcher;
use tokio::sync::mpsc;

use crate::engine::IndexEvent;
use crate::watch::{self, Progress, Update};

/// The two kinds watched in every cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceKind {
    /// Services.
    Services,
    /// EndpointSlices.
    Slices,
}

/// Something one of a cluster's two watches reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceProgress {
    /// Which watch.
    pub kind: SourceKind,
    /// What happened.
    pub progress: Progress,
}

/// How a cluster's watches stand: listed (with counts) and healthy.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SyncTracker {
    services: Option<usize>,
    endpoints: Option<usize>,
    services_failing: bool,
    slices_failing: bool,
}

impl SyncTracker {
    /// Takes in one report.
    pub fn observe(&mut self, report: &SourceProgress) {
        let (count, failing) = match report.kind {
            SourceKind::Services => (&mut self.services, &mut self.services_failing),
            SourceKind::Slices => (&mut self.endpoints, &mut self.slices_failing),
        };
        match &report.progress {
            Progress::Listed(n) => {
                *count = Some(*n);
                *failing = false;
            }
            // Counts between listings only matter once listed.
            Progress::Counted(n) => {
                if count.is_some() {
                    *count = Some(*n);
                }
            }
            Progress::Failed(_) => *failing = true,
            Progress::Recovered => *failing = false,
        }
    }

    /// Services and endpoints synced, when both watches have listed and neither is failing.
    pub fn in_sync(&self) -> Option<(usize, usize)> {
        if self.services_failing || self.slices_failing {
            return None;
        }
        Some((self.services?, self.endpoints?))
    }
}

/// Watches every Service and EndpointSlice of the cluster behind `client` (as
/// `origin`) until the index is gone. fedmesh's own slices are left out: they
/// belong to federated Services, which back nothing.
pub async fn watch_cluster(
    client: kube::Client,
    origin: Origin,
    events: mpsc::Sender<IndexEvent>,
    progress: mpsc::UnboundedSender<SourceProgress>,
) {
    let services = {
        let origin = origin.clone();
        let progress = progress.clone();
        watch::pump(
            Api::<Service>::all(client.clone()),
            watcher::Config::default(),
            events.clone(),
            move |update| service_event(&origin, update),
            |_| 1,
            move |progress_| {
                let _ = progress.send(SourceProgress {
                    kind: SourceKind::Services,
                    progress: progress_,
                });
            },
        )
    };
    let slices = watch::pump(
        Api::<EndpointSlice>::all(client),
        watcher::Config::default().labels(&format!("{MANAGED_BY_LABEL}!={MANAGED_BY}")),
        events,
        move |update| slice_event(&origin, update),
        |slice| slice.endpoints.len(),
        move |progress_| {
            let _ = progress.send(SourceProgress {
                kind: SourceKind::Slices,
                progress: progress_,
            });
        },
    );
    tokio::join!(services, slices);
}

fn service_event(origin: &Origin, update: Update<Service>) -> Option<IndexEvent> {
    Some(match update {
        Update::Reset(all) => IndexEvent::ResetServices(origin.clone(), all),
        Update::Apply(service) => IndexEvent::Service(origin.clone(), Box::new(service)),
        Update::Delete(service) => IndexEvent::ServiceDeleted(ServiceKey::new(
            origin.clone(),
            service.metadata.namespace.as_deref()?,
            service.metadata.name.as_deref()?,
        )),
    })
}

fn slice_event(origin: &Origin, update: Update<EndpointSlice>) -> Option<IndexEvent> {
    Some(match update {
        Update::Reset(all) => IndexEvent::ResetSlices(origin.clone(), all),
        Update::Apply(slice) => IndexEvent::Slice(origin.clone(), Box::new(slice)),
        Update::Delete(slice) => IndexEvent::SliceDeleted(SliceKey::new(
            origin.clone(),
            slice.metadata.namespace.as_deref()?,
            slice.metadata.name.as_deref()?,
        )),
    })
}
