//! Propagation: what to do with one member's copy of one federated object.
//!
//! [`plan`] is the whole decision, for any kind that implements
//! [`Propagated`]; a kind only says which of its fields the member owns (what
//! the member's cluster allocated, kept on update) and which objects are the
//! cluster's own. The controller feeds it the federated object, the member's
//! state and the member's current copy, and carries out the [`Action`].
//!
//! | federated object        | member Ready, copy is…        | action                 |
//! |-------------------------|-------------------------------|------------------------|
//! | active, selects member  | absent                        | Create (+ namespace)   |
//! | active, selects member  | another's (no mark)           | Adopt                  |
//! | active, selects member  | ours, differs                 | Update                 |
//! | active, selects member  | ours, same                    | nothing (in sync)      |
//! | active, not selecting   | ours                          | Delete                 |
//! | selector malformed      | anything                      | nothing (Warning)      |
//! | deleting                | ours                          | Delete                 |
//! | deleting, orphan        | ours                          | Orphan (marks removed) |
//! | gone or not federated   | ours                          | Delete (stale copy)    |
//! | any                     | another federation's          | nothing (conflict)     |
//!
//! A member that is not Ready gets nothing until it is: its plan is
//! "unavailable", and a deletion waits for it when its last known copy is
//! ours (the finalizer stays until it returns and is cleaned).

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::{Metadata, Resource};

use super::health::ClusterState;
use super::marks::{
    FEDERATION_LABEL, FINALIZER, FederationName, ORIGIN_ANNOTATION, ORPHAN_FINALIZER,
    OWN_ANNOTATION_PREFIX, Origin, Scope,
};
use super::selector::{ClusterSelector, ClusterSelectorError};
use crate::names::ClusterName;

/// A kind fedmesh propagates to members.
pub trait Propagated:
    Resource + Metadata<Ty = ObjectMeta> + Clone + PartialEq + std::fmt::Debug
{
    /// The member's copy of `federated`, but for metadata (which [`plan`]
    /// fills in): the federated object's content, with what the member
    /// allocated in `current` kept, and what the federation's API server
    /// allocated for itself left out.
    fn member_content(federated: &Self, current: Option<&Self>) -> Self;

    /// Whether `namespace/name` is an object the cluster itself keeps (the
    /// API server's own `default/kubernetes` Service), never federated.
    fn is_system(_namespace: &str, _name: &str) -> bool {
        false
    }
}

/// Whether `object` of the federation API is federated, given the scope and
/// its namespace's labels (see [`Scope::includes`]).
pub fn is_federated<O: Propagated>(
    scope: Scope,
    object: &O,
    namespace_labels: &BTreeMap<String, String>,
    control_namespace: &str,
) -> bool {
    let meta = object.metadata();
    let (Some(namespace), Some(name)) = (meta.namespace.as_deref(), meta.name.as_deref()) else {
        return false;
    };
    scope.includes(namespace, namespace_labels, control_namespace) && !O::is_system(namespace, name)
}

/// Where a federated object is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lifecycle {
    /// It exists and is not being deleted.
    Active,
    /// It is being deleted.
    Deleting {
        /// The user asked to keep the member copies (`--cascade=orphan`).
        orphan: bool,
    },
}

impl Lifecycle {
    /// Reads an object's lifecycle. The API server's garbage collector takes
    /// the `orphan` finalizer off soon after the deletion starts, so once a
    /// deletion was seen to orphan it stays so: pass the lifecycle last seen.
    pub fn of(meta: &ObjectMeta, previous: Option<Lifecycle>) -> Lifecycle {
        if meta.deletion_timestamp.is_none() {
            return Lifecycle::Active;
        }
        let orphan = has_finalizer(meta, ORPHAN_FINALIZER)
            || previous == Some(Lifecycle::Deleting { orphan: true });
        Lifecycle::Deleting { orphan }
    }
}

fn has_finalizer(meta: &ObjectMeta, finalizer: &str) -> bool {
    meta.finalizers
        .as_ref()
        .is_some_and(|f| f.iter().any(|x| x == finalizer))
}

/// A federated object as propagation reads it.
#[derive(Debug, Clone)]
pub struct Federated<'a, O> {
    /// The object in the federation API.
    pub object: &'a O,
    /// Whether it is being deleted, and how.
    pub lifecycle: Lifecycle,
    /// Which members get it: its cluster selector, or why that is unusable.
    pub placement: Result<ClusterSelector, ClusterSelectorError>,
}

impl<'a, O: Propagated> Federated<'a, O> {
    /// Reads `object`, given the lifecycle last seen for it.
    pub fn read(object: &'a O, previous: Option<Lifecycle>) -> Self {
        let meta = object.metadata();
        Federated {
            object,
            lifecycle: Lifecycle::of(meta, previous),
            placement: ClusterSelector::of(meta.annotations.as_ref()),
        }
    }

