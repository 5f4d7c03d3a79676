//! The demo's example objects: seed 000's `my-app` tutorial, seed 004's
//! bookinfo `reviews`/`ratings`, and seed 002's `nginx` in the federation
//! with a Deployment behind it in each member.
//!
//! Each backend is a Deployment, as in the seeds: the clusters' simulated
//! scheduler and kubelet run its pods on simulated nodes, and the clusters'
//! own endpoints controller makes the backing Services' EndpointSlices from
//! them once they are Ready. Scaling the remote `my-app` Deployment to zero
//! is how the demo takes a backend away.

use serde_json::{Value, json};

/// Which of the demo's clusters an object goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    /// The cluster that runs the controller and holds the federated services.
    Local,
    /// The cluster it reads.
    Remote,
}

/// A Deployment backing one of the seeds' Services.
pub(crate) struct Backend {
    pub(crate) side: Side,
    pub(crate) namespace: &'static str,
    pub(crate) name: &'static str,
    /// The pods' labels (what the backing Service selects).
    pub(crate) labels: Value,
    /// The containers' ports (the Services' target ports).
    pub(crate) ports: &'static [(&'static str, i32)],
}

impl Backend {
    /// The Deployment, one replica.
    pub(crate) fn deployment(&self) -> Value {
        let ports: Vec<Value> = self
            .ports
            .iter()
            .map(|(name, port)| json!({"name": name, "containerPort": port, "protocol": "TCP"}))
            .collect();
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": self.name, "namespace": self.namespace, "labels": self.labels},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": self.labels},
                "template": {
                    "metadata": {"labels": self.labels},
                    "spec": {"containers": [{
                        "name": "app", "image": "registry.k8s.io/pause:3.10", "ports": ports
                    }]}
                }
            }
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

/// The namespace of seed 002's example in the federation and its members.
pub(crate) const FEDERATED_NAMESPACE: &str = "mynamespace";

/// The namespaces the demo uses in both clusters besides `default`.
pub(crate) const NAMESPACES: &[&str] = &["bookinfo", FEDERATED_NAMESPACE];

/// Seed 002's federated Service, created in the federation: a
/// LoadBalancer, so that each member's copy gets an ingress address.
pub(crate) fn federated_nginx() -> Value {
    json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "nginx", "namespace": FEDERATED_NAMESPACE, "labels": {"run": "nginx"}},
        "spec": {
            "type": "LoadBalancer",
            "selector": {"run": "nginx"},
            "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]
        }
    })
}

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

/// The Deployments behind the Services (the labels of each are its
/// Service's selector).
pub(crate) fn backends() -> Vec<Backend> {
    let my_app = &[("my-app-ui", 9000), ("my-app-console", 9001)];
    let http = &[("http", 9080)];
    vec![
        Backend {
            side: Side::Remote,
            namespace: "default",
            name: "my-app",
            labels: json!({"run": "my-app"}),
            ports: my_app,
        },
        Backend {
            side: Side::Local,
            namespace: "default",
            name: "my-app",
            labels: json!({"run": "my-app"}),
            ports: my_app,
        },
        Backend {
            side: Side::Local,
            namespace: "bookinfo",
            name: "reviews-v1",
            labels: json!({"app": "reviews", "version": "v1"}),
            ports: http,
        },
        Backend {
            side: Side::Local,
            namespace: "bookinfo",
            name: "ratings-v1",
            labels: json!({"app": "ratings", "version": "v1"}),
            ports: http,
        },
        Backend {
            side: Side::Remote,
            namespace: "bookinfo",
            name: "reviews-v2",
            labels: json!({"app": "reviews", "version": "v2"}),
            ports: http,
        },
        Backend {
            side: Side::Remote,
            namespace: "bookinfo",
            name: "reviews-v3",
            labels: json!({"app": "reviews", "version": "v3"}),
            ports: http,
        },
        // The federated nginx's shard in each member is healthy while
        // this runs.
        Backend {
            side: Side::Local,
            namespace: FEDERATED_NAMESPACE,
            name: "nginx",
            labels: json!({"run": "nginx"}),
            ports: &[("http", 80)],
        },
        Backend {
            side: Side::Remote,
            namespace: FEDERATED_NAMESPACE,
            name: "nginx",
            labels: json!({"run": "nginx"}),
            ports: &[("http", 80)],
        },
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
