//! The federation control plane end to end, in process: a federation API
//! server and member API servers (with the simulated data plane and a
//! load-balancer pool) on loopback, Cluster objects with their Secrets, and
//! the federation controller; Services created in the federation as a user
//! would.

use std::collections::BTreeMap;
use std::time::Duration;

use fedmesh_apiserver::cluster::simulation::DataPlaneOptions;
use fedmesh_apiserver::testing::{TestServer, TestServerOptions};
use fedmesh_controller::Metrics;
use fedmesh_controller::federation::{self, FederationOptions};
use fedmesh_core::federation::{FederationName, Scope};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{ConfigMap, Event, Namespace, Node, Pod, Service};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use serde_json::{Value, json};

mod support;

use support::{add_cluster, clusters, create, eventually, federation_server, put_secret};

const FEDERATION_LABEL: &str = "federation.fedmesh.io/federation";
const ORIGIN: &str = "federation.fedmesh.io/origin";
const SHARDS: &str = "federation.fedmesh.io/shards";

async fn member(name: &str, zone: &str, region: &str, pool: &str) -> TestServer {
    TestServer::start_with(TestServerOptions {
        name: name.into(),
        data_plane: DataPlaneOptions {
            nodes: 1,
            node_prefix: format!("{name}-node"),
            zone: zone.into(),
            region: region.into(),
            start_delay: Duration::from_millis(50),
            ..DataPlaneOptions::default()
        },
        load_balancer_pool: Some(pool.into()),
        ..TestServerOptions::default()
    })
    .await
    .expect("member server")
}

/// Registers `member` as the Cluster `name` with `labels` (its Secret
/// holding the member's admin kubeconfig).
async fn join(fed: &kube::Client, name: &str, member: &TestServer, labels: Value) {
    let kubeconfig = std::fs::read(member.kubeconfig_path()).expect("kubeconfig");
    put_secret(fed, &format!("{name}-member"), kubeconfig).await;
    add_cluster(fed, name, &member.url(), &format!("{name}-member"), labels).await;
}

/// Runs the federation controller against `fed` until the handle drops.
struct Controller(tokio::task::JoinHandle<()>);

impl Drop for Controller {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn controller(fed: &kube::Client, scope: Scope) -> Controller {
    let mut config = federation::controller_config("fedmesh", "test-replica");
    config.renew_interval = Duration::from_millis(200);
    config.lease_duration = Duration::from_secs(2);
    config.renew_deadline = Duration::from_millis(1500);
    config.max_backoff = Duration::from_millis(500);
    config.status_refresh = Duration::from_millis(300);
    let options = FederationOptions {
        name: FederationName::new("myfederation").expect("name"),
        scope,
    };
    let fed = fed.clone();
    Controller(tokio::spawn(async move {
        federation::run(fed, config, options, Metrics::new(), std::future::pending())
            .await
            .expect("controller runs");
    }))
}

/// The `Ready` condition of Cluster `name`: (status, reason), and its zones.
async fn ready(fed: &kube::Client, name: &str) -> Option<(String, String, Value)> {
    let cluster = clusters(fed).get(name).await.ok()?;
    let status = cluster.data.get("status")?;
    let ready = status["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == "Ready")?;
    Some((
        ready["status"].as_str()?.to_owned(),
        ready["reason"].as_str()?.to_owned(),
        json!({"zones": status["zones"], "region": status["region"], "message": ready["message"]}),
    ))
}

async fn wait_ready(fed: &kube::Client, name: &str) {
    eventually(&format!("Cluster {name} to be Ready"), || async {
        ready(fed, name).await.filter(|(s, _, _)| s == "True")
    })
    .await;
}

fn nginx() -> Value {
    json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "nginx", "namespace": "default", "labels": {"run": "nginx"}},
        "spec": {
            "type": "LoadBalancer",
            "selector": {"run": "nginx"},
            "ports": [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": 80}]
        }
    })
}

async fn service(client: &kube::Client, namespace: &str, name: &str) -> Option<Service> {
    Api::<Service>::namespaced(client.clone(), namespace)
        .get_opt(name)
        .await
        .ok()?
}

fn annotation(service: &Service, key: &str) -> Option<String> {
    service.metadata.annotations.as_ref()?.get(key).cloned()
}

fn port(service: &Service) -> Option<i32> {
    Some(service.spec.as_ref()?.ports.as_ref()?.first()?.port)
}

