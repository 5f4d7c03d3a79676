//! Prometheus metrics and the health endpoints.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;
use fedmesh_core::remote::SyncState;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::runtime::claim::Claim;

type Labels = Vec<(String, String)>;

/// The controller's metrics, cheap to clone.
#[derive(Clone)]
pub struct Metrics(Arc<Inner>);

struct Inner {
    registry: Registry,
    remote_status: Family<Labels, Gauge>,
    writes: Family<Labels, Counter>,
    leading: Gauge,
    dns_names: Gauge,
    dns_syncs: Family<Labels, Counter>,
    dns_changes: Family<Labels, Counter>,
    dns_provider_up: Family<Labels, Gauge>,
    /// The claim `leading` reports, read at every scrape: a gauge set when
    /// the claim changes would lag an expiry (a stopped or starved process
    /// reports stale leadership until its gauge task runs again).
    claim: Mutex<Option<Claim>>,
    /// `None` when ready, else why not.
    unready: Mutex<Option<String>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A fresh set of metrics.
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let remote_status = Family::<Labels, Gauge>::default();
        registry.register(
            "remote_cluster_connection_status",
            "0-ConnectionFailed, 1-Connecting, 2-InSync, 5-ConfigIncomplete (Calico's encoding)",
            remote_status.clone(),
        );
        let writes = Family::<Labels, Counter>::default();
        registry.register(
            "fedmesh_writes",
            "Write calls to a cluster, by kind, verb and result (ok: the object was written; failed: the attempt failed and is retried)",
            writes.clone(),
        );
        let leading = Gauge::default();
        registry.register(
            "fedmesh_leader",
            "1 while this replica holds the controller Lease",
            leading.clone(),
        );
        let dns_names = Gauge::default();
        registry.register(
            "fedmesh_dns_names",
            "Names with records in the federation's DNS zone, as this replica serves them",
            dns_names.clone(),
        );
        let dns_syncs = Family::<Labels, Counter>::default();
        registry.register(
            "fedmesh_dns_provider_syncs",
            "Rounds of writing the records to an external DNS provider, by provider and result (ok, failed)",
            dns_syncs.clone(),
        );
        let dns_changes = Family::<Labels, Counter>::default();
        registry.register(
            "fedmesh_dns_provider_changes",
            "Record set changes applied to an external DNS provider",
            dns_changes.clone(),
        );
        let dns_provider_up = Family::<Labels, Gauge>::default();
        registry.register(
            "fedmesh_dns_provider_up",
            "1 while the last round with the DNS provider succeeded, 0 while it fails",
            dns_provider_up.clone(),
        );
        Self(Arc::new(Inner {
            registry,
            remote_status,
            writes,
            leading,
            dns_names,
            dns_syncs,
            dns_changes,
            dns_provider_up,
            claim: Mutex::new(None),
            unready: Mutex::new(Some("starting".into())),
        }))
    }

    /// Records a remote cluster's state.
    pub fn set_remote_state(&self, remote: &str, state: SyncState) {
        self.0
            .remote_status
            .get_or_create(&remote_labels(remote))
            .set(state.gauge_value());
    }

    /// Forgets a remote cluster that is no longer configured.
    pub fn forget_remote(&self, remote: &str) {
        self.0.remote_status.remove(&remote_labels(remote));
    }

    /// Counts one write call of `kind` with `verb`, successful or not.
    pub fn count_write(&self, kind: &str, verb: &str, ok: bool) {
        self.0
            .writes
            .get_or_create(&vec![
                ("kind".into(), kind.into()),
                ("verb".into(), verb.into()),
                ("result".into(), if ok { "ok" } else { "failed" }.into()),
            ])
            .inc();
    }

    /// Records how many names the DNS zone holds.
    pub fn set_dns_names(&self, names: usize) {
        self.0
            .dns_names
            .set(i64::try_from(names).unwrap_or(i64::MAX));
    }

    /// Counts one round with the DNS provider `provider`: its outcome and
    /// the changes it applied.
    pub fn count_dns_sync(&self, provider: &str, ok: bool, changes: usize) {
        let provider_label = vec![("provider".to_owned(), provider.to_owned())];
        let mut labels = provider_label.clone();
        labels.push(("result".into(), if ok { "ok" } else { "failed" }.into()));
        self.0.dns_syncs.get_or_create(&labels).inc();
        self.0
            .dns_changes
            .get_or_create(&provider_label)
            .inc_by(u64::try_from(changes).unwrap_or(u64::MAX));
        self.0
            .dns_provider_up
            .get_or_create(&provider_label)
            .set(i64::from(ok));
    }

    /// Reports `claim` as `fedmesh_leader`: 1 exactly while it is current
    /// when the metrics are read.
    pub fn follow_claim(&self, claim: Claim) {
        *self
            .0
            .claim
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(claim);
    }

    /// Records whether the controller is ready: `None`, or why not.
    pub fn set_unready(&self, why: Option<String>) {
        let mut unready = self
            .0
            .unready
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if *unready != why {
            match &why {
                Some(reason) => tracing::warn!("not ready: {reason}"),
                None => tracing::info!("ready"),
            }
            *unready = why;
        }
    }

    /// Why the controller is not ready, if it is not.
    pub fn unready(&self) -> Option<String> {
        self.0
            .unready
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// The metrics in Prometheus' text format.
    pub fn encode(&self) -> String {
        let leading = self
            .0
            .claim
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .as_ref()
            .is_some_and(Claim::is_current);
        self.0.leading.set(i64::from(leading));
        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = encode(&mut text, &self.0.registry);
        text
    }

    /// Serves `/metrics`, `/healthz` and `/readyz` on `addr` until the task is dropped.
    pub async fn serve(self, addr: SocketAddr) -> std::io::Result<()> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        tracing::info!(addr = %listener.local_addr()?, "serving metrics and health");
        let ready = self.clone();
        let app = Router::new()
            .route("/metrics", get(move || async move { self.encode() }))
            .route("/healthz", get(|| async { "ok" }))
            .route(
                "/readyz",
                get(move || async move {
                    match ready.unready() {
                        None => (StatusCode::OK, "ok".to_owned()),
                        Some(why) => (StatusCode::SERVICE_UNAVAILABLE, why),
                    }
                }),
            );
        axum::serve(listener, app).await
    }
}

