use k8s_openapi::api::core::v1::Endpoints;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use serde_json::json;

use super::service;
use crate::cluster::kubernetes_service::*;
use crate::cluster::mirroring::*;
use crate::cluster::write::ObjectKey;

fn key() -> ObjectKey {
    ObjectKey::new("ns", "web")
}

fn user_endpoints(extra: serde_json::Value) -> Endpoints {
    let mut v = json!({
        "metadata": {"name": "web", "namespace": "ns", "uid": "ep-uid", "labels": {"app": "web"},
            "annotations": {"note": "x", "kubectl.kubernetes.io/last-applied-configuration": "{}"}},
        "subsets": [{
            "addresses": [{"ip": "192.168.0.2", "nodeName": "n1"}, {"ip": "fd00::2"}],
            "notReadyAddresses": [{"ip": "192.168.0.3", "hostname": "h3"}],
            "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]
        }]
    });
    json_patch::merge(&mut v, &extra);
    serde_json::from_value(v).unwrap()
}

fn selectorless() -> k8s_openapi::api::core::v1::Service {
    service(json!({"ports": [{"name": "http", "port": 80}]}))
}

#[test]
fn endpoints_mirror_into_one_slice_per_address_type() {
    let plan = sync_mirrored_slices(
        &key(),
        Some(&selectorless()),
        Some(&user_endpoints(json!({}))),
        &[],
    );
    assert!(plan.update.is_empty() && plan.delete.is_empty());
    assert_eq!(plan.create.len(), 2);
    let v4 = plan
        .create
        .iter()
        .find(|s| s.address_type == "IPv4")
        .unwrap();
    let v = serde_json::to_value(v4).unwrap();
    assert_eq!(
        v["metadata"],
        json!({
            "generateName": "web-", "namespace": "ns",
            "labels": {"app": "web", "kubernetes.io/service-name": "web",
                "endpointslice.kubernetes.io/managed-by": "endpointslicemirroring-controller.k8s.io"},
            "annotations": {"note": "x"},
            "ownerReferences": [{"apiVersion": "v1", "kind": "Endpoints", "name": "web", "uid": "ep-uid",
                "controller": true, "blockOwnerDeletion": true}]
        })
    );
    assert_eq!(
        v["ports"],
        json!([{"name": "http", "port": 80, "protocol": "TCP"}])
    );
    assert_eq!(
        v["endpoints"],
        json!([
            {"addresses": ["192.168.0.2"], "conditions": {"ready": true}, "nodeName": "n1"},
            {"addresses": ["192.168.0.3"], "conditions": {"ready": false}, "hostname": "h3"}
        ])
    );
    let v6 = plan
        .create
        .iter()
        .find(|s| s.address_type == "IPv6")
        .unwrap();
    assert_eq!(v6.endpoints.len(), 1);
}

fn store(plan: crate::cluster::endpointslice::SlicePlan) -> Vec<EndpointSlice> {
    plan.create
        .into_iter()
        .enumerate()
        .map(|(i, mut s)| {
            s.metadata.name = Some(format!("web-m{i}"));
            s.metadata.generate_name = None;
            s
        })
        .collect()
}

