//! What every namespace holds on a real cluster: the `default`
//! ServiceAccount (kube-controller-manager's serviceaccount controller) and
//! the `kube-root-ca.crt` ConfigMap with the cluster CA (its
//! root-ca-cert-publisher). Both are written only into Active namespaces.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ConfigMap, Namespace, ServiceAccount};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::namespace::is_terminating;
use super::write::Write;

/// Name of the ServiceAccount every namespace gets.
pub const DEFAULT_SERVICE_ACCOUNT: &str = "default";
/// Name of the CA bundle ConfigMap every namespace gets.
pub const ROOT_CA_CONFIGMAP: &str = "kube-root-ca.crt";
/// Annotation describing the CA bundle.
pub const DESCRIPTION_ANNOTATION: &str = "kubernetes.io/description";
/// The description kube-controller-manager writes.
pub const ROOT_CA_DESCRIPTION: &str = "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters.";

fn active_name(namespace: &Namespace) -> Option<&str> {
    if is_terminating(namespace) || namespace.metadata.deletion_timestamp.is_some() {
        return None;
    }
    namespace.metadata.name.as_deref()
}

/// The `default` ServiceAccount to create in `namespace`, if it is Active
/// and has none (`existing` may hold any namespace's accounts).
pub fn sync_default_service_account(
    namespace: &Namespace,
    existing: &[ServiceAccount],
) -> Option<Write<ServiceAccount>> {
    let ns = active_name(namespace)?;
    let present = existing.iter().any(|sa| {
        sa.metadata.namespace.as_deref() == Some(ns)
            && sa.metadata.name.as_deref() == Some(DEFAULT_SERVICE_ACCOUNT)
    });
    (!present).then(|| {
        Write::Create(ServiceAccount {
            metadata: ObjectMeta {
                name: Some(DEFAULT_SERVICE_ACCOUNT.to_string()),
                namespace: Some(ns.to_string()),
                ..Default::default()
            },
            ..Default::default()
        })
    })
}

/// The write that makes `kube-root-ca.crt` in `namespace` hold `ca_pem`:
/// a create when missing, an update when the data differ or the
/// description annotation is missing, nothing otherwise.
pub fn sync_root_ca_configmap(
    namespace: &Namespace,
    existing: &[ConfigMap],
    ca_pem: &str,
) -> Option<Write<ConfigMap>> {
    let ns = active_name(namespace)?;
    let data: BTreeMap<String, String> = [("ca.crt".to_string(), ca_pem.to_string())].into();
    let current = existing.iter().find(|cm| {
        cm.metadata.namespace.as_deref() == Some(ns)
            && cm.metadata.name.as_deref() == Some(ROOT_CA_CONFIGMAP)
    });
    let Some(current) = current else {
        return Some(Write::Create(ConfigMap {
            metadata: ObjectMeta {
                name: Some(ROOT_CA_CONFIGMAP.to_string()),
                namespace: Some(ns.to_string()),
                annotations: Some(
                    [(
                        DESCRIPTION_ANNOTATION.to_string(),
                        ROOT_CA_DESCRIPTION.to_string(),
                    )]
                    .into(),
                ),
                ..Default::default()
            },
            data: Some(data),
            ..Default::default()
        }));
    };
    let described = current
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(DESCRIPTION_ANNOTATION))
        .is_some_and(|d| !d.is_empty());
    if current.data.as_ref() == Some(&data) && described {
        return None;
    }
    let mut next = current.clone();
    next.data = Some(data);
    next.metadata
        .annotations
        .get_or_insert_with(BTreeMap::new)
        .entry(DESCRIPTION_ANNOTATION.to_string())
        .or_insert_with(|| ROOT_CA_DESCRIPTION.to_string());
    Some(Write::Update(next))
}
