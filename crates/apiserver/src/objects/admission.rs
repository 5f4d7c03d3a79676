//! What the server checks and fills in on every write, per resource, and what it
//! does after a write (serving a CRD's resources, removing a deleted CRD's objects).

use std::sync::Arc;

use serde_json::{Value, json};

use super::{ApiError, Cause, FieldValidation, Objects, Subject, WriteOptions, meta};
use k8s_openapi::api::core::v1::Service;

use crate::registry::{ResourceInfo, Subresource};
use crate::schema::{BuiltinKind, FieldError, Schema};
use crate::validation;

fn is(r: &ResourceInfo, group: &str, plural: &str) -> bool {
    r.group == group && r.plural == plural
}

/// The built-in kind a resource serves, if it is one the validation module knows.
pub(super) fn builtin_kind(r: &ResourceInfo) -> Option<BuiltinKind> {
    if r.crd.is_some() {
        return None;
    }
    BuiltinKind::from_gvk(&r.group, &r.version, &r.kind)
}

/// The structural schema of a resource's objects: the CRD version's, or the
/// built-in kind's. Also the merge information of patches.
pub(super) fn schema_of(r: &ResourceInfo) -> Option<Arc<Schema>> {
    match &r.crd {
        Some(crd) => crd.structural.clone(),
        None => builtin_kind(r).map(BuiltinKind::schema),
    }
}

fn field_errors(r: &ResourceInfo, name: &str, errs: &[FieldError]) -> ApiError {
    ApiError::Invalid {
        subject: Subject::of(r, name),
        causes: errs.iter().map(Cause::from_field_error).collect(),
    }
}

/// Validates and defaults `obj` (`old` is the stored object on update): unknown
/// fields per `fieldValidation`, defaults, then the kind's or the CRD schema's
/// validation. Returns warnings for the client.
pub(super) fn admit(
    objects: &Objects,
    r: &ResourceInfo,
    obj: &mut Value,
    old: Option<&Value>,
    opts: &WriteOptions,
) -> Result<Vec<String>, ApiError> {
    let name = meta::meta_str(obj, "name").unwrap_or("").to_owned();
    let mut warnings = Vec::new();
    if let Some(schema) = schema_of(r) {
        let unknown = crate::schema::prune(obj, &schema);
        let described: Vec<String> = unknown
            .iter()
            .map(|u| format!("unknown field \"{u}\""))
            .collect();
        match opts.field_validation {
            FieldValidation::Strict if !described.is_empty() => {
                return Err(ApiError::BadRequest(format!(
                    "strict decoding error: {}",
                    described.join(", ")
                )));
            }
            FieldValidation::Warn => warnings.extend(described),
            _ => {}
        }
    }
    match (builtin_kind(r), &r.crd) {
        (Some(kind), _) => {
            match old {
                Some(old) => validation::prepare_update(kind, obj, old),
                None => validation::prepare_create(kind, obj),
            }
            validation::default(kind, obj);
            let errs = validation::validate(kind, obj, old);
            if !errs.is_empty() {
                return Err(field_errors(r, &name, &errs));
            }
        }
        (None, Some(crd)) => {
            // As kube-apiserver: with a status subresource, a create cannot set
            // status; only `/status` can.
            if old.is_none()
                && r.has_subresource(Subresource::Status)
                && let Some(m) = obj.as_object_mut()
            {
                m.remove("status");
            }
            let permissive;
            let schema = match &crd.structural {
                Some(s) => {
                    crate::schema::default(obj, s);
                    s.as_ref()
                }
                None => {
                    permissive = Schema::default();
                    &permissive
                }
            };
            let errs = validation::validate_custom_resource(obj, old, schema, r.namespaced);
            if !errs.is_empty() {
                return Err(field_errors(r, &name, &errs));
            }
        }
        (None, None) if old.is_none() => {
            let rule = meta::NameRule::for_resource(&r.group, &r.plural);
            let causes = meta::name_causes(&name, rule, "metadata.name");
            if !causes.is_empty() {
                return Err(ApiError::Invalid {
                    subject: Subject::of(r, &name),
                    causes,
                });
            }
        }
        (None, None) => {}
    }
    if is(r, "", "services") && !opts.dry_run {
        allocate_service(objects, r, &name, obj, old)?;
    } else if is(r, "", "namespaces") {
        if old.is_none() {
            obj["status"] = json!({"phase": "Active"});
        }
    } else if is(r, "apiextensions.k8s.io", "customresourcedefinitions") {
        admit_crd(objects, obj, old).map_err(|c| ApiError::Invalid {
            subject: Subject::of(r, &name),
            causes: vec![c],
        })?;
    }
    Ok(warnings)
}

fn allocate_service(
    objects: &Objects,
    r: &ResourceInfo,
    name: &str,
    obj: &mut Value,
    old: Option<&Value>,
) -> Result<(), ApiError> {
    let decode = |v: &Value| serde_json::from_value::<Service>(v.clone());
    let mut svc = decode(obj).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let mut rng = rand::rng();
    let mut alloc = objects.service_allocator();
    let result = match old.map(decode) {
        None => alloc.allocate_service(&mut svc, &mut rng),
        Some(Ok(old)) => alloc.update_service(&old, &mut svc, &mut rng),
        Some(Err(e)) => return Err(ApiError::Internal(e.to_string())),
    };
    drop(alloc);
    if let Err(e) = result {
        if !e.is_invalid() {
            return Err(ApiError::Internal(e.to_string()));
        }
        let field = e.field().unwrap_or("spec.clusterIPs").to_owned();
        let text = e.to_string();
        let message = text
            .strip_prefix(&format!("{field}: "))
            .unwrap_or(&text)
            .to_owned();
        return Err(ApiError::Invalid {
            subject: Subject::of(r, name),
            causes: vec![Cause {
                reason: "FieldValueInvalid".into(),
                message,
                field,
            }],
        });
    }
    let allocated = serde_json::to_value(&svc).map_err(|e| ApiError::Internal(e.to_string()))?;
    if let Some(spec) = allocated.get("spec") {
        obj["spec"] = spec.clone();
    }
    Ok(())
}

/// Gives back what a create that was not stored took (a Service's addresses).
pub(super) fn undo_create(objects: &Objects, r: &ResourceInfo, obj: &Value) {
    if is(r, "", "services")
        && let Ok(svc) = serde_json::from_value::<Service>(obj.clone())
    {
        objects.service_allocator().release_service(&svc);
    }
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
    if is(r, "", "services") {
        undo_create(objects, r, obj);
        return;
    }
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
