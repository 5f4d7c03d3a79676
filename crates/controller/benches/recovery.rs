//! Fault detection and recovery (issue 9, defects 2 and 3).
//!
//! A local and a remote embedded API server on loopback, the controller in
//! this process, a backing Service of 100 endpoints in the remote and a
//! federated Service `web-fed` in the local cluster.
//!
//! 1. Hung remote: the remote's fault switch makes it accept connections and
//!    never answer (`hang()`); timed from the switch to its
//!    RemoteClusterConfiguration leaving `InSync`, as a local watch sees it.
//!    With the default probe settings (target ≤ 10 s) and a fast probe.
//! 2. Killed remote: killed, left dead for a while (its endpoints withdrawn:
//!    the policy is `Withdraw` with no grace period), restarted on its data;
//!    timed from the restarted server listening to the local federated
//!    Endpoints and EndpointSlices holding its endpoints again, and to its
//!    RemoteClusterConfiguration saying `InSync` with their count (target < 1 s
//!    for both).
//!
//! Run: `cargo bench -p fedmesh-controller --bench recovery`

#[allow(dead_code)]
mod common;

use std::time::{Duration, Instant};

use common::{Error, Mode};
use fedmesh_apiserver::testing::TestServer;
use fedmesh_controller::{ControllerConfig, Metrics};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, PostParams};
use serde_json::json;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const ENDPOINTS: usize = 100;
const LIMIT: Duration = Duration::from_secs(90);

struct Mesh {
    remote: TestServer,
    rccs: common::Rccs,
    federated: common::Federated,
    _local: TestServer,
    _controller: common::Task,
}

async fn mesh(config: ControllerConfig, unreachable: serde_json::Value) -> Result<Mesh, Error> {
    let local = common::server("local").await?;
    let remote = common::server("remote-0").await?;
    let (lc, rc) = (local.client()?, remote.client()?);
    Api::<Service>::namespaced(rc.clone(), "default")
        .create(&PostParams::default(), &common::service("web", "web"))
        .await?;
    for i in 0..ENDPOINTS / 50 {
        let ips: Vec<String> = (0..50).map(|e| format!("10.0.{i}.{e}")).collect();
        Api::<EndpointSlice>::namespaced(rc.clone(), "default")
            .create(
                &PostParams::default(),
                &common::slice(&format!("web-{i}"), "web", &ips),
            )
            .await?;
    }
    Api::<Service>::namespaced(lc.clone(), "default")
        .create(&PostParams::default(), &common::federated("web-fed", "web"))
        .await?;
    common::connect(&lc, std::slice::from_ref(&remote), unreachable).await?;
    let rccs = common::watch_rccs(&lc);
    let federated = common::watch_federated(&lc, "web-fed", None);
    let controller = common::controller(lc, config, Metrics::new());
    let mut mesh = Mesh {
        remote,
        rccs,
        federated,
        _local: local,
        _controller: controller,
    };
    mesh.current("the mesh in sync").await?;
    Ok(mesh)
}

fn in_sync(s: &common::RccStatus) -> bool {
    s.state == "InSync" && s.endpoints == ENDPOINTS as u64 && !s.withdrawn
}

impl Mesh {
    /// Waits until the local objects hold the remote's endpoints and its
    /// status is current; gives when each became so.
    async fn current(&mut self, what: &str) -> Result<(Instant, Instant), Error> {
        let endpoints = self
            .federated
            .until(what, LIMIT, |s| {
                s.slice_endpoints == ENDPOINTS && s.addresses == ENDPOINTS
            })
            .await?
            .at
            .unwrap_or_else(Instant::now);
        let status = self
            .rccs
            .until(what, LIMIT, |all| all.get("remote-0").is_some_and(in_sync))
            .await?;
        Ok((endpoints, status))
    }
}

/// One hung-remote round.
struct Hang {
    detected: Duration,
    reason: String,
    back_in_sync: Duration,
}

async fn hangs(config: ControllerConfig, rounds: usize) -> Result<Vec<Hang>, Error> {
    let mut mesh = mesh(config, serde_json::Value::Null).await?;
    let mut out = Vec::new();
    for round in 0..rounds {
        // Start each round at another moment of the probe's cycle.
        tokio::time::sleep(Duration::from_millis(300 + 700 * round as u64)).await;
        let hung = Instant::now();
        mesh.remote.hang();
        let detected = mesh
            .rccs
            .until("the hung remote noticed", LIMIT, |all| {
                all.get("remote-0").is_some_and(|s| s.state != "InSync")
            })
            .await?;
        let reason = mesh
            .rccs
            .get("remote-0")
            .map(|s| format!("{} ({})", s.state, s.reason))
            .unwrap_or_default();
        let healed = Instant::now();
        mesh.remote.heal();
        let (endpoints, status) = mesh.current("back in sync after the hang").await?;
        out.push(Hang {
            detected: detected.saturating_duration_since(hung),
            reason,
            back_in_sync: endpoints.max(status).saturating_duration_since(healed),
        });
    }
    Ok(out)
}

