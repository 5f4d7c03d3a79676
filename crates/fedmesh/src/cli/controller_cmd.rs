//! `fedmesh controller`: the mesh controllers against the local cluster, with
//! leader election, metrics and health, until SIGTERM or Ctrl-C.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use fedmesh_controller::{ControllerConfig, IdentityOutputs, Metrics};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;

use super::apply::{Applier, Kind};
use super::connect::{self, Cluster};
use super::runtime;

/// Arguments of `fedmesh controller`.
#[derive(Debug, Args)]
pub(crate) struct ControllerArgs {
    /// Kubeconfig of the local cluster. Without it: $KUBECONFIG, ~/.kube/config,
    /// then the in-cluster ServiceAccount.
    #[arg(long, value_name = "FILE")]
    kubeconfig: Option<PathBuf>,
    /// Context of the kubeconfig to use (default: its current context).
    #[arg(long, value_name = "NAME")]
    context: Option<String>,
    /// Namespace of the Lease and of access Secrets named without one.
    #[arg(
        long,
        value_name = "NS",
        env = "POD_NAMESPACE",
        default_value = "fedmesh"
    )]
    namespace: String,
    /// Where to serve /metrics, /healthz and /readyz.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:9090")]
    metrics_addr: SocketAddr,
    /// Name of the Lease replicas compete for; only its holder writes.
    #[arg(long, value_name = "NAME", default_value = "fedmesh-controller")]
    lease_name: String,
    /// How long another replica waits, having seen the Lease unchanged,
    /// before taking it over (e.g. `15s`, `500ms`).
    #[arg(long, value_name = "DURATION", default_value = "15s", value_parser = parse_duration)]
    lease_duration: Duration,
    /// How long the holder's claim stays current after its last successful
    /// renewal; must be shorter than --lease-duration.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    renew_deadline: Duration,
    /// How often the holder renews the Lease.
    #[arg(long, value_name = "DURATION", default_value = "2s", value_parser = parse_duration)]
    renew_interval: Duration,
    /// How often every cluster is probed.
    #[arg(long, value_name = "DURATION", default_value = "2s", value_parser = parse_duration)]
    probe_interval: Duration,
    /// How long a probe, or a connection attempt, may take.
    #[arg(long, value_name = "DURATION", default_value = "2s", value_parser = parse_duration)]
    probe_timeout: Duration,
    /// Federated endpoint identity: mirror remote pods and host endpoints as
    /// Calico NetworkSets and GlobalNetworkSets (projectcalico.org/v3 when
    /// served, else crd.projectcalico.org/v1).
    #[arg(long, env = "FEDMESH_IDENTITY_CALICO")]
    identity_calico: bool,
    /// Federated endpoint identity: mirror remote pods and host endpoints as
    /// Cilium CiliumCIDRGroups.
    #[arg(long, env = "FEDMESH_IDENTITY_CILIUM")]
    identity_cilium: bool,
    /// Create or update the RemoteClusterConfiguration CRD before starting.
    #[arg(long)]
    install_crds: bool,
    #[command(flatten)]
    log: runtime::LogArgs,
}

impl ControllerArgs {
    pub(crate) fn run(self) -> anyhow::Result<ExitCode> {
        self.log.init("info")?;
        runtime::block_on(self.serve())??;
        Ok(ExitCode::SUCCESS)
    }

