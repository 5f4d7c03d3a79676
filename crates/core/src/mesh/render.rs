//! Turning backing EndpointSlices into the objects fedmesh writes for a
//! federated Service: one EndpointSlice per backing slice, and one Endpoints.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{EndpointAddress, EndpointPort, EndpointSubset, ObjectReference};
use k8s_openapi::api::discovery::v1::{self as discovery, EndpointSlice};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

use crate::names::{ClusterName, FederatedKey, Origin, SliceKey};
use crate::service::{Federation, SERVICE_SELECTOR_ANNOTATION};
use crate::slice::{SERVICE_NAME_LABEL, SourceSlice};

/// The `endpointslice.kubernetes.io/managed-by` label.
pub const MANAGED_BY_LABEL: &str = "endpointslice.kubernetes.io/managed-by";
/// fedmesh's value of [`MANAGED_BY_LABEL`] on the EndpointSlices it writes.
pub const MANAGED_BY: &str = "federation-controller.fedmesh.io";
/// The label that marks Endpoints fedmesh writes (EndpointSlices use [`MANAGED_BY_LABEL`]).
pub const ENDPOINTS_MANAGED_BY_LABEL: &str = "fedmesh.io/managed-by";
/// The label that keeps Kubernetes' mirroring controller from copying our
/// Endpoints into EndpointSlices of its own: fedmesh writes the slices itself.
pub const SKIP_MIRROR_LABEL: &str = "endpointslice.kubernetes.io/skip-mirror";
/// The annotation naming the backing slice a federated slice mirrors.
pub const SOURCE_ANNOTATION: &str = "fedmesh.io/source-slice";
/// The annotation Kubernetes puts on Endpoints cut down to [`MAX_ENDPOINTS_ADDRESSES`].
pub const OVER_CAPACITY_ANNOTATION: &str = "endpoints.kubernetes.io/over-capacity";
/// Kubernetes' cap on the addresses of one Endpoints object.
pub const MAX_ENDPOINTS_ADDRESSES: usize = 1000;
/// Kubernetes' cap on the endpoints of one EndpointSlice.
pub const MAX_SLICE_ENDPOINTS: usize = 100;

/// A short, stable digest of a backing slice's identity, used to name the
/// federated slice that mirrors it.
///
/// It must never change between releases (a new name means deleting and
/// recreating every federated slice), so it is FNV-1a, defined in full here,
/// not a library hasher whose output may change. It needs no resistance to
/// crafted input: a collision only makes two names clash, which the
/// API server refuses rather than merges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SliceSuffix(Arc<str>);

impl SliceSuffix {
    /// The suffix for the backing slice `key`.
    pub fn of(key: &SliceKey) -> Self {
        let cluster = key.origin.cluster().map_or("", ClusterName::as_str);
        let mut hash = Fnv1a::default();
        for part in [cluster, "/", &key.namespace, "/", &key.name] {
            hash.write(part.as_bytes());
        }
        // 40 bits as 10 hex digits: collisions are unlikely among the slices
        // of one federated service.
        Self(format!("{:010x}", hash.0 >> 24).into())
    }
}

/// 64-bit FNV-1a.
struct Fnv1a(u64);

