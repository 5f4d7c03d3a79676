//! Resource requests: picks the verb from method, path and query, and calls the
//! object layer.

use std::sync::Arc;

use axum::extract::Request;
use axum::response::Response;
use http::{Method, StatusCode, header};
use serde_json::Value;

use super::negotiation::{Accept, Encoding};
use super::path::ResourcePath;
use super::representation::Representation;
use super::request::{Query, decode_object};
use super::{HttpState, response};
use crate::objects::scale::ScaleChange;
use crate::objects::{ApiError, PatchType, Written};
use crate::registry::{ResourceInfo, Subresource};

/// The verb a request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verb {
    Get,
    List,
    Watch,
    Create,
    Update,
    Patch,
    Delete,
    DeleteCollection,
}

impl Verb {
    fn name(self) -> &'static str {
        match self {
            Verb::Get => "get",
            Verb::List => "list",
            Verb::Watch => "watch",
            Verb::Create => "create",
            Verb::Update => "update",
            Verb::Patch => "patch",
            Verb::Delete => "delete",
            Verb::DeleteCollection => "deletecollection",
        }
    }
}

fn verb_of(method: &Method, named: bool, watch: bool) -> Result<Verb, ApiError> {
    Ok(match (method.as_str(), named) {
        ("GET", _) if watch => Verb::Watch,
        ("GET", true) => Verb::Get,
        ("GET", false) => Verb::List,
        ("POST", _) => Verb::Create,
        ("PUT", true) => Verb::Update,
        ("PATCH", true) => Verb::Patch,
        ("DELETE", true) => Verb::Delete,
        ("DELETE", false) => Verb::DeleteCollection,
        _ => return Err(ApiError::MethodNotAllowed),
    })
}

/// Reads a body of at most the configured limit. A larger body is still drained
/// (up to a bound) so that the client reads the 413 Status instead of a reset
/// connection.
async fn read_body(state: &HttpState, req: Request) -> Result<bytes::Bytes, ApiError> {
    use futures::StreamExt;
    let limit = state.config.body_limit;
    let drain_bound = limit.saturating_mul(DRAIN_FACTOR);
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|len| len > drain_bound) {
        return Err(ApiError::TooLarge(limit));
    }
    let mut stream = req.into_body().into_data_stream();
    let mut buf = bytes::BytesMut::new();
    let mut total = 0usize;
    while let Some(chunk) = stream.next().await {
        let chunk =
            chunk.map_err(|e| ApiError::BadRequest(format!("cannot read the body: {e}")))?;
        total += chunk.len();
        if total > drain_bound {
            break;
        }
        if total <= limit {
            buf.extend_from_slice(&chunk);
        }
    }
    if total > limit {
        return Err(ApiError::TooLarge(limit));
    }
    Ok(buf.freeze())
}

/// How far past the limit a body is drained before the connection is dropped.
const DRAIN_FACTOR: usize = 4;

fn written(encoding: Encoding, w: Written) -> Response {
    let code = if w.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    response::object(encoding, code, &w.object, &w.warnings)
}

/// The encoding of this request's answer. Built-in kinds, their metadata and
/// the review and scale kinds have a protobuf form; custom resources have none
/// (a client accepting only protobuf gets 406, as from kube-apiserver), and
/// Tables are written as JSON here.
fn encoding_of(
    accept: Accept,
    r: &ResourceInfo,
    representation: Option<&Representation>,
) -> Result<Encoding, ApiError> {
    match representation {
        Some(Representation::Table(_)) => Ok(Encoding::Json),
        Some(Representation::Metadata) => Ok(accept.encoding()),
        None if r.crd.is_some() => accept.json_only(),
        None => Ok(accept.encoding()),
    }
}

fn resolve(state: &HttpState, rp: &ResourcePath) -> Result<Arc<ResourceInfo>, ApiError> {
    let r = state
        .objects
        .registry()
        .resolve(&rp.group, &rp.version, &rp.plural)
        .ok_or(ApiError::NoRoute)?;
    if rp.namespace.is_some() && !r.namespaced {
        return Err(ApiError::NoRoute);
    }
    Ok(r)
}

