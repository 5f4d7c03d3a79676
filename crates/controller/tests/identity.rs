//! Federated endpoint identity end to end (seed 004): two embedded API
//! servers on loopback, Calico's CRDs installed, the controller running
//! against `local` with the Calico output on. Remote postgres pods in
//! `myapp` must appear in `local` as NetworkSets with the right labels and
//! IPs, follow every change, and nothing stale may stay.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use fedmesh_apiserver::testing::{TestServer, TestServerOptions};
use fedmesh_controller::mesh::remotes as remote;
use fedmesh_controller::{ControllerConfig, IdentityOutputs, Metrics};
use k8s_openapi::api::core::v1::{Namespace, Pod};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, ListParams, Patch, PatchParams};
use serde_json::{Value, json};
use support::*;

const CLUSTER: &str = "remotecluster";

const CALICO: IdentityOutputs = IdentityOutputs {
    calico: true,
    cilium: false,
};

fn calico(plural: &str, kind: &str) -> ApiResource {
    ApiResource {
        group: "crd.projectcalico.org".into(),
        version: "v1".into(),
        api_version: "crd.projectcalico.org/v1".into(),
        kind: kind.into(),
        plural: plural.into(),
    }
}

fn network_sets() -> ApiResource {
    calico("networksets", "NetworkSet")
}

fn global_network_sets() -> ApiResource {
    calico("globalnetworksets", "GlobalNetworkSet")
}

/// A CRD manifest of `tests/data/` (e.g. `calico/networksets.yaml`).
fn crd(file: &str) -> CustomResourceDefinition {
    let path = format!("{}/tests/data/{file}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).expect("CRD manifest");
    serde_saphyr::from_str(&text).expect("CRD parses")
}

/// The same Calico CRD as the Calico API server serves it
/// (`projectcalico.org/v3`).
fn v3(crd: CustomResourceDefinition) -> CustomResourceDefinition {
    let text = serde_json::to_string(&crd)
        .unwrap()
        .replace("crd.projectcalico.org", "projectcalico.org")
        .replace(r#""name":"v1""#, r#""name":"v3""#);
    serde_json::from_str(&text).unwrap()
}

fn calico_crds() -> Vec<CustomResourceDefinition> {
    vec![
        crd("calico/networksets.yaml"),
        crd("calico/globalnetworksets.yaml"),
    ]
}

async fn install_crd(client: &kube::Client, crd: CustomResourceDefinition) {
    Api::<CustomResourceDefinition>::all(client.clone())
        .create(&Default::default(), &crd)
        .await
        .expect("create CRD");
}

async fn namespace(client: &kube::Client, name: &str, labels: Value) {
    create(
        Api::<Namespace>::all(client.clone()),
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}}),
    )
    .await;
}

/// Creates a running pod `myapp/name` with `labels` and IP `ip`.
async fn pod(remote: &kube::Client, name: &str, labels: Value, ip: &str) {
    let pods = Api::<Pod>::namespaced(remote.clone(), "myapp");
    create(
        pods.clone(),
        json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "myapp", "labels": labels},
            "spec": {"containers": [{"name": "main", "image": "postgres:16"}], "nodeName": "node1", "serviceAccountName": "default"}
        }),
    )
    .await;
    set_ip(remote, name, ip).await;
}

