//! Unit tests of Table output.

use jiff::Timestamp;
use serde_json::{Value, json};

use super::custom::{CustomColumns, format_go_float};
use super::duration::human_duration;
use super::jsonpath::JsonPath;
use super::*;

fn now() -> Timestamp {
    "2024-05-10T12:00:00Z".parse().unwrap()
}

/// Creation time this long before `now`.
fn ago(seconds: i64) -> String {
    let t = now().as_second() - seconds;
    Timestamp::from_second(t).unwrap().to_string()
}

fn meta(name: &str, age_seconds: i64) -> Value {
    json!({"name": name, "namespace": "ns", "uid": "u1", "resourceVersion": "9", "creationTimestamp": ago(age_seconds)})
}

fn cells(group: &str, kind: &str, object: Value) -> Vec<Value> {
    let table = to_table(
        &Printer::for_kind(group, kind),
        &[object],
        &TableListMeta::default(),
        &TableOptions::default(),
        now(),
    );
    table["rows"][0]["cells"].as_array().unwrap().clone()
}

fn column_names(printer: &Printer) -> Vec<(String, i32)> {
    printer
        .columns()
        .into_iter()
        .map(|c| (c.name, c.priority))
        .collect()
}

#[test]
fn human_duration_matches_kubernetes() {
    const S: i128 = 1_000_000_000;
    let cases: &[(i128, &str)] = &[
        (0, "0s"),
        (-S - S / 2, "0s"),
        (-2 * S, "<invalid>"),
        (S / 2, "0s"),
        (119 * S, "119s"),
        (120 * S, "2m"),
        (200 * S, "3m20s"),
        (599 * S, "9m59s"),
        (600 * S, "10m"),
        (179 * 60 * S, "179m"),
        (3 * 3600 * S, "3h"),
        (3 * 3600 * S + 5 * 60 * S, "3h5m"),
        (7 * 3600 * S + 59 * 60 * S + 59 * S, "7h59m"),
        (8 * 3600 * S, "8h"),
        (47 * 3600 * S, "47h"),
        (48 * 3600 * S, "2d"),
        (51 * 3600 * S, "2d3h"),
        (191 * 3600 * S, "7d23h"),
        (8 * 24 * 3600 * S, "8d"),
        (729 * 24 * 3600 * S, "729d"),
        (730 * 24 * 3600 * S, "2y"),
        (731 * 24 * 3600 * S, "2y1d"),
        (8 * 365 * 24 * 3600 * S, "8y"),
        (20 * 365 * 24 * 3600 * S, "20y"),
    ];
    for (nanos, want) in cases {
        assert_eq!(human_duration(*nanos), *want, "{nanos}ns");
    }
}

#[test]
fn column_definitions_carry_types_priorities_and_docs() {
    let pod = Printer::for_kind("", "Pod");
    let names: Vec<(String, i32)> = column_names(&pod);
    let want = [
        ("Name", 0),
        ("Ready", 0),
        ("Status", 0),
        ("Restarts", 0),
        ("Age", 0),
        ("IP", 1),
        ("Node", 1),
        ("Nominated Node", 1),
        ("Readiness Gates", 1),
    ];
    assert_eq!(
        names,
        want.iter()
            .map(|(n, p)| (n.to_string(), *p))
            .collect::<Vec<_>>()
    );
    let cols = serde_json::to_value(pod.columns()).unwrap();
    assert_eq!(cols[0]["format"], "name");
    assert_eq!(cols[0]["type"], "string");
    assert!(
        cols[0]["description"]
            .as_str()
            .unwrap()
            .starts_with("Name must be unique within a namespace.")
    );
    assert!(
        cols[4]["description"]
            .as_str()
            .unwrap()
            .starts_with("CreationTimestamp is a timestamp")
    );
    assert_eq!(
        cols[3]["description"],
        "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted."
    );
    assert_eq!(cols[1]["format"], "");
    assert!(
        cols[5]["description"]
            .as_str()
            .unwrap()
            .starts_with("podIP address allocated to the pod.")
    );

    let event: Vec<String> = column_names(&Printer::for_kind("events.k8s.io", "Event"))
        .into_iter()
        .map(|c| c.0)
        .collect();
    assert_eq!(
        event,
        [
            "Last Seen",
            "Type",
            "Reason",
            "Object",
            "Subobject",
            "Source",
            "Message",
            "First Seen",
            "Count",
            "Name"
        ]
    );
    let svc: Vec<String> = column_names(&Printer::for_kind("", "Service"))
        .into_iter()
        .map(|c| c.0)
        .collect();
    assert_eq!(
        svc,
        [
            "Name",
            "Type",
            "Cluster-IP",
            "External-IP",
            "Port(s)",
            "Age",
            "Selector"
        ]
    );
    let role: Vec<(String, i32)> =
        column_names(&Printer::for_kind("rbac.authorization.k8s.io", "Role"));
    assert_eq!(
        role,
        vec![("Name".to_string(), 0), ("Created At".to_string(), 0)]
    );
    assert_eq!(
        Printer::for_kind("rbac.authorization.k8s.io", "Role").columns()[1].type_,
        "date"
    );
}

