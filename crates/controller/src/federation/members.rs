//! Cluster objects: the federation's members for the ClusterSet, and where
//! the ClusterSet's view of each connection goes: the Cluster's status
//! (`Ready`/`Offline`, zones, region) and the engine.
//!
//! Creating, editing or deleting a Cluster, or rotating its Secret,
//! restarts only that member's connection.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fedmesh_core::ClusterName;
use fedmesh_core::federation::{
    ClusterEvent, ClusterSpec as Member, ClusterStatus, Probe, Topology,
};
use fedmesh_core::remote::{Reason, RemoteStatus, UnreachablePolicy};
use futures::StreamExt;
use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::runtime::watcher;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::api_resource;
use super::engine::Event;
use crate::runtime::claim::Claim;
use crate::runtime::clusters::{ClusterSet, ClusterSpec, StatusSink};
use crate::runtime::errors::chain;
use crate::runtime::events::Warning;
use crate::runtime::watch::{self, Progress, Signal, Update};

/// How often a status whose only change is the time of the last probe is
/// written: often enough to show the member is watched, rarely enough that
/// a federation of many members does not write a status per member per
/// second.
const PROBE_TIME_REFRESH: Duration = Duration::from_secs(10);

/// Watches Cluster objects and keeps `clusters` and the engine's view of
/// members' labels current, until the task is dropped.
pub async fn run(
    federation: kube::Client,
    namespace: String,
    mut clusters: ClusterSet,
    events: mpsc::Sender<Event>,
    statuses: MemberStatuses,
) {
    let api = Api::<DynamicObject>::all_with(federation, &api_resource());
    let mut signals = std::pin::pin!(watch::watch(api, watcher::Config::default()));
    while let Some(signal) = signals.next().await {
        match signal {
            Signal::Update(Update::Reset(all)) => {
                let names: Vec<ClusterName> = all.iter().filter_map(name_of).collect();
                for name in clusters.names() {
                    if !names.contains(&name) {
                        remove(&mut clusters, &events, &statuses, name).await;
                    }
                }
                for object in &all {
                    configure(&mut clusters, &events, object, &namespace).await;
                }
                clusters.listed();
            }
            Signal::Update(Update::Apply(object)) => {
                configure(&mut clusters, &events, &object, &namespace).await;
            }
            Signal::Update(Update::Delete(object)) => {
                if let Some(name) = name_of(&object) {
                    remove(&mut clusters, &events, &statuses, name).await;
                }
            }
            Signal::Progress(Progress::Failed(failure)) => {
                tracing::warn!("watching Clusters failed; retrying: {}", failure.detail);
            }
            Signal::Progress(Progress::Listed | Progress::Recovered) => {}
        }
    }
}

fn name_of(object: &DynamicObject) -> Option<ClusterName> {
    ClusterName::new(object.metadata.name.as_deref()?).ok()
}

async fn remove(
    clusters: &mut ClusterSet,
    events: &mpsc::Sender<Event>,
    statuses: &MemberStatuses,
    name: ClusterName,
) {
    clusters.stop(&name).await;
    statuses.forget(&name);
    let _ = events.send(Event::ClusterGone(name)).await;
}

async fn configure(
    clusters: &mut ClusterSet,
    events: &mpsc::Sender<Event>,
    object: &DynamicObject,
    namespace: &str,
) {
    let Some(name) = object.metadata.name.clone() else {
        return;
    };
    let raw = match serde_json::to_value(object) {
        Ok(raw) => raw,
        Err(error) => {
            tracing::warn!(cluster = %name, "cannot read a Cluster: {error}");
            return;
        }
    };
    let cluster = match ClusterName::new(&name) {
        Ok(cluster) => cluster,
        Err(error) => {
            tracing::warn!(cluster = %name, "ignoring a Cluster whose name is not a valid cluster name: {error}");
            return;
        }
    };
    let labels = object.metadata.labels.clone().unwrap_or_default();
    let _ = events
        .send(Event::Cluster {
            name: cluster.clone(),
            labels,
        })
        .await;
    match Member::from_object(&raw, namespace) {
        Ok(member) => {
            clusters
                .configure(ClusterSpec {
                    name: member.name,
                    secret: member.secret,
                    server: Some(member.server),
                    // A member's Services stay where they are while it is
                    // away; its shards count as unhealthy meanwhile.
                    policy: UnreachablePolicy::KeepLastKnown,
                    created: object.metadata.creation_timestamp.as_ref().map(|t| t.0),
                })
                .await;
        }
        Err(error) => {
            clusters
                .misconfigured(
                    cluster,
                    format!("The Cluster is invalid: {error}. Fix it with kubectl edit."),
                )
                .await;
        }
    }
}

