//! Bearer token authentication: the admin token, static tokens and service account tokens.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, RwLock};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::{SecureRandom as _, SystemRandom};
use sha2::{Digest, Sha256};

use super::files::{self, PRIVATE_MODE};
use super::sa_token::{ObjectLookup, PendingToken, ServiceAccountTokens, TokenVerifyError};
use super::user::UserInfo;

/// File name of the admin token inside the auth directory.
pub const ADMIN_TOKEN_FILE: &str = "admin.token";

/// A bearer token; its `Debug` form never shows the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct BearerToken(String);

impl BearerToken {
    /// Wraps an existing token.
    pub fn new(token: impl Into<String>) -> Self {
        Self(token.into())
    }

    /// 32 random bytes, base64url: what the admin token and generated static tokens use.
    pub fn generate() -> Result<Self, AuthnSetupError> {
        let mut bytes = [0u8; 32];
        SystemRandom::new()
            .fill(&mut bytes)
            .map_err(|_| AuthnSetupError::Random)?;
        Ok(Self(URL_SAFE_NO_PAD.encode(bytes)))
    }

    /// The token text, for kubeconfigs and `Authorization` headers.
    pub fn expose(&self) -> &str {
        &self.0
    }

    fn digest(token: &str) -> [u8; 32] {
        Sha256::digest(token.as_bytes()).into()
    }
}

impl fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BearerToken(<redacted>)")
    }
}

/// Failures while setting up authentication state.
#[derive(Debug, thiserror::Error)]
pub enum AuthnSetupError {
    /// The system random source failed.
    #[error("the system random number generator failed")]
    Random,
    /// The token file could not be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The token file could not be written.
    #[error("writing {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The token file is empty or not text.
    #[error("{0} does not hold a token")]
    EmptyToken(PathBuf),
}

/// Loads the admin token from `dir`, generating it (mode 0600) on first start.
pub fn load_or_create_admin_token(dir: &Path) -> Result<BearerToken, AuthnSetupError> {
    let path = dir.join(ADMIN_TOKEN_FILE);
    let existing = files::read_optional(&path).map_err(|source| AuthnSetupError::Read {
        path: path.clone(),
        source,
    })?;
    if let Some(bytes) = existing {
        let text =
            String::from_utf8(bytes).map_err(|_| AuthnSetupError::EmptyToken(path.clone()))?;
        let token = text.trim();
        if token.is_empty() {
            return Err(AuthnSetupError::EmptyToken(path));
        }
        return Ok(BearerToken::new(token));
    }
    let token = BearerToken::generate()?;
    files::write_atomic(
        &path,
        format!("{}\n", token.expose()).as_bytes(),
        PRIVATE_MODE,
    )
    .map_err(|source| AuthnSetupError::Write {
        path: path.clone(),
        source,
    })?;
    Ok(token)
}

/// Why a request's credentials were rejected; the client sees 401 Unauthorized either way.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AuthnError {
    /// Not a known static token, and not a JWT.
    #[error("unknown bearer token")]
    UnknownToken,
    /// A JWT that did not verify.
    #[error("invalid service account token: {0}")]
    ServiceAccount(#[from] TokenVerifyError),
}

/// Maps bearer tokens to users. Shared by all requests; static tokens may be added while
/// serving.
pub struct Authenticator {
    static_tokens: RwLock<HashMap<[u8; 32], UserInfo>>,
    service_accounts: ServiceAccountTokens,
    /// Service account tokens whose signature and claims verified, by token digest: the
    /// signature check costs far more than the rest of a request's authentication, and
    /// clients send the same token many times. Object checks still run on every use.
    verified_tokens: Mutex<HashMap<[u8; 32], PendingToken>>,
}

/// Bound on [`Authenticator`]'s verified token cache; it is emptied when full.
const VERIFIED_TOKEN_CACHE_SIZE: usize = 4096;

impl fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count = self.static_tokens.read().map(|t| t.len()).unwrap_or(0);
        f.debug_struct("Authenticator")
            .field("static_tokens", &count)
            .field("service_accounts", &self.service_accounts)
            .finish()
    }
}

impl Authenticator {
    /// An authenticator that accepts `admin_token` as [`UserInfo::admin`] and service account
    /// tokens signed by `service_accounts`.
    pub fn new(admin_token: &BearerToken, service_accounts: ServiceAccountTokens) -> Self {
        let this = Self {
            static_tokens: RwLock::new(HashMap::new()),
            service_accounts,
            verified_tokens: Mutex::new(HashMap::new()),
        };
        this.add_static_token(admin_token, UserInfo::admin());
        this
    }

    /// Accepts `token` as `user` from now on (replacing an earlier mapping of the same token).
    /// `system:authenticated` is added to the groups when missing.
    pub fn add_static_token(&self, token: &BearerToken, mut user: UserInfo) {
        if !user.in_group(super::user::ALL_AUTHENTICATED) {
            user.groups.push(super::user::ALL_AUTHENTICATED.to_owned());
        }
        let mut tokens = self
            .static_tokens
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        tokens.insert(BearerToken::digest(token.expose()), user);
    }

