//! The federation control plane as a user runs it: `fedmesh federation
//! serve` (or `fedmesh federation controller` against a shared cluster) as a
//! process, member API servers with the simulated data plane, `fedmesh
//! federation join`, and plain kubectl.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use fedmesh_apiserver::testing::TestServer;

mod support;

use support::BIN;
use support::federation::{Process, eventually, join, kubectl, kubectl_ok, member, stop};

/// The line of `kubectl get clusters` for `name`, split into columns.
async fn cluster_row(kubeconfig: &Path, name: &str) -> Option<Vec<String>> {
    let out = kubectl_ok(kubeconfig, &["get", "clusters", name, "--no-headers"]).await?;
    Some(out.split_whitespace().map(str::to_owned).collect())
}

const NGINX: &str = "apiVersion: v1
kind: Service
metadata:
  name: nginx
  labels:
    run: nginx
spec:
  type: LoadBalancer
  selector:
    run: nginx
  ports:
  - name: http
    port: 80
    protocol: TCP
";

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[tokio::test]
async fn federation_serve_propagates_what_kubectl_creates_and_follows_members() {
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("federation.kubeconfig");
    let mut serve = Process(
        Command::new(BIN)
            .args([
                "federation",
                "serve",
                "--name",
                "myfederation",
                "--listen",
                "127.0.0.1:0",
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
        kubectl_ok(&kubeconfig, &["get", "clusters"]).await
    })
    .await;
    let context = kubectl_ok(&kubeconfig, &["config", "current-context"]).await;
    assert_eq!(context.as_deref().map(str::trim), Some("federation"));

    let east = member("east", "us-east1-b", "us-east1", "10.10.0.0/24").await;
    let mut west = member("west", "us-west1-a", "us-west1", "10.20.0.0/24").await;
    join(&kubeconfig, &east, "east").await;
    join(&kubeconfig, &west, "west").await;
    for (name, zone, region) in [
        ("east", "[\"us-east1-b\"]", "us-east1"),
        ("west", "[\"us-west1-a\"]", "us-west1"),
    ] {
        let row = eventually("the member Ready in kubectl get clusters", async || {
            cluster_row(&kubeconfig, name)
                .await
                .filter(|r| r[1] == "True")
        })
        .await;
        assert_eq!(&row[..5], [name, "True", "ClusterReady", zone, region]);
    }

    // Plain kubectl create -f in the federation: the Service in every member.
    let nginx = write(dir.path(), "nginx.yaml", NGINX);
    let nginx = nginx.display().to_string();
    assert!(kubectl(&kubeconfig, &["create", "-f", &nginx]).await.0);
    for member in [&east, &west] {
        eventually("nginx in the member", async || {
            kubectl_ok(
                &member.kubeconfig_path(),
                &[
                    "get",
                    "service",
                    "nginx",
                    "-o",
                    "jsonpath={.metadata.annotations.federation\\.fedmesh\\.io/origin}",
                ],
            )
            .await
            .filter(|o| o == "created")
        })
        .await;
    }
    // Both shards' load-balancer addresses show in the federated Service.
    let ingress = eventually("two ingress addresses", async || {
        kubectl_ok(
            &kubeconfig,
            &[
                "get",
                "service",
                "nginx",
                "-o",
                "jsonpath={.status.loadBalancer.ingress[*].ip}",
            ],
        )
        .await
        .filter(|o| o.split_whitespace().count() == 2)
    })
    .await;
    assert!(
        ingress.starts_with("10.10.0.") && ingress.contains(" 10.20.0."),
        "{ingress}"
    );

    // Drift: deleted by hand in a member, made again.
    assert!(
        kubectl(&east.kubeconfig_path(), &["delete", "service", "nginx"])
            .await
            .0
    );
    eventually("nginx back in east", async || {
        kubectl_ok(&east.kubeconfig_path(), &["get", "service", "nginx"]).await
    })
    .await;

    // A member killed is Offline within seconds; what changed meanwhile
    // reaches it when it returns.
    west.kill();
    let killed = Instant::now();
    let row = eventually("west not Ready", async || {
        cluster_row(&kubeconfig, "west")
            .await
            .filter(|r| r[1] == "False")
    })
    .await;
    let detected = killed.elapsed();
    assert_eq!(row[2], "ClusterNotReachable");
    assert!(detected < Duration::from_secs(5), "took {detected:?}");
    let late = write(
        dir.path(),
        "late.yaml",
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: late\nspec:\n  ports:\n  - port: 81\n",
    );
    assert!(
        kubectl(&kubeconfig, &["create", "-f", &late.display().to_string()])
            .await
            .0
    );
    west.restart().await.expect("west restarts");
    eventually("late in west after it returns", async || {
        kubectl_ok(&west.kubeconfig_path(), &["get", "service", "late"]).await
    })
    .await;

    // Cluster selector: only members labelled region=east keep nginx.
    assert!(
        kubectl(&kubeconfig, &["label", "cluster", "east", "region=east"])
            .await
            .0
    );
    let selector = r#"federation.alpha.kubernetes.io/cluster-selector=[{"key": "region", "operator": "In", "values": ["east"]}]"#;
    let (ok, out) = kubectl(&kubeconfig, &["annotate", "service", "nginx", selector]).await;
    assert!(ok, "{out}");
    eventually("west to lose nginx", async || {
        (!kubectl(&west.kubeconfig_path(), &["get", "service", "nginx"])
            .await
            .0)
            .then_some(())
    })
    .await;
    assert!(
        kubectl(&east.kubeconfig_path(), &["get", "service", "nginx"])
            .await
            .0
    );

    let status = stop(&mut serve).await;
    assert!(status.success(), "{status:?}");
}

/// GET `path` on `addr`: the status code, or None if nothing answers.
fn get(addr: SocketAddr, path: &str) -> Option<u16> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    response.split_whitespace().nth(1)?.parse().ok()
}

