//! RBAC: `ValidatePolicyRule`, role bindings' `roleRef` and subjects, and the
//! defaults of `SetDefaults_Subject` / roleRef's API group.

use serde_json::{Value, json};

use super::meta::{immutable, str_at};
use super::names::{dns1123_label, dns1123_subdomain, path_segment_name};
use crate::schema::{FieldError, FieldPath};

const RBAC_GROUP: &str = "rbac.authorization.k8s.io";

fn non_empty(v: &Value, key: &str) -> bool {
    v.get(key)
        .and_then(Value::as_array)
        .is_some_and(|a| !a.is_empty())
}

/// Rules of a Role (`namespaced`) or ClusterRole.
pub fn validate_role(obj: &Value, namespaced: bool) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let rules = obj
        .get("rules")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    for (i, rule) in rules.iter().enumerate() {
        let rp = FieldPath::new("rules").index(i);
        if !non_empty(rule, "verbs") {
            errs.push(FieldError::required(
                rp.child("verbs"),
                "verbs must contain at least one value",
            ));
        }
        if non_empty(rule, "nonResourceURLs") {
            let urls = rule.get("nonResourceURLs").cloned().unwrap_or(Value::Null);
            if namespaced {
                errs.push(FieldError::invalid(
                    rp.child("nonResourceURLs"),
                    urls.clone(),
                    "namespaced rules cannot apply to non-resource URLs",
                ));
            }
            if non_empty(rule, "apiGroups")
                || non_empty(rule, "resources")
                || non_empty(rule, "resourceNames")
            {
                errs.push(FieldError::invalid(
                    rp.child("nonResourceURLs"),
                    urls,
                    "rules cannot apply to both regular resources and non-resource URLs",
                ));
            }
            continue;
        }
        if !non_empty(rule, "apiGroups") {
            errs.push(FieldError::required(
                rp.child("apiGroups"),
                "resource rules must supply at least one api group",
            ));
        }
        if !non_empty(rule, "resources") {
            errs.push(FieldError::required(
                rp.child("resources"),
                "resource rules must supply at least one resource",
            ));
        }
    }
    errs
}

/// Defaults of RoleBinding and ClusterRoleBinding: roleRef and subjects' API groups.
pub fn default_binding(obj: &mut Value) {
    if let Some(r) = obj.get_mut("roleRef").and_then(Value::as_object_mut)
        && r.get("apiGroup")
            .and_then(Value::as_str)
            .unwrap_or("")
            .is_empty()
    {
        r.insert("apiGroup".into(), json!(RBAC_GROUP));
    }
    if let Some(Value::Array(subjects)) = obj.get_mut("subjects") {
        for s in subjects.iter_mut().filter_map(Value::as_object_mut) {
            if s.get("apiGroup")
                .is_some_and(|g| g.as_str().is_some_and(|g| !g.is_empty()))
            {
                continue;
            }
            match s.get("kind").and_then(Value::as_str) {
                // kube defaults it to "", which its JSON leaves out
                // (`omitempty`): storing `apiGroup: ""` would make a
                // server-side apply that omits it conflict with itself.
                Some("ServiceAccount") => {
                    s.remove("apiGroup");
                }
                Some("User" | "Group") => {
                    s.insert("apiGroup".into(), json!(RBAC_GROUP));
                }
                _ => {}
            }
        }
    }
}

