//! The identity index, mirroring and policy explain, driven by events.

use std::collections::BTreeMap;

use fedmesh_selector::Selector;
use k8s_openapi::api::core::v1::{Namespace, Pod, PodIP, PodSpec, PodStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::json;

use super::*;
use crate::names::{ClusterName, Origin};

fn remote(name: &str) -> Origin {
    Origin::Remote(ClusterName::new(name).unwrap())
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn pod(ns: &str, name: &str, ips: &[&str], pairs: &[(&str, &str)]) -> Pod {
    Pod {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some(ns.into()),
            labels: Some(labels(pairs)),
            ..ObjectMeta::default()
        },
        spec: Some(PodSpec {
            service_account_name: Some("db-sa".into()),
            node_name: Some("node-1".into()),
            ..PodSpec::default()
        }),
        status: Some(PodStatus {
            pod_ips: Some(ips.iter().map(|ip| PodIP { ip: ip.to_string() }).collect()),
            phase: Some("Running".into()),
            ..PodStatus::default()
        }),
    }
}

fn view(
    origin: Origin,
    ns: &str,
    name: &str,
    ips: &[&str],
    pairs: &[(&str, &str)],
) -> EndpointView {
    EndpointView::from_pod(origin, pod(ns, name, ips, pairs))
        .unwrap()
        .unwrap()
}

fn namespace(origin: Origin, name: &str, pairs: &[(&str, &str)]) -> ProfileView {
    let ns = Namespace {
        metadata: ObjectMeta {
            name: Some(name.into()),
            labels: Some(labels(pairs)),
            ..ObjectMeta::default()
        },
        ..Namespace::default()
    };
    ProfileView::from_namespace(origin, ns).unwrap()
}

/// Seed 004: backend-app in cluster A, postgres in remote cluster B.
fn seed_004() -> IdentityIndex {
    let mut index = IdentityIndex::new();
    index.upsert(view(
        Origin::Local,
        "myapp",
        "backend-0",
        &["10.0.0.1"],
        &[("app", "backend-app")],
    ));
    index.upsert(view(
        Origin::Local,
        "myapp",
        "postgres-local",
        &["10.0.0.9"],
        &[("app", "postgres")],
    ));
    index.upsert(view(
        Origin::Local,
        "other",
        "postgres-other",
        &["10.0.0.8"],
        &[("app", "postgres")],
    ));
    for (i, ip) in ["10.1.0.1", "10.1.0.2"].iter().enumerate() {
        index.upsert(view(
            remote("cluster-b"),
            "myapp",
            &format!("postgres-{i}"),
            &[ip],
            &[("app", "postgres")],
        ));
    }
    // A remote backend-app: a local policy never applies to it.
    index.upsert(view(
        remote("cluster-b"),
        "myapp",
        "backend-9",
        &["10.1.0.9"],
        &[("app", "backend-app")],
    ));
    index
}

fn seed_004_policy() -> serde_json::Value {
    json!({
        "apiVersion": "projectcalico.org/v3",
        "kind": "NetworkPolicy",
        "metadata": {"name": "backend-to-db", "namespace": "myapp"},
        "spec": {
            "selector": "app == 'backend-app'",
            "types": ["Egress"],
            "egress": [{"action": "Allow", "protocol": "TCP",
                        "destination": {"selector": "app == 'postgres'", "ports": [5432]}}]
        }
    })
}

fn names(selection: &Selection) -> Vec<String> {
    selection
        .endpoints
        .iter()
        .map(|e| match &e.cluster {
            Some(c) => format!("{c}/{}", e.name),
            None => e.name.to_string(),
        })
        .collect()
}

#[test]
fn seed_004_remote_postgres_is_a_rule_destination_not_a_policy_target() {
    let index = seed_004();
    let policy = Policy::from_json(&seed_004_policy()).unwrap();
    let explanation = explain(&index, &policy);
    assert_eq!(names(&explanation.applies_to), ["backend-0"]);
    let rule = &explanation.rules[0];
    assert_eq!(rule.id.to_string(), "egress rule 1");
    assert!(rule.source.any);
    let destination = rule.destination.selection.as_ref().unwrap();
    // Same namespace only (a namespaced policy), local and remote.
    assert_eq!(
        names(destination),
        [
            "postgres-local",
            "cluster-b/postgres-0",
            "cluster-b/postgres-1"
        ]
    );
    let remote0 = &destination.endpoints[1];
    assert_eq!(remote0.namespace.as_deref(), Some("myapp"));
    assert_eq!(
        remote0.ips,
        ["10.1.0.1".parse::<std::net::IpAddr>().unwrap()]
    );
    let text = explanation.render_text();
    assert!(text.contains("cluster-b   pod    myapp"), "{text}");
    assert!(text.contains("egress rule 1 (Allow):"), "{text}");
    let json = explanation.to_json();
    assert_eq!(
        json["rules"][0]["destination"]["selection"]["endpoints"][1]["cluster"],
        "cluster-b"
    );
}

#[test]
fn remote_pods_carry_calico_labels_and_namespace_labels_follow_the_namespace() {
    let mut index = seed_004();
    let b = remote("cluster-b");
    let key = EndpointKey::workload(b.clone(), "myapp", "postgres-0");
    let labels = index.get(&key).unwrap().label_map();
    assert_eq!(labels["app"], "postgres");
    assert_eq!(labels[NAMESPACE_LABEL], "myapp");
    assert_eq!(labels[ORCHESTRATOR_LABEL], "k8s");
    assert_eq!(labels[SERVICE_ACCOUNT_LABEL], "db-sa");
    assert_eq!(
        labels["federation.tigera.io/remoteClusterName"],
        "cluster-b"
    );
    assert_eq!(labels["pcns.projectcalico.org/name"], "myapp");
    assert_eq!(labels["pcsa.projectcalico.org/name"], "db-sa");
    assert!(
        !index
            .get(&EndpointKey::workload(Origin::Local, "myapp", "backend-0"))
            .unwrap()
            .label_map()
            .contains_key("federation.tigera.io/remoteClusterName")
    );

    // The remote namespace gets a label: its three pods (and nothing else) change.
    let changes = index.upsert_profile(namespace(b.clone(), "myapp", &[("team", "db")]));
    assert_eq!(changes.endpoints.len(), 3);
    assert!(changes.endpoints.iter().all(|k| k.origin() == &b));
    let sel = EndpointQuery::everywhere(
        Selector::parse("pcns.team == 'db' && app == 'postgres'").unwrap(),
    );
    assert_eq!(index.select(&sel).len(), 2);
    // A namespaceSelector sees the namespace's own labels.
    let scoped = EndpointQuery {
        namespace: NamespaceScope::Matching(Selector::parse("team == 'db'").unwrap()),
        ..EndpointQuery::everywhere(Selector::all())
    };
    assert_eq!(index.select(&scoped).len(), 3);
    // Same labels again: nothing changes.
    assert!(
        index
            .upsert_profile(namespace(b.clone(), "myapp", &[("team", "db")]))
            .is_empty()
    );
    // Service account labels as pcsa.*.
    let sa = ProfileView {
        key: ProfileKey::ServiceAccount(ServiceAccountKey {
            origin: b.clone(),
            namespace: "myapp".into(),
            name: "db-sa".into(),
        }),
        labels: labels_of(&[("role", "db")]),
    };
    assert_eq!(index.upsert_profile(sa).endpoints.len(), 3);
    assert_eq!(index.get(&key).unwrap().label_map()["pcsa.role"], "db");
    // The namespace goes: the label goes with it.
    let gone = index.delete_profile(&ProfileKey::Namespace(NamespaceKey {
        origin: b,
        name: "myapp".into(),
    }));
    assert_eq!(gone.endpoints.len(), 3);
    assert!(index.select(&sel).is_empty());
}

fn labels_of(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    labels(pairs)
}

#[test]
fn select_finds_exactly_what_a_full_scan_finds() {
    let mut index = seed_004();
    index.upsert(
        EndpointView::from_host_endpoint(
            remote("cluster-b"),
            &json!({
                "metadata": {"name": "node1-eth0", "labels": {"role": "db-host"}},
                "spec": {"node": "node1", "expectedIPs": ["192.168.1.5"]}
            }),
        )
        .unwrap(),
    );
    for text in [
        "app == 'postgres'",
        "has(app)",
        "all()",
        "app != 'postgres'",
        "!has(app)",
        "app in {'postgres', 'backend-app'} && federation.tigera.io/remoteClusterName == 'cluster-b'",
        "role == 'db-host'",
        "app == 'x' && app == 'y'",
        "app == 'nothing'",
        "has(nothing)",
    ] {
        let selector = Selector::parse(text).unwrap();
        for namespace in [
            NamespaceScope::Any,
            NamespaceScope::In("myapp".into()),
            NamespaceScope::NonNamespaced,
            NamespaceScope::Matching(Selector::parse("projectcalico.org/name == 'other'").unwrap()),
        ] {
            for reach in [Reach::Local, Reach::Everywhere] {
                let query = EndpointQuery {
                    selector: selector.clone(),
                    namespace: namespace.clone(),
                    service_accounts: None,
                    reach,
                };
                let got: Vec<&EndpointKey> = index.select(&query).iter().map(|e| e.key()).collect();
                let mut want: Vec<&EndpointKey> = index
                    .endpoints()
                    .filter(|e| {
                        let key = e.key();
                        (reach == Reach::Everywhere || key.origin() == &Origin::Local)
                            && match &namespace {
                                NamespaceScope::Any => true,
                                NamespaceScope::In(ns) => key.namespace() == Some(ns),
                                NamespaceScope::NonNamespaced => key.kind() == EndpointKind::Host,
                                NamespaceScope::Matching(_) => {
                                    key.namespace().map(|n| &**n) == Some("other")
                                }
                            }
                            && selector.matches_interned(e.labels())
                    })
                    .map(|e| e.key())
                    .collect();
                want.sort();
                assert_eq!(got, want, "{text} {namespace:?} {reach:?}");
            }
        }
    }
}

#[test]
fn pods_that_are_not_endpoints_and_listings() {
    let mut host = pod("ns", "h", &["10.0.0.1"], &[]);
    host.spec.as_mut().unwrap().host_network = Some(true);
    assert_eq!(EndpointView::from_pod(Origin::Local, host).unwrap(), None);
    let mut done = pod("ns", "d", &["10.0.0.1"], &[]);
    done.status.as_mut().unwrap().phase = Some("Succeeded".into());
    assert_eq!(EndpointView::from_pod(Origin::Local, done).unwrap(), None);
    assert!(matches!(
        EndpointView::from_host_endpoint(
            Origin::Local,
            &json!({"metadata": {"name": "h"}, "spec": {"expectedIPs": ["nope"]}})
        ),
        Err(EndpointError::InvalidExpectedIp { .. })
    ));

    let mut index = seed_004();
    let b = remote("cluster-b");
    // A pod that finishes stops being an endpoint.
    let mut finished = pod(
        "myapp",
        "backend-9",
        &["10.1.0.9"],
        &[("app", "backend-app")],
    );
    finished.status.as_mut().unwrap().phase = Some("Failed".into());
    let changes = index.apply_pod(b.clone(), finished).unwrap();
    assert_eq!(
        changes.endpoints,
        [EndpointKey::workload(b.clone(), "myapp", "backend-9")]
    );
    assert_eq!(index.len(), 5);
    index
        .apply_pod(
            b.clone(),
            pod(
                "myapp",
                "backend-9",
                &["10.1.0.9"],
                &[("app", "backend-app")],
            ),
        )
        .unwrap();
    assert_eq!(index.len(), 6);
    // A relist of cluster B without postgres-1: it goes, the others stay unchanged.
    let changes = index.reset_endpoints(
        &b,
        EndpointKind::Workload,
        vec![
            view(
                b.clone(),
                "myapp",
                "postgres-0",
                &["10.1.0.1"],
                &[("app", "postgres")],
            ),
            view(
                b.clone(),
                "myapp",
                "backend-9",
                &["10.1.0.9"],
                &[("app", "backend-app")],
            ),
        ],
    );
    assert_eq!(
        changes.endpoints,
        [EndpointKey::workload(b.clone(), "myapp", "postgres-1")]
    );
    assert_eq!(index.len(), 5);
    let changes = index.remove_cluster(&b);
    assert_eq!(changes.endpoints.len(), 2);
    assert_eq!(index.len(), 3);
}

const CALICO: MirrorConfig = MirrorConfig {
    calico: Some(CalicoApi::V3),
    cilium: false,
};

#[test]
fn remote_pods_and_hosts_are_mirrored_as_network_sets() {
    let mut index = seed_004();
    let b = remote("cluster-b");
    index.upsert(view(
        b.clone(),
        "myapp",
        "pending",
        &[],
        &[("app", "postgres")],
    ));
    index.upsert(
        EndpointView::from_host_endpoint(
            b.clone(),
            &json!({
                "metadata": {"name": "node1-eth0", "labels": {"role": "db-host"}},
                "spec": {"node": "node1", "expectedIPs": ["192.168.1.5", "fd00::5"]}
            }),
        )
        .unwrap(),
    );
    index.upsert(
        EndpointView::from_host_endpoint(
            b.clone(),
            &json!({"metadata": {"name": "bare"}, "spec": {}}),
        )
        .unwrap(),
    );
    let want = desired(&index, &CALICO);
    assert_eq!(want.skipped.pods_without_ips, 1);
    assert_eq!(want.skipped.hosts_without_ips, 1);
    assert!(
        want.skipped
            .message()
            .unwrap()
            .contains("1 remote pods have no IP yet")
    );
    // Three remote pods with IPs and one host; nothing local.
    assert_eq!(want.objects.len(), 4);
    let set = want
        .objects
        .values()
        .find(|o| &*o.object.name == "cluster-b.postgres-0")
        .unwrap();
    let json = set.to_json();
    assert_eq!(json["apiVersion"], "projectcalico.org/v3");
    assert_eq!(json["kind"], "NetworkSet");
    assert_eq!(json["metadata"]["namespace"], "myapp");
    assert_eq!(json["metadata"]["labels"]["app"], "postgres");
    assert_eq!(
        json["metadata"]["labels"]["federation.tigera.io/remoteClusterName"],
        "cluster-b"
    );
    assert_eq!(json["metadata"]["labels"][MANAGED_BY_LABEL], MANAGED_BY);
    assert_eq!(
        json["metadata"]["annotations"][SOURCE_ANNOTATION],
        "cluster-b/myapp/postgres-0"
    );
    assert_eq!(json["spec"]["nets"], json!(["10.1.0.1/32"]));
    let host = want
        .objects
        .values()
        .find(|o| o.object.kind == ObjectKind::GlobalNetworkSet(CalicoApi::V3))
        .unwrap();
    assert_eq!(&*host.object.name, "cluster-b.node1-eth0");
    assert_eq!(host.cidrs, ["192.168.1.5/32", "fd00::5/128"]);

    // The CRD form: same object, other apiVersion. Cilium: cluster-scoped groups.
    let crd = desired(
        &index,
        &MirrorConfig {
            calico: Some(CalicoApi::Crd),
            cilium: true,
        },
    );
    assert_eq!(crd.objects.len(), 8);
    let group = crd
        .objects
        .values()
        .find(|o| &*o.object.name == "cluster-b.pod.myapp.postgres-0")
        .unwrap()
        .to_json();
    assert_eq!(group["apiVersion"], "cilium.io/v2alpha1");
    assert_eq!(group["spec"]["externalCIDRs"], json!(["10.1.0.1/32"]));
    assert!(group["metadata"].get("namespace").is_none());
    assert!(
        crd.objects
            .keys()
            .any(|r| r.kind.api_version() == "crd.projectcalico.org/v1")
    );
}

/// Applies rewrites to a store standing in for the cluster.
fn apply(store: &mut BTreeMap<ObjectRef, DesiredObject>, rewrites: Vec<Rewrite>) -> usize {
    let n = rewrites.len();
    for r in rewrites {
        match r.desired {
            Some(d) => store.insert(r.object, d),
            None => store.remove(&r.object),
        };
    }
    n
}

#[test]
fn per_event_rewrites_keep_the_cluster_equal_to_a_rebuild() {
    let config = MirrorConfig {
        calico: Some(CalicoApi::Crd),
        cilium: true,
    };
    let mut index = IdentityIndex::new();
    let mut store = BTreeMap::new();
    let b = remote("cluster-b");
    let c = remote("cluster-c");
    let changes = index.reset_endpoints(
        &b,
        EndpointKind::Workload,
        (0..20)
            .map(|i| {
                view(
                    b.clone(),
                    "myapp",
                    &format!("p-{i}"),
                    &[&format!("10.1.0.{i}")],
                    &[("app", "postgres")],
                )
            })
            .collect(),
    );
    apply(&mut store, rewrites(&index, &config, &changes));
    index.upsert(view(
        c.clone(),
        "myapp",
        "p-0",
        &["10.2.0.1"],
        &[("app", "postgres")],
    ));
    store = desired(&index, &config).objects;

    let step = |store: &mut BTreeMap<ObjectRef, DesiredObject>,
                index: &mut IdentityIndex,
                changes: IdentityChanges,
                expect: usize| {
        let written = apply(store, rewrites(index, &config, &changes));
        assert_eq!(written, expect);
        assert_eq!(*store, desired(index, &config).objects);
    };
    // IP change, label change: the pod's two objects only.
    let ch = index.upsert(view(
        b.clone(),
        "myapp",
        "p-3",
        &["10.1.9.9"],
        &[("app", "postgres")],
    ));
    step(&mut store, &mut index, ch, 2);
    let ch = index.upsert(view(
        b.clone(),
        "myapp",
        "p-3",
        &["10.1.9.9"],
        &[("app", "pg")],
    ));
    step(&mut store, &mut index, ch, 2);
    // Same again: nothing.
    let ch = index.upsert(view(
        b.clone(),
        "myapp",
        "p-3",
        &["10.1.9.9"],
        &[("app", "pg")],
    ));
    step(&mut store, &mut index, ch, 0);
    // Loses its IP: its objects go.
    let ch = index.upsert(view(b.clone(), "myapp", "p-3", &[], &[("app", "pg")]));
    step(&mut store, &mut index, ch, 2);
    let ch = index.delete(&EndpointKey::workload(b.clone(), "myapp", "p-4"));
    step(&mut store, &mut index, ch, 2);
    // A local pod is never mirrored.
    let ch = index.upsert(view(Origin::Local, "myapp", "l", &["10.0.0.1"], &[]));
    step(&mut store, &mut index, ch, 0);
    // Namespace labels of B: B's pods (18 with IPs and one without) are rewritten.
    let ch = index.upsert_profile(namespace(b.clone(), "myapp", &[("team", "db")]));
    step(&mut store, &mut index, ch, 2 * 19);
    assert!(
        store
            .values()
            .filter(|o| o.source.starts_with("cluster-b/"))
            .all(|o| o.labels["pcns.team"] == "db")
    );
    let ch = index.remove_cluster(&b);
    step(&mut store, &mut index, ch, 2 * 19);
    assert_eq!(store.len(), 2);
}

#[test]
fn diff_creates_updates_deletes_only_what_is_ours() {
    let index = seed_004();
    let want = desired(&index, &CALICO);
    let kind = ObjectKind::NetworkSet(CalicoApi::V3);
    let ours = |name: &str, nets: &[&str]| {
        ExistingObject::from_json(kind, &json!({
            "metadata": {"name": name, "namespace": "myapp", "labels": {MANAGED_BY_LABEL: MANAGED_BY}},
            "spec": {"nets": nets}
        })).unwrap()
    };
    let foreign = ExistingObject::from_json(kind, &json!({
        "metadata": {"name": "cluster-b.postgres-1", "namespace": "myapp", "labels": {"app": "x"}}
    })).unwrap();
    let stranger = ExistingObject::from_json(
        kind,
        &json!({"metadata": {"name": "users-own", "namespace": "myapp"}}),
    )
    .unwrap();
    let existing = [
        ours("cluster-b.postgres-0", &["10.9.9.9/32"]),
        ours("cluster-b.gone", &[]),
        foreign,
        stranger,
    ];
    let diff = diff(&want, &existing);
    let summary: Vec<String> = diff
        .writes
        .iter()
        .map(|w| match w {
            Write::Create(d) => format!("create {}", d.object.name),
            Write::Update(d) => format!("update {}", d.object.name),
            Write::Delete(r) => format!("delete {}", r.name),
        })
        .collect();
    assert_eq!(summary.len(), 3, "{summary:?}");
    assert!(summary.contains(&"update cluster-b.postgres-0".to_owned()));
    assert!(summary.contains(&"create cluster-b.backend-9".to_owned()));
    assert!(summary.contains(&"delete cluster-b.gone".to_owned()));
    assert_eq!(diff.conflicts.len(), 1);
    assert_eq!(&*diff.conflicts[0].name, "cluster-b.postgres-1");
    // An up-to-date object needs no write.
    let current: Vec<ExistingObject> = want
        .objects
        .values()
        .map(|d| ExistingObject::from_json(d.object.kind, &d.to_json()).unwrap())
        .collect();
    assert!(self::diff(&want, &current).writes.is_empty());
}

#[test]
fn kubernetes_network_policy_is_read_as_calico_converts_it() {
    let mut index = seed_004();
    index.upsert_profile(namespace(remote("cluster-b"), "myapp", &[("team", "db")]));
    let policy = Policy::from_json(&json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "backend", "namespace": "myapp"},
        "spec": {
            "podSelector": {"matchLabels": {"app": "backend-app"}},
            "policyTypes": ["Egress"],
            "egress": [
                {"to": [
                    {"podSelector": {"matchExpressions": [{"key": "app", "operator": "In", "values": ["postgres"]}]}},
                    {"namespaceSelector": {"matchLabels": {"team": "db"}}, "podSelector": {}},
                    {"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.9.0.0/16"]}}
                ]},
                {}
            ]
        }
    })).unwrap();
    let explanation = explain(&index, &policy);
    assert_eq!(names(&explanation.applies_to), ["backend-0"]);
    let ids: Vec<String> = explanation.rules.iter().map(|r| r.id.to_string()).collect();
    assert_eq!(
        ids,
        [
            "egress rule 1 peer 1",
            "egress rule 1 peer 2",
            "egress rule 1 peer 3",
            "egress rule 2"
        ]
    );
    let dest = |i: usize| {
        explanation.rules[i]
            .destination
            .selection
            .as_ref()
            .map(names)
    };
    assert_eq!(
        dest(0).unwrap(),
        [
            "postgres-local",
            "cluster-b/postgres-0",
            "cluster-b/postgres-1"
        ]
    );
    assert_eq!(
        dest(1).unwrap(),
        [
            "cluster-b/backend-9",
            "cluster-b/postgres-0",
            "cluster-b/postgres-1"
        ]
    );
    assert_eq!(explanation.rules[2].destination.nets, ["10.0.0.0/8"]);
    assert_eq!(explanation.rules[2].destination.not_nets, ["10.9.0.0/16"]);
    assert!(explanation.rules[3].destination.any);
}

