//! The simulated scheduler and kubelet (`cluster::simulation` decides), per
//! pod and per simulated Node: unbound pods are bound to a Node, bound pods
//! on simulated Nodes become Running and Ready after the configured delay
//! with an IP from the Node's pod CIDR, terminating pods are removed once
//! their containers "stopped", and each simulated Node keeps its Ready
//! condition and renews its Lease in `kube-node-lease`.
//!
//! Event-driven like the other controllers: pod and Node watches queue the
//! keys they affect; the only timers are a pod's start (or stop) delay and
//! each Node's heartbeat, both as delayed queue entries.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::time::Instant;

use super::decode::{cluster_key, namespaced_key};
use super::feed::Sink;
use super::queue::WorkQueue;
use super::runner::{Outcome, Reconciler};
use crate::cluster::ObjectKey;
use crate::cluster::simulation::{self, DataPlaneOptions, NodeFit, SIMULATED_NODE_ANNOTATION};
use crate::objects::{ApiError, DeleteOptions, Objects, WriteOptions, meta};
use crate::registry::Subresource;
use crate::store::{Event, KeyValue};

const PODS: &str = "/registry/core/pods/";
const NODES: &str = "/registry/core/nodes/";
const MANAGER: &str = "kubelet";
const LEASE_NAMESPACE: &str = "kube-node-lease";

/// The prefixes the controller watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Source {
    Pods,
    Nodes,
}

/// What the controller watches, with the tag of each.
pub(super) const SOURCES: [(&str, Source); 2] = [(PODS, Source::Pods), (NODES, Source::Nodes)];

/// A pod or a simulated Node.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) enum Key {
    Pod(ObjectKey),
    Node(String),
}

/// The fields of a pod the index keeps.
#[derive(Debug, Default, Deserialize)]
struct PodView {
    #[serde(default)]
    metadata: PodMeta,
    #[serde(default)]
    spec: PodSpecView,
    #[serde(default)]
    status: PodStatusView,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PodMeta {
    #[serde(default)]
    deletion_timestamp: Option<Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PodSpecView {
    #[serde(default)]
    node_name: Option<String>,
    #[serde(default)]
    host_network: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PodStatusView {
    #[serde(default)]
    pod_ip: Option<String>,
}

/// What the index keeps of a Node.
#[derive(Debug, Clone, PartialEq, Eq)]
struct NodeState {
    simulated: bool,
    ready: bool,
    unschedulable: bool,
    labels: BTreeMap<String, String>,
    cidr: Option<Ipv4Addr>,
    host_ip: String,
    max_pods: u32,
}

fn node_state(value: &[u8]) -> Option<NodeState> {
    let v: Value = serde_json::from_slice(value).ok()?;
    let simulated = v["metadata"]["annotations"][SIMULATED_NODE_ANNOTATION] == "true";
    let ready = if simulated {
        !simulation::marked_unready(&v)
    } else {
        v["status"]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| c["type"] == "Ready" && c["status"] == "True")
    };
    let cidr = v["spec"]["podCIDR"]
        .as_str()
        .and_then(|c| c.split_once('/'))
        .and_then(|(ip, _)| ip.parse().ok());
    let host_ip = v["status"]["addresses"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|a| a["type"] == "InternalIP")
        .and_then(|a| a["address"].as_str())
        .unwrap_or_default()
        .to_owned();
    let labels = serde_json::from_value(v["metadata"]["labels"].clone()).unwrap_or_default();
    Some(NodeState {
        simulated,
        ready,
        unschedulable: v["spec"]["unschedulable"] == true,
        labels,
        cidr,
        host_ip,
        max_pods: v["status"]["allocatable"]["pods"]
            .as_str()
            .and_then(|p| p.parse().ok())
            .unwrap_or(110),
    })
}

/// Where one pod is, as far as the index knows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct PodPlace {
    node: Option<String>,
    /// Its IP's offset in the Node's /24 (reserved before it is written).
    offset: Option<u8>,
}

#[derive(Debug, Default)]
struct Index {
    nodes: BTreeMap<String, NodeState>,
    pods: HashMap<ObjectKey, PodPlace>,
    counts: HashMap<String, u32>,
    used: HashMap<String, BTreeSet<u8>>,
    unbound: BTreeSet<ObjectKey>,
    /// When a pod was first seen bound (its start delay runs from there) or
    /// terminating (its stop delay).
    waiting_since: HashMap<ObjectKey, Instant>,
    listing_nodes: Option<BTreeMap<String, NodeState>>,
}

impl Index {
    fn forget_pod(&mut self, key: &ObjectKey) {
        self.unbound.remove(key);
        self.waiting_since.remove(key);
        if let Some(old) = self.pods.remove(key)
            && let Some(node) = old.node
        {
            if let Some(n) = self.counts.get_mut(&node) {
                *n = n.saturating_sub(1);
            }
            if let Some(o) = old.offset
                && let Some(used) = self.used.get_mut(&node)
            {
                used.remove(&o);
            }
        }
    }

