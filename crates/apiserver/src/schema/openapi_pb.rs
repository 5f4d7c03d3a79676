//! `/openapi/v2` as protobuf: the Swagger 2.0 document encoded as gnostic's
//! `openapi.v2.Document` message, which kube-apiserver serves for
//! `Accept: application/com.github.proto-openapi.spec.v2@v1.0+protobuf`.
//!
//! kubectl asks for this form only: when a manifest's kind is in no `/openapi/v3`
//! document (a kind the server does not serve), kubectl's field-validation check
//! falls back to v2, and a JSON answer fails to parse
//! (`proto: cannot parse invalid wire-format data`) before kubectl can say
//! `no matches for kind ... ensure CRDs are installed first`.
//!
//! The encoder walks the JSON document; values gnostic keeps as `Any` (defaults,
//! enums, examples, vendor extensions) carry their YAML text, written as JSON
//! (JSON is YAML). Field numbers are those of gnostic's `OpenAPIv2.proto`.
//! Not encoded: `securityDefinitions` and `security` (kubectl reads neither).

use serde_json::{Map, Value};

use crate::proto::wire::Writer;

/// The media type of the protobuf form.
pub const OPENAPI_V2_PROTOBUF: &str = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf";

/// A proto3 message being written: fields at their default value are left out.
#[derive(Default)]
struct Message(Writer);

impl Message {
    fn string(&mut self, field: u32, s: &str) {
        if !s.is_empty() {
            self.0.bytes(field, s.as_bytes());
        }
    }

    fn message(&mut self, field: u32, m: Message) {
        self.0.bytes(field, m.0.as_bytes());
    }

    fn boolean(&mut self, field: u32, b: bool) {
        if b {
            self.0.uint(field, 1);
        }
    }

    fn int(&mut self, field: u32, n: i64) {
        if n != 0 {
            // proto3 int64: negative numbers as their two's complement.
            self.0.uint(field, n as u64);
        }
    }

    fn double(&mut self, field: u32, d: f64) {
        if d != 0.0 {
            self.0.fixed64(field, d.to_le_bytes());
        }
    }

    /// A string field from a JSON string member.
    fn str_of(&mut self, field: u32, obj: &Map<String, Value>, key: &str) {
        if let Some(s) = obj.get(key).and_then(Value::as_str) {
            self.string(field, s);
        }
    }

    fn strings_of(&mut self, field: u32, obj: &Map<String, Value>, key: &str) {
        for s in obj.get(key).and_then(Value::as_array).into_iter().flatten() {
            if let Some(s) = s.as_str() {
                self.0.bytes(field, s.as_bytes());
            }
        }
    }

    fn bool_of(&mut self, field: u32, obj: &Map<String, Value>, key: &str) {
        self.boolean(
            field,
            obj.get(key).and_then(Value::as_bool).unwrap_or(false),
        );
    }

    fn int_of(&mut self, field: u32, obj: &Map<String, Value>, key: &str) {
        self.int(field, obj.get(key).and_then(Value::as_i64).unwrap_or(0));
    }

    fn double_of(&mut self, field: u32, obj: &Map<String, Value>, key: &str) {
        self.double(field, obj.get(key).and_then(Value::as_f64).unwrap_or(0.0));
    }

    /// An `Any` field (YAML text) from a JSON member.
    fn any_of(&mut self, field: u32, obj: &Map<String, Value>, key: &str) {
        if let Some(v) = obj.get(key) {
            self.message(field, any(v));
        }
    }

    /// `repeated Any` from a JSON array member.
    fn anys_of(&mut self, field: u32, obj: &Map<String, Value>, key: &str) {
        for v in obj.get(key).and_then(Value::as_array).into_iter().flatten() {
            self.message(field, any(v));
        }
    }

    /// `repeated NamedAny vendor_extension` from the `x-` members.
    fn extensions(&mut self, field: u32, obj: &Map<String, Value>) {
        for (k, v) in obj.iter().filter(|(k, _)| k.starts_with("x-")) {
            self.message(field, named(k, any(v)));
        }
    }
}

/// `Any { string yaml = 2 }`.
fn any(v: &Value) -> Message {
    let mut m = Message::default();
    let yaml = match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    m.string(2, &yaml);
    m
}

/// A `Named*` pair: `name = 1`, `value = 2`.
fn named(name: &str, value: Message) -> Message {
    let mut m = Message::default();
    m.string(1, name);
    m.message(2, value);
    m
}

fn object(v: &Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap_or_default()
}