#[test]
fn global_policies_not_selectors_and_service_accounts() {
    let mut index = seed_004();
    index.upsert(
        EndpointView::from_host_endpoint(
            remote("cluster-b"),
            &json!({
                "metadata": {"name": "node1-eth0", "labels": {"role": "db-host"}},
                "spec": {"expectedIPs": ["192.168.1.5"]}
            }),
        )
        .unwrap(),
    );
    let policy = Policy::from_json(&json!({
        "apiVersion": "projectcalico.org/v3",
        "kind": "GlobalNetworkPolicy",
        "metadata": {"name": "g"},
        "spec": {
            "selector": "has(app)",
            "ingress": [
                {"action": "Allow", "source": {"selector": "app == 'postgres'", "notSelector": "has(federation.tigera.io/remoteClusterName)"}},
                {"action": "Deny", "source": {"namespaceSelector": "global()"}},
                {"action": "Allow", "source": {"serviceAccounts": {"names": ["db-sa"]}, "namespaceSelector": "projectcalico.org/name == 'other'"}}
            ]
        }
    })).unwrap();
    let e = explain(&index, &policy);
    // Global: every namespace, but local only.
    assert_eq!(
        names(&e.applies_to),
        ["backend-0", "postgres-local", "postgres-other"]
    );
    let first = e.rules[0].source.selection.as_ref().unwrap();
    assert_eq!(names(first), ["postgres-local", "postgres-other"]);
    assert_eq!(first.excluded.len(), 2);
    assert_eq!(
        names(e.rules[1].source.selection.as_ref().unwrap()),
        ["cluster-b/node1-eth0"]
    );
    assert_eq!(
        names(e.rules[2].source.selection.as_ref().unwrap()),
        ["postgres-other"]
    );
}

