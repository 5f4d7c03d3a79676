//! Federated service DNS from live federation state, as a user runs it:
//! `fedmesh federation serve --dns-zone` as a process, member API servers
//! in zones of two regions with the simulated data plane, a Deployment
//! behind the federated Service in each, and `dig` against the server.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod support;

use support::federation::{Process, eventually, join, kubectl, member, stop};
use support::{BIN, command, dig_answer};

/// The Service and its Deployment, applied in the federation (the
/// Service) and in each member (the Deployment).
const SERVICE: &str = "apiVersion: v1
kind: Service
metadata:
  name: nginx
  namespace: default
spec:
  type: LoadBalancer
  selector:
    run: nginx
  ports:
  - name: http
    port: 80
    protocol: TCP
";

const DEPLOYMENT: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: nginx
  namespace: default
spec:
  replicas: 1
  selector:
    matchLabels:
      run: nginx
  template:
    metadata:
      labels:
        run: nginx
    spec:
      containers:
      - name: nginx
        image: nginx
";

/// `dig @127.0.0.1 -p PORT +short NAME A`: the CNAME chain then the
/// addresses, one per line, addresses sorted (the chain's order kept).
async fn dig(port: u16, name: &str) -> Vec<String> {
    let out = command(
        "dig",
        [
            "@127.0.0.1",
            "-p",
            &port.to_string(),
            "+short",
            "+time=1",
            "+tries=1",
            name,
            "A",
        ]
        .map(str::to_owned)
        .to_vec(),
    )
    .await;
    dig_answer(&String::from_utf8_lossy(&out.stdout))
}

