//! The keyed writer: makes a cluster hold exactly the objects a feature
//! wants, one object (key) at a time, only while this replica's claim is
//! current.
//!
//! - A feature says what it wants per key (`Some(object)`, or `None`: must
//!   not exist) and, once its view is complete, that it is synced. Nothing is
//!   written before that, so a restarting controller never writes a partial
//!   view over a complete one.
//! - The writer watches the objects it manages (by label) and keeps the
//!   answers to its own writes, so it knows what is there without asking: an
//!   object that already holds what is wanted costs no call, and a create
//!   never races its own earlier create into 409 storms.
//! - Every key that fails is retried with backoff until it is written or no
//!   longer wanted; a key is never worked on twice at once.
//! - A managed object nobody wants any more is deleted; objects without the
//!   label are never touched, except one that already has a wanted object's
//!   name, which is taken over, unless the writer is told to leave foreign
//!   objects alone ([`WriterConfig::leave_foreign`]).

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;
use futures::{Stream, StreamExt};
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, PostParams};
use kube::{Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::claim::Claim;
use super::errors::chain;
use super::queue::Queue;
use super::watch::{Progress, Signal, Update};
use crate::metrics::Metrics;

/// Names an object of the writer's kind.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectKey {
    /// Its namespace (`None` for cluster-scoped kinds).
    pub namespace: Option<Arc<str>>,
    /// Its name.
    pub name: Arc<str>,
}

impl ObjectKey {
    /// The key of a namespaced object.
    pub fn namespaced(namespace: &str, name: &str) -> Self {
        Self {
            namespace: Some(namespace.into()),
            name: name.into(),
        }
    }

    /// The key of `object`, if it has a name.
    pub fn of<K: Resource>(object: &K) -> Option<Self> {
        Some(Self {
            namespace: object.meta().namespace.as_deref().map(Into::into),
            name: object.meta().name.as_deref()?.into(),
        })
    }
}

impl std::fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{ns}/{}", self.name),
            None => f.write_str(&self.name),
        }
    }
}

/// What a feature tells its writer.
#[derive(Debug)]
pub enum Input<K> {
    /// Objects wanted (`Some`) or unwanted (`None`), by key.
    Want(Vec<(ObjectKey, Option<K>)>),
    /// The feature's view is complete: start writing, and delete managed
    /// objects nobody wants.
    Synced,
    /// Stop managing these keys: forget what is wanted and what is known of
    /// them, without touching the objects (they were handed over, say, by
    /// taking fedmesh's label off).
    Release(Vec<ObjectKey>),
}

/// The feature's side of a writer.
#[derive(Debug)]
pub struct WriterHandle<K>(mpsc::UnboundedSender<Input<K>>);

impl<K> Clone for WriterHandle<K> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

impl<K> WriterHandle<K> {
    /// A handle and the receiving end for [`Writer::run`].
    pub fn channel() -> (Self, mpsc::UnboundedReceiver<Input<K>>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (Self(tx), rx)
    }

    /// Says what is wanted for these keys.
    pub fn want(&self, objects: Vec<(ObjectKey, Option<K>)>) {
        if !objects.is_empty() {
            let _ = self.0.send(Input::Want(objects));
        }
    }

    /// Says the view is complete.
    pub fn synced(&self) {
        let _ = self.0.send(Input::Synced);
    }

    /// Stops managing `keys`, leaving their objects as they are.
    pub fn release(&self, keys: Vec<ObjectKey>) {
        if !keys.is_empty() {
            let _ = self.0.send(Input::Release(keys));
        }
    }
}

/// Where the writer's calls go: the API server, or a fake in tests.
pub trait Target<K>: Send + Sync + 'static {
    /// Creates `object`.
    fn create(&self, object: K) -> BoxFuture<'static, kube::Result<K>>;
    /// Replaces the object (its resourceVersion is the precondition).
    fn replace(&self, object: K) -> BoxFuture<'static, kube::Result<K>>;
    /// Deletes the object with key `key`.
    fn delete(&self, key: ObjectKey) -> BoxFuture<'static, kube::Result<()>>;
    /// Reads the object with key `key`.
    fn get(&self, key: ObjectKey) -> BoxFuture<'static, kube::Result<Option<K>>>;
}

/// The API server as a writer's target.
pub struct ApiTarget<K> {
    client: kube::Client,
    field_manager: String,
    api: ApiFor<K>,
}

