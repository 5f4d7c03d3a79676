use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use serde_json::json;

use super::*;

/// Seed 004's example, with the namespace placeholder filled in.
fn seed_object() -> serde_json::Value {
    json!({
        "apiVersion": "projectcalico.org/v3",
        "kind": "RemoteClusterConfiguration",
        "metadata": {"name": "cluster-b"},
        "spec": {
            "clusterAccessSecret": {
                "name": "remote-cluster-secret-name",
                "namespace": "calico-system",
                "kind": "Secret"
            },
            "syncOptions": {"overlayRoutingMode": "Enabled"}
        }
    })
}

#[test]
fn reads_the_seed_example() {
    let spec = RemoteClusterSpec::from_object(&seed_object(), "fedmesh").unwrap();
    assert_eq!(spec.name.as_str(), "cluster-b");
    assert_eq!(
        spec.access_secret,
        SecretRef {
            namespace: "calico-system".into(),
            name: "remote-cluster-secret-name".into()
        }
    );
    assert_eq!(spec.overlay_routing, OverlayRoutingMode::Enabled);
    assert_eq!(spec.unreachable, UnreachablePolicy::KeepLastKnown);
}

#[test]
fn defaults_and_the_unreachable_policy() {
    let mut object = seed_object();
    object["spec"]["clusterAccessSecret"]
        .as_object_mut()
        .unwrap()
        .remove("namespace");
    object["spec"]
        .as_object_mut()
        .unwrap()
        .remove("syncOptions");
    object["spec"]["unreachable"] = json!({"endpoints": "Withdraw", "gracePeriodSeconds": 30});
    let spec = RemoteClusterSpec::from_object(&object, "fedmesh").unwrap();
    assert_eq!(spec.access_secret.namespace, "fedmesh");
    assert_eq!(spec.overlay_routing, OverlayRoutingMode::Disabled);
    assert_eq!(
        spec.unreachable,
        UnreachablePolicy::Withdraw {
            grace_period: Duration::from_secs(30)
        }
    );
    object["spec"]["unreachable"] = json!({"endpoints": "Withdraw"});
    let spec = RemoteClusterSpec::from_object(&object, "fedmesh").unwrap();
    assert_eq!(
        spec.unreachable,
        UnreachablePolicy::Withdraw {
            grace_period: DEFAULT_GRACE_PERIOD
        }
    );
}

#[test]
fn bad_specs_say_which_field() {
    let cases: Vec<(serde_json::Value, &str)> = vec![
        (
            json!({"metadata": {"name": "b"}, "spec": {}}),
            "spec.clusterAccessSecret: Required value",
        ),
        (
            json!({"metadata": {"name": "b"}, "spec": {"clusterAccessSecret": {"namespace": "x"}}}),
            "spec.clusterAccessSecret.name: Required value",
        ),
        (
            json!({"metadata": {"name": "b"}, "spec": {"clusterAccessSecret": {"name": "s", "kind": "ConfigMap"}}}),
            "spec.clusterAccessSecret.kind: Unsupported value: \"ConfigMap\"",
        ),
        (
            json!({"metadata": {"name": "b"}, "spec": {"clusterAccessSecret": {"name": "s"}, "syncOptions": {"overlayRoutingMode": "On"}}}),
            "spec.syncOptions.overlayRoutingMode: Unsupported value: \"On\"",
        ),
        (
            json!({"metadata": {"name": "b"}, "spec": {"clusterAccessSecret": {"name": "s"}, "unreachable": {"endpoints": "Drop"}}}),
            "spec.unreachable.endpoints: Unsupported value: \"Drop\"",
        ),
        (
            json!({"metadata": {"name": "b"}, "spec": {"clusterAccessSecret": {"name": "s"}, "unreachable": {"gracePeriodSeconds": -1}}}),
            "spec.unreachable.gracePeriodSeconds: Unsupported value: \"-1\"",
        ),
        (
            json!({"metadata": {"name": "Cluster_B"}, "spec": {"clusterAccessSecret": {"name": "s"}}}),
            "metadata.name: cluster name \"Cluster_B\" is not a DNS-1123 subdomain",
        ),
    ];
    for (object, expected) in cases {
        let error = RemoteClusterSpec::from_object(&object, "fedmesh").unwrap_err();
        assert!(
            error.to_string().starts_with(expected),
            "{error} should start with {expected}"
        );
    }
}

