//! kube-dns as a kind cluster shows it: controllers and printers together.

use k8s_openapi::api::core::v1::{Pod, Service};
use serde_json::json;

use super::node;
use crate::cluster::endpoints::sync_endpoints;
use crate::cluster::endpointslice::{SliceOptions, sync_endpoint_slices};
use crate::cluster::write::{ObjectKey, Write};
use crate::table::{Printer, TableListMeta, TableOptions, to_table};

fn coredns(name: &str, ip: &str) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": "kube-system", "uid": format!("uid-{name}"), "labels": {"k8s-app": "kube-dns"}},
        "spec": {"nodeName": "kind-control-plane", "containers": [{"name": "coredns", "ports": [
            {"name": "dns", "containerPort": 53, "protocol": "UDP"},
            {"name": "dns-tcp", "containerPort": 53, "protocol": "TCP"},
            {"name": "metrics", "containerPort": 9153, "protocol": "TCP"}
        ]}]},
        "status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}], "conditions": [{"type": "Ready", "status": "True"}]}
    }))
    .unwrap()
}

fn kube_dns() -> Service {
    serde_json::from_value(json!({
        "metadata": {"name": "kube-dns", "namespace": "kube-system", "uid": "dns-uid", "labels": {"k8s-app": "kube-dns"}},
        "spec": {"selector": {"k8s-app": "kube-dns"}, "clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.10"], "ipFamilies": ["IPv4"],
            "type": "ClusterIP",
            "ports": [
                {"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53},
                {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": 53},
                {"name": "metrics", "port": 9153, "protocol": "TCP", "targetPort": 9153}
            ]}
    }))
    .unwrap()
}

#[test]
fn kube_dns_prints_like_a_kind_cluster() {
    let svc = kube_dns();
    let pods = vec![
        coredns("coredns-a", "10.10.0.2"),
        coredns("coredns-b", "10.10.0.3"),
    ];
    let key = ObjectKey::new("kube-system", "kube-dns");
    let Some(Write::Create(endpoints)) = sync_endpoints(&key, Some(&svc), &pods, None, None) else {
        panic!("no endpoints")
    };
    let plan = sync_endpoint_slices(
        &key,
        Some(&svc),
        &pods,
        &[node("kind-control-plane", None)],
        &[],
        None,
        &SliceOptions::default(),
    );
    let mut slice = serde_json::to_value(&plan.create[0]).unwrap();
    slice["metadata"]["name"] = json!("kube-dns-sfk96");
    let now: jiff::Timestamp = "2024-01-01T00:00:00Z".parse().unwrap();
    let cells = |group: &str, kind: &str, v: serde_json::Value| {
        to_table(
            &Printer::for_kind(group, kind),
            &[v],
            &TableListMeta::default(),
            &TableOptions::default(),
            now,
        )["rows"][0]["cells"]
            .clone()
    };
    assert_eq!(
        cells("", "Endpoints", serde_json::to_value(&endpoints).unwrap())[1],
        "10.10.0.2:53,10.10.0.3:53,10.10.0.2:53 + 3 more..."
    );
    let row = cells("discovery.k8s.io", "EndpointSlice", slice);
    assert_eq!(
        (&row[2], &row[3]),
        (&json!("9153,53,53"), &json!("10.10.0.2,10.10.0.3"))
    );
    assert_eq!(
        cells("", "Service", serde_json::to_value(&svc).unwrap())[4],
        "53/UDP,53/TCP,9153/TCP"
    );
}
