//! The external DNS provider's writer, live: on every change of the records
//! (and at least every `resync`, to repair what someone changed in the
//! provider) one round of `fedmesh_dns`'s sync (read the zone, plan the
//! smallest change set over the names fedmesh owns, apply it), by the leader
//! only. A failed round is tried again after 1 s, 2 s, 4 s ... (at most
//! `backoff.max`); each failure counts in `fedmesh_dns_provider_syncs`
//! (`result="failed"`) and sets `fedmesh_dns_provider_up` to 0.
//!
//! What a kubectl user sees of an outage:
//! - a Warning Event `DNSProviderFailed` on the writer's Lease (in the
//!   controller's namespace) when rounds start failing, again every
//!   [`OUTAGE_REPEAT`] while they keep failing, and a Normal Event
//!   `DNSProviderRecovered` when a round succeeds again (`Outage`). The
//!   Lease, because an outage is the writer's, not any one Service's: with
//!   nothing changing, every Service's records are still at the provider as
//!   last written, and an Event on each of thousands of Services would flood
//!   the Events for one fault. The Lease exists exactly as long as a writer
//!   does and names the replica holding it (the one writing).
//! - every federated Service whose records are waiting to be written gets
//!   one Warning Event per outage and the status condition [`CONDITION`]
//!   `False`, set `True` again by the round that writes its records.

use std::collections::BTreeSet;
use std::time::Duration;

use fedmesh_core::FederatedKey;
use fedmesh_core::dns::DomainName;
use fedmesh_dns::providers::Provider;
use fedmesh_dns::providers::runner::{Backoff, sync_once};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::Records;
use crate::federation::status::{self, Write};
use crate::runtime::Tasks;
use crate::runtime::claim::Claim;
use crate::runtime::events::Warning;
use crate::{ControllerConfig, Metrics};

/// The condition on a federated Service's status that says whether its DNS
/// records reached the external provider; set only once a write failed.
pub const CONDITION: &str = "DNSRecordsWritten";

/// The reason of the Warnings that the provider fails (on the Lease and on
/// the Services waiting for their records).
const PROVIDER_FAILED: &str = "DNSProviderFailed";

/// How often a lasting outage is told again on the Lease: within the hour
/// an Event lives by default (kube-apiserver `--event-ttl`), so a long
/// outage stays in `kubectl get events`, without an Event per retry.
pub const OUTAGE_REPEAT: Duration = Duration::from_secs(30 * 60);

/// The condition [`CONDITION`] for one Service.
fn condition(key: &FederatedKey, written: bool, message: &str) -> Write {
    Write::Condition {
        service: key.clone(),
        condition: Condition {
            type_: CONDITION.into(),
            status: if written { "True" } else { "False" }.into(),
            reason: if written { "Written" } else { "ProviderFailed" }.into(),
            message: message.chars().take(1000).collect(),
            last_transition_time: Time(Timestamp::now()),
            observed_generation: None,
        },
    }
}

/// When the writer's outage is told on its Lease: once when rounds start
/// failing and again every `repeat` while they fail; its end once.
#[derive(Debug)]
struct Outage {
    repeat: Duration,
    /// When the outage was last told (`None`: no outage told).
    told: Option<Instant>,
}

impl Outage {
    fn new(repeat: Duration) -> Self {
        Self { repeat, told: None }
    }

    /// A round failed at `now`: whether to tell.
    fn failed(&mut self, now: Instant) -> bool {
        if self
            .told
            .is_some_and(|told| now.saturating_duration_since(told) < self.repeat)
        {
            return false;
        }
        self.told = Some(now);
        true
    }

    /// A round succeeded: whether an outage was told, so its end is told.
    fn recovered(&mut self) -> bool {
        self.told.take().is_some()
    }
}

/// What the writer needs besides the provider.
#[derive(Debug, Clone)]
pub struct ProviderSettings {
    /// The provider's zone to write into.
    pub zone: DomainName,
    /// The owner recorded in the ownership TXT records (the federation).
    pub owner: String,
    /// Waits between failed rounds (`attempts` is not used: a live writer
    /// keeps trying).
    pub backoff: Backoff,
    /// A round at least this often, even without a change.
    pub resync: Duration,
}

/// Starts the writer of `records` into `provider` (and the writer of the
/// Services' [`CONDITION`], through `federation`); both write only while
/// `claim` is current. Outages are told on the Lease `config` names.
#[allow(clippy::too_many_arguments)]
pub fn start<P: Provider + Send + Sync + 'static>(
    tasks: &mut Tasks,
    federation: kube::Client,
    config: &ControllerConfig,
    provider: P,
    records: Records,
    settings: ProviderSettings,
    claim: Claim,
    metrics: Metrics,
    warnings: mpsc::Sender<Warning>,
) {
    let (conditions, inputs) = mpsc::unbounded_channel();
    tasks.spawn(
        "dns provider conditions",
        status::run(
            federation,
            inputs,
            claim.clone(),
            settings.backoff.initial,
            settings.backoff.max,
        ),
    );
    let lease = Lease {
        namespace: config.namespace.clone(),
        name: config.lease_name.clone(),
    };
    let writer = Writer {
        provider,
        records,
        settings,
        lease,
        metrics,
        warnings,
        conditions,
    };
    tasks.spawn("dns provider", writer.run(claim));
}

