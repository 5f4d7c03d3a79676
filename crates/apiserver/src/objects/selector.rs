//! Label selectors and field selectors, as list and watch requests give them.

use serde_json::Value;

use super::ApiError;
use crate::registry::ResourceInfo;

#[derive(Debug, Clone, PartialEq, Eq)]
enum LabelReq {
    Exists(String),
    NotExists(String),
    Eq(String, String),
    NotEq(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Gt(String, i64),
    Lt(String, i64),
}

/// A parsed label selector (`app=web,tier in (fe,be),!canary`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelSelector {
    reqs: Vec<LabelReq>,
}

fn bad(msg: impl Into<String>) -> ApiError {
    ApiError::BadRequest(msg.into())
}

/// Splits on commas that are not inside parentheses.
fn split_top_level(s: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut depth = 0i32;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&s[start..]);
    parts
}

fn valid_key(k: &str) -> bool {
    !k.is_empty()
        && k.len() <= 317
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'))
}

fn valid_value(v: &str) -> bool {
    v.len() <= 63
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

fn parse_set(key: &str, rest: &str) -> Result<Vec<String>, ApiError> {
    let inner = rest
        .trim()
        .strip_prefix('(')
        .and_then(|r| r.strip_suffix(')'))
        .ok_or_else(|| {
            bad(format!(
                "unable to parse requirement: found '{rest}', expected: '('"
            ))
        })?;
    let values: Vec<String> = inner
        .split(',')
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
        .collect();
    if values.is_empty() || values.iter().any(|v| !valid_value(v)) {
        return Err(bad(format!(
            "unable to parse requirement: invalid values for key {key:?}"
        )));
    }
    Ok(values)
}

impl LabelSelector {
    /// Parses the `labelSelector` query parameter.
    pub fn parse(s: &str) -> Result<Self, ApiError> {
        let mut reqs = Vec::new();
        if s.trim().is_empty() {
            return Ok(LabelSelector { reqs });
        }
        for part in split_top_level(s) {
            let part = part.trim();
            if part.is_empty() {
                return Err(bad(format!(
                    "unable to parse requirement: found '', in {s:?}"
                )));
            }
            reqs.push(Self::parse_req(part)?);
        }
        Ok(LabelSelector { reqs })
    }

    fn parse_req(part: &str) -> Result<LabelReq, ApiError> {
        if let Some(key) = part.strip_prefix('!') {
            let key = key.trim();
            return valid_key(key)
                .then(|| LabelReq::NotExists(key.to_owned()))
                .ok_or_else(|| bad(format!("invalid label key {key:?}")));
        }
        let words: Vec<&str> = part.splitn(2, char::is_whitespace).collect();
        if let [key, rest] = words.as_slice() {
            let rest = rest.trim_start();
            if let Some(set) = rest.strip_prefix("notin") {
                return Ok(LabelReq::NotIn((*key).to_owned(), parse_set(key, set)?));
            }
            if let Some(set) = rest.strip_prefix("in") {
                return Ok(LabelReq::In((*key).to_owned(), parse_set(key, set)?));
            }
        }
        for (op, mk) in [
            ("!=", LabelReq::NotEq as fn(String, String) -> LabelReq),
            ("==", LabelReq::Eq),
            ("=", LabelReq::Eq),
        ] {
            if let Some((k, v)) = part.split_once(op) {
                let (k, v) = (k.trim(), v.trim());
                if !valid_key(k) || !valid_value(v) {
                    return Err(bad(format!("unable to parse requirement: {part:?}")));
                }
                return Ok(mk(k.to_owned(), v.to_owned()));
            }
        }
        for (op, gt) in [(">", true), ("<", false)] {
            if let Some((k, v)) = part.split_once(op) {
                let n = v
                    .trim()
                    .parse::<i64>()
                    .map_err(|_| bad(format!("unable to parse requirement: {part:?}")))?;
                let k = k.trim().to_owned();
                return Ok(if gt {
                    LabelReq::Gt(k, n)
                } else {
                    LabelReq::Lt(k, n)
                });
            }
        }
        if valid_key(part) {
            return Ok(LabelReq::Exists(part.to_owned()));
        }
        Err(bad(format!("unable to parse requirement: {part:?}")))
    }

    /// Whether the selector selects everything.
    pub fn is_empty(&self) -> bool {
        self.reqs.is_empty()
    }

    /// Whether an object's labels match.
    pub fn matches(&self, obj: &Value) -> bool {
        let labels = &obj["metadata"]["labels"];
        let get = |k: &str| labels.get(k).and_then(Value::as_str);
        self.reqs.iter().all(|r| match r {
            LabelReq::Exists(k) => get(k).is_some(),
            LabelReq::NotExists(k) => get(k).is_none(),
            LabelReq::Eq(k, v) => get(k) == Some(v.as_str()),
            LabelReq::NotEq(k, v) => get(k) != Some(v.as_str()),
            LabelReq::In(k, vs) => get(k).is_some_and(|x| vs.iter().any(|v| v == x)),
            LabelReq::NotIn(k, vs) => get(k).is_none_or(|x| vs.iter().all(|v| v != x)),
            LabelReq::Gt(k, n) => get(k)
                .and_then(|x| x.parse::<i64>().ok())
                .is_some_and(|x| x > *n),
            LabelReq::Lt(k, n) => get(k)
                .and_then(|x| x.parse::<i64>().ok())
                .is_some_and(|x| x < *n),
        })
    }
}

/// A parsed field selector (`metadata.name=x,spec.nodeName!=n1`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSelector {
    reqs: Vec<(String, bool, String)>,
}

