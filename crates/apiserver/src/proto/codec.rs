//! Protobuf <-> JSON for one message, driven by the field table, with the JSON
//! forms kube gives its special messages (times, int-or-string, quantities, raw
//! JSON, `ExtraValue` lists).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value};

use super::ProtoError;
use super::table::{Card, Field, Ty, message};
use super::wire::{Reader, Wire, Writer};

const TIME: &str = "apimachinery.pkg.apis.meta.v1.Time";
const MICRO_TIME: &str = "apimachinery.pkg.apis.meta.v1.MicroTime";
const DURATION: &str = "apimachinery.pkg.apis.meta.v1.Duration";
const FIELDS_V1: &str = "apimachinery.pkg.apis.meta.v1.FieldsV1";
const RAW: &str = "apimachinery.pkg.runtime.RawExtension";
const INT_OR_STRING: &str = "apimachinery.pkg.util.intstr.IntOrString";
const QUANTITY: &str = "apimachinery.pkg.api.resource.Quantity";

/// Messages whose JSON form is their one repeated `items` field.
fn is_string_list(name: &str) -> bool {
    name.ends_with(".ExtraValue")
}

/// Whether a field is a Go struct embedded inline (`json:",inline"`): its
/// message is a field in protobuf, but its members are the parent's in JSON
/// (`Volume.volumeSource`, `Probe.handler`, the `LocalObjectReference` of key
/// selectors). These are every such field of the packages in the table, as
/// `tools/gen_proto_fields.py --check` verifies against k8s-pb and k8s-openapi.
pub(super) fn is_inline(f: &Field) -> bool {
    let Ty::M(message) = f.ty else {
        return false;
    };
    let short = message.rsplit('.').next().unwrap_or(message);
    matches!(
        (f.json, short),
        ("localObjectReference", "LocalObjectReference")
            | ("volumeSource", "VolumeSource")
            | ("persistentVolumeSource", "PersistentVolumeSource")
            | ("ephemeralContainerCommon", "EphemeralContainerCommon")
            | ("handler", "ProbeHandler")
            | ("ingressRuleValue", "IngressRuleValue")
            | ("rule", "Rule")
            | ("ruleWithOperations", "RuleWithOperations")
    )
}

/// Decodes a message's bytes into its JSON form.
pub(super) fn decode(name: &str, buf: &[u8], depth: usize) -> Result<Value, ProtoError> {
    if depth > 64 {
        return Err(ProtoError::Malformed("nesting deeper than 64"));
    }
    let fields = message(name).ok_or_else(|| ProtoError::UnknownMessage(name.to_owned()))?;
    let mut out = Map::new();
    let mut r = Reader::new(buf);
    while let Some((num, wire)) = r.next()? {
        // Unknown fields are skipped, as by Go's decoder.
        let Some(f) = fields.iter().find(|f| f.num == num) else {
            continue;
        };
        match f.card {
            Card::One => match scalar_or_message(f.ty, wire, depth)? {
                Some(Value::Object(fields)) if is_inline(f) => out.extend(fields),
                Some(v) => {
                    out.insert(f.json.to_owned(), v);
                }
                None => {}
            },
            Card::Many => {
                let list = out
                    .entry(f.json)
                    .or_insert_with(|| Value::Array(Vec::new()));
                if let (Wire::Bytes(packed), Ty::Bool | Ty::I32 | Ty::I64) = (&wire, f.ty) {
                    let mut pr = Reader::new(packed);
                    while !pr.is_empty() {
                        let v = scalar_or_message(f.ty, Wire::Varint(pr.varint()?), depth)?;
                        push(list, v);
                    }
                } else if let (Wire::Bytes([]), Ty::Str) = (&wire, f.ty) {
                    // An empty string in a list is a value (`apiGroups: [""]`).
                    push(list, Some(Value::String(String::new())));
                } else {
                    push(list, scalar_or_message(f.ty, wire, depth)?);
                }
            }
            Card::Map => {
                let Wire::Bytes(entry) = wire else {
                    return Err(ProtoError::Malformed("a map entry that is not a message"));
                };
                let mut er = Reader::new(entry);
                let (mut key, mut value) = (String::new(), None);
                while let Some((n, w)) = er.next()? {
                    match (n, w) {
                        (1, Wire::Bytes(k)) => key = utf8(k)?,
                        (2, w) => value = scalar_or_message(f.ty, w, depth)?,
                        _ => {}
                    }
                }
                let map = out
                    .entry(f.json)
                    .or_insert_with(|| Value::Object(Map::new()));
                if let Value::Object(m) = map {
                    m.insert(key, value.unwrap_or_else(|| empty_of(f.ty)));
                }
            }
        }
    }
    Ok(special_from_proto(name, Value::Object(out)))
}

