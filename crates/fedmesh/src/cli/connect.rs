//! Reaching a cluster from a kubeconfig file: the client, and the connection
//! details (server URL, CA) that `join` copies into the kubeconfig it writes
//! for a remote.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use base64::Engine as _;
use kube::config::{KubeConfigOptions, Kubeconfig};

/// How long a first request may take before a cluster counts as unreachable.
const REACH_TIMEOUT: Duration = Duration::from_secs(10);

/// One cluster as a kubeconfig context selects it.
#[derive(Clone)]
pub(crate) struct Cluster {
    /// What messages call the cluster: its context name.
    pub(crate) label: String,
    /// A client acting as the kubeconfig's user.
    pub(crate) client: kube::Client,
    /// How to reach the API server, without any credentials.
    pub(crate) endpoint: Endpoint,
    /// Whether the kubeconfig's user presents any credentials. A server that
    /// answers a user without any does not authenticate at all.
    pub(crate) has_credentials: bool,
}

/// The credential-free part of a kubeconfig cluster entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Endpoint {
    /// The API server URL.
    pub(crate) server: String,
    /// The CA bundle (PEM, base64 as kubeconfigs hold it).
    pub(crate) certificate_authority_data: Option<String>,
    /// Whether TLS verification is off (carried over, never introduced).
    pub(crate) insecure_skip_tls_verify: bool,
    /// The name to verify the serving certificate against, when not the host.
    pub(crate) tls_server_name: Option<String>,
}

impl Cluster {
    /// Loads `context` (or the current context) of the kubeconfig at `path`.
    pub(crate) async fn from_file(path: &Path, context: Option<&str>) -> anyhow::Result<Self> {
        let kubeconfig = Kubeconfig::read_from(path)
            .with_context(|| format!("cannot read kubeconfig {}", path.display()))?;
        Self::from_kubeconfig(kubeconfig, path.parent(), context)
            .await
            .with_context(|| format!("kubeconfig {}", path.display()))
    }

    /// Loads `context` (or the current context) of the kubeconfig at `path`
    /// and checks that its API server answers.
    pub(crate) async fn connect(path: &Path, context: Option<&str>) -> anyhow::Result<Self> {
        let cluster = Self::from_file(path, context).await?;
        cluster.check_reachable().await?;
        Ok(cluster)
    }

    /// Loads `context` (or the current one) of a parsed kubeconfig; relative
    /// file references resolve against `base_dir`.
    pub(crate) async fn from_kubeconfig(
        kubeconfig: Kubeconfig,
        base_dir: Option<&Path>,
        context: Option<&str>,
    ) -> anyhow::Result<Self> {
        let label = context
            .map(str::to_owned)
            .or_else(|| kubeconfig.current_context.clone())
            .context("no --context given and the kubeconfig has no current-context")?;
        let named = kubeconfig
            .contexts
            .iter()
            .find(|c| c.name == label)
            .and_then(|c| c.context.clone())
            .with_context(|| format!("the kubeconfig has no context {label:?}"))?;
        let cluster = kubeconfig
            .clusters
            .iter()
            .find(|c| c.name == named.cluster)
            .and_then(|c| c.cluster.clone())
            .with_context(|| {
                format!(
                    "context {label:?} names cluster {:?}, which the kubeconfig does not define",
                    named.cluster
                )
            })?;
        let server = cluster
            .server
            .clone()
            .with_context(|| format!("cluster {:?} has no server URL", named.cluster))?;
        let certificate_authority_data = match (
            &cluster.certificate_authority_data,
            &cluster.certificate_authority,
        ) {
            (Some(data), _) => Some(data.clone()),
            (None, Some(file)) => {
                let file = resolve(base_dir, file);
                let pem = std::fs::read(&file).with_context(|| {
                    format!("cannot read certificate-authority {}", file.display())
                })?;
                Some(base64::engine::general_purpose::STANDARD.encode(pem))
            }
            (None, None) => None,
        };
        let has_credentials = named
            .user
            .as_ref()
            .and_then(|user| kubeconfig.auth_infos.iter().find(|a| &a.name == user))
            .and_then(|a| a.auth_info.as_ref())
            .is_some_and(|a| {
                a.token.is_some()
                    || a.token_file.is_some()
                    || a.client_certificate.is_some()
                    || a.client_certificate_data.is_some()
                    || a.username.is_some()
                    || a.exec.is_some()
                    || a.auth_provider.is_some()
            });
        let options = KubeConfigOptions {
            context: Some(label.clone()),
            ..KubeConfigOptions::default()
        };
        let config = kube::Config::from_custom_kubeconfig(kubeconfig, &options)
            .await
            .with_context(|| format!("cannot use context {label:?}"))?;
        let client = kube::Client::try_from(config)
            .with_context(|| format!("cannot build a client for context {label:?}"))?;
        Ok(Cluster {
            label,
            client,
            endpoint: Endpoint {
                server,
                certificate_authority_data,
                insecure_skip_tls_verify: cluster.insecure_skip_tls_verify.unwrap_or(false),
                tls_server_name: cluster.tls_server_name.clone(),
            },
            has_credentials,
        })
    }

    /// Checks that the API server answers, so that a wrong address fails now
    /// with a message naming it rather than later as a retry loop.
    pub(crate) async fn check_reachable(&self) -> anyhow::Result<()> {
        check_reachable(
            &self.client,
            &format!("{} ({})", self.label, self.endpoint.server),
        )
        .await
    }
}

/// Asks `client`'s API server for its version, bounded by [`REACH_TIMEOUT`].
pub(crate) async fn check_reachable(client: &kube::Client, what: &str) -> anyhow::Result<()> {
    match tokio::time::timeout(REACH_TIMEOUT, client.apiserver_version()).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(error)) => Err(anyhow::Error::new(error))
            .with_context(|| format!("cannot reach the Kubernetes API of {what}")),
        Err(_) => anyhow::bail!(
            "cannot reach the Kubernetes API of {what}: no answer within {}s",
            REACH_TIMEOUT.as_secs()
        ),
    }
}

fn resolve(base_dir: Option<&Path>, file: &str) -> PathBuf {
    let path = PathBuf::from(file);
    match base_dir {
        Some(dir) if path.is_relative() => dir.join(path),
        _ => path,
    }
}
