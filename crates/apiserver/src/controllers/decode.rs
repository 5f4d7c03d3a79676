//! Reading stored objects for the controllers: partial views that parse only
//! the fields an index keeps (serde skips the rest without building it),
//! whole typed objects for a reconcile, and store keys.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Pod, PodSpec, PodStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference, Time};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::cluster::ObjectKey;
use crate::store::KeyValue;

/// Whether `needle` occurs in `haystack`: a cheap test that lets most
/// stored objects pass without being parsed at all.
pub(super) fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    let Some((&first, rest)) = needle.split_first() else {
        return true;
    };
    let mut from = 0;
    while let Some(at) = haystack[from..].iter().position(|&b| b == first) {
        let start = from + at + 1;
        if haystack.get(start..start + rest.len()) == Some(rest) {
            return true;
        }
        from = start;
    }
    false
}

/// Namespace and name of a namespaced object from its store key
/// `<prefix><namespace>/<name>`.
pub(super) fn namespaced_key(prefix: &str, key: &str) -> Option<ObjectKey> {
    let (ns, name) = key.strip_prefix(prefix)?.split_once('/')?;
    (!ns.is_empty() && !name.is_empty() && !name.contains('/')).then(|| ObjectKey::new(ns, name))
}

/// Name of a cluster-scoped object from its store key `<prefix><name>`.
pub(super) fn cluster_key<'a>(prefix: &str, key: &'a str) -> Option<&'a str> {
    key.strip_prefix(prefix)
        .filter(|n| !n.is_empty() && !n.contains('/'))
}

/// `metadata.labels` and nothing else.
#[derive(Debug, Default, Deserialize)]
struct LabelsOnly {
    #[serde(default)]
    metadata: LabelsMeta,
}

#[derive(Debug, Default, Deserialize)]
struct LabelsMeta {
    #[serde(default)]
    labels: Option<BTreeMap<String, String>>,
}

/// The object's labels (none when it cannot be read).
pub(super) fn labels(value: &[u8]) -> BTreeMap<String, String> {
    serde_json::from_slice::<LabelsOnly>(value)
        .ok()
        .and_then(|o| o.metadata.labels)
        .unwrap_or_default()
}

/// What the endpoint controllers need of a Service to route pod changes.
#[derive(Debug, Default, Deserialize)]
struct ServiceSpecOnly {
    #[serde(default)]
    spec: ServiceSpecView,
}

#[derive(Debug, Default, Deserialize)]
struct ServiceSpecView {
    #[serde(default)]
    selector: Option<BTreeMap<String, String>>,
    #[serde(default, rename = "type")]
    type_: Option<String>,
}

/// The Service's selector when the endpoint controllers manage it (see
/// `cluster::pods::managed_selector`); `None` for no selector, an empty one
/// or an ExternalName Service.
pub(super) fn service_selector(value: &[u8]) -> Option<BTreeMap<String, String>> {
    let spec = serde_json::from_slice::<ServiceSpecOnly>(value).ok()?.spec;
    if spec.type_.as_deref() == Some("ExternalName") {
        return None;
    }
    spec.selector.filter(|s| !s.is_empty())
}

/// What garbage collection needs of any object.
#[derive(Debug, Default, Deserialize)]
struct GcOnly {
    #[serde(default)]
    metadata: GcMeta,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct GcMeta {
    #[serde(default)]
    uid: Option<String>,
    #[serde(default)]
    owner_references: Option<Vec<OwnerUid>>,
    #[serde(default)]
    finalizers: Option<Vec<String>>,
    #[serde(default)]
    deletion_timestamp: Option<serde_json::Value>,
}

#[derive(Debug, Default, Deserialize)]
struct OwnerUid {
    #[serde(default)]
    uid: String,
}

/// An object's part in garbage collection.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct GcFacts {
    /// `metadata.uid`
    pub uid: String,
    /// The uids its ownerReferences name.
    pub owners: Vec<String>,
    /// Whether it is being deleted and a collector finalizer (orphan or
    /// foreground) holds it: the collector must act for it as an owner.
    pub waiting: bool,
}

impl GcFacts {
    /// Whether the collector has anything to do with the object.
    pub fn relevant(&self) -> bool {
        !self.owners.is_empty() || self.waiting
    }
}

/// Whether the stored bytes may hold anything garbage collection cares
/// about; false means certainly not (no owner references, not deleting).
pub(super) fn may_matter_to_gc(value: &[u8]) -> bool {
    contains(value, b"\"ownerReferences\"") || contains(value, b"\"deletionTimestamp\"")
}

/// The object's garbage collection facts; `None` when unreadable.
pub(super) fn gc_facts(value: &[u8]) -> Option<GcFacts> {
    let meta = serde_json::from_slice::<GcOnly>(value).ok()?.metadata;
    let deleting = meta.deletion_timestamp.is_some_and(|t| !t.is_null());
    let waiting = deleting
        && meta.finalizers.iter().flatten().any(|f| {
            f == crate::cluster::gc::FINALIZER_ORPHAN
                || f == crate::cluster::gc::FINALIZER_FOREGROUND
        });
    let mut owners: Vec<String> = meta
        .owner_references
        .into_iter()
        .flatten()
        .map(|r| r.uid)
        .filter(|u| !u.is_empty())
        .collect();
    owners.sort();
    owners.dedup();
    Some(GcFacts {
        uid: meta.uid.unwrap_or_default(),
        owners,
        waiting,
    })
}

