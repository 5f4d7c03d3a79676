use k8s_openapi::api::core::v1::{ConfigMap, Namespace, ServiceAccount};
use serde_json::json;

use crate::cluster::namespace_defaults::*;
use crate::cluster::write::Write;

fn ns(name: &str, phase: &str) -> Namespace {
    serde_json::from_value(json!({"metadata": {"name": name}, "status": {"phase": phase}})).unwrap()
}

#[test]
fn default_service_account_only_where_missing_and_active() {
    let created = sync_default_service_account(&ns("a", "Active"), &[]).unwrap();
    let Write::Create(sa) = created else {
        panic!("not a create")
    };
    assert_eq!(
        serde_json::to_value(&sa).unwrap(),
        json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default", "namespace": "a"}})
    );
    let elsewhere: ServiceAccount =
        serde_json::from_value(json!({"metadata": {"name": "default", "namespace": "b"}})).unwrap();
    assert!(
        sync_default_service_account(&ns("a", "Active"), std::slice::from_ref(&elsewhere))
            .is_some()
    );
    assert!(sync_default_service_account(&ns("b", "Active"), &[elsewhere]).is_none());
    assert!(sync_default_service_account(&ns("a", "Terminating"), &[]).is_none());
}

#[test]
fn root_ca_configmap_created_updated_and_left_alone() {
    let pem = "-----BEGIN CERTIFICATE-----\nAAA\n-----END CERTIFICATE-----\n";
    let Some(Write::Create(cm)) = sync_root_ca_configmap(&ns("a", "Active"), &[], pem) else {
        panic!("not a create")
    };
    let v = serde_json::to_value(&cm).unwrap();
    assert_eq!(v["metadata"]["name"], "kube-root-ca.crt");
    assert_eq!(
        v["metadata"]["annotations"]["kubernetes.io/description"],
        ROOT_CA_DESCRIPTION
    );
    assert_eq!(v["data"], json!({"ca.crt": pem}));
    assert_eq!(
        sync_root_ca_configmap(&ns("a", "Active"), std::slice::from_ref(&cm), pem),
        None
    );

    let rotated = sync_root_ca_configmap(&ns("a", "Active"), std::slice::from_ref(&cm), "NEW");
    let Some(Write::Update(next)) = rotated else {
        panic!("not an update")
    };
    assert_eq!(next.data.unwrap()["ca.crt"], "NEW");

    let mut bare: ConfigMap = cm.clone();
    bare.metadata.annotations =
        Some([("kubernetes.io/description".to_string(), "mine".to_string())].into());
    bare.data = Some([("ca.crt".to_string(), "OLD".to_string())].into());
    let Some(Write::Update(next)) = sync_root_ca_configmap(&ns("a", "Active"), &[bare], pem) else {
        panic!("not an update")
    };
    // A description the user changed is kept.
    assert_eq!(
        next.metadata.annotations.unwrap()["kubernetes.io/description"],
        "mine"
    );
    assert!(sync_root_ca_configmap(&ns("a", "Terminating"), &[], pem).is_none());
}
