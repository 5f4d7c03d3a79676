//! Tables for the record rules, starting with the seed's whole listing.

use std::fmt::Write as _;

use super::*;
use crate::federation::{Addresses, Health, ServiceShards, Shard};
use crate::names::{ClusterName, FederatedKey};

fn label(s: &str) -> DnsLabel {
    DnsLabel::new("label", s).unwrap()
}

fn config() -> DnsConfig {
    DnsConfig::new(
        label("myfederation"),
        DomainName::new("suffix", "example.com").unwrap(),
    )
}

/// A shard: cluster, region, zones, ingress (IPs or hostnames), healthy.
fn shard(cluster: &str, region: &str, zones: &[&str], ingress: &[&str], healthy: bool) -> Shard {
    Shard {
        cluster: ClusterName::new(cluster).unwrap(),
        region: Some(region.into()),
        zones: zones.iter().map(|z| z.to_string()).collect(),
        addresses: Addresses::from_strings(ingress.iter().copied()),
        health: if healthy {
            Health::Healthy
        } else {
            Health::NoReadyEndpoints
        },
    }
}

fn nginx(shards: Vec<Shard>) -> ServiceShards {
    ServiceShards {
        service: FederatedKey::new("mynamespace", "nginx"),
        shards,
        errors: Default::default(),
    }
}

/// The records as the seed's `gcloud dns record-sets list` prints them:
/// `NAME TYPE TTL DATA`, names without the common prefix.
fn listing(records: &[NameRecords]) -> String {
    let mut out = String::new();
    for r in records {
        let name = r
            .name
            .as_str()
            .strip_prefix("nginx.mynamespace.myfederation.")
            .unwrap();
        match &r.data {
            RecordData::Addresses { v4, v6 } => {
                let join = |v: Vec<String>| v.join(", ");
                if !v4.is_empty() {
                    let v4 = join(v4.iter().map(|a| a.to_string()).collect());
                    writeln!(out, "{name} A {} {v4}", r.ttl).unwrap();
                }
                if !v6.is_empty() {
                    let v6 = join(v6.iter().map(|a| a.to_string()).collect());
                    writeln!(out, "{name} AAAA {} {v6}", r.ttl).unwrap();
                }
            }
            RecordData::Cname(target) => writeln!(out, "{name} CNAME {} {target}.", r.ttl).unwrap(),
        }
    }
    out
}

/// The seed's clusters: us-central1-a/b/c healthy and f not, asia-east1-a and
/// -c healthy and -b not, europe-west1-d not.
fn seed_shards() -> Vec<Shard> {
    vec![
        shard(
            "uc-a",
            "us-central1",
            &["us-central1-a"],
            &["104.197.247.191"],
            true,
        ),
        shard(
            "uc-b",
            "us-central1",
            &["us-central1-b"],
            &["104.197.244.180"],
            true,
        ),
        shard(
            "uc-c",
            "us-central1",
            &["us-central1-c"],
            &["104.197.245.170"],
            true,
        ),
        shard(
            "uc-f",
            "us-central1",
            &["us-central1-f"],
            &["104.197.240.1"],
            false,
        ),
        shard(
            "ae-a",
            "asia-east1",
            &["asia-east1-a"],
            &["130.211.57.243"],
            true,
        ),
        shard(
            "ae-b",
            "asia-east1",
            &["asia-east1-b"],
            &["130.211.50.1"],
            false,
        ),
        shard(
            "ae-c",
            "asia-east1",
            &["asia-east1-c"],
            &["130.211.56.221"],
            true,
        ),
        shard(
            "ew-d",
            "europe-west1",
            &["europe-west1-d"],
            &["104.155.0.1"],
            false,
        ),
    ]
}

#[test]
fn the_seed_listing() {
    // The seed's global line lists addresses that appear in no zone line (its
    // example was edited by hand); here the global name holds every healthy
    // shard's address, as its note 2 says of regions.
    let records = service_records(&config(), &nginx(seed_shards()), None).unwrap();
    assert_eq!(
        listing(&records),
        "\
svc.asia-east1-a.example.com A 180 130.211.57.243
svc.asia-east1-b.example.com CNAME 180 nginx.mynamespace.myfederation.svc.asia-east1.example.com.
svc.asia-east1-c.example.com A 180 130.211.56.221
svc.asia-east1.example.com A 180 130.211.56.221, 130.211.57.243
svc.europe-west1-d.example.com CNAME 180 nginx.mynamespace.myfederation.svc.europe-west1.example.com.
svc.europe-west1.example.com CNAME 180 nginx.mynamespace.myfederation.svc.example.com.
svc.example.com A 180 104.197.244.180, 104.197.245.170, 104.197.247.191, 130.211.56.221, 130.211.57.243
svc.us-central1-a.example.com A 180 104.197.247.191
svc.us-central1-b.example.com A 180 104.197.244.180
svc.us-central1-c.example.com A 180 104.197.245.170
svc.us-central1-f.example.com CNAME 180 nginx.mynamespace.myfederation.svc.us-central1.example.com.
svc.us-central1.example.com A 180 104.197.244.180, 104.197.245.170, 104.197.247.191
"
    );
    // Deterministic: the same shards in reverse order give the same records.
    let mut reversed = seed_shards();
    reversed.reverse();
    assert_eq!(
        service_records(&config(), &nginx(reversed), None).unwrap(),
        records
    );
}

