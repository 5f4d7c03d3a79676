//! The official Python client (PyPI `kubernetes`) against an embedded server
//! with the simulated data plane: the end-to-end tests that ship with the
//! client, and fedmesh's own tests of its typed APIs, run by
//! `tests/python/run.py` in the environment `tests/python/setup.sh` makes
//! (`.ci/run` makes it in `target/python-venv`; `FEDMESH_PYTHON_VENV` names
//! another).

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use fedmesh_apiserver::cluster::simulation::DataPlaneOptions;
use fedmesh_apiserver::testing::{TestServer, TestServerOptions};

fn venv() -> PathBuf {
    std::env::var_os("FEDMESH_PYTHON_VENV").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/python-venv"),
        PathBuf::from,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_python_clients_end_to_end_tests_pass() {
    let python = venv().join("bin/python");
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python/run.py");
    if !python.exists() {
        // CI always has it; a developer's machine may not.
        assert!(
            std::env::var_os("CI").is_none(),
            "{} is missing: run `crates/apiserver/tests/python/setup.sh {}`",
            python.display(),
            venv().display()
        );
        eprintln!(
            "SKIPPED: no Python client environment at {}; make it with \
             `crates/apiserver/tests/python/setup.sh {}`",
            venv().display(),
            venv().display()
        );
        return;
    }
    let server = TestServer::start_with(TestServerOptions {
        name: "python".into(),
        data_plane: DataPlaneOptions {
            nodes: 2,
            start_delay: Duration::from_millis(50),
            ..DataPlaneOptions::default()
        },
        ..TestServerOptions::default()
    })
    .await
    .expect("server starts");
    let kubeconfig = server.kubeconfig_path();
    let output = tokio::task::spawn_blocking(move || {
        Command::new(python)
            .arg(script)
            .env("KUBECONFIG", kubeconfig)
            .output()
            .expect("python runs")
    })
    .await
    .expect("the run finishes");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the Python client's tests failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains(" passed"), "{stdout}");
    assert!(!stdout.contains("skipped"), "nothing skipped: {stdout}");
}
