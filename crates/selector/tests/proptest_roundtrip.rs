//! Property tests: generated selectors (with odd spacing, keywords as labels,
//! both quote kinds, sets, `!` runs and groupings) against an independent
//! reference evaluator, canonical round trips, and arbitrary bytes.

use std::collections::BTreeMap;

use fedmesh_selector::{InternedLabels, Selector};
use proptest::prelude::*;

/// Labels, including every keyword (they are not reserved).
const LABELS: &[&str] = &[
    "a",
    "b",
    "app",
    "in",
    "not",
    "has",
    "all",
    "global",
    "contains",
    "starts",
    "with",
    "ends",
    "startswith",
    "notin",
    "-x",
    "9",
    "/",
    "a.b/c-d_E",
];

/// Values, including both quote kinds (never together), spaces, bytes that
/// are whitespace elsewhere, backslashes and UTF-8.
const VALUES: &[&str] = &[
    "",
    "x",
    "y",
    "xy",
    "yx",
    "X",
    "with space",
    "it's",
    "say \"hi\"",
    "ü",
    "line\nbreak",
    "\\",
    "tab\t",
    "in",
    "{",
    ",",
    "&&",
    ")",
];

#[derive(Debug, Clone, Copy, PartialEq)]
enum Op {
    Eq,
    Ne,
    Contains,
    StartsWith,
    EndsWith,
}

#[derive(Debug, Clone)]
enum Node {
    All,
    Global,
    Has(&'static str),
    Cmp(Op, &'static str, &'static str),
    Set {
        negated: bool,
        label: &'static str,
        values: Vec<&'static str>,
    },
    /// `count` prefix `!`s (parity decides).
    Not(usize, Box<Node>),
    And(Vec<Node>),
    Or(Vec<Node>),
    /// Source parentheses around a node.
    Paren(Box<Node>),
}

fn leaf() -> impl Strategy<Value = Node> {
    let label = proptest::sample::select(LABELS);
    let value = proptest::sample::select(VALUES);
    let op = prop_oneof![
        Just(Op::Eq),
        Just(Op::Ne),
        Just(Op::Contains),
        Just(Op::StartsWith),
        Just(Op::EndsWith)
    ];
    prop_oneof![
        1 => Just(Node::All),
        1 => Just(Node::Global),
        3 => label.clone().prop_map(Node::Has),
        8 => (op, label.clone(), value.clone()).prop_map(|(op, l, v)| Node::Cmp(op, l, v)),
        4 => (any::<bool>(), label, proptest::collection::vec(value, 0..5))
            .prop_map(|(negated, label, values)| Node::Set { negated, label, values }),
    ]
}

fn node() -> impl Strategy<Value = Node> {
    leaf().prop_recursive(4, 32, 4, |inner| {
        prop_oneof![
            (1usize..4, inner.clone()).prop_map(|(n, x)| Node::Not(n, Box::new(x))),
            proptest::collection::vec(inner.clone(), 2..5).prop_map(Node::And),
            proptest::collection::vec(inner.clone(), 2..5).prop_map(Node::Or),
            inner.prop_map(|x| Node::Paren(Box::new(x))),
        ]
    })
}

/// Formatting decisions, from a seed.
struct Style(u64);

impl Style {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn coin(&mut self) -> bool {
        self.next().is_multiple_of(2)
    }

    /// Optional whitespace: only spaces and tabs, possibly none.
    fn space(&mut self) -> &'static str {
        ["", "", " ", "\t", "  ", " \t "][(self.next() % 6) as usize]
    }

    /// Required whitespace (between a label and a keyword operator).
    fn space1(&mut self) -> &'static str {
        [" ", "\t", "  ", "\t "][(self.next() % 4) as usize]
    }
}

fn quote(value: &str, style: &mut Style) -> String {
    let q = if value.contains('"') {
        '\''
    } else if value.contains('\'') || style.coin() {
        '"'
    } else {
        '\''
    };
    format!("{q}{value}{q}")
}

