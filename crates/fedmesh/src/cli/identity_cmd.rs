//! `fedmesh policy explain` and `fedmesh endpoints`: federated endpoint
//! identity as a user checks it. Both read the local cluster and, through its
//! RemoteClusterConfigurations and access Secrets, every remote
//! (`fedmesh_controller::identity::snapshot`, the controller's own way of
//! reaching them), and print what `fedmesh_core::identity` says.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, Subcommand, ValueEnum};
use fedmesh_controller::identity::resources;
use fedmesh_controller::identity::snapshot::{Snapshot, snapshot};
use fedmesh_core::identity::{CalicoApi, EndpointListing, Policy, explain};
use fedmesh_selector::Selector;
use kube::api::{Api, ApiResource, DynamicObject};

use super::connect::Cluster;
use super::runtime;

/// Where the local cluster is, and how its remotes are found.
#[derive(Debug, Args)]
pub(crate) struct ClusterArgs {
    /// Kubeconfig of the local cluster (the one whose RemoteClusterConfigurations
    /// name the remotes).
    #[arg(long, value_name = "FILE")]
    kubeconfig: PathBuf,
    /// Context of the kubeconfig to use (default: its current context).
    #[arg(long, value_name = "NAME")]
    context: Option<String>,
    /// Namespace of access Secrets named without one (the controller's namespace).
    #[arg(
        long = "secrets-namespace",
        value_name = "NS",
        default_value = "fedmesh"
    )]
    secrets_namespace: String,
    /// How long connecting to a remote may take (e.g. `5s`).
    #[arg(long, value_name = "SECONDS", default_value_t = 10)]
    timeout: u64,
}

impl ClusterArgs {
    /// The local cluster's client and the endpoints of the whole mesh; a
    /// remote that cannot be read is a warning on stderr, not an error.
    async fn read(&self) -> anyhow::Result<(kube::Client, Snapshot)> {
        let cluster = Cluster::connect(&self.kubeconfig, self.context.as_deref()).await?;
        let snapshot = snapshot(
            &cluster.client,
            &self.secrets_namespace,
            Duration::from_secs(self.timeout.max(1)),
        )
        .await?;
        for problem in &snapshot.problems {
            eprintln!("warning: {problem}");
        }
        Ok((cluster.client, snapshot))
    }
}

/// How results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Output {
    /// For a terminal.
    Text,
    /// JSON.
    Json,
}

/// Arguments of `fedmesh policy`.
#[derive(Debug, Args)]
pub(crate) struct PolicyArgs {
    #[command(subcommand)]
    command: PolicyCommand,
}

#[derive(Debug, Subcommand)]
enum PolicyCommand {
    /// Show the local and remote endpoints a policy's selector and each of its
    /// rules' source and destination select (cluster, namespace, name, IPs).
    Explain(ExplainArgs),
}

/// Which kind of policy a `NAMESPACE/NAME` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum PolicyKindArg {
    /// A Calico NetworkPolicy (projectcalico.org), else a Kubernetes one.
    Auto,
    /// A Calico NetworkPolicy.
    Calico,
    /// A Kubernetes NetworkPolicy (networking.k8s.io).
    Kubernetes,
}

#[derive(Debug, Args)]
struct ExplainArgs {
    #[command(flatten)]
    cluster: ClusterArgs,
    /// NAMESPACE/NAME of a (Calico or Kubernetes) NetworkPolicy, or NAME of a
    /// Calico GlobalNetworkPolicy.
    #[arg(value_name = "POLICY")]
    policy: String,
    /// Which kind of namespaced policy to read when both exist.
    #[arg(long, value_enum, default_value = "auto")]
    kind: PolicyKindArg,
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value = "text")]
    output: Output,
}

impl PolicyArgs {
    pub(crate) fn run(self) -> anyhow::Result<ExitCode> {
        match self.command {
            PolicyCommand::Explain(args) => runtime::block_on(args.run())?,
        }
    }
}

