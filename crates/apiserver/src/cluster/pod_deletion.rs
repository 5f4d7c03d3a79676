//! Graceful deletion of pods, as kube-apiserver's pod strategy decides it.
//!
//! A DELETE of a pod that is bound to a node and not finished does not
//! remove it: it sets `deletionTimestamp` to now plus the grace period
//! (the request's `gracePeriodSeconds`, else the pod's
//! `terminationGracePeriodSeconds`, else 0) and
//! `deletionGracePeriodSeconds`, and the kubelet deletes it once its
//! containers stopped. Unscheduled and finished pods go at once. Nothing
//! runs pods in an embedded cluster, so [`pods_due_for_removal`] stands in
//! for the kubelet: a terminating pod goes when its grace period is over.

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

/// The grace period (seconds) a pod DELETE gets; 0 means delete now.
pub fn grace_period_seconds(pod: &Pod, requested: Option<i64>) -> i64 {
    let spec = pod.spec.as_ref();
    let mut period = requested
        .or_else(|| spec.and_then(|s| s.termination_grace_period_seconds))
        .unwrap_or(0);
    if spec
        .and_then(|s| s.node_name.as_deref())
        .is_none_or(str::is_empty)
    {
        period = 0;
    }
    if matches!(
        pod.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Failed" | "Succeeded")
    ) {
        period = 0;
    }
    if period < 0 {
        period = 1;
    }
    period
}

/// What a pod DELETE does to the stored pod.
#[derive(Debug, Clone, PartialEq)]
pub enum PodDeletion {
    /// Remove it now (finalizers permitting).
    Now,
    /// Keep it: `deletionTimestamp` and `deletionGracePeriodSeconds` set.
    Graceful(Box<Pod>),
}

/// Applies a DELETE with `requested` grace seconds at `now`. A pod already
/// terminating only has its grace period shortened (counted from when the
/// first DELETE started it), never lengthened.
pub fn delete_pod(pod: &Pod, requested: Option<i64>, now: Timestamp) -> PodDeletion {
    let meta = &pod.metadata;
    if let (Some(started), Some(current)) =
        (&meta.deletion_timestamp, meta.deletion_grace_period_seconds)
    {
        if current == 0 {
            return PodDeletion::Now;
        }
        let Some(shorter) = requested.filter(|r| *r < current) else {
            return PodDeletion::Graceful(Box::new(pod.clone()));
        };
        if shorter <= 0 {
            return PodDeletion::Now;
        }
        let deadline = started
            .0
            .checked_sub(SignedDuration::from_secs(current - shorter))
            .unwrap_or(started.0);
        let mut next = pod.clone();
        next.metadata.deletion_timestamp = Some(Time(deadline));
        next.metadata.deletion_grace_period_seconds = Some(shorter);
        return PodDeletion::Graceful(Box::new(next));
    }
    let period = grace_period_seconds(pod, requested);
    if period == 0 {
        return PodDeletion::Now;
    }
    let mut next = pod.clone();
    let deadline = now
        .checked_add(SignedDuration::from_secs(period))
        .unwrap_or(now);
    next.metadata.deletion_timestamp = Some(Time(deadline));
    next.metadata.deletion_grace_period_seconds = Some(period);
    PodDeletion::Graceful(Box::new(next))
}

/// Terminating pods whose grace period has ended at `now`: what a kubelet
/// would have finished deleting.
pub fn pods_due_for_removal(pods: &[Pod], now: Timestamp) -> Vec<&Pod> {
    pods.iter()
        .filter(|p| {
            p.metadata
                .deletion_timestamp
                .as_ref()
                .is_some_and(|t| t.0 <= now)
        })
        .collect()
}
