//! Namespace lifecycle: the default namespaces, the `NamespaceLifecycle`
//! admission decisions, and the namespace controller's deletion steps.
//!
//! Deleting a namespace first marks it (`deletionTimestamp`, phase
//! `Terminating`); the controller then deletes everything in it, and once
//! nothing remains removes the `kubernetes` finalizer from
//! `spec.finalizers` (the `finalize` subresource), after which the
//! namespace itself is deleted. While it terminates, creating objects in
//! it is Forbidden.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Namespace, NamespaceCondition, NamespaceSpec, NamespaceStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use serde_json::{Value, json};

use super::gc::{self, DeleteOptions, GcError, Propagation};

/// Namespaces a cluster starts with.
pub const DEFAULT_NAMESPACES: [&str; 4] =
    ["default", "kube-system", "kube-public", "kube-node-lease"];
/// Namespaces that may never be deleted.
pub const IMMORTAL_NAMESPACES: [&str; 3] = ["default", "kube-system", "kube-public"];
/// The finalizer in `spec.finalizers` the namespace controller owns.
pub const FINALIZER_KUBERNETES: &str = "kubernetes";
/// Label kube-apiserver puts on every namespace, with its name.
pub const LABEL_METADATA_NAME: &str = "kubernetes.io/metadata.name";

/// Defaults kube-apiserver applies to a namespace being created: the
/// `kubernetes` finalizer, phase Active, and the metadata-name label.
pub fn apply_create_defaults(namespace: &mut Namespace) {
    let name = namespace.metadata.name.clone().unwrap_or_default();
    let spec = namespace.spec.get_or_insert_with(NamespaceSpec::default);
    let finalizers = spec.finalizers.get_or_insert_with(Vec::new);
    if !finalizers.iter().any(|f| f == FINALIZER_KUBERNETES) {
        finalizers.push(FINALIZER_KUBERNETES.to_string());
    }
    namespace
        .status
        .get_or_insert_with(NamespaceStatus::default)
        .phase = Some("Active".to_string());
    namespace
        .metadata
        .labels
        .get_or_insert_with(BTreeMap::new)
        .insert(LABEL_METADATA_NAME.to_string(), name);
}

/// The default namespaces as they are created at startup (without uid,
/// resourceVersion and creationTimestamp, which the store sets).
pub fn default_namespaces() -> Vec<Namespace> {
    DEFAULT_NAMESPACES
        .iter()
        .map(|name| {
            let mut ns = Namespace {
                metadata: ObjectMeta {
                    name: Some((*name).to_string()),
                    ..Default::default()
                },
                ..Default::default()
            };
            apply_create_defaults(&mut ns);
            ns
        })
        .collect()
}

/// Whether the namespace is terminating.
pub fn is_terminating(namespace: &Namespace) -> bool {
    namespace.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Terminating")
}

/// The verb of a request, as admission sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// POST
    Create,
    /// PUT / PATCH
    Update,
    /// DELETE
    Delete,
}

/// The request a namespace admission decision is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdmissionRequest<'a> {
    /// The verb.
    pub operation: Operation,
    /// API group of the resource (`""` for core).
    pub group: &'a str,
    /// Resource (plural), e.g. `pods`.
    pub resource: &'a str,
    /// Object name (may be empty on create with generateName).
    pub name: &'a str,
    /// Namespace of the request; empty for cluster-scoped resources.
    pub namespace: &'a str,
}

/// A request NamespaceLifecycle refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdmissionError {
    /// The request's namespace does not exist (404 NotFound).
    #[error("namespaces \"{namespace}\" not found")]
    NamespaceNotFound {
        /// The missing namespace.
        namespace: String,
    },
    /// Creating in a terminating namespace (403 Forbidden).
    #[error(
        "{} is forbidden: unable to create new content in namespace {namespace} because it is being terminated",
        qualified(group, resource, name)
    )]
    NamespaceTerminating {
        /// The terminating namespace.
        namespace: String,
        /// Group of the refused resource.
        group: String,
        /// The refused resource.
        resource: String,
        /// The object's name, if any.
        name: String,
    },
    /// Deleting `default`, `kube-system` or `kube-public` (403 Forbidden).
    #[error("namespaces \"{name}\" is forbidden: this namespace may not be deleted")]
    ImmortalNamespace {
        /// The namespace.
        name: String,
    },
}

