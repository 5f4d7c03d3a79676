//! Leadership as a claim with an expiry, on a `coordination.k8s.io/v1` Lease.
//!
//! Only the holder of a current [`Claim`] writes, and every writer checks it
//! before every write, not once per batch: a replica that cannot renew stops
//! writing by itself when its claim runs out, before any other replica may
//! take the Lease over.
//!
//! Timing (client-go's leader election): the holder renews every
//! `renew_interval`; its claim stays current for `renew_deadline` after the
//! start of its last successful renewal; another replica takes over only when
//! it has seen the Lease unchanged for `lease_duration`, measured on its own
//! clock (so clock skew between replicas does not matter), and
//! `renew_deadline < lease_duration` leaves a margin between the two. A clean
//! shutdown releases the Lease, so a successor leads within its
//! `retry_interval`.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, PostParams};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::config::ControllerConfig;
use crate::runtime::errors::chain;

/// Whether this replica may write now. Cheap to clone; every writer holds one.
#[derive(Debug, Clone)]
pub struct Claim {
    expiry: watch::Receiver<Option<Instant>>,
}

/// A write was refused because this replica does not hold a current claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "this replica does not hold the controller Lease (or its claim ran out); only the leader writes"
)]
pub struct NotLeading;

impl Claim {
    /// A claim driven by `expiry` (the elector's side of the channel).
    pub fn new(expiry: watch::Receiver<Option<Instant>>) -> Self {
        Self { expiry }
    }

    /// Ok while the claim is current; checked before every write.
    pub fn check(&self) -> Result<(), NotLeading> {
        match *self.expiry.borrow() {
            Some(until) if Instant::now() < until => Ok(()),
            _ => Err(NotLeading),
        }
    }

    /// Whether the claim is current.
    pub fn is_current(&self) -> bool {
        self.check().is_ok()
    }

    /// When the claim runs out, if held.
    pub fn expiry(&self) -> Option<Instant> {
        *self.expiry.borrow()
    }

    /// Waits until the claim is renewed, taken, lost, or runs out. Running
    /// out counts: a holder that cannot renew publishes nothing, and whoever
    /// waits here (the writers, the status writer) must still learn at the
    /// expiry that it no longer leads.
    pub async fn changed(&mut self) {
        let runs_out = self.expiry().filter(|until| Instant::now() < *until);
        let expired = async {
            match runs_out {
                Some(until) => tokio::time::sleep_until(until).await,
                None => std::future::pending().await,
            }
        };
        let mut expired = std::pin::pin!(expired);
        tokio::select! {
            changed = self.expiry.changed() => {
                if changed.is_err() {
                    // The elector is gone: only the expiry is still to come.
                    expired.await;
                }
            }
            () = &mut expired => {}
        }
    }
}

/// What one election round found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Round {
    /// This replica holds the Lease (just took or renewed it).
    Held,
    /// Another replica holds it.
    Lost,
}

/// The Lease record as last seen, and when (on this replica's clock).
#[derive(Debug, Clone, PartialEq)]
struct Observed {
    holder: Option<String>,
    renew_time: Option<MicroTime>,
    at: Instant,
}

/// Competes for the Lease until dropped, publishing the claim's expiry.
pub struct Elector {
    api: Api<Lease>,
    config: ControllerConfig,
    expiry: watch::Sender<Option<Instant>>,
    observed: Option<Observed>,
}

impl Elector {
    /// An elector for the Lease named in `config`, and the claim it drives.
    pub fn new(api: Api<Lease>, config: ControllerConfig) -> (Self, Claim) {
        let (expiry, rx) = watch::channel(None);
        (
            Self {
                api,
                config,
                expiry,
                observed: None,
            },
            Claim::new(rx),
        )
    }

    /// Runs rounds forever: every `renew_interval` while leading, every
    /// `retry_interval` otherwise.
    pub async fn run(&mut self) {
        loop {
            let started = Instant::now();
            let outcome = tokio::time::timeout(self.config.renew_deadline, self.round()).await;
            let held = match outcome {
                Ok(Ok(Round::Held)) => {
                    self.publish(Some(started + self.config.renew_deadline));
                    true
                }
                Ok(Ok(Round::Lost)) => {
                    self.publish(None);
                    false
                }
                Ok(Err(error)) => {
                    tracing::warn!(lease = %self.config.lease_name, "cannot read or renew the controller Lease: {}", chain(&error));
                    // Keep the current expiry: it runs out by itself.
                    self.expiry.borrow().is_some()
                }
                Err(_) => {
                    tracing::warn!(lease = %self.config.lease_name, "the local API server did not answer the Lease request in time");
                    self.expiry.borrow().is_some()
                }
            };
            let pause = if held {
                self.config.renew_interval
            } else {
                self.config.retry_interval
            };
            tokio::time::sleep_until(started + pause).await;
        }
    }

