//! Workloads on the simulated data plane, driven by kubectl as a user types
//! it: pods that run (bound, Running, Ready, with IPs from their node's pod
//! CIDR), Deployments that roll out, scale and cascade, LoadBalancer
//! addresses from a pool, and seed 002's `kubectl run` loop over several
//! embedded clusters.

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use fedmesh_apiserver::cluster::simulation::DataPlaneOptions;
use fedmesh_apiserver::testing::{TestServer, TestServerOptions};

use crate::kubectl::{Run, kubectl_merged, kubectl_with};

/// The clusters here, as seed 002 lays them out: each in its own zone of
/// its own region (name, zone, region).
const ZONES: [(&str, &str, &str); 3] = [
    ("us-central1", "us-central1-a", "us-central1"),
    ("europe-west1", "europe-west1-d", "europe-west1"),
    ("asia-east1", "asia-east1-c", "asia-east1"),
];

/// Options of one cluster here: three nodes in its zone, pods start fast.
fn options((name, zone, region): (&str, &str, &str)) -> TestServerOptions {
    TestServerOptions {
        name: name.into(),
        data_plane: DataPlaneOptions {
            nodes: 3,
            zone: zone.into(),
            region: region.into(),
            start_delay: Duration::from_millis(50),
            ..DataPlaneOptions::default()
        },
        load_balancer_pool: Some("192.168.240.0/28".into()),
        ..TestServerOptions::default()
    }
}

/// Kubeconfigs of `n` simulated clusters that live as long as the test
/// binary, each in the same runtime thread.
fn clusters() -> &'static [PathBuf] {
    static CLUSTERS: OnceLock<Vec<PathBuf>> = OnceLock::new();
    CLUSTERS.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let mut servers = Vec::new();
                for cluster in ZONES {
                    servers.push(TestServer::start_with(options(cluster)).await.unwrap());
                }
                tx.send(servers.iter().map(TestServer::kubeconfig_path).collect())
                    .unwrap();
                std::future::pending::<()>().await;
                drop(servers);
            });
        });
        rx.recv_timeout(Duration::from_secs(30)).unwrap()
    })
}

fn k(cluster: usize, args: &[&str]) -> Run {
    kubectl_with(&clusters()[cluster], args, None)
}

fn ok(cluster: usize, args: &[&str]) -> String {
    let r = k(cluster, args);
    assert!(r.ok, "kubectl {args:?} failed: {}", r.stderr);
    r.stdout
}

