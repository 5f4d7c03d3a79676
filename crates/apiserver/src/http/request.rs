//! Query parameters and bodies, turned into the object layer's options and values.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::Value;

use crate::objects::selector::{FieldSelector, LabelSelector};
use crate::objects::{
    ApiError, DeleteOptions, FieldValidation, ListOptions, Propagation, VersionMatch, WatchOptions,
    WriteOptions,
};
use crate::registry::ResourceInfo;

/// Query parameters of one request (the last value wins, as in kube).
#[derive(Debug, Default)]
pub struct Query(HashMap<String, String>);

impl Query {
    /// Parses the query string of a URI.
    pub fn parse(uri: &http::Uri) -> Result<Self, ApiError> {
        let pairs: Vec<(String, String)> =
            axum::extract::Query::<Vec<(String, String)>>::try_from_uri(uri)
                .map(|q| q.0)
                .map_err(|e| ApiError::BadRequest(format!("invalid query: {e}")))?;
        Ok(Query(pairs.into_iter().collect()))
    }

    /// One parameter.
    pub fn get(&self, k: &str) -> Option<&str> {
        self.0.get(k).map(String::as_str)
    }

    fn flag(&self, k: &str) -> bool {
        matches!(self.get(k), Some("1" | "true" | "True"))
    }

    /// `?watch=1`.
    pub fn is_watch(&self) -> bool {
        self.flag("watch")
    }

    fn number<T: std::str::FromStr>(&self, k: &str) -> Result<Option<T>, ApiError> {
        self.get(k)
            .filter(|v| !v.is_empty())
            .map(|v| {
                v.parse::<T>()
                    .map_err(|_| ApiError::BadRequest(format!("invalid value for {k}: {v:?}")))
            })
            .transpose()
    }

    fn version_match(&self) -> Result<Option<VersionMatch>, ApiError> {
        match self.get("resourceVersionMatch") {
            None | Some("") => Ok(None),
            Some("NotOlderThan") => Ok(Some(VersionMatch::NotOlderThan)),
            Some("Exact") => Ok(Some(VersionMatch::Exact)),
            Some(other) => Err(ApiError::BadRequest(format!(
                "resourceVersionMatch: Unsupported value: {other:?}: supported values: \"Exact\", \"NotOlderThan\", \"\""
            ))),
        }
    }

    fn selectors(&self, r: &ResourceInfo) -> Result<(LabelSelector, FieldSelector), ApiError> {
        Ok((
            LabelSelector::parse(self.get("labelSelector").unwrap_or(""))?,
            FieldSelector::parse(self.get("fieldSelector").unwrap_or(""), r)?,
        ))
    }

    /// Options of a list.
    pub fn list_options(&self, r: &ResourceInfo) -> Result<ListOptions, ApiError> {
        let (labels, fields) = self.selectors(r)?;
        Ok(ListOptions {
            labels,
            fields,
            limit: self.number::<usize>("limit")?.unwrap_or(0),
            continue_token: self
                .get("continue")
                .filter(|c| !c.is_empty())
                .map(str::to_owned),
            resource_version: self.get("resourceVersion").map(str::to_owned),
            version_match: self.version_match()?,
        })
    }

    /// Options of a watch; `name` pins the object for single-object watches.
    pub fn watch_options(
        &self,
        r: &ResourceInfo,
        name: Option<&str>,
    ) -> Result<WatchOptions, ApiError> {
        let (labels, fields) = match name {
            Some(n) => {
                let (l, _) = self.selectors(r)?;
                let mut sel = format!("metadata.name={n}");
                if let Some(extra) = self.get("fieldSelector").filter(|s| !s.is_empty()) {
                    sel = format!("{sel},{extra}");
                }
                (l, FieldSelector::parse(&sel, r)?)
            }
            None => self.selectors(r)?,
        };
        let send_initial_events = match self.get("sendInitialEvents") {
            None | Some("") => None,
            Some("true") => Some(true),
            Some("false") => Some(false),
            Some(other) => {
                return Err(ApiError::BadRequest(format!(
                    "invalid value for sendInitialEvents: {other:?}"
                )));
            }
        };
        let version_match = self.version_match()?;
        if send_initial_events.is_some() && version_match != Some(VersionMatch::NotOlderThan) {
            return Err(ApiError::Invalid {
                subject: crate::objects::Subject::default(),
                causes: vec![crate::objects::Cause {
                    reason: "FieldValueForbidden".into(),
                    message: "resourceVersionMatch: Forbidden: sendInitialEvents requires setting resourceVersionMatch to NotOlderThan".into(),
                    field: "resourceVersionMatch".into(),
                }],
            });
        }
        Ok(WatchOptions {
            labels,
            fields,
            resource_version: self.get("resourceVersion").map(str::to_owned),
            version_match,
            bookmarks: self.flag("allowWatchBookmarks"),
            send_initial_events,
            timeout: self
                .number::<u64>("timeoutSeconds")?
                .map(Duration::from_secs),
        })
    }

    fn dry_run(&self) -> Result<bool, ApiError> {
        match self.get("dryRun") {
            None | Some("") => Ok(false),
            Some("All") => Ok(true),
            Some(other) => Err(ApiError::BadRequest(format!(
                "dryRun: Unsupported value: {other:?}: supported values: \"All\""
            ))),
        }
    }

