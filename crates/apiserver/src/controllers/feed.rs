//! Feeding a controller from the store, as an informer does: list a prefix
//! at a revision, then watch it from that revision; when the watch ends
//! (overflow, compaction, an error) list again after a growing pause. The
//! controller sees each list item and each change once, as raw key-values,
//! so that it parses only what it keeps.

use std::time::Duration;

use tokio::sync::watch;

use super::queue::Backoff;
use super::reads;
use crate::store::{Event, KeyValue, Revision, Store};

/// Pauses between failed lists or watches.
const RETRY: Backoff = Backoff {
    base: Duration::from_millis(100),
    cap: Duration::from_secs(5),
};
/// A watch that ran this long counts as healthy: the next failure starts
/// the backoff over.
const HEALTHY: Duration = Duration::from_secs(30);

/// What a controller does with what one watched prefix delivers. `source`
/// tells its prefixes apart.
pub(super) trait Sink<S>: Send + Sync {
    /// A (re)list of the source starts.
    fn begin_list(&self, source: S);
    /// One object of the list.
    fn listed(&self, source: S, kv: &KeyValue);
    /// The list is complete: whatever was not listed is gone.
    fn end_list(&self, source: S);
    /// A change after the list.
    fn changed(&self, source: S, event: &Event);
}

