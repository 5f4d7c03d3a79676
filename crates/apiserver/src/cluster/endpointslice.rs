//! The EndpointSlice controller: `discovery.k8s.io/v1` EndpointSlices for
//! each Service with a selector, reconciled against the stored slices the
//! way kube-controller-manager's endpointslice reconciler does it.
//!
//! Per address type the Service supports, the selected pods that are not
//! terminal and have an IP become endpoints (terminating pods included,
//! with `terminating: true`; `ready` is `serving && !terminating`, or
//! always true with `publishNotReadyAddresses`). Pods whose node is not
//! known are skipped unless `publishNotReadyAddresses` is set (the zone
//! comes from the node's `topology.kubernetes.io/zone` label). Endpoints
//! are grouped by their resolved port list; existing slices are kept and
//! edited in place where possible, new endpoints fill the fullest updated
//! slices first, then the unchanged slice closest to full, then new slices
//! of at most 100 endpoints named `<service>-` + random suffix. A Service
//! with no endpoints keeps one empty placeholder slice per address type.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{Node, ObjectReference, Pod, Service};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort, EndpointSlice};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

use super::endpoints::{ANNOTATION_LAST_CHANGE_TRIGGER_TIME, LABEL_HEADLESS};
use super::gohash;
use super::pods::{self, IpFamily};
use super::write::{ObjectKey, Write};

/// Label naming the Service a slice belongs to.
pub const LABEL_SERVICE_NAME: &str = "kubernetes.io/service-name";
/// Label naming the controller that manages a slice.
pub const LABEL_MANAGED_BY: &str = "endpointslice.kubernetes.io/managed-by";
/// The value of [`LABEL_MANAGED_BY`] kube-controller-manager writes.
pub const CONTROLLER_NAME: &str = "endpointslice-controller.k8s.io";
/// Node label holding the zone.
pub const LABEL_TOPOLOGY_ZONE: &str = "topology.kubernetes.io/zone";
/// Default maximum number of endpoints in one slice.
pub const MAX_ENDPOINTS_PER_SLICE: usize = 100;

/// Tunables of the reconciler.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SliceOptions {
    /// Endpoints per slice (kube-controller-manager's
    /// `--max-endpoints-per-slice`, default 100).
    pub max_endpoints_per_slice: usize,
    /// Skip pods whose `spec.nodeName` names no known Node, as Kubernetes
    /// does. An embedded cluster without Node objects may turn it off.
    pub skip_pods_without_node: bool,
    /// Written to [`LABEL_MANAGED_BY`]; only slices with this value are
    /// considered the controller's own.
    pub controller_name: String,
}

impl Default for SliceOptions {
    fn default() -> Self {
        Self {
            max_endpoints_per_slice: MAX_ENDPOINTS_PER_SLICE,
            skip_pods_without_node: true,
            controller_name: CONTROLLER_NAME.to_string(),
        }
    }
}

/// The writes one sync performs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SlicePlan {
    /// New slices; they carry `generateName`, no name.
    pub create: Vec<EndpointSlice>,
    /// Changed slices, with the stored metadata (resourceVersion included).
    pub update: Vec<EndpointSlice>,
    /// Slices to delete.
    pub delete: Vec<ObjectKey>,
}

impl SlicePlan {
    /// Whether the sync writes nothing.
    pub fn is_empty(&self) -> bool {
        self.create.is_empty() && self.update.is_empty() && self.delete.is_empty()
    }

    /// The plan as a flat list of writes: creates, then updates, then deletes.
    pub fn into_writes(self) -> Vec<Write<EndpointSlice>> {
        let creates = self.create.into_iter().map(Write::Create);
        let updates = self.update.into_iter().map(Write::Update);
        let deletes = self.delete.into_iter().map(Write::Delete);
        creates.chain(updates).chain(deletes).collect()
    }
}

/// Identity of an endpoint within a slice set (Kubernetes' endpoint hash):
/// sorted addresses, hostname and target namespace/name.
type EndpointKey = (Vec<String>, Option<String>, Option<String>, Option<String>);
type PortsKey = Vec<(Option<String>, Option<i32>, Option<String>, Option<String>)>;

fn endpoint_key(e: &Endpoint) -> EndpointKey {
    let mut addresses = e.addresses.clone();
    addresses.sort();
    let target = e.target_ref.as_ref();
    (
        addresses,
        e.hostname.clone(),
        target.and_then(|t| t.namespace.clone()),
        target.and_then(|t| t.name.clone()),
    )
}

