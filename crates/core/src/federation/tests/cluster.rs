use std::collections::BTreeMap;

use k8s_openapi::jiff::Timestamp;
use serde_json::json;

use super::super::*;
use crate::remote::SecretRef;

fn at(seconds: i64) -> Timestamp {
    Timestamp::from_second(1_800_000_000 + seconds).unwrap()
}

#[test]
fn reads_a_cluster_and_federation_v1_addresses() {
    let object = json!({
        "apiVersion": API_VERSION, "kind": KIND,
        "metadata": {"name": "us-central1-a", "labels": {"environment": "prod"}},
        "spec": {"server": "https://10.0.0.1:6443", "secretRef": {"name": "us-central1-a-member"}}
    });
    let spec = ClusterSpec::from_object(&object, "fedmesh").unwrap();
    assert_eq!(spec.name.as_str(), "us-central1-a");
    assert_eq!(spec.server, "https://10.0.0.1:6443");
    assert_eq!(
        spec.secret,
        SecretRef {
            namespace: "fedmesh".into(),
            name: "us-central1-a-member".into()
        }
    );
    assert_eq!(spec.labels["environment"], "prod");

    let v1 = json!({
        "metadata": {"name": "asia"},
        "spec": {
            "serverAddressByClientCIDRs": [
                {"clientCIDR": "10.0.0.0/8", "serverAddress": "https://internal:443"},
                {"clientCIDR": "0.0.0.0/0", "serverAddress": "https://1.2.3.4"}
            ],
            "secretRef": {"name": "asia", "namespace": "federation-system"}
        }
    });
    let spec = ClusterSpec::from_object(&v1, "fedmesh").unwrap();
    assert_eq!(spec.server, "https://1.2.3.4");
    assert_eq!(spec.secret.namespace, "federation-system");
}

#[test]
fn bad_clusters_say_which_field() {
    let cases = [
        (json!({"metadata": {}}), "metadata.name: Required value"),
        (
            json!({"metadata": {"name": "Asia_1"}, "spec": {}}),
            "metadata.name: cluster name \"Asia_1\" is not a DNS-1123 subdomain",
        ),
        (
            json!({"metadata": {"name": "a"}, "spec": {"secretRef": {"name": "s"}}}),
            "spec.server: Required value; the member's API server URL",
        ),
        (
            json!({"metadata": {"name": "a"}, "spec": {"server": "10.0.0.1:6443", "secretRef": {"name": "s"}}}),
            "spec.server: Invalid value: \"10.0.0.1:6443\": must be an https:// (or http://) URL",
        ),
        (
            json!({"metadata": {"name": "a"}, "spec": {"server": "https://", "secretRef": {"name": "s"}}}),
            "spec.server: Invalid value: \"https://\"",
        ),
        (
            json!({"metadata": {"name": "a"}, "spec": {"server": "https://x"}}),
            "spec.secretRef.name: Required value; the Secret whose key \"kubeconfig\"",
        ),
    ];
    for (object, expected) in cases {
        let error = ClusterSpec::from_object(&object, "fedmesh")
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with(expected),
            "{error:?} should start with {expected:?}"
        );
    }
}

fn probe(previous: Option<&ClusterStatus>, probe: Probe, now: i64) -> ClusterStatus {
    ClusterStatus::next(previous, &ClusterEvent::Probed(probe), 2, at(now))
}

fn unreachable() -> Probe {
    Probe::Unreachable {
        message: "connection refused".into(),
    }
}

#[test]
fn each_probe_result_gives_its_state_and_reason() {
    let cases = [
        (Probe::Healthy, ClusterState::Ready, "ClusterReady"),
        (
            Probe::Unhealthy {
                message: "readyz: etcd failed".into(),
            },
            ClusterState::NotReady,
            "ClusterNotReady",
        ),
        (unreachable(), ClusterState::Offline, "ClusterNotReachable"),
        (
            Probe::Unauthorized {
                message: "401".into(),
            },
            ClusterState::Offline,
            "ClusterUnauthorized",
        ),
        (
            Probe::ConfigInvalid {
                message: "secret fedmesh/a not found".into(),
            },
            ClusterState::Offline,
            "ClusterConfigInvalid",
        ),
    ];
    for (result, state, reason) in cases {
        // A first probe decides at once: there is no state to keep.
        let status = probe(None, result.clone(), 0);
        assert_eq!((status.state(), status.reason.as_str()), (state, reason));
        let json = status.to_json();
        assert_eq!(json["conditions"][0]["type"], "Ready");
        assert_eq!(
            json["conditions"][0]["status"],
            if state == ClusterState::Ready {
                "True"
            } else {
                "False"
            }
        );
        assert_eq!(json["conditions"][1]["type"], "Offline");
        assert_eq!(
            json["conditions"][1]["status"],
            if state == ClusterState::Offline {
                "True"
            } else {
                "False"
            }
        );
        assert_eq!(json["conditions"][0]["reason"], reason);
    }
}

