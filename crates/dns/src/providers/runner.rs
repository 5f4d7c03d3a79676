//! One sync round against a provider (find the zone, read it, plan, apply),
//! and the retries with backoff around it.

use std::time::Duration;

use fedmesh_core::dns::{DomainName, NameRecords};

use super::sync::{Skipped, plan};
use super::{ChangeSet, Provider, ProviderError};

/// What a successful round did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// The changes applied (empty when the provider was in sync).
    pub applied: ChangeSet,
    /// Wanted names that were not written, with the reason.
    pub skipped: Vec<Skipped>,
    /// How many attempts the round took (1 without a retry).
    pub attempts: u32,
}

/// Why a round failed, by the step that failed.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// Listing the provider's zones failed.
    #[error("listing zones: {0}")]
    ListZones(ProviderError),
    /// The zone is not among the provider's zones.
    #[error(transparent)]
    ZoneMissing(ProviderError),
    /// Reading the zone's records failed.
    #[error("reading the records of {zone}: {source}")]
    ReadRecords {
        /// The zone.
        zone: DomainName,
        /// The provider's error.
        source: ProviderError,
    },
    /// Applying the change set failed (nothing of it applied where the
    /// provider is atomic).
    #[error("applying {changes} changes to {zone}: {source}")]
    Apply {
        /// The zone.
        zone: DomainName,
        /// How many changes were sent.
        changes: usize,
        /// The provider's error.
        source: ProviderError,
    },
}

impl SyncError {
    /// The provider's error behind this one.
    pub fn provider_error(&self) -> &ProviderError {
        match self {
            SyncError::ListZones(e) | SyncError::ZoneMissing(e) => e,
            SyncError::ReadRecords { source, .. } | SyncError::Apply { source, .. } => source,
        }
    }
}

/// Exponential backoff between retries: `initial`, doubled each time, at most `max`.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    /// The first wait.
    pub initial: Duration,
    /// The longest wait.
    pub max: Duration,
    /// Tries in one round (at least 1).
    pub attempts: u32,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(30),
            attempts: 5,
        }
    }
}

impl Backoff {
    /// The wait after the `n`th failed attempt (from 1).
    pub fn delay(&self, n: u32) -> Duration {
        self.initial
            .saturating_mul(1u32 << (n.saturating_sub(1)).min(16))
            .min(self.max)
    }
}

/// One round: make `zone` in `provider` hold `desired`, touching only names
/// owned by `owner`.
pub async fn sync_once<P: Provider>(
    provider: &P,
    zone: &DomainName,
    owner: &str,
    desired: &[NameRecords],
) -> Result<Report, SyncError> {
    let zones = provider.zones().await.map_err(SyncError::ListZones)?;
    let Some(found) = zones.into_iter().find(|z| z.name == *zone) else {
        return Err(SyncError::ZoneMissing(ProviderError::ZoneMissing {
            provider: provider.name(),
            zone: zone.to_string(),
        }));
    };
    let current = provider
        .records(&found)
        .await
        .map_err(|source| SyncError::ReadRecords {
            zone: zone.clone(),
            source,
        })?;
    let plan = plan(zone, owner, desired, &current);
    if !plan.changes.is_empty() {
        provider
            .apply(&found, &plan.changes)
            .await
            .map_err(|source| SyncError::Apply {
                zone: zone.clone(),
                changes: plan.changes.len(),
                source,
            })?;
    }
    Ok(Report {
        applied: plan.changes,
        skipped: plan.skipped,
        attempts: 1,
    })
}

