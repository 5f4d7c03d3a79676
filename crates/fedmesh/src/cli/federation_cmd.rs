//! `fedmesh federation`: the Federation v1 control plane's commands.

mod join;

use std::process::ExitCode;

use clap::{Args, Subcommand};

/// Arguments of `fedmesh federation`.
#[derive(Debug, Args)]
pub(crate) struct FederationArgs {
    #[command(subcommand)]
    command: FederationCommand,
}

/// The subcommands of `fedmesh federation`.
#[derive(Debug, Subcommand)]
enum FederationCommand {
    /// Register a member cluster: an identity in the member that may
    /// propagate Services, and its credentials Secret and Cluster object in
    /// the federation.
    Join(join::FederationJoinArgs),
}

impl FederationArgs {
    pub(crate) fn run(self) -> anyhow::Result<ExitCode> {
        match self.command {
            FederationCommand::Join(args) => args.run(),
        }
    }
}
