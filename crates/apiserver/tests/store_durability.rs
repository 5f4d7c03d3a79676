//! SIGKILL during a stream of writes loses no acknowledged write.
//!
//! The test re-executes its own binary as a child (selected by an environment
//! variable) that writes to a SQLite store from 16 tasks and prints one line per
//! acknowledged write. The parent kills it with SIGKILL at a random point,
//! reopens the store, and checks every acknowledged write against it. Rounds
//! share one database, so each also checks that revisions continue across
//! crashes.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use fedmesh_apiserver::store::{ListRequest, Revision, Store, StoreOptions};
use rand::Rng;

const CHILD_ENV: &str = "FEDMESH_STORE_DURABILITY_CHILD";
const TEST_NAME: &str = "sigkill_loses_no_acknowledged_write";
const ROUNDS: usize = 8;
const WRITERS: usize = 16;
/// The child stops by itself if nobody kills it.
const CHILD_LIFETIME: Duration = Duration::from_secs(30);
const CHILD_MAX_KEYS: usize = 100_000;
/// Every fifth key is deleted after its update.
const DELETE_EVERY: usize = 5;

fn value(key: &str, version: u8) -> Bytes {
    Bytes::from(format!(
        "{{\"key\":\"{key}\",\"version\":{version},\"pad\":\"{}\"}}",
        "x".repeat(200)
    ))
}

#[test]
fn sigkill_loses_no_acknowledged_write() {
    if let Ok(spec) = std::env::var(CHILD_ENV) {
        child(&spec);
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut floor: Revision = 0;
    let mut rng = rand::rng();
    for round in 0..ROUNDS {
        let target = rng.random_range(20..1500);
        let acks = run_child(&path, round, target);
        assert!(
            acks.len() >= target,
            "round {round}: the child acknowledged only {} writes",
            acks.len()
        );
        floor = runtime.block_on(verify(&path, round, &acks, floor));
    }
}

/// One acknowledged write as the child printed it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Ack {
    op: char,
    key: String,
    revision: Revision,
}

fn run_child(path: &Path, round: usize, target: usize) -> Vec<Ack> {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([TEST_NAME, "--exact", "--nocapture", "--test-threads", "1"])
        .env(CHILD_ENV, format!("{round}:{}", path.display()))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut acks = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(15);
    while acks.len() < target {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => acks.extend(parse(&line)),
            Err(_) => break,
        }
    }
    // SIGKILL on Unix: no destructor, no flush, no clean SQLite shutdown.
    child.kill().unwrap();
    child.wait().unwrap();
    reader.join().unwrap();
    // Lines printed before the kill are acknowledged writes too.
    acks.extend(rx.try_iter().filter_map(|line| parse(&line)));
    acks
}

fn parse(line: &str) -> Option<Ack> {
    // The first ack shares its line with libtest's "test NAME ... ".
    let start = line.find("ACK ")?;
    let mut parts = line[start + 4..].split(' ');
    let op = parts.next()?.chars().next()?;
    let key = parts.next()?.to_owned();
    let revision = parts.next()?.parse().ok()?;
    Some(Ack { op, key, revision })
}

async fn verify(path: &Path, round: usize, acks: &[Ack], floor: Revision) -> Revision {
    let store = Store::open_sqlite(path, StoreOptions::default()).unwrap();
    let revisions: BTreeSet<Revision> = acks.iter().map(|a| a.revision).collect();
    assert_eq!(
        revisions.len(),
        acks.len(),
        "a revision was acknowledged twice"
    );
    let (first, last) = (*revisions.first().unwrap(), *revisions.last().unwrap());
    assert!(
        first > floor,
        "round {round}: revision {first} reused (floor {floor})"
    );
    assert!(store.current_revision() >= last);

    let mut last_ack: BTreeMap<&str, &Ack> = BTreeMap::new();
    let mut created_at: BTreeMap<&str, Revision> = BTreeMap::new();
    for ack in acks {
        if ack.op == 'C' {
            created_at.insert(&ack.key, ack.revision);
        }
        let previous = last_ack.insert(&ack.key, ack);
        if let Some(previous) = previous {
            assert!(
                previous.revision < ack.revision,
                "acks out of order for {}",
                ack.key
            );
        }
    }
    for (key, ack) in &last_ack {
        let stored = store.get(key).await.unwrap();
        let deletes = key.rsplit('/').next().unwrap().parse::<usize>().unwrap() % DELETE_EVERY == 0;
        // Each writer waits for one ack before its next write, so at most one
        // later, unacknowledged write of the key may have become durable.
        match (ack.op, stored) {
            ('C', Some(kv)) if kv.mod_revision == ack.revision => {
                assert_eq!(kv.value, value(key, 1));
                assert_eq!(kv.create_revision, ack.revision);
            }
            ('C', Some(kv)) => {
                assert!(kv.mod_revision > ack.revision, "{key}: lost its create");
                assert_eq!(kv.value, value(key, 2));
                assert_eq!(kv.create_revision, ack.revision);
            }
            ('U', Some(kv)) => {
                assert_eq!(kv.mod_revision, ack.revision, "{key}: lost its update");
                assert_eq!(kv.value, value(key, 2));
                assert_eq!(Some(&kv.create_revision), created_at.get(key));
            }
            ('U', None) => assert!(deletes, "{key}: lost after its update"),
            ('D', None) => {}
            (op, stored) => panic!(
                "{key}: last ack {op} at {}, stored {stored:?}",
                ack.revision
            ),
        }
    }
    // The history holds the acknowledged writes at their revisions.
    let mut watch = store.watch(&format!("/d/{round}/"), first - 1).unwrap();
    let mut seen = BTreeSet::new();
    while seen.len() < revisions.len() {
        let event = tokio::time::timeout(Duration::from_secs(10), watch.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        if revisions.contains(&event.revision()) {
            seen.insert(event.revision());
        }
    }
    let listed = store
        .list(ListRequest::prefix(format!("/d/{round}/")))
        .await
        .unwrap();
    assert!(
        listed
            .items
            .iter()
            .all(|kv| kv.value.starts_with(b"{\"key\":\""))
    );
    let current = store.current_revision();
    // A fresh write continues above everything stored.
    let probe = store
        .create(&format!("/probe/{round}"), Bytes::from_static(b"p"))
        .await
        .unwrap();
    assert_eq!(probe.mod_revision, current + 1);
    drop(store);
    probe.mod_revision
}

fn child(spec: &str) {
    let (round, path) = spec.split_once(':').unwrap();
    let round: usize = round.parse().unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let started = Instant::now();
    runtime.block_on(async {
        let store = Store::open_sqlite(Path::new(path), StoreOptions::default()).unwrap();
        let tasks: Vec<_> = (0..WRITERS)
            .map(|w| {
                let store = store.clone();
                tokio::spawn(async move {
                    for i in 0..CHILD_MAX_KEYS {
                        let key = format!("/d/{round}/{w:02}/{i}");
                        let created = store.create(&key, value(&key, 1)).await.unwrap();
                        println!("ACK C {key} {}", created.mod_revision);
                        let updated = store
                            .update(&key, value(&key, 2), created.mod_revision)
                            .await
                            .unwrap();
                        println!("ACK U {key} {}", updated.mod_revision);
                        if i % DELETE_EVERY == 0 {
                            let deleted = store
                                .delete(&key, Some(updated.mod_revision))
                                .await
                                .unwrap();
                            println!("ACK D {key} {}", deleted.mod_revision);
                        }
                        if started.elapsed() > CHILD_LIFETIME {
                            break;
                        }
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
    });
}
