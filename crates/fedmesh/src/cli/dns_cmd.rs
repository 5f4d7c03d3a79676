//! `fedmesh dns`: federated service DNS.

mod in_cluster;
mod sync;

use std::process::ExitCode;

use clap::{Args, Subcommand};
use fedmesh_core::dns::ZoneForm;

/// Where zone names sit (see docs/dns.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum ZoneFormArg {
    /// `svc.ns.fed.svc.<zone>.<suffix>`, as seed 002 lists them.
    ZoneOnly,
    /// `svc.ns.fed.svc.<zone>.<region>.<suffix>`.
    ZoneInRegion,
}

impl From<ZoneFormArg> for ZoneForm {
    fn from(arg: ZoneFormArg) -> Self {
        match arg {
            ZoneFormArg::ZoneOnly => ZoneForm::ZoneOnly,
            ZoneFormArg::ZoneInRegion => ZoneForm::ZoneInRegion,
        }
    }
}

/// Arguments of `fedmesh dns`.
#[derive(Debug, Args)]
pub(crate) struct DnsArgs {
    #[command(subcommand)]
    command: DnsCommand,
}

/// The subcommands of `fedmesh dns`.
#[derive(Debug, Subcommand)]
enum DnsCommand {
    /// Write the federation's service records to an external DNS provider
    /// (RFC 2136, Route 53, CoreDNS's etcd), only the difference, once or in a loop.
    Sync(Box<sync::SyncArgs>),
    /// Serve DNS. With `--in-cluster`: inside a member cluster, answer the
    /// federation's names under the cluster domain (`svc.ns.fed.svc.cluster.local`)
    /// with the local shard when it is healthy, else a CNAME to the cluster's
    /// zone name in the federation's DNS.
    Serve(Box<in_cluster::InClusterArgs>),
}

impl DnsArgs {
    pub(crate) fn run(self) -> anyhow::Result<ExitCode> {
        match self.command {
            DnsCommand::Sync(args) => args.run(),
            DnsCommand::Serve(args) => args.run(),
        }
    }
}
