//! JSON patch (RFC 6902) and JSON merge patch (RFC 7386), with the decoding rules and
//! error texts of kube-apiserver (which uses evanphx/json-patch).

use json_patch::{PatchErrorKind, PatchOperation};
use serde_json::Value;

use super::PatchError;

/// kube-apiserver's limit on the operations of one JSON patch.
pub(crate) const MAX_JSON_PATCH_OPERATIONS: usize = 10_000;

/// Go's name for a JSON value's type in `json: cannot unmarshal X into ...` errors.
pub(crate) fn go_type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Decodes a patch body that must be a JSON object (strategic merge patch). `null`
/// decodes to an empty patch, as Go's decoder leaves the map empty.
pub(crate) fn decode_object(body: &[u8]) -> Result<Value, PatchError> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| PatchError::Decode(e.to_string()))?;
    match value {
        Value::Object(_) => Ok(value),
        Value::Null => Ok(Value::Object(serde_json::Map::new())),
        other => Err(PatchError::Decode(format!(
            "json: cannot unmarshal {} into Go value of type map[string]interface {{}}",
            go_type_name(&other)
        ))),
    }
}

/// Applies an RFC 6902 JSON patch. The body must be a JSON array of operations; the patch
/// is atomic (a failing operation leaves nothing applied).
pub(crate) fn json_patch(live: &Value, body: &[u8]) -> Result<Value, PatchError> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| PatchError::Decode(e.to_string()))?;
    if !value.is_array() {
        return Err(PatchError::Decode(format!(
            "json: cannot unmarshal {} into Go value of type jsonpatch.Patch",
            go_type_name(&value)
        )));
    }
    let operations: Vec<PatchOperation> = serde_json::from_value(value)
        .map_err(|e| PatchError::Decode(format!("invalid JSON patch operation: {e}")))?;
    if operations.len() > MAX_JSON_PATCH_OPERATIONS {
        return Err(PatchError::TooManyOperations {
            max: MAX_JSON_PATCH_OPERATIONS,
            got: operations.len(),
        });
    }
    let mut doc = live.clone();
    json_patch::patch(&mut doc, &operations).map_err(|e| {
        let message = match operations.get(e.operation) {
            Some(op) => describe_failure(op, &e.kind),
            None => e.to_string(),
        };
        PatchError::JsonPatchFailed(message)
    })?;
    Ok(doc)
}

/// The message evanphx/json-patch gives for a failed operation.
fn describe_failure(op: &PatchOperation, kind: &PatchErrorKind) -> String {
    let path = op.path().to_string();
    match (op, kind) {
        (PatchOperation::Test(_), PatchErrorKind::TestFailed) => {
            format!("testing value {path} failed: test failed")
        }
        (PatchOperation::Test(_), _) => {
            format!("testing value {path} failed: doc is missing path: {path}")
        }
        (PatchOperation::Add(_), _) => {
            format!("add operation does not apply: doc is missing path: \"{path}\": missing value")
        }
        (PatchOperation::Remove(_), _) => {
            format!(
                "remove operation does not apply: doc is missing path: \"{path}\": missing value"
            )
        }
        (PatchOperation::Replace(_), _) => {
            format!("replace operation does not apply: doc is missing key: {path}: missing value")
        }
        (PatchOperation::Move(m), PatchErrorKind::CannotMoveInsideItself) => {
            format!(
                "move operation does not apply: cannot move {} into its own child {path}",
                m.from
            )
        }
        (PatchOperation::Move(m), PatchErrorKind::InvalidFromPointer) => {
            format!(
                "move operation does not apply: doc is missing from path: {}: missing value",
                m.from
            )
        }
        (PatchOperation::Move(_), _) => {
            format!(
                "move operation does not apply: doc is missing destination path: {path}: missing value"
            )
        }
        (PatchOperation::Copy(c), PatchErrorKind::InvalidFromPointer) => {
            format!(
                "copy operation does not apply: doc is missing from path: {}: missing value",
                c.from
            )
        }
        (PatchOperation::Copy(_), _) => {
            format!(
                "copy operation does not apply: doc is missing destination path: {path}: missing value"
            )
        }
    }
}

