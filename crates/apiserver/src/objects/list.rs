//! list: selectors, `limit`/`continue` paging, `resourceVersion` semantics.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use super::{ApiError, ListOptions, Objects, StorageError, VersionMatch, storage, storage_failed};
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
    let mut out = Vec::new();
    let metadata = list_into(objects, r, ns, opts, &mut |obj| {
        out.push(obj);
        Ok(())
    })
    .await?;
    // `Value::Array` by move: `json!` would serialize `out` into a new Value,
    // a deep copy of every item.
    Ok(envelope(r, metadata, Value::Array(out)))
}

/// The same list as `list`, serialized as JSON: each item is encoded as soon
/// as it is decoded and presented, so that the decoded items of a large list
/// are never all in memory at once.
pub(super) async fn list_encoded(
    objects: &Objects,
    r: &ResourceInfo,
    ns: Option<&str>,
    opts: &ListOptions,
) -> Result<Vec<u8>, ApiError> {
    let mut items = Vec::new();
    let metadata = list_into(objects, r, ns, opts, &mut |obj| {
        if !items.is_empty() {
            items.push(b',');
        }
        serde_json::to_writer(&mut items, &obj).map_err(|e| ApiError::Internal(e.to_string()))
    })
    .await?;
    // The envelope's fields in the order its map keeps them, as `to_vec` of
    // the `list` Value would write them, with the items spliced in.
    let list = envelope(r, metadata, Value::Array(Vec::new()));
    let mut body = Vec::with_capacity(items.len() + 256);
    body.push(b'{');
    for (i, (key, value)) in list.as_object().into_iter().flatten().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        let encoded = serde_json::to_writer(&mut body, key).and_then(|()| {
            body.push(b':');
            if key == "items" {
                body.push(b'[');
                body.extend_from_slice(&items);
                body.push(b']');
                Ok(())
            } else {
                serde_json::to_writer(&mut body, value)
            }
        });
        encoded.map_err(|e| ApiError::Internal(e.to_string()))?;
    }
    body.push(b'}');
    Ok(body)
}

fn envelope(r: &ResourceInfo, metadata: Value, items: Value) -> Value {
    let mut list = serde_json::Map::new();
    list.insert("apiVersion".into(), Value::String(r.api_version()));
    list.insert("kind".into(), Value::String(r.list_kind.clone()));
    list.insert("metadata".into(), metadata);
    list.insert("items".into(), items);
    Value::Object(list)
}

/// Reads the list's page, hands each selected item to `sink` in key order,
/// and returns the list's metadata.
async fn list_into(
    objects: &Objects,
    r: &ResourceInfo,
    ns: Option<&str>,
    opts: &ListOptions,
    sink: &mut (dyn FnMut(Value) -> Result<(), ApiError> + Send),
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
    let page = match store.page_raw(&prefix, start, limit, at).await {
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
    let mut taken = 0;
    let mut last_key = None;
    let mut more = page.more;
    for kv in page.items {
        if let Some(n) = pinned
            && !kv.key.ends_with(&format!("/{n}"))
        {
            continue;
        }
        let value = storage::decode(&kv).map_err(storage_failed)?;
        let mut obj = Objects::present(r, value, kv.mod_revision);
        if !opts.labels.matches(&obj) || !opts.fields.matches(&obj) {
            continue;
        }
        // As kube-apiserver: a built-in list's items carry no apiVersion and
        // kind (the list's own say it); custom resources' items keep theirs.
        if r.crd.is_none()
            && let Some(map) = obj.as_object_mut()
        {
            map.remove("apiVersion");
            map.remove("kind");
        }
        if filtering && opts.limit > 0 && taken >= opts.limit {
            more = true;
            break;
        }
        last_key = Some(kv.key);
        taken += 1;
        sink(obj)?;
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
    Ok(metadata)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_encoded_list_is_the_list_serialized() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let objects = Objects::new(
                super::super::ObjectStore::in_memory().unwrap(),
                crate::registry::Registry::with_builtins(),
            );
            let registry = objects.registry().clone();
            let ns = registry.resolve("", "v1", "namespaces").unwrap();
            let cm = registry.resolve("", "v1", "configmaps").unwrap();
            let opts = super::super::WriteOptions::default();
            let body = json!({"metadata": {"name": "team"}});
            objects.create(&ns, None, body, &opts).await.unwrap();
            for i in 0..5 {
                let body = json!({"metadata": {"name": format!("c{i}"), "labels": {"n": format!("{}", i % 2)}},
                                  "data": {"k": "v\"quoted\""}});
                objects.create(&cm, Some("team"), body, &opts).await.unwrap();
            }
            let same = |opts: ListOptions| {
                let objects = objects.clone();
                let cm = cm.clone();
                async move {
                    let list = objects.list(&cm, Some("team"), &opts).await.unwrap();
                    let encoded = objects.list_encoded(&cm, Some("team"), &opts).await.unwrap();
                    assert_eq!(encoded, serde_json::to_vec(&list).unwrap());
                    list
                }
            };
            let all = same(ListOptions::default()).await;
            assert_eq!(all["items"].as_array().unwrap().len(), 5);
            let first = same(ListOptions {
                limit: 2,
                ..ListOptions::default()
            })
            .await;
            let token = first["metadata"]["continue"].as_str().unwrap().to_owned();
            let rest = same(ListOptions {
                limit: 2,
                continue_token: Some(token),
                ..ListOptions::default()
            })
            .await;
            assert_eq!(rest["items"][0]["metadata"]["name"], "c2");
            let odd = same(ListOptions {
                labels: crate::objects::selector::LabelSelector::parse("n=1").unwrap(),
                ..ListOptions::default()
            })
            .await;
            assert_eq!(odd["items"].as_array().unwrap().len(), 2);
            let none = same(ListOptions {
                labels: crate::objects::selector::LabelSelector::parse("n=7").unwrap(),
                ..ListOptions::default()
            })
            .await;
            assert_eq!(none["items"], json!([]));
        });
    }

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