fn push(list: &mut Value, v: Option<Value>) {
    if let (Value::Array(a), Some(v)) = (list, v) {
        a.push(v);
    }
}

/// A map value left out on the wire: its type's zero value.
fn empty_of(ty: Ty) -> Value {
    match ty {
        Ty::Str => Value::String(String::new()),
        Ty::Bytes => Value::String(String::new()),
        Ty::Bool => Value::Bool(false),
        Ty::I32 | Ty::I64 => Value::from(0),
        Ty::M(_) => Value::Object(Map::new()),
    }
}

fn utf8(b: &[u8]) -> Result<String, ProtoError> {
    String::from_utf8(b.to_vec()).map_err(|_| ProtoError::Malformed("a string that is not UTF-8"))
}

/// One value; `None` for what JSON leaves out (an empty string, an unset time).
fn scalar_or_message(ty: Ty, wire: Wire<'_>, depth: usize) -> Result<Option<Value>, ProtoError> {
    let v = match (ty, wire) {
        (Ty::Str, Wire::Bytes(b)) => {
            let s = utf8(b)?;
            if s.is_empty() {
                return Ok(None);
            }
            Value::String(s)
        }
        (Ty::Bytes, Wire::Bytes(b)) => Value::String(STANDARD.encode(b)),
        (Ty::Bool, Wire::Varint(v)) => Value::Bool(v != 0),
        // Two's complement: a negative int32 is sent as a 64-bit varint.
        (Ty::I32, Wire::Varint(v)) => Value::from(v as i64 as i32),
        (Ty::I64, Wire::Varint(v)) => Value::from(v as i64),
        (Ty::M(name), Wire::Bytes(b)) => {
            let v = decode(name, b, depth + 1)?;
            if v.is_null() {
                return Ok(None);
            }
            v
        }
        _ => return Err(ProtoError::Malformed("a field of the wrong wire type")),
    };
    Ok(Some(v))
}

