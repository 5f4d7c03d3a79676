//! Tables for in-cluster answers, and the index's changes as a member's
//! Services, EndpointSlices and Nodes come and go.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use k8s_openapi::api::core::v1::{Node, Service, ServiceSpec};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointSlice};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::*;
use crate::dns::ZoneForm;
use crate::federation::{REGION_LABEL, ZONE_LABEL};

fn label(s: &str) -> DnsLabel {
    DnsLabel::new("label", s).unwrap()
}

fn federation(name: &str, suffix: &str, form: ZoneForm) -> DnsConfig {
    let mut config = DnsConfig::new(label(name), DomainName::new("suffix", suffix).unwrap());
    config.zone_form = form;
    config
}

fn config() -> InClusterConfig {
    InClusterConfig::new(
        DomainName::new("cluster domain", "cluster.local").unwrap(),
        vec![
            federation("myfederation", "example.com", ZoneForm::ZoneOnly),
            federation("other", "other.org", ZoneForm::ZoneInRegion),
        ],
    )
}

/// Records as `NAME TYPE DATA` lines.
fn listing<'a>(records: impl IntoIterator<Item = &'a NameRecords>) -> String {
    let mut out = String::new();
    for r in records {
        match &r.data {
            RecordData::Addresses { v4, v6 } => {
                for ip in v4 {
                    writeln!(out, "{} A {ip}", r.name).unwrap();
                }
                for ip in v6 {
                    writeln!(out, "{} AAAA {ip}", r.name).unwrap();
                }
            }
            RecordData::Cname(target) => writeln!(out, "{} CNAME {target}.", r.name).unwrap(),
        }
    }
    out
}

fn local(fed: &str, ips: &[&str]) -> LocalService {
    LocalService {
        federation: label(fed),
        namespace: label("mynamespace"),
        name: label("nginx"),
        cluster_ips: ips.iter().map(|ip| ip.parse().unwrap()).collect(),
    }
}

fn place(zone: Option<&str>, region: Option<&str>) -> Place {
    Place {
        zone: zone.map(label),
        region: region.map(label),
    }
}

#[test]
fn answers_table() {
    let here = place(Some("us-central1-f"), Some("us-central1"));
    let cases: &[(&str, LocalService, Place, bool, &str)] = &[
        (
            "healthy local shard: CNAME to the local name, with its A",
            local("myfederation", &["10.96.0.10"]),
            here.clone(),
            true,
            "nginx.mynamespace.myfederation.svc.cluster.local CNAME nginx.mynamespace.svc.cluster.local.\n\
             nginx.mynamespace.svc.cluster.local A 10.96.0.10\n",
        ),
        (
            "dual stack: A and AAAA",
            local("myfederation", &["fd00::a", "10.96.0.10"]),
            here.clone(),
            true,
            "nginx.mynamespace.myfederation.svc.cluster.local CNAME nginx.mynamespace.svc.cluster.local.\n\
             nginx.mynamespace.svc.cluster.local A 10.96.0.10\n\
             nginx.mynamespace.svc.cluster.local AAAA fd00::a\n",
        ),
        (
            "no ready endpoints: CNAME to the cluster's zone name",
            local("myfederation", &["10.96.0.10"]),
            here.clone(),
            false,
            "nginx.mynamespace.myfederation.svc.cluster.local CNAME nginx.mynamespace.myfederation.svc.us-central1-f.example.com.\n",
        ),
        (
            "headless (no ClusterIP): the zone name even when ready",
            local("myfederation", &[]),
            here.clone(),
            true,
            "nginx.mynamespace.myfederation.svc.cluster.local CNAME nginx.mynamespace.myfederation.svc.us-central1-f.example.com.\n",
        ),
        (
            "zone-in-region form",
            local("other", &["10.96.0.10"]),
            here.clone(),
            false,
            "nginx.mynamespace.other.svc.cluster.local CNAME nginx.mynamespace.other.svc.us-central1-f.us-central1.other.org.\n",
        ),
        (
            "nodes name a region only: the region name",
            local("myfederation", &["10.96.0.10"]),
            place(None, Some("us-central1")),
            false,
            "nginx.mynamespace.myfederation.svc.cluster.local CNAME nginx.mynamespace.myfederation.svc.us-central1.example.com.\n",
        ),
        (
            "nodes name a zone only: the zone name in the zone-only form",
            local("myfederation", &["10.96.0.10"]),
            place(Some("us-central1-f"), None),
            false,
            "nginx.mynamespace.myfederation.svc.cluster.local CNAME nginx.mynamespace.myfederation.svc.us-central1-f.example.com.\n",
        ),
        (
            "a zone only cannot be named in the zone-in-region form: global",
            local("other", &["10.96.0.10"]),
            place(Some("us-central1-f"), None),
            false,
            "nginx.mynamespace.other.svc.cluster.local CNAME nginx.mynamespace.other.svc.other.org.\n",
        ),
        (
            "nodes name nothing: the global name",
            local("myfederation", &["10.96.0.10"]),
            Place::default(),
            false,
            "nginx.mynamespace.myfederation.svc.cluster.local CNAME nginx.mynamespace.myfederation.svc.example.com.\n",
        ),
        (
            "a federation not configured: nothing",
            local("elsewhere", &["10.96.0.10"]),
            here.clone(),
            true,
            "",
        ),
    ];
    for (what, service, place, ready, want) in cases {
        let records = in_cluster_records(&config(), place, service, *ready).unwrap();
        assert_eq!(listing(&records), *want, "{what}");
    }
}

