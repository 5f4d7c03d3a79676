//! The [`Labels`] trait: any source of label values a selector can read.

use std::borrow::Borrow;
use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasher, Hash};

/// A label source: the value of a label, or `None` when it is absent.
///
/// Implemented for `HashMap` and `BTreeMap` with `String` or `&str` keys, for
/// slices, arrays and vectors of `(key, value)` pairs (where the last pair
/// with a given key wins, as when inserting into a map), and for
/// [`InternedLabels`](crate::InternedLabels).
pub trait Labels {
    /// The value of the label `key`, if present.
    fn get(&self, key: &str) -> Option<&str>;
}

impl<T: Labels + ?Sized> Labels for &T {
    fn get(&self, key: &str) -> Option<&str> {
        (**self).get(key)
    }
}

impl<K, V, S> Labels for HashMap<K, V, S>
where
    K: Borrow<str> + Hash + Eq,
    V: AsRef<str>,
    S: BuildHasher,
{
    fn get(&self, key: &str) -> Option<&str> {
        HashMap::get(self, key).map(AsRef::as_ref)
    }
}

impl<K, V> Labels for BTreeMap<K, V>
where
    K: Borrow<str> + Ord,
    V: AsRef<str>,
{
    fn get(&self, key: &str) -> Option<&str> {
        BTreeMap::get(self, key).map(AsRef::as_ref)
    }
}

impl<K: AsRef<str>, V: AsRef<str>> Labels for [(K, V)] {
    fn get(&self, key: &str) -> Option<&str> {
        self.iter()
            .rev()
            .find(|(k, _)| k.as_ref() == key)
            .map(|(_, v)| v.as_ref())
    }
}

impl<K: AsRef<str>, V: AsRef<str>, const N: usize> Labels for [(K, V); N] {
    fn get(&self, key: &str) -> Option<&str> {
        Labels::get(self.as_slice(), key)
    }
}

impl<K: AsRef<str>, V: AsRef<str>> Labels for Vec<(K, V)> {
    fn get(&self, key: &str) -> Option<&str> {
        Labels::get(self.as_slice(), key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_source_finds_present_labels_and_misses_absent_ones() {
        let pairs = [("a", "1"), ("b", "2")];
        let owned: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let hash: HashMap<String, String> = owned.iter().cloned().collect();
        let btree: BTreeMap<&str, &str> = pairs.iter().copied().collect();
        let sources: [&dyn Labels; 5] = [&pairs, &owned, &&owned[..], &hash, &btree];
        for source in sources {
            assert_eq!(source.get("a"), Some("1"));
            assert_eq!(source.get("b"), Some("2"));
            assert_eq!(source.get("c"), None);
        }
    }

    #[test]
    fn last_pair_wins_in_slices() {
        let pairs = [("a", "1"), ("a", "2")];
        assert_eq!(Labels::get(&pairs, "a"), Some("2"));
    }
}