#[test]
fn invalid_selectors_name_the_rule() {
    let mut policy = seed_004_policy();
    policy["spec"]["egress"][0]["destination"]["selector"] = json!("app == 'postgres' &&");
    let err = Policy::from_json(&policy).unwrap_err();
    assert!(matches!(err, PolicyError::InvalidSelector { .. }));
    let message = err.to_string();
    assert!(
        message.starts_with("egress rule 1 destination.selector: invalid selector"),
        "{message}"
    );
    let err = Policy::from_json(&json!({"apiVersion": "v1", "kind": "Pod"})).unwrap_err();
    assert!(matches!(err, PolicyError::UnknownKind { .. }));
    let err = Policy::from_json(&json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": {"name": "x", "namespace": "n"},
        "spec": {"podSelector": {"matchExpressions": [{"key": "a", "operator": "Gt", "values": ["1"]}]}}
    })).unwrap_err();
    assert!(err.to_string().contains("\"Gt\""), "{err}");
}

#[test]
fn endpoint_listing_as_table_and_json() {
    let index = seed_004();
    let listing = EndpointListing::new(&index, Selector::parse("app == 'postgres'").unwrap());
    assert_eq!(listing.endpoints.len(), 4);
    let table = listing.render_table();
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].starts_with("CLUSTER"), "{table}");
    assert!(lines[1].starts_with("(local)"), "{table}");
    assert!(
        lines[3].contains("cluster-b")
            && lines[3].contains("10.1.0.1")
            && lines[3].contains("app=postgres"),
        "{table}"
    );
    let json = listing.to_json();
    assert_eq!(json["selector"], "app == \"postgres\"");
    assert_eq!(
        json["endpoints"][2]["labels"]["federation.tigera.io/remoteClusterName"],
        "cluster-b"
    );
    assert_eq!(json["endpoints"][0]["cluster"], serde_json::Value::Null);
}

