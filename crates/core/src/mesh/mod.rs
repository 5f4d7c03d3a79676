//! Federated services with Calico's semantics (seed 000): a local Service
//! with the `federation.tigera.io/serviceSelector` annotation gets the
//! endpoints of every Service in its namespace, in every cluster, that the
//! selector matches.

mod changes;
mod index;
mod labels;
mod render;
mod view;

#[cfg(test)]
mod tests;

pub use changes::{Changes, Dirty, Warning};
pub use index::MeshIndex;
pub use render::{
    ENDPOINTS_MANAGED_BY_LABEL, MANAGED_BY, MANAGED_BY_LABEL, MAX_ENDPOINTS_ADDRESSES,
    MAX_SLICE_ENDPOINTS, OVER_CAPACITY_ANNOTATION, SKIP_MIRROR_LABEL, SOURCE_ANNOTATION,
};
pub use view::FederatedView;
