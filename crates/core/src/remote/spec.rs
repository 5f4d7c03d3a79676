//! Reading a RemoteClusterConfiguration and its access Secret.
//!
//! The object is Calico's `projectcalico.org/v3` RemoteClusterConfiguration
//! (seed 004). fedmesh supports the Kubernetes datastore reached through a
//! kubeconfig Secret (`spec.clusterAccessSecret`), Calico's Secret keys
//! (`datastoreType`, `kubeconfig`), and one field of its own:
//! `spec.unreachable`, what to do with a remote's endpoints when it stops
//! answering.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::names::{ClusterName, ClusterNameError};

/// The API group and version of RemoteClusterConfiguration.
pub const API_VERSION: &str = "projectcalico.org/v3";
/// The kind.
pub const KIND: &str = "RemoteClusterConfiguration";
/// The Secret key holding the remote's kubeconfig, as Calico names it.
pub const KUBECONFIG_KEY: &str = "kubeconfig";
/// The Secret key naming the datastore type, as Calico names it.
pub const DATASTORE_TYPE_KEY: &str = "datastoreType";
/// How long a remote may stay unreachable before `Withdraw` drops its endpoints,
/// when the RemoteClusterConfiguration does not say.
pub const DEFAULT_GRACE_PERIOD: Duration = Duration::from_secs(300);

/// A RemoteClusterConfiguration, read and checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteClusterSpec {
    /// The remote cluster's name: the object's name.
    pub name: ClusterName,
    /// The Secret holding the kubeconfig that reaches the remote.
    pub access_secret: SecretRef,
    /// Calico's overlay routing mode, accepted and shown (fedmesh does not
    /// program routes).
    pub overlay_routing: OverlayRoutingMode,
    /// What happens to the remote's endpoints while it does not answer.
    pub unreachable: UnreachablePolicy,
}

/// A namespaced reference to a Secret.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SecretRef {
    /// The Secret's namespace.
    pub namespace: String,
    /// The Secret's name.
    pub name: String,
}

/// `spec.syncOptions.overlayRoutingMode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OverlayRoutingMode {
    /// Cross-cluster overlay routes are wanted.
    Enabled,
    /// They are not (Calico's default).
    #[default]
    Disabled,
}

/// What happens to a remote's endpoints while the remote does not answer.
///
/// The default keeps them: an unreachable API server says nothing about the
/// pods behind it, which usually keep serving through a control-plane outage;
/// withdrawing them would turn that outage into a data-plane one. Clusters
/// whose remotes fail as a whole can choose `Withdraw` instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UnreachablePolicy {
    /// Keep serving the last endpoints synced until the remote answers again.
    #[default]
    KeepLastKnown,
    /// Drop the remote's endpoints once it has been unreachable this long.
    Withdraw {
        /// How long the remote may stay unreachable first.
        grace_period: Duration,
    },
}

/// What is wrong with a RemoteClusterConfiguration or its Secret. Each becomes
/// the `ConfigIncomplete` condition's message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
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
    /// A field has a value fedmesh does not accept.
    #[error("{field}: Unsupported value: {value:?}: supported values: {supported}")]
    Unsupported {
        /// The field's path.
        field: &'static str,
        /// The value given.
        value: String,
        /// The values accepted.
        supported: &'static str,
    },
    /// The access Secret lacks its kubeconfig.
    #[error("secret {namespace}/{name}: no {KUBECONFIG_KEY:?} key")]
    NoKubeconfig {
        /// The Secret's namespace.
        namespace: String,
        /// The Secret's name.
        name: String,
    },
    /// The access Secret is for a datastore fedmesh cannot read.
    #[error(
        "secret {namespace}/{name}: {DATASTORE_TYPE_KEY} {value:?} is not supported: fedmesh \
         reads remote clusters through the Kubernetes API (\"kubernetes\")"
    )]
    Datastore {
        /// The Secret's namespace.
        namespace: String,
        /// The Secret's name.
        name: String,
        /// The datastore type given.
        value: String,
    },
}

/// The string at `path` in a JSON object, if there is one.
pub(crate) fn str_at<'a>(value: &'a serde_json::Value, path: &[&str]) -> Option<&'a str> {
    path.iter()
        .try_fold(value, |v, key| v.get(key))
        .and_then(serde_json::Value::as_str)
}

