//! `fedmesh federation join` against two embedded API servers: the member
//! identity and its limits, the Secret and Cluster in the federation, that
//! core reads the Cluster, that the status core computes fits the CRD and
//! `kubectl get clusters` shows it, and that a second run changes nothing.

use fedmesh_apiserver::testing::TestServer;
use fedmesh_core::federation::{
    ClusterEvent, ClusterSpec, ClusterStatus, DEFAULT_FAILURE_THRESHOLD, Probe, Topology,
};
use k8s_openapi::api::core::v1::{Namespace, Secret, Service};
use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

mod support;

use support::{can_i, client_of, command, fedmesh, server, text};

fn join_args(federation: &TestServer, member: &TestServer) -> Vec<String> {
    vec![
        "federation".into(),
        "join".into(),
        "--federation".into(),
        federation.kubeconfig_path().display().to_string(),
        "--member".into(),
        member.kubeconfig_path().display().to_string(),
        "--name".into(),
        "west".into(),
    ]
}

fn clusters(client: &kube::Client) -> Api<DynamicObject> {
    Api::all_with(
        client.clone(),
        &ApiResource {
            group: "federation.fedmesh.io".into(),
            version: "v1alpha1".into(),
            api_version: "federation.fedmesh.io/v1alpha1".into(),
            kind: "Cluster".into(),
            plural: "clusters".into(),
        },
    )
}

