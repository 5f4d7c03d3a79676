//! Helpers for the DNS tests: the seed's federation, a server on loopback,
//! and dig.

#![allow(dead_code)] // each test binary uses a part

use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use fedmesh_core::dns::{DnsConfig, DnsIndex, DnsLabel, DomainName};
pub use fedmesh_core::federation::Health;
use fedmesh_core::federation::{Addresses, ServiceShards, Shard};
use fedmesh_core::{ClusterName, FederatedKey};
use fedmesh_dns::{Server, ServerConfig, ZoneConfig};

pub const SECRET: &str = "c2VjcmV0LWZvci1mZWRtZXNoLXRlc3RzLTMyLWJ5dGVz";

pub fn name(s: &str) -> DomainName {
    DomainName::new("name", s).unwrap()
}

pub fn label(s: &str) -> DnsLabel {
    DnsLabel::new("label", s).unwrap()
}

pub fn zone() -> ZoneConfig {
    ZoneConfig::new(
        name("example.com"),
        name("ns1.example.com"),
        name("hostmaster.example.com"),
    )
}

pub fn config() -> ServerConfig {
    let mut config = ServerConfig::new("127.0.0.1:0".parse().unwrap(), vec![zone()]);
    config.udp_sockets = 2;
    config
}

pub fn shard(cluster: &str, region: &str, zone: &str, ips: &[&str], healthy: bool) -> Shard {
    Shard {
        cluster: ClusterName::new(cluster).unwrap(),
        region: Some(region.into()),
        zones: vec![zone.into()],
        addresses: Addresses::from_strings(ips.iter().copied()),
        health: if healthy {
            Health::Healthy
        } else {
            Health::NoReadyEndpoints
        },
    }
}

pub fn service(name: &str, shards: Vec<Shard>) -> ServiceShards {
    ServiceShards {
        service: FederatedKey::new("mynamespace", name),
        shards,
        errors: Default::default(),
    }
}

/// The seed's nginx shards (seed 002's listing).
pub fn seed_shards() -> Vec<Shard> {
    vec![
        shard(
            "uc-a",
            "us-central1",
            "us-central1-a",
            &["104.197.247.191"],
            true,
        ),
        shard(
            "uc-b",
            "us-central1",
            "us-central1-b",
            &["104.197.244.180"],
            true,
        ),
        shard(
            "uc-c",
            "us-central1",
            "us-central1-c",
            &["104.197.245.170"],
            true,
        ),
        shard(
            "uc-f",
            "us-central1",
            "us-central1-f",
            &["104.197.240.1"],
            false,
        ),
        shard(
            "ae-a",
            "asia-east1",
            "asia-east1-a",
            &["130.211.57.243"],
            true,
        ),
        shard(
            "ae-b",
            "asia-east1",
            "asia-east1-b",
            &["130.211.50.1"],
            false,
        ),
        shard(
            "ae-c",
            "asia-east1",
            "asia-east1-c",
            &["130.211.56.221", "2001:db8::1"],
            true,
        ),
        shard(
            "ew-d",
            "europe-west1",
            "europe-west1-d",
            &["104.155.0.1"],
            false,
        ),
    ]
}

pub fn index() -> DnsIndex {
    DnsIndex::new(DnsConfig::new(label("myfederation"), name("example.com")))
}

/// A server with the seed's records loaded.
pub fn seed_server(config: ServerConfig) -> (Server, DnsIndex) {
    let server = Server::start(config).unwrap();
    let mut index = index();
    let change = index
        .upsert(&service("nginx", seed_shards()), None)
        .unwrap();
    server.update(&change);
    (server, index)
}

pub const NGINX: &str = "nginx.mynamespace.myfederation.svc";

/// Runs dig against `addr` with `args` (+time=2 +tries=1 added) and returns stdout.
pub fn dig(addr: SocketAddr, args: &[&str]) -> String {
    let out = Command::new("dig")
        .arg(format!("@{}", addr.ip()))
        .args(["-p", &addr.port().to_string(), "+time=2", "+tries=1"])
        .args(args)
        .output()
        .expect("dig runs (Debian package dnsutils)");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// dig +short.
pub fn short(addr: SocketAddr, args: &[&str]) -> Vec<String> {
    let mut all = vec!["+short"];
    all.extend_from_slice(args);
    dig(addr, &all).lines().map(str::to_owned).collect()
}

/// [`short`] in sorted order, for servers (BIND) that rotate the records of
/// a set from one answer to the next.
pub fn short_sorted(addr: SocketAddr, args: &[&str]) -> Vec<String> {
    let mut lines = short(addr, args);
    lines.sort();
    lines
}

/// The status dig printed (NOERROR, NXDOMAIN, ...).
pub fn status(out: &str) -> &str {
    out.split("status: ")
        .nth(1)
        .and_then(|s| s.split(',').next())
        .unwrap_or("none")
}

/// The header flags dig printed (`qr aa rd`).
pub fn flags(out: &str) -> &str {
    out.split("flags: ")
        .nth(1)
        .and_then(|s| s.split(';').next())
        .unwrap_or("")
}

/// Polls `check` every 50 ms until it is true or `limit` passes.
pub fn wait_until(limit: Duration, mut check: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if check() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// A free loopback port for both UDP and TCP.
pub fn free_port() -> u16 {
    loop {
        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = udp.local_addr().unwrap().port();
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// A server process the test started, stopped when dropped.
pub struct Process(pub Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
