//! The `ClusterSet`: every connection to another cluster, owned in one place.
//!
//! For each configured cluster a task reads the access Secret, connects with
//! the kubeconfig inside, identifies the cluster (the UID of its
//! `kube-system` namespace), refuses it when another configuration already
//! connects the same cluster or it is the local cluster itself, runs the
//! features' watches on it, and probes it. It keeps the cluster's typed status
//! and applies its unreachable policy: a cluster that stops answering, whose
//! credentials stop working or whose configuration breaks keeps its last
//! known state, or is withdrawn after the grace period, as the policy says.
//!
//! A hung cluster (it accepts connections and never answers) is found by the
//! probe: an authenticated read with a timeout, every `probe_interval`; a
//! cluster is failed after `failure_threshold` probes in a row fail, or after
//! one that says the credentials or the certificate no longer work. Its
//! watches are then dropped and made anew once it answers, which relists.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fedmesh_core::ClusterName;
use fedmesh_core::remote::{
    self, Reason, RemoteStatus, SecretRef, SyncEvent, SyncState, UnreachablePolicy, Withdrawal,
};
use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use k8s_openapi::jiff::Timestamp;
use kube::api::Api;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tracing::Instrument as _;

use super::claim::Claim;
use super::errors::{Failure, chain};
use crate::config::ControllerConfig;
use crate::metrics::Metrics;

/// One cluster's configuration, as the ClusterSet needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterSpec {
    /// The cluster's name in fedmesh.
    pub name: ClusterName,
    /// The Secret holding the kubeconfig that reaches it.
    pub secret: SecretRef,
    /// The API server URL to use instead of the kubeconfig's (a federation
    /// `Cluster` names its member's address itself).
    pub server: Option<String>,
    /// What happens to its data while it does not answer.
    pub policy: UnreachablePolicy,
    /// When its configuration was made: of two configurations for the same
    /// cluster, the older one wins (then the smaller name).
    pub created: Option<Timestamp>,
}

impl ClusterSpec {
    fn secret_name(&self) -> String {
        format!("{}/{}", self.secret.namespace, self.secret.name)
    }
}

/// What a feature's watches on one cluster report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Report {
    /// Every watch has listed and none is failing; what is in use now.
    Synced {
        /// Services in use from the cluster.
        services: usize,
        /// Endpoints in use from the cluster.
        endpoints: usize,
    },
    /// A watch failed (it retries by itself).
    Failed(Failure),
}

/// Where one feature's watches on one cluster send their reports.
#[derive(Debug, Clone)]
pub struct Reports {
    feature: usize,
    tx: mpsc::UnboundedSender<(usize, Report)>,
}

impl Reports {
    /// Sends a report (dropped if the session already ended).
    pub fn send(&self, report: Report) {
        let _ = self.tx.send((self.feature, report));
    }
}

/// A feature that reads from the clusters of a ClusterSet.
pub trait Feature: Send + Sync + 'static {
    /// Watches `cluster` through `client`, sending reports, until the future
    /// is dropped (which happens when the connection is remade or ends).
    fn watch(
        &self,
        cluster: ClusterName,
        client: kube::Client,
        reports: Reports,
    ) -> BoxFuture<'static, ()>;

    /// Forgets everything read from `cluster` (withdrawn, refused or removed).
    fn forget(&self, cluster: ClusterName) -> BoxFuture<'static, ()>;
}

/// Where a cluster's status goes (the RemoteClusterConfiguration's status,
/// say). Only called while the claim is current.
pub trait StatusSink: Send + Sync + 'static {
    /// Writes `status` for `cluster`.
    fn write(
        &self,
        cluster: ClusterName,
        status: &RemoteStatus,
    ) -> BoxFuture<'static, Result<(), String>>;

    /// Publishes a Warning Event about `cluster`'s configuration.
    fn warn(&self, cluster: ClusterName, reason: Reason, message: String)
    -> BoxFuture<'static, ()>;
}

/// How the ClusterSet's messages name what configures a cluster, so that
/// each feature's users read their own object's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wording {
    /// The kind of object that configures a cluster.
    pub kind: &'static str,
    /// Its field naming the access Secret.
    pub secret_field: &'static str,
    /// The command that writes the Secret.
    pub join: &'static str,
    /// What happens to the cluster's data while it is unusable.
    pub meanwhile: &'static str,
    /// What would appear twice if one cluster were configured twice.
    pub twice: &'static str,
}

impl Wording {
    /// The mesh's remote clusters.
    pub const REMOTE: Wording = Wording {
        kind: "RemoteClusterConfiguration",
        secret_field: "spec.clusterAccessSecret",
        join: "fedmesh join",
        meanwhile: "the remote's last known endpoints follow spec.unreachable meanwhile",
        twice: "no endpoint appears twice",
    };
}

