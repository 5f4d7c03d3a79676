//! Garbage collection of dependents, as a pure state machine.
//!
//! # Propagation semantics (as Kubernetes' garbage collector)
//!
//! An object names its owners in `metadata.ownerReferences` (uid, kind,
//! name, `controller`, `blockOwnerDeletion`). When an owner is deleted:
//!
//! - **Background** (the default): the owner goes at once (unless it has
//!   other finalizers). Its dependents then hold a *dangling* reference (the
//!   owner uid is no longer stored); a dependent with no other live owner
//!   is deleted, one that still has a live owner only loses the dangling
//!   reference.
//! - **Foreground**: the delete request adds the `foregroundDeletion`
//!   finalizer and sets `deletionTimestamp`; the owner stays visible while
//!   the collector deletes its dependents (a dependent that itself has
//!   dependents is deleted in the foreground too, so the wait is
//!   recursive). Once no dependent with `blockOwnerDeletion: true` remains,
//!   the collector removes the finalizer and the store deletes the owner.
//!   Dependents without `blockOwnerDeletion` are deleted too but are not
//!   waited for.
//! - **Orphan**: the request adds the `orphan` finalizer; the collector
//!   removes the owner's reference from every dependent, then the
//!   finalizer, and the owner goes; dependents stay.
//!
//! A dependent with several owners is deleted only when none of them is
//! live: references to absent owners and to owners waiting in the
//! foreground are removed from it instead while a live owner remains.
//!
//! # Driving it
//!
//! [`deletion_decision`] is what the API's DELETE does to an object.
//! [`plan_node`] is what the collector does next for one object, given a
//! [`GcView`] of the objects around it: its owners (looked up by kind and
//! name, matched by uid) and its dependents, a [`Neighbourhood`]. [`plan`]
//! does the same for every object of a consistent snapshot at once (the
//! two agree). The spine syncs an object whenever its owners, its
//! dependents or its own references or finalizers change, applies the
//! returned actions in order (each delete through the normal DELETE path
//! with the given propagation), and is done when nothing is returned. An
//! object whose last finalizer is removed while `deletionTimestamp` is set
//! must be deleted by the store, as kube-apiserver does.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;

/// Finalizer of a foreground deletion.
pub const FINALIZER_FOREGROUND: &str = "foregroundDeletion";
/// Finalizer of an orphaning deletion.
pub const FINALIZER_ORPHAN: &str = "orphan";

/// Errors of delete option handling.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GcError {
    /// `propagationPolicy` is not one of the three policies.
    #[error(
        "Unsupported value: {0:?}: supported values: \"Foreground\", \"Background\", \"Orphan\""
    )]
    ParsePropagation(String),
    /// Both the deprecated `orphanDependents` and `propagationPolicy` given.
    #[error("OrphanDependents and DeletionPropagation cannot be both set")]
    ConflictingOptions,
}

/// A deletion propagation policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Propagation {
    /// Delete the object now, its dependents afterwards.
    Background,
    /// Delete the dependents first, then the object.
    Foreground,
    /// Delete the object, keep the dependents (without the reference).
    Orphan,
}

impl Propagation {
    /// Parses `propagationPolicy`.
    pub fn parse(s: &str) -> Result<Self, GcError> {
        match s {
            "Background" => Ok(Self::Background),
            "Foreground" => Ok(Self::Foreground),
            "Orphan" => Ok(Self::Orphan),
            other => Err(GcError::ParsePropagation(other.to_string())),
        }
    }

    /// The policy's name in DeleteOptions.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Background => "Background",
            Self::Foreground => "Foreground",
            Self::Orphan => "Orphan",
        }
    }
}

/// The parts of DeleteOptions that steer garbage collection.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeleteOptions {
    /// `propagationPolicy`
    pub propagation: Option<Propagation>,
    /// The deprecated `orphanDependents`.
    pub orphan_dependents: Option<bool>,
}