async fn set_ip(remote: &kube::Client, name: &str, ip: &str) {
    Api::<Pod>::namespaced(remote.clone(), "myapp")
        .patch_status(
            name,
            &PatchParams::default(),
            &Patch::Merge(
                json!({"status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}]}}),
            ),
        )
        .await
        .expect("pod status");
}

/// The mirrored NetworkSets in `myapp`, by name: (labels, nets).
async fn mirrored(
    local: &kube::Client,
) -> BTreeMap<String, (BTreeMap<String, String>, Vec<String>)> {
    let api = Api::<DynamicObject>::namespaced_with(local.clone(), "myapp", &network_sets());
    let Ok(list) = api.list(&ListParams::default()).await else {
        return BTreeMap::new();
    };
    list.items
        .into_iter()
        .map(|o| {
            let nets = o.data["spec"]["nets"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|n| n.as_str().map(str::to_owned))
                .collect();
            (
                o.metadata.name.clone().unwrap_or_default(),
                (o.metadata.labels.clone().unwrap_or_default(), nets),
            )
        })
        .collect()
}

/// Waits until the mirrored NetworkSets' names and nets are `expected`.
async fn wait_for_sets(local: &kube::Client, expected: &[(&str, &[&str])], what: &str) {
    let want: BTreeMap<String, Vec<String>> = expected
        .iter()
        .map(|(n, nets)| (n.to_string(), nets.iter().map(|s| s.to_string()).collect()))
        .collect();
    eventually(what, || async {
        let have: BTreeMap<String, Vec<String>> = mirrored(local)
            .await
            .into_iter()
            .map(|(name, (_, nets))| (name, nets))
            .collect();
        (have == want).then_some(())
    })
    .await;
}

struct Identity {
    local: TestServer,
    remote: TestServer,
    controller: tokio::task::JoinHandle<()>,
}

impl Drop for Identity {
    fn drop(&mut self) {
        self.controller.abort();
    }
}

fn start_controller(local: &TestServer, outputs: IdentityOutputs) -> tokio::task::JoinHandle<()> {
    let client = local.client().expect("local client");
    let mut config = ControllerConfig::new("fedmesh", "test-replica");
    config.renew_interval = Duration::from_millis(200);
    config.lease_duration = Duration::from_secs(2);
    config.max_backoff = Duration::from_millis(500);
    config.status_refresh = Duration::from_millis(300);
    config.identity_outputs = outputs;
    tokio::spawn(async move {
        fedmesh_controller::run(client, config, Metrics::new(), std::future::pending())
            .await
            .expect("controller runs");
    })
}

/// Seed 004: namespace `myapp` in both clusters, two postgres pods and a
/// HostEndpoint in the remote; Calico's CRDs in the local cluster when
/// `local_crds`; the RemoteClusterConfiguration and the controller.
async fn setup(
    local_crds: Vec<CustomResourceDefinition>,
    remote_host_endpoints: bool,
    outputs: IdentityOutputs,
) -> Identity {
    if let Ok(filter) = std::env::var("FEDMESH_TEST_LOG") {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_test_writer()
            .try_init();
    }
    let start = |name: &str| {
        TestServer::start_with(TestServerOptions {
            name: name.into(),
            ..TestServerOptions::default()
        })
    };
    let local = start("local").await.expect("local server");
    let remote = start(CLUSTER).await.expect("remote server");
    let (lc, rc) = (local.client().unwrap(), remote.client().unwrap());
    Api::<CustomResourceDefinition>::all(lc.clone())
        .create(&Default::default(), &remote::crd().unwrap())
        .await
        .expect("RCC CRD");
    for crd in local_crds {
        install_crd(&lc, crd).await;
    }
    namespace(&lc, "myapp", json!({})).await;
    namespace(&lc, "fedmesh", json!({})).await;
    namespace(&rc, "myapp", json!({"team": "db"})).await;
    pod(
        &rc,
        "postgres-0",
        json!({"app": "postgres", "tier": "db"}),
        "10.1.0.5",
    )
    .await;
    pod(
        &rc,
        "postgres-1",
        json!({"app": "postgres", "tier": "db"}),
        "10.1.0.6",
    )
    .await;
    if remote_host_endpoints {
        install_crd(&rc, crd("calico/hostendpoints.yaml")).await;
        let hosts =
            Api::<DynamicObject>::all_with(rc.clone(), &calico("hostendpoints", "HostEndpoint"));
        let host: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "crd.projectcalico.org/v1", "kind": "HostEndpoint",
            "metadata": {"name": "db-host", "labels": {"role": "db-host"}},
            "spec": {"node": "node1", "interfaceName": "eth0", "expectedIPs": ["192.0.2.10"]}
        }))
        .unwrap();
        eventually("the HostEndpoint resource to be served", || {
            let (hosts, host) = (hosts.clone(), host.clone());
            async move { hosts.create(&Default::default(), &host).await.ok() }
        })
        .await;
    }
    let kubeconfig = std::fs::read(remote.kubeconfig_path()).expect("remote kubeconfig");
    put_access_secret(&lc, kubeconfig).await;
    add_rcc(&lc, CLUSTER, "remotecluster-access", json!(null)).await;
    let controller = start_controller(&local, outputs);
    Identity {
        local,
        remote,
        controller,
    }
}

