//! Namespace lifecycle: a `default` ServiceAccount in every active namespace, and
//! a terminating namespace's contents deleted before the namespace goes.

use std::collections::BTreeSet;

use futures::future::BoxFuture;
use serde_json::{Value, json};

use crate::objects::{ApiError, DeleteOptions, ListOptions, Objects, WriteOptions, meta};
use crate::registry::{ResourceInfo, Subresource};

pub(super) fn reconcile(objects: &Objects) -> BoxFuture<'_, Result<(), ApiError>> {
    Box::pin(reconcile_all(objects))
}

async fn reconcile_all(objects: &Objects) -> Result<(), ApiError> {
    let registry = objects.registry();
    let (Some(ns_res), Some(sa_res)) = (
        registry.resolve("", "v1", "namespaces"),
        registry.resolve("", "v1", "serviceaccounts"),
    ) else {
        return Ok(());
    };
    let list = objects.list(&ns_res, None, &ListOptions::default()).await?;
    for ns in list["items"].as_array().into_iter().flatten() {
        let Some(name) = meta::meta_str(ns, "name") else {
            continue;
        };
        if meta::is_terminating(ns) {
            finalize(objects, &ns_res, ns, name).await?;
        } else {
            ensure_default_sa(objects, &sa_res, name).await?;
        }
    }
    Ok(())
}

async fn ensure_default_sa(objects: &Objects, sa: &ResourceInfo, ns: &str) -> Result<(), ApiError> {
    match objects.get(sa, Some(ns), "default").await {
        Ok(_) => return Ok(()),
        Err(ApiError::NotFound(_)) => {}
        Err(e) => return Err(e),
    }
    let body = json!({"metadata": {"name": "default", "namespace": ns}});
    match objects
        .create(sa, Some(ns), body, &WriteOptions::default())
        .await
    {
        // The namespace may have started terminating in between.
        Ok(_)
        | Err(ApiError::AlreadyExists(_) | ApiError::Forbidden(_) | ApiError::NotFound(_)) => {
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// Deletes what the namespace holds; once empty, drops the `kubernetes`
/// finalizer so the namespace itself is removed.
async fn finalize(
    objects: &Objects,
    ns_res: &ResourceInfo,
    ns: &Value,
    name: &str,
) -> Result<(), ApiError> {
    let mut seen = BTreeSet::new();
    let mut remaining = 0usize;
    for r in objects.registry().all() {
        if !r.namespaced || !r.verbs.allows("list") || !seen.insert(r.key_prefix()) {
            continue;
        }
        let items = objects
            .list(&r, Some(name), &ListOptions::default())
            .await?;
        for item in items["items"].as_array().into_iter().flatten() {
            remaining += 1;
            if meta::is_terminating(item) {
                continue;
            }
            let item_name = meta::meta_str(item, "name").unwrap_or("");
            match objects
                .delete(&r, Some(name), item_name, &DeleteOptions::default())
                .await
            {
                Ok(_) | Err(ApiError::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
    }
    if remaining > 0 {
        return Ok(());
    }
    let fins: Vec<Value> = ns["spec"]["finalizers"]
        .as_array()
        .map(|a| a.iter().filter(|f| *f != "kubernetes").cloned().collect())
        .unwrap_or_default();
    let body = json!({"metadata": {"name": name}, "spec": {"finalizers": fins}});
    match objects
        .update(
            ns_res,
            None,
            name,
            body,
            &WriteOptions::default(),
            Some(Subresource::Finalize),
        )
        .await
    {
        Ok(_) | Err(ApiError::NotFound(_)) => Ok(()),
        Err(e) => Err(e),
    }
}
