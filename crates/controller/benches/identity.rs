//! Federated endpoint identity end to end, on loopback, with embedded API
//! servers: remote pods mirrored into the local cluster as Calico
//! NetworkSets (`crd.projectcalico.org/v1`, Calico's CRDs installed).
//!
//! 1. From scratch: the remotes hold their pods before the controller
//!    starts; timed from the controller's start to the last NetworkSet seen
//!    by a local watch.
//! 2. Latency: round-robin over the remotes, a pod's IP changes; timed from
//!    the remote's acknowledgement to the local watch event carrying the new
//!    `nets`. Target: p99 under 100 ms.
//! 3. Writes per pod change: the local NetworkSet events during phase 2, per
//!    change (each event is one write).
//! 4. Memory: the API servers in a child process, so that this process holds
//!    only the controller; its live heap growth (counting allocator) from its
//!    start to every NetworkSet written, per 10,000 remote endpoints, with
//!    IDENTITY_BENCH_MEMORY_REMOTES (2) remotes of IDENTITY_BENCH_PODS pods.
//!
//! Run: `cargo bench -p fedmesh-controller --bench identity`; scale with
//! IDENTITY_BENCH_REMOTES (10), IDENTITY_BENCH_PODS (pods per remote, 10000)
//! and IDENTITY_BENCH_CHANGES (1000).

#[allow(dead_code)]
mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::live_heap::{Counting, live_bytes};
use common::{Error, percentile};
use fedmesh_apiserver::testing::{TestServer, TestServerOptions};
use fedmesh_controller::mesh::remotes as remote;
use fedmesh_controller::{ControllerConfig, Metrics};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{Namespace, Pod, Secret};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams, PostParams};
use kube::runtime::watcher;
use serde_json::json;

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Namespaces per remote (the pods are spread over them).
const NAMESPACES: usize = 10;

