//! Tables for the record rules, starting with the seed's whole listing.

use std::fmt::Write as _;

use super::*;
use crate::names::ClusterName;

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
        region: label(region),
        zones: zones.iter().map(|z| label(z)).collect(),
        ingress: ingress
            .iter()
            .map(|i| match i.parse() {
                Ok(ip) => Ingress::Ip(ip),
                Err(_) => Ingress::Hostname(DomainName::new("hostname", i).unwrap()),
            })
            .collect(),
        healthy,
    }
}

fn nginx(shards: Vec<Shard>) -> ServiceShards {
    ServiceShards {
        id: ServiceId {
            namespace: label("mynamespace"),
            name: label("nginx"),
        },
        ttl: None,
        shards,
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
    let records = service_records(&config(), &nginx(seed_shards())).unwrap();
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
        service_records(&config(), &nginx(reversed)).unwrap(),
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
        let records = service_records(&config(), &nginx(case.shards)).unwrap();
        assert_eq!(listing(&records), case.want, "{}", case.what);
    }
}

#[test]
fn zone_in_region_form_ttl_override_and_long_names() {
    let mut config = config();
    config.zone_form = ZoneForm::ZoneInRegion;
    config.ttl = 60;
    let mut service = nginx(vec![shard("c1", "r1", &["z1"], &["10.0.0.1"], false)]);
    let records = service_records(&config, &service).unwrap();
    assert_eq!(
        listing(&records),
        "\
svc.r1.example.com CNAME 60 nginx.mynamespace.myfederation.svc.example.com.
svc.z1.r1.example.com CNAME 60 nginx.mynamespace.myfederation.svc.r1.example.com.
"
    );
    service.ttl = Some(5);
    assert!(
        service_records(&config, &service)
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
    let err = service_records(&config, &service).unwrap_err();
    assert!(err.to_string().contains("mynamespace/nginx"), "{err}");
}

#[test]
fn the_index_gives_only_changed_names() {
    let mut index = DnsIndex::new(config());
    let first = index.upsert(&nginx(seed_shards())).unwrap();
    assert_eq!(first.upserted.len(), 12);
    assert!(first.removed.is_empty());
    assert!(index.upsert(&nginx(seed_shards())).unwrap().is_empty());

    // us-central1-f becomes healthy: its zone, its region and the global name change.
    let mut shards = seed_shards();
    shards[3].healthy = true;
    let change = index.upsert(&nginx(shards.clone())).unwrap();
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
    let change = index.upsert(&nginx(shards)).unwrap();
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
    other.id.name = label("web");
    assert_eq!(index.upsert(&other).unwrap().upserted.len(), 3);
    assert_eq!(index.records().count(), 10 + 3);
    let change = index.remove(&nginx(vec![]).id);
    assert_eq!(change.removed.len(), 10);
    assert_eq!(index.records().count(), 3);
    assert!(
        index
            .service(&other.id)
            .iter()
            .all(|r| r.name.as_str().starts_with("web."))
    );
}
