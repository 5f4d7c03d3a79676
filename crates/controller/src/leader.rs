//! Leader election on a `coordination.k8s.io/v1` Lease, so two replicas never
//! both write.
//!
//! The holder renews the Lease every `renew_interval`; another replica takes
//! it over once it has gone `lease_duration` without renewal. Every update
//! carries the resourceVersion it read, so two replicas racing for an expired
//! Lease cannot both win: the loser gets a 409 Conflict.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, PostParams};
use tokio::sync::watch;

use crate::config::ControllerConfig;

/// What a contender learns from one round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// This replica holds the Lease.
    Held,
    /// Another replica holds it.
    Lost,
}

/// Competes for the Lease forever, publishing whether this replica leads.
/// Errors talking to the API server count as not leading: a replica that
/// cannot renew must stop writing before another one takes over.
pub async fn run(api: Api<Lease>, config: ControllerConfig, leading: watch::Sender<bool>) {
    let mut ticker = tokio::time::interval(config.renew_interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let claim = match try_claim(&api, &config, Timestamp::now()).await {
            Ok(claim) => claim,
            Err(error) => {
                tracing::warn!(%error, lease = %config.lease_name, "cannot renew the lease; not leading");
                Claim::Lost
            }
        };
        leading.send_if_modified(|current| {
            let now = claim == Claim::Held;
            if *current != now {
                tracing::info!(identity = %config.identity, leading = now, "leadership changed");
                *current = now;
                true
            } else {
                false
            }
        });
    }
}

/// One round: take or renew the Lease if it is ours or free.
pub async fn try_claim(
    api: &Api<Lease>,
    config: &ControllerConfig,
    now: Timestamp,
) -> kube::Result<Claim> {
    let Some(mut lease) = api.get_opt(&config.lease_name).await? else {
        let lease = Lease {
            metadata: ObjectMeta {
                name: Some(config.lease_name.clone()),
                ..ObjectMeta::default()
            },
            spec: Some(held_spec(config, now, &LeaseSpec::default())),
        };
        return match api.create(&PostParams::default(), &lease).await {
            Ok(_) => Ok(Claim::Held),
            Err(kube::Error::Api(status)) if status.code == 409 => Ok(Claim::Lost),
            Err(error) => Err(error),
        };
    };
    let spec = lease.spec.clone().unwrap_or_default();
    let ours = spec.holder_identity.as_deref() == Some(config.identity.as_str());
    if !ours && !expired(&spec, now) {
        return Ok(Claim::Lost);
    }
    lease.spec = Some(held_spec(config, now, &spec));
    match api
        .replace(&config.lease_name, &PostParams::default(), &lease)
        .await
    {
        Ok(_) => Ok(Claim::Held),
        Err(kube::Error::Api(status)) if status.code == 409 => Ok(Claim::Lost),
        Err(error) => Err(error),
    }
}

fn expired(spec: &LeaseSpec, now: Timestamp) -> bool {
    let Some(renewed) = spec.renew_time.as_ref().or(spec.acquire_time.as_ref()) else {
        return true;
    };
    let duration = Duration::from_secs(
        spec.lease_duration_seconds
            .unwrap_or(0)
            .max(0)
            .unsigned_abs()
            .into(),
    );
    now.duration_since(renewed.0).unsigned_abs() >= duration
}

/// The spec of the Lease once this replica holds it, from its `current` spec:
/// a renewal keeps the acquire time, a takeover counts a transition.
fn held_spec(config: &ControllerConfig, now: Timestamp, current: &LeaseSpec) -> LeaseSpec {
    let seconds = i32::try_from(config.lease_duration.as_secs()).unwrap_or(i32::MAX);
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

    #[test]
    fn a_lease_expires_after_its_duration_without_renewal() {
        let lease = spec("a", 1_000, 15);
        assert!(!expired(&lease, Timestamp::from_second(1_014).unwrap()));
        assert!(expired(&lease, Timestamp::from_second(1_015).unwrap()));
        assert!(expired(
            &LeaseSpec::default(),
            Timestamp::from_second(0).unwrap()
        ));
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
}
