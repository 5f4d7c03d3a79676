//! `metadata.managedFields`: reading and writing the entries, in Kubernetes' field order
//! and entry order.

use serde_json::{Map, Value};

use super::fieldset::{FieldSet, FieldSetError};

/// The operation a managed fields entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Operation {
    /// Server-side apply.
    Apply,
    /// Any other write (create, update, patch).
    Update,
}

impl Operation {
    /// The `operation` value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Apply => "Apply",
            Self::Update => "Update",
        }
    }
}

/// One entry of `metadata.managedFields`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManagedFieldsEntry {
    /// `manager`: the field manager's name.
    pub manager: String,
    /// `operation`.
    pub operation: Operation,
    /// `apiVersion` the fields are expressed in.
    pub api_version: String,
    /// `time` of the manager's last change (RFC 3339).
    pub time: Option<String>,
    /// `subresource` the writes went through (`status`, `scale`).
    pub subresource: Option<String>,
    /// `fieldsV1`, decoded.
    pub fields: FieldSet,
}

/// Why `metadata.managedFields` could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManagedFieldsError {
    /// Not a list of objects.
    #[error("managedFields must be a list of objects")]
    NotAList,
    /// An entry whose `operation` is neither `Apply` nor `Update`.
    #[error("operation must be `Apply` or `Update`")]
    BadOperation,
    /// An entry without `apiVersion`.
    #[error("apiVersion must not be empty")]
    NoApiVersion,
    /// An entry without `fieldsType`.
    #[error("missing fieldsType in managed fields entry {0}")]
    NoFieldsType(usize),
    /// An entry with another `fieldsType` than `FieldsV1`.
    #[error("invalid fieldsType {kind:?} in managed fields entry {index}")]
    BadFieldsType {
        /// The entry's position.
        index: usize,
        /// Its `fieldsType`.
        kind: String,
    },
    /// An entry whose `fieldsV1` is malformed.
    #[error("error decoding fieldsV1 of managed fields entry {index}: {source}")]
    BadFields {
        /// The entry's position.
        index: usize,
        /// What is wrong.
        source: FieldSetError,
    },
}

impl ManagedFieldsEntry {
    /// Whether `other` is the same manager as structured-merge-diff identifies managers:
    /// name, operation and subresource, plus `apiVersion` for updaters.
    pub fn same_manager(&self, other: &ManagedFieldsEntry) -> bool {
        self.manager == other.manager
            && self.operation == other.operation
            && self.subresource == other.subresource
            && (self.operation == Operation::Apply || self.api_version == other.api_version)
    }

    /// How conflict messages name this manager: `"kubectl"`, or
    /// `"kubectl-edit" using apps/v1` for updaters.
    pub fn display_name(&self) -> String {
        let mut name = format!("{:?}", self.manager);
        if let Some(sub) = &self.subresource {
            name.push_str(&format!(" with subresource {sub:?}"));
        }
        if self.operation == Operation::Update {
            name.push_str(&format!(" using {}", self.api_version));
        }
        name
    }

    /// The entry as Kubernetes serializes it.
    pub fn to_json(&self) -> Value {
        let mut map = Map::new();
        map.insert("manager".into(), Value::String(self.manager.clone()));
        map.insert(
            "operation".into(),
            Value::String(self.operation.as_str().into()),
        );
        map.insert("apiVersion".into(), Value::String(self.api_version.clone()));
        if let Some(time) = &self.time {
            map.insert("time".into(), Value::String(time.clone()));
        }
        map.insert("fieldsType".into(), Value::String("FieldsV1".into()));
        map.insert("fieldsV1".into(), self.fields.to_fields_v1());
        if let Some(sub) = &self.subresource {
            map.insert("subresource".into(), Value::String(sub.clone()));
        }
        Value::Object(map)
    }

    fn from_json(index: usize, entry: &Value) -> Result<Self, ManagedFieldsError> {
        let Value::Object(map) = entry else {
            return Err(ManagedFieldsError::NotAList);
        };
        let text = |key: &str| {
            map.get(key)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        };
        let operation = match map.get("operation").and_then(Value::as_str) {
            Some("Apply") => Operation::Apply,
            Some("Update") => Operation::Update,
            _ => return Err(ManagedFieldsError::BadOperation),
        };
        let api_version = text("apiVersion").ok_or(ManagedFieldsError::NoApiVersion)?;
        match text("fieldsType").as_deref() {
            Some("FieldsV1") => {}
            None => return Err(ManagedFieldsError::NoFieldsType(index)),
            Some(other) => {
                return Err(ManagedFieldsError::BadFieldsType {
                    index,
                    kind: other.to_owned(),
                });
            }
        }
        let fields = match map.get("fieldsV1") {
            None | Some(Value::Null) => FieldSet::new(),
            Some(doc) => FieldSet::from_fields_v1(doc)
                .map_err(|source| ManagedFieldsError::BadFields { index, source })?,
        };
        Ok(Self {
            manager: text("manager").unwrap_or_default(),
            operation,
            api_version,
            time: text("time"),
            subresource: text("subresource"),
            fields,
        })
    }
}

/// The managed fields of `object`; later duplicates of a manager replace earlier ones,
/// as in Kubernetes.
pub(crate) fn decode(object: &Value) -> Result<Vec<ManagedFieldsEntry>, ManagedFieldsError> {
    let entries = match object.pointer("/metadata/managedFields") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(entries)) => entries,
        Some(_) => return Err(ManagedFieldsError::NotAList),
    };
    let mut out: Vec<ManagedFieldsEntry> = Vec::with_capacity(entries.len());
    for (index, entry) in entries.iter().enumerate() {
        let entry = ManagedFieldsEntry::from_json(index, entry)?;
        match out.iter_mut().find(|e| e.same_manager(&entry)) {
            Some(existing) => *existing = entry,
            None => out.push(entry),
        }
    }
    Ok(out)
}

/// Whether a write asks to clear managed fields (`managedFields: [{}]`).
pub(crate) fn is_reset(object: &Value) -> bool {
    matches!(object.pointer("/metadata/managedFields"), Some(Value::Array(e)) if e.len() == 1 && e[0].as_object().is_some_and(Map::is_empty))
}

/// Writes `entries` into `object` (sorted as Kubernetes sorts them: operation, time,
/// manager, apiVersion, subresource), or removes the field when there are none.
pub(crate) fn encode(object: &mut Value, mut entries: Vec<ManagedFieldsEntry>) {
    entries.retain(|e| !e.fields.is_empty());
    entries.sort_by(|a, b| {
        (
            a.operation,
            &a.time,
            &a.manager,
            &a.api_version,
            &a.subresource,
        )
            .cmp(&(
                b.operation,
                &b.time,
                &b.manager,
                &b.api_version,
                &b.subresource,
            ))
    });
    let Some(meta) = object.as_object_mut().and_then(|o| {
        o.entry("metadata")
            .or_insert_with(|| Value::Object(Map::new()));
        o.get_mut("metadata").and_then(Value::as_object_mut)
    }) else {
        return;
    };
    if entries.is_empty() {
        super::strategic::remove_key(meta, "managedFields");
    } else {
        meta.insert(
            "managedFields".into(),
            Value::Array(entries.iter().map(ManagedFieldsEntry::to_json).collect()),
        );
    }
}

/// Removes `metadata.managedFields` from `object`.
pub(crate) fn strip(object: &mut Value) {
    if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        super::strategic::remove_key(meta, "managedFields");
    }
}
