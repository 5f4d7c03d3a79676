//! Test harness: API servers in-process on 127.0.0.1 with a free port, each with
//! its own store, that a test can stop, kill, restart on the same data and port,
//! and inject faults into (refuse, hang, 500s, latency). Each gives a ready
//! `kube::Client` and a kubeconfig file for kubectl.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::objects::ObjectStore;
use crate::server::{ApiServer, ApiServerBuilder, Fault, Faults, RunningServer, StartError};

/// Why the harness failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HarnessError {
    /// The server did not start.
    #[error(transparent)]
    Start(#[from] StartError),
    /// The temporary directory could not be made.
    #[error("cannot create a temporary directory: {0}")]
    TempDir(#[source] std::io::Error),
    /// Building a kube client failed.
    #[error("cannot build a kube client: {0}")]
    Client(String),
    /// The server is stopped or killed.
    #[error("the server is not running")]
    NotRunning,
}

/// One API server under test.
#[derive(Debug)]
pub struct TestServer {
    name: String,
    server: Option<RunningServer>,
    store: ObjectStore,
    faults: Faults,
    addr: SocketAddr,
    dir: tempfile::TempDir,
    bookmark_every: Duration,
    plaintext: bool,
    guard: Option<std::sync::Arc<crate::http::guard::Guard>>,
    data_plane: crate::cluster::simulation::DataPlaneOptions,
    load_balancer_pool: Option<String>,
}

/// Options of a [`TestServer`].
#[derive(Debug, Clone)]
pub struct TestServerOptions {
    /// Kubeconfig context name.
    pub name: String,
    /// Watch bookmark interval (short, so tests see bookmarks).
    pub bookmark_every: Duration,
    /// Serve plain HTTP instead of TLS.
    pub plaintext: bool,
    /// The simulated data plane (off by default: tests then write pod
    /// statuses themselves).
    pub data_plane: crate::cluster::simulation::DataPlaneOptions,
    /// The load-balancer address pool (none by default).
    pub load_balancer_pool: Option<String>,
}

impl Default for TestServerOptions {
    fn default() -> Self {
        TestServerOptions {
            name: "test".into(),
            bookmark_every: Duration::from_millis(500),
            plaintext: false,
            data_plane: Default::default(),
            load_balancer_pool: None,
        }
    }
}

impl TestServer {
    /// Starts a server with default options.
    pub async fn start() -> Result<Self, HarnessError> {
        Self::start_with(TestServerOptions::default()).await
    }

    /// Starts a server.
    pub async fn start_with(opts: TestServerOptions) -> Result<Self, HarnessError> {
        let dir = tempfile::tempdir().map_err(HarnessError::TempDir)?;
        let store = ObjectStore::in_memory().map_err(StartError::MemoryStore)?;
        let faults = Faults::default();
        let mut me = TestServer {
            name: opts.name,
            server: None,
            store,
            faults,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            dir,
            bookmark_every: opts.bookmark_every,
            plaintext: opts.plaintext,
            guard: None,
            data_plane: opts.data_plane,
            load_balancer_pool: opts.load_balancer_pool,
        };
        me.launch().await?;
        Ok(me)
    }

    fn builder(&self) -> ApiServerBuilder {
        let b = match &self.guard {
            Some(g) => ApiServer::builder().guard(g.clone()),
            None => ApiServer::builder(),
        };
        let b = b
            .insecure_plaintext(self.plaintext)
            .listen(self.addr)
            .store(self.store.clone())
            .faults(self.faults.clone())
            .context(&self.name)
            .bookmark_interval(self.bookmark_every)
            .kubeconfig_out(self.kubeconfig_path())
            .data_plane(self.data_plane.clone());
        match &self.load_balancer_pool {
            Some(pool) => b.load_balancer_pool(pool.clone()),
            None => b,
        }
    }

    async fn launch(&mut self) -> Result<(), HarnessError> {
        let server = self.builder().start().await?;
        self.addr = server.addr();
        self.guard = Some(server.guard().clone());
        self.server = Some(server);
        Ok(())
    }

    /// The address served (stable across restarts).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Base URL.
    pub fn url(&self) -> String {
        let scheme = if self.plaintext { "http" } else { "https" };
        format!("{scheme}://{}", self.addr)
    }

    /// What a client needs: URL, CA certificate (PEM) and admin token.
    pub fn credentials(&self) -> Result<Credentials, HarnessError> {
        let guard = self.guard.as_ref().ok_or(HarnessError::NotRunning)?;
        Ok(Credentials {
            url: self.url(),
            ca_pem: (!self.plaintext).then(|| guard.security.tls.ca_pem().to_owned()),
            token: guard.security.admin_token.expose().to_owned(),
        })
    }

    /// The kubeconfig file for kubectl (`--kubeconfig`).
    pub fn kubeconfig_path(&self) -> PathBuf {
        self.dir.path().join("kubeconfig")
    }

    /// A scratch directory that lives as long as the server.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The running server.
    pub fn server(&self) -> Result<&RunningServer, HarnessError> {
        self.server.as_ref().ok_or(HarnessError::NotRunning)
    }

    /// A kube client for this server's admin.
    pub fn client(&self) -> Result<kube::Client, HarnessError> {
        self.credentials()?.client()
    }

    /// Stops cleanly.
    pub async fn stop(&mut self) {
        if let Some(s) = self.server.take() {
            s.shutdown().await;
        }
    }

    /// Stops as a crash would.
    pub fn kill(&mut self) {
        if let Some(s) = self.server.take() {
            s.kill();
        }
    }

    /// Starts again on the same data and port (after stop or kill).
    pub async fn restart(&mut self) -> Result<(), HarnessError> {
        self.stop().await;
        // The old socket may linger briefly after a kill.
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.launch().await {
                Err(HarnessError::Start(StartError::Bind { .. })) if attempt < 50 => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                other => return other,
            }
        }
    }

    /// Switches a fault on (or off with `Fault::None`).
    pub fn set_fault(&self, fault: Fault) {
        self.faults.set(fault);
    }

    /// Refuses connections until [`heal`](Self::heal).
    pub fn refuse(&self) {
        self.set_fault(Fault::Refuse);
    }

    /// Accepts but never answers until healed.
    pub fn hang(&self) {
        self.set_fault(Fault::Hang);
    }

    /// Answers 500 until healed.
    pub fn fail_500(&self) {
        self.set_fault(Fault::Error500);
    }

    /// Delays every request until healed.
    pub fn add_latency(&self, d: Duration) {
        self.set_fault(Fault::Latency(d));
    }

    /// Answers every watch with 410 Gone until healed.
    pub fn expire_watches(&self) {
        self.set_fault(Fault::WatchExpired);
    }

    /// Clears every fault.
    pub fn heal(&self) {
        self.set_fault(Fault::None);
    }
}

