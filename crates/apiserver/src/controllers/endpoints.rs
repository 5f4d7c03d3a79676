//! Endpoints and EndpointSlices of Services, from their pods (`cluster::endpoints`,
//! `cluster::endpointslice`), and EndpointSlices mirrored from selector-less
//! Services' Endpoints (`cluster::mirroring`), per Service key.
//!
//! Watch events are routed to the keys they affect through a small index
//! ([`EndpointsIndex`]): every Service's selector, the zone of every Node,
//! and the names of the slices that name each Service. A sync of one key
//! then reads only what that Service needs, straight from the store: the
//! Service, its Endpoints, its namespace's pods and slices.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::{Endpoints, Node, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::decode::{self, cluster_key, namespaced_key};
use super::feed::Sink;
use super::queue::WorkQueue;
use super::reads;
use super::runner::{Outcome, Reconciler};
use super::writes::apply;
use crate::cluster::endpointslice::{LABEL_SERVICE_NAME, LABEL_TOPOLOGY_ZONE, SliceOptions};
use crate::cluster::{ObjectKey, endpoints, endpointslice, mirroring, pods};
use crate::objects::{ApiError, Objects};
use crate::store::{Event, KeyValue};

/// Field manager of the Endpoints this controller writes (also how it tells
/// them from user-written ones).
pub const ENDPOINTS_MANAGER: &str = "endpoint-controller";
/// Field manager of the EndpointSlices.
const SLICE_MANAGER: &str = "endpointslice-controller";
const MIRROR_MANAGER: &str = "endpointslicemirroring-controller";
/// [`ENDPOINTS_MANAGER`] as it appears in stored JSON.
const ENDPOINTS_MANAGER_JSON: &[u8] = b"\"endpoint-controller\"";

const SERVICES: &str = "/registry/core/services/";
const PODS: &str = "/registry/core/pods/";
const NODES: &str = "/registry/core/nodes/";
const ENDPOINTS: &str = "/registry/core/endpoints/";
const SLICES: &str = "/registry/discovery.k8s.io/endpointslices/";

/// The prefixes the controller watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Source {
    Services,
    Pods,
    Nodes,
    Endpoints,
    Slices,
}

/// What the controller watches, with the tag of each.
pub(super) const SOURCES: [(&str, Source); 5] = [
    (SERVICES, Source::Services),
    (PODS, Source::Pods),
    (NODES, Source::Nodes),
    (ENDPOINTS, Source::Endpoints),
    (SLICES, Source::Slices),
];

type Selector = BTreeMap<String, String>;

/// What routing events to Service keys needs, and nothing more: no pod, no
/// Endpoints object and no slice is kept.
#[derive(Debug, Default)]
pub(super) struct EndpointsIndex {
    /// Every Service by namespace and name, with the selector the
    /// controllers manage it by (`None`: its endpoints are the user's).
    services: HashMap<String, BTreeMap<String, Option<Selector>>>,
    /// Every Node's zone label.
    nodes: BTreeMap<String, Option<String>>,
    /// Names of the slices labelled with each Service's name.
    slices: HashMap<ObjectKey, BTreeSet<String>>,
    /// What a list in progress has found so far.
    listing_services: Option<HashMap<String, BTreeMap<String, Option<Selector>>>>,
    listing_nodes: Option<BTreeMap<String, Option<String>>>,
    listing_slices: Option<HashMap<ObjectKey, BTreeSet<String>>>,
}

fn slice_service(slice: &ObjectKey, value: &[u8]) -> Option<ObjectKey> {
    if !decode::contains(value, LABEL_SERVICE_NAME.as_bytes()) {
        return None;
    }
    let name = decode::labels(value).remove(LABEL_SERVICE_NAME)?;
    Some(ObjectKey::new(slice.namespace.clone(), name))
}

fn node_zone(value: &[u8]) -> Option<String> {
    decode::labels(value)
        .remove(LABEL_TOPOLOGY_ZONE)
        .filter(|z| !z.is_empty())
}