#[tokio::test]
async fn remote_postgres_pods_become_network_sets_and_follow_every_change() {
    let mesh = setup(calico_crds(), true, CALICO).await;
    let (lc, rc) = (mesh.local.client().unwrap(), mesh.remote.client().unwrap());
    wait_for_sets(
        &lc,
        &[
            ("remotecluster.postgres-0", &["10.1.0.5/32"]),
            ("remotecluster.postgres-1", &["10.1.0.6/32"]),
        ],
        "the remote postgres pods as NetworkSets",
    )
    .await;
    let sets = mirrored(&lc).await;
    let labels = &sets["remotecluster.postgres-0"].0;
    for (key, value) in [
        ("app", "postgres"),
        ("tier", "db"),
        ("projectcalico.org/namespace", "myapp"),
        ("projectcalico.org/orchestrator", "k8s"),
        ("projectcalico.org/serviceaccount", "default"),
        ("pcns.team", "db"),
        ("pcns.projectcalico.org/name", "myapp"),
        ("federation.tigera.io/remoteClusterName", CLUSTER),
        ("fedmesh.io/managed-by", "identity.fedmesh.io"),
    ] {
        assert_eq!(
            labels.get(key).map(String::as_str),
            Some(value),
            "label {key}"
        );
    }
    // The remote HostEndpoint as a GlobalNetworkSet.
    let globals = Api::<DynamicObject>::all_with(lc.clone(), &global_network_sets());
    let host = eventually("the HostEndpoint as a GlobalNetworkSet", || async {
        globals
            .get_opt("remotecluster.db-host")
            .await
            .ok()
            .flatten()
    })
    .await;
    assert_eq!(host.data["spec"]["nets"], json!(["192.0.2.10/32"]));
    assert_eq!(host.metadata.labels.as_ref().unwrap()["role"], "db-host");
    // The remote was only read.
    let remote_sets = Api::<DynamicObject>::all_with(rc.clone(), &global_network_sets())
        .list(&ListParams::default())
        .await;
    assert!(remote_sets.map(|l| l.items.is_empty()).unwrap_or(true));

    // Pod IP change.
    set_ip(&rc, "postgres-0", "10.1.0.50").await;
    wait_for_sets(
        &lc,
        &[
            ("remotecluster.postgres-0", &["10.1.0.50/32"]),
            ("remotecluster.postgres-1", &["10.1.0.6/32"]),
        ],
        "the new pod IP",
    )
    .await;

    // Label change: a label the pod lost goes from its NetworkSet.
    let pods = Api::<Pod>::namespaced(rc.clone(), "myapp");
    pods.patch(
        "postgres-1",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"tier": null, "app": "replica"}}})),
    )
    .await
    .unwrap();
    eventually("the relabelled pod's NetworkSet", || async {
        let sets = mirrored(&lc).await;
        let labels = &sets.get("remotecluster.postgres-1")?.0;
        (labels.get("app").map(String::as_str) == Some("replica") && !labels.contains_key("tier"))
            .then_some(())
    })
    .await;

    // Namespace label change: every pod in it is relabelled.
    Api::<Namespace>::all(rc.clone())
        .patch(
            "myapp",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"team": "data"}}})),
        )
        .await
        .unwrap();
    eventually("the namespace's new label on every NetworkSet", || async {
        let sets = mirrored(&lc).await;
        (sets.len() == 2
            && sets
                .values()
                .all(|(l, _)| l.get("pcns.team").map(String::as_str) == Some("data")))
        .then_some(())
    })
    .await;

    // Pod deletion.
    pods.delete("postgres-1", &DeleteParams::default().grace_period(0))
        .await
        .unwrap();
    wait_for_sets(
        &lc,
        &[("remotecluster.postgres-0", &["10.1.0.50/32"])],
        "the deleted pod's NetworkSet to go",
    )
    .await;

    // The RemoteClusterConfiguration goes: everything mirrored from it goes.
    Api::<DynamicObject>::all_with(lc.clone(), &remote::api_resource())
        .delete(CLUSTER, &DeleteParams::default())
        .await
        .unwrap();
    wait_for_sets(&lc, &[], "every NetworkSet of the removed remote to go").await;
    eventually(
        "the GlobalNetworkSet of the removed remote to go",
        || async {
            globals
                .get_opt("remotecluster.db-host")
                .await
                .ok()?
                .is_none()
                .then_some(())
        },
    )
    .await;
}

