//! The cluster CA and the API server's serving certificate, generated on first start and
//! reused afterwards, and the rustls configuration that serves them.

use std::collections::BTreeSet;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, SerialNumber,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use serde::{Deserialize, Serialize};

use super::files::{self, PRIVATE_MODE, PUBLIC_MODE};

/// File name of the CA certificate inside the PKI directory.
pub const CA_CERT_FILE: &str = "ca.crt";
/// File name of the CA private key inside the PKI directory.
pub const CA_KEY_FILE: &str = "ca.key";
/// File name of the serving certificate inside the PKI directory.
pub const SERVING_CERT_FILE: &str = "apiserver.crt";
/// File name of the serving private key inside the PKI directory.
pub const SERVING_KEY_FILE: &str = "apiserver.key";
/// Records which names and validity the serving certificate was issued for, so a restart can
/// tell whether it may reuse it without parsing X.509.
const SERVING_META_FILE: &str = "apiserver.json";

const CA_COMMON_NAME: &str = "fedmesh-ca";
const SERVING_COMMON_NAME: &str = "fedmesh-apiserver";
const CA_VALIDITY_YEARS: i16 = 10;
const SERVING_VALIDITY_YEARS: i16 = 1;
/// A serving certificate this close to expiry is replaced at start.
const SERVING_RENEW_DAYS: i32 = 30;

/// Names every serving certificate covers: loopback, and the names in-cluster clients use.
pub const DEFAULT_SANS: &[&str] = &[
    "127.0.0.1",
    "::1",
    "localhost",
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
];

/// Failures while creating, loading or using certificates.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    /// The PKI directory could not be created.
    #[error("creating the PKI directory {path}: {source}")]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// A PKI file could not be read.
    #[error("reading {path}: {source}")]
    ReadFile {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// A PKI file could not be written.
    #[error("writing {path}: {source}")]
    WriteFile {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// A private key file is not a PEM key rcgen understands.
    #[error("parsing the private key in {path}: {source}")]
    ParseKey {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: rcgen::Error,
    },
    /// A certificate file holds no PEM certificate.
    #[error("parsing the certificate in {path}: {message}")]
    ParseCertificate {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The CA files are incomplete: one of certificate and key exists without the other.
    #[error("{present} exists but {missing} does not; remove both to generate a new CA")]
    IncompleteCa {
        /// The file that exists.
        present: PathBuf,
        /// The file that is missing.
        missing: PathBuf,
    },
    /// A subject alternative name is neither an IP address nor a valid DNS name.
    #[error("invalid subject alternative name {name:?}: {message}")]
    InvalidSan {
        /// The rejected name.
        name: String,
        /// What is wrong with it.
        message: String,
    },
    /// Key generation failed.
    #[error("generating a key pair: {0}")]
    GenerateKey(rcgen::Error),
    /// Signing a certificate failed.
    #[error("signing the {what} certificate: {source}")]
    Sign {
        /// Which certificate.
        what: &'static str,
        /// The cause.
        source: rcgen::Error,
    },
    /// The date arithmetic for validity periods overflowed.
    #[error("computing certificate validity: {0}")]
    Validity(jiff::Error),
    /// The client certificate verifier could not be built.
    #[error("building the client certificate verifier: {0}")]
    ClientVerifier(String),
    /// rustls rejected the certificate or key.
    #[error("building the TLS server configuration: {0}")]
    Tls(#[from] rustls::Error),
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
struct ServingMeta {
    sans: BTreeSet<String>,
    not_after: jiff::civil::Date,
}

/// The CA and serving certificate of one API server.
pub struct TlsAssets {
    ca_cert_pem: String,
    /// Kept to sign client certificates; never shown by `Debug`.
    ca_key_pem: String,
    ca_cert_der: CertificateDer<'static>,
    serving_cert_pem: String,
    serving_cert_der: CertificateDer<'static>,
    serving_key_der: Vec<u8>,
    sans: BTreeSet<String>,
    serving_not_after: jiff::civil::Date,
}

impl std::fmt::Debug for TlsAssets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsAssets")
            .field("sans", &self.sans)
            .field("serving_not_after", &self.serving_not_after)
            .finish_non_exhaustive()
    }
}

/// A client certificate and its private key (PEM), for `client-certificate-data` and
/// `client-key-data` in kubeconfigs.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientCertificate {
    /// The certificate, signed by the cluster CA.
    pub cert_pem: String,
    /// Its PKCS#8 private key.
    pub key_pem: String,
}

impl std::fmt::Debug for ClientCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientCertificate")
            .field("cert_pem", &self.cert_pem)
            .finish_non_exhaustive()
    }
}

