//! The federation control plane end to end, on loopback: a federation API
//! server and 13 member API servers (the seed's example) served by a child
//! process, the federation controller alone in this process.
//!
//! The federation holds 1,000 Services, each with an external IP (so every
//! shard has an address and its health follows its endpoints). 12 members
//! are joined first; then:
//!
//! 1. Propagation: the 13th member is joined; the time from creating its
//!    Cluster to the member holding all 1,000 copies. Target: < 2 s.
//! 2. Memory: the controller's live heap growth from before the 13th member
//!    to it holding every copy, i.e. one member's cost (and the growth from
//!    the controller's start to 12 members, for scale).
//! 3. Health latency: 200 times an EndpointSlice with a ready endpoint is
//!    created in a member (its shard turns Healthy) and deleted again (it
//!    turns NoReadyEndpoints), timed from the member API server's answer to
//!    the federation watch event carrying the flipped shard. Target: p99 <
//!    100 ms.
//! 4. Offline detection: 5 times a member is killed (and, separately, hung)
//!    in the child, timed from the order to the Cluster's `Ready=False`.
//!    Target: < 3 s.
//!
//! Run: `cargo bench -p fedmesh-controller --bench federation`

#[allow(dead_code)]
mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::time::{Duration, Instant};

use common::live_heap::{Counting, live_bytes};
use common::{Error, ms, percentile, rss_bytes};
use fedmesh_apiserver::testing::{TestServer, TestServerOptions};
use fedmesh_controller::Metrics;
use fedmesh_controller::federation::{self, FederationOptions};
use fedmesh_core::federation::{FederationName, Scope};
use futures::StreamExt;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{Namespace, Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::json;

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const MEMBERS: usize = 13;
const SERVICES: usize = 1_000;
const CHANGES: usize = 200;
const OUTAGES: usize = 5;

fn member_name(i: usize) -> String {
    format!("member-{i:02}")
}

async fn client_of(path: &str) -> Result<kube::Client, Error> {
    let kubeconfig = kube::config::Kubeconfig::read_from(path)?;
    let config = kube::Config::from_custom_kubeconfig(
        kubeconfig,
        &kube::config::KubeConfigOptions::default(),
    )
    .await?;
    Ok(kube::Client::try_from(config)?)
}

/// The child process: the federation API server with the CRD, the 1,000
/// Services and every member's Secret; 13 member API servers. Prints the
/// kubeconfig paths, then obeys `kill N`, `restart N`, `hang N`, `heal N`
/// on stdin until it closes.
async fn serve() -> Result<(), Error> {
    let start = |name: String| {
        TestServer::start_with(TestServerOptions {
            name,
            ..TestServerOptions::default()
        })
    };
    let federation = start("federation".into()).await?;
    let fc = federation.client()?;
    Api::<CustomResourceDefinition>::all(fc.clone())
        .create(&PostParams::default(), &federation::crd()?)
        .await?;
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": "fedmesh"}}))?;
    Api::<Namespace>::all(fc.clone())
        .create(&PostParams::default(), &ns)
        .await?;
    let services = Api::<Service>::namespaced(fc.clone(), "default");
    for i in 0..SERVICES {
        let service: Service = serde_json::from_value(json!({
            "metadata": {"name": format!("svc-{i}"), "namespace": "default"},
            "spec": {
                "externalIPs": [format!("203.0.{}.{}", i / 250, i % 250 + 1)],
                "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]
            }
        }))?;
        services.create(&PostParams::default(), &service).await?;
    }
    let mut members = Vec::new();
    for i in 0..MEMBERS {
        let server = start(member_name(i)).await?;
        let secret = Secret {
            metadata: kube::api::ObjectMeta {
                name: Some(format!("{}-member", member_name(i))),
                ..Default::default()
            },
            data: Some(BTreeMap::from([(
                "kubeconfig".to_string(),
                ByteString(std::fs::read(server.kubeconfig_path())?),
            )])),
            ..Secret::default()
        };
        Api::<Secret>::namespaced(fc.clone(), "fedmesh")
            .create(&PostParams::default(), &secret)
            .await?;
        members.push(server);
    }
    let paths: Vec<String> = std::iter::once(&federation)
        .chain(&members)
        .map(|s| s.kubeconfig_path().display().to_string())
        .collect();
    println!("READY {}", paths.join(" "));
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::task::spawn_blocking(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    while let Some(line) = rx.recv().await {
        let mut words = line.split_whitespace();
        let (Some(verb), Some(Ok(n))) = (words.next(), words.next().map(str::parse::<usize>))
        else {
            continue;
        };
        let Some(member) = members.get_mut(n) else {
            continue;
        };
        match verb {
            "kill" => member.kill(),
            "restart" => member.restart().await?,
            "hang" => member.hang(),
            "heal" => member.heal(),
            _ => {}
        }
        println!("DONE {verb} {n}");
    }
    Ok(())
}

/// The child and what it serves.
struct Servers {
    child: std::process::Child,
    lines: std::io::Lines<std::io::BufReader<std::process::ChildStdout>>,
    federation: kube::Client,
    members: Vec<kube::Client>,
}

impl Servers {
    async fn start() -> Result<Self, Error> {
        let mut child = std::process::Command::new(std::env::current_exe()?)
            .arg("--serve-federation")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()?;
        let stdout = child.stdout.take().ok_or("no child stdout")?;
        let mut lines = std::io::BufReader::new(stdout).lines();
        let line = lines.next().ok_or("the child ended")??;
        let paths: Vec<String> = line
            .strip_prefix("READY ")
            .ok_or("the child did not start")?
            .split(' ')
            .map(str::to_owned)
            .collect();
        let federation = client_of(&paths[0]).await?;
        let mut members = Vec::new();
        for path in &paths[1..] {
            members.push(client_of(path).await?);
        }
        Ok(Self {
            child,
            lines,
            federation,
            members,
        })
    }

    /// Orders the child to `verb` member `n`, returning once it did.
    fn order(&mut self, verb: &str, n: usize) -> Result<(), Error> {
        let stdin = self.child.stdin.as_mut().ok_or("no child stdin")?;
        writeln!(stdin, "{verb} {n}")?;
        stdin.flush()?;
        let done = self.lines.next().ok_or("the child ended")??;
        if done != format!("DONE {verb} {n}") {
            return Err(format!("the child said {done:?}").into());
        }
        Ok(())
    }
}

impl Drop for Servers {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}

async fn join(federation: &kube::Client, i: usize) -> Result<(), Error> {
    let cluster: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "federation.fedmesh.io/v1alpha1", "kind": "Cluster",
        "metadata": {"name": member_name(i)},
        "spec": {"server": "https://placeholder", "secretRef": {"name": format!("{}-member", member_name(i))}}
    }))?;
    // The member's server is the one in its kubeconfig.
    let secret = Api::<Secret>::namespaced(federation.clone(), "fedmesh")
        .get(&format!("{}-member", member_name(i)))
        .await?;
    let kubeconfig = secret
        .data
        .as_ref()
        .and_then(|d| d.get("kubeconfig"))
        .ok_or("no kubeconfig")?;
    let parsed = kube::config::Kubeconfig::from_yaml(std::str::from_utf8(&kubeconfig.0)?)?;
    let server = parsed
        .clusters
        .first()
        .and_then(|c| c.cluster.as_ref())
        .and_then(|c| c.server.clone())
        .ok_or("no server")?;
    let mut cluster = cluster;
    cluster.data["spec"]["server"] = json!(server);
    let api = Api::<DynamicObject>::all_with(federation.clone(), &federation::api_resource());
    let deadline = Instant::now() + Duration::from_secs(10);
    while let Err(error) = api.create(&PostParams::default(), &cluster).await {
        if Instant::now() > deadline {
            return Err(error.into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

/// Waits until `member` holds all the copies; gives the time it took.
async fn wait_for_copies(member: &kube::Client) -> Result<Duration, Error> {
    let started = Instant::now();
    let api = Api::<Service>::namespaced(member.clone(), "default");
    let params = ListParams::default().labels("federation.fedmesh.io/federation=bench");
    loop {
        let copies = api.list_metadata(&params).await?.items.len();
        if copies == SERVICES {
            return Ok(started.elapsed());
        }
        if started.elapsed() > Duration::from_secs(300) {
            return Err(format!("{copies} of {SERVICES} copies after 300 s").into());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn controller(federation: kube::Client) -> tokio::task::JoinHandle<()> {
    let mut config = federation::controller_config("fedmesh", "bench");
    config.renew_interval = Duration::from_millis(200);
    let options = FederationOptions {
        name: FederationName::new("bench").expect("a valid name"),
        scope: Scope::Everything,
    };
    tokio::spawn(async move {
        if let Err(error) = federation::run(
            federation,
            config,
            options,
            Metrics::new(),
            std::future::pending(),
        )
        .await
        {
            eprintln!("controller stopped: {error:#}");
        }
    })
}

/// The health member `cluster`'s shard shows in a federated Service.
fn shard_health(service: &Service, cluster: &str) -> Option<String> {
    let shards = service
        .metadata
        .annotations
        .as_ref()?
        .get("federation.fedmesh.io/shards")?;
    let shards: Vec<serde_json::Value> = serde_json::from_str(shards).ok()?;
    shards
        .iter()
        .find(|s| s["cluster"] == cluster)
        .and_then(|s| s["health"].as_str().map(str::to_owned))
}

async fn health_latency(servers: &Servers) -> Result<Vec<Duration>, Error> {
    let cluster = member_name(0);
    let member = &servers.members[0];
    let slices = Api::<EndpointSlice>::namespaced(member.clone(), "default");
    let api = Api::<Service>::namespaced(servers.federation.clone(), "default");
    let mut events = std::pin::pin!(watcher(api, watcher::Config::default()).applied_objects());
    let mut latencies = Vec::with_capacity(2 * CHANGES);
    for i in 0..CHANGES {
        let name = format!("svc-{i}");
        let slice: EndpointSlice = serde_json::from_value(json!({
            "metadata": {"name": format!("{name}-bench"), "namespace": "default",
                         "labels": {"kubernetes.io/service-name": name}},
            "addressType": "IPv4",
            "ports": [{"name": "http", "port": 80, "protocol": "TCP"}],
            "endpoints": [{"addresses": [format!("10.0.{}.{}", i / 250, i % 250 + 1)], "conditions": {"ready": true}}]
        }))?;
        for (healthy, wanted) in [(true, "Healthy"), (false, "NoReadyEndpoints")] {
            if healthy {
                slices.create(&PostParams::default(), &slice).await?;
            } else {
                slices
                    .delete(&format!("{name}-bench"), &DeleteParams::default())
                    .await?;
            }
            let acknowledged = Instant::now();
            let deadline = acknowledged + Duration::from_secs(10);
            loop {
                let event = tokio::time::timeout_at(deadline.into(), events.next())
                    .await
                    .map_err(|_| format!("{name}: no {wanted} shard within 10 s"))?
                    .ok_or("the watch ended")??;
                if event.metadata.name.as_deref() == Some(name.as_str())
                    && shard_health(&event, &cluster).as_deref() == Some(wanted)
                {
                    latencies.push(acknowledged.elapsed());
                    break;
                }
            }
        }
    }
    latencies.sort();
    Ok(latencies)
}

/// The Ready condition's status of Cluster `name`.
async fn ready(federation: &kube::Client, name: &str) -> Option<String> {
    let api = Api::<DynamicObject>::all_with(federation.clone(), &federation::api_resource());
    let cluster = api.get(name).await.ok()?;
    cluster.data["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == "Ready")
        .and_then(|c| c["status"].as_str().map(str::to_owned))
}

async fn wait_ready(
    federation: &kube::Client,
    name: &str,
    wanted: &str,
) -> Result<Duration, Error> {
    let started = Instant::now();
    while ready(federation, name).await.as_deref() != Some(wanted) {
        if started.elapsed() > Duration::from_secs(60) {
            return Err(format!("{name} not Ready={wanted} after 60 s").into());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok(started.elapsed())
}

/// Times `OUTAGES` outages of the last member made by `fault`, undone by `undo`.
async fn outages(servers: &mut Servers, fault: &str, undo: &str) -> Result<Vec<Duration>, Error> {
    let n = MEMBERS - 1;
    let name = member_name(n);
    let mut detected = Vec::new();
    for _ in 0..OUTAGES {
        wait_ready(&servers.federation, &name, "True").await?;
        let ordered = Instant::now();
        servers.order(fault, n)?;
        wait_ready(&servers.federation, &name, "False").await?;
        detected.push(ordered.elapsed());
        servers.order(undo, n)?;
    }
    wait_ready(&servers.federation, &name, "True").await?;
    detected.sort();
    Ok(detected)
}

async fn run() -> Result<(), Error> {
    let mut servers = Servers::start().await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (live_start, rss_start) = (live_bytes(), rss_bytes(None));
    let started = Instant::now();
    let _controller = controller(servers.federation.clone());
    for i in 0..MEMBERS - 1 {
        join(&servers.federation, i).await?;
    }
    for member in &servers.members[..MEMBERS - 1] {
        wait_for_copies(member).await?;
    }
    let twelve = started.elapsed();
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    let (live_twelve, rss_twelve) = (live_bytes(), rss_bytes(None));

    join(&servers.federation, MEMBERS - 1).await?;
    let propagated = wait_for_copies(&servers.members[MEMBERS - 1]).await?;
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    let (live_thirteen, rss_thirteen) = (live_bytes(), rss_bytes(None));
    let mb = |bytes: f64| bytes / 1e6;
    println!(
        "propagation: {SERVICES} federated Services to {} members from the controller's start: {:.0} ms; \
         to a 13th member joined then: {:.0} ms (target < 2,000 ms)",
        MEMBERS - 1,
        ms(twelve),
        ms(propagated),
    );
    println!(
        "memory: controller growth from start to {} members in sync: live heap {:.1} MB, RSS {:.1} MB; \
         the 13th member: live heap {:.2} MB, RSS {:.2} MB",
        MEMBERS - 1,
        mb(live_twelve.saturating_sub(live_start) as f64),
        mb(rss_twelve.saturating_sub(rss_start) as f64),
        mb(live_thirteen as f64 - live_twelve as f64),
        mb(rss_thirteen as f64 - rss_twelve as f64),
    );

    let latencies = health_latency(&servers).await?;
    println!(
        "health: member endpoint change → shard health in the federated Service ({} changes): \
         p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms (target p99 < 100 ms)",
        latencies.len(),
        ms(percentile(&latencies, 0.5)),
        ms(percentile(&latencies, 0.99)),
        ms(latencies.last().copied().unwrap_or_default()),
    );

    for (fault, undo) in [("kill", "restart"), ("hang", "heal")] {
        let detected = outages(&mut servers, fault, undo).await?;
        println!(
            "offline: member {fault} → Cluster Ready=False ({OUTAGES} times): min {:.0} ms, median {:.0} ms, \
             max {:.0} ms (target < 3,000 ms)",
            ms(detected[0]),
            ms(percentile(&detected, 0.5)),
            ms(detected[detected.len() - 1]),
        );
    }
    Ok(())
}

fn main() -> Result<(), Error> {
    // `cargo test --benches`/`cargo bench -- --test` smoke-runs bench targets: keep that cheap.
    if std::env::args().any(|a| a == "--test") {
        println!("federation bench: skipped under --test");
        return Ok(());
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    if std::env::args().any(|a| a == "--serve-federation") {
        return runtime.block_on(serve());
    }
    runtime.block_on(run())
}
