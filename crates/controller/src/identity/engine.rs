//! The one task that owns the identity index: watch events go in, batched;
//! what `fedmesh_core::identity::mirror` says to write comes out, by key,
//! to one keyed writer per mirrored kind.
//!
//! Which kinds exist is found out here: Calico's network sets through
//! `projectcalico.org/v3` when served, else `crd.projectcalico.org/v1`;
//! Cilium's CIDR groups when configured. A kind that is not served yet is
//! reported (log and Warning Event) and looked for again every
//! `max_backoff`; nothing is written for it meanwhile.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use fedmesh_core::Origin;
use fedmesh_core::identity::{
    EndpointKey, EndpointKind, EndpointView, IdentityChanges, IdentityIndex, MANAGED_BY,
    MANAGED_BY_LABEL, MirrorConfig, NamespaceKey, ObjectKind, ProfileKey, ProfileKind, ProfileView,
    Rewrite, SOURCE_ANNOTATION, ServiceAccountKey, desired, rewrites,
};
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Namespace, ObjectReference, Pod, ServiceAccount};
use kube::api::{Api, DynamicObject};
use kube::runtime::watcher;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::resources;
use crate::config::IdentityOutputs;
use crate::metrics::Metrics;
use crate::runtime::claim::Claim;
use crate::runtime::clusters::AbortOnDrop;
use crate::runtime::errors::chain;
use crate::runtime::events::Warning;
use crate::runtime::watch::{self as watches, Progress, Signal, Update};
use crate::runtime::writer::{
    ApiTarget, ObjectKey, Writer, WriterConfig, WriterHandle, WriterHealth,
};

/// What a remote cluster's watches saw.
#[derive(Debug)]
pub enum IdentityEvent {
    /// Pods (boxed: a Pod is large, and most events are small).
    Pods(Origin, Box<Update<Pod>>),
    /// Calico HostEndpoints (either API form).
    HostEndpoints(Origin, Box<Update<DynamicObject>>),
    /// Namespaces (their labels are the pods' `pcns.` labels).
    Namespaces(Origin, Update<Namespace>),
    /// Service accounts (their labels are the pods' `pcsa.` labels).
    ServiceAccounts(Origin, Update<ServiceAccount>),
    /// Forget a cluster (its configuration went, or its data is withdrawn).
    RemoveCluster(Origin),
}

