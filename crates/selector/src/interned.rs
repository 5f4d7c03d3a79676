//! The process-wide string interner and [`InternedLabels`], the label set that
//! selectors evaluate against without allocating or locking.
//!
//! Every label key and value a selector mentions, and every key and value of
//! an [`InternedLabels`], is an [`Atom`]: a reference-counted byte string that
//! the interner guarantees to be unique per content while it is alive. Equal
//! content therefore means equal address, so `==` and `in` are pointer
//! comparisons and key lookup compares machine words: a linear scan for up
//! to 8 labels, above that an open-addressing index on key addresses (usually
//! one probe).
//!
//! Memory: the interner holds one reference to each atom. When its table has
//! doubled since the last sweep it drops the entries nobody else references
//! any more, so strings that all selectors and label sets have let go of are
//! freed, at an amortised cost of O(1) per interning.

use std::collections::HashSet;
use std::fmt;
use std::sync::{Arc, LazyLock, Mutex, MutexGuard, PoisonError};

use crate::labels::Labels;

/// An interned byte string; equality is identity.
#[derive(Clone)]
pub(crate) struct Atom(Arc<[u8]>);

impl Atom {
    /// Interns `bytes` (taking the interner's lock once).
    pub(crate) fn new(bytes: &[u8]) -> Atom {
        lock_table().intern(bytes)
    }

    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The address of the shared allocation: the atom's identity.
    #[inline]
    pub(crate) fn addr(&self) -> usize {
        Arc::as_ptr(&self.0).cast::<u8>() as usize
    }

    /// The content as text. Atoms built from `&str` are always valid UTF-8;
    /// selector literals may not be (see `Selector::parse_bytes`), in which
    /// case this gives `None`.
    pub(crate) fn as_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.0).ok()
    }
}

impl PartialEq for Atom {
    #[inline]
    fn eq(&self, other: &Atom) -> bool {
        self.addr() == other.addr()
    }
}

impl Eq for Atom {}

impl fmt::Debug for Atom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(&self.0))
    }
}

/// Table size below which the interner never sweeps.
const MIN_SWEEP_SIZE: usize = 1024;

pub(crate) struct Table {
    set: HashSet<Arc<[u8]>>,
    sweep_at: usize,
}

impl Table {
    pub(crate) fn intern(&mut self, bytes: &[u8]) -> Atom {
        if let Some(existing) = self.set.get(bytes) {
            return Atom(Arc::clone(existing));
        }
        if self.set.len() >= self.sweep_at {
            // A count of 1 is the table's own reference. Nobody can clone it
            // concurrently: new references are only handed out under this lock.
            self.set.retain(|atom| Arc::strong_count(atom) > 1);
            self.sweep_at = (self.set.len() * 2).max(MIN_SWEEP_SIZE);
        }
        let atom: Arc<[u8]> = Arc::from(bytes);
        self.set.insert(Arc::clone(&atom));
        Atom(atom)
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.set.len()
    }
}

static TABLE: LazyLock<Mutex<Table>> = LazyLock::new(|| {
    Mutex::new(Table {
        set: HashSet::new(),
        sweep_at: MIN_SWEEP_SIZE,
    })
});

/// Locks the interner. A panic while holding the lock cannot leave the table
/// inconsistent (every update is a single insert or retain), so a poisoned
/// lock is simply taken over.
pub(crate) fn lock_table() -> MutexGuard<'static, Table> {
    TABLE.lock().unwrap_or_else(PoisonError::into_inner)
}

/// An immutable label set with interned keys and values, for fast repeated
/// evaluation with [`Selector::matches_interned`](crate::Selector::matches_interned).
///
/// Build it once per object and evaluate many selectors against it: lookups
/// compare addresses and never allocate or lock. When the same key is given
/// more than once, the last value wins (as when inserting into a map).
///
/// ```
/// use fedmesh_selector::{InternedLabels, Selector};
///
/// let labels = InternedLabels::new([("app", "web"), ("tier", "frontend")]);
/// // Implicit labels are added while building, without re-interning the rest.
/// let remote = labels.with_label("federation.tigera.io/remoteClusterName", "east");
/// let sel: Selector = "app == 'web' && has(federation.tigera.io/remoteClusterName)".parse()?;
/// assert!(!sel.matches_interned(&labels));
/// assert!(sel.matches_interned(&remote));
/// # Ok::<(), fedmesh_selector::ParseError>(())
/// ```
#[derive(Clone, Default)]
pub struct InternedLabels {
    /// Sorted by key address.
    entries: Box<[(Atom, Atom)]>,
    /// Open-addressing index from key address to position in `entries`,
    /// built only for sets too large for a linear scan. Its length is a power
    /// of two at least twice the number of labels, so probes stay short and
    /// always reach an empty slot.
    index: Box<[Slot]>,
    /// `usize::BITS - log2(index.len())`: the shift of the Fibonacci hash.
    shift: u32,
}