fn qualified(group: &str, resource: &str, name: &str) -> String {
    let gr = if group.is_empty() {
        resource.to_string()
    } else {
        format!("{resource}.{group}")
    };
    if name.is_empty() {
        gr
    } else {
        format!("{gr} \"{name}\"")
    }
}

impl AdmissionError {
    /// The HTTP status code.
    pub fn code(&self) -> u16 {
        match self {
            Self::NamespaceNotFound { .. } => 404,
            _ => 403,
        }
    }

    /// The `meta.k8s.io/v1` Status object kube-apiserver returns.
    pub fn status(&self) -> Value {
        let (reason, details) = match self {
            Self::NamespaceNotFound { namespace } => {
                ("NotFound", json!({"name": namespace, "kind": "namespaces"}))
            }
            Self::NamespaceTerminating {
                namespace,
                group,
                resource,
                name,
            } => {
                let mut d = serde_json::Map::new();
                if !name.is_empty() {
                    d.insert("name".into(), json!(name));
                }
                if !group.is_empty() {
                    d.insert("group".into(), json!(group));
                }
                d.insert("kind".into(), json!(resource));
                d.insert(
                    "causes".into(),
                    json!([{
                        "reason": "NamespaceTerminating",
                        "message": format!("namespace {namespace} is being terminated"),
                        "field": "metadata.namespace"
                    }]),
                );
                ("Forbidden", Value::Object(d))
            }
            Self::ImmortalNamespace { name } => {
                ("Forbidden", json!({"name": name, "kind": "namespaces"}))
            }
        };
        json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.to_string(),
            "reason": reason,
            "details": details,
            "code": self.code(),
        })
    }
}

/// kube-apiserver's `NamespaceLifecycle` admission: `namespace` is the
/// stored namespace the request names (`None` when it does not exist).
/// Namespaces themselves and cluster-scoped resources pass (except the
/// deletion of an immortal namespace), as do deletes and access reviews.
pub fn admit(
    request: &AdmissionRequest<'_>,
    namespace: Option<&Namespace>,
) -> Result<(), AdmissionError> {
    let is_namespace_kind = request.group.is_empty() && request.resource == "namespaces";
    if is_namespace_kind {
        if request.operation == Operation::Delete && IMMORTAL_NAMESPACES.contains(&request.name) {
            return Err(AdmissionError::ImmortalNamespace {
                name: request.name.to_string(),
            });
        }
        return Ok(());
    }
    // Deleting namespaced objects is always admitted (a missing object is
    // the store's NotFound, not the namespace's).
    if request.namespace.is_empty() || request.operation == Operation::Delete {
        return Ok(());
    }
    if request.group == "authorization.k8s.io" && request.resource == "localsubjectaccessreviews" {
        return Ok(());
    }
    let Some(ns) = namespace else {
        return Err(AdmissionError::NamespaceNotFound {
            namespace: request.namespace.to_string(),
        });
    };
    if request.operation == Operation::Create && is_terminating(ns) {
        return Err(AdmissionError::NamespaceTerminating {
            namespace: request.namespace.to_string(),
            group: request.group.to_string(),
            resource: request.resource.to_string(),
            name: request.name.to_string(),
        });
    }
    Ok(())
}

/// What a DELETE of a namespace does.
#[derive(Debug, Clone, PartialEq)]
pub enum NamespaceDeletion {
    /// Store this namespace: marked terminating (deletionTimestamp set,
    /// phase Terminating, GC finalizers from the options).
    MarkTerminating(Box<Namespace>),
    /// Already terminating and `spec.finalizers` is empty: delete it with
    /// the normal object deletion (metadata finalizers still apply).
    Delete,
    /// Already terminating with finalizers pending: nothing changes, the
    /// stored object is returned.
    Pending,
}

