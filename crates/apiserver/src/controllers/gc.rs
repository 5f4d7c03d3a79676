//! Garbage collection through ownerReferences, per object.
//!
//! One watch over every key feeds a graph ([`GcGraph`]) that holds only the
//! objects collection needs: those with ownerReferences (indexed by owner
//! uid) and those in deletion held by the orphan or foreground finalizer.
//! Objects without either are recognised from their stored bytes without
//! being parsed, so they cost the collector nothing. Events queue the
//! store keys of the objects to look at; a sync reads that object, its
//! owners (a get by kind and name, then a uid comparison) and its
//! dependents, and carries out what `cluster::gc::plan_node` says.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;
use serde_json::{Value, json};

use super::decode::{self, GcFacts};
use super::feed::Sink;
use super::queue::WorkQueue;
use super::reads;
use super::runner::{Outcome, Reconciler};
use crate::cluster::gc::{self, GcAction, GcNode, Neighbourhood, ObjectId};
use crate::objects::{ApiError, DeleteOptions, Objects, WriteOptions, meta};
use crate::registry::{Registry, ResourceInfo};
use crate::store::{Event, KeyValue};

const MANAGER: &str = "generic-garbage-collector";
/// The collector watches every object.
pub(super) const PREFIX: &str = "/registry/";

/// The part of the object graph collection needs, by store key.
#[derive(Debug, Default)]
pub(super) struct GcGraph {
    /// Objects with owners or waiting on a collector finalizer.
    tracked: HashMap<String, GcFacts>,
    /// Keys of the tracked objects that reference each owner uid.
    dependents: HashMap<String, BTreeSet<String>>,
    /// Key of each object in deletion held by a collector finalizer, by uid.
    waiting: HashMap<String, String>,
    /// Keys of relevant objects a list in progress has found.
    listing: Option<HashSet<String>>,
}

impl GcGraph {
    fn unlink(&mut self, key: &str, facts: &GcFacts, out: &mut Vec<String>) {
        for owner in &facts.owners {
            if let Some(keys) = self.dependents.get_mut(owner) {
                keys.remove(key);
                if keys.is_empty() {
                    self.dependents.remove(owner);
                }
            }
            // An owner waiting on its dependents must look again.
            if let Some(owner_key) = self.waiting.get(owner) {
                out.push(owner_key.clone());
            }
        }
        if facts.waiting && self.waiting.get(&facts.uid).map(String::as_str) == Some(key) {
            self.waiting.remove(&facts.uid);
        }
    }

    fn remove(&mut self, key: &str, out: &mut Vec<String>) {
        if let Some(old) = self.tracked.remove(key) {
            self.unlink(key, &old, out);
        }
    }

    /// Records what the object at `key` now is (`None`: nothing collection
    /// cares about) and pushes the keys to look at.
    fn record(&mut self, key: &str, facts: Option<GcFacts>, out: &mut Vec<String>) {
        let Some(facts) = facts.filter(GcFacts::relevant) else {
            self.remove(key, out);
            return;
        };
        if self.tracked.get(key) == Some(&facts) {
            return;
        }
        let was_waiting = self.tracked.get(key).is_some_and(|f| f.waiting);
        self.remove(key, out);
        for owner in &facts.owners {
            self.dependents
                .entry(owner.clone())
                .or_default()
                .insert(key.to_owned());
        }
        out.push(key.to_owned());
        if facts.waiting {
            self.waiting.insert(facts.uid.clone(), key.to_owned());
            if !was_waiting {
                // Its dependents are to be orphaned or deleted first.
                out.extend(
                    self.dependents
                        .get(&facts.uid)
                        .into_iter()
                        .flatten()
                        .cloned(),
                );
            }
        }
        self.tracked.insert(key.to_owned(), facts);
    }

    fn read(&self, key: &str, value: &[u8]) -> Option<Option<GcFacts>> {
        if decode::may_matter_to_gc(value) {
            Some(decode::gc_facts(value))
        } else if self.tracked.contains_key(key) {
            Some(None)
        } else {
            // Neither tracked nor interesting: the common case, at no cost.
            None
        }
    }