impl ExplainArgs {
    async fn run(self) -> anyhow::Result<ExitCode> {
        let (client, snapshot) = self.cluster.read().await?;
        let object = find_policy(&client, &self.policy, self.kind).await?;
        let policy = Policy::from_json(&object)
            .with_context(|| format!("policy {} cannot be explained", self.policy))?;
        let explanation = explain(&snapshot.index, &policy);
        match self.output {
            Output::Text => print!("{}", explanation.render_text()),
            Output::Json => println!("{}", serde_json::to_string_pretty(&explanation.to_json())?),
        }
        Ok(ExitCode::SUCCESS)
    }
}

/// Reads the policy `reference` names, as JSON.
async fn find_policy(
    client: &kube::Client,
    reference: &str,
    kind: PolicyKindArg,
) -> anyhow::Result<serde_json::Value> {
    let (namespace, name) = match reference.split_once('/') {
        Some((ns, name)) if !ns.is_empty() && !name.is_empty() => (Some(ns), name),
        Some(_) => anyhow::bail!("{reference:?} is not NAMESPACE/NAME or NAME"),
        None => (None, reference),
    };
    let mut candidates: Vec<ApiResource> = Vec::new();
    let calico = |plural: &str, kind: &str| {
        [CalicoApi::V3, CalicoApi::Crd].map(|api| resources::calico(api, kind, plural))
    };
    match namespace {
        None => candidates.extend(calico("globalnetworkpolicies", "GlobalNetworkPolicy")),
        Some(_) => {
            if kind != PolicyKindArg::Kubernetes {
                candidates.extend(calico("networkpolicies", "NetworkPolicy"));
            }
            if kind != PolicyKindArg::Calico {
                candidates.push(ApiResource {
                    group: "networking.k8s.io".into(),
                    version: "v1".into(),
                    api_version: "networking.k8s.io/v1".into(),
                    kind: "NetworkPolicy".into(),
                    plural: "networkpolicies".into(),
                });
            }
        }
    }
    for resource in &candidates {
        if !resources::served(client, resource).await.with_context(|| {
            format!(
                "cannot ask the local cluster whether it serves {}",
                resource.api_version
            )
        })? {
            continue;
        }
        let api = match namespace {
            Some(ns) => Api::<DynamicObject>::namespaced_with(client.clone(), ns, resource),
            None => Api::<DynamicObject>::all_with(client.clone(), resource),
        };
        let found = api.get_opt(name).await.with_context(|| {
            format!(
                "cannot read {} {reference} from the local cluster",
                resource.kind
            )
        })?;
        if let Some(mut object) = found {
            // A GET's body may leave the type out; the policy reader needs it.
            object.types = Some(kube::api::TypeMeta {
                api_version: resource.api_version.clone(),
                kind: resource.kind.clone(),
            });
            return Ok(serde_json::to_value(object)?);
        }
    }
    let kinds: Vec<String> = candidates
        .iter()
        .map(|r| format!("{} ({})", r.kind, r.api_version))
        .collect();
    anyhow::bail!(
        "no policy {reference} in the local cluster (looked for {}); a GlobalNetworkPolicy is named without a namespace",
        kinds.join(", ")
    )
}

/// Arguments of `fedmesh endpoints`.
#[derive(Debug, Args)]
pub(crate) struct EndpointsArgs {
    #[command(flatten)]
    cluster: ClusterArgs,
    /// A Calico selector over the endpoints' labels (Calico's own included,
    /// e.g. `projectcalico.org/namespace == "myapp"`).
    #[arg(long, value_name = "SEL", default_value = "all()")]
    selector: String,
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value = "text")]
    output: Output,
}

impl EndpointsArgs {
    pub(crate) fn run(self) -> anyhow::Result<ExitCode> {
        let selector = Selector::parse(&self.selector)
            .map_err(|e| anyhow::anyhow!("invalid --selector {:?}: {e}", self.selector))?;
        runtime::block_on(async move {
            let (_, snapshot) = self.cluster.read().await?;
            let listing = EndpointListing::new(&snapshot.index, selector);
            match self.output {
                Output::Text => print!("{}", listing.render_table()),
                Output::Json => println!("{}", serde_json::to_string_pretty(&listing.to_json())?),
            }
            Ok(ExitCode::SUCCESS)
        })?
    }
}
