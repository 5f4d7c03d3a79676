//! The controller end to end: two embedded API servers on loopback, the
//! controller running against `local`, and seed 000's tutorial played out
//! over real HTTP.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use fedmesh_apiserver::testing::{TestServer, TestServerOptions};
use fedmesh_controller::mesh::remotes as remote;
use fedmesh_controller::{ControllerConfig, Metrics};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{Endpoints, Namespace, Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(15);

/// Polls `check` until it gives `Some`, for at most `WAIT`.
async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
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

async fn create<K>(api: Api<K>, object: serde_json::Value)
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    let object: K = serde_json::from_value(object).expect("valid object");
    api.create(&PostParams::default(), &object)
        .await
        .expect("create");
}

fn my_app_service() -> serde_json::Value {
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

fn my_app_slice(name: &str, ip: &str, pod: &str, node: &str) -> serde_json::Value {
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

fn federated_service(selector: &str) -> serde_json::Value {
    json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {
            "name": "my-app-federated", "namespace": "default",
            "annotations": {"federation.tigera.io/serviceSelector": selector}
        },
        "spec": {"ports": [{"name": "my-app-ui", "port": 8080, "protocol": "TCP"}]}
    })
}

struct Mesh {
    local: TestServer,
    remote: TestServer,
    controller: tokio::task::JoinHandle<()>,
}

impl Drop for Mesh {
    fn drop(&mut self) {
        self.controller.abort();
    }
}

/// Seed 000's tutorial: `my-app` in both clusters, the RemoteClusterConfiguration
/// `remotecluster` with its Secret, and the controller running.
async fn mesh(unreachable: serde_json::Value) -> Mesh {
    // Logs show with --nocapture and FEDMESH_TEST_LOG=debug (for instance).
    if let Ok(filter) = std::env::var("FEDMESH_TEST_LOG") {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_test_writer()
            .try_init();
    }
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
    let rcc: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "projectcalico.org/v3", "kind": "RemoteClusterConfiguration",
        "metadata": {"name": "remotecluster"},
        "spec": {
            "clusterAccessSecret": {"name": "remotecluster-access", "namespace": "fedmesh", "kind": "Secret"},
            "syncOptions": {"overlayRoutingMode": "Enabled"},
            "unreachable": unreachable
        }
    }))
    .expect("rcc");
    let rccs = Api::<DynamicObject>::all_with(lc.clone(), &remote::api_resource());
    eventually(
        "the RemoteClusterConfiguration resource to be served",
        || {
            let rccs = rccs.clone();
            let rcc = rcc.clone();
            async move { rccs.create(&PostParams::default(), &rcc).await.ok() }
        },
    )
    .await;

    let mut config = ControllerConfig::new("fedmesh", "test-replica");
    config.renew_interval = Duration::from_millis(200);
    config.lease_duration = Duration::from_secs(2);
    config.max_backoff = Duration::from_millis(500);
    config.status_refresh = Duration::from_millis(300);
    let controller = tokio::spawn(async move {
        fedmesh_controller::run(lc, config, Metrics::new(), std::future::pending())
            .await
            .expect("controller runs");
    });
    Mesh {
        local,
        remote,
        controller,
    }
}

