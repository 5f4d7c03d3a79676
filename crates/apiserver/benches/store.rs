//! Store benchmark (a bench binary that prints figures).
//!
//! - creates per second from 16 concurrent writers, SQLite (fsync on every
//!   commit, group commit) and memory;
//! - the time to list 10,000 objects (one list, and pages of 500);
//! - memory backend: resident memory per object beyond its value.
//!
//! With `--features etcd-bench` and Debian's `etcd-server` installed, the same
//! creates (as kube-apiserver sends them: a transaction "create if
//! mod_revision == 0") of the same payloads go to an etcd 3.4 it starts on
//! loopback with a temporary data directory (fsync on, its default), and the
//! bench prints both figures and the ratio.
//!
//! ```text
//! cargo bench -p fedmesh-apiserver --bench store [--features etcd-bench]
//! STORE_BENCH_OBJECTS=10000 STORE_BENCH_CLIENTS=16 (defaults)
//! ```

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use fedmesh_apiserver::store::{ListRequest, Store, StoreOptions};

const PREFIX: &str = "/registry/endpoints/bench/";

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn key(i: usize) -> String {
    format!("{PREFIX}svc-{i:06}")
}

/// An Endpoints object of about 1 KB, as the API server would store it.
fn payload(i: usize) -> Bytes {
    let addresses: Vec<String> = (0..8)
        .map(|a| {
            format!(
                r#"{{"ip":"10.{}.{}.{a}","nodeName":"node-{a}","targetRef":{{"kind":"Pod","namespace":"bench","name":"svc-{i:06}-{a}","uid":"00000000-0000-0000-0000-{i:06}{a:06}"}}}}"#,
                (i >> 8) & 0xff,
                i & 0xff
            )
        })
        .collect();
    Bytes::from(format!(
        r#"{{"apiVersion":"v1","kind":"Endpoints","metadata":{{"name":"svc-{i:06}","namespace":"bench","uid":"11111111-2222-3333-4444-{i:012}","creationTimestamp":"2026-01-01T00:00:00Z","labels":{{"app":"svc-{i:06}"}}}},"subsets":[{{"addresses":[{}],"ports":[{{"name":"http","port":8080,"protocol":"TCP"}}]}}]}}"#,
        addresses.join(",")
    ))
}

/// Runs `objects` creates from `clients` concurrent tasks; returns the elapsed time.
async fn create_all<F, Fut>(objects: usize, clients: usize, create: F) -> Duration
where
    F: Fn(usize, usize) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let started = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|c| {
            let create = create.clone();
            tokio::spawn(async move {
                for i in (c..objects).step_by(clients) {
                    create(c, i).await;
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("a writer task failed");
    }
    started.elapsed()
}

async fn bench_creates(name: &str, store: &Store, objects: usize, clients: usize) -> f64 {
    let elapsed = {
        let store = store.clone();
        create_all(objects, clients, move |_, i| {
            let store = store.clone();
            async move {
                store.create(&key(i), payload(i)).await.expect("create");
            }
        })
        .await
    };
    let rate = objects as f64 / elapsed.as_secs_f64();
    println!(
        "{name:<8} creates: {objects} in {:>8.1} ms = {rate:>9.0} creates/s ({clients} clients)",
        elapsed.as_secs_f64() * 1e3
    );
    rate
}

async fn bench_lists(name: &str, store: &Store, objects: usize) {
    let mut full = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        let list = store.list(ListRequest::prefix(PREFIX)).await.expect("list");
        full.push(started.elapsed());
        assert_eq!(list.items.len(), objects);
    }
    let mut paged = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        let mut req = ListRequest::prefix(PREFIX).limit(500);
        let mut total = 0;
        loop {
            let page = store.list(req.clone()).await.expect("list page");
            total += page.items.len();
            let Some(last) = page.items.last() else { break };
            if !page.more {
                break;
            }
            req = req.start_after(last.key.clone()).at(page.revision);
        }
        paged.push(started.elapsed());
        assert_eq!(total, objects);
    }
    // Under writes, the pages after the first are read at the first page's
    // revision, which is then no longer the current one.
    let pinned = store.current_revision();
    store
        .create("/registry/other/moved-on", Bytes::from_static(b"{}"))
        .await
        .expect("create");
    let mut older = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        let mut req = ListRequest::prefix(PREFIX).limit(500).at(pinned);
        let mut total = 0;
        loop {
            let page = store.list(req.clone()).await.expect("list page");
            total += page.items.len();
            let Some(last) = page.items.last() else { break };
            if !page.more {
                break;
            }
            req = req.start_after(last.key.clone());
        }
        older.push(started.elapsed());
        assert_eq!(total, objects);
    }
    println!(
        "{name:<8} list {objects}: one list median {:>6.1} ms (min {:.1}); pages of 500 median {:>6.1} ms; \
         pages of 500 at an older revision median {:>6.1} ms",
        median_ms(&mut full),
        full.iter().min().map_or(0.0, |d| d.as_secs_f64() * 1e3),
        median_ms(&mut paged),
        median_ms(&mut older)
    );
}

