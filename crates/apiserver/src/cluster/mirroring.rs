//! The EndpointSlice mirroring controller: for a Service without a
//! selector whose Endpoints a user (or another controller) writes, the
//! Endpoints are mirrored into EndpointSlices managed by
//! `endpointslicemirroring-controller.k8s.io`, as kube-controller-manager
//! does.
//!
//! Endpoints labelled `endpointslice.kubernetes.io/skip-mirror: "true"`
//! (fedmesh marks the Endpoints it writes itself that way) or carrying the
//! old leader-election annotation are not mirrored. Each repacked subset
//! becomes one slice per address type, holding at most 1000 addresses
//! (ready ones first); slices copy the Endpoints' labels and annotations
//! (except the trigger time and `last-applied-configuration`) and are owned
//! by the Endpoints object.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{EndpointAddress, Endpoints, Service};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort, EndpointSlice};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

use super::endpoints::ANNOTATION_LAST_CHANGE_TRIGGER_TIME;
use super::endpointslice::{LABEL_MANAGED_BY, LABEL_SERVICE_NAME, SlicePlan};
use super::pods::IpFamily;
use super::repack::repack_subsets;
use super::write::ObjectKey;

/// The manager name of mirrored slices.
pub const MIRRORING_CONTROLLER_NAME: &str = "endpointslicemirroring-controller.k8s.io";
/// Label that opts Endpoints out of mirroring.
pub const LABEL_SKIP_MIRROR: &str = "endpointslice.kubernetes.io/skip-mirror";
/// Addresses mirrored per subset at most.
pub const MAX_ENDPOINTS_PER_SUBSET: usize = 1000;
const ANNOTATION_LEADER: &str = "control-plane.alpha.kubernetes.io/leader";
const ANNOTATION_LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Whether these Endpoints are mirrored at all.
pub fn should_mirror(endpoints: &Endpoints) -> bool {
    let skip = endpoints
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(LABEL_SKIP_MIRROR))
        .is_some_and(|v| v == "true");
    let leader = endpoints
        .metadata
        .annotations
        .as_ref()
        .is_some_and(|a| a.contains_key(ANNOTATION_LEADER));
    !skip && !leader
}

type EndpointKey = (Vec<String>, Option<String>, Option<String>, Option<String>);
type PortMapKey = (
    String,
    Vec<(Option<String>, Option<i32>, Option<String>, Option<String>)>,
);

fn endpoint_key(e: &Endpoint) -> EndpointKey {
    let mut addresses = e.addresses.clone();
    addresses.sort();
    let t = e.target_ref.as_ref();
    (
        addresses,
        e.hostname.clone(),
        t.and_then(|t| t.namespace.clone()),
        t.and_then(|t| t.name.clone()),
    )
}

fn port_map_key(address_type: &str, ports: Option<&Vec<EndpointPort>>) -> PortMapKey {
    let mut list: Vec<_> = ports
        .into_iter()
        .flatten()
        .map(|p| {
            (
                p.name.clone(),
                p.port,
                p.protocol.clone(),
                p.app_protocol.clone(),
            )
        })
        .collect();
    list.sort();
    (address_type.to_string(), list)
}

fn address_to_endpoint(address: &EndpointAddress, ready: bool) -> Endpoint {
    Endpoint {
        addresses: vec![address.ip.clone()],
        conditions: Some(EndpointConditions {
            ready: Some(ready),
            serving: None,
            terminating: None,
        }),
        target_ref: address.target_ref.clone(),
        node_name: address.node_name.clone(),
        hostname: address.hostname.clone().filter(|h| !h.is_empty()),
        ..Default::default()
    }
}

