//! API calls per changed federated object, and settle time (issue 9, defect 4).
//!
//! A local and a remote embedded API server on loopback, the controller in
//! this process, and a federated Service `web-fed` in the local cluster
//! selecting `app == "web"`. Once the remote is in sync, a backing Service
//! `web` of 5,000 and then (on a fresh mesh) 10,000 endpoints is created in
//! the remote, in EndpointSlices of 100 (Kubernetes' cap). Then, on the
//! 5,000-endpoint mesh, endpoints are added and removed at random for a
//! while (churn).
//!
//! Counted: the local API server's own count of calls to Endpoints and
//! EndpointSlices (every verb that reads or writes one object; the bench
//! itself only watches the local cluster), split into answered 2xx and
//! failed, and the controller's `fedmesh_writes_total` beside it; divided by
//! the federated objects whose content changed, as local watches saw them.
//! Timed: from the first create in the remote to the local federated
//! Endpoints and EndpointSlices being complete, as local watches saw them.
//!
//! Run: `cargo bench -p fedmesh-controller --bench writes`
//! (`FEDMESH_CHURN_SECONDS`, default 20, sets the churn's length).

#[allow(dead_code)]
mod common;

use std::time::{Duration, Instant};

use common::{Calls, Error, Mode, Rng};
use fedmesh_controller::Metrics;
use fedmesh_core::mesh::MAX_ENDPOINTS_ADDRESSES;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, PostParams};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const PER_SLICE: usize = 100;
/// Creates in flight at once in the remote (a client with a few connections).
const CREATE_CONCURRENCY: usize = 8;
/// How long nothing may change before the counts are read.
const QUIET: Duration = Duration::from_secs(1);
const LIMIT: Duration = Duration::from_secs(120);

/// A running mesh: one local and one remote cluster, the controller, and the
/// local watches on `web-fed`.
struct Mesh {
    local: fedmesh_apiserver::testing::TestServer,
    remote: fedmesh_apiserver::testing::TestServer,
    metrics: Metrics,
    federated: common::Federated,
    _controller: common::Task,
}

async fn mesh() -> Result<Mesh, Error> {
    let local = common::server("local").await?;
    let remote = common::server("remote-0").await?;
    let lc = local.client()?;
    Api::<Service>::namespaced(lc.clone(), "default")
        .create(&PostParams::default(), &common::federated("web-fed", "web"))
        .await?;
    common::connect(&lc, std::slice::from_ref(&remote), serde_json::Value::Null).await?;
    let mut rccs = common::watch_rccs(&lc);
    let metrics = Metrics::new();
    let controller = common::controller(lc.clone(), common::config(), metrics.clone());
    rccs.until("the remote in sync", LIMIT, |all| {
        all.get("remote-0").is_some_and(|s| s.state == "InSync")
    })
    .await?;
    let federated = common::watch_federated(&lc, "web-fed", None);
    Ok(Mesh {
        local,
        remote,
        metrics,
        federated,
        _controller: controller,
    })
}

/// One measured step: what the local API server and the controller counted,
/// and the federated objects that changed.
struct Counted {
    api: Calls,
    controller: Calls,
    changed: u64,
}

impl Mesh {
    async fn counts(&self) -> Result<(Calls, Calls, u64), Error> {
        Ok((
            common::api_calls(&self.local.client()?).await?,
            common::controller_writes(&self.metrics),
            self.federated.now().changes,
        ))
    }

    async fn since(&self, before: (Calls, Calls, u64)) -> Result<Counted, Error> {
        let (api, controller, changed) = self.counts().await?;
        Ok(Counted {
            api: api - before.0,
            controller: controller - before.1,
            changed: changed - before.2,
        })
    }
}

fn ips(slice: usize) -> Vec<String> {
    (0..PER_SLICE)
        .map(|e| format!("10.{}.{}.{}", slice / 250, slice % 250, e))
        .collect()
}

/// How the backing Service comes to back the federated one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Arrival {
    /// Created in the remote: the Service, then its slices.
    Created,
    /// Created in the remote unselected, then selected by one label change.
    Selected,
}

/// A backing Service of `endpoints` endpoints arriving in the remote.
struct Creation {
    endpoints: usize,
    arrival: Arrival,
    counted: Counted,
    objects: usize,
    /// From the first write in the remote to its last being acknowledged.
    written_in: Duration,
    settled_from_first: Duration,
    settled_from_last: Duration,
}