#[test]
fn access_secret_keys_are_calicos() {
    let secret = SecretRef {
        namespace: "ns".into(),
        name: "s".into(),
    };
    let mut data = BTreeMap::from([
        ("datastoreType".to_string(), b"kubernetes".to_vec()),
        ("kubeconfig".to_string(), b"apiVersion: v1".to_vec()),
    ]);
    assert_eq!(
        kubeconfig_from_secret(&secret, &data).unwrap(),
        b"apiVersion: v1"
    );
    data.insert("datastoreType".into(), b"etcdv3".to_vec());
    assert_eq!(
        kubeconfig_from_secret(&secret, &data)
            .unwrap_err()
            .to_string(),
        "secret ns/s: datastoreType \"etcdv3\" is not supported: fedmesh reads remote clusters \
         through the Kubernetes API (\"kubernetes\")"
    );
    data.remove("datastoreType");
    data.remove("kubeconfig");
    assert_eq!(
        kubeconfig_from_secret(&secret, &data)
            .unwrap_err()
            .to_string(),
        "secret ns/s: no \"kubeconfig\" key"
    );
}

fn at(seconds: i64) -> Timestamp {
    Timestamp::from_second(1_800_000_000 + seconds).unwrap()
}

fn failed() -> SyncEvent {
    SyncEvent::Failed {
        reason: Reason::Unreachable,
        message: "connection refused".into(),
    }
}

#[test]
fn status_tracks_state_since_and_counts() {
    let s0 = RemoteStatus::next(None, &SyncEvent::Connecting, at(0));
    assert_eq!(s0.state, SyncState::Connecting);
    assert_eq!(s0.conditions.iter().filter(|c| c.status).count(), 1);

    let s1 = RemoteStatus::next(
        Some(&s0),
        &SyncEvent::Synced {
            services: 3,
            endpoints: 12,
        },
        at(5),
    );
    assert_eq!(
        (s1.state, s1.since, s1.services, s1.endpoints),
        (SyncState::InSync, at(5), 3, 12)
    );
    assert_eq!(s1.last_sync, Some(at(5)));

    // A resync in the same state keeps `since` and the condition's transition time.
    let s2 = RemoteStatus::next(
        Some(&s1),
        &SyncEvent::Synced {
            services: 4,
            endpoints: 12,
        },
        at(9),
    );
    assert_eq!(s2.since, at(5));
    let in_sync = s2
        .conditions
        .iter()
        .find(|c| c.state == SyncState::InSync)
        .unwrap();
    assert_eq!(in_sync.last_transition, at(5));
    assert_eq!(
        in_sync.message,
        "4 services and 12 endpoints of the remote cluster are in use."
    );

    let s3 = RemoteStatus::next(Some(&s2), &failed(), at(20));
    assert_eq!(s3.state, SyncState::ConnectionFailed);
    assert_eq!(
        (s3.services, s3.endpoints),
        (4, 12),
        "counts of the last sync stay"
    );
    let json = s3.to_json();
    assert_eq!(json["state"], "ConnectionFailed");
    assert_eq!(json["message"], "connection refused");
    assert_eq!(json["syncedServices"], 4);
    assert_eq!(json["conditions"].as_array().unwrap().len(), 4);
    assert_eq!(json["conditions"][2]["type"], "ConnectionFailed");
    assert_eq!(json["conditions"][2]["status"], "True");
    assert_eq!(json["conditions"][2]["reason"], "Unreachable");
    assert_eq!(json["since"], "2027-01-15T08:00:20Z");
    assert_eq!(SyncState::ConnectionFailed.gauge_value(), 0);
    assert_eq!(SyncState::InSync.gauge_value(), 2);
}

