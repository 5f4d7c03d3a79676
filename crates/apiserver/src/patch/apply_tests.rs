//! Server-side apply and update bookkeeping: ownership across managers, conflicts,
//! force, removal of dropped fields, and the exact `managedFields` Kubernetes writes.

use serde_json::{Value, json};

use super::testdata;
use super::{
    ApplyError, Manager, MergeInfo, Path, Reason, SchemaNode, server_side_apply, track_update,
};

const T1: &str = "2026-01-01T00:00:00Z";
const T2: &str = "2026-01-02T00:00:00Z";

fn mgr(name: &'static str, now: &'static str) -> Manager<'static> {
    Manager {
        name,
        api_version: "apps/v1",
        subresource: None,
        now,
        ignored_fields: &[],
    }
}

fn apply(
    live: Option<&Value>,
    config: &Value,
    m: &Manager<'_>,
    force: bool,
    info: &SchemaNode,
) -> Result<Value, ApplyError> {
    server_side_apply(
        live,
        config.to_string().as_bytes(),
        m,
        force,
        Some(info as &dyn MergeInfo),
    )
}

fn entry<'a>(object: &'a Value, manager: &str, operation: &str) -> Option<&'a Value> {
    object["metadata"]["managedFields"]
        .as_array()?
        .iter()
        .find(|e| e["manager"] == manager && e["operation"] == operation)
}

fn fields<'a>(object: &'a Value, manager: &str, operation: &str) -> &'a Value {
    &entry(object, manager, operation)
        .unwrap_or_else(|| panic!("no {operation} entry for {manager}: {object}"))["fieldsV1"]
}

fn deployment_config(replicas: u64, image: &str) -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "labels": {"app": "web"}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "nginx", "image": image, "ports": [{"containerPort": 80}]}]}
            }
        }
    })
}

#[test]
fn create_by_apply_records_kubernetes_fields_v1() {
    let info = testdata::deployment();
    let object = apply(
        None,
        &deployment_config(2, "nginx:1"),
        &mgr("kubectl", T1),
        false,
        &info,
    )
    .unwrap();
    assert_eq!(object["spec"]["replicas"], 2);
    let managed = object["metadata"]["managedFields"].as_array().unwrap();
    assert_eq!(managed.len(), 1);
    let e = &managed[0];
    assert_eq!(
        serde_json::to_string(&json!({"manager": e["manager"], "operation": e["operation"], "apiVersion": e["apiVersion"], "time": e["time"], "fieldsType": e["fieldsType"]})).unwrap(),
        r#"{"apiVersion":"apps/v1","fieldsType":"FieldsV1","manager":"kubectl","operation":"Apply","time":"2026-01-01T00:00:00Z"}"#
    );
    assert_eq!(
        e["fieldsV1"],
        json!({
            "f:metadata": {"f:labels": {"f:app": {}}},
            "f:spec": {
                "f:replicas": {},
                "f:selector": {},
                "f:template": {
                    "f:metadata": {"f:labels": {"f:app": {}}},
                    "f:spec": {"f:containers": {"k:{\"name\":\"nginx\"}": {
                        ".": {}, "f:image": {}, "f:name": {},
                        "f:ports": {"k:{\"containerPort\":80,\"protocol\":\"TCP\"}": {".": {}, "f:containerPort": {}}}
                    }}}
                }
            }
        })
    );
    // Entry keys in Kubernetes' order.
    let keys: Vec<&String> = e.as_object().unwrap().keys().collect();
    let mut expected = vec![
        "manager",
        "operation",
        "apiVersion",
        "time",
        "fieldsType",
        "fieldsV1",
    ];
    if keys.first().map(|k| k.as_str()) == Some("apiVersion") {
        // serde_json without preserve_order sorts keys; the set of keys is what matters.
        expected.sort_unstable();
    }
    assert_eq!(keys, expected);
}

