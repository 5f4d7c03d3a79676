//! Label selector matching for ClusterRole aggregation rules.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

/// Whether `selector` selects an object with `labels`. An empty selector selects everything;
/// a selector with an unknown operator selects nothing (kube-apiserver rejects it).
pub fn selects(selector: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    let labels_match = selector
        .match_labels
        .iter()
        .flatten()
        .all(|(k, v)| labels.get(k) == Some(v));
    labels_match
        && selector.match_expressions.iter().flatten().all(|expr| {
            let value = labels.get(&expr.key);
            let values = expr.values.as_deref().unwrap_or_default();
            match expr.operator.as_str() {
                "In" => value.is_some_and(|v| values.contains(v)),
                "NotIn" => value.is_none_or(|v| !values.contains(v)),
                "Exists" => value.is_some(),
                "DoesNotExist" => value.is_none(),
                _ => false,
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn expr(key: &str, op: &str, values: &[&str]) -> LabelSelectorRequirement {
        LabelSelectorRequirement {
            key: key.to_owned(),
            operator: op.to_owned(),
            values: Some(values.iter().map(|v| (*v).to_owned()).collect()),
        }
    }

    #[test]
    fn selector_operators() {
        let l = labels(&[("a", "1"), ("b", "2")]);
        let sel = |exprs: Vec<LabelSelectorRequirement>| LabelSelector {
            match_expressions: Some(exprs),
            match_labels: None,
        };
        assert!(selects(&LabelSelector::default(), &l));
        assert!(selects(
            &LabelSelector {
                match_labels: Some(labels(&[("a", "1")])),
                match_expressions: None
            },
            &l
        ));
        assert!(!selects(
            &LabelSelector {
                match_labels: Some(labels(&[("a", "2")])),
                match_expressions: None
            },
            &l
        ));
        assert!(selects(&sel(vec![expr("a", "In", &["1", "3"])]), &l));
        assert!(!selects(&sel(vec![expr("c", "In", &["1"])]), &l));
        assert!(selects(&sel(vec![expr("c", "NotIn", &["1"])]), &l));
        assert!(!selects(&sel(vec![expr("a", "NotIn", &["1"])]), &l));
        assert!(selects(&sel(vec![expr("b", "Exists", &[])]), &l));
        assert!(selects(&sel(vec![expr("c", "DoesNotExist", &[])]), &l));
        assert!(!selects(&sel(vec![expr("a", "Bogus", &[])]), &l));
    }
}
