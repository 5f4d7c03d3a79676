//! Prometheus metrics and the health endpoints.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;
use fedmesh_core::remote::SyncState;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

type Labels = Vec<(String, String)>;

/// The controller's metrics, cheap to clone.
#[derive(Clone)]
pub struct Metrics(Arc<Inner>);

struct Inner {
    registry: Registry,
    remote_status: Family<Labels, Gauge>,
    writes: Family<Labels, Counter>,
    leading: Gauge,
    ready: AtomicBool,
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
            "Writes to the local cluster, by kind and verb",
            writes.clone(),
        );
        let leading = Gauge::default();
        registry.register(
            "fedmesh_leader",
            "1 while this replica holds the controller Lease",
            leading.clone(),
        );
        Self(Arc::new(Inner {
            registry,
            remote_status,
            writes,
            leading,
            ready: AtomicBool::new(false),
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

    /// Counts one write of `kind` with `verb`.
    pub fn count_write(&self, kind: &str, verb: &str) {
        self.0
            .writes
            .get_or_create(&vec![
                ("kind".into(), kind.into()),
                ("verb".into(), verb.into()),
            ])
            .inc();
    }

    /// Records whether this replica leads.
    pub fn set_leading(&self, leading: bool) {
        self.0.leading.set(i64::from(leading));
    }

    /// Marks the controller ready (its local watches have listed).
    pub fn set_ready(&self) {
        self.0.ready.store(true, Ordering::Relaxed);
    }

    /// The metrics in Prometheus' text format.
    pub fn encode(&self) -> String {
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
                    if ready.0.ready.load(Ordering::Relaxed) {
                        (StatusCode::OK, "ok")
                    } else {
                        (
                            StatusCode::SERVICE_UNAVAILABLE,
                            "local watches have not listed yet",
                        )
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
}
