//! The fault matrix's remote-cluster rows (docs/reliability.md): seed 000's
//! mesh with the controller in-process, and one fault injected per test into
//! the remote cluster or its access Secret. Each test checks what a user sees:
//! the RemoteClusterConfiguration's state and reason, the
//! `remote_cluster_connection_status` gauge, Warning Events and the federated
//! Endpoints.

mod support;

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::rbac::v1::ClusterRoleBinding;
use kube::api::{Api, DeleteParams, ListParams};
use kube::config::Kubeconfig;
use serde_json::json;
use support::*;

/// The gauge's value for the remote, from the metrics text (Calico's
/// encoding: 2 InSync, 0 ConnectionFailed).
fn gauge(mesh: &Mesh) -> Option<f64> {
    mesh.metrics.encode().lines().find_map(|line| {
        line.strip_prefix("remote_cluster_connection_status{")
            .filter(|rest| rest.contains("\"remotecluster\""))
            .and_then(|rest| rest.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
    })
}

async fn wait_for_gauge(mesh: &Mesh, value: f64) {
    eventually(&format!("the connection gauge to read {value}"), || async {
        (gauge(mesh) == Some(value)).then_some(())
    })
    .await;
}

/// A second remote endpoint, created in the remote while a fault is on or
/// after it healed, to show that changes flow.
async fn add_remote_endpoint(mesh: &Mesh, name: &str, ip: &str) {
    create(
        Api::<EndpointSlice>::namespaced(mesh.remote.client().unwrap(), "default"),
        my_app_slice(name, ip, &format!("{name}-pod"), "node2.remotecluster"),
    )
    .await;
}

fn with_remote_endpoint(ip: &str, pod: &str) -> Vec<(String, String, Vec<String>)> {
    let mut expected = seed_result();
    expected.push((
        ip.into(),
        format!("remotecluster/{pod}"),
        vec!["my-app-ui/80/TCP".into()],
    ));
    expected.sort();
    expected
}

async fn sorted_endpoints(local: &kube::Client) -> Option<Vec<(String, String, Vec<String>)>> {
    let mut endpoints = federated_endpoints(local).await?;
    endpoints.sort();
    Some(endpoints)
}

/// Asserts the federated endpoints stay `expected` for `period`, sampled.
async fn endpoints_stay(
    local: &kube::Client,
    expected: &[(String, String, Vec<String>)],
    period: Duration,
    why: &str,
) {
    let until = Instant::now() + period;
    while Instant::now() < until {
        let mut seen = federated_endpoints(local).await;
        if let Some(seen) = seen.as_mut() {
            seen.sort();
        }
        let mut want = expected.to_vec();
        want.sort();
        assert_eq!(seen, Some(want), "{why}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn in_sync(mesh: &Mesh) {
    let lc = mesh.local.client().unwrap();
    wait_for_endpoints(&lc, seed_result(), "the seed's federated endpoints").await;
    eventually("InSync", || async {
        rcc_state(&lc).await.filter(|s| s == "InSync")
    })
    .await;
}

/// A Warning Event with `reason` about anything, from either Events API.
async fn wait_for_warning(local: &kube::Client, reason: &str) -> String {
    let events = Api::<k8s_openapi::api::events::v1::Event>::all(local.clone());
    eventually(&format!("a Warning Event {reason}"), || async {
        let list = events.list(&ListParams::default()).await.ok()?;
        list.items
            .into_iter()
            .find(|e| e.reason.as_deref() == Some(reason) && e.type_.as_deref() == Some("Warning"))
            .and_then(|e| e.note)
    })
    .await
}

/// A kubeconfig for the remote that authenticates as a ServiceAccount with
/// `cluster-admin` through a legacy token Secret, so that the test can
/// revoke the token (delete the Secret) or the role (delete the binding).
async fn service_account_kubeconfig(mesh: &Mesh) -> Vec<u8> {
    let rc = mesh.remote.client().unwrap();
    create(
        Api::<ServiceAccount>::namespaced(rc.clone(), "default"),
        json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "fedmesh-reader"}}),
    )
    .await;
    create(
        Api::<ClusterRoleBinding>::all(rc.clone()),
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
            "metadata": {"name": "fedmesh-reader"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
            "subjects": [{"kind": "ServiceAccount", "name": "fedmesh-reader", "namespace": "default"}]
        }),
    )
    .await;
    let secrets = Api::<Secret>::namespaced(rc, "default");
    create(
        secrets.clone(),
        json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "fedmesh-reader-token",
                         "annotations": {"kubernetes.io/service-account.name": "fedmesh-reader"}},
            "type": "kubernetes.io/service-account-token"
        }),
    )
    .await;
    let token = eventually("the token to be minted", || async {
        let secret = secrets.get("fedmesh-reader-token").await.ok()?;
        let token = secret.data?.get("token")?.0.clone();
        String::from_utf8(token).ok()
    })
    .await;
    let mut config = remote_kubeconfig(mesh);
    for user in &mut config.auth_infos {
        let auth = user.auth_info.get_or_insert_with(Default::default);
        *auth = kube::config::AuthInfo {
            token: Some(token.clone().into()),
            ..Default::default()
        };
    }
    serde_json::to_vec(&config).expect("kubeconfig serialises")
}

