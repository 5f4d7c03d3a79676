//! API server benchmark (a bench binary that prints a table), on loopback
//! against a real server with a SQLite data directory (WAL, every write
//! acknowledged only after an fdatasync of the WAL: the production durability).
//!
//! - creates/s and merge patches/s of ~1 KB Endpoints from 16 concurrent
//!   clients, each its own HTTP/2 connection sending raw requests;
//! - a full list of 10,000 Endpoints, unpaged and in pages of 500;
//! - watch latency, write acknowledged to event received, over 100 watchers;
//! - resident memory per stored object beyond its JSON size;
//! - cold start, process spawn and in-process builder, to the first 200 from
//!   `/readyz`;
//! - the same creates of the same stored objects to etcd 3.4 (Debian's
//!   `etcd-server`, fsync on) over its gRPC API, and the ratio.
//!
//! The server runs in a child process (this binary with `--serve-child DIR`),
//! so that its memory is measured alone.
//!
//! ```text
//! cargo bench -p fedmesh-apiserver --bench apiserver
//! APIBENCH_OBJECTS=10000 APIBENCH_CLIENTS=16 APIBENCH_PATCHES=10000
//! APIBENCH_WATCHERS=100 APIBENCH_WATCH_WRITES=1000 (defaults)
//! APIBENCH_PATCH_SECONDS=20: the patch phase stops after this long
//! APIBENCH_PLAINTEXT=1: plain HTTP/2 instead of TLS
//! APIBENCH_CONTROLLERS=0: the server without its built-in controllers
//! APIBENCH_LINGER_US=N: the store's group-commit linger (default: the server's)
//! ```

// The server child allocates as production does: the `fedmesh` binary, which
// serves `fedmesh apiserver`, uses mimalloc (crates/fedmesh/src/main.rs).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

// Shared with the dataplane bench, which uses the parts this one does not.
#[allow(dead_code)]
#[path = "apiserver/child.rs"]
mod child;
#[path = "apiserver/client.rs"]
mod client;
#[path = "apiserver/etcd.rs"]
mod etcd;
#[path = "apiserver/objects.rs"]
mod objects;
#[path = "apiserver/report.rs"]
mod report;
#[path = "apiserver/watch.rs"]
mod watch;

use std::future::Future;
use std::path::Path;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Method, StatusCode};

use child::ServerProcess;
use client::{H2, Target};
use objects::{BENCH_NS, WARM_NS, WATCH_NS};
use report::{Report, median, ms};