/// Waits (at most 20 s) until `name` answers `want`.
async fn answers(port: u16, name: &str, want: &[String]) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let got = dig(port, name).await;
        if got == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{name}: wanted {want:?}, last answer {got:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn fqdn(scope: &str) -> String {
    match scope {
        "" => "nginx.default.myfederation.svc.example.com".into(),
        scope => format!("nginx.default.myfederation.svc.{scope}.example.com"),
    }
}

async fn scale(kubeconfig: &Path, replicas: u32) {
    let (ok, out) = kubectl(
        kubeconfig,
        &[
            "scale",
            "deployment",
            "nginx",
            &format!("--replicas={replicas}"),
        ],
    )
    .await;
    assert!(ok, "{out}");
}

/// The member's load-balancer address for nginx.
async fn ingress(kubeconfig: &Path) -> String {
    eventually("a load-balancer address", async || {
        let (ok, out) = kubectl(
            kubeconfig,
            &[
                "get",
                "service",
                "nginx",
                "-o",
                "jsonpath={.status.loadBalancer.ingress[0].ip}",
            ],
        )
        .await;
        (ok && !out.trim().is_empty()).then(|| out.trim().to_owned())
    })
    .await
}

#[tokio::test]
async fn dns_follows_pods_and_members_through_the_zone_region_global_chain() {
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("federation.kubeconfig");
    let port = {
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        socket.local_addr().unwrap().port()
    };
    let mut serve = Process(
        Command::new(BIN)
            .args([
                "federation",
                "serve",
                "--name",
                "myfederation",
                "--listen",
                "127.0.0.1:0",
                "--dns-zone",
                "example.com",
                "--dns-listen",
                &format!("127.0.0.1:{port}"),
            ])
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .arg("--kubeconfig-out")
            .arg(&kubeconfig)
            .env_remove("FEDMESH_LOG")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("serve.log")).unwrap())
            .spawn()
            .unwrap(),
    );
    eventually("the federation API with the Cluster CRD", async || {
        kubectl(&kubeconfig, &["get", "clusters"])
            .await
            .0
            .then_some(())
    })
    .await;

    // Two zones of us-east1 (one cluster each) and one of us-west1.
    let east_b = member("east-b", "us-east1-b", "us-east1", "10.10.0.0/24").await;
    let east_c = member("east-c", "us-east1-c", "us-east1", "10.20.0.0/24").await;
    let mut west = member("west", "us-west1-a", "us-west1", "10.30.0.0/24").await;
    let service = dir.path().join("service.yaml");
    std::fs::write(&service, SERVICE).unwrap();
    let deployment = dir.path().join("deployment.yaml");
    std::fs::write(&deployment, DEPLOYMENT).unwrap();
    for (member, name) in [(&east_b, "east-b"), (&east_c, "east-c"), (&west, "west")] {
        join(&kubeconfig, member, name).await;
        let (ok, out) = kubectl(
            &member.kubeconfig_path(),
            &["create", "-f", &deployment.display().to_string()],
        )
        .await;
        assert!(ok, "{out}");
    }
    let (ok, out) = kubectl(
        &kubeconfig,
        &["create", "-f", &service.display().to_string()],
    )
    .await;
    assert!(ok, "{out}");
    let b = ingress(&east_b.kubeconfig_path()).await;
    let c = ingress(&east_c.kubeconfig_path()).await;
    let w = ingress(&west.kubeconfig_path()).await;
    let sorted = |mut v: Vec<String>| {
        v.sort();
        v
    };

    // Every shard healthy: A records at every scope.
    answers(
        port,
        &fqdn(""),
        &sorted(vec![b.clone(), c.clone(), w.clone()]),
    )
    .await;
    answers(port, &fqdn("us-east1"), &sorted(vec![b.clone(), c.clone()])).await;
    answers(port, &fqdn("us-east1-b"), std::slice::from_ref(&b)).await;
    answers(port, &fqdn("us-west1-a"), std::slice::from_ref(&w)).await;

    // east-b's pods go: its zone is a CNAME to the region, which still
    // has east-c.
    scale(&east_b.kubeconfig_path(), 0).await;
    answers(
        port,
        &fqdn("us-east1-b"),
        &[format!("{}.", fqdn("us-east1")), c.clone()],
    )
    .await;
    answers(port, &fqdn(""), &sorted(vec![c.clone(), w.clone()])).await;

    // east-c's too: the region is a CNAME to the global name, and the zone
    // walks zone → region → global to west's shard.
    scale(&east_c.kubeconfig_path(), 0).await;
    answers(
        port,
        &fqdn("us-east1-b"),
        &[
            format!("{}.", fqdn("us-east1")),
            format!("{}.", fqdn("")),
            w.clone(),
        ],
    )
    .await;

    // Pods come back in east-b: its zone and region are addresses again.
    scale(&east_b.kubeconfig_path(), 1).await;
    answers(port, &fqdn("us-east1-b"), std::slice::from_ref(&b)).await;
    answers(port, &fqdn("us-east1"), std::slice::from_ref(&b)).await;

    // west goes Offline: its zone walks to the global name, now east-b.
    west.kill();
    answers(
        port,
        &fqdn("us-west1-a"),
        &[
            format!("{}.", fqdn("us-west1")),
            format!("{}.", fqdn("")),
            b.clone(),
        ],
    )
    .await;
    answers(port, &fqdn(""), std::slice::from_ref(&b)).await;

    // Deleting the federated Service removes every name fedmesh made.
    let (ok, out) = kubectl(&kubeconfig, &["delete", "service", "nginx", "--wait=false"]).await;
    assert!(ok, "{out}");
    answers(port, &fqdn("us-east1-b"), &[]).await;
    answers(port, &fqdn(""), &[]).await;

    let status = stop(&mut serve).await;
    assert!(status.success(), "{status:?}");
}

/// Whether `program` runs here; says why a test is skipped when not.
fn installed(program: &str, version: &str, package: &str) -> bool {
    let ok = Command::new(program)
        .arg(version)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        eprintln!("skipped: {program} is not installed (Debian {package})");
    }
    ok
}

