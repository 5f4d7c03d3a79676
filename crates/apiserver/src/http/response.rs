//! Building responses: JSON objects, `Status` errors, warnings, watch streams.

use axum::body::Body;
use axum::response::Response;
use futures::StreamExt;
use http::{HeaderValue, StatusCode, header};
use serde_json::Value;

use crate::objects::ApiError;
use crate::objects::watch::WatchStream;

fn with_json(builder: http::response::Builder, body: Body) -> Response {
    builder
        .header(header::CONTENT_TYPE, "application/json")
        .body(body)
        .unwrap_or_else(|_| Response::new(Body::empty()))
}

/// A JSON object with a status code and `Warning` headers.
pub fn json(code: StatusCode, value: &Value, warnings: &[String]) -> Response {
    let mut builder = Response::builder().status(code);
    for w in warnings {
        let text = format!("299 - {:?}", w);
        if let Ok(v) = HeaderValue::from_str(&text) {
            builder = builder.header(header::WARNING, v);
        }
    }
    let bytes = serde_json::to_vec(value).unwrap_or_default();
    with_json(builder, Body::from(bytes))
}

/// A body already serialized as JSON, with a status code.
pub fn json_bytes(code: StatusCode, body: Vec<u8>) -> Response {
    with_json(Response::builder().status(code), Body::from(body))
}

/// The `Status` answer for an error.
pub fn error(e: &ApiError) -> Response {
    let code = StatusCode::from_u16(e.code()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    json_bytes(code, e.status_bytes())
}

/// A watch: one JSON event per line, flushed as it comes, ending when the stream
/// ends or `shutdown` fires.
pub fn watch(events: WatchStream, mut shutdown: tokio::sync::watch::Receiver<bool>) -> Response {
    let stop = async move { crate::server::stopped(&mut shutdown).await };
    let lines = events.take_until(stop).map(|e| {
        let mut line = serde_json::to_vec(&e).unwrap_or_default();
        line.push(b'\n');
        Ok::<_, std::convert::Infallible>(bytes::Bytes::from(line))
    });
    with_json(
        Response::builder()
            .status(StatusCode::OK)
            .header(header::CACHE_CONTROL, "no-cache, private"),
        Body::from_stream(lines),
    )
}
