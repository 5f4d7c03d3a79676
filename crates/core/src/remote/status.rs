//! The status fedmesh keeps on each RemoteClusterConfiguration: a state, one
//! condition per state, counts of what was synced, and when things changed.
//!
//! Calico reports remote cluster state only in Typha's logs and a gauge;
//! fedmesh also writes it where `kubectl get remoteclusterconfigurations`
//! shows it.

use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use serde_json::json;

use super::spec::UnreachablePolicy;

/// Where the connection to a remote cluster stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SyncState {
    /// Connecting, or listing for the first time.
    Connecting,
    /// Listed and watching: the remote's services and endpoints are current.
    InSync,
    /// The last attempt failed; fedmesh retries with backoff.
    ConnectionFailed,
    /// The RemoteClusterConfiguration or its Secret is unusable; nothing is
    /// synced until it is fixed.
    ConfigIncomplete,
}

impl SyncState {
    /// Every state, in the order conditions are listed.
    pub const ALL: [SyncState; 4] = [
        SyncState::Connecting,
        SyncState::InSync,
        SyncState::ConnectionFailed,
        SyncState::ConfigIncomplete,
    ];

    /// The state's name, as conditions and printer columns show it.
    pub fn as_str(self) -> &'static str {
        match self {
            SyncState::Connecting => "Connecting",
            SyncState::InSync => "InSync",
            SyncState::ConnectionFailed => "ConnectionFailed",
            SyncState::ConfigIncomplete => "ConfigIncomplete",
        }
    }

    /// The value of Calico's `remote_cluster_connection_status` gauge.
    pub fn gauge_value(self) -> i64 {
        match self {
            SyncState::ConnectionFailed => 0,
            SyncState::Connecting => 1,
            SyncState::InSync => 2,
            SyncState::ConfigIncomplete => 5,
        }
    }
}

/// Why a remote cluster is not in sync: each reason belongs to one state
/// (`ConnectionFailed` or `ConfigIncomplete`), so an event cannot pair a
/// connection problem with the configuration state or the other way round.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    /// The remote's API server did not answer (refused, reset, DNS).
    Unreachable,
    /// The remote's API server accepted the connection but did not answer in time.
    Timeout,
    /// The remote answered 5xx.
    ServerError,
    /// The remote rejected fedmesh's credentials (401).
    Unauthorized,
    /// The remote accepted the credentials but denied a read fedmesh needs (403).
    Forbidden,
    /// The remote's serving certificate is not signed by the CA fedmesh has for it.
    CertificateChanged,
    /// The local API server could not be read (the access Secret, for instance).
    LocalApiError,
    /// The RemoteClusterConfiguration itself is invalid.
    InvalidConfiguration,
    /// The access Secret does not exist.
    SecretNotFound,
    /// The access Secret exists but holds no usable kubeconfig.
    InvalidSecret,
    /// The kubeconfig in the access Secret cannot be used.
    InvalidKubeconfig,
    /// Another RemoteClusterConfiguration already connects the same cluster.
    DuplicateCluster,
    /// The configuration points at the local cluster itself.
    LocalCluster,
}

impl Reason {
    /// The reason as conditions show it.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Unreachable => "Unreachable",
            Reason::Timeout => "Timeout",
            Reason::ServerError => "ServerError",
            Reason::Unauthorized => "Unauthorized",
            Reason::Forbidden => "Forbidden",
            Reason::CertificateChanged => "CertificateChanged",
            Reason::LocalApiError => "LocalAPIError",
            Reason::InvalidConfiguration => "InvalidConfiguration",
            Reason::SecretNotFound => "SecretNotFound",
            Reason::InvalidSecret => "InvalidSecret",
            Reason::InvalidKubeconfig => "InvalidKubeconfig",
            Reason::DuplicateCluster => "DuplicateCluster",
            Reason::LocalCluster => "LocalCluster",
        }
    }

    /// The state a remote with this problem is in.
    pub fn state(self) -> SyncState {
        match self {
            Reason::Unreachable
            | Reason::Timeout
            | Reason::ServerError
            | Reason::Unauthorized
            | Reason::Forbidden
            | Reason::CertificateChanged
            | Reason::LocalApiError => SyncState::ConnectionFailed,
            Reason::InvalidConfiguration
            | Reason::SecretNotFound
            | Reason::InvalidSecret
            | Reason::InvalidKubeconfig
            | Reason::DuplicateCluster
            | Reason::LocalCluster => SyncState::ConfigIncomplete,
        }
    }

    /// Whether the remote is refused outright: its endpoints would duplicate
    /// ones already in use, so they are dropped whatever the policy says.
    pub fn refuses(self) -> bool {
        matches!(self, Reason::DuplicateCluster | Reason::LocalCluster)
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Something that happened to a remote cluster's connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncEvent {
    /// A connection attempt started.
    Connecting,
    /// The remote was listed (or relisted) and is being watched; also sent
    /// when the counts change while in sync.
    Synced {
        /// Services now synced from it.
        services: usize,
        /// Endpoints now synced from it.
        endpoints: usize,
    },
    /// The connection or the configuration failed.
    Failed {
        /// Why; it decides the state.
        reason: Reason,
        /// What happened and what to do, as a sentence.
        message: String,
    },
}

/// One condition of the status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    /// The state it stands for.
    pub state: SyncState,
    /// Whether the remote is in that state now.
    pub status: bool,
    /// Why, in one word.
    pub reason: String,
    /// More detail.
    pub message: String,
    /// When `status` last changed.
    pub last_transition: Timestamp,
}

