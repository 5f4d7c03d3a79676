use std::net::IpAddr;

use k8s_openapi::api::core::v1::Service;
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde_json::json;

use crate::cluster::alloc::*;

fn rng() -> StdRng {
    StdRng::seed_from_u64(7)
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn svc(spec: serde_json::Value) -> Service {
    serde_json::from_value(json!({"metadata": {"name": "s", "namespace": "ns"}, "spec": spec}))
        .unwrap()
}

#[test]
fn default_range_reserves_first_ip_for_kubernetes() {
    let mut a = ClusterIpAllocator::default_range();
    assert_eq!(a.cidr(), "10.96.0.0/12");
    assert_eq!(a.kubernetes_service_ip(), ip("10.96.0.1"));
    assert!(!a.contains(ip("10.96.0.0")));
    assert!(a.contains(ip("10.111.255.254")));
    assert!(!a.contains(ip("10.111.255.255")));
    a.allocate(
        ip("10.96.0.1"),
        "spec.clusterIPs",
        "[]string{\"10.96.0.1\"}",
    )
    .unwrap();
    assert!(a.is_allocated(ip("10.96.0.1")));
    let parsed = ClusterIpAllocator::new("10.96.0.0/12").unwrap();
    assert_eq!(parsed.kubernetes_service_ip(), ip("10.96.0.1"));
}

#[test]
fn explicit_ip_errors_match_kube_apiserver() {
    let mut a = ClusterIpAllocator::default_range();
    let value = "[]string{\"10.96.0.10\"}";
    a.allocate(ip("10.96.0.10"), "spec.clusterIPs", value)
        .unwrap();
    assert_eq!(
        a.allocate(ip("10.96.0.10"), "spec.clusterIPs", value)
            .unwrap_err()
            .to_string(),
        "spec.clusterIPs: Invalid value: []string{\"10.96.0.10\"}: failed to allocate IP 10.96.0.10: provided IP is already allocated"
    );
    let err = a
        .allocate(
            ip("10.200.0.1"),
            "spec.clusterIPs",
            "[]string{\"10.200.0.1\"}",
        )
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "spec.clusterIPs: Invalid value: []string{\"10.200.0.1\"}: failed to allocate IP 10.200.0.1: the provided IP (10.200.0.1) is not in the valid range. The range of valid IPs is 10.96.0.0/12"
    );
    assert!(err.is_invalid());
    assert_eq!(err.field(), Some("spec.clusterIPs"));
}

#[test]
fn random_ips_come_from_the_upper_band_then_the_lower() {
    let mut a = ClusterIpAllocator::new("10.0.0.0/24").unwrap();
    // 254 usable, offset clamp(254/16, 16, 256) = 16: dynamic band starts at 10.0.0.17.
    let mut got = Vec::new();
    for _ in 0..238 {
        got.push(a.allocate_next(&mut rng()).unwrap());
    }
    assert!(
        got.iter().all(|g| a.contains(*g) && *g >= ip("10.0.0.17")),
        "upper band first"
    );
    let next = a.allocate_next(&mut rng()).unwrap();
    assert!(next < ip("10.0.0.17"));
    for _ in 0..15 {
        a.allocate_next(&mut rng()).unwrap();
    }
    assert_eq!(a.allocate_next(&mut rng()), Err(AllocError::IpRangeFull));
    assert_eq!(
        AllocError::IpRangeFull.to_string(),
        "failed to allocate a serviceIP: range is full"
    );
    a.release(next);
    assert_eq!(a.allocate_next(&mut rng()), Ok(next));
}

#[test]
fn ipv6_range_skips_only_the_network_address() {
    let mut a = ClusterIpAllocator::new("fd00::/120").unwrap();
    assert_eq!(a.family(), "IPv6");
    assert_eq!(a.kubernetes_service_ip(), ip("fd00::1"));
    assert!(a.contains(ip("fd00::ff")));
    assert!(a.allocate_next(&mut rng()).unwrap().is_ipv6());
    assert!(ClusterIpAllocator::new("10.0.0.0/31").is_err());
    assert!(ClusterIpAllocator::new("nonsense").is_err());
}

#[test]
fn node_port_errors_and_bands() {
    let mut p = NodePortAllocator::default();
    p.allocate(30080, "spec.ports[0].nodePort").unwrap();
    assert_eq!(
        p.allocate(30080, "spec.ports[0].nodePort")
            .unwrap_err()
            .to_string(),
        "spec.ports[0].nodePort: Invalid value: 30080: provided port is already allocated"
    );
    assert_eq!(
        p.allocate(29999, "spec.ports[1].nodePort")
            .unwrap_err()
            .to_string(),
        "spec.ports[1].nodePort: Invalid value: 29999: provided port is not in the valid range. The range of valid ports is 30000-32767"
    );
    // 2768 ports, offset clamp(2768/32, 16, 128) = 86: dynamic from 30086.
    for _ in 0..100 {
        let port = p.allocate_next(&mut rng()).unwrap();
        assert!((30086..=32767).contains(&port), "{port}");
    }
    let mut small = NodePortAllocator::new(30000, 30001);
    small.allocate_next(&mut rng()).unwrap();
    small.allocate_next(&mut rng()).unwrap();
    assert_eq!(
        small.allocate_next(&mut rng()).unwrap_err().to_string(),
        "failed to allocate a nodePort: range is full"
    );
}

