//! Every case of the shared benchmark file: Calico's canonical string, its
//! UniqueID and its match result against each label map.

use std::collections::HashMap;

use fedmesh_selector::{InternedLabels, Selector};
use serde::Deserialize;

const CASES: &str = include_str!("data/selector-cases.json");

#[derive(Deserialize)]
struct Cases {
    selectors: Vec<Case>,
    label_maps: Vec<LabelMap>,
}

#[derive(Deserialize)]
struct Case {
    name: String,
    selector: String,
    calico_string: String,
    calico_unique_id: String,
    expected: HashMap<String, bool>,
}

#[derive(Deserialize)]
struct LabelMap {
    name: String,
    labels: HashMap<String, String>,
}

fn cases() -> Cases {
    serde_json::from_str(CASES).expect("selector-cases.json parses")
}

#[test]
fn canonical_strings_and_unique_ids_match_calico() {
    let cases = cases();
    assert_eq!(cases.selectors.len(), 14);
    for case in &cases.selectors {
        let sel = Selector::parse(&case.selector)
            .unwrap_or_else(|e| panic!("{}: {:?} failed: {e}", case.name, case.selector));
        assert_eq!(sel.canonical(), case.calico_string, "{}", case.name);
        assert_eq!(sel.unique_id(), case.calico_unique_id, "{}", case.name);
        // The canonical form of these selectors is a fixed point.
        let again = Selector::parse(sel.canonical()).unwrap();
        assert_eq!(again.unique_id(), case.calico_unique_id, "{}", case.name);
    }
}

#[test]
fn match_results_agree_with_calico_on_every_path() {
    let cases = cases();
    assert_eq!(cases.label_maps.len(), 3);
    let interned: Vec<(String, InternedLabels)> = cases
        .label_maps
        .iter()
        .map(|m| (m.name.clone(), InternedLabels::new(&m.labels)))
        .collect();
    let mut checked = 0;
    for case in &cases.selectors {
        let sel = Selector::parse(&case.selector).unwrap();
        for (map, (name, fast)) in cases.label_maps.iter().zip(&interned) {
            let want = case.expected[name];
            assert_eq!(sel.matches(&map.labels), want, "{} on {name}", case.name);
            assert_eq!(
                sel.matches_interned(fast),
                want,
                "{} on {name} (interned)",
                case.name
            );
            checked += 1;
        }
    }
    assert_eq!(checked, 42);
}
