//! fedmesh's controller: one runtime every feature shares, and the features
//! on top of it.
//!
//! - [`runtime`]: the watch adapter, the `ClusterSet` of connections to other
//!   clusters, the leadership `Claim`, the keyed writer, Warning Events;
//! - [`mesh`]: federated services (Calico's semantics) on that runtime;
//! - [`identity`]: federated endpoint identity (remote pods and host
//!   endpoints mirrored as Calico network sets or Cilium CIDR groups);
//! - [`federation`]: the Federation v1 control plane (member clusters,
//!   Service propagation, shard health) on the same runtime;
//! - [`dns`]: federated service DNS from the federation's live state: the
//!   authoritative server's records and an external provider's writer.
//! - [`in_cluster_dns`]: a member's federated Service copies, slices and
//!   Nodes watched into in-cluster DNS records (`fedmesh dns serve --in-cluster`).
//!
//! `fedmesh controller` runs the mesh and identity on one `ClusterSet`: each
//! remote is connected, probed and reported on once, and every feature
//! watches it over that connection.
//!
//! Every semantic decision is made in `fedmesh-core`; this crate only moves
//! objects between the API servers and the core's indexes.

pub mod config;
pub mod dns;
pub mod federation;
pub mod identity;
pub mod in_cluster_dns;
pub mod mesh;
pub mod metrics;
pub mod runtime;

use std::future::Future;
use std::sync::Arc;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, PostParams};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

pub use config::{ControllerConfig, IdentityOutputs};
pub use metrics::Metrics;
use runtime::claim::{Claim, Elector};
use runtime::clusters::{ClusterSet, ClusterSetConfig};
use runtime::errors::{Failure, chain};
use runtime::events::Warning;
use runtime::{FeatureHealth, Tasks};

/// Why the controller stopped.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The controller's namespace is missing and cannot be created.
    #[error(
        "namespace {namespace:?} does not exist and this identity may not create it ({detail}); \
         create it (kubectl create namespace {namespace}) or pass --namespace"
    )]
    Namespace {
        /// The namespace.
        namespace: String,
        /// What the API server said.
        detail: String,
    },
    /// Checking the controller's namespace failed.
    #[error("cannot check namespace {namespace:?} on the local API server: {detail}")]
    CheckNamespace {
        /// The namespace.
        namespace: String,
        /// What went wrong.
        detail: String,
    },
    /// A task that should run forever stopped.
    #[error("{0}")]
    TaskStopped(String),
}

/// Runs the controller against the local cluster behind `client` until
/// `shutdown` completes; then stops every writer and releases the Lease.
pub async fn run(
    client: kube::Client,
    config: ControllerConfig,
    metrics: Metrics,
    shutdown: impl Future<Output = ()>,
) -> Result<(), RunError> {
    run_feature(
        client,
        config,
        metrics,
        shutdown,
        "fedmesh-controller",
        start_mesh_and_identity,
    )
    .await
}

/// Starts federated services and, when an output is on, endpoint identity,
/// on one `ClusterSet` of the RemoteClusterConfigurations' clusters: each
/// remote is connected, probed and reported on once, and both features
/// watch it over that connection.
fn start_mesh_and_identity(
    tasks: &mut Tasks,
    client: kube::Client,
    config: &ControllerConfig,
    claim: Claim,
    metrics: Metrics,
    warnings_tx: mpsc::Sender<Warning>,
) -> FeatureHealth {
    // The features are made before the ClusterSet that feeds them, so its
    // `settled` reaches them through this channel.
    let (settled_tx, settled) = watch::channel(false);
    let (mut health, mesh_feature) = mesh::start(
        tasks,
        client.clone(),
        config,
        claim.clone(),
        metrics.clone(),
        warnings_tx.clone(),
        settled.clone(),
    );
    let mut features = vec![mesh_feature];
    if config.identity_outputs.any() {
        let (feature, writers) = identity::start(
            tasks,
            client.clone(),
            config,
            claim.clone(),
            metrics.clone(),
            warnings_tx.clone(),
            settled,
        );
        features.push(feature);
        health.writers.push(writers);
    }
    let clusters = ClusterSet::new(
        client.clone(),
        ClusterSetConfig::from(config),
        features,
        Arc::new(mesh::remotes::RemoteStatuses::new(
            client.clone(),
            warnings_tx,
        )),
        claim,
        metrics,
    );
    let mut cluster_settled = clusters.settled();
    tasks.spawn("remote clusters settled", async move {
        loop {
            settled_tx.send_replace(*cluster_settled.borrow_and_update());
            if cluster_settled.changed().await.is_err() {
                // The ClusterSet is gone with its task, which says so.
                std::future::pending::<()>().await;
            }
        }
    });
    tasks.spawn(
        "remote cluster configurations",
        mesh::remotes::run(client.clone(), config.namespace.clone(), clusters),
    );
    health
}

