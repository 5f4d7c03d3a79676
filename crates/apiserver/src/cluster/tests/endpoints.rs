use k8s_openapi::api::core::v1::{EndpointAddress, EndpointPort, EndpointSubset, Endpoints, Pod};
use serde_json::json;

use super::{pod, service, web_selector_spec, with};
use crate::cluster::endpoints::*;
use crate::cluster::repack::repack_subsets;
use crate::cluster::write::{ObjectKey, Write};

fn key() -> ObjectKey {
    ObjectKey::new("ns", "web")
}

fn created(w: Option<Write<Endpoints>>) -> Endpoints {
    match w {
        Some(Write::Create(e)) => e,
        other => panic!("expected a create, got {other:?}"),
    }
}

fn subsets_json(e: &Endpoints) -> serde_json::Value {
    serde_json::to_value(&e.subsets).unwrap()
}

#[test]
fn ready_and_not_ready_pods_with_named_target_port() {
    let svc = service(web_selector_spec());
    let pods = vec![
        pod("a", "10.0.0.2", true),
        pod("b", "10.0.0.1", false),
        with(
            pod("other", "10.0.0.3", true),
            json!({"metadata": {"labels": {"app": "db"}}}),
        ),
        with(
            pod("elsewhere", "10.0.0.4", true),
            json!({"metadata": {"namespace": "other"}}),
        ),
        with(
            pod("noip", "", true),
            json!({"status": {"podIP": null, "podIPs": null}}),
        ),
        with(
            pod("done", "10.0.0.5", true),
            json!({"status": {"phase": "Succeeded"}}),
        ),
        with(
            pod("going", "10.0.0.6", true),
            json!({"metadata": {"deletionTimestamp": "2024-01-01T00:00:00Z"}}),
        ),
    ];
    let e = created(sync_endpoints(&key(), Some(&svc), &pods, None, None));
    assert_eq!(e.metadata.name.as_deref(), Some("web"));
    assert_eq!(e.metadata.namespace.as_deref(), Some("ns"));
    assert_eq!(
        e.metadata.labels,
        Some(
            [
                ("team".to_string(), "a".to_string()),
                (
                    "endpoints.kubernetes.io/managed-by".to_string(),
                    "endpoint-controller".to_string()
                )
            ]
            .into()
        )
    );
    assert!(is_controller_managed(&e));
    assert_eq!(e.metadata.annotations, None);
    assert_eq!(
        subsets_json(&e),
        json!([{
            "addresses": [{"ip": "10.0.0.2", "nodeName": "node-1",
                "targetRef": {"kind": "Pod", "namespace": "ns", "name": "a", "uid": "uid-a"}}],
            "notReadyAddresses": [{"ip": "10.0.0.1", "nodeName": "node-1",
                "targetRef": {"kind": "Pod", "namespace": "ns", "name": "b", "uid": "uid-b"}}],
            "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]
        }])
    );
}

#[test]
fn ports_resolved_per_pod_group_into_subsets() {
    let svc = service(json!({
        "selector": {"app": "web"},
        "clusterIP": "10.96.0.10",
        "ports": [
            {"name": "http", "port": 80, "targetPort": "http"},
            {"name": "metrics", "port": 9090, "targetPort": 9091, "protocol": "TCP"},
            {"name": "dns", "port": 53, "targetPort": "http", "protocol": "UDP"}
        ]
    }));
    // b has no port named http: it serves only the numeric port.
    let b = with(
        pod("b", "10.0.0.1", true),
        json!({"spec": {"containers": [{"name": "c"}]}}),
    );
    let pods = vec![pod("a", "10.0.0.2", true), b];
    let e = created(sync_endpoints(&key(), Some(&svc), &pods, None, None));
    let subsets = e.subsets.unwrap();
    assert_eq!(subsets.len(), 2);
    let ips = |s: &EndpointSubset| -> Vec<String> {
        s.addresses.iter().flatten().map(|a| a.ip.clone()).collect()
    };
    let ports = |s: &EndpointSubset| -> Vec<(Option<String>, i32)> {
        s.ports
            .iter()
            .flatten()
            .map(|p| (p.name.clone(), p.port))
            .collect()
    };
    // a, b on 9091; a alone on 8080 (the UDP port has no UDP container port).
    let both = subsets.iter().find(|s| ips(s).len() == 2).unwrap();
    assert_eq!(ips(both), vec!["10.0.0.1", "10.0.0.2"]);
    assert_eq!(ports(both), vec![(Some("metrics".to_string()), 9091)]);
    let only_a = subsets.iter().find(|s| ips(s).len() == 1).unwrap();
    assert_eq!(ips(only_a), vec!["10.0.0.2"]);
    assert_eq!(ports(only_a), vec![(Some("http".to_string()), 8080)]);
}

