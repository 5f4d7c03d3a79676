//! What kube-controller-manager would do, as pure synchronous logic: the
//! spine's controller tasks feed it objects and write what it returns.
//!
//! - [`endpoints`] and [`endpointslice`]: Endpoints and EndpointSlices of
//!   Services with a selector, from their pods (and nodes, for zones);
//!   [`mirroring`]: EndpointSlices mirrored from user-written Endpoints of
//!   Services without a selector; [`kubernetes_service`]: the `default/kubernetes`
//!   Service, Endpoints and EndpointSlice kube-apiserver maintains.
//! - [`gc`]: garbage collection of dependents through ownerReferences
//!   (background, foreground, orphan), as a state machine.
//! - Namespace lifecycle (the `default` ServiceAccount, deleting a terminating
//!   namespace's contents) is `crate::controllers::namespaces`'.
//! - [`alloc`]: clusterIP and nodePort allocators.
//! - [`pod_deletion`]: graceful deletion of pods.
//! - [`simulation`]: the simulated data plane (nodes, scheduling, pod IPs and
//!   the status a kubelet reports), as kwok simulates it.
//! - [`workloads`]: Deployments' ReplicaSets and rollouts, ReplicaSets' pods.
//! - [`sets`]: StatefulSets' ordered pods and DaemonSets' pod per node.
//!
//! Everything here is synchronous and pure: objects (k8s-openapi values or
//! JSON) and the current time go in, the writes a controller should make
//! come out as [`Write`]s or plans, computed against the stored objects so
//! that a sync that changes nothing writes nothing. A controller task
//! re-runs a sync for a key whenever one of its inputs changes
//! ([`endpoints::services_for_pod`] is the rule that maps a pod change to
//! Service keys; [`gc::plan_node`] plans for one object from its owners and
//! dependents alone).

pub mod alloc;
pub mod endpoints;
pub mod endpointslice;
pub mod gc;
pub mod gohash;
pub mod kubernetes_service;
pub mod mirroring;
pub mod pod_deletion;
pub mod pods;
pub mod repack;
pub mod sets;
pub mod simulation;
pub mod workloads;
pub mod write;

#[cfg(test)]
mod tests;

pub use write::{ObjectKey, Write};
