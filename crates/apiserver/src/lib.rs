//! An embedded Kubernetes-compatible API server (see `docs/architecture.md`).
pub mod auth;