/// What a DELETE request does to the stored object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeletionDecision {
    /// No finalizer holds it: remove it from the store now.
    DeleteNow,
    /// Keep it with these finalizers and a `deletionTimestamp` (set now if
    /// it was not set yet).
    MarkDeleting {
        /// The object's finalizers after the request.
        finalizers: Vec<String>,
    },
}

fn should_orphan(finalizers: &[String], options: &DeleteOptions) -> bool {
    if let Some(o) = options.orphan_dependents {
        return o;
    }
    match options.propagation {
        Some(Propagation::Orphan) => return true,
        Some(_) => return false,
        None => {}
    }
    for f in finalizers {
        if f == FINALIZER_ORPHAN {
            return true;
        }
        if f == FINALIZER_FOREGROUND {
            return false;
        }
    }
    false
}

fn should_delete_dependents(finalizers: &[String], options: &DeleteOptions) -> bool {
    if options.orphan_dependents.is_some() {
        return false;
    }
    match options.propagation {
        Some(Propagation::Foreground) => return true,
        Some(_) => return false,
        None => {}
    }
    for f in finalizers {
        if f == FINALIZER_FOREGROUND {
            return true;
        }
        if f == FINALIZER_ORPHAN {
            return false;
        }
    }
    false
}

/// What kube-apiserver's generic store does on DELETE, for objects whose
/// default policy is background: the GC finalizers are recomputed from the
/// options (an explicit option wins over finalizers already present), other
/// finalizers are kept, and the object goes at once only if none remain.
pub fn deletion_decision(
    finalizers: &[String],
    options: &DeleteOptions,
) -> Result<DeletionDecision, GcError> {
    if options.orphan_dependents.is_some() && options.propagation.is_some() {
        return Err(GcError::ConflictingOptions);
    }
    let mut next: Vec<String> = finalizers
        .iter()
        .filter(|f| *f != FINALIZER_ORPHAN && *f != FINALIZER_FOREGROUND)
        .cloned()
        .collect();
    if should_orphan(finalizers, options) {
        next.push(FINALIZER_ORPHAN.to_string());
    }
    if should_delete_dependents(finalizers, options) {
        next.push(FINALIZER_FOREGROUND.to_string());
    }
    if next.is_empty() {
        Ok(DeletionDecision::DeleteNow)
    } else {
        Ok(DeletionDecision::MarkDeleting { finalizers: next })
    }
}

/// An object's identity in the dependency graph.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectId {
    /// `apiVersion`
    pub api_version: String,
    /// `kind`
    pub kind: String,
    /// `metadata.namespace`; `None` for cluster-scoped objects.
    pub namespace: Option<String>,
    /// `metadata.name`
    pub name: String,
    /// `metadata.uid`
    pub uid: String,
}

/// What the collector needs to know of one object.
#[derive(Debug, Clone, PartialEq)]
pub struct GcNode {
    /// Identity.
    pub id: ObjectId,
    /// `metadata.ownerReferences`
    pub owner_references: Vec<OwnerReference>,
    /// `metadata.finalizers`
    pub finalizers: Vec<String>,
    /// Whether `metadata.deletionTimestamp` is set.
    pub deleting: bool,
}

impl GcNode {
    /// Reads the node from an object in JSON form; `None` when it lacks a
    /// kind, name or uid.
    pub fn from_json(object: &serde_json::Value) -> Option<Self> {
        Self::from_json_as(object, None, None)
    }

