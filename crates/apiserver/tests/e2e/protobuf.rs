//! Protobuf answers: a client whose `Accept` prefers
//! `application/vnd.kubernetes.protobuf` gets objects, lists, watch events and
//! errors in it (custom resources stay JSON), over raw HTTP.

use fedmesh_apiserver::proto::{PROTOBUF, decode_body, decode_watch_event, encode_body};
use serde_json::{Value, json};

use crate::common::{client, namespace};
use crate::kubectl::kubectl;

/// One answer: status code, Content-Type and body.
struct Answer {
    code: u16,
    content_type: String,
    body: Vec<u8>,
}

impl Answer {
    fn object(&self) -> Value {
        assert_eq!(self.content_type, PROTOBUF, "code {}", self.code);
        decode_body(&self.body).unwrap()
    }
}

async fn send(method: &str, path: &str, accept: &str, body: Option<Vec<u8>>) -> Answer {
    use http_body_util::BodyExt;
    let mut req = http::Request::builder()
        .method(method)
        .uri(path)
        .header("accept", accept);
    if body.is_some() {
        req = req.header("content-type", PROTOBUF);
    }
    let req = req
        .body(kube::client::Body::from(body.unwrap_or_default()))
        .unwrap();
    let resp = client().send(req).await.unwrap();
    let code = resp.status().as_u16();
    let content_type = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let body = resp
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes()
        .to_vec();
    Answer {
        code,
        content_type,
        body,
    }
}

const TYPED: &str = "application/vnd.kubernetes.protobuf, */*";

#[tokio::test]
async fn a_protobuf_accepting_client_gets_protobuf_objects_lists_watches_and_errors() {
    let ns = namespace("pbanswers").await;
    let cms = format!("/api/v1/namespaces/{ns}/configmaps");
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": "settings", "labels": {"app": "web"}},
                    "data": {"a": "1"}});
    let created = send("POST", &cms, TYPED, Some(encode_body(&cm).unwrap())).await;
    assert_eq!(created.code, 201);
    let created = created.object();
    assert_eq!(created["kind"], "ConfigMap");
    assert_eq!(created["metadata"]["namespace"], ns.as_str());
    assert_eq!(created["data"], json!({"a": "1"}));
    let uid = created["metadata"]["uid"].as_str().unwrap().to_owned();

    let got = send("GET", &format!("{cms}/settings"), TYPED, None).await;
    assert_eq!(got.code, 200);
    assert_eq!(got.object()["metadata"]["uid"], uid.as_str());
    // The same object as JSON to a JSON client.
    let json_answer = send("GET", &format!("{cms}/settings"), "application/json", None).await;
    assert_eq!(json_answer.content_type, "application/json");
    let as_json: Value = serde_json::from_slice(&json_answer.body).unwrap();
    assert_eq!(as_json, got.object());

    let list = send("GET", &cms, TYPED, None).await.object();
    assert_eq!(list["kind"], "ConfigMapList");
    assert_eq!(list["items"][0]["metadata"]["name"], "settings");
    assert!(list["metadata"]["resourceVersion"].is_string());

    let mut changed = created.clone();
    changed["data"]["b"] = json!("2");
    let updated = send(
        "PUT",
        &format!("{cms}/settings"),
        TYPED,
        Some(encode_body(&changed).unwrap()),
    )
    .await;
    assert_eq!(updated.code, 200);
    assert_eq!(updated.object()["data"], json!({"a": "1", "b": "2"}));

    let missing = send("GET", &format!("{cms}/missing"), TYPED, None).await;
    assert_eq!(missing.code, 404);
    let status = missing.object();
    assert_eq!(status["kind"], "Status");
    assert_eq!(status["reason"], "NotFound");
    assert_eq!(status["message"], "configmaps \"missing\" not found");
    assert_eq!(status["code"], 404);

    // A watch from no resourceVersion: the object as ADDED, then the timeout.
    let watch = send(
        "GET",
        &format!("{cms}?watch=1&timeoutSeconds=1"),
        TYPED,
        None,
    )
    .await;
    assert_eq!(watch.code, 200);
    assert_eq!(watch.content_type, format!("{PROTOBUF};stream=watch"));
    let (event, used) = decode_watch_event(&watch.body).unwrap();
    assert_eq!(event["type"], "ADDED");
    assert_eq!(event["object"]["kind"], "ConfigMap");
    assert_eq!(event["object"]["data"], json!({"a": "1", "b": "2"}));
    assert_eq!(used, watch.body.len(), "one event");

    let deleted = send("DELETE", &format!("{cms}/settings"), TYPED, None).await;
    assert_eq!(deleted.code, 200);
    assert_eq!(deleted.object()["metadata"]["uid"], uid.as_str());
}