/// How to reach a server as its admin; plain data, usable from any runtime.
#[derive(Debug, Clone)]
pub struct Credentials {
    /// Base URL.
    pub url: String,
    /// CA certificate (PEM), `None` for plaintext.
    pub ca_pem: Option<String>,
    /// The admin's bearer token.
    pub token: String,
}

impl Credentials {
    /// A kube client with these credentials.
    pub fn client(&self) -> Result<kube::Client, HarnessError> {
        use rustls::pki_types::CertificateDer;
        use rustls::pki_types::pem::PemObject as _;
        let fail = |e: String| HarnessError::Client(e);
        let url = self
            .url
            .parse()
            .map_err(|e: http::uri::InvalidUri| fail(e.to_string()))?;
        let mut config = kube::Config::new(url);
        config.read_timeout = Some(Duration::from_secs(60));
        if let Some(pem) = &self.ca_pem {
            let der =
                CertificateDer::from_pem_slice(pem.as_bytes()).map_err(|e| fail(e.to_string()))?;
            config.root_cert = Some(vec![der.to_vec()]);
        }
        config.auth_info = serde_json::from_value(serde_json::json!({"token": self.token}))
            .map_err(|e| fail(e.to_string()))?;
        kube::Client::try_from(config).map_err(|e| fail(e.to_string()))
    }
}

/// Starts `n` servers named `name-0`, `name-1`, ...
pub async fn start_many(name: &str, n: usize) -> Result<Vec<TestServer>, HarnessError> {
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        out.push(
            TestServer::start_with(TestServerOptions {
                name: format!("{name}-{i}"),
                ..Default::default()
            })
            .await?,
        );
    }
    Ok(out)
}