#[test]
fn mirrored_state_is_stable_and_follows_changes() {
    let svc = selectorless();
    let ep = user_endpoints(json!({}));
    let stored = store(sync_mirrored_slices(&key(), Some(&svc), Some(&ep), &[]));
    assert!(sync_mirrored_slices(&key(), Some(&svc), Some(&ep), &stored).is_empty());

    let relabelled = user_endpoints(json!({"metadata": {"labels": {"app": "other"}}}));
    let plan = sync_mirrored_slices(&key(), Some(&svc), Some(&relabelled), &stored);
    assert_eq!(plan.update.len(), 2);
    assert!(
        plan.update
            .iter()
            .all(|s| s.metadata.labels.as_ref().unwrap()["app"] == "other")
    );

    let fewer = user_endpoints(
        json!({"subsets": [{"addresses": [{"ip": "192.168.0.2"}], "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}]}),
    );
    let plan = sync_mirrored_slices(&key(), Some(&svc), Some(&fewer), &stored);
    assert_eq!(plan.update.len(), 1);
    assert_eq!(plan.delete.len(), 1, "the IPv6 slice goes: {plan:?}");

    // A port change recycles the old slice's name.
    let new_port = user_endpoints(
        json!({"subsets": [{"addresses": [{"ip": "192.168.0.2"}], "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]}]}),
    );
    let plan = sync_mirrored_slices(&key(), Some(&svc), Some(&new_port), &stored);
    assert!(plan.create.is_empty(), "{plan:?}");
    assert_eq!(plan.update.len(), 1);
    assert_eq!(plan.delete.len(), 1);
}

#[test]
fn mirrored_slices_go_when_mirroring_no_longer_applies() {
    let svc = selectorless();
    let ep = user_endpoints(json!({}));
    let stored = store(sync_mirrored_slices(&key(), Some(&svc), Some(&ep), &[]));
    let skip = user_endpoints(
        json!({"metadata": {"labels": {"endpointslice.kubernetes.io/skip-mirror": "true"}}}),
    );
    let with_selector = service(json!({"selector": {"app": "web"}}));
    for plan in [
        sync_mirrored_slices(&key(), Some(&svc), Some(&skip), &stored),
        sync_mirrored_slices(&key(), None, Some(&ep), &stored),
        sync_mirrored_slices(&key(), Some(&svc), None, &stored),
        sync_mirrored_slices(&key(), Some(&with_selector), Some(&ep), &stored),
    ] {
        assert_eq!(plan.delete.len(), 2, "{plan:?}");
        assert!(plan.create.is_empty() && plan.update.is_empty());
    }
    assert!(!should_mirror(&skip));
}

#[test]
fn mirroring_caps_each_subset_at_1000_addresses() {
    let addresses: Vec<serde_json::Value> = (0..1200)
        .map(|i| json!({"ip": format!("10.1.{}.{}", i / 256, i % 256)}))
        .collect();
    let ep = user_endpoints(
        json!({"subsets": [{"addresses": addresses, "ports": [{"port": 80, "protocol": "TCP"}]}]}),
    );
    let plan = sync_mirrored_slices(&key(), Some(&selectorless()), Some(&ep), &[]);
    assert_eq!(plan.create.len(), 1);
    assert_eq!(plan.create[0].endpoints.len(), MAX_ENDPOINTS_PER_SUBSET);
}

#[test]
fn kubernetes_service_objects_look_like_kube_apiserver_writes_them() {
    let svc = kubernetes_service("10.96.0.1".parse().unwrap(), 6443);
    assert_eq!(
        serde_json::to_value(&svc).unwrap(),
        json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "kubernetes", "namespace": "default", "labels": {"component": "apiserver", "provider": "kubernetes"}},
            "spec": {"clusterIP": "10.96.0.1", "clusterIPs": ["10.96.0.1"], "internalTrafficPolicy": "Cluster",
                "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack",
                "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": 6443}],
                "sessionAffinity": "None", "type": "ClusterIP"}
        })
    );
    let ep = kubernetes_endpoints("127.0.0.1".parse().unwrap(), 6443);
    assert_eq!(
        serde_json::to_value(&ep).unwrap()["subsets"],
        json!([{"addresses": [{"ip": "127.0.0.1"}], "ports": [{"name": "https", "port": 6443, "protocol": "TCP"}]}])
    );
    assert!(!should_mirror(&ep));
    let slice = kubernetes_endpoint_slice("::1".parse().unwrap(), 6443);
    assert_eq!(
        serde_json::to_value(&slice).unwrap(),
        json!({
            "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": "kubernetes", "namespace": "default", "labels": {"kubernetes.io/service-name": "kubernetes"}},
            "addressType": "IPv6",
            "endpoints": [{"addresses": ["::1"], "conditions": {"ready": true}}],
            "ports": [{"name": "https", "port": 6443, "protocol": "TCP"}]
        })
    );
}
