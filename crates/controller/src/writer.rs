//! The writer: makes the local cluster hold what the index wants, and only
//! while this replica leads.
//!
//! It keeps the desired objects of every federated Service and watches the
//! objects fedmesh manages (by label), so a user's edit to a federated
//! Service's Endpoints is seen and overwritten, and what fedmesh wrote for a
//! Service that is no longer federated is removed.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use fedmesh_core::FederatedKey;
use fedmesh_core::mesh::{ENDPOINTS_MANAGED_BY_LABEL, MANAGED_BY, MANAGED_BY_LABEL};
use futures::StreamExt;
use k8s_openapi::api::core::v1::Endpoints;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, DeleteParams, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::{mpsc, watch};

use crate::engine::Intent;
use crate::metrics::Metrics;
use crate::task::AbortOnDrop;

const SERVICE_NAME_LABEL: &str = fedmesh_core::SERVICE_NAME_LABEL;

/// What fedmesh wants for one federated Service.
#[derive(Debug, Default, Clone)]
struct Desired {
    endpoints: Option<Endpoints>,
    slices: BTreeMap<String, EndpointSlice>,
}

/// Whether a watched object was applied or deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Change {
    Applied,
    Deleted,
}

/// A change to an object fedmesh manages.
enum Live {
    Slice(Change, EndpointSlice),
    SlicesListed(Vec<EndpointSlice>),
    Endpoints(Change, Endpoints),
    EndpointsListed(Vec<Endpoints>),
}

/// Runs the writer until the intents channel closes.
pub async fn run(
    client: kube::Client,
    mut intents: mpsc::Receiver<Vec<Intent>>,
    mut leading: watch::Receiver<bool>,
    metrics: Metrics,
) {
    let (live_tx, mut live_rx) = mpsc::channel(1024);
    // The watches end with the writer (the controller stopping drops it).
    let _slices = AbortOnDrop(tokio::spawn(watch_managed::<EndpointSlice>(
        client.clone(),
        format!("{MANAGED_BY_LABEL}={MANAGED_BY}"),
        live_tx.clone(),
        Live::Slice,
        Live::SlicesListed,
    )));
    let _endpoints = AbortOnDrop(tokio::spawn(watch_managed::<Endpoints>(
        client.clone(),
        format!("{ENDPOINTS_MANAGED_BY_LABEL}={MANAGED_BY}"),
        live_tx,
        Live::Endpoints,
        Live::EndpointsListed,
    )));
    let mut writer = Writer {
        client,
        metrics,
        desired: HashMap::new(),
        slices: HashMap::new(),
        endpoints: HashMap::new(),
        listed: (false, false),
    };
    loop {
        let touched = tokio::select! {
            batch = intents.recv() => match batch {
                Some(batch) => writer.take(batch),
                None => return,
            },
            Some(live) = live_rx.recv() => writer.observe(live),
            Ok(()) = leading.changed() => writer.all_keys(),
        };
        if *leading.borrow() && writer.listed == (true, true) {
            for key in touched {
                writer.reconcile(&key).await;
            }
        }
    }
}

/// Watches the objects of kind `K` carrying `label`, reporting each change.
async fn watch_managed<K>(
    client: kube::Client,
    label: String,
    live: mpsc::Sender<Live>,
    changed: fn(Change, K) -> Live,
    listed: fn(Vec<K>) -> Live,
) where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug + Send + 'static,
{
    let api = Api::<K>::all(client);
    let mut stream = watcher(api, watcher::Config::default().labels(&label))
        .default_backoff()
        .boxed();
    let mut listing = Vec::new();
    while let Some(event) = stream.next().await {
        let message = match event {
            Ok(watcher::Event::Init) => {
                listing.clear();
                continue;
            }
            Ok(watcher::Event::InitApply(object)) => {
                listing.push(object);
                continue;
            }
            Ok(watcher::Event::InitDone) => listed(std::mem::take(&mut listing)),
            Ok(watcher::Event::Apply(object)) => changed(Change::Applied, object),
            Ok(watcher::Event::Delete(object)) => changed(Change::Deleted, object),
            Err(error) => {
                tracing::warn!(%error, "watching fedmesh's objects failed; retrying");
                continue;
            }
        };
        if live.send(message).await.is_err() {
            return;
        }
    }
}

type ObjectKey = (String, String);

fn object_key<K: Resource>(object: &K) -> Option<ObjectKey> {
    Some((
        object.meta().namespace.clone()?,
        object.meta().name.clone()?,
    ))
}

