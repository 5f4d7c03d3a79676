//! Endpoints and profiles as the identity index sees them: pods and Calico
//! HostEndpoints with their IPs and labels, and the namespaces and service
//! accounts whose labels Calico hands down to the pods in them.
//!
//! Reading a Kubernetes object into a view is the only place that knows
//! object shapes; the index only sees views.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Namespace, Pod, ServiceAccount};
use serde_json::Value;

use crate::names::{ClusterName, Origin};

/// Calico's label naming the namespace of a workload endpoint.
pub const NAMESPACE_LABEL: &str = "projectcalico.org/namespace";
/// Calico's label naming the orchestrator of a workload endpoint.
pub const ORCHESTRATOR_LABEL: &str = "projectcalico.org/orchestrator";
/// The value of [`ORCHESTRATOR_LABEL`] on Kubernetes pods.
pub const ORCHESTRATOR_K8S: &str = "k8s";
/// Calico's label naming the service account of a workload endpoint.
pub const SERVICE_ACCOUNT_LABEL: &str = "projectcalico.org/serviceaccount";
/// The prefix of a namespace's labels as Calico's namespace profile hands
/// them to the pods in it (`pcns.<key>`).
pub const NAMESPACE_LABEL_PREFIX: &str = "pcns.";
/// The prefix of a service account's labels as Calico's service account
/// profile hands them to its pods (`pcsa.<key>`).
pub const SERVICE_ACCOUNT_LABEL_PREFIX: &str = "pcsa.";
/// The label Calico's profiles add to name their namespace or service account
/// (so `pcns.projectcalico.org/name == "myapp"` matches a namespace by name).
pub const PROFILE_NAME_LABEL: &str = "projectcalico.org/name";

/// What kind of endpoint a key names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EndpointKind {
    /// A pod (Calico's workload endpoint): namespaced.
    Workload,
    /// A Calico HostEndpoint: cluster-scoped.
    Host,
}

impl fmt::Display for EndpointKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            EndpointKind::Workload => "pod",
            EndpointKind::Host => "hostendpoint",
        })
    }
}

/// An endpoint anywhere in the mesh. A pod always has a namespace and a host
/// endpoint never has one, so the two are separate variants.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EndpointKey {
    /// A pod.
    Workload {
        /// The cluster the pod is in.
        origin: Origin,
        /// Its namespace.
        namespace: Arc<str>,
        /// Its name.
        name: Arc<str>,
    },
    /// A Calico HostEndpoint.
    Host {
        /// The cluster it is in.
        origin: Origin,
        /// Its name.
        name: Arc<str>,
    },
}

impl EndpointKey {
    /// The key of the pod `namespace/name` in `origin`.
    pub fn workload(origin: Origin, namespace: &str, name: &str) -> Self {
        EndpointKey::Workload {
            origin,
            namespace: namespace.into(),
            name: name.into(),
        }
    }

    /// The key of the HostEndpoint `name` in `origin`.
    pub fn host(origin: Origin, name: &str) -> Self {
        EndpointKey::Host {
            origin,
            name: name.into(),
        }
    }

    /// The cluster the endpoint is in.
    pub fn origin(&self) -> &Origin {
        match self {
            EndpointKey::Workload { origin, .. } | EndpointKey::Host { origin, .. } => origin,
        }
    }

    /// The pod's namespace; `None` for a host endpoint.
    pub fn namespace(&self) -> Option<&Arc<str>> {
        match self {
            EndpointKey::Workload { namespace, .. } => Some(namespace),
            EndpointKey::Host { .. } => None,
        }
    }

    /// The object's name.
    pub fn name(&self) -> &Arc<str> {
        match self {
            EndpointKey::Workload { name, .. } | EndpointKey::Host { name, .. } => name,
        }
    }

    /// Pod or host endpoint.
    pub fn kind(&self) -> EndpointKind {
        match self {
            EndpointKey::Workload { .. } => EndpointKind::Workload,
            EndpointKey::Host { .. } => EndpointKind::Host,
        }
    }