impl EndpointsIndex {
    /// Keys of every Service with a selector.
    fn selector_services(&self) -> Vec<ObjectKey> {
        self.services
            .iter()
            .flat_map(|(ns, names)| {
                names
                    .iter()
                    .filter(|(_, sel)| sel.is_some())
                    .map(move |(name, _)| ObjectKey::new(ns.clone(), name.clone()))
            })
            .collect()
    }

    fn all_services(&self) -> impl Iterator<Item = ObjectKey> + '_ {
        self.services.iter().flat_map(|(ns, names)| {
            names
                .keys()
                .map(move |name| ObjectKey::new(ns.clone(), name.clone()))
        })
    }

    fn has_service(&self, key: &ObjectKey) -> bool {
        self.services
            .get(&key.namespace)
            .is_some_and(|names| names.contains_key(&key.name))
    }

    /// Services of `namespace` whose selector matches any of the label sets.
    fn services_matching(
        &self,
        namespace: &str,
        label_sets: &[BTreeMap<String, String>],
    ) -> Vec<ObjectKey> {
        let Some(names) = self.services.get(namespace) else {
            return Vec::new();
        };
        names
            .iter()
            .filter(|(_, sel)| {
                sel.as_ref().is_some_and(|sel| {
                    label_sets
                        .iter()
                        .any(|labels| pods::selector_matches(sel, Some(labels)))
                })
            })
            .map(|(name, _)| ObjectKey::new(namespace, name.clone()))
            .collect()
    }

    /// Whether an Endpoints change at `key` may need a sync: it belongs to a
    /// Service, has slices mirrored from it, or the controller wrote it.
    fn endpoints_matter(&self, key: &ObjectKey, value: Option<&[u8]>) -> bool {
        self.has_service(key)
            || self.slices.contains_key(key)
            || value.is_some_and(|v| decode::contains(v, ENDPOINTS_MANAGER_JSON))
    }

    fn add_slice(map: &mut HashMap<ObjectKey, BTreeSet<String>>, service: ObjectKey, slice: &str) {
        map.entry(service).or_default().insert(slice.to_owned());
    }

    fn remove_slice(&mut self, service: &ObjectKey, slice: &str) {
        if let Some(names) = self.slices.get_mut(service) {
            names.remove(slice);
            if names.is_empty() {
                self.slices.remove(service);
            }
        }
    }

    /// A list of `source` starts.
    pub fn begin_list(&mut self, source: Source) {
        match source {
            Source::Services => self.listing_services = Some(HashMap::new()),
            Source::Nodes => self.listing_nodes = Some(BTreeMap::new()),
            Source::Slices => self.listing_slices = Some(HashMap::new()),
            Source::Pods | Source::Endpoints => {}
        }
    }

    /// One listed object; returns the keys to sync.
    pub fn listed(&mut self, source: Source, kv: &KeyValue) -> Vec<ObjectKey> {
        match source {
            Source::Services => {
                if let (Some(key), Some(listing)) = (
                    namespaced_key(SERVICES, &kv.key),
                    self.listing_services.as_mut(),
                ) {
                    listing
                        .entry(key.namespace)
                        .or_default()
                        .insert(key.name, decode::service_selector(&kv.value));
                }
                Vec::new()
            }
            Source::Nodes => {
                if let (Some(name), Some(listing)) =
                    (cluster_key(NODES, &kv.key), self.listing_nodes.as_mut())
                {
                    listing.insert(name.to_owned(), node_zone(&kv.value));
                }
                Vec::new()
            }
            Source::Slices => {
                if let Some(slice) = namespaced_key(SLICES, &kv.key)
                    && let Some(service) = slice_service(&slice, &kv.value)
                    && let Some(listing) = self.listing_slices.as_mut()
                {
                    Self::add_slice(listing, service, &slice.name);
                }
                Vec::new()
            }
            Source::Endpoints => namespaced_key(ENDPOINTS, &kv.key)
                .filter(|key| self.endpoints_matter(key, Some(&kv.value)))
                .into_iter()
                .collect(),
            Source::Pods => Vec::new(),
        }
    }

    /// The list is complete; returns the keys to sync (changes may have
    /// been missed before it, so every key that may be affected).
    pub fn end_list(&mut self, source: Source) -> Vec<ObjectKey> {
        match source {
            Source::Services => {
                let Some(listed) = self.listing_services.take() else {
                    return Vec::new();
                };
                let mut keys: BTreeSet<ObjectKey> = self.all_services().collect();
                self.services = listed;
                keys.extend(self.all_services());
                keys.into_iter().collect()
            }
            Source::Nodes => {
                let Some(listed) = self.listing_nodes.take() else {
                    return Vec::new();
                };
                if listed == self.nodes {
                    return Vec::new();
                }
                self.nodes = listed;
                self.selector_services()
            }
            Source::Slices => {
                let Some(listed) = self.listing_slices.take() else {
                    return Vec::new();
                };
                let mut keys: BTreeSet<ObjectKey> = self.slices.keys().cloned().collect();
                self.slices = listed;
                keys.extend(self.slices.keys().cloned());
                keys.into_iter().collect()
            }
            Source::Pods => self.selector_services(),
            Source::Endpoints => Vec::new(),
        }
    }

    /// A watched change; returns the keys to sync.
    pub fn changed(&mut self, source: Source, event: &Event) -> Vec<ObjectKey> {
        let (value, prev) = match event {
            Event::Put { kv, prev } => (Some(&kv.value[..]), prev.as_ref().map(|p| &p.value[..])),
            Event::Delete { kv } => (None, Some(&kv.value[..])),
        };
        match source {
            Source::Services => {
                let Some(key) = namespaced_key(SERVICES, event.key()) else {
                    return Vec::new();
                };
                let names = self.services.entry(key.namespace.clone()).or_default();
                match value {
                    Some(v) => {
                        names.insert(key.name.clone(), decode::service_selector(v));
                    }
                    None => {
                        names.remove(&key.name);
                        if names.is_empty() {
                            self.services.remove(&key.namespace);
                        }
                    }
                }
                vec![key]
            }
            Source::Pods => {
                let Some(key) = namespaced_key(PODS, event.key()) else {
                    return Vec::new();
                };
                // Most pods live where no Service selects anything.
                if !self
                    .services
                    .get(&key.namespace)
                    .is_some_and(|names| names.values().any(Option::is_some))
                {
                    return Vec::new();
                }
                let mut label_sets: Vec<BTreeMap<String, String>> =
                    value.into_iter().map(decode::labels).collect();
                if let Some(old) = prev.map(decode::labels)
                    && !label_sets.contains(&old)
                {
                    label_sets.push(old);
                }
                self.services_matching(&key.namespace, &label_sets)
            }
            Source::Nodes => {
                let Some(name) = cluster_key(NODES, event.key()) else {
                    return Vec::new();
                };
                let before = self.nodes.get(name).cloned();
                let after = value.map(node_zone);
                if before == after {
                    return Vec::new();
                }
                match after {
                    Some(zone) => self.nodes.insert(name.to_owned(), zone),
                    None => self.nodes.remove(name),
                };
                self.selector_services()
            }
            Source::Endpoints => namespaced_key(ENDPOINTS, event.key())
                .filter(|key| self.endpoints_matter(key, value))
                .into_iter()
                .collect(),
            Source::Slices => {
                let Some(slice) = namespaced_key(SLICES, event.key()) else {
                    return Vec::new();
                };
                let old = prev.and_then(|p| slice_service(&slice, p));
                let new = value.and_then(|v| slice_service(&slice, v));
                if let Some(old) = &old {
                    self.remove_slice(old, &slice.name);
                }
                if let Some(new) = &new {
                    Self::add_slice(&mut self.slices, new.clone(), &slice.name);
                }
                let mut keys: Vec<ObjectKey> = old.into_iter().collect();
                keys.extend(new.filter(|n| !keys.contains(n)));
                keys
            }
        }
    }

    /// The Nodes as the slice reconciler reads them: name and zone.
    fn nodes(&self) -> Vec<Node> {
        self.nodes
            .iter()
            .map(|(name, zone)| Node {
                metadata: ObjectMeta {
                    name: Some(name.clone()),
                    labels: zone
                        .as_ref()
                        .map(|z| BTreeMap::from([(LABEL_TOPOLOGY_ZONE.to_owned(), z.clone())])),
                    ..ObjectMeta::default()
                },
                ..Node::default()
            })
            .collect()
    }
}

