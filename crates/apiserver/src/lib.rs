//! An embedded Kubernetes-compatible API server (see `docs/architecture.md` and
//! `docs/apiserver.md`).
//!
//! ```text
//!   server (listeners, TLS, shutdown)
//!     └─ http (routes, requests -> verbs, Status errors, watch streams)
//!          ├─ registry (what a resource is, discovery documents)
//!          └─ objects (verb semantics) ── storage (revisioned KV)
//!   controllers (namespaces, endpoints, GC) ── objects
//! ```

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
