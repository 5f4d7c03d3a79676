//! The `default/kubernetes` Service and its Endpoints and EndpointSlice,
//! as kube-apiserver's bootstrap controller and endpoint reconciler write
//! them: the Service takes the first IP of the service CIDR with port
//! `https` 443 targeting the API server's port; the Endpoints list the API
//! server's address (marked not to be mirrored) and the EndpointSlice,
//! named `kubernetes`, carries the same address with only `ready` set.

use std::net::IpAddr;

use k8s_openapi::api::core::v1::{
    EndpointAddress, EndpointPort, EndpointSubset, Endpoints, Service, ServicePort, ServiceSpec,
};
use k8s_openapi::api::discovery::v1::{
    Endpoint, EndpointConditions, EndpointPort as SlicePort, EndpointSlice,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::endpointslice::LABEL_SERVICE_NAME;
use super::mirroring::LABEL_SKIP_MIRROR;
use super::pods::IpFamily;

const NAME: &str = "kubernetes";
const NAMESPACE: &str = "default";

fn meta(labels: &[(&str, &str)]) -> ObjectMeta {
    ObjectMeta {
        name: Some(NAME.to_string()),
        namespace: Some(NAMESPACE.to_string()),
        labels: Some(
            labels
                .iter()
                .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
                .collect(),
        ),
        ..Default::default()
    }
}

/// The `kubernetes` Service on `cluster_ip`, targeting the API server's
/// `port`.
pub fn kubernetes_service(cluster_ip: IpAddr, port: u16) -> Service {
    let family = if cluster_ip.is_ipv6() { "IPv6" } else { "IPv4" };
    Service {
        metadata: meta(&[("component", "apiserver"), ("provider", "kubernetes")]),
        spec: Some(ServiceSpec {
            cluster_ip: Some(cluster_ip.to_string()),
            cluster_ips: Some(vec![cluster_ip.to_string()]),
            internal_traffic_policy: Some("Cluster".to_string()),
            ip_families: Some(vec![family.to_string()]),
            ip_family_policy: Some("SingleStack".to_string()),
            ports: Some(vec![ServicePort {
                name: Some("https".to_string()),
                port: 443,
                protocol: Some("TCP".to_string()),
                target_port: Some(IntOrString::Int(i32::from(port))),
                ..Default::default()
            }]),
            session_affinity: Some("None".to_string()),
            type_: Some("ClusterIP".to_string()),
            ..Default::default()
        }),
        status: None,
    }
}

/// The `kubernetes` Endpoints: the API server's address and port.
pub fn kubernetes_endpoints(address: IpAddr, port: u16) -> Endpoints {
    Endpoints {
        metadata: meta(&[(LABEL_SKIP_MIRROR, "true")]),
        subsets: Some(vec![EndpointSubset {
            addresses: Some(vec![EndpointAddress {
                ip: address.to_string(),
                ..Default::default()
            }]),
            not_ready_addresses: None,
            ports: Some(vec![EndpointPort {
                name: Some("https".to_string()),
                port: i32::from(port),
                protocol: Some("TCP".to_string()),
                app_protocol: None,
            }]),
        }]),
    }
}

/// The `kubernetes` EndpointSlice.
pub fn kubernetes_endpoint_slice(address: IpAddr, port: u16) -> EndpointSlice {
    let family = match IpFamily::of(&address.to_string()) {
        Some(IpFamily::V6) => IpFamily::V6,
        _ => IpFamily::V4,
    };
    EndpointSlice {
        metadata: meta(&[(LABEL_SERVICE_NAME, NAME)]),
        address_type: family.address_type().to_string(),
        endpoints: vec![Endpoint {
            addresses: vec![address.to_string()],
            conditions: Some(EndpointConditions {
                ready: Some(true),
                serving: None,
                terminating: None,
            }),
            ..Default::default()
        }],
        ports: Some(vec![SlicePort {
            name: Some("https".to_string()),
            port: Some(i32::from(port)),
            protocol: Some("TCP".to_string()),
            app_protocol: None,
        }]),
    }
}
