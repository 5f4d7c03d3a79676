//! The status fedmesh keeps on each Cluster: conditions `Ready` and
//! `Offline` (as Federation v1's), when they changed and when the member was
//! last probed, and its zones and region.
//!
//! Probes fail now and then on a healthy network; a member only leaves its
//! state after `failure_threshold` failures in a row, so one lost probe does
//! not pull every shard of a cluster out of DNS.

use k8s_openapi::jiff::Timestamp;
use serde_json::json;

use super::topology::Topology;

/// Failures in a row before a Ready member counts as not Ready (with a probe
/// every second and a one-second timeout, an outage is seen within 3 s).
pub const DEFAULT_FAILURE_THRESHOLD: u32 = 2;

/// What one probe of a member's API server (`/readyz`, else `/healthz`) found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// It answered that it is healthy.
    Healthy,
    /// It answered, but not healthy.
    Unhealthy {
        /// What it answered.
        message: String,
    },
    /// It did not answer (connection refused, timeout, TLS failure).
    Unreachable {
        /// What went wrong.
        message: String,
    },
    /// It refused the credentials (401 or 403).
    Unauthorized {
        /// What it answered.
        message: String,
    },
    /// There is nothing to probe with: the Cluster, its Secret or the
    /// kubeconfig in it is unusable. Takes effect at once: configuration does
    /// not flap.
    ConfigInvalid {
        /// What is wrong, for the user to fix.
        message: String,
    },
}

impl Probe {
    /// What a connection's state (the controller runtime's, shared with the
    /// mesh's remote clusters) says of a member: in sync means healthy; a
    /// failure gives the probe outcome of its reason. `None` while the first
    /// connection attempt is still under way. The runtime already applied
    /// its failure threshold, so the result counts at once.
    pub fn from_connection(status: &crate::remote::RemoteStatus) -> Option<Probe> {
        use crate::remote::{Reason as Why, SyncState};
        let message = status
            .conditions
            .iter()
            .find(|c| c.status)
            .map(|c| c.message.clone())
            .unwrap_or_default();
        let reason = match status.state {
            SyncState::Connecting => return None,
            SyncState::InSync => return Some(Probe::Healthy),
            SyncState::ConnectionFailed | SyncState::ConfigIncomplete => status
                .conditions
                .iter()
                .find(|c| c.status)
                .map(|c| c.reason.as_str())
                .unwrap_or_default(),
        };
        let is = |why: Why| reason == why.as_str();
        Some(if is(Why::Unreachable) || is(Why::Timeout) {
            Probe::Unreachable { message }
        } else if is(Why::Unauthorized) || is(Why::Forbidden) || is(Why::CertificateChanged) {
            Probe::Unauthorized { message }
        } else if is(Why::ServerError) || is(Why::LocalApiError) {
            Probe::Unhealthy { message }
        } else {
            Probe::ConfigInvalid { message }
        })
    }
}

/// Something that happened to a member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClusterEvent {
    /// It was probed.
    Probed(Probe),
    /// Its nodes' zones or region changed.
    Topology(Topology),
}

/// Where a member stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ClusterState {
    /// Reachable and healthy: fedmesh propagates to it and its shards can serve.
    Ready,
    /// Reachable but not healthy.
    NotReady,
    /// Not reachable, or not with the credentials fedmesh has.
    Offline,
}

/// Why a member is in its state: the reason of its conditions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    /// Reachable and healthy.
    ClusterReady,
    /// Reachable but not healthy.
    ClusterNotReady,
    /// Not reachable.
    ClusterNotReachable,
    /// The credentials were refused.
    ClusterUnauthorized,
    /// The Cluster or its Secret is unusable.
    ClusterConfigInvalid,
}

impl Reason {
    /// The reason as conditions show it.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::ClusterReady => "ClusterReady",
            Reason::ClusterNotReady => "ClusterNotReady",
            Reason::ClusterNotReachable => "ClusterNotReachable",
            Reason::ClusterUnauthorized => "ClusterUnauthorized",
            Reason::ClusterConfigInvalid => "ClusterConfigInvalid",
        }
    }

    /// The state this reason puts a member in.
    pub fn state(self) -> ClusterState {
        match self {
            Reason::ClusterReady => ClusterState::Ready,
            Reason::ClusterNotReady => ClusterState::NotReady,
            Reason::ClusterNotReachable
            | Reason::ClusterUnauthorized
            | Reason::ClusterConfigInvalid => ClusterState::Offline,
        }
    }
}

/// The status of one Cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterStatus {
    /// Why the member is in its state (which gives the state).
    pub reason: Reason,
    /// More detail, for people.
    pub message: String,
    /// Failed probes in a row (0 after a healthy one).
    pub failures: u32,
    /// What the last probe found, when it failed.
    pub last_failure: Option<String>,
    /// When the member was last probed.
    pub last_probe: Option<Timestamp>,
    /// When `Ready` last changed.
    pub ready_since: Timestamp,
    /// When `Offline` last changed.
    pub offline_since: Timestamp,
    /// The member's zones and region.
    pub topology: Topology,
}