    /// Like [`GcNode::from_json`], with the apiVersion and kind to assume
    /// when the object does not carry them (items of a typed list).
    pub fn from_json_as(
        object: &serde_json::Value,
        api_version: Option<&str>,
        kind: Option<&str>,
    ) -> Option<Self> {
        let meta = object.get("metadata")?;
        let text = |v: Option<&serde_json::Value>| {
            v.and_then(|v| v.as_str())
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        };
        let id = ObjectId {
            api_version: text(object.get("apiVersion"))
                .or_else(|| api_version.map(str::to_string))
                .unwrap_or_default(),
            kind: text(object.get("kind")).or_else(|| kind.map(str::to_string))?,
            namespace: text(meta.get("namespace")).filter(|n| !n.is_empty()),
            name: text(meta.get("name"))?,
            uid: text(meta.get("uid"))?,
        };
        let owner_references = meta
            .get("ownerReferences")
            .and_then(|r| serde_json::from_value(r.clone()).ok())
            .unwrap_or_default();
        let finalizers = meta
            .get("finalizers")
            .and_then(|r| serde_json::from_value(r.clone()).ok())
            .unwrap_or_default();
        let deleting = meta.get("deletionTimestamp").is_some_and(|t| !t.is_null());
        Some(Self {
            id,
            owner_references,
            finalizers,
            deleting,
        })
    }

    fn has_finalizer(&self, f: &str) -> bool {
        self.finalizers.iter().any(|x| x == f)
    }

    /// Being deleted in the foreground (waiting for its dependents).
    pub fn is_deleting_dependents(&self) -> bool {
        self.deleting && self.has_finalizer(FINALIZER_FOREGROUND)
    }
}

/// One step of garbage collection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GcAction {
    /// Delete the object (precondition: its uid) with this propagation.
    Delete {
        /// The object.
        target: ObjectId,
        /// The policy to pass to DELETE.
        propagation: Propagation,
    },
    /// Remove the references to these owner uids from the object.
    RemoveOwnerReferences {
        /// The dependent.
        target: ObjectId,
        /// Owner uids whose references go.
        owner_uids: Vec<String>,
    },
    /// Set `blockOwnerDeletion: false` on every reference of the object
    /// (breaks foreground waits that would form a cycle).
    UnblockOwnerReferences {
        /// The dependent.
        target: ObjectId,
    },
    /// Remove a finalizer from the object.
    RemoveFinalizer {
        /// The object.
        target: ObjectId,
        /// `foregroundDeletion` or `orphan`.
        finalizer: String,
    },
}

fn api_group(api_version: &str) -> &str {
    match api_version.split_once('/') {
        Some((group, _)) => group,
        None => "",
    }
}

enum OwnerState {
    Solid,
    Dangling,
    Waiting,
    /// A cluster-scoped dependent naming a namespaced owner: Kubernetes
    /// reports it and leaves the reference alone.
    Invalid,
}

/// How an object relates to one owner reference of a dependent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OwnerMatch {
    /// The object is the owner the reference names.
    Owner,
    /// It would be, but the dependent is cluster-scoped and the owner
    /// namespaced: the reference is invalid.
    Invalid,
    /// Another object.
    Other,
}

/// Whether `candidate` is the owner `r` (a reference of `dependent`) names:
/// same uid, kind, name and API group, and a namespace the dependent can
/// reference (its own, or none for a cluster-scoped owner).
pub fn match_owner(dependent: &GcNode, r: &OwnerReference, candidate: &GcNode) -> OwnerMatch {
    if candidate.id.uid != r.uid
        || candidate.id.kind != r.kind
        || candidate.id.name != r.name
        || api_group(&candidate.id.api_version) != api_group(&r.api_version)
    {
        return OwnerMatch::Other;
    }
    match (&dependent.id.namespace, &candidate.id.namespace) {
        (_, None) => OwnerMatch::Owner,
        (Some(d), Some(o)) if d == o => OwnerMatch::Owner,
        (None, Some(_)) => OwnerMatch::Invalid,
        _ => OwnerMatch::Other,
    }
}

/// What looking up an owner reference found.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum OwnerLookup<'a> {
    /// The owner is stored.
    Found(&'a GcNode),
    /// No such owner is stored (the reference dangles).
    Absent,
    /// The reference cannot name a valid owner (see [`OwnerMatch::Invalid`]).
    Invalid,
}

