//! The `scale` subresource (`autoscaling/v1` Scale) of Deployments,
//! ReplicaSets, StatefulSets and ReplicationControllers: a view of
//! `spec.replicas`, `status.replicas` and the selector, what `kubectl scale`
//! and autoscalers read and write.

use serde_json::{Value, json};

use super::{ApiError, Objects, Subject, Tracking, WriteOptions, Written, meta};
use crate::patch::{self, PatchType};
use crate::registry::ResourceInfo;

/// The Scale view of a stored object (as presented, with its resourceVersion).
pub fn scale_of(r: &ResourceInfo, obj: &Value) -> Value {
    let m = &obj["metadata"];
    let selector = match &obj["spec"]["selector"] {
        Value::Object(sel) if r.kind == "ReplicationController" => sel
            .iter()
            .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
            .collect::<Vec<_>>()
            .join(","),
        sel => label_selector_text(sel),
    };
    let mut meta = json!({"name": m["name"], "uid": m["uid"],
        "resourceVersion": m["resourceVersion"], "creationTimestamp": m["creationTimestamp"]});
    if let Some(ns) = m.get("namespace") {
        meta["namespace"] = ns.clone();
    }
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": meta,
        "spec": {"replicas": obj["spec"]["replicas"].as_i64().unwrap_or(0)},
        "status": {"replicas": obj["status"]["replicas"].as_i64().unwrap_or(0), "selector": selector},
    })
}

/// A LabelSelector as the text of a label selector query.
fn label_selector_text(sel: &Value) -> String {
    let mut parts: Vec<String> = sel["matchLabels"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
        .collect();
    for e in sel["matchExpressions"].as_array().into_iter().flatten() {
        let key = e["key"].as_str().unwrap_or_default();
        let values: Vec<&str> = e["values"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        parts.push(match e["operator"].as_str().unwrap_or_default() {
            "In" => format!("{key} in ({})", values.join(",")),
            "NotIn" => format!("{key} notin ({})", values.join(",")),
            "DoesNotExist" => format!("!{key}"),
            _ => key.to_owned(),
        });
    }
    parts.join(",")
}

/// How a write changes the Scale.
#[derive(Debug, Clone, Copy)]
pub enum ScaleChange<'a> {
    /// PUT of a whole Scale.
    Replace(&'a Value),
    /// PATCH of the Scale (JSON, merge or strategic merge).
    Patch(PatchType, &'a [u8]),
}

impl Objects {
    /// GET of the scale subresource.
    pub async fn get_scale(
        &self,
        r: &ResourceInfo,
        ns: Option<&str>,
        name: &str,
    ) -> Result<Value, ApiError> {
        let obj = self.get(r, ns, name).await?;
        Ok(scale_of(r, &obj))
    }

    /// PUT or PATCH of the scale subresource: only `spec.replicas` of the
    /// object changes. A Scale carrying a resourceVersion must match the
    /// object's.
    pub async fn write_scale(
        &self,
        r: &ResourceInfo,
        ns: Option<&str>,
        name: &str,
        change: ScaleChange<'_>,
        opts: &WriteOptions,
    ) -> Result<Value, ApiError> {
        let subject = || Subject::of(r, name);
        let written: Written = self
            .write_loop(r, ns, name, opts, None, None, Tracking::Update, |current| {
                let view = scale_of(r, current);
                let wanted = match change {
                    ScaleChange::Replace(body) => body.clone(),
                    ScaleChange::Patch(kind, body) => patch::apply_patch(kind, &view, body, None)
                        .map_err(|e| ApiError::BadRequest(e.to_string()))?,
                };
                let rv = meta::meta_str(&wanted, "resourceVersion").unwrap_or_default();
                if !rv.is_empty() && Some(rv) != meta::meta_str(current, "resourceVersion") {
                    return Err(ApiError::modified(subject()));
                }
                let replicas = match &wanted["spec"]["replicas"] {
                    Value::Null => 0,
                    v => v.as_i64().ok_or_else(|| {
                        ApiError::BadRequest("spec.replicas of a Scale must be an integer".into())
                    })?,
                };
                if replicas < 0 {
                    return Err(ApiError::BadRequest(format!(
                        "Scale.autoscaling \"{name}\" is invalid: spec.replicas: Invalid value: {replicas}: must be greater than or equal to 0"
                    )));
                }
                let mut next = current.clone();
                next["spec"]["replicas"] = json!(replicas);
                Ok(next)
            })
            .await?;
        Ok(scale_of(r, &written.object))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::objects::ObjectStore;
    use crate::registry::Registry;

    #[tokio::test]
    async fn scale_reads_and_patches_replicas_only() {
        let objects = Objects::new(ObjectStore::in_memory().unwrap(), Registry::with_builtins());
        let ns = objects.registry().resolve("", "v1", "namespaces").unwrap();
        let opts = WriteOptions::default();
        objects
            .create(&ns, None, json!({"metadata": {"name": "s"}}), &opts)
            .await
            .unwrap();
        let r = objects
            .registry()
            .resolve("apps", "v1", "deployments")
            .unwrap();
        objects
            .create(
                &r,
                Some("s"),
                json!({"metadata": {"name": "web"}, "spec": {"replicas": 2,
                    "selector": {"matchLabels": {"app": "web"}},
                    "template": {"metadata": {"labels": {"app": "web"}},
                        "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}}),
                &opts,
            )
            .await
            .unwrap();
        let scale = objects.get_scale(&r, Some("s"), "web").await.unwrap();
        assert_eq!(scale["spec"]["replicas"], 2);
        assert_eq!(scale["status"]["selector"], "app=web");
        let patched = objects
            .write_scale(
                &r,
                Some("s"),
                "web",
                ScaleChange::Patch(PatchType::Merge, br#"{"spec":{"replicas":5}}"#),
                &opts,
            )
            .await
            .unwrap();
        assert_eq!(patched["spec"]["replicas"], 5);
        let d = objects.get(&r, Some("s"), "web").await.unwrap();
        assert_eq!(d["spec"]["replicas"], 5);
        assert_eq!(d["metadata"]["generation"], 2);
        let stale = json!({"metadata": {"resourceVersion": "1"}, "spec": {"replicas": 1}});
        let err = objects
            .write_scale(&r, Some("s"), "web", ScaleChange::Replace(&stale), &opts)
            .await
            .unwrap_err();
        assert!(matches!(err, ApiError::Conflict { .. }), "{err:?}");
    }
}
