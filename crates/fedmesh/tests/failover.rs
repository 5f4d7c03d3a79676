//! The fault matrix's controller-process rows (docs/reliability.md): the
//! local cluster is a `fedmesh apiserver` process, the controller replicas
//! are `fedmesh controller` processes, and faults are real signals. Remote
//! clusters are embedded API servers: they are not what is faulted here.

#[path = "support/processes.rs"]
mod processes;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fedmesh_apiserver::testing::{TestServer, TestServerOptions};
use futures::StreamExt;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Endpoints, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{
    Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams,
};
use kube::{Resource, ResourceExt};
use processes::{BIN, LocalApi, Replica, Timings, within};
use serde_json::{Value, json};

/// The federated Service every test watches, in `default` of the local cluster.
const FEDERATED: &str = "fed";
/// What fedmesh labels the objects it writes with.
const MANAGED_BY: &str = "federation-controller.fedmesh.io";

/// One endpoint as the federated objects show it: address and `targetRef.name`.
type Endpoint = (String, String);

async fn remote(name: &str) -> TestServer {
    TestServer::start_with(TestServerOptions {
        name: name.into(),
        ..TestServerOptions::default()
    })
    .await
    .unwrap()
}

/// `fedmesh join`: the local cluster reads `remote` as `name`.
async fn join(local: &LocalApi, remote: &TestServer, name: &str) {
    let out = tokio::process::Command::new(BIN)
        .arg("join")
        .arg("--local")
        .arg(local.kubeconfig())
        .arg("--remote")
        .arg(remote.kubeconfig_path())
        .args(["--name", name])
        .output();
    let out = tokio::time::timeout(Duration::from_secs(60), out)
        .await
        .expect("join finishes within 60 s")
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The federated Service in the local cluster: it selects `run == "app"`.
async fn federate(local: &kube::Client) {
    let service: Service = serde_json::from_value(json!({
        "metadata": {"name": FEDERATED, "namespace": "default",
                     "annotations": {"federation.tigera.io/serviceSelector": "run == \"app\""}},
        "spec": {"ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]}
    }))
    .unwrap();
    Api::<Service>::namespaced(local.clone(), "default")
        .create(&PostParams::default(), &service)
        .await
        .unwrap();
}

/// A backing Service `name` in a remote, selected by the federated one or not.
fn backing_service(name: &str, selected: bool) -> Service {
    serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": "default",
                     "labels": {"run": if selected { "app" } else { "other" }}},
        "spec": {"ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}
    }))
    .unwrap()
}

/// The endpoints of an EndpointSlice: `(ip, pod)` pairs, all ready.
fn endpoints_json(endpoints: &[(String, String)]) -> Value {
    endpoints
        .iter()
        .map(|(ip, pod)| {
            json!({"addresses": [ip], "conditions": {"ready": true},
                   "targetRef": {"kind": "Pod", "name": pod, "namespace": "default"}})
        })
        .collect()
}

fn backing_slice(name: &str, service: &str, endpoints: &[(String, String)]) -> EndpointSlice {
    serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": "default",
                     "labels": {"kubernetes.io/service-name": service,
                                "endpointslice.kubernetes.io/managed-by": "test"}},
        "addressType": "IPv4",
        "ports": [{"name": "http", "port": 80, "protocol": "TCP"}],
        "endpoints": endpoints_json(endpoints),
    }))
    .unwrap()
}

/// Sets the endpoints of slice `name` (a merge patch replaces the list).
async fn set_endpoints(cluster: &kube::Client, name: &str, endpoints: &[(String, String)]) {
    Api::<EndpointSlice>::namespaced(cluster.clone(), "default")
        .patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({"endpoints": endpoints_json(endpoints)})),
        )
        .await
        .unwrap();
}

fn pod(ip: &str) -> (String, String) {
    (ip.to_owned(), format!("pod-{}", ip.replace('.', "-")))
}

/// What the federated objects should hold for `pods` of remote `cluster`.
fn federated_view(cluster: &str, pods: &[(String, String)]) -> Vec<Endpoint> {
    let mut view: Vec<Endpoint> = pods
        .iter()
        .map(|(ip, pod)| (ip.clone(), format!("{cluster}/{pod}")))
        .collect();
    view.sort();
    view
}

