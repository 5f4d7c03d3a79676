//! The deployment, replicaset, statefulset and daemonset controllers
//! (`cluster::workloads` and `cluster::sets` decide), per workload key.
//! Events are routed without an index: a workload event queues that object,
//! a ReplicaSet or pod event also queues its controller (from its
//! ownerReferences, old and new), and a node event queues every DaemonSet.
//! A sync reads the object and its namespace's ReplicaSets or pods (and for
//! a DaemonSet, the nodes) from the store.

use std::sync::Arc;

use futures::future::BoxFuture;
use serde_json::Value;

use super::decode::namespaced_key;
use super::feed::Sink;
use super::queue::WorkQueue;
use super::reads;
use super::runner::{Outcome, Reconciler};
use crate::cluster::ObjectKey;
use crate::cluster::sets::{self, SetNode, Step};
use crate::cluster::workloads::{self as plan, BURST, POD_TEMPLATE_HASH};
use crate::objects::{ApiError, DeleteOptions, Objects, WriteOptions, meta};
use crate::registry::{ResourceInfo, Subresource};
use crate::store::{Event, KeyValue};

const DEPLOYMENTS: &str = "/registry/apps/deployments/";
const REPLICASETS: &str = "/registry/apps/replicasets/";
const STATEFULSETS: &str = "/registry/apps/statefulsets/";
const DAEMONSETS: &str = "/registry/apps/daemonsets/";
const PODS: &str = "/registry/core/pods/";
const NODES: &str = "/registry/core/nodes/";

/// The prefixes the controller watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Source {
    Deployments,
    ReplicaSets,
    StatefulSets,
    DaemonSets,
    Pods,
    Nodes,
}

/// What the controller watches, with the tag of each.
pub(super) const SOURCES: [(&str, Source); 6] = [
    (DEPLOYMENTS, Source::Deployments),
    (REPLICASETS, Source::ReplicaSets),
    (STATEFULSETS, Source::StatefulSets),
    (DAEMONSETS, Source::DaemonSets),
    (PODS, Source::Pods),
    (NODES, Source::Nodes),
];

/// A workload object, or every DaemonSet (after a node changed).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) enum Key {
    Deployment(ObjectKey),
    ReplicaSet(ObjectKey),
    StatefulSet(ObjectKey),
    DaemonSet(ObjectKey),
    EveryDaemonSet,
}

/// The key of the workload controlling an object stored at `key`.
fn controller_key(key: &ObjectKey, value: &[u8]) -> Option<Key> {
    if !super::decode::contains(value, b"\"controller\":true") {
        return None;
    }
    let v: Value = serde_json::from_slice(value).ok()?;
    let (kind, name, _) = plan::controller_of(&v)?;
    let owner = ObjectKey::new(key.namespace.clone(), name);
    match kind {
        "Deployment" => Some(Key::Deployment(owner)),
        "ReplicaSet" => Some(Key::ReplicaSet(owner)),
        "StatefulSet" => Some(Key::StatefulSet(owner)),
        "DaemonSet" => Some(Key::DaemonSet(owner)),
        _ => None,
    }
}

/// The controller.
pub(super) struct WorkloadController {
    objects: Objects,
    queue: WorkQueue<Key>,
}

/// A stored object, whole.
fn whole(value: &[u8]) -> Option<Value> {
    serde_json::from_slice(value).ok()
}

fn manager(name: &str) -> WriteOptions {
    WriteOptions {
        field_manager: Some(name.into()),
        ..WriteOptions::default()
    }
}

impl WorkloadController {
    pub fn new(objects: Objects) -> Arc<Self> {
        Arc::new(WorkloadController {
            objects,
            queue: WorkQueue::new(),
        })
    }

    fn resource(&self, group: &str, plural: &str) -> Result<Arc<ResourceInfo>, ApiError> {
        self.objects
            .registry()
            .resolve(group, "v1", plural)
            .ok_or(ApiError::NoRoute)
    }

