//! `fedmesh federation`: the Federation v1 control plane's commands.

mod controller;
mod join;
mod serve;

use std::process::ExitCode;

use clap::{Args, Subcommand};

pub(crate) use join::join;
pub(crate) use serve::{CONTEXT, run_control_plane};

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
    /// Serve a dedicated federation API server (embedded, context
    /// `federation`) with the federation controller in one process.
    Serve(Box<serve::ServeArgs>),
    /// Run the federation controller against a Kubernetes API server that
    /// serves the Cluster CRD (leader election, metrics, health).
    Controller(controller::FederationControllerArgs),
}

impl FederationArgs {
    pub(crate) fn run(self) -> anyhow::Result<ExitCode> {
        match self.command {
            FederationCommand::Join(args) => args.run(),
            FederationCommand::Serve(args) => args.run(),
            FederationCommand::Controller(args) => args.run(),
        }
    }
}
