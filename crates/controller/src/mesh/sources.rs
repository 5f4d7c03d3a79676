//! The Services and EndpointSlices of one cluster, as index events, and how
//! far their watches got, as reports for the ClusterSet.

use std::collections::HashMap;

use fedmesh_core::mesh::{MANAGED_BY, MANAGED_BY_LABEL};
use fedmesh_core::{Origin, SERVICE_NAME_LABEL, ServiceKey, SliceKey};
use futures::StreamExt;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::Api;
use kube::runtime::watcher;
use tokio::sync::mpsc;

use super::engine::IndexEvent;
use crate::runtime::clusters::Report;
use crate::runtime::errors::Failure;
use crate::runtime::watch::{self, Progress, Signal, Update};

/// The API server's own Service (`default/kubernetes`) is in every cluster
/// and backs nothing: it is not counted in what a remote contributes.
fn is_apiserver_service(namespace: Option<&str>, name: Option<&str>) -> bool {
    namespace == Some("default") && name == Some("kubernetes")
}

/// What the two watches of a cluster have seen: whether each listed, whether
/// one is failing, and the counts the status shows.
#[derive(Debug, Default)]
pub struct Tally {
    services_listed: bool,
    slices_listed: bool,
    services_failing: Option<Failure>,
    slices_failing: Option<Failure>,
    services: HashMap<(String, String), ()>,
    endpoints: HashMap<(String, String), usize>,
}

impl Tally {
    /// The report once both watches are listed and neither fails.
    pub fn report(&self) -> Option<Report> {
        if let Some(failure) = self
            .services_failing
            .as_ref()
            .or(self.slices_failing.as_ref())
        {
            return Some(Report::Failed(failure.clone()));
        }
        (self.services_listed && self.slices_listed).then(|| Report::Synced {
            services: self.services.len(),
            endpoints: self.endpoints.values().sum(),
        })
    }

    fn services(&mut self, update: &Update<Service>) {
        let key = |s: &Service| {
            let (ns, name) = (s.metadata.namespace.as_deref(), s.metadata.name.as_deref());
            (!is_apiserver_service(ns, name)).then(|| {
                (
                    ns.unwrap_or_default().to_owned(),
                    name.unwrap_or_default().to_owned(),
                )
            })
        };
        match update {
            Update::Reset(all) => {
                self.services = all.iter().filter_map(key).map(|k| (k, ())).collect();
                self.services_listed = true;
            }
            Update::Apply(s) => {
                if let Some(k) = key(s) {
                    self.services.insert(k, ());
                }
            }
            Update::Delete(s) => {
                if let Some(k) = key(s) {
                    self.services.remove(&k);
                }
            }
        }
    }

    fn slices(&mut self, update: &Update<EndpointSlice>) {
        let entry = |s: &EndpointSlice| {
            let owner = s
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(SERVICE_NAME_LABEL));
            if is_apiserver_service(s.metadata.namespace.as_deref(), owner.map(String::as_str)) {
                return None;
            }
            let key = (
                s.metadata.namespace.clone().unwrap_or_default(),
                s.metadata.name.clone().unwrap_or_default(),
            );
            Some((key, s.endpoints.len()))
        };
        match update {
            Update::Reset(all) => {
                self.endpoints = all.iter().filter_map(entry).collect();
                self.slices_listed = true;
            }
            Update::Apply(s) => {
                if let Some((k, n)) = entry(s) {
                    self.endpoints.insert(k, n);
                }
            }
            Update::Delete(s) => {
                if let Some((k, _)) = entry(s) {
                    self.endpoints.remove(&k);
                }
            }
        }
    }

    /// Each watch recovers on its own: one working again does not make the
    /// other's failure go away.
    fn progress(slot: &mut Option<Failure>, progress: Progress) {
        match progress {
            Progress::Failed(failure) => *slot = Some(failure),
            Progress::Listed | Progress::Recovered => *slot = None,
        }
    }
}

enum Seen {
    Service(Box<Signal<Service>>),
    Slice(Box<Signal<EndpointSlice>>),
}