/// Applies one event to the index, reading objects at the edge: an object
/// fedmesh cannot read is logged and skipped.
pub fn apply(index: &mut IdentityIndex, event: IdentityEvent) -> IdentityChanges {
    match event {
        IdentityEvent::Pods(origin, update) => match *update {
            Update::Reset(pods) => {
                let views = pods
                    .into_iter()
                    .filter_map(|pod| {
                        EndpointView::from_pod(origin.clone(), pod)
                            .inspect_err(|e| skip("pod", e))
                            .ok()
                            .flatten()
                    })
                    .collect();
                index.reset_endpoints(&origin, EndpointKind::Workload, views)
            }
            Update::Apply(pod) => index
                .apply_pod(origin, pod)
                .unwrap_or_else(|e| skip_changes("pod", &e)),
            Update::Delete(pod) => match EndpointKey::of_pod(origin, &pod) {
                Ok(key) => index.delete(&key),
                Err(e) => skip_changes("pod", &e),
            },
        },
        IdentityEvent::HostEndpoints(origin, update) => {
            let read = |object: &DynamicObject| {
                serde_json::to_value(object).ok().and_then(|json| {
                    EndpointView::from_host_endpoint(origin.clone(), &json)
                        .inspect_err(|e| skip("host endpoint", e))
                        .ok()
                })
            };
            match *update {
                Update::Reset(objects) => {
                    let views = objects.iter().filter_map(read).collect();
                    index.reset_endpoints(&origin, EndpointKind::Host, views)
                }
                Update::Apply(object) => match read(&object) {
                    Some(view) => index.upsert(view),
                    None => IdentityChanges::default(),
                },
                Update::Delete(object) => match object.metadata.name.as_deref() {
                    Some(name) => index.delete(&EndpointKey::host(origin, name)),
                    None => IdentityChanges::default(),
                },
            }
        }
        IdentityEvent::Namespaces(origin, update) => match update {
            Update::Reset(all) => {
                let views = all
                    .into_iter()
                    .filter_map(|ns| {
                        ProfileView::from_namespace(origin.clone(), ns)
                            .inspect_err(|e| skip("namespace", e))
                            .ok()
                    })
                    .collect();
                index.reset_profiles(&origin, ProfileKind::Namespace, views)
            }
            Update::Apply(ns) => match ProfileView::from_namespace(origin, ns) {
                Ok(view) => index.upsert_profile(view),
                Err(e) => skip_changes("namespace", &e),
            },
            Update::Delete(ns) => match ns.metadata.name {
                Some(name) => index.delete_profile(&ProfileKey::Namespace(NamespaceKey {
                    origin,
                    name: name.into(),
                })),
                None => IdentityChanges::default(),
            },
        },
        IdentityEvent::ServiceAccounts(origin, update) => match update {
            Update::Reset(all) => {
                let views = all
                    .into_iter()
                    .filter_map(|sa| {
                        ProfileView::from_service_account(origin.clone(), sa)
                            .inspect_err(|e| skip("service account", e))
                            .ok()
                    })
                    .collect();
                index.reset_profiles(&origin, ProfileKind::ServiceAccount, views)
            }
            Update::Apply(sa) => match ProfileView::from_service_account(origin, sa) {
                Ok(view) => index.upsert_profile(view),
                Err(e) => skip_changes("service account", &e),
            },
            Update::Delete(sa) => match (sa.metadata.namespace, sa.metadata.name) {
                (Some(namespace), Some(name)) => {
                    index.delete_profile(&ProfileKey::ServiceAccount(ServiceAccountKey {
                        origin,
                        namespace: namespace.into(),
                        name: name.into(),
                    }))
                }
                _ => IdentityChanges::default(),
            },
        },
        IdentityEvent::RemoveCluster(origin) => index.remove_cluster(&origin),
    }
}

fn skip(what: &str, error: &dyn std::error::Error) {
    tracing::warn!("skipping an unreadable {what}: {error}");
}

fn skip_changes(what: &str, error: &dyn std::error::Error) -> IdentityChanges {
    skip(what, error);
    IdentityChanges::default()
}

/// Events applied at once at most: under churn the engine takes what has
/// queued up and rewrites each touched endpoint once for the whole batch.
const BATCH: usize = 1024;

/// What the engine needs to start writers and report problems.
pub struct Setup {
    /// The local cluster.
    pub local: kube::Client,
    /// Which outputs are configured.
    pub outputs: IdentityOutputs,
    /// The controller's namespace (Warning Events about missing resources
    /// are attached to it).
    pub namespace: String,
    /// Recorded as the writer of every object.
    pub field_manager: String,
    /// Writes happen only while this is current.
    pub claim: Claim,
    /// Write counters.
    pub metrics: Metrics,
    /// Keys worked on at once per writer, and retry backoff.
    pub write_concurrency: usize,
    /// First retry delay of a failing write.
    pub backoff_base: Duration,
    /// Longest retry delay.
    pub backoff_max: Duration,
    /// Warning Events.
    pub warnings: mpsc::Sender<Warning>,
    /// The writers' health, summed over every mirrored kind (for readiness).
    pub health: Arc<watch::Sender<WriterHealth>>,
}

/// Objects to want or unwant, by key, per kind.
type Wants = BTreeMap<ObjectKind, Vec<(ObjectKey, Option<DynamicObject>)>>;

