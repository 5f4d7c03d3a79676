//! Federated endpoint identity (seeds 001 and 004): remote pods and host
//! endpoints take part in the rule selectors of local policy.
//!
//! ```text
//!  pods, HostEndpoints, namespaces, service accounts (every cluster)
//!        │ views (endpoint.rs)
//!        ▼
//!  IdentityIndex ──IdentityChanges──▶ mirror::rewrites ──▶ NetworkSets, GlobalNetworkSets,
//!        │                            mirror::desired + diff   CiliumCIDRGroups (controller)
//!        └──── select(EndpointQuery) ──▶ explain (policy explain), listing (endpoints)
//! ```
//!
//! The index gives every endpoint the labels Calico gives it, so a selector
//! matches a remote endpoint exactly where Calico Enterprise would; mirroring
//! makes that identity enforceable by a plain Calico or Cilium dataplane.

mod endpoint;
mod explain;
mod index;
mod listing;
mod mirror;
mod names;
mod policy;
mod query;

#[cfg(test)]
mod tests;

pub use endpoint::{
    EndpointError, EndpointKey, EndpointKind, EndpointView, NAMESPACE_LABEL,
    NAMESPACE_LABEL_PREFIX, NamespaceKey, ORCHESTRATOR_K8S, ORCHESTRATOR_LABEL, PROFILE_NAME_LABEL,
    ProfileKey, ProfileView, SERVICE_ACCOUNT_LABEL, SERVICE_ACCOUNT_LABEL_PREFIX,
    ServiceAccountKey,
};
pub use explain::{Explanation, PeerExplanation, RuleExplanation, Selection, explain};
pub use index::{Endpoint, IdentityChanges, IdentityIndex, ProfileKind};
pub use listing::{EndpointListing, EndpointSummary, ListedEndpoint};
pub use mirror::{
    CalicoApi, Desired, DesiredObject, Diff, ExistingObject, MANAGED_BY, MANAGED_BY_LABEL,
    MirrorConfig, MirrorError, ObjectKind, ObjectRef, Rewrite, SOURCE_ANNOTATION, Skipped, Write,
    desired, diff, outputs, rewrites,
};
pub use policy::{Direction, Peer, Policy, PolicyError, PolicyKind, PolicyRef, Rule, RuleId};
pub use query::{EndpointQuery, NamespaceScope, Reach, ServiceAccountMatch};