impl TlsAssets {
    /// Loads the CA and serving certificate from `pki_dir`, generating whatever is missing.
    ///
    /// The CA is generated once and reused forever, so kubeconfigs stay valid across
    /// restarts. The serving certificate is reused while it covers [`DEFAULT_SANS`] plus
    /// `extra_sans` and is not about to expire; otherwise the same CA signs a new one.
    pub fn load_or_create(pki_dir: &Path, extra_sans: &[String]) -> Result<Self, CertError> {
        files::ensure_private_dir(pki_dir).map_err(|source| CertError::CreateDir {
            path: pki_dir.to_owned(),
            source,
        })?;
        let today = today();
        let sans = san_set(extra_sans);
        let (ca_key, ca_cert_pem) = load_or_create_ca(pki_dir, today)?;
        let ca_cert_der = parse_cert_pem(&pki_dir.join(CA_CERT_FILE), &ca_cert_pem)?;

        if let Some(mut assets) = load_serving(pki_dir, &sans, today, &ca_cert_pem, &ca_cert_der)? {
            assets.ca_key_pem = ca_key.serialize_pem();
            return Ok(assets);
        }
        let serving = issue_serving(&ca_key, &sans, today)?;
        let key_path = pki_dir.join(SERVING_KEY_FILE);
        let cert_path = pki_dir.join(SERVING_CERT_FILE);
        write(
            &key_path,
            serving.key.serialize_pem().as_bytes(),
            PRIVATE_MODE,
        )?;
        write(&cert_path, serving.cert_pem.as_bytes(), PUBLIC_MODE)?;
        let meta = ServingMeta {
            sans: sans.clone(),
            not_after: serving.not_after,
        };
        let meta_json = serde_json::to_vec_pretty(&meta).unwrap_or_default();
        write(&pki_dir.join(SERVING_META_FILE), &meta_json, PUBLIC_MODE)?;
        Ok(Self::assemble(
            &ca_key,
            ca_cert_pem,
            ca_cert_der,
            serving,
            sans,
        ))
    }

    /// Generates a fresh CA and serving certificate that live only in memory (for tests).
    pub fn in_memory(extra_sans: &[String]) -> Result<Self, CertError> {
        let today = today();
        let sans = san_set(extra_sans);
        let ca_key =
            KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(CertError::GenerateKey)?;
        let ca_cert_pem = self_sign_ca(&ca_key, today)?;
        let ca_cert_der = parse_cert_pem(Path::new("<memory>"), &ca_cert_pem)?;
        let serving = issue_serving(&ca_key, &sans, today)?;
        Ok(Self::assemble(
            &ca_key,
            ca_cert_pem,
            ca_cert_der,
            serving,
            sans,
        ))
    }

    fn assemble(
        ca_key: &KeyPair,
        ca_cert_pem: String,
        ca_cert_der: CertificateDer<'static>,
        serving: Serving,
        sans: BTreeSet<String>,
    ) -> Self {
        Self {
            ca_cert_pem,
            ca_key_pem: ca_key.serialize_pem(),
            ca_cert_der,
            serving_cert_pem: serving.cert_pem,
            serving_cert_der: serving.cert_der,
            serving_key_der: serving.key.serialize_der(),
            sans,
            serving_not_after: serving.not_after,
        }
    }

    /// The CA certificate in PEM, for `certificate-authority-data` and `ca.crt` in
    /// service account token Secrets.
    pub fn ca_pem(&self) -> &str {
        &self.ca_cert_pem
    }

