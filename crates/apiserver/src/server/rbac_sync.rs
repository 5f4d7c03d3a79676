//! Keeps the RBAC index in step with the stored RBAC objects, and stores the
//! default ClusterRoles and bindings on first start.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::auth::rbac::RbacIndex;
use crate::http::guard::Guard;
use crate::objects::{ApiError, ListOptions, Objects, WriteOptions};

const RBAC: &str = "rbac.authorization.k8s.io";
const KINDS: &[&str] = &[
    "clusterroles",
    "clusterrolebindings",
    "roles",
    "rolebindings",
];

/// Stores the bootstrap policy objects that are missing.
pub(super) async fn bootstrap(objects: &Objects) -> Result<(), ApiError> {
    let docs = crate::auth::rbac::bootstrap::objects_json()
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let opts = WriteOptions {
        field_manager: Some("kube-apiserver".into()),
        ..WriteOptions::default()
    };
    for doc in docs {
        let plural = match doc["kind"].as_str() {
            Some("ClusterRole") => "clusterroles",
            Some("ClusterRoleBinding") => "clusterrolebindings",
            _ => continue,
        };
        let Some(r) = objects.registry().resolve(RBAC, "v1", plural) else {
            continue;
        };
        match objects.create(&r, None, doc, &opts).await {
            Ok(_) | Err(ApiError::AlreadyExists(_)) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Builds the index from what is stored, and writes the aggregated rules of
/// aggregating ClusterRoles.
pub(super) async fn rebuild(objects: &Objects, guard: &Guard) -> Result<(), ApiError> {
    let mut index = RbacIndex::new();
    for plural in KINDS {
        let Some(r) = objects.registry().resolve(RBAC, "v1", plural) else {
            continue;
        };
        let list = objects.list(&r, None, &ListOptions::default()).await?;
        for item in list["items"].as_array().into_iter().flatten() {
            // List items carry no kind; the index reads it from the object.
            let mut item = item.clone();
            item["kind"] = serde_json::json!(r.kind);
            if let Err(e) = index.apply_json(&item) {
                tracing::warn!(error = %e, "stored RBAC object ignored");
            }
        }
    }
    let updates = index.aggregation_updates();
    *guard.rbac.write().unwrap_or_else(|e| e.into_inner()) = index;
    if let Some(r) = objects.registry().resolve(RBAC, "v1", "clusterroles") {
        let opts = WriteOptions {
            field_manager: Some("clusterrole-aggregation-controller".into()),
            ..WriteOptions::default()
        };
        for role in updates {
            let Ok(v) = serde_json::to_value(&role) else {
                continue;
            };
            let name = role.metadata.name.clone().unwrap_or_default();
            if let Err(e) = objects.update(&r, None, &name, v, &opts, None).await {
                tracing::debug!(error = %e, "aggregated ClusterRole update lost a race");
            }
        }
    }
    Ok(())
}

/// Rebuilds the index on every RBAC change until shutdown.
pub(super) async fn follow(
    objects: Objects,
    guard: Arc<Guard>,
    mut shutdown: watch::Receiver<bool>,
) {
    let prefix = format!("/registry/{RBAC}/");
    loop {
        let from = objects.store().current_revision().await.unwrap_or(0);
        if let Err(e) = rebuild(&objects, &guard).await {
            tracing::warn!(error = %e, "cannot rebuild the RBAC index");
        }
        let Ok(mut changes) = objects.store().watch(&prefix, from).await else {
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        };
        tokio::select! {
            () = super::stopped(&mut shutdown) => return,
            change = changes.next() => {
                if change.is_none() {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }
}