/// kube's JSON form of the special messages, from their decoded fields.
fn special_from_proto(name: &str, v: Value) -> Value {
    let int = |k: &str| v.get(k).and_then(Value::as_i64).unwrap_or(0);
    match name {
        TIME | MICRO_TIME => {
            if v.as_object().is_some_and(Map::is_empty) {
                return Value::Null;
            }
            let nanos = i32::try_from(int("nanos")).unwrap_or(0);
            match jiff::Timestamp::new(int("seconds"), if name == TIME { 0 } else { nanos }) {
                Ok(t) if name == TIME => {
                    Value::String(t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
                }
                Ok(t) => Value::String(t.strftime("%Y-%m-%dT%H:%M:%S.%6fZ").to_string()),
                Err(_) => Value::Null,
            }
        }
        DURATION => Value::String(go_duration(int("duration"))),
        INT_OR_STRING => match int("type") {
            1 => v
                .get("strVal")
                .cloned()
                .unwrap_or(Value::String(String::new())),
            _ => Value::from(int("intVal")),
        },
        QUANTITY => v
            .get("string")
            .cloned()
            .unwrap_or(Value::String("0".into())),
        FIELDS_V1 | RAW => {
            let raw = v
                .get("raw")
                .and_then(Value::as_str)
                .and_then(|b| STANDARD.decode(b).ok())
                .unwrap_or_default();
            if raw.is_empty() {
                return Value::Null;
            }
            serde_json::from_slice(&raw).unwrap_or(Value::Null)
        }
        n if is_string_list(n) => v.get("items").cloned().unwrap_or(Value::Array(Vec::new())),
        _ => v,
    }
}

/// Go's `time.Duration.String()`: `1h2m3.5s`, `150ms`, `0s`.
fn go_duration(nanos: i64) -> String {
    if nanos == 0 {
        return "0s".into();
    }
    let sign = if nanos < 0 { "-" } else { "" };
    let n = nanos.unsigned_abs();
    if n < 1_000_000_000 {
        let (unit, div) = match n {
            0..1_000 => ("ns", 1),
            1_000..1_000_000 => ("µs", 1_000),
            _ => ("ms", 1_000_000),
        };
        return format!("{sign}{}{unit}", trim_fraction(n, div));
    }
    let (h, rest) = (n / 3_600_000_000_000, n % 3_600_000_000_000);
    let (m, rest) = (rest / 60_000_000_000, rest % 60_000_000_000);
    let s = trim_fraction(rest, 1_000_000_000);
    match (h, m) {
        (0, 0) => format!("{sign}{s}s"),
        (0, m) => format!("{sign}{m}m{s}s"),
        (h, m) => format!("{sign}{h}h{m}m{s}s"),
    }
}

fn trim_fraction(n: u64, div: u64) -> String {
    let whole = n / div;
    let frac = n % div;
    if frac == 0 {
        return whole.to_string();
    }
    let width = div.to_string().len() - 1;
    let digits = format!("{frac:0width$}");
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

fn parse_go_duration(s: &str) -> Option<i64> {
    let (neg, mut rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s),
    };
    if rest == "0" {
        return Some(0);
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number: f64 = rest[..end].parse().ok()?;
        rest = &rest[end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_end] {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        rest = &rest[unit_end..];
        total += number * scale;
    }
    let n = total.round() as i64;
    Some(if neg { -n } else { n })
}

/// Encodes an object's JSON form as the message `name`. JSON members the
/// message does not have are left out, as a typed Go client would.
pub(super) fn encode(name: &str, v: &Value, depth: usize) -> Result<Vec<u8>, ProtoError> {
    if depth > 64 {
        return Err(ProtoError::Malformed("nesting deeper than 64"));
    }
    let fields = message(name).ok_or_else(|| ProtoError::UnknownMessage(name.to_owned()))?;
    let prepared = special_to_proto(name, v);
    let v = prepared.as_ref().unwrap_or(v);
    let mut w = Writer::default();
    let Some(obj) = v.as_object() else {
        return Ok(w.into_bytes());
    };
    for f in fields {
        if is_inline(f) {
            put(&mut w, f, v, depth)?;
            continue;
        }
        let Some(value) = obj.get(f.json).filter(|v| !v.is_null()) else {
            continue;
        };
        match f.card {
            Card::One => put(&mut w, f, value, depth)?,
            Card::Many => {
                for item in value.as_array().into_iter().flatten() {
                    put(&mut w, f, item, depth)?;
                }
            }
            Card::Map => {
                for (k, item) in value.as_object().into_iter().flatten() {
                    let mut entry = Writer::default();
                    entry.bytes(1, k.as_bytes());
                    let value_field = Field {
                        num: 2,
                        json: "",
                        ty: f.ty,
                        card: Card::One,
                    };
                    put(&mut entry, &value_field, item, depth)?;
                    w.bytes(f.num, entry.as_bytes());
                }
            }
        }
    }
    Ok(w.into_bytes())
}

fn put(w: &mut Writer, f: &Field, v: &Value, depth: usize) -> Result<(), ProtoError> {
    match f.ty {
        Ty::Str => match v {
            Value::String(s) => w.bytes(f.num, s.as_bytes()),
            other => w.bytes(f.num, other.to_string().as_bytes()),
        },
        Ty::Bytes => {
            let b = v
                .as_str()
                .and_then(|s| STANDARD.decode(s).ok())
                .unwrap_or_default();
            w.bytes(f.num, &b);
        }
        Ty::Bool => w.uint(f.num, u64::from(v.as_bool().unwrap_or(false))),
        Ty::I32 | Ty::I64 => w.uint(f.num, v.as_i64().unwrap_or(0) as u64),
        Ty::M(name) => {
            let inner = encode(name, v, depth + 1)?;
            w.bytes(f.num, &inner);
        }
    }
    Ok(())
}

/// The decoded-field form of a special message's JSON value.
fn special_to_proto(name: &str, v: &Value) -> Option<Value> {
    let obj = |pairs: Vec<(&str, Value)>| {
        Some(Value::Object(
            pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
        ))
    };
    match name {
        TIME | MICRO_TIME => {
            let t: jiff::Timestamp = v.as_str()?.parse().ok()?;
            obj(vec![
                ("seconds", Value::from(t.as_second())),
                ("nanos", Value::from(t.subsec_nanosecond())),
            ])
        }
        DURATION => obj(vec![(
            "duration",
            Value::from(parse_go_duration(v.as_str()?)?),
        )]),
        INT_OR_STRING => match v {
            Value::String(s) => obj(vec![
                ("type", Value::from(1)),
                ("strVal", Value::String(s.clone())),
            ]),
            other => obj(vec![("type", Value::from(0)), ("intVal", other.clone())]),
        },
        QUANTITY => obj(vec![(
            "string",
            match v {
                Value::String(s) => Value::String(s.clone()),
                other => Value::String(other.to_string()),
            },
        )]),
        FIELDS_V1 | RAW => obj(vec![("raw", Value::String(STANDARD.encode(v.to_string())))]),
        n if is_string_list(n) => obj(vec![("items", v.clone())]),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn go_durations_print_and_parse_as_go_does() {
        for (n, s) in [
            (0, "0s"),
            (1_500_000_000, "1.5s"),
            (150_000_000, "150ms"),
            (3_600_000_000_000, "1h0m0s"),
            (90_000_000_000, "1m30s"),
        ] {
            assert_eq!(go_duration(n), s);
            assert_eq!(parse_go_duration(s), Some(n));
        }
    }

    #[test]
    fn objects_round_trip_through_protobuf() {
        let svc = json!({
            "metadata": {"name": "web", "namespace": "ns", "labels": {"app": "web"},
                         "creationTimestamp": "2026-01-02T03:04:05Z"},
            "spec": {"clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.10"], "type": "ClusterIP",
                     "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"},
                               {"port": 443, "targetPort": 8443}],
                     "selector": {"app": "web"}, "publishNotReadyAddresses": true}
        });
        let b = encode("api.core.v1.Service", &svc, 0).unwrap();
        assert_eq!(decode("api.core.v1.Service", &b, 0).unwrap(), svc);
        let secret =
            json!({"metadata": {"name": "s"}, "data": {"k": "aGVsbG8="}, "type": "Opaque"});
        let b = encode("api.core.v1.Secret", &secret, 0).unwrap();
        assert_eq!(decode("api.core.v1.Secret", &b, 0).unwrap(), secret);
        let event = json!({"metadata": {"name": "e"}, "eventTime": "2026-01-02T03:04:05.123456Z",
                           "reportingController": "c", "deprecatedCount": -1});
        let b = encode("api.events.v1.Event", &event, 0).unwrap();
        assert_eq!(decode("api.events.v1.Event", &b, 0).unwrap(), event);
        let role = json!({"metadata": {"name": "r"}, "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]});
        let b = encode("api.rbac.v1.Role", &role, 0).unwrap();
        assert_eq!(decode("api.rbac.v1.Role", &b, 0).unwrap(), role);
        let review = json!({"spec": {"user": "u", "extra": {"scopes": ["a", "b"]},
                                     "resourceAttributes": {"verb": "get", "resource": "pods"}}});
        let b = encode("api.authorization.v1.SubjectAccessReview", &review, 0).unwrap();
        assert_eq!(
            decode("api.authorization.v1.SubjectAccessReview", &b, 0).unwrap(),
            review
        );
    }

    #[test]
    fn bad_bytes_are_errors_not_panics() {
        assert!(decode("api.core.v1.Service", &[0x0a, 0x05, 0x01], 0).is_err());
        assert!(decode("api.core.v1.Service", &[0xff; 12], 0).is_err());
        assert!(decode("no.such.Message", &[], 0).is_err());
    }
}
