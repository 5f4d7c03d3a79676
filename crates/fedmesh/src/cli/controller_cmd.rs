//! `fedmesh controller`: the mesh controllers against the local cluster, with
//! leader election, metrics and health, until SIGTERM or Ctrl-C.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Args;
use fedmesh_controller::{ControllerConfig, Metrics};
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
        let client = match &self.kubeconfig {
            Some(path) => {
                Cluster::connect(path, self.context.as_deref())
                    .await?
                    .client
            }
            None => {
                let config = match &self.context {
                    Some(context) => kube::Config::from_kubeconfig(&kube::config::KubeConfigOptions {
                        context: Some(context.clone()),
                        ..Default::default()
                    })
                    .await
                    .with_context(|| format!("cannot load context {context:?} from the default kubeconfig"))?,
                    None => kube::Config::infer().await.context(
                        "no --kubeconfig given, and neither $KUBECONFIG, ~/.kube/config nor an in-cluster ServiceAccount is usable",
                    )?,
                };
                let url = config.cluster_url.to_string();
                let client =
                    kube::Client::try_from(config).context("cannot build a Kubernetes client")?;
                connect::check_reachable(&client, &url).await?;
                client
            }
        };
        if self.install_crds {
            install_crds(&client).await?;
        }
        let mut config = ControllerConfig::new(self.namespace, identity());
        config.lease_name = self.lease_name;
        config.metrics_addr = Some(self.metrics_addr);
        tracing::info!(identity = %config.identity, namespace = %config.namespace, lease = %config.lease_name, metrics = %self.metrics_addr, "fedmesh controller starting");
        Ok(
            fedmesh_controller::run(client, config, Metrics::new(), runtime::shutdown_signal())
                .await?,
        )
    }
}

/// Creates or updates the RemoteClusterConfiguration CRD.
async fn install_crds(client: &kube::Client) -> anyhow::Result<()> {
    let crd =
        fedmesh_controller::mesh::remotes::crd().context("the built-in CRD manifest is invalid")?;
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
fn identity() -> String {
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
