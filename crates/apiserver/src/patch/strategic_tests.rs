//! Table tests of strategic merge patch: what kubectl sends for built-in types, and the
//! cases of apimachinery's own test table that matter for them.

use serde_json::{Value, json};

use super::testdata;
use super::{MergeInfo, PatchType, Reason, SchemaNode, apply_patch};

fn smp(live: &Value, patch: &Value, info: &SchemaNode) -> Result<Value, super::PatchError> {
    apply_patch(
        PatchType::Strategic,
        live,
        patch.to_string().as_bytes(),
        Some(info as &dyn MergeInfo),
    )
}

fn live_pod() -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "web",
            "labels": {"app": "web", "tier": "fe"},
            "annotations": {"note": "x"},
            "finalizers": ["a.io/one", "b.io/two"],
            "ownerReferences": [
                {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs1", "uid": "u1"}
            ]
        },
        "spec": {
            "containers": [
                {"name": "app", "image": "app:1", "args": ["--a"],
                 "ports": [{"containerPort": 80, "protocol": "TCP"}, {"containerPort": 443, "protocol": "TCP"}],
                 "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]},
                {"name": "sidecar", "image": "side:1"}
            ],
            "volumes": [{"name": "data", "emptyDir": {}}],
            "tolerations": [{"key": "k1", "operator": "Exists"}],
            "nodeSelector": {"disk": "ssd"}
        }
    })
}

/// (description, patch, JSON pointer, expected value there)
type Case = (&'static str, Value, &'static str, Value);