    /// A list starts.
    pub fn begin_list(&mut self) {
        self.listing = Some(HashSet::new());
    }

    /// One listed object; returns the keys to look at.
    pub fn listed(&mut self, kv: &KeyValue) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(facts) = self.read(&kv.key, &kv.value) {
            if facts.as_ref().is_some_and(GcFacts::relevant)
                && let Some(listing) = self.listing.as_mut()
            {
                listing.insert(kv.key.clone());
            }
            self.record(&kv.key, facts, &mut out);
        }
        out
    }

    /// The list is complete: what it did not find is gone, and since
    /// deletions may have been missed, every tracked object is looked at.
    pub fn end_list(&mut self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(listed) = self.listing.take() {
            let gone: Vec<String> = self
                .tracked
                .keys()
                .filter(|k| !listed.contains(*k))
                .cloned()
                .collect();
            for key in gone {
                self.remove(&key, &mut out);
            }
        }
        out.extend(self.tracked.keys().cloned());
        out
    }

    /// A change; returns the keys to look at.
    pub fn changed(&mut self, event: &Event) -> Vec<String> {
        let mut out = Vec::new();
        match event {
            Event::Put { kv, .. } => {
                if let Some(facts) = self.read(&kv.key, &kv.value) {
                    self.record(&kv.key, facts, &mut out);
                }
            }
            Event::Delete { kv } => {
                self.remove(&kv.key, &mut out);
                // Only an owner's deletion leaves dependents to collect.
                if !self.dependents.is_empty()
                    && let Some(uid) = decode::uid(&kv.value)
                {
                    out.extend(self.dependents.get(&uid).into_iter().flatten().cloned());
                }
            }
        }
        out
    }

    /// Store keys of the tracked objects that reference `uid`.
    fn dependents_of(&self, uid: &str) -> Vec<String> {
        self.dependents
            .get(uid)
            .into_iter()
            .flatten()
            .cloned()
            .collect()
    }

    /// How many objects the graph holds (what collection costs in memory).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.tracked.len()
    }
}

/// The resource whose objects live under a store key.
fn resource_of_key(registry: &Registry, key: &str) -> Option<Arc<ResourceInfo>> {
    let rest = key.strip_prefix(PREFIX)?;
    let (group, rest) = rest.split_once('/')?;
    let (plural, _) = rest.split_once('/')?;
    let group = if group == "core" { "" } else { group };
    registry
        .all()
        .into_iter()
        .find(|r| r.group == group && r.plural == plural)
}

/// The resource an owner reference names: its exact version, or another
/// served version of the same group and kind.
fn resource_of_reference(
    registry: &Registry,
    api_version: &str,
    kind: &str,
) -> Option<Arc<ResourceInfo>> {
    registry.by_kind(api_version, kind).or_else(|| {
        let (group, _) = crate::registry::split_api_version(api_version);
        registry
            .all()
            .into_iter()
            .find(|r| r.group == group && r.kind == kind)
    })
}

fn node_of(r: &ResourceInfo, value: &[u8]) -> Option<GcNode> {
    let object: Value = serde_json::from_slice(value).ok()?;
    GcNode::from_json_as(&object, Some(&r.api_version()), Some(&r.kind))
}

/// The collector: graph, queue, and the object layer it acts through.
pub(super) struct GcController {
    objects: Objects,
    graph: Mutex<GcGraph>,
    queue: WorkQueue<String>,
}

impl GcController {
    pub fn new(objects: Objects) -> Arc<Self> {
        Arc::new(GcController {
            objects,
            graph: Mutex::new(GcGraph::default()),
            queue: WorkQueue::new(),
        })
    }

