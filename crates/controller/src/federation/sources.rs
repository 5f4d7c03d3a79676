//! The federation's side of a member connection: for each session, the
//! member's Services, EndpointSlices and Nodes watched into the engine, and
//! a keyed writer of the member's copies of federated Services.

use std::sync::Arc;

use fedmesh_core::ClusterName;
use fedmesh_core::federation::{
    FEDERATION_LABEL, FederationName, NodeTopology, ORIGIN_ANNOTATION, member_namespace,
};
use futures::StreamExt;
use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::{Namespace, Service};
use kube::api::{Api, PostParams};
use kube::runtime::watcher;
use tokio::sync::mpsc;

use super::engine::{Event, WriteOutcome};
use super::members::MemberStatuses;
use super::{managed_selector, slim};
use crate::Metrics;
use crate::runtime::claim::Claim;
use crate::runtime::clusters::{Feature, Report, Reports};
use crate::runtime::errors::Failure;
use crate::runtime::watch::{self, MemberSeen, Progress, Signal, Update};
use crate::runtime::writer::{
    ApiTarget, ObjectKey, Target, Writer, WriterConfig, WriterHandle, covers_owned,
};

/// Reads and writes members for the federation.
pub struct MemberFeature {
    /// The engine's inbox.
    pub events: mpsc::Sender<Event>,
    /// Where the members' zones and regions go.
    pub statuses: MemberStatuses,
    /// The federation's name (the label on member copies).
    pub federation: FederationName,
    /// How member writers work.
    pub writer: WriterConfig,
    /// The field manager of member writes.
    pub field_manager: String,
    /// Only the leader writes.
    pub claim: Claim,
    /// Write counts.
    pub metrics: Metrics,
}

impl Feature for MemberFeature {
    fn watch(
        &self,
        cluster: ClusterName,
        client: kube::Client,
        reports: Reports,
    ) -> BoxFuture<'static, ()> {
        let target = MemberTarget {
            api: ApiTarget::namespaced(client.clone(), self.field_manager.clone()),
            client: client.clone(),
            field_manager: self.field_manager.clone(),
            cluster: cluster.clone(),
            federation: self.federation.clone(),
            events: self.events.clone(),
        };
        let (handle, inputs) = WriterHandle::channel();
        let (writer, _health) = Writer::new(
            self.writer.clone(),
            Arc::new(target),
            self.claim.clone(),
            self.metrics.clone(),
            service_covers,
        );
        let live = watch::watch(
            Api::<Service>::all(client.clone()),
            watcher::Config::default().labels(&managed_selector(&self.federation)),
        )
        .map(|signal| match signal {
            Signal::Update(update) => Signal::Update(slim(update)),
            progress => progress,
        });
        let events = self.events.clone();
        let statuses = self.statuses.clone();
        Box::pin(async move {
            let session = Event::Session {
                cluster: cluster.clone(),
                writer: handle,
            };
            if events.send(session).await.is_err() {
                return;
            }
            tokio::select! {
                () = writer.run(live, inputs) => {}
                () = watch_member(cluster, client, events, statuses, reports) => {}
            }
        })
    }

    fn forget(&self, cluster: ClusterName) -> BoxFuture<'static, ()> {
        let events = self.events.clone();
        Box::pin(async move {
            let _ = events.send(Event::Forget(cluster)).await;
        })
    }
}

/// Whether a member's Service already holds what fedmesh wants: the same
/// spec (what the member allocated is in the desired copy already), the
/// labels and annotations fedmesh sets, and fedmesh's marks exactly (an
/// orphaned copy is one whose marks were taken off).
fn service_covers(desired: &Service, live: &Service) -> bool {
    let marks = |s: &Service| {
        (
            s.metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(FEDERATION_LABEL).cloned()),
            s.metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(ORIGIN_ANNOTATION).cloned()),
        )
    };
    marks(desired) == marks(live) && covers_owned(desired, live, &["spec"])
}

/// Watches a member's Services, EndpointSlices and Nodes until the session
/// ends, reporting to the ClusterSet once all three have listed.
async fn watch_member(
    cluster: ClusterName,
    client: kube::Client,
    events: mpsc::Sender<Event>,
    statuses: MemberStatuses,
    reports: Reports,
) {
    let mut seen = std::pin::pin!(watch::member(client, watcher::Config::default()));
    let mut listed = [false; 3];
    let mut failing = [false; 3];
    let mut counts = (0usize, 0usize);
    let mut topology = NodeTopology::default();
    let mut place = topology.topology();
    while let Some(item) = seen.next().await {
        let (index, progress) = match item {
            MemberSeen::Service(signal) => match *signal {
                Signal::Update(update) => {
                    counts.0 = match &update {
                        Update::Reset(all) => all.len(),
                        Update::Apply(_) => counts.0,
                        Update::Delete(_) => counts.0.saturating_sub(1),
                    };
                    if events
                        .send(Event::MemberServices(cluster.clone(), slim(update)))
                        .await
                        .is_err()
                    {
                        return;
                    }
                    (0, None)
                }
                Signal::Progress(p) => (0, Some(p)),
            },
            MemberSeen::Slice(signal) => match *signal {
                Signal::Update(update) => {
                    if let Update::Reset(all) = &update {
                        counts.1 = all.iter().map(|s| s.endpoints.len()).sum();
                    }
                    if events
                        .send(Event::MemberSlices(cluster.clone(), update))
                        .await
                        .is_err()
                    {
                        return;
                    }
                    (1, None)
                }
                Signal::Progress(p) => (1, Some(p)),
            },
            MemberSeen::Node(signal) => match *signal {
                Signal::Update(update) => {
                    match &update {
                        Update::Reset(all) => topology.reset(all.iter().filter_map(|n| {
                            Some((n.metadata.name.as_deref()?, n.metadata.labels.as_ref()?))
                        })),
                        Update::Apply(node) => {
                            if let Some(name) = node.metadata.name.as_deref() {
                                let labels = node.metadata.labels.clone().unwrap_or_default();
                                topology.apply(name, Some(&labels));
                            }
                        }
                        Update::Delete(node) => {
                            if let Some(name) = node.metadata.name.as_deref() {
                                topology.apply(name, None);
                            }
                        }
                    }
                    let now = topology.topology();
                    if now != place || matches!(update, Update::Reset(_)) {
                        place = now.clone();
                        statuses.topology(cluster.clone(), now).await;
                    }
                    (2, None)
                }
                Signal::Progress(p) => (2, Some(p)),
            },
        };
        match progress {
            Some(Progress::Failed(failure)) => {
                failing[index] = true;
                reports.send(Report::Failed(failure));
                continue;
            }
            // A failed watch starts afresh with a listing, which ends in
            // `Listed`: the member's data is whole again.
            Some(Progress::Listed) => {
                listed[index] = true;
                failing[index] = false;
            }
            Some(Progress::Recovered) | None => continue,
        }
        if listed.iter().all(|l| *l) && !failing.iter().any(|f| *f) {
            reports.send(Report::Synced {
                services: counts.0,
                endpoints: counts.1,
            });
        }
    }
}

