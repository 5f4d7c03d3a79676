//! kubectl as a user runs it, against the shared server; each test checks what
//! kubectl prints.

use std::process::{Command, Stdio};
use std::time::Duration;

use crate::common::{namespace, shared};

/// What one kubectl run gave.
pub struct Run {
    pub ok: bool,
    pub stdout: String,
    pub stderr: String,
}

/// Runs kubectl with the shared server's kubeconfig and `stdin`, bounded by a
/// generous timeout (the dispatcher may unpack a kubectl on first use).
pub fn kubectl(args: &[&str], stdin: Option<&str>) -> Run {
    kubectl_with(&shared().kubeconfig, args, stdin)
}

/// Runs kubectl with `kubeconfig` (see [`kubectl`]).
pub fn kubectl_with(kubeconfig: &std::path::Path, args: &[&str], stdin: Option<&str>) -> Run {
    let mut cmd = Command::new("kubectl");
    cmd.arg("--kubeconfig")
        .arg(kubeconfig)
        .env("KUBECACHEDIR", kubeconfig.with_file_name("kubecache"));
    run(cmd, args, stdin)
}

/// Runs kubectl as a user with several clusters does: `KUBECONFIG` names
/// every kubeconfig (kubectl merges them) and `--context` picks one.
pub fn kubectl_merged(kubeconfigs: &[std::path::PathBuf], args: &[&str]) -> Run {
    let mut cmd = Command::new("kubectl");
    let joined = std::env::join_paths(kubeconfigs).expect("kubeconfig paths join");
    cmd.env("KUBECONFIG", joined);
    if let Some(first) = kubeconfigs.first() {
        cmd.env("KUBECACHEDIR", first.with_file_name("kubecache"));
    }
    run(cmd, args, None)
}

