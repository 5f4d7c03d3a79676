//! Argument parsing and dispatch for every `fedmesh` subcommand.
//!
//! Each subcommand is one variant of [`Command`] holding its own clap `Args` type from
//! its own module, so a new subcommand is a new module plus one variant and one match
//! arm in [`Command::run`].

mod apply;
mod connect;
mod controller_cmd;
mod demo_cmd;
mod dns_cmd;
mod federation_cmd;
mod identity_cmd;
mod join_cmd;
mod runtime;
mod selector;

use std::ffi::OsString;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Status for failures that are not a subcommand's documented outcome (I/O errors):
/// the same status clap uses for usage errors, so scripts see "not a normal answer".
const FAILURE_STATUS: u8 = 2;

/// fedmesh federates Kubernetes Services across a mesh of clusters.
#[derive(Debug, Parser)]
#[command(name = "fedmesh", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// The subcommands of `fedmesh`.
#[derive(Debug, Subcommand)]
enum Command {
    /// Check Calico selectors (the `federation.tigera.io/serviceSelector` language).
    Selector(selector::SelectorArgs),
    /// Run the mesh controllers against the local cluster (leader election, metrics, health).
    Controller(controller_cmd::ControllerArgs),
    /// Connect two clusters: a read-only identity in the remote, its kubeconfig
    /// Secret and RemoteClusterConfiguration in the local cluster.
    Join(join_cmd::JoinArgs),
    /// The federation control plane (Kubernetes Federation v1): serve it, run
    /// its controller, register member clusters.
    Federation(federation_cmd::FederationArgs),
    /// Federated endpoint identity: explain which local and remote endpoints a
    /// network policy selects.
    Policy(identity_cmd::PolicyArgs),
    /// List the local and remote endpoints (pods, host endpoints) a selector
    /// matches, with their labels.
    Endpoints(identity_cmd::EndpointsArgs),
    /// Federated service DNS: write records to external DNS providers.
    Dns(dns_cmd::DnsArgs),
    /// Start a two-cluster mesh and a federation of the same clusters (with
    /// its DNS) on this machine, with seed examples, to try fedmesh.
    Demo(demo_cmd::DemoArgs),
    /// Serve an embedded Kubernetes-compatible API server.
    Apiserver(crate::apiserver_cmd::ApiserverArgs),
}

impl Command {
    fn run(self) -> anyhow::Result<ExitCode> {
        match self {
            Command::Selector(args) => args.run(),
            Command::Controller(args) => args.run(),
            Command::Join(args) => args.run(),
            Command::Federation(args) => args.run(),
            Command::Policy(args) => args.run(),
            Command::Endpoints(args) => args.run(),
            Command::Dns(args) => args.run(),
            Command::Demo(args) => args.run(),
            Command::Apiserver(args) => args.run(),
        }
    }
}

/// Parses `args` (program name first) and runs the chosen subcommand.
pub(crate) fn run<I, T>(args: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(err) => {
            // `print` sends --help/--version to stdout and usage errors to stderr.
            let _ = err.print();
            return u8::try_from(err.exit_code()).map_or(ExitCode::FAILURE, ExitCode::from);
        }
    };
    match cli.command.run() {
        Ok(status) => status,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(FAILURE_STATUS)
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::Cli;

    #[test]
    fn clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