#[test]
fn unset_target_port_uses_the_service_port_and_unnamed_port_omits_name() {
    let svc = service(
        json!({"selector": {"app": "web"}, "clusterIP": "10.96.0.10", "ports": [{"port": 80}]}),
    );
    let e = created(sync_endpoints(
        &key(),
        Some(&svc),
        &[pod("a", "10.0.0.2", true)],
        None,
        None,
    ));
    assert_eq!(
        serde_json::to_value(&e.subsets.unwrap()[0].ports).unwrap(),
        json!([{"port": 80, "protocol": "TCP"}])
    );
}

#[test]
fn publish_not_ready_addresses_includes_unready_and_terminating() {
    let mut spec = web_selector_spec();
    spec["publishNotReadyAddresses"] = json!(true);
    let svc = service(spec);
    let pods = vec![
        pod("a", "10.0.0.2", false),
        with(
            pod("t", "10.0.0.3", true),
            json!({"metadata": {"deletionTimestamp": "2024-01-01T00:00:00Z"}}),
        ),
    ];
    let e = created(sync_endpoints(&key(), Some(&svc), &pods, None, None));
    let s = &e.subsets.unwrap()[0];
    let ips: Vec<&str> = s
        .addresses
        .iter()
        .flatten()
        .map(|a| a.ip.as_str())
        .collect();
    assert_eq!(ips, vec!["10.0.0.2", "10.0.0.3"]);
    assert_eq!(s.not_ready_addresses, None);
}

#[test]
fn headless_without_ports_lists_addresses_and_is_labelled() {
    let svc = service(json!({"selector": {"app": "web"}, "clusterIP": "None"}));
    let e = created(sync_endpoints(
        &key(),
        Some(&svc),
        &[pod("a", "10.0.0.2", true)],
        None,
        None,
    ));
    assert_eq!(
        subsets_json(&e),
        json!([{"addresses": [{"ip": "10.0.0.2", "nodeName": "node-1",
            "targetRef": {"kind": "Pod", "namespace": "ns", "name": "a", "uid": "uid-a"}}]}])
    );
    assert_eq!(
        e.metadata
            .labels
            .unwrap()
            .get(LABEL_HEADLESS)
            .map(String::as_str),
        Some("")
    );
}

#[test]
fn portless_service_with_cluster_ip_gets_no_subsets() {
    let svc = service(json!({"selector": {"app": "web"}, "clusterIP": "10.96.0.10"}));
    let e = created(sync_endpoints(
        &key(),
        Some(&svc),
        &[pod("a", "10.0.0.2", true)],
        None,
        None,
    ));
    assert_eq!(e.subsets, None);
}

#[test]
fn hostname_when_subdomain_names_the_service() {
    let svc = service(web_selector_spec());
    let pods = vec![
        with(
            pod("a", "10.0.0.2", true),
            json!({"spec": {"hostname": "host-a", "subdomain": "web"}}),
        ),
        with(
            pod("b", "10.0.0.3", true),
            json!({"spec": {"hostname": "host-b", "subdomain": "other"}}),
        ),
    ];
    let e = created(sync_endpoints(&key(), Some(&svc), &pods, None, None));
    let addrs = e.subsets.unwrap()[0].addresses.clone().unwrap();
    assert_eq!(addrs[0].hostname.as_deref(), Some("host-a"));
    assert_eq!(addrs[1].hostname, None);
}