#[test]
fn rules_table() {
    struct Case {
        what: &'static str,
        shards: Vec<Shard>,
        want: &'static str,
    }
    let cases = [
        Case {
            what: "no healthy shard anywhere: CNAMEs up to a global name that has no record",
            shards: vec![shard("c1", "r1", &["z1"], &["10.0.0.1"], false)],
            want: "\
svc.r1.example.com CNAME 180 nginx.mynamespace.myfederation.svc.example.com.
svc.z1.example.com CNAME 180 nginx.mynamespace.myfederation.svc.r1.example.com.
",
        },
        Case {
            what: "addresses sorted and de-duplicated; IPv6 as AAAA",
            shards: vec![
                shard(
                    "c1",
                    "r1",
                    &["z1"],
                    &["10.0.0.2", "10.0.0.1", "2001:db8::1"],
                    true,
                ),
                shard("c2", "r1", &["z1"], &["10.0.0.1", "2001:db8::1"], true),
            ],
            want: "\
svc.example.com A 180 10.0.0.1, 10.0.0.2
svc.example.com AAAA 180 2001:db8::1
svc.r1.example.com A 180 10.0.0.1, 10.0.0.2
svc.r1.example.com AAAA 180 2001:db8::1
svc.z1.example.com A 180 10.0.0.1, 10.0.0.2
svc.z1.example.com AAAA 180 2001:db8::1
",
        },
        Case {
            what: "a multi-zone cluster gives every one of its zones its addresses",
            shards: vec![shard("c1", "r1", &["z1", "z2"], &["10.0.0.1"], true)],
            want: "\
svc.example.com A 180 10.0.0.1
svc.r1.example.com A 180 10.0.0.1
svc.z1.example.com A 180 10.0.0.1
svc.z2.example.com A 180 10.0.0.1
",
        },
        Case {
            what: "one load-balancer hostname: a CNAME to it at every scope",
            shards: vec![shard(
                "c1",
                "r1",
                &["z1"],
                &["lb-1.elb.amazonaws.com"],
                true,
            )],
            want: "\
svc.example.com CNAME 180 lb-1.elb.amazonaws.com.
svc.r1.example.com CNAME 180 lb-1.elb.amazonaws.com.
svc.z1.example.com CNAME 180 lb-1.elb.amazonaws.com.
",
        },
        Case {
            what: "hostnames beside addresses are left out; several hostnames: the first",
            shards: vec![
                shard("c1", "r1", &["z1"], &["lb-b.elb.amazonaws.com"], true),
                shard("c2", "r1", &["z2"], &["lb-a.elb.amazonaws.com"], true),
                shard("c3", "r2", &["z3"], &["10.0.0.3"], true),
            ],
            want: "\
svc.example.com A 180 10.0.0.3
svc.r1.example.com CNAME 180 lb-a.elb.amazonaws.com.
svc.r2.example.com A 180 10.0.0.3
svc.z1.example.com CNAME 180 lb-b.elb.amazonaws.com.
svc.z2.example.com CNAME 180 lb-a.elb.amazonaws.com.
svc.z3.example.com A 180 10.0.0.3
",
        },
        Case {
            what: "a healthy shard without ingress serves nothing",
            shards: vec![shard("c1", "r1", &["z1"], &[], true)],
            want: "\
svc.r1.example.com CNAME 180 nginx.mynamespace.myfederation.svc.example.com.
svc.z1.example.com CNAME 180 nginx.mynamespace.myfederation.svc.r1.example.com.
",
        },
        Case {
            what: "a zone named like a region is the region's name",
            shards: vec![
                shard("c1", "r1", &["r1"], &["10.0.0.1"], false),
                shard("c2", "r1", &["z2"], &["10.0.0.2"], true),
            ],
            want: "\
svc.example.com A 180 10.0.0.2
svc.r1.example.com A 180 10.0.0.2
svc.z2.example.com A 180 10.0.0.2
",
        },
        Case {
            what: "a zone name in two regions falls back to the smaller region",
            shards: vec![
                shard("c1", "r2", &["z"], &["10.0.0.1"], false),
                shard("c2", "r1", &["z"], &["10.0.0.2"], false),
            ],
            want: "\
svc.r1.example.com CNAME 180 nginx.mynamespace.myfederation.svc.example.com.
svc.r2.example.com CNAME 180 nginx.mynamespace.myfederation.svc.example.com.
svc.z.example.com CNAME 180 nginx.mynamespace.myfederation.svc.r1.example.com.
",
        },
    ];
    for case in cases {
        let records = service_records(&config(), &nginx(case.shards), None).unwrap();
        assert_eq!(listing(&records), case.want, "{}", case.what);
    }
}

