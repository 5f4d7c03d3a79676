//! `fedmesh dns`: federated service DNS.

mod in_cluster;
mod provider;
mod serve;
mod sync;

use std::process::ExitCode;

use clap::{Args, Subcommand};
use fedmesh_core::dns::{DEFAULT_TTL, DnsConfig, DnsLabel, DomainName, ZoneForm};

pub(crate) use provider::{ProviderArgs, ProviderKind};
pub(crate) use serve::{DnsServeOptions, DnsServing, ProviderOptions};

/// Arguments of `fedmesh dns`.
#[derive(Debug, Args)]
pub(crate) struct DnsArgs {
    #[command(subcommand)]
    command: DnsCommand,
}

/// The subcommands of `fedmesh dns`.
#[derive(Debug, Subcommand)]
enum DnsCommand {
    /// Serve the federation's zone (authoritative DNS, UDP and TCP) from the
    /// live state of its control plane, and optionally keep an external DNS
    /// provider in step. With `--in-cluster`: inside a member cluster, answer
    /// the federation's names under the cluster domain
    /// (`svc.ns.fed.svc.cluster.local`) with the local shard when it is
    /// healthy, else a CNAME to the cluster's zone name in the federation's DNS.
    Serve(Box<serve::ServeArgs>),
    /// Write service records from a file to an external DNS provider
    /// (RFC 2136, Route 53, CoreDNS's etcd), only the difference, once or in a loop.
    Sync(Box<sync::SyncArgs>),
}

impl DnsArgs {
    pub(crate) fn run(self) -> anyhow::Result<ExitCode> {
        match self.command {
            DnsCommand::Serve(args) => args.run(),
            DnsCommand::Sync(args) => args.run(),
        }
    }
}

/// Where zone names sit (see docs/dns.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum ZoneFormArg {
    /// `svc.ns.fed.svc.<zone>.<suffix>`, as seed 002 lists them.
    ZoneOnly,
    /// `svc.ns.fed.svc.<zone>.<region>.<suffix>`.
    ZoneInRegion,
}

/// What the records are named after: `dns serve` and `dns sync` share these.
#[derive(Debug, Clone, Args)]
pub(crate) struct RecordArgs {
    /// The federation's name: the third label of every name, and the owner
    /// recorded in a provider's ownership TXT records.
    #[arg(long, value_name = "NAME")]
    federation: String,
    /// The DNS zone (`example.com`): served, or written into at the provider.
    #[arg(long, value_name = "ZONE")]
    zone: String,
    /// The federation's DNS suffix, if not the zone itself (a name inside it).
    #[arg(long, value_name = "SUFFIX")]
    dns_suffix: Option<String>,
    /// TTL of the records, unless a Service sets its own (annotation
    /// `federation.fedmesh.io/dns-ttl`).
    #[arg(long, value_name = "SECONDS", default_value_t = DEFAULT_TTL)]
    ttl: u32,
    /// Form of the zone names.
    #[arg(long, value_enum, default_value = "zone-only")]
    zone_form: ZoneFormArg,
}

impl RecordArgs {
    /// The records' settings, and the zone.
    pub(crate) fn config(&self) -> anyhow::Result<(DnsConfig, DomainName)> {
        dns_config(
            &self.federation,
            &self.zone,
            self.dns_suffix.as_deref(),
            self.ttl,
            self.zone_form,
        )
    }
}

/// The records' settings for `federation` in `zone` (below `suffix`, when
/// given), and the zone.
pub(crate) fn dns_config(
    federation: &str,
    zone: &str,
    suffix: Option<&str>,
    ttl: u32,
    zone_form: ZoneFormArg,
) -> anyhow::Result<(DnsConfig, DomainName)> {
    let zone = DomainName::new("zone", zone)?;
    let suffix = match suffix {
        Some(s) => DomainName::new("DNS suffix", s)?,
        None => zone.clone(),
    };
    if !suffix.is_within(&zone) {
        anyhow::bail!("the DNS suffix {suffix} is not inside the zone {zone}");
    }
    let mut config = DnsConfig::new(DnsLabel::new("federation", federation)?, suffix);
    config.ttl = ttl;
    config.zone_form = zone_form.into();
    Ok((config, zone))
}

impl From<ZoneFormArg> for ZoneForm {
    fn from(arg: ZoneFormArg) -> Self {
        match arg {
            ZoneFormArg::ZoneOnly => ZoneForm::ZoneOnly,
            ZoneFormArg::ZoneInRegion => ZoneForm::ZoneInRegion,
        }
    }
}
