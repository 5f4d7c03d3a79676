//! Remote clusters: one task per RemoteClusterConfiguration reads its access
//! Secret, connects with the kubeconfig inside, watches the remote's Services
//! and EndpointSlices (read-only: nothing is ever written to a remote), and
//! keeps the configuration's status.
//!
//! Creating, editing or deleting a RemoteClusterConfiguration, or rotating its
//! Secret, restarts only that remote's task: no process restart.

use std::collections::HashMap;
use std::time::Duration;

use fedmesh_core::remote::{
    self, RemoteClusterSpec, RemoteStatus, SyncEvent, SyncState, UnreachablePolicy, Withdrawal,
};
use fedmesh_core::{ClusterName, Origin};
use futures::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams};
use kube::runtime::{WatchStreamExt, watcher};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::config::ControllerConfig;
use crate::engine::IndexEvent;
use crate::metrics::Metrics;
use crate::sources::{self, SyncTracker};
use crate::task::AbortOnDrop;
use crate::watch::Progress;

/// The RemoteClusterConfiguration resource (Calico's, cluster-scoped).
pub fn api_resource() -> ApiResource {
    ApiResource {
        group: "projectcalico.org".into(),
        version: "v3".into(),
        api_version: remote::API_VERSION.into(),
        kind: remote::KIND.into(),
        plural: "remoteclusterconfigurations".into(),
    }
}

/// Everything a remote's task needs from the controller.
#[derive(Clone)]
pub struct Shared {
    /// The local cluster.
    pub local: kube::Client,
    /// The controller's settings.
    pub config: ControllerConfig,
    /// Where index events go.
    pub events: mpsc::Sender<IndexEvent>,
    /// Whether this replica leads (only the leader writes status).
    pub leading: watch::Receiver<bool>,
    /// Metrics.
    pub metrics: Metrics,
}

struct Running {
    spec: RemoteClusterSpec,
    task: JoinHandle<()>,
}

