//! The security layer: TLS material, kubeconfigs, authentication, RBAC authorization,
//! impersonation and access reviews, as synchronous logic the HTTP layer calls.
//!
//! How a server uses it:
//! - At start, [`Security::load_or_create`] (or [`Security::in_memory`] in tests) loads or
//!   generates the CA, serving certificate, service account signing key and admin token
//!   under `<data-dir>/pki`. Serve TLS with [`certs::TlsAssets::server_config`] (or
//!   [`certs::TlsAssets::server_config_with_client_auth`] to accept client certificates) and
//!   write the admin kubeconfig with [`Security::kubeconfig_entry`] and [`kubeconfig::write`]
//!   (or [`kubeconfig::merge_into`]).
//! - On first start, store [`rbac::bootstrap::objects_json`]; keep an [`rbac::RbacIndex`] in
//!   step with every RBAC object written or deleted ([`rbac::RbacIndex::apply_json`],
//!   [`rbac::RbacIndex::delete_json`]) and store what [`rbac::RbacIndex::aggregation_updates`]
//!   returns, as the aggregation controller would.
//! - Per request: [`Security::authenticate_request`] (401 on error, 400/403 for bad or
//!   forbidden impersonation), then [`rbac::RbacIndex::authorize`] with attributes built with
//!   [`rbac::resource_verb`]; a denial is a 403 whose Status comes from [`rbac::forbidden`].
//!   Writes of RBAC objects also pass [`rbac::RbacIndex::check_write_json`] (no privilege
//!   escalation).
//! - Subresources and review APIs: `serviceaccounts/<name>/token` is
//!   [`sa_token::ServiceAccountTokens::mint_token_request`]; the review kinds are in
//!   [`review`]; Secrets of type `kubernetes.io/service-account-token` go through
//!   [`sa_token::ServiceAccountTokens::reconcile_token_secret`].
//! - Lookups of live objects (service accounts, pods, secrets) go through the
//!   [`sa_token::ObjectLookup`] trait; async callers can verify in two steps with
//!   [`authn::Authenticator::authenticate_deferred`] and an [`sa_token::ObjectSnapshot`].

pub mod authn;
pub mod certs;
pub mod client_cert;
mod files;
pub mod impersonation;
pub mod kubeconfig;
#[cfg(test)]
mod mutation_tests;
pub mod rbac;
pub mod review;
pub mod sa_token;
pub mod user;

use std::net::SocketAddr;
use std::path::Path;

use http::HeaderMap;

use authn::{Authenticator, AuthnError, AuthnSetupError, BearerToken};
use certs::{CertError, TlsAssets};
use impersonation::ImpersonationError;
use kubeconfig::KubeconfigEntry;
use rbac::RbacIndex;
use sa_token::{ObjectLookup, ServiceAccountTokens, SigningKeyError};
use user::UserInfo;

/// Directory under the data dir holding the CA, serving certificate and signing key.
pub const PKI_DIR: &str = "pki";

