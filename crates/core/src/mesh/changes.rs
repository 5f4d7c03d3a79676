//! What an event changed: which federated Services need writing, and what to warn about.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use foldhash::HashMap;

use crate::names::FederatedKey;

/// The federated Services an event touched. The writer re-renders exactly these
/// (`MeshIndex::federation`) and makes the cluster match.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Changes {
    /// Per federated Service, what to rewrite.
    pub dirty: BTreeMap<FederatedKey, Dirty>,
    /// Problems to report on Services (as Warning Events and log lines).
    pub warnings: Vec<Warning>,
}

/// What to rewrite for one federated Service.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Dirty {
    /// Everything: the Service started or stopped being federated, or its ports
    /// changed. The writer re-reads the whole desired state (or, when the
    /// Service is no longer federated, removes everything fedmesh wrote for it).
    pub all: bool,
    /// The Endpoints object.
    pub endpoints: bool,
    /// These EndpointSlices, by name: render each with `FederatedView::slice`,
    /// and delete it when that gives nothing.
    pub slices: BTreeSet<Arc<str>>,
}

/// A problem with a Service that its owner should hear about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// The Service concerned.
    pub service: FederatedKey,
    /// A CamelCase reason, as Kubernetes Events use.
    pub reason: &'static str,
    /// What is wrong, for a person.
    pub message: String,
}

impl Changes {
    /// True when nothing needs writing or reporting.
    pub fn is_empty(&self) -> bool {
        self.dirty.is_empty() && self.warnings.is_empty()
    }

    /// Adds `other`'s changes to these.
    pub fn merge(&mut self, other: Changes) {
        for (key, dirty) in other.dirty {
            let mine = self.dirty.entry(key).or_default();
            mine.all |= dirty.all;
            mine.endpoints |= dirty.endpoints;
            mine.slices.extend(dirty.slices);
        }
        self.warnings.extend(other.warnings);
    }
}

/// Changes while an event or a listing is applied: keyed by hash, and sorted
/// into [`Changes`] once at the end (a listing touches each federated Service
/// once per backing slice, and a tree lookup per touch was a tenth of the
/// cost of building the index).
#[derive(Debug, Default)]
pub(crate) struct ChangeLog {
    dirty: HashMap<FederatedKey, Dirty>,
    warnings: Vec<Warning>,
}

impl ChangeLog {
    /// What to rewrite for the federated Service `name` in `namespace`.
    pub(crate) fn dirty(&mut self, namespace: &Arc<str>, name: &Arc<str>) -> &mut Dirty {
        self.dirty
            .entry(FederatedKey {
                namespace: namespace.clone(),
                name: name.clone(),
            })
            .or_default()
    }

    /// Everything of `key` is to be rewritten.
    pub(crate) fn all(&mut self, key: FederatedKey) {
        let dirty = self.dirty.entry(key).or_default();
        dirty.all = true;
        dirty.endpoints = true;
    }

    pub(crate) fn warn(&mut self, warning: Warning) {
        self.warnings.push(warning);
    }

    pub(crate) fn finish(self) -> Changes {
        Changes {
            dirty: self.dirty.into_iter().collect(),
            warnings: self.warnings,
        }
    }
}