/// The controller: index, queue, and the object layer it writes through.
pub(super) struct EndpointsController {
    objects: Objects,
    index: Mutex<EndpointsIndex>,
    queue: WorkQueue<ObjectKey>,
}

impl EndpointsController {
    pub fn new(objects: Objects) -> Arc<Self> {
        Arc::new(EndpointsController {
            objects,
            index: Mutex::new(EndpointsIndex::default()),
            queue: WorkQueue::new(),
        })
    }

    fn index(&self) -> std::sync::MutexGuard<'_, EndpointsIndex> {
        // Every index method leaves it consistent before it can panic.
        self.index.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn sync_key(&self, key: &ObjectKey) -> Result<Outcome, ApiError> {
        let store = self.objects.store().raw();
        let (ns, name) = (&key.namespace, &key.name);
        let service: Option<Service> =
            reads::get_typed(store, &format!("{SERVICES}{ns}/{name}")).await?;
        let current: Option<Endpoints> =
            reads::get_typed(store, &format!("{ENDPOINTS}{ns}/{name}")).await?;
        let mut slices: Vec<EndpointSlice> = Vec::new();
        reads::for_each(store, &format!("{SLICES}{ns}/"), |kv| {
            let named_for_key = decode::contains(&kv.value, name.as_bytes())
                && decode::labels(&kv.value).get(LABEL_SERVICE_NAME) == Some(name);
            if named_for_key && let Some(s) = decode::typed(kv) {
                slices.push(s);
            }
        })
        .await?;
        let mut selected: Vec<Pod> = Vec::new();
        if let Some(selector) = service.as_ref().and_then(pods::managed_selector) {
            reads::for_each(store, &format!("{PODS}{ns}/"), |kv| {
                let labels = decode::labels(&kv.value);
                if pods::selector_matches(selector, Some(&labels))
                    && let Some(p) = decode::pod(kv)
                {
                    selected.push(p);
                }
            })
            .await?;
        }
        let nodes = self.index().nodes();

        let mut writes = Writes::new(&self.objects);
        let ours = current
            .as_ref()
            .is_some_and(|e| written_by(e, ENDPOINTS_MANAGER));
        if (service.is_some() || ours)
            && let Some(w) =
                endpoints::sync_endpoints(key, service.as_ref(), &selected, current.as_ref(), None)
        {
            writes.apply("", "endpoints", w, ENDPOINTS_MANAGER).await;
        }
        let options = SliceOptions {
            // Nothing registers Nodes in an embedded cluster; pods still count.
            skip_pods_without_node: !nodes.is_empty(),
            ..SliceOptions::default()
        };
        let plan = endpointslice::sync_endpoint_slices(
            key,
            service.as_ref(),
            &selected,
            &nodes,
            &slices,
            None,
            &options,
        );
        for w in plan.into_writes() {
            writes
                .apply("discovery.k8s.io", "endpointslices", w, SLICE_MANAGER)
                .await;
        }
        let plan =
            mirroring::sync_mirrored_slices(key, service.as_ref(), current.as_ref(), &slices);
        for w in plan.into_writes() {
            writes
                .apply("discovery.k8s.io", "endpointslices", w, MIRROR_MANAGER)
                .await;
        }
        writes.finish()
    }
}

