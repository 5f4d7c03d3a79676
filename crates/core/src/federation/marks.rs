//! The names fedmesh's federation control plane writes and reads: the
//! federation's own name, the marks on member objects, the finalizer on
//! federated ones, and which objects of the federation API are federated.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

/// The label on every member object fedmesh created or adopted; its value is
/// the federation's name, so a cluster that belongs to two federations keeps
/// each one's objects apart, and the controller can watch its objects in a
/// member by label.
pub const FEDERATION_LABEL: &str = "federation.fedmesh.io/federation";

/// The annotation saying how a member object became the federation's:
/// [`Origin::Created`] or [`Origin::Adopted`].
pub const ORIGIN_ANNOTATION: &str = "federation.fedmesh.io/origin";

/// The finalizer fedmesh puts on a federated object, so that deleting it
/// waits until its member copies are deleted (or orphaned).
pub const FINALIZER: &str = "federation.fedmesh.io/propagation";

/// The finalizer the API server adds for `kubectl delete --cascade=orphan`.
pub const ORPHAN_FINALIZER: &str = "orphan";

/// The namespace label that federates a namespace's objects on a shared
/// cluster ([`Scope::LabelledNamespaces`]).
pub const FEDERATED_NAMESPACE_LABEL: &str = "federation.fedmesh.io/federated";

/// The prefix of the annotations fedmesh itself writes on federated objects
/// (their shard status): they describe the federated object, so they are not
/// copied to members.
pub const OWN_ANNOTATION_PREFIX: &str = "federation.fedmesh.io/";

/// The longest DNS-1123 label.
const MAX_LABEL_LEN: usize = 63;

/// The federation's name: the value of [`FEDERATION_LABEL`] and the
/// `<federation>` part of its DNS names, so a DNS-1123 label.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FederationName(Arc<str>);

/// Why a string is not a valid [`FederationName`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "federation name {name:?} is not a DNS-1123 label: 1 to {MAX_LABEL_LEN} lower case \
     alphanumerics or '-', starting and ending with an alphanumeric"
)]
pub struct FederationNameError {
    /// The rejected name.
    pub name: String,
}

impl FederationName {
    /// Checks that `name` is a DNS-1123 label and wraps it.
    pub fn new(name: &str) -> Result<Self, FederationNameError> {
        let bytes = name.as_bytes();
        let valid = !bytes.is_empty()
            && bytes.len() <= MAX_LABEL_LEN
            && bytes[0].is_ascii_alphanumeric()
            && bytes[bytes.len() - 1].is_ascii_alphanumeric()
            && bytes
                .iter()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-');
        if valid {
            Ok(Self(name.into()))
        } else {
            Err(FederationNameError { name: name.into() })
        }
    }

    /// The name as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for FederationName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for FederationName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FederationName({:?})", &*self.0)
    }
}

/// How a member object became the federation's, as [`ORIGIN_ANNOTATION`] says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// fedmesh created it.
    Created,
    /// It existed in the member and fedmesh took it over.
    Adopted,
}

impl Origin {
    /// The annotation's value.
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Created => "created",
            Origin::Adopted => "adopted",
        }
    }
}

/// Which objects of the federation API are federated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Scope {
    /// A dedicated federation API server: every object is federated (except
    /// the API server's own, see [`Scope::includes`]).
    #[default]
    Everything,
    /// A shared cluster: only objects in namespaces labelled
    /// `federation.fedmesh.io/federated=true`.
    LabelledNamespaces,
}

/// Namespaces whose objects belong to the cluster itself, never federated.
const SYSTEM_NAMESPACES: [&str; 3] = ["kube-system", "kube-public", "kube-node-lease"];

impl Scope {
    /// Whether objects in `namespace` (with its labels) are federated. The
    /// system namespaces and `control_namespace` (where fedmesh keeps member
    /// credentials) never are.
    pub fn includes(
        self,
        namespace: &str,
        namespace_labels: &BTreeMap<String, String>,
        control_namespace: &str,
    ) -> bool {
        if SYSTEM_NAMESPACES.contains(&namespace) || namespace == control_namespace {
            return false;
        }
        match self {
            Scope::Everything => true,
            Scope::LabelledNamespaces => namespace_labels
                .get(FEDERATED_NAMESPACE_LABEL)
                .is_some_and(|v| v == "true"),
        }
    }
}
