//! Service account tokens: ES256 JWTs with the claims kube-apiserver puts in bound tokens
//! (TokenRequest) and in legacy `kubernetes.io/service-account-token` Secrets.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use k8s_openapi::api::authentication::v1::{TokenRequestSpec, TokenRequestStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use rcgen::{KeyPair, PKCS_ECDSA_P256_SHA256, PublicKeyData as _};
use ring::rand::SystemRandom;
use ring::signature::{
    ECDSA_P256_SHA256_FIXED, ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _,
    UnparsedPublicKey,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::files::{self, PRIVATE_MODE};
use super::user::{ServiceAccountName, UserInfo};

/// The issuer of bound tokens, as kube-apiserver's default `--service-account-issuer`.
pub const DEFAULT_ISSUER: &str = "https://kubernetes.default.svc.cluster.local";
/// The issuer legacy Secret-based tokens carry.
pub const LEGACY_ISSUER: &str = "kubernetes/serviceaccount";
/// File name of the signing key inside the PKI directory.
pub const SIGNING_KEY_FILE: &str = "sa.key";
/// A TokenRequest without `expirationSeconds` gets one hour.
pub const DEFAULT_EXPIRATION_SECONDS: i64 = 60 * 60;
/// TokenRequest rejects shorter lifetimes.
pub const MIN_EXPIRATION_SECONDS: i64 = 10 * 60;
/// TokenRequest rejects longer lifetimes.
pub const MAX_EXPIRATION_SECONDS: i64 = 1 << 32;
/// Clock skew tolerated on `exp`, `nbf` and `iat`, as kube-apiserver's JWT validation allows.
const LEEWAY_SECONDS: i64 = 60;

/// Extra key naming the pod a token is bound to.
pub const EXTRA_POD_NAME: &str = "authentication.kubernetes.io/pod-name";
/// Extra key with the uid of the pod a token is bound to.
pub const EXTRA_POD_UID: &str = "authentication.kubernetes.io/pod-uid";
/// Extra key naming the node a token is bound to.
pub const EXTRA_NODE_NAME: &str = "authentication.kubernetes.io/node-name";
/// Extra key with the uid of the node a token is bound to.
pub const EXTRA_NODE_UID: &str = "authentication.kubernetes.io/node-uid";
/// Extra key identifying the credential (`JTI=<id>`).
pub const EXTRA_CREDENTIAL_ID: &str = "authentication.kubernetes.io/credential-id";

/// The kinds of objects token verification looks up.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ObjectKind {
    /// A ServiceAccount (namespaced).
    ServiceAccount,
    /// A Secret (namespaced).
    Secret,
    /// A Pod (namespaced).
    Pod,
    /// A Node (cluster-scoped; the namespace passed is empty).
    Node,
}

impl ObjectKind {
    fn from_kind(kind: &str) -> Option<Self> {
        match kind {
            "Pod" => Some(Self::Pod),
            "Secret" => Some(Self::Secret),
            "Node" => Some(Self::Node),
            _ => None,
        }
    }

    fn resource(self) -> &'static str {
        match self {
            Self::ServiceAccount => "serviceaccounts",
            Self::Secret => "secrets",
            Self::Pod => "pods",
            Self::Node => "nodes",
        }
    }
}

/// What token verification needs to know about current objects; the HTTP layer implements
/// it over its store.
pub trait ObjectLookup {
    /// The uid of the live object, or `None` when it does not exist (or is being deleted).
    fn uid(&self, kind: ObjectKind, namespace: &str, name: &str) -> Option<String>;
    /// The decoded `data.token` of a Secret, or `None` when the Secret or key is missing.
    fn secret_token(&self, namespace: &str, name: &str) -> Option<Vec<u8>>;
}

/// A ServiceAccount a token is minted for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceAccountRef {
    /// Namespace and name.
    pub account: ServiceAccountName,
    /// The ServiceAccount's `metadata.uid`.
    pub uid: String,
}

/// Failures of the signing key.
#[derive(Debug, thiserror::Error)]
pub enum SigningKeyError {
    /// The key file could not be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The key file could not be written.
    #[error("writing {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// Generating a key failed.
    #[error("generating the service account signing key: {0}")]
    Generate(rcgen::Error),
    /// The key file is not a P-256 PKCS#8 key.
    #[error("parsing the service account signing key {path}: {message}")]
    Parse {
        /// The file (or `<memory>`).
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

/// Why a TokenRequest was refused; each maps to the Status kube-apiserver returns.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenRequestError {
    /// A field is invalid (422 Invalid, with this field path).
    #[error("{field}: Invalid value: {value}: {message}")]
    Invalid {
        /// Field path, such as `spec.expirationSeconds`.
        field: &'static str,
        /// The rejected value, rendered.
        value: String,
        /// Why.
        message: String,
    },
    /// The bound object does not exist (404 NotFound).
    #[error("{resource} \"{name}\" not found")]
    BoundObjectNotFound {
        /// Its resource, such as `pods`.
        resource: &'static str,
        /// Its name.
        name: String,
    },
    /// The bound object exists with another uid (409 Conflict).
    #[error(
        "the UID in the bound object reference ({requested}) does not match the UID in record ({actual}). The object might have been deleted and then recreated"
    )]
    BoundObjectUidMismatch {
        /// The uid in the request.
        requested: String,
        /// The uid of the live object.
        actual: String,
    },
    /// Signing failed (500).
    #[error("signing the token failed")]
    Sign,
}

