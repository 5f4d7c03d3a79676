//! Writing kubeconfig files that kubectl and kube-rs load as they are.

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value, json};

use super::certs::ClientCertificate;
use super::files::{self, PRIVATE_MODE};

/// Failures while writing or merging a kubeconfig.
#[derive(Debug, thiserror::Error)]
pub enum KubeconfigError {
    /// No context was given.
    #[error("a kubeconfig needs at least one context")]
    NoContexts,
    /// The current context names none of the contexts written.
    #[error("current context {0:?} is not among the contexts")]
    UnknownCurrentContext(String),
    /// Two entries use the same context name.
    #[error("context {0:?} is given twice")]
    DuplicateContext(String),
    /// The existing file could not be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// The existing file is not a kubeconfig this code can merge into.
    #[error("parsing the existing kubeconfig {path}: {message}")]
    ParseExisting {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// Rendering YAML failed.
    #[error("rendering the kubeconfig: {0}")]
    Render(String),
    /// The file could not be written.
    #[error("writing {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
}

/// One cluster, user and the context tying them together.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KubeconfigEntry {
    /// Name of the context (and, unless set otherwise, of its cluster and user).
    pub context: String,
    /// Name of the cluster entry.
    pub cluster: String,
    /// Name of the user entry.
    pub user: String,
    /// The API server URL, such as `https://127.0.0.1:6443`.
    pub server: String,
    /// The CA certificate (PEM) that signed the server's certificate.
    pub ca_pem: String,
    /// The bearer token of the user.
    pub token: String,
    /// Default namespace of the context, if any.
    pub namespace: Option<String>,
    /// A client certificate for the user, written beside (or instead of, when `token` is
    /// empty) the token.
    pub client_certificate: Option<ClientCertificate>,
}

impl KubeconfigEntry {
    /// An entry whose cluster and user are named after the context.
    pub fn new(
        context: impl Into<String>,
        server: impl Into<String>,
        ca_pem: impl Into<String>,
        token: impl Into<String>,
    ) -> Self {
        let context = context.into();
        Self {
            cluster: context.clone(),
            user: context.clone(),
            context,
            server: server.into(),
            ca_pem: ca_pem.into(),
            token: token.into(),
            namespace: None,
            client_certificate: None,
        }
    }

    fn cluster_value(&self) -> Value {
        json!({
            "name": self.cluster,
            "cluster": {
                "server": self.server,
                "certificate-authority-data": STANDARD.encode(self.ca_pem.as_bytes()),
            },
        })
    }

    fn user_value(&self) -> Value {
        let mut user = Map::new();
        if !self.token.is_empty() {
            user.insert("token".to_owned(), json!(self.token));
        }
        if let Some(cert) = &self.client_certificate {
            user.insert(
                "client-certificate-data".to_owned(),
                json!(STANDARD.encode(cert.cert_pem.as_bytes())),
            );
            user.insert(
                "client-key-data".to_owned(),
                json!(STANDARD.encode(cert.key_pem.as_bytes())),
            );
        }
        json!({ "name": self.user, "user": user })
    }

    fn context_value(&self) -> Value {
        let mut context = json!({ "cluster": self.cluster, "user": self.user });
        if let (Some(ns), Some(map)) = (&self.namespace, context.as_object_mut()) {
            map.insert("namespace".to_owned(), Value::String(ns.clone()));
        }
        json!({ "name": self.context, "context": context })
    }
}

/// The `https://` URL clients use for a server listening on `addr`; an unspecified address
/// (`0.0.0.0`, `::`) becomes the loopback address of its family.
pub fn server_url(addr: SocketAddr) -> String {
    let ip = match addr.ip() {
        std::net::IpAddr::V4(ip) if ip.is_unspecified() => std::net::Ipv4Addr::LOCALHOST.into(),
        std::net::IpAddr::V6(ip) if ip.is_unspecified() => std::net::Ipv6Addr::LOCALHOST.into(),
        ip => ip,
    };
    format!("https://{}", SocketAddr::new(ip, addr.port()))
}