    /// The CA certificate in DER, for building client trust stores.
    pub fn ca_der(&self) -> &CertificateDer<'static> {
        &self.ca_cert_der
    }

    /// The serving certificate in PEM.
    pub fn serving_cert_pem(&self) -> &str {
        &self.serving_cert_pem
    }

    /// The names the serving certificate covers.
    pub fn sans(&self) -> impl Iterator<Item = &str> {
        self.sans.iter().map(String::as_str)
    }

    /// The last day the serving certificate is valid (UTC).
    pub fn serving_not_after(&self) -> jiff::civil::Date {
        self.serving_not_after
    }

    /// A rustls server configuration (ring provider) that serves the certificate and offers
    /// HTTP/2 before HTTP/1.1 in ALPN, as client-go expects.
    pub fn server_config(&self) -> Result<Arc<rustls::ServerConfig>, CertError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth();
        self.finish_server_config(builder)
    }

    /// Like [`Self::server_config`], and also asks clients for a certificate: one signed by
    /// this CA is verified (read it with [`super::client_cert::user_from_certificate`]),
    /// clients without one still connect (to use bearer tokens).
    pub fn server_config_with_client_auth(&self) -> Result<Arc<rustls::ServerConfig>, CertError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.ca_cert_der.clone())?;
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            Arc::new(roots),
            provider.clone(),
        )
        .allow_unauthenticated()
        .build()
        .map_err(|err| CertError::ClientVerifier(err.to_string()))?;
        let builder = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_client_cert_verifier(verifier);
        self.finish_server_config(builder)
    }

    fn finish_server_config(
        &self,
        builder: rustls::ConfigBuilder<rustls::ServerConfig, rustls::server::WantsServerCert>,
    ) -> Result<Arc<rustls::ServerConfig>, CertError> {
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.serving_key_der.clone()));
        let mut config = builder.with_single_cert(vec![self.serving_cert_der.clone()], key)?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }

    /// Issues a client certificate (valid one year) for `username`, with `group` as its
    /// organization, as kube-apiserver's x509 authentication reads them.
    pub fn issue_client_certificate(
        &self,
        username: &str,
        group: Option<&str>,
    ) -> Result<ClientCertificate, CertError> {
        let ca_key = KeyPair::from_pem(&self.ca_key_pem).map_err(|source| CertError::ParseKey {
            path: PathBuf::from("<ca key>"),
            source,
        })?;
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(CertError::GenerateKey)?;
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        if let Some(group) = group {
            dn.push(DnType::OrganizationName, group);
        }
        dn.push(DnType::CommonName, username);
        params.distinguished_name = dn;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        params.use_authority_key_identifier_extension = true;
        params.serial_number = Some(random_serial());
        let (from, to) = validity(today(), SERVING_VALIDITY_YEARS)?;
        set_validity(&mut params, from, to);
        let issuer = Issuer::new(ca_params(), &ca_key);
        let cert = params
            .signed_by(&key, &issuer)
            .map_err(|source| CertError::Sign {
                what: "client",
                source,
            })?;
        Ok(ClientCertificate {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }

    /// A client configuration trusting this CA and presenting `certificate` (tests).
    pub fn client_config_with_certificate(
        &self,
        certificate: &ClientCertificate,
    ) -> Result<Arc<rustls::ClientConfig>, CertError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.ca_cert_der.clone())?;
        let cert = parse_cert_pem(Path::new("<client certificate>"), &certificate.cert_pem)?;
        let key = PrivateKeyDer::from_pem_slice(certificate.key_pem.as_bytes()).map_err(|err| {
            CertError::ParseCertificate {
                path: PathBuf::from("<client key>"),
                message: err.to_string(),
            }
        })?;
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_client_auth_cert(vec![cert], key)?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }

    /// A rustls client configuration that trusts only this CA (for tests and in-process
    /// clients).
    pub fn client_config(&self) -> Result<Arc<rustls::ClientConfig>, CertError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.ca_cert_der.clone())?;
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}

struct Serving {
    key: KeyPair,
    cert_pem: String,
    cert_der: CertificateDer<'static>,
    not_after: jiff::civil::Date,
}

fn today() -> jiff::civil::Date {
    jiff::Timestamp::now()
        .to_zoned(jiff::tz::TimeZone::UTC)
        .date()
}

