//! The in-process backend: the current state in a `BTreeMap`, the history in a
//! `VecDeque` ordered by revision.
//!
//! A log entry keeps the value it replaced, so the state at an older revision is
//! the current state with the entries after that revision undone. Values are
//! `Bytes`, shared between the map and the log, never copied. Compaction pops
//! entries off the front: nothing at or below the compacted revision is ever
//! needed again.

use std::collections::{BTreeMap, VecDeque};
use std::ops::Bound;
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use super::backend::{LogReader, LogWriter, WriteKind, WriteOp};
use super::error::{Error, Result};
use super::types::{Event, KeyRange, KeyValue, ListRequest, ListResponse, Revision};

#[derive(Debug)]
enum Entry {
    Put {
        kv: KeyValue,
        prev: Option<KeyValue>,
    },
    Delete {
        /// The deleted value with its own `mod_revision`.
        prev: KeyValue,
        revision: Revision,
    },
}

impl Entry {
    fn revision(&self) -> Revision {
        match self {
            Entry::Put { kv, .. } => kv.mod_revision,
            Entry::Delete { revision, .. } => *revision,
        }
    }

    fn key(&self) -> &str {
        match self {
            Entry::Put { kv, .. } => &kv.key,
            Entry::Delete { prev, .. } => &prev.key,
        }
    }

    /// The key's value just before this entry.
    fn before(&self) -> Option<&KeyValue> {
        match self {
            Entry::Put { prev, .. } => prev.as_ref(),
            Entry::Delete { prev, .. } => Some(prev),
        }
    }

    fn event(&self) -> Event {
        match self {
            Entry::Put { kv, prev } => Event::Put {
                kv: kv.clone(),
                prev: prev.clone(),
            },
            Entry::Delete { prev, revision } => Event::Delete {
                kv: KeyValue {
                    mod_revision: *revision,
                    ..prev.clone()
                },
            },
        }
    }
}

#[derive(Debug, Default)]
struct State {
    current: BTreeMap<String, KeyValue>,
    log: VecDeque<Entry>,
    revision: Revision,
    compacted: Revision,
}

type Shared = Arc<RwLock<State>>;

/// Opens an empty memory backend.
pub(crate) fn open() -> (MemoryWriter, MemoryReader) {
    let shared: Shared = Arc::default();
    (
        MemoryWriter {
            state: shared.clone(),
        },
        MemoryReader { state: shared },
    )
}

pub(crate) struct MemoryWriter {
    state: Shared,
}

pub(crate) struct MemoryReader {
    state: Shared,
}

// A panic while holding the lock cannot leave `State` half-written in a way a
// reader could misread (every write is a single insert or push), so a poisoned
// lock is used as it is.
fn write(state: &Shared) -> RwLockWriteGuard<'_, State> {
    state.write().unwrap_or_else(PoisonError::into_inner)
}

fn read(state: &Shared) -> RwLockReadGuard<'_, State> {
    state.read().unwrap_or_else(PoisonError::into_inner)
}

impl LogWriter for MemoryWriter {
    fn append(&mut self, ops: &[WriteOp], first: Revision) -> Result<Vec<Result<Event>>> {
        let mut state = write(&self.state);
        let mut next = first;
        let mut results = Vec::with_capacity(ops.len());
        for op in ops {
            let result = state.apply(op, next);
            if result.is_ok() {
                state.revision = next;
                next += 1;
            }
            results.push(result);
        }
        Ok(results)
    }

    fn compact(&mut self, _from: Revision, to: Revision) -> Result<()> {
        let mut state = write(&self.state);
        while state.log.front().is_some_and(|e| e.revision() <= to) {
            state.log.pop_front();
        }
        state.compacted = state.compacted.max(to);
        Ok(())
    }
}