    /// Records a pod as stored; a reserved IP survives an event that does
    /// not carry it yet.
    fn record_pod(&mut self, key: &ObjectKey, view: &PodView) {
        let node = view.spec.node_name.clone().filter(|n| !n.is_empty());
        let reserved = self
            .pods
            .get(key)
            .filter(|p| p.node == node)
            .and_then(|p| p.offset);
        let offset = node
            .as_ref()
            .and_then(|n| self.nodes.get(n))
            .and_then(|n| n.cidr)
            .zip(view.status.pod_ip.as_deref())
            .and_then(|(cidr, ip)| simulation::offset_in(cidr, ip))
            .filter(|_| view.spec.host_network != Some(true))
            .or(reserved);
        let waiting = self.waiting_since.remove(key);
        self.forget_pod(key);
        if let Some(w) = waiting {
            self.waiting_since.insert(key.clone(), w);
        }
        if node.is_none() && view.metadata.deletion_timestamp.is_none() {
            self.unbound.insert(key.clone());
        }
        if let Some(n) = &node {
            *self.counts.entry(n.clone()).or_default() += 1;
            if let Some(o) = offset {
                self.used.entry(n.clone()).or_default().insert(o);
            }
        }
        self.pods.insert(key.clone(), PodPlace { node, offset });
    }

    fn pods_on(&self, node: &str) -> Vec<ObjectKey> {
        self.pods
            .iter()
            .filter(|(_, p)| p.node.as_deref() == Some(node))
            .map(|(k, _)| k.clone())
            .collect()
    }

    fn fits(&self) -> Vec<NodeFit> {
        self.nodes
            .iter()
            .map(|(name, n)| NodeFit {
                name: name.clone(),
                labels: n.labels.clone(),
                schedulable: n.ready && !n.unschedulable,
                pods: self.counts.get(name).copied().unwrap_or(0),
                max_pods: n.max_pods,
            })
            .collect()
    }

    /// Puts `key` on `node` ahead of the write, so that concurrent
    /// schedules count it.
    fn reserve_node(&mut self, key: &ObjectKey, node: &str) {
        self.unbound.remove(key);
        *self.counts.entry(node.to_owned()).or_default() += 1;
        self.pods.insert(
            key.clone(),
            PodPlace {
                node: Some(node.to_owned()),
                offset: None,
            },
        );
    }

    /// The pod's IP offset on `node`, reserving a free one when it has none.
    fn reserve_ip(&mut self, key: &ObjectKey, node: &str) -> Option<u8> {
        let place = self.pods.entry(key.clone()).or_default();
        if place.node.as_deref() == Some(node)
            && let Some(o) = place.offset
        {
            return Some(o);
        }
        let used = self.used.entry(node.to_owned()).or_default();
        let o = simulation::free_offset(used)?;
        used.insert(o);
        place.offset = Some(o);
        Some(o)
    }
}

/// The controller: options, index, queue, and the object layer it writes through.
pub(super) struct KubeletController {
    objects: Objects,
    options: DataPlaneOptions,
    index: Mutex<Index>,
    queue: WorkQueue<Key>,
}

impl KubeletController {
    pub fn new(objects: Objects, options: DataPlaneOptions) -> Arc<Self> {
        Arc::new(KubeletController {
            objects,
            options,
            index: Mutex::new(Index::default()),
            queue: WorkQueue::new(),
        })
    }