    fn publish(&self, expiry: Option<Instant>) {
        let was = self.expiry.borrow().is_some();
        if was != expiry.is_some() {
            tracing::info!(identity = %self.config.identity, leading = expiry.is_some(), "leadership changed");
        }
        self.expiry.send_replace(expiry);
    }

    /// One round: take or renew the Lease if it is ours, free, or expired.
    async fn round(&mut self) -> kube::Result<Round> {
        let now = Timestamp::now();
        let Some(mut lease) = self.api.get_opt(&self.config.lease_name).await? else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.config.lease_name.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(held_spec(&self.config, now, &LeaseSpec::default())),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(Round::Held),
                Err(kube::Error::Api(status)) if status.code == 409 => Ok(Round::Lost),
                Err(error) => Err(error),
            };
        };
        let spec = lease.spec.clone().unwrap_or_default();
        let ours = spec.holder_identity.as_deref() == Some(self.config.identity.as_str());
        if !ours && !self.free_or_expired(&spec) {
            return Ok(Round::Lost);
        }
        lease.spec = Some(held_spec(&self.config, now, &spec));
        match self
            .api
            .replace(&self.config.lease_name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => Ok(Round::Held),
            Err(kube::Error::Api(status)) if status.code == 409 => Ok(Round::Lost),
            Err(error) => Err(error),
        }
    }

    /// Whether another replica's Lease may be taken: released (no holder), or
    /// unchanged on this replica's clock for its whole duration.
    fn free_or_expired(&mut self, spec: &LeaseSpec) -> bool {
        let holder = spec.holder_identity.clone().filter(|h| !h.is_empty());
        if holder.is_none() {
            return true;
        }
        let seen = Observed {
            holder,
            renew_time: spec.renew_time.clone(),
            at: Instant::now(),
        };
        let unchanged_since = match &self.observed {
            Some(old) if old.holder == seen.holder && old.renew_time == seen.renew_time => old.at,
            _ => {
                self.observed = Some(seen.clone());
                seen.at
            }
        };
        let duration = Duration::from_secs(
            spec.lease_duration_seconds
                .unwrap_or(0)
                .max(0)
                .unsigned_abs()
                .into(),
        );
        seen.at.duration_since(unchanged_since) >= duration
    }

    /// Gives the Lease up if this replica holds it (on a clean shutdown, after
    /// every writer stopped), so a successor need not wait for it to expire.
    pub async fn release(&self) {
        if self.expiry.borrow().is_none() {
            return;
        }
        self.expiry.send_replace(None);
        let release = async {
            let mut lease = self.api.get(&self.config.lease_name).await?;
            let spec = lease.spec.clone().unwrap_or_default();
            if spec.holder_identity.as_deref() != Some(self.config.identity.as_str()) {
                return Ok(());
            }
            lease.spec = Some(LeaseSpec {
                holder_identity: None,
                lease_duration_seconds: Some(1),
                renew_time: Some(MicroTime(Timestamp::now())),
                ..spec
            });
            self.api
                .replace(&self.config.lease_name, &PostParams::default(), &lease)
                .await
                .map(|_| ())
        };
        match tokio::time::timeout(Duration::from_secs(2), release).await {
            Ok(Ok(())) => {
                tracing::info!(lease = %self.config.lease_name, "released the controller Lease")
            }
            Ok(Err(error)) => {
                tracing::warn!(lease = %self.config.lease_name, "cannot release the controller Lease; a successor takes over once it expires: {}", chain(&error))
            }
            Err(_) => {
                tracing::warn!(lease = %self.config.lease_name, "releasing the controller Lease timed out; a successor takes over once it expires")
            }
        }
    }
}

/// A lease duration as the Lease records it, in whole seconds rounded up:
/// other replicas wait this long, and rounding down would eat the margin
/// between the holder's renew deadline and their takeover (a 1.5 s lease
/// with a 1.2 s deadline recorded as 1 s lets another replica take over
/// while the holder's claim is still current; under 1 s it would be 0).
fn lease_seconds(duration: Duration) -> i32 {
    let whole = duration.as_secs() + u64::from(duration.subsec_nanos() > 0);
    i32::try_from(whole).unwrap_or(i32::MAX)
}

