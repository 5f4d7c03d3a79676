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
        Target::Health => Ok(Response::builder()
            .status(StatusCode::OK)
            .header(http::header::CONTENT_TYPE, "text/plain; charset=utf-8")
            .body(axum::body::Body::from("ok"))
            .unwrap_or_default()),
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
        Target::Unknown | Target::Resource(_) => Err(ApiError::NoRoute),
    }
}