async fn create(mesh: &mut Mesh, endpoints: usize, arrival: Arrival) -> Result<Creation, Error> {
    let slices = endpoints / PER_SLICE;
    let rc = mesh.remote.client()?;
    let services = Api::<Service>::namespaced(rc.clone(), "default");
    let app = match arrival {
        Arrival::Created => "web",
        Arrival::Selected => "staged",
    };
    let before = mesh.counts().await?;
    let started = Instant::now();
    services
        .create(&PostParams::default(), &common::service("web", app))
        .await?;
    let api = Api::<EndpointSlice>::namespaced(rc, "default");
    futures::stream::iter(0..slices)
        .map(|i| {
            let api = api.clone();
            async move {
                api.create(
                    &PostParams::default(),
                    &common::slice(&format!("web-{i}"), "web", &ips(i)),
                )
                .await
            }
        })
        .buffer_unordered(CREATE_CONCURRENCY)
        .try_collect::<Vec<_>>()
        .await?;
    let (before, started) = match arrival {
        Arrival::Created => (before, started),
        Arrival::Selected => {
            // Let the controller index the unselected slices first.
            tokio::time::sleep(QUIET).await;
            let before = mesh.counts().await?;
            let started = Instant::now();
            services
                .patch(
                    "web",
                    &kube::api::PatchParams::default(),
                    &kube::api::Patch::Merge(
                        serde_json::json!({"metadata": {"labels": {"app": "web"}}}),
                    ),
                )
                .await?;
            (before, started)
        }
    };
    let written = Instant::now();
    let complete = mesh
        .federated
        .until("the federated objects complete", LIMIT, |s| {
            s.slices == slices
                && s.slice_endpoints == endpoints
                && s.addresses == endpoints.min(MAX_ENDPOINTS_ADDRESSES)
        })
        .await?;
    let at = complete.at.unwrap_or(written);
    mesh.federated.quiet(QUIET, LIMIT).await;
    Ok(Creation {
        endpoints,
        arrival,
        counted: mesh.since(before).await?,
        objects: slices + 1,
        written_in: written - started,
        settled_from_first: at.saturating_duration_since(started),
        settled_from_last: at.saturating_duration_since(written),
    })
}

/// What a churn run did.
struct Churn {
    changes: usize,
    seconds: f64,
    counted: Counted,
    settled_after_last: Duration,
}

/// Adds and removes endpoints of random backing slices at `rate` a second
/// for `length`, keeping every slice between half full and full. The
/// slices are split among workers, so slow answers from the remote do not
/// hold the rate down, and no slice has two changes in flight.
async fn churn(
    mesh: &mut Mesh,
    slices: usize,
    rate: u32,
    length: Duration,
) -> Result<Churn, Error> {
    // Ten workers, or one per slice when there are fewer (every worker owns a slice).
    let workers = slices.clamp(1, 10);
    let api = Api::<EndpointSlice>::namespaced(mesh.remote.client()?, "default");
    let mut owned: Vec<Vec<(usize, EndpointSlice)>> = (0..workers).map(|_| Vec::new()).collect();
    for i in 0..slices {
        owned[i % workers].push((i, api.get(&format!("web-{i}")).await?));
    }
    let before = mesh.counts().await?;
    let started = Instant::now();
    let running = owned.into_iter().enumerate().map(|(w, mut mine)| {
        let api = api.clone();
        async move {
            let mut rng = Rng::new(9 + w as u64);
            let mut tick = tokio::time::interval(Duration::from_secs(1) * workers as u32 / rate);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut changes = 0usize;
            while started.elapsed() < length {
                tick.tick().await;
                let pick = rng.below(mine.len());
                let (i, slice) = &mut mine[pick];
                let n = slice.endpoints.len();
                if (rng.below(2) == 0 && n > PER_SLICE / 2) || n == PER_SLICE {
                    slice.endpoints.remove(rng.below(n));
                } else {
                    let ip = format!("10.{}.{}.{}", 200 + w, changes / 250, changes % 250);
                    slice
                        .endpoints
                        .push(serde_json::from_value(common::endpoint("web", &ip))?);
                }
                *slice = api
                    .replace(&format!("web-{i}"), &PostParams::default(), slice)
                    .await?;
                changes += 1;
            }
            let total: usize = mine.iter().map(|(_, s)| s.endpoints.len()).sum();
            Ok::<_, Error>((changes, total))
        }
    });
    let done: Vec<(usize, usize)> = futures::future::try_join_all(running).await?;
    let last = Instant::now();
    let seconds = started.elapsed().as_secs_f64();
    let changes = done.iter().map(|(c, _)| c).sum();
    let total: usize = done.iter().map(|(_, t)| t).sum();
    let settled = mesh
        .federated
        .until("the churn to settle", LIMIT, |s| {
            s.slice_endpoints == total && s.addresses == total.min(MAX_ENDPOINTS_ADDRESSES)
        })
        .await?;
    mesh.federated.quiet(QUIET, LIMIT).await;
    Ok(Churn {
        changes,
        seconds,
        counted: mesh.since(before).await?,
        settled_after_last: settled.at.unwrap_or(last).saturating_duration_since(last),
    })
}