async fn put_access_secret(local: &kube::Client, kubeconfig: Vec<u8>) {
    let secret = Secret {
        metadata: kube::api::ObjectMeta {
            name: Some("remotecluster-access".into()),
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
        "remotecluster-access",
        &PatchParams::apply("test").force(),
        &Patch::Apply(&secret),
    )
    .await
    .expect("apply access secret");
}

/// The federated Endpoints as (ip, targetRef name, port names) per subset.
async fn federated_endpoints(local: &kube::Client) -> Option<Vec<(String, String, Vec<String>)>> {
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

fn seed_result() -> Vec<(String, String, Vec<String>)> {
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

async fn wait_for_endpoints(
    local: &kube::Client,
    expected: Vec<(String, String, Vec<String>)>,
    what: &str,
) {
    eventually(what, || async {
        (federated_endpoints(local).await.as_ref() == Some(&expected)).then_some(())
    })
    .await;
}

async fn rcc_counts(local: &kube::Client) -> Option<(u64, u64)> {
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

async fn rcc_state(local: &kube::Client) -> Option<String> {
    let rccs = Api::<DynamicObject>::all_with(local.clone(), &remote::api_resource());
    let rcc = rccs.get("remotecluster").await.ok()?;
    Some(rcc.data.get("status")?.get("state")?.as_str()?.to_owned())
}

#[tokio::test]
async fn seed_tutorial_federates_local_and_remote_endpoints() {
    let mesh = mesh(json!(null)).await;
    let lc = mesh.local.client().unwrap();

    wait_for_endpoints(&lc, seed_result(), "the seed's federated endpoints").await;

    let slices = Api::<EndpointSlice>::namespaced(lc.clone(), "default")
        .list(
            &kube::api::ListParams::default().labels("kubernetes.io/service-name=my-app-federated"),
        )
        .await
        .unwrap();
    assert_eq!(slices.items.len(), 2);
    for slice in &slices.items {
        let labels = slice.metadata.labels.as_ref().unwrap();
        assert_eq!(
            labels["endpointslice.kubernetes.io/managed-by"],
            "federation-controller.fedmesh.io"
        );
        let ports = slice.ports.as_ref().unwrap();
        assert_eq!(ports.len(), 1);
        assert_eq!(
            (ports[0].name.as_deref(), ports[0].port),
            (Some("my-app-ui"), Some(80))
        );
    }

    let state = eventually("the remote to be in sync", || async {
        rcc_state(&lc).await.filter(|s| s == "InSync")
    })
    .await;
    assert_eq!(state, "InSync");

    // The remote was only read: nothing of fedmesh's appeared there.
    let rc = mesh.remote.client().unwrap();
    let ours = |label: &str| kube::api::ListParams::default().labels(label);
    let remote_slices = Api::<EndpointSlice>::all(rc.clone())
        .list(&ours(
            "endpointslice.kubernetes.io/managed-by=federation-controller.fedmesh.io",
        ))
        .await
        .unwrap();
    assert!(remote_slices.items.is_empty());
    let remote_endpoints = Api::<Endpoints>::all(rc)
        .list(&ours("fedmesh.io/managed-by"))
        .await
        .unwrap();
    assert!(remote_endpoints.items.is_empty());
}

#[tokio::test]
async fn user_edits_are_overwritten_and_annotation_removal_cleans_up() {
    let mesh = mesh(json!(null)).await;
    let lc = mesh.local.client().unwrap();
    wait_for_endpoints(&lc, seed_result(), "the seed's federated endpoints").await;

    let endpoints = Api::<Endpoints>::namespaced(lc.clone(), "default");
    let mut edited = endpoints.get("my-app-federated").await.unwrap();
    edited.subsets = None;
    endpoints
        .replace("my-app-federated", &PostParams::default(), &edited)
        .await
        .unwrap();
    wait_for_endpoints(&lc, seed_result(), "the edit to be overwritten").await;

    // A backing endpoint going away in the remote is followed.
    let rc = mesh.remote.client().unwrap();
    Api::<EndpointSlice>::namespaced(rc, "default")
        .delete("my-app-abcde", &DeleteParams::default())
        .await
        .unwrap();
    wait_for_endpoints(
        &lc,
        seed_result()[..1].to_vec(),
        "the remote endpoint to go",
    )
    .await;

    // Without the annotation the Service is not federated: what fedmesh wrote goes.
    let services = Api::<Service>::namespaced(lc.clone(), "default");
    services
        .patch(
            "my-app-federated",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {"federation.tigera.io/serviceSelector": null}}})),
        )
        .await
        .unwrap();
    eventually("fedmesh's objects to be removed", || async {
        let gone = endpoints.get_opt("my-app-federated").await.ok()?.is_none();
        let slices = Api::<EndpointSlice>::namespaced(lc.clone(), "default")
            .list(
                &kube::api::ListParams::default()
                    .labels("kubernetes.io/service-name=my-app-federated"),
            )
            .await
            .ok()?;
        (gone && slices.items.is_empty()).then_some(())
    })
    .await;
}

#[tokio::test]
async fn invalid_selector_warns_and_removes_endpoints() {
    let mesh = mesh(json!(null)).await;
    let lc = mesh.local.client().unwrap();
    wait_for_endpoints(&lc, seed_result(), "the seed's federated endpoints").await;

    Api::<Service>::namespaced(lc.clone(), "default")
        .patch(
            "my-app-federated",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {"federation.tigera.io/serviceSelector": "run == "}}})),
        )
        .await
        .unwrap();
    let endpoints = Api::<Endpoints>::namespaced(lc.clone(), "default");
    eventually("the endpoints to be removed", || async {
        endpoints
            .get_opt("my-app-federated")
            .await
            .ok()?
            .is_none()
            .then_some(())
    })
    .await;
    let events = Api::<k8s_openapi::api::events::v1::Event>::namespaced(lc.clone(), "default");
    let note = eventually("a warning event", || async {
        let list = events.list(&kube::api::ListParams::default()).await.ok()?;
        list.items
            .into_iter()
            .find(|e| e.reason.as_deref() == Some("InvalidServiceSelector"))
            .and_then(|e| e.note)
    })
    .await;
    assert!(note.contains("byte"), "the warning says where: {note}");
}