struct Engine {
    setup: Setup,
    index: IdentityIndex,
    mirror: MirrorConfig,
    /// The local cluster's namespaces: a NetworkSet can only be written into
    /// one that exists (and only a policy there could select it).
    local_namespaces: HashSet<Arc<str>>,
    writers: BTreeMap<ObjectKind, (WriterHandle<DynamicObject>, AbortOnDrop)>,
    /// Each writer's last health, summed into `setup.health`.
    healths: Arc<Mutex<BTreeMap<ObjectKind, WriterHealth>>>,
    synced: bool,
    /// Whether the last look found a configured output missing.
    missing_reported: bool,
}

/// Applies events until every sender is gone. Nothing is written before the
/// local namespaces are listed and every remote cluster has had its first
/// outcome (`settled`); then every managed object nobody wants (left by a
/// previous run, say) is deleted.
pub async fn run(
    setup: Setup,
    mut events: mpsc::Receiver<IdentityEvent>,
    mut settled: watch::Receiver<bool>,
) {
    let namespaces = watches::watch(
        Api::<Namespace>::all(setup.local.clone()),
        watcher::Config::default(),
    );
    let mut namespaces = std::pin::pin!(namespaces);
    let mut namespaces_listed = false;
    let mut engine = Engine {
        setup,
        index: IdentityIndex::new(),
        mirror: MirrorConfig {
            calico: None,
            cilium: false,
        },
        local_namespaces: HashSet::default(),
        writers: BTreeMap::new(),
        healths: Arc::default(),
        synced: false,
        missing_reported: false,
    };
    let mut look_at = Some(Instant::now());
    loop {
        tokio::select! {
            event = events.recv() => {
                let Some(event) = event else { return };
                let mut changes = apply(&mut engine.index, event);
                for _ in 0..BATCH {
                    let Ok(event) = events.try_recv() else { break };
                    changes.merge(apply(&mut engine.index, event));
                }
                let rewrites = rewrites(&engine.index, &engine.mirror, &changes);
                engine.send(engine.wants(rewrites));
            }
            Some(signal) = namespaces.next() => match signal {
                Signal::Update(update) => {
                    let touched = engine.local_namespaces_changed(update);
                    engine.rewrite_namespaces(&touched);
                }
                Signal::Progress(Progress::Listed) => namespaces_listed = true,
                Signal::Progress(Progress::Failed(failure)) => {
                    tracing::warn!("watching the local namespaces failed; retrying: {}", failure.detail);
                }
                Signal::Progress(Progress::Recovered) => {}
            },
            Ok(()) = settled.changed() => {}
            () = sleep_until(look_at) => {
                let again = engine.setup.backoff_max;
                look_at = engine.look_for_outputs().await.then(|| Instant::now() + again);
            }
        }
        if !engine.synced && namespaces_listed && *settled.borrow() {
            engine.synced = true;
            tracing::info!(
                endpoints = engine.index.len(),
                "every remote cluster has been listed or has failed; mirroring remote endpoints"
            );
            let kinds: Vec<ObjectKind> = engine.writers.keys().copied().collect();
            engine.resync(&kinds);
        }
    }
}

