//! What real clients hit beyond plain CRUD: kinds the server does not serve,
//! protobuf bodies, identity reviews, metrics and health details.

use crate::kubectl::kubectl;

#[tokio::test]
async fn applying_a_kind_the_server_does_not_serve_says_no_matches() {
    let manifest = "apiVersion: example.org/v1\nkind: Gizmo\nmetadata:\n  name: g\n  namespace: default\nspec: {size: 1}\n";
    let out = kubectl(&["apply", "-f", "-"], Some(manifest));
    assert!(!out.ok);
    assert!(
        out.stderr
            .contains("no matches for kind \"Gizmo\" in version \"example.org/v1\""),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("ensure CRDs are installed first"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("proto:"), "{}", out.stderr);
}

fn ok(args: &[&str]) -> String {
    let r = kubectl(args, None);
    assert!(r.ok, "kubectl {args:?} failed: {}", r.stderr);
    r.stdout
}

/// kubectl 1.33 (what the dispatcher picks for this server's /version) sends
/// these typed commands' bodies as protobuf.
#[tokio::test]
async fn typed_commands_of_the_newest_kubectl_send_protobuf_that_is_understood() {
    let ns = crate::common::namespace("pb").await;
    let out = ok(&["version", "-o", "json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["clientVersion"]["minor"], "33", "{out}");

    let out = ok(&[
        "-n",
        &ns,
        "create",
        "secret",
        "generic",
        "creds",
        "--from-literal=user=admin",
        "--from-literal=pass=s3cr=t",
    ]);
    assert_eq!(out.trim(), "secret/creds created");
    let user = ok(&[
        "-n",
        &ns,
        "get",
        "secret",
        "creds",
        "-o",
        "jsonpath={.data.user}",
    ]);
    assert_eq!(user, "YWRtaW4=");
    let kind = ok(&[
        "-n",
        &ns,
        "get",
        "secret",
        "creds",
        "-o",
        "jsonpath={.type}",
    ]);
    assert_eq!(kind, "Opaque");

    let out = ok(&[
        "-n",
        &ns,
        "create",
        "configmap",
        "settings",
        "--from-literal=a=1",
        "--from-literal=empty=",
    ]);
    assert_eq!(out.trim(), "configmap/settings created");
    let data = ok(&["-n", &ns, "get", "cm", "settings", "-o", "jsonpath={.data}"]);
    let data: serde_json::Value = serde_json::from_str(&data).unwrap();
    assert_eq!(data, serde_json::json!({"a": "1", "empty": ""}));

    assert_eq!(
        ok(&["-n", &ns, "create", "serviceaccount", "robot"]).trim(),
        "serviceaccount/robot created"
    );
    let token = ok(&["-n", &ns, "create", "token", "robot", "--duration=10m"]);
    assert_eq!(token.trim().split('.').count(), 3, "a JWT: {token}");
    let whoami = kubectl(
        &[
            "--token",
            token.trim(),
            "auth",
            "can-i",
            "list",
            "pods",
            "-n",
            &ns,
        ],
        None,
    );
    assert_eq!(whoami.stdout.trim(), "no", "{}", whoami.stderr);

    assert_eq!(
        ok(&[
            "-n",
            &ns,
            "create",
            "role",
            "reader",
            "--verb=get,list",
            "--resource=pods"
        ])
        .trim(),
        "role.rbac.authorization.k8s.io/reader created"
    );
    assert_eq!(
        ok(&[
            "-n",
            &ns,
            "create",
            "rolebinding",
            "robot-reads",
            "--role=reader",
            &format!("--serviceaccount={ns}:robot")
        ])
        .trim(),
        "rolebinding.rbac.authorization.k8s.io/robot-reads created"
    );
    let subject = ok(&[
        "-n",
        &ns,
        "get",
        "rolebinding",
        "robot-reads",
        "-o",
        "jsonpath={.subjects[0]}",
    ]);
    let subject: serde_json::Value = serde_json::from_str(&subject).unwrap();
    assert_eq!(
        subject,
        serde_json::json!({"kind": "ServiceAccount", "name": "robot", "namespace": ns})
    );
    let can = kubectl(
        &[
            "--token",
            token.trim(),
            "auth",
            "can-i",
            "list",
            "pods",
            "-n",
            &ns,
        ],
        None,
    );
    assert_eq!(can.stdout.trim(), "yes", "{}", can.stderr);
    assert_eq!(
        ok(&["auth", "can-i", "create", "secrets", "-n", &ns]).trim(),
        "yes"
    );

    let out = ok(&[
        "-n",
        &ns,
        "create",
        "service",
        "clusterip",
        "web",
        "--tcp=80:8080",
    ]);
    assert_eq!(out.trim(), "service/web created");
    let port = ok(&[
        "-n",
        &ns,
        "get",
        "svc",
        "web",
        "-o",
        "jsonpath={.spec.ports[0].targetPort}",
    ]);
    assert_eq!(port, "8080");
    let ip = ok(&[
        "-n",
        &ns,
        "get",
        "svc",
        "web",
        "-o",
        "jsonpath={.spec.clusterIP}",
    ]);
    assert!(ip.starts_with("10."), "{ip}");

    let created = ok(&["create", "namespace", &format!("{ns}-extra")]);
    assert_eq!(created.trim(), format!("namespace/{ns}-extra created"));
}

/// The raw answer to a GET, as text, with its status code.
async fn raw_get(path: &str) -> (u16, String) {
    use http_body_util::BodyExt;
    let req = http::Request::get(path).body(Vec::new()).unwrap();
    let resp = crate::common::client()
        .send(req.map(kube::client::Body::from))
        .await
        .unwrap();
    let code = resp.status().as_u16();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (code, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test]
async fn status_lists_and_generation_are_written_as_kube_apiserver_writes_them() {
    use k8s_openapi::api::core::v1::{ConfigMap, Pod};
    use kube::api::{Api, PostParams};
    let ns = crate::common::namespace("shape").await;

    let (code, text) = raw_get(&format!("/api/v1/namespaces/{ns}/configmaps/missing")).await;
    assert_eq!(code, 404);
    assert_eq!(
        text,
        "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\",\"message\":\"configmaps \\\"missing\\\" not found\",\"reason\":\"NotFound\",\"details\":{\"name\":\"missing\",\"kind\":\"configmaps\"},\"code\":404}\n"
    );

    let cms: Api<ConfigMap> = Api::namespaced(crate::common::client(), &ns);
    let cm: ConfigMap =
        serde_json::from_value(serde_json::json!({"metadata": {"name": "c"}, "data": {"a": "1"}}))
            .unwrap();
    let cm = cms.create(&PostParams::default(), &cm).await.unwrap();
    assert_eq!(
        cm.metadata.generation, None,
        "ConfigMaps have no generation"
    );
    let pods: Api<Pod> = Api::namespaced(crate::common::client(), &ns);
    let pod: Pod = serde_json::from_value(serde_json::json!({"metadata": {"name": "p"},
        "spec": {"containers": [{"name": "c", "image": "nginx"}]}}))
    .unwrap();
    let pod = pods.create(&PostParams::default(), &pod).await.unwrap();
    assert_eq!(pod.metadata.generation, Some(1));

    let (code, text) = raw_get(&format!("/api/v1/namespaces/{ns}/configmaps")).await;
    assert_eq!(code, 200);
    let list: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(list["kind"], "ConfigMapList");
    let item = &list["items"][0];
    assert_eq!(item["metadata"]["name"], "c");
    assert!(
        item.get("kind").is_none() && item.get("apiVersion").is_none(),
        "{item}"
    );
    // A single object still says what it is.
    let (_, text) = raw_get(&format!("/api/v1/namespaces/{ns}/configmaps/c")).await;
    let one: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        (one["kind"].as_str(), one["apiVersion"].as_str()),
        (Some("ConfigMap"), Some("v1"))
    );
}

/// kubectl with its own kubeconfig file.
fn kubectl_with(kubeconfig: &std::path::Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .env("KUBECACHEDIR", kubeconfig.with_file_name("kubecache"))
        .output()
        .expect("kubectl runs")
}

#[tokio::test]
async fn a_client_certificate_authenticates_as_its_subject() {
    use fedmesh_apiserver::auth::kubeconfig::{KubeconfigEntry, write};
    let server = fedmesh_apiserver::testing::TestServer::start()
        .await
        .unwrap();
    let tls = &server.server().unwrap().guard().security.tls;
    let dir = tempfile::tempdir().unwrap();
    let config = |user: &str, group: &str| {
        let mut entry = KubeconfigEntry::new("cert", server.url(), tls.ca_pem(), "");
        entry.client_certificate = Some(tls.issue_client_certificate(user, Some(group)).unwrap());
        let path = dir.path().join(format!("{user}.kubeconfig"));
        write(&path, &[entry], "cert").unwrap();
        path
    };
    let admin = config("root", "system:masters");
    let out = tokio::task::spawn_blocking(move || {
        kubectl_with(&admin, &["get", "ns", "default", "-o", "name"])
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "namespace/default"
    );

    let jane = config("jane", "devs");
    let out = tokio::task::spawn_blocking(move || kubectl_with(&jane, &["get", "ns"]))
        .await
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("User \"jane\" cannot list resource \"namespaces\""),
        "{stderr}"
    );
}

#[tokio::test]
async fn a_legacy_token_secret_gets_a_token_that_authenticates() {
    use base64::Engine;
    let ns = crate::common::namespace("legacy").await;
    let manifest = format!(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: robot-token\n  namespace: {ns}\n  annotations:\n    kubernetes.io/service-account.name: default\ntype: kubernetes.io/service-account-token\n"
    );
    // The namespace's default ServiceAccount is made by a controller: retry
    // until it exists, as `kubectl apply` in a script would.
    let mut token = String::new();
    for _ in 0..50 {
        let _ = kubectl(
            &[
                "delete",
                "-n",
                &ns,
                "secret",
                "robot-token",
                "--ignore-not-found",
            ],
            None,
        );
        let out = kubectl(&["apply", "-f", "-"], Some(&manifest));
        assert!(out.ok, "{}", out.stderr);
        token = ok(&[
            "-n",
            &ns,
            "get",
            "secret",
            "robot-token",
            "-o",
            "jsonpath={.data.token}",
        ]);
        if !token.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let jwt = String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(&token)
            .unwrap(),
    )
    .unwrap();
    let ca = ok(&[
        "-n",
        &ns,
        "get",
        "secret",
        "robot-token",
        "-o",
        "jsonpath={.data.ca\\.crt}",
    ]);
    assert!(!ca.is_empty());
    let out = kubectl(&["--token", &jwt, "get", "ns"], None);
    assert!(!out.ok);
    assert!(
        out.stderr.contains(&format!(
            "User \"system:serviceaccount:{ns}:default\" cannot list"
        )),
        "{}",
        out.stderr
    );
}

#[tokio::test]
async fn auth_whoami_and_token_review() {
    let ns = crate::common::namespace("who").await;
    let out = ok(&[
        "auth",
        "whoami",
        "-o",
        "jsonpath={.status.userInfo.username}",
    ]);
    assert_eq!(out, "fedmesh:admin");
    ok(&["-n", &ns, "create", "serviceaccount", "robot"]);
    let token = ok(&["-n", &ns, "create", "token", "robot"]);
    let token = token.trim();
    let out = kubectl(&["--token", token, "auth", "whoami"], None);
    assert!(out.ok, "{}", out.stderr);
    assert!(
        out.stdout
            .contains(&format!("system:serviceaccount:{ns}:robot")),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("system:serviceaccounts"),
        "{}",
        out.stdout
    );

    let review = |t: &str| {
        format!(
            "apiVersion: authentication.k8s.io/v1\nkind: TokenReview\nspec:\n  token: \"{t}\"\n"
        )
    };
    let out = kubectl(&["create", "-f", "-", "-o", "json"], Some(&review(token)));
    assert!(out.ok, "{}", out.stderr);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["status"]["authenticated"], true, "{v}");
    assert_eq!(
        v["status"]["user"]["username"],
        format!("system:serviceaccount:{ns}:robot")
    );
    let out = kubectl(
        &["create", "-f", "-", "-o", "json"],
        Some(&review("not-a-token")),
    );
    assert!(out.ok, "{}", out.stderr);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["status"]["authenticated"], false, "{v}");
}

#[tokio::test]
async fn health_details_openapi_entries_logs_and_proxy_answer_as_kube_does() {
    let out = ok(&["get", "--raw", "/livez?verbose"]);
    assert!(out.contains("[+]ping ok\n[+]log ok\n[+]etcd ok\n"), "{out}");
    assert!(out.ends_with("livez check passed\n"), "{out}");
    let out = ok(&["get", "--raw", "/readyz?verbose"]);
    assert!(
        out.contains("[+]shutdown ok\n") && out.contains("[+]etcd-readiness ok\n"),
        "{out}"
    );
    assert!(out.ends_with("readyz check passed\n"), "{out}");
    assert_eq!(ok(&["get", "--raw", "/readyz/ping"]), "ok");
    assert_eq!(ok(&["get", "--raw", "/livez"]), "ok");

    let root: serde_json::Value =
        serde_json::from_str(&ok(&["get", "--raw", "/openapi/v3"])).unwrap();
    assert!(
        root["paths"]["api/v1"]["serverRelativeURL"].is_string(),
        "{root}"
    );
    for entry in ["api", "apis", "version"] {
        let url = root["paths"][entry]["serverRelativeURL"]
            .as_str()
            .unwrap_or_else(|| panic!("{entry} in {root}"));
        let doc: serde_json::Value = serde_json::from_str(&ok(&["get", "--raw", url])).unwrap();
        assert_eq!(doc["openapi"], "3.0.0");
    }
    let version: serde_json::Value =
        serde_json::from_str(&ok(&["get", "--raw", "/openapi/v3/version"])).unwrap();
    assert_eq!(
        version["paths"]["/version/"]["get"]["operationId"],
        "getCodeVersion"
    );

    let ns = crate::common::namespace("nothing").await;
    let unscheduled = format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: idle\n  namespace: {ns}\nspec:\n  containers: [{{name: c, image: nginx}}]\n"
    );
    assert!(kubectl(&["create", "-f", "-"], Some(&unscheduled)).ok);
    let (code, text) = raw_get(&format!("/api/v1/namespaces/{ns}/pods/idle/log")).await;
    assert_eq!(code, 400);
    assert!(
        text.contains("\"message\":\"pod idle does not have a host assigned\""),
        "{text}"
    );
    let bound = format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: bound\n  namespace: {ns}\nspec:\n  nodeName: node-1\n  containers: [{{name: c, image: nginx}}]\n"
    );
    assert!(kubectl(&["create", "-f", "-"], Some(&bound)).ok);
    let out = kubectl(
        &["-n", &ns, "logs", "bound", "--pod-running-timeout=1s"],
        None,
    );
    assert!(!out.ok);
    assert!(out.stderr.contains("nothing really runs"), "{}", out.stderr);

    ok(&[
        "-n",
        &ns,
        "create",
        "service",
        "clusterip",
        "web",
        "--tcp=80:8080",
    ]);
    let out = kubectl(
        &[
            "get",
            "--raw",
            &format!("/api/v1/namespaces/{ns}/services/web:80/proxy/healthz"),
        ],
        None,
    );
    assert!(!out.ok);
    assert!(out.stderr.contains("ServiceUnavailable"), "{}", out.stderr);
    assert!(
        out.stderr.contains("no endpoints available for service"),
        "{}",
        out.stderr
    );
    // (kubectl, not kube-rs: kube-rs' client retries a 503 with backoff.)
    let (code, _) = raw_get(&format!("/api/v1/namespaces/{ns}/pods/missing/log")).await;
    assert_eq!(code, 404);
}

