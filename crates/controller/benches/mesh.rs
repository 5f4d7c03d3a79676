//! The controller end to end, on loopback, with embedded API servers.
//!
//! 1. Latency: 10 remote clusters each back one federated service; 1,000
//!    times, an endpoint changes in a remote and we time from the remote's
//!    acknowledgement to the local watch event carrying the new federated
//!    EndpointSlice. Target: p99 under 100 ms.
//! 2. Memory: remotes shaped like Istio's published multicluster test (300
//!    services, 4,000 endpoints each); the controller's resident memory per
//!    remote, measured as the process's RSS growth from starting the
//!    controller to it being in sync (the API servers and their data are
//!    loaded before the baseline). Target: under 5 MB per remote.
//!
//! Run: `cargo bench -p fedmesh-controller --bench mesh`

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use fedmesh_apiserver::testing::{TestServer, TestServerOptions};
use fedmesh_controller::mesh::remotes as remote;
use fedmesh_controller::{ControllerConfig, Metrics};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{Endpoints, Namespace, Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DynamicObject, ListParams, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::json;

const LATENCY_REMOTES: usize = 10;
const CHANGES: usize = 1_000;
const SHAPE_SERVICES: usize = 300;
const SHAPE_ENDPOINTS: usize = 4_000;

type Error = Box<dyn std::error::Error + Send + Sync>;

#[path = "support/live_heap.rs"]
mod live_heap;
use live_heap::live_bytes;

#[global_allocator]
static ALLOCATOR: live_heap::Counting = live_heap::Counting;

fn service(name: &str, app: &str) -> Service {
    serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": "default", "labels": {"app": app}},
        "spec": {"selector": {"app": app}, "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}
    }))
    .expect("valid service")
}

fn slice(name: &str, service: &str, ips: &[String]) -> EndpointSlice {
    serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": "default", "labels": {"kubernetes.io/service-name": service}},
        "addressType": "IPv4",
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
        "endpoints": ips.iter().enumerate().map(|(i, ip)| json!({
            "addresses": [ip],
            "conditions": {"ready": true},
            "nodeName": format!("node-{}", i % 5),
            "targetRef": {"kind": "Pod", "namespace": "default", "name": format!("{service}-{i}"), "uid": format!("{name}-{i}")}
        })).collect::<Vec<_>>()
    }))
    .expect("valid slice")
}

async fn start(name: &str) -> Result<TestServer, Error> {
    Ok(TestServer::start_with(TestServerOptions {
        name: name.into(),
        ..TestServerOptions::default()
    })
    .await?)
}

