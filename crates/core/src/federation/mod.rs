//! The federation control plane (Kubernetes Federation v1, seeds 002/003):
//! member clusters, propagation of federated objects to them, and the health
//! of the shards that result.
//!
//! ```text
//!  Cluster objects ── ClusterSpec::from_object ─┐
//!  probes, Nodes ─── ClusterStatus::next ───────┼─▶ member state, zones, region
//!                                               │
//!  federated Service ─ Federated::read ─┐       │
//!  member's copy ──────────────────────┼─ plan ─┴─▶ Create / Adopt / Update /
//!                                      │            Delete / Orphan / nothing
//!  member Services, EndpointSlices ── ShardIndex ──▶ ServiceShards: status
//!                                                    ingress, annotation, DNS
//! ```
//!
//! Everything here is pure: the controller owns connections and writers and
//! asks these functions what to write.

mod cluster;
mod health;
mod marks;
mod propagate;
mod selector;
mod service;
mod shards;
mod topology;

#[cfg(test)]
mod tests;

pub use cluster::{API_VERSION, ClusterSpec, ClusterSpecError, GROUP, KIND, PLURAL, VERSION};
pub use health::{
    ClusterEvent, ClusterState, ClusterStatus, DEFAULT_FAILURE_THRESHOLD, Probe, Reason,
};
pub use marks::{
    FEDERATED_NAMESPACE_LABEL, FEDERATION_LABEL, FINALIZER, FederationName, FederationNameError,
    ORIGIN_ANNOTATION, ORPHAN_FINALIZER, OWN_ANNOTATION_PREFIX, Origin, Scope,
};
pub use propagate::{
    Action, Federated, Lifecycle, Member, Plan, Propagated, Why, desired, is_federated,
    member_namespace, plan,
};
pub use selector::{
    CLUSTER_SELECTOR_ANNOTATION, ClusterSelector, ClusterSelectorError, Requirement,
};
pub use shards::{
    Addresses, ERRORS_ANNOTATION, Health, SHARDS_ANNOTATION, ServiceShards, Shard, ShardIndex,
    ShardsAnnotationError, ready_endpoints,
};
pub use topology::{
    LEGACY_REGION_LABEL, LEGACY_ZONE_LABEL, NodeTopology, REGION_LABEL, Topology, ZONE_LABEL,
    node_region, node_zone,
};
