//! Legacy discovery documents (`/api`, `/apis`, `/apis/<g>`, `/apis/<g>/<v>`).

use serde_json::{Value, json};

use super::{Registry, ResourceInfo, Subresource};

/// `/api`: the core group's versions.
pub fn api_versions(server_address: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [
            {"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}
        ],
    })
}

fn group_entry(group: &str, versions: &[String]) -> Value {
    let gv = |v: &String| json!({"groupVersion": format!("{group}/{v}"), "version": v});
    json!({
        "name": group,
        "versions": versions.iter().map(gv).collect::<Vec<_>>(),
        "preferredVersion": versions.first().map(gv).unwrap_or(Value::Null),
    })
}

/// `/apis`: every named group.
pub fn api_group_list(registry: &Registry) -> Value {
    let groups: Vec<Value> = registry
        .groups()
        .iter()
        .map(|(g, vs)| group_entry(g, vs))
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// `/apis/<group>`, or `None` when the group is not served.
pub fn api_group(registry: &Registry, group: &str) -> Option<Value> {
    let groups = registry.groups();
    let (_, versions) = groups.iter().find(|(g, _)| g == group)?;
    let mut doc = group_entry(group, versions);
    doc["kind"] = json!("APIGroup");
    doc["apiVersion"] = json!("v1");
    Some(doc)
}

fn subresource_entry(r: &ResourceInfo, sub: Subresource) -> Value {
    let name = format!("{}/{}", r.plural, sub.name());
    match sub {
        Subresource::Status => json!({
            "name": name, "singularName": "", "namespaced": r.namespaced,
            "kind": r.kind, "verbs": ["get", "patch", "update"],
        }),
        Subresource::Scale => json!({
            "name": name, "singularName": "", "namespaced": r.namespaced,
            "group": "autoscaling", "version": "v1", "kind": "Scale",
            "verbs": ["get", "patch", "update"],
        }),
        Subresource::Token => json!({
            "name": name, "singularName": "", "namespaced": r.namespaced,
            "group": "authentication.k8s.io", "version": "v1", "kind": "TokenRequest",
            "verbs": ["create"],
        }),
        Subresource::Finalize => json!({
            "name": name, "singularName": "", "namespaced": r.namespaced,
            "kind": r.kind, "verbs": ["update"],
        }),
        Subresource::Binding => json!({
            "name": name, "singularName": "", "namespaced": r.namespaced,
            "kind": "Binding", "verbs": ["create"],
        }),
        Subresource::Log => json!({
            "name": name, "singularName": "", "namespaced": r.namespaced,
            "kind": "Pod", "verbs": ["get"],
        }),
    }
}

/// `/api/v1` or `/apis/<g>/<v>`, or `None` when nothing is served there.
pub fn api_resource_list(registry: &Registry, group: &str, version: &str) -> Option<Value> {
    let resources = registry.resources_in(group, version);
    if resources.is_empty() {
        return None;
    }
    let mut entries = Vec::new();
    for r in &resources {
        let mut e = json!({
            "name": r.plural,
            "singularName": r.singular,
            "namespaced": r.namespaced,
            "kind": r.kind,
            "verbs": r.verbs.names(),
        });
        if !r.short_names.is_empty() {
            e["shortNames"] = json!(r.short_names);
        }
        if !r.categories.is_empty() {
            e["categories"] = json!(r.categories);
        }
        entries.push(e);
        for sub in &r.subresources {
            entries.push(subresource_entry(r, *sub));
        }
    }
    let group_version = if group.is_empty() {
        version.to_owned()
    } else {
        format!("{group}/{version}")
    };
    Some(json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": entries,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_list_names_subresources_like_kube() {
        let reg = Registry::with_builtins();
        let doc = api_resource_list(&reg, "", "v1").unwrap();
        assert_eq!(doc["groupVersion"], "v1");
        let names: Vec<&str> = doc["resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["name"].as_str().unwrap())
            .collect();
        for expected in [
            "services",
            "services/status",
            "pods/status",
            "serviceaccounts/token",
        ] {
            assert!(
                names.contains(&expected),
                "{expected} missing from {names:?}"
            );
        }
        let svc = doc["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == "services")
            .unwrap();
        assert_eq!(svc["shortNames"], json!(["svc"]));
        assert_eq!(svc["categories"], json!(["all"]));
    }

    #[test]
    fn group_list_has_preferred_versions_and_no_core() {
        let reg = Registry::with_builtins();
        let doc = api_group_list(&reg);
        let groups = doc["groups"].as_array().unwrap();
        assert!(groups.iter().all(|g| g["name"] != ""));
        let lease = groups
            .iter()
            .find(|g| g["name"] == "coordination.k8s.io")
            .unwrap();
        assert_eq!(
            lease["preferredVersion"]["groupVersion"],
            "coordination.k8s.io/v1"
        );
        assert!(api_group(&reg, "nope.example.com").is_none());
        assert!(api_resource_list(&reg, "nope.example.com", "v1").is_none());
    }
}
