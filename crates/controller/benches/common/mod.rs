//! Set-up shared by the controller's bench binaries: embedded API servers on
//! loopback, a mesh joined as `fedmesh join` would, the controller, and
//! independent observers (watches on the local cluster, the API server's
//! request counters) that time and count what the controller does.
//!
//! Each bench uses a part of this module, so what one leaves unused is not
//! dead code (hence the `allow` where it is included).

pub mod live_heap;

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use fedmesh_apiserver::testing::{TestServer, TestServerOptions};
use fedmesh_controller::mesh::remotes as remote;
use fedmesh_controller::{ControllerConfig, Metrics};
use fedmesh_core::mesh::{ENDPOINTS_MANAGED_BY_LABEL, MANAGED_BY, MANAGED_BY_LABEL};
use futures::StreamExt;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{Endpoints, Namespace, Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DynamicObject, PostParams};
use kube::runtime::watcher;
use serde_json::json;
use tokio::sync::watch;

/// Errors of a bench: reported, never recovered from.
pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// How the binary was started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `cargo bench`: the full workload.
    Full,
    /// `cargo test --benches` (or `-- --test`): a few seconds' smoke run.
    Check,
    /// A test runner asking for the list of tests (`--list`): there are none.
    List,
}

/// The mode from the command line: `cargo bench` passes `--bench`; a test
/// runner runs the binary without it, or asks for `--list`.
pub fn mode() -> Mode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let has = |flag: &str| args.iter().any(|a| a == flag);
    if has("--list") {
        Mode::List
    } else if has("--bench") && !has("--test") {
        Mode::Full
    } else {
        Mode::Check
    }
}

/// A multi-threaded runtime for a bench.
pub fn runtime() -> Result<tokio::runtime::Runtime, Error> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

/// Prints where and when the figures were taken, for `docs/benchmarks.md`.
pub fn print_machine(bench: &str) {
    let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
    let cpu = read("/proc/cpuinfo")
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|l| l.trim_start_matches([' ', '\t', ':']).to_owned())
        .unwrap_or_default();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let commit = std::process::Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    let date = std::process::Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    println!(
        "{bench}: {date}, commit {commit}, {cores} cores ({cpu}), load average {}",
        load_average()
    );
}

/// The 1, 5 and 15 minute load averages.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// An embedded API server (TLS, in memory) named `name`.
pub async fn server(name: &str) -> Result<TestServer, Error> {
    Ok(TestServer::start_with(TestServerOptions {
        name: name.into(),
        ..TestServerOptions::default()
    })
    .await?)
}

/// A Service `name` selecting pods labelled `app`, labelled `app` itself.
pub fn service(name: &str, app: &str) -> Service {
    serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": "default", "labels": {"app": app}},
        "spec": {"selector": {"app": app}, "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}
    }))
    .unwrap_or_default()
}

/// A federated Service `name` backed by the Services labelled `app`.
pub fn federated(name: &str, app: &str) -> Service {
    serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": "default",
                     "annotations": {"federation.tigera.io/serviceSelector": format!("app == \"{app}\"")}},
        "spec": {"ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}
    }))
    .unwrap_or_default()
}

/// A backing EndpointSlice `name` of `service` with one ready endpoint per address.
pub fn slice(name: &str, service: &str, ips: &[String]) -> EndpointSlice {
    serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": "default", "labels": {"kubernetes.io/service-name": service}},
        "addressType": "IPv4",
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
        "endpoints": ips.iter().map(|ip| endpoint(service, ip)).collect::<Vec<_>>()
    }))
    .unwrap_or_default()
}

/// One ready endpoint at `ip`, its pod named after the address.
pub fn endpoint(service: &str, ip: &str) -> serde_json::Value {
    json!({
        "addresses": [ip],
        "conditions": {"ready": true},
        "nodeName": "node-1",
        "targetRef": {"kind": "Pod", "namespace": "default", "name": format!("{service}-{ip}"), "uid": format!("uid-{ip}")}
    })
}

