//! The HTTP API: maps requests onto discovery documents and the object layer's
//! verbs, and answers errors as kube `Status` objects. No semantics live here.

mod discovery;
pub mod guard;
pub mod metrics;
pub mod negotiation;
mod nothing_runs;
pub mod path;
mod representation;
pub mod request;
mod resource;
pub mod response;
mod reviews;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::response::Response;

use crate::objects::Objects;

/// Settings of the HTTP layer.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// Largest accepted request body, in bytes (kube: 3 MiB).
    pub body_limit: usize,
    /// How often watches with `allowWatchBookmarks` get a BOOKMARK.
    pub bookmark_every: Duration,
    /// `host:port` clients reach the server at (for `/api`).
    pub server_address: String,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            body_limit: 3 * 1024 * 1024,
            bookmark_every: Duration::from_secs(60),
            server_address: String::new(),
        }
    }
}

/// What every handler shares.
#[derive(Debug, Clone)]
pub struct HttpState {
    /// The object layer.
    pub objects: Objects,
    /// Settings.
    pub config: Arc<HttpConfig>,
    /// Turns true when the server stops; watches end then.
    pub shutdown: tokio::sync::watch::Receiver<bool>,
    /// OpenAPI documents, rebuilt when the served resources change.
    pub openapi: OpenApiCache,
    /// Authentication and authorization.
    pub guard: Arc<guard::Guard>,
    /// Request counters for `/metrics`.
    pub metrics: Arc<metrics::Metrics>,
}

/// The OpenAPI v3 documents of one registry generation.
#[derive(Debug, Clone, Default)]
pub struct OpenApiCache {
    built: Arc<std::sync::Mutex<Option<Built>>>,
}

/// Documents and the registry generation they were built for.
type Built = (u64, Arc<crate::schema::OpenApiV3>);

impl OpenApiCache {
    /// The documents for the registry as it is now.
    pub fn get(&self, registry: &crate::registry::Registry) -> Arc<crate::schema::OpenApiV3> {
        let generation = registry.generation();
        let mut built = self.built.lock().unwrap_or_else(|e| e.into_inner());
        match &*built {
            Some((g, docs)) if *g == generation => docs.clone(),
            _ => {
                let docs = Arc::new(crate::schema::OpenApiV3::build(&registry.crd_schemas()));
                *built = Some((generation, docs.clone()));
                docs
            }
        }
    }
}

/// The router serving the whole API.
pub fn router(state: HttpState) -> Router {
    Router::new().fallback(handle).with_state(state)
}

async fn handle(State(state): State<HttpState>, req: Request) -> Response {
    let started = std::time::Instant::now();
    let labels = {
        let target = path::parse(req.uri().path());
        let watch = request::Query::parse(req.uri()).is_ok_and(|q| q.is_watch());
        let apply = req
            .headers()
            .get(http::header::CONTENT_TYPE)
            .is_some_and(|ct| ct.as_bytes().starts_with(b"application/apply-patch"));
        metrics::RequestLabels::of(req.method(), &target, watch, apply)
    };
    let encoding = negotiation::Accept::of(req.headers()).encoding();
    let response = serve(&state, req)
        .await
        .unwrap_or_else(|e| response::error(encoding, &e));
    state
        .metrics
        .record(labels, response.status().as_u16(), started.elapsed());
    response
}

async fn serve(state: &HttpState, req: Request) -> Result<Response, crate::objects::ApiError> {
    let target = path::parse(req.uri().path());
    let query = request::Query::parse(req.uri())?;
    let user = guard::authenticate(
        &state.guard,
        &state.objects,
        req.headers(),
        req.extensions().get::<crate::server::ClientIdentity>(),
    )
    .await?;
    let attrs = guard::attributes(req.method(), req.uri().path(), &target, &query);
    guard::authorize(&state.guard, &user, &attrs)?;
    match target {
        path::Target::Resource(rp) => resource::serve(state, rp, req, &user).await,
        path::Target::Metrics => {
            let text = state.metrics.render(&state.objects).await;
            Ok(axum::response::Response::builder()
                .status(http::StatusCode::OK)
                .header(
                    http::header::CONTENT_TYPE,
                    "text/plain; version=0.0.4; charset=utf-8",
                )
                .body(axum::body::Body::from(text))
                .unwrap_or_default())
        }
        path::Target::Health => {
            let query = req.uri().query().unwrap_or("").to_owned();
            Ok(discovery::health(state, req.uri().path(), &query).await)
        }
        other => discovery::serve(state, other, &req),
    }
}