#[test]
fn zone_in_region_form_ttl_override_and_long_names() {
    let mut config = config();
    config.zone_form = ZoneForm::ZoneInRegion;
    config.ttl = 60;
    let service = nginx(vec![shard("c1", "r1", &["z1"], &["10.0.0.1"], false)]);
    let records = service_records(&config, &service, None).unwrap();
    assert_eq!(
        listing(&records),
        "\
svc.r1.example.com CNAME 60 nginx.mynamespace.myfederation.svc.example.com.
svc.z1.r1.example.com CNAME 60 nginx.mynamespace.myfederation.svc.r1.example.com.
"
    );
    assert!(
        service_records(&config, &service, Some(5))
            .unwrap()
            .iter()
            .all(|r| r.ttl == 5)
    );

    config.suffix = DomainName::new(
        "suffix",
        &format!(
            "{}.{}.com",
            vec!["a".repeat(63); 3].join("."),
            "b".repeat(40)
        ),
    )
    .unwrap();
    let err = service_records(&config, &service, None).unwrap_err();
    assert!(err.to_string().contains("mynamespace/nginx"), "{err}");
}

#[test]
fn the_index_gives_only_changed_names() {
    let mut index = DnsIndex::new(config());
    let first = index.upsert(&nginx(seed_shards()), None).unwrap();
    assert_eq!(first.upserted.len(), 12);
    assert!(first.removed.is_empty());
    assert!(
        index
            .upsert(&nginx(seed_shards()), None)
            .unwrap()
            .is_empty()
    );

    // us-central1-f becomes healthy: its zone, its region and the global name change.
    let mut shards = seed_shards();
    shards[3].health = Health::Healthy;
    let change = index.upsert(&nginx(shards.clone()), None).unwrap();
    let names: Vec<_> = change.upserted.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "nginx.mynamespace.myfederation.svc.example.com",
            "nginx.mynamespace.myfederation.svc.us-central1-f.example.com",
            "nginx.mynamespace.myfederation.svc.us-central1.example.com",
        ]
    );
    assert!(change.removed.is_empty());

    // europe-west1's cluster leaves the federation: its names go, nothing is left behind.
    shards.retain(|s| s.cluster.as_str() != "ew-d");
    let change = index.upsert(&nginx(shards), None).unwrap();
    assert!(change.upserted.is_empty());
    let removed: Vec<_> = change.removed.iter().map(DomainName::as_str).collect();
    assert_eq!(
        removed,
        [
            "nginx.mynamespace.myfederation.svc.europe-west1-d.example.com",
            "nginx.mynamespace.myfederation.svc.europe-west1.example.com",
        ]
    );

    // Another Service's records are its own; deleting one removes all of its names.
    let mut other = nginx(vec![shard("c1", "r1", &["z1"], &["10.0.0.1"], true)]);
    other.service = FederatedKey::new("mynamespace", "web");
    assert_eq!(index.upsert(&other, None).unwrap().upserted.len(), 3);
    assert_eq!(index.records().count(), 10 + 3);
    let change = index.remove(&nginx(vec![]).service);
    assert_eq!(change.removed.len(), 10);
    assert_eq!(index.records().count(), 3);
    assert!(
        index
            .service(&other.service)
            .iter()
            .all(|r| r.name.as_str().starts_with("web."))
    );
}

/// A federated Service as the federation API shows it: the shards
/// annotation the controller wrote, and more annotations.
fn published(shards: &[Shard], more: &[(&str, &str)]) -> k8s_openapi::api::core::v1::Service {
    let mut service = k8s_openapi::api::core::v1::Service::default();
    service.metadata.namespace = Some("mynamespace".into());
    service.metadata.name = Some("nginx".into());
    let mut annotations: std::collections::BTreeMap<String, String> = more
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    annotations.insert(
        crate::federation::SHARDS_ANNOTATION.into(),
        nginx(shards.to_vec()).annotation(),
    );
    service.metadata.annotations = Some(annotations);
    service
}