#[test]
fn service_allocation_fills_ips_families_and_node_ports() {
    let mut a = ServiceAllocator::default();
    let mut s = svc(
        json!({"type": "NodePort", "ports": [{"port": 80}, {"port": 53, "protocol": "UDP", "nodePort": 30053}]}),
    );
    a.allocate_service(&mut s, &mut rng()).unwrap();
    let spec = s.spec.as_ref().unwrap();
    let cluster_ip = spec.cluster_ip.clone().unwrap();
    assert_eq!(spec.cluster_ips, Some(vec![cluster_ip.clone()]));
    assert_eq!(spec.ip_families, Some(vec!["IPv4".to_string()]));
    assert_eq!(spec.ip_family_policy.as_deref(), Some("SingleStack"));
    let ports = spec.ports.as_ref().unwrap();
    assert!(ports[0].node_port.is_some());
    assert_eq!(ports[1].node_port, Some(30053));
    assert!(a.ips.is_allocated(ip(&cluster_ip)));
    assert_eq!(a.ports.used(), 2);

    a.release_service(&s);
    assert_eq!(a.ips.used(), 0);
    assert_eq!(a.ports.used(), 0);
}

#[test]
fn headless_and_external_name_allocate_nothing() {
    let mut a = ServiceAllocator::default();
    let mut headless = svc(json!({"clusterIP": "None", "ports": [{"port": 80}]}));
    a.allocate_service(&mut headless, &mut rng()).unwrap();
    assert_eq!(
        headless.spec.as_ref().unwrap().cluster_ips,
        Some(vec!["None".to_string()])
    );
    let mut external = svc(json!({"type": "ExternalName", "externalName": "a.example"}));
    a.allocate_service(&mut external, &mut rng()).unwrap();
    assert_eq!(external.spec.as_ref().unwrap().cluster_ip, None);
    assert_eq!(a.ips.used(), 0);
}

#[test]
fn failed_allocation_rolls_back() {
    let mut a = ServiceAllocator::default();
    let mut first = svc(
        json!({"type": "NodePort", "clusterIP": "10.96.0.20", "ports": [{"port": 80, "nodePort": 30080}]}),
    );
    a.allocate_service(&mut first, &mut rng()).unwrap();
    let mut clash = svc(
        json!({"type": "NodePort", "clusterIP": "10.96.0.21", "ports": [{"port": 80}, {"port": 81, "nodePort": 30080}]}),
    );
    let err = a.allocate_service(&mut clash, &mut rng()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "spec.ports[1].nodePort: Invalid value: 30080: provided port is already allocated"
    );
    assert!(!a.ips.is_allocated(ip("10.96.0.21")));
    assert_eq!(a.ports.used(), 1);
    let mut same_ip = svc(json!({"clusterIP": "10.96.0.20", "ports": [{"port": 80}]}));
    assert_eq!(
        a.allocate_service(&mut same_ip, &mut rng())
            .unwrap_err()
            .to_string(),
        "spec.clusterIPs: Invalid value: []string{\"10.96.0.20\"}: failed to allocate IP 10.96.0.20: provided IP is already allocated"
    );
}

#[test]
fn type_changes_on_update_allocate_and_release_node_ports() {
    let mut a = ServiceAllocator::default();
    let mut old = svc(json!({"type": "NodePort", "ports": [{"port": 80}]}));
    a.allocate_service(&mut old, &mut rng()).unwrap();
    let node_port = old.spec.as_ref().unwrap().ports.as_ref().unwrap()[0]
        .node_port
        .unwrap();

    // Same service updated unchanged keeps its port (no self-conflict).
    let mut same = old.clone();
    a.update_service(&old, &mut same, &mut rng()).unwrap();
    assert!(a.ports.is_allocated(node_port));

    let mut cluster_ip_only = old.clone();
    cluster_ip_only.spec.as_mut().unwrap().type_ = Some("ClusterIP".into());
    a.update_service(&old, &mut cluster_ip_only, &mut rng())
        .unwrap();
    assert!(!a.ports.is_allocated(node_port));
    assert_eq!(
        cluster_ip_only
            .spec
            .as_ref()
            .unwrap()
            .ports
            .as_ref()
            .unwrap()[0]
            .node_port,
        None
    );
    assert_eq!(a.ips.used(), 1);
}

#[test]
fn rebuild_restores_state_from_stored_services() {
    let services = vec![
        svc(
            json!({"clusterIP": "10.96.0.1", "clusterIPs": ["10.96.0.1"], "ports": [{"port": 443}]}),
        ),
        svc(
            json!({"type": "NodePort", "clusterIP": "10.96.5.5", "ports": [{"port": 80, "nodePort": 31000}]}),
        ),
        svc(json!({"clusterIP": "None"})),
        svc(json!({"clusterIP": "192.168.0.1"})),
    ];
    let mut a = ServiceAllocator::default();
    a.rebuild(&services);
    assert!(a.ips.is_allocated(ip("10.96.0.1")));
    assert!(a.ips.is_allocated(ip("10.96.5.5")));
    assert_eq!(a.ips.used(), 2);
    assert!(a.ports.is_allocated(31000));
    let mut again = svc(json!({"clusterIP": "10.96.5.5"}));
    assert!(a.allocate_service(&mut again, &mut rng()).is_err());
}

#[test]
fn turning_into_external_name_releases_the_cluster_ip() {
    let mut a = ServiceAllocator::default();
    let mut old = svc(json!({"ports": [{"port": 80}]}));
    a.allocate_service(&mut old, &mut rng()).unwrap();
    assert_eq!(a.ips.used(), 1);
    let mut new = old.clone();
    let spec = new.spec.as_mut().unwrap();
    spec.type_ = Some("ExternalName".into());
    spec.external_name = Some("db.example".into());
    a.update_service(&old, &mut new, &mut rng()).unwrap();
    let spec = new.spec.as_ref().unwrap();
    assert_eq!(
        (
            spec.cluster_ip.as_deref(),
            spec.cluster_ips.as_ref(),
            spec.ip_families.as_ref()
        ),
        (None, None, None)
    );
    assert_eq!(a.ips.used(), 0);
}
