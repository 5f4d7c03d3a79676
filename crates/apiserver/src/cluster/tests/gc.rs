use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use serde_json::json;

use crate::cluster::gc::*;

fn id(kind: &str, name: &str, ns: Option<&str>) -> ObjectId {
    ObjectId {
        api_version: if kind == "ReplicaSet" {
            "apps/v1".into()
        } else {
            "v1".into()
        },
        kind: kind.into(),
        namespace: ns.map(str::to_string),
        name: name.into(),
        uid: format!("uid-{name}"),
    }
}

fn oref(owner: &ObjectId, block: bool) -> OwnerReference {
    OwnerReference {
        api_version: owner.api_version.clone(),
        kind: owner.kind.clone(),
        name: owner.name.clone(),
        uid: owner.uid.clone(),
        controller: Some(true),
        block_owner_deletion: Some(block),
    }
}

fn obj(id: ObjectId, owners: Vec<OwnerReference>) -> GcNode {
    GcNode {
        id,
        owner_references: owners,
        finalizers: vec![],
        deleting: false,
    }
}

fn deleting(mut n: GcNode, finalizer: &str) -> GcNode {
    n.deleting = true;
    n.finalizers.push(finalizer.into());
    n
}

#[test]
fn dangling_owner_deletes_dependent_in_background() {
    let rs = id("ReplicaSet", "rs", Some("ns"));
    let pod = obj(id("Pod", "p", Some("ns")), vec![oref(&rs, true)]);
    assert_eq!(
        plan(std::slice::from_ref(&pod)),
        vec![GcAction::Delete {
            target: pod.id,
            propagation: Propagation::Background
        }]
    );
}

#[test]
fn live_owner_keeps_dependent() {
    let rs = obj(id("ReplicaSet", "rs", Some("ns")), vec![]);
    let pod = obj(id("Pod", "p", Some("ns")), vec![oref(&rs.id, true)]);
    assert_eq!(plan(&[rs, pod]), vec![]);
}

#[test]
fn second_live_owner_only_loses_the_dangling_reference() {
    let gone = id("ReplicaSet", "gone", Some("ns"));
    let live = obj(id("ReplicaSet", "live", Some("ns")), vec![]);
    let pod = obj(
        id("Pod", "p", Some("ns")),
        vec![oref(&gone, false), oref(&live.id, false)],
    );
    assert_eq!(
        plan(&[live, pod.clone()]),
        vec![GcAction::RemoveOwnerReferences {
            target: pod.id,
            owner_uids: vec!["uid-gone".into()]
        }]
    );
}

#[test]
fn owner_in_another_namespace_counts_as_absent() {
    let rs = obj(id("ReplicaSet", "rs", Some("other")), vec![]);
    let pod = obj(id("Pod", "p", Some("ns")), vec![oref(&rs.id, true)]);
    assert_eq!(
        plan(&[rs, pod.clone()]),
        vec![GcAction::Delete {
            target: pod.id,
            propagation: Propagation::Background
        }]
    );
}

#[test]
fn uid_reused_by_another_kind_is_not_the_owner() {
    let mut impostor = obj(id("ConfigMap", "rs", Some("ns")), vec![]);
    impostor.id.uid = "uid-rs".into();
    let pod = obj(
        id("Pod", "p", Some("ns")),
        vec![oref(&id("ReplicaSet", "rs", Some("ns")), true)],
    );
    assert_eq!(plan(&[impostor, pod]).len(), 1);
}

#[test]
fn cluster_scoped_dependent_of_namespaced_owner_is_left_alone() {
    let owner = obj(id("ConfigMap", "cm", Some("ns")), vec![]);
    let dependent = obj(id("Namespace", "x", None), vec![oref(&owner.id, false)]);
    assert_eq!(plan(&[owner, dependent]), vec![]);
}

#[test]
fn namespaced_dependent_of_cluster_scoped_owner_resolves() {
    let owner = obj(id("Node", "n", None), vec![]);
    let dependent = obj(id("Pod", "p", Some("ns")), vec![oref(&owner.id, false)]);
    assert_eq!(plan(&[owner, dependent]), vec![]);
}

