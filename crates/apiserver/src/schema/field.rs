//! Field paths and field errors shaped like `k8s.io/apimachinery/pkg/util/validation/field`.
//!
//! Clients (kubectl above all) print these strings as they are, so their shape follows
//! kube-apiserver's: `spec.ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive`.

use std::fmt;

use serde_json::{Value, json};

/// A path to a field inside an object, printed as Kubernetes prints it:
/// `spec.containers[0].ports[1].containerPort`, `metadata.labels[app]`.
///
/// The root path is empty; children are joined with `.`, list indexes and map keys are
/// written in brackets.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FieldPath(String);

impl FieldPath {
    /// The empty path (the object itself).
    pub fn root() -> Self {
        Self(String::new())
    }

    /// A path made of the given dotted segments, e.g. `FieldPath::new("spec.ports")`.
    pub fn new(path: &str) -> Self {
        Self(path.to_owned())
    }

    /// The path of a named child field.
    pub fn child(&self, name: &str) -> Self {
        if self.0.is_empty() {
            Self(name.to_owned())
        } else {
            Self(format!("{}.{name}", self.0))
        }
    }

    /// The path of a list item.
    pub fn index(&self, index: usize) -> Self {
        Self(format!("{}[{index}]", self.0))
    }

    /// The path of a map entry (map keys and schema `properties[...]`).
    pub fn key(&self, key: &str) -> Self {
        Self(format!("{}[{key}]", self.0))
    }

    /// Whether this is the root path.
    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }

    /// The path as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A path built while walking a value, turned into a [`FieldPath`] only when an error
/// (or a pruned field) needs it, so that walks allocate nothing for valid data.
#[derive(Clone, Copy)]
pub(crate) enum LazyPath<'a> {
    /// Where the walk started.
    Root(&'a FieldPath),
    /// A named child of a parent.
    Field(&'a LazyPath<'a>, &'a str),
    /// A list item of a parent.
    Index(&'a LazyPath<'a>, usize),
}

impl LazyPath<'_> {
    /// The materialized path.
    pub(crate) fn get(&self) -> FieldPath {
        match self {
            Self::Root(p) => (*p).clone(),
            Self::Field(parent, name) => parent.get().child(name),
            Self::Index(parent, i) => parent.get().index(*i),
        }
    }
}

/// The type of a field error; each maps to a `metav1.CauseType` (the `reason` of a
/// `Status` cause) and to the words kube-apiserver prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// A referenced object or field was not found.
    NotFound,
    /// A required field is missing.
    Required,
    /// A value that must be unique is repeated.
    Duplicate,
    /// A value is malformed or out of range.
    Invalid,
    /// A value is not one of the supported values of an enumeration.
    NotSupported,
    /// A field may not be set (or changed) in this context.
    Forbidden,
    /// A value is longer than allowed.
    TooLong,
    /// A list or map has more items than allowed.
    TooMany,
    /// The server failed while validating.
    Internal,
    /// A value has the wrong JSON type.
    TypeInvalid,
}

impl ErrorKind {
    /// The `reason` of a `Status` cause, e.g. `FieldValueInvalid`.
    pub fn cause_type(self) -> &'static str {
        match self {
            Self::NotFound => "FieldValueNotFound",
            Self::Required => "FieldValueRequired",
            Self::Duplicate => "FieldValueDuplicate",
            Self::Invalid => "FieldValueInvalid",
            Self::NotSupported => "FieldValueNotSupported",
            Self::Forbidden => "FieldValueForbidden",
            Self::TooLong => "FieldValueTooLong",
            Self::TooMany => "FieldValueTooMany",
            Self::Internal => "InternalError",
            Self::TypeInvalid => "FieldValueTypeInvalid",
        }
    }

    /// The words kube-apiserver prints for this kind, e.g. `Invalid value`.
    pub fn words(self) -> &'static str {
        match self {
            Self::NotFound => "Not found",
            Self::Required => "Required value",
            Self::Duplicate => "Duplicate value",
            Self::Invalid | Self::TypeInvalid => "Invalid value",
            Self::NotSupported => "Unsupported value",
            Self::Forbidden => "Forbidden",
            Self::TooLong => "Too long",
            Self::TooMany => "Too many",
            Self::Internal => "Internal error",
        }
    }
}

/// One validation failure: a field path, a kind, the offending value (if it is shown)
/// and a detail message.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldError {
    /// What kind of failure this is.
    pub kind: ErrorKind,
    /// Where it is.
    pub field: FieldPath,
    /// The offending value, printed after the kind when present.
    pub bad_value: Option<Value>,
    /// What is wrong, in words (may be empty).
    pub detail: String,
}

