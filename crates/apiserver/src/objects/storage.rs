//! The object layer's view of the revisioned store: JSON objects in, JSON objects
//! out, revisions as `i64`. Everything the server does to storage goes through here.
//!
//! Interim: until the `store` module lands this holds a minimal in-memory log of its
//! own with the same operations; it is replaced by a thin adapter over `crate::store`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use serde_json::Value;
use tokio::sync::{broadcast, mpsc};

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
    /// A watch asked for revisions that were compacted away.
    #[error("required revision {requested} has been compacted (oldest {compacted})")]
    Compacted {
        /// The revision asked for.
        requested: i64,
        /// The oldest revision still available.
        compacted: i64,
    },
    /// The backend failed.
    #[error("storage backend failed: {0}")]
    Backend(String),
}

#[derive(Debug, Default)]
struct Mem {
    revision: i64,
    data: BTreeMap<String, Stored>,
    history: Vec<Arc<Change>>,
}

/// Handle on the store; cheap to clone.
#[derive(Debug, Clone)]
pub struct ObjectStore {
    mem: Arc<Mutex<Mem>>,
    changes: broadcast::Sender<Arc<Change>>,
}

/// Capacity of the fan-out of changes to watches; a watch that falls this far
/// behind is ended and the client re-watches.
const FANOUT: usize = 4096;

impl ObjectStore {
    /// An empty in-memory store.
    pub fn in_memory() -> Self {
        ObjectStore {
            mem: Arc::new(Mutex::new(Mem::default())),
            changes: broadcast::channel(FANOUT).0,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Mem> {
        self.mem.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The latest revision.
    pub async fn current_revision(&self) -> Result<i64, StorageError> {
        Ok(self.lock().revision)
    }

    /// The oldest revision a watch can start after.
    pub async fn compacted_revision(&self) -> Result<i64, StorageError> {
        Ok(0)
    }

    /// One key.
    pub async fn get(&self, key: &str) -> Result<Option<Stored>, StorageError> {
        Ok(self.lock().data.get(key).cloned())
    }

    /// Every key under `prefix` in key order, after `start_after` if given, and the
    /// revision the list was read at.
    pub async fn list(
        &self,
        prefix: &str,
        start_after: Option<&str>,
    ) -> Result<(Vec<(String, Stored)>, i64), StorageError> {
        let mem = self.lock();
        let items = mem
            .data
            .range(prefix.to_owned()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .filter(|(k, _)| start_after.is_none_or(|s| k.as_str() > s))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        Ok((items, mem.revision))
    }

    fn commit(&self, mem: &mut Mem, change: Change) {
        let change = Arc::new(change);
        mem.history.push(change.clone());
        // No receiver is fine: nobody watches.
        let _ = self.changes.send(change);
    }

    /// Creates a key; fails if it exists.
    pub async fn create(&self, key: &str, value: &Value) -> Result<i64, StorageError> {
        let mut mem = self.lock();
        if mem.data.contains_key(key) {
            return Err(StorageError::AlreadyExists);
        }
        mem.revision += 1;
        let revision = mem.revision;
        mem.data.insert(
            key.to_owned(),
            Stored {
                value: value.clone(),
                mod_revision: revision,
            },
        );
        let change = Change::Put {
            key: key.to_owned(),
            value: value.clone(),
            prev: None,
            revision,
        };
        self.commit(&mut mem, change);
        Ok(revision)
    }

    /// Replaces a key whose last write was at `expected`.
    pub async fn update(
        &self,
        key: &str,
        value: &Value,
        expected: i64,
    ) -> Result<i64, StorageError> {
        let mut mem = self.lock();
        let prev = match mem.data.get(key) {
            None => return Err(StorageError::NotFound),
            Some(s) if s.mod_revision != expected => return Err(StorageError::Conflict),
            Some(s) => s.value.clone(),
        };
        mem.revision += 1;
        let revision = mem.revision;
        mem.data.insert(
            key.to_owned(),
            Stored {
                value: value.clone(),
                mod_revision: revision,
            },
        );
        let change = Change::Put {
            key: key.to_owned(),
            value: value.clone(),
            prev: Some(prev),
            revision,
        };
        self.commit(&mut mem, change);
        Ok(revision)
    }

    /// Deletes a key whose last write was at `expected`.
    pub async fn delete(&self, key: &str, expected: i64) -> Result<i64, StorageError> {
        let mut mem = self.lock();
        match mem.data.get(key) {
            None => return Err(StorageError::NotFound),
            Some(s) if s.mod_revision != expected => return Err(StorageError::Conflict),
            Some(_) => {}
        }
        let prev = mem.data.remove(key).map(|s| s.value).unwrap_or(Value::Null);
        mem.revision += 1;
        let revision = mem.revision;
        let change = Change::Delete {
            key: key.to_owned(),
            prev,
            revision,
        };
        self.commit(&mut mem, change);
        Ok(revision)
    }

    /// Changes under `prefix` after revision `after`, in order. The receiver ends
    /// when the watch cannot keep up.
    pub async fn watch(
        &self,
        prefix: &str,
        after: i64,
    ) -> Result<mpsc::Receiver<Arc<Change>>, StorageError> {
        let (tx, rx) = mpsc::channel(256);
        let (backlog, mut live) = {
            let mem = self.lock();
            let backlog: Vec<Arc<Change>> = mem
                .history
                .iter()
                .filter(|c| c.revision() > after && c.key().starts_with(prefix))
                .cloned()
                .collect();
            (backlog, self.changes.subscribe())
        };
        let prefix = prefix.to_owned();
        tokio::spawn(async move {
            let mut last = after;
            for c in backlog {
                last = c.revision();
                if tx.send(c).await.is_err() {
                    return;
                }
            }
            loop {
                match live.recv().await {
                    Ok(c) => {
                        if c.revision() <= last || !c.key().starts_with(&prefix) {
                            continue;
                        }
                        last = c.revision();
                        if tx.send(c).await.is_err() {
                            return;
                        }
                    }
                    Err(_) => return,
                }
            }
        });
        Ok(rx)
    }
}