    /// Stops accepting `token`; returns whether it was known.
    pub fn remove_static_token(&self, token: &BearerToken) -> bool {
        let mut tokens = self
            .static_tokens
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        tokens
            .remove(&BearerToken::digest(token.expose()))
            .is_some()
    }

    /// The service account token issuer (for TokenRequest, legacy Secrets and JWKS).
    pub fn service_accounts(&self) -> &ServiceAccountTokens {
        &self.service_accounts
    }

    /// Authenticates a request from its `Authorization` header value (`None` when absent).
    ///
    /// As in kube-apiserver, a request without a bearer token (no header, another scheme,
    /// or `Bearer` with nothing after it) is anonymous, while a bearer token that does not
    /// authenticate is an error (401).
    pub fn authenticate(
        &self,
        authorization: Option<&str>,
        lookup: &dyn ObjectLookup,
        now: jiff::Timestamp,
    ) -> Result<UserInfo, AuthnError> {
        self.authenticate_deferred(authorization, now)?
            .complete(lookup)
    }

    /// [`Self::authenticate`] without object lookups: service account tokens come back as
    /// [`Authenticated::Pending`] with the objects still to check, for async callers.
    pub fn authenticate_deferred(
        &self,
        authorization: Option<&str>,
        now: jiff::Timestamp,
    ) -> Result<Authenticated, AuthnError> {
        match bearer_token(authorization) {
            Some(token) => self.authenticate_token_deferred(token, now),
            None => Ok(Authenticated::User(UserInfo::anonymous())),
        }
    }

    /// Authenticates a bare token (the TokenReview path uses this too).
    pub fn authenticate_token(
        &self,
        token: &str,
        lookup: &dyn ObjectLookup,
        now: jiff::Timestamp,
    ) -> Result<UserInfo, AuthnError> {
        self.authenticate_token_deferred(token, now)?
            .complete(lookup)
    }

    /// [`Self::authenticate_token`] without object lookups.
    pub fn authenticate_token_deferred(
        &self,
        token: &str,
        now: jiff::Timestamp,
    ) -> Result<Authenticated, AuthnError> {
        // Lookup by digest: the map is keyed by something an attacker cannot probe byte by
        // byte through timing.
        let digest = BearerToken::digest(token);
        let known = {
            let tokens = self
                .static_tokens
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            tokens.get(&digest).cloned()
        };
        if let Some(user) = known {
            return Ok(Authenticated::User(user));
        }
        if !ServiceAccountTokens::looks_like_jwt(token) {
            return Err(AuthnError::UnknownToken);
        }
        let mut cache = self
            .verified_tokens
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(pending) = cache.get(&digest) {
            if pending.is_current(now) {
                return Ok(Authenticated::Pending(pending.clone()));
            }
            cache.remove(&digest);
        }
        drop(cache);
        let pending = self.service_accounts.verify_claims(token, now)?;
        let mut cache = self
            .verified_tokens
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if cache.len() >= VERIFIED_TOKEN_CACHE_SIZE {
            cache.clear();
        }
        cache.insert(digest, pending.clone());
        Ok(Authenticated::Pending(pending))
    }
}

