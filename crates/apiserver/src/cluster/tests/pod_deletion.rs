use serde_json::json;

use super::{pod, with};
use crate::cluster::pod_deletion::*;

fn now() -> jiff::Timestamp {
    "2024-05-01T10:00:00Z".parse().unwrap()
}

#[test]
fn grace_period_rules() {
    let scheduled = with(
        pod("a", "10.0.0.2", true),
        json!({"spec": {"terminationGracePeriodSeconds": 30}}),
    );
    assert_eq!(grace_period_seconds(&scheduled, None), 30);
    assert_eq!(grace_period_seconds(&scheduled, Some(5)), 5);
    assert_eq!(grace_period_seconds(&scheduled, Some(-3)), 1);
    let unscheduled = with(scheduled.clone(), json!({"spec": {"nodeName": null}}));
    assert_eq!(grace_period_seconds(&unscheduled, Some(5)), 0);
    let done = with(scheduled.clone(), json!({"status": {"phase": "Succeeded"}}));
    assert_eq!(grace_period_seconds(&done, None), 0);
    assert_eq!(grace_period_seconds(&pod("b", "10.0.0.3", true), None), 0);
}

#[test]
fn graceful_delete_sets_deadline_and_only_shortens() {
    let p = with(
        pod("a", "10.0.0.2", true),
        json!({"spec": {"terminationGracePeriodSeconds": 30}}),
    );
    let PodDeletion::Graceful(marked) = delete_pod(&p, None, now()) else {
        panic!("not graceful")
    };
    assert_eq!(marked.metadata.deletion_grace_period_seconds, Some(30));
    assert_eq!(
        marked
            .metadata
            .deletion_timestamp
            .as_ref()
            .unwrap()
            .0
            .to_string(),
        "2024-05-01T10:00:30Z"
    );
    let PodDeletion::Graceful(again) = delete_pod(&marked, Some(60), now()) else {
        panic!("not graceful")
    };
    assert_eq!(again.metadata.deletion_grace_period_seconds, Some(30));
    let PodDeletion::Graceful(shorter) = delete_pod(&marked, Some(5), now()) else {
        panic!("not graceful")
    };
    assert_eq!(shorter.metadata.deletion_grace_period_seconds, Some(5));
    assert_eq!(delete_pod(&marked, Some(0), now()), PodDeletion::Now);

    let later: jiff::Timestamp = "2024-05-01T10:00:31Z".parse().unwrap();
    let pods = vec![(*marked).clone(), p.clone()];
    assert_eq!(pods_due_for_removal(&pods, now()).len(), 0);
    assert_eq!(pods_due_for_removal(&pods, later).len(), 1);
}