#[test]
fn a_ready_member_goes_offline_only_after_the_threshold() {
    let ready = probe(None, Probe::Healthy, 0);
    let once = probe(Some(&ready), unreachable(), 1);
    assert_eq!(
        once.state(),
        ClusterState::Ready,
        "one failure is tolerated"
    );
    assert_eq!(once.failures, 1);
    assert_eq!(once.last_failure.as_deref(), Some("connection refused"));
    assert_eq!(once.ready_since, at(0));
    assert!(once.differs_beyond_probe_time(&ready));

    let twice = probe(Some(&once), unreachable(), 2);
    assert_eq!(twice.state(), ClusterState::Offline);
    assert_eq!(twice.reason, Reason::ClusterNotReachable);
    assert_eq!((twice.ready_since, twice.offline_since), (at(2), at(2)));
    let json = twice.to_json();
    assert_eq!(
        json["conditions"][1]["lastTransitionTime"],
        "2027-01-15T08:00:02Z"
    );
    assert_eq!(json["conditions"][1]["message"], "connection refused");

    // Still failing: transition times stay, the probe time moves.
    let still = probe(Some(&twice), unreachable(), 3);
    assert_eq!(
        (still.offline_since, still.last_probe),
        (at(2), Some(at(3)))
    );
    // The credentials are now refused: a new reason, still Offline.
    let refused = probe(
        Some(&still),
        Probe::Unauthorized {
            message: "Unauthorized".into(),
        },
        4,
    );
    assert_eq!(refused.reason, Reason::ClusterUnauthorized);
    assert_eq!(refused.offline_since, at(2));

    // One healthy probe brings it back.
    let back = probe(Some(&refused), Probe::Healthy, 5);
    assert_eq!(back.state(), ClusterState::Ready);
    assert_eq!((back.failures, back.last_failure.clone()), (0, None));
    assert_eq!((back.ready_since, back.offline_since), (at(5), at(5)));
    // A healthy probe of a healthy member changes nothing but the probe time.
    let again = probe(Some(&back), Probe::Healthy, 6);
    assert!(!again.differs_beyond_probe_time(&back));
    assert_eq!(again.last_probe, Some(at(6)));
}

#[test]
fn a_broken_configuration_takes_effect_at_once() {
    let ready = probe(None, Probe::Healthy, 0);
    let broken = probe(
        Some(&ready),
        Probe::ConfigInvalid {
            message: "secret fedmesh/a has no \"kubeconfig\" key".into(),
        },
        1,
    );
    assert_eq!(broken.reason, Reason::ClusterConfigInvalid);
    // A threshold of 1 means every failure counts.
    let threshold_one =
        ClusterStatus::next(Some(&ready), &ClusterEvent::Probed(unreachable()), 1, at(1));
    assert_eq!(threshold_one.state(), ClusterState::Offline);
}

fn node(zone: Option<&str>, region: Option<&str>, legacy: bool) -> BTreeMap<String, String> {
    let (z, r) = if legacy {
        (LEGACY_ZONE_LABEL, LEGACY_REGION_LABEL)
    } else {
        (ZONE_LABEL, REGION_LABEL)
    };
    let mut labels = BTreeMap::from([("kubernetes.io/os".to_owned(), "linux".to_owned())]);
    if let Some(zone) = zone {
        labels.insert(z.into(), zone.into());
    }
    if let Some(region) = region {
        labels.insert(r.into(), region.into());
    }
    labels
}

#[test]
fn zones_and_region_come_from_nodes_with_the_legacy_labels_as_fallback() {
    let mut topology = NodeTopology::default();
    assert_eq!(topology.topology(), Topology::default());
    assert!(topology.apply(
        "n1",
        Some(&node(Some("us-central1-b"), Some("us-central1"), false))
    ));
    assert!(topology.apply(
        "n2",
        Some(&node(Some("us-central1-a"), Some("us-central1"), true))
    ));
    assert!(topology.apply("n3", Some(&node(None, None, false))));
    // The new label wins over the legacy one on the same node.
    let mut both = node(Some("us-central1-c"), Some("us-central1"), false);
    both.insert(LEGACY_ZONE_LABEL.into(), "old-zone".into());
    assert!(topology.apply("n4", Some(&both)));
    assert_eq!(
        topology.topology(),
        Topology {
            zones: vec![
                "us-central1-a".into(),
                "us-central1-b".into(),
                "us-central1-c".into()
            ],
            region: Some("us-central1".into()),
        }
    );
    // An update that changes nothing says so.
    assert!(!topology.apply(
        "n1",
        Some(&node(Some("us-central1-b"), Some("us-central1"), false))
    ));
    // The last node of a zone going takes the zone with it.
    assert!(topology.apply("n2", None));
    assert_eq!(
        topology.topology().zones,
        ["us-central1-b", "us-central1-c"]
    );
    assert!(!topology.apply("gone", None));

    // The region of most nodes; the first by name on a tie.
    topology.reset([
        ("a", &node(Some("z1"), Some("west"), false)),
        ("b", &node(Some("z2"), Some("east"), false)),
    ]);
    assert_eq!(topology.topology().region.as_deref(), Some("east"));
    topology.apply("c", Some(&node(Some("z3"), Some("west"), false)));
    assert_eq!(topology.topology().region.as_deref(), Some("west"));
    assert_eq!(topology.topology().zones, ["z1", "z2", "z3"]);
}

