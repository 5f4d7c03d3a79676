//! One battery of store behaviours, run against every backend (memory and SQLite).

use std::collections::BTreeSet;
use std::time::Duration;

use bytes::Bytes;
use fedmesh_apiserver::store::{Error, Event, KeyValue, ListRequest, Store, StoreOptions, Watch};
use tempfile::TempDir;

/// A store and whatever must live as long as it.
struct Harness {
    store: Store,
    _dir: Option<TempDir>,
}

type Open = fn(StoreOptions) -> Harness;

fn memory(options: StoreOptions) -> Harness {
    Harness {
        store: Store::in_memory(options).unwrap(),
        _dir: None,
    }
}

fn sqlite(options: StoreOptions) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_sqlite(&dir.path().join("store.db"), options).unwrap();
    Harness {
        store,
        _dir: Some(dir),
    }
}

const WAIT: Duration = Duration::from_secs(10);

fn val(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

async fn next_event(watch: &mut Watch) -> Event {
    tokio::time::timeout(WAIT, watch.next())
        .await
        .expect("no event within the timeout")
        .expect("watch ended")
        .expect("watch failed")
}

/// Asserts that no event arrives within a short while.
async fn assert_quiet(watch: &mut Watch) {
    if let Ok(item) = tokio::time::timeout(Duration::from_millis(100), watch.next()).await {
        panic!("unexpected watch item {item:?}");
    }
}

fn keys(items: &[KeyValue]) -> Vec<&str> {
    items.iter().map(|kv| kv.key.as_str()).collect()
}

macro_rules! battery {
    ($backend:ident: $($case:ident),* $(,)?) => {
        mod $backend {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::$case(super::$backend).await;
                }
            )*
        }
    };
}

macro_rules! batteries {
    ($($case:ident),* $(,)?) => {
        battery!(memory: $($case),*);
        battery!(sqlite: $($case),*);
    };
}

batteries!(
    create_get_update_delete,
    preconditions_fail_with_the_right_error,
    recreate_after_delete_starts_a_new_incarnation,
    empty_key_is_rejected,
    list_pages_in_key_order_with_remaining_counts,
    list_at_an_older_revision_sees_that_state,
    list_outside_the_kept_revisions_fails,
    watch_replays_history_then_follows_live_writes,
    watch_has_no_gap_or_duplicate_while_writes_race,
    watch_after_compaction_is_compacted,
    prefixes_are_isolated,
    concurrent_writers_get_unique_contiguous_revisions,
    slow_watcher_does_not_block_writers_or_other_watchers,
    compaction_keeps_current_state_and_recent_history,
    watch_progress_reports_what_was_delivered,
    background_compactor_follows_the_revision_window,
);

async fn create_get_update_delete(open: Open) {
    let h = open(StoreOptions::default());
    let s = &h.store;
    assert_eq!(s.current_revision(), 0);
    assert_eq!(s.get("/a").await.unwrap(), None);

    let created = s.create("/a", val("one")).await.unwrap();
    assert_eq!(
        created,
        KeyValue {
            key: "/a".into(),
            value: val("one"),
            create_revision: 1,
            mod_revision: 1,
        }
    );
    assert_eq!(s.current_revision(), 1);
    assert_eq!(s.get("/a").await.unwrap(), Some(created.clone()));

    let updated = s.update("/a", val("two"), 1).await.unwrap();
    assert_eq!(updated.create_revision, 1);
    assert_eq!(updated.mod_revision, 2);
    assert_eq!(s.get("/a").await.unwrap().unwrap().value, val("two"));

    let deleted = s.delete("/a", Some(2)).await.unwrap();
    assert_eq!(deleted.value, val("two"));
    assert_eq!(deleted.create_revision, 1);
    assert_eq!(deleted.mod_revision, 3);
    assert_eq!(s.get("/a").await.unwrap(), None);
    assert_eq!(s.current_revision(), 3);
}

