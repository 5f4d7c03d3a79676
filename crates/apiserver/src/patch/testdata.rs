//! Hand-built merge metadata of a few built-in kinds, as Kubernetes' OpenAPI declares
//! them, for the unit tests.

use serde_json::json;

use super::info::SchemaNode as N;

fn string_map() -> N {
    N::map_of(N::scalar())
}

pub(crate) fn object_meta() -> N {
    let owner_ref = N::object([
        ("apiVersion", N::scalar()),
        ("kind", N::scalar()),
        ("name", N::scalar()),
        ("uid", N::scalar()),
        ("controller", N::scalar()),
    ]);
    N::object([
        ("name", N::scalar()),
        ("namespace", N::scalar()),
        ("uid", N::scalar()),
        ("resourceVersion", N::scalar()),
        ("generation", N::scalar()),
        ("creationTimestamp", N::scalar()),
        ("labels", string_map()),
        ("annotations", string_map()),
        ("finalizers", N::set_list()),
        ("ownerReferences", N::keyed_list(owner_ref, "uid", &["uid"])),
        ("managedFields", N::atomic_list(N::scalar())),
    ])
}

fn container() -> N {
    let env = N::object([("name", N::scalar()), ("value", N::scalar())]);
    let port = N::object([
        ("name", N::scalar()),
        ("containerPort", N::scalar()),
        ("protocol", N::scalar().with_default(json!("TCP"))),
    ]);
    let mount = N::object([("name", N::scalar()), ("mountPath", N::scalar())]);
    N::object([
        ("name", N::scalar()),
        ("image", N::scalar()),
        ("args", N::atomic_list(N::scalar())),
        ("command", N::atomic_list(N::scalar())),
        ("env", N::keyed_list(env, "name", &["name"])),
        (
            "ports",
            N::keyed_list(port, "containerPort", &["containerPort", "protocol"]),
        ),
        (
            "resources",
            N::object([("limits", string_map()), ("requests", string_map())]),
        ),
        (
            "volumeMounts",
            N::keyed_list(mount, "mountPath", &["mountPath"]),
        ),
    ])
}

pub(crate) fn pod_spec() -> N {
    let volume = N::object([
        ("name", N::scalar()),
        ("emptyDir", N::object([("medium", N::scalar())])),
        ("configMap", N::object([("name", N::scalar())])),
        ("secret", N::object([("secretName", N::scalar())])),
    ]);
    let toleration = N::object([
        ("key", N::scalar()),
        ("operator", N::scalar()),
        ("effect", N::scalar()),
    ]);
    N::object([
        ("containers", N::keyed_list(container(), "name", &["name"])),
        (
            "initContainers",
            N::keyed_list(container(), "name", &["name"]),
        ),
        (
            "volumes",
            N::keyed_list(volume, "name", &["name"]).with_patch_strategy("merge,retainKeys"),
        ),
        ("tolerations", N::atomic_list(toleration)),
        ("nodeSelector", string_map().atomic_map()),
        ("nodeName", N::scalar()),
        ("restartPolicy", N::scalar()),
    ])
}

pub(crate) fn pod() -> N {
    N::object([
        ("apiVersion", N::scalar()),
        ("kind", N::scalar()),
        ("metadata", object_meta()),
        ("spec", pod_spec()),
        ("status", N::object([("phase", N::scalar())])),
    ])
}

pub(crate) fn deployment() -> N {
    let strategy = N::object([
        ("type", N::scalar()),
        (
            "rollingUpdate",
            N::object([("maxSurge", N::scalar()), ("maxUnavailable", N::scalar())]),
        ),
    ])
    .with_patch_strategy("retainKeys");
    let selector = N::object([("matchLabels", string_map())]).atomic_map();
    let spec = N::object([
        ("replicas", N::scalar()),
        ("selector", selector),
        ("strategy", strategy),
        (
            "template",
            N::object([("metadata", object_meta()), ("spec", pod_spec())]),
        ),
    ]);
    N::object([
        ("apiVersion", N::scalar()),
        ("kind", N::scalar()),
        ("metadata", object_meta()),
        ("spec", spec),
        ("status", N::object([("replicas", N::scalar())])),
    ])
}

pub(crate) fn service() -> N {
    let port = N::object([
        ("name", N::scalar()),
        ("port", N::scalar()),
        ("targetPort", N::scalar()),
        ("protocol", N::scalar().with_default(json!("TCP"))),
    ]);
    let spec = N::object([
        ("ports", N::keyed_list(port, "port", &["port", "protocol"])),
        ("selector", string_map().atomic_map()),
        ("type", N::scalar()),
        ("clusterIP", N::scalar()),
    ]);
    N::object([
        ("apiVersion", N::scalar()),
        ("kind", N::scalar()),
        ("metadata", object_meta()),
        ("spec", spec),
    ])
}
