//! The manifests in deploy/: every file parses, the Helm chart's templates
//! are YAML around their template actions and only use values that
//! values.yaml defines, the copies of the CRD and RBAC agree, and kubectl
//! applies the CRD and RBAC to an embedded API server (server-side dry run,
//! then for real).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use fedmesh_apiserver::testing::TestServer;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::rbac::v1::ClusterRole;
use kube::api::{Api, PostParams};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_fedmesh");

fn deploy() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy")
}

fn yaml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            yaml_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "yaml") {
            out.push(path);
        }
    }
}

fn documents(text: &str, what: &Path) -> Vec<Value> {
    let docs: Vec<Value> = serde_saphyr::from_multiple(text)
        .unwrap_or_else(|e| panic!("{} does not parse: {e}", what.display()));
    docs.into_iter().filter(|d| !d.is_null()).collect()
}

/// A Helm template with its actions taken out: control lines dropped,
/// inline actions replaced by a scalar.
fn strip_template(text: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with("{{") && trimmed.ends_with("}}") && !trimmed[2..].contains("{{") {
            continue;
        }
        let mut rest = line;
        while let Some(start) = rest.find("{{") {
            out.push_str(&rest[..start]);
            let end = rest[start..].find("}}").expect("unclosed template action") + start;
            out.push('x');
            rest = &rest[end + 2..];
        }
        out.push_str(rest);
        out.push('\n');
    }
    out
}

/// Every `.Values.a.b` a template uses.
fn value_paths(text: &str) -> Vec<Vec<String>> {
    let mut paths = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find(".Values.") {
        let tail = &rest[at + ".Values.".len()..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '.' || c == '_'))
            .unwrap_or(tail.len());
        paths.push(tail[..end].split('.').map(str::to_owned).collect());
        rest = &tail[end..];
    }
    paths
}

fn kinds(docs: &[Value]) -> Vec<String> {
    docs.iter()
        .map(|d| {
            assert!(d["apiVersion"].is_string(), "no apiVersion in {d}");
            d["kind"].as_str().expect("a kind").to_owned()
        })
        .collect()
}

fn find<'a>(docs: &'a [Value], kind: &str) -> &'a Value {
    docs.iter()
        .find(|d| d["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind}"))
}

