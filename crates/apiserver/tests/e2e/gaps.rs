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
        "-n", &ns, "create", "secret", "generic", "creds", "--from-literal=user=admin",
        "--from-literal=pass=s3cr=t",
    ]);
    assert_eq!(out.trim(), "secret/creds created");
    let user = ok(&["-n", &ns, "get", "secret", "creds", "-o", "jsonpath={.data.user}"]);
    assert_eq!(user, "YWRtaW4=");
    let kind = ok(&["-n", &ns, "get", "secret", "creds", "-o", "jsonpath={.type}"]);
    assert_eq!(kind, "Opaque");

    let out = ok(&["-n", &ns, "create", "configmap", "settings", "--from-literal=a=1", "--from-literal=empty="]);
    assert_eq!(out.trim(), "configmap/settings created");
    let data = ok(&["-n", &ns, "get", "cm", "settings", "-o", "jsonpath={.data}"]);
    let data: serde_json::Value = serde_json::from_str(&data).unwrap();
    assert_eq!(data, serde_json::json!({"a": "1", "empty": ""}));

    assert_eq!(ok(&["-n", &ns, "create", "serviceaccount", "robot"]).trim(), "serviceaccount/robot created");
    let token = ok(&["-n", &ns, "create", "token", "robot", "--duration=10m"]);
    assert_eq!(token.trim().split('.').count(), 3, "a JWT: {token}");
    let whoami = kubectl(&["--token", token.trim(), "auth", "can-i", "list", "pods", "-n", &ns], None);
    assert_eq!(whoami.stdout.trim(), "no", "{}", whoami.stderr);

    assert_eq!(
        ok(&["-n", &ns, "create", "role", "reader", "--verb=get,list", "--resource=pods"]).trim(),
        "role.rbac.authorization.k8s.io/reader created"
    );
    assert_eq!(
        ok(&["-n", &ns, "create", "rolebinding", "robot-reads", "--role=reader",
             &format!("--serviceaccount={ns}:robot")]).trim(),
        "rolebinding.rbac.authorization.k8s.io/robot-reads created"
    );
    let subject = ok(&["-n", &ns, "get", "rolebinding", "robot-reads", "-o", "jsonpath={.subjects[0]}"]);
    let subject: serde_json::Value = serde_json::from_str(&subject).unwrap();
    assert_eq!(subject, serde_json::json!({"kind": "ServiceAccount", "name": "robot", "namespace": ns}));
    let can = kubectl(&["--token", token.trim(), "auth", "can-i", "list", "pods", "-n", &ns], None);
    assert_eq!(can.stdout.trim(), "yes", "{}", can.stderr);
    assert_eq!(ok(&["auth", "can-i", "create", "secrets", "-n", &ns]).trim(), "yes");

    let out = ok(&["-n", &ns, "create", "service", "clusterip", "web", "--tcp=80:8080"]);
    assert_eq!(out.trim(), "service/web created");
    let port = ok(&["-n", &ns, "get", "svc", "web", "-o", "jsonpath={.spec.ports[0].targetPort}"]);
    assert_eq!(port, "8080");
    let ip = ok(&["-n", &ns, "get", "svc", "web", "-o", "jsonpath={.spec.clusterIP}"]);
    assert!(ip.starts_with("10."), "{ip}");

    let created = ok(&["create", "namespace", &format!("{ns}-extra")]);
    assert_eq!(created.trim(), format!("namespace/{ns}-extra created"));
}
