//! Applying a patch body to the current object.
//!
//! Interim: until the `patch` module lands, strategic merge patch and server-side
//! apply fall back to JSON merge patch semantics (no merge keys, no managedFields).

use serde_json::Value;

use super::ApiError;

/// The patch types of kube's PATCH verb, by Content-Type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchKind {
    /// `application/json-patch+json` (RFC 6902).
    Json,
    /// `application/merge-patch+json` (RFC 7386).
    Merge,
    /// `application/strategic-merge-patch+json`.
    Strategic,
    /// `application/apply-patch+yaml` (server-side apply).
    Apply,
}

impl PatchKind {
    /// The kind for a Content-Type (parameters ignored).
    pub fn from_content_type(ct: &str) -> Option<Self> {
        match ct.split(';').next().unwrap_or("").trim() {
            "application/json-patch+json" => Some(PatchKind::Json),
            "application/merge-patch+json" => Some(PatchKind::Merge),
            "application/strategic-merge-patch+json" => Some(PatchKind::Strategic),
            "application/apply-patch+yaml" | "application/apply-patch+json" => {
                Some(PatchKind::Apply)
            }
            _ => None,
        }
    }
}

/// Decodes a patch body (JSON, or YAML for apply).
pub fn decode_patch(kind: PatchKind, body: &[u8]) -> Result<Value, ApiError> {
    let parsed = match kind {
        PatchKind::Apply => serde_saphyr::from_slice::<Value>(body)
            .map_err(|e| ApiError::BadRequest(format!("error decoding YAML: {e}"))),
        _ => serde_json::from_slice::<Value>(body)
            .map_err(|e| ApiError::BadRequest(format!("error decoding patch: {e}"))),
    }?;
    Ok(parsed)
}

/// The object after applying `patch` to `current`.
pub fn apply_patch(current: &Value, kind: PatchKind, patch: &Value) -> Result<Value, ApiError> {
    let mut doc = current.clone();
    match kind {
        PatchKind::Json => {
            let p: json_patch::Patch = serde_json::from_value(patch.clone())
                .map_err(|e| ApiError::BadRequest(format!("error decoding patch: {e}")))?;
            json_patch::patch(&mut doc, &p).map_err(|e| ApiError::Invalid {
                subject: Default::default(),
                causes: vec![super::Cause {
                    reason: "FieldValueInvalid".into(),
                    message: e.to_string(),
                    field: String::new(),
                }],
            })?;
        }
        PatchKind::Merge | PatchKind::Strategic | PatchKind::Apply => {
            if !patch.is_object() {
                return Err(ApiError::BadRequest(
                    "patch body must be a JSON object".into(),
                ));
            }
            json_patch::merge(&mut doc, patch);
        }
    }
    Ok(doc)
}