/// Kubernetes sorts a slice's ports by the hash of each port.
fn sort_ports(ports: &mut [EndpointPort]) {
    ports.sort_by_cached_key(|p| gohash::hash_key(&gohash::spew_slice_port(p)));
}

fn ports_key(ports: Option<&Vec<EndpointPort>>) -> PortsKey {
    let mut ports: Vec<EndpointPort> = ports.cloned().unwrap_or_default();
    sort_ports(&mut ports);
    ports
        .into_iter()
        .map(|p| (p.name, p.port, p.protocol, p.app_protocol))
        .collect()
}

fn endpoints_equal_beyond_hash(a: &Endpoint, b: &Endpoint) -> bool {
    let conditions = |e: &Endpoint| e.conditions.clone().unwrap_or_default();
    let target = |e: &Endpoint| {
        e.target_ref.as_ref().map(|t| {
            (
                t.kind.clone(),
                t.namespace.clone(),
                t.name.clone(),
                t.uid.clone(),
            )
        })
    };
    a.node_name == b.node_name
        && a.zone == b.zone
        && conditions(a) == conditions(b)
        && a.hints == b.hints
        && target(a) == target(b)
}

fn endpoint_ports(service: &Service, pod: &Pod) -> Vec<EndpointPort> {
    let ports = service
        .spec
        .as_ref()
        .and_then(|s| s.ports.as_deref())
        .unwrap_or(&[]);
    let mut out: Vec<EndpointPort> = ports
        .iter()
        .filter_map(|sp| {
            let number = pods::find_port(pod, sp)?;
            Some(EndpointPort {
                port: Some(number),
                // Always present, empty for an unnamed port, as Kubernetes
                // writes it.
                name: Some(sp.name.clone().unwrap_or_default()),
                protocol: Some(pods::port_protocol(sp).to_string()),
                app_protocol: sp.app_protocol.clone(),
            })
        })
        .collect();
    sort_ports(&mut out);
    out
}

fn pod_to_endpoint(
    pod: &Pod,
    node: Option<&Node>,
    service: &Service,
    family: IpFamily,
) -> Endpoint {
    let serving = pods::is_pod_ready(pod);
    let terminating = pod.metadata.deletion_timestamp.is_some();
    let publish = service
        .spec
        .as_ref()
        .and_then(|s| s.publish_not_ready_addresses)
        .unwrap_or(false);
    let ready = publish || (serving && !terminating);
    let spec = pod.spec.as_ref();
    Endpoint {
        addresses: pods::pod_ips(pod)
            .into_iter()
            .filter(|ip| IpFamily::of(ip).unwrap_or(IpFamily::V4) == family)
            .map(str::to_string)
            .collect(),
        conditions: Some(EndpointConditions {
            ready: Some(ready),
            serving: Some(serving),
            terminating: Some(terminating),
        }),
        target_ref: Some(ObjectReference {
            kind: Some("Pod".to_string()),
            namespace: pod.metadata.namespace.clone(),
            name: pod.metadata.name.clone(),
            uid: pod.metadata.uid.clone(),
            ..Default::default()
        }),
        node_name: spec
            .and_then(|s| s.node_name.clone())
            .filter(|n| !n.is_empty()),
        zone: node
            .and_then(|n| n.metadata.labels.as_ref())
            .and_then(|l| l.get(LABEL_TOPOLOGY_ZONE))
            .filter(|z| !z.is_empty())
            .cloned(),
        hostname: if pods::should_set_hostname(pod, service) {
            spec.and_then(|s| s.hostname.clone())
        } else {
            None
        },
        ..Default::default()
    }
}

fn is_reserved_label(key: &str) -> bool {
    key == LABEL_SERVICE_NAME || key == LABEL_MANAGED_BY || key == LABEL_HEADLESS
}

