//! Structural defaulting, as apiextensions applies `default` to custom resources.

use serde_json::Value;

use super::Schema;

/// Applies the schema's defaults to `value`, top-down: an absent property with a
/// `default` gets a copy of it, then defaulting continues inside (so nested defaults
/// apply inside a defaulted object), through `properties`, `items` and
/// `additionalProperties`. A `null` in a non-nullable field takes the default if there
/// is one and is removed otherwise, as kube-apiserver does.
pub fn default(value: &mut Value, schema: &Schema) {
    match value {
        Value::Object(map) => {
            let mut drop = Vec::new();
            for (k, p) in &schema.properties {
                match map.get(k) {
                    None => {
                        if let Some(d) = &p.default {
                            map.insert(k.clone(), d.clone());
                        }
                    }
                    Some(Value::Null) if !p.nullable => match &p.default {
                        Some(d) => {
                            map.insert(k.clone(), d.clone());
                        }
                        None => drop.push(k.clone()),
                    },
                    Some(_) => {}
                }
            }
            for k in drop {
                map.remove(&k);
            }
            for (k, v) in map.iter_mut() {
                if let Some(p) = schema.property(k) {
                    default(v, p);
                } else if let Some(a) = schema.additional_schema() {
                    if v.is_null()
                        && !a.nullable
                        && let Some(d) = &a.default
                    {
                        *v = d.clone();
                    }
                    default(v, a);
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = &schema.items {
                for item in items.iter_mut() {
                    if item.is_null()
                        && !item_schema.nullable
                        && let Some(d) = &item_schema.default
                    {
                        *item = d.clone();
                    }
                    default(item, item_schema);
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::schema::{FieldPath, parse_crd_schema};

    #[test]
    fn defaults_apply_recursively() {
        let s = parse_crd_schema(
            &json!({"type": "object", "properties": {"spec": {"type": "object", "default": {}, "properties": {
                "replicas": {"type": "integer", "default": 1},
                "strategy": {"type": "object", "default": {"type": "Rolling"}, "properties": {
                    "type": {"type": "string"}, "maxSurge": {"type": "integer", "default": 25}}},
                "ports": {"type": "array", "items": {"type": "object", "properties": {
                    "protocol": {"type": "string", "default": "TCP"}, "port": {"type": "integer"}}}},
                "limits": {"type": "object", "additionalProperties": {"type": "object", "properties": {
                    "max": {"type": "integer", "default": 10}}}},
                "mode": {"type": "string"},
                "opt": {"type": "string", "nullable": true, "default": "x"}
            }}}}),
            &FieldPath::root(),
        )
        .unwrap();
        let mut v = json!({"kind": "K"});
        default(&mut v, &s);
        assert_eq!(
            v,
            json!({"kind": "K", "spec": {"replicas": 1, "strategy": {"type": "Rolling", "maxSurge": 25}, "opt": "x"}})
        );
        let mut v = json!({"spec": {"replicas": 3, "ports": [{"port": 80}], "limits": {"cpu": {}}, "mode": null, "opt": null}});
        default(&mut v, &s);
        assert_eq!(
            v,
            json!({"spec": {"replicas": 3, "strategy": {"type": "Rolling", "maxSurge": 25},
                "ports": [{"port": 80, "protocol": "TCP"}], "limits": {"cpu": {"max": 10}}, "opt": null}})
        );
    }
}