fn running_pod() -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod", "metadata": meta("web-1", 300),
        "spec": {"nodeName": "node-1", "containers": [{"name": "app"}]},
        "status": {
            "phase": "Running", "podIP": "10.0.0.5", "podIPs": [{"ip": "10.0.0.5"}],
            "conditions": [{"type": "Ready", "status": "True"}],
            "containerStatuses": [{"name": "app", "ready": true, "restartCount": 0, "state": {"running": {}}}]
        }
    })
}

#[test]
fn pod_cells() {
    assert_eq!(
        cells("", "Pod", running_pod()),
        vec![
            json!("web-1"),
            json!("1/1"),
            json!("Running"),
            json!("0"),
            json!("5m"),
            json!("10.0.0.5"),
            json!("node-1"),
            json!("<none>"),
            json!("<none>")
        ]
    );

    let mut crashing = running_pod();
    crashing["status"]["containerStatuses"] = json!([{
        "name": "app", "ready": false, "restartCount": 3,
        "state": {"waiting": {"reason": "CrashLoopBackOff"}},
        "lastState": {"terminated": {"exitCode": 1, "finishedAt": ago(125)}}
    }]);
    let c = cells("", "Pod", crashing);
    assert_eq!(
        &c[1..4],
        &[
            json!("0/1"),
            json!("CrashLoopBackOff"),
            json!("3 (2m5s ago)")
        ]
    );

    let mut pending = running_pod();
    pending["status"] = json!({"phase": "Pending"});
    pending["spec"]["nodeName"] = Value::Null;
    let c = cells("", "Pod", pending);
    assert_eq!(&c[1..3], &[json!("0/1"), json!("Pending")]);
    assert_eq!(&c[5..7], &[json!("<none>"), json!("<none>")]);

    let mut terminating = running_pod();
    terminating["metadata"]["deletionTimestamp"] = json!(ago(1));
    assert_eq!(cells("", "Pod", terminating)[2], json!("Terminating"));

    let mut init = running_pod();
    init["spec"]["initContainers"] = json!([{"name": "setup"}]);
    init["status"]["initContainerStatuses"] =
        json!([{"name": "setup", "ready": false, "restartCount": 0, "state": {"running": {}}}]);
    init["status"]["containerStatuses"] = json!([{"name": "app", "ready": false, "restartCount": 0, "state": {"waiting": {"reason": "PodInitializing"}}}]);
    assert_eq!(cells("", "Pod", init)[2], json!("Init:0/1"));

    let mut exit = running_pod();
    exit["status"]["containerStatuses"] = json!([{"name": "app", "ready": false, "restartCount": 0,
        "state": {"terminated": {"exitCode": 2}}}]);
    assert_eq!(cells("", "Pod", exit)[2], json!("ExitCode:2"));

    let mut gates = running_pod();
    gates["spec"]["readinessGates"] = json!([{"conditionType": "a"}, {"conditionType": "b"}]);
    gates["status"]["conditions"] =
        json!([{"type": "a", "status": "True"}, {"type": "b", "status": "False"}]);
    assert_eq!(cells("", "Pod", gates)[8], json!("1/2"));
}

