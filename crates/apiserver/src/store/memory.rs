//! The in-process backend: the current state in a `BTreeMap`, the history in a
//! `VecDeque` ordered by revision.
//!
//! A log entry keeps the value it replaced, so the state at an older revision is
//! the current state with the entries after that revision undone. Values are
//! `Bytes`, shared between the map and the log. Each is copied once, on the
//! way in, into an allocation of its exact size: a serializer's buffer can be
//! twice as large as its contents, and it would stay that large for as long as
//! the object is stored. Compaction pops
//! entries off the front: nothing at or below the compacted revision is ever
//! needed again.

use std::collections::{BTreeMap, VecDeque};
use std::ops::Bound;
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use bytes::Bytes;

use super::backend::{LogReader, LogWriter, WriteKind, WriteOp};
use super::error::{Error, Result};
use super::types::{Event, KeyRange, KeyValue, ListRequest, ListResponse, Revision};

/// A key's value without the key (the map and the log share one `Arc<str>`).
#[derive(Clone, Debug)]
struct Stored {
    value: Bytes,
    create_revision: Revision,
    mod_revision: Revision,
}

impl Stored {
    fn to_kv(&self, key: &str) -> KeyValue {
        KeyValue {
            key: key.to_owned(),
            value: self.value.clone(),
            create_revision: self.create_revision,
            mod_revision: self.mod_revision,
        }
    }
}

#[derive(Debug)]
enum Change {
    Put {
        stored: Stored,
        prev: Option<Stored>,
    },
    /// `prev` is the deleted value with its own `mod_revision`.
    Delete { prev: Stored, revision: Revision },
}

#[derive(Debug)]
struct Entry {
    key: Arc<str>,
    change: Change,
}

impl Entry {
    fn revision(&self) -> Revision {
        match &self.change {
            Change::Put { stored, .. } => stored.mod_revision,
            Change::Delete { revision, .. } => *revision,
        }
    }

    /// The key's value just before this entry.
    fn before(&self) -> Option<&Stored> {
        match &self.change {
            Change::Put { prev, .. } => prev.as_ref(),
            Change::Delete { prev, .. } => Some(prev),
        }
    }

    fn event(&self) -> Event {
        match &self.change {
            Change::Put { stored, prev } => Event::Put {
                kv: stored.to_kv(&self.key),
                prev: prev.as_ref().map(|p| p.to_kv(&self.key)),
            },
            Change::Delete { prev, revision } => Event::Delete {
                kv: KeyValue {
                    mod_revision: *revision,
                    ..prev.to_kv(&self.key)
                },
            },
        }
    }
}

#[derive(Debug, Default)]
struct State {
    current: BTreeMap<Arc<str>, Stored>,
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
        let existing = self.current.get_key_value(op.key.as_str());
        let (key, change) = match (&op.kind, existing) {
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
            (WriteKind::Update { expected }, Some((_, cur)))
            | (
                WriteKind::Delete {
                    expected: Some(expected),
                },
                Some((_, cur)),
            ) if cur.mod_revision != *expected => {
                return Err(Error::Conflict {
                    key: op.key.clone(),
                    expected: *expected,
                    current: cur.mod_revision,
                });
            }
            (WriteKind::Create, None) => (
                Arc::<str>::from(op.key.as_str()),
                Change::Put {
                    stored: Stored {
                        value: Bytes::copy_from_slice(&op.value),
                        create_revision: revision,
                        mod_revision: revision,
                    },
                    prev: None,
                },
            ),
            (WriteKind::Update { .. }, Some((key, cur))) => (
                key.clone(),
                Change::Put {
                    stored: Stored {
                        value: Bytes::copy_from_slice(&op.value),
                        create_revision: cur.create_revision,
                        mod_revision: revision,
                    },
                    prev: Some(cur.clone()),
                },
            ),
            (WriteKind::Delete { .. }, Some((key, cur))) => (
                key.clone(),
                Change::Delete {
                    prev: cur.clone(),
                    revision,
                },
            ),
        };
        match &change {
            Change::Put { stored, .. } => {
                self.current.insert(key.clone(), stored.clone());
            }
            Change::Delete { .. } => {
                self.current.remove(&key);
            }
        }
        let entry = Entry { key, change };
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
    fn undone_after(&self, range: &KeyRange, at: Revision) -> BTreeMap<&str, Option<&Stored>> {
        let mut undone = BTreeMap::new();
        // Walking backwards, the last entry seen for a key is its first write
        // after `at`, whose "before" is the key's value at `at`.
        for entry in self.log.iter().rev().take_while(|e| e.revision() > at) {
            if range.contains(&entry.key) {
                undone.insert(&*entry.key, entry.before());
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
        Ok(read(&self.state).current.get(key).map(|s| s.to_kv(key)))
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
            .map(|(k, v)| (&**k, Some(v)));
        let mut visible =
            merge(current, undone.into_iter()).filter_map(|(key, stored)| stored.map(|s| (key, s)));
        let limit = req.effective_limit().unwrap_or(usize::MAX);
        let items: Vec<KeyValue> = visible
            .by_ref()
            .take(limit)
            .map(|(key, stored)| stored.to_kv(key))
            .collect();
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
            .filter(|e| range.contains(&e.key))
            .take(limit)
            .map(Entry::event)
            .collect())
    }
}

type Item<'a> = (&'a str, Option<&'a Stored>);

/// Merges two key-ordered streams; on equal keys the `overrides` value wins.
fn merge<'a>(
    base: impl Iterator<Item = Item<'a>>,
    overrides: impl Iterator<Item = Item<'a>>,
) -> impl Iterator<Item = Item<'a>> {
    let mut base = base.peekable();
    let mut overrides = overrides.peekable();
    std::iter::from_fn(move || match (base.peek(), overrides.peek()) {
        (None, None) => None,
        (Some(_), None) => base.next(),
        (None, Some(_)) => overrides.next(),
        (Some((b, _)), Some((o, _))) => {
            if b < o {
                base.next()
            } else {
                if b == o {
                    base.next();
                }
                overrides.next()
            }
        }
    })
}
