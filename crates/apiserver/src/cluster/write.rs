//! What a controller should write to the API after a sync.

/// A namespaced object's coordinates.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectKey {
    /// `metadata.namespace`
    pub namespace: String,
    /// `metadata.name`
    pub name: String,
}

impl ObjectKey {
    /// A key from its parts.
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            namespace: namespace.into(),
            name: name.into(),
        }
    }
}

/// One write a controller performs. `Update` carries the stored object's
/// metadata (resourceVersion included) so that the write is conditional on
/// what the controller saw, as kube-controller-manager's updates are.
#[derive(Debug, Clone, PartialEq)]
pub enum Write<T> {
    /// Create this object (it may carry `generateName` instead of a name).
    Create(T),
    /// Replace the stored object with this one.
    Update(T),
    /// Delete the object with this key.
    Delete(ObjectKey),
}
