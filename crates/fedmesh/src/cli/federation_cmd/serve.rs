//! `fedmesh federation serve`: a dedicated federation API server (embedded,
//! kubeconfig context `federation`, the Cluster CRD installed) with the
//! federation controller in the same process, until SIGTERM or Ctrl-C.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Args;
use fedmesh_apiserver::ApiServer;
use fedmesh_controller::Metrics;
use fedmesh_controller::federation::{self, FederationOptions};
use fedmesh_core::federation::Scope;

use super::controller::ControlPlaneArgs;
use crate::cli::connect::Cluster;
use crate::cli::controller_cmd::install_crd;
use crate::cli::runtime;

/// The kubeconfig context (and cluster and user) of the federation API.
const CONTEXT: &str = "federation";

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
    #[command(flatten)]
    log: runtime::LogArgs,
}

impl ServeArgs {
    pub(crate) fn run(self) -> anyhow::Result<ExitCode> {
        self.log.init("info")?;
        runtime::block_on(self.serve())??;
        Ok(ExitCode::SUCCESS)
    }

    async fn serve(self) -> anyhow::Result<()> {
        let (mut config, name) = self.control_plane.config()?;
        config.metrics_addr = self.metrics_addr;
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
            install_crd(
                &client,
                federation::crd().context("the built-in CRD manifest is invalid")?,
            )
            .await?;
            let options = FederationOptions {
                name,
                // A dedicated federation API server: every Service is federated.
                scope: Scope::Everything,
            };
            federation::run(
                client,
                config,
                options,
                Metrics::new(),
                runtime::shutdown_signal(),
            )
            .await
            .map_err(anyhow::Error::from)
        }
        .await;
        eprintln!("fedmesh federation serve: stopping");
        server.shutdown().await;
        outcome
    }
}
