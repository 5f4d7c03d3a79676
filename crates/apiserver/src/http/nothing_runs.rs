//! The subresources that reach a running container or its network
//! (`pods/<name>/log`, `services/<name>/proxy`, `pods/<name>/proxy`): nothing
//! runs in an embedded cluster, so each answers as kube-apiserver does when it
//! cannot reach a workload, with a message that says why.

use super::HttpState;
use crate::objects::error::OtherStatus;
use crate::objects::{ApiError, Subject};
use crate::registry::ResourceInfo;

fn status(code: u16, reason: &'static str, message: String, subject: Subject) -> ApiError {
    ApiError::Other(Box::new(OtherStatus {
        code,
        reason,
        message,
        subject,
        causes: Vec::new(),
    }))
}

/// The error answering `sub` of the core object `ns/name`, or `None` when
/// `sub` is not one of these subresources (or `r` has none of them).
pub(super) async fn answer(
    state: &HttpState,
    r: &ResourceInfo,
    ns: &str,
    name: &str,
    sub: &str,
) -> Option<ApiError> {
    match (r.plural.as_str(), sub) {
        ("pods", "log") => Some(pod_log(state, r, ns, name).await),
        ("pods" | "services", "proxy") => Some(proxy(state, r, ns, name).await),
        _ => None,
    }
}

async fn pod_log(state: &HttpState, r: &ResourceInfo, ns: &str, name: &str) -> ApiError {
    let pod = match state.objects.get(r, Some(ns), name).await {
        Ok(p) => p,
        Err(e) => return e,
    };
    let subject = Subject::of(r, name);
    match pod["spec"]["nodeName"].as_str().filter(|n| !n.is_empty()) {
        None => status(
            400,
            "BadRequest",
            format!("pod {name} does not have a host assigned"),
            subject,
        ),
        Some(node) => status(
            400,
            "BadRequest",
            format!(
                "no logs for pod {name}: this is a fedmesh embedded API server, where nothing really runs (node {node} is simulated, and so are the pod's containers)"
            ),
            subject,
        ),
    }
}

async fn proxy(state: &HttpState, r: &ResourceInfo, ns: &str, name: &str) -> ApiError {
    // `services/<name>:<port>/proxy` names a port after the colon.
    let object = name.split(':').next().unwrap_or(name);
    if let Err(e) = state.objects.get(r, Some(ns), object).await {
        return e;
    }
    let subject = Subject::of(r, object);
    if r.plural == "services" && !has_endpoints(state, ns, object).await {
        return status(
            503,
            "ServiceUnavailable",
            format!("no endpoints available for service \"{object}\""),
            subject,
        );
    }
    status(
        503,
        "ServiceUnavailable",
        format!(
            "error trying to reach {} \"{object}\": this is a fedmesh embedded API server, where nothing really runs to answer",
            r.kind.to_lowercase()
        ),
        subject,
    )
}

async fn has_endpoints(state: &HttpState, ns: &str, service: &str) -> bool {
    let Some(endpoints) = state.objects.registry().resolve("", "v1", "endpoints") else {
        return false;
    };
    let Ok(ep) = state.objects.get(&endpoints, Some(ns), service).await else {
        return false;
    };
    ep["subsets"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|s| s["addresses"].as_array().is_some_and(|a| !a.is_empty()))
}