fn knob(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn network_sets() -> ApiResource {
    ApiResource {
        group: "crd.projectcalico.org".into(),
        version: "v1".into(),
        api_version: "crd.projectcalico.org/v1".into(),
        kind: "NetworkSet".into(),
        plural: "networksets".into(),
    }
}

async fn start(name: &str) -> Result<TestServer, Error> {
    Ok(TestServer::start_with(TestServerOptions {
        name: name.into(),
        ..TestServerOptions::default()
    })
    .await?)
}

async fn namespaces(client: &kube::Client, extra: &[&str]) -> Result<(), Error> {
    let api = Api::<Namespace>::all(client.clone());
    let names = (0..NAMESPACES)
        .map(|n| format!("ns-{n}"))
        .chain(extra.iter().map(|s| s.to_string()));
    for name in names {
        let ns: Namespace =
            serde_json::from_value(json!({"metadata": {"name": name, "labels": {"team": "t"}}}))?;
        api.create(&PostParams::default(), &ns).await?;
    }
    Ok(())
}

/// A pod's IP: unique per remote and pod, alternating between two values
/// with `generation` (each timed change moves a pod that has not moved yet:
/// 7919 is prime, so the pods picked in a remote are all different).
fn ip(remote: usize, pod: usize, generation: usize) -> String {
    format!(
        "10.{}.{}.{}",
        remote * 2 + generation % 2,
        pod / 250,
        pod % 250
    )
}

/// Creates `pods` running pods spread over the namespaces of a remote.
async fn load_remote(client: &kube::Client, remote: usize, pods: usize) -> Result<(), Error> {
    futures::stream::iter(0..pods)
        .map(|p| {
            let client = client.clone();
            async move {
                let ns = format!("ns-{}", p % NAMESPACES);
                let api = Api::<Pod>::namespaced(client, &ns);
                let name = format!("pod-{p}");
                let pod: Pod = serde_json::from_value(json!({
                    "metadata": {"name": name, "namespace": ns,
                                 "labels": {"app": format!("app-{}", p % 50), "tier": "db", "version": "v1", "shard": format!("{}", p % 7)}},
                    "spec": {"containers": [{"name": "main", "image": "app:1"}], "serviceAccountName": "default", "nodeName": "node-1"}
                }))?;
                api.create(&PostParams::default(), &pod).await?;
                let address = ip(remote, p, 0);
                api.patch_status(
                    &name,
                    &PatchParams::default(),
                    &Patch::Merge(json!({"status": {"phase": "Running", "podIP": address, "podIPs": [{"ip": address}]}})),
                )
                .await?;
                Ok::<(), Error>(())
            }
        })
        .buffer_unordered(32)
        .try_collect::<()>()
        .await
}

async fn connect(local: &kube::Client, remotes: &[TestServer]) -> Result<(), Error> {
    let crds = Api::<CustomResourceDefinition>::all(local.clone());
    crds.create(&PostParams::default(), &remote::crd()?).await?;
    for file in [
        include_str!("../tests/data/calico/networksets.yaml"),
        include_str!("../tests/data/calico/globalnetworksets.yaml"),
    ] {
        let crd: CustomResourceDefinition = serde_saphyr::from_str(file)?;
        crds.create(&PostParams::default(), &crd).await?;
    }
    let rccs = Api::<DynamicObject>::all_with(local.clone(), &remote::api_resource());
    for (i, server) in remotes.iter().enumerate() {
        let secret = Secret {
            metadata: kube::api::ObjectMeta {
                name: Some(format!("remote-{i}-access")),
                ..Default::default()
            },
            data: Some(std::collections::BTreeMap::from([(
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

fn nets(object: &DynamicObject) -> Vec<String> {
    object.data["spec"]["nets"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|n| n.as_str().map(str::to_owned))
        .collect()
}

/// The local server (Calico's CRDs, namespaces) and `remotes` remotes of
/// `pods` pods each, connected by RemoteClusterConfigurations.
async fn build_mesh(
    remotes_wanted: usize,
    pods: usize,
) -> Result<(TestServer, Vec<TestServer>), Error> {
    let local = start("local").await?;
    let lc = local.client()?;
    namespaces(&lc, &["fedmesh"]).await?;
    let mut remotes = Vec::new();
    let loading = Instant::now();
    for i in 0..remotes_wanted {
        let server = start(&format!("remote-{i}")).await?;
        let rc = server.client()?;
        namespaces(&rc, &[]).await?;
        load_remote(&rc, i, pods).await?;
        remotes.push(server);
    }
    eprintln!(
        "setup: {remotes_wanted} remotes x {pods} pods loaded in {:.1} s",
        loading.elapsed().as_secs_f64()
    );
    connect(&lc, &remotes).await?;
    Ok((local, remotes))
}

fn controller(local: kube::Client) -> tokio::task::JoinHandle<()> {
    let mut config = ControllerConfig::new("fedmesh", "bench");
    config.renew_interval = Duration::from_millis(200);
    config.identity_outputs.calico = true;
    tokio::spawn(async move {
        if let Err(error) =
            fedmesh_controller::run(local, config, Metrics::new(), std::future::pending()).await
        {
            eprintln!("controller stopped: {error:#}");
        }
    })
}

async fn run() -> Result<(), Error> {
    let remotes_wanted = knob("IDENTITY_BENCH_REMOTES", 10);
    let pods = knob("IDENTITY_BENCH_PODS", 10_000);
    let changes = knob("IDENTITY_BENCH_CHANGES", 1_000);
    let (local, remotes) = build_mesh(remotes_wanted, pods).await?;
    let lc = local.client()?;

    // Every NetworkSet event, by name, from one local watch.
    let total = remotes_wanted * pods;
    let mut seen = watcher(
        Api::<DynamicObject>::all_with(lc.clone(), &network_sets()),
        watcher::Config::default(),
    )
    .boxed();
    let mut current: HashMap<String, Vec<String>> = HashMap::with_capacity(total);
    let started = Instant::now();
    let controller = controller(lc.clone());
    let mut events = 0usize;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(1800);
    while current.len() < total {
        let event = tokio::time::timeout_at(deadline, seen.try_next())
            .await
            .map_err(|_| format!("{} of {total} NetworkSets after 30 min", current.len()))??
            .ok_or("the local watch ended")?;
        if let watcher::Event::Apply(o) | watcher::Event::InitApply(o) = event {
            events += 1;
            current.insert(o.metadata.name.clone().unwrap_or_default(), nets(&o));
        }
    }
    let scratch = started.elapsed();
    println!(
        "from scratch: {total} NetworkSets written in {:.2} s ({:.0} per second, {events} events)",
        scratch.as_secs_f64(),
        total as f64 / scratch.as_secs_f64()
    );

    let mut latencies = Vec::with_capacity(changes);
    let mut writes = 0usize;
    for change in 0..changes {
        let r = change % remotes_wanted;
        let p = (change / remotes_wanted * 7919) % pods;
        let name = format!("pod-{p}");
        let ns = format!("ns-{}", p % NAMESPACES);
        let address = ip(r, p, 1);
        let want = vec![format!("{address}/32")];
        Api::<Pod>::namespaced(remotes[r].client()?, &ns)
            .patch_status(
                &name,
                &PatchParams::default(),
                &Patch::Merge(json!({"status": {"podIP": address, "podIPs": [{"ip": address}]}})),
            )
            .await?;
        let acknowledged = Instant::now();
        let set = format!("remote-{r}.{name}");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let event = tokio::time::timeout_at(deadline, seen.try_next())
                .await
                .map_err(|_| format!("change {change}: {set} not rewritten within 10 s"))??
                .ok_or("the local watch ended")?;
            if let watcher::Event::Apply(o) = event {
                writes += 1;
                let object_name = o.metadata.name.clone().unwrap_or_default();
                let object_nets = nets(&o);
                let done = object_name == set && object_nets == want;
                current.insert(object_name, object_nets);
                if done {
                    latencies.push(acknowledged.elapsed());
                    break;
                }
            }
        }
    }
    // Writes that land after their change was timed are counted too.
    tokio::time::sleep(Duration::from_millis(500)).await;
    while let Ok(Ok(Some(event))) =
        tokio::time::timeout(Duration::from_millis(50), seen.try_next()).await
    {
        if matches!(event, watcher::Event::Apply(_)) {
            writes += 1;
        }
    }
    latencies.sort();
    println!(
        "latency: {changes} remote pod IP changes across {remotes_wanted} remotes -> local NetworkSet written: \
         p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms (target p99 < 100 ms)",
        percentile(&latencies, 0.50).as_secs_f64() * 1e3,
        percentile(&latencies, 0.99).as_secs_f64() * 1e3,
        latencies.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
    );
    println!(
        "writes per pod change: {:.2} ({writes} NetworkSet writes for {changes} changes)",
        writes as f64 / changes.max(1) as f64
    );
    controller.abort();
    Ok(())
}

/// The child of the memory measurement: the servers, until stdin closes.
async fn serve(remotes: usize, pods: usize) -> Result<(), Error> {
    let (local, _remotes) = build_mesh(remotes, pods).await?;
    println!("READY {}", local.kubeconfig_path().display());
    tokio::task::spawn_blocking(|| {
        let mut sink = String::new();
        while std::io::stdin().read_line(&mut sink).is_ok_and(|n| n > 0) {}
    })
    .await?;
    Ok(())
}

/// The controller's live heap growth, alone in this process, from its start
/// to every NetworkSet written.
async fn memory() -> Result<(), Error> {
    use std::io::BufRead;
    let remotes = knob("IDENTITY_BENCH_MEMORY_REMOTES", 2);
    let pods = knob("IDENTITY_BENCH_PODS", 10_000);
    let mut child = std::process::Command::new(std::env::current_exe()?)
        .args(["--serve", &remotes.to_string(), &pods.to_string()])
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
    let path = line
        .trim()
        .strip_prefix("READY ")
        .ok_or("the child did not start")?;
    let config = kube::Config::from_custom_kubeconfig(
        kube::config::Kubeconfig::read_from(path)?,
        &kube::config::KubeConfigOptions::default(),
    )
    .await?;
    let lc = kube::Client::try_from(config)?;
    let sets = Api::<DynamicObject>::all_with(lc.clone(), &network_sets());
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = live_bytes();
    let started = Instant::now();
    let _controller = controller(lc);
    let total = remotes * pods;
    loop {
        let page = sets
            .list(&kube::api::ListParams::default().limit(1))
            .await?;
        let count = page.items.len() + page.metadata.remaining_item_count.unwrap_or(0) as usize;
        if count >= total {
            break;
        }
        if started.elapsed() > Duration::from_secs(1800) {
            return Err(format!("{count} of {total} NetworkSets after 30 min").into());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Let the writers take in the watch events of their last writes.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let growth = live_bytes().saturating_sub(before);
    println!(
        "memory: controller live heap growth to {total} mirrored endpoints ({remotes} remotes): {:.1} MB, \
         {:.2} MB per 10,000 remote endpoints",
        growth as f64 / 1e6,
        growth as f64 / 1e6 / (total as f64 / 10_000.0)
    );
    drop(child.stdin.take());
    let _ = child.wait();
    Ok(())
}

fn main() -> Result<(), Error> {
    // `cargo test --benches`/`cargo bench -- --test` smoke-runs bench targets:
    // keep that cheap, unless a scale is asked for.
    if std::env::args().any(|a| a == "--test") && std::env::var("IDENTITY_BENCH_PODS").is_err() {
        println!("identity bench: skipped under --test");
        return Ok(());
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let args: Vec<String> = std::env::args().collect();
    if let Some(at) = args.iter().position(|a| a == "--serve") {
        let number = |i: usize| args.get(at + i).and_then(|n| n.parse().ok()).unwrap_or(1);
        return runtime.block_on(serve(number(1), number(2)));
    }
    runtime.block_on(async {
        if std::env::var("IDENTITY_BENCH_ONLY_MEMORY").is_err() {
            run().await?;
        }
        memory().await
    })
}
