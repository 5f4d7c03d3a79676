//! Watches: kube-runtime's watcher and reflector, bookmarks, watch lists, 410s.

use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, PostParams, WatchEvent, WatchParams};
use kube::runtime::{WatchStreamExt, reflector, watcher};
use serde_json::json;

use crate::common::{client, eventually, namespace};

fn cm(name: &str, v: &str) -> ConfigMap {
    serde_json::from_value(
        json!({"metadata": {"name": name, "labels": {"w": "1"}}, "data": {"v": v}}),
    )
    .unwrap()
}

#[tokio::test]
async fn reflector_follows_creates_updates_and_deletes() {
    let ns = namespace("refl").await;
    let api: Api<ConfigMap> = Api::namespaced(client(), &ns);
    api.create(&PostParams::default(), &cm("before", "0"))
        .await
        .unwrap();
    let (reader, writer) = reflector::store();
    let stream = reflector(
        writer,
        watcher(api.clone(), watcher::Config::default().labels("w=1")),
    )
    .applied_objects()
    .boxed();
    let task = tokio::spawn(stream.try_for_each(|_| async { Ok(()) }));
    api.create(&PostParams::default(), &cm("after", "1"))
        .await
        .unwrap();
    let patch = json!({"data": {"v": "2"}});
    api.patch(
        "after",
        &Default::default(),
        &kube::api::Patch::Merge(&patch),
    )
    .await
    .unwrap();
    api.delete("before", &Default::default()).await.unwrap();
    let seen = eventually(Duration::from_secs(10), || {
        let reader = reader.clone();
        async move {
            let names: Vec<(String, String)> = reader
                .state()
                .iter()
                .map(|c| {
                    (
                        c.metadata.name.clone().unwrap(),
                        c.data.as_ref().unwrap()["v"].clone(),
                    )
                })
                .collect();
            (names == [("after".to_owned(), "2".to_owned())]).then_some(names)
        }
    })
    .await;
    task.abort();
    assert!(
        seen.is_some(),
        "reflector never converged: {:?}",
        reader.state()
    );
}

#[tokio::test]
async fn watch_from_a_resource_version_sees_later_events_and_bookmarks() {
    let ns = namespace("wrv").await;
    let api: Api<ConfigMap> = Api::namespaced(client(), &ns);
    let first = api
        .create(&PostParams::default(), &cm("a", "0"))
        .await
        .unwrap();
    let rv = first.metadata.resource_version.unwrap();
    let mut stream = api
        .watch(
            &WatchParams {
                bookmarks: true,
                ..WatchParams::default()
            }
            .timeout(10),
            &rv,
        )
        .await
        .unwrap()
        .boxed();
    api.create(&PostParams::default(), &cm("b", "0"))
        .await
        .unwrap();
    let mut added = None;
    let mut bookmark = None;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while (added.is_none() || bookmark.is_none()) && tokio::time::Instant::now() < deadline {
        match tokio::time::timeout(Duration::from_secs(5), stream.next()).await {
            Ok(Some(Ok(WatchEvent::Added(o)))) => added = o.metadata.name,
            Ok(Some(Ok(WatchEvent::Bookmark(b)))) => bookmark = Some(b.metadata.resource_version),
            Ok(Some(Ok(other))) => panic!("unexpected event {other:?}"),
            Ok(Some(Err(e))) => panic!("{e}"),
            Ok(None) | Err(_) => break,
        }
    }
    assert_eq!(added.as_deref(), Some("b"), "only events after rv");
    let bookmark: u64 = bookmark
        .expect("a bookmark within the interval")
        .parse()
        .unwrap();
    assert!(bookmark > rv.parse::<u64>().unwrap());
}

#[tokio::test]
async fn watch_list_sends_initial_events_then_the_end_bookmark() {
    let ns = namespace("wl").await;
    let api: Api<ConfigMap> = Api::namespaced(client(), &ns);
    for n in ["x", "y"] {
        api.create(&PostParams::default(), &cm(n, "0"))
            .await
            .unwrap();
    }
    let mut stream = api
        .watch(&WatchParams::default().initial_events().timeout(5), "")
        .await
        .unwrap()
        .boxed();
    let mut names = Vec::new();
    loop {
        let ev = tokio::time::timeout(Duration::from_secs(5), stream.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        match ev {
            WatchEvent::Added(o) => names.push(o.metadata.name.unwrap()),
            WatchEvent::Bookmark(b) => {
                assert_eq!(
                    b.metadata
                        .annotations
                        .get("k8s.io/initial-events-end")
                        .map(String::as_str),
                    Some("true")
                );
                break;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(names, ["x", "y"]);
}
