//! SIGKILL of a whole API server during a stream of writes over HTTP loses no
//! acknowledged write, and watchers resume after the restart.
//!
//! The test re-executes its own binary as a child (selected by an environment
//! variable) that serves the API with a SQLite data directory, as
//! `fedmesh apiserver --data-dir` does. Several clients create and then update
//! ConfigMaps over HTTP, and the parent records every 2xx answer with its
//! resourceVersion. It kills the child with SIGKILL at a random moment, starts a
//! new one on the same directory and checks, against the new server:
//! - every acknowledged write of every round is there, at its resourceVersion or
//!   (when the next, unacknowledged write of the same object also became durable)
//!   later, with the content written;
//! - a watch resumed from the resourceVersion the round started at replays every
//!   acknowledged write of the round, in order;
//! - in odd rounds, where the parent compacts the history while no server runs,
//!   that watch gets 410 Gone instead, and a relist holds every acknowledged write
//!   and a watch from the relist's resourceVersion sees a later write.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use fedmesh_apiserver::ApiServer;
use fedmesh_apiserver::store::{Store, StoreOptions};
use fedmesh_apiserver::testing::Credentials;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams, ObjectMeta, PostParams, WatchEvent, WatchParams};
use rand::Rng;
use tokio::sync::mpsc;

const CHILD_ENV: &str = "FEDMESH_HTTP_DURABILITY_CHILD";
const TEST_NAME: &str = "sigkill_of_the_server_loses_no_acknowledged_write";
const ROUNDS: usize = 8;
const CLIENTS: usize = 4;
const NAMESPACE: &str = "default";
/// Every object of the test carries this label, with its round as the value.
const ROUND_LABEL: &str = "durability-round";
/// The child stops by itself if nobody stops or kills it.
const CHILD_LIFETIME: Duration = Duration::from_secs(60);
/// Bound on any one wait of the parent (child start, acks, events).
const WAIT: Duration = Duration::from_secs(10);
/// Bound on the objects one client writes in a round.
const MAX_OBJECTS: usize = 10_000;

/// One acknowledged write: the object's name, what the server answered, and
/// which write of the object it was (1 = create, 2 = update).
#[derive(Clone, Debug, PartialEq, Eq)]
struct Ack {
    name: String,
    round: usize,
    revision: i64,
    write: u8,
}

fn config_map(name: &str, round: usize, write: u8, resource_version: Option<String>) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            namespace: Some(NAMESPACE.to_owned()),
            labels: Some([(ROUND_LABEL.to_owned(), round.to_string())].into()),
            resource_version,
            ..ObjectMeta::default()
        },
        data: Some(
            [
                ("write".to_owned(), write.to_string()),
                ("pad".to_owned(), format!("{name}-{}", "x".repeat(100))),
            ]
            .into(),
        ),
        ..ConfigMap::default()
    }
}

fn revision_of(cm: &ConfigMap) -> i64 {
    cm.metadata
        .resource_version
        .as_deref()
        .and_then(|rv| rv.parse().ok())
        .unwrap_or_else(|| panic!("no numeric resourceVersion on {:?}", cm.metadata.name))
}

fn write_of(cm: &ConfigMap) -> &str {
    cm.data
        .as_ref()
        .and_then(|d| d.get("write"))
        .map_or("", String::as_str)
}

