//! What the controller's end-to-end tests share: two embedded API servers on
//! loopback (`local` and `remotecluster`) set up as seed 000's tutorial, the
//! controller running in-process against `local`, and ways to read what it
//! wrote.

// Each test binary uses its own subset of these helpers.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use fedmesh_apiserver::testing::{TestServer, TestServerOptions};
use fedmesh_controller::federation;
use fedmesh_controller::mesh::remotes as remote;
use fedmesh_controller::{ControllerConfig, Metrics};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{Endpoints, Namespace, Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

/// Logs show with --nocapture and FEDMESH_TEST_LOG=debug (for instance).
pub fn init_logs() {
    if let Ok(filter) = std::env::var("FEDMESH_TEST_LOG") {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_test_writer()
            .try_init();
    }
}

pub const WAIT: Duration = Duration::from_secs(15);

/// Polls `check` until it gives `Some`, for at most `WAIT`.
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub async fn create<K>(api: Api<K>, object: serde_json::Value)
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    let object: K = serde_json::from_value(object).expect("valid object");
    api.create(&PostParams::default(), &object)
        .await
        .expect("create");
}

pub fn my_app_service() -> serde_json::Value {
    json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "my-app", "namespace": "default", "labels": {"run": "my-app"}},
        "spec": {
            "selector": {"run": "my-app"},
            "ports": [
                {"name": "my-app-ui", "port": 80, "protocol": "TCP", "targetPort": 9000},
                {"name": "my-app-console", "port": 81, "protocol": "TCP", "targetPort": 9001}
            ]
        }
    })
}

pub fn my_app_slice(name: &str, ip: &str, pod: &str, node: &str) -> serde_json::Value {
    json!({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": name, "namespace": "default", "labels": {"kubernetes.io/service-name": "my-app"}},
        "addressType": "IPv4",
        "ports": [
            {"name": "my-app-ui", "port": 80, "protocol": "TCP"},
            {"name": "my-app-console", "port": 81, "protocol": "TCP"}
        ],
        "endpoints": [{
            "addresses": [ip],
            "conditions": {"ready": true},
            "nodeName": node,
            "targetRef": {"kind": "Pod", "name": pod, "namespace": "default", "uid": format!("uid-{pod}")}
        }]
    })
}

pub fn federated_service(selector: &str) -> serde_json::Value {
    json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {
            "name": "my-app-federated", "namespace": "default",
            "annotations": {"federation.tigera.io/serviceSelector": selector}
        },
        "spec": {"ports": [{"name": "my-app-ui", "port": 8080, "protocol": "TCP"}]}
    })
}

pub struct Mesh {
    pub local: TestServer,
    pub remote: TestServer,
    pub metrics: Metrics,
    controller: tokio::task::JoinHandle<()>,
}

impl Drop for Mesh {
    fn drop(&mut self) {
        self.controller.abort();
    }
}

/// Seed 000's tutorial: `my-app` in both clusters, the RemoteClusterConfiguration
/// `remotecluster` with its Secret, and the controller running.
pub async fn mesh(unreachable: serde_json::Value) -> Mesh {
    mesh_with(unreachable, |_| {}).await
}

/// [`mesh`] with the controller's settings changed by `tune` (after the
/// tests' short defaults are set).
pub async fn mesh_with(
    unreachable: serde_json::Value,
    tune: impl FnOnce(&mut ControllerConfig),
) -> Mesh {
    mesh_prepared(unreachable, tune, async |_: &kube::Client| {}).await
}

