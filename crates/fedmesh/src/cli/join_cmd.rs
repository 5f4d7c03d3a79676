//! `fedmesh join`: connects two clusters as a user would. In the remote, a
//! read-only ServiceAccount, ClusterRole, binding and token; in the local
//! cluster, the kubeconfig Secret and the RemoteClusterConfiguration that
//! points at it. Every step is create-or-update, so a second run changes
//! nothing and says "unchanged".

pub(crate) mod access;
pub(crate) mod reader;

use std::fmt;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;

use super::apply::Report;
use super::connect::Cluster;
use super::runtime;
use reader::{Identity, Target};

/// Arguments of `fedmesh join`.
#[derive(Debug, Args)]
pub(crate) struct JoinArgs {
    /// Kubeconfig of the local cluster: the one that will read the remote.
    #[arg(long, value_name = "KUBECONFIG")]
    local: PathBuf,
    /// Kubeconfig of the remote cluster: the one that will be read.
    #[arg(long, value_name = "KUBECONFIG")]
    remote: PathBuf,
    /// Name of the RemoteClusterConfiguration in the local cluster; remote
    /// services carry it as `federation.tigera.io/remoteClusterName`.
    #[arg(long, value_name = "NAME")]
    name: String,
    /// Context of the local kubeconfig (default: its current context).
    #[arg(long, value_name = "C")]
    local_context: Option<String>,
    /// Context of the remote kubeconfig (default: its current context).
    #[arg(long, value_name = "C")]
    remote_context: Option<String>,
    #[command(flatten)]
    identity: IdentityArgs,
    /// Also let the remote read the local cluster.
    #[arg(long)]
    both_ways: bool,
    /// With --both-ways: the name the remote gives the local cluster
    /// (default: the local context's name).
    #[arg(long, value_name = "NAME", requires = "both_ways")]
    remote_name: Option<String>,
}

/// The options of the identity a join creates, shared by `fedmesh join` and
/// `fedmesh federation join`.
#[derive(Debug, Args)]
pub(crate) struct IdentityArgs {
    /// Namespace for fedmesh's objects in both clusters.
    #[arg(long, value_name = "NS", default_value = "fedmesh")]
    namespace: String,
    /// How long to wait for a legacy token Secret to be filled in, on
    /// clusters that do not serve TokenRequest.
    #[arg(long, value_name = "SECONDS", default_value_t = 30)]
    token_timeout: u64,
}

impl IdentityArgs {
    /// The options these arguments give.
    pub(crate) fn options(self) -> JoinOptions {
        JoinOptions {
            namespace: self.namespace,
            token_timeout: Duration::from_secs(self.token_timeout),
        }
    }
}

impl JoinArgs {
    pub(crate) fn run(self) -> anyhow::Result<ExitCode> {
        runtime::init_logging("warn", runtime::LogFormat::Text)?;
        runtime::block_on(self.join())??;
        Ok(ExitCode::SUCCESS)
    }

    async fn join(self) -> anyhow::Result<()> {
        let name = ClusterName::new(&self.name)?;
        let local = Cluster::connect(&self.local, self.local_context.as_deref()).await?;
        let remote = Cluster::connect(&self.remote, self.remote_context.as_deref()).await?;
        let reverse = if self.both_ways {
            let raw = self
                .remote_name
                .clone()
                .unwrap_or_else(|| local.label.clone());
            Some(ClusterName::new(&raw).map_err(|e| {
                anyhow::anyhow!("{e}; name the local cluster for the remote with --remote-name")
            })?)
        } else {
            None
        };
        let options = self.identity.options();
        let print = |line: &str| runtime::say(line);
        join(&local, &remote, &name, &options, &print).await?;
        if let Some(reverse) = reverse {
            join(&remote, &local, &reverse, &options, &print).await?;
        }
        Ok(())
    }
}

/// A RemoteClusterConfiguration name: a DNS label, since it also names the
/// access Secret and prefixes remote endpoints' `targetRef.name`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ClusterName(String);

impl ClusterName {
    /// Checks `name` is a DNS-1123 label.
    pub(crate) fn new(name: &str) -> anyhow::Result<Self> {
        let valid = !name.is_empty()
            && name.len() <= 63
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !name.starts_with('-')
            && !name.ends_with('-');
        anyhow::ensure!(
            valid,
            "{name:?} is not a valid cluster name: use at most 63 lowercase letters, digits and '-', starting and ending with a letter or digit"
        );
        Ok(ClusterName(name.to_owned()))
    }

    /// The name.
    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ClusterName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Settings shared by both directions of a join.
#[derive(Debug, Clone)]
pub(crate) struct JoinOptions {
    /// Namespace for fedmesh's objects in both clusters.
    pub(crate) namespace: String,
    /// How long to wait for a legacy token Secret.
    pub(crate) token_timeout: Duration,
}

/// Lets `local` read `remote` as the RemoteClusterConfiguration `name`.
pub(crate) async fn join(
    local: &Cluster,
    remote: &Cluster,
    name: &ClusterName,
    options: &JoinOptions,
    report: Report<'_>,
) -> anyhow::Result<()> {
    let target = Target {
        cluster: remote,
        place: format!("remote cluster {}", remote.label),
    };
    let reader = Identity::reader();
    reader::ensure_identity(&target, &reader, &options.namespace, report).await?;
    let existing =
        access::existing_kubeconfig(local, &access::secret_name(name), &options.namespace).await?;
    let credential = reader::credential(
        &target,
        &reader,
        &options.namespace,
        existing.as_deref(),
        options,
        report,
    )
    .await?;
    let kubeconfig = access::access_kubeconfig(remote, name, reader.name, &credential)?;
    access::ensure_access(local, name, &options.namespace, &kubeconfig, report).await?;
    report(&format!(
        "joined: {} reads {} as RemoteClusterConfiguration {name}",
        local.label, remote.label
    ));
    Ok(())
}