    /// The remote cluster, or `None` for a local endpoint.
    pub fn cluster(&self) -> Option<&ClusterName> {
        self.origin().cluster()
    }
}

impl fmt::Display for EndpointKey {
    /// `<cluster>/<namespace>/<name>` as Calico names remote endpoints
    /// (`<cluster>/` only for remote ones, `<namespace>/` only for pods).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(cluster) = self.cluster() {
            write!(f, "{cluster}/")?;
        }
        if let Some(namespace) = self.namespace() {
            write!(f, "{namespace}/")?;
        }
        f.write_str(self.name())
    }
}

/// A pod or HostEndpoint as the index needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointView {
    /// Which endpoint.
    pub key: EndpointKey,
    /// The object's own labels (Calico's labels are added by the index).
    pub labels: BTreeMap<String, String>,
    /// The pod's IPs, or the host endpoint's expected IPs; may be empty
    /// (a pending pod): such an endpoint is selectable but not mirrored.
    pub ips: Vec<IpAddr>,
    /// The node it runs on, when known.
    pub node: Option<Arc<str>>,
    /// The pod's service account (`None` for host endpoints).
    pub service_account: Option<Arc<str>>,
}

/// Why an object could not be read as an endpoint or profile.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EndpointError {
    /// The object has no `metadata.name`.
    #[error("{kind} has no metadata.name")]
    MissingName {
        /// What kind of object it is.
        kind: &'static str,
    },
    /// A namespaced object has no `metadata.namespace`.
    #[error("{kind} {name:?} has no metadata.namespace")]
    MissingNamespace {
        /// What kind of object it is.
        kind: &'static str,
        /// Its name.
        name: String,
    },
    /// A HostEndpoint whose `spec.expectedIPs` is not a list of IP addresses.
    #[error("HostEndpoint {name:?}: spec.expectedIPs entry {value:?} is not an IP address")]
    InvalidExpectedIp {
        /// The HostEndpoint's name.
        name: String,
        /// The entry that is not an IP.
        value: String,
    },
}

impl EndpointView {
    /// Reads a pod found in `origin`, taking its labels. `Ok(None)` when the
    /// pod is not a Calico workload endpoint: host-networked pods (their IP
    /// is the node's, so Calico gives them no endpoint) and pods that have
    /// finished (Succeeded or Failed: Calico releases their IPs). The caller
    /// then deletes the pod's key ([`EndpointKey::of_pod`]).
    pub fn from_pod(origin: Origin, mut pod: Pod) -> Result<Option<Self>, EndpointError> {
        let key = EndpointKey::of_pod(origin, &pod)?;
        let spec = pod.spec.take().unwrap_or_default();
        let status = pod.status.take().unwrap_or_default();
        let finished = matches!(status.phase.as_deref(), Some("Succeeded" | "Failed"));
        if spec.host_network == Some(true) || finished {
            return Ok(None);
        }
        let mut ips: Vec<IpAddr> = status
            .pod_ips
            .iter()
            .flatten()
            .filter_map(|p| p.ip.parse().ok())
            .collect();
        if ips.is_empty()
            && let Some(ip) = status.pod_ip.as_deref().and_then(|ip| ip.parse().ok())
        {
            ips.push(ip);
        }
        ips.sort_unstable();
        ips.dedup();
        let service_account = spec
            .service_account_name
            .or(spec.service_account)
            .filter(|sa| !sa.is_empty())
            .map(Arc::from);
        Ok(Some(Self {
            key,
            labels: pod.metadata.labels.take().unwrap_or_default(),
            ips,
            node: spec.node_name.map(Arc::from),
            service_account,
        }))
    }