/// Writes of one sync: all are attempted, the first failure is reported
/// (the key is then retried and the plan made again from the store).
struct Writes<'a> {
    objects: &'a Objects,
    failed: Option<ApiError>,
}

impl<'a> Writes<'a> {
    fn new(objects: &'a Objects) -> Self {
        Writes {
            objects,
            failed: None,
        }
    }

    async fn apply<T: Serialize + DeserializeOwned>(
        &mut self,
        group: &str,
        plural: &str,
        w: crate::cluster::Write<T>,
        manager: &str,
    ) {
        if let Err(e) = apply(self.objects, group, plural, w, manager).await {
            self.failed.get_or_insert(e);
        }
    }

    fn finish(self) -> Result<Outcome, ApiError> {
        match self.failed {
            Some(e) => Err(e),
            None => Ok(Outcome::Done),
        }
    }
}

fn written_by(endpoints: &Endpoints, manager: &str) -> bool {
    endpoints
        .metadata
        .managed_fields
        .iter()
        .flatten()
        .any(|m| m.manager.as_deref() == Some(manager))
}

impl Sink<Source> for EndpointsController {
    fn begin_list(&self, source: Source) {
        self.index().begin_list(source);
    }

    fn listed(&self, source: Source, kv: &KeyValue) {
        let keys = self.index().listed(source, kv);
        self.queue.add_all(keys);
    }