impl FieldError {
    /// A missing required field.
    pub fn required(field: FieldPath, detail: impl Into<String>) -> Self {
        Self {
            kind: ErrorKind::Required,
            field,
            bad_value: None,
            detail: detail.into(),
        }
    }

    /// A malformed or out-of-range value.
    pub fn invalid(field: FieldPath, value: impl Into<Value>, detail: impl Into<String>) -> Self {
        Self {
            kind: ErrorKind::Invalid,
            field,
            bad_value: Some(value.into()),
            detail: detail.into(),
        }
    }

    /// A value of the wrong JSON type.
    pub fn type_invalid(
        field: FieldPath,
        value: impl Into<Value>,
        detail: impl Into<String>,
    ) -> Self {
        Self {
            kind: ErrorKind::TypeInvalid,
            field,
            bad_value: Some(value.into()),
            detail: detail.into(),
        }
    }

    /// A value that is not one of `supported`.
    pub fn not_supported<S: AsRef<str>>(
        field: FieldPath,
        value: impl Into<Value>,
        supported: &[S],
    ) -> Self {
        let detail = if supported.is_empty() {
            String::new()
        } else {
            let quoted: Vec<String> = supported.iter().map(|s| go_quote(s.as_ref())).collect();
            format!("supported values: {}", quoted.join(", "))
        };
        Self {
            kind: ErrorKind::NotSupported,
            field,
            bad_value: Some(value.into()),
            detail,
        }
    }

    /// A field that may not be set or changed.
    pub fn forbidden(field: FieldPath, detail: impl Into<String>) -> Self {
        Self {
            kind: ErrorKind::Forbidden,
            field,
            bad_value: None,
            detail: detail.into(),
        }
    }

    /// A repeated value that must be unique.
    pub fn duplicate(field: FieldPath, value: impl Into<Value>) -> Self {
        Self {
            kind: ErrorKind::Duplicate,
            field,
            bad_value: Some(value.into()),
            detail: String::new(),
        }
    }

    /// A value longer than `max` bytes (the value itself is not printed).
    pub fn too_long(field: FieldPath, max: usize) -> Self {
        let unit = if max == 1 { "byte" } else { "bytes" };
        Self {
            kind: ErrorKind::TooLong,
            field,
            bad_value: None,
            detail: format!("may not be more than {max} {unit}"),
        }
    }

    /// A list or map with `actual` items where at most `max` are allowed.
    pub fn too_many(field: FieldPath, actual: usize, max: usize) -> Self {
        Self {
            kind: ErrorKind::TooMany,
            field,
            bad_value: Some(json!(actual)),
            detail: format!("must have at most {max} items"),
        }
    }

    /// A referenced thing that does not exist.
    pub fn not_found(field: FieldPath, value: impl Into<Value>) -> Self {
        Self {
            kind: ErrorKind::NotFound,
            field,
            bad_value: Some(value.into()),
            detail: String::new(),
        }
    }

    /// An internal failure while validating this field.
    pub fn internal(field: FieldPath, detail: impl Into<String>) -> Self {
        Self {
            kind: ErrorKind::Internal,
            field,
            bad_value: None,
            detail: detail.into(),
        }
    }

    /// The message without the field path, as in a `Status` cause's `message`:
    /// `Invalid value: 0: must be between 1 and 65535, inclusive`.
    pub fn body(&self) -> String {
        let mut s = self.kind.words().to_owned();
        let shows_value = !matches!(
            self.kind,
            ErrorKind::Required | ErrorKind::Forbidden | ErrorKind::TooLong | ErrorKind::Internal
        );
        if shows_value && let Some(value) = &self.bad_value {
            s.push_str(": ");
            s.push_str(&render_value(value));
        }
        if !self.detail.is_empty() {
            s.push_str(": ");
            s.push_str(&self.detail);
        }
        s
    }

    /// This error as a `Status` `details.causes` entry.
    pub fn to_cause(&self) -> Value {
        json!({
            "reason": self.kind.cause_type(),
            "message": self.body(),
            "field": self.field.as_str(),
        })
    }

    /// The same error moved under `prefix` (used when a nested object is validated on
    /// its own and its errors are reported inside the parent).
    pub fn prefixed(mut self, prefix: &FieldPath) -> Self {
        if !prefix.is_root() {
            self.field = if self.field.is_root() {
                prefix.clone()
            } else if self.field.as_str().starts_with('[') {
                FieldPath(format!("{prefix}{}", self.field))
            } else {
                FieldPath(format!("{prefix}.{}", self.field))
            };
        }
        self
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_root() {
            f.write_str(&self.body())
        } else {
            write!(f, "{}: {}", self.field, self.body())
        }
    }
}

