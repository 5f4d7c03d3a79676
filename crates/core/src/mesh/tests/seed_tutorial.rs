//! Seed 000's tutorial: `my-app` in the local and the remote cluster, and the
//! federated `my-app-federated` that takes only the `my-app-ui` port.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    EndpointAddress, EndpointPort, EndpointSubset, Endpoints, ObjectReference,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

use super::*;
use crate::mesh::{ENDPOINTS_MANAGED_BY_LABEL, MANAGED_BY, SKIP_MIRROR_LABEL};

fn my_app() -> Svc {
    svc("default", "my-app")
        .label("run", "my-app")
        .pod_selector("run", "my-app")
        .port("my-app-ui", "TCP", 80)
        .port("my-app-console", "TCP", 81)
}

fn my_app_slice(name: &str, ip: &str, pod: &str, node: &str) -> Slc {
    slc("default", name, "my-app")
        .port("my-app-ui", "TCP", 80)
        .port("my-app-console", "TCP", 81)
        .endpoint(ip, pod, node)
}

fn tutorial() -> MeshIndex {
    let cluster = remote("remotecluster");
    let mut index = MeshIndex::new();
    index.apply_service(my_app().view(&cluster));
    index.apply_slice(
        my_app_slice(
            "my-app-abcde",
            "192.168.0.28",
            "my-app-7b6f758bd5-ctgbh",
            "node1.remotecluster.tigera.io",
        )
        .source(&cluster),
    );
    index.apply_service(my_app().view(&Origin::Local));
    index.apply_slice(
        my_app_slice(
            "my-app-fghij",
            "192.168.93.12",
            "my-app-59cf48cdc7-frf2t",
            "node1.localcluster.tigera.io",
        )
        .source(&Origin::Local),
    );
    let federated = svc("default", "my-app-federated")
        .federate(r#"run == "my-app""#)
        .port("my-app-ui", "TCP", 8080);
    let changes = index.apply_service(federated.view(&Origin::Local));
    assert!(changes.dirty[&fed_key("default", "my-app-federated")].all);
    index
}

fn address(ip: &str, node: &str, pod: &str, pod_uid: &str) -> EndpointAddress {
    EndpointAddress {
        ip: ip.into(),
        node_name: Some(node.into()),
        target_ref: Some(ObjectReference {
            kind: Some("Pod".into()),
            name: Some(pod.into()),
            namespace: Some("default".into()),
            resource_version: Some("7".into()),
            uid: Some(pod_uid.into()),
            ..ObjectReference::default()
        }),
        hostname: None,
    }
}

#[test]
fn endpoints_match_the_seed_example() {
    let index = tutorial();
    let view = index
        .federation(&fed_key("default", "my-app-federated"))
        .unwrap();
    let ui = || {
        Some(vec![EndpointPort {
            name: Some("my-app-ui".into()),
            port: 80,
            protocol: Some("TCP".into()),
            app_protocol: None,
        }])
    };
    let expected = Endpoints {
        metadata: ObjectMeta {
            name: Some("my-app-federated".into()),
            namespace: Some("default".into()),
            annotations: Some(BTreeMap::from([(
                "federation.tigera.io/serviceSelector".into(),
                r#"run == "my-app""#.into(),
            )])),
            labels: Some(BTreeMap::from([
                (ENDPOINTS_MANAGED_BY_LABEL.into(), MANAGED_BY.into()),
                (SKIP_MIRROR_LABEL.into(), "true".into()),
            ])),
            owner_references: Some(vec![OwnerReference {
                api_version: "v1".into(),
                kind: "Service".into(),
                name: "my-app-federated".into(),
                uid: "uid-my-app-federated".into(),
                controller: Some(true),
                block_owner_deletion: Some(true),
            }]),
            ..ObjectMeta::default()
        },
        subsets: Some(vec![
            EndpointSubset {
                addresses: Some(vec![address(
                    "192.168.93.12",
                    "node1.localcluster.tigera.io",
                    "my-app-59cf48cdc7-frf2t",
                    "uid-my-app-59cf48cdc7-frf2t",
                )]),
                not_ready_addresses: None,
                ports: ui(),
            },
            EndpointSubset {
                addresses: Some(vec![address(
                    "192.168.0.28",
                    "node1.remotecluster.tigera.io",
                    "remotecluster/my-app-7b6f758bd5-ctgbh",
                    "uid-my-app-7b6f758bd5-ctgbh",
                )]),
                not_ready_addresses: None,
                ports: ui(),
            },
        ]),
    };
    assert_eq!(view.endpoints(), expected);
}

#[test]
fn slices_mirror_each_backing_slice_with_the_matched_port_only() {
    let index = tutorial();
    let view = index
        .federation(&fed_key("default", "my-app-federated"))
        .unwrap();
    let slices = view.slices();
    assert_eq!(slices.len(), 2);
    for slice in &slices {
        let labels = slice.metadata.labels.as_ref().unwrap();
        assert_eq!(labels["kubernetes.io/service-name"], "my-app-federated");
        assert_eq!(labels["endpointslice.kubernetes.io/managed-by"], MANAGED_BY);
        let ports = slice.ports.as_ref().unwrap();
        assert_eq!(ports.len(), 1);
        assert_eq!(ports[0].name.as_deref(), Some("my-app-ui"));
        assert_eq!(ports[0].port, Some(80), "the backing port number is kept");
        assert_eq!(slice.endpoints[0].zone.as_deref(), Some("zone-a"));
        assert!(
            slice
                .metadata
                .name
                .as_ref()
                .unwrap()
                .starts_with("my-app-federated-"),
            "{:?}",
            slice.metadata.name
        );
    }
    let pods: Vec<_> = slices
        .iter()
        .map(|s| {
            s.endpoints[0]
                .target_ref
                .as_ref()
                .unwrap()
                .name
                .clone()
                .unwrap()
        })
        .collect();
    assert!(pods.contains(&"remotecluster/my-app-7b6f758bd5-ctgbh".to_string()));
    assert!(pods.contains(&"my-app-59cf48cdc7-frf2t".to_string()));
}

#[test]
fn backing_order_is_local_first_then_remote_clusters_by_name() {
    let index = tutorial();
    let view = index
        .federation(&fed_key("default", "my-app-federated"))
        .unwrap();
    let backing: Vec<String> = view.backing().map(ToString::to_string).collect();
    assert_eq!(backing, ["default/my-app", "remotecluster:default/my-app"]);
}
