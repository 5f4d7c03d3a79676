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
    let mut cmd = Command::new("kubectl");
    cmd.arg("--kubeconfig")
        .arg(&shared().kubeconfig)
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .env(
            "KUBECACHEDIR",
            shared().kubeconfig.with_file_name("kubecache"),
        );
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
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        if child.try_wait().unwrap().is_some() || std::time::Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    if child.try_wait().unwrap().is_none() {
        let _ = child.kill();
    }
    let out = child.wait_with_output().unwrap();
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
async fn version_picks_a_json_speaking_kubectl() {
    let out = ok(&["version", "-o", "json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["serverVersion"]["minor"], "31");
    let client_minor = v["clientVersion"]["minor"]
        .as_str()
        .unwrap()
        .trim_end_matches('+');
    assert_eq!(client_minor, "31", "{out}");
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