/// Watches every Service and EndpointSlice of the cluster behind `client`
/// (as `origin`), feeding the index and calling `report` with the tally
/// after every change, until the index is gone. fedmesh's own slices are
/// left out: they belong to federated Services, which back nothing.
pub async fn watch_cluster(
    client: kube::Client,
    origin: Origin,
    events: mpsc::Sender<IndexEvent>,
    mut report: impl FnMut(Report) + Send,
) {
    let services = watch::watch(
        Api::<Service>::all(client.clone()),
        watcher::Config::default(),
    )
    .map(|signal| Seen::Service(Box::new(signal)));
    let slices = watch::watch(
        Api::<EndpointSlice>::all(client),
        watcher::Config::default().labels(&format!("{MANAGED_BY_LABEL}!={MANAGED_BY}")),
    )
    .map(|signal| Seen::Slice(Box::new(signal)));
    let mut seen = std::pin::pin!(futures::stream::select(services, slices));
    let mut tally = Tally::default();
    let mut last: Option<Report> = None;
    while let Some(item) = seen.next().await {
        let event = match item {
            Seen::Service(signal) => match *signal {
                Signal::Update(update) => {
                    tally.services(&update);
                    service_event(&origin, update)
                }
                Signal::Progress(p) => {
                    Tally::progress(&mut tally.services_failing, p);
                    None
                }
            },
            Seen::Slice(signal) => match *signal {
                Signal::Update(update) => {
                    tally.slices(&update);
                    slice_event(&origin, update)
                }
                Signal::Progress(p) => {
                    Tally::progress(&mut tally.slices_failing, p);
                    None
                }
            },
        };
        if let Some(event) = event
            && events.send(event).await.is_err()
        {
            return;
        }
        let now = tally.report();
        if now.is_some() && now != last {
            if let Some(r) = &now {
                report(r.clone());
            }
            last = now;
        }
    }
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn service(ns: &str, name: &str) -> Service {
        serde_json::from_value(json!({"metadata": {"namespace": ns, "name": name}})).unwrap()
    }

    fn slice(ns: &str, name: &str, owner: &str, endpoints: usize) -> EndpointSlice {
        let endpoints: Vec<_> = (0..endpoints)
            .map(|i| json!({"addresses": [format!("10.0.0.{i}")]}))
            .collect();
        serde_json::from_value(json!({
            "metadata": {"namespace": ns, "name": name, "labels": {SERVICE_NAME_LABEL: owner}},
            "addressType": "IPv4", "endpoints": endpoints
        }))
        .unwrap()
    }

    #[test]
    fn counts_leave_out_the_api_servers_own_service_and_follow_changes() {
        let mut tally = Tally::default();
        assert_eq!(tally.report(), None, "nothing listed yet");
        tally.services(&Update::Reset(vec![
            service("default", "kubernetes"),
            service("a", "web"),
        ]));
        assert_eq!(tally.report(), None, "slices not listed yet");
        tally.slices(&Update::Reset(vec![
            slice("default", "kubernetes", "kubernetes", 1),
            slice("a", "web-1", "web", 3),
        ]));
        assert_eq!(
            tally.report(),
            Some(Report::Synced {
                services: 1,
                endpoints: 3
            })
        );
        tally.slices(&Update::Apply(slice("a", "web-1", "web", 5)));
        tally.services(&Update::Apply(service("a", "db")));
        assert_eq!(
            tally.report(),
            Some(Report::Synced {
                services: 2,
                endpoints: 5
            })
        );
        tally.slices(&Update::Delete(slice("a", "web-1", "web", 5)));
        assert_eq!(
            tally.report(),
            Some(Report::Synced {
                services: 2,
                endpoints: 0
            })
        );
        let timeout = || Progress::Failed(Failure::timeout(std::time::Duration::from_secs(1)));
        Tally::progress(&mut tally.services_failing, timeout());
        Tally::progress(&mut tally.slices_failing, timeout());
        assert!(matches!(tally.report(), Some(Report::Failed(_))));
        Tally::progress(&mut tally.services_failing, Progress::Recovered);
        assert!(
            matches!(tally.report(), Some(Report::Failed(_))),
            "the slices' watch still fails"
        );
        Tally::progress(&mut tally.slices_failing, Progress::Recovered);
        assert_eq!(
            tally.report(),
            Some(Report::Synced {
                services: 2,
                endpoints: 0
            }),
            "back in sync without a relist"
        );
    }
}