#[test]
fn services_without_selector_or_external_name_are_left_alone() {
    let no_selector = service(json!({"clusterIP": "10.96.0.10", "ports": [{"port": 80}]}));
    let empty_selector = service(json!({"selector": {}, "ports": [{"port": 80}]}));
    let external = service(
        json!({"type": "ExternalName", "externalName": "x.example", "selector": {"app": "web"}}),
    );
    let pods = vec![pod("a", "10.0.0.2", true)];
    for svc in [no_selector, empty_selector, external] {
        assert_eq!(sync_endpoints(&key(), Some(&svc), &pods, None, None), None);
    }
}

#[test]
fn deleted_service_deletes_its_endpoints() {
    let current = Endpoints::default();
    assert_eq!(
        sync_endpoints(&key(), None, &[], Some(&current), None),
        Some(Write::Delete(key()))
    );
    assert_eq!(sync_endpoints(&key(), None, &[], None, None), None);
}

#[test]
fn writes_only_on_change_and_updates_keep_metadata() {
    let svc = service(web_selector_spec());
    let pods = vec![pod("a", "10.0.0.2", true)];
    let mut stored = created(sync_endpoints(&key(), Some(&svc), &pods, None, None));
    stored.metadata.resource_version = Some("42".into());
    stored.metadata.uid = Some("ep-uid".into());
    // Pod resourceVersions in targetRef do not count as a change.
    let mut with_rv = stored.clone();
    if let Some(a) = with_rv
        .subsets
        .as_mut()
        .and_then(|s| s[0].addresses.as_mut())
    {
        a[0].target_ref.as_mut().unwrap().resource_version = Some("7".into());
    }
    assert_eq!(
        sync_endpoints(&key(), Some(&svc), &pods, Some(&with_rv), None),
        None
    );

    let more = vec![pod("a", "10.0.0.2", true), pod("b", "10.0.0.3", true)];
    match sync_endpoints(&key(), Some(&svc), &more, Some(&stored), None) {
        Some(Write::Update(e)) => {
            assert_eq!(e.metadata.resource_version.as_deref(), Some("42"));
            assert_eq!(e.metadata.uid.as_deref(), Some("ep-uid"));
            assert_eq!(e.subsets.unwrap()[0].addresses.as_ref().unwrap().len(), 2);
        }
        other => panic!("expected update, got {other:?}"),
    }

    let mut relabelled = svc.clone();
    relabelled.metadata.labels = Some([("team".to_string(), "b".to_string())].into());
    match sync_endpoints(&key(), Some(&relabelled), &pods, Some(&stored), None) {
        Some(Write::Update(e)) => assert_eq!(e.metadata.labels.unwrap()["team"], "b"),
        other => panic!("expected update, got {other:?}"),
    }

    // Endpoints written before the manager label existed get it.
    let mut unlabelled = stored.clone();
    unlabelled
        .metadata
        .labels
        .as_mut()
        .unwrap()
        .remove(LABEL_ENDPOINTS_MANAGED_BY);
    assert!(matches!(
        sync_endpoints(&key(), Some(&svc), &pods, Some(&unlabelled), None),
        Some(Write::Update(_))
    ));
    // A label the Service does not have is removed.
    let mut extra = stored.clone();
    extra
        .metadata
        .labels
        .as_mut()
        .unwrap()
        .insert("x".into(), "y".into());
    match sync_endpoints(&key(), Some(&svc), &pods, Some(&extra), None) {
        Some(Write::Update(e)) => assert!(!e.metadata.labels.unwrap().contains_key("x")),
        other => panic!("expected update, got {other:?}"),
    }
}

