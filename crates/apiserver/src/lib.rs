//! An embedded Kubernetes-compatible API server (see `docs/architecture.md`).

pub mod patch;
pub mod schema;
pub mod validation;
