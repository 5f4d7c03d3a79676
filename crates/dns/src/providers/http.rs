//! The little HTTP client the REST providers need: one request per
//! connection (a sync round makes a handful), HTTP/1.1, `https` with the
//! system's roots, a timeout on the whole exchange.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Uri};
use http_body_util::{BodyExt as _, Full};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use super::ProviderError;

/// How long one request may take, connection included.
const TIMEOUT: Duration = Duration::from_secs(10);

/// An answer: status and whole body.
pub(crate) struct Response {
    pub(crate) status: u16,
    pub(crate) body: Bytes,
}

/// A provider's endpoint (`http://host:port` or `https://host`).
#[derive(Debug, Clone)]
pub(crate) struct Endpoint {
    provider: &'static str,
    tls: bool,
    host: String,
    port: u16,
}

impl Endpoint {
    /// Reads `url`; only the scheme, host and port are used.
    pub(crate) fn parse(provider: &'static str, url: &str) -> Result<Self, String> {
        let uri: Uri = url
            .parse()
            .map_err(|e| format!("{provider} endpoint {url:?} is not a URL: {e}"))?;
        let tls = match uri.scheme_str() {
            Some("http") => false,
            Some("https") => true,
            _ => {
                return Err(format!(
                    "{provider} endpoint {url:?}: the scheme must be http or https"
                ));
            }
        };
        let host = uri
            .host()
            .ok_or_else(|| format!("{provider} endpoint {url:?} has no host"))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
        Ok(Self {
            provider,
            tls,
            host,
            port,
        })
    }

    /// The `Host` header's value.
    pub(crate) fn authority(&self) -> String {
        let default = if self.tls { 443 } else { 80 };
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        if self.port == default {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }

    fn url(&self) -> String {
        format!(
            "{}://{}",
            if self.tls { "https" } else { "http" },
            self.authority()
        )
    }

    /// Sends one request; `path_and_query` starts with '/'. `headers` come on
    /// top of `Host` and `Content-Length`.
    pub(crate) async fn send(
        &self,
        method: Method,
        path_and_query: &str,
        headers: &[(String, String)],
        body: Vec<u8>,
    ) -> Result<Response, ProviderError> {
        let unreachable = |reason: String| ProviderError::Unreachable {
            provider: self.provider,
            endpoint: self.url(),
            reason,
        };
        let mut builder = Request::builder()
            .method(method)
            .uri(path_and_query)
            .header(http::header::HOST, self.authority());
        for (name, value) in headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        let request = builder
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| unreachable(format!("building the request: {e}")))?;
        let exchange = async {
            let tcp = TcpStream::connect((self.host.as_str(), self.port))
                .await
                .map_err(|e| format!("connecting: {e}"))?;
            if self.tls {
                let name = rustls::pki_types::ServerName::try_from(self.host.clone())
                    .map_err(|e| format!("TLS server name: {e}"))?;
                let stream = tls_connector()?
                    .connect(name, tcp)
                    .await
                    .map_err(|e| format!("TLS handshake: {e}"))?;
                exchange(stream, request).await
            } else {
                exchange(tcp, request).await
            }
        };
        match tokio::time::timeout(TIMEOUT, exchange).await {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(reason)) => Err(unreachable(reason)),
            Err(_) => Err(unreachable(format!("no answer within {TIMEOUT:?}"))),
        }
    }
}

async fn exchange<S>(io: S, request: Request<Full<Bytes>>) -> Result<Response, String>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(|e| format!("HTTP handshake: {e}"))?;
    // The connection task ends when the sender is dropped after the answer.
    let task = tokio::spawn(connection);
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| format!("sending the request: {e}"))?;
    let status = response.status().as_u16();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| format!("reading the answer: {e}"))?
        .to_bytes();
    drop(sender);
    task.abort();
    Ok(Response { status, body })
}

fn tls_connector() -> Result<tokio_rustls::TlsConnector, String> {
    let mut roots = rustls::RootCertStore::empty();
    let found = rustls_native_certs::load_native_certs();
    roots.add_parsable_certificates(found.certs);
    if roots.is_empty() {
        return Err(
            "no trusted root certificates found on this system (install ca-certificates)".into(),
        );
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| format!("TLS setup: {e}"))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
}