#[tokio::test]
async fn federation_controller_on_a_shared_cluster_federates_labelled_namespaces() {
    let host = TestServer::start().await.unwrap();
    let kubeconfig = host.kubeconfig_path();
    let east = member("east", "us-east1-b", "us-east1", "10.10.0.0/24").await;
    let metrics = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let logs = tempfile::tempdir().unwrap();
    let mut controller = Process(
        Command::new(BIN)
            .args([
                "federation",
                "controller",
                "--name",
                "myfederation",
                "--install-crds",
            ])
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .args(["--metrics-addr", &metrics.to_string()])
            .env_remove("FEDMESH_LOG")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(logs.path().join("controller.log")).unwrap())
            .spawn()
            .unwrap(),
    );
    eventually("/readyz", async || {
        get(metrics, "/readyz").filter(|c| *c == 200)
    })
    .await;
    let holder = eventually("the Lease held", async || {
        kubectl_ok(
            &kubeconfig,
            &[
                "get",
                "lease",
                "-n",
                "fedmesh",
                "fedmesh-federation-controller",
                "-o",
                "jsonpath={.spec.holderIdentity}",
            ],
        )
        .await
        .filter(|h| !h.is_empty())
    })
    .await;
    assert!(!holder.is_empty());
    join(&kubeconfig, &east, "east").await;

    let manifests = write(
        logs.path(),
        "services.yaml",
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: team\n  labels:\n    federation.fedmesh.io/federated: \"true\"\n---\n\
         apiVersion: v1\nkind: Namespace\nmetadata:\n  name: local\n---\n\
         apiVersion: v1\nkind: Service\nmetadata:\n  name: web\n  namespace: team\nspec:\n  ports:\n  - port: 80\n---\n\
         apiVersion: v1\nkind: Service\nmetadata:\n  name: web\n  namespace: local\nspec:\n  ports:\n  - port: 80\n",
    );
    let (ok, out) = kubectl(
        &kubeconfig,
        &["create", "-f", &manifests.display().to_string()],
    )
    .await;
    assert!(ok, "{out}");
    eventually("team/web in east", async || {
        kubectl_ok(
            &east.kubeconfig_path(),
            &["get", "service", "web", "-n", "team"],
        )
        .await
    })
    .await;
    assert!(
        !kubectl(
            &east.kubeconfig_path(),
            &["get", "service", "web", "-n", "local"]
        )
        .await
        .0
    );

    let status = stop(&mut controller).await;
    assert!(status.success(), "{status:?}");
}
