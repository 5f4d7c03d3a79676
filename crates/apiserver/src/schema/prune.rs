//! Pruning of unknown fields, as apiextensions does for custom resources before
//! defaulting and validation (and as kube-apiserver's decoder drops unknown fields of
//! built-in types). The pruned paths feed `fieldValidation=Strict|Warn`.

use serde_json::{Map, Value};

use super::field::{FieldPath, LazyPath};
use super::{AdditionalProperties, Schema, object_meta_schema};

/// Removes from `value` every field that `schema` does not specify, and returns the
/// paths of the removed fields (`spec.foo`, `spec.containers[0].bar`), sorted.
///
/// `value` is treated as a resource root: `apiVersion` and `kind` are kept and
/// `metadata` is pruned with the `ObjectMeta` schema, as are those of embedded
/// resources (`x-kubernetes-embedded-resource`). Under
/// `x-kubernetes-preserve-unknown-fields` unknown fields are kept.
pub fn prune(value: &mut Value, schema: &Schema) -> Vec<String> {
    let mut pruned = Vec::new();
    let root = FieldPath::root();
    node(value, schema, true, &LazyPath::Root(&root), &mut pruned);
    pruned.sort();
    pruned
}

fn node(
    v: &mut Value,
    s: &Schema,
    resource_root: bool,
    path: &LazyPath<'_>,
    pruned: &mut Vec<String>,
) {
    match v {
        Value::Object(map) => object(map, s, resource_root || s.embedded_resource, path, pruned),
        Value::Array(items) => {
            if let Some(item_schema) = &s.items {
                for (i, item) in items.iter_mut().enumerate() {
                    node(item, item_schema, false, &LazyPath::Index(path, i), pruned);
                }
            }
        }
        _ => {}
    }
}

fn object(
    map: &mut Map<String, Value>,
    s: &Schema,
    resource: bool,
    path: &LazyPath<'_>,
    pruned: &mut Vec<String>,
) {
    let mut unknown = Vec::new();
    for (k, v) in map.iter_mut() {
        let child = LazyPath::Field(path, k);
        if resource && (k == "apiVersion" || k == "kind") {
            continue;
        }
        if resource && k == "metadata" {
            if v.is_object() {
                node(v, object_meta_schema(), false, &child, pruned);
            }
            continue;
        }
        if let Some(p) = s.property(k) {
            node(v, p, false, &child, pruned);
        } else {
            match &s.additional_properties {
                Some(AdditionalProperties::Schema(a)) => node(v, a, false, &child, pruned),
                Some(AdditionalProperties::Bool(true)) => {}
                _ if s.preserve_unknown_fields || s.int_or_string => {}
                _ if s.type_.is_none() && s.properties.is_empty() => {}
                _ => unknown.push(k.clone()),
            }
        }
    }
    for k in unknown {
        map.remove(&k);
        pruned.push(path.get().child(&k).to_string());
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

    #[test]
    fn drops_unknown_fields_and_reports_paths() {
        let s = schema(
            json!({"type": "object", "properties": {"spec": {"type": "object", "properties": {
                "items": {"type": "array", "items": {"type": "object", "properties": {"a": {"type": "string"}}}},
                "map": {"type": "object", "additionalProperties": {"type": "object", "properties": {"x": {"type": "string"}}}},
                "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                "port": {"x-kubernetes-int-or-string": true}
            }}}}),
        );
        let mut v = json!({"apiVersion": "a/v1", "kind": "K",
            "metadata": {"name": "n", "labels": {"a": "b"}, "bogus": 1},
            "spec": {"foo": 1, "items": [{"a": "x", "b": 2}], "map": {"k": {"x": "1", "y": 2}},
                     "free": {"anything": {"goes": true}}, "port": 80},
            "status": {}});
        let pruned = prune(&mut v, &s);
        assert_eq!(
            pruned,
            vec![
                "metadata.bogus",
                "spec.foo",
                "spec.items[0].b",
                "spec.map.k.y",
                "status"
            ]
        );
        assert_eq!(
            v,
            json!({"apiVersion": "a/v1", "kind": "K", "metadata": {"name": "n", "labels": {"a": "b"}},
                   "spec": {"items": [{"a": "x"}], "map": {"k": {"x": "1"}}, "free": {"anything": {"goes": true}}, "port": 80}})
        );
    }

    #[test]
    fn embedded_resources_keep_type_meta() {
        let s = schema(
            json!({"type": "object", "properties": {"template": {"type": "object",
            "x-kubernetes-embedded-resource": true, "properties": {"spec": {"type": "object"}}}}}),
        );
        let mut v = json!({"template": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {}, "extra": 1}});
        assert_eq!(prune(&mut v, &s), vec!["template.extra"]);
        assert_eq!(
            v,
            json!({"template": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {}}})
        );
    }

    #[test]
    fn preserve_unknown_with_properties_prunes_inside_known_fields() {
        let s = schema(
            json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true,
            "properties": {"spec": {"type": "object", "properties": {"a": {"type": "string"}}}}}),
        );
        let mut v = json!({"other": 1, "spec": {"a": "x", "b": "y"}});
        assert_eq!(prune(&mut v, &s), vec!["spec.b"]);
        assert_eq!(v, json!({"other": 1, "spec": {"a": "x"}}));
    }
}