fn run(mut cmd: Command, args: &[&str], stdin: Option<&str>) -> Run {
    cmd.args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("kubectl runs");
    if let Some(input) = stdin {
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    // Output is read while kubectl runs (a full pipe would stall it), bounded
    // by the deadline; a kubectl still running then is killed by its pid.
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let out = match rx.recv_timeout(Duration::from_secs(120)) {
        Ok(out) => out.unwrap(),
        Err(_) => {
            let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
            rx.recv().unwrap().unwrap()
        }
    };
    Run {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn ok(args: &[&str]) -> String {
    let r = kubectl(args, None);
    assert!(r.ok, "kubectl {args:?} failed: {}", r.stderr);
    r.stdout
}

#[tokio::test]
async fn version_picks_the_newest_kubectl() {
    let out = ok(&["version", "-o", "json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["serverVersion"]["minor"], "33");
    let client_minor = v["clientVersion"]["minor"]
        .as_str()
        .unwrap()
        .trim_end_matches('+');
    assert_eq!(client_minor, "33", "{out}");
}

#[tokio::test]
async fn create_get_and_delete_a_configmap() {
    let ns = namespace("kc").await;
    let out = ok(&[
        "-n",
        &ns,
        "create",
        "configmap",
        "settings",
        "--from-literal=a=1",
    ]);
    assert_eq!(out.trim(), "configmap/settings created");
    let out = ok(&[
        "-n",
        &ns,
        "get",
        "configmap",
        "settings",
        "-o",
        "jsonpath={.data.a}",
    ]);
    assert_eq!(out, "1");
    let out = ok(&["-n", &ns, "get", "cm"]);
    assert!(out.lines().next().unwrap().starts_with("NAME"), "{out}");
    assert!(out.contains("settings"), "{out}");
    let r = kubectl(&["-n", &ns, "get", "cm", "missing"], None);
    assert!(!r.ok);
    assert!(
        r.stderr.contains("configmaps \"missing\" not found"),
        "{}",
        r.stderr
    );
    let out = ok(&["-n", &ns, "delete", "cm", "settings"]);
    assert_eq!(out.trim(), "configmap \"settings\" deleted");
}

const MANIFEST: &str = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget, shortNames: [wd], categories: [all]}
  versions:
  - name: v1
    served: true
    storage: true
    subresources: {status: {}}
    additionalPrinterColumns:
    - {name: Size, type: integer, jsonPath: .spec.size}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              size: {type: integer, default: 1, maximum: 10}
              color: {type: string}
          status:
            type: object
            properties:
              ready: {type: boolean}
"#;

fn widget(ns: &str, name: &str, size: u32) -> String {
    format!(
        "---\napiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: {name}\n  namespace: {ns}\nspec:\n  size: {size}\n  color: blue\n"
    )
}

fn service_yaml(ns: &str, name: &str) -> String {
    format!(
        "---\napiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\n  namespace: {ns}\n  labels: {{app: {name}}}\nspec:\n  selector: {{app: {name}}}\n  ports:\n  - {{name: http, port: 80, targetPort: 8080}}\n"
    )
}

fn ensure_widgets_crd() {
    let r = kubectl(&["apply", "-f", "-"], Some(MANIFEST));
    assert!(r.ok, "{}", r.stderr);
    let r = kubectl(
        &[
            "wait",
            "--for=condition=established",
            "--timeout=20s",
            "crd/widgets.example.com",
        ],
        None,
    );
    assert!(r.ok, "{}", r.stderr);
}

#[tokio::test]
async fn client_side_apply_of_a_crd_and_its_objects_then_reapply() {
    let ns = namespace("apply").await;
    let docs = format!(
        "{MANIFEST}{}{}",
        widget(&ns, "w1", 3),
        service_yaml(&ns, "web")
    );
    // The CRD may not be served yet when the widget document is sent: retry as a
    // user would.
    let mut r = kubectl(&["apply", "-f", "-"], Some(&docs));
    for _ in 0..5 {
        if r.ok {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
        r = kubectl(&["apply", "-f", "-"], Some(&docs));
    }
    assert!(r.ok, "{}", r.stderr);
    assert!(
        r.stdout.contains(&"widget.example.com/w1 ".to_string()),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("service/web "), "{}", r.stdout);

    let size = ok(&[
        "-n",
        &ns,
        "get",
        "widget",
        "w1",
        "-o",
        "jsonpath={.spec.size}",
    ]);
    assert_eq!(size, "3");

    let r = kubectl(&["apply", "-f", "-"], Some(&docs));
    assert!(r.ok, "{}", r.stderr);
    assert!(
        r.stdout.contains("widget.example.com/w1 unchanged"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("service/web unchanged"), "{}", r.stdout);

    let changed = format!("{}{}", widget(&ns, "w1", 5), service_yaml(&ns, "web"));
    let r = kubectl(&["apply", "-f", "-"], Some(&changed));
    assert!(r.ok, "{}", r.stderr);
    assert!(
        r.stdout.contains("widget.example.com/w1 configured"),
        "{}",
        r.stdout
    );
    let out = ok(&[
        "-n",
        &ns,
        "get",
        "wd",
        "-o",
        "custom-columns=NAME:.metadata.name,SIZE:.spec.size,GEN:.metadata.generation",
    ]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[1].split_whitespace().collect::<Vec<_>>(),
        ["w1", "5", "2"],
        "{out}"
    );

    // With a status subresource, a create cannot set status (only /status can).
    let with_status = format!("{}status:\n  ready: true\n", widget(&ns, "w3", 2));
    let r = kubectl(&["create", "-f", "-"], Some(&with_status));
    assert!(r.ok, "{}", r.stderr);
    let status = ok(&["-n", &ns, "get", "widget", "w3", "-o", "jsonpath={.status}"]);
    assert_eq!(status, "", "status dropped on create");

    let too_big = widget(&ns, "w2", 11);
    let r = kubectl(&["apply", "-f", "-"], Some(&too_big));
    assert!(!r.ok);
    assert!(
        r.stderr.contains(
            "spec.size: Invalid value: 11: spec.size in body should be less than or equal to 10"
        ),
        "{}",
        r.stderr
    );

    let svc = ok(&["-n", &ns, "get", "svc", "web", "-o", "json"]);
    let svc: serde_json::Value = serde_json::from_str(&svc).unwrap();
    assert_eq!(svc["spec"]["ports"][0]["targetPort"], 8080);
    assert_eq!(svc["spec"]["ports"][0]["protocol"], "TCP", "defaulted");
    assert!(
        svc["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"]
            .is_string()
    );
}

#[tokio::test]
async fn server_side_apply_and_conflicts() {
    let ns = namespace("ssa").await;
    let cm = format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cfg\n  namespace: {ns}\ndata:\n  a: \"1\"\n"
    );
    let r = kubectl(&["apply", "--server-side", "-f", "-"], Some(&cm));
    assert!(r.ok, "{}", r.stderr);
    assert_eq!(r.stdout.trim(), "configmap/cfg serverside-applied");
    let other = cm.replace("\"1\"", "\"2\"");
    let r = kubectl(
        &["apply", "--server-side", "--field-manager=other", "-f", "-"],
        Some(&other),
    );
    assert!(!r.ok);
    assert!(r.stderr.contains("conflict"), "{}", r.stderr);
    let r = kubectl(
        &[
            "apply",
            "--server-side",
            "--field-manager=other",
            "--force-conflicts",
            "-f",
            "-",
        ],
        Some(&other),
    );
    assert!(r.ok, "{}", r.stderr);
    let out = ok(&["-n", &ns, "get", "cm", "cfg", "-o", "jsonpath={.data.a}"]);
    assert_eq!(out, "2");
    let managers = ok(&[
        "-n",
        &ns,
        "get",
        "cm",
        "cfg",
        "--show-managed-fields",
        "-o",
        "jsonpath={.metadata.managedFields[*].manager}",
    ]);
    assert!(managers.contains("other"), "{managers}");
}

#[tokio::test]
async fn explain_and_api_resources() {
    ensure_widgets_crd();
    let out = ok(&["explain", "service.spec.ports"]);
    assert!(out.contains("targetPort"), "{out}");
    let out = ok(&["explain", "widget.spec"]);
    assert!(out.contains("size"), "{out}");
    let out = ok(&["api-resources"]);
    let svc = out
        .lines()
        .find(|l| l.starts_with("services "))
        .unwrap_or_default();
    assert_eq!(
        svc.split_whitespace().collect::<Vec<_>>(),
        ["services", "svc", "v1", "true", "Service"]
    );
    assert!(
        out.lines()
            .any(|l| l.starts_with("widgets ") && l.contains("example.com/v1")),
        "{out}"
    );
    assert!(
        out.lines()
            .any(|l| l.starts_with("leases ") && l.contains("coordination.k8s.io/v1")),
        "{out}"
    );
}

#[tokio::test]
async fn get_columns_selectors_label_annotate_patch_and_describe() {
    ensure_widgets_crd();
    let ns = namespace("cols").await;
    let docs = format!(
        "{}{}{}",
        service_yaml(&ns, "web"),
        service_yaml(&ns, "db"),
        widget(&ns, "w1", 4)
    );
    let r = kubectl(&["apply", "-f", "-"], Some(&docs));
    assert!(r.ok, "{}", r.stderr);

    let out = ok(&["-n", &ns, "get", "svc", "-o", "wide"]);
    let header: Vec<&str> = out.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        [
            "NAME",
            "TYPE",
            "CLUSTER-IP",
            "EXTERNAL-IP",
            "PORT(S)",
            "AGE",
            "SELECTOR"
        ]
    );
    let web = out.lines().find(|l| l.starts_with("web ")).unwrap();
    assert!(
        web.contains("ClusterIP") && web.contains("80/TCP") && web.contains("app=web"),
        "{web}"
    );

    let out = ok(&["-n", &ns, "get", "widgets"]);
    let header: Vec<&str> = out.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["NAME", "SIZE"]);
    assert_eq!(
        out.lines()
            .nth(1)
            .unwrap()
            .split_whitespace()
            .collect::<Vec<_>>(),
        ["w1", "4"]
    );

    let out = ok(&["-n", &ns, "label", "svc", "web", "tier=front"]);
    assert_eq!(out.trim(), "service/web labeled");
    let out = ok(&["-n", &ns, "annotate", "svc", "web", "note=hello"]);
    assert_eq!(out.trim(), "service/web annotated");
    let out = ok(&["-n", &ns, "get", "svc", "-l", "tier=front", "-o", "name"]);
    assert_eq!(out.trim(), "service/web");
    let out = ok(&[
        "-n",
        &ns,
        "get",
        "svc",
        "--field-selector",
        "metadata.name=db",
        "-o",
        "jsonpath={.items[*].metadata.name}",
    ]);
    assert_eq!(out, "db");

    let out = ok(&[
        "-n",
        &ns,
        "patch",
        "svc",
        "web",
        "-p",
        r#"{"spec":{"ports":[{"port":80,"targetPort":9090}]}}"#,
    ]);
    assert_eq!(out.trim(), "service/web patched");
    let tp = ok(&[
        "-n",
        &ns,
        "get",
        "svc",
        "web",
        "-o",
        "jsonpath={.spec.ports[0].targetPort} {.spec.ports[0].name}",
    ]);
    assert_eq!(
        tp, "9090 http",
        "strategic merge keeps the port's other fields"
    );
    let out = ok(&[
        "-n",
        &ns,
        "patch",
        "svc",
        "web",
        "--type=merge",
        "-p",
        r#"{"metadata":{"labels":{"m":"1"}}}"#,
    ]);
    assert_eq!(out.trim(), "service/web patched");
    let out = ok(&[
        "-n",
        &ns,
        "patch",
        "svc",
        "web",
        "--type=json",
        "-p",
        r#"[{"op":"add","path":"/metadata/labels/j","value":"2"}]"#,
    ]);
    assert_eq!(out.trim(), "service/web patched");
    let labels = ok(&[
        "-n",
        &ns,
        "get",
        "svc",
        "web",
        "-o",
        "jsonpath={.metadata.labels.m}{.metadata.labels.j}",
    ]);
    assert_eq!(labels, "12");
    let r = kubectl(
        &[
            "-n",
            &ns,
            "patch",
            "svc",
            "web",
            "--type=json",
            "-p",
            r#"[{"op":"test","path":"/metadata/name","value":"other"}]"#,
        ],
        None,
    );
    assert!(!r.ok);

    let out = ok(&["-n", &ns, "describe", "svc", "web"]);
    assert!(
        out.contains("Name:") && out.contains("web") && out.contains("tier=front"),
        "{out}"
    );
    assert!(
        out.contains("TargetPort:") && out.contains("9090/TCP"),
        "{out}"
    );
}

#[tokio::test]
async fn replace_with_a_stale_resource_version_conflicts() {
    let ns = namespace("stale").await;
    ok(&["-n", &ns, "create", "configmap", "c", "--from-literal=a=1"]);
    let old = ok(&["-n", &ns, "get", "cm", "c", "-o", "yaml"]);
    ok(&["-n", &ns, "label", "cm", "c", "x=y"]);
    let r = kubectl(&["replace", "-f", "-"], Some(&old));
    assert!(!r.ok);
    assert!(
        r.stderr.contains("Operation cannot be fulfilled on configmaps \"c\": the object has been modified; please apply your changes to the latest version and try again"),
        "{}",
        r.stderr
    );
}

#[tokio::test]
async fn delete_cascade_modes_and_wait_for_delete() {
    let ns = namespace("cascade").await;
    for mode in ["background", "foreground", "orphan"] {
        let owner = format!("owner-{mode}");
        ok(&["-n", &ns, "create", "configmap", &owner]);
        let uid = ok(&[
            "-n",
            &ns,
            "get",
            "cm",
            &owner,
            "-o",
            "jsonpath={.metadata.uid}",
        ]);
        let child = format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: child-{mode}\n  namespace: {ns}\n  ownerReferences:\n  - {{apiVersion: v1, kind: ConfigMap, name: {owner}, uid: {uid}}}\n"
        );
        let r = kubectl(&["apply", "-f", "-"], Some(&child));
        assert!(r.ok, "{}", r.stderr);
        let out = ok(&[
            "-n",
            &ns,
            "delete",
            "cm",
            &owner,
            &format!("--cascade={mode}"),
            "--wait=true",
            "--timeout=20s",
        ]);
        assert_eq!(out.trim(), format!("configmap \"{owner}\" deleted"));
        let child_name = format!("child-{mode}");
        if mode == "orphan" {
            std::thread::sleep(Duration::from_millis(300));
            let refs = ok(&[
                "-n",
                &ns,
                "get",
                "cm",
                &child_name,
                "-o",
                "jsonpath={.metadata.ownerReferences}",
            ]);
            assert_eq!(refs, "", "orphaned child keeps no reference");
        } else {
            let r = kubectl(
                &[
                    "-n",
                    &ns,
                    "wait",
                    "--for=delete",
                    &format!("cm/{child_name}"),
                    "--timeout=20s",
                ],
                None,
            );
            assert!(r.ok || r.stderr.contains("not found"), "{}", r.stderr);
        }
    }
}

#[tokio::test]
async fn watch_with_kubectl_prints_changes() {
    let ns = namespace("kw").await;
    ok(&["-n", &ns, "create", "configmap", "first"]);
    let kc = shared().kubeconfig.clone();
    let ns2 = ns.clone();
    let watcher = std::thread::spawn(move || {
        let out = Command::new("timeout")
            .args(["8", "kubectl", "--kubeconfig"])
            .arg(&kc)
            .args(["-n", &ns2, "get", "cm", "-w", "--request-timeout=8s"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    });
    std::thread::sleep(Duration::from_secs(3));
    ok(&["-n", &ns, "create", "configmap", "second"]);
    let out = watcher.join().unwrap();
    assert!(out.lines().any(|l| l.starts_with("first ")), "{out}");
    assert!(out.lines().any(|l| l.starts_with("second ")), "{out}");
}

#[tokio::test]
async fn auth_can_i_impersonation_and_service_account_tokens() {
    let ns = namespace("authz").await;
    assert_eq!(ok(&["auth", "can-i", "create", "pods"]).trim(), "yes");
    let r = kubectl(
        &[
            "auth",
            "can-i",
            "create",
            "pods",
            "-n",
            &ns,
            "--as",
            &format!("system:serviceaccount:{ns}:reader"),
        ],
        None,
    );
    assert_eq!(r.stdout.trim(), "no");
    ok(&["-n", &ns, "create", "serviceaccount", "reader"]);
    ok(&[
        "-n",
        &ns,
        "create",
        "rolebinding",
        "reader-view",
        "--clusterrole=view",
        &format!("--serviceaccount={ns}:reader"),
    ]);
    let can = |verb: &str| {
        let who = format!("system:serviceaccount:{ns}:reader");
        kubectl(
            &["auth", "can-i", verb, "configmaps", "-n", &ns, "--as", &who],
            None,
        )
        .stdout
        .trim()
        .to_owned()
    };
    let mut list = String::new();
    for _ in 0..50 {
        list = can("list");
        if list == "yes" {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(list, "yes");
    assert_eq!(can("create"), "no");

    let token = ok(&["-n", &ns, "create", "token", "reader"]);
    let token = token.trim();
    assert_eq!(token.split('.').count(), 3, "a JWT");
    let as_reader = |args: &[&str]| kubectl(&[&["--token", token][..], args].concat(), None);
    let r = as_reader(&["-n", &ns, "get", "configmaps"]);
    assert!(r.ok, "{}", r.stderr);
    let r = as_reader(&["-n", &ns, "create", "configmap", "nope"]);
    assert!(!r.ok);
    assert!(r.stderr.contains("forbidden"), "{}", r.stderr);
    let r = kubectl(&["--token", "not-a-token", "get", "ns"], None);
    assert!(!r.ok);
    assert!(
        r.stderr.contains("Unauthorized") || r.stderr.contains("provide credentials"),
        "{}",
        r.stderr
    );
}