#[test]
fn two_appliers_conflict_and_force() {
    let info = testdata::deployment();
    let live = apply(
        None,
        &deployment_config(2, "nginx:1"),
        &mgr("alice", T1),
        false,
        &info,
    )
    .unwrap();

    // Bob sets a label alice does not manage: no conflict, both own their fields.
    let bob_labels = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "labels": {"team": "b"}}});
    let live = apply(Some(&live), &bob_labels, &mgr("bob", T2), false, &info).unwrap();
    assert_eq!(
        live["metadata"]["labels"],
        json!({"app": "web", "team": "b"})
    );
    assert_eq!(
        fields(&live, "bob", "Apply"),
        &json!({"f:metadata": {"f:labels": {"f:team": {}}}})
    );

    // Bob applying the same replicas alice set is shared ownership, not a conflict.
    let same = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "labels": {"team": "b"}}, "spec": {"replicas": 2}});
    let shared = apply(Some(&live), &same, &mgr("bob", T2), false, &info).unwrap();
    assert_eq!(
        fields(&shared, "bob", "Apply")["f:spec"],
        json!({"f:replicas": {}})
    );
    assert_eq!(
        fields(&shared, "alice", "Apply")["f:spec"]["f:replicas"],
        json!({})
    );

    // A different value is a conflict.
    let other = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "labels": {"team": "b"}}, "spec": {"replicas": 5}});
    let err = apply(Some(&live), &other, &mgr("bob", T2), false, &info).unwrap_err();
    assert_eq!(err.reason(), Reason::Conflict);
    assert_eq!(err.reason().code(), 409);
    assert_eq!(
        err.to_string(),
        "Apply failed with 1 conflict: conflict with \"alice\": .spec.replicas"
    );
    assert_eq!(
        err.conflicts()[0].cause_message(),
        "conflict with \"alice\""
    );
    assert_eq!(err.conflicts()[0].cause_field(), ".spec.replicas");

    // Forced, bob takes the field from alice.
    let forced = apply(Some(&live), &other, &mgr("bob", T2), true, &info).unwrap();
    assert_eq!(forced["spec"]["replicas"], 5);
    assert_eq!(
        fields(&forced, "bob", "Apply")["f:spec"],
        json!({"f:replicas": {}})
    );
    assert!(
        fields(&forced, "alice", "Apply")["f:spec"]
            .get("f:replicas")
            .is_none()
    );

    // Alice re-applying her old value now conflicts with bob.
    let err = apply(
        Some(&forced),
        &deployment_config(2, "nginx:1"),
        &mgr("alice", T2),
        false,
        &info,
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "Apply failed with 1 conflict: conflict with \"bob\": .spec.replicas"
    );
}

#[test]
fn conflicts_with_an_updater_list_every_field() {
    let info = testdata::deployment();
    let created = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {"replicas": 1, "template": {"spec": {"containers": [{"name": "nginx", "image": "nginx:1"}]}}}
    });
    let live = track_update(
        None,
        &created,
        &mgr("kubectl-client-side-apply", T1),
        Some(&info),
    );
    let config = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {"replicas": 3, "template": {"spec": {"containers": [{"name": "nginx", "image": "nginx:2"}]}}}
    });
    let err = apply(Some(&live), &config, &mgr("ci", T2), false, &info).unwrap_err();
    assert_eq!(
        err.to_string(),
        "Apply failed with 2 conflicts: conflicts with \"kubectl-client-side-apply\" using apps/v1:\n\
         - .spec.replicas\n\
         - .spec.template.spec.containers[name=\"nginx\"].image"
    );
    let causes: Vec<(String, String)> = err
        .conflicts()
        .iter()
        .map(|c| (c.cause_message(), c.cause_field()))
        .collect();
    assert_eq!(
        causes,
        vec![
            (
                "conflict with \"kubectl-client-side-apply\" using apps/v1".to_owned(),
                ".spec.replicas".to_owned()
            ),
            (
                "conflict with \"kubectl-client-side-apply\" using apps/v1".to_owned(),
                ".spec.template.spec.containers[name=\"nginx\"].image".to_owned()
            ),
        ]
    );
}