/// kube-apiserver's namespace DELETE.
pub fn delete_namespace(
    namespace: &Namespace,
    options: &DeleteOptions,
    now: jiff::Timestamp,
) -> Result<NamespaceDeletion, GcError> {
    if namespace.metadata.deletion_timestamp.is_some() {
        let pending = namespace
            .spec
            .as_ref()
            .and_then(|s| s.finalizers.as_ref())
            .is_some_and(|f| !f.is_empty());
        return Ok(if pending {
            NamespaceDeletion::Pending
        } else {
            NamespaceDeletion::Delete
        });
    }
    let mut next = namespace.clone();
    next.metadata.deletion_timestamp = Some(Time(now));
    next.status
        .get_or_insert_with(NamespaceStatus::default)
        .phase = Some("Terminating".to_string());
    if options.orphan_dependents.is_some() && options.propagation.is_some() {
        return Err(GcError::ConflictingOptions);
    }
    let current = namespace.metadata.finalizers.clone().unwrap_or_default();
    let has = |f: &str| current.iter().any(|x| x == f);
    // Namespaces read `orphanDependents: false` as foreground, unlike other
    // objects.
    let orphan = match (options.orphan_dependents, options.propagation) {
        (Some(o), _) => o,
        (None, Some(p)) => p == Propagation::Orphan,
        (None, None) => has(gc::FINALIZER_ORPHAN),
    };
    let foreground = match (options.orphan_dependents, options.propagation) {
        (Some(o), _) => !o,
        (None, Some(p)) => p == Propagation::Foreground,
        (None, None) => has(gc::FINALIZER_FOREGROUND),
    };
    if orphan != has(gc::FINALIZER_ORPHAN) || foreground != has(gc::FINALIZER_FOREGROUND) {
        let mut finalizers: Vec<String> = current
            .iter()
            .filter(|f| *f != gc::FINALIZER_ORPHAN && *f != gc::FINALIZER_FOREGROUND)
            .cloned()
            .collect();
        if orphan {
            finalizers.push(gc::FINALIZER_ORPHAN.to_string());
        }
        if foreground {
            finalizers.push(gc::FINALIZER_FOREGROUND.to_string());
        }
        next.metadata.finalizers = (!finalizers.is_empty()).then_some(finalizers);
    }
    Ok(NamespaceDeletion::MarkTerminating(Box::new(next)))
}

/// Content still present in a terminating namespace, per resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemainingContent {
    /// API group (`""` for core).
    pub group: String,
    /// Resource (plural).
    pub resource: String,
    /// How many objects remain.
    pub count: usize,
    /// Finalizers on those objects, with how many objects carry each.
    pub finalizers: BTreeMap<String, usize>,
}

/// The namespace controller's next step for a namespace.
#[derive(Debug, Clone, PartialEq)]
pub enum NamespaceStep {
    /// Nothing to do (not terminating, or waiting for other finalizers).
    Nothing,
    /// Delete every object of these resources in the namespace
    /// (deletecollection, background), and store these status conditions.
    DeleteContent {
        /// `group`, `resource` pairs with objects left.
        resources: Vec<(String, String)>,
        /// The namespace with updated `status.conditions`.
        namespace: Namespace,
    },
    /// All content is gone: store this namespace (the `kubernetes`
    /// finalizer removed from `spec.finalizers`, through `finalize`).
    Finalize(Namespace),
    /// `spec.finalizers` is empty: delete the namespace object.
    Delete,
}

fn condition(
    type_: &str,
    status: &str,
    reason: &str,
    message: String,
    now: jiff::Timestamp,
) -> NamespaceCondition {
    NamespaceCondition {
        type_: type_.to_string(),
        status: status.to_string(),
        reason: Some(reason.to_string()),
        message: Some(message),
        last_transition_time: Some(Time(now)),
    }
}