/// The spec of the Lease once this replica holds it, from its `current` spec:
/// a renewal keeps the acquire time, a takeover counts a transition.
fn held_spec(config: &ControllerConfig, now: Timestamp, current: &LeaseSpec) -> LeaseSpec {
    let seconds = lease_seconds(config.lease_duration);
    let renewing = current.holder_identity.as_deref() == Some(config.identity.as_str());
    if renewing {
        return LeaseSpec {
            renew_time: Some(MicroTime(now)),
            lease_duration_seconds: Some(seconds),
            ..current.clone()
        };
    }
    LeaseSpec {
        holder_identity: Some(config.identity.clone()),
        lease_duration_seconds: Some(seconds),
        acquire_time: Some(MicroTime(now)),
        renew_time: Some(MicroTime(now)),
        lease_transitions: current
            .holder_identity
            .as_ref()
            .map(|_| current.lease_transitions.unwrap_or(0) + 1),
        ..current.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(holder: &str, renewed: i64, seconds: i32) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(holder.into()),
            renew_time: Some(MicroTime(Timestamp::from_second(renewed).unwrap())),
            lease_duration_seconds: Some(seconds),
            ..LeaseSpec::default()
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_claim_runs_out_at_its_expiry_without_renewal() {
        let (tx, rx) = watch::channel(Some(Instant::now() + Duration::from_secs(10)));
        let claim = Claim::new(rx);
        assert!(claim.check().is_ok());
        tokio::time::advance(Duration::from_millis(9_999)).await;
        assert!(claim.is_current());
        tokio::time::advance(Duration::from_millis(1)).await;
        assert_eq!(claim.check(), Err(NotLeading), "expired without renewal");
        tx.send_replace(Some(Instant::now() + Duration::from_secs(10)));
        assert!(claim.is_current(), "renewed");
        tx.send_replace(None);
        assert!(!claim.is_current(), "lost");
    }

    #[tokio::test(start_paused = true)]
    async fn waiting_for_a_change_ends_when_the_claim_runs_out() {
        let start = Instant::now();
        let (tx, rx) = watch::channel(Some(start + Duration::from_secs(10)));
        let mut claim = Claim::new(rx);
        // Nothing is published (the renewals fail), yet the wait ends at the
        // expiry, so the gauge and the writers learn they no longer lead.
        claim.changed().await;
        assert_eq!(Instant::now(), start + Duration::from_secs(10));
        assert!(!claim.is_current());
        // Not held: only a publication ends the wait.
        let waiting = tokio::spawn(async move {
            claim.changed().await;
            claim.is_current()
        });
        tokio::time::advance(Duration::from_secs(60)).await;
        assert!(!waiting.is_finished());
        tx.send_replace(Some(Instant::now() + Duration::from_secs(10)));
        assert!(waiting.await.unwrap(), "taken again");
    }

    #[test]
    fn the_lease_records_its_duration_rounded_up_so_the_margin_holds() {
        let mut config = ControllerConfig::new("ns", "a");
        config.lease_duration = Duration::from_millis(1_500);
        config.renew_deadline = Duration::from_millis(1_200);
        let recorded = held_spec(&config, Timestamp::now(), &LeaseSpec::default())
            .lease_duration_seconds
            .map(|s| Duration::from_secs(s.unsigned_abs().into()));
        assert!(
            recorded.is_some_and(|d| d > config.renew_deadline),
            "others must wait longer than the holder's claim lasts: {recorded:?}"
        );
        assert_eq!(lease_seconds(Duration::from_millis(300)), 1);
        assert_eq!(lease_seconds(Duration::from_secs(15)), 15);
    }

    #[test]
    fn renewing_keeps_the_acquire_time() {
        let config = ControllerConfig::new("ns", "a");
        let mut ours = spec("a", 1_000, 15);
        ours.acquire_time = Some(MicroTime(Timestamp::from_second(900).unwrap()));
        let now = Timestamp::from_second(1_005).unwrap();
        let renewed = held_spec(&config, now, &ours);
        assert_eq!(renewed.acquire_time, ours.acquire_time);
        assert_eq!(renewed.renew_time, Some(MicroTime(now)));
        assert_eq!(renewed.holder_identity.as_deref(), Some("a"));
        assert_eq!(renewed.lease_transitions, None);
        let taken = held_spec(&config, now, &spec("b", 1_000, 15));
        assert_eq!(taken.acquire_time, Some(MicroTime(now)));
        assert_eq!(taken.holder_identity.as_deref(), Some("a"));
        assert_eq!(taken.lease_transitions, Some(1));
    }

    #[tokio::test(start_paused = true)]
    async fn another_holder_expires_after_its_duration_unchanged_on_our_clock() {
        let config = ControllerConfig::new("ns", "a");
        // No API calls are made by free_or_expired; any client will do.
        let client =
            kube::Client::try_from(kube::Config::new("http://127.0.0.1:9".parse().unwrap()))
                .unwrap();
        let (mut elector, _claim) = Elector::new(Api::namespaced(client, "ns"), config);
        // A Lease renewed long ago by the other's clock is not expired on
        // first sight: skew between clocks must not hand it over.
        let b = spec("b", 0, 15);
        assert!(!elector.free_or_expired(&b));
        tokio::time::advance(Duration::from_secs(14)).await;
        assert!(!elector.free_or_expired(&b));
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(elector.free_or_expired(&b), "unchanged for its duration");
        // A renewal restarts the wait.
        let renewed = spec("b", 20, 15);
        assert!(!elector.free_or_expired(&renewed));
        // A released Lease is free at once.
        let released = LeaseSpec {
            holder_identity: None,
            ..renewed
        };
        assert!(elector.free_or_expired(&released));
    }
}
