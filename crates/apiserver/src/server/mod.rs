//! Starting and stopping a server: the builder, the accept loop (HTTP/1.1 and
//! HTTP/2 on one port), clean shutdown, and the kubeconfig clients use.

pub mod faults;
mod kubeconfig;
mod listener;

pub use listener::ClientIdentity;
mod rbac_sync;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::cluster::simulation::DataPlaneOptions;
use crate::controllers::ControllerOptions;
use crate::http::guard::Guard;
use crate::http::{HttpConfig, HttpState};
use crate::objects::{ObjectStore, Objects};
use crate::registry::Registry;
pub use faults::{Fault, Faults};
pub use kubeconfig::Kubeconfig;

/// Why a server could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// Binding the listening socket failed.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// Plaintext was asked for on a non-loopback address.
    #[error("plaintext is only served on loopback addresses, not on {0}")]
    PlaintextNotLoopback(SocketAddr),
    /// Opening the data directory's store failed.
    #[error("cannot open the store in {dir}: {source}")]
    OpenStore {
        /// The data directory.
        dir: PathBuf,
        /// What failed.
        #[source]
        source: crate::objects::StorageError,
    },
    /// The in-memory store (no data directory) could not be started.
    #[error("cannot start the in-memory store: {0}")]
    MemoryStore(#[source] crate::objects::StorageError),
    /// Certificates, keys or tokens could not be loaded or made.
    #[error("cannot set up TLS and authentication: {0}")]
    Security(String),
    /// Loading stored state (CRDs, bootstrap objects) failed.
    #[error("cannot load stored state: {0}")]
    Load(String),
    /// The simulated data plane's options are invalid.
    #[error("invalid simulated data plane: {0}")]
    DataPlane(#[source] crate::cluster::simulation::DataPlaneError),
    /// The load-balancer pool is not a CIDR.
    #[error("invalid load-balancer pool {0}: {1}")]
    LoadBalancerPool(String, #[source] crate::cluster::alloc::AllocError),
    /// Writing the kubeconfig failed.
    #[error("cannot write kubeconfig {path}: {source}")]
    WriteKubeconfig {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

/// Configures and starts an API server.
#[derive(Debug, Clone)]
pub struct ApiServerBuilder {
    listen: SocketAddr,
    store: Option<ObjectStore>,
    data_dir: Option<PathBuf>,
    kubeconfig_out: Option<PathBuf>,
    context: String,
    http: HttpConfig,
    faults: Faults,
    plaintext: bool,
    guard: Option<Arc<Guard>>,
    controllers: bool,
    controller_options: ControllerOptions,
}

/// Entry point: `ApiServer::builder()....start().await`.
#[derive(Debug)]
pub struct ApiServer;

impl ApiServer {
    /// A builder listening on 127.0.0.1 with a free port and an in-memory store.
    pub fn builder() -> ApiServerBuilder {
        ApiServerBuilder {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            store: None,
            data_dir: None,
            kubeconfig_out: None,
            context: "fedmesh".into(),
            http: HttpConfig::default(),
            faults: Faults::default(),
            plaintext: false,
            guard: None,
            controllers: true,
            controller_options: ControllerOptions::default(),
        }
    }
}

impl ApiServerBuilder {
    /// Address to listen on (port 0 picks a free port).
    pub fn listen(mut self, addr: SocketAddr) -> Self {
        self.listen = addr;
        self
    }

    /// The store to serve (default: a new in-memory store).
    pub fn store(mut self, store: ObjectStore) -> Self {
        self.store = Some(store);
        self
    }

    /// Keep state in a SQLite file in this directory (default: in memory).
    pub fn data_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.data_dir = Some(dir.into());
        self
    }

    /// Where to write the kubeconfig.
    pub fn kubeconfig_out(mut self, path: impl Into<PathBuf>) -> Self {
        self.kubeconfig_out = Some(path.into());
        self
    }

    /// Cluster, user and context name in the kubeconfig.
    pub fn context(mut self, name: impl Into<String>) -> Self {
        self.context = name.into();
        self
    }

    /// Largest accepted request body.
    pub fn body_limit(mut self, bytes: usize) -> Self {
        self.http.body_limit = bytes;
        self
    }

    /// Interval of watch bookmarks.
    pub fn bookmark_interval(mut self, every: Duration) -> Self {
        self.http.bookmark_every = every;
        self
    }

    /// The fault switch this server obeys (tests share it to inject faults).
    pub fn faults(mut self, faults: Faults) -> Self {
        self.faults = faults;
        self
    }

    /// Serve plain HTTP instead of TLS (loopback addresses only). Requests still
    /// authenticate with the admin token the kubeconfig carries.
    pub fn insecure_plaintext(mut self, on: bool) -> Self {
        self.plaintext = on;
        self
    }

    /// Reuse the certificates, tokens and keys of an earlier server (a restart in
    /// tests without a data directory).
    pub fn guard(mut self, guard: Arc<Guard>) -> Self {
        self.guard = Some(guard);
        self
    }

    /// Run the built-in controllers (namespace lifecycle, endpoints, garbage
    /// collection, ...; default on). Off, the server is the API and its store
    /// alone: the API server benchmark measures it so, next to the default.
    pub fn builtin_controllers(mut self, on: bool) -> Self {
        self.controllers = on;
        self
    }

    /// Simulate a data plane: Nodes, a scheduler and a kubelet that start
    /// pods (see `docs/apiserver.md`, "Simulated data plane"). Refused at
    /// start when the options are invalid.
    pub fn data_plane(mut self, options: DataPlaneOptions) -> Self {
        self.controller_options.data_plane = options;
        self
    }

    /// Give LoadBalancer Services ingress addresses from this CIDR, as a
    /// bare-metal load-balancer controller does (default: none, and they
    /// stay pending). Refused at start when it does not parse.
    pub fn load_balancer_pool(mut self, cidr: impl Into<String>) -> Self {
        self.controller_options.load_balancer_pool = Some(cidr.into());
        self
    }

    /// Binds, loads stored state, bootstraps the default objects and serves.
    pub async fn start(self) -> Result<RunningServer, StartError> {
        if self.plaintext && !self.listen.ip().is_loopback() {
            return Err(StartError::PlaintextNotLoopback(self.listen));
        }
        self.controller_options
            .data_plane
            .validate()
            .map_err(StartError::DataPlane)?;
        if let Some(pool) = &self.controller_options.load_balancer_pool {
            crate::cluster::alloc::ClusterIpAllocator::new(pool)
                .map_err(|e| StartError::LoadBalancerPool(pool.clone(), e))?;
        }
        let guard = match (self.guard, &self.data_dir) {
            (Some(g), _) => g,
            (None, Some(dir)) => Guard::new(
                crate::auth::Security::load_or_create(dir, &[])
                    .map_err(|e| StartError::Security(e.to_string()))?,
            ),
            (None, None) => Guard::new(
                crate::auth::Security::in_memory(&[])
                    .map_err(|e| StartError::Security(e.to_string()))?,
            ),
        };
        let tls = if self.plaintext {
            None
        } else {
            Some(tokio_rustls::TlsAcceptor::from(
                guard
                    .security
                    .tls
                    .server_config_with_client_auth()
                    .map_err(|e| StartError::Security(e.to_string()))?,
            ))
        };
        let listener = tokio::net::TcpListener::bind(self.listen)
            .await
            .map_err(|source| StartError::Bind {
                addr: self.listen,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| StartError::Bind {
            addr: self.listen,
            source,
        })?;
        let store = match (self.store, &self.data_dir) {
            (Some(s), _) => s,
            (None, Some(dir)) => open_data_dir(dir)?,
            (None, None) => ObjectStore::in_memory().map_err(StartError::MemoryStore)?,
        };
        let compactor = store.raw().spawn_compactor();
        let objects = Objects::new(store.clone(), Registry::with_builtins());
        objects
            .load_state()
            .await
            .map_err(|e| StartError::Load(e.to_string()))?;
        crate::controllers::bootstrap(&objects, addr)
            .await
            .map_err(|e| StartError::Load(e.to_string()))?;
        rbac_sync::bootstrap(&objects)
            .await
            .map_err(|e| StartError::Load(e.to_string()))?;
        rbac_sync::rebuild(&objects, &guard)
            .await
            .map_err(|e| StartError::Load(e.to_string()))?;
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let mut http = self.http;
        http.server_address = addr.to_string();
        let state = HttpState {
            objects: objects.clone(),
            config: Arc::new(http),
            shutdown: shutdown_rx.clone(),
            openapi: Default::default(),
            guard: guard.clone(),
            metrics: Default::default(),
        };
        let router = crate::http::router(state).layer(axum::middleware::from_fn_with_state(
            self.faults.clone(),
            faults::layer,
        ));
        let controllers = self.controllers.then(|| {
            crate::controllers::spawn(
                objects.clone(),
                self.controller_options.clone(),
                shutdown_rx.clone(),
            )
        });
        let rbac = tokio::spawn(rbac_sync::follow(
            objects.clone(),
            guard.clone(),
            shutdown_rx.clone(),
        ));
        let token = guard.security.admin_token.expose().to_owned();
        let kubeconfig = if self.plaintext {
            Kubeconfig::plaintext(&self.context, addr, &token)
        } else {
            Kubeconfig::tls(
                &guard.security.kubeconfig_entry(&self.context, addr),
                &self.context,
            )
            .map_err(|e| StartError::Security(e.to_string()))?
        };
        if let Some(path) = &self.kubeconfig_out {
            kubeconfig
                .write(path)
                .map_err(|source| StartError::WriteKubeconfig {
                    path: path.clone(),
                    source,
                })?;
        }
        let task = tokio::spawn(listener::serve(
            listener,
            addr,
            router,
            tls,
            self.faults.clone(),
            shutdown_rx,
        ));
        Ok(RunningServer {
            addr,
            kubeconfig,
            shutdown: shutdown_tx,
            task,
            controllers,
            compactor,
            rbac,
            guard,
            objects,
            store,
            faults: self.faults,
        })
    }
}

/// A server that is serving.
#[derive(Debug)]
pub struct RunningServer {
    addr: SocketAddr,
    kubeconfig: Kubeconfig,
    shutdown: watch::Sender<bool>,
    task: JoinHandle<()>,
    controllers: Option<JoinHandle<()>>,
    compactor: JoinHandle<()>,
    rbac: JoinHandle<()>,
    guard: Arc<Guard>,
    objects: Objects,
    store: ObjectStore,
    faults: Faults,
}

/// How long a clean shutdown waits for open requests.
const DRAIN: Duration = Duration::from_secs(5);

impl RunningServer {
    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Base URL of the API.
    pub fn url(&self) -> String {
        self.kubeconfig.server().to_owned()
    }

    /// The kubeconfig reaching this server as its admin.
    pub fn kubeconfig(&self) -> &Kubeconfig {
        &self.kubeconfig
    }

    /// The object layer, for in-process callers.
    pub fn objects(&self) -> &Objects {
        &self.objects
    }

    /// The store (to restart a server on the same data).
    pub fn store(&self) -> &ObjectStore {
        &self.store
    }

    /// The fault switch.
    pub fn faults(&self) -> &Faults {
        &self.faults
    }

    /// Stops accepting, ends watches, lets open requests finish (bounded), and
    /// returns when the listener is closed.
    pub async fn shutdown(self) {
        self.shutdown.send_replace(true);
        let mut task = self.task;
        if tokio::time::timeout(DRAIN, &mut task).await.is_err() {
            task.abort();
        }
        if let Some(c) = &self.controllers {
            c.abort();
        }
        self.compactor.abort();
        self.rbac.abort();
    }

    /// Stops at once, as a crash would: connections are dropped mid-request.
    pub fn kill(self) {
        self.task.abort();
        if let Some(c) = &self.controllers {
            c.abort();
        }
        self.compactor.abort();
        self.rbac.abort();
    }

    /// Certificates, tokens and RBAC of this server.
    pub fn guard(&self) -> &Arc<Guard> {
        &self.guard
    }
}

/// File name of the SQLite store inside a data directory.
pub const DB_FILE: &str = "fedmesh-apiserver.db";

fn open_data_dir(dir: &std::path::Path) -> Result<ObjectStore, StartError> {
    let fail = |source| StartError::OpenStore {
        dir: dir.to_owned(),
        source,
    };
    std::fs::create_dir_all(dir)
        .map_err(|e| fail(crate::objects::StorageError::Backend(e.to_string())))?;
    ObjectStore::open_sqlite(&dir.join(DB_FILE), crate::store::StoreOptions::default())
        .map_err(fail)
}

/// Resolves once `shutdown` turns true (or its sender is gone).
pub(crate) async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    // Err: the sender is gone, which also means stop.
    let _ = shutdown.wait_for(|s| *s).await;
}