    fn end_list(&self, source: Source) {
        let keys = self.index().end_list(source);
        self.queue.add_all(keys);
    }

    fn changed(&self, source: Source, event: &Event) {
        let keys = self.index().changed(source, event);
        self.queue.add_all(keys);
    }
}

impl Reconciler for EndpointsController {
    type Key = ObjectKey;

    fn queue(&self) -> &WorkQueue<ObjectKey> {
        &self.queue
    }

    fn sync<'a>(&'a self, key: &'a ObjectKey) -> BoxFuture<'a, Result<Outcome, ApiError>> {
        Box::pin(self.sync_key(key))
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use serde_json::json;

    use super::*;

    fn kv(key: &str, value: serde_json::Value) -> KeyValue {
        KeyValue {
            key: key.to_owned(),
            value: Bytes::from(serde_json::to_vec(&value).unwrap()),
            create_revision: 1,
            mod_revision: 1,
        }
    }

    fn put(key: &str, value: serde_json::Value, prev: Option<serde_json::Value>) -> Event {
        Event::Put {
            kv: kv(key, value),
            prev: prev.map(|p| kv(key, p)),
        }
    }

    fn delete(key: &str, value: serde_json::Value) -> Event {
        Event::Delete { kv: kv(key, value) }
    }

    fn service(selector: serde_json::Value) -> serde_json::Value {
        json!({"metadata": {}, "spec": {"selector": selector}})
    }

    fn pod(labels: serde_json::Value) -> serde_json::Value {
        json!({"metadata": {"labels": labels}, "status": {"podIP": "10.0.0.1"}})
    }

    fn keys(list: &[(&str, &str)]) -> Vec<ObjectKey> {
        list.iter().map(|(ns, n)| ObjectKey::new(*ns, *n)).collect()
    }

    fn index_with_services() -> EndpointsIndex {
        let mut index = EndpointsIndex::default();
        for (key, value) in [
            (
                "/registry/core/services/a/web",
                service(json!({"app": "web"})),
            ),
            (
                "/registry/core/services/a/web-canary",
                service(json!({"app": "web", "track": "canary"})),
            ),
            (
                "/registry/core/services/a/db",
                service(json!({"app": "db"})),
            ),
            ("/registry/core/services/a/manual", json!({"spec": {}})),
            (
                "/registry/core/services/b/web",
                service(json!({"app": "web"})),
            ),
        ] {
            index.changed(Source::Services, &put(key, value, None));
        }
        index
    }

    #[test]
    fn pod_label_change_enqueues_exactly_the_matching_services() {
        let mut index = index_with_services();
        let moved = put(
            "/registry/core/pods/a/p",
            pod(json!({"app": "db"})),
            Some(pod(json!({"app": "web", "track": "canary"}))),
        );
        let mut got = index.changed(Source::Pods, &moved);
        got.sort();
        assert_eq!(got, keys(&[("a", "db"), ("a", "web"), ("a", "web-canary")]));

        let status_only = put(
            "/registry/core/pods/a/p",
            pod(json!({"app": "web"})),
            Some(pod(json!({"app": "web"}))),
        );
        assert_eq!(
            index.changed(Source::Pods, &status_only),
            keys(&[("a", "web")])
        );
        let gone = delete("/registry/core/pods/b/q", pod(json!({"app": "web"})));
        assert_eq!(index.changed(Source::Pods, &gone), keys(&[("b", "web")]));
        let unselected = put(
            "/registry/core/pods/a/x",
            pod(json!({"app": "cache"})),
            None,
        );
        assert!(index.changed(Source::Pods, &unselected).is_empty());
        let elsewhere = put("/registry/core/pods/c/x", pod(json!({"app": "web"})), None);
        assert!(index.changed(Source::Pods, &elsewhere).is_empty());
    }

    #[test]
    fn a_selector_change_routes_later_pod_events_by_the_new_selector() {
        let mut index = index_with_services();
        let key = "/registry/core/services/a/db";
        assert_eq!(
            index.changed(
                Source::Services,
                &put(key, service(json!({"app": "cache"})), None)
            ),
            keys(&[("a", "db")])
        );
        let cache_pod = put(
            "/registry/core/pods/a/c",
            pod(json!({"app": "cache"})),
            None,
        );
        assert_eq!(
            index.changed(Source::Pods, &cache_pod),
            keys(&[("a", "db")])
        );
        index.changed(Source::Services, &delete(key, json!({})));
        assert!(index.changed(Source::Pods, &cache_pod).is_empty());
        assert!(!index.has_service(&ObjectKey::new("a", "db")));
    }

    #[test]
    fn endpoints_without_a_service_are_neither_queued_nor_kept() {
        let mut index = index_with_services();
        let bench =
            json!({"metadata": {"name": "ep-1"}, "subsets": [{"addresses": [{"ip": "10.0.0.1"}]}]});
        for i in 0..1000 {
            let key = format!("/registry/core/endpoints/bench/ep-{i}");
            assert!(
                index
                    .changed(Source::Endpoints, &put(&key, bench.clone(), None))
                    .is_empty()
            );
            assert!(
                index
                    .listed(Source::Endpoints, &kv(&key, bench.clone()))
                    .is_empty()
            );
        }
        assert_eq!(index.services.len(), 2);
        assert!(index.slices.is_empty());
        // The Endpoints of a Service, and ones the controller wrote, are synced.
        let of_service = put("/registry/core/endpoints/a/web", json!({}), None);
        assert_eq!(
            index.changed(Source::Endpoints, &of_service),
            keys(&[("a", "web")])
        );
        let orphan = put(
            "/registry/core/endpoints/z/old",
            json!({"metadata": {"managedFields": [{"manager": ENDPOINTS_MANAGER}]}}),
            None,
        );
        assert_eq!(
            index.changed(Source::Endpoints, &orphan),
            keys(&[("z", "old")])
        );
    }

    #[test]
    fn slices_are_routed_by_their_service_name_label_old_and_new() {
        let mut index = EndpointsIndex::default();
        let key = "/registry/discovery.k8s.io/endpointslices/a/web-x1";
        let labelled = |svc: &str| json!({"metadata": {"labels": {LABEL_SERVICE_NAME: svc}}, "addressType": "IPv4"});
        assert_eq!(
            index.changed(Source::Slices, &put(key, labelled("web"), None)),
            keys(&[("a", "web")])
        );
        assert_eq!(
            index.changed(
                Source::Slices,
                &put(key, labelled("api"), Some(labelled("web")))
            ),
            keys(&[("a", "web"), ("a", "api")])
        );
        assert!(!index.slices.contains_key(&ObjectKey::new("a", "web")));
        // Mirrored slices make their Endpoints' changes matter.
        let ep = put("/registry/core/endpoints/a/api", json!({}), None);
        assert_eq!(index.changed(Source::Endpoints, &ep), keys(&[("a", "api")]));
        index.changed(Source::Slices, &delete(key, labelled("api")));
        assert!(index.slices.is_empty());
        assert!(index.changed(Source::Endpoints, &ep).is_empty());
    }

    #[test]
    fn only_node_zone_changes_enqueue_every_selecting_service() {
        let mut index = index_with_services();
        let node =
            |zone: &str| json!({"metadata": {"labels": {LABEL_TOPOLOGY_ZONE: zone}}, "status": {}});
        let key = "/registry/core/nodes/n1";
        let mut first = index.changed(Source::Nodes, &put(key, node("z1"), None));
        first.sort();
        assert_eq!(
            first,
            keys(&[("a", "db"), ("a", "web"), ("a", "web-canary"), ("b", "web")])
        );
        let heartbeat = put(key, node("z1"), Some(node("z1")));
        assert!(index.changed(Source::Nodes, &heartbeat).is_empty());
        assert_eq!(
            index
                .changed(Source::Nodes, &put(key, node("z2"), None))
                .len(),
            4
        );
        assert_eq!(
            index.nodes()[0].metadata.labels.as_ref().unwrap()[LABEL_TOPOLOGY_ZONE],
            "z2"
        );
    }

    #[test]
    fn a_relist_replaces_the_index_and_enqueues_old_and_new_keys() {
        let mut index = index_with_services();
        index.begin_list(Source::Services);
        index.listed(
            Source::Services,
            &kv("/registry/core/services/c/new", service(json!({"x": "y"}))),
        );
        let mut got = index.end_list(Source::Services);
        got.sort();
        assert_eq!(
            got,
            keys(&[
                ("a", "db"),
                ("a", "manual"),
                ("a", "web"),
                ("a", "web-canary"),
                ("b", "web"),
                ("c", "new")
            ])
        );
        assert_eq!(index.all_services().count(), 1);
        // After a pod relist every selecting Service is synced.
        index.begin_list(Source::Pods);
        assert_eq!(index.end_list(Source::Pods), keys(&[("c", "new")]));
    }

    #[tokio::test]
    async fn endpoints_follow_a_pod_whose_labels_move_it_out_of_the_selector() {
        use crate::controllers::testing::{eventually, objects_with_namespace};
        use crate::objects::WriteOptions;
        use crate::registry::Subresource;
        let objects = objects_with_namespace("ep").await;
        let (tx, rx) = tokio::sync::watch::channel(false);
        let mut set = tokio::task::JoinSet::new();
        crate::controllers::runner::start(
            &mut set,
            objects.store().raw(),
            EndpointsController::new(objects.clone()),
            "endpoints",
            &SOURCES,
            1,
            &rx,
        );
        let registry = objects.registry();
        let pods = registry.resolve("", "v1", "pods").unwrap();
        let services = registry.resolve("", "v1", "services").unwrap();
        let eps = registry.resolve("", "v1", "endpoints").unwrap();
        let opts = WriteOptions::default();
        let created = objects
            .create(
                &pods,
                Some("ep"),
                json!({"metadata": {"name": "a", "labels": {"app": "web"}},
                       "spec": {"containers": [{"name": "c", "image": "i"}]}}),
                &opts,
            )
            .await
            .unwrap()
            .object;
        let mut with_status = created;
        with_status["status"] = json!({"phase": "Running", "podIP": "10.1.0.1",
            "podIPs": [{"ip": "10.1.0.1"}], "conditions": [{"type": "Ready", "status": "True"}]});
        objects
            .update(
                &pods,
                Some("ep"),
                "a",
                with_status,
                &opts,
                Some(Subresource::Status),
            )
            .await
            .unwrap();
        objects
            .create(
                &services,
                Some("ep"),
                json!({"metadata": {"name": "web"},
                       "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}}),
                &opts,
            )
            .await
            .unwrap();
        let address = async || {
            let e = objects.get(&eps, Some("ep"), "web").await.ok()?;
            Some(e["subsets"][0]["addresses"][0]["ip"].as_str()?.to_owned())
        };
        let written = eventually(async || address().await.as_deref() == Some("10.1.0.1")).await;
        assert!(
            written,
            "endpoints {:?}, pod {:?}",
            objects.get(&eps, Some("ep"), "web").await,
            objects.get(&pods, Some("ep"), "a").await
        );
        let mut moved = objects.get(&pods, Some("ep"), "a").await.unwrap();
        moved["metadata"]["labels"] = json!({"app": "other"});
        objects
            .update(&pods, Some("ep"), "a", moved, &opts, None)
            .await
            .unwrap();
        let emptied = eventually(async || {
            objects
                .get(&eps, Some("ep"), "web")
                .await
                .is_ok_and(|e| e.get("subsets").is_none())
        })
        .await;
        assert!(
            emptied,
            "the pod's old labels route the change to the Service"
        );
        tx.send(true).unwrap();
        tokio::time::timeout(std::time::Duration::from_secs(5), set.join_all())
            .await
            .expect("the controller stops on shutdown");
    }
}