    /// Whether fedmesh's finalizer must be added before anything is
    /// propagated, so that a deletion waits for the member copies.
    pub fn needs_finalizer(&self) -> bool {
        self.lifecycle == Lifecycle::Active && !has_finalizer(self.object.metadata(), FINALIZER)
    }

    /// The object's finalizers once fedmesh's is taken off: to write when
    /// every member's plan [`is settled`](Plan::settled) during a deletion.
    /// `None` when fedmesh's finalizer is not there.
    pub fn finalizers_without_ours(&self) -> Option<Vec<String>> {
        let finalizers = self.object.metadata().finalizers.as_ref()?;
        finalizers.iter().any(|f| f == FINALIZER).then(|| {
            finalizers
                .iter()
                .filter(|f| *f != FINALIZER)
                .cloned()
                .collect()
        })
    }
}

/// One member as propagation sees it.
#[derive(Debug, Clone)]
pub struct Member<'a, O> {
    /// The member's name.
    pub name: &'a ClusterName,
    /// Its state (from its Cluster status).
    pub state: ClusterState,
    /// Its Cluster object's labels, for cluster selectors.
    pub labels: &'a BTreeMap<String, String>,
    /// Its current copy of the object (same namespace and name), as last seen.
    pub current: Option<&'a O>,
    /// Whether the object's namespace exists in the member.
    pub namespace_exists: bool,
}

/// What to do with a member's copy.
#[derive(Debug, Clone, PartialEq)]
pub enum Action<O> {
    /// Create this object (after the namespace, when [`Plan::create_namespace`]).
    Create(O),
    /// Take over the member's object of that name: replace it with this (it
    /// carries the current `resourceVersion`).
    Adopt(O),
    /// Replace the member's copy with this (it carries the current
    /// `resourceVersion`), repairing drift or propagating a change.
    Update(O),
    /// Delete the member's copy, with this uid as a precondition so a copy
    /// recreated meanwhile is not deleted.
    Delete {
        /// The uid of the copy to delete.
        uid: Option<String>,
    },
    /// Leave the copy in the member but no longer the federation's: replace
    /// it with this, which lacks fedmesh's label and annotation.
    Orphan(O),
    /// Nothing to write.
    None(Why),
}

/// Why nothing is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Why {
    /// The copy already conforms.
    InSync,
    /// The member is not selected and holds no copy of ours.
    NotSelected,
    /// The cluster selector is malformed: nothing changes until it is fixed.
    SelectorInvalid(ClusterSelectorError),
    /// The member is not Ready; it is brought up to date when it is.
    Unavailable(ClusterState),
    /// The member's object of that name belongs to another federation.
    OtherFederation(String),
    /// The member's object is being deleted; it is recreated once gone.
    Terminating,
    /// Nothing is left to do in the member (deleted, orphaned, never there).
    Done,
}

/// What to do in one member.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan<O> {
    /// The write, if any.
    pub action: Action<O>,
    /// Whether the object's namespace must be created in the member first.
    pub create_namespace: bool,
    /// Whether the member holds a copy of the federation's that a deletion
    /// still has to delete or orphan (a member that is not Ready keeps it
    /// until it is back).
    pub holds_copy: bool,
}

impl<O> Plan<O> {
    fn new(action: Action<O>, holds_copy: bool) -> Self {
        Plan {
            action,
            create_namespace: false,
            holds_copy,
        }
    }

    /// Whether a deletion of the federated object is done with this member:
    /// it holds no copy of the federation's.
    pub fn settled(&self) -> bool {
        !self.holds_copy
    }
}

/// Whose a member's object is.
enum Owner<'a> {
    Absent,
    Ours,
    Unmarked,
    Other(&'a str),
}

fn owner<'a, O: Propagated>(federation: &FederationName, current: Option<&'a O>) -> Owner<'a> {
    let Some(current) = current else {
        return Owner::Absent;
    };
    match current
        .metadata()
        .labels
        .as_ref()
        .and_then(|l| l.get(FEDERATION_LABEL))
    {
        None => Owner::Unmarked,
        Some(f) if f == federation.as_str() => Owner::Ours,
        Some(f) => Owner::Other(f),
    }
}