/// The shards annotation of the federated Service: cluster -> health.
async fn shard_health(fed: &kube::Client, name: &str) -> Option<BTreeMap<String, String>> {
    let service = service(fed, "default", name).await?;
    let shards: Vec<Value> = serde_json::from_str(&annotation(&service, SHARDS)?).ok()?;
    Some(
        shards
            .iter()
            .map(|s| {
                (
                    s["cluster"].as_str().unwrap_or_default().to_owned(),
                    s["health"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect(),
    )
}

fn health(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(c, h)| (c.to_string(), h.to_string()))
        .collect()
}

#[tokio::test]
async fn services_propagate_are_adopted_repaired_placed_and_report_shard_health() {
    let (_fed_server, fed) = federation_server().await;
    let east = member("east", "us-east1-b", "us-east1", "10.10.0.0/24").await;
    let west = member("west", "us-west1-a", "us-west1", "10.20.0.0/24").await;
    let (ec, wc) = (east.client().unwrap(), west.client().unwrap());

    // West already has an nginx Service: it is adopted, keeping its clusterIP.
    create(
        Api::<Service>::namespaced(wc.clone(), "default"),
        json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "nginx", "namespace": "default"},
            "spec": {"selector": {"run": "old"}, "ports": [{"port": 80}]}
        }),
    )
    .await;
    let existing = service(&wc, "default", "nginx").await.unwrap();
    let west_ip = existing.spec.unwrap().cluster_ip.unwrap();

    join(&fed, "east", &east, json!({"region": "east"})).await;
    join(&fed, "west", &west, json!({"region": "west"})).await;
    // A Cluster whose Secret does not exist: a clear status, the rest works.
    add_cluster(&fed, "broken", &east.url(), "nowhere", json!({})).await;
    let _controller = controller(&fed, Scope::Everything);

    wait_ready(&fed, "east").await;
    wait_ready(&fed, "west").await;
    let (_, _, place) = ready(&fed, "east").await.unwrap();
    assert_eq!(place["zones"], json!(["us-east1-b"]));
    assert_eq!(place["region"], json!("us-east1"));
    let (status, reason, detail) = eventually("the broken Cluster's status", || async {
        ready(&fed, "broken").await
    })
    .await;
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("False", "ClusterConfigInvalid")
    );
    assert!(
        detail["message"]
            .as_str()
            .unwrap()
            .contains("Secret fedmesh/nowhere does not exist. Create it (fedmesh federation join does) or fix spec.secretRef"),
        "{detail}"
    );

    // A Service created in the federation is created in every member, its
    // namespace too when missing.
    create(Api::<Service>::namespaced(fed.clone(), "default"), nginx()).await;
    create(
        Api::<Namespace>::all(fed.clone()),
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}}),
    )
    .await;
    create(
        Api::<Service>::namespaced(fed.clone(), "shop"),
        json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "cart", "namespace": "shop"},
            "spec": {"selector": {"app": "cart"}, "ports": [{"port": 8080}]}
        }),
    )
    .await;
    let created = eventually("nginx in east", || async {
        service(&ec, "default", "nginx")
            .await
            .filter(|s| annotation(s, ORIGIN).is_some())
    })
    .await;
    assert_eq!(annotation(&created, ORIGIN).as_deref(), Some("created"));
    assert_eq!(
        created
            .metadata
            .labels
            .as_ref()
            .unwrap()
            .get(FEDERATION_LABEL),
        Some(&"myfederation".to_owned())
    );
    assert_eq!(
        created.spec.as_ref().unwrap().type_.as_deref(),
        Some("LoadBalancer")
    );
    let adopted = eventually("nginx adopted in west", || async {
        service(&wc, "default", "nginx")
            .await
            .filter(|s| annotation(s, ORIGIN).is_some())
    })
    .await;
    assert_eq!(annotation(&adopted, ORIGIN).as_deref(), Some("adopted"));
    let spec = adopted.spec.as_ref().unwrap();
    assert_eq!(spec.cluster_ip.as_deref(), Some(west_ip.as_str()));
    assert_eq!(spec.selector.as_ref().unwrap()["run"], "nginx");
    for member in [&ec, &wc] {
        eventually("shop/cart in the member", || async {
            service(member, "shop", "cart").await
        })
        .await;
    }

    // A member that refuses the Service (its namespace is being deleted):
    // an error in the federated Service's status and a Warning Event, and
    // the other member has its copy.
    create(
        Api::<Namespace>::all(wc.clone()),
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "doomed"}}),
    )
    .await;
    create(
        Api::<ConfigMap>::namespaced(wc.clone(), "doomed"),
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {
            "name": "held", "namespace": "doomed", "finalizers": ["fedmesh.test/hold"]}}),
    )
    .await;
    Api::<Namespace>::all(wc.clone())
        .delete("doomed", &DeleteParams::default())
        .await
        .unwrap();
    create(
        Api::<Namespace>::all(fed.clone()),
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "doomed"}}),
    )
    .await;
    create(
        Api::<Service>::namespaced(fed.clone(), "doomed"),
        json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "api", "namespace": "doomed"},
            "spec": {"ports": [{"port": 80}]}
        }),
    )
    .await;
    eventually("doomed/api in east", || async {
        service(&ec, "doomed", "api").await
    })
    .await;
    let errors = eventually("west's error on doomed/api", || async {
        service(&fed, "doomed", "api")
            .await
            .and_then(|s| annotation(&s, "federation.fedmesh.io/errors"))
    })
    .await;
    let errors: Value = serde_json::from_str(&errors).unwrap();
    assert!(
        errors["west"]
            .as_str()
            .unwrap()
            .contains("being terminated"),
        "{errors}"
    );
    eventually("a PropagationFailed Event", || async {
        Api::<Event>::namespaced(fed.clone(), "doomed")
            .list(&ListParams::default())
            .await
            .ok()?
            .items
            .into_iter()
            .find(|e| e.reason.as_deref() == Some("PropagationFailed"))
    })
    .await;
    // Placed away from west, the error goes.
    Api::<Service>::namespaced(fed.clone(), "doomed")
        .patch(
            "api",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {
                "federation.alpha.kubernetes.io/cluster-selector":
                    r#"[{"key": "region", "operator": "In", "values": ["east"]}]"#
            }}})),
        )
        .await
        .unwrap();
    eventually("west's error gone", || async {
        service(&fed, "doomed", "api")
            .await
            .filter(|s| annotation(s, "federation.fedmesh.io/errors").is_none())
    })
    .await;

    // Shard health: east runs a ready pod, west none; both get
    // load-balancer addresses from their pools.
    create(
        Api::<Pod>::namespaced(ec.clone(), "default"),
        json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "nginx-1", "namespace": "default", "labels": {"run": "nginx"}},
            "spec": {"containers": [{"name": "nginx", "image": "nginx"}]}
        }),
    )
    .await;
    eventually("east healthy, west without ready endpoints", || async {
        shard_health(&fed, "nginx")
            .await
            .filter(|h| *h == health(&[("east", "Healthy"), ("west", "NoReadyEndpoints")]))
    })
    .await;
    let ingress: Vec<String> = service(&fed, "default", "nginx")
        .await
        .unwrap()
        .status
        .unwrap()
        .load_balancer
        .unwrap()
        .ingress
        .unwrap()
        .into_iter()
        .filter_map(|i| i.ip)
        .collect();
    assert_eq!(ingress.len(), 2, "{ingress:?}");
    assert!(ingress[0].starts_with("10.10.0.") && ingress[1].starts_with("10.20.0."));

    // The pod goes: east's shard turns unhealthy.
    Api::<Pod>::namespaced(ec.clone(), "default")
        .delete("nginx-1", &DeleteParams::default().grace_period(0))
        .await
        .unwrap();
    eventually("east without ready endpoints", || async {
        shard_health(&fed, "nginx")
            .await
            .filter(|h| h.get("east").map(String::as_str) == Some("NoReadyEndpoints"))
    })
    .await;

    // Drift: a member copy edited by hand is put back; one deleted is made again.
    Api::<Service>::namespaced(ec.clone(), "default")
        .patch(
            "nginx",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"selector": {"run": "other"}}})),
        )
        .await
        .unwrap();
    eventually("east's selector repaired", || async {
        service(&ec, "default", "nginx")
            .await
            .filter(|s| s.spec.as_ref().unwrap().selector.as_ref().unwrap()["run"] == "nginx")
    })
    .await;
    Api::<Service>::namespaced(wc.clone(), "default")
        .delete("nginx", &DeleteParams::default())
        .await
        .unwrap();
    eventually("west's copy made again", || async {
        service(&wc, "default", "nginx")
            .await
            .filter(|s| annotation(s, ORIGIN).is_some())
    })
    .await;

    // Updates propagate.
    Api::<Service>::namespaced(fed.clone(), "default")
        .patch(
            "nginx",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"ports": [{"name": "http", "port": 8080, "protocol": "TCP", "targetPort": 80}]}})),
        )
        .await
        .unwrap();
    for member in [&ec, &wc] {
        eventually("the new port in the member", || async {
            service(member, "default", "nginx")
                .await
                .filter(|s| port(s) == Some(8080))
        })
        .await;
    }

    // A cluster selector: west stops matching and loses the Service.
    let selector = |value: &str| {
        Patch::Merge(json!({"metadata": {"annotations": {
            "federation.alpha.kubernetes.io/cluster-selector": value
        }}}))
    };
    let feds = Api::<Service>::namespaced(fed.clone(), "default");
    feds.patch(
        "nginx",
        &PatchParams::default(),
        &selector(r#"[{"key": "region", "operator": "In", "values": ["east"]}]"#),
    )
    .await
    .unwrap();
    eventually("west to lose nginx", || async {
        service(&wc, "default", "nginx")
            .await
            .is_none()
            .then_some(())
    })
    .await;
    assert!(service(&ec, "default", "nginx").await.is_some());

    // A malformed selector: a Warning Event, and nothing changes.
    feds.patch(
        "nginx",
        &PatchParams::default(),
        &selector(r#"[{"key": "region", "operator": "Near"}]"#),
    )
    .await
    .unwrap();
    let event = eventually("a Warning Event on nginx", || async {
        let events = Api::<Event>::namespaced(fed.clone(), "default")
            .list(&ListParams::default())
            .await
            .ok()?;
        events
            .items
            .into_iter()
            .find(|e| e.reason.as_deref() == Some("InvalidClusterSelector"))
    })
    .await;
    assert_eq!(event.type_.as_deref(), Some("Warning"));
    assert!(event.message.unwrap_or_default().contains("Near"));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(service(&ec, "default", "nginx").await.is_some());
    assert!(service(&wc, "default", "nginx").await.is_none());
    // Fixed: a Normal Event says the problem is over.
    feds.patch(
        "nginx",
        &PatchParams::default(),
        &selector(r#"[{"key": "region", "operator": "In", "values": ["east"]}]"#),
    )
    .await
    .unwrap();
    let over = eventually("a ClusterSelectorValid Event on nginx", || async {
        Api::<Event>::namespaced(fed.clone(), "default")
            .list(&ListParams::default())
            .await
            .ok()?
            .items
            .into_iter()
            .find(|e| e.reason.as_deref() == Some("ClusterSelectorValid"))
    })
    .await;
    assert_eq!(over.type_.as_deref(), Some("Normal"));
    assert_eq!(over.involved_object.name.as_deref(), Some("nginx"));

    // Deleting the federated Service deletes the copies fedmesh made; an
    // unmarked Service of the same name elsewhere is never touched.
    create(
        Api::<Service>::namespaced(wc.clone(), "default"),
        json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "nginx", "namespace": "default"},
            "spec": {"ports": [{"port": 80}]}
        }),
    )
    .await;
    feds.delete("nginx", &DeleteParams::default())
        .await
        .unwrap();
    eventually("east's copy deleted", || async {
        service(&ec, "default", "nginx")
            .await
            .is_none()
            .then_some(())
    })
    .await;
    // The finalizer goes once the copies are gone, and the Service with it.
    eventually("the federated nginx gone", || async {
        service(&fed, "default", "nginx")
            .await
            .is_none()
            .then_some(())
    })
    .await;
    assert!(service(&wc, "default", "nginx").await.is_some());

    // Orphaning: the federated Service goes, the copies stay, unmarked.
    Api::<Service>::namespaced(fed.clone(), "shop")
        .delete("cart", &DeleteParams::orphan())
        .await
        .unwrap();
    eventually("the federated cart gone", || async {
        service(&fed, "shop", "cart").await.is_none().then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    for member in [&ec, &wc] {
        let kept = service(member, "shop", "cart")
            .await
            .expect("orphaned copy kept");
        let labels = kept.metadata.labels.unwrap_or_default();
        assert!(!labels.contains_key(FEDERATION_LABEL), "{labels:?}");
    }
}

#[tokio::test]
async fn a_member_killed_goes_offline_within_seconds_and_is_brought_up_to_date() {
    let (_fed_server, fed) = federation_server().await;
    let mut east = member("east", "us-east1-b", "us-east1", "10.10.0.0/24").await;
    join(&fed, "east", &east, json!({})).await;
    let _controller = controller(&fed, Scope::Everything);
    wait_ready(&fed, "east").await;

    // A second node in another zone: the member lists every zone.
    let nodes = Api::<Node>::all(east.client().unwrap());
    create(
        nodes.clone(),
        json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "east-extra", "labels": {
            "topology.kubernetes.io/zone": "us-east1-c", "topology.kubernetes.io/region": "us-east1"
        }}}),
    )
    .await;
    eventually("both zones", || async {
        ready(&fed, "east")
            .await
            .filter(|(_, _, p)| p["zones"] == json!(["us-east1-b", "us-east1-c"]))
    })
    .await;

    create(Api::<Service>::namespaced(fed.clone(), "default"), nginx()).await;
    create(
        Api::<Service>::namespaced(fed.clone(), "default"),
        json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "gone", "namespace": "default"},
            "spec": {"ports": [{"port": 82}]}
        }),
    )
    .await;
    for name in ["nginx", "gone"] {
        eventually("the Services in east", || async {
            service(&east.client().unwrap(), "default", name).await
        })
        .await;
    }

    east.kill();
    let killed = tokio::time::Instant::now();
    let (_, reason, _) = eventually("east Offline", || async {
        ready(&fed, "east").await.filter(|(s, _, _)| s == "False")
    })
    .await;
    let detected = killed.elapsed();
    assert_eq!(reason, "ClusterNotReachable");
    // 3 s is the target; the margin is for a loaded test machine.
    assert!(detected < Duration::from_secs(5), "took {detected:?}");
    eventually("east's shard ClusterNotReady", || async {
        shard_health(&fed, "nginx")
            .await
            .filter(|h| *h == health(&[("east", "ClusterNotReady")]))
    })
    .await;

    // Changed while east is away: brought up to date when it returns.
    create(
        Api::<Service>::namespaced(fed.clone(), "default"),
        json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "late", "namespace": "default"},
            "spec": {"ports": [{"port": 81}]}
        }),
    )
    .await;
    Api::<Service>::namespaced(fed.clone(), "default")
        .patch(
            "nginx",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"tier": "web"}}})),
        )
        .await
        .unwrap();
    // Deleted while east is away: the deletion waits for east's copy, which
    // goes when east returns, and then the federated Service goes.
    Api::<Service>::namespaced(fed.clone(), "default")
        .delete("gone", &DeleteParams::default())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let waiting = service(&fed, "default", "gone").await.expect("still there");
    assert!(waiting.metadata.deletion_timestamp.is_some());
    east.restart().await.expect("restart");
    let ec = east.client().unwrap();
    wait_ready(&fed, "east").await;
    eventually("late in east", || async {
        service(&ec, "default", "late").await
    })
    .await;
    eventually("gone deleted in east", || async {
        service(&ec, "default", "gone")
            .await
            .is_none()
            .then_some(())
    })
    .await;
    eventually("the federated gone deleted", || async {
        service(&fed, "default", "gone")
            .await
            .is_none()
            .then_some(())
    })
    .await;
    eventually("nginx updated in east", || async {
        service(&ec, "default", "nginx").await.filter(|s| {
            s.metadata.labels.as_ref().and_then(|l| l.get("tier")) == Some(&"web".to_owned())
        })
    })
    .await;
}