fn cluster(name: &str, offline: bool) -> serde_json::Value {
    let status = if offline { "True" } else { "False" };
    serde_json::json!({
        "metadata": {"name": name},
        "status": {"conditions": [
            {"type": "Ready", "status": if offline { "False" } else { "True" }},
            {"type": "Offline", "status": status},
        ]},
    })
}

#[test]
fn the_feed_serves_what_the_controller_published() {
    let mut feed = DnsFeed::new(config());
    let change = feed.reset_services(&[published(&seed_shards(), &[(TTL_ANNOTATION, "60")])]);
    assert!(change.problems.is_empty(), "{:?}", change.problems);
    assert_eq!(change.services, [FederatedKey::new("mynamespace", "nginx")]);
    let records: Vec<NameRecords> = feed.index().records().cloned().collect();
    let mut want = service_records(&config(), &nginx(seed_shards()), Some(60)).unwrap();
    want.sort_by(|a, b| a.name.cmp(&b.name));
    assert_eq!(
        records, want,
        "the annotation read back gives the same records"
    );

    // Before the Clusters are listed the annotation's word counts; once they
    // are, an Offline member's shards do not serve and a deleted member's
    // names go.
    let all: Vec<serde_json::Value> = seed_shards()
        .iter()
        .map(|s| cluster(s.cluster.as_str(), false))
        .collect();
    assert!(feed.reset_clusters(&all).records.is_empty());
    let change = feed.apply_cluster(&cluster("uc-a", true));
    let a = "nginx.mynamespace.myfederation.svc.us-central1-a.example.com";
    let zone_a = change
        .records
        .upserted
        .iter()
        .find(|r| r.name.as_str() == a)
        .expect("us-central1-a changes");
    assert!(matches!(zone_a.data, RecordData::Cname(_)), "{zone_a:?}");
    let change = feed.delete_cluster(&cluster("ew-d", false));
    let removed: Vec<&str> = change.records.removed.iter().map(|n| n.as_str()).collect();
    assert_eq!(
        removed,
        [
            "nginx.mynamespace.myfederation.svc.europe-west1-d.example.com",
            "nginx.mynamespace.myfederation.svc.europe-west1.example.com",
        ]
    );
    // Back Ready: served again.
    let change = feed.apply_cluster(&cluster("uc-a", false));
    assert!(change.records.upserted.iter().any(|r| r.name.as_str() == a));

    // Deleting (or starting to delete) the Service removes every name.
    let mut deleting = published(&seed_shards(), &[]);
    deleting.metadata.deletion_timestamp =
        Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            k8s_openapi::jiff::Timestamp::UNIX_EPOCH,
        ));
    let change = feed.apply_service(&deleting);
    assert_eq!(change.records.removed.len(), 10);
    assert_eq!(feed.index().records().count(), 0);
}

#[test]
fn bad_published_state_is_a_problem_and_keeps_the_records() {
    let mut feed = DnsFeed::new(config());
    feed.apply_service(&published(&seed_shards(), &[]));
    let before = feed.index().records().count();
    let mut bad_region = seed_shards();
    bad_region[0].region = Some("US Central".into());
    let cases: Vec<(k8s_openapi::api::core::v1::Service, &str)> = vec![
        (
            published(&seed_shards(), &[(TTL_ANNOTATION, "soon")]),
            "federation.fedmesh.io/dns-ttl",
        ),
        (published(&bad_region, &[]), "cluster uc-a"),
        (
            {
                let mut s = published(&seed_shards(), &[]);
                s.metadata.annotations.as_mut().unwrap().insert(
                    crate::federation::SHARDS_ANNOTATION.into(),
                    "{not json".into(),
                );
                s
            },
            "not a JSON list of shards",
        ),
    ];
    for (service, says) in cases {
        let change = feed.apply_service(&service);
        assert!(change.records.is_empty());
        let [(key, error)] = &change.problems[..] else {
            panic!("one problem: {:?}", change.problems)
        };
        assert_eq!(key, &FederatedKey::new("mynamespace", "nginx"));
        assert!(error.to_string().contains(says), "{error}");
        assert_eq!(feed.index().records().count(), before);
    }
}

#[test]
fn a_shard_without_region_counts_for_the_global_name_only() {
    let mut lone = shard("c1", "r1", &["z1"], &["10.0.0.1"], true);
    lone.region = None;
    let records = service_records(&config(), &nginx(vec![lone]), None).unwrap();
    assert_eq!(listing(&records), "svc.example.com A 180 10.0.0.1\n");
}
