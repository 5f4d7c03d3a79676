//! Soak: 10 remotes, 100 endpoint changes a second, 10 minutes (issue 9).
//!
//! This process runs 11 embedded API servers on loopback (a local cluster
//! and 10 remotes, each backing the federated Service `web-fed` with 80
//! endpoints in 4 EndpointSlices) and the load; the controller runs alone in
//! a child process (this binary with `--soak-controller`), so its resident
//! memory and CPU time are its own, read from `/proc/<pid>`.
//!
//! Each remote gets 10 changes a second (one endpoint's address replaced by
//! a new one, round-robin over its slices). Propagation latency runs from the
//! change being sent to the remote to the new address showing in a local
//! federated EndpointSlice, as a local watch delivers it. Per minute: the
//! changes made, latency p50/p99/max, the controller's RSS and CPU, and
//! errors: failed changes, changes not seen locally within 5 s, failed calls
//! to Endpoints/EndpointSlices at the local API server, and WARN/ERROR lines
//! the controller logged.
//!
//! Run: `cargo bench -p fedmesh-controller --bench soak`
//! (`FEDMESH_SOAK_SECONDS`, default 600, sets the length).

#[allow(dead_code)]
mod common;

use std::collections::HashMap;
use std::io::BufRead;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Error, Mode};
use fedmesh_controller::Metrics;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, PostParams};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const SLICES: usize = 4;
const PER_SLICE: usize = 20;
/// A change not seen locally within this counts as lost.
const LOST_AFTER: Duration = Duration::from_secs(5);

/// The shape of a run.
struct Plan {
    remotes: usize,
    /// Changes a second per remote.
    rate: u32,
    length: Duration,
    window: Duration,
}

/// What the load and the observer share.
#[derive(Default)]
struct Tally {
    /// Address → when the change that brought it was sent.
    pending: Mutex<HashMap<String, Instant>>,
    latencies: Mutex<Vec<Duration>>,
    changes: AtomicU64,
    failed_changes: AtomicU64,
}

/// The controller's process and what it logs.
struct Child {
    process: std::process::Child,
    warnings: Arc<AtomicU64>,
    first_warnings: Arc<Mutex<Vec<String>>>,
}

impl Drop for Child {
    fn drop(&mut self) {
        // Closing stdin stops it; kill in case it does not listen.
        drop(self.process.stdin.take());
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

impl Child {
    fn start(kubeconfig: &std::path::Path) -> Result<Self, Error> {
        let mut process = std::process::Command::new(std::env::current_exe()?)
            .arg("--soak-controller")
            .arg(kubeconfig)
            .stdin(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()?;
        let stderr = process.stderr.take().ok_or("no child stderr")?;
        let warnings = Arc::new(AtomicU64::new(0));
        let first_warnings = Arc::new(Mutex::new(Vec::new()));
        let (count, first) = (warnings.clone(), first_warnings.clone());
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                if line.contains("WARN") || line.contains("ERROR") {
                    count.fetch_add(1, Ordering::Relaxed);
                    let mut first = first.lock().unwrap_or_else(|e| e.into_inner());
                    if first.len() < 5 {
                        first.push(line);
                    }
                }
            }
        });
        Ok(Self {
            process,
            warnings,
            first_warnings,
        })
    }

    /// Its CPU time so far (user + system).
    fn cpu(&self) -> Duration {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.process.id()))
            .unwrap_or_default();
        // Fields after the command name (which may hold spaces): utime is the 12th, stime the 13th.
        let fields: Vec<u64> = stat
            .rsplit_once(')')
            .map(|(_, rest)| {
                rest.split_whitespace()
                    .filter_map(|f| f.parse().ok())
                    .collect()
            })
            .unwrap_or_default();
        let ticks = fields.get(10).copied().unwrap_or(0) + fields.get(11).copied().unwrap_or(0);
        // Linux reports in USER_HZ, which is 100 on every platform it runs on.
        Duration::from_millis(ticks * 10)
    }
}

/// The child: the controller against the local cluster in `kubeconfig`,
/// logging warnings to stderr, until stdin closes.
fn serve_controller(kubeconfig: &str) -> Result<(), Error> {
    tracing_subscriber::fmt()
        .with_env_filter("warn")
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
    let kubeconfig = kube::config::Kubeconfig::read_from(kubeconfig)?;
    common::runtime()?.block_on(async move {
        let config = kube::Config::from_custom_kubeconfig(
            kubeconfig,
            &kube::config::KubeConfigOptions::default(),
        )
        .await?;
        let client = kube::Client::try_from(config)?;
        let stdin_closed = tokio::task::spawn_blocking(|| {
            let mut sink = String::new();
            while std::io::stdin().read_line(&mut sink).is_ok_and(|n| n > 0) {}
        });
        let shutdown = async move {
            let _ = stdin_closed.await;
        };
        fedmesh_controller::run(client, common::config(), Metrics::new(), shutdown).await?;
        Ok(())
    })
}

