//! core/v1 and events.k8s.io/v1 Events are one resource: what kube-rs' event
//! recorder writes through events.k8s.io/v1 is what `kubectl get events` and
//! `kubectl describe` read through core/v1, and the other way round.

use std::time::Duration;

use k8s_openapi::api::core::v1::{Event as CoreEvent, ObjectReference, Service};
use k8s_openapi::api::events::v1::Event as NewEvent;
use kube::api::{Api, ListParams, PostParams, WatchEvent, WatchParams};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};

use futures::StreamExt;

use crate::common::{client, namespace};
use crate::kubectl::kubectl;

async fn service(ns: &str, name: &str) -> Service {
    let api: Api<Service> = Api::namespaced(client(), ns);
    let svc: Service = serde_json::from_value(serde_json::json!({
        "metadata": {"name": name},
        "spec": {"selector": {"app": name}, "ports": [{"port": 80}]}
    }))
    .unwrap();
    api.create(&PostParams::default(), &svc).await.unwrap()
}

#[tokio::test]
async fn a_recorder_event_is_listed_by_kubectl_get_events_and_describe() {
    let ns = namespace("ev").await;
    let svc = service(&ns, "web").await;
    let recorder = Recorder::new(
        client(),
        Reporter {
            controller: "fedmesh-test".into(),
            instance: Some("replica-1".into()),
        },
    );
    let reference = ObjectReference {
        api_version: Some("v1".into()),
        kind: Some("Service".into()),
        namespace: Some(ns.clone()),
        name: Some("web".into()),
        uid: svc.metadata.uid.clone(),
        ..ObjectReference::default()
    };
    let event = Event {
        type_: EventType::Warning,
        reason: "InvalidSelector".into(),
        note: Some("the federation selector does not parse".into()),
        action: "Federate".into(),
        secondary: None,
    };
    recorder.publish(&event, &reference).await.unwrap();

    // Through core/v1, with kube-apiserver's conversion of every field.
    let core: Api<CoreEvent> = Api::namespaced(client(), &ns);
    let listed = core.list(&ListParams::default()).await.unwrap();
    assert_eq!(listed.items.len(), 1);
    let e = &listed.items[0];
    assert_eq!(e.involved_object.name.as_deref(), Some("web"));
    assert_eq!(e.involved_object.uid, svc.metadata.uid);
    assert_eq!(
        e.message.as_deref(),
        Some("the federation selector does not parse")
    );
    assert_eq!(e.reason.as_deref(), Some("InvalidSelector"));
    assert_eq!(e.type_.as_deref(), Some("Warning"));
    assert_eq!(e.reporting_component.as_deref(), Some("fedmesh-test"));
    assert_eq!(e.reporting_instance.as_deref(), Some("replica-1"));
    assert_eq!(e.action.as_deref(), Some("Federate"));
    assert!(e.event_time.is_some());
    let name = e.metadata.name.clone().unwrap();
    let fetched = core.get(&name).await.unwrap();
    assert_eq!(fetched.message, e.message);

    // The same Event again, now a series: the recorder patches it through
    // events.k8s.io/v1, and core/v1 readers see the series.
    recorder.publish(&event, &reference).await.unwrap();
    let again = core.get(&name).await.unwrap();
    assert_eq!(again.series.and_then(|s| s.count), Some(2));

    let out = kubectl(&["-n", &ns, "get", "events"], None);
    assert!(out.ok, "{}", out.stderr);
    let row = out
        .stdout
        .lines()
        .find(|l| l.contains("InvalidSelector"))
        .unwrap_or_else(|| panic!("no event row in:\n{}", out.stdout));
    assert!(row.contains("Warning"), "{row}");
    assert!(row.contains("service/web"), "{row}");
    assert!(
        row.contains("the federation selector does not parse"),
        "{row}"
    );

    let out = kubectl(&["-n", &ns, "describe", "service", "web"], None);
    assert!(out.ok, "{}", out.stderr);
    let events = out
        .stdout
        .split("Events:")
        .nth(1)
        .unwrap_or_else(|| panic!("no Events section:\n{}", out.stdout));
    assert!(events.contains("InvalidSelector"), "{}", out.stdout);
    assert!(events.contains("fedmesh-test"), "{}", out.stdout);
    assert!(
        events.contains("the federation selector does not parse"),
        "{}",
        out.stdout
    );
}