#[test]
fn foreground_deletes_dependents_then_drops_the_finalizer() {
    let rs = deleting(
        obj(id("ReplicaSet", "rs", Some("ns")), vec![]),
        FINALIZER_FOREGROUND,
    );
    let pod = obj(id("Pod", "p", Some("ns")), vec![oref(&rs.id, true)]);
    assert_eq!(
        plan(&[rs.clone(), pod.clone()]),
        vec![GcAction::Delete {
            target: pod.id,
            propagation: Propagation::Background
        }]
    );
    assert_eq!(
        plan(std::slice::from_ref(&rs)),
        vec![GcAction::RemoveFinalizer {
            target: rs.id,
            finalizer: FINALIZER_FOREGROUND.into()
        }]
    );
}

#[test]
fn foreground_does_not_wait_for_non_blocking_dependents() {
    let rs = deleting(
        obj(id("ReplicaSet", "rs", Some("ns")), vec![]),
        FINALIZER_FOREGROUND,
    );
    let pod = obj(id("Pod", "p", Some("ns")), vec![oref(&rs.id, false)]);
    assert_eq!(
        plan(&[rs.clone(), pod.clone()]),
        vec![
            GcAction::RemoveFinalizer {
                target: rs.id,
                finalizer: FINALIZER_FOREGROUND.into()
            },
            GcAction::Delete {
                target: pod.id,
                propagation: Propagation::Background
            },
        ]
    );
}

#[test]
fn dependent_with_own_dependents_is_deleted_in_foreground() {
    let deploy = deleting(
        obj(id("Service", "d", Some("ns")), vec![]),
        FINALIZER_FOREGROUND,
    );
    let rs = obj(
        id("ReplicaSet", "rs", Some("ns")),
        vec![oref(&deploy.id, true)],
    );
    let pod = obj(id("Pod", "p", Some("ns")), vec![oref(&rs.id, true)]);
    assert_eq!(
        plan(&[deploy, rs.clone(), pod]),
        vec![GcAction::Delete {
            target: rs.id,
            propagation: Propagation::Foreground
        }]
    );
}

#[test]
fn orphan_strips_references_then_the_finalizer() {
    let rs = deleting(
        obj(id("ReplicaSet", "rs", Some("ns")), vec![]),
        FINALIZER_ORPHAN,
    );
    let p1 = obj(id("Pod", "p1", Some("ns")), vec![oref(&rs.id, true)]);
    let p2 = obj(id("Pod", "p2", Some("ns")), vec![oref(&rs.id, true)]);
    assert_eq!(
        plan(&[rs.clone(), p1.clone(), p2.clone()]),
        vec![
            GcAction::RemoveOwnerReferences {
                target: p1.id,
                owner_uids: vec!["uid-rs".into()]
            },
            GcAction::RemoveOwnerReferences {
                target: p2.id,
                owner_uids: vec!["uid-rs".into()]
            },
            GcAction::RemoveFinalizer {
                target: rs.id,
                finalizer: FINALIZER_ORPHAN.into()
            },
        ]
    );
}

#[test]
fn deletion_decisions_follow_options_and_finalizers() {
    let none: Vec<String> = vec![];
    let custom = vec!["example.com/keep".to_string()];
    let fg = vec![FINALIZER_FOREGROUND.to_string()];
    let opts = |p: Option<Propagation>, o: Option<bool>| DeleteOptions {
        propagation: p,
        orphan_dependents: o,
    };
    let mark = |f: &[&str]| DeletionDecision::MarkDeleting {
        finalizers: f.iter().map(|s| s.to_string()).collect(),
    };
    let cases = vec![
        (&none, opts(None, None), Ok(DeletionDecision::DeleteNow)),
        (
            &none,
            opts(Some(Propagation::Background), None),
            Ok(DeletionDecision::DeleteNow),
        ),
        (
            &none,
            opts(Some(Propagation::Foreground), None),
            Ok(mark(&["foregroundDeletion"])),
        ),
        (
            &none,
            opts(Some(Propagation::Orphan), None),
            Ok(mark(&["orphan"])),
        ),
        (&none, opts(None, Some(true)), Ok(mark(&["orphan"]))),
        (
            &none,
            opts(None, Some(false)),
            Ok(DeletionDecision::DeleteNow),
        ),
        (&custom, opts(None, None), Ok(mark(&["example.com/keep"]))),
        (
            &custom,
            opts(Some(Propagation::Foreground), None),
            Ok(mark(&["example.com/keep", "foregroundDeletion"])),
        ),
        (&fg, opts(None, None), Ok(mark(&["foregroundDeletion"]))),
        (
            &fg,
            opts(Some(Propagation::Orphan), None),
            Ok(mark(&["orphan"])),
        ),
        (
            &fg,
            opts(Some(Propagation::Background), None),
            Ok(DeletionDecision::DeleteNow),
        ),
        (
            &none,
            opts(Some(Propagation::Orphan), Some(true)),
            Err(GcError::ConflictingOptions),
        ),
    ];
    for (finalizers, options, want) in cases {
        assert_eq!(
            deletion_decision(finalizers, &options),
            want,
            "{finalizers:?} {options:?}"
        );
    }
    assert_eq!(
        Propagation::parse("Foreground"),
        Ok(Propagation::Foreground)
    );
    assert_eq!(
        Propagation::parse("Sideways").unwrap_err().to_string(),
        "Unsupported value: \"Sideways\": supported values: \"Foreground\", \"Background\", \"Orphan\""
    );
}

