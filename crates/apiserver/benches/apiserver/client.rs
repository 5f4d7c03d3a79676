//! A thin HTTP/2 (h2c, prior knowledge) client over hyper: one connection per
//! simulated client, bodies prepared before the clock starts, so that the
//! figures are the server's and not a client library's.

use std::net::SocketAddr;

use bytes::Bytes;
use http::{Method, Request, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::http2::SendRequest;
use hyper_util::rt::{TokioExecutor, TokioIo};

/// One HTTP/2 connection to a server.
#[derive(Clone)]
pub struct H2 {
    sender: SendRequest<Full<Bytes>>,
    authority: String,
}

impl H2 {
    /// Connects with HTTP/2 prior knowledge (what a gRPC client and, over TLS
    /// with ALPN, client-go and kube-rs speak).
    pub async fn connect(addr: SocketAddr) -> std::io::Result<H2> {
        let stream = tokio::net::TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let mut builder = hyper::client::conn::http2::Builder::new(TokioExecutor::new());
        // Lists of 10,000 objects are ~15 MB: big windows keep them from
        // being throttled by flow control rather than by the server.
        builder
            .initial_stream_window_size(8 << 20)
            .initial_connection_window_size(16 << 20);
        let (sender, conn) = builder
            .handshake(TokioIo::new(stream))
            .await
            .map_err(std::io::Error::other)?;
        tokio::spawn(async move {
            // The connection ends when the bench drops its sender.
            let _ = conn.await;
        });
        Ok(H2 {
            sender,
            authority: addr.to_string(),
        })
    }

    fn build(
        &self,
        method: Method,
        path: &str,
        content_type: &str,
        body: Bytes,
    ) -> Request<Full<Bytes>> {
        Request::builder()
            .method(method)
            .uri(format!("http://{}{path}", self.authority))
            .header(header::CONTENT_TYPE, content_type)
            .header(header::ACCEPT, "application/json")
            .body(Full::new(body))
            .expect("a well-formed request")
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
