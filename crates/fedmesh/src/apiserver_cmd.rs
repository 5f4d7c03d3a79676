//! `fedmesh apiserver`: serves the embedded Kubernetes-compatible API until
//! SIGTERM or Ctrl-C, then stops cleanly.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use fedmesh_apiserver::ApiServer;
use fedmesh_apiserver::cluster::simulation::DataPlaneOptions;

/// Serve a Kubernetes-compatible API (TLS, RBAC, SQLite storage) on this machine.
#[derive(Debug, clap::Args)]
pub struct ApiserverArgs {
    /// Address to listen on; port 0 picks a free port (the kubeconfig says which).
    #[arg(long, default_value = "127.0.0.1:6443")]
    listen: SocketAddr,
    /// Directory for the SQLite store, certificates and keys. Without it, state is
    /// kept in memory and lost when the server stops.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Where to write the admin kubeconfig.
    #[arg(long)]
    kubeconfig_out: Option<PathBuf>,
    /// Cluster, user and context name in the kubeconfig.
    #[arg(long, default_value = "fedmesh")]
    context: String,
    /// Serve plain HTTP instead of TLS (only on a loopback address).
    #[arg(long)]
    insecure_plaintext: bool,
    /// Simulated nodes (a scheduler and kubelet start pods on them); 0 turns
    /// the simulated data plane off, and pods then stay Pending.
    #[arg(long, default_value_t = 1)]
    nodes: u32,
    /// `topology.kubernetes.io/zone` label of the simulated nodes.
    #[arg(long, default_value = "")]
    zone: String,
    /// `topology.kubernetes.io/region` label of the simulated nodes.
    #[arg(long, default_value = "")]
    region: String,
    /// Prefix of the simulated nodes' names (`<prefix>-0`, `<prefix>-1`, ...).
    #[arg(long, default_value = "node")]
    node_prefix: String,
    /// Milliseconds a scheduled pod takes to be Running and Ready (and a
    /// deleted pod's containers to stop).
    #[arg(long, default_value_t = 500)]
    pod_start_delay_ms: u64,
    /// CIDR that LoadBalancer Services get `status.loadBalancer.ingress`
    /// addresses from; without it they stay pending.
    #[arg(long)]
    load_balancer_pool: Option<String>,
}

impl ApiserverArgs {
    /// Runs the server until a stop signal.
    pub fn run(self) -> anyhow::Result<ExitCode> {
        let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
        runtime.block_on(self.serve())
    }

    async fn serve(self) -> anyhow::Result<ExitCode> {
        let mut builder = ApiServer::builder()
            .listen(self.listen)
            .context(&self.context)
            .insecure_plaintext(self.insecure_plaintext)
            .data_plane(DataPlaneOptions {
                nodes: self.nodes,
                zone: self.zone.clone(),
                region: self.region.clone(),
                node_prefix: self.node_prefix.clone(),
                start_delay: std::time::Duration::from_millis(self.pod_start_delay_ms),
                ..DataPlaneOptions::default()
            });
        if let Some(dir) = &self.data_dir {
            builder = builder.data_dir(dir);
        }
        if let Some(pool) = &self.load_balancer_pool {
            builder = builder.load_balancer_pool(pool);
        }
        if let Some(path) = &self.kubeconfig_out {
            builder = builder.kubeconfig_out(path);
        }
        let server = builder
            .start()
            .await
            .context("cannot start the API server")?;
        eprintln!("fedmesh apiserver: serving {}", server.url());
        match &self.kubeconfig_out {
            Some(path) => eprintln!(
                "fedmesh apiserver: kubeconfig written to {}",
                path.display()
            ),
            None => eprintln!(
                "fedmesh apiserver: no --kubeconfig-out given; clients need the admin token from the data directory"
            ),
        }
        if self.data_dir.is_none() {
            eprintln!("fedmesh apiserver: no --data-dir: state is in memory only");
        }
        wait_for_stop().await?;
        eprintln!("fedmesh apiserver: stopping");
        server.shutdown().await;
        Ok(ExitCode::SUCCESS)
    }
}

async fn wait_for_stop() -> anyhow::Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("cannot listen for SIGTERM")?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r.context("cannot listen for Ctrl-C"),
        _ = term.recv() => Ok(()),
    }
}