/// Why a presented token was rejected (all are 401 Unauthorized to the client).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenVerifyError {
    /// Not three base64url segments with JSON header and claims.
    #[error("malformed token: {0}")]
    Malformed(&'static str),
    /// The header names another algorithm than ES256.
    #[error("unsupported signing algorithm {0:?}")]
    Algorithm(String),
    /// The signature does not verify with our key.
    #[error("invalid signature")]
    Signature,
    /// Neither our issuer nor the legacy one.
    #[error("token issued by {0:?}, not by this server")]
    Issuer(String),
    /// None of the token's audiences is an API audience.
    #[error("token audiences {0:?} are invalid for this server")]
    Audience(Vec<String>),
    /// Past `exp`.
    #[error("token has expired")]
    Expired,
    /// Before `nbf` or `iat`.
    #[error("token is not valid yet")]
    NotYetValid,
    /// Required claims are missing or inconsistent.
    #[error("invalid claims: {0}")]
    Claims(&'static str),
    /// The ServiceAccount is gone or was recreated.
    #[error("service account {account} has been deleted or recreated")]
    ServiceAccountGone {
        /// The account.
        account: ServiceAccountName,
    },
    /// The object the token is bound to is gone or was recreated.
    #[error("bound {resource} {name:?} has been deleted or recreated")]
    BoundObjectGone {
        /// Its resource.
        resource: &'static str,
        /// Its name.
        name: String,
    },
    /// The legacy token's Secret is gone or holds another token.
    #[error("token secret {namespace}/{name} has been deleted or no longer holds this token")]
    SecretGone {
        /// Secret namespace.
        namespace: String,
        /// Secret name.
        name: String,
    },
}

/// A TokenRequest's defaulted spec and the status to return.
#[derive(Clone, Debug, PartialEq)]
pub struct MintedToken {
    /// The spec with `audiences` and `expirationSeconds` defaulted, as kube-apiserver echoes it.
    pub spec: TokenRequestSpec,
    /// The token and its expiration.
    pub status: TokenRequestStatus,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
struct ObjectRefClaim {
    name: String,
    uid: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
struct KubernetesClaims {
    namespace: String,
    serviceaccount: ObjectRefClaim,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pod: Option<ObjectRefClaim>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    secret: Option<ObjectRefClaim>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    node: Option<ObjectRefClaim>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

impl Audience {
    fn into_vec(self) -> Vec<String> {
        match self {
            Self::One(a) => vec![a],
            Self::Many(a) => a,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Claims {
    iss: String,
    sub: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    aud: Option<Audience>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    exp: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    iat: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    nbf: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    jti: Option<String>,
    #[serde(
        rename = "kubernetes.io",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    kubernetes: Option<KubernetesClaims>,
    #[serde(
        rename = "kubernetes.io/serviceaccount/namespace",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    legacy_namespace: Option<String>,
    #[serde(
        rename = "kubernetes.io/serviceaccount/secret.name",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    legacy_secret_name: Option<String>,
    #[serde(
        rename = "kubernetes.io/serviceaccount/service-account.name",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    legacy_sa_name: Option<String>,
    #[serde(
        rename = "kubernetes.io/serviceaccount/service-account.uid",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    legacy_sa_uid: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Header {
    alg: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    kid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    typ: Option<String>,
}

/// Mints and verifies service account tokens with one ES256 key.
pub struct ServiceAccountTokens {
    key: EcdsaKeyPair,
    key_id: String,
    issuer: String,
    api_audiences: Vec<String>,
    rng: SystemRandom,
}

impl std::fmt::Debug for ServiceAccountTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceAccountTokens")
            .field("key_id", &self.key_id)
            .field("issuer", &self.issuer)
            .field("api_audiences", &self.api_audiences)
            .finish_non_exhaustive()
    }
}

impl ServiceAccountTokens {
    /// Loads the signing key from `pki_dir`, creating it (mode 0600) on first start. The
    /// issuer is [`DEFAULT_ISSUER`], which is also the only API audience.
    pub fn load_or_create(pki_dir: &Path) -> Result<Self, SigningKeyError> {
        let path = pki_dir.join(SIGNING_KEY_FILE);
        let existing = files::read_optional(&path).map_err(|source| SigningKeyError::Read {
            path: path.clone(),
            source,
        })?;
        let pem = match existing {
            Some(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            None => {
                let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)
                    .map_err(SigningKeyError::Generate)?;
                let pem = key.serialize_pem();
                files::write_atomic(&path, pem.as_bytes(), PRIVATE_MODE).map_err(|source| {
                    SigningKeyError::Write {
                        path: path.clone(),
                        source,
                    }
                })?;
                pem
            }
        };
        Self::from_pem(&path, &pem)
    }

    /// A fresh key held only in memory (for tests).
    pub fn in_memory() -> Result<Self, SigningKeyError> {
        let key =
            KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(SigningKeyError::Generate)?;
        Self::from_pem(Path::new("<memory>"), &key.serialize_pem())
    }

    fn from_pem(path: &Path, pem: &str) -> Result<Self, SigningKeyError> {
        let parse_err = |message: String| SigningKeyError::Parse {
            path: path.to_owned(),
            message,
        };
        let key_pair = KeyPair::from_pem(pem).map_err(|e| parse_err(e.to_string()))?;
        if !key_pair.is_compatible(&PKCS_ECDSA_P256_SHA256) {
            return Err(parse_err("not an ECDSA P-256 key".to_owned()));
        }
        let rng = SystemRandom::new();
        let key = EcdsaKeyPair::from_pkcs8(
            &ECDSA_P256_SHA256_FIXED_SIGNING,
            key_pair.serialized_der(),
            &rng,
        )
        .map_err(|e| parse_err(e.to_string()))?;
        // kube-apiserver derives the key id from the public key the same way.
        let key_id = URL_SAFE_NO_PAD.encode(Sha256::digest(key_pair.subject_public_key_info()));
        Ok(Self {
            key,
            key_id,
            issuer: DEFAULT_ISSUER.to_owned(),
            api_audiences: vec![DEFAULT_ISSUER.to_owned()],
            rng,
        })
    }

    /// Uses another issuer URL (it also becomes the API audience).
    pub fn with_issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuer = issuer.into();
        self.api_audiences = vec![self.issuer.clone()];
        self
    }

    /// The `iss` of bound tokens.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// Audiences a token must carry (one of) to authenticate to this server.
    pub fn api_audiences(&self) -> &[String] {
        &self.api_audiences
    }

    /// The JSON Web Key Set served at `/openid/v1/jwks`.
    pub fn jwks(&self) -> Value {
        // An uncompressed P-256 point: 0x04 || x (32 bytes) || y (32 bytes).
        let point = self.key.public_key().as_ref();
        let (x, y) = point
            .get(1..)
            .unwrap_or_default()
            .split_at(point.len().saturating_sub(1) / 2);
        json!({
            "keys": [{
                "use": "sig",
                "kty": "EC",
                "kid": self.key_id,
                "crv": "P-256",
                "alg": "ES256",
                "x": URL_SAFE_NO_PAD.encode(x),
                "y": URL_SAFE_NO_PAD.encode(y),
            }]
        })
    }

    /// The document served at `/.well-known/openid-configuration`.
    pub fn openid_configuration(&self) -> Value {
        json!({
            "issuer": self.issuer,
            "jwks_uri": format!("{}/openid/v1/jwks", self.issuer.trim_end_matches('/')),
            "response_types_supported": ["id_token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["ES256"],
        })
    }

    /// Mints the token of a TokenRequest (`serviceaccounts/<name>/token`) at `now`.
    ///
    /// The spine has already checked that the ServiceAccount exists; a bound object in the
    /// spec is looked up through `lookup` and must exist with the given uid.
    pub fn mint_token_request(
        &self,
        sa: &ServiceAccountRef,
        spec: &TokenRequestSpec,
        lookup: &dyn ObjectLookup,
        now: jiff::Timestamp,
    ) -> Result<MintedToken, TokenRequestError> {
        let expiration = spec
            .expiration_seconds
            .unwrap_or(DEFAULT_EXPIRATION_SECONDS);
        if expiration < MIN_EXPIRATION_SECONDS {
            return Err(TokenRequestError::Invalid {
                field: "spec.expirationSeconds",
                value: expiration.to_string(),
                message: "may not specify a duration less than 10 minutes".to_owned(),
            });
        }
        if expiration > MAX_EXPIRATION_SECONDS {
            return Err(TokenRequestError::Invalid {
                field: "spec.expirationSeconds",
                value: expiration.to_string(),
                message: "may not specify a duration larger than 2^32 seconds".to_owned(),
            });
        }
        let audiences = if spec.audiences.is_empty() {
            self.api_audiences.clone()
        } else {
            spec.audiences.clone()
        };
        let mut kubernetes = KubernetesClaims {
            namespace: sa.account.namespace.clone(),
            serviceaccount: ObjectRefClaim {
                name: sa.account.name.clone(),
                uid: sa.uid.clone(),
            },
            pod: None,
            secret: None,
            node: None,
        };
        if let Some(bound) = &spec.bound_object_ref {
            let kind_name = bound.kind.as_deref().unwrap_or_default();
            let Some(kind) = ObjectKind::from_kind(kind_name) else {
                return Err(TokenRequestError::Invalid {
                    field: "spec.boundObjectRef.kind",
                    value: format!("{kind_name:?}"),
                    message: "supported values: \"Pod\", \"Secret\", \"Node\"".to_owned(),
                });
            };
            let name = bound.name.clone().unwrap_or_default();
            if name.is_empty() {
                return Err(TokenRequestError::Invalid {
                    field: "spec.boundObjectRef.name",
                    value: "\"\"".to_owned(),
                    message: "name is required".to_owned(),
                });
            }
            let namespace = if kind == ObjectKind::Node {
                ""
            } else {
                sa.account.namespace.as_str()
            };
            let actual = lookup.uid(kind, namespace, &name).ok_or(
                TokenRequestError::BoundObjectNotFound {
                    resource: kind.resource(),
                    name: name.clone(),
                },
            )?;
            if let Some(requested) = bound.uid.as_deref().filter(|u| !u.is_empty())
                && requested != actual
            {
                return Err(TokenRequestError::BoundObjectUidMismatch {
                    requested: requested.to_owned(),
                    actual,
                });
            }
            let claim = Some(ObjectRefClaim { name, uid: actual });
            match kind {
                ObjectKind::Pod => kubernetes.pod = claim,
                ObjectKind::Secret => kubernetes.secret = claim,
                ObjectKind::Node => kubernetes.node = claim,
                ObjectKind::ServiceAccount => {}
            }
        }
        let iat = now.as_second();
        let exp = iat.saturating_add(expiration);
        let claims = Claims {
            iss: self.issuer.clone(),
            sub: sa.account.username(),
            aud: Some(Audience::Many(audiences.clone())),
            exp: Some(exp),
            iat: Some(iat),
            nbf: Some(iat),
            jti: Some(uuid::Uuid::new_v4().to_string()),
            kubernetes: Some(kubernetes),
            legacy_namespace: None,
            legacy_secret_name: None,
            legacy_sa_name: None,
            legacy_sa_uid: None,
        };
        let token = self.sign(&claims).ok_or(TokenRequestError::Sign)?;
        let expiration_timestamp =
            jiff::Timestamp::from_second(exp).map_err(|_| TokenRequestError::Invalid {
                field: "spec.expirationSeconds",
                value: expiration.to_string(),
                message: "expiration is out of range".to_owned(),
            })?;
        Ok(MintedToken {
            spec: TokenRequestSpec {
                audiences,
                bound_object_ref: spec.bound_object_ref.clone(),
                expiration_seconds: Some(expiration),
            },
            status: TokenRequestStatus {
                token,
                expiration_timestamp: Time(expiration_timestamp),
            },
        })
    }

    /// Mints the non-expiring token stored in a `kubernetes.io/service-account-token` Secret.
    pub fn mint_legacy(
        &self,
        sa: &ServiceAccountRef,
        secret_name: &str,
    ) -> Result<String, TokenRequestError> {
        let claims = Claims {
            iss: LEGACY_ISSUER.to_owned(),
            sub: sa.account.username(),
            aud: None,
            exp: None,
            iat: None,
            nbf: None,
            jti: None,
            kubernetes: None,
            legacy_namespace: Some(sa.account.namespace.clone()),
            legacy_secret_name: Some(secret_name.to_owned()),
            legacy_sa_name: Some(sa.account.name.clone()),
            legacy_sa_uid: Some(sa.uid.clone()),
        };
        self.sign(&claims).ok_or(TokenRequestError::Sign)
    }

    fn sign(&self, claims: &Claims) -> Option<String> {
        let header = Header {
            alg: "ES256".to_owned(),
            kid: Some(self.key_id.clone()),
            typ: None,
        };
        let header = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header).ok()?);
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).ok()?);
        let signing_input = format!("{header}.{payload}");
        let signature = self.key.sign(&self.rng, signing_input.as_bytes()).ok()?;
        Some(format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(signature.as_ref())
        ))
    }

    /// Whether `token` looks like a JWT (three dot-separated segments), so that other
    /// bearer tokens need not go through signature verification.
    pub fn looks_like_jwt(token: &str) -> bool {
        token.split('.').count() == 3
    }

    /// Verifies `token` at `now` and returns the service account identity it proves.
    pub fn verify(
        &self,
        token: &str,
        lookup: &dyn ObjectLookup,
        now: jiff::Timestamp,
    ) -> Result<UserInfo, TokenVerifyError> {
        self.verify_claims(token, now)?.complete(lookup)
    }

    /// The first half of [`Self::verify`]: checks signature, issuer, audience and times,
    /// and returns the object checks that remain, for callers that look objects up
    /// asynchronously (fetch them into an [`ObjectSnapshot`], then call
    /// [`PendingToken::complete`]).
    pub fn verify_claims(
        &self,
        token: &str,
        now: jiff::Timestamp,
    ) -> Result<PendingToken, TokenVerifyError> {
        self.verify_claims_for(token, now, &self.api_audiences)
    }

    /// [`Self::verify_claims`] for other `audiences` than the API's (TokenReview with
    /// `spec.audiences`): the token must be meant for one of them. Legacy tokens count as
    /// meant for the API audiences, as in kube-apiserver.
    pub fn verify_claims_for(
        &self,
        token: &str,
        now: jiff::Timestamp,
        audiences: &[String],
    ) -> Result<PendingToken, TokenVerifyError> {
        let claims = self.verify_signature(token)?;
        let token_audiences = match claims.aud.clone().map(Audience::into_vec) {
            Some(auds) if !auds.is_empty() => auds,
            _ => self.api_audiences.clone(),
        };
        let matched: Vec<String> = token_audiences
            .iter()
            .filter(|a| audiences.contains(a))
            .cloned()
            .collect();
        if claims.iss == LEGACY_ISSUER {
            if matched.is_empty() {
                return Err(TokenVerifyError::Audience(token_audiences));
            }
            let mut pending = legacy_pending(token, claims)?;
            pending.audiences = matched;
            return Ok(pending);
        }
        if claims.iss != self.issuer {
            return Err(TokenVerifyError::Issuer(claims.iss));
        }
        if matched.is_empty() {
            return Err(TokenVerifyError::Audience(token_audiences));
        }
        let now = now.as_second();
        let exp = claims
            .exp
            .ok_or(TokenVerifyError::Claims("exp is missing"))?;
        if now > exp.saturating_add(LEEWAY_SECONDS) {
            return Err(TokenVerifyError::Expired);
        }
        let not_before = claims.nbf.or(claims.iat).unwrap_or(i64::MIN);
        if now.saturating_add(LEEWAY_SECONDS) < not_before {
            return Err(TokenVerifyError::NotYetValid);
        }
        let k8s = claims
            .kubernetes
            .ok_or(TokenVerifyError::Claims("kubernetes.io claim is missing"))?;
        let account = ServiceAccountName::new(&k8s.namespace, &k8s.serviceaccount.name);
        if claims.sub != account.username() {
            return Err(TokenVerifyError::Claims(
                "sub does not name the service account",
            ));
        }
        let mut checks = vec![ObjectCheck::Uid {
            kind: ObjectKind::ServiceAccount,
            namespace: account.namespace.clone(),
            name: account.name.clone(),
            uid: k8s.serviceaccount.uid.clone(),
        }];
        let mut user = UserInfo::service_account(&account, &k8s.serviceaccount.uid);
        let bound = [
            (ObjectKind::Pod, &k8s.pod),
            (ObjectKind::Secret, &k8s.secret),
            (ObjectKind::Node, &k8s.node),
        ];
        for (kind, claim) in bound {
            let Some(claim) = claim else { continue };
            let namespace = if kind == ObjectKind::Node {
                String::new()
            } else {
                account.namespace.clone()
            };
            checks.push(ObjectCheck::Uid {
                kind,
                namespace,
                name: claim.name.clone(),
                uid: claim.uid.clone(),
            });
            let keys = match kind {
                ObjectKind::Pod => Some((EXTRA_POD_NAME, EXTRA_POD_UID)),
                ObjectKind::Node => Some((EXTRA_NODE_NAME, EXTRA_NODE_UID)),
                ObjectKind::Secret | ObjectKind::ServiceAccount => None,
            };
            if let Some((name_key, uid_key)) = keys {
                user.extra
                    .insert(name_key.to_owned(), vec![claim.name.clone()]);
                user.extra
                    .insert(uid_key.to_owned(), vec![claim.uid.clone()]);
            }
        }
        if let Some(jti) = claims.jti {
            user.extra
                .insert(EXTRA_CREDENTIAL_ID.to_owned(), vec![format!("JTI={jti}")]);
        }
        Ok(PendingToken {
            token: String::new(),
            user,
            checks,
            valid_until: Some(exp.saturating_add(LEEWAY_SECONDS)),
            audiences: matched,
        })
    }

    fn verify_signature(&self, token: &str) -> Result<Claims, TokenVerifyError> {
        let mut parts = token.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenVerifyError::Malformed("expected three segments"));
        };
        let header_bytes = URL_SAFE_NO_PAD
            .decode(header)
            .map_err(|_| TokenVerifyError::Malformed("header is not base64url"))?;
        let parsed: Header = serde_json::from_slice(&header_bytes)
            .map_err(|_| TokenVerifyError::Malformed("header is not a JSON object"))?;
        if parsed.alg != "ES256" {
            return Err(TokenVerifyError::Algorithm(parsed.alg));
        }
        let signature = URL_SAFE_NO_PAD
            .decode(signature)
            .map_err(|_| TokenVerifyError::Malformed("signature is not base64url"))?;
        let signing_input_len = header.len() + 1 + payload.len();
        let signing_input = token
            .get(..signing_input_len)
            .ok_or(TokenVerifyError::Malformed("truncated"))?;
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, self.key.public_key().as_ref())
            .verify(signing_input.as_bytes(), &signature)
            .map_err(|_| TokenVerifyError::Signature)?;
        let payload = URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|_| TokenVerifyError::Malformed("payload is not base64url"))?;
        serde_json::from_slice(&payload)
            .map_err(|_| TokenVerifyError::Malformed("payload is not a claims object"))
    }
}

