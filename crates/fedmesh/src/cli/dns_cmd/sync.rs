//! `fedmesh dns sync`: computes the federation's service records from a JSON
//! file of federated Services and their shards, and writes the difference to
//! an external DNS provider, once or every `--interval` seconds.
//!
//! The file is read again every round, so whatever maintains it (a script)
//! changes the records by rewriting it. `fedmesh dns serve --provider` does
//! the same from the federation's live state.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use fedmesh_core::FederatedKey;
use fedmesh_core::dns::{DnsConfig, DnsIndex, DomainName, NameRecords};
use fedmesh_core::federation::ServiceShards;
use fedmesh_dns::providers::Provider;
use fedmesh_dns::providers::runner::{Backoff, Report, sync_with_retries};
use serde::Deserialize;

use super::RecordArgs;
use super::provider::{AnyProvider, ProviderArgs, ProviderKind};
use crate::cli::runtime::{self, LogArgs, say};

/// Arguments of `fedmesh dns sync`.
#[derive(Debug, clap::Args)]
pub(crate) struct SyncArgs {
    /// The DNS provider.
    #[arg(long, value_enum)]
    provider: ProviderKind,
    /// JSON file of the federated Services and their shards (format in docs/dns.md).
    #[arg(long, value_name = "FILE")]
    services: PathBuf,
    #[command(flatten)]
    records: RecordArgs,
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
    #[command(flatten)]
    settings: ProviderArgs,
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
    /// In the form of the shards annotation the federation controller writes.
    shards: serde_json::Value,
}

/// Reads the services file into shards, with each Service's TTL.
fn read_services(path: &Path) -> anyhow::Result<Vec<(ServiceShards, Option<u32>)>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let file: ServicesFile = serde_json::from_str(&text)
        .with_context(|| format!("{}: not a services file", path.display()))?;
    file.services
        .into_iter()
        .map(|s| {
            let key = FederatedKey::new(&s.namespace, &s.name);
            let shards = ServiceShards::from_json(key.clone(), s.shards)
                .with_context(|| format!("{}: Service {key}", path.display()))?;
            Ok((shards, s.ttl))
        })
        .collect()
}

impl SyncArgs {
    pub(crate) fn run(self) -> anyhow::Result<ExitCode> {
        self.log.init("info")?;
        let (config, zone) = self.records.config()?;
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
        round.run(self.settings.build(self.provider, &zone)?)
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
        for (service, ttl) in read_services(&self.services)? {
            if let Err(error) = index.upsert(&service, ttl) {
                tracing::warn!(%error, "Service left out of DNS");
            }
        }
        Ok(index.records().cloned().collect())
    }

    async fn once(&self, provider: &AnyProvider) -> anyhow::Result<Report> {
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

    fn run(self, provider: AnyProvider) -> anyhow::Result<ExitCode> {
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
    use fedmesh_core::federation::Health;

    use super::*;

    fn read(text: &str) -> anyhow::Result<Vec<(ServiceShards, Option<u32>)>> {
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
                 "addresses": ["10.0.0.1", "lb.example.net"], "healthy": true}]}]}"#,
        )
        .unwrap();
        let (shards, ttl) = &services[0];
        assert_eq!(*ttl, Some(60));
        assert_eq!(shards.shards[0].health, Health::Healthy);
        assert_eq!(
            shards.shards[0].addresses.to_strings(),
            ["10.0.0.1", "lb.example.net"]
        );
        let err = read(
            r#"{"services": [{"namespace": "ns", "name": "web", "shards": [
                {"cluster": "a", "health": "Sick"}]}]}"#,
        )
        .unwrap_err();
        let message = format!("{err:#}");
        assert!(
            message.contains("Service ns/web") && message.contains("Sick"),
            "{message}"
        );
        assert!(format!("{:#}", read("{}").unwrap_err()).contains("not a services file"));
    }
}
