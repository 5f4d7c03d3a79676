//! The codec against every built-in kind, the envelope and watch frames.

use serde_json::json;

use super::*;

#[test]
fn a_body_round_trips_through_the_envelope() {
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": "c", "namespace": "n"}, "data": {"a": "1", "b": ""}});
    let body = encode_body(&cm).unwrap();
    assert_eq!(&body[..4], b"k8s\0");
    assert_eq!(decode_body(&body).unwrap(), cm);
    let token = json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                       "metadata": {}, "spec": {"audiences": ["a"], "expirationSeconds": 3600}});
    let decoded = decode_body(&encode_body(&token).unwrap()).unwrap();
    assert_eq!(decoded["spec"], token["spec"]);
}

#[test]
fn bad_bodies_are_clear_errors() {
    assert!(matches!(decode_body(b"{}"), Err(ProtoError::NoMagic)));
    let unknown = json!({"apiVersion": "example.com/v1", "kind": "Widget"});
    assert!(matches!(
        encode_body(&unknown),
        Err(ProtoError::UnknownKind { .. })
    ));
    assert!(decode_body(b"k8s\0\x0a\x09").is_err());
}

/// A JSON value of message `name` with every field set (non-empty strings,
/// since protobuf reads an empty one as unset), down to `depth` levels.
fn sample(name: &str, depth: usize) -> Option<Value> {
    let special = match name {
        "apimachinery.pkg.apis.meta.v1.Time" => json!("2026-01-02T03:04:05Z"),
        "apimachinery.pkg.apis.meta.v1.MicroTime" => json!("2026-01-02T03:04:05.123456Z"),
        "apimachinery.pkg.apis.meta.v1.Duration" => json!("1m30s"),
        "apimachinery.pkg.util.intstr.IntOrString" => json!("http"),
        "apimachinery.pkg.api.resource.Quantity" => json!("250m"),
        "apimachinery.pkg.runtime.RawExtension" | "apimachinery.pkg.apis.meta.v1.FieldsV1" => {
            json!({"f:data": {"f:a": {}}})
        }
        n if n.ends_with(".ExtraValue") => json!(["scope"]),
        _ => Value::Null,
    };
    if !special.is_null() {
        return Some(special);
    }
    if depth == 0 {
        return None;
    }
    let mut out = serde_json::Map::new();
    for f in table::message(name)? {
        let one = match f.ty {
            table::Ty::Str => json!(format!("{}-value", f.json)),
            table::Ty::Bytes => json!("aGVsbG8="),
            table::Ty::Bool => json!(true),
            table::Ty::I32 | table::Ty::I64 => json!(-7),
            table::Ty::M(m) => match sample(m, depth - 1) {
                Some(v) => v,
                None => continue,
            },
        };
        let value = match f.card {
            table::Card::One => one,
            table::Card::Many => json!([one]),
            table::Card::Map => json!({"key": one}),
        };
        match value {
            // An inline struct's members are the parent's in JSON.
            Value::Object(members) if codec::is_inline(f) => out.extend(members),
            value => {
                out.insert(f.json.to_owned(), value);
            }
        }
    }
    Some(Value::Object(out))
}

#[test]
fn every_builtin_kind_round_trips_with_every_field_set() {
    use crate::schema::BuiltinKind;
    let mut covered = 0;
    for kind in BuiltinKind::ALL {
        let api_version = kind.api_version();
        let Some(message) = table::message_of_kind(&api_version, kind.kind()) else {
            // apiextensions: no protobuf form here (see the module's doc).
            assert_eq!(kind, BuiltinKind::CustomResourceDefinition);
            continue;
        };
        let mut obj = sample(message, 12).unwrap();
        obj["apiVersion"] = json!(api_version);
        obj["kind"] = json!(kind.kind());
        // Every JSON name the table uses is one kube's schema knows.
        let mut pruned = obj.clone();
        let dropped = crate::schema::prune(&mut pruned, &kind.schema());
        // Fields k8s-pb 0.9 has and kube 1.33's schema has not yet.
        let newer = [
            ".fileKeyRef",
            ".restartPolicyRules",
            "spec.hostnameOverride",
            "spec.workloadRef",
            ".declaredFeatures",
            ".podCertificate",
            "status.allocatedResources",
            "status.extendedResourceClaimStatus",
            "status.resources",
        ];
        let dropped: Vec<&String> = dropped
            .iter()
            .filter(|d| !newer.iter().any(|n| d.ends_with(n)))
            .collect();
        assert!(
            dropped.is_empty(),
            "{message}: unknown to the schema: {dropped:?}"
        );
        let body = encode_body(&obj).unwrap();
        assert_eq!(decode_body(&body).unwrap(), obj, "{message}");
        // Its list, as a list response carries it.
        let list_kind = format!("{}List", kind.kind());
        if table::message_of_kind(&api_version, &list_kind).is_some() {
            let mut item = obj.clone();
            let map = item.as_object_mut().unwrap();
            map.remove("apiVersion");
            map.remove("kind");
            let list = json!({"apiVersion": api_version, "kind": list_kind,
                              "metadata": {"resourceVersion": "12", "continue": "c",
                                           "remainingItemCount": 3},
                              "items": [item.clone(), item]});
            assert_eq!(decode_body(&encode_body(&list).unwrap()).unwrap(), list);
        }
        covered += 1;
    }
    assert_eq!(covered, BuiltinKind::ALL.len() - 1);
}

