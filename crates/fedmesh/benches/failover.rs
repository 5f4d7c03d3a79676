//! Leader takeover times over real processes: a `fedmesh apiserver` and two
//! `fedmesh controller` replicas; the leader is SIGKILLed (short Lease) or
//! SIGTERMed (default 15 s Lease, so only the release can make it fast), and
//! the time until the standby reports `fedmesh_leader 1` is measured. After
//! each run the stopped replica comes back as the standby.
//!
//! `cargo bench -p fedmesh --bench failover` (runs per case: FEDMESH_BENCH_RUNS, default 7).

#[path = "../tests/support/processes.rs"]
mod processes;

use std::time::{Duration, Instant};

use processes::{LocalApi, Replica, Timings, within};

#[derive(Debug, Clone, Copy)]
enum Stop {
    Kill,
    Term,
}

fn main() {
    let runs = std::env::var("FEDMESH_BENCH_RUNS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(7);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let t = Timings::SHORT;
        let kill = takeovers(Stop::Kill, t, runs).await;
        report(
            &format!(
                "SIGKILL (lease {:?}, renew deadline {:?}, renewed every {:?}, standby retry {:?})",
                t.lease,
                t.renew_deadline,
                t.renew_interval,
                Timings::RETRY
            ),
            kill.iter().map(|(signal, _)| *signal).collect(),
        );
        let t = Timings::DEFAULT;
        let term = takeovers(Stop::Term, t, runs).await;
        report(
            &format!("SIGTERM (lease {:?}), from the signal", t.lease),
            term.iter().map(|(signal, _)| *signal).collect(),
        );
        report(
            "SIGTERM, from the leader's exit",
            term.iter().map(|(_, exit)| *exit).collect(),
        );
    });
}

fn report(case: &str, mut times: Vec<Duration>) {
    times.sort();
    let ms = |d: &Duration| d.as_secs_f64() * 1000.0;
    let all: Vec<String> = times.iter().map(|d| format!("{:.0}", ms(d))).collect();
    println!(
        "{case}: median {:.0} ms, max {:.0} ms over {} runs [{}]",
        ms(&times[times.len() / 2]),
        ms(&times[times.len() - 1]),
        times.len(),
        all.join(", ")
    );
}

async fn leading(replica: &Replica, limit: Duration) {
    if within(limit, || (replica.leading() == Some(true)).then_some(()))
        .await
        .is_none()
    {
        panic!("{} did not lead\n{}", replica.name, replica.log());
    }
}

async fn standing_by(replica: &Replica) {
    if within(Duration::from_secs(30), || {
        (replica.leading() == Some(false)).then_some(())
    })
    .await
    .is_none()
    {
        panic!("{} did not stand by\n{}", replica.name, replica.log());
    }
}

/// Takeover times of `runs` leader stops: (from the signal, from the exit).
async fn takeovers(stop: Stop, timings: Timings, runs: usize) -> Vec<(Duration, Duration)> {
    let local = LocalApi::start().await;
    let mut replicas = [
        Replica::start(&local.kubeconfig(), local.dir(), "bench-a", timings),
        Replica::start(&local.kubeconfig(), local.dir(), "bench-b", timings),
    ];
    // Whichever leads first; the other stands by.
    let first = within(Duration::from_secs(60), || {
        replicas.iter().position(|r| r.leading() == Some(true))
    })
    .await
    .expect("a replica leads");
    let mut leader = first;
    standing_by(&replicas[1 - leader]).await;
    let mut times = Vec::new();
    for _ in 0..runs {
        let standby = 1 - leader;
        let signalled = Instant::now();
        let process = replicas[leader].process();
        match stop {
            Stop::Kill => process.signal("KILL"),
            Stop::Term => process.signal("TERM"),
        }
        let exited = process
            .wait_exit(Duration::from_secs(20))
            .map(|_| Instant::now());
        let exited = exited.expect("the leader exits");
        // Polled every 20 ms: the figures are at most that much late.
        leading(&replicas[standby], Duration::from_secs(60)).await;
        let now = Instant::now();
        times.push((now - signalled, now - exited));
        replicas[leader].restart();
        standing_by(&replicas[leader]).await;
        leader = standby;
    }
    times
}
