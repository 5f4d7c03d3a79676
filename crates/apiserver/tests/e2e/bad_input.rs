//! Bad requests of every kind get a `Status` with kube's code and reason.

use crate::common::{client, namespace};

async fn send(
    method: &str,
    path: &str,
    content_type: &str,
    body: Vec<u8>,
) -> Box<kube::core::Status> {
    let req = http::Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", content_type)
        .body(body)
        .unwrap();
    match client().request::<serde_json::Value>(req).await {
        Err(kube::Error::Api(s)) => s,
        other => panic!("{method} {path}: expected a Status error, got {other:?}"),
    }
}

#[tokio::test]
async fn malformed_wrong_and_oversized_bodies() {
    let ns = namespace("bad").await;
    let cms = format!("/api/v1/namespaces/{ns}/configmaps");
    let s = send("POST", &cms, "application/json", b"{not json".to_vec()).await;
    assert_eq!((s.code, s.reason.as_str()), (400, "BadRequest"));

    let s = send("POST", &cms, "application/yaml", b"a: [unclosed".to_vec()).await;
    assert_eq!(s.code, 400);

    let wrong_kind = br#"{"apiVersion":"v1","kind":"Secret","metadata":{"name":"x"}}"#.to_vec();
    let s = send("POST", &cms, "application/json", wrong_kind).await;
    assert_eq!(s.code, 400);

    let other_ns = br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x","namespace":"elsewhere"}}"#.to_vec();
    let s = send("POST", &cms, "application/json", other_ns).await;
    assert_eq!(s.code, 400);
    assert_eq!(
        s.message,
        "the namespace of the provided object does not match the namespace sent on the request"
    );

    let ok = br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x"}}"#.to_vec();
    let req = http::Request::builder()
        .method("POST")
        .uri(&cms)
        .header("content-type", "application/json")
        .body(ok)
        .unwrap();
    client().request::<serde_json::Value>(req).await.unwrap();
    let renamed = br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"y"}}"#.to_vec();
    let s = send("PUT", &format!("{cms}/x"), "application/json", renamed).await;
    assert_eq!(s.code, 400);
    assert_eq!(
        s.message,
        "the name of the object (y) does not match the name on the URL (x)"
    );

    let s = send("PATCH", &format!("{cms}/x"), "text/plain", b"{}".to_vec()).await;
    assert_eq!((s.code, s.reason.as_str()), (415, "UnsupportedMediaType"));

    let huge = format!(
        r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"big"}},"data":{{"a":"{}"}}}}"#,
        "x".repeat(4 * 1024 * 1024)
    );
    let s = send("POST", &cms, "application/json", huge.into_bytes()).await;
    assert_eq!((s.code, s.reason.as_str()), (413, "RequestEntityTooLarge"));

    let unknown =
        br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"u"},"bogus":1}"#.to_vec();
    let s = send(
        "POST",
        &format!("{cms}?fieldValidation=Strict"),
        "application/json",
        unknown,
    )
    .await;
    assert_eq!(s.code, 400);
    assert!(
        s.message.contains("unknown field \"bogus\""),
        "{}",
        s.message
    );

    let s = send(
        "DELETE",
        "/api/v1/namespaces/default/services/kubernetes/status",
        "application/json",
        Vec::new(),
    )
    .await;
    assert_eq!(s.code, 405);
    let s = send(
        "GET",
        "/apis/nope.example.com/v1/things",
        "application/json",
        Vec::new(),
    )
    .await;
    assert_eq!(s.code, 404);
}