fn render(node: &Node, style: &mut Style, out: &mut String) {
    match node {
        Node::All => out.push_str(&format!("all({})", style.space())),
        Node::Global => out.push_str(&format!("global({})", style.space())),
        Node::Has(label) => {
            let (a, b) = (style.space(), style.space());
            out.push_str(&format!("has({a}{label}{b})"));
        }
        Node::Cmp(op, label, value) => {
            out.push_str(label);
            let op = match op {
                Op::Eq => format!("{}=={}", style.space(), style.space()),
                Op::Ne => format!("{}!={}", style.space(), style.space()),
                Op::Contains => format!("{}contains{}", style.space1(), style.space()),
                Op::StartsWith => {
                    format!(
                        "{}starts{}with{}",
                        style.space1(),
                        style.space(),
                        style.space()
                    )
                }
                Op::EndsWith => {
                    format!(
                        "{}ends{}with{}",
                        style.space1(),
                        style.space(),
                        style.space()
                    )
                }
            };
            out.push_str(&op);
            out.push_str(&quote(value, style));
        }
        Node::Set {
            negated,
            label,
            values,
        } => {
            out.push_str(label);
            out.push_str(style.space1());
            if *negated {
                out.push_str("not");
                out.push_str(style.space());
            }
            out.push_str("in");
            out.push_str(style.space());
            out.push('{');
            for (i, value) in values.iter().enumerate() {
                if i > 0 {
                    out.push_str(style.space());
                    out.push(',');
                }
                out.push_str(style.space());
                out.push_str(&quote(value, style));
            }
            if !values.is_empty() && style.coin() {
                out.push(',');
            }
            out.push_str(style.space());
            out.push('}');
        }
        Node::Not(count, inner) => {
            for _ in 0..*count {
                out.push('!');
                out.push_str(style.space());
            }
            render_operand(inner, style, out);
        }
        Node::And(operands) | Node::Or(operands) => {
            let sep = if matches!(node, Node::And(_)) {
                "&&"
            } else {
                "||"
            };
            for (i, operand) in operands.iter().enumerate() {
                if i > 0 {
                    out.push_str(style.space());
                    out.push_str(sep);
                    out.push_str(style.space());
                }
                render_operand(operand, style, out);
            }
        }
        Node::Paren(inner) => {
            out.push('(');
            out.push_str(style.space());
            render(inner, style, out);
            out.push_str(style.space());
            out.push(')');
        }
    }
}

/// An operand of `!`, `&&` or `||`: chains and negations get parentheses so
/// the source means exactly the generated tree.
fn render_operand(node: &Node, style: &mut Style, out: &mut String) {
    if matches!(node, Node::And(_) | Node::Or(_) | Node::Not(..)) {
        render(&Node::Paren(Box::new(node.clone())), style, out);
    } else {
        render(node, style, out);
    }
}

type Map = BTreeMap<String, String>;

/// The reference semantics (spec section 4), written independently.
fn oracle(node: &Node, labels: &Map) -> bool {
    let get = |l: &str| labels.get(l).map(String::as_str);
    match node {
        Node::All | Node::Global => true,
        Node::Has(l) => get(l).is_some(),
        Node::Cmp(op, l, v) => match (op, get(l)) {
            (Op::Ne, None) => true,
            (_, None) => false,
            (Op::Eq, Some(x)) => x == *v,
            (Op::Ne, Some(x)) => x != *v,
            (Op::Contains, Some(x)) => x.contains(v),
            (Op::StartsWith, Some(x)) => x.starts_with(v),
            (Op::EndsWith, Some(x)) => x.ends_with(v),
        },
        Node::Set {
            negated,
            label,
            values,
        } => match get(label) {
            None => *negated,
            Some(x) => values.contains(&x) != *negated,
        },
        Node::Not(count, inner) => oracle(inner, labels) != (count % 2 == 1),
        Node::And(ops) => ops.iter().all(|op| oracle(op, labels)),
        Node::Or(ops) => ops.iter().any(|op| oracle(op, labels)),
        Node::Paren(inner) => oracle(inner, labels),
    }
}

/// Strips parentheses and even `!` runs: the node the parser builds.
fn effective(node: &Node) -> &Node {
    match node {
        Node::Paren(inner) => effective(inner),
        Node::Not(count, inner) if count % 2 == 0 => effective(inner),
        other => other,
    }
}

/// Whether the parsed tree has a `Not` directly over a `Not`, the case in
/// which Calico's canonical string is not a fixed point.
fn has_double_not(node: &Node) -> bool {
    match effective(node) {
        Node::Not(_, inner) => matches!(effective(inner), Node::Not(..)) || has_double_not(inner),
        Node::And(ops) | Node::Or(ops) => ops.iter().any(has_double_not),
        _ => false,
    }
}

fn label_map() -> impl Strategy<Value = Map> {
    let key = proptest::sample::select(LABELS).prop_map(str::to_owned);
    let value = prop_oneof![
        3 => proptest::sample::select(VALUES).prop_map(str::to_owned),
        1 => "[a-z\"' ]{0,4}",
    ];
    proptest::collection::btree_map(key, value, 0..7)
}

