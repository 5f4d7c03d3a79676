//! The external DNS providers' settings, shared by `fedmesh dns sync`,
//! `fedmesh dns serve --provider` and `fedmesh federation serve
//! --dns-provider`, and the provider they make.

use std::net::SocketAddr;

use anyhow::bail;
use fedmesh_core::dns::DomainName;
use fedmesh_dns::TsigKey;
use fedmesh_dns::providers::etcd::{Etcd, EtcdConfig};
use fedmesh_dns::providers::rfc2136::{Rfc2136, Rfc2136Config};
use fedmesh_dns::providers::route53::{Credentials, Route53, Route53Config};
use fedmesh_dns::providers::{ChangeSet, Provider, ProviderError, RecordSet, Zone};

/// Which provider to write to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum ProviderKind {
    /// RFC 2136 dynamic update with TSIG (BIND 9, Knot, PowerDNS).
    Rfc2136,
    /// AWS Route 53.
    Route53,
    /// CoreDNS's etcd backend (SkyDNS records).
    Etcd,
}

/// Each provider's settings (only the chosen provider's are read).
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct ProviderArgs {
    /// rfc2136: the primary server's address (`127.0.0.1:53`).
    #[arg(long, value_name = "ADDR", help_heading = "RFC 2136")]
    pub(crate) server: Option<SocketAddr>,
    /// rfc2136: TSIG key name (HMAC-SHA256), as in the server's `key` statement.
    #[arg(long, value_name = "NAME", help_heading = "RFC 2136")]
    tsig_key_name: Option<String>,
    /// rfc2136: TSIG secret (base64).
    #[arg(
        long,
        value_name = "BASE64",
        env = "FEDMESH_TSIG_SECRET",
        hide_env_values = true,
        help_heading = "RFC 2136"
    )]
    tsig_secret: Option<String>,
    /// route53: the API's URL.
    #[arg(
        long,
        value_name = "URL",
        default_value = "https://route53.amazonaws.com",
        help_heading = "Route 53"
    )]
    route53_endpoint: String,
    /// route53: the region requests are signed for.
    #[arg(
        long,
        value_name = "REGION",
        default_value = "us-east-1",
        help_heading = "Route 53"
    )]
    aws_region: String,
    /// route53: use this hosted zone ID (when a public and a private zone share the name).
    #[arg(long, value_name = "ID", help_heading = "Route 53")]
    hosted_zone_id: Option<String>,
    /// route53: access key ID.
    #[arg(
        long,
        env = "AWS_ACCESS_KEY_ID",
        value_name = "ID",
        help_heading = "Route 53"
    )]
    aws_access_key_id: Option<String>,
    /// route53: secret access key.
    #[arg(
        long,
        env = "AWS_SECRET_ACCESS_KEY",
        hide_env_values = true,
        value_name = "KEY",
        help_heading = "Route 53"
    )]
    aws_secret_access_key: Option<String>,
    /// route53: session token of temporary credentials.
    #[arg(
        long,
        env = "AWS_SESSION_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN",
        help_heading = "Route 53"
    )]
    aws_session_token: Option<String>,
    /// etcd: client URL.
    #[arg(
        long,
        value_name = "URL",
        default_value = "http://127.0.0.1:2379",
        help_heading = "etcd"
    )]
    etcd_endpoint: String,
    /// etcd: key prefix CoreDNS reads (its `path`).
    #[arg(
        long,
        value_name = "PATH",
        default_value = "/skydns",
        help_heading = "etcd"
    )]
    etcd_prefix: String,
    /// etcd: user name, when etcd has authentication on.
    #[arg(long, value_name = "USER", help_heading = "etcd")]
    etcd_user: Option<String>,
    /// etcd: password of `--etcd-user`.
    #[arg(
        long,
        env = "ETCD_PASSWORD",
        hide_env_values = true,
        value_name = "PASSWORD",
        help_heading = "etcd"
    )]
    etcd_password: Option<String>,
}

/// One of the providers, chosen at run time.
pub(crate) enum AnyProvider {
    /// RFC 2136.
    Rfc2136(Rfc2136),
    /// Route 53.
    Route53(Route53),
    /// CoreDNS's etcd.
    Etcd(Etcd),
}

impl Provider for AnyProvider {
    fn name(&self) -> &'static str {
        match self {
            AnyProvider::Rfc2136(p) => p.name(),
            AnyProvider::Route53(p) => p.name(),
            AnyProvider::Etcd(p) => p.name(),
        }
    }

    async fn zones(&self) -> Result<Vec<Zone>, ProviderError> {
        match self {
            AnyProvider::Rfc2136(p) => p.zones().await,
            AnyProvider::Route53(p) => p.zones().await,
            AnyProvider::Etcd(p) => p.zones().await,
        }
    }

    async fn records(&self, zone: &Zone) -> Result<Vec<RecordSet>, ProviderError> {
        match self {
            AnyProvider::Rfc2136(p) => p.records(zone).await,
            AnyProvider::Route53(p) => p.records(zone).await,
            AnyProvider::Etcd(p) => p.records(zone).await,
        }
    }

    async fn apply(&self, zone: &Zone, changes: &ChangeSet) -> Result<(), ProviderError> {
        match self {
            AnyProvider::Rfc2136(p) => p.apply(zone, changes).await,
            AnyProvider::Route53(p) => p.apply(zone, changes).await,
            AnyProvider::Etcd(p) => p.apply(zone, changes).await,
        }
    }
}

impl ProviderArgs {
    /// The provider `kind` writing into `zone`, with these settings.
    pub(crate) fn build(
        self,
        kind: ProviderKind,
        zone: &DomainName,
    ) -> anyhow::Result<AnyProvider> {
        Ok(match kind {
            ProviderKind::Rfc2136 => {
                let Some(server) = self.server else {
                    bail!("--provider rfc2136 needs --server ADDR");
                };
                let key = match (&self.tsig_key_name, &self.tsig_secret) {
                    (Some(name), Some(secret)) => Some(TsigKey::hmac_sha256(name, secret)?),
                    (None, None) => None,
                    _ => bail!("--tsig-key-name and --tsig-secret go together"),
                };
                AnyProvider::Rfc2136(Rfc2136::new(Rfc2136Config {
                    server,
                    zones: vec![zone.clone()],
                    key,
                }))
            }
            ProviderKind::Route53 => {
                let (Some(id), Some(secret)) = (self.aws_access_key_id, self.aws_secret_access_key)
                else {
                    bail!(
                        "--provider route53 needs AWS credentials: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or --aws-access-key-id, --aws-secret-access-key)"
                    );
                };
                AnyProvider::Route53(Route53::new(Route53Config {
                    endpoint: self.route53_endpoint,
                    region: self.aws_region,
                    credentials: Credentials {
                        access_key_id: id,
                        secret_access_key: secret,
                        session_token: self.aws_session_token,
                    },
                    zone_id: self.hosted_zone_id,
                })?)
            }
            ProviderKind::Etcd => {
                let user = match (self.etcd_user, self.etcd_password) {
                    (Some(user), Some(password)) => Some((user, password)),
                    (None, None) => None,
                    _ => bail!("--etcd-user and --etcd-password (ETCD_PASSWORD) go together"),
                };
                AnyProvider::Etcd(Etcd::new(EtcdConfig {
                    endpoint: self.etcd_endpoint,
                    prefix: self.etcd_prefix,
                    zones: vec![zone.clone()],
                    user,
                })?)
            }
        })
    }
}
