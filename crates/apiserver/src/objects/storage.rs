//! The object layer's view of the revisioned store (`crate::store`): JSON objects
//! in and out instead of bytes, and the few errors the verbs tell apart.

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use serde_json::Value;

use super::namespaces::{self, NamespacePhase, NamespaceStates};
use crate::store::{self, Event, KeyValue, ListRequest, Store, StoreOptions};

/// An object as stored, with the revision of its last write.
#[derive(Debug, Clone)]
pub struct Stored {
    /// The object (without resourceVersion).
    pub value: Value,
    /// Revision of the last write.
    pub mod_revision: i64,
}

/// One change seen by a watch.
#[derive(Debug, Clone)]
pub enum Change {
    /// A create or update.
    Put {
        /// Store key.
        key: String,
        /// New value.
        value: Value,
        /// Value before, for an update.
        prev: Option<Value>,
        /// Revision of this write.
        revision: i64,
    },
    /// A delete.
    Delete {
        /// Store key.
        key: String,
        /// Value before the delete.
        prev: Value,
        /// Revision of the delete.
        revision: i64,
    },
}

impl Change {
    /// The key changed.
    pub fn key(&self) -> &str {
        match self {
            Change::Put { key, .. } | Change::Delete { key, .. } => key,
        }
    }

    /// The revision of the change.
    pub fn revision(&self) -> i64 {
        match self {
            Change::Put { revision, .. } | Change::Delete { revision, .. } => *revision,
        }
    }
}

/// Why a storage operation failed.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum StorageError {
    /// Create of a key that exists.
    #[error("key exists")]
    AlreadyExists,
    /// The key's revision is not the expected one.
    #[error("revision mismatch")]
    Conflict,
    /// The key does not exist.
    #[error("key not found")]
    NotFound,
    /// A read or watch asked for revisions that were compacted away.
    #[error("required revision {requested} has been compacted (oldest {compacted})")]
    Compacted {
        /// The revision asked for.
        requested: i64,
        /// The oldest revision still available.
        compacted: i64,
    },
    /// A read asked for a revision not written yet.
    #[error("revision {requested} is newer than the current revision {current}")]
    Future {
        /// The revision asked for.
        requested: i64,
        /// The current revision.
        current: i64,
    },
    /// A watcher fell too far behind and was ended.
    #[error("watch fell behind")]
    Overflow,
    /// The backend failed.
    #[error("storage backend failed: {0}")]
    Backend(String),
}

impl From<store::Error> for StorageError {
    fn from(e: store::Error) -> Self {
        match e {
            store::Error::AlreadyExists { .. } => StorageError::AlreadyExists,
            store::Error::NotFound { .. } => StorageError::NotFound,
            store::Error::Conflict { .. } => StorageError::Conflict,
            store::Error::Compacted {
                requested,
                compacted,
            } => StorageError::Compacted {
                requested,
                compacted,
            },
            store::Error::FutureRevision { requested, current } => {
                StorageError::Future { requested, current }
            }
            store::Error::WatchOverflow { .. } => StorageError::Overflow,
            other => StorageError::Backend(other.to_string()),
        }
    }
}

pub(crate) fn decode(kv: &KeyValue) -> Result<Value, StorageError> {
    serde_json::from_slice(&kv.value)
        .map_err(|e| StorageError::Backend(format!("stored value of {} is not JSON: {e}", kv.key)))
}

fn encode(value: &Value) -> Bytes {
    Bytes::from(serde_json::to_vec(value).unwrap_or_default())
}

/// One page of a list.
#[derive(Debug, Clone)]
pub struct Page {
    /// Keys and objects, in key order.
    pub items: Vec<(String, Stored)>,
    /// The revision the page was read at.
    pub revision: i64,
    /// Whether more keys follow.
    pub more: bool,
    /// How many keys follow.
    pub remaining: u64,
}

/// One page of a list with the values as stored (JSON bytes), so that a
/// caller can decode them one at a time.
#[derive(Debug)]
pub(crate) struct RawPage {
    /// Keys and values, in key order.
    pub items: Vec<KeyValue>,
    /// The revision the page was read at.
    pub revision: i64,
    /// Whether more keys follow.
    pub more: bool,
    /// How many keys follow.
    pub remaining: u64,
}

/// Handle on the store; cheap to clone.
///
/// Every write goes through here, so this is also where the namespaces'
/// phases are kept current (see `namespaces`).
#[derive(Debug, Clone)]
pub struct ObjectStore {
    store: Store,
    namespaces: Arc<NamespaceStates>,
}

impl ObjectStore {
    fn over(store: Store) -> Self {
        ObjectStore {
            store,
            namespaces: Arc::default(),
        }
    }

    /// An empty in-memory store.
    pub fn in_memory() -> Result<Self, StorageError> {
        Ok(ObjectStore::over(
            Store::in_memory(StoreOptions::default())?,
        ))
    }

    /// The SQLite store at `path` (created if needed).
    pub fn open_sqlite(path: &Path, options: StoreOptions) -> Result<Self, StorageError> {
        Ok(ObjectStore::over(Store::open_sqlite(path, options)?))
    }

    /// The phase of namespace `name`, `None` if it does not exist: from memory
    /// when a write or an earlier read recorded it, else read from the store.
    pub async fn namespace(&self, name: &str) -> Result<Option<NamespacePhase>, StorageError> {
        if let Some(known) = self.namespaces.known(name) {
            return Ok(known);
        }
        let key = format!("{}{name}", namespaces::NAMESPACE_PREFIX);
        let Some(kv) = self.store.get(&key).await? else {
            // Absence has no revision to record it at; a later create records
            // the namespace.
            return Ok(None);
        };
        let phase = NamespacePhase::of(&decode(&kv)?);
        self.namespaces.record(&key, kv.mod_revision, Some(phase));
        Ok(Some(phase))
    }