#[tokio::test]
async fn a_restarted_controller_converges_exactly_and_leaves_foreign_objects_alone() {
    let mut mesh = setup(calico_crds(), false, CALICO).await;
    let (lc, rc) = (mesh.local.client().unwrap(), mesh.remote.client().unwrap());
    wait_for_sets(
        &lc,
        &[
            ("remotecluster.postgres-0", &["10.1.0.5/32"]),
            ("remotecluster.postgres-1", &["10.1.0.6/32"]),
        ],
        "the first controller's NetworkSets",
    )
    .await;
    mesh.controller.abort();
    let _ = (&mut mesh.controller).await;

    // While no controller runs: a pod goes, another changes IP, one comes,
    // a stray of fedmesh's is left behind, and a user writes a NetworkSet
    // of a name fedmesh wants.
    let pods = Api::<Pod>::namespaced(rc.clone(), "myapp");
    pods.delete("postgres-1", &DeleteParams::default().grace_period(0))
        .await
        .unwrap();
    set_ip(&rc, "postgres-0", "10.1.0.7").await;
    pod(&rc, "postgres-2", json!({"app": "postgres"}), "10.1.0.8").await;
    pod(&rc, "postgres-3", json!({"app": "postgres"}), "10.1.0.9").await;
    let sets = Api::<DynamicObject>::namespaced_with(lc.clone(), "myapp", &network_sets());
    let object = |name: &str, labels: Value, net: &str| -> DynamicObject {
        serde_json::from_value(json!({
            "apiVersion": "crd.projectcalico.org/v1", "kind": "NetworkSet",
            "metadata": {"name": name, "namespace": "myapp", "labels": labels},
            "spec": {"nets": [net]}
        }))
        .unwrap()
    };
    sets.create(
        &Default::default(),
        &object(
            "remotecluster.gone",
            json!({"fedmesh.io/managed-by": "identity.fedmesh.io"}),
            "10.9.9.9/32",
        ),
    )
    .await
    .unwrap();
    sets.create(
        &Default::default(),
        &object(
            "remotecluster.postgres-3",
            json!({"owner": "user"}),
            "10.8.8.8/32",
        ),
    )
    .await
    .unwrap();

    mesh.controller = start_controller(&mesh.local, CALICO);
    wait_for_sets(
        &lc,
        &[
            ("remotecluster.postgres-0", &["10.1.0.7/32"]),
            ("remotecluster.postgres-2", &["10.1.0.8/32"]),
            // The user's object keeps its name, labels and nets.
            ("remotecluster.postgres-3", &["10.8.8.8/32"]),
        ],
        "the restarted controller to converge",
    )
    .await;
    let sets = mirrored(&lc).await;
    assert_eq!(
        sets["remotecluster.postgres-3"]
            .0
            .get("owner")
            .map(String::as_str),
        Some("user")
    );
    // Converged means it stays so.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(mirrored(&lc).await, sets);
}

#[tokio::test]
async fn missing_network_set_crd_writes_nothing_until_installed_and_no_host_endpoint_crd_is_no_failure()
 {
    let mesh = setup(Vec::new(), false, CALICO).await;
    let (lc, _rc) = (mesh.local.client().unwrap(), mesh.remote.client().unwrap());
    // The remote (without Calico's HostEndpoint CRD) is in sync all the same.
    eventually("the remote to be in sync", || async {
        rcc_state(&lc).await.filter(|s| s == "InSync")
    })
    .await;
    // The missing CRD is reported as a Warning Event on the controller's namespace.
    let events = Api::<k8s_openapi::api::events::v1::Event>::all(lc.clone());
    eventually(
        "a Warning Event about the missing NetworkSet resource",
        || async {
            let list = events.list(&ListParams::default()).await.ok()?;
            list.items
                .iter()
                .any(|e| e.reason.as_deref() == Some("MirrorResourceMissing"))
                .then_some(())
        },
    )
    .await;
    for crd in calico_crds() {
        install_crd(&lc, crd).await;
    }
    wait_for_sets(
        &lc,
        &[
            ("remotecluster.postgres-0", &["10.1.0.5/32"]),
            ("remotecluster.postgres-1", &["10.1.0.6/32"]),
        ],
        "the NetworkSets once the CRD is installed",
    )
    .await;
}