/// Repeats a kubectl `jsonpath` read until it gives `want` (bounded).
fn until(cluster: usize, args: &[&str], want: impl Fn(&str) -> bool) -> String {
    let mut last = String::new();
    for _ in 0..200 {
        let r = k(cluster, args);
        last = format!("{}{}", r.stdout, r.stderr);
        if r.ok && want(&r.stdout) {
            return r.stdout;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("kubectl {args:?} never gave what was expected; last: {last}");
}

#[test]
fn run_then_wait_gives_a_ready_pod_with_an_ip_from_its_node() {
    ok(0, &["create", "namespace", "runs"]);
    ok(
        0,
        &[
            "-n",
            "runs",
            "run",
            "web",
            "--image=nginx:1.11.1-alpine",
            "--port=80",
        ],
    );
    ok(
        0,
        &[
            "-n",
            "runs",
            "wait",
            "--for=condition=Ready",
            "pod/web",
            "--timeout=30s",
        ],
    );
    let wide = ok(0, &["-n", "runs", "get", "pods", "-o", "wide"]);
    assert!(wide.contains("Running") && wide.contains("1/1"), "{wide}");
    let node = ok(
        0,
        &[
            "-n",
            "runs",
            "get",
            "pod",
            "web",
            "-o",
            "jsonpath={.spec.nodeName}",
        ],
    );
    let cidr = ok(0, &["get", "node", &node, "-o", "jsonpath={.spec.podCIDR}"]);
    let ip = ok(
        0,
        &[
            "-n",
            "runs",
            "get",
            "pod",
            "web",
            "-o",
            "jsonpath={.status.podIP}",
        ],
    );
    let prefix = cidr.trim_end_matches("0/24");
    assert!(ip.starts_with(prefix), "pod IP {ip} outside {cidr}");
    let zones = ok(
        0,
        &[
            "get",
            "nodes",
            "-o",
            "jsonpath={.items[*].metadata.labels.topology\\.kubernetes\\.io/zone}",
        ],
    );
    assert_eq!(zones, "us-central1-a us-central1-a us-central1-a");
    // Nothing runs: logs say so.
    let logs = k(0, &["-n", "runs", "logs", "web"]);
    assert!(
        !logs.ok && logs.stderr.contains("simulated"),
        "{}",
        logs.stderr
    );
    // Node heartbeats.
    let leases = ok(0, &["-n", "kube-node-lease", "get", "leases", "-o", "name"]);
    assert_eq!(leases.lines().count(), 3, "{leases}");
    // Unready on purpose, and back.
    ok(
        0,
        &[
            "-n",
            "runs",
            "annotate",
            "pod",
            "web",
            "fedmesh.io/simulate-unready=true",
        ],
    );
    until(
        0,
        &[
            "-n",
            "runs",
            "get",
            "pod",
            "web",
            "-o",
            "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}",
        ],
        |s| s == "False",
    );
    ok(
        0,
        &[
            "-n",
            "runs",
            "annotate",
            "pod",
            "web",
            "fedmesh.io/simulate-unready-",
        ],
    );
    ok(
        0,
        &[
            "-n",
            "runs",
            "wait",
            "--for=condition=Ready",
            "pod/web",
            "--timeout=30s",
        ],
    );
    // Graceful deletion: the kubelet removes the pod once it "stopped".
    ok(0, &["-n", "runs", "delete", "pod", "web", "--timeout=30s"]);
    let left = ok(0, &["-n", "runs", "get", "pods", "-o", "name"]);
    assert!(left.is_empty(), "{left}");
}

#[test]
fn an_unready_node_makes_its_pods_unready() {
    ok(1, &["create", "namespace", "nodes"]);
    ok(
        1,
        &[
            "-n",
            "nodes",
            "run",
            "p",
            "--image=nginx",
            "--overrides",
            r#"{"spec": {"nodeSelector": {"kubernetes.io/hostname": "node-2"}}}"#,
        ],
    );
    ok(
        1,
        &[
            "-n",
            "nodes",
            "wait",
            "--for=condition=Ready",
            "pod/p",
            "--timeout=30s",
        ],
    );
    ok(
        1,
        &[
            "annotate",
            "node",
            "node-2",
            "fedmesh.io/simulate-unready=true",
        ],
    );
    until(
        1,
        &[
            "get",
            "node",
            "node-2",
            "-o",
            "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}",
        ],
        |s| s == "False",
    );
    until(
        1,
        &[
            "-n",
            "nodes",
            "get",
            "pod",
            "p",
            "-o",
            "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}",
        ],
        |s| s == "False",
    );
    // New pods avoid it.
    ok(1, &["-n", "nodes", "run", "q", "--image=nginx"]);
    ok(
        1,
        &[
            "-n",
            "nodes",
            "wait",
            "--for=condition=Ready",
            "pod/q",
            "--timeout=30s",
        ],
    );
    let q_node = ok(
        1,
        &[
            "-n",
            "nodes",
            "get",
            "pod",
            "q",
            "-o",
            "jsonpath={.spec.nodeName}",
        ],
    );
    assert_ne!(q_node, "node-2");
    ok(
        1,
        &["annotate", "node", "node-2", "fedmesh.io/simulate-unready-"],
    );
    ok(
        1,
        &[
            "-n",
            "nodes",
            "wait",
            "--for=condition=Ready",
            "pod/p",
            "--timeout=30s",
        ],
    );
}

#[test]
fn deployments_roll_out_scale_update_expose_and_cascade() {
    ok(2, &["create", "namespace", "apps"]);
    ok(
        2,
        &[
            "-n",
            "apps",
            "create",
            "deployment",
            "web",
            "--image=nginx:1.25",
            "--replicas=3",
            "--port=80",
        ],
    );
    let status = ok(
        2,
        &[
            "-n",
            "apps",
            "rollout",
            "status",
            "deployment/web",
            "--timeout=60s",
        ],
    );
    assert!(status.contains("successfully rolled out"), "{status}");
    ok(
        2,
        &["-n", "apps", "scale", "deployment", "web", "--replicas=5"],
    );
    ok(
        2,
        &[
            "-n",
            "apps",
            "rollout",
            "status",
            "deployment/web",
            "--timeout=60s",
        ],
    );
    let ready = ok(
        2,
        &[
            "-n",
            "apps",
            "get",
            "deployment",
            "web",
            "-o",
            "jsonpath={.status.readyReplicas}",
        ],
    );
    assert_eq!(ready, "5");
    ok(
        2,
        &[
            "-n",
            "apps",
            "set",
            "image",
            "deployment/web",
            "nginx=nginx:1.26",
        ],
    );
    ok(
        2,
        &[
            "-n",
            "apps",
            "rollout",
            "status",
            "deployment/web",
            "--timeout=60s",
        ],
    );
    let images = ok(
        2,
        &[
            "-n",
            "apps",
            "get",
            "pods",
            "-o",
            "jsonpath={.items[*].spec.containers[0].image}",
        ],
    );
    assert_eq!(
        images.split(' ').filter(|i| *i == "nginx:1.26").count(),
        5,
        "{images}"
    );
    let rs = ok(2, &["-n", "apps", "get", "rs", "-o", "name"]);
    assert_eq!(rs.lines().count(), 2, "{rs}");
    ok(
        2,
        &[
            "-n",
            "apps",
            "expose",
            "deployment",
            "web",
            "--port=80",
            "--type=LoadBalancer",
        ],
    );
    let endpoints = until(
        2,
        &[
            "-n",
            "apps",
            "get",
            "endpoints",
            "web",
            "-o",
            "jsonpath={.subsets[0].addresses[*].ip}",
        ],
        |s| s.split(' ').filter(|x| !x.is_empty()).count() == 5,
    );
    assert!(endpoints.starts_with("10.244."), "{endpoints}");
    let lb = until(
        2,
        &[
            "-n",
            "apps",
            "get",
            "service",
            "web",
            "-o",
            "jsonpath={.status.loadBalancer.ingress[0].ip}",
        ],
        |s| !s.is_empty(),
    );
    assert!(lb.starts_with("192.168.240."), "{lb}");
    let all = ok(2, &["-n", "apps", "get", "all"]);
    for want in [
        "deployment.apps/web",
        "replicaset.apps/web-",
        "pod/web-",
        "service/web",
    ] {
        assert!(all.contains(want), "{want} missing from get all: {all}");
    }
    ok(2, &["-n", "apps", "delete", "deployment", "web"]);
    until(
        2,
        &["-n", "apps", "get", "pods,rs", "-o", "name"],
        str::is_empty,
    );
}

#[test]
fn a_multi_kind_manifest_applies() {
    let manifest = r#"
apiVersion: v1
kind: Namespace
metadata: {name: shop}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: shop-config, namespace: shop}
data: {mode: demo}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: frontend, namespace: shop, labels: {app: frontend}}
spec:
  replicas: 2
  selector: {matchLabels: {app: frontend}}
  template:
    metadata: {labels: {app: frontend}}
    spec:
      containers:
      - name: web
        image: nginx:1.25
        ports: [{containerPort: 80}]
---
apiVersion: v1
kind: Service
metadata: {name: frontend, namespace: shop}
spec:
  selector: {app: frontend}
  ports: [{port: 80, targetPort: 80}]
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: frontend, namespace: shop}
spec:
  rules:
  - http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: frontend, port: {number: 80}}}}
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {name: frontend, namespace: shop}
spec:
  minAvailable: 1
  selector: {matchLabels: {app: frontend}}
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: frontend, namespace: shop}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: frontend}
  minReplicas: 2
  maxReplicas: 5
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: frontend, namespace: shop}
spec:
  podSelector: {matchLabels: {app: frontend}}
  ingress: [{}]
