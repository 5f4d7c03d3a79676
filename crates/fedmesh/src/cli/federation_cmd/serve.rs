//! `fedmesh federation serve`: a dedicated federation API server (embedded,
//! kubeconfig context `federation`, the Cluster CRD installed) with the
//! federation controller in the same process, until SIGTERM or Ctrl-C; with
//! `--dns-zone` also fedmesh's DNS server for the federation's zone, fed from
//! the same API (`fedmesh dns serve` in the same process).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use fedmesh_apiserver::ApiServer;
use fedmesh_controller::federation::{self, FederationOptions};
use fedmesh_controller::{ControllerConfig, Metrics};
use fedmesh_core::federation::{FederationName, Scope};

use super::controller::ControlPlaneArgs;
use crate::cli::connect::Cluster;
use crate::cli::controller_cmd::{install_crd, parse_duration};
use crate::cli::dns_cmd::{
    DnsServeOptions, DnsServing, ProviderArgs, ProviderKind, ProviderOptions, ZoneFormArg,
};
use crate::cli::runtime;

/// The kubeconfig context (and cluster and user) of the federation API.
pub(crate) const CONTEXT: &str = "federation";

/// Arguments of `fedmesh federation serve`.
#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    #[command(flatten)]
    control_plane: ControlPlaneArgs,
    /// Directory for the federation API's store, certificates and keys.
    #[arg(long, value_name = "DIR")]
    data_dir: PathBuf,
    /// Where to write the kubeconfig (context `federation`) for kubectl and
    /// `fedmesh federation join`.
    #[arg(long, value_name = "FILE")]
    kubeconfig_out: PathBuf,
    /// Address of the federation API; port 0 picks a free port (the
    /// kubeconfig says which).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8443")]
    listen: SocketAddr,
    /// Where to serve the controller's /metrics, /healthz and /readyz.
    #[arg(long, value_name = "ADDR")]
    metrics_addr: Option<SocketAddr>,
    /// Serve the federation's DNS zone (`example.com`) from this process.
    #[arg(long, value_name = "ZONE", help_heading = "DNS")]
    dns_zone: Option<String>,
    /// Where the DNS server answers, UDP and TCP.
    #[arg(
        long,
        value_name = "ADDR",
        default_value = "0.0.0.0:53",
        requires = "dns_zone",
        help_heading = "DNS"
    )]
    dns_listen: SocketAddr,
    /// TTL of the records, unless a Service sets its own.
    #[arg(long, value_name = "SECONDS", default_value_t = fedmesh_core::dns::DEFAULT_TTL,
          requires = "dns_zone", help_heading = "DNS")]
    dns_ttl: u32,
    /// Form of the zone names.
    #[arg(
        long,
        value_enum,
        default_value = "zone-only",
        requires = "dns_zone",
        help_heading = "DNS"
    )]
    dns_zone_form: ZoneFormArg,
    /// Also keep this external DNS provider's zone (the same) in step.
    #[arg(long, value_enum, requires = "dns_zone", help_heading = "DNS")]
    dns_provider: Option<ProviderKind>,
    /// A provider round at least this often.
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = parse_duration,
          help_heading = "DNS")]
    dns_resync: Duration,
    #[command(flatten)]
    provider_settings: ProviderArgs,
    #[command(flatten)]
    log: runtime::LogArgs,
}

impl ServeArgs {
    pub(crate) fn run(self) -> anyhow::Result<ExitCode> {
        self.log.init("info")?;
        runtime::block_on(self.serve())??;
        Ok(ExitCode::SUCCESS)
    }

    /// The DNS server, when `--dns-zone` asks for one (listening already).
    fn dns(&self) -> anyhow::Result<Option<DnsServing>> {
        let Some(zone) = &self.dns_zone else {
            return Ok(None);
        };
        let (mut options, zone) = DnsServeOptions::for_zone(
            &self.control_plane.name,
            zone,
            self.dns_listen,
            self.dns_ttl,
            self.dns_zone_form,
        )?;
        if let Some(kind) = self.dns_provider {
            options.provider = Some(ProviderOptions::new(
                self.provider_settings.clone().build(kind, &zone)?,
                &options.config,
                zone,
                self.dns_resync,
            ));
        }
        options.start().map(Some)
    }

    async fn serve(self) -> anyhow::Result<()> {
        let (mut config, name) = self.control_plane.config()?;
        config.metrics_addr = self.metrics_addr;
        let dns = self.dns()?;
        let server = ApiServer::builder()
            .listen(self.listen)
            .context(CONTEXT)
            .data_dir(&self.data_dir)
            .kubeconfig_out(&self.kubeconfig_out)
            .start()
            .await
            .context("cannot start the federation API server")?;
        eprintln!(
            "fedmesh federation serve: federation {name} serving {}; kubeconfig (context {CONTEXT}) written to {}",
            server.url(),
            self.kubeconfig_out.display()
        );
        let outcome = async {
            let client = Cluster::connect(&self.kubeconfig_out, None).await?.client;
            run_control_plane(client, config, name, dns, runtime::shutdown_signal()).await
        }
        .await;
        eprintln!("fedmesh federation serve: stopping");
        server.shutdown().await;
        outcome
    }
}

/// Runs the federation control plane against the federation API behind
/// `client` until `shutdown`: the Cluster CRD installed, the federation
/// controller (every Service federated, as on a dedicated federation API
/// server) and, with `dns`, that DNS server's feed from the same API.
pub(crate) async fn run_control_plane(
    client: kube::Client,
    config: ControllerConfig,
    name: FederationName,
    dns: Option<DnsServing>,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    install_crd(
        &client,
        federation::crd().context("the built-in CRD manifest is invalid")?,
    )
    .await?;
    let options = FederationOptions {
        name,
        scope: Scope::Everything,
    };
    fedmesh_controller::run_feature(
        client,
        config,
        Metrics::new(),
        shutdown,
        "fedmesh-federation-controller",
        move |tasks, client, config, claim, metrics, warnings| {
            let health = federation::start(
                tasks,
                client.clone(),
                config,
                &options,
                claim.clone(),
                metrics.clone(),
                warnings.clone(),
            );
            // Readiness is the control plane's: the DNS server
            // answers from whatever it has listed.
            if let Some(dns) = dns {
                dns.start(tasks, client, config, claim, metrics, warnings);
            }
            health
        },
    )
    .await
    .map_err(anyhow::Error::from)
}
