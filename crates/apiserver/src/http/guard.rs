//! Who a request is and whether it may do what it asks: authentication (admin
//! token, service account tokens), impersonation and RBAC, through `auth`.

use std::sync::{Arc, RwLock};

use http::HeaderMap;

use super::path::Target;
use super::request::Query;
use crate::auth::Security;
use crate::auth::authn::Authenticated;
use crate::auth::rbac::{Attributes, RbacIndex, ResourceAttributes, forbidden, resource_verb};
use crate::auth::sa_token::{ObjectCheck, ObjectKind, ObjectLookup, ObjectSnapshot};
use crate::auth::user::UserInfo;
use crate::objects::error::OtherStatus;
use crate::objects::{ApiError, Objects, Subject};

/// The security state a server shares with its handlers.
#[derive(Debug)]
pub struct Guard {
    /// Certificates, admin token, token authenticator.
    pub security: Security,
    /// RBAC, kept in step with the stored RBAC objects.
    pub rbac: RwLock<RbacIndex>,
}

impl Guard {
    /// A guard over `security` with the bootstrap RBAC policy until the stored
    /// objects are loaded.
    pub fn new(security: Security) -> Arc<Self> {
        Arc::new(Guard {
            security,
            rbac: RwLock::new(RbacIndex::with_bootstrap_policy()),
        })
    }

    /// Reads the RBAC index.
    pub fn rbac(&self) -> std::sync::RwLockReadGuard<'_, RbacIndex> {
        self.rbac.read().unwrap_or_else(|e| e.into_inner())
    }
}

/// Fetches the objects a service account token names, so that its checks can
/// run synchronously.
pub async fn snapshot_for(objects: &Objects, checks: &[ObjectCheck]) -> ObjectSnapshot {
    let mut snap = ObjectSnapshot::default();
    for check in checks {
        match check {
            ObjectCheck::Uid {
                kind,
                namespace,
                name,
                ..
            } => {
                let (group, plural) = match kind {
                    ObjectKind::ServiceAccount => ("", "serviceaccounts"),
                    ObjectKind::Secret => ("", "secrets"),
                    ObjectKind::Pod => ("", "pods"),
                    ObjectKind::Node => ("", "nodes"),
                };
                let Some(r) = objects.registry().resolve(group, "v1", plural) else {
                    continue;
                };
                let ns = (!namespace.is_empty()).then_some(namespace.as_str());
                if let Ok(obj) = objects.get(&r, ns, name).await
                    && !crate::objects::meta::is_terminating(&obj)
                    && let Some(uid) = crate::objects::meta::meta_str(&obj, "uid")
                {
                    snap.insert_uid(*kind, namespace, name, uid);
                }
            }
            ObjectCheck::SecretHoldsToken { namespace, name } => {
                let Some(r) = objects.registry().resolve("", "v1", "secrets") else {
                    continue;
                };
                if let Ok(obj) = objects.get(&r, Some(namespace), name).await
                    && let Some(token) = obj["data"]["token"].as_str()
                {
                    use base64::Engine;
                    if let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(token) {
                        snap.insert_secret_token(namespace, name, bytes);
                    }
                }
            }
        }
    }
    snap
}

/// The identity of a request, after impersonation: its connection's client
/// certificate's (as kube-apiserver, x509 before tokens), else its bearer
/// token's.
pub async fn authenticate(
    guard: &Guard,
    objects: &Objects,
    headers: &HeaderMap,
    certificate: Option<&crate::server::ClientIdentity>,
) -> Result<UserInfo, ApiError> {
    let header = crate::auth::authorization_header(headers).map_err(|_| ApiError::Unauthorized)?;
    let now = jiff::Timestamp::now();
    let user = match certificate {
        Some(identity) => identity.0.clone(),
        None => token_user(guard, objects, header, now).await?,
    };
    crate::auth::apply_impersonation(user, headers, &guard.rbac()).map_err(|e| match e {
        crate::auth::RequestAuthError::Impersonation(i) => impersonation_error(i),
        _ => ApiError::Unauthorized,
    })
}

async fn token_user(
    guard: &Guard,
    objects: &Objects,
    header: Option<&str>,
    now: jiff::Timestamp,
) -> Result<UserInfo, ApiError> {
    let user = match guard
        .security
        .authenticator
        .authenticate_deferred(header, now)
        .map_err(|_| ApiError::Unauthorized)?
    {
        Authenticated::User(u) => u,
        Authenticated::Pending(p) => {
            let snap = snapshot_for(objects, p.checks()).await;
            Authenticated::Pending(p)
                .complete(&snap as &dyn ObjectLookup)
                .map_err(|_| ApiError::Unauthorized)?
        }
    };
    Ok(user)
}

fn impersonation_error(e: crate::auth::impersonation::ImpersonationError) -> ApiError {
    use crate::auth::impersonation::ImpersonationError;
    match e {
        ImpersonationError::BadRequest(m) => ApiError::BadRequest(m),
        ImpersonationError::Forbidden(f) => forbidden_status(f),
    }
}

fn forbidden_status(f: crate::auth::rbac::Forbidden) -> ApiError {
    ApiError::Other(Box::new(OtherStatus {
        code: 403,
        reason: "Forbidden",
        message: f.message,
        subject: Subject {
            group: f.group,
            plural: f.kind,
            kind: String::new(),
            name: f.name,
        },
        causes: Vec::new(),
    }))
}

/// What RBAC is asked about a request.
pub fn attributes(method: &http::Method, path: &str, target: &Target, query: &Query) -> Attributes {
    match target {
        Target::Resource(rp) => {
            let watch = rp.legacy_watch || query.is_watch();
            let verb = resource_verb(method, rp.name.is_some(), watch).unwrap_or("unknown");
            let mut a = ResourceAttributes::new(verb, &rp.group, &rp.plural);
            a.api_version = rp.version.clone();
            if let Some(ns) = &rp.namespace {
                a = a.in_namespace(ns);
            } else if rp.plural == "namespaces"
                && let Some(n) = &rp.name
            {
                // kube authorizes a namespace's own requests in that namespace.
                a = a.in_namespace(n);
            }
            if let Some(n) = &rp.name {
                a = a.named(n);
            }
            if let Some(s) = &rp.sub {
                a = a.subresource(s);
            }
            Attributes::Resource(a)
        }
        _ => Attributes::non_resource(&crate::auth::rbac::non_resource_verb(method), path),
    }
}

/// Allows or answers 403 as kube-apiserver words it.
pub fn authorize(guard: &Guard, user: &UserInfo, attrs: &Attributes) -> Result<(), ApiError> {
    let decision = guard.rbac().authorize(user, attrs);
    if decision.is_allowed() {
        return Ok(());
    }
    Err(forbidden_status(forbidden(user, attrs, decision.reason())))
}