#[test]
fn pod_patches() {
    let cases: Vec<Case> = vec![
        (
            "label added",
            json!({"metadata": {"labels": {"env": "prod"}}}),
            "/metadata/labels",
            json!({"app": "web", "tier": "fe", "env": "prod"}),
        ),
        (
            "label removed with null",
            json!({"metadata": {"labels": {"tier": null}}}),
            "/metadata/labels",
            json!({"app": "web"}),
        ),
        (
            "annotation overwritten",
            json!({"metadata": {"annotations": {"note": "y"}}}),
            "/metadata/annotations/note",
            json!("y"),
        ),
        (
            "null on absent key is a no-op",
            json!({"metadata": {"labels": {"nope": null}}}),
            "/metadata/labels",
            json!({"app": "web", "tier": "fe"}),
        ),
        (
            "scalar set",
            json!({"spec": {"nodeName": "n1"}}),
            "/spec/nodeName",
            json!("n1"),
        ),
        (
            "container merged by name",
            json!({"spec": {"containers": [{"name": "sidecar", "image": "side:2"}]}}),
            "/spec/containers",
            json!([{"name": "app", "image": "app:1", "args": ["--a"],
                    "ports": [{"containerPort": 80, "protocol": "TCP"}, {"containerPort": 443, "protocol": "TCP"}],
                    "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]},
                   {"name": "sidecar", "image": "side:2"}]),
        ),
        (
            "new container without order goes first, as apimachinery orders it",
            json!({"spec": {"containers": [{"name": "logger", "image": "log:1"}]}}),
            "/spec/containers/0/name",
            json!("logger"),
        ),
        (
            "container deleted with $patch delete",
            json!({"spec": {"containers": [{"name": "sidecar", "$patch": "delete"}]}}),
            "/spec/containers/1",
            Value::Null,
        ),
        (
            "list replaced with a $patch replace item",
            json!({"spec": {"containers": [{"name": "only", "image": "o:1"}, {"$patch": "replace"}]}}),
            "/spec/containers",
            json!([{"name": "only", "image": "o:1"}]),
        ),
        (
            "ports merged by containerPort",
            json!({"spec": {"containers": [{"name": "app", "ports": [{"containerPort": 443, "name": "https"}]}]}}),
            "/spec/containers/0/ports",
            json!([{"containerPort": 80, "protocol": "TCP"}, {"containerPort": 443, "protocol": "TCP", "name": "https"}]),
        ),
        (
            "env entry value changed",
            json!({"spec": {"containers": [{"name": "app", "env": [{"name": "B", "value": "3"}]}]}}),
            "/spec/containers/0/env",
            json!([{"name": "A", "value": "1"}, {"name": "B", "value": "3"}]),
        ),
        (
            "args (no strategy) replaced",
            json!({"spec": {"containers": [{"name": "app", "args": ["--b"]}]}}),
            "/spec/containers/0/args",
            json!(["--b"]),
        ),
        (
            "tolerations (atomic) replaced",
            json!({"spec": {"tolerations": [{"key": "k2", "operator": "Exists"}]}}),
            "/spec/tolerations",
            json!([{"key": "k2", "operator": "Exists"}]),
        ),
        (
            "finalizer added as a set member (first, no order given)",
            json!({"metadata": {"finalizers": ["c.io/three"]}}),
            "/metadata/finalizers",
            json!(["c.io/three", "a.io/one", "b.io/two"]),
        ),
        (
            "finalizer already present is not duplicated",
            json!({"metadata": {"finalizers": ["b.io/two"]}}),
            "/metadata/finalizers",
            json!(["a.io/one", "b.io/two"]),
        ),
        (
            "finalizer removed with $deleteFromPrimitiveList",
            json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["a.io/one"]}}),
            "/metadata/finalizers",
            json!(["b.io/two"]),
        ),
        (
            "finalizers ordered by $setElementOrder",
            json!({"metadata": {"$setElementOrder/finalizers": ["b.io/two", "a.io/one", "c.io/three"], "finalizers": ["c.io/three"]}}),
            "/metadata/finalizers",
            json!(["b.io/two", "a.io/one", "c.io/three"]),
        ),
        (
            "ownerReference merged by uid",
            json!({"metadata": {"ownerReferences": [{"uid": "u1", "controller": true}, {"apiVersion": "v1", "kind": "Node", "name": "n", "uid": "u2"}]}}),
            "/metadata/ownerReferences",
            json!([{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs1", "uid": "u1", "controller": true},
                   {"apiVersion": "v1", "kind": "Node", "name": "n", "uid": "u2"}]),
        ),
        (
            "map replaced with $patch replace",
            json!({"metadata": {"labels": {"$patch": "replace", "only": "me"}}}),
            "/metadata/labels",
            json!({"only": "me"}),
        ),
        (
            "map emptied with $patch delete",
            json!({"metadata": {"labels": {"$patch": "delete"}}}),
            "/metadata/labels",
            json!({}),
        ),
        (
            "unknown field list replaced",
            json!({"spec": {"extra": [1, 2]}}),
            "/spec/extra",
            json!([1, 2]),
        ),
        (
            "nulls inside a new value are dropped",
            json!({"spec": {"extra": {"a": null, "b": {"c": null, "d": 1}}}}),
            "/spec/extra",
            json!({"b": {"d": 1}}),
        ),
        (
            "directives inside a new container are dropped",
            json!({"spec": {"containers": [{"name": "new", "$setElementOrder/env": [{"name": "X"}], "env": [{"name": "X", "value": "1"}]}]}}),
            "/spec/containers/0",
            json!({"name": "new", "env": [{"name": "X", "value": "1"}]}),
        ),
        (
            "object replaced by scalar",
            json!({"spec": {"nodeSelector": "none"}}),
            "/spec/nodeSelector",
            json!("none"),
        ),
        (
            "volume switched with $retainKeys",
            json!({"spec": {"volumes": [{"name": "data", "$retainKeys": ["configMap", "name"], "configMap": {"name": "cm"}}]}}),
            "/spec/volumes",
            json!([{"name": "data", "configMap": {"name": "cm"}}]),
        ),
    ];
    let info = testdata::pod();
    for (what, patch, pointer, want) in cases {
        let got = smp(&live_pod(), &patch, &info).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(
            got.pointer(pointer).cloned().unwrap_or(Value::Null),
            want,
            "{what}"
        );
    }
}

