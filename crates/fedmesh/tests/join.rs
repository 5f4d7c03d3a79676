//! `fedmesh join` against two embedded API servers: what it creates on each
//! side, that a second run changes nothing, that the access kubeconfig reads
//! the remote, and that it cannot write there.

use std::time::Duration;

use fedmesh_apiserver::testing::TestServer;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{Secret, Service, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use kube::api::{Api, DynamicObject, ListParams, PostParams, WatchParams};
use serde_json::{Value, json};

mod support;

use support::{can_i, client_of, fedmesh, server, text};

fn join_args(local: &TestServer, remote: &TestServer, extra: &[&str]) -> Vec<String> {
    let mut args = vec![
        "join".to_owned(),
        "--local".into(),
        local.kubeconfig_path().display().to_string(),
        "--remote".into(),
        remote.kubeconfig_path().display().to_string(),
        "--name".into(),
        "west".into(),
    ];
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    args
}

fn rccs(client: &kube::Client) -> Api<DynamicObject> {
    Api::all_with(
        client.clone(),
        &fedmesh_controller::mesh::remotes::api_resource(),
    )
}

/// The kubeconfig in the access Secret `name`-access of `cluster`.
async fn access_kubeconfig(cluster: &kube::Client, name: &str) -> (Secret, String) {
    let secret = Api::<Secret>::namespaced(cluster.clone(), "fedmesh")
        .get(&format!("{name}-access"))
        .await
        .unwrap();
    let data = secret.data.clone().unwrap();
    assert_eq!(data["datastoreType"].0, b"kubernetes");
    let kubeconfig = String::from_utf8(data["kubeconfig"].0.clone()).unwrap();
    (secret, kubeconfig)
}

#[tokio::test]
async fn join_creates_a_read_only_reader_and_the_access_both_ways_idempotently() {
    let east = server("east").await;
    let west = server("west").await;
    let (ec, wc) = (east.client().unwrap(), west.client().unwrap());

    let first = fedmesh(join_args(
        &east,
        &west,
        &["--both-ways", "--remote-name", "east"],
    ))
    .await;
    let out = text(&first);
    assert!(first.status.success(), "{out}");
    for line in [
        "created Namespace fedmesh in remote cluster west",
        "created ServiceAccount fedmesh/fedmesh-remote-reader in remote cluster west",
        "created ClusterRole fedmesh-remote-reader in remote cluster west",
        "created ClusterRoleBinding fedmesh-remote-reader in remote cluster west",
        "created Secret fedmesh/west-access in local cluster east",
        "created RemoteClusterConfiguration west in local cluster east",
        "joined: east reads west as RemoteClusterConfiguration west",
        "created Secret fedmesh/east-access in local cluster west",
        "joined: west reads east as RemoteClusterConfiguration east",
    ] {
        assert!(out.contains(line), "missing {line:?} in:\n{out}");
    }

    // The remote side: a ServiceAccount bound to a role that only reads.
    Api::<ServiceAccount>::namespaced(wc.clone(), "fedmesh")
        .get("fedmesh-remote-reader")
        .await
        .unwrap();
    let role = Api::<ClusterRole>::all(wc.clone())
        .get("fedmesh-remote-reader")
        .await
        .unwrap();
    let mut granted = Vec::new();
    for rule in role.rules.unwrap() {
        assert_eq!(rule.verbs, ["get", "list", "watch"]);
        for group in rule.api_groups.unwrap() {
            for resource in rule.resources.clone().unwrap() {
                granted.push(format!("{group}/{resource}"));
            }
        }
    }
    for needed in [
        "/services",
        "/endpoints",
        "/pods",
        "/nodes",
        "/namespaces",
        "discovery.k8s.io/endpointslices",
        "projectcalico.org/hostendpoints",
    ] {
        assert!(
            granted.iter().any(|g| g == needed),
            "{needed} in {granted:?}"
        );
    }
    let binding = Api::<ClusterRoleBinding>::all(wc.clone())
        .get("fedmesh-remote-reader")
        .await
        .unwrap();
    assert_eq!(binding.role_ref.name, "fedmesh-remote-reader");
    let subject = &binding.subjects.unwrap()[0];
    assert_eq!(
        (
            subject.kind.as_str(),
            subject.name.as_str(),
            subject.namespace.as_deref()
        ),
        ("ServiceAccount", "fedmesh-remote-reader", Some("fedmesh"))
    );

    // The local side: the RemoteClusterConfiguration points at the Secret,
    // whose kubeconfig reaches the remote's server.
    let rcc = rccs(&ec).get("west").await.unwrap();
    assert_eq!(
        rcc.data["spec"]["clusterAccessSecret"],
        json!({"name": "west-access", "namespace": "fedmesh", "kind": "Secret"})
    );
    assert!(rccs(&wc).get("east").await.is_ok(), "the reverse direction");
    let (secret, kubeconfig) = access_kubeconfig(&ec, "west").await;
    let doc: Value = serde_saphyr::from_str(&kubeconfig).unwrap();
    assert_eq!(doc["clusters"][0]["cluster"]["server"], json!(west.url()));
    assert_eq!(doc["current-context"], json!("west"));

    // The access kubeconfig lists and watches in the remote.
    Api::<Service>::namespaced(wc.clone(), "default")
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "metadata": {"name": "probe", "namespace": "default"},
                "spec": {"ports": [{"port": 80}]}
            }))
            .unwrap(),
        )
        .await
        .unwrap();
    let reader = client_of(&kubeconfig).await;
    let services = Api::<Service>::namespaced(reader.clone(), "default");
    let listed = services.list(&ListParams::default()).await.unwrap();
    assert!(
        listed
            .items
            .iter()
            .any(|s| s.metadata.name.as_deref() == Some("probe"))
    );
    let version = listed.metadata.resource_version.unwrap();
    let mut events = services
        .watch(&WatchParams::default().timeout(5), &version)
        .await
        .unwrap()
        .boxed();
    Api::<Service>::namespaced(wc.clone(), "default")
        .delete("probe", &Default::default())
        .await
        .unwrap();
    let event = tokio::time::timeout(Duration::from_secs(5), events.try_next())
        .await
        .expect("a watch event")
        .unwrap();
    assert!(
        matches!(event, Some(kube::api::WatchEvent::Deleted(_))),
        "{event:?}"
    );

    // Read-only: the token is the reader's, so a write is refused and
    // kubectl agrees.
    assert!(
        out.contains(
            "created token for ServiceAccount fedmesh/fedmesh-remote-reader in remote cluster west"
        ),
        "{out}"
    );
    assert!(doc["users"][0]["user"]["token"].is_string(), "{kubeconfig}");
    let write = services
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "metadata": {"name": "forbidden"},
                "spec": {"ports": [{"port": 80}]}
            }))
            .unwrap(),
        )
        .await;
    assert!(
        matches!(&write, Err(kube::Error::Api(s)) if s.code == 403),
        "{write:?}"
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("reader");
    std::fs::write(&path, &kubeconfig).unwrap();
    for (verb, resource, allowed) in [
        ("create", "services", "no"),
        ("delete", "endpointslices.discovery.k8s.io", "no"),
        ("get", "secrets", "no"),
        ("watch", "services", "yes"),
        ("list", "endpointslices.discovery.k8s.io", "yes"),
    ] {
        assert_eq!(
            can_i(&path, verb, resource).await,
            allowed,
            "can-i {verb} {resource}"
        );
    }

    // A second run changes nothing and says so.
    let rcc_version = rcc.metadata.resource_version.clone();
    let second = fedmesh(join_args(
        &east,
        &west,
        &["--both-ways", "--remote-name", "east"],
    ))
    .await;
    let out = text(&second);
    assert!(second.status.success(), "{out}");
    let changed: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with("created") || l.starts_with("updated"))
        .collect();
    assert!(changed.is_empty(), "second run changed {changed:?}:\n{out}");
    assert!(
        out.contains("unchanged Secret fedmesh/west-access in local cluster east"),
        "{out}"
    );
    let (again, _) = access_kubeconfig(&ec, "west").await;
    assert_eq!(
        again.metadata.resource_version,
        secret.metadata.resource_version
    );
    assert_eq!(
        rccs(&ec)
            .get("west")
            .await
            .unwrap()
            .metadata
            .resource_version,
        rcc_version
    );
}

