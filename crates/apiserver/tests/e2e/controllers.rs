//! The controllers inside the server: endpoints, endpoint slices, garbage
//! collection, namespaces, service accounts, the kubernetes Service.

use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Endpoints, Namespace, Pod, Service, ServiceAccount};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, DeleteParams, ListParams, PostParams, PropagationPolicy};
use serde_json::json;

use crate::common::{client, eventually, namespace};

fn pod(name: &str, app: &str, ip: &str, ready: bool) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {"app": app}},
        "spec": {"nodeName": "node-1", "containers": [{"name": "c", "image": "i", "ports": [{"name": "web", "containerPort": 8080}]}]},
        "status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}],
                   "conditions": [{"type": "Ready", "status": if ready {"True"} else {"False"}}]}
    }))
    .unwrap()
}

#[tokio::test]
async fn services_get_cluster_ips_and_endpoints_follow_pods() {
    let ns = namespace("ep").await;
    let pods: Api<Pod> = Api::namespaced(client(), &ns);
    let svcs: Api<Service> = Api::namespaced(client(), &ns);
    let eps: Api<Endpoints> = Api::namespaced(client(), &ns);
    let slices: Api<EndpointSlice> = Api::namespaced(client(), &ns);
    for (n, ip, ready) in [("a", "10.1.0.1", true), ("b", "10.1.0.2", false)] {
        let wanted = pod(n, "web", ip, ready);
        let mut p = pods.create(&PostParams::default(), &wanted).await.unwrap();
        // A create sets a pod's status to Pending, as kube-apiserver does.
        assert_eq!(
            p.status.as_ref().and_then(|s| s.phase.as_deref()),
            Some("Pending")
        );
        // kubelet's part: the status as the test wants it.
        p.status = wanted.status;
        pods.replace_status(n, &PostParams::default(), &p)
            .await
            .unwrap();
    }
    let svc: Service = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80, "targetPort": "web"}]}
    }))
    .unwrap();
    let created = svcs.create(&PostParams::default(), &svc).await.unwrap();
    let ip = created.spec.unwrap().cluster_ip.unwrap();
    assert!(
        ip.starts_with("10.9") || ip.starts_with("10.10") || ip.starts_with("10.11"),
        "{ip}"
    );

    let got = eventually(Duration::from_secs(10), || async {
        let e = eps.get("web").await.ok()?;
        let subset = e.subsets?.into_iter().next()?;
        let ready: Vec<String> = subset.addresses?.into_iter().map(|a| a.ip).collect();
        let not_ready: Vec<String> = subset
            .not_ready_addresses?
            .into_iter()
            .map(|a| a.ip)
            .collect();
        Some((ready, not_ready, subset.ports?[0].port))
    })
    .await;
    let Some(got) = got else {
        panic!(
            "endpoints not written: {:?} pods {:?}",
            eps.get("web").await,
            pods.list(&ListParams::default()).await.map(|l| l
                .items
                .into_iter()
                .map(|p| p.status)
                .collect::<Vec<_>>())
        );
    };
    assert_eq!(
        got,
        (
            vec!["10.1.0.1".to_owned()],
            vec!["10.1.0.2".to_owned()],
            8080
        )
    );

    let slice = eventually(Duration::from_secs(10), || async {
        let l = slices
            .list(&ListParams::default().labels("kubernetes.io/service-name=web"))
            .await
            .ok()?;
        let s = l.items.into_iter().next()?;
        (s.endpoints.len() == 2).then_some(s)
    })
    .await
    .expect("endpoint slice written");
    assert_eq!(slice.metadata.owner_references.unwrap()[0].name, "web");

    pods.delete("a", &DeleteParams::default()).await.unwrap();
    let emptied = eventually(Duration::from_secs(10), || async {
        let e = eps.get("web").await.ok()?;
        let subset = e.subsets?.into_iter().next()?;
        subset.addresses.is_none().then_some(())
    })
    .await;
    assert!(emptied.is_some(), "ready address removed with its pod");

    svcs.delete("web", &DeleteParams::default()).await.unwrap();
    let gone = eventually(Duration::from_secs(10), || async {
        let e = eps.get("web").await.is_err();
        let s = slices
            .list(&ListParams::default().labels("kubernetes.io/service-name=web"))
            .await
            .ok()?
            .items
            .is_empty();
        (e && s).then_some(())
    })
    .await;
    assert!(gone.is_some(), "endpoints and slices go with their service");
}