/// The labels a slice of this Service carries: the Service's own (minus
/// reserved keys), the headless marker, the service name and the manager.
pub fn slice_labels(service: &Service, controller_name: &str) -> BTreeMap<String, String> {
    let mut labels: BTreeMap<String, String> = service
        .metadata
        .labels
        .iter()
        .flatten()
        .filter(|(k, _)| !is_reserved_label(k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if !pods::is_service_ip_set(service) {
        labels.insert(LABEL_HEADLESS.to_string(), String::new());
    }
    labels.insert(
        LABEL_SERVICE_NAME.to_string(),
        service.metadata.name.clone().unwrap_or_default(),
    );
    labels.insert(LABEL_MANAGED_BY.to_string(), controller_name.to_string());
    labels
}

/// The controller owner reference a slice carries to its Service.
pub fn service_owner_reference(service: &Service) -> OwnerReference {
    OwnerReference {
        api_version: "v1".to_string(),
        kind: "Service".to_string(),
        name: service.metadata.name.clone().unwrap_or_default(),
        uid: service.metadata.uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

fn owned_by(slice: &EndpointSlice, service: &Service) -> bool {
    let uid = service.metadata.uid.as_deref().unwrap_or_default();
    slice
        .metadata
        .owner_references
        .iter()
        .flatten()
        .any(|r| r.kind == "Service" && r.api_version == "v1" && !uid.is_empty() && r.uid == uid)
}

fn new_slice(
    service: &Service,
    ports: &[EndpointPort],
    family: IpFamily,
    options: &SliceOptions,
) -> EndpointSlice {
    let name = service.metadata.name.clone().unwrap_or_default();
    EndpointSlice {
        metadata: ObjectMeta {
            generate_name: Some(format!("{name}-")),
            namespace: service.metadata.namespace.clone(),
            labels: Some(slice_labels(service, &options.controller_name)),
            owner_references: Some(vec![service_owner_reference(service)]),
            ..Default::default()
        },
        address_type: family.address_type().to_string(),
        endpoints: Vec::new(),
        ports: (!ports.is_empty()).then(|| ports.to_vec()),
    }
}

fn slice_key(slice: &EndpointSlice, fallback_namespace: &str) -> ObjectKey {
    ObjectKey::new(
        slice
            .metadata
            .namespace
            .clone()
            .unwrap_or_else(|| fallback_namespace.to_string()),
        slice.metadata.name.clone().unwrap_or_default(),
    )
}

/// Slices of the namespace that belong to the Service at `key` and are
/// managed by this controller (the reconciler ignores all others).
pub fn managed_slices<'a>(
    key: &ObjectKey,
    slices: &'a [EndpointSlice],
    options: &SliceOptions,
) -> Vec<&'a EndpointSlice> {
    slices
        .iter()
        .filter(|s| s.metadata.namespace.as_deref().unwrap_or(&key.namespace) == key.namespace)
        .filter(|s| {
            let labels = s.metadata.labels.as_ref();
            labels.and_then(|l| l.get(LABEL_SERVICE_NAME)) == Some(&key.name)
                && labels.and_then(|l| l.get(LABEL_MANAGED_BY)) == Some(&options.controller_name)
        })
        // Slices already being deleted are left to finish.
        .filter(|s| s.metadata.deletion_timestamp.is_none())
        .collect()
}

struct Reconciled {
    create: Vec<EndpointSlice>,
    update: Vec<EndpointSlice>,
    delete: Vec<EndpointSlice>,
}

fn reconcile_port_mapping(
    service: &Service,
    existing: &[&EndpointSlice],
    mut desired: BTreeMap<EndpointKey, Endpoint>,
    ports: &[EndpointPort],
    family: IpFamily,
    options: &SliceOptions,
) -> Reconciled {
    let max = options.max_endpoints_per_slice.max(1);
    let mut by_name: BTreeMap<String, EndpointSlice> = BTreeMap::new();
    let mut unchanged: BTreeSet<String> = BTreeSet::new();
    let mut to_update: BTreeSet<String> = BTreeSet::new();
    let mut to_delete: BTreeSet<String> = BTreeSet::new();
    let labels = slice_labels(service, &options.controller_name);

    for slice in existing {
        let name = slice.metadata.name.clone().unwrap_or_default();
        let mut kept = Vec::new();
        let mut endpoint_updated = false;
        for endpoint in &slice.endpoints {
            if let Some(want) = desired.remove(&endpoint_key(endpoint)) {
                if !endpoints_equal_beyond_hash(&want, endpoint) {
                    endpoint_updated = true;
                }
                kept.push(want);
            }
        }
        if endpoint_updated || kept.len() != slice.endpoints.len() {
            if kept.is_empty() {
                to_delete.insert(name.clone());
                by_name.insert(name, (*slice).clone());
            } else {
                let mut copy = (*slice).clone();
                copy.endpoints = kept;
                copy.metadata.labels = Some(labels.clone());
                to_update.insert(name.clone());
                by_name.insert(name, copy);
            }
        } else if slice.metadata.labels.as_ref() != Some(&labels) {
            let mut copy = (*slice).clone();
            copy.metadata.labels = Some(labels.clone());
            to_update.insert(name.clone());
            by_name.insert(name, copy);
        } else {
            unchanged.insert(name.clone());
            by_name.insert(name, (*slice).clone());
        }
    }

    let mut pending: Vec<Endpoint> = desired.into_values().collect();
    pending.reverse(); // pop() takes the smallest key first

    // Fill the slices that are being updated anyway, fullest first.
    if !pending.is_empty() && !to_update.is_empty() {
        let mut names: Vec<String> = to_update.iter().cloned().collect();
        names.sort_by_key(|n| std::cmp::Reverse(by_name.get(n).map_or(0, |s| s.endpoints.len())));
        for n in names {
            if let Some(slice) = by_name.get_mut(&n) {
                while slice.endpoints.len() < max {
                    let Some(e) = pending.pop() else { break };
                    slice.endpoints.push(e);
                }
            }
        }
    }

    let mut create = Vec::new();
    while !pending.is_empty() {
        let mut fill_name = None;
        if pending.len() < max && !unchanged.is_empty() {
            // The unchanged slice that ends up closest to full.
            let mut closest = max;
            for n in &unchanged {
                let len = by_name.get(n).map_or(0, |s| s.endpoints.len());
                if pending.len() + len <= max {
                    let diff = max - (pending.len() + len);
                    if diff < closest {
                        closest = diff;
                        fill_name = Some(n.clone());
                        if diff == 0 {
                            break;
                        }
                    }
                }
            }
        }
        match fill_name.and_then(|n| by_name.get_mut(&n).map(|s| (n, s))) {
            Some((n, slice)) => {
                while slice.endpoints.len() < max {
                    let Some(e) = pending.pop() else { break };
                    slice.endpoints.push(e);
                }
                unchanged.remove(&n);
                to_update.insert(n);
            }
            None => {
                let mut slice = new_slice(service, ports, family, options);
                while slice.endpoints.len() < max {
                    let Some(e) = pending.pop() else { break };
                    slice.endpoints.push(e);
                }
                create.push(slice);
            }
        }
    }

    Reconciled {
        create,
        update: to_update
            .iter()
            .filter_map(|n| by_name.get(n).cloned())
            .collect(),
        delete: to_delete
            .iter()
            .filter_map(|n| by_name.get(n).cloned())
            .collect(),
    }
}

/// Kubernetes' placeholder comparison: same address type, namespace and
/// labels, no endpoints and no ports.
fn is_placeholder_of(
    slice: &EndpointSlice,
    service: &Service,
    family: IpFamily,
    options: &SliceOptions,
) -> bool {
    slice.address_type == family.address_type()
        && slice.endpoints.is_empty()
        && slice.ports.as_ref().is_none_or(Vec::is_empty)
        && slice.metadata.namespace == service.metadata.namespace
        && slice.metadata.labels.clone().unwrap_or_default()
            == slice_labels(service, &options.controller_name)
}

fn reconcile_address_type(
    service: &Service,
    pods_in: &[&Pod],
    nodes: &[Node],
    existing: &[&EndpointSlice],
    family: IpFamily,
    options: &SliceOptions,
) -> Reconciled {
    let publish = service
        .spec
        .as_ref()
        .and_then(|s| s.publish_not_ready_addresses)
        .unwrap_or(false);
    let mut desired: BTreeMap<PortsKey, (Vec<EndpointPort>, BTreeMap<EndpointKey, Endpoint>)> =
        BTreeMap::new();
    for pod in pods_in {
        if !pods::should_pod_be_in_endpoints(pod, true) {
            continue;
        }
        let ports = endpoint_ports(service, pod);
        let key = ports_key(Some(&ports));
        let node_name = pod.spec.as_ref().and_then(|s| s.node_name.as_deref());
        let node = nodes
            .iter()
            .find(|n| node_name.is_some() && n.metadata.name.as_deref() == node_name);
        let entry = desired
            .entry(key)
            .or_insert_with(|| (ports, BTreeMap::new()));
        if node.is_none() && options.skip_pods_without_node && !publish {
            continue;
        }
        let endpoint = pod_to_endpoint(pod, node, service, family);
        if !endpoint.addresses.is_empty() {
            entry.1.insert(endpoint_key(&endpoint), endpoint);
        }
    }

    let mut existing_by_ports: BTreeMap<PortsKey, Vec<&EndpointSlice>> = BTreeMap::new();
    let mut out = Reconciled {
        create: Vec::new(),
        update: Vec::new(),
        delete: Vec::new(),
    };
    for slice in existing {
        if owned_by(slice, service) {
            existing_by_ports
                .entry(ports_key(slice.ports.as_ref()))
                .or_default()
                .push(slice);
        } else {
            out.delete.push((*slice).clone());
        }
    }

    for (key, (ports, endpoints)) in &desired {
        let current = existing_by_ports.get(key).map(Vec::as_slice).unwrap_or(&[]);
        let r = reconcile_port_mapping(service, current, endpoints.clone(), ports, family, options);
        out.create.extend(r.create);
        out.update.extend(r.update);
        out.delete.extend(r.delete);
    }
    for (key, slices) in &existing_by_ports {
        if !desired.contains_key(key) {
            out.delete.extend(slices.iter().map(|s| (*s).clone()));
        }
    }

    if existing.len() == out.delete.len() && out.create.is_empty() {
        if out.delete.len() == 1 && is_placeholder_of(&out.delete[0], service, family, options) {
            out.delete.clear();
        } else {
            out.create.push(new_slice(service, &[], family, options));
        }
    }
    out
}

/// Computes the EndpointSlice writes for the Service at `key`.
///
/// `service` is `None` once the Service is gone (its slices are then left
/// to the garbage collector through their owner reference, as in
/// Kubernetes), `pods` and `nodes` are the cluster's (pods outside the
/// namespace or selector are ignored), `existing` the stored slices (any;
/// the controller's own for this Service are picked out). Services without
/// a selector or of type ExternalName get no writes: their slices are the
/// user's. `trigger_time`, when given, is written to
/// `endpoints.kubernetes.io/last-change-trigger-time` on changed slices.
pub fn sync_endpoint_slices(
    key: &ObjectKey,
    service: Option<&Service>,
    pods_all: &[Pod],
    nodes: &[Node],
    existing: &[EndpointSlice],
    trigger_time: Option<jiff::Timestamp>,
    options: &SliceOptions,
) -> SlicePlan {
    let Some(service) = service else {
        return SlicePlan::default();
    };
    if pods::managed_selector(service).is_none() {
        return SlicePlan::default();
    }
    let mine = managed_slices(key, existing, options);
    let selected = pods::selected_pods(service, pods_all);
    let families = pods::slice_families(service);

    let mut create = Vec::new();
    let mut update = Vec::new();
    let mut delete = Vec::new();
    let mut by_family: BTreeMap<IpFamily, Vec<&EndpointSlice>> = BTreeMap::new();
    for slice in &mine {
        match IpFamily::of_address_type(&slice.address_type) {
            Some(f) if families.contains(&f) => by_family.entry(f).or_default().push(slice),
            _ => delete.push((*slice).clone()),
        }
    }
    for family in families {
        let existing = by_family.get(&family).map(Vec::as_slice).unwrap_or(&[]);
        let r = reconcile_address_type(service, &selected, nodes, existing, family, options);
        create.extend(r.create);
        update.extend(r.update);
        delete.extend(r.delete);
    }

    // Reuse the names of slices about to be deleted for slices about to be
    // created, as Kubernetes does, turning a delete+create into an update.
    let mut kept_deletes = Vec::new();
    for old in delete {
        let reusable = owned_by(&old, service)
            && create
                .last()
                .is_some_and(|c: &EndpointSlice| c.address_type == old.address_type);
        match create.pop() {
            Some(mut new) if reusable => {
                new.metadata.name = old.metadata.name.clone();
                new.metadata.resource_version = old.metadata.resource_version.clone();
                new.metadata.uid = old.metadata.uid.clone();
                new.metadata.creation_timestamp = old.metadata.creation_timestamp.clone();
                update.push(new);
            }
            popped => {
                create.extend(popped);
                kept_deletes.push(old);
            }
        }
    }

    if let Some(t) = trigger_time {
        for slice in create.iter_mut().chain(update.iter_mut()) {
            slice
                .metadata
                .annotations
                .get_or_insert_with(BTreeMap::new)
                .insert(
                    ANNOTATION_LAST_CHANGE_TRIGGER_TIME.to_string(),
                    t.to_string(),
                );
        }
    }
    SlicePlan {
        create,
        update,
        delete: kept_deletes
            .iter()
            .map(|s| slice_key(s, &key.namespace))
            .collect(),
    }
}

impl IpFamily {
    /// The family an EndpointSlice `addressType` names (`FQDN` has none).
    pub fn of_address_type(address_type: &str) -> Option<Self> {
        match address_type {
            "IPv4" => Some(Self::V4),
            "IPv6" => Some(Self::V6),
            _ => None,
        }
    }
}
