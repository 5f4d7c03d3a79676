//! fedmesh's semantics as pure, deterministic code: federated services
//! (`mesh`, Calico's semantics), federated endpoint identity (`identity`:
//! remote pods and hosts in local policy), the remote clusters behind them
//! (`remote`), and the Federation v1 control plane (`federation`: member
//! clusters, propagation, shard health) with its DNS records (`dns`).
//!
//! Events go in (objects upserted or deleted in a named cluster); the desired
//! objects come out. Nothing here does I/O or needs an async runtime, so every
//! rule is tested by applying events directly.
//!
//! ```text
//!  controller (watches) ──events──▶ MeshIndex ──Changes──▶ controller (writers)
//!                                        │
//!                                        └─ FederatedView: desired EndpointSlices + Endpoints
//! ```

pub mod conditions;
pub mod dns;
pub mod federation;
pub mod identity;
pub mod mesh;
pub mod names;
pub mod remote;
pub mod service;
pub mod slice;

pub use mesh::{Changes, FederatedView, MeshIndex};
pub use names::{ClusterName, FederatedKey, Origin, ServiceKey, SliceKey};
pub use service::{REMOTE_CLUSTER_LABEL, Role, SERVICE_SELECTOR_ANNOTATION, ServiceView};
pub use slice::{SERVICE_NAME_LABEL, SourceSlice};
