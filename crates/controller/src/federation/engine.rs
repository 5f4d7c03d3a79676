//! The one task that owns the federation's view: federated Services and
//! namespaces, members (labels, state, their Services), the shard index. For
//! each change it asks core's `plan` what each member's copy should be and
//! tells that member's writer; shard changes become status writes of the
//! federated Service.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use fedmesh_core::federation::{
    Action, CLUSTER_SELECTOR_ANNOTATION, ClusterState, ERRORS_ANNOTATION, FINALIZER, Federated,
    FederationName, Lifecycle, Member, Plan, SHARDS_ANNOTATION, Scope, ServiceShards, ShardIndex,
    Topology, Why, is_federated, plan,
};
use fedmesh_core::{ClusterName, FederatedKey};
use k8s_openapi::api::core::v1::{Namespace, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use tokio::sync::mpsc;

use super::status::Write;
use crate::runtime::events::Warning;
use crate::runtime::watch::Update;
use crate::runtime::writer::{ObjectKey, WriterHandle};

/// The reason of the Warning on a federated Service whose cluster selector
/// does not read.
const INVALID_SELECTOR: &str = "InvalidClusterSelector";

/// How a write to a member went.
#[derive(Debug)]
pub struct WriteOutcome {
    /// The member.
    pub cluster: ClusterName,
    /// The federated Service whose copy was written.
    pub key: FederatedKey,
    /// What the member answered, when it refused.
    pub error: Option<String>,
}

/// What the engine hears.
#[derive(Debug)]
pub enum Event {
    /// The federation API's Services changed.
    Federated(Update<Service>),
    /// The federation API's Namespaces changed (a shared cluster's scope).
    Namespaces(Update<Namespace>),
    /// A Cluster exists, with these labels.
    Cluster {
        /// The member.
        name: ClusterName,
        /// Its labels (what cluster selectors match).
        labels: BTreeMap<String, String>,
    },
    /// A Cluster was deleted.
    ClusterGone(ClusterName),
    /// A member's state or place changed.
    Place {
        /// The member.
        cluster: ClusterName,
        /// Its state.
        state: ClusterState,
        /// Its zones and region.
        topology: Topology,
    },
    /// A session with a member started; its copies go through `writer`.
    Session {
        /// The member.
        cluster: ClusterName,
        /// The session's writer of member Services.
        writer: WriterHandle<Service>,
    },
    /// A member's Services changed.
    MemberServices(ClusterName, Update<Service>),
    /// A member's EndpointSlices changed.
    MemberSlices(ClusterName, Update<EndpointSlice>),
    /// A write to a member ended.
    Written(WriteOutcome),
    /// Forget what was read from a member.
    Forget(ClusterName),
}

/// One member as the engine knows it.
struct MemberView {
    labels: BTreeMap<String, String>,
    state: ClusterState,
    /// Every Service of the member (adoption needs the unmarked ones).
    services: HashMap<FederatedKey, Service>,
    listed: bool,
    writer: Option<WriterHandle<Service>>,
    /// The session's writer was told the view is complete.
    synced: bool,
}

impl Default for MemberView {
    fn default() -> Self {
        Self {
            labels: BTreeMap::new(),
            state: ClusterState::NotReady,
            services: HashMap::new(),
            listed: false,
            writer: None,
            synced: false,
        }
    }
}

/// The engine's state.
pub struct Engine {
    federation: FederationName,
    scope: Scope,
    control_namespace: String,
    /// Every Service of the federation API (federated or not).
    services: HashMap<FederatedKey, Service>,
    lifecycles: HashMap<FederatedKey, Lifecycle>,
    namespaces: HashMap<String, BTreeMap<String, String>>,
    services_listed: bool,
    namespaces_listed: bool,
    members: BTreeMap<ClusterName, MemberView>,
    shards: ShardIndex,
    /// The malformed cluster-selector last warned about, per Service.
    warned: HashMap<FederatedKey, String>,
    /// Federated Services being deleted (their copies go first).
    deleting: BTreeSet<FederatedKey>,
    /// The resource version each Service's finalizers were last written
    /// for, so one version is written once.
    finalized: HashMap<FederatedKey, Option<String>>,
    writes: mpsc::UnboundedSender<Write>,
    warnings: mpsc::Sender<Warning>,
}

/// Applies events until every sender is gone.
pub async fn run(mut events: mpsc::Receiver<Event>, mut engine: Engine) {
    while let Some(event) = events.recv().await {
        engine.apply(event);
    }
}

impl Engine {
    /// An engine for `federation`, federating `scope` (never what is in
    /// `control_namespace`), sending writes of federated Services to `writes`.
    pub fn new(
        federation: FederationName,
        scope: Scope,
        control_namespace: String,
        writes: mpsc::UnboundedSender<Write>,
        warnings: mpsc::Sender<Warning>,
    ) -> Self {
        Self {
            federation,
            scope,
            control_namespace,
            services: HashMap::new(),
            lifecycles: HashMap::new(),
            namespaces: HashMap::new(),
            services_listed: false,
            namespaces_listed: false,
            members: BTreeMap::new(),
            shards: ShardIndex::new(),
            warned: HashMap::new(),
            deleting: BTreeSet::new(),
            finalized: HashMap::new(),
            writes,
            warnings,
        }
    }

    /// Applies one event.
    pub fn apply(&mut self, event: Event) {
        match event {
            Event::Federated(update) => self.federated(update),
            Event::Namespaces(update) => self.namespaces(update),
            Event::Cluster { name, labels } => {
                let member = self.members.entry(name.clone()).or_default();
                if member.labels != labels {
                    member.labels = labels;
                    self.reconcile_member(&name);
                }
            }
            Event::ClusterGone(name) => {
                self.members.remove(&name);
                let changed = self.shards.remove_cluster(&name);
                self.publish(changed);
                self.finalize_deleting();
            }
            Event::Place {
                cluster,
                state,
                topology,
            } => {
                let member = self.members.entry(cluster.clone()).or_default();
                let was = member.state;
                member.state = state;
                let changed = self.shards.apply_cluster(&cluster, state, &topology);
                self.publish(changed);
                if state == ClusterState::Ready && was != ClusterState::Ready {
                    // A member that is (again) Ready is brought up to date.
                    self.reconcile_member(&cluster);
                }
                self.finalize_deleting();
            }
            Event::Session { cluster, writer } => {
                let member = self.members.entry(cluster).or_default();
                member.writer = Some(writer);
                member.listed = false;
                member.synced = false;
            }
            Event::MemberServices(cluster, update) => self.member_services(&cluster, update),
            Event::MemberSlices(cluster, update) => {
                let changed = match &update {
                    Update::Reset(all) => self.shards.reset_slices(
                        &cluster,
                        all.iter().filter_map(|s| {
                            Some((
                                s.metadata.namespace.as_deref()?,
                                s.metadata.name.as_deref()?,
                                s,
                            ))
                        }),
                    ),
                    Update::Apply(slice) | Update::Delete(slice) => {
                        let (Some(namespace), Some(name)) = (
                            slice.metadata.namespace.as_deref(),
                            slice.metadata.name.as_deref(),
                        ) else {
                            return;
                        };
                        let now = matches!(update, Update::Apply(_)).then_some(slice);
                        self.shards.apply_slice(&cluster, namespace, name, now)
                    }
                };
                self.publish(changed);
            }
            Event::Written(outcome) => {
                if let Some(error) = &outcome.error {
                    tracing::warn!(cluster = %outcome.cluster, service = %outcome.key, "{error}");
                }
                if self
                    .shards
                    .set_error(&outcome.cluster, &outcome.key, outcome.error.as_deref())
                {
                    if let Some(error) = &outcome.error {
                        let note = format!("member cluster {}: {error}", outcome.cluster);
                        self.warn(&outcome.key, "PropagationFailed", &note);
                    }
                    self.publish([outcome.key]);
                }
            }
            Event::Forget(cluster) => {
                if let Some(member) = self.members.get_mut(&cluster) {
                    member.services.clear();
                    member.listed = false;
                }
                let changed = self.shards.remove_cluster(&cluster);
                self.publish(changed);
            }
        }
    }

    fn listed(&self) -> bool {
        self.services_listed && self.namespaces_listed
    }

    fn federated(&mut self, update: Update<Service>) {
        match update {
            Update::Reset(all) => {
                self.services = all
                    .into_iter()
                    .filter_map(|s| Some((key_of(&s)?, s)))
                    .collect();
                self.lifecycles.retain(|k, _| self.services.contains_key(k));
                self.finalized.retain(|k, _| self.services.contains_key(k));
                for (key, service) in &self.services {
                    let before = self.lifecycles.get(key).copied();
                    self.lifecycles
                        .insert(key.clone(), Lifecycle::of(&service.metadata, before));
                }
                self.deleting = self
                    .lifecycles
                    .iter()
                    .filter(|(_, l)| **l != Lifecycle::Active)
                    .map(|(k, _)| k.clone())
                    .collect();
                self.services_listed = true;
                self.reconcile_everything();
            }
            Update::Apply(service) => {
                let Some(key) = key_of(&service) else { return };
                let before = self.lifecycles.get(&key).copied();
                let lifecycle = Lifecycle::of(&service.metadata, before);
                self.lifecycles.insert(key.clone(), lifecycle);
                if lifecycle != Lifecycle::Active {
                    self.deleting.insert(key.clone());
                }
                self.services.insert(key.clone(), service);
                self.reconcile_key(&key);
            }
            Update::Delete(service) => {
                let Some(key) = key_of(&service) else { return };
                self.services.remove(&key);
                self.lifecycles.remove(&key);
                if self.warned.remove(&key).is_some() {
                    let gone = Warning::on_service(&key, INVALID_SELECTOR, "").gone();
                    let _ = self.warnings.try_send(gone);
                }
                self.deleting.remove(&key);
                self.finalized.remove(&key);
                self.reconcile_key(&key);
            }
        }
    }

    fn namespaces(&mut self, update: Update<Namespace>) {
        let touched: Vec<String> = match update {
            Update::Reset(all) => {
                self.namespaces = all
                    .into_iter()
                    .filter_map(|n| Some((n.metadata.name?, n.metadata.labels.unwrap_or_default())))
                    .collect();
                self.namespaces_listed = true;
                self.reconcile_everything();
                return;
            }
            Update::Apply(namespace) => {
                let Some(name) = namespace.metadata.name else {
                    return;
                };
                let labels = namespace.metadata.labels.unwrap_or_default();
                if self.namespaces.get(&name) == Some(&labels) {
                    return;
                }
                self.namespaces.insert(name.clone(), labels);
                vec![name]
            }
            Update::Delete(namespace) => {
                let Some(name) = namespace.metadata.name else {
                    return;
                };
                self.namespaces.remove(&name);
                vec![name]
            }
        };
        let keys: Vec<FederatedKey> = self
            .services
            .keys()
            .filter(|k| touched.iter().any(|n| **n == *k.namespace))
            .cloned()
            .collect();
        for key in keys {
            self.reconcile_key(&key);
        }
    }

    fn member_services(&mut self, cluster: &ClusterName, update: Update<Service>) {
        let federation = self.federation.clone();
        let Some(member) = self.members.get_mut(cluster) else {
            return;
        };
        let ours = |s: &Service| {
            s.metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(fedmesh_core::federation::FEDERATION_LABEL))
                .is_some_and(|f| f == federation.as_str())
        };
        match update {
            Update::Reset(all) => {
                member.services = all
                    .into_iter()
                    .filter_map(|s| Some((key_of(&s)?, s)))
                    .collect();
                member.listed = true;
                let copies: Vec<(FederatedKey, &Service)> = member
                    .services
                    .iter()
                    .filter(|(_, s)| ours(s))
                    .map(|(k, s)| (k.clone(), s))
                    .collect();
                let changed = self.shards.reset_services(cluster, copies);
                self.publish(changed);
                self.reconcile_member(cluster);
            }
            Update::Apply(service) => {
                let Some(key) = key_of(&service) else { return };
                let copy = ours(&service).then_some(&service);
                let changed = self.shards.apply_service(cluster, &key, copy);
                member.services.insert(key.clone(), service);
                if changed {
                    self.publish([key.clone()]);
                }
                self.reconcile(cluster, &key);
                self.finalize(&key);
            }
            Update::Delete(service) => {
                let Some(key) = key_of(&service) else { return };
                member.services.remove(&key);
                if self.shards.apply_service(cluster, &key, None) {
                    self.publish([key.clone()]);
                }
                // Deleted by hand: made again (drift repair).
                self.reconcile(cluster, &key);
                self.finalize(&key);
            }
        }
    }

    /// The federated Service `key`, if it is one.
    fn federated_service(&self, key: &FederatedKey) -> Option<&Service> {
        let service = self.services.get(key)?;
        let labels = self.namespaces.get(&*key.namespace).cloned();
        is_federated(
            self.scope,
            service,
            &labels.unwrap_or_default(),
            &self.control_namespace,
        )
        .then_some(service)
    }

    fn reconcile_everything(&mut self) {
        let names: Vec<ClusterName> = self.members.keys().cloned().collect();
        for name in names {
            self.reconcile_member(&name);
        }
        let keys: Vec<FederatedKey> = self.services.keys().cloned().collect();
        self.publish(keys.iter().cloned());
        for key in &keys {
            self.finalize(key);
        }
    }

    fn reconcile_key(&mut self, key: &FederatedKey) {
        self.check_selector(key);
        let names: Vec<ClusterName> = self.members.keys().cloned().collect();
        for name in names {
            self.reconcile(&name, key);
        }
        self.publish([key.clone()]);
        self.finalize(key);
    }

    /// Brings every copy in `cluster` up to date, then lets its writer
    /// write (and delete marked copies nobody wants) if it has not yet.
    fn reconcile_member(&mut self, cluster: &ClusterName) {
        let ready = self
            .members
            .get(cluster)
            .is_some_and(|m| m.listed && m.writer.is_some() && m.state == ClusterState::Ready);
        if !self.listed() || !ready {
            return;
        }
        let mut keys: BTreeSet<FederatedKey> = self.services.keys().cloned().collect();
        if let Some(member) = self.members.get(cluster) {
            keys.extend(member.services.keys().cloned());
        }
        for key in &keys {
            self.reconcile(cluster, key);
        }
        if let Some(member) = self.members.get_mut(cluster)
            && !member.synced
            && let Some(writer) = &member.writer
        {
            writer.synced();
            member.synced = true;
        }
    }

    /// What core's plan says for `key` in `cluster`, with that member's
    /// writer; `None` while the member has no listed session.
    fn decide(
        &self,
        cluster: &ClusterName,
        key: &FederatedKey,
    ) -> Option<(Plan<Service>, &WriterHandle<Service>, Option<&Service>)> {
        let federated = self
            .federated_service(key)
            .map(|s| Federated::read(s, self.lifecycles.get(key).copied()));
        let member = self.members.get(cluster)?;
        let writer = member.writer.as_ref().filter(|_| member.listed)?;
        let current = member.services.get(key);
        let decided = plan(
            &self.federation,
            federated.as_ref(),
            &Member {
                name: cluster,
                state: member.state,
                labels: &member.labels,
                current,
                // The writer creates a missing namespace when a create
                // needs it.
                namespace_exists: true,
            },
        );
        Some((decided, writer, current))
    }

    /// Tells `cluster`'s writer what its copy of `key` should be.
    fn reconcile(&mut self, cluster: &ClusterName, key: &FederatedKey) {
        if !self.listed() {
            return;
        }
        let Some((decided, writer, current)) = self.decide(cluster, key) else {
            return;
        };
        let object_key = ObjectKey::namespaced(&key.namespace, &key.name);
        let want = match decided.action {
            Action::Create(object)
            | Action::Adopt(object)
            | Action::Update(object)
            | Action::Orphan(object) => Some(object),
            Action::None(Why::InSync) => current.cloned(),
            Action::Delete { .. } => None,
            Action::None(Why::NotSelected | Why::Done) => {
                // A Service that is not (or no longer: orphaned) fedmesh's
                // is never the writer's to delete.
                if current.is_some() {
                    writer.release(vec![object_key]);
                    return;
                }
                None
            }
            Action::None(
                Why::SelectorInvalid(_)
                | Why::Unavailable(_)
                | Why::OtherFederation(_)
                | Why::Terminating,
            ) => return,
        };
        // No copy wanted and none there: an earlier failure to write one
        // no longer stands.
        let settled = want.is_none() && current.is_none();
        writer.want(vec![(object_key, want)]);
        if settled && self.shards.set_error(cluster, key, None) {
            self.publish([key.clone()]);
        }
    }

    fn finalize_deleting(&mut self) {
        let keys: Vec<FederatedKey> = self.deleting.iter().cloned().collect();
        for key in &keys {
            self.finalize(key);
        }
    }

    /// Keeps fedmesh's finalizer on `key` while it is federated and active,
    /// and takes it off once no member holds a copy, or once it is no longer
    /// federated.
    fn finalize(&mut self, key: &FederatedKey) {
        if !self.listed() {
            return;
        }
        let Some(service) = self.services.get(key) else {
            return;
        };
        let federated = Federated::read(service, self.lifecycles.get(key).copied());
        let finalizers = if self.federated_service(key).is_none() {
            federated.finalizers_without_ours()
        } else if federated.needs_finalizer() {
            let mut all = service.metadata.finalizers.clone().unwrap_or_default();
            all.push(FINALIZER.to_owned());
            Some(all)
        } else if federated.lifecycle != Lifecycle::Active && self.deletion_done(key) {
            federated.finalizers_without_ours()
        } else {
            None
        };
        let Some(finalizers) = finalizers else {
            return;
        };
        let version = service.metadata.resource_version.clone();
        if self.finalized.get(key) == Some(&version) {
            return;
        }
        self.finalized.insert(key.clone(), version.clone());
        let _ = self.writes.send(Write::Finalizers {
            service: key.clone(),
            finalizers,
            resource_version: version,
        });
    }

    /// Whether no member holds a copy of `key` any more, as far as fedmesh
    /// has seen: a member away that held one keeps the deletion waiting
    /// until it returns (or its Cluster is deleted), as Federation v1 did,
    /// so that an orphaning deletion orphans there too.
    fn deletion_done(&self, key: &FederatedKey) -> bool {
        self.members
            .keys()
            .all(|name| self.decide(name, key).is_none_or(|(p, _, _)| p.settled()))
    }

    /// Warns once per malformed cluster-selector value, and says when the
    /// selector reads again.
    fn check_selector(&mut self, key: &FederatedKey) {
        let Some(service) = self.federated_service(key) else {
            return;
        };
        let value = service
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(CLUSTER_SELECTOR_ANNOTATION))
            .cloned();
        match Federated::read(service, None).placement {
            Ok(_) => {
                if self.warned.remove(key).is_some() {
                    let over = Warning::on_service(key, INVALID_SELECTOR, "").over(
                        "ClusterSelectorValid",
                        "the cluster selector reads again; the Service is placed by it",
                    );
                    let _ = self.warnings.try_send(over);
                }
            }
            Err(error) => {
                let value = value.unwrap_or_default();
                if self.warned.get(key) != Some(&value) {
                    self.warned.insert(key.clone(), value);
                    let note = format!(
                        "{error}; the Service's placement in member clusters is left as it was"
                    );
                    self.warn(key, INVALID_SELECTOR, &note);
                }
            }
        }
    }

    fn warn(&self, key: &FederatedKey, reason: &str, note: &str) {
        tracing::warn!(service = %key, reason, "{note}");
        let _ = self
            .warnings
            .try_send(Warning::on_service(key, reason, note));
    }

    /// Sends the status of each federated Service among `keys` whose shards
    /// no longer match what the object shows.
    fn publish(&self, keys: impl IntoIterator<Item = FederatedKey>) {
        for key in keys {
            let Some(service) = self.federated_service(&key) else {
                continue;
            };
            if service.metadata.deletion_timestamp.is_some() {
                continue;
            }
            let shards = self.shards.shards(&key);
            if !shows(service, &shards) {
                let _ = self.writes.send(Write::Status(shards));
            }
        }
    }
}

/// Whether `service` already shows `shards` (annotations and ingress), so
/// that writing its status does not trigger another write.
fn shows(service: &Service, shards: &ServiceShards) -> bool {
    let annotations = service.metadata.annotations.as_ref();
    let get = |name: &str| annotations.and_then(|a| a.get(name)).cloned();
    let ingress = service
        .status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref())
        .and_then(|lb| lb.ingress.clone())
        .unwrap_or_default();
    get(SHARDS_ANNOTATION) == Some(shards.annotation())
        && get(ERRORS_ANNOTATION) == shards.errors_annotation()
        && ingress == shards.ingress()
}

fn key_of(service: &Service) -> Option<FederatedKey> {
    Some(FederatedKey::new(
        service.metadata.namespace.as_deref()?,
        service.metadata.name.as_deref()?,
    ))
}
