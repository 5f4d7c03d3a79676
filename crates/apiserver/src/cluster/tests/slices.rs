use k8s_openapi::api::discovery::v1::EndpointSlice;
use serde_json::json;

use super::{node, pod, service, web_selector_spec, with};
use crate::cluster::endpointslice::*;
use crate::cluster::write::ObjectKey;

fn key() -> ObjectKey {
    ObjectKey::new("ns", "web")
}

fn sync(
    svc: &k8s_openapi::api::core::v1::Service,
    pods: &[k8s_openapi::api::core::v1::Pod],
    existing: &[EndpointSlice],
) -> SlicePlan {
    let nodes = vec![node("node-1", Some("zone-a")), node("node-2", None)];
    sync_endpoint_slices(
        &key(),
        Some(svc),
        pods,
        &nodes,
        existing,
        None,
        &SliceOptions::default(),
    )
}

/// Stores created slices under names like the API would.
fn stored(plan: SlicePlan) -> Vec<EndpointSlice> {
    assert!(plan.update.is_empty() && plan.delete.is_empty(), "{plan:?}");
    plan.create
        .into_iter()
        .enumerate()
        .map(|(i, mut s)| {
            s.metadata.name = Some(format!("web-{i}"));
            s.metadata.resource_version = Some(format!("{i}"));
            s
        })
        .collect()
}

#[test]
fn one_slice_with_conditions_zone_node_and_owner() {
    let svc = service(web_selector_spec());
    let pods = vec![
        pod("a", "10.0.0.2", true),
        pod("b", "10.0.0.1", false),
        with(
            pod("t", "10.0.0.3", true),
            json!({"metadata": {"deletionTimestamp": "2024-01-01T00:00:00Z"}}),
        ),
        with(
            pod("n2", "10.0.0.4", true),
            json!({"spec": {"nodeName": "node-2"}}),
        ),
    ];
    let plan = sync(&svc, &pods, &[]);
    assert_eq!(plan.create.len(), 1);
    let slice = serde_json::to_value(&plan.create[0]).unwrap();
    assert_eq!(
        slice["metadata"],
        json!({
            "generateName": "web-",
            "namespace": "ns",
            "labels": {
                "team": "a",
                "kubernetes.io/service-name": "web",
                "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"
            },
            "ownerReferences": [{"apiVersion": "v1", "kind": "Service", "name": "web", "uid": "svc-uid",
                "controller": true, "blockOwnerDeletion": true}]
        })
    );
    assert_eq!(slice["addressType"], "IPv4");
    assert_eq!(
        slice["ports"],
        json!([{"name": "http", "port": 8080, "protocol": "TCP"}])
    );
    let endpoints = slice["endpoints"].as_array().unwrap();
    let by_name = |n: &str| {
        endpoints
            .iter()
            .find(|e| e["targetRef"]["name"] == n)
            .unwrap_or_else(|| panic!("no endpoint {n}"))
            .clone()
    };
    assert_eq!(
        by_name("a"),
        json!({"addresses": ["10.0.0.2"], "conditions": {"ready": true, "serving": true, "terminating": false},
            "nodeName": "node-1", "zone": "zone-a",
            "targetRef": {"kind": "Pod", "namespace": "ns", "name": "a", "uid": "uid-a"}})
    );
    assert_eq!(
        by_name("b")["conditions"],
        json!({"ready": false, "serving": false, "terminating": false})
    );
    assert_eq!(
        by_name("t")["conditions"],
        json!({"ready": false, "serving": true, "terminating": true})
    );
    assert_eq!(by_name("n2").get("zone"), None);
}

#[test]
fn pods_on_unknown_nodes_are_skipped_unless_published_or_configured() {
    let svc = service(web_selector_spec());
    let pods = vec![with(
        pod("a", "10.0.0.2", true),
        json!({"spec": {"nodeName": "ghost"}}),
    )];
    let plan = sync(&svc, &pods, &[]);
    assert_eq!(plan.create.len(), 1);
    assert!(plan.create[0].endpoints.is_empty());

    let mut spec = web_selector_spec();
    spec["publishNotReadyAddresses"] = json!(true);
    let plan = sync(&service(spec), &pods, &[]);
    assert_eq!(plan.create[0].endpoints.len(), 1);

    let options = SliceOptions {
        skip_pods_without_node: false,
        ..SliceOptions::default()
    };
    let plan = sync_endpoint_slices(&key(), Some(&svc), &pods, &[], &[], None, &options);
    assert_eq!(plan.create[0].endpoints.len(), 1);
}

