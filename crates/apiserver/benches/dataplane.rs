//! Simulated data plane benchmark (a bench binary that prints a table): an
//! embedded cluster with its controllers, simulated nodes, scheduler and
//! kubelet, in a child process (this binary with `--serve-child DIR`) so that
//! its memory is measured alone.
//!
//! - Rollout: from the create of a 1,000-replica Deployment (its Service
//!   already there) to every pod Ready (the Deployment's `readyReplicas`, what
//!   `kubectl rollout status` reads) and to the Service's Endpoints and
//!   EndpointSlices holding 1,000 ready addresses; with the server's CPU.
//! - Memory of the idle cluster with 100 nodes and 3,000 pods (three such
//!   Deployments, each with a Service): RSS and live heap (a counting
//!   allocator in the child), total and per pod beyond the cluster with its
//!   nodes and no pods; after the store's history is compacted, as the
//!   compactor does five minutes after the writes.
//!
//! ```text
//! cargo bench -p fedmesh-apiserver --bench dataplane
//! DPBENCH_NODES=100 DPBENCH_REPLICAS=1000 DPBENCH_DEPLOYMENTS=3 (defaults)
//! DPBENCH_SQLITE=1: the store in SQLite (fsync) instead of memory
//! ```

#[path = "../../controller/benches/common/live_heap.rs"]
mod live_heap;

// The child counts its live heap; the allocator underneath is mimalloc, as
// in the `fedmesh` binary.
#[global_allocator]
static ALLOCATOR: live_heap::Counting = live_heap::Counting;

// Shared with the apiserver bench, which uses the parts this one does not.
#[allow(dead_code)]
#[path = "apiserver/child.rs"]
mod child;
#[allow(dead_code)]
#[path = "apiserver/client.rs"]
mod client;

use std::path::Path;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Method, StatusCode};
use serde_json::{Value, json};

use child::ServerProcess;
use client::H2;

const JSON: &str = "application/json";
/// How often the parent looks at the rollout's progress.
const POLL: Duration = Duration::from_millis(25);
/// Bound on every wait.
const DEADLINE: Duration = Duration::from_secs(300);
/// How long the idle cluster is watched.
const IDLE: Duration = Duration::from_secs(10);

fn env_u32(name: &str, default: u32) -> u32 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(at) = args.iter().position(|a| a == child::SERVE_CHILD) {
        let dir = args.get(at + 1).expect("--serve-child DIR");
        child::serve(
            Path::new(dir),
            child::Mode::from_args(&args),
            Some(live_heap::live_bytes as fn() -> usize),
        );
        return;
    }
    let settings = Settings {
        nodes: env_u32("DPBENCH_NODES", 100),
        replicas: env_u32("DPBENCH_REPLICAS", 1_000).max(1),
        deployments: env_u32("DPBENCH_DEPLOYMENTS", 3).max(1),
        sqlite: std::env::var_os("DPBENCH_SQLITE").is_some_and(|v| v == "1"),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(run(&settings));
}

struct Settings {
    nodes: u32,
    replicas: u32,
    deployments: u32,
    sqlite: bool,
}

/// When each stage of one rollout was reached, from the Deployment's create.
#[derive(Default)]
struct Rollout {
    pods_created: Option<Duration>,
    first_ready: Option<Duration>,
    all_ready: Option<Duration>,
    endpoints: Option<Duration>,
    slices: Option<Duration>,
    cpu: Duration,
}

struct Memory {
    rss: u64,
    heap: u64,
}

