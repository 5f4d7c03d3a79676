use k8s_openapi::api::core::v1::Namespace;
use serde_json::json;

use crate::cluster::gc::{DeleteOptions, Propagation};
use crate::cluster::namespace::*;

fn now() -> jiff::Timestamp {
    "2024-05-01T10:00:00Z".parse().unwrap()
}

fn ns(name: &str, phase: &str) -> Namespace {
    serde_json::from_value(json!({
        "metadata": {"name": name, "uid": "u"},
        "spec": {"finalizers": ["kubernetes"]},
        "status": {"phase": phase}
    }))
    .unwrap()
}

fn req<'a>(
    operation: Operation,
    resource: &'a str,
    name: &'a str,
    namespace: &'a str,
) -> AdmissionRequest<'a> {
    AdmissionRequest {
        operation,
        group: "",
        resource,
        name,
        namespace,
    }
}

#[test]
fn default_namespaces_are_active_with_finalizer_and_name_label() {
    let all = default_namespaces();
    let names: Vec<&str> = all
        .iter()
        .map(|n| n.metadata.name.as_deref().unwrap())
        .collect();
    assert_eq!(
        names,
        vec!["default", "kube-system", "kube-public", "kube-node-lease"]
    );
    assert_eq!(
        serde_json::to_value(&all[1]).unwrap(),
        json!({
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": "kube-system", "labels": {"kubernetes.io/metadata.name": "kube-system"}},
            "spec": {"finalizers": ["kubernetes"]},
            "status": {"phase": "Active"}
        })
    );
}

#[test]
fn create_in_missing_namespace_is_not_found() {
    let err = admit(&req(Operation::Create, "pods", "p", "nope"), None).unwrap_err();
    assert_eq!(err.to_string(), "namespaces \"nope\" not found");
    assert_eq!(err.code(), 404);
    assert_eq!(
        err.status(),
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": "namespaces \"nope\" not found", "reason": "NotFound",
            "details": {"name": "nope", "kind": "namespaces"}, "code": 404})
    );
    // Updates in a missing namespace too, but deletes pass.
    assert!(admit(&req(Operation::Update, "pods", "p", "nope"), None).is_err());
    assert_eq!(
        admit(&req(Operation::Delete, "pods", "p", "nope"), None),
        Ok(())
    );
}

#[test]
fn create_in_terminating_namespace_is_forbidden() {
    let terminating = ns("x", "Terminating");
    let err = admit(
        &req(Operation::Create, "configmaps", "cm", "x"),
        Some(&terminating),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "configmaps \"cm\" is forbidden: unable to create new content in namespace x because it is being terminated"
    );
    assert_eq!(err.code(), 403);
    assert_eq!(
        err.status()["details"],
        json!({"name": "cm", "kind": "configmaps", "causes": [{"reason": "NamespaceTerminating",
            "message": "namespace x is being terminated", "field": "metadata.namespace"}]})
    );
    let grouped = AdmissionRequest {
        group: "apps",
        ..req(Operation::Create, "deployments", "", "x")
    };
    assert_eq!(
        admit(&grouped, Some(&terminating)).unwrap_err().to_string(),
        "deployments.apps is forbidden: unable to create new content in namespace x because it is being terminated"
    );
    // Updates and deletes still go through.
    assert_eq!(
        admit(
            &req(Operation::Update, "configmaps", "cm", "x"),
            Some(&terminating)
        ),
        Ok(())
    );
    assert_eq!(
        admit(
            &req(Operation::Delete, "configmaps", "cm", "x"),
            Some(&terminating)
        ),
        Ok(())
    );
}

#[test]
fn active_namespace_and_cluster_scoped_requests_pass() {
    let active = ns("x", "Active");
    assert_eq!(
        admit(&req(Operation::Create, "pods", "p", "x"), Some(&active)),
        Ok(())
    );
    assert_eq!(
        admit(&req(Operation::Create, "nodes", "n", ""), None),
        Ok(())
    );
    assert_eq!(
        admit(&req(Operation::Create, "namespaces", "new", ""), None),
        Ok(())
    );
    let review = AdmissionRequest {
        group: "authorization.k8s.io",
        ..req(Operation::Create, "localsubjectaccessreviews", "", "nope")
    };
    assert_eq!(admit(&review, None), Ok(()));
}

#[test]
fn immortal_namespaces_cannot_be_deleted() {
    for name in ["default", "kube-system", "kube-public"] {
        let err = admit(&req(Operation::Delete, "namespaces", name, ""), None).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("namespaces \"{name}\" is forbidden: this namespace may not be deleted")
        );
        assert_eq!(err.code(), 403);
    }
    assert_eq!(
        admit(
            &req(Operation::Delete, "namespaces", "kube-node-lease", ""),
            None
        ),
        Ok(())
    );
}

