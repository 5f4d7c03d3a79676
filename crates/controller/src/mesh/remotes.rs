//! RemoteClusterConfigurations: the mesh's source of remote clusters for
//! the ClusterSet, and where the ClusterSet's status for each goes.
//!
//! Creating, editing or deleting a RemoteClusterConfiguration, or rotating
//! its Secret, restarts only that remote's connection: no process restart.

use fedmesh_core::ClusterName;
use fedmesh_core::remote::{self, Reason, RemoteClusterSpec, RemoteStatus};
use futures::StreamExt;
use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::ObjectReference;
use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams};
use kube::runtime::watcher;
use tokio::sync::mpsc;

use crate::runtime::clusters::{ClusterSet, ClusterSpec, StatusSink};
use crate::runtime::errors::chain;
use crate::runtime::events::Warning;
use crate::runtime::watch::{self, Progress, Signal, Update};

/// The RemoteClusterConfiguration resource (Calico's, cluster-scoped).
pub fn api_resource() -> ApiResource {
    ApiResource {
        group: "projectcalico.org".into(),
        version: "v3".into(),
        api_version: remote::API_VERSION.into(),
        kind: remote::KIND.into(),
        plural: "remoteclusterconfigurations".into(),
    }
}

/// The RemoteClusterConfiguration CustomResourceDefinition fedmesh serves
/// (`deploy/crds/remoteclusterconfigurations.yaml`).
pub fn crd() -> Result<
    k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
    serde_saphyr::Error,
> {
    serde_saphyr::from_str(include_str!(
        "../../../../deploy/crds/remoteclusterconfigurations.yaml"
    ))
}

/// Watches RemoteClusterConfigurations and keeps `clusters` configured to
/// match, until the task is dropped.
pub async fn run(local: kube::Client, namespace: String, mut clusters: ClusterSet) {
    let api = Api::<DynamicObject>::all_with(local, &api_resource());
    let mut signals = std::pin::pin!(watch::watch(api, watcher::Config::default()));
    while let Some(signal) = signals.next().await {
        match signal {
            Signal::Update(Update::Reset(all)) => {
                let names: Vec<ClusterName> = all
                    .iter()
                    .filter_map(|o| ClusterName::new(o.metadata.name.as_deref()?).ok())
                    .collect();
                for name in clusters.names() {
                    if !names.contains(&name) {
                        clusters.stop(&name).await;
                    }
                }
                for object in &all {
                    configure(&mut clusters, object, &namespace).await;
                }
                clusters.listed();
            }
            Signal::Update(Update::Apply(object)) => {
                configure(&mut clusters, &object, &namespace).await
            }
            Signal::Update(Update::Delete(object)) => {
                if let Some(name) = object
                    .metadata
                    .name
                    .as_deref()
                    .and_then(|n| ClusterName::new(n).ok())
                {
                    clusters.stop(&name).await;
                }
            }
            Signal::Progress(Progress::Failed(failure)) => {
                tracing::warn!(
                    "watching RemoteClusterConfigurations failed; retrying: {}",
                    failure.detail
                );
            }
            Signal::Progress(Progress::Listed | Progress::Recovered) => {}
        }
    }
}

async fn configure(clusters: &mut ClusterSet, object: &DynamicObject, namespace: &str) {
    let Some(name) = object.metadata.name.clone() else {
        return;
    };
    let created = object.metadata.creation_timestamp.as_ref().map(|t| t.0);
    let raw = match serde_json::to_value(object) {
        Ok(raw) => raw,
        Err(error) => {
            tracing::warn!(cluster = %name, "cannot read a RemoteClusterConfiguration: {error}");
            return;
        }
    };
    match RemoteClusterSpec::from_object(&raw, namespace) {
        Ok(spec) => {
            clusters
                .configure(ClusterSpec {
                    name: spec.name,
                    secret: spec.access_secret,
                    server: None,
                    policy: spec.unreachable,
                    created,
                })
                .await;
        }
        Err(error) => match ClusterName::new(&name) {
            Ok(cluster) => {
                clusters
                    .misconfigured(
                        cluster,
                        format!("The RemoteClusterConfiguration is invalid: {error}. Fix it with kubectl edit."),
                    )
                    .await;
            }
            Err(_) => {
                tracing::warn!(cluster = %name, "ignoring a RemoteClusterConfiguration whose name is not a valid cluster name: {error}");
            }
        },
    }
}

/// Writes a remote's status to its RemoteClusterConfiguration and its
/// warnings as Events on it.
pub struct RemoteStatuses {
    local: kube::Client,
    warnings: mpsc::Sender<Warning>,
}

impl RemoteStatuses {
    /// Statuses through `local`; warnings to the Event publisher.
    pub fn new(local: kube::Client, warnings: mpsc::Sender<Warning>) -> Self {
        Self { local, warnings }
    }
}

impl StatusSink for RemoteStatuses {
    fn write(
        &self,
        cluster: ClusterName,
        status: &RemoteStatus,
    ) -> BoxFuture<'static, Result<(), String>> {
        let api = Api::<DynamicObject>::all_with(self.local.clone(), &api_resource());
        let patch = Patch::Merge(serde_json::json!({ "status": status.to_json() }));
        Box::pin(async move {
            match api
                .patch_status(cluster.as_str(), &PatchParams::default(), &patch)
                .await
            {
                Ok(_) => Ok(()),
                // The configuration was deleted meanwhile: nothing to report on.
                Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
                Err(error) => Err(chain(&error)),
            }
        })
    }

    fn warn(
        &self,
        cluster: ClusterName,
        reason: Reason,
        message: String,
    ) -> BoxFuture<'static, ()> {
        let warnings = self.warnings.clone();
        Box::pin(async move {
            let regarding = ObjectReference {
                api_version: Some(remote::API_VERSION.into()),
                kind: Some(remote::KIND.into()),
                name: Some(cluster.to_string()),
                ..ObjectReference::default()
            };
            let _ = warnings
                .send(Warning::new(regarding, reason.as_str(), message))
                .await;
        })
    }
}
