//! What a Service means to federation: federated, a possible backing service,
//! or neither.
//!
//! The rules are Calico's (seed 000): a Service with the
//! `federation.tigera.io/serviceSelector` annotation and no `spec.selector` is
//! federated; any Service with the annotation never backs another; remote
//! services carry the implicit `federation.tigera.io/remoteClusterName` label.

use std::collections::BTreeMap;
use std::sync::Arc;

use fedmesh_selector::{ParseError, Selector};
use k8s_openapi::api::core::v1::Service;

use crate::names::{Origin, ServiceKey};

/// The annotation that makes a Service federated; its value is a Calico selector.
pub const SERVICE_SELECTOR_ANNOTATION: &str = "federation.tigera.io/serviceSelector";

/// The label every remote Service implicitly carries for selector matching. It
/// never appears on the objects themselves.
pub const REMOTE_CLUSTER_LABEL: &str = "federation.tigera.io/remoteClusterName";

/// A port of a federated Service: backing ports match it by name and protocol.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FederatedPort {
    /// The port's name; empty for the single unnamed port a Service may have.
    pub name: Arc<str>,
    /// The port's protocol (`TCP` when the Service leaves it out).
    pub protocol: Arc<str>,
}

/// A local Service whose endpoints fedmesh keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Federation {
    /// Which Services back it.
    pub selector: Selector,
    /// The annotation as the user wrote it (copied onto the Endpoints, as Calico does).
    pub annotation: Arc<str>,
    /// The ports it takes from its backing services.
    pub ports: Vec<FederatedPort>,
    /// The Service's uid, for owner references on what fedmesh writes.
    pub uid: Option<Arc<str>>,
}

/// The part a Service plays in federation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    /// A Service without the annotation: it backs every federated Service in its
    /// namespace whose selector matches it.
    Backing,
    /// A local Service with the annotation and no `spec.selector`.
    Federated(Federation),
    /// A local Service with the annotation and no `spec.selector`, whose
    /// selector does not parse: it is not federated, and what fedmesh wrote for
    /// it is removed.
    InvalidSelector(ParseError),
    /// A Service with the annotation that is not federated here: it has a
    /// `spec.selector`, or it is in a remote cluster. It backs nothing.
    Excluded,
}

/// A Service as the federation index sees it.
#[derive(Debug, Clone)]
pub struct ServiceView {
    /// Where the Service is.
    pub key: ServiceKey,
    /// Its labels, plus the implicit remote-cluster label for remote services.
    /// The index interns them when the view is applied: reading a listing of
    /// a hundred thousand Services only moves each object's own map here.
    pub labels: BTreeMap<String, String>,
    /// The part it plays.
    pub role: Role,
}

/// Why a Service could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ServiceError {
    /// The Service has no `metadata.name`.
    #[error("service has no metadata.name")]
    MissingName,
    /// The Service has no `metadata.namespace`.
    #[error("service {name:?} has no metadata.namespace")]
    MissingNamespace {
        /// The Service's name.
        name: String,
    },
}

impl Role {
    /// The part `service`, found in `origin`, plays.
    pub fn of(origin: &Origin, service: &Service) -> Self {
        role(origin, service)
    }
}

impl ServiceView {
    /// Reads `service` found in `origin`, taking its labels (watchers hand
    /// over owned objects, and copying every label of a mesh would be most of
    /// the cost of reading it).
    pub fn new(origin: Origin, mut service: Service) -> Result<Self, ServiceError> {
        let role = role(&origin, &service);
        let meta = &mut service.metadata;
        let name = meta.name.as_deref().ok_or(ServiceError::MissingName)?;
        let namespace =
            meta.namespace
                .as_deref()
                .ok_or_else(|| ServiceError::MissingNamespace {
                    name: name.to_owned(),
                })?;
        let key = ServiceKey::new(origin, namespace, name);
        let mut labels = meta.labels.take().unwrap_or_default();
        if let Origin::Remote(cluster) = &key.origin {
            labels.insert(REMOTE_CLUSTER_LABEL.into(), cluster.as_str().into());
        }
        Ok(Self { key, labels, role })
    }

    /// Whether this Service may back federated Services.
    pub fn is_backing(&self) -> bool {
        matches!(self.role, Role::Backing)
    }
}

fn role(origin: &Origin, service: &Service) -> Role {
    let Some(expression) = service
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(SERVICE_SELECTOR_ANNOTATION))
    else {
        return Role::Backing;
    };
    let spec = service.spec.as_ref();
    // An empty selector map selects nothing in Kubernetes, the same as none.
    let has_pod_selector = spec
        .and_then(|s| s.selector.as_ref())
        .is_some_and(|s| !s.is_empty());
    if has_pod_selector || *origin != Origin::Local {
        return Role::Excluded;
    }
    match Selector::parse(expression) {
        Ok(selector) => Role::Federated(Federation {
            selector,
            annotation: expression.as_str().into(),
            ports: spec
                .and_then(|s| s.ports.as_ref())
                .into_iter()
                .flatten()
                .map(|p| FederatedPort {
                    name: p.name.as_deref().unwrap_or("").into(),
                    protocol: p.protocol.as_deref().unwrap_or("TCP").into(),
                })
                .collect(),
            uid: service.metadata.uid.as_deref().map(Arc::from),
        }),
        Err(error) => Role::InvalidSelector(error),
    }
}