/// Makes the `Api` for a namespace (`None`: cluster-wide or cluster-scoped).
type ApiFor<K> = Box<dyn Fn(kube::Client, Option<&str>) -> Api<K> + Send + Sync>;

impl<K> ApiTarget<K>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>,
{
    /// Writes namespaced objects through `client`, recording `field_manager`
    /// as the writer.
    pub fn namespaced(client: kube::Client, field_manager: String) -> Self {
        Self {
            client,
            field_manager,
            api: Box::new(|client, namespace| match namespace {
                Some(ns) => Api::namespaced(client, ns),
                None => Api::all(client),
            }),
        }
    }
}

impl ApiTarget<DynamicObject> {
    /// Writes objects of `resource` (a kind only known at run time, such as
    /// a CRD's) through `client`; namespaced or cluster-scoped as the
    /// objects' keys say.
    pub fn dynamic(client: kube::Client, field_manager: String, resource: ApiResource) -> Self {
        Self {
            client,
            field_manager,
            api: Box::new(move |client, namespace| match namespace {
                Some(ns) => Api::namespaced_with(client, ns, &resource),
                None => Api::all_with(client, &resource),
            }),
        }
    }
}

impl<K> ApiTarget<K> {
    fn params(&self) -> PostParams {
        PostParams {
            field_manager: Some(self.field_manager.clone()),
            ..PostParams::default()
        }
    }
}

impl<K> Target<K> for ApiTarget<K>
where
    K: Resource + Clone + Serialize + DeserializeOwned + Debug + Send + Sync + 'static,
{
    fn create(&self, object: K) -> BoxFuture<'static, kube::Result<K>> {
        let api = (self.api)(self.client.clone(), object.meta().namespace.as_deref());
        let params = self.params();
        Box::pin(async move { api.create(&params, &object).await })
    }

    fn replace(&self, object: K) -> BoxFuture<'static, kube::Result<K>> {
        let api = (self.api)(self.client.clone(), object.meta().namespace.as_deref());
        let params = self.params();
        let name = object.name_any();
        Box::pin(async move { api.replace(&name, &params, &object).await })
    }

    fn delete(&self, key: ObjectKey) -> BoxFuture<'static, kube::Result<()>> {
        let api = (self.api)(self.client.clone(), key.namespace.as_deref());
        Box::pin(async move {
            match api.delete(&key.name, &DeleteParams::default()).await {
                Ok(_) => Ok(()),
                Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
                Err(error) => Err(error),
            }
        })
    }

    fn get(&self, key: ObjectKey) -> BoxFuture<'static, kube::Result<Option<K>>> {
        let api = (self.api)(self.client.clone(), key.namespace.as_deref());
        Box::pin(async move { api.get_opt(&key.name).await })
    }
}

/// How a writer works.
#[derive(Debug, Clone)]
pub struct WriterConfig {
    /// The kind written, for metrics and logs.
    pub kind: &'static str,
    /// How many keys are worked on at once.
    pub concurrency: usize,
    /// The first retry's delay; it doubles per failure.
    pub backoff_base: Duration,
    /// The longest delay between retries.
    pub backoff_max: Duration,
    /// When set (`label`, `value`): an object of a wanted name that does not
    /// carry this label with this value is not fedmesh's, and is never
    /// replaced or deleted (it is reported instead). When `None`, such an
    /// object is taken over.
    pub leave_foreign: Option<(&'static str, &'static str)>,
}

/// Whether `live` already holds what `desired` says, for the writer's kind.
pub type Covers<K> = fn(&K, &K) -> bool;

/// How a writer is doing, for readiness.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WriterHealth {
    /// Keys whose last attempt failed.
    pub failing: usize,
    /// Since when some key has been failing without any write succeeding.
    pub failing_since: Option<Instant>,
}

enum Outcome<K> {
    /// Nothing (more) to do; `Some(live)` is the object now there, `None`: gone.
    Done(Option<K>),
    /// A call found the cluster differs from what the writer knew: look again now.
    Stale(Option<K>),
    /// Not leading: keep the key for later.
    Parked,
    /// The call failed: retry after a backoff.
    Failed(String),
}