fn legacy_pending(token: &str, claims: Claims) -> Result<PendingToken, TokenVerifyError> {
    let (Some(namespace), Some(secret), Some(name), Some(uid)) = (
        claims.legacy_namespace,
        claims.legacy_secret_name,
        claims.legacy_sa_name,
        claims.legacy_sa_uid,
    ) else {
        return Err(TokenVerifyError::Claims(
            "legacy service account claims are missing",
        ));
    };
    let account = ServiceAccountName::new(&namespace, &name);
    if claims.sub != account.username() {
        return Err(TokenVerifyError::Claims(
            "sub does not name the service account",
        ));
    }
    Ok(PendingToken {
        valid_until: None,
        audiences: Vec::new(),
        // Deleting the Secret revokes the token, as with kube-apiserver.
        token: token.to_owned(),
        user: UserInfo::service_account(&account, &uid),
        checks: vec![
            ObjectCheck::SecretHoldsToken {
                namespace: namespace.clone(),
                name: secret,
            },
            ObjectCheck::Uid {
                kind: ObjectKind::ServiceAccount,
                namespace,
                name,
                uid,
            },
        ],
    })
}

/// One fact about current objects that a token's validity depends on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ObjectCheck {
    /// The object must exist with this uid.
    Uid {
        /// Its kind.
        kind: ObjectKind,
        /// Its namespace (empty for nodes).
        namespace: String,
        /// Its name.
        name: String,
        /// The uid the token was issued for.
        uid: String,
    },
    /// The Secret's `data.token` must be the presented token (legacy tokens).
    SecretHoldsToken {
        /// Secret namespace.
        namespace: String,
        /// Secret name.
        name: String,
    },
}

