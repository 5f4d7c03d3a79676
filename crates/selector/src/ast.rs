//! The expression tree and its evaluation.
//!
//! Evaluation is generic over a [`LabelView`]: plain [`Labels`] compare bytes,
//! [`InternedLabels`] compare atom addresses. Both short-circuit left to right
//! and allocate nothing.

use crate::interned::{Atom, InternedLabels};
use crate::labels::Labels;

/// A parsed selector expression. `And`/`Or` are n-ary (one node per
/// unparenthesised chain, at least two operands); a run of `!` has already
/// been collapsed by parity, though `!(!x)` still nests.
#[derive(Debug)]
pub(crate) enum Expr {
    All,
    Global,
    Has(Atom),
    Eq(Atom, Atom),
    Ne(Atom, Atom),
    Contains(Atom, Atom),
    StartsWith(Atom, Atom),
    EndsWith(Atom, Atom),
    In(Atom, ValueSet),
    NotIn(Atom, ValueSet),
    Not(Box<Expr>),
    And(Box<[Expr]>),
    Or(Box<[Expr]>),
}

/// The values of a set literal, de-duplicated.
#[derive(Debug)]
pub(crate) struct ValueSet {
    /// Bytewise ascending: the canonical order, and binary search on bytes.
    sorted: Box<[Atom]>,
    /// The same atoms' addresses, ascending, for the interned path.
    addrs: Box<[usize]>,
}

/// Set sizes up to which a linear scan of addresses beats a binary search.
const SET_LINEAR_MAX: usize = 8;

impl ValueSet {
    /// Builds a set from literal values (any order, duplicates allowed).
    pub(crate) fn new(mut values: Vec<&[u8]>) -> ValueSet {
        values.sort_unstable();
        values.dedup();
        let mut table = crate::interned::lock_table();
        let sorted: Box<[Atom]> = values.iter().map(|v| table.intern(v)).collect();
        drop(table);
        let mut addrs: Box<[usize]> = sorted.iter().map(Atom::addr).collect();
        addrs.sort_unstable();
        ValueSet { sorted, addrs }
    }

    /// The values in canonical (bytewise ascending) order.
    pub(crate) fn values(&self) -> &[Atom] {
        &self.sorted
    }

    #[inline]
    fn contains_atom(&self, value: &Atom) -> bool {
        let addr = value.addr();
        if self.addrs.len() <= SET_LINEAR_MAX {
            self.addrs.contains(&addr)
        } else {
            self.addrs.binary_search(&addr).is_ok()
        }
    }

    fn contains_bytes(&self, value: &[u8]) -> bool {
        self.sorted
            .binary_search_by(|atom| atom.as_bytes().cmp(value))
            .is_ok()
    }
}

/// A label value as seen by one evaluation path.
pub(crate) trait ValueView {
    fn equals(&self, literal: &Atom) -> bool;
    fn bytes(&self) -> &[u8];
    fn in_set(&self, set: &ValueSet) -> bool;
}

/// A label source as seen by one evaluation path.
pub(crate) trait LabelView {
    type Value<'v>: ValueView
    where
        Self: 'v;
    fn value_of(&self, key: &Atom) -> Option<Self::Value<'_>>;
}

impl ValueView for &Atom {
    #[inline]
    fn equals(&self, literal: &Atom) -> bool {
        *self == literal
    }
    #[inline]
    fn bytes(&self) -> &[u8] {
        self.as_bytes()
    }
    #[inline]
    fn in_set(&self, set: &ValueSet) -> bool {
        set.contains_atom(self)
    }
}

impl LabelView for InternedLabels {
    type Value<'v> = &'v Atom;
    #[inline]
    fn value_of(&self, key: &Atom) -> Option<&Atom> {
        InternedLabels::value_of(self, key)
    }
}

impl ValueView for &str {
    fn equals(&self, literal: &Atom) -> bool {
        self.as_bytes() == literal.as_bytes()
    }
    fn bytes(&self) -> &[u8] {
        self.as_bytes()
    }
    fn in_set(&self, set: &ValueSet) -> bool {
        set.contains_bytes(self.as_bytes())
    }
}

/// Adapts any [`Labels`] to the evaluator.
pub(crate) struct PlainLabels<'l, L: ?Sized>(pub(crate) &'l L);

impl<L: Labels + ?Sized> LabelView for PlainLabels<'_, L> {
    type Value<'v>
        = &'v str
    where
        Self: 'v;
    fn value_of(&self, key: &Atom) -> Option<&str> {
        // Keys come from the lexer and are ASCII; a key that were not text
        // could not be present in a map keyed by text anyway.
        self.0.get(key.as_str()?)
    }
}