#[test]
fn a_pod_that_changes_service_account_follows_the_new_one() {
    let mut index = IdentityIndex::new();
    let b = remote("cluster-b");
    let account = |name: &str, pairs: &[(&str, &str)]| ProfileView {
        key: ProfileKey::ServiceAccount(ServiceAccountKey {
            origin: b.clone(),
            namespace: "myapp".into(),
            name: name.into(),
        }),
        labels: labels(pairs),
    };
    index.upsert_profile(account("db-sa", &[("role", "db")]));
    index.upsert_profile(account("other-sa", &[("role", "other")]));
    // A namespace label may not override Calico's name label.
    index.upsert_profile(namespace(
        b.clone(),
        "myapp",
        &[("projectcalico.org/name", "spoof")],
    ));
    index.upsert(view(b.clone(), "myapp", "p", &["10.1.0.1"], &[]));
    let key = EndpointKey::workload(b.clone(), "myapp", "p");
    assert_eq!(index.get(&key).unwrap().label_map()["pcsa.role"], "db");
    assert_eq!(
        index.get(&key).unwrap().label_map()["pcns.projectcalico.org/name"],
        "myapp"
    );
    let mut moved = pod("myapp", "p", &["10.1.0.1"], &[]);
    moved.spec.as_mut().unwrap().service_account_name = Some("other-sa".into());
    index.apply_pod(b.clone(), moved).unwrap();
    assert_eq!(index.get(&key).unwrap().label_map()["pcsa.role"], "other");
    // The old service account no longer reaches it; the new one does.
    assert!(
        index
            .upsert_profile(account("db-sa", &[("role", "x")]))
            .is_empty()
    );
    assert_eq!(
        index
            .upsert_profile(account("other-sa", &[("role", "y")]))
            .endpoints,
        [key]
    );
}

