//! Faults a test can switch on in a running server: at the listener (refuse,
//! hang) and in front of the router (500s, latency, hang).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use tokio::sync::watch;

/// One fault mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Fault {
    /// Serve normally.
    #[default]
    None,
    /// Close the listening socket and every connection: clients get
    /// "connection refused" until the fault is cleared.
    Refuse,
    /// Accept connections and requests but never answer.
    Hang,
    /// Answer every request with 500 InternalError.
    Error500,
    /// Delay every request by this long.
    Latency(Duration),
    /// Answer every watch with 410 Gone (`Expired`), as a server whose
    /// history was compacted past every client's resourceVersion does;
    /// lists and other requests are served normally.
    WatchExpired,
}

/// The switch shared by a server and whoever injects faults.
#[derive(Debug, Clone)]
pub struct Faults {
    mode: Arc<Mutex<Fault>>,
    changed: watch::Sender<Fault>,
}

impl Default for Faults {
    fn default() -> Self {
        Faults {
            mode: Arc::new(Mutex::new(Fault::None)),
            changed: watch::channel(Fault::None).0,
        }
    }
}

impl Faults {
    /// Switches to `fault`.
    pub fn set(&self, fault: Fault) {
        *self.mode.lock().unwrap_or_else(|e| e.into_inner()) = fault;
        self.changed.send_replace(fault);
    }

    /// The current mode.
    pub fn get(&self) -> Fault {
        *self.mode.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Notified on every change.
    pub fn subscribe(&self) -> watch::Receiver<Fault> {
        self.changed.subscribe()
    }

    /// Waits until the mode is no longer `Hang`.
    pub async fn wait_unhung(&self) {
        let mut rx = self.subscribe();
        // Err: the sender lives in self, so this only ends with the server.
        let _ = rx.wait_for(|f| *f != Fault::Hang).await;
    }
}

/// The router layer applying request faults.
pub async fn layer(State(faults): State<Faults>, req: Request, next: Next) -> Response {
    let encoding = crate::http::negotiation::Accept::of(req.headers()).encoding();
    match faults.get() {
        Fault::Error500 => {
            return crate::http::response::error(
                encoding,
                &crate::objects::ApiError::Internal("injected fault".into()),
            );
        }
        Fault::Latency(d) => tokio::time::sleep(d).await,
        Fault::Hang => faults.wait_unhung().await,
        Fault::WatchExpired if is_watch(&req) => {
            return crate::http::response::error(
                encoding,
                &crate::objects::ApiError::Expired(
                    "too old resource version (injected fault)".into(),
                ),
            );
        }
        Fault::None | Fault::Refuse | Fault::WatchExpired => {}
    }
    next.run(req).await
}

/// Whether `req` opens a watch (`?watch=true` or the legacy `/watch/` path).
fn is_watch(req: &Request) -> bool {
    req.uri().path().contains("/watch/")
        || req.uri().query().is_some_and(|q| {
            q.split('&')
                .any(|pair| matches!(pair, "watch=true" | "watch=1" | "watch"))
        })
}