/// The message of an `Invalid` `Status` as kube-apiserver writes it:
/// `Service "x" is invalid: spec.ports[0].port: ...` for one error and
/// `Service "x" is invalid: [a, b]` for several.
pub fn invalid_message(kind: &str, name: &str, errors: &[FieldError]) -> String {
    let list = match errors {
        [] => String::new(),
        [one] => one.to_string(),
        many => format!(
            "[{}]",
            many.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    format!("{kind} {} is invalid: {list}", go_quote(name))
}

/// The `details.causes` array of an `Invalid` `Status`.
pub fn causes(errors: &[FieldError]) -> Value {
    Value::Array(errors.iter().map(FieldError::to_cause).collect())
}

/// Go's `%q` for a string: JSON string escaping is the same for every character that
/// appears in Kubernetes names and messages.
pub(crate) fn go_quote(s: &str) -> String {
    Value::String(s.to_owned()).to_string()
}

/// How Go's `%v`/`%q` print a bad value: strings quoted, numbers and booleans bare,
/// `null` for nil, anything else as compact JSON.
fn render_value(value: &Value) -> String {
    match value {
        Value::Null => "\"null\"".to_owned(),
        Value::String(s) => go_quote(s),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_print_like_kubernetes() {
        let p = FieldPath::root()
            .child("spec")
            .child("ports")
            .index(0)
            .child("port");
        assert_eq!(p.to_string(), "spec.ports[0].port");
        assert_eq!(
            FieldPath::new("metadata")
                .child("labels")
                .key("app")
                .to_string(),
            "metadata.labels[app]"
        );
    }

    #[test]
    fn messages_match_kube_apiserver() {
        let e = FieldError::invalid(
            FieldPath::new("spec.ports[0].port"),
            0,
            "must be between 1 and 65535, inclusive",
        );
        assert_eq!(
            e.to_string(),
            "spec.ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive"
        );
        let e = FieldError::required(FieldPath::new("spec.ports"), "");
        assert_eq!(e.to_string(), "spec.ports: Required value");
        let e = FieldError::not_supported(
            FieldPath::new("spec.type"),
            "Foo",
            &["ClusterIP", "NodePort"],
        );
        assert_eq!(
            e.to_string(),
            "spec.type: Unsupported value: \"Foo\": supported values: \"ClusterIP\", \"NodePort\""
        );
        let e = FieldError::too_long(FieldPath::new("metadata.name"), 63);
        assert_eq!(
            e.to_string(),
            "metadata.name: Too long: may not be more than 63 bytes"
        );
        let e = FieldError::too_many(FieldPath::new("spec.items"), 4, 3);
        assert_eq!(
            e.to_string(),
            "spec.items: Too many: 4: must have at most 3 items"
        );
        let e = FieldError::duplicate(FieldPath::new("spec.ports[1].name"), "http");
        assert_eq!(
            e.to_string(),
            "spec.ports[1].name: Duplicate value: \"http\""
        );
    }

    #[test]
    fn status_message_and_causes() {
        let errs = vec![FieldError::invalid(
            FieldPath::new("spec.ports[0].port"),
            0,
            "must be between 1 and 65535, inclusive",
        )];
        assert_eq!(
            invalid_message("Service", "x", &errs),
            "Service \"x\" is invalid: spec.ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive"
        );
        let two = vec![
            errs[0].clone(),
            FieldError::required(FieldPath::new("spec.ports[1].name"), ""),
        ];
        assert_eq!(
            invalid_message("Service", "x", &two),
            "Service \"x\" is invalid: [spec.ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive, spec.ports[1].name: Required value]"
        );
        assert_eq!(
            causes(&errs),
            json!([{"reason": "FieldValueInvalid", "message": "Invalid value: 0: must be between 1 and 65535, inclusive", "field": "spec.ports[0].port"}])
        );
    }

    #[test]
    fn prefixing_nested_errors() {
        let e = FieldError::required(FieldPath::new("name"), "")
            .prefixed(&FieldPath::new("spec.template"));
        assert_eq!(e.field.as_str(), "spec.template.name");
        let e =
            FieldError::required(FieldPath::root().index(2), "").prefixed(&FieldPath::new("items"));
        assert_eq!(e.field.as_str(), "items[2]");
    }
}
