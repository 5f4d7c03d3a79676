//! API errors and the `Status` objects kube-apiserver answers them with.

use serde_json::{Value, json};

use crate::registry::ResourceInfo;

/// One field problem of an `Invalid` (or apply `Conflict`) error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cause {
    /// `FieldValueInvalid`, `FieldValueRequired`, `FieldManagerConflict`, ...
    pub reason: String,
    /// The message without the field (`Invalid value: 0: must be ...`).
    pub message: String,
    /// The field path.
    pub field: String,
}

impl Cause {
    /// `Required value` cause.
    pub fn required(field: &str, detail: &str) -> Self {
        let message = if detail.is_empty() {
            "Required value".to_owned()
        } else {
            format!("Required value: {detail}")
        };
        Cause {
            reason: "FieldValueRequired".into(),
            message,
            field: field.into(),
        }
    }

    /// `Invalid value: <value>: detail` cause.
    pub fn invalid(field: &str, value: &Value, detail: &str) -> Self {
        Cause {
            reason: "FieldValueInvalid".into(),
            message: format!("Invalid value: {value}: {detail}"),
            field: field.into(),
        }
    }

    /// `Forbidden: detail` cause.
    pub fn forbidden(field: &str, detail: &str) -> Self {
        Cause {
            reason: "FieldValueForbidden".into(),
            message: format!("Forbidden: {detail}"),
            field: field.into(),
        }
    }

    /// The cause of a schema or validation field error.
    pub fn from_field_error(e: &crate::schema::FieldError) -> Self {
        Cause {
            reason: e.kind.cause_type().into(),
            message: e.body(),
            field: e.field.as_str().to_owned(),
        }
    }

    /// `field: message`, as the top-level message lists causes.
    fn full(&self) -> String {
        if self.field.is_empty() {
            self.message.clone()
        } else {
            format!("{}: {}", self.field, self.message)
        }
    }
}

/// Who an error is about: the resource (plural, group) and object name.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Subject {
    /// Resource group.
    pub group: String,
    /// Plural resource name (kube puts it in `details.kind` for most reasons).
    pub plural: String,
    /// Kind, used by `Invalid`.
    pub kind: String,
    /// Object name, possibly empty.
    pub name: String,
}

impl Subject {
    /// Subject for `name` of `resource`.
    pub fn of(resource: &ResourceInfo, name: &str) -> Self {
        Subject {
            group: resource.group.clone(),
            plural: resource.plural.clone(),
            kind: resource.kind.clone(),
            name: name.to_owned(),
        }
    }

    /// `Service`, or `EndpointSlice.discovery.k8s.io` for grouped kinds.
    fn qualified_kind(&self) -> String {
        if self.group.is_empty() {
            self.kind.clone()
        } else {
            format!("{}.{}", self.kind, self.group)
        }
    }

    fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.plural.clone()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }
}

/// Every way an API request fails, each mapping to one kube `Status` reason.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum ApiError {
    /// 404 NotFound for an object.
    #[error("{} {:?} not found", .0.qualified(), .0.name)]
    NotFound(Subject),
    /// 404 NotFound for a path that is not served.
    #[error("the server could not find the requested resource")]
    NoRoute,
    /// 409 AlreadyExists.
    #[error("{} {:?} already exists", .0.qualified(), .0.name)]
    AlreadyExists(Subject),
    /// 409 Conflict on a stale resourceVersion.
    #[error("Operation cannot be fulfilled on {} {:?}: {}", .subject.qualified(), .subject.name, .detail)]
    Conflict {
        /// The object.
        subject: Subject,
        /// Why (`the object has been modified; ...`).
        detail: String,
    },
    /// 422 Invalid with field causes.
    #[error("{} {:?} is invalid: {}", .subject.qualified_kind(), .subject.name, join_causes(.causes))]
    Invalid {
        /// The object.
        subject: Subject,
        /// Field problems.
        causes: Vec<Cause>,
    },
    /// 400 BadRequest.
    #[error("{0}")]
    BadRequest(String),
    /// 401 Unauthorized.
    #[error("Unauthorized")]
    Unauthorized,
    /// 403 Forbidden.
    #[error("{0}")]
    Forbidden(String),
    /// 405 MethodNotAllowed.
    #[error("the server does not allow this method on the requested resource")]
    MethodNotAllowed,
    /// 406 NotAcceptable.
    #[error("{0}")]
    NotAcceptable(String),
    /// 410 Gone (`Expired`): a resourceVersion or continue token is too old.
    #[error("{0}")]
    Expired(String),
    /// 413 RequestEntityTooLarge.
    #[error("Request entity too large: limit is {0}")]
    TooLarge(usize),
    /// 415 UnsupportedMediaType.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// 429 TooManyRequests.
    #[error("{0}")]
    TooManyRequests(String),
    /// 500 InternalError.
    #[error("Internal error occurred: {0}")]
    Internal(String),
    /// 504 Timeout.
    #[error("{0}")]
    Timeout(String),
    /// A status a lower layer decided on (patch and apply errors).
    #[error("{}", .0.message)]
    Other(Box<OtherStatus>),
}

