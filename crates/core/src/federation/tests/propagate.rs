use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use serde_json::json;

use super::super::*;
use crate::names::ClusterName;

fn federation() -> FederationName {
    FederationName::new("myfederation").unwrap()
}

/// The seed's nginx Service as the federation API server holds it: it
/// allocated a cluster IP and a node port of its own.
fn federated(extra_meta: serde_json::Value) -> Service {
    let mut object = json!({
        "metadata": {
            "name": "nginx", "namespace": "mynamespace", "uid": "fed-uid",
            "resourceVersion": "7",
            "labels": {"run": "nginx"},
            "annotations": {
                "team": "web",
                "federation.fedmesh.io/shards": "[]"
            },
            "finalizers": [FINALIZER]
        },
        "spec": {
            "type": "LoadBalancer",
            "selector": {"run": "nginx"},
            "clusterIP": "10.0.0.5", "clusterIPs": ["10.0.0.5"], "ipFamilies": ["IPv4"],
            "ipFamilyPolicy": "SingleStack",
            "ports": [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": 80, "nodePort": 30001}],
            "sessionAffinity": "None",
            "externalTrafficPolicy": "Local",
            "healthCheckNodePort": 32000
        },
        "status": {"loadBalancer": {"ingress": [{"ip": "104.197.246.190"}]}}
    });
    merge(&mut object["metadata"], extra_meta);
    serde_json::from_value(object).unwrap()
}

fn merge(into: &mut serde_json::Value, from: serde_json::Value) {
    if let (Some(into), serde_json::Value::Object(from)) = (into.as_object_mut(), from) {
        into.extend(from);
    }
}

/// A member's own nginx Service, not made by fedmesh, with what its cluster allocated.
fn unmarked() -> Service {
    serde_json::from_value(json!({
        "metadata": {
            "name": "nginx", "namespace": "mynamespace", "uid": "member-uid",
            "resourceVersion": "42", "labels": {"app": "old"},
            "creationTimestamp": "2026-01-01T00:00:00Z"
        },
        "spec": {
            "type": "NodePort",
            "selector": {"app": "old"},
            "clusterIP": "10.63.250.98", "clusterIPs": ["10.63.250.98"], "ipFamilies": ["IPv4"],
            "ipFamilyPolicy": "SingleStack",
            "ports": [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": 8080, "nodePort": 31234}],
            "sessionAffinity": "None"
        },
        "status": {"loadBalancer": {}}
    }))
    .unwrap()
}

/// The member's copy as fedmesh last wrote it, with the member's allocations
/// and status.
fn ours() -> Service {
    let mut copy = desired(
        &federation(),
        &federated(json!({})),
        Some(&unmarked()),
        Origin::Created,
    );
    copy.spec.as_mut().unwrap().health_check_node_port = Some(31999);
    copy.status =
        serde_json::from_value(json!({"loadBalancer": {"ingress": [{"ip": "104.199.136.89"}]}}))
            .unwrap();
    copy
}

fn deleted_meta(finalizers: &[&str]) -> serde_json::Value {
    json!({"deletionTimestamp": "2027-01-01T00:00:00Z", "finalizers": finalizers})
}

#[derive(Clone, Copy, Debug)]
enum Fed {
    Active,
    SelectsProd,
    Malformed,
    Deleting,
    DeletingOrphan,
    Gone,
}

#[derive(Clone, Copy, Debug)]
enum Copy {
    Absent,
    Unmarked,
    InSync,
    EditedByHand,
    OtherFederation,
    Terminating,
}

#[derive(Debug, PartialEq)]
enum Expect {
    Create,
    Adopt,
    Update,
    Delete,
    Orphan,
    Nothing(Why),
}

fn kind(action: &Action<Service>) -> Expect {
    match action {
        Action::Create(_) => Expect::Create,
        Action::Adopt(_) => Expect::Adopt,
        Action::Update(_) => Expect::Update,
        Action::Delete { .. } => Expect::Delete,
        Action::Orphan(_) => Expect::Orphan,
        Action::None(why) => Expect::Nothing(why.clone()),
    }
}

fn federated_for(case: Fed) -> Option<Service> {
    let selector =
        |value: &str| json!({"annotations": {CLUSTER_SELECTOR_ANNOTATION: value, "team": "web"}});
    match case {
        Fed::Active => Some(federated(json!({}))),
        Fed::SelectsProd => Some(federated(selector(
            r#"[{"key":"environment","operator":"In","values":["prod"]}]"#,
        ))),
        Fed::Malformed => Some(federated(selector("[{\"key\":\"environment\"}]"))),
        Fed::Deleting => Some(federated(deleted_meta(&[FINALIZER]))),
        Fed::DeletingOrphan => Some(federated(deleted_meta(&[ORPHAN_FINALIZER, FINALIZER]))),
        Fed::Gone => None,
    }
}

fn copy_for(case: Copy) -> Option<Service> {
    match case {
        Copy::Absent => None,
        Copy::Unmarked => Some(unmarked()),
        Copy::InSync => Some(ours()),
        Copy::EditedByHand => {
            let mut copy = ours();
            let spec = copy.spec.as_mut().unwrap();
            spec.ports.as_mut().unwrap()[0].port = 8080;
            spec.selector = Some(BTreeMap::from([("run".into(), "other".into())]));
            Some(copy)
        }
        Copy::OtherFederation => {
            let mut copy = ours();
            copy.metadata
                .labels
                .as_mut()
                .unwrap()
                .insert(FEDERATION_LABEL.into(), "otherfederation".into());
            Some(copy)
        }
        Copy::Terminating => {
            let mut copy = ours();
            copy.metadata.deletion_timestamp = Some(Time(Timestamp::from_second(1).unwrap()));
            Some(copy)
        }
    }
}

fn run(
    fed: Fed,
    state: ClusterState,
    env: &str,
    copy: Copy,
    namespace_exists: bool,
) -> Plan<Service> {
    let object = federated_for(fed);
    let read = object.as_ref().map(|o| Federated::read(o, None));
    let current = copy_for(copy);
    let name = ClusterName::new("us-central1-a").unwrap();
    let labels = BTreeMap::from([("environment".to_owned(), env.to_owned())]);
    plan(
        &federation(),
        read.as_ref(),
        &Member {
            name: &name,
            state,
            labels: &labels,
            current: current.as_ref(),
            namespace_exists,
        },
    )
}

#[test]
fn decisions() {
    use ClusterState::{NotReady, Offline, Ready};
    let selector_error = || ClusterSelector::parse("[{\"key\":\"environment\"}]").unwrap_err();
    // (federated, member state, member's environment label, member's copy,
    //  expected action, create namespace, holds a copy)
    let cases = [
        // Creation, with and without the namespace.
        (
            Fed::Active,
            Ready,
            "dev",
            Copy::Absent,
            true,
            Expect::Create,
            false,
            false,
        ),
        (
            Fed::Active,
            Ready,
            "dev",
            Copy::Absent,
            false,
            Expect::Create,
            true,
            false,
        ),
        // Adoption of a Service of that name fedmesh did not make.
        (
            Fed::Active,
            Ready,
            "dev",
            Copy::Unmarked,
            true,
            Expect::Adopt,
            false,
            false,
        ),
        // In sync, and drift repaired.
        (
            Fed::Active,
            Ready,
            "dev",
            Copy::InSync,
            true,
            Expect::Nothing(Why::InSync),
            false,
            true,
        ),
        (
            Fed::Active,
            Ready,
            "dev",
            Copy::EditedByHand,
            true,
            Expect::Update,
            false,
            true,
        ),
        // Deleted by hand in the member: created again.
        (
            Fed::Active,
            Ready,
            "dev",
            Copy::Absent,
            true,
            Expect::Create,
            false,
            false,
        ),
        // Another federation's object is left alone.
        (
            Fed::Active,
            Ready,
            "dev",
            Copy::OtherFederation,
            true,
            Expect::Nothing(Why::OtherFederation("otherfederation".into())),
            false,
            false,
        ),
        // A member's copy being deleted: wait for it to go, then create.
        (
            Fed::Active,
            Ready,
            "dev",
            Copy::Terminating,
            true,
            Expect::Nothing(Why::Terminating),
            false,
            true,
        ),
        // Cluster selector: selected, not selected, stops matching.
        (
            Fed::SelectsProd,
            Ready,
            "prod",
            Copy::Absent,
            true,
            Expect::Create,
            false,
            false,
        ),
        (
            Fed::SelectsProd,
            Ready,
            "dev",
            Copy::Absent,
            true,
            Expect::Nothing(Why::NotSelected),
            false,
            false,
        ),
        (
            Fed::SelectsProd,
            Ready,
            "dev",
            Copy::InSync,
            true,
            Expect::Delete,
            false,
            true,
        ),
        (
            Fed::SelectsProd,
            Ready,
            "dev",
            Copy::Unmarked,
            true,
            Expect::Nothing(Why::NotSelected),
            false,
            false,
        ),
        // A malformed selector changes nothing.
        (
            Fed::Malformed,
            Ready,
            "dev",
            Copy::Absent,
            true,
            Expect::Nothing(Why::SelectorInvalid(selector_error())),
            false,
            false,
        ),
        (
            Fed::Malformed,
            Ready,
            "dev",
            Copy::EditedByHand,
            true,
            Expect::Nothing(Why::SelectorInvalid(selector_error())),
            false,
            true,
        ),
        // Members that are not Ready get nothing now.
        (
            Fed::Active,
            Offline,
            "dev",
            Copy::Absent,
            false,
            Expect::Nothing(Why::Unavailable(Offline)),
            false,
            false,
        ),
        (
            Fed::Active,
            NotReady,
            "dev",
            Copy::EditedByHand,
            true,
            Expect::Nothing(Why::Unavailable(NotReady)),
            false,
            true,
        ),
        // Deletion: the copy goes; another's object stays; nothing to do when absent.
        (
            Fed::Deleting,
            Ready,
            "dev",
            Copy::InSync,
            true,
            Expect::Delete,
            false,
            true,
        ),
        (
            Fed::Deleting,
            Ready,
            "dev",
            Copy::EditedByHand,
            true,
            Expect::Delete,
            false,
            true,
        ),
        (
            Fed::Deleting,
            Ready,
            "dev",
            Copy::Absent,
            true,
            Expect::Nothing(Why::Done),
            false,
            false,
        ),
        (
            Fed::Deleting,
            Ready,
            "dev",
            Copy::Unmarked,
            true,
            Expect::Nothing(Why::Done),
            false,
            false,
        ),
        (
            Fed::Deleting,
            Ready,
            "dev",
            Copy::Terminating,
            true,
            Expect::Nothing(Why::Terminating),
            false,
            true,
        ),
        // Deletion of a member's copy waits for an Offline member…
        (
            Fed::Deleting,
            Offline,
            "dev",
            Copy::InSync,
            true,
            Expect::Nothing(Why::Unavailable(Offline)),
            false,
            true,
        ),
        // …but not for one that never had it.
        (
            Fed::Deleting,
            Offline,
            "dev",
            Copy::Absent,
            true,
            Expect::Nothing(Why::Unavailable(Offline)),
            false,
            false,
        ),
        // Orphaning keeps the copy without fedmesh's marks.
        (
            Fed::DeletingOrphan,
            Ready,
            "dev",
            Copy::InSync,
            true,
            Expect::Orphan,
            false,
            true,
        ),
        (
            Fed::DeletingOrphan,
            Ready,
            "dev",
            Copy::Unmarked,
            true,
            Expect::Nothing(Why::Done),
            false,
            false,
        ),
        (
            Fed::DeletingOrphan,
            Offline,
            "dev",
            Copy::InSync,
            true,
            Expect::Nothing(Why::Unavailable(Offline)),
            false,
            true,
        ),
        // The federated object is gone (or no longer federated): stale copies go.
        (
            Fed::Gone,
            Ready,
            "dev",
            Copy::InSync,
            true,
            Expect::Delete,
            false,
            true,
        ),
        (
            Fed::Gone,
            Ready,
            "dev",
            Copy::Unmarked,
            true,
            Expect::Nothing(Why::NotSelected),
            false,
            false,
        ),
        (
            Fed::Gone,
            Offline,
            "dev",
            Copy::InSync,
            true,
            Expect::Nothing(Why::Unavailable(Offline)),
            false,
            true,
        ),
    ];
    for (fed, state, env, copy, ns, expected, create_ns, holds) in cases {
        let plan = run(fed, state, env, copy, ns);
        let case = format!("{fed:?} {state:?} {env} {copy:?} namespace_exists={ns}");
        assert_eq!(kind(&plan.action), expected, "{case}");
        assert_eq!(plan.create_namespace, create_ns, "{case}: create namespace");
        assert_eq!(plan.holds_copy, holds, "{case}: holds a copy");
        assert_eq!(plan.settled(), !holds, "{case}");
    }
}

#[test]
fn a_created_copy_leaves_allocation_to_the_member() {
    let Action::Create(copy) =
        run(Fed::Active, ClusterState::Ready, "dev", Copy::Absent, true).action
    else {
        panic!("a create");
    };
    let meta = &copy.metadata;
    assert_eq!(
        (meta.name.as_deref(), meta.namespace.as_deref()),
        (Some("nginx"), Some("mynamespace"))
    );
    assert_eq!(meta.uid, None);
    assert_eq!(meta.resource_version, None);
    assert_eq!(
        meta.finalizers, None,
        "the federated object's finalizers stay there"
    );
    let labels = meta.labels.as_ref().unwrap();
    assert_eq!(labels["run"], "nginx");
    assert_eq!(labels[FEDERATION_LABEL], "myfederation");
    let annotations = meta.annotations.as_ref().unwrap();
    assert_eq!(annotations["team"], "web");
    assert_eq!(annotations[ORIGIN_ANNOTATION], "created");
    assert!(
        !annotations.contains_key(SHARDS_ANNOTATION),
        "fedmesh's own annotations stay home"
    );
    let spec = copy.spec.as_ref().unwrap();
    assert_eq!(spec.cluster_ip, None);
    assert_eq!(spec.cluster_ips, None);
    assert_eq!(spec.ip_families, None);
    assert_eq!(spec.health_check_node_port, None);
    let port = &spec.ports.as_ref().unwrap()[0];
    assert_eq!((port.port, port.node_port), (80, None));
    assert_eq!(spec.external_traffic_policy.as_deref(), Some("Local"));
    assert_eq!(spec.type_.as_deref(), Some("LoadBalancer"));
    assert_eq!(copy.status, None, "status is the member's to write");
}

#[test]
fn an_adopted_copy_conforms_but_keeps_what_the_member_allocated() {
    let Action::Adopt(copy) = run(
        Fed::Active,
        ClusterState::Ready,
        "dev",
        Copy::Unmarked,
        true,
    )
    .action
    else {
        panic!("an adoption");
    };
    let meta = &copy.metadata;
    assert_eq!(meta.uid.as_deref(), Some("member-uid"));
    assert_eq!(
        meta.resource_version.as_deref(),
        Some("42"),
        "replaced with a precondition"
    );
    assert!(meta.creation_timestamp.is_some());
    assert_eq!(
        meta.labels.as_ref().unwrap(),
        &BTreeMap::from([
            ("run".to_owned(), "nginx".to_owned()),
            (FEDERATION_LABEL.to_owned(), "myfederation".to_owned())
        ]),
        "the member's own labels are replaced by the federated ones"
    );
    assert_eq!(
        meta.annotations.as_ref().unwrap()[ORIGIN_ANNOTATION],
        "adopted"
    );
    let spec = copy.spec.as_ref().unwrap();
    assert_eq!(spec.cluster_ip.as_deref(), Some("10.63.250.98"));
    assert_eq!(
        spec.cluster_ips.as_deref(),
        Some(&["10.63.250.98".to_owned()][..])
    );
    assert_eq!(spec.type_.as_deref(), Some("LoadBalancer"));
    assert_eq!(spec.selector.as_ref().unwrap()["run"], "nginx");
    let port = &spec.ports.as_ref().unwrap()[0];
    assert_eq!(
        (port.node_port, &port.target_port),
        (
            Some(31234),
            &Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(80))
        )
    );

    // Once adopted, it is in sync and stays "adopted".
    let name = ClusterName::new("a").unwrap();
    let fed = federated(json!({}));
    let read = Federated::read(&fed, None);
    let labels = BTreeMap::new();
    let again = plan(
        &federation(),
        Some(&read),
        &Member {
            name: &name,
            state: ClusterState::Ready,
            labels: &labels,
            current: Some(&copy),
            namespace_exists: true,
        },
    );
    assert_eq!(again.action, Action::None(Why::InSync));
}

#[test]
fn an_update_repairs_drift_and_keeps_member_allocations_and_status() {
    let Action::Update(copy) = run(
        Fed::Active,
        ClusterState::Ready,
        "dev",
        Copy::EditedByHand,
        true,
    )
    .action
    else {
        panic!("an update");
    };
    let spec = copy.spec.as_ref().unwrap();
    assert_eq!(
        spec.ports.as_ref().unwrap()[0].port,
        80,
        "the edit is undone"
    );
    assert_eq!(spec.selector.as_ref().unwrap()["run"], "nginx");
    assert_eq!(spec.health_check_node_port, Some(31999));
    assert_eq!(spec.cluster_ip.as_deref(), Some("10.63.250.98"));
    assert_eq!(copy.status, ours().status);
    // A port that changes number gets a node port from the member.
    let mut changed = federated(json!({}));
    changed.spec.as_mut().unwrap().ports.as_mut().unwrap()[0].port = 443;
    let copy = desired(&federation(), &changed, Some(&ours()), Origin::Created);
    assert_eq!(copy.spec.unwrap().ports.unwrap()[0].node_port, None);
}

#[test]
fn a_headless_service_stays_headless() {
    let mut fed = federated(json!({}));
    let spec = fed.spec.as_mut().unwrap();
    spec.type_ = Some("ClusterIP".into());
    spec.cluster_ip = Some("None".into());
    spec.cluster_ips = Some(vec!["None".into()]);
    let copy = desired(&federation(), &fed, None, Origin::Created);
    assert_eq!(copy.spec.unwrap().cluster_ip.as_deref(), Some("None"));
}

#[test]
fn orphaning_removes_only_the_marks() {
    let Action::Orphan(copy) = run(
        Fed::DeletingOrphan,
        ClusterState::Ready,
        "dev",
        Copy::InSync,
        true,
    )
    .action
    else {
        panic!("an orphan");
    };
    let mut expected = ours();
    expected
        .metadata
        .labels
        .as_mut()
        .unwrap()
        .remove(FEDERATION_LABEL);
    expected
        .metadata
        .annotations
        .as_mut()
        .unwrap()
        .remove(ORIGIN_ANNOTATION);
    assert_eq!(copy, expected);
    // Orphaned, it is no longer the federation's: the deletion is settled.
    let name = ClusterName::new("a").unwrap();
    let fed = federated(deleted_meta(&[ORPHAN_FINALIZER, FINALIZER]));
    let read = Federated::read(&fed, None);
    let labels = BTreeMap::new();
    let after = plan(
        &federation(),
        Some(&read),
        &Member {
            name: &name,
            state: ClusterState::Ready,
            labels: &labels,
            current: Some(&copy),
            namespace_exists: true,
        },
    );
    assert!(after.settled());
}

#[test]
fn a_deletion_seen_to_orphan_stays_orphaning_and_finalizers() {
    // The garbage collector removes "orphan" soon after the deletion starts.
    let first = federated(deleted_meta(&[ORPHAN_FINALIZER, FINALIZER]));
    let seen = Federated::read(&first, None).lifecycle;
    assert_eq!(seen, Lifecycle::Deleting { orphan: true });
    let later = federated(deleted_meta(&[FINALIZER]));
    assert_eq!(Federated::read(&later, Some(seen)).lifecycle, seen);
    assert_eq!(
        Federated::read(&later, None).lifecycle,
        Lifecycle::Deleting { orphan: false }
    );
    assert_eq!(
        Federated::read(&later, Some(seen)).finalizers_without_ours(),
        Some(vec![])
    );
    assert_eq!(
        Federated::read(&first, None).finalizers_without_ours(),
        Some(vec![ORPHAN_FINALIZER.to_owned()])
    );

    let active = federated(json!({"finalizers": []}));
    let read = Federated::read(&active, None);
    assert_eq!(read.lifecycle, Lifecycle::Active);
    assert!(read.needs_finalizer());
    assert_eq!(read.finalizers_without_ours(), None);
    assert!(!Federated::read(&federated(json!({})), None).needs_finalizer());
}

#[test]
fn what_is_federated() {
    let none = BTreeMap::new();
    let service = federated(json!({}));
    assert!(is_federated(Scope::Everything, &service, &none, "fedmesh"));
    assert!(!is_federated(
        Scope::LabelledNamespaces,
        &service,
        &none,
        "fedmesh"
    ));
    let api: Service =
        serde_json::from_value(json!({"metadata": {"name": "kubernetes", "namespace": "default"}}))
            .unwrap();
    assert!(!is_federated(Scope::Everything, &api, &none, "fedmesh"));
    let namespace = member_namespace(&federation(), "mynamespace");
    assert_eq!(namespace.metadata.name.as_deref(), Some("mynamespace"));
    assert_eq!(
        namespace.metadata.labels.unwrap()[FEDERATION_LABEL],
        "myfederation"
    );
}

/// Another kind follows by saying what a member owns of it: here a
/// ConfigMap, of which the member owns nothing.
impl Propagated for k8s_openapi::api::core::v1::ConfigMap {
    fn member_content(federated: &Self, _current: Option<&Self>) -> Self {
        Self {
            metadata: Default::default(),
            ..federated.clone()
        }
    }
}

#[test]
fn another_kind_uses_the_same_decisions() {
    use k8s_openapi::api::core::v1::ConfigMap;
    let fed: ConfigMap = serde_json::from_value(json!({
        "metadata": {"name": "settings", "namespace": "mynamespace", "finalizers": [FINALIZER]},
        "data": {"mode": "fast"}
    }))
    .unwrap();
    let name = ClusterName::new("a").unwrap();
    let labels = BTreeMap::new();
    let decide = |federated: &ConfigMap, current: Option<&ConfigMap>| {
        let read = Federated::read(federated, None);
        plan(
            &federation(),
            Some(&read),
            &Member {
                name: &name,
                state: ClusterState::Ready,
                labels: &labels,
                current,
                namespace_exists: true,
            },
        )
    };
    let Action::Create(copy) = decide(&fed, None).action else {
        panic!("a create");
    };
    assert_eq!(copy.data.as_ref().unwrap()["mode"], "fast");
    assert_eq!(decide(&fed, Some(&copy)).action, Action::None(Why::InSync));
    let mut edited = copy.clone();
    edited
        .data
        .as_mut()
        .unwrap()
        .insert("mode".into(), "slow".into());
    assert_eq!(
        decide(&fed, Some(&edited)).action,
        Action::Update(copy.clone())
    );
    let deleting: ConfigMap = serde_json::from_value(json!({
        "metadata": {"name": "settings", "namespace": "mynamespace",
                     "deletionTimestamp": "2027-01-01T00:00:00Z", "finalizers": [FINALIZER]},
        "data": {"mode": "fast"}
    }))
    .unwrap();
    assert_eq!(
        decide(&deleting, Some(&copy)).action,
        Action::Delete { uid: None }
    );
}
