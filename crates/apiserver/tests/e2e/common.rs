//! Servers shared by the tests of this binary, and small helpers.

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use fedmesh_apiserver::testing::{Credentials, TestServer};

/// What tests need of a shared server.
pub struct Shared {
    pub credentials: Credentials,
    pub kubeconfig: PathBuf,
}

/// A server that lives as long as the test binary, in its own runtime thread,
/// so tests running on different runtimes can share it.
pub fn shared() -> &'static Shared {
    static SHARED: OnceLock<Shared> = OnceLock::new();
    SHARED.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let server = TestServer::start().await.unwrap();
                tx.send(Shared {
                    credentials: server.credentials().unwrap(),
                    kubeconfig: server.kubeconfig_path(),
                })
                .unwrap();
                // Keep the server (and its temporary directory) for the process.
                std::future::pending::<()>().await;
                drop(server);
            });
        });
        rx.recv_timeout(Duration::from_secs(20)).unwrap()
    })
}

/// A kube client for the shared server.
pub fn client() -> kube::Client {
    shared().credentials.client().unwrap()
}

/// A fresh namespace name for one test, created on the shared server.
pub async fn namespace(prefix: &str) -> String {
    use k8s_openapi::api::core::v1::Namespace;
    use kube::api::{Api, PostParams};
    let api: Api<Namespace> = Api::all(client());
    let ns: Namespace = serde_json::from_value(serde_json::json!({
        "metadata": {"generateName": format!("{prefix}-")}
    }))
    .unwrap();
    let created = api.create(&PostParams::default(), &ns).await.unwrap();
    created.metadata.name.unwrap()
}

/// Repeats `check` until it returns `Some` or `timeout` passes.
pub async fn eventually<T, F, Fut>(timeout: Duration, mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return Some(v);
        }
        if tokio::time::Instant::now() > deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}