#[test]
fn withdrawal_follows_the_policy_across_reconnect_attempts() {
    let policy = UnreachablePolicy::Withdraw {
        grace_period: Duration::from_secs(60),
    };
    let synced = RemoteStatus::next(
        None,
        &SyncEvent::Synced {
            services: 1,
            endpoints: 1,
        },
        at(0),
    );
    assert_eq!(synced.withdrawal(policy, at(1000)), Withdrawal::Keep);

    let down = RemoteStatus::next(Some(&synced), &failed(), at(10));
    assert_eq!(
        down.withdrawal(policy, at(40)),
        Withdrawal::After(Duration::from_secs(30))
    );
    // Retrying does not restart the grace period.
    let retry = RemoteStatus::next(Some(&down), &SyncEvent::Connecting, at(50));
    assert_eq!(retry.unreachable_since, Some(at(10)));
    assert_eq!(retry.withdrawal(policy, at(70)), Withdrawal::Now);
    assert_eq!(
        retry.withdrawal(UnreachablePolicy::KeepLastKnown, at(10_000)),
        Withdrawal::Keep
    );
    // Syncing again clears it.
    let back = RemoteStatus::next(
        Some(&retry),
        &SyncEvent::Synced {
            services: 1,
            endpoints: 1,
        },
        at(80),
    );
    assert_eq!(back.withdrawal(policy, at(10_000)), Withdrawal::Keep);

    // A broken configuration (a Secret deleted to be recreated) follows the
    // same policy as an unreachable remote: kept under KeepLastKnown, withdrawn
    // after the grace period under Withdraw.
    let broken = RemoteStatus::next(
        Some(&back),
        &SyncEvent::Failed {
            reason: Reason::SecretNotFound,
            message: "secret ns/s not found".into(),
        },
        at(90),
    );
    assert_eq!(broken.state, SyncState::ConfigIncomplete);
    assert_eq!(
        broken.withdrawal(UnreachablePolicy::KeepLastKnown, at(10_000)),
        Withdrawal::Keep
    );
    assert_eq!(
        broken.withdrawal(policy, at(100)),
        Withdrawal::After(Duration::from_secs(50))
    );
    assert_eq!(broken.withdrawal(policy, at(150)), Withdrawal::Now);
}

#[test]
fn a_refused_remote_is_withdrawn_whatever_the_policy() {
    for reason in [Reason::DuplicateCluster, Reason::LocalCluster] {
        let refused = RemoteStatus::next(
            None,
            &SyncEvent::Failed {
                reason,
                message: "refused".into(),
            },
            at(0),
        );
        assert_eq!(refused.state, SyncState::ConfigIncomplete);
        assert_eq!(
            refused.withdrawal(UnreachablePolicy::KeepLastKnown, at(0)),
            Withdrawal::Now
        );
    }
}

#[test]
fn withdrawn_counts_are_zero_until_the_next_sync() {
    let synced = RemoteStatus::next(
        None,
        &SyncEvent::Synced {
            services: 2,
            endpoints: 7,
        },
        at(0),
    );
    let down = RemoteStatus::next(Some(&synced), &failed(), at(10)).withdrawn();
    assert_eq!(
        (down.services, down.endpoints, down.withdrawn),
        (0, 0, true)
    );
    assert_eq!(down.to_json()["endpointsWithdrawn"], true);
    let retry = RemoteStatus::next(Some(&down), &SyncEvent::Connecting, at(20));
    assert!(retry.withdrawn, "still withdrawn while reconnecting");
    let back = RemoteStatus::next(
        Some(&retry),
        &SyncEvent::Synced {
            services: 2,
            endpoints: 7,
        },
        at(30),
    );
    assert_eq!((back.services, back.withdrawn), (2, false));
}
