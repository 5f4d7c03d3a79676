//! What the server checks and fills in on every write, per resource, and what it
//! does after a write (serving a CRD's resources, removing a deleted CRD's objects).

use serde_json::{Value, json};

use super::{ApiError, Cause, Objects, Subject, WriteOptions, meta};
use crate::registry::ResourceInfo;

fn is(r: &ResourceInfo, group: &str, plural: &str) -> bool {
    r.group == group && r.plural == plural
}

/// Validates and defaults `obj` (`old` is the stored object on update). Returns
/// warnings for the client.
pub(super) fn admit(
    objects: &Objects,
    r: &ResourceInfo,
    obj: &mut Value,
    old: Option<&Value>,
    _opts: &WriteOptions,
) -> Result<Vec<String>, ApiError> {
    let name = meta::meta_str(obj, "name").unwrap_or("").to_owned();
    let invalid = |causes: Vec<Cause>| ApiError::Invalid {
        subject: Subject::of(r, &name),
        causes,
    };
    if old.is_none() {
        let rule = meta::NameRule::for_resource(&r.group, &r.plural);
        let causes = meta::name_causes(&name, rule, "metadata.name");
        if !causes.is_empty() {
            return Err(invalid(causes));
        }
    }
    if is(r, "", "namespaces") {
        if old.is_none() {
            obj["spec"]["finalizers"]
                .as_array()
                .is_none()
                .then(|| obj["spec"] = json!({"finalizers": ["kubernetes"]}));
            obj["status"] = json!({"phase": "Active"});
        }
    } else if is(r, "apiextensions.k8s.io", "customresourcedefinitions") {
        admit_crd(objects, obj, old).map_err(|c| invalid(vec![c]))?;
    }
    Ok(Vec::new())
}

fn admit_crd(objects: &Objects, obj: &mut Value, old: Option<&Value>) -> Result<(), Cause> {
    let probe = crate::registry::Registry::with_builtins();
    let infos = probe
        .apply_crd(obj)
        .map_err(|e| Cause::invalid("spec", &json!(""), &e.to_string()))?;
    let name = meta::meta_str(obj, "name").unwrap_or("");
    for info in &infos {
        if objects
            .registry()
            .conflicts_with(name, &info.group, &info.plural)
        {
            return Err(Cause::invalid(
                "spec.names.plural",
                &json!(info.plural),
                "already served by another resource",
            ));
        }
    }
    if infos.is_empty() {
        return Err(Cause::invalid(
            "spec.versions",
            &json!(""),
            "must have exactly one version marked as storage version and at least one served version",
        ));
    }
    let established_at = old
        .and_then(|o| o["status"]["conditions"].get(0))
        .and_then(|c| c["lastTransitionTime"].as_str())
        .map(str::to_owned)
        .unwrap_or_else(meta::now);
    obj["status"] = crate::registry::crd_status(obj, &established_at);
    Ok(())
}

/// Effects of a stored create or update.
pub(super) async fn after_write(objects: &Objects, r: &ResourceInfo, obj: &Value) {
    if is(r, "apiextensions.k8s.io", "customresourcedefinitions")
        && let Err(e) = objects.registry().apply_crd(obj)
    {
        tracing::warn!(error = %e, "stored CRD cannot be served");
    }
}

/// Effects of a stored delete.
pub(super) async fn after_delete(objects: &Objects, r: &ResourceInfo, obj: &Value) {
    if !is(r, "apiextensions.k8s.io", "customresourcedefinitions") {
        return;
    }
    let Some(name) = meta::meta_str(obj, "name") else {
        return;
    };
    let group = obj["spec"]["group"].as_str().unwrap_or("");
    let plural = obj["spec"]["names"]["plural"].as_str().unwrap_or("");
    objects.registry().remove_crd(name);
    if group.is_empty() || plural.is_empty() {
        return;
    }
    let prefix = format!("/registry/{group}/{plural}/");
    let store = objects.store();
    match store.list(&prefix, None).await {
        Ok((items, _)) => {
            for (key, stored) in items {
                if let Err(e) = store.delete(&key, stored.mod_revision).await {
                    tracing::debug!(%key, error = %e, "custom object changed while its CRD was deleted");
                }
            }
        }
        Err(e) => tracing::warn!(error = %e, "cannot list objects of a deleted CRD"),
    }
}