#[test]
fn a_name_too_long_for_dns_is_an_error() {
    let mut service = local("myfederation", &["10.96.0.10"]);
    service.name = label(&"n".repeat(63));
    service.namespace = label(&"s".repeat(63));
    let mut config = config();
    config.cluster_domain = DomainName::new("cluster domain", &"d".repeat(63)).unwrap();
    config.federations[0].federation = label(&"f".repeat(63));
    service.federation = label(&"f".repeat(63));
    config.federations[0].suffix = config.cluster_domain.clone();
    assert!(matches!(
        in_cluster_records(&config, &Place::default(), &service, true),
        Err(RecordsError::RecordName { .. })
    ));
}

fn meta(namespace: Option<&str>, name: &str, labels: &[(&str, &str)]) -> ObjectMeta {
    ObjectMeta {
        namespace: namespace.map(str::to_owned),
        name: Some(name.into()),
        labels: Some(
            labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>(),
        ),
        ..ObjectMeta::default()
    }
}

fn service(name: &str, fed: Option<&str>, cluster_ip: &str) -> Service {
    let labels: Vec<(&str, &str)> = fed.map(|f| (FEDERATION_LABEL, f)).into_iter().collect();
    Service {
        metadata: meta(Some("mynamespace"), name, &labels),
        spec: Some(ServiceSpec {
            cluster_ip: Some(cluster_ip.into()),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    }
}

fn slice(name: &str, service: &str, ready: &[bool]) -> EndpointSlice {
    EndpointSlice {
        metadata: meta(Some("mynamespace"), name, &[(SERVICE_NAME_LABEL, service)]),
        address_type: "IPv4".into(),
        endpoints: ready
            .iter()
            .enumerate()
            .map(|(i, r)| Endpoint {
                addresses: vec![format!("10.0.0.{i}")],
                conditions: Some(EndpointConditions {
                    ready: Some(*r),
                    ..EndpointConditions::default()
                }),
                ..Endpoint::default()
            })
            .collect(),
        ..EndpointSlice::default()
    }
}

fn node(name: &str, zone: &str, region: &str) -> Node {
    Node {
        metadata: meta(None, name, &[(ZONE_LABEL, zone), (REGION_LABEL, region)]),
        ..Node::default()
    }
}

/// A change as `+NAME TYPE DATA` and `-NAME` lines.
fn show(change: &InClusterChange) -> String {
    assert!(change.skipped.is_empty(), "{:?}", change.skipped);
    let mut out = String::new();
    for line in listing(&change.records.upserted).lines() {
        writeln!(out, "+{line}").unwrap();
    }
    for name in &change.records.removed {
        writeln!(out, "-{name}").unwrap();
    }
    out
}

const FED: &str = "nginx.mynamespace.myfederation.svc.cluster.local";

#[test]
fn the_index_follows_the_member() {
    let mut index = InClusterIndex::new(config());
    assert_eq!(
        show(&index.reset_nodes(&[node("n1", "us-central1-f", "us-central1")])),
        ""
    );
    // The federated copy arrives before its endpoints: the zone name.
    let nginx = service("nginx", Some("myfederation"), "10.96.0.10");
    let plain = service("plain", None, "10.96.0.11");
    assert_eq!(
        show(&index.reset_services(&[nginx.clone(), plain])),
        format!("+{FED} CNAME nginx.mynamespace.myfederation.svc.us-central1-f.example.com.\n")
    );
    // A slice with no ready endpoint changes nothing; one ready endpoint
    // makes the local shard healthy.
    assert_eq!(show(&index.apply_slice(&slice("a", "nginx", &[false]))), "");
    assert_eq!(
        show(&index.apply_slice(&slice("b", "nginx", &[true, false]))),
        format!(
            "+{FED} CNAME nginx.mynamespace.svc.cluster.local.\n\
             +nginx.mynamespace.svc.cluster.local A 10.96.0.10\n"
        )
    );
    // A slice of a Service that is not federated changes nothing.
    assert_eq!(show(&index.apply_slice(&slice("p", "plain", &[true]))), "");
    // Another node in another zone: the first zone stays the cluster's.
    assert_eq!(
        show(&index.apply_node(&node("n2", "us-central1-g", "us-central1"))),
        ""
    );
    // The last ready endpoint goes: back to the zone name, local name removed.
    assert_eq!(
        show(&index.apply_slice(&slice("b", "nginx", &[false, false]))),
        format!(
            "+{FED} CNAME nginx.mynamespace.myfederation.svc.us-central1-f.example.com.\n\
             -nginx.mynamespace.svc.cluster.local\n"
        )
    );
    // The cluster's zone moves (the first node leaves): the CNAME follows.
    assert_eq!(
        show(&index.delete_node(&node("n1", "us-central1-f", "us-central1"))),
        format!("+{FED} CNAME nginx.mynamespace.myfederation.svc.us-central1-g.example.com.\n")
    );
    // Ready again through a relisting of the slices.
    assert_eq!(
        show(&index.reset_slices(&[slice("c", "nginx", &[true])])),
        format!(
            "+{FED} CNAME nginx.mynamespace.svc.cluster.local.\n\
             +nginx.mynamespace.svc.cluster.local A 10.96.0.10\n"
        )
    );
    // The ClusterIP changes (recreated Service): only the A moves.
    assert_eq!(
        show(&index.apply_service(&service("nginx", Some("myfederation"), "10.96.0.99"))),
        "+nginx.mynamespace.svc.cluster.local A 10.96.0.99\n"
    );
    // The slice is deleted: the zone name again.
    assert_eq!(
        show(&index.delete_slice(&slice("c", "nginx", &[true]))),
        format!(
            "+{FED} CNAME nginx.mynamespace.myfederation.svc.us-central1-g.example.com.\n\
             -nginx.mynamespace.svc.cluster.local\n"
        )
    );
    // The copy loses its federation label (orphaned): its name goes.
    assert_eq!(
        show(&index.apply_service(&service("nginx", None, "10.96.0.99"))),
        format!("-{FED}\n")
    );
    assert_eq!(
        show(&index.apply_service(&service("nginx", Some("myfederation"), "10.96.0.99"))),
        format!("+{FED} CNAME nginx.mynamespace.myfederation.svc.us-central1-g.example.com.\n")
    );
    // Deleted: nothing is left.
    assert_eq!(show(&index.delete_service(&nginx)), format!("-{FED}\n"));
    assert_eq!(index.records().count(), 0);
}

#[test]
fn several_federations_and_a_relisting_of_services() {
    let mut index = InClusterIndex::new(config());
    index.reset_nodes(&[node("n1", "europe-west1-d", "europe-west1")]);
    index.reset_slices(&[slice("a", "web", &[true])]);
    index.reset_services(&[
        service("nginx", Some("myfederation"), "10.96.0.10"),
        service("web", Some("other"), "10.96.0.20"),
        service("stray", Some("unknown"), "10.96.0.30"),
    ]);
    assert_eq!(
        listing(index.records()),
        format!(
            "{FED} CNAME nginx.mynamespace.myfederation.svc.europe-west1-d.example.com.\n\
             web.mynamespace.other.svc.cluster.local CNAME web.mynamespace.svc.cluster.local.\n\
             web.mynamespace.svc.cluster.local A 10.96.0.20\n"
        )
    );
    // A relisting without nginx removes its name and keeps web's.
    let change = index.reset_services(&[service("web", Some("other"), "10.96.0.20")]);
    assert_eq!(show(&change), format!("-{FED}\n"));
}

#[test]
fn zone_and_region_labels_that_are_not_dns_labels_are_passed_over() {
    let mut index = InClusterIndex::new(config());
    index.reset_nodes(&[node("n1", "Zone A!", "us-central1")]);
    assert_eq!(index.place(), &place(None, Some("us-central1")));
    let change = index.reset_services(&[service("nginx", Some("myfederation"), "None")]);
    assert_eq!(
        show(&change),
        format!("+{FED} CNAME nginx.mynamespace.myfederation.svc.us-central1.example.com.\n")
    );
}
