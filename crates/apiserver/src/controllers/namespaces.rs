//! Namespace lifecycle, per namespace: a `default` ServiceAccount in every
//! active namespace, and a terminating namespace's contents deleted before
//! the namespace goes. A namespace is synced when it changes or its
//! `default` ServiceAccount is deleted; a terminating one is looked at again
//! after a growing, bounded delay until it is empty.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use serde_json::{Value, json};

use super::decode::{cluster_key, namespaced_key};
use super::feed::Sink;
use super::queue::{Backoff, WorkQueue};
use super::reads;
use super::runner::{Outcome, Reconciler};
use crate::objects::{ApiError, DeleteOptions, Objects, WriteOptions, meta};
use crate::registry::{ResourceInfo, Subresource};
use crate::store::{Event, KeyValue};

const NAMESPACES: &str = "/registry/core/namespaces/";
const SERVICE_ACCOUNTS: &str = "/registry/core/serviceaccounts/";

/// How often a terminating namespace that still holds objects is looked at.
const EMPTYING: Backoff = Backoff {
    base: Duration::from_millis(25),
    cap: Duration::from_secs(1),
};

/// The prefixes the controller watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Source {
    Namespaces,
    ServiceAccounts,
}

/// What the controller watches, with the tag of each.
pub(super) const SOURCES: [(&str, Source); 2] = [
    (NAMESPACES, Source::Namespaces),
    (SERVICE_ACCOUNTS, Source::ServiceAccounts),
];

/// The names of the namespaces: all the controller keeps.
#[derive(Debug, Default)]
pub(super) struct NamespaceIndex {
    names: BTreeSet<String>,
    listing: Option<BTreeSet<String>>,
}

impl NamespaceIndex {
    /// A list of `source` starts.
    pub fn begin_list(&mut self, source: Source) {
        if source == Source::Namespaces {
            self.listing = Some(BTreeSet::new());
        }
    }

    /// One listed object.
    pub fn listed(&mut self, source: Source, kv: &KeyValue) {
        if source == Source::Namespaces
            && let (Some(name), Some(listing)) =
                (cluster_key(NAMESPACES, &kv.key), self.listing.as_mut())
        {
            listing.insert(name.to_owned());
        }
    }

    /// The list is complete; returns the namespaces to sync: all of them,
    /// since changes (a deleted ServiceAccount) may have been missed.
    pub fn end_list(&mut self, source: Source) -> Vec<String> {
        if source == Source::Namespaces
            && let Some(listed) = self.listing.take()
        {
            self.names = listed;
        }
        self.names.iter().cloned().collect()
    }

    /// A change; returns the namespaces to sync.
    pub fn changed(&mut self, source: Source, event: &Event) -> Vec<String> {
        match source {
            Source::Namespaces => {
                let Some(name) = cluster_key(NAMESPACES, event.key()) else {
                    return Vec::new();
                };
                match event {
                    Event::Put { .. } => {
                        self.names.insert(name.to_owned());
                        vec![name.to_owned()]
                    }
                    Event::Delete { .. } => {
                        self.names.remove(name);
                        Vec::new()
                    }
                }
            }
            // Only the loss of the `default` account asks for work.
            Source::ServiceAccounts => match (event, namespaced_key(SERVICE_ACCOUNTS, event.key()))
            {
                (Event::Delete { .. }, Some(key)) if key.name == "default" => vec![key.namespace],
                _ => Vec::new(),
            },
        }
    }
}

/// The controller: index, queue, and the object layer it writes through.
pub(super) struct NamespaceController {
    objects: Objects,
    index: Mutex<NamespaceIndex>,
    queue: WorkQueue<String>,
}

impl NamespaceController {
    pub fn new(objects: Objects) -> Arc<Self> {
        Arc::new(NamespaceController {
            objects,
            index: Mutex::new(NamespaceIndex::default()),
            queue: WorkQueue::new(),
        })
    }

