//! The keyed writer against a fake API server, with paused time.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};

use k8s_openapi::api::core::v1::{ConfigMap, EndpointAddress, EndpointSubset, Endpoints};
use tokio::sync::mpsc;

use super::*;

/// A fake API server: objects with numeric resourceVersions, a log of calls,
/// failures to hand out, and a watch of what it stores.
#[derive(Clone)]
struct Fake(Arc<Mutex<FakeState>>);

struct FakeState {
    objects: BTreeMap<ObjectKey, ConfigMap>,
    version: u64,
    calls: Vec<String>,
    failures: VecDeque<u16>,
    watch: mpsc::UnboundedSender<Signal<ConfigMap>>,
}

fn api_error(code: u16) -> kube::Error {
    kube::Error::Api(Box::new(kube::core::Status {
        code,
        message: format!("fake {code}"),
        ..Default::default()
    }))
}

impl Fake {
    fn new() -> (Self, mpsc::UnboundedReceiver<Signal<ConfigMap>>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let fake = Fake(Arc::new(Mutex::new(FakeState {
            objects: BTreeMap::new(),
            version: 0,
            calls: Vec::new(),
            failures: VecDeque::new(),
            watch: tx,
        })));
        (fake, rx)
    }

    fn fail_next(&self, codes: &[u16]) {
        self.0.lock().unwrap().failures.extend(codes);
    }

    fn calls(&self) -> Vec<String> {
        self.0.lock().unwrap().calls.clone()
    }

    fn data(&self, name: &str) -> Option<String> {
        let state = self.0.lock().unwrap();
        let object = state.objects.get(&ObjectKey::namespaced("ns", name))?;
        Some(object.data.as_ref()?.get("v")?.clone())
    }

    /// Stores an object as if someone else wrote it (no call logged).
    fn put_foreign(&self, object: ConfigMap) {
        let mut state = self.0.lock().unwrap();
        state.version += 1;
        let mut object = object;
        object.metadata.resource_version = Some(state.version.to_string());
        let key = ObjectKey::of(&object).unwrap();
        if object.labels().contains_key("managed") {
            let _ = state
                .watch
                .send(Signal::Update(Update::Apply(object.clone())));
        }
        state.objects.insert(key, object);
    }

    fn call(&self, verb: &str, key: &ObjectKey) -> Result<(), kube::Error> {
        let mut state = self.0.lock().unwrap();
        state.calls.push(format!("{verb} {key}"));
        match state.failures.pop_front() {
            Some(code) => Err(api_error(code)),
            None => Ok(()),
        }
    }

    fn store(&self, mut object: ConfigMap) -> ConfigMap {
        let mut state = self.0.lock().unwrap();
        state.version += 1;
        object.metadata.resource_version = Some(state.version.to_string());
        state
            .objects
            .insert(ObjectKey::of(&object).unwrap(), object.clone());
        let _ = state
            .watch
            .send(Signal::Update(Update::Apply(object.clone())));
        object
    }
}

impl Target<ConfigMap> for Fake {
    fn create(&self, object: ConfigMap) -> BoxFuture<'static, kube::Result<ConfigMap>> {
        let fake = self.clone();
        Box::pin(async move {
            let key = ObjectKey::of(&object).unwrap();
            fake.call("create", &key)?;
            if fake.0.lock().unwrap().objects.contains_key(&key) {
                return Err(api_error(409));
            }
            Ok(fake.store(object))
        })
    }

    fn replace(&self, object: ConfigMap) -> BoxFuture<'static, kube::Result<ConfigMap>> {
        let fake = self.clone();
        Box::pin(async move {
            let key = ObjectKey::of(&object).unwrap();
            fake.call("replace", &key)?;
            let current = fake.0.lock().unwrap().objects.get(&key).cloned();
            match current {
                None => Err(api_error(404)),
                Some(c) if c.metadata.resource_version != object.metadata.resource_version => {
                    Err(api_error(409))
                }
                Some(_) => Ok(fake.store(object)),
            }
        })
    }

    fn delete(&self, key: ObjectKey) -> BoxFuture<'static, kube::Result<()>> {
        let fake = self.clone();
        Box::pin(async move {
            fake.call("delete", &key)?;
            let mut state = fake.0.lock().unwrap();
            if let Some(object) = state.objects.remove(&key) {
                let _ = state.watch.send(Signal::Update(Update::Delete(object)));
            }
            Ok(())
        })
    }

    fn get(&self, key: ObjectKey) -> BoxFuture<'static, kube::Result<Option<ConfigMap>>> {
        let fake = self.clone();
        Box::pin(async move {
            fake.call("get", &key)?;
            Ok(fake.0.lock().unwrap().objects.get(&key).cloned())
        })
    }
}

