//! Reading a `Cluster`: a member of the federation (its API server and the
//! Secret with the credentials that reach it).
//!
//! The object is fedmesh's `federation.fedmesh.io/v1alpha1` Cluster
//! (`deploy/crds/clusters.yaml`), shaped after Federation v1's: `spec.server`
//! (or v1's `spec.serverAddressByClientCIDRs`) and `spec.secretRef`. The
//! Secret holds a kubeconfig under the key `kubeconfig`, read with
//! [`crate::remote::kubeconfig_from_secret`].

use std::collections::BTreeMap;

use crate::names::{ClusterName, ClusterNameError};
use crate::remote::SecretRef;

/// The API group of Cluster.
pub const GROUP: &str = "federation.fedmesh.io";
/// The API version.
pub const VERSION: &str = "v1alpha1";
/// `apiVersion` of a Cluster object.
pub const API_VERSION: &str = "federation.fedmesh.io/v1alpha1";
/// The kind.
pub const KIND: &str = "Cluster";
/// The resource's plural name (`kubectl get clusters`).
pub const PLURAL: &str = "clusters";

/// A Cluster object, read and checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterSpec {
    /// The member's name: the object's name.
    pub name: ClusterName,
    /// The member's API server URL. The controller connects here, with the
    /// credentials of the Secret's kubeconfig (its own server entry is not used).
    pub server: String,
    /// The Secret holding the kubeconfig with the member's credentials.
    pub secret: SecretRef,
    /// The Cluster's labels: what `federation.alpha.kubernetes.io/cluster-selector`
    /// annotations match.
    pub labels: BTreeMap<String, String>,
}

/// What is wrong with a Cluster object. Each becomes the message of its
/// `Ready` condition (reason `ClusterConfigInvalid`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClusterSpecError {
    /// The object's name is not a usable cluster name.
    #[error("metadata.name: {0}")]
    Name(#[from] ClusterNameError),
    /// A required field is missing.
    #[error("{field}: Required value{hint}")]
    Required {
        /// The field's path.
        field: &'static str,
        /// More help, starting with "; " (or empty).
        hint: &'static str,
    },
    /// The server address is not an http(s) URL.
    #[error("{field}: Invalid value: {value:?}: must be an https:// (or http://) URL with a host")]
    Server {
        /// The field the address came from.
        field: &'static str,
        /// The value given.
        value: String,
    },
}

/// The non-empty string at `path`: an empty field counts as missing.
fn str_at<'a>(value: &'a serde_json::Value, path: &[&str]) -> Option<&'a str> {
    crate::remote::spec::str_at(value, path).filter(|s| !s.is_empty())
}

impl ClusterSpec {
    /// Reads a Cluster object. A Secret reference without a namespace means
    /// `default_namespace` (the controller's own).
    pub fn from_object(
        object: &serde_json::Value,
        default_namespace: &str,
    ) -> Result<Self, ClusterSpecError> {
        let name = str_at(object, &["metadata", "name"]).ok_or(ClusterSpecError::Required {
            field: "metadata.name",
            hint: "",
        })?;
        let name = ClusterName::new(name)?;
        let spec = object.get("spec").unwrap_or(&serde_json::Value::Null);
        let (field, server) = match str_at(spec, &["server"]) {
            Some(server) => ("spec.server", server),
            None => (
                "spec.serverAddressByClientCIDRs",
                v1_server(spec).ok_or(ClusterSpecError::Required {
                    field: "spec.server",
                    hint: "; the member's API server URL, for example https://10.0.0.1:6443",
                })?,
            ),
        };
        if !is_http_url(server) {
            return Err(ClusterSpecError::Server {
                field,
                value: server.into(),
            });
        }
        let secret_name =
            str_at(spec, &["secretRef", "name"]).ok_or(ClusterSpecError::Required {
                field: "spec.secretRef.name",
                hint: "; the Secret whose key \"kubeconfig\" holds the member's credentials",
            })?;
        let namespace = str_at(spec, &["secretRef", "namespace"]).unwrap_or(default_namespace);
        let labels = object
            .get("metadata")
            .and_then(|m| m.get("labels"))
            .and_then(serde_json::Value::as_object)
            .map(|labels| {
                labels
                    .iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                    .collect()
            })
            .unwrap_or_default();
        Ok(Self {
            name,
            server: server.into(),
            secret: SecretRef {
                namespace: namespace.into(),
                name: secret_name.into(),
            },
            labels,
        })
    }
}

/// Federation v1's `serverAddressByClientCIDRs`: the entry for every client
/// (`0.0.0.0/0`), else the first one.
fn v1_server(spec: &serde_json::Value) -> Option<&str> {
    let entries = spec.get("serverAddressByClientCIDRs")?.as_array()?;
    entries
        .iter()
        .find(|e| str_at(e, &["clientCIDR"]) == Some("0.0.0.0/0"))
        .or(entries.first())
        .and_then(|e| str_at(e, &["serverAddress"]))
}

fn is_http_url(value: &str) -> bool {
    let rest = value
        .strip_prefix("https://")
        .or_else(|| value.strip_prefix("http://"));
    rest.and_then(|r| r.split(['/', '?', '#']).next())
        .is_some_and(|host| !host.is_empty() && !host.contains(char::is_whitespace))
}
