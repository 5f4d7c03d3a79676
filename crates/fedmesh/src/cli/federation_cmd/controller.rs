//! `fedmesh federation controller`: the federation control plane against a
//! Kubernetes API server that serves fedmesh's Cluster CRD, with leader
//! election, metrics and health, until SIGTERM or Ctrl-C.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use fedmesh_controller::Metrics;
use fedmesh_controller::federation::{self, FederationOptions};
use fedmesh_core::federation::{FederationName, Scope};

use crate::cli::controller_cmd::{identity, install_crd, local_client, parse_duration};
use crate::cli::runtime;

/// What in the federation API is federated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Federate {
    /// Every Service (a dedicated federation API server), except those of
    /// the system namespaces and of fedmesh's own namespace.
    All,
    /// Only Services in namespaces labelled
    /// `federation.fedmesh.io/federated=true` (a shared cluster).
    LabelledNamespaces,
}

impl From<Federate> for Scope {
    fn from(federate: Federate) -> Self {
        match federate {
            Federate::All => Scope::Everything,
            Federate::LabelledNamespaces => Scope::LabelledNamespaces,
        }
    }
}

/// The settings `serve` and `controller` share.
#[derive(Debug, Args)]
pub(crate) struct ControlPlaneArgs {
    /// The federation's name: the label value on member copies and the
    /// `<federation>` of its DNS names (a DNS label).
    #[arg(long, value_name = "NAME")]
    pub(crate) name: String,
    /// Namespace of the Lease and of member Secrets named without one.
    #[arg(
        long,
        value_name = "NS",
        env = "POD_NAMESPACE",
        default_value = "fedmesh"
    )]
    pub(crate) namespace: String,
    /// How often every member is probed.
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = parse_duration)]
    pub(crate) probe_interval: Duration,
    /// How long a probe, or a connection attempt, may take.
    #[arg(long, value_name = "DURATION", default_value = "800ms", value_parser = parse_duration)]
    pub(crate) probe_timeout: Duration,
    /// Probes in a row that must fail before a member is Offline.
    #[arg(long, value_name = "N", default_value_t = fedmesh_core::federation::DEFAULT_FAILURE_THRESHOLD,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) failure_threshold: u32,
}

impl ControlPlaneArgs {
    /// The controller's settings, with the federation's timings.
    pub(crate) fn config(
        &self,
    ) -> anyhow::Result<(fedmesh_controller::ControllerConfig, FederationName)> {
        let name = FederationName::new(&self.name)?;
        let mut config = federation::controller_config(self.namespace.clone(), identity());
        config.probe_interval = self.probe_interval;
        config.probe_timeout = self.probe_timeout;
        config.failure_threshold = self.failure_threshold;
        Ok((config, name))
    }
}

/// Arguments of `fedmesh federation controller`.
#[derive(Debug, Args)]
pub(crate) struct FederationControllerArgs {
    /// Kubeconfig of the federation API server. Without it: $KUBECONFIG,
    /// ~/.kube/config, then the in-cluster ServiceAccount.
    #[arg(long, value_name = "FILE")]
    kubeconfig: Option<PathBuf>,
    /// Context of the kubeconfig to use (default: its current context).
    #[arg(long, value_name = "NAME")]
    context: Option<String>,
    #[command(flatten)]
    control_plane: ControlPlaneArgs,
    /// What is federated: every Service (a dedicated federation API server)
    /// or those in labelled namespaces (a shared cluster).
    #[arg(long, value_enum, default_value = "labelled-namespaces")]
    federate: Federate,
    /// Where to serve /metrics, /healthz and /readyz.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:9091")]
    metrics_addr: SocketAddr,
    /// Name of the Lease replicas compete for; only its holder writes.
    #[arg(
        long,
        value_name = "NAME",
        default_value = "fedmesh-federation-controller"
    )]
    lease_name: String,
    /// How long another replica waits, having seen the Lease unchanged,
    /// before taking it over.
    #[arg(long, value_name = "DURATION", default_value = "15s", value_parser = parse_duration)]
    lease_duration: Duration,
    /// How long the holder's claim stays current after its last successful
    /// renewal; must be shorter than --lease-duration.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    renew_deadline: Duration,
    /// Create or update the Cluster CRD before starting.
    #[arg(long)]
    install_crds: bool,
    #[command(flatten)]
    log: runtime::LogArgs,
}

impl FederationControllerArgs {
    pub(crate) fn run(self) -> anyhow::Result<ExitCode> {
        self.log.init("info")?;
        runtime::block_on(self.serve())??;
        Ok(ExitCode::SUCCESS)
    }

    async fn serve(self) -> anyhow::Result<()> {
        if self.renew_deadline >= self.lease_duration {
            anyhow::bail!(
                "--renew-deadline ({:?}) must be shorter than --lease-duration ({:?}): otherwise two replicas could write at once",
                self.renew_deadline,
                self.lease_duration
            );
        }
        let (mut config, name) = self.control_plane.config()?;
        let client = local_client(self.kubeconfig.as_deref(), self.context.as_deref()).await?;
        if self.install_crds {
            install_crd(
                &client,
                federation::crd().context("the built-in CRD manifest is invalid")?,
            )
            .await?;
        }
        config.lease_name = self.lease_name;
        config.lease_duration = self.lease_duration;
        config.renew_deadline = self.renew_deadline;
        config.metrics_addr = Some(self.metrics_addr);
        tracing::info!(federation = %name, identity = %config.identity, namespace = %config.namespace, metrics = %self.metrics_addr, "fedmesh federation controller starting");
        let options = FederationOptions {
            name,
            scope: self.federate.into(),
        };
        Ok(federation::run(
            client,
            config,
            options,
            Metrics::new(),
            runtime::shutdown_signal(),
        )
        .await?)
    }
}
