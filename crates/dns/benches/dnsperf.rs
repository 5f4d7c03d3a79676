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

/// Whether the server on `port` answers `name` from the loaded zone.
fn answers(port: u16, name: &str) -> bool {
    Command::new("dig")
        .args(["@127.0.0.1", "-p", &port.to_string()])
        .args(["+short", "+time=1", "+tries=1", name, "A"])
        .output()
        // dig prints errors (";; communications error ...") to stdout too.
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .any(|l| !l.is_empty() && !l.starts_with(';'))
        })
        .unwrap_or(false)
}

/// How the run is set up, from the environment.
struct Setup {
    /// Seconds of each throughput run (`DNSPERF_SECONDS`, 10).
    seconds: u64,
    /// Rounds over every server (`DNSPERF_ROUNDS`, 3).
    rounds: usize,
    /// CPUs of dnsperf and of the servers, when pinned (`DNSPERF_PIN`: on
    /// by default with two CPUs or more; `0` turns it off).
    pin: Option<(usize, usize)>,
    /// Answering threads (sockets) of every server (`DNSPERF_WORKERS`: 1
    /// when pinned, one per CPU otherwise).
    workers: usize,
    /// dnsperf threads (`DNSPERF_CLIENT_THREADS`: 1 when pinned, 2 otherwise).
    client_threads: usize,
    /// The servers to run (`DNSPERF_SERVERS`, comma-separated; all by default).
    servers: Option<Vec<String>>,
}

impl Setup {
    fn from_env() -> Self {
        let env = |key: &str| std::env::var(key).ok();
        let number = |key: &str| env(key).and_then(|v| v.parse::<u64>().ok());
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        let pin = env("DNSPERF_PIN").map_or(cpus >= 2, |v| v != "0");
        let pin = pin.then_some((0, 1));
        Self {
            seconds: number("DNSPERF_SECONDS").unwrap_or(10),
            rounds: number("DNSPERF_ROUNDS").unwrap_or(3).max(1) as usize,
            pin,
            workers: number("DNSPERF_WORKERS")
                .map_or(if pin.is_some() { 1 } else { cpus }, |n| n as usize),
            client_threads: number("DNSPERF_CLIENT_THREADS")
                .map_or(if pin.is_some() { 1 } else { 2 }, |n| n as usize),
            servers: env("DNSPERF_SERVERS")
                .map(|v| v.split(',').map(|s| s.trim().to_lowercase()).collect()),
        }
    }

    fn wants(&self, server: &str) -> bool {
        self.servers
            .as_ref()
            .is_none_or(|s| s.iter().any(|w| server.to_lowercase().starts_with(w)))
    }

    /// `program`, on the servers' CPU when pinned.
    fn server_command(&self, program: &str) -> Command {
        pinned(program, self.pin.map(|(_, server)| server))
    }

    fn client_command(&self) -> Command {
        pinned("dnsperf", self.pin.map(|(client, _)| client))
    }
}

fn pinned(program: &str, cpu: Option<usize>) -> Command {
    match cpu {
        Some(cpu) => {
            let mut cmd = Command::new("taskset");
            cmd.args(["-c", &cpu.to_string(), program]);
            cmd
        }
        None => Command::new(program),
    }
}

/// Fields of /proc/PID/stat after the command name.
fn stat_fields(pid: u32) -> Vec<String> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, a)| a);
    after.split_whitespace().map(str::to_owned).collect()
}

/// User and system CPU seconds of a process (all its threads).
fn cpu_seconds(pid: u32) -> [f64; 2] {
    let f = stat_fields(pid);
    let field = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    [field(11) / 100.0, field(12) / 100.0]
}

/// `pid` and every process below it (NSD serves from grandchildren).
fn tree(pid: u32) -> Vec<u32> {
    let mut parents = Vec::new();
    for entry in fs::read_dir("/proc").into_iter().flatten().flatten() {
        if let Some(p) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        {
            let ppid = stat_fields(p).get(1).and_then(|v| v.parse::<u32>().ok());
            parents.push((p, ppid.unwrap_or(0)));
        }
    }
    let mut all = vec![pid];
    let mut at = 0;
    while at < all.len() {
        let parent = all[at];
        all.extend(
            parents
                .iter()
                .filter(|(_, pp)| *pp == parent)
                .map(|(p, _)| *p),
        );
        at += 1;
    }
    all
}

