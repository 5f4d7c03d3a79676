//! The test harness itself: restarts on the same data and port, faults, 410s
//! after compaction, and a lease-based leader election over the API.

use std::time::Duration;

use fedmesh_apiserver::testing::TestServer;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{Api, PostParams, WatchEvent, WatchParams};
use kube::runtime::{WatchStreamExt, reflector, watcher};
use serde_json::json;

use crate::common::eventually;

fn cm(name: &str) -> ConfigMap {
    serde_json::from_value(json!({"metadata": {"name": name}})).unwrap()
}

#[tokio::test]
async fn reflector_survives_a_kill_and_restart_on_the_same_port() {
    let mut server = TestServer::start().await.unwrap();
    let addr = server.addr();
    let api: Api<ConfigMap> = Api::namespaced(server.client().unwrap(), "default");
    api.create(&PostParams::default(), &cm("before"))
        .await
        .unwrap();
    let (reader, writer) = reflector::store();
    let stream = reflector(writer, watcher(api.clone(), watcher::Config::default()))
        .default_backoff()
        .applied_objects()
        .boxed();
    let task = tokio::spawn(stream.for_each(|_| async {}));
    let seen = |name: &'static str| {
        let reader = reader.clone();
        async move {
            eventually(Duration::from_secs(15), || {
                let reader = reader.clone();
                async move {
                    reader
                        .state()
                        .iter()
                        .any(|c| c.metadata.name.as_deref() == Some(name))
                        .then_some(())
                }
            })
            .await
        }
    };
    assert!(seen("before").await.is_some());
    server.kill();
    server.restart().await.unwrap();
    assert_eq!(server.addr(), addr, "same port after restart");
    let api: Api<ConfigMap> = Api::namespaced(server.client().unwrap(), "default");
    assert!(api.get("before").await.is_ok(), "data kept");
    api.create(&PostParams::default(), &cm("after"))
        .await
        .unwrap();
    assert!(
        seen("after").await.is_some(),
        "the watcher resumed after the restart"
    );
    task.abort();
    server.stop().await;
}

#[tokio::test]
async fn a_watch_from_a_compacted_revision_gets_410_gone() {
    let server = TestServer::start().await.unwrap();
    let api: Api<ConfigMap> = Api::namespaced(server.client().unwrap(), "default");
    let first = api.create(&PostParams::default(), &cm("a")).await.unwrap();
    let old_rv = first.metadata.resource_version.unwrap();
    for n in ["b", "c"] {
        api.create(&PostParams::default(), &cm(n)).await.unwrap();
    }
    let store = server.server().unwrap().store().clone();
    let current = store.current_revision().await.unwrap();
    store.raw().compact(current).await.unwrap();
    let mut stream = api
        .watch(&WatchParams::default().timeout(5), &old_rv)
        .await
        .unwrap()
        .boxed();
    let event = tokio::time::timeout(Duration::from_secs(5), stream.try_next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    match event {
        WatchEvent::Error(e) => {
            assert_eq!(e.code, 410);
            assert_eq!(e.reason, "Expired");
            assert!(
                e.message
                    .starts_with(&format!("too old resource version: {old_rv} (")),
                "{}",
                e.message
            );
        }
        other => panic!("expected 410, got {other:?}"),
    }
    let err = api
        .list(&kube::api::ListParams::default().limit(1).continue_token(
            "eyJydiI6MSwic3RhcnQiOiIvcmVnaXN0cnkvY29yZS9jb25maWdtYXBzL2RlZmF1bHQvYSJ9",
        ))
        .await
        .unwrap_err();
    assert!(
        matches!(err, kube::Error::Api(s) if s.code == 410),
        "expired continue token"
    );
}

#[tokio::test]
async fn faults_500s_latency_hang_and_refuse() {
    let server = TestServer::start().await.unwrap();
    let api: Api<ConfigMap> = Api::namespaced(server.client().unwrap(), "default");
    api.create(&PostParams::default(), &cm("x")).await.unwrap();

    server.fail_500();
    let err = api.get("x").await.unwrap_err();
    assert!(matches!(err, kube::Error::Api(s) if s.code == 500));

    server.add_latency(Duration::from_millis(300));
    let started = std::time::Instant::now();
    api.get("x").await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(300));

    server.hang();
    let hung = tokio::time::timeout(Duration::from_millis(500), api.get("x")).await;
    assert!(hung.is_err(), "no answer while hung");

    server.refuse();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let fresh: Api<ConfigMap> = Api::namespaced(server.client().unwrap(), "default");
    let refused = tokio::time::timeout(Duration::from_secs(5), fresh.get("x"))
        .await
        .unwrap();
    assert!(refused.is_err(), "connections refused");
    assert!(std::net::TcpStream::connect(server.addr()).is_err());

    server.heal();
    let back = eventually(Duration::from_secs(10), || async {
        let api: Api<ConfigMap> = Api::namespaced(server.client().ok()?, "default");
        api.get("x").await.ok()
    })
    .await;
    assert!(back.is_some(), "serves again once healed");
}

/// One step of a minimal lease-based election: take the lease if it is free or
/// expired, renew it if held; `true` when `me` holds it afterwards.
async fn try_lead(api: &Api<Lease>, me: &str, duration_s: i32) -> bool {
    let now = jiff::Timestamp::now();
    let mine = |rv: Option<String>| -> Lease {
        serde_json::from_value(json!({
            "metadata": {"name": "leader", "resourceVersion": rv},
            "spec": {"holderIdentity": me, "leaseDurationSeconds": duration_s,
                     "renewTime": MicroTime(now)}
        }))
        .unwrap()
    };
    match api.get_opt("leader").await.unwrap() {
        None => api
            .create(&PostParams::default(), &mine(None))
            .await
            .is_ok(),
        Some(l) => {
            let spec = l.spec.clone().unwrap_or_default();
            let expired = spec.renew_time.is_none_or(|MicroTime(t)| {
                t + jiff::SignedDuration::from_secs(i64::from(
                    spec.lease_duration_seconds.unwrap_or(0),
                )) < now
            });
            if spec.holder_identity.as_deref() != Some(me) && !expired {
                return false;
            }
            // The resourceVersion makes two contenders racing for an expired
            // lease conflict: only one update succeeds.
            api.replace(
                "leader",
                &PostParams::default(),
                &mine(l.metadata.resource_version),
            )
            .await
            .is_ok()
        }
    }
}

#[tokio::test]
async fn lease_leader_election_fails_over_after_expiry() {
    let server = TestServer::start().await.unwrap();
    let api: Api<Lease> = Api::namespaced(server.client().unwrap(), "kube-system");
    assert!(try_lead(&api, "a", 1).await, "a takes the free lease");
    assert!(!try_lead(&api, "b", 1).await, "b cannot while a holds it");
    assert!(try_lead(&api, "a", 1).await, "a renews");
    // a stops renewing; b takes over once the lease expires.
    let took = eventually(Duration::from_secs(5), || async {
        try_lead(&api, "b", 1).await.then_some(())
    })
    .await;
    assert!(took.is_some());
    let holder = api
        .get("leader")
        .await
        .unwrap()
        .spec
        .unwrap()
        .holder_identity;
    assert_eq!(holder.as_deref(), Some("b"));
    assert!(!try_lead(&api, "a", 1).await, "a lost the lease");
}