/// A keyed writer for objects of kind `K`.
pub struct Writer<K> {
    config: WriterConfig,
    target: Arc<dyn Target<K>>,
    claim: Claim,
    metrics: Metrics,
    covers: Covers<K>,
    desired: HashMap<ObjectKey, K>,
    live: HashMap<ObjectKey, K>,
    queue: Queue<ObjectKey>,
    synced: bool,
    listed: bool,
    /// Whether the claim was current when last looked at: a claim that comes
    /// back requeues every key (parked ones among them), a renewal does not.
    was_current: bool,
    health: watch::Sender<WriterHealth>,
}

impl<K> Writer<K>
where
    K: Resource + Clone + Debug + Send + Sync + 'static,
{
    /// A writer of `config.kind` through `target`, writing while `claim` is current.
    pub fn new(
        config: WriterConfig,
        target: Arc<dyn Target<K>>,
        claim: Claim,
        metrics: Metrics,
        covers: Covers<K>,
    ) -> (Self, watch::Receiver<WriterHealth>) {
        let (health, health_rx) = watch::channel(WriterHealth::default());
        let queue = Queue::new(config.backoff_base, config.backoff_max);
        (
            Self {
                config,
                target,
                claim,
                metrics,
                covers,
                desired: HashMap::new(),
                live: HashMap::new(),
                queue,
                synced: false,
                listed: false,
                was_current: false,
                health,
            },
            health_rx,
        )
    }

    /// Writes until `inputs` closes. `live` is the watch of the managed
    /// objects (see [`super::watch::watch`] with the managing label).
    pub async fn run(
        mut self,
        live: impl Stream<Item = Signal<K>> + Send,
        mut inputs: mpsc::UnboundedReceiver<Input<K>>,
    ) {
        let mut live = std::pin::pin!(live);
        let mut claim = self.claim.clone();
        let mut running: FuturesUnordered<BoxFuture<'static, (ObjectKey, Outcome<K>)>> =
            FuturesUnordered::new();
        loop {
            self.start(&mut running);
            let retry = self.queue.next_retry();
            tokio::select! {
                input = inputs.recv() => match input {
                    Some(input) => self.take(input),
                    None => return,
                },
                Some(signal) = live.next() => self.observe(signal),
                Some((key, outcome)) = running.next(), if !running.is_empty() => self.finish(key, outcome),
                () = claim.changed() => {
                    let current = claim.is_current();
                    if current && !self.was_current {
                        self.requeue_all();
                    }
                    self.was_current = current;
                }
                () = sleep_until(retry) => self.queue.wake(Instant::now()),
            }
        }
    }

    fn take(&mut self, input: Input<K>) {
        match input {
            Input::Want(objects) => {
                for (key, object) in objects {
                    match object {
                        Some(object) => {
                            self.desired.insert(key.clone(), object);
                        }
                        None => {
                            if self.desired.remove(&key).is_none() && !self.live.contains_key(&key)
                            {
                                self.queue.forget(&key);
                                continue;
                            }
                        }
                    }
                    self.queue.add(key);
                }
            }
            Input::Synced => {
                if !self.synced {
                    self.synced = true;
                    self.requeue_all();
                }
            }
            Input::Release(keys) => {
                for key in keys {
                    self.desired.remove(&key);
                    self.live.remove(&key);
                    self.queue.forget(&key);
                }
            }
        }
    }

    fn observe(&mut self, signal: Signal<K>) {
        match signal {
            Signal::Update(Update::Reset(objects)) => {
                let fresh: HashMap<ObjectKey, K> = objects
                    .into_iter()
                    .filter_map(|o| Some((ObjectKey::of(&o)?, slim(o))))
                    .collect();
                let old = std::mem::replace(&mut self.live, fresh);
                for key in old.into_keys() {
                    self.queue.add(key);
                }
                self.listed = true;
                self.requeue_all();
            }
            Signal::Update(Update::Apply(object)) => {
                let Some(key) = ObjectKey::of(&object) else {
                    return;
                };
                if self
                    .live
                    .get(&key)
                    .is_some_and(|known| newer(known, &object))
                {
                    return;
                }
                self.live.insert(key.clone(), slim(object));
                self.queue.add(key);
            }
            Signal::Update(Update::Delete(object)) => {
                if let Some(key) = ObjectKey::of(&object) {
                    self.live.remove(&key);
                    self.queue.add(key);
                }
            }
            Signal::Progress(Progress::Failed(failure)) => {
                tracing::debug!(
                    kind = self.config.kind,
                    "watching the objects fedmesh writes failed; retrying: {}",
                    failure.detail
                );
            }
            Signal::Progress(Progress::Listed | Progress::Recovered) => {}
        }
    }

    fn requeue_all(&mut self) {
        let keys: Vec<ObjectKey> = self
            .desired
            .keys()
            .chain(self.live.keys())
            .cloned()
            .collect();
        for key in keys {
            self.queue.add(key);
        }
    }

    /// Starts work on queued keys, up to the concurrency limit.
    fn start(
        &mut self,
        running: &mut FuturesUnordered<BoxFuture<'static, (ObjectKey, Outcome<K>)>>,
    ) {
        if !self.synced || !self.listed {
            return;
        }
        while running.len() < self.config.concurrency {
            let Some(key) = self.queue.pop() else { break };
            let desired = self.desired.get(&key).cloned();
            let live = self.live.get(&key).cloned();
            if let Some(outcome) = self.settled(desired.as_ref(), live.as_ref()) {
                self.finish(key, outcome);
                continue;
            }
            if let (Some((label, value)), Some(live)) = (self.config.leave_foreign, &live)
                && live.labels().get(label).map(String::as_str) != Some(value)
            {
                tracing::warn!(kind = self.config.kind, object = %key, "an object of this name exists without the label {label}={value}: it is not fedmesh's and is left alone; rename or delete it");
                // Forgotten, so that once it is gone a later change creates ours.
                self.finish(key, Outcome::Done(None));
                continue;
            }
            if self.claim.check().is_err() {
                self.finish(key, Outcome::Parked);
                continue;
            }
            let target = self.target.clone();
            let claim = self.claim.clone();
            let metrics = self.metrics.clone();
            let kind = self.config.kind;
            running.push(Box::pin(async move {
                let outcome =
                    write(&*target, &claim, &metrics, kind, key.clone(), desired, live).await;
                (key, outcome)
            }));
        }
    }

    /// The outcome when no call is needed.
    fn settled(&self, desired: Option<&K>, live: Option<&K>) -> Option<Outcome<K>> {
        match (desired, live) {
            (None, None) => Some(Outcome::Done(None)),
            (Some(desired), Some(live)) if (self.covers)(desired, live) => {
                Some(Outcome::Done(Some(live.clone())))
            }
            _ => None,
        }
    }

    fn finish(&mut self, key: ObjectKey, outcome: Outcome<K>) {
        let ok = match outcome {
            Outcome::Done(live) => {
                self.remember(&key, live);
                true
            }
            Outcome::Stale(live) => {
                self.remember(&key, live);
                self.queue.done(key.clone(), true);
                self.queue.add(key);
                self.report();
                return;
            }
            Outcome::Parked => {
                // Out of the queue until the claim comes back (requeue_all).
                self.was_current = false;
                self.queue.done(key, true);
                return;
            }
            Outcome::Failed(message) => {
                tracing::warn!(kind = self.config.kind, object = %key, "writing failed; retrying with backoff: {message}");
                false
            }
        };
        self.queue.done(key, ok);
        self.report();
    }

    fn remember(&mut self, key: &ObjectKey, live: Option<K>) {
        match live {
            Some(object) => {
                if !self
                    .live
                    .get(key)
                    .is_some_and(|known| newer(known, &object))
                {
                    self.live.insert(key.clone(), slim(object));
                }
            }
            None => {
                self.live.remove(key);
            }
        }
    }

    fn report(&self) {
        let failing = self.queue.failing();
        self.health.send_if_modified(|health| {
            let since = match (failing, health.failing_since) {
                (0, _) => None,
                (_, Some(since)) => Some(since),
                (_, None) => Some(Instant::now()),
            };
            let next = WriterHealth {
                failing,
                failing_since: since,
            };
            let changed = *health != next;
            *health = next;
            changed
        });
    }
}