/// Joins `remotes` to `local` as `fedmesh join` does: the CRD, a Secret with
/// each remote's kubeconfig and a RemoteClusterConfiguration `remote-<i>`
/// with the `unreachable` policy (`null`: the default).
pub async fn connect(
    local: &kube::Client,
    remotes: &[TestServer],
    unreachable: serde_json::Value,
) -> Result<(), Error> {
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
            "spec": {
                "clusterAccessSecret": {"name": format!("remote-{i}-access"), "namespace": "fedmesh"},
                "unreachable": unreachable
            }
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

/// The controller's settings in the benches: the defaults, with a Lease
/// renewed often so the first writes are not held back.
pub fn config() -> ControllerConfig {
    let mut config = ControllerConfig::new("fedmesh", "bench");
    config.renew_interval = Duration::from_millis(200);
    config
}

/// A task aborted when dropped.
pub struct Task(tokio::task::JoinHandle<()>);

impl Drop for Task {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Spawns `future` as a [`Task`].
pub fn spawn(future: impl std::future::Future<Output = ()> + Send + 'static) -> Task {
    Task(tokio::spawn(future))
}

/// Runs the controller in this process against `local` until dropped.
pub fn controller(local: kube::Client, config: ControllerConfig, metrics: Metrics) -> Task {
    spawn(async move {
        if let Err(error) =
            fedmesh_controller::run(local, config, metrics, std::future::pending()).await
        {
            eprintln!("controller stopped: {error:#}");
        }
    })
}

/// What a RemoteClusterConfiguration's status says, as the bench reads it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RccStatus {
    /// `InSync`, `ConnectionFailed`, ...
    pub state: String,
    /// The reason of the condition that holds.
    pub reason: String,
    /// Endpoints the status counts.
    pub endpoints: u64,
    /// Whether the remote's endpoints are withdrawn.
    pub withdrawn: bool,
}

/// Every RemoteClusterConfiguration's status, by name, as a local watch
/// delivers it, with the moment the watch event arrived.
pub struct Rccs {
    rx: watch::Receiver<(Instant, BTreeMap<String, RccStatus>)>,
    _task: Task,
}

/// Watches the RemoteClusterConfigurations of `local`.
pub fn watch_rccs(local: &kube::Client) -> Rccs {
    let api = Api::<DynamicObject>::all_with(local.clone(), &remote::api_resource());
    let (tx, rx) = watch::channel((Instant::now(), BTreeMap::new()));
    let task = spawn(async move {
        let mut events = std::pin::pin!(watcher(api, watcher::Config::default()));
        while let Some(event) = events.next().await {
            let (object, gone) = match event {
                Ok(watcher::Event::Apply(o) | watcher::Event::InitApply(o)) => (o, false),
                Ok(watcher::Event::Delete(o)) => (o, true),
                _ => continue,
            };
            let status = |p: &str| object.data.pointer(&format!("/status/{p}")).cloned();
            let read = RccStatus {
                state: status("state")
                    .and_then(|s| s.as_str().map(str::to_owned))
                    .unwrap_or_default(),
                reason: object
                    .data
                    .pointer("/status/conditions")
                    .and_then(|c| c.as_array())
                    .and_then(|c| c.iter().find(|c| c["status"] == "True"))
                    .and_then(|c| c["reason"].as_str().map(str::to_owned))
                    .unwrap_or_default(),
                endpoints: status("syncedEndpoints")
                    .and_then(|e| e.as_u64())
                    .unwrap_or_default(),
                withdrawn: status("endpointsWithdrawn")
                    .and_then(|w| w.as_bool())
                    .unwrap_or_default(),
            };
            let name = object.metadata.name.unwrap_or_default();
            tx.send_modify(|(at, all)| {
                *at = Instant::now();
                if gone {
                    all.remove(&name);
                } else {
                    all.insert(name, read);
                }
            });
        }
    });
    Rccs { rx, _task: task }
}

impl Rccs {
    /// Waits until `check` holds for the statuses, for at most `limit`; gives
    /// the moment the event that made it hold arrived.
    pub async fn until(
        &mut self,
        what: &str,
        limit: Duration,
        check: impl Fn(&BTreeMap<String, RccStatus>) -> bool,
    ) -> Result<Instant, Error> {
        until(&mut self.rx, what, limit, |(at, all)| {
            check(all).then_some(*at)
        })
        .await
    }

    /// The status of `name` now.
    pub fn get(&self, name: &str) -> Option<RccStatus> {
        self.rx.borrow().1.get(name).cloned()
    }
}

/// Waits until `check` gives `Some` for the value in `rx`, for at most `limit`.
async fn until<T, R>(
    rx: &mut watch::Receiver<T>,
    what: &str,
    limit: Duration,
    check: impl Fn(&T) -> Option<R>,
) -> Result<R, Error> {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(found) = check(&rx.borrow_and_update()) {
            return Ok(found);
        }
        match tokio::time::timeout_at(deadline, rx.changed()).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => return Err(format!("{what}: the watch ended").into()),
            Err(_) => return Err(format!("{what}: not within {} s", limit.as_secs_f64()).into()),
        }
    }
}

