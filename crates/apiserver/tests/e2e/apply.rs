//! Server-side apply by several managers, with kube-apiserver's behaviour as the
//! expectation: applying a value identical to the live one makes the applier a
//! co-owner (no conflict), and a field stays while any of its owners applies it.

use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::api::rbac::v1::RoleBinding;
use kube::api::{Api, Patch, PatchParams};
use serde_json::{Value, json};

use crate::common::{client, namespace};

fn owners(
    managed: &[k8s_openapi::apimachinery::pkg::apis::meta::v1::ManagedFieldsEntry],
    field: &str,
) -> Vec<String> {
    let mut out: Vec<String> = managed
        .iter()
        .filter(|e| {
            e.fields_v1.as_ref().is_some_and(|f| {
                serde_json::to_string(&f.0)
                    .unwrap_or_default()
                    .contains(field)
            })
        })
        .filter_map(|e| e.manager.clone())
        .collect();
    out.sort();
    out
}

async fn apply<K>(api: &Api<K>, name: &str, manager: &str, body: &Value) -> Result<K, kube::Error>
where
    K: Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    api.patch(name, &PatchParams::apply(manager), &Patch::Apply(body))
        .await
}

#[tokio::test]
async fn two_managers_applying_the_same_binding_share_its_subjects() {
    let ns = namespace("ssa").await;
    let api: Api<RoleBinding> = Api::namespaced(client(), &ns);
    let full = json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": {"name": "robot-view"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
        "subjects": [{"kind": "ServiceAccount", "name": "robot", "namespace": ns}]
    });
    apply(&api, "robot-view", "first", &full).await.unwrap();
    // The same value from a second manager: no conflict on `.subjects` (the
    // stored subject has no `apiGroup: ""` the configuration lacks).
    let rb = apply(&api, "robot-view", "second", &full).await.unwrap();
    let subject = serde_json::to_value(&rb.subjects.as_ref().unwrap()[0]).unwrap();
    assert_eq!(
        subject,
        json!({"kind": "ServiceAccount", "name": "robot", "namespace": ns})
    );
    let managed = rb.metadata.managed_fields.clone().unwrap();
    assert_eq!(owners(&managed, "f:subjects"), ["first", "second"]);

    // The first manager stops applying the subjects: the second still owns
    // them, so they stay.
    let without = json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": {"name": "robot-view"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"}
    });
    let rb = apply(&api, "robot-view", "first", &without).await.unwrap();
    assert_eq!(rb.subjects.as_ref().map(Vec::len), Some(1));
    assert_eq!(
        owners(rb.metadata.managed_fields.as_ref().unwrap(), "f:subjects"),
        ["second"]
    );
    // Then the second stops too: nobody owns them, they go.
    let rb = apply(&api, "robot-view", "second", &without).await.unwrap();
    assert!(rb.subjects.is_none_or(|s| s.is_empty()));
}

#[tokio::test]
async fn a_co_owned_field_is_removed_only_when_its_last_owner_drops_it() {
    let ns = namespace("ssa2").await;
    let api: Api<ConfigMap> = Api::namespaced(client(), &ns);
    let cm = |data: Value| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "shared"}, "data": data});
    apply(&api, "shared", "a", &cm(json!({"x": "1", "a": "only-a"})))
        .await
        .unwrap();
    let shared = apply(&api, "shared", "b", &cm(json!({"x": "1"})))
        .await
        .unwrap();
    // Applying the same again changes nothing, not even the resourceVersion.
    let again = apply(&api, "shared", "a", &cm(json!({"x": "1", "a": "only-a"})))
        .await
        .unwrap();
    assert_eq!(
        again.metadata.resource_version,
        shared.metadata.resource_version
    );
    // A different value is still a conflict.
    let err = apply(&api, "shared", "b", &cm(json!({"x": "2"})))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, kube::Error::Api(s) if s.code == 409),
        "{err}"
    );
    let left = apply(&api, "shared", "a", &cm(json!({}))).await.unwrap();
    assert_eq!(
        left.data.unwrap(),
        [("x".to_owned(), "1".to_owned())].into()
    );
    let left = apply(&api, "shared", "b", &cm(json!({}))).await.unwrap();
    assert!(left.data.is_none_or(|d| d.is_empty()));
}