---
apiVersion: batch/v1
kind: CronJob
metadata: {name: report, namespace: shop}
spec:
  schedule: "*/5 * * * *"
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: Never
          containers: [{name: report, image: busybox}]
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: data, namespace: shop}
spec:
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 1Gi}}
"#;
    let r = kubectl_with(&clusters()[0], &["apply", "-f", "-"], Some(manifest));
    assert!(r.ok, "apply failed: {}", r.stderr);
    assert_eq!(r.stdout.lines().count(), 10, "{}", r.stdout);
    ok(
        0,
        &[
            "-n",
            "shop",
            "rollout",
            "status",
            "deployment/frontend",
            "--timeout=60s",
        ],
    );
    // Applying again changes nothing.
    let again = kubectl_with(&clusters()[0], &["apply", "-f", "-"], Some(manifest));
    assert!(
        again.ok && again.stdout.contains("unchanged"),
        "{}",
        again.stdout
    );
    // Validation answers as kube-apiserver does.
    let bad = kubectl_with(
        &clusters()[0],
        &["apply", "-f", "-"],
        Some(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: bad, namespace: shop}\nspec:\n  selector: {matchLabels: {app: x}}\n  template:\n    metadata: {labels: {app: y}}\n    spec: {containers: [{name: c, image: nginx}]}\n",
        ),
    );
    assert!(
        !bad.ok
            && bad
                .stderr
                .contains("`selector` does not match template `labels`"),
        "{}",
        bad.stderr
    );
}