/// `watchers` watches on one prefix; one client writes `writes` objects one
/// after the other. Latency: from the start of a write's call to each watcher
/// receiving its event (so it includes the commit and its fsync).
async fn bench_watch_latency(name: &str, store: &Store, watchers: usize, writes: usize) {
    const WATCHED: &str = "/registry/configmaps/watched/";
    let starts: Arc<Mutex<Vec<Option<Instant>>>> = Arc::new(Mutex::new(vec![None; writes]));
    let tasks: Vec<_> = (0..watchers)
        .map(|_| {
            let mut watch = store
                .watch(WATCHED, store.current_revision())
                .expect("watch");
            let starts = starts.clone();
            tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(writes);
                while latencies.len() < writes {
                    let event = tokio::time::timeout(Duration::from_secs(30), watch.next())
                        .await
                        .expect("watch event within 30 s")
                        .expect("watch open")
                        .expect("watch event");
                    let received = Instant::now();
                    let index: usize = event
                        .key()
                        .rsplit('-')
                        .next()
                        .and_then(|i| i.parse().ok())
                        .expect("bench key");
                    let started = starts.lock().expect("starts")[index].expect("write started");
                    latencies.push(received - started);
                }
                latencies
            })
        })
        .collect();
    for i in 0..writes {
        starts.lock().expect("starts")[i] = Some(Instant::now());
        store
            .create(&format!("{WATCHED}cm-{i}"), payload(i))
            .await
            .expect("create");
    }
    let mut all = Vec::with_capacity(watchers * writes);
    for task in tasks {
        all.extend(task.await.expect("watcher"));
    }
    all.sort();
    let at = |q: f64| all[((all.len() - 1) as f64 * q) as usize].as_secs_f64() * 1e3;
    println!(
        "{name:<8} watch latency, {watchers} watchers x {writes} writes (write start -> event): \
         p50 {:.2} ms, p99 {:.2} ms",
        at(0.50),
        at(0.99)
    );
}

fn median_ms(samples: &mut [Duration]) -> f64 {
    samples.sort();
    samples[samples.len() / 2].as_secs_f64() * 1e3
}

fn rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

fn main() {
    let objects = env_usize("STORE_BENCH_OBJECTS", 10_000);
    let clients = env_usize("STORE_BENCH_CLIENTS", 16).max(1);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let payload_bytes: usize = (0..objects).map(|i| payload(i).len()).sum();
    println!(
        "store bench: {objects} objects of ~{} bytes, {clients} concurrent clients",
        payload_bytes / objects.max(1)
    );

    let dir = tempfile::tempdir().expect("tempdir");
    let sqlite_rate = runtime.block_on(async {
        let before = rss_bytes();
        let store = Store::open_sqlite(&dir.path().join("bench.db"), StoreOptions::default())
            .expect("open sqlite");
        let rate = bench_creates("sqlite", &store, objects, clients).await;
        if let (Some(before), Some(after)) = (before, rss_bytes()) {
            println!(
                "sqlite   RSS growth: {:.0} bytes/object (values stay on disk; SQLite's page caches are bounded)",
                after.saturating_sub(before) as f64 / objects as f64
            );
        }
        bench_lists("sqlite", &store, objects).await;
        bench_watch_latency("sqlite", &store, 100, 1_000).await;
        drop(store);
        let started = Instant::now();
        let store = Store::open_sqlite(&dir.path().join("bench.db"), StoreOptions::default())
            .expect("reopen sqlite");
        let reopened = started.elapsed();
        let first = store.get(&key(0)).await.expect("get");
        assert!(first.is_some());
        println!(
            "sqlite   reopen with {objects} objects: {:.1} ms to open, {:.1} ms to the first read",
            reopened.as_secs_f64() * 1e3,
            started.elapsed().as_secs_f64() * 1e3
        );
        rate
    });

    runtime.block_on(async {
        let before = rss_bytes();
        let store = Store::in_memory(StoreOptions::default()).expect("memory store");
        bench_creates("memory", &store, objects, clients).await;
        let value = payload_bytes as f64 / objects as f64;
        let report = |when: &str| {
            if let (Some(before), Some(after)) = (before, rss_bytes()) {
                let per_object = after.saturating_sub(before) as f64 / objects as f64;
                println!(
                    "memory   RSS growth {when}: {per_object:.0} bytes/object, {:.0} beyond the value",
                    per_object - value
                );
            }
        };
        report("with the log of every create");
        store
            .compact(store.current_revision())
            .await
            .expect("compact");
        report("after compacting the log");
        bench_lists("memory", &store, objects).await;
        bench_watch_latency("memory", &store, 100, 1_000).await;
    });

    etcd::compare(&runtime, objects, clients, sqlite_rate);
}