impl Engine {
    /// Finds the resources of configured outputs not found yet and starts
    /// their writers; says whether one is still missing.
    async fn look_for_outputs(&mut self) -> bool {
        let local = self.setup.local.clone();
        let mut missing = Vec::new();
        if self.setup.outputs.calico && self.mirror.calico.is_none() {
            let of = |api| resources::of_kind(ObjectKind::NetworkSet(api));
            match resources::calico_api(&local, of).await {
                Ok(Some(api)) => {
                    tracing::info!(
                        api_version = ObjectKind::NetworkSet(api).api_version(),
                        "mirroring remote endpoints into Calico NetworkSets and GlobalNetworkSets"
                    );
                    self.mirror.calico = Some(api);
                    self.start_outputs(&[
                        ObjectKind::NetworkSet(api),
                        ObjectKind::GlobalNetworkSet(api),
                    ]);
                }
                Ok(None) => missing.push(
                    "Calico NetworkSets are not served (neither projectcalico.org/v3 nor \
                     crd.projectcalico.org/v1 networksets): install Calico's CRDs or API server, \
                     or turn --identity-calico off",
                ),
                Err(error) => {
                    tracing::warn!(
                        "cannot ask the local API server which Calico API it serves; asking again: {}",
                        chain(&error)
                    );
                    return true;
                }
            }
        }
        if self.setup.outputs.cilium && !self.mirror.cilium {
            let kind = ObjectKind::CiliumCidrGroup;
            match resources::served(&local, &resources::of_kind(kind)).await {
                Ok(true) => {
                    tracing::info!("mirroring remote endpoints into CiliumCIDRGroups");
                    self.mirror.cilium = true;
                    self.start_outputs(&[kind]);
                }
                Ok(false) => missing.push(
                    "CiliumCIDRGroups are not served (cilium.io/v2alpha1 ciliumcidrgroups): \
                     install Cilium's CRDs, or turn --identity-cilium off",
                ),
                Err(error) => {
                    tracing::warn!(
                        "cannot ask the local API server whether it serves CiliumCIDRGroups; asking again: {}",
                        chain(&error)
                    );
                    return true;
                }
            }
        }
        if missing.is_empty() {
            return false;
        }
        // Told once, by the leader: a follower's Warning would wait for it
        // to lead (runtime::events), and nothing here says when the resource
        // appears, so it could be told after the problem is over.
        if !self.missing_reported && self.setup.claim.is_current() {
            self.missing_reported = true;
            for problem in missing {
                tracing::error!(
                    "endpoint identity writes nothing for this output: {problem}; looking again every {} ms",
                    self.setup.backoff_max.as_millis()
                );
                let warning = Warning::new(
                    ObjectReference {
                        api_version: Some("v1".into()),
                        kind: Some("Namespace".into()),
                        name: Some(self.setup.namespace.clone()),
                        ..ObjectReference::default()
                    },
                    "MirrorResourceMissing",
                    format!("Endpoint identity writes nothing: {problem}."),
                );
                let _ = self.setup.warnings.try_send(warning);
            }
        }
        true
    }

    /// Starts a writer per kind; once the view is complete, gives each its
    /// objects from scratch.
    fn start_outputs(&mut self, kinds: &[ObjectKind]) {
        for &kind in kinds {
            let resource = resources::of_kind(kind);
            let setup = &self.setup;
            let (handle, inputs) = WriterHandle::channel();
            let (writer, mut health) = Writer::new(
                WriterConfig {
                    kind: kind.kind(),
                    concurrency: setup.write_concurrency,
                    backoff_base: setup.backoff_base,
                    backoff_max: setup.backoff_max,
                    leave_foreign: Some((MANAGED_BY_LABEL, MANAGED_BY)),
                },
                Arc::new(ApiTarget::dynamic(
                    setup.local.clone(),
                    setup.field_manager.clone(),
                    resource.clone(),
                )),
                setup.claim.clone(),
                setup.metrics.clone(),
                covers,
            );
            let live = watches::watch(
                Api::<DynamicObject>::all_with(setup.local.clone(), &resource),
                watcher::Config::default().labels(&format!("{MANAGED_BY_LABEL}={MANAGED_BY}")),
            );
            let (healths, summary) = (self.healths.clone(), self.setup.health.clone());
            let report = async move {
                while health.changed().await.is_ok() {
                    let now = *health.borrow_and_update();
                    let mut all = healths.lock().unwrap_or_else(PoisonError::into_inner);
                    all.insert(kind, now);
                    summary.send_replace(WriterHealth {
                        failing: all.values().map(|h| h.failing).sum(),
                        failing_since: all.values().filter_map(|h| h.failing_since).min(),
                    });
                }
            };
            let task = AbortOnDrop(tokio::spawn(async move {
                tokio::join!(writer.run(live, inputs), report);
            }));
            self.writers.insert(kind, (handle, task));
        }
        if self.synced {
            self.resync(kinds);
        }
    }