/// How the ClusterSet connects and probes.
#[derive(Debug, Clone)]
pub struct ClusterSetConfig {
    /// The namespace Secrets without one are read from.
    pub namespace: String,
    /// How often a connected cluster is probed.
    pub probe_interval: Duration,
    /// How long a probe (and connecting) may take.
    pub probe_timeout: Duration,
    /// Probes in a row that must fail before a cluster counts as failed.
    pub failure_threshold: u32,
    /// The longest wait between reconnection attempts.
    pub max_backoff: Duration,
    /// How often a status whose state did not change (only its counts) may
    /// be rewritten.
    pub status_refresh: Duration,
    /// How messages name the configuring objects.
    pub wording: Wording,
}

impl From<&ControllerConfig> for ClusterSetConfig {
    fn from(config: &ControllerConfig) -> Self {
        Self {
            namespace: config.namespace.clone(),
            probe_interval: config.probe_interval,
            probe_timeout: config.probe_timeout,
            failure_threshold: config.failure_threshold,
            max_backoff: config.max_backoff,
            status_refresh: config.status_refresh,
            wording: Wording::REMOTE,
        }
    }
}

/// Who holds which cluster identity.
#[derive(Default)]
struct Registry {
    local: Option<String>,
    holders: HashMap<String, Holder>,
}

struct Holder {
    name: ClusterName,
    rank: (Option<Timestamp>, ClusterName),
    displaced: watch::Sender<bool>,
}

/// Why a cluster was refused.
enum Refusal {
    Local,
    Duplicate(ClusterName),
}

struct Shared {
    local: kube::Client,
    config: ClusterSetConfig,
    features: Vec<Arc<dyn Feature>>,
    sink: Arc<dyn StatusSink>,
    claim: Claim,
    metrics: Metrics,
    registry: Mutex<Registry>,
    /// Bumped whenever an identity is released, to wake refused clusters.
    released: watch::Sender<u64>,
    /// Per configured cluster, whether it has had a first outcome.
    outcomes: Mutex<BTreeMap<ClusterName, bool>>,
    settled: watch::Sender<bool>,
    listed: Mutex<bool>,
}

/// Every connection to another cluster, with its health and status.
pub struct ClusterSet {
    shared: Arc<Shared>,
    running: HashMap<ClusterName, Running>,
}