struct Writer {
    client: kube::Client,
    metrics: Metrics,
    desired: HashMap<FederatedKey, Desired>,
    slices: HashMap<ObjectKey, EndpointSlice>,
    endpoints: HashMap<ObjectKey, Endpoints>,
    listed: (bool, bool),
}

impl Writer {
    /// Records intents; returns the Services to reconcile.
    fn take(&mut self, batch: Vec<Intent>) -> BTreeSet<FederatedKey> {
        let mut touched = BTreeSet::new();
        for intent in batch {
            match intent {
                Intent::Remove(key) => {
                    self.desired.remove(&key);
                    touched.insert(key);
                }
                Intent::Update {
                    key,
                    endpoints,
                    slices,
                    complete,
                } => {
                    let desired = self.desired.entry(key.clone()).or_default();
                    if complete {
                        desired.slices.clear();
                    }
                    if let Some(endpoints) = endpoints {
                        desired.endpoints = Some(*endpoints);
                    }
                    for (name, slice) in slices {
                        match slice {
                            Some(slice) => desired.slices.insert(name, slice),
                            None => desired.slices.remove(&name),
                        };
                    }
                    touched.insert(key);
                }
            }
        }
        touched
    }

    /// Records a change to a managed object; returns the Service to reconcile.
    fn observe(&mut self, live: Live) -> BTreeSet<FederatedKey> {
        let mut touched = BTreeSet::new();
        match live {
            Live::Slice(change, object) => {
                let Some(key) = object_key(&object) else {
                    return touched;
                };
                touched.extend(owner_of_slice(&object));
                if change == Change::Deleted {
                    self.slices.remove(&key);
                } else {
                    self.slices.insert(key, object);
                }
            }
            Live::Endpoints(change, object) => {
                let Some(key) = object_key(&object) else {
                    return touched;
                };
                touched.insert(FederatedKey::new(&key.0, &key.1));
                if change == Change::Deleted {
                    self.endpoints.remove(&key);
                } else {
                    self.endpoints.insert(key, object);
                }
            }
            Live::SlicesListed(all) => {
                self.slices = all
                    .into_iter()
                    .filter_map(|s| Some((object_key(&s)?, s)))
                    .collect();
                self.listed.0 = true;
                touched = self.all_keys();
            }
            Live::EndpointsListed(all) => {
                self.endpoints = all
                    .into_iter()
                    .filter_map(|e| Some((object_key(&e)?, e)))
                    .collect();
                self.listed.1 = true;
                touched = self.all_keys();
            }
        }
        touched
    }

    /// Every Service with desired or live objects.
    fn all_keys(&self) -> BTreeSet<FederatedKey> {
        let mut keys: BTreeSet<FederatedKey> = self.desired.keys().cloned().collect();
        keys.extend(self.slices.values().filter_map(owner_of_slice));
        keys.extend(
            self.endpoints
                .keys()
                .map(|(ns, name)| FederatedKey::new(ns, name)),
        );
        keys
    }

    /// Makes the cluster hold exactly the desired objects of `key`.
    async fn reconcile(&mut self, key: &FederatedKey) {
        let desired = self.desired.get(key).cloned().unwrap_or_default();
        let live_slices: Vec<(ObjectKey, EndpointSlice)> = self
            .slices
            .iter()
            .filter(|(_, s)| owner_of_slice(s).as_ref() == Some(key))
            .map(|(k, s)| (k.clone(), s.clone()))
            .collect();
        for (name, slice) in &desired.slices {
            let live = self.slices.get(&(key.namespace.to_string(), name.clone()));
            self.put(&key.namespace, name, slice, live.cloned(), "EndpointSlice")
                .await;
        }
        for ((ns, name), _) in live_slices {
            if !desired.slices.contains_key(&name) {
                self.delete::<EndpointSlice>(&ns, &name, "EndpointSlice")
                    .await;
            }
        }
        let endpoints_key = (key.namespace.to_string(), key.name.to_string());
        match &desired.endpoints {
            Some(endpoints) => {
                let live = self.endpoints.get(&endpoints_key).cloned();
                self.put(&key.namespace, &key.name, endpoints, live, "Endpoints")
                    .await;
            }
            None if self.endpoints.contains_key(&endpoints_key) => {
                self.delete::<Endpoints>(&key.namespace, &key.name, "Endpoints")
                    .await;
            }
            None => {}
        }
    }