#[test]
fn delete_marks_terminating_then_waits_then_deletes() {
    let active = ns("x", "Active");
    let marked = match delete_namespace(&active, &DeleteOptions::default(), now()).unwrap() {
        NamespaceDeletion::MarkTerminating(n) => *n,
        other => panic!("{other:?}"),
    };
    assert!(is_terminating(&marked));
    assert_eq!(
        marked.metadata.deletion_timestamp.as_ref().unwrap().0,
        now()
    );
    assert_eq!(marked.metadata.finalizers, None);
    assert_eq!(
        delete_namespace(&marked, &DeleteOptions::default(), now()).unwrap(),
        NamespaceDeletion::Pending
    );

    let fg = DeleteOptions {
        propagation: Some(Propagation::Foreground),
        orphan_dependents: None,
    };
    match delete_namespace(&active, &fg, now()).unwrap() {
        NamespaceDeletion::MarkTerminating(n) => {
            assert_eq!(
                n.metadata.finalizers,
                Some(vec!["foregroundDeletion".to_string()])
            );
        }
        other => panic!("{other:?}"),
    }

    let orphan_false = DeleteOptions {
        propagation: None,
        orphan_dependents: Some(false),
    };
    match delete_namespace(&active, &orphan_false, now()).unwrap() {
        NamespaceDeletion::MarkTerminating(n) => {
            assert_eq!(
                n.metadata.finalizers,
                Some(vec!["foregroundDeletion".to_string()])
            );
        }
        other => panic!("{other:?}"),
    }
    let both = DeleteOptions {
        propagation: Some(Propagation::Orphan),
        orphan_dependents: Some(true),
    };
    assert!(delete_namespace(&active, &both, now()).is_err());

    let mut finalized = marked.clone();
    finalized.spec.as_mut().unwrap().finalizers = None;
    assert_eq!(
        delete_namespace(&finalized, &DeleteOptions::default(), now()).unwrap(),
        NamespaceDeletion::Delete
    );
}

fn remaining(
    group: &str,
    resource: &str,
    count: usize,
    finalizers: &[(&str, usize)],
) -> RemainingContent {
    RemainingContent {
        group: group.into(),
        resource: resource.into(),
        count,
        finalizers: finalizers
            .iter()
            .map(|(f, n)| (f.to_string(), *n))
            .collect(),
    }
}

#[test]
fn controller_deletes_content_then_finalizes_then_deletes() {
    let active = ns("x", "Active");
    assert_eq!(controller_step(&active, &[], now()), NamespaceStep::Nothing);

    let NamespaceDeletion::MarkTerminating(marked) =
        delete_namespace(&active, &DeleteOptions::default(), now()).unwrap()
    else {
        panic!("not marked");
    };
    let content = vec![
        remaining("", "pods", 2, &[("example.com/hold", 1)]),
        remaining("apps", "deployments", 1, &[]),
        remaining("", "secrets", 0, &[]),
    ];
    match controller_step(&marked, &content, now()) {
        NamespaceStep::DeleteContent {
            resources,
            namespace,
        } => {
            assert_eq!(
                resources,
                vec![
                    ("".to_string(), "pods".to_string()),
                    ("apps".to_string(), "deployments".to_string())
                ]
            );
            let conditions = serde_json::to_value(&namespace.status.unwrap().conditions).unwrap();
            let find = |t: &str| {
                conditions
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|c| c["type"] == t)
                    .unwrap()
                    .clone()
            };
            assert_eq!(
                find("NamespaceContentRemaining")["message"],
                "Some resources are remaining: deployments.apps has 1 resource instances, pods. has 2 resource instances"
            );
            assert_eq!(
                find("NamespaceContentRemaining")["reason"],
                "SomeResourcesRemain"
            );
            assert_eq!(
                find("NamespaceFinalizersRemaining")["message"],
                "Some content in the namespace has finalizers remaining: example.com/hold in 1 resource instances"
            );
            assert_eq!(
                find("NamespaceDeletionContentFailure")["message"],
                "All content successfully deleted, may be waiting on finalization"
            );
            assert_eq!(find("NamespaceDeletionDiscoveryFailure")["status"], "False");
        }
        other => panic!("{other:?}"),
    }

    let finalized = match controller_step(&marked, &content[2..], now()) {
        NamespaceStep::Finalize(n) => n,
        other => panic!("{other:?}"),
    };
    assert_eq!(finalized.spec.as_ref().unwrap().finalizers, None);
    assert_eq!(
        controller_step(&finalized, &[], now()),
        NamespaceStep::Delete
    );

    // Another spec finalizer keeps the namespace after "kubernetes" goes.
    let mut shared = (*marked).clone();
    shared.spec.as_mut().unwrap().finalizers =
        Some(vec!["kubernetes".into(), "example.com/other".into()]);
    let NamespaceStep::Finalize(next) = controller_step(&shared, &[], now()) else {
        panic!("not finalized")
    };
    assert_eq!(
        next.spec.as_ref().unwrap().finalizers,
        Some(vec!["example.com/other".to_string()])
    );
    assert_eq!(controller_step(&next, &[], now()), NamespaceStep::Nothing);
}

#[test]
fn create_defaults_keep_user_finalizers() {
    let mut n: Namespace =
        serde_json::from_value(json!({"metadata": {"name": "x"}, "spec": {"finalizers": ["a"]}}))
            .unwrap();
    apply_create_defaults(&mut n);
    assert_eq!(n.spec.unwrap().finalizers.unwrap(), vec!["a", "kubernetes"]);
    assert_eq!(n.metadata.labels.unwrap()[LABEL_METADATA_NAME], "x");
}