/// A member's API server as a writer's target: a create into a namespace
/// the member lacks creates the namespace first, and every outcome of a
/// write is told to the engine (for the federated Service's status and
/// Events).
struct MemberTarget {
    api: ApiTarget<Service>,
    client: kube::Client,
    field_manager: String,
    cluster: ClusterName,
    federation: FederationName,
    events: mpsc::Sender<Event>,
}

impl Target<Service> for MemberTarget {
    fn create(&self, object: Service) -> BoxFuture<'static, kube::Result<Service>> {
        let key = ObjectKey::of(&object);
        let this = self.reporter();
        // A desired copy that carries the member's uid is an adoption of an
        // unmarked Service the writer's (marked-only) watch does not show:
        // it is replaced, never created.
        if object.metadata.uid.is_some()
            && let Some(key) = key
        {
            let get = self.api.get(key.clone());
            let api = Api::<Service>::namespaced(
                self.client.clone(),
                key.namespace.as_deref().unwrap_or_default(),
            );
            let params = PostParams {
                field_manager: Some(self.field_manager.clone()),
                ..PostParams::default()
            };
            return Box::pin(async move {
                let result = match get.await {
                    Ok(Some(current)) => {
                        let mut object = object;
                        object.metadata.resource_version = current.metadata.resource_version;
                        api.replace(&key.name, &params, &object).await
                    }
                    Ok(None) => {
                        let mut object = object;
                        object.metadata.uid = None;
                        object.metadata.creation_timestamp = None;
                        object.metadata.managed_fields = None;
                        api.create(&params, &object).await
                    }
                    Err(error) => Err(error),
                };
                this.outcome("adopting the Service", key, result).await
            });
        }
        let create = self.api.create(object.clone());
        let again = self.api.create(object.clone());
        let namespaces = Api::<Namespace>::all(self.client.clone());
        let namespace = object.metadata.namespace.clone().unwrap_or_default();
        let federation = self.federation.clone();
        Box::pin(async move {
            let mut result = create.await;
            if let Err(kube::Error::Api(s)) = &result
                // A create finds nothing missing but its namespace.
                && s.code == 404
            {
                let made = namespaces
                    .create(
                        &PostParams::default(),
                        &member_namespace(&federation, &namespace),
                    )
                    .await;
                result = match made {
                    Ok(_) => again.await,
                    Err(kube::Error::Api(s)) if s.code == 409 => again.await,
                    Err(error) => Err(error),
                };
            }
            match key {
                Some(key) => this.outcome("creating the Service", key, result).await,
                None => result,
            }
        })
    }

    fn replace(&self, object: Service) -> BoxFuture<'static, kube::Result<Service>> {
        let replace = self.api.replace(object.clone());
        let key = ObjectKey::of(&object);
        let this = self.reporter();
        Box::pin(async move {
            let result = replace.await;
            match key {
                Some(key) => this.outcome("updating the Service", key, result).await,
                None => result,
            }
        })
    }

    fn delete(&self, key: ObjectKey) -> BoxFuture<'static, kube::Result<()>> {
        self.api.delete(key)
    }

    fn get(&self, key: ObjectKey) -> BoxFuture<'static, kube::Result<Option<Service>>> {
        self.api.get(key)
    }
}

impl MemberTarget {
    /// What the futures of a write need to report its outcome.
    fn reporter(&self) -> Reporter {
        Reporter {
            cluster: self.cluster.clone(),
            events: self.events.clone(),
        }
    }
}

/// Tells the engine how a write to a member went.
struct Reporter {
    cluster: ClusterName,
    events: mpsc::Sender<Event>,
}

impl Reporter {
    async fn outcome(
        self,
        verb: &'static str,
        key: ObjectKey,
        result: kube::Result<Service>,
    ) -> kube::Result<Service> {
        let error = match &result {
            Ok(_) => None,
            // The writer reads the object again and decides anew.
            Err(kube::Error::Api(s)) if s.code == 409 || s.code == 404 => return result,
            Err(error) => Some(format!("{verb} failed: {}", Failure::of(error).detail)),
        };
        if let Some(namespace) = key.namespace.as_deref() {
            let _ = self
                .events
                .send(Event::Written(WriteOutcome {
                    cluster: self.cluster,
                    key: fedmesh_core::FederatedKey::new(namespace, &key.name),
                    error,
                }))
                .await;
        }
        result
    }
}
