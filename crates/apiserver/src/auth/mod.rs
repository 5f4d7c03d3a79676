//! The security layer: TLS material, kubeconfigs, authentication, RBAC authorization,
//! impersonation and access reviews, as synchronous logic the HTTP layer calls.

pub mod authn;
pub mod certs;
mod files;
pub mod kubeconfig;
pub mod rbac;
pub mod sa_token;
pub mod user;