fn san_set(extra: &[String]) -> BTreeSet<String> {
    DEFAULT_SANS
        .iter()
        .map(|s| (*s).to_owned())
        .chain(extra.iter().map(|s| s.trim().to_owned()))
        .filter(|s| !s.is_empty())
        .collect()
}

/// Sets a whole-day validity period (UTC midnights) on `params`.
fn set_validity(params: &mut CertificateParams, from: jiff::civil::Date, to: jiff::civil::Date) {
    // jiff dates always have a month in 1..=12 and a day in 1..=31.
    let ymd = |d: jiff::civil::Date| {
        let month = u8::try_from(d.month()).unwrap_or(1);
        let day = u8::try_from(d.day()).unwrap_or(1);
        rcgen::date_time_ymd(i32::from(d.year()), month, day)
    };
    params.not_before = ymd(from);
    params.not_after = ymd(to);
}

fn validity(
    today: jiff::civil::Date,
    years: i16,
) -> Result<(jiff::civil::Date, jiff::civil::Date), CertError> {
    // Start yesterday so that a client whose clock lags a little still accepts the cert.
    let from = today
        .checked_sub(jiff::Span::new().days(1))
        .map_err(CertError::Validity)?;
    let to = today
        .checked_add(jiff::Span::new().years(years))
        .map_err(CertError::Validity)?;
    Ok((from, to))
}

fn random_serial() -> SerialNumber {
    let mut bytes = *uuid::Uuid::new_v4().as_bytes();
    // A positive serial number: clear the top bit.
    bytes[0] &= 0x7f;
    SerialNumber::from_slice(&bytes)
}

fn ca_params() -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "fedmesh");
    dn.push(DnType::CommonName, CA_COMMON_NAME);
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params
}

fn self_sign_ca(key: &KeyPair, today: jiff::civil::Date) -> Result<String, CertError> {
    let mut params = ca_params();
    let (from, to) = validity(today, CA_VALIDITY_YEARS)?;
    set_validity(&mut params, from, to);
    params.serial_number = Some(random_serial());
    let cert = params
        .self_signed(key)
        .map_err(|source| CertError::Sign { what: "CA", source })?;
    Ok(cert.pem())
}

fn issue_serving(
    ca_key: &KeyPair,
    sans: &BTreeSet<String>,
    today: jiff::civil::Date,
) -> Result<Serving, CertError> {
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(CertError::GenerateKey)?;
    let mut params = CertificateParams::default();
    for name in sans {
        params.subject_alt_names.push(san_type(name)?);
    }
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, SERVING_COMMON_NAME);
    params.distinguished_name = dn;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    params.serial_number = Some(random_serial());
    let (from, to) = validity(today, SERVING_VALIDITY_YEARS)?;
    set_validity(&mut params, from, to);
    // The issuer is rebuilt from the same parameters the CA was created with, so the issuer
    // name and key identifier match the persisted CA certificate.
    let issuer = Issuer::new(ca_params(), ca_key);
    let cert = params
        .signed_by(&key, &issuer)
        .map_err(|source| CertError::Sign {
            what: "serving",
            source,
        })?;
    Ok(Serving {
        cert_pem: cert.pem(),
        cert_der: cert.der().clone(),
        key,
        not_after: to,
    })
}

fn san_type(name: &str) -> Result<rcgen::SanType, CertError> {
    if let Ok(ip) = name.parse::<std::net::IpAddr>() {
        return Ok(rcgen::SanType::IpAddress(ip));
    }
    // rcgen only checks for ASCII; rustls' DNS name rules are what clients will apply.
    rustls::pki_types::DnsName::try_from(name).map_err(|err| CertError::InvalidSan {
        name: name.to_owned(),
        message: err.to_string(),
    })?;
    let dns = name
        .to_owned()
        .try_into()
        .map_err(|err: rcgen::Error| CertError::InvalidSan {
            name: name.to_owned(),
            message: err.to_string(),
        })?;
    Ok(rcgen::SanType::DnsName(dns))
}