/// A `Status` decided outside this module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtherStatus {
    /// HTTP code.
    pub code: u16,
    /// `reason` (may be empty).
    pub reason: &'static str,
    /// `message`.
    pub message: String,
    /// The object concerned.
    pub subject: Subject,
    /// `details.causes`.
    pub causes: Vec<Cause>,
}

fn join_causes(causes: &[Cause]) -> String {
    match causes {
        [one] => one.full(),
        many => format!(
            "[{}]",
            many.iter().map(Cause::full).collect::<Vec<_>>().join(", ")
        ),
    }
}

/// The `Status` conflict message kube uses for stale updates.
pub const MODIFIED: &str =
    "the object has been modified; please apply your changes to the latest version and try again";

impl ApiError {
    /// 409 on a stale resourceVersion.
    pub fn modified(subject: Subject) -> Self {
        ApiError::Conflict {
            subject,
            detail: MODIFIED.into(),
        }
    }

    /// HTTP status code.
    pub fn code(&self) -> u16 {
        match self {
            ApiError::NotFound(_) | ApiError::NoRoute => 404,
            ApiError::AlreadyExists(_) | ApiError::Conflict { .. } => 409,
            ApiError::Invalid { .. } => 422,
            ApiError::BadRequest(_) => 400,
            ApiError::Unauthorized => 401,
            ApiError::Forbidden(_) => 403,
            ApiError::MethodNotAllowed => 405,
            ApiError::NotAcceptable(_) => 406,
            ApiError::Expired(_) => 410,
            ApiError::TooLarge(_) => 413,
            ApiError::UnsupportedMediaType(_) => 415,
            ApiError::TooManyRequests(_) => 429,
            ApiError::Internal(_) => 500,
            ApiError::Timeout(_) => 504,
            ApiError::Other(o) => o.code,
        }
    }

    /// The `reason` field.
    pub fn reason(&self) -> &'static str {
        match self {
            ApiError::NotFound(_) | ApiError::NoRoute => "NotFound",
            ApiError::AlreadyExists(_) => "AlreadyExists",
            ApiError::Conflict { .. } => "Conflict",
            ApiError::Invalid { .. } => "Invalid",
            ApiError::BadRequest(_) => "BadRequest",
            ApiError::Unauthorized => "Unauthorized",
            ApiError::Forbidden(_) => "Forbidden",
            ApiError::MethodNotAllowed => "MethodNotAllowed",
            ApiError::NotAcceptable(_) => "NotAcceptable",
            ApiError::Expired(_) => "Expired",
            ApiError::TooLarge(_) => "RequestEntityTooLarge",
            ApiError::UnsupportedMediaType(_) => "UnsupportedMediaType",
            ApiError::TooManyRequests(_) => "TooManyRequests",
            ApiError::Internal(_) => "InternalError",
            ApiError::Timeout(_) => "Timeout",
            ApiError::Other(o) => o.reason,
        }
    }

    /// The `Status` object for this error.
    pub fn status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.to_string(),
            "reason": self.reason(),
            "code": self.code(),
        });
        let details = match self {
            ApiError::NotFound(s)
            | ApiError::AlreadyExists(s)
            | ApiError::Conflict { subject: s, .. } => Some(details(s, &s.plural)),
            ApiError::Invalid { subject, causes } => {
                let mut d = details(subject, &subject.kind);
                d["causes"] = causes
                    .iter()
                    .map(|c| json!({"reason": c.reason, "message": c.message, "field": c.field}))
                    .collect();
                Some(d)
            }
            ApiError::Other(o) if !o.subject.plural.is_empty() || !o.causes.is_empty() => {
                let mut d = details(&o.subject, &o.subject.plural);
                if !o.causes.is_empty() {
                    d["causes"] = o
                        .causes
                        .iter()
                        .map(
                            |c| json!({"reason": c.reason, "message": c.message, "field": c.field}),
                        )
                        .collect();
                }
                Some(d)
            }
            _ => None,
        };
        if let Some(d) = details {
            status["details"] = d;
        }
        status
    }
}

impl ApiError {
    /// The `Status` as kube-apiserver writes it: the fields in Go's order
    /// (`kind`, `apiVersion`, `metadata`, `status`, `message`, `reason`,
    /// `details`, `code`) and a trailing newline.
    pub fn status_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256);
        write_ordered(&mut out, &self.status(), STATUS_ORDER);
        out.push(b'\n');
        out
    }
}