/// A token whose signature and claims verified; it authenticates once its object checks
/// hold.
#[derive(Clone)]
pub struct PendingToken {
    /// Kept only for legacy tokens, which are compared with their Secret.
    token: String,
    user: UserInfo,
    checks: Vec<ObjectCheck>,
    /// Last second (Unix time, leeway included) at which the token is accepted; `None` for
    /// tokens that do not expire.
    valid_until: Option<i64>,
    /// The token's audiences among those it was verified for.
    audiences: Vec<String>,
}

impl std::fmt::Debug for PendingToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingToken")
            .field("user", &self.user)
            .field("checks", &self.checks)
            .finish_non_exhaustive()
    }
}

impl PendingToken {
    /// Whether the token's time window still includes `now` (for caches of verified
    /// tokens; signature, issuer and audience do not change).
    pub fn is_current(&self, now: jiff::Timestamp) -> bool {
        self.valid_until
            .is_none_or(|until| now.as_second() <= until)
    }

    /// The token's audiences among those it was verified for.
    pub fn audiences(&self) -> &[String] {
        &self.audiences
    }

    /// The objects to look up before [`Self::complete`].
    pub fn checks(&self) -> &[ObjectCheck] {
        &self.checks
    }

    /// Checks the objects through `lookup` and yields the identity.
    pub fn complete(self, lookup: &dyn ObjectLookup) -> Result<UserInfo, TokenVerifyError> {
        for check in &self.checks {
            match check {
                ObjectCheck::Uid {
                    kind,
                    namespace,
                    name,
                    uid,
                } => {
                    if lookup.uid(*kind, namespace, name).as_deref() == Some(uid.as_str()) {
                        continue;
                    }
                    return Err(match kind {
                        ObjectKind::ServiceAccount => TokenVerifyError::ServiceAccountGone {
                            account: ServiceAccountName::new(namespace, name),
                        },
                        other => TokenVerifyError::BoundObjectGone {
                            resource: other.resource(),
                            name: name.clone(),
                        },
                    });
                }
                ObjectCheck::SecretHoldsToken { namespace, name } => {
                    if lookup.secret_token(namespace, name).as_deref()
                        != Some(self.token.as_bytes())
                    {
                        return Err(TokenVerifyError::SecretGone {
                            namespace: namespace.clone(),
                            name: name.clone(),
                        });
                    }
                }
            }
        }
        Ok(self.user)
    }
}