    fn graph(&self) -> std::sync::MutexGuard<'_, GcGraph> {
        // Every graph method leaves it consistent before it can panic.
        self.graph.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The stored object at `key` as a graph node.
    async fn node(&self, key: &str) -> Result<Option<GcNode>, ApiError> {
        let Some(r) = resource_of_key(self.objects.registry(), key) else {
            return Ok(None);
        };
        let stored = reads::get(self.objects.store().raw(), key).await?;
        Ok(stored.and_then(|kv| node_of(&r, &kv.value)))
    }

    /// The owners and dependents of `node`, read from the store.
    async fn neighbourhood(&self, node: &GcNode) -> Result<Neighbourhood, ApiError> {
        let registry = self.objects.registry();
        let mut around = Neighbourhood::default();
        let mut seen = HashSet::new();
        for r in &node.owner_references {
            if !seen.insert((&r.api_version, &r.kind, &r.name)) {
                continue;
            }
            // A kind this server does not serve has no objects: the
            // reference dangles.
            let Some(res) = resource_of_reference(registry, &r.api_version, &r.kind) else {
                continue;
            };
            if res.namespaced && node.id.namespace.is_none() {
                around.invalid_owner_uids.push(r.uid.clone());
                continue;
            }
            let key = res.key(node.id.namespace.as_deref(), &r.name);
            if let Some(kv) = reads::get(self.objects.store().raw(), &key).await?
                && let Some(owner) = node_of(&res, &kv.value)
            {
                around.owners.push(owner);
            }
        }
        let dependent_keys = self.graph().dependents_of(&node.id.uid);
        for key in dependent_keys {
            if let Some(d) = self.node(&key).await? {
                around.dependents.push(d);
            }
        }
        Ok(around)
    }

    async fn sync_key(&self, key: &str) -> Result<Outcome, ApiError> {
        let Some(node) = self.node(key).await? else {
            return Ok(Outcome::Done);
        };
        let around = self.neighbourhood(&node).await?;
        // In order: an owner's finalizer goes only after its dependents
        // were orphaned, so the first failure stops the rest.
        for action in gc::plan_node(&node, &around) {
            act(&self.objects, action).await?;
        }
        Ok(Outcome::Done)
    }
}

async fn act(objects: &Objects, action: GcAction) -> Result<(), ApiError> {
    match action {
        GcAction::Delete {
            target,
            propagation,
        } => {
            let Some(r) =
                resource_of_reference(objects.registry(), &target.api_version, &target.kind)
            else {
                return Ok(());
            };
            let opts = DeleteOptions {
                propagation: Some(propagation),
                precondition_uid: Some(target.uid.clone()),
                ..DeleteOptions::default()
            };
            match objects
                .delete(&r, target.namespace.as_deref(), &target.name, &opts)
                .await
            {
                // Conflict: the uid precondition failed, another object
                // took the name; the one to collect is gone.
                Ok(_) | Err(ApiError::NotFound(_) | ApiError::Conflict { .. }) => Ok(()),
                Err(e) => Err(e),
            }
        }
        GcAction::RemoveOwnerReferences { target, owner_uids } => {
            edit(objects, &target, |obj| {
                let Some(refs) = obj["metadata"]["ownerReferences"].as_array_mut() else {
                    return;
                };
                refs.retain(|r| {
                    !owner_uids
                        .iter()
                        .any(|u| r["uid"].as_str() == Some(u.as_str()))
                });
                if refs.is_empty()
                    && let Some(m) = meta::meta_mut(obj)
                {
                    m.remove("ownerReferences");
                }
            })
            .await
        }
        GcAction::UnblockOwnerReferences { target } => {
            edit(objects, &target, |obj| {
                for r in obj["metadata"]["ownerReferences"]
                    .as_array_mut()
                    .into_iter()
                    .flatten()
                {
                    r["blockOwnerDeletion"] = json!(false);
                }
            })
            .await
        }
        GcAction::RemoveFinalizer { target, finalizer } => {
            edit(objects, &target, |obj| {
                if let Some(f) = obj["metadata"]["finalizers"].as_array_mut() {
                    f.retain(|x| x.as_str() != Some(finalizer.as_str()));
                }
            })
            .await
        }
    }
}

