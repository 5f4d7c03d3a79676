//! Request decoding of the embedded API server, from arbitrary bytes.
//!
//! An input is a request written like HTTP/1.1 (see `fuzz/README.md`):
//!
//! ```text
//! PATCH /api/v1/namespaces/default/pods/p0?fieldManager=f&dryRun=All
//! Content-Type: application/strategic-merge-patch+json
//!
//! {"metadata":{"labels":{"a":"b"}}}
//! ```
//!
//! Each input goes twice through the server's code:
//! 1. the whole HTTP handler (in process, no socket) over an in-memory store seeded
//!    with a Pod, Service, ConfigMap, Secret, CRD and custom object; writes must
//!    carry `dryRun=All` (otherwise only step 2 runs) so that the store never
//!    changes and inputs replay the same way;
//! 2. the decoding functions directly: `decode_object` for the body's content type,
//!    every patch type against each seeded object with its built-in or CRD schema
//!    (server-side apply included), and the query parameters as options of every
//!    verb.
//!
//! Invariants: nothing panics; every error answer is a `Status` whose `code` is
//! the HTTP status; a 500 only passes a patch error through unclassified (empty
//! reason), as kube-apiserver does; a decoded body survives a JSON round trip
//! (and re-reads as YAML, since JSON is YAML when YAML allows its characters);
//! a merge or strategic merge patch that succeeds yields an object.

#![no_main]

use std::sync::{Arc, OnceLock};

use fedmesh_apiserver::auth::Security;
use fedmesh_apiserver::http::request::{Query, decode_object};
use fedmesh_apiserver::http::{HttpConfig, HttpState, guard::Guard};
use fedmesh_apiserver::objects::{ObjectStore, Objects, WriteOptions};
use fedmesh_apiserver::patch::{self, Manager, MergeInfo, PatchType};
use fedmesh_apiserver::registry::{Registry, ResourceInfo};
use fedmesh_apiserver::schema::{BuiltinKind, Schema};
use http::{HeaderName, HeaderValue, Method, Request, Uri, header};
use http_body_util::BodyExt;
use libfuzzer_sys::fuzz_target;
use serde_json::{Value, json};
use tower::ServiceExt;

/// One stored object the direct patch calls work on.
struct Live {
    resource: Arc<ResourceInfo>,
    object: Value,
    schema: Option<Arc<Schema>>,
}

struct World {
    runtime: tokio::runtime::Runtime,
    router: axum::Router,
    token: String,
    live: Vec<Live>,
    /// Kept so that watches are never told the server stops.
    _shutdown: tokio::sync::watch::Sender<bool>,
}

fn widget_crd() -> Value {
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {
            "group": "example.com",
            "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
            "versions": [{
                "name": "v1", "served": true, "storage": true,
                "subresources": {"status": {}},
                "schema": {"openAPIV3Schema": {
                    "type": "object",
                    "properties": {
                        "spec": {"type": "object", "properties": {
                            "size": {"type": "integer", "default": 1},
                            "items": {"type": "array", "x-kubernetes-list-type": "map",
                                "x-kubernetes-list-map-keys": ["name"],
                                "items": {"type": "object", "required": ["name"],
                                    "properties": {"name": {"type": "string"},
                                                   "value": {"type": "string"}}}}
                        }},
                        "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}
                    }
                }}
            }]
        }
    })
}

