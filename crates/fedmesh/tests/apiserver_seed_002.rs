//! Seed 002's backend loop against real `fedmesh apiserver` processes: two
//! clusters with simulated nodes in different zones and regions and pod
//! networks of their own (`--nodes --zone --region --cluster-cidr`), one
//! kubeconfig context each, and the seed's
//! `kubectl --context=$CLUSTER run nginx --image=nginx:1.11.1-alpine --port=80`
//! in each: the pod is Ready with an IP from its node's pod CIDR, and
//! `kubectl expose pod nginx --port=80` gives a Service whose endpoints hold it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_fedmesh");

/// A `fedmesh apiserver` process, killed when dropped.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(dir: &Path, name: &str, zone: &str, region: &str, cidr: &str) -> (Server, PathBuf) {
    let kubeconfig = dir.join(format!("{name}.kubeconfig"));
    let child = Command::new(BIN)
        .args(["apiserver", "--listen", "127.0.0.1:0", "--context", name])
        .args(["--nodes", "2", "--zone", zone, "--region", region])
        .args(["--cluster-cidr", cidr, "--pod-start-delay-ms", "50"])
        .arg("--kubeconfig-out")
        .arg(&kubeconfig)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("fedmesh apiserver starts");
    let server = Server(child);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !kubeconfig.exists() {
        assert!(Instant::now() < deadline, "{name} wrote no kubeconfig");
        std::thread::sleep(Duration::from_millis(20));
    }
    (server, kubeconfig)
}

/// kubectl with every kubeconfig merged (`KUBECONFIG=a:b`), as a user with
/// several clusters runs it; bounded by kubectl's own request timeout.
fn kubectl(configs: &[PathBuf], args: &[&str]) -> (bool, String, String) {
    let out = Command::new("kubectl")
        .env("KUBECONFIG", std::env::join_paths(configs).unwrap())
        .arg("--request-timeout=20s")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("kubectl runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn ok(configs: &[PathBuf], args: &[&str]) -> String {
    let (success, stdout, stderr) = kubectl(configs, args);
    assert!(success, "kubectl {args:?}: {stderr}");
    stdout
}

#[test]
fn seed_002_loop_over_fedmesh_apiserver_processes() {
    let dir = tempfile::tempdir().unwrap();
    let clusters = [
        (
            "gce-us-central1-a",
            "us-central1-a",
            "us-central1",
            "10.11.0.0/16",
        ),
        (
            "gce-asia-east1-c",
            "asia-east1-c",
            "asia-east1",
            "10.12.0.0/16",
        ),
    ];
    let mut servers = Vec::new();
    let mut configs = Vec::new();
    for (name, zone, region, cidr) in clusters {
        let (server, config) = start(dir.path(), name, zone, region, cidr);
        servers.push(server);
        configs.push(config);
    }
    // Waiting for the server to answer is part of the first command's retries.
    for (name, ..) in clusters {
        let context = format!("--context={name}");
        let deadline = Instant::now() + Duration::from_secs(30);
        while !kubectl(&configs, &[&context, "get", "nodes"]).0 {
            assert!(Instant::now() < deadline, "{name} never answered");
            std::thread::sleep(Duration::from_millis(50));
        }
        ok(
            &configs,
            &[
                &context,
                "run",
                "nginx",
                "--image=nginx:1.11.1-alpine",
                "--port=80",
            ],
        );
    }
    for (name, zone, _, cidr) in clusters {
        let context = format!("--context={name}");
        ok(
            &configs,
            &[
                &context,
                "wait",
                "--for=condition=Ready",
                "pod/nginx",
                "--timeout=30s",
            ],
        );
        let ip = ok(
            &configs,
            &[
                &context,
                "get",
                "pod",
                "nginx",
                "-o",
                "jsonpath={.status.podIP}",
            ],
        );
        let network = cidr.trim_end_matches("0.0/16");
        assert!(
            ip.starts_with(network),
            "{name}: pod IP {ip} outside {cidr}"
        );
        ok(&configs, &[&context, "expose", "pod", "nginx", "--port=80"]);
        let deadline = Instant::now() + Duration::from_secs(30);
        let want = format!("{ip} {zone}");
        loop {
            let slice = ok(
                &configs,
                &[
                    &context,
                    "get",
                    "endpointslices",
                    "-l",
                    "kubernetes.io/service-name=nginx",
                    "-o",
                    "jsonpath={.items[0].endpoints[0].addresses[0]} {.items[0].endpoints[0].zone}",
                ],
            );
            if slice == want {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{name}: the Service's EndpointSlice holds {slice:?}, not {want:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let endpoints = ok(
            &configs,
            &[
                &context,
                "get",
                "endpoints",
                "nginx",
                "-o",
                "jsonpath={.subsets[0].addresses[0].ip}",
            ],
        );
        assert_eq!(endpoints, ip, "{name}");
    }
    drop(servers);
}