/// Objects fetched ahead of time, as an [`ObjectLookup`] (for async callers and tests).
#[derive(Clone, Default)]
pub struct ObjectSnapshot {
    uids: std::collections::HashMap<(ObjectKind, String, String), String>,
    secret_tokens: std::collections::HashMap<(String, String), Vec<u8>>,
}

impl std::fmt::Debug for ObjectSnapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObjectSnapshot")
            .field("uids", &self.uids)
            .field("secret_tokens", &self.secret_tokens.len())
            .finish()
    }
}

impl ObjectSnapshot {
    /// Records that an object exists with `uid`.
    pub fn insert_uid(&mut self, kind: ObjectKind, namespace: &str, name: &str, uid: &str) {
        self.uids.insert(
            (kind, namespace.to_owned(), name.to_owned()),
            uid.to_owned(),
        );
    }

    /// [`Self::insert_uid`] as a builder.
    pub fn with(mut self, kind: ObjectKind, namespace: &str, name: &str, uid: &str) -> Self {
        self.insert_uid(kind, namespace, name, uid);
        self
    }

    /// Records a Secret's decoded `data.token`.
    pub fn insert_secret_token(&mut self, namespace: &str, name: &str, token: Vec<u8>) {
        self.secret_tokens
            .insert((namespace.to_owned(), name.to_owned()), token);
    }
}

impl ObjectLookup for ObjectSnapshot {
    fn uid(&self, kind: ObjectKind, namespace: &str, name: &str) -> Option<String> {
        self.uids
            .get(&(kind, namespace.to_owned(), name.to_owned()))
            .cloned()
    }

    fn secret_token(&self, namespace: &str, name: &str) -> Option<Vec<u8>> {
        self.secret_tokens
            .get(&(namespace.to_owned(), name.to_owned()))
            .cloned()
    }
}

/// The `type` of Secrets that hold a legacy service account token.
pub const TOKEN_SECRET_TYPE: &str = "kubernetes.io/service-account-token";
/// Annotation naming the ServiceAccount of a token Secret.
pub const SA_NAME_ANNOTATION: &str = "kubernetes.io/service-account.name";
/// Annotation with the uid of the ServiceAccount of a token Secret.
pub const SA_UID_ANNOTATION: &str = "kubernetes.io/service-account.uid";