    async fn get(&self, r: &ResourceInfo, key: &ObjectKey) -> Result<Option<Value>, ApiError> {
        match self.objects.get(r, Some(&key.namespace), &key.name).await {
            Ok(v) => Ok(Some(v)),
            Err(ApiError::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Objects under `prefix` in the namespace controlled by `uid`, as
    /// `read` makes them of their stored bytes.
    async fn owned(
        &self,
        prefix: &str,
        ns: &str,
        uid: &str,
        read: fn(&[u8]) -> Option<Value>,
    ) -> Result<Vec<Value>, ApiError> {
        let mut out = Vec::new();
        let needle = format!("\"{uid}\"");
        reads::for_each(
            self.objects.store().raw(),
            &format!("{prefix}{ns}/"),
            |kv| {
                if super::decode::contains(&kv.value, needle.as_bytes())
                    && let Some(v) = read(&kv.value)
                    && plan::controlled_by(&v, uid)
                {
                    let mut v = v;
                    v["metadata"]["resourceVersion"] = Value::String(kv.mod_revision.to_string());
                    out.push(v);
                }
            },
        )
        .await?;
        Ok(out)
    }

    async fn set_replicas(
        &self,
        r: &ResourceInfo,
        rs: &Value,
        replicas: i64,
    ) -> Result<(), ApiError> {
        if plan::spec_replicas(rs) == replicas {
            return Ok(());
        }
        let mut next = rs.clone();
        next["spec"]["replicas"] = replicas.into();
        let ns = rs["metadata"]["namespace"].as_str().unwrap_or_default();
        let name = rs["metadata"]["name"].as_str().unwrap_or_default();
        self.objects
            .update(
                r,
                Some(ns),
                name,
                next,
                &manager("deployment-controller"),
                None,
            )
            .await?;
        Ok(())
    }

    async fn write_status(
        &self,
        r: &ResourceInfo,
        obj: &Value,
        status: Value,
        manager_name: &str,
    ) -> Result<(), ApiError> {
        if obj["status"] == status {
            return Ok(());
        }
        let mut next = obj.clone();
        next["status"] = status;
        let ns = obj["metadata"]["namespace"].as_str().unwrap_or_default();
        let name = obj["metadata"]["name"].as_str().unwrap_or_default();
        match self
            .objects
            .update(
                r,
                Some(ns),
                name,
                next,
                &manager(manager_name),
                Some(Subresource::Status),
            )
            .await
        {
            Ok(_) | Err(ApiError::NotFound(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn sync_deployment(&self, key: &ObjectKey) -> Result<Outcome, ApiError> {
        let deployments = self.resource("apps", "deployments")?;
        let replicasets = self.resource("apps", "replicasets")?;
        let Some(d) = self.get(&deployments, key).await? else {
            return Ok(Outcome::Done);
        };
        if meta::is_terminating(&d) {
            return Ok(Outcome::Done);
        }
        let uid = d["metadata"]["uid"].as_str().unwrap_or_default().to_owned();
        let mut all = self.owned(REPLICASETS, &key.namespace, &uid, whole).await?;
        all.sort_by_key(|rs| {
            (
                plan::revision(rs),
                rs["metadata"]["creationTimestamp"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            )
        });
        let hash = plan::template_hash(&d["spec"]["template"]);
        let (new, old): (Vec<Value>, Vec<Value>) = all
            .iter()
            .cloned()
            .partition(|rs| rs["metadata"]["labels"][POD_TEMPLATE_HASH] == hash.as_str());
        let Some(new) = new.into_iter().next() else {
            let placeholder = serde_json::json!({"spec": {"replicas": 0}});
            let replicas = plan::scale(&d, &placeholder, &old).new;
            let revision = all.iter().map(plan::revision).max().unwrap_or(0) + 1;
            let rs = plan::new_replica_set(&d, &hash, replicas, revision);
            match self
                .objects
                .create(
                    &replicasets,
                    Some(&key.namespace),
                    rs,
                    &manager("deployment-controller"),
                )
                .await
            {
                Ok(_) | Err(ApiError::AlreadyExists(_)) => {}
                Err(e) => return Err(e),
            }
            return Ok(Outcome::Done);
        };
        if d["spec"]["paused"] != true {
            let step = plan::scale(&d, &new, &old);
            for (rs, replicas) in old.iter().zip(&step.old) {
                self.set_replicas(&replicasets, rs, *replicas).await?;
            }
            self.set_replicas(&replicasets, &new, step.new).await?;
            self.clean_up(&d, &replicasets, &old).await?;
        }
        let status = plan::deployment_status(&d, Some(&new), &all, &meta::now());
        self.write_status(&deployments, &d, status, "deployment-controller")
            .await?;
        Ok(Outcome::Done)
    }

    /// Deletes old, empty ReplicaSets beyond `revisionHistoryLimit`.
    async fn clean_up(&self, d: &Value, r: &ResourceInfo, old: &[Value]) -> Result<(), ApiError> {
        let limit = d["spec"]["revisionHistoryLimit"]
            .as_i64()
            .unwrap_or(10)
            .max(0);
        let empty: Vec<&Value> = old
            .iter()
            .filter(|rs| {
                plan::spec_replicas(rs) == 0 && rs["status"]["replicas"].as_i64().unwrap_or(0) == 0
            })
            .collect();
        let extra = empty
            .len()
            .saturating_sub(usize::try_from(limit).unwrap_or(0));
        for rs in empty.into_iter().take(extra) {
            let ns = rs["metadata"]["namespace"].as_str().unwrap_or_default();
            let name = rs["metadata"]["name"].as_str().unwrap_or_default();
            match self
                .objects
                .delete(r, Some(ns), name, &DeleteOptions::default())
                .await
            {
                Ok(_) | Err(ApiError::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    async fn sync_replica_set(&self, key: &ObjectKey) -> Result<Outcome, ApiError> {
        let replicasets = self.resource("apps", "replicasets")?;
        let pods_r = self.resource("", "pods")?;
        let Some(rs) = self.get(&replicasets, key).await? else {
            return Ok(Outcome::Done);
        };
        if meta::is_terminating(&rs) {
            return Ok(Outcome::Done);
        }
        let uid = rs["metadata"]["uid"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let pods: Vec<Value> = self
            .owned(PODS, &key.namespace, &uid, super::decode::pod_summary)
            .await?
            .into_iter()
            .filter(plan::is_active)
            .collect();
        let want = usize::try_from(plan::spec_replicas(&rs)).unwrap_or(0);
        let opts = manager("replicaset-controller");
        let mut failed = None;
        if pods.len() < want {
            let missing = (want - pods.len()).min(BURST);
            let template = plan::pod_for(&rs);
            for chunk in (0..missing).collect::<Vec<_>>().chunks(50) {
                let creates = chunk.iter().map(|_| {
                    self.objects
                        .create(&pods_r, Some(&key.namespace), template.clone(), &opts)
                });
                for r in futures::future::join_all(creates).await {
                    if let Err(e) = r {
                        failed.get_or_insert(e);
                    }
                }
            }
        } else if pods.len() > want {
            let excess = (pods.len() - want).min(BURST);
            let victims = plan::pods_to_delete(&pods, excess);
            let delete_options = DeleteOptions::default();
            let deletes = victims.iter().map(|p| {
                let name = p["metadata"]["name"].as_str().unwrap_or_default();
                self.objects
                    .delete(&pods_r, Some(&key.namespace), name, &delete_options)
            });
            for r in futures::future::join_all(deletes).await {
                match r {
                    Ok(_) | Err(ApiError::NotFound(_)) => {}
                    Err(e) => {
                        failed.get_or_insert(e);
                    }
                }
            }
        }
        let status = plan::replica_set_status(&rs, &pods);
        self.write_status(&replicasets, &rs, status, "replicaset-controller")
            .await?;
        match failed {
            Some(e) => Err(e),
            None => Ok(Outcome::Done),
        }
    }
}

impl WorkloadController {
    /// Makes the pod writes `steps` asks for (at most [`BURST`] per sync).
    async fn apply_steps(
        &self,
        namespace: &str,
        steps: Vec<Step>,
        manager_name: &str,
    ) -> Result<(), ApiError> {
        let pods_r = self.resource("", "pods")?;
        let opts = manager(manager_name);
        let delete_options = DeleteOptions::default();
        let writes = steps.iter().take(BURST).map(|step| {
            let pods_r = pods_r.clone();
            let opts = &opts;
            let delete_options = &delete_options;
            async move {
                match step {
                    Step::Create(pod) => match self
                        .objects
                        .create(&pods_r, Some(namespace), pod.clone(), opts)
                        .await
                    {
                        // A StatefulSet pod's name is fixed: one still being
                        // deleted is waited for by the next sync.
                        Ok(_) | Err(ApiError::AlreadyExists(_)) => Ok(()),
                        Err(e) => Err(e),
                    },
                    Step::Delete(name) => match self
                        .objects
                        .delete(&pods_r, Some(namespace), name, delete_options)
                        .await
                    {
                        Ok(_) | Err(ApiError::NotFound(_)) => Ok(()),
                        Err(e) => Err(e),
                    },
                }
            }
        });
        futures::future::join_all(writes)
            .await
            .into_iter()
            .collect::<Result<Vec<()>, ApiError>>()
            .map(|_| ())
    }

    async fn sync_stateful_set(&self, key: &ObjectKey) -> Result<Outcome, ApiError> {
        let statefulsets = self.resource("apps", "statefulsets")?;
        let Some(set) = self.get(&statefulsets, key).await? else {
            return Ok(Outcome::Done);
        };
        if meta::is_terminating(&set) {
            return Ok(Outcome::Done);
        }
        let uid = set["metadata"]["uid"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let pods = self.owned(PODS, &key.namespace, &uid, whole).await?;
        let steps = sets::stateful_steps(&set, &pods);
        let result = self
            .apply_steps(&key.namespace, steps, "statefulset-controller")
            .await;
        let status = sets::stateful_status(&set, &pods);
        self.write_status(&statefulsets, &set, status, "statefulset-controller")
            .await?;
        result.map(|()| Outcome::Done)
    }

    async fn sync_daemon_set(&self, key: &ObjectKey) -> Result<Outcome, ApiError> {
        let daemonsets = self.resource("apps", "daemonsets")?;
        let Some(ds) = self.get(&daemonsets, key).await? else {
            return Ok(Outcome::Done);
        };
        if meta::is_terminating(&ds) {
            return Ok(Outcome::Done);
        }
        let mut nodes = Vec::new();
        reads::for_each(self.objects.store().raw(), NODES, |kv| {
            if let Ok(node) = serde_json::from_slice::<Value>(&kv.value) {
                nodes.push(SetNode::of(&ds, &node));
            }
        })
        .await?;
        let uid = ds["metadata"]["uid"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let pods = self.owned(PODS, &key.namespace, &uid, whole).await?;
        let steps = sets::daemon_steps(&ds, &nodes, &pods);
        let result = self
            .apply_steps(&key.namespace, steps, "daemonset-controller")
            .await;
        let status = sets::daemon_status(&ds, &nodes, &pods);
        self.write_status(&daemonsets, &ds, status, "daemonset-controller")
            .await?;
        result.map(|()| Outcome::Done)
    }

    async fn queue_every_daemon_set(&self) -> Result<Outcome, ApiError> {
        let mut keys = Vec::new();
        reads::for_each(self.objects.store().raw(), DAEMONSETS, |kv| {
            keys.extend(namespaced_key(DAEMONSETS, &kv.key).map(Key::DaemonSet));
        })
        .await?;
        self.queue.add_all(keys);
        Ok(Outcome::Done)
    }
}

impl Sink<Source> for WorkloadController {
    fn begin_list(&self, _: Source) {}

    fn listed(&self, source: Source, kv: &KeyValue) {
        let keys = match source {
            Source::Deployments => namespaced_key(DEPLOYMENTS, &kv.key)
                .map(Key::Deployment)
                .into_iter()
                .collect(),
            Source::ReplicaSets => namespaced_key(REPLICASETS, &kv.key)
                .map(Key::ReplicaSet)
                .into_iter()
                .collect(),
            Source::StatefulSets => namespaced_key(STATEFULSETS, &kv.key)
                .map(Key::StatefulSet)
                .into_iter()
                .collect(),
            Source::DaemonSets => namespaced_key(DAEMONSETS, &kv.key)
                .map(Key::DaemonSet)
                .into_iter()
                .collect(),
            Source::Pods | Source::Nodes => Vec::new(),
        };
        self.queue.add_all(keys);
    }

    fn end_list(&self, _: Source) {}

    fn changed(&self, source: Source, event: &Event) {
        let prefix = match source {
            Source::Deployments => DEPLOYMENTS,
            Source::ReplicaSets => REPLICASETS,
            Source::StatefulSets => STATEFULSETS,
            Source::DaemonSets => DAEMONSETS,
            Source::Pods => PODS,
            Source::Nodes => {
                self.queue.add_all(vec![Key::EveryDaemonSet]);
                return;
            }
        };
        let Some(key) = namespaced_key(prefix, event.key()) else {
            return;
        };
        let mut keys = Vec::new();
        match source {
            Source::Deployments => keys.push(Key::Deployment(key.clone())),
            Source::ReplicaSets => keys.push(Key::ReplicaSet(key.clone())),
            Source::StatefulSets => keys.push(Key::StatefulSet(key.clone())),
            Source::DaemonSets => keys.push(Key::DaemonSet(key.clone())),
            Source::Pods | Source::Nodes => {}
        }
        let (value, prev) = match event {
            Event::Put { kv, prev } => (Some(&kv.value[..]), prev.as_ref().map(|p| &p.value[..])),
            Event::Delete { kv } => (None, Some(&kv.value[..])),
        };
        for v in value.into_iter().chain(prev) {
            if let Some(owner) = controller_key(&key, v)
                && !keys.contains(&owner)
            {
                keys.push(owner);
            }
        }
        self.queue.add_all(keys);
    }
}

impl Reconciler for WorkloadController {
    type Key = Key;

    fn queue(&self) -> &WorkQueue<Key> {
        &self.queue
    }

    fn sync<'a>(&'a self, key: &'a Key) -> BoxFuture<'a, Result<Outcome, ApiError>> {
        Box::pin(async move {
            match key {
                Key::Deployment(k) => self.sync_deployment(k).await,
                Key::ReplicaSet(k) => self.sync_replica_set(k).await,
                Key::StatefulSet(k) => self.sync_stateful_set(k).await,
                Key::DaemonSet(k) => self.sync_daemon_set(k).await,
                Key::EveryDaemonSet => self.queue_every_daemon_set().await,
            }
        })
    }
}