/// Proportional set size (shared pages split between the processes sharing
/// them), KiB.
fn pss_kib(pid: u32) -> u64 {
    let rollup = fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap_or_default();
    rollup
        .lines()
        .find_map(|l| l.strip_prefix("Pss:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn rss_kib(pid: u32) -> u64 {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// The 1-minute load average.
fn load() -> f64 {
    fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next()?.parse().ok())
        .unwrap_or(f64::NAN)
}

/// A server under test.
struct Target {
    server: &'static str,
    port: u16,
    /// The process measured, with its descendants when `whole_tree`.
    pid: u32,
    whole_tree: bool,
    /// Memory of the loaded zone, MiB.
    memory_mib: f64,
    _daemon: Option<Daemon>,
}

impl Target {
    fn pids(&self) -> Vec<u32> {
        if self.whole_tree {
            tree(self.pid)
        } else {
            vec![self.pid]
        }
    }

    /// User and system CPU seconds.
    fn cpu(&self) -> [f64; 2] {
        self.pids()
            .into_iter()
            .map(cpu_seconds)
            .fold([0.0; 2], |[u, s], [pu, ps]| [u + pu, s + ps])
    }
}

struct Run {
    server: &'static str,
    round: usize,
    qps: f64,
    lost: String,
    cpu_us: f64,
    /// The user-space part of `cpu_us` (the rest is the kernel's).
    user_us: f64,
    /// Server CPU seconds per second of the run.
    busy: f64,
    p50: f64,
    p99: f64,
    p999: f64,
    load: f64,
}

fn dnsperf(setup: &Setup, port: u16, queries: &Path, args: &[&str]) -> String {
    let out = setup
        .client_command()
        .args(["-s", "127.0.0.1", "-p", &port.to_string(), "-d"])
        .arg(queries)
        .args(args)
        .output()
        .expect("dnsperf runs (Debian package dnsperf)");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn measure(setup: &Setup, target: &Target, round: usize, queries: &Path) -> Run {
    let cpu0 = target.cpu();
    let (secs, threads) = (setup.seconds.to_string(), setup.client_threads.to_string());
    let out = dnsperf(
        setup,
        target.port,
        queries,
        &["-l", &secs, "-c", "4", "-T", &threads, "-q", "256"],
    );
    let [user, system] = target.cpu();
    let (user, cpu) = (user - cpu0[0], user + system - cpu0[0] - cpu0[1]);
    let load = load();
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
    let run_time: f64 = field("Run time (s):")
        .split_whitespace()
        .last()
        .and_then(|v| v.parse().ok())
        .unwrap_or(f64::NAN);
    let completed: f64 = field("Queries completed:")
        .split_whitespace()
        .nth(2)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    // Latency at a fixed, equal rate for every server, from dnsperf's
    // per-query lines (`> NOERROR name A 0.000123`).
    let verbose = dnsperf(
        setup,
        target.port,
        queries,
        &["-l", "5", "-Q", "20000", "-v", "-c", "2", "-T", "1"],
    );
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
        server: target.server,
        round,
        qps,
        lost: field("Queries lost:")
            .trim_start_matches("Queries lost:")
            .trim()
            .to_owned(),
        cpu_us: cpu / completed.max(1.0) * 1e6,
        user_us: user / completed.max(1.0) * 1e6,
        busy: cpu / run_time,
        p50: pct(0.50),
        p99: pct(0.99),
        p999: pct(0.999),
        load,
    }
}

struct Daemon(Child);
impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts a server process and waits (at most 3 minutes) until it answers
/// `probe` from the loaded zone.
fn daemon(
    server: &'static str,
    cmd: &mut Command,
    dir: &Path,
    port: u16,
    probe: &str,
) -> Option<Target> {
    let log_path = dir.join(format!("{server}.log"));
    let log = fs::File::create(&log_path).ok()?;
    let child = cmd.stdout(Stdio::null()).stderr(log).spawn().ok()?;
    let d = Daemon(child);
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(180) {
        if answers(port, probe) {
            let pid = d.0.id();
            println!(
                "{server}: answering after {:.1} s",
                start.elapsed().as_secs_f64()
            );
            return Some(Target {
                server,
                port,
                pid,
                whole_tree: true,
                memory_mib: 0.0,
                _daemon: Some(d),
            });
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    eprintln!(
        "{server} did not answer: {}",
        fs::read_to_string(&log_path).unwrap_or_default()
    );
    None
}

fn median(mut v: Vec<f64>) -> f64 {
    v.retain(|x| x.is_finite());
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        return f64::NAN;
    }
    v[v.len() / 2]
}

fn main() {
    let setup = Setup::from_env();
    let dir = match std::env::var("DNSPERF_DIR") {
        Ok(keep) => {
            fs::create_dir_all(&keep).expect("DNSPERF_DIR");
            (None, std::path::PathBuf::from(keep))
        }
        Err(_) => {
            let t = tempfile::tempdir().expect("tempdir");
            let p = t.path().to_owned();
            (Some(t), p)
        }
    };
    let d = dir.1.as_path();
    let mut rng = Rng(0x5eed_f00d_d00d_cafe);
    let mut index = DnsIndex::new(DnsConfig::new(label("myfederation"), name("example.com")));
    for i in 0..SERVICES {
        let s = service(i, shards(&mut rng, i));
        index.upsert(&s, None).expect("records");
    }
    let mut records: Vec<NameRecords> = index.records().cloned().collect();
    // The nameserver's address, which BIND requires of an in-zone NS.
    records.push(NameRecords {
        name: name("ns1.example.com"),
        ttl: 3600,
        data: RecordData::Addresses {
            v4: vec![[127, 0, 0, 1].into()],
            v6: Vec::new(),
        },
    });
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
    println!(
        "setup: {} s x {} rounds; pinned (dnsperf CPU, servers CPU): {:?}; {} answering threads per server; {} dnsperf threads; load {:.2}",
        setup.seconds,
        setup.rounds,
        setup.pin,
        setup.workers,
        setup.client_threads,
        load()
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
    let probe = records[0].name.to_string();

    let mut targets = Vec::new();
    // fedmesh, in this process (pinned whole: its main thread only waits).
    let mut fedmesh = None;
    if setup.wants("fedmesh") {
        let pid = std::process::id();
        let before = rss_kib(pid);
        let mut config =
            ServerConfig::new("127.0.0.1:0".parse().expect("addr"), vec![zone_config()]);
        config.udp_sockets = setup.workers;
        let server = Server::start(config).expect("fedmesh starts");
        let t = Instant::now();
        server.replace(records.clone());
        let loaded = t.elapsed();
        let memory_mib = rss_kib(pid).saturating_sub(before) as f64 / 1024.0;
        println!(
            "fedmesh: loaded in {:.0} ms; +{memory_mib:.1} MiB RSS = {:.0} bytes per record",
            loaded.as_secs_f64() * 1e3,
            memory_mib * 1024.0 * 1024.0 / rrs as f64,
        );
        if let Some((_, cpu)) = setup.pin {
            let pinned = Command::new("taskset")
                .args(["-a", "-p", "-c", &cpu.to_string(), &pid.to_string()])
                .stdout(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            assert!(pinned, "taskset pins fedmesh's threads");
        }
        targets.push(Target {
            server: "fedmesh",
            port: server.local_addr().port(),
            pid,
            whole_tree: false,
            memory_mib,
            _daemon: None,
        });
        fedmesh = Some(server);
    }
    let serial = 1;
    let zone_path = d.join("example.com.zone");
    fs::write(&zone_path, zone_file(&records, serial)).expect("write zone file");
    let zp = zone_path.display();
    let dd = d.display();
    let workers = setup.workers;

    if setup.wants("nsd") {
        let port = free_port();
        // Debian's NSD limits responses per client /24 (RRL, 200 a second by
        // default) and dnsperf's queries all come from 127.0.0.1: off, as the
        // other servers have no such limit unless configured.
        let conf = format!(
            "server:\n  ip-address: 127.0.0.1@{port}\n  server-count: {workers}\n  reuseport: yes\n  username: \"\"\n  zonesdir: \"{dd}\"\n  database: \"\"\n  pidfile: \"{dd}/nsd.pid\"\n  xfrdfile: \"{dd}/xfrd.state\"\n  zonelistfile: \"{dd}/zone.list\"\n  verbosity: 0\n  rrl-ratelimit: 0\nremote-control:\n  control-enable: no\nzone:\n  name: example.com\n  zonefile: \"{zp}\"\n"
        );
        fs::write(d.join("nsd.conf"), conf).expect("nsd.conf");
        let mut cmd = setup.server_command("nsd");
        cmd.args(["-d", "-c"]).arg(d.join("nsd.conf"));
        targets.extend(daemon("NSD", &mut cmd, d, port, &probe));
    }
    if setup.wants("knot") {
        let port = free_port();
        let conf = format!(
            "server:\n  listen: 127.0.0.1@{port}\n  rundir: \"{dd}\"\n  udp-workers: {workers}\n  tcp-workers: 1\n  background-workers: 1\ndatabase:\n  storage: \"{dd}/knot\"\nlog:\n  - target: stderr\n    any: warning\nzone:\n  - domain: example.com\n    file: \"{zp}\"\n    storage: \"{dd}\"\n    journal-content: none\n    zonefile-sync: -1\n"
        );
        fs::write(d.join("knot.conf"), conf).expect("knot.conf");
        let mut cmd = setup.server_command("knotd");
        cmd.args(["-c"]).arg(d.join("knot.conf"));
        targets.extend(daemon("Knot", &mut cmd, d, port, &probe));
    }
    if setup.wants("bind") {
        let port = free_port();
        let conf = format!(
            "controls {{ }};\noptions {{ directory \"{dd}\"; pid-file \"{dd}/named.pid\"; session-keyfile \"{dd}/s.key\"; managed-keys-directory \"{dd}\"; listen-on port {port} {{ 127.0.0.1; }}; listen-on-v6 {{ none; }}; recursion no; notify no; dnssec-validation no; minimal-responses yes; }};\nzone \"example.com\" {{ type primary; file \"{zp}\"; }};\n"
        );
        fs::write(d.join("named.conf"), conf).expect("named.conf");
        let mut cmd = setup.server_command("named");
        cmd.args(["-g", "-n", &workers.to_string(), "-c"])
            .arg(d.join("named.conf"));
        targets.extend(daemon("BIND 9", &mut cmd, d, port, &probe));
    }
    // The daemons' memory once loaded (their processes share pages: PSS).
    for t in targets.iter_mut().filter(|t| t.whole_tree) {
        t.memory_mib = t.pids().into_iter().map(pss_kib).sum::<u64>() as f64 / 1024.0;
    }
    // Let the loaders' work (and any reload a daemon starts) finish.
    std::thread::sleep(Duration::from_secs(3));

    let mut runs = Vec::new();
    for round in 0..setup.rounds {
        // Each round starts with another server, so none always goes first.
        for k in 0..targets.len() {
            let t = &targets[(round + k) % targets.len()];
            let run = measure(&setup, t, round, &queries);
            println!(
                "round {round} {}: {:.0} QPS, {:.2} µs CPU/query ({:.2} user), server busy {:.2} CPU, lost {}, load {:.2}",
                run.server, run.qps, run.cpu_us, run.user_us, run.busy, run.lost, run.load
            );
            runs.push(run);
        }
    }
    if let (Some(server), Some(t)) = (&fedmesh, targets.iter().find(|t| t.server == "fedmesh")) {
        change_latency(server, &mut index, &mut rng, t.port);
    }

    let nsd = |round: usize| {
        runs.iter()
            .find(|r| r.server == "NSD" && r.round == round)
            .map_or(f64::NAN, |r| r.qps)
    };
    println!(
        "\n| server | QPS | x NSD | server CPU µs/query | of which user | server busy (CPUs) | p50 µs | p99 µs | p99.9 µs | memory MiB | bytes/record | lost (last round) |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|");
    for t in &targets {
        let mine: Vec<&Run> = runs.iter().filter(|r| r.server == t.server).collect();
        let of = |f: &dyn Fn(&Run) -> f64| median(mine.iter().map(|r| f(r)).collect());
        println!(
            "| {} | {:.0} | {:.2} | {:.2} | {:.2} | {:.2} | {:.0} | {:.0} | {:.0} | {:.1} | {:.0} | {} |",
            t.server,
            of(&|r| r.qps),
            of(&|r| r.qps / nsd(r.round)),
            of(&|r| r.cpu_us),
            of(&|r| r.user_us),
            of(&|r| r.busy),
            of(&|r| r.p50),
            of(&|r| r.p99),
            of(&|r| r.p999),
            t.memory_mib,
            t.memory_mib * 1024.0 * 1024.0 / rrs as f64,
            mine.last().map_or("", |r| r.lost.as_str()),
        );
    }
    println!(
        "(medians over {} rounds; x NSD is the median of each round's ratio; load at the end {:.2})",
        setup.rounds,
        load()
    );
    drop(dir);
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
