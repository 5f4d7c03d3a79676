//! Unit tests of the cluster controllers' logic.

mod alloc;
mod endpoints;
mod gc;
mod gohash;
mod kube_dns;
mod mirroring;
mod pod_deletion;
mod slices;

use k8s_openapi::api::core::v1::{Node, Pod, Service};
use serde_json::{Value, json};

pub(super) fn service(spec: Value) -> Service {
    serde_json::from_value(json!({
        "metadata": {"name": "web", "namespace": "ns", "uid": "svc-uid", "labels": {"team": "a"}},
        "spec": spec,
    }))
    .unwrap()
}

/// A running pod with one container port named `http` (8080/TCP).
pub(super) fn pod(name: &str, ip: &str, ready: bool) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": "ns", "uid": format!("uid-{name}"), "labels": {"app": "web"}},
        "spec": {
            "nodeName": "node-1",
            "containers": [{"name": "c", "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]}]
        },
        "status": {
            "phase": "Running",
            "podIP": ip,
            "podIPs": [{"ip": ip}],
            "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]
        }
    }))
    .unwrap()
}

pub(super) fn with(mut p: Pod, patch: Value) -> Pod {
    let mut v = serde_json::to_value(&p).unwrap();
    json_patch::merge(&mut v, &patch);
    p = serde_json::from_value(v).unwrap();
    p
}

pub(super) fn node(name: &str, zone: Option<&str>) -> Node {
    let labels = zone.map(|z| json!({"topology.kubernetes.io/zone": z}));
    serde_json::from_value(json!({"metadata": {"name": name, "labels": labels}})).unwrap()
}

pub(super) fn web_selector_spec() -> Value {
    json!({
        "selector": {"app": "web"},
        "clusterIP": "10.96.0.10",
        "ipFamilies": ["IPv4"],
        "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}]
    })
}