/// [`mesh_with`], with `prepare` run on the local cluster once the seed's
/// objects are there and before the controller starts.
pub async fn mesh_prepared(
    unreachable: serde_json::Value,
    tune: impl FnOnce(&mut ControllerConfig),
    prepare: impl AsyncFnOnce(&kube::Client),
) -> Mesh {
    init_logs();
    let local = TestServer::start_with(TestServerOptions {
        name: "local".into(),
        ..TestServerOptions::default()
    })
    .await
    .expect("local server");
    let remote = TestServer::start_with(TestServerOptions {
        name: "remotecluster".into(),
        ..TestServerOptions::default()
    })
    .await
    .expect("remote server");
    let lc = local.client().expect("local client");
    let rc = remote.client().expect("remote client");

    let crd = remote::crd().expect("the CRD manifest parses");
    Api::<CustomResourceDefinition>::all(lc.clone())
        .create(&PostParams::default(), &crd)
        .await
        .expect("create CRD");

    create(
        Api::<Service>::namespaced(rc.clone(), "default"),
        my_app_service(),
    )
    .await;
    create(
        Api::<EndpointSlice>::namespaced(rc.clone(), "default"),
        my_app_slice(
            "my-app-abcde",
            "192.168.0.28",
            "my-app-7b6f758bd5-ctgbh",
            "node1.remotecluster.tigera.io",
        ),
    )
    .await;
    create(
        Api::<Service>::namespaced(lc.clone(), "default"),
        my_app_service(),
    )
    .await;
    create(
        Api::<EndpointSlice>::namespaced(lc.clone(), "default"),
        my_app_slice(
            "my-app-fghij",
            "192.168.93.12",
            "my-app-59cf48cdc7-frf2t",
            "node1.localcluster.tigera.io",
        ),
    )
    .await;
    create(
        Api::<Service>::namespaced(lc.clone(), "default"),
        federated_service(r#"run == "my-app""#),
    )
    .await;

    create(
        Api::<Namespace>::all(lc.clone()),
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "fedmesh"}}),
    )
    .await;
    let kubeconfig = std::fs::read(remote.kubeconfig_path()).expect("remote kubeconfig");
    put_access_secret(&lc, kubeconfig).await;
    add_rcc(&lc, "remotecluster", "remotecluster-access", unreachable).await;
    prepare(&lc).await;

    let mut config = ControllerConfig::new("fedmesh", "test-replica");
    config.renew_interval = Duration::from_millis(200);
    config.lease_duration = Duration::from_secs(2);
    config.max_backoff = Duration::from_millis(500);
    config.status_refresh = Duration::from_millis(300);
    tune(&mut config);
    let metrics = Metrics::new();
    let handle = metrics.clone();
    let controller = tokio::spawn(async move {
        fedmesh_controller::run(lc, config, handle, std::future::pending())
            .await
            .expect("controller runs");
    });
    Mesh {
        local,
        remote,
        metrics,
        controller,
    }
}

/// Creates the RemoteClusterConfiguration `name` reading Secret `secret` in
/// namespace `fedmesh`, waiting for the CRD to be served.
pub async fn add_rcc(
    local: &kube::Client,
    name: &str,
    secret: &str,
    unreachable: serde_json::Value,
) {
    let rcc: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "projectcalico.org/v3", "kind": "RemoteClusterConfiguration",
        "metadata": {"name": name},
        "spec": {
            "clusterAccessSecret": {"name": secret, "namespace": "fedmesh", "kind": "Secret"},
            "syncOptions": {"overlayRoutingMode": "Enabled"},
            "unreachable": unreachable
        }
    }))
    .expect("rcc");
    let rccs = Api::<DynamicObject>::all_with(local.clone(), &remote::api_resource());
    eventually(
        "the RemoteClusterConfiguration resource to be served",
        || {
            let rccs = rccs.clone();
            let rcc = rcc.clone();
            async move { rccs.create(&PostParams::default(), &rcc).await.ok() }
        },
    )
    .await;
}

/// Writes seed 000's access Secret `remotecluster-access` with `kubeconfig`.
pub async fn put_access_secret(local: &kube::Client, kubeconfig: Vec<u8>) {
    put_secret(local, "remotecluster-access", kubeconfig).await;
}

/// Writes (server-side apply) the access Secret `name` in `fedmesh`.
pub async fn put_secret(local: &kube::Client, name: &str, kubeconfig: Vec<u8>) {
    let secret = Secret {
        metadata: kube::api::ObjectMeta {
            name: Some(name.into()),
            namespace: Some("fedmesh".into()),
            ..Default::default()
        },
        data: Some(BTreeMap::from([
            (
                "datastoreType".to_string(),
                ByteString(b"kubernetes".to_vec()),
            ),
            ("kubeconfig".to_string(), ByteString(kubeconfig)),
        ])),
        ..Secret::default()
    };
    let api = Api::<Secret>::namespaced(local.clone(), "fedmesh");
    api.patch(
        name,
        &PatchParams::apply("test").force(),
        &Patch::Apply(&secret),
    )
    .await
    .expect("apply access secret");
}

/// The federated Endpoints as (ip, targetRef name, port names) per subset.
pub async fn federated_endpoints(
    local: &kube::Client,
) -> Option<Vec<(String, String, Vec<String>)>> {
    let endpoints = Api::<Endpoints>::namespaced(local.clone(), "default")
        .get_opt("my-app-federated")
        .await
        .ok()??;
    Some(
        endpoints
            .subsets
            .unwrap_or_default()
            .into_iter()
            .flat_map(|subset| {
                let ports: Vec<String> = subset
                    .ports
                    .iter()
                    .flatten()
                    .map(|p| {
                        format!(
                            "{}/{}/{}",
                            p.name.clone().unwrap_or_default(),
                            p.port,
                            p.protocol.clone().unwrap_or_default()
                        )
                    })
                    .collect();
                subset
                    .addresses
                    .unwrap_or_default()
                    .into_iter()
                    .map(move |a| {
                        (
                            a.ip,
                            a.target_ref.and_then(|t| t.name).unwrap_or_default(),
                            ports.clone(),
                        )
                    })
            })
            .collect(),
    )
}

