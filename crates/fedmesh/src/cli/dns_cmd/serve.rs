//! `fedmesh dns serve`: fedmesh's authoritative DNS server for the
//! federation's zone, fed from the live state of the federation control
//! plane (its Services' published shards and its Clusters), and optionally
//! an external DNS provider kept in step; until SIGTERM or Ctrl-C.
//! `fedmesh federation serve --dns-zone` runs the same in its process.
//! With `--in-cluster` the same command serves a member cluster's
//! federation lookups instead (`in_cluster.rs`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use fedmesh_controller::dns::provider::ProviderSettings;
use fedmesh_controller::runtime::claim::Claim;
use fedmesh_controller::runtime::events::Warning;
use fedmesh_controller::runtime::{FeatureHealth, Tasks};
use fedmesh_controller::{ControllerConfig, Metrics};
use fedmesh_core::dns::{DEFAULT_TTL, DnsConfig, DomainName};
use fedmesh_dns::providers::runner::Backoff;
use fedmesh_dns::{AddrRange, Server, ServerConfig, TsigKey, ZoneConfig};
use tokio::sync::mpsc;

use super::provider::{AnyProvider, ProviderArgs, ProviderKind};
use super::{ZoneFormArg, dns_config, in_cluster};
use crate::cli::controller_cmd::{identity, local_client, parse_duration};
use crate::cli::runtime;

/// Arguments of `fedmesh dns serve`.
#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// Kubeconfig of the federation API server. Without it: $KUBECONFIG,
    /// ~/.kube/config, then the in-cluster ServiceAccount.
    #[arg(long, value_name = "FILE")]
    kubeconfig: Option<PathBuf>,
    /// Context of the kubeconfig to use (default: its current context).
    #[arg(long, value_name = "NAME")]
    context: Option<String>,
    /// Serve inside a member cluster: answer the federation's names under the
    /// cluster domain from the member's own Services (`--kubeconfig` is then
    /// the member's, and `--federation` takes NAME=DNS-SUFFIX).
    #[arg(
        long,
        conflicts_with_all = [
            "zone", "dns_suffix", "nameserver", "hostmaster", "allow_transfer",
            "notify", "transfer_key_name", "provider", "metrics_addr",
        ]
    )]
    in_cluster: bool,
    /// The federation's name: the third label of every name, and the owner
    /// recorded in a provider's ownership TXT records. With `--in-cluster`:
    /// NAME=DNS-SUFFIX (`myfederation=example.com`), repeated for each
    /// federation the cluster is a member of.
    #[arg(long = "federation", value_name = "NAME", required = true)]
    federations: Vec<String>,
    /// The DNS zone served (`example.com`).
    #[arg(long, value_name = "ZONE", required_unless_present = "in_cluster")]
    zone: Option<String>,
    /// The federation's DNS suffix, if not the zone itself (a name inside it).
    #[arg(long, value_name = "SUFFIX")]
    dns_suffix: Option<String>,
    /// TTL of the records, unless a Service sets its own (annotation
    /// `federation.fedmesh.io/dns-ttl`); default 180, and 5 with
    /// `--in-cluster` (how long a pod keeps a shard after it fails).
    #[arg(long, value_name = "SECONDS")]
    ttl: Option<u32>,
    /// Form of the zone names (with `--in-cluster`: as the federation's DNS
    /// forms them).
    #[arg(long, value_enum, default_value = "zone-only")]
    zone_form: ZoneFormArg,
    /// With `--in-cluster`: the cluster's DNS domain, the zone served
    /// (default `cluster.local`).
    #[arg(long, value_name = "DOMAIN")]
    cluster_domain: Option<String>,
    /// Where to answer, UDP and TCP (port 0: any free port, printed).
    #[arg(long, value_name = "ADDR", default_value = "0.0.0.0:53")]
    listen: SocketAddr,
    /// The zone's nameserver (NS, SOA primary); default `ns1.<zone>`.
    #[arg(long, value_name = "NAME")]
    nameserver: Option<String>,
    /// The SOA's responsible mailbox, as a name; default `hostmaster.<zone>`.
    #[arg(long, value_name = "NAME")]
    hostmaster: Option<String>,
    /// Addresses allowed to transfer the zone (AXFR/IXFR), `10.0.0.0/8`;
    /// repeat for more. None by default.
    #[arg(long, value_name = "RANGE")]
    allow_transfer: Vec<AddrRange>,
    /// Secondaries sent a NOTIFY on every change; repeat for more.
    #[arg(long, value_name = "ADDR")]
    notify: Vec<SocketAddr>,
    /// TSIG key (HMAC-SHA256) transfers must be signed with.
    #[arg(long, value_name = "NAME", requires = "transfer_key_secret")]
    transfer_key_name: Option<String>,
    /// The transfer key's secret (base64).
    #[arg(
        long,
        value_name = "BASE64",
        env = "FEDMESH_TRANSFER_TSIG_SECRET",
        hide_env_values = true,
        requires = "transfer_key_name"
    )]
    transfer_key_secret: Option<String>,
    /// Also keep this external DNS provider's zone in step (only the
    /// difference is written, by the replica holding the Lease).
    #[arg(long, value_enum)]
    provider: Option<ProviderKind>,
    /// A provider round at least this often, to repair changes made there.
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = parse_duration)]
    resync: Duration,
    #[command(flatten)]
    settings: ProviderArgs,
    /// Namespace of the Lease (only its holder writes to the provider and
    /// publishes Events).
    #[arg(
        long,
        value_name = "NS",
        env = "POD_NAMESPACE",
        default_value = "fedmesh"
    )]
    namespace: String,
    /// Name of the Lease replicas compete for.
    #[arg(long, value_name = "NAME", default_value = "fedmesh-dns")]
    lease_name: String,
    /// Where to serve /metrics, /healthz and /readyz.
    #[arg(long, value_name = "ADDR")]
    metrics_addr: Option<SocketAddr>,
    #[command(flatten)]
    log: runtime::LogArgs,
}