#[test]
fn fields_dropped_from_the_config_are_removed_unless_owned_elsewhere() {
    let info = testdata::deployment();
    let with_tier = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "labels": {"app": "web", "tier": "fe"}, "annotations": {"a": "1"}}});
    let live = apply(None, &with_tier, &mgr("alice", T1), false, &info).unwrap();

    let without = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "labels": {"app": "web"}}});
    let pruned = apply(Some(&live), &without, &mgr("alice", T2), false, &info).unwrap();
    assert_eq!(pruned["metadata"]["labels"], json!({"app": "web"}));
    assert!(pruned["metadata"].get("annotations").is_none(), "{pruned}");
    assert_eq!(
        fields(&pruned, "alice", "Apply"),
        &json!({"f:metadata": {"f:labels": {"f:app": {}}}})
    );

    // If bob also applies tier, alice dropping it keeps it.
    let bob = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "labels": {"tier": "fe"}}});
    let shared = apply(Some(&live), &bob, &mgr("bob", T1), false, &info).unwrap();
    let kept = apply(Some(&shared), &without, &mgr("alice", T2), false, &info).unwrap();
    assert_eq!(
        kept["metadata"]["labels"],
        json!({"app": "web", "tier": "fe"})
    );

    // Fields an updater set are never removed by an applier's change of mind.
    let updated = track_update(
        Some(&live),
        &{
            let mut v = live.clone();
            v["metadata"]["labels"]["tier"] = json!("be");
            v
        },
        &mgr("kubectl-label", T2),
        Some(&info),
    );
    let kept = apply(Some(&updated), &without, &mgr("alice", T2), false, &info).unwrap();
    assert_eq!(
        kept["metadata"]["labels"],
        json!({"app": "web", "tier": "be"})
    );
}

#[test]
fn list_items_are_owned_by_key() {
    let info = testdata::deployment();
    let containers = |items: Value| {
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
               "spec": {"template": {"spec": {"containers": items}}}})
    };
    let live = apply(
        None,
        &containers(json!([{"name": "app", "image": "a:1"}])),
        &mgr("alice", T1),
        false,
        &info,
    )
    .unwrap();
    let live = apply(
        Some(&live),
        &containers(json!([{"name": "log", "image": "l:1"}])),
        &mgr("bob", T1),
        false,
        &info,
    )
    .unwrap();
    assert_eq!(
        live["spec"]["template"]["spec"]["containers"],
        json!([{"name": "app", "image": "a:1"}, {"name": "log", "image": "l:1"}])
    );
    // Alice changes her container and drops nothing of bob's.
    let live = apply(
        Some(&live),
        &containers(json!([{"name": "app", "image": "a:2"}])),
        &mgr("alice", T2),
        false,
        &info,
    )
    .unwrap();
    assert_eq!(
        live["spec"]["template"]["spec"]["containers"],
        json!([{"name": "app", "image": "a:2"}, {"name": "log", "image": "l:1"}])
    );
    // Bob removes his container: it goes, alice's stays.
    let live = apply(
        Some(&live),
        &containers(json!([])),
        &mgr("bob", T2),
        false,
        &info,
    )
    .unwrap();
    assert_eq!(
        live["spec"]["template"]["spec"]["containers"],
        json!([{"name": "app", "image": "a:2"}])
    );
    assert!(
        entry(&live, "bob", "Apply").is_none(),
        "bob owns nothing left: {live}"
    );
}

#[test]
fn set_items_are_owned_by_value() {
    let info = testdata::pod();
    let fin = |items: Value| json!({"apiVersion": "apps/v1", "kind": "Pod", "metadata": {"name": "p", "finalizers": items}});
    let live = apply(
        None,
        &fin(json!(["a.io/x"])),
        &mgr("alice", T1),
        false,
        &info,
    )
    .unwrap();
    let live = apply(
        Some(&live),
        &fin(json!(["b.io/y"])),
        &mgr("bob", T1),
        false,
        &info,
    )
    .unwrap();
    assert_eq!(live["metadata"]["finalizers"], json!(["a.io/x", "b.io/y"]));
    assert_eq!(
        fields(&live, "bob", "Apply"),
        &json!({"f:metadata": {"f:finalizers": {"v:\"b.io/y\"": {}}}})
    );
    let live = apply(
        Some(&live),
        &fin(json!([])),
        &mgr("alice", T2),
        false,
        &info,
    )
    .unwrap();
    assert_eq!(live["metadata"]["finalizers"], json!(["b.io/y"]));
}

#[test]
fn atomic_fields_are_replaced_and_owned_whole() {
    let info = testdata::deployment();
    let sel = |labels: Value| json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "w"}, "spec": {"selector": {"matchLabels": labels}}});
    let live = apply(
        None,
        &sel(json!({"a": "1", "b": "2"})),
        &mgr("alice", T1),
        false,
        &info,
    )
    .unwrap();
    let live = apply(
        Some(&live),
        &sel(json!({"c": "3"})),
        &mgr("alice", T2),
        false,
        &info,
    )
    .unwrap();
    assert_eq!(live["spec"]["selector"], json!({"matchLabels": {"c": "3"}}));
    assert_eq!(
        fields(&live, "alice", "Apply"),
        &json!({"f:spec": {"f:selector": {}}})
    );
}

