//! `fedmesh dns serve --in-cluster` as a pod's resolver reaches it: an
//! unbound resolver on loopback with stub zones for `cluster.local` (the
//! in-cluster server, watching an embedded member API server with simulated
//! nodes in us-west1-a) and `example.com` (fedmesh's authoritative server
//! holding the federation's public zone) resolves
//! `nginx.mynamespace.myfederation.svc.cluster.local` to the local shard,
//! then, once the member's pods are gone, through the public chain to the
//! nearest healthy shard, and back.
//!
//! The public zone's records are computed by `fedmesh_core::dns::DnsIndex`
//! from shard health the test sets (what the federation control plane
//! reports), so this test is about the in-cluster server and the chain.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fedmesh_apiserver::cluster::simulation::DataPlaneOptions;
use fedmesh_apiserver::testing::{TestServer, TestServerOptions};
use fedmesh_core::dns::{DnsConfig, DnsIndex, DnsLabel, DomainName};
use fedmesh_core::federation::{Addresses, Health, ServiceShards, Shard};
use fedmesh_core::{ClusterName, FederatedKey};
use fedmesh_dns::{Server, ServerConfig, ZoneConfig};

mod support;

use support::{BIN, command, text};

/// A child process, killed on drop.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Whether unbound is installed. Missing, the test is skipped with a
/// message, unless `CI` is set: CI installs it (`.ci/run`), so there a
/// missing unbound is a failure.
fn unbound_installed() -> bool {
    if Command::new("unbound").arg("-V").output().is_ok() {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "unbound is not installed, and CI is set: install the Debian package unbound"
    );
    eprintln!(
        "SKIPPED: unbound is not installed (Debian package unbound); set CI=1 to make this a failure"
    );
    false
}

fn label(s: &str) -> DnsLabel {
    DnsLabel::new("label", s).unwrap()
}

fn name(s: &str) -> DomainName {
    DomainName::new("name", s).unwrap()
}

const WEST_INGRESS: &str = "203.0.113.20";
const EAST_INGRESS: &str = "203.0.113.10";

/// nginx's shards as the control plane sees them: west (this member, in
/// us-west1-a) healthy or not, east (us-east1-b) healthy.
fn nginx_shards(west_healthy: bool) -> ServiceShards {
    let shard = |cluster: &str, region: &str, zone: &str, ip: &str, healthy: bool| {
        let mut addresses = Addresses::default();
        addresses.ipv4.insert(ip.parse().unwrap());
        Shard {
            cluster: ClusterName::new(cluster).unwrap(),
            region: Some(region.to_owned()),
            zones: vec![zone.to_owned()],
            addresses,
            health: if healthy {
                Health::Healthy
            } else {
                Health::NoReadyEndpoints
            },
        }
    };
    ServiceShards {
        service: FederatedKey::new("mynamespace", "nginx"),
        errors: Default::default(),
        shards: vec![
            shard("west", "us-west1", "us-west1-a", WEST_INGRESS, west_healthy),
            shard("east", "us-east1", "us-east1-b", EAST_INGRESS, true),
        ],
    }
}

/// The member's Deployment and its copy of the federated Service (marked
/// with the federation label, as the control plane writes it).
const MEMBER_OBJECTS: &str = "
apiVersion: v1
kind: Namespace
metadata: {name: mynamespace}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: nginx, namespace: mynamespace}
spec:
  replicas: 1
  selector: {matchLabels: {run: nginx}}
  template:
    metadata: {labels: {run: nginx}}
    spec: {containers: [{name: nginx, image: nginx}]}
---
apiVersion: v1
kind: Service
metadata:
  name: nginx
  namespace: mynamespace
  labels: {federation.fedmesh.io/federation: myfederation}
spec:
  selector: {run: nginx}
  ports: [{port: 80}]
";

