//! How the controller runs: where, as whom, and how it talks.

use std::net::SocketAddr;
use std::time::Duration;

/// The controller's settings.
#[derive(Debug, Clone)]
pub struct ControllerConfig {
    /// The namespace the controller runs in: its Lease lives there, and access
    /// Secrets named without a namespace are looked up there.
    pub namespace: String,
    /// This replica's identity in the Lease (pod name, or host name and pid).
    pub identity: String,
    /// The Lease replicas compete for; only its holder writes.
    pub lease_name: String,
    /// How long a Lease stays valid without renewal.
    pub lease_duration: Duration,
    /// How often the holder renews (and others check) the Lease.
    pub renew_interval: Duration,
    /// Where to serve `/metrics`, `/healthz` and `/readyz`; `None` serves nothing.
    pub metrics_addr: Option<SocketAddr>,
    /// The longest wait between reconnection attempts to a remote cluster.
    pub max_backoff: Duration,
    /// How often a RemoteClusterConfiguration status whose state did not change
    /// (only its counts) is rewritten: endpoints churn, and a write per change
    /// would load the local API server.
    pub status_refresh: Duration,
}

impl ControllerConfig {
    /// Settings for a controller in `namespace` known as `identity`, with the
    /// usual timings (15 s Lease renewed every 5 s, as Kubernetes' own
    /// controllers use).
    pub fn new(namespace: impl Into<String>, identity: impl Into<String>) -> Self {
        Self {
            namespace: namespace.into(),
            identity: identity.into(),
            lease_name: "fedmesh-controller".into(),
            lease_duration: Duration::from_secs(15),
            renew_interval: Duration::from_secs(5),
            metrics_addr: None,
            max_backoff: Duration::from_secs(30),
            status_refresh: Duration::from_secs(10),
        }
    }
}