impl ClusterStatus {
    /// The member's state.
    pub fn state(&self) -> ClusterState {
        self.reason.state()
    }

    /// The status after `event`, given the one before (if any), at `now`. A
    /// failed probe changes the state only once `failure_threshold` probes
    /// in a row have failed (or at once when there is no state to keep).
    pub fn next(
        previous: Option<&ClusterStatus>,
        event: &ClusterEvent,
        failure_threshold: u32,
        now: Timestamp,
    ) -> ClusterStatus {
        let probe = match event {
            ClusterEvent::Topology(topology) => {
                return match previous {
                    Some(p) => ClusterStatus {
                        topology: topology.clone(),
                        ..p.clone()
                    },
                    // Nodes seen before the first probe: nothing is known of
                    // the connection yet but that it lists nodes.
                    None => ClusterStatus {
                        reason: Reason::ClusterNotReady,
                        message: "not probed yet".into(),
                        failures: 0,
                        last_failure: None,
                        last_probe: None,
                        ready_since: now,
                        offline_since: now,
                        topology: topology.clone(),
                    },
                };
            }
            ClusterEvent::Probed(probe) => probe,
        };
        let (reason, message) = match probe {
            Probe::Healthy => (
                Reason::ClusterReady,
                "the member's API server is reachable and healthy".to_owned(),
            ),
            Probe::Unhealthy { message } => (Reason::ClusterNotReady, message.clone()),
            Probe::Unreachable { message } => (Reason::ClusterNotReachable, message.clone()),
            Probe::Unauthorized { message } => (Reason::ClusterUnauthorized, message.clone()),
            Probe::ConfigInvalid { message } => (Reason::ClusterConfigInvalid, message.clone()),
        };
        let failures = match probe {
            Probe::Healthy => 0,
            _ => previous.map_or(0, |p| p.failures).saturating_add(1),
        };
        // A failure below the threshold keeps the state the member was in.
        let holds = match (previous, probe) {
            (
                Some(p),
                Probe::Unhealthy { .. } | Probe::Unreachable { .. } | Probe::Unauthorized { .. },
            ) => {
                failures < failure_threshold.max(1)
                    && p.last_probe.is_some()
                    && p.reason != Reason::ClusterConfigInvalid
            }
            _ => false,
        };
        let last_failure = (*probe != Probe::Healthy).then(|| message.clone());
        let (reason, message) = match previous {
            Some(p) if holds => (p.reason, p.message.clone()),
            _ => (reason, message),
        };
        let state = reason.state();
        let since = |was: Option<bool>, is: bool, at: Option<Timestamp>| match (was, at) {
            (Some(was), Some(at)) if was == is => at,
            _ => now,
        };
        ClusterStatus {
            reason,
            message,
            failures,
            last_failure,
            last_probe: Some(now),
            ready_since: since(
                previous.map(|p| p.state() == ClusterState::Ready),
                state == ClusterState::Ready,
                previous.map(|p| p.ready_since),
            ),
            offline_since: since(
                previous.map(|p| p.state() == ClusterState::Offline),
                state == ClusterState::Offline,
                previous.map(|p| p.offline_since),
            ),
            topology: previous.map(|p| p.topology.clone()).unwrap_or_default(),
        }
    }

    /// Whether `self` says more than `other` beyond the time of the last
    /// probe, so that the controller writes the status when something changed
    /// rather than after every probe.
    pub fn differs_beyond_probe_time(&self, other: &ClusterStatus) -> bool {
        ClusterStatus {
            last_probe: other.last_probe,
            ..self.clone()
        } != *other
    }

    /// The `status` object written to the Cluster.
    pub fn to_json(&self) -> serde_json::Value {
        let time = |t: &Timestamp| {
            t.round(k8s_openapi::jiff::Unit::Second)
                .map_or_else(|_| t.to_string(), |t| t.to_string())
        };
        let state = self.state();
        let condition = |kind: &str, status: bool, since: &Timestamp| {
            json!({
                "type": kind,
                "status": if status { "True" } else { "False" },
                "reason": self.reason.as_str(),
                "message": self.message,
                "lastProbeTime": self.last_probe.as_ref().map(time),
                "lastTransitionTime": time(since),
            })
        };
        json!({
            "conditions": [
                condition("Ready", state == ClusterState::Ready, &self.ready_since),
                condition("Offline", state == ClusterState::Offline, &self.offline_since),
            ],
            "consecutiveFailures": self.failures,
            "lastProbeError": self.last_failure,
            "zones": self.topology.zones,
            "region": self.topology.region,
        })
    }
}