#[test]
fn large_services_split_into_slices_of_100() {
    let svc = service(web_selector_spec());
    let pods: Vec<_> = (0..250)
        .map(|i| {
            pod(
                &format!("p{i}"),
                &format!("10.0.{}.{}", i / 256, i % 256),
                true,
            )
        })
        .collect();
    let plan = sync(&svc, &pods, &[]);
    let mut sizes: Vec<usize> = plan.create.iter().map(|s| s.endpoints.len()).collect();
    sizes.sort();
    assert_eq!(sizes, vec![50, 100, 100]);
}

#[test]
fn unchanged_state_writes_nothing() {
    let svc = service(web_selector_spec());
    let pods = vec![pod("a", "10.0.0.2", true), pod("b", "10.0.0.3", true)];
    let existing = stored(sync(&svc, &pods, &[]));
    assert!(sync(&svc, &pods, &existing).is_empty());
}

#[test]
fn removed_pod_updates_the_slice_in_place() {
    let svc = service(web_selector_spec());
    let pods = vec![pod("a", "10.0.0.2", true), pod("b", "10.0.0.3", true)];
    let existing = stored(sync(&svc, &pods, &[]));
    let plan = sync(&svc, &pods[..1], &existing);
    assert!(plan.create.is_empty() && plan.delete.is_empty());
    assert_eq!(plan.update.len(), 1);
    assert_eq!(plan.update[0].metadata.name.as_deref(), Some("web-0"));
    assert_eq!(
        plan.update[0].metadata.resource_version.as_deref(),
        Some("0")
    );
    assert_eq!(plan.update[0].endpoints.len(), 1);
}

#[test]
fn readiness_change_updates_the_endpoint() {
    let svc = service(web_selector_spec());
    let existing = stored(sync(&svc, &[pod("a", "10.0.0.2", false)], &[]));
    let plan = sync(&svc, &[pod("a", "10.0.0.2", true)], &existing);
    assert_eq!(plan.update.len(), 1);
    assert_eq!(
        plan.update[0].endpoints[0]
            .conditions
            .as_ref()
            .unwrap()
            .ready,
        Some(true)
    );
}

#[test]
fn no_endpoints_leaves_one_placeholder() {
    let svc = service(web_selector_spec());
    let plan = sync(&svc, &[], &[]);
    assert_eq!(plan.create.len(), 1);
    let placeholder = serde_json::to_value(&plan.create[0]).unwrap();
    assert_eq!(placeholder["endpoints"], json!([]));
    assert_eq!(placeholder.get("ports"), None);
    let existing = stored(plan);
    assert!(sync(&svc, &[], &existing).is_empty());
    // A relabelled Service rewrites its placeholder (recycled as an update).
    let mut relabelled = svc.clone();
    relabelled.metadata.labels = Some([("team".to_string(), "b".to_string())].into());
    let plan = sync(&relabelled, &[], &existing);
    assert_eq!(plan.update.len(), 1, "{plan:?}");
    assert_eq!(
        plan.update[0].metadata.labels.as_ref().unwrap()["team"],
        "b"
    );
}

#[test]
fn last_pod_gone_turns_the_slice_into_the_placeholder() {
    let svc = service(web_selector_spec());
    let existing = stored(sync(&svc, &[pod("a", "10.0.0.2", true)], &[]));
    let plan = sync(&svc, &[], &existing);
    // Delete + create of a placeholder becomes one update of the old name.
    assert!(plan.create.is_empty() && plan.delete.is_empty(), "{plan:?}");
    assert_eq!(plan.update.len(), 1);
    assert_eq!(plan.update[0].metadata.name.as_deref(), Some("web-0"));
    assert!(plan.update[0].endpoints.is_empty());
}

#[test]
fn slices_of_another_service_incarnation_are_deleted() {
    let svc = service(web_selector_spec());
    let pods = vec![pod("a", "10.0.0.2", true)];
    let mut existing = stored(sync(&svc, &pods, &[]));
    existing[0].metadata.owner_references.as_mut().unwrap()[0].uid = "old-uid".into();
    let plan = sync(&svc, &pods, &existing);
    assert_eq!(plan.delete, vec![ObjectKey::new("ns", "web-0")]);
    assert_eq!(plan.create.len(), 1);
}

#[test]
fn slices_of_other_managers_are_ignored() {
    let svc = service(web_selector_spec());
    let pods = vec![pod("a", "10.0.0.2", true)];
    let mut existing = stored(sync(&svc, &pods, &[]));
    let labels = existing[0].metadata.labels.as_mut().unwrap();
    labels.insert(LABEL_MANAGED_BY.into(), "someone-else".into());
    let plan = sync(&svc, &pods, &existing);
    assert!(plan.delete.is_empty());
    assert_eq!(plan.create.len(), 1);
}