fn live_deployment() -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}"}},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "web"}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [
                    {"name": "web", "image": "nginx:1", "env": [{"name": "A", "value": "1"}]},
                    {"name": "log", "image": "log:1"}
                ]}
            }
        }
    })
}

#[test]
fn kubectl_patches_on_a_deployment() {
    let cases: Vec<Case> = vec![
        (
            "kubectl scale (patch form)",
            json!({"spec": {"replicas": 3}}),
            "/spec/replicas",
            json!(3),
        ),
        (
            "kubectl apply: strategy switched to Recreate with $retainKeys",
            json!({"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate", "rollingUpdate": null}}}),
            "/spec/strategy",
            json!({"type": "Recreate"}),
        ),
        (
            "kubectl apply: container removed and one added, ordered by $setElementOrder",
            json!({"spec": {"template": {"spec": {
                "$setElementOrder/containers": [{"name": "web"}, {"name": "metrics"}],
                "containers": [{"name": "metrics", "image": "m:1"}, {"name": "log", "$patch": "delete"}]
            }}}}),
            "/spec/template/spec/containers",
            json!([{"name": "web", "image": "nginx:1", "env": [{"name": "A", "value": "1"}]}, {"name": "metrics", "image": "m:1"}]),
        ),
        (
            "kubectl edit: env changed inside a container, with nested $setElementOrder",
            json!({"spec": {"template": {"spec": {
                "$setElementOrder/containers": [{"name": "web"}, {"name": "log"}],
                "containers": [{"$setElementOrder/env": [{"name": "B"}, {"name": "A"}], "env": [{"name": "B", "value": "2"}], "name": "web"}]
            }}}}),
            "/spec/template/spec/containers/0/env",
            json!([{"name": "B", "value": "2"}, {"name": "A", "value": "1"}]),
        ),
        (
            "kubectl apply: image change keeps the order of untouched containers",
            json!({"spec": {"template": {"spec": {
                "$setElementOrder/containers": [{"name": "web"}, {"name": "log"}],
                "containers": [{"image": "log:2", "name": "log"}]
            }}}}),
            "/spec/template/spec/containers",
            json!([{"name": "web", "image": "nginx:1", "env": [{"name": "A", "value": "1"}]}, {"name": "log", "image": "log:2"}]),
        ),
        (
            "kubectl apply: annotation rewritten and label removed",
            json!({"metadata": {"annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{\"a\":1}"}},
                   "spec": {"template": {"metadata": {"labels": {"app": null, "v": "2"}}}}}),
            "/spec/template/metadata/labels",
            json!({"v": "2"}),
        ),
        (
            "selector is replaced key by key only through the map (no list strategy)",
            json!({"spec": {"selector": {"matchLabels": {"app": "web2"}}}}),
            "/spec/selector",
            json!({"matchLabels": {"app": "web2"}}),
        ),
    ];
    let info = testdata::deployment();
    for (what, patch, pointer, want) in cases {
        let got = smp(&live_deployment(), &patch, &info).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(
            got.pointer(pointer).cloned().unwrap_or(Value::Null),
            want,
            "{what}"
        );
    }
}

#[test]
fn server_only_items_keep_their_place() {
    // The server has an item ("x") that the client never saw; the client's patch adds
    // "c" at the end of its own order.
    let live = json!({"spec": {"containers": [{"name": "a"}, {"name": "x"}, {"name": "b"}]}});
    let patch = json!({"spec": {
        "$setElementOrder/containers": [{"name": "a"}, {"name": "b"}, {"name": "c"}],
        "containers": [{"name": "c"}]
    }});
    let got = smp(&live, &patch, &testdata::pod()).unwrap();
    let names: Vec<&str> = got["spec"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["a", "x", "b", "c"]);
}

