//! Mirroring: each remote endpoint as an object a plain dataplane's policy
//! can select, as a pure function of the index.
//!
//! - Calico: a remote pod becomes a `NetworkSet` in its namespace, a remote
//!   HostEndpoint a `GlobalNetworkSet`, with the endpoint's labels and its
//!   IPs as `/32` or `/128` in `nets`. Written as `projectcalico.org/v3` when
//!   the Calico API server is installed, else as the `crd.projectcalico.org/v1`
//!   CRDs Calico stores them in (same metadata and spec: Calico reads the
//!   CRD's own labels).
//! - Cilium (optional): a cluster-scoped `CiliumCIDRGroup` per endpoint, with
//!   the same labels and the IPs in `externalCIDRs`.
//!
//! Everything written carries [`MANAGED_BY_LABEL`]` = `[`MANAGED_BY`]; objects
//! without it are never updated or deleted.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use serde_json::{Value, json};

use super::endpoint::{EndpointKey, EndpointKind};
use super::index::{Endpoint, IdentityChanges, IdentityIndex};
use super::names::{NameSpace, is_subdomain, object_name};

/// The label that marks the objects fedmesh writes (shared with the
/// Endpoints of federated services; the value tells the features apart).
pub use crate::mesh::ENDPOINTS_MANAGED_BY_LABEL as MANAGED_BY_LABEL;
/// fedmesh's value of [`MANAGED_BY_LABEL`] on mirrored endpoints.
pub const MANAGED_BY: &str = "identity.fedmesh.io";
/// The annotation naming the endpoint an object mirrors
/// (`<cluster>/<namespace>/<name>`): hashed names do not show it.
pub const SOURCE_ANNOTATION: &str = "fedmesh.io/source-endpoint";

/// Which API the local cluster serves Calico's network sets through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CalicoApi {
    /// `projectcalico.org/v3`: the Calico API server is installed.
    V3,
    /// `crd.projectcalico.org/v1`: only Calico's CRDs.
    Crd,
}

/// Which outputs are on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MirrorConfig {
    /// Calico network sets through this API, or none.
    pub calico: Option<CalicoApi>,
    /// Cilium CIDR groups.
    pub cilium: bool,
}

/// The kind of a mirrored object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ObjectKind {
    /// A Calico NetworkSet (namespaced): a remote pod.
    NetworkSet(CalicoApi),
    /// A Calico GlobalNetworkSet: a remote host endpoint.
    GlobalNetworkSet(CalicoApi),
    /// A Cilium CiliumCIDRGroup (cluster-scoped): any remote endpoint.
    CiliumCidrGroup,
}

impl ObjectKind {
    /// The `apiVersion`.
    pub fn api_version(self) -> &'static str {
        match self {
            ObjectKind::NetworkSet(api) | ObjectKind::GlobalNetworkSet(api) => match api {
                CalicoApi::V3 => "projectcalico.org/v3",
                CalicoApi::Crd => "crd.projectcalico.org/v1",
            },
            ObjectKind::CiliumCidrGroup => "cilium.io/v2alpha1",
        }
    }

    /// The `kind`.
    pub fn kind(self) -> &'static str {
        match self {
            ObjectKind::NetworkSet(_) => "NetworkSet",
            ObjectKind::GlobalNetworkSet(_) => "GlobalNetworkSet",
            ObjectKind::CiliumCidrGroup => "CiliumCIDRGroup",
        }
    }

    /// The resource's plural name, for URLs.
    pub fn plural(self) -> &'static str {
        match self {
            ObjectKind::NetworkSet(_) => "networksets",
            ObjectKind::GlobalNetworkSet(_) => "globalnetworksets",
            ObjectKind::CiliumCidrGroup => "ciliumcidrgroups",
        }
    }

    /// Whether objects of this kind live in a namespace.
    pub fn namespaced(self) -> bool {
        matches!(self, ObjectKind::NetworkSet(_))
    }

    /// The spec field holding the CIDRs.
    fn cidrs_field(self) -> &'static str {
        match self {
            ObjectKind::CiliumCidrGroup => "externalCIDRs",
            _ => "nets",
        }
    }
}

/// An object fedmesh writes: kind, namespace (for NetworkSets) and name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectRef {
    /// What kind of object.
    pub kind: ObjectKind,
    /// Its namespace, for namespaced kinds.
    pub namespace: Option<Arc<str>>,
    /// Its name.
    pub name: Arc<str>,
}

