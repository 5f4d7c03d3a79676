//! Requests answered by the security layer rather than stored: access reviews
//! (`authorization.k8s.io/v1`) and TokenRequest (`serviceaccounts/<name>/token`).

use serde_json::{Value, json};

use super::HttpState;
use crate::auth::review;
use crate::auth::sa_token::{ObjectCheck, ObjectKind, ObjectLookup, ServiceAccountRef};
use crate::auth::user::{ServiceAccountName, UserInfo};
use crate::objects::{ApiError, Cause, Subject, meta};
use crate::registry::ResourceInfo;

fn decode<T: serde::de::DeserializeOwned>(v: &Value) -> Result<T, ApiError> {
    serde_json::from_value(v.clone()).map_err(|e| ApiError::BadRequest(e.to_string()))
}

fn invalid(r: &ResourceInfo, e: review::ReviewError) -> ApiError {
    ApiError::Invalid {
        subject: Subject::of(r, ""),
        causes: vec![Cause {
            reason: "FieldValueInvalid".into(),
            message: format!("Invalid value: {}", e.message),
            field: e.field.into(),
        }],
    }
}

/// A review answered from the request alone: an access review, or an
/// identity review (`authentication.k8s.io/v1` SelfSubjectReview, what
/// `kubectl auth whoami` sends, and TokenReview).
pub(super) async fn review(
    state: &HttpState,
    r: &ResourceInfo,
    user: &UserInfo,
    body: &Value,
) -> Result<Value, ApiError> {
    let status = match r.plural.as_str() {
        "selfsubjectreviews" => serde_json::to_value(review::self_subject_review(user)),
        "tokenreviews" => {
            let spec: k8s_openapi::api::authentication::v1::TokenReviewSpec =
                decode(&body["spec"])?;
            let authenticator = &state.guard.security.authenticator;
            let now = jiff::Timestamp::now();
            // A service account token's validity depends on objects: read
            // them first, so the review itself runs synchronously.
            let checks = spec
                .token
                .as_deref()
                .and_then(|t| authenticator.service_accounts().verify_claims(t, now).ok())
                .map(|pending| pending.checks().to_vec())
                .unwrap_or_default();
            let snapshot = super::guard::snapshot_for(&state.objects, &checks).await;
            serde_json::to_value(review::token_review(
                authenticator,
                &snapshot as &dyn ObjectLookup,
                &spec,
                now,
            ))
        }
        _ => return access_review(state, r, user, body),
    }
    .map_err(|e| ApiError::Internal(e.to_string()))?;
    let mut out = json!({
        "kind": r.kind,
        "apiVersion": r.api_version(),
        "metadata": {"creationTimestamp": null},
        "status": status,
    });
    if let Some(spec) = body.get("spec") {
        out["spec"] = spec.clone();
    }
    Ok(out)
}

/// An access review: the request with its status filled in.
fn access_review(
    state: &HttpState,
    r: &ResourceInfo,
    user: &UserInfo,
    body: &Value,
) -> Result<Value, ApiError> {
    let rbac = state.guard.rbac();
    let spec = &body["spec"];
    let status = match r.plural.as_str() {
        "selfsubjectaccessreviews" => serde_json::to_value(
            review::self_subject_access_review(&rbac, user, &decode(spec)?)
                .map_err(|e| invalid(r, e))?,
        ),
        "subjectaccessreviews" => serde_json::to_value(
            review::subject_access_review(&rbac, &decode(spec)?).map_err(|e| invalid(r, e))?,
        ),
        "selfsubjectrulesreviews" => serde_json::to_value(review::self_subject_rules_review(
            &rbac,
            user,
            &decode(spec)?,
        )),
        _ => return Err(ApiError::MethodNotAllowed),
    }
    .map_err(|e| ApiError::Internal(e.to_string()))?;
    let out = json!({
        "kind": r.kind,
        "apiVersion": r.api_version(),
        "metadata": {"creationTimestamp": null},
        "spec": body["spec"],
        "status": status,
    });
    Ok(out)
}