/// The members' statuses: written to their Cluster objects (while the claim
/// is current) and told to the engine.
#[derive(Clone)]
pub struct MemberStatuses {
    inner: Arc<Inner>,
}

struct Inner {
    federation: kube::Client,
    events: mpsc::Sender<Event>,
    warnings: mpsc::Sender<Warning>,
    claim: Claim,
    members: Mutex<HashMap<ClusterName, Known>>,
}

/// What is known of one member, and what of it was last written.
#[derive(Default)]
struct Known {
    status: Option<ClusterStatus>,
    written: Option<(ClusterStatus, Instant)>,
}

impl MemberStatuses {
    /// Statuses written through `federation`, news to `events`.
    pub fn new(
        federation: kube::Client,
        events: mpsc::Sender<Event>,
        warnings: mpsc::Sender<Warning>,
        claim: Claim,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                federation,
                events,
                warnings,
                claim,
                members: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// A member's nodes now span `topology`.
    pub fn topology(&self, cluster: ClusterName, topology: Topology) -> BoxFuture<'static, ()> {
        let inner = self.inner.clone();
        Box::pin(async move {
            inner
                .apply(cluster, ClusterEvent::Topology(topology))
                .await
                .unwrap_or_else(|message| {
                    tracing::warn!("writing a Cluster's status failed: {message}");
                });
        })
    }

    fn forget(&self, cluster: &ClusterName) {
        lock(&self.inner.members).remove(cluster);
    }
}

impl Inner {
    /// Applies `event` to the member's status, tells the engine its state
    /// and place, and writes the status when it changed (the time of the
    /// last probe alone only every [`PROBE_TIME_REFRESH`]).
    async fn apply(&self, cluster: ClusterName, event: ClusterEvent) -> Result<(), String> {
        let status = {
            let mut members = lock(&self.members);
            let known = members.entry(cluster.clone()).or_default();
            // The runtime counted the failures already: each outcome it
            // reports counts at once.
            let next = ClusterStatus::next(known.status.as_ref(), &event, 1, Timestamp::now());
            known.status = Some(next.clone());
            next
        };
        let _ = self
            .events
            .send(Event::Place {
                cluster: cluster.clone(),
                state: status.state(),
                topology: status.topology.clone(),
            })
            .await;
        if !self.claim.is_current() {
            return Ok(());
        }
        let due = lock(&self.members)
            .get(&cluster)
            .and_then(|k| k.written.as_ref())
            .is_none_or(|(written, at)| {
                status.differs_beyond_probe_time(written) || at.elapsed() >= PROBE_TIME_REFRESH
            });
        if !due {
            return Ok(());
        }
        let api = Api::<DynamicObject>::all_with(self.federation.clone(), &api_resource());
        let patch = Patch::Merge(serde_json::json!({ "status": status.to_json() }));
        match api
            .patch_status(cluster.as_str(), &PatchParams::default(), &patch)
            .await
        {
            Ok(_) => {
                if let Some(known) = lock(&self.members).get_mut(&cluster) {
                    known.written = Some((status, Instant::now()));
                }
                Ok(())
            }
            // A Cluster deleted meanwhile has no status to keep.
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
            Err(error) => Err(chain(&error)),
        }
    }
}

impl StatusSink for MemberStatuses {
    fn write(
        &self,
        cluster: ClusterName,
        status: &RemoteStatus,
    ) -> BoxFuture<'static, Result<(), String>> {
        let probe = Probe::from_connection(status);
        let inner = self.inner.clone();
        Box::pin(async move {
            match probe {
                Some(probe) => inner.apply(cluster, ClusterEvent::Probed(probe)).await,
                None => Ok(()),
            }
        })
    }

    fn warn(
        &self,
        cluster: ClusterName,
        reason: Reason,
        message: String,
    ) -> BoxFuture<'static, ()> {
        let warnings = self.inner.warnings.clone();
        Box::pin(async move {
            let regarding = ObjectReference {
                api_version: Some(fedmesh_core::federation::API_VERSION.into()),
                kind: Some(fedmesh_core::federation::KIND.into()),
                name: Some(cluster.to_string()),
                ..ObjectReference::default()
            };
            let _ = warnings
                .send(Warning::new(regarding, reason.as_str(), message))
                .await;
        })
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Each critical section is one insert, read or remove: the data stays
    // consistent even after a panic elsewhere.
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