const STATUS_ORDER: &[&str] = &[
    "kind",
    "apiVersion",
    "metadata",
    "status",
    "message",
    "reason",
    "details",
    "code",
];
const DETAILS_ORDER: &[&str] = &[
    "name",
    "group",
    "kind",
    "uid",
    "causes",
    "retryAfterSeconds",
];
const CAUSE_ORDER: &[&str] = &["reason", "message", "field"];

/// Writes a JSON object with the keys of `order` first, in that order (then any
/// other), as Go's encoder writes a struct; `details` and its `causes` likewise.
fn write_ordered(out: &mut Vec<u8>, v: &Value, order: &[&str]) {
    let Some(map) = v.as_object() else {
        let _ = serde_json::to_writer(&mut *out, v);
        return;
    };
    let keys = order
        .iter()
        .copied()
        .filter(|k| map.contains_key(*k))
        .chain(
            map.keys()
                .map(String::as_str)
                .filter(|k| !order.contains(k)),
        );
    out.push(b'{');
    for (i, key) in keys.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        let _ = serde_json::to_writer(&mut *out, key);
        out.push(b':');
        match (key, &map[key]) {
            ("details", d) => write_ordered(out, d, DETAILS_ORDER),
            ("causes", Value::Array(causes)) => {
                out.push(b'[');
                for (j, c) in causes.iter().enumerate() {
                    if j > 0 {
                        out.push(b',');
                    }
                    write_ordered(out, c, CAUSE_ORDER);
                }
                out.push(b']');
            }
            (_, value) => {
                let _ = serde_json::to_writer(&mut *out, value);
            }
        }
    }
    out.push(b'}');
}

fn details(subject: &Subject, kind: &str) -> Value {
    let mut d = json!({"name": subject.name, "kind": kind});
    if !subject.group.is_empty() {
        d["group"] = json!(subject.group);
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    fn svc(name: &str) -> Subject {
        Subject {
            group: String::new(),
            plural: "services".into(),
            kind: "Service".into(),
            name: name.into(),
        }
    }

    #[test]
    fn status_text_is_kube_apiservers() {
        let text = String::from_utf8(ApiError::NotFound(svc("x")).status_bytes()).unwrap();
        assert_eq!(
            text,
            "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\",\"message\":\"services \\\"x\\\" not found\",\"reason\":\"NotFound\",\"details\":{\"name\":\"x\",\"kind\":\"services\"},\"code\":404}\n"
        );
        let invalid = ApiError::Invalid {
            subject: svc("x"),
            causes: vec![Cause::required("spec.ports", "Required value")],
        };
        let text = String::from_utf8(invalid.status_bytes()).unwrap();
        assert!(
            text.contains("\"details\":{\"name\":\"x\",\"kind\":\"Service\",\"causes\":[{\"reason\":\"FieldValueRequired\",\"message\":"),
            "{text}"
        );
        assert!(text.ends_with(",\"code\":422}\n"), "{text}");
    }

    #[test]
    fn not_found_reads_like_kube() {
        let s = ApiError::NotFound(svc("x")).status();
        assert_eq!(s["message"], "services \"x\" not found");
        assert_eq!(s["reason"], "NotFound");
        assert_eq!(s["code"], 404);
        assert_eq!(s["details"], json!({"name": "x", "kind": "services"}));
    }

    #[test]
    fn conflict_reads_like_kube() {
        let e = ApiError::modified(svc("x"));
        assert_eq!(
            e.to_string(),
            "Operation cannot be fulfilled on services \"x\": the object has been modified; please apply your changes to the latest version and try again"
        );
        assert_eq!(e.code(), 409);
    }

    #[test]
    fn grouped_not_found_is_qualified() {
        let subject = Subject {
            group: "coordination.k8s.io".into(),
            plural: "leases".into(),
            kind: "Lease".into(),
            name: "l".into(),
        };
        let s = ApiError::NotFound(subject).status();
        assert_eq!(s["message"], "leases.coordination.k8s.io \"l\" not found");
        assert_eq!(s["details"]["group"], "coordination.k8s.io");
    }

    #[test]
    fn invalid_lists_causes() {
        let e = ApiError::Invalid {
            subject: svc("x"),
            causes: vec![
                Cause::required("metadata.name", "name or generateName is required"),
                Cause::invalid(
                    "spec.ports[0].port",
                    &json!(0),
                    "must be between 1 and 65535, inclusive",
                ),
            ],
        };
        let s = e.status();
        assert_eq!(
            s["message"],
            "Service \"x\" is invalid: [metadata.name: Required value: name or generateName is required, spec.ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive]"
        );
        assert_eq!(s["details"]["kind"], "Service");
        assert_eq!(s["details"]["causes"][1]["field"], "spec.ports[0].port");
        assert_eq!(s["code"], 422);
    }
}