#[derive(Debug, Default, Deserialize)]
struct UidOnly {
    #[serde(default)]
    metadata: UidMeta,
}

#[derive(Debug, Default, Deserialize)]
struct UidMeta {
    #[serde(default)]
    uid: Option<String>,
}

/// `metadata.uid`.
pub(super) fn uid(value: &[u8]) -> Option<String> {
    serde_json::from_slice::<UidOnly>(value)
        .ok()?
        .metadata
        .uid
        .filter(|u| !u.is_empty())
}

/// A stored object as `T`, with `metadata.resourceVersion` set from its
/// revision as a client would read it (so that writes made from it are
/// conditional on it). `None` when it does not fit `T`.
pub(super) fn typed<T>(kv: &KeyValue) -> Option<T>
where
    T: DeserializeOwned + k8s_openapi::Metadata<Ty = ObjectMeta>,
{
    let mut object: T = serde_json::from_slice(&kv.value).ok()?;
    object.metadata_mut().resource_version = Some(kv.mod_revision.to_string());
    Some(object)
}

/// A stored pod with `metadata.resourceVersion` set from its revision (see
/// [`typed`]), read without its `metadata.managedFields`: no controller
/// looks at them, and on a pod written by the scheduler, the kubelet and a
/// workload controller they are its largest part (skipped, they are not
/// built). `None` when it is not a pod.
pub(super) fn pod(kv: &KeyValue) -> Option<Pod> {
    #[derive(Deserialize)]
    struct PodView {
        #[serde(default)]
        metadata: MetaView,
        spec: Option<PodSpec>,
        status: Option<PodStatus>,
    }
    #[derive(Default, Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct MetaView {
        annotations: Option<BTreeMap<String, String>>,
        creation_timestamp: Option<Time>,
        deletion_grace_period_seconds: Option<i64>,
        deletion_timestamp: Option<Time>,
        finalizers: Option<Vec<String>>,
        generate_name: Option<String>,
        generation: Option<i64>,
        labels: Option<BTreeMap<String, String>>,
        name: Option<String>,
        namespace: Option<String>,
        owner_references: Option<Vec<OwnerReference>>,
        uid: Option<String>,
    }
    let view: PodView = serde_json::from_slice(&kv.value).ok()?;
    let m = view.metadata;
    Some(Pod {
        metadata: ObjectMeta {
            annotations: m.annotations,
            creation_timestamp: m.creation_timestamp,
            deletion_grace_period_seconds: m.deletion_grace_period_seconds,
            deletion_timestamp: m.deletion_timestamp,
            finalizers: m.finalizers,
            generate_name: m.generate_name,
            generation: m.generation,
            labels: m.labels,
            name: m.name,
            namespace: m.namespace,
            owner_references: m.owner_references,
            resource_version: Some(kv.mod_revision.to_string()),
            uid: m.uid,
            ..ObjectMeta::default()
        },
        spec: view.spec,
        status: view.status,
    })
}

