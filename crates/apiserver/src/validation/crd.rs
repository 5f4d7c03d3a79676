//! CustomResourceDefinitions: `SetDefaults_CustomResourceDefinition(Spec)` and
//! `ValidateCustomResourceDefinition(Update)` essentials, including the structural
//! schema checks of every version's `openAPIV3Schema`.

use serde_json::{Value, json};

use super::meta::{immutable, str_at};
use super::names::{dns1035_label, dns1123_subdomain};
use crate::schema::{FieldError, FieldPath, Schema, parse_crd_schema};

/// CRD defaults: `singular` (lower-case kind), `listKind` (`<Kind>List`), conversion
/// strategy `None`, and each version's `served`/`storage` left as given.
pub fn default(obj: &mut Value) {
    let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    if let Some(names) = spec.get_mut("names").and_then(Value::as_object_mut) {
        let kind = names
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        if !kind.is_empty() {
            if names
                .get("singular")
                .and_then(Value::as_str)
                .unwrap_or("")
                .is_empty()
            {
                names.insert("singular".into(), json!(kind.to_lowercase()));
            }
            if names
                .get("listKind")
                .and_then(Value::as_str)
                .unwrap_or("")
                .is_empty()
            {
                names.insert("listKind".into(), json!(format!("{kind}List")));
            }
        }
    }
    if spec.get("conversion").is_none() {
        spec.insert("conversion".into(), json!({"strategy": "None"}));
    }
}

/// The metadata name a CRD must have (`<plural>.<group>`).
pub fn expected_name(obj: &Value) -> String {
    format!(
        "{}.{}",
        str_at(obj, &["spec", "names", "plural"]).unwrap_or(""),
        str_at(obj, &["spec", "group"]).unwrap_or("")
    )
}