fn mirrored_annotations(endpoints: &Endpoints) -> BTreeMap<String, String> {
    endpoints
        .metadata
        .annotations
        .iter()
        .flatten()
        .filter(|(k, _)| *k != ANNOTATION_LAST_CHANGE_TRIGGER_TIME && *k != ANNOTATION_LAST_APPLIED)
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

fn new_slice(
    endpoints: &Endpoints,
    ports: &[EndpointPort],
    address_type: &str,
    name: Option<String>,
) -> EndpointSlice {
    let endpoints_name = endpoints.metadata.name.clone().unwrap_or_default();
    let mut labels = endpoints.metadata.labels.clone().unwrap_or_default();
    labels.insert(LABEL_SERVICE_NAME.to_string(), endpoints_name.clone());
    labels.insert(
        LABEL_MANAGED_BY.to_string(),
        MIRRORING_CONTROLLER_NAME.to_string(),
    );
    let annotations = mirrored_annotations(endpoints);
    EndpointSlice {
        metadata: ObjectMeta {
            generate_name: name.is_none().then(|| format!("{endpoints_name}-")),
            name,
            namespace: endpoints.metadata.namespace.clone(),
            labels: Some(labels),
            annotations: (!annotations.is_empty()).then_some(annotations),
            owner_references: Some(vec![OwnerReference {
                api_version: "v1".to_string(),
                kind: "Endpoints".to_string(),
                name: endpoints_name,
                uid: endpoints.metadata.uid.clone().unwrap_or_default(),
                controller: Some(true),
                block_owner_deletion: Some(true),
            }]),
            ..Default::default()
        },
        address_type: address_type.to_string(),
        endpoints: Vec::new(),
        ports: (!ports.is_empty()).then(|| ports.to_vec()),
    }
}

/// Slices this controller mirrored for the Endpoints at `key`.
fn mirrored<'a>(key: &ObjectKey, slices: &'a [EndpointSlice]) -> Vec<&'a EndpointSlice> {
    slices
        .iter()
        .filter(|s| s.metadata.namespace.as_deref().unwrap_or(&key.namespace) == key.namespace)
        .filter(|s| {
            let l = s.metadata.labels.as_ref();
            l.and_then(|l| l.get(LABEL_SERVICE_NAME)) == Some(&key.name)
                && l.and_then(|l| l.get(LABEL_MANAGED_BY)).map(String::as_str)
                    == Some(MIRRORING_CONTROLLER_NAME)
        })
        .collect()
}

fn delete_all(key: &ObjectKey, slices: &[&EndpointSlice]) -> SlicePlan {
    SlicePlan {
        delete: slices
            .iter()
            .map(|s| {
                ObjectKey::new(
                    key.namespace.clone(),
                    s.metadata.name.clone().unwrap_or_default(),
                )
            })
            .collect(),
        ..SlicePlan::default()
    }
}

fn unchanged(
    endpoints: &Endpoints,
    existing: &EndpointSlice,
    desired: &BTreeMap<EndpointKey, Endpoint>,
) -> bool {
    let have: BTreeMap<EndpointKey, &Endpoint> = existing
        .endpoints
        .iter()
        .map(|e| (endpoint_key(e), e))
        .collect();
    let same_endpoints = have.len() == desired.len()
        && desired.iter().all(|(k, want)| {
            have.get(k).is_some_and(|got| {
                got.conditions == want.conditions
                    && got.node_name == want.node_name
                    && got.target_ref == want.target_ref
            })
        });
    let mut labels = existing.metadata.labels.clone().unwrap_or_default();
    labels.remove(LABEL_MANAGED_BY);
    labels.remove(LABEL_SERVICE_NAME);
    let want_labels = endpoints.metadata.labels.clone().unwrap_or_default();
    let annotations = existing.metadata.annotations.clone().unwrap_or_default();
    let rebuild = existing
        .metadata
        .owner_references
        .iter()
        .flatten()
        .any(|o| {
            o.kind == "Endpoints"
                && Some(&o.name) == endpoints.metadata.name.as_ref()
                && Some(&o.uid) != endpoints.metadata.uid.as_ref()
        });
    same_endpoints
        && labels == want_labels
        && annotations == mirrored_annotations(endpoints)
        && !rebuild
}