#[test]
fn node_reads_from_json() {
    let n = GcNode::from_json(&json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "p", "namespace": "ns", "uid": "u",
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs", "uid": "r", "blockOwnerDeletion": true}],
            "finalizers": ["x"], "deletionTimestamp": "2024-01-01T00:00:00Z"}
    }))
    .unwrap();
    assert_eq!(n.id.namespace.as_deref(), Some("ns"));
    assert_eq!(n.owner_references[0].uid, "r");
    assert_eq!(n.finalizers, vec!["x"]);
    assert!(n.deleting);
    assert_eq!(
        GcNode::from_json(&json!({"kind": "Pod", "metadata": {"name": "p"}})),
        None
    );
}

/// A tiny store that applies the collector's actions the way the API would.
fn run_to_fixpoint(mut objects: Vec<GcNode>) -> (Vec<GcNode>, usize) {
    for round in 0..50 {
        let actions = plan(&objects);
        if actions.is_empty() {
            return (objects, round);
        }
        for action in actions {
            match action {
                GcAction::Delete {
                    target,
                    propagation,
                } => {
                    let Some(i) = objects.iter().position(|o| o.id == target) else {
                        continue;
                    };
                    let options = DeleteOptions {
                        propagation: Some(propagation),
                        orphan_dependents: None,
                    };
                    match deletion_decision(&objects[i].finalizers, &options).unwrap() {
                        DeletionDecision::DeleteNow => {
                            objects.remove(i);
                        }
                        DeletionDecision::MarkDeleting { finalizers } => {
                            objects[i].finalizers = finalizers;
                            objects[i].deleting = true;
                        }
                    }
                }
                GcAction::RemoveOwnerReferences { target, owner_uids } => {
                    if let Some(o) = objects.iter_mut().find(|o| o.id == target) {
                        o.owner_references.retain(|r| !owner_uids.contains(&r.uid));
                    }
                }
                GcAction::UnblockOwnerReferences { target } => {
                    if let Some(o) = objects.iter_mut().find(|o| o.id == target) {
                        for r in &mut o.owner_references {
                            r.block_owner_deletion = Some(false);
                        }
                    }
                }
                GcAction::RemoveFinalizer { target, finalizer } => {
                    if let Some(i) = objects.iter().position(|o| o.id == target) {
                        objects[i].finalizers.retain(|f| *f != finalizer);
                        if objects[i].deleting && objects[i].finalizers.is_empty() {
                            objects.remove(i);
                        }
                    }
                }
            }
        }
    }
    panic!("no fixpoint in 50 rounds");
}

#[test]
fn foreground_chain_converges_to_nothing() {
    let top = deleting(
        obj(id("Service", "top", Some("ns")), vec![]),
        FINALIZER_FOREGROUND,
    );
    let mid = obj(
        id("ReplicaSet", "mid", Some("ns")),
        vec![oref(&top.id, true)],
    );
    let leaf1 = obj(id("Pod", "leaf1", Some("ns")), vec![oref(&mid.id, true)]);
    let leaf2 = obj(id("Pod", "leaf2", Some("ns")), vec![oref(&mid.id, false)]);
    let unrelated = obj(id("Pod", "keep", Some("ns")), vec![]);
    let (left, rounds) = run_to_fixpoint(vec![top, mid, leaf1, leaf2, unrelated.clone()]);
    assert_eq!(left, vec![unrelated]);
    assert!(
        rounds >= 3,
        "foreground deletion is staged, took {rounds} rounds"
    );
}