async fn kubectl(member: &TestServer, args: &[&str]) -> String {
    let mut all = vec![
        "--kubeconfig".to_owned(),
        member.kubeconfig_path().display().to_string(),
    ];
    all.extend(args.iter().map(|a| a.to_string()));
    let out = command("kubectl", all).await;
    assert!(out.status.success(), "kubectl {args:?}: {}", text(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The answer section from `resolver` for `qname` A, one `NAME TYPE DATA`
/// per record (TTLs left out), or the failure dig printed.
async fn resolve(resolver: SocketAddr, qname: &str) -> Vec<String> {
    let out = command(
        "dig",
        vec![
            format!("@{}", resolver.ip()),
            "-p".into(),
            resolver.port().to_string(),
            "+time=2".into(),
            "+tries=1".into(),
            "+noall".into(),
            "+answer".into(),
            qname.into(),
            "A".into(),
        ],
    )
    .await;
    text(&out)
        .lines()
        .filter(|l| !l.starts_with(';') && !l.trim().is_empty())
        .map(|l| {
            let fields: Vec<&str> = l.split_whitespace().collect();
            match fields.as_slice() {
                [name, _ttl, _class, kind, data] => format!("{name} {kind} {data}"),
                _ => l.to_owned(),
            }
        })
        .collect()
}

/// Polls [`resolve`] until it gives `want` (20 s at most), and prints how
/// long that took.
async fn resolves_to(resolver: SocketAddr, qname: &str, want: &[String], what: &str) {
    let start = Instant::now();
    let deadline = start + Duration::from_secs(20);
    loop {
        let got = resolve(resolver, qname).await;
        if got == want {
            eprintln!("{what}: answered as expected after {:?}", start.elapsed());
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: {qname} resolves to {got:#?}, not {want:#?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Starts `fedmesh dns serve --in-cluster` on a free port and returns it
/// with the address it printed.
fn start_in_cluster(kubeconfig: &Path, log: &Path) -> (Process, SocketAddr) {
    let mut child = Command::new(BIN)
        .args([
            "dns",
            "serve",
            "--in-cluster",
            "--federation",
            "myfederation=example.com",
            "--cluster-domain",
            "cluster.local",
            "--ttl",
            "1",
            "--listen",
            "127.0.0.1:0",
            "--log",
            "info,fedmesh_controller=debug",
        ])
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let process = Process(child);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx
        .recv_timeout(Duration::from_secs(30))
        .unwrap_or_else(|_| {
            panic!(
                "no 'serving' line within 30s; log:\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            )
        });
    assert!(
        line.starts_with("serving cluster.local for myfederation=example.com on "),
        "{line}"
    );
    let addr = line
        .split(" on ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no address in {line:?}"));
    (process, addr)
}

/// unbound on a free loopback port with stub zones for the two servers.
fn start_unbound(dir: &Path, cluster: SocketAddr, public: SocketAddr) -> (Process, SocketAddr) {
    let port = support_free_port();
    let conf = format!(
        r#"server:
    interface: 127.0.0.1
    port: {port}
    do-ip6: no
    do-not-query-localhost: no
    access-control: 127.0.0.0/8 allow
    username: ""
    chroot: ""
    directory: "{dir}"
    pidfile: "{dir}/unbound.pid"
    use-syslog: no
    verbosity: 1
    module-config: "iterator"
    qname-minimisation: no
    cache-max-negative-ttl: 1
stub-zone:
    name: "cluster.local"
    stub-addr: {cluster_ip}@{cluster_port}
stub-zone:
    name: "example.com"
    stub-addr: {public_ip}@{public_port}
remote-control:
    control-enable: no
"#,
        dir = dir.display(),
        cluster_ip = cluster.ip(),
        cluster_port = cluster.port(),
        public_ip = public.ip(),
        public_port = public.port(),
    );
    let path = dir.join("unbound.conf");
    std::fs::write(&path, conf).unwrap();
    let child = Command::new("unbound")
        .arg("-d")
        .arg("-c")
        .arg(&path)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("unbound.log")).unwrap())
        .spawn()
        .expect("unbound starts");
    (Process(child), SocketAddr::from(([127, 0, 0, 1], port)))
}

/// A loopback port free for UDP now.
fn support_free_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unbound_resolves_the_nearest_healthy_shard_through_the_in_cluster_server() {
    if !unbound_installed() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut member = TestServer::start_with(TestServerOptions {
        name: "west".into(),
        data_plane: DataPlaneOptions {
            nodes: 1,
            node_prefix: "west-node".into(),
            zone: "us-west1-a".into(),
            region: "us-west1".into(),
            start_delay: Duration::from_millis(50),
            ..DataPlaneOptions::default()
        },
        ..TestServerOptions::default()
    })
    .await
    .expect("member API server");
    let manifest = dir.path().join("member.yaml");
    std::fs::write(&manifest, MEMBER_OBJECTS).unwrap();
    kubectl(&member, &["apply", "-f", &manifest.display().to_string()]).await;
    let cluster_ip = kubectl(
        &member,
        &[
            "get",
            "service",
            "nginx",
            "-n",
            "mynamespace",
            "-o",
            "jsonpath={.spec.clusterIP}",
        ],
    )
    .await;

    // The federation's public zone, TTL 1 s so that unbound asks again.
    let mut zone_config = ZoneConfig::new(
        name("example.com"),
        name("ns1.example.com"),
        name("hostmaster.example.com"),
    );
    zone_config.minimum = 1;
    let public = Server::start(ServerConfig::new(
        "127.0.0.1:0".parse().unwrap(),
        vec![zone_config],
    ))
    .unwrap();
    let mut dns = DnsConfig::new(label("myfederation"), name("example.com"));
    dns.ttl = 1;
    let mut index = DnsIndex::new(dns);
    public.update(&index.upsert(&nginx_shards(true), None).unwrap());

    let log = dir.path().join("in-cluster.log");
    let (_in_cluster, cluster_addr) = start_in_cluster(&member.kubeconfig_path(), &log);
    let (_unbound, resolver) = start_unbound(dir.path(), cluster_addr, public.local_addr());

    let qname = "nginx.mynamespace.myfederation.svc.cluster.local";
    let local = vec![
        format!("{qname}. CNAME nginx.mynamespace.svc.cluster.local."),
        format!("nginx.mynamespace.svc.cluster.local. A {cluster_ip}"),
    ];
    let public_name = "nginx.mynamespace.myfederation.svc";
    let failed_over = vec![
        format!("{qname}. CNAME {public_name}.us-west1-a.example.com."),
        format!("{public_name}.us-west1-a.example.com. CNAME {public_name}.us-west1.example.com."),
        format!("{public_name}.us-west1.example.com. CNAME {public_name}.example.com."),
        format!("{public_name}.example.com. A {EAST_INGRESS}"),
    ];

    // The local shard is healthy: the ClusterIP, as KubeDNS answered.
    resolves_to(resolver, qname, &local, "local shard ready").await;

    // The member's API goes down: the server says so and the last answer
    // stays (after its TTL too).
    member.kill();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !std::fs::read_to_string(&log)
        .unwrap_or_default()
        .contains("serving the last records until it can")
    {
        assert!(
            Instant::now() < deadline,
            "no warning about the member's API within 10s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    resolves_to(resolver, qname, &local, "member API down").await;
    member.restart().await.expect("member API restarts");

    // The local shard loses its pods; the control plane marks west
    // unhealthy in the public zone: the chain leads to east.
    kubectl(
        &member,
        &[
            "scale",
            "deployment",
            "nginx",
            "-n",
            "mynamespace",
            "--replicas=0",
        ],
    )
    .await;
    public.update(&index.upsert(&nginx_shards(false), None).unwrap());
    resolves_to(resolver, qname, &failed_over, "local shard failed").await;

    // Pods back: the local shard again.
    kubectl(
        &member,
        &[
            "scale",
            "deployment",
            "nginx",
            "-n",
            "mynamespace",
            "--replicas=1",
        ],
    )
    .await;
    public.update(&index.upsert(&nginx_shards(true), None).unwrap());
    resolves_to(resolver, qname, &local, "local shard back").await;

    // Not a federation query: NXDOMAIN inside the cluster domain (unbound
    // passes the in-cluster server's answer on), REFUSED outside it.
    let out = command(
        "dig",
        vec![
            format!("@{}", cluster_addr.ip()),
            "-p".into(),
            cluster_addr.port().to_string(),
            "+time=2".into(),
            "+tries=1".into(),
            "other.mynamespace.myfederation.svc.cluster.local".into(),
        ],
    )
    .await;
    assert!(text(&out).contains("status: NXDOMAIN"), "{}", text(&out));
    let out = command(
        "dig",
        vec![
            format!("@{}", cluster_addr.ip()),
            "-p".into(),
            cluster_addr.port().to_string(),
            "+time=2".into(),
            "+tries=1".into(),
            "nginx.mynamespace.myfederation.svc.example.com".into(),
        ],
    )
    .await;
    assert!(text(&out).contains("status: REFUSED"), "{}", text(&out));
}

/// `dns serve` is one command with two modes: the arguments of one mode
/// given to the other are refused with a message that says why, before
/// anything is started.
#[test]
fn serve_refuses_arguments_of_the_other_mode() {
    let refused = |args: &[&str], code: i32, expected: &str| {
        let out = Command::new(BIN)
            .args(["dns", "serve", "--listen", "127.0.0.1:0"])
            .args(args)
            .output()
            .unwrap();
        let text = text(&out);
        assert_eq!(out.status.code(), Some(code), "{args:?}: {text}");
        assert!(text.contains(expected), "{args:?}: {text}");
        assert!(!text.contains("serving"), "{args:?}: {text}");
    };
    // Caught by the argument parser.
    let in_cluster = ["--in-cluster", "--federation", "f=example.com"];
    refused(
        &[&in_cluster[..], &["--zone", "example.com"]].concat(),
        2,
        "cannot be used with",
    );
    refused(&["--federation", "f"], 2, "--zone <ZONE>");
    // Caught when the settings are read, before anything listens.
    let federation = ["--federation", "f", "--zone", "example.com"];
    refused(
        &[&federation[..], &["--cluster-domain", "cluster.local"]].concat(),
        2,
        "--cluster-domain is an --in-cluster setting",
    );
    refused(
        &["--in-cluster", "--federation", "myfederation"],
        2,
        "expected NAME=DNS-SUFFIX",
    );
    refused(
        &[&federation[..], &["--federation", "b"]].concat(),
        2,
        "--federation is given 2 times",
    );
}