/// The status of one RemoteClusterConfiguration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteStatus {
    /// The current state.
    pub state: SyncState,
    /// When the current state began.
    pub since: Timestamp,
    /// One condition per state, exactly one of them true.
    pub conditions: Vec<Condition>,
    /// Services synced at the last sync.
    pub services: usize,
    /// Endpoints synced at the last sync.
    pub endpoints: usize,
    /// When the remote was last in sync.
    pub last_sync: Option<Timestamp>,
    /// Since when the remote has not answered or its configuration has been
    /// unusable (kept across reconnection attempts, cleared by a sync).
    pub unreachable_since: Option<Timestamp>,
    /// The remote is refused (a duplicate, or the local cluster itself).
    pub refused: bool,
    /// Its endpoints were withdrawn and have not come back since.
    pub withdrawn: bool,
}

/// What to do with a remote's endpoints now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Withdrawal {
    /// Keep them.
    Keep,
    /// Drop them now.
    Now,
    /// Keep them; look again after this long.
    After(Duration),
}

impl RemoteStatus {
    /// The status after `event`, given the one before (if any), at `now`.
    pub fn next(
        previous: Option<&RemoteStatus>,
        event: &SyncEvent,
        now: Timestamp,
    ) -> RemoteStatus {
        let (state, reason, message) = match event {
            SyncEvent::Connecting => (
                SyncState::Connecting,
                "Connecting".to_owned(),
                "Connecting to the remote cluster's API server.".to_owned(),
            ),
            SyncEvent::Synced {
                services,
                endpoints,
            } => (
                SyncState::InSync,
                "Synced".to_owned(),
                format!(
                    "{services} services and {endpoints} endpoints of the remote cluster are in use."
                ),
            ),
            SyncEvent::Failed { reason, message } => {
                (reason.state(), reason.as_str().to_owned(), message.clone())
            }
        };
        let since = match previous {
            Some(p) if p.state == state => p.since,
            _ => now,
        };
        let conditions = SyncState::ALL
            .iter()
            .map(|&s| {
                let status = s == state;
                let before = previous.and_then(|p| p.conditions.iter().find(|c| c.state == s));
                let last_transition = match before {
                    Some(c) if c.status == status => c.last_transition,
                    _ => now,
                };
                Condition {
                    state: s,
                    status,
                    reason: if status {
                        reason.clone()
                    } else {
                        state.as_str().to_owned()
                    },
                    message: if status {
                        message.clone()
                    } else {
                        String::new()
                    },
                    last_transition,
                }
            })
            .collect();
        let (services, endpoints, last_sync) = match event {
            SyncEvent::Synced {
                services,
                endpoints,
            } => (*services, *endpoints, Some(now)),
            _ => previous.map_or((0, 0, None), |p| (p.services, p.endpoints, p.last_sync)),
        };
        // A broken configuration counts as unreachable: a Secret rotated by
        // delete-then-create must not withdraw every endpoint at once.
        let unreachable_since = match state {
            SyncState::InSync => None,
            SyncState::Connecting => previous.and_then(|p| p.unreachable_since),
            SyncState::ConnectionFailed | SyncState::ConfigIncomplete => {
                previous.and_then(|p| p.unreachable_since).or(Some(now))
            }
        };
        let refused = match event {
            SyncEvent::Failed { reason, .. } => reason.refuses(),
            _ => false,
        };
        let withdrawn = state != SyncState::InSync && previous.is_some_and(|p| p.withdrawn);
        RemoteStatus {
            refused,
            withdrawn,
            state,
            since,
            conditions,
            services,
            endpoints,
            last_sync,
            unreachable_since,
        }
    }

    /// The status once the remote's endpoints were dropped from the federated
    /// services: the state stays, the counts fall to zero until the next sync.
    pub fn withdrawn(&self) -> RemoteStatus {
        RemoteStatus {
            services: 0,
            endpoints: 0,
            withdrawn: true,
            ..self.clone()
        }
    }

    /// What `policy` says to do with the remote's endpoints at `now`.
    pub fn withdrawal(&self, policy: UnreachablePolicy, now: Timestamp) -> Withdrawal {
        if self.refused {
            return Withdrawal::Now;
        }
        let (UnreachablePolicy::Withdraw { grace_period }, Some(since)) =
            (policy, self.unreachable_since)
        else {
            return Withdrawal::Keep;
        };
        let down_for = now.duration_since(since).unsigned_abs();
        match grace_period.checked_sub(down_for) {
            Some(left) if !left.is_zero() => Withdrawal::After(left),
            _ => Withdrawal::Now,
        }
    }

    /// The `status` object written to the RemoteClusterConfiguration.
    pub fn to_json(&self) -> serde_json::Value {
        let time = |t: &Timestamp| {
            t.round(k8s_openapi::jiff::Unit::Second)
                .map_or_else(|_| t.to_string(), |t| t.to_string())
        };
        let message = self
            .conditions
            .iter()
            .find(|c| c.status)
            .map(|c| c.message.clone())
            .unwrap_or_default();
        json!({
            "state": self.state.as_str(),
            "since": time(&self.since),
            "message": message,
            "syncedServices": self.services,
            "endpointsWithdrawn": self.withdrawn,
            "syncedEndpoints": self.endpoints,
            "lastSyncTime": self.last_sync.as_ref().map(time),
            "conditions": self.conditions.iter().map(|c| json!({
                "type": c.state.as_str(),
                "status": if c.status { "True" } else { "False" },
                "reason": c.reason,
                "message": c.message,
                "lastTransitionTime": time(&c.last_transition),
            })).collect::<Vec<_>>(),
        })
    }
}