/// Seed 002's walk-through, typed as it is printed there, with one
/// kubeconfig context per cluster:
/// `kubectl --context=$CLUSTER run nginx --image=nginx:1.11.1-alpine --port=80`
/// in every cluster gives a Ready pod with an IP from its node's pod CIDR,
/// and `kubectl expose pod nginx --port=80` a Service whose Endpoints and
/// EndpointSlice hold it, in the cluster's zone.
#[test]
fn seed_002_run_loop_gives_ready_pods_and_endpoints_in_every_cluster() {
    let configs = clusters();
    let k = |context: &str, args: &[&str]| {
        let flag = format!("--context={context}");
        let all: Vec<&str> = std::iter::once(flag.as_str())
            .chain(args.iter().copied())
            .collect();
        let r = kubectl_merged(configs, &all);
        assert!(r.ok, "kubectl {all:?} failed: {}", r.stderr);
        r.stdout
    };
    for (cluster, _, _) in ZONES {
        k(
            cluster,
            &["run", "nginx", "--image=nginx:1.11.1-alpine", "--port=80"],
        );
    }
    for (i, (cluster, zone, region)) in ZONES.into_iter().enumerate() {
        k(
            cluster,
            &[
                "wait",
                "--for=condition=Ready",
                "pod/nginx",
                "--timeout=30s",
            ],
        );
        let pod = k(
            cluster,
            &[
                "get",
                "pod",
                "nginx",
                "-o",
                "jsonpath={.spec.nodeName} {.status.podIP} {.metadata.labels.run}",
            ],
        );
        let [node, ip, run] = pod.split(' ').collect::<Vec<_>>()[..] else {
            panic!("unexpected pod fields: {pod}");
        };
        assert_eq!(run, "nginx", "kubectl run labels the pod run=nginx");
        let cidr = k(
            cluster,
            &[
                "get",
                "node",
                node,
                "-o",
                "jsonpath={.spec.podCIDR} {.metadata.labels.topology\\.kubernetes\\.io/zone} {.metadata.labels.topology\\.kubernetes\\.io/region}",
            ],
        );
        assert!(cidr.ends_with(&format!(" {zone} {region}")), "{cidr}");
        let prefix = cidr.split('/').next().unwrap().trim_end_matches('0');
        assert!(ip.starts_with(prefix), "pod IP {ip} outside {cidr}");
        k(cluster, &["expose", "pod", "nginx", "--port=80"]);
        until(
            i,
            &[
                "get",
                "endpoints",
                "nginx",
                "-o",
                "jsonpath={.subsets[0].addresses[0].ip}",
            ],
            |e| e == ip,
        );
        let want = format!("{ip} true {zone}");
        until(
            i,
            &[
                "get",
                "endpointslices",
                "-l",
                "kubernetes.io/service-name=nginx",
                "-o",
                "jsonpath={.items[0].endpoints[0].addresses[0]} {.items[0].endpoints[0].conditions.ready} {.items[0].endpoints[0].zone}",
            ],
            |slice| slice == want,
        );
    }
}

const SETS: &str = r#"
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db, namespace: sets}
spec:
  serviceName: db
  replicas: 2
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec: {containers: [{name: postgres, image: "postgres:16"}]}
---
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: agent, namespace: sets}
spec:
  selector: {matchLabels: {app: agent}}
  template:
    metadata: {labels: {app: agent}}
    spec: {containers: [{name: agent, image: "busybox:1.36"}]}
"#;

