//! Conversion between core/v1 Events and events.k8s.io/v1 Events.
//!
//! kube-apiserver stores both as one resource, so an Event written through one API is
//! read through the other (`kubectl get events` lists what kube-rs' event recorder
//! wrote with events.k8s.io/v1). The field mapping is kube-apiserver's.

use serde_json::{Map, Value};

/// `(core/v1 field, events.k8s.io/v1 field)`; every other top-level field keeps its
/// name in both (`metadata`, `reason`, `type`, `eventTime`, `series`, `related`,
/// `action`, `reportingInstance`).
const RENAMED: [(&str, &str); 7] = [
    ("involvedObject", "regarding"),
    ("message", "note"),
    ("reportingComponent", "reportingController"),
    ("source", "deprecatedSource"),
    ("firstTimestamp", "deprecatedFirstTimestamp"),
    ("lastTimestamp", "deprecatedLastTimestamp"),
    ("count", "deprecatedCount"),
];

fn rename(obj: &Value, api_version: &str, to_events: bool) -> Value {
    let mut out = Map::new();
    let Some(map) = obj.as_object() else {
        return obj.clone();
    };
    for (k, v) in map {
        let renamed = RENAMED.iter().find_map(|(core, events)| {
            if to_events && k == core {
                Some(*events)
            } else if !to_events && k == events {
                Some(*core)
            } else {
                None
            }
        });
        out.insert(renamed.unwrap_or(k).to_owned(), v.clone());
    }
    out.insert("apiVersion".into(), Value::String(api_version.to_owned()));
    out.insert("kind".into(), Value::String("Event".into()));
    Value::Object(out)
}

/// A core/v1 Event as an events.k8s.io/v1 Event.
pub fn core_event_to_events_v1(obj: &Value) -> Value {
    rename(obj, "events.k8s.io/v1", true)
}

/// An events.k8s.io/v1 Event as a core/v1 Event.
pub fn events_v1_to_core_event(obj: &Value) -> Value {
    rename(obj, "v1", false)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn round_trip() {
        let events = json!({"apiVersion": "events.k8s.io/v1", "kind": "Event",
            "metadata": {"name": "e", "namespace": "default"},
            "regarding": {"kind": "Service", "name": "my-app", "namespace": "default"},
            "note": "selector is invalid", "reason": "InvalidSelector", "type": "Warning",
            "reportingController": "fedmesh.io/controller", "reportingInstance": "fedmesh-1",
            "action": "Federate", "eventTime": "2026-11-23T16:00:00.000000Z"});
        let core = events_v1_to_core_event(&events);
        assert_eq!(core["apiVersion"], "v1");
        assert_eq!(core["involvedObject"]["name"], "my-app");
        assert_eq!(core["message"], "selector is invalid");
        assert_eq!(core["reportingComponent"], "fedmesh.io/controller");
        assert_eq!(core["reportingInstance"], "fedmesh-1");
        assert!(core.get("note").is_none());
        assert_eq!(core_event_to_events_v1(&core), events);
    }
}
