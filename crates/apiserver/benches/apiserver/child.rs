//! The server under test in a child process (this same bench binary, started
//! with `--serve-child DIR`), so that its resident memory is the server's alone
//! and its start is a real process start.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use fedmesh_apiserver::objects::ObjectStore;
use fedmesh_apiserver::server::{ApiServer, DB_FILE};
use fedmesh_apiserver::store::StoreOptions;

use super::client::{self, Target};

/// The argument that turns this binary into the server.
pub const SERVE_CHILD: &str = "--serve-child";

/// The argument that makes the child serve plain HTTP.
pub const PLAINTEXT: &str = "--plaintext";

/// The argument that makes the child run without the built-in controllers.
pub const NO_CONTROLLERS: &str = "--no-controllers";

/// How the child serves.
#[derive(Debug, Clone, Copy)]
pub struct Mode {
    /// Plain HTTP/2 instead of TLS.
    pub plaintext: bool,
    /// Whether the built-in controllers run.
    pub controllers: bool,
}

/// Runs in the child: serves with a SQLite store in `dir` until stdin closes.
/// Tells the parent, one line each: its address, the admin token and where the
/// CA certificate is (`-` in plaintext).
pub fn serve(dir: &Path, mode: Mode) {
    let plaintext = mode.plaintext;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(async {
        let mut builder = ApiServer::builder();
        // An experiment knob, inherited from the parent's environment: the
        // store's group-commit linger (the server's default otherwise).
        if let Some(us) = std::env::var("APIBENCH_LINGER_US")
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
        {
            let options = StoreOptions {
                group_commit_linger: Duration::from_micros(us),
                ..StoreOptions::default()
            };
            std::fs::create_dir_all(dir).expect("create the data directory");
            let store =
                ObjectStore::open_sqlite(&dir.join(DB_FILE), options).expect("open the store");
            builder = builder.store(store);
        }
        let server = builder
            .data_dir(dir)
            .insecure_plaintext(plaintext)
            .builtin_controllers(mode.controllers)
            .start()
            .await
            .expect("server start");
        let security = &server.guard().security;
        let ca = if plaintext {
            "-".to_owned()
        } else {
            let path = dir.join("bench-ca.pem");
            std::fs::write(&path, security.tls.ca_pem()).expect("write the CA certificate");
            path.display().to_string()
        };
        println!(
            "listening {}\ntoken {}\nca {ca}",
            server.addr(),
            security.admin_token.expose()
        );
        // The parent closes our stdin when it is done (or dies).
        tokio::task::spawn_blocking(|| {
            let _ = std::io::stdin().read_to_end(&mut Vec::new());
        })
        .await
        .expect("stdin reader");
        server.shutdown().await;
    });
}

/// A server child process; killed when dropped.
pub struct ServerProcess {
    child: Child,
    stdin: Option<ChildStdin>,
    /// How to reach it.
    pub target: Target,
    /// When it was spawned.
    pub spawned: Instant,
}

impl ServerProcess {
    /// Spawns the server on a SQLite data directory and waits for its address.
    pub fn spawn(dir: &Path, mode: Mode) -> ServerProcess {
        let exe = std::env::current_exe().expect("own executable");
        let spawned = Instant::now();
        let mut command = Command::new(exe);
        command.arg(SERVE_CHILD).arg(dir);
        if mode.plaintext {
            command.arg(PLAINTEXT);
        }
        if !mode.controllers {
            command.arg(NO_CONTROLLERS);
        }
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn the server process");
        let mut stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        let mut said = |what: &str| {
            let mut line = String::new();
            stdout
                .read_line(&mut line)
                .expect("read from the server process");
            line.trim()
                .strip_prefix(what)
                .and_then(|v| v.strip_prefix(' '))
                .map(str::to_owned)
                .unwrap_or_else(|| panic!("the server process said {line:?}, not {what}"))
        };
        let addr = said("listening").parse().expect("an address");
        let token = said("token");
        let ca = said("ca");
        let tls = (ca != "-").then(|| {
            client::tls_config(&std::fs::read_to_string(&ca).expect("read the CA certificate"))
        });
        ServerProcess {
            stdin: child.stdin.take(),
            child,
            target: Target {
                addr,
                tls,
                token: Some(token),
            },
            spawned,
        }
    }

    /// Process id (for `perf record -p`).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Resident set size of the server process, from /proc.
    pub fn rss_bytes(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("read /proc/PID/status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|kb| kb.parse::<u64>().ok())
            .expect("VmRSS in /proc/PID/status")
            * 1024
    }

    /// CPU time the server process has used so far (user + system).
    pub fn cpu(&self) -> Duration {
        cpu_time(self.child.id())
    }

    /// Asks the server to stop cleanly and waits for it.
    pub fn stop(mut self) {
        drop(self.stdin.take());
        let _ = self.child.wait();
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if self.stdin.is_some() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// CPU time (user + system) process `pid` has used, from /proc/PID/stat.
pub fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("read /proc/PID/stat");
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line; `rest` starts at field 3.
    let field = |n: usize| {
        fields
            .get(n - 3)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let ticks = field(14) + field(15);
    Duration::from_secs_f64(ticks as f64 / clock_ticks_per_second())
}

fn clock_ticks_per_second() -> f64 {
    // USER_HZ is 100 on every Linux architecture the bench runs on; `getconf` says so if not.
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}