/// A slot of the key index; `addr == 0` marks it empty (no allocation lives
/// at address 0).
#[derive(Clone, Copy, Default)]
struct Slot {
    addr: usize,
    entry: usize,
}

/// Label counts up to which a linear scan of the keys beats hashing.
const LINEAR_SCAN_MAX: usize = 8;

/// The slot where the probe for `addr` starts, in a table of
/// `2^(usize::BITS - shift)` slots. Fibonacci hashing moves the address's
/// low bits, which allocation alignment leaves mostly zero, into the high
/// bits it keeps.
#[inline]
fn home_slot(addr: usize, shift: u32) -> usize {
    addr.wrapping_mul(0x9E37_79B9_7F4A_7C15_u64 as usize) >> shift
}

impl InternedLabels {
    /// Interns every key and value (taking the interner's lock once).
    pub fn new<I, K, V>(labels: I) -> InternedLabels
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let mut builder = InternedLabelsBuilder::new();
        builder.extend(labels);
        builder.build()
    }

    /// Starts an empty builder.
    pub fn builder() -> InternedLabelsBuilder {
        InternedLabelsBuilder::new()
    }

    /// A copy of this set with `key` set to `value` (replacing any existing
    /// value). Only the new key and value are interned.
    pub fn with_label(&self, key: &str, value: &str) -> InternedLabels {
        let mut builder = self.to_builder();
        builder.insert(key, value);
        builder.build()
    }

    /// A builder that starts from this set's labels.
    pub fn to_builder(&self) -> InternedLabelsBuilder {
        InternedLabelsBuilder {
            entries: self.entries.to_vec(),
        }
    }

    /// The number of labels.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no labels.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The value of `key`, if present.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|(k, _)| k.as_bytes() == key.as_bytes())
            .and_then(|(_, v)| v.as_str())
    }

    /// The labels, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        self.entries
            .iter()
            .filter_map(|(k, v)| Some((k.as_str()?, v.as_str()?)))
    }

    /// The value interned for `key`: the evaluation hot path.
    #[inline]
    pub(crate) fn value_of(&self, key: &Atom) -> Option<&Atom> {
        let addr = key.addr();
        if self.index.is_empty() {
            return self
                .entries
                .iter()
                .find(|(k, _)| k.addr() == addr)
                .map(|(_, v)| v);
        }
        let mask = self.index.len() - 1;
        let mut at = home_slot(addr, self.shift);
        loop {
            let slot = self.index.get(at)?;
            if slot.addr == addr {
                return self.entries.get(slot.entry).map(|(_, v)| v);
            }
            if slot.addr == 0 {
                return None;
            }
            at = (at + 1) & mask;
        }
    }

    fn from_unique(entries: Box<[(Atom, Atom)]>) -> InternedLabels {
        if entries.len() <= LINEAR_SCAN_MAX {
            return InternedLabels {
                entries,
                index: Box::default(),
                shift: 0,
            };
        }
        // At least 4 slots, so the shift stays below the word size.
        let size = (entries.len() * 2).next_power_of_two().max(4);
        let mask = size - 1;
        let shift = usize::BITS - size.trailing_zeros();
        let mut index = vec![Slot::default(); size];
        for (entry, (key, _)) in entries.iter().enumerate() {
            let mut at = home_slot(key.addr(), shift);
            // The table is at most half full, so a free slot exists.
            while index.get(at).is_some_and(|slot| slot.addr != 0) {
                at = (at + 1) & mask;
            }
            if let Some(slot) = index.get_mut(at) {
                *slot = Slot {
                    addr: key.addr(),
                    entry,
                };
            }
        }
        InternedLabels {
            entries,
            index: index.into_boxed_slice(),
            shift,
        }
    }
}

impl fmt::Debug for InternedLabels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.entries.iter().map(|(k, v)| (k, v)))
            .finish()
    }
}

impl PartialEq for InternedLabels {
    fn eq(&self, other: &InternedLabels) -> bool {
        self.entries == other.entries
    }
}

impl Eq for InternedLabels {}

impl<K: AsRef<str>, V: AsRef<str>> FromIterator<(K, V)> for InternedLabels {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> InternedLabels {
        InternedLabels::new(iter)
    }
}