/// Decides what to do with `member`'s copy of `federated` (`None` when the
/// object is gone from the federation API or no longer federated).
pub fn plan<O: Propagated>(
    federation: &FederationName,
    federated: Option<&Federated<'_, O>>,
    member: &Member<'_, O>,
) -> Plan<O> {
    let owner = owner(federation, member.current);
    let ours = matches!(owner, Owner::Ours);
    if member.state != ClusterState::Ready {
        return Plan::new(Action::None(Why::Unavailable(member.state)), ours);
    }
    if let Owner::Other(other) = owner {
        return Plan::new(Action::None(Why::OtherFederation(other.to_owned())), false);
    }
    let terminating = member
        .current
        .is_some_and(|c| c.metadata().deletion_timestamp.is_some());
    let wanted = match federated {
        None => None,
        Some(f) => match (&f.lifecycle, &f.placement) {
            (Lifecycle::Deleting { orphan }, _) => {
                return match (ours, orphan, member.current) {
                    (true, true, Some(current)) => {
                        Plan::new(Action::Orphan(without_marks(current)), true)
                    }
                    (true, false, Some(_)) if terminating => {
                        Plan::new(Action::None(Why::Terminating), true)
                    }
                    (true, false, Some(current)) => Plan::new(delete(current), true),
                    _ => Plan::new(Action::None(Why::Done), false),
                };
            }
            (Lifecycle::Active, Err(error)) => {
                return Plan::new(Action::None(Why::SelectorInvalid(error.clone())), ours);
            }
            (Lifecycle::Active, Ok(selector)) => {
                selector.matches(member.labels).then_some(f.object)
            }
        },
    };
    let Some(federated) = wanted else {
        return match member.current {
            Some(_) if ours && terminating => Plan::new(Action::None(Why::Terminating), true),
            Some(current) if ours => Plan::new(delete(current), true),
            _ => Plan::new(Action::None(Why::NotSelected), false),
        };
    };
    let Some(current) = member.current else {
        return Plan {
            action: Action::Create(desired(federation, federated, None, Origin::Created)),
            create_namespace: !member.namespace_exists,
            holds_copy: false,
        };
    };
    if terminating {
        return Plan::new(Action::None(Why::Terminating), ours);
    }
    if !ours {
        let object = desired(federation, federated, Some(current), Origin::Adopted);
        return Plan::new(Action::Adopt(object), false);
    }
    let origin = match current
        .metadata()
        .annotations
        .as_ref()
        .and_then(|a| a.get(ORIGIN_ANNOTATION))
    {
        Some(o) if o == Origin::Adopted.as_str() => Origin::Adopted,
        _ => Origin::Created,
    };
    let object = desired(federation, federated, Some(current), origin);
    if object == *current {
        Plan::new(Action::None(Why::InSync), true)
    } else {
        Plan::new(Action::Update(object), true)
    }
}

fn delete<O: Propagated>(current: &O) -> Action<O> {
    Action::Delete {
        uid: current.metadata().uid.clone(),
    }
}

/// The member copy fedmesh wants: the federated object's content as the kind
/// says, its labels and annotations (but fedmesh's own annotations) plus the
/// federation's marks, and the member's own metadata (uid, resourceVersion,
/// owner references, finalizers) when it has a copy.
pub fn desired<O: Propagated>(
    federation: &FederationName,
    federated: &O,
    current: Option<&O>,
    origin: Origin,
) -> O {
    let mut object = O::member_content(federated, current);
    let source = federated.metadata();
    let mut meta = match current {
        Some(current) => current.metadata().clone(),
        None => ObjectMeta {
            name: source.name.clone(),
            namespace: source.namespace.clone(),
            ..ObjectMeta::default()
        },
    };
    let mut labels = source.labels.clone().unwrap_or_default();
    labels.insert(FEDERATION_LABEL.into(), federation.as_str().into());
    let mut annotations: BTreeMap<String, String> = source
        .annotations
        .iter()
        .flatten()
        .filter(|(k, _)| !k.starts_with(OWN_ANNOTATION_PREFIX))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    annotations.insert(ORIGIN_ANNOTATION.into(), origin.as_str().into());
    meta.labels = Some(labels);
    meta.annotations = Some(annotations);
    *object.metadata_mut() = meta;
    object
}

/// `current` without fedmesh's label and annotation.
fn without_marks<O: Propagated>(current: &O) -> O {
    let mut object = current.clone();
    let meta = object.metadata_mut();
    if let Some(labels) = &mut meta.labels {
        labels.remove(FEDERATION_LABEL);
    }
    if let Some(annotations) = &mut meta.annotations {
        annotations.remove(ORIGIN_ANNOTATION);
    }
    object
}

/// The Namespace to create in a member when [`Plan::create_namespace`] says
/// so: named as the federated object's, marked as the federation's (fedmesh
/// never deletes it: other objects may have joined it).
pub fn member_namespace(
    federation: &FederationName,
    name: &str,
) -> k8s_openapi::api::core::v1::Namespace {
    k8s_openapi::api::core::v1::Namespace {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            labels: Some(BTreeMap::from([(
                FEDERATION_LABEL.to_owned(),
                federation.as_str().to_owned(),
            )])),
            annotations: Some(BTreeMap::from([(
                ORIGIN_ANNOTATION.to_owned(),
                Origin::Created.as_str().to_owned(),
            )])),
            ..ObjectMeta::default()
        },
        ..Default::default()
    }
}
