//! `fedmesh policy explain` and `fedmesh endpoints` as a user runs them: the
//! built binary against two embedded API servers meshed by a
//! RemoteClusterConfiguration, on seed 004's example.

mod support;

use std::collections::BTreeMap;

use fedmesh_apiserver::testing::TestServer;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{Namespace, Pod, Secret};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use support::*;

fn calico_crd(file: &str) -> CustomResourceDefinition {
    let path = format!(
        "{}/../controller/tests/data/calico/{file}",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_saphyr::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

async fn create<K>(api: &Api<K>, object: Value)
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    api.create(
        &PostParams::default(),
        &serde_json::from_value(object).unwrap(),
    )
    .await
    .unwrap();
}

async fn running_pod(client: &kube::Client, name: &str, app: &str, ip: &str) {
    let pods = Api::<Pod>::namespaced(client.clone(), "myapp");
    create(
        &pods,
        json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "myapp", "labels": {"app": app}},
            "spec": {"containers": [{"name": "main", "image": "app:1"}]}
        }),
    )
    .await;
    pods.patch_status(
        name,
        &PatchParams::default(),
        &Patch::Merge(json!({"status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}]}})),
    )
    .await
    .unwrap();
}

/// Cluster A (local) with backend-app and seed 004's Calico policy, cluster B
/// (remote `cluster-b`) with the postgres pods, meshed.
async fn seed_004() -> (TestServer, TestServer) {
    let (a, b) = (server("cluster-a").await, server("cluster-b").await);
    let (ac, bc) = (a.client().unwrap(), b.client().unwrap());
    let crds = Api::<CustomResourceDefinition>::all(ac.clone());
    crds.create(
        &PostParams::default(),
        &fedmesh_controller::mesh::remotes::crd().unwrap(),
    )
    .await
    .unwrap();
    crds.create(&PostParams::default(), &calico_crd("networkpolicies.yaml"))
        .await
        .unwrap();
    for (client, ns) in [(&ac, "myapp"), (&ac, "fedmesh"), (&bc, "myapp")] {
        create(
            &Api::<Namespace>::all(client.clone()),
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
        )
        .await;
    }
    running_pod(&ac, "backend-app-1", "backend-app", "10.0.0.10").await;
    running_pod(&bc, "postgres-0", "postgres", "10.1.0.5").await;
    running_pod(&bc, "postgres-1", "postgres", "10.1.0.6").await;

    let secret = Secret {
        metadata: kube::api::ObjectMeta {
            name: Some("cluster-b-access".into()),
            namespace: Some("fedmesh".into()),
            ..Default::default()
        },
        data: Some(BTreeMap::from([(
            "kubeconfig".to_string(),
            ByteString(std::fs::read(b.kubeconfig_path()).unwrap()),
        )])),
        ..Secret::default()
    };
    Api::<Secret>::namespaced(ac.clone(), "fedmesh")
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
    let resource = |group: &str, kind: &str, plural: &str| ApiResource {
        group: group.into(),
        version: if group == "projectcalico.org" {
            "v3"
        } else {
            "v1"
        }
        .into(),
        api_version: format!(
            "{group}/{}",
            if group == "projectcalico.org" {
                "v3"
            } else {
                "v1"
            }
        ),
        kind: kind.into(),
        plural: plural.into(),
    };
    let rcc = json!({
        "apiVersion": "projectcalico.org/v3", "kind": "RemoteClusterConfiguration",
        "metadata": {"name": "cluster-b"},
        "spec": {"clusterAccessSecret": {"name": "cluster-b-access", "namespace": "fedmesh", "kind": "Secret"}}
    });
    let policy = json!({
        "apiVersion": "crd.projectcalico.org/v1", "kind": "NetworkPolicy",
        "metadata": {"name": "default.app-to-db", "namespace": "myapp"},
        "spec": {
            "selector": "app == 'backend-app'",
            "tier": "default",
            "egress": [{"action": "Allow", "protocol": "TCP",
                        "destination": {"selector": "app == 'postgres'", "ports": [5432]}}]
        }
    });
    for (api, object) in [
        (
            Api::<DynamicObject>::all_with(
                ac.clone(),
                &resource(
                    "projectcalico.org",
                    "RemoteClusterConfiguration",
                    "remoteclusterconfigurations",
                ),
            ),
            rcc,
        ),
        (
            Api::<DynamicObject>::namespaced_with(
                ac.clone(),
                "myapp",
                &resource("crd.projectcalico.org", "NetworkPolicy", "networkpolicies"),
            ),
            policy,
        ),
    ] {
        let object: DynamicObject = serde_json::from_value(object).unwrap();
        // A CRD is served a moment after it is created.
        let mut tries = 0;
        while let Err(error) = api.create(&PostParams::default(), &object).await {
            tries += 1;
            assert!(tries < 100, "create {:?}: {error}", object.metadata.name);
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
    (a, b)
}

fn args(kubeconfig: std::path::PathBuf, rest: &[&str]) -> Vec<String> {
    rest.iter()
        .map(|s| s.to_string())
        .chain(["--kubeconfig".into(), kubeconfig.display().to_string()])
        .collect()
}

#[tokio::test]
async fn policy_explain_shows_remote_postgres_under_the_rule_not_the_selector() {
    let (a, _b) = seed_004().await;
    let out = fedmesh(args(
        a.kubeconfig_path(),
        &["policy", "explain", "myapp/default.app-to-db", "-o", "json"],
    ))
    .await;
    assert!(out.status.success(), "{}", text(&out));
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    let names = |v: &Value| -> Vec<(Value, String)> {
        v["endpoints"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| (e["cluster"].clone(), e["name"].as_str().unwrap().to_owned()))
            .collect()
    };
    assert_eq!(
        names(&json["appliesTo"]),
        vec![(Value::Null, "backend-app-1".into())],
        "{json:#}"
    );
    let destination = &json["rules"][0]["destination"]["selection"];
    assert_eq!(
        names(destination),
        vec![
            (json!("cluster-b"), "postgres-0".into()),
            (json!("cluster-b"), "postgres-1".into()),
        ],
        "{json:#}"
    );
    assert_eq!(destination["endpoints"][0]["ips"], json!(["10.1.0.5"]));

    // The same as text.
    let out = fedmesh(args(
        a.kubeconfig_path(),
        &["policy", "explain", "myapp/default.app-to-db"],
    ))
    .await;
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("postgres-0") && stdout.contains("cluster-b"),
        "{stdout}"
    );
    assert!(stdout.contains("10.1.0.6"), "{stdout}");

    // A policy that does not exist is a clear error.
    let out = fedmesh(args(
        a.kubeconfig_path(),
        &["policy", "explain", "myapp/nope"],
    ))
    .await;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out).contains("no policy myapp/nope"),
        "{}",
        text(&out)
    );
}

#[tokio::test]
async fn endpoints_lists_local_and_remote_matches_with_labels() {
    let (a, _b) = seed_004().await;
    let out = fedmesh(args(
        a.kubeconfig_path(),
        &["endpoints", "--selector", "app == 'postgres'", "-o", "json"],
    ))
    .await;
    assert!(out.status.success(), "{}", text(&out));
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    let endpoints = json["endpoints"].as_array().unwrap();
    assert_eq!(endpoints.len(), 2, "{json:#}");
    assert_eq!(endpoints[0]["cluster"], "cluster-b");
    assert_eq!(endpoints[0]["namespace"], "myapp");
    assert_eq!(
        endpoints[0]["labels"]["federation.tigera.io/remoteClusterName"],
        "cluster-b"
    );

    let out = fedmesh(args(a.kubeconfig_path(), &["endpoints"])).await;
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(lines[0].starts_with("CLUSTER"), "{stdout}");
    assert!(
        lines[1].starts_with("(local)") && lines[1].contains("backend-app-1"),
        "{stdout}"
    );
    assert_eq!(lines.len(), 4, "{stdout}");

    let out = fedmesh(args(
        a.kubeconfig_path(),
        &["endpoints", "--selector", "app =="],
    ))
    .await;
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).contains("invalid --selector"), "{}", text(&out));
}