#[test]
fn service_ports_and_selector() {
    let live = json!({"spec": {"ports": [{"port": 80, "protocol": "TCP", "targetPort": 8080}], "selector": {"app": "a"}}});
    let patch = json!({"spec": {"ports": [{"port": 80, "targetPort": 9090}, {"port": 443, "protocol": "TCP"}], "selector": {"tier": "b"}}});
    let got = smp(&live, &patch, &testdata::service()).unwrap();
    assert_eq!(
        got["spec"]["ports"],
        json!([{"port": 80, "protocol": "TCP", "targetPort": 9090}, {"port": 443, "protocol": "TCP"}])
    );
    // Maps merge in strategic merge patch even when server-side apply treats them as atomic.
    assert_eq!(got["spec"]["selector"], json!({"app": "a", "tier": "b"}));
}

#[test]
fn without_schema_lists_are_replaced() {
    let live = json!({"spec": {"items": [{"name": "a"}], "m": {"x": 1}}});
    let patch = json!({"spec": {"items": [{"name": "b"}], "m": {"y": 2}}});
    let got = apply_patch(
        PatchType::Strategic,
        &live,
        patch.to_string().as_bytes(),
        None,
    )
    .unwrap();
    assert_eq!(
        got,
        json!({"spec": {"items": [{"name": "b"}], "m": {"x": 1, "y": 2}}})
    );
}

#[test]
fn top_level_patch_directives() {
    let info = testdata::pod();
    let got = smp(
        &live_pod(),
        &json!({"$patch": "replace", "metadata": {"name": "x"}}),
        &info,
    )
    .unwrap();
    assert_eq!(got, json!({"metadata": {"name": "x"}}));
    let got = apply_patch(PatchType::Strategic, &live_pod(), b"null", Some(&info)).unwrap();
    assert_eq!(got, live_pod());
}

#[test]
fn strategic_errors() {
    let cases: Vec<(&str, &str, Reason, &str)> = vec![
        (
            "not an object",
            "[1]",
            Reason::BadRequest,
            "json: cannot unmarshal array into Go value of type map[string]interface {}",
        ),
        ("malformed JSON", "{\"spec\":", Reason::BadRequest, "EOF"),
        (
            "merge key missing",
            r#"{"spec":{"containers":[{"image":"x"}]}}"#,
            Reason::Unknown,
            "map: map[image:x] does not contain declared merge key: name",
        ),
        (
            "unknown map directive",
            r#"{"metadata":{"labels":{"$patch":"frob"}}}"#,
            Reason::Unknown,
            "unknown patch type: frob in map: map[$patch:frob]",
        ),
        (
            "merge directive in a list",
            r#"{"spec":{"containers":[{"name":"app","$patch":"merge"}]}}"#,
            Reason::Unknown,
            "merging lists cannot yet be specified in the patch",
        ),
        (
            "deletion list without field",
            r#"{"metadata":{"$deleteFromPrimitiveList":["a"]}}"#,
            Reason::BadRequest,
            "invalid patch format of primitive list",
        ),
        (
            "retainKeys not a list",
            r#"{"spec":{"$retainKeys":"x"}}"#,
            Reason::BadRequest,
            "invalid patch format of retainKeys",
        ),
        (
            "retainKeys missing a patched key",
            r#"{"spec":{"$retainKeys":["nodeName"],"restartPolicy":"Never"}}"#,
            Reason::BadRequest,
            "invalid patch format of retainKeys",
        ),
        (
            "setElementOrder without field",
            r#"{"spec":{"$setElementOrder":[]}}"#,
            Reason::BadRequest,
            "invalid patch format of setElementOrder list",
        ),
        (
            "setElementOrder not a list",
            r#"{"spec":{"$setElementOrder/containers":"x"}}"#,
            Reason::Unknown,
            "expected a []interface {}, but received a string",
        ),
        (
            "patch list out of $setElementOrder order",
            r#"{"spec":{"$setElementOrder/containers":[{"name":"app"},{"name":"sidecar"}],"containers":[{"name":"sidecar"},{"name":"app"}]}}"#,
            Reason::Unknown,
            "doesn't match $setElementOrder list",
        ),
        (
            "list of lists",
            r#"{"metadata":{"finalizers":[["a"]]}}"#,
            Reason::Unknown,
            "list element types are not identical",
        ),
        (
            "mixed item types",
            r#"{"metadata":{"finalizers":[1]}}"#,
            Reason::Unknown,
            "list element types are not identical",
        ),
    ];
    let info = testdata::pod();
    for (what, body, reason, text) in cases {
        let err = apply_patch(
            PatchType::Strategic,
            &live_pod(),
            body.as_bytes(),
            Some(&info),
        )
        .unwrap_err();
        assert_eq!(err.reason(), reason, "{what}: {err}");
        assert!(err.to_string().contains(text), "{what}: {err}");
    }
    assert_eq!(Reason::Unknown.code(), 500);
}