    fn index(&self) -> std::sync::MutexGuard<'_, Index> {
        // Every index method leaves it consistent before it can panic.
        self.index.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn sync_pod(&self, key: &ObjectKey) -> Result<Outcome, ApiError> {
        let pods = self.resource("", "pods")?;
        let pod = match self
            .objects
            .get(&pods, Some(&key.namespace), &key.name)
            .await
        {
            Ok(p) => p,
            Err(ApiError::NotFound(_)) => return Ok(Outcome::Done),
            Err(e) => return Err(e),
        };
        let node = pod["spec"]["nodeName"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        if meta::is_terminating(&pod) {
            return self.finish_deletion(key, &pod, &node).await;
        }
        if node.is_empty() {
            return self.schedule(key, &pod).await;
        }
        let Some(state) = self.index().nodes.get(&node).cloned() else {
            return Ok(Outcome::Done);
        };
        if !state.simulated
            || matches!(
                pod["status"]["phase"].as_str(),
                Some("Succeeded" | "Failed")
            )
        {
            return Ok(Outcome::Done);
        }
        let started = pod["status"]["phase"] == "Running";
        if !started && let Some(wait) = self.still_waiting(key, self.options.start_delay) {
            self.queue.add_after(Key::Pod(key.clone()), wait);
            return Ok(Outcome::Done);
        }
        let ip = if pod["spec"]["hostNetwork"] == true {
            state.host_ip.clone()
        } else {
            let cidr = state.cidr.ok_or_else(|| {
                ApiError::Internal(format!(
                    "node {node} has no spec.podCIDR to give pods IPs from"
                ))
            })?;
            let offset = self.index().reserve_ip(key, &node).ok_or_else(|| {
                ApiError::Internal(format!("node {node} has no free pod IP left in {cidr}/24"))
            })?;
            simulation::pod_ip(cidr, offset).to_string()
        };
        let ready = state.ready && !simulation::marked_unready(&pod);
        let want = simulation::running_status(&pod, &state.host_ip, &ip, ready, &meta::now());
        self.index().waiting_since.remove(key);
        if simulation::status_matches(&pod, &want) {
            return Ok(Outcome::Done);
        }
        self.write_status(&key.namespace, &key.name, pod, want)
            .await?;
        Ok(Outcome::Done)
    }

    /// How much longer a pod waits (from when it was first seen waiting).
    fn still_waiting(&self, key: &ObjectKey, delay: Duration) -> Option<Duration> {
        let mut index = self.index();
        let since = *index
            .waiting_since
            .entry(key.clone())
            .or_insert_with(Instant::now);
        delay.checked_sub(since.elapsed()).filter(|d| !d.is_zero())
    }

    async fn finish_deletion(
        &self,
        key: &ObjectKey,
        pod: &Value,
        node: &str,
    ) -> Result<Outcome, ApiError> {
        let simulated = self.index().nodes.get(node).is_some_and(|n| n.simulated);
        if !simulated {
            return Ok(Outcome::Done);
        }
        let grace = pod["metadata"]["deletionGracePeriodSeconds"]
            .as_u64()
            .map_or(Duration::ZERO, Duration::from_secs);
        if let Some(wait) = self.still_waiting(key, self.options.start_delay.min(grace)) {
            self.queue.add_after(Key::Pod(key.clone()), wait);
            return Ok(Outcome::Done);
        }
        let pods = self.resource("", "pods")?;
        let opts = DeleteOptions {
            grace_period_seconds: Some(0),
            precondition_uid: pod["metadata"]["uid"].as_str().map(str::to_owned),
            ..DeleteOptions::default()
        };
        match self
            .objects
            .delete(&pods, Some(&key.namespace), &key.name, &opts)
            .await
        {
            Ok(_) | Err(ApiError::NotFound(_)) => Ok(Outcome::Done),
            Err(e) => Err(e),
        }
    }

    async fn schedule(&self, key: &ObjectKey, pod: &Value) -> Result<Outcome, ApiError> {
        let scheduler = pod["spec"]["schedulerName"]
            .as_str()
            .unwrap_or("default-scheduler");
        if scheduler != "default-scheduler" {
            return Ok(Outcome::Done);
        }
        let chosen = {
            let mut index = self.index();
            let chosen = simulation::schedule(&pod["spec"], &index.fits());
            if let Ok(node) = &chosen {
                index.reserve_node(key, node);
            }
            chosen
        };
        let pods = self.resource("", "pods")?;
        match chosen {
            Ok(node) => match self
                .objects
                .bind_pod(&pods, &key.namespace, &key.name, &node)
                .await
            {
                Ok(()) | Err(ApiError::NotFound(_)) => Ok(Outcome::Done),
                Err(ApiError::Conflict { .. }) => Ok(Outcome::Done),
                Err(e) => Err(e),
            },
            Err(message) => {
                if let Some(status) = simulation::unschedulable_status(pod, &message, &meta::now())
                {
                    self.write_status(&key.namespace, &key.name, pod.clone(), status)
                        .await?;
                }
                Ok(Outcome::Done)
            }
        }
    }

    async fn write_status(
        &self,
        ns: &str,
        name: &str,
        mut pod: Value,
        status: Value,
    ) -> Result<(), ApiError> {
        let pods = self.resource("", "pods")?;
        pod["status"] = status;
        match self
            .objects
            .update(
                &pods,
                Some(ns),
                name,
                pod,
                &manager(),
                Some(Subresource::Status),
            )
            .await
        {
            Ok(_) | Err(ApiError::NotFound(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn sync_node(&self, name: &str) -> Result<Outcome, ApiError> {
        let nodes = self.resource("", "nodes")?;
        let node = match self.objects.get(&nodes, None, name).await {
            Ok(n) => n,
            Err(ApiError::NotFound(_)) => return Ok(Outcome::Done),
            Err(e) => return Err(e),
        };
        if node["metadata"]["annotations"][SIMULATED_NODE_ANNOTATION] != "true" {
            return Ok(Outcome::Done);
        }
        let ready = !simulation::marked_unready(&node);
        if let Some(status) = simulation::node_status(&node, ready, &meta::now()) {
            let mut next = node.clone();
            next["status"] = status;
            self.objects
                .update(
                    &nodes,
                    None,
                    name,
                    next,
                    &manager(),
                    Some(Subresource::Status),
                )
                .await?;
        }
        self.renew_lease(name, &node).await?;
        self.queue
            .add_after(Key::Node(name.to_owned()), self.options.heartbeat);
        Ok(Outcome::Done)
    }

    async fn renew_lease(&self, name: &str, node: &Value) -> Result<(), ApiError> {
        let leases = self.resource("coordination.k8s.io", "leases")?;
        let now = jiff::Timestamp::now()
            .strftime("%Y-%m-%dT%H:%M:%S%.6fZ")
            .to_string();
        let lease_seconds = (self.options.heartbeat.as_secs() * 4).max(40);
        match self.objects.get(&leases, Some(LEASE_NAMESPACE), name).await {
            Ok(mut lease) => {
                lease["spec"]["renewTime"] = json!(now);
                self.objects
                    .update(
                        &leases,
                        Some(LEASE_NAMESPACE),
                        name,
                        lease,
                        &manager(),
                        None,
                    )
                    .await?;
            }
            Err(ApiError::NotFound(_)) => {
                let body = json!({"metadata": {"name": name, "ownerReferences": [{
                        "apiVersion": "v1", "kind": "Node", "name": name,
                        "uid": node["metadata"]["uid"]}]},
                    "spec": {"holderIdentity": name, "leaseDurationSeconds": lease_seconds,
                        "renewTime": now}});
                match self
                    .objects
                    .create(&leases, Some(LEASE_NAMESPACE), body, &manager())
                    .await
                {
                    Ok(_) | Err(ApiError::AlreadyExists(_)) => {}
                    Err(e) => return Err(e),
                }
            }
            Err(e) => return Err(e),
        }
        Ok(())
    }

    fn resource(
        &self,
        group: &str,
        plural: &str,
    ) -> Result<Arc<crate::registry::ResourceInfo>, ApiError> {
        self.objects
            .registry()
            .resolve(group, "v1", plural)
            .ok_or(ApiError::NoRoute)
    }

    /// A Node appeared, went, or changed readiness, cordon or labels: its
    /// pods and every unbound pod need another look.
    fn node_changed(&self, index: &mut Index, name: &str, after: Option<NodeState>) -> Vec<Key> {
        let before = index.nodes.get(name).cloned();
        let mut keys = Vec::new();
        if after.as_ref().is_some_and(|n| n.simulated) {
            keys.push(Key::Node(name.to_owned()));
        }
        if before == after {
            return keys;
        }
        match after {
            Some(n) => index.nodes.insert(name.to_owned(), n),
            None => index.nodes.remove(name),
        };
        keys.extend(index.pods_on(name).into_iter().map(Key::Pod));
        keys.extend(index.unbound.iter().cloned().map(Key::Pod));
        keys
    }
}

fn manager() -> WriteOptions {
    WriteOptions {
        field_manager: Some(MANAGER.into()),
        ..WriteOptions::default()
    }
}

impl Sink<Source> for KubeletController {
    fn begin_list(&self, source: Source) {
        if source == Source::Nodes {
            self.index().listing_nodes = Some(BTreeMap::new());
        }
    }

    fn listed(&self, source: Source, kv: &KeyValue) {
        match source {
            Source::Pods => {
                if let Some(key) = namespaced_key(PODS, &kv.key) {
                    let view: PodView = serde_json::from_slice(&kv.value).unwrap_or_default();
                    self.index().record_pod(&key, &view);
                    self.queue.add(Key::Pod(key));
                }
            }
            Source::Nodes => {
                if let Some(name) = cluster_key(NODES, &kv.key)
                    && let Some(state) = node_state(&kv.value)
                    && let Some(listing) = self.index().listing_nodes.as_mut()
                {
                    listing.insert(name.to_owned(), state);
                }
            }
        }
    }

    fn end_list(&self, source: Source) {
        if source != Source::Nodes {
            return;
        }
        let keys = {
            let mut index = self.index();
            let Some(listed) = index.listing_nodes.take() else {
                return;
            };
            let mut names: BTreeSet<String> = index.nodes.keys().cloned().collect();
            names.extend(listed.keys().cloned());
            let mut keys = Vec::new();
            for name in names {
                let after = listed.get(&name).cloned();
                keys.extend(self.node_changed(&mut index, &name, after));
            }
            keys
        };
        self.queue.add_all(keys);
    }

    fn changed(&self, source: Source, event: &Event) {
        let keys = match (source, event) {
            (Source::Pods, Event::Put { kv, .. }) => {
                let Some(key) = namespaced_key(PODS, &kv.key) else {
                    return;
                };
                let view: PodView = serde_json::from_slice(&kv.value).unwrap_or_default();
                self.index().record_pod(&key, &view);
                vec![Key::Pod(key)]
            }
            (Source::Pods, Event::Delete { kv }) => {
                if let Some(key) = namespaced_key(PODS, &kv.key) {
                    self.index().forget_pod(&key);
                }
                // A freed slot may fit a pod waiting for room.
                self.index().unbound.iter().cloned().map(Key::Pod).collect()
            }
            (Source::Nodes, _) => {
                let Some(name) = cluster_key(NODES, event.key()) else {
                    return;
                };
                let after = match event {
                    Event::Put { kv, .. } => node_state(&kv.value),
                    Event::Delete { .. } => None,
                };
                let mut index = self.index();
                self.node_changed(&mut index, name, after)
            }
        };
        self.queue.add_all(keys);
    }
}

impl Reconciler for KubeletController {
    type Key = Key;

    fn queue(&self) -> &WorkQueue<Key> {
        &self.queue
    }

    fn sync<'a>(&'a self, key: &'a Key) -> BoxFuture<'a, Result<Outcome, ApiError>> {
        Box::pin(async move {
            match key {
                Key::Pod(k) => self.sync_pod(k).await,
                Key::Node(n) => self.sync_node(n).await,
            }
        })
    }
}

/// Creates the configured simulated Nodes that do not exist yet.
pub(super) async fn register_nodes(
    objects: &Objects,
    options: &DataPlaneOptions,
) -> Result<(), ApiError> {
    let Some(nodes) = objects.registry().resolve("", "v1", "nodes") else {
        return Ok(());
    };
    for node in options.node_objects() {
        match objects.create(&nodes, None, node, &manager()).await {
            Ok(_) | Err(ApiError::AlreadyExists(_)) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
