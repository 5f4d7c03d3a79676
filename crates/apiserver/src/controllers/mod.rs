//! What kube-controller-manager would run, as tasks inside the server. They use
//! the same object layer as HTTP clients, so every write follows the same rules.
//!
//! Each controller is level-triggered: a watch on the resources it reads wakes
//! it, and it reconciles everything it owns from a fresh read.

mod namespaces;
mod runner;

use serde_json::json;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::objects::{ApiError, Objects, WriteOptions};

/// The namespaces every cluster has.
pub const SYSTEM_NAMESPACES: &[&str] =
    &["default", "kube-system", "kube-public", "kube-node-lease"];

/// Creates what a new cluster has before anyone asks: the system namespaces.
pub async fn bootstrap(objects: &Objects) -> Result<(), ApiError> {
    let Some(ns) = objects.registry().resolve("", "v1", "namespaces") else {
        return Ok(());
    };
    for name in SYSTEM_NAMESPACES {
        let body = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}});
        match objects
            .create(&ns, None, body, &WriteOptions::default())
            .await
        {
            Ok(_) | Err(ApiError::AlreadyExists(_)) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Starts every controller; they stop when `shutdown` turns true.
pub fn spawn(objects: Objects, shutdown: watch::Receiver<bool>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let ns = tokio::spawn(runner::run(
            objects.clone(),
            shutdown.clone(),
            &[("", "namespaces"), ("", "serviceaccounts")],
            namespaces::reconcile,
        ));
        // Controllers end only on shutdown; a panic in one is logged.
        if let Err(e) = ns.await {
            tracing::error!(error = %e, "namespace controller stopped");
        }
    })
}
