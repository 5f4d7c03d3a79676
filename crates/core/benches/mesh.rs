//! The mesh index (federated services) at mesh scale: 100 clusters x 1,000 services x 10
//! endpoints, and 1,000 local federated services each backed by the same-named
//! service in every cluster (1,000 endpoints each).
//!
//! Targets (issue 5): one endpoint change recomputes only its federated
//! services in under 50 us; building the whole index from scratch in under 1 s.
//!
//! Run: `cargo bench -p fedmesh-core --bench mesh`

use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use fedmesh_core::{ClusterName, FederatedKey, MeshIndex, Origin, ServiceView, SourceSlice};
use k8s_openapi::api::core::v1::{ObjectReference, Service, ServicePort, ServiceSpec};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort, EndpointSlice};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

/// Clusters in the mesh; `FEDERATION_BENCH_CLUSTERS` shrinks it for profiling.
fn clusters() -> usize {
    std::env::var("FEDERATION_BENCH_CLUSTERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100)
}
const SERVICES: usize = 1_000;
const ENDPOINTS: usize = 10;
const NS: &str = "prod";

// The allocator the `fedmesh` binary uses: with a heap of a million endpoints,
// glibc's malloc spends most of an update searching fragmented bins.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn meta(name: &str, labels: BTreeMap<String, String>) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.into()),
        namespace: Some(NS.into()),
        labels: Some(labels),
        ..ObjectMeta::default()
    }
}

