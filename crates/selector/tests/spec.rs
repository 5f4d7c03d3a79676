//! The rules of `calico-selector.md`, section by section, table-driven.
//! Every row of section 7 has its own test at the end.

use std::collections::BTreeMap;

use fedmesh_selector::{
    InternedLabels, Keyword, MAX_LABEL_LEN, ParseError, ParseErrorKind, Selector,
};

fn canonical(input: &str) -> String {
    match Selector::parse(input) {
        Ok(sel) => sel.canonical().to_owned(),
        Err(err) => panic!("{input:?} should parse, got: {err}"),
    }
}

fn error(input: &str) -> ParseError {
    match Selector::parse(input) {
        Ok(sel) => panic!("{input:?} should fail, parsed as {:?}", sel.canonical()),
        Err(err) => err,
    }
}

/// Checks canonical strings; each row is (input, canonical).
fn check_canonical(rows: &[(&str, &str)]) {
    for (input, want) in rows {
        assert_eq!(canonical(input), *want, "canonical of {input:?}");
    }
}

/// Checks errors; each row is (input, kind, offset).
fn check_errors(rows: &[(&str, ParseErrorKind, usize)]) {
    for (input, kind, offset) in rows {
        let err = error(input);
        assert_eq!(&err.kind, kind, "error kind for {input:?} ({err})");
        assert_eq!(err.offset, *offset, "error offset for {input:?} ({err})");
    }
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Evaluates on both paths, which must agree.
fn eval(selector: &str, pairs: &[(&str, &str)]) -> bool {
    let sel = Selector::parse(selector).unwrap();
    let plain = sel.matches(&labels(pairs));
    let interned = sel.matches_interned(&InternedLabels::new(pairs.iter().copied()));
    assert_eq!(
        plain, interned,
        "paths disagree for {selector:?} on {pairs:?}"
    );
    plain
}

/// A row of an evaluation table: (selector, labels, expected).
type EvalRow<'a> = (&'a str, &'a [(&'a str, &'a str)], bool);

fn check_eval(rows: &[EvalRow<'_>]) {
    for (selector, pairs, want) in rows {
        assert_eq!(eval(selector, pairs), *want, "{selector:?} on {pairs:?}");
    }
}

fn expected_operator(label: &str) -> ParseErrorKind {
    ParseErrorKind::ExpectedOperator {
        label: label.to_owned(),
    }
}

// ---- Section 2: lexical rules ----------------------------------------------

#[test]
fn only_space_and_tab_are_whitespace() {
    check_canonical(&[
        ("a\t==\t\"x\"", "a == \"x\""),
        ("  \ta == 'x' \t ", "a == \"x\""),
    ]);
    check_errors(&[
        ("a == \"x\"\n", ParseErrorKind::ExpectedIdentifier, 8),
        ("\ra == \"x\"", ParseErrorKind::ExpectedIdentifier, 0),
        ("a ==\u{a0}\"x\"", ParseErrorKind::ExpectedIdentifier, 4),
        ("a\u{2003}== \"x\"", expected_operator("a"), 1),
    ]);
}

#[test]
fn whitespace_is_optional_between_tokens() {
    check_canonical(&[
        ("a contains\"x\"", "a contains \"x\""),
        ("a==\"x\"&&!has(b)", "(a == \"x\" && !has(b))"),
        ("a in{\"x\"}", "a in {\"x\"}"),
        ("(a=='x')||(b!='y')", "(a == \"x\" || b != \"y\")"),
    ]);
    // Without space, a keyword is part of the label.
    check_errors(&[(
        "acontains \"x\"",
        ParseErrorKind::ExpectedComparison {
            found: "string literal",
        },
        10,
    )]);
}

#[test]
fn punctuation_rules() {
    check_errors(&[
        ("a = \"x\"", ParseErrorKind::ExpectedEquals, 2),
        ("a == \"x\" & b == \"y\"", ParseErrorKind::ExpectedAnd, 9),
        ("a == \"x\" | b == \"y\"", ParseErrorKind::ExpectedOr, 9),
        // `!` directly followed by `=` is always `!=`.
        ("a ! = \"x\"", ParseErrorKind::ExpectedEquals, 4),
        ("a !== \"x\"", ParseErrorKind::ExpectedEquals, 4),
        ("a =! \"x\"", ParseErrorKind::ExpectedEquals, 2),
        (
            "!=has(a)",
            ParseErrorKind::UnexpectedToken { found: "'!='" },
            0,
        ),
    ]);
}

#[test]
fn label_characters_and_length() {
    let max = "l".repeat(MAX_LABEL_LEN);
    let over = "l".repeat(MAX_LABEL_LEN + 1);
    check_canonical(&[
        ("a.b/c-d_E == \"x\"", "a.b/c-d_E == \"x\""),
        ("-a == \"x\"", "-a == \"x\""),
        ("9 == \"x\"", "9 == \"x\""),
        ("/ == \"x\"", "/ == \"x\""),
        (".../... == \"x\"", ".../... == \"x\""),
        ("A == \"x\"", "A == \"x\""),
        (&format!("{max} == \"x\""), &format!("{max} == \"x\"")),
        (&format!("has({max})"), &format!("has({max})")),
    ]);
    check_errors(&[
        (
            &format!("{over} == \"x\""),
            ParseErrorKind::LabelTooLong { len: 513 },
            0,
        ),
        (
            &format!("has({over})"),
            ParseErrorKind::LabelTooLong { len: 513 },
            4,
        ),
        ("a:b == \"x\"", expected_operator("a"), 1),
        ("a@b == \"x\"", expected_operator("a"), 1),
        ("ü == \"x\"", ParseErrorKind::ExpectedIdentifier, 0),
    ]);
    // Labels are case-sensitive.
    check_eval(&[
        ("A == \"x\"", &[("a", "x")], false),
        ("a == \"X\"", &[("a", "x")], false),
    ]);
}

#[test]
fn string_literals_have_no_escapes() {
    check_canonical(&[
        (r#"a == "x\""#, r#"a == "x\""#),
        (r#"a == 'it"s'"#, r#"a == 'it"s'"#),
        (r#"a == "it's""#, r#"a == "it's""#),
        ("a == \"\"", "a == \"\""),
        ("a == \"tab\there\"", "a == \"tab\there\""),
        ("a == \"ü€\"", "a == \"ü€\""),
    ]);
    check_errors(&[
        (r#"a == "x\"""#, ParseErrorKind::UnterminatedString, 9),
        ("a == \"x", ParseErrorKind::UnterminatedString, 5),
        ("a == 'x\"", ParseErrorKind::UnterminatedString, 5),
        ("a in {\"x\", 'y}", ParseErrorKind::UnterminatedString, 11),
    ]);
    check_eval(&[
        (r#"a == "x\""#, &[("a", "x\\")], true),
        ("a == \"ü\"", &[("a", "ü")], true),
    ]);
}

#[test]
fn operator_keywords_only_after_a_label_in_order() {
    check_canonical(&[
        ("a contains \"x\"", "a contains \"x\""),
        ("a starts with \"x\"", "a starts with \"x\""),
        ("a startswith \"x\"", "a starts with \"x\""),
        ("a starts  \t with \"x\"", "a starts with \"x\""),
        ("a ends with \"x\"", "a ends with \"x\""),
        ("a endswith'x'", "a ends with \"x\""),
        ("a not in {\"x\"}", "a not in {\"x\"}"),
        ("a notin {\"x\"}", "a not in {\"x\"}"),
        ("a in {\"x\"}", "a in {\"x\"}"),
        ("a notin{}", "a not in {}"),
    ]);
    check_errors(&[
        ("a inf \"x\"", expected_operator("a"), 2),
        ("a startswithx \"x\"", expected_operator("a"), 2),
        ("a containsx \"x\"", expected_operator("a"), 2),
        ("a like \"x\"", expected_operator("a"), 2),
        ("a has(b)", expected_operator("a"), 2),
        ("a  \t starts \"x\"", expected_operator("a"), 5),
    ]);
}

#[test]
fn keywords_are_not_reserved() {
    check_canonical(&[
        (
            "contains contains \"contains\"",
            "contains contains \"contains\"",
        ),
        ("not in {\"x\"}", "not in {\"x\"}"),
        ("in == \"x\"", "in == \"x\""),
        ("in in {'in'}", "in in {\"in\"}"),
        ("has == \"x\"", "has == \"x\""),
        ("all != \"x\"", "all != \"x\""),
        ("global == \"x\"", "global == \"x\""),
        (
            "startswith starts with \"s\"",
            "startswith starts with \"s\"",
        ),
        ("not not in {}", "not not in {}"),
    ]);
    check_eval(&[
        ("not in {\"x\"}", &[("not", "x")], true),
        ("not in {\"x\"}", &[("in", "x")], false),
    ]);
}

#[test]
fn has_all_global_are_exact_prefixes() {
    check_canonical(&[
        ("has( a )", "has(a)"),
        ("has(\ta\t)", "has(a)"),
        ("all( )", "all()"),
        ("global(\t)", "global()"),
    ]);
    check_errors(&[
        ("has()", ParseErrorKind::ExpectedIdentifier, 4),
        (
            "has(a b)",
            ParseErrorKind::NoClosingParen {
                keyword: Keyword::Has,
            },
            6,
        ),
        (
            "has(foo",
            ParseErrorKind::NoClosingParen {
                keyword: Keyword::Has,
            },
            7,
        ),
        (
            "all(x)",
            ParseErrorKind::NoClosingParen {
                keyword: Keyword::All,
            },
            4,
        ),
        (
            "global(",
            ParseErrorKind::NoClosingParen {
                keyword: Keyword::Global,
            },
            7,
        ),
        (
            "has (a)",
            ParseErrorKind::ExpectedComparison { found: "'('" },
            4,
        ),
    ]);
}

// ---- Section 3: syntax -----------------------------------------------------

#[test]
fn empty_or_blank_input_is_all() {
    for input in ["", " ", "\t \t"] {
        let sel = Selector::parse(input).unwrap();
        assert_eq!(sel.canonical(), "all()");
        assert_eq!(sel, Selector::all());
        assert_eq!(sel.unique_id(), "s:5y5I3VdRZfDU01O--xXAPx2yxCQQqMf0M6IWug");
    }
}

#[test]
fn precedence_or_and_not() {
    check_canonical(&[
        (
            "a == \"x\" || b == \"y\" && a == \"y\"",
            "(a == \"x\" || (b == \"y\" && a == \"y\"))",
        ),
        (
            "a == \"x\" && b == \"y\" || a == \"y\"",
            "((a == \"x\" && b == \"y\") || a == \"y\")",
        ),
        ("!a == \"x\"", "!a == \"x\""),
        ("!a in {\"a\"}", "!a in {\"a\"}"),
        ("!has(a) && !b == 'x'", "(!has(a) && !b == \"x\")"),
        ("!(a == 'x' || has(b))", "!(a == \"x\" || has(b))"),
    ]);
    check_eval(&[
        ("!a == \"x\"", &[("a", "y")], true),
        ("!a == \"x\"", &[("a", "x")], false),
        (
            "a == \"x\" || b == \"y\" && a == \"y\"",
            &[("a", "x"), ("b", "n")],
            true,
        ),
        (
            "a == \"x\" || b == \"y\" && a == \"y\"",
            &[("a", "z"), ("b", "y")],
            false,
        ),
    ]);
}

#[test]
fn chains_are_n_ary_and_groupings_are_kept() {
    check_canonical(&[
        ("has(a) && has(b) && has(c)", "(has(a) && has(b) && has(c))"),
        ("has(a) || has(b) || has(c)", "(has(a) || has(b) || has(c))"),
        (
            "(has(a) && has(b)) && has(c)",
            "((has(a) && has(b)) && has(c))",
        ),
        (
            "has(a) && (has(b) && has(c))",
            "(has(a) && (has(b) && has(c)))",
        ),
    ]);
}

#[test]
fn runs_of_not_collapse_by_parity() {
    check_canonical(&[
        ("!!has(b)", "has(b)"),
        ("!!! has(a)", "!has(a)"),
        ("! !!has(a)", "!has(a)"),
        ("!!!!all()", "all()"),
        ("!\t!\t!global()", "!global()"),
    ]);
    // A million `!` is a loop, not a recursion.
    let many = format!("{}has(a)", "!".repeat(1_000_001));
    assert_eq!(canonical(&many), "!has(a)");
}

#[test]
fn comparisons_need_label_left_and_string_right() {
    check_errors(&[
        ("b == b", ParseErrorKind::ExpectedString, 5),
        ("b contains b", ParseErrorKind::ExpectedString, 11),
        (
            "'b1' == b",
            ParseErrorKind::UnexpectedToken {
                found: "string literal",
            },
            0,
        ),
        ("a == \"x\" == \"y\"", unexpected_end_content("'=='"), 9),
        ("a in \"x\"", ParseErrorKind::ExpectedSetLiteral, 5),
        ("a in c", ParseErrorKind::ExpectedSetLiteral, 5),
        ("a not in (\"x\")", ParseErrorKind::ExpectedSetLiteral, 9),
    ]);
}

fn unexpected_end_content(found: &'static str) -> ParseErrorKind {
    ParseErrorKind::UnexpectedContentAtEnd { found }
}

#[test]
fn set_literal_rules() {
    check_canonical(&[
        ("a in {}", "a in {}"),
        ("a in {\"x\",}", "a in {\"x\"}"),
        ("a in { \"x\" , 'y' , }", "a in {\"x\", \"y\"}"),
        (
            "a in {\"B\",\"a\",\"A\",\"b\"}",
            "a in {\"A\", \"B\", \"a\", \"b\"}",
        ),
        ("a in {\"x\", \"x\", 'x'}", "a in {\"x\"}"),
        ("a not in {'b', 'a'}", "a not in {\"a\", \"b\"}"),
        // Each value gets its own quote; `"` (0x22) sorts before `'` (0x27).
        ("a in {\"'\", '\"'}", "a in {'\"', \"'\"}"),
    ]);
    check_errors(&[
        ("a in {,}", ParseErrorKind::ExpectedCloseBrace, 6),
        (
            "a in {\"x\",,\"y\"}",
            ParseErrorKind::ExpectedCloseBrace,
            10,
        ),
        ("a in {\"x\" \"y\"}", ParseErrorKind::ExpectedCloseBrace, 10),
        ("a in {\"x\"", ParseErrorKind::ExpectedCloseBrace, 9),
        (
            "a in {\"x\", has(b)}",
            ParseErrorKind::ExpectedCloseBrace,
            11,
        ),
    ]);
}

#[test]
fn parentheses_must_balance() {
    check_canonical(&[
        ("((a == \"x\"))", "a == \"x\""),
        (" (all() )", "all()"),
        ("(!(has(a)))", "!has(a)"),
    ]);
    check_errors(&[
        ("()", ParseErrorKind::UnexpectedToken { found: "')'" }, 1),
        (
            "(",
            ParseErrorKind::UnexpectedToken {
                found: "end of input",
            },
            1,
        ),
        (")", ParseErrorKind::UnexpectedToken { found: "')'" }, 0),
        ("(a == \"foo\"", ParseErrorKind::ExpectedCloseParen, 11),
        ("a == \"x\")", unexpected_end_content("')'"), 8),
        ("(has(a) has(b))", ParseErrorKind::ExpectedCloseParen, 8),
    ]);
}

#[test]
fn bare_labels_trailing_operators_and_lone_nots_are_errors() {
    check_errors(&[
        ("b", ParseErrorKind::UnexpectedEnd, 1),
        ("a ", ParseErrorKind::UnexpectedEnd, 2),
        (
            "a == \"x\" &&",
            ParseErrorKind::UnexpectedToken {
                found: "end of input",
            },
            11,
        ),
        (
            "a == \"x\" || ",
            ParseErrorKind::UnexpectedToken {
                found: "end of input",
            },
            12,
        ),
        (
            "!",
            ParseErrorKind::UnexpectedToken {
                found: "end of input",
            },
            1,
        ),
        (
            "!!",
            ParseErrorKind::UnexpectedToken {
                found: "end of input",
            },
            2,
        ),
        (
            "&& has(a)",
            ParseErrorKind::UnexpectedToken { found: "'&&'" },
            0,
        ),
    ]);
}

#[test]
fn lexical_errors_win_over_earlier_syntax_errors() {
    // Calico tokenizes the whole input first.
    check_errors(&[
        ("a == b && c == 'x", ParseErrorKind::UnterminatedString, 15),
        ("() && a = 'x'", ParseErrorKind::ExpectedEquals, 8),
        (
            "a == \"x\" == \"y\" \n",
            ParseErrorKind::ExpectedIdentifier,
            16,
        ),
    ]);
}

// ---- Section 4: evaluation -------------------------------------------------

#[test]
fn evaluation_table() {
    let absent: &[(&str, &str)] = &[("other", "v")];
    check_eval(&[
        ("a == \"s\"", absent, false),
        ("a == \"s\"", &[("a", "s")], true),
        ("a == \"s\"", &[("a", "t")], false),
        ("a != \"s\"", absent, true),
        ("a != \"s\"", &[("a", "s")], false),
        ("a != \"s\"", &[("a", "t")], true),
        ("a contains \"ell\"", absent, false),
        ("a contains \"ell\"", &[("a", "hello")], true),
        ("a contains \"elo\"", &[("a", "hello")], false),
        ("a starts with \"he\"", absent, false),
        ("a starts with \"he\"", &[("a", "hello")], true),
        ("a starts with \"lo\"", &[("a", "hello")], false),
        ("a ends with \"lo\"", absent, false),
        ("a ends with \"lo\"", &[("a", "hello")], true),
        ("a ends with \"he\"", &[("a", "hello")], false),
        ("a in {\"x\", \"y\"}", absent, false),
        ("a in {\"x\", \"y\"}", &[("a", "y")], true),
        ("a in {\"x\", \"y\"}", &[("a", "z")], false),
        ("a in {}", &[("a", "")], false),
        ("a not in {\"x\", \"y\"}", absent, true),
        ("a not in {\"x\", \"y\"}", &[("a", "y")], false),
        ("a not in {\"x\", \"y\"}", &[("a", "z")], true),
        ("a not in {}", &[("a", "")], true),
        ("has(a)", absent, false),
        ("has(a)", &[("a", "")], true),
        ("all()", &[], true),
        ("global()", &[], true),
        ("global()", absent, true),
        // Case-sensitive, bytewise, no numeric/glob/regex meaning.
        ("a == \"01\"", &[("a", "1")], false),
        ("a contains \".*\"", &[("a", "abc")], false),
        ("a starts with \"Ü\"", &[("a", "ü")], false),
    ]);
}

#[test]
fn boolean_operators() {
    check_eval(&[
        ("has(a) && has(b)", &[("a", "1"), ("b", "2")], true),
        ("has(a) && has(b)", &[("a", "1")], false),
        ("has(a) || has(b)", &[("b", "2")], true),
        ("has(a) || has(b)", &[("c", "2")], false),
        ("!(has(a) || has(b))", &[("c", "2")], true),
        ("!(has(a) && has(b))", &[("a", "1")], true),
    ]);
}

#[test]
fn many_labels_and_large_sets_agree_on_both_paths() {
    let pairs: Vec<(String, String)> = (0..100)
        .map(|i| (format!("key-{i}"), format!("value-{i}")))
        .collect();
    let set: Vec<String> = (0..50).map(|i| format!("'value-{}'", i * 2)).collect();
    let sel = Selector::parse(&format!("key-42 in {{{}}}", set.join(","))).unwrap();
    let plain: BTreeMap<String, String> = pairs.iter().cloned().collect();
    let interned = InternedLabels::new(pairs.iter().map(|(k, v)| (k, v)));
    assert!(sel.matches(&plain));
    assert!(sel.matches_interned(&interned));
    let odd = Selector::parse(&format!("key-43 in {{{}}}", set.join(","))).unwrap();
    assert!(!odd.matches(&plain));
    assert!(!odd.matches_interned(&interned));
    for i in (0..100).step_by(7) {
        let eq = Selector::parse(&format!("key-{i} == 'value-{i}'")).unwrap();
        assert!(eq.matches_interned(&interned), "key-{i}");
    }
}

// ---- Section 5: canonical string and UniqueID ------------------------------

#[test]
fn quote_choice() {
    check_canonical(&[
        ("a == \"'\"", "a == \"'\""),
        ("a == '\"'", "a == '\"'"),
        ("a == 'plain'", "a == \"plain\""),
        ("a != '\"'", "a != '\"'"),
        ("a contains '\"'", "a contains '\"'"),
    ]);
}

#[test]
fn not_prints_without_parentheses() {
    check_canonical(&[
        ("!(k == 'v')", "!k == \"v\""),
        ("!((k == 'v'))", "!k == \"v\""),
        ("!(has(a) && has(b))", "!(has(a) && has(b))"),
    ]);
}

#[test]
fn unique_id_is_sha224_of_the_canonical_string() {
    let a = Selector::parse("app=='frontend'").unwrap();
    let b = Selector::parse("  app == \"frontend\"").unwrap();
    assert_eq!(a.unique_id(), "s:NgAztXgCjQllj3pd-bE8lGiQIfjv1kgSqFjDzg");
    assert_eq!(a, b);
    assert_eq!(a.unique_id(), b.unique_id());
    assert_ne!(
        a.unique_id(),
        Selector::parse("app == 'backend'").unwrap().unique_id()
    );
}

#[test]
fn selector_value_semantics() {
    let sel: Selector = "tier in {'b','a'}".parse().unwrap();
    let clone = sel.clone();
    assert_eq!(sel, clone);
    assert_eq!(sel.to_string(), "tier in {\"a\", \"b\"}");
    assert_eq!(
        format!("{sel:?}"),
        "Selector(\"tier in {\\\"a\\\", \\\"b\\\"}\")"
    );
    assert_eq!(Selector::default(), Selector::all());
    assert_eq!(Selector::try_from("all()").unwrap(), Selector::all());
    let mut set = std::collections::HashSet::new();
    set.insert(sel);
    assert!(set.contains(&Selector::parse("tier in {\"a\",\"b\",\"a\"}").unwrap()));
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Selector>();
    assert_send_sync::<InternedLabels>();
}

#[test]
fn parse_bytes_accepts_invalid_utf8_in_strings() {
    let sel = Selector::parse_bytes(b"a == \"\xff\xfe\" || b in {'\x80'}").unwrap();
    assert_eq!(
        sel.canonical_bytes(),
        b"(a == \"\xff\xfe\" || b in {\"\x80\"})"
    );
    assert_eq!(
        sel.canonical(),
        "(a == \"\u{fffd}\u{fffd}\" || b in {\"\u{fffd}\"})"
    );
    // Lossy text must not make two different selectors equal.
    let other = Selector::parse_bytes(b"a == \"\xfe\xff\" || b in {'\x80'}").unwrap();
    assert_ne!(sel, other);
    assert_ne!(sel.unique_id(), other.unique_id());
    // Outside a string, a non-ASCII byte is an error.
    let err = Selector::parse_bytes(b"a\xff == \"x\"").unwrap_err();
    assert_eq!(err.kind, expected_operator("a"));
    // A lone continuation byte is found inside a multi-byte character.
    let cont = Selector::parse_bytes(b"a contains \"\xbc\"").unwrap();
    assert!(cont.matches(&labels(&[("a", "ü")])));
}

// ---- Section 6: limits, errors and label restrictions -----------------------

#[test]
fn error_display_says_what_and_where() {
    let cases = [
        ("a b", "expected operator after label \"a\" at byte 2"),
        ("a == 'x", "unterminated string at byte 5"),
        ("has(a", "no closing ')' after has( at byte 5"),
        ("a in {,}", "expected } at byte 6"),
        ("(a == 'x'", "expected ) at byte 9"),
        ("a == x", "expected string at byte 5"),
        (
            "all() all()",
            "unexpected content at end of selector: all() at byte 6",
        ),
    ];
    for (input, want) in cases {
        assert_eq!(error(input).to_string(), want, "{input:?}");
    }
}

#[test]
fn nesting_is_bounded_instead_of_overflowing_the_stack() {
    let depth = fedmesh_selector::MAX_NESTING;
    let ok = format!("{}has(a){}", "(".repeat(depth), ")".repeat(depth));
    assert_eq!(canonical(&ok), "has(a)");
    // Nested negations and chains at the limit: evaluation, printing and
    // dropping recurse over the tree too.
    let nested = format!(
        "{}has(a){}",
        "!(has(b) || ".repeat(depth),
        ")".repeat(depth)
    );
    let sel = Selector::parse(&nested).unwrap();
    assert!(sel.matches(&labels(&[("a", "1")])) == (depth.is_multiple_of(2)));
    assert!(Selector::parse(sel.canonical()).is_ok());
    drop(sel);
    let over = format!("{}has(a){}", "(".repeat(depth + 1), ")".repeat(depth + 1));
    let err = error(&over);
    assert_eq!(err.kind, ParseErrorKind::NestedTooDeeply);
    assert_eq!(err.offset, depth);
    let huge = "(".repeat(1_000_000);
    assert_eq!(error(&huge).kind, ParseErrorKind::NestedTooDeeply);
}

#[test]
fn long_chains_and_huge_literals_are_fine() {
    let terms: Vec<String> = (0..20_000).map(|i| format!("l{i} != 'v{i}'")).collect();
    let sel = Selector::parse(&terms.join(" && ")).unwrap();
    assert!(sel.matches(&labels(&[])));
    let value = "v".repeat(1 << 20);
    let sel = Selector::parse(&format!("a == '{value}'")).unwrap();
    assert!(sel.matches(&labels(&[("a", &value)])));
}

mod restrictions {
    use super::*;
    use fedmesh_selector::LabelRestriction;

    fn r(present: bool, absent: bool, values: Option<&[&str]>) -> LabelRestriction {
        LabelRestriction {
            must_be_present: present,
            must_be_absent: absent,
            allowed_values: values.map(|v| v.iter().map(|s| s.to_string()).collect()),
        }
    }

    fn restrictions(selector: &str) -> Vec<(String, LabelRestriction)> {
        Selector::parse(selector)
            .unwrap()
            .label_restrictions()
            .iter()
            .map(|(k, v)| (k.to_owned(), v.clone()))
            .collect()
    }

    /// (selector, restrictions, impossible).
    type Row<'a> = (&'a str, &'a [(&'a str, LabelRestriction)], bool);

    fn check(rows: &[Row<'_>]) {
        for (selector, want, impossible) in rows {
            let want: Vec<(String, LabelRestriction)> = want
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect();
            assert_eq!(restrictions(selector), want, "{selector:?}");
            let sel = Selector::parse(selector).unwrap();
            assert_eq!(
                sel.label_restrictions().is_impossible(),
                *impossible,
                "{selector:?} impossible"
            );
        }
    }

    #[test]
    fn leaves() {
        check(&[
            ("a == 'x'", &[("a", r(true, false, Some(&["x"])))], false),
            (
                "a in {'y', 'x'}",
                &[("a", r(true, false, Some(&["x", "y"])))],
                false,
            ),
            ("a in {}", &[("a", r(true, false, Some(&[])))], true),
            ("has(a)", &[("a", r(true, false, None))], false),
            ("a contains 'x'", &[("a", r(true, false, None))], false),
            ("a starts with 'x'", &[("a", r(true, false, None))], false),
            ("a ends with 'x'", &[("a", r(true, false, None))], false),
            ("!has(a)", &[("a", r(false, true, None))], false),
            ("!!has(a)", &[("a", r(true, false, None))], false),
            ("a != 'x'", &[], false),
            ("a not in {'x'}", &[], false),
            ("!a == 'x'", &[], false),
            ("!(!has(a))", &[], false),
            ("all()", &[], false),
            ("global()", &[], false),
            ("!all()", &[], false),
        ]);
    }

    #[test]
    fn and_intersects() {
        check(&[
            (
                "a == 'x' && has(b)",
                &[
                    ("a", r(true, false, Some(&["x"]))),
                    ("b", r(true, false, None)),
                ],
                false,
            ),
            (
                "a == 'x' && a == 'y'",
                &[("a", r(true, false, Some(&[])))],
                true,
            ),
            (
                "a in {'x', 'y', 'z'} && a in {'y', 'z', 'w'}",
                &[("a", r(true, false, Some(&["y", "z"])))],
                false,
            ),
            (
                "has(a) && a in {'x'}",
                &[("a", r(true, false, Some(&["x"])))],
                false,
            ),
            ("has(a) && !has(a)", &[("a", r(true, true, None))], true),
            ("a != 'x' && has(b)", &[("b", r(true, false, None))], false),
        ]);
    }

    #[test]
    fn or_keeps_what_every_branch_requires() {
        check(&[
            (
                "a == 'x' || a == 'y'",
                &[("a", r(true, false, Some(&["x", "y"])))],
                false,
            ),
            ("a == 'x' || has(a)", &[("a", r(true, false, None))], false),
            ("a == 'x' || b == 'y'", &[], false),
            ("a == 'x' || a != 'y'", &[], false),
            ("!has(a) || !has(a)", &[("a", r(false, true, None))], false),
            (
                "!has(a) || (!has(a) && b == 'x')",
                &[("a", r(false, true, None))],
                false,
            ),
            ("!has(a) || has(a)", &[], false),
            (
                "(a == 'x' && b == 'z') || (a in {'y'} && has(c))",
                &[("a", r(true, false, Some(&["x", "y"])))],
                false,
            ),
            // An impossible branch does not make the disjunction impossible.
            ("(a == 'x' && a == 'y') || has(b)", &[], false),
        ]);
    }

    #[test]
    fn non_utf8_values_cannot_be_allowed() {
        let sel = Selector::parse_bytes(b"a in {'\xff', 'x'}").unwrap();
        let restrictions = sel.label_restrictions();
        let got = restrictions.get("a").unwrap();
        assert_eq!(got, &r(true, false, Some(&["x"])));
    }
}

// ---- Section 7: one test per row -------------------------------------------

#[test]
fn s7_empty_sets() {
    check_eval(&[
        ("a in {}", &[("a", "x")], false),
        ("a in {}", &[], false),
        ("a not in {}", &[("a", "x")], true),
        ("a not in {}", &[], true),
    ]);
}

#[test]
fn s7_trailing_comma_in_set() {
    check_canonical(&[("a in {\"x\",}", "a in {\"x\"}")]);
}

#[test]
fn s7_bad_set_literals() {
    check_errors(&[
        ("a in {,}", ParseErrorKind::ExpectedCloseBrace, 6),
        ("a in {\"x\" \"y\"}", ParseErrorKind::ExpectedCloseBrace, 10),
    ]);
}

#[test]
fn s7_short_operator_forms_print_long() {
    check_canonical(&[
        ("a notin {\"x\"}", "a not in {\"x\"}"),
        ("a not\tin {\"x\"}", "a not in {\"x\"}"),
        ("a startswith\"x\"", "a starts with \"x\""),
    ]);
}

#[test]
fn s7_ends_with_with() {
    check_errors(&[("a ends with with \"x\"", expected_operator("a"), 2)]);
}

#[test]
fn s7_tab_is_whitespace() {
    check_canonical(&[("a\t==\t\"x\"", "a == \"x\"")]);
}

#[test]
fn s7_other_whitespace_is_an_error() {
    check_errors(&[
        ("a ==\n\"x\"", ParseErrorKind::ExpectedIdentifier, 4),
        ("\na == \"x\"", ParseErrorKind::ExpectedIdentifier, 0),
        ("a == \"x\"\r", ParseErrorKind::ExpectedIdentifier, 8),
    ]);
}

#[test]
fn s7_spaces_inside_has_and_all() {
    check_canonical(&[
        ("has( a )", "has(a)"),
        ("has(\ta\t)", "has(a)"),
        ("all( )", "all()"),
    ]);
}

#[test]
fn s7_space_before_parenthesis_and_juxtaposition() {
    check_errors(&[
        (
            "has (a)",
            ParseErrorKind::ExpectedComparison { found: "'('" },
            4,
        ),
        (
            "all ()",
            ParseErrorKind::ExpectedComparison { found: "'('" },
            4,
        ),
        (
            "global ( )",
            ParseErrorKind::ExpectedComparison { found: "'('" },
            7,
        ),
        ("has(a)has(b)", unexpected_end_content("has()"), 6),
    ]);
}

#[test]
fn s7_keywords_as_labels() {
    check_canonical(&[
        ("in == \"x\"", "in == \"x\""),
        ("not in {\"x\"}", "not in {\"x\"}"),
        ("has == \"x\"", "has == \"x\""),
        ("global == \"x\"", "global == \"x\""),
    ]);
}

#[test]
fn s7_unusual_labels() {
    for label in ["-a", "9", "/", ".../..."] {
        let input = format!("{label} == \"x\"");
        assert_eq!(canonical(&input), input);
        assert!(eval(&input, &[(label, "x")]));
    }
}

#[test]
fn s7_invalid_label_bytes() {
    check_errors(&[
        ("a:b == \"x\"", expected_operator("a"), 1),
        ("a@b == \"x\"", expected_operator("a"), 1),
        ("ü == \"x\"", ParseErrorKind::ExpectedIdentifier, 0),
        (
            "has(a:b)",
            ParseErrorKind::NoClosingParen {
                keyword: Keyword::Has,
            },
            5,
        ),
    ]);
}

#[test]
fn s7_raw_bytes_in_strings() {
    check_canonical(&[
        ("a == \"ü\"", "a == \"ü\""),
        ("a == \"line\nbreak\"", "a == \"line\nbreak\""),
        ("a == \"\\\"", "a == \"\\\""),
    ]);
    check_eval(&[("a == \"line\nbreak\"", &[("a", "line\nbreak")], true)]);
}

#[test]
fn s7_no_escaped_quote() {
    check_errors(&[("a == \"x\\\"\"", ParseErrorKind::UnterminatedString, 9)]);
}

#[test]
fn s7_double_not_quirk() {
    for input in ["!(!a == \"x\")", "!(!(a == \"x\"))"] {
        let first = Selector::parse(input).unwrap();
        assert_eq!(first.canonical(), "!!a == \"x\"");
        let second = Selector::parse(first.canonical()).unwrap();
        assert_eq!(second.canonical(), "a == \"x\"");
        assert_ne!(first.unique_id(), second.unique_id());
        for pairs in [&[("a", "x")][..], &[("a", "y")], &[]] {
            assert_eq!(
                first.matches(&labels(pairs)),
                second.matches(&labels(pairs))
            );
        }
    }
}

#[test]
fn s7_malformed_comparisons() {
    check_errors(&[
        ("a == \"x\" == \"y\"", unexpected_end_content("'=='"), 9),
        ("a == b", ParseErrorKind::ExpectedString, 5),
        ("a ! = \"x\"", ParseErrorKind::ExpectedEquals, 4),
        ("a !== \"x\"", ParseErrorKind::ExpectedEquals, 4),
    ]);
}

#[test]
fn s7_label_length_limit() {
    let max = "k".repeat(512);
    let over = "k".repeat(513);
    assert!(Selector::parse(&format!("{max} == \"x\"")).is_ok());
    assert!(Selector::parse(&format!("has({max})")).is_ok());
    assert_eq!(
        error(&format!("{over} == \"x\"")).kind,
        ParseErrorKind::LabelTooLong { len: 513 }
    );
    assert_eq!(
        error(&format!("has({over})")).kind,
        ParseErrorKind::LabelTooLong { len: 513 }
    );
}

#[test]
fn s7_empty_needles_match_any_present_value() {
    check_eval(&[
        ("a contains \"\"", &[("a", "x")], true),
        ("a contains \"\"", &[("a", "")], true),
        ("a contains \"\"", &[], false),
        ("a starts with \"\"", &[("a", "x")], true),
        ("a starts with \"\"", &[("a", "")], true),
        ("a starts with \"\"", &[], false),
    ]);
}

#[test]
fn s7_equals_empty_string() {
    check_eval(&[
        ("a == \"\"", &[("a", "")], true),
        ("a == \"\"", &[("a", "x")], false),
        ("a == \"\"", &[], false),
    ]);
}

#[test]
fn s7_negated_all_and_global() {
    check_canonical(&[("!global()", "!global()"), ("!all()", "!all()")]);
    check_eval(&[("!global()", &[], false), ("!all()", &[("a", "x")], false)]);
}