/// What the collector knows of the objects around the node it plans for: a
/// whole snapshot ([`plan`]) or only the node's owners and dependents
/// ([`Neighbourhood`]).
pub trait GcView {
    /// The owner a reference of `dependent` names.
    fn owner(&self, dependent: &GcNode, r: &OwnerReference) -> OwnerLookup<'_>;
    /// Objects with a reference that resolves to `owner`.
    fn dependents(&self, owner: &GcNode) -> Vec<&GcNode>;
}

struct Graph<'a> {
    nodes: &'a [GcNode],
    by_uid: BTreeMap<&'a str, Vec<usize>>,
    dependents: BTreeMap<&'a str, Vec<usize>>,
}

impl<'a> Graph<'a> {
    fn new(nodes: &'a [GcNode]) -> Self {
        let mut by_uid: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        let mut dependents: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        for (i, n) in nodes.iter().enumerate() {
            by_uid.entry(n.id.uid.as_str()).or_default().push(i);
            for r in &n.owner_references {
                let list = dependents.entry(r.uid.as_str()).or_default();
                if !list.contains(&i) {
                    list.push(i);
                }
            }
        }
        Self {
            nodes,
            by_uid,
            dependents,
        }
    }
}

impl GcView for Graph<'_> {
    fn owner(&self, dependent: &GcNode, r: &OwnerReference) -> OwnerLookup<'_> {
        for &i in self.by_uid.get(r.uid.as_str()).into_iter().flatten() {
            let candidate = &self.nodes[i];
            match match_owner(dependent, r, candidate) {
                OwnerMatch::Owner => return OwnerLookup::Found(candidate),
                OwnerMatch::Invalid => return OwnerLookup::Invalid,
                OwnerMatch::Other => {}
            }
        }
        OwnerLookup::Absent
    }

    fn dependents(&self, owner: &GcNode) -> Vec<&GcNode> {
        self.dependents
            .get(owner.id.uid.as_str())
            .into_iter()
            .flatten()
            .map(|&i| &self.nodes[i])
            .filter(|d| {
                d.owner_references
                    .iter()
                    .filter(|r| r.uid == owner.id.uid)
                    .any(|r| matches!(self.owner(d, r), OwnerLookup::Found(o) if o.id == owner.id))
            })
            .collect()
    }
}

/// The objects around one node, read for that node alone: the owners its
/// references name (looked up by kind and name) and the objects that
/// reference its uid. [`plan_node`] over a neighbourhood plans what
/// [`plan`] over a snapshot of every object would for that node.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Neighbourhood {
    /// Stored objects found for the node's owner references (any that do
    /// not match a reference are ignored).
    pub owners: Vec<GcNode>,
    /// Uids of owner references found invalid without a lookup (a
    /// cluster-scoped node naming a namespaced kind).
    pub invalid_owner_uids: Vec<String>,
    /// Objects with a reference to the node's uid.
    pub dependents: Vec<GcNode>,
}

impl GcView for Neighbourhood {
    fn owner(&self, dependent: &GcNode, r: &OwnerReference) -> OwnerLookup<'_> {
        if self.invalid_owner_uids.contains(&r.uid) {
            return OwnerLookup::Invalid;
        }
        for candidate in &self.owners {
            match match_owner(dependent, r, candidate) {
                OwnerMatch::Owner => return OwnerLookup::Found(candidate),
                OwnerMatch::Invalid => return OwnerLookup::Invalid,
                OwnerMatch::Other => {}
            }
        }
        OwnerLookup::Absent
    }

    fn dependents(&self, owner: &GcNode) -> Vec<&GcNode> {
        self.dependents
            .iter()
            .filter(|d| {
                d.owner_references
                    .iter()
                    .any(|r| match_owner(d, r, owner) == OwnerMatch::Owner)
            })
            .collect()
    }
}

fn classify(view: &impl GcView, dependent: &GcNode, r: &OwnerReference) -> OwnerState {
    match view.owner(dependent, r) {
        OwnerLookup::Invalid => OwnerState::Invalid,
        OwnerLookup::Absent => OwnerState::Dangling,
        OwnerLookup::Found(owner) if owner.is_deleting_dependents() => OwnerState::Waiting,
        OwnerLookup::Found(_) => OwnerState::Solid,
    }
}

