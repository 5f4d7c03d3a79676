//! Every patch type kube-apiserver accepts, as pure synchronous functions over
//! `serde_json::Value`:
//!
//! - JSON patch (RFC 6902, `application/json-patch+json`),
//! - JSON merge patch (RFC 7386, `application/merge-patch+json`),
//! - strategic merge patch (`application/strategic-merge-patch+json`, built-in types
//!   only), with its directives,
//! - server-side apply (`application/apply-patch+yaml`) with field managers and
//!   `metadata.managedFields`, plus the bookkeeping every other write needs
//!   ([`track_update`]).
//!
//! Type knowledge (merge keys, list types) comes through the [`MergeInfo`] trait, so the
//! algorithms do not depend on one schema representation; `crate::schema::Schema`
//! implements it, and [`SchemaNode`] builds one by hand.
//!
//! # Wiring a PATCH request
//!
//! 1. [`PatchType::from_content_type`] (`strategic_supported` false for custom
//!    resources, which then get 415 like kube-apiserver answers).
//! 2. [`validate_patch_options`] on `fieldManager` and `force`.
//! 3. JSON, merge and strategic patches: [`apply_patch`] on the stored object, then
//!    [`track_update`] with the manager from [`manager_or_user_agent`].
//!    Server-side apply: [`server_side_apply`] (the stored object or `None`, which
//!    creates); it records managed fields itself.
//! 4. Create and update (PUT) call [`track_update`] too (`old` is `None` on create).
//!
//! Errors carry the status kube-apiserver answers with ([`Reason`]): `PatchError` and
//! `ApplyError` have `reason()`, and apply conflicts list their `StatusCause`s
//! (`FieldManagerConflict`) through [`ApplyError::conflicts`].
//!
//! # Known differences from kube-apiserver
//!
//! - Objects are never converted between API versions: managers recorded under another
//!   version of the same kind are compared with the same schema.
//! - For an `Update` that creates an object, every newly set object node is recorded
//!   with `.` (structured-merge-diff's rule for custom resources). Built-in objects in
//!   Kubernetes start from Go zero values, so their non-pointer structs (`f:spec`,
//!   `f:template`) carry no `.` there; ownership of leaves is the same.
//! - Unions (`x-kubernetes-unions`) are not normalized, and managed fields are not
//!   reconciled when a CRD's schema changes a field between atomic and granular.
//! - `null` values in an applied configuration are dropped before merging.

mod apply;
mod fieldset;
mod info;
mod json;
mod managed;
mod options;
mod schema_info;
mod strategic;
mod typed;

#[cfg(test)]
mod apply_tests;
#[cfg(test)]
mod robustness_tests;
#[cfg(test)]
mod strategic_tests;
#[cfg(test)]
mod testdata;

pub use apply::{ApplyError, Conflict, Manager, server_side_apply, track_update};
pub use fieldset::{FieldSet, FieldSetError, Path, PathElement};
pub use info::{ListType, MapType, MergeInfo, PatchStrategy, SchemaNode};
pub use managed::{ManagedFieldsEntry, ManagedFieldsError, Operation};
pub use options::{
    FIELD_MANAGER_MAX_LENGTH, manager_or_user_agent, validate_field_manager, validate_patch_options,
};
pub use strategic::StrategicError;

use serde_json::Value;

/// The status reason (and HTTP code) kube-apiserver answers a failed patch with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// 400 `BadRequest`.
    BadRequest,
    /// 422 `Invalid`.
    Invalid,
    /// 409 `Conflict`.
    Conflict,
    /// 413 `RequestEntityTooLarge`.
    RequestEntityTooLarge,
    /// 415 `UnsupportedMediaType`.
    UnsupportedMediaType,
    /// 500 with an empty reason: kube-apiserver passes some patch errors through
    /// unclassified, and clients see exactly that.
    Unknown,
}

impl Reason {
    /// The HTTP status code.
    pub fn code(self) -> u16 {
        match self {
            Self::BadRequest => 400,
            Self::Invalid => 422,
            Self::Conflict => 409,
            Self::RequestEntityTooLarge => 413,
            Self::UnsupportedMediaType => 415,
            Self::Unknown => 500,
        }
    }

    /// The `reason` field of the `Status` (empty for [`Reason::Unknown`]).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BadRequest => "BadRequest",
            Self::Invalid => "Invalid",
            Self::Conflict => "Conflict",
            Self::RequestEntityTooLarge => "RequestEntityTooLarge",
            Self::UnsupportedMediaType => "UnsupportedMediaType",
            Self::Unknown => "",
        }
    }
}