struct Running {
    /// `None` while the configuration cannot be read.
    spec: Option<ClusterSpec>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl ClusterSet {
    /// A set with no clusters yet. `local` reads Secrets and identifies the
    /// local cluster; `features` read from every cluster; `sink` takes
    /// statuses while `claim` is current.
    pub fn new(
        local: kube::Client,
        config: ClusterSetConfig,
        features: Vec<Arc<dyn Feature>>,
        sink: Arc<dyn StatusSink>,
        claim: Claim,
        metrics: Metrics,
    ) -> Self {
        let shared = Arc::new(Shared {
            local,
            config,
            features,
            sink,
            claim,
            metrics,
            registry: Mutex::new(Registry::default()),
            released: watch::channel(0).0,
            outcomes: Mutex::new(BTreeMap::new()),
            settled: watch::channel(false).0,
            listed: Mutex::new(false),
        });
        let identify = shared.clone();
        tokio::spawn(async move { identify.identify_local().await });
        Self {
            shared,
            running: HashMap::new(),
        }
    }

    /// True once every configured cluster has had its first outcome (synced
    /// or failed) after the configurations were listed: until then the
    /// features' views are incomplete and nothing should be written.
    pub fn settled(&self) -> watch::Receiver<bool> {
        self.shared.settled.subscribe()
    }

    /// Says the configurations were listed: the set now knows every cluster.
    pub fn listed(&mut self) {
        *lock(&self.shared.listed) = true;
        self.shared.update_settled();
    }

    /// Starts, restarts or keeps the task of `spec`'s cluster.
    pub async fn configure(&mut self, spec: ClusterSpec) {
        if self
            .running
            .get(&spec.name)
            .is_some_and(|r| r.spec.as_ref() == Some(&spec) && !r.task.is_finished())
        {
            return;
        }
        self.stop(&spec.name).await;
        tracing::info!(cluster = %spec.name, secret = %spec.secret_name(), "connecting to remote cluster");
        lock(&self.shared.outcomes).insert(spec.name.clone(), false);
        self.shared.update_settled();
        let span = tracing::info_span!("cluster", cluster = %spec.name);
        let task = tokio::spawn(run_cluster(self.shared.clone(), spec.clone()).instrument(span));
        self.running.insert(
            spec.name.clone(),
            Running {
                spec: Some(spec),
                task,
            },
        );
    }

    /// Reports a configuration that cannot be read (its status says why)
    /// and stops its cluster as if it were unreachable: its data follows the
    /// policy it had.
    pub async fn misconfigured(&mut self, name: ClusterName, message: String) {
        let policy = self
            .running
            .get(&name)
            .and_then(|r| r.spec.as_ref())
            .map_or(UnreachablePolicy::default(), |spec| spec.policy);
        if let Some(running) = self.running.get(&name) {
            running.task.abort();
        }
        let mut state = ClusterState::new(self.shared.clone(), name.clone(), policy);
        state
            .event(SyncEvent::Failed {
                reason: Reason::InvalidConfiguration,
                message,
            })
            .await;
        lock(&self.shared.outcomes).insert(name.clone(), true);
        self.shared.update_settled();
        let span = tracing::info_span!("cluster", cluster = %name);
        // Keep applying the policy while the configuration stays broken.
        let task = tokio::spawn(
            async move {
                state.wait(None).await;
                std::future::pending::<()>().await;
            }
            .instrument(span),
        );
        self.running.insert(name, Running { spec: None, task });
    }

    /// Stops the cluster `name` and forgets its data at once: its
    /// configuration was deleted.
    pub async fn stop(&mut self, name: &ClusterName) {
        if let Some(running) = self.running.remove(name) {
            drop(running);
            tracing::info!(cluster = %name, "stopped syncing remote cluster");
            for feature in &self.shared.features {
                feature.forget(name.clone()).await;
            }
            self.shared.metrics.forget_remote(name.as_str());
        }
        lock(&self.shared.outcomes).remove(name);
        self.shared.update_settled();
    }

    /// The names of the clusters configured now.
    pub fn names(&self) -> Vec<ClusterName> {
        self.running.keys().cloned().collect()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding one of these locks leaves consistent data (each
    // critical section is a single insert or remove), so go on with it.
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Shared {
    async fn identify_local(self: Arc<Self>) {
        let mut wait = Duration::from_millis(200);
        loop {
            match identify(&self.local, self.config.probe_timeout).await {
                Ok(uid) => {
                    lock(&self.registry).local = Some(uid);
                    return;
                }
                Err(failure) => {
                    tracing::warn!(
                        "cannot read the local cluster's kube-system namespace, so a RemoteClusterConfiguration pointing back at it cannot be recognised yet: {}",
                        failure.detail
                    );
                }
            }
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(self.config.max_backoff);
        }
    }

    fn update_settled(&self) {
        let settled = *lock(&self.listed) && lock(&self.outcomes).values().all(|done| *done);
        self.settled.send_if_modified(|current| {
            let changed = *current != settled;
            *current = settled;
            changed
        });
    }

    fn outcome(&self, name: &ClusterName) {
        if let Some(done) = lock(&self.outcomes).get_mut(name) {
            *done = true;
        }
        self.update_settled();
    }

    /// Takes `identity` for `spec`'s cluster, or says who has it.
    fn claim_identity(
        &self,
        identity: &str,
        spec: &ClusterSpec,
    ) -> Result<(IdentityGuard<'_>, watch::Receiver<bool>), Refusal> {
        let mut registry = lock(&self.registry);
        if registry.local.as_deref() == Some(identity) {
            return Err(Refusal::Local);
        }
        let rank = (spec.created, spec.name.clone());
        if let Some(holder) = registry.holders.get(identity)
            && holder.name != spec.name
        {
            if better(&holder.rank, &rank) {
                return Err(Refusal::Duplicate(holder.name.clone()));
            }
            // This configuration is older: the newer one gives way.
            holder.displaced.send_replace(true);
        }
        let (displaced, rx) = watch::channel(false);
        registry.holders.insert(
            identity.to_owned(),
            Holder {
                name: spec.name.clone(),
                rank,
                displaced,
            },
        );
        Ok((
            IdentityGuard {
                shared: self,
                identity: identity.to_owned(),
                name: spec.name.clone(),
            },
            rx,
        ))
    }
}

/// Whether rank `a` wins over rank `b` (older first; unknown ages last).
fn better(a: &(Option<Timestamp>, ClusterName), b: &(Option<Timestamp>, ClusterName)) -> bool {
    let key = |r: &(Option<Timestamp>, ClusterName)| (r.0.is_none(), r.0, r.1.clone());
    key(a) < key(b)
}

/// Releases an identity when the session that holds it ends.
struct IdentityGuard<'a> {
    shared: &'a Shared,
    identity: String,
    name: ClusterName,
}

impl Drop for IdentityGuard<'_> {
    fn drop(&mut self) {
        let mut registry = lock(&self.shared.registry);
        if registry
            .holders
            .get(&self.identity)
            .is_some_and(|h| h.name == self.name)
        {
            registry.holders.remove(&self.identity);
        }
        drop(registry);
        self.shared.released.send_modify(|n| *n += 1);
    }
}

/// The identity of the cluster behind `client`: the UID of its kube-system
/// namespace. Also an authenticated, authorized read: the probe.
async fn identify(client: &kube::Client, timeout: Duration) -> Result<String, Failure> {
    let api = Api::<Namespace>::all(client.clone());
    match tokio::time::timeout(timeout, api.get("kube-system")).await {
        Err(_) => Err(Failure::timeout(timeout)),
        Ok(Err(error)) => Err(Failure::of(&error)),
        Ok(Ok(namespace)) => namespace.metadata.uid.ok_or_else(|| Failure {
            reason: Reason::ServerError,
            detail: "the kube-system namespace has no UID".into(),
        }),
    }
}

type SecretData = BTreeMap<String, Vec<u8>>;

/// A connection that could not be made, with the status it gives.
struct Problem {
    reason: Reason,
    message: String,
}

/// A working connection to a cluster.
struct Connection {
    client: kube::Client,
    identity: String,
    secret: SecretData,
}

/// The life of one cluster: connect, run a session, and start over.
async fn run_cluster(shared: Arc<Shared>, spec: ClusterSpec) {
    let mut state = ClusterState::new(shared.clone(), spec.name.clone(), spec.policy);
    // Only the first attempt shows Connecting: a retry keeps the failure on
    // show until it works, so conditions do not flap with every attempt.
    state.event(SyncEvent::Connecting).await;
    let mut backoff = INITIAL_BACKOFF;
    loop {
        match connect(&shared, &spec).await {
            Err(problem) => {
                state
                    .event(SyncEvent::Failed {
                        reason: problem.reason,
                        message: problem.message,
                    })
                    .await;
            }
            Ok(connection) => match shared.claim_identity(&connection.identity, &spec) {
                Err(refusal) => {
                    refuse(&shared, &spec, &mut state, refusal).await;
                    continue;
                }
                Ok((guard, displaced)) => {
                    let started = Instant::now();
                    let end = session(&shared, &spec, connection, &mut state, displaced).await;
                    drop(guard);
                    if started.elapsed() > shared.config.max_backoff {
                        backoff = INITIAL_BACKOFF;
                    }
                    if matches!(end, SessionEnd::SecretChanged) {
                        continue;
                    }
                }
            },
        }
        // Wait out the backoff, or less if the Secret changes (new
        // credentials from `fedmesh join`, a Secret recreated), or if a
        // remote that could not be reached at all listens again.
        let current = read_secret(&shared, &spec).await.ok().flatten();
        let redial = match (&current, state.failure) {
            (Some(data), Some(Reason::Unreachable)) => {
                match remote::kubeconfig_from_secret(&spec.secret, data) {
                    Ok(kubeconfig) => server_address(kubeconfig).await,
                    Err(_) => None,
                }
            }
            _ => None,
        };
        let changed = secret_changed(&shared, &spec, current);
        let sleep = tokio::time::sleep(backoff);
        let (answered_tx, mut answered) = tokio::sync::oneshot::channel();
        state
            .wait(Some(Box::pin(async move {
                let listening = async move {
                    match redial {
                        Some(address) => {
                            listening_again(&address, REDIAL_EVERY).await;
                            let _ = answered_tx.send(());
                        }
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    () = changed => {}
                    () = sleep => {}
                    () = listening => {}
                }
            })))
            .await;
        backoff = if answered.try_recv().is_ok() {
            // It was down and is back: a fresh start, so a remote still
            // warming up (answering 503 for a moment) is retried soon.
            INITIAL_BACKOFF
        } else {
            (backoff * 2).min(shared.config.max_backoff)
        };
    }
}

/// The first wait before reconnecting; it doubles per failed attempt up to
/// `max_backoff`.
const INITIAL_BACKOFF: Duration = Duration::from_millis(250);

/// How often the address of a remote that refuses connections is tried
/// while waiting to reconnect. A refused TCP connection costs either side
/// next to nothing (no TLS, no request, nothing read from the local API
/// server), unlike a reconnection attempt; this is what lets a restarted
/// remote be current within a second however long it was down, while the
/// attempts themselves keep backing off.
const REDIAL_EVERY: Duration = Duration::from_millis(200);

/// `host:port` of the API server a kubeconfig points at.
async fn server_address(kubeconfig: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(kubeconfig).ok()?;
    let kubeconfig = kube::config::Kubeconfig::from_yaml(text).ok()?;
    let config = kube::Config::from_custom_kubeconfig(
        kubeconfig,
        &kube::config::KubeConfigOptions::default(),
    )
    .await
    .ok()?;
    let url = &config.cluster_url;
    let port = url
        .port_u16()
        .unwrap_or(if url.scheme_str() == Some("http") {
            80
        } else {
            443
        });
    Some(format!("{}:{port}", url.host()?))
}

/// Completes once `address` accepts a TCP connection after having refused
/// one: the remote is back. An address that never refuses (a load balancer
/// in front of a down API server, say) never completes this, so the
/// backoff, not this check, paces the attempts there.
async fn listening_again(address: &str, every: Duration) {
    let mut seen_down = false;
    loop {
        let up = matches!(
            tokio::time::timeout(every, tokio::net::TcpStream::connect(address)).await,
            Ok(Ok(_))
        );
        if up && seen_down {
            return;
        }
        seen_down |= !up;
        tokio::time::sleep(every).await;
    }
}

/// Reports a refused cluster and waits until the identity it wanted is
/// released.
async fn refuse(
    shared: &Arc<Shared>,
    spec: &ClusterSpec,
    state: &mut ClusterState,
    refusal: Refusal,
) {
    let wording = shared.config.wording;
    let (reason, message) = match refusal {
        Refusal::Local => (
            Reason::LocalCluster,
            format!(
                "Secret {} reaches the local cluster itself, which needs no connection. \
                 Delete this {}.",
                spec.secret_name(),
                wording.kind
            ),
        ),
        Refusal::Duplicate(holder) => (
            Reason::DuplicateCluster,
            format!(
                "Secret {} reaches the same cluster as the older {} {holder}; this one is \
                 ignored so that {}. Delete one of them.",
                spec.secret_name(),
                wording.kind,
                wording.twice
            ),
        ),
    };
    state
        .event(SyncEvent::Failed {
            reason,
            message: message.clone(),
        })
        .await;
    if shared.claim.is_current() {
        shared.sink.warn(spec.name.clone(), reason, message).await;
    }
    let mut released = shared.released.subscribe();
    let timeout = shared.config.max_backoff;
    state
        .wait(Some(Box::pin(async move {
            let _ = tokio::time::timeout(timeout, released.changed()).await;
        })))
        .await;
}

/// Reads the access Secret and builds a client for the cluster from it.
async fn connect(shared: &Shared, spec: &ClusterSpec) -> Result<Connection, Problem> {
    let secret_name = spec.secret_name();
    let data = read_secret(shared, spec)
        .await
        .map_err(|error| Problem {
            reason: Reason::LocalApiError,
            message: format!(
                "Cannot read secret {secret_name} from the local API server; fedmesh keeps \
                 retrying. ({})",
                chain(&error)
            ),
        })?
        .ok_or_else(|| Problem {
            reason: Reason::SecretNotFound,
            message: format!(
                "Secret {secret_name} does not exist. Create it ({} does) or fix {}; {}.",
                shared.config.wording.join,
                shared.config.wording.secret_field,
                shared.config.wording.meanwhile
            ),
        })?;
    let kubeconfig = remote::kubeconfig_from_secret(&spec.secret, &data).map_err(|e| Problem {
        reason: Reason::InvalidSecret,
        message: format!(
            "{e}. Run `{}` again to rewrite the secret.",
            shared.config.wording.join
        ),
    })?;
    let client = remote_client(
        kubeconfig,
        spec.server.as_deref(),
        shared.config.probe_timeout,
    )
    .await
    .map_err(|e| Problem {
        reason: Reason::InvalidKubeconfig,
        message: format!(
            "The kubeconfig in secret {secret_name} cannot be used: {e}. Run `{}` again \
                 to rewrite the secret.",
            shared.config.wording.join
        ),
    })?;
    let identity = identify(&client, shared.config.probe_timeout)
        .await
        .map_err(|failure| Problem {
            reason: failure.reason,
            message: failure.sentence(&secret_name),
        })?;
    Ok(Connection {
        client,
        identity,
        secret: data,
    })
}

/// The errors of building a client from a kubeconfig.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The bytes are not UTF-8.
    #[error("it is not UTF-8 text")]
    Encoding(#[from] std::str::Utf8Error),
    /// The text is not a kubeconfig.
    #[error("it is not a kubeconfig ({0})")]
    Parse(#[source] kube::config::KubeconfigError),
    /// The kubeconfig does not give a usable cluster and user.
    #[error("{0}")]
    Config(#[source] kube::config::KubeconfigError),
    /// The server address given is not a URL.
    #[error("{0:?} is not a URL")]
    Server(String),
    /// The client cannot be built (TLS settings, say).
    #[error("{0}")]
    Build(#[source] kube::Error),
}

/// A client for a cluster from the bytes of a kubeconfig (at `server`
/// instead of the kubeconfig's address, when given), with timeouts: a
/// connection attempt gives up after `timeout`, and so does a request whose
/// answer does not start within a few times that (watches send bookmarks,
/// so an idle one still answers).
pub async fn remote_client(
    kubeconfig: &[u8],
    server: Option<&str>,
    timeout: Duration,
) -> Result<kube::Client, ClientError> {
    let text = std::str::from_utf8(kubeconfig)?;
    let kubeconfig = kube::config::Kubeconfig::from_yaml(text).map_err(ClientError::Parse)?;
    let mut config = kube::Config::from_custom_kubeconfig(
        kubeconfig,
        &kube::config::KubeConfigOptions::default(),
    )
    .await
    .map_err(ClientError::Config)?;
    if let Some(server) = server {
        config.cluster_url = server
            .parse()
            .map_err(|_| ClientError::Server(server.into()))?;
    }
    config.connect_timeout = Some(timeout);
    // Retries of 5xx inside the client would hide a failing remote from the
    // probe; the ClusterSet retries with its own backoff.
    config.default_retry = false;
    kube::Client::try_from(config).map_err(ClientError::Build)
}

async fn read_secret(
    shared: &Shared,
    spec: &ClusterSpec,
) -> Result<Option<SecretData>, kube::Error> {
    let api = Api::<Secret>::namespaced(shared.local.clone(), &spec.secret.namespace);
    let read = tokio::time::timeout(shared.config.probe_timeout, api.get_opt(&spec.secret.name));
    let secret = match read.await {
        Ok(result) => result?,
        Err(_) => {
            return Err(kube::Error::Service(
                format!(
                    "the local API server did not answer within {} ms",
                    shared.config.probe_timeout.as_millis()
                )
                .into(),
            ));
        }
    };
    Ok(secret.map(|secret| {
        secret
            .data
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, v.0))
            .collect()
    }))
}

/// Completes once the access Secret's data differs from `current`.
fn secret_changed(
    shared: &Arc<Shared>,
    spec: &ClusterSpec,
    current: Option<SecretData>,
) -> BoxFuture<'static, ()> {
    let shared = shared.clone();
    let spec = spec.clone();
    Box::pin(async move {
        let mut interval = tokio::time::interval(shared.config.probe_interval);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        interval.tick().await;
        loop {
            interval.tick().await;
            if let Ok(now) = read_secret(&shared, &spec).await
                && now != current
            {
                return;
            }
        }
    })
}

enum SessionEnd {
    SecretChanged,
    Displaced,
    Failed,
}

/// Runs the features' watches on a connected cluster and probes it, until
/// it fails, its Secret changes, or another configuration takes it over.
async fn session(
    shared: &Arc<Shared>,
    spec: &ClusterSpec,
    connection: Connection,
    state: &mut ClusterState,
    mut displaced: watch::Receiver<bool>,
) -> SessionEnd {
    let (reports_tx, mut reports) = mpsc::unbounded_channel();
    let _watches: Vec<AbortOnDrop> = shared
        .features
        .iter()
        .enumerate()
        .map(|(index, feature)| {
            let reports = Reports {
                feature: index,
                tx: reports_tx.clone(),
            };
            let watch = feature.watch(spec.name.clone(), connection.client.clone(), reports);
            AbortOnDrop(tokio::spawn(watch.in_current_span()))
        })
        .collect();
    drop(reports_tx);
    let secret_changed = secret_changed(shared, spec, Some(connection.secret));
    tokio::pin!(secret_changed);
    let mut probe = tokio::time::interval(shared.config.probe_interval);
    probe.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    probe.tick().await;
    let mut failed_probes = 0;
    // Per feature, what it last said; the cluster is in sync when all did.
    let mut synced: Vec<Option<(usize, usize)>> = vec![None; shared.features.len()];
    let mut watch_failure: Option<Failure> = None;
    let secret_name = spec.secret_name();
    loop {
        let deadline = state.deadline();
        tokio::select! {
            () = &mut secret_changed => {
                tracing::info!(cluster = %spec.name, "access secret changed; reconnecting");
                return SessionEnd::SecretChanged;
            }
            Ok(()) = displaced.changed() => {
                return SessionEnd::Displaced;
            }
            Some((index, report)) = reports.recv() => match report {
                Report::Synced { services, endpoints } => {
                    if let Some(slot) = synced.get_mut(index) {
                        *slot = Some((services, endpoints));
                    }
                    watch_failure = None;
                }
                Report::Failed(failure) => {
                    if failure.is_definite() {
                        state.event(SyncEvent::Failed { reason: failure.reason, message: failure.sentence(&secret_name) }).await;
                        return SessionEnd::Failed;
                    }
                    watch_failure = Some(failure);
                }
            },
            _ = probe.tick() => {
                match identify(&connection.client, shared.config.probe_timeout).await {
                    Ok(identity) if identity == connection.identity => failed_probes = 0,
                    Ok(_) => {
                        tracing::info!(cluster = %spec.name, "the remote cluster behind the access secret changed identity; reconnecting");
                        return SessionEnd::SecretChanged;
                    }
                    Err(failure) => {
                        failed_probes += 1;
                        if failure.is_definite() || failed_probes >= shared.config.failure_threshold {
                            state.event(SyncEvent::Failed { reason: failure.reason, message: failure.sentence(&secret_name) }).await;
                            return SessionEnd::Failed;
                        }
                    }
                }
            }
            () = sleep_until(deadline) => {
                if state.on_deadline().await {
                    // The features forgot this cluster; only fresh watches
                    // (which list again) bring its data back.
                    return SessionEnd::Failed;
                }
            }
        }
        let event = match (&watch_failure, all_synced(&synced)) {
            (Some(failure), _) => Some(SyncEvent::Failed {
                reason: failure.reason,
                message: failure.sentence(&secret_name),
            }),
            (None, Some((services, endpoints))) if failed_probes == 0 => Some(SyncEvent::Synced {
                services,
                endpoints,
            }),
            _ => None,
        };
        if let Some(event) = event {
            state.event(event).await;
        }
    }
}

fn all_synced(synced: &[Option<(usize, usize)>]) -> Option<(usize, usize)> {
    synced.iter().try_fold((0, 0), |(s, e), entry| {
        let (services, endpoints) = (*entry)?;
        Some((s + services, e + endpoints))
    })
}

/// A spawned task that ends when its handle is dropped.
pub(crate) struct AbortOnDrop(pub(crate) tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// One cluster's status, metrics, log lines and withdrawal.
struct ClusterState {
    shared: Arc<Shared>,
    name: ClusterName,
    policy: UnreachablePolicy,
    status: Option<RemoteStatus>,
    /// Why the cluster last failed, until it is in sync again.
    failure: Option<Reason>,
    written: Option<Written>,
    /// A status change waits for the next allowed write.
    pending: bool,
    /// Failures since the last log line about them, and when that was.
    quiet: Option<(u32, Instant)>,
}

/// The status last written, and when.
struct Written {
    json: serde_json::Value,
    state: SyncState,
    at: Instant,
    claim: bool,
}

/// How often a cluster that keeps failing the same way gets a log line.
const LOG_SUMMARY_EVERY: Duration = Duration::from_secs(60);

impl ClusterState {
    fn new(shared: Arc<Shared>, name: ClusterName, policy: UnreachablePolicy) -> Self {
        Self {
            shared,
            name,
            policy,
            status: None,
            failure: None,
            written: None,
            pending: false,
            quiet: None,
        }
    }

    async fn event(&mut self, event: SyncEvent) {
        let status = RemoteStatus::next(self.status.as_ref(), &event, Timestamp::now());
        let before = self.status.as_ref().map(|s| {
            (
                s.state,
                s.conditions
                    .iter()
                    .find(|c| c.status)
                    .map(|c| c.reason.clone()),
            )
        });
        let after = (
            status.state,
            status
                .conditions
                .iter()
                .find(|c| c.status)
                .map(|c| c.reason.clone()),
        );
        self.log(&event, before.as_ref() == Some(&after));
        match &event {
            SyncEvent::Failed { reason, .. } => self.failure = Some(*reason),
            SyncEvent::Synced { .. } => self.failure = None,
            SyncEvent::Connecting => {}
        }
        if !matches!(event, SyncEvent::Connecting) {
            self.shared.outcome(&self.name);
        }
        self.shared
            .metrics
            .set_remote_state(self.name.as_str(), status.state);
        self.status = Some(status);
        self.flush().await;
    }

    /// A log line per change of state or reason; repeated failures are
    /// summarised once a minute instead of a line per attempt.
    fn log(&mut self, event: &SyncEvent, same: bool) {
        let cluster = &self.name;
        match event {
            SyncEvent::Connecting => {}
            SyncEvent::Synced {
                services,
                endpoints,
            } => {
                if !same {
                    tracing::info!(%cluster, services, endpoints, "remote cluster in sync");
                }
                self.quiet = None;
            }
            SyncEvent::Failed { reason, message } => {
                if !same {
                    tracing::warn!(%cluster, reason = reason.as_str(), "{message}");
                    self.quiet = Some((0, Instant::now()));
                    return;
                }
                let (count, since) = self.quiet.get_or_insert((0, Instant::now()));
                *count += 1;
                if since.elapsed() >= LOG_SUMMARY_EVERY {
                    tracing::warn!(%cluster, reason = reason.as_str(), attempts = *count, "still failing ({} attempts in the last {} s): {message}", *count, since.elapsed().as_secs());
                    self.quiet = Some((0, Instant::now()));
                }
            }
        }
    }

    /// Writes the status if the claim is current and it changed since
    /// written: at once when the state changed, otherwise at most every
    /// `status_refresh`.
    async fn flush(&mut self) {
        let Some(status) = &self.status else { return };
        if !self.shared.claim.is_current() {
            self.pending = true;
            return;
        }
        let json = status.to_json();
        if let Some(written) = &self.written
            && written.claim
        {
            if written.json == json {
                self.pending = false;
                return;
            }
            if written.state == status.state
                && written.at.elapsed() < self.shared.config.status_refresh
            {
                self.pending = true;
                return;
            }
        }
        match self.shared.sink.write(self.name.clone(), status).await {
            Ok(()) => {
                self.pending = false;
                self.written = Some(Written {
                    json,
                    state: status.state,
                    at: Instant::now(),
                    claim: true,
                });
            }
            Err(message) => {
                tracing::warn!(cluster = %self.name, "writing the cluster's status failed; retrying: {message}");
                self.pending = true;
                self.written = Some(Written {
                    json: serde_json::Value::Null,
                    state: status.state,
                    at: Instant::now(),
                    claim: true,
                });
            }
        }
    }

    /// The next moment something is due: a held-back status write, or the
    /// policy's withdrawal.
    fn deadline(&self) -> Option<Instant> {
        let flush = self.pending.then(|| {
            let refresh = if self.shared.claim.is_current() {
                self.shared.config.status_refresh
            } else {
                // Not leading: look again when the claim may have come back.
                self.shared.config.probe_interval
            };
            self.written
                .as_ref()
                .map_or_else(Instant::now, |w| w.at + refresh)
        });
        let withdraw = self.status.as_ref().and_then(|status| {
            if status.withdrawn && status.state != SyncState::InSync {
                return None;
            }
            match status.withdrawal(self.policy, Timestamp::now()) {
                Withdrawal::Keep => None,
                Withdrawal::Now => Some(Instant::now()),
                Withdrawal::After(left) => Some(Instant::now() + left),
            }
        });
        match (flush, withdraw) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Does what is due; says whether the cluster's data was withdrawn.
    async fn on_deadline(&mut self) -> bool {
        let withdraw = self.status.as_ref().is_some_and(|s| {
            !s.withdrawn && s.withdrawal(self.policy, Timestamp::now()) == Withdrawal::Now
        });
        if withdraw {
            if let Some(status) = &self.status {
                tracing::warn!(cluster = %self.name, "withdrawing the remote cluster's endpoints: {}", status.state.as_str());
                self.status = Some(status.withdrawn());
            }
            for feature in &self.shared.features {
                feature.forget(self.name.clone()).await;
            }
        }
        self.flush().await;
        withdraw
    }

    /// Waits for `until` (or forever), keeping status writes and the
    /// withdrawal policy going meanwhile.
    async fn wait(&mut self, until: Option<BoxFuture<'static, ()>>) {
        let mut until = until.unwrap_or_else(|| Box::pin(std::future::pending()));
        loop {
            let deadline = self.deadline();
            tokio::select! {
                () = &mut until => return,
                () = sleep_until(deadline) => {
                    self.on_deadline().await;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A port on loopback that nothing listens on (it was just freed).
    async fn free_port() -> std::net::SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        listener.local_addr().expect("address")
    }

    #[tokio::test]
    async fn a_remote_that_listens_again_is_noticed_within_the_redial_interval() {
        let address = free_port().await;
        let every = Duration::from_millis(50);
        let waiting =
            tokio::spawn(async move { listening_again(&address.to_string(), every).await });
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!waiting.is_finished(), "nothing listens yet");
        let _listener = tokio::net::TcpListener::bind(address)
            .await
            .expect("rebind");
        let back = Instant::now();
        tokio::time::timeout(Duration::from_secs(2), waiting)
            .await
            .expect("noticed")
            .expect("task");
        assert!(
            back.elapsed() < Duration::from_millis(500),
            "{:?}",
            back.elapsed()
        );
    }

    #[tokio::test]
    async fn an_address_that_never_refused_does_not_cut_the_backoff_short() {
        // A load balancer accepting connections for a down API server: only
        // the backoff paces the attempts.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let address = listener.local_addr().expect("address").to_string();
        let waited = tokio::time::timeout(
            Duration::from_millis(400),
            listening_again(&address, Duration::from_millis(50)),
        )
        .await;
        assert!(
            waited.is_err(),
            "it never went down, so it did not come back"
        );
    }

    #[tokio::test]
    async fn the_address_comes_from_the_kubeconfig() {
        let kubeconfig = br#"
apiVersion: v1
kind: Config
clusters:
- name: east
  cluster: {server: "https://10.1.2.3:6443", insecure-skip-tls-verify: true}
- name: west
  cluster: {server: "https://west.example"}
users:
- name: fedmesh
  user: {token: abc}
contexts:
- name: east
  context: {cluster: east, user: fedmesh}
- name: west
  context: {cluster: west, user: fedmesh}
current-context: west
"#;
        assert_eq!(
            server_address(kubeconfig).await.as_deref(),
            Some("west.example:443")
        );
        assert_eq!(server_address(b"not: [a kubeconfig").await, None);
    }
}