/// What kube-controller-manager's token controller would do with a Secret.
#[derive(Clone, Debug, PartialEq)]
pub enum TokenSecretAction {
    /// Not a token Secret, or already complete.
    Unchanged,
    /// Store this updated Secret (token, `ca.crt`, `namespace` and the uid annotation filled).
    Update(Value),
    /// The ServiceAccount is gone or was recreated: delete the Secret.
    Delete,
}

impl ServiceAccountTokens {
    /// Reconciles a Secret as the legacy token controller does: fills in the token of a
    /// `kubernetes.io/service-account-token` Secret, and reports Secrets whose
    /// ServiceAccount no longer exists.
    pub fn reconcile_token_secret(
        &self,
        secret: &Value,
        lookup: &dyn ObjectLookup,
        ca_pem: &str,
    ) -> Result<TokenSecretAction, TokenRequestError> {
        if secret.get("type").and_then(Value::as_str) != Some(TOKEN_SECRET_TYPE) {
            return Ok(TokenSecretAction::Unchanged);
        }
        let meta = secret.get("metadata");
        let text = |v: Option<&Value>| v.and_then(Value::as_str).unwrap_or_default().to_owned();
        let namespace = text(meta.and_then(|m| m.get("namespace")));
        let secret_name = text(meta.and_then(|m| m.get("name")));
        let annotations = meta.and_then(|m| m.get("annotations"));
        let sa_name = text(annotations.and_then(|a| a.get(SA_NAME_ANNOTATION)));
        let annotated_uid = text(annotations.and_then(|a| a.get(SA_UID_ANNOTATION)));
        if namespace.is_empty() || secret_name.is_empty() || sa_name.is_empty() {
            return Ok(TokenSecretAction::Unchanged);
        }
        let Some(uid) = lookup.uid(ObjectKind::ServiceAccount, &namespace, &sa_name) else {
            return Ok(TokenSecretAction::Delete);
        };
        if !annotated_uid.is_empty() && annotated_uid != uid {
            return Ok(TokenSecretAction::Delete);
        }
        let data = secret.get("data");
        let has = |key: &str| {
            data.and_then(|d| d.get(key))
                .and_then(Value::as_str)
                .is_some_and(|v| !v.is_empty())
        };
        if has("token") && has("ca.crt") && has("namespace") && !annotated_uid.is_empty() {
            return Ok(TokenSecretAction::Unchanged);
        }
        let mut updated = secret.clone();
        let filled = if has("token") {
            None
        } else {
            let account = ServiceAccountRef {
                account: ServiceAccountName::new(&namespace, &sa_name),
                uid: uid.clone(),
            };
            Some(self.mint_legacy(&account, &secret_name)?)
        };
        let defaults =
            legacy_secret_data(filled.as_deref().unwrap_or_default(), ca_pem, &namespace);
        let Some(object) = updated.as_object_mut() else {
            return Ok(TokenSecretAction::Unchanged);
        };
        let data = object.entry("data").or_insert_with(|| json!({}));
        if !data.is_object() {
            *data = json!({});
        }
        if let Some(data) = data.as_object_mut() {
            for (key, value) in defaults {
                let missing = data
                    .get(&key)
                    .and_then(Value::as_str)
                    .is_none_or(str::is_empty);
                if missing {
                    data.insert(key, Value::String(value));
                }
            }
        }
        if let Some(annotations) = object
            .get_mut("metadata")
            .and_then(|m| m.get_mut("annotations"))
            .and_then(Value::as_object_mut)
        {
            annotations.insert(SA_UID_ANNOTATION.to_owned(), Value::String(uid));
        }
        Ok(TokenSecretAction::Update(updated))
    }
}