/// Reads the object, changes it, and writes it back conditionally on what was
/// read; a concurrent change fails it (the key is retried).
async fn edit(
    objects: &Objects,
    target: &ObjectId,
    change: impl Fn(&mut Value),
) -> Result<(), ApiError> {
    let Some(r) = resource_of_reference(objects.registry(), &target.api_version, &target.kind)
    else {
        return Ok(());
    };
    let ns = target.namespace.as_deref();
    let mut obj = match objects.get(&r, ns, &target.name).await {
        Ok(o) => o,
        Err(ApiError::NotFound(_)) => return Ok(()),
        Err(e) => return Err(e),
    };
    if meta::meta_str(&obj, "uid") != Some(target.uid.as_str()) {
        return Ok(());
    }
    change(&mut obj);
    let opts = WriteOptions {
        field_manager: Some(MANAGER.to_owned()),
        ..WriteOptions::default()
    };
    match objects.update(&r, ns, &target.name, obj, &opts, None).await {
        Ok(_) | Err(ApiError::NotFound(_)) => Ok(()),
        Err(e) => Err(e),
    }
}

impl Sink<()> for GcController {
    fn begin_list(&self, (): ()) {
        self.graph().begin_list();
    }

    fn listed(&self, (): (), kv: &KeyValue) {
        let keys = self.graph().listed(kv);
        self.queue.add_all(keys);
    }

    fn end_list(&self, (): ()) {
        let keys = self.graph().end_list();
        self.queue.add_all(keys);
    }

    fn changed(&self, (): (), event: &Event) {
        let keys = self.graph().changed(event);
        self.queue.add_all(keys);
    }
}

impl Reconciler for GcController {
    type Key = String;

    fn queue(&self) -> &WorkQueue<String> {
        &self.queue
    }