async fn preconditions_fail_with_the_right_error(open: Open) {
    let h = open(StoreOptions::default());
    let s = &h.store;
    let a = s.create("/a", val("1")).await.unwrap();
    assert!(matches!(
        s.create("/a", val("again")).await,
        Err(Error::AlreadyExists { key }) if key == "/a"
    ));
    let a2 = s.update("/a", val("2"), a.mod_revision).await.unwrap();
    match s.update("/a", val("stale"), a.mod_revision).await {
        Err(Error::Conflict {
            key,
            expected,
            current,
        }) => {
            assert_eq!(key, "/a");
            assert_eq!(expected, a.mod_revision);
            assert_eq!(current, a2.mod_revision);
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert!(matches!(
        s.delete("/a", Some(a.mod_revision)).await,
        Err(Error::Conflict { current, .. }) if current == a2.mod_revision
    ));
    assert!(matches!(
        s.update("/missing", val("x"), 1).await,
        Err(Error::NotFound { key }) if key == "/missing"
    ));
    assert!(matches!(
        s.delete("/missing", None).await,
        Err(Error::NotFound { .. })
    ));
    // Failed writes take no revision and leave the value alone.
    assert_eq!(s.current_revision(), a2.mod_revision);
    assert_eq!(s.get("/a").await.unwrap().unwrap().value, val("2"));
    // An unconditional delete succeeds.
    assert_eq!(s.delete("/a", None).await.unwrap().mod_revision, 3);
}

async fn recreate_after_delete_starts_a_new_incarnation(open: Open) {
    let h = open(StoreOptions::default());
    let s = &h.store;
    s.create("/k", val("first")).await.unwrap();
    s.delete("/k", None).await.unwrap();
    let again = s.create("/k", val("second")).await.unwrap();
    assert_eq!(again.create_revision, 3);
    assert_eq!(again.mod_revision, 3);
    s.delete("/k", Some(3)).await.unwrap();
    let third = s.create("/k", val("third")).await.unwrap();
    assert_eq!(third.create_revision, 5);
    let mut w = s.watch("/k", 0).unwrap();
    let revs: Vec<_> = [
        next_event(&mut w).await,
        next_event(&mut w).await,
        next_event(&mut w).await,
        next_event(&mut w).await,
        next_event(&mut w).await,
    ]
    .iter()
    .map(|e| (e.revision(), matches!(e, Event::Put { prev: None, .. })))
    .collect();
    assert_eq!(
        revs,
        vec![(1, true), (2, false), (3, true), (4, false), (5, true)]
    );
}

async fn empty_key_is_rejected(open: Open) {
    let h = open(StoreOptions::default());
    assert!(matches!(
        h.store.create("", val("x")).await,
        Err(Error::InvalidKey { .. })
    ));
    assert_eq!(h.store.current_revision(), 0);
}

async fn list_pages_in_key_order_with_remaining_counts(open: Open) {
    let h = open(StoreOptions::default());
    let s = &h.store;
    // Created out of order: lists must come back sorted by key.
    for i in (0..25).rev() {
        s.create(&format!("/registry/pods/ns/p{i:02}"), val(&i.to_string()))
            .await
            .unwrap();
    }
    s.create("/registry/services/ns/svc", val("s"))
        .await
        .unwrap();

    let all = s
        .list(ListRequest::prefix("/registry/pods/"))
        .await
        .unwrap();
    assert_eq!(all.items.len(), 25);
    assert_eq!(all.revision, 26);
    assert!(!all.more);
    assert_eq!(all.remaining, 0);
    let expected: Vec<String> = (0..25)
        .map(|i| format!("/registry/pods/ns/p{i:02}"))
        .collect();
    assert_eq!(keys(&all.items), expected);
    assert_eq!(all.items[3].value, val("3"));

    let mut seen = Vec::new();
    let mut req = ListRequest::prefix("/registry/pods/").limit(10);
    let mut remaining = Vec::new();
    loop {
        let page = s.list(req.clone()).await.unwrap();
        assert_eq!(page.revision, 26);
        seen.extend(page.items.iter().map(|kv| kv.key.clone()));
        remaining.push((page.more, page.remaining));
        if !page.more {
            break;
        }
        req = req
            .start_after(page.items.last().unwrap().key.clone())
            .at(page.revision);
    }
    assert_eq!(seen, expected);
    assert_eq!(remaining, vec![(true, 15), (true, 5), (false, 0)]);

    // A page that ends exactly at the last key says no more remain.
    let exact = s
        .list(ListRequest::prefix("/registry/pods/").limit(25))
        .await
        .unwrap();
    assert_eq!(
        (exact.items.len(), exact.more, exact.remaining),
        (25, false, 0)
    );
    // A start_after beyond the prefix yields nothing; before it, everything.
    let beyond = s
        .list(ListRequest::prefix("/registry/pods/").start_after("/registry/z"))
        .await
        .unwrap();
    assert!(beyond.items.is_empty() && !beyond.more);
    let before = s
        .list(ListRequest::prefix("/registry/pods/").start_after("/registry/a"))
        .await
        .unwrap();
    assert_eq!(before.items.len(), 25);
    // Limit 0 means no limit.
    let zero = s
        .list(ListRequest::prefix("/registry/").limit(0))
        .await
        .unwrap();
    assert_eq!(zero.items.len(), 26);
}

async fn list_at_an_older_revision_sees_that_state(open: Open) {
    let h = open(StoreOptions::default());
    let s = &h.store;
    s.create("/p/a", val("a1")).await.unwrap(); // 1
    s.create("/p/b", val("b1")).await.unwrap(); // 2
    s.create("/p/d", val("d1")).await.unwrap(); // 3
    let then = s.current_revision();
    s.update("/p/a", val("a2"), 1).await.unwrap(); // 4
    s.delete("/p/b", None).await.unwrap(); // 5
    s.create("/p/c", val("c1")).await.unwrap(); // 6
    s.update("/p/a", val("a3"), 4).await.unwrap(); // 7
    s.delete("/p/d", None).await.unwrap(); // 8
    s.create("/p/d", val("d2")).await.unwrap(); // 9

    let old = s.list(ListRequest::prefix("/p/").at(then)).await.unwrap();
    assert_eq!(old.revision, then);
    assert_eq!(keys(&old.items), vec!["/p/a", "/p/b", "/p/d"]);
    assert_eq!(old.items[0].value, val("a1"));
    assert_eq!(old.items[0].mod_revision, 1);
    assert_eq!(old.items[2].value, val("d1"));

    let mid = s.list(ListRequest::prefix("/p/").at(6)).await.unwrap();
    let mid_values: Vec<_> = mid.items.iter().map(|kv| kv.value.clone()).collect();
    assert_eq!(mid_values, vec![val("a2"), val("c1"), val("d1")]);

    let paged = s
        .list(
            ListRequest::prefix("/p/")
                .at(6)
                .limit(1)
                .start_after("/p/a"),
        )
        .await
        .unwrap();
    assert_eq!(keys(&paged.items), vec!["/p/c"]);
    assert!(paged.more);
    assert_eq!(paged.remaining, 1);

    // Remaining counts at an older revision, with keys deleted, created and
    // recreated since then.
    let first = s
        .list(ListRequest::prefix("/p/").at(then).limit(1))
        .await
        .unwrap();
    assert_eq!(keys(&first.items), vec!["/p/a"]);
    assert_eq!((first.more, first.remaining), (true, 2));
    let second = s
        .list(
            ListRequest::prefix("/p/")
                .at(then)
                .limit(1)
                .start_after("/p/a"),
        )
        .await
        .unwrap();
    assert_eq!(keys(&second.items), vec!["/p/b"]);
    assert_eq!((second.more, second.remaining), (true, 1));

    let now = s.list(ListRequest::prefix("/p/")).await.unwrap();
    assert_eq!(now.revision, 9);
    assert_eq!(keys(&now.items), vec!["/p/a", "/p/c", "/p/d"]);
    assert_eq!(now.items[2].create_revision, 9);
    // Asking for the current revision explicitly gives the same answer.
    assert_eq!(s.list(ListRequest::prefix("/p/").at(9)).await.unwrap(), now);
}

async fn list_outside_the_kept_revisions_fails(open: Open) {
    let h = open(StoreOptions::default());
    let s = &h.store;
    for i in 0..5 {
        s.create(&format!("/k/{i}"), val("v")).await.unwrap();
    }
    assert!(matches!(
        s.list(ListRequest::prefix("/k/").at(6)).await,
        Err(Error::FutureRevision {
            requested: 6,
            current: 5
        })
    ));
    s.compact(3).await.unwrap();
    assert_eq!(s.compacted_revision(), 3);
    assert!(matches!(
        s.list(ListRequest::prefix("/k/").at(2)).await,
        Err(Error::Compacted {
            requested: 2,
            compacted: 3
        })
    ));
    let at_compacted = s.list(ListRequest::prefix("/k/").at(3)).await.unwrap();
    assert_eq!(at_compacted.items.len(), 3);
    assert!(matches!(
        s.compact(9).await,
        Err(Error::FutureRevision { .. })
    ));
}

async fn watch_replays_history_then_follows_live_writes(open: Open) {
    let h = open(StoreOptions::default());
    let s = &h.store;
    s.create("/w/a", val("a1")).await.unwrap(); // 1
    s.create("/w/b", val("b1")).await.unwrap(); // 2
    s.update("/w/a", val("a2"), 1).await.unwrap(); // 3
    s.delete("/w/b", Some(2)).await.unwrap(); // 4

    let mut w = s.watch("/w/", 1).unwrap();
    assert_eq!(
        next_event(&mut w).await,
        Event::Put {
            kv: KeyValue {
                key: "/w/b".into(),
                value: val("b1"),
                create_revision: 2,
                mod_revision: 2
            },
            prev: None
        }
    );
    assert_eq!(
        next_event(&mut w).await,
        Event::Put {
            kv: KeyValue {
                key: "/w/a".into(),
                value: val("a2"),
                create_revision: 1,
                mod_revision: 3
            },
            prev: Some(KeyValue {
                key: "/w/a".into(),
                value: val("a1"),
                create_revision: 1,
                mod_revision: 1
            })
        }
    );
    assert_eq!(
        next_event(&mut w).await,
        Event::Delete {
            kv: KeyValue {
                key: "/w/b".into(),
                value: val("b1"),
                create_revision: 2,
                mod_revision: 4
            }
        }
    );
    assert_eq!(w.last_revision(), 4);

    let live = s.update("/w/a", val("a3"), 3).await.unwrap();
    let event = next_event(&mut w).await;
    assert_eq!(event.revision(), live.mod_revision);
    assert!(matches!(&event, Event::Put { prev: Some(p), .. } if p.value == val("a2")));
    assert_quiet(&mut w).await;

    // A watch from the current revision sees only what comes next.
    let mut fresh = s.watch("/w/", s.current_revision()).unwrap();
    s.create("/w/c", val("c")).await.unwrap();
    assert_eq!(next_event(&mut fresh).await.key(), "/w/c");
    assert_eq!(next_event(&mut w).await.key(), "/w/c");

    // A watch from a future revision skips events up to it.
    let mut future = s.watch("/w/", s.current_revision() + 1).unwrap();
    s.create("/w/d", val("d")).await.unwrap();
    s.create("/w/e", val("e")).await.unwrap();
    assert_eq!(next_event(&mut future).await.key(), "/w/e");
}

async fn watch_has_no_gap_or_duplicate_while_writes_race(open: Open) {
    let h = open(StoreOptions::default());
    let s = h.store.clone();
    const WRITES: i64 = 300;
    let writer = {
        let s = s.clone();
        tokio::spawn(async move {
            for i in 0..WRITES {
                s.create(&format!("/race/{i:04}"), val("v")).await.unwrap();
            }
        })
    };
    // Start watchers at whatever revision the racing writer has reached, some
    // from the past, some from "now".
    let mut watchers = Vec::new();
    for n in 0..6 {
        tokio::time::sleep(Duration::from_millis(2)).await;
        let now = s.current_revision();
        let after = if n % 2 == 0 { now / 2 } else { now };
        watchers.push((after, s.watch("/race/", after).unwrap()));
    }
    writer.await.unwrap();
    for (after, mut w) in watchers {
        let mut expect = after + 1;
        while expect <= WRITES {
            let event = next_event(&mut w).await;
            assert_eq!(event.revision(), expect, "watch from {after}");
            assert_eq!(event.key(), format!("/race/{:04}", expect - 1));
            expect += 1;
        }
        assert_quiet(&mut w).await;
    }
}

async fn watch_after_compaction_is_compacted(open: Open) {
    let h = open(StoreOptions::default());
    let s = &h.store;
    for i in 0..6 {
        s.create(&format!("/c/{i}"), val("v")).await.unwrap();
    }
    s.update("/c/0", val("v2"), 1).await.unwrap(); // 7
    s.compact(5).await.unwrap();
    match s.watch("/c/", 4) {
        Err(Error::Compacted {
            requested,
            compacted,
        }) => assert_eq!((requested, compacted), (4, 5)),
        other => panic!("expected Compacted, got {other:?}"),
    }
    let mut w = s.watch("/c/", 5).unwrap();
    assert_eq!(next_event(&mut w).await.key(), "/c/5");
    let update = next_event(&mut w).await;
    assert_eq!(update.revision(), 7);
    // The replaced value (revision 1, before the compaction point) is still
    // there for the update's `prev`.
    assert!(matches!(update, Event::Put { prev: Some(p), .. } if p.mod_revision == 1));

    // A watch created before a compaction, still replaying, reports Compacted
    // instead of silently skipping history.
    let mut early = s.watch("/c/", 5).unwrap();
    s.create("/c/x", val("v")).await.unwrap(); // 8
    s.compact(8).await.unwrap();
    let first = tokio::time::timeout(WAIT, early.next())
        .await
        .unwrap()
        .unwrap();
    assert!(
        matches!(first, Err(Error::Compacted { requested: 5, .. })),
        "got {first:?}"
    );
    assert!(early.next().await.is_none());
}

async fn prefixes_are_isolated(open: Open) {
    let h = open(StoreOptions::default());
    let s = &h.store;
    let mut pods = s.watch("/registry/pods/", 0).unwrap();
    s.create("/registry/pods/ns/a", val("pod")).await.unwrap();
    s.create("/registry/podsx/ns/a", val("podx")).await.unwrap();
    s.create("/registry/pods", val("bare")).await.unwrap();
    s.create("/registry/pods/ns/b", val("pod")).await.unwrap();
    let listed = s
        .list(ListRequest::prefix("/registry/pods/"))
        .await
        .unwrap();
    assert_eq!(
        keys(&listed.items),
        vec!["/registry/pods/ns/a", "/registry/pods/ns/b"]
    );
    assert_eq!(next_event(&mut pods).await.key(), "/registry/pods/ns/a");
    assert_eq!(next_event(&mut pods).await.key(), "/registry/pods/ns/b");
    assert_quiet(&mut pods).await;
    let mut history = s.watch("/registry/podsx/", 0).unwrap();
    assert_eq!(next_event(&mut history).await.key(), "/registry/podsx/ns/a");
    assert_quiet(&mut history).await;
    // Keys outside ASCII sort by code point in every backend.
    s.create("/u/\u{e9}", val("e-acute")).await.unwrap();
    s.create("/u/z", val("z")).await.unwrap();
    s.create("/u/\u{10FFFF}", val("max")).await.unwrap();
    let unicode = s.list(ListRequest::prefix("/u/")).await.unwrap();
    assert_eq!(
        keys(&unicode.items),
        vec!["/u/z", "/u/\u{e9}", "/u/\u{10FFFF}"]
    );
    let everything = s.list(ListRequest::prefix("")).await.unwrap();
    assert_eq!(everything.items.len(), 7);
}

async fn concurrent_writers_get_unique_contiguous_revisions(open: Open) {
    let h = open(StoreOptions::default());
    let s = &h.store;
    const TASKS: usize = 32;
    const EACH: usize = 20;
    let mut tasks = Vec::new();
    for t in 0..TASKS {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let mut acks = Vec::new();
            for i in 0..EACH {
                let key = format!("/cw/{t:02}/{i:02}");
                let kv = s.create(&key, val(&key)).await.unwrap();
                acks.push(kv);
            }
            acks
        }));
    }
    let mut revisions = BTreeSet::new();
    for task in tasks {
        for kv in task.await.unwrap() {
            assert!(revisions.insert(kv.mod_revision), "duplicate revision");
            let stored = s.get(&kv.key).await.unwrap().unwrap();
            assert_eq!(stored, kv);
        }
    }
    let total = (TASKS * EACH) as i64;
    assert_eq!(revisions, (1..=total).collect::<BTreeSet<_>>());
    assert_eq!(s.current_revision(), total);
    let listed = s.list(ListRequest::prefix("/cw/")).await.unwrap();
    assert_eq!(listed.items.len(), TASKS * EACH);

    // Racing updates with the same expected revision: exactly one wins.
    let base = s.get("/cw/00/00").await.unwrap().unwrap().mod_revision;
    let racers: Vec<_> = (0..8)
        .map(|n| {
            let s = s.clone();
            tokio::spawn(async move { s.update("/cw/00/00", val(&n.to_string()), base).await })
        })
        .collect();
    let mut wins = 0;
    for racer in racers {
        match racer.await.unwrap() {
            Ok(_) => wins += 1,
            Err(Error::Conflict { .. }) => {}
            Err(e) => panic!("unexpected error {e}"),
        }
    }
    assert_eq!(wins, 1);
}

