//! The values the store hands out: revisions, key-value pairs, events, list pages.

use std::ops::Bound;

use bytes::Bytes;

/// A position in the store's single, global history. Every successful write takes
/// the next revision; revisions are `> 0` and strictly increasing across all keys,
/// also across restarts of a SQLite store. The API server uses them as
/// `metadata.resourceVersion`.
pub type Revision = i64;

/// A key with its value as of some revision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyValue {
    /// The full key, e.g. `/registry/pods/default/web-0`.
    pub key: String,
    /// The stored bytes (the store never looks inside them).
    pub value: Bytes,
    /// The revision that created this incarnation of the key (a key deleted and
    /// created again gets a new one).
    pub create_revision: Revision,
    /// The revision of the last write to the key (for a deletion event: the
    /// revision of the deletion).
    pub mod_revision: Revision,
}

/// One change in the store's history, as a watch delivers it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A create (`prev` is `None`) or an update (`prev` is the value it replaced).
    Put {
        /// The key's new value.
        kv: KeyValue,
        /// The value this write replaced, `None` for a create.
        prev: Option<KeyValue>,
    },
    /// A deletion.
    Delete {
        /// The value that was deleted, with `mod_revision` set to the revision of
        /// the deletion (as etcd and kube-apiserver report it).
        kv: KeyValue,
    },
}

impl Event {
    /// The revision at which this change happened.
    pub fn revision(&self) -> Revision {
        self.kv().mod_revision
    }

    /// The key that changed.
    pub fn key(&self) -> &str {
        &self.kv().key
    }

    /// The new value of a put, or the deleted value of a deletion.
    pub fn kv(&self) -> &KeyValue {
        match self {
            Event::Put { kv, .. } | Event::Delete { kv } => kv,
        }
    }
}

/// What to list: keys under `prefix`, in key order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListRequest {
    /// Only keys that start with this string (`/registry/pods/` does not match
    /// `/registry/podsx/a`).
    pub prefix: String,
    /// Start strictly after this key (the last key of the previous page: how
    /// `continue` tokens resume).
    pub start_after: Option<String>,
    /// At most this many items; `None` or `Some(0)` means no limit.
    pub limit: Option<usize>,
    /// List the state as of this revision; `None` means the current state. A
    /// revision older than the compacted one fails with `Error::Compacted`, a
    /// revision newer than the current one with `Error::FutureRevision`.
    pub at: Option<Revision>,
}

impl ListRequest {
    /// Lists every key under `prefix`, at the current revision, without a limit.
    pub fn prefix(prefix: impl Into<String>) -> Self {
        ListRequest {
            prefix: prefix.into(),
            ..ListRequest::default()
        }
    }

    /// Resumes after `key`.
    #[must_use]
    pub fn start_after(mut self, key: impl Into<String>) -> Self {
        self.start_after = Some(key.into());
        self
    }

    /// Returns at most `limit` items.
    #[must_use]
    pub fn limit(mut self, limit: usize) -> Self {
        self.limit = Some(limit);
        self
    }

    /// Lists as of `revision`.
    #[must_use]
    pub fn at(mut self, revision: Revision) -> Self {
        self.at = Some(revision);
        self
    }

    pub(crate) fn effective_limit(&self) -> Option<usize> {
        self.limit.filter(|&l| l > 0)
    }
}

/// One page of a list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListResponse {
    /// The items, in key order.
    pub items: Vec<KeyValue>,
    /// The revision the page is consistent at: the requested one, or the current
    /// revision when none was requested. Later pages of the same list should pass
    /// it as `at`.
    pub revision: Revision,
    /// Whether more keys follow the last item (under the same prefix, at the same
    /// revision).
    pub more: bool,
    /// How many keys follow the last item (`remainingItemCount`); 0 when `more`
    /// is false.
    pub remaining: u64,
}

/// A contiguous range of keys: a prefix, optionally cut below by `start_after`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct KeyRange {
    pub lower: String,
    pub lower_inclusive: bool,
    /// `None` when the range runs to the end of the key space.
    pub upper: Option<String>,
}

impl KeyRange {
    /// Every key that starts with `prefix`.
    pub fn prefix(prefix: &str) -> Self {
        KeyRange {
            lower: prefix.to_owned(),
            lower_inclusive: true,
            upper: prefix_end(prefix),
        }
    }

    /// Keys that start with `prefix` and sort after `start_after`.
    pub fn page(prefix: &str, start_after: Option<&str>) -> Self {
        let mut range = KeyRange::prefix(prefix);
        if let Some(after) = start_after {
            range.cut_after(after);
        }
        range
    }

    /// Drops keys up to and including `key` from the range.
    pub fn cut_after(&mut self, key: &str) {
        if key >= self.lower.as_str() {
            self.lower = key.to_owned();
            self.lower_inclusive = false;
        }
    }

    pub fn contains(&self, key: &str) -> bool {
        let above = if self.lower_inclusive {
            key >= self.lower.as_str()
        } else {
            key > self.lower.as_str()
        };
        above && self.upper.as_deref().is_none_or(|upper| key < upper)
    }

    pub fn bounds(&self) -> (Bound<&str>, Bound<&str>) {
        let lower = if self.lower_inclusive {
            Bound::Included(self.lower.as_str())
        } else {
            Bound::Excluded(self.lower.as_str())
        };
        let upper = match &self.upper {
            Some(upper) => Bound::Excluded(upper.as_str()),
            None => Bound::Unbounded,
        };
        (lower, upper)
    }

    /// Whether the range is empty (a `start_after` beyond the prefix).
    pub fn is_empty(&self) -> bool {
        match &self.upper {
            Some(upper) => self.lower.as_str() >= upper.as_str(),
            None => false,
        }
    }
}

/// The smallest string greater than every string that starts with `prefix`, or
/// `None` if no string is (an empty prefix, or one made only of `char::MAX`).
/// Strings compare by their UTF-8 bytes, which is code point order, in Rust's
/// `BTreeMap` and in SQLite's BINARY collation alike.
pub(crate) fn prefix_end(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let next = match last {
            '\u{D7FF}' => Some('\u{E000}'),
            char::MAX => None,
            c => char::from_u32(u32::from(c) + 1),
        };
        if let Some(next) = next {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_end_bounds_exactly_the_prefixed_keys() {
        assert_eq!(
            prefix_end("/registry/pods/").as_deref(),
            Some("/registry/pods0")
        );
        assert_eq!(prefix_end(""), None);
        assert_eq!(prefix_end("a\u{D7FF}").as_deref(), Some("a\u{E000}"));
        assert_eq!(prefix_end("a\u{10FFFF}").as_deref(), Some("b"));
        assert_eq!(prefix_end("\u{10FFFF}"), None);
    }

    #[test]
    fn range_contains_prefix_and_respects_start_after() {
        let range = KeyRange::page("/registry/pods/", Some("/registry/pods/b"));
        assert!(!range.contains("/registry/pods/a"));
        assert!(!range.contains("/registry/pods/b"));
        assert!(range.contains("/registry/pods/c"));
        assert!(!range.contains("/registry/podsx/c"));
        assert!(!range.contains("/registry/pods"));
        let before = KeyRange::page("/b/", Some("/a/zzz"));
        assert!(before.contains("/b/a"));
        assert!(KeyRange::page("/b/", Some("/c")).is_empty());
        assert!(!KeyRange::page("", Some("zzz")).is_empty());
    }
}
