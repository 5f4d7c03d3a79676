//! The pods, namespaces, service accounts and Calico HostEndpoints of one
//! remote cluster, as identity events, and how far their watches got, as
//! reports for the ClusterSet.
//!
//! A cluster without Calico's HostEndpoint resource (no Calico, or Calico
//! without its API server and CRDs) is no failure: its pods are still
//! mirrored, and a log line says host endpoints are not.

use std::time::Duration;

use fedmesh_core::Origin;
use fedmesh_core::identity::CalicoApi;
use futures::StreamExt;
use futures::stream::BoxStream;
use k8s_openapi::api::core::v1::{Namespace, Pod, ServiceAccount};
use kube::api::{Api, DynamicObject};
use kube::runtime::watcher;
use tokio::sync::mpsc;

use super::engine::IdentityEvent;
use super::resources;
use crate::runtime::clusters::Report;
use crate::runtime::errors::Failure;
use crate::runtime::watch::{self, Progress, Signal, Update};

/// The watches of a cluster, in the order [`Tally`] counts them.
const WATCHES: usize = 4;

/// Whether each watch has listed, and which one fails.
#[derive(Debug, Default)]
struct Tally {
    listed: [bool; WATCHES],
    failing: [Option<Failure>; WATCHES],
}

impl Tally {
    /// The report once every watch has listed and none fails. Identity adds
    /// no Services or endpoints to the RemoteClusterConfiguration's counts
    /// (those count federated services' backing endpoints).
    fn report(&self) -> Option<Report> {
        if let Some(failure) = self.failing.iter().flatten().next() {
            return Some(Report::Failed(failure.clone()));
        }
        self.listed.iter().all(|l| *l).then_some(Report::Synced {
            services: 0,
            endpoints: 0,
        })
    }

    fn progress(&mut self, watch: usize, progress: Progress) {
        let (Some(listed), Some(failing)) =
            (self.listed.get_mut(watch), self.failing.get_mut(watch))
        else {
            return;
        };
        match progress {
            Progress::Listed => {
                *listed = true;
                *failing = None;
            }
            Progress::Recovered => *failing = None,
            Progress::Failed(failure) => *failing = Some(failure),
        }
    }
}

/// Which Calico API serves HostEndpoints in the cluster behind `client`,
/// asking again (with backoff) while discovery itself fails; `None` when
/// the cluster has no HostEndpoint resource.
async fn host_endpoint_api(
    client: &kube::Client,
    origin: &Origin,
    report: &mut (impl FnMut(Report) + Send),
) -> Option<CalicoApi> {
    let mut wait = Duration::from_millis(200);
    loop {
        match resources::calico_api(client, resources::host_endpoints).await {
            Ok(Some(api)) => return Some(api),
            Ok(None) => {
                tracing::info!(
                    cluster = %origin,
                    "the cluster serves no Calico HostEndpoint resource (neither projectcalico.org/v3 nor crd.projectcalico.org/v1): its pods are mirrored, host endpoints are not"
                );
                return None;
            }
            Err(error) => report(Report::Failed(Failure::of(&error))),
        }
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(Duration::from_secs(5));
    }
}

/// Watches the pods, namespaces, service accounts and (when served)
/// HostEndpoints of the cluster behind `client` as `origin`, feeding the
/// identity engine and calling `report` when the tally changes, until the
/// engine is gone.
pub async fn watch_cluster(
    client: kube::Client,
    origin: Origin,
    events: mpsc::Sender<IdentityEvent>,
    mut report: impl FnMut(Report) + Send,
) {
    let hosts_api = host_endpoint_api(&client, &origin, &mut report).await;
    let mut tally = Tally::default();
    let config = watcher::Config::default;
    let mut streams: Vec<BoxStream<'static, Seen>> = vec![
        watch::watch(Api::<Pod>::all(client.clone()), config())
            .map({
                let origin = origin.clone();
                move |s| signal(0, s, |u| IdentityEvent::Pods(origin.clone(), Box::new(u)))
            })
            .boxed(),
        watch::watch(Api::<Namespace>::all(client.clone()), config())
            .map({
                let origin = origin.clone();
                move |s| signal(1, s, |u| IdentityEvent::Namespaces(origin.clone(), u))
            })
            .boxed(),
        watch::watch(Api::<ServiceAccount>::all(client.clone()), config())
            .map({
                let origin = origin.clone();
                move |s| signal(2, s, |u| IdentityEvent::ServiceAccounts(origin.clone(), u))
            })
            .boxed(),
    ];
    match hosts_api {
        Some(api) => streams.push(
            watch::watch(
                Api::<DynamicObject>::all_with(client, &resources::host_endpoints(api)),
                config(),
            )
            .map({
                let origin = origin.clone();
                move |s| {
                    signal(3, s, |u| {
                        IdentityEvent::HostEndpoints(origin.clone(), Box::new(u))
                    })
                }
            })
            .boxed(),
        ),
        None => {
            // Whatever an earlier session saw of them is gone.
            tally.listed[3] = true;
            let empty =
                IdentityEvent::HostEndpoints(origin.clone(), Box::new(Update::Reset(Vec::new())));
            if events.send(empty).await.is_err() {
                return;
            }
        }
    }
    let mut seen = futures::stream::select_all(streams);
    let mut last: Option<Report> = None;
    while let Some(event) = seen.next().await {
        let event = match event {
            Seen::Progress(watch, progress) => {
                tally.progress(watch, progress);
                None
            }
            Seen::Event(event) => Some(*event),
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

/// What one of a cluster's watches gave: an event for the engine, or news
/// of the watch (numbered as in [`Tally`]).
enum Seen {
    Event(Box<IdentityEvent>),
    Progress(usize, Progress),
}

fn signal<K>(
    watch: usize,
    signal: Signal<K>,
    update: impl FnOnce(Update<K>) -> IdentityEvent,
) -> Seen {
    match signal {
        Signal::Update(u) => Seen::Event(Box::new(update(u))),
        Signal::Progress(p) => Seen::Progress(watch, p),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synced_once_every_watch_listed_and_failed_while_one_fails() {
        let mut tally = Tally::default();
        for watch in 0..3 {
            tally.progress(watch, Progress::Listed);
            assert_eq!(tally.report(), None, "watch {watch}: not all listed yet");
        }
        tally.progress(3, Progress::Listed);
        let synced = Some(Report::Synced {
            services: 0,
            endpoints: 0,
        });
        assert_eq!(tally.report(), synced);
        tally.progress(
            2,
            Progress::Failed(Failure::timeout(Duration::from_secs(1))),
        );
        assert!(matches!(tally.report(), Some(Report::Failed(_))));
        tally.progress(2, Progress::Recovered);
        assert_eq!(tally.report(), synced);
    }
}