#[tokio::test]
async fn join_fails_clearly_on_a_bad_kubeconfig_or_an_unreachable_cluster() {
    let east = server("east").await;
    let dir = tempfile::tempdir().unwrap();

    let missing = dir.path().join("missing");
    let out = fedmesh(vec![
        "join".into(),
        "--local".into(),
        east.kubeconfig_path().display().to_string(),
        "--remote".into(),
        missing.display().to_string(),
        "--name".into(),
        "west".into(),
    ])
    .await;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out).contains("cannot read kubeconfig"),
        "{}",
        text(&out)
    );

    // A port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let unreachable = dir.path().join("unreachable");
    std::fs::write(
        &unreachable,
        json!({
            "apiVersion": "v1", "kind": "Config",
            "clusters": [{"name": "gone", "cluster": {"server": format!("http://127.0.0.1:{port}")}}],
            "users": [{"name": "u", "user": {}}],
            "contexts": [{"name": "gone", "context": {"cluster": "gone", "user": "u"}}],
            "current-context": "gone"
        })
        .to_string(),
    )
    .unwrap();
    let out = fedmesh(vec![
        "join".into(),
        "--local".into(),
        east.kubeconfig_path().display().to_string(),
        "--remote".into(),
        unreachable.display().to_string(),
        "--name".into(),
        "West".into(),
    ])
    .await;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out).contains("not a valid cluster name"),
        "{}",
        text(&out)
    );

    let mut args = vec![
        "join".to_owned(),
        "--local".into(),
        east.kubeconfig_path().display().to_string(),
        "--remote".into(),
        unreachable.display().to_string(),
        "--name".into(),
        "west".into(),
    ];
    let out = fedmesh(args.clone()).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out).contains("cannot reach the Kubernetes API of gone"),
        "{}",
        text(&out)
    );
    args.extend(["--remote-context".into(), "nope".into()]);
    let out = fedmesh(args).await;
    assert!(text(&out).contains("no context \"nope\""), "{}", text(&out));
    // Nothing was written locally by the failed joins.
    assert!(
        Api::<Secret>::namespaced(east.client().unwrap(), "fedmesh")
            .get_opt("west-access")
            .await
            .unwrap()
            .is_none()
    );
}