    /// Creates or replaces `desired` unless `live` already holds it.
    async fn put<K>(&self, namespace: &str, name: &str, desired: &K, live: Option<K>, kind: &str)
    where
        K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
            + Clone
            + Serialize
            + DeserializeOwned
            + std::fmt::Debug,
    {
        if live.as_ref().is_some_and(|live| covers(desired, live)) {
            return;
        }
        let api = Api::<K>::namespaced(self.client.clone(), namespace);
        let result = match live {
            Some(live) => {
                self.replace(&api, name, desired, live.resource_version())
                    .await
            }
            None => match api.create(&PostParams::default(), desired).await {
                // An object fedmesh did not label (say, Endpoints a user made):
                // federation owns it now.
                Err(kube::Error::Api(status)) if status.code == 409 => {
                    match api.get_opt(name).await {
                        Ok(current) => {
                            let version = current.and_then(|c| c.resource_version());
                            self.replace(&api, name, desired, version).await
                        }
                        Err(error) => Err(error),
                    }
                }
                other => other.map(|_| ()),
            },
        };
        match result {
            Ok(()) => {
                self.metrics.count_write(kind, "put");
                tracing::debug!(kind, namespace, name, "wrote");
            }
            // The watch brings the newer object and a new reconcile.
            Err(kube::Error::Api(status)) if status.code == 409 => {}
            Err(error) => tracing::warn!(kind, namespace, name, %error, "write failed"),
        }
    }

    async fn replace<K>(
        &self,
        api: &Api<K>,
        name: &str,
        desired: &K,
        version: Option<String>,
    ) -> kube::Result<()>
    where
        K: Resource + Clone + Serialize + DeserializeOwned + std::fmt::Debug,
    {
        let mut object = desired.clone();
        object.meta_mut().resource_version = version;
        api.replace(name, &PostParams::default(), &object)
            .await
            .map(|_| ())
    }

    async fn delete<K>(&self, namespace: &str, name: &str, kind: &str)
    where
        K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
            + Clone
            + DeserializeOwned
            + std::fmt::Debug,
    {
        let api = Api::<K>::namespaced(self.client.clone(), namespace);
        match api.delete(name, &DeleteParams::default()).await {
            Ok(_) => self.metrics.count_write(kind, "delete"),
            Err(kube::Error::Api(status)) if status.code == 404 => {}
            Err(error) => tracing::warn!(kind, namespace, name, %error, "delete failed"),
        }
    }
}

fn owner_of_slice(slice: &EndpointSlice) -> Option<FederatedKey> {
    Some(FederatedKey::new(
        slice.metadata.namespace.as_deref()?,
        slice.labels().get(SERVICE_NAME_LABEL)?,
    ))
}

/// Whether `live` holds everything `desired` sets (fields the API server
/// added, such as defaults and metadata, are ignored).
fn covers<K: Serialize>(desired: &K, live: &K) -> bool {
    match (serde_json::to_value(desired), serde_json::to_value(live)) {
        (Ok(desired), Ok(live)) => json_covers(&desired, &live),
        _ => false,
    }
}

fn json_covers(desired: &serde_json::Value, live: &serde_json::Value) -> bool {
    use serde_json::Value;
    match (desired, live) {
        (Value::Object(d), Value::Object(l)) => d
            .iter()
            .filter(|(_, v)| !v.is_null())
            .all(|(k, v)| l.get(k).is_some_and(|lv| json_covers(v, lv))),
        (Value::Array(d), Value::Array(l)) => {
            d.len() == l.len() && d.iter().zip(l).all(|(d, l)| json_covers(d, l))
        }
        (d, l) => d == l,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::json_covers;

    #[test]
    fn covering_ignores_server_additions_but_not_edits() {
        let desired = json!({"metadata": {"name": "a", "labels": {"x": "1"}}, "subsets": [{"ports": [{"port": 80}]}]});
        let live = json!({"metadata": {"name": "a", "labels": {"x": "1", "y": "2"}, "uid": "u"},
                          "subsets": [{"ports": [{"port": 80, "protocol": "TCP"}]}]});
        assert!(json_covers(&desired, &live));
        let edited = json!({"metadata": {"name": "a", "labels": {"x": "1"}}, "subsets": [{"ports": [{"port": 81}]}]});
        assert!(!json_covers(&desired, &edited));
        let more = json!({"metadata": {"name": "a", "labels": {"x": "1"}}, "subsets": [{"ports": [{"port": 80}]}, {}]});
        assert!(!json_covers(&desired, &more), "an extra subset is an edit");
        let unlabelled = json!({"metadata": {"name": "a"}, "subsets": [{"ports": [{"port": 80}]}]});
        assert!(!json_covers(&desired, &unlabelled));
    }
}