#[tokio::test]
async fn metrics_have_kube_apiservers_names() {
    let ns = crate::common::namespace("metrics").await;
    ok(&[
        "-n",
        &ns,
        "create",
        "configmap",
        "counted",
        "--from-literal=a=1",
    ]);
    ok(&["-n", &ns, "get", "configmaps"]);
    let text = ok(&["get", "--raw", "/metrics"]);
    assert!(
        text.contains("# TYPE apiserver_request_total counter\n"),
        "{text}"
    );
    let line = |prefix: &str| {
        text.lines()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no {prefix} in:\n{text}"))
            .to_owned()
    };
    line(
        "apiserver_request_total{code=\"201\",component=\"apiserver\",group=\"\",resource=\"configmaps\",scope=\"namespace\",subresource=\"\",verb=\"POST\",version=\"v1\"}",
    );
    line(
        "apiserver_request_total{code=\"200\",component=\"apiserver\",group=\"\",resource=\"configmaps\",scope=\"namespace\",subresource=\"\",verb=\"LIST\",version=\"v1\"}",
    );
    line(
        "apiserver_request_duration_seconds_bucket{component=\"apiserver\",group=\"\",resource=\"configmaps\"",
    );
    line("apiserver_request_duration_seconds_count{");
    let stored = line("apiserver_storage_objects{resource=\"configmaps\"}");
    let n: u64 = stored.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(n >= 1, "{stored}");
    line("apiserver_storage_objects{resource=\"events\"}");
}
