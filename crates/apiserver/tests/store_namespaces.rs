//! Creates in a namespace check its phase from memory: the phase must follow
//! every write of the namespace and survive a restart on the same data.

use std::path::Path;

use fedmesh_apiserver::objects::{
    ApiError, DeleteOptions, NamespacePhase, ObjectStore, Objects, WriteOptions,
};
use fedmesh_apiserver::registry::Registry;
use fedmesh_apiserver::store::StoreOptions;
use serde_json::json;

fn open(path: &Path) -> Objects {
    let store = ObjectStore::open_sqlite(path, StoreOptions::default()).unwrap();
    Objects::new(store, Registry::with_builtins())
}

async fn create_namespace(objects: &Objects, name: &str) {
    let ns = objects.registry().resolve("", "v1", "namespaces").unwrap();
    let body = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}});
    objects
        .create(&ns, None, body, &WriteOptions::default())
        .await
        .unwrap();
}

async fn create_config_map(objects: &Objects, ns: &str, name: &str) -> Result<(), ApiError> {
    let cm = objects.registry().resolve("", "v1", "configmaps").unwrap();
    let body = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}});
    objects
        .create(&cm, Some(ns), body, &WriteOptions::default())
        .await
        .map(drop)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creates_follow_the_namespace_phase_across_writes_and_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    let objects = open(&path);
    let namespaces = objects.registry().resolve("", "v1", "namespaces").unwrap();

    let missing = create_config_map(&objects, "team", "a").await.unwrap_err();
    assert!(matches!(missing, ApiError::NotFound(_)), "{missing:?}");
    create_namespace(&objects, "team").await;
    assert_eq!(
        objects.store().namespace("team").await.unwrap(),
        Some(NamespacePhase::Active)
    );
    create_config_map(&objects, "team", "a").await.unwrap();

    // The namespace's `kubernetes` finalizer holds it in Terminating.
    objects
        .delete(&namespaces, None, "team", &DeleteOptions::default())
        .await
        .unwrap();
    let going = create_config_map(&objects, "team", "b").await.unwrap_err();
    assert!(matches!(going, ApiError::Forbidden(_)), "{going:?}");

    create_namespace(&objects, "other").await;
    drop(objects);

    // A restart: nothing in memory, the phases come from the store.
    let objects = open(&path);
    let going = create_config_map(&objects, "team", "c").await.unwrap_err();
    assert!(matches!(going, ApiError::Forbidden(_)), "{going:?}");
    create_config_map(&objects, "other", "a").await.unwrap();

    // Finishing the deletion (what the namespace controller does once the
    // namespace is empty) makes creates in it fail as not found.
    let mut finalized = objects.get(&namespaces, None, "team").await.unwrap();
    finalized["spec"]["finalizers"] = json!([]);
    objects
        .update(
            &namespaces,
            None,
            "team",
            finalized,
            &WriteOptions::default(),
            Some(fedmesh_apiserver::registry::Subresource::Finalize),
        )
        .await
        .unwrap();
    assert_eq!(objects.store().namespace("team").await.unwrap(), None);
    let gone = create_config_map(&objects, "team", "d").await.unwrap_err();
    assert!(matches!(gone, ApiError::NotFound(_)), "{gone:?}");

    // Created again, it takes objects again.
    create_namespace(&objects, "team").await;
    create_config_map(&objects, "team", "e").await.unwrap();
}