#[tokio::test]
async fn network_sets_wait_for_their_namespace_and_pods_without_ips_are_not_mirrored() {
    let mesh = setup(calico_crds(), false, CALICO).await;
    let (lc, rc) = (mesh.local.client().unwrap(), mesh.remote.client().unwrap());
    // A pod without an IP yet, and a remote namespace the local cluster lacks.
    create(
        Api::<Pod>::namespaced(rc.clone(), "myapp"),
        json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "pending-0", "namespace": "myapp", "labels": {"app": "postgres"}},
            "spec": {"containers": [{"name": "main", "image": "postgres:16"}]}
        }),
    )
    .await;
    namespace(&rc, "analytics", json!({})).await;
    let analytics = Api::<Pod>::namespaced(rc.clone(), "analytics");
    create(
        analytics.clone(),
        json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "etl-0", "namespace": "analytics", "labels": {"app": "etl"}},
            "spec": {"containers": [{"name": "main", "image": "etl:1"}]}
        }),
    )
    .await;
    analytics
        .patch_status(
            "etl-0",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"phase": "Running", "podIP": "10.2.0.1", "podIPs": [{"ip": "10.2.0.1"}]}})),
        )
        .await
        .unwrap();
    wait_for_sets(
        &lc,
        &[
            ("remotecluster.postgres-0", &["10.1.0.5/32"]),
            ("remotecluster.postgres-1", &["10.1.0.6/32"]),
        ],
        "only the pods with IPs as NetworkSets",
    )
    .await;
    let in_analytics =
        Api::<DynamicObject>::namespaced_with(lc.clone(), "analytics", &network_sets());
    // The namespace appears locally: the remote pod's NetworkSet follows.
    namespace(&lc, "analytics", json!({})).await;
    let etl = eventually("the NetworkSet in the new local namespace", || async {
        in_analytics
            .get_opt("remotecluster.etl-0")
            .await
            .ok()
            .flatten()
    })
    .await;
    assert_eq!(etl.data["spec"]["nets"], json!(["10.2.0.1/32"]));
    // The pending pod gets an IP: now it is mirrored.
    set_ip(&rc, "pending-0", "10.1.0.9").await;
    wait_for_sets(
        &lc,
        &[
            ("remotecluster.pending-0", &["10.1.0.9/32"]),
            ("remotecluster.postgres-0", &["10.1.0.5/32"]),
            ("remotecluster.postgres-1", &["10.1.0.6/32"]),
        ],
        "the pod with its new IP",
    )
    .await;
}

#[tokio::test]
async fn the_calico_api_server_is_preferred_and_cilium_groups_are_written_when_on() {
    // Both Calico APIs served, as with the Calico API server installed; and
    // Cilium's CRD.
    let mut crds = calico_crds();
    crds.extend(calico_crds().into_iter().map(v3));
    crds.push(crd("cilium/ciliumcidrgroups.yaml"));
    let mesh = setup(
        crds,
        false,
        IdentityOutputs {
            calico: true,
            cilium: true,
        },
    )
    .await;
    let lc = mesh.local.client().unwrap();
    let v3_sets = Api::<DynamicObject>::namespaced_with(
        lc.clone(),
        "myapp",
        &ApiResource {
            group: "projectcalico.org".into(),
            version: "v3".into(),
            api_version: "projectcalico.org/v3".into(),
            kind: "NetworkSet".into(),
            plural: "networksets".into(),
        },
    );
    let set = eventually("the NetworkSet through projectcalico.org/v3", || async {
        v3_sets
            .get_opt("remotecluster.postgres-0")
            .await
            .ok()
            .flatten()
    })
    .await;
    assert_eq!(set.data["spec"]["nets"], json!(["10.1.0.5/32"]));
    let groups = Api::<DynamicObject>::all_with(
        lc.clone(),
        &ApiResource {
            group: "cilium.io".into(),
            version: "v2alpha1".into(),
            api_version: "cilium.io/v2alpha1".into(),
            kind: "CiliumCIDRGroup".into(),
            plural: "ciliumcidrgroups".into(),
        },
    );
    let group = eventually("the CiliumCIDRGroup", || async {
        groups
            .get_opt("remotecluster.pod.myapp.postgres-1")
            .await
            .ok()
            .flatten()
    })
    .await;
    assert_eq!(group.data["spec"]["externalCIDRs"], json!(["10.1.0.6/32"]));
    assert_eq!(group.metadata.labels.as_ref().unwrap()["app"], "postgres");
    // Nothing through the CRD API: in a real cluster the v3 objects are
    // stored there, and two writers would fight over them.
    assert!(mirrored(&lc).await.is_empty());
}
