//! Names that identify clusters and services in the mesh.
//!
//! Bare strings are easy to mix up (a cluster name passed as a namespace, a
//! remote service treated as local), so every identifier the index keys on has
//! its own type.

use std::fmt;
use std::sync::Arc;

/// The longest name Kubernetes accepts for a cluster-scoped object (a DNS-1123 subdomain).
const MAX_SUBDOMAIN_LEN: usize = 253;

/// The name of a remote cluster: the name of its RemoteClusterConfiguration.
///
/// It is a DNS-1123 subdomain, as every Kubernetes object name is, so it can be
/// used in `targetRef.name` (`<cluster>/<pod>`) and as a label value prefix.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClusterName(Arc<str>);

/// Why a string is not a valid [`ClusterName`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClusterNameError {
    /// The name is empty.
    #[error("cluster name must not be empty")]
    Empty,
    /// The name is longer than a DNS-1123 subdomain may be.
    #[error("cluster name {name:?} is longer than {MAX_SUBDOMAIN_LEN} characters")]
    TooLong {
        /// The rejected name.
        name: String,
    },
    /// The name has a character or shape a DNS-1123 subdomain does not allow.
    #[error(
        "cluster name {name:?} is not a DNS-1123 subdomain: lower case alphanumerics, '-' and '.', \
         starting and ending with an alphanumeric"
    )]
    Invalid {
        /// The rejected name.
        name: String,
    },
}

impl ClusterName {
    /// Checks that `name` is a DNS-1123 subdomain and wraps it.
    pub fn new(name: &str) -> Result<Self, ClusterNameError> {
        if name.is_empty() {
            return Err(ClusterNameError::Empty);
        }
        if name.len() > MAX_SUBDOMAIN_LEN {
            return Err(ClusterNameError::TooLong { name: name.into() });
        }
        let valid_label = |label: &str| {
            let bytes = label.as_bytes();
            !bytes.is_empty()
                && bytes[0].is_ascii_alphanumeric()
                && bytes[bytes.len() - 1].is_ascii_alphanumeric()
                && bytes
                    .iter()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        };
        if !name.split('.').all(valid_label) {
            return Err(ClusterNameError::Invalid { name: name.into() });
        }
        Ok(Self(name.into()))
    }

    /// The name as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ClusterName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ClusterName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ClusterName({:?})", &*self.0)
    }
}

/// Where an object lives: in the local cluster, or in a named remote cluster.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Origin {
    /// The cluster the controller runs in. Ordered first, so local endpoints
    /// come first in what the index writes.
    Local,
    /// A remote cluster, named by its RemoteClusterConfiguration.
    Remote(ClusterName),
}

impl Origin {
    /// The remote cluster's name, or `None` for the local cluster.
    pub fn cluster(&self) -> Option<&ClusterName> {
        match self {
            Origin::Local => None,
            Origin::Remote(name) => Some(name),
        }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Local => f.write_str("local cluster"),
            Origin::Remote(name) => write!(f, "remote cluster {name}"),
        }
    }
}

/// A Service anywhere in the mesh: its cluster, namespace and name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServiceKey {
    /// The cluster the Service is in.
    pub origin: Origin,
    /// The Service's namespace.
    pub namespace: Arc<str>,
    /// The Service's name.
    pub name: Arc<str>,
}

impl ServiceKey {
    /// A key for the Service `namespace/name` in `origin`.
    pub fn new(origin: Origin, namespace: &str, name: &str) -> Self {
        Self {
            origin,
            namespace: namespace.into(),
            name: name.into(),
        }
    }
}

impl fmt::Display for ServiceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.origin {
            Origin::Local => write!(f, "{}/{}", self.namespace, self.name),
            Origin::Remote(c) => write!(f, "{c}:{}/{}", self.namespace, self.name),
        }
    }
}

/// A federated Service. Federated services only exist in the local cluster:
/// remote clusters federate for themselves.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FederatedKey {
    /// The Service's namespace.
    pub namespace: Arc<str>,
    /// The Service's name.
    pub name: Arc<str>,
}

impl FederatedKey {
    /// A key for the local federated Service `namespace/name`.
    pub fn new(namespace: &str, name: &str) -> Self {
        Self {
            namespace: namespace.into(),
            name: name.into(),
        }
    }
}

impl fmt::Display for FederatedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// An EndpointSlice anywhere in the mesh.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SliceKey {
    /// The cluster the slice is in.
    pub origin: Origin,
    /// The slice's namespace.
    pub namespace: Arc<str>,
    /// The slice's name.
    pub name: Arc<str>,
}

impl SliceKey {
    /// A key for the EndpointSlice `namespace/name` in `origin`.
    pub fn new(origin: Origin, namespace: &str, name: &str) -> Self {
        Self {
            origin,
            namespace: namespace.into(),
            name: name.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_names_follow_dns_subdomain_rules() {
        for ok in ["remotecluster", "east-1", "a.b.c", "0", "uc-aks-prod-03"] {
            assert_eq!(ClusterName::new(ok).unwrap().as_str(), ok);
        }
        assert_eq!(ClusterName::new(""), Err(ClusterNameError::Empty));
        for bad in ["East", "-a", "a-", "a..b", "a_b", "a/b", ".a"] {
            assert!(
                matches!(ClusterName::new(bad), Err(ClusterNameError::Invalid { .. })),
                "{bad} should be rejected"
            );
        }
        let long = "a".repeat(254);
        assert!(matches!(
            ClusterName::new(&long),
            Err(ClusterNameError::TooLong { .. })
        ));
    }

    #[test]
    fn local_origin_sorts_before_remote() {
        let remote = Origin::Remote(ClusterName::new("a").unwrap());
        assert!(Origin::Local < remote);
    }
}
