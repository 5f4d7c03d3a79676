//! watch: store changes turned into kube watch events, with initial events,
//! bookmarks, selector transitions, timeouts and 410 for compacted revisions.

use std::sync::Arc;
use std::time::Duration;

use futures::stream::BoxStream;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::storage::Change;
use super::{ApiError, Objects, StorageError, WatchOptions, storage_failed};
use crate::registry::ResourceInfo;

/// A stream of watch events (`{"type": ..., "object": ...}`).
pub type WatchStream = BoxStream<'static, Value>;

/// How long a watch lasts when the client gives no `timeoutSeconds`.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1800);

fn event(kind: &str, object: Value) -> Value {
    json!({"type": kind, "object": object})
}

fn bookmark(r: &ResourceInfo, rv: i64, initial_end: bool) -> Value {
    let mut meta = json!({"resourceVersion": rv.to_string()});
    if initial_end {
        meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
    }
    event(
        "BOOKMARK",
        json!({"kind": r.kind, "apiVersion": r.api_version(), "metadata": meta}),
    )
}

/// The ERROR event a watch ends with when its start revision is gone.
pub fn too_old(requested: i64, oldest: i64) -> Value {
    event(
        "ERROR",
        ApiError::Expired(format!("too old resource version: {requested} ({oldest})")).status(),
    )
}

struct Filter {
    r: Arc<ResourceInfo>,
    opts: WatchOptions,
}

impl Filter {
    fn matches(&self, obj: &Value) -> bool {
        self.opts.labels.matches(obj) && self.opts.fields.matches(obj)
    }

    /// The event a change produces for this watcher, if any.
    fn translate(&self, change: &Change) -> Option<Value> {
        let r = &self.r;
        match change {
            Change::Put {
                value,
                prev,
                revision,
                ..
            } => {
                let new = Objects::present(r, value.clone(), *revision);
                let now = self.matches(&new);
                let before = prev
                    .as_ref()
                    .map(|p| self.matches(&Objects::present(r, p.clone(), *revision)));
                match (before, now) {
                    (None | Some(false), true) => Some(event("ADDED", new)),
                    (Some(true), true) => Some(event("MODIFIED", new)),
                    (Some(true), false) => Some(event("DELETED", new)),
                    (_, false) => None,
                }
            }
            Change::Delete { prev, revision, .. } => {
                let old = Objects::present(r, prev.clone(), *revision);
                self.matches(&old).then(|| event("DELETED", old))
            }
        }
    }
}

/// Starts a watch; see the module docs.
pub(super) async fn watch(
    objects: &Objects,
    r: Arc<ResourceInfo>,
    ns: Option<&str>,
    opts: WatchOptions,
    bookmark_every: Duration,
) -> Result<WatchStream, ApiError> {
    let store = objects.store().clone();
    let prefix = r.scope_prefix(ns);
    let rv = opts.resource_version.clone().unwrap_or_default();
    let initial = match opts.send_initial_events {
        Some(v) => v,
        None => rv.is_empty() || rv == "0",
    };
    let watch_list = opts.send_initial_events == Some(true);
    let timeout = opts.timeout.unwrap_or(DEFAULT_TIMEOUT);
    let bookmarks = opts.bookmarks;
    let filter = Filter { r, opts };

    let mut pending = Vec::new();
    let after = if initial {
        let (items, read_at) = store.list(&prefix, None).await.map_err(storage_failed)?;
        for (_, stored) in items {
            let obj = Objects::present(&filter.r, stored.value, stored.mod_revision);
            if filter.matches(&obj) {
                pending.push(event("ADDED", obj));
            }
        }
        if watch_list {
            pending.push(bookmark(&filter.r, read_at, true));
        }
        read_at
    } else {
        super::parse_rv(&rv)?
    };

    let (tx, rx) = mpsc::channel::<Value>(64);
    let changes = match store.watch(&prefix, after).await {
        Ok(c) => Some(c),
        Err(StorageError::Compacted {
            requested,
            compacted,
        }) => {
            pending.push(too_old(requested, compacted));
            None
        }
        Err(e) => return Err(storage_failed(e)),
    };
    tokio::spawn(async move {
        for e in pending {
            if tx.send(e).await.is_err() {
                return;
            }
        }
        let Some(mut changes) = changes else {
            return;
        };
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        let mut ticker = tokio::time::interval(bookmark_every);
        ticker.tick().await;
        loop {
            tokio::select! {
                () = &mut deadline => return,
                () = tx.closed() => return,
                change = changes.next() => {
                    let change = match change {
                        None => return,
                        Some(Ok(c)) => c,
                        Some(Err(StorageError::Compacted { requested, compacted })) => {
                            let _ = tx.send(too_old(requested, compacted)).await;
                            return;
                        }
                        // Overflow or a failed read: end the watch; the client
                        // re-watches from its last resourceVersion.
                        Some(Err(_)) => return,
                    };
                    if let Some(e) = filter.translate(&change)
                        && tx.send(e).await.is_err()
                    {
                        return;
                    }
                }
                _ = ticker.tick(), if bookmarks => {
                    if let Some(rv) = changes.progress()
                        && tx.send(bookmark(&filter.r, rv, false)).await.is_err()
                    {
                        return;
                    }
                }
            }
        }
    });
    Ok(Box::pin(futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|e| (e, rx))
    })))
}