/// One killed-remote round.
struct Restart {
    down: Duration,
    endpoints: Duration,
    status: Duration,
}

async fn restarts(config: ControllerConfig, downtimes: &[Duration]) -> Result<Vec<Restart>, Error> {
    let mut mesh = mesh(
        config,
        json!({"endpoints": "Withdraw", "gracePeriodSeconds": 0}),
    )
    .await?;
    let mut out = Vec::new();
    for &down in downtimes {
        let killed = Instant::now();
        mesh.remote.kill();
        mesh.federated
            .until("the dead remote's endpoints withdrawn", LIMIT, |s| {
                s.slice_endpoints == 0
            })
            .await?;
        mesh.rccs
            .until("the dead remote's status", LIMIT, |all| {
                all.get("remote-0")
                    .is_some_and(|s| s.state == "ConnectionFailed")
            })
            .await?;
        tokio::time::sleep(down.saturating_sub(killed.elapsed())).await;
        mesh.remote.restart().await?;
        let answering = Instant::now();
        let (endpoints, status) = mesh.current("the restarted remote current").await?;
        out.push(Restart {
            down: answering - killed,
            endpoints: endpoints.saturating_duration_since(answering),
            status: status.saturating_duration_since(answering),
        });
    }
    Ok(out)
}

/// The default settings but a probe 8 times as often (and as short).
fn fast(mut config: ControllerConfig) -> ControllerConfig {
    config.probe_interval = Duration::from_millis(250);
    config.probe_timeout = Duration::from_millis(250);
    config
}

fn settings(config: &ControllerConfig) -> String {
    format!(
        "probe every {} ms, timeout {} ms, {} failures",
        config.probe_interval.as_millis(),
        config.probe_timeout.as_millis(),
        config.failure_threshold
    )
}

async fn run(mode: Mode) -> Result<(), Error> {
    let default = common::config();
    let quick = fast(common::config());
    let (hang_runs, downtimes): (Vec<(ControllerConfig, usize)>, Vec<Duration>) = match mode {
        Mode::Full => (
            vec![(default.clone(), 3), (quick.clone(), 3)],
            [2, 10, 40].map(Duration::from_secs).to_vec(),
        ),
        _ => (vec![(quick.clone(), 1)], vec![Duration::from_secs(1)]),
    };
    println!();
    println!(
        "Hung remote (accepts connections, never answers): time to detect, as the RemoteClusterConfiguration's status shows it (target ≤ 10 s with the default probe)"
    );
    println!();
    println!("| probe settings | round | detected after | status then | back in sync after heal |");
    println!("|---|---:|---:|---|---:|");
    for (config, rounds) in hang_runs {
        for (i, hang) in hangs(config.clone(), rounds).await?.iter().enumerate() {
            println!(
                "| {} | {} | {:.2} s | {} | {:.0} ms |",
                settings(&config),
                i + 1,
                hang.detected.as_secs_f64(),
                hang.reason,
                common::ms(hang.back_in_sync)
            );
        }
    }
    println!();
    println!(
        "Killed remote restarted on its data: time from it listening again to its endpoints and its status being current (target < 1 s)"
    );
    println!();
    println!(
        "| probe settings | dead for | endpoints back after | status InSync (with counts) after | target met |"
    );
    println!("|---|---:|---:|---:|:---:|");
    for restart in restarts(default.clone(), &downtimes).await? {
        println!(
            "| {} | {:.1} s | {:.0} ms | {:.0} ms | {} |",
            settings(&default),
            restart.down.as_secs_f64(),
            common::ms(restart.endpoints),
            common::ms(restart.status),
            if restart.endpoints.max(restart.status) < Duration::from_secs(1) {
                "yes"
            } else {
                "no"
            }
        );
    }
    Ok(())
}

fn main() -> Result<(), Error> {
    let mode = common::mode();
    if mode == Mode::List {
        return Ok(());
    }
    common::print_machine("recovery");
    common::runtime()?.block_on(run(mode))?;
    println!("load average at the end: {}", common::load_average());
    Ok(())
}
