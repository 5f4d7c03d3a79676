//! Remote clusters: their configuration (Calico's RemoteClusterConfiguration)
//! and the status fedmesh keeps on it.

pub(crate) mod spec;
mod status;

#[cfg(test)]
mod tests;

pub use spec::{
    API_VERSION, DATASTORE_TYPE_KEY, DEFAULT_GRACE_PERIOD, KIND, KUBECONFIG_KEY,
    OverlayRoutingMode, RemoteClusterSpec, SecretRef, SpecError, UnreachablePolicy,
    kubeconfig_from_secret,
};
pub use status::{Condition, Reason, RemoteStatus, SyncEvent, SyncState, Withdrawal};
