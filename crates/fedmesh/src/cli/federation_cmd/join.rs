//! `fedmesh federation join`: registers a member cluster with the federation.
//! In the member, a ServiceAccount whose ClusterRole allows what propagation
//! needs and nothing more, and a token for it; in the federation, the Secret
//! with a kubeconfig for that identity and the `Cluster` object pointing at
//! it. Every step is create-or-update, so a second run says "unchanged".
//!
//! The steps are `fedmesh join`'s (same identity, token and applier code),
//! with the member identity's rules and the federation's objects.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use base64::Engine as _;
use fedmesh_core::federation;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::ApiResource;
use serde_json::{Value, json};

use crate::cli::apply::{Applier, Kind, Report};
use crate::cli::connect::Cluster;
use crate::cli::join_cmd::reader::{self, Identity, Target};
use crate::cli::join_cmd::{ClusterName, IdentityArgs, JoinOptions, access};
use crate::cli::runtime;

/// Name of the member's ServiceAccount, ClusterRole and ClusterRoleBinding.
pub(crate) const MEMBER: &str = "fedmesh-federation-member";

/// Arguments of `fedmesh federation join`.
#[derive(Debug, clap::Args)]
pub(crate) struct FederationJoinArgs {
    /// Kubeconfig of the federation API (a dedicated federation API server
    /// or the shared cluster that hosts the federation).
    #[arg(long, value_name = "KUBECONFIG")]
    federation: PathBuf,
    /// Kubeconfig of the member cluster, with rights to create a
    /// ServiceAccount, a ClusterRole and its binding there.
    #[arg(long, value_name = "KUBECONFIG")]
    member: PathBuf,
    /// Name of the Cluster object (the member's name in the federation).
    #[arg(long, value_name = "NAME")]
    name: String,
    /// Context of the federation kubeconfig (default: its current context).
    #[arg(long, value_name = "C")]
    federation_context: Option<String>,
    /// Context of the member kubeconfig (default: its current context).
    #[arg(long, value_name = "C")]
    member_context: Option<String>,
    #[command(flatten)]
    identity: IdentityArgs,
}

impl FederationJoinArgs {
    pub(crate) fn run(self) -> anyhow::Result<ExitCode> {
        runtime::init_logging("warn", runtime::LogFormat::Text)?;
        runtime::block_on(self.join())??;
        Ok(ExitCode::SUCCESS)
    }

    async fn join(self) -> anyhow::Result<()> {
        let name = ClusterName::new(&self.name)?;
        let federation =
            Cluster::connect(&self.federation, self.federation_context.as_deref()).await?;
        let member = Cluster::connect(&self.member, self.member_context.as_deref()).await?;
        let options = self.identity.options();
        let print = |line: &str| runtime::say(line);
        join(&federation, &member, &name, &options, &print).await
    }
}

/// What the member identity may do: propagate Services (and create their
/// namespaces), read what shard health and zones need, and probe health.
pub(crate) fn member_rules() -> Value {
    let read = json!(["get", "list", "watch"]);
    json!([
        {"apiGroups": [""], "resources": ["services"],
         "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"]},
        {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get", "list", "watch", "create"]},
        {"apiGroups": [""], "resources": ["endpoints", "nodes"], "verbs": read},
        {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": read},
        {"nonResourceURLs": ["/healthz", "/livez", "/readyz", "/version"], "verbs": ["get"]},
    ])
}

/// The Secret in the federation holding the member's kubeconfig.
fn secret_name(name: &ClusterName) -> String {
    format!("{name}-member")
}

/// The Cluster resource (the controller's definition).
fn cluster_resource() -> ApiResource {
    fedmesh_controller::federation::api_resource()
}

/// The Cluster CRD (`deploy/crds/clusters.yaml`, the controller's copy).
fn cluster_crd() -> anyhow::Result<CustomResourceDefinition> {
    fedmesh_controller::federation::crd().context("the built-in Cluster CRD manifest is invalid")
}

/// Registers `member` with `federation` as the Cluster `name`.
pub(crate) async fn join(
    federation: &Cluster,
    member: &Cluster,
    name: &ClusterName,
    options: &JoinOptions,
    report: Report<'_>,
) -> anyhow::Result<()> {
    let namespace = &options.namespace;
    let target = Target {
        cluster: member,
        place: format!("member cluster {}", member.label),
    };
    let identity = Identity {
        name: MEMBER,
        rules: member_rules(),
    };
    reader::ensure_identity(&target, &identity, namespace, report).await?;
    let secret = secret_name(name);
    let existing = access::existing_kubeconfig(federation, &secret, namespace).await?;
    let credential = reader::credential(
        &target,
        &identity,
        namespace,
        existing.as_deref(),
        options,
        report,
    )
    .await?;
    let kubeconfig = access::access_kubeconfig(member, name, identity.name, &credential)?;

    let applier = Applier::new(
        federation.client.clone(),
        format!("federation {}", federation.label),
        report,
    );
    applier
        .ensure_exists(
            &Kind::cluster::<CustomResourceDefinition>(),
            serde_json::to_value(cluster_crd()?).context("cannot encode the CRD")?,
        )
        .await?;
    access::wait_until_served(&applier, &cluster_resource()).await?;
    applier
        .ensure(
            &Kind::cluster::<Namespace>(),
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}),
        )
        .await?;
    let labels = json!({"app.kubernetes.io/managed-by": "fedmesh-join"});
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    applier
        .ensure(
            &Kind::namespaced::<Secret>(),
            json!({
                "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                "metadata": {"name": secret, "namespace": namespace, "labels": labels},
                "data": {fedmesh_core::remote::KUBECONFIG_KEY: b64(&kubeconfig)}
            }),
        )
        .await?;
    applier
        .ensure(
            &Kind::cluster_dynamic(cluster_resource()),
            json!({
                "apiVersion": federation::API_VERSION, "kind": federation::KIND,
                "metadata": {"name": name.as_str(), "labels": labels},
                "spec": {
                    "server": member.endpoint.server,
                    "secretRef": {"name": secret, "namespace": namespace}
                }
            }),
        )
        .await?;
    report(&format!(
        "joined: {} is member {name} of the federation at {}",
        member.label, federation.label
    ));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_member_role_matches_the_manifest_for_joining_by_hand() {
        let docs: Vec<Value> = serde_saphyr::from_multiple(include_str!(
            "../../../../../deploy/rbac/federation-member.yaml"
        ))
        .unwrap();
        let role = docs.iter().find(|d| d["kind"] == "ClusterRole").unwrap();
        assert_eq!(role["metadata"]["name"], MEMBER);
        assert_eq!(role["rules"], member_rules());
    }

    #[test]
    fn the_crd_serves_the_resource_core_reads() {
        let crd = cluster_crd().unwrap();
        let resource = cluster_resource();
        assert_eq!(crd.spec.group, resource.group);
        assert_eq!(crd.spec.names.plural, resource.plural);
        assert_eq!(crd.spec.names.kind, resource.kind);
        assert_eq!(crd.spec.scope, "Cluster");
        assert!(
            crd.spec
                .versions
                .iter()
                .any(|v| v.name == resource.version && v.served)
        );
    }
}