/// Renders a kubeconfig with `entries`, selecting `current_context`.
pub fn render(
    entries: &[KubeconfigEntry],
    current_context: &str,
) -> Result<String, KubeconfigError> {
    let doc = document(entries, current_context)?;
    to_yaml(&doc)
}

/// Writes a kubeconfig holding exactly `entries` to `path`, atomically and readable by the
/// owner only.
pub fn write(
    path: &Path,
    entries: &[KubeconfigEntry],
    current_context: &str,
) -> Result<(), KubeconfigError> {
    let text = render(entries, current_context)?;
    write_text(path, &text)
}

/// Adds `entries` to the kubeconfig at `path` (created when missing), replacing clusters,
/// users and contexts of the same names and keeping everything else. `current_context`, when
/// given, becomes the current context.
pub fn merge_into(
    path: &Path,
    entries: &[KubeconfigEntry],
    current_context: Option<&str>,
) -> Result<(), KubeconfigError> {
    check_entries(entries)?;
    let existing = files::read_optional(path).map_err(|source| KubeconfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    let mut doc = match existing {
        Some(bytes) if !String::from_utf8_lossy(&bytes).trim().is_empty() => {
            parse_existing(path, &bytes)?
        }
        _ => empty_document(),
    };
    for entry in entries {
        upsert_named(&mut doc, "clusters", entry.cluster_value());
        upsert_named(&mut doc, "users", entry.user_value());
        upsert_named(&mut doc, "contexts", entry.context_value());
    }
    if let Some(current) = current_context {
        let known = doc
            .get("contexts")
            .and_then(Value::as_array)
            .is_some_and(|list| {
                list.iter()
                    .any(|c| c.get("name").and_then(Value::as_str) == Some(current))
            });
        if !known {
            return Err(KubeconfigError::UnknownCurrentContext(current.to_owned()));
        }
        doc.insert("current-context".to_owned(), json!(current));
    }
    write_text(path, &to_yaml(&Value::Object(doc))?)
}

fn check_entries(entries: &[KubeconfigEntry]) -> Result<(), KubeconfigError> {
    if entries.is_empty() {
        return Err(KubeconfigError::NoContexts);
    }
    for (i, entry) in entries.iter().enumerate() {
        if entries[..i].iter().any(|e| e.context == entry.context) {
            return Err(KubeconfigError::DuplicateContext(entry.context.clone()));
        }
    }
    Ok(())
}

fn empty_document() -> Map<String, Value> {
    let mut doc = Map::new();
    doc.insert("apiVersion".to_owned(), json!("v1"));
    doc.insert("kind".to_owned(), json!("Config"));
    doc.insert("preferences".to_owned(), json!({}));
    doc.insert("clusters".to_owned(), json!([]));
    doc.insert("users".to_owned(), json!([]));
    doc.insert("contexts".to_owned(), json!([]));
    doc
}

fn document(entries: &[KubeconfigEntry], current_context: &str) -> Result<Value, KubeconfigError> {
    check_entries(entries)?;
    if !entries.iter().any(|e| e.context == current_context) {
        return Err(KubeconfigError::UnknownCurrentContext(
            current_context.to_owned(),
        ));
    }
    let mut doc = empty_document();
    for entry in entries {
        upsert_named(&mut doc, "clusters", entry.cluster_value());
        upsert_named(&mut doc, "users", entry.user_value());
        upsert_named(&mut doc, "contexts", entry.context_value());
    }
    doc.insert("current-context".to_owned(), json!(current_context));
    Ok(Value::Object(doc))
}

/// Replaces the element of list `key` with the same `name`, or appends `item`.
fn upsert_named(doc: &mut Map<String, Value>, key: &str, item: Value) {
    let slot = doc
        .entry(key.to_owned())
        .or_insert_with(|| Value::Array(Vec::new()));
    if !slot.is_array() {
        *slot = Value::Array(Vec::new());
    }
    let Some(list) = slot.as_array_mut() else {
        return;
    };
    let name = item.get("name").cloned();
    match list
        .iter_mut()
        .find(|existing| existing.get("name") == name.as_ref())
    {
        Some(existing) => *existing = item,
        None => list.push(item),
    }
}

fn parse_existing(path: &Path, bytes: &[u8]) -> Result<Map<String, Value>, KubeconfigError> {
    let text = std::str::from_utf8(bytes).map_err(|_| KubeconfigError::ParseExisting {
        path: path.to_owned(),
        message: "not UTF-8".to_owned(),
    })?;
    let value: Value =
        serde_saphyr::from_str(text).map_err(|err| KubeconfigError::ParseExisting {
            path: path.to_owned(),
            message: err.to_string(),
        })?;
    match value {
        Value::Object(map) => Ok(map),
        other => Err(KubeconfigError::ParseExisting {
            path: path.to_owned(),
            message: format!("expected a mapping at the top level, found {other}"),
        }),
    }
}

fn to_yaml(doc: &Value) -> Result<String, KubeconfigError> {
    // Plain scalars only: the long base64 CA stays on one line, as kubectl writes it.
    let options = serde_saphyr::ser_options! { prefer_block_scalars: false };
    serde_saphyr::to_string_with_options(doc, options)
        .map_err(|err| KubeconfigError::Render(err.to_string()))
}

fn write_text(path: &Path, text: &str) -> Result<(), KubeconfigError> {
    // Like kubectl, create the directory (such as `~/.kube`) when it is missing.
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| KubeconfigError::Write {
            path: path.to_owned(),
            source,
        })?;
    }
    files::write_atomic(path, text.as_bytes(), PRIVATE_MODE).map_err(|source| {
        KubeconfigError::Write {
            path: path.to_owned(),
            source,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    const CA: &str = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";

    fn entry(name: &str, port: u16) -> KubeconfigEntry {
        KubeconfigEntry::new(
            name,
            server_url(SocketAddr::from(([127, 0, 0, 1], port))),
            CA,
            format!("token-{name}"),
        )
    }

    /// kube keeps tokens in a secret wrapper; its serializer exposes them.
    fn token_of(user: &kube::config::NamedAuthInfo) -> String {
        let value = serde_json::to_value(user.auth_info.as_ref().unwrap()).unwrap();
        value["token"].as_str().unwrap().to_owned()
    }

    #[test]
    fn written_kubeconfig_loads_with_kube_rs() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kubeconfig");
        let mut local = entry("local", 6443);
        local.namespace = Some("team-a".to_owned());
        write(&path, &[local, entry("remote", 7443)], "local").unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);

        let parsed = kube::config::Kubeconfig::read_from(&path).unwrap();
        assert_eq!(parsed.current_context.as_deref(), Some("local"));
        assert_eq!(parsed.contexts.len(), 2);
        let remote = parsed.clusters.iter().find(|c| c.name == "remote").unwrap();
        let cluster = remote.cluster.as_ref().unwrap();
        assert_eq!(cluster.server.as_deref(), Some("https://127.0.0.1:7443"));
        let ca = STANDARD
            .decode(cluster.certificate_authority_data.as_ref().unwrap())
            .unwrap();
        assert_eq!(ca, CA.as_bytes());
        let user = parsed
            .auth_infos
            .iter()
            .find(|u| u.name == "remote")
            .unwrap();
        assert_eq!(token_of(user), "token-remote");

        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let config = runtime
            .block_on(kube::Config::from_custom_kubeconfig(
                parsed,
                &kube::config::KubeConfigOptions::default(),
            ))
            .unwrap();
        assert_eq!(config.cluster_url.to_string(), "https://127.0.0.1:6443/");
        assert_eq!(config.default_namespace, "team-a");
        assert_eq!(config.root_cert.as_ref().map(Vec::len), Some(1));
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("current-context: local"), "{text}");
        assert!(
            text.contains("    certificate-authority-data: LS0t"),
            "{text}"
        );
    }

    #[test]
    fn client_certificate_users_load_with_kube_rs() {
        let assets = crate::auth::certs::TlsAssets::in_memory(&[]).unwrap();
        let mut e = KubeconfigEntry::new("cert", "https://127.0.0.1:1", assets.ca_pem(), "");
        let cert = assets
            .issue_client_certificate("jane", Some("system:masters"))
            .unwrap();
        e.client_certificate = Some(cert.clone());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kubeconfig");
        write(&path, &[e], "cert").unwrap();
        let parsed = kube::config::Kubeconfig::read_from(&path).unwrap();
        let user = serde_json::to_value(parsed.auth_infos[0].auth_info.as_ref().unwrap()).unwrap();
        assert!(user.get("token").is_none());
        let cert_data = STANDARD
            .decode(user["client-certificate-data"].as_str().unwrap())
            .unwrap();
        assert_eq!(cert_data, cert.cert_pem.as_bytes());
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let config = runtime
            .block_on(kube::Config::from_custom_kubeconfig(
                parsed,
                &kube::config::KubeConfigOptions::default(),
            ))
            .unwrap();
        assert!(config.auth_info.client_key_data.is_some());
        assert!(config.auth_info.client_certificate_data.is_some());
    }

    #[test]
    fn merge_replaces_same_names_and_keeps_others() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config");
        std::fs::write(
            &path,
            "apiVersion: v1\nkind: Config\ncurrent-context: prod\nclusters:\n- name: prod\n  cluster:\n    server: https://prod.example:443\ncontexts:\n- name: prod\n  context:\n    cluster: prod\n    user: prod\nusers:\n- name: prod\n  user:\n    token: keep-me\n",
        )
        .unwrap();
        merge_into(&path, &[entry("local", 1000)], None).unwrap();
        merge_into(&path, &[entry("local", 2000)], Some("local")).unwrap();

        let parsed = kube::config::Kubeconfig::read_from(&path).unwrap();
        assert_eq!(parsed.current_context.as_deref(), Some("local"));
        let names: Vec<_> = parsed.contexts.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["prod", "local"]);
        let local = parsed.clusters.iter().find(|c| c.name == "local").unwrap();
        assert_eq!(
            local.cluster.as_ref().unwrap().server.as_deref(),
            Some("https://127.0.0.1:2000")
        );
        let prod = parsed.auth_infos.iter().find(|u| u.name == "prod").unwrap();
        assert_eq!(token_of(prod), "keep-me");
    }

    #[test]
    fn merge_creates_missing_file_and_rejects_unknown_current_context() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing-dir").join("new");
        let err = merge_into(&path, &[entry("a", 1)], Some("b")).unwrap_err();
        assert!(matches!(err, KubeconfigError::UnknownCurrentContext(_)));
        merge_into(&path, &[entry("a", 1)], Some("a")).unwrap();
        let parsed = kube::config::Kubeconfig::read_from(&path).unwrap();
        assert_eq!(parsed.current_context.as_deref(), Some("a"));
    }

    #[test]
    fn invalid_inputs_are_errors() {
        assert!(matches!(render(&[], "x"), Err(KubeconfigError::NoContexts)));
        assert!(matches!(
            render(&[entry("a", 1), entry("a", 2)], "a"),
            Err(KubeconfigError::DuplicateContext(_))
        ));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad");
        std::fs::write(&path, "- just\n- a list\n").unwrap();
        assert!(matches!(
            merge_into(&path, &[entry("a", 1)], None),
            Err(KubeconfigError::ParseExisting { .. })
        ));
    }

    #[test]
    fn server_url_maps_unspecified_to_loopback() {
        assert_eq!(
            server_url("0.0.0.0:8443".parse().unwrap()),
            "https://127.0.0.1:8443"
        );
        assert_eq!(
            server_url("[::]:8443".parse().unwrap()),
            "https://[::1]:8443"
        );
        assert_eq!(
            server_url("127.0.0.1:9".parse().unwrap()),
            "https://127.0.0.1:9"
        );
    }
}
