//! `fedmesh dns serve --in-cluster`: KubeDNS's federation queries, served
//! inside a member cluster. The member's federated Service copies,
//! EndpointSlices and Nodes are watched (`fedmesh_controller::in_cluster_dns`),
//! core computes the records (`fedmesh_core::dns::InClusterIndex`), and
//! fedmesh's DNS server serves them as a zone for the cluster domain.
//! CoreDNS forwards the federation's names here (docs/dns.md).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use fedmesh_core::dns::{DEFAULT_IN_CLUSTER_TTL, DnsConfig, DnsLabel, DomainName, InClusterConfig};
use fedmesh_dns::{Server, ServerConfig, ZoneConfig};
use tokio::sync::mpsc;

use super::ZoneFormArg;
use crate::cli::controller_cmd::local_client;
use crate::cli::runtime::{say, shutdown_signal};

/// The settings of `--in-cluster` from `fedmesh dns serve`'s arguments:
/// `federations` as NAME=DNS-SUFFIX, the cluster domain (default
/// `cluster.local`), the federations' zone form and the TTL (default
/// [`DEFAULT_IN_CLUSTER_TTL`]).
pub(super) fn config(
    federations: &[String],
    cluster_domain: Option<&str>,
    zone_form: ZoneFormArg,
    ttl: Option<u32>,
) -> anyhow::Result<InClusterConfig> {
    let cluster_domain =
        DomainName::new("cluster domain", cluster_domain.unwrap_or("cluster.local"))
            .context("invalid --cluster-domain")?;
    let mut configs: Vec<DnsConfig> = Vec::new();
    for value in federations {
        let Some((name, suffix)) = value.split_once('=') else {
            bail!(
                "--federation {value:?}: with --in-cluster, expected NAME=DNS-SUFFIX, e.g. myfederation=example.com"
            );
        };
        let name = DnsLabel::new("federation name", name)
            .with_context(|| format!("invalid --federation {value:?}"))?;
        let suffix = DomainName::new("DNS suffix", suffix)
            .with_context(|| format!("invalid --federation {value:?}"))?;
        if configs.iter().any(|f| f.federation == name) {
            bail!("--federation {name} is given twice");
        }
        let mut federation = DnsConfig::new(name, suffix);
        federation.zone_form = zone_form.into();
        configs.push(federation);
    }
    let mut config = InClusterConfig::new(cluster_domain, configs);
    config.ttl = ttl.unwrap_or(DEFAULT_IN_CLUSTER_TTL);
    Ok(config)
}

/// A member cluster's in-cluster DNS server, to run.
pub(super) struct InCluster {
    /// What it answers for.
    pub(super) config: InClusterConfig,
    /// Kubeconfig of the member cluster (default: $KUBECONFIG,
    /// ~/.kube/config, or the pod's ServiceAccount).
    pub(super) kubeconfig: Option<PathBuf>,
    /// Context of the kubeconfig to use.
    pub(super) context: Option<String>,
    /// Address to answer on, UDP and TCP.
    pub(super) listen: SocketAddr,
}

impl InCluster {
    pub(super) async fn serve(self) -> anyhow::Result<ExitCode> {
        let config = self.config;
        let client = local_client(self.kubeconfig.as_deref(), self.context.as_deref()).await?;
        let zone = zone(&config)?;
        let (tx, mut rx) = mpsc::channel(64);
        let feed = tokio::spawn(fedmesh_controller::in_cluster_dns::run(
            client,
            config.clone(),
            tx,
        ));
        let mut stop = std::pin::pin!(shutdown_signal());
        tracing::info!("listing the member's federated Services, EndpointSlices and Nodes");
        // Listen only once the member is listed: until then every name would
        // be NXDOMAIN, which resolvers cache.
        let first = tokio::select! {
            first = rx.recv() => first.context("the member watch stopped")?,
            () = &mut stop => return Ok(ExitCode::SUCCESS),
        };
        let server = Server::start(ServerConfig::new(self.listen, vec![zone]))?;
        let report = server.update(&first);
        say(&format!(
            "serving {} for {} on {} ({} names)",
            config.cluster_domain,
            config
                .federations
                .iter()
                .map(|f| format!("{}={}", f.federation, f.suffix))
                .collect::<Vec<_>>()
                .join(", "),
            server.local_addr(),
            first.upserted.len(),
        ));
        tracing::debug!(rebuilt = report.rebuilt, "records loaded");
        let result = loop {
            tokio::select! {
                change = rx.recv() => match change {
                    Some(change) => {
                        let report = server.update(&change);
                        tracing::debug!(
                            upserted = change.upserted.len(),
                            removed = change.removed.len(),
                            rebuilt = report.rebuilt,
                            "records changed"
                        );
                    }
                    None => break Err(anyhow::anyhow!("the member watch stopped")),
                },
                () = &mut stop => break Ok(ExitCode::SUCCESS),
            }
        };
        feed.abort();
        // Dropping the server joins its threads (each wakes within 100 ms).
        tokio::task::block_in_place(|| drop(server));
        result
    }
}

/// The cluster domain's zone: SOA and NS under it, and negative answers
/// cached no longer than positive ones, so that a Service federated a
/// moment ago is found within the TTL.
fn zone(config: &InClusterConfig) -> anyhow::Result<ZoneConfig> {
    let under = |label: &str| {
        DomainName::new("name", &format!("{label}.{}", config.cluster_domain))
            .context("--cluster-domain is too long for the zone's SOA names")
    };
    let mut zone = ZoneConfig::new(
        config.cluster_domain.clone(),
        under("fedmesh-dns")?,
        under("hostmaster")?,
    );
    zone.ttl = config.ttl;
    zone.minimum = config.ttl;
    Ok(zone)
}
