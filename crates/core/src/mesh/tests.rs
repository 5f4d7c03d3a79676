//! The federation index, driven by events applied directly.

mod bookinfo;
mod incremental;
mod listings;
mod rules;
mod seed_tutorial;

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ObjectReference, Service, ServicePort, ServiceSpec};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort, EndpointSlice};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::MeshIndex;
use crate::names::{ClusterName, FederatedKey, Origin, ServiceKey, SliceKey};
use crate::service::{SERVICE_SELECTOR_ANNOTATION, ServiceView};
use crate::slice::{SERVICE_NAME_LABEL, SourceSlice};

fn remote(name: &str) -> Origin {
    Origin::Remote(ClusterName::new(name).unwrap())
}

fn fed_key(ns: &str, name: &str) -> FederatedKey {
    FederatedKey::new(ns, name)
}

/// A Service under construction.
#[derive(Clone)]
struct Svc(Service);

fn svc(ns: &str, name: &str) -> Svc {
    Svc(Service {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some(ns.into()),
            uid: Some(format!("uid-{name}")),
            ..ObjectMeta::default()
        },
        spec: Some(ServiceSpec::default()),
        ..Service::default()
    })
}

impl Svc {
    fn label(mut self, k: &str, v: &str) -> Self {
        self.0
            .metadata
            .labels
            .get_or_insert_with(BTreeMap::new)
            .insert(k.into(), v.into());
        self
    }

    fn federate(mut self, selector: &str) -> Self {
        self.0
            .metadata
            .annotations
            .get_or_insert_with(BTreeMap::new)
            .insert(SERVICE_SELECTOR_ANNOTATION.into(), selector.into());
        self
    }

    fn pod_selector(mut self, k: &str, v: &str) -> Self {
        self.spec()
            .selector
            .get_or_insert_with(BTreeMap::new)
            .insert(k.into(), v.into());
        self
    }

    fn port(mut self, name: &str, protocol: &str, port: i32) -> Self {
        self.spec()
            .ports
            .get_or_insert_with(Vec::new)
            .push(ServicePort {
                name: Some(name.into()),
                protocol: Some(protocol.into()),
                port,
                ..ServicePort::default()
            });
        self
    }

    fn spec(&mut self) -> &mut ServiceSpec {
        self.0.spec.get_or_insert_with(ServiceSpec::default)
    }

    fn view(&self, origin: &Origin) -> ServiceView {
        ServiceView::new(origin.clone(), self.0.clone()).unwrap()
    }

    fn key(&self, origin: &Origin) -> ServiceKey {
        self.view(origin).key
    }
}

/// An EndpointSlice under construction.
#[derive(Clone)]
struct Slc(EndpointSlice);

fn slc(ns: &str, name: &str, service: &str) -> Slc {
    Slc(EndpointSlice {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some(ns.into()),
            labels: Some(BTreeMap::from([(
                SERVICE_NAME_LABEL.into(),
                service.into(),
            )])),
            ..ObjectMeta::default()
        },
        address_type: "IPv4".into(),
        endpoints: Vec::new(),
        ports: None,
    })
}

impl Slc {
    fn port(mut self, name: &str, protocol: &str, port: i32) -> Self {
        self.0
            .ports
            .get_or_insert_with(Vec::new)
            .push(EndpointPort {
                name: Some(name.into()),
                protocol: Some(protocol.into()),
                port: Some(port),
                app_protocol: None,
            });
        self
    }

    fn endpoint(self, ip: &str, pod: &str, node: &str) -> Self {
        self.endpoint_with(ip, pod, node, true)
    }

    fn endpoint_with(mut self, ip: &str, pod: &str, node: &str, ready: bool) -> Self {
        let ns = self.0.metadata.namespace.clone();
        self.0.endpoints.push(Endpoint {
            addresses: vec![ip.into()],
            conditions: Some(EndpointConditions {
                ready: Some(ready),
                serving: Some(ready),
                terminating: Some(false),
            }),
            node_name: Some(node.into()),
            target_ref: Some(ObjectReference {
                kind: Some("Pod".into()),
                name: Some(pod.into()),
                namespace: ns,
                uid: Some(format!("uid-{pod}")),
                resource_version: Some("7".into()),
                ..ObjectReference::default()
            }),
            zone: Some("zone-a".into()),
            ..Endpoint::default()
        });
        self
    }

    fn source(&self, origin: &Origin) -> SourceSlice {
        SourceSlice::new(origin.clone(), self.0.clone()).unwrap()
    }

    fn key(&self, origin: &Origin) -> SliceKey {
        self.source(origin).key
    }
}

/// Addresses of the desired Endpoints, per subset: (ready ips, not-ready ips, port names).
fn subsets(index: &MeshIndex, key: &FederatedKey) -> Vec<(Vec<String>, Vec<String>, Vec<String>)> {
    let endpoints = index.federation(key).expect("federated").endpoints();
    endpoints
        .subsets
        .unwrap_or_default()
        .into_iter()
        .map(|s| {
            (
                s.addresses
                    .unwrap_or_default()
                    .into_iter()
                    .map(|a| a.ip)
                    .collect(),
                s.not_ready_addresses
                    .unwrap_or_default()
                    .into_iter()
                    .map(|a| a.ip)
                    .collect(),
                s.ports
                    .unwrap_or_default()
                    .into_iter()
                    .map(|p| format!("{}:{}", p.name.unwrap_or_default(), p.port))
                    .collect(),
            )
        })
        .collect()
}

/// Every endpoint address across the desired EndpointSlices.
fn slice_ips(index: &MeshIndex, key: &FederatedKey) -> Vec<String> {
    let mut ips: Vec<String> = index
        .federation(key)
        .expect("federated")
        .slices()
        .into_iter()
        .flat_map(|s| s.endpoints.into_iter().flat_map(|e| e.addresses))
        .collect();
    ips.sort();
    ips
}
