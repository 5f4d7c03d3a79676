//! Writes each federated Service's shard status: `status.loadBalancer.ingress`
//! and the shards and errors annotations. One key at a time per Service, the
//! latest status wins, failures retried with backoff, only while the claim
//! is current.

use std::collections::HashMap;
use std::time::Duration;

use fedmesh_core::FederatedKey;
use fedmesh_core::federation::ServiceShards;
use futures::StreamExt;
use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;
use k8s_openapi::api::core::v1::Service;
use kube::api::{Api, Patch, PatchParams};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::runtime::claim::Claim;
use crate::runtime::errors::chain;
use crate::runtime::queue::Queue;

/// Status writes at once.
const CONCURRENCY: usize = 16;

/// Writes statuses from `inputs` until it closes.
pub async fn run(
    client: kube::Client,
    mut inputs: mpsc::UnboundedReceiver<ServiceShards>,
    claim: Claim,
    backoff_base: Duration,
    backoff_max: Duration,
) {
    let mut pending: HashMap<FederatedKey, ServiceShards> = HashMap::new();
    let mut queue = Queue::new(backoff_base, backoff_max);
    let mut running: FuturesUnordered<BoxFuture<'static, (ServiceShards, Result<(), String>)>> =
        FuturesUnordered::new();
    let mut watching = claim.clone();
    loop {
        while claim.is_current() && running.len() < CONCURRENCY {
            let Some(key) = queue.pop() else { break };
            let Some(shards) = pending.remove(&key) else {
                queue.done(key, true);
                continue;
            };
            running.push(Box::pin(write(client.clone(), claim.clone(), shards)));
        }
        let retry = queue.next_retry();
        tokio::select! {
            input = inputs.recv() => match input {
                Some(shards) => {
                    queue.add(shards.service.clone());
                    pending.insert(shards.service.clone(), shards);
                }
                None => return,
            },
            Some((shards, result)) = running.next(), if !running.is_empty() => {
                let key = shards.service.clone();
                match result {
                    Ok(()) => queue.done(key, true),
                    Err(message) => {
                        tracing::warn!(service = %key, "writing the federated Service's status failed; retrying: {message}");
                        // Retried unless a newer status is waiting already.
                        pending.entry(key.clone()).or_insert(shards);
                        queue.done(key, false);
                    }
                }
            }
            () = watching.changed() => {}
            () = sleep_until(retry) => queue.wake(Instant::now()),
        }
    }
}

/// Writes one Service's status: the annotations, then the status subresource.
async fn write(
    client: kube::Client,
    claim: Claim,
    shards: ServiceShards,
) -> (ServiceShards, Result<(), String>) {
    let key = shards.service.clone();
    if claim.check().is_err() {
        return (shards, Err("this replica no longer leads".into()));
    }
    let api = Api::<Service>::namespaced(client, &key.namespace);
    let params = PatchParams::default();
    let metadata = api
        .patch(&key.name, &params, &Patch::Merge(shards.metadata_patch()))
        .await;
    let result = match metadata {
        Ok(_) => api
            .patch_status(&key.name, &params, &Patch::Merge(shards.status_patch()))
            .await
            .map(|_| ()),
        Err(error) => Err(error),
    };
    let result = match result {
        // The Service went meanwhile: nothing to show.
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        other => other.map_err(|e| chain(&e)),
    };
    (shards, result)
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