async fn slow_watcher_does_not_block_writers_or_other_watchers(open: Open) {
    let h = open(StoreOptions {
        watch_buffer: 8,
        ..StoreOptions::default()
    });
    let s = &h.store;
    let mut slow = s.watch("/sw/", 0).unwrap();
    let mut fast = s.watch("/sw/", 0).unwrap();
    const WRITES: i64 = 100;
    // The other watcher keeps up (it reads each event as it comes) while the
    // slow one reads nothing at all.
    let writes = async {
        for i in 0..WRITES {
            let kv = s.create(&format!("/sw/{i:03}"), val("v")).await.unwrap();
            assert_eq!(next_event(&mut fast).await.revision(), kv.mod_revision);
        }
    };
    tokio::time::timeout(WAIT, writes)
        .await
        .expect("writers were blocked by a slow watcher");
    assert_eq!(s.current_revision(), WRITES);
    // The slow watcher gets what fitted in its buffer, then the overflow.
    let mut delivered = 0;
    loop {
        match tokio::time::timeout(WAIT, slow.next()).await.unwrap() {
            Some(Ok(event)) => {
                delivered += 1;
                assert_eq!(event.revision(), delivered);
            }
            Some(Err(Error::WatchOverflow { capacity })) => {
                assert_eq!(capacity, 8);
                break;
            }
            other => panic!("expected events then an overflow, got {other:?}"),
        }
    }
    assert_eq!(delivered, 8);
    assert!(slow.next().await.is_none());
}