impl fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{} {ns}/{}", self.kind.kind(), self.name),
            None => write!(f, "{} {}", self.kind.kind(), self.name),
        }
    }
}

/// The desired state of one mirrored object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredObject {
    /// Which object.
    pub object: ObjectRef,
    /// Its labels: the endpoint's (those Kubernetes accepts as labels) and
    /// [`MANAGED_BY_LABEL`].
    pub labels: BTreeMap<String, String>,
    /// The endpoint it mirrors ([`SOURCE_ANNOTATION`]).
    pub source: String,
    /// The endpoint's IPs as host CIDRs, sorted.
    pub cidrs: Vec<String>,
}

impl DesiredObject {
    /// The object as the API server takes it (create, or update with the
    /// current `resourceVersion` added; or server-side apply).
    pub fn to_json(&self) -> Value {
        let mut metadata = json!({
            "name": &*self.object.name,
            "labels": &self.labels,
            "annotations": { SOURCE_ANNOTATION: &self.source },
        });
        if let (Some(ns), Some(meta)) = (&self.object.namespace, metadata.as_object_mut()) {
            meta.insert("namespace".into(), Value::from(&**ns));
        }
        json!({
            "apiVersion": self.object.kind.api_version(),
            "kind": self.object.kind.kind(),
            "metadata": metadata,
            "spec": { self.object.kind.cidrs_field(): &self.cidrs },
        })
    }
}

/// One object to rewrite after an event: write `desired`, or delete the
/// object when it is `None` (the endpoint went, lost its IPs, or its
/// cluster was removed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rewrite {
    /// Which object.
    pub object: ObjectRef,
    /// What it should be, or `None` for absent.
    pub desired: Option<DesiredObject>,
}

/// What mirroring left out, for a status message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Skipped {
    /// Remote pods without an IP yet.
    pub pods_without_ips: usize,
    /// Remote host endpoints without `expectedIPs`.
    pub hosts_without_ips: usize,
    /// Labels left off objects because Kubernetes would refuse them as labels
    /// (a `pcns.` prefix can push a key's name over 63 characters).
    pub labels_dropped: usize,
    /// Objects two endpoints would share a name for (a digest collision):
    /// neither is written.
    pub collisions: Vec<(ObjectRef, EndpointKey, EndpointKey)>,
}

impl Skipped {
    /// A sentence for a status condition or log line, or `None` when nothing
    /// was skipped.
    pub fn message(&self) -> Option<String> {
        let mut parts = Vec::new();
        if self.pods_without_ips > 0 {
            parts.push(format!(
                "{} remote pods have no IP yet",
                self.pods_without_ips
            ));
        }
        if self.hosts_without_ips > 0 {
            parts.push(format!(
                "{} remote host endpoints have no spec.expectedIPs",
                self.hosts_without_ips
            ));
        }
        if self.labels_dropped > 0 {
            parts.push(format!(
                "{} labels are not valid Kubernetes labels and were left off",
                self.labels_dropped
            ));
        }
        for (object, a, b) in &self.collisions {
            parts.push(format!(
                "{object} would mirror both {a} and {b}; neither is written"
            ));
        }
        (!parts.is_empty()).then(|| format!("not mirrored: {}", parts.join("; ")))
    }
}

/// Every object mirroring should hold, from scratch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Desired {
    /// The objects, by reference.
    pub objects: BTreeMap<ObjectRef, DesiredObject>,
    /// What was left out.
    pub skipped: Skipped,
}

/// The objects mirroring the remote endpoint `key` (whether or not it
/// exists): none for a local endpoint.
pub fn outputs(config: &MirrorConfig, key: &EndpointKey) -> Vec<ObjectRef> {
    let Some(cluster) = key.cluster() else {
        return Vec::new();
    };
    let mut refs = Vec::with_capacity(2);
    if let Some(api) = config.calico {
        let (kind, namespace) = match key {
            EndpointKey::Workload { namespace, .. } => {
                (ObjectKind::NetworkSet(api), Some(namespace.clone()))
            }
            EndpointKey::Host { .. } => (ObjectKind::GlobalNetworkSet(api), None),
        };
        refs.push(ObjectRef {
            kind,
            namespace,
            name: object_name(NameSpace::Calico, cluster, key).into(),
        });
    }
    if config.cilium {
        refs.push(ObjectRef {
            kind: ObjectKind::CiliumCidrGroup,
            namespace: None,
            name: object_name(NameSpace::Cilium, cluster, key).into(),
        });
    }
    refs
}