/// Applies an RFC 7386 JSON merge patch. An object merges (with `null` deleting); a
/// scalar or `null` body is rejected as kube-apiserver does; an array replaces the whole
/// document, which can never be a Kubernetes object.
pub(crate) fn merge_patch(live: &Value, body: &[u8]) -> Result<Value, PatchError> {
    let patch: Value = serde_json::from_slice(body)
        .map_err(|_| PatchError::Decode("Invalid JSON Patch".to_owned()))?;
    match patch {
        Value::Object(_) => {
            let mut doc = live.clone();
            json_patch::merge(&mut doc, &patch);
            Ok(doc)
        }
        Value::Array(_) => Err(PatchError::NotAnObject(
            "json: cannot unmarshal array into Go value of type map[string]interface {}".to_owned(),
        )),
        _ => Err(PatchError::Decode("Invalid JSON Patch".to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::{PatchType, Reason, apply_patch};
    use super::*;

    fn pod() -> Value {
        json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "web", "labels": {"app": "web"}, "finalizers": ["a", "b"]},
            "spec": {"containers": [{"name": "nginx", "image": "nginx:1"}]}
        })
    }

    fn json_ok(patch: Value) -> Value {
        apply_patch(PatchType::Json, &pod(), patch.to_string().as_bytes(), None).unwrap()
    }

    fn json_err(body: &str) -> PatchError {
        apply_patch(PatchType::Json, &pod(), body.as_bytes(), None).unwrap_err()
    }

    #[test]
    fn json_patch_operations() {
        let cases: Vec<(Value, &str, Value)> = vec![
            (
                json!([{"op": "add", "path": "/metadata/labels/tier", "value": "fe"}]),
                "/metadata/labels/tier",
                json!("fe"),
            ),
            (
                json!([{"op": "replace", "path": "/spec/containers/0/image", "value": "nginx:2"}]),
                "/spec/containers/0/image",
                json!("nginx:2"),
            ),
            (
                json!([{"op": "add", "path": "/metadata/finalizers/-", "value": "c"}]),
                "/metadata/finalizers",
                json!(["a", "b", "c"]),
            ),
            (
                json!([{"op": "remove", "path": "/metadata/finalizers/0"}]),
                "/metadata/finalizers",
                json!(["b"]),
            ),
            (
                json!([{"op": "copy", "from": "/metadata/name", "path": "/metadata/labels/name"}]),
                "/metadata/labels/name",
                json!("web"),
            ),
            (
                json!([{"op": "move", "from": "/metadata/labels/app", "path": "/metadata/labels/role"}]),
                "/metadata/labels",
                json!({"role": "web"}),
            ),
            (
                json!([{"op": "test", "path": "/metadata/name", "value": "web"}, {"op": "add", "path": "/spec/nodeName", "value": "n1"}]),
                "/spec/nodeName",
                json!("n1"),
            ),
            (json!([]), "/metadata/name", json!("web")),
            (
                json!([{"op": "add", "path": "/metadata/labels/app.kubernetes.io~1name", "value": "x"}]),
                "/metadata/labels/app.kubernetes.io~1name",
                json!("x"),
            ),
        ];
        for (patch, pointer, want) in cases {
            let got = json_ok(patch.clone());
            assert_eq!(got.pointer(pointer), Some(&want), "patch {patch}");
        }
    }

    #[test]
    fn json_patch_errors_match_kube_apiserver() {
        let cases: Vec<(&str, Reason, &str)> = vec![
            (
                "{\"op\":\"add\"}",
                Reason::BadRequest,
                "json: cannot unmarshal object into Go value of type jsonpatch.Patch",
            ),
            ("[{\"op\":\"add\",", Reason::BadRequest, "EOF while parsing"),
            (
                "[{\"op\":\"frobnicate\",\"path\":\"/a\"}]",
                Reason::BadRequest,
                "invalid JSON patch operation",
            ),
            (
                "[{\"op\":\"test\",\"path\":\"/metadata/name\",\"value\":\"db\"}]",
                Reason::Invalid,
                "testing value /metadata/name failed: test failed",
            ),
            (
                "[{\"op\":\"replace\",\"path\":\"/spec/nodeName\",\"value\":\"n\"}]",
                Reason::Invalid,
                "replace operation does not apply: doc is missing key: /spec/nodeName: missing value",
            ),
            (
                "[{\"op\":\"add\",\"path\":\"/spec/missing/x\",\"value\":1}]",
                Reason::Invalid,
                "add operation does not apply: doc is missing path: \"/spec/missing/x\": missing value",
            ),
            (
                "[{\"op\":\"remove\",\"path\":\"/metadata/finalizers/7\"}]",
                Reason::Invalid,
                "remove operation does not apply",
            ),
            (
                "[{\"op\":\"move\",\"from\":\"/nope\",\"path\":\"/a\"}]",
                Reason::Invalid,
                "move operation does not apply: doc is missing from path: /nope",
            ),
        ];
        for (body, reason, text) in cases {
            let err = json_err(body);
            assert_eq!(err.reason(), reason, "{body}: {err}");
            assert!(err.to_string().contains(text), "{body}: {err}");
        }
    }

    #[test]
    fn failed_json_patch_is_atomic() {
        let live = pod();
        let body = json!([
            {"op": "add", "path": "/metadata/labels/x", "value": "1"},
            {"op": "test", "path": "/metadata/name", "value": "other"}
        ]);
        assert!(apply_patch(PatchType::Json, &live, body.to_string().as_bytes(), None).is_err());
        assert_eq!(live, pod());
    }

    #[test]
    fn too_many_operations_is_413() {
        let ops: Vec<Value> = (0..=MAX_JSON_PATCH_OPERATIONS)
            .map(|_| json!({"op": "test", "path": "/metadata/name", "value": "web"}))
            .collect();
        let err = json_err(&Value::Array(ops).to_string());
        assert_eq!(err.reason(), Reason::RequestEntityTooLarge);
        assert_eq!(err.reason().code(), 413);
        assert_eq!(
            err.to_string(),
            "The allowed maximum operations in a JSON patch is 10000, got 10001"
        );
    }

    #[test]
    fn merge_patch_cases() {
        let cases: Vec<(Value, Value)> = vec![
            // kubectl label (CRs and --type merge)
            (
                json!({"metadata": {"labels": {"tier": "fe"}}}),
                json!({"app": "web", "tier": "fe"}),
            ),
            // kubectl label app-
            (json!({"metadata": {"labels": {"app": null}}}), json!({})),
            // null on a missing key is a no-op
            (
                json!({"metadata": {"labels": {"nope": null}}}),
                json!({"app": "web"}),
            ),
        ];
        for (patch, labels) in cases {
            let got =
                apply_patch(PatchType::Merge, &pod(), patch.to_string().as_bytes(), None).unwrap();
            assert_eq!(got["metadata"]["labels"], labels, "patch {patch}");
        }
        // Lists are replaced, never merged.
        let got = apply_patch(
            PatchType::Merge,
            &pod(),
            br#"{"spec":{"containers":[{"name":"sidecar","image":"busybox"}]}}"#,
            None,
        )
        .unwrap();
        assert_eq!(
            got["spec"]["containers"],
            json!([{"name": "sidecar", "image": "busybox"}])
        );
        // kubectl scale --type merge on a CR
        let got = apply_patch(
            PatchType::Merge,
            &json!({"spec": {"replicas": 1}}),
            br#"{"spec":{"replicas":3}}"#,
            None,
        )
        .unwrap();
        assert_eq!(got, json!({"spec": {"replicas": 3}}));
    }

    #[test]
    fn merge_patch_errors() {
        let cases: Vec<(&str, Reason)> = vec![
            ("{not json", Reason::BadRequest),
            ("\"a string\"", Reason::BadRequest),
            ("42", Reason::BadRequest),
            ("null", Reason::BadRequest),
            ("[1,2]", Reason::Invalid),
        ];
        for (body, reason) in cases {
            let err = apply_patch(PatchType::Merge, &pod(), body.as_bytes(), None).unwrap_err();
            assert_eq!(err.reason(), reason, "{body}: {err}");
        }
    }

    #[test]
    fn content_types() {
        let cases: Vec<(&str, bool, Option<PatchType>)> = vec![
            ("application/json-patch+json", true, Some(PatchType::Json)),
            (
                "application/merge-patch+json; charset=utf-8",
                false,
                Some(PatchType::Merge),
            ),
            (
                "application/strategic-merge-patch+json",
                true,
                Some(PatchType::Strategic),
            ),
            ("application/strategic-merge-patch+json", false, None),
            (
                "application/apply-patch+yaml",
                false,
                Some(PatchType::Apply),
            ),
            ("Application/Apply-Patch+YAML", true, Some(PatchType::Apply)),
            ("application/json", true, None),
            ("", true, None),
        ];
        for (ct, strategic, want) in cases {
            let got = PatchType::from_content_type(ct, strategic);
            match want {
                Some(t) => assert_eq!(got.unwrap(), t, "{ct}"),
                None => {
                    let err = got.unwrap_err();
                    assert_eq!(err.reason().code(), 415, "{ct}");
                    assert_eq!(err.reason().as_str(), "UnsupportedMediaType");
                }
            }
        }
        let err = PatchType::from_content_type("application/strategic-merge-patch+json", false)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "the body of the request was in an unknown format - accepted media types include: \
             application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml"
        );
    }

    #[test]
    fn apply_type_needs_the_apply_entry_point() {
        let err = apply_patch(PatchType::Apply, &pod(), b"{}", None).unwrap_err();
        assert!(matches!(err, PatchError::ApplyNeedsFieldManager));
    }
}
