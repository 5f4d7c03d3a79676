//! The controller end to end: two embedded API servers on loopback, the
//! controller running against `local`, and seed 000's tutorial played out
//! over real HTTP.

mod support;

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::{Endpoints, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::json;
use support::*;

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

/// Warning Events about `service` in `default`, with who published each.
async fn warnings_on(local: &kube::Client, service: &str) -> Vec<(String, Option<String>)> {
    Api::<k8s_openapi::api::events::v1::Event>::namespaced(local.clone(), "default")
        .list(&kube::api::ListParams::default())
        .await
        .map(|l| l.items)
        .unwrap_or_default()
        .into_iter()
        .filter(|e| e.type_.as_deref() == Some("Warning"))
        .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(service))
        .map(|e| (e.reason.unwrap_or_default(), e.reporting_instance))
        .collect()
}

#[tokio::test]
async fn a_problem_seen_before_leading_is_told_once_the_lease_is_taken() {
    // Another replica holds the Lease for a minute, and two Services with a
    // selector that does not parse are there before this replica starts.
    let mesh = mesh_prepared(
        json!(null),
        |config| {
            config.retry_interval = Duration::from_millis(100);
            config.probe_interval = Duration::from_millis(100);
        },
        async |lc: &kube::Client| {
            let lease = Lease {
                metadata: kube::api::ObjectMeta {
                    name: Some("fedmesh-controller".into()),
                    ..Default::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some("other-replica".into()),
                    lease_duration_seconds: Some(60),
                    renew_time: Some(MicroTime(Timestamp::now())),
                    ..LeaseSpec::default()
                }),
            };
            Api::<Lease>::namespaced(lc.clone(), "fedmesh")
                .create(&PostParams::default(), &lease)
                .await
                .unwrap();
            for name in ["broken", "fixed"] {
                let mut service = federated_service("run == ");
                service["metadata"]["name"] = json!(name);
                create(Api::<Service>::namespaced(lc.clone(), "default"), service).await;
            }
        },
    )
    .await;
    let lc = mesh.local.client().unwrap();

    // The standby has listed the Services (and warned, to nobody).
    eventually("the standby to list the local cluster", || async {
        mesh.metrics.unready().is_none().then_some(())
    })
    .await;
    // One of them is fixed meanwhile: its problem is over before this
    // replica could tell it, so it never is.
    let services = Api::<Service>::namespaced(lc.clone(), "default");
    services
        .patch(
            "fixed",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {"federation.tigera.io/serviceSelector": r#"run == "my-app""#}}})),
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        warnings_on(&lc, "broken").await,
        vec![],
        "a standby is silent"
    );

    // The other replica goes away cleanly: this one leads, and tells.
    Api::<Lease>::namespaced(lc.clone(), "fedmesh")
        .patch(
            "fedmesh-controller",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"holderIdentity": null}})),
        )
        .await
        .unwrap();
    let told = eventually("the Warning from the new leader", || async {
        let all = warnings_on(&lc, "broken").await;
        (!all.is_empty()).then_some(all)
    })
    .await;
    assert_eq!(
        told,
        vec![(
            "InvalidServiceSelector".to_string(),
            Some("test-replica".to_string())
        )]
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(warnings_on(&lc, "fixed").await, vec![], "over before told");
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