#[test]
fn completed_pod_row_has_a_condition() {
    let mut done = running_pod();
    done["status"] = json!({"phase": "Succeeded", "containerStatuses": [{"name": "app", "ready": false, "restartCount": 0,
        "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}]});
    let table = to_table(
        &Printer::for_kind("", "Pod"),
        &[done],
        &TableListMeta::default(),
        &TableOptions::default(),
        now(),
    );
    assert_eq!(table["rows"][0]["cells"][2], "Completed");
    assert_eq!(
        table["rows"][0]["conditions"],
        json!([{"type": "Completed", "status": "True", "reason": "Succeeded", "message": "The pod has completed successfully."}])
    );
}

#[test]
fn service_cells() {
    let svc = |spec: Value| json!({"metadata": meta("web", 7200), "spec": spec});
    assert_eq!(
        cells(
            "",
            "Service",
            svc(
                json!({"type": "ClusterIP", "clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.10"],
            "selector": {"b": "2", "a": "1"},
            "ports": [{"port": 80, "protocol": "TCP"}, {"port": 443, "nodePort": 30443, "protocol": "TCP"}]})
            )
        ),
        vec![
            json!("web"),
            json!("ClusterIP"),
            json!("10.96.0.10"),
            json!("<none>"),
            json!("80/TCP,443:30443/TCP"),
            json!("120m"),
            json!("a=1,b=2")
        ]
    );
    let lb = cells(
        "",
        "Service",
        svc(
            json!({"type": "LoadBalancer", "clusterIPs": ["10.96.0.11"], "ports": [{"port": 80, "nodePort": 31000, "protocol": "TCP"}]}),
        ),
    );
    assert_eq!(&lb[3..5], &[json!("<pending>"), json!("80:31000/TCP")]);
    let lb_ready = cells("", "Service", svc(json!({"type": "LoadBalancer", "externalIPs": ["1.1.1.1"], "ports": []}))
        .as_object().map(|o| { let mut o = o.clone(); o.insert("status".into(), json!({"loadBalancer": {"ingress": [{"ip": "2.2.2.2"}, {"hostname": "lb.example"}]}})); Value::Object(o) }).unwrap());
    assert_eq!(
        &lb_ready[3..5],
        &[json!("2.2.2.2,lb.example,1.1.1.1"), json!("<none>")]
    );
    let ext = cells(
        "",
        "Service",
        svc(json!({"type": "ExternalName", "externalName": "db.example"})),
    );
    assert_eq!(
        &ext[1..7],
        &[
            json!("ExternalName"),
            json!("<none>"),
            json!("db.example"),
            json!("<none>"),
            json!("120m"),
            json!("<none>")
        ]
    );
    let headless = cells(
        "",
        "Service",
        svc(
            json!({"type": "ClusterIP", "clusterIP": "None", "clusterIPs": ["None"], "ports": [{"port": 53, "protocol": "UDP"}]}),
        ),
    );
    assert_eq!(
        &headless[2..5],
        &[json!("None"), json!("<none>"), json!("53/UDP")]
    );
}

#[test]
fn endpoints_cells_truncate_after_three() {
    let addrs = |ips: &[&str]| -> Value { ips.iter().map(|ip| json!({"ip": ip})).collect() };
    let ep = json!({"metadata": meta("web", 30), "subsets": [
        {"addresses": addrs(&["10.0.0.1", "10.0.0.2"]), "ports": [{"port": 80}, {"port": 443}]},
        {"addresses": addrs(&["fd00::1"]), "ports": [{"port": 8080}]}
    ]});
    assert_eq!(
        cells("", "Endpoints", ep),
        vec![
            json!("web"),
            json!("10.0.0.1:80,10.0.0.2:80,10.0.0.1:443 + 2 more..."),
            json!("30s")
        ]
    );
    let v6 = json!({"metadata": meta("web", 30), "subsets": [{"addresses": addrs(&["fd00::1"]), "ports": [{"port": 80}]}]});
    assert_eq!(cells("", "Endpoints", v6)[1], json!("[fd00::1]:80"));
    let headless = json!({"metadata": meta("web", 30), "subsets": [{"addresses": addrs(&["10.0.0.1", "10.0.0.2"])}]});
    assert_eq!(
        cells("", "Endpoints", headless)[1],
        json!("10.0.0.1,10.0.0.2")
    );
    let none = json!({"metadata": meta("web", 30)});
    assert_eq!(cells("", "Endpoints", none)[1], json!("<none>"));
    let only_not_ready = json!({"metadata": meta("web", 30), "subsets": [{"notReadyAddresses": addrs(&["10.0.0.1"]), "ports": [{"port": 80}]}]});
    assert_eq!(cells("", "Endpoints", only_not_ready)[1], json!(""));
}

#[test]
fn endpointslice_cells() {
    let slice = json!({"metadata": meta("web-abc", 30), "addressType": "IPv4",
        "ports": [{"port": 80, "name": "http"}, {"name": "named"}, {}, {"port": 9}],
        "endpoints": [{"addresses": ["10.0.0.1"]}, {"addresses": ["10.0.0.2", "10.0.0.3"]}, {"addresses": ["10.0.0.4"]}]});
    assert_eq!(
        cells("discovery.k8s.io", "EndpointSlice", slice),
        vec![
            json!("web-abc"),
            json!("IPv4"),
            json!("80,named,* + 1 more..."),
            json!("10.0.0.1,10.0.0.2,10.0.0.3 + 1 more..."),
            json!("30s")
        ]
    );
    let empty = json!({"metadata": meta("web-abc", 30), "addressType": "IPv4", "endpoints": []});
    assert_eq!(
        &cells("discovery.k8s.io", "EndpointSlice", empty)[2..4],
        &[json!("<unset>"), json!("<unset>")]
    );
}

#[test]
fn node_cells() {
    let node = json!({"metadata": {"name": "n1", "creationTimestamp": ago(3 * 86400),
            "labels": {"node-role.kubernetes.io/control-plane": "", "kubernetes.io/role": "worker", "node-role.kubernetes.io/": "x"}},
        "spec": {"unschedulable": true},
        "status": {"conditions": [{"type": "Ready", "status": "False"}],
            "addresses": [{"type": "InternalIP", "address": "192.168.1.2"}],
            "nodeInfo": {"kubeletVersion": "v1.33.1", "osImage": "Debian"}}});
    assert_eq!(
        cells("", "Node", node),
        vec![
            json!("n1"),
            json!("NotReady,SchedulingDisabled"),
            json!("control-plane,worker"),
            json!("3d"),
            json!("v1.33.1"),
            json!("192.168.1.2"),
            json!("<none>"),
            json!("Debian"),
            json!("<unknown>"),
            json!("<unknown>")
        ]
    );
    let bare = json!({"metadata": {"name": "n2"}});
    assert_eq!(
        &cells("", "Node", bare)[1..4],
        &[json!("Unknown"), json!("<none>"), json!("<unknown>")]
    );
}

#[test]
fn event_cells_for_both_groups() {
    let core = json!({"apiVersion": "v1", "kind": "Event", "metadata": meta("web.17a", 100),
        "type": "Warning", "reason": "Failed", "message": " pull failed \n",
        "involvedObject": {"kind": "Pod", "name": "web-1", "fieldPath": "spec.containers{app}"},
        "source": {"component": "kubelet", "host": "node-1"},
        "firstTimestamp": ago(600), "lastTimestamp": ago(60), "count": 4});
    assert_eq!(
        cells("", "Event", core),
        vec![
            json!("60s"),
            json!("Warning"),
            json!("Failed"),
            json!("pod/web-1"),
            json!("spec.containers{app}"),
            json!("kubelet, node-1"),
            json!("pull failed"),
            json!("10m"),
            json!(4),
            json!("web.17a")
        ]
    );
    let new_api = json!({"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": meta("e2", 100),
        "type": "Normal", "reason": "Synced", "note": "ok", "regarding": {"kind": "Service"},
        "eventTime": ago(30), "reportingController": "fedmesh", "reportingInstance": "fedmesh-0"});
    assert_eq!(
        cells("events.k8s.io", "Event", new_api),
        vec![
            json!("30s"),
            json!("Normal"),
            json!("Synced"),
            json!("service"),
            json!(""),
            json!("fedmesh, fedmesh-0"),
            json!("ok"),
            json!("30s"),
            json!(1),
            json!("e2")
        ]
    );
    let series = json!({"metadata": meta("e3", 100), "involvedObject": {"kind": "Pod", "name": "p"},
        "eventTime": ago(900), "series": {"count": 7, "lastObservedTime": ago(5)}});
    let c = cells("", "Event", series);
    assert_eq!(
        (&c[0], &c[7], &c[8]),
        (&json!("5s"), &json!("15m"), &json!(7))
    );
    let nothing = json!({"metadata": meta("e4", 100), "involvedObject": {"kind": "Pod"}});
    assert_eq!(cells("", "Event", nothing)[0], json!("<unknown>"));
}

#[test]
fn small_kind_cells() {
    let m = meta("x", 45);
    assert_eq!(
        cells(
            "",
            "Namespace",
            json!({"metadata": m, "status": {"phase": "Active"}})
        ),
        vec![json!("x"), json!("Active"), json!("45s")]
    );
    assert_eq!(
        cells(
            "",
            "Secret",
            json!({"metadata": m, "type": "Opaque", "data": {"a": "", "b": ""}})
        ),
        vec![json!("x"), json!("Opaque"), json!(2), json!("45s")]
    );
    assert_eq!(
        cells(
            "",
            "ConfigMap",
            json!({"metadata": m, "data": {"a": ""}, "binaryData": {"b": ""}})
        ),
        vec![json!("x"), json!(2), json!("45s")]
    );
    assert_eq!(
        cells("", "ServiceAccount", json!({"metadata": m})),
        vec![json!("x"), json!(0), json!("45s")]
    );
    assert_eq!(
        cells(
            "coordination.k8s.io",
            "Lease",
            json!({"metadata": m, "spec": {"holderIdentity": "me"}})
        ),
        vec![json!("x"), json!("me"), json!("45s")]
    );
    assert_eq!(
        cells(
            "coordination.k8s.io",
            "Lease",
            json!({"metadata": m, "spec": {}})
        )[1],
        json!("")
    );
    assert_eq!(
        cells(
            "rbac.authorization.k8s.io",
            "RoleBinding",
            json!({"metadata": m,
            "roleRef": {"kind": "ClusterRole", "name": "view"},
            "subjects": [{"kind": "User", "name": "alice"}, {"kind": "User", "name": "bob"},
                {"kind": "Group", "name": "devs"}, {"kind": "ServiceAccount", "name": "sa", "namespace": "ns"}]})
        ),
        vec![
            json!("x"),
            json!("ClusterRole/view"),
            json!("45s"),
            json!("alice, bob"),
            json!("devs"),
            json!("ns/sa")
        ]
    );
    assert_eq!(
        cells(
            "rbac.authorization.k8s.io",
            "ClusterRole",
            json!({"metadata": {"name": "admin", "creationTimestamp": "2024-01-02T03:04:05Z"}})
        ),
        vec![json!("admin"), json!("2024-01-02T03:04:05Z")]
    );
    assert_eq!(
        cells(
            "apiextensions.k8s.io",
            "CustomResourceDefinition",
            json!({"metadata": {"name": "a.b"}})
        ),
        vec![json!("a.b"), json!("0001-01-01T00:00:00Z")]
    );
}

#[test]
fn include_object_modes_and_list_metadata() {
    let pod = running_pod();
    let printer = Printer::for_kind("", "Pod");
    let list_meta = TableListMeta {
        resource_version: Some("77".into()),
        continue_token: Some("abc".into()),
        remaining_item_count: Some(3),
    };
    let table = to_table(
        &printer,
        std::slice::from_ref(&pod),
        &list_meta,
        &TableOptions::default(),
        now(),
    );
    assert_eq!(table["kind"], "Table");
    assert_eq!(table["apiVersion"], "meta.k8s.io/v1");
    assert_eq!(
        table["metadata"],
        json!({"resourceVersion": "77", "continue": "abc", "remainingItemCount": 3})
    );
    assert_eq!(
        table["rows"][0]["object"],
        json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": pod["metadata"]})
    );
    assert_eq!(table["rows"][0].get("conditions"), None);

    let options = TableOptions::new("meta.k8s.io/v1beta1", Some("Object"), true).unwrap();
    let table = to_table(
        &printer,
        std::slice::from_ref(&pod),
        &TableListMeta::default(),
        &options,
        now(),
    );
    assert_eq!(table["apiVersion"], "meta.k8s.io/v1beta1");
    assert_eq!(table["columnDefinitions"], Value::Null);
    assert_eq!(table["metadata"], json!({}));
    assert_eq!(table["rows"][0]["object"], pod);

    let options = TableOptions::new("meta.k8s.io/v1", Some("None"), false).unwrap();
    let table = to_table(&printer, &[pod], &TableListMeta::default(), &options, now());
    assert_eq!(table["rows"][0]["object"], Value::Null);
    assert_eq!(table["columnDefinitions"].as_array().unwrap().len(), 9);

    assert_eq!(
        TableOptions::new("meta.k8s.io/v1", Some("Everything"), false)
            .unwrap_err()
            .to_string(),
        "unrecognized includeObject value: \"Everything\""
    );
    assert_eq!(
        TableOptions::new("apps/v1", None, false)
            .unwrap_err()
            .to_string(),
        "no Table exists in group version apps/v1"
    );
    let empty = to_table(
        &printer,
        &[],
        &TableListMeta::default(),
        &TableOptions::default(),
        now(),
    );
    assert_eq!(empty["rows"], json!([]));
}

#[test]
fn crd_default_column_is_age() {
    let custom = CustomColumns::new(&[]).unwrap();
    let cols = serde_json::to_value(custom.columns()).unwrap();
    assert_eq!(cols[1]["name"], "Age");
    assert_eq!(cols[1]["type"], "date");
    assert!(
        cols[1]["description"]
            .as_str()
            .unwrap()
            .starts_with("CreationTimestamp")
    );
    let obj = json!({"metadata": {"name": "a", "creationTimestamp": ago(3700)}});
    assert_eq!(custom.cells(&obj, now()), vec![json!("a"), json!("61m")]);
}

#[test]
fn crd_printer_columns_evaluate_json_paths() {
    let defs: Vec<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceColumnDefinition> =
        serde_json::from_value(json!([
            {"name": "Ready", "type": "string", "jsonPath": ".status.conditions[?(@.type==\"Ready\")].status"},
            {"name": "Replicas", "type": "integer", "jsonPath": ".spec.replicas", "description": "how many"},
            {"name": "Ratio", "type": "number", "jsonPath": ".spec.ratio", "priority": 1},
            {"name": "Paused", "type": "boolean", "jsonPath": ".spec.paused"},
            {"name": "Since", "type": "date", "jsonPath": ".status.since"},
            {"name": "Missing", "type": "string", "jsonPath": ".spec.nothing"},
            {"name": "Count", "type": "string", "jsonPath": ".spec.replicas"},
            {"name": "Labels", "type": "string", "jsonPath": ".metadata.labels"},
            {"name": "First", "type": "string", "jsonPath": ".spec.items[0].name"},
            {"name": "Mismatch", "type": "integer", "jsonPath": ".spec.paused"}
        ]))
        .unwrap();
    let custom = CustomColumns::new(&defs).unwrap();
    let cols = serde_json::to_value(custom.columns()).unwrap();
    assert_eq!(
        cols[1]["description"],
        "Custom resource definition column (in JSONPath format): .status.conditions[?(@.type==\"Ready\")].status"
    );
    assert_eq!(cols[2]["description"], "how many");
    assert_eq!(cols[3]["priority"], 1);
    let obj = json!({
        "metadata": {"name": "thing", "labels": {"b": "2", "a": "1"}},
        "spec": {"replicas": 3, "ratio": 0.25, "paused": false, "items": [{"name": "i0"}, {"name": "i1"}]},
        "status": {"since": ago(90), "conditions": [{"type": "Synced", "status": "False"}, {"type": "Ready", "status": "True"}]}
    });
    assert_eq!(
        custom.cells(&obj, now()),
        vec![
            json!("thing"),
            json!("True"),
            json!(3),
            json!(0.25),
            json!(false),
            json!("90s"),
            Value::Null,
            json!("3"),
            json!("{\"a\":\"1\",\"b\":\"2\"}"),
            json!("i0"),
            Value::Null
        ]
    );
    let bad_date = json!({"metadata": {"name": "x"}, "status": {"since": "yesterday"}});
    assert_eq!(custom.cells(&bad_date, now())[5], json!("<invalid>"));
    let float_int = json!({"metadata": {"name": "x"}, "spec": {"replicas": 2.9}});
    assert_eq!(custom.cells(&float_int, now())[2], json!(2));
    assert_eq!(custom.cells(&float_int, now())[7], json!("2.9"));
    let whole_float = json!({"metadata": {"name": "x"}, "spec": {"ratio": 4.0}});
    assert_eq!(custom.cells(&whole_float, now())[3].to_string(), "4");
    let null_value = json!({"metadata": {"name": "x"}, "spec": {"nothing": null}});
    assert_eq!(custom.cells(&null_value, now())[6], json!("<no value>"));
    assert!(
        CustomColumns::new(
            &serde_json::from_value::<Vec<_>>(
                json!([{"name": "X", "type": "string", "jsonPath": "spec"}])
            )
            .unwrap()
        )
        .is_err()
    );
}

#[test]
fn crd_columns_for_a_named_version() {
    let crd: k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition =
        serde_json::from_value(json!({
            "metadata": {"name": "widgets.example.com"},
            "spec": {"group": "example.com", "scope": "Namespaced",
                "names": {"plural": "widgets", "kind": "Widget"},
                "versions": [
                    {"name": "v1", "served": true, "storage": true,
                     "additionalPrinterColumns": [{"name": "Size", "type": "integer", "jsonPath": ".spec.size"}]},
                    {"name": "v2", "served": true, "storage": false}
                ]}
        }))
        .unwrap();
    let v1 = CustomColumns::for_crd(&crd, "v1").unwrap().unwrap();
    assert_eq!(
        v1.columns()
            .iter()
            .map(|c| c.name.as_str())
            .collect::<Vec<_>>(),
        ["Name", "Size"]
    );
    let v2 = CustomColumns::for_crd(&crd, "v2").unwrap().unwrap();
    assert_eq!(
        v2.columns()
            .iter()
            .map(|c| c.name.as_str())
            .collect::<Vec<_>>(),
        ["Name", "Age"]
    );
    assert!(CustomColumns::for_crd(&crd, "v3").is_none());
    let table = to_table(
        &Printer::Custom(v1),
        &[json!({"metadata": {"name": "w"}, "spec": {"size": 4}})],
        &TableListMeta::default(),
        &TableOptions::default(),
        now(),
    );
    assert_eq!(table["rows"][0]["cells"], json!(["w", 4]));
}

#[test]
fn json_path_subset() {
    let doc = json!({"a": {"b.c": 1, "list": [{"k": "x", "v": 1}, {"k": "y", "v": 2}, {"k": "z", "v": 3}]}, "t": true});
    let find = |p: &str| -> Vec<Value> {
        JsonPath::parse(p)
            .unwrap()
            .find(&doc)
            .into_iter()
            .cloned()
            .collect()
    };
    assert_eq!(find(".a['b.c']"), vec![json!(1)]);
    assert_eq!(find("{.a.list[1].k}"), vec![json!("y")]);
    assert_eq!(find("$.a.list[-1].v"), vec![json!(3)]);
    assert_eq!(
        find(".a.list[*].k"),
        vec![json!("x"), json!("y"), json!("z")]
    );
    assert_eq!(find(".a.list[?(@.v > 1)].k"), vec![json!("y"), json!("z")]);
    assert_eq!(find(".a.list[?(@.k != 'x')].v"), vec![json!(2), json!(3)]);
    assert_eq!(find(".a.list[?(@.k)].v").len(), 3);
    assert_eq!(find(".a.list[?(@.missing)].v"), Vec::<Value>::new());
    assert_eq!(find(".t"), vec![json!(true)]);
    assert_eq!(find(".nope.deeper"), Vec::<Value>::new());
    assert_eq!(find(".a.list[7]"), Vec::<Value>::new());
    for bad in ["a.b", ".a[", ".a[?(@.k == )]", ".a[\"x", ".."] {
        assert!(JsonPath::parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn go_float_formatting() {
    let cases = [
        (0.25, "0.25"),
        (1.5, "1.5"),
        (1234567.5, "1.2345675e+06"),
        (0.00001, "1e-05"),
        (123456.5, "123456.5"),
        (-0.0001, "-0.0001"),
    ];
    for (f, want) in cases {
        assert_eq!(format_go_float(f), want, "{f}");
    }
}

#[test]
fn printers_survive_malformed_objects() {
    let kinds = [
        ("", "Pod"),
        ("", "Service"),
        ("", "Endpoints"),
        ("discovery.k8s.io", "EndpointSlice"),
        ("", "Node"),
        ("", "Namespace"),
        ("", "Secret"),
        ("", "ConfigMap"),
        ("", "ServiceAccount"),
        ("", "Event"),
        ("events.k8s.io", "Event"),
        ("coordination.k8s.io", "Lease"),
        ("rbac.authorization.k8s.io", "RoleBinding"),
        ("rbac.authorization.k8s.io", "ClusterRole"),
    ];
    let weird = [
        json!(null),
        json!(42),
        json!({"metadata": "x", "spec": [1, 2], "status": {"containerStatuses": "no"}}),
        json!({"metadata": {"name": 5, "creationTimestamp": "not a time", "labels": {"a": 1}},
               "spec": {"ports": [{"port": "80"}, null], "containers": null, "readinessGates": [{}]},
               "status": {"phase": 3, "conditions": [null, {"type": 1}], "initContainerStatuses": [{"state": {"terminated": {}}}],
                          "loadBalancer": {"ingress": [{"ip": "é"}]}},
               "subsets": [{"addresses": [{"ip": null}], "ports": [{}]}],
               "endpoints": [{"addresses": [1, "x"]}], "subjects": [{"kind": "ServiceAccount"}],
               "series": {}, "involvedObject": {"kind": "ÄÖ"}}),
    ];
    for (group, kind) in kinds {
        let printer = Printer::for_kind(group, kind);
        let columns = printer.columns().len();
        for w in &weird {
            let table = to_table(
                &printer,
                std::slice::from_ref(w),
                &TableListMeta::default(),
                &TableOptions::default(),
                now(),
            );
            assert_eq!(
                table["rows"][0]["cells"].as_array().unwrap().len(),
                columns,
                "{group}/{kind} {w}"
            );
        }
    }
}

#[test]
fn json_path_parser_survives_odd_input() {
    for input in [
        "",
        ".",
        "[",
        "]",
        ".a[?(",
        ".a[?(@",
        ".a[?(@.b=='x'",
        ".ü.ö",
        ".a['ü']",
        "{",
        "}",
        "{.a",
        "$",
        ".a[*]]",
        ".a[1:2]",
        ".a[?(@.b == 1.5e3)]",
    ] {
        if let Ok(p) = JsonPath::parse(input) {
            let _ = p.find(&json!({"a": [{"b": 1500.0}], "ü": {"ö": 1}}));
        }
    }
    let p = JsonPath::parse(".a[?(@.b == 1.5e3)]").unwrap();
    assert_eq!(p.find(&json!({"a": [{"b": 1500}]})).len(), 1);
    assert_eq!(
        JsonPath::parse(".a['ü']")
            .unwrap()
            .find(&json!({"a": {"ü": 2}})),
        vec![&json!(2)]
    );
}
