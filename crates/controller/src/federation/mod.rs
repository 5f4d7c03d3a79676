//! The Federation v1 control plane (seeds 002/003) on the runtime: member
//! clusters from `Cluster` objects, every federated Service propagated to
//! every Ready member that matches it, and the health of the shards that
//! result written back to the federated Service.
//!
//! ```text
//!  Cluster objects ─▶ members ─▶ ClusterSet (write clients from Secrets,
//!                       │         probes) ─▶ Cluster status (StatusSink)
//!                       │                    │ state, zones, region
//!  federation Services, ▼                    ▼
//!  Namespaces ──────▶ engine (core: plan, ShardIndex) ─▶ member writers
//!  member Services, ─▶  ▲                   │            (one per member
//!  EndpointSlices,      │                   │             session)
//!  Nodes (sources) ─────┘                   └─▶ status ─▶ federated Service
//!                                                         status, annotations
//! ```
//!
//! Every decision is `fedmesh_core::federation`'s; this module moves objects.

mod engine;
mod members;
mod sources;
pub(crate) mod status;

use std::sync::Arc;

use fedmesh_core::federation::{self as core, FEDERATION_LABEL, FederationName, Scope};
use k8s_openapi::api::core::v1::{Namespace, Service};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ApiResource};
use kube::runtime::watcher;
use tokio::sync::{mpsc, watch};

use crate::runtime::claim::Claim;
use crate::runtime::clusters::{ClusterSet, ClusterSetConfig, Wording};
use crate::runtime::events::Warning;
use crate::runtime::watch::{self as watches, Progress, Signal, Update};
use crate::runtime::writer::WriterConfig;
use crate::runtime::{FeatureHealth, Tasks};
use crate::{ControllerConfig, Metrics};

/// How the runtime's messages name a member's configuration.
const MEMBER_WORDING: Wording = Wording {
    kind: "Cluster",
    secret_field: "spec.secretRef",
    join: "fedmesh federation join",
    meanwhile: "its copies stay as they are and its shards count as unhealthy meanwhile",
    twice: "no member is written twice",
};

/// Which federation this controller runs, and what in it is federated.
#[derive(Debug, Clone)]
pub struct FederationOptions {
    /// The federation's name: the value of the label on member copies, and
    /// what DNS names carry.
    pub name: FederationName,
    /// Every Service (a dedicated federation API server) or those in
    /// labelled namespaces (a shared cluster).
    pub scope: Scope,
}

/// The Cluster resource (`federation.fedmesh.io/v1alpha1`, cluster-scoped).
pub fn api_resource() -> ApiResource {
    ApiResource {
        group: core::GROUP.into(),
        version: core::VERSION.into(),
        api_version: core::API_VERSION.into(),
        kind: core::KIND.into(),
        plural: core::PLURAL.into(),
    }
}

/// The Cluster CustomResourceDefinition (`deploy/crds/clusters.yaml`).
pub fn crd() -> Result<CustomResourceDefinition, serde_saphyr::Error> {
    serde_saphyr::from_str(include_str!("../../../../deploy/crds/clusters.yaml"))
}

/// The federation control plane's settings, from the controller's: a
/// member is found Offline within 3 s (a broken watch tells at once; a hung
/// member takes a probe every second, 800 ms to answer and two failures in
/// a row: at most 1 s + 1 s + 0.8 s), and a returning member is retried at
/// least every 2 s.
pub fn controller_config(
    namespace: impl Into<String>,
    identity: impl Into<String>,
) -> ControllerConfig {
    let mut config = ControllerConfig::new(namespace, identity);
    config.lease_name = "fedmesh-federation-controller".into();
    config.probe_interval = std::time::Duration::from_secs(1);
    config.probe_timeout = std::time::Duration::from_millis(800);
    config.failure_threshold = core::DEFAULT_FAILURE_THRESHOLD;
    config.max_backoff = std::time::Duration::from_secs(2);
    config
}

/// Runs the federation control plane against the federation API server
/// behind `client` until `shutdown` (leader election, metrics, health and
/// Events as `fedmesh controller` has them).
pub async fn run(
    client: kube::Client,
    config: ControllerConfig,
    options: FederationOptions,
    metrics: Metrics,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), crate::RunError> {
    crate::run_feature(
        client,
        config,
        metrics,
        shutdown,
        "fedmesh-federation-controller",
        move |tasks, client, config, claim, metrics, warnings| {
            start(tasks, client, config, &options, claim, metrics, warnings)
        },
    )
    .await
}

