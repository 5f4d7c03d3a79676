//! Writing what the `cluster` logic plans, through the object layer (so
//! that controller writes follow the same rules as clients').

use serde::Serialize;

use crate::cluster::Write;
use crate::objects::{ApiError, DeleteOptions, Objects, WriteOptions};
use crate::registry::ResourceInfo;

fn resource(
    objects: &Objects,
    group: &str,
    plural: &str,
) -> Result<std::sync::Arc<ResourceInfo>, ApiError> {
    objects
        .registry()
        .resolve(group, "v1", plural)
        .ok_or(ApiError::NoRoute)
}

/// Performs one planned write. Updates are conditional on the resourceVersion
/// the plan was made from.
pub(super) async fn apply<T: Serialize>(
    objects: &Objects,
    group: &str,
    plural: &str,
    w: Write<T>,
    manager: &str,
) -> Result<(), ApiError> {
    let r = resource(objects, group, plural)?;
    let opts = WriteOptions {
        field_manager: Some(manager.to_owned()),
        ..WriteOptions::default()
    };
    let encode = |o: &T| serde_json::to_value(o).map_err(|e| ApiError::Internal(e.to_string()));
    match w {
        Write::Create(o) => {
            let v = encode(&o)?;
            let ns = v["metadata"]["namespace"].as_str().map(str::to_owned);
            objects.create(&r, ns.as_deref(), v, &opts).await?;
        }
        Write::Update(o) => {
            let v = encode(&o)?;
            let ns = v["metadata"]["namespace"].as_str().map(str::to_owned);
            let name = v["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            objects
                .update(&r, ns.as_deref(), &name, v, &opts, None)
                .await?;
        }
        Write::Delete(key) => {
            let ns = (!key.namespace.is_empty()).then_some(key.namespace.as_str());
            match objects
                .delete(&r, ns, &key.name, &DeleteOptions::default())
                .await
            {
                Ok(_) | Err(ApiError::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(())
}