const JSON: &str = "application/json";
/// How long the server is watched doing nothing (two controller resync periods).
const IDLE: Duration = Duration::from_secs(10);
const MERGE_PATCH: &str = "application/merge-patch+json";

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct Settings {
    objects: usize,
    clients: usize,
    patches: usize,
    watchers: usize,
    watch_writes: usize,
    plaintext: bool,
    controllers: bool,
    patch_budget: Duration,
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(at) = args.iter().position(|a| a == child::SERVE_CHILD) {
        let dir = args.get(at + 1).expect("--serve-child DIR");
        child::serve(Path::new(dir), child::Mode::from_args(&args), None);
        return;
    }
    let settings = Settings {
        objects: env_usize("APIBENCH_OBJECTS", 10_000),
        clients: env_usize("APIBENCH_CLIENTS", 16).max(1),
        patches: env_usize("APIBENCH_PATCHES", 10_000),
        watchers: env_usize("APIBENCH_WATCHERS", 100).max(1),
        watch_writes: env_usize("APIBENCH_WATCH_WRITES", 1_000).max(1),
        patch_budget: Duration::from_secs(env_usize("APIBENCH_PATCH_SECONDS", 20) as u64),
        plaintext: std::env::var_os("APIBENCH_PLAINTEXT").is_some_and(|v| v == "1"),
        controllers: std::env::var_os("APIBENCH_CONTROLLERS").is_none_or(|v| v != "0"),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let mut report = Report {
        objects: settings.objects,
        clients: settings.clients,
        ..Report::default()
    };
    runtime.block_on(run(&settings, &mut report));
    report.print(&settings.describe());
}

impl Settings {
    fn mode(&self) -> child::Mode {
        child::Mode {
            plaintext: self.plaintext,
            controllers: self.controllers,
            ..child::Mode::default()
        }
    }

    fn describe(&self) -> String {
        format!(
            "{} objects, {} clients, {} patches, {} watchers x {} writes, {}, {}",
            self.objects,
            self.clients,
            self.patches,
            self.watchers,
            self.watch_writes,
            if self.plaintext {
                "plaintext HTTP/2"
            } else {
                "TLS + bearer token, HTTP/2"
            },
            if self.controllers {
                "built-in controllers on"
            } else {
                "built-in controllers off"
            }
        )
    }
}

async fn run(s: &Settings, report: &mut Report) {
    cold_start_in_process(s, report).await;
    cold_start_process(s, report).await;

    let data = tempfile::tempdir().expect("tempdir");
    let server = ServerProcess::spawn(data.path(), s.mode());
    eprintln!("server process pid {}", server.pid());
    let conns = connect_many(&server.target, s.clients).await;
    for ns in [BENCH_NS, WARM_NS, WATCH_NS] {
        let (status, body) = conns[0]
            .clone()
            .call(
                Method::POST,
                "/api/v1/namespaces",
                JSON,
                objects::namespace(ns),
            )
            .await
            .expect("create namespace");
        assert_eq!(
            status,
            StatusCode::CREATED,
            "{}",
            String::from_utf8_lossy(&body)
        );
    }

    // Warm-up: the same requests into another namespace, so that connection
    // buffers, caches and allocator arenas have grown before memory is read.
    let warm = s.objects / 10;
    create_endpoints(&conns, WARM_NS, warm).await;
    patch_endpoints(&conns, WARM_NS, warm, warm, s.patch_budget).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_before = server.rss_bytes();

    let cpu = server.cpu();
    let (elapsed, stored) = create_endpoints(&conns, BENCH_NS, s.objects).await;
    report.creates = Some(s.objects as f64 / elapsed.as_secs_f64());
    report.cpu_per_create = Some((server.cpu() - cpu) / s.objects as u32);
    eprintln!("creates: {} in {:.0} ms", s.objects, ms(elapsed));

    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_after = server.rss_bytes();
    let json = stored.iter().map(Bytes::len).sum::<usize>() as f64 / s.objects as f64;
    report.memory = Some(report::Memory {
        rss_before,
        rss_after,
        objects: s.objects,
        json_per_object: json,
    });

    let cpu = server.cpu();
    let (elapsed, patched) =
        patch_endpoints(&conns, BENCH_NS, s.objects, s.patches, s.patch_budget).await;
    report.patches = Some(patched as f64 / elapsed.as_secs_f64());
    report.cpu_per_patch = Some((server.cpu() - cpu) / patched.max(1) as u32);
    eprintln!("patches: {patched} in {:.0} ms", ms(elapsed));

    list(&conns[0], s.objects, report).await;
    report.rss_after_lists = Some(server.rss_bytes());

    // With no request in flight, what the server does on its own with the
    // objects stored (controllers' periodic passes, compaction).
    let (cpu, started) = (server.cpu(), Instant::now());
    tokio::time::sleep(IDLE).await;
    report.idle_cpu = Some((server.cpu() - cpu).as_secs_f64() / started.elapsed().as_secs_f64());

    report.watch = Some(watch::measure(&server.target, s.watchers, s.watch_writes).await);
    report.rss_end = Some(server.rss_bytes());
    server.stop();

    // Start again on the data just written.
    let server = ServerProcess::spawn(data.path(), s.mode());
    report.restart_with_data = Some(ready(&server.target, server.spawned).await);
    server.stop();

    etcd_creates(s, &stored, report).await;
}

async fn connect_many(target: &Target, n: usize) -> Vec<H2> {
    let mut conns = Vec::with_capacity(n);
    for _ in 0..n {
        conns.push(H2::connect(target).await.expect("connect"));
    }
    conns
}

/// Runs `n` operations from `clients.len()` concurrent clients, client `c`
/// doing operations `c, c + clients, ...` one after another on its own
/// connection; returns the elapsed time and each operation's output.
async fn fan_out<T, F, Fut>(clients: &[H2], n: usize, op: F) -> (Duration, Vec<T>)
where
    T: Send + 'static,
    F: Fn(H2, usize) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = T> + Send,
{
    let started = Instant::now();
    let step = clients.len();
    let tasks: Vec<_> = clients
        .iter()
        .enumerate()
        .map(|(c, conn)| {
            let (op, conn) = (op.clone(), conn.clone());
            tokio::spawn(async move {
                let mut out = Vec::new();
                for i in (c..n).step_by(step) {
                    out.push((i, op(conn.clone(), i).await));
                }
                out
            })
        })
        .collect();
    let mut all = Vec::with_capacity(n);
    for task in tasks {
        all.extend(task.await.expect("a client task failed"));
    }
    let elapsed = started.elapsed();
    all.sort_by_key(|(i, _)| *i);
    (elapsed, all.into_iter().map(|(_, t)| t).collect())
}

/// Creates `n` Endpoints; returns the time and the stored objects as the
/// server returned them.
async fn create_endpoints(conns: &[H2], ns: &'static str, n: usize) -> (Duration, Vec<Bytes>) {
    let bodies: std::sync::Arc<Vec<Bytes>> =
        std::sync::Arc::new((0..n).map(objects::endpoints).collect());
    let path: &'static str =
        Box::leak(format!("/api/v1/namespaces/{ns}/endpoints").into_boxed_str());
    fan_out(conns, n, move |mut conn, i| {
        let body = bodies[i].clone();
        async move {
            let (status, body) = conn
                .call(Method::POST, path, JSON, body)
                .await
                .expect("create");
            assert_eq!(
                status,
                StatusCode::CREATED,
                "{}",
                String::from_utf8_lossy(&body)
            );
            body
        }
    })
    .await
}

/// `patches` merge patches, round-robin over the first `objects` Endpoints.
/// Up to `patches` merge patches, round-robin over the first `objects`
/// Endpoints, stopping after `budget`; returns the time and how many were made.
async fn patch_endpoints(
    conns: &[H2],
    ns: &'static str,
    objects: usize,
    patches: usize,
    budget: Duration,
) -> (Duration, usize) {
    let paths: std::sync::Arc<Vec<String>> = std::sync::Arc::new(
        (0..objects)
            .map(|i| {
                format!(
                    "/api/v1/namespaces/{ns}/endpoints/{}",
                    objects::endpoints_name(i)
                )
            })
            .collect(),
    );
    let bodies: std::sync::Arc<Vec<Bytes>> = std::sync::Arc::new(
        (0..patches)
            .map(|i| objects::merge_patch(i / objects.max(1) + 1))
            .collect(),
    );
    let deadline = Instant::now() + budget;
    let (elapsed, done) = fan_out(conns, patches, move |mut conn, i| {
        let (path, body) = (paths[i % objects].clone(), bodies[i].clone());
        async move {
            if Instant::now() > deadline {
                return false;
            }
            let (status, body) = conn
                .call(Method::PATCH, &path, MERGE_PATCH, body)
                .await
                .expect("patch");
            assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
            true
        }
    })
    .await;
    (elapsed, done.into_iter().filter(|d| *d).count())
}

#[derive(serde::Deserialize)]
struct ListMeta {
    #[serde(rename = "continue", default)]
    continue_token: Option<String>,
}

#[derive(serde::Deserialize)]
struct ListBody {
    metadata: ListMeta,
    items: Vec<serde::de::IgnoredAny>,
}

fn parse_list(body: &[u8]) -> ListBody {
    serde_json::from_slice(body).expect("a list")
}

async fn list(conn: &H2, objects: usize, report: &mut Report) {
    let path = format!("/api/v1/namespaces/{BENCH_NS}/endpoints");
    let mut conn = conn.clone();
    let mut full = Vec::new();
    let mut size = 0;
    for _ in 0..5 {
        let started = Instant::now();
        let (status, body) = conn
            .call(Method::GET, &path, JSON, Bytes::new())
            .await
            .expect("list");
        full.push(started.elapsed());
        assert_eq!(status, StatusCode::OK);
        // Parsed after the clock stops: the client's decoding is not the server's time.
        assert_eq!(parse_list(&body).items.len(), objects);
        size = body.len();
    }
    let mut paged = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        let mut total = 0;
        let mut next = format!("{path}?limit=500");
        loop {
            let (status, body) = conn
                .call(Method::GET, &next, JSON, Bytes::new())
                .await
                .expect("list page");
            assert_eq!(status, StatusCode::OK);
            let page = parse_list(&body);
            total += page.items.len();
            match page.metadata.continue_token.filter(|t| !t.is_empty()) {
                Some(token) => {
                    next = format!(
                        "{path}?limit=500&continue={}",
                        objects::query_escape(&token)
                    )
                }
                None => break,
            }
        }
        paged.push(started.elapsed());
        assert_eq!(total, objects);
    }
    report.list_full = Some(median(&mut full));
    report.list_paged = Some(median(&mut paged));
    report.list_bytes = size;
}