/// The Lease that stands for the writer.
struct Lease {
    namespace: String,
    name: String,
}

impl Lease {
    /// The Warning that the provider fails.
    fn failed(&self, note: &str) -> Warning {
        Warning::on_lease(&self.namespace, &self.name, PROVIDER_FAILED, note)
    }
}

/// The provider's writer: `records` to `provider`, outages told on `lease`
/// and the waiting Services (their conditions go to `conditions`).
struct Writer<P> {
    provider: P,
    records: Records,
    settings: ProviderSettings,
    lease: Lease,
    metrics: Metrics,
    warnings: mpsc::Sender<Warning>,
    conditions: mpsc::UnboundedSender<Write>,
}

impl<P: Provider> Writer<P> {
    /// Writes while `claim` is current, until the task is dropped.
    async fn run(self, mut claim: Claim) {
        let name = self.provider.name();
        let mut changes = self.records.changes();
        let mut failures: u32 = 0;
        let mut outage = Outage::new(OUTAGE_REPEAT);
        // Services told about the current outage.
        let mut warned: BTreeSet<FederatedKey> = BTreeSet::new();
        let mut last_skipped = String::new();
        loop {
            if !claim.is_current() {
                claim.changed().await;
                continue;
            }
            changes.borrow_and_update();
            let (desired, pending) = self.records.snapshot();
            let outcome = sync_once(
                &self.provider,
                &self.settings.zone,
                &self.settings.owner,
                &desired,
            )
            .await;
            let wait = match outcome {
                Ok(report) => {
                    self.metrics
                        .count_dns_sync(name, true, report.applied.len());
                    if outage.recovered() {
                        let note = format!(
                            "{name} (zone {}) takes the DNS records again, after {failures} failed rounds",
                            self.settings.zone
                        );
                        tracing::info!(provider = name, "{note}");
                        let _ = self
                            .warnings
                            .try_send(self.lease.failed("").over("DNSProviderRecovered", &note));
                    }
                    failures = 0;
                    let message = format!("written to {name} (zone {})", self.settings.zone);
                    for key in &warned {
                        let _ = self.conditions.send(condition(key, true, &message));
                    }
                    warned.clear();
                    self.records.written(&pending);
                    for change in report.applied.changes() {
                        tracing::info!(provider = name, "{change}");
                    }
                    let skipped: Vec<String> =
                        report.skipped.iter().map(|s| s.to_string()).collect();
                    let skipped = skipped.join("; ");
                    if !skipped.is_empty() && skipped != last_skipped {
                        tracing::warn!(provider = name, "names left alone: {skipped}");
                    }
                    last_skipped = skipped;
                    None
                }
                Err(error) => {
                    failures += 1;
                    self.metrics.count_dns_sync(name, false, 0);
                    let delay = self.settings.backoff.delay(failures);
                    tracing::warn!(
                        provider = name,
                        attempt = failures,
                        "writing the DNS records failed; retrying in {delay:?}: {error}"
                    );
                    if outage.failed(Instant::now()) {
                        let note = format!(
                            "writing the DNS records to {name} (zone {}) failed: {error}; the records there stay as last written, and this writer retries with backoff (up to {:?}) and says when {name} takes them again",
                            self.settings.zone, self.settings.backoff.max
                        );
                        let _ = self.warnings.try_send(self.lease.failed(&note));
                    }
                    let note = format!(
                        "its DNS records could not be written to {name} (zone {}): {error}; retrying with backoff",
                        self.settings.zone
                    );
                    for key in pending.difference(&warned) {
                        let _ = self.warnings.try_send(Warning::on_service(
                            key,
                            PROVIDER_FAILED,
                            &note,
                        ));
                        let _ = self.conditions.send(condition(key, false, &note));
                    }
                    warned.extend(pending);
                    Some(delay)
                }
            };
            match wait {
                // Failing: the next try after the backoff, whatever changes.
                Some(delay) => tokio::time::sleep(delay).await,
                None => {
                    tokio::select! {
                        () = tokio::time::sleep(self.settings.resync) => {}
                        changed = changes.changed() => {
                            if changed.is_err() {
                                // The feed is gone with its task, which says so.
                                std::future::pending::<()>().await;
                            }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_outage_is_told_once_then_every_repeat_and_its_end_once() {
        let repeat = Duration::from_secs(60);
        let mut outage = Outage::new(repeat);
        let t0 = Instant::now();
        assert!(!outage.recovered(), "nothing told, nothing to end");
        assert!(outage.failed(t0));
        for s in [1, 2, 4, 8, 30, 59] {
            assert!(!outage.failed(t0 + Duration::from_secs(s)), "retry at {s}s");
        }
        assert!(outage.failed(t0 + repeat), "told again after {repeat:?}");
        assert!(!outage.failed(t0 + repeat + Duration::from_secs(1)));
        assert!(outage.recovered());
        assert!(!outage.recovered(), "its end is told once");
        // The next outage is told at once.
        assert!(outage.failed(t0 + repeat + Duration::from_secs(2)));
    }
}