mod incremental {
    //! Random event sequences: the index, and the objects written from
    //! per-event rewrites, always equal what a rebuild from the final state gives.

    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;

    #[derive(Debug, Clone)]
    enum Op {
        Pod {
            cluster: usize,
            ns: usize,
            name: usize,
            ip: Option<u8>,
            app: usize,
            sa: usize,
        },
        DeletePod {
            cluster: usize,
            ns: usize,
            name: usize,
        },
        Namespace {
            cluster: usize,
            ns: usize,
            team: Option<usize>,
        },
        ResetPods {
            cluster: usize,
            keep: usize,
        },
        RemoveCluster {
            cluster: usize,
        },
    }

    fn origin(c: usize) -> Origin {
        match c {
            0 => Origin::Local,
            n => remote(&format!("c{n}")),
        }
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            6 => (0..3usize, 0..2usize, 0..4usize, proptest::option::of(0..3u8), 0..3usize, 0..2usize)
                .prop_map(|(cluster, ns, name, ip, app, sa)| Op::Pod { cluster, ns, name, ip, app, sa }),
            2 => (0..3usize, 0..2usize, 0..4usize).prop_map(|(cluster, ns, name)| Op::DeletePod { cluster, ns, name }),
            2 => (0..3usize, 0..2usize, proptest::option::of(0..2usize))
                .prop_map(|(cluster, ns, team)| Op::Namespace { cluster, ns, team }),
            1 => (0..3usize, 0..4usize).prop_map(|(cluster, keep)| Op::ResetPods { cluster, keep }),
            1 => (0..3usize).prop_map(|cluster| Op::RemoveCluster { cluster }),
        ]
    }

    fn pod_view(
        cluster: usize,
        ns: usize,
        name: usize,
        ip: Option<u8>,
        app: usize,
        sa: usize,
    ) -> EndpointView {
        let ips: Vec<String> = ip.iter().map(|i| format!("10.{cluster}.0.{i}")).collect();
        let ips: Vec<&str> = ips.iter().map(String::as_str).collect();
        let mut p = pod(
            &format!("ns{ns}"),
            &format!("p{name}"),
            &ips,
            &[("app", ["a", "b", "c"][app])],
        );
        p.spec.as_mut().unwrap().service_account_name = Some(format!("sa{sa}"));
        EndpointView::from_pod(origin(cluster), p).unwrap().unwrap()
    }

    proptest! {
        #[test]
        fn rewrites_and_index_match_a_rebuild(ops in proptest::collection::vec(op(), 1..40)) {
            let config = MirrorConfig { calico: Some(CalicoApi::V3), cilium: true };
            let mut index = IdentityIndex::new();
            let mut store: BTreeMap<ObjectRef, DesiredObject> = BTreeMap::new();
            let mut pods: BTreeMap<EndpointKey, EndpointView> = BTreeMap::new();
            let mut namespaces: BTreeMap<ProfileKey, ProfileView> = BTreeMap::new();
            for op in ops {
                let changes = match op {
                    Op::Pod { cluster, ns, name, ip, app, sa } => {
                        let v = pod_view(cluster, ns, name, ip, app, sa);
                        pods.insert(v.key.clone(), v.clone());
                        index.upsert(v)
                    }
                    Op::DeletePod { cluster, ns, name } => {
                        let key = EndpointKey::workload(origin(cluster), &format!("ns{ns}"), &format!("p{name}"));
                        pods.remove(&key);
                        index.delete(&key)
                    }
                    Op::Namespace { cluster, ns, team } => {
                        let key = ProfileKey::Namespace(NamespaceKey { origin: origin(cluster), name: format!("ns{ns}").into() });
                        match team {
                            Some(t) => {
                                let v = namespace(origin(cluster), &format!("ns{ns}"), &[("team", ["x", "y"][t])]);
                                namespaces.insert(key, v.clone());
                                index.upsert_profile(v)
                            }
                            None => {
                                namespaces.remove(&key);
                                index.delete_profile(&key)
                            }
                        }
                    }
                    Op::ResetPods { cluster, keep } => {
                        let o = origin(cluster);
                        pods.retain(|k, _| k.origin() != &o || k.name().ends_with(&keep.to_string()) || k.name().len() > 2);
                        let listing: Vec<EndpointView> = pods.values().filter(|v| v.key.origin() == &o).cloned().collect();
                        index.reset_endpoints(&o, EndpointKind::Workload, listing)
                    }
                    Op::RemoveCluster { cluster } => {
                        let o = origin(cluster);
                        pods.retain(|k, _| k.origin() != &o);
                        namespaces.retain(|k, _| k.origin() != &o);
                        index.remove_cluster(&o)
                    }
                };
                apply(&mut store, rewrites(&index, &config, &changes));
                let mut fresh = IdentityIndex::new();
                for v in namespaces.values() {
                    fresh.upsert_profile(v.clone());
                }
                for v in pods.values() {
                    fresh.upsert(v.clone());
                }
                prop_assert_eq!(&store, &desired(&fresh, &config).objects);
                prop_assert_eq!(index.len(), fresh.len());
                for e in fresh.endpoints() {
                    let mine = index.get(e.key()).unwrap();
                    prop_assert_eq!(mine.labels(), e.labels());
                    prop_assert_eq!(mine.ips(), e.ips());
                }
                for text in ["app == 'a'", "pcns.team == 'x'", "has(federation.tigera.io/remoteClusterName)", "app != 'b'"] {
                    let q = EndpointQuery::everywhere(Selector::parse(text).unwrap());
                    let a: Vec<&EndpointKey> = index.select(&q).iter().map(|e| e.key()).collect();
                    let b: Vec<&EndpointKey> = fresh.select(&q).iter().map(|e| e.key()).collect();
                    prop_assert_eq!(a, b);
                }
            }
        }
    }
}
