//! Label keys and values interned per namespace, so that the indexes key on
//! small ids instead of pairs of shared strings.
//!
//! A mesh repeats a handful of label keys (and often values) across a hundred
//! thousand Services; hashing and cloning them as strings for every index
//! entry was most of the cost of applying a Service. Each id is
//! reference-counted by the Services and registrations that hold it and
//! reused once nothing does, so label churn does not grow the table.

use std::collections::BTreeMap;
use std::sync::Arc;

use fedmesh_selector::Labels;
use foldhash::HashMap;

/// An interned label key or value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(super) struct LabelId(u32);

/// A Service's labels as ids, sorted by key id (keys are unique).
pub(super) type LabelIds = Box<[(LabelId, LabelId)]>;

#[derive(Debug)]
struct Entry {
    text: Arc<str>,
    /// Holders of the id; 0 means the slot is free.
    refs: u32,
}

/// The interned strings of one namespace.
#[derive(Debug, Default)]
pub(super) struct LabelTable {
    ids: HashMap<Arc<str>, LabelId>,
    entries: Vec<Entry>,
    free: Vec<LabelId>,
}

impl LabelTable {
    /// The id of `text`, if some holder keeps it interned.
    pub(super) fn lookup(&self, text: &str) -> Option<LabelId> {
        self.ids.get(text).copied()
    }

    /// The id of `text`, interning it, with one more holder.
    pub(super) fn acquire(&mut self, text: &str) -> LabelId {
        if let Some(&id) = self.ids.get(text) {
            if let Some(entry) = self.entries.get_mut(id.index()) {
                entry.refs += 1;
            }
            return id;
        }
        let text: Arc<str> = text.into();
        let entry = Entry {
            text: text.clone(),
            refs: 1,
        };
        let id = match self.free.pop() {
            Some(id) => {
                if let Some(slot) = self.entries.get_mut(id.index()) {
                    *slot = entry;
                }
                id
            }
            None => {
                // More distinct strings than u32 ids cannot fit in memory
                // alongside the Services that hold them.
                let id = LabelId(u32::try_from(self.entries.len()).unwrap_or(u32::MAX));
                self.entries.push(entry);
                id
            }
        };
        self.ids.insert(text, id);
        id
    }

    /// Drops one holder of `id`; the last one frees it.
    pub(super) fn release(&mut self, id: LabelId) {
        let Some(entry) = self.entries.get_mut(id.index()) else {
            return;
        };
        entry.refs = entry.refs.saturating_sub(1);
        if entry.refs == 0 {
            self.ids.remove(&entry.text);
            entry.text = Arc::from("");
            self.free.push(id);
        }
    }

    /// The string behind `id`.
    pub(super) fn text(&self, id: LabelId) -> &str {
        self.entries.get(id.index()).map_or("", |e| &e.text)
    }

    /// Interns a Service's labels, one holder each.
    pub(super) fn acquire_all(&mut self, labels: &BTreeMap<String, String>) -> LabelIds {
        let mut ids: Vec<(LabelId, LabelId)> = labels
            .iter()
            .map(|(k, v)| (self.acquire(k), self.acquire(v)))
            .collect();
        ids.sort_unstable();
        ids.into_boxed_slice()
    }

    /// Releases what [`LabelTable::acquire_all`] took.
    pub(super) fn release_all(&mut self, ids: &[(LabelId, LabelId)]) {
        for &(k, v) in ids {
            self.release(k);
            self.release(v);
        }
    }

    /// Whether `labels` are exactly the labels `ids` stand for.
    pub(super) fn same(
        &self,
        ids: &[(LabelId, LabelId)],
        labels: &BTreeMap<String, String>,
    ) -> bool {
        ids.len() == labels.len()
            && labels.iter().all(|(k, v)| {
                let (Some(k), Some(v)) = (self.lookup(k), self.lookup(v)) else {
                    return false;
                };
                ids.binary_search(&(k, v)).is_ok()
            })
    }

    /// `ids` as labels a selector can read.
    pub(super) fn view<'a>(&'a self, ids: &'a [(LabelId, LabelId)]) -> LabelsView<'a> {
        LabelsView { table: self, ids }
    }
}

impl LabelId {
    fn index(self) -> usize {
        self.0 as usize
    }
}

/// A Service's interned labels, readable by a selector.
pub(super) struct LabelsView<'a> {
    table: &'a LabelTable,
    ids: &'a [(LabelId, LabelId)],
}

impl Labels for LabelsView<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        let key = self.table.lookup(key)?;
        let at = self.ids.partition_point(|(k, _)| *k < key);
        match self.ids.get(at) {
            Some(&(k, v)) if k == key => Some(self.table.text(v)),
            _ => None,
        }
    }
}
