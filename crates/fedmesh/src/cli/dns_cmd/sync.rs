//! `fedmesh dns sync`: computes the federation's service records from a JSON
//! file of federated Services and their shards, and writes the difference to
//! an external DNS provider, once or every `--interval` seconds.
//!
//! The file is read again every round, so whatever maintains it (a script, a
//! future controller) changes the records by rewriting it.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, bail};
use fedmesh_core::ClusterName;
use fedmesh_core::dns::{
    DEFAULT_TTL, DnsConfig, DnsIndex, DnsLabel, DomainName, Ingress, NameRecords, ServiceId,
    ServiceShards, Shard,
};
use fedmesh_dns::TsigKey;
use fedmesh_dns::providers::Provider;
use fedmesh_dns::providers::etcd::{Etcd, EtcdConfig};
use fedmesh_dns::providers::rfc2136::{Rfc2136, Rfc2136Config};
use fedmesh_dns::providers::route53::{Credentials, Route53, Route53Config};
use fedmesh_dns::providers::runner::{Backoff, Report, sync_with_retries};
use serde::Deserialize;

use super::ZoneFormArg;
use crate::cli::runtime::{self, LogArgs, say};

/// Which provider to write to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum ProviderKind {
    /// RFC 2136 dynamic update with TSIG (BIND 9, Knot, PowerDNS).
    Rfc2136,
    /// AWS Route 53.
    Route53,
    /// CoreDNS's etcd backend (SkyDNS records).
    Etcd,
}

/// Arguments of `fedmesh dns sync`.
#[derive(Debug, clap::Args)]
pub(crate) struct SyncArgs {
    /// The DNS provider.
    #[arg(long, value_enum)]
    provider: ProviderKind,
    /// JSON file of the federated Services and their shards (format in docs/dns.md).
    #[arg(long, value_name = "FILE")]
    services: PathBuf,
    /// The federation's name: the third label of every name, and the owner
    /// recorded in the ownership TXT records.
    #[arg(long, value_name = "NAME")]
    federation: String,
    /// The provider's zone to write into (`example.com`).
    #[arg(long, value_name = "ZONE")]
    zone: String,
    /// The federation's DNS suffix, if not the zone itself (a name inside it).
    #[arg(long, value_name = "SUFFIX")]
    dns_suffix: Option<String>,
    /// TTL of the records, unless a Service sets its own.
    #[arg(long, value_name = "SECONDS", default_value_t = DEFAULT_TTL)]
    ttl: u32,
    /// Form of the zone names.
    #[arg(long, value_enum, default_value = "zone-only")]
    zone_form: ZoneFormArg,
    /// Run one round and exit (status 0 when it succeeded).
    #[arg(long)]
    once: bool,
    /// Seconds between rounds when not `--once`.
    #[arg(long, value_name = "SECONDS", default_value_t = 30)]
    interval: u64,
    /// Tries per round after transient errors (server down, records changed
    /// meanwhile), waiting 1 s, 2 s, 4 s ... (at most 30 s) in between.
    #[arg(long, value_name = "N", default_value_t = 5)]
    attempts: u32,
    /// rfc2136: the primary server's address (`127.0.0.1:53`).
    #[arg(long, value_name = "ADDR", help_heading = "RFC 2136")]
    server: Option<SocketAddr>,
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
    #[command(flatten)]
    log: LogArgs,
}

/// The services file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ServicesFile {
    services: Vec<ServiceEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ServiceEntry {
    namespace: String,
    name: String,
    #[serde(default)]
    ttl: Option<u32>,
    shards: Vec<ShardEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ShardEntry {
    cluster: String,
    region: String,
    zones: Vec<String>,
    /// Addresses or hostnames, as in `status.loadBalancer.ingress`.
    ingress: Vec<String>,
    healthy: bool,
}

/// Reads the services file into checked shards.
fn read_services(path: &Path) -> anyhow::Result<Vec<ServiceShards>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let file: ServicesFile = serde_json::from_str(&text)
        .with_context(|| format!("{}: not a services file", path.display()))?;
    file.services
        .into_iter()
        .map(|s| {
            let what = format!("{}: Service {}/{}", path.display(), s.namespace, s.name);
            let shards = s
                .shards
                .into_iter()
                .map(|shard| {
                    Ok(Shard {
                        cluster: ClusterName::new(&shard.cluster)
                            .with_context(|| format!("{what}: cluster {:?}", shard.cluster))?,
                        region: DnsLabel::new("region", &shard.region)?,
                        zones: shard
                            .zones
                            .iter()
                            .map(|z| DnsLabel::new("zone", z))
                            .collect::<Result<_, _>>()?,
                        ingress: shard
                            .ingress
                            .iter()
                            .map(|i| match i.parse::<IpAddr>() {
                                Ok(ip) => Ok(Ingress::Ip(ip)),
                                Err(_) => DomainName::new("load-balancer hostname", i)
                                    .map(Ingress::Hostname),
                            })
                            .collect::<Result<_, _>>()?,
                        healthy: shard.healthy,
                    })
                })
                .collect::<anyhow::Result<_>>()
                .with_context(|| what.clone())?;
            Ok(ServiceShards {
                id: ServiceId {
                    namespace: DnsLabel::new("namespace", &s.namespace).context(what.clone())?,
                    name: DnsLabel::new("Service name", &s.name).context(what)?,
                },
                ttl: s.ttl,
                shards,
            })
        })
        .collect()
}

