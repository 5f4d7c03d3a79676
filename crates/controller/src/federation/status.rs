//! Writes to the federated Services themselves: their shard status
//! (`status.loadBalancer.ingress`, the shards and errors annotations),
//! fedmesh's finalizer, and status conditions (the DNS writer's
//! `DNSRecordsWritten`). One write at a time per Service and kind, the
//! latest wins, failures retried with backoff, only while the claim is
//! current.

use std::collections::HashMap;
use std::time::Duration;

use fedmesh_core::FederatedKey;
use fedmesh_core::conditions::set_condition;
use fedmesh_core::federation::ServiceShards;
use futures::StreamExt;
use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::runtime::claim::Claim;
use crate::runtime::errors::chain;
use crate::runtime::queue::Queue;

/// Writes at once.
const CONCURRENCY: usize = 16;

/// A write to a federated Service.
#[derive(Debug, Clone)]
pub enum Write {
    /// Show its shards.
    Status(ServiceShards),
    /// Set its finalizers to `finalizers`, if it is still at
    /// `resource_version` (someone else's finalizer added meanwhile is kept:
    /// the write fails and the engine asks again with what it then sees).
    Finalizers {
        /// The Service.
        service: FederatedKey,
        /// Every finalizer it should have.
        finalizers: Vec<String>,
        /// The version the list was computed from.
        resource_version: Option<String>,
    },
    /// Set one condition of its status, by type: the conditions others
    /// wrote are kept, and so is the transition time when the status
    /// stays (read, merged, written back at the version read; a conflict
    /// is retried with what is then there).
    Condition {
        /// The Service.
        service: FederatedKey,
        /// The condition (its `lastTransitionTime`: now).
        condition: Condition,
    },
}

/// Which of a Service's writes (conditions: one per type).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Kind {
    Status,
    Finalizers,
    Condition(String),
}

impl Write {
    fn key(&self) -> (FederatedKey, Kind) {
        match self {
            Write::Status(shards) => (shards.service.clone(), Kind::Status),
            Write::Finalizers { service, .. } => (service.clone(), Kind::Finalizers),
            Write::Condition { service, condition } => {
                (service.clone(), Kind::Condition(condition.type_.clone()))
            }
        }
    }
}

/// Writes what comes from `inputs` until it closes.
pub async fn run(
    client: kube::Client,
    mut inputs: mpsc::UnboundedReceiver<Write>,
    claim: Claim,
    backoff_base: Duration,
    backoff_max: Duration,
) {
    let mut pending: HashMap<(FederatedKey, Kind), Write> = HashMap::new();
    let mut queue = Queue::new(backoff_base, backoff_max);
    let mut running: FuturesUnordered<BoxFuture<'static, (Write, Result<(), String>)>> =
        FuturesUnordered::new();
    let mut watching = claim.clone();
    loop {
        while claim.is_current() && running.len() < CONCURRENCY {
            let Some(key) = queue.pop() else { break };
            let Some(job) = pending.remove(&key) else {
                queue.done(key, true);
                continue;
            };
            running.push(Box::pin(write(client.clone(), claim.clone(), job)));
        }
        let retry = queue.next_retry();
        tokio::select! {
            input = inputs.recv() => match input {
                Some(job) => {
                    let key = job.key();
                    queue.add(key.clone());
                    pending.insert(key, job);
                }
                None => return,
            },
            Some((job, result)) = running.next(), if !running.is_empty() => {
                let key = job.key();
                match result {
                    Ok(()) => queue.done(key, true),
                    // A finalizer list computed from an older version is
                    // not retried: the engine sends a fresh one when it sees
                    // the new version.
                    Err(message) if matches!(job, Write::Finalizers { .. }) && message.starts_with("409") => {
                        queue.done(key, true);
                    }
                    Err(message) => {
                        tracing::warn!(service = %key.0, "writing the federated Service failed; retrying: {message}");
                        // Retried unless a newer write is waiting already.
                        pending.entry(key.clone()).or_insert(job);
                        queue.done(key, false);
                    }
                }
            }
            () = watching.changed() => {}
            () = sleep_until(retry) => queue.wake(Instant::now()),
        }
    }
}

/// One write; gives the job back with its outcome.
async fn write(client: kube::Client, claim: Claim, job: Write) -> (Write, Result<(), String>) {
    if claim.check().is_err() {
        return (job, Err("this replica no longer leads".into()));
    }
    let (service, _) = job.key();
    let api = Api::<Service>::namespaced(client, &service.namespace);
    let params = PatchParams::default();
    let result = match &job {
        Write::Status(shards) => {
            match api
                .patch(
                    &service.name,
                    &params,
                    &Patch::Merge(shards.metadata_patch()),
                )
                .await
            {
                Ok(_) => api
                    .patch_status(&service.name, &params, &Patch::Merge(shards.status_patch()))
                    .await
                    .map(|_| ()),
                Err(error) => Err(error),
            }
        }
        Write::Finalizers {
            finalizers,
            resource_version,
            ..
        } => {
            let patch = json!({"metadata": {
                "finalizers": finalizers,
                "resourceVersion": resource_version,
            }});
            api.patch(&service.name, &params, &Patch::Merge(patch))
                .await
                .map(|_| ())
        }
        Write::Condition { condition, .. } => {
            write_condition(&api, &service.name, condition, &params).await
        }
    };
    let result = match result {
        // The Service went meanwhile: nothing to write.
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 409 => Err(format!("409 Conflict: {}", s.message)),
        other => other.map_err(|e| chain(&e)),
    };
    (job, result)
}

/// Sets `condition` among the Service's conditions. A JSON merge patch
/// replaces a whole list, so the merged list is written with the
/// resourceVersion it was computed from: someone else's condition written
/// meanwhile fails the write (409) instead of being lost.
async fn write_condition(
    api: &Api<Service>,
    name: &str,
    condition: &Condition,
    params: &PatchParams,
) -> kube::Result<()> {
    let current = api.get_status(name).await?;
    let conditions = current
        .status
        .and_then(|s| s.conditions)
        .unwrap_or_default();
    let Some(conditions) = set_condition(&conditions, condition.clone()) else {
        return Ok(());
    };
    let patch = json!({
        "metadata": {"resourceVersion": current.metadata.resource_version},
        "status": {"conditions": conditions},
    });
    api.patch_status(name, params, &Patch::Merge(patch))
        .await
        .map(|_| ())
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
