//! The server under test in a child process (this same bench binary, started
//! with `--serve-child DIR`), so that its resident memory is the server's alone
//! and its start is a real process start. Shared by the `apiserver` and
//! `dataplane` benches.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use fedmesh_apiserver::cluster::simulation::DataPlaneOptions;
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

/// The argument (followed by a count) that gives the child simulated nodes.
pub const NODES: &str = "--nodes";

/// The argument that keeps the child's store in memory (as `fedmesh demo`
/// and the test clusters do) instead of SQLite in its directory.
pub const IN_MEMORY: &str = "--in-memory";

/// How the child serves.
#[derive(Debug, Clone, Copy, Default)]
pub struct Mode {
    /// Plain HTTP/2 instead of TLS.
    pub plaintext: bool,
    /// Whether the built-in controllers run.
    pub controllers: bool,
    /// Simulated nodes (0: no scheduler or kubelet).
    pub nodes: u32,
    /// The store in memory rather than SQLite.
    pub in_memory: bool,
}

impl Mode {
    /// The mode the child's command line asks for.
    pub fn from_args(args: &[String]) -> Mode {
        let has = |flag: &str| args.iter().any(|a| a == flag);
        Mode {
            plaintext: has(PLAINTEXT),
            controllers: !has(NO_CONTROLLERS),
            nodes: args
                .iter()
                .position(|a| a == NODES)
                .and_then(|at| args.get(at + 1))
                .and_then(|n| n.parse().ok())
                .unwrap_or(0),
            in_memory: has(IN_MEMORY),
        }
    }

    fn args(&self) -> Vec<String> {
        let mut args = Vec::new();
        if self.plaintext {
            args.push(PLAINTEXT.to_owned());
        }
        if !self.controllers {
            args.push(NO_CONTROLLERS.to_owned());
        }
        if self.nodes > 0 {
            args.extend([NODES.to_owned(), self.nodes.to_string()]);
        }
        if self.in_memory {
            args.push(IN_MEMORY.to_owned());
        }
        args
    }
}

/// Runs in the child: serves with a SQLite store in `dir` (or in memory)
/// until stdin closes. Tells the parent, one line each: its address, the
/// admin token and where the CA certificate is (`-` in plaintext). Then
/// answers commands, one a line on stdin: `compact` (drops the store's
/// history up to now, as the compactor does five minutes later) and `heap`
/// (live heap bytes, from `live_heap` when the bench counts them).
pub fn serve(dir: &Path, mode: Mode, live_heap: Option<fn() -> usize>) {
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
        if mode.in_memory {
            std::fs::create_dir_all(dir).expect("create the data directory");
        } else {
            builder = builder.data_dir(dir);
        }
        if mode.nodes > 0 {
            builder = builder.data_plane(DataPlaneOptions {
                nodes: mode.nodes,
                ..DataPlaneOptions::default()
            });
        }
        let server = builder
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
        let (tx, mut commands) = tokio::sync::mpsc::unbounded_channel();
        std::thread::spawn(move || {
            for line in std::io::stdin().lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        while let Some(command) = commands.recv().await {
            let answer = match command.trim() {
                "compact" => {
                    let store = server.store().raw();
                    store
                        .compact(store.current_revision())
                        .await
                        .expect("compact the store");
                    "compacted".to_owned()
                }
                "heap" => format!("heap {}", live_heap.map_or(0, |f| f())),
                other => format!("unknown command {other}"),
            };
            println!("{answer}");
            let _ = std::io::stdout().flush();
        }
        server.shutdown().await;
    });
}

/// A server child process; killed when dropped.
pub struct ServerProcess {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
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
        command.arg(SERVE_CHILD).arg(dir).args(mode.args());
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
            stdout,
            child,
            target: Target {
                addr,
                tls,
                token: Some(token),
            },
            spawned,
        }
    }

    /// Sends the child one command (see [`serve`]) and returns its answer.
    pub fn ask(&mut self, command: &str) -> String {
        let stdin = self.stdin.as_mut().expect("the server process runs");
        writeln!(stdin, "{command}").expect("write to the server process");
        stdin.flush().expect("write to the server process");
        let mut line = String::new();
        self.stdout
            .read_line(&mut line)
            .expect("read from the server process");
        line.trim().to_owned()
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