/// `object` as the writer keeps it: without `managedFields`, which it never
/// reads (a write sends the desired object with the live resourceVersion)
/// and which, per object, can outweigh everything else it keeps.
fn slim<K: Resource>(mut object: K) -> K {
    object.meta_mut().managed_fields = None;
    object
}

/// Whether `known` is newer than `object` by resourceVersion (both numeric,
/// as every API server fedmesh knows makes them), so an old watch event does
/// not undo what a write answered.
fn newer<K: Resource>(known: &K, object: &K) -> bool {
    let version = |o: &K| o.meta().resource_version.as_deref()?.parse::<u64>().ok();
    matches!((version(known), version(object)), (Some(a), Some(b)) if a > b)
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// One attempt at making `key` hold `desired`.
async fn write<K: Resource + Clone + 'static>(
    target: &dyn Target<K>,
    claim: &Claim,
    metrics: &Metrics,
    kind: &'static str,
    key: ObjectKey,
    desired: Option<K>,
    live: Option<K>,
) -> Outcome<K> {
    // Checked again right before the call: the claim may have run out while
    // the key waited for a slot.
    if claim.check().is_err() {
        return Outcome::Parked;
    }
    let (verb, result) = match (desired, live) {
        (None, None) => return Outcome::Done(None),
        (None, Some(_)) => ("delete", target.delete(key.clone()).await.map(|()| None)),
        (Some(desired), Some(live)) => {
            let mut object = desired;
            object.meta_mut().resource_version = live.meta().resource_version.clone();
            ("replace", target.replace(object).await.map(Some))
        }
        (Some(desired), None) => {
            let mut object = desired;
            object.meta_mut().resource_version = None;
            ("create", target.create(object).await.map(Some))
        }
    };
    match result {
        Ok(now) => {
            metrics.count_write(kind, verb, true);
            Outcome::Done(now)
        }
        Err(error) => {
            metrics.count_write(kind, verb, false);
            match &error {
                // A create's 404 is its namespace missing: no read can fix
                // that, so it is retried with backoff.
                kube::Error::Api(status) if status.code == 404 && verb == "create" => {
                    Outcome::Failed(chain(&error))
                }
                // The object changed, appeared or went since the writer last
                // knew: read it and decide again (one extra call, no storm).
                kube::Error::Api(status) if status.code == 409 || status.code == 404 => {
                    match target.get(key).await {
                        Ok(now) => Outcome::Stale(now),
                        Err(error) => Outcome::Failed(chain(&error)),
                    }
                }
                _ => Outcome::Failed(chain(&error)),
            }
        }
    }
}