/// Failures while setting up the security layer at start.
#[derive(Debug, thiserror::Error)]
pub enum SecuritySetupError {
    /// Certificates.
    #[error(transparent)]
    Certificates(#[from] CertError),
    /// The service account signing key.
    #[error(transparent)]
    SigningKey(#[from] SigningKeyError),
    /// The admin token.
    #[error(transparent)]
    AdminToken(#[from] AuthnSetupError),
}

/// Why a request could not be given an identity.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RequestAuthError {
    /// Bad or unknown credentials: 401 Unauthorized.
    #[error(transparent)]
    Unauthorized(#[from] AuthnError),
    /// The `Authorization` header is not text: 401 Unauthorized.
    #[error("the Authorization header is not valid text")]
    UnreadableHeader,
    /// Impersonation headers were malformed (400) or not allowed (403).
    #[error(transparent)]
    Impersonation(#[from] ImpersonationError),
}

/// Everything one API server needs to authenticate clients and be trusted by them.
#[derive(Debug)]
pub struct Security {
    /// The CA and serving certificate.
    pub tls: TlsAssets,
    /// The admin's bearer token (for the kubeconfig).
    pub admin_token: BearerToken,
    /// Token authentication, including service account tokens.
    pub authenticator: Authenticator,
}

impl Security {
    /// Loads the CA, serving certificate, service account key and admin token from
    /// `data_dir`, generating what is missing (first start).
    pub fn load_or_create(
        data_dir: &Path,
        extra_sans: &[String],
    ) -> Result<Self, SecuritySetupError> {
        let pki = data_dir.join(PKI_DIR);
        let tls = TlsAssets::load_or_create(&pki, extra_sans)?;
        let service_accounts = ServiceAccountTokens::load_or_create(&pki)?;
        let admin_token = authn::load_or_create_admin_token(&pki)?;
        let authenticator = Authenticator::new(&admin_token, service_accounts);
        Ok(Self {
            tls,
            admin_token,
            authenticator,
        })
    }

    /// Fresh material held only in memory (tests).
    pub fn in_memory(extra_sans: &[String]) -> Result<Self, SecuritySetupError> {
        let tls = TlsAssets::in_memory(extra_sans)?;
        let admin_token = BearerToken::generate()?;
        let authenticator = Authenticator::new(&admin_token, ServiceAccountTokens::in_memory()?);
        Ok(Self {
            tls,
            admin_token,
            authenticator,
        })
    }

    /// The kubeconfig entry of the admin for a server listening on `addr`.
    pub fn kubeconfig_entry(&self, context: &str, addr: SocketAddr) -> KubeconfigEntry {
        KubeconfigEntry::new(
            context,
            kubeconfig::server_url(addr),
            self.tls.ca_pem(),
            self.admin_token.expose(),
        )
    }

    /// The identity a request runs as: from its `Authorization` header (anonymous when
    /// absent), then through its `Impersonate-*` headers if any, which `rbac` must allow.
    ///
    /// Async callers that cannot look objects up synchronously use
    /// [`authorization_header`], [`Authenticator::authenticate_deferred`] and
    /// [`apply_impersonation`] instead.
    pub fn authenticate_request(
        &self,
        headers: &HeaderMap,
        rbac: &RbacIndex,
        lookup: &dyn ObjectLookup,
        now: jiff::Timestamp,
    ) -> Result<UserInfo, RequestAuthError> {
        let user = self
            .authenticator
            .authenticate(authorization_header(headers)?, lookup, now)?;
        apply_impersonation(user, headers, rbac)
    }
}

impl Security {
    /// [`Self::authenticate_request`] for a connection served with
    /// [`TlsAssets::server_config_with_client_auth`]: a verified client certificate
    /// (`peer_certificates`, leaf first) authenticates before any bearer token, as
    /// kube-apiserver's x509 authenticator runs before its token authenticators.
    pub fn authenticate_request_with_peer(
        &self,
        headers: &HeaderMap,
        peer_certificates: Option<&[rustls::pki_types::CertificateDer<'_>]>,
        rbac: &RbacIndex,
        lookup: &dyn ObjectLookup,
        now: jiff::Timestamp,
    ) -> Result<UserInfo, RequestAuthError> {
        match peer_certificates.and_then(client_cert::user_from_certificate) {
            Some(user) => apply_impersonation(user, headers, rbac),
            None => self.authenticate_request(headers, rbac, lookup, now),
        }
    }
}

/// The `Authorization` header as text, `None` when absent.
pub fn authorization_header(headers: &HeaderMap) -> Result<Option<&str>, RequestAuthError> {
    headers
        .get(http::header::AUTHORIZATION)
        .map(|value| {
            value
                .to_str()
                .map_err(|_| RequestAuthError::UnreadableHeader)
        })
        .transpose()
}

/// Applies a request's `Impersonate-*` headers to the authenticated `user`, if there are any
/// and `rbac` allows them.
pub fn apply_impersonation(
    user: UserInfo,
    headers: &HeaderMap,
    rbac: &RbacIndex,
) -> Result<UserInfo, RequestAuthError> {
    match impersonation::parse_headers(headers)? {
        Some(request) => Ok(impersonation::impersonate(rbac, &user, &request)?),
        None => Ok(user),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::rbac::{Attributes, ResourceAttributes};
    use crate::auth::sa_token::tests::FakeObjects;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.append(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                http::HeaderValue::from_str(v).unwrap(),
            );
        }
        map
    }

    #[test]
    fn second_start_reuses_everything_the_kubeconfig_depends_on() {
        let dir = tempfile::tempdir().unwrap();
        let first = Security::load_or_create(dir.path(), &[]).unwrap();
        let second = Security::load_or_create(dir.path(), &[]).unwrap();
        assert_eq!(first.tls.ca_pem(), second.tls.ca_pem());
        assert_eq!(first.admin_token, second.admin_token);
        let addr: SocketAddr = "127.0.0.1:6443".parse().unwrap();
        assert_eq!(
            first.kubeconfig_entry("local", addr),
            second.kubeconfig_entry("local", addr)
        );
        let objects = FakeObjects::default();
        let header = format!("Bearer {}", first.admin_token.expose());
        let rbac = RbacIndex::with_bootstrap_policy();
        let user = second
            .authenticate_request(
                &headers(&[("Authorization", &header)]),
                &rbac,
                &objects,
                jiff::Timestamp::now(),
            )
            .unwrap();
        assert_eq!(user, UserInfo::admin());
    }

    #[test]
    fn client_certificate_wins_over_bearer_token() {
        let security = Security::in_memory(&[]).unwrap();
        let rbac = RbacIndex::with_bootstrap_policy();
        let cert = security
            .tls
            .issue_client_certificate("ops", Some("operators"))
            .unwrap();
        use rustls::pki_types::pem::PemObject as _;
        let chain = vec![
            rustls::pki_types::CertificateDer::from_pem_slice(cert.cert_pem.as_bytes()).unwrap(),
        ];
        let header = format!("Bearer {}", security.admin_token.expose());
        let h = headers(&[("Authorization", &header)]);
        let now = jiff::Timestamp::now();
        let objects = FakeObjects::default();
        let user = security
            .authenticate_request_with_peer(&h, Some(&chain), &rbac, &objects, now)
            .unwrap();
        assert_eq!(user.username, "ops");
        assert_eq!(user.groups, ["operators", "system:authenticated"]);
        let user = security
            .authenticate_request_with_peer(&h, None, &rbac, &objects, now)
            .unwrap();
        assert_eq!(user, UserInfo::admin());
    }

    #[test]
    fn can_i_as_another_user_through_impersonation() {
        let security = Security::in_memory(&[]).unwrap();
        let rbac = RbacIndex::with_bootstrap_policy();
        let objects = FakeObjects::default();
        let header = format!("Bearer {}", security.admin_token.expose());
        let user = security
            .authenticate_request(
                &headers(&[("Authorization", &header), ("Impersonate-User", "jane")]),
                &rbac,
                &objects,
                jiff::Timestamp::now(),
            )
            .unwrap();
        assert_eq!(user.username, "jane");
        let create: Attributes = ResourceAttributes::new("create", "", "pods")
            .in_namespace("default")
            .into();
        assert!(!rbac.authorize(&user, &create).is_allowed());

        // Anonymous users may not impersonate anyone.
        let err = security
            .authenticate_request(
                &headers(&[("Impersonate-User", "jane")]),
                &rbac,
                &objects,
                jiff::Timestamp::now(),
            )
            .unwrap_err();
        assert!(matches!(
            err,
            RequestAuthError::Impersonation(ImpersonationError::Forbidden(_))
        ));
        let err = security
            .authenticate_request(
                &headers(&[("Authorization", "Bearer wrong")]),
                &rbac,
                &objects,
                jiff::Timestamp::now(),
            )
            .unwrap_err();
        assert_eq!(
            err,
            RequestAuthError::Unauthorized(AuthnError::UnknownToken)
        );
    }
}