fn cm(name: &str, value: &str) -> ConfigMap {
    let mut cm = ConfigMap::default();
    cm.metadata.name = Some(name.into());
    cm.metadata.namespace = Some("ns".into());
    cm.metadata.labels = Some([("managed".to_string(), "yes".to_string())].into());
    cm.data = Some([("v".to_string(), value.to_string())].into());
    cm
}

fn covers(desired: &ConfigMap, live: &ConfigMap) -> bool {
    covers_owned(desired, live, &["data"])
}

fn config() -> WriterConfig {
    WriterConfig {
        kind: "ConfigMap",
        concurrency: 4,
        backoff_base: Duration::from_millis(100),
        backoff_max: Duration::from_secs(2),
        leave_foreign: None,
    }
}

struct Rig {
    fake: Fake,
    handle: WriterHandle<ConfigMap>,
    claim: watch::Sender<Option<Instant>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Rig {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A writer over a fake server, listed, leading for an hour.
fn rig(existing: Vec<ConfigMap>) -> Rig {
    let (fake, watch_rx) = Fake::new();
    for object in existing {
        fake.put_foreign(object);
    }
    let listing: Vec<ConfigMap> = fake.0.lock().unwrap().objects.values().cloned().collect();
    // Drain what put_foreign sent; the listing stands for it.
    let mut watch_rx = watch_rx;
    while watch_rx.try_recv().is_ok() {}
    let (claim_tx, claim_rx) = watch::channel(Some(Instant::now() + Duration::from_secs(3600)));
    let (writer, _health) = Writer::new(
        config(),
        Arc::new(fake.clone()),
        Claim::new(claim_rx),
        Metrics::new(),
        covers,
    );
    let (handle, inputs) = WriterHandle::channel();
    let live = futures::stream::iter([Signal::Update(Update::Reset(listing))]).chain(
        futures::stream::unfold(watch_rx, |mut rx| async move {
            rx.recv().await.map(|signal| (signal, rx))
        }),
    );
    let task = tokio::spawn(writer.run(live, inputs));
    Rig {
        fake,
        handle,
        claim: claim_tx,
        task,
    }
}

async fn settle() {
    for _ in 0..50 {
        tokio::task::yield_now().await;
    }
}

fn want(handle: &WriterHandle<ConfigMap>, objects: &[(&str, Option<&str>)]) {
    handle.want(
        objects
            .iter()
            .map(|(name, value)| {
                (
                    ObjectKey::namespaced("ns", name),
                    value.map(|v| cm(name, v)),
                )
            })
            .collect(),
    );
}

#[tokio::test(start_paused = true)]
async fn nothing_is_written_before_the_view_is_synced() {
    let rig = rig(vec![cm("stale", "old")]);
    want(&rig.handle, &[("a", Some("1"))]);
    settle().await;
    assert!(rig.fake.calls().is_empty(), "{:?}", rig.fake.calls());
    rig.handle.synced();
    settle().await;
    let mut calls = rig.fake.calls();
    calls.sort();
    assert_eq!(calls, ["create ns/a", "delete ns/stale"]);
}

#[tokio::test(start_paused = true)]
async fn one_call_per_changed_object_and_none_for_unchanged_ones() {
    let rig = rig(vec![cm("same", "x")]);
    let names: Vec<String> = (0..50).map(|i| format!("o{i}")).collect();
    let mut wanted: Vec<(&str, Option<&str>)> =
        names.iter().map(|n| (n.as_str(), Some("1"))).collect();
    wanted.push(("same", Some("x")));
    want(&rig.handle, &wanted);
    // The same keys again before the writer got to them: deduplicated.
    want(&rig.handle, &wanted);
    rig.handle.synced();
    settle().await;
    assert_eq!(rig.fake.calls().len(), 50, "{:?}", rig.fake.calls());
    // A change to one object is one call, even after its watch events arrive.
    want(&rig.handle, &[("o7", Some("2"))]);
    settle().await;
    assert_eq!(rig.fake.calls().len(), 51);
    assert_eq!(rig.fake.calls()[50], "replace ns/o7");
    assert_eq!(rig.fake.data("o7").as_deref(), Some("2"));
}

#[tokio::test(start_paused = true)]
async fn failed_writes_are_retried_with_backoff_until_written() {
    let rig = rig(vec![]);
    rig.fake.fail_next(&[500, 500, 503]);
    want(&rig.handle, &[("a", Some("1"))]);
    rig.handle.synced();
    settle().await;
    assert_eq!(rig.fake.calls().len(), 1);
    assert_eq!(rig.fake.data("a"), None);
    // 100 ms, 200 ms, 400 ms of backoff.
    for (wait, calls) in [(100, 2), (200, 3), (400, 4)] {
        tokio::time::advance(Duration::from_millis(wait)).await;
        settle().await;
        assert_eq!(rig.fake.calls().len(), calls, "{:?}", rig.fake.calls());
    }
    assert_eq!(rig.fake.data("a").as_deref(), Some("1"));
    // Nothing more once written.
    tokio::time::advance(Duration::from_secs(60)).await;
    settle().await;
    assert_eq!(rig.fake.calls().len(), 4);
}

#[tokio::test(start_paused = true)]
async fn a_retry_stops_when_the_object_is_no_longer_wanted() {
    let rig = rig(vec![]);
    rig.fake.fail_next(&[500]);
    want(&rig.handle, &[("a", Some("1"))]);
    rig.handle.synced();
    settle().await;
    want(&rig.handle, &[("a", None)]);
    tokio::time::advance(Duration::from_secs(10)).await;
    settle().await;
    assert_eq!(rig.fake.calls(), ["create ns/a"]);
}

#[tokio::test(start_paused = true)]
async fn an_object_someone_else_made_is_taken_over_without_a_storm() {
    let rig = rig(vec![]);
    let mut foreign = cm("a", "theirs");
    foreign.metadata.labels = None;
    rig.fake.put_foreign(foreign);
    want(&rig.handle, &[("a", Some("ours"))]);
    rig.handle.synced();
    settle().await;
    assert_eq!(
        rig.fake.calls(),
        ["create ns/a", "get ns/a", "replace ns/a"]
    );
    assert_eq!(rig.fake.data("a").as_deref(), Some("ours"));
}

#[tokio::test(start_paused = true)]
async fn an_edit_by_someone_else_is_overwritten() {
    let rig = rig(vec![]);
    want(&rig.handle, &[("a", Some("ours"))]);
    rig.handle.synced();
    settle().await;
    rig.fake.put_foreign(cm("a", "edited"));
    settle().await;
    assert_eq!(rig.fake.data("a").as_deref(), Some("ours"));
    assert_eq!(rig.fake.calls(), ["create ns/a", "replace ns/a"]);
}

#[tokio::test(start_paused = true)]
async fn only_a_current_claim_writes() {
    let rig = rig(vec![]);
    rig.claim.send_replace(None);
    want(&rig.handle, &[("a", Some("1"))]);
    rig.handle.synced();
    settle().await;
    assert!(rig.fake.calls().is_empty());
    // Claimed again: the parked key is written.
    rig.claim
        .send_replace(Some(Instant::now() + Duration::from_secs(10)));
    settle().await;
    assert_eq!(rig.fake.calls(), ["create ns/a"]);
    // The claim runs out by itself (no renewal): the next change waits.
    tokio::time::advance(Duration::from_secs(11)).await;
    want(&rig.handle, &[("a", Some("2"))]);
    settle().await;
    assert_eq!(rig.fake.calls(), ["create ns/a"]);
    rig.claim
        .send_replace(Some(Instant::now() + Duration::from_secs(10)));
    settle().await;
    assert_eq!(rig.fake.calls(), ["create ns/a", "replace ns/a"]);
}

#[test]
fn an_emptied_owned_list_is_a_change() {
    let address = |ip: &str| EndpointAddress {
        ip: ip.into(),
        ..EndpointAddress::default()
    };
    let with = Endpoints {
        subsets: Some(vec![EndpointSubset {
            addresses: Some(vec![address("10.0.0.1")]),
            ..EndpointSubset::default()
        }]),
        ..Endpoints::default()
    };
    let without = Endpoints::default();
    assert!(
        !covers_owned(&without, &with, &["subsets"]),
        "stale address kept"
    );
    assert!(covers_owned(&without, &without, &["subsets"]));
    assert!(covers_owned(&with, &with, &["subsets"]));
}

#[tokio::test(start_paused = true)]
async fn a_released_key_is_left_alone_even_once_unwanted() {
    let rig = rig(vec![]);
    want(
        &rig.handle,
        &[("handed-over", Some("1")), ("kept", Some("1"))],
    );
    rig.handle.synced();
    settle().await;
    assert_eq!(rig.fake.calls().len(), 2);
    rig.handle
        .release(vec![ObjectKey::namespaced("ns", "handed-over")]);
    // Unwanted after release: nothing to delete, as the writer no longer
    // manages it; the key still managed is deleted.
    want(&rig.handle, &[("handed-over", None), ("kept", None)]);
    settle().await;
    assert_eq!(rig.fake.calls()[2..], ["delete ns/kept"]);
    assert_eq!(rig.fake.data("handed-over").as_deref(), Some("1"));
}