/// Whether `live` holds what `desired` sets, for a kind whose body fields
/// `owned` belong wholly to fedmesh: those must match exactly (an empty or
/// missing list in `desired` requires an empty or missing one in `live`),
/// while the labels and annotations fedmesh sets must be present with its
/// values (others may be added). Server defaults inside owned fields (a
/// port's protocol, say) are tolerated: `desired` must be contained in
/// `live`, list lengths equal.
pub fn covers_owned<K: Serialize>(desired: &K, live: &K, owned: &[&str]) -> bool {
    let (Ok(desired), Ok(live)) = (serde_json::to_value(desired), serde_json::to_value(live))
    else {
        return false;
    };
    let empty = |v: Option<&serde_json::Value>| match v {
        None | Some(serde_json::Value::Null) => true,
        Some(serde_json::Value::Array(a)) => a.is_empty(),
        Some(serde_json::Value::Object(o)) => o.is_empty(),
        Some(_) => false,
    };
    let bodies_match = owned
        .iter()
        .all(|field| match (desired.get(field), live.get(field)) {
            (d, l) if empty(d) => empty(l),
            (Some(d), Some(l)) => contains(d, l),
            _ => false,
        });
    let metadata_matches = ["labels", "annotations"].iter().all(|field| {
        let path = |v: &serde_json::Value| v.get("metadata").and_then(|m| m.get(field)).cloned();
        match (path(&desired), path(&live)) {
            (None, _) => true,
            (Some(d), Some(l)) => contains(&d, &l),
            (Some(d), None) => empty(Some(&d)),
        }
    });
    bodies_match && metadata_matches
}

/// Whether `live` contains everything `desired` holds.
fn contains(desired: &serde_json::Value, live: &serde_json::Value) -> bool {
    use serde_json::Value;
    match (desired, live) {
        (Value::Object(d), Value::Object(l)) => d
            .iter()
            .filter(|(_, v)| !v.is_null())
            .all(|(k, v)| l.get(k).is_some_and(|lv| contains(v, lv))),
        (Value::Array(d), Value::Array(l)) => {
            d.len() == l.len() && d.iter().zip(l).all(|(d, l)| contains(d, l))
        }
        (d, l) => d == l,
    }
}

#[cfg(test)]
mod tests;
