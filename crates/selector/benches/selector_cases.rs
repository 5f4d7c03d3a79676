//! The 14 shared selector cases (`selector-cases.json`, copied from
//! `shared/bench/`): parse and interned-label evaluation, against the figures
//! Calico's Go implementation gave on the same kind of 2-core machine.
//!
//! Before anything is timed, every case is checked against the file: canonical
//! string, UniqueID, the expected match result for each label map (plain and
//! interned), and zero heap allocations per interned evaluation. A failed check
//! panics, so `cargo bench -- --test` and `cargo test --benches` are real tests.
//!
//! After a full run (`cargo bench -p fedmesh-selector --bench selector_cases`) a
//! Markdown table compares criterion's medians with the targets:
//! parse (including canonical string and UniqueID) at most half of Calico's
//! `parse_ns`, evaluation on interned labels at most Calico's `eval_handles_ns`.

// The only unsafe code is the counting allocator: `GlobalAlloc` is an unsafe trait,
// and counting allocations is how the bench proves evaluation never allocates.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::BTreeMap;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use criterion::{BenchmarkId, Criterion};
use fedmesh_selector::{InternedLabels, Selector};
use serde::Deserialize;

/// Counts every allocation and reallocation made through the global allocator.
struct CountingAllocator;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: every method forwards to `System` with the caller's arguments unchanged,
// so `System`'s guarantees hold; the counter has no effect on the memory returned.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: forwarded unchanged; the caller upholds `alloc`'s contract.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: forwarded unchanged; the caller upholds `alloc_zeroed`'s contract.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: forwarded unchanged; the caller upholds `realloc`'s contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged; the caller upholds `dealloc`'s contract.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

/// Allocations made by `f` (the bench is single-threaded, so all of them are its own).
fn allocations_during<T>(f: impl FnOnce() -> T) -> (u64, T) {
    let before = ALLOCATIONS.load(Ordering::SeqCst);
    let result = f();
    (ALLOCATIONS.load(Ordering::SeqCst) - before, result)
}

const CASES_JSON: &str = include_str!("selector-cases.json");
const CASE_COUNT: usize = 14;
const LABEL_MAPS: [&str; 3] = ["labels_5", "labels_20", "labels_50"];
/// Evaluations per allocation check: enough to catch an allocation that happens
/// only sometimes (a growing cache, say).
const EVALS_PER_ALLOCATION_CHECK: u64 = 10_000;

#[derive(Debug, Deserialize)]
struct Cases {
    selectors: Vec<Case>,
    label_maps: Vec<LabelMap>,
}

#[derive(Debug, Deserialize)]
struct Case {
    name: String,
    selector: String,
    calico_string: String,
    calico_unique_id: String,
    expected: BTreeMap<String, bool>,
    calico_go119_baseline: Baseline,
}

#[derive(Debug, Deserialize)]
struct Baseline {
    parse_ns: f64,
    eval_handles_ns: BTreeMap<String, f64>,
}

#[derive(Debug, Deserialize)]
struct LabelMap {
    name: String,
    labels: BTreeMap<String, String>,
}

/// A case, parsed and checked, with its label maps interned.
struct Prepared<'a> {
    case: &'a Case,
    selector: Selector,
    allocations_per_parse: u64,
    allocations_per_eval: BTreeMap<&'static str, u64>,
}

fn load_cases() -> Cases {
    let cases: Cases = serde_json::from_str(CASES_JSON).expect("selector-cases.json is valid");
    assert_eq!(
        cases.selectors.len(),
        CASE_COUNT,
        "the shared file has 14 cases"
    );
    let names: Vec<&str> = cases.label_maps.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(
        names, LABEL_MAPS,
        "the shared file has these three label maps"
    );
    cases
}

fn intern(map: &LabelMap) -> InternedLabels {
    InternedLabels::new(map.labels.iter().map(|(k, v)| (k.as_str(), v.as_str())))
}