    async fn serve(self) -> anyhow::Result<()> {
        let client = local_client(self.kubeconfig.as_deref(), self.context.as_deref()).await?;
        if self.install_crds {
            install_crds(&client).await?;
        }
        let mut config = ControllerConfig::new(self.namespace, identity());
        if self.renew_deadline >= self.lease_duration {
            anyhow::bail!(
                "--renew-deadline ({:?}) must be shorter than --lease-duration ({:?}): otherwise two replicas could write at once",
                self.renew_deadline,
                self.lease_duration
            );
        }
        config.lease_name = self.lease_name;
        config.lease_duration = self.lease_duration;
        config.renew_deadline = self.renew_deadline;
        config.renew_interval = self.renew_interval;
        config.probe_interval = self.probe_interval;
        config.probe_timeout = self.probe_timeout;
        config.metrics_addr = Some(self.metrics_addr);
        config.identity_outputs = IdentityOutputs {
            calico: self.identity_calico,
            cilium: self.identity_cilium,
        };
        tracing::info!(identity = %config.identity, namespace = %config.namespace, lease = %config.lease_name, metrics = %self.metrics_addr, identity_calico = self.identity_calico, identity_cilium = self.identity_cilium, "fedmesh controller starting");
        Ok(
            fedmesh_controller::run(client, config, Metrics::new(), runtime::shutdown_signal())
                .await?,
        )
    }
}

/// A client for the cluster a controller runs against: `kubeconfig` (at
/// `context`), else $KUBECONFIG, ~/.kube/config, then the in-cluster
/// ServiceAccount; checked to answer.
pub(crate) async fn local_client(
    kubeconfig: Option<&Path>,
    context: Option<&str>,
) -> anyhow::Result<kube::Client> {
    if let Some(path) = kubeconfig {
        return Ok(Cluster::connect(path, context).await?.client);
    }
    let config = match context {
        Some(context) => kube::Config::from_kubeconfig(&kube::config::KubeConfigOptions {
            context: Some(context.to_owned()),
            ..Default::default()
        })
        .await
        .with_context(|| format!("cannot load context {context:?} from the default kubeconfig"))?,
        None => kube::Config::infer().await.context(
            "no --kubeconfig given, and neither $KUBECONFIG, ~/.kube/config nor an in-cluster ServiceAccount is usable",
        )?,
    };
    let url = config.cluster_url.to_string();
    let client = kube::Client::try_from(config).context("cannot build a Kubernetes client")?;
    connect::check_reachable(&client, &url).await?;
    Ok(client)
}

/// Creates or updates the RemoteClusterConfiguration CRD.
async fn install_crds(client: &kube::Client) -> anyhow::Result<()> {
    let crd =
        fedmesh_controller::mesh::remotes::crd().context("the built-in CRD manifest is invalid")?;
    install_crd(client, crd).await
}

/// Creates or updates `crd` in the cluster behind `client`.
pub(crate) async fn install_crd(
    client: &kube::Client,
    crd: CustomResourceDefinition,
) -> anyhow::Result<()> {
    let report = |line: &str| tracing::info!("{line}");
    let applier = Applier::new(client.clone(), "the local cluster", &report);
    applier
        .ensure(
            &Kind::cluster::<CustomResourceDefinition>(),
            serde_json::to_value(&crd).context("cannot encode the CRD")?,
        )
        .await?;
    Ok(())
}

/// This replica's name in the Lease: the pod's name when a Deployment sets
/// POD_NAME, else host name and process id (unique on one machine).
pub(crate) fn identity() -> String {
    if let Some(pod) = std::env::var("POD_NAME").ok().filter(|p| !p.is_empty()) {
        return pod;
    }
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "fedmesh".into());
    format!("{host}-{}", std::process::id())
}

/// Parses `500ms`, `15s`, `2m` or a bare number of seconds.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| c.is_ascii_alphabetic()) {
        Some(at) => text.split_at(at),
        None => (text, "s"),
    };
    let value: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a duration such as 500ms, 15s or 2m"))?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" => value * 60.0,
        _ => return Err(format!("unknown unit {unit:?} in {text:?}: use ms, s or m")),
    };
    Duration::try_from_secs_f64(seconds)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| format!("{text:?} must be a positive duration"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("15s"), Ok(Duration::from_secs(15)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("-1s").is_err());
        assert!(parse_duration("5h").is_err());
        assert!(parse_duration("soon").is_err());
    }
}