fn describe(c: &Creation) -> String {
    match c.arrival {
        Arrival::Created => format!("backing Service of {} endpoints created", c.endpoints),
        Arrival::Selected => format!(
            "backing Service of {} endpoints selected by one label change",
            c.endpoints
        ),
    }
}

fn ratio(calls: u64, changed: u64) -> String {
    if changed == 0 {
        return "—".into();
    }
    format!("{:.3}", calls as f64 / changed as f64)
}

fn row(case: &str, objects: String, c: &Counted) {
    println!(
        "| {case} | {objects} | {} | {} / {} | {} / {} | {} | {} |",
        c.changed,
        c.api.ok,
        c.api.failed,
        c.controller.ok,
        c.controller.failed,
        ratio(c.api.total(), c.changed),
        if c.api.total() as f64 <= 1.05 * c.changed as f64 {
            "yes"
        } else {
            "no"
        },
    );
}

async fn run(mode: Mode) -> Result<(), Error> {
    let (cases, churn_length, rate): (&[(usize, Arrival)], Duration, u32) = match mode {
        Mode::Full => {
            let seconds = std::env::var("FEDMESH_CHURN_SECONDS")
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or(20);
            (
                &[
                    (5_000, Arrival::Created),
                    (10_000, Arrival::Created),
                    (10_000, Arrival::Selected),
                ],
                Duration::from_secs(seconds),
                50,
            )
        }
        _ => (&[(500, Arrival::Created)], Duration::from_secs(2), 20),
    };
    let mut creations = Vec::new();
    let mut churned = None;
    for (i, &(endpoints, arrival)) in cases.iter().enumerate() {
        let mut mesh = mesh().await?;
        creations.push(create(&mut mesh, endpoints, arrival).await?);
        if i == 0 {
            churned = Some(churn(&mut mesh, endpoints / PER_SLICE, rate, churn_length).await?);
        }
    }

    println!();
    println!(
        "API calls per changed federated object (target ≤ 1.05); calls as the local API server counted them, writes as the controller did"
    );
    println!();
    println!(
        "| case | federated objects | objects changed (local watch) | API calls ok / failed | controller writes ok / failed | calls per changed object | target met |"
    );
    println!("|---|---:|---:|---:|---:|---:|:---:|");
    for c in &creations {
        row(&describe(c), c.objects.to_string(), &c.counted);
    }
    if let Some(churn) = &churned {
        row(
            &format!(
                "churn: {} endpoint changes in {:.0} s ({:.0}/s)",
                churn.changes,
                churn.seconds,
                churn.changes as f64 / churn.seconds
            ),
            format!("{}", cases[0].0 / PER_SLICE + 1),
            &churn.counted,
        );
    }
    println!();
    println!(
        "Settle time (target < 1 s for 10,000 endpoints): from the remote's first write to the local federated Endpoints + EndpointSlices complete"
    );
    println!();
    println!(
        "| case | the remote's writes took | settled, from the remote's first write | settled, from its last write acknowledged | before (old main) |"
    );
    println!("|---|---:|---:|---:|---:|");
    for c in &creations {
        println!(
            "| {} | {:.0} ms | {:.0} ms | {:.0} ms | {} |",
            describe(c),
            common::ms(c.written_in),
            common::ms(c.settled_from_first),
            common::ms(c.settled_from_last),
            match (c.endpoints, c.arrival) {
                (10_000, Arrival::Created) => "24 s, 5,151 calls",
                (5_000, Arrival::Created) => "1,326 calls for 51 objects",
                _ => "—",
            }
        );
    }
    if let Some(churn) = &churned {
        println!();
        println!(
            "Churn settled {:.0} ms after its last change.",
            common::ms(churn.settled_after_last)
        );
    }
    Ok(())
}

fn main() -> Result<(), Error> {
    let mode = common::mode();
    if mode == Mode::List {
        return Ok(());
    }
    common::print_machine("writes");
    common::runtime()?.block_on(run(mode))?;
    println!("load average at the end: {}", common::load_average());
    Ok(())
}
