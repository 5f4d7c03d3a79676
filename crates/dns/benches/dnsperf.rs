//! dnsperf (Debian `dnsperf`) on loopback against one zone of 10,000
//! federated Services in 13 clusters, served by fedmesh, NSD, Knot and BIND 9
//! one after the other. Prints QPS, server CPU per query, latency
//! percentiles, memory per record, and fedmesh's change-to-answer time.
//!
//! `cargo bench -p fedmesh-dns --bench dnsperf` (needs dnsperf, nsd, knot,
//! bind9; `DNSPERF_SECONDS` sets the throughput run, default 10).

use std::fmt::Write as _;
use std::fs;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fedmesh_core::dns::{DnsConfig, DnsIndex, DnsLabel, DomainName, NameRecords, RecordData};
use fedmesh_core::federation::{Addresses, Health, ServiceShards, Shard};
use fedmesh_core::{ClusterName, FederatedKey};
use fedmesh_dns::{Server, ServerConfig, ZoneConfig};

const SERVICES: usize = 10_000;
const NAMESPACES: usize = 100;
const QUERIES: usize = 200_000;
/// Zones of the 13 clusters (one cluster per zone), by region.
const CLUSTERS: [(&str, &str); 13] = [
    ("us-central1", "us-central1-a"),
    ("us-central1", "us-central1-b"),
    ("us-central1", "us-central1-c"),
    ("us-central1", "us-central1-f"),
    ("europe-west1", "europe-west1-b"),
    ("europe-west1", "europe-west1-c"),
    ("europe-west1", "europe-west1-d"),
    ("asia-east1", "asia-east1-a"),
    ("asia-east1", "asia-east1-b"),
    ("asia-east1", "asia-east1-c"),
    ("us-east1", "us-east1-b"),
    ("us-east1", "us-east1-c"),
    ("us-east1", "us-east1-d"),
];

/// A small deterministic generator (xorshift), so every run has the same zone.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn label(s: &str) -> DnsLabel {
    DnsLabel::new("label", s).expect("valid label")
}

fn name(s: &str) -> DomainName {
    DomainName::new("name", s).expect("valid name")
}

fn shards(rng: &mut Rng, service: usize) -> Vec<Shard> {
    CLUSTERS
        .iter()
        .enumerate()
        .map(|(c, (region, zone))| {
            let mut addresses = Addresses::default();
            addresses
                .ipv4
                .insert([10, c as u8, (service >> 8) as u8, service as u8].into());
            Shard {
                cluster: ClusterName::new(&format!("cluster-{c}")).expect("valid cluster"),
                region: Some((*region).to_owned()),
                zones: vec![(*zone).to_owned()],
                addresses,
                // About one shard in four unhealthy: zones and a few regions
                // become CNAMEs, as in the seed's listing.
                health: if rng.next().is_multiple_of(4) {
                    Health::NoReadyEndpoints
                } else {
                    Health::Healthy
                },
            }
        })
        .collect()
}

fn service(i: usize, shards: Vec<Shard>) -> ServiceShards {
    ServiceShards {
        service: FederatedKey::new(&format!("ns{}", i % NAMESPACES), &format!("svc{i}")),
        shards,
        errors: Default::default(),
    }
}

fn zone_config() -> ZoneConfig {
    ZoneConfig::new(
        name("example.com"),
        name("ns1.example.com"),
        name("hostmaster.example.com"),
    )
}

fn zone_file(records: &[NameRecords], serial: u32) -> String {
    let mut out = String::with_capacity(records.len() * 100);
    let _ = writeln!(out, "$ORIGIN example.com.\n$TTL 3600");
    let _ = writeln!(
        out,
        "@ IN SOA ns1.example.com. hostmaster.example.com. {serial} 3600 600 604800 60"
    );
    let _ = writeln!(out, "@ IN NS ns1.example.com.");
    for r in records {
        match &r.data {
            RecordData::Addresses { v4, v6 } => {
                for ip in v4 {
                    let _ = writeln!(out, "{}. {} IN A {ip}", r.name, r.ttl);
                }
                for ip in v6 {
                    let _ = writeln!(out, "{}. {} IN AAAA {ip}", r.name, r.ttl);
                }
            }
            RecordData::Cname(t) => _ = writeln!(out, "{}. {} IN CNAME {t}.", r.name, r.ttl),
        }
    }
    out
}