/// Starts the control plane's tasks: the federation's watches, the
/// ClusterSet of members, the engine, the member writers (per session) and
/// the federated Services' status writer.
pub fn start(
    tasks: &mut Tasks,
    federation: kube::Client,
    config: &ControllerConfig,
    options: &FederationOptions,
    claim: Claim,
    metrics: Metrics,
    warnings: mpsc::Sender<Warning>,
) -> FeatureHealth {
    let (events_tx, events_rx) = mpsc::channel(4096);
    let (status_tx, status_rx) = mpsc::unbounded_channel();
    let statuses = members::MemberStatuses::new(
        federation.clone(),
        events_tx.clone(),
        warnings.clone(),
        claim.clone(),
    );
    let feature = Arc::new(sources::MemberFeature {
        events: events_tx.clone(),
        statuses: statuses.clone(),
        federation: options.name.clone(),
        writer: WriterConfig {
            kind: "member Service",
            concurrency: config.write_concurrency,
            backoff_base: config.write_backoff_base,
            backoff_max: config.max_backoff,
            // A member's own Service of that name is adopted (plan decides).
            leave_foreign: None,
        },
        field_manager: format!("fedmesh-federation/{}", config.identity),
        claim: claim.clone(),
        metrics: metrics.clone(),
    });
    let clusters = ClusterSet::new(
        federation.clone(),
        ClusterSetConfig {
            wording: MEMBER_WORDING,
            ..ClusterSetConfig::from(config)
        },
        vec![feature],
        Arc::new(statuses.clone()),
        claim.clone(),
        metrics,
    );
    tasks.spawn(
        "clusters",
        members::run(
            federation.clone(),
            config.namespace.clone(),
            clusters,
            events_tx.clone(),
            statuses,
        ),
    );
    let (listed_tx, local_listed) = watch::channel(false);
    tasks.spawn(
        "federated services",
        federation_watch(
            Api::<Service>::all(federation.clone()),
            events_tx.clone(),
            |update| engine::Event::Federated(slim(update)),
            Some(listed_tx),
        ),
    );
    match options.scope {
        Scope::Everything => {
            let _ = events_tx.try_send(engine::Event::Namespaces(Update::Reset(Vec::new())));
        }
        Scope::LabelledNamespaces => tasks.spawn(
            "federated namespaces",
            federation_watch(
                Api::<Namespace>::all(federation.clone()),
                events_tx,
                engine::Event::Namespaces,
                None,
            ),
        ),
    }
    tasks.spawn(
        "federation engine",
        engine::run(
            events_rx,
            engine::Engine::new(
                options.name.clone(),
                options.scope,
                config.namespace.clone(),
                status_tx,
                warnings,
            ),
        ),
    );
    tasks.spawn(
        "federated service status",
        status::run(
            federation,
            status_rx,
            claim,
            config.write_backoff_base,
            config.max_backoff,
        ),
    );
    // A member whose writes fail is that member's problem, shown per Service
    // (errors annotation, Events): it does not make the controller unready.
    FeatureHealth {
        local_listed,
        writers: Vec::new(),
    }
}

/// Feeds one watch of the federation API into the engine; `listed` says
/// when it has listed and is not failing.
async fn federation_watch<K>(
    api: Api<K>,
    events: mpsc::Sender<engine::Event>,
    wrap: fn(Update<K>) -> engine::Event,
    listed: Option<watch::Sender<bool>>,
) where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + 'static,
{
    let mut signals = std::pin::pin!(watches::watch(api, watcher::Config::default()));
    while let Some(signal) = futures::StreamExt::next(&mut signals).await {
        match signal {
            Signal::Update(update) => {
                if events.send(wrap(update)).await.is_err() {
                    return;
                }
            }
            Signal::Progress(Progress::Failed(failure)) => {
                tracing::warn!(
                    "watching the federation API failed; retrying: {}",
                    failure.detail
                );
                if let Some(listed) = &listed {
                    listed.send_replace(false);
                }
            }
            Signal::Progress(Progress::Listed | Progress::Recovered) => {
                if let Some(listed) = &listed {
                    listed.send_replace(true);
                }
            }
        }
    }
}

/// `update` without the objects' `managedFields`: the controller keeps up to
/// three copies of each member Service (its view, the writer's desired and
/// live copies) and never reads who manages which field.
fn slim(update: Update<Service>) -> Update<Service> {
    let strip = |mut service: Service| {
        service.metadata.managed_fields = None;
        service
    };
    match update {
        Update::Reset(all) => Update::Reset(all.into_iter().map(strip).collect()),
        Update::Apply(service) => Update::Apply(strip(service)),
        Update::Delete(service) => Update::Delete(strip(service)),
    }
}

/// The label selector of the member Services this federation manages.
fn managed_selector(federation: &FederationName) -> String {
    format!("{FEDERATION_LABEL}={federation}")
}