async fn compaction_keeps_current_state_and_recent_history(open: Open) {
    let h = open(StoreOptions {
        compaction_step: 7,
        ..StoreOptions::default()
    });
    let s = &h.store;
    for i in 0..10 {
        s.create(&format!("/cp/{i}"), val("0")).await.unwrap();
    }
    for round in 1..=4 {
        for i in 0..10 {
            let key = format!("/cp/{i}");
            let cur = s.get(&key).await.unwrap().unwrap();
            s.update(&key, val(&round.to_string()), cur.mod_revision)
                .await
                .unwrap();
        }
    }
    for i in 0..3 {
        s.delete(&format!("/cp/{i}"), None).await.unwrap();
    }
    let before = s.list(ListRequest::prefix("/cp/")).await.unwrap();
    let mid_rev = 35;
    let mid_before = s
        .list(ListRequest::prefix("/cp/").at(mid_rev))
        .await
        .unwrap();
    s.compact(mid_rev).await.unwrap();
    assert_eq!(s.compacted_revision(), mid_rev);
    assert_eq!(s.list(ListRequest::prefix("/cp/")).await.unwrap(), before);
    assert_eq!(
        s.list(ListRequest::prefix("/cp/").at(mid_rev))
            .await
            .unwrap(),
        mid_before
    );
    let mut w = s.watch("/cp/", mid_rev).unwrap();
    for rev in mid_rev + 1..=s.current_revision() {
        assert_eq!(next_event(&mut w).await.revision(), rev);
    }
    let current = s.current_revision();
    s.compact(current).await.unwrap();
    assert_eq!(s.list(ListRequest::prefix("/cp/")).await.unwrap(), before);
    assert_eq!(before.items.len(), 7);
    assert!(before.items.iter().all(|kv| kv.value == val("4")));
    // Compacting to an older revision is a no-op.
    s.compact(3).await.unwrap();
    assert_eq!(s.compacted_revision(), current);
    // Writes after a full compaction continue the revision sequence.
    let kv = s.create("/cp/0", val("new")).await.unwrap();
    assert_eq!(kv.mod_revision, current + 1);
}

