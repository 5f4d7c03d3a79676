//! Watch event latency: `watchers` watches of one namespace, each on its own
//! HTTP/2 connection, and one client writing ConfigMaps there one after
//! another. For every (watcher, write) pair: the time from the write's
//! acknowledgement (its response fully read) to the event's arrival at that
//! watcher (the frame holding it read off the socket, before decoding).

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use http::{Method, StatusCode};
use http_body_util::BodyExt;
use tokio::sync::{Barrier, mpsc};

use super::client::{H2, Target};
use super::objects::{self, WATCH_NS};
use super::report::{WatchStats, percentile};

const SENTINEL: &str = "sentinel";
const DEADLINE: Duration = Duration::from_secs(120);

#[derive(serde::Deserialize)]
struct Meta {
    name: String,
}

#[derive(serde::Deserialize)]
struct Object {
    metadata: Meta,
}

#[derive(serde::Deserialize)]
struct Event {
    #[serde(rename = "type")]
    kind: String,
    object: Object,
}

/// One watcher: the arrival time of each write's event.
async fn watcher(
    target: Target,
    path: String,
    writes: usize,
    established: Arc<Barrier>,
    saw_sentinel: mpsc::Sender<()>,
) -> Vec<Option<Instant>> {
    let mut conn = H2::connect(&target).await.expect("connect watcher");
    let (status, mut body) = conn.stream(&path).await.expect("watch");
    assert_eq!(status, StatusCode::OK);
    established.wait().await;
    let mut arrived = vec![None; writes];
    let mut seen = 0;
    let mut buf = BytesMut::new();
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while seen < writes {
        let frame = match tokio::time::timeout_at(deadline, body.frame()).await {
            Ok(Some(Ok(frame))) => frame,
            _ => break,
        };
        let at = Instant::now();
        let Ok(data) = frame.into_data() else {
            continue;
        };
        buf.extend_from_slice(&data);
        while let Some(end) = buf.iter().position(|&b| b == b'\n') {
            let line = buf.split_to(end + 1);
            let event: Event = serde_json::from_slice(&line).expect("a watch event");
            if event.kind != "ADDED" {
                continue;
            }
            let name = event.object.metadata.name;
            if name == SENTINEL {
                let _ = saw_sentinel.send(()).await;
            } else if let Some(i) = name
                .strip_prefix("w-")
                .and_then(|n| n.parse::<usize>().ok())
                && i < writes
                && arrived[i].is_none()
            {
                arrived[i] = Some(at);
                seen += 1;
            }
        }
    }
    arrived
}

/// Runs the measurement against the server at `target`.
pub async fn measure(target: &Target, watchers: usize, writes: usize) -> WatchStats {
    let mut writer = H2::connect(target).await.expect("connect writer");
    let base = format!("/api/v1/namespaces/{WATCH_NS}/configmaps");
    let (status, body) = writer
        .call(Method::GET, &base, "application/json", Bytes::new())
        .await
        .expect("list");
    assert_eq!(status, StatusCode::OK);
    let list: serde_json::Value = serde_json::from_slice(&body).expect("list json");
    let rv = list["metadata"]["resourceVersion"]
        .as_str()
        .expect("list resourceVersion")
        .to_owned();
    let path = format!("{base}?watch=1&resourceVersion={rv}&timeoutSeconds=600");

    let established = Arc::new(Barrier::new(watchers + 1));
    let (sentinel_tx, mut sentinel_rx) = mpsc::channel(watchers);
    let tasks: Vec<_> = (0..watchers)
        .map(|_| {
            tokio::spawn(watcher(
                target.clone(),
                path.clone(),
                writes,
                established.clone(),
                sentinel_tx.clone(),
            ))
        })
        .collect();
    drop(sentinel_tx);
    established.wait().await;
    // Every watch has delivered an event before the clock starts.
    let (status, _) = writer
        .call(
            Method::POST,
            &base,
            "application/json",
            objects::configmap(SENTINEL),
        )
        .await
        .expect("sentinel");
    assert_eq!(status, StatusCode::CREATED);
    for _ in 0..watchers {
        tokio::time::timeout(DEADLINE, sentinel_rx.recv())
            .await
            .expect("every watcher sees the sentinel")
            .expect("a watcher ended early");
    }

    let bodies: Vec<Bytes> = (0..writes)
        .map(|i| objects::configmap(&objects::configmap_name(i)))
        .collect();
    let mut sent = Vec::with_capacity(writes);
    let mut acked = Vec::with_capacity(writes);
    for body in bodies {
        let start = Instant::now();
        let (status, body) = writer
            .call(Method::POST, &base, "application/json", body)
            .await
            .expect("write");
        acked.push(Instant::now());
        sent.push(start);
        assert_eq!(
            status,
            StatusCode::CREATED,
            "{}",
            String::from_utf8_lossy(&body)
        );
    }
    let write_times: Vec<f64> = sent
        .iter()
        .zip(&acked)
        .map(|(s, a)| (*a - *s).as_secs_f64() * 1e3)
        .collect();

    let mut from_ack = Vec::with_capacity(watchers * writes);
    let mut from_sent = Vec::with_capacity(watchers * writes);
    let mut missing = 0;
    let mut before_ack = 0;
    for task in tasks {
        for (i, at) in task.await.expect("watcher task").into_iter().enumerate() {
            let Some(at) = at else {
                missing += 1;
                continue;
            };
            if at < acked[i] {
                before_ack += 1;
            }
            // An event may arrive before its write's response does: that counts as 0.
            from_ack.push(at.saturating_duration_since(acked[i]).as_secs_f64() * 1e3);
            from_sent.push(at.saturating_duration_since(sent[i]).as_secs_f64() * 1e3);
        }
    }
    let mut write_times = write_times;
    WatchStats {
        samples: from_ack.len(),
        missing,
        before_ack,
        p50_ack: percentile(&mut from_ack, 0.50),
        p99_ack: percentile(&mut from_ack, 0.99),
        max_ack: percentile(&mut from_ack, 1.0),
        p50_sent: percentile(&mut from_sent, 0.50),
        p99_sent: percentile(&mut from_sent, 0.99),
        write_p50: percentile(&mut write_times, 0.50),
        write_p99: percentile(&mut write_times, 0.99),
    }
}
