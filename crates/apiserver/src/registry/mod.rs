//! What a resource is: the table of served resources (built-in and from CRDs), how
//! URLs and kinds map onto them, and where their objects live in the store.
//!
//! ```text
//!   builtin::RESOURCES ──┐
//!                        ├─> Registry ──> discovery documents (discovery.rs)
//!   CRD objects ─ crd.rs ┘        └─────> ResourceInfo per (group, version, plural)
//! ```

mod builtin;
pub mod conversion;
mod crd;
pub mod discovery;

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

pub use crd::{CrdError, CrdVersion, crd_status};

/// A subresource a resource serves under `<resource>/<name>/<sub>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subresource {
    /// `status`: writes touch only `.status`.
    Status,
    /// `scale`: the Scale view of `.spec.replicas`.
    Scale,
    /// `token`: TokenRequest on serviceaccounts.
    Token,
    /// `finalize`: namespaces' `spec.finalizers`.
    Finalize,
    /// `binding`: assigning a pod to a node (what a scheduler posts).
    Binding,
    /// `log`: a pod's container logs.
    Log,
}

impl Subresource {
    /// The path segment naming this subresource.
    pub fn name(self) -> &'static str {
        match self {
            Subresource::Status => "status",
            Subresource::Scale => "scale",
            Subresource::Token => "token",
            Subresource::Finalize => "finalize",
            Subresource::Binding => "binding",
            Subresource::Log => "log",
        }
    }

    /// Parses a path segment.
    pub fn parse(segment: &str) -> Option<Self> {
        match segment {
            "status" => Some(Subresource::Status),
            "scale" => Some(Subresource::Scale),
            "token" => Some(Subresource::Token),
            "finalize" => Some(Subresource::Finalize),
            "binding" => Some(Subresource::Binding),
            "log" => Some(Subresource::Log),
            _ => None,
        }
    }
}

/// The verbs a resource accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerbSet {
    /// get, list, watch, create, update, patch, delete, deletecollection.
    All,
    /// Only create (access reviews).
    CreateOnly,
}

impl VerbSet {
    /// The verb names in discovery order (sorted, as kube serves them).
    pub fn names(self) -> &'static [&'static str] {
        match self {
            VerbSet::All => &[
                "create",
                "delete",
                "deletecollection",
                "get",
                "list",
                "patch",
                "update",
                "watch",
            ],
            VerbSet::CreateOnly => &["create"],
        }
    }

    /// Whether `verb` is allowed.
    pub fn allows(self, verb: &str) -> bool {
        self.names().contains(&verb)
    }
}

/// Everything the server needs to know about one served group/version/resource.
#[derive(Debug, Clone)]
pub struct ResourceInfo {
    /// API group, empty for the core group.
    pub group: String,
    /// Served version.
    pub version: String,
    /// Plural resource name (the URL segment).
    pub plural: String,
    /// Singular name.
    pub singular: String,
    /// Kind of one object.
    pub kind: String,
    /// Kind of a list (`<Kind>List`).
    pub list_kind: String,
    /// Whether objects live in namespaces.
    pub namespaced: bool,
    /// Allowed verbs.
    pub verbs: VerbSet,
    /// kubectl short names.
    pub short_names: Vec<String>,
    /// Categories such as `all`.
    pub categories: Vec<String>,
    /// Subresources served.
    pub subresources: Vec<Subresource>,
    /// Field selector labels beyond `metadata.name` and `metadata.namespace`, with
    /// the JSON path (dot separated) each reads.
    pub selectable_fields: Vec<String>,
    /// For CRD-defined resources, the CRD's name and this version's schema.
    pub crd: Option<CrdVersion>,
}