#[test]
fn lists_of_lists_are_unprocessable() {
    let live = json!({"metadata": {"finalizers": []}});
    let err = apply_patch(
        PatchType::Strategic,
        &live,
        br#"{"metadata":{"finalizers":[["a"]]}}"#,
        Some(&testdata::pod()),
    )
    .unwrap_err();
    assert_eq!(err.reason(), Reason::Invalid);
    assert_eq!(err.to_string(), "lists of lists are not supported");
}

#[test]
fn live_object_must_be_an_object() {
    let err = apply_patch(PatchType::Strategic, &json!([1]), b"{}", None).unwrap_err();
    assert_eq!(err.reason(), Reason::BadRequest);
    assert_eq!(err.to_string(), "invalid JSON document");
}

/// The `MergeItem` type of apimachinery's strategic merge patch tests.
fn merge_item() -> SchemaNode {
    let mut item = SchemaNode::object([
        ("name", SchemaNode::scalar()),
        ("value", SchemaNode::scalar()),
        ("other", SchemaNode::scalar()),
        (
            "nonMergingList",
            SchemaNode::atomic_list(SchemaNode::scalar()),
        ),
        ("mergingIntList", SchemaNode::set_list()),
        (
            "nonMergingIntList",
            SchemaNode::atomic_list(SchemaNode::scalar()),
        ),
        ("simpleMap", SchemaNode::map_of(SchemaNode::scalar())),
    ]);
    let nested = item.clone();
    item.properties.insert(
        "mergingList".into(),
        SchemaNode::keyed_list(nested.clone(), "name", &["name"]),
    );
    item.properties.insert(
        "retainKeysMergingList".into(),
        SchemaNode::keyed_list(nested.clone(), "name", &["name"])
            .with_patch_strategy("merge,retainKeys"),
    );
    item.properties.insert(
        "retainKeysMap".into(),
        nested.with_patch_strategy("retainKeys"),
    );
    item
}