impl Default for Fnv1a {
    fn default() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv1a {
    fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.0 = (self.0 ^ u64::from(*byte)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
}

/// The name of the federated slice of `federated` that mirrors chunk `chunk`
/// (of [`MAX_SLICE_ENDPOINTS`] endpoints) of the backing slice with `suffix`.
pub fn slice_name(federated: &str, suffix: &SliceSuffix, chunk: usize) -> Arc<str> {
    match chunk {
        0 => format!("{federated}-{}", suffix.0).into(),
        n => format!("{federated}-{}-{n}", suffix.0).into(),
    }
}

/// The ports of `source` that `federation` takes, matched by name and protocol,
/// with the backing port numbers.
fn matched_ports<'a>(
    federation: &'a Federation,
    source: &'a SourceSlice,
) -> impl Iterator<Item = &'a crate::slice::SlicePort> + 'a {
    federation.ports.iter().filter_map(|wanted| {
        source
            .ports
            .iter()
            .find(|p| *p.name == *wanted.name && *p.protocol == *wanted.protocol)
    })
}

fn owner_references(key: &FederatedKey, federation: &Federation) -> Option<Vec<OwnerReference>> {
    let uid = federation.uid.as_ref()?;
    Some(vec![OwnerReference {
        api_version: "v1".into(),
        kind: "Service".into(),
        name: key.name.to_string(),
        uid: uid.to_string(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }])
}

/// `<cluster>/<name>` for remote objects, as Calico names them.
fn remote_name(origin: &Origin, name: &str) -> String {
    match origin {
        Origin::Local => name.to_owned(),
        Origin::Remote(cluster) => format!("{cluster}/{name}"),
    }
}

fn source_reference(key: &SliceKey) -> String {
    match &key.origin {
        Origin::Local => format!("{}/{}", key.namespace, key.name),
        Origin::Remote(cluster) => format!("{cluster}:{}/{}", key.namespace, key.name),
    }
}

/// The federated EndpointSlice `name` mirroring chunk `chunk` of `source`, or
/// `None` when the source offers none of the federated Service's ports or no
/// endpoints there.
pub(super) fn slice(
    key: &FederatedKey,
    federation: &Federation,
    name: &str,
    source: &SourceSlice,
    chunk: usize,
) -> Option<EndpointSlice> {
    let ports: Vec<discovery::EndpointPort> = matched_ports(federation, source)
        .map(|p| discovery::EndpointPort {
            name: Some(p.name.to_string()),
            port: Some(p.port),
            protocol: Some(p.protocol.to_string()),
            app_protocol: p.app_protocol.clone(),
        })
        .collect();
    let first = chunk * MAX_SLICE_ENDPOINTS;
    if ports.is_empty() || first >= source.endpoints.len() {
        return None;
    }
    let endpoints = source.endpoints[first..]
        .iter()
        .take(MAX_SLICE_ENDPOINTS)
        .map(|endpoint| {
            let mut endpoint = endpoint.clone();
            // Topology hints describe the source cluster's zones; they mean
            // nothing to the local cluster's proxies.
            endpoint.hints = None;
            if let Some(target) = &mut endpoint.target_ref
                && let Some(target_name) = &target.name
            {
                target.name = Some(remote_name(&source.key.origin, target_name));
            }
            endpoint
        })
        .collect();
    Some(EndpointSlice {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            namespace: Some(key.namespace.to_string()),
            labels: Some(BTreeMap::from([
                (SERVICE_NAME_LABEL.to_owned(), key.name.to_string()),
                (MANAGED_BY_LABEL.to_owned(), MANAGED_BY.to_owned()),
            ])),
            annotations: Some(BTreeMap::from([(
                SOURCE_ANNOTATION.to_owned(),
                source_reference(&source.key),
            )])),
            owner_references: owner_references(key, federation),
            ..ObjectMeta::default()
        },
        address_type: source.address_type.clone(),
        endpoints,
        ports: Some(ports),
    })
}

/// The Endpoints object of a federated Service: one subset per backing slice
/// that offers any of its ports, in backing order (local first), capped at
/// Kubernetes' 1000 addresses.
pub(super) fn endpoints<'a>(
    key: &FederatedKey,
    federation: &Federation,
    selector_annotation: &str,
    sources: impl Iterator<Item = &'a SourceSlice>,
) -> k8s_openapi::api::core::v1::Endpoints {
    let mut subsets = Vec::new();
    let mut budget = MAX_ENDPOINTS_ADDRESSES;
    let mut truncated = false;
    for source in sources {
        if source.address_type != "IPv4" && source.address_type != "IPv6" {
            continue;
        }
        let ports: Vec<EndpointPort> = matched_ports(federation, source)
            .map(|p| EndpointPort {
                name: (!p.name.is_empty()).then(|| p.name.to_string()),
                port: p.port,
                protocol: Some(p.protocol.to_string()),
                app_protocol: p.app_protocol.clone(),
            })
            .collect();
        if ports.is_empty() {
            continue;
        }
        let mut ready = Vec::new();
        let mut not_ready = Vec::new();
        for endpoint in &source.endpoints {
            let Some(ip) = endpoint.addresses.first() else {
                continue;
            };
            if budget == 0 {
                truncated = true;
                break;
            }
            budget -= 1;
            let address = EndpointAddress {
                ip: ip.clone(),
                hostname: endpoint.hostname.clone(),
                node_name: endpoint.node_name.clone(),
                target_ref: endpoint.target_ref.as_ref().map(|t| ObjectReference {
                    name: t
                        .name
                        .as_deref()
                        .map(|n| remote_name(&source.key.origin, n)),
                    ..t.clone()
                }),
            };
            // The EndpointSlice API reads an unset `ready` as ready.
            let is_ready = endpoint
                .conditions
                .as_ref()
                .and_then(|c| c.ready)
                .unwrap_or(true);
            if is_ready {
                ready.push(address);
            } else {
                not_ready.push(address);
            }
        }
        if ready.is_empty() && not_ready.is_empty() {
            continue;
        }
        ready.sort_by(|a, b| a.ip.cmp(&b.ip));
        not_ready.sort_by(|a, b| a.ip.cmp(&b.ip));
        subsets.push(EndpointSubset {
            addresses: (!ready.is_empty()).then_some(ready),
            not_ready_addresses: (!not_ready.is_empty()).then_some(not_ready),
            ports: Some(ports),
        });
    }
    let mut annotations = BTreeMap::from([(
        SERVICE_SELECTOR_ANNOTATION.to_owned(),
        selector_annotation.to_owned(),
    )]);
    if truncated {
        annotations.insert(OVER_CAPACITY_ANNOTATION.to_owned(), "truncated".to_owned());
    }
    k8s_openapi::api::core::v1::Endpoints {
        metadata: ObjectMeta {
            name: Some(key.name.to_string()),
            namespace: Some(key.namespace.to_string()),
            labels: Some(BTreeMap::from([
                (ENDPOINTS_MANAGED_BY_LABEL.to_owned(), MANAGED_BY.to_owned()),
                (SKIP_MIRROR_LABEL.to_owned(), "true".to_owned()),
            ])),
            annotations: Some(annotations),
            owner_references: owner_references(key, federation),
            ..ObjectMeta::default()
        },
        subsets: (!subsets.is_empty()).then_some(subsets),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::names::ClusterName;

    #[test]
    fn slice_suffixes_are_stable_and_tell_origins_apart() {
        let remote = Origin::Remote(ClusterName::new("east").unwrap());
        let local = SliceSuffix::of(&SliceKey::new(Origin::Local, "ns", "web-abcde"));
        let east = SliceSuffix::of(&SliceKey::new(remote, "ns", "web-abcde"));
        // Fixed values (checked against an independent FNV-1a): a change here
        // renames every federated slice in every mesh.
        assert_eq!(&*local.0, "bd9cde923e");
        assert_eq!(&*east.0, "942f787cff");
        assert_ne!(local, east);
    }
}
