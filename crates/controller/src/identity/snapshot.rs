//! The endpoints of the local cluster and of every remote its
//! RemoteClusterConfigurations name, read once into an index: what
//! `fedmesh policy explain` and `fedmesh endpoints` look at.
//!
//! Remotes are reached exactly as the controller reaches them: the access
//! Secret's kubeconfig (`fedmesh_core::remote::kubeconfig_from_secret`) and
//! the runtime's client ([`crate::runtime::clusters::remote_client`]).

use std::collections::BTreeMap;
use std::time::Duration;

use fedmesh_core::identity::IdentityIndex;
use fedmesh_core::remote::{self, RemoteClusterSpec};
use fedmesh_core::{ClusterName, Origin};
use k8s_openapi::api::core::v1::{Namespace, Pod, Secret, ServiceAccount};
use kube::api::{Api, DynamicObject, ListParams};

use super::engine::{IdentityEvent, apply};
use super::resources;
use crate::mesh::remotes;
use crate::runtime::clusters::remote_client;
use crate::runtime::errors::chain;
use crate::runtime::watch::Update;

/// Why the local cluster could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// Listing something in the local cluster failed.
    #[error("cannot list {what} in the local cluster: {detail}")]
    Local {
        /// What was listed.
        what: &'static str,
        /// What the API server said.
        detail: String,
    },
}

/// The index, and what could not be read from remotes (each a sentence).
#[derive(Debug, Default)]
pub struct Snapshot {
    /// Every endpoint read.
    pub index: IdentityIndex,
    /// The remote clusters read.
    pub remotes: Vec<ClusterName>,
    /// Remotes that could not be read, and why.
    pub problems: Vec<String>,
}

/// Reads the local cluster behind `local` and its remotes (access Secrets
/// named without a namespace are in `namespace`); each remote may take up
/// to `timeout` to connect.
pub async fn snapshot(
    local: &kube::Client,
    namespace: &str,
    timeout: Duration,
) -> Result<Snapshot, SnapshotError> {
    let mut snapshot = Snapshot::default();
    for event in list_cluster(local, Origin::Local)
        .await
        .map_err(|(what, error)| SnapshotError::Local {
            what,
            detail: chain(&error),
        })?
    {
        apply(&mut snapshot.index, event);
    }
    let rccs = Api::<DynamicObject>::all_with(local.clone(), &remotes::api_resource());
    let configurations = match rccs.list(&ListParams::default()).await {
        Ok(list) => list.items,
        // No RemoteClusterConfiguration resource: a cluster without remotes.
        Err(kube::Error::Api(status)) if status.code == 404 => Vec::new(),
        Err(error) => {
            return Err(SnapshotError::Local {
                what: "RemoteClusterConfigurations",
                detail: chain(&error),
            });
        }
    };
    for object in configurations {
        let name = object.metadata.name.clone().unwrap_or_default();
        match read_remote(local, &object, namespace, timeout).await {
            Ok((cluster, events)) => {
                for event in events {
                    apply(&mut snapshot.index, event);
                }
                snapshot.remotes.push(cluster);
            }
            Err(problem) => snapshot
                .problems
                .push(format!("remote cluster {name} was not read: {problem}")),
        }
    }
    Ok(snapshot)
}

async fn read_remote(
    local: &kube::Client,
    object: &DynamicObject,
    namespace: &str,
    timeout: Duration,
) -> Result<(ClusterName, Vec<IdentityEvent>), String> {
    let raw = serde_json::to_value(object).map_err(|e| e.to_string())?;
    let spec = RemoteClusterSpec::from_object(&raw, namespace)
        .map_err(|e| format!("its RemoteClusterConfiguration is invalid: {e}"))?;
    let secret_name = format!(
        "{}/{}",
        spec.access_secret.namespace, spec.access_secret.name
    );
    let secret = Api::<Secret>::namespaced(local.clone(), &spec.access_secret.namespace)
        .get_opt(&spec.access_secret.name)
        .await
        .map_err(|e| format!("cannot read Secret {secret_name}: {}", chain(&e)))?
        .ok_or_else(|| format!("Secret {secret_name} does not exist"))?;
    let data: BTreeMap<String, Vec<u8>> = secret
        .data
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, v.0))
        .collect();
    let kubeconfig =
        remote::kubeconfig_from_secret(&spec.access_secret, &data).map_err(|e| e.to_string())?;
    let client = remote_client(kubeconfig, None, timeout)
        .await
        .map_err(|e| format!("the kubeconfig in Secret {secret_name} cannot be used: {e}"))?;
    let origin = Origin::Remote(spec.name.clone());
    match tokio::time::timeout(timeout * 5, list_cluster(&client, origin)).await {
        Ok(Ok(events)) => Ok((spec.name, events)),
        Ok(Err((what, error))) => Err(format!("cannot list {what}: {}", chain(&error))),
        Err(_) => Err(format!("no answer within {} s", (timeout * 5).as_secs())),
    }
}

/// One complete listing of what the index reads from a cluster, as the
/// events its watches would give.
async fn list_cluster(
    client: &kube::Client,
    origin: Origin,
) -> Result<Vec<IdentityEvent>, (&'static str, kube::Error)> {
    let all = ListParams::default();
    let pods = Api::<Pod>::all(client.clone())
        .list(&all)
        .await
        .map_err(|e| ("pods", e))?;
    let namespaces = Api::<Namespace>::all(client.clone())
        .list(&all)
        .await
        .map_err(|e| ("namespaces", e))?;
    let accounts = Api::<ServiceAccount>::all(client.clone())
        .list(&all)
        .await
        .map_err(|e| ("service accounts", e))?;
    let hosts = match resources::calico_api(client, resources::host_endpoints)
        .await
        .map_err(|e| ("API groups", e))?
    {
        Some(api) => {
            Api::<DynamicObject>::all_with(client.clone(), &resources::host_endpoints(api))
                .list(&all)
                .await
                .map_err(|e| ("HostEndpoints", e))?
                .items
        }
        None => Vec::new(),
    };
    Ok(vec![
        IdentityEvent::Namespaces(origin.clone(), Update::Reset(namespaces.items)),
        IdentityEvent::ServiceAccounts(origin.clone(), Update::Reset(accounts.items)),
        IdentityEvent::Pods(origin.clone(), Box::new(Update::Reset(pods.items))),
        IdentityEvent::HostEndpoints(origin, Box::new(Update::Reset(hosts))),
    ])
}
