//! `fedmesh demo` end to end: the built binary with a temporary data
//! directory, the commands it prints run with kubectl and dig exactly as
//! printed, then Ctrl-C.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

mod support;

use support::{BIN, dig_answer};

/// kubectl may unpack a version on first use.
const KUBECTL_TIMEOUT: Duration = Duration::from_secs(60);

/// Kills the demo if the test fails before it stops it.
struct Demo {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Demo {
    fn start(data_dir: &std::path::Path) -> Demo {
        let mut child = Command::new(BIN)
            .args(["demo", "--data-dir"])
            .arg(data_dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the demo starts");
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Demo { child, lines }
    }

    /// Lines up to and including the first one `until` accepts.
    fn read_until(&self, until: impl Fn(&str) -> bool, within: Duration) -> Vec<String> {
        let deadline = Instant::now() + within;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    let done = until(&line);
                    seen.push(line);
                    if done {
                        return seen;
                    }
                }
                Err(_) => panic!("timed out; the demo printed:\n{}", seen.join("\n")),
            }
        }
    }

    fn interrupt_and_wait(&mut self) -> std::process::ExitStatus {
        let status = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the demo did not stop within 10s of Ctrl-C"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Runs a printed command with `sh`, as a user pasting it would.
fn run(command: &str) -> Output {
    let mut child = Command::new("sh")
        .args(["-c", command])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + KUBECTL_TIMEOUT;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{command} took more than {KUBECTL_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{command} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The custom-columns row of `name`: its comma-separated cells.
fn row(table: &str, name: &str) -> Vec<Vec<String>> {
    let line = table
        .lines()
        .find(|l| l.split_whitespace().next() == Some(name))
        .unwrap_or_else(|| panic!("no row {name} in:\n{table}"));
    line.split_whitespace()
        .skip(1)
        .map(|cell| cell.split(',').map(str::to_owned).collect())
        .collect()
}

/// Runs `command` until its output satisfies `check`, for at most 10 s.
fn eventually(command: &str, what: &str, check: impl Fn(&str) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let out = stdout(&run(command));
        if check(&out) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}:\n{out}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn demo_serves_the_seeds_and_its_printed_commands_work() {
    let dir = tempfile::tempdir().unwrap();
    let mut demo = Demo::start(dir.path());
    let startup = demo.read_until(|l| l.starts_with("ready in "), Duration::from_secs(30));
    let ready = startup.last().unwrap();
    assert!(ready.contains("in sync"), "{}", startup.join("\n"));
    let seconds: f64 = ready["ready in ".len()..]
        .split('s')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(seconds < 10.0, "ready after {seconds}s");
    assert!(
        startup
            .iter()
            .any(|l| l.contains("created RemoteClusterConfiguration remotecluster")),
        "the demo joins with join's code: {}",
        startup.join("\n")
    );
    let help = demo.read_until(|l| l.starts_with("Press Ctrl-C"), Duration::from_secs(5));
    let commands: Vec<&str> = help
        .iter()
        .map(|l| l.trim())
        .filter(|l| l.starts_with("kubectl ") || l.starts_with("dig "))
        .collect();
    assert_eq!(commands.len(), 15, "{}", help.join("\n"));

    // Seed 000: the local pod, the remote one as remotecluster/<pod>, port
    // my-app-ui only (its target port, as the clusters' endpoints carry it).
    // The pods are the Deployments' (`my-app-<hash>-<suffix>`), with IPs from
    // each cluster's own pod network.
    let yaml = stdout(&run(commands[0]));
    let endpoints: Value = serde_saphyr::from_str(&yaml).unwrap();
    let mut addresses = Vec::new();
    for subset in endpoints["subsets"].as_array().unwrap() {
        assert_eq!(
            subset["ports"],
            serde_json::json!([{"name": "my-app-ui", "port": 9000, "protocol": "TCP"}]),
            "{yaml}"
        );
        for address in subset["addresses"].as_array().unwrap() {
            addresses.push((
                address["ip"].as_str().unwrap().to_owned(),
                address["targetRef"]["name"].as_str().unwrap().to_owned(),
            ));
        }
    }
    addresses.sort();
    assert_eq!(addresses.len(), 2, "{yaml}");
    let (local_ip, local_pod) = &addresses[0];
    let (remote_ip, remote_pod) = &addresses[1];
    assert!(local_ip.starts_with("10.1."), "{yaml}");
    assert!(remote_ip.starts_with("10.2."), "{yaml}");
    assert_eq!(
        local_pod.split('-').count(),
        4,
        "a Deployment's pod: {yaml}"
    );
    assert!(local_pod.starts_with("my-app-"), "{yaml}");
    assert!(remote_pod.starts_with("remotecluster/my-app-"), "{yaml}");

    assert!(stdout(&run(commands[1])).contains("remotecluster"));

    // Seed 004: reviews has three endpoints, ratings one.
    let bookinfo = stdout(&run(commands[2]));
    assert_eq!(row(&bookinfo, "reviews")[0].len(), 3, "{bookinfo}");
    assert_eq!(row(&bookinfo, "ratings")[0].len(), 1, "{bookinfo}");

    // The other way: remotecluster's federated ratings holds local's pod.
    let ratings = stdout(&run(commands[3]));
    let ratings = row(&ratings, "ratings");
    assert!(ratings[0][0].starts_with("10.1."), "{ratings:?}");
    assert!(
        ratings[1][0].starts_with("local/ratings-v1-"),
        "{ratings:?}"
    );

    // The pods run on the remote cluster's simulated nodes, in its zone.
    let pods = stdout(&run(commands[4]));
    let running: Vec<&str> = pods.lines().filter(|l| l.contains("Running")).collect();
    assert_eq!(
        running.len(),
        4,
        "my-app, reviews-v2, reviews-v3, nginx:\n{pods}"
    );
    assert!(
        running.iter().all(|l| l.contains("remotecluster-node-")),
        "{pods}"
    );

    // Scale the remote Deployment to zero, then back.
    run(commands[5]);
    eventually(commands[6], "the remote pod to leave", |out| {
        row(out, "my-app-federated")[1] == [local_pod.clone()]
    });
    run(commands[7]);
    eventually(commands[6], "a remote pod to come back", |out| {
        row(out, "my-app-federated")[1].len() == 2
    });

    let (local_lb, remote_lb) = federation_works(&commands[8..]);

    let status = demo.interrupt_and_wait();
    assert!(status.success(), "the demo exits 0 on Ctrl-C: {status}");

    // A restart on the same data directory resumes.
    let mut again = Demo::start(dir.path());
    let startup = again.read_until(|l| l.starts_with("ready in "), Duration::from_secs(30));
    assert!(
        startup.iter().any(|l| l.contains("resuming")),
        "{}",
        startup.join("\n")
    );
    assert!(
        startup
            .iter()
            .any(|l| l.contains("unchanged RemoteClusterConfiguration remotecluster")),
        "{}",
        startup.join("\n")
    );
    let yaml = stdout(&run(commands[0]));
    assert!(yaml.contains("remotecluster/my-app-"), "{yaml}");
    assert!(
        startup
            .iter()
            .any(|l| l.contains("unchanged Cluster remotecluster in federation")),
        "{}",
        startup.join("\n")
    );
    // The same DNS port, and both shards again.
    eventually(commands[10], "both shards after the restart", |out| {
        dig_answer(out) == [local_lb.clone(), remote_lb.clone()]
    });
    assert!(again.interrupt_and_wait().success());
}

/// Seeds 002/003 through the federation's printed commands: the members,
/// nginx's shards, the DNS names, and a failover of local's shard and back.
/// Returns local's and remotecluster's load-balancer addresses.
fn federation_works(commands: &[&str]) -> (String, String) {
    let clusters = stdout(&run(commands[0]));
    for (name, zone) in [
        ("local", "us-central1-a"),
        ("remotecluster", "europe-west1-b"),
    ] {
        let row = row(&clusters, name);
        assert_eq!(row[0], ["True"], "{clusters}");
        assert!(row[2][0].contains(zone), "{clusters}");
    }

    let yaml = stdout(&run(commands[1]));
    let service: Value = serde_saphyr::from_str(&yaml).unwrap();
    let shards: Value = serde_json::from_str(
        service["metadata"]["annotations"]["federation.fedmesh.io/shards"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    let shard = |cluster: &str| {
        let shard = shards
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["cluster"] == cluster)
            .unwrap_or_else(|| panic!("no shard of {cluster}: {yaml}"));
        assert_eq!(shard["healthy"], true, "{yaml}");
        shard["addresses"][0].as_str().unwrap().to_owned()
    };
    let (local_lb, remote_lb) = (shard("local"), shard("remotecluster"));
    // Each from its cluster's load-balancer pool.
    assert!(local_lb.starts_with("192.0.2."), "{yaml}");
    assert!(remote_lb.starts_with("198.51.100."), "{yaml}");

    let global = "nginx.mynamespace.myfederation.svc.example.com.";
    let region = "nginx.mynamespace.myfederation.svc.us-central1.example.com.";
    assert_eq!(
        dig_answer(&stdout(&run(commands[2]))),
        [local_lb.clone(), remote_lb.clone()]
    );
    assert_eq!(
        dig_answer(&stdout(&run(commands[3]))),
        std::slice::from_ref(&local_lb)
    );

    // local's shard fails over: zone → region → global → remotecluster.
    run(commands[4]);
    eventually(commands[5], "the zone name to become a CNAME", |out| {
        dig_answer(out) == [region.to_owned(), global.to_owned(), remote_lb.clone()]
    });
    run(commands[6]);
    eventually(commands[5], "local's address again", |out| {
        dig_answer(out) == std::slice::from_ref(&local_lb)
    });
    (local_lb, remote_lb)
}
