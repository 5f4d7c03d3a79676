//! fedmesh's federation semantics as pure, deterministic code.
//!
//! Events go in (objects upserted or deleted in a named cluster); the desired
//! objects come out. Nothing here does I/O or needs an async runtime, so every
//! rule is tested by applying events directly.
//!
//! ```text
//!  controller (watches) ──events──▶ FederationIndex ──Changes──▶ controller (writers)
//!                                        │
//!                                        └─ FederatedView: desired EndpointSlices + Endpoints
//! ```

pub mod federation;
pub mod names;
pub mod remote;
pub mod service;
pub mod slice;

pub use federation::{Changes, FederatedView, FederationIndex};
pub use names::{ClusterName, FederatedKey, Origin, ServiceKey, SliceKey};
pub use service::{REMOTE_CLUSTER_LABEL, Role, SERVICE_SELECTOR_ANNOTATION, ServiceView};
pub use slice::{SERVICE_NAME_LABEL, SourceSlice};