    /// Options of create, update and patch.
    pub fn write_options(&self) -> Result<WriteOptions, ApiError> {
        let field_validation = match self.get("fieldValidation") {
            None | Some("") | Some("Warn") => FieldValidation::Warn,
            Some("Strict") => FieldValidation::Strict,
            Some("Ignore") => FieldValidation::Ignore,
            Some(other) => {
                return Err(ApiError::BadRequest(format!(
                    "fieldValidation: Unsupported value: {other:?}: supported values: \"Ignore\", \"Strict\", \"Warn\""
                )));
            }
        };
        if let Some(m) = self.get("fieldManager")
            && m.len() > 128
        {
            return Err(ApiError::BadRequest(
                "fieldManager: Too long: may not be more than 128 bytes".into(),
            ));
        }
        Ok(WriteOptions {
            dry_run: self.dry_run()?,
            field_manager: self.get("fieldManager").map(str::to_owned),
            field_validation,
            force: self.flag("force"),
        })
    }

    /// Options of delete, from the query and an optional DeleteOptions body.
    pub fn delete_options(&self, body: Option<&Value>) -> Result<DeleteOptions, ApiError> {
        let mut opts = DeleteOptions {
            dry_run: self.dry_run()?,
            grace_period_seconds: self.number::<i64>("gracePeriodSeconds")?,
            ..Default::default()
        };
        let mut policy = self.get("propagationPolicy").map(str::to_owned);
        let mut orphan = self.get("orphanDependents").map(|v| v == "true");
        if let Some(b) = body {
            if let Some(p) = b["propagationPolicy"].as_str() {
                policy = Some(p.to_owned());
            }
            if let Some(o) = b["orphanDependents"].as_bool() {
                orphan = Some(o);
            }
            if let Some(g) = b["gracePeriodSeconds"].as_i64() {
                opts.grace_period_seconds = Some(g);
            }
            if b["dryRun"]
                .as_array()
                .is_some_and(|a| a.iter().any(|v| v == "All"))
            {
                opts.dry_run = true;
            }
            opts.precondition_uid = b["preconditions"]["uid"].as_str().map(str::to_owned);
            opts.precondition_resource_version = b["preconditions"]["resourceVersion"]
                .as_str()
                .map(str::to_owned);
        }
        opts.propagation = match policy.as_deref() {
            None | Some("") => orphan.and_then(|o| o.then_some(Propagation::Orphan)),
            Some("Background") => Some(Propagation::Background),
            Some("Foreground") => Some(Propagation::Foreground),
            Some("Orphan") => Some(Propagation::Orphan),
            Some(other) => {
                return Err(ApiError::BadRequest(format!(
                    "propagationPolicy: Unsupported value: {other:?}: supported values: \"Background\", \"Foreground\", \"Orphan\""
                )));
            }
        };
        Ok(opts)
    }
}

/// The media type of a Content-Type header, without parameters.
pub fn media_type(ct: Option<&str>) -> &str {
    ct.unwrap_or("application/json")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
}

/// Decodes an object body (JSON or YAML).
pub fn decode_object(content_type: Option<&str>, body: &[u8]) -> Result<Value, ApiError> {
    match media_type(content_type) {
        "application/json" | "" | "*/*" => serde_json::from_slice(body).map_err(|e| {
            ApiError::BadRequest(format!(
                "Object 'Kind' is missing in '{}': {e}",
                String::from_utf8_lossy(&body[..body.len().min(200)])
            ))
        }),
        "application/yaml" | "application/x-yaml" | "text/yaml" => {
            serde_saphyr::from_slice::<Value>(body)
                .map_err(|e| ApiError::BadRequest(format!("error converting YAML to JSON: {e}")))
        }
        crate::proto::PROTOBUF => {
            crate::proto::decode_body(body).map_err(|e| ApiError::BadRequest(e.to_string()))
        }
        other => Err(ApiError::UnsupportedMediaType(format!(
            "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/vnd.kubernetes.protobuf (got {other})"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn q(s: &str) -> Query {
        Query::parse(&format!("/x?{s}").parse().unwrap()).unwrap()
    }

    #[test]
    fn delete_options_merge_query_and_body() {
        let body = json!({"propagationPolicy": "Foreground", "preconditions": {"uid": "u1"}, "dryRun": ["All"]});
        let o = q("").delete_options(Some(&body)).unwrap();
        assert_eq!(o.propagation, Some(Propagation::Foreground));
        assert_eq!(o.precondition_uid.as_deref(), Some("u1"));
        assert!(o.dry_run);
        let o = q("propagationPolicy=Orphan").delete_options(None).unwrap();
        assert_eq!(o.propagation, Some(Propagation::Orphan));
        assert!(
            q("propagationPolicy=Sometimes")
                .delete_options(None)
                .is_err()
        );
    }

    #[test]
    fn watch_list_requires_not_older_than() {
        let reg = crate::registry::Registry::with_builtins();
        let pods = reg.resolve("", "v1", "pods").unwrap();
        let err = q("watch=1&sendInitialEvents=true")
            .watch_options(&pods, None)
            .unwrap_err();
        assert_eq!(err.code(), 422);
        let o = q("watch=1&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true&timeoutSeconds=5")
            .watch_options(&pods, None)
            .unwrap();
        assert_eq!(o.send_initial_events, Some(true));
        assert!(o.bookmarks);
        assert_eq!(o.timeout, Some(Duration::from_secs(5)));
        assert!(q("limit=abc").list_options(&pods).is_err());
    }

    #[test]
    fn bodies_decode_by_content_type() {
        let v = decode_object(Some("application/yaml"), b"a: 1\nb: [x]\n").unwrap();
        assert_eq!(v, json!({"a": 1, "b": ["x"]}));
        assert_eq!(decode_object(None, b"{bad").unwrap_err().code(), 400);
        assert_eq!(
            decode_object(Some("application/vnd.kubernetes.protobuf"), b"")
                .unwrap_err()
                .code(),
            400
        );
        assert_eq!(
            decode_object(Some("application/cbor"), b"")
                .unwrap_err()
                .code(),
            415
        );
    }
}