impl State {
    fn apply(&mut self, op: &WriteOp, revision: Revision) -> Result<Event> {
        let existing = self.current.get(&op.key);
        let entry = match (&op.kind, existing) {
            (WriteKind::Create, Some(_)) => {
                return Err(Error::AlreadyExists {
                    key: op.key.clone(),
                });
            }
            (WriteKind::Update { .. } | WriteKind::Delete { .. }, None) => {
                return Err(Error::NotFound {
                    key: op.key.clone(),
                });
            }
            (WriteKind::Update { expected }, Some(cur))
            | (
                WriteKind::Delete {
                    expected: Some(expected),
                },
                Some(cur),
            ) if cur.mod_revision != *expected => {
                return Err(Error::Conflict {
                    key: op.key.clone(),
                    expected: *expected,
                    current: cur.mod_revision,
                });
            }
            (WriteKind::Create, None) => Entry::Put {
                kv: KeyValue {
                    key: op.key.clone(),
                    value: op.value.clone(),
                    create_revision: revision,
                    mod_revision: revision,
                },
                prev: None,
            },
            (WriteKind::Update { .. }, Some(cur)) => Entry::Put {
                kv: KeyValue {
                    key: op.key.clone(),
                    value: op.value.clone(),
                    create_revision: cur.create_revision,
                    mod_revision: revision,
                },
                prev: Some(cur.clone()),
            },
            (WriteKind::Delete { .. }, Some(cur)) => Entry::Delete {
                prev: cur.clone(),
                revision,
            },
        };
        match &entry {
            Entry::Put { kv, .. } => {
                self.current.insert(kv.key.clone(), kv.clone());
            }
            Entry::Delete { prev, .. } => {
                self.current.remove(&prev.key);
            }
        }
        let event = entry.event();
        self.log.push_back(entry);
        Ok(event)
    }

    fn check_at(&self, at: Revision) -> Result<()> {
        if at < self.compacted {
            return Err(Error::Compacted {
                requested: at,
                compacted: self.compacted,
            });
        }
        if at > self.revision {
            return Err(Error::FutureRevision {
                requested: at,
                current: self.revision,
            });
        }
        Ok(())
    }

    /// The keys in `range` whose value at `at` differs from the current one,
    /// with that older value (`None`: the key did not exist at `at`).
    fn undone_after(&self, range: &KeyRange, at: Revision) -> BTreeMap<&str, Option<&KeyValue>> {
        let mut undone = BTreeMap::new();
        // Walking backwards, the last entry seen for a key is its first write
        // after `at`, whose "before" is the key's value at `at`.
        for entry in self.log.iter().rev().take_while(|e| e.revision() > at) {
            if range.contains(entry.key()) {
                undone.insert(entry.key(), entry.before());
            }
        }
        undone
    }
}

impl LogReader for MemoryReader {
    fn blocking(&self) -> bool {
        false
    }

    fn get(&self, key: &str) -> Result<Option<KeyValue>> {
        Ok(read(&self.state).current.get(key).cloned())
    }

    fn list(&self, req: &ListRequest) -> Result<ListResponse> {
        let state = read(&self.state);
        let at = req.at.unwrap_or(state.revision);
        state.check_at(at)?;
        let range = KeyRange::page(&req.prefix, req.start_after.as_deref());
        if range.is_empty() {
            return Ok(ListResponse {
                items: Vec::new(),
                revision: at,
                more: false,
                remaining: 0,
            });
        }
        let undone = state.undone_after(&range, at);
        let current = state
            .current
            .range::<str, (Bound<&str>, Bound<&str>)>(range.bounds())
            .map(|(k, v)| (k.as_str(), Some(v)));
        let mut visible = merge(current, undone.into_iter()).flatten();
        let limit = req.effective_limit().unwrap_or(usize::MAX);
        let items: Vec<KeyValue> = visible.by_ref().take(limit).cloned().collect();
        let remaining = visible.count() as u64;
        Ok(ListResponse {
            items,
            revision: at,
            more: remaining > 0,
            remaining,
        })
    }

    fn events(
        &self,
        range: &KeyRange,
        after: Revision,
        upto: Revision,
        limit: usize,
    ) -> Result<Vec<Event>> {
        let state = read(&self.state);
        if after < state.compacted {
            return Err(Error::Compacted {
                requested: after,
                compacted: state.compacted,
            });
        }
        let start = state.log.partition_point(|e| e.revision() <= after);
        Ok(state
            .log
            .range(start..)
            .take_while(|e| e.revision() <= upto)
            .filter(|e| range.contains(e.key()))
            .take(limit)
            .map(Entry::event)
            .collect())
    }
}

/// Merges two key-ordered streams; on equal keys the `overrides` value wins.
fn merge<'a>(
    base: impl Iterator<Item = (&'a str, Option<&'a KeyValue>)>,
    overrides: impl Iterator<Item = (&'a str, Option<&'a KeyValue>)>,
) -> impl Iterator<Item = Option<&'a KeyValue>> {
    let mut base = base.peekable();
    let mut overrides = overrides.peekable();
    std::iter::from_fn(move || match (base.peek(), overrides.peek()) {
        (None, None) => None,
        (Some(_), None) => base.next().map(|(_, v)| v),
        (None, Some(_)) => overrides.next().map(|(_, v)| v),
        (Some((b, _)), Some((o, _))) => {
            if b < o {
                base.next().map(|(_, v)| v)
            } else {
                if b == o {
                    base.next();
                }
                overrides.next().map(|(_, v)| v)
            }
        }
    })
}
