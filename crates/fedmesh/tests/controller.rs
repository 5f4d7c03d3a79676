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

/// Sends SIGTERM and waits (at most 10 s) for the process to end.
async fn kill_term(process: &mut Process) -> std::process::ExitStatus {
    let killed = Command::new("kill")
        .args(["-TERM", &process.0.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = process.0.try_wait().unwrap() {
            return status;
        }
        assert!(Instant::now() < deadline, "still running 10s after SIGTERM");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn controller_installs_crds_leads_serves_health_and_stops_on_sigterm() {
    // No `fedmesh` namespace: the controller creates the one it needs.
    let server = TestServer::start().await.unwrap();
    let client = server.client().unwrap();
    let logs = tempfile::tempdir().unwrap();
    let json_log = logs.path().join("json.log");
    let metrics = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let mut controller = Process(
        Command::new(BIN)
            .args([
                "controller",
                "--install-crds",
                "--log-format",
                "json",
                "--kubeconfig",
            ])
            .arg(server.kubeconfig_path())
            .args(["--metrics-addr", &metrics.to_string()])
            .env("POD_NAME", "fedmesh-controller-0")
            .env_remove("FEDMESH_LOG")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&json_log).unwrap())
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
        &fedmesh_controller::mesh::remotes::api_resource(),
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

    let status = kill_term(&mut controller).await;
    assert!(status.success(), "{status}");

    // A clean stop releases the Lease: a successor need not wait for it.
    let lease = leases.get("fedmesh-controller").await.unwrap();
    assert_eq!(lease.spec.and_then(|s| s.holder_identity), None, "released");
    Api::<Namespace>::all(client.clone())
        .get("fedmesh")
        .await
        .expect("the controller created its namespace");

    // Every log line is JSON; a line about a remote names the cluster.
    let text = std::fs::read_to_string(&json_log).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(
        lines.iter().any(|l| l["fields"]["cluster"] == "nowhere"
            && l["fields"]["reason"] == "SecretNotFound"
            && l["fields"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("fedmesh/missing"))),
        "{text}"
    );

    // Text logs to a file carry no colour codes.
    let text_log = logs.path().join("text.log");
    let mut controller = Process(
        Command::new(BIN)
            .args(["controller", "--kubeconfig"])
            .arg(server.kubeconfig_path())
            .args(["--metrics-addr", &metrics.to_string()])
            .env("POD_NAME", "fedmesh-controller-1")
            .env_remove("FEDMESH_LOG")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&text_log).unwrap())
            .spawn()
            .unwrap(),
    );
    eventually("the second replica leads", || {
        get(metrics, "/metrics").filter(|(_, body)| body.contains("fedmesh_leader 1"))
    })
    .await;
    assert!(kill_term(&mut controller).await.success());
    let text = std::fs::read_to_string(&text_log).unwrap();
    assert!(text.contains("cluster=nowhere"), "{text}");
    assert!(
        !text.contains('\u{1b}'),
        "no ANSI escapes in a file: {text}"
    );
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

async fn named_server(name: &str) -> TestServer {
    TestServer::start_with(fedmesh_apiserver::testing::TestServerOptions {
        name: name.into(),
        ..Default::default()
    })
    .await
    .unwrap()
}

async fn create(
    client: &kube::Client,
    resource: &kube::api::ApiResource,
    object: serde_json::Value,
) {
    let namespace = object["metadata"]["namespace"].as_str().map(str::to_owned);
    let object: kube::api::DynamicObject = serde_json::from_value(object).unwrap();
    let api = match namespace {
        Some(ns) => Api::<kube::api::DynamicObject>::namespaced_with(client.clone(), &ns, resource),
        None => Api::all_with(client.clone(), resource),
    };
    api.create(&PostParams::default(), &object).await.unwrap();
}

/// The controller as deployed: its only rights are deploy/rbac/controller.yaml's.
#[tokio::test]
async fn controller_federates_with_only_the_deployed_rbac() {
    use k8s_openapi::api::core::v1::{Endpoints, Service, ServiceAccount};
    use k8s_openapi::api::discovery::v1::EndpointSlice;
    use kube::api::ApiResource;
    use serde_json::json;

    let local = named_server("local").await;
    let remote = named_server("remotecluster").await;
    let (lc, rc) = (local.client().unwrap(), remote.client().unwrap());
    create(
        &lc,
        &ApiResource::erase::<Namespace>(&()),
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "fedmesh"}}),
    )
    .await;
    let rbac =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/rbac/controller.yaml");
    let kubeconfig = local.kubeconfig_path();
    let applied = tokio::task::spawn_blocking(move || {
        Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .arg("apply")
            .arg("-f")
            .arg(&rbac)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        applied.status.success(),
        "{}",
        String::from_utf8_lossy(&applied.stderr)
    );
    let joined = tokio::process::Command::new(BIN)
        .arg("join")
        .arg("--local")
        .arg(local.kubeconfig_path())
        .arg("--remote")
        .arg(remote.kubeconfig_path())
        .args(["--name", "remotecluster"])
        .output()
        .await
        .unwrap();
    assert!(
        joined.status.success(),
        "{}",
        String::from_utf8_lossy(&joined.stderr)
    );

    // A kubeconfig for the controller's ServiceAccount, as in a pod.
    let token = Api::<ServiceAccount>::namespaced(lc.clone(), "fedmesh")
        .create_token_request(
            "fedmesh-controller",
            &PostParams::default(),
            &Default::default(),
        )
        .await
        .unwrap()
        .status
        .unwrap()
        .token;
    let mut doc: serde_json::Value =
        serde_saphyr::from_str(&std::fs::read_to_string(local.kubeconfig_path()).unwrap()).unwrap();
    doc["users"][0]["user"] = json!({"token": token});
    let controller_kubeconfig = local.dir().join("controller.kubeconfig");
    std::fs::write(&controller_kubeconfig, doc.to_string()).unwrap();

    let service = ApiResource::erase::<Service>(&());
    for client in [&lc, &rc] {
        create(client, &service, json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "my-app", "namespace": "default", "labels": {"run": "my-app"}},
            "spec": {"selector": {"run": "my-app"}, "ports": [{"name": "my-app-ui", "port": 80}]}
        }))
        .await;
    }
    create(&rc, &ApiResource::erase::<EndpointSlice>(&()), json!({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": "my-app-x", "namespace": "default",
                     "labels": {"kubernetes.io/service-name": "my-app",
                                "endpointslice.kubernetes.io/managed-by": "test"}},
        "addressType": "IPv4",
        "ports": [{"name": "my-app-ui", "port": 80, "protocol": "TCP"}],
        "endpoints": [{"addresses": ["192.168.0.28"], "conditions": {"ready": true},
                       "targetRef": {"kind": "Pod", "name": "my-app-7b6f758bd5-ctgbh", "namespace": "default"}}]
    }))
    .await;
    create(&lc, &service, json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "my-app-federated", "namespace": "default",
                     "annotations": {"federation.tigera.io/serviceSelector": "run == \"my-app\""}},
        "spec": {"ports": [{"name": "my-app-ui", "port": 8080}]}
    }))
    .await;

    let metrics = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let mut controller = Process(
        Command::new(BIN)
            .args(["controller", "--kubeconfig"])
            .arg(&controller_kubeconfig)
            .args(["--metrics-addr", &metrics.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );

    let endpoints = Api::<Endpoints>::namespaced(lc.clone(), "default");
    let rccs = Api::<kube::api::DynamicObject>::all_with(
        lc.clone(),
        &fedmesh_controller::mesh::remotes::api_resource(),
    );
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let names: Vec<String> = endpoints
            .get_opt("my-app-federated")
            .await
            .unwrap()
            .and_then(|e| e.subsets)
            .into_iter()
            .flatten()
            .flat_map(|s| s.addresses.unwrap_or_default())
            .filter_map(|a| a.target_ref.and_then(|t| t.name))
            .collect();
        let state = rccs.get("remotecluster").await.unwrap().data["status"]["state"].clone();
        if names == ["remotecluster/my-app-7b6f758bd5-ctgbh"] && state == "InSync" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "endpoints {names:?}, remote {state}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(kill_term(&mut controller).await.success());
}