#[tokio::test]
async fn policy_explain_reads_a_kubernetes_network_policy_as_calico_does() {
    let (a, _b) = seed_004().await;
    let policies = Api::<k8s_openapi::api::networking::v1::NetworkPolicy>::namespaced(
        a.client().unwrap(),
        "myapp",
    );
    create(
        &policies,
        json!({
            "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": "app-to-db", "namespace": "myapp"},
            "spec": {
                "podSelector": {"matchLabels": {"app": "backend-app"}},
                "policyTypes": ["Egress"],
                "egress": [{"to": [{"podSelector": {"matchLabels": {"app": "postgres"}}}]}]
            }
        }),
    )
    .await;
    let out = fedmesh(args(
        a.kubeconfig_path(),
        &[
            "policy",
            "explain",
            "myapp/app-to-db",
            "--kind",
            "kubernetes",
            "-o",
            "json",
        ],
    ))
    .await;
    assert!(out.status.success(), "{}", text(&out));
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["policy"]["kind"], "NetworkPolicy (networking.k8s.io)");
    let destination = &json["rules"][0]["destination"]["selection"]["endpoints"];
    let clusters: Vec<&str> = destination
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["cluster"].as_str().unwrap_or("(local)"))
        .collect();
    assert_eq!(clusters, ["cluster-b", "cluster-b"], "{json:#}");
    assert_eq!(
        json["appliesTo"]["endpoints"][0]["name"], "backend-app-1",
        "{json:#}"
    );
}