#[test]
fn trigger_time_annotation_is_written_and_cleared() {
    let svc = service(web_selector_spec());
    let pods = vec![pod("a", "10.0.0.2", true)];
    let t: jiff::Timestamp = "2024-05-01T10:00:00.5Z".parse().unwrap();
    let e = created(sync_endpoints(&key(), Some(&svc), &pods, None, Some(t)));
    assert_eq!(
        e.metadata.annotations.as_ref().unwrap()[ANNOTATION_LAST_CHANGE_TRIGGER_TIME],
        "2024-05-01T10:00:00.5Z"
    );
    let more = vec![pod("a", "10.0.0.2", true), pod("b", "10.0.0.3", true)];
    match sync_endpoints(&key(), Some(&svc), &more, Some(&e), None) {
        Some(Write::Update(next)) => assert_eq!(next.metadata.annotations, None),
        other => panic!("expected update, got {other:?}"),
    }
}

fn many_pods(n: usize, ready: bool, offset: usize) -> Vec<Pod> {
    (0..n)
        .map(|i| {
            let j = i + offset;
            pod(
                &format!("p{j}"),
                &format!("10.{}.{}.{}", j / 65536, (j / 256) % 256, j % 256),
                ready,
            )
        })
        .collect()
}

#[test]
fn over_capacity_truncates_ready_addresses_and_annotates() {
    let svc = service(web_selector_spec());
    let e = created(sync_endpoints(
        &key(),
        Some(&svc),
        &many_pods(1001, true, 0),
        None,
        None,
    ));
    let subsets = e.subsets.as_ref().unwrap();
    assert_eq!(subsets[0].addresses.as_ref().unwrap().len(), 1000);
    assert_eq!(
        e.metadata.annotations.as_ref().unwrap()[ANNOTATION_OVER_CAPACITY],
        OVER_CAPACITY_TRUNCATED
    );
    // Stable once written.
    assert_eq!(
        sync_endpoints(
            &key(),
            Some(&svc),
            &many_pods(1001, true, 0),
            Some(&e),
            None
        ),
        None
    );
}

#[test]
fn over_capacity_drops_not_ready_first() {
    let svc = service(web_selector_spec());
    let mut pods = many_pods(990, true, 0);
    pods.extend(many_pods(20, false, 990));
    let e = created(sync_endpoints(&key(), Some(&svc), &pods, None, None));
    let s = &e.subsets.unwrap()[0];
    assert_eq!(s.addresses.as_ref().unwrap().len(), 990);
    assert_eq!(s.not_ready_addresses.as_ref().unwrap().len(), 10);
}

#[test]
fn exactly_at_capacity_is_not_annotated() {
    let svc = service(web_selector_spec());
    let e = created(sync_endpoints(
        &key(),
        Some(&svc),
        &many_pods(1000, true, 0),
        None,
        None,
    ));
    assert_eq!(e.metadata.annotations, None);
}

#[test]
fn ipv6_service_takes_the_pods_ipv6_address() {
    let mut spec = web_selector_spec();
    spec["ipFamilies"] = json!(["IPv6"]);
    spec["clusterIP"] = json!("fd00::10");
    let svc = service(spec);
    let dual = with(
        pod("a", "10.0.0.2", true),
        json!({"status": {"podIPs": [{"ip": "10.0.0.2"}, {"ip": "fd00::2"}]}}),
    );
    let v4_only = pod("b", "10.0.0.3", true);
    let e = created(sync_endpoints(
        &key(),
        Some(&svc),
        &[dual, v4_only],
        None,
        None,
    ));
    let ips: Vec<String> = e.subsets.unwrap()[0]
        .addresses
        .iter()
        .flatten()
        .map(|a| a.ip.clone())
        .collect();
    assert_eq!(ips, vec!["fd00::2"]);
}

fn addr(ip: &str, uid: &str) -> EndpointAddress {
    serde_json::from_value(json!({"ip": ip, "targetRef": {"kind": "Pod", "uid": uid}})).unwrap()
}

