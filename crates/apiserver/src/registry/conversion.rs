//! Resources served in more than one API group that share one storage, and how
//! their objects convert between the stored form and the served one.
//!
//! kube-apiserver stores core/v1 Events and events.k8s.io/v1 Events as one
//! resource: an Event written through either API is listed, watched and fetched
//! through both (`kubectl get events` and `kubectl describe` show what kube-rs'
//! event recorder wrote with events.k8s.io/v1). Here the stored form is the
//! core/v1 Event, under the core Events' keys; events.k8s.io/v1 objects are
//! converted on every read and write, with kube-apiserver's field mapping
//! (`pkg/apis/events/v1/conversion.go`).

use std::borrow::Cow;

use serde_json::{Map, Value};

use super::ResourceInfo;

/// How a resource's objects differ from their stored form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Conversion {
    /// Stored as served.
    Identity,
    /// events.k8s.io/v1 Event, stored as a core/v1 Event.
    EventsV1,
}

fn conversion(group: &str, plural: &str) -> Conversion {
    match (group, plural) {
        ("events.k8s.io", "events") => Conversion::EventsV1,
        _ => Conversion::Identity,
    }
}

/// The group whose keys hold a resource's objects (`""` for the core group).
pub(super) fn storage_group<'a>(group: &'a str, plural: &str) -> &'a str {
    match conversion(group, plural) {
        Conversion::Identity => group,
        Conversion::EventsV1 => "",
    }
}

/// `(core/v1 field, events.k8s.io/v1 field)`; every other top-level field keeps
/// its name in both (`metadata`, `reason`, `type`, `eventTime`, `series`,
/// `related`, `action`, `reportingInstance`).
const EVENT_FIELDS: [(&str, &str); 7] = [
    ("involvedObject", "regarding"),
    ("message", "note"),
    ("reportingComponent", "reportingController"),
    ("source", "deprecatedSource"),
    ("firstTimestamp", "deprecatedFirstTimestamp"),
    ("lastTimestamp", "deprecatedLastTimestamp"),
    ("count", "deprecatedCount"),
];

/// Renames the top-level fields of an Event; `to_events` picks the direction.
/// A field of the target version that the source version does not have (a core
/// `note`, say) is dropped, as Go's typed conversion would.
fn rename_event(obj: Value, to_events: bool) -> Value {
    let Value::Object(map) = obj else {
        return obj;
    };
    let mut out = Map::with_capacity(map.len());
    for (k, v) in map {
        let mapped = EVENT_FIELDS.iter().find_map(|(core, events)| {
            let (from, to) = if to_events {
                (core, events)
            } else {
                (events, core)
            };
            if k == *from {
                Some(Some(*to))
            } else if k == *to {
                Some(None)
            } else {
                None
            }
        });
        match mapped {
            Some(Some(to)) => {
                out.insert(to.to_owned(), v);
            }
            Some(None) => {}
            None => {
                out.insert(k, v);
            }
        }
    }
    Value::Object(out)
}

/// A stored object as the resource `r` serves it.
pub fn from_storage(r: &ResourceInfo, obj: Value) -> Value {
    match conversion(&r.group, &r.plural) {
        Conversion::Identity => obj,
        Conversion::EventsV1 => rename_event(obj, true),
    }
}

/// An object of resource `r` in its stored form.
pub fn to_storage<'a>(r: &ResourceInfo, obj: &'a Value) -> Cow<'a, Value> {
    match conversion(&r.group, &r.plural) {
        Conversion::Identity => Cow::Borrowed(obj),
        Conversion::EventsV1 => Cow::Owned(rename_event(obj.clone(), false)),
    }
}

/// A stored object as `r` serves it, borrowed when nothing converts.
pub fn view<'a>(r: &ResourceInfo, obj: &'a Value) -> Cow<'a, Value> {
    match conversion(&r.group, &r.plural) {
        Conversion::Identity => Cow::Borrowed(obj),
        Conversion::EventsV1 => Cow::Owned(rename_event(obj.clone(), true)),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::registry::Registry;

    #[test]
    fn events_v1_round_trips_through_the_core_form() {
        let reg = Registry::with_builtins();
        let events = reg.resolve("events.k8s.io", "v1", "events").unwrap();
        let core = reg.resolve("", "v1", "events").unwrap();
        assert_eq!(events.key_prefix(), core.key_prefix());
        let new_api = json!({
            "metadata": {"name": "e", "namespace": "default"},
            "regarding": {"kind": "Service", "name": "my-app", "namespace": "default"},
            "related": {"kind": "Pod", "name": "p"},
            "note": "selector is invalid", "reason": "InvalidSelector", "type": "Warning",
            "reportingController": "fedmesh.io/controller", "reportingInstance": "fedmesh-1",
            "action": "Federate", "eventTime": "2026-11-23T16:00:00.000000Z",
            "series": {"count": 2, "lastObservedTime": "2026-11-23T16:00:01.000000Z"},
            "deprecatedSource": {"component": "c", "host": "h"},
            "deprecatedFirstTimestamp": "2026-11-23T16:00:00Z",
            "deprecatedLastTimestamp": "2026-11-23T16:00:01Z",
            "deprecatedCount": 3});
        let stored = to_storage(&events, &new_api).into_owned();
        assert_eq!(stored["involvedObject"]["name"], "my-app");
        assert_eq!(stored["message"], "selector is invalid");
        assert_eq!(stored["reportingComponent"], "fedmesh.io/controller");
        assert_eq!(stored["reportingInstance"], "fedmesh-1");
        assert_eq!(stored["source"], json!({"component": "c", "host": "h"}));
        assert_eq!(stored["firstTimestamp"], "2026-11-23T16:00:00Z");
        assert_eq!(stored["lastTimestamp"], "2026-11-23T16:00:01Z");
        assert_eq!(stored["count"], 3);
        assert_eq!(stored["series"]["count"], 2);
        assert_eq!(stored["related"]["name"], "p");
        assert!(stored.get("note").is_none() && stored.get("regarding").is_none());
        assert_eq!(from_storage(&events, stored.clone()), new_api);
        // The core resource serves the stored form unchanged.
        assert_eq!(from_storage(&core, stored.clone()), stored);
        assert_eq!(view(&events, &stored).into_owned(), new_api);
    }

    #[test]
    fn a_field_of_the_other_version_is_dropped() {
        let reg = Registry::with_builtins();
        let events = reg.resolve("events.k8s.io", "v1", "events").unwrap();
        let stored = json!({"metadata": {"name": "e"}, "message": "m", "note": "stray"});
        assert_eq!(
            from_storage(&events, stored),
            json!({"metadata": {"name": "e"}, "note": "m"})
        );
    }
}