/// The objects to rewrite after an event that made `changes`: exactly the
/// outputs of the endpoints it touched (pod churn rewrites only the churned
/// pods' objects).
pub fn rewrites(
    index: &IdentityIndex,
    config: &MirrorConfig,
    changes: &IdentityChanges,
) -> Vec<Rewrite> {
    let mut out = Vec::new();
    for key in &changes.endpoints {
        let endpoint = index.get(key).filter(|e| !e.ips().is_empty());
        let (labels, cidrs) = match endpoint {
            Some(e) => {
                let (labels, _) = object_labels(e);
                (Some(labels), cidrs(e.ips()))
            }
            None => (None, Vec::new()),
        };
        for object in outputs(config, key) {
            let desired = labels.as_ref().map(|labels| DesiredObject {
                object: object.clone(),
                labels: labels.clone(),
                source: key.to_string(),
                cidrs: cidrs.clone(),
            });
            out.push(Rewrite { object, desired });
        }
    }
    out
}

/// Every object mirroring should hold, computed from the whole index (at
/// start, after a relist, and to check the incremental path).
pub fn desired(index: &IdentityIndex, config: &MirrorConfig) -> Desired {
    let mut result = Desired::default();
    let mut owners: BTreeMap<ObjectRef, EndpointKey> = BTreeMap::new();
    for endpoint in index.endpoints() {
        let key = endpoint.key();
        if key.cluster().is_none() {
            continue;
        }
        if endpoint.ips().is_empty() {
            match key.kind() {
                EndpointKind::Workload => result.skipped.pods_without_ips += 1,
                EndpointKind::Host => result.skipped.hosts_without_ips += 1,
            }
            continue;
        }
        let (labels, dropped) = object_labels(endpoint);
        result.skipped.labels_dropped += dropped;
        let nets = cidrs(endpoint.ips());
        for object in outputs(config, key) {
            if let Some(other) = owners.get(&object) {
                result
                    .skipped
                    .collisions
                    .push((object.clone(), other.clone(), key.clone()));
                continue;
            }
            owners.insert(object.clone(), key.clone());
            result.objects.insert(
                object.clone(),
                DesiredObject {
                    object,
                    labels: labels.clone(),
                    source: key.to_string(),
                    cidrs: nets.clone(),
                },
            );
        }
    }
    for (object, _, _) in &result.skipped.collisions {
        result.objects.remove(object);
    }
    result
}

/// An object of a mirrored kind as it exists in the local cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExistingObject {
    /// Which object.
    pub object: ObjectRef,
    /// Whether it carries fedmesh's [`MANAGED_BY_LABEL`]: only then may
    /// fedmesh change or delete it.
    pub owned: bool,
    /// Its labels.
    pub labels: BTreeMap<String, String>,
    /// Its source annotation.
    pub source: Option<String>,
    /// Its CIDRs.
    pub cidrs: Vec<String>,
}

/// Why an existing object could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MirrorError {
    /// The object has no `metadata.name`.
    #[error("{kind} has no metadata.name")]
    MissingName {
        /// Its kind.
        kind: &'static str,
    },
}

impl ExistingObject {
    /// Reads an object of `kind` listed from the local cluster.
    pub fn from_json(kind: ObjectKind, object: &Value) -> Result<Self, MirrorError> {
        let name = object
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .ok_or(MirrorError::MissingName { kind: kind.kind() })?;
        let labels: BTreeMap<String, String> = object
            .pointer("/metadata/labels")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
            .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
            .collect();
        let cidrs = object
            .get("spec")
            .and_then(|s| s.get(kind.cidrs_field()))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect();
        Ok(Self {
            object: ObjectRef {
                kind,
                namespace: object
                    .pointer("/metadata/namespace")
                    .and_then(Value::as_str)
                    .filter(|_| kind.namespaced())
                    .map(Arc::from),
                name: name.into(),
            },
            owned: labels.get(MANAGED_BY_LABEL).map(String::as_str) == Some(MANAGED_BY),
            source: object
                .pointer(&format!(
                    "/metadata/annotations/{}",
                    SOURCE_ANNOTATION.replace('/', "~1")
                ))
                .and_then(Value::as_str)
                .map(str::to_owned),
            labels,
            cidrs,
        })
    }
}

