//! Metadata rules every object follows on create and update: names, uid,
//! timestamps, generation, and what a client may not change.

use rand::Rng;
use serde_json::{Map, Value, json};

use super::error::Cause;

/// Now, as kube writes timestamps (RFC 3339, seconds, UTC).
pub fn now() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// The alphabet kube draws generateName suffixes from (no vowels, no confusables).
const SUFFIX_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// `prefix` plus kube's random 5-character suffix, keeping the result within 63.
pub fn generate_name(prefix: &str) -> String {
    let mut rng = rand::rng();
    let suffix: String = (0..5)
        .map(|_| SUFFIX_ALPHABET[rng.random_range(0..SUFFIX_ALPHABET.len())] as char)
        .collect();
    let keep = prefix.len().min(58);
    let cut = (0..=keep)
        .rev()
        .find(|i| prefix.is_char_boundary(*i))
        .unwrap_or(0);
    format!("{}{suffix}", &prefix[..cut])
}

/// The object's `metadata` as a mutable map, creating it if absent.
pub fn meta_mut(obj: &mut Value) -> Option<&mut Map<String, Value>> {
    let map = obj.as_object_mut()?;
    let meta = map
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    if meta.is_null() {
        *meta = Value::Object(Map::new());
    }
    meta.as_object_mut()
}

/// A string field of metadata.
pub fn meta_str<'a>(obj: &'a Value, field: &str) -> Option<&'a str> {
    obj.get("metadata")?.get(field)?.as_str()
}

fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

fn is_dns_subdomain(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(is_dns_label)
}

/// Which name rule a resource's objects follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameRule {
    /// RFC 1123 label (namespaces, services).
    Label,
    /// RFC 1123 subdomain (most resources).
    Subdomain,
    /// Only path-safe (RBAC objects, events may contain `:`).
    PathSegment,
}

impl NameRule {
    /// The rule for a resource.
    pub fn for_resource(group: &str, plural: &str) -> Self {
        match (group, plural) {
            ("", "namespaces") | ("", "services") => NameRule::Label,
            ("rbac.authorization.k8s.io", _) | (_, "events") => NameRule::PathSegment,
            _ => NameRule::Subdomain,
        }
    }
}

/// Causes for a bad name, if any.
pub fn name_causes(name: &str, rule: NameRule, field: &str) -> Vec<Cause> {
    let value = json!(name);
    let path_problem = if name == "." || name == ".." {
        Some(format!("may not be '{name}'"))
    } else if name.contains('/') {
        Some("may not contain '/'".to_owned())
    } else if name.contains('%') {
        Some("may not contain '%'".to_owned())
    } else {
        None
    };
    if let Some(p) = path_problem {
        return vec![Cause::invalid(field, &value, &p)];
    }
    match rule {
        NameRule::PathSegment => vec![],
        NameRule::Label if !is_dns_label(name) => vec![Cause::invalid(
            field,
            &value,
            "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')",
        )],
        NameRule::Subdomain if !is_dns_subdomain(name) => vec![Cause::invalid(
            field,
            &value,
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
        )],
        _ => vec![],
    }
}

/// Metadata a client may not set on create: dropped before the server fills it.
const SERVER_SET: &[&str] = &[
    "uid",
    "resourceVersion",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "generation",
    "selfLink",
];

/// Whether kube-apiserver keeps `metadata.generation` on a resource's objects:
/// custom resources and the built-in kinds whose strategy counts spec changes
/// (ConfigMaps, Services, Endpoints and the like have none).
pub fn has_generation(group: &str, plural: &str, custom: bool) -> bool {
    custom
        || matches!(
            (group, plural),
            ("", "pods" | "replicationcontrollers")
                | ("discovery.k8s.io", "endpointslices")
                | ("apiextensions.k8s.io", "customresourcedefinitions")
                | (
                    "apps",
                    "deployments" | "replicasets" | "statefulsets" | "daemonsets"
                )
                | ("batch", "jobs" | "cronjobs")
                | ("autoscaling", "horizontalpodautoscalers")
                | ("policy", "poddisruptionbudgets")
                | (
                    "networking.k8s.io",
                    "ingresses" | "ingressclasses" | "networkpolicies"
                )
                | (
                    "admissionregistration.k8s.io",
                    "validatingwebhookconfigurations"
                        | "mutatingwebhookconfigurations"
                        | "validatingadmissionpolicies"
                        | "validatingadmissionpolicybindings"
                )
        )
}

/// Fills server-owned metadata of a new object; `generation` starts at 1 where
/// [`has_generation`] says the resource keeps one.
pub fn init_on_create(obj: &mut Value, namespace: Option<&str>, generation: bool) {
    if let Some(meta) = meta_mut(obj) {
        for f in SERVER_SET {
            meta.remove(*f);
        }
        match namespace {
            Some(ns) => {
                meta.insert("namespace".into(), json!(ns));
            }
            None => {
                meta.remove("namespace");
            }
        }
        meta.insert("uid".into(), json!(uuid::Uuid::new_v4().to_string()));
        meta.insert("creationTimestamp".into(), json!(now()));
        if generation {
            meta.insert("generation".into(), json!(1));
        }
    }
}

