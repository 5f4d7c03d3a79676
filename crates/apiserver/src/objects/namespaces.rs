//! The lifecycle phase of every namespace the server has seen, kept in memory so
//! that a create in a namespace does not read the store to learn whether the
//! namespace exists and is not being deleted.
//!
//! Every write of the object layer goes through one `ObjectStore`, which records
//! here each namespace it writes, with the write's revision. A namespace not
//! recorded yet (after a restart, before anything wrote it) is read from the
//! store once and recorded with its revision. A record only ever replaces an
//! older one, so a read that raced with a newer write cannot bring back a stale
//! state, whatever order the callers finish in.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use serde_json::Value;

use super::meta;

/// Where namespaces live in the store.
pub(crate) const NAMESPACE_PREFIX: &str = "/registry/core/namespaces/";

/// What a create in a namespace needs to know about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NamespacePhase {
    /// It exists and takes new objects.
    Active,
    /// It has a deletionTimestamp: no new objects.
    Terminating,
}

impl NamespacePhase {
    /// The phase of a stored namespace object.
    pub(crate) fn of(namespace: &Value) -> NamespacePhase {
        if meta::is_terminating(namespace) {
            NamespacePhase::Terminating
        } else {
            NamespacePhase::Active
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Record {
    revision: i64,
    /// `None`: deleted at `revision`.
    phase: Option<NamespacePhase>,
}

/// Namespace name -> its phase as of the newest write seen.
#[derive(Debug, Default)]
pub(crate) struct NamespaceStates {
    records: Mutex<HashMap<String, Record>>,
}

/// The namespace a store key names, if it is a namespace's key.
pub(crate) fn name_of(key: &str) -> Option<&str> {
    key.strip_prefix(NAMESPACE_PREFIX)
        .filter(|name| !name.is_empty() && !name.contains('/'))
}

impl NamespaceStates {
    /// What is known of namespace `name`: `None` when nothing was recorded,
    /// `Some(None)` when it was deleted.
    pub fn known(&self, name: &str) -> Option<Option<NamespacePhase>> {
        self.records
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(name)
            .map(|r| r.phase)
    }

    /// Records the state of the namespace at `key` as of `revision` (`None`:
    /// deleted), unless a newer state is already recorded. Keys that are not
    /// a namespace's are ignored.
    pub fn record(&self, key: &str, revision: i64, phase: Option<NamespacePhase>) {
        let Some(name) = name_of(key) else {
            return;
        };
        let mut records = self.records.lock().unwrap_or_else(PoisonError::into_inner);
        match records.get_mut(name) {
            Some(known) if known.revision >= revision => {}
            Some(known) => *known = Record { revision, phase },
            None => {
                records.insert(name.to_owned(), Record { revision, phase });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_namespace_keys_are_recorded() {
        assert_eq!(name_of("/registry/core/namespaces/a"), Some("a"));
        assert_eq!(name_of("/registry/core/namespaces/"), None);
        assert_eq!(name_of("/registry/core/namespaces/a/b"), None);
        assert_eq!(name_of("/registry/core/pods/a/b"), None);
        let states = NamespaceStates::default();
        states.record("/registry/core/pods/a/b", 3, Some(NamespacePhase::Active));
        assert_eq!(states.known("a"), None);
    }

    #[test]
    fn an_older_state_never_replaces_a_newer_one() {
        let states = NamespaceStates::default();
        let key = "/registry/core/namespaces/team";
        states.record(key, 5, Some(NamespacePhase::Active));
        states.record(key, 9, Some(NamespacePhase::Terminating));
        states.record(key, 7, Some(NamespacePhase::Active));
        assert_eq!(
            states.known("team"),
            Some(Some(NamespacePhase::Terminating))
        );
        states.record(key, 12, None);
        states.record(key, 9, Some(NamespacePhase::Terminating));
        assert_eq!(states.known("team"), Some(None));
        states.record(key, 20, Some(NamespacePhase::Active));
        assert_eq!(states.known("team"), Some(Some(NamespacePhase::Active)));
    }

    #[test]
    fn the_phase_follows_the_deletion_timestamp() {
        let active = serde_json::json!({"metadata": {"name": "a"}});
        let going = serde_json::json!({"metadata": {"name": "a", "deletionTimestamp": "2026-01-01T00:00:00Z"}});
        assert_eq!(NamespacePhase::of(&active), NamespacePhase::Active);
        assert_eq!(NamespacePhase::of(&going), NamespacePhase::Terminating);
    }
}