#[test]
fn service_label_change_updates_slice_labels() {
    let svc = service(web_selector_spec());
    let pods = vec![pod("a", "10.0.0.2", true)];
    let existing = stored(sync(&svc, &pods, &[]));
    let mut relabelled = svc.clone();
    relabelled.metadata.labels = Some([("team".to_string(), "b".to_string())].into());
    let plan = sync(&relabelled, &pods, &existing);
    assert_eq!(plan.update.len(), 1);
    assert_eq!(
        plan.update[0].metadata.labels.as_ref().unwrap()["team"],
        "b"
    );
}

#[test]
fn new_endpoints_fill_the_unchanged_slice_closest_to_full() {
    let svc = service(web_selector_spec());
    let all: Vec<_> = (0..200)
        .map(|i| {
            pod(
                &format!("p{i:03}"),
                &format!("10.1.{}.{}", i / 256, i % 256),
                true,
            )
        })
        .collect();
    // Two stored slices: 100 and 95 endpoints.
    let mut existing = stored(sync(&svc, &all, &[]));
    assert_eq!(existing.len(), 2);
    existing.sort_by_key(|s| s.endpoints.len());
    let dropped: Vec<String> = existing[0].endpoints[..5]
        .iter()
        .map(|e| e.target_ref.as_ref().unwrap().name.clone().unwrap())
        .collect();
    existing[0].endpoints.drain(..5);
    let pods: Vec<_> = all
        .iter()
        .filter(|p| !dropped.contains(p.metadata.name.as_ref().unwrap()))
        .cloned()
        .chain((0..3).map(|i| pod(&format!("new{i}"), &format!("10.2.0.{i}"), true)))
        .collect();
    let plan = sync(&svc, &pods, &existing);
    assert!(plan.create.is_empty(), "{plan:?}");
    assert_eq!(plan.update.len(), 1);
    assert_eq!(plan.update[0].endpoints.len(), 98);
}

#[test]
fn no_selector_or_deleted_service_writes_nothing() {
    let svc = service(json!({"ports": [{"port": 80}]}));
    assert!(sync(&svc, &[pod("a", "10.0.0.2", true)], &[]).is_empty());
    let plan = sync_endpoint_slices(&key(), None, &[], &[], &[], None, &SliceOptions::default());
    assert!(plan.is_empty());
}

#[test]
fn headless_service_without_families_gets_both_address_types() {
    let svc = service(json!({"selector": {"app": "web"}, "clusterIP": "None"}));
    let plan = sync(&svc, &[pod("a", "10.0.0.2", true)], &[]);
    let mut types: Vec<(String, usize)> = plan
        .create
        .iter()
        .map(|s| (s.address_type.clone(), s.endpoints.len()))
        .collect();
    types.sort();
    assert_eq!(
        types,
        vec![("IPv4".to_string(), 1), ("IPv6".to_string(), 0)]
    );
    let labels = plan.create[0].metadata.labels.as_ref().unwrap();
    assert_eq!(
        labels
            .get("service.kubernetes.io/headless")
            .map(String::as_str),
        Some("")
    );
}

#[test]
fn unnamed_port_has_empty_name_and_plan_flattens_to_writes() {
    let svc = service(
        json!({"selector": {"app": "web"}, "clusterIP": "10.96.0.10", "ports": [{"port": 80, "targetPort": 9376}]}),
    );
    let plan = sync(&svc, &[pod("a", "10.0.0.2", true)], &[]);
    assert_eq!(
        serde_json::to_value(&plan.create[0].ports).unwrap(),
        json!([{"name": "", "port": 9376, "protocol": "TCP"}])
    );
    assert_eq!(plan.into_writes().len(), 1);
}

#[test]
fn trigger_time_is_annotated_on_written_slices() {
    let svc = service(web_selector_spec());
    let t: jiff::Timestamp = "2024-05-01T10:00:00Z".parse().unwrap();
    let plan = sync_endpoint_slices(
        &key(),
        Some(&svc),
        &[],
        &[],
        &[],
        Some(t),
        &SliceOptions::default(),
    );
    assert_eq!(
        plan.create[0].metadata.annotations.as_ref().unwrap()["endpoints.kubernetes.io/last-change-trigger-time"],
        "2024-05-01T10:00:00Z"
    );
}
