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

/// Something that happened to a remote cluster's connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncEvent {
    /// A connection attempt started.
    Connecting,
    /// The remote was listed (or relisted) and is being watched.
    Synced {
        /// Services now synced from it.
        services: usize,
        /// Endpoints now synced from it.
        endpoints: usize,
    },
    /// The connection failed: a CamelCase reason and a message.
    Failed {
        /// Why, in one word.
        reason: String,
        /// What happened.
        message: String,
    },
    /// The configuration is unusable: a CamelCase reason and a message.
    ConfigIncomplete {
        /// Why, in one word.
        reason: String,
        /// What is wrong.
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
    /// Since when the remote has not answered, if it has not (kept across
    /// reconnection attempts, cleared by a sync).
    pub unreachable_since: Option<Timestamp>,
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
                "connecting to the remote cluster's API server".to_owned(),
            ),
            SyncEvent::Synced {
                services,
                endpoints,
            } => (
                SyncState::InSync,
                "Synced".to_owned(),
                format!("{services} services and {endpoints} endpoints synced"),
            ),
            SyncEvent::Failed { reason, message } => {
                (SyncState::ConnectionFailed, reason.clone(), message.clone())
            }
            SyncEvent::ConfigIncomplete { reason, message } => {
                (SyncState::ConfigIncomplete, reason.clone(), message.clone())
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
        let unreachable_since = match state {
            SyncState::InSync => None,
            SyncState::ConnectionFailed | SyncState::Connecting => previous
                .and_then(|p| p.unreachable_since)
                .or((state == SyncState::ConnectionFailed).then_some(now)),
            SyncState::ConfigIncomplete => None,
        };
        RemoteStatus {
            state,
            since,
            conditions,
            services,
            endpoints,
            last_sync,
            unreachable_since,
        }
    }

    /// What `policy` says to do with the remote's endpoints at `now`.
    pub fn withdrawal(&self, policy: UnreachablePolicy, now: Timestamp) -> Withdrawal {
        if self.state == SyncState::ConfigIncomplete {
            // An unusable configuration counts as no configuration, as in Calico.
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
