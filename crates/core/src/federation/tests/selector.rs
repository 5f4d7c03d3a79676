use std::collections::BTreeMap;

use super::super::*;

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[test]
fn operators_follow_kubernetes_label_selectors() {
    let prod = labels(&[("environment", "prod"), ("tier", "3")]);
    let dev = labels(&[("environment", "dev")]);
    let bare = labels(&[]);
    // (annotation, matches prod, dev, bare)
    let cases = [
        (
            r#"[{"key":"environment","operator":"In","values":["prod","staging"]}]"#,
            [true, false, false],
        ),
        (
            r#"[{"key":"environment","operator":"in","values":["prod"]}]"#,
            [true, false, false],
        ),
        (
            r#"[{"key":"environment","operator":"NotIn","values":["prod"]}]"#,
            [false, true, true],
        ),
        (
            r#"[{"key":"environment","operator":"notin","values":["dev"]}]"#,
            [true, false, true],
        ),
        (
            r#"[{"key":"environment","operator":"Exists"}]"#,
            [true, true, false],
        ),
        (
            r#"[{"key":"environment","operator":"DoesNotExist"}]"#,
            [false, false, true],
        ),
        (
            r#"[{"key":"environment","operator":"!"}]"#,
            [false, false, true],
        ),
        (
            r#"[{"key":"tier","operator":"Gt","values":["2"]}]"#,
            [true, false, false],
        ),
        (
            r#"[{"key":"tier","operator":"Gt","values":["3"]}]"#,
            [false, false, false],
        ),
        (
            r#"[{"key":"tier","operator":"Lt","values":["4"]}]"#,
            [true, false, false],
        ),
        (
            r#"[{"key":"environment","operator":"Lt","values":["4"]}]"#,
            [false, false, false],
        ),
        (
            r#"[{"key":"environment","operator":"=","values":["dev"]}]"#,
            [false, true, false],
        ),
        (
            r#"[{"key":"environment","operator":"!=","values":["dev"]}]"#,
            [true, false, true],
        ),
        // Every requirement must hold.
        (
            r#"[{"key":"environment","operator":"Exists"},{"key":"tier","operator":"DoesNotExist"}]"#,
            [false, true, false],
        ),
        ("[]", [true, true, true]),
        ("  ", [true, true, true]),
    ];
    for (annotation, expected) in cases {
        let selector = ClusterSelector::parse(annotation).unwrap();
        let got = [&prod, &dev, &bare].map(|l| selector.matches(l));
        assert_eq!(got, expected, "{annotation}");
    }
}

#[test]
fn malformed_selectors_say_what_is_wrong() {
    let cases = [
        (
            "{\"key\":\"a\"}",
            "not a JSON list of {\"key\", \"operator\", \"values\"} requirements",
        ),
        (
            "[{\"key\":\"a\",\"operator\":\"In\",\"values\":\"prod\"}]",
            "not a JSON list",
        ),
        (
            "[{\"key\":\"a\",\"operator\":\"In\",\"value\":[\"x\"]}]",
            "unknown field `value`",
        ),
        (
            "[{\"operator\":\"Exists\"}]",
            "requirement 1: key \"\" is not a label key",
        ),
        (
            "[{\"key\":\"a b\",\"operator\":\"Exists\"}]",
            "requirement 1: key \"a b\"",
        ),
        (
            "[{\"key\":\"a\",\"operator\":\"Exists\"},{\"key\":\"b\",\"operator\":\"Between\",\"values\":[\"1\"]}]",
            "requirement 2: operator \"Between\" is not one of In, NotIn, Exists, DoesNotExist, Gt, Lt",
        ),
        (
            "[{\"key\":\"a\",\"operator\":\"In\",\"values\":[]}]",
            "requirement 1 (In): needs at least one value",
        ),
        (
            "[{\"key\":\"a\",\"operator\":\"Exists\",\"values\":[\"x\"]}]",
            "requirement 1 (Exists): takes no values",
        ),
        (
            "[{\"key\":\"a\",\"operator\":\"Gt\",\"values\":[\"x\"]}]",
            "requirement 1 (Gt): needs exactly one value, an integer",
        ),
        (
            "[{\"key\":\"a\",\"operator\":\"Lt\",\"values\":[\"1\",\"2\"]}]",
            "requirement 1 (Lt): needs exactly one value",
        ),
        (
            "[{\"key\":\"a\",\"operator\":\"=\",\"values\":[\"1\",\"2\"]}]",
            "requirement 1 (=): needs exactly one value",
        ),
    ];
    for (annotation, expected) in cases {
        let error = ClusterSelector::parse(annotation).unwrap_err().to_string();
        assert!(
            error.starts_with(CLUSTER_SELECTOR_ANNOTATION),
            "{error} names the annotation"
        );
        assert!(
            error.contains(expected),
            "{error:?} should contain {expected:?}"
        );
    }
}

#[test]
fn prefixed_keys_and_the_annotation_on_an_object() {
    let selector = ClusterSelector::parse(
        r#"[{"key":"topology.example.com/continent","operator":"In","values":["europe"]}]"#,
    )
    .unwrap();
    assert!(selector.matches(&labels(&[("topology.example.com/continent", "europe")])));
    assert_eq!(ClusterSelector::of(None), Ok(ClusterSelector::default()));
    let annotations = labels(&[(CLUSTER_SELECTOR_ANNOTATION, "not json")]);
    assert!(ClusterSelector::of(Some(&annotations)).is_err());
}