#[test]
fn untyped_values_merge_maps_and_replace_lists() {
    let info = SchemaNode::default();
    let cr = |spec: Value| json!({"apiVersion": "apps/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": spec});
    let live = apply(
        None,
        &cr(json!({"a": {"b": 1}, "l": [1, 2]})),
        &mgr("alice", T1),
        false,
        &info,
    )
    .unwrap();
    assert_eq!(
        fields(&live, "alice", "Apply"),
        &json!({"f:spec": {".": {}, "f:a": {".": {}, "f:b": {}}, "f:l": {}}})
    );
    let live = apply(
        Some(&live),
        &cr(json!({"a": {"c": 2}, "l": [3]})),
        &mgr("bob", T1),
        true,
        &info,
    )
    .unwrap();
    assert_eq!(live["spec"], json!({"a": {"b": 1, "c": 2}, "l": [3]}));
}

#[test]
fn no_op_apply_keeps_the_time() {
    let info = testdata::deployment();
    let live = apply(
        None,
        &deployment_config(1, "n:1"),
        &mgr("alice", T1),
        false,
        &info,
    )
    .unwrap();
    let again = apply(
        Some(&live),
        &deployment_config(1, "n:1"),
        &mgr("alice", T2),
        false,
        &info,
    )
    .unwrap();
    assert_eq!(again, live);
    let changed = apply(
        Some(&live),
        &deployment_config(2, "n:1"),
        &mgr("alice", T2),
        false,
        &info,
    )
    .unwrap();
    assert_eq!(entry(&changed, "alice", "Apply").unwrap()["time"], T2);
}

#[test]
fn yaml_bodies_and_nulls() {
    let info = testdata::deployment();
    let body = b"apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  labels:\n    app: web\n    gone: null\nspec:\n  replicas: 3\n";
    let object = server_side_apply(None, body, &mgr("kubectl", T1), false, Some(&info)).unwrap();
    assert_eq!(object["spec"]["replicas"], 3);
    assert_eq!(object["metadata"]["labels"], json!({"app": "web"}));
}

#[test]
fn apply_errors() {
    let info = testdata::deployment();
    let cases: Vec<(&[u8], Reason, &str)> = vec![
        (b"apiVersion: [unclosed", Reason::BadRequest, "error decoding YAML"),
        (b"- 1\n- 2\n", Reason::BadRequest, "cannot unmarshal array into Go value of type map[string]interface {}"),
        (
            br#"{"apiVersion":"apps/v2","kind":"Deployment"}"#,
            Reason::BadRequest,
            "Incorrect version specified in apply patch. Specified patch version: apps/v2, expected: apps/v1",
        ),
        (b"", Reason::BadRequest, "Specified patch version: , expected: apps/v1"),
        (
            br#"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"managedFields":[{"manager":"x"}]}}"#,
            Reason::BadRequest,
            "metadata.managedFields must be nil",
        ),
        (
            br#"{"apiVersion":"apps/v1","kind":"Deployment","spec":{"template":{"spec":{"containers":[{"image":"x"}]}}}}"#,
            Reason::Unknown,
            "associative list with keys has an element that omits key field \"name\"",
        ),
        (
            br#"{"apiVersion":"apps/v1","kind":"Deployment","spec":{"template":{"spec":{"containers":[{"name":"a"},{"name":"a"}]}}}}"#,
            Reason::Unknown,
            "duplicate entries for key [name=\"a\"]",
        ),
    ];
    for (body, reason, text) in cases {
        let err = server_side_apply(None, body, &mgr("m", T1), false, Some(&info)).unwrap_err();
        assert_eq!(
            err.reason(),
            reason,
            "{}: {err}",
            String::from_utf8_lossy(body)
        );
        assert!(
            err.to_string().contains(text),
            "{}: {err}",
            String::from_utf8_lossy(body)
        );
    }
    let live = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}});
    let err = server_side_apply(
        Some(&live),
        br#"{"apiVersion":"apps/v1","kind":"StatefulSet"}"#,
        &mgr("m", T1),
        false,
        Some(&info),
    )
    .unwrap_err();
    assert_eq!(err.reason(), Reason::BadRequest);
}