fn service(i: usize) -> Service {
    Service {
        metadata: meta(
            &format!("svc-{i}"),
            BTreeMap::from([
                ("app".into(), format!("svc-{i}")),
                ("tier".into(), "web".into()),
            ]),
        ),
        spec: Some(ServiceSpec {
            selector: Some(BTreeMap::from([("app".into(), format!("svc-{i}"))])),
            ports: Some(vec![ServicePort {
                name: Some("http".into()),
                port: 80,
                protocol: Some("TCP".into()),
                ..ServicePort::default()
            }]),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    }
}

fn federated(i: usize) -> Service {
    let mut svc = service(i);
    svc.metadata.name = Some(format!("fed-{i}"));
    svc.metadata.annotations = Some(BTreeMap::from([(
        "federation.tigera.io/serviceSelector".into(),
        format!("app == \"svc-{i}\""),
    )]));
    if let Some(spec) = &mut svc.spec {
        spec.selector = None;
    }
    svc
}

/// The address of endpoint `e` of service `i` in `cluster`. At a generation
/// after 0 the first endpoint moves to an address unique to that generation,
/// so every change the benchmark makes is a real one.
fn address(cluster: usize, i: usize, e: usize, generation: usize) -> String {
    if generation > 0 && e == 0 {
        let g = generation;
        return format!("11.{}.{}.{}", (g >> 16) & 255, (g >> 8) & 255, g & 255);
    }
    let n = i * ENDPOINTS + e;
    format!("10.{cluster}.{}.{}", n / 250, n % 250)
}

fn slice(cluster: usize, i: usize, generation: usize) -> EndpointSlice {
    EndpointSlice {
        metadata: meta(
            &format!("svc-{i}-abcde"),
            BTreeMap::from([("kubernetes.io/service-name".into(), format!("svc-{i}"))]),
        ),
        address_type: "IPv4".into(),
        endpoints: (0..ENDPOINTS)
            .map(|e| Endpoint {
                addresses: vec![address(cluster, i, e, generation)],
                conditions: Some(EndpointConditions {
                    ready: Some(true),
                    serving: Some(true),
                    terminating: Some(false),
                }),
                node_name: Some(format!("node-{}", e % 7)),
                target_ref: Some(ObjectReference {
                    kind: Some("Pod".into()),
                    name: Some(format!("svc-{i}-pod-{e}")),
                    namespace: Some(NS.into()),
                    uid: Some(format!("{cluster}-{i}-{e}")),
                    ..ObjectReference::default()
                }),
                zone: Some(format!("zone-{}", e % 3)),
                ..Endpoint::default()
            })
            .collect(),
        ports: Some(vec![EndpointPort {
            name: Some("http".into()),
            port: Some(8080),
            protocol: Some("TCP".into()),
            app_protocol: None,
        }]),
    }
}

/// This thread's CPU time (user + system), from /proc. Wall time on a shared
/// 2-core machine mostly measures the other processes; CPU time does not.
fn thread_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap_or_default();
    // Fields after the command name, which is parenthesised and may hold spaces.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or(Vec::new(), |(_, rest)| rest.split_whitespace().collect());
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // utime and stime are fields 14 and 15 of stat(5); 12 and 13 after the name.
    Duration::from_millis((ticks(11) + ticks(12)) * 10)
}

fn origin(cluster: usize) -> Origin {
    if cluster == 0 {
        Origin::Local
    } else {
        Origin::Remote(ClusterName::new(&format!("cluster-{cluster}")).expect("valid name"))
    }
}

/// One cluster's complete listings, as the controller's watches hand them
/// over after their initial list (kube-runtime's Init..InitDone).
#[derive(Clone)]
struct Listing {
    origin: Origin,
    services: Vec<Service>,
    slices: Vec<EndpointSlice>,
}

fn events() -> Vec<Listing> {
    (0..clusters())
        .map(|cluster| {
            let mut services: Vec<Service> = (0..SERVICES).map(service).collect();
            if cluster == 0 {
                services.extend((0..SERVICES).map(federated));
            }
            Listing {
                origin: origin(cluster),
                services,
                slices: (0..SERVICES).map(|i| slice(cluster, i, 0)).collect(),
            }
        })
        .collect()
}

fn views(listing: &mut Listing) -> Vec<ServiceView> {
    std::mem::take(&mut listing.services)
        .into_iter()
        .map(|svc| ServiceView::new(listing.origin.clone(), svc).expect("valid service"))
        .collect()
}

fn sources(listing: &mut Listing) -> Vec<SourceSlice> {
    std::mem::take(&mut listing.slices)
        .into_iter()
        .map(|slice| SourceSlice::new(listing.origin.clone(), slice).expect("valid slice"))
        .collect()
}

/// Builds the index the way the controller does when it starts: each
/// cluster's Service listing and EndpointSlice listing become one reset each
/// (`fedmesh_controller::engine::apply` on `ResetServices` / `ResetSlices`),
/// converting from Kubernetes objects on the way. The `Changes` of each reset
/// are built and dropped, as the controller builds them (and renders them).
fn build(listings: Vec<Listing>) -> MeshIndex {
    let mut index = MeshIndex::new();
    for mut listing in listings {
        let views = views(&mut listing);
        black_box(index.reset_services(&listing.origin, views));
        let sources = sources(&mut listing);
        black_box(index.reset_slices(&listing.origin, sources));
    }
    index
}

fn bench(c: &mut Criterion) {
    let events = events();

    // The two halves of a build, timed apart: reading Kubernetes objects into
    // index types, and applying those to the index.
    let mut copy = events.clone();
    let started = Instant::now();
    let cpu = thread_cpu();
    let converted: Vec<(Origin, Vec<ServiceView>, Vec<SourceSlice>)> = copy
        .iter_mut()
        .map(|listing| (listing.origin.clone(), views(listing), sources(listing)))
        .collect();
    let converted_in = started.elapsed();
    let converted_cpu = thread_cpu() - cpu;
    let started = Instant::now();
    let cpu = thread_cpu();
    let mut phased = MeshIndex::new();
    for (origin, views, sources) in converted {
        black_box(phased.reset_services(&origin, views));
        black_box(phased.reset_slices(&origin, sources));
    }
    let applied_in = started.elapsed();
    let applied_cpu = thread_cpu() - cpu;
    drop(phased);
    println!(
        "build phases: conversion {:.0} ms wall / {:.0} ms cpu, index {:.0} ms wall / {:.0} ms cpu",
        converted_in.as_secs_f64() * 1e3,
        converted_cpu.as_secs_f64() * 1e3,
        applied_in.as_secs_f64() * 1e3,
        applied_cpu.as_secs_f64() * 1e3,
    );

    let services: usize = events.iter().map(|l| l.services.len()).sum();
    let slices: usize = events.iter().map(|l| l.slices.len()).sum();
    let copy = events.clone();
    let started = Instant::now();
    let cpu = thread_cpu();
    let mut index = build(copy);
    let built_in = started.elapsed();
    let built_cpu = thread_cpu() - cpu;
    println!(
        "build: {services} services, {slices} slices, {} endpoints in {:.0} ms wall / {:.0} ms cpu (target < 1000 ms)",
        slices * ENDPOINTS,
        built_in.as_secs_f64() * 1e3,
        built_cpu.as_secs_f64() * 1e3,
    );

    let fed = FederatedKey::new(NS, "fed-0");
    let view = index.federation(&fed).expect("federated");
    assert_eq!(
        view.backing().count(),
        clusters(),
        "every cluster backs fed-0"
    );
    let addresses: usize = view
        .endpoints()
        .subsets
        .iter()
        .flatten()
        .map(|s| s.addresses.as_ref().map_or(0, Vec::len))
        .sum();
    assert_eq!(
        addresses,
        clusters() * ENDPOINTS,
        "fed-0 has every cluster's endpoints"
    );
    let started = Instant::now();
    let mut rendered = 0;
    for _ in 0..100 {
        rendered += black_box(view.endpoints()).subsets.map_or(0, |s| s.len());
    }
    println!(
        "endpoints render: {:.1} us for {} addresses in {} subsets",
        started.elapsed().as_secs_f64() * 1e6 / 100.0,
        addresses,
        rendered / 100
    );
    if std::env::var_os("FEDERATION_BENCH_BUILD_ONLY").is_some() {
        return;
    }

    let mut group = c.benchmark_group("federation");
    group.measurement_time(Duration::from_secs(5));

    // One endpoint changes in one cluster: apply it and render exactly what
    // the index says changed (one EndpointSlice of one federated service).
    let mut generation = 0;
    group.bench_function("endpoint_change_render_slices", |b| {
        b.iter_batched(
            || {
                generation += 1;
                let cluster = generation % clusters();
                let i = (generation * 7) % SERVICES;
                SourceSlice::new(origin(cluster), slice(cluster, i, generation))
                    .expect("valid slice")
            },
            |changed| {
                let changes = index.apply_slice(changed);
                let mut rendered = 0;
                for (key, dirty) in &changes.dirty {
                    let view = index.federation(key).expect("federated");
                    for name in &dirty.slices {
                        rendered += view.slice(name).map_or(0, |s| s.endpoints.len());
                    }
                }
                black_box(rendered)
            },
            BatchSize::SmallInput,
        );
    });

    // The same, also rendering the federated service's whole Endpoints object
    // (1,000 addresses from 100 clusters).
    group.bench_function("endpoint_change_render_slices_and_endpoints", |b| {
        b.iter_batched(
            || {
                generation += 1;
                let cluster = generation % clusters();
                let i = (generation * 7) % SERVICES;
                SourceSlice::new(origin(cluster), slice(cluster, i, generation))
                    .expect("valid slice")
            },
            |changed| {
                let changes = index.apply_slice(changed);
                let mut rendered = 0;
                for (key, dirty) in &changes.dirty {
                    let view = index.federation(key).expect("federated");
                    for name in &dirty.slices {
                        rendered += view.slice(name).map_or(0, |s| s.endpoints.len());
                    }
                    rendered += view.endpoints().subsets.map_or(0, |s| s.len());
                }
                black_box(rendered)
            },
            BatchSize::SmallInput,
        );
    });
    group.finish();

    let mut group = c.benchmark_group("federation_build");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    group.bench_function("build_from_scratch", |b| {
        b.iter_batched(
            || events.clone(),
            |events| black_box(build(events)),
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