async fn run(s: &Settings) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mode = child::Mode {
        plaintext: false,
        controllers: true,
        nodes: s.nodes,
        in_memory: !s.sqlite,
    };
    let mut server = ServerProcess::spawn(dir.path(), mode);
    eprintln!("server process pid {}", server.pid());
    let mut conn = H2::connect(&server.target).await.expect("connect");
    wait_for_ready_nodes(&mut conn, s.nodes).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let empty = memory(&mut server).await;

    let mut rollouts = Vec::new();
    for d in 0..s.deployments {
        let ns = format!("dp{d}");
        create(&mut conn, "/api/v1/namespaces", namespace(&ns)).await;
        create(
            &mut conn,
            &format!("/api/v1/namespaces/{ns}/services"),
            service(),
        )
        .await;
        let cpu = server.cpu();
        let started = Instant::now();
        create(
            &mut conn,
            &format!("/apis/apps/v1/namespaces/{ns}/deployments"),
            deployment(s.replicas),
        )
        .await;
        let mut rollout = follow(&mut conn, &ns, s.replicas, started).await;
        rollout.cpu = server.cpu() - cpu;
        eprintln!(
            "rollout {d}: ready in {:.0} ms, endpoints in {:.0} ms",
            ms(rollout.all_ready),
            ms(rollout.slices.max(rollout.endpoints))
        );
        rollouts.push(rollout);
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let full = memory(&mut server).await;
    let (cpu, started) = (server.cpu(), Instant::now());
    tokio::time::sleep(IDLE).await;
    let idle_cpu = (server.cpu() - cpu).as_secs_f64() / started.elapsed().as_secs_f64();
    server.stop();

    print(s, &rollouts, &empty, &full, idle_cpu);
}

/// RSS and live heap after the store's history is dropped and the
/// allocator had a moment.
async fn memory(server: &mut ServerProcess) -> Memory {
    assert_eq!(server.ask("compact"), "compacted");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let heap = server
        .ask("heap")
        .strip_prefix("heap ")
        .and_then(|n| n.parse().ok())
        .expect("the child's live heap");
    Memory {
        rss: server.rss_bytes(),
        heap,
    }
}

fn namespace(name: &str) -> Bytes {
    json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
        .to_string()
        .into()
}

fn service() -> Bytes {
    json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 80}]}})
    .to_string()
    .into()
}

/// What `kubectl create deployment web --image=nginx:1.25 --port=80
/// --replicas=N` sends.
fn deployment(replicas: u32) -> Bytes {
    json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "labels": {"app": "web"}},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "nginx", "image": "nginx:1.25",
                    "ports": [{"containerPort": 80}]}]}}}})
    .to_string()
    .into()
}

async fn create(conn: &mut H2, path: &str, body: Bytes) {
    let (status, answer) = conn
        .call(Method::POST, path, JSON, body)
        .await
        .expect("create");
    assert_eq!(
        status,
        StatusCode::CREATED,
        "POST {path}: {}",
        String::from_utf8_lossy(&answer)
    );
}

async fn get(conn: &mut H2, path: &str) -> Value {
    let (status, body) = conn
        .call(Method::GET, path, JSON, Bytes::new())
        .await
        .expect("get");
    assert_eq!(status, StatusCode::OK, "GET {path}");
    serde_json::from_slice(&body).expect("JSON")
}

async fn wait_for_ready_nodes(conn: &mut H2, nodes: u32) {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let list = get(conn, "/api/v1/nodes").await;
        let ready = list["items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|n| {
                n["status"]["conditions"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|c| c["type"] == "Ready" && c["status"] == "True")
            })
            .count();
        if ready == nodes as usize {
            return;
        }
        assert!(Instant::now() < deadline, "{ready} of {nodes} nodes Ready");
        tokio::time::sleep(POLL).await;
    }
}