/// Polls `/readyz` on fresh connections until it answers 200; the time since `since`.
async fn ready(target: &Target, since: Instant) -> Duration {
    let deadline = since + Duration::from_secs(30);
    loop {
        if let Ok(mut conn) = H2::connect(target).await
            && let Ok((StatusCode::OK, _)) =
                conn.call(Method::GET, "/readyz", JSON, Bytes::new()).await
        {
            return since.elapsed();
        }
        assert!(Instant::now() < deadline, "/readyz not 200 within 30 s");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

const STARTS: usize = 5;

async fn cold_start_in_process(s: &Settings, report: &mut Report) {
    let mut times = Vec::new();
    for _ in 0..STARTS {
        let dir = tempfile::tempdir().expect("tempdir");
        let started = Instant::now();
        let server = fedmesh_apiserver::server::ApiServer::builder()
            .data_dir(dir.path())
            .insecure_plaintext(s.plaintext)
            .builtin_controllers(s.controllers)
            .start()
            .await
            .expect("start");
        let security = &server.guard().security;
        let target = Target {
            addr: server.addr(),
            tls: (!s.plaintext).then(|| client::tls_config(security.tls.ca_pem())),
            token: Some(security.admin_token.expose().to_owned()),
        };
        times.push(ready(&target, started).await);
        server.shutdown().await;
    }
    report.start_first_in_process = Some(times[0]);
    report.start_in_process = Some(median(&mut times));
}

async fn cold_start_process(s: &Settings, report: &mut Report) {
    let mut times = Vec::new();
    for _ in 0..STARTS {
        let dir = tempfile::tempdir().expect("tempdir");
        let server = ServerProcess::spawn(dir.path(), s.mode());
        times.push(ready(&server.target, server.spawned).await);
        server.stop();
    }
    report.start_process = Some(median(&mut times));
}

async fn etcd_creates(s: &Settings, stored: &[Bytes], report: &mut Report) {
    let Some(version) = etcd::installed() else {
        println!("etcd not installed: apt-get install etcd-server (the etcd column is skipped)");
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let etcd = etcd::start(dir.path(), version).await;
    let conns = connect_many(&Target::plain(etcd.addr), s.clients).await;
    // kube-apiserver's key for an Endpoints object.
    let prefix = format!("/registry/services/endpoints/{BENCH_NS}/");
    let txns: std::sync::Arc<Vec<Vec<u8>>> = std::sync::Arc::new(
        stored
            .iter()
            .enumerate()
            .map(|(i, value)| {
                let key = format!("{prefix}{}", objects::endpoints_name(i));
                etcd::create_txn(key.as_bytes(), value)
            })
            .collect(),
    );
    let cpu = child::cpu_time(etcd.pid());
    let (elapsed, _) = fan_out(&conns, stored.len(), move |mut conn, i| {
        let txns = txns.clone();
        async move {
            let (msg, status) = conn
                .grpc("/etcdserverpb.KV/Txn", &txns[i])
                .await
                .expect("etcd txn");
            assert_eq!(status.as_deref(), Some("0"), "etcd txn failed");
            assert!(etcd::txn_succeeded(&msg), "etcd create found the key");
        }
    })
    .await;
    report.etcd_creates = Some(stored.len() as f64 / elapsed.as_secs_f64());
    report.etcd_cpu_per_create = Some((child::cpu_time(etcd.pid()) - cpu) / stored.len() as u32);
    eprintln!("etcd creates: {} in {:.0} ms", stored.len(), ms(elapsed));
    let mut lists = Vec::new();
    let mut conn = conns[0].clone();
    let range = etcd::range_prefix(prefix.as_bytes());
    for _ in 0..5 {
        let started = Instant::now();
        let (msg, status) = conn
            .grpc("/etcdserverpb.KV/Range", &range)
            .await
            .expect("etcd range");
        lists.push(started.elapsed());
        assert_eq!(status.as_deref(), Some("0"), "etcd range failed");
        assert_eq!(etcd::range_count(&msg), stored.len());
    }
    report.etcd_range = Some(median(&mut lists));
    report.etcd_version = etcd.version.clone();
}
