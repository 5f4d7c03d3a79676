//! The Services and EndpointSlices of one cluster, as index events.

use fedmesh_core::federation::{MANAGED_BY, MANAGED_BY_LABEL};
use fedmesh_core::{Origin, ServiceKey, SliceKey};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::Api;
use kube::runtime::watcher;
use tokio::sync::mpsc;

use crate::engine::IndexEvent;
use crate::watch::{self, Progress, Update};

/// Which of a cluster's objects have been listed, and how many.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Listed {
    /// Services listed, once they have been.
    pub services: Option<usize>,
    /// Endpoints (across EndpointSlices) listed, once they have been.
    pub endpoints: Option<usize>,
}

impl Listed {
    /// Both kinds are listed.
    pub fn complete(&self) -> Option<(usize, usize)> {
        Some((self.services?, self.endpoints?))
    }
}

/// Something the two watches of a cluster report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceProgress {
    /// Services were listed.
    Services(usize),
    /// EndpointSlices were listed, holding this many endpoints.
    Endpoints(usize),
    /// A watch failed.
    Failed(String),
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
            move |p| {
                let _ = progress.send(match p {
                    Progress::Listed(n) => SourceProgress::Services(n),
                    Progress::Failed(m) => SourceProgress::Failed(m),
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
        move |p| {
            let _ = progress.send(match p {
                Progress::Listed(n) => SourceProgress::Endpoints(n),
                Progress::Failed(m) => SourceProgress::Failed(m),
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