/// Polls the Deployment, Endpoints and EndpointSlices until every pod is
/// Ready and both hold `replicas` ready addresses.
async fn follow(conn: &mut H2, ns: &str, replicas: u32, started: Instant) -> Rollout {
    let want = u64::from(replicas);
    let mut r = Rollout::default();
    let deadline = started + DEADLINE;
    let deployment = format!("/apis/apps/v1/namespaces/{ns}/deployments/web");
    let endpoints = format!("/api/v1/namespaces/{ns}/endpoints/web");
    let slices = format!(
        "/apis/discovery.k8s.io/v1/namespaces/{ns}/endpointslices?labelSelector=kubernetes.io%2Fservice-name%3Dweb"
    );
    let mark = |at: &mut Option<Duration>, reached: bool| {
        if reached && at.is_none() {
            *at = Some(started.elapsed());
        }
    };
    while r.all_ready.is_none() || r.endpoints.is_none() || r.slices.is_none() {
        assert!(
            Instant::now() < deadline,
            "rollout of {replicas} pods in {ns} not done within {DEADLINE:?}"
        );
        let d = get(conn, &deployment).await;
        let created = d["status"]["replicas"].as_u64().unwrap_or(0);
        let ready = d["status"]["readyReplicas"].as_u64().unwrap_or(0);
        mark(&mut r.pods_created, created >= want);
        mark(&mut r.first_ready, ready > 0);
        mark(&mut r.all_ready, ready == want);
        if r.endpoints.is_none() {
            let (status, body) = conn
                .call(Method::GET, &endpoints, JSON, Bytes::new())
                .await
                .expect("get endpoints");
            let addresses = if status == StatusCode::OK {
                let e: Value = serde_json::from_slice(&body).expect("JSON");
                e["subsets"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|s| s["addresses"].as_array().map_or(0, Vec::len))
                    .sum::<usize>()
            } else {
                0
            };
            mark(&mut r.endpoints, addresses as u64 == want);
        }
        if r.slices.is_none() {
            let list = get(conn, &slices).await;
            let ready = list["items"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|s| s["endpoints"].as_array().into_iter().flatten())
                .filter(|e| e["conditions"]["ready"] == true)
                .count();
            mark(&mut r.slices, ready as u64 == want);
        }
        tokio::time::sleep(POLL).await;
    }
    r
}

fn ms(d: Option<Duration>) -> f64 {
    d.map_or(f64::NAN, |d| d.as_secs_f64() * 1e3)
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn print(s: &Settings, rollouts: &[Rollout], empty: &Memory, full: &Memory, idle_cpu: f64) {
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load: Vec<&str> = load.split_whitespace().take(3).collect();
    let pods = u64::from(s.replicas) * u64::from(s.deployments);
    println!();
    println!(
        "data plane bench: {} nodes, {} Deployments x {} replicas, store {}, TLS; \
         pod start delay {} ms (the default); load average at the end {}",
        s.nodes,
        s.deployments,
        s.replicas,
        if s.sqlite { "SQLite" } else { "in memory" },
        fedmesh_apiserver::cluster::simulation::DataPlaneOptions::default()
            .start_delay
            .as_millis(),
        load.join(" ")
    );
    println!();
    println!(
        "| rollout | all pods created, ms | first Ready, ms | all Ready, ms | Endpoints full, ms | EndpointSlices full, ms | server CPU, s |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for (i, r) in rollouts.iter().enumerate() {
        println!(
            "| {} ({} pods before) | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {:.2} |",
            i + 1,
            i as u64 * u64::from(s.replicas),
            ms(r.pods_created),
            ms(r.first_ready),
            ms(r.all_ready),
            ms(r.endpoints),
            ms(r.slices),
            r.cpu.as_secs_f64()
        );
    }
    println!();
    println!("| idle cluster | RSS, MB | live heap, MB |");
    println!("|---|---:|---:|");
    println!(
        "| {} nodes, no pods | {:.1} | {:.1} |",
        s.nodes,
        mb(empty.rss),
        mb(empty.heap)
    );
    println!(
        "| {} nodes, {pods} pods, {} Services | {:.1} | {:.1} |",
        s.nodes,
        s.deployments,
        mb(full.rss),
        mb(full.heap)
    );
    let per = |a: u64, b: u64| (a as f64 - b as f64) / pods as f64;
    println!(
        "| per pod (growth / {pods}), bytes | {:.0} | {:.0} |",
        per(full.rss, empty.rss),
        per(full.heap, empty.heap)
    );
    println!();
    println!(
        "server CPU while idle with {pods} pods: {:.1}% of a core",
        idle_cpu * 100.0
    );
}