fn remote_labels(remote: &str) -> Labels {
    vec![("remote_cluster_name".into(), remote.into())]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_status_uses_calicos_gauge_name_and_values() {
        let metrics = Metrics::new();
        metrics.set_remote_state("east", SyncState::InSync);
        metrics.set_remote_state("west", SyncState::ConnectionFailed);
        let text = metrics.encode();
        assert!(
            text.contains("remote_cluster_connection_status{remote_cluster_name=\"east\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("remote_cluster_connection_status{remote_cluster_name=\"west\"} 0"),
            "{text}"
        );
        metrics.forget_remote("west");
        assert!(!metrics.encode().contains("west"));
    }

    #[tokio::test(start_paused = true)]
    async fn the_leader_gauge_drops_when_the_claim_runs_out_unrenewed() {
        let metrics = Metrics::new();
        assert!(metrics.encode().contains("fedmesh_leader 0"));
        let expiry = tokio::time::Instant::now() + std::time::Duration::from_secs(2);
        let (_elector, claim) = tokio::sync::watch::channel(Some(expiry));
        metrics.follow_claim(Claim::new(claim));
        assert!(metrics.encode().contains("fedmesh_leader 1"));
        // No renewal and nothing published: a scrape after the expiry must
        // not report a claim that another replica may already have taken.
        tokio::time::advance(std::time::Duration::from_secs(2)).await;
        assert!(metrics.encode().contains("fedmesh_leader 0"));
    }
}