fn read(path: &Path) -> Result<Option<Vec<u8>>, CertError> {
    files::read_optional(path).map_err(|source| CertError::ReadFile {
        path: path.to_owned(),
        source,
    })
}

fn write(path: &Path, data: &[u8], mode: u32) -> Result<(), CertError> {
    files::write_atomic(path, data, mode).map_err(|source| CertError::WriteFile {
        path: path.to_owned(),
        source,
    })
}

fn parse_key(path: &Path, pem: &[u8]) -> Result<KeyPair, CertError> {
    let text = String::from_utf8_lossy(pem);
    KeyPair::from_pem(&text).map_err(|source| CertError::ParseKey {
        path: path.to_owned(),
        source,
    })
}

fn parse_cert_pem(path: &Path, pem: &str) -> Result<CertificateDer<'static>, CertError> {
    CertificateDer::from_pem_slice(pem.as_bytes()).map_err(|err| CertError::ParseCertificate {
        path: path.to_owned(),
        message: err.to_string(),
    })
}

fn load_or_create_ca(
    pki_dir: &Path,
    today: jiff::civil::Date,
) -> Result<(KeyPair, String), CertError> {
    let key_path = pki_dir.join(CA_KEY_FILE);
    let cert_path = pki_dir.join(CA_CERT_FILE);
    match (read(&key_path)?, read(&cert_path)?) {
        (Some(key_pem), Some(cert_pem)) => {
            let key = parse_key(&key_path, &key_pem)?;
            let cert_pem =
                String::from_utf8(cert_pem).map_err(|_| CertError::ParseCertificate {
                    path: cert_path.clone(),
                    message: "not UTF-8".to_owned(),
                })?;
            Ok((key, cert_pem))
        }
        (None, None) => {
            let key =
                KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(CertError::GenerateKey)?;
            let cert_pem = self_sign_ca(&key, today)?;
            // Key first: a crash between the two writes leaves a key without a certificate,
            // which is reported rather than silently replaced.
            write(&key_path, key.serialize_pem().as_bytes(), PRIVATE_MODE)?;
            write(&cert_path, cert_pem.as_bytes(), PUBLIC_MODE)?;
            Ok((key, cert_pem))
        }
        (Some(_), None) => Err(CertError::IncompleteCa {
            present: key_path,
            missing: cert_path,
        }),
        (None, Some(_)) => Err(CertError::IncompleteCa {
            present: cert_path,
            missing: key_path,
        }),
    }
}

