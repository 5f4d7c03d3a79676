use k8s_openapi::api::core::v1::{EndpointPort, EndpointSubset};
use k8s_openapi::api::discovery::v1::EndpointPort as SlicePort;
use serde_json::json;

use crate::cluster::gohash::*;

fn hex(d: [u8; 16]) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn md5_test_vectors() {
    let cases = [
        ("", "d41d8cd98f00b204e9800998ecf8427e"),
        ("a", "0cc175b9c0f1b6a831c399e269772661"),
        ("abc", "900150983cd24fb0d6963f7d28e17f72"),
        ("message digest", "f96b697d7cb7938d525a2f31aaf161d0"),
        (
            "abcdefghijklmnopqrstuvwxyz",
            "c3fcd3d76192e4007dfb496cca67e13b",
        ),
        (
            "12345678901234567890123456789012345678901234567890123456789012345678901234567890",
            "57edf4a22be3c955ac49da2e2107b67a",
        ),
    ];
    for (input, want) in cases {
        assert_eq!(hex(md5(input.as_bytes())), want, "{input:?}");
    }
}

#[test]
fn spew_renders_ports_with_types_and_nil_pointers() {
    let p: EndpointPort =
        serde_json::from_value(json!({"name": "http", "port": 8080, "protocol": "TCP"})).unwrap();
    assert_eq!(
        spew_endpoint_port(&p),
        "(v1.EndpointPort){Name:(string)http Port:(int32)8080 Protocol:(v1.Protocol)TCP AppProtocol:(*string)<nil>}"
    );
    let s: SlicePort = serde_json::from_value(
        json!({"name": "", "port": 80, "protocol": "UDP", "appProtocol": "dns"}),
    )
    .unwrap();
    assert_eq!(
        spew_slice_port(&s),
        "(v1.EndpointPort){Name:(*string) Protocol:(*v1.Protocol)UDP Port:(*int32)80 AppProtocol:(*string)dns}"
    );
}

#[test]
fn spew_renders_subsets_with_nil_slices() {
    let s: EndpointSubset = serde_json::from_value(json!({
        "addresses": [{"ip": "10.0.0.1", "nodeName": "n", "targetRef": {"kind": "Pod", "namespace": "ns", "name": "a", "uid": "u"}}],
        "ports": [{"port": 80, "protocol": "TCP"}]
    }))
    .unwrap();
    assert_eq!(
        spew_endpoint_subset(&s),
        "(v1.EndpointSubset){Addresses:([]v1.EndpointAddress)[{IP:(string)10.0.0.1 Hostname:(string) NodeName:(*string)n \
         TargetRef:(*v1.ObjectReference){Kind:(string)Pod Namespace:(string)ns Name:(string)a UID:(types.UID)u \
         APIVersion:(string) ResourceVersion:(string) FieldPath:(string)}}] NotReadyAddresses:([]v1.EndpointAddress)<nil> \
         Ports:([]v1.EndpointPort)[{Name:(string) Port:(int32)80 Protocol:(v1.Protocol)TCP AppProtocol:(*string)<nil>}]}"
    );
}

#[test]
fn ports_order_follows_the_hash() {
    let ports: Vec<EndpointPort> = (1..=6)
        .map(|i| EndpointPort {
            name: Some(format!("p{i}")),
            port: 8000 + i,
            protocol: Some("TCP".into()),
            app_protocol: None,
        })
        .collect();
    let subset = EndpointSubset {
        addresses: Some(vec![
            serde_json::from_value(json!({"ip": "10.0.0.1"})).unwrap(),
        ]),
        not_ready_addresses: None,
        ports: Some(ports.clone()),
    };
    let out = crate::cluster::repack::repack_subsets(vec![subset]);
    let got: Vec<[u8; 16]> = out[0]
        .ports
        .iter()
        .flatten()
        .map(|p| hash_key(&spew_endpoint_port(p)))
        .collect();
    let mut sorted = got.clone();
    sorted.sort();
    assert_eq!(got, sorted);
    assert_eq!(got.len(), 6);
}

#[test]
fn kube_dns_ports_come_out_in_the_order_real_clusters_show() {
    let port = |name: &str, n: i32, proto: &str| EndpointPort {
        name: Some(name.into()),
        port: n,
        protocol: Some(proto.into()),
        app_protocol: None,
    };
    let subset = EndpointSubset {
        addresses: Some(vec![
            serde_json::from_value(json!({"ip": "10.244.0.2"})).unwrap(),
        ]),
        not_ready_addresses: None,
        ports: Some(vec![
            port("dns", 53, "UDP"),
            port("metrics", 9153, "TCP"),
            port("dns-tcp", 53, "TCP"),
        ]),
    };
    let out = crate::cluster::repack::repack_subsets(vec![subset]);
    let names: Vec<&str> = out[0]
        .ports
        .iter()
        .flatten()
        .map(|p| p.name.as_deref().unwrap())
        .collect();
    assert_eq!(names, ["dns-tcp", "dns", "metrics"]);
}

/// A kind cluster lists the kube-dns slice as `9153,53,53`.
#[test]
fn kube_dns_slice_ports_come_out_in_the_order_real_clusters_show() {
    let mut ports: Vec<SlicePort> = [
        ("dns", 53, "UDP"),
        ("metrics", 9153, "TCP"),
        ("dns-tcp", 53, "TCP"),
    ]
    .iter()
    .map(|(n, p, proto)| SlicePort {
        name: Some((*n).into()),
        port: Some(*p),
        protocol: Some((*proto).into()),
        app_protocol: None,
    })
    .collect();
    ports.sort_by_cached_key(|p| hash_key(&spew_slice_port(p)));
    let names: Vec<&str> = ports.iter().map(|p| p.name.as_deref().unwrap()).collect();
    assert_eq!(names, ["metrics", "dns", "dns-tcp"]);
}