/// The token of a `Bearer` Authorization header; `None` means the request is anonymous.
fn bearer_token(authorization: Option<&str>) -> Option<&str> {
    let header = authorization?.trim();
    let (scheme, token) = header.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// An identity, or a service account token that still needs its objects checked.
#[derive(Debug)]
pub enum Authenticated {
    /// Fully authenticated.
    User(UserInfo),
    /// A verified service account token; see [`PendingToken::checks`].
    Pending(PendingToken),
}

impl Authenticated {
    /// Finishes authentication by checking pending objects through `lookup`.
    pub fn complete(self, lookup: &dyn ObjectLookup) -> Result<UserInfo, AuthnError> {
        match self {
            Self::User(user) => Ok(user),
            Self::Pending(pending) => Ok(pending.complete(lookup)?),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::sa_token::ObjectKind;
    use crate::auth::sa_token::tests::{FakeObjects, bot};
    use crate::auth::user::{ADMIN_USER, SYSTEM_MASTERS};
    use k8s_openapi::api::authentication::v1::TokenRequestSpec;

    fn authenticator() -> (Authenticator, BearerToken) {
        let admin = BearerToken::generate().unwrap();
        let authn = Authenticator::new(&admin, ServiceAccountTokens::in_memory().unwrap());
        (authn, admin)
    }

    fn now() -> jiff::Timestamp {
        jiff::Timestamp::now()
    }

    #[test]
    fn admin_token_is_cluster_admin_and_absent_header_is_anonymous() {
        let (authn, admin) = authenticator();
        let objects = FakeObjects::default();
        let header = format!("Bearer {}", admin.expose());
        let user = authn.authenticate(Some(&header), &objects, now()).unwrap();
        assert_eq!(user.username, ADMIN_USER);
        assert!(user.in_group(SYSTEM_MASTERS));
        assert!(user.in_group("system:authenticated"));
        let anon = authn.authenticate(None, &objects, now()).unwrap();
        assert_eq!(anon, UserInfo::anonymous());
    }

    #[test]
    fn bad_tokens_are_rejected_and_non_bearer_headers_are_anonymous() {
        let (authn, _) = authenticator();
        let objects = FakeObjects::default();
        for header in ["Basic dXNlcjpwYXNz", "Bearer", "Bearer    ", ""] {
            assert_eq!(
                authn.authenticate(Some(header), &objects, now()),
                Ok(UserInfo::anonymous()),
                "{header:?}"
            );
        }
        assert_eq!(
            authn.authenticate(Some("Bearer nope"), &objects, now()),
            Err(AuthnError::UnknownToken)
        );
        assert!(matches!(
            authn.authenticate(Some("Bearer a.b.c"), &objects, now()),
            Err(AuthnError::ServiceAccount(_))
        ));
    }

    #[test]
    fn static_tokens_can_be_added_and_removed_at_runtime() {
        let (authn, _) = authenticator();
        let objects = FakeObjects::default();
        let token = BearerToken::new("viewer-token");
        authn.add_static_token(
            &token,
            UserInfo {
                username: "viewer".to_owned(),
                groups: vec!["readers".to_owned()],
                ..UserInfo::default()
            },
        );
        let user = authn
            .authenticate(Some("bearer viewer-token"), &objects, now())
            .unwrap();
        assert_eq!(user.username, "viewer");
        assert_eq!(user.groups, ["readers", "system:authenticated"]);
        assert!(authn.remove_static_token(&token));
        assert_eq!(
            authn.authenticate(Some("Bearer viewer-token"), &objects, now()),
            Err(AuthnError::UnknownToken)
        );
        assert!(!format!("{token:?}").contains("viewer-token"));
    }

    #[test]
    fn service_account_tokens_authenticate_as_their_account() {
        let (authn, _) = authenticator();
        let objects =
            FakeObjects::default().with(ObjectKind::ServiceAccount, "apps", "bot", "sa-uid-1");
        let minted = authn
            .service_accounts()
            .mint_token_request(&bot(), &TokenRequestSpec::default(), &objects, now())
            .unwrap();
        let header = format!("Bearer {}", minted.status.token);
        let user = authn.authenticate(Some(&header), &objects, now()).unwrap();
        assert_eq!(user.username, "system:serviceaccount:apps:bot");

        // The deferred path names the objects to fetch before completing.
        let Authenticated::Pending(pending) =
            authn.authenticate_deferred(Some(&header), now()).unwrap()
        else {
            panic!("a service account token needs its account checked");
        };
        assert_eq!(
            pending.checks(),
            [crate::auth::sa_token::ObjectCheck::Uid {
                kind: ObjectKind::ServiceAccount,
                namespace: "apps".to_owned(),
                name: "bot".to_owned(),
                uid: "sa-uid-1".to_owned(),
            }]
        );
        assert!(matches!(
            pending.clone().complete(&FakeObjects::default()),
            Err(TokenVerifyError::ServiceAccountGone { .. })
        ));
        assert_eq!(pending.complete(&objects).unwrap(), user);

        // Served from the verified-token cache, a token still expires and is still revoked
        // with its account.
        let later = now()
            .checked_add(jiff::SignedDuration::from_hours(2))
            .unwrap();
        assert!(matches!(
            authn.authenticate(Some(&header), &objects, later),
            Err(AuthnError::ServiceAccount(TokenVerifyError::Expired))
        ));
        assert!(matches!(
            authn.authenticate(Some(&header), &FakeObjects::default(), now()),
            Err(AuthnError::ServiceAccount(
                TokenVerifyError::ServiceAccountGone { .. }
            ))
        ));
        assert!(authn.authenticate(Some(&header), &objects, now()).is_ok());
        let admin = authn.authenticate_deferred(None, now()).unwrap();
        assert!(matches!(admin, Authenticated::User(u) if u == UserInfo::anonymous()));
    }

    #[test]
    fn admin_token_persists() {
        let dir = tempfile::tempdir().unwrap();
        let first = load_or_create_admin_token(dir.path()).unwrap();
        let second = load_or_create_admin_token(dir.path()).unwrap();
        assert_eq!(first, second);
        assert_eq!(first.expose().len(), 43);
        std::fs::write(dir.path().join(ADMIN_TOKEN_FILE), "  \n").unwrap();
        assert!(matches!(
            load_or_create_admin_token(dir.path()),
            Err(AuthnSetupError::EmptyToken(_))
        ));
    }
}
