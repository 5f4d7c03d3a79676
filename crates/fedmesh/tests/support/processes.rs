//! Real processes for the failover tests and bench: a `fedmesh apiserver`
//! that can be killed and restarted on its data, `fedmesh controller`
//! replicas that can be signalled, and their metrics and health endpoints.
//! Every process is killed when its handle drops.

// Shared by tests/failover.rs and benches/failover.rs, which use different parts.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// The `fedmesh` binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_fedmesh");

/// A child process, killed (SIGKILL, which also ends a stopped one) on drop.
pub struct Process {
    child: Child,
    log: PathBuf,
}

impl Process {
    fn spawn(mut command: Command, log: PathBuf) -> Self {
        // Appended to, so a restarted process keeps its earlier runs' lines.
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap();
        let child = command
            .stdout(Stdio::null())
            .stderr(file)
            .env_remove("FEDMESH_LOG")
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {BIN}: {e}"));
        Self { child, log }
    }

    /// Sends `signal` (`KILL`, `TERM`, `STOP`, `CONT`).
    pub fn signal(&self, signal: &str) {
        let sent = Command::new("kill")
            .args([format!("-{signal}"), self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success(), "kill -{signal} failed");
    }

    /// SIGKILL, then reaps the process.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Waits at most `limit` for the process to end.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// What the process wrote to stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A loopback port nobody listens on now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Polls `check` every 20 ms until it returns a value; None after `limit`.
pub async fn within<T>(limit: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = check() {
            return Some(value);
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// GET `path` on `addr`: status and body, or None if nothing answers within
/// `timeout` (a stopped process accepts the connection but never answers).
pub fn http_get(addr: SocketAddr, path: &str, timeout: Duration) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, timeout).ok()?;
    stream.set_read_timeout(Some(timeout)).ok()?;
    stream.set_write_timeout(Some(timeout)).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let code = response.split_whitespace().nth(1)?.parse().ok()?;
    let body = response.split_once("\r\n\r\n")?.1.to_owned();
    Some((code, body))
}

/// The local cluster's API server as a `fedmesh apiserver` process, on a
/// fixed port and data directory so it can be killed and started again.
pub struct LocalApi {
    dir: tempfile::TempDir,
    listen: SocketAddr,
    process: Option<Process>,
}

impl LocalApi {
    /// Starts one and waits until it answers.
    pub async fn start() -> Self {
        let mut api = Self {
            dir: tempfile::tempdir().unwrap(),
            listen: SocketAddr::from(([127, 0, 0, 1], free_port())),
            process: None,
        };
        api.restart().await;
        api
    }

    /// The admin kubeconfig (the same across restarts: the CA and token are
    /// kept in the data directory).
    pub fn kubeconfig(&self) -> PathBuf {
        self.dir.path().join("local.kubeconfig")
    }

    /// A directory for the test's other files (logs, kubeconfigs).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// An admin client.
    pub async fn client(&self) -> kube::Client {
        let parsed = kube::config::Kubeconfig::read_from(self.kubeconfig()).unwrap();
        let options = kube::config::KubeConfigOptions::default();
        let config = kube::Config::from_custom_kubeconfig(parsed, &options)
            .await
            .unwrap();
        kube::Client::try_from(config).unwrap()
    }

    /// SIGKILLs the server.
    pub fn kill(&mut self) {
        if let Some(mut process) = self.process.take() {
            process.kill();
        }
    }

    /// (Re)starts the server on the same port and data, and waits (at most
    /// 30 s) until it answers.
    pub async fn restart(&mut self) {
        self.kill();
        let mut command = Command::new(BIN);
        command
            .arg("apiserver")
            .args(["--listen", &self.listen.to_string(), "--data-dir"])
            .arg(self.dir.path().join("data"))
            .arg("--kubeconfig-out")
            .arg(self.kubeconfig())
            .args(["--context", "local", "--nodes", "0"]);
        let log = self.dir.path().join("apiserver.log");
        let process = Process::spawn(command, log);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if self.kubeconfig().exists() {
                let client = self.client().await;
                let answered =
                    tokio::time::timeout(Duration::from_secs(2), client.apiserver_version()).await;
                if matches!(answered, Ok(Ok(_))) {
                    break;
                }
            }
            assert!(
                Instant::now() < deadline,
                "the API server did not answer within 30 s: {}",
                process.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.process = Some(process);
    }
}

/// Lease and probe timings of a controller replica, as flags.
#[derive(Debug, Clone, Copy)]
pub struct Timings {
    /// --lease-duration
    pub lease: Duration,
    /// --renew-deadline
    pub renew_deadline: Duration,
    /// --renew-interval
    pub renew_interval: Duration,
    /// --probe-interval and --probe-timeout
    pub probe: Duration,
}

impl Timings {
    /// Short leases for tests: 2 s lease, 1 s deadline, renewed every 250 ms.
    pub const SHORT: Self = Self {
        lease: Duration::from_secs(2),
        renew_deadline: Duration::from_secs(1),
        renew_interval: Duration::from_millis(250),
        probe: Duration::from_millis(500),
    };

    /// The defaults of `fedmesh controller` (15 s lease, 10 s deadline, 2 s).
    pub const DEFAULT: Self = Self {
        lease: Duration::from_secs(15),
        renew_deadline: Duration::from_secs(10),
        renew_interval: Duration::from_secs(2),
        probe: Duration::from_secs(2),
    };

    /// How often a replica that does not lead looks at the Lease
    /// (`ControllerConfig`'s retry interval, not a flag).
    pub const RETRY: Duration = Duration::from_millis(500);

    fn flags(&self) -> Vec<String> {
        let ms = |d: Duration| format!("{}ms", d.as_millis());
        vec![
            "--lease-duration".into(),
            ms(self.lease),
            "--renew-deadline".into(),
            ms(self.renew_deadline),
            "--renew-interval".into(),
            ms(self.renew_interval),
            "--probe-interval".into(),
            ms(self.probe),
            "--probe-timeout".into(),
            ms(self.probe),
        ]
    }
}

/// A `fedmesh controller` replica: its Lease identity, metrics address and process.
pub struct Replica {
    /// The identity (POD_NAME) it holds the Lease as.
    pub name: String,
    /// Where it serves /metrics and /readyz.
    pub metrics: SocketAddr,
    timings: Timings,
    kubeconfig: PathBuf,
    log: PathBuf,
    /// The running process (None between a kill and a restart).
    pub process: Option<Process>,
}

impl Replica {
    /// Starts replica `name` against the cluster of `kubeconfig`, logging
    /// into `dir`.
    pub fn start(kubeconfig: &Path, dir: &Path, name: &str, timings: Timings) -> Self {
        let mut replica = Self {
            name: name.into(),
            metrics: SocketAddr::from(([127, 0, 0, 1], free_port())),
            timings,
            kubeconfig: kubeconfig.into(),
            log: dir.join(format!("{name}.log")),
            process: None,
        };
        replica.restart();
        replica
    }

    /// (Re)starts the process with the same identity, port and settings.
    pub fn restart(&mut self) {
        self.process = None;
        let mut command = Command::new(BIN);
        command
            .args(["controller", "--install-crds", "--kubeconfig"])
            .arg(&self.kubeconfig)
            .args(["--metrics-addr", &self.metrics.to_string()])
            .args(self.timings.flags())
            .env("POD_NAME", &self.name);
        self.process = Some(Process::spawn(command, self.log.clone()));
    }

    /// The field manager of this replica's writes.
    pub fn manager(&self) -> String {
        format!("fedmesh-controller/{}", self.name)
    }

    /// The running process.
    pub fn process(&mut self) -> &mut Process {
        self.process.as_mut().expect("the replica runs")
    }

    /// `fedmesh_leader` as scraped now (None if it does not answer in 300 ms).
    pub fn leading(&self) -> Option<bool> {
        let (_, body) = http_get(self.metrics, "/metrics", Duration::from_millis(300))?;
        body.lines()
            .find_map(|l| l.strip_prefix("fedmesh_leader "))
            .map(|v| v.trim() == "1")
    }

    /// `/readyz`: status and reason.
    pub fn readyz(&self) -> Option<(u16, String)> {
        http_get(self.metrics, "/readyz", Duration::from_secs(1))
    }

    /// Everything the replica logged, earlier runs first.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}