#[test]
fn sigkill_of_the_server_loses_no_acknowledged_write() {
    if let Ok(dir) = std::env::var(CHILD_ENV) {
        serve(Path::new(&dir));
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    // kube clients are built outside `block_on` too.
    let _runtime = runtime.enter();
    let mut rng = rand::rng();
    let mut server = ServerChild::spawn(&data);
    // The last acknowledged write of every object, over all rounds.
    let mut last: BTreeMap<String, Ack> = BTreeMap::new();
    for round in 0..ROUNDS {
        let target = rng.random_range(20..200);
        let linger = Duration::from_millis(rng.random_range(0..20));
        let (start, acks) =
            runtime.block_on(write_until_killed(&mut server, round, target, linger));
        for ack in &acks {
            last.insert(ack.name.clone(), ack.clone());
        }
        let compacted = round % 2 == 1;
        if compacted {
            runtime.block_on(compact_all(&data));
        }
        server = ServerChild::spawn(&data);
        let client = server.credentials.client().unwrap();
        runtime.block_on(async {
            check_stored(&client, &last).await;
            let resumed = resume_watch(&client, round, start, &acks).await;
            assert_eq!(
                resumed,
                if compacted {
                    Resume::Gone
                } else {
                    Resume::Replayed
                },
                "round {round}"
            );
            if compacted {
                relist_and_watch(&client, round, &acks).await;
            }
        });
    }
    server.stop();
}

/// Runs the clients against `server` until `target` writes are acknowledged,
/// waits `linger`, and kills the server mid-stream. Returns the revision the
/// round started at and every acknowledged write.
async fn write_until_killed(
    server: &mut ServerChild,
    round: usize,
    target: usize,
    linger: Duration,
) -> (i64, Vec<Ack>) {
    let client = server.credentials.client().unwrap();
    let cms: Api<ConfigMap> = Api::namespaced(client, NAMESPACE);
    let start: i64 = cms
        .list(&ListParams::default().limit(1))
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap()
        .parse()
        .unwrap();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let writers: Vec<_> = (0..CLIENTS)
        .map(|c| {
            // One client (and connection) per writer.
            let cms: Api<ConfigMap> =
                Api::namespaced(server.credentials.client().unwrap(), NAMESPACE);
            let tx = tx.clone();
            tokio::spawn(async move { write_stream(cms, round, c, tx).await })
        })
        .collect();
    drop(tx);
    let mut acks = Vec::new();
    let deadline = Instant::now() + WAIT;
    while acks.len() < target {
        match tokio::time::timeout_at(deadline.into(), rx.recv()).await {
            Ok(Some(ack)) => acks.push(ack),
            Ok(None) | Err(_) => break,
        }
    }
    tokio::time::sleep(linger).await;
    server.kill();
    let mut ends = Vec::new();
    for writer in writers {
        let ended = tokio::time::timeout(WAIT, writer).await;
        ends.push(format!(
            "{:?}",
            ended.expect("a writer did not notice the kill")
        ));
    }
    // Answers that arrived before the kill are acknowledged writes too.
    while let Ok(ack) = rx.try_recv() {
        acks.push(ack);
    }
    assert!(
        acks.len() >= target,
        "round {round}: only {} of {target} writes acknowledged; writers ended with {ends:?}",
        acks.len()
    );
    (start, acks)
}

/// Creates objects and updates each once, one write at a time, until the server
/// stops answering. Returns the error that ended the stream.
async fn write_stream(
    cms: Api<ConfigMap>,
    round: usize,
    client: usize,
    acks: mpsc::UnboundedSender<Ack>,
) -> Option<kube::Error> {
    let pp = PostParams::default();
    for i in 0..MAX_OBJECTS {
        let name = format!("r{round}-c{client}-{i}");
        let created = match cms.create(&pp, &config_map(&name, round, 1, None)).await {
            Ok(cm) => cm,
            Err(e) => return Some(e),
        };
        let revision = revision_of(&created);
        let _ = acks.send(Ack {
            name: name.clone(),
            round,
            revision,
            write: 1,
        });
        let update = config_map(&name, round, 2, Some(revision.to_string()));
        let updated = match cms.replace(&name, &pp, &update).await {
            Ok(cm) => cm,
            Err(e) => return Some(e),
        };
        let _ = acks.send(Ack {
            name,
            round,
            revision: revision_of(&updated),
            write: 2,
        });
    }
    None
}

/// Every acknowledged write is stored, with its content, at its revision; only
/// the update that followed an acknowledged create may have landed on top.
async fn check_stored(client: &kube::Client, last: &BTreeMap<String, Ack>) {
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), NAMESPACE);
    let list = cms
        .list(&ListParams::default().labels(ROUND_LABEL))
        .await
        .unwrap();
    let list_revision: i64 = list.metadata.resource_version.unwrap().parse().unwrap();
    let stored: BTreeMap<String, ConfigMap> = list
        .items
        .into_iter()
        .map(|cm| (cm.metadata.name.clone().unwrap(), cm))
        .collect();
    for (name, ack) in last {
        let cm = stored
            .get(name)
            .unwrap_or_else(|| panic!("{name}: acknowledged at {} but lost", ack.revision));
        let revision = revision_of(cm);
        assert!(list_revision >= revision);
        let labels = cm.metadata.labels.as_ref().unwrap();
        assert_eq!(labels[ROUND_LABEL], ack.round.to_string(), "{name}");
        if revision == ack.revision {
            assert_eq!(write_of(cm), ack.write.to_string(), "{name} at {revision}");
        } else {
            assert!(
                revision > ack.revision && ack.write == 1 && write_of(cm) == "2",
                "{name}: acknowledged write {} at {}, stored write {} at {revision}",
                ack.write,
                ack.revision,
                write_of(cm)
            );
        }
        let pad = &cm.data.as_ref().unwrap()["pad"];
        assert!(pad.starts_with(&format!("{name}-x")), "{name}: {pad}");
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Resume {
    /// Every acknowledged write of the round came as an event.
    Replayed,
    /// The server answered 410 Gone.
    Gone,
}

/// Watches the round's objects from `start`, the revision before its first write.
async fn resume_watch(client: &kube::Client, round: usize, start: i64, acks: &[Ack]) -> Resume {
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), NAMESPACE);
    let params = WatchParams::default()
        .labels(&format!("{ROUND_LABEL}={round}"))
        .timeout(WAIT.as_secs() as u32);
    let mut events = cms
        .watch(&params, &start.to_string())
        .await
        .unwrap()
        .boxed();
    let mut missing: BTreeMap<i64, &Ack> = acks.iter().map(|a| (a.revision, a)).collect();
    let mut previous = start;
    let deadline = Instant::now() + WAIT;
    while !missing.is_empty() {
        let event = tokio::time::timeout_at(deadline.into(), events.try_next())
            .await
            .unwrap_or_else(|_| panic!("round {round}: no events for {missing:?}"))
            .unwrap()
            .unwrap_or_else(|| panic!("round {round}: the watch ended before {missing:?}"));
        let cm = match event {
            WatchEvent::Added(cm) | WatchEvent::Modified(cm) => cm,
            WatchEvent::Error(e) if e.code == 410 => {
                assert_eq!(previous, start, "410 after events");
                return Resume::Gone;
            }
            other => panic!("round {round}: unexpected event {other:?}"),
        };
        let revision = revision_of(&cm);
        assert!(revision > previous, "events out of order");
        previous = revision;
        if let Some(ack) = missing.remove(&revision) {
            assert_eq!(cm.metadata.name.as_deref(), Some(ack.name.as_str()));
            assert_eq!(write_of(&cm), ack.write.to_string());
        }
    }
    Resume::Replayed
}

