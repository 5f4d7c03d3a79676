//! The demo's example objects: seed 000's `my-app` tutorial and seed 004's
//! bookinfo `reviews`/`ratings`.
//!
//! The embedded server runs no kubelet, so each backing pod's endpoints come
//! from an EndpointSlice the demo writes as the endpoints controller would;
//! deleting that slice is how the demo "scales a pod away".

use serde_json::{Value, json};

/// Label that keeps Kubernetes' own EndpointSlice controller off the demo's slices.
const MANAGED_BY: &str = "demo.fedmesh.io";

/// Which of the demo's clusters an object goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    /// The cluster that runs the controller and holds the federated services.
    Local,
    /// The cluster it reads.
    Remote,
}

/// A pod standing in for a running workload, and the slice carrying it.
pub(crate) struct Backend {
    pub(crate) side: Side,
    pub(crate) namespace: &'static str,
    pub(crate) service: &'static str,
    pub(crate) pods: &'static [(&'static str, &'static str)],
    pub(crate) node: &'static str,
    pub(crate) ports: &'static [(&'static str, i32)],
}

impl Backend {
    /// The EndpointSlice's name.
    pub(crate) fn slice_name(&self) -> String {
        format!("{}-demo", self.service)
    }

    /// The pods.
    pub(crate) fn pod_objects(&self, labels: &Value) -> Vec<Value> {
        self.pods
            .iter()
            .map(|(name, _)| {
                json!({
                    "apiVersion": "v1", "kind": "Pod",
                    "metadata": {"name": name, "namespace": self.namespace, "labels": labels},
                    "spec": {
                        "nodeName": self.node,
                        "containers": [{"name": "app", "image": "registry.k8s.io/pause:3.10"}]
                    }
                })
            })
            .collect()
    }

    /// The slice, with the pods' uids as their targetRefs.
    pub(crate) fn slice(&self, uids: &[String]) -> Value {
        let endpoints: Vec<Value> = self
            .pods
            .iter()
            .zip(uids)
            .map(|((pod, ip), uid)| {
                json!({
                    "addresses": [ip],
                    "conditions": {"ready": true, "serving": true, "terminating": false},
                    "nodeName": self.node,
                    "targetRef": {"kind": "Pod", "name": pod, "namespace": self.namespace, "uid": uid}
                })
            })
            .collect();
        let ports: Vec<Value> = self
            .ports
            .iter()
            .map(|(name, port)| json!({"name": name, "port": port, "protocol": "TCP"}))
            .collect();
        json!({
            "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {
                "name": self.slice_name(), "namespace": self.namespace,
                "labels": {
                    "kubernetes.io/service-name": self.service,
                    "endpointslice.kubernetes.io/managed-by": MANAGED_BY
                }
            },
            "addressType": "IPv4",
            "ports": ports,
            "endpoints": endpoints
        })
    }
}

/// A Service of the demo and where it goes.
pub(crate) struct ServiceDef {
    pub(crate) side: Side,
    pub(crate) object: Value,
}

fn backing_service(
    namespace: &str,
    name: &str,
    labels: &Value,
    ports: &[(&str, i32, i32)],
) -> Value {
    let ports: Vec<Value> = ports
        .iter()
        .map(|(name, port, target)| {
            json!({"name": name, "port": port, "protocol": "TCP", "targetPort": target})
        })
        .collect();
    json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {"selector": labels, "ports": ports, "type": "ClusterIP"}
    })
}

fn federated_service(namespace: &str, name: &str, selector: &str, port: (&str, i32)) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {
            "name": name, "namespace": namespace,
            "annotations": {"federation.tigera.io/serviceSelector": selector}
        },
        "spec": {"ports": [{"name": port.0, "port": port.1, "protocol": "TCP"}], "type": "ClusterIP"}
    })
}

/// The namespaces the demo uses besides `default`.
pub(crate) const NAMESPACES: &[&str] = &["bookinfo"];