impl ServeArgs {
    pub(crate) fn run(self) -> anyhow::Result<ExitCode> {
        self.log.init("info")?;
        if self.in_cluster {
            let config = in_cluster::config(
                &self.federations,
                self.cluster_domain.as_deref(),
                self.zone_form,
                self.ttl,
            )?;
            let server = in_cluster::InCluster {
                config,
                kubeconfig: self.kubeconfig,
                context: self.context,
                listen: self.listen,
            };
            return runtime::block_on(server.serve())?;
        }
        runtime::block_on(self.serve())??;
        Ok(ExitCode::SUCCESS)
    }

    async fn serve(self) -> anyhow::Result<()> {
        // clap's `requires` takes a flag's default `false` as present.
        if self.cluster_domain.is_some() {
            anyhow::bail!(
                "--cluster-domain is an --in-cluster setting; add --in-cluster, or leave it out"
            );
        }
        let [federation] = self.federations.as_slice() else {
            anyhow::bail!(
                "--federation is given {} times: a federation's zone is served for one federation (several only with --in-cluster)",
                self.federations.len()
            );
        };
        let zone = self.zone.as_deref().context("--zone is required")?;
        let (config, zone) = dns_config(
            federation,
            zone,
            self.dns_suffix.as_deref(),
            self.ttl.unwrap_or(DEFAULT_TTL),
            self.zone_form,
        )?;
        let mut server = DnsServeOptions::server_config(zone.clone(), self.listen, &config)?;
        let names = &mut server.zones[0];
        if let Some(ns) = &self.nameserver {
            names.nameservers = vec![DomainName::new("nameserver", ns)?];
        }
        if let Some(hostmaster) = &self.hostmaster {
            names.hostmaster = DomainName::new("hostmaster", hostmaster)?;
        }
        server.transfer_acl = self.allow_transfer;
        server.notify = self.notify;
        if let (Some(key), Some(secret)) = (&self.transfer_key_name, &self.transfer_key_secret) {
            server = server.tsig_key(TsigKey::hmac_sha256(key, secret)?, true);
        }
        let provider = match self.provider {
            Some(kind) => Some(ProviderOptions::new(
                self.settings.build(kind, &zone)?,
                &config,
                zone.clone(),
                self.resync,
            )),
            None => None,
        };
        let dns = DnsServeOptions {
            config,
            server,
            provider,
        }
        .start()?;
        let client = local_client(self.kubeconfig.as_deref(), self.context.as_deref()).await?;
        let mut controller = ControllerConfig::new(self.namespace, identity());
        controller.lease_name = self.lease_name;
        controller.metrics_addr = self.metrics_addr;
        Ok(fedmesh_controller::run_feature(
            client,
            controller,
            Metrics::new(),
            runtime::shutdown_signal(),
            "fedmesh-dns",
            move |tasks, client, config, claim, metrics, warnings| {
                dns.start(tasks, client, config, claim, metrics, warnings)
            },
        )
        .await?)
    }
}

