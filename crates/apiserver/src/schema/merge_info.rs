//! The list, map and patch extensions of built-in types that k8s-openapi's `schemars`
//! output lacks.
//!
//! Hand-written from the Kubernetes v1.33 API types (their `patchStrategy` /
//! `patchMergeKey` struct tags and `+listType` / `+listMapKey` / `+mapType` markers,
//! which kube-apiserver publishes as `x-kubernetes-*` in its OpenAPI). k8s-openapi's
//! `DeepMerge` impls only carry one of the two key sets (the patch merge key), so
//! they are a cross-check, not a source: e.g. `ServiceSpec.ports` merges by `port` for
//! strategic merge patch but is keyed by `port` and `protocol` for server-side apply.
//!
//! Only the kinds we serve are covered. Lists absent from this table are atomic, which
//! is Kubernetes' default for both patch strategies.
//!
//! Cross-check after a k8s-openapi upgrade: every `merge_strategies::list::map`,
//! `list::set` and `map::atomic` call in `k8s-openapi-*/src/v1_*/{api/core,
//! api/discovery, api/rbac, apimachinery, apiextensions_apiserver}/**` (grep for
//! them) must have a row here with the same first key; the `every_row_names_an_existing_field`
//! test catches rows whose field disappeared.

use std::sync::Arc;

use super::{ListType, MapType, Schema};

/// One field's extensions.
struct FieldInfo {
    field: &'static str,
    patch_strategy: Option<&'static str>,
    merge_key: Option<&'static str>,
    list_type: Option<ListType>,
    map_keys: &'static [&'static str],
    map_type: Option<MapType>,
}

const CORE: &str = "io.k8s.api.core.v1.";

/// A list merged by key for both strategic merge patch and server-side apply.
const fn keyed(
    field: &'static str,
    strategy: &'static str,
    merge_key: &'static str,
    map_keys: &'static [&'static str],
) -> FieldInfo {
    FieldInfo {
        field,
        patch_strategy: Some(strategy),
        merge_key: Some(merge_key),
        list_type: Some(ListType::Map),
        map_keys,
        map_type: None,
    }
}