impl ResourceInfo {
    /// `v1` or `group/version`.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// `services` or `customresourcedefinitions.apiextensions.k8s.io`: how kube
    /// names the resource in error messages.
    pub fn qualified_plural(&self) -> String {
        if self.group.is_empty() {
            self.plural.clone()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    /// Store key prefix of every object of this resource, ending with `/`.
    /// Versions of one resource share their storage, and so do the resources
    /// [`conversion`] maps onto another group's.
    pub fn key_prefix(&self) -> String {
        let group = match conversion::storage_group(&self.group, &self.plural) {
            "" => "core",
            g => g,
        };
        format!("/registry/{group}/{}/", self.plural)
    }

    /// Store key prefix of the objects in one namespace (or all, for `None`).
    pub fn scope_prefix(&self, namespace: Option<&str>) -> String {
        match namespace {
            Some(ns) if self.namespaced => format!("{}{ns}/", self.key_prefix()),
            _ => self.key_prefix(),
        }
    }

    /// Store key of one object.
    pub fn key(&self, namespace: Option<&str>, name: &str) -> String {
        match namespace {
            Some(ns) if self.namespaced => format!("{}{ns}/{name}", self.key_prefix()),
            _ => format!("{}{name}", self.key_prefix()),
        }
    }

    /// Whether the subresource is served.
    pub fn has_subresource(&self, sub: Subresource) -> bool {
        self.subresources.contains(&sub)
    }

    /// Whether `field` is a supported field selector label.
    pub fn supports_field(&self, field: &str) -> bool {
        field == "metadata.name"
            || (field == "metadata.namespace" && self.namespaced)
            || self.selectable_fields.iter().any(|f| f == field)
    }
}

/// Key identifying a served resource.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Gvr {
    group: String,
    version: String,
    plural: String,
}

#[derive(Debug, Default)]
struct Tables {
    resources: BTreeMap<Gvr, Arc<ResourceInfo>>,
    /// CRD name -> the keys it contributed.
    crds: BTreeMap<String, Vec<Gvr>>,
    /// Bumped on every change, so derived documents know when to rebuild.
    generation: u64,
}

/// The served resources, shared by the HTTP layer, the object layer and the
/// controllers. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Registry {
    tables: Arc<RwLock<Tables>>,
}

impl Default for Registry {
    fn default() -> Self {
        Self::with_builtins()
    }
}

