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
    /// The pod network, a /16: node `i` gets its `i`th /24 as `spec.podCIDR`
    /// and gives its pods IPs from it. Clusters that will be meshed need
    /// networks that do not overlap.
    #[arg(long, default_value = "10.244.0.0/16", value_parser = parse_cluster_cidr)]
    cluster_cidr: std::net::Ipv4Addr,
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
                cluster_cidr: self.cluster_cidr,
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

/// Reads `--cluster-cidr`: an IPv4 network with a /16 prefix.
fn parse_cluster_cidr(text: &str) -> Result<std::net::Ipv4Addr, String> {
    let (ip, prefix) = text
        .split_once('/')
        .ok_or_else(|| format!("{text:?} is not a CIDR such as 10.244.0.0/16"))?;
    let ip: std::net::Ipv4Addr = ip
        .parse()
        .map_err(|_| format!("{ip:?} is not an IPv4 address"))?;
    if prefix != "16" {
        return Err(format!(
            "the pod network must be a /16 (each node gets one /24 of it), not /{prefix}"
        ));
    }
    if u32::from(ip) & 0xffff != 0 {
        return Err(format!(
            "{text} has host bits set; did you mean {}/16?",
            std::net::Ipv4Addr::from(u32::from(ip) & 0xffff_0000)
        ));
    }
    Ok(ip)
}

async fn wait_for_stop() -> anyhow::Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("cannot listen for SIGTERM")?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r.context("cannot listen for Ctrl-C"),
        _ = term.recv() => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::parse_cluster_cidr;

    #[test]
    fn cluster_cidr_must_be_a_clean_slash_16() {
        assert_eq!(parse_cluster_cidr("10.1.0.0/16"), Ok([10, 1, 0, 0].into()));
        for bad in ["10.1.0.0", "10.1.0.0/24", "10.1.2.0/16", "ten/16"] {
            assert!(parse_cluster_cidr(bad).is_err(), "{bad}");
        }
    }
}
