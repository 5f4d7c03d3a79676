//! Feeds arbitrary bytes to the selector parser. It must never panic; on
//! success the canonical bytes must re-parse, and the result must be stable
//! from then on (the first re-parse may differ only by the documented `!!`
//! collapse) and match the same empty label set.
#![no_main]

use std::collections::BTreeMap;

use fedmesh_selector::Selector;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    let sel = match Selector::parse_bytes(input) {
        Ok(sel) => sel,
        Err(err) => {
            assert!(err.offset <= input.len(), "{err} beyond the input");
            let _ = err.to_string();
            return;
        }
    };
    let again = Selector::parse_bytes(sel.canonical_bytes()).expect("canonical form re-parses");
    let third = Selector::parse_bytes(again.canonical_bytes()).expect("second re-parse");
    assert_eq!(third.canonical_bytes(), again.canonical_bytes());
    if !sel.canonical_bytes().windows(2).any(|w| w == b"!!") {
        assert_eq!(sel.canonical_bytes(), again.canonical_bytes());
        assert_eq!(sel.unique_id(), again.unique_id());
    }
    let empty = BTreeMap::<String, String>::new();
    assert_eq!(sel.matches(&empty), again.matches(&empty));
    let _ = sel.label_restrictions();
});