    /// Notes a successful write of `key` for the namespace phases.
    fn wrote(&self, key: &str, revision: i64, value: Option<&Value>) {
        if namespaces::name_of(key).is_some() {
            self.namespaces
                .record(key, revision, value.map(NamespacePhase::of));
        }
    }

    /// The underlying store.
    pub fn raw(&self) -> &Store {
        &self.store
    }

    /// The latest revision.
    pub async fn current_revision(&self) -> Result<i64, StorageError> {
        Ok(self.store.current_revision())
    }

    /// How many keys live under `prefix` (one key read, the rest counted).
    pub async fn count(&self, prefix: &str) -> Result<u64, StorageError> {
        let page = self.page_raw(prefix, None, Some(1), None).await?;
        Ok(page.items.len() as u64 + page.remaining)
    }

    /// The oldest revision reads and watches can start at.
    pub async fn compacted_revision(&self) -> Result<i64, StorageError> {
        Ok(self.store.compacted_revision())
    }

    /// One key.
    pub async fn get(&self, key: &str) -> Result<Option<Stored>, StorageError> {
        match self.store.get(key).await? {
            None => Ok(None),
            Some(kv) => Ok(Some(Stored {
                value: decode(&kv)?,
                mod_revision: kv.mod_revision,
            })),
        }
    }

    /// Every key under `prefix`, after `start_after` if given, and the revision
    /// the list was read at.
    pub async fn list(
        &self,
        prefix: &str,
        start_after: Option<&str>,
    ) -> Result<(Vec<(String, Stored)>, i64), StorageError> {
        let page = self.page(prefix, start_after, None, None).await?;
        Ok((page.items, page.revision))
    }

    /// One page under `prefix`: after `start_after`, at most `limit` keys, as of
    /// revision `at` (current when `None`).
    pub async fn page(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: Option<usize>,
        at: Option<i64>,
    ) -> Result<Page, StorageError> {
        let resp = self.page_raw(prefix, start_after, limit, at).await?;
        let mut items = Vec::with_capacity(resp.items.len());
        for kv in &resp.items {
            items.push((
                kv.key.clone(),
                Stored {
                    value: decode(kv)?,
                    mod_revision: kv.mod_revision,
                },
            ));
        }
        Ok(Page {
            items,
            revision: resp.revision,
            more: resp.more,
            remaining: resp.remaining,
        })
    }

    /// `page` without decoding the values.
    pub(crate) async fn page_raw(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: Option<usize>,
        at: Option<i64>,
    ) -> Result<RawPage, StorageError> {
        let mut req = ListRequest::prefix(prefix);
        req.start_after = start_after.map(str::to_owned);
        req.limit = limit;
        req.at = at;
        let resp = self.store.list(req).await?;
        Ok(RawPage {
            items: resp.items,
            revision: resp.revision,
            more: resp.more,
            remaining: resp.remaining,
        })
    }

    /// Creates a key; fails if it exists. Returns the write's revision.
    pub async fn create(&self, key: &str, value: &Value) -> Result<i64, StorageError> {
        let revision = self.store.create(key, encode(value)).await?.mod_revision;
        self.wrote(key, revision, Some(value));
        Ok(revision)
    }

    /// Replaces a key whose last write was at `expected`.
    pub async fn update(
        &self,
        key: &str,
        value: &Value,
        expected: i64,
    ) -> Result<i64, StorageError> {
        let revision = self
            .store
            .update(key, encode(value), expected)
            .await?
            .mod_revision;
        self.wrote(key, revision, Some(value));
        Ok(revision)
    }

    /// Deletes a key whose last write was at `expected`.
    pub async fn delete(&self, key: &str, expected: i64) -> Result<i64, StorageError> {
        let revision = self.store.delete(key, Some(expected)).await?.mod_revision;
        self.wrote(key, revision, None);
        Ok(revision)
    }

    /// Changes under `prefix` after revision `after`, in order.
    pub async fn watch(&self, prefix: &str, after: i64) -> Result<Changes, StorageError> {
        Ok(Changes {
            watch: self.store.watch(prefix, after)?,
        })
    }
}

/// A stream of changes under a prefix.
#[derive(Debug)]
pub struct Changes {
    watch: store::Watch,
}

impl Changes {
    /// The next change; `None` when the store shuts down. Cancel-safe.
    pub async fn next(&mut self) -> Option<Result<Change, StorageError>> {
        loop {
            let event = match self.watch.next().await? {
                Ok(e) => e,
                Err(e) => return Some(Err(e.into())),
            };
            let change = match event {
                Event::Put { kv, prev } => (|| {
                    Ok::<_, StorageError>(Change::Put {
                        value: decode(&kv)?,
                        prev: prev.as_ref().map(decode).transpose()?,
                        revision: kv.mod_revision,
                        key: kv.key,
                    })
                })(),
                Event::Delete { kv } => decode(&kv).map(|prev| Change::Delete {
                    prev,
                    revision: kv.mod_revision,
                    key: kv.key,
                }),
            };
            match change {
                Ok(c) => return Some(Ok(c)),
                Err(e) => tracing::warn!(error = %e, "skipping an undecodable stored value"),
            }
        }
    }

    /// A revision up to which every change has been delivered, when nothing is
    /// pending: what a bookmark may carry.
    pub fn progress(&self) -> Option<i64> {
        self.watch.progress()
    }
}
