//! What the federation control plane's tests share: member API servers with
//! the simulated data plane, kubectl, `fedmesh federation join`, and a
//! process stopped by SIGTERM.

use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use fedmesh_apiserver::cluster::simulation::DataPlaneOptions;
use fedmesh_apiserver::testing::{TestServer, TestServerOptions};

use super::{command, fedmesh, text};

/// A child process, killed on drop.
pub struct Process(pub Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Polls `check` every 100 ms until it gives a value; panics after 20 s.
pub async fn eventually<T>(what: &str, mut check: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A member API server: one simulated node in `zone` of `region`,
/// load-balancer addresses from `pool`.
pub async fn member(name: &str, zone: &str, region: &str, pool: &str) -> TestServer {
    TestServer::start_with(TestServerOptions {
        name: name.into(),
        data_plane: DataPlaneOptions {
            nodes: 1,
            node_prefix: format!("{name}-node"),
            zone: zone.into(),
            region: region.into(),
            start_delay: Duration::from_millis(50),
            ..DataPlaneOptions::default()
        },
        load_balancer_pool: Some(pool.into()),
        ..TestServerOptions::default()
    })
    .await
    .expect("member server")
}

/// `kubectl --kubeconfig KUBECONFIG ARGS...`: (success, stdout + stderr).
pub async fn kubectl(kubeconfig: &Path, args: &[&str]) -> (bool, String) {
    let mut all = vec!["--kubeconfig".to_owned(), kubeconfig.display().to_string()];
    all.extend(args.iter().map(|a| a.to_string()));
    let out = command("kubectl", all).await;
    (out.status.success(), text(&out))
}

/// Succeeds with stdout when kubectl does.
pub async fn kubectl_ok(kubeconfig: &Path, args: &[&str]) -> Option<String> {
    let (ok, out) = kubectl(kubeconfig, args).await;
    ok.then_some(out)
}

/// `fedmesh federation join` of `member` as `name`.
pub async fn join(federation: &Path, member: &TestServer, name: &str) {
    let out = fedmesh(vec![
        "federation".into(),
        "join".into(),
        "--federation".into(),
        federation.display().to_string(),
        "--member".into(),
        member.kubeconfig_path().display().to_string(),
        "--name".into(),
        name.into(),
    ])
    .await;
    assert!(out.status.success(), "{}", text(&out));
}

/// Sends SIGTERM and waits (at most 10 s) for the process to end.
pub async fn stop(process: &mut Process) -> std::process::ExitStatus {
    let killed = Command::new("kill")
        .args(["-TERM", &process.0.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = process.0.try_wait().unwrap() {
            return status;
        }
        assert!(Instant::now() < deadline, "still running 10s after SIGTERM");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