fn matches_both(sel: &Selector, labels: &Map) -> bool {
    let plain = sel.matches(labels);
    let interned = sel.matches_interned(&InternedLabels::new(labels));
    assert_eq!(plain, interned, "paths disagree: {sel:?} on {labels:?}");
    plain
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(600))]

    #[test]
    fn generated_selectors_parse_evaluate_and_round_trip(
        tree in node(),
        seed in 1u64..,
        lead in "[ \t]{0,2}",
        trail in "[ \t]{0,2}",
        maps in proptest::collection::vec(label_map(), 4),
    ) {
        let mut style = Style(seed);
        let mut source = lead;
        render(&tree, &mut style, &mut source);
        source.push_str(&trail);

        let sel = Selector::parse(&source)
            .map_err(|e| TestCaseError::fail(format!("{source:?}: {e}")))?;
        let again = Selector::parse(sel.canonical())
            .map_err(|e| TestCaseError::fail(format!("canonical {:?}: {e}", sel.canonical())))?;
        for labels in &maps {
            let want = oracle(&tree, labels);
            prop_assert_eq!(matches_both(&sel, labels), want, "{:?} on {:?}", source, labels);
            prop_assert_eq!(matches_both(&again, labels), want, "canonical {:?}", sel.canonical());
        }
        // The canonical string is a fixed point except for the `!!` quirk,
        // and after one re-parse it always is.
        if has_double_not(&tree) {
            prop_assert!(sel.canonical().contains("!!"), "{:?}", sel.canonical());
            prop_assert_ne!(sel.canonical(), again.canonical());
        } else {
            prop_assert_eq!(sel.canonical(), again.canonical());
            prop_assert_eq!(sel.unique_id(), again.unique_id());
        }
        let third = Selector::parse(again.canonical()).unwrap();
        prop_assert_eq!(third.canonical(), again.canonical());
        // Whatever the restrictions say is required holds for every match.
        let restrictions = sel.label_restrictions();
        for labels in maps.iter().filter(|l| oracle(&tree, l)) {
            prop_assert!(!restrictions.is_impossible());
            for (label, r) in restrictions.iter() {
                let value = labels.get(label);
                prop_assert!(!r.must_be_present || value.is_some(), "{} required", label);
                prop_assert!(!r.must_be_absent || value.is_none(), "{} forbidden", label);
                if let (Some(allowed), Some(v)) = (&r.allowed_values, value) {
                    prop_assert!(allowed.contains(v), "{}={:?} not allowed", label, v);
                }
            }
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(input in proptest::collection::vec(any::<u8>(), 0..200)) {
        check_bytes(&input)?;
    }

    #[test]
    fn near_valid_inputs_never_panic(
        tree in node(),
        seed in 1u64..,
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..4),
    ) {
        let mut source = String::new();
        render(&tree, &mut Style(seed), &mut source);
        let mut bytes = source.into_bytes();
        for (at, byte, kind) in edits {
            let at = at.index(bytes.len() + 1);
            match kind {
                0 => bytes.insert(at, byte),
                1 if at < bytes.len() => { bytes.remove(at); }
                _ if at < bytes.len() => bytes[at] = byte,
                _ => bytes.push(byte),
            }
        }
        check_bytes(&bytes)?;
    }
}

/// The fuzz target's property (see `fuzz/fuzz_targets/parse.rs`): parsing
/// any bytes either fails with an in-range offset or gives a selector whose
/// canonical bytes re-parse to a selector that is stable from then on.
fn check_bytes(input: &[u8]) -> Result<(), TestCaseError> {
    match Selector::parse_bytes(input) {
        Err(err) => {
            prop_assert!(err.offset <= input.len(), "{err} beyond {}", input.len());
            prop_assert!(!err.to_string().is_empty());
        }
        Ok(sel) => {
            let again = Selector::parse_bytes(sel.canonical_bytes())
                .map_err(|e| TestCaseError::fail(format!("{:?}: {e}", sel.canonical())))?;
            let third = Selector::parse_bytes(again.canonical_bytes()).unwrap();
            prop_assert_eq!(third.canonical_bytes(), again.canonical_bytes());
            if !sel.canonical_bytes().windows(2).any(|w| w == b"!!") {
                prop_assert_eq!(sel.canonical_bytes(), again.canonical_bytes());
            }
            let empty = Map::new();
            prop_assert_eq!(sel.matches(&empty), again.matches(&empty));
        }
    }
    Ok(())
}