impl SyncArgs {
    pub(crate) fn run(self) -> anyhow::Result<ExitCode> {
        self.log.init("info")?;
        let zone = DomainName::new("zone", &self.zone)?;
        let suffix = match &self.dns_suffix {
            Some(s) => DomainName::new("DNS suffix", s)?,
            None => zone.clone(),
        };
        let mut config = DnsConfig::new(DnsLabel::new("federation", &self.federation)?, suffix);
        config.ttl = self.ttl;
        config.zone_form = self.zone_form.into();
        let round = Round {
            services: self.services.clone(),
            config,
            zone: zone.clone(),
            backoff: Backoff {
                attempts: self.attempts,
                ..Backoff::default()
            },
            once: self.once,
            interval: Duration::from_secs(self.interval.max(1)),
        };
        match self.provider {
            ProviderKind::Rfc2136 => {
                let Some(server) = self.server else {
                    bail!("--provider rfc2136 needs --server ADDR");
                };
                let key = match (&self.tsig_key_name, &self.tsig_secret) {
                    (Some(name), Some(secret)) => Some(TsigKey::hmac_sha256(name, secret)?),
                    (None, None) => None,
                    _ => bail!("--tsig-key-name and --tsig-secret go together"),
                };
                round.run(Rfc2136::new(Rfc2136Config {
                    server,
                    zones: vec![zone],
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
                round.run(Route53::new(Route53Config {
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
                round.run(Etcd::new(EtcdConfig {
                    endpoint: self.etcd_endpoint,
                    prefix: self.etcd_prefix,
                    zones: vec![zone],
                    user,
                })?)
            }
        }
    }
}

/// What every round needs, whatever the provider.
struct Round {
    services: PathBuf,
    config: DnsConfig,
    zone: DomainName,
    backoff: Backoff,
    once: bool,
    interval: Duration,
}

impl Round {
    /// The records the services file asks for now. A Service whose records
    /// cannot be made (a name too long) is reported and left out.
    fn desired(&self) -> anyhow::Result<Vec<NameRecords>> {
        let mut index = DnsIndex::new(self.config.clone());
        for service in read_services(&self.services)? {
            if let Err(error) = index.upsert(&service) {
                tracing::warn!(%error, "Service left out of DNS");
            }
        }
        Ok(index.records().cloned().collect())
    }

    async fn once<P: Provider>(&self, provider: &P) -> anyhow::Result<Report> {
        let desired = self.desired()?;
        let owner = self.config.federation.as_str();
        let report = sync_with_retries(provider, &self.zone, owner, &desired, self.backoff).await?;
        for skipped in &report.skipped {
            tracing::warn!("skipped {skipped}");
        }
        for change in report.applied.changes() {
            say(&format!("{}: {change}", provider.name()));
        }
        say(&format!(
            "{}: zone {}: {} changes applied ({} attempts), {} names skipped",
            provider.name(),
            self.zone,
            report.applied.len(),
            report.attempts,
            report.skipped.len()
        ));
        Ok(report)
    }

    fn run<P: Provider>(self, provider: P) -> anyhow::Result<ExitCode> {
        runtime::block_on(async move {
            if self.once {
                self.once(&provider).await?;
                return Ok(ExitCode::SUCCESS);
            }
            let stop = runtime::shutdown_signal();
            tokio::pin!(stop);
            loop {
                if let Err(error) = self.once(&provider).await {
                    tracing::error!("{error:#}");
                }
                tokio::select! {
                    () = tokio::time::sleep(self.interval) => {}
                    () = &mut stop => return Ok(ExitCode::SUCCESS),
                }
            }
        })?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> anyhow::Result<Vec<ServiceShards>> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("services.json");
        std::fs::write(&path, text)?;
        read_services(&path)
    }

    #[test]
    fn services_file_is_read_and_bad_entries_named() {
        let services = read(
            r#"{"services": [{"namespace": "ns", "name": "web", "ttl": 60, "shards": [
                {"cluster": "a", "region": "r1", "zones": ["z1"],
                 "ingress": ["10.0.0.1", "lb.example.net"], "healthy": true}]}]}"#,
        )
        .unwrap();
        assert_eq!(services[0].ttl, Some(60));
        assert_eq!(
            services[0].shards[0].ingress,
            [
                Ingress::Ip("10.0.0.1".parse().unwrap()),
                Ingress::Hostname(DomainName::new("h", "lb.example.net").unwrap())
            ]
        );
        let err = read(
            r#"{"services": [{"namespace": "ns", "name": "web", "shards": [
                {"cluster": "a", "region": "r 1", "zones": [], "ingress": [], "healthy": true}]}]}"#,
        )
        .unwrap_err();
        let message = format!("{err:#}");
        assert!(
            message.contains("Service ns/web") && message.contains("region"),
            "{message}"
        );
        assert!(format!("{:#}", read("{}").unwrap_err()).contains("not a services file"));
    }
}