#[test]
fn ignored_fields_are_never_owned() {
    let info = testdata::deployment();
    let status = [Path::fields(&["status"])];
    let m = Manager {
        ignored_fields: &status,
        ..mgr("alice", T1)
    };
    let config = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "w"}, "spec": {"replicas": 1}, "status": {"replicas": 9}});
    let object = apply(None, &config, &m, false, &info).unwrap();
    assert_eq!(
        fields(&object, "alice", "Apply"),
        &json!({"f:spec": {"f:replicas": {}}})
    );
}

#[test]
fn kubectl_moves_from_client_side_apply_without_conflicts() {
    let info = testdata::deployment();
    let last = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}, "spec": {"replicas": 1}});
    let created = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "annotations": {"kubectl.kubernetes.io/last-applied-configuration": last.to_string()}},
        "spec": {"replicas": 1}
    });
    let live = track_update(
        None,
        &created,
        &mgr("kubectl-client-side-apply", T1),
        Some(&info),
    );
    let config = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}, "spec": {"replicas": 4}});

    // Another manager conflicts...
    assert!(apply(Some(&live), &config, &mgr("other", T2), false, &info).is_err());
    // ...kubectl takes over the fields of its own last-applied configuration.
    let object = apply(Some(&live), &config, &mgr("kubectl", T2), false, &info).unwrap();
    assert_eq!(object["spec"]["replicas"], 4);
    let annotation =
        object["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"]
            .as_str()
            .unwrap();
    assert_eq!(serde_json::from_str::<Value>(annotation).unwrap(), config);
    assert_eq!(
        fields(&object, "kubectl", "Apply"),
        &json!({"f:spec": {"f:replicas": {}}})
    );
}

#[test]
fn objects_without_managed_fields_are_credited_before_first_apply() {
    let info = testdata::deployment();
    let live = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}, "spec": {"replicas": 1}});
    let config = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}, "spec": {"replicas": 2}});
    let err = apply(Some(&live), &config, &mgr("ci", T1), false, &info).unwrap_err();
    assert_eq!(
        err.to_string(),
        "Apply failed with 1 conflict: conflict with \"before-first-apply\" using apps/v1: .spec.replicas"
    );
}

#[test]
fn updates_take_changed_fields_and_release_removed_ones() {
    let info = testdata::deployment();
    let created = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "labels": {"app": "web", "tier": "fe"}, "resourceVersion": "1", "uid": "u"},
        "spec": {"replicas": 1}
    });
    let live = track_update(None, &created, &mgr("kubectl-create", T1), Some(&info));
    assert_eq!(
        fields(&live, "kubectl-create", "Update"),
        &json!({"f:metadata": {"f:labels": {".": {}, "f:app": {}, "f:tier": {}}}, "f:spec": {".": {}, "f:replicas": {}}})
    );
    assert_eq!(
        entry(&live, "kubectl-create", "Update").unwrap()["time"],
        T1
    );

    // A scale by another manager moves replicas; removing a label releases it.
    let mut next = live.clone();
    next["spec"]["replicas"] = json!(3);
    next["metadata"]["resourceVersion"] = json!("2");
    super::strategic::remove_key(next["metadata"]["labels"].as_object_mut().unwrap(), "tier");
    next["metadata"]["managedFields"] = Value::Null;
    let updated = track_update(Some(&live), &next, &mgr("kubectl-scale", T2), Some(&info));
    assert_eq!(
        fields(&updated, "kubectl-scale", "Update"),
        &json!({"f:spec": {"f:replicas": {}}})
    );
    assert_eq!(
        fields(&updated, "kubectl-create", "Update"),
        &json!({"f:metadata": {"f:labels": {".": {}, "f:app": {}}}, "f:spec": {}})
    );
    // Entries are sorted: Apply first, then by time.
    let managers: Vec<&str> = updated["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["manager"].as_str().unwrap())
        .collect();
    assert_eq!(managers, ["kubectl-create", "kubectl-scale"]);

    // A write that changes nothing leaves managed fields (and times) alone.
    let same = track_update(Some(&updated), &updated, &mgr("noop", T2), Some(&info));
    assert_eq!(same, updated);
}

