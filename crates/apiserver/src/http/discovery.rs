//! Non-resource endpoints: version, health, discovery documents.

use axum::extract::Request;
use axum::response::Response;
use http::{Method, StatusCode};
use serde_json::json;

use super::HttpState;
use super::path::Target;
use super::response;
use crate::objects::ApiError;
use crate::registry::discovery as docs;

/// The Kubernetes minor version the server reports: the API served is v1.33's.
/// kubectl's dispatcher picks its kubectl by this number; kubectl 1.32+ sends
/// protobuf request bodies from its typed commands, which `crate::proto` decodes.
pub const KUBE_MINOR: &str = "33";
/// `gitVersion` reported at `/version`.
pub const GIT_VERSION: &str = "v1.33.0-fedmesh";

/// `/healthz`, `/livez`, `/readyz`, with `?verbose` listing each check as
/// kube-apiserver does (`[+]ping ok` ... `livez check passed`), `?exclude=`
/// skipping checks, and `/livez/<check>` answering one.
pub(super) async fn health(state: &HttpState, path: &str, query: &str) -> Response {
    let mut parts = path.trim_matches('/').splitn(2, '/');
    let endpoint = parts.next().unwrap_or("healthz");
    let only = parts.next();
    let verbose = query
        .split('&')
        .any(|p| p == "verbose" || p.starts_with("verbose="));
    let excluded: Vec<&str> = query
        .split('&')
        .filter_map(|p| p.strip_prefix("exclude="))
        .collect();
    let store_ok = state.objects.store().current_revision().await.is_ok();
    let stopping = *state.shutdown.borrow();
    let mut checks = vec![("ping", true), ("log", true), ("etcd", store_ok)];
    if endpoint == "readyz" {
        checks.push(("etcd-readiness", store_ok));
        checks.push(("informer-sync", true));
    }
    checks.push(("poststarthook/start-apiserver-admission-initializer", true));
    checks.push(("poststarthook/rbac/bootstrap-roles", true));
    if endpoint == "readyz" {
        checks.push(("shutdown", !stopping));
    }
    let text = |code: StatusCode, body: String| {
        Response::builder()
            .status(code)
            .header(http::header::CONTENT_TYPE, "text/plain; charset=utf-8")
            .header("X-Content-Type-Options", "nosniff")
            .body(axum::body::Body::from(body))
            .unwrap_or_default()
    };
    if let Some(wanted) = only {
        return match checks.iter().find(|(n, _)| *n == wanted) {
            Some((_, true)) => text(StatusCode::OK, "ok".into()),
            Some((_, false)) => text(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal server error: reason withheld\n".into(),
            ),
            None => text(StatusCode::NOT_FOUND, "404 page not found\n".into()),
        };
    }
    let checks: Vec<_> = checks
        .into_iter()
        .filter(|(n, _)| !excluded.contains(n))
        .collect();
    let passed = checks.iter().all(|(_, ok)| *ok);
    if !verbose && passed {
        return text(StatusCode::OK, "ok".into());
    }
    let mut body = String::new();
    for (name, ok) in &checks {
        if *ok {
            body.push_str(&format!("[+]{name} ok\n"));
        } else {
            body.push_str(&format!("[-]{name} failed: reason withheld\n"));
        }
    }
    for name in &excluded {
        body.push_str(&format!("[+]{name} excluded: ok\n"));
    }
    if passed {
        body.push_str(&format!("{endpoint} check passed\n"));
        text(StatusCode::OK, body)
    } else {
        body.push_str(&format!("{endpoint} check failed\n"));
        text(StatusCode::INTERNAL_SERVER_ERROR, body)
    }
}

fn version() -> serde_json::Value {
    json!({
        "major": "1",
        "minor": KUBE_MINOR,
        "gitVersion": GIT_VERSION,
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z",
        "goVersion": "go1.24.0",
        "compiler": "gc",
        "platform": format!("{}/{}", std::env::consts::OS, match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            other => other,
        }),
    })
}

pub(super) fn serve(
    state: &HttpState,
    target: Target,
    req: &Request,
) -> Result<Response, ApiError> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return Err(ApiError::MethodNotAllowed);
    }
    let registry = state.objects.registry();
    let ok = |v: serde_json::Value| Ok(response::json(StatusCode::OK, &v, &[]));
    match target {
        Target::Version => ok(version()),
        Target::CoreVersions => ok(docs::api_versions(&state.config.server_address)),
        Target::GroupList => ok(docs::api_group_list(registry)),
        Target::Group(g) => docs::api_group(registry, &g).map_or(Err(ApiError::NoRoute), ok),
        Target::ResourceList(g, v) => {
            docs::api_resource_list(registry, &g, &v).map_or(Err(ApiError::NoRoute), ok)
        }
        Target::OpenApiV2 => {
            let doc = crate::schema::openapi_v2(&registry.crd_schemas());
            let protobuf = req
                .headers()
                .get(http::header::ACCEPT)
                .and_then(|a| a.to_str().ok())
                .is_some_and(|a| a.contains(crate::schema::OPENAPI_V2_PROTOBUF));
            if !protobuf {
                return ok(doc);
            }
            // As kube-openapi: the media type asked for is not a valid Go
            // MIME type (its `@`), so the answer names the bytes generically.
            Ok(Response::builder()
                .status(StatusCode::OK)
                .header(http::header::CONTENT_TYPE, "application/octet-stream")
                .body(axum::body::Body::from(crate::schema::encode_v2(&doc)))
                .unwrap_or_default())
        }
        Target::OpenApiV3(None) => ok(state.openapi.get(registry).root()),
        Target::OpenApiV3(Some(gv)) => {
            let docs = state.openapi.get(registry);
            let doc = docs.document(&gv).ok_or(ApiError::NoRoute)?;
            Ok(Response::builder()
                .status(StatusCode::OK)
                .header(http::header::CONTENT_TYPE, "application/json")
                .header(http::header::ETAG, format!("\"{}\"", doc.hash))
                .header(http::header::CACHE_CONTROL, "public, immutable")
                .body(axum::body::Body::from(doc.json.clone()))
                .unwrap_or_default())
        }
        Target::Unknown | Target::Resource(_) | Target::Health | Target::Metrics => {
            Err(ApiError::NoRoute)
        }
    }
}