#[tokio::test]
async fn the_cluster_has_its_namespaces_kubernetes_service_and_default_service_accounts() {
    let nss: Api<Namespace> = Api::all(client());
    for n in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        nss.get(n).await.unwrap();
    }
    let svc: Api<Service> = Api::namespaced(client(), "default");
    let k = svc.get("kubernetes").await.unwrap();
    assert_eq!(k.spec.unwrap().cluster_ip.as_deref(), Some("10.96.0.1"));
    let ns = namespace("sa").await;
    let sas: Api<ServiceAccount> = Api::namespaced(client(), &ns);
    let found = eventually(Duration::from_secs(10), || async {
        sas.get("default").await.ok()
    })
    .await;
    assert!(found.is_some());
}

fn owned_cm(name: &str, owner: &ConfigMap) -> ConfigMap {
    serde_json::from_value(json!({
        "metadata": {"name": name, "ownerReferences": [{
            "apiVersion": "v1", "kind": "ConfigMap",
            "name": owner.metadata.name, "uid": owner.metadata.uid, "blockOwnerDeletion": true
        }]}
    }))
    .unwrap()
}

#[tokio::test]
async fn garbage_collection_background_foreground_and_orphan() {
    let ns = namespace("gc").await;
    let api: Api<ConfigMap> = Api::namespaced(client(), &ns);
    let mk = |n: &str| -> ConfigMap {
        serde_json::from_value(json!({"metadata": {"name": n}})).unwrap()
    };
    for (policy, owner) in [
        (PropagationPolicy::Background, "bg"),
        (PropagationPolicy::Foreground, "fg"),
        (PropagationPolicy::Orphan, "or"),
    ] {
        let o = api
            .create(&PostParams::default(), &mk(owner))
            .await
            .unwrap();
        let child = format!("{owner}-child");
        api.create(&PostParams::default(), &owned_cm(&child, &o))
            .await
            .unwrap();
        let dp = DeleteParams {
            propagation_policy: Some(policy.clone()),
            ..Default::default()
        };
        api.delete(owner, &dp).await.unwrap();
        let settled = eventually(Duration::from_secs(10), || async {
            let owner_gone = api.get(owner).await.is_err();
            let child_state = api.get(&child).await.ok();
            match policy {
                PropagationPolicy::Orphan => {
                    let c = child_state?;
                    (owner_gone && c.metadata.owner_references.is_none()).then_some(())
                }
                _ => (owner_gone && child_state.is_none()).then_some(()),
            }
        })
        .await;
        assert!(settled.is_some(), "{policy:?} did not settle");
    }
}

#[tokio::test]
async fn deleting_a_namespace_deletes_its_contents() {
    let ns = namespace("nsdel").await;
    let api: Api<ConfigMap> = Api::namespaced(client(), &ns);
    let cm: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "x"}})).unwrap();
    api.create(&PostParams::default(), &cm).await.unwrap();
    let nss: Api<Namespace> = Api::all(client());
    nss.delete(&ns, &DeleteParams::default()).await.unwrap();
    let gone = eventually(Duration::from_secs(15), || async {
        nss.get(&ns).await.is_err().then_some(())
    })
    .await;
    assert!(gone.is_some(), "namespace finalized");
    assert!(api.get("x").await.is_err());
    let err = api.create(&PostParams::default(), &cm).await.unwrap_err();
    assert!(matches!(err, kube::Error::Api(s) if s.code == 404));
}
