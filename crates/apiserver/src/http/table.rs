//! Table answers (`Accept: application/json;as=Table;g=meta.k8s.io;v=v1`) for
//! get, list and watch, through the `table` module's printers.

use http::HeaderMap;
use serde_json::Value;

use super::request::Query;
use crate::objects::ApiError;
use crate::registry::ResourceInfo;
use crate::table::{CustomColumns, Printer, TableListMeta, TableOptions, to_table};

/// The Table version the client asks for in `Accept`, if it prefers a Table.
pub fn wanted(headers: &HeaderMap) -> Option<String> {
    let accept = headers.get(http::header::ACCEPT)?.to_str().ok()?;
    let first = accept.split(',').next()?;
    let mut is_table = false;
    let mut group = "";
    let mut version = "";
    for param in first.split(';').skip(1) {
        match param.trim().split_once('=') {
            Some(("as", "Table")) => is_table = true,
            Some(("g", g)) => group = g,
            Some(("v", v)) => version = v,
            _ => {}
        }
    }
    (is_table && group == "meta.k8s.io").then(|| format!("{group}/{version}"))
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

    /// A watch event with its object as a one-row table (bookmarks and errors
    /// pass unchanged).
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