#[test]
fn apimachinery_cases() {
    // (description, original, patch, expected result)
    let cases: Vec<(&str, Value, Value, Value)> = vec![
        (
            "unique scalars when merging lists",
            json!({"mergingIntList": [1, 2]}),
            json!({"mergingIntList": [2, 3]}),
            json!({"mergingIntList": [1, 2, 3]}),
        ),
        (
            "delete map from nested map",
            json!({"simpleMap": {"key1": 1, "key2": 1}}),
            json!({"simpleMap": {"$patch": "delete"}}),
            json!({"simpleMap": {}}),
        ),
        (
            "delete all items from merging list",
            json!({"mergingList": [{"name": 1}, {"name": 2}]}),
            json!({"mergingList": [{"$patch": "replace"}]}),
            json!({"mergingList": []}),
        ),
        (
            "merge empty merging lists",
            json!({"mergingList": []}),
            json!({"mergingList": []}),
            json!({"mergingList": []}),
        ),
        (
            "delete all keys from map",
            json!({"name": 1, "value": 1}),
            json!({"$patch": "replace"}),
            json!({}),
        ),
        (
            "add key and delete all keys from map",
            json!({"name": 1, "value": 1}),
            json!({"other": "a", "$patch": "replace"}),
            json!({"other": "a"}),
        ),
        (
            "delete all duplicate entries in a merging list",
            json!({"mergingList": [{"name": 1}, {"name": 1}, {"name": 2, "value": "a"}, {"name": 3}, {"name": 3}]}),
            json!({"mergingList": [{"name": 1, "$patch": "delete"}, {"name": 3, "$patch": "delete"}]}),
            json!({"mergingList": [{"name": 2, "value": "a"}]}),
        ),
        (
            "retainKeys map merges an empty map",
            json!({"retainKeysMap": {"name": "foo", "value": "a"}}),
            json!({"retainKeysMap": {}}),
            json!({"retainKeysMap": {"name": "foo", "value": "a"}}),
        ),
        (
            "retainKeys list can delete a field without directive",
            json!({"retainKeysMergingList": [{"name": "bar"}, {"name": "foo", "value": "a"}]}),
            json!({"retainKeysMergingList": [{"name": "foo", "value": null}]}),
            json!({"retainKeysMergingList": [{"name": "bar"}, {"name": "foo"}]}),
        ),
        (
            "preserve the order from the patch in a merging list",
            json!({"mergingList": [{"name": 1}, {"name": 2, "value": "b"}, {"name": 3}]}),
            json!({"mergingList": [{"name": 3, "value": "c"}, {"name": 1, "value": "a"}, {"name": 2, "other": "x"}]}),
            json!({"mergingList": [{"name": 3, "value": "c"}, {"name": 1, "value": "a"}, {"name": 2, "value": "b", "other": "x"}]}),
        ),
        (
            "preserve the order from the patch in a merging list 2",
            json!({"mergingList": [{"name": 1}, {"name": 2, "value": "b"}, {"name": 3}]}),
            json!({"mergingList": [{"name": 3, "value": "c"}, {"name": 1, "value": "a"}]}),
            json!({"mergingList": [{"name": 2, "value": "b"}, {"name": 3, "value": "c"}, {"name": 1, "value": "a"}]}),
        ),
        (
            "preserve the order in a merging int list",
            json!({"mergingIntList": [1, 2, 3]}),
            json!({"mergingIntList": [3, 1, 2]}),
            json!({"mergingIntList": [3, 1, 2]}),
        ),
        (
            "preserve the order in a merging int list 2",
            json!({"mergingIntList": [1, 2, 3]}),
            json!({"mergingIntList": [3, 1]}),
            json!({"mergingIntList": [2, 3, 1]}),
        ),
        (
            "$setElementOrder with an item missing from the list",
            json!({"mergingList": [{"name": 1}, {"name": 3}]}),
            json!({"$setElementOrder/mergingList": [{"name": 3}, {"name": 2}, {"name": 1}], "mergingList": [{"name": 3, "value": 3}, {"name": 1, "value": 1}]}),
            json!({"mergingList": [{"name": 3, "value": 3}, {"name": 1, "value": 1}]}),
        ),
        (
            "$setElementOrder alone reorders an int list",
            json!({"mergingIntList": [1, 3]}),
            json!({"$setElementOrder/mergingIntList": [3, 2, 1]}),
            json!({"mergingIntList": [3, 1]}),
        ),
        (
            "deleting a missing scalar adds nothing",
            json!({"mergingIntList": [1, 2]}),
            json!({"$deleteFromPrimitiveList/mergingIntList": [3]}),
            json!({"mergingIntList": [1, 2]}),
        ),
        (
            "deleting from a null list keeps it null",
            json!({"mergingIntList": null}),
            json!({"$deleteFromPrimitiveList/mergingIntList": [3]}),
            json!({"mergingIntList": null}),
        ),
        (
            "deleting from an absent list adds none",
            json!({"foo": ["bar"]}),
            json!({"$deleteFromPrimitiveList/mergingIntList": [3]}),
            json!({"foo": ["bar"]}),
        ),
        (
            "deleting from a merging list",
            json!({"mergingIntList": [1, 2, 3]}),
            json!({"$deleteFromPrimitiveList/mergingIntList": [2]}),
            json!({"mergingIntList": [1, 3]}),
        ),
        (
            "deleting from a non-merging list",
            json!({"nonMergingIntList": [1, 2, 3]}),
            json!({"$deleteFromPrimitiveList/nonMergingIntList": [2]}),
            json!({"nonMergingIntList": [1, 3]}),
        ),
        // Three-way patches (what kubectl apply sends) applied to the live object.
        (
            "nested patch merge with empty list",
            json!({"name": "hi", "mergingList": [{"name": "hello2"}]}),
            json!({"$setElementOrder/mergingList": [{"name": "hello"}, {"name": "doesntexist"}],
                   "mergingList": [{"name": "hello"}, {"$patch": "delete", "name": "doesntexist"}]}),
            json!({"name": "hi", "mergingList": [{"name": "hello"}, {"name": "hello2"}]}),
        ),
        (
            "delete items in lists of scalars",
            json!({"mergingIntList": [1, 2, 3, 4]}),
            json!({"$setElementOrder/mergingIntList": [1, 2], "$deleteFromPrimitiveList/mergingIntList": [3]}),
            json!({"mergingIntList": [1, 2, 4]}),
        ),
        (
            "delete all duplicate items in lists of scalars",
            json!({"mergingIntList": [1, 2, 3, 3, 4]}),
            json!({"$setElementOrder/mergingIntList": [1, 2], "$deleteFromPrimitiveList/mergingIntList": [3]}),
            json!({"mergingIntList": [1, 2, 4]}),
        ),
        (
            "merge lists of maps",
            json!({"mergingList": [{"name": 1, "other": "a"}, {"name": 2, "value": 2, "other": "b"}]}),
            json!({"$setElementOrder/mergingList": [{"name": 4}, {"name": 1}, {"name": 2}, {"name": 3}],
                   "mergingList": [{"name": 4, "value": 4}, {"name": 3, "value": 3}]}),
            json!({"mergingList": [{"name": 4, "value": 4}, {"name": 1, "other": "a"}, {"name": 2, "value": 2, "other": "b"}, {"name": 3, "value": 3}]}),
        ),
        (
            "defined nulls remove current fields",
            json!({"name": "original-name", "value": "original-value", "other": "current-other"}),
            json!({"name": "modified-name", "value": null}),
            json!({"name": "modified-name", "other": "current-other"}),
        ),
    ];
    let info = merge_item();
    for (what, original, patch, want) in cases {
        let got = smp(&original, &patch, &info).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(got, want, "{what}");
    }
    let errors: Vec<(&str, Value, Value, &str)> = vec![
        (
            "order in $setElementOrder and patch list must match",
            json!({"mergingList": [{"name": 1}, {"name": 3}, {"name": 2}]}),
            json!({"$setElementOrder/mergingList": [{"name": 1}, {"name": 2}, {"name": 3}], "mergingList": [{"name": 3, "value": 3}, {"name": 1, "value": 1}]}),
            "doesn't match",
        ),
        (
            "int order must match",
            json!({"mergingIntList": [1, 3, 2]}),
            json!({"$setElementOrder/mergingIntList": [1, 2, 3], "mergingIntList": [3, 1]}),
            "doesn't match",
        ),
        (
            "missing merge key",
            json!({"mergingList": [{"name": 1, "value": "a"}]}),
            json!({"mergingList": [{"value": "b"}]}),
            "does not contain declared merge key",
        ),
    ];
    for (what, original, patch, text) in errors {
        let err = smp(&original, &patch, &info).unwrap_err();
        assert!(err.to_string().contains(text), "{what}: {err}");
    }
}
