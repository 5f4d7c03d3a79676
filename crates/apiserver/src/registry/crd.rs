//! Reading a CustomResourceDefinition into the resources it serves.

use serde_json::{Value, json};

use super::{ResourceInfo, Subresource, VerbSet};

/// Why a CRD cannot be served.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum CrdError {
    /// A required field is missing or has the wrong type.
    #[error("{field}: Required value")]
    MissingField {
        /// Dotted path of the field.
        field: &'static str,
    },
    /// `spec.scope` is neither Namespaced nor Cluster.
    #[error("spec.scope: Unsupported value: {0:?}: supported values: \"Cluster\", \"Namespaced\"")]
    BadScope(String),
    /// The name is not `<plural>.<group>`.
    #[error("metadata.name: Invalid value: {name:?}: must be spec.names.plural+\".\"+spec.group")]
    NameMismatch {
        /// The CRD's name.
        name: String,
    },
}

/// What the server keeps of one version of a CRD.
#[derive(Debug, Clone)]
pub struct CrdVersion {
    /// The CRD's name (`<plural>.<group>`).
    pub crd_name: String,
    /// `openAPIV3Schema` of this version, if any.
    pub schema: Option<Value>,
    /// The same, as a structural schema (when it parses).
    pub structural: Option<std::sync::Arc<crate::schema::Schema>>,
    /// `additionalPrinterColumns` of this version.
    pub printer_columns: Vec<Value>,
    /// The storage version's name.
    pub storage_version: String,
    /// `subresources.scale` paths, if the scale subresource is on.
    pub scale: Option<Value>,
}

fn str_field<'a>(v: &'a Value, path: &[&str], field: &'static str) -> Result<&'a str, CrdError> {
    let mut cur = v;
    for p in path {
        cur = cur.get(p).ok_or(CrdError::MissingField { field })?;
    }
    cur.as_str()
        .filter(|s| !s.is_empty())
        .ok_or(CrdError::MissingField { field })
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// The CRD's name and the resources it serves, one per served version.
pub(super) fn resources_of(crd: &Value) -> Result<(String, Vec<ResourceInfo>), CrdError> {
    let name = str_field(crd, &["metadata", "name"], "metadata.name")?.to_owned();
    let group = str_field(crd, &["spec", "group"], "spec.group")?;
    let plural = str_field(crd, &["spec", "names", "plural"], "spec.names.plural")?;
    let kind = str_field(crd, &["spec", "names", "kind"], "spec.names.kind")?;
    if name != format!("{plural}.{group}") {
        return Err(CrdError::NameMismatch { name });
    }
    let names = &crd["spec"]["names"];
    let singular = names["singular"]
        .as_str()
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .unwrap_or_else(|| kind.to_lowercase());
    let list_kind = names["listKind"]
        .as_str()
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .unwrap_or_else(|| format!("{kind}List"));
    let namespaced = match crd["spec"]["scope"].as_str() {
        Some("Namespaced") => true,
        Some("Cluster") => false,
        other => return Err(CrdError::BadScope(other.unwrap_or("").to_owned())),
    };
    let versions = crd["spec"]["versions"]
        .as_array()
        .filter(|v| !v.is_empty())
        .ok_or(CrdError::MissingField {
            field: "spec.versions",
        })?;
    let storage_version = versions
        .iter()
        .find(|v| v["storage"].as_bool() == Some(true))
        .and_then(|v| v["name"].as_str())
        .unwrap_or_default()
        .to_owned();
    let mut out = Vec::new();
    for (i, v) in versions.iter().enumerate() {
        if v["served"].as_bool() != Some(true) {
            continue;
        }
        let version = str_field(v, &["name"], "spec.versions[].name")?;
        let mut subresources = Vec::new();
        if v["subresources"].get("status").is_some() {
            subresources.push(Subresource::Status);
        }
        let scale = v["subresources"].get("scale").cloned();
        if scale.is_some() {
            subresources.push(Subresource::Scale);
        }
        let selectable_fields = v["selectableFields"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|f| f["jsonPath"].as_str())
                    .map(|p| p.trim_start_matches('.').to_owned())
                    .collect()
            })
            .unwrap_or_default();
        out.push(ResourceInfo {
            group: group.to_owned(),
            version: version.to_owned(),
            plural: plural.to_owned(),
            singular: singular.clone(),
            kind: kind.to_owned(),
            list_kind: list_kind.clone(),
            namespaced,
            verbs: VerbSet::All,
            short_names: strings(names.get("shortNames")),
            categories: strings(names.get("categories")),
            subresources,
            selectable_fields,
            crd: Some(CrdVersion {
                crd_name: name.clone(),
                schema: v["schema"].get("openAPIV3Schema").cloned(),
                structural: v["schema"].get("openAPIV3Schema").and_then(|s| {
                    let path = crate::schema::FieldPath::new(&format!(
                        "spec.versions[{i}].schema.openAPIV3Schema"
                    ));
                    crate::schema::parse_crd_schema(s, &path)
                        .ok()
                        .map(std::sync::Arc::new)
                }),
                printer_columns: v["additionalPrinterColumns"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default(),
                storage_version: storage_version.clone(),
                scale,
            }),
        });
    }
    Ok((name, out))
}

/// The status the server gives an accepted CRD: names accepted and established.
pub fn crd_status(crd: &Value, now: &str) -> Value {
    let names = crd["spec"]["names"].clone();
    let stored: Vec<Value> = crd["spec"]["versions"]
        .as_array()
        .map(|vs| {
            vs.iter()
                .filter(|v| v["storage"].as_bool() == Some(true))
                .map(|v| v["name"].clone())
                .collect()
        })
        .unwrap_or_default();
    let condition = |ty: &str, reason: &str, message: &str| {
        json!({
            "type": ty,
            "status": "True",
            "lastTransitionTime": now,
            "reason": reason,
            "message": message,
        })
    };
    json!({
        "acceptedNames": names,
        "conditions": [
            condition("NamesAccepted", "NoConflicts", "no conflicts found"),
            condition("Established", "InitialNamesAccepted", "the initial names have been accepted"),
        ],
        "storedVersions": stored,
    })
}
