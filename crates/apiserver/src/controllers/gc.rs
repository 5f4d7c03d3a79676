//! Garbage collection through ownerReferences: a snapshot of every object goes
//! into `cluster::gc::plan`, and its actions are carried out here.

use std::collections::BTreeSet;

use futures::future::BoxFuture;
use serde_json::{Value, json};

use crate::cluster::gc::{self, GcAction, GcNode, ObjectId};
use crate::objects::{ApiError, DeleteOptions, ListOptions, Objects, WriteOptions, meta};

const MANAGER: &str = "generic-garbage-collector";

pub(super) fn reconcile(objects: &Objects) -> BoxFuture<'_, Result<(), ApiError>> {
    Box::pin(collect(objects))
}

async fn snapshot(objects: &Objects) -> Result<Vec<GcNode>, ApiError> {
    let mut seen = BTreeSet::new();
    let mut nodes = Vec::new();
    for r in objects.registry().all() {
        if !r.verbs.allows("list") || !seen.insert(r.key_prefix()) {
            continue;
        }
        let list = objects.list(&r, None, &ListOptions::default()).await?;
        for item in list["items"].as_array().into_iter().flatten() {
            if let Some(n) = GcNode::from_json(item) {
                nodes.push(n);
            }
        }
    }
    Ok(nodes)
}

async fn collect(objects: &Objects) -> Result<(), ApiError> {
    let nodes = snapshot(objects).await?;
    // Nothing to do unless something has owners or waits on GC finalizers.
    let relevant = nodes.iter().any(|n| {
        !n.owner_references.is_empty()
            || (n.deleting
                && n.finalizers
                    .iter()
                    .any(|f| f == gc::FINALIZER_ORPHAN || f == gc::FINALIZER_FOREGROUND))
    });
    if !relevant {
        return Ok(());
    }
    for action in gc::plan(&nodes) {
        if let Err(e) = act(objects, action).await {
            tracing::debug!(error = %e, "garbage collection step failed; retrying on the next pass");
        }
    }
    Ok(())
}

async fn act(objects: &Objects, action: GcAction) -> Result<(), ApiError> {
    match action {
        GcAction::Delete {
            target,
            propagation,
        } => {
            let Some(r) = objects
                .registry()
                .by_kind(&target.api_version, &target.kind)
            else {
                return Ok(());
            };
            let opts = DeleteOptions {
                propagation: Some(propagation),
                precondition_uid: Some(target.uid.clone()),
                ..DeleteOptions::default()
            };
            match objects
                .delete(&r, target.namespace.as_deref(), &target.name, &opts)
                .await
            {
                Ok(_) | Err(ApiError::NotFound(_)) => Ok(()),
                Err(e) => Err(e),
            }
        }
        GcAction::RemoveOwnerReferences { target, owner_uids } => {
            edit(objects, &target, |obj| {
                let Some(refs) = obj["metadata"]["ownerReferences"].as_array_mut() else {
                    return;
                };
                refs.retain(|r| {
                    !owner_uids
                        .iter()
                        .any(|u| r["uid"].as_str() == Some(u.as_str()))
                });
                if refs.is_empty()
                    && let Some(m) = meta::meta_mut(obj)
                {
                    m.remove("ownerReferences");
                }
            })
            .await
        }
        GcAction::UnblockOwnerReferences { target } => {
            edit(objects, &target, |obj| {
                for r in obj["metadata"]["ownerReferences"]
                    .as_array_mut()
                    .into_iter()
                    .flatten()
                {
                    r["blockOwnerDeletion"] = json!(false);
                }
            })
            .await
        }
        GcAction::RemoveFinalizer { target, finalizer } => {
            edit(objects, &target, |obj| {
                if let Some(f) = obj["metadata"]["finalizers"].as_array_mut() {
                    f.retain(|x| x.as_str() != Some(finalizer.as_str()));
                }
            })
            .await
        }
    }
}

/// Reads the object, changes it, and writes it back conditionally on what was
/// read (a concurrent change makes the next pass redo it).
async fn edit(
    objects: &Objects,
    target: &ObjectId,
    change: impl Fn(&mut Value),
) -> Result<(), ApiError> {
    let Some(r) = objects
        .registry()
        .by_kind(&target.api_version, &target.kind)
    else {
        return Ok(());
    };
    let ns = target.namespace.as_deref();
    let mut obj = match objects.get(&r, ns, &target.name).await {
        Ok(o) => o,
        Err(ApiError::NotFound(_)) => return Ok(()),
        Err(e) => return Err(e),
    };
    if meta::meta_str(&obj, "uid") != Some(target.uid.as_str()) {
        return Ok(());
    }
    change(&mut obj);
    let opts = WriteOptions {
        field_manager: Some(MANAGER.to_owned()),
        ..WriteOptions::default()
    };
    match objects.update(&r, ns, &target.name, obj, &opts, None).await {
        Ok(_) | Err(ApiError::NotFound(_)) | Err(ApiError::Conflict { .. }) => Ok(()),
        Err(e) => Err(e),
    }
}