    fn index(&self) -> std::sync::MutexGuard<'_, NamespaceIndex> {
        // Every index method leaves it consistent before it can panic.
        self.index.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn sync_key(&self, name: &str) -> Result<Outcome, ApiError> {
        let registry = self.objects.registry();
        let (Some(ns_res), Some(sa_res)) = (
            registry.resolve("", "v1", "namespaces"),
            registry.resolve("", "v1", "serviceaccounts"),
        ) else {
            return Ok(Outcome::Done);
        };
        let Some(stored) = reads::get(self.objects.store().raw(), &ns_res.key(None, name)).await?
        else {
            return Ok(Outcome::Done);
        };
        let ns: Value = serde_json::from_slice(&stored.value)
            .map_err(|e| ApiError::Internal(format!("stored namespace {name}: {e}")))?;
        if !meta::is_terminating(&ns) {
            ensure_default_sa(&self.objects, &sa_res, name).await?;
            return Ok(Outcome::Done);
        }
        if finalize(&self.objects, &ns_res, &ns, name).await? {
            Ok(Outcome::Done)
        } else {
            Ok(Outcome::Requeue(EMPTYING))
        }
    }
}

async fn ensure_default_sa(objects: &Objects, sa: &ResourceInfo, ns: &str) -> Result<(), ApiError> {
    if reads::get(objects.store().raw(), &sa.key(Some(ns), "default"))
        .await?
        .is_some()
    {
        return Ok(());
    }
    let body = json!({"metadata": {"name": "default", "namespace": ns}});
    match objects
        .create(sa, Some(ns), body, &WriteOptions::default())
        .await
    {
        // The namespace may have started terminating in between.
        Ok(_)
        | Err(ApiError::AlreadyExists(_) | ApiError::Forbidden(_) | ApiError::NotFound(_)) => {
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// Deletes what the namespace holds; once it is empty, drops the
/// `kubernetes` finalizer so that the namespace itself is removed. Returns
/// whether it was empty.
async fn finalize(
    objects: &Objects,
    ns_res: &ResourceInfo,
    ns: &Value,
    name: &str,
) -> Result<bool, ApiError> {
    let mut seen = BTreeSet::new();
    let mut remaining = 0usize;
    for r in objects.registry().all() {
        if !r.namespaced || !r.verbs.allows("list") || !seen.insert(r.key_prefix()) {
            continue;
        }
        let mut to_delete = Vec::new();
        reads::for_each(objects.store().raw(), &r.scope_prefix(Some(name)), |kv| {
            remaining += 1;
            let terminating =
                serde_json::from_slice::<Value>(&kv.value).is_ok_and(|v| meta::is_terminating(&v));
            if let (false, Some((_, item))) = (terminating, kv.key.rsplit_once('/')) {
                to_delete.push(item.to_owned());
            }
        })
        .await?;
        for item in to_delete {
            match objects
                .delete(&r, Some(name), &item, &DeleteOptions::default())
                .await
            {
                Ok(_) | Err(ApiError::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
    }
    if remaining > 0 {
        return Ok(false);
    }
    let fins: Vec<Value> = ns["spec"]["finalizers"]
        .as_array()
        .map(|a| a.iter().filter(|f| *f != "kubernetes").cloned().collect())
        .unwrap_or_default();
    let body = json!({"metadata": {"name": name}, "spec": {"finalizers": fins}});
    match objects
        .update(
            ns_res,
            None,
            name,
            body,
            &WriteOptions::default(),
            Some(Subresource::Finalize),
        )
        .await
    {
        Ok(_) | Err(ApiError::NotFound(_)) => Ok(true),
        Err(e) => Err(e),
    }
}

impl Sink<Source> for NamespaceController {
    fn begin_list(&self, source: Source) {
        self.index().begin_list(source);
    }

    fn listed(&self, source: Source, kv: &KeyValue) {
        self.index().listed(source, kv);
    }

    fn end_list(&self, source: Source) {
        let names = self.index().end_list(source);
        self.queue.add_all(names);
    }

    fn changed(&self, source: Source, event: &Event) {
        let names = self.index().changed(source, event);
        self.queue.add_all(names);
    }
}

impl Reconciler for NamespaceController {
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
    use super::*;
    use crate::controllers::testing::{configmap, objects_with_namespace};

    #[tokio::test]
    async fn a_terminating_namespace_is_requeued_until_empty() {
        let objects = objects_with_namespace("t").await;
        configmap(
            &objects,
            "t",
            json!({"metadata": {"name": "held", "finalizers": ["example.com/hold"]}}),
        )
        .await;
        configmap(&objects, "t", json!({"metadata": {"name": "plain"}})).await;
        let ns_res = objects.registry().resolve("", "v1", "namespaces").unwrap();
        let cm_res = objects.registry().resolve("", "v1", "configmaps").unwrap();
        objects
            .delete(&ns_res, None, "t", &DeleteOptions::default())
            .await
            .unwrap();
        let controller = NamespaceController::new(objects.clone());
        // The plain object goes, the held one waits on its finalizer.
        assert_eq!(
            controller.sync_key("t").await.unwrap(),
            Outcome::Requeue(EMPTYING)
        );
        assert!(objects.get(&cm_res, Some("t"), "plain").await.is_err());
        assert_eq!(
            controller.sync_key("t").await.unwrap(),
            Outcome::Requeue(EMPTYING)
        );
        assert!(objects.get(&ns_res, None, "t").await.is_ok());
        let mut released = objects.get(&cm_res, Some("t"), "held").await.unwrap();
        released["metadata"]["finalizers"] = json!([]);
        objects
            .update(
                &cm_res,
                Some("t"),
                "held",
                released,
                &WriteOptions::default(),
                None,
            )
            .await
            .unwrap();
        assert_eq!(controller.sync_key("t").await.unwrap(), Outcome::Done);
        assert!(
            objects.get(&ns_res, None, "t").await.is_err(),
            "namespace removed"
        );
    }

    #[tokio::test]
    async fn an_active_namespace_gets_its_default_service_account_once() {
        let objects = objects_with_namespace("a").await;
        let controller = NamespaceController::new(objects.clone());
        assert_eq!(controller.sync_key("a").await.unwrap(), Outcome::Done);
        let sa = objects
            .registry()
            .resolve("", "v1", "serviceaccounts")
            .unwrap();
        let first = objects.get(&sa, Some("a"), "default").await.unwrap();
        assert_eq!(controller.sync_key("a").await.unwrap(), Outcome::Done);
        let second = objects.get(&sa, Some("a"), "default").await.unwrap();
        assert_eq!(first["metadata"]["uid"], second["metadata"]["uid"]);
        assert_eq!(controller.sync_key("gone").await.unwrap(), Outcome::Done);
    }

    #[test]
    fn only_namespace_changes_and_default_account_deletions_queue_work() {
        use bytes::Bytes;
        let kv = |key: &str| KeyValue {
            key: key.to_owned(),
            value: Bytes::from_static(b"{}"),
            create_revision: 1,
            mod_revision: 1,
        };
        let mut index = NamespaceIndex::default();
        let put = |key: &str| Event::Put {
            kv: kv(key),
            prev: None,
        };
        let del = |key: &str| Event::Delete { kv: kv(key) };
        assert_eq!(
            index.changed(Source::Namespaces, &put("/registry/core/namespaces/a")),
            vec!["a".to_string()]
        );
        let sa = "/registry/core/serviceaccounts/a/default";
        assert!(index.changed(Source::ServiceAccounts, &put(sa)).is_empty());
        assert_eq!(
            index.changed(Source::ServiceAccounts, &del(sa)),
            vec!["a".to_string()]
        );
        let other = "/registry/core/serviceaccounts/a/builder";
        assert!(
            index
                .changed(Source::ServiceAccounts, &del(other))
                .is_empty()
        );
        assert!(
            index
                .changed(Source::Namespaces, &del("/registry/core/namespaces/a"))
                .is_empty()
        );
        index.begin_list(Source::Namespaces);
        index.listed(Source::Namespaces, &kv("/registry/core/namespaces/b"));
        assert_eq!(index.end_list(Source::Namespaces), vec!["b".to_string()]);
    }
}