fn seeds() -> Vec<(&'static str, &'static str, Value)> {
    vec![
        (
            "",
            "pods",
            json!({
                "apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": "p0", "namespace": "default", "labels": {"app": "a", "tier": "web"},
                             "annotations": {"note": "x"}, "finalizers": ["example.com/keep"]},
                "spec": {"nodeName": "n1", "containers": [
                    {"name": "c", "image": "nginx", "ports": [{"name": "http", "containerPort": 80}],
                     "env": [{"name": "A", "value": "1"}]},
                    {"name": "d", "image": "busybox"}]}
            }),
        ),
        (
            "",
            "services",
            json!({
                "apiVersion": "v1", "kind": "Service",
                "metadata": {"name": "s0", "namespace": "default", "labels": {"app": "a"}},
                "spec": {"selector": {"app": "a"}, "ports": [
                    {"name": "http", "port": 80, "protocol": "TCP", "targetPort": 8080},
                    {"name": "dns", "port": 53, "protocol": "UDP"}]}
            }),
        ),
        (
            "",
            "configmaps",
            json!({
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "c0", "namespace": "default"},
                "data": {"k": "v", "other": "w"}
            }),
        ),
        (
            "",
            "secrets",
            json!({
                "apiVersion": "v1", "kind": "Secret",
                "metadata": {"name": "x0", "namespace": "default"},
                "type": "Opaque", "data": {"k": "dg=="}
            }),
        ),
        (
            "example.com",
            "widgets",
            json!({
                "apiVersion": "example.com/v1", "kind": "Widget",
                "metadata": {"name": "w0", "namespace": "default"},
                "spec": {"size": 3, "items": [{"name": "a", "value": "1"}]}
            }),
        ),
    ]
}

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let objects = Objects::new(ObjectStore::in_memory().expect("an in-memory store"), Registry::with_builtins());
        let addr = "127.0.0.1:6443".parse().expect("address");
        let live = runtime.block_on(async {
            fedmesh_apiserver::controllers::bootstrap(&objects, addr)
                .await
                .expect("bootstrap");
            let crds = objects
                .registry()
                .resolve("apiextensions.k8s.io", "v1", "customresourcedefinitions")
                .expect("crd resource");
            // Stored CRDs are served at once.
            objects
                .create(&crds, None, widget_crd(), &WriteOptions::default())
                .await
                .expect("crd");
            let mut live = Vec::new();
            for (group, plural, object) in seeds() {
                let resource = objects
                    .registry()
                    .resolve(group, "v1", plural)
                    .expect("seed resource");
                let written = objects
                    .create(&resource, Some("default"), object, &WriteOptions::default())
                    .await
                    .expect("seed object");
                let schema = match &resource.crd {
                    Some(crd) => crd.structural.clone(),
                    None => {
                        BuiltinKind::from_gvk(&resource.group, &resource.version, &resource.kind)
                            .map(BuiltinKind::schema)
                    }
                };
                live.push(Live {
                    resource,
                    object: written.object,
                    schema,
                });
            }
            live
        });
        let guard = Guard::new(Security::in_memory(&[]).expect("security"));
        let token = guard.security.admin_token.expose().to_owned();
        let (shutdown, shutdown_rx) = tokio::sync::watch::channel(false);
        let state = HttpState {
            objects,
            config: Arc::new(HttpConfig {
                body_limit: 256 * 1024,
                server_address: "127.0.0.1:6443".into(),
                ..HttpConfig::default()
            }),
            shutdown: shutdown_rx,
            openapi: Default::default(),
            guard,
            metrics: Default::default(),
        };
        World {
            runtime,
            router: fedmesh_apiserver::http::router(state),
            token,
            live,
            _shutdown: shutdown,
        }
    })
}

/// A request as the input spells it.
struct Parsed<'a> {
    method: &'a str,
    target: &'a str,
    headers: Vec<(&'a str, &'a str)>,
    body: &'a [u8],
}

fn split(data: &[u8]) -> Option<Parsed<'_>> {
    let (head, body) = match data.windows(2).position(|w| w == b"\n\n") {
        Some(i) => (&data[..i], &data[i + 2..]),
        None => match data.iter().position(|&b| b == b'\n') {
            Some(i) => (&data[..i], &data[i + 1..]),
            None => (data, &[][..]),
        },
    };
    let head = std::str::from_utf8(head).ok()?;
    let mut lines = head.lines();
    let (method, target) = lines.next()?.split_once(' ')?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim(), v.trim()))
        .collect();
    Some(Parsed {
        method,
        target,
        headers,
        body,
    })
}

fuzz_target!(|data: &[u8]| {
    let Some(req) = split(data) else { return };
    let world = world();
    let uri: Option<Uri> = req.target.parse().ok();
    let content_type = req
        .headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-type"))
        .map(|(_, v)| *v);
    if let Some(uri) = &uri {
        through_http(world, &req, uri);
        query(world, uri, content_type, req.body);
    }
    body(world, content_type, req.body);
});