#[tokio::test]
async fn on_a_shared_cluster_only_labelled_namespaces_are_federated() {
    let (_fed_server, fed) = federation_server().await;
    let east = member("east", "", "", "10.10.0.0/24").await;
    let ec = east.client().unwrap();
    join(&fed, "east", &east, json!({})).await;
    for (name, labels) in [
        ("team", json!({"federation.fedmesh.io/federated": "true"})),
        ("local", json!({})),
    ] {
        create(
            Api::<Namespace>::all(fed.clone()),
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}}),
        )
        .await;
        create(
            Api::<Service>::namespaced(fed.clone(), name),
            json!({
                "apiVersion": "v1", "kind": "Service",
                "metadata": {"name": "web", "namespace": name},
                "spec": {"ports": [{"port": 80}]}
            }),
        )
        .await;
    }
    let _controller = controller(&fed, Scope::LabelledNamespaces);
    eventually("team/web in east", || async {
        service(&ec, "team", "web").await
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(service(&ec, "local", "web").await.is_none());

    // Labelling a namespace federates what is in it.
    Api::<Namespace>::all(fed.clone())
        .patch(
            "local",
            &PatchParams::default(),
            &Patch::Merge(
                json!({"metadata": {"labels": {"federation.fedmesh.io/federated": "true"}}}),
            ),
        )
        .await
        .unwrap();
    eventually("local/web in east", || async {
        service(&ec, "local", "web").await
    })
    .await;
}

/// A kubeconfig for `server` with `token` (PEM CA from the server).
fn kubeconfig_with(server: &TestServer, token: &str) -> String {
    let credentials = server.credentials().unwrap();
    // ByteString serialises as base64, as kubeconfigs want it.
    let ca = serde_json::to_value(ByteString(credentials.ca_pem.unwrap().into_bytes())).unwrap();
    let ca = ca.as_str().unwrap();
    format!(
        "apiVersion: v1\nkind: Config\ncurrent-context: m\nclusters:\n- name: m\n  cluster:\n    server: {}\n    certificate-authority-data: {ca}\nusers:\n- name: m\n  user:\n    token: {token}\ncontexts:\n- name: m\n  context: {{cluster: m, user: m}}\n",
        credentials.url
    )
}

#[tokio::test]
async fn bad_members_get_a_clear_status_and_the_rest_keeps_working() {
    let (_fed_server, fed) = federation_server().await;
    let east = member("east", "", "", "10.10.0.0/24").await;
    join(&fed, "east", &east, json!({})).await;
    put_secret(&fed, "garbage", b"this is not a kubeconfig".to_vec()).await;
    add_cluster(&fed, "garbled", &east.url(), "garbage", json!({})).await;
    put_secret(
        &fed,
        "stolen",
        kubeconfig_with(&east, "not-a-valid-token").into_bytes(),
    )
    .await;
    add_cluster(&fed, "refused", &east.url(), "stolen", json!({})).await;
    put_secret(&fed, "far", kubeconfig_with(&east, "whatever").into_bytes()).await;
    add_cluster(&fed, "nowhere", "https://127.0.0.1:1", "far", json!({})).await;
    add_cluster(&fed, "schemeless", "127.0.0.1:6443", "far", json!({})).await;
    let _controller = controller(&fed, Scope::Everything);

    wait_ready(&fed, "east").await;
    for (name, reason, says) in [
        ("garbled", "ClusterConfigInvalid", "fedmesh/garbage"),
        ("refused", "ClusterUnauthorized", "401"),
        ("nowhere", "ClusterNotReachable", "cannot be reached"),
        ("schemeless", "ClusterConfigInvalid", "spec.server"),
    ] {
        let (status, got, detail) = eventually(&format!("{name}'s status"), || async {
            ready(&fed, name).await.filter(|(_, r, _)| r == reason)
        })
        .await;
        assert_eq!((status.as_str(), got.as_str()), ("False", reason), "{name}");
        let message = detail["message"].as_str().unwrap_or_default();
        assert!(message.contains(says), "{name}: {message}");
    }
    create(Api::<Service>::namespaced(fed.clone(), "default"), nginx()).await;
    eventually("nginx in east", || async {
        service(&east.client().unwrap(), "default", "nginx").await
    })
    .await;
}

#[tokio::test]
async fn a_hung_member_goes_offline_and_one_answering_500s_is_not_ready() {
    let (_fed_server, fed) = federation_server().await;
    let east = member("east", "", "", "10.10.0.0/24").await;
    let west = member("west", "", "", "10.20.0.0/24").await;
    join(&fed, "east", &east, json!({})).await;
    join(&fed, "west", &west, json!({})).await;
    let _controller = controller(&fed, Scope::Everything);
    wait_ready(&fed, "east").await;
    wait_ready(&fed, "west").await;

    east.hang();
    let hung = tokio::time::Instant::now();
    let (_, reason, _) = eventually("east not Ready", || async {
        ready(&fed, "east").await.filter(|(s, _, _)| s == "False")
    })
    .await;
    let detected = hung.elapsed();
    assert_eq!(reason, "ClusterNotReachable");
    eprintln!("hung member seen after {detected:?}");
    assert!(detected < Duration::from_secs(6), "took {detected:?}");

    west.fail_500();
    let (_, reason, detail) = eventually("west not Ready", || async {
        ready(&fed, "west").await.filter(|(s, _, _)| s == "False")
    })
    .await;
    assert_eq!(reason, "ClusterNotReady", "{detail}");

    east.heal();
    west.heal();
    wait_ready(&fed, "east").await;
    wait_ready(&fed, "west").await;
}
