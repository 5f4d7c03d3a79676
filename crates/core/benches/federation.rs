//! The Federation v1 control plane's pure parts at the seed's scale: 13 member
//! clusters and 1,000 federated Services, each with a copy in every member
//! (a LoadBalancer address and one EndpointSlice of 3 endpoints).
//!
//! Issue 11's targets are end to end (propagating 1,000 Services to a new
//! member in < 2 s; a member endpoint change reaching the federated Service's
//! status with p99 < 100 ms); these figures are the decisions' share of them.
//!
//! Run: `cargo bench -p fedmesh-core --bench federation`

use std::collections::BTreeMap;
use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use fedmesh_core::federation::{
    Action, ClusterState, Federated, FederationName, Member, ShardIndex, Topology, Why, plan,
};
use fedmesh_core::{ClusterName, FederatedKey};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use serde_json::json;

const MEMBERS: usize = 13;
const SERVICES: usize = 1_000;
const NS: &str = "mynamespace";

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn federated(i: usize) -> Service {
    serde_json::from_value(json!({
        "metadata": {"name": format!("svc-{i}"), "namespace": NS, "uid": format!("uid-{i}"),
                     "labels": {"app": format!("svc-{i}")},
                     "annotations": {"federation.alpha.kubernetes.io/cluster-selector":
                         r#"[{"key":"environment","operator":"In","values":["prod"]}]"#},
                     "finalizers": ["federation.fedmesh.io/propagation"]},
        "spec": {"type": "LoadBalancer", "selector": {"app": format!("svc-{i}")},
                 "clusterIP": "10.0.0.1",
                 "ports": [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": 8080, "nodePort": 30080}]}
    }))
    .unwrap()
}

fn member_service(i: usize, m: usize) -> Service {
    serde_json::from_value(json!({
        "metadata": {"name": format!("svc-{i}"), "namespace": NS},
        "spec": {"type": "LoadBalancer"},
        "status": {"loadBalancer": {"ingress": [{"ip": format!("198.51.{m}.{}", i % 250)}]}}
    }))
    .unwrap()
}

fn slice(i: usize, ready: bool) -> EndpointSlice {
    serde_json::from_value(json!({
        "metadata": {"name": format!("svc-{i}-abc"), "namespace": NS,
                     "labels": {"kubernetes.io/service-name": format!("svc-{i}")}},
        "addressType": "IPv4",
        "endpoints": (0..3).map(|e| json!({"addresses": [format!("10.1.{e}.{}", i % 250)],
                                           "conditions": {"ready": ready}})).collect::<Vec<_>>()
    }))
    .unwrap()
}

fn member(m: usize) -> ClusterName {
    ClusterName::new(&format!("member-{m}")).unwrap()
}

fn bench(c: &mut Criterion) {
    let federation = FederationName::new("myfederation").unwrap();
    let services: Vec<Service> = (0..SERVICES).map(federated).collect();
    let labels = BTreeMap::from([("environment".to_owned(), "prod".to_owned())]);

    // A new member: read every federated Service and plan its create.
    let newcomer = member(MEMBERS);
    c.bench_function("plan 1,000 federated Services for a new member", |b| {
        b.iter(|| {
            let mut creates = 0;
            for service in &services {
                let read = Federated::read(service, None);
                let plan = plan(
                    &federation,
                    Some(&read),
                    &Member {
                        name: &newcomer,
                        state: ClusterState::Ready,
                        labels: &labels,
                        current: None,
                        namespace_exists: true,
                    },
                );
                creates += usize::from(matches!(plan.action, Action::Create(_)));
            }
            assert_eq!(creates, SERVICES);
            black_box(creates)
        });
    });

    // A resync: every member's copy in sync, 13,000 comparisons.
    let copies: Vec<Vec<Service>> = (0..MEMBERS)
        .map(|_| {
            services
                .iter()
                .map(|s| {
                    fedmesh_core::federation::desired(
                        &federation,
                        s,
                        None,
                        fedmesh_core::federation::Origin::Created,
                    )
                })
                .collect()
        })
        .collect();
    let names: Vec<ClusterName> = (0..MEMBERS).map(member).collect();
    c.bench_function("resync 13 members x 1,000 Services in sync", |b| {
        b.iter(|| {
            let mut in_sync = 0;
            for (i, service) in services.iter().enumerate() {
                let read = Federated::read(service, None);
                for (m, name) in names.iter().enumerate() {
                    let plan = plan(
                        &federation,
                        Some(&read),
                        &Member {
                            name,
                            state: ClusterState::Ready,
                            labels: &labels,
                            current: Some(&copies[m][i]),
                            namespace_exists: true,
                        },
                    );
                    in_sync += usize::from(plan.action == Action::None(Why::InSync));
                }
            }
            assert_eq!(in_sync, SERVICES * MEMBERS);
            black_box(in_sync)
        });
    });

    // Shard health: one endpoint change flipping one shard, to the status.
    let mut index = ShardIndex::new();
    for (m, name) in names.iter().enumerate() {
        let topology = Topology {
            zones: vec![format!("zone-{m}")],
            region: Some(format!("region-{}", m / 3)),
        };
        index.apply_cluster(name, ClusterState::Ready, &topology);
        for i in 0..SERVICES {
            let key = FederatedKey::new(NS, &format!("svc-{i}"));
            index.apply_service(name, &key, Some(&member_service(i, m)));
            index.apply_slice(name, NS, &format!("svc-{i}-abc"), Some(&slice(i, true)));
        }
    }
    let (down, up) = (slice(7, false), slice(7, true));
    let mut ready = true;
    c.bench_function("endpoint change to federated Service status", |b| {
        b.iter(|| {
            ready = !ready;
            let changed = index.apply_slice(
                &names[3],
                NS,
                "svc-7-abc",
                Some(if ready { &up } else { &down }),
            );
            for key in &changed {
                let shards = index.shards(key);
                black_box((shards.ingress(), shards.annotation()));
            }
            assert_eq!(changed.len(), 1);
        });
    });

    // A member going Offline and back: every one of its 1,000 shards'
    // statuses is rendered again.
    let mut offline = false;
    c.bench_function("member Offline: 1,000 statuses", |b| {
        b.iter(|| {
            offline = !offline;
            let state = if offline {
                ClusterState::Offline
            } else {
                ClusterState::Ready
            };
            let topology = Topology {
                zones: vec!["zone-5".into()],
                region: Some("region-1".into()),
            };
            let changed = index.apply_cluster(&names[5], state, &topology);
            for key in &changed {
                let shards = index.shards(key);
                black_box((shards.ingress(), shards.annotation()));
            }
            assert_eq!(changed.len(), SERVICES);
        });
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
