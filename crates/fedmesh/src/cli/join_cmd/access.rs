//! The local side of a join: the access kubeconfig in a Secret (Calico's
//! keys) and the RemoteClusterConfiguration pointing at it.

use std::time::Duration;

use anyhow::Context as _;
use base64::Engine as _;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ApiResource, DynamicObject, ListParams};
use serde_json::{Value, json};

use super::ClusterName;
use super::reader::Credential;
use crate::cli::apply::{Applier, Kind, Report};
use crate::cli::connect::Cluster;

/// How long a freshly created CRD may take to be served.
const CRD_SERVED_TIMEOUT: Duration = Duration::from_secs(10);

/// The access Secret of the RemoteClusterConfiguration `name`.
pub(crate) fn secret_name(name: &ClusterName) -> String {
    format!("{name}-access")
}

/// The kubeconfig (key `kubeconfig`) in the Secret `namespace/secret` that
/// `local` already has, if any.
pub(crate) async fn existing_kubeconfig(
    local: &Cluster,
    secret: &str,
    namespace: &str,
) -> anyhow::Result<Option<String>> {
    let secrets = Api::<Secret>::namespaced(local.client.clone(), namespace);
    let secret = match secrets.get_opt(secret).await {
        Ok(secret) => secret,
        // No namespace yet, or not allowed to look: there is nothing to reuse.
        Err(kube::Error::Api(status)) if status.code == 403 || status.code == 404 => None,
        Err(error) => {
            return Err(error).with_context(|| {
                format!("cannot read Secret {namespace}/{secret} in {}", local.label)
            });
        }
    };
    Ok(secret
        .and_then(|s| s.data)
        .and_then(|d| d.get("kubeconfig").cloned())
        .and_then(|k| String::from_utf8(k.0).ok()))
}

/// A kubeconfig reaching `remote` as `user` (the identity's name), with one
/// context named `name`.
pub(crate) fn access_kubeconfig(
    remote: &Cluster,
    name: &ClusterName,
    user: &str,
    credential: &Credential,
) -> anyhow::Result<String> {
    let mut cluster = json!({"server": remote.endpoint.server});
    if let Some(ca) = &remote.endpoint.certificate_authority_data {
        cluster["certificate-authority-data"] = json!(ca);
    }
    if remote.endpoint.insecure_skip_tls_verify {
        cluster["insecure-skip-tls-verify"] = json!(true);
    }
    if let Some(server_name) = &remote.endpoint.tls_server_name {
        cluster["tls-server-name"] = json!(server_name);
    }
    let user_entry = match credential {
        Credential::Token(token) => json!({"token": token}),
        Credential::Anonymous => json!({}),
    };
    let doc = json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": name.as_str(), "cluster": cluster}],
        "users": [{"name": user, "user": user_entry}],
        "contexts": [{"name": name.as_str(), "context": {"cluster": name.as_str(), "user": user}}],
        "current-context": name.as_str(),
    });
    serde_saphyr::to_string(&doc).context("cannot write the access kubeconfig as YAML")
}

/// Installs the CRD if missing, then creates or updates the namespace, the
/// access Secret and the RemoteClusterConfiguration in `local`.
pub(crate) async fn ensure_access(
    local: &Cluster,
    name: &ClusterName,
    namespace: &str,
    kubeconfig: &str,
    report: Report<'_>,
) -> anyhow::Result<()> {
    let applier = Applier::new(
        local.client.clone(),
        format!("local cluster {}", local.label),
        report,
    );
    let crd =
        fedmesh_controller::mesh::remotes::crd().context("the built-in CRD manifest is invalid")?;
    applier
        .ensure_exists(
            &Kind::cluster::<CustomResourceDefinition>(),
            serde_json::to_value(&crd).context("cannot encode the CRD")?,
        )
        .await?;
    wait_until_served(&applier, &fedmesh_controller::mesh::remotes::api_resource()).await?;
    applier
        .ensure(
            &Kind::cluster::<Namespace>(),
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}),
        )
        .await?;
    applier
        .ensure(
            &Kind::namespaced::<Secret>(),
            access_secret(name, namespace, kubeconfig),
        )
        .await?;
    applier
        .ensure(
            &Kind::cluster_dynamic(fedmesh_controller::mesh::remotes::api_resource()),
            remote_cluster_configuration(name, namespace),
        )
        .await?;
    Ok(())
}

/// The Secret in Calico's layout: `datastoreType` and `kubeconfig`.
fn access_secret(name: &ClusterName, namespace: &str, kubeconfig: &str) -> Value {
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    json!({
        "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
        "metadata": {
            "name": secret_name(name), "namespace": namespace,
            "labels": {"app.kubernetes.io/managed-by": "fedmesh-join"}
        },
        "data": {"datastoreType": b64("kubernetes"), "kubeconfig": b64(kubeconfig)}
    })
}

fn remote_cluster_configuration(name: &ClusterName, namespace: &str) -> Value {
    json!({
        "apiVersion": "projectcalico.org/v3", "kind": "RemoteClusterConfiguration",
        "metadata": {"name": name.as_str(), "labels": {"app.kubernetes.io/managed-by": "fedmesh-join"}},
        "spec": {"clusterAccessSecret": {"name": secret_name(name), "namespace": namespace, "kind": "Secret"}}
    })
}

/// A CRD is served a moment after it is created: wait (bounded) until
/// `resource` lists.
pub(crate) async fn wait_until_served(
    applier: &Applier<'_>,
    resource: &ApiResource,
) -> anyhow::Result<()> {
    let objects = Api::<DynamicObject>::all_with(applier.client().clone(), resource);
    let deadline = tokio::time::Instant::now() + CRD_SERVED_TIMEOUT;
    loop {
        match objects.list(&ListParams::default().limit(1)).await {
            Ok(_) => return Ok(()),
            Err(error) if tokio::time::Instant::now() >= deadline => {
                return Err(error).with_context(|| {
                    format!(
                        "the {} CRD exists but its resource is not served",
                        resource.kind
                    )
                });
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}