/// Why a list or watch stopped.
#[derive(Debug, thiserror::Error)]
enum FeedError {
    #[error("listing {prefix} failed: {source}")]
    List {
        prefix: &'static str,
        source: crate::store::Error,
    },
    #[error("watching {prefix} failed: {source}")]
    Watch {
        prefix: &'static str,
        source: crate::store::Error,
    },
    #[error("the watch of {prefix} ended")]
    Ended { prefix: &'static str },
}

async fn list<S: Copy>(
    store: &Store,
    prefix: &'static str,
    source: S,
    sink: &dyn Sink<S>,
) -> Result<Revision, FeedError> {
    sink.begin_list(source);
    let revision = reads::pages(store, prefix, |kv| sink.listed(source, kv))
        .await
        .map_err(|source| FeedError::List { prefix, source })?;
    sink.end_list(source);
    Ok(revision)
}

/// Lists and watches, delivering to `sink`, until the watch ends.
async fn list_and_watch<S: Copy>(
    store: &Store,
    prefix: &'static str,
    source: S,
    sink: &dyn Sink<S>,
) -> FeedError {
    let revision = match list(store, prefix, source, sink).await {
        Ok(r) => r,
        Err(e) => return e,
    };
    let mut changes = match store.watch(prefix, revision) {
        Ok(w) => w,
        Err(source) => return FeedError::Watch { prefix, source },
    };
    loop {
        match changes.next().await {
            Some(Ok(event)) => sink.changed(source, &event),
            Some(Err(source)) => return FeedError::Watch { prefix, source },
            None => return FeedError::Ended { prefix },
        }
    }
}

/// Feeds `sink` from `prefix` until `shutdown` turns true.
pub(super) async fn follow<S: Copy>(
    store: Store,
    prefix: &'static str,
    source: S,
    sink: &dyn Sink<S>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut failures = 0u32;
    loop {
        let started = tokio::time::Instant::now();
        let error = tokio::select! {
            () = crate::server::stopped(&mut shutdown) => return,
            e = list_and_watch(&store, prefix, source, sink) => e,
        };
        if started.elapsed() >= HEALTHY {
            failures = 0;
        }
        let pause = RETRY.delay(failures);
        failures = failures.saturating_add(1);
        tracing::debug!(%error, ?pause, "controller feed restarts with a list");
        tokio::select! {
            () = crate::server::stopped(&mut shutdown) => return,
            () = tokio::time::sleep(pause) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use bytes::Bytes;

    use super::*;
    use crate::controllers::reads::PAGE;
    use crate::store::StoreOptions;

    /// Records what it is fed; while `hold` is set it blocks in `changed`,
    /// as a controller too slow for the writes would.
    #[derive(Default)]
    struct Record(Mutex<Vec<String>>, std::sync::atomic::AtomicBool);

    impl Sink<()> for Record {
        fn begin_list(&self, (): ()) {
            self.0.lock().unwrap().push("begin".into());
        }
        fn listed(&self, (): (), kv: &KeyValue) {
            self.0.lock().unwrap().push(format!("list {}", kv.key));
        }
        fn end_list(&self, (): ()) {
            self.0.lock().unwrap().push("end".into());
        }
        fn changed(&self, (): (), event: &Event) {
            for _ in 0..2000 {
                if !self.1.load(std::sync::atomic::Ordering::SeqCst) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            let what = match event {
                Event::Put { prev: None, .. } => "create",
                Event::Put { .. } => "update",
                Event::Delete { .. } => "delete",
            };
            self.0
                .lock()
                .unwrap()
                .push(format!("{what} {}", event.key()));
        }
    }

    async fn until(record: &Record, done: impl Fn(&[String]) -> bool) -> Vec<String> {
        for _ in 0..1000 {
            let got = record.0.lock().unwrap().clone();
            if done(&got) {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        record.0.lock().unwrap().clone()
    }

    #[tokio::test]
    async fn lists_in_pages_then_follows_changes() {
        let store = Store::in_memory(StoreOptions {
            watch_buffer: 4,
            ..StoreOptions::default()
        })
        .unwrap();
        for i in 0..(PAGE + 2) {
            store
                .create(&format!("/p/{i:05}"), Bytes::from_static(b"{}"))
                .await
                .unwrap();
        }
        store
            .create("/other/x", Bytes::from_static(b"{}"))
            .await
            .unwrap();
        let record = std::sync::Arc::new(Record::default());
        let (tx, rx) = watch::channel(false);
        let task = {
            let (store, record) = (store.clone(), record.clone());
            tokio::spawn(async move { follow(store, "/p/", (), &*record, rx).await })
        };
        let listed = until(&record, |g| g.len() >= PAGE + 4).await;
        assert_eq!(listed.first().map(String::as_str), Some("begin"));
        assert_eq!(listed[PAGE + 3], "end");
        assert!(listed.iter().all(|l| !l.contains("/other/")));
        let kv = store.get("/p/00000").await.unwrap().unwrap();
        store
            .update(
                "/p/00000",
                Bytes::from_static(b"{\"a\":1}"),
                kv.mod_revision,
            )
            .await
            .unwrap();
        store.delete("/p/00001", None).await.unwrap();
        let got = until(&record, |g| g.len() >= PAGE + 6).await;
        assert_eq!(got[PAGE + 4..], ["update /p/00000", "delete /p/00001"]);
        tx.send(true).unwrap();
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("the feed stops on shutdown")
            .unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn relists_after_the_watch_overflows() {
        use std::sync::atomic::Ordering;
        let store = Store::in_memory(StoreOptions {
            watch_buffer: 2,
            ..StoreOptions::default()
        })
        .unwrap();
        let record = std::sync::Arc::new(Record::default());
        let (tx, rx) = watch::channel(false);
        let task = {
            let (store, record) = (store.clone(), record.clone());
            tokio::spawn(async move { follow(store, "/p/", (), &*record, rx).await })
        };
        assert_eq!(until(&record, |g| g.len() >= 2).await, ["begin", "end"]);
        record.1.store(true, Ordering::SeqCst);
        for i in 0..10 {
            store
                .create(&format!("/p/{i}"), Bytes::from_static(b"{}"))
                .await
                .unwrap();
        }
        record.1.store(false, Ordering::SeqCst);
        let got = until(&record, |g| g.iter().filter(|l| *l == "end").count() >= 2).await;
        let relisted = got.iter().skip(2).position(|l| l == "begin");
        assert!(relisted.is_some(), "no relist after an overflow: {got:?}");
        let after: Vec<&String> = got.iter().skip(3 + relisted.unwrap()).collect();
        assert_eq!(after.len(), 11, "{got:?}");
        assert_eq!(after[10], "end");
        tx.send(true).unwrap();
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("the feed stops on shutdown")
            .unwrap();
    }
}