#[cfg(not(feature = "etcd-bench"))]
mod etcd {
    pub fn compare(_: &tokio::runtime::Runtime, _: usize, _: usize, _: f64) {
        println!(
            "etcd     skipped: build with `--features etcd-bench` (needs protoc) to compare with etcd"
        );
    }
}

#[cfg(feature = "etcd-bench")]
mod etcd {
    use std::net::TcpListener;
    use std::process::{Child, Command, Stdio};
    use std::time::{Duration, Instant};

    use etcd_client::{Client, Compare, CompareOp, GetOptions, Txn, TxnOp};

    use super::{PREFIX, create_all, key, median_ms, payload};

    const ETCD: &str = "etcd";
    const MAX_MESSAGE: usize = 256 << 20;

    /// Kills etcd when the bench ends, however it ends.
    struct Etcd(Child);

    impl Drop for Etcd {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    fn free_port() -> u16 {
        TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free loopback port")
    }

    pub fn compare(runtime: &tokio::runtime::Runtime, objects: usize, clients: usize, ours: f64) {
        let dir = tempfile::tempdir().expect("tempdir");
        let (client_port, peer_port) = (free_port(), free_port());
        let client_url = format!("http://127.0.0.1:{client_port}");
        let peer_url = format!("http://127.0.0.1:{peer_port}");
        let spawned = Command::new(ETCD)
            .arg("--data-dir")
            .arg(dir.path())
            .args(["--listen-client-urls", &client_url])
            .args(["--advertise-client-urls", &client_url])
            .args(["--listen-peer-urls", &peer_url])
            .args(["--initial-advertise-peer-urls", &peer_url])
            .args(["--initial-cluster", &format!("default={peer_url}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let child = match spawned {
            Ok(child) => Etcd(child),
            Err(e) => {
                println!(
                    "etcd     skipped: cannot start `{ETCD}` ({e}); install Debian's etcd-server"
                );
                return;
            }
        };
        let version = Command::new(ETCD)
            .arg("--version")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.lines().next().map(str::to_owned))
            .unwrap_or_default();
        runtime.block_on(async {
            let endpoint = format!("127.0.0.1:{client_port}");
            let deadline = Instant::now() + Duration::from_secs(20);
            let probe = loop {
                if let Ok(mut c) = Client::connect([&endpoint], None).await
                    && c.status().await.is_ok()
                {
                    break c;
                }
                assert!(
                    Instant::now() < deadline,
                    "etcd did not become ready within 20 s"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            };
            let mut connections = Vec::new();
            for _ in 0..clients {
                let client = Client::connect([&endpoint], None).await.expect("connect");
                connections.push(client.kv_client().max_decoding_message_size(MAX_MESSAGE));
            }
            let elapsed = create_all(objects, clients, move |c, i| {
                let mut kv = connections[c].clone();
                async move {
                    let k = key(i);
                    let txn = Txn::new()
                        .when([Compare::mod_revision(k.clone(), CompareOp::Equal, 0)])
                        .and_then([TxnOp::put(k, payload(i).to_vec(), None)]);
                    let done = kv.txn(txn).await.expect("etcd txn");
                    assert!(done.succeeded(), "etcd create found the key");
                }
            })
            .await;
            let theirs = objects as f64 / elapsed.as_secs_f64();
            println!(
                "etcd     creates: {objects} in {:>8.1} ms = {theirs:>9.0} creates/s ({clients} clients; {version})",
                elapsed.as_secs_f64() * 1e3
            );
            let mut kv = probe.kv_client().max_decoding_message_size(MAX_MESSAGE);
            let mut lists = Vec::new();
            for _ in 0..5 {
                let started = Instant::now();
                let listed = kv
                    .get(PREFIX, Some(GetOptions::new().with_prefix()))
                    .await
                    .expect("etcd list");
                lists.push(started.elapsed());
                assert_eq!(listed.kvs().len(), objects);
            }
            println!(
                "etcd     list {objects}: one range read median {:>6.1} ms",
                median_ms(&mut lists)
            );
            println!(
                "ratio    sqlite / etcd creates/s = {:.2}",
                ours / theirs
            );
        });
        drop(child);
    }
}
