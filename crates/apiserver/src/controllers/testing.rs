//! What the controllers' in-process tests share: an object layer over an
//! in-memory store, and bounded waits.

use std::time::Duration;

use serde_json::{Value, json};

use crate::objects::{ObjectStore, Objects, WriteOptions};
use crate::registry::Registry;

/// An object layer over an empty in-memory store, with namespace `ns`.
pub(super) async fn objects_with_namespace(ns: &str) -> Objects {
    let objects = Objects::new(ObjectStore::in_memory().unwrap(), Registry::with_builtins());
    let r = objects.registry().resolve("", "v1", "namespaces").unwrap();
    objects
        .create(
            &r,
            None,
            json!({"metadata": {"name": ns}}),
            &WriteOptions::default(),
        )
        .await
        .unwrap();
    objects
}

/// Creates a ConfigMap in `ns`; returns it as stored.
pub(super) async fn configmap(objects: &Objects, ns: &str, body: Value) -> Value {
    let r = objects.registry().resolve("", "v1", "configmaps").unwrap();
    objects
        .create(&r, Some(ns), body, &WriteOptions::default())
        .await
        .unwrap()
        .object
}

/// Polls `check` every 10 ms for up to 10 s.
pub(super) async fn eventually(mut check: impl AsyncFnMut() -> bool) -> bool {
    for _ in 0..1000 {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    false
}