#[test]
fn clients_may_set_or_reset_managed_fields() {
    let info = testdata::deployment();
    let live = track_update(
        None,
        &json!({"metadata": {"name": "w"}, "spec": {"replicas": 1}}),
        &mgr("a", T1),
        Some(&info),
    );
    // Writes that carry managedFields keep them; stale ones elsewhere are replaced.
    let custom = json!([{"manager": "z", "operation": "Apply", "apiVersion": "apps/v1", "fieldsType": "FieldsV1",
                         "fieldsV1": {"f:spec": {"f:replicas": {}}}}]);
    let mut next = live.clone();
    next["metadata"]["managedFields"] = custom.clone();
    let kept = track_update(Some(&live), &next, &mgr("b", T2), Some(&info));
    assert_eq!(kept["metadata"]["managedFields"], custom);
    // `[{}]` clears them.
    next["metadata"]["managedFields"] = json!([{}]);
    let reset = track_update(Some(&live), &next, &mgr("b", T2), Some(&info));
    assert!(reset["metadata"].get("managedFields").is_none());
    // Unreadable ones fall back to the stored object's.
    next["metadata"]["managedFields"] = json!([{"manager": "x", "operation": "Bogus"}]);
    let fallback = track_update(Some(&live), &next, &mgr("b", T2), Some(&info));
    assert_eq!(
        fallback["metadata"]["managedFields"],
        live["metadata"]["managedFields"]
    );
    // Subresource writes cannot set them.
    next["metadata"]["managedFields"] = custom;
    let status = Manager {
        subresource: Some("status"),
        ..mgr("b", T2)
    };
    let sub = track_update(Some(&live), &next, &status, Some(&info));
    assert_eq!(
        sub["metadata"]["managedFields"],
        live["metadata"]["managedFields"]
    );
}

#[test]
fn managed_fields_round_trip() {
    let info = testdata::deployment();
    let live = apply(
        None,
        &deployment_config(2, "nginx:1"),
        &mgr("alice", T1),
        false,
        &info,
    )
    .unwrap();
    let mut next = live.clone();
    next["spec"]["replicas"] = json!(7);
    let live = track_update(
        Some(&live),
        &next,
        &Manager {
            subresource: Some("scale"),
            ..mgr("hpa", T2)
        },
        Some(&info),
    );
    let decoded = super::managed::decode(&live).unwrap();
    assert_eq!(decoded.len(), 2);
    assert_eq!(decoded[1].subresource.as_deref(), Some("scale"));
    let mut reencoded = live.clone();
    super::managed::encode(&mut reencoded, decoded);
    assert_eq!(reencoded, live);
    assert_eq!(
        entry(&live, "hpa", "Update").unwrap()["subresource"],
        "scale"
    );
}

#[test]
fn unreadable_objects_lose_managed_fields_instead_of_failing() {
    let info = testdata::deployment();
    let bad = json!({"metadata": {"name": "w"}, "spec": {"template": {"spec": {"containers": [{"image": "no-name"}]}}}});
    let object = track_update(None, &bad, &mgr("a", T1), Some(&info));
    assert!(object["metadata"].get("managedFields").is_none());
    assert_eq!(object["spec"], bad["spec"]);
}

#[test]
fn old_updaters_merge_into_ancient_changes() {
    let info = testdata::deployment();
    let times: Vec<String> = (0..12)
        .map(|i| format!("2026-01-01T00:00:{i:02}Z"))
        .collect();
    let names: Vec<String> = (0..12).map(|i| format!("writer-{i:02}")).collect();
    let mut live = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "w", "labels": {}}});
    for i in 0..12 {
        let mut next = live.clone();
        next["metadata"]["labels"][format!("l{i}")] = json!("x");
        let m = Manager {
            name: &names[i],
            now: &times[i],
            ..mgr("unused", T1)
        };
        live = track_update(Some(&live), &next, &m, Some(&info));
    }
    let entries = live["metadata"]["managedFields"].as_array().unwrap();
    assert_eq!(entries.len(), 10);
    let ancient = entry(&live, "ancient-changes", "Update").unwrap();
    assert_eq!(ancient["time"], "2026-01-01T00:00:02Z");
    assert_eq!(
        ancient["fieldsV1"],
        json!({"f:metadata": {"f:labels": {"f:l0": {}, "f:l1": {}, "f:l2": {}}}})
    );
    assert!(entry(&live, "writer-00", "Update").is_none());
    assert!(entry(&live, "writer-03", "Update").is_some());
}

