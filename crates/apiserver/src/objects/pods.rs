//! Pod verbs beyond the generic ones: `pods/binding` (what a scheduler posts
//! to put a pod on a node) and graceful deletion of pods on the simulated
//! data plane's nodes (`cluster::pod_deletion` decides; the simulated
//! kubelet removes the pod once its containers "stopped").

use k8s_openapi::api::core::v1::Pod;
use serde_json::{Value, json};

use super::storage::StorageError;
use super::{ApiError, Objects, Stored, Subject, WRITE_RETRIES, admission, meta, storage_failed};
use crate::cluster::pod_deletion::{PodDeletion, delete_pod};
use crate::cluster::simulation::SIMULATED_NODE_ANNOTATION;
use crate::registry::ResourceInfo;

/// Whether `r` is core/v1 pods.
pub(super) fn is_pods(r: &ResourceInfo) -> bool {
    r.group.is_empty() && r.plural == "pods"
}

impl Objects {
    /// `pods/binding`: sets `spec.nodeName` of an unbound pod and its
    /// `PodScheduled` condition, as kube-apiserver's BindingREST does.
    pub async fn bind_pod(
        &self,
        r: &ResourceInfo,
        ns: &str,
        name: &str,
        node: &str,
    ) -> Result<(), ApiError> {
        if node.is_empty() {
            return Err(ApiError::BadRequest(
                "a Binding needs target.name, the node to bind to".into(),
            ));
        }
        for _ in 0..WRITE_RETRIES {
            let current = self.read(r, Some(ns), name).await?;
            let mut pod = current.value.clone();
            if meta::is_terminating(&pod) {
                return Err(ApiError::Conflict {
                    subject: Subject::of(r, name),
                    detail: format!("pod {name} is being deleted, cannot be assigned to a host"),
                });
            }
            if let Some(bound) = pod["spec"]["nodeName"].as_str().filter(|n| !n.is_empty()) {
                return Err(ApiError::Conflict {
                    subject: Subject::of(r, name),
                    detail: format!("pod {name} is already assigned to node \"{bound}\""),
                });
            }
            pod["spec"]["nodeName"] = json!(node);
            let mut conditions: Vec<Value> = pod["status"]["conditions"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            conditions.retain(|c| c["type"] != "PodScheduled");
            conditions.push(json!({"type": "PodScheduled", "status": "True",
                "lastProbeTime": null, "lastTransitionTime": meta::now()}));
            pod["status"]["conditions"] = Value::Array(conditions);
            let key = r.key(Some(ns), name);
            match self.store.update(&key, &pod, current.mod_revision).await {
                Ok(_) => {
                    admission::after_write(self, r, &pod).await;
                    return Ok(());
                }
                Err(StorageError::Conflict) => continue,
                Err(StorageError::NotFound) => {
                    return Err(ApiError::NotFound(Subject::of(r, name)));
                }
                Err(e) => return Err(storage_failed(e)),
            }
        }
        Err(ApiError::modified(Subject::of(r, name)))
    }

    /// What a DELETE of a pod does when the pod runs on a simulated node:
    /// `Some(pod)` with `deletionTimestamp` and `deletionGracePeriodSeconds`
    /// set (or shortened) when it is to be deleted gracefully, `None` when it
    /// goes now. Pods elsewhere go now: nothing would finish their deletion.
    pub(super) async fn pod_grace(
        &self,
        current: &Stored,
        requested: Option<i64>,
    ) -> Result<Option<Value>, ApiError> {
        let Some(node) = current.value["spec"]["nodeName"]
            .as_str()
            .filter(|n| !n.is_empty())
        else {
            return Ok(None);
        };
        let node_key = format!("/registry/core/nodes/{node}");
        let simulated = self
            .store
            .get(&node_key)
            .await
            .map_err(storage_failed)?
            .is_some_and(|n| {
                n.value["metadata"]["annotations"][SIMULATED_NODE_ANNOTATION] == "true"
            });
        if !simulated {
            return Ok(None);
        }
        let Ok(pod) = serde_json::from_value::<Pod>(current.value.clone()) else {
            return Ok(None);
        };
        Ok(match delete_pod(&pod, requested, jiff::Timestamp::now()) {
            PodDeletion::Now => None,
            PodDeletion::Graceful(next) => {
                let mut obj = current.value.clone();
                if let Some(m) = meta::meta_mut(&mut obj) {
                    m.insert(
                        "deletionTimestamp".into(),
                        serde_json::to_value(&next.metadata.deletion_timestamp)
                            .map_err(|e| ApiError::Internal(e.to_string()))?,
                    );
                    m.insert(
                        "deletionGracePeriodSeconds".into(),
                        json!(next.metadata.deletion_grace_period_seconds),
                    );
                }
                Some(obj)
            }
        })
    }
}