/// What the mirroring controller writes for the Endpoints at `key`.
///
/// `service` and `endpoints` are the stored objects of that name (`None`
/// when absent), `existing` any stored slices. Mirrored slices are deleted
/// when the Service or Endpoints goes, when the Service has a selector, or
/// when the Endpoints opt out.
pub fn sync_mirrored_slices(
    key: &ObjectKey,
    service: Option<&Service>,
    endpoints: Option<&Endpoints>,
    existing: &[EndpointSlice],
) -> SlicePlan {
    let mine = mirrored(key, existing);
    let has_selector = service
        .and_then(|s| s.spec.as_ref())
        .is_some_and(|s| s.selector.as_ref().is_some_and(|m| !m.is_empty()));
    let (Some(_), Some(endpoints)) = (service, endpoints) else {
        return delete_all(key, &mine);
    };
    if has_selector || !should_mirror(endpoints) {
        return delete_all(key, &mine);
    }

    // Desired endpoints and ports per (address type, ports).
    let mut desired: BTreeMap<PortMapKey, (Vec<EndpointPort>, BTreeMap<EndpointKey, Endpoint>)> =
        BTreeMap::new();
    for subset in repack_subsets(endpoints.subsets.clone().unwrap_or_default()) {
        let ports: Vec<EndpointPort> = subset
            .ports
            .iter()
            .flatten()
            .map(|p| EndpointPort {
                name: Some(p.name.clone().unwrap_or_default()),
                port: Some(p.port),
                protocol: Some(p.protocol.clone().unwrap_or_else(|| "TCP".to_string())),
                app_protocol: p.app_protocol.clone(),
            })
            .collect();
        let mut added = 0;
        let ready = subset.addresses.iter().flatten().map(|a| (a, true));
        let not_ready = subset
            .not_ready_addresses
            .iter()
            .flatten()
            .map(|a| (a, false));
        for (address, is_ready) in ready.chain(not_ready) {
            if added >= MAX_ENDPOINTS_PER_SUBSET {
                break;
            }
            let Some(family) = IpFamily::of(&address.ip) else {
                continue;
            };
            let entry = desired
                .entry(port_map_key(family.address_type(), Some(&ports)))
                .or_insert_with(|| (ports.clone(), BTreeMap::new()));
            let endpoint = address_to_endpoint(address, is_ready);
            entry.1.insert(endpoint_key(&endpoint), endpoint);
            added += 1;
        }
    }

    let mut existing_by_key: BTreeMap<PortMapKey, Vec<&EndpointSlice>> = BTreeMap::new();
    for s in &mine {
        existing_by_key
            .entry(port_map_key(&s.address_type, s.ports.as_ref()))
            .or_default()
            .push(s);
    }

    let mut create = Vec::new();
    let mut update = Vec::new();
    let mut delete: Vec<&EndpointSlice> = Vec::new();
    for (pm_key, (ports, endpoints_set)) in &desired {
        let current = existing_by_key.get(pm_key).cloned().unwrap_or_default();
        if endpoints_set.is_empty() {
            delete.extend(current);
            continue;
        }
        if let Some(first) = current.first() {
            delete.extend(current.iter().skip(1));
            if unchanged(endpoints, first, endpoints_set) {
                continue;
            }
        }
        let name = current.first().and_then(|s| s.metadata.name.clone());
        let mut slice = new_slice(endpoints, ports, &pm_key.0, name);
        slice.endpoints = endpoints_set
            .values()
            .take(MAX_ENDPOINTS_PER_SUBSET)
            .cloned()
            .collect();
        if let Some(first) = current.first() {
            slice.metadata.resource_version = first.metadata.resource_version.clone();
            update.push(slice);
        } else {
            create.push(slice);
        }
    }
    for (pm_key, slices) in &existing_by_key {
        if !desired.contains_key(pm_key) {
            delete.extend(slices.iter().copied());
        }
    }

    // Recycle slices about to be deleted for slices about to be created.
    let mut kept = Vec::new();
    for old in delete {
        match create
            .iter()
            .rposition(|c: &EndpointSlice| c.address_type == old.address_type)
        {
            Some(i) => {
                let mut new = create.remove(i);
                new.metadata.name = old.metadata.name.clone();
                new.metadata.generate_name = None;
                new.metadata.resource_version = old.metadata.resource_version.clone();
                update.push(new);
            }
            None => kept.push(old),
        }
    }
    if endpoints.metadata.deletion_timestamp.is_some() {
        create.clear();
    }
    SlicePlan {
        create,
        update,
        delete: kept
            .iter()
            .map(|s| {
                ObjectKey::new(
                    key.namespace.clone(),
                    s.metadata.name.clone().unwrap_or_default(),
                )
            })
            .collect(),
    }
}
