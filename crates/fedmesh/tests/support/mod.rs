//! What the join tests share: running the binary, naming servers, and
//! clients from a kubeconfig a join wrote.

// Each test binary compiles this module and uses only part of it.
#![allow(dead_code)]

pub mod federation;

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use fedmesh_apiserver::testing::{TestServer, TestServerOptions};

/// The `fedmesh` binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_fedmesh");

/// Runs `program` with `args`, bounded by a minute.
pub async fn command(program: &str, args: Vec<String>) -> Output {
    let run = tokio::process::Command::new(program).args(args).output();
    tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .unwrap_or_else(|_| panic!("{program} finishes within 60s"))
        .unwrap_or_else(|e| panic!("{program} runs: {e}"))
}

/// Runs `fedmesh` with `args`.
pub async fn fedmesh(args: Vec<String>) -> Output {
    command(BIN, args).await
}

/// Stdout then stderr, as text.
pub fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// An embedded API server whose kubeconfig context is `name`.
pub async fn server(name: &str) -> TestServer {
    TestServer::start_with(TestServerOptions {
        name: name.into(),
        ..TestServerOptions::default()
    })
    .await
    .unwrap()
}

/// A client acting as the current context of `kubeconfig` (YAML text).
pub async fn client_of(kubeconfig: &str) -> kube::Client {
    let parsed = kube::config::Kubeconfig::from_yaml(kubeconfig).unwrap();
    let config =
        kube::Config::from_custom_kubeconfig(parsed, &kube::config::KubeConfigOptions::default())
            .await
            .unwrap();
    kube::Client::try_from(config).unwrap()
}

/// `kubectl auth can-i VERB RESOURCE...` (the resource may carry flags).
pub async fn can_i(kubeconfig: &Path, verb: &str, resource: &str) -> String {
    let mut args = vec![
        "--kubeconfig".into(),
        kubeconfig.display().to_string(),
        "auth".into(),
        "can-i".into(),
        verb.into(),
    ];
    args.extend(resource.split_whitespace().map(str::to_owned));
    let out = command("kubectl", args).await;
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// `dig +short`'s output as lines: the CNAME chain in its order, then the
/// addresses sorted (the server's order of them is not part of the answer).
pub fn dig_answer(out: &str) -> Vec<String> {
    let (mut chain, mut addresses): (Vec<String>, Vec<String>) = out
        .lines()
        .map(str::to_owned)
        .partition(|l| l.ends_with('.'));
    addresses.sort();
    chain.append(&mut addresses);
    chain
}