/// Bytewise substring test; the empty needle is found in every haystack.
fn contains_bytes(haystack: &[u8], needle: &[u8]) -> bool {
    let Some((&first, tail)) = needle.split_first() else {
        return true;
    };
    if haystack.len() < needle.len() {
        return false;
    }
    let last_start = haystack.len() - needle.len();
    haystack
        .iter()
        .take(last_start + 1)
        .enumerate()
        .any(|(i, &b)| b == first && haystack.get(i + 1..i + needle.len()) == Some(tail))
}

impl Expr {
    /// Calico's `Evaluate`: absent labels make `!=` and `not in` true and
    /// every other comparison false; `&&` and `||` short-circuit.
    ///
    /// Leaves are evaluated inline (at the top level and inside the `&&`/`||`
    /// loops); only `!`, `&&` and `||` nodes cost a call.
    #[inline(always)]
    pub(crate) fn eval<V: LabelView + ?Sized>(&self, labels: &V) -> bool {
        match self {
            Expr::All | Expr::Global => true,
            Expr::Has(key) => labels.value_of(key).is_some(),
            Expr::Eq(key, lit) => labels.value_of(key).is_some_and(|v| v.equals(lit)),
            Expr::Ne(key, lit) => labels.value_of(key).is_none_or(|v| !v.equals(lit)),
            Expr::Contains(key, lit) => labels
                .value_of(key)
                .is_some_and(|v| contains_bytes(v.bytes(), lit.as_bytes())),
            Expr::StartsWith(key, lit) => labels
                .value_of(key)
                .is_some_and(|v| v.bytes().starts_with(lit.as_bytes())),
            Expr::EndsWith(key, lit) => labels
                .value_of(key)
                .is_some_and(|v| v.bytes().ends_with(lit.as_bytes())),
            Expr::In(key, set) => labels.value_of(key).is_some_and(|v| v.in_set(set)),
            Expr::NotIn(key, set) => labels.value_of(key).is_none_or(|v| !v.in_set(set)),
            Expr::Not(_) | Expr::And(_) | Expr::Or(_) => self.eval_composite(labels),
        }
    }

    /// The recursion point, kept out of line so that `eval` can be inlined.
    #[inline(never)]
    fn eval_composite<V: LabelView + ?Sized>(&self, labels: &V) -> bool {
        match self {
            Expr::Not(inner) => !inner.eval(labels),
            Expr::And(operands) => operands.iter().all(|op| op.eval(labels)),
            Expr::Or(operands) => operands.iter().any(|op| op.eval(labels)),
            leaf => leaf.eval(labels),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn substring_search_is_bytewise() {
        assert!(contains_bytes(b"abc", b""));
        assert!(contains_bytes(b"", b""));
        assert!(contains_bytes(b"abc", b"abc"));
        assert!(contains_bytes(b"xxabcxx", b"abc"));
        assert!(contains_bytes(b"aab", b"ab"));
        assert!(!contains_bytes(b"ab", b"abc"));
        assert!(!contains_bytes(b"acb", b"ab"));
        // A lone continuation byte is found inside a multi-byte character.
        assert!(contains_bytes("ü".as_bytes(), &[0xbc]));
    }

    #[test]
    fn sets_are_sorted_and_deduplicated() {
        let set = ValueSet::new(vec![b"b", b"a", b"b", b"A"]);
        let got: Vec<&[u8]> = set.values().iter().map(Atom::as_bytes).collect();
        assert_eq!(got, vec![&b"A"[..], b"a", b"b"]);
        assert!(set.contains_bytes(b"a"));
        assert!(!set.contains_bytes(b"c"));
        assert!(set.contains_atom(&Atom::new(b"b")));
        assert!(!set.contains_atom(&Atom::new(b"B")));
    }

    #[test]
    fn large_sets_use_binary_search_on_both_paths() {
        let owned: Vec<Vec<u8>> = (0..40).map(|i| format!("v{i}").into_bytes()).collect();
        let set = ValueSet::new(owned.iter().map(Vec::as_slice).collect());
        for value in &owned {
            assert!(set.contains_bytes(value));
            assert!(set.contains_atom(&Atom::new(value)));
        }
        assert!(!set.contains_atom(&Atom::new(b"v40")));
        assert!(!set.contains_bytes(b"v40"));
    }
}