    /// Gives the writers of `kinds` every object from scratch and says the
    /// view is complete (so managed objects nobody wants are deleted).
    fn resync(&mut self, kinds: &[ObjectKind]) {
        let full = desired(&self.index, &self.mirror);
        if let Some(message) = full.skipped.message() {
            tracing::warn!("{message}");
        }
        let mut rewrites: Vec<Rewrite> = full
            .objects
            .into_values()
            .map(|object| Rewrite {
                object: object.object.clone(),
                desired: Some(object),
            })
            .collect();
        // The per-event path cannot see a shared name: unwant what it wrote.
        rewrites.extend(
            full.skipped
                .collisions
                .into_iter()
                .map(|(object, _, _)| Rewrite {
                    object,
                    desired: None,
                }),
        );
        rewrites.retain(|r| kinds.contains(&r.object.kind));
        self.send(self.wants(rewrites));
        for kind in kinds {
            if let Some((writer, _)) = self.writers.get(kind) {
                writer.synced();
            }
        }
    }

    /// The rewrites as writer input; a NetworkSet for a namespace the local
    /// cluster does not have is unwanted.
    fn wants(&self, rewrites: Vec<Rewrite>) -> Wants {
        let mut wants = Wants::new();
        for rewrite in rewrites {
            let object = &rewrite.object;
            let key = ObjectKey {
                namespace: object.namespace.clone(),
                name: object.name.clone(),
            };
            let here = object
                .namespace
                .as_ref()
                .is_none_or(|ns| self.local_namespaces.contains(ns));
            let body = rewrite.desired.filter(|_| here).and_then(|d| {
                serde_json::from_value::<DynamicObject>(d.to_json())
                    .inspect_err(|e| tracing::warn!(object = %d.object, "cannot encode a mirrored object: {e}"))
                    .ok()
            });
            wants.entry(object.kind).or_default().push((key, body));
        }
        wants
    }

    fn send(&self, wants: Wants) {
        for (kind, objects) in wants {
            if let Some((writer, _)) = self.writers.get(&kind) {
                writer.want(objects);
            }
        }
    }

    /// Applies a change of the local namespaces; gives the namespaces that
    /// appeared or went.
    fn local_namespaces_changed(&mut self, update: Update<Namespace>) -> Vec<Arc<str>> {
        let name = |ns: &Namespace| ns.metadata.name.as_deref().map(Arc::<str>::from);
        match update {
            Update::Reset(all) => {
                let fresh: HashSet<Arc<str>> = all.iter().filter_map(name).collect();
                let touched = fresh
                    .symmetric_difference(&self.local_namespaces)
                    .cloned()
                    .collect();
                self.local_namespaces = fresh;
                touched
            }
            Update::Apply(ns) => name(&ns)
                .filter(|n| self.local_namespaces.insert(n.clone()))
                .into_iter()
                .collect(),
            Update::Delete(ns) => name(&ns)
                .filter(|n| self.local_namespaces.remove(n))
                .into_iter()
                .collect(),
        }
    }

    /// Rewrites the NetworkSets of the remote pods in `namespaces`.
    fn rewrite_namespaces(&self, namespaces: &[Arc<str>]) {
        if namespaces.is_empty() || self.mirror.calico.is_none() {
            return;
        }
        let changes = IdentityChanges {
            endpoints: self
                .index
                .endpoints()
                .map(|e| e.key())
                .filter(|k| k.cluster().is_some())
                .filter(|k| k.namespace().is_some_and(|ns| namespaces.contains(ns)))
                .cloned()
                .collect(),
        };
        let mirror = MirrorConfig {
            cilium: false,
            ..self.mirror
        };
        self.send(self.wants(rewrites(&self.index, &mirror, &changes)));
    }
}

/// Whether a live mirrored object holds exactly what is wanted: labels
/// (a label the endpoint lost must go), source annotation and spec.
fn covers(desired: &DynamicObject, live: &DynamicObject) -> bool {
    let source = |o: &DynamicObject| {
        o.metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(SOURCE_ANNOTATION))
            .cloned()
    };
    desired.metadata.labels == live.metadata.labels
        && source(desired) == source(live)
        && desired.data.get("spec") == live.data.get("spec")
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
