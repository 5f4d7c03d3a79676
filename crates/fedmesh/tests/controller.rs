//! `fedmesh controller` as a process: installs the CRD, takes the Lease,
//! serves health and metrics, and stops on SIGTERM.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fedmesh_apiserver::testing::TestServer;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, PostParams};

const BIN: &str = env!("CARGO_BIN_EXE_fedmesh");

struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// GET `path` on `addr`: the status code and body, or None if nothing answers.
fn get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let code = response.split_whitespace().nth(1)?.parse().ok()?;
    let body = response.split_once("\r\n\r\n")?.1.to_owned();
    Some((code, body))
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

async fn eventually<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn controller_installs_crds_leads_serves_health_and_stops_on_sigterm() {
    let server = TestServer::start().await.unwrap();
    let client = server.client().unwrap();
    Api::<Namespace>::all(client.clone())
        .create(
            &PostParams::default(),
            &serde_json::from_value(serde_json::json!({"metadata": {"name": "fedmesh"}})).unwrap(),
        )
        .await
        .unwrap();
    let metrics = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let mut controller = Process(
        Command::new(BIN)
            .args(["controller", "--install-crds", "--kubeconfig"])
            .arg(server.kubeconfig_path())
            .args(["--metrics-addr", &metrics.to_string()])
            .env("POD_NAME", "fedmesh-controller-0")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );

    let (code, body) = eventually("/healthz", || get(metrics, "/healthz")).await;
    assert_eq!((code, body.trim()), (200, "ok"));
    eventually("/readyz", || {
        get(metrics, "/readyz").filter(|(code, _)| *code == 200)
    })
    .await;

    Api::<CustomResourceDefinition>::all(client.clone())
        .get("remoteclusterconfigurations.projectcalico.org")
        .await
        .expect("--install-crds installed the CRD");
    let leases = Api::<Lease>::namespaced(client.clone(), "fedmesh");
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let holder = leases
            .get_opt("fedmesh-controller")
            .await
            .unwrap()
            .and_then(|l| l.spec)
            .and_then(|s| s.holder_identity);
        if holder.as_deref() == Some("fedmesh-controller-0") {
            break;
        }
        assert!(Instant::now() < deadline, "the Lease holder is {holder:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eventually("leading in the metrics", || {
        get(metrics, "/metrics").filter(|(_, body)| body.contains("fedmesh_leader 1"))
    })
    .await;

    // A remote whose Secret does not exist shows as ConfigIncomplete (5).
    let rcc: kube::api::DynamicObject = serde_json::from_value(serde_json::json!({
        "apiVersion": "projectcalico.org/v3", "kind": "RemoteClusterConfiguration",
        "metadata": {"name": "nowhere"},
        "spec": {"clusterAccessSecret": {"name": "missing", "namespace": "fedmesh", "kind": "Secret"}}
    }))
    .unwrap();
    Api::<kube::api::DynamicObject>::all_with(
        client.clone(),
        &fedmesh_controller::remote::api_resource(),
    )
    .create(&PostParams::default(), &rcc)
    .await
    .unwrap();
    eventually("the remote's gauge", || {
        get(metrics, "/metrics").filter(|(_, body)| {
            body.contains("remote_cluster_connection_status{remote_cluster_name=\"nowhere\"} 5")
        })
    })
    .await;

    let killed = Command::new("kill")
        .args(["-TERM", &controller.0.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = controller.0.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "still running 10s after SIGTERM");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "{status}");
}

#[test]
fn controller_reports_a_bad_kubeconfig_and_an_unreachable_cluster() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .args(["controller", "--kubeconfig"])
        .arg(dir.path().join("missing"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("cannot read kubeconfig"), "{stderr}");

    let kubeconfig = dir.path().join("unreachable");
    std::fs::write(
        &kubeconfig,
        serde_json::json!({
            "apiVersion": "v1", "kind": "Config",
            "clusters": [{"name": "gone", "cluster": {"server": format!("http://127.0.0.1:{}", free_port())}}],
            "users": [{"name": "u", "user": {}}],
            "contexts": [{"name": "gone", "context": {"cluster": "gone", "user": "u"}}],
            "current-context": "gone"
        })
        .to_string(),
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["controller", "--kubeconfig"])
        .arg(&kubeconfig)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cannot reach the Kubernetes API of gone"),
        "{stderr}"
    );
}
