//! The external DNS provider's writer, live: on every change of the records
//! (and at least every `resync`, to repair what someone changed in the
//! provider) one round of `fedmesh_dns`'s sync (read the zone, plan the
//! smallest change set over the names fedmesh owns, apply it), by the leader
//! only. A failed round is tried again after 1 s, 2 s, 4 s ... (at most
//! `backoff.max`); each failure counts in `fedmesh_dns_provider_syncs`
//! (`result="failed"`) and sets `fedmesh_dns_provider_up` to 0, and every
//! federated Service whose records are waiting to be written gets one
//! Warning Event per outage and the status condition [`CONDITION`] `False`,
//! set `True` again by the round that writes its records.

use std::collections::BTreeSet;
use std::time::Duration;

use fedmesh_core::FederatedKey;
use fedmesh_core::dns::DomainName;
use fedmesh_dns::providers::Provider;
use fedmesh_dns::providers::runner::{Backoff, sync_once};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams};
use tokio::sync::mpsc;

use super::Records;
use crate::Metrics;
use crate::runtime::claim::Claim;
use crate::runtime::errors::chain;
use crate::runtime::events::Warning;

/// The condition on a federated Service's status that says whether its DNS
/// records reached the external provider; set only once a write failed.
pub const CONDITION: &str = "DNSRecordsWritten";

/// Sets [`CONDITION`] on the federated Service `key` (a merge patch of
/// `status.conditions`: fedmesh is the only writer of a federated
/// Service's conditions).
async fn set_condition(
    federation: &kube::Client,
    key: &FederatedKey,
    written: bool,
    message: &str,
) {
    let condition = Condition {
        type_: CONDITION.into(),
        status: if written { "True" } else { "False" }.into(),
        reason: if written { "Written" } else { "ProviderFailed" }.into(),
        message: message.chars().take(1000).collect(),
        last_transition_time: Time(Timestamp::now()),
        observed_generation: None,
    };
    let patch = serde_json::json!({"status": {"conditions": [condition]}});
    let api = Api::<Service>::namespaced(federation.clone(), &key.namespace);
    if let Err(error) = api
        .patch_status(&key.name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        tracing::warn!(service = %key, "cannot set the {CONDITION} condition: {}", chain(&error));
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

/// Writes `records` to `provider` until the task is dropped; conditions
/// are written through `federation`.
pub async fn run<P: Provider>(
    federation: kube::Client,
    provider: P,
    records: Records,
    settings: ProviderSettings,
    mut claim: Claim,
    metrics: Metrics,
    warnings: mpsc::Sender<Warning>,
) {
    let name = provider.name();
    let mut changes = records.changes();
    let mut failures: u32 = 0;
    // Services told about the current outage.
    let mut warned: BTreeSet<FederatedKey> = BTreeSet::new();
    let mut last_skipped = String::new();
    loop {
        if !claim.is_current() {
            claim.changed().await;
            continue;
        }
        changes.borrow_and_update();
        let (desired, pending) = records.snapshot();
        let outcome = sync_once(&provider, &settings.zone, &settings.owner, &desired).await;
        let wait = match outcome {
            Ok(report) => {
                metrics.count_dns_sync(name, true, report.applied.len());
                if failures > 0 {
                    tracing::info!(
                        provider = name,
                        "the DNS provider takes the records again after {failures} failed rounds"
                    );
                }
                failures = 0;
                if claim.is_current() {
                    let message = format!("written to {name} (zone {})", settings.zone);
                    for key in &warned {
                        set_condition(&federation, key, true, &message).await;
                    }
                }
                warned.clear();
                records.written(&pending);
                for change in report.applied.changes() {
                    tracing::info!(provider = name, "{change}");
                }
                let skipped: Vec<String> = report.skipped.iter().map(|s| s.to_string()).collect();
                let skipped = skipped.join("; ");
                if !skipped.is_empty() && skipped != last_skipped {
                    tracing::warn!(provider = name, "names left alone: {skipped}");
                }
                last_skipped = skipped;
                None
            }
            Err(error) => {
                failures += 1;
                metrics.count_dns_sync(name, false, 0);
                let delay = settings.backoff.delay(failures);
                tracing::warn!(
                    provider = name,
                    attempt = failures,
                    "writing the DNS records failed; retrying in {delay:?}: {error}"
                );
                let note = format!(
                    "its DNS records could not be written to {name} (zone {}): {error}; retrying with backoff",
                    settings.zone
                );
                for key in pending.difference(&warned) {
                    let _ = warnings.try_send(Warning::on_service(key, "DNSProviderFailed", &note));
                    if claim.is_current() {
                        set_condition(&federation, key, false, &note).await;
                    }
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
                    () = tokio::time::sleep(settings.resync) => {}
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