/// A new `kubernetes.io/service-account-token` Secret with its token, `ca.crt`
/// and `namespace` filled in, as kube-controller-manager's token controller
/// fills it (here before it is stored, so the first read already has the
/// token). A Secret of any other type, or naming a ServiceAccount that does
/// not exist, is returned as given (kube's controller would delete the latter).
pub(super) async fn fill_token_secret(
    state: &HttpState,
    ns: &str,
    mut secret: Value,
) -> Result<Value, ApiError> {
    use crate::auth::sa_token::{SA_NAME_ANNOTATION, TOKEN_SECRET_TYPE, TokenSecretAction};
    if secret["type"].as_str() != Some(TOKEN_SECRET_TYPE) {
        return Ok(secret);
    }
    let Some(account) = secret["metadata"]["annotations"][SA_NAME_ANNOTATION]
        .as_str()
        .map(str::to_owned)
    else {
        return Ok(secret);
    };
    if let Some(m) = meta::meta_mut(&mut secret) {
        m.insert("namespace".into(), Value::String(ns.to_owned()));
    }
    let check = ObjectCheck::Uid {
        kind: ObjectKind::ServiceAccount,
        namespace: ns.to_owned(),
        name: account,
        uid: String::new(),
    };
    let snapshot = super::guard::snapshot_for(&state.objects, &[check]).await;
    let security = &state.guard.security;
    let action = security
        .authenticator
        .service_accounts()
        .reconcile_token_secret(
            &secret,
            &snapshot as &dyn ObjectLookup,
            security.tls.ca_pem(),
        )
        .map_err(|e| ApiError::Internal(format!("minting the Secret's token: {e}")))?;
    Ok(match action {
        TokenSecretAction::Update(filled) => filled,
        TokenSecretAction::Unchanged | TokenSecretAction::Delete => secret,
    })
}

/// TokenRequest for the ServiceAccount `ns/name`.
pub(super) async fn token_request(
    state: &HttpState,
    sa_res: &ResourceInfo,
    ns: &str,
    name: &str,
    body: &Value,
) -> Result<Value, ApiError> {
    let objects = &state.objects;
    let sa = objects.get(sa_res, Some(ns), name).await?;
    let uid = meta::meta_str(&sa, "uid").unwrap_or_default().to_owned();
    let spec: k8s_openapi::api::authentication::v1::TokenRequestSpec = decode(&body["spec"])?;
    let mut checks = Vec::new();
    if let Some(b) = &spec.bound_object_ref
        && let (Some(kind), Some(bound)) = (b.kind.as_deref(), b.name.as_deref())
    {
        let kind = match kind {
            "Pod" => Some(ObjectKind::Pod),
            "Secret" => Some(ObjectKind::Secret),
            "Node" => Some(ObjectKind::Node),
            _ => None,
        };
        if let Some(kind) = kind {
            let namespace = if kind == ObjectKind::Node { "" } else { ns };
            checks.push(ObjectCheck::Uid {
                kind,
                namespace: namespace.to_owned(),
                name: bound.to_owned(),
                uid: String::new(),
            });
        }
    }
    let snapshot = super::guard::snapshot_for(objects, &checks).await;
    let account = ServiceAccountRef {
        account: ServiceAccountName::new(ns, name),
        uid,
    };
    let minted = state
        .guard
        .security
        .authenticator
        .service_accounts()
        .mint_token_request(
            &account,
            &spec,
            &snapshot as &dyn ObjectLookup,
            jiff::Timestamp::now(),
        )
        .map_err(|e| ApiError::Invalid {
            subject: Subject {
                group: "authentication.k8s.io".into(),
                plural: "tokenrequests".into(),
                kind: "TokenRequest".into(),
                name: name.to_owned(),
            },
            causes: vec![Cause {
                reason: "FieldValueInvalid".into(),
                message: e.to_string(),
                field: String::new(),
            }],
        })?;
    let out = json!({
        "kind": "TokenRequest",
        "apiVersion": "authentication.k8s.io/v1",
        "metadata": {"name": name, "namespace": ns, "creationTimestamp": null},
        "spec": minted.spec,
        "status": minted.status,
    });
    Ok(out)
}