#[test]
fn background_cascade_converges_and_orphans_survive() {
    // The owner is already gone (background delete); its RS goes, then the pods.
    let gone = id("Service", "gone", Some("ns"));
    let rs = obj(id("ReplicaSet", "rs", Some("ns")), vec![oref(&gone, true)]);
    let pod = obj(id("Pod", "p", Some("ns")), vec![oref(&rs.id, true)]);
    let (left, _) = run_to_fixpoint(vec![rs, pod]);
    assert!(left.is_empty());

    let owner = deleting(
        obj(id("ReplicaSet", "o", Some("ns")), vec![]),
        FINALIZER_ORPHAN,
    );
    let child = obj(id("Pod", "c", Some("ns")), vec![oref(&owner.id, true)]);
    let (left, _) = run_to_fixpoint(vec![owner, child.clone()]);
    assert_eq!(
        left,
        vec![GcNode {
            owner_references: vec![],
            ..child
        }]
    );
}

/// The neighbourhood a per-object collector reads for `node` out of a
/// snapshot: the objects its references name by uid, and its dependents.
fn neighbourhood_in(node: &GcNode, all: &[GcNode]) -> Neighbourhood {
    Neighbourhood {
        owners: all
            .iter()
            .filter(|o| node.owner_references.iter().any(|r| r.uid == o.id.uid))
            .cloned()
            .collect(),
        invalid_owner_uids: Vec::new(),
        dependents: all
            .iter()
            .filter(|d| d.owner_references.iter().any(|r| r.uid == node.id.uid))
            .cloned()
            .collect(),
    }
}

#[test]
fn planning_one_node_over_its_neighbourhood_agrees_with_the_snapshot_plan() {
    let ns = Some("ns");
    let rs = obj(id("ReplicaSet", "rs", ns), vec![]);
    let gone = id("ReplicaSet", "gone", ns);
    let fg = deleting(obj(id("ConfigMap", "fg", ns), vec![]), FINALIZER_FOREGROUND);
    let or = deleting(obj(id("ConfigMap", "or", ns), vec![]), FINALIZER_ORPHAN);
    let mid = obj(id("ConfigMap", "mid", ns), vec![oref(&fg.id, true)]);
    let leaf = obj(id("ConfigMap", "leaf", ns), vec![oref(&mid.id, true)]);
    let shared = obj(
        id("Pod", "shared", ns),
        vec![oref(&rs.id, false), oref(&gone, false), oref(&fg.id, true)],
    );
    let dangling = obj(id("Pod", "dangling", ns), vec![oref(&gone, true)]);
    let orphaned = obj(id("Pod", "orphaned", ns), vec![oref(&or.id, true)]);
    let cluster_scoped = obj(id("Node", "n", None), vec![oref(&rs.id, true)]);
    let all = vec![
        rs,
        fg,
        or,
        mid,
        leaf,
        shared,
        dangling,
        orphaned,
        cluster_scoped,
    ];
    let key = |a: &GcAction| format!("{a:?}");
    let mut whole: Vec<String> = plan(&all).iter().map(key).collect();
    let mut per_node: Vec<String> = all
        .iter()
        .flat_map(|n| plan_node(n, &neighbourhood_in(n, &all)))
        .map(|a| key(&a))
        .collect();
    assert!(!whole.is_empty());
    whole.sort();
    per_node.sort();
    assert_eq!(per_node, whole);
}

#[test]
fn an_invalid_reference_found_without_a_lookup_is_left_alone() {
    let rs = id("ReplicaSet", "rs", Some("ns"));
    let node = obj(id("Node", "n", None), vec![oref(&rs, true)]);
    let around = Neighbourhood {
        invalid_owner_uids: vec![rs.uid.clone()],
        ..Neighbourhood::default()
    };
    assert_eq!(plan_node(&node, &around), vec![]);
    assert_eq!(
        plan_node(&node, &Neighbourhood::default()),
        vec![GcAction::Delete {
            target: node.id.clone(),
            propagation: Propagation::Background
        }]
    );
}
