//! `/metrics`: Prometheus text with kube-apiserver's main names:
//! `apiserver_request_total` and `apiserver_request_duration_seconds` (labelled
//! by verb, group, version, resource, subresource, scope, component and, for the
//! total, code), and `apiserver_storage_objects` (objects stored per resource,
//! counted when scraped).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Duration;

use super::path::Target;
use crate::objects::Objects;

/// kube-apiserver's buckets for `apiserver_request_duration_seconds`.
const BUCKETS: [f64; 23] = [
    0.005, 0.025, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 1.25, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0,
    10.0, 15.0, 20.0, 30.0, 45.0, 60.0,
];

/// What a request is counted under.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct RequestLabels {
    verb: String,
    group: String,
    version: String,
    resource: String,
    subresource: String,
    scope: &'static str,
}

impl RequestLabels {
    /// The labels of a request to `target` (`apply` for a server-side apply
    /// patch, which kube counts as `APPLY`).
    pub fn of(method: &http::Method, target: &Target, watch: bool, apply: bool) -> Self {
        let Target::Resource(rp) = target else {
            return RequestLabels {
                verb: method.as_str().to_owned(),
                group: String::new(),
                version: String::new(),
                resource: String::new(),
                subresource: String::new(),
                scope: "",
            };
        };
        let named = rp.name.is_some();
        let verb = match (method.as_str(), named, watch || rp.legacy_watch) {
            (_, _, true) => "WATCH",
            ("GET", true, _) => "GET",
            ("GET", false, _) => "LIST",
            ("POST", ..) => "POST",
            ("PUT", ..) => "PUT",
            ("PATCH", ..) if apply => "APPLY",
            ("PATCH", ..) => "PATCH",
            ("DELETE", true, _) => "DELETE",
            ("DELETE", false, _) => "DELETECOLLECTION",
            (other, ..) => other,
        };
        RequestLabels {
            verb: verb.to_owned(),
            group: rp.group.clone(),
            version: rp.version.clone(),
            resource: rp.plural.clone(),
            subresource: rp.sub.clone().unwrap_or_default(),
            scope: match (named, &rp.namespace) {
                (true, _) => "resource",
                (false, Some(_)) => "namespace",
                (false, None) => "cluster",
            },
        }
    }

    fn write(&self, out: &mut String) {
        let _ = write!(
            out,
            "component=\"apiserver\",group=\"{}\",resource=\"{}\",scope=\"{}\",subresource=\"{}\",verb=\"{}\",version=\"{}\"",
            self.group, self.resource, self.scope, self.subresource, self.verb, self.version
        );
    }
}

#[derive(Debug, Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

#[derive(Debug, Default)]
struct Recorded {
    totals: BTreeMap<(RequestLabels, u16), u64>,
    durations: BTreeMap<RequestLabels, Histogram>,
}

/// The server's request counters; shared by every request.
#[derive(Debug, Default)]
pub struct Metrics {
    recorded: Mutex<Recorded>,
}

impl Metrics {
    /// Counts one answered request.
    pub fn record(&self, labels: RequestLabels, code: u16, took: Duration) {
        let mut r = self.recorded.lock().unwrap_or_else(|e| e.into_inner());
        *r.totals.entry((labels.clone(), code)).or_default() += 1;
        let h = r.durations.entry(labels).or_default();
        let secs = took.as_secs_f64();
        for (i, le) in BUCKETS.iter().enumerate() {
            if secs <= *le {
                h.counts[i] += 1;
            }
        }
        h.sum += secs;
        h.count += 1;
    }

    /// The Prometheus text exposition.
    pub async fn render(&self, objects: &Objects) -> String {
        let mut out = String::new();
        {
            let r = self.recorded.lock().unwrap_or_else(|e| e.into_inner());
            out.push_str("# HELP apiserver_request_total Counter of apiserver requests broken out for each verb, dry run value, group, version, resource, scope, component, and HTTP response code.\n");
            out.push_str("# TYPE apiserver_request_total counter\n");
            for ((labels, code), n) in &r.totals {
                out.push_str("apiserver_request_total{code=\"");
                let _ = write!(out, "{code}\",");
                labels.write(&mut out);
                let _ = writeln!(out, "}} {n}");
            }
            out.push_str("# HELP apiserver_request_duration_seconds Response latency distribution in seconds for each verb, dry run value, group, version, resource, subresource, scope and component.\n");
            out.push_str("# TYPE apiserver_request_duration_seconds histogram\n");
            for (labels, h) in &r.durations {
                let mut l = String::new();
                labels.write(&mut l);
                for (le, n) in BUCKETS.iter().zip(h.counts) {
                    let _ = writeln!(
                        out,
                        "apiserver_request_duration_seconds_bucket{{{l},le=\"{le}\"}} {n}"
                    );
                }
                let _ = writeln!(
                    out,
                    "apiserver_request_duration_seconds_bucket{{{l},le=\"+Inf\"}} {}",
                    h.count
                );
                let _ = writeln!(
                    out,
                    "apiserver_request_duration_seconds_sum{{{l}}} {}",
                    h.sum
                );
                let _ = writeln!(
                    out,
                    "apiserver_request_duration_seconds_count{{{l}}} {}",
                    h.count
                );
            }
        }
        out.push_str("# HELP apiserver_storage_objects Number of stored objects at the time of last check split by kind.\n");
        out.push_str("# TYPE apiserver_storage_objects gauge\n");
        let mut counted = BTreeMap::new();
        for r in objects.registry().all() {
            if !r.verbs.allows("list") || counted.contains_key(&r.key_prefix()) {
                continue;
            }
            let n = objects.store().count(&r.key_prefix()).await.unwrap_or(0);
            counted.insert(r.key_prefix(), (r.qualified_plural(), n));
        }
        let mut rows: Vec<_> = counted.into_values().collect();
        rows.sort();
        for (resource, n) in rows {
            let _ = writeln!(
                out,
                "apiserver_storage_objects{{resource=\"{resource}\"}} {n}"
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_counted_with_kubes_labels() {
        let m = Metrics::default();
        let target = super::super::path::parse("/api/v1/namespaces/d/configmaps");
        let labels = RequestLabels::of(&http::Method::GET, &target, false, false);
        m.record(labels.clone(), 200, Duration::from_millis(30));
        m.record(labels, 200, Duration::from_millis(3));
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let objects = Objects::new(
            crate::objects::ObjectStore::in_memory().unwrap(),
            crate::registry::Registry::with_builtins(),
        );
        let text = runtime.block_on(m.render(&objects));
        assert!(text.contains("apiserver_request_total{code=\"200\",component=\"apiserver\",group=\"\",resource=\"configmaps\",scope=\"namespace\",subresource=\"\",verb=\"LIST\",version=\"v1\"} 2\n"), "{text}");
        assert!(text.contains("le=\"0.025\"} 1\n"), "{text}");
        assert!(text.contains("le=\"0.05\"} 2\n"), "{text}");
        assert!(
            text.contains("apiserver_storage_objects{resource=\"configmaps\"} 0\n"),
            "{text}"
        );
    }
}