/// Runs one feature (started by `start`, publishing Events as `controller`)
/// with what every controller process has: the namespace check, leader
/// election, metrics and health, Warning Events and readiness; until
/// `shutdown`, then writers stop first and the Lease is released.
pub async fn run_feature(
    client: kube::Client,
    config: ControllerConfig,
    metrics: Metrics,
    shutdown: impl Future<Output = ()>,
    controller: &'static str,
    start: impl FnOnce(
        &mut Tasks,
        kube::Client,
        &ControllerConfig,
        Claim,
        Metrics,
        mpsc::Sender<Warning>,
    ) -> FeatureHealth,
) -> Result<(), RunError> {
    ensure_namespace(&client, &config.namespace).await?;
    let (mut elector, claim) = Elector::new(
        Api::<Lease>::namespaced(client.clone(), &config.namespace),
        config.clone(),
    );
    let mut tasks = Tasks::default();
    if let Some(addr) = config.metrics_addr {
        let metrics = metrics.clone();
        tasks.spawn("metrics server", async move {
            if let Err(error) = metrics.serve(addr).await {
                tracing::error!(%addr, "the metrics server failed: {error}");
            }
            // Health endpoints matter less than the writes: keep going.
            std::future::pending::<()>().await;
        });
    }
    metrics.follow_claim(claim.clone());
    let (warnings_tx, warnings_rx) = mpsc::channel(256);
    tasks.spawn(
        "warning events",
        runtime::events::run(
            client.clone(),
            controller,
            config.identity.clone(),
            warnings_rx,
            claim.clone(),
        ),
    );
    let health = start(
        &mut tasks,
        client.clone(),
        &config,
        claim.clone(),
        metrics.clone(),
        warnings_tx,
    );
    tasks.spawn(
        "readiness",
        readiness(client, config.clone(), claim, metrics, health),
    );

    let outcome = tokio::select! {
        () = shutdown => {
            tracing::info!("controller stopping");
            Ok(())
        }
        stopped = tasks.ended() => Err(RunError::TaskStopped(stopped)),
        () = elector.run() => Err(RunError::TaskStopped("the leader election stopped".into())),
    };
    // Writers first, so nothing is written once the Lease is released.
    tasks.shutdown().await;
    elector.release().await;
    outcome
}

/// Makes sure the controller's namespace exists (its Lease lives there),
/// creating it when allowed.
async fn ensure_namespace(client: &kube::Client, namespace: &str) -> Result<(), RunError> {
    let api = Api::<Namespace>::all(client.clone());
    let check = |error: &kube::Error| RunError::CheckNamespace {
        namespace: namespace.into(),
        detail: chain(error),
    };
    if api
        .get_opt(namespace)
        .await
        .map_err(|e| check(&e))?
        .is_some()
    {
        return Ok(());
    }
    let object = Namespace {
        metadata: kube::api::ObjectMeta {
            name: Some(namespace.into()),
            ..Default::default()
        },
        ..Default::default()
    };
    match api.create(&PostParams::default(), &object).await {
        Ok(_) => {
            tracing::info!(namespace, "created the controller's namespace");
            Ok(())
        }
        Err(kube::Error::Api(status)) if status.code == 409 => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 403 => Err(RunError::Namespace {
            namespace: namespace.into(),
            detail: status.message.clone(),
        }),
        Err(error) => Err(check(&error)),
    }
}

/// Keeps `/readyz` current: ready means the local API server answers a
/// probe, the local watches have listed, and, while leading, writes are not
/// failing for longer than `unready_after`.
async fn readiness(
    client: kube::Client,
    config: ControllerConfig,
    claim: Claim,
    metrics: Metrics,
    health: FeatureHealth,
) {
    let api = Api::<Namespace>::all(client);
    let mut tick = tokio::time::interval(config.probe_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failed_probes = 0;
    loop {
        tick.tick().await;
        let probe = tokio::time::timeout(config.probe_timeout, api.get(&config.namespace)).await;
        let probe_failure = match probe {
            Ok(Ok(_)) => None,
            Ok(Err(error)) => Some(Failure::of(&error).detail),
            Err(_) => Some(Failure::timeout(config.probe_timeout).detail),
        };
        failed_probes = if probe_failure.is_some() {
            failed_probes + 1
        } else {
            0
        };
        let writers_failing = health
            .writers
            .iter()
            .filter_map(|h| h.borrow().failing_since)
            .min()
            .filter(|since| Instant::now().duration_since(*since) > config.unready_after);
        let why = if failed_probes >= config.failure_threshold {
            Some(format!(
                "the local API server does not answer: {}",
                probe_failure.unwrap_or_default()
            ))
        } else if !*health.local_listed.borrow() {
            Some("the local cluster's objects are not listed yet".into())
        } else if claim.is_current()
            && let Some(since) = writers_failing
        {
            Some(format!(
                "writes to the local cluster have been failing for {} s",
                since.elapsed().as_secs()
            ))
        } else {
            None
        };
        metrics.set_unready(why);
    }
}