/// Loads the persisted serving certificate if it still fits; `None` means issue a new one.
fn load_serving(
    pki_dir: &Path,
    sans: &BTreeSet<String>,
    today: jiff::civil::Date,
    ca_cert_pem: &str,
    ca_cert_der: &CertificateDer<'static>,
) -> Result<Option<TlsAssets>, CertError> {
    let meta_path = pki_dir.join(SERVING_META_FILE);
    let key_path = pki_dir.join(SERVING_KEY_FILE);
    let cert_path = pki_dir.join(SERVING_CERT_FILE);
    let (Some(meta), Some(key_pem), Some(cert_pem)) =
        (read(&meta_path)?, read(&key_path)?, read(&cert_path)?)
    else {
        return Ok(None);
    };
    let Ok(meta) = serde_json::from_slice::<ServingMeta>(&meta) else {
        return Ok(None);
    };
    let renew_at = meta
        .not_after
        .checked_sub(jiff::Span::new().days(SERVING_RENEW_DAYS))
        .map_err(CertError::Validity)?;
    if &meta.sans != sans || today >= renew_at {
        return Ok(None);
    }
    let key = parse_key(&key_path, &key_pem)?;
    let cert_pem = String::from_utf8_lossy(&cert_pem).into_owned();
    let cert_der = parse_cert_pem(&cert_path, &cert_pem)?;
    Ok(Some(TlsAssets {
        ca_cert_pem: ca_cert_pem.to_owned(),
        ca_key_pem: String::new(),
        ca_cert_der: ca_cert_der.clone(),
        serving_cert_pem: cert_pem,
        serving_cert_der: cert_der,
        serving_key_der: key.serialize_der(),
        sans: sans.clone(),
        serving_not_after: meta.not_after,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// Runs a TLS handshake between `server` and a client that trusts only `assets`' CA,
    /// entirely in memory, and returns the negotiated ALPN protocol.
    fn handshake(assets: &TlsAssets, server_name: &str) -> Result<Option<Vec<u8>>, rustls::Error> {
        let name = rustls::pki_types::ServerName::try_from(server_name.to_owned()).unwrap();
        let mut client = rustls::ClientConnection::new(assets.client_config().unwrap(), name)?;
        let mut server = rustls::ServerConnection::new(assets.server_config().unwrap())?;
        for _ in 0..20 {
            if !client.is_handshaking() && !server.is_handshaking() {
                return Ok(client.alpn_protocol().map(<[u8]>::to_vec));
            }
            let mut buf = Vec::new();
            while client.wants_write() {
                client.write_tls(&mut buf).unwrap();
            }
            server.read_tls(&mut buf.as_slice()).unwrap();
            server.process_new_packets()?;
            let mut buf = Vec::new();
            while server.wants_write() {
                server.write_tls(&mut buf).unwrap();
            }
            client.read_tls(&mut buf.as_slice()).unwrap();
            client.process_new_packets()?;
        }
        panic!("handshake did not finish");
    }

    #[test]
    fn in_memory_certificate_verifies_for_loopback_names_with_h2() {
        let assets = TlsAssets::in_memory(&["api.example.test".to_owned()]).unwrap();
        for name in ["127.0.0.1", "::1", "localhost", "api.example.test"] {
            assert_eq!(
                handshake(&assets, name).unwrap(),
                Some(b"h2".to_vec()),
                "{name}"
            );
        }
        let err = handshake(&assets, "other.example.test").unwrap_err();
        assert!(err.to_string().contains("certificate"), "{err}");
        assert!(assets.ca_pem().starts_with("-----BEGIN CERTIFICATE-----"));
    }

    #[test]
    fn second_start_reuses_ca_and_serving_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let first = TlsAssets::load_or_create(dir.path(), &[]).unwrap();
        let second = TlsAssets::load_or_create(dir.path(), &[]).unwrap();
        assert_eq!(first.ca_pem(), second.ca_pem());
        assert_eq!(first.serving_cert_pem(), second.serving_cert_pem());
        handshake(&second, "127.0.0.1").unwrap();
        for file in [CA_KEY_FILE, SERVING_KEY_FILE] {
            let mode = std::fs::metadata(dir.path().join(file))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{file}");
        }
    }

    #[test]
    fn new_sans_reissue_serving_certificate_under_the_same_ca() {
        let dir = tempfile::tempdir().unwrap();
        let first = TlsAssets::load_or_create(dir.path(), &[]).unwrap();
        let extra = ["10.0.0.7".to_owned(), "node-a.local".to_owned()];
        let second = TlsAssets::load_or_create(dir.path(), &extra).unwrap();
        assert_eq!(first.ca_pem(), second.ca_pem());
        assert_ne!(first.serving_cert_pem(), second.serving_cert_pem());
        handshake(&second, "10.0.0.7").unwrap();
        handshake(&second, "node-a.local").unwrap();
        // A client that trusted the first start's CA still trusts the reissued certificate.
        let roots_from_first = TlsAssets {
            serving_cert_pem: second.serving_cert_pem.clone(),
            serving_cert_der: second.serving_cert_der.clone(),
            serving_key_der: second.serving_key_der.clone(),
            ..first
        };
        handshake(&roots_from_first, "node-a.local").unwrap();
    }

    #[test]
    fn half_written_ca_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        TlsAssets::load_or_create(dir.path(), &[]).unwrap();
        std::fs::remove_file(dir.path().join(CA_CERT_FILE)).unwrap();
        let err = TlsAssets::load_or_create(dir.path(), &[]).unwrap_err();
        assert!(matches!(err, CertError::IncompleteCa { .. }), "{err}");
    }

    #[test]
    fn invalid_san_is_rejected() {
        let err = TlsAssets::in_memory(&["bad name!".to_owned()]).unwrap_err();
        assert!(matches!(err, CertError::InvalidSan { .. }), "{err}");
    }
}