fn address(remote: usize, seq: usize) -> String {
    format!("10.{remote}.{}.{}", 1 + seq / 250, seq % 250)
}

/// Changes one endpoint of `remote` `rate` times a second until `until`.
async fn load(
    remote: usize,
    api: Api<EndpointSlice>,
    mut slices: Vec<EndpointSlice>,
    rate: u32,
    until: Instant,
    tally: Arc<Tally>,
) {
    let mut tick = tokio::time::interval(Duration::from_secs(1) / rate);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut seq = 0;
    while Instant::now() < until {
        tick.tick().await;
        let s = seq % SLICES;
        let e = (seq / SLICES) % PER_SLICE;
        let ip = address(remote, seq);
        seq += 1;
        let name = format!("web-{s}");
        slices[s].endpoints[e] = match serde_json::from_value(common::endpoint("web", &ip)) {
            Ok(endpoint) => endpoint,
            Err(_) => continue,
        };
        lock(&tally.pending).insert(ip.clone(), Instant::now());
        match api.replace(&name, &PostParams::default(), &slices[s]).await {
            Ok(now) => {
                slices[s] = now;
                tally.changes.fetch_add(1, Ordering::Relaxed);
            }
            Err(_) => {
                lock(&tally.pending).remove(&ip);
                tally.failed_changes.fetch_add(1, Ordering::Relaxed);
                if let Ok(now) = api.get(&name).await {
                    slices[s] = now;
                }
            }
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// One window's figures.
struct Window {
    end: Duration,
    changes: u64,
    seen: usize,
    p50: Duration,
    p99: Duration,
    max: Duration,
    rss: u64,
    cpu: Duration,
    failed_changes: u64,
    lost: u64,
    /// `None` when the local API server's counters could not be read.
    failed_calls: Option<u64>,
    warnings: u64,
}

async fn run(plan: Plan) -> Result<(), Error> {
    let local = common::server("local").await?;
    let lc = local.client()?;
    let mut remotes = Vec::new();
    let mut loads = Vec::new();
    for r in 0..plan.remotes {
        let server = common::server(&format!("remote-{r}")).await?;
        let rc = server.client()?;
        Api::<Service>::namespaced(rc.clone(), "default")
            .create(&PostParams::default(), &common::service("web", "web"))
            .await?;
        let api = Api::<EndpointSlice>::namespaced(rc, "default");
        let mut slices = Vec::new();
        for s in 0..SLICES {
            let ips: Vec<String> = (0..PER_SLICE)
                .map(|e| format!("10.{r}.0.{}", s * PER_SLICE + e))
                .collect();
            slices.push(
                api.create(
                    &PostParams::default(),
                    &common::slice(&format!("web-{s}"), "web", &ips),
                )
                .await?,
            );
        }
        loads.push((api, slices));
        remotes.push(server);
    }
    Api::<Service>::namespaced(lc.clone(), "default")
        .create(&PostParams::default(), &common::federated("web-fed", "web"))
        .await?;
    common::connect(&lc, &remotes, serde_json::Value::Null).await?;

    let tally = Arc::new(Tally::default());
    let seen = tally.clone();
    let hook: common::SliceHook = Box::new(move |slice: &EndpointSlice, at: Instant| {
        let mut pending = lock(&seen.pending);
        let mut found = Vec::new();
        for endpoint in &slice.endpoints {
            for ip in &endpoint.addresses {
                if let Some(sent) = pending.remove(ip) {
                    found.push(at.saturating_duration_since(sent));
                }
            }
        }
        drop(pending);
        lock(&seen.latencies).extend(found);
    });
    let mut federated = common::watch_federated(&lc, "web-fed", Some(hook));
    let child = Child::start(&local.kubeconfig_path())?;
    let total = plan.remotes * SLICES * PER_SLICE;
    let started = Instant::now();
    federated
        .until(
            "every remote's endpoints federated",
            Duration::from_secs(120),
            |s| s.slice_endpoints == total,
        )
        .await?;
    println!(
        "soak: {} remotes × {} endpoints federated {:.0} ms after the controller started; controller RSS {:.1} MB",
        plan.remotes,
        SLICES * PER_SLICE,
        common::ms(started.elapsed()),
        common::rss_bytes(Some(child.process.id())) as f64 / 1e6
    );

    let until = Instant::now() + plan.length;
    let mut tasks = Vec::new();
    for (r, (api, slices)) in loads.into_iter().enumerate() {
        let tally = tally.clone();
        // Spread the remotes' ticks over the period.
        let offset = Duration::from_secs(1) / plan.rate / plan.remotes as u32 * r as u32;
        tasks.push(common::spawn(async move {
            tokio::time::sleep(offset).await;
            load(r, api, slices, plan.rate, until, tally).await;
        }));
    }

    let began = Instant::now();
    let mut windows = Vec::new();
    let (mut changes_before, mut failed_before) = (0, 0);
    let mut calls_before = counters(&local)
        .await
        .ok_or("cannot read the local API server's counters")?;
    let mut warnings_before = child.warnings.load(Ordering::Relaxed);
    let mut cpu_before = child.cpu();
    let mut next = began + plan.window;
    while next <= until + Duration::from_millis(100) {
        tokio::time::sleep_until(next.into()).await;
        let lost = {
            let mut pending = lock(&tally.pending);
            let before = pending.len();
            pending.retain(|_, sent| sent.elapsed() < LOST_AFTER);
            (before - pending.len()) as u64
        };
        let mut latencies = std::mem::take(&mut *lock(&tally.latencies));
        latencies.sort();
        let changes = tally.changes.load(Ordering::Relaxed);
        let failed = tally.failed_changes.load(Ordering::Relaxed);
        let calls = counters(&local).await;
        let warnings = child.warnings.load(Ordering::Relaxed);
        let cpu = child.cpu();
        windows.push(Window {
            end: next - began,
            changes: changes - changes_before,
            seen: latencies.len(),
            p50: common::percentile(&latencies, 0.50),
            p99: common::percentile(&latencies, 0.99),
            max: latencies.last().copied().unwrap_or_default(),
            rss: common::rss_bytes(Some(child.process.id())),
            cpu: cpu.saturating_sub(cpu_before),
            failed_changes: failed - failed_before,
            lost,
            failed_calls: calls.map(|calls| (calls - calls_before).failed),
            warnings: warnings - warnings_before,
        });
        if let Some(window) = windows.last() {
            print_window(window, plan.window);
        }
        (changes_before, failed_before, warnings_before, cpu_before) =
            (changes, failed, warnings, cpu);
        calls_before = calls.unwrap_or(calls_before);
        next += plan.window;
    }
    drop(tasks);

    if let (Some(first), Some(last)) = (windows.first(), windows.last()) {
        println!();
        println!(
            "controller RSS: {:.1} MB after the first window, {:.1} MB after the last ({:+.1} MB)",
            first.rss as f64 / 1e6,
            last.rss as f64 / 1e6,
            (last.rss as f64 - first.rss as f64) / 1e6
        );
    }
    for line in lock(&child.first_warnings).iter() {
        println!("controller said: {line}");
    }
    Ok(())
}

/// Prints one window's row, and the table's header before the first.
fn print_window(w: &Window, window: Duration) {
    let secs = window.as_secs_f64();
    if w.end <= window + Duration::from_millis(1) {
        println!();
        println!(
            "| minute | changes | changes/s | seen locally | p50 | p99 | max | controller RSS | controller CPU | errors (failed changes / lost / failed API calls / controller warnings) |"
        );
        println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|");
    }
    println!(
        "| {:.0}–{:.0} s | {} | {:.1} | {} | {:.1} ms | {:.1} ms | {:.1} ms | {:.1} MB | {:.0} % | {} / {} / {} / {} |",
        w.end.as_secs_f64() - secs,
        w.end.as_secs_f64(),
        w.changes,
        w.changes as f64 / secs,
        w.seen,
        common::ms(w.p50),
        common::ms(w.p99),
        common::ms(w.max),
        w.rss as f64 / 1e6,
        w.cpu.as_secs_f64() / secs * 100.0,
        w.failed_changes,
        w.lost,
        w.failed_calls.map_or("?".into(), |n| n.to_string()),
        w.warnings,
    );
}

/// The local API server's counters, through a fresh connection, within 10 s.
async fn counters(local: &fedmesh_apiserver::testing::TestServer) -> Option<common::Calls> {
    let client = local.client().ok()?;
    tokio::time::timeout(Duration::from_secs(10), common::api_calls(&client))
        .await
        .ok()?
        .ok()
}

fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().collect();
    if let Some(at) = args.iter().position(|a| a == "--soak-controller") {
        return serve_controller(
            args.get(at + 1)
                .ok_or("--soak-controller needs a kubeconfig")?,
        );
    }
    let plan = match common::mode() {
        Mode::List => return Ok(()),
        Mode::Full => {
            let seconds = std::env::var("FEDMESH_SOAK_SECONDS")
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or(600);
            Plan {
                remotes: 10,
                rate: 10,
                length: Duration::from_secs(seconds),
                window: Duration::from_secs(seconds.min(60)),
            }
        }
        Mode::Check => Plan {
            remotes: 2,
            rate: 10,
            length: Duration::from_secs(4),
            window: Duration::from_secs(2),
        },
    };
    common::print_machine("soak");
    common::runtime()?.block_on(run(plan))?;
    println!("load average at the end: {}", common::load_average());
    Ok(())
}