impl Labels for InternedLabels {
    fn get(&self, key: &str) -> Option<&str> {
        InternedLabels::get(self, key)
    }
}

/// Collects labels for an [`InternedLabels`]; see [`InternedLabels::builder`].
#[derive(Clone, Default, Debug)]
pub struct InternedLabelsBuilder {
    /// In insertion order; duplicates are resolved in `build`.
    entries: Vec<(Atom, Atom)>,
}

impl InternedLabelsBuilder {
    /// An empty builder.
    pub fn new() -> InternedLabelsBuilder {
        InternedLabelsBuilder::default()
    }

    /// Adds a label (a later value for the same key wins).
    pub fn insert(&mut self, key: &str, value: &str) -> &mut InternedLabelsBuilder {
        let mut table = lock_table();
        let entry = (table.intern(key.as_bytes()), table.intern(value.as_bytes()));
        drop(table);
        self.entries.push(entry);
        self
    }

    /// Adds many labels under one acquisition of the interner's lock.
    pub fn extend<I, K, V>(&mut self, labels: I) -> &mut InternedLabelsBuilder
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let labels = labels.into_iter();
        self.entries.reserve(labels.size_hint().0);
        let mut table = lock_table();
        for (k, v) in labels {
            let entry = (
                table.intern(k.as_ref().as_bytes()),
                table.intern(v.as_ref().as_bytes()),
            );
            self.entries.push(entry);
        }
        self
    }

    /// Freezes the labels.
    pub fn build(self) -> InternedLabels {
        let mut entries = self.entries;
        // Stable sort keeps insertion order among equal keys, so the last
        // occurrence of a key is the one kept.
        entries.sort_by_key(|(k, _)| k.addr());
        let mut unique: Vec<(Atom, Atom)> = Vec::with_capacity(entries.len());
        for entry in entries {
            match unique.last_mut() {
                Some(last) if last.0 == entry.0 => *last = entry,
                _ => unique.push(entry),
            }
        }
        InternedLabels::from_unique(unique.into_boxed_slice())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_content_interns_to_the_same_atom() {
        let a = Atom::new(b"interned-test-same");
        let b = Atom::new(b"interned-test-same");
        let c = Atom::new(b"interned-test-other");
        assert_eq!(a, b);
        assert_eq!(a.addr(), b.addr());
        assert_ne!(a, c);
    }

    #[test]
    fn unreferenced_atoms_are_swept() {
        // Intern far more distinct, immediately dropped strings than the sweep
        // threshold; the table must not keep them all.
        for i in 0..(MIN_SWEEP_SIZE * 8) {
            drop(Atom::new(format!("sweep-test-{i}").as_bytes()));
        }
        let kept = Atom::new(b"sweep-test-kept");
        for i in 0..(MIN_SWEEP_SIZE * 8) {
            drop(Atom::new(format!("sweep-test-b-{i}").as_bytes()));
        }
        assert!(lock_table().len() < MIN_SWEEP_SIZE * 8);
        // A live atom survives sweeps and keeps its identity.
        assert_eq!(Atom::new(b"sweep-test-kept"), kept);
    }

    #[test]
    fn last_duplicate_key_wins_and_lookup_works_for_small_and_large_sets() {
        for n in [0usize, 1, 5, 12, 13, 50, 200] {
            let mut pairs: Vec<(String, String)> =
                (0..n).map(|i| (format!("k{i}"), format!("v{i}"))).collect();
            pairs.push(("k0".into(), "last".into()));
            let labels = InternedLabels::new(pairs.iter().map(|(k, v)| (k, v)));
            assert_eq!(labels.len(), n.max(1));
            assert_eq!(labels.get("k0"), Some("last"));
            for i in 1..n {
                let key = Atom::new(format!("k{i}").as_bytes());
                let want = Atom::new(format!("v{i}").as_bytes());
                assert_eq!(labels.value_of(&key), Some(&want), "n={n} i={i}");
            }
            assert_eq!(labels.value_of(&Atom::new(b"absent")), None);
        }
    }

    #[test]
    fn with_label_adds_and_replaces() {
        let base = InternedLabels::new([("a", "1"), ("b", "2")]);
        let added = base.with_label("c", "3");
        let replaced = base.with_label("a", "9");
        assert_eq!(base.len(), 2);
        assert_eq!(added.get("c"), Some("3"));
        assert_eq!(added.get("a"), Some("1"));
        assert_eq!(replaced.get("a"), Some("9"));
        assert_eq!(replaced.len(), 2);
    }
}