/// What the local watches show of one federated Service's objects.
#[derive(Debug, Clone, Default)]
pub struct FederatedState {
    /// When the last watch event arrived.
    pub at: Option<Instant>,
    /// Federated EndpointSlices.
    pub slices: usize,
    /// Endpoints across them.
    pub slice_endpoints: usize,
    /// Addresses in the federated Endpoints object.
    pub addresses: usize,
    /// Objects whose content changed (created, changed or deleted), counted
    /// per watch event that shows a difference in what fedmesh owns.
    pub changes: u64,
}

/// Called with every federated EndpointSlice a watch event carries, and when
/// that event arrived.
pub type SliceHook = Box<dyn FnMut(&EndpointSlice, Instant) + Send>;

/// The federated EndpointSlices and Endpoints of one federated Service, as
/// local watches deliver them.
pub struct Federated {
    rx: watch::Receiver<FederatedState>,
    _task: Task,
}

/// Watches what fedmesh writes for the federated Service `service` in `local`.
pub fn watch_federated(
    local: &kube::Client,
    service: &str,
    mut hook: Option<SliceHook>,
) -> Federated {
    let slices = watcher(
        Api::<EndpointSlice>::namespaced(local.clone(), "default"),
        watcher::Config::default().labels(&format!(
            "kubernetes.io/service-name={service},{MANAGED_BY_LABEL}={MANAGED_BY}"
        )),
    )
    .map(Seen::Slice);
    let endpoints = watcher(
        Api::<Endpoints>::namespaced(local.clone(), "default"),
        watcher::Config::default().labels(&format!("{ENDPOINTS_MANAGED_BY_LABEL}={MANAGED_BY}")),
    )
    .map(Seen::Endpoints);
    let service = service.to_owned();
    let (tx, rx) = watch::channel(FederatedState::default());
    let task = spawn(async move {
        let mut seen = std::pin::pin!(futures::stream::select(slices, endpoints));
        // Per slice: (endpoints, what fedmesh owns of it).
        let mut known: HashMap<String, (usize, String)> = HashMap::new();
        let mut endpoints_known: Option<(usize, String)> = None;
        while let Some(item) = seen.next().await {
            let at = Instant::now();
            let mut changes = 0;
            match item {
                Seen::Slice(Ok(watcher::Event::Apply(s) | watcher::Event::InitApply(s))) => {
                    if let Some(hook) = &mut hook {
                        hook(&s, at);
                    }
                    let owned = serde_json::to_string(&(&s.endpoints, &s.ports, &s.address_type))
                        .unwrap_or_default();
                    let name = s.metadata.name.clone().unwrap_or_default();
                    let entry = (s.endpoints.len(), owned);
                    if known.get(&name) != Some(&entry) {
                        changes += 1;
                        known.insert(name, entry);
                    }
                }
                Seen::Slice(Ok(watcher::Event::Delete(s))) => {
                    if known.remove(&s.metadata.name.unwrap_or_default()).is_some() {
                        changes += 1;
                    }
                }
                Seen::Endpoints(Ok(watcher::Event::Apply(e) | watcher::Event::InitApply(e)))
                    if e.metadata.name.as_deref() == Some(service.as_str()) =>
                {
                    let addresses = e
                        .subsets
                        .iter()
                        .flatten()
                        .map(|s| s.addresses.as_ref().map_or(0, Vec::len))
                        .sum();
                    let entry = (
                        addresses,
                        serde_json::to_string(&e.subsets).unwrap_or_default(),
                    );
                    if endpoints_known.as_ref() != Some(&entry) {
                        changes += 1;
                        endpoints_known = Some(entry);
                    }
                }
                Seen::Endpoints(Ok(watcher::Event::Delete(e)))
                    if e.metadata.name.as_deref() == Some(service.as_str()) =>
                {
                    if endpoints_known.take().is_some() {
                        changes += 1;
                    }
                }
                _ => continue,
            }
            tx.send_modify(|state| {
                state.at = Some(at);
                state.slices = known.len();
                state.slice_endpoints = known.values().map(|(n, _)| n).sum();
                state.addresses = endpoints_known.as_ref().map_or(0, |(n, _)| *n);
                state.changes += changes;
            });
        }
    });
    Federated { rx, _task: task }
}