/// The Services, backing ones first.
pub(crate) fn services() -> Vec<ServiceDef> {
    let my_app = json!({"run": "my-app"});
    let my_app_ports = [("my-app-ui", 80, 9000), ("my-app-console", 81, 9001)];
    let http = [("http", 9080, 9080)];
    vec![
        ServiceDef {
            side: Side::Remote,
            object: backing_service("default", "my-app", &my_app, &my_app_ports),
        },
        ServiceDef {
            side: Side::Local,
            object: backing_service("default", "my-app", &my_app, &my_app_ports),
        },
        ServiceDef {
            side: Side::Local,
            object: federated_service(
                "default",
                "my-app-federated",
                r#"run == "my-app""#,
                ("my-app-ui", 8080),
            ),
        },
        ServiceDef {
            side: Side::Local,
            object: backing_service(
                "bookinfo",
                "reviews-v1",
                &json!({"app": "reviews", "version": "v1"}),
                &http,
            ),
        },
        ServiceDef {
            side: Side::Remote,
            object: backing_service("bookinfo", "reviews-23", &json!({"app": "reviews"}), &http),
        },
        ServiceDef {
            side: Side::Local,
            object: backing_service("bookinfo", "ratings-1", &json!({"app": "ratings"}), &http),
        },
        ServiceDef {
            side: Side::Local,
            object: federated_service("bookinfo", "reviews", r#"app == "reviews""#, ("http", 9080)),
        },
        ServiceDef {
            side: Side::Local,
            object: federated_service("bookinfo", "ratings", r#"app == "ratings""#, ("http", 9080)),
        },
        ServiceDef {
            side: Side::Remote,
            object: federated_service("bookinfo", "ratings", r#"app == "ratings""#, ("http", 9080)),
        },
    ]
}

/// The remote `my-app` backend: the one the printed commands scale away and back.
pub(crate) const REMOTE_MY_APP: usize = 0;

/// The pods and their slices (the labels of each pod are its service's selector).
pub(crate) fn backends() -> Vec<(Backend, Value)> {
    vec![
        (
            Backend {
                side: Side::Remote,
                namespace: "default",
                service: "my-app",
                // The seed's Endpoints show the Service ports (80), so the slices carry them.
                pods: &[("my-app-7b6f758bd5-ctgbh", "192.168.0.28")],
                node: "node1.remotecluster.tigera.io",
                ports: &[("my-app-ui", 80), ("my-app-console", 81)],
            },
            json!({"run": "my-app"}),
        ),
        (
            Backend {
                side: Side::Local,
                namespace: "default",
                service: "my-app",
                pods: &[("my-app-59cf48cdc7-frf2t", "192.168.93.12")],
                node: "node1.localcluster.tigera.io",
                ports: &[("my-app-ui", 80), ("my-app-console", 81)],
            },
            json!({"run": "my-app"}),
        ),
        (
            Backend {
                side: Side::Local,
                namespace: "bookinfo",
                service: "reviews-v1",
                pods: &[("reviews-v1-5b4c8d7f6-x2lqp", "10.1.0.11")],
                node: "node1.localcluster.tigera.io",
                ports: &[("http", 9080)],
            },
            json!({"app": "reviews", "version": "v1"}),
        ),
        (
            Backend {
                side: Side::Local,
                namespace: "bookinfo",
                service: "ratings-1",
                pods: &[("ratings-v1-7dc98c7588-vzftc", "10.1.0.21")],
                node: "node1.localcluster.tigera.io",
                ports: &[("http", 9080)],
            },
            json!({"app": "ratings"}),
        ),
        (
            Backend {
                side: Side::Remote,
                namespace: "bookinfo",
                service: "reviews-23",
                pods: &[
                    ("reviews-v2-8454bb78d8-9tm2j", "10.2.0.12"),
                    ("reviews-v3-6dc9897554-8pgtx", "10.2.0.13"),
                ],
                node: "node1.remotecluster.tigera.io",
                ports: &[("http", 9080)],
            },
            json!({"app": "reviews"}),
        ),
    ]
}

/// What the federated Endpoints hold once the mesh is in sync:
/// (cluster, namespace, service, number of addresses).
pub(crate) const EXPECTED: &[(Side, &str, &str, usize)] = &[
    (Side::Local, "default", "my-app-federated", 2),
    (Side::Local, "bookinfo", "reviews", 3),
    (Side::Local, "bookinfo", "ratings", 1),
    (Side::Remote, "bookinfo", "ratings", 1),
];