/// What the ReplicaSet controller reads of a pod (`cluster::workloads`:
/// activity, readiness, the deletion ranking and the owner), as a JSON
/// value holding only those fields: its spec, container statuses and
/// managedFields are skipped without being built. `None` when it is not a
/// pod.
pub(super) fn pod_summary(value: &[u8]) -> Option<serde_json::Value> {
    #[derive(Deserialize, Serialize)]
    struct Summary {
        #[serde(default)]
        metadata: SummaryMeta,
        #[serde(default)]
        spec: SummarySpec,
        #[serde(default)]
        status: SummaryStatus,
    }
    #[derive(Default, Deserialize, Serialize)]
    #[serde(rename_all = "camelCase")]
    struct SummaryMeta {
        #[serde(skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        namespace: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        uid: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        creation_timestamp: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        deletion_timestamp: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        owner_references: Option<Vec<serde_json::Value>>,
    }
    #[derive(Default, Deserialize, Serialize)]
    #[serde(rename_all = "camelCase")]
    struct SummarySpec {
        #[serde(skip_serializing_if = "Option::is_none")]
        node_name: Option<String>,
    }
    #[derive(Default, Deserialize, Serialize)]
    struct SummaryStatus {
        #[serde(skip_serializing_if = "Option::is_none")]
        phase: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        conditions: Option<Vec<SummaryCondition>>,
    }
    #[derive(Deserialize, Serialize)]
    struct SummaryCondition {
        #[serde(rename = "type", default)]
        type_: String,
        #[serde(default)]
        status: String,
    }
    let summary: Summary = serde_json::from_slice(value).ok()?;
    serde_json::to_value(summary).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contains_finds_needles_anywhere_and_only_whole() {
        assert!(contains(
            b"abc\"ownerReferences\":[]",
            b"\"ownerReferences\""
        ));
        assert!(!contains(b"\"ownerReference\"", b"\"ownerReferences\""));
        assert!(contains(b"aab", b"ab"));
        assert!(!contains(b"", b"a"));
        assert!(contains(b"x", b""));
        assert!(!contains(b"\"ownerReferences", b"\"ownerReferences\""));
    }

    #[test]
    fn keys_split_into_namespace_and_name() {
        let p = "/registry/core/pods/";
        assert_eq!(
            namespaced_key(p, "/registry/core/pods/ns/web-0"),
            Some(ObjectKey::new("ns", "web-0"))
        );
        assert_eq!(namespaced_key(p, "/registry/core/pods/ns"), None);
        assert_eq!(namespaced_key(p, "/registry/core/podsx/ns/a"), None);
        assert_eq!(
            cluster_key("/registry/core/nodes/", "/registry/core/nodes/n1"),
            Some("n1")
        );
        assert_eq!(
            cluster_key("/registry/core/nodes/", "/registry/core/nodes/"),
            None
        );
    }

    #[test]
    fn partial_views_read_only_their_fields() {
        let svc = br#"{"metadata":{"name":"s","labels":{"a":"b"}},"spec":{"selector":{"app":"web"},"ports":[{"port":80}]}}"#;
        assert_eq!(labels(svc).get("a").map(String::as_str), Some("b"));
        assert_eq!(
            service_selector(svc)
                .unwrap()
                .get("app")
                .map(String::as_str),
            Some("web")
        );
        let external = br#"{"spec":{"type":"ExternalName","selector":{"app":"web"}}}"#;
        assert_eq!(service_selector(external), None);
        assert_eq!(service_selector(br#"{"spec":{"selector":{}}}"#), None);
        assert!(labels(b"not json").is_empty());

        let owned = br#"{"metadata":{"uid":"u1","ownerReferences":[{"uid":"o2"},{"uid":"o1"},{"uid":"o2"}]}}"#;
        assert!(may_matter_to_gc(owned));
        let facts = gc_facts(owned).unwrap();
        assert_eq!(facts.owners, vec!["o1".to_string(), "o2".to_string()]);
        assert!(!facts.waiting && facts.relevant());
        let waiting = br#"{"metadata":{"uid":"u","deletionTimestamp":"2026-01-01T00:00:00Z","finalizers":["foregroundDeletion"]}}"#;
        assert!(gc_facts(waiting).unwrap().waiting);
        let other_finalizer = br#"{"metadata":{"uid":"u","deletionTimestamp":"2026-01-01T00:00:00Z","finalizers":["x"]}}"#;
        assert!(!gc_facts(other_finalizer).unwrap().relevant());
        let plain = br#"{"metadata":{"uid":"u","name":"x"},"data":{"k":"v"}}"#;
        assert!(!may_matter_to_gc(plain));
        assert_eq!(uid(plain).as_deref(), Some("u"));
        let stored = br#"{"metadata":{"name":"p","uid":"u","labels":{"app":"web"},
            "creationTimestamp":"2026-01-01T00:00:00Z",
            "ownerReferences":[{"apiVersion":"apps/v1","kind":"ReplicaSet","name":"rs","uid":"o","controller":true}],
            "managedFields":[{"manager":"kubelet","operation":"Update","fieldsType":"FieldsV1","fieldsV1":{"f:status":{}}}]},
            "spec":{"nodeName":"n1","containers":[{"name":"c","image":"nginx","ports":[{"name":"http","containerPort":80}]}]},
            "status":{"phase":"Running","podIP":"10.0.0.2","conditions":[{"type":"Ready","status":"True"}],
            "containerStatuses":[{"name":"c","ready":true,"restartCount":0,"image":"nginx","imageID":""}]}}"#;
        let pod = pod(&KeyValue {
            key: "/registry/core/pods/ns/p".into(),
            value: bytes::Bytes::from_static(stored),
            create_revision: 3,
            mod_revision: 7,
        })
        .unwrap();
        assert_eq!(pod.metadata.managed_fields, None);
        assert_eq!(pod.metadata.resource_version.as_deref(), Some("7"));
        assert_eq!(pod.metadata.owner_references.unwrap()[0].uid, "o");
        let spec = pod.spec.unwrap();
        assert_eq!(
            spec.containers[0].ports.as_ref().unwrap()[0].container_port,
            80
        );
        assert_eq!(pod.status.unwrap().pod_ip.as_deref(), Some("10.0.0.2"));
        let summary = pod_summary(stored).unwrap();
        assert_eq!(
            summary,
            serde_json::json!({
                "metadata": {"name": "p", "uid": "u", "creationTimestamp": "2026-01-01T00:00:00Z",
                    "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs",
                        "uid": "o", "controller": true}]},
                "spec": {"nodeName": "n1"},
                "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}
            })
        );
        assert!(pod_summary(b"[1]").is_none());
        // The pre-check may let a look-alike through; parsing then decides.
        let lookalike = br#"{"metadata":{"uid":"u"},"data":{"k":"ownerReferences"}}"#;
        assert!(may_matter_to_gc(lookalike));
        assert!(!gc_facts(lookalike).unwrap().relevant());
    }
}