fn free_port() -> u16 {
    loop {
        let udp = UdpSocket::bind("127.0.0.1:0").expect("bind");
        let port = udp.local_addr().expect("addr").port();
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

fn answers(port: u16) -> bool {
    Command::new("dig")
        .args([
            "@127.0.0.1",
            "-p",
            &port.to_string(),
            "+short",
            "+time=1",
            "+tries=1",
            "example.com",
            "SOA",
        ])
        .output()
        .map(|o| o.stdout.starts_with(b"ns1.example.com."))
        .unwrap_or(false)
}

/// User + system CPU seconds of a process.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, a)| a);
    let f: Vec<f64> = after
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0.0))
        .collect();
    (f.get(11).unwrap_or(&0.0) + f.get(12).unwrap_or(&0.0)) / 100.0
}

fn rss_kib(pid: u32) -> u64 {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

struct Run {
    server: &'static str,
    qps: f64,
    lost: String,
    cpu_us: f64,
    p50: f64,
    p99: f64,
    p999: f64,
    rss_mib: f64,
}

fn dnsperf(port: u16, queries: &Path, args: &[&str]) -> String {
    let out = Command::new("dnsperf")
        .args(["-s", "127.0.0.1", "-p", &port.to_string(), "-d"])
        .arg(queries)
        .args(args)
        .output()
        .expect("dnsperf runs (Debian package dnsperf)");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn measure(server: &'static str, pid: u32, port: u16, queries: &Path, seconds: u64) -> Run {
    let rss_mib = rss_kib(pid) as f64 / 1024.0;
    let cpu0 = cpu_seconds(pid);
    let secs = seconds.to_string();
    let out = dnsperf(
        port,
        queries,
        &["-l", &secs, "-c", "4", "-T", "2", "-q", "256"],
    );
    let cpu = cpu_seconds(pid) - cpu0;
    let field = |key: &str| {
        out.lines()
            .find(|l| l.trim_start().starts_with(key))
            .map(|l| l.trim().to_owned())
            .unwrap_or_default()
    };
    let qps: f64 = field("Queries per second:")
        .split_whitespace()
        .last()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    let completed: f64 = field("Queries completed:")
        .split_whitespace()
        .nth(2)
        .and_then(|v| v.parse().ok())
        .unwrap_or(1.0);
    // Latency at a fixed, equal rate for every server, from dnsperf's
    // per-query lines (`> NOERROR name A 0.000123`).
    let verbose = dnsperf(port, queries, &["-l", "5", "-Q", "20000", "-v", "-c", "2"]);
    let mut lat: Vec<f64> = verbose
        .lines()
        .filter(|l| l.starts_with("> "))
        .filter_map(|l| l.split_whitespace().last()?.parse().ok())
        .collect();
    lat.sort_by(f64::total_cmp);
    let pct = |p: f64| {
        if lat.is_empty() {
            return f64::NAN;
        }
        lat[((lat.len() - 1) as f64 * p) as usize] * 1e6
    };
    Run {
        server,
        qps,
        lost: field("Queries lost:"),
        cpu_us: cpu / completed * 1e6,
        p50: pct(0.50),
        p99: pct(0.99),
        p999: pct(0.999),
        rss_mib,
    }
}

struct Daemon(Child);
impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn daemon(cmd: &mut Command, dir: &Path, port: u16) -> Option<Daemon> {
    let log = fs::File::create(dir.join("daemon.log")).ok()?;
    let child = cmd.stdout(Stdio::null()).stderr(log).spawn().ok()?;
    let d = Daemon(child);
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(120) {
        if answers(port) {
            return Some(d);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    eprintln!(
        "{:?} did not answer: {}",
        cmd,
        fs::read_to_string(dir.join("daemon.log")).unwrap_or_default()
    );
    None
}

fn main() {
    let seconds: u64 = std::env::var("DNSPERF_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let mut rng = Rng(0x5eed_f00d_d00d_cafe);
    let mut index = DnsIndex::new(DnsConfig::new(label("myfederation"), name("example.com")));
    for i in 0..SERVICES {
        let s = service(i, shards(&mut rng, i));
        index.upsert(&s, None).expect("records");
    }
    let records: Vec<NameRecords> = index.records().cloned().collect();
    let rrs: usize = records
        .iter()
        .map(|r| match &r.data {
            RecordData::Addresses { v4, v6 } => v4.len() + v6.len(),
            RecordData::Cname(_) => 1,
        })
        .sum();
    let cnames = records
        .iter()
        .filter(|r| matches!(r.data, RecordData::Cname(_)))
        .count();
    println!(
        "zone: {} names ({} CNAME, {} address), {} records",
        records.len(),
        cnames,
        records.len() - cnames,
        rrs
    );

    // Queries: 90% names of the zone (A), 10% names that do not exist.
    let mut q = String::new();
    for i in 0..QUERIES {
        if i % 10 == 9 {
            let _ = writeln!(
                q,
                "nx{}.ns{}.myfederation.svc.example.com A",
                rng.next() % 1_000_000,
                i % NAMESPACES
            );
        } else {
            let r = &records[(rng.next() % records.len() as u64) as usize];
            let _ = writeln!(q, "{} A", r.name);
        }
    }
    let queries = d.join("queries.txt");
    fs::write(&queries, q).expect("write queries");

    let mut runs = Vec::new();
    // fedmesh, in this process.
    {
        let pid = std::process::id();
        let before = rss_kib(pid);
        let mut config =
            ServerConfig::new("127.0.0.1:0".parse().expect("addr"), vec![zone_config()]);
        config.udp_sockets = 2;
        let server = Server::start(config).expect("fedmesh starts");
        let t = Instant::now();
        server.replace(records.clone());
        let load = t.elapsed();
        let after = rss_kib(pid);
        println!(
            "fedmesh: loaded in {:.0} ms; +{:.1} MiB RSS = {:.0} bytes per record ({} records)",
            load.as_secs_f64() * 1e3,
            (after - before) as f64 / 1024.0,
            (after - before) as f64 * 1024.0 / rrs as f64,
            rrs
        );
        let port = server.local_addr().port();
        let mut run = measure("fedmesh", pid, port, &queries, seconds);
        run.rss_mib = (after - before) as f64 / 1024.0;
        runs.push(run);
        change_latency(&server, &mut index, &mut rng, port);
    }
    let serial = 1;
    let zone_path = d.join("example.com.zone");
    fs::write(&zone_path, zone_file(&records, serial)).expect("write zone file");
    let zp = zone_path.display();
    let dd = d.display();

    // NSD.
    let port = free_port();
    let conf = format!(
        "server:\n  ip-address: 127.0.0.1@{port}\n  server-count: 2\n  reuseport: yes\n  username: \"\"\n  zonesdir: \"{dd}\"\n  database: \"\"\n  pidfile: \"{dd}/nsd.pid\"\n  xfrdfile: \"{dd}/xfrd.state\"\n  zonelistfile: \"{dd}/zone.list\"\n  verbosity: 0\nremote-control:\n  control-enable: no\nzone:\n  name: example.com\n  zonefile: \"{zp}\"\n"
    );
    fs::write(d.join("nsd.conf"), conf).expect("nsd.conf");
    if let Some(nsd) = daemon(
        Command::new("nsd")
            .args(["-d", "-c"])
            .arg(d.join("nsd.conf")),
        d,
        port,
    ) {
        runs.push(measure_tree("NSD", &nsd, port, &queries, seconds));
    }
    // Knot.
    let port = free_port();
    let conf = format!(
        "server:\n  listen: 127.0.0.1@{port}\n  rundir: \"{dd}\"\n  udp-workers: 2\n  tcp-workers: 1\n  background-workers: 1\ndatabase:\n  storage: \"{dd}/knot\"\nlog:\n  - target: stderr\n    any: warning\nzone:\n  - domain: example.com\n    file: \"{zp}\"\n    storage: \"{dd}\"\n    journal-content: none\n    zonefile-sync: -1\n"
    );
    fs::write(d.join("knot.conf"), conf).expect("knot.conf");
    if let Some(knot) = daemon(
        Command::new("knotd").args(["-c"]).arg(d.join("knot.conf")),
        d,
        port,
    ) {
        runs.push(measure_tree("Knot", &knot, port, &queries, seconds));
    }
    // BIND 9.
    let port = free_port();
    let conf = format!(
        "controls {{ }};\noptions {{ directory \"{dd}\"; pid-file \"{dd}/named.pid\"; session-keyfile \"{dd}/s.key\"; managed-keys-directory \"{dd}\"; listen-on port {port} {{ 127.0.0.1; }}; listen-on-v6 {{ none; }}; recursion no; notify no; dnssec-validation no; minimal-responses yes; }};\nzone \"example.com\" {{ type primary; file \"{zp}\"; }};\n"
    );
    fs::write(d.join("named.conf"), conf).expect("named.conf");
    if let Some(bind) = daemon(
        Command::new("named")
            .args(["-g", "-n", "2", "-c"])
            .arg(d.join("named.conf")),
        d,
        port,
    ) {
        runs.push(measure_tree("BIND 9", &bind, port, &queries, seconds));
    }

    let nsd_qps = runs
        .iter()
        .find(|r| r.server == "NSD")
        .map_or(f64::NAN, |r| r.qps);
    println!(
        "\n| server | QPS | x NSD | server CPU µs/query | p50 µs | p99 µs | p99.9 µs | RSS MiB | lost |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for r in &runs {
        println!(
            "| {} | {:.0} | {:.2} | {:.2} | {:.0} | {:.0} | {:.0} | {:.1} | {} |",
            r.server,
            r.qps,
            r.qps / nsd_qps,
            r.cpu_us,
            r.p50,
            r.p99,
            r.p999,
            r.rss_mib,
            r.lost.trim_start_matches("Queries lost:").trim()
        );
    }
}

/// Measures a daemon, whose CPU time includes any child processes it forked
/// (NSD serves from children): summed over the process and its children.
fn measure_tree(server: &'static str, d: &Daemon, port: u16, queries: &Path, seconds: u64) -> Run {
    let pid = d.0.id();
    let children =
        fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
    let kids: Vec<u32> = children
        .split_whitespace()
        .filter_map(|c| c.parse().ok())
        .collect();
    let all = |f: &dyn Fn(u32) -> f64| f(pid) + kids.iter().map(|k| f(*k)).sum::<f64>();
    let cpu0 = all(&cpu_seconds);
    let mut run = measure(server, pid, port, queries, seconds);
    let cpu = all(&cpu_seconds) - cpu0;
    // measure() counted only the parent: recompute with the children.
    let completed = run.qps * seconds as f64;
    run.cpu_us = cpu / completed.max(1.0) * 1e6;
    run.rss_mib = all(&|p| rss_kib(p) as f64) / 1024.0;
    run
}

/// Time from a shard's health change (Server::update) to the new answer on
/// the wire, over 200 changes.
fn change_latency(server: &Server, index: &mut DnsIndex, rng: &mut Rng, port: u16) {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
    socket
        .set_read_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");
    let target: SocketAddr = ([127, 0, 0, 1], port).into();
    let mut times = Vec::new();
    let mut buf = [0u8; 2048];
    for n in 0..200 {
        let i = (rng.next() % SERVICES as u64) as usize;
        let mut s = shards(rng, i);
        let cluster = (rng.next() % 13) as usize;
        let qname = format!(
            "svc{i}.ns{}.myfederation.svc.{}.example.com",
            i % NAMESPACES,
            CLUSTERS[cluster].1
        );
        let query = query_bytes(n as u16, &qname);
        let ask = |buf: &mut [u8]| -> Vec<u8> {
            let _ = socket.send_to(&query, target);
            socket
                .recv(buf)
                .map(|len| buf[..len].to_vec())
                .unwrap_or_default()
        };
        let before = ask(&mut buf);
        let old = index.service(&service(i, vec![]).service).to_vec();
        let was_healthy = old
            .iter()
            .any(|r| r.name.as_str() == qname && matches!(r.data, RecordData::Addresses { .. }));
        s[cluster].health = if was_healthy {
            Health::NoReadyEndpoints
        } else {
            Health::Healthy
        };
        let t = Instant::now();
        server.update(&index.upsert(&service(i, s), None).expect("records"));
        let mut changed = false;
        while t.elapsed() < Duration::from_secs(1) {
            if ask(&mut buf) != before {
                changed = true;
                break;
            }
        }
        if changed {
            times.push(t.elapsed().as_secs_f64() * 1e3);
        }
    }
    times.sort_by(f64::total_cmp);
    if times.is_empty() {
        println!("change to answer: no change seen");
        return;
    }
    let p = |q: f64| times[((times.len() - 1) as f64 * q) as usize];
    println!(
        "fedmesh change to answer ({} changes): p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        times.len(),
        p(0.5),
        p(0.99),
        times[times.len() - 1]
    );
}

fn query_bytes(id: u16, name: &str) -> Vec<u8> {
    let mut q = id.to_be_bytes().to_vec();
    q.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    for l in name.split('.') {
        q.push(l.len() as u8);
        q.extend_from_slice(l.as_bytes());
    }
    q.extend_from_slice(&[0, 0, 1, 0, 1]);
    q
}