pub(super) async fn serve(
    state: &HttpState,
    rp: ResourcePath,
    req: Request,
    user: &crate::auth::user::UserInfo,
) -> Result<Response, ApiError> {
    let r = resolve(state, &rp)?;
    let query = Query::parse(req.uri())?;
    let accept = Accept::of(req.headers());
    if r.group.is_empty()
        && let (Some(ns), Some(name), Some(sub)) = (&rp.namespace, &rp.name, rp.sub.as_deref())
        && let Some(answer) = super::nothing_runs::answer(state, &r, ns, name, sub).await
    {
        return Err(answer);
    }
    let sub = match rp.sub.as_deref() {
        None => None,
        Some(s) => Some(
            Subresource::parse(s)
                .filter(|s| r.has_subresource(*s))
                .ok_or(ApiError::NoRoute)?,
        ),
    };
    let verb = verb_of(
        req.method(),
        rp.name.is_some(),
        rp.legacy_watch || query.is_watch(),
    )?;
    let content_type_of = |req: &Request| {
        req.headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    if r.verbs == crate::registry::VerbSet::CreateOnly && verb == Verb::Create {
        let ct = content_type_of(&req);
        let body = read_body(state, req).await?;
        let obj = decode_object(ct.as_deref(), &body)?;
        let answer = super::reviews::review(state, &r, user, &obj).await?;
        return Ok(response::object(
            accept.encoding(),
            StatusCode::CREATED,
            &answer,
            &[],
        ));
    }
    if sub == Some(Subresource::Token) && req.method() == http::Method::POST {
        let ct = content_type_of(&req);
        let (Some(ns), Some(name)) = (rp.namespace.clone(), rp.name.clone()) else {
            return Err(ApiError::NoRoute);
        };
        let body = read_body(state, req).await?;
        let obj = decode_object(ct.as_deref(), &body)?;
        let answer = super::reviews::token_request(state, &r, &ns, &name, &obj).await?;
        return Ok(response::object(
            accept.encoding(),
            StatusCode::CREATED,
            &answer,
            &[],
        ));
    }
    if sub == Some(Subresource::Binding) && req.method() == http::Method::POST {
        let ct = content_type_of(&req);
        let (Some(ns), Some(name)) = (rp.namespace.clone(), rp.name.clone()) else {
            return Err(ApiError::NoRoute);
        };
        let body = read_body(state, req).await?;
        let binding = decode_object(ct.as_deref(), &body)?;
        let node = binding["target"]["name"].as_str().unwrap_or_default();
        state.objects.bind_pod(&r, &ns, &name, node).await?;
        let status = serde_json::json!({"kind": "Status", "apiVersion": "v1", "metadata": {},
            "status": "Success", "code": 201});
        return Ok(response::object(
            accept.encoding(),
            StatusCode::CREATED,
            &status,
            &[],
        ));
    }
    if sub == Some(Subresource::Log) && req.method() == http::Method::GET {
        let (Some(ns), Some(name)) = (rp.namespace.as_deref(), rp.name.as_deref()) else {
            return Err(ApiError::NoRoute);
        };
        state.objects.get(&r, Some(ns), name).await?;
        return Err(ApiError::BadRequest(format!(
            "pod {name} runs on a simulated node of fedmesh's embedded API server: no container really runs, so there are no logs"
        )));
    }
    if !r.verbs.allows(verb.name()) {
        return Err(ApiError::MethodNotAllowed);
    }
    let ns = rp.namespace.as_deref();
    let name = rp.name.as_deref().unwrap_or("");
    let representation = if matches!(verb, Verb::Get | Verb::List | Verb::Watch) {
        Representation::of_request(req.headers(), &r, &query)?
    } else {
        None
    };
    // Negotiated before anything is done, as kube-apiserver does: a write a
    // client cannot read the answer of is refused.
    let encoding = encoding_of(accept, &r, representation.as_ref())?;
    let objects = &state.objects;
    // kube names a write's field manager after the client program when none is given.
    let agent_manager = req
        .headers()
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .and_then(|ua| ua.split('/').next())
        .filter(|p| !p.is_empty())
        .map(|p| p.chars().take(128).collect::<String>());
    let write_options = |query: &Query, apply: bool| {
        query.write_options().map(|mut o| {
            if o.field_manager.is_none() && !apply {
                o.field_manager = agent_manager.clone();
            }
            o
        })
    };
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    match (verb, sub) {
        (Verb::Get, None | Some(Subresource::Status)) => {
            let obj = objects.get(&r, ns, name).await?;
            let obj = match &representation {
                Some(t) => t.object(&obj),
                None => obj,
            };
            Ok(response::object(encoding, StatusCode::OK, &obj, &[]))
        }
        (Verb::Get, Some(Subresource::Scale)) if r.crd.is_none() => Ok(response::object(
            encoding,
            StatusCode::OK,
            &objects.get_scale(&r, ns, name).await?,
            &[],
        )),
        (Verb::Update, Some(Subresource::Scale)) if r.crd.is_none() => {
            let opts = write_options(&query, false)?;
            let body = read_body(state, req).await?;
            let obj = decode_object(content_type.as_deref(), &body)?;
            let change = ScaleChange::Replace(&obj);
            let scale = objects.write_scale(&r, ns, name, change, &opts).await?;
            Ok(response::object(encoding, StatusCode::OK, &scale, &[]))
        }
        (Verb::Patch, Some(Subresource::Scale)) if r.crd.is_none() => {
            let kind = PatchType::from_content_type(content_type.as_deref().unwrap_or(""), true)
                .map_err(|e| ApiError::UnsupportedMediaType(e.to_string()))?;
            if kind == PatchType::Apply {
                return Err(ApiError::UnsupportedMediaType(
                    "server-side apply of the scale subresource is not supported".into(),
                ));
            }
            let opts = write_options(&query, false)?;
            let body = read_body(state, req).await?;
            let change = ScaleChange::Patch(kind, &body);
            let scale = objects.write_scale(&r, ns, name, change, &opts).await?;
            Ok(response::object(encoding, StatusCode::OK, &scale, &[]))
        }
        (Verb::List, None) => {
            let opts = query.list_options(&r)?;
            match (&representation, encoding) {
                (Some(t), _) => {
                    let list = objects.list(&r, ns, &opts).await?;
                    Ok(response::object(
                        encoding,
                        StatusCode::OK,
                        &t.list(&list),
                        &[],
                    ))
                }
                (None, Encoding::Protobuf) => {
                    let list = objects.list(&r, ns, &opts).await?;
                    Ok(response::object(encoding, StatusCode::OK, &list, &[]))
                }
                (None, Encoding::Json) => {
                    let body = objects.list_encoded(&r, ns, &opts).await?;
                    Ok(response::json_bytes(StatusCode::OK, body))
                }
            }
        }
        (Verb::Watch, None) => {
            let opts = query.watch_options(&r, rp.name.as_deref())?;
            let events = objects
                .watch(r.clone(), ns, opts, state.config.bookmark_every)
                .await?;
            let events = match representation {
                Some(t) => {
                    use futures::StreamExt;
                    events.map(move |e| t.event(e)).boxed()
                }
                None => events,
            };
            Ok(response::watch(encoding, events, state.shutdown.clone()))
        }
        (Verb::Create, None) if rp.name.is_none() => {
            let opts = write_options(&query, false)?;
            let body = read_body(state, req).await?;
            let mut obj = decode_object(content_type.as_deref(), &body)?;
            if let (true, Some(ns)) = (r.group.is_empty() && r.plural == "secrets", ns) {
                obj = super::reviews::fill_token_secret(state, ns, obj).await?;
            }
            Ok(written(encoding, objects.create(&r, ns, obj, &opts).await?))
        }
        (Verb::Update, None | Some(Subresource::Status | Subresource::Finalize)) => {
            let opts = write_options(&query, false)?;
            let body = read_body(state, req).await?;
            let obj = decode_object(content_type.as_deref(), &body)?;
            Ok(written(
                encoding,
                objects.update(&r, ns, name, obj, &opts, sub).await?,
            ))
        }
        (Verb::Patch, None | Some(Subresource::Status)) => {
            let kind = PatchType::from_content_type(
                content_type.as_deref().unwrap_or(""),
                r.crd.is_none(),
            )
            .map_err(|e| ApiError::UnsupportedMediaType(e.to_string()))?;
            let mut opts = write_options(&query, kind == PatchType::Apply)?;
            if kind == PatchType::Apply && opts.field_manager.is_none() {
                return Err(ApiError::BadRequest(
                    "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch".into(),
                ));
            }
            if kind != PatchType::Apply && opts.force {
                return Err(ApiError::BadRequest(
                    "force: Forbidden: may not be specified for non-apply patch".into(),
                ));
            }
            opts.force = opts.force && kind == PatchType::Apply;
            let body = read_body(state, req).await?;
            Ok(written(
                encoding,
                objects.patch(&r, ns, name, kind, &body, &opts, sub).await?,
            ))
        }
        (Verb::Delete, None) => {
            let body = read_body(state, req).await?;
            let body: Option<Value> = if body.iter().all(u8::is_ascii_whitespace) {
                None
            } else {
                Some(decode_object(content_type.as_deref(), &body)?)
            };
            let opts = query.delete_options(body.as_ref())?;
            let obj = objects.delete(&r, ns, name, &opts).await?;
            let code = if crate::objects::meta::is_terminating(&obj) && !opts.dry_run {
                StatusCode::ACCEPTED
            } else {
                StatusCode::OK
            };
            Ok(response::object(encoding, code, &obj, &[]))
        }
        (Verb::DeleteCollection, None) => {
            let list_opts = query.list_options(&r)?;
            let body = read_body(state, req).await?;
            let body: Option<Value> = if body.iter().all(u8::is_ascii_whitespace) {
                None
            } else {
                Some(decode_object(content_type.as_deref(), &body)?)
            };
            let opts = query.delete_options(body.as_ref())?;
            let list = objects.delete_collection(&r, ns, &list_opts, &opts).await?;
            Ok(response::object(encoding, StatusCode::OK, &list, &[]))
        }
        _ => Err(ApiError::MethodNotAllowed),
    }
}