/// A list keyed for server-side apply only (no strategic merge directive).
const fn apply_map(field: &'static str, map_keys: &'static [&'static str]) -> FieldInfo {
    FieldInfo {
        field,
        patch_strategy: None,
        merge_key: None,
        list_type: Some(ListType::Map),
        map_keys,
        map_type: None,
    }
}

/// A list of scalars merged as a set; `merge` also makes strategic merge patch union it.
const fn set(field: &'static str, merge: bool) -> FieldInfo {
    FieldInfo {
        field,
        patch_strategy: if merge { Some("merge") } else { None },
        merge_key: None,
        list_type: Some(ListType::Set),
        map_keys: &[],
        map_type: None,
    }
}

/// A list replaced as a whole.
const fn atomic(field: &'static str) -> FieldInfo {
    FieldInfo {
        field,
        patch_strategy: None,
        merge_key: None,
        list_type: Some(ListType::Atomic),
        map_keys: &[],
        map_type: None,
    }
}

/// A map replaced as a whole.
const fn atomic_map(field: &'static str) -> FieldInfo {
    FieldInfo {
        field,
        patch_strategy: None,
        merge_key: None,
        list_type: None,
        map_keys: &[],
        map_type: Some(MapType::Atomic),
    }
}

const META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.";

/// `(definition name, extensions of one of its fields)`.
fn table() -> Vec<(String, FieldInfo)> {
    let core = |t: &str| format!("{CORE}{t}");
    let meta = |t: &str| format!("{META}{t}");
    let mut rows: Vec<(String, FieldInfo)> = Vec::new();
    let mut add = |def: String, info: FieldInfo| rows.push((def, info));

    // ObjectMeta and other meta types.
    add(meta("ObjectMeta"), set("finalizers", true));
    add(
        meta("ObjectMeta"),
        keyed("ownerReferences", "merge", "uid", &["uid"]),
    );
    add(meta("ObjectMeta"), atomic("managedFields"));
    add(meta("LabelSelector"), atomic("matchExpressions"));
    add(meta("LabelSelectorRequirement"), atomic("values"));
    add(meta("StatusDetails"), atomic("causes"));

    // Pod.
    {
        let t = "PodSpec";
        add(
            core(t),
            keyed("volumes", "merge,retainKeys", "name", &["name"]),
        );
        add(core(t), keyed("initContainers", "merge", "name", &["name"]));
        add(core(t), keyed("containers", "merge", "name", &["name"]));
        add(
            core(t),
            keyed("ephemeralContainers", "merge", "name", &["name"]),
        );
        add(
            core(t),
            keyed("imagePullSecrets", "merge", "name", &["name"]),
        );
        add(core(t), keyed("hostAliases", "merge", "ip", &["ip"]));
        add(core(t), atomic("tolerations"));
        add(core(t), atomic("readinessGates"));
        add(
            core(t),
            keyed(
                "topologySpreadConstraints",
                "merge",
                "topologyKey",
                &["topologyKey", "whenUnsatisfiable"],
            ),
        );
        add(
            core(t),
            keyed("resourceClaims", "merge,retainKeys", "name", &["name"]),
        );
        add(
            core(t),
            keyed("schedulingGates", "merge", "name", &["name"]),
        );
        add(core(t), atomic_map("nodeSelector"));
    }
    for t in ["Container", "EphemeralContainer"] {
        add(
            core(t),
            keyed(
                "ports",
                "merge",
                "containerPort",
                &["containerPort", "protocol"],
            ),
        );
        add(core(t), keyed("env", "merge", "name", &["name"]));
        add(core(t), atomic("envFrom"));
        add(
            core(t),
            keyed("volumeMounts", "merge", "mountPath", &["mountPath"]),
        );
        add(
            core(t),
            keyed("volumeDevices", "merge", "devicePath", &["devicePath"]),
        );
        add(core(t), atomic("command"));
        add(core(t), atomic("args"));
        add(core(t), atomic("resizePolicy"));
    }
    add(
        core("PodStatus"),
        keyed("conditions", "merge", "type", &["type"]),
    );
    add(core("PodStatus"), keyed("podIPs", "merge", "ip", &["ip"]));
    add(core("PodStatus"), keyed("hostIPs", "merge", "ip", &["ip"]));
    add(core("PodStatus"), atomic("initContainerStatuses"));
    add(core("PodStatus"), atomic("containerStatuses"));
    add(core("PodStatus"), atomic("ephemeralContainerStatuses"));
    add(
        core("PodStatus"),
        keyed(
            "resourceClaimStatuses",
            "merge,retainKeys",
            "name",
            &["name"],
        ),
    );
    add(
        core("ContainerStatus"),
        keyed("volumeMounts", "merge", "mountPath", &["mountPath"]),
    );
    add(
        core("ContainerStatus"),
        apply_map("allocatedResourcesStatus", &["name"]),
    );
    add(
        core("ResourceStatus"),
        apply_map("resources", &["resourceID"]),
    );
    add(core("ResourceRequirements"), apply_map("claims", &["name"]));
    add(core("PodSecurityContext"), atomic("supplementalGroups"));
    add(core("PodSecurityContext"), atomic("sysctls"));
    add(core("Capabilities"), atomic("add"));
    add(core("Capabilities"), atomic("drop"));
    add(core("NodeSelector"), atomic("nodeSelectorTerms"));
    add(core("NodeSelectorTerm"), atomic("matchExpressions"));
    add(core("NodeSelectorTerm"), atomic("matchFields"));
    add(core("NodeSelectorRequirement"), atomic("values"));
    add(
        core("NodeAffinity"),
        atomic("preferredDuringSchedulingIgnoredDuringExecution"),
    );
    for t in ["PodAffinity", "PodAntiAffinity"] {
        add(
            core(t),
            atomic("requiredDuringSchedulingIgnoredDuringExecution"),
        );
        add(
            core(t),
            atomic("preferredDuringSchedulingIgnoredDuringExecution"),
        );
    }
    add(core("PodAffinityTerm"), atomic("namespaces"));
    add(core("PodAffinityTerm"), atomic("matchLabelKeys"));
    add(core("PodAffinityTerm"), atomic("mismatchLabelKeys"));
    add(core("TopologySpreadConstraint"), atomic("matchLabelKeys"));
    add(core("PodDNSConfig"), atomic("nameservers"));
    add(core("PodDNSConfig"), atomic("searches"));
    add(core("PodDNSConfig"), atomic("options"));
    add(core("ExecAction"), atomic("command"));
    add(core("HTTPGetAction"), atomic("httpHeaders"));
    for t in [
        "ConfigMapVolumeSource",
        "SecretVolumeSource",
        "ConfigMapProjection",
        "SecretProjection",
    ] {
        add(core(t), atomic("items"));
    }
    add(core("ProjectedVolumeSource"), atomic("sources"));
    add(core("DownwardAPIVolumeSource"), atomic("items"));
    add(core("DownwardAPIProjection"), atomic("items"));

    // Service.
    add(
        core("ServiceSpec"),
        keyed("ports", "merge", "port", &["port", "protocol"]),
    );
    add(core("ServiceSpec"), atomic_map("selector"));
    add(core("ServiceSpec"), atomic("clusterIPs"));
    add(core("ServiceSpec"), atomic("externalIPs"));
    add(core("ServiceSpec"), atomic("ipFamilies"));
    add(core("ServiceSpec"), atomic("loadBalancerSourceRanges"));
    add(
        core("ServiceStatus"),
        keyed("conditions", "merge", "type", &["type"]),
    );
    add(core("LoadBalancerStatus"), atomic("ingress"));
    add(core("LoadBalancerIngress"), atomic("ports"));

    // Endpoints and EndpointSlice.
    add(core("Endpoints"), atomic("subsets"));
    add(core("EndpointSubset"), atomic("addresses"));
    add(core("EndpointSubset"), atomic("notReadyAddresses"));
    add(core("EndpointSubset"), atomic("ports"));
    add(
        "io.k8s.api.discovery.v1.EndpointSlice".into(),
        atomic("endpoints"),
    );
    add(
        "io.k8s.api.discovery.v1.EndpointSlice".into(),
        atomic("ports"),
    );
    add(
        "io.k8s.api.discovery.v1.Endpoint".into(),
        set("addresses", false),
    );
    add(
        "io.k8s.api.discovery.v1.EndpointHints".into(),
        atomic("forZones"),
    );
    add(
        "io.k8s.api.discovery.v1.EndpointHints".into(),
        atomic("forNodes"),
    );

    // Node, Namespace, ServiceAccount.
    add(core("NodeSpec"), set("podCIDRs", true));
    add(core("NodeSpec"), atomic("taints"));
    add(
        core("NodeStatus"),
        keyed("conditions", "merge", "type", &["type"]),
    );
    add(
        core("NodeStatus"),
        keyed("addresses", "merge", "type", &["type"]),
    );
    add(core("NodeStatus"), atomic("images"));
    add(core("NodeStatus"), atomic("volumesInUse"));
    add(core("NodeStatus"), atomic("volumesAttached"));
    add(core("NodeStatus"), atomic("runtimeHandlers"));
    add(core("ContainerImage"), atomic("names"));
    add(core("NamespaceSpec"), atomic("finalizers"));
    add(
        core("NamespaceStatus"),
        keyed("conditions", "merge", "type", &["type"]),
    );
    add(
        core("ServiceAccount"),
        keyed("secrets", "merge", "name", &["name"]),
    );
    add(core("ServiceAccount"), atomic("imagePullSecrets"));

    // RBAC.
    let rbac = |t: &str| format!("io.k8s.api.rbac.v1.{t}");
    add(rbac("Role"), atomic("rules"));
    add(rbac("ClusterRole"), atomic("rules"));
    add(rbac("AggregationRule"), atomic("clusterRoleSelectors"));
    for f in [
        "verbs",
        "apiGroups",
        "resources",
        "resourceNames",
        "nonResourceURLs",
    ] {
        add(rbac("PolicyRule"), atomic(f));
    }
    add(rbac("RoleBinding"), atomic("subjects"));
    add(rbac("ClusterRoleBinding"), atomic("subjects"));

    // CustomResourceDefinition.
    let ext = |t: &str| format!("io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.{t}");
    add(ext("CustomResourceDefinitionSpec"), atomic("versions"));
    add(ext("CustomResourceDefinitionNames"), atomic("shortNames"));
    add(ext("CustomResourceDefinitionNames"), atomic("categories"));
    add(
        ext("CustomResourceDefinitionStatus"),
        apply_map("conditions", &["type"]),
    );
    add(
        ext("CustomResourceDefinitionStatus"),
        atomic("storedVersions"),
    );
    add(
        ext("CustomResourceDefinitionVersion"),
        atomic("additionalPrinterColumns"),
    );
    add(
        ext("CustomResourceDefinitionVersion"),
        atomic("selectableFields"),
    );
    add(ext("WebhookConversion"), atomic("conversionReviewVersions"));
    add(
        ext("JSONSchemaProps"),
        keyed("x-kubernetes-validations", "merge", "rule", &["rule"]),
    );

    // Token and access reviews.
    add(
        "io.k8s.api.authentication.v1.TokenRequestSpec".into(),
        atomic("audiences"),
    );
    add(
        "io.k8s.api.authorization.v1.SubjectAccessReviewSpec".into(),
        atomic("groups"),
    );
    rows
}

/// Adds the extensions of definition `name` to its properties.
pub(super) fn enrich(name: &str, schema: &mut Schema) {
    for (def, info) in table() {
        if def != name {
            continue;
        }
        let Some(prop) = schema.properties.get_mut(info.field) else {
            continue;
        };
        let mut p = (**prop).clone();
        p.patch_strategy = info.patch_strategy.map(str::to_owned);
        p.patch_merge_key = info.merge_key.map(str::to_owned);
        p.list_type = info.list_type;
        p.list_map_keys = info.map_keys.iter().map(|k| (*k).to_owned()).collect();
        p.map_type = info.map_type;
        *prop = Arc::new(p);
    }
}

/// The fields of the table, for the completeness test against the definitions.
#[cfg(test)]
pub(super) fn fields() -> Vec<(String, &'static str)> {
    table().into_iter().map(|(d, i)| (d, i.field)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::builtin_definition;

    #[test]
    fn every_row_names_an_existing_field() {
        for (def, field) in fields() {
            let s = builtin_definition(&def).unwrap_or_else(|| panic!("no definition {def}"));
            assert!(s.property(field).is_some(), "{def} has no field {field}");
        }
    }
}