#[test]
fn topology_events_keep_the_conditions() {
    let ready = probe(None, Probe::Healthy, 0);
    let topology = Topology {
        zones: vec!["a".into(), "b".into()],
        region: Some("r".into()),
    };
    let placed = ClusterStatus::next(
        Some(&ready),
        &ClusterEvent::Topology(topology.clone()),
        2,
        at(9),
    );
    assert_eq!(placed.reason, ready.reason);
    assert_eq!(placed.last_probe, ready.last_probe);
    assert_eq!(placed.to_json()["zones"], json!(["a", "b"]));
    assert_eq!(placed.to_json()["region"], "r");
    // And the next probe keeps the topology.
    assert_eq!(probe(Some(&placed), Probe::Healthy, 10).topology, topology);
}

#[test]
fn federation_names_and_scopes() {
    assert!(FederationName::new("myfederation").is_ok());
    for bad in ["", "My", "a.b", "-a", &"a".repeat(64)] {
        assert!(FederationName::new(bad).is_err(), "{bad}");
    }
    let none = BTreeMap::new();
    let marked = BTreeMap::from([(FEDERATED_NAMESPACE_LABEL.to_owned(), "true".to_owned())]);
    assert!(Scope::Everything.includes("default", &none, "fedmesh"));
    assert!(!Scope::Everything.includes("kube-system", &marked, "fedmesh"));
    assert!(!Scope::Everything.includes("fedmesh", &none, "fedmesh"));
    assert!(!Scope::LabelledNamespaces.includes("default", &none, "fedmesh"));
    assert!(Scope::LabelledNamespaces.includes("shop", &marked, "fedmesh"));
}

#[test]
fn nodes_seen_before_the_first_probe_do_not_delay_it() {
    let topology = Topology {
        zones: vec!["z".into()],
        region: None,
    };
    let listed = ClusterStatus::next(None, &ClusterEvent::Topology(topology.clone()), 2, at(0));
    assert_eq!(listed.state(), ClusterState::NotReady);
    assert_eq!(listed.last_probe, None);
    // The first probe decides at once, threshold or not, and keeps the zones.
    let failed = probe(Some(&listed), unreachable(), 1);
    assert_eq!(failed.state(), ClusterState::Offline);
    assert_eq!(failed.topology, topology);
}

#[test]
fn a_connection_state_reads_as_the_probe_it_stands_for() {
    use crate::remote::{Reason as Why, RemoteStatus, SyncEvent};
    let status = |event: SyncEvent| RemoteStatus::next(None, &event, at(0));
    let failed = |reason: Why| {
        status(SyncEvent::Failed {
            reason,
            message: format!("{} happened", reason.as_str()),
        })
    };
    assert_eq!(Probe::from_connection(&status(SyncEvent::Connecting)), None);
    assert_eq!(
        Probe::from_connection(&status(SyncEvent::Synced {
            services: 1,
            endpoints: 2
        })),
        Some(Probe::Healthy)
    );
    let cases = [
        (Why::Unreachable, Reason::ClusterNotReachable),
        (Why::Timeout, Reason::ClusterNotReachable),
        (Why::Unauthorized, Reason::ClusterUnauthorized),
        (Why::Forbidden, Reason::ClusterUnauthorized),
        (Why::CertificateChanged, Reason::ClusterUnauthorized),
        (Why::ServerError, Reason::ClusterNotReady),
        (Why::LocalApiError, Reason::ClusterNotReady),
        (Why::SecretNotFound, Reason::ClusterConfigInvalid),
        (Why::InvalidSecret, Reason::ClusterConfigInvalid),
        (Why::InvalidKubeconfig, Reason::ClusterConfigInvalid),
        (Why::InvalidConfiguration, Reason::ClusterConfigInvalid),
        (Why::DuplicateCluster, Reason::ClusterConfigInvalid),
        (Why::LocalCluster, Reason::ClusterConfigInvalid),
    ];
    for (why, reason) in cases {
        let probe = Probe::from_connection(&failed(why)).unwrap();
        let cluster = ClusterStatus::next(None, &ClusterEvent::Probed(probe), 1, at(1));
        assert_eq!(cluster.reason, reason, "{why:?}");
        assert_eq!(cluster.message, format!("{} happened", why.as_str()));
    }
}