pub fn seed_result() -> Vec<(String, String, Vec<String>)> {
    vec![
        (
            "192.168.93.12".into(),
            "my-app-59cf48cdc7-frf2t".into(),
            vec!["my-app-ui/80/TCP".into()],
        ),
        (
            "192.168.0.28".into(),
            "remotecluster/my-app-7b6f758bd5-ctgbh".into(),
            vec!["my-app-ui/80/TCP".into()],
        ),
    ]
}

pub async fn wait_for_endpoints(
    local: &kube::Client,
    expected: Vec<(String, String, Vec<String>)>,
    what: &str,
) {
    eventually(what, || async {
        (federated_endpoints(local).await.as_ref() == Some(&expected)).then_some(())
    })
    .await;
}

pub async fn rcc_counts(local: &kube::Client) -> Option<(u64, u64)> {
    let rccs = Api::<DynamicObject>::all_with(local.clone(), &remote::api_resource());
    let status = rccs
        .get("remotecluster")
        .await
        .ok()?
        .data
        .get("status")?
        .clone();
    Some((
        status.get("syncedServices")?.as_u64()?,
        status.get("syncedEndpoints")?.as_u64()?,
    ))
}

pub async fn rcc_state(local: &kube::Client) -> Option<String> {
    Some(
        rcc_status(local, "remotecluster")
            .await?
            .get("state")?
            .as_str()?
            .to_owned(),
    )
}

/// The `status` of the RemoteClusterConfiguration `name`.
pub async fn rcc_status(local: &kube::Client, name: &str) -> Option<serde_json::Value> {
    let rccs = Api::<DynamicObject>::all_with(local.clone(), &remote::api_resource());
    let rcc = rccs.get(name).await.ok()?;
    rcc.data.get("status").cloned()
}

/// The reason of the status's true condition, with its message.
pub fn true_condition(status: &serde_json::Value) -> Option<(String, String)> {
    status
        .get("conditions")?
        .as_array()?
        .iter()
        .find(|c| c.get("status").and_then(|s| s.as_str()) == Some("True"))
        .map(|c| {
            let text = |k: &str| {
                c.get(k)
                    .and_then(|v| v.as_str())
                    .unwrap_or_default()
                    .to_owned()
            };
            (text("reason"), text("message"))
        })
}

/// Waits for the RemoteClusterConfiguration `name` to be in `state` with
/// `reason`, and gives the condition's message.
pub async fn wait_for_reason(
    local: &kube::Client,
    name: &str,
    state: &str,
    reason: &str,
) -> String {
    eventually(&format!("{name} to be {state} ({reason})"), || async {
        let status = rcc_status(local, name).await?;
        let (r, message) = true_condition(&status)?;
        (status.get("state")?.as_str()? == state && r == reason).then_some(message)
    })
    .await
}

/// The federation API's Clusters.
pub fn clusters(client: &kube::Client) -> Api<DynamicObject> {
    Api::all_with(client.clone(), &federation::api_resource())
}

/// A federation API server with the Cluster CRD and the `fedmesh` namespace.
pub async fn federation_server() -> (TestServer, kube::Client) {
    init_logs();
    let server = TestServer::start_with(TestServerOptions {
        name: "federation".into(),
        ..TestServerOptions::default()
    })
    .await
    .expect("federation server");
    let client = server.client().expect("client");
    Api::<CustomResourceDefinition>::all(client.clone())
        .create(
            &PostParams::default(),
            &federation::crd().expect("the CRD parses"),
        )
        .await
        .expect("create CRD");
    create(
        Api::<Namespace>::all(client.clone()),
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "fedmesh"}}),
    )
    .await;
    (server, client)
}

/// Adds the Cluster `name` at `server`, its access in the Secret `secret`.
pub async fn add_cluster(
    fed: &kube::Client,
    name: &str,
    server: &str,
    secret: &str,
    labels: Value,
) {
    let cluster: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "federation.fedmesh.io/v1alpha1", "kind": "Cluster",
        "metadata": {"name": name, "labels": labels},
        "spec": {"server": server, "secretRef": {"name": secret}}
    }))
    .expect("cluster");
    let api = clusters(fed);
    eventually("the Cluster resource to be served", || {
        let api = api.clone();
        let cluster = cluster.clone();
        async move { api.create(&PostParams::default(), &cluster).await.ok() }
    })
    .await;
}
