//! Evaluation allocates nothing: a counting global allocator watches every
//! benchmark selector evaluated against every benchmark label map.

// A global allocator must be an `unsafe impl`; it only forwards to `System`
// and counts, per thread, so other test threads do not interfere.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::collections::HashMap;

use fedmesh_selector::{InternedLabels, Selector};
use serde::Deserialize;

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: every method forwards to `System` with the caller's arguments; the
// counter is a const-initialised thread-local `Cell`, which never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|c| c.set(c.get() + 1));
        // SAFETY: forwarded unchanged.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.with(|c| c.set(c.get() + 1));
        // SAFETY: forwarded unchanged.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations() -> usize {
    ALLOCATIONS.with(Cell::get)
}

#[derive(Deserialize)]
struct Cases {
    selectors: Vec<Case>,
    label_maps: Vec<LabelMap>,
}

#[derive(Deserialize)]
struct Case {
    selector: String,
}

#[derive(Deserialize)]
struct LabelMap {
    labels: HashMap<String, String>,
}

#[test]
fn evaluation_never_allocates() {
    let cases: Cases = serde_json::from_str(include_str!("data/selector-cases.json")).unwrap();
    let mut selectors: Vec<Selector> = cases
        .selectors
        .iter()
        .map(|c| Selector::parse(&c.selector).unwrap())
        .collect();
    // Sets past the linear-scan size and string operators on both paths.
    selectors.push(
        Selector::parse(
            "a in {'1','2','3','4','5','6','7','8','9','10','11'} || b contains 'x' || !has(c)",
        )
        .unwrap(),
    );
    let interned: Vec<InternedLabels> = cases
        .label_maps
        .iter()
        .map(|m| InternedLabels::new(&m.labels))
        .collect();
    let before = allocations();
    let mut matched = 0usize;
    for _ in 0..100 {
        for sel in &selectors {
            for (map, fast) in cases.label_maps.iter().zip(&interned) {
                matched += usize::from(sel.matches_interned(fast));
                matched += usize::from(sel.matches(&map.labels));
            }
        }
    }
    let after = allocations();
    assert!(matched > 0);
    assert_eq!(after - before, 0, "allocations during evaluation");
    // The counter works: parsing does allocate.
    drop(Selector::parse("a == 'b'").unwrap());
    assert!(allocations() > after);
}
