//! The request bodies the bench sends, built before any clock starts.

use bytes::Bytes;

/// The namespace the creates, patches and lists use.
pub const BENCH_NS: &str = "bench";
/// The namespace the warm-up writes go to.
pub const WARM_NS: &str = "warm";
/// The namespace the watch latency writes go to.
pub const WATCH_NS: &str = "watch";

/// Name of the `i`th Endpoints object.
pub fn endpoints_name(i: usize) -> String {
    format!("svc-{i:06}")
}

/// An Endpoints object of about 1 KB (8 addresses with target references), as
/// a client would create it.
pub fn endpoints(i: usize) -> Bytes {
    let addresses: Vec<String> = (0..8)
        .map(|a| {
            format!(
                r#"{{"ip":"10.{}.{}.{a}","nodeName":"node-{a}","targetRef":{{"kind":"Pod","namespace":"bench","name":"svc-{i:06}-{a}","uid":"00000000-0000-0000-0000-{i:06}{a:06}"}}}}"#,
                (i >> 8) & 0xff,
                i & 0xff
            )
        })
        .collect();
    Bytes::from(format!(
        r#"{{"apiVersion":"v1","kind":"Endpoints","metadata":{{"name":"{}","labels":{{"app":"svc-{i:06}"}}}},"subsets":[{{"addresses":[{}],"ports":[{{"name":"http","port":8080,"protocol":"TCP"}}]}}]}}"#,
        endpoints_name(i),
        addresses.join(",")
    ))
}

/// A JSON merge patch that changes one annotation.
pub fn merge_patch(round: usize) -> Bytes {
    Bytes::from(format!(
        r#"{{"metadata":{{"annotations":{{"bench.fedmesh.io/round":"{round}"}}}}}}"#
    ))
}

/// Name of the `i`th ConfigMap written during the watch measurement.
pub fn configmap_name(i: usize) -> String {
    format!("w-{i:06}")
}

/// A ConfigMap of about 1 KB.
pub fn configmap(name: &str) -> Bytes {
    let value = "x".repeat(900);
    Bytes::from(format!(
        r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"{name}"}},"data":{{"v":"{value}"}}}}"#
    ))
}

/// A Namespace.
pub fn namespace(name: &str) -> Bytes {
    Bytes::from(format!(
        r#"{{"apiVersion":"v1","kind":"Namespace","metadata":{{"name":"{name}"}}}}"#
    ))
}

/// Percent-encodes a query parameter value (continue tokens are base64).
pub fn query_escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