/// A write that makes the cluster match the desired objects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Write {
    /// The object does not exist yet.
    Create(DesiredObject),
    /// fedmesh's object exists with other labels, source or CIDRs.
    Update(DesiredObject),
    /// fedmesh's object is no longer desired.
    Delete(ObjectRef),
}

/// What [`diff`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Diff {
    /// The writes, in object order.
    pub writes: Vec<Write>,
    /// Desired objects whose name an object fedmesh does not own already
    /// has: not written (an error to report, never an overwrite).
    pub conflicts: Vec<ObjectRef>,
}

/// The writes that turn `existing` (every object of the mirrored kinds in
/// the local cluster) into `desired`. Objects without fedmesh's label are
/// never touched.
pub fn diff(desired: &Desired, existing: &[ExistingObject]) -> Diff {
    let mut result = Diff::default();
    let by_ref: BTreeMap<&ObjectRef, &ExistingObject> =
        existing.iter().map(|e| (&e.object, e)).collect();
    for (object, want) in &desired.objects {
        match by_ref.get(object) {
            None => result.writes.push(Write::Create(want.clone())),
            Some(have) if !have.owned => result.conflicts.push(object.clone()),
            Some(have) => {
                if have.labels != want.labels
                    || have.cidrs != want.cidrs
                    || have.source.as_deref() != Some(want.source.as_str())
                {
                    result.writes.push(Write::Update(want.clone()));
                }
            }
        }
    }
    for have in existing {
        if have.owned && !desired.objects.contains_key(&have.object) {
            result.writes.push(Write::Delete(have.object.clone()));
        }
    }
    result
}

/// The labels an endpoint's objects carry, and how many of its labels were
/// left off as invalid Kubernetes labels.
fn object_labels(endpoint: &Endpoint) -> (BTreeMap<String, String>, usize) {
    let mut labels = BTreeMap::new();
    let mut dropped = 0;
    for (k, v) in endpoint.labels().iter() {
        if is_label_key(k) && is_label_value(v) {
            labels.insert(k.to_owned(), v.to_owned());
        } else {
            dropped += 1;
        }
    }
    labels.insert(MANAGED_BY_LABEL.to_owned(), MANAGED_BY.to_owned());
    (labels, dropped)
}

fn cidrs(ips: &[IpAddr]) -> Vec<String> {
    ips.iter()
        .map(|ip| match ip {
            IpAddr::V4(v4) => format!("{v4}/32"),
            IpAddr::V6(v6) => format!("{v6}/128"),
        })
        .collect()
}

/// A Kubernetes label key: an optional DNS subdomain prefix and `/`, and a
/// name of at most 63 characters.
fn is_label_key(key: &str) -> bool {
    match key.rsplit_once('/') {
        Some((prefix, name)) => is_subdomain(prefix) && is_label_name(name),
        None => is_label_name(key),
    }
}

/// A label key's name: 1 to 63 alphanumerics, `-`, `_` or `.`, starting and
/// ending with an alphanumeric.
fn is_label_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty() && bytes.len() <= 63 && is_label_value(name)
}

/// A label value: empty, or a label name.
fn is_label_value(value: &str) -> bool {
    let bytes = value.as_bytes();
    match (bytes.first(), bytes.last()) {
        (None, _) | (_, None) => true,
        (Some(first), Some(last)) => {
            bytes.len() <= 63
                && first.is_ascii_alphanumeric()
                && last.is_ascii_alphanumeric()
                && bytes
                    .iter()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_keys_and_values_follow_kubernetes_rules() {
        for ok in [
            "app",
            "pcns.app",
            "pcns.kubernetes.io/metadata.name",
            "a.b/c-d_e",
        ] {
            assert!(is_label_key(ok), "{ok}");
        }
        let long_name = format!("pcns.{}", "x".repeat(60));
        for bad in ["", "-a", "a/", "/a", "a b", long_name.as_str(), "A_B/c"] {
            assert!(!is_label_key(bad), "{bad}");
        }
        assert!(is_label_value(""));
        assert!(is_label_value("k8s"));
        assert!(!is_label_value("-x"));
        assert!(!is_label_value(&"v".repeat(64)));
    }
}