/// [`sync_once`], tried again after a transient error (server down, records
/// changed meanwhile) with `backoff`; other errors end the round at once.
pub async fn sync_with_retries<P: Provider>(
    provider: &P,
    zone: &DomainName,
    owner: &str,
    desired: &[NameRecords],
    backoff: Backoff,
) -> Result<Report, SyncError> {
    let attempts = backoff.attempts.max(1);
    let mut attempt = 1;
    loop {
        match sync_once(provider, zone, owner, desired).await {
            Ok(mut report) => {
                report.attempts = attempt;
                return Ok(report);
            }
            Err(e) if attempt < attempts && e.provider_error().is_transient() => {
                tracing::warn!(attempt, error = %e, "DNS provider sync failed; retrying");
                tokio::time::sleep(backoff.delay(attempt)).await;
                attempt += 1;
            }
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::super::{RecordSet, Zone};
    use super::*;
    use fedmesh_core::dns::RecordData;

    /// A provider in memory that fails its first `failures` listings.
    struct Memory {
        failures: Mutex<u32>,
        error: fn() -> ProviderError,
        sets: Mutex<Vec<RecordSet>>,
    }

    fn zone() -> DomainName {
        DomainName::new("zone", "example.com").unwrap()
    }

    impl Provider for Memory {
        fn name(&self) -> &'static str {
            "memory"
        }

        async fn zones(&self) -> Result<Vec<Zone>, ProviderError> {
            let mut failures = self.failures.lock().unwrap();
            if *failures > 0 {
                *failures -= 1;
                return Err((self.error)());
            }
            Ok(vec![Zone {
                id: "z".into(),
                name: zone(),
            }])
        }

        async fn records(&self, _: &Zone) -> Result<Vec<RecordSet>, ProviderError> {
            Ok(self.sets.lock().unwrap().clone())
        }

        async fn apply(&self, _: &Zone, changes: &ChangeSet) -> Result<(), ProviderError> {
            let mut sets = self.sets.lock().unwrap();
            for c in changes.changes() {
                let s = c.set();
                sets.retain(|x| !(x.name == s.name && x.rtype == s.rtype));
                if !matches!(c, super::super::Change::Remove(_)) {
                    sets.push(s.clone());
                }
            }
            Ok(())
        }
    }

    fn desired() -> Vec<NameRecords> {
        vec![NameRecords {
            name: DomainName::new("n", "s.ns.fed.svc.example.com").unwrap(),
            ttl: 180,
            data: RecordData::Addresses {
                v4: vec!["10.0.0.1".parse().unwrap()],
                v6: vec![],
            },
        }]
    }

    fn backoff() -> Backoff {
        Backoff {
            initial: Duration::from_millis(1),
            max: Duration::from_millis(4),
            attempts: 3,
        }
    }

    fn memory(failures: u32, error: fn() -> ProviderError) -> Memory {
        Memory {
            failures: Mutex::new(failures),
            error,
            sets: Mutex::new(Vec::new()),
        }
    }

    fn down() -> ProviderError {
        ProviderError::Unreachable {
            provider: "memory",
            endpoint: "nowhere".into(),
            reason: "refused".into(),
        }
    }

    fn denied() -> ProviderError {
        ProviderError::AuthRejected {
            provider: "memory",
            reason: "bad key".into(),
        }
    }

    #[tokio::test]
    async fn transient_errors_are_retried_then_the_round_converges() {
        let provider = memory(2, down);
        let report = sync_with_retries(&provider, &zone(), "fed", &desired(), backoff())
            .await
            .unwrap();
        assert_eq!((report.attempts, report.applied.len()), (3, 2));
        let again = sync_with_retries(&provider, &zone(), "fed", &desired(), backoff())
            .await
            .unwrap();
        assert!(again.applied.is_empty());

        // More failures than attempts: the last error is reported.
        let provider = memory(5, down);
        let err = sync_with_retries(&provider, &zone(), "fed", &desired(), backoff())
            .await
            .unwrap_err();
        assert!(matches!(
            err,
            SyncError::ListZones(ProviderError::Unreachable { .. })
        ));
        assert_eq!(*provider.failures.lock().unwrap(), 2);
    }

    #[tokio::test]
    async fn rejected_credentials_are_not_retried_and_a_missing_zone_is_named() {
        let provider = memory(1, denied);
        let err = sync_with_retries(&provider, &zone(), "fed", &desired(), backoff())
            .await
            .unwrap_err();
        assert!(matches!(
            err,
            SyncError::ListZones(ProviderError::AuthRejected { .. })
        ));
        assert_eq!(*provider.failures.lock().unwrap(), 0);

        let other = DomainName::new("zone", "example.org").unwrap();
        let err = sync_once(&memory(0, down), &other, "fed", &desired())
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "memory: zone example.org does not exist there; create it first (fedmesh only manages records inside it)"
        );
    }

    #[test]
    fn backoff_doubles_up_to_its_maximum() {
        let b = Backoff::default();
        let secs: Vec<_> = (1..=7).map(|n| b.delay(n).as_secs()).collect();
        assert_eq!(secs, [1, 2, 4, 8, 16, 30, 30]);
    }
}