fn port(name: &str, n: i32) -> EndpointPort {
    EndpointPort {
        name: Some(name.into()),
        port: n,
        protocol: Some("TCP".into()),
        app_protocol: None,
    }
}

#[test]
fn repack_dedupes_addresses_and_not_ready_trumps_ready() {
    let subsets = vec![
        EndpointSubset {
            addresses: Some(vec![addr("10.0.0.1", "u1")]),
            not_ready_addresses: None,
            ports: Some(vec![port("p", 80)]),
        },
        EndpointSubset {
            addresses: None,
            not_ready_addresses: Some(vec![addr("10.0.0.1", "u1")]),
            ports: Some(vec![port("p", 80)]),
        },
        EndpointSubset {
            addresses: Some(vec![addr("10.0.0.1", "u2")]),
            not_ready_addresses: None,
            ports: Some(vec![port("p", 80)]),
        },
    ];
    let out = repack_subsets(subsets);
    assert_eq!(out.len(), 1);
    let ready: Vec<&str> = out[0]
        .addresses
        .iter()
        .flatten()
        .map(|a| a.target_ref.as_ref().unwrap().uid.as_deref().unwrap())
        .collect();
    let not_ready: Vec<&str> = out[0]
        .not_ready_addresses
        .iter()
        .flatten()
        .map(|a| a.target_ref.as_ref().unwrap().uid.as_deref().unwrap())
        .collect();
    assert_eq!(ready, vec!["u2"]);
    assert_eq!(not_ready, vec!["u1"]);
}

#[test]
fn repack_merges_ports_served_by_the_same_addresses() {
    let subsets = vec![
        EndpointSubset {
            addresses: Some(vec![addr("10.0.0.2", "b"), addr("10.0.0.1", "a")]),
            not_ready_addresses: None,
            ports: Some(vec![port("x", 81)]),
        },
        EndpointSubset {
            addresses: Some(vec![addr("10.0.0.1", "a"), addr("10.0.0.2", "b")]),
            not_ready_addresses: None,
            ports: Some(vec![port("y", 80)]),
        },
    ];
    let out = repack_subsets(subsets);
    assert_eq!(out.len(), 1);
    let ips: Vec<&str> = out[0]
        .addresses
        .iter()
        .flatten()
        .map(|a| a.ip.as_str())
        .collect();
    assert_eq!(ips, vec!["10.0.0.1", "10.0.0.2"]);
    assert_eq!(out[0].ports.as_ref().unwrap().len(), 2);
}

#[test]
fn addresses_sort_by_ip_bytes_not_numerically() {
    let subsets = vec![EndpointSubset {
        addresses: Some(vec![
            addr("10.0.0.10", "a"),
            addr("10.0.0.9", "b"),
            addr("10.0.0.10", "0"),
        ]),
        not_ready_addresses: None,
        ports: Some(vec![port("p", 80)]),
    }];
    let out = repack_subsets(subsets);
    let got: Vec<(String, String)> = out[0]
        .addresses
        .iter()
        .flatten()
        .map(|a| {
            (
                a.ip.clone(),
                a.target_ref.as_ref().unwrap().uid.clone().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            ("10.0.0.10".to_string(), "0".to_string()),
            ("10.0.0.10".to_string(), "a".to_string()),
            ("10.0.0.9".to_string(), "b".to_string())
        ]
    );
}

#[test]
fn services_for_pod_matches_old_and_new_labels() {
    let svc = service(web_selector_spec());
    let mut other = service(json!({"selector": {"app": "db"}}));
    other.metadata.name = Some("db".into());
    let old = pod("a", "10.0.0.2", true);
    let new = with(old.clone(), json!({"metadata": {"labels": {"app": "db"}}}));
    let keys = services_for_pod(&[svc, other], Some(&old), Some(&new));
    assert_eq!(
        keys.into_iter().collect::<Vec<_>>(),
        vec![ObjectKey::new("ns", "db"), ObjectKey::new("ns", "web")]
    );
}