fn blocking_dependents_of<'v>(view: &'v impl GcView, owner: &GcNode) -> Vec<&'v GcNode> {
    view.dependents(owner)
        .into_iter()
        .filter(|d| {
            d.owner_references
                .iter()
                .any(|r| r.uid == owner.id.uid && r.block_owner_deletion == Some(true))
        })
        .collect()
}

/// The collector's `attemptToDeleteItem` for one dependent.
fn attempt_to_delete(view: &impl GcView, item: &GcNode, out: &mut Vec<GcAction>) {
    if item.deleting || item.owner_references.is_empty() {
        return;
    }
    let mut solid = 0;
    let mut dangling = Vec::new();
    let mut waiting = Vec::new();
    for r in &item.owner_references {
        match classify(view, item, r) {
            OwnerState::Solid => solid += 1,
            OwnerState::Dangling => dangling.push(r.uid.clone()),
            OwnerState::Waiting => waiting.push(r.uid.clone()),
            OwnerState::Invalid => {}
        }
    }
    if dangling.is_empty() && waiting.is_empty() {
        return;
    }
    if solid > 0 {
        let mut owner_uids = dangling;
        owner_uids.extend(waiting);
        out.push(GcAction::RemoveOwnerReferences {
            target: item.id.clone(),
            owner_uids,
        });
        return;
    }
    let own_dependents = view.dependents(item);
    if !waiting.is_empty() && !own_dependents.is_empty() {
        if own_dependents.iter().any(|d| d.is_deleting_dependents()) {
            out.push(GcAction::UnblockOwnerReferences {
                target: item.id.clone(),
            });
        }
        out.push(GcAction::Delete {
            target: item.id.clone(),
            propagation: Propagation::Foreground,
        });
        return;
    }
    let propagation = if item.has_finalizer(FINALIZER_ORPHAN) {
        Propagation::Orphan
    } else if item.has_finalizer(FINALIZER_FOREGROUND) {
        Propagation::Foreground
    } else {
        Propagation::Background
    };
    out.push(GcAction::Delete {
        target: item.id.clone(),
        propagation,
    });
}

/// What the collector does for a node in deletion that waits on it: orphan
/// its dependents, or finish a foreground deletion once nothing blocks it.
fn finalizer_actions(view: &impl GcView, node: &GcNode, out: &mut Vec<GcAction>) {
    if node.deleting && node.has_finalizer(FINALIZER_ORPHAN) {
        for d in view.dependents(node) {
            out.push(GcAction::RemoveOwnerReferences {
                target: d.id.clone(),
                owner_uids: vec![node.id.uid.clone()],
            });
        }
        out.push(GcAction::RemoveFinalizer {
            target: node.id.clone(),
            finalizer: FINALIZER_ORPHAN.to_string(),
        });
    } else if node.is_deleting_dependents() && blocking_dependents_of(view, node).is_empty() {
        out.push(GcAction::RemoveFinalizer {
            target: node.id.clone(),
            finalizer: FINALIZER_FOREGROUND.to_string(),
        });
    }
}

/// The collector's next actions for one node, as an owner (orphaning, or
/// the end of a foreground deletion) and as a dependent (collection), given
/// what `view` knows of its owners and dependents.
pub fn plan_node(node: &GcNode, view: &impl GcView) -> Vec<GcAction> {
    let mut out = Vec::new();
    finalizer_actions(view, node, &mut out);
    attempt_to_delete(view, node, &mut out);
    out
}

/// The collector's next actions for a snapshot of objects (see the module
/// documentation). Deterministic: objects are visited in the given order.
pub fn plan(nodes: &[GcNode]) -> Vec<GcAction> {
    let graph = Graph::new(nodes);
    let mut out = Vec::new();
    for node in nodes {
        finalizer_actions(&graph, node, &mut out);
    }
    for node in nodes {
        attempt_to_delete(&graph, node, &mut out);
    }
    out
}