#[test]
fn stateful_and_daemon_sets_roll_out_scale_and_update_as_kubectl_expects() {
    ok(1, &["create", "namespace", "sets"]);
    let r = kubectl_with(&clusters()[1], &["apply", "-f", "-"], Some(SETS));
    assert!(r.ok, "apply: {}", r.stderr);
    let rollout = |what: &str| {
        let status = ok(
            1,
            &["-n", "sets", "rollout", "status", what, "--timeout=60s"],
        );
        assert!(
            status.contains("roll out complete") || status.contains("successfully rolled out"),
            "{what}: {status}"
        );
    };
    rollout("statefulset/db");
    rollout("daemonset/agent");
    // Ordinal names, stable hostnames, one agent per node.
    let pods = ok(
        1,
        &[
            "-n",
            "sets",
            "get",
            "pods",
            "-l",
            "app=db",
            "-o",
            "jsonpath={range .items[*]}{.metadata.name}/{.spec.hostname}/{.spec.subdomain}/{.status.phase} {end}",
        ],
    );
    assert_eq!(pods.trim(), "db-0/db-0/db/Running db-1/db-1/db/Running");
    let nodes = ok(
        1,
        &[
            "-n",
            "sets",
            "get",
            "pods",
            "-l",
            "app=agent",
            "-o",
            "jsonpath={range .items[*]}{.spec.nodeName} {end}",
        ],
    );
    let mut nodes: Vec<&str> = nodes.split_whitespace().collect();
    nodes.sort_unstable();
    assert_eq!(
        nodes.len(),
        3,
        "one agent on each of the three nodes: {nodes:?}"
    );
    nodes.dedup();
    assert_eq!(nodes.len(), 3, "never two on one node");
    let table = ok(1, &["-n", "sets", "get", "statefulsets,daemonsets"]);
    assert!(table.contains("READY") && table.contains("2/2"), "{table}");
    assert!(table.contains("NODE SELECTOR"), "{table}");

    // Scaling down removes the highest ordinal; an update replaces every pod.
    ok(
        1,
        &["-n", "sets", "scale", "statefulset", "db", "--replicas=1"],
    );
    until(
        1,
        &[
            "-n",
            "sets",
            "get",
            "pods",
            "-l",
            "app=db",
            "-o",
            "jsonpath={.items[*].metadata.name}",
        ],
        |names| names.trim() == "db-0",
    );
    ok(
        1,
        &[
            "-n",
            "sets",
            "set",
            "image",
            "statefulset/db",
            "postgres=postgres:17",
        ],
    );
    ok(
        1,
        &[
            "-n",
            "sets",
            "set",
            "image",
            "daemonset/agent",
            "agent=busybox:1.37",
        ],
    );
    rollout("statefulset/db");
    rollout("daemonset/agent");
    let images = ok(
        1,
        &[
            "-n",
            "sets",
            "get",
            "pods",
            "-o",
            "jsonpath={.items[*].spec.containers[0].image}",
        ],
    );
    assert!(
        !images.contains("postgres:16") && !images.contains("busybox:1.36"),
        "every pod replaced: {images}"
    );

    // Deleting a set deletes its pods.
    ok(1, &["-n", "sets", "delete", "daemonset", "agent"]);
    until(
        1,
        &["-n", "sets", "get", "pods", "-l", "app=agent", "-o", "name"],
        |names| names.trim().is_empty(),
    );
}

/// An application applied with a label, then applied again without one of
/// its objects: `kubectl apply --prune -l` deletes what left the manifest
/// (and the Deployment's pods go with it), and keeps the rest.
#[test]
fn apply_prune_with_a_label_deletes_what_left_the_manifest() {
    ok(2, &["create", "namespace", "prune"]);
    let config = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings, namespace: prune, labels: {app: shop}}\ndata: {mode: demo}\n";
    let service = "apiVersion: v1\nkind: Service\nmetadata: {name: cart, namespace: prune, labels: {app: shop}}\nspec:\n  selector: {app: cart}\n  ports: [{port: 80}]\n";
    let deployment = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: cart, namespace: prune, labels: {app: shop}}\nspec:\n  replicas: 2\n  selector: {matchLabels: {app: cart}}\n  template:\n    metadata: {labels: {app: cart}}\n    spec: {containers: [{name: cart, image: nginx}]}\n";
    // Not the application's: never pruned.
    ok(
        2,
        &[
            "-n",
            "prune",
            "create",
            "configmap",
            "unrelated",
            "--from-literal=a=b",
        ],
    );
    let all = format!("{config}---\n{service}---\n{deployment}");
    let first = kubectl_with(
        &clusters()[2],
        &["apply", "--prune", "-l", "app=shop", "-f", "-"],
        Some(&all),
    );
    assert!(first.ok, "{}", first.stderr);
    ok(
        2,
        &[
            "-n",
            "prune",
            "rollout",
            "status",
            "deployment/cart",
            "--timeout=60s",
        ],
    );
    let second = kubectl_with(
        &clusters()[2],
        &["apply", "--prune", "-l", "app=shop", "-f", "-"],
        Some(&format!("{config}---\n{service}")),
    );
    assert!(second.ok, "{}", second.stderr);
    assert!(
        second.stdout.contains("deployment.apps/cart pruned"),
        "{}",
        second.stdout
    );
    let left = until(
        2,
        &[
            "-n",
            "prune",
            "get",
            "deployments,pods,configmaps,services",
            "-o",
            "name",
        ],
        |names| !names.contains("pod/"),
    );
    let mut left: Vec<&str> = left.lines().collect();
    left.sort_unstable();
    assert_eq!(
        left,
        ["configmap/settings", "configmap/unrelated", "service/cart"]
    );
}
