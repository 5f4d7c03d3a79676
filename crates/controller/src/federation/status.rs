//! Writes to the federated Services themselves: their shard status
//! (`status.loadBalancer.ingress`, the shards and errors annotations) and
//! fedmesh's finalizer. One write at a time per Service and kind, the latest
//! wins, failures retried with backoff, only while the claim is current.

use std::collections::HashMap;
use std::time::Duration;

use fedmesh_core::FederatedKey;
use fedmesh_core::federation::ServiceShards;
use futures::StreamExt;
use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;
use k8s_openapi::api::core::v1::Service;
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
}

/// Which of a Service's writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Kind {
    Status,
    Finalizers,
}

impl Write {
    fn key(&self) -> (FederatedKey, Kind) {
        match self {
            Write::Status(shards) => (shards.service.clone(), Kind::Status),
            Write::Finalizers { service, .. } => (service.clone(), Kind::Finalizers),
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
    };
    let result = match result {
        // The Service went meanwhile: nothing to write.
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 409 => Err(format!("409 Conflict: {}", s.message)),
        other => other.map_err(|e| chain(&e)),
    };
    (job, result)
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
