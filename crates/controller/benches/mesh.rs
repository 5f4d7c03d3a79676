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

#[allow(dead_code)]
mod common;

use std::time::{Duration, Instant};

use common::live_heap::{Counting, live_bytes};
use common::{Error, Mode, federated, percentile, service, slice};
use fedmesh_controller::Metrics;
use fedmesh_controller::mesh::remotes as remote;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{Endpoints, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, DynamicObject, ListParams, PostParams};
use kube::runtime::{WatchStreamExt, watcher};

const LATENCY_REMOTES: usize = 10;
const CHANGES: usize = 1_000;
const SHAPE_SERVICES: usize = 300;
const SHAPE_ENDPOINTS: usize = 4_000;

#[global_allocator]
static ALLOCATOR: Counting = Counting;

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

async fn latency() -> Result<(), Error> {
    let local = common::server("local").await?;
    let lc = local.client()?;
    let mut remotes = Vec::new();
    for i in 0..LATENCY_REMOTES {
        let server = common::server(&format!("remote-{i}")).await?;
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
    Api::<Service>::namespaced(lc.clone(), "default")
        .create(&PostParams::default(), &federated("web-fed", "web"))
        .await?;
    common::connect(&lc, &remotes, serde_json::Value::Null).await?;
    let _controller = common::controller(lc.clone(), common::config(), Metrics::new());
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

/// The child process of the memory measurement: the local and remote API
/// servers, loaded with Istio's test shape and joined, until stdin closes.
async fn serve_memory_mesh(remotes_wanted: usize) -> Result<(), Error> {
    let local = common::server("local").await?;
    let lc = local.client()?;
    let per_service = SHAPE_ENDPOINTS.div_ceil(SHAPE_SERVICES);
    let mut remotes = Vec::new();
    let mut expected = 0;
    for i in 0..remotes_wanted {
        let server = common::server(&format!("remote-{i}")).await?;
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
    Api::<Service>::namespaced(lc.clone(), "default")
        .create(&PostParams::default(), &federated("svc-0-fed", "svc-0"))
        .await?;
    common::connect(&lc, &remotes, serde_json::Value::Null).await?;
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
    let (rss_before, live_before) = (common::rss_bytes(None), live_bytes());
    let _controller = common::controller(lc.clone(), common::config(), Metrics::new());
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
        rss: common::rss_bytes(None).saturating_sub(rss_before),
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
    let runtime = common::runtime()?;
    let args: Vec<String> = std::env::args().collect();
    if let Some(at) = args.iter().position(|a| a == "--serve-memory-mesh") {
        let remotes = args.get(at + 1).and_then(|n| n.parse().ok()).unwrap_or(1);
        return runtime.block_on(serve_memory_mesh(remotes));
    }
    match common::mode() {
        Mode::List => return Ok(()),
        // `cargo test --benches` runs bench targets without `--bench`: keep that cheap.
        Mode::Check => {
            println!("mesh bench: skipped outside `cargo bench`");
            return Ok(());
        }
        Mode::Full => {}
    }
    runtime.block_on(async {
        latency().await?;
        memory().await
    })
}
