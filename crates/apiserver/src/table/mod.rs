//! Table output (`Accept: application/json;as=Table;g=meta.k8s.io;v=v1`):
//! the `meta.k8s.io/v1` Table kube-apiserver returns for `kubectl get`,
//! with the same columns and cells per kind.
//!
//! The server always prints every column, the `-o wide` ones (priority 1)
//! included; kubectl hides those unless asked. Rows carry the object as
//! `includeObject` says: `Metadata` (the default, and what kubectl's plain
//! `get` gets) wraps the metadata in a `PartialObjectMetadata`; kubectl
//! asks for `Object` only with `--sort-by`; `None` sends `null`.
//!
//! On a watch, kube-apiserver sends each event's object as a one-row Table
//! and includes the column definitions only in the first event (later
//! ones are built as with `noHeaders`).

mod cells;
pub mod columns;
pub mod custom;
mod docs;
pub mod duration;
pub mod jsonpath;
pub mod workloads;

#[cfg(test)]
mod tests;

use jiff::Timestamp;
use serde_json::{Map, Value, json};

use crate::schema::BuiltinKind;

pub use columns::ColumnDefinition;
pub use custom::CustomColumns;

/// Errors building a table.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TableError {
    /// `includeObject` is not None, Metadata or Object (400 BadRequest).
    #[error("unrecognized includeObject value: {0:?}")]
    ParseIncludeObject(String),
    /// The Table group version asked for is not served (406).
    #[error("no Table exists in group version {0}")]
    ParseTableVersion(String),
    /// A CRD printer column's JSONPath does not parse.
    #[error(transparent)]
    ParseColumn(#[from] jsonpath::ParsePathError),
}

/// What each row's `object` holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum IncludeObject {
    /// `null`
    None,
    /// A `PartialObjectMetadata` with the object's metadata.
    #[default]
    Metadata,
    /// The whole object.
    Object,
}

impl IncludeObject {
    /// Parses the `includeObject` query parameter (absent or empty means
    /// Metadata).
    pub fn parse(value: Option<&str>) -> Result<Self, TableError> {
        match value.unwrap_or("") {
            "" | "Metadata" => Ok(Self::Metadata),
            "None" => Ok(Self::None),
            "Object" => Ok(Self::Object),
            other => Err(TableError::ParseIncludeObject(other.to_string())),
        }
    }
}

/// Options of one table response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableOptions {
    /// `noHeaders`: omit the column definitions (`null`).
    pub no_headers: bool,
    /// `includeObject`
    pub include_object: IncludeObject,
    /// `meta.k8s.io/v1` or `meta.k8s.io/v1beta1`, from the Accept header.
    pub api_version: String,
}

impl Default for TableOptions {
    fn default() -> Self {
        Self {
            no_headers: false,
            include_object: IncludeObject::Metadata,
            api_version: "meta.k8s.io/v1".to_string(),
        }
    }
}

impl TableOptions {
    /// Options with the Table version checked (`v1` or `v1beta1` of
    /// `meta.k8s.io`).
    pub fn new(
        api_version: &str,
        include_object: Option<&str>,
        no_headers: bool,
    ) -> Result<Self, TableError> {
        if api_version != "meta.k8s.io/v1" && api_version != "meta.k8s.io/v1beta1" {
            return Err(TableError::ParseTableVersion(api_version.to_string()));
        }
        Ok(Self {
            no_headers,
            include_object: IncludeObject::parse(include_object)?,
            api_version: api_version.to_string(),
        })
    }
}

/// The list metadata a Table carries (for a single object, its
/// resourceVersion).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TableListMeta {
    /// `resourceVersion`
    pub resource_version: Option<String>,
    /// `continue`
    pub continue_token: Option<String>,
    /// `remainingItemCount`
    pub remaining_item_count: Option<i64>,
}

/// How objects of one resource are printed.
#[derive(Debug, Clone)]
pub enum Printer {
    /// A kind with a dedicated printer, and its columns.
    Builtin(BuiltinKind, Vec<ColumnDefinition>),
    /// Custom resources: Name plus the CRD's printer columns.
    Custom(CustomColumns),
    /// Everything else: Name and Created At.
    Default,
}

impl Printer {
    /// The printer kube-apiserver uses for a built-in group and kind
    /// (custom resources use [`Printer::Custom`]).
    pub fn for_kind(group: &str, kind: &str) -> Self {
        BuiltinKind::from_group_kind(group, kind)
            .and_then(|k| Some(Self::Builtin(k, columns::builtin_columns(k)?)))
            .unwrap_or(Self::Default)
    }

    /// The column definitions.
    pub fn columns(&self) -> Vec<ColumnDefinition> {
        match self {
            Self::Builtin(_, columns) => columns.clone(),
            Self::Custom(c) => c.columns().to_vec(),
            Self::Default => columns::default_columns(),
        }
    }

    fn row(&self, object: &Value, now: Timestamp) -> (Vec<Value>, Option<Value>) {
        match self {
            Self::Custom(c) => (c.cells(object, now), None),
            Self::Builtin(k, _) => match cells::print(*k, object, now) {
                Some(printed) => (printed.cells, printed.conditions),
                None => default_row(object),
            },
            Self::Default => default_row(object),
        }
    }
}

/// The default convertor's row: Name and Created At.
fn default_row(object: &Value) -> (Vec<Value>, Option<Value>) {
    let name = object
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let created = object
        .pointer("/metadata/creationTimestamp")
        .and_then(Value::as_str)
        .and_then(|t| t.parse::<Timestamp>().ok())
        .map_or_else(
            || "0001-01-01T00:00:00Z".to_string(),
            |t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
        );
    (vec![json!(name), json!(created)], None)
}

/// Builds the Table for `objects` (one for a GET, the items for a LIST),
/// with ages relative to `now`.
pub fn to_table(
    printer: &Printer,
    objects: &[Value],
    list_meta: &TableListMeta,
    options: &TableOptions,
    now: Timestamp,
) -> Value {
    let mut meta = Map::new();
    if let Some(rv) = list_meta
        .resource_version
        .as_ref()
        .filter(|s| !s.is_empty())
    {
        meta.insert("resourceVersion".into(), json!(rv));
    }
    if let Some(c) = list_meta.continue_token.as_ref().filter(|s| !s.is_empty()) {
        meta.insert("continue".into(), json!(c));
    }
    if let Some(n) = list_meta.remaining_item_count {
        meta.insert("remainingItemCount".into(), json!(n));
    }
    let rows: Vec<Value> = objects
        .iter()
        .map(|object| {
            let (cells, conditions) = printer.row(object, now);
            let mut row = Map::new();
            row.insert("cells".into(), Value::Array(cells));
            if let Some(c) = conditions {
                row.insert("conditions".into(), c);
            }
            let embedded = match options.include_object {
                IncludeObject::None => Value::Null,
                IncludeObject::Object => object.clone(),
                IncludeObject::Metadata => json!({
                    "kind": "PartialObjectMetadata",
                    "apiVersion": options.api_version,
                    "metadata": object.get("metadata").cloned().unwrap_or_else(|| json!({})),
                }),
            };
            row.insert("object".into(), embedded);
            Value::Object(row)
        })
        .collect();
    let columns = if options.no_headers {
        Value::Null
    } else {
        serde_json::to_value(printer.columns()).unwrap_or(Value::Null)
    };
    json!({
        "kind": "Table",
        "apiVersion": options.api_version,
        "metadata": meta,
        "columnDefinitions": columns,
        "rows": rows,
    })
}