/// The federated Endpoints' and EndpointSlices' endpoints (each sorted,
/// duplicates kept), and how many of those slices are empty.
async fn federated(local: &kube::Client) -> kube::Result<(Vec<Endpoint>, Vec<Endpoint>, usize)> {
    let target = |address: Option<String>, name: Option<String>| {
        (address.unwrap_or_default(), name.unwrap_or_default())
    };
    let mut from_endpoints: Vec<Endpoint> = Api::<Endpoints>::namespaced(local.clone(), "default")
        .get_opt(FEDERATED)
        .await?
        .and_then(|e| e.subsets)
        .into_iter()
        .flatten()
        .flat_map(|s| {
            let mut all = s.addresses.unwrap_or_default();
            all.extend(s.not_ready_addresses.unwrap_or_default());
            all
        })
        .map(|a| target(Some(a.ip), a.target_ref.and_then(|t| t.name)))
        .collect();
    from_endpoints.sort();
    let slices = Api::<EndpointSlice>::namespaced(local.clone(), "default")
        .list(&ListParams::default().labels(&format!(
            "kubernetes.io/service-name={FEDERATED},endpointslice.kubernetes.io/managed-by={MANAGED_BY}"
        )))
        .await?;
    let empty = slices
        .items
        .iter()
        .filter(|s| s.endpoints.is_empty())
        .count();
    let mut from_slices: Vec<Endpoint> = slices
        .items
        .into_iter()
        .flat_map(|s| s.endpoints)
        .flat_map(|e| {
            let name = e.target_ref.and_then(|t| t.name);
            e.addresses
                .into_iter()
                .map(move |a| target(Some(a), name.clone()))
        })
        .collect();
    from_slices.sort();
    Ok((from_endpoints, from_slices, empty))
}