impl Registry {
    /// A registry holding the built-in resources.
    pub fn with_builtins() -> Self {
        let mut tables = Tables::default();
        for info in builtin::resources() {
            let key = Gvr {
                group: info.group.clone(),
                version: info.version.clone(),
                plural: info.plural.clone(),
            };
            tables.resources.insert(key, Arc::new(info));
        }
        Registry {
            tables: Arc::new(RwLock::new(tables)),
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Tables> {
        // A poisoned lock only means a writer panicked mid-insert of whole entries;
        // the map itself is still consistent.
        self.tables.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Tables> {
        self.tables.write().unwrap_or_else(|e| e.into_inner())
    }

    /// The resource served at `group/version/plural`.
    pub fn resolve(&self, group: &str, version: &str, plural: &str) -> Option<Arc<ResourceInfo>> {
        let key = Gvr {
            group: group.to_owned(),
            version: version.to_owned(),
            plural: plural.to_owned(),
        };
        self.read().resources.get(&key).cloned()
    }

    /// The resource whose objects have this apiVersion and kind.
    pub fn by_kind(&self, api_version: &str, kind: &str) -> Option<Arc<ResourceInfo>> {
        let (group, version) = split_api_version(api_version);
        self.read()
            .resources
            .values()
            .find(|r| r.group == group && r.version == version && r.kind == kind)
            .cloned()
    }

    /// Every served resource.
    pub fn all(&self) -> Vec<Arc<ResourceInfo>> {
        self.read().resources.values().cloned().collect()
    }

    /// Every served version of every group, one entry per group, versions ordered
    /// with the preferred one first. The core group is not included.
    pub fn groups(&self) -> Vec<(String, Vec<String>)> {
        let tables = self.read();
        let mut groups: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        for key in tables.resources.keys() {
            if key.group.is_empty() {
                continue;
            }
            let versions = groups.entry(&key.group).or_default();
            if !versions.contains(&key.version) {
                versions.push(key.version.clone());
            }
        }
        let mut out: Vec<(String, Vec<String>)> = groups
            .into_iter()
            .map(|(g, mut versions)| {
                versions.sort_by_key(|v| std::cmp::Reverse(version_priority(v)));
                (g.to_owned(), versions)
            })
            .collect();
        // Built-in groups first, in the order kube lists them, then CRD groups.
        out.sort_by_key(|(g, _)| builtin::group_rank(g));
        out
    }

    /// The resources served in one group/version, sorted by name.
    pub fn resources_in(&self, group: &str, version: &str) -> Vec<Arc<ResourceInfo>> {
        self.read()
            .resources
            .iter()
            .filter(|(k, _)| k.group == group && k.version == version)
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// Serves (or re-serves, after an update) the resources a CRD defines.
    pub fn apply_crd(&self, crd: &serde_json::Value) -> Result<Vec<Arc<ResourceInfo>>, CrdError> {
        let (name, infos) = crd::resources_of(crd)?;
        let mut tables = self.write();
        if let Some(old) = tables.crds.remove(&name) {
            for key in old {
                tables.resources.remove(&key);
            }
        }
        let mut keys = Vec::new();
        let mut out = Vec::new();
        for info in infos {
            let key = Gvr {
                group: info.group.clone(),
                version: info.version.clone(),
                plural: info.plural.clone(),
            };
            let info = Arc::new(info);
            tables.resources.insert(key.clone(), info.clone());
            keys.push(key);
            out.push(info);
        }
        tables.crds.insert(name, keys);
        tables.generation += 1;
        Ok(out)
    }

    /// Stops serving what a CRD defined.
    pub fn remove_crd(&self, name: &str) {
        let mut tables = self.write();
        if let Some(old) = tables.crds.remove(name) {
            for key in old {
                tables.resources.remove(&key);
            }
            tables.generation += 1;
        }
    }

    /// Changes whenever the set of served resources changes.
    pub fn generation(&self) -> u64 {
        self.read().generation
    }

    /// The structural schemas of every served CRD version, for OpenAPI.
    pub fn crd_schemas(&self) -> Vec<crate::schema::CrdVersionSchema> {
        self.read()
            .resources
            .values()
            .filter_map(|r| {
                let crd = r.crd.as_ref()?;
                Some(crate::schema::CrdVersionSchema {
                    group: r.group.clone(),
                    version: r.version.clone(),
                    kind: r.kind.clone(),
                    list_kind: r.list_kind.clone(),
                    plural: r.plural.clone(),
                    namespaced: r.namespaced,
                    status_subresource: r.has_subresource(Subresource::Status),
                    schema: crd.structural.clone()?,
                })
            })
            .collect()
    }

    /// Whether another CRD or a built-in already serves `group/plural`.
    pub fn conflicts_with(&self, crd_name: &str, group: &str, plural: &str) -> bool {
        let tables = self.read();
        tables.resources.iter().any(|(k, v)| {
            k.group == group
                && k.plural == plural
                && v.crd.as_ref().is_none_or(|c| c.crd_name != crd_name)
        })
    }
}

/// Splits `group/version` (or `v1`) into its parts.
pub fn split_api_version(api_version: &str) -> (&str, &str) {
    match api_version.split_once('/') {
        Some((g, v)) => (g, v),
        None => ("", api_version),
    }
}

/// Kubernetes' version ordering: GA > beta > alpha > other, higher numbers first.
fn version_priority(v: &str) -> (u8, u32, u32) {
    let Some(rest) = v.strip_prefix('v') else {
        return (0, 0, 0);
    };
    let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
    let Ok(major) = digits.parse::<u32>() else {
        return (0, 0, 0);
    };
    let tail = &rest[digits.len()..];
    let minor_of = |s: &str| s.parse::<u32>().ok();
    if tail.is_empty() {
        (3, major, 0)
    } else if let Some(n) = tail.strip_prefix("beta").and_then(minor_of) {
        (2, major, n)
    } else if let Some(n) = tail.strip_prefix("alpha").and_then(minor_of) {
        (1, major, n)
    } else {
        (0, 0, 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn core_services_resolve_with_status_and_short_name() {
        let reg = Registry::with_builtins();
        let svc = reg.resolve("", "v1", "services").unwrap();
        assert_eq!(svc.kind, "Service");
        assert!(svc.namespaced);
        assert_eq!(svc.short_names, vec!["svc"]);
        assert!(svc.has_subresource(Subresource::Status));
        assert_eq!(
            svc.key(Some("default"), "a"),
            "/registry/core/services/default/a"
        );
        assert_eq!(svc.api_version(), "v1");
    }

    #[test]
    fn grouped_resources_are_qualified_in_messages_and_keys() {
        let reg = Registry::with_builtins();
        let crd = reg
            .resolve("apiextensions.k8s.io", "v1", "customresourcedefinitions")
            .unwrap();
        assert!(!crd.namespaced);
        assert_eq!(
            crd.qualified_plural(),
            "customresourcedefinitions.apiextensions.k8s.io"
        );
        assert_eq!(
            crd.key(None, "x"),
            "/registry/apiextensions.k8s.io/customresourcedefinitions/x"
        );
        assert_eq!(crd.short_names, vec!["crd", "crds"]);
    }

    #[test]
    fn reviews_are_create_only() {
        let reg = Registry::with_builtins();
        let sar = reg
            .resolve("authorization.k8s.io", "v1", "selfsubjectaccessreviews")
            .unwrap();
        assert!(sar.verbs.allows("create"));
        assert!(!sar.verbs.allows("get"));
    }

    #[test]
    fn by_kind_finds_the_resource() {
        let reg = Registry::with_builtins();
        let lease = reg.by_kind("coordination.k8s.io/v1", "Lease").unwrap();
        assert_eq!(lease.plural, "leases");
        assert!(reg.by_kind("v1", "Lease").is_none());
    }

    #[test]
    fn version_priority_orders_like_kube() {
        let mut v = vec!["v1alpha1", "v2", "v1beta2", "v1", "foo", "v1beta1"];
        v.sort_by_key(|x| std::cmp::Reverse(version_priority(x)));
        assert_eq!(v, vec!["v2", "v1", "v1beta2", "v1beta1", "v1alpha1", "foo"]);
    }

    fn widget_crd() -> serde_json::Value {
        json!({
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": "widgets.example.com"},
            "spec": {
                "group": "example.com",
                "scope": "Namespaced",
                "names": {"plural": "widgets", "singular": "widget", "kind": "Widget",
                          "shortNames": ["wd"], "categories": ["all"]},
                "versions": [
                    {"name": "v1", "served": true, "storage": true,
                     "subresources": {"status": {}},
                     "schema": {"openAPIV3Schema": {"type": "object"}}},
                    {"name": "v1beta1", "served": true, "storage": false,
                     "schema": {"openAPIV3Schema": {"type": "object"}}},
                    {"name": "v1alpha1", "served": false, "storage": false}
                ]
            }
        })
    }

    #[test]
    fn a_crd_adds_and_removes_its_served_versions() {
        let reg = Registry::with_builtins();
        let infos = reg.apply_crd(&widget_crd()).unwrap();
        assert_eq!(infos.len(), 2);
        let w = reg.resolve("example.com", "v1", "widgets").unwrap();
        assert_eq!(w.kind, "Widget");
        assert_eq!(w.list_kind, "WidgetList");
        assert!(w.has_subresource(Subresource::Status));
        assert_eq!(w.key_prefix(), "/registry/example.com/widgets/");
        assert!(reg.resolve("example.com", "v1alpha1", "widgets").is_none());
        let groups = reg.groups();
        let (_, versions) = groups.iter().find(|(g, _)| g == "example.com").unwrap();
        assert_eq!(versions, &vec!["v1".to_owned(), "v1beta1".to_owned()]);
        assert!(reg.conflicts_with("other.example.com", "example.com", "widgets"));
        assert!(!reg.conflicts_with("widgets.example.com", "example.com", "widgets"));
        reg.remove_crd("widgets.example.com");
        assert!(reg.resolve("example.com", "v1", "widgets").is_none());
    }
}
