//! The identity index at mesh scale: 10 remote clusters × 10,000 pods (10
//! namespaces of 1,000 pods each per cluster), and 2,000 local pods.
//!
//! Measures (issue 13): building the index and the desired NetworkSets from
//! scratch; a remote pod change to its desired NetworkSet (index update,
//! rewrites, JSON body), p50/p99 over many changes; objects to write per pod
//! change; live heap per 10,000 remote endpoints.
//!
//! Run: `cargo bench -p fedmesh-core --bench identity`

// A global allocator must be an `unsafe impl`; this one only counts live
// bytes and forwards to mimalloc (the `fedmesh` binary's allocator).
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout};
use std::collections::BTreeMap;
use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use fedmesh_core::identity::{
    CalicoApi, EndpointKind, EndpointView, IdentityIndex, MirrorConfig, ProfileKind, ProfileView,
    desired, rewrites,
};
use fedmesh_core::{ClusterName, Origin};
use k8s_openapi::api::core::v1::{Namespace, Pod, PodIP, PodSpec, PodStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static INNER: mimalloc::MiMalloc = mimalloc::MiMalloc;

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        // SAFETY: forwarded unchanged.
        unsafe { INNER.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: forwarded unchanged.
        unsafe { INNER.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(new_size, Ordering::Relaxed);
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: forwarded unchanged.
        unsafe { INNER.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const CLUSTERS: usize = 10;
const PODS: usize = 10_000;
const NAMESPACES: usize = 10;
const LOCAL_PODS: usize = 2_000;
const CHANGES: usize = 20_000;
const CONFIG: MirrorConfig = MirrorConfig {
    calico: Some(CalicoApi::V3),
    cilium: false,
};

fn cluster(c: usize) -> Origin {
    Origin::Remote(ClusterName::new(&format!("cluster-{c}")).unwrap())
}

fn pod(i: usize, c: usize, generation: usize) -> Pod {
    let ns = format!("ns-{}", i % NAMESPACES);
    let labels = BTreeMap::from([
        ("app".to_string(), format!("app-{}", i % 100)),
        ("tier".into(), ["web", "api", "db"][i % 3].into()),
        ("version".into(), format!("v{}", generation % 3)),
        ("pod-template-hash".into(), format!("{:08x}", i / 10)),
    ]);
    Pod {
        metadata: ObjectMeta {
            name: Some(format!("pod-{i}")),
            namespace: Some(ns),
            labels: Some(labels),
            ..ObjectMeta::default()
        },
        spec: Some(PodSpec {
            service_account_name: Some(format!("sa-{}", i % 20)),
            node_name: Some(format!("node-{}", i % 100)),
            ..PodSpec::default()
        }),
        status: Some(PodStatus {
            pod_ips: Some(vec![PodIP {
                ip: format!(
                    "10.{c}.{}.{}",
                    (i + generation) / 250 % 250,
                    (i + generation) % 250 + 1
                ),
            }]),
            phase: Some("Running".into()),
            ..PodStatus::default()
        }),
    }
}

fn views(origin: &Origin, c: usize, pods: usize) -> Vec<EndpointView> {
    (0..pods)
        .filter_map(|i| EndpointView::from_pod(origin.clone(), pod(i, c, 0)).unwrap())
        .collect()
}

fn namespaces(origin: &Origin) -> Vec<ProfileView> {
    (0..NAMESPACES)
        .map(|n| {
            let ns = Namespace {
                metadata: ObjectMeta {
                    name: Some(format!("ns-{n}")),
                    labels: Some(BTreeMap::from([
                        ("team".into(), format!("team-{n}")),
                        ("kubernetes.io/metadata.name".into(), format!("ns-{n}")),
                    ])),
                    ..ObjectMeta::default()
                },
                ..Namespace::default()
            };
            ProfileView::from_namespace(origin.clone(), ns).unwrap()
        })
        .collect()
}

type Listing = Vec<(Origin, Vec<ProfileView>, Vec<EndpointView>)>;

fn listings() -> Listing {
    let mut all = vec![(
        Origin::Local,
        namespaces(&Origin::Local),
        views(&Origin::Local, 99, LOCAL_PODS),
    )];
    for c in 0..CLUSTERS {
        let origin = cluster(c);
        all.push((origin.clone(), namespaces(&origin), views(&origin, c, PODS)));
    }
    all
}

fn build(listings: Listing) -> IdentityIndex {
    let mut index = IdentityIndex::new();
    for (origin, profiles, pods) in listings {
        index.reset_profiles(&origin, ProfileKind::Namespace, profiles);
        index.reset_endpoints(&origin, EndpointKind::Workload, pods);
    }
    index
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let at = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[at]
}

fn figures() {
    // Memory: live heap of the index alone, per 10,000 remote endpoints.
    let input = listings();
    let before = LIVE.load(Ordering::Relaxed);
    let start = Instant::now();
    let mut index = build(input);
    let built = start.elapsed();
    let heap = LIVE.load(Ordering::Relaxed) - before;
    let start = Instant::now();
    let want = desired(&index, &CONFIG);
    let rendered = start.elapsed();
    assert_eq!(want.objects.len(), CLUSTERS * PODS);
    let endpoints = index.len();

    // Pod changes: each changes one remote pod's IP and a label.
    let mut latencies = Vec::with_capacity(CHANGES);
    let mut writes = 0usize;
    for n in 0..CHANGES {
        let c = n % CLUSTERS;
        let i = (n * 7919) % PODS;
        let origin = cluster(c);
        let view = EndpointView::from_pod(origin, pod(i, c, n + 1))
            .unwrap()
            .unwrap();
        let start = Instant::now();
        let changes = index.upsert(view);
        let out = rewrites(&index, &CONFIG, &changes);
        let bodies: Vec<_> = out
            .iter()
            .filter_map(|r| r.desired.as_ref().map(|d| d.to_json()))
            .collect();
        latencies.push(start.elapsed());
        writes += out.len();
        black_box(bodies);
    }
    latencies.sort_unstable();
    println!(
        "\n## identity figures ({CLUSTERS} remote clusters x {PODS} pods, {LOCAL_PODS} local pods)\n"
    );
    println!("| figure | value |\n|---|---:|");
    println!("| endpoints indexed | {endpoints} |");
    println!(
        "| build index from listings (one run) | {:.0} ms |",
        built.as_secs_f64() * 1e3
    );
    println!(
        "| desired NetworkSets from scratch (one run, {} objects) | {:.0} ms |",
        want.objects.len(),
        rendered.as_secs_f64() * 1e3
    );
    println!(
        "| pod change -> desired NetworkSet JSON, p50 ({CHANGES} changes) | {:.1} us |",
        percentile(&latencies, 0.5).as_secs_f64() * 1e6
    );
    println!(
        "| pod change -> desired NetworkSet JSON, p99 | {:.1} us |",
        percentile(&latencies, 0.99).as_secs_f64() * 1e6
    );
    println!(
        "| pod change -> desired NetworkSet JSON, max | {:.1} us |",
        latencies[latencies.len() - 1].as_secs_f64() * 1e6
    );
    println!(
        "| objects to write per pod change | {:.2} |",
        writes as f64 / CHANGES as f64
    );
    println!(
        "| index live heap per 10,000 endpoints | {:.2} MB |",
        heap as f64 / endpoints as f64 * 10_000.0 / 1e6
    );
    println!();
}

fn bench(c: &mut Criterion) {
    figures();
    let mut group = c.benchmark_group("identity");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(20));
    group.bench_function("build_index_and_desired_100k", |b| {
        b.iter_batched(
            listings,
            |input| {
                let index = build(input);
                let want = desired(&index, &CONFIG);
                (index, want)
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();

    let mut index = build(listings());
    let mut n = 0usize;
    let mut group = c.benchmark_group("identity");
    group.bench_function("pod_change_to_networkset", |b| {
        b.iter_batched(
            || {
                n += 1;
                let c = n % CLUSTERS;
                EndpointView::from_pod(cluster(c), pod((n * 7919) % PODS, c, n))
                    .unwrap()
                    .unwrap()
            },
            |view| {
                let changes = index.upsert(view);
                let out = rewrites(&index, &CONFIG, &changes);
                out.iter()
                    .filter_map(|r| r.desired.as_ref().map(|d| d.to_json()))
                    .count()
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