#[tokio::test]
async fn federation_join_registers_a_member_with_limited_credentials_idempotently() {
    let fed = server("federation").await;
    let west = server("west").await;
    let (fc, wc) = (fed.client().unwrap(), west.client().unwrap());

    let first = fedmesh(join_args(&fed, &west)).await;
    let out = text(&first);
    assert!(first.status.success(), "{out}");
    for line in [
        "created Namespace fedmesh in member cluster west",
        "created ServiceAccount fedmesh/fedmesh-federation-member in member cluster west",
        "created ClusterRole fedmesh-federation-member in member cluster west",
        "created ClusterRoleBinding fedmesh-federation-member in member cluster west",
        "created token for ServiceAccount fedmesh/fedmesh-federation-member in member cluster west",
        "created CustomResourceDefinition clusters.federation.fedmesh.io in federation federation",
        "created Secret fedmesh/west-member in federation federation",
        "created Cluster west in federation federation",
        "joined: west is member west of the federation at federation",
    ] {
        assert!(out.contains(line), "missing {line:?} in:\n{out}");
    }

    // The Cluster points at the member's server and the Secret; core reads it.
    let cluster = clusters(&fc).get("west").await.unwrap();
    let object = serde_json::to_value(&cluster).unwrap();
    let spec = ClusterSpec::from_object(&object, "fedmesh").unwrap();
    assert_eq!(spec.server, west.url());
    assert_eq!(
        (spec.secret.namespace.as_str(), spec.secret.name.as_str()),
        ("fedmesh", "west-member")
    );
    let listed = command(
        "kubectl",
        vec![
            "--kubeconfig".into(),
            fed.kubeconfig_path().display().to_string(),
            "get".into(),
            "clusters".into(),
        ],
    )
    .await;
    let table = text(&listed);
    assert!(listed.status.success(), "{table}");
    assert!(
        table.contains("READY") && table.contains("ZONES") && table.contains("REGION"),
        "{table}"
    );
    assert!(table.lines().any(|l| l.starts_with("west ")), "{table}");

    // The status core computes fits the CRD's schema, and the printer
    // columns show it: first an unreachable member (no region yet), then a
    // Ready, multi-zone one.
    let at = |s: i64| k8s_openapi::jiff::Timestamp::from_second(1_800_000_000 + s).unwrap();
    let offline = ClusterStatus::next(
        None,
        &ClusterEvent::Probed(Probe::Unreachable {
            message: "connection refused".into(),
        }),
        DEFAULT_FAILURE_THRESHOLD,
        at(0),
    );
    let get_wide = || {
        command(
            "kubectl",
            vec![
                "--kubeconfig".into(),
                fed.kubeconfig_path().display().to_string(),
                "get".into(),
                "clusters".into(),
                "-o".into(),
                "wide".into(),
            ],
        )
    };
    let write_status = |status: &ClusterStatus| {
        let body = json!({"status": status.to_json()});
        let api = clusters(&fc);
        async move {
            api.patch_status("west", &PatchParams::default(), &Patch::Merge(&body))
                .await
                .unwrap()
        }
    };
    write_status(&offline).await;
    let row = text(&get_wide().await);
    let line = row
        .lines()
        .find(|l| l.starts_with("west "))
        .unwrap_or_default();
    assert!(
        line.contains("False") && line.contains("ClusterNotReachable"),
        "{row}"
    );
    assert!(line.contains("connection refused"), "{row}");
    let ready = ClusterStatus::next(
        Some(&offline),
        &ClusterEvent::Probed(Probe::Healthy),
        2,
        at(1),
    );
    let placed = ClusterStatus::next(
        Some(&ready),
        &ClusterEvent::Topology(Topology {
            zones: vec!["us-central1-a".into(), "us-central1-b".into()],
            region: Some("us-central1".into()),
        }),
        2,
        at(2),
    );
    write_status(&placed).await;
    let row = text(&get_wide().await);
    let line = row
        .lines()
        .find(|l| l.starts_with("west "))
        .unwrap_or_default();
    for cell in [
        "True",
        "ClusterReady",
        "us-central1-a",
        "us-central1-b",
        "us-central1",
        west.url().as_str(),
    ] {
        assert!(line.contains(cell), "{cell:?} in {row}");
    }
    let stored = clusters(&fc).get("west").await.unwrap();
    assert_eq!(stored.data["status"]["conditions"][1]["type"], "Offline");
    assert_eq!(stored.data["status"]["conditions"][1]["status"], "False");

    // The Secret's kubeconfig reaches the member as the member identity.
    let secret = Api::<Secret>::namespaced(fc.clone(), "fedmesh")
        .get("west-member")
        .await
        .unwrap();
    let kubeconfig = String::from_utf8(secret.data.unwrap()["kubeconfig"].0.clone()).unwrap();
    let doc: Value = serde_saphyr::from_str(&kubeconfig).unwrap();
    assert_eq!(doc["clusters"][0]["cluster"]["server"], json!(west.url()));
    assert!(doc["users"][0]["user"]["token"].is_string(), "{kubeconfig}");
    let member = client_of(&kubeconfig).await;

    // What propagation needs works: create a namespace and a Service in it.
    Api::<Namespace>::all(member.clone())
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "mynamespace"}})).unwrap(),
        )
        .await
        .unwrap();
    let services = Api::<Service>::namespaced(member.clone(), "mynamespace");
    services
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "metadata": {"name": "nginx"},
                "spec": {"ports": [{"port": 80}]}
            }))
            .unwrap(),
        )
        .await
        .unwrap();
    services.delete("nginx", &Default::default()).await.unwrap();
    // Nothing more: no Secrets.
    let secrets = Api::<Secret>::namespaced(member.clone(), "fedmesh")
        .get("anything")
        .await;
    assert!(
        matches!(&secrets, Err(kube::Error::Api(s)) if s.code == 403),
        "{secrets:?}"
    );

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("member");
    std::fs::write(&path, &kubeconfig).unwrap();
    for (verb, resource, allowed) in [
        ("create", "services", "yes"),
        ("update", "services", "yes"),
        ("delete", "services", "yes"),
        ("watch", "services", "yes"),
        ("create", "namespaces", "yes"),
        ("delete", "namespaces", "no"),
        ("list", "endpointslices.discovery.k8s.io", "yes"),
        ("create", "endpointslices.discovery.k8s.io", "no"),
        ("watch", "endpoints", "yes"),
        ("delete", "endpoints", "no"),
        ("list", "nodes", "yes"),
        ("patch", "nodes", "no"),
        ("get", "secrets", "no"),
        ("create", "pods", "no"),
        ("create", "deployments.apps", "no"),
        ("update", "services --subresource=status", "no"),
        ("create", "clusterroles.rbac.authorization.k8s.io", "no"),
    ] {
        assert_eq!(
            can_i(&path, verb, resource).await,
            allowed,
            "can-i {verb} {resource}"
        );
    }

    // A second run changes nothing and says so.
    let version = clusters(&fc)
        .get("west")
        .await
        .unwrap()
        .metadata
        .resource_version;
    let second = fedmesh(join_args(&fed, &west)).await;
    let out = text(&second);
    assert!(second.status.success(), "{out}");
    let changed: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with("created") || l.starts_with("updated"))
        .collect();
    assert!(changed.is_empty(), "second run changed {changed:?}:\n{out}");
    assert!(
        out.contains("unchanged Cluster west in federation federation"),
        "{out}"
    );
    assert_eq!(
        clusters(&fc)
            .get("west")
            .await
            .unwrap()
            .metadata
            .resource_version,
        version
    );
    drop(wc);
}