    fn sync<'a>(&'a self, key: &'a String) -> BoxFuture<'a, Result<Outcome, ApiError>> {
        Box::pin(self.sync_key(key))
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use serde_json::json;

    use super::*;

    fn kv(key: &str, value: &Value) -> KeyValue {
        KeyValue {
            key: key.to_owned(),
            value: Bytes::from(serde_json::to_vec(value).unwrap()),
            create_revision: 1,
            mod_revision: 1,
        }
    }

    fn put(key: &str, value: Value) -> Event {
        Event::Put {
            kv: kv(key, &value),
            prev: None,
        }
    }

    fn delete(key: &str, value: Value) -> Event {
        Event::Delete {
            kv: kv(key, &value),
        }
    }

    fn plain(uid: &str) -> Value {
        json!({"metadata": {"name": uid, "uid": uid, "labels": {"app": "x"}}, "data": {"k": "v"}})
    }

    fn owned(uid: &str, owners: &[&str]) -> Value {
        let refs: Vec<Value> = owners
            .iter()
            .map(|o| json!({"apiVersion": "v1", "kind": "ConfigMap", "name": o, "uid": o}))
            .collect();
        json!({"metadata": {"name": uid, "uid": uid, "ownerReferences": refs}})
    }

    fn waiting(uid: &str, finalizer: &str) -> Value {
        json!({"metadata": {"name": uid, "uid": uid,
            "deletionTimestamp": "2026-01-01T00:00:00Z", "finalizers": [finalizer]}})
    }

    fn cm(name: &str) -> String {
        format!("/registry/core/configmaps/ns/{name}")
    }

    #[test]
    fn ten_thousand_owner_less_creates_leave_the_graph_empty() {
        let mut graph = GcGraph::default();
        for i in 0..10_000 {
            let key = format!("/registry/core/endpoints/bench/ep-{i}");
            assert!(
                graph
                    .changed(&put(&key, plain(&format!("u{i}"))))
                    .is_empty()
            );
        }
        assert_eq!(graph.len(), 0);
        assert!(graph.dependents.is_empty() && graph.waiting.is_empty());
        for i in 0..10_000 {
            let key = format!("/registry/core/endpoints/bench/ep-{i}");
            assert!(
                graph
                    .changed(&delete(&key, plain(&format!("u{i}"))))
                    .is_empty()
            );
        }
        assert_eq!(graph.len(), 0);
    }

    #[test]
    fn a_dependent_is_looked_at_when_created_and_when_its_owner_is_deleted() {
        let mut graph = GcGraph::default();
        assert!(graph.changed(&put(&cm("owner"), plain("owner"))).is_empty());
        assert_eq!(
            graph.changed(&put(&cm("child"), owned("child", &["owner"]))),
            vec![cm("child")]
        );
        // An update that leaves owners and deletion state alone is free.
        let mut relabelled = owned("child", &["owner"]);
        relabelled["metadata"]["labels"] = json!({"a": "b"});
        assert!(graph.changed(&put(&cm("child"), relabelled)).is_empty());
        // Deleting an unrelated object queues nothing.
        assert!(
            graph
                .changed(&delete(&cm("other"), plain("other")))
                .is_empty()
        );
        assert_eq!(
            graph.changed(&delete(&cm("owner"), plain("owner"))),
            vec![cm("child")]
        );
        assert_eq!(
            graph.changed(&delete(&cm("child"), owned("child", &["owner"]))),
            Vec::<String>::new()
        );
        assert_eq!(graph.len(), 0);
        assert!(graph.dependents.is_empty());
    }

    #[test]
    fn a_foreground_owner_is_looked_at_again_as_its_dependents_go() {
        let mut graph = GcGraph::default();
        graph.changed(&put(&cm("a"), owned("a", &["owner"])));
        graph.changed(&put(&cm("b"), owned("b", &["owner"])));
        let mut got = graph.changed(&put(
            &cm("owner"),
            waiting("owner", gc::FINALIZER_FOREGROUND),
        ));
        got.sort();
        assert_eq!(got, vec![cm("a"), cm("b"), cm("owner")]);
        assert_eq!(
            graph.changed(&delete(&cm("a"), owned("a", &["owner"]))),
            vec![cm("owner")]
        );
        // Losing the reference counts as going.
        let mut got = graph.changed(&put(&cm("b"), plain("b")));
        got.sort();
        assert_eq!(got, vec![cm("owner")]);
        assert_eq!(graph.len(), 1);
        graph.changed(&delete(
            &cm("owner"),
            waiting("owner", gc::FINALIZER_FOREGROUND),
        ));
        assert_eq!(graph.len(), 0);
        assert!(graph.waiting.is_empty());
    }

    #[test]
    fn a_relist_forgets_what_went_and_looks_at_everything_tracked() {
        let mut graph = GcGraph::default();
        graph.changed(&put(&cm("gone"), owned("gone", &["o"])));
        graph.changed(&put(&cm("kept"), owned("kept", &["o"])));
        graph.begin_list();
        assert!(graph.listed(&kv(&cm("plain"), &plain("plain"))).is_empty());
        assert!(
            graph
                .listed(&kv(&cm("kept"), &owned("kept", &["o"])))
                .is_empty()
        );
        assert_eq!(graph.end_list(), vec![cm("kept")]);
        assert_eq!(graph.len(), 1);
        assert_eq!(graph.dependents_of("o"), vec![cm("kept")]);
    }

    #[test]
    fn store_keys_map_to_their_resources() {
        let registry = Registry::with_builtins();
        let r = resource_of_key(&registry, "/registry/core/configmaps/ns/x").unwrap();
        assert_eq!(r.kind, "ConfigMap");
        let r =
            resource_of_key(&registry, "/registry/discovery.k8s.io/endpointslices/ns/x").unwrap();
        assert_eq!(r.kind, "EndpointSlice");
        assert!(resource_of_key(&registry, "/registry/nothing/here/x").is_none());
        assert!(resource_of_reference(&registry, "apps/v1", "ReplicaSet").is_some());
        assert!(resource_of_reference(&registry, "apps/v1", "ControllerRevision").is_none());
        assert!(resource_of_reference(&registry, "v1", "Service").is_some());
    }

    async fn collector(
        objects: &Objects,
    ) -> (tokio::task::JoinSet<()>, tokio::sync::watch::Sender<bool>) {
        let (tx, rx) = tokio::sync::watch::channel(false);
        let mut set = tokio::task::JoinSet::new();
        super::super::runner::start(
            &mut set,
            objects.store().raw(),
            GcController::new(objects.clone()),
            "garbage-collector",
            &[(PREFIX, ())],
            1,
            &rx,
        );
        (set, tx)
    }

    #[tokio::test]
    async fn owner_deleted_dependents_deleted_in_each_propagation() {
        use crate::controllers::testing::{configmap, eventually, objects_with_namespace};
        use crate::objects::Propagation;
        let objects = objects_with_namespace("gc").await;
        let (set, stop) = collector(&objects).await;
        let r = objects.registry().resolve("", "v1", "configmaps").unwrap();
        for (policy, name) in [
            (Propagation::Background, "bg"),
            (Propagation::Foreground, "fg"),
            (Propagation::Orphan, "or"),
        ] {
            let owner = configmap(&objects, "gc", json!({"metadata": {"name": name}})).await;
            let child = format!("{name}-child");
            let grandchild = format!("{name}-grandchild");
            let child_obj = configmap(
                &objects,
                "gc",
                json!({"metadata": {"name": child, "ownerReferences": [{
                    "apiVersion": "v1", "kind": "ConfigMap", "name": name,
                    "uid": owner["metadata"]["uid"], "blockOwnerDeletion": true}]}}),
            )
            .await;
            configmap(
                &objects,
                "gc",
                json!({"metadata": {"name": grandchild, "ownerReferences": [{
                    "apiVersion": "v1", "kind": "ConfigMap", "name": child,
                    "uid": child_obj["metadata"]["uid"], "blockOwnerDeletion": true}]}}),
            )
            .await;
            let opts = DeleteOptions {
                propagation: Some(policy),
                ..DeleteOptions::default()
            };
            objects.delete(&r, Some("gc"), name, &opts).await.unwrap();
            let settled = eventually(async || {
                let owner_gone = objects.get(&r, Some("gc"), name).await.is_err();
                let child = objects.get(&r, Some("gc"), &child).await.ok();
                let grandchild = objects.get(&r, Some("gc"), &grandchild).await.ok();
                match policy {
                    Propagation::Orphan => {
                        owner_gone
                            && child.is_some_and(|c| c["metadata"].get("ownerReferences").is_none())
                            && grandchild.is_some()
                    }
                    _ => owner_gone && child.is_none() && grandchild.is_none(),
                }
            })
            .await;
            assert!(settled, "{policy:?} did not settle");
        }
        stop.send(true).unwrap();
        tokio::time::timeout(std::time::Duration::from_secs(5), set.join_all())
            .await
            .expect("the collector stops on shutdown");
    }

    #[tokio::test]
    async fn a_dependent_created_after_its_owner_went_is_collected() {
        use crate::controllers::testing::{configmap, eventually, objects_with_namespace};
        let objects = objects_with_namespace("late").await;
        let (_set, _stop) = collector(&objects).await;
        let r = objects.registry().resolve("", "v1", "configmaps").unwrap();
        configmap(
            &objects,
            "late",
            json!({"metadata": {"name": "orphan", "ownerReferences": [{
                "apiVersion": "v1", "kind": "ConfigMap", "name": "never", "uid": "no-such-uid"}]}}),
        )
        .await;
        configmap(&objects, "late", json!({"metadata": {"name": "plain"}})).await;
        assert!(eventually(async || objects.get(&r, Some("late"), "orphan").await.is_err()).await);
        assert!(objects.get(&r, Some("late"), "plain").await.is_ok());
    }
}