/// The provider a DNS server keeps in step, and how.
pub(crate) struct ProviderOptions {
    provider: AnyProvider,
    settings: ProviderSettings,
}

impl ProviderOptions {
    /// `provider` writing the records of `config` into `zone`, a round at
    /// least every `resync`.
    pub(crate) fn new(
        provider: AnyProvider,
        config: &DnsConfig,
        zone: DomainName,
        resync: Duration,
    ) -> Self {
        Self {
            provider,
            settings: ProviderSettings {
                zone,
                owner: config.federation.as_str().to_owned(),
                backoff: Backoff::default(),
                resync,
            },
        }
    }
}

/// A DNS server to run on the federation's live state.
pub(crate) struct DnsServeOptions {
    /// The records' settings.
    pub(crate) config: DnsConfig,
    /// The server's.
    pub(crate) server: ServerConfig,
    /// An external provider kept in step.
    pub(crate) provider: Option<ProviderOptions>,
}

/// A DNS server listening, empty until its feed starts.
pub(crate) struct DnsServing {
    config: DnsConfig,
    server: Arc<Server>,
    provider: Option<ProviderOptions>,
}

impl DnsServeOptions {
    /// The federation `federation`'s names served in `zone` (its own DNS
    /// suffix) on `listen`, with no provider: what `fedmesh federation serve
    /// --dns-zone` and `fedmesh demo` run. Returns the zone too.
    pub(crate) fn for_zone(
        federation: &str,
        zone: &str,
        listen: SocketAddr,
        ttl: u32,
        zone_form: ZoneFormArg,
    ) -> anyhow::Result<(Self, DomainName)> {
        let (config, zone) = dns_config(federation, zone, None, ttl, zone_form)?;
        let server = Self::server_config(zone.clone(), listen, &config)?;
        let options = Self {
            config,
            server,
            provider: None,
        };
        Ok((options, zone))
    }

    /// A server for `zone` on `listen`, nameserver `ns1.<zone>` and
    /// hostmaster `hostmaster.<zone>`, transfers closed.
    pub(crate) fn server_config(
        zone: DomainName,
        listen: SocketAddr,
        config: &DnsConfig,
    ) -> anyhow::Result<ServerConfig> {
        let name = |what, prefix: &str| DomainName::new(what, &format!("{prefix}.{zone}"));
        let mut zone_config = ZoneConfig::new(
            zone.clone(),
            name("nameserver", "ns1")?,
            name("hostmaster", "hostmaster")?,
        );
        zone_config.ttl = config.ttl;
        Ok(ServerConfig::new(listen, vec![zone_config]))
    }

    /// Binds the server's sockets (so that a bad address fails at once) and
    /// says where it answers.
    pub(crate) fn start(self) -> anyhow::Result<DnsServing> {
        let zones: Vec<String> = self
            .server
            .zones
            .iter()
            .map(|z| z.apex.to_string())
            .collect();
        let server = Server::start(self.server).context("cannot start the DNS server")?;
        eprintln!(
            "fedmesh dns: serving zone {} on {} (UDP and TCP)",
            zones.join(", "),
            server.local_addr()
        );
        Ok(DnsServing {
            config: self.config,
            server: Arc::new(server),
            provider: self.provider,
        })
    }
}

impl DnsServing {
    /// Where the server answers (with the port it got for port 0).
    pub(crate) fn local_addr(&self) -> SocketAddr {
        self.server.local_addr()
    }

    /// Starts the feed from the federation API behind `client` (and the
    /// provider's writer, which writes while `claim` is current and tells
    /// outages on the Lease `config` names).
    pub(crate) fn start(
        self,
        tasks: &mut Tasks,
        client: kube::Client,
        config: &ControllerConfig,
        claim: Claim,
        metrics: Metrics,
        warnings: mpsc::Sender<Warning>,
    ) -> FeatureHealth {
        let (health, records) = fedmesh_controller::dns::start(
            tasks,
            client.clone(),
            self.config,
            Some(self.server),
            metrics.clone(),
            warnings.clone(),
        );
        if let Some(ProviderOptions { provider, settings }) = self.provider {
            fedmesh_controller::dns::provider::start(
                tasks, client, config, provider, records, settings, claim, metrics, warnings,
            );
        }
        health
    }
}
