//! What a selection asks for: a Calico selector, and the namespace, service
//! accounts and clusters it is confined to, as Calico scopes the selectors
//! of a policy.

use std::sync::Arc;

use fedmesh_selector::Selector;

/// Which clusters' endpoints a selection may return.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// Only the local cluster: a policy's main selector, since a policy
    /// applies only to the endpoints of the cluster it is in.
    Local,
    /// Local and remote clusters: rule selectors (federated endpoint identity).
    Everywhere,
}

/// Which namespaces' endpoints a selection may return.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NamespaceScope {
    /// Every endpoint, pods and host endpoints (a GlobalNetworkPolicy).
    Any,
    /// Pods in this namespace (a namespaced policy's selectors, unless the
    /// rule has a `namespaceSelector`).
    In(Arc<str>),
    /// Pods in namespaces whose labels the selector matches (a rule's
    /// `namespaceSelector`); it also matches `projectcalico.org/name`.
    Matching(Selector),
    /// Only endpoints outside any namespace: host endpoints
    /// (`namespaceSelector: global()`).
    NonNamespaced,
}

/// A rule's `serviceAccounts` match: pods running as one of `names` (any,
/// when empty) whose service account's labels `selector` matches.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ServiceAccountMatch {
    /// Service account names; empty means any name.
    pub names: Vec<Arc<str>>,
    /// A selector over the service account's labels.
    pub selector: Option<Selector>,
}

/// A selection of endpoints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointQuery {
    /// What the endpoints' labels must match.
    pub selector: Selector,
    /// Where they must be.
    pub namespace: NamespaceScope,
    /// Which service accounts they must run as, if restricted.
    pub service_accounts: Option<ServiceAccountMatch>,
    /// Which clusters.
    pub reach: Reach,
}

impl EndpointQuery {
    /// `selector` over every endpoint of every cluster.
    pub fn everywhere(selector: Selector) -> Self {
        Self {
            selector,
            namespace: NamespaceScope::Any,
            service_accounts: None,
            reach: Reach::Everywhere,
        }
    }
}
