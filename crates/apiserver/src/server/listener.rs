//! The accept loop: one task per connection, HTTP/1.1 or HTTP/2 as the client
//! speaks, graceful close on shutdown, and the listener-level faults.

use std::net::SocketAddr;

use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use super::faults::{Fault, Faults};

async fn serve_connection(
    stream: TcpStream,
    router: Router,
    tls: Option<TlsAcceptor>,
    shutdown: watch::Receiver<bool>,
) {
    match tls {
        None => serve_io(stream, router, None, shutdown).await,
        Some(acceptor) => {
            let handshake = tokio::time::timeout(HANDSHAKE, acceptor.accept(stream)).await;
            match handshake {
                Ok(Ok(tls_stream)) => {
                    // rustls verified the chain against the cluster CA; the
                    // certificate's subject is the connection's identity.
                    let identity = tls_stream
                        .get_ref()
                        .1
                        .peer_certificates()
                        .and_then(crate::auth::client_cert::user_from_certificate)
                        .map(ClientIdentity);
                    serve_io(tls_stream, router, identity, shutdown).await
                }
                Ok(Err(e)) => tracing::debug!(error = %e, "TLS handshake failed"),
                Err(_) => tracing::debug!("TLS handshake timed out"),
            }
        }
    }
}

/// How long a client may take to finish the TLS handshake.
const HANDSHAKE: std::time::Duration = std::time::Duration::from_secs(10);

/// The user a verified client certificate names, attached to every request of
/// its connection (read by `crate::http::guard::authenticate`).
#[derive(Debug, Clone)]
pub struct ClientIdentity(pub crate::auth::user::UserInfo);

async fn serve_io<I>(
    io: I,
    router: Router,
    identity: Option<ClientIdentity>,
    mut shutdown: watch::Receiver<bool>,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
        let mut req = req.map(axum::body::Body::new);
        if let Some(identity) = &identity {
            req.extensions_mut().insert(identity.clone());
        }
        router.clone().oneshot(req)
    });
    let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    let conn = builder.serve_connection_with_upgrades(TokioIo::new(io), service);
    tokio::pin!(conn);
    tokio::select! {
        res = conn.as_mut() => {
            if let Err(e) = res {
                tracing::debug!(error = %e, "connection ended with an error");
            }
            return;
        }
        () = super::stopped(&mut shutdown) => {}
    }
    conn.as_mut().graceful_shutdown();
    if let Err(e) = conn.await {
        tracing::debug!(error = %e, "connection ended with an error during shutdown");
    }
}

/// Accepts until shutdown. Under `Fault::Refuse` the socket is closed (and
/// rebound on the same address when the fault clears); under `Fault::Hang` new
/// connections are held open and never read.
pub(super) async fn serve(
    listener: TcpListener,
    addr: SocketAddr,
    router: Router,
    tls: Option<TlsAcceptor>,
    faults: Faults,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut listener = Some(listener);
    let mut conns = JoinSet::new();
    let mut held: Vec<TcpStream> = Vec::new();
    let mut fault_rx = faults.subscribe();
    let conn_shutdown = shutdown.clone();
    loop {
        let fault = faults.get();
        if fault != Fault::Hang {
            held.clear();
        }
        if fault == Fault::Refuse {
            listener = None;
            conns.abort_all();
        } else if listener.is_none() {
            match TcpListener::bind(addr).await {
                Ok(l) => listener = Some(l),
                Err(e) => {
                    tracing::warn!(%addr, error = %e, "cannot rebind after a refuse fault");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            }
        }
        let accept = async {
            match &listener {
                Some(l) => l.accept().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = super::stopped(&mut shutdown) => break,
            _ = fault_rx.changed() => continue,
            Some(_) = conns.join_next(), if !conns.is_empty() => continue,
            accepted = accept => match accepted {
                Ok((stream, _)) => {
                    if faults.get() == Fault::Hang {
                        held.push(stream);
                        continue;
                    }
                    // Small requests and watch events must not wait for Nagle.
                    let _ = stream.set_nodelay(true);
                    conns.spawn(serve_connection(stream, router.clone(), tls.clone(), conn_shutdown.clone()));
                }
                Err(e) => {
                    tracing::debug!(error = %e, "accept failed");
                }
            },
        }
    }
    drop(listener);
    while conns.join_next().await.is_some() {}
}