/// Whether anything outside `metadata` and `status` differs: kube bumps
/// `generation` only then.
pub fn spec_changed(old: &Value, new: &Value) -> bool {
    let strip = |v: &Value| -> Value {
        let mut v = v.clone();
        if let Some(m) = v.as_object_mut() {
            for k in ["metadata", "status", "apiVersion", "kind"] {
                m.remove(k);
            }
        }
        v
    };
    strip(old) != strip(new)
}

/// Carries the server-owned metadata of `old` into `new` on update and, where
/// the resource keeps a generation, bumps it when the spec changed.
pub fn carry_on_update(old: &Value, new: &mut Value, generation: bool) {
    let bump = spec_changed(old, new);
    let old_meta = old.get("metadata").cloned().unwrap_or_default();
    if let Some(meta) = meta_mut(new) {
        for f in [
            "uid",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "namespace",
            "name",
        ] {
            match old_meta.get(f) {
                Some(v) => meta.insert(f.into(), v.clone()),
                None => meta.remove(f),
            };
        }
        meta.remove("resourceVersion");
        meta.remove("selfLink");
        if !generation {
            meta.remove("generation");
            return;
        }
        let generation = old_meta
            .get("generation")
            .and_then(Value::as_i64)
            .unwrap_or(1);
        let generation = if bump { generation + 1 } else { generation };
        meta.insert("generation".into(), json!(generation));
    }
}

/// Finalizers of an object.
pub fn finalizers(obj: &Value) -> Vec<String> {
    obj["metadata"]["finalizers"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// Whether the object is being deleted.
pub fn is_terminating(obj: &Value) -> bool {
    obj["metadata"]
        .get("deletionTimestamp")
        .is_some_and(|v| !v.is_null())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_names_have_a_five_char_suffix() {
        let n = generate_name("web-");
        assert_eq!(n.len(), 9);
        assert!(n.starts_with("web-"));
        assert!(n[4..].bytes().all(|b| SUFFIX_ALPHABET.contains(&b)));
        let long = "a".repeat(80);
        assert_eq!(generate_name(&long).len(), 63);
    }

    #[test]
    fn names_follow_the_resource_rule() {
        assert!(name_causes("my-svc", NameRule::Label, "metadata.name").is_empty());
        assert_eq!(
            name_causes("a.b", NameRule::Label, "metadata.name").len(),
            1
        );
        assert!(name_causes("a.b", NameRule::Subdomain, "metadata.name").is_empty());
        assert_eq!(
            name_causes("Upper", NameRule::Subdomain, "metadata.name").len(),
            1
        );
        assert!(name_causes("system:admin", NameRule::PathSegment, "metadata.name").is_empty());
        assert_eq!(
            name_causes("a/b", NameRule::PathSegment, "metadata.name").len(),
            1
        );
    }

    #[test]
    fn generation_bumps_only_on_spec_changes() {
        let old = json!({"metadata": {"name": "a", "uid": "u", "generation": 3, "creationTimestamp": "t"},
                         "spec": {"x": 1}, "status": {"s": 1}});
        let mut labels_only = json!({"metadata": {"name": "a", "labels": {"k": "v"}},
                                     "spec": {"x": 1}, "status": {"s": 2}});
        carry_on_update(&old, &mut labels_only, true);
        assert_eq!(labels_only["metadata"]["generation"], 3);
        assert_eq!(labels_only["metadata"]["uid"], "u");
        let mut spec = json!({"metadata": {"name": "a", "uid": "evil"}, "spec": {"x": 2}});
        carry_on_update(&old, &mut spec, true);
        assert_eq!(spec["metadata"]["generation"], 4);
        assert_eq!(spec["metadata"]["uid"], "u");
        assert_eq!(spec["metadata"]["creationTimestamp"], "t");
    }

    #[test]
    fn only_kinds_with_a_spec_keep_a_generation() {
        assert!(has_generation("", "pods", false));
        assert!(has_generation("apps", "deployments", false));
        assert!(has_generation("example.com", "widgets", true));
        assert!(!has_generation("", "configmaps", false));
        assert!(!has_generation("", "endpoints", false));
        assert!(!has_generation("", "services", false));
        let mut cm = json!({"metadata": {"name": "c", "generation": 7}, "data": {}});
        init_on_create(&mut cm, Some("ns"), false);
        assert!(cm["metadata"].get("generation").is_none());
        let old = json!({"metadata": {"name": "c", "uid": "u"}, "data": {"a": "1"}});
        let mut new = json!({"metadata": {"name": "c", "generation": 2}, "data": {"a": "2"}});
        carry_on_update(&old, &mut new, false);
        assert!(new["metadata"].get("generation").is_none());
    }
}
