//! Answers in another form than the object's own, as `Accept` asks with
//! `as=...;g=meta.k8s.io;v=v1`, for get, list and watch: a `Table` (kubectl's
//! columns, through the `table` module's printers), or only the metadata
//! (`PartialObjectMetadata` and `PartialObjectMetadataList`, what metadata
//! informers and `kubectl get -o name` style clients ask for).

use http::HeaderMap;
use serde_json::Value;

use super::request::Query;
use crate::objects::ApiError;
use crate::registry::ResourceInfo;
use crate::table::{CustomColumns, Printer, TableListMeta, TableOptions, to_table};

/// What the client's preferred media type asks for.
enum Wanted {
    /// A Table of this `group/version`.
    Table(String),
    /// Only the metadata (`meta.k8s.io/v1`).
    Metadata,
}

/// The representation the first media type in `Accept` asks for, if any.
fn wanted(headers: &HeaderMap) -> Result<Option<Wanted>, ApiError> {
    let Some(accept) = headers
        .get(http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
    else {
        return Ok(None);
    };
    let Some(first) = accept.split(',').next() else {
        return Ok(None);
    };
    let mut as_ = "";
    let mut group = "";
    let mut version = "";
    for param in first.split(';').skip(1) {
        match param.trim().split_once('=') {
            Some(("as", a)) => as_ = a,
            Some(("g", g)) => group = g,
            Some(("v", v)) => version = v,
            _ => {}
        }
    }
    if group != "meta.k8s.io" {
        return Ok(None);
    }
    Ok(match as_ {
        "Table" => Some(Wanted::Table(format!("{group}/{version}"))),
        "PartialObjectMetadata" | "PartialObjectMetadataList" if version == "v1" => {
            Some(Wanted::Metadata)
        }
        "PartialObjectMetadata" | "PartialObjectMetadataList" => {
            return Err(ApiError::NotAcceptable(format!(
                "no {as_} exists in group version meta.k8s.io/{version}"
            )));
        }
        _ => None,
    })
}

/// How an answer is rendered, when not as the objects themselves.
pub enum Representation {
    /// kubectl's table.
    Table(TableRender),
    /// Only each object's metadata.
    Metadata,
}

impl Representation {
    /// What the request asks for (`None`: the objects themselves).
    pub fn of_request(
        headers: &HeaderMap,
        r: &ResourceInfo,
        query: &Query,
    ) -> Result<Option<Self>, ApiError> {
        Ok(match wanted(headers)? {
            None => None,
            Some(Wanted::Table(version)) => {
                Some(Representation::Table(TableRender::new(r, &version, query)?))
            }
            Some(Wanted::Metadata) => Some(Representation::Metadata),
        })
    }

    /// One object.
    pub fn object(&self, obj: &Value) -> Value {
        match self {
            Representation::Table(t) => t.object(obj),
            Representation::Metadata => partial_object_metadata(obj),
        }
    }

    /// A list.
    pub fn list(&self, list: &Value) -> Value {
        match self {
            Representation::Table(t) => t.list(list),
            Representation::Metadata => serde_json::json!({
                "kind": "PartialObjectMetadataList",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": list["metadata"].clone(),
                "items": list["items"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(partial_object_metadata)
                    .collect::<Vec<_>>(),
            }),
        }
    }

    /// A watch event, its object rendered (bookmarks and errors pass
    /// unchanged, but a bookmark's object is metadata already).
    pub fn event(&self, mut event: Value) -> Value {
        if matches!(
            event["type"].as_str(),
            Some("ADDED" | "MODIFIED" | "DELETED")
        ) {
            event["object"] = self.object(&event["object"]);
        }
        event
    }
}

/// An object's metadata as a `meta.k8s.io/v1` PartialObjectMetadata.
fn partial_object_metadata(obj: &Value) -> Value {
    serde_json::json!({
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": obj["metadata"].clone(),
    })
}

/// How a table of this resource is rendered.
pub struct TableRender {
    printer: Printer,
    options: TableOptions,
}

impl TableRender {
    /// The printer and options for a request.
    pub fn new(r: &ResourceInfo, api_version: &str, query: &Query) -> Result<Self, ApiError> {
        let options = TableOptions::new(
            api_version,
            query.get("includeObject"),
            query.get("noHeaders") == Some("true"),
        )
        .map_err(|e| match e {
            crate::table::TableError::ParseTableVersion(_) => {
                ApiError::NotAcceptable(e.to_string())
            }
            other => ApiError::BadRequest(other.to_string()),
        })?;
        let printer = match &r.crd {
            Some(crd) => {
                let defs: Vec<_> = crd
                    .printer_columns
                    .iter()
                    .filter_map(|c| serde_json::from_value(c.clone()).ok())
                    .collect();
                Printer::Custom(
                    CustomColumns::new(&defs).map_err(|e| ApiError::Internal(e.to_string()))?,
                )
            }
            None => Printer::for_kind(&r.group, &r.kind),
        };
        Ok(TableRender { printer, options })
    }

    /// One object as a table.
    pub fn object(&self, obj: &Value) -> Value {
        let meta = TableListMeta {
            resource_version: obj["metadata"]["resourceVersion"]
                .as_str()
                .map(str::to_owned),
            ..Default::default()
        };
        to_table(
            &self.printer,
            std::slice::from_ref(obj),
            &meta,
            &self.options,
            jiff::Timestamp::now(),
        )
    }

    /// A list as a table.
    pub fn list(&self, list: &Value) -> Value {
        let text = |k: &str| list["metadata"][k].as_str().map(str::to_owned);
        let meta = TableListMeta {
            resource_version: text("resourceVersion"),
            continue_token: text("continue"),
            remaining_item_count: list["metadata"]["remainingItemCount"].as_i64(),
        };
        let items = list["items"].as_array().cloned().unwrap_or_default();
        to_table(
            &self.printer,
            &items,
            &meta,
            &self.options,
            jiff::Timestamp::now(),
        )
    }
}