/// RoleBinding (`namespaced`) or ClusterRoleBinding, with `old` for the immutable
/// `roleRef`.
pub fn validate_binding(obj: &Value, old: Option<&Value>, namespaced: bool) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let rp = FieldPath::new("roleRef");
    let null = Value::Null;
    let role_ref = obj.get("roleRef").unwrap_or(&null);
    let group = str_at(role_ref, &["apiGroup"]).unwrap_or("");
    if group != RBAC_GROUP {
        errs.push(FieldError::not_supported(
            rp.child("apiGroup"),
            group,
            &[RBAC_GROUP],
        ));
    }
    let kind = str_at(role_ref, &["kind"]).unwrap_or("");
    let kinds: &[&str] = if namespaced {
        &["ClusterRole", "Role"]
    } else {
        &["ClusterRole"]
    };
    if !kinds.contains(&kind) {
        errs.push(FieldError::not_supported(rp.child("kind"), kind, kinds));
    }
    let name = str_at(role_ref, &["name"]).unwrap_or("");
    if name.is_empty() {
        errs.push(FieldError::required(rp.child("name"), ""));
    } else {
        for m in path_segment_name(name) {
            errs.push(FieldError::invalid(rp.child("name"), name, m));
        }
    }
    let subjects = obj
        .get("subjects")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    for (i, s) in subjects.iter().enumerate() {
        let sp = FieldPath::new("subjects").index(i);
        let name = str_at(s, &["name"]).unwrap_or("");
        if name.is_empty() {
            errs.push(FieldError::required(sp.child("name"), ""));
        }
        let api_group = str_at(s, &["apiGroup"]).unwrap_or("");
        match str_at(s, &["kind"]).unwrap_or("") {
            "ServiceAccount" => {
                if !name.is_empty() {
                    for m in dns1123_subdomain(name) {
                        errs.push(FieldError::invalid(sp.child("name"), name, m));
                    }
                }
                if !api_group.is_empty() {
                    errs.push(FieldError::not_supported(
                        sp.child("apiGroup"),
                        api_group,
                        &[""],
                    ));
                }
                let ns = str_at(s, &["namespace"]).unwrap_or("");
                if ns.is_empty() {
                    if !namespaced {
                        errs.push(FieldError::required(sp.child("namespace"), ""));
                    }
                } else {
                    for m in dns1123_label(ns) {
                        errs.push(FieldError::invalid(sp.child("namespace"), ns, m));
                    }
                }
            }
            "User" | "Group" => {
                if api_group != RBAC_GROUP {
                    errs.push(FieldError::not_supported(
                        sp.child("apiGroup"),
                        api_group,
                        &[RBAC_GROUP],
                    ));
                }
            }
            other => errs.push(FieldError::not_supported(
                sp.child("kind"),
                other,
                &["Group", "ServiceAccount", "User"],
            )),
        }
    }
    if let Some(old) = old
        && immutable(obj.get("roleRef"), old.get("roleRef"), rp.clone()).is_some()
    {
        errs.push(FieldError::invalid(
            rp,
            role_ref.clone(),
            "cannot change roleRef",
        ));
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msgs(errs: Vec<FieldError>) -> Vec<String> {
        errs.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn rules() {
        let role = json!({"rules": [
            {"apiGroups": [""], "resources": ["pods"]},
            {"verbs": ["get"], "nonResourceURLs": ["/healthz"]},
            {"verbs": ["get"], "apiGroups": [""]}
        ]});
        assert_eq!(
            msgs(validate_role(&role, true)),
            vec![
                "rules[0].verbs: Required value: verbs must contain at least one value",
                "rules[1].nonResourceURLs: Invalid value: [\"/healthz\"]: namespaced rules cannot apply to non-resource URLs",
                "rules[2].resources: Required value: resource rules must supply at least one resource",
            ]
        );
        let cluster = json!({"rules": [{"verbs": ["get"], "nonResourceURLs": ["/healthz"]}]});
        assert!(validate_role(&cluster, false).is_empty());
    }

    #[test]
    fn bindings() {
        let mut b = json!({"roleRef": {"kind": "Role", "name": "r"},
                           "subjects": [{"kind": "User", "name": "alice"}, {"kind": "ServiceAccount", "name": "sa"}]});
        default_binding(&mut b);
        assert_eq!(b["roleRef"]["apiGroup"], RBAC_GROUP);
        assert_eq!(b["subjects"][0]["apiGroup"], RBAC_GROUP);
        assert!(b["subjects"][1].get("apiGroup").is_none());
        assert!(validate_binding(&b, None, true).is_empty());
        assert_eq!(
            msgs(validate_binding(&b, None, false)),
            vec![
                "roleRef.kind: Unsupported value: \"Role\": supported values: \"ClusterRole\"",
                "subjects[1].namespace: Required value",
            ]
        );
        let mut changed = b.clone();
        changed["roleRef"]["name"] = json!("other");
        assert_eq!(
            msgs(validate_binding(&changed, Some(&b), true)),
            vec![
                "roleRef: Invalid value: {\"apiGroup\":\"rbac.authorization.k8s.io\",\"kind\":\"Role\",\"name\":\"other\"}: cannot change roleRef"
            ]
        );
    }
}