/// The status conditions the namespace controller writes while it deletes
/// content (messages as kube-controller-manager writes them).
pub fn deletion_conditions(
    remaining: &[RemainingContent],
    now: jiff::Timestamp,
) -> Vec<NamespaceCondition> {
    let mut out = vec![
        condition(
            "NamespaceDeletionDiscoveryFailure",
            "False",
            "ResourcesDiscovered",
            "All resources successfully discovered".to_string(),
            now,
        ),
        condition(
            "NamespaceDeletionGroupVersionParsingFailure",
            "False",
            "ParsedGroupVersions",
            "All legacy kube types successfully parsed".to_string(),
            now,
        ),
        condition(
            "NamespaceDeletionContentFailure",
            "False",
            "ContentDeleted",
            "All content successfully deleted, may be waiting on finalization".to_string(),
            now,
        ),
    ];
    let mut resources: Vec<String> = remaining
        .iter()
        .filter(|r| r.count > 0)
        .map(|r| {
            format!(
                "{}.{} has {} resource instances",
                r.resource, r.group, r.count
            )
        })
        .collect();
    resources.sort();
    if resources.is_empty() {
        out.push(condition(
            "NamespaceContentRemaining",
            "False",
            "ContentRemoved",
            "All content successfully removed".to_string(),
            now,
        ));
    } else {
        out.push(condition(
            "NamespaceContentRemaining",
            "True",
            "SomeResourcesRemain",
            format!("Some resources are remaining: {}", resources.join(", ")),
            now,
        ));
    }
    let mut by_finalizer: BTreeMap<&str, usize> = BTreeMap::new();
    for r in remaining {
        for (f, n) in &r.finalizers {
            *by_finalizer.entry(f.as_str()).or_default() += n;
        }
    }
    let mut finalizers: Vec<String> = by_finalizer
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(f, n)| format!("{f} in {n} resource instances"))
        .collect();
    finalizers.sort();
    if finalizers.is_empty() {
        out.push(condition(
            "NamespaceFinalizersRemaining",
            "False",
            "ContentHasNoFinalizers",
            "All content-preserving finalizers finished".to_string(),
            now,
        ));
    } else {
        out.push(condition(
            "NamespaceFinalizersRemaining",
            "True",
            "SomeFinalizersRemain",
            format!(
                "Some content in the namespace has finalizers remaining: {}",
                finalizers.join(", ")
            ),
            now,
        ));
    }
    out
}

/// The namespace controller's step for `namespace`, given what is left in
/// it (the spine lists every namespaced resource it serves).
pub fn controller_step(
    namespace: &Namespace,
    remaining: &[RemainingContent],
    now: jiff::Timestamp,
) -> NamespaceStep {
    if namespace.metadata.deletion_timestamp.is_none() {
        return NamespaceStep::Nothing;
    }
    let spec_finalizers = namespace
        .spec
        .as_ref()
        .and_then(|s| s.finalizers.clone())
        .unwrap_or_default();
    if !spec_finalizers.iter().any(|f| f == FINALIZER_KUBERNETES) {
        return if spec_finalizers.is_empty() {
            NamespaceStep::Delete
        } else {
            NamespaceStep::Nothing
        };
    }
    let left: Vec<&RemainingContent> = remaining.iter().filter(|r| r.count > 0).collect();
    if left.is_empty() {
        let mut next = namespace.clone();
        let kept: Vec<String> = spec_finalizers
            .into_iter()
            .filter(|f| f != FINALIZER_KUBERNETES)
            .collect();
        next.spec
            .get_or_insert_with(NamespaceSpec::default)
            .finalizers = (!kept.is_empty()).then_some(kept);
        return NamespaceStep::Finalize(next);
    }
    let mut next = namespace.clone();
    let status = next.status.get_or_insert_with(NamespaceStatus::default);
    status.phase = Some("Terminating".to_string());
    status.conditions = Some(merge_conditions(
        status.conditions.take().unwrap_or_default(),
        deletion_conditions(remaining, now),
    ));
    NamespaceStep::DeleteContent {
        resources: left
            .iter()
            .map(|r| (r.group.clone(), r.resource.clone()))
            .collect(),
        namespace: next,
    }
}

/// Replaces conditions by type, keeping the transition time of those whose
/// status did not change.
fn merge_conditions(
    old: Vec<NamespaceCondition>,
    new: Vec<NamespaceCondition>,
) -> Vec<NamespaceCondition> {
    new.into_iter()
        .map(|mut c| {
            if let Some(prev) = old.iter().find(|o| o.type_ == c.type_)
                && prev.status == c.status
            {
                c.last_transition_time = prev.last_transition_time.clone();
            }
            c
        })
        .collect()
}