#[tokio::test]
async fn custom_resources_answer_json_or_not_acceptable_as_in_kube() {
    crate::kubectl::ensure_widgets_crd();
    let ns = namespace("pbcr").await;
    let r = kubectl(
        &["apply", "-f", "-"],
        Some(&crate::kubectl::widget(&ns, "w", 3)),
    );
    assert!(r.ok, "{}", r.stderr);
    let path = format!("/apis/example.com/v1/namespaces/{ns}/widgets/w");

    let typed = send("GET", &path, TYPED, None).await;
    assert_eq!(
        (typed.code, typed.content_type.as_str()),
        (200, "application/json")
    );
    let widget: Value = serde_json::from_slice(&typed.body).unwrap();
    assert_eq!(widget["spec"]["size"], 3);

    let only = send("GET", &path, PROTOBUF, None).await;
    assert_eq!(only.code, 406);
    let status = only.object();
    assert_eq!(status["reason"], "NotAcceptable");
    assert_eq!(
        status["message"],
        "only the following media types are accepted: application/json, application/yaml, application/vnd.kubernetes.protobuf"
    );

    // Their metadata has a protobuf form (what metadata informers ask for).
    let meta = send(
        "GET",
        &path,
        "application/vnd.kubernetes.protobuf;as=PartialObjectMetadata;g=meta.k8s.io;v=v1",
        None,
    )
    .await
    .object();
    assert_eq!(meta["kind"], "PartialObjectMetadata");
    assert_eq!(meta["metadata"]["name"], "w");
}

/// The request and response headers kubectl logs at `-v=8`, one block per
/// round trip, as `(request line, request headers, response headers)`.
fn round_trips(log: &str) -> Vec<(String, String, String)> {
    let mut trips = Vec::new();
    let mut blocks = log.split("\"Request\" verb=").skip(1);
    for block in blocks.by_ref() {
        let (request, rest) = block.split_once("\"Response\"").unwrap_or((block, ""));
        let line = request.lines().next().unwrap_or_default().to_owned();
        let response = rest.split(" >").next().unwrap_or_default().to_owned();
        trips.push((line, request.to_owned(), response));
    }
    trips
}

/// kubectl 1.33 (the dispatcher's pick for this server's `/version`) sends
/// typed commands' bodies in protobuf and asks for protobuf back: each of
/// these commands' writes goes in protobuf, is answered in protobuf, and
/// kubectl prints its usual result.
#[tokio::test]
async fn kubectl_typed_commands_talk_protobuf() {
    let ns = namespace("pbkubectl").await;
    let commands: [(&[&str], &str, &str); 3] = [
        (
            &["create", "secret", "generic", "s1", "--from-literal=a=b"],
            "/secrets?",
            "secret/s1 created",
        ),
        (
            &["create", "serviceaccount", "robot"],
            "/serviceaccounts?",
            "serviceaccount/robot created",
        ),
        (
            &["create", "token", "robot"],
            "/serviceaccounts/robot/token",
            "",
        ),
    ];
    for (args, path, printed) in commands {
        let mut all = vec!["-n", &ns, "-v=8"];
        all.extend_from_slice(args);
        let r = kubectl(&all, None);
        assert!(r.ok, "{args:?}: {}", r.stderr);
        assert!(r.stdout.contains(printed), "{args:?}: {}", r.stdout);
        let trips = round_trips(&r.stderr);
        let (line, request, response) = trips
            .iter()
            .find(|(line, ..)| line.starts_with("\"POST\"") && line.contains(path))
            .unwrap_or_else(|| {
                panic!("{args:?}: no POST to {path} in kubectl's log: {}", r.stderr)
            });
        assert!(
            request.contains("Content-Type: application/vnd.kubernetes.protobuf"),
            "{args:?}: {line}\n{request}"
        );
        assert!(
            response.contains("status=\"201 Created\"")
                && response.contains("Content-Type: application/vnd.kubernetes.protobuf"),
            "{args:?}: {line}\n{response}"
        );
    }
    // What went in as protobuf reads back as JSON.
    let r = kubectl(
        &["-n", &ns, "get", "secret", "s1", "-o", "jsonpath={.data.a}"],
        None,
    );
    assert_eq!(r.stdout, "Yg==", "{}", r.stderr);
}
