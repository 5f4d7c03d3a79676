//! `metadata` validation (apimachinery's `ValidateObjectMeta` and its update rules).

use serde_json::Value;

use super::names::{NameRule, label_value, qualified_name};
use crate::schema::{FieldError, FieldPath};

/// Total size limit of all annotations (keys plus values).
pub const TOTAL_ANNOTATION_SIZE_LIMIT: usize = 256 * 1024;

/// Finalizers every kind accepts without a domain prefix.
const STANDARD_FINALIZERS: [&str; 3] = ["kubernetes", "orphan", "foregroundDeletion"];

pub(crate) fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    at(v, path).and_then(Value::as_str)
}

/// Checks the optional string field `field` of `obj` with `check`, adding one
/// `Invalid` error under `path.field` per message.
pub(crate) fn check_field(
    errs: &mut Vec<FieldError>,
    obj: &Value,
    path: &FieldPath,
    field: &str,
    check: fn(&str) -> Vec<String>,
) {
    if let Some(value) = str_at(obj, &[field]) {
        for message in check(value) {
            errs.push(FieldError::invalid(path.child(field), value, message));
        }
    }
}

pub(crate) fn at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(v, |v, k| v.get(k))
}

/// Validates `metadata` of a new object: name (or generateName), namespace presence
/// per scope, labels, annotations, finalizers, owner references.
pub fn validate_object_meta(obj: &Value, namespaced: bool, rule: NameRule) -> Vec<FieldError> {
    let path = FieldPath::new("metadata");
    let mut errs = Vec::new();
    let meta = obj.get("metadata").unwrap_or(&Value::Null);
    let name = str_at(meta, &["name"]).unwrap_or("");
    let generate_name = str_at(meta, &["generateName"]).unwrap_or("");
    if !generate_name.is_empty() {
        for m in rule.check(generate_name, true) {
            errs.push(FieldError::invalid(
                path.child("generateName"),
                generate_name,
                m,
            ));
        }
    }
    if name.is_empty() {
        errs.push(FieldError::required(
            path.child("name"),
            "name or generateName is required",
        ));
    } else {
        for m in rule.check(name, false) {
            errs.push(FieldError::invalid(path.child("name"), name, m));
        }
    }
    let namespace = str_at(meta, &["namespace"]).unwrap_or("");
    if namespaced {
        if namespace.is_empty() {
            errs.push(FieldError::required(path.child("namespace"), ""));
        } else {
            for m in NameRule::Dns1123Label.check(namespace, false) {
                errs.push(FieldError::invalid(path.child("namespace"), namespace, m));
            }
        }
    } else if !namespace.is_empty() {
        errs.push(FieldError::forbidden(
            path.child("namespace"),
            "not allowed on this type",
        ));
    }
    errs.extend(validate_labels(meta.get("labels"), &path.child("labels")));
    errs.extend(validate_annotations(
        meta.get("annotations"),
        &path.child("annotations"),
    ));
    if let Some(Value::Array(finalizers)) = meta.get("finalizers") {
        let fp = path.child("finalizers");
        for f in finalizers.iter().filter_map(Value::as_str) {
            let msgs = qualified_name(f);
            if !msgs.is_empty() {
                errs.extend(
                    msgs.into_iter()
                        .map(|m| FieldError::invalid(fp.clone(), f, m)),
                );
            } else if !f.contains('/') && !STANDARD_FINALIZERS.contains(&f) {
                errs.push(FieldError::invalid(
                    fp.clone(),
                    f,
                    "name is neither a standard finalizer name nor is it fully qualified",
                ));
            }
        }
    }
    if let Some(Value::Array(owners)) = meta.get("ownerReferences") {
        let op = path.child("ownerReferences");
        let mut controllers = 0;
        for o in owners {
            for (key, what) in [
                ("apiVersion", "version"),
                ("kind", "kind"),
                ("name", "name"),
                ("uid", "uid"),
            ] {
                if str_at(o, &[key]).unwrap_or("").is_empty() {
                    errs.push(FieldError::invalid(
                        op.child(key),
                        "",
                        format!("{what} must not be empty"),
                    ));
                }
            }
            if o.get("controller").and_then(Value::as_bool) == Some(true) {
                controllers += 1;
            }
        }
        if controllers > 1 {
            errs.push(FieldError::invalid(
                op.clone(),
                Value::Array(owners.clone()),
                "Only one reference can have Controller set to true",
            ));
        }
    }
    errs
}

/// `ValidateLabels`: keys are qualified names, values label values.
pub fn validate_labels(labels: Option<&Value>, path: &FieldPath) -> Vec<FieldError> {
    let mut errs = Vec::new();
    match labels {
        None | Some(Value::Null) => {}
        Some(Value::Object(map)) => {
            for (k, v) in map {
                for m in qualified_name(k) {
                    errs.push(FieldError::invalid(path.clone(), k.as_str(), m));
                }
                match v.as_str() {
                    Some(s) => {
                        for m in label_value(s) {
                            errs.push(FieldError::invalid(path.clone(), s, m));
                        }
                    }
                    None => errs.push(FieldError::invalid(
                        path.key(k),
                        v.clone(),
                        "must be a string",
                    )),
                }
            }
        }
        Some(other) => errs.push(FieldError::invalid(
            path.clone(),
            other.clone(),
            "must be a map of strings",
        )),
    }
    errs
}