#[test]
fn every_manifest_parses_and_the_copies_agree() {
    let mut files = Vec::new();
    yaml_files(&deploy(), &mut files);
    assert!(files.len() >= 9, "{files:?}");
    let values: Value = serde_saphyr::from_str(
        &std::fs::read_to_string(deploy().join("helm/fedmesh/values.yaml")).unwrap(),
    )
    .unwrap();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        if file.components().any(|c| c.as_os_str() == "templates") {
            kinds(&documents(&strip_template(&text), file));
            for path in value_paths(&text) {
                let mut at = &values;
                for key in &path {
                    at = &at[key.as_str()];
                }
                assert!(
                    !at.is_null(),
                    "{} uses .Values.{}",
                    file.display(),
                    path.join(".")
                );
            }
        } else if file.starts_with(deploy().join("helm")) {
            documents(&text, file);
        } else {
            kinds(&documents(&text, file));
        }
    }

    let chart: Value = serde_saphyr::from_str(
        &std::fs::read_to_string(deploy().join("helm/fedmesh/Chart.yaml")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        (chart["apiVersion"].as_str(), chart["name"].as_str()),
        (Some("v2"), Some("fedmesh"))
    );

    let read = |p: &str| std::fs::read_to_string(deploy().join(p)).unwrap();
    let crd = documents(
        &read("crds/remoteclusterconfigurations.yaml"),
        Path::new("crd"),
    );
    let chart_crd = documents(
        &strip_template(&read("helm/fedmesh/templates/crd.yaml")),
        Path::new("chart crd"),
    );
    assert_eq!(crd, chart_crd, "the chart's CRD is a copy of deploy/crds/");

    let rbac = documents(&read("rbac/controller.yaml"), Path::new("rbac"));
    assert_eq!(
        kinds(&rbac),
        [
            "ServiceAccount",
            "ClusterRole",
            "ClusterRoleBinding",
            "Role",
            "RoleBinding"
        ]
    );
    let chart_rbac = documents(
        &strip_template(&read("helm/fedmesh/templates/rbac.yaml")),
        Path::new("chart rbac"),
    );
    assert_eq!(
        find(&rbac, "ClusterRole")["rules"],
        find(&chart_rbac, "ClusterRole")["rules"]
    );
    assert_eq!(
        find(&rbac, "Role")["rules"],
        find(&chart_rbac, "Role")["rules"]
    );

    // Both Deployments run two replicas with flags the binary accepts.
    let help = Command::new(BIN)
        .args(["controller", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    let example = documents(&read("controller-deployment.yaml"), Path::new("deployment"));
    let chart_deployment = documents(
        &strip_template(&read("helm/fedmesh/templates/deployment.yaml")),
        Path::new("chart deployment"),
    );
    assert_eq!(example[0]["spec"]["replicas"], 2);
    assert_eq!(values["replicas"], 2);
    for deployment in [&example[0], &chart_deployment[0]] {
        let container = &deployment["spec"]["template"]["spec"]["containers"][0];
        let args: Vec<&str> = container["args"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap())
            .collect();
        assert_eq!(args[0], "controller");
        for flag in args.iter().filter(|a| a.starts_with("--")) {
            assert!(help.contains(flag), "fedmesh controller has no {flag}");
        }
        assert_eq!(container["env"][0]["name"], "POD_NAME");
        assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/healthz");
        assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/readyz");
    }
}

fn kubectl(kubeconfig: &Path, args: &[&str]) -> std::process::Output {
    let mut child = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // kubectl may unpack a version on first use.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        assert!(
            std::time::Instant::now() < deadline,
            "kubectl {args:?} hangs"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

#[tokio::test]
async fn kubectl_applies_the_crd_and_rbac_dry_run_then_for_real() {
    let server = TestServer::start().await.unwrap();
    let client = server.client().unwrap();
    Api::<Namespace>::all(client.clone())
        .create(
            &PostParams::default(),
            &serde_json::from_value(serde_json::json!({"metadata": {"name": "fedmesh"}})).unwrap(),
        )
        .await
        .unwrap();
    let files = [
        "crds/remoteclusterconfigurations.yaml",
        "rbac/controller.yaml",
        "rbac/remote-reader.yaml",
    ];
    let mut args = vec!["apply".to_owned()];
    for file in files {
        args.push("-f".into());
        args.push(deploy().join(file).display().to_string());
    }
    let kubeconfig = server.kubeconfig_path();
    let mut dry = args.clone();
    dry.push("--dry-run=server".into());
    let kubeconfig_clone = kubeconfig.clone();
    let out = tokio::task::spawn_blocking(move || {
        let dry: Vec<&str> = dry.iter().map(String::as_str).collect();
        kubectl(&kubeconfig_clone, &dry)
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("(server dry run)"));
    let roles = Api::<ClusterRole>::all(client.clone());
    assert!(
        roles.get_opt("fedmesh-controller").await.unwrap().is_none(),
        "dry run wrote"
    );

    let real: Vec<String> = args.clone();
    let out = tokio::task::spawn_blocking(move || {
        let real: Vec<&str> = real.iter().map(String::as_str).collect();
        kubectl(&kubeconfig, &real)
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let role = roles.get("fedmesh-controller").await.unwrap();
    let rules = role.rules.unwrap();
    assert!(rules.iter().any(
        |r| r.resources.as_deref() == Some(&["secrets".to_owned()][..]) && r.verbs == ["get"]
    ));
    assert!(
        roles
            .get_opt("fedmesh-remote-reader")
            .await
            .unwrap()
            .is_some()
    );
}
