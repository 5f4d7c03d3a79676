//! list: selectors, `limit`/`continue` paging, `resourceVersion` semantics.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use super::{ApiError, ListOptions, Objects, StorageError, VersionMatch, storage_failed};
use crate::registry::ResourceInfo;

/// What a continue token carries: the list's revision and the last key served.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct ContinueToken {
    rv: i64,
    start: String,
}

const EXPIRED_TOKEN: &str = "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.";

fn encode_token(t: &ContinueToken) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(t).unwrap_or_default())
}

fn decode_token(s: &str) -> Result<ContinueToken, ApiError> {
    URL_SAFE_NO_PAD
        .decode(s.trim_end_matches('='))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(|| ApiError::BadRequest(format!("invalid continue token: {s:?}")))
}

pub(super) async fn list(
    objects: &Objects,
    r: &ResourceInfo,
    ns: Option<&str>,
    opts: &ListOptions,
) -> Result<Value, ApiError> {
    let store = objects.store();
    let prefix = r.scope_prefix(ns);
    let token = opts
        .continue_token
        .as_deref()
        .map(decode_token)
        .transpose()?;
    if let Some(t) = &token {
        let compacted = store.compacted_revision().await.map_err(storage_failed)?;
        if t.rv < compacted {
            return Err(ApiError::Expired(EXPIRED_TOKEN.into()));
        }
        if !t.start.starts_with(&prefix) {
            return Err(ApiError::BadRequest(
                "continue token does not match this list".into(),
            ));
        }
    }
    let current = store.current_revision().await.map_err(storage_failed)?;
    let mut at = token.as_ref().map(|t| t.rv);
    if let Some(rv) = opts
        .resource_version
        .as_deref()
        .filter(|v| !v.is_empty() && *v != "0")
        && token.is_none()
    {
        let want = super::parse_rv(rv)?;
        match opts.version_match {
            Some(VersionMatch::Exact) => at = Some(want),
            _ if want > current => {
                return Err(ApiError::Timeout(format!(
                    "Too large resource version: {want}, current: {current}"
                )));
            }
            _ => {}
        }
    }
    let start = token.as_ref().map(|t| t.start.as_str());
    let filtering = !opts.labels.is_empty() || !opts.fields.is_empty();
    let limit = (opts.limit > 0 && !filtering).then_some(opts.limit);
    let page = match store.page(&prefix, start, limit, at).await {
        Ok(p) => p,
        Err(StorageError::Compacted {
            requested,
            compacted,
        }) => {
            return Err(ApiError::Expired(if token.is_some() {
                EXPIRED_TOKEN.into()
            } else {
                format!("too old resource version: {requested} ({compacted})")
            }));
        }
        Err(e) => return Err(storage_failed(e)),
    };
    let pinned = opts.fields.pinned_name();
    let mut out = Vec::new();
    let mut last_key = None;
    let mut more = page.more;
    for (key, stored) in page.items {
        if let Some(n) = pinned
            && !key.ends_with(&format!("/{n}"))
        {
            continue;
        }
        let obj = Objects::present(r, stored.value, stored.mod_revision);
        if !opts.labels.matches(&obj) || !opts.fields.matches(&obj) {
            continue;
        }
        if filtering && opts.limit > 0 && out.len() >= opts.limit {
            more = true;
            break;
        }
        last_key = Some(key);
        out.push(obj);
    }
    let list_rv = at.unwrap_or(page.revision);
    let mut metadata = json!({"resourceVersion": list_rv.to_string()});
    if more && let Some(k) = last_key {
        metadata["continue"] = json!(encode_token(&ContinueToken {
            rv: list_rv,
            start: k
        }));
        if !filtering {
            metadata["remainingItemCount"] = json!(page.remaining);
        }
    }
    // Built by hand: `json!` would turn `out` into a Value by serializing it,
    // a deep copy of every item.
    let mut list = serde_json::Map::new();
    list.insert("apiVersion".into(), Value::String(r.api_version()));
    list.insert("kind".into(), Value::String(r.list_kind.clone()));
    list.insert("metadata".into(), metadata);
    list.insert("items".into(), Value::Array(out));
    Ok(Value::Object(list))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_reject_garbage() {
        let t = ContinueToken {
            rv: 7,
            start: "/registry/core/pods/a/b".into(),
        };
        let back = decode_token(&encode_token(&t)).unwrap();
        assert_eq!(back.rv, 7);
        assert_eq!(back.start, t.start);
        assert_eq!(decode_token("!!!").unwrap_err().code(), 400);
    }
}