/// `ValidateAnnotations`: keys are (lower-cased) qualified names, total size limited.
pub fn validate_annotations(annotations: Option<&Value>, path: &FieldPath) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let Some(Value::Object(map)) = annotations else {
        return errs;
    };
    let mut total = 0;
    for (k, v) in map {
        for m in qualified_name(&k.to_lowercase()) {
            errs.push(FieldError::invalid(path.clone(), k.as_str(), m));
        }
        total += k.len() + v.as_str().map_or(0, str::len);
    }
    if total > TOTAL_ANNOTATION_SIZE_LIMIT {
        errs.push(FieldError::too_long(
            path.clone(),
            TOTAL_ANNOTATION_SIZE_LIMIT,
        ));
    }
    errs
}

/// Update rules of `metadata`: name, namespace and uid are immutable (the new
/// object's metadata must also be valid on its own). `creationTimestamp` is not
/// checked: kube-apiserver silently keeps the stored one, and so must the caller.
pub fn validate_object_meta_update(obj: &Value, old: &Value) -> Vec<FieldError> {
    let path = FieldPath::new("metadata");
    let mut errs = Vec::new();
    for key in ["name", "namespace", "uid"] {
        // Absent, null and "" all mean "not set": clients may omit server-set fields
        // on update and the server fills them in from the stored object.
        fn set<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
            at(v, &["metadata", key]).filter(|x| !x.is_null() && x.as_str() != Some(""))
        }
        let new = set(obj, key);
        let changed = match (new, set(old, key)) {
            (Some(n), Some(p)) => n != p,
            (None, _) => false,
            (Some(_), None) => key != "uid",
        };
        if changed {
            errs.push(FieldError::invalid(
                path.child(key),
                new.cloned().unwrap_or(Value::Null),
                "field is immutable",
            ));
        }
    }
    errs
}

/// `ValidateImmutableField`: `field is immutable` when `new` differs from `old`.
pub fn immutable(new: Option<&Value>, old: Option<&Value>, path: FieldPath) -> Option<FieldError> {
    let norm = |v: Option<&Value>| v.filter(|v| !v.is_null()).cloned();
    if norm(new) != norm(old) {
        Some(FieldError::invalid(
            path,
            norm(new).unwrap_or(Value::Null),
            "field is immutable",
        ))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn msgs(errs: Vec<FieldError>) -> Vec<String> {
        errs.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn name_rules() {
        let obj = json!({"metadata": {"namespace": "default"}});
        assert_eq!(
            msgs(validate_object_meta(&obj, true, NameRule::Dns1123Subdomain)),
            vec!["metadata.name: Required value: name or generateName is required"]
        );
        let obj = json!({"metadata": {"name": "ok", "namespace": "default"}});
        assert_eq!(
            msgs(validate_object_meta(
                &obj,
                false,
                NameRule::Dns1123Subdomain
            )),
            vec!["metadata.namespace: Forbidden: not allowed on this type"]
        );
        let obj = json!({"metadata": {"name": "ok"}});
        assert_eq!(
            msgs(validate_object_meta(&obj, true, NameRule::Dns1123Subdomain)),
            vec!["metadata.namespace: Required value"]
        );
    }

    #[test]
    fn labels_annotations_finalizers() {
        let obj = json!({"metadata": {"name": "a", "labels": {"bad key": "x", "ok": "bad value"},
            "annotations": {"a/b/c": "x"}, "finalizers": ["foo", "example.com/ok", "kubernetes"]}});
        let got = msgs(validate_object_meta(
            &obj,
            false,
            NameRule::Dns1123Subdomain,
        ));
        assert_eq!(got.len(), 4, "{got:?}");
        assert!(
            got[0].starts_with(
                "metadata.labels: Invalid value: \"bad key\": name part must consist of"
            )
        );
        assert!(got[1].starts_with(
            "metadata.labels: Invalid value: \"bad value\": a valid label must be an empty string"
        ));
        assert!(
            got[2].starts_with("metadata.annotations: Invalid value: \"a/b/c\": a qualified name")
        );
        assert_eq!(
            got[3],
            "metadata.finalizers: Invalid value: \"foo\": name is neither a standard finalizer name nor is it fully qualified"
        );
        let big = json!({"metadata": {"name": "a", "annotations": {"k": "x".repeat(TOTAL_ANNOTATION_SIZE_LIMIT)}}});
        assert_eq!(
            msgs(validate_object_meta(
                &big,
                false,
                NameRule::Dns1123Subdomain
            )),
            vec!["metadata.annotations: Too long: may not be more than 262144 bytes"]
        );
    }

    #[test]
    fn immutable_metadata() {
        let old = json!({"metadata": {"name": "a", "namespace": "n", "uid": "1"}});
        let new = json!({"metadata": {"name": "b", "namespace": "n", "uid": "2"}});
        assert_eq!(
            msgs(validate_object_meta_update(&new, &old)),
            vec![
                "metadata.name: Invalid value: \"b\": field is immutable",
                "metadata.uid: Invalid value: \"2\": field is immutable"
            ]
        );
        let same = json!({"metadata": {"name": "a", "namespace": "n"}});
        assert!(validate_object_meta_update(&same, &old).is_empty());
        let nulls = json!({"metadata": {"name": "a", "namespace": "n", "uid": null, "creationTimestamp": null}});
        assert!(validate_object_meta_update(&nulls, &old).is_empty());
    }
}
