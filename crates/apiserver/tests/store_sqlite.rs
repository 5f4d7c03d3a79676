//! What only a SQLite store can do: survive a restart.

use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use fedmesh_apiserver::store::{Error, Event, ListRequest, Store, StoreOptions, Watch};

const WAIT: Duration = Duration::from_secs(10);

fn open(path: &Path) -> Store {
    Store::open_sqlite(path, StoreOptions::default()).unwrap()
}

async fn next_event(watch: &mut Watch) -> Event {
    tokio::time::timeout(WAIT, watch.next())
        .await
        .expect("no event within the timeout")
        .expect("watch ended")
        .expect("watch failed")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revisions_continue_after_reopen_even_when_the_last_rows_were_compacted() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    let store = open(&path);
    store.create("/a", Bytes::from_static(b"1")).await.unwrap();
    store
        .update("/a", Bytes::from_static(b"2"), 1)
        .await
        .unwrap();
    store.delete("/a", None).await.unwrap();
    // Compaction removes every row of `/a`, including the newest (revision 3).
    store.compact(3).await.unwrap();
    drop(store);

    let store = open(&path);
    assert_eq!(store.current_revision(), 3);
    assert_eq!(store.compacted_revision(), 3);
    assert_eq!(store.get("/a").await.unwrap(), None);
    let again = store
        .create("/a", Bytes::from_static(b"new"))
        .await
        .unwrap();
    assert_eq!((again.create_revision, again.mod_revision), (4, 4));
    assert!(matches!(
        store.watch("/", 2),
        Err(Error::Compacted {
            requested: 2,
            compacted: 3
        })
    ));
    assert!(matches!(
        store.list(ListRequest::prefix("/").at(2)).await,
        Err(Error::Compacted { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_resumes_from_its_revision_after_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    let store = open(&path);
    for i in 1..=10 {
        store
            .create(&format!("/r/{i:02}"), Bytes::from(format!("v{i}")))
            .await
            .unwrap();
    }
    let mut before = store.watch("/r/", 10).unwrap();
    drop(store);
    // The store shut down: its watches end rather than hang.
    assert!(
        tokio::time::timeout(WAIT, before.next())
            .await
            .unwrap()
            .is_none()
    );

    let store = open(&path);
    let mut resumed = store.watch("/r/", 5).unwrap();
    for i in 6..=10 {
        let event = next_event(&mut resumed).await;
        assert_eq!(event.revision(), i);
        assert_eq!(event.kv().value, Bytes::from(format!("v{i}")));
    }
    store
        .create("/r/11", Bytes::from_static(b"v11"))
        .await
        .unwrap();
    assert_eq!(next_event(&mut resumed).await.revision(), 11);
    let listed = store.list(ListRequest::prefix("/r/")).await.unwrap();
    assert_eq!(listed.items.len(), 11);
    assert_eq!(listed.revision, 11);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_store_on_the_same_file_is_refused_while_the_first_lives() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    let first = open(&path);
    first.create("/x", Bytes::from_static(b"x")).await.unwrap();
    let opened = tokio::task::spawn_blocking({
        let path = path.clone();
        move || {
            let options = StoreOptions {
                lock_wait: Duration::from_millis(200),
                ..StoreOptions::default()
            };
            Store::open_sqlite(&path, options)
        }
    })
    .await
    .unwrap();
    assert!(matches!(opened, Err(Error::Locked { .. })), "{opened:?}");
    drop(first);
    let second = open(&path);
    assert_eq!(second.current_revision(), 1);
}

#[test]
fn a_file_that_is_not_a_database_fails_to_open_with_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    std::fs::write(&path, vec![0x5a; 8192]).unwrap();
    match Store::open_sqlite(&path, StoreOptions::default()) {
        Err(Error::Open { step, .. }) => assert!(!step.is_empty()),
        other => panic!("expected an open error, got {other:?}"),
    }
}
