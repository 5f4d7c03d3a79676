//! Validation of a value against a structural schema, with the messages kube-apiserver
//! gives for CRD objects (kube-openapi's validator, converted to field errors).

use std::net::{Ipv4Addr, Ipv6Addr};

use base64::Engine as _;
use serde_json::Value;

use super::field::{FieldError, FieldPath, LazyPath};
use super::{ListType, Schema, SchemaType};

/// Validates `value` (a whole object, or any value when `schema` is a sub-schema)
/// against `schema`. Errors come in document order with Kubernetes field paths.
///
/// `x-kubernetes-validations` rules are not evaluated (no CEL).
pub fn validate(value: &Value, schema: &Schema) -> Vec<FieldError> {
    validate_at(value, schema, &FieldPath::root())
}

/// [`validate`] for a value that lives at `path`.
pub(crate) fn validate_at(value: &Value, schema: &Schema, path: &FieldPath) -> Vec<FieldError> {
    let mut errors = Vec::new();
    node(value, schema, &LazyPath::Root(path), &mut errors);
    errors
}

/// How kube-openapi names a value in its messages: `spec.replicas in body`.
fn subject(path: &LazyPath<'_>) -> String {
    let path = path.get();
    if path.is_root() {
        "in body".to_owned()
    } else {
        format!("{path} in body")
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn has_type(v: &Value, t: SchemaType) -> bool {
    match t {
        SchemaType::Object => v.is_object(),
        SchemaType::Array => v.is_array(),
        SchemaType::String => v.is_string(),
        SchemaType::Integer => v.is_i64() || v.is_u64(),
        SchemaType::Number => v.is_number(),
        SchemaType::Boolean => v.is_boolean(),
    }
}

/// Go's `%v` of a float64 bound.
fn num(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

fn node(v: &Value, s: &Schema, path: &LazyPath<'_>, errors: &mut Vec<FieldError>) {
    if v.is_null() {
        if s.nullable || (s.type_.is_none() && !s.int_or_string) {
            return;
        }
        let expected = if s.int_or_string {
            "integer,string"
        } else {
            s.type_.map(SchemaType::as_str).unwrap_or("")
        };
        errors.push(FieldError::type_invalid(
            path.get(),
            Value::Null,
            format!("{} must be of type {expected}: \"null\"", subject(path)),
        ));
        return;
    }
    if s.int_or_string {
        if !(v.is_string() || v.is_i64() || v.is_u64()) {
            errors.push(FieldError::type_invalid(
                path.get(),
                v.clone(),
                format!(
                    "{} must be of type integer,string: \"{}\"",
                    subject(path),
                    type_name(v)
                ),
            ));
            return;
        }
    } else if let Some(t) = s.type_
        && !has_type(v, t)
    {
        errors.push(FieldError::type_invalid(
            path.get(),
            v.clone(),
            format!(
                "{} must be of type {}: \"{}\"",
                subject(path),
                t.as_str(),
                type_name(v)
            ),
        ));
        return;
    }
    if let Some(allowed) = &s.enum_values
        && !allowed.contains(v)
    {
        let names: Vec<String> = allowed
            .iter()
            .map(|a| match a {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect();
        errors.push(FieldError::not_supported(path.get(), v.clone(), &names));
    }
    match v {
        Value::String(text) => string(text, s, path, errors),
        Value::Number(n) => {
            if let Some(x) = n.as_f64() {
                number(x, v, s, path, errors);
            }
            if s.format.as_deref() == Some("int32")
                && n.as_i64().is_some_and(|i| i32::try_from(i).is_err())
            {
                errors.push(FieldError::invalid(
                    path.get(),
                    v.clone(),
                    format!("{} must be of type int32: \"{n}\"", subject(path)),
                ));
            }
        }
        Value::Array(items) => array(items, s, path, errors),
        Value::Object(map) => object(map, s, path, errors),
        Value::Bool(_) | Value::Null => {}
    }
    combinators(v, s, path, errors);
}

fn string(text: &str, s: &Schema, path: &LazyPath<'_>, errors: &mut Vec<FieldError>) {
    let chars = text.chars().count() as u64;
    if let Some(max) = s.max_length
        && chars > max
    {
        errors.push(FieldError::too_long(path.get(), max as usize));
    }
    if let Some(min) = s.min_length
        && chars < min
    {
        errors.push(FieldError::invalid(
            path.get(),
            text,
            format!("{} should be at least {min} chars long", subject(path)),
        ));
    }
    if let Some(p) = &s.pattern
        && !p.is_match(text)
    {
        errors.push(FieldError::invalid(
            path.get(),
            text,
            format!("{} should match '{}'", subject(path), p.as_str()),
        ));
    }
    if let Some(format) = &s.format
        && !format_ok(format, text)
    {
        errors.push(FieldError::invalid(
            path.get(),
            text,
            format!(
                "{} must be of type {format}: {}",
                subject(path),
                super::field::go_quote(text)
            ),
        ));
    }
}

/// The string formats kube-apiserver checks for CRDs; unknown formats pass, as there.
fn format_ok(format: &str, s: &str) -> bool {
    match format {
        "byte" => base64::engine::general_purpose::STANDARD.decode(s).is_ok(),
        "date-time" | "datetime" => s.parse::<jiff::Timestamp>().is_ok(),
        "date" => s.parse::<jiff::civil::Date>().is_ok() && s.len() == 10,
        "ipv4" => s.parse::<Ipv4Addr>().is_ok(),
        "ipv6" => s.parse::<Ipv6Addr>().is_ok(),
        "cidr" => cidr_ok(s),
        "uuid" => uuid::Uuid::try_parse(s).is_ok(),
        "hostname" => {
            !s.is_empty()
                && s.len() <= 253
                && s.split('.').all(|l| {
                    !l.is_empty()
                        && l.len() <= 63
                        && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                        && !l.starts_with('-')
                        && !l.ends_with('-')
                })
        }
        "email" => s
            .split_once('@')
            .is_some_and(|(a, b)| !a.is_empty() && b.contains('.') && !b.starts_with('.')),
        "mac" => {
            let parts: Vec<&str> = s.split([':', '-']).collect();
            matches!(parts.len(), 6 | 8 | 20)
                && parts
                    .iter()
                    .all(|p| p.len() == 2 && u8::from_str_radix(p, 16).is_ok())
        }
        _ => true,
    }
}

fn cidr_ok(s: &str) -> bool {
    let Some((ip, bits)) = s.split_once('/') else {
        return false;
    };
    let Ok(bits) = bits.parse::<u8>() else {
        return false;
    };
    if ip.parse::<Ipv4Addr>().is_ok() {
        bits <= 32
    } else {
        ip.parse::<Ipv6Addr>().is_ok() && bits <= 128
    }
}

fn number(x: f64, v: &Value, s: &Schema, path: &LazyPath<'_>, errors: &mut Vec<FieldError>) {
    if let Some(min) = s.minimum {
        if s.exclusive_minimum && x <= min {
            errors.push(FieldError::invalid(
                path.get(),
                v.clone(),
                format!("{} should be greater than {}", subject(path), num(min)),
            ));
        } else if x < min {
            errors.push(FieldError::invalid(
                path.get(),
                v.clone(),
                format!(
                    "{} should be greater than or equal to {}",
                    subject(path),
                    num(min)
                ),
            ));
        }
    }
    if let Some(max) = s.maximum {
        if s.exclusive_maximum && x >= max {
            errors.push(FieldError::invalid(
                path.get(),
                v.clone(),
                format!("{} should be less than {}", subject(path), num(max)),
            ));
        } else if x > max {
            errors.push(FieldError::invalid(
                path.get(),
                v.clone(),
                format!(
                    "{} should be less than or equal to {}",
                    subject(path),
                    num(max)
                ),
            ));
        }
    }
    if let Some(m) = s.multiple_of
        && m != 0.0
        && (x / m).fract() != 0.0
    {
        errors.push(FieldError::invalid(
            path.get(),
            v.clone(),
            format!("{} should be a multiple of {}", subject(path), num(m)),
        ));
    }
}

fn array(items: &[Value], s: &Schema, path: &LazyPath<'_>, errors: &mut Vec<FieldError>) {
    if let Some(max) = s.max_items
        && items.len() as u64 > max
    {
        errors.push(FieldError::too_many(path.get(), items.len(), max as usize));
    }
    if let Some(min) = s.min_items
        && (items.len() as u64) < min
    {
        errors.push(FieldError::invalid(
            path.get(),
            Value::Array(items.to_vec()),
            format!("{} should have at least {min} items", subject(path)),
        ));
    }
    match s.list_type {
        Some(ListType::Set) => {
            for (i, item) in items.iter().enumerate() {
                if items[..i].contains(item) {
                    errors.push(FieldError::duplicate(path.get().index(i), item.clone()));
                }
            }
        }
        Some(ListType::Map) => {
            let key_of = |item: &Value| -> Value {
                let mut m = serde_json::Map::new();
                for k in &s.list_map_keys {
                    let dflt = s
                        .items
                        .as_ref()
                        .and_then(|it| it.property(k))
                        .and_then(|p| p.default.clone());
                    if let Some(v) = item.get(k).cloned().or(dflt) {
                        m.insert(k.clone(), v);
                    }
                }
                Value::Object(m)
            };
            let keys: Vec<Value> = items.iter().map(key_of).collect();
            for i in 0..keys.len() {
                if items[i].is_object() && keys[..i].contains(&keys[i]) {
                    errors.push(FieldError::duplicate(path.get().index(i), keys[i].clone()));
                }
            }
        }
        _ => {
            if s.unique_items {
                for (i, item) in items.iter().enumerate() {
                    if items[..i].contains(item) {
                        errors.push(FieldError::duplicate(path.get().index(i), item.clone()));
                    }
                }
            }
        }
    }
    if let Some(item_schema) = &s.items {
        for (i, item) in items.iter().enumerate() {
            node(item, item_schema, &LazyPath::Index(path, i), errors);
        }
    }
}

fn object(
    map: &serde_json::Map<String, Value>,
    s: &Schema,
    path: &LazyPath<'_>,
    errors: &mut Vec<FieldError>,
) {
    for r in &s.required {
        if !map.contains_key(r) {
            errors.push(FieldError::required(path.get().child(r), ""));
        }
    }
    if let Some(max) = s.max_properties
        && map.len() as u64 > max
    {
        errors.push(FieldError::too_many(path.get(), map.len(), max as usize));
    }
    if let Some(min) = s.min_properties
        && (map.len() as u64) < min
    {
        errors.push(FieldError::invalid(
            path.get(),
            Value::Object(map.clone()),
            format!("{} should have at least {min} properties", subject(path)),
        ));
    }
    if s.embedded_resource {
        for key in ["apiVersion", "kind"] {
            if map
                .get(key)
                .and_then(Value::as_str)
                .is_none_or(str::is_empty)
            {
                errors.push(FieldError::required(
                    path.get().child(key),
                    "must not be empty",
                ));
            }
        }
    }
    let mut child = |k: &String, v: &Value| {
        if let Some(p) = s.property(k) {
            node(v, p, &LazyPath::Field(path, k), errors);
        } else if let Some(a) = s.additional_schema() {
            node(v, a, &LazyPath::Field(path, k), errors);
        }
    };
    // Errors come in key order whatever order the map keeps (serde_json's
    // `preserve_order` may be switched on by another crate of the workspace).
    if map.keys().is_sorted() {
        map.iter().for_each(|(k, v)| child(k, v));
    } else {
        let mut keys: Vec<&String> = map.keys().collect();
        keys.sort();
        keys.into_iter().for_each(|k| child(k, &map[k]));
    }
}

fn combinators(v: &Value, s: &Schema, path: &LazyPath<'_>, errors: &mut Vec<FieldError>) {
    for sub in &s.all_of {
        node(v, sub, path, errors);
    }
    let passes = |sub: &Schema| {
        let mut errs = Vec::new();
        node(v, sub, path, &mut errs);
        errs.is_empty()
    };
    if !s.any_of.is_empty() && !s.any_of.iter().any(|sub| passes(sub)) {
        errors.push(FieldError::invalid(
            path.get(),
            v.clone(),
            format!(
                "{} must validate at least one schema (anyOf)",
                subject(path)
            ),
        ));
    }
    if !s.one_of.is_empty() && s.one_of.iter().filter(|sub| passes(sub)).count() != 1 {
        errors.push(FieldError::invalid(
            path.get(),
            v.clone(),
            format!(
                "{} must validate one and only one schema (oneOf)",
                subject(path)
            ),
        ));
    }
    if let Some(n) = &s.not
        && passes(n)
    {
        errors.push(FieldError::invalid(
            path.get(),
            v.clone(),
            format!("{} must not validate the schema (not)", subject(path)),
        ));
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::schema::parse_crd_schema;

    fn schema(v: Value) -> Schema {
        parse_crd_schema(&v, &FieldPath::root()).unwrap()
    }

    fn check(s: &Schema, v: Value) -> Vec<String> {
        validate(&v, s).iter().map(ToString::to_string).collect()
    }

    fn widget() -> Schema {
        schema(
            json!({"type": "object", "properties": {"spec": {"type": "object", "required": ["size"], "properties": {
                "replicas": {"type": "integer", "format": "int32", "minimum": 1, "maximum": 5},
                "size": {"type": "string", "enum": ["small", "large"]},
                "name": {"type": "string", "maxLength": 5, "minLength": 2, "pattern": "^[a-z]+$"},
                "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 2, "x-kubernetes-list-type": "set"},
                "ports": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
                          "items": {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}, "port": {"type": "integer"}}}},
                "port": {"x-kubernetes-int-or-string": true},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                "ratio": {"type": "number", "exclusiveMaximum": true, "maximum": 1, "nullable": true},
                "ip": {"type": "string", "format": "ipv4"},
                "choice": {"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "string"}},
                           "oneOf": [{"required": ["a"]}, {"required": ["b"]}]}
            }}}}),
        )
    }

    #[test]
    fn valid_object_passes() {
        let s = widget();
        let v = json!({"apiVersion": "x/v1", "kind": "W", "metadata": {"name": "a"}, "spec": {
            "replicas": 3, "size": "small", "name": "abc", "tags": ["a", "b"],
            "ports": [{"name": "a", "port": 1}, {"name": "b"}], "port": "http", "labels": {"x": "y"},
            "ratio": null, "ip": "10.0.0.1", "choice": {"a": "x"}
        }});
        assert_eq!(check(&s, v), Vec::<String>::new());
    }

    #[test]
    fn type_errors_read_like_kube_apiserver() {
        let s = widget();
        assert_eq!(
            check(&s, json!({"spec": {"size": "small", "replicas": "x"}})),
            vec![
                "spec.replicas: Invalid value: \"x\": spec.replicas in body must be of type integer: \"string\""
            ]
        );
        assert_eq!(
            check(&s, json!({"spec": {"size": "small", "port": true}})),
            vec![
                "spec.port: Invalid value: true: spec.port in body must be of type integer,string: \"boolean\""
            ]
        );
        assert_eq!(
            check(&s, json!({"spec": {"size": "small", "labels": {"a": 1}}})),
            vec![
                "spec.labels.a: Invalid value: 1: spec.labels.a in body must be of type string: \"integer\""
            ]
        );
    }

    #[test]
    fn every_keyword_has_its_message() {
        let s = widget();
        let got = check(
            &s,
            json!({"spec": {
                "replicas": 9, "size": "medium", "name": "ABCDEFG", "tags": ["a", "a", "b"],
                "ports": [{"name": "a"}, {"name": "a"}], "ratio": 1.0, "ip": "300.1.1.1", "choice": {"a": "x", "b": "y"}
            }}),
        );
        assert_eq!(
            got,
            vec![
                "spec.choice: Invalid value: {\"a\":\"x\",\"b\":\"y\"}: spec.choice in body must validate one and only one schema (oneOf)",
                "spec.ip: Invalid value: \"300.1.1.1\": spec.ip in body must be of type ipv4: \"300.1.1.1\"",
                "spec.name: Too long: may not be more than 5 bytes",
                "spec.name: Invalid value: \"ABCDEFG\": spec.name in body should match '^[a-z]+$'",
                "spec.ports[1]: Duplicate value: {\"name\":\"a\"}",
                "spec.ratio: Invalid value: 1.0: spec.ratio in body should be less than 1",
                "spec.replicas: Invalid value: 9: spec.replicas in body should be less than or equal to 5",
                "spec.size: Unsupported value: \"medium\": supported values: \"small\", \"large\"",
                "spec.tags: Too many: 3: must have at most 2 items",
                "spec.tags[1]: Duplicate value: \"a\"",
            ]
        );
        assert_eq!(
            check(&s, json!({"spec": {}})),
            vec!["spec.size: Required value"]
        );
        assert_eq!(
            check(
                &s,
                json!({"spec": {"size": "small", "replicas": 0, "name": "a"}})
            ),
            vec![
                "spec.name: Invalid value: \"a\": spec.name in body should be at least 2 chars long",
                "spec.replicas: Invalid value: 0: spec.replicas in body should be greater than or equal to 1",
            ]
        );
        assert_eq!(
            check(&s, json!({"spec": {"size": null}})),
            vec![
                "spec.size: Invalid value: \"null\": spec.size in body must be of type string: \"null\""
            ]
        );
    }

    #[test]
    fn embedded_resources_need_kind_and_api_version() {
        let s = schema(
            json!({"type": "object", "properties": {"t": {"type": "object",
            "x-kubernetes-embedded-resource": true, "x-kubernetes-preserve-unknown-fields": true}}}),
        );
        assert_eq!(
            check(&s, json!({"t": {"kind": "Pod"}})),
            vec!["t.apiVersion: Required value: must not be empty"]
        );
        assert!(
            check(
                &s,
                json!({"t": {"kind": "Pod", "apiVersion": "v1", "x": 1}})
            )
            .is_empty()
        );
    }

    #[test]
    fn any_of_and_not() {
        let s = schema(
            json!({"type": "object", "properties": {"v": {"type": "string",
            "anyOf": [{"pattern": "^a"}, {"pattern": "^b"}], "not": {"enum": ["bad"]}}}}),
        );
        assert!(check(&s, json!({"v": "abc"})).is_empty());
        assert_eq!(
            check(&s, json!({"v": "c"})),
            vec!["v: Invalid value: \"c\": v in body must validate at least one schema (anyOf)"]
        );
        let s2 = schema(
            json!({"type": "object", "properties": {"v": {"type": "string", "not": {"enum": ["bad"]}}}}),
        );
        assert_eq!(
            check(&s2, json!({"v": "bad"})),
            vec!["v: Invalid value: \"bad\": v in body must not validate the schema (not)"]
        );
    }
}