fn unescape(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    let mut chars = v.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(n) = chars.next() {
                out.push(n);
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Splits on `sep` not preceded by a backslash.
fn split_unescaped(s: &str, sep: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == sep {
            parts.push(&s[start..i]);
            start = i + c.len_utf8();
        }
    }
    parts.push(&s[start..]);
    parts
}

impl FieldSelector {
    /// Parses the `fieldSelector` query parameter and checks every field is
    /// supported by `resource`.
    pub fn parse(s: &str, resource: &ResourceInfo) -> Result<Self, ApiError> {
        let mut reqs = Vec::new();
        if s.trim().is_empty() {
            return Ok(FieldSelector { reqs });
        }
        for part in split_unescaped(s, ',') {
            let (field, neg, value) = if let Some((f, v)) = part.split_once("!=") {
                (f, true, v)
            } else if let Some((f, v)) = part.split_once("==") {
                (f, false, v)
            } else if let Some((f, v)) = part.split_once('=') {
                (f, false, v)
            } else {
                return Err(bad(format!(
                    "invalid selector: '{s}'; can't understand '{part}'"
                )));
            };
            let field = field.trim();
            if !resource.supports_field(field) {
                return Err(bad(format!("field label not supported: {field}")));
            }
            reqs.push((field.to_owned(), neg, unescape(value.trim())));
        }
        Ok(FieldSelector { reqs })
    }

    /// Whether the selector selects everything.
    pub fn is_empty(&self) -> bool {
        self.reqs.is_empty()
    }

    /// The value of `metadata.name=X` when the selector pins one name.
    pub fn pinned_name(&self) -> Option<&str> {
        self.reqs
            .iter()
            .find(|(f, neg, _)| f == "metadata.name" && !neg)
            .map(|(_, _, v)| v.as_str())
    }

    /// Whether an object matches.
    pub fn matches(&self, obj: &Value) -> bool {
        self.reqs.iter().all(|(field, neg, value)| {
            let actual = field_value(obj, field);
            (actual == *value) != *neg
        })
    }
}

/// The string kube compares for a field selector label.
fn field_value(obj: &Value, field: &str) -> String {
    let path: &str = if field == "source" {
        "source.component"
    } else {
        field
    };
    let mut cur = obj;
    for seg in path.split('.') {
        match cur.get(seg) {
            Some(v) => cur = v,
            None => return String::new(),
        }
    }
    match cur {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::Registry;
    use serde_json::json;

    fn obj(labels: Value) -> Value {
        json!({"metadata": {"name": "a", "namespace": "ns", "labels": labels}})
    }

    #[test]
    fn label_operators_match_like_kube() {
        let o = obj(json!({"app": "web", "tier": "fe", "n": "5"}));
        let cases = [
            ("app=web", true),
            ("app==web", true),
            ("app!=web", false),
            ("app!=db", true),
            ("missing!=x", true),
            ("tier in (fe,be)", true),
            ("tier in (be)", false),
            ("tier notin (be)", true),
            ("missing notin (be)", true),
            ("app", true),
            ("!app", false),
            ("!missing", true),
            ("app=web,tier in (fe, be),!canary", true),
            ("n>4", true),
            ("n<4", false),
            ("", true),
        ];
        for (sel, want) in cases {
            let s = LabelSelector::parse(sel).unwrap();
            assert_eq!(s.matches(&o), want, "{sel}");
        }
    }

    #[test]
    fn bad_label_selectors_are_bad_requests() {
        for sel in ["app in fe", "app=web,", "a b c", "x=(y"] {
            let err = LabelSelector::parse(sel).unwrap_err();
            assert_eq!(err.code(), 400, "{sel}");
        }
    }

    #[test]
    fn field_selectors_read_per_type_fields() {
        let reg = Registry::with_builtins();
        let pods = reg.resolve("", "v1", "pods").unwrap();
        let pod = json!({"metadata": {"name": "p", "namespace": "d"},
                         "spec": {"nodeName": "n1", "hostNetwork": true},
                         "status": {"phase": "Running"}});
        let sel = FieldSelector::parse("spec.nodeName=n1,status.phase!=Pending", &pods).unwrap();
        assert!(sel.matches(&pod));
        let sel = FieldSelector::parse("spec.hostNetwork=false", &pods).unwrap();
        assert!(!sel.matches(&pod));
        let sel = FieldSelector::parse("metadata.name==p", &pods).unwrap();
        assert_eq!(sel.pinned_name(), Some("p"));
        let err = FieldSelector::parse("spec.bogus=x", &pods).unwrap_err();
        assert_eq!(err.to_string(), "field label not supported: spec.bogus");
        let secrets = reg.resolve("", "v1", "secrets").unwrap();
        let sel = FieldSelector::parse("type=Opaque", &secrets).unwrap();
        assert!(sel.matches(&json!({"type": "Opaque"})));
        let nodes = reg.resolve("", "v1", "nodes").unwrap();
        assert!(FieldSelector::parse("metadata.namespace=x", &nodes).is_err());
    }
}