enum Seen {
    Slice(Result<watcher::Event<EndpointSlice>, watcher::Error>),
    Endpoints(Result<watcher::Event<Endpoints>, watcher::Error>),
}

impl Federated {
    /// What the watches show now.
    pub fn now(&self) -> FederatedState {
        self.rx.borrow().clone()
    }

    /// Waits until `check` holds, for at most `limit`; gives the state then
    /// (its `at` is when the event that made it hold arrived).
    pub async fn until(
        &mut self,
        what: &str,
        limit: Duration,
        check: impl Fn(&FederatedState) -> bool,
    ) -> Result<FederatedState, Error> {
        until(&mut self.rx, what, limit, |s| check(s).then(|| s.clone())).await
    }

    /// Waits until nothing has changed for `quiet` (at most `limit`).
    pub async fn quiet(&mut self, quiet: Duration, limit: Duration) -> FederatedState {
        let deadline = tokio::time::Instant::now() + limit;
        while tokio::time::timeout(quiet, self.rx.changed())
            .await
            .is_ok_and(|r| r.is_ok())
            && tokio::time::Instant::now() < deadline
        {}
        self.now()
    }
}

/// Calls to the Endpoints and EndpointSlice resources, as an API server
/// counted them (`apiserver_request_total`): every verb that reads or writes
/// one object (watches and lists are not per object).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Calls {
    /// Answered with 2xx.
    pub ok: u64,
    /// Answered otherwise (409, 404, 500, ...).
    pub failed: u64,
}

impl std::ops::Sub for Calls {
    type Output = Calls;
    fn sub(self, before: Calls) -> Calls {
        Calls {
            ok: self.ok - before.ok,
            failed: self.failed - before.failed,
        }
    }
}

impl Calls {
    /// Every call.
    pub fn total(self) -> u64 {
        self.ok + self.failed
    }
}

/// The calls `server` has counted so far to Endpoints and EndpointSlices.
pub async fn api_calls(server: &kube::Client) -> Result<Calls, Error> {
    let request = http::Request::get("/metrics").body(Vec::new())?;
    let text = server.request_text(request).await?;
    let mut calls = Calls::default();
    for line in text
        .lines()
        .filter(|l| l.starts_with("apiserver_request_total{"))
    {
        let label = |name: &str| {
            let start = line.find(&format!("{name}=\""))? + name.len() + 2;
            line[start..].split('"').next()
        };
        let resource = matches!(label("resource"), Some("endpoints" | "endpointslices"));
        let verb = matches!(
            label("verb"),
            Some("GET" | "POST" | "PUT" | "PATCH" | "APPLY" | "DELETE")
        );
        if !(resource && verb) {
            continue;
        }
        let n: u64 = line
            .rsplit(' ')
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        if label("code").is_some_and(|c| c.starts_with('2')) {
            calls.ok += n;
        } else {
            calls.failed += n;
        }
    }
    Ok(calls)
}

/// The controller's own count of its writes to Endpoints and EndpointSlices
/// (`fedmesh_writes_total`): successful writes and failed attempts.
pub fn controller_writes(metrics: &Metrics) -> Calls {
    let mut calls = Calls::default();
    for line in metrics
        .encode()
        .lines()
        .filter(|l| l.starts_with("fedmesh_writes_total{"))
    {
        let n: u64 = line
            .rsplit(' ')
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        if line.contains("result=\"ok\"") {
            calls.ok += n;
        } else {
            calls.failed += n;
        }
    }
    calls
}

/// The value at quantile `q` of sorted `values` (nearest rank).
pub fn percentile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

/// Milliseconds, for tables.
pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// The resident memory of process `pid` (this one for `None`), in bytes.
pub fn rss_bytes(pid: Option<u32>) -> u64 {
    let path = match pid {
        Some(pid) => format!("/proc/{pid}/status"),
        None => "/proc/self/status".into(),
    };
    std::fs::read_to_string(path)
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

/// A small deterministic generator (xorshift64*), so runs repeat.
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed` (not 0).
    pub fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }

    /// A number below `n` (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 33) as usize % n.max(1)
    }
}