/// The `data` of a `kubernetes.io/service-account-token` Secret (base64 values, as stored).
pub fn legacy_secret_data(token: &str, ca_pem: &str, namespace: &str) -> BTreeMap<String, String> {
    use base64::engine::general_purpose::STANDARD;
    BTreeMap::from([
        ("ca.crt".to_owned(), STANDARD.encode(ca_pem)),
        ("namespace".to_owned(), STANDARD.encode(namespace)),
        ("token".to_owned(), STANDARD.encode(token)),
    ])
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use k8s_openapi::api::authentication::v1::BoundObjectReference;

    /// Test code elsewhere in `auth` names the snapshot by its role.
    pub(crate) type FakeObjects = ObjectSnapshot;

    pub(crate) fn bot() -> ServiceAccountRef {
        ServiceAccountRef {
            account: ServiceAccountName::new("apps", "bot"),
            uid: "sa-uid-1".to_owned(),
        }
    }

    fn now() -> jiff::Timestamp {
        jiff::Timestamp::from_second(1_800_000_000).unwrap()
    }

    fn decode_claims(token: &str) -> Value {
        let payload = token.split('.').nth(1).unwrap();
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
    }

    #[test]
    fn token_request_round_trip_with_kube_claims() {
        let tokens = ServiceAccountTokens::in_memory().unwrap();
        let objects =
            FakeObjects::default().with(ObjectKind::ServiceAccount, "apps", "bot", "sa-uid-1");
        let spec = TokenRequestSpec {
            expiration_seconds: Some(7200),
            ..Default::default()
        };
        let minted = tokens
            .mint_token_request(&bot(), &spec, &objects, now())
            .unwrap();
        assert_eq!(minted.spec.expiration_seconds, Some(7200));
        assert_eq!(minted.spec.audiences, [DEFAULT_ISSUER]);
        assert_eq!(
            minted.status.expiration_timestamp.0.as_second(),
            1_800_007_200
        );

        let claims = decode_claims(&minted.status.token);
        assert_eq!(claims["iss"], DEFAULT_ISSUER);
        assert_eq!(claims["sub"], "system:serviceaccount:apps:bot");
        assert_eq!(claims["aud"], json!([DEFAULT_ISSUER]));
        assert_eq!(claims["exp"], 1_800_007_200);
        assert_eq!(claims["iat"], 1_800_000_000);
        assert_eq!(claims["nbf"], 1_800_000_000);
        assert_eq!(claims["kubernetes.io"]["namespace"], "apps");
        assert_eq!(
            claims["kubernetes.io"]["serviceaccount"],
            json!({"name": "bot", "uid": "sa-uid-1"})
        );

        let user = tokens
            .verify(&minted.status.token, &objects, now())
            .unwrap();
        assert_eq!(user.username, "system:serviceaccount:apps:bot");
        assert_eq!(user.uid, "sa-uid-1");
        assert!(user.in_group("system:serviceaccounts:apps"));
        assert!(user.in_group("system:authenticated"));
        assert!(user.extra[EXTRA_CREDENTIAL_ID][0].starts_with("JTI="));
    }

    #[test]
    fn expired_and_future_tokens_are_rejected() {
        let tokens = ServiceAccountTokens::in_memory().unwrap();
        let objects =
            FakeObjects::default().with(ObjectKind::ServiceAccount, "apps", "bot", "sa-uid-1");
        let minted = tokens
            .mint_token_request(&bot(), &TokenRequestSpec::default(), &objects, now())
            .unwrap();
        let token = &minted.status.token;
        let later = now()
            .checked_add(jiff::SignedDuration::from_secs(3600 + 61))
            .unwrap();
        assert_eq!(
            tokens.verify(token, &objects, later),
            Err(TokenVerifyError::Expired)
        );
        let within_leeway = now()
            .checked_add(jiff::SignedDuration::from_secs(3600 + 30))
            .unwrap();
        assert!(tokens.verify(token, &objects, within_leeway).is_ok());
        let earlier = now()
            .checked_sub(jiff::SignedDuration::from_secs(120))
            .unwrap();
        assert_eq!(
            tokens.verify(token, &objects, earlier),
            Err(TokenVerifyError::NotYetValid)
        );
    }

    #[test]
    fn tampered_and_foreign_tokens_are_rejected() {
        let tokens = ServiceAccountTokens::in_memory().unwrap();
        let other = ServiceAccountTokens::in_memory().unwrap();
        let objects =
            FakeObjects::default().with(ObjectKind::ServiceAccount, "apps", "bot", "sa-uid-1");
        let minted = tokens
            .mint_token_request(&bot(), &TokenRequestSpec::default(), &objects, now())
            .unwrap();
        let token = minted.status.token;

        // Claims rewritten to another account, original signature kept.
        let mut claims = decode_claims(&token);
        claims["sub"] = json!("system:serviceaccount:kube-system:admin");
        let parts: Vec<&str> = token.split('.').collect();
        let forged = format!(
            "{}.{}.{}",
            parts[0],
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap()),
            parts[2]
        );
        assert_eq!(
            tokens.verify(&forged, &objects, now()),
            Err(TokenVerifyError::Signature)
        );

        // Signed by another server's key.
        let foreign = other
            .mint_token_request(&bot(), &TokenRequestSpec::default(), &objects, now())
            .unwrap();
        assert_eq!(
            tokens.verify(&foreign.status.token, &objects, now()),
            Err(TokenVerifyError::Signature)
        );

        // alg=none.
        let none_header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none"}"#);
        let unsigned = format!("{none_header}.{}.", parts[1]);
        assert_eq!(
            tokens.verify(&unsigned, &objects, now()),
            Err(TokenVerifyError::Algorithm("none".to_owned()))
        );
        for junk in ["", "a.b", "a.b.c.d", "!!.??.**", "e30.e30.AAAA"] {
            assert!(tokens.verify(junk, &objects, now()).is_err(), "{junk}");
        }
    }

    #[test]
    fn deleted_or_recreated_service_account_invalidates_tokens() {
        let tokens = ServiceAccountTokens::in_memory().unwrap();
        let objects =
            FakeObjects::default().with(ObjectKind::ServiceAccount, "apps", "bot", "sa-uid-1");
        let minted = tokens
            .mint_token_request(&bot(), &TokenRequestSpec::default(), &objects, now())
            .unwrap();
        let gone = FakeObjects::default();
        let recreated =
            FakeObjects::default().with(ObjectKind::ServiceAccount, "apps", "bot", "sa-uid-2");
        for lookup in [&gone, &recreated] {
            assert!(matches!(
                tokens.verify(&minted.status.token, lookup, now()),
                Err(TokenVerifyError::ServiceAccountGone { .. })
            ));
        }
    }

    #[test]
    fn other_audiences_do_not_authenticate() {
        let tokens = ServiceAccountTokens::in_memory().unwrap();
        let objects =
            FakeObjects::default().with(ObjectKind::ServiceAccount, "apps", "bot", "sa-uid-1");
        let spec = TokenRequestSpec {
            audiences: vec!["vault".to_owned()],
            ..Default::default()
        };
        let minted = tokens
            .mint_token_request(&bot(), &spec, &objects, now())
            .unwrap();
        assert_eq!(
            tokens.verify(&minted.status.token, &objects, now()),
            Err(TokenVerifyError::Audience(vec!["vault".to_owned()]))
        );
    }

    #[test]
    fn token_request_validation_matches_kube() {
        let tokens = ServiceAccountTokens::in_memory().unwrap();
        let objects = FakeObjects::default();
        let short = TokenRequestSpec {
            expiration_seconds: Some(599),
            ..Default::default()
        };
        let err = tokens
            .mint_token_request(&bot(), &short, &objects, now())
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "spec.expirationSeconds: Invalid value: 599: may not specify a duration less than 10 minutes"
        );
        let long = TokenRequestSpec {
            expiration_seconds: Some((1 << 32) + 1),
            ..Default::default()
        };
        assert!(matches!(
            tokens.mint_token_request(&bot(), &long, &objects, now()),
            Err(TokenRequestError::Invalid { .. })
        ));
        let bad_kind = TokenRequestSpec {
            bound_object_ref: Some(BoundObjectReference {
                kind: Some("ConfigMap".to_owned()),
                name: Some("x".to_owned()),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert!(matches!(
            tokens.mint_token_request(&bot(), &bad_kind, &objects, now()),
            Err(TokenRequestError::Invalid {
                field: "spec.boundObjectRef.kind",
                ..
            })
        ));
    }

    #[test]
    fn pod_bound_tokens_die_with_the_pod() {
        let tokens = ServiceAccountTokens::in_memory().unwrap();
        let objects = FakeObjects::default()
            .with(ObjectKind::ServiceAccount, "apps", "bot", "sa-uid-1")
            .with(ObjectKind::Pod, "apps", "web-0", "pod-uid-1");
        let bound = |uid: Option<&str>| TokenRequestSpec {
            bound_object_ref: Some(BoundObjectReference {
                api_version: Some("v1".to_owned()),
                kind: Some("Pod".to_owned()),
                name: Some("web-0".to_owned()),
                uid: uid.map(str::to_owned),
            }),
            ..Default::default()
        };
        assert!(matches!(
            tokens.mint_token_request(&bot(), &bound(Some("stale")), &objects, now()),
            Err(TokenRequestError::BoundObjectUidMismatch { .. })
        ));
        let minted = tokens
            .mint_token_request(&bot(), &bound(None), &objects, now())
            .unwrap();
        let claims = decode_claims(&minted.status.token);
        assert_eq!(
            claims["kubernetes.io"]["pod"],
            json!({"name": "web-0", "uid": "pod-uid-1"})
        );
        let user = tokens
            .verify(&minted.status.token, &objects, now())
            .unwrap();
        assert_eq!(user.extra[EXTRA_POD_NAME], ["web-0"]);
        assert_eq!(user.extra[EXTRA_POD_UID], ["pod-uid-1"]);

        let without_pod =
            FakeObjects::default().with(ObjectKind::ServiceAccount, "apps", "bot", "sa-uid-1");
        assert!(matches!(
            tokens.verify(&minted.status.token, &without_pod, now()),
            Err(TokenVerifyError::BoundObjectGone {
                resource: "pods",
                ..
            })
        ));
        assert!(matches!(
            tokens.mint_token_request(&bot(), &bound(None), &without_pod, now()),
            Err(TokenRequestError::BoundObjectNotFound { .. })
        ));
    }

    #[test]
    fn legacy_secret_tokens_live_as_long_as_their_secret() {
        let tokens = ServiceAccountTokens::in_memory().unwrap();
        let token = tokens.mint_legacy(&bot(), "bot-token").unwrap();
        let claims = decode_claims(&token);
        assert_eq!(claims["iss"], LEGACY_ISSUER);
        assert_eq!(
            claims["kubernetes.io/serviceaccount/secret.name"],
            "bot-token"
        );
        assert!(claims.get("exp").is_none());

        let mut objects =
            FakeObjects::default().with(ObjectKind::ServiceAccount, "apps", "bot", "sa-uid-1");
        assert!(matches!(
            tokens.verify(&token, &objects, now()),
            Err(TokenVerifyError::SecretGone { .. })
        ));
        objects.insert_secret_token("apps", "bot-token", token.clone().into_bytes());
        let user = tokens.verify(&token, &objects, now()).unwrap();
        assert_eq!(user.username, "system:serviceaccount:apps:bot");

        let data = legacy_secret_data(&token, "CA", "apps");
        assert_eq!(data["namespace"], "YXBwcw==");
    }

    #[test]
    fn token_secrets_are_filled_and_orphans_deleted() {
        let tokens = ServiceAccountTokens::in_memory().unwrap();
        let mut objects =
            FakeObjects::default().with(ObjectKind::ServiceAccount, "apps", "bot", "sa-uid-1");
        let secret = json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "type": TOKEN_SECRET_TYPE,
            "metadata": {"name": "bot-token", "namespace": "apps", "annotations": {SA_NAME_ANNOTATION: "bot"}},
        });
        let TokenSecretAction::Update(filled) = tokens
            .reconcile_token_secret(&secret, &objects, "CA")
            .unwrap()
        else {
            panic!("expected an update");
        };
        assert_eq!(
            filled["metadata"]["annotations"][SA_UID_ANNOTATION],
            "sa-uid-1"
        );
        assert_eq!(filled["data"]["ca.crt"], "Q0E=");
        let token = base64::engine::general_purpose::STANDARD
            .decode(filled["data"]["token"].as_str().unwrap())
            .unwrap();
        objects.insert_secret_token("apps", "bot-token", token.clone());
        let user = tokens
            .verify(std::str::from_utf8(&token).unwrap(), &objects, now())
            .unwrap();
        assert_eq!(user.username, "system:serviceaccount:apps:bot");
        assert_eq!(
            tokens
                .reconcile_token_secret(&filled, &objects, "CA")
                .unwrap(),
            TokenSecretAction::Unchanged
        );
        let recreated =
            FakeObjects::default().with(ObjectKind::ServiceAccount, "apps", "bot", "sa-uid-2");
        assert_eq!(
            tokens
                .reconcile_token_secret(&filled, &recreated, "CA")
                .unwrap(),
            TokenSecretAction::Delete
        );
        assert_eq!(
            tokens
                .reconcile_token_secret(&secret, &FakeObjects::default(), "CA")
                .unwrap(),
            TokenSecretAction::Delete
        );
        let opaque = json!({"type": "Opaque", "metadata": {"name": "x", "namespace": "apps"}});
        assert_eq!(
            tokens
                .reconcile_token_secret(&opaque, &objects, "CA")
                .unwrap(),
            TokenSecretAction::Unchanged
        );
    }

    #[test]
    fn signing_key_persists_across_starts() {
        let dir = tempfile::tempdir().unwrap();
        let first = ServiceAccountTokens::load_or_create(dir.path()).unwrap();
        let second = ServiceAccountTokens::load_or_create(dir.path()).unwrap();
        let objects =
            FakeObjects::default().with(ObjectKind::ServiceAccount, "apps", "bot", "sa-uid-1");
        let minted = first
            .mint_token_request(&bot(), &TokenRequestSpec::default(), &objects, now())
            .unwrap();
        assert!(second.verify(&minted.status.token, &objects, now()).is_ok());
        assert_eq!(first.jwks(), second.jwks());
        let jwk = &second.jwks()["keys"][0];
        assert_eq!(
            URL_SAFE_NO_PAD
                .decode(jwk["x"].as_str().unwrap())
                .unwrap()
                .len(),
            32
        );
        assert_eq!(
            URL_SAFE_NO_PAD
                .decode(jwk["y"].as_str().unwrap())
                .unwrap()
                .len(),
            32
        );
    }
}
