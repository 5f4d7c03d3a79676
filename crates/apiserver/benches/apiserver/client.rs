//! A thin HTTP/2 client over hyper (TLS with ALPN `h2` as kube clients use it,
//! or prior-knowledge h2c for etcd and plaintext servers): one connection per
//! simulated client, bodies prepared before the clock starts, so that the
//! figures are the server's and not a client library's.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::{Method, Request, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::http2::SendRequest;
use hyper_util::rt::{TokioExecutor, TokioIo};

/// Where and how to reach a server.
#[derive(Clone)]
pub struct Target {
    /// Its address.
    pub addr: SocketAddr,
    /// TLS trusting the server's CA; `None` for plaintext.
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// Bearer token sent with every request.
    pub token: Option<String>,
}

impl Target {
    /// A plaintext server without authentication (etcd).
    pub fn plain(addr: SocketAddr) -> Target {
        Target {
            addr,
            tls: None,
            token: None,
        }
    }
}

/// A TLS client configuration trusting only the CA in `ca_pem`, offering `h2`.
pub fn tls_config(ca_pem: &str) -> Arc<rustls::ClientConfig> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots
            .add(cert.expect("a CA certificate"))
            .expect("a usable CA certificate");
    }
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("TLS versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec()];
    Arc::new(config)
}

/// One HTTP/2 connection to a server.
#[derive(Clone)]
pub struct H2 {
    sender: SendRequest<Full<Bytes>>,
    base: String,
    authorization: Option<header::HeaderValue>,
}

async fn handshake<T>(io: T) -> std::io::Result<SendRequest<Full<Bytes>>>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let mut builder = hyper::client::conn::http2::Builder::new(TokioExecutor::new());
    // Lists of 10,000 objects are ~18 MB: big windows keep them from being
    // throttled by flow control rather than by the server.
    builder
        .initial_stream_window_size(8 << 20)
        .initial_connection_window_size(16 << 20);
    let (sender, conn) = builder
        .handshake(TokioIo::new(io))
        .await
        .map_err(std::io::Error::other)?;
    tokio::spawn(async move {
        // The connection ends when the bench drops its sender.
        let _ = conn.await;
    });
    Ok(sender)
}

impl H2 {
    /// Connects: TLS with ALPN `h2` (what client-go and kube-rs speak to an
    /// API server), or HTTP/2 with prior knowledge in plaintext (gRPC).
    pub async fn connect(target: &Target) -> std::io::Result<H2> {
        let stream = tokio::net::TcpStream::connect(target.addr).await?;
        stream.set_nodelay(true)?;
        let (sender, scheme) = match &target.tls {
            Some(config) => {
                let name = rustls::pki_types::ServerName::IpAddress(target.addr.ip().into());
                let tls = tokio_rustls::TlsConnector::from(config.clone())
                    .connect(name, stream)
                    .await?;
                (handshake(tls).await?, "https")
            }
            None => (handshake(stream).await?, "http"),
        };
        let authorization = target.token.as_ref().map(|t| {
            header::HeaderValue::from_str(&format!("Bearer {t}")).expect("a token header")
        });
        Ok(H2 {
            sender,
            base: format!("{scheme}://{}", target.addr),
            authorization,
        })
    }

    fn build(
        &self,
        method: Method,
        path: &str,
        content_type: &str,
        body: Bytes,
    ) -> Request<Full<Bytes>> {
        let mut req = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base))
            .header(header::CONTENT_TYPE, content_type)
            .header(header::ACCEPT, "application/json")
            .body(Full::new(body))
            .expect("a well-formed request");
        if let Some(auth) = &self.authorization {
            req.headers_mut()
                .insert(header::AUTHORIZATION, auth.clone());
        }
        req
    }

    /// Sends a request and reads the whole response.
    pub async fn call(
        &mut self,
        method: Method,
        path: &str,
        content_type: &str,
        body: Bytes,
    ) -> Result<(StatusCode, Bytes), hyper::Error> {
        let req = self.build(method, path, content_type, body);
        let resp = self.sender.send_request(req).await?;
        let status = resp.status();
        let body = resp.into_body().collect().await?.to_bytes();
        Ok((status, body))
    }

    /// GET, response body as it streams (for watches).
    pub async fn stream(&mut self, path: &str) -> Result<(StatusCode, Incoming), hyper::Error> {
        let req = self.build(Method::GET, path, "application/json", Bytes::new());
        let resp = self.sender.send_request(req).await?;
        Ok((resp.status(), resp.into_body()))
    }

    /// A gRPC unary call: returns the response message and the `grpc-status`.
    pub async fn grpc(
        &mut self,
        path: &str,
        message: &[u8],
    ) -> Result<(Bytes, Option<String>), hyper::Error> {
        let mut framed = Vec::with_capacity(message.len() + 5);
        framed.push(0);
        framed.extend_from_slice(
            &u32::try_from(message.len())
                .expect("message under 4 GB")
                .to_be_bytes(),
        );
        framed.extend_from_slice(message);
        let mut req = self.build(Method::POST, path, "application/grpc", Bytes::from(framed));
        req.headers_mut()
            .insert(header::TE, header::HeaderValue::from_static("trailers"));
        let resp = self.sender.send_request(req).await?;
        let in_headers = grpc_status(resp.headers());
        let collected = resp.into_body().collect().await?;
        let status = collected.trailers().and_then(grpc_status).or(in_headers);
        let body = collected.to_bytes();
        let message = if body.len() >= 5 {
            body.slice(5..)
        } else {
            Bytes::new()
        };
        Ok((message, status))
    }
}

fn grpc_status(headers: &http::HeaderMap) -> Option<String> {
    headers
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}