/// Step 1: the whole handler.
fn through_http(world: &World, req: &Parsed<'_>, uri: &Uri) {
    let Ok(method) = Method::from_bytes(req.method.as_bytes()) else {
        return;
    };
    let reads = method == Method::GET || method == Method::HEAD;
    let dry = Query::parse(uri).is_ok_and(|q| q.get("dryRun") == Some("All"));
    if !reads && !dry {
        return;
    }
    let mut builder = Request::builder().method(method).uri(uri.clone());
    let mut authorized = false;
    for (name, value) in &req.headers {
        let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) else {
            continue;
        };
        authorized |= name == header::AUTHORIZATION;
        builder = builder.header(name, value);
    }
    if !authorized {
        builder = builder.header(header::AUTHORIZATION, format!("Bearer {}", world.token));
    }
    let Ok(request) = builder.body(axum::body::Body::from(req.body.to_vec())) else {
        return;
    };
    world.runtime.block_on(async {
        let Ok(response) = world.router.clone().oneshot(request).await;
        let status = response.status();
        let streaming = response
            .headers()
            .get(header::CACHE_CONTROL)
            .is_some_and(|v| v.as_bytes().starts_with(b"no-cache"));
        if streaming && status.is_success() {
            // A watch: its stream never ends by itself.
            return;
        }
        let Ok(collected) = response.into_body().collect().await else {
            panic!("unreadable response body");
        };
        if status.is_success() {
            return;
        }
        let bytes = collected.to_bytes();
        let answer: Value = serde_json::from_slice(&bytes)
            .unwrap_or_else(|e| panic!("{status} answered with a non-JSON body ({e})"));
        assert_eq!(answer["kind"], "Status", "{status}: {answer}");
        assert_eq!(answer["code"], status.as_u16(), "{answer}");
        if status.as_u16() == 500 {
            assert_eq!(answer["reason"], "", "an internal error: {answer}");
        }
    });
}

/// Step 2a: query parameters as options of every verb.
fn query(world: &World, uri: &Uri, content_type: Option<&str>, body: &[u8]) {
    let Ok(query) = Query::parse(uri) else { return };
    let _ = query.write_options();
    let delete_body = decode_object(content_type, body).ok();
    let _ = query.delete_options(delete_body.as_ref());
    for live in &world.live {
        let _ = query.list_options(&live.resource);
        let _ = query.watch_options(&live.resource, None);
        let _ = query.watch_options(&live.resource, Some("p0"));
    }
}

fn has_float(v: &Value) -> bool {
    match v {
        Value::Number(n) => n.is_f64(),
        Value::Array(a) => a.iter().any(has_float),
        Value::Object(o) => o.values().any(has_float),
        _ => false,
    }
}

/// Whether YAML allows every character of `json` as it stands: JSON strings may
/// hold DEL and C1 controls unescaped, YAML's printable set excludes them (and
/// kube-apiserver's YAML decoder rejects them too), so only then is JSON also YAML.
fn yaml_printable(json: &[u8]) -> bool {
    std::str::from_utf8(json).is_ok_and(|s| {
        !s.chars().any(|c| {
            c == '\u{7f}'
                || (('\u{80}'..='\u{9f}').contains(&c) && c != '\u{85}')
                || matches!(c, '\u{feff}' | '\u{fffe}' | '\u{ffff}')
        })
    })
}

/// Step 2b: the body, as an object and as every patch type.
fn body(world: &World, content_type: Option<&str>, body: &[u8]) {
    if let Ok(value) = decode_object(content_type, body)
        && !has_float(&value)
    {
        let json = serde_json::to_vec(&value).expect("a Value serializes");
        let again = decode_object(Some("application/json"), &json).expect("own JSON re-reads");
        assert_eq!(again, value, "JSON round trip");
        if yaml_printable(&json) {
            let as_yaml = decode_object(Some("application/yaml"), &json).expect("JSON is YAML");
            assert_eq!(as_yaml, value, "JSON read as YAML");
        }
    }
    let Ok(kind) = PatchType::from_content_type(content_type.unwrap_or(""), true) else {
        return;
    };
    for live in &world.live {
        let info = live.schema.as_deref().map(|s| s as &dyn MergeInfo);
        if kind == PatchType::Apply {
            let api_version = live.resource.api_version();
            let manager = Manager {
                name: "fuzz",
                api_version: &api_version,
                subresource: None,
                now: "2026-01-01T00:00:00Z",
                ignored_fields: &[],
            };
            for force in [false, true] {
                let applied =
                    patch::server_side_apply(Some(&live.object), body, &manager, force, info);
                if let Err(e) = &applied {
                    assert!((400..=500).contains(&e.reason().code()));
                }
            }
            let _ = patch::server_side_apply(None, body, &manager, false, info);
            continue;
        }
        match patch::apply_patch(kind, &live.object, body, info) {
            Ok(patched) => {
                if kind != PatchType::Json {
                    assert!(patched.is_object(), "{kind:?} made {patched}");
                }
            }
            Err(e) => assert!((400..=500).contains(&e.reason().code())),
        }
    }
}