#[tokio::test]
async fn secret_rotation_and_bad_config_take_effect_without_restart() {
    let mesh = mesh(json!(null)).await;
    let lc = mesh.local.client().unwrap();
    wait_for_endpoints(&lc, seed_result(), "the seed's federated endpoints").await;

    // A broken Secret is reported, and follows the unreachable policy like a
    // remote that does not answer: under KeepLastKnown the endpoints stay.
    put_access_secret(&lc, b"not a kubeconfig".to_vec()).await;
    eventually("ConfigIncomplete", || async {
        rcc_state(&lc).await.filter(|s| s == "ConfigIncomplete")
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        federated_endpoints(&lc).await,
        Some(seed_result()),
        "a broken Secret must not withdraw endpoints under KeepLastKnown"
    );

    let kubeconfig = std::fs::read(mesh.remote.kubeconfig_path()).unwrap();
    put_access_secret(&lc, kubeconfig).await;
    eventually("InSync", || async {
        rcc_state(&lc).await.filter(|s| s == "InSync")
    })
    .await;
    assert_eq!(federated_endpoints(&lc).await, Some(seed_result()));
}

#[tokio::test]
async fn an_unreachable_remote_is_withdrawn_after_the_grace_period_when_asked() {
    let mut mesh = mesh(json!({"endpoints": "Withdraw", "gracePeriodSeconds": 1})).await;
    let lc = mesh.local.client().unwrap();
    wait_for_endpoints(&lc, seed_result(), "the seed's federated endpoints").await;
    eventually("InSync", || async {
        rcc_state(&lc).await.filter(|s| s == "InSync")
    })
    .await;

    mesh.remote.kill();
    eventually("ConnectionFailed", || async {
        rcc_state(&lc).await.filter(|s| s == "ConnectionFailed")
    })
    .await;
    wait_for_endpoints(
        &lc,
        seed_result()[..1].to_vec(),
        "the remote's endpoints to be withdrawn",
    )
    .await;

    mesh.remote
        .restart()
        .await
        .expect("remote restarts on its data");
    wait_for_endpoints(&lc, seed_result(), "the remote to come back").await;
}

#[tokio::test]
async fn an_unreachable_remote_keeps_its_endpoints_by_default() {
    let mut mesh = mesh(json!(null)).await;
    let lc = mesh.local.client().unwrap();
    wait_for_endpoints(&lc, seed_result(), "the seed's federated endpoints").await;
    eventually("InSync", || async {
        rcc_state(&lc).await.filter(|s| s == "InSync")
    })
    .await;

    mesh.remote.kill();
    eventually("ConnectionFailed", || async {
        rcc_state(&lc).await.filter(|s| s == "ConnectionFailed")
    })
    .await;
    // Well past when Withdraw would have acted (1 s in the other test).
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(federated_endpoints(&lc).await, Some(seed_result()));
}

#[tokio::test]
async fn status_counts_follow_the_remote_after_the_first_sync() {
    let mesh = mesh(json!(null)).await;
    let lc = mesh.local.client().unwrap();
    wait_for_endpoints(&lc, seed_result(), "the seed's federated endpoints").await;
    let (services, endpoints) = eventually("counts in the status", || async {
        rcc_counts(&lc).await.filter(|(s, _)| *s > 0)
    })
    .await;

    let rc = mesh.remote.client().unwrap();
    let mut extra = my_app_service();
    extra["metadata"]["name"] = json!("extra");
    create(Api::<Service>::namespaced(rc.clone(), "default"), extra).await;
    let mut slice = my_app_slice("extra-1", "192.168.0.99", "extra-pod", "n");
    slice["metadata"]["labels"]["kubernetes.io/service-name"] = json!("extra");
    create(Api::<EndpointSlice>::namespaced(rc, "default"), slice).await;
    eventually("the counts to grow", || async {
        rcc_counts(&lc)
            .await
            .filter(|(s, e)| *s > services && *e > endpoints)
    })
    .await;
}