fn remote_kubeconfig(mesh: &Mesh) -> Kubeconfig {
    Kubeconfig::read_from(mesh.remote.kubeconfig_path()).expect("remote kubeconfig")
}

#[tokio::test]
async fn a_killed_remote_returns_to_in_sync_with_its_gauge_when_restarted() {
    let mut mesh = mesh(json!(null)).await;
    in_sync(&mesh).await;
    wait_for_gauge(&mesh, 2.0).await;
    let lc = mesh.local.client().unwrap();

    mesh.remote.kill();
    let message = wait_for_reason(&lc, "remotecluster", "ConnectionFailed", "Unreachable").await;
    assert!(
        !message.contains("Error {"),
        "a sentence, not a debug dump: {message}"
    );
    wait_for_gauge(&mesh, 0.0).await;

    mesh.remote
        .restart()
        .await
        .expect("the remote restarts on its data");
    wait_for_reason(&lc, "remotecluster", "InSync", "Synced").await;
    wait_for_gauge(&mesh, 2.0).await;
    add_remote_endpoint(&mesh, "after-restart", "192.168.0.77").await;
    eventually("a change after the restart to arrive", || async {
        (sorted_endpoints(&lc).await? == with_remote_endpoint("192.168.0.77", "after-restart-pod"))
            .then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_hung_remote_is_noticed_within_ten_seconds_and_withdrawn_under_withdraw() {
    // The default probe settings: the bound under test is the default one.
    let mesh = mesh_with(
        json!({"endpoints": "Withdraw", "gracePeriodSeconds": 1}),
        |c| {
            let defaults = fedmesh_controller::ControllerConfig::new("", "");
            c.probe_interval = defaults.probe_interval;
            c.probe_timeout = defaults.probe_timeout;
            c.failure_threshold = defaults.failure_threshold;
        },
    )
    .await;
    in_sync(&mesh).await;
    let lc = mesh.local.client().unwrap();

    let hung = Instant::now();
    mesh.remote.hang();
    wait_for_reason(&lc, "remotecluster", "ConnectionFailed", "Timeout").await;
    let noticed = hung.elapsed();
    eprintln!("a hung remote was noticed after {} ms", noticed.as_millis());
    assert!(
        noticed <= Duration::from_secs(11),
        "noticed after {noticed:?}"
    );
    wait_for_endpoints(
        &lc,
        seed_result()[..1].to_vec(),
        "the remote's endpoints to be withdrawn",
    )
    .await;
    wait_for_gauge(&mesh, 0.0).await;

    mesh.remote.heal();
    wait_for_endpoints(&lc, seed_result(), "the remote's endpoints to return").await;
    wait_for_reason(&lc, "remotecluster", "InSync", "Synced").await;
}

#[tokio::test]
async fn a_remote_answering_500s_is_reported_and_keeps_its_endpoints() {
    let mesh = mesh(json!(null)).await;
    in_sync(&mesh).await;
    let lc = mesh.local.client().unwrap();

    mesh.remote.fail_500();
    let message = wait_for_reason(&lc, "remotecluster", "ConnectionFailed", "ServerError").await;
    assert!(
        message.contains("500"),
        "says what the remote answered: {message}"
    );
    endpoints_stay(
        &lc,
        &seed_result(),
        Duration::from_secs(2),
        "KeepLastKnown keeps the endpoints",
    )
    .await;

    mesh.remote.heal();
    wait_for_reason(&lc, "remotecluster", "InSync", "Synced").await;
    add_remote_endpoint(&mesh, "after-500s", "192.168.0.78").await;
    eventually("a change after the 500s to arrive", || async {
        (sorted_endpoints(&lc).await? == with_remote_endpoint("192.168.0.78", "after-500s-pod"))
            .then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_slow_remote_syncs_below_the_probe_timeout_and_times_out_above_it() {
    let mesh = mesh(json!(null)).await;
    in_sync(&mesh).await;
    let lc = mesh.local.client().unwrap();

    // 300 ms a request: slow but well inside the 2 s probe timeout.
    mesh.remote.add_latency(Duration::from_millis(300));
    add_remote_endpoint(&mesh, "slow", "192.168.0.79").await;
    eventually("a change from a slow remote to arrive", || async {
        (sorted_endpoints(&lc).await? == with_remote_endpoint("192.168.0.79", "slow-pod"))
            .then_some(())
    })
    .await;
    assert_eq!(rcc_state(&lc).await.as_deref(), Some("InSync"));

    // 5 s a request: past the probe timeout, so the remote counts as failed.
    mesh.remote.add_latency(Duration::from_secs(5));
    wait_for_reason(&lc, "remotecluster", "ConnectionFailed", "Timeout").await;
    mesh.remote.heal();
    wait_for_reason(&lc, "remotecluster", "InSync", "Synced").await;
}

#[tokio::test]
async fn watches_answered_with_410_relist_and_changes_still_arrive() {
    let mut mesh = mesh(json!(null)).await;
    in_sync(&mesh).await;
    let lc = mesh.local.client().unwrap();

    // Every watch, including those reopened after the restart ends the open
    // ones, is answered 410 Gone: only listings work.
    mesh.remote.expire_watches();
    mesh.remote.kill();
    mesh.remote
        .restart()
        .await
        .expect("the remote restarts on its data");
    wait_for_reason(&lc, "remotecluster", "InSync", "Synced").await;
    add_remote_endpoint(&mesh, "during-410", "192.168.0.80").await;
    let expected = with_remote_endpoint("192.168.0.80", "during-410-pod");
    eventually(
        "a change made while watches expire to arrive by relisting",
        || async { (sorted_endpoints(&lc).await? == expected).then_some(()) },
    )
    .await;
    let until = Instant::now() + Duration::from_secs(2);
    while Instant::now() < until {
        assert_eq!(
            sorted_endpoints(&lc).await.as_ref(),
            Some(&expected),
            "relisting never drops endpoints"
        );
        assert_eq!(
            rcc_state(&lc).await.as_deref(),
            Some("InSync"),
            "an expired watch is no failure"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    mesh.remote.heal();
    Api::<EndpointSlice>::namespaced(mesh.remote.client().unwrap(), "default")
        .delete("during-410", &DeleteParams::default())
        .await
        .unwrap();
    wait_for_endpoints(&lc, seed_result(), "watches to resume after the fault").await;
}

#[tokio::test]
async fn a_revoked_token_is_reported_unauthorized_within_the_probe_interval() {
    let mesh = mesh(json!(null)).await;
    in_sync(&mesh).await;
    let lc = mesh.local.client().unwrap();
    let kubeconfig = service_account_kubeconfig(&mesh).await;
    put_access_secret(&lc, kubeconfig).await;
    // A rotation to working credentials never withdraws anything.
    endpoints_stay(
        &lc,
        &seed_result(),
        Duration::from_secs(2),
        "rotating the Secret keeps the endpoints",
    )
    .await;
    wait_for_reason(&lc, "remotecluster", "InSync", "Synced").await;

    Api::<Secret>::namespaced(mesh.remote.client().unwrap(), "default")
        .delete("fedmesh-reader-token", &DeleteParams::default())
        .await
        .unwrap();
    let message = wait_for_reason(&lc, "remotecluster", "ConnectionFailed", "Unauthorized").await;
    assert!(
        message.contains("fedmesh join"),
        "says what to do: {message}"
    );
    assert_eq!(
        sorted_endpoints(&lc).await,
        Some({
            let mut s = seed_result();
            s.sort();
            s
        }),
        "KeepLastKnown keeps the endpoints"
    );
}

#[tokio::test]
async fn a_removed_role_is_reported_forbidden() {
    let mesh = mesh(json!(null)).await;
    in_sync(&mesh).await;
    let lc = mesh.local.client().unwrap();
    let kubeconfig = service_account_kubeconfig(&mesh).await;
    put_access_secret(&lc, kubeconfig).await;
    wait_for_reason(&lc, "remotecluster", "InSync", "Synced").await;

    Api::<ClusterRoleBinding>::all(mesh.remote.client().unwrap())
        .delete("fedmesh-reader", &DeleteParams::default())
        .await
        .unwrap();
    let message = wait_for_reason(&lc, "remotecluster", "ConnectionFailed", "Forbidden").await;
    assert!(
        message.contains("fedmesh join"),
        "says what to do: {message}"
    );
}

#[tokio::test]
async fn a_remote_rebuilt_with_a_new_ca_is_reported_certificate_changed() {
    let mesh = mesh(json!(null)).await;
    in_sync(&mesh).await;
    let lc = mesh.local.client().unwrap();

    // Another cluster at the address, as after a rebuild: the old CA data
    // no longer verifies the server's certificate.
    let rebuilt = fedmesh_apiserver::testing::TestServer::start()
        .await
        .expect("another server");
    let mut config = remote_kubeconfig(&mesh);
    for cluster in &mut config.clusters {
        if let Some(c) = cluster.cluster.as_mut() {
            c.server = Some(rebuilt.url());
        }
    }
    put_access_secret(&lc, serde_json::to_vec(&config).unwrap()).await;
    let message = wait_for_reason(
        &lc,
        "remotecluster",
        "ConnectionFailed",
        "CertificateChanged",
    )
    .await;
    assert!(
        message.contains("fedmesh join"),
        "says what to do: {message}"
    );
    assert!(
        !message.contains("BadSignature {"),
        "no debug dump: {message}"
    );
}

#[tokio::test]
async fn a_deleted_secret_follows_the_policy_and_delete_then_create_has_no_outage() {
    let mesh = mesh(json!(null)).await;
    in_sync(&mesh).await;
    let lc = mesh.local.client().unwrap();
    let kubeconfig = std::fs::read(mesh.remote.kubeconfig_path()).unwrap();

    Api::<Secret>::namespaced(lc.clone(), "fedmesh")
        .delete("remotecluster-access", &DeleteParams::default())
        .await
        .unwrap();
    let message = wait_for_reason(&lc, "remotecluster", "ConfigIncomplete", "SecretNotFound").await;
    assert!(
        message.contains("remotecluster-access"),
        "names the Secret: {message}"
    );
    endpoints_stay(
        &lc,
        &seed_result(),
        Duration::from_secs(2),
        "a missing Secret keeps the endpoints under KeepLastKnown",
    )
    .await;

    put_access_secret(&lc, kubeconfig).await;
    wait_for_reason(&lc, "remotecluster", "InSync", "Synced").await;
    endpoints_stay(
        &lc,
        &seed_result(),
        Duration::from_secs(1),
        "the endpoints stay after the Secret returns",
    )
    .await;
}

#[tokio::test]
async fn a_deleted_secret_withdraws_after_the_grace_period_under_withdraw() {
    let mesh = mesh(json!({"endpoints": "Withdraw", "gracePeriodSeconds": 1})).await;
    in_sync(&mesh).await;
    let lc = mesh.local.client().unwrap();

    Api::<Secret>::namespaced(lc.clone(), "fedmesh")
        .delete("remotecluster-access", &DeleteParams::default())
        .await
        .unwrap();
    wait_for_reason(&lc, "remotecluster", "ConfigIncomplete", "SecretNotFound").await;
    wait_for_endpoints(
        &lc,
        seed_result()[..1].to_vec(),
        "the remote's endpoints to be withdrawn",
    )
    .await;
}

#[tokio::test]
async fn a_second_configuration_for_the_same_remote_is_refused() {
    let mesh = mesh(json!(null)).await;
    in_sync(&mesh).await;
    let lc = mesh.local.client().unwrap();

    let kubeconfig = std::fs::read(mesh.remote.kubeconfig_path()).unwrap();
    put_secret(&lc, "copy-access", kubeconfig).await;
    add_rcc(&lc, "remotecluster-copy", "copy-access", json!(null)).await;
    let message = wait_for_reason(
        &lc,
        "remotecluster-copy",
        "ConfigIncomplete",
        "DuplicateCluster",
    )
    .await;
    assert!(
        message.contains("remotecluster"),
        "names the configuration it duplicates: {message}"
    );
    wait_for_warning(&lc, "DuplicateCluster").await;
    endpoints_stay(
        &lc,
        &seed_result(),
        Duration::from_secs(2),
        "no endpoint appears twice",
    )
    .await;
    assert_eq!(
        rcc_state(&lc).await.as_deref(),
        Some("InSync"),
        "the first one is unaffected"
    );
}

#[tokio::test]
async fn a_configuration_for_the_local_cluster_itself_is_refused() {
    let mesh = mesh(json!(null)).await;
    in_sync(&mesh).await;
    let lc = mesh.local.client().unwrap();

    let kubeconfig = std::fs::read(mesh.local.kubeconfig_path()).unwrap();
    put_secret(&lc, "self-access", kubeconfig).await;
    add_rcc(&lc, "itself", "self-access", json!(null)).await;
    wait_for_reason(&lc, "itself", "ConfigIncomplete", "LocalCluster").await;
    wait_for_warning(&lc, "LocalCluster").await;
    endpoints_stay(
        &lc,
        &seed_result(),
        Duration::from_secs(2),
        "no local endpoint appears twice",
    )
    .await;
}

#[tokio::test]
async fn the_last_remote_endpoint_going_empties_endpoints_and_slices_alike() {
    let mesh = mesh(json!(null)).await;
    in_sync(&mesh).await;
    let lc = mesh.local.client().unwrap();

    Api::<EndpointSlice>::namespaced(mesh.remote.client().unwrap(), "default")
        .delete("my-app-abcde", &DeleteParams::default())
        .await
        .unwrap();
    wait_for_endpoints(
        &lc,
        seed_result()[..1].to_vec(),
        "the Endpoints to lose the remote address",
    )
    .await;

    Api::<EndpointSlice>::namespaced(lc.clone(), "default")
        .delete("my-app-fghij", &DeleteParams::default())
        .await
        .unwrap();
    wait_for_endpoints(&lc, vec![], "the Endpoints to be emptied").await;
    let slices = Api::<EndpointSlice>::namespaced(lc.clone(), "default");
    eventually(
        "the federated EndpointSlices to hold no endpoint",
        || async {
            let list = slices
                .list(&ListParams::default().labels("kubernetes.io/service-name=my-app-federated"))
                .await
                .ok()?;
            list.items
                .iter()
                .all(|s| s.endpoints.is_empty())
                .then_some(())
        },
    )
    .await;
}