async fn watch_progress_reports_what_was_delivered(open: Open) {
    let h = open(StoreOptions::default());
    let s = &h.store;
    s.create("/other/x", val("x")).await.unwrap(); // 1
    s.create("/pr/a", val("a")).await.unwrap(); // 2
    let mut w = s.watch("/pr/", 0).unwrap();
    assert_eq!(w.progress(), None, "history not replayed yet");
    assert_eq!(next_event(&mut w).await.revision(), 2);
    assert_quiet(&mut w).await;
    assert_eq!(w.progress(), Some(2));
    s.create("/other/y", val("y")).await.unwrap(); // 3: not ours
    assert_eq!(w.progress(), Some(3));
    s.create("/pr/b", val("b")).await.unwrap(); // 4: buffered, not delivered
    assert_eq!(w.progress(), None);
    assert_eq!(next_event(&mut w).await.revision(), 4);
    assert_eq!(w.progress(), Some(4));
}

async fn background_compactor_follows_the_revision_window(open: Open) {
    use fedmesh_apiserver::store::{CompactionPolicy, CompactionWindow};
    let h = open(StoreOptions {
        compaction: CompactionPolicy {
            window: CompactionWindow::Revisions(5),
            interval: Duration::from_millis(10),
        },
        ..StoreOptions::default()
    });
    let s = &h.store;
    let compactor = s.spawn_compactor();
    for i in 0..20 {
        s.create(&format!("/bg/{i}"), val("v")).await.unwrap();
    }
    let deadline = tokio::time::Instant::now() + WAIT;
    while s.compacted_revision() < 15 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "compactor did not reach revision 15 (at {})",
            s.compacted_revision()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(s.compacted_revision(), 15);
    assert!(matches!(s.watch("/bg/", 14), Err(Error::Compacted { .. })));
    assert_eq!(
        s.list(ListRequest::prefix("/bg/"))
            .await
            .unwrap()
            .items
            .len(),
        20
    );
    compactor.abort();
}