#[test]
fn a_typical_pod_round_trips() {
    let pod = json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "web-0", "namespace": "default", "uid": "3f1c", "resourceVersion": "42",
                     "creationTimestamp": "2026-01-02T03:04:05Z", "labels": {"app": "web"},
                     "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-5d",
                                          "uid": "9a", "controller": true, "blockOwnerDeletion": true}],
                     "managedFields": [{"manager": "kubectl", "operation": "Update", "apiVersion": "v1",
                                        "time": "2026-01-02T03:04:05Z", "fieldsType": "FieldsV1",
                                        "fieldsV1": {"f:metadata": {"f:labels": {".": {}, "f:app": {}}}}}]},
        "spec": {"containers": [{"name": "nginx", "image": "nginx:1.27",
                                 "ports": [{"containerPort": 80, "protocol": "TCP"}],
                                 "resources": {"limits": {"cpu": "500m", "memory": "128Mi"}},
                                 "terminationMessagePath": "/dev/termination-log",
                                 "imagePullPolicy": "IfNotPresent"}],
                 "restartPolicy": "Always", "terminationGracePeriodSeconds": 30,
                 "dnsPolicy": "ClusterFirst", "nodeName": "node-0", "enableServiceLinks": true,
                 "tolerations": [{"key": "node.kubernetes.io/not-ready", "operator": "Exists",
                                  "effect": "NoExecute", "tolerationSeconds": 300}]},
        "status": {"phase": "Running", "podIP": "10.244.0.5", "podIPs": [{"ip": "10.244.0.5"}],
                   "startTime": "2026-01-02T03:04:06Z", "qosClass": "Burstable",
                   "conditions": [{"type": "Ready", "status": "True",
                                   "lastTransitionTime": "2026-01-02T03:04:07Z"}],
                   "containerStatuses": [{"name": "nginx", "ready": true, "restartCount": 0,
                                          "image": "nginx:1.27", "imageID": "", "started": true,
                                          "state": {"running": {"startedAt": "2026-01-02T03:04:07Z"}}}]}});
    let mut expected = pod.clone();
    // An empty string reads back as unset (see the module's doc).
    expected["status"]["containerStatuses"][0]
        .as_object_mut()
        .unwrap()
        .remove("imageID");
    assert_eq!(decode_body(&encode_body(&pod).unwrap()).unwrap(), expected);
}

#[test]
fn the_envelope_has_every_field_of_runtime_unknown() {
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}});
    let body = encode_body(&cm).unwrap();
    let mut fields = Vec::new();
    let mut r = Reader::new(&body[4..]);
    while let Some((num, wire)) = r.next().unwrap() {
        let Wire::Bytes(b) = wire else {
            panic!("field {num} is not length-delimited")
        };
        fields.push((num, b.to_vec()));
    }
    let nums: Vec<u32> = fields.iter().map(|(n, _)| *n).collect();
    assert_eq!(nums, [1, 2, 3, 4]);
    assert_eq!(fields[0].1, b"\x0a\x02v1\x12\x09ConfigMap");
    assert!(fields[2].1.is_empty() && fields[3].1.is_empty());
}

#[test]
fn watch_events_are_length_prefixed_watch_event_messages() {
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}});
    let status = json!({"apiVersion": "v1", "kind": "Status", "metadata": {}, "status": "Failure",
                        "message": "too old resource version: 1 (5)", "reason": "Expired", "code": 410});
    let mut stream = encode_watch_event("ADDED", &cm).unwrap();
    let first_len = stream.len();
    assert_eq!(
        u32::from_be_bytes(stream[..4].try_into().unwrap()) as usize,
        first_len - 4
    );
    // The frame holds the WatchEvent itself: field 1 (type) first, no magic.
    assert_eq!(&stream[4..7], b"\x0a\x05A");
    stream.extend(encode_watch_event("ERROR", &status).unwrap());
    let (event, used) = decode_watch_event(&stream).unwrap();
    assert_eq!(used, first_len);
    assert_eq!(event, json!({"type": "ADDED", "object": cm}));
    let (event, _) = decode_watch_event(&stream[used..]).unwrap();
    assert_eq!(event, json!({"type": "ERROR", "object": status}));
    assert!(matches!(
        decode_watch_event(&stream[..first_len - 1]),
        Err(ProtoError::Truncated)
    ));
}