/// After a 410: a relist holds every acknowledged write of the round, and a
/// watch from its resourceVersion sees the next write.
async fn relist_and_watch(client: &kube::Client, round: usize, acks: &[Ack]) {
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), NAMESPACE);
    let selector = format!("{ROUND_LABEL}={round}");
    let list = cms
        .list(&ListParams::default().labels(&selector))
        .await
        .unwrap();
    let at = list.metadata.resource_version.unwrap();
    let names: BTreeMap<String, i64> = list
        .items
        .iter()
        .map(|cm| (cm.metadata.name.clone().unwrap(), revision_of(cm)))
        .collect();
    for ack in acks {
        let stored = names.get(&ack.name).copied();
        assert!(
            stored.is_some_and(|r| r >= ack.revision),
            "relist lacks {} at {}",
            ack.name,
            ack.revision
        );
    }
    let params = WatchParams::default()
        .labels(&selector)
        .timeout(WAIT.as_secs() as u32);
    let mut events = cms.watch(&params, &at).await.unwrap().boxed();
    let probe_name = format!("r{round}-probe");
    let probe = cms
        .create(
            &PostParams::default(),
            &config_map(&probe_name, round, 1, None),
        )
        .await
        .unwrap();
    let event = tokio::time::timeout(WAIT, events.try_next())
        .await
        .expect("no event after the relist")
        .unwrap();
    match event {
        Some(WatchEvent::Added(cm)) => {
            assert_eq!(cm.metadata.name.as_deref(), Some(probe_name.as_str()));
            assert_eq!(revision_of(&cm), revision_of(&probe));
        }
        other => panic!("round {round}: after the relist got {other:?}"),
    }
}

/// Compacts the whole history of the stopped server's database, as its
/// compactor would after the window passed.
async fn compact_all(data: &Path) {
    let db = data.join(fedmesh_apiserver::server::DB_FILE);
    let store = Store::open_sqlite(&db, StoreOptions::default()).unwrap();
    let current = store.current_revision();
    store.compact(current).await.unwrap();
    assert_eq!(store.compacted_revision(), current);
}

/// The server in a child process.
struct ServerChild {
    child: Child,
    stdin: Option<ChildStdin>,
    credentials: Credentials,
}

impl ServerChild {
    fn spawn(data: &Path) -> ServerChild {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([TEST_NAME, "--exact", "--nocapture", "--test-threads", "1"])
            .env(CHILD_ENV, data)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = Instant::now() + WAIT;
        // libtest prints its own lines first, and its "test NAME ... " may share
        // a line with ours.
        let said = |what: &str| loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = rx
                .recv_timeout(left)
                .unwrap_or_else(|e| panic!("the server child did not say {what}: {e}"));
            if let Some(at) = line.find(what) {
                return line[at + what.len()..].trim().to_owned();
            }
        };
        let addr = said("listening ");
        let token = said("token ");
        ServerChild {
            stdin: child.stdin.take(),
            child,
            credentials: Credentials {
                url: format!("http://{addr}"),
                ca_pem: None,
                token,
            },
        }
    }

    /// SIGKILL: no destructor, no flush, no clean SQLite shutdown.
    fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
        self.stdin = None;
    }

    /// Asks the child to stop cleanly and waits for it.
    fn stop(mut self) {
        drop(self.stdin.take());
        let _ = self.child.wait();
    }
}

impl Drop for ServerChild {
    fn drop(&mut self) {
        if self.stdin.is_some() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Runs in the child: serves `data` in plain HTTP on loopback until stdin
/// closes or [`CHILD_LIFETIME`] passes.
fn serve(data: &Path) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let server = ApiServer::builder()
            .data_dir(PathBuf::from(data))
            .insecure_plaintext(true)
            .start()
            .await
            .unwrap();
        println!("listening {}", server.addr());
        println!("token {}", server.guard().security.admin_token.expose());
        let stdin_closed = tokio::task::spawn_blocking(|| {
            let _ = std::io::stdin().read_to_end(&mut Vec::new());
        });
        let _ = tokio::time::timeout(CHILD_LIFETIME, stdin_closed).await;
        server.shutdown().await;
    });
    // A blocked stdin reader would keep the runtime from dropping.
    std::process::exit(0);
}