/// `openapi.v2.Schema`.
fn schema(v: &Value) -> Message {
    let o = object(v);
    let mut m = Message::default();
    m.str_of(1, &o, "$ref");
    m.str_of(2, &o, "format");
    m.str_of(3, &o, "title");
    m.str_of(4, &o, "description");
    m.any_of(5, &o, "default");
    m.double_of(6, &o, "multipleOf");
    m.double_of(7, &o, "maximum");
    m.bool_of(8, &o, "exclusiveMaximum");
    m.double_of(9, &o, "minimum");
    m.bool_of(10, &o, "exclusiveMinimum");
    m.int_of(11, &o, "maxLength");
    m.int_of(12, &o, "minLength");
    m.str_of(13, &o, "pattern");
    m.int_of(14, &o, "maxItems");
    m.int_of(15, &o, "minItems");
    m.bool_of(16, &o, "uniqueItems");
    m.int_of(17, &o, "maxProperties");
    m.int_of(18, &o, "minProperties");
    m.strings_of(19, &o, "required");
    m.anys_of(20, &o, "enum");
    match o.get("additionalProperties") {
        Some(Value::Bool(b)) => {
            let mut item = Message::default();
            item.0.uint(2, u64::from(*b));
            m.message(21, item);
        }
        Some(s @ Value::Object(_)) => {
            let mut item = Message::default();
            item.message(1, schema(s));
            m.message(21, item);
        }
        _ => {}
    }
    match o.get("type") {
        Some(Value::String(t)) => {
            let mut item = Message::default();
            item.string(1, t);
            m.message(22, item);
        }
        Some(Value::Array(ts)) => {
            let mut item = Message::default();
            for t in ts.iter().filter_map(Value::as_str) {
                item.0.bytes(1, t.as_bytes());
            }
            m.message(22, item);
        }
        _ => {}
    }
    match o.get("items") {
        Some(Value::Array(items)) => {
            let mut item = Message::default();
            for s in items {
                item.message(1, schema(s));
            }
            m.message(23, item);
        }
        Some(s @ Value::Object(_)) => {
            let mut item = Message::default();
            item.message(1, schema(s));
            m.message(23, item);
        }
        _ => {}
    }
    for s in o
        .get("allOf")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        m.message(24, schema(s));
    }
    if let Some(props) = o.get("properties").and_then(Value::as_object) {
        let mut p = Message::default();
        for (k, s) in props {
            p.message(1, named(k, schema(s)));
        }
        m.message(25, p);
    }
    m.str_of(26, &o, "discriminator");
    m.bool_of(27, &o, "readOnly");
    m.any_of(30, &o, "example");
    m.extensions(31, &o);
    m
}

/// `openapi.v2.ParametersItem`: a body parameter, a non-body one (by `in`), or a
/// `$ref`.
fn parameter(v: &Value) -> Message {
    let o = object(v);
    let mut item = Message::default();
    if let Some(r) = o.get("$ref").and_then(Value::as_str) {
        let mut reference = Message::default();
        reference.string(1, r);
        item.message(2, reference);
        return item;
    }
    let mut parameter = Message::default();
    let place = o.get("in").and_then(Value::as_str).unwrap_or("");
    if place == "body" {
        let mut body = Message::default();
        body.str_of(1, &o, "description");
        body.str_of(2, &o, "name");
        body.str_of(3, &o, "in");
        body.bool_of(4, &o, "required");
        if let Some(s) = o.get("schema") {
            body.message(5, schema(s));
        }
        body.extensions(6, &o);
        parameter.message(1, body);
    } else {
        // Header, form, query and path sub-schemas share their first fields;
        // they differ in where the later ones start (query and form have
        // `allowEmptyValue` at 5).
        let (which, with_allow_empty) = match place {
            "header" => (1, false),
            "formData" => (2, true),
            "path" => (4, false),
            _ => (3, true),
        };
        let mut p = Message::default();
        p.bool_of(1, &o, "required");
        p.str_of(2, &o, "in");
        p.str_of(3, &o, "description");
        p.str_of(4, &o, "name");
        let base = if with_allow_empty {
            p.bool_of(5, &o, "allowEmptyValue");
            6
        } else {
            5
        };
        p.str_of(base, &o, "type");
        p.str_of(base + 1, &o, "format");
        p.str_of(base + 3, &o, "collectionFormat");
        p.any_of(base + 4, &o, "default");
        p.bool_of(base + 14, &o, "uniqueItems");
        p.extensions(base + 17, &o);
        let mut non_body = Message::default();
        non_body.message(which, p);
        parameter.message(2, non_body);
    }
    item.message(1, parameter);
    item
}

/// `openapi.v2.Operation`.
fn operation(v: &Value) -> Message {
    let o = object(v);
    let mut m = Message::default();
    m.strings_of(1, &o, "tags");
    m.str_of(2, &o, "summary");
    m.str_of(3, &o, "description");
    m.str_of(5, &o, "operationId");
    m.strings_of(6, &o, "produces");
    m.strings_of(7, &o, "consumes");
    for p in o
        .get("parameters")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        m.message(8, parameter(p));
    }
    if let Some(responses) = o.get("responses").and_then(Value::as_object) {
        let mut rs = Message::default();
        for (code, r) in responses {
            let ro = object(r);
            let mut response = Message::default();
            response.str_of(1, &ro, "description");
            if let Some(s) = ro.get("schema") {
                let mut item = Message::default();
                item.message(1, schema(s));
                response.message(2, item);
            }
            let mut value = Message::default();
            value.message(1, response);
            rs.message(1, named(code, value));
        }
        m.message(9, rs);
    }
    m.strings_of(10, &o, "schemes");
    m.bool_of(11, &o, "deprecated");
    m.extensions(13, &o);
    m
}

