//! `fedmesh dns`: federated service DNS.

mod sync;

use std::process::ExitCode;

use clap::{Args, Subcommand};

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
}

impl DnsArgs {
    pub(crate) fn run(self) -> anyhow::Result<ExitCode> {
        match self.command {
            DnsCommand::Sync(args) => args.run(),
        }
    }
}