/// Prepares `local` to reach every remote: the CRD, Secrets and RemoteClusterConfigurations.
async fn connect(local: &kube::Client, remotes: &[TestServer]) -> Result<(), Error> {
    Api::<CustomResourceDefinition>::all(local.clone())
        .create(&PostParams::default(), &remote::crd()?)
        .await?;
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": "fedmesh"}}))?;
    Api::<Namespace>::all(local.clone())
        .create(&PostParams::default(), &ns)
        .await?;
    let rccs = Api::<DynamicObject>::all_with(local.clone(), &remote::api_resource());
    for (i, server) in remotes.iter().enumerate() {
        let secret = Secret {
            metadata: kube::api::ObjectMeta {
                name: Some(format!("remote-{i}-access")),
                ..Default::default()
            },
            data: Some(BTreeMap::from([(
                "kubeconfig".to_string(),
                ByteString(std::fs::read(server.kubeconfig_path())?),
            )])),
            ..Secret::default()
        };
        Api::<Secret>::namespaced(local.clone(), "fedmesh")
            .create(&PostParams::default(), &secret)
            .await?;
        let rcc: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "projectcalico.org/v3", "kind": "RemoteClusterConfiguration",
            "metadata": {"name": format!("remote-{i}")},
            "spec": {"clusterAccessSecret": {"name": format!("remote-{i}-access"), "namespace": "fedmesh"}}
        }))?;
        // The CRD's resource is served within a second of its creation.
        let deadline = Instant::now() + Duration::from_secs(5);
        while let Err(error) = rccs.create(&PostParams::default(), &rcc).await {
            if Instant::now() > deadline {
                return Err(error.into());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    Ok(())
}

fn controller(local: kube::Client) -> tokio::task::JoinHandle<()> {
    let mut config = ControllerConfig::new("fedmesh", "bench");
    config.renew_interval = Duration::from_millis(200);
    tokio::spawn(async move {
        if let Err(error) =
            fedmesh_controller::run(local, config, Metrics::new(), std::future::pending()).await
        {
            eprintln!("controller stopped: {error:#}");
        }
    })
}

async fn wait_for_addresses(
    local: &kube::Client,
    service: &str,
    count: usize,
) -> Result<Duration, Error> {
    let started = Instant::now();
    let api = Api::<Endpoints>::namespaced(local.clone(), "default");
    loop {
        let addresses = api.get_opt(service).await?.map_or(0, |e| {
            e.subsets
                .iter()
                .flatten()
                .map(|s| s.addresses.as_ref().map_or(0, Vec::len))
                .sum()
        });
        if addresses == count {
            return Ok(started.elapsed());
        }
        if started.elapsed() > Duration::from_secs(120) {
            return Err(format!("{service}: {addresses} of {count} addresses after 120 s").into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

async fn latency() -> Result<(), Error> {
    let local = start("local").await?;
    let lc = local.client()?;
    let mut remotes = Vec::new();
    for i in 0..LATENCY_REMOTES {
        let server = start(&format!("remote-{i}")).await?;
        let rc = server.client()?;
        Api::<Service>::namespaced(rc.clone(), "default")
            .create(&PostParams::default(), &service("web", "web"))
            .await?;
        let ips: Vec<String> = (0..10).map(|e| format!("10.{i}.0.{e}")).collect();
        Api::<EndpointSlice>::namespaced(rc, "default")
            .create(&PostParams::default(), &slice("web-1", "web", &ips))
            .await?;
        remotes.push(server);
    }
    let fed: Service = serde_json::from_value(json!({
        "metadata": {"name": "web-fed", "namespace": "default",
                     "annotations": {"federation.tigera.io/serviceSelector": "app == \"web\""}},
        "spec": {"ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}
    }))?;
    Api::<Service>::namespaced(lc.clone(), "default")
        .create(&PostParams::default(), &fed)
        .await?;
    connect(&lc, &remotes).await?;
    let _controller = controller(lc.clone());
    let synced = wait_for_addresses(&lc, "web-fed", LATENCY_REMOTES * 10).await?;
    println!(
        "latency setup: {LATENCY_REMOTES} remotes in sync after {:.0} ms",
        synced.as_secs_f64() * 1e3
    );

    // One local watch on the federated slices; every change looks for its new address.
    let slices = Api::<EndpointSlice>::namespaced(lc.clone(), "default");
    let mut seen = watcher(
        slices,
        watcher::Config::default().labels("kubernetes.io/service-name=web-fed"),
    )
    .applied_objects()
    .boxed();
    let mut latencies = Vec::with_capacity(CHANGES);
    for change in 0..CHANGES {
        let remote = change % LATENCY_REMOTES;
        let rc = remotes[remote].client()?;
        let api = Api::<EndpointSlice>::namespaced(rc, "default");
        let mut current = api.get("web-1").await?;
        let new_ip = format!("10.{remote}.{}.{}", 1 + change / 250, change % 250);
        current.endpoints[0].addresses = vec![new_ip.clone()];
        api.replace("web-1", &PostParams::default(), &current)
            .await?;
        let acknowledged = Instant::now();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let next = tokio::time::timeout_at(deadline, seen.try_next()).await;
            let slice = match next {
                Ok(Ok(Some(slice))) => slice,
                Ok(Ok(None)) => return Err("the local watch ended".into()),
                Ok(Err(error)) => return Err(error.into()),
                Err(_) => {
                    return Err(format!(
                        "change {change}: no federated slice with {new_ip} within 10 s"
                    )
                    .into());
                }
            };
            if slice
                .endpoints
                .iter()
                .any(|e| e.addresses.contains(&new_ip))
            {
                latencies.push(acknowledged.elapsed());
                break;
            }
        }
    }
    latencies.sort();
    println!(
        "latency: {CHANGES} remote endpoint changes across {LATENCY_REMOTES} remotes -> local EndpointSlice written: \
         p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms (target p99 < 100 ms)",
        percentile(&latencies, 0.50).as_secs_f64() * 1e3,
        percentile(&latencies, 0.99).as_secs_f64() * 1e3,
        latencies.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
    );
    Ok(())
}

fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

/// The child process of the memory measurement: the local and remote API
/// servers, loaded with Istio's test shape and joined, until stdin closes.
async fn serve_memory_mesh(remotes_wanted: usize) -> Result<(), Error> {
    let local = start("local").await?;
    let lc = local.client()?;
    let per_service = SHAPE_ENDPOINTS.div_ceil(SHAPE_SERVICES);
    let mut remotes = Vec::new();
    let mut expected = 0;
    for i in 0..remotes_wanted {
        let server = start(&format!("remote-{i}")).await?;
        let rc = server.client()?;
        let services = Api::<Service>::namespaced(rc.clone(), "default");
        let slices = Api::<EndpointSlice>::namespaced(rc, "default");
        let mut made = 0;
        for s in 0..SHAPE_SERVICES {
            let name = format!("svc-{s}");
            services
                .create(&PostParams::default(), &service(&name, &name))
                .await?;
            let n = per_service.min(SHAPE_ENDPOINTS - made);
            let ips: Vec<String> = (0..n)
                .map(|e| format!("10.{i}.{}.{}", s / 10, (s % 10) * 20 + e))
                .collect();
            slices
                .create(
                    &PostParams::default(),
                    &slice(&format!("{name}-1"), &name, &ips),
                )
                .await?;
            made += n;
            if s == 0 {
                expected += n;
            }
        }
        remotes.push(server);
    }
    // One federated service, so the controller also writes.
    let fed: Service = serde_json::from_value(json!({
        "metadata": {"name": "svc-0-fed", "namespace": "default",
                     "annotations": {"federation.tigera.io/serviceSelector": "app == \"svc-0\""}},
        "spec": {"ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}
    }))?;
    Api::<Service>::namespaced(lc.clone(), "default")
        .create(&PostParams::default(), &fed)
        .await?;
    connect(&lc, &remotes).await?;
    println!("READY {expected} {}", local.kubeconfig_path().display());
    // Serve until the parent closes our stdin (or dies).
    tokio::task::spawn_blocking(|| {
        let mut sink = String::new();
        while std::io::stdin().read_line(&mut sink).is_ok_and(|n| n > 0) {}
    })
    .await?;
    Ok(())
}

/// Live heap and RSS growth of the controller from start to in sync.
struct Growth {
    live: usize,
    rss: u64,
    synced: Duration,
}

/// The controller alone in this process, against `remotes` remotes served by
/// a child process: its growth from start to in sync.
async fn memory_with(remotes: usize) -> Result<Growth, Error> {
    use std::io::BufRead;
    let mut child = std::process::Command::new(std::env::current_exe()?)
        .args(["--serve-memory-mesh", &remotes.to_string()])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()?;
    let stdout = child.stdout.take().ok_or("no child stdout")?;
    let line = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        std::io::BufReader::new(stdout)
            .read_line(&mut line)
            .map(|_| line)
    })
    .await??;
    let mut words = line
        .trim()
        .strip_prefix("READY ")
        .ok_or("the child did not start")?
        .splitn(2, ' ');
    let expected: usize = words.next().ok_or("no count")?.parse()?;
    let kubeconfig = kube::config::Kubeconfig::read_from(words.next().ok_or("no kubeconfig")?)?;
    let config = kube::Config::from_custom_kubeconfig(
        kubeconfig,
        &kube::config::KubeConfigOptions::default(),
    )
    .await?;
    let lc = kube::Client::try_from(config)?;

    tokio::time::sleep(Duration::from_millis(300)).await;
    let (rss_before, live_before) = (rss_bytes(), live_bytes());
    let _controller = controller(lc.clone());
    let synced = wait_for_addresses(&lc, "svc-0-fed", expected).await?;
    let rccs = Api::<DynamicObject>::all_with(lc.clone(), &remote::api_resource());
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let list = rccs.list(&ListParams::default()).await?;
        let in_sync = list
            .items
            .iter()
            .filter(|o| o.data.pointer("/status/state").and_then(|s| s.as_str()) == Some("InSync"))
            .count();
        if in_sync == remotes {
            break;
        }
        if Instant::now() > deadline {
            return Err(format!("{in_sync} of {remotes} remotes in sync after 60 s").into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let growth = Growth {
        live: live_bytes().saturating_sub(live_before),
        rss: rss_bytes().saturating_sub(rss_before),
        synced,
    };
    drop(child.stdin.take());
    let _ = child.wait();
    Ok(growth)
}

/// The controller's memory per remote: the growth with 4 remotes minus the
/// growth with 1, over 3, so fixed costs (runtime, TLS, the local watches)
/// do not count as per-remote ones.
async fn memory() -> Result<(), Error> {
    let one = memory_with(1).await?;
    let four = memory_with(4).await?;
    let mb = |bytes: f64| bytes / 1e6;
    println!(
        "memory: remotes of {SHAPE_SERVICES} services and {SHAPE_ENDPOINTS} endpoints; controller growth to in sync \
         with 1 remote: live heap {:.1} MB, RSS {:.1} MB ({:.0} ms); with 4: live heap {:.1} MB, RSS {:.1} MB \
         ({:.0} ms); per added remote: live heap {:.2} MB, RSS {:.2} MB (target < 5 MB; Istio: ~180 MB)",
        mb(one.live as f64),
        mb(one.rss as f64),
        one.synced.as_secs_f64() * 1e3,
        mb(four.live as f64),
        mb(four.rss as f64),
        four.synced.as_secs_f64() * 1e3,
        mb((four.live as f64 - one.live as f64) / 3.0),
        mb((four.rss as f64 - one.rss as f64) / 3.0),
    );
    Ok(())
}

fn main() -> Result<(), Error> {
    // `cargo test --benches`/`cargo bench -- --test` smoke-runs bench targets: keep that cheap.
    if std::env::args().any(|a| a == "--test") {
        println!("mesh bench: skipped under --test");
        return Ok(());
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let args: Vec<String> = std::env::args().collect();
    if let Some(at) = args.iter().position(|a| a == "--serve-memory-mesh") {
        let remotes = args.get(at + 1).and_then(|n| n.parse().ok()).unwrap_or(1);
        return runtime.block_on(serve_memory_mesh(remotes));
    }
    runtime.block_on(async {
        latency().await?;
        memory().await
    })
}
