//! Label restrictions: what any matching label set must (not) contain, as
//! Calico's `LabelRestrictions()` works it out. An index can use them to find
//! candidate objects for a selector without evaluating it against every one.
//!
//! Rules, per node:
//! - `==`, `in`, `has`, `contains`, `starts with`, `ends with` require the
//!   label; `==` and `in` also limit its values.
//! - `!has(l)` forbids `l`. Other negations, `!=`, `not in`, `all()` and
//!   `global()` impose nothing (`!(a == "x")` does not forbid `a`).
//! - `&&` merges its operands' restrictions and intersects value sets; an
//!   empty intersection means the selector can never match.
//! - `||` keeps a label only where every operand restricts it the same way
//!   (required in all, or forbidden in all), with the union of value sets when
//!   every operand limits values.

use std::collections::{BTreeMap, BTreeSet};

use crate::ast::Expr;
use crate::interned::Atom;

/// What a selector requires of one label.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelRestriction {
    /// Every matching label set has this label (e.g. `has(l)`, `l == "v"`).
    pub must_be_present: bool,
    /// No matching label set has this label (e.g. `!has(l)`).
    pub must_be_absent: bool,
    /// When `Some`, every matching label set gives this label one of these
    /// values; an empty set means nothing can match. `None` means any value.
    ///
    /// Label values are text, so a literal that is not valid UTF-8 (possible
    /// only through [`Selector::parse_bytes`](crate::Selector::parse_bytes))
    /// can never be a label's value and is left out of the set.
    pub allowed_values: Option<BTreeSet<String>>,
}

impl LabelRestriction {
    /// Whether some label value can satisfy this restriction (Calico's
    /// `PossibleToSatisfy`).
    pub fn is_satisfiable(&self) -> bool {
        !(self.must_be_present && self.must_be_absent)
            && self.allowed_values.as_ref().is_none_or(|v| !v.is_empty())
    }
}

/// The restrictions of a whole selector, by label name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelRestrictions {
    by_label: BTreeMap<String, LabelRestriction>,
}

impl LabelRestrictions {
    /// The restriction on `label`, if any.
    pub fn get(&self, label: &str) -> Option<&LabelRestriction> {
        self.by_label.get(label)
    }

    /// Restricted labels in ascending order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &LabelRestriction)> + '_ {
        self.by_label.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// How many labels are restricted.
    pub fn len(&self) -> usize {
        self.by_label.len()
    }

    /// Whether nothing is restricted (e.g. `all()`, `a != "x"`).
    pub fn is_empty(&self) -> bool {
        self.by_label.is_empty()
    }

    /// Whether the restrictions prove that the selector never matches, e.g.
    /// `a == "x" && a == "y"` or `has(a) && !has(a)`.
    pub fn is_impossible(&self) -> bool {
        self.by_label.values().any(|r| !r.is_satisfiable())
    }

    pub(crate) fn of(expr: &Expr) -> LabelRestrictions {
        LabelRestrictions {
            by_label: restrictions(expr),
        }
    }
}

type Map = BTreeMap<String, LabelRestriction>;

fn label_name(key: &Atom) -> String {
    String::from_utf8_lossy(key.as_bytes()).into_owned()
}

fn text_values<'a>(values: impl IntoIterator<Item = &'a Atom>) -> BTreeSet<String> {
    values
        .into_iter()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect()
}

fn single(key: &Atom, allowed_values: Option<BTreeSet<String>>) -> Map {
    Map::from([(
        label_name(key),
        LabelRestriction {
            must_be_present: true,
            must_be_absent: false,
            allowed_values,
        },
    )])
}

fn restrictions(expr: &Expr) -> Map {
    match expr {
        Expr::All | Expr::Global | Expr::Ne(..) | Expr::NotIn(..) => Map::new(),
        Expr::Has(key)
        | Expr::Contains(key, _)
        | Expr::StartsWith(key, _)
        | Expr::EndsWith(key, _) => single(key, None),
        Expr::Eq(key, value) => single(key, Some(text_values([value]))),
        Expr::In(key, set) => single(key, Some(text_values(set.values()))),
        Expr::Not(inner) => match &**inner {
            Expr::Has(key) => Map::from([(
                label_name(key),
                LabelRestriction {
                    must_be_present: false,
                    must_be_absent: true,
                    allowed_values: None,
                },
            )]),
            _ => Map::new(),
        },
        Expr::And(operands) => {
            let mut merged = Map::new();
            for operand in operands.iter() {
                for (label, r) in restrictions(operand) {
                    let base = merged.entry(label).or_default();
                    base.must_be_present |= r.must_be_present;
                    base.must_be_absent |= r.must_be_absent;
                    base.allowed_values = match (base.allowed_values.take(), r.allowed_values) {
                        (None, other) | (other, None) => other,
                        (Some(a), Some(b)) => Some(a.intersection(&b).cloned().collect()),
                    };
                }
            }
            merged
        }
        Expr::Or(operands) => {
            let Some((first, rest)) = operands.split_first() else {
                return Map::new();
            };
            let mut kept = restrictions(first);
            for operand in rest {
                let other = restrictions(operand);
                kept.retain(|label, r| {
                    let o = other.get(label).cloned().unwrap_or_default();
                    r.must_be_present &= o.must_be_present;
                    r.allowed_values = match (r.must_be_present, r.allowed_values.take()) {
                        (true, Some(mut a)) => o.allowed_values.map(|b| {
                            a.extend(b);
                            a
                        }),
                        _ => None,
                    };
                    r.must_be_absent &= o.must_be_absent;
                    r.must_be_present || r.must_be_absent
                });
            }
            kept
        }
    }
}
