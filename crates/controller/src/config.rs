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
    /// How long another replica waits, having seen the Lease unchanged, before
    /// taking it over.
    pub lease_duration: Duration,
    /// How long the holder's claim stays current after the start of its last
    /// successful renewal (shorter than `lease_duration`: the margin keeps
    /// two replicas from writing at once).
    pub renew_deadline: Duration,
    /// How often the holder renews the Lease.
    pub renew_interval: Duration,
    /// How often a replica that does not hold the Lease looks at it (a
    /// released Lease is taken within this).
    pub retry_interval: Duration,
    /// Where to serve `/metrics`, `/healthz` and `/readyz`; `None` serves nothing.
    pub metrics_addr: Option<SocketAddr>,
    /// How often every cluster (the local one included) is probed.
    pub probe_interval: Duration,
    /// How long a probe, or a connection attempt, may take.
    pub probe_timeout: Duration,
    /// Probes in a row that must fail before a cluster counts as failed
    /// (a rejected credential or certificate counts at once).
    pub failure_threshold: u32,
    /// The longest wait between reconnection attempts, and between retries
    /// of a failing write.
    pub max_backoff: Duration,
    /// The first retry's delay for a failing write; it doubles per failure.
    pub write_backoff_base: Duration,
    /// Objects written at once by each writer.
    pub write_concurrency: usize,
    /// How often a status whose state did not change (only its counts) may
    /// be rewritten.
    pub status_refresh: Duration,
    /// How long writes may keep failing before the replica reports not ready.
    pub unready_after: Duration,
    /// Which federated endpoint identity outputs are on (none by default).
    pub identity_outputs: IdentityOutputs,
}

/// Which objects federated endpoint identity writes into the local cluster
/// for the remote clusters' pods and host endpoints (docs/identity.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct IdentityOutputs {
    /// Calico NetworkSets (remote pods) and GlobalNetworkSets (remote host
    /// endpoints), through `projectcalico.org/v3` when the Calico API server
    /// is installed, else through the `crd.projectcalico.org/v1` CRDs.
    pub calico: bool,
    /// Cilium CiliumCIDRGroups (`cilium.io/v2alpha1`).
    pub cilium: bool,
}

impl IdentityOutputs {
    /// Whether any output is on (else the feature does not run at all).
    pub fn any(self) -> bool {
        self.calico || self.cilium
    }
}

impl ControllerConfig {
    /// Settings for a controller in `namespace` known as `identity`, with the
    /// usual timings: client-go's leader election (15 s Lease, 10 s renew
    /// deadline, renewed every 2 s), and a hung cluster found within
    /// 2 s + 2 × (2 s + 2 s) = 10 s at worst.
    pub fn new(namespace: impl Into<String>, identity: impl Into<String>) -> Self {
        Self {
            namespace: namespace.into(),
            identity: identity.into(),
            lease_name: "fedmesh-controller".into(),
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            renew_interval: Duration::from_secs(2),
            retry_interval: Duration::from_millis(500),
            metrics_addr: None,
            probe_interval: Duration::from_secs(2),
            probe_timeout: Duration::from_secs(2),
            failure_threshold: 2,
            max_backoff: Duration::from_secs(30),
            write_backoff_base: Duration::from_millis(200),
            write_concurrency: 16,
            status_refresh: Duration::from_secs(1),
            unready_after: Duration::from_secs(10),
            identity_outputs: IdentityOutputs::default(),
        }
    }
}
