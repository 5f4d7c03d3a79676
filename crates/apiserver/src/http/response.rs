//! Building responses: objects (JSON or protobuf, as negotiated), `Status`
//! errors, warnings, watch streams.

use axum::body::Body;
use axum::response::Response;
use futures::StreamExt;
use http::{HeaderValue, StatusCode, header};
use serde_json::Value;

use super::negotiation::Encoding;
use crate::objects::ApiError;
use crate::objects::watch::WatchStream;
use crate::proto::PROTOBUF;

fn with_type(builder: http::response::Builder, content_type: &str, body: Body) -> Response {
    builder
        .header(header::CONTENT_TYPE, content_type)
        .body(body)
        .unwrap_or_else(|_| Response::new(Body::empty()))
}

/// A JSON object with a status code and `Warning` headers.
pub fn json(code: StatusCode, value: &Value, warnings: &[String]) -> Response {
    object(Encoding::Json, code, value, warnings)
}

/// An object in the negotiated encoding, with a status code and `Warning`
/// headers. A value without a protobuf form (a Table) is written as JSON.
pub fn object(
    encoding: Encoding,
    code: StatusCode,
    value: &Value,
    warnings: &[String],
) -> Response {
    let mut builder = Response::builder().status(code);
    for w in warnings {
        let text = format!("299 - {:?}", w);
        if let Ok(v) = HeaderValue::from_str(&text) {
            builder = builder.header(header::WARNING, v);
        }
    }
    if encoding == Encoding::Protobuf
        && let Ok(body) = crate::proto::encode_body(value)
    {
        return with_type(builder, PROTOBUF, Body::from(body));
    }
    let bytes = serde_json::to_vec(value).unwrap_or_default();
    with_type(builder, "application/json", Body::from(bytes))
}

/// A body already serialized as JSON, with a status code.
pub fn json_bytes(code: StatusCode, body: Vec<u8>) -> Response {
    with_type(
        Response::builder().status(code),
        "application/json",
        Body::from(body),
    )
}

/// The `Status` answer for an error, in the negotiated encoding (a `Status`
/// has a protobuf form, so a client that prefers protobuf gets it even where
/// the object it asked for has none, as from kube-apiserver).
pub fn error(encoding: Encoding, e: &ApiError) -> Response {
    let code = StatusCode::from_u16(e.code()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    match encoding {
        Encoding::Protobuf => object(encoding, code, &e.status(), &[]),
        Encoding::Json => json_bytes(code, e.status_bytes()),
    }
}

/// A watch, each event flushed as it comes, ending when the stream ends or
/// `shutdown` fires: JSON events one per line, or protobuf `WatchEvent` frames
/// (`crate::proto::encode_watch_event`).
pub fn watch(
    encoding: Encoding,
    events: WatchStream,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) -> Response {
    let stop = async move { crate::server::stopped(&mut shutdown).await };
    let events = events.take_until(stop);
    let builder = Response::builder()
        .status(StatusCode::OK)
        .header(header::CACHE_CONTROL, "no-cache, private");
    match encoding {
        Encoding::Json => {
            let lines = events.map(|e| {
                let mut line = serde_json::to_vec(&e).unwrap_or_default();
                line.push(b'\n');
                Ok::<_, std::convert::Infallible>(bytes::Bytes::from(line))
            });
            with_type(builder, "application/json", Body::from_stream(lines))
        }
        Encoding::Protobuf => {
            let frames = events.map(|e| {
                let kind = e["type"].as_str().unwrap_or_default();
                let frame = crate::proto::encode_watch_event(kind, &e["object"])
                    .or_else(|err| {
                        // An object the codec cannot write is reported as a
                        // failed watch is: an ERROR event saying why.
                        let status = ApiError::Internal(err.to_string()).status();
                        crate::proto::encode_watch_event("ERROR", &status)
                    })
                    .unwrap_or_default();
                Ok::<_, std::convert::Infallible>(bytes::Bytes::from(frame))
            });
            with_type(
                builder,
                &format!("{PROTOBUF};stream=watch"),
                Body::from_stream(frames),
            )
        }
    }
}
