//! An embedded Kubernetes-compatible API server (see `docs/architecture.md` and
//! `docs/apiserver.md`).
//!
//! ```text
//!   server (listeners, TLS + client certificates, shutdown)
//!     └─ http (routes, requests -> verbs, Status errors, watch streams)
//!          ├─ auth (authentication, RBAC, reviews)
//!          ├─ registry (what a resource is, discovery, version conversion)
//!          ├─ proto (protobuf bodies), schema (OpenAPI), table (kubectl columns)
//!          └─ objects (verb semantics) ── store (revisioned KV)
//!               └─ validation, patch (merge, strategic, apply)
//!   controllers (namespaces, endpoints, GC) ── objects, cluster (pure logic)
//! ```
//!
//! `docs/architecture.md` ("crates/apiserver: module map") says what each holds.

pub mod auth;
pub mod cluster;
pub mod controllers;
pub mod http;
pub mod objects;
pub mod patch;
pub mod proto;
pub mod registry;
pub mod schema;
pub mod server;
pub mod store;
pub mod table;
pub mod validation;

pub use server::{ApiServer, ApiServerBuilder, RunningServer};
#[cfg(feature = "testing")]
pub mod testing;