    /// Reads a Calico HostEndpoint (`projectcalico.org/v3` or the
    /// `crd.projectcalico.org/v1` form: both carry the same metadata and
    /// spec) found in `origin`.
    pub fn from_host_endpoint(origin: Origin, object: &Value) -> Result<Self, EndpointError> {
        let name = object
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .ok_or(EndpointError::MissingName {
                kind: "HostEndpoint",
            })?;
        let labels = string_map(object.pointer("/metadata/labels"));
        let spec = object.get("spec");
        let mut ips = Vec::new();
        for value in spec
            .and_then(|s| s.get("expectedIPs"))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let ip = value.as_str().and_then(|s| s.parse().ok()).ok_or_else(|| {
                EndpointError::InvalidExpectedIp {
                    name: name.to_owned(),
                    value: value.to_string(),
                }
            })?;
            ips.push(ip);
        }
        ips.sort_unstable();
        ips.dedup();
        Ok(Self {
            key: EndpointKey::host(origin, name),
            labels,
            ips,
            node: spec
                .and_then(|s| s.get("node"))
                .and_then(Value::as_str)
                .filter(|n| !n.is_empty())
                .map(Arc::from),
            service_account: None,
        })
    }
}

impl EndpointKey {
    /// The key of `pod` in `origin` (also for pods that are no endpoint).
    pub fn of_pod(origin: Origin, pod: &Pod) -> Result<Self, EndpointError> {
        let (namespace, name) = namespaced_name("Pod", &pod.metadata)?;
        Ok(EndpointKey::workload(origin, namespace, name))
    }
}

fn namespaced_name<'a>(
    kind: &'static str,
    meta: &'a k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
) -> Result<(&'a str, &'a str), EndpointError> {
    let name = meta
        .name
        .as_deref()
        .ok_or(EndpointError::MissingName { kind })?;
    let namespace = meta
        .namespace
        .as_deref()
        .ok_or_else(|| EndpointError::MissingNamespace {
            kind,
            name: name.to_owned(),
        })?;
    Ok((namespace, name))
}

fn string_map(value: Option<&Value>) -> BTreeMap<String, String> {
    value
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
        .collect()
}

/// A namespace anywhere in the mesh.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NamespaceKey {
    /// The cluster it is in.
    pub origin: Origin,
    /// Its name.
    pub name: Arc<str>,
}

/// A service account anywhere in the mesh.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServiceAccountKey {
    /// The cluster it is in.
    pub origin: Origin,
    /// Its namespace.
    pub namespace: Arc<str>,
    /// Its name.
    pub name: Arc<str>,
}

/// Which profile a view describes: Calico turns each namespace and each
/// service account into a profile whose labels the pods in it inherit.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ProfileKey {
    /// A namespace's profile (`pcns.` labels).
    Namespace(NamespaceKey),
    /// A service account's profile (`pcsa.` labels).
    ServiceAccount(ServiceAccountKey),
}

impl ProfileKey {
    /// The cluster the profile's object is in.
    pub fn origin(&self) -> &Origin {
        match self {
            ProfileKey::Namespace(k) => &k.origin,
            ProfileKey::ServiceAccount(k) => &k.origin,
        }
    }
}

/// A namespace or service account and its labels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileView {
    /// Which one.
    pub key: ProfileKey,
    /// Its own labels (without prefix).
    pub labels: BTreeMap<String, String>,
}

impl ProfileView {
    /// Reads a namespace found in `origin`.
    pub fn from_namespace(origin: Origin, mut namespace: Namespace) -> Result<Self, EndpointError> {
        let name = namespace
            .metadata
            .name
            .as_deref()
            .ok_or(EndpointError::MissingName { kind: "Namespace" })?;
        Ok(Self {
            key: ProfileKey::Namespace(NamespaceKey {
                origin,
                name: name.into(),
            }),
            labels: namespace.metadata.labels.take().unwrap_or_default(),
        })
    }

    /// Reads a service account found in `origin`.
    pub fn from_service_account(
        origin: Origin,
        mut account: ServiceAccount,
    ) -> Result<Self, EndpointError> {
        let (namespace, name) = namespaced_name("ServiceAccount", &account.metadata)?;
        let key = ProfileKey::ServiceAccount(ServiceAccountKey {
            origin,
            namespace: namespace.into(),
            name: name.into(),
        });
        Ok(Self {
            key,
            labels: account.metadata.labels.take().unwrap_or_default(),
        })
    }
}
