//! [`MergeInfo`] for the structural schemas of `crate::schema` (CRD schemas and the
//! enriched schemas of built-in kinds).

use serde_json::Value;

use super::info::{ListType, MapType, MergeInfo, PatchStrategy};
use crate::schema::{self, Schema};

impl MergeInfo for Schema {
    fn property(&self, name: &str) -> Option<&dyn MergeInfo> {
        Schema::property(self, name).map(|s| s as &dyn MergeInfo)
    }

    fn map_values(&self) -> Option<&dyn MergeInfo> {
        self.additional_schema().map(|s| s as &dyn MergeInfo)
    }

    fn items(&self) -> Option<&dyn MergeInfo> {
        self.items.as_deref().map(|s| s as &dyn MergeInfo)
    }

    fn list_type(&self) -> ListType {
        match self.effective_list_type() {
            schema::ListType::Atomic => ListType::Atomic,
            schema::ListType::Set => ListType::Set,
            schema::ListType::Map => ListType::Map,
        }
    }

    fn list_map_keys(&self) -> &[String] {
        &self.list_map_keys
    }

    fn map_type(&self) -> MapType {
        match self.map_type {
            Some(schema::MapType::Atomic) => MapType::Atomic,
            _ => MapType::Granular,
        }
    }

    fn patch_strategy(&self) -> PatchStrategy {
        self.patch_strategy
            .as_deref()
            .map(PatchStrategy::parse)
            .unwrap_or_default()
    }

    fn patch_merge_key(&self) -> Option<&str> {
        self.patch_merge_key.as_deref()
    }

    fn default_value(&self) -> Option<&Value> {
        self.default.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::super::{Manager, MergeInfo, PatchType, apply_patch, server_side_apply};
    use crate::schema::{BuiltinKind, builtin_schema};

    fn mgr(name: &'static str) -> Manager<'static> {
        Manager {
            name,
            api_version: "v1",
            subresource: None,
            now: "2026-01-01T00:00:00Z",
            ignored_fields: &[],
        }
    }

    fn pod() -> Value {
        json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "finalizers": ["a"], "labels": {"app": "p"}},
            "spec": {"containers": [
                {"name": "app", "image": "app:1", "ports": [{"containerPort": 80, "protocol": "TCP"}]},
                {"name": "side", "image": "side:1"}
            ]}
        })
    }

    #[test]
    fn strategic_merge_uses_builtin_merge_keys() {
        let schema = builtin_schema(BuiltinKind::Pod);
        let info: &dyn MergeInfo = schema.as_ref();
        let patch = json!({
            "metadata": {"finalizers": ["b"]},
            "spec": {"containers": [{"name": "side", "image": "side:2"}, {"name": "app", "ports": [{"containerPort": 8080}]}]}
        });
        let got = apply_patch(
            PatchType::Strategic,
            &pod(),
            patch.to_string().as_bytes(),
            Some(info),
        )
        .unwrap();
        assert_eq!(got["metadata"]["finalizers"], json!(["b", "a"]));
        assert_eq!(got["spec"]["containers"][0]["name"], "side");
        assert_eq!(got["spec"]["containers"][0]["image"], "side:2");
        assert_eq!(got["spec"]["containers"][1]["image"], "app:1");
        assert_eq!(
            got["spec"]["containers"][1]["ports"],
            json!([{"containerPort": 8080}, {"containerPort": 80, "protocol": "TCP"}])
        );
    }

    #[test]
    fn server_side_apply_uses_builtin_list_types() {
        let schema = builtin_schema(BuiltinKind::Service);
        let info: &dyn MergeInfo = schema.as_ref();
        let config = json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "s", "labels": {"app": "s"}},
            "spec": {"selector": {"app": "s"}, "ports": [{"port": 80, "targetPort": 8080}]}
        });
        let object = server_side_apply(
            None,
            config.to_string().as_bytes(),
            &mgr("kubectl"),
            false,
            Some(info),
        )
        .unwrap();
        assert_eq!(
            object["metadata"]["managedFields"][0]["fieldsV1"],
            json!({
                "f:metadata": {"f:labels": {"f:app": {}}},
                "f:spec": {
                    "f:ports": {"k:{\"port\":80,\"protocol\":\"TCP\"}": {".": {}, "f:port": {}, "f:targetPort": {}}},
                    "f:selector": {}
                }
            })
        );
    }
}