/// Waits (at most `limit`) until the federated Endpoints and EndpointSlices
/// hold exactly `expected` (sorted), no endpoint twice and no empty slice;
/// Err with what they held last.
async fn settle(
    local: &kube::Client,
    expected: &[Endpoint],
    limit: Duration,
) -> Result<Duration, String> {
    let start = Instant::now();
    loop {
        let last = match federated(local).await {
            Ok((endpoints, slices, empty))
                if endpoints == expected && slices == expected && empty == 0 =>
            {
                return Ok(start.elapsed());
            }
            Ok(seen) => format!("{seen:?}"),
            Err(error) => error.to_string(),
        };
        if start.elapsed() >= limit {
            return Err(format!(
                "after {limit:?}: expected {expected:?}, (Endpoints, EndpointSlices, empty slices) were {last}"
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A mesh of the local cluster and one remote `east` backing the federated
/// service with the slice `east-app` holding `pods`.
struct Mesh {
    local: LocalApi,
    client: kube::Client,
    east: TestServer,
}

impl Mesh {
    async fn start(pods: &[(String, String)]) -> Self {
        let local = LocalApi::start().await;
        let client = local.client().await;
        let east = remote("east").await;
        join(&local, &east, "east").await;
        let remote = east.client().unwrap();
        Api::<Service>::namespaced(remote.clone(), "default")
            .create(&PostParams::default(), &backing_service("app", true))
            .await
            .unwrap();
        Api::<EndpointSlice>::namespaced(remote, "default")
            .create(
                &PostParams::default(),
                &backing_slice("east-app", "app", pods),
            )
            .await
            .unwrap();
        federate(&client).await;
        Self {
            local,
            client,
            east,
        }
    }

    /// Makes east's slice hold `pods`.
    async fn set_east(&self, pods: &[(String, String)]) {
        set_endpoints(&self.east.client().unwrap(), "east-app", pods).await;
    }

    /// Waits until the federated objects show exactly east's `pods`.
    async fn expect_east(&self, pods: &[(String, String)], limit: Duration, logs: &[&Replica]) {
        if let Err(why) = settle(&self.client, &federated_view("east", pods), limit).await {
            panic!("{why}\n{}", logs_of(logs));
        }
    }

    fn replica(&self, name: &str, timings: Timings) -> Replica {
        Replica::start(&self.local.kubeconfig(), self.local.dir(), name, timings)
    }
}

fn logs_of(replicas: &[&Replica]) -> String {
    replicas
        .iter()
        .map(|r| format!("--- {} ---\n{}", r.name, r.log()))
        .collect()
}

/// Waits until `replica` reports leading (at most `limit`); the time it took.
async fn leads(replica: &Replica, limit: Duration) -> Duration {
    let start = Instant::now();
    within(limit, || (replica.leading() == Some(true)).then_some(()))
        .await
        .unwrap_or_else(|| {
            panic!(
                "{} did not lead within {limit:?}\n{}",
                replica.name,
                replica.log()
            )
        });
    start.elapsed()
}

/// Waits until `replica` serves metrics and is a standby (not leading).
async fn stands_by(replica: &Replica) {
    within(Duration::from_secs(30), || {
        (replica.leading() == Some(false)).then_some(())
    })
    .await
    .unwrap_or_else(|| panic!("{} did not stand by\n{}", replica.name, replica.log()));
}

/// The Lease's holder now.
async fn holder(local: &kube::Client) -> Option<String> {
    Api::<Lease>::namespaced(local.clone(), "fedmesh")
        .get_opt("fedmesh-controller")
        .await
        .unwrap()
        .and_then(|l| l.spec)
        .and_then(|s| s.holder_identity)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_sigkilled_the_standby_takes_over_within_the_lease_and_keeps_following() {
    let timings = Timings::SHORT;
    let mesh = Mesh::start(&[pod("10.1.0.1")]).await;
    let mut a = mesh.replica("replica-a", timings);
    leads(&a, Duration::from_secs(30)).await;
    mesh.expect_east(&[pod("10.1.0.1")], Duration::from_secs(15), &[&a])
        .await;
    let mut b = mesh.replica("replica-b", timings);
    stands_by(&b).await;

    a.process().kill();
    let took = leads(&b, Duration::from_secs(15)).await;
    // The standby waits until the Lease has been unchanged for its duration
    // (the dead leader's last renewal is at most one renew interval old), and
    // looks every retry interval; a second covers scheduling on a loaded machine.
    let bound = timings.lease + Timings::RETRY + Duration::from_secs(1);
    assert!(
        took <= bound,
        "took over after {took:?}, more than {bound:?}"
    );
    assert!(
        took >= timings.lease - timings.renew_interval - Duration::from_millis(500),
        "took over after {took:?}, before the Lease could have expired"
    );
    assert_eq!(holder(&mesh.client).await.as_deref(), Some("replica-b"));

    // The new leader follows the remote: an endpoint added, then one removed.
    let both = [pod("10.1.0.1"), pod("10.1.0.2")];
    mesh.set_east(&both).await;
    mesh.expect_east(&both, Duration::from_secs(10), &[&b])
        .await;
    mesh.set_east(&[pod("10.1.0.2")]).await;
    mesh.expect_east(&[pod("10.1.0.2")], Duration::from_secs(10), &[&b])
        .await;
    let endpoints = Api::<Endpoints>::namespaced(mesh.client.clone(), "default")
        .get(FEDERATED)
        .await
        .unwrap();
    assert_eq!(
        newest_manager(&endpoints).as_deref(),
        Some(b.manager().as_str()),
        "the last write is the new leader's: {:?}",
        endpoints.managed_fields()
    );
    b.process().kill();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_stopped_cleanly_releases_the_lease_and_the_successor_leads_within_a_second() {
    // The default 15 s Lease: a successor within 1 s can only come from the release.
    let timings = Timings::DEFAULT;
    let mesh = Mesh::start(&[pod("10.2.0.1")]).await;
    let mut a = mesh.replica("replica-a", timings);
    leads(&a, Duration::from_secs(30)).await;
    mesh.expect_east(&[pod("10.2.0.1")], Duration::from_secs(15), &[&a])
        .await;
    let b = mesh.replica("replica-b", timings);
    stands_by(&b).await;

    let term = Instant::now();
    a.process().signal("TERM");
    let status = a
        .process()
        .wait_exit(Duration::from_secs(10))
        .unwrap_or_else(|| panic!("still running 10 s after SIGTERM\n{}", a.log()));
    let stopped = Instant::now();
    assert!(status.success(), "{status}\n{}", a.log());
    assert!(
        a.log().contains("released the controller Lease"),
        "{}",
        a.log()
    );
    let took = leads(&b, Duration::from_secs(5)).await;
    assert!(
        took <= Duration::from_secs(1),
        "the successor led {took:?} after the leader exited ({:?} after SIGTERM)",
        stopped.duration_since(term)
    );
    assert_eq!(holder(&mesh.client).await.as_deref(), Some("replica-b"));
    let both = [pod("10.2.0.1"), pod("10.2.0.2")];
    mesh.set_east(&both).await;
    mesh.expect_east(&both, Duration::from_secs(10), &[&b])
        .await;
}

/// The manager of `object`'s newest fedmesh write (managedFields times are
/// whole seconds: a tie is None).
fn newest_manager<K: Resource>(object: &K) -> Option<String> {
    let entries = object.meta().managed_fields.clone().unwrap_or_default();
    let newest = entries.iter().filter_map(|e| e.time.clone()).max()?;
    let mut at_newest = entries
        .iter()
        .filter(|e| e.time.as_ref() == Some(&newest))
        .filter_map(|e| e.manager.clone());
    let first = at_newest.next()?;
    at_newest.next().is_none().then_some(first)
}

/// One object version seen by a [`Recorder`]: its global resourceVersion,
/// what it is, and its managedFields (manager, time, fields) or Lease holder.
#[derive(Debug, Clone)]
struct Seen {
    revision: u64,
    object: String,
    event: &'static str,
    managers: BTreeMap<String, (String, String)>,
    holder: Option<String>,
}

/// Watches the federated Endpoints and EndpointSlices and the controller
/// Lease of the local cluster, keeping every version in order. The API
/// server's resourceVersions are one counter across kinds (etcd's
/// revisions), so writes and Lease changes can be put in one order.
struct Recorder {
    seen: Arc<Mutex<Vec<Seen>>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Recorder {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl Recorder {
    async fn start(local: &kube::Client) -> Self {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let endpoints = format!("fedmesh.io/managed-by={MANAGED_BY}");
        let slices = format!("kubernetes.io/service-name={FEDERATED}");
        let tasks = vec![
            Self::watch(
                Api::<Endpoints>::namespaced(local.clone(), "default"),
                endpoints,
                seen.clone(),
            )
            .await,
            Self::watch(
                Api::<EndpointSlice>::namespaced(local.clone(), "default"),
                slices,
                seen.clone(),
            )
            .await,
            Self::watch(
                Api::<Lease>::namespaced(local.clone(), "fedmesh"),
                String::new(),
                seen.clone(),
            )
            .await,
        ];
        Self { seen, tasks }
    }

    /// Lists (recording the versions present) and then watches from there.
    async fn watch<K>(
        api: Api<K>,
        labels: String,
        seen: Arc<Mutex<Vec<Seen>>>,
    ) -> tokio::task::JoinHandle<()>
    where
        K: Resource<DynamicType = ()> + Clone + std::fmt::Debug + serde::de::DeserializeOwned,
        K: serde::Serialize + Send + Sync + 'static,
    {
        let list = api
            .list(&ListParams::default().labels(&labels))
            .await
            .unwrap();
        for object in &list.items {
            seen.lock().unwrap().push(Self::version(object, "Present"));
        }
        let from = list.metadata.resource_version.unwrap_or_default();
        tokio::spawn(async move {
            let params = WatchParams::default().labels(&labels).timeout(290);
            let mut stream = api.watch(&params, &from).await.unwrap().boxed();
            while let Some(event) = stream.next().await {
                let (object, kind) = match event.unwrap() {
                    WatchEvent::Added(o) => (o, "Added"),
                    WatchEvent::Modified(o) => (o, "Modified"),
                    WatchEvent::Deleted(o) => (o, "Deleted"),
                    WatchEvent::Bookmark(_) => continue,
                    WatchEvent::Error(e) => panic!("the recorder's watch failed: {e}"),
                };
                seen.lock().unwrap().push(Self::version(&object, kind));
            }
        })
    }

    fn version<K: Resource<DynamicType = ()> + serde::Serialize>(
        object: &K,
        event: &'static str,
    ) -> Seen {
        let meta = object.meta();
        let managers = meta
            .managed_fields
            .iter()
            .flatten()
            .filter_map(|e| {
                let time = e.time.as_ref().map(|t| t.0.to_string()).unwrap_or_default();
                let fields = serde_json::to_string(&e.fields_v1).unwrap_or_default();
                Some((e.manager.clone()?, (time, fields)))
            })
            .collect();
        let holder = serde_json::to_value(object).ok().and_then(|v| {
            v.pointer("/spec/holderIdentity")
                .and_then(Value::as_str)
                .map(str::to_owned)
        });
        Seen {
            revision: meta
                .resource_version
                .as_deref()
                .and_then(|v| v.parse().ok())
                .unwrap_or(0),
            object: format!("{}/{}", K::kind(&()), meta.name.clone().unwrap_or_default()),
            event,
            managers,
            holder,
        }
    }

    /// Every write to the federated objects in revision order: its author
    /// (the field manager whose entry the write created or re-stamped) and
    /// the Lease holder at that revision. Deletions carry no author.
    fn writes(&self) -> Vec<Write> {
        let mut seen = self.seen.lock().unwrap().clone();
        seen.sort_by_key(|s| s.revision);
        let mut holder: Option<String> = None;
        let mut last: HashMap<String, BTreeMap<String, (String, String)>> = HashMap::new();
        let mut writes = Vec::new();
        for version in seen {
            if version.object.starts_with("Lease/") {
                if version.object == "Lease/fedmesh-controller" {
                    holder = version.holder;
                }
                continue;
            }
            let before = last.remove(&version.object);
            match version.event {
                "Present" => {
                    last.insert(version.object, version.managers);
                }
                "Deleted" => writes.push(Write {
                    revision: version.revision,
                    object: version.object,
                    author: None,
                    holder: holder.clone(),
                }),
                _ => {
                    let author = author(before.as_ref(), &version.managers);
                    writes.push(Write {
                        revision: version.revision,
                        object: version.object.clone(),
                        author: Some(author),
                        holder: holder.clone(),
                    });
                    last.insert(version.object, version.managers);
                }
            }
        }
        writes
    }
}

/// One write to a federated object, as the [`Recorder`] saw it.
#[derive(Debug)]
struct Write {
    revision: u64,
    object: String,
    /// The field manager that made it (`Err` if managedFields cannot tell);
    /// None for a deletion.
    author: Option<Result<String, String>>,
    /// Who held the Lease when the write was stored.
    holder: Option<String>,
}

/// Who made the write from `before` to `after` (managedFields by manager):
/// an Update stamps its own manager's entry with the time and the fields it
/// set, and only takes fields away from the others. If no entry was stamped
/// anew (the same manager writing the same fields within the same second),
/// the author is the one manager stamped in the newest second.
fn author(
    before: Option<&BTreeMap<String, (String, String)>>,
    after: &BTreeMap<String, (String, String)>,
) -> Result<String, String> {
    let stamped: Vec<&String> = after
        .iter()
        .filter(|(manager, (time, _))| {
            before
                .and_then(|b| b.get(*manager))
                .is_none_or(|(old_time, _)| old_time != time)
        })
        .map(|(manager, _)| manager)
        .collect();
    if let [one] = stamped.as_slice() {
        return Ok((*one).clone());
    }
    let newest = after.values().map(|(time, _)| time).max();
    let at_newest: Vec<&String> = after
        .iter()
        .filter(|(_, (time, _))| Some(time) == newest)
        .map(|(m, _)| m)
        .collect();
    match at_newest.as_slice() {
        [one] if stamped.is_empty() => Ok((*one).clone()),
        _ => Err(format!(
            "ambiguous: {stamped:?} stamped, {at_newest:?} newest in {after:?}"
        )),
    }
}

/// Samples both replicas' `fedmesh_leader` every 50 ms on its own thread;
/// keeps the samples where both said 1.
struct LeaderSampler {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<(usize, Vec<String>)>>,
}

impl LeaderSampler {
    fn start(a: &Replica, b: &Replica) -> Self {
        let (a, b) = ((a.name.clone(), a.metrics), (b.name.clone(), b.metrics));
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = std::thread::spawn(move || {
            let (mut samples, mut both) = (0, Vec::new());
            let scrape = |addr| {
                processes::http_get(addr, "/metrics", Duration::from_millis(300)).and_then(
                    |(_, body)| {
                        body.lines()
                            .find_map(|l| l.strip_prefix("fedmesh_leader "))
                            .map(|v| v.trim() == "1")
                    },
                )
            };
            // Bounded: the test stops it within a couple of minutes.
            for _ in 0..6_000 {
                if stopping.load(Ordering::Relaxed) {
                    break;
                }
                let start = Instant::now();
                let first = scrape(a.1);
                let second = scrape(b.1);
                // Two answers taken within the Lease's margin (lease minus
                // renew deadline) cannot both be 1 if claims never overlap.
                if start.elapsed() < Duration::from_millis(500) {
                    samples += 1;
                    if first == Some(true) && second == Some(true) {
                        both.push(format!("{} and {} both led at once", a.0, b.0));
                    }
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            (samples, both)
        });
        Self {
            stop,
            thread: Some(thread),
        }
    }

    fn finish(mut self) -> (usize, Vec<String>) {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().unwrap().join().unwrap()
    }
}

impl Drop for LeaderSampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_leader_never_writes_once_its_claim_ran_out() {
    let timings = Timings::SHORT;
    let stopped_for = timings.lease + Duration::from_secs(1);
    let mesh = Mesh::start(&[pod("10.3.0.1")]).await;
    let mut a = mesh.replica("replica-a", timings);
    leads(&a, Duration::from_secs(30)).await;
    mesh.expect_east(&[pod("10.3.0.1")], Duration::from_secs(15), &[&a])
        .await;
    let mut b = mesh.replica("replica-b", timings);
    stands_by(&b).await;
    let recorder = Recorder::start(&mesh.client).await;
    let sampler = LeaderSampler::start(&a, &b);

    // A frozen: B takes over and writes what east changed meanwhile.
    a.process().signal("STOP");
    let a_frozen = Instant::now();
    let two = [pod("10.3.0.1"), pod("10.3.0.2")];
    mesh.set_east(&two).await;
    leads(&b, Duration::from_secs(10)).await;
    mesh.expect_east(&two, Duration::from_secs(10), &[&a, &b])
        .await;
    tokio::time::sleep(stopped_for.saturating_sub(a_frozen.elapsed())).await;

    // A thawed as B freezes, and east changes at once: A's claim ran out
    // while it was frozen, B's Lease looks fresh to A, so A must not write
    // until it has taken the Lease over (a Lease duration later).
    b.process().signal("STOP");
    a.process().signal("CONT");
    let b_frozen = Instant::now();
    let three = [pod("10.3.0.2"), pod("10.3.0.3")];
    mesh.set_east(&three).await;
    mesh.expect_east(&three, Duration::from_secs(15), &[&a, &b])
        .await;
    assert_eq!(holder(&mesh.client).await.as_deref(), Some("replica-a"));
    tokio::time::sleep(stopped_for.saturating_sub(b_frozen.elapsed())).await;

    // B thawed: its claim ran out too; A goes on writing alone.
    b.process().signal("CONT");
    let four = [pod("10.3.0.2"), pod("10.3.0.3"), pod("10.3.0.4")];
    mesh.set_east(&four).await;
    mesh.expect_east(&four, Duration::from_secs(10), &[&a, &b])
        .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (samples, both) = sampler.finish();
    let writes = recorder.writes();

    assert!(samples > 20, "only {samples} leadership samples");
    assert!(both.is_empty(), "{both:?}");
    let by_holder: Vec<String> = writes
        .iter()
        .filter_map(|w| {
            let author = w.author.as_ref()?;
            let holder = w
                .holder
                .as_deref()
                .map(|h| format!("fedmesh-controller/{h}"));
            match author {
                Ok(author) if Some(author) == holder.as_ref() => None,
                _ => Some(format!(
                    "revision {} of {}: by {author:?} while {:?} held the Lease",
                    w.revision, w.object, w.holder
                )),
            }
        })
        .collect();
    assert!(
        by_holder.is_empty(),
        "writes not by the Lease holder of the moment:\n{}\nall writes:\n{writes:#?}\n{}",
        by_holder.join("\n"),
        logs_of(&[&a, &b])
    );
    // Authors in order, runs collapsed: B while A was frozen, then A again,
    // and never the two interleaved.
    let mut runs: Vec<&str> = Vec::new();
    for w in &writes {
        if let Some(Ok(author)) = &w.author
            && runs.last() != Some(&author.as_str())
        {
            runs.push(author);
        }
    }
    assert_eq!(
        runs,
        [b.manager().as_str(), a.manager().as_str()],
        "authors in order: {writes:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_api_server_down_makes_the_controller_unready_and_it_recovers() {
    let timings = Timings::SHORT;
    let mut mesh = Mesh::start(&[pod("10.4.0.1")]).await;
    let a = mesh.replica("replica-a", timings);
    leads(&a, Duration::from_secs(30)).await;
    mesh.expect_east(&[pod("10.4.0.1")], Duration::from_secs(15), &[&a])
        .await;
    within(Duration::from_secs(10), || {
        a.readyz().filter(|(code, _)| *code == 200)
    })
    .await
    .unwrap_or_else(|| panic!("never ready: {:?}\n{}", a.readyz(), a.log()));

    mesh.local.kill();
    let down = Instant::now();
    // Two failed probes (interval + timeout each) make it unready.
    let limit = (timings.probe * 2) * 2 + Duration::from_secs(2);
    // Its watches of the local cluster fail first ("not listed yet"); two
    // failed probes later the reason names the API server.
    let (code, why) = within(limit, || {
        a.readyz()
            .filter(|(code, why)| *code != 200 && why.contains("does not answer"))
    })
    .await
    .unwrap_or_else(|| {
        panic!(
            "not unready for the API server {limit:?} after it died: {:?}\n{}",
            a.readyz(),
            a.log()
        )
    });
    assert_eq!(code, 503);
    assert!(
        why.starts_with("the local API server does not answer"),
        "the reason: {why}"
    );
    let two = [pod("10.4.0.1"), pod("10.4.0.2")];
    mesh.set_east(&two).await;
    tokio::time::sleep(Duration::from_secs(5).saturating_sub(down.elapsed())).await;
    assert_eq!(
        a.readyz().map(|(code, _)| code),
        Some(503),
        "unready while down"
    );

    mesh.local.restart().await;
    within(Duration::from_secs(15), || {
        a.readyz().filter(|(code, _)| *code == 200)
    })
    .await
    .unwrap_or_else(|| panic!("not ready again: {:?}\n{}", a.readyz(), a.log()));
    mesh.expect_east(&two, Duration::from_secs(10), &[&a]).await;
    // And it goes on following.
    mesh.set_east(&[pod("10.4.0.2")]).await;
    mesh.expect_east(&[pod("10.4.0.2")], Duration::from_secs(10), &[&a])
        .await;
}

/// SplitMix64: a seeded generator, so a failing churn run can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// What one remote holds, as the churn made it: Services (exists, selected)
/// and EndpointSlices (service, endpoints).
#[derive(Default)]
struct RemoteModel {
    services: BTreeMap<String, bool>,
    slices: BTreeMap<String, (String, Vec<(String, String)>)>,
}

const SERVICES: [&str; 3] = ["svc-0", "svc-1", "svc-2"];

/// The churn test's three remotes, their model, and fresh addresses.
struct Churn {
    names: [&'static str; 3],
    clients: Vec<kube::Client>,
    models: Vec<RemoteModel>,
    next_address: u32,
}

impl Churn {
    fn fresh_endpoints(&mut self, remote: usize, count: u64) -> Vec<(String, String)> {
        (0..count)
            .map(|_| {
                self.next_address += 1;
                let n = self.next_address;
                pod(&format!("10.{}.{}.{}", 50 + remote, n / 250, n % 250 + 1))
            })
            .collect()
    }

    /// What the federated objects must hold for the remotes as they are.
    fn expected(&self) -> Vec<Endpoint> {
        let mut all: Vec<Endpoint> = Vec::new();
        for (name, model) in self.names.iter().zip(&self.models) {
            for (service, endpoints) in model.slices.values() {
                if model.services.get(service) == Some(&true) {
                    all.extend(federated_view(name, endpoints));
                }
            }
        }
        all.sort();
        all
    }

    /// One random change in one remote.
    async fn step(&mut self, rng: &mut Rng) {
        let remote = rng.below(3) as usize;
        let client = self.clients[remote].clone();
        let services = Api::<Service>::namespaced(client.clone(), "default");
        let slices = Api::<EndpointSlice>::namespaced(client.clone(), "default");
        let pick_slice = |rng: &mut Rng, model: &RemoteModel| {
            let names: Vec<&String> = model.slices.keys().collect();
            (!names.is_empty()).then(|| names[rng.below(names.len() as u64) as usize].clone())
        };
        match rng.below(6) {
            0 | 1 if self.models[remote].slices.len() < 5 => {
                let service = SERVICES[rng.below(3) as usize].to_owned();
                let count = 1 + rng.below(3);
                let endpoints = self.fresh_endpoints(remote, count);
                let name = format!("slice-{}", self.next_address);
                slices
                    .create(
                        &PostParams::default(),
                        &backing_slice(&name, &service, &endpoints),
                    )
                    .await
                    .unwrap();
                self.models[remote]
                    .slices
                    .insert(name, (service, endpoints));
            }
            0..=2 => {
                if let Some(name) = pick_slice(rng, &self.models[remote]) {
                    slices
                        .delete(&name, &DeleteParams::default())
                        .await
                        .unwrap();
                    self.models[remote].slices.remove(&name);
                }
            }
            3 => {
                if let Some(name) = pick_slice(rng, &self.models[remote]) {
                    let count = rng.below(4);
                    let endpoints = self.fresh_endpoints(remote, count);
                    set_endpoints(&client, &name, &endpoints).await;
                    if let Some(slice) = self.models[remote].slices.get_mut(&name) {
                        slice.1 = endpoints;
                    }
                }
            }
            4 => {
                let service = SERVICES[rng.below(3) as usize];
                let model = &mut self.models[remote];
                if model.services.remove(service).is_some() {
                    services
                        .delete(service, &DeleteParams::default())
                        .await
                        .unwrap();
                } else {
                    services
                        .create(&PostParams::default(), &backing_service(service, true))
                        .await
                        .unwrap();
                    model.services.insert(service.into(), true);
                }
            }
            _ => {
                let service = SERVICES[rng.below(3) as usize];
                if let Some(selected) = self.models[remote].services.get_mut(service) {
                    *selected = !*selected;
                    let run = if *selected { "app" } else { "other" };
                    services
                        .patch(
                            service,
                            &PatchParams::default(),
                            &Patch::Merge(json!({"metadata": {"labels": {"run": run}}})),
                        )
                        .await
                        .unwrap();
                }
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn controller_sigkilled_at_random_during_churn_in_three_remotes_converges_every_time() {
    const ROUNDS: usize = 50;
    let seed = std::env::var("FEDMESH_CHURN_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    println!("churn seed {seed} (replay with FEDMESH_CHURN_SEED={seed})");
    let mut rng = Rng(seed);

    let local = LocalApi::start().await;
    let client = local.client().await;
    let names = ["east", "west", "north"];
    let mut remotes = Vec::new();
    for name in names {
        let server = remote(name).await;
        join(&local, &server, name).await;
        remotes.push(server);
    }
    let mut churn = Churn {
        names,
        clients: remotes.iter().map(|r| r.client().unwrap()).collect(),
        models: (0..3).map(|_| RemoteModel::default()).collect(),
        next_address: 0,
    };
    for remote in 0..3 {
        let client = churn.clients[remote].clone();
        for service in SERVICES {
            Api::<Service>::namespaced(client.clone(), "default")
                .create(&PostParams::default(), &backing_service(service, true))
                .await
                .unwrap();
            churn.models[remote].services.insert(service.into(), true);
            let endpoints = churn.fresh_endpoints(remote, 2);
            let name = format!("slice-{}", churn.next_address);
            Api::<EndpointSlice>::namespaced(client.clone(), "default")
                .create(
                    &PostParams::default(),
                    &backing_slice(&name, service, &endpoints),
                )
                .await
                .unwrap();
            churn.models[remote]
                .slices
                .insert(name, (service.into(), endpoints));
        }
    }
    federate(&client).await;
    let mut controller = Replica::start(&local.kubeconfig(), local.dir(), "churn", Timings::SHORT);
    if let Err(why) = settle(&client, &churn.expected(), Duration::from_secs(30)).await {
        panic!("seed {seed}: the first sync: {why}\n{}", controller.log());
    }

    let started = Instant::now();
    let mut settles = Vec::new();
    for round in 0..ROUNDS {
        let churn_for = Duration::from_millis(100 + rng.below(400));
        let kill_at = Duration::from_millis(rng.below(churn_for.as_millis() as u64));
        let begun = Instant::now();
        let mut killed = false;
        // Bounded: at most 200 changes a round.
        for _ in 0..200 {
            if begun.elapsed() >= churn_for {
                break;
            }
            if !killed && begun.elapsed() >= kill_at {
                controller.process().kill();
                controller.restart();
                killed = true;
            }
            churn.step(&mut rng).await;
            tokio::time::sleep(Duration::from_millis(rng.below(20))).await;
        }
        if !killed {
            controller.process().kill();
            controller.restart();
        }
        match settle(&client, &churn.expected(), Duration::from_secs(20)).await {
            Ok(took) => settles.push(took),
            Err(why) => panic!("seed {seed}, round {round}: {why}\n{}", controller.log()),
        }
    }
    settles.sort();
    println!(
        "{ROUNDS} rounds in {:?}; settle after the churn: median {:?}, max {:?}",
        started.elapsed(),
        settles[settles.len() / 2],
        settles[settles.len() - 1]
    );
}