impl RemoteClusterSpec {
    /// Reads a RemoteClusterConfiguration object. A Secret reference without a
    /// namespace means `default_namespace` (the controller's own).
    pub fn from_object(
        object: &serde_json::Value,
        default_namespace: &str,
    ) -> Result<Self, SpecError> {
        let name = str_at(object, &["metadata", "name"]).ok_or(SpecError::Required {
            field: "metadata.name",
            hint: "",
        })?;
        let name = ClusterName::new(name)?;
        let spec = object.get("spec");
        let secret = spec
            .and_then(|s| s.get("clusterAccessSecret"))
            .filter(|s| !s.is_null())
            .ok_or(SpecError::Required {
                field: "spec.clusterAccessSecret",
                hint: "; fedmesh reaches remote clusters through a kubeconfig Secret, not inline datastore settings",
            })?;
        if let Some(kind) = str_at(secret, &["kind"])
            && kind != "Secret"
        {
            return Err(SpecError::Unsupported {
                field: "spec.clusterAccessSecret.kind",
                value: kind.into(),
                supported: "\"Secret\"",
            });
        }
        let secret_name =
            str_at(secret, &["name"])
                .filter(|n| !n.is_empty())
                .ok_or(SpecError::Required {
                    field: "spec.clusterAccessSecret.name",
                    hint: "",
                })?;
        let namespace = str_at(secret, &["namespace"])
            .filter(|n| !n.is_empty())
            .unwrap_or(default_namespace);
        let overlay_routing =
            match spec.and_then(|s| str_at(s, &["syncOptions", "overlayRoutingMode"])) {
                None | Some("Disabled") => OverlayRoutingMode::Disabled,
                Some("Enabled") => OverlayRoutingMode::Enabled,
                Some(other) => {
                    return Err(SpecError::Unsupported {
                        field: "spec.syncOptions.overlayRoutingMode",
                        value: other.into(),
                        supported: "\"Enabled\", \"Disabled\"",
                    });
                }
            };
        let unreachable = match spec.and_then(|s| s.get("unreachable")) {
            None | Some(serde_json::Value::Null) => UnreachablePolicy::default(),
            Some(policy) => unreachable_policy(policy)?,
        };
        Ok(Self {
            name,
            access_secret: SecretRef {
                namespace: namespace.into(),
                name: secret_name.into(),
            },
            overlay_routing,
            unreachable,
        })
    }
}

fn unreachable_policy(policy: &serde_json::Value) -> Result<UnreachablePolicy, SpecError> {
    let grace_period = match policy.get("gracePeriodSeconds") {
        None | Some(serde_json::Value::Null) => DEFAULT_GRACE_PERIOD,
        Some(seconds) => {
            Duration::from_secs(seconds.as_u64().ok_or_else(|| SpecError::Unsupported {
                field: "spec.unreachable.gracePeriodSeconds",
                value: seconds.to_string(),
                supported: "a whole number of seconds, 0 or more",
            })?)
        }
    };
    match str_at(policy, &["endpoints"]) {
        None | Some("KeepLastKnown") => Ok(UnreachablePolicy::KeepLastKnown),
        Some("Withdraw") => Ok(UnreachablePolicy::Withdraw { grace_period }),
        Some(other) => Err(SpecError::Unsupported {
            field: "spec.unreachable.endpoints",
            value: other.into(),
            supported: "\"KeepLastKnown\", \"Withdraw\"",
        }),
    }
}

/// Reads the kubeconfig out of an access Secret's decoded data, checking
/// Calico's `datastoreType` key when present.
pub fn kubeconfig_from_secret<'a>(
    secret: &SecretRef,
    data: &'a BTreeMap<String, Vec<u8>>,
) -> Result<&'a [u8], SpecError> {
    if let Some(datastore) = data.get(DATASTORE_TYPE_KEY) {
        let datastore = String::from_utf8_lossy(datastore);
        if datastore.trim() != "kubernetes" {
            return Err(SpecError::Datastore {
                namespace: secret.namespace.clone(),
                name: secret.name.clone(),
                value: datastore.into_owned(),
            });
        }
    }
    data.get(KUBECONFIG_KEY)
        .filter(|k| !k.is_empty())
        .map(Vec::as_slice)
        .ok_or_else(|| SpecError::NoKubeconfig {
            namespace: secret.namespace.clone(),
            name: secret.name.clone(),
        })
}