/// Checks one case against the file and counts its allocations; panics on a mismatch.
fn prepare<'a>(case: &'a Case, maps: &[(&'static str, &LabelMap, InternedLabels)]) -> Prepared<'a> {
    let (allocations_per_parse, parsed) = allocations_during(|| Selector::parse(&case.selector));
    let selector = parsed.unwrap_or_else(|err| panic!("{}: parse failed: {err}", case.name));
    assert_eq!(
        selector.canonical(),
        case.calico_string,
        "{}: canonical string",
        case.name
    );
    assert_eq!(
        selector.unique_id(),
        case.calico_unique_id,
        "{}: UniqueID",
        case.name
    );
    let mut allocations_per_eval = BTreeMap::new();
    for (name, map, interned) in maps {
        let expected = case.expected[*name];
        assert_eq!(
            selector.matches(&map.labels),
            expected,
            "{} on {name} (plain)",
            case.name
        );
        assert_eq!(
            selector.matches_interned(interned),
            expected,
            "{} on {name} (interned)",
            case.name
        );
        let (allocations, ()) = allocations_during(|| {
            for _ in 0..EVALS_PER_ALLOCATION_CHECK {
                black_box(black_box(&selector).matches_interned(black_box(interned)));
            }
        });
        assert_eq!(
            allocations, 0,
            "{} on {name}: evaluation allocated",
            case.name
        );
        allocations_per_eval.insert(*name, allocations / EVALS_PER_ALLOCATION_CHECK);
    }
    Prepared {
        case,
        selector,
        allocations_per_parse,
        allocations_per_eval,
    }
}

fn bench(
    c: &mut Criterion,
    prepared: &[Prepared<'_>],
    maps: &[(&'static str, &LabelMap, InternedLabels)],
) {
    let mut parse = c.benchmark_group("parse");
    for p in prepared {
        let input = p.case.selector.as_str();
        parse.bench_function(&p.case.name, |b| {
            b.iter(|| Selector::parse(black_box(input)))
        });
    }
    parse.finish();

    let mut eval = c.benchmark_group("eval");
    for p in prepared {
        for (name, _, interned) in maps {
            let selector = &p.selector;
            eval.bench_with_input(
                BenchmarkId::new(&p.case.name, name),
                interned,
                |b, labels| {
                    b.iter(|| black_box(selector).matches_interned(black_box(labels)));
                },
            );
        }
    }
    eval.finish();
}

/// Where criterion writes its results, found the way criterion finds it.
fn criterion_home() -> Option<PathBuf> {
    if let Some(home) = std::env::var_os("CRITERION_HOME") {
        return Some(PathBuf::from(home));
    }
    if let Some(target) = std::env::var_os("CARGO_TARGET_DIR") {
        return Some(PathBuf::from(target).join("criterion"));
    }
    // The bench binary is <target>/<profile>/deps/<name>.
    let exe = std::env::current_exe().ok()?;
    Some(exe.ancestors().nth(3)?.join("criterion"))
}

#[derive(Deserialize)]
struct Estimates {
    median: Estimate,
}

#[derive(Deserialize)]
struct Estimate {
    point_estimate: f64,
}

#[derive(Deserialize)]
struct Samples {
    iters: Vec<f64>,
    times: Vec<f64>,
}

/// What this run measured for one benchmark, in ns per iteration.
struct Measured {
    /// Criterion's median: the figure compared with the target.
    median: f64,
    /// The fastest sample: on a busy machine, the one least disturbed by other
    /// processes, which shows how much of the median is contention.
    best: f64,
}

/// Reads one of criterion's result files for `id`, if this run wrote it.
fn read_fresh<T: serde::de::DeserializeOwned>(
    home: &Path,
    id: &[&str],
    file: &str,
    started: SystemTime,
) -> Option<T> {
    let mut path = home.to_path_buf();
    path.extend(id);
    path.extend(["new", file]);
    let fresh = std::fs::metadata(&path).ok()?.modified().ok()? >= started;
    let value = serde_json::from_str(&std::fs::read_to_string(&path).ok()?).ok()?;
    fresh.then_some(value)
}

fn measured(home: &Path, id: &[&str], started: SystemTime) -> Option<Measured> {
    let estimates: Estimates = read_fresh(home, id, "estimates.json", started)?;
    let samples: Samples = read_fresh(home, id, "sample.json", started)?;
    let best = samples
        .times
        .iter()
        .zip(&samples.iters)
        .map(|(time, iters)| time / iters)
        .fold(f64::INFINITY, f64::min);
    Some(Measured {
        median: estimates.median.point_estimate,
        best,
    })
}

/// The table cells for one measurement against Calico's figure and our target:
/// median, best sample, median / Calico, target met.
fn cells(result: Option<&Measured>, calico: f64, target: f64) -> String {
    match result {
        Some(m) => format!(
            "{:.1} | {:.1} | {:.2} | {}",
            m.median,
            m.best,
            m.median / calico,
            if m.median <= target { "yes" } else { "**NO**" }
        ),
        None => "not run | - | - | ?".to_owned(),
    }
}

/// The 1-minute load average: on a 2-core machine anything near or above 1 means
/// another process competed for the cores and the medians are inflated.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|text| text.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "unknown".to_owned())
}

fn print_tables(prepared: &[Prepared<'_>], started: SystemTime, load_at_start: &str) {
    let Some(home) = criterion_home() else {
        println!("criterion's output directory is unknown; no table");
        return;
    };
    println!();
    println!(
        "1-minute load average: {load_at_start} at the start, {} at the end.",
        load_average()
    );
    println!();
    println!(
        "Parse (incl. canonical string and UniqueID); target: median at most Calico's parse_ns / 2"
    );
    println!();
    println!(
        "| case | ours, median (ns) | ours, best sample (ns) | median / Calico | target met | Calico parse_ns | target (ns) | allocs / parse |"
    );
    println!("|---|---:|---:|---:|:---:|---:|---:|---:|");
    for p in prepared {
        let calico = p.case.calico_go119_baseline.parse_ns;
        let result = measured(&home, &["parse", &p.case.name], started);
        println!(
            "| {} | {} | {calico:.1} | {:.1} | {} |",
            p.case.name,
            cells(result.as_ref(), calico, calico / 2.0),
            calico / 2.0,
            p.allocations_per_parse,
        );
    }
    println!();
    println!(
        "Evaluation on interned labels; target: median at most Calico's eval_handles_ns, 0 allocations"
    );
    println!();
    println!(
        "| case | labels | ours, median (ns) | ours, best sample (ns) | median / Calico | target met | Calico eval_handles_ns | allocs / eval |"
    );
    println!("|---|---|---:|---:|---:|:---:|---:|---:|");
    for p in prepared {
        for name in LABEL_MAPS {
            let calico = p.case.calico_go119_baseline.eval_handles_ns[name];
            let result = measured(&home, &["eval", &p.case.name, name], started);
            println!(
                "| {} | {name} | {} | {calico:.1} | {} |",
                p.case.name,
                cells(result.as_ref(), calico, calico),
                p.allocations_per_eval[name],
            );
        }
    }
}

fn main() {
    let started = SystemTime::now();
    let load_at_start = load_average();
    let cases = load_cases();
    let maps: Vec<(&'static str, &LabelMap, InternedLabels)> = LABEL_MAPS
        .iter()
        .zip(&cases.label_maps)
        .map(|(name, map)| (*name, map, intern(map)))
        .collect();
    let prepared: Vec<Prepared<'_>> = cases
        .selectors
        .iter()
        .map(|case| prepare(case, &maps))
        .collect();

    // 56 benchmarks at ~2 s each keep a full run near two minutes on 2 cores.
    let mut criterion = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_millis(1500))
        .sample_size(50)
        .configure_from_args();
    bench(&mut criterion, &prepared, &maps);
    criterion.final_summary();

    // Mirror criterion's own rule: `--bench` without `--test` is a measuring run.
    let args: Vec<String> = std::env::args().collect();
    let measuring = args.iter().any(|a| a == "--bench")
        && !args
            .iter()
            .any(|a| a == "--test" || a == "--list" || a == "--profile-time");
    if measuring {
        print_tables(&prepared, started, &load_at_start);
    }
}