/// Validates a CRD (with `old` on update). The metadata name rule replaces the usual
/// DNS check (see `name_errors`).
pub fn validate(obj: &Value, old: Option<&Value>) -> Vec<FieldError> {
    let sp = FieldPath::new("spec");
    let mut errs = Vec::new();
    let group = str_at(obj, &["spec", "group"]).unwrap_or("");
    if group.is_empty() {
        errs.push(FieldError::required(sp.child("group"), ""));
    } else {
        for m in dns1123_subdomain(group) {
            errs.push(FieldError::invalid(sp.child("group"), group, m));
        }
        if !group.contains('.') {
            errs.push(FieldError::invalid(
                sp.child("group"),
                group,
                "should be a domain with at least one dot",
            ));
        }
    }
    let scope = str_at(obj, &["spec", "scope"]).unwrap_or("");
    if scope.is_empty() {
        errs.push(FieldError::required(sp.child("scope"), ""));
    } else if scope != "Cluster" && scope != "Namespaced" {
        errs.push(FieldError::not_supported(
            sp.child("scope"),
            scope,
            &["Cluster", "Namespaced"],
        ));
    }
    if let Some(strategy) = str_at(obj, &["spec", "conversion", "strategy"])
        && strategy != "None"
        && strategy != "Webhook"
    {
        errs.push(FieldError::not_supported(
            sp.child("conversion").child("strategy"),
            strategy,
            &["None", "Webhook"],
        ));
    }
    if obj
        .get("spec")
        .and_then(|s| s.get("preserveUnknownFields"))
        .and_then(Value::as_bool)
        == Some(true)
    {
        errs.push(FieldError::invalid(
            sp.child("preserveUnknownFields"),
            true,
            "cannot set to true, set x-kubernetes-preserve-unknown-fields to true in spec.versions[*].schema instead",
        ));
    }
    errs.extend(validate_names(
        obj.get("spec").and_then(|s| s.get("names")),
        &sp.child("names"),
    ));
    let versions = obj
        .get("spec")
        .and_then(|s| s.get("versions"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let vp = sp.child("versions");
    if versions.is_empty() {
        errs.push(FieldError::invalid(
            vp.clone(),
            json!([]),
            "must have exactly one version marked as storage version",
        ));
    } else {
        let storage = versions
            .iter()
            .filter(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
            .count();
        if storage != 1 {
            errs.push(FieldError::invalid(
                vp.clone(),
                Value::Array(versions.clone()),
                "must have exactly one version marked as storage version",
            ));
        }
        if !versions
            .iter()
            .any(|v| v.get("served").and_then(Value::as_bool) == Some(true))
        {
            errs.push(FieldError::invalid(
                vp.clone(),
                Value::Array(versions.clone()),
                "must have at least one served version",
            ));
        }
    }
    let mut seen: Vec<&str> = Vec::new();
    for (i, v) in versions.iter().enumerate() {
        let p = vp.index(i);
        let name = str_at(v, &["name"]).unwrap_or("");
        if name.is_empty() {
            errs.push(FieldError::required(p.child("name"), ""));
        } else {
            for m in dns1035_label(name) {
                errs.push(FieldError::invalid(p.child("name"), name, m));
            }
            if seen.contains(&name) {
                errs.push(FieldError::duplicate(p.child("name"), name));
            }
            seen.push(name);
        }
        match v.get("schema").and_then(|s| s.get("openAPIV3Schema")) {
            None | Some(Value::Null) => errs.push(FieldError::required(
                p.child("schema").child("openAPIV3Schema"),
                "schemas are required",
            )),
            Some(schema) => {
                if let Err(e) =
                    parse_crd_schema(schema, &p.child("schema").child("openAPIV3Schema"))
                {
                    errs.extend(e);
                }
            }
        }
        if let Some(Value::Array(cols)) = v.get("additionalPrinterColumns") {
            for (j, c) in cols.iter().enumerate() {
                let cp = p.child("additionalPrinterColumns").index(j);
                for key in ["name", "type", "jsonPath"] {
                    if str_at(c, &[key]).unwrap_or("").is_empty() {
                        errs.push(FieldError::required(cp.child(key), ""));
                    }
                }
                let types = ["boolean", "date", "integer", "number", "string"];
                if let Some(t) = str_at(c, &["type"])
                    && !t.is_empty()
                    && !types.contains(&t)
                {
                    errs.push(FieldError::not_supported(cp.child("type"), t, &types));
                }
            }
        }
    }
    if let Some(old) = old {
        let os = old.get("spec");
        let ns = obj.get("spec");
        errs.extend(immutable(
            ns.and_then(|s| s.get("group")),
            os.and_then(|s| s.get("group")),
            sp.child("group"),
        ));
        errs.extend(immutable(
            ns.and_then(|s| s.get("names"))
                .and_then(|n| n.get("plural")),
            os.and_then(|s| s.get("names"))
                .and_then(|n| n.get("plural")),
            sp.child("names").child("plural"),
        ));
        errs.extend(immutable(
            ns.and_then(|s| s.get("scope")),
            os.and_then(|s| s.get("scope")),
            sp.child("scope"),
        ));
    }
    errs
}

/// The CRD's metadata name rule: exactly `<plural>.<group>`.
pub fn name_errors(obj: &Value) -> Vec<FieldError> {
    let name = str_at(obj, &["metadata", "name"]).unwrap_or("");
    let expected = expected_name(obj);
    if name.is_empty() {
        vec![FieldError::required(
            FieldPath::new("metadata.name"),
            "name or generateName is required",
        )]
    } else if name != expected {
        vec![FieldError::invalid(
            FieldPath::new("metadata.name"),
            name,
            "must be spec.names.plural+\".\"+spec.group",
        )]
    } else {
        Vec::new()
    }
}

fn validate_names(names: Option<&Value>, p: &FieldPath) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let null = Value::Null;
    let names = names.unwrap_or(&null);
    for key in ["plural", "singular"] {
        let v = str_at(names, &[key]).unwrap_or("");
        if v.is_empty() {
            if key == "plural" {
                errs.push(FieldError::required(p.child(key), ""));
            }
        } else {
            for m in dns1035_label(v) {
                errs.push(FieldError::invalid(p.child(key), v, m));
            }
        }
    }
    for key in ["kind", "listKind"] {
        let v = str_at(names, &[key]).unwrap_or("");
        if v.is_empty() {
            errs.push(FieldError::required(p.child(key), ""));
        } else if !dns1035_label(&v.to_lowercase()).is_empty() {
            errs.push(FieldError::invalid(
                p.child(key),
                v,
                "may have mixed case, but should otherwise match: [a-z]([-a-z0-9]*[a-z0-9])?",
            ));
        }
    }
    if let (Some(k), Some(l)) = (str_at(names, &["kind"]), str_at(names, &["listKind"]))
        && !k.is_empty()
        && k == l
    {
        errs.push(FieldError::invalid(
            p.child("listKind"),
            l,
            "kind and listKind cannot be the same",
        ));
    }
    for key in ["shortNames", "categories"] {
        if let Some(Value::Array(list)) = names.get(key) {
            for (i, v) in list.iter().enumerate() {
                let v = v.as_str().unwrap_or("");
                for m in dns1035_label(v) {
                    errs.push(FieldError::invalid(p.child(key).index(i), v, m));
                }
            }
        }
    }
    errs
}

/// The structural schema of every version of a valid CRD, by version name (for the
/// spine's custom-resource handlers and OpenAPI documents).
pub fn version_schemas(obj: &Value) -> Result<Vec<(String, Schema)>, Vec<FieldError>> {
    let vp = FieldPath::new("spec.versions");
    let mut out = Vec::new();
    let mut errs = Vec::new();
    let versions = obj
        .get("spec")
        .and_then(|s| s.get("versions"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for (i, v) in versions.iter().enumerate() {
        let name = str_at(v, &["name"]).unwrap_or("").to_owned();
        let p = vp.index(i).child("schema").child("openAPIV3Schema");
        match v.get("schema").and_then(|s| s.get("openAPIV3Schema")) {
            Some(s) => match parse_crd_schema(s, &p) {
                Ok(schema) => out.push((name, schema)),
                Err(e) => errs.extend(e),
            },
            None => errs.push(FieldError::required(p, "schemas are required")),
        }
    }
    if errs.is_empty() { Ok(out) } else { Err(errs) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msgs(errs: Vec<FieldError>) -> Vec<String> {
        errs.iter().map(ToString::to_string).collect()
    }

    fn crontab() -> Value {
        json!({
            "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": "crontabs.stable.example.com"},
            "spec": {"group": "stable.example.com", "scope": "Namespaced",
                "names": {"plural": "crontabs", "kind": "CronTab", "shortNames": ["ct"]},
                "versions": [{"name": "v1", "served": true, "storage": true,
                    "schema": {"openAPIV3Schema": {"type": "object", "properties": {"spec": {"type": "object",
                        "properties": {"cronSpec": {"type": "string"}, "replicas": {"type": "integer"}}}}}}}]}
        })
    }

    #[test]
    fn valid_crd_defaults_and_passes() {
        let mut crd = crontab();
        default(&mut crd);
        assert_eq!(crd["spec"]["names"]["singular"], "crontab");
        assert_eq!(crd["spec"]["names"]["listKind"], "CronTabList");
        assert!(validate(&crd, None).is_empty());
        assert!(name_errors(&crd).is_empty());
        let schemas = version_schemas(&crd).unwrap();
        assert_eq!(schemas[0].0, "v1");
    }

    #[test]
    fn invalid_crds() {
        let mut crd = crontab();
        default(&mut crd);
        crd["metadata"]["name"] = json!("crontabs");
        assert_eq!(
            msgs(name_errors(&crd)),
            vec![
                "metadata.name: Invalid value: \"crontabs\": must be spec.names.plural+\".\"+spec.group"
            ]
        );
        crd["spec"]["group"] = json!("example");
        crd["spec"]["versions"][0]["storage"] = json!(false);
        crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"] =
            json!({"properties": {}});
        let got = msgs(validate(&crd, None));
        assert_eq!(
            got[0],
            "spec.group: Invalid value: \"example\": should be a domain with at least one dot"
        );
        assert!(
            got[1].starts_with("spec.versions: Invalid value: [{"),
            "{got:?}"
        );
        assert!(got[1].ends_with("must have exactly one version marked as storage version"));
        assert_eq!(got.len(), 3, "{got:?}");
        assert_eq!(
            got[2],
            "spec.versions[0].schema.openAPIV3Schema.properties[spec].type: Required value: must not be empty for specified object fields"
        );
        let mut no_schema = crontab();
        no_schema["spec"]["versions"][0]
            .as_object_mut()
            .unwrap()
            .remove("schema");
        default(&mut no_schema);
        assert_eq!(
            msgs(validate(&no_schema, None)),
            vec!["spec.versions[0].schema.openAPIV3Schema: Required value: schemas are required"]
        );
    }

    #[test]
    fn conversion_and_preserve_unknown_fields() {
        let mut crd = crontab();
        default(&mut crd);
        crd["spec"]["conversion"] = json!({"strategy": "Magic"});
        crd["spec"]["preserveUnknownFields"] = json!(true);
        assert_eq!(
            msgs(validate(&crd, None)),
            vec![
                "spec.conversion.strategy: Unsupported value: \"Magic\": supported values: \"None\", \"Webhook\"",
                "spec.preserveUnknownFields: Invalid value: true: cannot set to true, set x-kubernetes-preserve-unknown-fields to true in spec.versions[*].schema instead",
            ]
        );
    }

    #[test]
    fn scope_is_immutable() {
        let mut old = crontab();
        default(&mut old);
        let mut new = old.clone();
        new["spec"]["scope"] = json!("Cluster");
        assert_eq!(
            msgs(validate(&new, Some(&old))),
            vec!["spec.scope: Invalid value: \"Cluster\": field is immutable"]
        );
    }
}