#[test]
fn client_side_apply_patch_then_tracking() {
    // What `kubectl apply` (client-side) does to a Service: a strategic merge patch,
    // recorded for kubectl-client-side-apply.
    let info = testdata::service();
    let m = Manager {
        api_version: "v1",
        ..mgr("kubectl-client-side-apply", T1)
    };
    let created = json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "s"},
        "spec": {"ports": [{"name": "http", "port": 80, "protocol": "TCP"}], "selector": {"app": "s"}, "type": "ClusterIP"}
    });
    let live = track_update(None, &created, &m, Some(&info));
    let patch = json!({"spec": {
        "$setElementOrder/ports": [{"port": 80}, {"port": 443}],
        "ports": [{"name": "https", "port": 443, "protocol": "TCP"}]
    }});
    let patched = super::apply_patch(
        super::PatchType::Strategic,
        &live,
        patch.to_string().as_bytes(),
        Some(&info),
    )
    .unwrap();
    assert_eq!(
        patched["spec"]["ports"],
        json!([{"name": "http", "port": 80, "protocol": "TCP"}, {"name": "https", "port": 443, "protocol": "TCP"}])
    );
    let tracked = track_update(
        Some(&live),
        &patched,
        &Manager { now: T2, ..m },
        Some(&info),
    );
    let ports = &fields(&tracked, "kubectl-client-side-apply", "Update")["f:spec"]["f:ports"];
    assert_eq!(
        ports,
        &json!({
            ".": {},
            "k:{\"port\":80,\"protocol\":\"TCP\"}": {".": {}, "f:name": {}, "f:port": {}, "f:protocol": {}},
            "k:{\"port\":443,\"protocol\":\"TCP\"}": {".": {}, "f:name": {}, "f:port": {}, "f:protocol": {}}
        })
    );
    assert_eq!(
        entry(&tracked, "kubectl-client-side-apply", "Update").unwrap()["time"],
        T2
    );

    // A server-side applier changing the selector (atomic) conflicts on the whole map.
    let config = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"}, "spec": {"selector": {"app": "t"}}});
    let err = server_side_apply(
        Some(&tracked),
        config.to_string().as_bytes(),
        &Manager {
            api_version: "v1",
            ..mgr("ci", T2)
        },
        false,
        Some(&info),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "Apply failed with 1 conflict: conflict with \"kubectl-client-side-apply\" using v1: .spec.selector"
    );
}

#[test]
fn status_subresource_writers_are_separate_managers() {
    let info = testdata::deployment();
    let live = apply(
        None,
        &deployment_config(1, "n:1"),
        &mgr("kubectl", T1),
        false,
        &info,
    )
    .unwrap();
    let mut next = live.clone();
    next["status"] = json!({"replicas": 1});
    let spec = [Path::fields(&["spec"])];
    let controller = Manager {
        subresource: Some("status"),
        ignored_fields: &spec,
        ..mgr("kube-controller-manager", T2)
    };
    let updated = track_update(Some(&live), &next, &controller, Some(&info));
    let e = entry(&updated, "kube-controller-manager", "Update").unwrap();
    assert_eq!(e["subresource"], "status");
    assert_eq!(
        e["fieldsV1"],
        json!({"f:status": {".": {}, "f:replicas": {}}})
    );
    // The applier's fields are untouched.
    assert_eq!(
        fields(&updated, "kubectl", "Apply"),
        fields(&live, "kubectl", "Apply")
    );
}

#[test]
fn live_duplicates_survive_unless_applied() {
    let info = testdata::deployment();
    let env = |items: Value| {
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "w"},
               "spec": {"template": {"spec": {"containers": [{"name": "c", "env": items}]}}}})
    };
    let live = env(
        json!([{"name": "A", "value": "1"}, {"name": "B", "value": "x"}, {"name": "A", "value": "2"}]),
    );
    let live = track_update(None, &live, &mgr("legacy", T1), Some(&info));
    let envs = |o: &Value| o["spec"]["template"]["spec"]["containers"][0]["env"].clone();

    let other = apply(
        Some(&live),
        &env(json!([{"name": "C", "value": "3"}])),
        &mgr("alice", T2),
        true,
        &info,
    )
    .unwrap();
    assert_eq!(
        envs(&other),
        json!([{"name": "A", "value": "1"}, {"name": "B", "value": "x"}, {"name": "A", "value": "2"}, {"name": "C", "value": "3"}])
    );
    let fixed = apply(
        Some(&live),
        &env(json!([{"name": "A", "value": "9"}])),
        &mgr("alice", T2),
        true,
        &info,
    )
    .unwrap();
    assert_eq!(
        envs(&fixed),
        json!([{"name": "A", "value": "9"}, {"name": "B", "value": "x"}])
    );
}