/// etcd on loopback with its data in `dir`, killed on drop.
fn etcd(dir: &Path, port: u16, peer: u16) -> Process {
    let client = format!("http://127.0.0.1:{port}");
    let peer = format!("http://127.0.0.1:{peer}");
    Process(
        Command::new("etcd")
            .arg("--data-dir")
            .arg(dir.join("etcd"))
            .args(["--name", "test", "--listen-client-urls", &client])
            .args(["--advertise-client-urls", &client])
            .args(["--listen-peer-urls", &peer])
            .args(["--initial-advertise-peer-urls", &peer])
            .args(["--initial-cluster", &format!("test={peer}")])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("etcd.log")).unwrap())
            .spawn()
            .unwrap(),
    )
}

/// The SkyDNS records under `/skydns/`, as `key value` lines.
async fn skydns(port: u16) -> String {
    let out = command(
        "etcdctl",
        vec![
            "--endpoints".into(),
            format!("http://127.0.0.1:{port}"),
            "get".into(),
            "--prefix".into(),
            "/skydns/".into(),
        ],
    )
    .await;
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The Events in `namespace`, a line each: `TYPE REASON KIND/NAME`.
async fn events(kubeconfig: &Path, namespace: &str) -> String {
    kubectl(
        kubeconfig,
        &[
            "get",
            "events",
            "-n",
            namespace,
            "-o",
            "jsonpath={range .items[*]}{.type} {.reason} {.involvedObject.kind}/{.involvedObject.name}{\"\\n\"}{end}",
        ],
    )
    .await
    .1
}

/// GET `/metrics` on `addr`.
async fn metrics(addr: &str) -> String {
    let out = command("curl", vec!["-s".into(), format!("http://{addr}/metrics")]).await;
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test]
async fn dns_serve_keeps_etcd_in_step_and_reports_an_outage() {
    if !installed("etcd", "--version", "etcd-server")
        || !installed("etcdctl", "version", "etcd-client")
    {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("federation.kubeconfig");
    let mut control_plane = Process(
        Command::new(BIN)
            .args(["federation", "serve", "--name", "myfederation"])
            .args(["--listen", "127.0.0.1:0"])
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .arg("--kubeconfig-out")
            .arg(&kubeconfig)
            .env_remove("FEDMESH_LOG")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("serve.log")).unwrap())
            .spawn()
            .unwrap(),
    );
    eventually("the federation API with the Cluster CRD", async || {
        kubectl(&kubeconfig, &["get", "clusters"])
            .await
            .0
            .then_some(())
    })
    .await;
    let (etcd_port, etcd_peer) = (free_port(), free_port());
    let mut store = etcd(dir.path(), etcd_port, etcd_peer);
    let metrics_addr = format!("127.0.0.1:{}", free_port());
    let dns_port = free_port();
    let mut dns = Process(
        Command::new(BIN)
            .args(["dns", "serve", "--federation", "myfederation"])
            .args(["--zone", "example.com"])
            .args(["--listen", &format!("127.0.0.1:{dns_port}")])
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .args(["--provider", "etcd"])
            .args(["--etcd-endpoint", &format!("http://127.0.0.1:{etcd_port}")])
            .args(["--metrics-addr", &metrics_addr])
            // A round every second even when nothing changes, so that an
            // outage while nothing changes shows within the test's time.
            .args(["--resync", "1s"])
            .env_remove("FEDMESH_LOG")
            .env_remove("POD_NAMESPACE")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("dns.log")).unwrap())
            .spawn()
            .unwrap(),
    );

    let east = member("east", "us-east1-b", "us-east1", "10.10.0.0/24").await;
    join(&kubeconfig, &east, "east").await;
    let deployment = dir.path().join("deployment.yaml");
    std::fs::write(&deployment, DEPLOYMENT).unwrap();
    let (ok, out) = kubectl(
        &east.kubeconfig_path(),
        &["create", "-f", &deployment.display().to_string()],
    )
    .await;
    assert!(ok, "{out}");
    let service = dir.path().join("service.yaml");
    std::fs::write(&service, SERVICE).unwrap();
    let (ok, out) = kubectl(
        &kubeconfig,
        &["create", "-f", &service.display().to_string()],
    )
    .await;
    assert!(ok, "{out}");
    let ip = ingress(&east.kubeconfig_path()).await;

    // The healthy shard's address under the global name's SkyDNS key.
    let global = "/skydns/com/example/svc/myfederation/default/nginx/a-0";
    let zone = "/skydns/com/example/us-east1-b/svc/myfederation/default/nginx/cname-0";
    eventually("the global A record in etcd", async || {
        let records = skydns(etcd_port).await;
        records
            .lines()
            .skip_while(|l| *l != global)
            .nth(1)
            .filter(|v| v.contains(&ip))
            .map(|_| ())
    })
    .await;
    answers(dns_port, &fqdn(""), std::slice::from_ref(&ip)).await;

    // The provider goes down while nothing changes: only the periodic round
    // fails. No Service waits for its records, so the writer's Lease tells
    // it (a Warning Event in the controller's namespace); once etcd is back,
    // a Normal Event there says so.
    drop(store);
    eventually("a DNSProviderFailed Event on the Lease", async || {
        events(&kubeconfig, "fedmesh")
            .await
            .contains("Warning DNSProviderFailed Lease/fedmesh-dns")
            .then_some(())
    })
    .await;
    let quiet = events(&kubeconfig, "default").await;
    assert!(!quiet.contains("DNSProviderFailed"), "{quiet}");
    store = etcd(dir.path(), etcd_port, etcd_peer);
    eventually("a DNSProviderRecovered Event on the Lease", async || {
        events(&kubeconfig, "fedmesh")
            .await
            .contains("Normal DNSProviderRecovered Lease/fedmesh-dns")
            .then_some(())
    })
    .await;

    // Health follows: the pods go, the zone becomes a CNAME (to the
    // region, itself a CNAME to the global name, which has no record).
    scale(&east.kubeconfig_path(), 0).await;
    eventually("the zone's CNAME in etcd", async || {
        let records = skydns(etcd_port).await;
        (records.contains(zone) && !records.contains(global)).then_some(())
    })
    .await;

    // The provider goes down while health changes: an Event on the
    // federated Service and the metric say so; once it is back the record
    // follows.
    drop(store);
    scale(&east.kubeconfig_path(), 1).await;
    eventually("a DNSProviderFailed Event on nginx", async || {
        events(&kubeconfig, "default")
            .await
            .contains("Warning DNSProviderFailed Service/nginx")
            .then_some(())
    })
    .await;
    eventually("fedmesh_dns_provider_up 0", async || {
        let text = metrics(&metrics_addr).await;
        (text.contains("fedmesh_dns_provider_up{provider=\"etcd\"} 0")
            && text
                .contains("fedmesh_dns_provider_syncs_total{provider=\"etcd\",result=\"failed\"}"))
        .then_some(())
    })
    .await;
    let condition = async |want: &str| {
        let what = format!("condition DNSRecordsWritten={want} on nginx");
        eventually(&what, async || {
            let (_, out) = kubectl(
                &kubeconfig,
                &[
                    "get",
                    "service",
                    "nginx",
                    "-o",
                    "jsonpath={.status.conditions[?(@.type==\"DNSRecordsWritten\")].status}",
                ],
            )
            .await;
            (out.trim() == want).then_some(())
        })
        .await
    };
    condition("False").await;
    store = etcd(dir.path(), etcd_port, etcd_peer);
    eventually("the global A record back in etcd", async || {
        let records = skydns(etcd_port).await;
        (records.contains(global) && !records.contains(zone)).then_some(())
    })
    .await;
    eventually("fedmesh_dns_provider_up 1", async || {
        metrics(&metrics_addr)
            .await
            .contains("fedmesh_dns_provider_up{provider=\"etcd\"} 1")
            .then_some(())
    })
    .await;
    condition("True").await;
    answers(dns_port, &fqdn("us-east1-b"), std::slice::from_ref(&ip)).await;

    // The federation API goes away: the last records known are still served.
    assert!(stop(&mut control_plane).await.success());
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        dig(dns_port, &fqdn("us-east1-b")).await,
        std::slice::from_ref(&ip)
    );
    assert_eq!(dig(dns_port, &fqdn("")).await, [ip]);

    assert!(stop(&mut dns).await.success());
    drop(store);
}