#[tokio::test]
async fn a_core_event_is_read_watched_and_deleted_through_events_k8s_io() {
    let ns = namespace("ev2").await;
    let new_api: Api<NewEvent> = Api::namespaced(client(), &ns);
    let mut watch = Box::pin(
        new_api
            .watch(&WatchParams::default().timeout(10), "0")
            .await
            .unwrap(),
    );
    let manifest = format!(
        "apiVersion: v1\nkind: Event\nmetadata:\n  name: old-style\n  namespace: {ns}\n\
         involvedObject: {{kind: Pod, name: p, namespace: {ns}}}\nreason: Pulled\n\
         message: image pulled\ntype: Normal\nsource: {{component: kubelet, host: node-1}}\n\
         count: 4\nfirstTimestamp: \"2026-01-01T00:00:00Z\"\nlastTimestamp: \"2026-01-01T00:01:00Z\"\n"
    );
    let out = kubectl(&["create", "-f", "-"], Some(&manifest));
    assert!(out.ok, "{}", out.stderr);

    let e = new_api.get("old-style").await.unwrap();
    assert_eq!(e.regarding.as_ref().unwrap().name.as_deref(), Some("p"));
    assert_eq!(e.note.as_deref(), Some("image pulled"));
    assert_eq!(e.deprecated_count, Some(4));
    let source = e.deprecated_source.unwrap();
    assert_eq!(source.component.as_deref(), Some("kubelet"));
    assert_eq!(source.host.as_deref(), Some("node-1"));
    assert!(e.deprecated_first_timestamp.is_some());
    assert!(e.deprecated_last_timestamp.is_some());

    // A field selector of the new API applies to the converted object.
    let by_regarding = new_api
        .list(&ListParams::default().fields("regarding.name=p"))
        .await
        .unwrap();
    assert_eq!(by_regarding.items.len(), 1);

    let added = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(ev) = watch.next().await {
            if let Ok(WatchEvent::Added(e)) = ev {
                return Some(e);
            }
        }
        None
    })
    .await
    .ok()
    .flatten()
    .expect("the new API's watch sees the core Event");
    assert_eq!(added.note.as_deref(), Some("image pulled"));

    // Deleted through the new API, gone from the old one.
    let out = kubectl(
        &["-n", &ns, "delete", "events.v1.events.k8s.io", "old-style"],
        None,
    );
    assert!(out.ok, "{}", out.stderr);
    let core: Api<CoreEvent> = Api::namespaced(client(), &ns);
    assert!(core.get_opt("old-style").await.unwrap().is_none());
}

/// `kubectl get events` and `kubectl get events.events.k8s.io` each list
/// the Events written through both APIs, as a user typing kubectl sees them.
#[tokio::test]
async fn kubectl_get_events_lists_events_from_both_apis() {
    let ns = namespace("ev3").await;
    let manifest = format!(
        "apiVersion: v1\nkind: Event\nmetadata: {{name: through-core, namespace: {ns}}}\n\
         involvedObject: {{kind: Pod, name: web, namespace: {ns}}}\nreason: CoreReason\n\
         message: written through core/v1\ntype: Normal\nsource: {{component: kubelet}}\n\
         firstTimestamp: \"2026-01-01T00:00:00Z\"\nlastTimestamp: \"2026-01-01T00:00:00Z\"\n\
         ---\n\
         apiVersion: events.k8s.io/v1\nkind: Event\nmetadata: {{name: through-new, namespace: {ns}}}\n\
         regarding: {{kind: Pod, name: web, namespace: {ns}}}\nreason: NewReason\n\
         note: written through events.k8s.io/v1\ntype: Warning\naction: Check\n\
         reportingController: fedmesh.io/test\nreportingInstance: test-1\n\
         eventTime: \"2026-01-01T00:00:00.000000Z\"\n"
    );
    let out = kubectl(&["create", "-f", "-"], Some(&manifest));
    assert!(out.ok, "{}", out.stderr);
    for resource in ["events", "events.v1.events.k8s.io"] {
        let out = kubectl(&["-n", &ns, "get", resource], None);
        assert!(out.ok, "get {resource}: {}", out.stderr);
        for want in [
            "CoreReason",
            "written through core/v1",
            "NewReason",
            "written through events.k8s.io/v1",
        ] {
            assert!(
                out.stdout.contains(want),
                "get {resource} lacks {want}:\n{}",
                out.stdout
            );
        }
    }
    let out = kubectl(
        &[
            "-n",
            &ns,
            "get",
            "events",
            "--field-selector",
            "type=Warning",
            "-o",
            "name",
        ],
        None,
    );
    assert!(out.ok, "{}", out.stderr);
    assert_eq!(out.stdout.trim(), "event/through-new");
}