/// The patch types, by their `Content-Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchType {
    /// `application/json-patch+json`
    Json,
    /// `application/merge-patch+json`
    Merge,
    /// `application/strategic-merge-patch+json`
    Strategic,
    /// `application/apply-patch+yaml`
    Apply,
}

impl PatchType {
    /// The media type of this patch type.
    pub fn media_type(self) -> &'static str {
        match self {
            Self::Json => "application/json-patch+json",
            Self::Merge => "application/merge-patch+json",
            Self::Strategic => "application/strategic-merge-patch+json",
            Self::Apply => "application/apply-patch+yaml",
        }
    }

    /// Reads a request's `Content-Type` (parameters such as `; charset=utf-8` are
    /// ignored). `strategic_supported` is false for custom resources: kube-apiserver then
    /// answers 415 to a strategic merge patch, as to any unknown type.
    pub fn from_content_type(
        content_type: &str,
        strategic_supported: bool,
    ) -> Result<Self, PatchError> {
        let media = content_type.split(';').next().unwrap_or_default().trim();
        let accepted: &[Self] = if strategic_supported {
            &[Self::Json, Self::Merge, Self::Strategic, Self::Apply]
        } else {
            &[Self::Json, Self::Merge, Self::Apply]
        };
        accepted
            .iter()
            .copied()
            .find(|t| t.media_type().eq_ignore_ascii_case(media))
            .ok_or_else(|| PatchError::UnsupportedMediaType {
                accepted: accepted
                    .iter()
                    .map(|t| t.media_type())
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }
}

/// Why a JSON, merge or strategic merge patch failed.
#[derive(Debug, thiserror::Error)]
pub enum PatchError {
    /// The `Content-Type` is not a patch type this resource accepts.
    #[error(
        "the body of the request was in an unknown format - accepted media types include: {accepted}"
    )]
    UnsupportedMediaType {
        /// The accepted media types, comma-separated, as kube-apiserver lists them.
        accepted: String,
    },
    /// The body is not valid JSON, or not of the shape the patch type needs.
    #[error("{0}")]
    Decode(String),
    /// A JSON patch with more operations than kube-apiserver allows.
    #[error("The allowed maximum operations in a JSON patch is {max}, got {got}")]
    TooManyOperations {
        /// The limit (10000).
        max: usize,
        /// Operations in the patch.
        got: usize,
    },
    /// A JSON patch operation could not be applied (including a failed `test`).
    #[error("{0}")]
    JsonPatchFailed(String),
    /// A JSON merge patch whose result is not an object.
    #[error("{0}")]
    NotAnObject(String),
    /// A strategic merge patch could not be applied.
    #[error(transparent)]
    Strategic(#[from] StrategicError),
    /// Server-side apply bodies go through [`server_side_apply`], which needs a field
    /// manager.
    #[error("apply patches need a field manager and are applied with server_side_apply")]
    ApplyNeedsFieldManager,
}

impl PatchError {
    /// The status kube-apiserver answers with.
    pub fn reason(&self) -> Reason {
        match self {
            Self::UnsupportedMediaType { .. } => Reason::UnsupportedMediaType,
            Self::Decode(_) => Reason::BadRequest,
            Self::TooManyOperations { .. } => Reason::RequestEntityTooLarge,
            Self::JsonPatchFailed(_) | Self::NotAnObject(_) => Reason::Invalid,
            Self::Strategic(e) => e.reason(),
            Self::ApplyNeedsFieldManager => Reason::BadRequest,
        }
    }
}

/// Applies a JSON, JSON merge or strategic merge patch to `live` and returns the patched
/// object. `info` is the merge metadata of the object's type (used by strategic merge
/// patch only; `None` merges every list by replacement).
///
/// The result still carries `live`'s `metadata.managedFields` unless the patch changed
/// them; call [`track_update`] afterwards to record the write's field manager.
pub fn apply_patch(
    kind: PatchType,
    live: &Value,
    body: &[u8],
    info: Option<&dyn MergeInfo>,
) -> Result<Value, PatchError> {
    match kind {
        PatchType::Json => json::json_patch(live, body),
        PatchType::Merge => json::merge_patch(live, body),
        PatchType::Strategic => {
            let patch = json::decode_object(body)?;
            Ok(strategic::strategic_merge_patch(live, &patch, info)?)
        }
        PatchType::Apply => Err(PatchError::ApplyNeedsFieldManager),
    }
}