/// `openapi.v2.PathItem`.
fn path_item(v: &Value) -> Message {
    let o = object(v);
    let mut m = Message::default();
    for (field, method) in [
        (2, "get"),
        (3, "put"),
        (4, "post"),
        (5, "delete"),
        (6, "options"),
        (7, "head"),
        (8, "patch"),
    ] {
        if let Some(op) = o.get(method) {
            m.message(field, operation(op));
        }
    }
    for p in o
        .get("parameters")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        m.message(9, parameter(p));
    }
    m.extensions(10, &o);
    m
}

/// The Swagger 2.0 document as an `openapi.v2.Document` message.
pub fn encode_v2(doc: &Value) -> Vec<u8> {
    let o = object(doc);
    let mut m = Message::default();
    m.str_of(1, &o, "swagger");
    if let Some(info) = o.get("info").and_then(Value::as_object) {
        let mut i = Message::default();
        i.str_of(1, info, "title");
        i.str_of(2, info, "version");
        i.str_of(3, info, "description");
        m.message(2, i);
    }
    m.strings_of(6, &o, "consumes");
    m.strings_of(7, &o, "produces");
    if let Some(paths) = o.get("paths").and_then(Value::as_object) {
        let mut p = Message::default();
        for (path, item) in paths {
            p.message(2, named(path, path_item(item)));
        }
        m.message(8, p);
    }
    if let Some(defs) = o.get("definitions").and_then(Value::as_object) {
        let mut d = Message::default();
        for (name, s) in defs {
            d.message(1, named(name, schema(s)));
        }
        m.message(9, d);
    }
    m.extensions(16, &o);
    m.0.into_bytes()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::proto::wire::{Reader, Wire};

    /// The payload of a message's length-delimited field `n`.
    fn field(b: &[u8], n: u32) -> Vec<u8> {
        let mut r = Reader::new(b);
        while let Some((num, wire)) = r.next().unwrap() {
            if let (true, Wire::Bytes(payload)) = (num == n, wire) {
                return payload.to_vec();
            }
        }
        panic!("no field {n}")
    }

    #[test]
    fn definitions_carry_their_gvk_extension_and_properties() {
        let doc = json!({
            "swagger": "2.0",
            "info": {"title": "Kubernetes", "version": "v1.33.0"},
            "paths": {"/api/v1/namespaces/{namespace}/configmaps/{name}": {
                "patch": {"operationId": "patchConfigMap",
                          "parameters": [{"name": "fieldValidation", "in": "query", "type": "string", "uniqueItems": true}],
                          "x-kubernetes-group-version-kind": {"group": "", "kind": "ConfigMap", "version": "v1"}}}},
            "definitions": {"io.k8s.api.core.v1.ConfigMap": {
                "type": "object", "required": ["metadata"],
                "properties": {"data": {"type": "object", "additionalProperties": {"type": "string"}}},
                "x-kubernetes-group-version-kind": [{"group": "", "kind": "ConfigMap", "version": "v1"}]}}
        });
        let b = encode_v2(&doc);
        assert_eq!(field(&b, 1), b"2.0");
        assert_eq!(field(&field(&b, 2), 2), b"v1.33.0");
        let named = field(&field(&b, 9), 1);
        assert_eq!(field(&named, 1), b"io.k8s.api.core.v1.ConfigMap");
        let s = field(&named, 2);
        assert_eq!(field(&field(&s, 22), 1), b"object");
        assert_eq!(field(&s, 19), b"metadata");
        let ext = field(&s, 31);
        assert_eq!(field(&ext, 1), b"x-kubernetes-group-version-kind");
        let yaml = field(&field(&ext, 2), 2);
        let gvk: Value = serde_json::from_slice(&yaml).unwrap();
        assert_eq!(gvk[0]["kind"], "ConfigMap");
        let data = field(&field(&field(&s, 25), 1), 2);
        let additional = field(&field(&data, 21), 1);
        assert_eq!(field(&field(&additional, 22), 1), b"string");
        // The PATCH operation's query parameter.
        let path = field(&field(&b, 8), 2);
        let patch = field(&field(&path, 2), 8);
        let query = field(&field(&field(&field(&patch, 8), 1), 2), 3);
        assert_eq!(field(&query, 4), b"fieldValidation");
        assert_eq!(field(&query, 2), b"query");
    }
}