// When the controller stops, `run` is dropped with its map of tasks: each
// remote's task must end with it, not linger against stopped servers.
impl Drop for Running {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Watches RemoteClusterConfigurations and runs one task per remote.
pub async fn run(shared: Shared) {
    let api = Api::<DynamicObject>::all_with(shared.local.clone(), &api_resource());
    let mut stream = watcher(api, watcher::Config::default())
        .default_backoff()
        .boxed();
    let mut running: HashMap<String, Running> = HashMap::new();
    let mut listing: Vec<DynamicObject> = Vec::new();
    while let Some(item) = stream.next().await {
        match item {
            Ok(watcher::Event::Init) => listing.clear(),
            Ok(watcher::Event::InitApply(object)) => listing.push(object),
            Ok(watcher::Event::InitDone) => {
                let names: Vec<String> = listing
                    .iter()
                    .filter_map(|o| o.metadata.name.clone())
                    .collect();
                let gone: Vec<String> = running
                    .keys()
                    .filter(|n| !names.contains(n))
                    .cloned()
                    .collect();
                for name in gone {
                    stop(&shared, &mut running, &name).await;
                }
                for object in std::mem::take(&mut listing) {
                    configure(&shared, &mut running, &object).await;
                }
            }
            Ok(watcher::Event::Apply(object)) => configure(&shared, &mut running, &object).await,
            Ok(watcher::Event::Delete(object)) => {
                if let Some(name) = &object.metadata.name {
                    stop(&shared, &mut running, name).await;
                }
            }
            Err(error) => {
                tracing::warn!(%error, "watching RemoteClusterConfigurations failed; retrying")
            }
        }
    }
}

/// Starts, restarts or stops the task of one RemoteClusterConfiguration to
/// match its current spec.
async fn configure(
    shared: &Shared,
    running: &mut HashMap<String, Running>,
    object: &DynamicObject,
) {
    let Some(name) = object.metadata.name.clone() else {
        return;
    };
    let raw = serde_json::to_value(object).unwrap_or_default();
    match RemoteClusterSpec::from_object(&raw, &shared.config.namespace) {
        Ok(spec) => {
            if running
                .get(&name)
                .is_some_and(|r| r.spec == spec && !r.task.is_finished())
            {
                return;
            }
            stop(shared, running, &name).await;
            tracing::info!(remote = %name, secret = %format!("{}/{}", spec.access_secret.namespace, spec.access_secret.name), "connecting to remote cluster");
            let task = tokio::spawn(run_remote(shared.clone(), spec.clone()));
            running.insert(name, Running { spec, task });
        }
        Err(error) => {
            tracing::warn!(remote = %name, %error, "RemoteClusterConfiguration is incomplete");
            stop(shared, running, &name).await;
            let status = RemoteStatus::next(
                None,
                &SyncEvent::ConfigIncomplete {
                    reason: "InvalidConfiguration".into(),
                    message: error.to_string(),
                },
                Timestamp::now(),
            );
            shared.metrics.set_remote_state(&name, status.state);
            if *shared.leading.borrow() {
                write_status(&shared.local, &name, &status).await;
            }
        }
    }
}

async fn stop(shared: &Shared, running: &mut HashMap<String, Running>, name: &str) {
    if let Some(old) = running.remove(name) {
        old.task.abort();
        tracing::info!(remote = %name, "stopped syncing remote cluster");
    }
    shared.metrics.forget_remote(name);
    if let Ok(cluster) = ClusterName::new(name) {
        let _ = shared
            .events
            .send(IndexEvent::RemoveCluster(Origin::Remote(cluster)))
            .await;
    }
}

/// The life of one remote: connect, sync, report, and start over when its
/// Secret changes or the connection cannot be made.
async fn run_remote(shared: Shared, spec: RemoteClusterSpec) {
    let mut reporter = Reporter::new(&shared, &spec);
    let mut backoff = Duration::from_millis(500);
    loop {
        reporter.report(SyncEvent::Connecting).await;
        match connect(&shared, &spec).await {
            Ok((client, secret_data)) => {
                backoff = Duration::from_millis(500);
                sync(&shared, &spec, client, secret_data, &mut reporter).await;
            }
            Err(Problem::Config { reason, message }) => {
                reporter
                    .report(SyncEvent::ConfigIncomplete { reason, message })
                    .await;
                reporter.withdraw().await;
                wait_for_secret_change(&shared, &spec, None).await;
                continue;
            }
            Err(Problem::Connection(message)) => {
                reporter
                    .report(SyncEvent::Failed {
                        reason: "LocalAPIError".into(),
                        message,
                    })
                    .await;
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(shared.config.max_backoff);
    }
}

enum Problem {
    Config { reason: String, message: String },
    Connection(String),
}

type SecretData = std::collections::BTreeMap<String, Vec<u8>>;

async fn read_secret(
    shared: &Shared,
    spec: &RemoteClusterSpec,
) -> Result<Option<SecretData>, kube::Error> {
    let api = Api::<Secret>::namespaced(shared.local.clone(), &spec.access_secret.namespace);
    Ok(api.get_opt(&spec.access_secret.name).await?.map(|secret| {
        secret
            .data
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, v.0))
            .collect()
    }))
}

/// Reads the access Secret and builds a client for the remote from it.
async fn connect(
    shared: &Shared,
    spec: &RemoteClusterSpec,
) -> Result<(kube::Client, SecretData), Problem> {
    let secret_name = format!(
        "{}/{}",
        spec.access_secret.namespace, spec.access_secret.name
    );
    let data = read_secret(shared, spec)
        .await
        .map_err(|e| Problem::Connection(format!("reading secret {secret_name}: {e}")))?
        .ok_or_else(|| Problem::Config {
            reason: "SecretNotFound".into(),
            message: format!("secret {secret_name} not found"),
        })?;
    let kubeconfig = remote::kubeconfig_from_secret(&spec.access_secret, &data).map_err(|e| {
        Problem::Config {
            reason: "InvalidSecret".into(),
            message: e.to_string(),
        }
    })?;
    let client = remote_client(kubeconfig)
        .await
        .map_err(|e| Problem::Config {
            reason: "InvalidKubeconfig".into(),
            message: format!("secret {secret_name}: {e:#}"),
        })?;
    Ok((client, data))
}

/// A client for a remote cluster from the bytes of a kubeconfig.
pub async fn remote_client(kubeconfig: &[u8]) -> anyhow::Result<kube::Client> {
    let text = std::str::from_utf8(kubeconfig)?;
    let kubeconfig = kube::config::Kubeconfig::from_yaml(text)?;
    let config = kube::Config::from_custom_kubeconfig(
        kubeconfig,
        &kube::config::KubeConfigOptions::default(),
    )
    .await?;
    Ok(kube::Client::try_from(config)?)
}

/// Syncs the remote until its Secret changes.
async fn sync(
    shared: &Shared,
    spec: &RemoteClusterSpec,
    client: kube::Client,
    secret_data: SecretData,
    reporter: &mut Reporter,
) {
    let origin = Origin::Remote(spec.name.clone());
    let (progress_tx, mut progress) = mpsc::unbounded_channel();
    let watches = tokio::spawn(sources::watch_cluster(
        client,
        origin,
        shared.events.clone(),
        progress_tx,
    ));
    let _abort = AbortOnDrop(watches);
    let secret_changed = wait_for_secret_change(shared, spec, Some(secret_data));
    tokio::pin!(secret_changed);
    let mut tracker = SyncTracker::default();
    let mut leading = shared.leading.clone();
    loop {
        let deadline = reporter.withdraw_deadline();
        tokio::select! {
            () = &mut secret_changed => {
                tracing::info!(remote = %spec.name, "access secret changed; reconnecting");
                return;
            }
            Some(report) = progress.recv() => {
                tracker.observe(&report);
                if let Progress::Failed(message) = report.progress {
                    reporter.report(SyncEvent::Failed { reason: "Unreachable".into(), message }).await;
                }
            }
            () = sleep_until(reporter.flush_deadline()) => reporter.rewrite().await,
            () = sleep_until(deadline) => {
                reporter.withdraw().await;
                if reporter.withdrawn {
                    // The index forgot this remote; only fresh watches (which
                    // relist) bring it back, so start over.
                    return;
                }
            }
            Ok(()) = leading.changed() => reporter.rewrite().await,
        }
        // Report a sync once both kinds are listed and no newer progress waits.
        if let Some((services, endpoints)) = tracker.in_sync()
            && progress.is_empty()
            && reporter.status.as_ref().is_none_or(|s| {
                (s.state, s.services, s.endpoints) != (SyncState::InSync, services, endpoints)
            })
        {
            reporter
                .report(SyncEvent::Synced {
                    services,
                    endpoints,
                })
                .await;
        }
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Returns once the access Secret's data differs from `current` (`None`:
/// once it exists). Polls: Secrets change rarely and a watch per remote on a
/// single object buys little.
async fn wait_for_secret_change(
    shared: &Shared,
    spec: &RemoteClusterSpec,
    current: Option<SecretData>,
) {
    let mut interval = tokio::time::interval(Duration::from_secs(2));
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    interval.tick().await;
    loop {
        interval.tick().await;
        match read_secret(shared, spec).await {
            Ok(now) if now != current => return,
            Ok(_) => {}
            Err(error) => tracing::debug!(%error, "re-reading access secret failed"),
        }
    }
}

/// Keeps one remote's status, metrics and withdrawal.
struct Reporter {
    local: kube::Client,
    name: String,
    origin: Origin,
    policy: UnreachablePolicy,
    events: mpsc::Sender<IndexEvent>,
    leading: watch::Receiver<bool>,
    metrics: Metrics,
    status: Option<RemoteStatus>,
    written: Option<Written>,
    /// A status change waits for the next write.
    pending: bool,
    refresh: Duration,
    withdrawn: bool,
}

/// The status last written, and when.
struct Written {
    json: serde_json::Value,
    state: SyncState,
    at: tokio::time::Instant,
}

impl Reporter {
    fn new(shared: &Shared, spec: &RemoteClusterSpec) -> Self {
        Self {
            local: shared.local.clone(),
            name: spec.name.to_string(),
            origin: Origin::Remote(spec.name.clone()),
            policy: spec.unreachable,
            events: shared.events.clone(),
            leading: shared.leading.clone(),
            metrics: shared.metrics.clone(),
            status: None,
            written: None,
            pending: false,
            refresh: shared.config.status_refresh,
            withdrawn: false,
        }
    }

    async fn report(&mut self, event: SyncEvent) {
        let status = RemoteStatus::next(self.status.as_ref(), &event, Timestamp::now());
        if status.state == SyncState::InSync {
            self.withdrawn = false;
        }
        if self.status.as_ref().map(|s| s.state) != Some(status.state) {
            tracing::info!(remote = %self.name, state = status.state.as_str(), ?event, "remote cluster state");
        }
        self.metrics.set_remote_state(&self.name, status.state);
        self.status = Some(status);
        self.rewrite().await;
    }

    /// Writes the status if this replica leads and it changed since last
    /// written: at once when the state changed, otherwise at most every
    /// `status_refresh`.
    async fn rewrite(&mut self) {
        let Some(status) = &self.status else { return };
        if !*self.leading.borrow() {
            self.written = None;
            self.pending = false;
            return;
        }
        let json = status.to_json();
        if let Some(written) = &self.written {
            if written.json == json {
                self.pending = false;
                return;
            }
            if written.state == status.state && written.at.elapsed() < self.refresh {
                self.pending = true;
                return;
            }
        }
        self.pending = !write_status(&self.local, &self.name, status).await;
        if !self.pending {
            self.written = Some(Written {
                json,
                state: status.state,
                at: tokio::time::Instant::now(),
            });
        }
    }

    /// When a held-back status should be written.
    fn flush_deadline(&self) -> Option<tokio::time::Instant> {
        if !self.pending {
            return None;
        }
        Some(
            self.written
                .as_ref()
                .map_or_else(tokio::time::Instant::now, |w| w.at + self.refresh),
        )
    }

    /// When the policy will want the remote's endpoints withdrawn.
    fn withdraw_deadline(&self) -> Option<tokio::time::Instant> {
        if self.withdrawn {
            return None;
        }
        match self
            .status
            .as_ref()?
            .withdrawal(self.policy, Timestamp::now())
        {
            Withdrawal::Keep => None,
            Withdrawal::Now => Some(tokio::time::Instant::now()),
            Withdrawal::After(left) => Some(tokio::time::Instant::now() + left),
        }
    }

    /// Withdraws the remote's endpoints if the policy says so now.
    async fn withdraw(&mut self) {
        let now = self
            .status
            .as_ref()
            .is_some_and(|s| s.withdrawal(self.policy, Timestamp::now()) == Withdrawal::Now);
        if now && !self.withdrawn {
            tracing::warn!(remote = %self.name, "withdrawing the endpoints of an unreachable remote cluster");
            self.withdrawn = true;
            let _ = self
                .events
                .send(IndexEvent::RemoveCluster(self.origin.clone()))
                .await;
        }
    }
}

/// Writes a RemoteClusterConfiguration's status; says whether it worked.
async fn write_status(local: &kube::Client, name: &str, status: &RemoteStatus) -> bool {
    let api = Api::<DynamicObject>::all_with(local.clone(), &api_resource());
    let patch = Patch::Merge(serde_json::json!({ "status": status.to_json() }));
    match api
        .patch_status(name, &PatchParams::default(), &patch)
        .await
    {
        Ok(_) => true,
        Err(error) => {
            tracing::warn!(remote = %name, %error, "writing RemoteClusterConfiguration status failed");
            false
        }
    }
}

/// The RemoteClusterConfiguration CustomResourceDefinition fedmesh serves
/// (`deploy/crds/remoteclusterconfigurations.yaml`).
pub fn crd() -> Result<
    k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
    serde_saphyr::Error,
> {
    serde_saphyr::from_str(include_str!(
        "../../../deploy/crds/remoteclusterconfigurations.yaml"
    ))
}
